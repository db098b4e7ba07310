/* Unit tests of lib/core: bits, wire reader/writer, secrets, RNG, channel. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qkd/bits.h"
#include "qkd/channel.h"
#include "qkd/error.h"
#include "qkd/msg.h"
#include "qkd/rng.h"
#include "qkd/secret.h"
#include "qkd/wire.h"

static void test_bits_basic(void **state)
{
	struct qkd_bits b, c;

	(void)state;
	assert_int_equal(qkd_bits_init(&b, 130), QKD_OK);
	assert_int_equal(qkd_bits_weight(&b), 0);
	qkd_bits_set(&b, 0, 1);
	qkd_bits_set(&b, 64, 1);
	qkd_bits_set(&b, 129, 1);
	qkd_bits_flip(&b, 5);
	assert_int_equal(qkd_bits_weight(&b), 4);
	assert_int_equal(qkd_bits_get(&b, 129), 1);
	assert_int_equal(qkd_bits_parity(&b, 0, 130), 0);
	assert_int_equal(qkd_bits_parity(&b, 1, 130), 1);
	assert_int_equal(qkd_bits_parity(&b, 5, 6), 1);
	assert_int_equal(qkd_bits_parity(&b, 6, 64), 0);
	assert_int_equal(qkd_bits_parity(&b, 6, 65), 1);
	assert_int_equal(qkd_bits_parity(&b, 7, 7), 0);
	assert_int_equal(qkd_bits_copy(&c, &b), QKD_OK);
	assert_true(qkd_bits_equal(&b, &c));
	qkd_bits_flip(&c, 77);
	assert_false(qkd_bits_equal(&b, &c));
	assert_int_equal(qkd_bits_distance(&b, &c), 1);
	/* Shrinking wipes the dropped bits: the invariant holds. */
	assert_int_equal(qkd_bits_resize(&c, 65), QKD_OK);
	assert_int_equal(c.w[1], 1);
	assert_int_equal(qkd_bits_resize(&c, 200), QKD_OK);
	assert_int_equal(qkd_bits_weight(&c), 3);
	qkd_bits_cleanup(&b);
	qkd_bits_cleanup(&c);
	qkd_bits_cleanup(&c);	/* twice is harmless */
}

/* Parity of every range against a bit-by-bit count. */
static void test_bits_parity_ranges(void **state)
{
	struct qkd_bits b;
	struct qkd_rng g;

	(void)state;
	qkd_rng_init_seed(&g, 7, "test");
	assert_int_equal(qkd_bits_init(&b, 300), QKD_OK);
	for (size_t i = 0; i < 300; i++)
		qkd_bits_set(&b, i, (unsigned)qkd_rng_below(&g, 2));
	for (size_t s = 0; s <= 300; s += 7)
		for (size_t e = s; e <= 300; e += 5) {
			unsigned p = 0;

			for (size_t i = s; i < e; i++)
				p ^= qkd_bits_get(&b, i);
			assert_int_equal(qkd_bits_parity(&b, s, e), p);
		}
	qkd_bits_cleanup(&b);
	qkd_rng_cleanup(&g);
}

static void test_bits_copy_range(void **state)
{
	struct qkd_bits src, dst;
	struct qkd_rng g;

	(void)state;
	qkd_rng_init_seed(&g, 8, "test");
	assert_int_equal(qkd_bits_init(&src, 777), QKD_OK);
	for (size_t i = 0; i < 777; i++)
		qkd_bits_set(&src, i, (unsigned)qkd_rng_below(&g, 2));
	for (int t = 0; t < 500; t++) {
		size_t n = (size_t)qkd_rng_below(&g, 400);
		size_t sp = (size_t)qkd_rng_below(&g, 777 - n + 1);
		size_t dp = (size_t)qkd_rng_below(&g, 500 - n + 1);

		assert_int_equal(qkd_bits_init(&dst, 500), QKD_OK);
		for (size_t i = 0; i < 500; i++)
			qkd_bits_set(&dst, i, (unsigned)(i % 3 == 0));
		qkd_bits_copy_range(&dst, dp, &src, sp, n);
		for (size_t i = 0; i < 500; i++) {
			unsigned want = (i >= dp && i < dp + n) ? qkd_bits_get(&src, sp + i - dp)
								: (unsigned)(i % 3 == 0);
			assert_int_equal(qkd_bits_get(&dst, i), want);
		}
		qkd_bits_cleanup(&dst);
	}
	qkd_bits_cleanup(&src);
	qkd_rng_cleanup(&g);
}

