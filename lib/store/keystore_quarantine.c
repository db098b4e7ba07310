/* keystore_quarantine.c - retiring stored bits that failed their digests
 * (docs/keystore.md, "Digests").
 *
 * A call that finds a chunk or key failing its digest notes the fault
 * (ks_fault_block, ks_fault_key) and fails with QKD_ERR_CORRUPT, so its
 * transaction rolls back and nothing is consumed; ks_finish then quarantines
 * the culprit in a transaction of its own. A QUARANTINED block keeps its row
 * (its id is never written again), loses its bits, digests and consumed
 * ranges (deleted, and overwritten by secure_delete), and waits for the link
 * to report it to the peer (reported = 0), so that both ends retire the
 * same blocks; the peer's reports arrive through qkd_store_quarantine. A
 * ready key manager key that fails becomes a 'quarantined' tombstone.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "keystore_int.h"
#include "qkd/error.h"

void ks_uuid_str(const uint8_t key_id[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[key_id[i] >> 4];
		out[o++] = hex[key_id[i] & 15];
	}
	out[o] = '\0';
}

int ks_fault_block(struct qkd_store *s, uint64_t id, uint64_t chunk, uint64_t nchunks,
		   const char **why)
{
	uint64_t a = chunk * KS_SUM_CHUNK, b = a + KS_SUM_CHUNK - 1;

	s->bad.kind = KS_BAD_BLOCK;
	s->bad.id = id;
	snprintf(s->bad.note, sizeof(s->bad.note),
		 "stored bits failed their digest (chunk %" PRIu64 " of %" PRIu64 ", bytes %"
		 PRIu64 "..%" PRIu64 ")", chunk, nchunks, a, b);
	snprintf(s->whybuf, sizeof(s->whybuf), "block %" PRIu64 ": %s", id, s->bad.note);
	ks_why(why, s->whybuf);
	return QKD_ERR_CORRUPT;
}

int ks_fault_key(struct qkd_store *s, const uint8_t key_id[16], const char **why)
{
	char u[37];

	ks_uuid_str(key_id, u);
	s->bad.kind = KS_BAD_KEY;
	memcpy(s->bad.key_id, key_id, 16);
	snprintf(s->bad.note, sizeof(s->bad.note), "stored bits failed their digest");
	snprintf(s->whybuf, sizeof(s->whybuf), "key %s: %s", u, s->bad.note);
	ks_why(why, s->whybuf);
	return QKD_ERR_CORRUPT;
}

int ks_why_quarantined(struct qkd_store *s, uint64_t id, const char **why)
{
	snprintf(s->whybuf, sizeof(s->whybuf), "block %" PRIu64 " is quarantined: its bits"
		 " failed their digest here or at the peer and were deleted", id);
	ks_why(why, s->whybuf);
	return QKD_ERR_CORRUPT;
}

/* Run sql with ?1 = id, ?2 = an integer, ?3 = text (may be NULL). */
static int run_note(struct qkd_store *s, const char *sql, uint64_t id, int64_t v,
		    const char *text, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = ks_prep(s, sql, &st, why);

	if (rc == 0) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
		sqlite3_bind_int64(st, 2, v);
		if (text != NULL)
			sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
		rc = ks_step_done(st, why);
	}
	sqlite3_finalize(st);
	return rc;
}

int ks_quarantine_block(struct qkd_store *s, uint64_t id, const char *note, bool reported,
			const char **why)
{
	struct qkd_store_block b;
	int64_t arg[] = { (int64_t)id };
	bool found = false;
	int rc = ks_block_row(s, id, &b, &found, why);

	if (rc != 0)
		return rc;
	if (!found)	/* a tombstone: the id is never written */
		return run_note(s, "INSERT INTO qblock (id, nbits, state, created, reported, note)"
				" VALUES (?1, 0, 'quarantined', unixepoch(), ?2, ?3)", id,
				reported, note, why);
	if (b.state == QKD_STORE_QUARANTINED)
		return reported ? ks_run(s, "UPDATE qblock SET reported = 1 WHERE id = ?1",
					 arg, 1, why) : 0;
	/* secure_delete overwrites the deleted bits and digests in the file */
	rc = ks_run(s, "DELETE FROM consumed_range WHERE block = ?1", arg, 1, why);
	if (rc == 0)
		rc = ks_run(s, "DELETE FROM qsum WHERE id = ?1", arg, 1, why);
	if (rc == 0)
		rc = ks_run(s, "DELETE FROM qbits WHERE id = ?1", arg, 1, why);
	if (rc == 0)
		rc = run_note(s, "UPDATE qblock SET state = 'quarantined', reported = ?2,"
			      " note = ?3 WHERE id = ?1", id, reported, note, why);
	return rc;
}

