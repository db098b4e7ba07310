/* qkd/keystore.h - the persistent key store of one QKD link (DESIGN.md
 * section 6; schema, transactions and crash guarantees in docs/keystore.md).
 *
 * One SQLite database per link holds Qblocks: numbered blocks of secret bits
 * that are identical at both ends. A block is written PENDING by the node
 * daemon, made FINAL once both ends agree (two-phase commit), then handed out
 * by the key manager bit by bit until it is USED, when its bits are deleted.
 * Every operation is one SQLite transaction: a crash at any point leaves the
 * store as it was before the call or as it is after it, and no bit is ever
 * handed out twice.
 *
 * Bits cross this API as bytes, bit i at byte i/8 bit i%8 (LSB first, the
 * order of qkd_bits_to_bytes), ceil(nbits/8) bytes. Bits of the last byte
 * beyond nbits are zero on output and must be zero on input.
 *
 * Ownership: a struct qkd_store is opened and closed by its owner and used by
 * one thread at a time; several processes (the daemon, the key manager,
 * `qkd keys`) may each open the same file. Byte buffers are the caller's: the
 * store copies bits in and out and keeps no pointer. Buffers receiving bits
 * hold key: the caller wipes them (qkd_wipe). Output buffers are wiped by the
 * store when a call fails.
 *
 * Errors: functions return 0 or a negative QKD_ERR_* code (qkd/error.h). When
 * why is not NULL it is set to a static, human-readable reason on failure
 * and to NULL on success; it never contains key bits. Codes:
 *   QKD_ERR_INVAL  argument out of domain, unknown block id, a state that
 *                  refuses the operation, a range already consumed;
 *   QKD_ERR_RANGE  not enough key, a buffer or segment array too small,
 *                  a schema version newer than this program;
 *   QKD_ERR_IO     the file cannot be opened, is not a key store, is corrupt
 *                  or locked, or the disk failed (errno may be kept);
 *   QKD_ERR_NOMEM  out of memory.
 */
#ifndef QKD_KEYSTORE_H
#define QKD_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QKD_STORE_WUR __attribute__((warn_unused_result))

/* The schema version this program writes and understands (docs/keystore.md):
 * 1 blocks, 2 adds the key manager's records (qkd/kme_store.h). */
#define QKD_STORE_SCHEMA_VERSION 2
/* Block ids are SQLite integer keys: 0 .. 2^63-1. */
#define QKD_STORE_ID_MAX ((uint64_t)INT64_MAX)
/* Largest block: 2^31 bits (256 MiB). */
#define QKD_STORE_BLOCK_MAX_BITS ((uint64_t)1 << 31)

enum qkd_store_state {
	QKD_STORE_PENDING = 0,	/* written, not yet agreed final by both ends */
	QKD_STORE_FINAL = 1,	/* committed: key that may be handed out */
	QKD_STORE_USED = 2,	/* every bit handed out; the bits are deleted */
};
#define QKD_STORE_NSTATES 3

/* "pending", "final", "used"; NULL for a value out of range. */
const char *qkd_store_state_name(enum qkd_store_state st);

struct qkd_store;

/* One block as listed (no bits). */
struct qkd_store_block {
	uint64_t id;
	uint64_t nbits;		/* length in bits */
	uint64_t consumed;	/* bits handed out so far (0 unless FINAL or USED) */
	int64_t created;	/* unix seconds, when first written */
	enum qkd_store_state state;
};

/* Where handed-out key came from: bits [offset, offset + nbits) of block id.
 * The two ends exchange these coordinates, never the bits. */
struct qkd_store_seg {
	uint64_t id;
	uint64_t offset;
	uint64_t nbits;
};

struct qkd_store_stats {
	uint64_t count;			/* blocks, any state */
	uint64_t total_bits;		/* sum of their lengths */
	uint64_t available_bits;	/* FINAL bits not yet consumed: what take may hand out */
	uint64_t consumed_bits;		/* bits handed out (FINAL and USED blocks) */
	uint64_t state_count[QKD_STORE_NSTATES];	/* indexed by enum qkd_store_state */
	uint64_t state_bits[QKD_STORE_NSTATES];
};

/* Open the store at path, creating it (file mode 0600) when it does not
 * exist. Sets WAL journaling, synchronous=FULL, secure_delete=ON; creates the
 * schema in a new or empty file and upgrades an older one to
 * QKD_STORE_SCHEMA_VERSION (for good: older programs then refuse the file,
 * as newer); refuses a file that is not an SQLite
 * database (QKD_ERR_IO), an SQLite database that is not a key store
 * (QKD_ERR_IO) and a schema newer than QKD_STORE_SCHEMA_VERSION
 * (QKD_ERR_RANGE). On success *out is the new handle; on failure *out is
 * NULL. The first open in a process also installs, process-wide, an SQLite
 * allocator that wipes memory on free (docs/keystore.md, "Copies"). */
QKD_STORE_WUR
int qkd_store_open(struct qkd_store **out, const char *path, const char **why);

/* The same, but never creates: a missing file is QKD_ERR_IO ("no such key
 * store"), and so is an empty file. Nor does it upgrade an older schema:
 * on a version 1 file the key manager's calls that write fail with
 * QKD_ERR_INVAL (qkd/kme_store.h). For readers such as `qkd keys`. */
