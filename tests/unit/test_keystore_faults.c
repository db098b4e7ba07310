/* test_keystore_faults.c - disk faults under the key store: a full file
 * system, a file that refuses writes (docs/keystore.md, "Disk faults").
 *
 * A VFS shim, installed as SQLite's default under the store, passes every
 * call to the real VFS but fails writes once a byte budget is spent:
 * SQLITE_FULL (a full disk), or SQLITE_IOERR_WRITE with errno ENOSPC,
 * EPERM (an immutable file) or EIO. A loop of the store's writing calls
 * runs with budgets from 0 up, so that the fault lands in every write of
 * every transaction (journal, database, truncation): each call succeeds
 * or fails with the named error, and after the fault clears the store is
 * consistent, has lost nothing that was committed, kept nothing that was
 * not, and works again. Then the same against real ones, as root: a small
 * tmpfs in a private mount namespace filled up, and a file made immutable
 * (chattr +i) under an open store, which used to end in SIGBUS with WAL.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "qkd/error.h"
#include "qkd/keystore.h"
#include "qkd/kme_store.h"
#include "qkd/secret.h"

#define STORE_FIXTURE_NAME "qkd-ks-faults"
#include "store_fixture.h"

/* ---- the VFS shim ---- */

enum fault { FAULT_FULL, FAULT_ENOSPC, FAULT_EPERM, FAULT_EIO };

static struct {
	sqlite3_vfs *real;
	bool armed;
	long long budget;	/* bytes that may still be written */
	enum fault kind;
	int last_errno;		/* what xGetLastError tells after our fault */
	long long faults;	/* writes refused */
} shim;

struct shim_file {
	sqlite3_file base;
	sqlite3_file *real;	/* right after this struct */
};

static int s_close(sqlite3_file *f)
{
	struct shim_file *p = (struct shim_file *)f;

	return p->real->pMethods->xClose(p->real);
}

static int s_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	struct shim_file *p = (struct shim_file *)f;

	return p->real->pMethods->xRead(p->real, buf, n, off);
}

static int s_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	struct shim_file *p = (struct shim_file *)f;

	if (shim.armed && shim.budget < n) {
		shim.faults++;
		shim.last_errno = shim.kind == FAULT_EPERM ? EPERM
				  : shim.kind == FAULT_EIO ? EIO : ENOSPC;
		return shim.kind == FAULT_FULL ? SQLITE_FULL : SQLITE_IOERR_WRITE;
	}
	shim.budget -= n;
	return p->real->pMethods->xWrite(p->real, buf, n, off);
}

static int s_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct shim_file *p = (struct shim_file *)f;

	return p->real->pMethods->xTruncate(p->real, size);
}

static int s_sync(sqlite3_file *f, int flags)
{
	struct shim_file *p = (struct shim_file *)f;

	return p->real->pMethods->xSync(p->real, flags);
}

static int s_size(sqlite3_file *f, sqlite3_int64 *size)
{
	struct shim_file *p = (struct shim_file *)f;

	return p->real->pMethods->xFileSize(p->real, size);
}

static int s_lock(sqlite3_file *f, int l)
{
	struct shim_file *p = (struct shim_file *)f;

	return p->real->pMethods->xLock(p->real, l);
}

static int s_unlock(sqlite3_file *f, int l)
{
	struct shim_file *p = (struct shim_file *)f;

	return p->real->pMethods->xUnlock(p->real, l);
}

static int s_check(sqlite3_file *f, int *out)
{
	struct shim_file *p = (struct shim_file *)f;

	return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int s_fcntl(sqlite3_file *f, int op, void *arg)
{
	struct shim_file *p = (struct shim_file *)f;

	return p->real->pMethods->xFileControl(p->real, op, arg);
}

static int s_sector(sqlite3_file *f)
{
	struct shim_file *p = (struct shim_file *)f;

	return p->real->pMethods->xSectorSize(p->real);
}

static int s_devchar(sqlite3_file *f)
{
	struct shim_file *p = (struct shim_file *)f;

	return p->real->pMethods->xDeviceCharacteristics(p->real);
}

/* Version 1 methods: no shared memory, no mmap (the store uses neither). */
static const sqlite3_io_methods shim_io = {
	1, s_close, s_read, s_write, s_truncate, s_sync, s_size, s_lock, s_unlock, s_check,
	s_fcntl, s_sector, s_devchar,
	NULL, NULL, NULL, NULL, NULL, NULL,
};

static int s_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	struct shim_file *p = (struct shim_file *)f;
	int rc;

	(void)vfs;
	p->real = (sqlite3_file *)(p + 1);
	rc = shim.real->xOpen(shim.real, name, p->real, flags, out);
	p->base.pMethods = rc == SQLITE_OK ? &shim_io : NULL;
	return rc;
}

