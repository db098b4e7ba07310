/* qkd/recording.h - the `file` optical backend: recorded detection data
 * (DESIGN.md sections 1 and 3).
 *
 * A recording of one link is two files, written by each party's apparatus
 * (or by the simulator, `qkd sim --record`): Alice's choices for every slot
 * and Bob's detections. docs/recording-format.md specifies both, byte by
 * byte (version 1, big-endian). The readers below turn them back into the
 * engine's two source interfaces (qkd/source.h), so the same protocol
 * engine runs on a real link's output.
 *
 * Integrity: every header and every block carries a BLAKE2b-128 digest, and
 * every block's digest binds it to the recording id and its position. A
 * truncated, extended, corrupted or spliced file is refused with an error
 * code and a `why` sentence; a reader never hands out a bit it has not
 * checked. Allocations are bounded by what the header declares and by the
 * size of the file, whichever is smaller.
 *
 * Error codes (qkd/error.h):
 *   QKD_ERR_IO      the file could not be opened, read or written (errno kept)
 *   QKD_ERR_PROTO   not a recording of this party, unsupported version,
 *                   malformed field, truncated or trailing bytes, incomplete
 *   QKD_ERR_VERIFY  a header or block digest does not match: corrupted
 *   QKD_ERR_RANGE   a count outside its bounds (slots, block size, detections)
 *   QKD_ERR_INVAL   the caller broke a documented precondition
 *   QKD_ERR_NOMEM   allocation failed
 * Every `why` is a static sentence (never NULL after an error when why is
 * not NULL); on success it is left untouched.
 *
 * Secrets: Alice's values and Bob's values are raw key bits. Every buffer
 * that holds them is wiped before it is freed.
 */
#ifndef QKD_RECORDING_H
#define QKD_RECORDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/bits.h"
#include "qkd/optical.h"

#define QKD_REC_VERSION		1
#define QKD_REC_MAGIC_BYTES	8
#define QKD_REC_ID_BYTES	16
#define QKD_REC_DIGEST_BYTES	16
#define QKD_REC_ALICE_HEADER	128	/* bytes, digest included */
#define QKD_REC_BOB_HEADER	72
#define QKD_REC_ALICE_FILE	"alice.qkdrec"
#define QKD_REC_BOB_FILE	"bob.qkdrec"

/* Magic numbers: 0x89 "QKDrec" and the party ('A' or 'B'). */
extern const uint8_t qkd_rec_alice_magic[QKD_REC_MAGIC_BYTES];
extern const uint8_t qkd_rec_bob_magic[QKD_REC_MAGIC_BYTES];

/* Header flags (both files). */
#define QKD_REC_F_COMPLETE	0x01	/* the writer finished: every block is there */
#define QKD_REC_F_SIMULATED	0x02	/* Alice: made by the simulator; seed is its --seed */

/* Geometry bounds. Alice's blocks hold 2^block_log2 slots, Bob's blocks
 * block_events events (all but the last block exactly that many). */
#define QKD_REC_BLOCK_LOG2_MIN	12
#define QKD_REC_BLOCK_LOG2_MAX	24
#define QKD_REC_BLOCK_LOG2_DEFAULT 16
#define QKD_REC_BLOCK_EVENTS_MAX ((uint32_t)1 << 20)
#define QKD_REC_BLOCK_EVENTS_DEFAULT ((uint32_t)1 << 16)

/* What a header says. Alice's file carries every field but detections and
 * block_events; Bob's carries slots, detections, block_events, flags and id
 * (the rest reads back as zero). */
struct qkd_rec_info {
	enum qkd_source_kind source;
	uint64_t slots;				/* 1 .. QKD_PULSES_MAX */
	double rate_hz;				/* slot rate, > 0 */
	unsigned intensities;			/* 1, or 3 (weak-coherent with decoys) */
	double mu[QKD_INTENSITIES_MAX];		/* mu[0] signal, mu[1..2] decoys (0 if unused) */
	double p_intensity[QKD_INTENSITIES_MAX];/* probabilities of each intensity */
	double p_x;				/* P(basis X) of both parties' choices */
	uint8_t flags;				/* QKD_REC_F_* */
	uint64_t seed;				/* simulator seed (QKD_REC_F_SIMULATED), else 0 */
	uint8_t id[QKD_REC_ID_BYTES];		/* the same in both files of a recording */
	unsigned block_log2;			/* Alice; writers: 0 means the default */
	uint32_t block_events;			/* Bob; writers: 0 means the default */
	uint64_t detections;			/* Bob; set by the writer at finish */
};

/* Bit planes per slot in Alice's blocks: 2 (basis, value), or 4 with
 * decoys (+ intensity low and high bit) or for an entangled source
 * (+ detected, double click). */
unsigned qkd_rec_planes(const struct qkd_rec_info *info);

