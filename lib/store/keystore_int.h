/* keystore_int.h - internals shared by the files of lib/store.
 *
 * keystore.c             open, close, connection settings, journal mode
 * keystore_schema.c      the schema, its version, the migration steps
 * keystore_lock.c        the node's flock; the process's open files
 * keystore_sql.c         statement, transaction and blob helpers; errors; bits
 * keystore_sum.c         digests of stored bits: compute, check, refresh
 * keystore_quarantine.c  quarantine: of faults found, of the peer's reports
 * keystore_verify.c      reading every stored bit against its digest
 * keystore_block.c       put_pending, finalize, discard, lookup, get, list, stats
 * keystore_take.c        take, take_at and the consumed-range bookkeeping
 * lib/kme/kme_store.c    the key manager's records (qkd/kme_store.h), on
 *   kme_store_wd.c       the generic take above; abandoned and withdrawn ones,
 *   kme_store_life.c     and expiry, pruning, running totals, restart
 * keystore_check.c       the invariant check
 * keystore_mem.c         the wiping allocator handed to SQLite
 */
#ifndef QKD_KEYSTORE_INT_H
#define QKD_KEYSTORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

#include <sqlite3.h>

#include "qkd/keystore.h"
#include "qkd/kme_store.h"

/* A fault found by the call under way: what to quarantine once the call's
 * transaction has rolled back (keystore_quarantine.c). */
enum ks_bad_kind { KS_BAD_NONE, KS_BAD_BLOCK, KS_BAD_KEY };

struct ks_bad {
	enum ks_bad_kind kind;
	uint64_t id;		/* KS_BAD_BLOCK */
	uint8_t key_id[16];	/* KS_BAD_KEY */
	char note[96];		/* what failed, stored with the quarantine */
};

struct qkd_store {
	sqlite3 *db;
	int64_t version;	/* schema version, as last read from the file */
	bool writer;		/* opened to write: upgrades, converts, quarantines on get */
	int lockfd;		/* the node's flock(2) on the file, or -1 */
	dev_t dev;		/* the file, in the process's registry (keystore_lock.c) */
	ino_t ino;
	struct ks_bad bad;
	char whybuf[192];	/* reasons naming a block or key (qkd/keystore.h) */
};

/* The first schema version with the key manager's tables. */
#define KS_KME_VERSION 2
/* The first with digests, quarantine, withdrawn and abandoned records. */
#define KS_SUM_VERSION 3
/* The first with expired records and kme_tally (the key lifecycle). */
#define KS_LIFE_VERSION 4

/* Digests: BLAKE2b-128 of each 512-byte chunk of a block's stored bytes,
 * and of a ready key's bytes (keystore_sum.c). */
#define KS_SUM_CHUNK 512
#define KS_SUM_LEN 16

static inline uint64_t ks_nchunks(uint64_t nbytes)
{
	return nbytes / KS_SUM_CHUNK + (nbytes % KS_SUM_CHUNK != 0);
}

/* Bytes read or written per step of blob I/O (a stack buffer, wiped). */
#define KS_CHUNK 4096
/* Largest key manager key, in bytes (QKD_KME_KEY_BITS_MAX / 8). */
#define KS_KEY_BYTES_MAX 8192

static inline uint64_t ks_nbytes(uint64_t nbits)
{
	return nbits / 8 + (nbits % 8 != 0);
}

/* Set *why when why is not NULL. */
static inline void ks_why(const char **why, const char *msg)
{
	if (why != NULL)
		*why = msg;
}

/* Map an SQLite result code to a QKD_ERR_* code and a static reason. db
 * (may be NULL) gives the errno of the failing system call: ENOSPC is
 * QKD_ERR_NOSPACE, EROFS, EPERM and EACCES QKD_ERR_READONLY. */
int ks_err(sqlite3 *db, int sqlite_rc, const char **why);

