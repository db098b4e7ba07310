/* test_keystore_digest.c - digests of stored bits and quarantine
 * (docs/keystore.md, "Digests"; qkd/keystore.h).
 *
 * The bit rot that was reproduced: one bit flipped in the file, inside a
 * block's bits, passes SQLite's integrity check and qkd_store_check. Here
 * take, take_at and get must refuse it before any bit is cut or returned
 * (QKD_ERR_CORRUPT, a reason naming the block), quarantine the block (bits
 * gone from the file, unreported to the peer) and consume nothing, while the
 * chunks that were not read stay usable until then. Also: known-answer
 * vectors for the digest layout (from Python's hashlib, an independent
 * BLAKE2b), digests kept right by consume steps that zero bytes, swapped
 * chunks caught, the peer's quarantine API, and the start-up walk.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "qkd/error.h"
#include "qkd/keystore.h"
#include "qkd/secret.h"

#define STORE_FIXTURE_NAME "qkd-ks-digest"
#include "store_fixture.h"

/* ---- helpers ---- */

/* Flip bit `bit` of byte at (0 .. 15) of the 16-byte window bits[at ..]
 * where it lies in the file: bit rot on disk, behind SQLite's back. */
static void flip_on_disk(const char *path, const uint8_t *bits, size_t at, unsigned bit)
{
	uint8_t *data = NULL, c;
	size_t n = read_all(path, &data);
	uint8_t *hit = memmem(data, n, bits + at, 16);
	int fd;

	assert_non_null(hit);
	assert_null(memmem(hit + 1, n - (size_t)(hit + 1 - data), bits + at, 16));
	c = (uint8_t)(hit[8] ^ (1u << bit));
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &c, 1, hit + 8 - data), 1);
	close(fd);
	free(data);
}

static bool on_disk(const char *path, const uint8_t *bits, size_t at)
{
	uint8_t *data = NULL;
	size_t n = read_all(path, &data);
	bool hit = memmem(data, n, bits + at, 16) != NULL;

	free(data);
	return hit;
}

/* What SQLite itself makes of the file: "ok" despite the bit rot. */
static void sqlite_says_ok(const char *path)
{
	char r[64];

	raw_text(path, "PRAGMA integrity_check", r, sizeof(r));
	assert_string_equal(r, "ok");
}

static uint64_t unreported(struct qkd_store *s, uint64_t *ids, size_t max)
{
	size_t n = 99;

	assert_int_equal(qkd_store_quarantine_unreported(s, ids, max, &n, NULL), QKD_OK);
	return n;
}

/* ---- known answers ---- */

/* BLAKE2b-128, salt = id (LE64) || chunk (LE64), personal
 * "qkdstore-qbits-1", over bytes (i * 7 + 3) & 0xff of a 1300-byte block
 * id 7: hashlib.blake2b(chunk, digest_size=16, salt=..., person=...). */
static const char *const kat_chunk[3] = {
	"74b1f0b9220cd65fab005b1f6611feb2",
	"46dc3f49d1f1d13e146ab1508f16095a",
	"0767a7a7b1b4fc51aacb06356f69d8f3",
};

static void test_digest_kat(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	uint8_t bits[1300];
	char sums[200], want[100];

	for (size_t i = 0; i < sizeof(bits); i++)
		bits[i] = (uint8_t)((i * 7 + 3) & 0xff);
	put_final(s, 7, bits, 8 * sizeof(bits));
	qkd_store_close(s);
	raw_text(f->path, "SELECT lower(hex(sums)) FROM qsum WHERE id = 7", sums, sizeof(sums));
	snprintf(want, sizeof(want), "%s%s%s", kat_chunk[0], kat_chunk[1], kat_chunk[2]);
	assert_string_equal(sums, want);
}

/* A ready key's digest: salt = its key_ID, personal "qkdstore-kbits-1";
 * key_ID 00..0f, key bytes 00..1f. Checked through the KME tables. */
