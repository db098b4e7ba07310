/* test_pa.c - privacy amplification by Toeplitz hashing (DESIGN.md 4).
 *
 * qkd_pa_toeplitz (both of its algorithms, on the widest kernel and on the
 * portable one) against qkd_pa_toeplitz_ref, the O(n m) matrix definition;
 * known answers worked by hand and one computed with Python from the matrix
 * definition; the two algorithms against each other on large keys; edges
 * and errors. Under valgrind (QKD_VALGRIND=1) the sizes shrink.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qkd/bits.h"
#include "qkd/error.h"
#include "qkd/gf2poly.h"
#include "qkd/pa.h"

static uint64_t rng_state;

static uint64_t rnd(void)	/* splitmix64 */
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static bool under_valgrind(void)
{
	const char *v = getenv("QKD_VALGRIND");

	return v != NULL && strcmp(v, "1") == 0;
}

static void rnd_bits(struct qkd_bits *b, size_t n)
{
	assert_int_equal(qkd_bits_init(b, n), 0);
	for (size_t i = 0; i < qkd_bits_words(n); i++)
		b->w[i] = rnd();
	qkd_bits_trim(b);
}

static void bits_from_u64(struct qkd_bits *b, size_t n, uint64_t v)
{
	assert_int_equal(qkd_bits_init(b, n), 0);
	for (size_t i = 0; i < n; i++)
		qkd_bits_set(b, i, (unsigned)(v >> i) & 1);
}

/* Fast (method 0 = automatic, 1 = middle products, 2 = FFT) == reference. */
static void check_nm(size_t n, size_t m, int method)
{
	struct qkd_bits in, seed, out, ref;
	size_t ns;

	assert_int_equal(qkd_pa_seed_bits(n, m, &ns), 0);
	rnd_bits(&in, n);
	rnd_bits(&seed, ns);
	qkd_pa_force_method(method);
	assert_int_equal(qkd_pa_toeplitz(&out, m, &in, &seed), 0);
	qkd_pa_force_method(0);
	assert_int_equal(qkd_pa_toeplitz_ref(&ref, m, &in, &seed), 0);
	assert_int_equal(out.n, m);
	if (!qkd_bits_equal(&out, &ref))
		fail_msg("toeplitz n=%zu m=%zu method %d (%s) differs from "
			 "the matrix definition", n, m, method,
			 qkd_gf2poly_kernel());
	if (m & 63)	/* the qkd_bits invariant holds */
		assert_true((out.w[m / 64] >> (m & 63)) == 0);
	qkd_bits_cleanup(&in), qkd_bits_cleanup(&seed);
	qkd_bits_cleanup(&out), qkd_bits_cleanup(&ref);
}

static void test_seed_bits(void **state)
{
	size_t s = 1234;

	(void)state;
	assert_int_equal(qkd_pa_seed_bits(0, 0, &s), 0);
	assert_int_equal(s, 0);
	assert_int_equal(qkd_pa_seed_bits(10, 0, &s), 0);
	assert_int_equal(s, 9);
	assert_int_equal(qkd_pa_seed_bits(10, 10, &s), 0);
	assert_int_equal(s, 19);
	assert_int_equal(qkd_pa_seed_bits(10, 11, &s), QKD_ERR_INVAL);
	assert_int_equal(qkd_pa_seed_bits(SIZE_MAX, 1, &s), 0);
	assert_true(s == SIZE_MAX);
	assert_int_equal(qkd_pa_seed_bits(SIZE_MAX, 2, &s), QKD_ERR_RANGE);
}

