/* qkd/engine.h - the QKD protocol engine: one party of a link.
 *
 * Both parties run the same pipeline of DESIGN section 4, Bob driving and
 * Alice answering, over a qkd_channel and nothing else:
 *
 *   sifting -> QBER sample -> error correction (frames in flight) ->
 *   error verification -> entropy estimation -> privacy amplification
 *
 * Each stage consumes the previous stage's blocks; the error-correction code
 * and the defense function are chosen by name. Message formats are in
 * docs/protocol.md.
 */
#ifndef QKD_ENGINE_H
#define QKD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/bits.h"
#include "qkd/channel.h"
#include "qkd/decoy.h"
#include "qkd/entropy.h"
#include "qkd/randomness.h"
#include "qkd/rng.h"
#include "qkd/source.h"

#define QKD_EC_NAME_MAX 32

struct qkd_engine_config {
	char ec[QKD_EC_NAME_MAX];	/* error-correction code */
	size_t frame_bits;		/* frame length for error correction */
	unsigned frames_in_flight;	/* frames corrected concurrently */
	size_t sample_bits;		/* bits disclosed to estimate the first QBER */
	size_t pa_block_bits;		/* largest privacy-amplification block */
	double abort_qber;		/* no key above this error rate */
	/* Entropy-estimation settings: source, defense, confidence, nonrandom,
	 * pa_margin and mu are taken from here; the counts are per block. */
	struct qkd_entropy_in estimate;
	/* Decoy-state settings, used when estimate.defense is
	 * QKD_DEFENSE_DECOY (Lim et al. 2014; docs/decoy.md): intensities mu[3]
	 * (mu[0] the signal), their probabilities, P(X) for both parties, and
	 * the security parameters. Sifted X-basis bits become the key; every
	 * sifted Z-basis bit is disclosed to count errors per intensity. */
	struct {
		double mu[3], p_mu[3], p_x;
		double eps_sec, eps_cor;
	} decoy;
	/* The link's QBER in earlier rounds, as errors and bits corrected (0
	 * and 0: none). Bob sizes the first error-correction blocks from it
	 * together with the sample, which alone (1024 bits) often comes out
	 * low and swings the round trips eightfold. It never decides an abort
	 * and never enters the entropy estimate. */
	uint64_t prior_errors, prior_bits;
	/* Optional progress callback (stage name, fraction done in [0,1]). */
	void (*progress)(void *ctx, const char *stage, double done);
	void *progress_ctx;
};

void qkd_engine_config_default(struct qkd_engine_config *cfg);
/* 0, or QKD_ERR_INVAL with *why naming the bad setting. */
int qkd_engine_config_check(const struct qkd_engine_config *cfg, const char **why);

enum qkd_abort_reason {
	QKD_ABORT_NONE = 0,
	QKD_ABORT_NO_SIFTED,		/* nothing survived sifting */
	QKD_ABORT_SAMPLE_QBER,		/* the QBER sample is above the threshold */
	QKD_ABORT_QBER,			/* the corrected QBER is above the threshold */
};

const char *qkd_abort_reason_text(enum qkd_abort_reason r);

/* What one party saw. Both parties' figures agree except the CPU times. */
struct qkd_engine_stats {
	uint64_t pulses, detections, double_clicks;
	uint64_t sifted_bits;		/* after sifting, before the sample */
	uint64_t sample_bits, sample_errors;
	uint64_t frames, frame_bits;	/* frames corrected and their bits */
	uint64_t frames_failed_verification;
	uint64_t errors_corrected;	/* over all frames */
	uint64_t ec_disclosed_bits;	/* parity bits revealed by error correction */
	uint64_t verify_disclosed_bits;	/* tag bits revealed by verification */
	double ec_ideal_bits;		/* sum over frames of n h(e/n) */
	uint64_t pa_blocks, pa_input_bits;
	struct qkd_entropy_out entropy;	/* terms summed over the blocks, sd's in quadrature */
	uint64_t secret_bits;
	enum qkd_abort_reason abort;
	double qber_abort_value;	/* the QBER that caused the abort */
	/* Randomness tests (docs/randomness.md). Alice: her value choices over
	 * every pulse (they set the non-randomness term) and her bases over the
	 * detections Bob reported; Bob: his bases over his detections. */
	bool rnd_tested;
	struct qkd_randomness_result rnd_value, rnd_basis;
	uint64_t rnd_bits;		/* value choices tested (Alice), bases (Bob) */
	uint64_t rnd_basis_bits;	/* bases tested */
	/* Decoy-state defense: the counts the bound was computed from and every
	 * term of it (decoy_used false otherwise). decoy_discarded_bits: key
	 * bits lost with frames that failed verification, taken off the bound
	 * (each could have been a single-photon bit). */
	bool decoy_used;
	struct qkd_decoy_counts decoy_in;
	struct qkd_decoy_out decoy_out;
	uint64_t decoy_discarded_bits;
	/* Simulator ground truth (Bob, when his source supplies it): key bits
	 * that entered privacy amplification and that Eve knew exactly. */
	bool eve_truth;
	uint64_t eve_known_bits;
	double cpu_sift, cpu_sample, cpu_ec, cpu_verify, cpu_pa;	/* seconds, this party */
	uint64_t bytes_sent, bytes_recv, messages_sent;	/* AUTH frames included */
	uint64_t auth_tags;		/* AUTH frames this party sent (qkd/channel.h) */
	uint64_t ec_round_trips;	/* EC_REQ/EC_REPLY pairs */
};

/* Where a round's QBER figure comes from (qkd_engine_qber). */
enum qkd_qber_source {
	QKD_QBER_NONE = 0,	/* no sample taken and nothing corrected: no figure */
	QKD_QBER_CORRECTED,	/* errors corrected / bits corrected: exact */
	QKD_QBER_SAMPLE,	/* the disclosed sample (decoy: the Z-basis test set):
				 * an estimate, the only figure of a round that
				 * aborted on it */
};

/* The QBER of the round st describes, and its source: the error-correction
 * count when frames were corrected (even if the round then aborted on it),
 * otherwise the sample's error rate when a sample was compared (the round
 * aborted on it, or there was nothing left to correct), otherwise NaN with
 * QKD_QBER_NONE. Every report of a round's QBER (qkd sim, qkd sweep, the
 * node's status) takes it from here so they agree (docs/protocol.md). */
void qkd_engine_qber(const struct qkd_engine_stats *st, double *qber,
		     enum qkd_qber_source *source);

/* "corrected", "sample" or "none": the qber_source of the JSON reports. */
const char *qkd_qber_source_name(enum qkd_qber_source s);

/* Run Alice's side until Bob ends the run. key is uninitialized on entry and
 * receives the final secret key (caller cleans up). rng supplies Alice's
 * protocol choices (PA seeds). */
__attribute__((warn_unused_result))
int qkd_engine_alice(struct qkd_channel *ch, const struct qkd_engine_config *cfg,
		     const struct qkd_alice_source *src, struct qkd_rng *rng,
		     struct qkd_engine_stats *st, struct qkd_bits *key);

/* Run Bob's side: pulls every chunk of src, drives the whole pipeline and
 * ends the run. rng supplies Bob's choices (sample positions, Cascade
 * permutations, verification keys). */
__attribute__((warn_unused_result))
int qkd_engine_bob(struct qkd_channel *ch, const struct qkd_engine_config *cfg,
		   const struct qkd_bob_source *src, struct qkd_rng *rng,
		   struct qkd_engine_stats *st, struct qkd_bits *key);

/* Binary entropy h(p) in bits (0 at p = 0 or 1). */
double qkd_binary_entropy(double p);

#endif
