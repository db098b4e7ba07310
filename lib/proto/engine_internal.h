/* Private to the engine (engine_common.c, engine_alice.c, engine_bob.c). */
#ifndef QKD_ENGINE_INTERNAL_H
#define QKD_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/bits.h"
#include "qkd/engine.h"
#include "qkd/sysutil.h"
#include "qkd/wire.h"

#define ENGINE_PROTO_VERSION 1
/* Bounds on what a peer may ask for (hostile-input limits). */
#define ENGINE_MAX_DETECTIONS ((size_t)1 << 32)
#define ENGINE_MAX_FRAMES ((size_t)1 << 24)
#define ENGINE_MAX_CHUNK_SLOTS ((uint64_t)1 << 32)
#define ENGINE_MAX_FRAME_BITS ((size_t)1 << 28)
/* Slots whose raw choices are generated and tested at once (bounds memory
 * whatever chunk size a peer reports). */
#define ENGINE_CHOICES_SLOTS ((uint64_t)1 << 24)

/* A frame as it moves through correction, verification and amplification. */
struct engine_frame {
	struct qkd_bits bits;	/* sifted, then corrected (secret) */
	uint64_t errors;	/* errors corrected (Alice learns it from ESTIMATE) */
	uint64_t disclosed;	/* error-correction parity bits revealed */
	bool corrected, verified, failed;
};

struct engine_frames {
	struct engine_frame *f;
	size_t n;
};

void engine_frames_cleanup(struct engine_frames *fr);

/* Cut used bits of pool into frames of about cfg->frame_bits each (equal
 * sizes, at least one frame). Both parties cut identically. */
int engine_frames_cut(struct engine_frames *fr, const struct qkd_bits *pool, size_t used,
		      size_t frame_bits);

/* HELLO: the settings both parties must share. */
void engine_hello_write(struct qkd_wbuf *w, const struct qkd_engine_config *cfg);
/* 0 when the peer's settings equal ours; else QKD_ERR_PROTO and *why. */
int engine_hello_check(struct qkd_rbuf *r, const struct qkd_engine_config *cfg,
		       const char **why);

/* Remove the sorted, distinct positions pos[0..k) from pool[0..*used). */
void engine_pool_remove(struct qkd_bits *pool, size_t *used, const uint64_t *pos, size_t k);

/* Bits, corrected errors and disclosed bits (parities + tags) of the
 * verified frames among [first, first+count). */
void engine_block_sums(const struct engine_frames *fr, size_t first, size_t count,
		       uint64_t *bits, uint64_t *errors, uint64_t *disclosed);

/* The entropy estimate and output length for frames [first, first+count)
 * that passed verification. Both parties call it with the same figures and
 * must get the same m. m is 0 when the block's QBER exceeds the abort
 * threshold, whatever the estimate says. nonrandom_per_bit (from the
 * randomness tests, 0 if none) adds ceil(b * it) bits to the
 * non-randomness term. */
int engine_block_estimate(const struct qkd_engine_config *cfg, const struct qkd_engine_stats *st,
			  const struct engine_frames *fr, size_t first, size_t count,
			  double nonrandom_per_bit, struct qkd_entropy_out *out, uint64_t *m,
			  uint64_t *block_bits, bool *qber_over);

/* Assess accumulated randomness counts at confidence c into *res; returns
 * the deficit per bit to charge (1, everything, when too few bits). */
double engine_randomness_assess(const struct qkd_randomness_stats *rs, double c,
				struct qkd_randomness_result *res);

/* Record that a block lost its key to the QBER threshold. */
void engine_note_qber_abort(struct qkd_engine_stats *st, const struct engine_frames *fr,
			    size_t first, size_t count);

/* Add a block's estimate to the run's totals (sd's in quadrature). */
void engine_stats_add_entropy(struct qkd_engine_stats *st, const struct qkd_entropy_out *e);

