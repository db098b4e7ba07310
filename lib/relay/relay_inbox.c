/* relay_inbox.c - the destination's keys relayed to its SAEs
 * (qkd/relay_inbox.h, docs/relay.md "The destination's inbox").
 *
 * One table in its own SQLite file, synchronous = FULL in WAL mode so a
 * put that returned survives a crash: the completion notification goes
 * only after it. Bits are deleted when a key is delivered or expires; the
 * row stays as a tombstone so a key_ID is served at most once.
 */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/relay_inbox.h"
#include "qkd/secret.h"

struct qkd_relay_inbox {
	sqlite3 *db;
};

static const char schema[] =
	"PRAGMA journal_mode = WAL;"
	"PRAGMA synchronous = FULL;"
	"CREATE TABLE IF NOT EXISTS relayed_key ("
	"  key_id BLOB PRIMARY KEY CHECK (length(key_id) = 16),"
	"  master TEXT NOT NULL CHECK (length(CAST(master AS BLOB)) BETWEEN 1 AND 64),"
	"  slave TEXT NOT NULL CHECK (length(CAST(slave AS BLOB)) BETWEEN 1 AND 64),"
	"  source TEXT NOT NULL,"
	"  nbits INTEGER NOT NULL CHECK (nbits BETWEEN 8 AND 65536 AND nbits % 8 = 0),"
	"  state TEXT NOT NULL CHECK (state IN ('ready', 'delivered', 'expired')),"
	"  bits BLOB,"
	"  created INTEGER NOT NULL,"
	"  CHECK ((state = 'ready') = (bits IS NOT NULL))"
	") STRICT, WITHOUT ROWID;";

static int db_fail(struct qkd_relay_inbox *ib, const char **why)
{
	*why = sqlite3_errmsg(ib->db);
	return QKD_ERR_IO;
}

int qkd_relay_inbox_open(struct qkd_relay_inbox **out, const char *path, const char **why)
{
	struct qkd_relay_inbox *ib = calloc(1, sizeof *ib);
	int rc = QKD_ERR_IO;

	*out = NULL;
	*why = "out of memory";
	if (ib == NULL)
		return QKD_ERR_NOMEM;
	if (sqlite3_open_v2(path, &ib->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(ib->db, 5000) != SQLITE_OK ||
	    sqlite3_exec(ib->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		/* sqlite3_errmsg belongs to the handle closed below: a static reason */
		*why = "cannot open or create the relay inbox (a SQLite file)";
		goto out;
	}
	*out = ib;
	ib = NULL;
	rc = QKD_OK;
out:
	qkd_relay_inbox_close(ib);
	return rc;
}

void qkd_relay_inbox_close(struct qkd_relay_inbox *ib)
{
	if (ib == NULL)
		return;
	sqlite3_close(ib->db);
	free(ib);
}

/* An existing row for key_id against a new put: 0 when it is the same key. */
static int put_again(sqlite3_stmt *st, const char *master, const char *slave, const uint8_t *key,
		     uint32_t nbits, const char **why)
{
	const char *m = (const char *)sqlite3_column_text(st, 0);
	const char *s = (const char *)sqlite3_column_text(st, 1);
	const char *state = (const char *)sqlite3_column_text(st, 3);
	const void *bits = sqlite3_column_blob(st, 4);

	*why = "the key_ID is held for another pair or length, or with other bits";
	if (m == NULL || s == NULL || state == NULL || strcmp(m, master) != 0 ||
	    strcmp(s, slave) != 0 || sqlite3_column_int64(st, 2) != (sqlite3_int64)nbits)
		return QKD_ERR_VERIFY;
	if (strcmp(state, "ready") == 0 &&
	    (sqlite3_column_bytes(st, 4) != (int)(nbits / 8) || !qkd_ct_equal(bits, key, nbits / 8)))
		return QKD_ERR_VERIFY;
	/* Expired or withdrawn: acknowledging it would tell the source the key
	 * is here to be served, and it never will be. */
	*why = "the key_ID expired or was withdrawn here";
	if (strcmp(state, "expired") == 0)
		return QKD_ERR_INVAL;
	*why = NULL;
	return QKD_OK;
}

int qkd_relay_inbox_put(struct qkd_relay_inbox *ib, const uint8_t key_id[16], const char *master,
			const char *slave, const char *source, const uint8_t *key, uint32_t nbits,
			int64_t now, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = QKD_ERR_IO, src;

	*why = NULL;
	if (sqlite3_prepare_v2(ib->db, "SELECT master, slave, nbits, state, bits FROM relayed_key"
			       " WHERE key_id = ?1", -1, &st, NULL) != SQLITE_OK)
		return db_fail(ib, why);
	sqlite3_bind_blob(st, 1, key_id, 16, SQLITE_STATIC);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		rc = put_again(st, master, slave, key, nbits, why);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (src != SQLITE_DONE ||
	    sqlite3_prepare_v2(ib->db, "INSERT INTO relayed_key (key_id, master, slave, source,"
			       " nbits, state, bits, created) VALUES (?1, ?2, ?3, ?4, ?5, 'ready',"
			       " ?6, ?7)", -1, &st, NULL) != SQLITE_OK)
		return db_fail(ib, why);
	sqlite3_bind_blob(st, 1, key_id, 16, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, master, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, slave, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)nbits);
	sqlite3_bind_blob(st, 6, key, (int)(nbits / 8), SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)now);
	rc = sqlite3_step(st) == SQLITE_DONE ? QKD_OK : db_fail(ib, why);
out:
	sqlite3_finalize(st);
	return rc;
}

