/* qkd/optical.h - the optical layer's built-in link simulator (DESIGN.md s3).
 *
 * A link is a train of time slots ("pulses") 0, 1, 2, ...  In each slot Alice
 * prepares (weak-coherent source) or an SPDC source emits (entangled source),
 * photons cross L km of fiber, and each party measures in a basis of its own
 * choosing with two detectors. docs/optical-model.md states the model, the
 * closed-form click probabilities and QBER, and the sampling method.
 *
 * Views. The protocol engine runs Alice and Bob as two processes. Each process
 * creates its own qkd_sim from the same qkd_link_params (same seed) and calls
 * only its own party's accessors:
 *   Bob:   qkd_sim_bob_chunk()     his detections in [first, first+count)
 *   Alice: qkd_sim_alice_lookup()  her basis/value at slots Bob named, and
 *                                  (entangled) whether she detected there
 *          qkd_sim_alice_chunk()   (entangled) her own detection list
 * Every result is a pure function of (params, slot range): the simulator has
 * no mutable state, so chunks may be requested in any order, repeated, split
 * differently, or run from several threads, and two processes agree bit for
 * bit. A party's view holds only what its apparatus shows (slot, own basis,
 * own bit, double-click flag); the simulator's ground truth (photon numbers,
 * dark-count-only clicks) is kept apart in qkd_det_truth and qkd_sim_stats,
 * for reports and tests, never for protocol decisions.
 *
 * The random choices are made by a keyed counter-based mixer, a simulation
 * generator that is NOT cryptographic (see docs/optical-model.md); a node
 * driving real hardware never uses it.
 */
#ifndef QKD_OPTICAL_H
#define QKD_OPTICAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/bits.h"

enum qkd_source_kind {
	QKD_SOURCE_WEAK_COHERENT = 0,	/* attenuated laser, BB84 */
	QKD_SOURCE_ENTANGLED = 1,	/* SPDC pair source, BBM92 */
};

/* The medium between Alice and Bob (docs/optical-model.md section 1a). */
enum qkd_channel_kind {
	QKD_CHANNEL_FIBER = 0,		/* alpha dB/km of fiber: the default */
	QKD_CHANNEL_FREE_SPACE = 1,	/* a beam through the air between two telescopes */
};

#define QKD_PULSES_MAX ((uint64_t)1 << 62)

/* An eavesdropper on the fiber (DESIGN.md s3, docs/optical-model.md "Eve").
 * She sits at the start of the fiber, on the path to Bob. */
enum qkd_eve_attack {
	QKD_EVE_NONE = 0,
	QKD_EVE_INTERCEPT_RESEND,	/* eve_fraction of pulses measured in a random basis, resent */
	QKD_EVE_PNS,			/* photon-number splitting (weak-coherent only) */
	QKD_EVE_BEAMSPLIT,		/* taps eve_fraction of the photons; the rest travel on */
};

/* Decoy states: signal mu plus up to two decoy intensities (Lim et al. 2014). */
#define QKD_INTENSITIES_MAX 3