static void test_known_answers(void **state)
{
	/* fixed inputs (splitmix64 seed 5): n = 200, m = 100; output from the
	 * matrix definition evaluated with Python integers */
	static const uint64_t want[2] = {0x92cfb4c0691eda01u, 0x0000000c1811fb2cu};
	struct qkd_bits in, seed, out;

	(void)state;
	/* n = 3, m = 2, seed s0..s3 = 1,1,0,1, in = 1,0,1:
	 * out0 = s2 in0 + s1 in1 + s0 in2 = 1, out1 = s3 in0 + s2 in1 + s1 in2 = 0 */
	bits_from_u64(&seed, 4, 0xb);
	bits_from_u64(&in, 3, 0x5);
	for (int method = 1; method <= 2; method++) {
		qkd_pa_force_method(method);
		assert_int_equal(qkd_pa_toeplitz(&out, 2, &in, &seed), 0);
		assert_int_equal(out.n, 2);
		assert_true(out.w[0] == 1);
		qkd_bits_cleanup(&out);
	}
	qkd_pa_force_method(0);
	assert_int_equal(qkd_pa_toeplitz_ref(&out, 2, &in, &seed), 0);
	assert_true(out.w[0] == 1);
	qkd_bits_cleanup(&out), qkd_bits_cleanup(&in), qkd_bits_cleanup(&seed);

	rng_state = 5;
	assert_int_equal(qkd_bits_init(&in, 200), 0);
	assert_int_equal(qkd_bits_init(&seed, 299), 0);
	for (size_t i = 0; i < 4; i++)
		in.w[i] = rnd();
	for (size_t i = 0; i < 5; i++)
		seed.w[i] = rnd();
	qkd_bits_trim(&in), qkd_bits_trim(&seed);
	for (int method = 1; method <= 2; method++) {
		qkd_pa_force_method(method);
		assert_int_equal(qkd_pa_toeplitz(&out, 100, &in, &seed), 0);
		assert_memory_equal(out.w, want, sizeof want);
		qkd_bits_cleanup(&out);
	}
	qkd_pa_force_method(0);
	qkd_bits_cleanup(&in), qkd_bits_cleanup(&seed);
}

/* Seed bit n-1+k alone: T is the k-th subdiagonal, out_i = in_(i-k); k = 0
 * and m = n gives the identity. */
static void test_shift_matrices(void **state)
{
	static const size_t ns[] = {1, 63, 64, 65, 1000, 5000};

	(void)state;
	rng_state = 21;
	for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
		size_t n = ns[t];

		for (size_t k = 0; k < n; k += 1 + n / 5) {
			struct qkd_bits in, seed, out;

			rnd_bits(&in, n);
			assert_int_equal(qkd_bits_init(&seed, 2 * n - 1), 0);
			qkd_bits_set(&seed, n - 1 + k, 1);
			assert_int_equal(qkd_pa_toeplitz(&out, n, &in, &seed), 0);
			for (size_t i = 0; i < n; i++)
				assert_int_equal(qkd_bits_get(&out, i),
						 i >= k ? qkd_bits_get(&in, i - k) : 0);
			qkd_bits_cleanup(&in), qkd_bits_cleanup(&seed);
			qkd_bits_cleanup(&out);
		}
	}
}

static void test_random_sizes(void **state)
{
	size_t top = under_valgrind() ? 100 : 300;

	(void)state;
	rng_state = 22;
	for (size_t n = 1; n <= top; n++) {
		for (int method = 1; method <= 2; method++) {
			check_nm(n, 1, method);
			check_nm(n, n, method);
			check_nm(n, (n + 1) / 2, method);
			check_nm(n, 1 + rnd() % n, method);
		}
	}
}

/* Sizes around word, block and algorithm boundaries, automatic choice. */
static void test_boundary_sizes(void **state)
{
	static const size_t ns[] = {63, 64, 65, 127, 128, 129, 2047, 2048, 2049,
				    4095, 4097, 8191, 8193, 32767, 32769,
				    65536, 65599, 1572863, 1572864, 1572865};
	size_t cnt = sizeof ns / sizeof ns[0];

	(void)state;
	rng_state = 23;
	if (under_valgrind())
		cnt = 9;
	for (size_t t = 0; t < cnt; t++) {
		size_t n = ns[t];
		size_t ms[4] = {1, 63, n / 2 + 1, n};

		for (size_t j = 0; j < 4; j++) {
			if (ms[j] > n || (double)n * (double)ms[j] > 6e7)
				continue;
			check_nm(n, ms[j], 0);
			if (n <= 8193) {
				check_nm(n, ms[j], 1);
				check_nm(n, ms[j], 2);
			}
		}
	}
}

/* The portable kernels through both algorithms. */
static void test_portable_path(void **state)
{
	(void)state;
	rng_state = 24;
	qkd_gf2poly_force_portable(true);
	for (size_t n = 1; n <= 2000; n += 1 + n / 3)
		for (int method = 1; method <= 2; method++) {
			check_nm(n, (n + 1) / 2, method);
			check_nm(n, n, method);
		}
	qkd_gf2poly_force_portable(false);
}

/* Large keys: middle products and FFT agree (no shared code above the
 * kernels), hash is linear in the key. */
