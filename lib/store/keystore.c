/* keystore.c - opening and closing the key store: the file, the connection
 * settings that make a commit durable and a deletion real, and the schema
 * with its version (docs/keystore.md). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keystore_int.h"
#include "qkd/error.h"

/* "QKDS" in the application_id field of the SQLite header: tells a key
 * store from any other SQLite database. */
#define KS_APP_ID 0x514b4453
/* How long a call waits for another process's write transaction. */
#define KS_BUSY_MS 10000

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

/* migrations[v - 1] turns version v into v + 1, one transaction with the
 * open's identification. Each step ends by writing its version. */
static const char *const migrations[] = {
	/* 2: the key manager's records (docs/keystore.md, "Key manager records") */
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
	"UPDATE schema_version SET version = 2;",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == QKD_STORE_SCHEMA_VERSION - 1,
	       "one migration step per schema version");
_Static_assert(KS_KME_VERSION <= QKD_STORE_SCHEMA_VERSION, "the KME tables are in the schema");

const char *qkd_store_state_name(enum qkd_store_state st)
{
	switch (st) {
	case QKD_STORE_PENDING: return "pending";
	case QKD_STORE_FINAL: return "final";
	case QKD_STORE_USED: return "used";
	}
	return NULL;
}

/* Create the file ourselves so it is born 0600: SQLite would use 0644 minus
 * the umask, and gives its -wal and -shm files the database file's mode. */
static int create_file(const char *path, bool *created, const char **why)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd >= 0) {
		*created = true;
		close(fd);
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	ks_why(why, errno == ENOENT ? "cannot create the key store: no such directory"
		    : errno == EACCES ? "cannot create the key store: permission denied"
		    : "cannot create the key store file");
	return QKD_ERR_IO;
}

static int must_exist(const char *path, const char **why)
{
	struct stat sb;

	if (stat(path, &sb) != 0) {
		ks_why(why, errno == ENOENT ? "no such key store" : "cannot open the key store file");
		return QKD_ERR_IO;
	}
	if (!S_ISREG(sb.st_mode)) {
		ks_why(why, "not a key store: not a regular file");
		return QKD_ERR_IO;
	}
	return 0;
}

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
		return ks_err(src, why);
	ks_why(why, "internal error: a query returned no row");
	return QKD_ERR_IO;
}

/* The first column of a one-row query (a PRAGMA's value, a count). */
static int query_int(struct qkd_store *s, const char *sql, int64_t *v, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = query_row(s, sql, &st, why);

	if (rc == 0)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc;
}

/* Per-connection settings (they are not stored in the file). */
static int configure(struct qkd_store *s, const char **why)
{
	int64_t sd = 0, sync = 0, fk = 0;
	int rc;

	sqlite3_busy_timeout(s->db, KS_BUSY_MS);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
	rc = ks_exec(s, "PRAGMA secure_delete = ON; PRAGMA synchronous = FULL;"
		     "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;"
		     "PRAGMA mmap_size = 0; PRAGMA cell_size_check = ON;", why);
	if (rc == 0)
		rc = query_int(s, "PRAGMA secure_delete", &sd, why);
	if (rc == 0)
		rc = query_int(s, "PRAGMA synchronous", &sync, why);
	if (rc == 0)
		rc = query_int(s, "PRAGMA foreign_keys", &fk, why);
	if (rc == 0 && (sd != 1 || sync != 2 || fk != 1)) {
		ks_why(why, "this SQLite cannot enforce secure_delete, synchronous=FULL or foreign keys");
		rc = QKD_ERR_IO;
	}
	return rc;
}

int ks_version_refresh(struct qkd_store *s, const char **why)
{
	int64_t v = 0;
	int rc = query_int(s, "SELECT version FROM schema_version", &v, why);

	if (rc == 0)
		s->version = v;
	return rc;
}

/* Bring an older store up to this program's version, one step at a time,
 * in the open's write transaction: all steps or none. */
static int migrate(struct qkd_store *s, int64_t v, const char **why)
{
	int rc = 0;

	for (; rc == 0 && v < QKD_STORE_SCHEMA_VERSION; v++)
		rc = ks_exec(s, migrations[v - 1], why);
	if (rc != 0 && rc != QKD_ERR_NOMEM)
		ks_why(why, "cannot upgrade the key store to this program's schema version");
	return rc;
}

/* An older version is upgraded when the open may write (qkd_store_open);
 * a reader (qkd_store_open_existing) leaves the file as it is and works
 * with what that version holds (s->version says which). */
static int check_version(struct qkd_store *s, bool may_write, const char **why)
{
	int64_t v = 0;
	int rc = query_int(s, "SELECT version FROM schema_version", &v, why);

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

/* Tell an empty database (create the schema if allowed), a key store (check
 * its version, upgrade it if allowed) and anything else (refuse), in one
 * transaction: a write transaction when the schema may be created, else a
 * read one, so a reader never waits for the writer's lock. */
static int identify(struct qkd_store *s, bool may_init, const char **why)
{
	int64_t app = 0, objects = 0;
	int rc = ks_begin(s, may_init, why);

	if (rc == 0)
		rc = query_int(s, "PRAGMA application_id", &app, why);
	if (rc == 0)
		rc = query_int(s, "SELECT count(*) FROM sqlite_schema", &objects, why);
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

/* WAL after identify: never switch a foreign database's journal. */
static int set_wal(struct qkd_store *s, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = query_row(s, "PRAGMA journal_mode = WAL", &st, why);

	if (rc == 0 && sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
		ks_why(why, "cannot use a write-ahead log on this file system");
		rc = QKD_ERR_IO;
	}
	sqlite3_finalize(st);
	/* Truncate the WAL whenever a checkpoint resets it, so old frames
	 * (old key bits) do not stay in it at its high-water size. */
	if (rc == 0)
		rc = ks_exec(s, "PRAGMA journal_size_limit = 0", why);
	return rc;
}

static pthread_once_t mem_once = PTHREAD_ONCE_INIT;

static int open_common(struct qkd_store **out, const char *path, bool create,
		       const char **why)
{
	struct qkd_store *s = NULL;
	bool created = false;
	int rc, src;

	if (out == NULL || path == NULL) {
		ks_why(why, "no store or path given");
		return QKD_ERR_INVAL;
	}
	*out = NULL;
	ks_why(why, NULL);
	pthread_once(&mem_once, ks_mem_install);
	rc = create ? create_file(path, &created, why) : must_exist(path, why);
	if (rc != 0)
		return rc;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		ks_why(why, "out of memory");
		rc = QKD_ERR_NOMEM;
		goto out;
	}
	src = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
	rc = src == SQLITE_OK ? configure(s, why) : ks_err(src, why);
	if (rc == 0)
		rc = identify(s, create, why);
	if (rc == 0)
		rc = set_wal(s, why);
out:
	if (rc != 0) {
		if (s != NULL)
			sqlite3_close(s->db);
		free(s);
		if (created)
			(void)unlink(path);
		return rc;
	}
	*out = s;
	return 0;
}

int qkd_store_open(struct qkd_store **out, const char *path, const char **why)
{
	return open_common(out, path, true, why);
}

int qkd_store_open_existing(struct qkd_store **out, const char *path, const char **why)
{
	return open_common(out, path, false, why);
}

void qkd_store_close(struct qkd_store *s)
{
	if (s == NULL)
		return;
	/* Copy the WAL into the database and truncate it to zero bytes, so
	 * page images holding consumed bits leave the WAL now. Busy readers
	 * in other processes may prevent it; SQLite then checkpoints later. */
	(void)sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	sqlite3_close(s->db);
	free(s);
}
