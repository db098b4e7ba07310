/* qkd/keystore.h - the persistent key store of one QKD link (DESIGN.md
 * section 6; schema, transactions and crash guarantees in docs/keystore.md).
 *
 * One SQLite database per link holds Qblocks: numbered blocks of secret bits
 * that are identical at both ends. A block is written PENDING by the node
 * daemon, made FINAL once both ends agree (two-phase commit), then handed out
 * by the key manager bit by bit until it is USED, when its bits are deleted.
 * A block whose stored bits fail their digests (bit rot), or that the peer
 * reported so, is QUARANTINED: never served, never written again.
 * Every operation is one SQLite transaction: a crash at any point leaves the
 * store as it was before the call or as it is after it, and no bit is ever
 * handed out twice.
 *
 * Bits cross this API as bytes, bit i at byte i/8 bit i%8 (LSB first, the
 * order of qkd_bits_to_bytes), ceil(nbits/8) bytes. Bits of the last byte
 * beyond nbits are zero on output and must be zero on input.
 *
 * Ownership: a struct qkd_store is opened and closed by its owner and used by
 * one thread at a time; several handles (the daemon's link thread and its key
 * manager thread, `qkd keys` in another process) may each open the same file.
 * Byte buffers are the caller's: the store copies bits in and out and keeps
 * no pointer. Buffers receiving bits hold key: the caller wipes them
 * (qkd_wipe). Output buffers are wiped by the store when a call fails.
 *
 * Errors: functions return 0 or a negative QKD_ERR_* code (qkd/error.h). When
 * why is not NULL it is set to a human-readable reason on failure and to NULL
 * on success; it never contains key bits. It is static text, except for
 * reasons that name a block or key (QKD_ERR_CORRUPT): those live in the
 * handle and stay valid until its next call or qkd_store_close. Codes:
 *   QKD_ERR_INVAL     argument out of domain, unknown block id, a state that
 *                     refuses the operation, a range already consumed;
 *   QKD_ERR_RANGE     not enough key, a buffer or segment array too small,
 *                     a schema version newer than this program;
 *   QKD_ERR_CORRUPT   stored bits failed their digest (the block or key is
 *                     quarantined, nothing was consumed), or the block or key
 *                     was quarantined before;
 *   QKD_ERR_NOSPACE   the file system is full (SQLITE_FULL, ENOSPC): nothing
 *                     changed, the call may be retried once space is freed;
 *   QKD_ERR_READONLY  the file or its file system refuses writes (read-only,
 *                     immutable, EROFS, EPERM): nothing changed, reads work;
 *   QKD_ERR_IO        the file cannot be opened, is not a key store, is
 *                     corrupt or locked, or the disk failed otherwise;
 *   QKD_ERR_NOMEM     out of memory.
 */
#ifndef QKD_KEYSTORE_H
#define QKD_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QKD_STORE_WUR __attribute__((warn_unused_result))

/* The schema version this program writes and understands (docs/keystore.md):
 * 1 blocks, 2 adds the key manager's records (qkd/kme_store.h), 3 adds the
 * digests of stored bits, quarantine, and withdrawn and abandoned records. */
#define QKD_STORE_SCHEMA_VERSION 4
/* Block ids are SQLite integer keys: 0 .. 2^63-1. */
#define QKD_STORE_ID_MAX ((uint64_t)INT64_MAX)
/* Largest block: 2^31 bits (256 MiB). */
#define QKD_STORE_BLOCK_MAX_BITS ((uint64_t)1 << 31)

enum qkd_store_state {
	QKD_STORE_PENDING = 0,	/* written, not yet agreed final by both ends */
	QKD_STORE_FINAL = 1,	/* committed: key that may be handed out */
	QKD_STORE_USED = 2,	/* every bit handed out; the bits are deleted */
	QKD_STORE_QUARANTINED = 3,	/* its bits failed their digests here or at the
					 * peer: never served or written again, bits deleted */
};
#define QKD_STORE_NSTATES 4

/* "pending", "final", "used", "quarantined"; NULL for a value out of range. */
const char *qkd_store_state_name(enum qkd_store_state st);

