/* test_gf2poly.c - long GF(2)[x] products (the engine of DESIGN.md 4).
 *
 * Every fast path (Karatsuba, transposed Karatsuba, additive FFT; each on
 * the widest kernel of this CPU and on the portable one) is checked against
 * qkd_gf2poly_mul_ref, a bit-serial schoolbook, and against known answers
 * computed independently (by hand, and with Python big integers for the
 * pasted constants). The large case is checked without the reference: by a
 * second algorithm (middle products) and by reduction modulo random degree-64
 * polynomials. Under valgrind (QKD_VALGRIND=1) the sizes shrink.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../lib/core/gf2poly_impl.h"
#include "qkd/error.h"
#include "qkd/gf2poly.h"

static uint64_t rng_state;

static uint64_t rnd(void)	/* splitmix64: reproducible test data */
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

static uint64_t *rnd_words(size_t n)
{
	uint64_t *p = malloc((n ? n : 1) * sizeof *p);

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = rnd();
	return p;
}

static uint64_t fold(const uint64_t *w, size_t n)
{
	uint64_t h = 0xcbf29ce484222325u;

	for (size_t i = 0; i < n; i++) {
		h ^= w[i];
		h *= 0x100000001b3u;
		h ^= h >> 29;
	}
	return h;
}

/* qkd_gf2poly_mul against the reference for one (na, nb). */
static void check_mul(size_t na, size_t nb)
{
	uint64_t *a = rnd_words(na), *b = rnd_words(nb);
	uint64_t *c = rnd_words(na + nb), *r = rnd_words(na + nb);

	assert_int_equal(qkd_gf2poly_mul(c, a, na, b, nb), 0);
	qkd_gf2poly_mul_ref(r, a, na, b, nb);
	if (na + nb > 0 && memcmp(c, r, (na + nb) * sizeof *c) != 0)
		fail_msg("mul %zu x %zu words differs from reference (%s)", na,
			 nb, qkd_gf2poly_kernel());
	free(a), free(b), free(c), free(r);
}

/* qkd_gf2poly_mulmid against the middle of a reference product. */
static void check_mulmid(size_t n)
{
	uint64_t *t = rnd_words(2 * n), *v = rnd_words(n);
	uint64_t *c = rnd_words(n), *r = rnd_words(3 * n);

	assert_int_equal(qkd_gf2poly_mulmid(c, t, v, n), 0);
	qkd_gf2poly_mul_ref(r, t, 2 * n, v, n);
	if (n > 0 && memcmp(c, r + n, n * sizeof *c) != 0)
		fail_msg("mulmid n = %zu differs from reference (%s)", n,
			 qkd_gf2poly_kernel());
	free(t), free(v), free(c), free(r);
}

static void test_known_answers(void **state)
{
	/* (x+1)^2 = x^2+1; x^63 * x^63 = x^126; (x^64+1)(x+1); (sum x^i)^2 */
	static const uint64_t one_x = 3, top = (uint64_t)1 << 63;
	static const uint64_t a3[2] = {1, 1};
	static const uint64_t ones = ~(uint64_t)0;
	/* fixed inputs (splitmix64 seed 1), product computed with Python ints */
	static const uint64_t ka[3] = {0x910a2dec89025cc1u, 0xbeeb8da1658eec67u,
				       0xf893a2eefb32555eu};
	static const uint64_t kb[2] = {0x71c18690ee42c90bu, 0x71bb54d8d101b5b9u};
	static const uint64_t kc[5] = {0xaa44e2b69d3c0a4bu, 0xea47a2ecbab5baa7u,
				       0xc88fd743fc649575u, 0x6d57ae094ab5433au,
				       0x2e2d18d9657748c5u};
	uint64_t c[5];

	(void)state;
	for (int port = 0; port < 2; port++) {
		qkd_gf2poly_force_portable(port);
		assert_int_equal(qkd_gf2poly_mul(c, &one_x, 1, &one_x, 1), 0);
		assert_true(c[0] == 5 && c[1] == 0);
		assert_int_equal(qkd_gf2poly_mul(c, &top, 1, &top, 1), 0);
		assert_true(c[0] == 0 && c[1] == (uint64_t)1 << 62);
		assert_int_equal(qkd_gf2poly_mul(c, a3, 2, &one_x, 1), 0);
		assert_true(c[0] == 3 && c[1] == 3 && c[2] == 0);
		assert_int_equal(qkd_gf2poly_mul(c, &ones, 1, &ones, 1), 0);
		assert_true(c[0] == 0x5555555555555555u &&
			    c[1] == 0x5555555555555555u);
		assert_int_equal(qkd_gf2poly_mul(c, ka, 3, kb, 2), 0);
		assert_memory_equal(c, kc, sizeof kc);
		assert_int_equal(qkd_gf2poly_mul(c, kb, 2, ka, 3), 0);
		assert_memory_equal(c, kc, sizeof kc);
	}
	qkd_gf2poly_force_portable(false);
	qkd_gf2poly_mul_ref(c, ka, 3, kb, 2);
	assert_memory_equal(c, kc, sizeof kc);
}