/* Link parameters. All probabilities are per slot (gate). */
struct qkd_link_params {
	enum qkd_source_kind source;
	uint64_t pulses;		/* slots in the run, 1 .. 2^62 */
	double rate_hz;			/* slot rate; only converts counts to time */
	double mu;			/* mean photons per pulse (WCP) or pairs per slot (SPDC) */
	double distance_km;		/* fiber length L to Bob */
	double fiber_loss_db_per_km;	/* alpha */
	double detector_efficiency;	/* eta_d, every detector of both parties */
	double dark_count;		/* p_d per gate per detector */
	double misalignment;		/* e_opt, 0 .. 0.5 */
	double rng_bias;		/* P(1) of each bit Alice's RNG draws (0.5: fair) */
	uint64_t seed;			/* the single user --seed */
	/* Decoy states (weak-coherent only). intensities is 1 (every pulse has
	 * mean mu) or 3: pulse intensity index k is 0 (mu, the signal), 1
	 * (mu_decoy[0]) or 2 (mu_decoy[1]) with probability p_intensity[k];
	 * mu > mu_decoy[0] + mu_decoy[1], mu_decoy[0] > mu_decoy[1] >= 0, the
	 * probabilities in (0,1) summing to 1. Alice's RNG picks k per pulse. */
	unsigned intensities;
	double mu_decoy[2];
	double p_intensity[QKD_INTENSITIES_MAX];
	/* P(basis 1, X) for each party's basis choice, in (0,1); 0.5 is BB84's
	 * symmetric choice, a larger value Lim et al.'s biased choice (key from X). */
	double p_x;
	enum qkd_eve_attack eve;
	double eve_fraction;		/* F in [0,1] for intercept-resend and beamsplit */
	/* The channel. With QKD_CHANNEL_FIBER the fields below are ignored
	 * and fiber_loss_db_per_km applies; with QKD_CHANNEL_FREE_SPACE the
	 * path of distance_km is a beam: T = T_geo T_atm with
	 * T_geo = min(1, (D_r / (D_t + L theta))^2), T_atm = 10^(-a L/10), and
	 * Bob's detectors also see background light (docs/optical-model.md 1a). */
	enum qkd_channel_kind channel;
	double tx_aperture_m;		/* D_t, transmitter aperture (m) */
	double rx_aperture_m;		/* D_r, receiver aperture (m) */
	double beam_divergence;		/* theta, full-angle divergence (rad) */
	double atmos_loss_db_per_km;	/* a, atmospheric attenuation */
	double background_day;		/* background counts per gate per detector, daylight */
	double background_night;	/* the same at night */
	bool daylight;			/* which of the two applies */
};

/* Fill p with the defaults: weak-coherent, 1e8 pulses at 10 MHz, mu 0.1,
 * 10 km of 0.2 dB/km fiber, eta_d 0.1, p_d 1e-5, e_opt 0.01, seed 1, one
 * intensity, p_x 0.5, no Eve; the free-space fields (used only with
 * channel = free-space) a ground link: D_t 5 cm, D_r 10 cm, theta 20 urad,
 * 0.1 dB/km clear air, background 1e-4 (day) / 1e-6 (night), night. */
void qkd_link_params_default(struct qkd_link_params *p);

/* 0 if every field is in its domain, else QKD_ERR_INVAL with *why (if why is
 * not NULL) set to a static sentence naming the field, e.g. "mu must be > 0". */
__attribute__((warn_unused_result))
int qkd_link_params_check(const struct qkd_link_params *p, const char **why);

/* "weak-coherent" / "entangled" (never NULL; "unknown" otherwise). */
const char *qkd_source_name(enum qkd_source_kind k);
/* Parse the names above (also "wcp", "spdc"). 0 or QKD_ERR_INVAL. */
__attribute__((warn_unused_result))
int qkd_source_parse(const char *name, enum qkd_source_kind *k);

/* "fiber" / "free-space" (never NULL; "unknown" otherwise). */
const char *qkd_channel_name(enum qkd_channel_kind k);
/* Parse the names above (also "fso"). 0 or QKD_ERR_INVAL. */
__attribute__((warn_unused_result))
int qkd_channel_parse(const char *name, enum qkd_channel_kind *k);

/* The channel's transmittance T from Alice to Bob's receiver, the one place
 * it is computed (docs/optical-model.md 1, 1a): fiber 10^(-alpha*L/10);
 * free space T_geo * T_atm. Every model path (simulator, Eve, the node's
 * detector) uses this, so a fiber link's numbers are those of before the
 * free-space channel existed, bit for bit. */
double qkd_link_transmittance(const struct qkd_link_params *p);
/* 1 - T, computed without cancellation (expm1) for T close to 1. */
double qkd_link_loss(const struct qkd_link_params *p);
/* Free space only: min(1, (D_r / (D_t + L theta))^2), L in m. 1 for fiber. */
double qkd_link_geometric_transmittance(const struct qkd_link_params *p);
/* Free space only: 10^(-a L/10). For fiber the fiber's 10^(-alpha L/10). */
double qkd_link_atmospheric_transmittance(const struct qkd_link_params *p);
/* Noise clicks per gate of each of Bob's detectors, the one place it is
 * computed: fiber p_d; free space 1 - (1-p_d)(1-p_bg), p_bg the day or the
 * night background (a dark count and a background photon are independent).
 * Alice's own detectors (entangled source) are at the source, behind no
 * channel: they see p_d only. */
