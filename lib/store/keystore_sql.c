/* keystore_sql.c - SQLite plumbing of the key store: error mapping,
 * statements, transactions, blob I/O, and bit copying between LSB-first
 * byte strings at arbitrary bit offsets. */
#include <limits.h>
#include <string.h>

#include "keystore_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

int ks_err(int sqlite_rc, const char **why)
{
	switch (sqlite_rc & 0xff) {
	case SQLITE_NOMEM:
		ks_why(why, "out of memory");
		return QKD_ERR_NOMEM;
	case SQLITE_NOTADB:
		ks_why(why, "not a key store: the file is not an SQLite database");
		break;
	case SQLITE_CORRUPT:
		ks_why(why, "the key store file is corrupt");
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		ks_why(why, "the key store is locked by another process");
		break;
	case SQLITE_FULL:
		ks_why(why, "disk full");
		break;
	case SQLITE_READONLY:
		ks_why(why, "the key store is read-only");
		break;
	case SQLITE_CANTOPEN:
		ks_why(why, "cannot open the key store file");
		break;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		ks_why(why, "permission denied");
		break;
	case SQLITE_CONSTRAINT:
		ks_why(why, "the key store refused a change that breaks its invariants");
		break;
	default:
		ks_why(why, sqlite3_errstr(sqlite_rc));	/* static text */
		break;
	}
	return QKD_ERR_IO;
}

int ks_prep(struct qkd_store *s, const char *sql, sqlite3_stmt **st, const char **why)
{
	int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);

	return rc == SQLITE_OK ? 0 : ks_err(rc, why);
}

int ks_exec(struct qkd_store *s, const char *sql, const char **why)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : ks_err(rc, why);
}

int ks_step_done(sqlite3_stmt *st, const char **why)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_DONE)
		return 0;
	if (rc == SQLITE_ROW) {
		ks_why(why, "internal error: statement returned a row");
		return QKD_ERR_IO;
	}
	return ks_err(rc, why);
}

int ks_run(struct qkd_store *s, const char *sql, const int64_t *args, int nargs,
	   const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = ks_prep(s, sql, &st, why);

	for (int i = 0; rc == 0 && i < nargs; i++)
		sqlite3_bind_int64(st, i + 1, args[i]);
	if (rc == 0)
		rc = ks_step_done(st, why);
	sqlite3_finalize(st);
	return rc;
}

/* IMMEDIATE takes the write lock at BEGIN, so a writer never fails half-way
 * through with SQLITE_BUSY when another process wrote first. */
int ks_begin(struct qkd_store *s, bool write, const char **why)
{
	return ks_exec(s, write ? "BEGIN IMMEDIATE" : "BEGIN", why);
}

int ks_commit(struct qkd_store *s, const char **why)
{
	return ks_exec(s, "COMMIT", why);
}

