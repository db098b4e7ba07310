/* optical_int.h - private to lib/optical: the simulator's internals.
 *
 * Sampling model (docs/optical-model.md): in one slot, a mode (bases equal or
 * not) is a list of independent sources, each a Poisson count (photons or
 * pairs of one fate) or a Bernoulli event (a dark count). "Active" sources
 * light detectors; the rest only feed the ground truth. A slot is an event
 * when some active source is non-zero; P(no event) is the same in both modes,
 * so event slots form a Bernoulli process independent of the bases and the
 * gap to the next one is geometric. Given an event, the first non-zero active
 * source is drawn from its exact conditional law, it is sampled conditioned
 * on >= 1, and every later source unconditionally.
 */
#ifndef QKD_OPTICAL_INT_H
#define QKD_OPTICAL_INT_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "qkd/optical.h"

/* Even bits of w to the low half, odd bits to the high half (a fair word
 * holds 32 slots as basis, value pairs: the simulator's Alice, and the
 * fiber emitter's packed choices). */
#ifdef __BMI2__
#include <immintrin.h>
static inline uint64_t opt_deinterleave(uint64_t w)
{
	return _pext_u64(w, 0x5555555555555555ull) |
	       (_pext_u64(w, 0xaaaaaaaaaaaaaaaaull) << 32);
}
#else
static inline uint64_t opt_deinterleave(uint64_t w)
{
	static const uint64_t m[5] = {0x3333333333333333ull, 0x0f0f0f0f0f0f0f0full,
				      0x00ff00ff00ff00ffull, 0x0000ffff0000ffffull,
				      0x00000000ffffffffull};
	uint64_t even = w & 0x5555555555555555ull, odd = (w >> 1) & 0x5555555555555555ull;

	/* Compress each 0x55-spaced half to 32 contiguous bits. */
	for (int sh = 1, i = 0; i < 5; i++, sh <<= 1) {
		even = (even | (even >> sh)) & m[i];
		odd = (odd | (odd >> sh)) & m[i];
	}
	return even | (odd << 32);
}
#endif

/* Channel randomness is restarted per block of 2^16 slots, so any slot range
 * can be simulated without the slots before it (geometric gaps are
 * memoryless, so the restart is exact). */
#define OPT_BLOCK_SHIFT 16
#define OPT_BLOCK_SLOTS ((uint64_t)1 << OPT_BLOCK_SHIFT)
#define OPT_SRC_MAX 16
#define OPT_POISSON_KMAX 4000u	/* inversion loop bound; mu <= 100 keeps far below */

/* Detector bits of a fired mask. For the weak-coherent source Bob's two bits
 * mean "the detector of Alice's value" (B0) and "the other one" (B1) until
 * opt_event_fill maps them to absolute values. */
enum { OPT_A0 = 1, OPT_A1 = 2, OPT_B0 = 4, OPT_B1 = 8 };

/* What one unit of a source counts toward in the ground truth. */
enum {
	OPT_R_SENT = 1,		/* a photon (WCP) or pair (SPDC) emitted */
	OPT_R_A_ARR = 2,	/* reached Alice's detectors */
	OPT_R_A_DET = 4,	/* detected by Alice */
	OPT_R_B_ARR = 8,	/* reached Bob's detectors */
	OPT_R_B_DET = 16,	/* detected by Bob */
};

struct opt_key {
	uint64_t k0, k1;
};

struct opt_source {
	double mean;		/* Poisson mean, or Bernoulli probability */
	double q;		/* P(count == 0) */
	double p1;		/* Poisson: P(count == 1 | count >= 1) */
	double cdf;		/* active: P(first non-zero source <= this | event) */
	uint8_t bernoulli, mask, role;
};

struct opt_mode {
	struct opt_source src[OPT_SRC_MAX];
	unsigned n_active;	/* src[0 .. n_active) light detectors */
	unsigned n;		/* all sources */
	double log_silent;	/* log P(no active source fires) */
	/* tail[s][k] = 1 - prod_{i=s..k} q_i = P(first non-zero of src[s..] is
	 * <= k), for s <= k < n: the rest of a slot is sampled by jumping from
	 * one non-zero source to the next, one uniform per jump. */
	double tail[OPT_SRC_MAX][OPT_SRC_MAX];
};