/* Moving bits towards the start of the same string (how sampled bits are
 * removed from the sifted pool). */
static void test_bits_move_down(void **state)
{
	struct qkd_bits b, ref;
	struct qkd_rng g;

	(void)state;
	qkd_rng_init_seed(&g, 9, "test");
	for (int t = 0; t < 300; t++) {
		size_t n = 1 + (size_t)qkd_rng_below(&g, 600);
		size_t sp = (size_t)qkd_rng_below(&g, n);
		size_t dp = (size_t)qkd_rng_below(&g, sp + 1);
		size_t len = (size_t)qkd_rng_below(&g, n - sp + 1);

		assert_int_equal(qkd_bits_init(&b, n), QKD_OK);
		qkd_rng_bytes(&g, b.w, qkd_bits_words(n) * 8);
		qkd_bits_trim(&b);
		assert_int_equal(qkd_bits_copy(&ref, &b), QKD_OK);
		qkd_bits_copy_range(&b, dp, &b, sp, len);
		for (size_t i = 0; i < n; i++) {
			unsigned want = (i >= dp && i < dp + len) ? qkd_bits_get(&ref, sp + i - dp)
								  : qkd_bits_get(&ref, i);
			assert_int_equal(qkd_bits_get(&b, i), want);
		}
		qkd_bits_cleanup(&b);
		qkd_bits_cleanup(&ref);
	}
	qkd_rng_cleanup(&g);
}

static void test_bits_bytes(void **state)
{
	const uint8_t in[3] = {0x01, 0x80, 0xff};
	uint8_t out[3];
	struct qkd_bits b;

	(void)state;
	assert_int_equal(qkd_bits_init(&b, 20), QKD_OK);
	qkd_bits_from_bytes(&b, in);
	assert_int_equal(qkd_bits_get(&b, 0), 1);
	assert_int_equal(qkd_bits_get(&b, 15), 1);
	assert_int_equal(qkd_bits_get(&b, 19), 1);
	assert_int_equal(qkd_bits_weight(&b), 6);	/* bits 20..23 are dropped */
	qkd_bits_to_bytes(&b, out);
	assert_int_equal(out[0], 0x01);
	assert_int_equal(out[1], 0x80);
	assert_int_equal(out[2], 0x0f);
	qkd_bits_cleanup(&b);
}

