/* store_fixture.h - the fixture and helpers shared by the key store's unit
 * tests: test_keystore.c, test_keystore_digest.c, test_keystore_open.c,
 * test_keystore_faults.c and test_kme_store.c. Test code only; each of
 * those files, a binary of its own, includes it once.
 *
 * A file that #defines STORE_FIXTURE_NAME (the prefix of its temporary
 * directory, "qkd-ks-open" and so on) before including this gets the
 * fixture too: struct fix, a fresh $TMPDIR/NAME.XXXXXX with the store's
 * path link.db in it, and setup/teardown for cmocka_unit_test_setup_teardown
 * (teardown removes the directory and everything in it). test_kme_store.c,
 * with two stores open in each test, builds its own on tmpdir_make and
 * tmpdir_remove.
 *
 * The helpers are static inline so that a file need not use them all.
 */
#ifndef QKD_TESTS_STORE_FIXTURE_H
#define QKD_TESTS_STORE_FIXTURE_H

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "qkd/error.h"
#include "qkd/keystore.h"

/* ---- temporary directories ---- */

/* Make a fresh directory $TMPDIR/name.XXXXXX (/tmp without TMPDIR) into
 * dir, of n bytes. 0 on success, -1 when it could not be made. */
static inline int tmpdir_make(char *dir, size_t n, const char *name)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, n, "%s/%s.XXXXXX", tmp ? tmp : "/tmp", name);
	return mkdtemp(dir) == NULL ? -1 : 0;
}

/* Remove dir and the files in it (the store, its journal, ...). */
static inline void tmpdir_remove(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[600];

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d != NULL)
		closedir(d);
	rmdir(dir);
}

#ifdef STORE_FIXTURE_NAME
struct fix {
	char dir[256];
	char path[320];		/* dir/link.db, not created */
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (tmpdir_make(f->dir, sizeof(f->dir), STORE_FIXTURE_NAME) != 0) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/link.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	tmpdir_remove(f->dir);
	free(f);
	return 0;
}
#endif

/* ---- bits ---- */

/* splitmix64: the next pseudo-random word of the stream *x. */
static inline uint64_t mix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* n pseudo-random bytes from seed. */
static inline void fill_bytes(uint8_t *buf, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)mix(&seed);
}

/* nbits pseudo-random bits from seed, padding bits zero: the first bytes
 * of fill_bytes with the same seed. */
static inline void fill_bits(uint8_t *buf, uint64_t nbits, uint64_t seed)
{
	fill_bytes(buf, (size_t)((nbits + 7) / 8), seed);
	if (nbits % 8)
		buf[nbits / 8] &= (uint8_t)((1u << (nbits % 8)) - 1);
}

static inline unsigned bit_at(const uint8_t *b, uint64_t i)
{
	return (b[i / 8] >> (i % 8)) & 1u;
}

static inline bool all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

static inline bool has_text(const char *why, const char *part)
{
	return why != NULL && strstr(why, part) != NULL;
}

/* ---- the store ---- */

static inline struct qkd_store *open_ok(const char *path)
{
	struct qkd_store *s = NULL;
	const char *why = "unset";

	if (qkd_store_open(&s, path, &why) != QKD_OK)
		fail_msg("open: %s", why ? why : "?");
	assert_non_null(s);
	assert_null(why);
	return s;
}

/* Block id, nbits of bits, put and finalized. */
static inline void put_final(struct qkd_store *s, uint64_t id, const uint8_t *bits, uint64_t nbits)
{
	assert_int_equal(qkd_store_put_pending(s, id, bits, nbits, NULL), QKD_OK);
	assert_int_equal(qkd_store_finalize(s, id, NULL), QKD_OK);
}

/* Block id, which must exist. */
static inline struct qkd_store_block lookup_ok(struct qkd_store *s, uint64_t id)
{
	struct qkd_store_block b;
	bool found = false;

	assert_int_equal(qkd_store_lookup(s, id, &b, &found, NULL), QKD_OK);
	assert_true(found);
	assert_int_equal(b.id, id);
	return b;
}

static inline void check_ok(struct qkd_store *s)
{
	const char *why = NULL;

	if (qkd_store_check(s, &why) != QKD_OK)
		fail_msg("qkd_store_check: %s", why ? why : "?");
}

/* ---- the file behind the store's back ---- */

/* The whole file into *data (malloc'd, one spare byte); its size. 0 and
 * *data NULL when there is no such file. */
static inline size_t read_all(const char *path, uint8_t **data)
{
	struct stat sb;
	int fd = open(path, O_RDONLY);
	size_t n = 0;

	*data = NULL;
	if (fd < 0)
		return 0;
	assert_int_equal(fstat(fd, &sb), 0);
	*data = malloc((size_t)sb.st_size + 1);
	assert_non_null(*data);
	while (n < (size_t)sb.st_size) {
		ssize_t r = read(fd, *data + n, (size_t)sb.st_size - n);

		assert_true(r > 0);
		n += (size_t)r;
	}
	close(fd);
	return n;
}

/* Run SQL on path with plain SQLite (outside the store API). */
static inline void raw_sql(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *err = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err ? err : "?");
	sqlite3_close(db);
}

/* The first column of the first row of a query, as an integer. */
static inline int64_t raw_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* The same, as text into out (of n bytes). */
static inline void raw_text(const char *path, const char *sql, char *out, size_t n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* ---- other processes ---- */

/* Run fn(arg) in a child process and return its result, passed through a
 * pipe: the exit status would be valgrind's when it reports the parent's
 * handles, inherited and never closed in the child, as leaks. */
static inline int in_child(int (*fn)(const char *), const char *arg)
{
	int fds[2], status = 0;
	unsigned char r = 255;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		r = (unsigned char)fn(arg);
		_exit(write(fds[1], &r, 1) == 1 ? 0 : 1);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &r, 1), 1);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return r;
}

#endif /* QKD_TESTS_STORE_FIXTURE_H */