__attribute__((warn_unused_result))
int ks_prep(struct qkd_store *s, const char *sql, sqlite3_stmt **st, const char **why);
/* Run SQL that returns no rows (may hold several statements). */
__attribute__((warn_unused_result))
int ks_exec(struct qkd_store *s, const char *sql, const char **why);
/* Step a statement that must finish without a row (INSERT, UPDATE, DELETE). */
__attribute__((warn_unused_result))
int ks_step_done(sqlite3_stmt *st, const char **why);

/* The first column of a one-row query (a PRAGMA's value, a count), as an
 * integer or as text into buf[0 .. n) (keystore_schema.c). */
__attribute__((warn_unused_result))
int ks_query_int(struct qkd_store *s, const char *sql, int64_t *v, const char **why);
__attribute__((warn_unused_result))
int ks_query_text(struct qkd_store *s, const char *sql, char *buf, size_t n, const char **why);

/* Run sql, binding args[0 .. nargs) to ?1.., expecting no row. */
__attribute__((warn_unused_result))
int ks_run(struct qkd_store *s, const char *sql, const int64_t *args, int nargs,
	   const char **why);

/* BEGIN IMMEDIATE (write) or BEGIN (read snapshot); COMMIT; ROLLBACK if a
 * transaction is open (for error paths, never fails). A write transaction
 * first asks the file system whether the file is writable, so that an
 * immutable or read-only file is QKD_ERR_READONLY before SQLite writes a
 * journal it could not play back. Both forget the last call's fault. */
__attribute__((warn_unused_result))
int ks_begin(struct qkd_store *s, bool write, const char **why);
__attribute__((warn_unused_result))
int ks_commit(struct qkd_store *s, const char **why);
void ks_rollback(struct qkd_store *s);
/* Commit when rc is 0, else roll back; returns rc or the commit's error. */
int ks_end(struct qkd_store *s, int rc, const char **why);
/* Quarantine the fault noted by ks_fault_* in a transaction of its own,
 * and add the outcome to the reason (keystore_quarantine.c). */
int ks_settle(struct qkd_store *s, const char **why);
/* ks_end, then quarantine the fault the call found (keystore_quarantine.c)
 * when quarantine is true: the fault's own transaction, after the call's
 * changes rolled back. */
int ks_finish(struct qkd_store *s, int rc, bool quarantine, const char **why);

/* Writing needs the current schema: a reader's handle on an older file
 * refuses (QKD_ERR_INVAL, "open it for writing to upgrade it"). */
__attribute__((warn_unused_result))
int ks_require_current(struct qkd_store *s, const char **why);
/* The opening of a public call that writes n items in one transaction:
 * why cleared; args_ok false is QKD_ERR_INVAL with why = bad; n = 0 is
 * KS_NOTHING (nothing to do, nothing begun); else 0 with the write
 * transaction begun on the current schema (finish with ks_end). */
#define KS_NOTHING 1
__attribute__((warn_unused_result))
int ks_begin_batch(struct qkd_store *s, bool args_ok, const char *bad, size_t n,
		   const char **why);

/* State name <-> enum for the SQL text column. */
int ks_state_parse(const unsigned char *text, enum qkd_store_state *st);

/* Read the metadata row of block id; *found false when absent. */
__attribute__((warn_unused_result))
int ks_block_row(struct qkd_store *s, uint64_t id, struct qkd_store_block *b,
		 bool *found, const char **why);

/* Re-read the schema version into s->version (another process may have
 * upgraded the file since this handle opened it). */
__attribute__((warn_unused_result))
int ks_version_refresh(struct qkd_store *s, const char **why);

/* A blob handle on column col of row `row` of table; close it with the
 * call's rc (a failed close of a written blob becomes the error); one
 * transfer: write wbuf when it is not NULL, else read into rbuf. */
__attribute__((warn_unused_result))
int ks_blob_open(struct qkd_store *s, const char *table, const char *col, int64_t row,
		 bool rw, sqlite3_blob **b, const char **why);
int ks_blob_close(struct qkd_store *s, sqlite3_blob *b, int rc, const char **why);
__attribute__((warn_unused_result))
int ks_blob_xfer(struct qkd_store *s, sqlite3_blob *b, const void *wbuf, void *rbuf,
		 uint64_t off, uint64_t n, const char **why);