/* Append src to key[0..*used) (key->n is the capacity; it grows). */
int engine_key_append(struct qkd_bits *key, size_t *used, const struct qkd_bits *src);

/* Concatenate the bits of frames [first, first+count) into out (uninitialized). */
int engine_block_concat(const struct engine_frames *fr, size_t first, size_t count,
			struct qkd_bits *out);

/* Next block of verified frames starting at *first: sets *count so the block
 * holds at most max_bits (at least one frame). Returns false when none left. */
bool engine_next_block(const struct engine_frames *fr, size_t *first, size_t *count,
		       size_t max_bits);

/* End of a party's run: trim the key to key_used bits (or drop it when rc
 * is an error) and copy the channel's counters into st. Returns rc, or the
 * error of the trim. */
int engine_finish(int rc, const struct qkd_channel *ch, struct qkd_engine_stats *st,
		  struct qkd_bits *key, size_t key_used);

/* Tell the peer why the run stops (an ABORT message; best effort). */
void engine_send_abort(struct qkd_channel *ch, struct qkd_wbuf *msg, const char *why);
/* The end of a run: Bob closes his batch, Alice checks it and closes hers,
 * Bob checks that. So neither party returns a key before everything it
 * received in the run is authenticated (docs/authentication.md, "Where the
 * batches close"). */
__attribute__((warn_unused_result))
int engine_confirm(struct qkd_channel *ch, bool alice);

void engine_progress(const struct qkd_engine_config *cfg, const char *stage, double done);

/* engine_decoy.c: decoy-state mode (QKD_DEFENSE_DECOY). */
#define QKD_INTENSITIES_ENGINE 3
struct engine_decoy {
	bool on;
	uint64_t n_x[3], n_z[3], m_z[3];	/* per intensity, Lim et al. notation */
	struct qkd_bits test;	/* this party's Z-basis sifted bits; test.n is the capacity */
	size_t test_used;
	uint8_t *test_k;	/* intensity index of each test bit */
	uint64_t key_total;	/* l for the run, after every deduction */
	uint64_t key_bits;	/* verified key bits l is spread over */
};

void engine_decoy_init(struct engine_decoy *d, const struct qkd_engine_config *cfg);
void engine_decoy_cleanup(struct engine_decoy *d);
/* Split the kept detections: X-basis values are appended to pool (and
 * marked in keep_key, initialized by the caller with keep->n bits), Z-basis
 * values to the test set; kept_intensity[j] is the intensity of the j-th
 * kept detection. QKD_ERR_PROTO for an intensity index >= 3. */
int engine_decoy_sift(struct engine_decoy *d, struct qkd_bits *pool, size_t *used,
		      const struct qkd_bits *values, const struct qkd_bits *basis,
		      const struct qkd_bits *keep, const uint8_t *kept_intensity,
		      struct qkd_bits *keep_key);
/* The test set as a read-only view of test_used bits. */
void engine_decoy_test_view(const struct engine_decoy *d, struct qkd_bits *view);
/* Count m_{Z,k} against the peer's test bits (test_used bits). */
void engine_decoy_count_errors(struct engine_decoy *d, const struct qkd_bits *theirs);
uint64_t engine_decoy_test_errors(const struct engine_decoy *d);
/* The run's key length from every count (fills st->decoy_*). */
int engine_decoy_bound(struct engine_decoy *d, const struct qkd_engine_config *cfg,
		       struct qkd_engine_stats *st, const struct engine_frames *fr,
		       double nonrandom_per_bit);
/* A privacy-amplification block's share of the run's length (the decoy
 * counterpart of engine_block_estimate). */
void engine_decoy_block(const struct engine_decoy *d, const struct qkd_engine_config *cfg,
			const struct engine_frames *fr, size_t first, size_t count,
			double nonrandom_per_bit, struct qkd_entropy_out *out, uint64_t *m,
			uint64_t *block_bits, bool *qber_over);

#endif
