/* test_keystore.c - the persistent key store (DESIGN.md section 6,
 * docs/keystore.md).
 *
 * Every test works in its own mkdtemp directory, removed afterwards. The
 * checks: persistence across reopen and the file's mode; every state
 * transition and refusal, and idempotent retries; take across blocks,
 * take_at conflicts and atomicity; a randomized "never twice" run checked
 * against an independent model (segments predicted exactly, bits compared
 * with what was stored, the peer's store consumed in step); key bits gone
 * from the file (and its journal) once consumed; a rollback journal, no
 * WAL; files that are not key stores or are newer or corrupt; and a child
 * SIGKILLed in the middle of its transactions. Digests, quarantine, disk
 * faults and the node's handle have test_keystore_*.c of their own.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
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
#include "qkd/secret.h"

#define STORE_FIXTURE_NAME "qkd-keystore"
#include "store_fixture.h"

/* ---- helpers ---- */

static uint64_t nbytes(uint64_t nbits)
{
	return (nbits + 7) / 8;
}

/* Bits [apos, apos + n) of a equal bits [bpos, bpos + n) of b. */
static void assert_bits_at(const uint8_t *a, uint64_t apos, const uint8_t *b, uint64_t bpos,
			   uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (bit_at(a, apos + i) != bit_at(b, bpos + i))
			fail_msg("bit %llu differs (positions %llu, %llu)", (unsigned long long)i,
				 (unsigned long long)(apos + i), (unsigned long long)(bpos + i));
}

static void write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
}

/* ---- open, reopen, file ---- */

