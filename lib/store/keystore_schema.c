/* keystore_schema.c - the key store's schema and its version: telling a key
 * store from any other file, creating the schema in a new one, and
 * upgrading an older one step by step (docs/keystore.md, "Schema versions").
 * Its neighbours: keystore.c opens the file and calls ks_identify;
 * keystore_sum.c computes the digests the upgrade to version 3 adds. */
#include "keystore_int.h"
#include "qkd/error.h"

/* "QKDS" in the application_id field of the SQLite header: tells a key
 * store from any other SQLite database. */
#define KS_APP_ID 0x514b4453

/* Version 1, as first written; never edited. A new store gets it and then
 * every migration step, as an old store does, so both end with the same
 * schema. docs/keystore.md explains each table and constraint. */
static const char schema_v1[] =
	"CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT;"
	"INSERT INTO schema_version VALUES (1);"
	"CREATE TABLE qblock ("
	"  id INTEGER PRIMARY KEY CHECK (id >= 0),"
	"  nbits INTEGER NOT NULL CHECK (nbits > 0 AND nbits <= 2147483648),"
	"  state TEXT NOT NULL CHECK (state IN ('pending', 'final', 'used')),"
	"  created INTEGER NOT NULL,"
	"  consumed INTEGER NOT NULL DEFAULT 0 CHECK (consumed >= 0 AND consumed <= nbits),"
	"  CHECK (state <> 'pending' OR consumed = 0),"
	"  CHECK (state <> 'final' OR consumed < nbits),"
	"  CHECK (state <> 'used' OR consumed = nbits)"
	") STRICT;"
	"CREATE INDEX qblock_final ON qblock (id) WHERE state = 'final';"
	"CREATE TABLE qbits ("
	"  id INTEGER PRIMARY KEY REFERENCES qblock (id) ON DELETE CASCADE,"
	"  bits BLOB NOT NULL"
	") STRICT;"
	"CREATE TABLE consumed_range ("
	"  block INTEGER NOT NULL REFERENCES qblock (id) ON DELETE CASCADE,"
	"  off INTEGER NOT NULL CHECK (off >= 0),"
	"  nbits INTEGER NOT NULL CHECK (nbits > 0),"
	"  PRIMARY KEY (block, off)"
	") STRICT, WITHOUT ROWID;"
	"PRAGMA application_id = 1363887187;";	/* KS_APP_ID */

_Static_assert(KS_APP_ID == 1363887187, "schema_v1 spells KS_APP_ID in decimal");

/* 2: the key manager's records (docs/keystore.md, "Key manager records") */
static const char step2[] =
	"CREATE TABLE kme_key ("
	"  seq INTEGER PRIMARY KEY,"
	"  key_id BLOB NOT NULL UNIQUE CHECK (length(key_id) = 16),"
	"  dir TEXT NOT NULL CHECK (dir IN ('out', 'in')),"
	"  state TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'delivered', 'refused')),"
	"  master TEXT NOT NULL CHECK (length(CAST(master AS BLOB)) BETWEEN 1 AND 64),"
	"  slave TEXT NOT NULL CHECK (length(CAST(slave AS BLOB)) BETWEEN 1 AND 64),"
	"  nbits INTEGER NOT NULL CHECK (nbits BETWEEN 8 AND 65536 AND nbits % 8 = 0),"
	"  segs BLOB NOT NULL CHECK (length(segs) BETWEEN 24 AND 192 AND length(segs) % 24 = 0),"
	"  created INTEGER NOT NULL,"
	"  CHECK ((dir = 'out') = (state = 'pending'))"
	") STRICT;"
	"CREATE INDEX kme_outbox ON kme_key (seq) WHERE dir = 'out';"
	"CREATE TABLE kme_bits ("
	"  seq INTEGER PRIMARY KEY REFERENCES kme_key (seq) ON DELETE CASCADE,"
	"  bits BLOB NOT NULL"
	") STRICT;"
	"UPDATE schema_version SET version = 2;";