static void test_digest_kat_key(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	char sum[64];

	qkd_store_close(s);
	raw_sql(f->path, "INSERT INTO kme_key (seq, key_id, dir, state, master, slave, nbits,"
		 " segs, created) VALUES (1, x'000102030405060708090a0b0c0d0e0f', 'in', 'ready',"
		 " 'm', 's', 256, zeroblob(24), 0);"
		 "INSERT INTO kme_bits VALUES (1, x'000102030405060708090a0b0c0d0e0f"
		 "101112131415161718191a1b1c1d1e1f');"
		 "INSERT INTO kme_sum VALUES (1, x'cadb6a09e907528b8740f5f282013231');");
	s = open_ok(f->path);
	{
		struct qkd_store_verify_stats vs;

		assert_int_equal(qkd_store_verify(s, NULL, NULL, &vs, NULL), QKD_OK);
		assert_int_equal(vs.keys, 1);
		assert_int_equal(vs.bad_keys, 0);
	}
	qkd_store_close(s);
	raw_sql(f->path, "UPDATE kme_sum SET sum = x'cadb6a09e907528b8740f5f282013230'");
	s = open_ok(f->path);
	{
		struct qkd_store_verify_stats vs;

		assert_int_equal(qkd_store_verify(s, NULL, NULL, &vs, NULL), QKD_OK);
		assert_int_equal(vs.bad_keys, 1);
	}
	qkd_store_close(s);
	raw_text(f->path, "SELECT lower(hex(sum)) FROM kme_sum", sum, sizeof(sum));
	assert_string_equal(sum, "cadb6a09e907528b8740f5f282013230");	/* read-only */
}

/* ---- bit rot ---- */

static void test_bitrot_take(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	uint8_t b1[4096], b2[2048], out[64];
	struct qkd_store_seg seg[4];
	struct qkd_store_stats st;
	uint64_t ids[4];
	size_t ns = 0;
	const char *why = NULL;

	fill_bytes(b1, sizeof(b1), 1);
	fill_bytes(b2, sizeof(b2), 2);
	put_final(s, 1, b1, 8 * sizeof(b1));
	put_final(s, 2, b2, 8 * sizeof(b2));
	qkd_store_close(s);
	flip_on_disk(f->path, b1, 100, 3);	/* chunk 0 of block 1 */

	/* neither SQLite nor the invariant check sees it */
	sqlite_says_ok(f->path);
	s = open_ok(f->path);
	check_ok(s);
	memset(out, 0x55, sizeof(out));
	assert_int_equal(qkd_store_take(s, 256, out, sizeof(out), seg, 4, &ns, &why),
			 QKD_ERR_CORRUPT);
	assert_true(has_text(why, "block 1:"));
	assert_true(has_text(why, "digest"));
	assert_true(has_text(why, "quarantined"));
	assert_int_equal(ns, 0);
	assert_true(all_zero(out, 32));		/* the key's bytes wiped */
	assert_int_equal(lookup_ok(s, 1).state, QKD_STORE_QUARANTINED);
	assert_int_equal(lookup_ok(s, 1).consumed, 0);
	assert_int_equal(lookup_ok(s, 2).consumed, 0);	/* nothing consumed */
	assert_int_equal(unreported(s, ids, 4), 1);
	assert_int_equal(ids[0], 1);
	assert_int_equal(qkd_store_stats(s, &st, NULL), QKD_OK);
	assert_int_equal(st.state_count[QKD_STORE_QUARANTINED], 1);
	assert_int_equal(st.state_bits[QKD_STORE_QUARANTINED], 8 * sizeof(b1));
	assert_int_equal(st.quarantine_unreported, 1);
	assert_int_equal(st.available_bits, 8 * sizeof(b2));
	check_ok(s);

	/* the retry plans around it */
	assert_int_equal(qkd_store_take(s, 256, out, sizeof(out), seg, 4, &ns, &why), QKD_OK);
	assert_int_equal(ns, 1);
	assert_int_equal(seg[0].id, 2);
	assert_memory_equal(out, b2, 32);
	/* never served, never written again */
	assert_int_equal(qkd_store_put_pending(s, 1, b1, 8 * sizeof(b1), &why), QKD_ERR_CORRUPT);
	assert_true(has_text(why, "block 1 is quarantined"));
	assert_int_equal(qkd_store_finalize(s, 1, &why), QKD_ERR_CORRUPT);
	assert_int_equal(qkd_store_discard(s, 1, &why), QKD_ERR_CORRUPT);
	seg[0] = (struct qkd_store_seg){ 1, 0, 8 };
	assert_int_equal(qkd_store_take_at(s, seg, 1, out, sizeof(out), &why), QKD_ERR_CORRUPT);
	qkd_store_close(s);
	/* its bits left the file (secure_delete) */
	assert_false(on_disk(f->path, b1, 1000));
	assert_false(on_disk(f->path, b1, 4000));
	assert_true(on_disk(f->path, b2, 1000));
	qkd_wipe(out, sizeof(out));
}

