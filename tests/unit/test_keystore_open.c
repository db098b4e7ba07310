/* test_keystore_open.c - how the key store is opened and shared
 * (docs/keystore.md, "Transactions and crash guarantees", "The node's
 * handle", "Schema versions").
 *
 * The checks: nothing of the store is memory-mapped (a rollback journal, no
 * -shm); a file left in WAL mode is converted by a writer and read as it is
 * by a reader; the node's handle locks the file against another node (in
 * another process) but not against the same process's key manager handle
 * nor `qkd keys`, and MUST_EXIST refuses a missing or empty file; several
 * processes take key from one store at once and never get the same bits;
 * stores of schema versions 1 and 2 are upgraded with the digests of their
 * bits, and read as they are by a reader; and the cost of a transaction
 * with the rollback journal is measured.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "qkd/error.h"
#include "qkd/keystore.h"
#include "qkd/kme_store.h"
#include "qkd/secret.h"

#define STORE_FIXTURE_NAME "qkd-ks-open"
#include "store_fixture.h"

/* ---- helpers ---- */

/* The file format bytes of the header: 1 rollback journal, 2 WAL. */
static int header_mode(const char *path)
{
	uint8_t hdr[20];
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(read(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	close(fd);
	assert_int_equal(hdr[18], hdr[19]);
	return hdr[18];
}

/* Whether this process maps any file of dir (a -shm index would be). */
static bool mapped(const char *dir)
{
	FILE *m = fopen("/proc/self/maps", "r");
	char line[1024];
	bool hit = false;

	assert_non_null(m);
	while (fgets(line, sizeof(line), m) != NULL)
		hit |= strstr(line, dir) != NULL;
	fclose(m);
	return hit;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* ---- the journal ---- */

static void test_nothing_mapped(void **state)
{
	struct fix *f = *state;
	struct qkd_store *a = open_ok(f->path), *b = open_ok(f->path), *ro = NULL;
	uint8_t bits[4096], out[512];
	struct qkd_store_seg seg[4];
	size_t ns = 0;
	uint64_t n = 0;
	char p[400];

	fill_bytes(bits, sizeof(bits), 1);
	put_final(a, 1, bits, 8 * sizeof(bits));
	assert_int_equal(qkd_store_open_existing(&ro, f->path, NULL), QKD_OK);
	assert_int_equal(qkd_store_take(b, 1000, out, sizeof(out), seg, 4, &ns, NULL), QKD_OK);
	assert_int_equal(qkd_store_get(ro, 1, bits, sizeof(bits), &n, NULL), QKD_OK);
	assert_false(mapped(f->dir));
	snprintf(p, sizeof(p), "%s-shm", f->path);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(header_mode(f->path), 1);
	qkd_store_close(ro);
	qkd_store_close(b);
	qkd_store_close(a);
	qkd_wipe(out, sizeof(out));
	qkd_wipe(bits, sizeof(bits));
}

/* A store an older program left in WAL mode, its last commits still in the
 * WAL: a reader reads it as it is; a writer converts it (and its bits are
 * all there), unless another connection has it open. */
static void test_wal_converted(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path), *ro = NULL;
	uint8_t bits[1024], got[1024];
	uint64_t n = 0;
	sqlite3 *db = NULL;
	const char *why = NULL;
	char p[400];

	fill_bytes(bits, sizeof(bits), 2);
	put_final(s, 1, bits, 4096);
	qkd_store_close(s);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL;"
				      "PRAGMA wal_autocheckpoint = 0;"
				      "UPDATE qblock SET created = 7 WHERE id = 1", NULL, NULL, NULL),
			 SQLITE_OK);
	/* the old daemon still runs: a writer cannot convert, and says why */
	assert_int_equal(qkd_store_open(&s, f->path, &why), QKD_ERR_IO);
	assert_true(has_text(why, "WAL"));
	assert_null(s);
	assert_int_equal(sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(header_mode(f->path), 2);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	assert_int_equal(access(p, F_OK), 0);

	assert_int_equal(qkd_store_open_existing(&ro, f->path, &why), QKD_OK);
	assert_int_equal(lookup_ok(ro, 1).created, 7);		/* the WAL's commit */
	assert_int_equal(qkd_store_get(ro, 1, got, sizeof(got), &n, NULL), QKD_OK);
	assert_memory_equal(got, bits, 512);
	qkd_store_close(ro);
	assert_int_equal(header_mode(f->path), 2);		/* left as it was */

	s = open_ok(f->path);
	assert_int_equal(header_mode(f->path), 1);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(lookup_ok(s, 1).created, 7);
	assert_int_equal(qkd_store_get(s, 1, got, sizeof(got), &n, NULL), QKD_OK);
	assert_memory_equal(got, bits, 512);
	put_final(s, 2, bits, 8 * sizeof(bits));
	check_ok(s);
	assert_false(mapped(f->dir));
	qkd_store_close(s);
	qkd_wipe(got, sizeof(got));
}

/* ---- the node's handle ---- */

/* In a child: what another process gets. 0 when as expected. */
static int other_process(const char *path)
{
	struct qkd_store *s = NULL;
	const char *why = NULL;
	uint8_t out[8];
	struct qkd_store_seg seg[1];
	size_t ns = 0;

	if (qkd_store_open_node(&s, path, 0, &why) != QKD_ERR_IO || s != NULL ||
	    !has_text(why, "in use by another qkd node"))
		return 1;
	if (qkd_store_open_existing(&s, path, &why) != QKD_OK)	/* qkd keys */
		return 2;
	if (lookup_ok(s, 1).state != QKD_STORE_FINAL)
		return 3;
	qkd_store_close(s);
	if (qkd_store_open(&s, path, &why) != QKD_OK)		/* an ordinary writer */
		return 4;
	if (qkd_store_take(s, 8, out, sizeof(out), seg, 1, &ns, NULL) != QKD_OK)
		return 5;
	qkd_store_close(s);
	return 0;
}

static void test_node_lock(void **state)
{
	struct fix *f = *state;
	struct qkd_store *node = NULL, *kme = NULL, *node2 = NULL;
	uint8_t bits[64], out[8];
	struct qkd_store_seg seg[1];
	size_t ns = 0;
	const char *why = NULL;
	int fds = open_fds();

	fill_bytes(bits, sizeof(bits), 3);
	assert_int_equal(qkd_store_open_node(&node, f->path, 0, &why), QKD_OK);
	put_final(node, 1, bits, 8 * sizeof(bits));
	/* the same process: its key manager's handle works alongside */
	kme = open_ok(f->path);
	assert_int_equal(qkd_store_take(kme, 8, out, sizeof(out), seg, 1, &ns, NULL), QKD_OK);
	/* another node in this process is refused too */
	assert_int_equal(qkd_store_open_node(&node2, f->path, 0, &why), QKD_ERR_IO);
	assert_true(has_text(why, "in use by another qkd node"));
	assert_int_equal(in_child(other_process, f->path), 0);
	assert_int_equal(lookup_ok(node, 1).consumed, 16);

	/* the node goes; the key manager's handle keeps working, and the lock
	 * is free for the next node */
	qkd_store_close(node);
	assert_int_equal(qkd_store_take(kme, 8, out, sizeof(out), seg, 1, &ns, NULL), QKD_OK);
	assert_int_equal(qkd_store_open_node(&node, f->path, 0, &why), QKD_OK);
	assert_int_equal(lookup_ok(node, 1).consumed, 24);
	qkd_store_close(kme);
	qkd_store_close(node);
	assert_int_equal(open_fds(), fds);	/* every descriptor closed */
	assert_int_equal(qkd_store_open_node(&node, f->path, 7, &why), QKD_ERR_INVAL);
	assert_null(node);
	qkd_wipe(out, sizeof(out));
}

static void test_must_exist(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = NULL;
	const char *why = NULL;
	struct stat sb;
	int fd;

	assert_int_equal(qkd_store_open_node(&s, f->path, QKD_STORE_MUST_EXIST, &why), QKD_ERR_IO);
	assert_string_equal(why, "the key store is missing or empty");
	assert_null(s);
	assert_int_equal(access(f->path, F_OK), -1);	/* not created */
	fd = open(f->path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(qkd_store_open_node(&s, f->path, QKD_STORE_MUST_EXIST, &why), QKD_ERR_IO);
	assert_string_equal(why, "the key store is missing or empty");
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_size, 0);		/* left alone */
	/* without the flag, a fresh store; with it, the store opens */
	assert_int_equal(qkd_store_open_node(&s, f->path, 0, &why), QKD_OK);
	qkd_store_close(s);
	assert_int_equal(qkd_store_open_node(&s, f->path, QKD_STORE_MUST_EXIST, &why), QKD_OK);
	check_ok(s);
	qkd_store_close(s);
	unlink(f->path);
	assert_int_equal(qkd_store_open_node(&s, f->path, 0, &why), QKD_OK);	/* created */
	qkd_store_close(s);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
}

/* ---- processes at once ---- */

#define RACERS 3
#define RACE_TAKES 60

/* Take RACE_TAKES keys of 96 bits and write their segments to fd, then
 * a last one with id UINT64_MAX and offset 0 (or the failing step). */
static int racer_run(const char *path, int fd)
{
	struct qkd_store *s = NULL;
	struct qkd_store_seg seg[4];
	struct qkd_store_stats st;
	uint8_t out[12];
	size_t ns = 0;

	if (qkd_store_open(&s, path, NULL) != QKD_OK)
		return 1;
	for (int i = 0; i < RACE_TAKES; i++) {
		if (qkd_store_take(s, 96, out, sizeof(out), seg, 4, &ns, NULL) != QKD_OK)
			return 2;
		if (qkd_store_stats(s, &st, NULL) != QKD_OK)	/* readers in between */
			return 3;
		for (size_t k = 0; k < ns; k++)
			if (write(fd, &seg[k], sizeof(seg[k])) != (ssize_t)sizeof(seg[k]))
				return 4;
	}
	qkd_store_close(s);
	return 0;
}

static void racer(const char *path, int fd)
{
	struct qkd_store_seg end = { UINT64_MAX, 0, 0 };

	end.offset = (uint64_t)racer_run(path, fd);
	_exit(write(fd, &end, sizeof(end)) == (ssize_t)sizeof(end) ? 0 : 1);
}

static void test_processes_at_once(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	uint8_t bits[2000], used[2][16000] = { { 0 } };
	struct qkd_store_seg seg;
	int fds[2];
	pid_t pid[RACERS];
	uint64_t total = 0, done = 0;

	fill_bytes(bits, sizeof(bits), 4);
	put_final(s, 1, bits, 8 * sizeof(bits));
	put_final(s, 2, bits, 8 * sizeof(bits));
	qkd_store_close(s);	/* nothing open across fork */
	assert_int_equal(pipe(fds), 0);
	for (int i = 0; i < RACERS; i++) {
		pid[i] = fork();
		assert_true(pid[i] >= 0);
		if (pid[i] == 0) {
			close(fds[0]);
			racer(f->path, fds[1]);
		}
	}
	close(fds[1]);
	while (read(fds[0], &seg, sizeof(seg)) == (ssize_t)sizeof(seg)) {
		if (seg.id == UINT64_MAX) {	/* a racer's end, its result */
			assert_int_equal(seg.offset, 0);
			done++;
			continue;
		}
		assert_true(seg.id == 1 || seg.id == 2);
		for (uint64_t b = seg.offset; b < seg.offset + seg.nbits; b++) {
			assert_int_equal(used[seg.id - 1][b], 0);	/* never twice */
			used[seg.id - 1][b] = 1;
		}
		total += seg.nbits;
	}
	close(fds[0]);
	for (int i = 0; i < RACERS; i++) {
		int status = 0;

		assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
		assert_true(WIFEXITED(status));
	}
	assert_int_equal(done, RACERS);
	assert_int_equal(total, RACERS * RACE_TAKES * 96);
	s = open_ok(f->path);
	assert_int_equal(lookup_ok(s, 1).consumed + lookup_ok(s, 2).consumed, total);
	check_ok(s);
	qkd_store_close(s);
}

/* ---- older schemas ---- */

static const char v1_sql[] =
	"CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT;"
	"INSERT INTO schema_version VALUES (1);"
	"CREATE TABLE qblock (id INTEGER PRIMARY KEY CHECK (id >= 0),"
	" nbits INTEGER NOT NULL CHECK (nbits > 0 AND nbits <= 2147483648),"
	" state TEXT NOT NULL CHECK (state IN ('pending', 'final', 'used')),"
	" created INTEGER NOT NULL,"
	" consumed INTEGER NOT NULL DEFAULT 0 CHECK (consumed >= 0 AND consumed <= nbits),"
	" CHECK (state <> 'pending' OR consumed = 0), CHECK (state <> 'final' OR consumed < nbits),"
	" CHECK (state <> 'used' OR consumed = nbits)) STRICT;"
	"CREATE INDEX qblock_final ON qblock (id) WHERE state = 'final';"
	"CREATE TABLE qbits (id INTEGER PRIMARY KEY REFERENCES qblock (id) ON DELETE CASCADE,"
	" bits BLOB NOT NULL) STRICT;"
	"CREATE TABLE consumed_range (block INTEGER NOT NULL REFERENCES qblock (id)"
	" ON DELETE CASCADE, off INTEGER NOT NULL CHECK (off >= 0),"
	" nbits INTEGER NOT NULL CHECK (nbits > 0), PRIMARY KEY (block, off)) STRICT, WITHOUT ROWID;"
	"PRAGMA application_id = 1363887187;";

static const char v2_sql[] =
	"CREATE TABLE kme_key (seq INTEGER PRIMARY KEY,"
	" key_id BLOB NOT NULL UNIQUE CHECK (length(key_id) = 16),"
	" dir TEXT NOT NULL CHECK (dir IN ('out', 'in')),"
	" state TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'delivered', 'refused')),"
	" master TEXT NOT NULL CHECK (length(CAST(master AS BLOB)) BETWEEN 1 AND 64),"
	" slave TEXT NOT NULL CHECK (length(CAST(slave AS BLOB)) BETWEEN 1 AND 64),"
	" nbits INTEGER NOT NULL CHECK (nbits BETWEEN 8 AND 65536 AND nbits % 8 = 0),"
	" segs BLOB NOT NULL CHECK (length(segs) BETWEEN 24 AND 192 AND length(segs) % 24 = 0),"
	" created INTEGER NOT NULL, CHECK ((dir = 'out') = (state = 'pending'))) STRICT;"
	"CREATE INDEX kme_outbox ON kme_key (seq) WHERE dir = 'out';"
	"CREATE TABLE kme_bits (seq INTEGER PRIMARY KEY REFERENCES kme_key (seq) ON DELETE CASCADE,"
	" bits BLOB NOT NULL) STRICT;"
	"UPDATE schema_version SET version = 2;";

static void raw_blob(sqlite3 *db, const char *sql, const void *blob, int n)
{
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_blob(st, 1, blob, n, SQLITE_TRANSIENT);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

/* As an older program left it: block 0 final with bits 0 .. 999 handed out
 * (bytes 0 .. 124 zeroed), 1 pending, 2 used, 3 final with bits 0 .. 255
 * gone into a ready key (version 2), whose key_ID is 00 .. 0f. */
static void make_old(const char *path, int version, const uint8_t *bits)
{
	uint8_t b0[512];
	sqlite3 *db = NULL;

	memcpy(b0, bits, sizeof(b0));
	memset(b0, 0, 125);
	raw_sql(path, v1_sql);
	if (version >= 2)
		raw_sql(path, v2_sql);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO qblock VALUES (0, 4096, 'final', 0, 1000),"
				      " (1, 4096, 'pending', 0, 0), (2, 64, 'used', 0, 64),"
				      " (3, 4096, 'final', 0, 256);"
				      "INSERT INTO consumed_range VALUES (0, 0, 1000), (3, 0, 256)",
				      NULL, NULL, NULL), SQLITE_OK);
	raw_blob(db, "INSERT INTO qbits VALUES (0, ?1)", b0, 512);
	raw_blob(db, "INSERT INTO qbits VALUES (1, ?1)", bits, 512);
	memcpy(b0, bits, 512);
	memset(b0, 0, 32);
	raw_blob(db, "INSERT INTO qbits VALUES (3, ?1)", b0, 512);
	if (version >= 2) {
		assert_int_equal(sqlite3_exec(db, "INSERT INTO kme_key VALUES (1,"
					      " x'000102030405060708090a0b0c0d0e0f', 'in', 'ready',"
					      " 'm', 's', 256, x'000000000000000300000000000000000000"
					      "000000000100', 0)", NULL, NULL, NULL), SQLITE_OK);
		raw_blob(db, "INSERT INTO kme_bits VALUES (1, ?1)", bits, 32);
	}
	sqlite3_close(db);
}