static int s_delete(sqlite3_vfs *v, const char *name, int sync)
{
	(void)v;
	return shim.real->xDelete(shim.real, name, sync);
}

static int s_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	(void)v;
	return shim.real->xAccess(shim.real, name, flags, out);
}

static int s_full(sqlite3_vfs *v, const char *name, int n, char *out)
{
	(void)v;
	return shim.real->xFullPathname(shim.real, name, n, out);
}

static int s_random(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return shim.real->xRandomness(shim.real, n, out);
}

static int s_sleep(sqlite3_vfs *v, int us)
{
	(void)v;
	return shim.real->xSleep(shim.real, us);
}

static int s_time(sqlite3_vfs *v, double *out)
{
	(void)v;
	return shim.real->xCurrentTime(shim.real, out);
}

static int s_lasterr(sqlite3_vfs *v, int n, char *buf)
{
	(void)v;
	(void)n;
	(void)buf;
	return shim.last_errno != 0 ? shim.last_errno : errno;
}

static int s_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	(void)v;
	return shim.real->xCurrentTimeInt64(shim.real, out);
}

static sqlite3_vfs shim_vfs;

/* After a first store open (SQLite initialized with the store's wiping
 * allocator), make the shim the default VFS. */
static void shim_install(const char *path)
{
	struct qkd_store *s = NULL;

	if (shim.real != NULL)
		return;
	assert_int_equal(qkd_store_open(&s, path, NULL), QKD_OK);
	qkd_store_close(s);
	unlink(path);
	shim.real = sqlite3_vfs_find(NULL);
	assert_non_null(shim.real);
	shim_vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct shim_file) + shim.real->szOsFile,
		.mxPathname = shim.real->mxPathname,
		.zName = "qkd-fault-shim",
		.xOpen = s_open, .xDelete = s_delete, .xAccess = s_access,
		.xFullPathname = s_full, .xRandomness = s_random, .xSleep = s_sleep,
		.xCurrentTime = s_time, .xGetLastError = s_lasterr,
		.xCurrentTimeInt64 = s_time64,
	};
	assert_int_equal(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);
}

static void arm(enum fault kind, long long budget)
{
	shim.kind = kind;
	shim.budget = budget;
	shim.last_errno = 0;
	shim.armed = true;
}

static void disarm(void)
{
	shim.armed = false;
	shim.last_errno = 0;
}

/* ---- helpers ---- */

static void block_bits(uint64_t id, uint8_t *buf, size_t n)
{
	fill_bytes(buf, n, id * 7919 + 1);
}

/* What a fault of this kind must be called. */
static void assert_named(int rc, const char *why, enum fault kind)
{
	if (kind == FAULT_EPERM) {
		assert_int_equal(rc, QKD_ERR_READONLY);
		assert_true(has_text(why, "read-only"));
	} else if (kind == FAULT_EIO) {
		assert_int_equal(rc, QKD_ERR_IO);
	} else {
		assert_int_equal(rc, QKD_ERR_NOSPACE);
		assert_string_equal(why, "no space left on device");
	}
}

#define BLOCK_BYTES 3000
#define KEY_BITS 1000
#define MAX_BLOCKS 128

/* The model: what was committed. */
struct model {
	uint64_t next;			/* next block id: those below are final */
	uint64_t consumed[MAX_BLOCKS];	/* bits handed out per block */
};

/* One step of the node and its key manager: a block written, finalized,
 * and key taken, each its own transaction, each done or not at all. A put
 * or finalize that failed is retried by the next step (put_pending of the
 * same bits is idempotent). */
