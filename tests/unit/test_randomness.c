/* test_randomness.c - randomness tests of raw choices (DESIGN.md 5.4).
 *
 *  - known answers: short hand-made strings whose counts, bounds, entropies
 *    and z-scores are written out in the test from the documented formulas;
 *  - the word-level counter against a bit-by-bit reference, one-shot and in
 *    chunks of awkward sizes;
 *  - statistical behaviour on 10^7 bits from qkd_rng (fixed seeds, so the
 *    outcome is deterministic): fair, biased 0.6, sticky Markov 0.7;
 *  - invalid input.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "qkd/bits.h"
#include "qkd/error.h"
#include "qkd/randomness.h"
#include "qkd/rng.h"

#define BIG 10000000u	/* 10^7 bits for the statistical tests */

static void near(double got, double want, double tol)
{
	if (!(fabs(got - want) <= tol))
		fail_msg("got %.17g, want %.17g (tol %g)", got, want, tol);
}

static void from_string(struct qkd_bits *b, const char *s)
{
	size_t n = strlen(s);

	assert_int_equal(qkd_bits_init(b, n), 0);
	for (size_t i = 0; i < n; i++)
		qkd_bits_set(b, i, s[i] == '1');
}

static struct qkd_randomness_stats stats_of(const struct qkd_bits *b)
{
	struct qkd_randomness_stats st;

	qkd_randomness_stats_init(&st);
	assert_int_equal(qkd_randomness_stats_add(&st, b), 0);
	return st;
}

static struct qkd_randomness_result assess_ok(const struct qkd_randomness_stats *st,
					      double c)
{
	struct qkd_randomness_result r;
	const char *why = "unset";

	assert_int_equal(qkd_randomness_assess(st, c, &r, &why), QKD_OK);
	assert_null(why);
	return r;
}

static void expect_counts(const struct qkd_randomness_stats *st, uint64_t n,
			  uint64_t ones, uint64_t t00, uint64_t t01, uint64_t t10,
			  uint64_t t11)
{
	assert_int_equal(st->n, n);
	assert_int_equal(st->ones, ones);
	assert_int_equal(st->t00, t00);
	assert_int_equal(st->t01, t01);
	assert_int_equal(st->t10, t10);
	assert_int_equal(st->t11, t11);
}

/* Bit-by-bit reference of the counts. */
static struct qkd_randomness_stats naive_stats(const struct qkd_bits *b)
{
	struct qkd_randomness_stats st;
	uint64_t *t[4];

	qkd_randomness_stats_init(&st);
	t[0] = &st.t00, t[1] = &st.t01, t[2] = &st.t10, t[3] = &st.t11;
	for (size_t i = 0; i < b->n; i++) {
		st.ones += qkd_bits_get(b, i);
		if (i + 1 < b->n)
			(*t[2 * qkd_bits_get(b, i) + qkd_bits_get(b, i + 1)])++;
	}
	st.n = b->n;
	st.last = b->n ? qkd_bits_get(b, b->n - 1) : 0;
	return st;
}

static void expect_same(const struct qkd_randomness_stats *a,
			const struct qkd_randomness_stats *b)
{
	expect_counts(a, b->n, b->ones, b->t00, b->t01, b->t10, b->t11);
	if (a->n)
		assert_int_equal(a->last, b->last);
}

/* Accumulate b in consecutive chunks of the given sizes (cycled). */
static struct qkd_randomness_stats chunked_stats(const struct qkd_bits *b,
						 const size_t *sizes, size_t nsizes)
{
	struct qkd_randomness_stats st;
	struct qkd_bits part;
	size_t pos = 0, i = 0;

	qkd_randomness_stats_init(&st);
	while (pos < b->n) {
		size_t len = sizes[i++ % nsizes];

		if (len > b->n - pos)
			len = b->n - pos;
		assert_int_equal(qkd_bits_init(&part, len), 0);
		if (len)
			qkd_bits_copy_range(&part, 0, b, pos, len);
		assert_int_equal(qkd_randomness_stats_add(&st, &part), 0);
		qkd_bits_cleanup(&part);
		pos += len;
	}
	return st;
}

/* ---- known answers ---- */