/* Blob I/O on column bits of row `row` of table (qbits, kme_bits), bytes
 * [off, off + n): straight between the page cache and buf. */
__attribute__((warn_unused_result))
int ks_blob_read_in(struct qkd_store *s, const char *table, int64_t row, uint64_t off,
		    void *buf, uint64_t n, const char **why);
__attribute__((warn_unused_result))
int ks_blob_write_in(struct qkd_store *s, const char *table, int64_t row, uint64_t off,
		     const void *buf, uint64_t n, const char **why);

/* Blob I/O on qbits.bits of block id, bytes [off, off + n): straight
 * between the page cache and buf, without an intermediate SQLite copy. */
__attribute__((warn_unused_result))
int ks_blob_read(struct qkd_store *s, uint64_t id, uint64_t off, void *buf, uint64_t n,
		 const char **why);
__attribute__((warn_unused_result))
int ks_blob_write(struct qkd_store *s, uint64_t id, uint64_t off, const void *buf,
		  uint64_t n, const char **why);
/* Whether block id's stored bytes are exactly bits[0 .. n), compared in
 * constant time per chunk. (Not checked against the digests: a retried put
 * of other bits is refused either way.) */
__attribute__((warn_unused_result))
int ks_blob_equal(struct qkd_store *s, uint64_t id, const uint8_t *bits, uint64_t n,
		  bool *equal, const char **why);
/* Overwrite bytes [off, off + n) with zeros. */
__attribute__((warn_unused_result))
int ks_blob_zero(struct qkd_store *s, uint64_t id, uint64_t off, uint64_t n,
		 const char **why);

/* ---- digests (keystore_sum.c) ---- */

/* The digest of chunk `chunk` of block id (n <= KS_SUM_CHUNK bytes at p),
 * and of a key manager key's bytes. */
void ks_sum_chunk(uint64_t id, uint64_t chunk, const uint8_t *p, size_t n,
		  uint8_t out[KS_SUM_LEN]);
void ks_sum_key(const uint8_t key_id[16], const uint8_t *p, size_t n, uint8_t out[KS_SUM_LEN]);
/* Write the qsum row of block id from bits[0 .. nbytes) (the caller's
 * copy, the bits just written). */
__attribute__((warn_unused_result))
int ks_sum_put_block(struct qkd_store *s, uint64_t id, const uint8_t *bits, uint64_t nbytes,
		     const char **why);
/* Recompute the digests of the chunks holding bytes [lo, hi) of block id
 * from its stored bytes (after a consume step zeroed some; the caller read
 * and checked those chunks in the same transaction). */
__attribute__((warn_unused_result))
int ks_sum_refresh(struct qkd_store *s, uint64_t id, uint64_t lo, uint64_t hi,
		   const char **why);
/* Bits [off, off + n) of block id into out at bit dpos, every chunk read
 * checked against its digest first (QKD_ERR_CORRUPT, the fault noted for
 * ks_finish). The only extra copy is a wiped stack buffer. */
__attribute__((warn_unused_result))
int ks_read_bits(struct qkd_store *s, uint64_t id, uint64_t off, uint64_t n,
		 uint8_t *out, uint64_t dpos, const char **why);
/* All nbytes of block id into buf, checked chunk by chunk (get). */
__attribute__((warn_unused_result))
int ks_read_block(struct qkd_store *s, uint64_t id, uint8_t *buf, uint64_t nbytes,
		  const char **why);
/* Read every chunk of block id and compare: *ok, and the first failing
 * chunk in *bad_chunk (qkd_store_verify). Notes no fault. */
__attribute__((warn_unused_result))
int ks_check_block(struct qkd_store *s, uint64_t id, uint64_t nbytes, bool *ok,
		   uint64_t *bad_chunk, const char **why);
/* The kme_sum row of key manager row seq, from its bytes. */
__attribute__((warn_unused_result))
int ks_sum_put_key(struct qkd_store *s, int64_t seq, const uint8_t key_id[16],
		   const uint8_t *bits, size_t n, const char **why);