/* Only the chunks a call reads are checked: a take_at of chunk 0 works while
 * chunk 2 is bad; one that reads chunk 2 fails, consumes nothing (even its
 * first segment, from a good block), and quarantines the block. */
static void test_bitrot_take_at(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	uint8_t b1[2000], b3[512], out[300];
	struct qkd_store_seg seg[2];
	const char *why = NULL;

	fill_bytes(b1, sizeof(b1), 11);
	fill_bytes(b3, sizeof(b3), 13);
	put_final(s, 1, b1, 8 * sizeof(b1));
	put_final(s, 3, b3, 8 * sizeof(b3));
	qkd_store_close(s);
	flip_on_disk(f->path, b1, 1100, 0);	/* byte 1108: chunk 2 */
	s = open_ok(f->path);

	seg[0] = (struct qkd_store_seg){ 1, 8, 800 };	/* bytes 1..101: chunk 0 */
	assert_int_equal(qkd_store_take_at(s, seg, 1, out, sizeof(out), &why), QKD_OK);
	assert_int_equal(out[0], b1[1]);
	assert_int_equal(lookup_ok(s, 1).consumed, 800);

	seg[0] = (struct qkd_store_seg){ 3, 0, 64 };
	seg[1] = (struct qkd_store_seg){ 1, 8 * 1100, 64 };
	assert_int_equal(qkd_store_take_at(s, seg, 2, out, sizeof(out), &why), QKD_ERR_CORRUPT);
	assert_true(has_text(why, "block 1:"));
	assert_true(has_text(why, "chunk 2 of 4"));
	assert_true(all_zero(out, 16));
	assert_int_equal(lookup_ok(s, 3).consumed, 0);
	assert_int_equal(lookup_ok(s, 1).state, QKD_STORE_QUARANTINED);
	assert_int_equal(lookup_ok(s, 1).consumed, 800);	/* as it was */
	check_ok(s);
	seg[0] = (struct qkd_store_seg){ 3, 0, 64 };
	assert_int_equal(qkd_store_take_at(s, seg, 1, out, sizeof(out), &why), QKD_OK);
	assert_memory_equal(out, b3, 8);
	qkd_store_close(s);
	qkd_wipe(out, sizeof(out));
}

/* get checks every chunk; a reader's handle (qkd keys export) reports
 * without quarantining, a writer's quarantines. */
static void test_bitrot_get(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path), *ro = NULL;
	uint8_t b[3000], got[3000];
	uint64_t n = 0;
	const char *why = NULL;

	fill_bytes(b, sizeof(b), 21);
	put_final(s, 4, b, 8 * sizeof(b));
	assert_int_equal(qkd_store_put_pending(s, 5, b, 8 * 1000, NULL), QKD_OK);
	qkd_store_close(s);
	flip_on_disk(f->path, b, 2900, 7);
	assert_int_equal(qkd_store_open_existing(&ro, f->path, NULL), QKD_OK);
	memset(got, 0x33, sizeof(got));
	assert_int_equal(qkd_store_get(ro, 4, got, sizeof(got), &n, &why), QKD_ERR_CORRUPT);
	assert_true(has_text(why, "block 4:"));
	assert_false(has_text(why, "quarantined"));
	assert_true(all_zero(got, sizeof(got)));
	assert_int_equal(lookup_ok(ro, 4).state, QKD_STORE_FINAL);
	qkd_store_close(ro);

	s = open_ok(f->path);
	assert_int_equal(qkd_store_get(s, 4, got, sizeof(got), &n, &why), QKD_ERR_CORRUPT);
	assert_true(has_text(why, "quarantined"));
	assert_int_equal(lookup_ok(s, 4).state, QKD_STORE_QUARANTINED);
	assert_int_equal(qkd_store_get(s, 4, got, sizeof(got), &n, &why), QKD_ERR_CORRUPT);
	assert_true(has_text(why, "block 4 is quarantined"));
	/* the pending block 5 holds the same first 1000 bytes: unharmed */
	assert_int_equal(qkd_store_get(s, 5, got, sizeof(got), &n, &why), QKD_OK);
	assert_memory_equal(got, b, 1000);
	/* a retried put of a pending block whose stored bits rotted: named */
	qkd_store_close(s);
	flip_on_disk(f->path, b, 500, 1);
	s = open_ok(f->path);
	assert_int_equal(qkd_store_put_pending(s, 5, b, 8 * 1000, &why), QKD_ERR_CORRUPT);
	assert_true(has_text(why, "block 5:"));
	assert_int_equal(lookup_ok(s, 5).state, QKD_STORE_QUARANTINED);
	check_ok(s);
	qkd_store_close(s);
	qkd_wipe(got, sizeof(got));
}