/* 01010101: p_hat = 1/2 (freq), but after 0 always 1 and after 1 always 0. */
static void test_kat_alternating(void **state)
{
	struct qkd_bits b;
	struct qkd_randomness_stats st;
	struct qkd_randomness_result r;

	(void)state;
	from_string(&b, "01010101");
	st = stats_of(&b);
	expect_counts(&st, 8, 4, 0, 4, 3, 0);
	r = assess_ok(&st, 1.0);
	/* p_u = 1/2 + 1*sqrt((1/4)/7) */
	near(r.p_freq_upper, 0.5 + sqrt(0.25 / 7), 1e-15);
	near(r.h_freq, -log2(0.5 + sqrt(0.25 / 7)), 1e-15);
	/* P(1|0) = 4/4 and P(0|1) = 3/3: bound 1, no entropy */
	assert_true(r.p_markov_upper == 1.0);
	assert_true(r.h_markov == 0.0);
	assert_true(r.h_min == 0.0);
	assert_true(r.z_freq == 0.0);
	/* margins 4,3 / 3,4: phi = (0 - 4*3)/sqrt(4*3*3*4) = -1, z = -sqrt(7) */
	near(r.z_serial, -sqrt(7.0), 1e-14);
	assert_false(r.biased);
	assert_true(r.correlated);
	assert_int_equal(qkd_randomness_deficit(&r, 100), 100);
	qkd_bits_cleanup(&b);
}

static void test_kat_all_ones(void **state)
{
	struct qkd_bits b;
	struct qkd_randomness_stats st;
	struct qkd_randomness_result r;

	(void)state;
	from_string(&b, "1111111111");
	st = stats_of(&b);
	expect_counts(&st, 10, 10, 0, 0, 0, 9);
	r = assess_ok(&st, 1.0);
	assert_true(r.p_freq_upper == 1.0 && r.h_freq == 0.0 && !signbit(r.h_freq));
	assert_true(r.p_markov_upper == 1.0 && r.h_markov == 0.0);
	near(r.z_freq, sqrt(10.0), 1e-14);	/* (20 - 10)/sqrt(10) */
	assert_true(r.z_serial == 0.0);		/* constant margins */
	assert_true(r.biased);
	assert_false(r.correlated);
	assert_int_equal(qkd_randomness_deficit(&r, 12345), 12345);
	qkd_bits_cleanup(&b);
}

/* 0011 x 4: t00 = t01 = t11 = 4, t10 = 3. */
static void test_kat_pairs(void **state)
{
	struct qkd_bits b;
	struct qkd_randomness_stats st;
	struct qkd_randomness_result r;
	double p1u = 4.0 / 7 + sqrt((4.0 / 7) * (3.0 / 7) / 6);

	(void)state;
	from_string(&b, "0011001100110011");
	st = stats_of(&b);
	expect_counts(&st, 16, 8, 4, 4, 3, 4);

	r = assess_ok(&st, 1.0);
	near(r.p_freq_upper, 0.5 + sqrt(0.25 / 15), 1e-15);
	/* state 0: 4/8 -> 1/2 + sqrt(1/4 / 7) = 0.689; state 1: 4/7 -> p1u = 0.773 */
	near(r.p_markov_upper, p1u, 1e-15);
	near(r.p_markov_upper, 0.7734590803, 1e-9);
	near(r.h_markov, -log2(p1u), 1e-15);
	near(r.h_min, -log2(p1u), 1e-15);
	near(r.deficit_per_bit, 1 + log2(p1u), 1e-15);
	assert_true(r.z_freq == 0.0);
	/* phi = (4*4 - 4*3)/sqrt(8*7*7*8) = 1/14 */
	near(r.z_serial, sqrt(15.0) / 14, 1e-15);
	assert_false(r.biased);
	assert_false(r.correlated);
	/* ceil(1000 * (1 + log2(0.77346))) = ceil(628.98...) */
	assert_int_equal(qkd_randomness_deficit(&r, 1000),
			 (uint64_t)ceil(1000 * (1 + log2(p1u))));
	assert_int_equal(qkd_randomness_deficit(&r, 1000), 630);

	/* c = 0: the bounds are the point estimates. */
	r = assess_ok(&st, 0.0);
	assert_true(r.p_freq_upper == 0.5 && r.h_freq == 1.0);
	near(r.h_markov, -log2(4.0 / 7), 1e-15);
	assert_true(r.false_alarm_prob == 1.0);
	assert_true(r.biased == false && r.correlated == true);	/* |z| > 0 */
	qkd_bits_cleanup(&b);
}

/* Word boundaries: 130 bits of 0x5555... (bit 0 = 1): 1,0,1,0,...,1,0. */
static void test_kat_words(void **state)
{
	struct qkd_bits b;
	struct qkd_randomness_stats st;

	(void)state;
	assert_int_equal(qkd_bits_init(&b, 130), 0);
	b.w[0] = b.w[1] = b.w[2] = UINT64_C(0x5555555555555555);
	qkd_bits_trim(&b);
	st = stats_of(&b);
	expect_counts(&st, 130, 65, 0, 64, 65, 0);
	assert_int_equal(st.last, 0);
	/* An untrimmed last word must not change the counts. */
	b.w[2] = ~UINT64_C(0) ^ 2;	/* bits 128, 129 = 1, 0, junk above */
	st = stats_of(&b);
	expect_counts(&st, 130, 65, 0, 64, 65, 0);
	qkd_bits_cleanup(&b);
}