static void test_wire_roundtrip(void **state)
{
	struct qkd_wbuf w;
	struct qkd_rbuf r;
	struct qkd_bits b, b2;
	const uint64_t vals[] = {0, 1, 127, 128, 16383, 16384, UINT64_MAX};

	(void)state;
	qkd_wbuf_init(&w);
	qkd_put_u8(&w, 0xab);
	qkd_put_u16(&w, 0x1234);
	qkd_put_u32(&w, 0xdeadbeef);
	qkd_put_u64(&w, 0x0102030405060708ull);
	for (size_t i = 0; i < 7; i++)
		qkd_put_varint(&w, vals[i]);
	qkd_put_double(&w, 0.125);
	assert_int_equal(qkd_bits_init(&b, 11), QKD_OK);
	qkd_bits_set(&b, 10, 1);
	qkd_put_bits(&w, &b);
	assert_int_equal(w.err, 0);
	/* Known encoding of the fixed-width fields: big-endian. */
	assert_memory_equal(w.p, "\xab\x12\x34\xde\xad\xbe\xef\x01\x02\x03\x04\x05\x06\x07\x08", 15);
	assert_memory_equal(w.p + 15, "\x00\x01\x7f\x80\x01", 5);
	qkd_rbuf_init(&r, w.p, w.len);
	assert_int_equal(qkd_get_u8(&r), 0xab);
	assert_int_equal(qkd_get_u16(&r), 0x1234);
	assert_int_equal(qkd_get_u32(&r), 0xdeadbeef);
	assert_true(qkd_get_u64(&r) == 0x0102030405060708ull);
	for (size_t i = 0; i < 7; i++)
		assert_true(qkd_get_varint(&r) == vals[i]);
	assert_true(qkd_get_double(&r) == 0.125);
	assert_int_equal(qkd_get_bits(&r, &b2, 11), QKD_OK);
	assert_true(qkd_bits_equal(&b, &b2));
	assert_true(qkd_rbuf_done(&r));
	/* Reading past the end is a sticky error, never an overread. */
	assert_int_equal(qkd_get_u32(&r), 0);
	assert_false(qkd_rbuf_ok(&r));
	assert_false(qkd_rbuf_done(&r));
	qkd_bits_cleanup(&b);
	qkd_bits_cleanup(&b2);
	qkd_wbuf_cleanup(&w);
}

