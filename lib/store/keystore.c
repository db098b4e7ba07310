/* keystore.c - opening and closing the key store: the file, the connection
 * settings that make a commit durable and a deletion real, the journal, and
 * the node daemon's exclusive handle (docs/keystore.md, "Transactions and
 * crash guarantees", "The node's handle"). The schema is keystore_schema.c's,
 * the node's lock keystore_lock.c's. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keystore_int.h"
#include "qkd/error.h"

/* How long a call waits for another process's transaction. */
#define KS_BUSY_MS 10000

/* How a handle is opened. */
struct open_mode {
	bool create;		/* make the file when missing */
	bool write;		/* create or upgrade the schema, convert the journal */
	bool lock;		/* the node's flock */
	bool nonempty;		/* refuse a file of 0 bytes (with lock) */
};

const char *qkd_store_state_name(enum qkd_store_state st)
{
	switch (st) {
	case QKD_STORE_PENDING: return "pending";
	case QKD_STORE_FINAL: return "final";
	case QKD_STORE_USED: return "used";
	case QKD_STORE_QUARANTINED: return "quarantined";
	}
	return NULL;
}

/* Create the file ourselves so it is born 0600: SQLite would use 0644 minus
 * the umask, and gives its journal the database file's mode. */
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
	if (errno == EROFS) {
		ks_why(why, "cannot create the key store: read-only file system");
		return QKD_ERR_READONLY;
	}
	if (errno == ENOSPC || errno == EDQUOT) {
		ks_why(why, "no space left on device");
		return QKD_ERR_NOSPACE;
	}
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

/* Per-connection settings (they are not stored in the file). Foreign keys
 * stay off until the schema is known (its upgrade rebuilds tables). */
static int configure(struct qkd_store *s, const char **why)
{
	int64_t sd = 0, sync = 0;
	int rc;

	sqlite3_busy_timeout(s->db, KS_BUSY_MS);
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
	rc = ks_exec(s, "PRAGMA secure_delete = ON; PRAGMA synchronous = FULL;"
		     "PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY;"
		     "PRAGMA mmap_size = 0; PRAGMA cell_size_check = ON;", why);
	if (rc == 0)
		rc = ks_query_int(s, "PRAGMA secure_delete", &sd, why);
	if (rc == 0)
		rc = ks_query_int(s, "PRAGMA synchronous", &sync, why);
	if (rc == 0 && (sd != 1 || sync != 2)) {
		ks_why(why, "this SQLite cannot enforce secure_delete or synchronous=FULL");
		rc = QKD_ERR_IO;
	}
	return rc;
}

static int foreign_keys_on(struct qkd_store *s, const char **why)
{
	int64_t fk = 0;
	int rc = ks_exec(s, "PRAGMA foreign_keys = ON", why);

	if (rc == 0)
		rc = ks_query_int(s, "PRAGMA foreign_keys", &fk, why);
	if (rc == 0 && fk != 1) {
		ks_why(why, "this SQLite cannot enforce foreign keys");
		rc = QKD_ERR_IO;
	}
	return rc;
}

/* Leaving WAL needs every other connection to the file closed, and SQLite
 * does not wait for that: try for a while (a `qkd keys` of an older
 * program may be reading), then give up. */
#define KS_WAL_TRIES 40
#define KS_WAL_SLEEP_US 50000

static int leave_wal(struct qkd_store *s, char *mode, size_t n, const char **why)
{
	int rc = 0;

	for (int i = 0; i < KS_WAL_TRIES; i++) {
		if (i > 0)
			usleep(KS_WAL_SLEEP_US);
		rc = ks_query_text(s, "PRAGMA journal_mode = TRUNCATE", mode, n, why);
		if (rc != QKD_ERR_IO || (sqlite3_errcode(s->db) & 0xff) != SQLITE_BUSY)
			break;
	}
	if (rc == QKD_ERR_IO && (sqlite3_errcode(s->db) & 0xff) == SQLITE_BUSY)
		ks_why(why, "cannot leave WAL mode: another process has the key store open");
	return rc;
}