/* The digest of docs/recording-format.md, exposed for tools and tests:
 * BLAKE2b with a 16-byte output over p[0..n) when id is NULL (headers),
 * else over id (16 bytes) || index (8 bytes, big-endian) || p[0..n)
 * (blocks). */
void qkd_rec_digest(uint8_t out[QKD_REC_DIGEST_BYTES], const uint8_t *id, uint64_t index,
		    const uint8_t *p, size_t n);

/* Fill info from a simulated link: its source, slots, rate, intensities,
 * P(X), seed (QKD_REC_F_SIMULATED), default geometry, and an id derived
 * from every link parameter, so recording the same run twice gives the
 * same files. */
void qkd_rec_info_from_link(struct qkd_rec_info *info, const struct qkd_link_params *p);
/* The link parameters a replay runs with: qkd_link_params_default, then
 * source, pulses, rate, mu, decoys, P(X) and seed from Alice's header. The
 * fields a recording does not know (distance, efficiency, Eve...) keep
 * their defaults and mean nothing. */
void qkd_rec_info_to_link(const struct qkd_rec_info *info, struct qkd_link_params *p);
/* 0 if Alice's header fields are in their domains (as a writer needs and
 * a reader checks), else QKD_ERR_RANGE for a count or geometry,
 * QKD_ERR_PROTO for a bad parameter, with *why. */
__attribute__((warn_unused_result))
int qkd_rec_info_check(const struct qkd_rec_info *info, const char **why);

/* ---- Writers (lib/optical/rec_write.c) ----
 *
 * new creates (truncates) path and writes a header marked incomplete;
 * add appends the next slots or detections in order; finish writes the
 * last block and rewrites the header as complete; free closes (an
 * unfinished file stays marked incomplete, so no reader accepts it) and
 * wipes. info is copied. */
struct qkd_rec_alice_writer;
struct qkd_rec_bob_writer;

/* The next n consecutive slots of Alice's record: bit i of each string is
 * slot (slots written so far) + i. Everything is borrowed. */
struct qkd_rec_slots {
	size_t n;
	const struct qkd_bits *basis;		/* n bits: 0 Z, 1 X */
	const struct qkd_bits *value;		/* n bits, secret */
	const uint8_t *intensity;		/* n indices 0..2 (decoy recordings), else NULL */
	const struct qkd_bits *detected;	/* entangled: n bits, she detected in the slot */
	const struct qkd_bits *dbl;		/* entangled: n bits, her double click */
};

__attribute__((warn_unused_result))
int qkd_rec_alice_writer_new(struct qkd_rec_alice_writer **w, const char *path,
			     const struct qkd_rec_info *info, const char **why);
/* QKD_ERR_RANGE past info->slots; QKD_ERR_INVAL for a missing or extra
 * string, an intensity > 2, or (entangled) a value or double click in a
 * slot without a detection. */
__attribute__((warn_unused_result))
int qkd_rec_alice_writer_add(struct qkd_rec_alice_writer *w, const struct qkd_rec_slots *s,
			     const char **why);
/* QKD_ERR_INVAL when fewer than info->slots slots were added. */
__attribute__((warn_unused_result))
int qkd_rec_alice_writer_finish(struct qkd_rec_alice_writer *w, const char **why);
void qkd_rec_alice_writer_free(struct qkd_rec_alice_writer *w);

/* Bob's writer uses info->slots, info->id and info->block_events. */
__attribute__((warn_unused_result))
int qkd_rec_bob_writer_new(struct qkd_rec_bob_writer **w, const char *path,
			   const struct qkd_rec_info *info, const char **why);
/* Append d[0..n): slots strictly increasing across calls and < slots
 * (else QKD_ERR_INVAL / QKD_ERR_RANGE); basis, value and the
 * QKD_DET_DOUBLE flag are recorded, intensity and other flags are not. */
__attribute__((warn_unused_result))
int qkd_rec_bob_writer_add(struct qkd_rec_bob_writer *w, const struct qkd_detection *d,
			   size_t n, const char **why);
__attribute__((warn_unused_result))
int qkd_rec_bob_writer_finish(struct qkd_rec_bob_writer *w, const char **why);
void qkd_rec_bob_writer_free(struct qkd_rec_bob_writer *w);

/* Record the whole simulated link sim into dir/alice.qkdrec and
 * dir/bob.qkdrec (dir is created if missing). Alice's choices come from
 * qkd_sim_alice_choices, her intensities from qkd_sim_alice_lookup, her
 * detections (entangled) from qkd_sim_alice_chunk; Bob's from
 * qkd_sim_bob_chunk. The simulator's ground truth is not recorded. */
__attribute__((warn_unused_result))
int qkd_rec_record_sim(const struct qkd_sim *sim, const char *dir, const char **why);

