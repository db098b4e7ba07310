/* keystore_check.c - verify the invariants of docs/keystore.md on a whole
 * store (start-up of the node daemon, the crash tests). The table
 * constraints already hold each row to its own rules; these queries check
 * the rules that span rows and tables. Each must return no row. The key
 * manager's segments are a blob, so they are walked in C. */
#include "keystore_int.h"
#include "qkd/error.h"
#include "qkd/kme_store.h"

struct rule {
	const char *sql;
	const char *why;
};

static const struct rule rules[] = {
	{ "SELECT 1 FROM pragma_foreign_key_check LIMIT 1",
	  "the key store is inconsistent: a range or bits without their block" },
	{ "SELECT 1 FROM qblock q LEFT JOIN qbits b ON b.id = q.id"
	  " WHERE (q.state IN ('used', 'quarantined')) <> (b.id IS NULL) LIMIT 1",
	  "the key store is inconsistent: bits missing for a block pending or final,"
	  " or kept for a used or quarantined one" },
	{ "SELECT 1 FROM qblock q JOIN qbits b ON b.id = q.id"
	  " WHERE length(b.bits) <> (q.nbits + 7) / 8 LIMIT 1",
	  "the key store is inconsistent: bits of the wrong length" },
	{ "SELECT 1 FROM consumed_range r JOIN qblock q ON q.id = r.block"
	  " WHERE q.state <> 'final' OR r.off + r.nbits > q.nbits LIMIT 1",
	  "the key store is inconsistent: a consumed range outside its block or on a block not final" },
	{ "SELECT 1 FROM (SELECT off, lag(off + nbits) OVER"
	  " (PARTITION BY block ORDER BY off) AS prev_end FROM consumed_range)"
	  " WHERE off < prev_end LIMIT 1",
	  "the key store is inconsistent: overlapping consumed ranges" },
	{ "SELECT 1 FROM qblock q WHERE q.state = 'final' AND q.consumed <>"
	  " (SELECT coalesce(sum(r.nbits), 0) FROM consumed_range r WHERE r.block = q.id)"
	  " LIMIT 1",
	  "the key store is inconsistent: consumed count differs from the consumed ranges" },
};

/* Schema version 3 on: the digests (docs/keystore.md, "Digests"). */
static const struct rule sum_rules[] = {
	{ "SELECT 1 FROM qbits b LEFT JOIN qsum d ON d.id = b.id WHERE d.id IS NULL"
	  " UNION ALL SELECT 1 FROM qsum d LEFT JOIN qbits b ON b.id = d.id WHERE b.id IS NULL"
	  " LIMIT 1",
	  "the key store is inconsistent: digests missing for a block's bits, or kept without them" },
	{ "SELECT 1 FROM qbits b JOIN qsum d ON d.id = b.id"
	  " WHERE length(d.sums) <> 16 * ((length(b.bits) + 511) / 512) LIMIT 1",
	  "the key store is inconsistent: a block's digests of the wrong length" },
	{ "SELECT 1 FROM kme_bits b LEFT JOIN kme_sum d ON d.seq = b.seq WHERE d.seq IS NULL"
	  " UNION ALL SELECT 1 FROM kme_sum d LEFT JOIN kme_bits b ON b.seq = d.seq"
	  " WHERE b.seq IS NULL LIMIT 1",
	  "the key store is inconsistent: a ready key's digest missing, or kept without its bits" },
};

/* Schema version 2 on: the key manager's records (docs/keystore.md, "Key
 * manager records"). */
static const struct rule kme_rules[] = {
	{ "SELECT 1 FROM kme_key k LEFT JOIN kme_bits b ON b.seq = k.seq"
	  " WHERE (k.state = 'ready') <> (b.seq IS NOT NULL) LIMIT 1",
	  "the key store is inconsistent: bits missing for a ready key, or kept for one not ready" },
	{ "SELECT 1 FROM kme_key k JOIN kme_bits b ON b.seq = k.seq"
	  " WHERE length(b.bits) <> k.nbits / 8 LIMIT 1",
	  "the key store is inconsistent: key manager bits of the wrong length" },
};

/* rc 0 and *bad true when sql returns a row. */
static int any_row(struct qkd_store *s, const char *sql, bool *bad, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = ks_prep(s, sql, &st, why), src;

	*bad = false;
	if (rc != 0)
		goto out;
	src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		*bad = true;
	else if (src != SQLITE_DONE)
		rc = ks_err(s->db, src, why);
out:
	sqlite3_finalize(st);
	return rc;
}