/* The pulse-level path (sim_eve.c): used when Eve is on the fiber, where
 * the fates of photons are no longer independent Poisson classes. */
struct opt_pulse_cfg {
	/* Per intensity: src[0] photons (WCP) or pairs (SPDC) ~ Poisson(mu_k),
	 * then one Bernoulli(p_d) dark count per detector (mask: which one).
	 * An event is "some source non-zero": a non-empty pulse or a dark count. */
	struct opt_mode src[QKD_INTENSITIES_MAX];
	double tr;			/* fiber transmittance T */
	/* Intercept-resend, weak-coherent: the photons of Eve's resent pulse
	 * that reach Bob's detectors split (thinning) into two independent
	 * Poisson counts, detected (mean mu_E,k T eta_d) and not (mu_E,k T
	 * (1-eta_d)); *_q[k] = exp(-mean). Entangled: res_det[0] is the
	 * transmittance T_E of her single resent photon's line. */
	double res_det[QKD_INTENSITIES_MAX], res_det_q[QKD_INTENSITIES_MAX];
	double res_und[QKD_INTENSITIES_MAX], res_und_q[QKD_INTENSITIES_MAX];
	double bs_line;			/* beamsplit: Bob's line, min(1, T/(1-F)) */
	/* F + (1-F) bs_line eta_d: one uniform gives a photon's fate. */
	double bs_cut;
	double s1, s2;			/* PNS: P(forward) for n = 1 and n >= 2 */
	uint64_t thr_f, thr_s1, thr_s2;	/* the above times 2^32 (Eve's decisions) */
};

struct qkd_sim {
	struct qkd_link_params p;
	struct opt_key alice;		/* Alice's (basis, value, intensity) per slot */
	struct opt_key alice_dc;	/* Alice's random bit on a double click */
	struct opt_key bob;		/* Bob's basis per slot */
	struct opt_key bob_dc;		/* Bob's random bit on a double click */
	struct opt_key chan;		/* physics: gaps, photon counts */
	struct opt_key eve;		/* Eve's choices per slot (pulse-level path) */
	/* Detection-level path: [intensity][0] bases differ, [1] bases match. */
	struct opt_mode mode[QKD_INTENSITIES_MAX][2];
	/* Candidates are the events of the brightest intensity (index 0). */
	double log_silent;		/* log P(slot is not a candidate) */
	double inv_log_silent;		/* 1 / log_silent (-0 when every slot is one) */
	/* accept[k] = P(event | k) / P(event | 0): a candidate in a slot of
	 * intensity k is kept with this probability (thinning). */
	double accept[QKD_INTENSITIES_MAX];
	bool relative_b;		/* WCP: B0/B1 relative to Alice's value */
	bool pulse_level;		/* sim_eve.c's path instead of block.c's */
	/* Per-slot choice words (slot_rng.c). */
	bool alice_word;		/* decoys or p_x != 1/2: one word per slot */
	bool bob_word;			/* p_x != 1/2 */
	uint32_t a_thr_basis, a_thr_value;	/* 21-bit thresholds */
	uint32_t a_cut[2];		/* 22-bit cumulative intensity thresholds */
	uint64_t b_thr;			/* p_x 2^64 */
	struct opt_pulse_cfg pl;
};

/* What Eve did in an event slot (opt_event.eve). */
enum { OPT_EVE_KNOWN = 1, OPT_EVE_TOUCHED = 2 };
/* Choices not drawn yet (opt_event.lazy, pulse-level path only). */
enum { OPT_LAZY_ALICE = 1, OPT_LAZY_BOB = 2 };

/* One event slot with everything the simulator knows; party 0 Alice, 1 Bob. */
struct opt_event {
	uint64_t slot;
	uint8_t basis[2], value[2], flags[2];
	uint8_t clicked[2];	/* WCP: Alice's entry is 0 (she has no detectors) */
	uint8_t intensity;	/* Alice's intensity index */
	uint8_t eve;		/* OPT_EVE_* */
	uint8_t lazy;		/* OPT_LAZY_*: 0 once the event is complete */
	uint32_t n_sent, n_arr[2], n_det[2];
};

/* Counter-based streams: one 64-bit channel stream per block. */
struct opt_stream {
	uint64_t x;
};

struct opt_block_it {
	const struct qkd_sim *s;
	struct opt_stream cs;
	uint64_t pos, end;
	bool done;
};