/* Larger fixed products, folded to one word (fold of the reference output,
 * pasted); the 3000-word one runs through the FFT. */
static void test_known_answer_folds(void **state)
{
	static const struct { uint64_t seed; size_t na, nb; uint64_t h; } v[] = {
		{3, 300, 200, 0x6668368131e1cfe0u},
		{4, 1500, 1500, 0x2cb00557abcecea7u},
		{6, 3000, 2500, 0xae14e0f13348ceb5u},
	};

	(void)state;
	for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
		uint64_t *a, *b, *c;

		rng_state = v[k].seed;
		a = rnd_words(v[k].na);
		b = rnd_words(v[k].nb);
		c = rnd_words(v[k].na + v[k].nb);
		for (int port = 0; port < 2; port++) {
			qkd_gf2poly_force_portable(port);
			assert_int_equal(qkd_gf2poly_mul(c, a, v[k].na, b,
							 v[k].nb), 0);
			assert_true(fold(c, v[k].na + v[k].nb) == v[k].h);
		}
		qkd_gf2poly_force_portable(false);
		free(a), free(b), free(c);
	}
}

static void test_mul_random_sizes(void **state)
{
	size_t top = under_valgrind() ? 90 : 300;

	(void)state;
	rng_state = 11;
	for (size_t na = 1; na <= top; na++) {
		check_mul(na, na);
		check_mul(na, 1 + rnd() % top);
		if (na <= 40)
			for (size_t nb = 1; nb <= 40; nb++)
				check_mul(na, nb);
	}
}

/* Both edges of every threshold: base case (32), Karatsuba split (64),
 * window kernels (8-word blocks), unbalanced cut (nb <= ceil(na/2)), FFT
 * (2048 words, and a power-of-two transform size: 2048 + 2048 words fill
 * 2^13 points exactly, 2048 + 2049 need 2^14). */
static void test_mul_thresholds(void **state)
{
	static const size_t e[] = {7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65,
				   127, 128, 129, 255, 256, 257};
	static const size_t f[][2] = {{2047, 2047}, {2048, 2048}, {2048, 2049},
				      {2049, 3000}, {5000, 2048}};
	size_t nf = under_valgrind() ? 0 : sizeof f / sizeof f[0];

	(void)state;
	rng_state = 12;
	for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
		for (size_t j = 0; j < sizeof e / sizeof e[0]; j++)
			check_mul(e[i], e[j]);
		check_mul(e[i], (e[i] + 1) / 2);
		check_mul(e[i], (e[i] + 1) / 2 + 1);
		check_mul(3 * e[i], e[i]);
	}
	for (size_t i = 0; i < nf; i++)
		check_mul(f[i][0], f[i][1]);
}

static void test_mulmid(void **state)
{
	static const size_t e[] = {63, 64, 65, 95, 96, 97, 127, 128, 129, 191,
				   255, 256, 257, 300, 511, 513};
	size_t top = under_valgrind() ? 70 : 200;

	(void)state;
	rng_state = 13;
	for (size_t n = 1; n <= top; n++)
		check_mulmid(n);
	for (size_t i = 0; !under_valgrind() && i < sizeof e / sizeof e[0]; i++)
		check_mulmid(e[i]);
}