static void test_false_alarm(void **state)
{
	struct qkd_bits b;
	struct qkd_randomness_stats st;
	struct qkd_randomness_result r;

	(void)state;
	from_string(&b, "0110");
	st = stats_of(&b);
	r = assess_ok(&st, 5.0);
	/* 2 (1 - Phi(5)) */
	near(r.false_alarm_prob, 5.7330314375838e-07, 1e-18);
	r = assess_ok(&st, 1.959963984540054);
	near(r.false_alarm_prob, 0.05, 1e-15);
	qkd_bits_cleanup(&b);
}

/* ---- counter against the reference ---- */

static void test_counts_vs_naive(void **state)
{
	static const size_t sizes[][4] = {
		{ 1, 1, 1, 1 }, { 0, 3, 0, 5 }, { 63, 1, 64, 2 }, { 65, 7, 128, 129 },
	};
	struct qkd_rng g;

	(void)state;
	qkd_rng_init_seed(&g, 1, "randomness-naive");
	for (size_t n = 0; n <= 300; n++) {
		struct qkd_bits b;
		struct qkd_randomness_stats one, ref, ch;

		assert_int_equal(qkd_bits_init(&b, n), 0);
		qkd_rng_bytes(&g, b.w, qkd_bits_words(n) * 8);
		qkd_bits_trim(&b);
		one = stats_of(&b);
		ref = naive_stats(&b);
		expect_same(&one, &ref);
		for (size_t k = 0; k < 4; k++) {
			ch = chunked_stats(&b, sizes[k], 4);
			expect_same(&ch, &ref);
		}
		qkd_bits_cleanup(&b);
	}
	qkd_rng_cleanup(&g);
}

/* ---- statistical behaviour on 10^7 bits ---- */

enum gen { GEN_FAIR, GEN_BIASED, GEN_STICKY };

static void generate(struct qkd_bits *b, enum gen kind, uint64_t seed)
{
	struct qkd_rng g;
	unsigned prev = 0;

	assert_int_equal(qkd_bits_init(b, BIG), 0);
	qkd_rng_init_seed(&g, seed, "randomness-test");
	if (kind == GEN_FAIR) {
		qkd_rng_bytes(&g, b->w, qkd_bits_words(BIG) * 8);
		qkd_bits_trim(b);
	}
	for (size_t i = 0; kind != GEN_FAIR && i < BIG; i++) {
		double u = qkd_rng_double(&g);

		if (kind == GEN_BIASED)
			prev = u < 0.6;
		else
			prev = u < 0.7 ? prev : !prev;
		qkd_bits_set(b, i, prev);
	}
	qkd_rng_cleanup(&g);
}

/* c = 5, b = 10^7: each p_u exceeds 1/2 by about 5*0.5/sqrt(n_state), i.e.
 * <= 1.2e-3 plus noise, so 1 - h_min ~ 0.0035; we assert r < 0.01 b. */
static void test_fair(void **state)
{
	struct qkd_bits b;
	struct qkd_randomness_stats st;
	struct qkd_randomness_result r;
	uint64_t def;

	(void)state;
	generate(&b, GEN_FAIR, 7);
	st = stats_of(&b);
	r = assess_ok(&st, 5.0);
	assert_false(r.biased);
	assert_false(r.correlated);
	assert_true(fabs(r.z_freq) < 5 && fabs(r.z_serial) < 5);
	assert_true(r.h_min > 0.99 && r.h_min < 1.0);
	def = qkd_randomness_deficit(&r, BIG);
	assert_true(def > 0 && def < BIG / 100);
	qkd_bits_cleanup(&b);
}

/* P(1) = 0.6: true deficit 1 + log2(0.6) = 0.26303 per bit; the bounds add
 * ~1.2e-3 to p (-> +0.003 in r/b). Assert 0.2625 <= r/b <= 0.2700. */
static void test_biased(void **state)
{
	struct qkd_bits b;
	struct qkd_randomness_stats st;
	struct qkd_randomness_result r;
	double frac;

	(void)state;
	generate(&b, GEN_BIASED, 8);
	st = stats_of(&b);
	r = assess_ok(&st, 5.0);
	assert_true(r.biased);
	assert_true(r.z_freq > 100);		/* ~ 0.2 sqrt(10^7) = 632 */
	assert_false(r.correlated);		/* independent, whatever the bias */
	near(r.p_freq_upper, 0.6, 2e-3);
	assert_true(r.p_freq_upper > 0.6);	/* the bound covers the truth */
	frac = (double)qkd_randomness_deficit(&r, BIG) / BIG;
	assert_true(frac >= 0.2625 && frac <= 0.2700);
	near(frac, 1 + log2(0.6), 0.007);
	qkd_bits_cleanup(&b);
}