/* 3: digests, quarantine, withdrawn and abandoned records (docs/keystore.md,
 * "Digests"). New CHECK constraints need new tables: qblock and kme_key are
 * rebuilt (SQLite's 12-step ALTER, foreign keys off: their children keep
 * their rows and their REFERENCES by name); the bits stay where they are.
 * The digests are computed in C (ks_sum_backfill), then step3_end. */
static const char step3[] =
	"CREATE TABLE qblock_v3 ("
	"  id INTEGER PRIMARY KEY CHECK (id >= 0),"
	"  nbits INTEGER NOT NULL CHECK (nbits >= 0 AND nbits <= 2147483648),"
	"  state TEXT NOT NULL CHECK (state IN ('pending', 'final', 'used', 'quarantined')),"
	"  created INTEGER NOT NULL,"
	"  consumed INTEGER NOT NULL DEFAULT 0 CHECK (consumed >= 0 AND consumed <= nbits),"
	"  reported INTEGER NOT NULL DEFAULT 0 CHECK (reported IN (0, 1)),"
	"  note TEXT CHECK (length(note) <= 200),"
	"  CHECK (nbits > 0 OR state = 'quarantined'),"
	"  CHECK (state <> 'pending' OR consumed = 0),"
	"  CHECK (state <> 'final' OR consumed < nbits),"
	"  CHECK (state <> 'used' OR consumed = nbits),"
	"  CHECK (state = 'quarantined' OR (reported = 0 AND note IS NULL))"
	") STRICT;"
	"INSERT INTO qblock_v3 (id, nbits, state, created, consumed)"
	"  SELECT id, nbits, state, created, consumed FROM qblock;"
	"DROP TABLE qblock;"
	"ALTER TABLE qblock_v3 RENAME TO qblock;"
	"CREATE INDEX qblock_final ON qblock (id) WHERE state = 'final';"
	"CREATE INDEX qblock_unreported ON qblock (id) WHERE state = 'quarantined' AND reported = 0;"
	"CREATE TABLE qsum ("
	"  id INTEGER PRIMARY KEY REFERENCES qblock (id) ON DELETE CASCADE,"
	"  sums BLOB NOT NULL"
	") STRICT;"
	"CREATE TABLE kme_key_v3 ("
	"  seq INTEGER PRIMARY KEY,"
	"  key_id BLOB NOT NULL UNIQUE CHECK (length(key_id) = 16),"
	"  dir TEXT NOT NULL CHECK (dir IN ('out', 'in')),"
	"  state TEXT NOT NULL CHECK (state IN ('pending', 'abandoned', 'ready', 'delivered',"
	"    'refused', 'withdrawn', 'quarantined')),"
	"  master TEXT CHECK (length(CAST(master AS BLOB)) BETWEEN 1 AND 64),"
	"  slave TEXT CHECK (length(CAST(slave AS BLOB)) BETWEEN 1 AND 64),"
	"  nbits INTEGER CHECK (nbits BETWEEN 8 AND 65536 AND nbits % 8 = 0),"
	"  segs BLOB CHECK (length(segs) BETWEEN 24 AND 192 AND length(segs) % 24 = 0),"
	"  created INTEGER NOT NULL,"
	"  CHECK ((dir = 'out') = (state IN ('pending', 'abandoned'))),"
	"  CHECK ((master IS NULL) = (slave IS NULL) AND (master IS NULL) = (nbits IS NULL)"
	"    AND (master IS NULL) = (segs IS NULL)),"
	"  CHECK (master IS NOT NULL OR state IN ('abandoned', 'withdrawn'))"
	") STRICT;"
	"INSERT INTO kme_key_v3 (seq, key_id, dir, state, master, slave, nbits, segs, created)"
	"  SELECT seq, key_id, dir, state, master, slave, nbits, segs, created FROM kme_key;"
	"DROP TABLE kme_key;"
	"ALTER TABLE kme_key_v3 RENAME TO kme_key;"
	"CREATE INDEX kme_outbox ON kme_key (seq) WHERE dir = 'out';"
	"CREATE TABLE kme_sum ("
	"  seq INTEGER PRIMARY KEY REFERENCES kme_key (seq) ON DELETE CASCADE,"
	"  sum BLOB NOT NULL CHECK (length(sum) = 16)"
	") STRICT;";

static const char step3_end[] = "UPDATE schema_version SET version = 3;";

