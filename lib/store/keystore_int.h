/* keystore_int.h - internals shared by the files of lib/store.
 *
 * keystore.c        open, close, pragmas, schema and its version
 * keystore_sql.c    statement, transaction and blob helpers; bit copying
 * keystore_block.c  put_pending, finalize, discard, lookup, get, list, stats
 * keystore_take.c   take, take_at and the consumed-range bookkeeping
 * keystore_kme.c    the key manager's records (qkd/kme_store.h)
 * keystore_check.c  the invariant check
 * keystore_mem.c    the wiping allocator handed to SQLite
 */
#ifndef QKD_KEYSTORE_INT_H
#define QKD_KEYSTORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "qkd/keystore.h"

struct qkd_store {
	sqlite3 *db;
	int64_t version;	/* schema version, as last read from the file */
};

/* The first schema version with the key manager's tables. */
#define KS_KME_VERSION 2

/* Bytes read or written per step of blob I/O (a stack buffer, wiped). */
#define KS_CHUNK 4096

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

/* Map an SQLite result code to a QKD_ERR_* code and a static reason. */
int ks_err(int sqlite_rc, const char **why);

__attribute__((warn_unused_result))
int ks_prep(struct qkd_store *s, const char *sql, sqlite3_stmt **st, const char **why);
/* Run SQL that returns no rows (may hold several statements). */
__attribute__((warn_unused_result))
int ks_exec(struct qkd_store *s, const char *sql, const char **why);
/* Step a statement that must finish without a row (INSERT, UPDATE, DELETE). */
__attribute__((warn_unused_result))
int ks_step_done(sqlite3_stmt *st, const char **why);

/* Run sql, binding args[0 .. nargs) to ?1.., expecting no row. */
__attribute__((warn_unused_result))
int ks_run(struct qkd_store *s, const char *sql, const int64_t *args, int nargs,
	   const char **why);

/* BEGIN IMMEDIATE (write) or BEGIN (read snapshot); COMMIT; ROLLBACK if a
 * transaction is open (for error paths, never fails). */
__attribute__((warn_unused_result))
int ks_begin(struct qkd_store *s, bool write, const char **why);
__attribute__((warn_unused_result))
int ks_commit(struct qkd_store *s, const char **why);
void ks_rollback(struct qkd_store *s);
/* Commit when rc is 0, else roll back; returns rc or the commit's error. */
int ks_end(struct qkd_store *s, int rc, const char **why);

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
 * constant time per chunk. */
__attribute__((warn_unused_result))
int ks_blob_equal(struct qkd_store *s, uint64_t id, const uint8_t *bits, uint64_t n,
		  bool *equal, const char **why);
/* Overwrite bytes [off, off + n) with zeros. */
__attribute__((warn_unused_result))
int ks_blob_zero(struct qkd_store *s, uint64_t id, uint64_t off, uint64_t n,
		 const char **why);
/* Bits [off, off + n) of block id into out at bit dpos (chunked, so the
 * only extra copy is a wiped stack buffer). */
__attribute__((warn_unused_result))
int ks_read_bits(struct qkd_store *s, uint64_t id, uint64_t off, uint64_t n,
		 uint8_t *out, uint64_t dpos, const char **why);

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
 * segs[0 .. *nsegs) (at most max). Read-only; QKD_ERR_RANGE when there are
 * fewer bits or they span more than max segments. */
__attribute__((warn_unused_result))
int ks_plan_take(struct qkd_store *s, int parity, uint64_t nbits, struct qkd_store_seg *segs,
		 size_t max, size_t *nsegs, const char **why);
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

/* Key manager records (keystore_kme.c). */
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

#endif