void ks_rollback(struct qkd_store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int ks_end(struct qkd_store *s, int rc, const char **why)
{
	if (rc == 0)
		rc = ks_commit(s, why);
	if (rc != 0)
		ks_rollback(s);
	return rc;
}

int ks_state_parse(const unsigned char *text, enum qkd_store_state *st)
{
	for (int i = 0; i < QKD_STORE_NSTATES; i++) {
		const char *name = qkd_store_state_name((enum qkd_store_state)i);

		if (text != NULL && strcmp((const char *)text, name) == 0) {
			*st = (enum qkd_store_state)i;
			return 0;
		}
	}
	return QKD_ERR_IO;
}

int ks_block_row(struct qkd_store *s, uint64_t id, struct qkd_store_block *b,
		 bool *found, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc, src;

	*found = false;
	rc = ks_prep(s, "SELECT nbits, state, created, consumed FROM qblock WHERE id = ?",
		     &st, why);
	if (rc != 0)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	src = sqlite3_step(st);
	if (src == SQLITE_DONE)
		goto out;
	if (src != SQLITE_ROW) {
		rc = ks_err(src, why);
		goto out;
	}
	b->id = id;
	b->nbits = (uint64_t)sqlite3_column_int64(st, 0);
	b->created = sqlite3_column_int64(st, 2);
	b->consumed = (uint64_t)sqlite3_column_int64(st, 3);
	if (ks_state_parse(sqlite3_column_text(st, 1), &b->state) != 0) {
		ks_why(why, "the key store file is corrupt (unknown block state)");
		rc = QKD_ERR_IO;
		goto out;
	}
	*found = true;
out:
	sqlite3_finalize(st);
	return rc;
}

static int blob_open_in(struct qkd_store *s, const char *table, int64_t row, int rw,
			sqlite3_blob **b, const char **why)
{
	int rc = sqlite3_blob_open(s->db, "main", table, "bits", (sqlite3_int64)row, rw, b);

	if (rc == SQLITE_OK)
		return 0;
	sqlite3_blob_close(*b);
	*b = NULL;
	if ((rc & 0xff) == SQLITE_ERROR) {
		ks_why(why, "the key store is inconsistent (bits missing)");
		return QKD_ERR_IO;
	}
	return ks_err(rc, why);
}

static int blob_open(struct qkd_store *s, uint64_t id, int rw, sqlite3_blob **b,
		     const char **why)
{
	return blob_open_in(s, "qbits", (int64_t)id, rw, b, why);
}

/* One blob transfer: write wbuf when it is not NULL, else read into rbuf.
 * Blocks are at most 2^28 bytes, so int offsets hold. */
static int blob_xfer(sqlite3_blob *b, const void *wbuf, void *rbuf, uint64_t off,
		     uint64_t n, const char **why)
{
	int rc;

	if (off > INT_MAX || n > (uint64_t)INT_MAX - off ||
	    off + n > (uint64_t)sqlite3_blob_bytes(b)) {
		ks_why(why, "the key store is inconsistent (bits shorter than the block)");
		return QKD_ERR_IO;
	}
	if (wbuf != NULL)
		rc = sqlite3_blob_write(b, wbuf, (int)n, (int)off);
	else
		rc = sqlite3_blob_read(b, rbuf, (int)n, (int)off);
	return rc == SQLITE_OK ? 0 : ks_err(rc, why);
}

int ks_blob_read_in(struct qkd_store *s, const char *table, int64_t row, uint64_t off,
		    void *buf, uint64_t n, const char **why)
{
	sqlite3_blob *b = NULL;
	int rc = blob_open_in(s, table, row, 0, &b, why);

	if (rc == 0)
		rc = blob_xfer(b, NULL, buf, off, n, why);
	sqlite3_blob_close(b);
	return rc;
}

int ks_blob_write_in(struct qkd_store *s, const char *table, int64_t row, uint64_t off,
		     const void *buf, uint64_t n, const char **why)
{
	sqlite3_blob *b = NULL;
	int rc = blob_open_in(s, table, row, 1, &b, why);

	if (rc == 0)
		rc = blob_xfer(b, buf, NULL, off, n, why);
	if (b != NULL && sqlite3_blob_close(b) != SQLITE_OK && rc == 0)
		rc = ks_err(sqlite3_errcode(s->db), why);
	return rc;
}

int ks_blob_read(struct qkd_store *s, uint64_t id, uint64_t off, void *buf, uint64_t n,
		 const char **why)
{
	return ks_blob_read_in(s, "qbits", (int64_t)id, off, buf, n, why);
}

int ks_blob_write(struct qkd_store *s, uint64_t id, uint64_t off, const void *buf,
		  uint64_t n, const char **why)
{
	return ks_blob_write_in(s, "qbits", (int64_t)id, off, buf, n, why);
}

int ks_blob_equal(struct qkd_store *s, uint64_t id, const uint8_t *bits, uint64_t n,
		  bool *equal, const char **why)
{
	uint8_t buf[KS_CHUNK];
	sqlite3_blob *b = NULL;
	bool diff = false, size_ok;
	int rc = blob_open(s, id, 0, &b, why);

	/* No early exit on a differing chunk: the time depends on n only. */
	size_ok = rc == 0 && (uint64_t)sqlite3_blob_bytes(b) == n;
	diff = !size_ok;
	for (uint64_t off = 0; size_ok && rc == 0 && off < n; off += KS_CHUNK) {
		uint64_t step = n - off < KS_CHUNK ? n - off : KS_CHUNK;

		rc = blob_xfer(b, NULL, buf, off, step, why);
		diff |= rc == 0 && !qkd_ct_equal(buf, bits + off, step);
	}
	*equal = rc == 0 && !diff;
	qkd_wipe(buf, sizeof(buf));
	sqlite3_blob_close(b);
	return rc;
}

int ks_blob_zero(struct qkd_store *s, uint64_t id, uint64_t off, uint64_t n,
		 const char **why)
{
	static const uint8_t zeros[KS_CHUNK];
	sqlite3_blob *b = NULL;
	int rc = blob_open(s, id, 1, &b, why);

	while (rc == 0 && n > 0) {
		uint64_t step = n < KS_CHUNK ? n : KS_CHUNK;

		rc = blob_xfer(b, zeros, NULL, off, step, why);
		off += step;
		n -= step;
	}
	if (b != NULL && sqlite3_blob_close(b) != SQLITE_OK && rc == 0)
		rc = ks_err(sqlite3_errcode(s->db), why);
	return rc;
}

int ks_read_bits(struct qkd_store *s, uint64_t id, uint64_t off, uint64_t n,
		 uint8_t *out, uint64_t dpos, const char **why)
{
	uint8_t buf[KS_CHUNK];
	sqlite3_blob *b = NULL;
	uint64_t x = off, end = off + n, end_byte = ks_nbytes(off + n);
	int rc = blob_open(s, id, 0, &b, why);

	while (rc == 0 && x < end) {
		uint64_t k0 = x / 8;
		uint64_t k1 = end_byte - k0 > KS_CHUNK ? k0 + KS_CHUNK : end_byte;
		uint64_t lim = end < 8 * k1 ? end : 8 * k1;

		rc = blob_xfer(b, NULL, buf, k0, k1 - k0, why);
		if (rc == 0)
			ks_bits_copy(out, dpos + (x - off), buf, x - 8 * k0, lim - x);
		x = lim;
	}
	qkd_wipe(buf, sizeof(buf));
	sqlite3_blob_close(b);
	return rc;
}

/* Up to 8 bits of src from bit pos; avail (1..8) bits are wanted, so byte
 * k+1 is read only when a wanted bit lies in it. */
static unsigned get8(const uint8_t *src, uint64_t pos, unsigned avail)
{
	uint64_t k = pos >> 3;
	unsigned sh = (unsigned)(pos & 7);
	unsigned v = (unsigned)src[k] >> sh;

	if (sh != 0 && avail > 8 - sh)
		v |= (unsigned)src[k + 1] << (8 - sh);
	return v & ((1u << avail) - 1);
}

/* Write the nb (1..8) low bits of v at bit pos, leaving the others. */
static void put8(uint8_t *dst, uint64_t pos, unsigned v, unsigned nb)
{
	uint64_t k = pos >> 3;
	unsigned sh = (unsigned)(pos & 7);
	unsigned mask = ((1u << nb) - 1) << sh;
	unsigned w = v << sh;

	dst[k] = (uint8_t)((dst[k] & ~mask) | (w & mask));
	if (sh + nb > 8)
		dst[k + 1] = (uint8_t)((dst[k + 1] & ~(mask >> 8)) | ((w & mask) >> 8));
}

void ks_bits_copy(uint8_t *dst, uint64_t dpos, const uint8_t *src, uint64_t spos,
		  uint64_t n)
{
	if (dpos % 8 == 0 && spos % 8 == 0) {
		memcpy(dst + dpos / 8, src + spos / 8, n / 8);
		dpos += n / 8 * 8;
		spos += n / 8 * 8;
		n %= 8;
	}
	for (uint64_t i = 0; i < n; i += 8) {
		unsigned nb = n - i < 8 ? (unsigned)(n - i) : 8;

		put8(dst, dpos + i, get8(src, spos + i, nb), nb);
	}
}

void ks_bits_clear(uint8_t *buf, uint64_t a, uint64_t b)
{
	for (uint64_t i = a; i < b; i += 8)
		put8(buf, i, 0, b - i < 8 ? (unsigned)(b - i) : 8);
}