int ks_quarantine_key(struct qkd_store *s, const uint8_t key_id[16], const char **why)
{
	int64_t seq = 0, nbits = 0;
	bool found = false;
	sqlite3_stmt *st = NULL;
	int rc = ks_prep(s, "SELECT seq, nbits FROM kme_key WHERE key_id = ?1 AND state = 'ready'",
			 &st, why), src;

	if (rc == 0) {
		sqlite3_bind_blob(st, 1, key_id, 16, SQLITE_STATIC);
		src = sqlite3_step(st);
		found = src == SQLITE_ROW;
		if (found) {
			seq = sqlite3_column_int64(st, 0);
			nbits = sqlite3_column_int64(st, 1);
		}
		else if (src != SQLITE_DONE)
			rc = ks_err(s->db, src, why);
	}
	sqlite3_finalize(st);
	if (rc != 0 || !found)
		return rc;	/* gone since, or no longer ready: nothing to retire */
	rc = ks_run(s, "DELETE FROM kme_sum WHERE seq = ?1", &seq, 1, why);
	if (rc == 0)
		rc = ks_run(s, "DELETE FROM kme_bits WHERE seq = ?1", &seq, 1, why);
	if (rc == 0)
		rc = ks_run(s, "UPDATE kme_key SET state = 'quarantined' WHERE seq = ?1",
			    &seq, 1, why);
	if (rc == 0 && s->version >= KS_LIFE_VERSION)	/* no SAE gets these bits */
		rc = ks_kme_tally_add(s, "lost_bits", nbits > 0 ? (uint64_t)nbits : 0, why);
	return rc;
}

/* Quarantine the noted fault bad, in a transaction of its own. */
static int quarantine_now(struct qkd_store *s, const struct ks_bad *bad, const char **why)
{
	int rc = ks_begin(s, true, why);

	if (rc != 0)
		return rc;
	rc = ks_require_current(s, why);
	if (rc == 0 && bad->kind == KS_BAD_BLOCK)
		rc = ks_quarantine_block(s, bad->id, bad->note, false, why);
	else if (rc == 0)
		rc = ks_quarantine_key(s, bad->key_id, why);
	return ks_end(s, rc, why);
}

int ks_settle(struct qkd_store *s, const char **why)
{
	struct ks_bad bad = s->bad;
	const char *qwhy = NULL;
	size_t len;
	int rc;

	s->bad.kind = KS_BAD_NONE;
	if (bad.kind == KS_BAD_NONE)
		return 0;
	rc = quarantine_now(s, &bad, &qwhy);
	len = strnlen(s->whybuf, sizeof(s->whybuf));
	snprintf(s->whybuf + len, sizeof(s->whybuf) - len, rc == 0 ? "; quarantined"
		 : "; not quarantined: %s", qwhy != NULL ? qwhy : "?");
	ks_why(why, s->whybuf);
	return rc;
}

int ks_finish(struct qkd_store *s, int rc, bool quarantine, const char **why)
{
	rc = ks_end(s, rc, why);
	if (rc == QKD_ERR_CORRUPT && quarantine)
		(void)ks_settle(s, why);	/* the call failed all the same */
	s->bad.kind = KS_BAD_NONE;
	return rc;
}

/* ---- the link daemon's API ---- */

int qkd_store_quarantine(struct qkd_store *s, uint64_t id, const char **why)
{
	int rc;

	ks_why(why, NULL);
	if (s == NULL || id > QKD_STORE_ID_MAX) {
		ks_why(why, "no store given, or a block id out of range");
		return QKD_ERR_INVAL;
	}
	rc = ks_begin(s, true, why);
	if (rc != 0)
		return rc;
	rc = ks_require_current(s, why);
	if (rc == 0)
		rc = ks_quarantine_block(s, id, "reported by the peer", true, why);
	return ks_end(s, rc, why);
}

int qkd_store_quarantine_unreported(struct qkd_store *s, uint64_t *ids, size_t max, size_t *n,
				    const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc, src = SQLITE_DONE;

	ks_why(why, NULL);
	if (s == NULL || n == NULL || (ids == NULL && max > 0)) {
		ks_why(why, "no store or output given");
		return QKD_ERR_INVAL;
	}
	*n = 0;
	if (max == 0)
		return 0;
	rc = ks_begin(s, false, why);
	if (rc != 0)
		return rc;
	rc = ks_version_refresh(s, why);
	if (rc == 0 && s->version >= KS_SUM_VERSION)	/* older: nothing quarantined */
		rc = ks_prep(s, "SELECT id FROM qblock WHERE state = 'quarantined' AND reported = 0"
			     " ORDER BY id LIMIT ?1", &st, why);
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, max > (size_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)max);
		while ((src = sqlite3_step(st)) == SQLITE_ROW)
			ids[(*n)++] = (uint64_t)sqlite3_column_int64(st, 0);
		if (src != SQLITE_DONE)
			rc = ks_err(s->db, src, why);
	}
	sqlite3_finalize(st);
	rc = ks_end(s, rc, why);
	if (rc != 0)
		*n = 0;
	return rc;
}

int qkd_store_quarantine_reported(struct qkd_store *s, const uint64_t *ids, size_t n,
				  const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = ks_begin_batch(s, s != NULL && (ids != NULL || n == 0),
				"no store or block id given", n, why);

	if (rc != 0)
		return rc == KS_NOTHING ? 0 : rc;
	rc = ks_prep(s, "UPDATE qblock SET reported = 1 WHERE id = ?1 AND state = 'quarantined'",
		     &st, why);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, ids[i] > QKD_STORE_ID_MAX ? -1 : (sqlite3_int64)ids[i]);
		rc = ks_step_done(st, why);
	}
	sqlite3_finalize(st);
	return ks_end(s, rc, why);
}
