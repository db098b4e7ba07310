/* Unit tests of sifting (lib/proto/sift.c) and error verification
 * (lib/proto/verify.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/rng.h"
#include "qkd/sift.h"
#include "qkd/verify.h"

static void test_report_roundtrip(void **state)
{
	const uint64_t slots[] = {1000, 1001, 1005, 2047};
	struct qkd_bits basis;
	struct qkd_sift_report r;
	struct qkd_wbuf w;
	struct qkd_rbuf rb;

	(void)state;
	assert_int_equal(qkd_bits_init(&basis, 4), QKD_OK);
	qkd_bits_set(&basis, 1, 1);
	qkd_bits_set(&basis, 3, 1);
	qkd_wbuf_init(&w);
	qkd_sift_report_write(&w, 1000, 1048, slots, &basis);
	/* first=1000 (e8 07), slots=1048 (98 08), n=4, u16 gaps 0,0,3,1041, bits. */
	assert_int_equal(w.len, 2 + 2 + 1 + 8 + 2);
	assert_memory_equal(w.p, "\xe8\x07\x98\x08\x04\x00\x00\x00\x00\x00\x03\x04\x11"
			    "\x04\x0a", 15);
	qkd_rbuf_init(&rb, w.p, w.len);
	assert_int_equal(qkd_sift_report_read(&rb, &r, 100), QKD_OK);
	assert_true(qkd_rbuf_done(&rb));
	assert_int_equal(r.n, 4);
	assert_memory_equal(r.slot, slots, sizeof slots);
	assert_true(qkd_bits_equal(&r.basis, &basis));
	qkd_sift_report_cleanup(&r);
	/* A bound on detections below n is refused. */
	qkd_rbuf_init(&rb, w.p, w.len);
	assert_int_not_equal(qkd_sift_report_read(&rb, &r, 3), QKD_OK);
	assert_null(r.slot);
	qkd_bits_cleanup(&basis);
	qkd_wbuf_cleanup(&w);
}

/* Gaps of 0xffff and more take the escape; all widths round-trip. */
static void test_report_long_gaps(void **state)
{
	const uint64_t slots[] = {0xfffe, 0xfffe + 1 + 0xffff, 0xfffe + 1 + 0xffff + 1 + 0x123456789ull};
	struct qkd_bits basis;
	struct qkd_sift_report r;
	struct qkd_wbuf w;
	struct qkd_rbuf rb;

	(void)state;
	assert_int_equal(qkd_bits_init(&basis, 3), QKD_OK);
	qkd_wbuf_init(&w);
	qkd_sift_report_write(&w, 0, 1ull << 40, slots, &basis);
	qkd_rbuf_init(&rb, w.p, w.len);
	assert_int_equal(qkd_sift_report_read(&rb, &r, 100), QKD_OK);
	assert_true(qkd_rbuf_done(&rb));
	assert_int_equal(r.n, 3);
	assert_memory_equal(r.slot, slots, sizeof slots);
	qkd_sift_report_cleanup(&r);
	qkd_bits_cleanup(&basis);
	qkd_wbuf_cleanup(&w);
}

static void expect_bad(const char *msg, size_t len)
{
	struct qkd_sift_report r;
	struct qkd_rbuf rb;

	qkd_rbuf_init(&rb, msg, len);
	assert_int_not_equal(qkd_sift_report_read(&rb, &r, 1u << 20), QKD_OK);
	assert_null(r.slot);
	assert_null(r.basis.w);
}

static void test_report_hostile(void **state)
{
	(void)state;
	/* slot outside the chunk: first 0, 4 slots, 1 detection at gap 4 */
	expect_bad("\x00\x04\x01\x00\x04\x01\x01", 7);
	/* an escaped gap that is out of the chunk, and one cut short */
	expect_bad("\x00\x04\x01\xff\xff\x80\x80\x04\x01\x01", 10);
	expect_bad("\x00\x80\x80\x04\x01\xff\xff\x80", 8);
	/* more detections than slots */
	expect_bad("\x00\x02\x03\x00\x00\x00\x03\x07", 8);
	/* truncated basis bits */
	expect_bad("\x00\x10\x02\x00\x00\x00\x00\x02", 8);
	/* n larger than the message could hold */
	expect_bad("\x00\xff\xff\x03\xff\xff\x03", 7);
	/* chunk range overflowing 64 bits */
	expect_bad("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x02\x00", 12);
	expect_bad("", 0);
}