struct qkd_store;

/* One block as listed (no bits). */
struct qkd_store_block {
	uint64_t id;
	uint64_t nbits;		/* length in bits */
	uint64_t consumed;	/* bits handed out so far (0 when PENDING; for a
				 * QUARANTINED block, those handed out before) */
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
	uint64_t consumed_bits;		/* bits handed out (any state) */
	uint64_t state_count[QKD_STORE_NSTATES];	/* indexed by enum qkd_store_state;
							 * [QUARANTINED]: quarantined blocks */
	uint64_t state_bits[QKD_STORE_NSTATES];		/* and their lengths */
	uint64_t quarantine_unreported;	/* quarantined blocks the peer has not acknowledged */
};

/* Open the store at path, creating it (file mode 0600) when it does not
 * exist. Sets a rollback journal (journal_mode=TRUNCATE, converting a file
 * left in WAL mode by an older program: nothing of the store is memory
 * mapped), synchronous=FULL, secure_delete=ON; creates the schema in a new
 * or empty file and upgrades an older one to QKD_STORE_SCHEMA_VERSION in one
 * transaction, computing the digests of the bits already stored (for good:
 * older programs then refuse the file, as newer); refuses a file that is not
 * an SQLite database (QKD_ERR_IO), an SQLite database that is not a key
 * store (QKD_ERR_IO) and a schema newer than QKD_STORE_SCHEMA_VERSION
 * (QKD_ERR_RANGE); a read-only file or file system is QKD_ERR_READONLY, a
 * full one QKD_ERR_NOSPACE. On success *out is the new handle; on failure
 * *out is NULL. The first open in a process also installs, process-wide, an
 * SQLite allocator that wipes memory on free (docs/keystore.md, "Secrets"). */
QKD_STORE_WUR
int qkd_store_open(struct qkd_store **out, const char *path, const char **why);

/* The same, but never creates: a missing file is QKD_ERR_IO ("no such key
 * store"), and so is an empty file. Nor does it write to the file: no schema
 * upgrade, no journal conversion (a WAL-mode file is read as it is), and
 * get never quarantines (it fails with QKD_ERR_CORRUPT all the same). On a
 * file of an older schema, every call that writes fails with QKD_ERR_INVAL
 * ("open it for writing to upgrade it") and reads work without digests.
 * For readers such as `qkd keys`. */
QKD_STORE_WUR
int qkd_store_open_existing(struct qkd_store **out, const char *path, const char **why);

/* Flags of qkd_store_open_node. */
#define QKD_STORE_MUST_EXIST 0x1u	/* refuse a missing or empty file, never create */

/* The node daemon's open: qkd_store_open, plus
 *  - an exclusive flock(2) on the database file itself, taken without
 *    waiting and held for the handle's life, so that two qkd nodes never
 *    serve one store: another holder is QKD_ERR_IO ("the store is in use by
 *    another qkd node"). Ordinary handles (qkd_store_open, open_existing) do
 *    not take it: the same process may open its key manager's handle on the
 *    file, and `qkd keys` in another process reads it. The lock is released
 *    at qkd_store_close (the descriptor itself is closed once no handle of
 *    this process has the file open, so SQLite's POSIX locks stay intact);
 *  - with QKD_STORE_MUST_EXIST, a missing file and a file of 0 bytes are
 *    QKD_ERR_IO ("the key store is missing or empty") instead of a fresh
 *    store: a node whose store vanished must not start with an empty one.
 * Unknown flags: QKD_ERR_INVAL. docs/keystore.md, "The node's handle". */
QKD_STORE_WUR
int qkd_store_open_node(struct qkd_store **out, const char *path, unsigned flags,
			const char **why);

/* Close and free; releases the node's lock. Accepts NULL. */
void qkd_store_close(struct qkd_store *s);