static inline uint64_t opt_fmix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Keyed mixer: a bijection of ctr for a fixed key, two splitmix64 finalizer
 * rounds with the two key words. Simulation quality, not cryptographic. */
static inline uint64_t opt_mix(const struct opt_key *k, uint64_t ctr)
{
	return opt_fmix64(opt_fmix64(ctr * 0x9e3779b97f4a7c15ULL + k->k0) ^ k->k1);
}

static inline uint64_t opt_next64(struct opt_stream *cs)
{
	cs->x += 0x9e3779b97f4a7c15ULL;
	return opt_fmix64(cs->x);
}

/* Uniform in [0, 1). */
static inline double opt_u01(struct opt_stream *cs)
{
	return (double)(opt_next64(cs) >> 11) * 0x1.0p-53;
}

/* Uniform in (0, 1]: safe for log(). */
static inline double opt_u_open0(struct opt_stream *cs)
{
	return (double)((opt_next64(cs) >> 11) + 1) * 0x1.0p-53;
}

/* P(event | k) / P(event | 0) from the two log P(no event): the probability
 * of keeping a candidate slot of intensity k (0 when no slot is ever one). */
static inline double opt_thin_ratio(double log_silent_k, double log_silent_0)
{
	double a = log_silent_0 < 0 ? expm1(log_silent_k) / expm1(log_silent_0) : 0.0;

	return a < 1.0 ? a : 1.0;
}

/* slot_rng.c */
void opt_keys_derive(struct qkd_sim *s);
/* Thresholds of the per-slot choice words from s->p. */
void opt_choices_setup(struct qkd_sim *s);
void opt_stream_init(struct opt_stream *cs, const struct qkd_sim *s, uint64_t block);
void opt_alice_choice(const struct qkd_sim *s, uint64_t slot, uint8_t *basis,
		      uint8_t *value, uint8_t *intensity);
uint8_t opt_bob_basis(const struct qkd_sim *s, uint64_t slot);
uint8_t opt_dc_bit(const struct opt_key *k, uint64_t slot);
/* Eve's per-slot word: bits 0..31 her decision (compare with a thr_*),
 * bit 32 her basis, bit 33 her guess. */
static inline uint64_t opt_eve_word(const struct qkd_sim *s, uint64_t slot)
{
	return opt_mix(&s->eve, slot);
}

/* sources.c */
void opt_mode_clear(struct opt_mode *m);
void opt_add_poisson(struct opt_mode *m, double mean, unsigned mask, unsigned role);
void opt_add_bernoulli(struct opt_mode *m, double prob, unsigned mask, unsigned role);
/* Call once after the active sources are added, before the truth-only ones. */
void opt_mode_seal_active(struct opt_mode *m);
/* Call once after all sources are added. */
void opt_mode_seal(struct opt_mode *m);
/* Fill cnt[0 .. m->n) for an event slot (some active source non-zero). */
void opt_sample_counts(const struct opt_mode *m, struct opt_stream *cs, uint32_t *cnt);
/* Binomial(m, p), exact by inversion. */
uint32_t opt_binomial(struct opt_stream *cs, uint32_t m, double p);
/* Poisson(mean) with q = exp(-mean) precomputed. */
uint32_t opt_poisson(struct opt_stream *cs, double mean, double q);

/* sim_wcp.c, sim_entangled.c: the two modes' source tables and closed forms. */
void opt_wcp_modes(const struct qkd_link_params *p, struct opt_mode mode[2]);
void opt_wcp_expected(const struct qkd_link_params *p, double *p_click, double *qber);
void opt_spdc_modes(const struct qkd_link_params *p, struct opt_mode mode[2]);
void opt_spdc_expected(const struct qkd_link_params *p, double *p_click, double *qber);

/* sim_eve.c: the pulse-level path. opt_pulse_setup fills s->pl and the
 * candidate process; opt_pulse_fill completes one candidate slot and
 * returns false when thinning drops it. */
void opt_pulse_setup(struct qkd_sim *s);
bool opt_pulse_fill(const struct qkd_sim *s, struct opt_stream *cs, struct opt_event *ev);
/* The pulse-level path draws the parties' choices of a slot only when
 * something depends on them (most candidate slots end with no click):
 * these fill ev->basis[0], value[0] (Alice) or basis[1] (Bob) once. */