/* Compare a key's bytes (as just read into buf) with its stored digest. */
__attribute__((warn_unused_result))
int ks_check_key(struct qkd_store *s, int64_t seq, const uint8_t key_id[16],
		 const uint8_t *buf, size_t n, bool *ok, const char **why);

/* The upgrade to version 3: digests of every stored block and ready key,
 * from the bits as they are now (keystore_schema.c's migration). */
__attribute__((warn_unused_result))
int ks_sum_backfill(struct qkd_store *s, const char **why);

/* ---- quarantine (keystore_quarantine.c) ---- */

/* Note a fault of block id (chunk of nchunks) or of key key_id for
 * ks_finish, and set *why to a reason naming it: QKD_ERR_CORRUPT. */
int ks_fault_block(struct qkd_store *s, uint64_t id, uint64_t chunk, uint64_t nchunks,
		   const char **why);
int ks_fault_key(struct qkd_store *s, const uint8_t key_id[16], const char **why);
/* "block N is quarantined ...": QKD_ERR_CORRUPT. */
int ks_why_quarantined(struct qkd_store *s, uint64_t id, const char **why);
/* In the caller's write transaction: block id becomes QUARANTINED (a
 * tombstone when unknown), its bits, digests and ranges deleted. */
__attribute__((warn_unused_result))
int ks_quarantine_block(struct qkd_store *s, uint64_t id, const char *note, bool reported,
			const char **why);
/* In the caller's write transaction: a ready key becomes QUARANTINED. */
__attribute__((warn_unused_result))
int ks_quarantine_key(struct qkd_store *s, const uint8_t key_id[16], const char **why);
/* A key_id as a UUID's 36 characters and a NUL. */
void ks_uuid_str(const uint8_t key_id[16], char out[37]);

/* Copy n bits from src at bit spos to dst at bit dpos (LSB-first bytes);
 * other bits of dst are left alone. Reads only bytes holding source bits. */
void ks_bits_copy(uint8_t *dst, uint64_t dpos, const uint8_t *src, uint64_t spos,
		  uint64_t n);
/* Clear bits [a, b) of buf. */
void ks_bits_clear(uint8_t *buf, uint64_t a, uint64_t b);

/* parity argument of ks_plan_take: blocks of any id. */
#define KS_PARITY_ANY (-1)

/* Plan nbits (>= 1) free FINAL bits, the lowest of the lowest block ids
 * whose id % 2 == parity (or of every block for KS_PARITY_ANY), into
 * segs[0 .. *nsegs) (at most max); with below_newest, only from blocks
 * older than the store's newest block (qkd_store_take_half). Read-only;
 * QKD_ERR_RANGE when there are fewer bits or they span more than max
 * segments. */
__attribute__((warn_unused_result))
int ks_plan_take(struct qkd_store *s, int parity, bool below_newest, uint64_t nbits,
		 struct qkd_store_seg *segs, size_t max, size_t *nsegs, const char **why);
/* take (qkd_store_take) restricted as ks_plan_take is: one write
 * transaction that plans and consumes, out wiped on failure. */
__attribute__((warn_unused_result))
int ks_take(struct qkd_store *s, int parity, bool below_newest, uint64_t nbits, uint8_t *out,
	    size_t outlen, struct qkd_store_seg *segs, size_t max_segs, size_t *nsegs,
	    const char **why);
/* Consume segs[0 .. n) in order into out (nbytes, zeroed first), in the
 * caller's write transaction: take_at's checks and bookkeeping. A refusal
 * (unknown block, not final, outside it, bits already consumed) is
 * QKD_ERR_INVAL; the caller rolls back what was consumed before it. */
__attribute__((warn_unused_result))
int ks_consume_all(struct qkd_store *s, const struct qkd_store_seg *segs, size_t n,
		   uint8_t *out, uint64_t nbytes, const char **why);
/* Total bits of segs; 0 when a segment is empty, an id is out of range or
 * the sum overflows. */
uint64_t ks_segs_total(const struct qkd_store_seg *segs, size_t n);