/* 4: the key lifecycle (docs/keystore.md, "Life of a record"): an 'expired'
 * inbox state (a ready key nobody fetched within kme.key_ttl) and kme_tally,
 * running totals that outlive the rows they count (pruning deletes
 * tombstones; bits lost stay counted). kme_key is rebuilt for its new CHECK,
 * as in step 3; its children keep their rows. */
static const char step4[] =
	"CREATE TABLE kme_key_v4 ("
	"  seq INTEGER PRIMARY KEY,"
	"  key_id BLOB NOT NULL UNIQUE CHECK (length(key_id) = 16),"
	"  dir TEXT NOT NULL CHECK (dir IN ('out', 'in')),"
	"  state TEXT NOT NULL CHECK (state IN ('pending', 'abandoned', 'ready', 'delivered',"
	"    'refused', 'withdrawn', 'quarantined', 'expired')),"
	"  master TEXT CHECK (length(CAST(master AS BLOB)) BETWEEN 1 AND 64),"
	"  slave TEXT CHECK (length(CAST(slave AS BLOB)) BETWEEN 1 AND 64),"
	"  nbits INTEGER CHECK (nbits BETWEEN 8 AND 65536 AND nbits % 8 = 0),"
	"  segs BLOB CHECK (length(segs) BETWEEN 24 AND 192 AND length(segs) % 24 = 0),"
	"  created INTEGER NOT NULL,"
	"  CHECK ((dir = 'out') = (state IN ('pending', 'abandoned'))),"
	"  CHECK ((master IS NULL) = (slave IS NULL) AND (master IS NULL) = (nbits IS NULL)"
	"    AND (master IS NULL) = (segs IS NULL)),"
	"  CHECK (master IS NOT NULL OR state IN ('abandoned', 'withdrawn'))"
	") STRICT;"
	"INSERT INTO kme_key_v4 (seq, key_id, dir, state, master, slave, nbits, segs, created)"
	"  SELECT seq, key_id, dir, state, master, slave, nbits, segs, created FROM kme_key;"
	"DROP TABLE kme_key;"
	"ALTER TABLE kme_key_v4 RENAME TO kme_key;"
	"CREATE INDEX kme_outbox ON kme_key (seq) WHERE dir = 'out';"
	"CREATE INDEX kme_ready ON kme_key (created) WHERE state = 'ready';"
	"CREATE TABLE kme_tally ("
	"  name TEXT PRIMARY KEY CHECK (name IN ('expired', 'lost_bits', 'pruned')),"
	"  n INTEGER NOT NULL CHECK (n >= 0)"
	") STRICT, WITHOUT ROWID;"
	"UPDATE schema_version SET version = 4;";

static int migrate3(struct qkd_store *s, const char **why)
{
	int rc = ks_exec(s, step3, why);

	if (rc == 0)
		rc = ks_sum_backfill(s, why);
	if (rc == 0)
		rc = ks_exec(s, step3_end, why);
	return rc;
}

static int migrate2(struct qkd_store *s, const char **why)
{
	return ks_exec(s, step2, why);
}

static int migrate4(struct qkd_store *s, const char **why)
{
	return ks_exec(s, step4, why);
}

/* migrations[v - 1] turns version v into v + 1, in one transaction with the
 * open's identification. Each step ends by writing its version. */
static int (*const migrations[])(struct qkd_store *, const char **) = {
	migrate2,
	migrate3,
	migrate4,
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == QKD_STORE_SCHEMA_VERSION - 1,
	       "one migration step per schema version");
_Static_assert(KS_LIFE_VERSION == QKD_STORE_SCHEMA_VERSION, "the lifecycle is in the schema");

/* Prepare sql and step to its first row; the caller reads and finalizes. */
static int query_row(struct qkd_store *s, const char *sql, sqlite3_stmt **st,
		     const char **why)
{
	int rc = ks_prep(s, sql, st, why), src;

	if (rc != 0)
		return rc;
	src = sqlite3_step(*st);
	if (src == SQLITE_ROW)
		return 0;
	if (src != SQLITE_DONE)
		return ks_err(s->db, src, why);
	ks_why(why, "internal error: a query returned no row");
	return QKD_ERR_IO;
}