/* Repeat the previous bit w.p. 0.7: -log2(0.7) = 0.515 bits per bit. */
static void test_sticky(void **state)
{
	static const size_t sizes[] = { 1000003, 1, 64, 4095, 77 };
	struct qkd_bits b;
	struct qkd_randomness_stats st, ch;
	struct qkd_randomness_result r;

	(void)state;
	generate(&b, GEN_STICKY, 9);
	st = stats_of(&b);
	r = assess_ok(&st, 5.0);
	assert_true(r.correlated);
	assert_true(r.z_serial > 100);		/* phi ~ 0.4: z ~ 0.4 sqrt(10^7) */
	assert_true(r.h_markov < 0.5146 && r.h_markov > 0.505);
	assert_true(r.h_freq > 0.99);		/* balanced: only the Markov test sees it */
	assert_true(r.h_min == r.h_markov);
	assert_true(qkd_randomness_deficit(&r, BIG) > BIG * 0.48);

	/* Chunked accumulation equals one shot. */
	ch = chunked_stats(&b, sizes, 5);
	expect_same(&ch, &st);
	qkd_randomness_stats_cleanup(&ch);
	qkd_randomness_stats_cleanup(&st);
	qkd_bits_cleanup(&b);
}

/* ---- invalid input ---- */

static void expect_inval(const struct qkd_randomness_stats *st, double c)
{
	struct qkd_randomness_result r;
	const char *why = NULL;

	memset(&r, 0xa5, sizeof(r));
	assert_int_equal(qkd_randomness_assess(st, c, &r, &why), QKD_ERR_INVAL);
	assert_non_null(why);
	assert_true(r.h_min == 0.0 && r.p_freq_upper == 0.0 && !r.biased);
	assert_int_equal(qkd_randomness_assess(st, c, &r, NULL), QKD_ERR_INVAL);
}

static void test_invalid(void **state)
{
	struct qkd_bits b, empty = { NULL, 0 };
	struct qkd_randomness_stats st, good;
	struct qkd_randomness_result r;

	(void)state;
	qkd_randomness_stats_init(&st);
	expect_inval(&st, 5.0);			/* n = 0 */
	assert_int_equal(qkd_randomness_stats_add(&st, &empty), 0);
	expect_inval(&st, 5.0);
	from_string(&b, "1");
	st = stats_of(&b);
	expect_inval(&st, 5.0);			/* n = 1 */
	qkd_bits_cleanup(&b);

	from_string(&b, "0110100110");
	good = stats_of(&b);
	(void)assess_ok(&good, 5.0);
	expect_inval(&good, -1.0);
	expect_inval(&good, -1e-300);
	expect_inval(&good, NAN);
	expect_inval(&good, INFINITY);

	st = good;
	st.t00++;				/* sum != n - 1 */
	expect_inval(&st, 5.0);
	st = good;
	st.t00++, st.t11--;			/* sum fine, ones inconsistent */
	expect_inval(&st, 5.0);
	st = good;
	st.last ^= 1;
	expect_inval(&st, 5.0);
	st = good;
	st.ones = st.n + 1;
	expect_inval(&st, 5.0);
	st = good;
	st.n = QKD_RANDOMNESS_COUNT_MAX + 1;
	expect_inval(&st, 5.0);

	/* Overflow of the count: refused, stats unchanged. */
	st = good;
	st.n = QKD_RANDOMNESS_COUNT_MAX - 5;
	assert_int_equal(qkd_randomness_stats_add(&st, &b), QKD_ERR_RANGE);
	assert_int_equal(st.n, QKD_RANDOMNESS_COUNT_MAX - 5);
	assert_int_equal(st.ones, good.ones);

	/* Deficit edges. */
	memset(&r, 0, sizeof(r));
	r.deficit_per_bit = 0.0;
	assert_int_equal(qkd_randomness_deficit(&r, 1000), 0);
	r.deficit_per_bit = 1.0;
	assert_int_equal(qkd_randomness_deficit(&r, 1000), 1000);
	r.deficit_per_bit = 1e-9;
	assert_int_equal(qkd_randomness_deficit(&r, 1000), 1);
	assert_int_equal(qkd_randomness_deficit(&r, 0), 0);
	qkd_randomness_stats_cleanup(NULL);
	qkd_bits_cleanup(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kat_alternating),
		cmocka_unit_test(test_kat_all_ones),
		cmocka_unit_test(test_kat_pairs),
		cmocka_unit_test(test_kat_words),
		cmocka_unit_test(test_false_alarm),
		cmocka_unit_test(test_counts_vs_naive),
		cmocka_unit_test(test_fair),
		cmocka_unit_test(test_biased),
		cmocka_unit_test(test_sticky),
		cmocka_unit_test(test_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