/* Write block id as PENDING with nbits bits (1 .. QKD_STORE_BLOCK_MAX_BITS)
 * read from bits[0 .. ceil(nbits/8)), with the digests of its 512-byte
 * chunks computed from bits (docs/keystore.md, "Digests"). If id already
 * exists the call succeeds only when it is PENDING with the same length and
 * bits (a retry after a crash; compared in constant time) and changes
 * nothing; otherwise QKD_ERR_INVAL (QKD_ERR_CORRUPT for a quarantined id,
 * which is never written again, and for a pending block whose stored bits
 * fail their digests, which is then quarantined). The caller keeps and
 * wipes bits. */
QKD_STORE_WUR
int qkd_store_put_pending(struct qkd_store *s, uint64_t id, const uint8_t *bits,
			  uint64_t nbits, const char **why);

/* PENDING -> FINAL. FINAL or USED already: success, nothing changes
 * (idempotent). Unknown id: QKD_ERR_INVAL. QUARANTINED: QKD_ERR_CORRUPT. */
QKD_STORE_WUR
int qkd_store_finalize(struct qkd_store *s, uint64_t id, const char **why);

/* Delete a PENDING block (its bits are overwritten in the file). Unknown id:
 * success (idempotent: an abort may be retried). FINAL or USED: QKD_ERR_INVAL,
 * committed key is never discarded. QUARANTINED: QKD_ERR_CORRUPT (the row
 * stays, so the id is never written again). */
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
 * caller can size the buffer. Unknown id: QKD_ERR_INVAL. Every chunk is
 * checked against its digest first: a mismatch is QKD_ERR_CORRUPT, buf
 * wiped, and on a handle opened for writing the block is quarantined; a
 * block quarantined before is QKD_ERR_CORRUPT too. The caller wipes buf. */
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
 * wiped. Every chunk read is checked against its digest before a bit is cut:
 * a mismatch is QKD_ERR_CORRUPT with why naming the block, nothing consumed,
 * and the block quarantined (the caller may retry: take plans around it).
 * Implements the "exactly once" rule of DESIGN.md section 6. */
QKD_STORE_WUR
int qkd_store_take(struct qkd_store *s, uint64_t nbits, uint8_t *out, size_t outlen,
		   struct qkd_store_seg *segs, size_t max_segs, size_t *nsegs,
		   const char **why);

/* Consume exactly the ranges segs[0 .. nsegs) (the peer's side of take: the
 * coordinates the other end handed out), all or none: writes their bits,
 * concatenated in order, to out[0 .. ceil(total/8)). QKD_ERR_INVAL when a
 * block is unknown or not FINAL (not yet final here: retry later; USED: all
 * consumed), a range lies outside its block, or any bit of a range was
 * already consumed (including by an earlier segment of the same call);
 * QKD_ERR_CORRUPT when a block is quarantined, or its bits fail their digest
 * (then quarantined), as for take. On failure nothing is consumed and out is
 * wiped. */
QKD_STORE_WUR
int qkd_store_take_at(struct qkd_store *s, const struct qkd_store_seg *segs, size_t nsegs,
		      uint8_t *out, size_t outlen, const char **why);

/* The relay's pads (docs/relay.md "Pads"): one end of a link cuts from its
 * own half of the blocks (id % 2 == parity, as the key manager does:
 * qkd/kme_store.h), the other consumes exactly those bits. take_half is
 * take restricted to that half; with below_newest it also leaves out the
 * store's newest block, which may still be PENDING at the far end (Alice
 * makes a block final before Bob does: docs/node.md). take_at_half is
 * take_at refusing (QKD_ERR_INVAL) any segment outside half `parity`.
 * half_free counts the free FINAL bits take_half could cut. */
QKD_STORE_WUR
int qkd_store_take_half(struct qkd_store *s, unsigned parity, bool below_newest, uint64_t nbits,
			uint8_t *out, size_t outlen, struct qkd_store_seg *segs, size_t max_segs,
			size_t *nsegs, const char **why);
QKD_STORE_WUR
int qkd_store_take_at_half(struct qkd_store *s, unsigned parity, const struct qkd_store_seg *segs,
			   size_t nsegs, uint8_t *out, size_t outlen, const char **why);
QKD_STORE_WUR
int qkd_store_half_free(struct qkd_store *s, unsigned parity, bool below_newest, uint64_t *bits,
			const char **why);

