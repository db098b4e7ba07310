/* keystore_sql.c - SQLite plumbing of the key store: error mapping,
 * statements, transactions, blob I/O, and bit copying between LSB-first
 * byte strings at arbitrary bit offsets. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "keystore_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

static const char nospace[] = "no space left on device";
static const char readonly[] =
	"the key store is read-only (its file or file system refuses writes)";

/* An I/O error or a refused open, told apart by the system call's errno. */
static int err_sys(sqlite3 *db, int sqlite_rc, const char **why)
{
	int e = db != NULL ? sqlite3_system_errno(db) : 0;

	if (e == ENOSPC || e == EDQUOT) {
		ks_why(why, nospace);
		return QKD_ERR_NOSPACE;
	}
	if (e == EROFS || e == EPERM || e == EACCES) {
		ks_why(why, readonly);
		return QKD_ERR_READONLY;
	}
	ks_why(why, (sqlite_rc & 0xff) == SQLITE_CANTOPEN ? "cannot open the key store file"
		    : "disk I/O error on the key store");
	return QKD_ERR_IO;
}

int ks_err(sqlite3 *db, int sqlite_rc, const char **why)
{
	switch (sqlite_rc & 0xff) {
	case SQLITE_NOMEM:
		ks_why(why, "out of memory");
		return QKD_ERR_NOMEM;
	case SQLITE_FULL:
		ks_why(why, nospace);
		return QKD_ERR_NOSPACE;
	case SQLITE_READONLY:
		ks_why(why, readonly);
		return QKD_ERR_READONLY;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
		return err_sys(db, sqlite_rc, why);
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

	return rc == SQLITE_OK ? 0 : ks_err(s->db, rc, why);
}

int ks_exec(struct qkd_store *s, const char *sql, const char **why)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : ks_err(s->db, rc, why);
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
	return ks_err(sqlite3_db_handle(st), rc, why);
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

/* Whether the file takes writes, asked of the file system before SQLite
 * writes anything: a journal written and then not played back (the
 * database file turned immutable) would leave every later read failing
 * until the file is writable again. */
static int writable(struct qkd_store *s, const char **why)
{
	const char *path = sqlite3_db_filename(s->db, "main");

	if (path == NULL || path[0] == '\0' || faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) == 0)
		return 0;
	if (errno == EROFS || errno == EPERM || errno == EACCES) {
		ks_why(why, readonly);
		return QKD_ERR_READONLY;
	}
	return 0;	/* anything else shows when SQLite writes */
}

/* IMMEDIATE takes the write lock at BEGIN, so a writer never fails half-way
 * through with SQLITE_BUSY when another process wrote first. */
int ks_begin(struct qkd_store *s, bool write, const char **why)
{
	int rc = write ? writable(s, why) : 0;

	s->bad.kind = KS_BAD_NONE;
	return rc != 0 ? rc : ks_exec(s, write ? "BEGIN IMMEDIATE" : "BEGIN", why);
}

int ks_begin_batch(struct qkd_store *s, bool args_ok, const char *bad, size_t n,
		   const char **why)
{
	int rc;

	ks_why(why, NULL);
	if (!args_ok) {
		ks_why(why, bad);
		return QKD_ERR_INVAL;
	}
	if (n == 0)
		return KS_NOTHING;
	rc = ks_begin(s, true, why);
	if (rc == 0 && (rc = ks_require_current(s, why)) != 0)
		ks_rollback(s);
	return rc;
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

static const char *const old_schema[] = {
	[1] = "the key store predates key manager records and digests (schema version 1):"
	      " open it for writing to upgrade it",
	[2] = "the key store predates the digests of its bits (schema version 2):"
	      " open it for writing to upgrade it",
	[3] = "the key store predates key expiry (schema version 3):"
	      " open it for writing to upgrade it",
};

_Static_assert(sizeof(old_schema) / sizeof(old_schema[0]) == QKD_STORE_SCHEMA_VERSION,
	       "a reason for every older schema version");

int ks_require_current(struct qkd_store *s, const char **why)
{
	int rc = s->version >= QKD_STORE_SCHEMA_VERSION ? 0 : ks_version_refresh(s, why);

	if (rc == 0 && s->version < QKD_STORE_SCHEMA_VERSION) {
		ks_why(why, s->version >= 1 ? old_schema[s->version]
		       : "the key store file is corrupt (bad schema version)");
		rc = QKD_ERR_INVAL;
	}
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
		rc = ks_err(s->db, src, why);
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

int ks_blob_open(struct qkd_store *s, const char *table, const char *col, int64_t row,
		 bool rw, sqlite3_blob **b, const char **why)
{
	int rc = sqlite3_blob_open(s->db, "main", table, col, (sqlite3_int64)row, rw, b);

	if (rc == SQLITE_OK)
		return 0;
	sqlite3_blob_close(*b);
	*b = NULL;
	if ((rc & 0xff) == SQLITE_ERROR) {
		ks_why(why, "the key store is inconsistent (bits or digests missing)");
		return QKD_ERR_IO;
	}
	return ks_err(s->db, rc, why);
}

int ks_blob_close(struct qkd_store *s, sqlite3_blob *b, int rc, const char **why)
{
	if (b != NULL && sqlite3_blob_close(b) != SQLITE_OK && rc == 0)
		rc = ks_err(s->db, sqlite3_errcode(s->db), why);
	return rc;
}

/* Blocks are at most 2^28 bytes, so int offsets hold. */
int ks_blob_xfer(struct qkd_store *s, sqlite3_blob *b, const void *wbuf, void *rbuf,
		 uint64_t off, uint64_t n, const char **why)
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
	return rc == SQLITE_OK ? 0 : ks_err(s->db, rc, why);
}

int ks_blob_read_in(struct qkd_store *s, const char *table, int64_t row, uint64_t off,
		    void *buf, uint64_t n, const char **why)
{
	sqlite3_blob *b = NULL;
	int rc = ks_blob_open(s, table, "bits", row, false, &b, why);

	if (rc == 0)
		rc = ks_blob_xfer(s, b, NULL, buf, off, n, why);
	sqlite3_blob_close(b);
	return rc;
}

int ks_blob_write_in(struct qkd_store *s, const char *table, int64_t row, uint64_t off,
		     const void *buf, uint64_t n, const char **why)
{
	sqlite3_blob *b = NULL;
	int rc = ks_blob_open(s, table, "bits", row, true, &b, why);

	if (rc == 0)
		rc = ks_blob_xfer(s, b, buf, NULL, off, n, why);
	return ks_blob_close(s, b, rc, why);
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
	int rc = ks_blob_open(s, "qbits", "bits", (int64_t)id, false, &b, why);

	/* No early exit on a differing chunk: the time depends on n only. */
	size_ok = rc == 0 && (uint64_t)sqlite3_blob_bytes(b) == n;
	diff = !size_ok;
	for (uint64_t off = 0; size_ok && rc == 0 && off < n; off += KS_CHUNK) {
		uint64_t step = n - off < KS_CHUNK ? n - off : KS_CHUNK;

		rc = ks_blob_xfer(s, b, NULL, buf, off, step, why);
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
	int rc = ks_blob_open(s, "qbits", "bits", (int64_t)id, true, &b, why);

	while (rc == 0 && n > 0) {
		uint64_t step = n < KS_CHUNK ? n : KS_CHUNK;

		rc = ks_blob_xfer(s, b, zeros, NULL, off, step, why);
		off += step;
		n -= step;
	}
	return ks_blob_close(s, b, rc, why);
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