/* Chunks moved within a block or between blocks fail: the salt binds a
 * digest to its block and chunk. */
static void test_swapped_chunks(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	uint8_t b[2048], c[2048];
	struct qkd_store_verify_stats vs;

	fill_bytes(b, sizeof(b), 31);
	fill_bytes(c, sizeof(c), 32);
	put_final(s, 1, b, 8 * sizeof(b));
	put_final(s, 2, c, 8 * sizeof(c));
	put_final(s, 3, c, 8 * sizeof(c));
	qkd_store_close(s);
	raw_sql(f->path, "UPDATE qbits SET bits = CAST(substr(bits, 513, 512) || substr(bits, 1, 512)"
		 " || substr(bits, 1025) AS BLOB) WHERE id = 1;"
		 "UPDATE qsum SET sums = (SELECT sums FROM qsum WHERE id = 2) WHERE id = 3;");
	s = open_ok(f->path);
	check_ok(s);
	assert_int_equal(qkd_store_verify(s, NULL, NULL, &vs, NULL), QKD_OK);
	assert_int_equal(vs.blocks, 3);
	assert_int_equal(vs.chunks, 12);
	assert_int_equal(vs.bad_blocks, 2);	/* 1 (swapped) and 3 (block 2's digests) */
	qkd_store_close(s);
}

/* Consume steps zero bytes and recompute the digests of what they changed:
 * after takes and take_ats at odd offsets, every chunk still matches, and
 * the stored digest of a zeroed chunk is that of its zeros. */
static void test_digests_follow_consumption(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	uint8_t b[5000], out[1200], z[512] = { 0 }, d[16], salt[16] = { 9 };
	struct qkd_store_seg seg[8];
	struct qkd_store_verify_stats vs;
	size_t ns = 0;
	uint64_t rng = 5;
	char sums[64], hex[40];

	fill_bytes(b, sizeof(b), 41);
	put_final(s, 9, b, 8 * sizeof(b));
	put_final(s, 10, b, 5600);
	seg[0] = (struct qkd_store_seg){ 9, 0, 4096 };	/* chunk 0, all of it */
	assert_int_equal(qkd_store_take_at(s, seg, 1, out, sizeof(out), NULL), QKD_OK);
	for (int i = 0; i < 40; i++) {
		uint64_t off = 4096 + mix(&rng) % (8 * sizeof(b) - 4096), n = 1 + mix(&rng) % 3000;

		if (off + n > 8 * sizeof(b))
			n = 8 * sizeof(b) - off;
		int rc;

		seg[0] = (struct qkd_store_seg){ 9, off, n };
		rc = qkd_store_take_at(s, seg, 1, out, sizeof(out), NULL);
		assert_true(rc == QKD_OK || rc == QKD_ERR_INVAL);	/* overlaps refused */
		if (i % 5 != 0)
			continue;
		rc = qkd_store_take(s, 1 + mix(&rng) % 2000, out, sizeof(out), seg, 8, &ns, NULL);
		assert_true(rc == QKD_OK || rc == QKD_ERR_RANGE);
	}
	assert_int_equal(qkd_store_verify(s, NULL, NULL, &vs, NULL), QKD_OK);
	assert_int_equal(vs.bad_blocks, 0);
	assert_true(vs.blocks >= 1);
	check_ok(s);
	qkd_store_close(s);
	raw_text(f->path, "SELECT lower(hex(substr(sums, 1, 16))) FROM qsum WHERE id = 9", sums,
		 sizeof(sums));
	crypto_generichash_blake2b_salt_personal(d, 16, z, sizeof(z), NULL, 0, salt,
						 (const unsigned char *)"qkdstore-qbits-1");
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	assert_string_equal(sums, hex);
	qkd_wipe(out, sizeof(out));
}

/* ---- the peer's reports ---- */