static void step(struct qkd_store *s, struct model *m, enum fault kind, long long budget,
		 int *nfail)
{
	uint8_t bits[BLOCK_BYTES], out[KEY_BITS / 8];
	struct qkd_store_seg seg[4];
	size_t ns = 0;
	uint64_t id = m->next;
	const char *why = NULL;
	int rc;

	block_bits(id, bits, sizeof(bits));
	arm(kind, budget);
	rc = qkd_store_put_pending(s, id, bits, 8 * BLOCK_BYTES, &why);
	if (rc == QKD_OK)
		rc = qkd_store_finalize(s, id, &why);
	if (rc == QKD_OK) {
		m->next++;
		rc = qkd_store_take(s, KEY_BITS, out, sizeof(out), seg, 4, &ns, &why);
	}
	disarm();
	if (rc != QKD_OK) {
		assert_named(rc, why, kind);
		(*nfail)++;
	}
	for (size_t k = 0; rc == QKD_OK && k < ns; k++)
		m->consumed[seg[k].id] += seg[k].nbits;
	qkd_wipe(out, sizeof(out));
	qkd_wipe(bits, sizeof(bits));
}

/* The store holds exactly the model, and its bits are the blocks'. */
static void verify_model(struct qkd_store *s, const struct model *m)
{
	uint8_t want[BLOCK_BYTES], got[BLOCK_BYTES];
	struct qkd_store_verify_stats vs;
	uint64_t n = 0;

	check_ok(s);
	assert_int_equal(qkd_store_verify(s, NULL, NULL, &vs, NULL), QKD_OK);
	assert_int_equal(vs.bad_blocks, 0);
	for (uint64_t id = 0; id < MAX_BLOCKS; id++) {
		struct qkd_store_block b;
		bool found = false;

		assert_int_equal(qkd_store_lookup(s, id, &b, &found, NULL), QKD_OK);
		assert_true(found == (id < m->next) || (found && id == m->next));
		if (!found)
			continue;
		if (id == m->next) {	/* its put committed, its finalize did not */
			assert_int_equal(b.state, QKD_STORE_PENDING);
			continue;
		}
		assert_int_equal(b.consumed, m->consumed[id]);
		block_bits(id, want, sizeof(want));
		assert_int_equal(qkd_store_get(s, id, got, sizeof(got), &n, NULL), QKD_OK);
		for (uint64_t k = (m->consumed[id] + 7) / 8; k < BLOCK_BYTES; k++)
			assert_int_equal(got[k], want[k]);
	}
	qkd_wipe(got, sizeof(got));
}

/* Budgets from 0 up, so the fault lands on every write of the step; after
 * each, the fault cleared, a step must go through. */
static void fault_loop(const char *path, enum fault kind)
{
	struct qkd_store *s;
	struct model m = { .next = 0 };
	int nfail = 0, clean = 0;

	shim_install(path);
	s = open_ok(path);
	for (long long budget = 0; budget < 400000; budget += 1 + budget / 4) {
		step(s, &m, kind, budget, &nfail);
		verify_model(s, &m);
		step(s, &m, kind, 1LL << 40, &clean);
		assert_int_equal(clean, 0);
		verify_model(s, &m);
		assert_true(m.next < MAX_BLOCKS);
	}
	assert_true(nfail > 20);	/* the faults did land */
	qkd_store_close(s);
	s = open_ok(path);		/* the file reopens as it was */
	verify_model(s, &m);
	qkd_store_close(s);
}

static void test_full_sqlite(void **state)
{
	fault_loop(((struct fix *)*state)->path, FAULT_FULL);
}

static void test_full_enospc(void **state)
{
	fault_loop(((struct fix *)*state)->path, FAULT_ENOSPC);
}

static void test_refused_eperm(void **state)
{
	fault_loop(((struct fix *)*state)->path, FAULT_EPERM);
}

static void test_other_io_error(void **state)
{
	fault_loop(((struct fix *)*state)->path, FAULT_EIO);
}

/* ---- real faults (root) ---- */

/* In a child with a mount namespace of its own: a 192 KiB tmpfs on dir,
 * filled with blocks until the store says it is full; then a filler file
 * goes (the fault clears) and the store works again, every block there.
 * 0 on success, 77 when this cannot run here, else the failing step. */