static inline void opt_ev_alice(const struct qkd_sim *s, struct opt_event *ev)
{
	uint8_t k;

	if (ev->lazy & OPT_LAZY_ALICE) {
		opt_alice_choice(s, ev->slot, &ev->basis[0], &ev->value[0], &k);
		ev->lazy &= (uint8_t)~OPT_LAZY_ALICE;
	}
}

static inline void opt_ev_bob(const struct qkd_sim *s, struct opt_event *ev)
{
	if (ev->lazy & OPT_LAZY_BOB) {
		ev->basis[1] = opt_bob_basis(s, ev->slot);
		ev->lazy &= (uint8_t)~OPT_LAZY_BOB;
	}
}

/* m photons carrying state (basis, value), where OPT_ALICE_STATE for
 * either means Alice's basis / value, enter a line of transmittance `line`
 * to Bob's detectors; each is detected with eta_d and routed as in
 * docs/optical-model.md. Only the detected ones are drawn now, Bin(m, line
 * eta_d): usually one uniform and none. Whether the others reached his
 * detectors matters only to the truth of a click: *und counts them for
 * opt_bob_arrivals. Adds to ev's Bob truth; returns the fired bits (OPT_B0,
 * OPT_B1, absolute values). */
#define OPT_ALICE_STATE 0xff
unsigned opt_bob_line(const struct qkd_sim *s, struct opt_stream *cs, struct opt_event *ev,
		      uint32_t m, double line, uint8_t basis, uint8_t value, uint32_t *und);
/* Beamsplitting, one photon in Alice's basis with the given value: one
 * uniform gives its fate, to Eve (++*held), detected by Bob (the fired
 * bits), or not (++*und, for opt_bob_arrivals on the line bs_line). */
unsigned opt_split_one(const struct qkd_sim *s, struct opt_stream *cs, struct opt_event *ev,
		       uint8_t value, uint32_t *held, uint32_t *und);
/* d detected photons of state (basis, value) -> Bob's fired bits: each
 * reaches the detector of the state's value with 1 - e_opt when Bob's basis
 * is the state's, with 1/2 otherwise. */
unsigned opt_bob_route(const struct qkd_sim *s, struct opt_stream *cs, struct opt_event *ev,
		       uint32_t d, uint8_t basis, uint8_t value);
/* If Bob clicked (bits of fired), how many of the und undetected photons of
 * a line reached his detectors: each did with line (1-eta_d) / (1 - line
 * eta_d), its probability given it was not detected. */
void opt_bob_arrivals(const struct qkd_sim *s, struct opt_stream *cs, struct opt_event *ev,
		      unsigned fired, uint32_t und, double line);
/* sim_eve_spdc.c: the ev->n_sent pairs of an entangled slot, Eve on Bob's
 * arm; darks are the dark counts' bits. Returns the fired bits of all four
 * detectors, darks included. */
unsigned opt_spdc_pairs(const struct qkd_sim *s, struct opt_stream *cs, struct opt_event *ev,
			unsigned darks);

/* eve_setup.c: Eve's constants for the pulse-level path. */
void opt_eve_setup(const struct qkd_link_params *p, struct opt_pulse_cfg *pl);

/* sim.c: a simulator forced onto the pulse-level path even with no Eve,
 * so tests can check that path against the closed forms. Same contract as
 * qkd_sim_new. Internal; not in the public header. */
__attribute__((warn_unused_result))
int opt_sim_new_pulse_level(struct qkd_sim **out, const struct qkd_link_params *p);

/* block.c: iterate the event slots of one block up to end (exclusive). */
void opt_block_begin(struct opt_block_it *it, const struct qkd_sim *s,
		     uint64_t block, uint64_t end);
bool opt_block_next(struct opt_block_it *it, struct opt_event *ev);
/* A party's reading of its two detector bits (bit 0 value 0, bit 1 value
 * 1): click, double-click flag and value (the dc key's bit on a double). */
void opt_party_reading(struct opt_event *ev, int who, unsigned bits, const struct opt_key *dc);
/* Ground truth of one party (0 Alice, 1 Bob) of an event, saturated to 8 bits. */
void opt_event_truth(const struct opt_event *ev, int who, struct qkd_det_truth *t);

#endif