/* A rollback journal, truncated at each commit, after identify (never switch
 * a foreign database's journal). WAL would map its -shm index into memory,
 * and a store turned immutable or read-only under a running daemon then
 * killed it with SIGBUS; with a rollback journal nothing of the store is
 * mapped (mmap_size is 0). A writer converts a file left in WAL mode by an
 * older program; a reader never writes, so it reads such a file in WAL mode
 * as it is. */
static int set_journal(struct qkd_store *s, bool write, const char **why)
{
	char mode[16];
	int rc = ks_query_text(s, "PRAGMA journal_mode", mode, sizeof(mode), why);

	if (rc == 0 && !write && sqlite3_stricmp(mode, "wal") == 0)
		return 0;
	if (rc == 0)
		rc = leave_wal(s, mode, sizeof(mode), why);
	if (rc == 0 && sqlite3_stricmp(mode, "truncate") != 0) {
		ks_why(why, "cannot use a rollback journal on this file");
		rc = QKD_ERR_IO;
	}
	if (rc == 0)	/* never keep the journal at its high-water size */
		rc = ks_exec(s, "PRAGMA journal_size_limit = 0", why);
	return rc;
}

/* The file before SQLite opens it: created, or required, and locked. */
static int prepare_file(struct qkd_store *s, const char *path, const struct open_mode *m,
			bool *created, const char **why)
{
	int rc = m->create ? create_file(path, created, why) : must_exist(path, why);

	if (rc == QKD_ERR_IO && m->nonempty)
		ks_why(why, "the key store is missing or empty");
	if (rc == 0 && m->lock)
		rc = ks_lock_file(path, m->nonempty, &s->lockfd, why);
	return rc;
}

static int connect_db(struct qkd_store *s, const char *path, const struct open_mode *m,
		   const char **why)
{
	int src = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW,
				  NULL);
	int rc = src == SQLITE_OK ? configure(s, why) : ks_err(s->db, src, why);

	s->writer = m->write;
	if (rc == 0)
		rc = ks_identify(s, m->write, why);
	if (rc == 0)
		rc = foreign_keys_on(s, why);
	if (rc == 0)
		rc = set_journal(s, m->write, why);
	if (rc == 0)
		rc = ks_file_add(s, path, why);
	return rc;
}

static pthread_once_t mem_once = PTHREAD_ONCE_INIT;

static int open_common(struct qkd_store **out, const char *path, const struct open_mode *m,
		       const char **why)
{
	struct qkd_store *s = NULL;
	bool created = false;
	int rc;

	if (out == NULL || path == NULL) {
		ks_why(why, "no store or path given");
		return QKD_ERR_INVAL;
	}
	*out = NULL;
	ks_why(why, NULL);
	pthread_once(&mem_once, ks_mem_install);
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		ks_why(why, "out of memory");
		return QKD_ERR_NOMEM;
	}
	s->lockfd = -1;
	rc = prepare_file(s, path, m, &created, why);
	if (rc == 0)
		rc = connect_db(s, path, m, why);
	if (rc != 0) {
		sqlite3_close(s->db);
		ks_lock_close(s->lockfd);
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
	static const struct open_mode m = { .create = true, .write = true };

	return open_common(out, path, &m, why);
}

int qkd_store_open_existing(struct qkd_store **out, const char *path, const char **why)
{
	static const struct open_mode m = { .create = false, .write = false };

	return open_common(out, path, &m, why);
}

int qkd_store_open_node(struct qkd_store **out, const char *path, unsigned flags,
			const char **why)
{
	bool exist = (flags & QKD_STORE_MUST_EXIST) != 0;
	const struct open_mode m = { .create = !exist, .write = true, .lock = true,
				     .nonempty = exist };

	if ((flags & ~QKD_STORE_MUST_EXIST) != 0) {
		ks_why(why, "unknown flags");
		if (out != NULL)
			*out = NULL;
		return QKD_ERR_INVAL;
	}
	return open_common(out, path, &m, why);
}

void qkd_store_close(struct qkd_store *s)
{
	if (s == NULL)
		return;
	sqlite3_close(s->db);
	ks_file_drop(s);
	free(s);
}