static void test_quarantine_api(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	uint8_t b[512], out[64];
	struct qkd_store_seg seg[2];
	struct qkd_store_stats st;
	uint64_t ids[8];
	size_t ns = 0;
	const char *why = NULL;

	fill_bytes(b, sizeof(b), 51);
	assert_int_equal(qkd_store_put_pending(s, 1, b, 4096, NULL), QKD_OK);	/* pending */
	put_final(s, 2, b, 8 * sizeof(b));						/* final */
	put_final(s, 3, b, 64);
	assert_int_equal(qkd_store_take_at(s, &(struct qkd_store_seg){ 3, 0, 64 }, 1, out,
					   sizeof(out), NULL), QKD_OK);		/* used */
	assert_int_equal(qkd_store_take_at(s, &(struct qkd_store_seg){ 2, 0, 100 }, 1, out,
					   sizeof(out), NULL), QKD_OK);
	for (uint64_t id = 1; id <= 4; id++) {	/* 4: unknown, a tombstone */
		assert_int_equal(qkd_store_quarantine(s, id, &why), QKD_OK);
		assert_null(why);
		assert_int_equal(qkd_store_quarantine(s, id, &why), QKD_OK);	/* idempotent */
		assert_int_equal(lookup_ok(s, id).state, QKD_STORE_QUARANTINED);
	}
	assert_int_equal(lookup_ok(s, 4).nbits, 0);
	assert_int_equal(lookup_ok(s, 2).consumed, 100);
	assert_int_equal(lookup_ok(s, 3).consumed, 64);
	/* the peer reported them: nothing to report back */
	assert_int_equal(unreported(s, ids, 8), 0);
	assert_int_equal(qkd_store_stats(s, &st, NULL), QKD_OK);
	assert_int_equal(st.state_count[QKD_STORE_QUARANTINED], 4);
	assert_int_equal(st.state_bits[QKD_STORE_QUARANTINED], 4096 + 4096 + 64);
	assert_int_equal(st.available_bits, 0);
	assert_int_equal(st.count, 4);
	/* a tombstone's id is never written */
	assert_int_equal(qkd_store_put_pending(s, 4, b, 64, &why), QKD_ERR_CORRUPT);
	assert_int_equal(qkd_store_take(s, 1, out, sizeof(out), seg, 2, &ns, &why),
			 QKD_ERR_RANGE);
	assert_int_equal(qkd_store_quarantine(s, QKD_STORE_ID_MAX + 1, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_quarantine(NULL, 1, &why), QKD_ERR_INVAL);
	check_ok(s);
	qkd_store_close(s);
	assert_false(on_disk(f->path, b, 200));
	qkd_wipe(out, sizeof(out));
}

/* Blocks quarantined here wait, in id order, until the peer acknowledges. */
static void test_unreported(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	uint8_t b[600], out[8];
	uint64_t ids[8], n = 0, ack[3];
	struct qkd_store_seg seg[1];
	size_t ns = 0;
	const char *why = NULL;

	fill_bytes(b, sizeof(b), 61);
	for (uint64_t id = 10; id < 15; id++) {
		b[0] = (uint8_t)id;	/* a distinct window per block */
		put_final(s, id, b, 8 * sizeof(b));
	}
	qkd_store_close(s);
	raw_sql(f->path, "UPDATE qbits SET bits = zeroblob(600) WHERE id IN (14, 11, 12)");
	s = open_ok(f->path);
	assert_int_equal(qkd_store_verify_all(s, &n, &why), QKD_OK);
	assert_null(why);
	assert_int_equal(n, 3);
	assert_int_equal(qkd_store_verify_all(s, &n, &why), QKD_OK);
	assert_int_equal(n, 0);
	assert_int_equal(unreported(s, ids, 8), 3);
	assert_int_equal(ids[0], 11);
	assert_int_equal(ids[1], 12);
	assert_int_equal(ids[2], 14);
	assert_int_equal(unreported(s, ids, 2), 2);
	assert_int_equal(qkd_store_quarantine_unreported(s, ids, 0, &ns, NULL), QKD_OK);
	ack[0] = 12;
	ack[1] = 13;	/* not quarantined: ignored */
	ack[2] = 12;
	assert_int_equal(qkd_store_quarantine_reported(s, ack, 3, &why), QKD_OK);
	assert_int_equal(unreported(s, ids, 8), 2);
	assert_int_equal(ids[0], 11);
	assert_int_equal(ids[1], 14);
	assert_int_equal(lookup_ok(s, 13).state, QKD_STORE_FINAL);
	/* the peer reports one of ours too: it counts as reported */
	assert_int_equal(qkd_store_quarantine(s, 14, NULL), QKD_OK);
	assert_int_equal(unreported(s, ids, 8), 1);
	assert_int_equal(qkd_store_quarantine_reported(s, NULL, 0, NULL), QKD_OK);
	assert_int_equal(qkd_store_quarantine_reported(s, NULL, 1, NULL), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_take(s, 8, out, sizeof(out), seg, 1, &ns, NULL), QKD_OK);
	assert_int_equal(seg[0].id, 10);
	check_ok(s);
	qkd_store_close(s);
}

/* ---- the walks ---- */

struct faults {
	struct qkd_store_fault f[8];
	size_t n;
};

static int on_fault(const struct qkd_store_fault *flt, void *ctx)
{
	struct faults *c = ctx;

	if (c->n < 8)
		c->f[c->n] = *flt;
	c->n++;
	return 0;
}

static int stop_fault(const struct qkd_store_fault *flt, void *ctx)
{
	(void)flt;
	(void)ctx;
	return 42;
}

/* qkd_store_verify reads everything and changes nothing; verify_all
 * quarantines what fails. */
static void test_verify_walks(void **state)
{
	struct fix *f = *state;
	struct qkd_store *s = open_ok(f->path);
	uint8_t b[1500];
	struct qkd_store_verify_stats vs;
	struct faults c = { .n = 0 };
	uint64_t n = 0;
	const char *why = NULL;

	fill_bytes(b, sizeof(b), 71);
	for (uint64_t id = 1; id <= 4; id++) {
		b[0] = (uint8_t)id;
		put_final(s, id, b, 8 * sizeof(b));
	}
	assert_int_equal(qkd_store_put_pending(s, 6, b, 8 * sizeof(b), NULL), QKD_OK);
	assert_int_equal(qkd_store_quarantine(s, 5, NULL), QKD_OK);
	qkd_store_close(s);
	raw_sql(f->path, "UPDATE qbits SET bits = CAST(substr(bits, 1, 1024) || x'00' ||"
		 " substr(bits, 1026) AS BLOB) WHERE id IN (2, 6)");
	s = open_ok(f->path);
	assert_int_equal(qkd_store_verify(s, on_fault, &c, &vs, &why), QKD_OK);
	assert_null(why);
	assert_int_equal(vs.blocks, 5);
	assert_int_equal(vs.chunks, 15);
	assert_int_equal(vs.bad_blocks, 2);
	assert_int_equal(vs.quarantined_blocks, 1);
	assert_int_equal(c.n, 2);
	assert_false(c.f[0].is_key);
	assert_int_equal(c.f[0].id, 2);
	assert_int_equal(c.f[0].chunk, 2);
	assert_int_equal(c.f[0].nchunks, 3);
	assert_int_equal(c.f[1].id, 6);
	assert_int_equal(lookup_ok(s, 2).state, QKD_STORE_FINAL);	/* read-only */
	assert_int_equal(qkd_store_verify(s, stop_fault, NULL, NULL, NULL), 42);

	assert_int_equal(qkd_store_verify_all(s, &n, &why), QKD_OK);
	assert_null(why);
	assert_int_equal(n, 2);
	assert_int_equal(lookup_ok(s, 2).state, QKD_STORE_QUARANTINED);
	assert_int_equal(lookup_ok(s, 6).state, QKD_STORE_QUARANTINED);
	assert_int_equal(lookup_ok(s, 1).state, QKD_STORE_FINAL);
	c.n = 0;
	assert_int_equal(qkd_store_verify(s, on_fault, &c, &vs, NULL), QKD_OK);
	assert_int_equal(c.n, 0);
	assert_int_equal(vs.blocks, 3);
	assert_int_equal(vs.quarantined_blocks, 3);
	check_ok(s);
	assert_int_equal(qkd_store_verify(NULL, NULL, NULL, NULL, &why), QKD_ERR_INVAL);
	qkd_store_close(s);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_digest_kat),
		T(test_digest_kat_key),
		T(test_bitrot_take),
		T(test_bitrot_take_at),
		T(test_bitrot_get),
		T(test_swapped_chunks),
		T(test_digests_follow_consumption),
		T(test_quarantine_api),
		T(test_unreported),
		T(test_verify_walks),
	};
#undef T

	return cmocka_run_group_tests_name("keystore_digest", tests, NULL, NULL);
}