static void test_large(void **state)
{
	size_t n = under_valgrind() ? 20011 : 1000003, m = n / 2 + 7, ns;
	struct qkd_bits in, in2, seed, o1, o2, o3;

	(void)state;
	rng_state = 25;
	assert_int_equal(qkd_pa_seed_bits(n, m, &ns), 0);
	rnd_bits(&in, n), rnd_bits(&in2, n), rnd_bits(&seed, ns);
	qkd_pa_force_method(1);
	assert_int_equal(qkd_pa_toeplitz(&o1, m, &in, &seed), 0);
	qkd_pa_force_method(2);
	assert_int_equal(qkd_pa_toeplitz(&o2, m, &in, &seed), 0);
	qkd_pa_force_method(0);
	assert_true(qkd_bits_equal(&o1, &o2));
	qkd_bits_cleanup(&o2);
	/* T(in ^ in2) = T(in) ^ T(in2) */
	assert_int_equal(qkd_pa_toeplitz(&o2, m, &in2, &seed), 0);
	for (size_t i = 0; i < qkd_bits_words(n); i++)
		in2.w[i] ^= in.w[i];
	assert_int_equal(qkd_pa_toeplitz(&o3, m, &in2, &seed), 0);
	for (size_t i = 0; i < qkd_bits_words(m); i++)
		o3.w[i] ^= o1.w[i] ^ o2.w[i];
	assert_int_equal(qkd_bits_weight(&o3), 0);
	qkd_bits_cleanup(&in), qkd_bits_cleanup(&in2), qkd_bits_cleanup(&seed);
	qkd_bits_cleanup(&o1), qkd_bits_cleanup(&o2), qkd_bits_cleanup(&o3);
}

static void test_edges_and_errors(void **state)
{
	struct qkd_bits in, seed, out = {(uint64_t *)1, 77}, empty = {NULL, 0};

	(void)state;
	rng_state = 26;
	/* n = 0, m = 0: empty seed, empty output */
	assert_int_equal(qkd_pa_toeplitz(&out, 0, &empty, &empty), 0);
	assert_int_equal(out.n, 0);
	qkd_bits_cleanup(&out);
	/* m = 0 with n > 0: seed n - 1 bits */
	rnd_bits(&in, 100);
	rnd_bits(&seed, 99);
	assert_int_equal(qkd_pa_toeplitz(&out, 0, &in, &seed), 0);
	assert_int_equal(out.n, 0);
	qkd_bits_cleanup(&out);
	/* wrong seed length, m > n, NULLs: INVAL and out left empty */
	out.w = (uint64_t *)1, out.n = 5;
	assert_int_equal(qkd_pa_toeplitz(&out, 2, &in, &seed), QKD_ERR_INVAL);
	assert_null(out.w);
	assert_int_equal(out.n, 0);
	assert_int_equal(qkd_pa_toeplitz(&out, 101, &in, &seed), QKD_ERR_INVAL);
	assert_int_equal(qkd_pa_toeplitz(&out, 1, NULL, &seed), QKD_ERR_INVAL);
	assert_int_equal(qkd_pa_toeplitz(&out, 1, &in, NULL), QKD_ERR_INVAL);
	assert_int_equal(qkd_pa_toeplitz(NULL, 1, &in, &seed), QKD_ERR_INVAL);
	assert_int_equal(qkd_pa_toeplitz_ref(&out, 101, &in, &seed),
			 QKD_ERR_INVAL);
	assert_int_equal(qkd_pa_toeplitz(&out, 1, &empty, &empty),
			 QKD_ERR_INVAL);
	qkd_bits_cleanup(&in), qkd_bits_cleanup(&seed);
}

static void test_bench(void **state)
{
	double s = -1;
	size_t peak = 0;

	(void)state;
	assert_int_equal(qkd_pa_bench(1 << 16, &s, &peak), 0);
	assert_true(s > 0 && s < 10);
	assert_true(peak > (1 << 16) / 8 && peak < 16 * (1 << 16));
	assert_int_equal(qkd_pa_bench(1, &s, &peak), QKD_ERR_INVAL);
	assert_int_equal(qkd_pa_toeplitz_scratch_bytes(100, 0), 0);
	assert_true(qkd_pa_toeplitz_scratch_bytes(100, 50) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_bits),
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_shift_matrices),
		cmocka_unit_test(test_edges_and_errors),
		cmocka_unit_test(test_random_sizes),
		cmocka_unit_test(test_boundary_sizes),
		cmocka_unit_test(test_portable_path),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_bench),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