static int quick_check(struct qkd_store *s, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = ks_prep(s, "PRAGMA quick_check", &st, why), src;

	if (rc != 0)
		goto out;
	src = sqlite3_step(st);
	if (src != SQLITE_ROW) {
		rc = ks_err(s->db, src == SQLITE_DONE ? SQLITE_CORRUPT : src, why);
		goto out;
	}
	if (sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		ks_why(why, "the key store file is corrupt (SQLite quick_check failed)");
		rc = QKD_ERR_IO;
	}
out:
	sqlite3_finalize(st);
	return rc;
}

static int run_rules(struct qkd_store *s, const struct rule *r, size_t n, const char **why)
{
	bool bad = false;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = any_row(s, r[i].sql, &bad, why);
		if (rc == 0 && bad) {
			ks_why(why, r[i].why);
			rc = QKD_ERR_IO;
		}
	}
	return rc;
}

/* Whether seg's bits are consumed in its block: the block is USED (or
 * QUARANTINED since), or FINAL with one merged consumed range holding all
 * of the segment. */
static int seg_consumed(struct qkd_store *s, const struct qkd_store_seg *g, bool *ok,
			const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc, src;

	*ok = false;
	if (g->offset > QKD_STORE_BLOCK_MAX_BITS || g->nbits > QKD_STORE_BLOCK_MAX_BITS)
		return 0;
	rc = ks_prep(s, "SELECT ?2 + ?3 <= q.nbits AND (q.state IN ('used', 'quarantined') OR EXISTS"
		     " (SELECT 1 FROM consumed_range r WHERE r.block = q.id AND r.off <= ?2"
		     " AND r.off + r.nbits >= ?2 + ?3)) FROM qblock q WHERE q.id = ?1", &st, why);
	if (rc != 0)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)g->id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)g->offset);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)g->nbits);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		*ok = sqlite3_column_int(st, 0) != 0;
	else if (src != SQLITE_DONE)
		rc = ks_err(s->db, src, why);
out:
	sqlite3_finalize(st);
	return rc;
}

/* One record's segments: they sum to its length and, unless it was
 * refused (a refusal may have consumed nothing), are consumed here. A
 * tombstone without contents (withdrawn or abandoned) has none. */
static int check_segs(struct qkd_store *s, sqlite3_stmt *st, const char **why)
{
	struct qkd_store_seg segs[QKD_KME_KEY_SEGS_MAX];
	const void *blob = sqlite3_column_blob(st, 0);
	const unsigned char *state = sqlite3_column_text(st, 2);
	bool refused = state != NULL && sqlite3_stricmp((const char *)state, "refused") == 0;
	bool ok = true;
	size_t n = 0;
	int rc;

	if (sqlite3_column_type(st, 0) == SQLITE_NULL)
		return 0;
	rc = ks_kme_segs_decode(blob, sqlite3_column_bytes(st, 0), segs, &n);

	if (rc != 0 || ks_segs_total(segs, n) != (uint64_t)sqlite3_column_int64(st, 1)) {
		ks_why(why, "the key store is inconsistent: a key's segments do not make its length");
		return QKD_ERR_IO;
	}
	for (size_t i = 0; rc == 0 && ok && !refused && i < n; i++)
		rc = seg_consumed(s, &segs[i], &ok, why);
	if (rc == 0 && !ok) {
		ks_why(why, "the key store is inconsistent: a key's bits are not consumed in its blocks");
		rc = QKD_ERR_IO;
	}
	return rc;
}

static int check_kme(struct qkd_store *s, const char **why)
{
	sqlite3_stmt *st = NULL;
	bool present = false;
	int rc = ks_kme_present(s, &present, why), src = SQLITE_DONE;

	if (rc != 0 || !present)
		return rc;
	rc = run_rules(s, kme_rules, sizeof(kme_rules) / sizeof(kme_rules[0]), why);
	if (rc == 0)
		rc = ks_prep(s, "SELECT segs, nbits, state FROM kme_key", &st, why);
	while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW)
		rc = check_segs(s, st, why);
	if (rc == 0 && src != SQLITE_DONE)
		rc = ks_err(s->db, src, why);
	sqlite3_finalize(st);
	return rc;
}

int qkd_store_check(struct qkd_store *s, const char **why)
{
	int rc;

	ks_why(why, NULL);
	if (s == NULL) {
		ks_why(why, "no store given");
		return QKD_ERR_INVAL;
	}
	rc = ks_begin(s, false, why);
	if (rc != 0)
		return rc;
	rc = quick_check(s, why);
	if (rc == 0)
		rc = run_rules(s, rules, sizeof(rules) / sizeof(rules[0]), why);
	if (rc == 0)
		rc = ks_version_refresh(s, why);
	if (rc == 0 && s->version >= KS_SUM_VERSION)
		rc = run_rules(s, sum_rules, sizeof(sum_rules) / sizeof(sum_rules[0]), why);
	if (rc == 0)
		rc = check_kme(s, why);
	return ks_end(s, rc, why);
}