static void test_wire_hostile(void **state)
{
	struct qkd_rbuf r;
	struct qkd_bits b;

	(void)state;
	/* An 11-byte varint, and one whose tenth byte overflows 64 bits. */
	qkd_rbuf_init(&r, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
	assert_true(qkd_get_varint(&r) == 0);
	assert_int_equal(r.err, QKD_ERR_PROTO);
	qkd_rbuf_init(&r, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10);
	qkd_get_varint(&r);
	assert_int_equal(r.err, QKD_ERR_PROTO);
	/* A count above its bound. */
	qkd_rbuf_init(&r, "\x90\x01", 2);
	assert_true(qkd_get_count(&r, 100) == 0);
	assert_int_equal(r.err, QKD_ERR_RANGE);
	/* A bit string longer than allowed, and one longer than the message. */
	qkd_rbuf_init(&r, "\x10\xff\xff", 3);
	assert_int_not_equal(qkd_get_bits(&r, &b, 8), QKD_OK);
	assert_null(b.w);
	qkd_rbuf_init(&r, "\x40\xff\xff", 3);
	assert_int_not_equal(qkd_get_bits(&r, &b, 1000), QKD_OK);
	assert_null(b.w);
	/* Borrowing more bytes than are left. */
	qkd_rbuf_init(&r, "abc", 3);
	assert_null(qkd_get_bytes(&r, 4));
	assert_false(qkd_rbuf_ok(&r));
}

static void test_secret(void **state)
{
	uint8_t a[32], b[32];

	(void)state;
	memset(a, 0x5a, sizeof a);
	memcpy(b, a, sizeof b);
	assert_true(qkd_ct_equal(a, b, sizeof a));
	b[31] ^= 1;
	assert_false(qkd_ct_equal(a, b, sizeof a));
	assert_true(qkd_ct_equal(a, b, 0));
	qkd_wipe(a, sizeof a);
	for (size_t i = 0; i < sizeof a; i++)
		assert_int_equal(a[i], 0);
	qkd_free_secret(NULL, 10);
}

/* Known answer: the ChaCha20 keystream of the all-zero key and nonce. */
static void test_rng_kat(void **state)
{
	static const uint8_t want[16] = {0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90,
					 0x40, 0x5d, 0x6a, 0xe5, 0x53, 0x86, 0xbd, 0x28};
	uint8_t key[32] = {0}, got[16];
	struct qkd_rng g, h;

	(void)state;
	qkd_rng_init(&g, key);
	qkd_rng_bytes(&g, got, sizeof got);
	assert_memory_equal(got, want, sizeof want);
	/* Streams from one seed with different labels differ; same label repeats. */
	qkd_rng_init_seed(&g, 1, "alice");
	qkd_rng_init_seed(&h, 1, "alice");
	assert_true(qkd_rng_u64(&g) == qkd_rng_u64(&h));
	qkd_rng_init_seed(&h, 1, "bob");
	assert_true(qkd_rng_u64(&g) != qkd_rng_u64(&h));
	qkd_rng_cleanup(&g);
	qkd_rng_cleanup(&h);
}

static void test_rng_below(void **state)
{
	struct qkd_rng g;
	unsigned count[6] = {0};

	(void)state;
	qkd_rng_init_seed(&g, 3, "below");
	for (int i = 0; i < 60000; i++)
		count[qkd_rng_below(&g, 6)]++;
	/* Each bin 10000 +- 5 sd (sd = sqrt(60000 * 1/6 * 5/6) = 91). */
	for (int i = 0; i < 6; i++)
		assert_in_range(count[i], 10000 - 456, 10000 + 456);
	for (int i = 0; i < 1000; i++) {
		double d = qkd_rng_double(&g);

		assert_true(d >= 0 && d < 1);
	}
	qkd_rng_cleanup(&g);
}

static void test_channel(void **state)
{
	int sv[2];
	struct qkd_channel a, b;
	struct qkd_rbuf r;
	uint8_t type;
	static const uint8_t bad_version[] = {0, 0, 0, 6, 9, QKD_MSG_DONE, 0, 0, 0, 2};
	static const uint8_t bad_seq[] = {0, 0, 0, 6, QKD_CHANNEL_VERSION, QKD_MSG_DONE, 0, 0, 0, 7};
	static const uint8_t too_long[] = {0x7f, 0xff, 0xff, 0xff};

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	qkd_channel_init(&a, sv[0], NULL, NULL);
	qkd_channel_init(&b, sv[1], &qkd_auth_none, NULL);
	assert_int_equal(qkd_channel_send(&a, QKD_MSG_HELLO, (const uint8_t *)"hi", 2), QKD_OK);
	assert_int_equal(qkd_channel_send(&a, QKD_MSG_DONE, NULL, 0), QKD_OK);
	assert_int_equal(qkd_channel_recv(&b, &type, &r), QKD_OK);
	assert_int_equal(type, QKD_MSG_HELLO);
	assert_int_equal(qkd_rbuf_left(&r), 2);
	assert_memory_equal(r.p + r.off, "hi", 2);
	assert_int_equal(qkd_channel_expect(&b, QKD_MSG_HELLO, &r), QKD_ERR_PROTO);
	/* Version, sequence and length are checked before any payload is used. */
	assert_int_equal(write(sv[0], bad_version, sizeof bad_version), (ssize_t)sizeof bad_version);
	assert_int_equal(qkd_channel_recv(&b, &type, &r), QKD_ERR_PROTO);
	assert_int_equal(write(sv[0], bad_seq, sizeof bad_seq), (ssize_t)sizeof bad_seq);
	assert_int_equal(qkd_channel_recv(&b, &type, &r), QKD_ERR_PROTO);
	assert_int_equal(write(sv[0], too_long, sizeof too_long), (ssize_t)sizeof too_long);
	assert_int_equal(qkd_channel_recv(&b, &type, &r), QKD_ERR_PROTO);
	close(sv[0]);
	assert_int_equal(qkd_channel_recv(&b, &type, &r), QKD_ERR_EOF);
	qkd_channel_cleanup(&a);
	qkd_channel_cleanup(&b);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bits_basic),
		cmocka_unit_test(test_bits_parity_ranges),
		cmocka_unit_test(test_bits_copy_range),
		cmocka_unit_test(test_bits_move_down),
		cmocka_unit_test(test_bits_bytes),
		cmocka_unit_test(test_wire_roundtrip),
		cmocka_unit_test(test_wire_hostile),
		cmocka_unit_test(test_secret),
		cmocka_unit_test(test_rng_kat),
		cmocka_unit_test(test_rng_below),
		cmocka_unit_test(test_channel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
