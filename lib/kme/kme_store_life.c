/* kme_store_life.c - the end of a key manager record's life
 * (qkd/kme_store.h; docs/keystore.md, "Life of a record"; docs/kme.md,
 * "Key lifecycle").
 *
 * Three chores, each one transaction, each driven by an explicit `now` so
 * that tests need no clock:
 *   expiry    a ready inbox key older than the TTL loses its bits
 *             (secure_delete overwrites them, as delivery does) and
 *             becomes an EXPIRED tombstone;
 *   pruning   a tombstone whose every segment lies in a block with no free
 *             bit left is deleted: consuming the block's bookkeeping refuses
 *             a replay of the record as surely as the tombstone did;
 *   restart   the outbox records of a master that stopped while enc_keys
 *             waited are abandoned: no SAE holds them, so they are withdrawn.
 * kme_tally keeps running totals (keys expired, bits lost, tombstones
 * pruned) that outlive the rows they count.
 */
#include <string.h>

#include "../store/keystore_int.h"
#include "qkd/error.h"
#include "qkd/kme_store.h"

/* Rows handled per call: bounds the transaction; the node calls again on
 * its next pass. */
#define LIFE_BATCH 1024
/* Tombstones prune looks at per call. */
#define PRUNE_SCAN (16 * LIFE_BATCH)

int ks_kme_tally_add(struct qkd_store *s, const char *name, uint64_t n, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (n == 0)
		return 0;
	rc = ks_prep(s, "INSERT INTO kme_tally (name, n) VALUES (?1, ?2)"
		     " ON CONFLICT (name) DO UPDATE SET n = n + excluded.n", &st, why);
	if (rc == 0) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, n > (uint64_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)n);
		rc = ks_step_done(st, why);
	}
	sqlite3_finalize(st);
	return rc;
}

/* Up to LIFE_BATCH (seq, nbits) pairs of sql's rows, ?1 bound to arg. */
static int select_rows(struct qkd_store *s, const char *sql, int64_t arg, int64_t *seqs,
		       int64_t *nbits, size_t *n, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = ks_prep(s, sql, &st, why), src = SQLITE_DONE;

	*n = 0;
	if (rc != 0)
		return rc;
	sqlite3_bind_int64(st, 1, arg);
	sqlite3_bind_int(st, 2, LIFE_BATCH);
	while (*n < LIFE_BATCH && (src = sqlite3_step(st)) == SQLITE_ROW) {
		seqs[*n] = sqlite3_column_int64(st, 0);
		nbits[(*n)++] = sqlite3_column_int64(st, 1);
	}
	if (src != SQLITE_ROW && src != SQLITE_DONE)
		rc = ks_err(s->db, src, why);
	sqlite3_finalize(st);
	return rc;
}

/* A ready key's bits deleted (and overwritten), its row an expired
 * tombstone, counted with its bits as lost. */
static int expire_one(struct qkd_store *s, int64_t seq, int64_t nbits, const char **why)
{
	int rc = ks_run(s, "DELETE FROM kme_sum WHERE seq = ?1", &seq, 1, why);

	if (rc == 0)
		rc = ks_run(s, "DELETE FROM kme_bits WHERE seq = ?1", &seq, 1, why);
	if (rc == 0)
		rc = ks_run(s, "UPDATE kme_key SET state = 'expired' WHERE seq = ?1", &seq, 1, why);
	if (rc == 0)
		rc = ks_kme_tally_add(s, "expired", 1, why);
	if (rc == 0)
		rc = ks_kme_tally_add(s, "lost_bits", nbits > 0 ? (uint64_t)nbits : 0, why);
	return rc;
}

int qkd_store_kme_expire(struct qkd_store *s, int64_t now, uint64_t ttl_s, size_t *n,
			 const char **why)
{
	int64_t seqs[LIFE_BATCH], nbits[LIFE_BATCH];
	size_t got = 0;
	int rc = ks_begin_batch(s, s != NULL && n != NULL && now >= 0,
				"no store or count given, or a time before 1970", ttl_s > 0, why);

	if (n != NULL)
		*n = 0;
	if (rc != 0)
		return rc == KS_NOTHING ? 0 : rc;	/* TTL 0: keys never expire */
	if (ttl_s > (uint64_t)now)	/* nothing can be that old */
		return ks_end(s, 0, why);
	rc = select_rows(s, "SELECT seq, nbits FROM kme_key WHERE state = 'ready'"
			 " AND dir = 'in' AND created <= ?1 ORDER BY created, seq LIMIT ?2",
			 now - (int64_t)ttl_s, seqs, nbits, &got, why);
	for (size_t i = 0; rc == 0 && i < got; i++)
		rc = expire_one(s, seqs[i], nbits[i], why);
	rc = ks_end(s, rc, why);
	if (rc == 0)
		*n = got;
	return rc;
}

/* Whether every segment of the segs blob lies in a block with no free bit
 * left ('used'): a record naming them again is refused on that alone. */