/* Verify the invariants of docs/keystore.md (SQLite quick_check, foreign
 * keys, consumed ranges disjoint and inside their block and summing to the
 * consumed count, bits and their digests present exactly when PENDING or
 * FINAL and of the right length; from schema version 2 the key manager's
 * records too: bits and digest exactly for ready keys, segments making the
 * length and consumed in their blocks). It does not read the bits: see
 * qkd_store_verify. QKD_ERR_IO with the first violation found. For start-up
 * and tests. */
QKD_STORE_WUR
int qkd_store_check(struct qkd_store *s, const char **why);

/* ---- digests and quarantine (docs/keystore.md, "Digests") ---- */

/* One stored item whose bits fail their digest. */
struct qkd_store_fault {
	bool is_key;		/* false: block id; true: key manager key key_id */
	uint64_t id;		/* the block */
	uint8_t key_id[16];	/* the key (is_key) */
	uint64_t chunk;		/* the block's first failing 512-byte chunk */
	uint64_t nchunks;	/* the block's chunks */
};

/* Called once per failing item, in id order (blocks, then keys in the
 * order they arrived). Return 0 to go on; any other value stops the walk
 * and becomes the walker's result. It must not use the same store handle. */
typedef int (*qkd_store_fault_fn)(const struct qkd_store_fault *f, void *ctx);

struct qkd_store_verify_stats {
	uint64_t blocks;	/* PENDING and FINAL blocks read */
	uint64_t chunks;	/* their chunks */
	uint64_t keys;		/* ready key manager keys read */
	uint64_t bad_blocks;	/* of them, failing their digests */
	uint64_t bad_keys;
	uint64_t quarantined_blocks;	/* QUARANTINED before the walk */
	uint64_t quarantined_keys;
};

/* Read every chunk of every PENDING and FINAL block and every ready key
 * manager key, and compare each with its digest; fn (may be NULL) is
 * called for each failure. Read-only: nothing is quarantined (for
 * `qkd keys check`). Each block is read in its own short read transaction,
 * so that a long walk never holds the node's writers for long. A store of
 * an older schema (a reader's handle) has no digests: QKD_ERR_INVAL. vs
 * (may be NULL) gets the figures. */
QKD_STORE_WUR
int qkd_store_verify(struct qkd_store *s, qkd_store_fault_fn fn, void *ctx,
		     struct qkd_store_verify_stats *vs, const char **why);

/* The same walk, for the daemon's start-up, quarantining each failing block
 * (unreported, so that the link tells the peer) and key; *nbad (may be NULL)
 * is how many were quarantined. Succeeds when the walk did, whatever it
 * found. */
QKD_STORE_WUR
int qkd_store_verify_all(struct qkd_store *s, uint64_t *nbad, const char **why);

/* Quarantine block id because the peer reported it (the two ends retire the
 * same blocks). PENDING, FINAL or USED: becomes QUARANTINED, its bits and
 * digests deleted (and overwritten, secure_delete), its consumed ranges
 * dropped. Already QUARANTINED: marked reported, else nothing changes
 * (idempotent). Unknown id: a QUARANTINED tombstone of length 0, so that a
 * later put_pending of that id is refused. The block counts as reported
 * (the peer knows). Key manager records with bits in the block keep them. */
QKD_STORE_WUR
int qkd_store_quarantine(struct qkd_store *s, uint64_t id, const char **why);

/* The lowest ids (at most max) of blocks quarantined here and not yet
 * acknowledged by the peer, into ids[0 .. *n), in id order. */
QKD_STORE_WUR
int qkd_store_quarantine_unreported(struct qkd_store *s, uint64_t *ids, size_t max, size_t *n,
				    const char **why);

/* The peer acknowledged ids[0 .. n): mark them reported, one transaction.
 * Ids that are not quarantined are ignored (an answer repeated). */
QKD_STORE_WUR
int qkd_store_quarantine_reported(struct qkd_store *s, const uint64_t *ids, size_t n,
				  const char **why);

#endif