int ks_query_int(struct qkd_store *s, const char *sql, int64_t *v, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = query_row(s, sql, &st, why);

	if (rc == 0)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc;
}

int ks_query_text(struct qkd_store *s, const char *sql, char *buf, size_t n, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = query_row(s, sql, &st, why);
	const unsigned char *t = rc == 0 ? sqlite3_column_text(st, 0) : NULL;

	if (n > 0)
		buf[0] = '\0';
	if (t != NULL && n > 0)
		sqlite3_snprintf((int)n, buf, "%s", (const char *)t);
	sqlite3_finalize(st);
	return rc;
}

int ks_version_refresh(struct qkd_store *s, const char **why)
{
	int64_t v = 0;
	int rc = ks_query_int(s, "SELECT version FROM schema_version", &v, why);

	if (rc == 0)
		s->version = v;
	return rc;
}

/* The upgrade rebuilds tables with foreign keys off: check them before the
 * transaction commits. */
static int foreign_keys_ok(struct qkd_store *s, const char **why)
{
	int64_t bad = 0;
	int rc = ks_query_int(s, "SELECT count(*) FROM pragma_foreign_key_check", &bad, why);

	if (rc == 0 && bad != 0) {
		ks_why(why, "the key store is inconsistent: a range or bits without their block");
		rc = QKD_ERR_IO;
	}
	return rc;
}

/* Bring an older store up to this program's version, one step at a time,
 * in the open's write transaction: all steps or none. */
static int migrate(struct qkd_store *s, int64_t v, const char **why)
{
	int rc = 0;

	for (; rc == 0 && v < QKD_STORE_SCHEMA_VERSION; v++)
		rc = migrations[v - 1](s, why);
	if (rc == 0)
		rc = foreign_keys_ok(s, why);
	if (rc == QKD_ERR_IO)
		ks_why(why, "cannot upgrade the key store to this program's schema version");
	return rc;
}

/* An older version is upgraded when the open may write (qkd_store_open);
 * a reader (qkd_store_open_existing) leaves the file as it is and works
 * with what that version holds (s->version says which). */
static int check_version(struct qkd_store *s, bool may_write, const char **why)
{
	int64_t v = 0;
	int rc = ks_query_int(s, "SELECT version FROM schema_version", &v, why);

	if (rc == QKD_ERR_NOMEM)
		return rc;
	if (rc != 0) {
		ks_why(why, "the key store file is corrupt (no schema version)");
		return QKD_ERR_IO;
	}
	if (v > QKD_STORE_SCHEMA_VERSION) {
		ks_why(why, "the key store's schema version is newer than this program's");
		return QKD_ERR_RANGE;
	}
	if (v < 1) {
		ks_why(why, "the key store file is corrupt (bad schema version)");
		return QKD_ERR_IO;
	}
	if (v < QKD_STORE_SCHEMA_VERSION && may_write) {
		rc = migrate(s, v, why);
		v = QKD_STORE_SCHEMA_VERSION;
	}
	s->version = v;
	return rc;
}

/* A write transaction when the schema may be created or upgraded, else a
 * read one, so a reader never waits for the writer's lock. */
int ks_identify(struct qkd_store *s, bool may_init, const char **why)
{
	int64_t app = 0, objects = 0;
	int rc = ks_begin(s, may_init, why);

	if (rc != 0)
		return rc;
	rc = ks_query_int(s, "PRAGMA application_id", &app, why);
	if (rc == 0)
		rc = ks_query_int(s, "SELECT count(*) FROM sqlite_schema", &objects, why);
	if (rc != 0)
		goto out;
	if (objects == 0 && app == 0) {
		if (!may_init) {
			ks_why(why, "not a key store: the file is empty");
			rc = QKD_ERR_IO;
			goto out;
		}
		rc = ks_exec(s, schema_v1, why);
	} else if (app != KS_APP_ID) {
		ks_why(why, "not a key store: an SQLite database of another program");
		rc = QKD_ERR_IO;
	}
	if (rc == 0)
		rc = check_version(s, may_init, why);
out:
	return ks_end(s, rc, why);
}
