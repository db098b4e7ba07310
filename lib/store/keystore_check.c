/* keystore_check.c - verify the invariants of docs/keystore.md on a whole
 * store (start-up of the node daemon, the crash tests). The table
 * constraints already hold each row to its own rules; these queries check
 * the rules that span rows and tables. Each must return no row. */
#include "keystore_int.h"
#include "qkd/error.h"

struct rule {
	const char *sql;
	const char *why;
};

static const struct rule rules[] = {
	{ "SELECT 1 FROM pragma_foreign_key_check LIMIT 1",
	  "the key store is inconsistent: a range or bits without their block" },
	{ "SELECT 1 FROM qblock q LEFT JOIN qbits b ON b.id = q.id"
	  " WHERE (q.state = 'used') <> (b.id IS NULL) LIMIT 1",
	  "the key store is inconsistent: bits missing for a block not used, or kept for a used one" },
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
		rc = ks_err(src, why);
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
		rc = ks_err(src == SQLITE_DONE ? SQLITE_CORRUPT : src, why);
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

int qkd_store_check(struct qkd_store *s, const char **why)
{
	bool bad = false;
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
	for (size_t i = 0; rc == 0 && i < sizeof(rules) / sizeof(rules[0]); i++) {
		rc = any_row(s, rules[i].sql, &bad, why);
		if (rc == 0 && bad) {
			ks_why(why, rules[i].why);
			rc = QKD_ERR_IO;
		}
	}
	return ks_end(s, rc, why);
}