static void test_decide_append(void **state)
{
	const uint64_t slots[] = {1, 2, 3, 4, 5};
	struct qkd_bits bb, ab, av, keep, vals, pool;
	struct qkd_sift_report r;
	size_t used = 0;

	(void)state;
	assert_int_equal(qkd_bits_init(&bb, 5), QKD_OK);
	assert_int_equal(qkd_bits_init(&ab, 5), QKD_OK);
	assert_int_equal(qkd_bits_init(&av, 5), QKD_OK);
	assert_int_equal(qkd_bits_init(&keep, 5), QKD_OK);
	assert_int_equal(qkd_bits_init(&vals, 5), QKD_OK);
	assert_int_equal(qkd_bits_init(&pool, 0), QKD_OK);
	/* Bob's bases 0 1 0 1 1, Alice's 0 1 1 1 1, Alice valid except #3. */
	qkd_bits_set(&bb, 1, 1); qkd_bits_set(&bb, 3, 1); qkd_bits_set(&bb, 4, 1);
	qkd_bits_set(&ab, 1, 1); qkd_bits_set(&ab, 2, 1); qkd_bits_set(&ab, 3, 1);
	qkd_bits_set(&ab, 4, 1);
	for (int i = 0; i < 5; i++)
		qkd_bits_set(&av, (size_t)i, i != 3);
	r.n = 5;
	r.slot = (uint64_t *)slots;
	r.basis = bb;
	qkd_sift_decide(&r, &ab, &av, &keep);
	assert_int_equal(keep.w[0], 0x13);	/* detections 0, 1, 4 */
	qkd_bits_set(&vals, 1, 1);
	qkd_bits_set(&vals, 2, 1);
	qkd_bits_set(&vals, 4, 1);
	for (int rep = 0; rep < 3000; rep++)
		assert_int_equal(qkd_sift_append(&pool, &used, &vals, &keep), QKD_OK);
	assert_int_equal(used, 9000);
	for (size_t i = 0; i < used; i++)
		assert_int_equal(qkd_bits_get(&pool, i), (i % 3) != 0);
	qkd_bits_cleanup(&bb); qkd_bits_cleanup(&ab); qkd_bits_cleanup(&av);
	qkd_bits_cleanup(&keep); qkd_bits_cleanup(&vals); qkd_bits_cleanup(&pool);
}

/* Known answers computed with an independent bit-serial Python model. */
static void test_gf64_kat(void **state)
{
	(void)state;
	assert_true(qkd_gf64_mul((uint64_t)1 << 63, 2) == 0x1b);
	assert_true(qkd_gf64_mul((uint64_t)1 << 63, (uint64_t)1 << 63) == 0xc00000000000005aull);
	assert_true(qkd_gf64_mul(0x0123456789abcdefull, 0xfedcba9876543210ull) ==
		    0x48827ab55d976fa0ull);
	assert_true(qkd_gf64_mul(0xdeadbeefcafebabeull, 1) == 0xdeadbeefcafebabeull);
	assert_true(qkd_gf64_mul(0, 0x1234) == 0);
}

static void test_gf64_paths_agree(void **state)
{
	struct qkd_rng g;

	(void)state;
	qkd_rng_init_seed(&g, 5, "gf64");
	assert_true(qkd_gf64_mul_portable(0x0123456789abcdefull, 0xfedcba9876543210ull) ==
		    0x48827ab55d976fa0ull);
	for (int i = 0; i < 10000; i++) {
		uint64_t a = qkd_rng_u64(&g), b = qkd_rng_u64(&g);

		assert_true(qkd_gf64_mul(a, b) == qkd_gf64_mul_portable(a, b));
		assert_true(qkd_gf64_mul(a, b) == qkd_gf64_mul(b, a));
	}
	qkd_rng_cleanup(&g);
}

static void test_tag(void **state)
{
	struct qkd_bits b, c;
	struct qkd_rng g;
	uint64_t key = 0x9e3779b97f4a7c15ull;

	(void)state;
	assert_int_equal(qkd_bits_init(&b, 70), QKD_OK);
	b.w[0] = 0x0123456789abcdefull;
	b.w[1] = 0x5;
	assert_true(qkd_verify_tag(&b, key) == 0xc5e0513c0d402a4eull);
	/* Any single flipped bit changes the tag (degree <= L+1 polynomial). */
	qkd_rng_init_seed(&g, 11, "tag");
	for (size_t i = 0; i < 70; i++) {
		assert_int_equal(qkd_bits_copy(&c, &b), QKD_OK);
		qkd_bits_flip(&c, i);
		assert_true(qkd_verify_tag(&c, key) != qkd_verify_tag(&b, key));
		qkd_bits_cleanup(&c);
	}
	/* The length is part of the tag: a zero bit appended changes it. */
	assert_int_equal(qkd_bits_copy(&c, &b), QKD_OK);
	assert_int_equal(qkd_bits_resize(&c, 71), QKD_OK);
	assert_true(qkd_verify_tag(&c, key) != qkd_verify_tag(&b, key));
	qkd_bits_cleanup(&c);
	qkd_bits_cleanup(&b);
	qkd_rng_cleanup(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_roundtrip),
		cmocka_unit_test(test_report_long_gaps),
		cmocka_unit_test(test_report_hostile),
		cmocka_unit_test(test_decide_append),
		cmocka_unit_test(test_gf64_kat),
		cmocka_unit_test(test_gf64_paths_agree),
		cmocka_unit_test(test_tag),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