/* The FFT with each kernel set this CPU runs, at small and boundary sizes,
 * including windows of the product (what privacy amplification uses). */
static void test_fft_direct(void **state)
{
	const struct gf2_ops *ops[3] = {&qkd_gf2_ops_portable, NULL, NULL};
	size_t nops = 1, top = under_valgrind() ? 40 : 130;

	(void)state;
	if (__builtin_cpu_supports("pclmul"))
		ops[nops++] = &qkd_gf2_ops_pclmul;
	if (qkd_gf2_ops_pick() == &qkd_gf2_ops_vpclmul)
		ops[nops++] = &qkd_gf2_ops_vpclmul;
	rng_state = 14;
	for (size_t o = 0; o < nops; o++) {
		for (size_t na = 1; na <= top; na += 1 + na / 8) {
			size_t nb = 1 + rnd() % top, lo = rnd() % (na + nb);
			size_t nc = 1 + rnd() % (na + nb - lo);
			uint64_t *a = rnd_words(na), *b = rnd_words(nb);
			uint64_t *c = rnd_words(na + nb), *r = rnd_words(na + nb);

			qkd_gf2poly_mul_ref(r, a, na, b, nb);
			assert_int_equal(qkd_gf2_fft_mul(ops[o], c, a, na, b, nb,
							 0, na + nb), 0);
			if (memcmp(c, r, (na + nb) * sizeof *c) != 0)
				fail_msg("fft %s %zu x %zu", ops[o]->name, na, nb);
			assert_int_equal(qkd_gf2_fft_mul(ops[o], c, a, na, b, nb,
							 lo, nc), 0);
			assert_memory_equal(c, r + lo, nc * sizeof *c);
			free(a), free(b), free(c), free(r);
		}
	}
}

/* p mod f for the monic f = x^64 + fl, bit-serial from the top. */
static uint64_t poly_mod(const uint64_t *p, size_t n, uint64_t fl)
{
	uint64_t r = 0;

	for (size_t i = 64 * n; i-- > 0;) {
		uint64_t carry = r >> 63;

		r = (r << 1) | ((p[i / 64] >> (i % 64)) & 1);
		if (carry)
			r ^= fl;
	}
	return r;
}

static uint64_t mulmod(uint64_t x, uint64_t y, uint64_t fl)
{
	uint64_t p[2];

	qkd_gf2poly_mul_ref(p, &x, 1, &y, 1);
	return poly_mod(p, 2, fl);
}

/* 2^16 x 2^16 words (2^22-bit operands): the FFT product equals the one
 * rebuilt from two transposed-Karatsuba middle products (no FFT), and
 * c = a b holds modulo three random monic degree-64 polynomials. */
static void test_large(void **state)
{
	size_t n = under_valgrind() ? 1 << 11 : 1 << 16;
	uint64_t *a, *b, *c, *d, *t;

	(void)state;
	rng_state = 15;
	a = rnd_words(n), b = rnd_words(n), c = rnd_words(2 * n);
	d = rnd_words(2 * n), t = calloc(2 * n, sizeof *t);
	assert_non_null(t);
	assert_int_equal(qkd_gf2poly_mul(c, a, n, b, n), 0);
	memcpy(t + n, a, n * sizeof *t);	/* t = x^(64n) a: low half */
	assert_int_equal(qkd_gf2poly_mulmid(d, t, b, n), 0);
	memset(t, 0, 2 * n * sizeof *t);
	memcpy(t, a, n * sizeof *t);		/* t = a: high half */
	assert_int_equal(qkd_gf2poly_mulmid(d + n, t, b, n), 0);
	assert_memory_equal(c, d, 2 * n * sizeof *c);
	for (int k = 0; k < 3; k++) {
		uint64_t fl = rnd() | 1;

		assert_true(poly_mod(c, 2 * n, fl) ==
			    mulmod(poly_mod(a, n, fl), poly_mod(b, n, fl), fl));
	}
	free(a), free(b), free(c), free(d), free(t);
}