/* ---- Readers (lib/optical/rec_read.c) ----
 *
 * open checks the header (magic, version, digest, every field, complete)
 * and that the file size is exactly what the header declares (Alice) or can
 * hold the declared detections (Bob); blocks are checked as they are read.
 * open_fd takes ownership of fd (closed by free, or on failure). The
 * readers use pread only, so a reader survives fork() and each process may
 * use its own copy. Not thread-safe. free accepts NULL and wipes. */
struct qkd_rec_alice;
struct qkd_rec_bob;

__attribute__((warn_unused_result))
int qkd_rec_alice_open(struct qkd_rec_alice **r, const char *path, const char **why);
__attribute__((warn_unused_result))
int qkd_rec_alice_open_fd(struct qkd_rec_alice **r, int fd, const char **why);
const struct qkd_rec_info *qkd_rec_alice_info(const struct qkd_rec_alice *r);
/* Read and check every block (digest, padding, per-slot rules). */
__attribute__((warn_unused_result))
int qkd_rec_alice_verify(struct qkd_rec_alice *r, const char **why);
/* The contract of qkd_sim_alice_lookup: slots[0..n) strictly increasing
 * and < slots; out[i] gets the slot, her basis, value, intensity and, for
 * an entangled source, QKD_DET_NONE (no detection: value 0) or
 * QKD_DET_DOUBLE. out must not alias slots. */
__attribute__((warn_unused_result))
int qkd_rec_alice_lookup(struct qkd_rec_alice *r, const uint64_t *slots, size_t n,
			 struct qkd_detection *out);
/* The contract of qkd_sim_alice_choices: basis and value of every slot in
 * [first, first+count) (both initialized with count bits); for an
 * entangled source value is left zero, as the simulator's is. */
__attribute__((warn_unused_result))
int qkd_rec_alice_choices(struct qkd_rec_alice *r, uint64_t first, uint64_t count,
			  struct qkd_bits *basis, struct qkd_bits *value);
void qkd_rec_alice_free(struct qkd_rec_alice *r);

__attribute__((warn_unused_result))
int qkd_rec_bob_open(struct qkd_rec_bob **r, const char *path, const char **why);
__attribute__((warn_unused_result))
int qkd_rec_bob_open_fd(struct qkd_rec_bob **r, int fd, const char **why);
const struct qkd_rec_info *qkd_rec_bob_info(const struct qkd_rec_bob *r);
/* The contract of qkd_sim_bob_chunk, read in order: first must be where the
 * previous chunk ended (0 at the start), else QKD_ERR_INVAL. out's truth
 * is never filled (a recording has none); st gets slots, clicks and
 * double_clicks. On error out is emptied. */
__attribute__((warn_unused_result))
int qkd_rec_bob_chunk(struct qkd_rec_bob *r, uint64_t first, uint64_t count,
		      struct qkd_det_list *out, struct qkd_sim_stats *st);
/* Read and check every block to the end of the file, then rewind (the next
 * chunk starts at slot 0 again). */
__attribute__((warn_unused_result))
int qkd_rec_bob_verify(struct qkd_rec_bob *r, const char **why);
void qkd_rec_bob_free(struct qkd_rec_bob *r);

/* Check a recording directory before a replay: both files open and verify
 * completely, carry the same id and slot count. On success *info is
 * Alice's header. On failure *file names the file at fault (a static
 * string, QKD_REC_ALICE_FILE or QKD_REC_BOB_FILE) and *why says why. */
__attribute__((warn_unused_result))
int qkd_rec_check_dir(const char *dir, struct qkd_rec_info *info, const char **file,
		      const char **why);

/* ---- The engine's sources (lib/optical/source_file.c) ---- */
struct qkd_alice_source;
struct qkd_bob_source;
struct qkd_party_sources;

/* Bob's detections in chunks of the simulator's size (2^26 slots), so a
 * replay sifts exactly as the live run did. r is borrowed. */
struct qkd_file_bob_source {
	struct qkd_rec_bob *rec;
	uint64_t next_slot;
	uint64_t chunk_slots;
	double cpu;	/* CPU seconds spent reading */
};
void qkd_file_bob_source_init(struct qkd_file_bob_source *s, struct qkd_rec_bob *r,
			      struct qkd_bob_source *ops);
/* Alice's lookups; choices for a weak-coherent source (her raw RNG output,
 * for the randomness tests), intensities when the recording has decoys. */
struct qkd_file_alice_source {
	struct qkd_rec_alice *rec;
	double cpu;
};
void qkd_file_alice_source_init(struct qkd_file_alice_source *s, struct qkd_rec_alice *r,
				struct qkd_alice_source *ops);

/* The file backend for qkd_simlink_run_sources (qkd/simlink.h): Alice's
 * process opens dir/alice.qkdrec, Bob's dir/bob.qkdrec. dir is borrowed
 * and must outlive the run. */
void qkd_file_party_sources(struct qkd_party_sources *ps, const char *dir);

#endif