QKD_STORE_WUR
int qkd_store_open_existing(struct qkd_store **out, const char *path, const char **why);

/* Checkpoint and truncate the WAL, close, free. Accepts NULL. */
void qkd_store_close(struct qkd_store *s);

/* Write block id as PENDING with nbits bits (1 .. QKD_STORE_BLOCK_MAX_BITS)
 * read from bits[0 .. ceil(nbits/8)). If id already exists the call succeeds
 * only when it is PENDING with the same length and bits (a retry after a
 * crash; compared in constant time) and changes nothing; otherwise
 * QKD_ERR_INVAL. The caller keeps and wipes bits. */
QKD_STORE_WUR
int qkd_store_put_pending(struct qkd_store *s, uint64_t id, const uint8_t *bits,
			  uint64_t nbits, const char **why);

/* PENDING -> FINAL. FINAL or USED already: success, nothing changes
 * (idempotent). Unknown id: QKD_ERR_INVAL. */
QKD_STORE_WUR
int qkd_store_finalize(struct qkd_store *s, uint64_t id, const char **why);

/* Delete a PENDING block (its bits are overwritten in the file). Unknown id:
 * success (idempotent: an abort may be retried). FINAL or USED: QKD_ERR_INVAL,
 * committed key is never discarded. */
QKD_STORE_WUR
int qkd_store_discard(struct qkd_store *s, uint64_t id, const char **why);

/* Describe block id. *found is false (and info untouched) for an unknown id,
 * which is not an error. */
QKD_STORE_WUR
int qkd_store_lookup(struct qkd_store *s, uint64_t id, struct qkd_store_block *info,
		     bool *found, const char **why);

/* Copy block id's bits into buf (ceil(nbits/8) bytes; buflen may be larger,
 * the rest is left alone) and set *nbits to its length. Bits already handed
 * out read as zero (so a USED block is all zeros): get never returns a bit
 * a second time. buflen too small: QKD_ERR_RANGE with *nbits set, so the
 * caller can size the buffer. Unknown id: QKD_ERR_INVAL. The caller wipes buf. */
QKD_STORE_WUR
int qkd_store_get(struct qkd_store *s, uint64_t id, uint8_t *buf, size_t buflen,
		  uint64_t *nbits, const char **why);

/* Called once per block in id order. Return 0 to go on; any other value
 * stops the listing and becomes qkd_store_list's result. It must not use
 * the same store handle. */
typedef int (*qkd_store_list_fn)(const struct qkd_store_block *b, void *ctx);

/* List every block (fn may be NULL) and, when stats is not NULL, fill it from
 * the same snapshot. */
QKD_STORE_WUR
int qkd_store_list(struct qkd_store *s, qkd_store_list_fn fn, void *ctx,
		   struct qkd_store_stats *stats, const char **why);

/* Counts and bit totals, per state and overall. */
QKD_STORE_WUR
int qkd_store_stats(struct qkd_store *s, struct qkd_store_stats *stats, const char **why);

/* Hand out the next nbits (>= 1) bits of FINAL key: the lowest free bits of
 * the lowest FINAL block ids, spanning blocks as needed (ranges freed around
 * bits taken with take_at are filled too). Writes the bits to
 * out[0 .. ceil(nbits/8)) (outlen at least that), their coordinates to
 * segs[0 .. *nsegs) in output order, and marks them consumed in the same
 * transaction: a block whose last bit goes becomes USED and its bits are
 * deleted. Fewer than nbits available bits: QKD_ERR_RANGE; more than max_segs
 * segments needed: QKD_ERR_RANGE. On failure nothing is consumed and out is
 * wiped. Implements the "exactly once" rule of DESIGN.md section 6. */
QKD_STORE_WUR
int qkd_store_take(struct qkd_store *s, uint64_t nbits, uint8_t *out, size_t outlen,
		   struct qkd_store_seg *segs, size_t max_segs, size_t *nsegs,
		   const char **why);

/* Consume exactly the ranges segs[0 .. nsegs) (the peer's side of take: the
 * coordinates the other end handed out), all or none: writes their bits,
 * concatenated in order, to out[0 .. ceil(total/8)). QKD_ERR_INVAL when a
 * block is unknown or not FINAL (not yet final here: retry later; USED: all
 * consumed), a range lies outside its block, or any bit of a range was
 * already consumed (including by an earlier segment of the same call). On
 * failure nothing is consumed and out is wiped. */
QKD_STORE_WUR
int qkd_store_take_at(struct qkd_store *s, const struct qkd_store_seg *segs, size_t nsegs,
		      uint8_t *out, size_t outlen, const char **why);

/* Verify the invariants of docs/keystore.md (SQLite quick_check, foreign
 * keys, consumed ranges disjoint and inside their block and summing to the
 * consumed count, bits present exactly when not USED and of the right
 * length; from schema version 2 the key manager's records too: bits exactly
 * for ready keys, segments making the length and consumed in their blocks).
 * QKD_ERR_IO with the first violation found. For start-up and tests. */
QKD_STORE_WUR
int qkd_store_check(struct qkd_store *s, const char **why);

#endif