/* The portable kernels against the SIMD ones, every layer. */
static void test_portable_path(void **state)
{
	static const size_t s[][2] = {{1, 1}, {5, 3}, {33, 31}, {64, 64},
				      {100, 7}, {1024, 1100}, {4000, 2500},
				      {2048, 2049}};
	size_t ns = under_valgrind() ? 5 : sizeof s / sizeof s[0];

	(void)state;
	qkd_gf2poly_force_portable(true);
	assert_string_equal(qkd_gf2poly_kernel(), "portable");
	qkd_gf2poly_force_portable(false);
	rng_state = 16;
	for (size_t i = 0; i < ns; i++) {
		size_t na = s[i][0], nb = s[i][1];
		uint64_t *a = rnd_words(na), *b = rnd_words(nb);
		uint64_t *c1 = rnd_words(na + nb), *c2 = rnd_words(na + nb);
		uint64_t *t = rnd_words(2 * na), *m1 = rnd_words(na);
		uint64_t *m2 = rnd_words(na);

		assert_int_equal(qkd_gf2poly_mul(c1, a, na, b, nb), 0);
		assert_int_equal(qkd_gf2poly_mulmid(m1, t, a, na), 0);
		qkd_gf2poly_force_portable(true);
		assert_int_equal(qkd_gf2poly_mul(c2, a, na, b, nb), 0);
		assert_int_equal(qkd_gf2poly_mulmid(m2, t, a, na), 0);
		qkd_gf2poly_force_portable(false);
		assert_memory_equal(c1, c2, (na + nb) * sizeof *c1);
		assert_memory_equal(m1, m2, na * sizeof *m1);
		free(a), free(b), free(c1), free(c2), free(t), free(m1), free(m2);
	}
	for (size_t na = 1; na <= 40; na += 3) {
		qkd_gf2poly_force_portable(true);
		check_mul(na, 41 - na);
		check_mulmid(na);
		qkd_gf2poly_force_portable(false);
	}
}

static void test_edges(void **state)
{
	uint64_t a[2] = {0x1234, 0x5678}, c[4] = {9, 9, 9, 9};

	(void)state;
	assert_int_equal(qkd_gf2poly_mul(c, a, 2, NULL, 0), 0);
	assert_true(c[0] == 0 && c[1] == 0 && c[2] == 9);
	assert_int_equal(qkd_gf2poly_mul(c, NULL, 0, NULL, 0), 0);
	assert_int_equal(qkd_gf2poly_mulmid(c, NULL, NULL, 0), 0);
	assert_int_equal(qkd_gf2poly_mul(c, a, SIZE_MAX, a, 2), QKD_ERR_RANGE);
	assert_int_equal(qkd_gf2poly_mulmid(c, a, a, SIZE_MAX / 2),
			 QKD_ERR_RANGE);
}

/* beta_0 = 1, beta_i^2 + beta_i = beta_(i-1), and the 64 are independent. */
static void test_cantor_basis(void **state)
{
	uint64_t rows[64];
	unsigned rank = 0;

	(void)state;
	assert_true(qkd_gf2_cantor[0] == 1);
	for (int i = 1; i < 64; i++) {
		uint64_t p[2], b = qkd_gf2_cantor[i];

		qkd_gf2poly_mul_ref(p, &b, 1, &b, 1);
		assert_true((qkd_gf64_reduce(p[0], p[1]) ^ b) ==
			    qkd_gf2_cantor[i - 1]);
	}
	memcpy(rows, qkd_gf2_cantor, sizeof rows);
	for (unsigned bit = 0; bit < 64; bit++) {
		for (unsigned r = rank; r < 64; r++) {
			if (!((rows[r] >> bit) & 1))
				continue;
			uint64_t tmp = rows[r];

			rows[r] = rows[rank], rows[rank] = tmp;
			for (unsigned q = 0; q < 64; q++)
				if (q != rank && ((rows[q] >> bit) & 1))
					rows[q] ^= rows[rank];
			rank++;
			break;
		}
	}
	assert_int_equal(rank, 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_known_answer_folds),
		cmocka_unit_test(test_cantor_basis),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_mul_random_sizes),
		cmocka_unit_test(test_mul_thresholds),
		cmocka_unit_test(test_mulmid),
		cmocka_unit_test(test_fft_direct),
		cmocka_unit_test(test_portable_path),
		cmocka_unit_test(test_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