/* Key manager records (lib/kme/kme_store.c, kme_store_wd.c). */
enum ks_kme_state {
	KME_PENDING, KME_READY, KME_DELIVERED, KME_REFUSED,	/* schema version 2 on */
	KME_ABANDONED, KME_WITHDRAWN, KME_QUARANTINED,		/* version 3 on */
	KME_EXPIRED,						/* version 4 on */
};
#define KME_NSTATES 8
/* Their names in kme_key.state. */
extern const char *const ks_kme_state_names[KME_NSTATES];

/* One kme_key row. */
struct ks_kme_row {
	int64_t seq;
	bool out;		/* dir 'out': issued here */
	bool bare;		/* a tombstone without contents: key_id only */
	enum ks_kme_state state;
	struct qkd_kme_rec rec;	/* rec.abandoned: state KME_ABANDONED */
};

#define KS_KME_ROW_COLS "seq, key_id, dir, state, master, slave, nbits, segs"

/* The KS_KME_ROW_COLS of st's current row into row (QKD_ERR_IO when it is
 * malformed), the row of key_id (*found false when there is none), a state
 * name into *st. */
__attribute__((warn_unused_result))
int ks_kme_read_row(sqlite3_stmt *st, struct ks_kme_row *row, const char **why);
__attribute__((warn_unused_result))
int ks_kme_find(struct qkd_store *s, const uint8_t key_id[16], struct ks_kme_row *row,
		bool *found, const char **why);
int ks_kme_parse_state(const unsigned char *t, enum ks_kme_state *st);

/* Add n to the running total name of kme_tally ("expired", "lost_bits",
 * "pruned"; kme_store_life.c), in the caller's write transaction. A
 * store that is current (ks_require_current) has the table. */
__attribute__((warn_unused_result))
int ks_kme_tally_add(struct qkd_store *s, const char *name, uint64_t n, const char **why);
/* The tallies into c's expired, lost_bits and pruned (left alone for a
 * store older than KS_LIFE_VERSION), in the caller's transaction. */
__attribute__((warn_unused_result))
int ks_kme_tally_read(struct qkd_store *s, struct qkd_kme_counts *c, const char **why);

/* Whether the file has the key manager's tables (schema >= KS_KME_VERSION). */
__attribute__((warn_unused_result))
int ks_kme_present(struct qkd_store *s, bool *present, const char **why);
/* Decode a kme_key.segs blob of len bytes into segs (room for
 * QKD_KME_KEY_SEGS_MAX); QKD_ERR_IO when its length is not 1 .. max
 * whole segments. */
__attribute__((warn_unused_result))
int ks_kme_segs_decode(const void *blob, int len, struct qkd_store_seg *segs, size_t *nsegs);

/* Install the wiping allocator if SQLite is not initialized yet, then
 * initialize it. Called once per process (pthread_once). */
void ks_mem_install(void);

/* ---- schema (keystore_schema.c) ---- */

/* Tell an empty database (create the schema if may_init), a key store
 * (check its version, upgrade it if may_init) and anything else (refuse),
 * in one transaction; s->version is set. Foreign keys must be off (the
 * upgrade rebuilds tables). */
__attribute__((warn_unused_result))
int ks_identify(struct qkd_store *s, bool may_init, const char **why);

/* ---- files (keystore_lock.c) ---- */

/* Open path, flock(2) it exclusively without waiting, and with nonempty
 * refuse a file of 0 bytes: *fd, or -1 and an error. */
__attribute__((warn_unused_result))
int ks_lock_file(const char *path, bool nonempty, int *fd, const char **why);
/* Count s's handle on its file (s->lockfd's, else path's). */
__attribute__((warn_unused_result))
int ks_file_add(struct qkd_store *s, const char *path, const char **why);
/* Forget s's handle, after its connection closed: unlock s->lockfd and
 * close it, or keep it open while other handles of this process have the
 * file open (closing any descriptor of a file drops the process's POSIX
 * locks on it, SQLite's among them). */
void ks_file_drop(struct qkd_store *s);
/* Close fd, an unregistered lock descriptor (a failed open), the same way. */
void ks_lock_close(int fd);

#endif