double qkd_link_noise_per_gate(const struct qkd_link_params *p);
/* Closed-form per-slot probability of a usable event and its QBER when the
 * bases match (docs/optical-model.md): weak-coherent: P(Bob clicks) and
 * DESIGN's QBER; entangled: P(coincidence) and the coincidence QBER. Either
 * output may be NULL. When the probability is 0 the QBER is reported as 0.
 * With decoys, the mixture over the intensities (click probability averaged
 * with p_intensity, QBER weighted by clicks). Honest link: Eve is ignored.
 * p must pass qkd_link_params_check. */
void qkd_link_expected(const struct qkd_link_params *p, double *p_click, double *qber);
/* P(n >= 2) for Poisson(mu): 1 - e^-mu (1 + mu), accurate for tiny mu too. */
double qkd_multiphoton_prob(double mu);

/* "none", "intercept-resend", "pns", "beamsplit" ("unknown" otherwise). */
const char *qkd_eve_name(enum qkd_eve_attack a);
/* Parse "none", "intercept-resend:F", "pns", "beamsplit:F" (F a real in
 * [0,1]) into p->eve and p->eve_fraction. 0 or QKD_ERR_INVAL with *why. */
__attribute__((warn_unused_result))
int qkd_eve_parse(const char *spec, struct qkd_link_params *p, const char **why);

/* Mean photon number of intensity index k (0: mu; 1, 2: the decoys). */
double qkd_link_intensity(const struct qkd_link_params *p, unsigned k);
/* qkd_link_expected for pulses of intensity k only, with no Eve. */
void qkd_link_expected_intensity(const struct qkd_link_params *p, unsigned k,
				 double *p_click, double *qber);

/* Bases: 0 = Z (rectilinear), 1 = X (diagonal). */
#define QKD_DET_DOUBLE	0x01	/* both detectors fired; value is the party's random bit */
#define QKD_DET_NONE	0x02	/* alice_lookup, entangled: no detection in this slot */

/* One detection as the party's apparatus reports it. */
struct qkd_detection {
	uint64_t slot;
	uint8_t basis;
	uint8_t value;
	uint8_t flags;		/* QKD_DET_* */
	uint8_t intensity;	/* Alice's view only: intensity index of the pulse (0 for Bob) */
};

#define QKD_TRUTH_DARK	0x01	/* no photon was detected: dark counts only */
#define QKD_TRUTH_COINC	0x02	/* entangled: the other party clicked in this slot too */
/* Eve knows Alice's bit of this slot exactly once the bases are announced
 * (if the slot is sifted): docs/optical-model.md lists, per attack, when. */
#define QKD_TRUTH_EVE	0x04

/* Simulator ground truth about one detection (never part of a party's view).
 * Counts saturate at 255. */
struct qkd_det_truth {
	uint8_t n_sent;		/* photons in the pulse (WCP) or pairs emitted (SPDC) */
	uint8_t n_arrived;	/* photons that reached this party's detectors */
	uint8_t n_detected;	/* of those, photons detected */
	uint8_t flags;		/* QKD_TRUTH_* */
};

/* A caller-owned detection list, reused across chunks (capacity is kept).
 * Raw key bits are secret: cleanup wipes before freeing. */
struct qkd_det_list {
	struct qkd_detection *d;	/* n entries, slots strictly increasing; owned */
	struct qkd_det_truth *truth;	/* parallel to d if want_truth, else NULL; owned */
	size_t n, cap;
	bool want_truth;
};

void qkd_det_list_init(struct qkd_det_list *l, bool want_truth);
/* Wipe and free; l becomes empty (want_truth kept). Accepts NULL. */
void qkd_det_list_cleanup(struct qkd_det_list *l);