/* Everything an upgraded store must hold, its digests right. */
static void check_upgraded(struct qkd_store *s, const uint8_t *bits, int version)
{
	struct qkd_store_verify_stats vs;
	uint8_t got[512], key[64];
	uint8_t id[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
	uint8_t *outs[1] = { key };
	uint64_t n = 0;
	size_t len = 0, bad = 0;

	check_ok(s);
	assert_int_equal(qkd_store_verify(s, NULL, NULL, &vs, NULL), QKD_OK);
	assert_int_equal(vs.blocks, 3);
	assert_int_equal(vs.bad_blocks, 0);
	assert_int_equal(vs.keys, version >= 2 ? 1 : 0);
	assert_int_equal(qkd_store_get(s, 0, got, sizeof(got), &n, NULL), QKD_OK);
	assert_memory_equal(got + 125, bits + 125, 512 - 125);
	assert_int_equal(qkd_store_get(s, 1, got, sizeof(got), &n, NULL), QKD_OK);
	assert_memory_equal(got, bits, 512);
	assert_int_equal(lookup_ok(s, 2).state, QKD_STORE_USED);
	if (version >= 2) {
		assert_int_equal(qkd_store_kme_deliver(s, "m", "s", (const uint8_t (*)[16])id, 1,
						       outs, sizeof(key), &len, &bad, NULL), QKD_OK);
		assert_int_equal(len, 32);
		assert_memory_equal(key, bits, 32);
	}
	qkd_wipe(got, sizeof(got));
	qkd_wipe(key, sizeof(key));
}

static void test_upgrade(void **state)
{
	struct fix *f = *state;
	uint8_t bits[512], out[64];
	struct qkd_store_seg seg[2];
	size_t ns = 0;

	fill_bytes(bits, sizeof(bits), 5);
	for (int version = 1; version <= 2; version++) {
		struct qkd_store *s;

		unlink(f->path);
		make_old(f->path, version, bits);
		s = open_ok(f->path);
		assert_int_equal(raw_int(f->path, "SELECT version FROM schema_version"),
				 QKD_STORE_SCHEMA_VERSION);
		check_upgraded(s, bits, version);
		/* and it hands out the bits it had: take starts at bit 1000 */
		assert_int_equal(qkd_store_take(s, 24, out, sizeof(out), seg, 2, &ns, NULL), QKD_OK);
		assert_true(seg[0].id == 0 && seg[0].offset == 1000);
		assert_int_equal(out[0], (uint8_t)(bits[125]));
		qkd_store_close(s);
		s = open_ok(f->path);	/* opens as any current store */
		check_ok(s);
		qkd_store_close(s);
	}
	qkd_wipe(out, sizeof(out));
}

/* A reader never upgrades: reads work (without digests), writes refuse. */
static void test_old_reader(void **state)
{
	struct fix *f = *state;
	struct qkd_store *ro = NULL;
	uint8_t bits[512], got[512];
	struct qkd_store_seg seg[2];
	struct qkd_kme_counts c;
	uint64_t n = 0;
	size_t ns = 0;
	const char *why = NULL;

	fill_bytes(bits, sizeof(bits), 6);
	make_old(f->path, 2, bits);
	assert_int_equal(qkd_store_open_existing(&ro, f->path, &why), QKD_OK);
	check_ok(ro);
	assert_int_equal(qkd_store_get(ro, 1, got, sizeof(got), &n, NULL), QKD_OK);
	assert_memory_equal(got, bits, 512);
	assert_int_equal(qkd_store_kme_counts(ro, &c, NULL), QKD_OK);
	assert_int_equal(c.ready, 1);
	assert_int_equal(qkd_store_take(ro, 8, got, sizeof(got), seg, 2, &ns, &why), QKD_ERR_INVAL);
	assert_true(has_text(why, "schema version 2"));
	assert_int_equal(qkd_store_put_pending(ro, 9, bits, 64, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_quarantine(ro, 9, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_verify(ro, NULL, NULL, NULL, &why), QKD_ERR_INVAL);
	assert_true(has_text(why, "open it for writing"));
	assert_int_equal(lookup_ok(ro, 0).consumed, 1000);
	qkd_store_close(ro);
	assert_int_equal(raw_int(f->path, "SELECT version FROM schema_version"), 2);
	qkd_wipe(got, sizeof(got));
}

/* ---- what the rollback journal costs ---- */

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Rounds of put_pending, finalize, take_at and take, as the node and its
 * key manager do them: each a transaction, fsynced (synchronous=FULL). The
 * figures are printed (docs/keystore.md quotes them); the key handed out
 * is checked. */
static void test_journal_cost(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	enum { ROUNDS = 50, BYTES = 16384 };
	uint8_t *bits = malloc(BYTES), out[256];
	struct qkd_store_seg seg[2];
	double t[4] = { 0 };
	size_t ns = 0;

	assert_non_null(bits);
	for (uint64_t r = 0; r < ROUNDS; r++) {
		double t0 = now_s(), t1, t2, t3;

		fill_bytes(bits, BYTES, r);
		assert_int_equal(qkd_store_put_pending(s, r, bits, 8 * BYTES, NULL), QKD_OK);
		t1 = now_s();
		assert_int_equal(qkd_store_finalize(s, r, NULL), QKD_OK);
		t2 = now_s();
		for (uint64_t k = 0; k < 4; k++) {
			seg[0] = (struct qkd_store_seg){ r, 8 * BYTES - 2048 * (k + 1), 2048 };
			assert_int_equal(qkd_store_take_at(s, seg, 1, out, sizeof(out), NULL),
					 QKD_OK);
			assert_memory_equal(out, bits + BYTES - 256 * (k + 1), sizeof(out));
		}
		t3 = now_s();
		for (int k = 0; k < 4; k++)
			assert_int_equal(qkd_store_take(s, 2048, out, sizeof(out), seg, 2, &ns, NULL),
					 QKD_OK);
		t[0] += t1 - t0;
		t[1] += t2 - t1;
		t[2] += t3 - t2;
		t[3] += now_s() - t3;
	}
	print_message("journal_mode=TRUNCATE, synchronous=FULL: put_pending (16 KiB) %.2f ms,"
		      " finalize %.2f ms, take_at (256 B) %.2f ms, take (256 B) %.2f ms per call\n",
		      1e3 * t[0] / ROUNDS, 1e3 * t[1] / ROUNDS, 1e3 * t[2] / (4 * ROUNDS),
		      1e3 * t[3] / (4 * ROUNDS));
	check_ok(s);
	qkd_store_close(s);
	qkd_free_secret(bits, BYTES);
	qkd_wipe(out, sizeof(out));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_nothing_mapped),
		T(test_wal_converted),
		T(test_node_lock),
		T(test_must_exist),
		T(test_processes_at_once),
		T(test_upgrade),
		T(test_old_reader),
		T(test_journal_cost),
	};
#undef T

	return cmocka_run_group_tests_name("keystore_open", tests, NULL, NULL);
}