static int full_tmpfs(const char *dir)
{
	char path[400], filler[400];
	static uint8_t bits[BLOCK_BYTES], zeros[65536];
	struct qkd_store *s = NULL;
	uint64_t id = 0, n = 0;
	const char *why = NULL;
	int rc = 0, fd;

	if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("tmpfs", dir, "tmpfs", 0, "size=192k") != 0)
		return 77;
	snprintf(path, sizeof(path), "%s/link.db", dir);
	snprintf(filler, sizeof(filler), "%s/filler", dir);
	fd = open(filler, O_WRONLY | O_CREAT, 0600);
	if (fd < 0 || write(fd, zeros, sizeof(zeros)) != (ssize_t)sizeof(zeros))
		return 1;
	close(fd);
	if (qkd_store_open(&s, path, &why) != QKD_OK)
		return 2;
	for (; rc == 0 && id < 200; id++) {
		block_bits(id, bits, sizeof(bits));
		rc = qkd_store_put_pending(s, id, bits, 8 * BLOCK_BYTES, &why);
	}
	if (rc != QKD_ERR_NOSPACE || strcmp(why, "no space left on device") != 0)
		return 3;
	id--;			/* the one that did not fit */
	if (qkd_store_check(s, NULL) != QKD_OK)
		return 4;
	unlink(filler);
	if (qkd_store_put_pending(s, id, bits, 8 * BLOCK_BYTES, &why) != QKD_OK)
		return 5;
	for (uint64_t k = 0; k <= id; k++) {
		uint8_t got[BLOCK_BYTES];

		block_bits(k, bits, sizeof(bits));
		if (qkd_store_get(s, k, got, sizeof(got), &n, NULL) != QKD_OK ||
		    memcmp(got, bits, sizeof(got)) != 0)
			return 6;
	}
	qkd_store_close(s);
	umount(dir);
	return 0;
}

static void test_full_tmpfs(void **state)
{
	struct fix *f = *state;
	int rc;

	if (geteuid() != 0)
		skip();
	rc = in_child(full_tmpfs, f->dir);
	if (rc == 77)
		skip();
	assert_int_equal(rc, 0);
}

static bool chattr(const char *flag, const char *path)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "chattr %s '%s' 2>/dev/null", flag, path);
	return system(cmd) == 0;
}

/* The store turned immutable under an open handle (the SIGBUS of WAL):
 * writes are QKD_ERR_READONLY and change nothing, reads go on, `qkd keys`
 * still opens it, and once the flag goes everything works again. */
static void test_immutable(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s, *ro = NULL;
	uint8_t bits[BLOCK_BYTES], got[BLOCK_BYTES], out[64];
	struct qkd_store_seg seg[2];
	struct qkd_store_stats st;
	size_t ns = 0;
	uint64_t n = 0;
	const char *why = NULL;
	int rc;

	if (geteuid() != 0)
		skip();
	s = open_ok(f->path);
	block_bits(1, bits, sizeof(bits));
	assert_int_equal(qkd_store_put_pending(s, 1, bits, 8 * BLOCK_BYTES, NULL), QKD_OK);
	assert_int_equal(qkd_store_finalize(s, 1, NULL), QKD_OK);
	if (!chattr("+i", f->path)) {
		qkd_store_close(s);
		skip();
	}
	rc = qkd_store_take(s, 256, out, sizeof(out), seg, 2, &ns, &why);
	assert_int_equal(rc, QKD_ERR_READONLY);
	assert_true(has_text(why, "read-only"));
	assert_int_equal(qkd_store_put_pending(s, 2, bits, 64, &why), QKD_ERR_READONLY);
	assert_int_equal(qkd_store_quarantine(s, 1, &why), QKD_ERR_READONLY);
	assert_int_equal(qkd_store_get(s, 1, got, sizeof(got), &n, NULL), QKD_OK);
	assert_memory_equal(got, bits, sizeof(got));
	assert_int_equal(qkd_store_stats(s, &st, NULL), QKD_OK);
	assert_int_equal(st.available_bits, 8 * BLOCK_BYTES);
	assert_int_equal(qkd_store_open_existing(&ro, f->path, &why), QKD_OK);
	check_ok(ro);
	qkd_store_close(ro);
	/* a writer cannot open it (nor upgrade, nor convert) */
	assert_int_equal(qkd_store_open(&ro, f->path, &why), QKD_ERR_READONLY);
	assert_true(chattr("-i", f->path));
	assert_int_equal(qkd_store_take(s, 256, out, sizeof(out), seg, 2, &ns, &why), QKD_OK);
	assert_memory_equal(out, bits, 32);
	check_ok(s);
	qkd_store_close(s);
	qkd_wipe(got, sizeof(got));
	qkd_wipe(out, sizeof(out));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_full_sqlite),
		T(test_full_enospc),
		T(test_refused_eperm),
		T(test_other_io_error),
		T(test_full_tmpfs),
		T(test_immutable),
	};
#undef T

	return cmocka_run_group_tests_name("keystore_faults", tests, NULL, NULL);
}