/* Counters a chunk call adds to (zero the struct once, then accumulate). */
struct qkd_sim_stats {
	uint64_t slots;		/* pulses (slots) covered */
	uint64_t clicks;	/* detections of this party */
	uint64_t double_clicks;
	uint64_t dark_only;	/* truth: clicks with no photon detected */
	uint64_t multi_photon;	/* truth: clicks in slots with >= 2 photons (pairs) emitted */
	uint64_t coincidences;	/* truth, entangled: clicks where the other party clicked too */
	uint64_t eve_known;	/* truth: clicks flagged QKD_TRUTH_EVE */
	uint64_t eve_touched;	/* truth: clicks in slots Eve intercepted, split or tapped */
	uint64_t by_intensity[QKD_INTENSITIES_MAX];	/* clicks per intensity index */
};

struct qkd_sim;

/* Validate p (QKD_ERR_INVAL on failure; use qkd_link_params_check for the
 * reason) and derive the keys and sampling tables. *out is owned by the
 * caller and freed with qkd_sim_free. The object is immutable afterwards:
 * every accessor takes it const and may be called from several threads. */
__attribute__((warn_unused_result))
int qkd_sim_new(struct qkd_sim **out, const struct qkd_link_params *p);
/* Wipes the keys. Accepts NULL. */
void qkd_sim_free(struct qkd_sim *s);
const struct qkd_link_params *qkd_sim_params(const struct qkd_sim *s);

/* Bob's detections in slots [first, first+count), replacing out's contents
 * (sorted by slot). first+count must not exceed params.pulses (else
 * QKD_ERR_RANGE). st, if not NULL, is added to. On error out is emptied. */
__attribute__((warn_unused_result))
int qkd_sim_bob_chunk(const struct qkd_sim *s, uint64_t first, uint64_t count,
		      struct qkd_det_list *out, struct qkd_sim_stats *st);

/* Entangled source only (QKD_ERR_INVAL otherwise): Alice's own detections in
 * [first, first+count), same contract as qkd_sim_bob_chunk. */
__attribute__((warn_unused_result))
int qkd_sim_alice_chunk(const struct qkd_sim *s, uint64_t first, uint64_t count,
			struct qkd_det_list *out, struct qkd_sim_stats *st);

/* Alice's side of the slots Bob names: slots[0..n) strictly increasing and
 * < params.pulses (else QKD_ERR_INVAL / QKD_ERR_RANGE). out[i] gets slot,
 * her basis and value; weak-coherent: always valid (she sent every pulse);
 * entangled: QKD_DET_NONE when she did not detect in that slot (basis is
 * still her setting, value 0), QKD_DET_DOUBLE as for Bob. out is
 * caller-allocated with n entries and must not alias slots. */
__attribute__((warn_unused_result))
int qkd_sim_alice_lookup(const struct qkd_sim *s, const uint64_t *slots, size_t n,
			 struct qkd_detection *out);

/* Alice's raw random choices for every slot of [first, first+count): bit
 * i of basis and value for slot first+i (both initialized by the caller
 * with count bits). For a weak-coherent source both are her RNG's output;
 * for an entangled source only the basis is, value is left zero. These are
 * what the randomness tests examine (docs/randomness.md). */
__attribute__((warn_unused_result))
int qkd_sim_alice_choices(const struct qkd_sim *s, uint64_t first, uint64_t count,
			  struct qkd_bits *basis, struct qkd_bits *value);

/* Benchmark for `qkd bench`: simulate `pulses` slots of link p (NULL: the
 * default link) in chunks of 2^24 with Bob's view, then Alice's lookup of
 * Bob's slots, as a `qkd sim` run does. *seconds gets wall-clock time
 * (CLOCK_MONOTONIC); st (may be NULL) Bob's counters. */
__attribute__((warn_unused_result))
int qkd_sim_bench(const struct qkd_link_params *p, uint64_t pulses,
		  double *seconds, struct qkd_sim_stats *st);

#endif