static void test_create_reopen(void **state)
{
	struct fix *f = *state;
	uint8_t a[126], b[8], got[200];
	uint64_t n = 0;
	time_t t0 = time(NULL);
	struct qkd_store *s = open_ok(f->path);
	struct qkd_store_block blk;
	struct stat sb;
	char side[400];
	uint8_t hdr[20];
	int fd;

	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	fill_bits(a, 1001, 1);
	fill_bits(b, 64, 2);
	put_final(s, 7, a, 1001);
	assert_int_equal(qkd_store_put_pending(s, 3, b, 64, NULL), QKD_OK);
	/* a rollback journal, truncated at commit (0600 as the file): no WAL,
	 * no -shm index to map */
	snprintf(side, sizeof(side), "%s-journal", f->path);
	assert_int_equal(stat(side, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(sb.st_size, 0);
	snprintf(side, sizeof(side), "%s-wal", f->path);
	assert_int_equal(access(side, F_OK), -1);
	snprintf(side, sizeof(side), "%s-shm", f->path);
	assert_int_equal(access(side, F_OK), -1);
	qkd_store_close(s);
	qkd_store_close(NULL);

	/* the header's file format bytes: 1, 1 (rollback journal; WAL is 2, 2) */
	fd = open(f->path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	close(fd);
	assert_int_equal(hdr[18], 1);
	assert_int_equal(hdr[19], 1);
	assert_int_equal(qkd_store_open_existing(&s, f->path, NULL), QKD_OK);
	blk = lookup_ok(s, 7);
	assert_int_equal(blk.state, QKD_STORE_FINAL);
	assert_int_equal(blk.nbits, 1001);
	assert_int_equal(blk.consumed, 0);
	assert_true(blk.created >= t0 && blk.created <= time(NULL));
	assert_int_equal(qkd_store_get(s, 7, got, sizeof(got), &n, NULL), QKD_OK);
	assert_int_equal(n, 1001);
	assert_memory_equal(got, a, sizeof(a));
	assert_int_equal(lookup_ok(s, 3).state, QKD_STORE_PENDING);
	check_ok(s);
	qkd_store_close(s);
	qkd_wipe(got, sizeof(got));
}

static void test_open_errors(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = (struct qkd_store *)f;	/* must be reset to NULL */
	const char *why = NULL;
	char p[400];

	assert_int_equal(qkd_store_open_existing(&s, f->path, &why), QKD_ERR_IO);
	assert_null(s);
	assert_true(has_text(why, "no such key store"));
	assert_int_equal(access(f->path, F_OK), -1);	/* not created */
	snprintf(p, sizeof(p), "%s/nodir/link.db", f->dir);
	assert_int_equal(qkd_store_open(&s, p, &why), QKD_ERR_IO);
	assert_true(has_text(why, "no such directory"));
	assert_int_equal(qkd_store_open_existing(&s, f->dir, &why), QKD_ERR_IO);
	assert_int_equal(qkd_store_open(&s, NULL, &why), QKD_ERR_INVAL);

	/* an empty file: not a store for a reader, a new store for open */
	write_file(f->path, "", 0);
	assert_int_equal(qkd_store_open_existing(&s, f->path, &why), QKD_ERR_IO);
	assert_true(has_text(why, "empty"));
	s = open_ok(f->path);
	qkd_store_close(s);
	assert_int_equal(qkd_store_open_existing(&s, f->path, &why), QKD_OK);
	qkd_store_close(s);
}

/* ---- states ---- */

static void test_states(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	uint8_t a[32], b2[32], got[32], out[32];
	struct qkd_store_seg seg[4];
	size_t ns = 0;
	uint64_t n = 0;
	const char *why = NULL;
	bool found = true;
	struct qkd_store_block blk;

	fill_bits(a, 256, 10);
	fill_bits(b2, 256, 11);
	assert_int_equal(qkd_store_put_pending(s, 10, a, 256, &why), QKD_OK);
	assert_null(why);
	/* a retry with the same bits is a no-op; other bits or length are refused */
	assert_int_equal(qkd_store_put_pending(s, 10, a, 256, &why), QKD_OK);
	assert_int_equal(qkd_store_put_pending(s, 10, b2, 256, &why), QKD_ERR_INVAL);
	assert_true(has_text(why, "other bits"));
	assert_int_equal(qkd_store_put_pending(s, 10, a, 248, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_get(s, 10, got, sizeof(got), &n, NULL), QKD_OK);
	assert_memory_equal(got, a, 32);

	/* pending key is not handed out */
	assert_int_equal(qkd_store_take(s, 1, out, sizeof(out), seg, 4, &ns, &why),
			 QKD_ERR_RANGE);
	seg[0] = (struct qkd_store_seg){ 10, 0, 8 };
	assert_int_equal(qkd_store_take_at(s, seg, 1, out, sizeof(out), &why), QKD_ERR_INVAL);
	assert_true(has_text(why, "not final"));

	assert_int_equal(qkd_store_finalize(s, 10, &why), QKD_OK);
	assert_int_equal(qkd_store_finalize(s, 10, &why), QKD_OK);	/* idempotent */
	assert_int_equal(lookup_ok(s, 10).state, QKD_STORE_FINAL);
	assert_int_equal(qkd_store_put_pending(s, 10, a, 256, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_discard(s, 10, &why), QKD_ERR_INVAL);
	assert_true(has_text(why, "final"));
	assert_int_equal(lookup_ok(s, 10).state, QKD_STORE_FINAL);
	assert_int_equal(qkd_store_finalize(s, 99, &why), QKD_ERR_INVAL);
	assert_true(has_text(why, "no such block"));
	assert_int_equal(qkd_store_get(s, 99, got, sizeof(got), &n, &why), QKD_ERR_INVAL);

	/* discard: pending goes, absent is fine, the id may be written again */
	assert_int_equal(qkd_store_put_pending(s, 11, b2, 256, NULL), QKD_OK);
	assert_int_equal(qkd_store_discard(s, 11, &why), QKD_OK);
	assert_int_equal(qkd_store_lookup(s, 11, &blk, &found, NULL), QKD_OK);
	assert_false(found);
	assert_int_equal(qkd_store_discard(s, 11, &why), QKD_OK);
	assert_int_equal(qkd_store_put_pending(s, 11, a, 256, NULL), QKD_OK);

	/* used: all bits handed out; still refuses reuse and discard */
	assert_int_equal(qkd_store_take(s, 256, out, sizeof(out), seg, 4, &ns, NULL), QKD_OK);
	assert_int_equal(ns, 1);
	assert_memory_equal(out, a, 32);
	blk = lookup_ok(s, 10);
	assert_int_equal(blk.state, QKD_STORE_USED);
	assert_int_equal(blk.consumed, 256);
	assert_int_equal(qkd_store_finalize(s, 10, NULL), QKD_OK);
	assert_int_equal(qkd_store_discard(s, 10, NULL), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_put_pending(s, 10, a, 256, NULL), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_get(s, 10, got, sizeof(got), &n, NULL), QKD_OK);
	for (size_t i = 0; i < 32; i++)
		assert_int_equal(got[i], 0);
	check_ok(s);
	qkd_store_close(s);
	qkd_wipe(out, sizeof(out));
}

static void test_bad_arguments(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	uint8_t a[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t out[8];
	struct qkd_store_seg seg[2];
	size_t ns = 0;
	uint64_t n = 0;
	const char *why = NULL;

	assert_int_equal(qkd_store_put_pending(s, QKD_STORE_ID_MAX + 1, a, 64, &why),
			 QKD_ERR_INVAL);
	assert_true(has_text(why, "id"));
	assert_int_equal(qkd_store_put_pending(s, 1, a, 0, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_put_pending(s, 1, a, QKD_STORE_BLOCK_MAX_BITS + 1, &why),
			 QKD_ERR_INVAL);
	assert_int_equal(qkd_store_put_pending(s, 1, NULL, 8, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_put_pending(NULL, 1, a, 8, &why), QKD_ERR_INVAL);
	/* padding bits of the last byte must be zero */
	assert_int_equal(qkd_store_put_pending(s, 1, a, 60, &why), QKD_ERR_INVAL);
	assert_true(has_text(why, "last byte"));
	a[7] = 0x0f;
	assert_int_equal(qkd_store_put_pending(s, 1, a, 60, &why), QKD_OK);
	assert_int_equal(qkd_store_finalize(s, 1, NULL), QKD_OK);

	assert_int_equal(qkd_store_take(s, 0, out, 8, seg, 2, &ns, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_take(s, 60, out, 7, seg, 2, &ns, &why), QKD_ERR_RANGE);
	assert_int_equal(qkd_store_take(s, 61, out, 8, seg, 2, &ns, &why), QKD_ERR_RANGE);
	assert_true(has_text(why, "not enough key"));
	seg[0] = (struct qkd_store_seg){ 1, 0, 0 };
	assert_int_equal(qkd_store_take_at(s, seg, 1, out, 8, &why), QKD_ERR_INVAL);
	seg[0] = (struct qkd_store_seg){ 1, UINT64_MAX, 2 };
	assert_int_equal(qkd_store_take_at(s, seg, 1, out, 8, &why), QKD_ERR_INVAL);
	seg[0] = (struct qkd_store_seg){ 1, 0, UINT64_MAX };
	seg[1] = (struct qkd_store_seg){ 1, 0, 2 };
	assert_int_equal(qkd_store_take_at(s, seg, 2, out, 8, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_finalize(s, QKD_STORE_ID_MAX + 1, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_get(s, 1, NULL, 0, &n, &why), QKD_ERR_RANGE);
	assert_int_equal(n, 60);
	assert_int_equal(lookup_ok(s, 1).consumed, 0);

	assert_string_equal(qkd_store_state_name(QKD_STORE_PENDING), "pending");
	assert_string_equal(qkd_store_state_name(QKD_STORE_FINAL), "final");
	assert_string_equal(qkd_store_state_name(QKD_STORE_USED), "used");
	assert_string_equal(qkd_store_state_name(QKD_STORE_QUARANTINED), "quarantined");
	assert_null(qkd_store_state_name((enum qkd_store_state)QKD_STORE_NSTATES));
	qkd_store_close(s);
}

/* ---- list, stats ---- */

struct list_ctx {
	uint64_t ids[16];
	size_t n;
	size_t stop_after;
};

static int list_cb(const struct qkd_store_block *b, void *ctx)
{
	struct list_ctx *c = ctx;

	if (c->n < 16)
		c->ids[c->n] = b->id;
	c->n++;
	return c->n == c->stop_after ? 42 : 0;
}

static void test_list_stats(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	uint8_t a[64], out[64];
	struct qkd_store_seg seg[4];
	struct qkd_store_stats st1, st2;
	struct list_ctx c = { .n = 0, .stop_after = 0 };
	size_t ns;

	fill_bits(a, 512, 3);
	a[12] &= 0x0f;	/* a 100-bit block's padding */
	put_final(s, 30, a, 100);
	put_final(s, 5, a, 100);
	assert_int_equal(qkd_store_put_pending(s, 17, a, 64, NULL), QKD_OK);
	put_final(s, 8, a, 512);
	assert_int_equal(qkd_store_take(s, 150, out, sizeof(out), seg, 4, &ns, NULL), QKD_OK);

	assert_int_equal(qkd_store_list(s, list_cb, &c, &st1, NULL), QKD_OK);
	assert_int_equal(c.n, 4);
	assert_int_equal(c.ids[0], 5);
	assert_int_equal(c.ids[1], 8);
	assert_int_equal(c.ids[2], 17);
	assert_int_equal(c.ids[3], 30);
	assert_int_equal(qkd_store_stats(s, &st2, NULL), QKD_OK);
	assert_memory_equal(&st1, &st2, sizeof(st1));
	assert_int_equal(st2.count, 4);
	assert_int_equal(st2.total_bits, 100 + 100 + 64 + 512);
	assert_int_equal(st2.consumed_bits, 150);
	assert_int_equal(st2.available_bits, 100 + 512 - 50);
	assert_int_equal(st2.state_count[QKD_STORE_PENDING], 1);
	assert_int_equal(st2.state_bits[QKD_STORE_PENDING], 64);
	assert_int_equal(st2.state_count[QKD_STORE_FINAL], 2);
	assert_int_equal(st2.state_bits[QKD_STORE_FINAL], 612);
	assert_int_equal(st2.state_count[QKD_STORE_USED], 1);
	assert_int_equal(st2.state_bits[QKD_STORE_USED], 100);

	/* a callback's non-zero value stops the listing and is returned */
	c.n = 0;
	c.stop_after = 2;
	assert_int_equal(qkd_store_list(s, list_cb, &c, NULL, NULL), 42);
	assert_int_equal(c.n, 2);
	assert_int_equal(qkd_store_list(s, NULL, NULL, &st1, NULL), QKD_OK);
	assert_int_equal(st1.count, 4);
	qkd_store_close(s);
	qkd_wipe(out, sizeof(out));
}

/* ---- take, take_at ---- */

static void test_take_spans_blocks(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	uint8_t b1[13], b2[7], b3[25], b4[8], out[64];
	struct qkd_store_seg seg[4];
	struct qkd_store_stats st;
	size_t ns = 99;
	const char *why = NULL;

	fill_bits(b1, 100, 21);
	fill_bits(b2, 50, 22);
	fill_bits(b3, 200, 23);
	fill_bits(b4, 64, 24);
	put_final(s, 3, b3, 200);	/* inserted out of order: take follows ids */
	put_final(s, 1, b1, 100);
	put_final(s, 2, b2, 50);
	assert_int_equal(qkd_store_put_pending(s, 0, b4, 64, NULL), QKD_OK);

	assert_int_equal(qkd_store_take(s, 120, out, sizeof(out), seg, 4, &ns, &why), QKD_OK);
	assert_int_equal(ns, 2);
	assert_int_equal(seg[0].id, 1);
	assert_int_equal(seg[0].offset, 0);
	assert_int_equal(seg[0].nbits, 100);
	assert_int_equal(seg[1].id, 2);
	assert_int_equal(seg[1].offset, 0);
	assert_int_equal(seg[1].nbits, 20);
	assert_bits_at(out, 0, b1, 0, 100);
	assert_bits_at(out, 100, b2, 0, 20);
	assert_int_equal(lookup_ok(s, 1).state, QKD_STORE_USED);
	assert_int_equal(lookup_ok(s, 2).consumed, 20);

	/* needs 2 segments, only 1 allowed: refused, nothing consumed */
	assert_int_equal(qkd_store_take(s, 40, out, sizeof(out), seg, 1, &ns, &why),
			 QKD_ERR_RANGE);
	assert_int_equal(ns, 0);
	assert_true(has_text(why, "segments"));
	assert_int_equal(qkd_store_take(s, 231, out, sizeof(out), seg, 4, &ns, &why),
			 QKD_ERR_RANGE);
	assert_int_equal(qkd_store_stats(s, &st, NULL), QKD_OK);
	assert_int_equal(st.available_bits, 230);

	/* odd offsets: from bit 20 of block 2 across into block 3 */
	memset(out, 0xff, sizeof(out));
	assert_int_equal(qkd_store_take(s, 37, out, sizeof(out), seg, 4, &ns, NULL), QKD_OK);
	for (uint64_t i = 37; i < 40; i++)
		assert_int_equal(bit_at(out, i), 0);	/* padding of the output */
	assert_int_equal(ns, 2);
	assert_true(seg[0].id == 2 && seg[0].offset == 20 && seg[0].nbits == 30);
	assert_true(seg[1].id == 3 && seg[1].offset == 0 && seg[1].nbits == 7);
	assert_bits_at(out, 0, b2, 20, 30);
	assert_bits_at(out, 30, b3, 0, 7);
	assert_int_equal(qkd_store_take(s, 193, out, sizeof(out), seg, 4, &ns, NULL), QKD_OK);
	assert_int_equal(ns, 1);
	assert_bits_at(out, 0, b3, 7, 193);
	assert_int_equal(qkd_store_take(s, 1, out, sizeof(out), seg, 4, &ns, &why),
			 QKD_ERR_RANGE);
	assert_int_equal(qkd_store_stats(s, &st, NULL), QKD_OK);
	assert_int_equal(st.available_bits, 0);
	assert_int_equal(st.state_count[QKD_STORE_USED], 3);
	assert_int_equal(st.state_count[QKD_STORE_PENDING], 1);
	check_ok(s);
	qkd_store_close(s);
	qkd_wipe(out, sizeof(out));
}

static void test_take_at(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	uint8_t b[32], out[32], got[32];
	struct qkd_store_seg seg[4];
	size_t ns = 0;
	uint64_t n = 0;
	const char *why = NULL;

	fill_bits(b, 256, 5);
	put_final(s, 5, b, 256);
	seg[0] = (struct qkd_store_seg){ 5, 100, 50 };
	assert_int_equal(qkd_store_take_at(s, seg, 1, out, sizeof(out), &why), QKD_OK);
	assert_bits_at(out, 0, b, 100, 50);
	/* any overlap with [100, 150) is refused */
	seg[0] = (struct qkd_store_seg){ 5, 120, 10 };
	assert_int_equal(qkd_store_take_at(s, seg, 1, out, sizeof(out), &why), QKD_ERR_INVAL);
	assert_true(has_text(why, "already handed out"));
	seg[0] = (struct qkd_store_seg){ 5, 149, 2 };
	assert_int_equal(qkd_store_take_at(s, seg, 1, out, sizeof(out), &why), QKD_ERR_INVAL);
	seg[0] = (struct qkd_store_seg){ 5, 90, 11 };
	assert_int_equal(qkd_store_take_at(s, seg, 1, out, sizeof(out), &why), QKD_ERR_INVAL);
	seg[0] = (struct qkd_store_seg){ 5, 0, 256 };
	assert_int_equal(qkd_store_take_at(s, seg, 1, out, sizeof(out), &why), QKD_ERR_INVAL);
	/* adjacent ranges are fine */
	seg[0] = (struct qkd_store_seg){ 5, 150, 10 };
	assert_int_equal(qkd_store_take_at(s, seg, 1, out, sizeof(out), &why), QKD_OK);
	seg[0] = (struct qkd_store_seg){ 5, 95, 5 };
	assert_int_equal(qkd_store_take_at(s, seg, 1, out, sizeof(out), &why), QKD_OK);
	assert_bits_at(out, 0, b, 95, 5);
	/* all or nothing: the second segment overlaps the first */
	seg[0] = (struct qkd_store_seg){ 5, 0, 10 };
	seg[1] = (struct qkd_store_seg){ 5, 5, 10 };
	assert_int_equal(qkd_store_take_at(s, seg, 2, out, sizeof(out), &why), QKD_ERR_INVAL);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0);	/* wiped on failure */
	assert_int_equal(lookup_ok(s, 5).consumed, 65);
	seg[1] = (struct qkd_store_seg){ 5, 250, 6 };
	assert_int_equal(qkd_store_take_at(s, seg, 2, out, sizeof(out), &why), QKD_OK);
	assert_bits_at(out, 0, b, 0, 10);
	assert_bits_at(out, 10, b, 250, 6);
	/* outside the block, unknown block */
	seg[0] = (struct qkd_store_seg){ 5, 250, 7 };
	assert_int_equal(qkd_store_take_at(s, seg, 1, out, sizeof(out), &why), QKD_ERR_INVAL);
	assert_true(has_text(why, "outside"));
	seg[0] = (struct qkd_store_seg){ 6, 0, 1 };
	assert_int_equal(qkd_store_take_at(s, seg, 1, out, sizeof(out), &why), QKD_ERR_INVAL);
	assert_true(has_text(why, "no such block"));

	/* get shows consumed bits as zero */
	assert_int_equal(qkd_store_get(s, 5, got, sizeof(got), &n, NULL), QKD_OK);
	for (uint64_t i = 0; i < 256; i++) {
		bool used = i < 10 || (i >= 95 && i < 160) || i >= 250;

		assert_int_equal(bit_at(got, i), used ? 0 : bit_at(b, i));
	}
	/* take fills the gaps, lowest first */
	assert_int_equal(qkd_store_take(s, 100, out, sizeof(out), seg, 4, &ns, NULL), QKD_OK);
	assert_int_equal(ns, 2);
	assert_true(seg[0].id == 5 && seg[0].offset == 10 && seg[0].nbits == 85);
	assert_true(seg[1].id == 5 && seg[1].offset == 160 && seg[1].nbits == 15);
	assert_bits_at(out, 0, b, 10, 85);
	assert_bits_at(out, 85, b, 160, 15);
	check_ok(s);
	qkd_store_close(s);
	qkd_wipe(out, sizeof(out));
	qkd_wipe(got, sizeof(got));
}

/* Two handles (two processes' worth) on one file see each other's commits. */
static void test_two_handles(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s1 = open_ok(f->path), *s2 = open_ok(f->path);
	uint8_t b[16], out[16];
	struct qkd_store_seg seg[2];
	size_t ns = 0;

	fill_bits(b, 128, 9);
	put_final(s1, 1, b, 128);
	assert_int_equal(qkd_store_take(s2, 64, out, sizeof(out), seg, 2, &ns, NULL), QKD_OK);
	assert_int_equal(lookup_ok(s1, 1).consumed, 64);
	assert_int_equal(qkd_store_take_at(s1, seg, 1, out, sizeof(out), NULL), QKD_ERR_INVAL);
	qkd_store_close(s1);
	qkd_store_close(s2);
	qkd_wipe(out, sizeof(out));
}

/* ---- never twice: random takes against a model ---- */

#define NT_BLOCKS 12

struct model {
	uint64_t id[NT_BLOCKS], nbits[NT_BLOCKS];
	uint8_t *bits[NT_BLOCKS];
	uint8_t *used[NT_BLOCKS];	/* one byte per bit */
	bool final[NT_BLOCKS];
};

static int model_index(const struct model *m, uint64_t id)
{
	for (int i = 0; i < NT_BLOCKS; i++)
		if (m->id[i] == id)
			return i;
	return -1;
}

/* The segments take must choose: free bits of FINAL blocks, ids ascending
 * (m is built in ascending id order). Returns their count, or SIZE_MAX
 * when fewer than need bits are free. */
static size_t model_plan(const struct model *m, uint64_t need, struct qkd_store_seg *segs,
			 size_t max)
{
	size_t n = 0;

	for (int i = 0; i < NT_BLOCKS && need > 0; i++) {
		for (uint64_t j = 0; m->final[i] && j < m->nbits[i] && need > 0; j++) {
			if (m->used[i][j])
				continue;
			if (n > 0 && segs[n - 1].id == m->id[i] &&
			    segs[n - 1].offset + segs[n - 1].nbits == j) {
				segs[n - 1].nbits++;
			} else {
				if (n < max)
					segs[n] = (struct qkd_store_seg){ m->id[i], j, 1 };
				n++;
				if (n > max)
					return n;
			}
			need--;
		}
	}
	return need > 0 ? SIZE_MAX : n;
}

/* Expected result of take_at(segs) on the model. */
static bool model_can_take(const struct model *m, const struct qkd_store_seg *segs, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		int i = model_index(m, segs[k].id);

		if (i < 0 || !m->final[i] || segs[k].offset + segs[k].nbits > m->nbits[i])
			return false;
		for (uint64_t j = 0; j < segs[k].nbits; j++)
			if (m->used[i][segs[k].offset + j])
				return false;
		for (size_t l = 0; l < k; l++)
			if (segs[l].id == segs[k].id &&
			    segs[l].offset < segs[k].offset + segs[k].nbits &&
			    segs[k].offset < segs[l].offset + segs[l].nbits)
				return false;
	}
	return true;
}

/* Mark segs used in the model, failing if any bit was used; compare the
 * bits handed out with the stored ones. */
static void model_consume(struct model *m, const struct qkd_store_seg *segs, size_t n,
			  const uint8_t *out)
{
	uint64_t pos = 0;

	for (size_t k = 0; k < n; k++) {
		int i = model_index(m, segs[k].id);

		assert_true(i >= 0);
		for (uint64_t j = 0; j < segs[k].nbits; j++) {
			if (m->used[i][segs[k].offset + j])
				fail_msg("bit %llu of block %llu handed out twice",
					 (unsigned long long)(segs[k].offset + j),
					 (unsigned long long)segs[k].id);
			m->used[i][segs[k].offset + j] = 1;
		}
		assert_bits_at(out, pos, m->bits[i], segs[k].offset, segs[k].nbits);
		pos += segs[k].nbits;
	}
}

static void model_build(struct model *m, struct qkd_store *a, struct qkd_store *b,
			uint64_t *rng)
{
	for (int i = 0; i < NT_BLOCKS; i++) {
		m->id[i] = 100 + 3 * (uint64_t)i;
		m->nbits[i] = 1 + mix(rng) % 3000;
		m->bits[i] = calloc(nbytes(m->nbits[i]), 1);
		m->used[i] = calloc(m->nbits[i], 1);
		assert_non_null(m->bits[i]);
		assert_non_null(m->used[i]);
		fill_bits(m->bits[i], m->nbits[i], mix(rng));
		m->final[i] = i % 4 != 1;	/* a quarter stay pending for a while */
		for (struct qkd_store *s = a; s != NULL; s = s == a ? b : NULL) {
			assert_int_equal(qkd_store_put_pending(s, m->id[i], m->bits[i],
							       m->nbits[i], NULL), QKD_OK);
			if (m->final[i])
				assert_int_equal(qkd_store_finalize(s, m->id[i], NULL), QKD_OK);
		}
	}
}

static void model_verify(const struct model *m, struct qkd_store *s)
{
	uint8_t got[400];
	struct qkd_store_stats st;
	struct qkd_store_verify_stats vs;
	uint64_t n = 0, avail = 0;

	for (int i = 0; i < NT_BLOCKS; i++) {
		assert_int_equal(qkd_store_get(s, m->id[i], got, sizeof(got), &n, NULL), QKD_OK);
		for (uint64_t j = 0; j < m->nbits[i]; j++)
			assert_int_equal(bit_at(got, j), m->used[i][j] ? 0 : bit_at(m->bits[i], j));
		for (uint64_t j = 0; m->final[i] && j < m->nbits[i]; j++)
			avail += !m->used[i][j];
	}
	assert_int_equal(qkd_store_stats(s, &st, NULL), QKD_OK);
	assert_int_equal(st.available_bits, avail);
	check_ok(s);
	/* the consume steps kept every digest right */
	assert_int_equal(qkd_store_verify(s, NULL, NULL, &vs, NULL), QKD_OK);
	assert_int_equal(vs.bad_blocks, 0);
	assert_int_equal(st.state_count[QKD_STORE_QUARANTINED], 0);
	qkd_wipe(got, sizeof(got));
}

/* One random take on a, mirrored by take_at on the peer b. */
static void random_take(struct model *m, struct qkd_store *a, struct qkd_store *b,
			uint64_t *rng)
{
	struct qkd_store_seg want[9], seg[8];
	uint8_t out[200], peer[200];
	uint64_t nb = 1 + mix(rng) % 1500;
	size_t ns = 0, expect = model_plan(m, nb, want, 8);
	int rc = qkd_store_take(a, nb, out, sizeof(out), seg, 8, &ns, NULL);

	if (expect > 8) {
		assert_int_equal(rc, QKD_ERR_RANGE);
		return;
	}
	assert_int_equal(rc, QKD_OK);
	assert_int_equal(ns, expect);
	assert_memory_equal(seg, want, ns * sizeof(seg[0]));
	model_consume(m, seg, ns, out);
	assert_int_equal(qkd_store_take_at(b, seg, ns, peer, sizeof(peer), NULL), QKD_OK);
	assert_memory_equal(peer, out, nbytes(nb));
	qkd_wipe(out, sizeof(out));
	qkd_wipe(peer, sizeof(peer));
}

/* One or two random ranges by take_at on both stores. */
static void random_take_at(struct model *m, struct qkd_store *a, struct qkd_store *b,
			   uint64_t *rng)
{
	struct qkd_store_seg seg[2];
	uint8_t out[100], peer[100];
	size_t n = 1 + (mix(rng) % 4 == 0);
	bool ok;
	int rc;

	for (size_t k = 0; k < n; k++) {
		int i = (int)(mix(rng) % NT_BLOCKS);

		seg[k].id = m->id[i];
		seg[k].offset = mix(rng) % (m->nbits[i] + 4);
		seg[k].nbits = 1 + mix(rng) % 300;
	}
	ok = model_can_take(m, seg, n);
	rc = qkd_store_take_at(a, seg, n, out, sizeof(out), NULL);
	assert_int_equal(rc, ok ? QKD_OK : QKD_ERR_INVAL);
	assert_int_equal(qkd_store_take_at(b, seg, n, peer, sizeof(peer), NULL), rc);
	if (ok) {
		model_consume(m, seg, n, out);
		assert_memory_equal(peer, out, nbytes(seg[0].nbits + (n > 1 ? seg[1].nbits : 0)));
	}
	qkd_wipe(out, sizeof(out));
	qkd_wipe(peer, sizeof(peer));
}

static void test_never_twice(void **state)
{
	struct fix *f = *state;
	char bpath[400];
	struct qkd_store *a = open_ok(f->path), *b;
	struct model m;
	uint64_t rng = 20260101;

	snprintf(bpath, sizeof(bpath), "%s/peer.db", f->dir);
	b = open_ok(bpath);
	model_build(&m, a, b, &rng);
	for (int step = 0; step < 600; step++) {
		uint64_t r = mix(&rng) % 100;

		if (r < 55) {
			random_take(&m, a, b, &rng);
		} else if (r < 95) {
			random_take_at(&m, a, b, &rng);
		} else if (r < 98) {
			int i = (int)(mix(&rng) % NT_BLOCKS);

			assert_int_equal(qkd_store_finalize(a, m.id[i], NULL), QKD_OK);
			assert_int_equal(qkd_store_finalize(b, m.id[i], NULL), QKD_OK);
			m.final[i] = true;
		} else {
			qkd_store_close(a);	/* state survives a reopen */
			a = open_ok(f->path);
		}
		if (step % 100 == 99) {
			model_verify(&m, a);
			model_verify(&m, b);
		}
	}
	model_verify(&m, a);
	model_verify(&m, b);
	for (int i = 0; i < NT_BLOCKS; i++) {
		qkd_free_secret(m.bits[i], nbytes(m.nbits[i]));
		free(m.used[i]);
	}
	qkd_store_close(a);
	qkd_store_close(b);
}

/* ---- the file itself ---- */

/* How many 16-byte windows of key[from, to) (step 16) occur in the database
 * file and its journal (or a WAL an older program left). */
static int windows_on_disk(const char *path, const uint8_t *key, size_t from, size_t to)
{
	static const char *const side[] = { "", "-journal", "-wal" };
	char p[400];
	int hits = 0;

	for (int w = 0; w < 3; w++) {
		uint8_t *data;
		size_t n;

		snprintf(p, sizeof(p), "%s%s", path, side[w]);
		n = read_all(p, &data);
		for (size_t k = from; data != NULL && k + 16 <= to; k += 16)
			hits += memmem(data, n, key + k, 16) != NULL;
		free(data);
	}
	return hits;
}

static void test_wiped_on_disk(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	uint8_t *key = malloc(4096), *out = malloc(4096);
	struct qkd_store_seg seg[2];
	size_t ns = 0;

	assert_non_null(key);
	assert_non_null(out);
	fill_bits(key, 4096 * 8, 77);
	put_final(s, 1, key, 4096 * 8);
	assert_int_equal(qkd_store_take(s, 2000 * 8 + 3, out, 4096, seg, 2, &ns, NULL), QKD_OK);
	qkd_store_close(s);
	/* whole consumed bytes are zeros in the file; the rest is still there */
	assert_int_equal(windows_on_disk(f->path, key, 0, 2000), 0);
	assert_int_equal(windows_on_disk(f->path, key, 2016, 4096), (4096 - 2016) / 16);

	s = open_ok(f->path);
	assert_int_equal(qkd_store_take(s, 4096 * 8 - 16003, out, 4096, seg, 2, &ns, NULL),
			 QKD_OK);
	assert_int_equal(lookup_ok(s, 1).state, QKD_STORE_USED);
	qkd_store_close(s);
	/* used: the bits were deleted and secure_delete overwrote them */
	assert_int_equal(windows_on_disk(f->path, key, 0, 4096), 0);
	qkd_free_secret(key, 4096);
	qkd_free_secret(out, 4096);
}

static void test_not_a_store(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = NULL;
	const char *why = NULL;
	static const char text[] = "this is not a database, just a text file\n";
	uint8_t *data = NULL;
	char mode[32];

	write_file(f->path, text, sizeof(text) - 1);
	assert_int_equal(qkd_store_open(&s, f->path, &why), QKD_ERR_IO);
	assert_null(s);
	assert_true(has_text(why, "not an SQLite database"));
	assert_int_equal(qkd_store_open_existing(&s, f->path, &why), QKD_ERR_IO);
	assert_int_equal(read_all(f->path, &data), sizeof(text) - 1);	/* untouched */
	assert_memory_equal(data, text, sizeof(text) - 1);
	free(data);
	unlink(f->path);

	/* another program's SQLite database: refused and left alone */
	raw_sql(f->path, "CREATE TABLE t (x); INSERT INTO t VALUES (1)");
	assert_int_equal(qkd_store_open(&s, f->path, &why), QKD_ERR_IO);
	assert_true(has_text(why, "another program"));
	raw_text(f->path, "PRAGMA journal_mode", mode, sizeof(mode));
	assert_string_equal(mode, "delete");
}

static void test_corrupt(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	uint8_t b[512], junk[4096];
	const char *why = NULL;
	int fd, rc;

	fill_bits(b, 4096, 1);
	for (uint64_t id = 1; id <= 20; id++)
		put_final(s, id, b, 4096);
	qkd_store_close(s);
	/* every page after the first overwritten: open or check must say so */
	memset(junk, 0x5a, sizeof(junk));
	fd = open(f->path, O_WRONLY);
	assert_true(fd >= 0);
	for (off_t off = 4096; off < 8 * 4096; off += 4096)
		assert_int_equal(pwrite(fd, junk, sizeof(junk), off), (ssize_t)sizeof(junk));
	close(fd);
	rc = qkd_store_open(&s, f->path, &why);
	if (rc == QKD_OK) {
		rc = qkd_store_check(s, &why);
		qkd_store_close(s);
	}
	assert_int_equal(rc, QKD_ERR_IO);
	assert_true(has_text(why, "corrupt") || has_text(why, "inconsistent"));

	/* the header's magic gone */
	fd = open(f->path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, junk, 16, 0), 16);
	close(fd);
	assert_int_equal(qkd_store_open(&s, f->path, &why), QKD_ERR_IO);
	assert_true(has_text(why, "not an SQLite database"));
}

static void test_schema_version(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	const char *why = NULL;
	char sql[128];

	qkd_store_close(s);
	snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %d",
		 QKD_STORE_SCHEMA_VERSION + 1);
	raw_sql(f->path, sql);
	assert_int_equal(qkd_store_open(&s, f->path, &why), QKD_ERR_RANGE);
	assert_null(s);
	assert_true(has_text(why, "newer"));
	raw_sql(f->path, "UPDATE schema_version SET version = 0");
	assert_int_equal(qkd_store_open(&s, f->path, &why), QKD_ERR_IO);
	assert_true(has_text(why, "schema version"));
	raw_sql(f->path, "DROP TABLE schema_version");
	assert_int_equal(qkd_store_open(&s, f->path, &why), QKD_ERR_IO);
	snprintf(sql, sizeof(sql), "CREATE TABLE schema_version (version INTEGER NOT NULL)"
		 " STRICT; INSERT INTO schema_version VALUES (%d)", QKD_STORE_SCHEMA_VERSION);
	raw_sql(f->path, sql);
	s = open_ok(f->path);
	qkd_store_close(s);
}

/* ---- crash: SIGKILL in the middle of transactions ---- */

/* Block id's length and bits, recomputable after the crash. */
static uint64_t crash_nbits(uint64_t id)
{
	uint64_t x = id * 7919;

	return 64 + mix(&x) % 2000;
}

static void crash_bits(uint64_t id, uint8_t *buf)
{
	fill_bits(buf, crash_nbits(id), id ^ 0xabcdef);
}

static void crash_child(const char *path, uint64_t first, int wfd)
{
	struct qkd_store *s = NULL;
	uint8_t bits[300], out[100];
	struct qkd_store_seg seg[16];
	uint64_t rng = first;
	size_t ns;
	int rc;

	if (qkd_store_open(&s, path, NULL) != QKD_OK)
		_exit(2);
	for (uint64_t id = first;; id++) {
		crash_bits(id, bits);
		if (qkd_store_put_pending(s, id, bits, crash_nbits(id), NULL) != QKD_OK)
			_exit(3);
		if ((id % 7 == 3 ? qkd_store_discard(s, id, NULL)
				 : qkd_store_finalize(s, id, NULL)) != QKD_OK)
			_exit(4);
		rc = qkd_store_take(s, 1 + mix(&rng) % 700, out, sizeof(out), seg, 16, &ns, NULL);
		if (rc != QKD_OK && rc != QKD_ERR_RANGE)
			_exit(5);
		seg[0] = (struct qkd_store_seg){ id - mix(&rng) % 3, mix(&rng) % 2000,
						 1 + mix(&rng) % 400 };
		rc = qkd_store_take_at(s, seg, 1, out, sizeof(out), NULL);
		if (rc != QKD_OK && rc != QKD_ERR_INVAL)
			_exit(6);
		if (write(wfd, &id, sizeof(id)) != (ssize_t)sizeof(id))
			_exit(7);
	}
}

struct crash_ctx {
	uint64_t max_id;
};

static int crash_list(const struct qkd_store_block *b, void *ctx)
{
	struct crash_ctx *c = ctx;

	if (b->id > c->max_id)
		c->max_id = b->id;
	return b->nbits == crash_nbits(b->id) ? 0 : -100;
}

/* After the crash: consistent; every id up to committed (the child's last
 * report) present unless discarded; every block's remaining bits its own;
 * and draining all available key hands out exactly the stored bits.
 * Returns the highest id written. */
static uint64_t crash_verify(const char *path, uint64_t committed)
{
	struct qkd_store *s = open_ok(path);
	struct crash_ctx c = { .max_id = 0 };
	struct qkd_store_stats st;
	struct qkd_store_verify_stats vs;
	struct qkd_store_seg *seg = calloc(4096, sizeof(*seg));
	uint8_t *out, want[300], got[300];
	uint64_t pos = 0, n = 0;
	size_t ns = 0;

	assert_non_null(seg);
	check_ok(s);
	assert_int_equal(qkd_store_verify(s, NULL, NULL, &vs, NULL), QKD_OK);
	assert_int_equal(vs.bad_blocks, 0);	/* bits and digests committed together */
	assert_int_equal(qkd_store_list(s, crash_list, &c, &st, NULL), QKD_OK);
	if (committed % 7 != 3)
		assert_true(c.max_id >= committed);
	for (uint64_t id = 1; id <= c.max_id; id++) {
		bool found = false;
		struct qkd_store_block b;

		assert_int_equal(qkd_store_lookup(s, id, &b, &found, NULL), QKD_OK);
		if (!found) {
			assert_true(id % 7 == 3);	/* only discarded ids are absent */
			continue;
		}
		crash_bits(id, want);
		assert_int_equal(qkd_store_get(s, id, got, sizeof(got), &n, NULL), QKD_OK);
		for (uint64_t k = 0; k < nbytes(n); k++)	/* consumed bits read 0 */
			assert_int_equal(got[k] & (uint8_t)~want[k], 0);
		if (b.state == QKD_STORE_PENDING)
			assert_memory_equal(got, want, nbytes(n));
	}
	if (st.available_bits > 0) {
		out = malloc(nbytes(st.available_bits));
		assert_non_null(out);
		assert_int_equal(qkd_store_take(s, st.available_bits, out,
						nbytes(st.available_bits), seg, 4096, &ns, NULL),
				 QKD_OK);
		for (size_t k = 0; k < ns; k++) {
			crash_bits(seg[k].id, want);
			assert_bits_at(out, pos, want, seg[k].offset, seg[k].nbits);
			pos += seg[k].nbits;
		}
		assert_int_equal(pos, st.available_bits);
		free(out);
	}
	assert_int_equal(qkd_store_stats(s, &st, NULL), QKD_OK);
	assert_int_equal(st.state_count[QKD_STORE_FINAL], 0);
	check_ok(s);
	qkd_store_close(s);
	free(seg);
	return c.max_id;
}

static void test_crash(void **state)
{
	struct fix *f = *state;
	uint64_t next = 1, rng = 99;

	for (int round = 0; round < 10; round++) {
		int fds[2];
		uint64_t id = 0, target = next + 2 + (uint64_t)round * 2;
		pid_t pid;
		int status;

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			crash_child(f->path, next, fds[1]);
			_exit(8);
		}
		close(fds[1]);
		while (id < target)
			assert_int_equal(read(fds[0], &id, sizeof(id)), (ssize_t)sizeof(id));
		usleep((useconds_t)(mix(&rng) % 4000));	/* land anywhere in a transaction */
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		close(fds[0]);
		next = crash_verify(f->path, id);
		next = (next > id ? next : id) + 1;
	}
}

/* The relay's pads (keystore_half.c): each end cuts from its own half of
 * the block ids; Alice leaves the newest block alone; the far end
 * consumes exactly those segments, and only from the cutter's half. */
static void test_take_half(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path), *peer;
	uint8_t b[4][16], out[32], again[32];
	struct qkd_store_seg seg[4];
	uint64_t avail = 0;
	size_t ns = 0;
	const char *why = NULL;

	for (int i = 0; i < 4; i++) {
		fill_bits(b[i], 128, 40 + i);
		put_final(s, (uint64_t)i, b[i], 128);	/* blocks 0 .. 3 */
	}
	assert_int_equal(qkd_store_half_free(s, 0, false, &avail, &why), QKD_OK);
	assert_int_equal(avail, 256);
	assert_int_equal(qkd_store_half_free(s, 1, true, &avail, &why), QKD_OK);
	assert_int_equal(avail, 128);	/* block 3 is the newest */
	/* Alice's half, the newest block excluded: 0 and 2, 3 being newest. */
	assert_int_equal(qkd_store_take_half(s, 0, true, 200, out, sizeof out, seg, 4, &ns, &why),
			 QKD_OK);
	assert_int_equal(ns, 2);
	assert_int_equal(seg[0].id, 0);
	assert_int_equal(seg[1].id, 2);
	assert_memory_equal(out, b[0], 16);
	assert_int_equal(qkd_store_take_half(s, 0, true, 100, out, sizeof out, seg, 4, &ns, &why),
			 QKD_ERR_RANGE);
	/* Bob's half, below the newest: block 1 only, block 3 being newest. */
	assert_int_equal(qkd_store_take_half(s, 1, true, 129, out, sizeof out, seg, 4, &ns, &why),
			 QKD_ERR_RANGE);
	assert_int_equal(qkd_store_take_half(s, 1, false, 129, out, sizeof out, seg, 4, &ns, &why),
			 QKD_OK);
	assert_int_equal(seg[0].id, 1);
	assert_int_equal(seg[1].id, 3);
	assert_int_equal(qkd_store_take_half(s, 2, false, 8, out, sizeof out, seg, 4, &ns, &why),
			 QKD_ERR_INVAL);
	qkd_store_close(s);

	/* The far end: a fresh store with the same blocks consumes what was
	 * cut, from the cutter's half only, and never twice. */
	assert_int_equal(unlink(f->path), 0);
	peer = open_ok(f->path);
	for (int i = 0; i < 4; i++)
		put_final(peer, (uint64_t)i, b[i], 128);
	seg[0] = (struct qkd_store_seg){ 1, 0, 128 };
	seg[1] = (struct qkd_store_seg){ 3, 0, 1 };
	assert_int_equal(qkd_store_take_at_half(peer, 0, seg, 2, again, sizeof again, &why),
			 QKD_ERR_INVAL);
	assert_non_null(strstr(why, "other end's half"));
	assert_int_equal(qkd_store_take_at_half(peer, 1, seg, 2, again, sizeof again, &why), QKD_OK);
	assert_memory_equal(again, b[1], 16);
	assert_int_equal(qkd_store_take_at_half(peer, 1, seg, 2, again, sizeof again, &why),
			 QKD_ERR_INVAL);
	qkd_store_close(peer);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_create_reopen),
		T(test_open_errors),
		T(test_states),
		T(test_bad_arguments),
		T(test_list_stats),
		T(test_take_spans_blocks),
		T(test_take_at),
		T(test_take_half),
		T(test_two_handles),
		T(test_never_twice),
		T(test_wiped_on_disk),
		T(test_not_a_store),
		T(test_corrupt),
		T(test_schema_version),
		T(test_crash),
	};
#undef T

	return cmocka_run_group_tests_name("keystore", tests, NULL, NULL);
}