static int segs_spent(struct qkd_store *s, const void *blob, int len, bool *spent,
		      const char **why)
{
	struct qkd_store_seg segs[QKD_KME_KEY_SEGS_MAX];
	size_t nsegs = 0;
	int rc = ks_kme_segs_decode(blob, len, segs, &nsegs);

	*spent = rc == 0;
	rc = 0;		/* a malformed row is check's to report; it stays */
	for (size_t i = 0; rc == 0 && *spent && i < nsegs; i++) {
		struct qkd_store_block b;
		bool found = false;

		rc = ks_block_row(s, segs[i].id, &b, &found, why);
		*spent = rc == 0 && found && b.state == QKD_STORE_USED;
	}
	return rc;
}

/* Up to LIFE_BATCH prunable tombstones created up to cut, oldest first,
 * looking at PRUNE_SCAN candidates at most: a tombstone whose block still
 * has free bits does not hide the ones behind it, and a call stays bounded. */
static int prunable(struct qkd_store *s, int64_t cut, int64_t *seqs, size_t *n,
		    const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = ks_prep(s, "SELECT seq, segs FROM kme_key WHERE dir = 'in' AND segs IS NOT NULL"
			 " AND state IN ('delivered', 'refused', 'withdrawn', 'expired',"
			 " 'quarantined') AND created <= ?1 ORDER BY seq LIMIT ?2", &st, why);
	int src = SQLITE_DONE;
	bool spent = false;

	*n = 0;
	if (rc != 0)
		return rc;
	sqlite3_bind_int64(st, 1, cut);
	sqlite3_bind_int(st, 2, PRUNE_SCAN);
	while (rc == 0 && *n < LIFE_BATCH && (src = sqlite3_step(st)) == SQLITE_ROW) {
		rc = segs_spent(s, sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1),
				&spent, why);
		if (rc == 0 && spent)
			seqs[(*n)++] = sqlite3_column_int64(st, 0);
	}
	if (rc == 0 && src != SQLITE_ROW && src != SQLITE_DONE)
		rc = ks_err(s->db, src, why);
	sqlite3_finalize(st);
	return rc;
}

int qkd_store_kme_prune(struct qkd_store *s, int64_t now, uint64_t min_age_s, size_t *n,
			const char **why)
{
	int64_t seqs[LIFE_BATCH];
	size_t got = 0;
	int rc = ks_begin_batch(s, s != NULL && n != NULL && now >= 0,
				"no store or count given, or a time before 1970", 1, why);

	if (n != NULL)
		*n = 0;
	if (rc != 0)
		return rc == KS_NOTHING ? 0 : rc;
	if (min_age_s > (uint64_t)now)
		return ks_end(s, 0, why);
	rc = prunable(s, now - (int64_t)min_age_s, seqs, &got, why);
	for (size_t i = 0; rc == 0 && i < got; i++)
		rc = ks_run(s, "DELETE FROM kme_key WHERE seq = ?1", &seqs[i], 1, why);
	if (rc == 0)
		rc = ks_kme_tally_add(s, "pruned", got, why);
	rc = ks_end(s, rc, why);
	if (rc == 0)
		*n = got;
	return rc;
}

int qkd_store_kme_abandon_pending(struct qkd_store *s, size_t *n, const char **why)
{
	int64_t seqs[LIFE_BATCH], nbits[LIFE_BATCH];
	size_t got = 0;
	int rc = ks_begin_batch(s, s != NULL && n != NULL, "no store or count given", 1, why);

	if (n != NULL)
		*n = 0;
	if (rc != 0)
		return rc == KS_NOTHING ? 0 : rc;
	rc = select_rows(s, "SELECT seq, nbits FROM kme_key WHERE dir = 'out' AND state = 'pending'"
			 " AND seq > ?1 ORDER BY seq LIMIT ?2", 0, seqs, nbits, &got, why);
	for (size_t i = 0; rc == 0 && i < got; i++) {
		rc = ks_run(s, "UPDATE kme_key SET state = 'abandoned' WHERE seq = ?1", &seqs[i], 1,
			    why);
		if (rc == 0)
			rc = ks_kme_tally_add(s, "lost_bits", nbits[i] > 0 ? (uint64_t)nbits[i] : 0,
					      why);
	}
	rc = ks_end(s, rc, why);
	if (rc == 0)
		*n = got;
	return rc;
}

/* The tallies into c (zero for a store older than KS_LIFE_VERSION), in the
 * caller's read transaction. */
int ks_kme_tally_read(struct qkd_store *s, struct qkd_kme_counts *c, const char **why)
{
	sqlite3_stmt *st = NULL;
	/* A reader's handle on an older file notices an upgrade made since. */
	int rc = s->version < KS_LIFE_VERSION ? ks_version_refresh(s, why) : 0;
	int src = SQLITE_DONE;

	if (rc != 0 || s->version < KS_LIFE_VERSION)
		return rc;
	rc = ks_prep(s, "SELECT name, n FROM kme_tally", &st, why);
	while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		uint64_t v = (uint64_t)sqlite3_column_int64(st, 1);

		if (name != NULL && strcmp(name, "expired") == 0)
			c->expired = v;
		else if (name != NULL && strcmp(name, "lost_bits") == 0)
			c->lost_bits = v;
		else if (name != NULL && strcmp(name, "pruned") == 0)
			c->pruned = v;
	}
	if (rc == 0 && src != SQLITE_DONE)
		rc = ks_err(s->db, src, why);
	sqlite3_finalize(st);
	return rc;
}