/* One key of a take, in the open transaction. */
static int take_one(struct qkd_relay_inbox *ib, const char *master, const char *slave,
		    const uint8_t id[16], uint8_t *out, size_t cap, size_t *len, const char **why)
{
	sqlite3_stmt *st = NULL;
	const char *state;
	int rc = QKD_ERR_INVAL;

	if (sqlite3_prepare_v2(ib->db, "SELECT master, slave, state, bits FROM relayed_key"
			       " WHERE key_id = ?1", -1, &st, NULL) != SQLITE_OK)
		return db_fail(ib, why);
	sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
	*why = "key_ID unknown or already delivered";
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	state = (const char *)sqlite3_column_text(st, 2);
	if (state != NULL && strcmp(state, "expired") == 0)
		*why = "key_ID expired unfetched";
	if (state == NULL || strcmp(state, "ready") != 0)
		goto out;
	rc = QKD_ERR_VERIFY;
	*why = "key_ID was issued to another pair of SAEs";
	if (strcmp((const char *)sqlite3_column_text(st, 0), master) != 0 ||
	    strcmp((const char *)sqlite3_column_text(st, 1), slave) != 0)
		goto out;
	rc = QKD_ERR_RANGE;
	*why = "buffer too small for the key";
	if ((size_t)sqlite3_column_bytes(st, 3) > cap)
		goto out;
	*len = (size_t)sqlite3_column_bytes(st, 3);
	memcpy(out, sqlite3_column_blob(st, 3), *len);
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(ib->db, "UPDATE relayed_key SET state = 'delivered', bits = NULL"
			       " WHERE key_id = ?1", -1, &st, NULL) != SQLITE_OK)
		return db_fail(ib, why);
	sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? QKD_OK : db_fail(ib, why);
	if (rc == QKD_OK)
		*why = NULL;
out:
	sqlite3_finalize(st);
	return rc;
}

int qkd_relay_inbox_take(struct qkd_relay_inbox *ib, const char *master, const char *slave,
			 const uint8_t (*ids)[16], size_t n, uint8_t **outs, size_t cap,
			 size_t *lens, size_t *bad, const char **why)
{
	int rc = QKD_OK;

	*bad = n;
	if (sqlite3_exec(ib->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(ib, why);
	for (size_t i = 0; rc == QKD_OK && i < n; i++) {
		rc = take_one(ib, master, slave, ids[i], outs[i], cap, &lens[i], why);
		if (rc != QKD_OK)
			*bad = i;
	}
	if (rc == QKD_OK && sqlite3_exec(ib->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = db_fail(ib, why);
	if (rc != QKD_OK) {
		(void)sqlite3_exec(ib->db, "ROLLBACK", NULL, NULL, NULL);
		for (size_t i = 0; i < n; i++)
			qkd_wipe(outs[i], cap);
	}
	return rc;
}

int qkd_relay_inbox_withdraw(struct qkd_relay_inbox *ib, const uint8_t key_id[16],
			     const char *source, bool *found, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*found = false;
	if (sqlite3_prepare_v2(ib->db, "UPDATE relayed_key SET state = 'expired', bits = NULL"
			       " WHERE key_id = ?1 AND source = ?2 AND state = 'ready'", -1, &st,
			       NULL) != SQLITE_OK)
		return db_fail(ib, why);
	sqlite3_bind_blob(st, 1, key_id, 16, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? QKD_OK : db_fail(ib, why);
	if (rc == QKD_OK)
		*found = sqlite3_changes(ib->db) > 0;
	sqlite3_finalize(st);
	return rc;
}

int qkd_relay_inbox_expire(struct qkd_relay_inbox *ib, int64_t now, uint64_t ttl_s, size_t *n,
			   const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*n = 0;
	if (ttl_s == 0)
		return QKD_OK;
	if (sqlite3_prepare_v2(ib->db, "UPDATE relayed_key SET state = 'expired', bits = NULL"
			       " WHERE state = 'ready' AND created + ?1 <= ?2", -1, &st,
			       NULL) != SQLITE_OK)
		return db_fail(ib, why);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ttl_s);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	rc = sqlite3_step(st) == SQLITE_DONE ? QKD_OK : db_fail(ib, why);
	if (rc == QKD_OK)
		*n = (size_t)sqlite3_changes(ib->db);
	sqlite3_finalize(st);
	return rc;
}

int qkd_relay_inbox_counts(struct qkd_relay_inbox *ib, struct qkd_relay_inbox_counts *c,
			   const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = QKD_OK, src;

	memset(c, 0, sizeof *c);
	if (sqlite3_prepare_v2(ib->db, "SELECT state, count(*) FROM relayed_key GROUP BY state", -1,
			       &st, NULL) != SQLITE_OK)
		return db_fail(ib, why);
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);
		uint64_t k = (uint64_t)sqlite3_column_int64(st, 1);

		if (s != NULL && strcmp(s, "ready") == 0)
			c->ready = k;
		else if (s != NULL && strcmp(s, "delivered") == 0)
			c->delivered = k;
		else
			c->expired = k;
	}
	if (src != SQLITE_DONE)
		rc = db_fail(ib, why);
	sqlite3_finalize(st);
	return rc;
}
