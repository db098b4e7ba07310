/* kme_store_wd.c - key manager records given up on (qkd/kme_store.h;
 * docs/keystore.md, "Life of a record").
 *
 * The master's enc_keys waits a bounded time for the peer's verdict and
 * then answers 503. The peer may still accept the record, or may have
 * accepted it already, and would then hold a key that looks deliverable
 * for ever while no master SAE has its twin. So the master marks such
 * records ABANDONED (they stay in its outbox) and the link sends a
 * withdrawal in place of the record; the slave retires its copy, or leaves
 * a WITHDRAWN tombstone for a key_ID it never saw, so that the record can
 * never be accepted later; its verdict lets the master drop the outbox
 * record. A withdrawal carries the record's segments: a slave that never
 * saw the record consumes them too (when it can: blocks final here, in
 * the peer's half, bits free), so the two stores stay in step.
 */
#include "../store/keystore_int.h"
#include "qkd/error.h"
#include "qkd/kme_store.h"
#include "qkd/secret.h"

/* A row with only a key_id: an abandoned outbox entry or a withdrawn
 * inbox tombstone. */
static int insert_bare(struct qkd_store *s, const uint8_t key_id[16], bool out,
		       enum ks_kme_state state, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = ks_prep(s, "INSERT INTO kme_key (key_id, dir, state, created)"
			 " VALUES (?1, ?2, ?3, unixepoch())", &st, why);

	if (rc == 0) {
		sqlite3_bind_blob(st, 1, key_id, 16, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, out ? "out" : "in", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, ks_kme_state_names[state], -1, SQLITE_STATIC);
		rc = ks_step_done(st, why);
	}
	sqlite3_finalize(st);
	return rc;
}

static int abandon_one(struct qkd_store *s, const uint8_t key_id[16], const char **why)
{
	struct ks_kme_row row;
	bool found = false;
	int rc = ks_kme_find(s, key_id, &row, &found, why);

	if (rc != 0)
		return rc;
	if (!found)	/* settled just before: withdraw it all the same */
		return insert_bare(s, key_id, true, KME_ABANDONED, why);
	if (row.out && row.state == KME_PENDING) {	/* its bits reach no SAE now */
		rc = ks_run(s, "UPDATE kme_key SET state = 'abandoned' WHERE seq = ?1",
			    &row.seq, 1, why);
		return rc == 0 ? ks_kme_tally_add(s, "lost_bits", row.rec.nbits, why) : rc;
	}
	return 0;	/* abandoned already, or a key of this end's inbox */
}

int qkd_store_kme_abandon(struct qkd_store *s, const uint8_t (*ids)[16], size_t n,
			  const char **why)
{
	int rc = ks_begin_batch(s, s != NULL && (n == 0 || ids != NULL),
				"no store or key_ID given", n, why);

	if (rc != 0)
		return rc == KS_NOTHING ? 0 : rc;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = abandon_one(s, ids[i], why);
	return ks_end(s, rc, why);
}

/* A ready key withdrawn: its bits go (secure_delete overwrites them), its
 * row stays as the tombstone. */
static int retire_ready(struct qkd_store *s, int64_t seq, uint32_t nbits, const char **why)
{
	int rc = ks_run(s, "DELETE FROM kme_sum WHERE seq = ?1", &seq, 1, why);

	if (rc == 0)
		rc = ks_run(s, "DELETE FROM kme_bits WHERE seq = ?1", &seq, 1, why);
	if (rc == 0)
		rc = ks_run(s, "UPDATE kme_key SET state = 'withdrawn' WHERE seq = ?1", &seq, 1,
			    why);
	if (rc == 0)
		rc = ks_kme_tally_add(s, "lost_bits", nbits, why);
	return rc;
}

/* The segments of a withdrawn record this end never saw, consumed as the
 * master consumed them: all of them in the peer's half, or none (a block
 * not final here, or bits already gone, leaves everything as it was). */
static int consume_withdrawn(struct qkd_store *s, unsigned peer_parity,
			     const struct qkd_kme_rec *rec, const char **why)
{
	uint8_t buf[QKD_KME_KEY_BITS_MAX / 8];
	uint64_t total = ks_segs_total(rec->segs, rec->nsegs);
	const char *w = NULL;
	int rc;

	if (rec->nsegs == 0 || rec->nsegs > QKD_KME_KEY_SEGS_MAX || total == 0 ||
	    total > QKD_KME_KEY_BITS_MAX)
		return 0;
	for (size_t i = 0; i < rec->nsegs; i++)
		if (rec->segs[i].id % 2 != peer_parity)
			return 0;
	rc = ks_exec(s, "SAVEPOINT kme_withdraw", why);
	if (rc == 0) {
		rc = ks_consume_all(s, rec->segs, rec->nsegs, buf, ks_nbytes(total), &w);
		if (rc == QKD_ERR_INVAL || rc == QKD_ERR_CORRUPT)
			rc = ks_exec(s, "ROLLBACK TO kme_withdraw", why);
		else if (rc != 0)
			ks_why(why, w);
		else	/* consumed here for a key no SAE gets */
			rc = ks_kme_tally_add(s, "lost_bits", total, why);
	}
	if (rc == 0)
		rc = ks_exec(s, "RELEASE kme_withdraw", why);
	qkd_wipe(buf, sizeof buf);
	return rc;
}

static int withdraw_one(struct qkd_store *s, unsigned peer_parity,
			const struct qkd_kme_rec *rec, enum qkd_kme_withdraw_verdict *v,
			const char **why)
{
	struct ks_kme_row row;
	bool found = false;
	int rc = ks_kme_find(s, rec->key_id, &row, &found, why);

	*v = QKD_KME_WD_WITHDRAWN;
	if (rc != 0)
		return rc;
	if (!found) {	/* a record sent later with this key_ID is refused */
		rc = consume_withdrawn(s, peer_parity, rec, why);
		return rc == 0 ? insert_bare(s, rec->key_id, false, KME_WITHDRAWN, why) : rc;
	}
	if (row.out)	/* not a key of the peer's: nothing of it here */
		return 0;
	if (row.state == KME_DELIVERED)
		*v = QKD_KME_WD_DELIVERED;
	return row.state == KME_READY ? retire_ready(s, row.seq, row.rec.nbits, why) : 0;
}

int qkd_store_kme_withdraw_batch(struct qkd_store *s, unsigned peer_parity,
				 const struct qkd_kme_rec *recs, size_t n,
				 enum qkd_kme_withdraw_verdict *v, const char **why)
{
	int rc = ks_begin_batch(s, s != NULL && peer_parity <= 1 &&
				   (n == 0 || (recs != NULL && v != NULL)),
				"no store, key_ID or verdict given, or a parity not 0 or 1", n, why);

	if (rc != 0)
		return rc == KS_NOTHING ? 0 : rc;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = withdraw_one(s, peer_parity, &recs[i], &v[i], why);
	return ks_end(s, rc, why);
}
