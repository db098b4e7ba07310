/* test_entropy.c - entropy estimation (DESIGN.md section 5).
 *
 * Three kinds of checks:
 *  - known-answer vectors: the digits were computed with mpmath at 50 digits
 *    (formulas of DESIGN 5 written out, mu given as the same binary double),
 *    pasted here as literals;
 *  - an independent reference: the DESIGN 5 formulas written out again,
 *    naively, in long double, over a grid of inputs;
 *  - edges: floor and clamp, eps >= 1/3, tiny mu, invalid input.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "qkd/entropy.h"
#include "qkd/error.h"

/* |got - want| <= rel * |want| (+ a tiny absolute floor for want == 0). */
static void near_rel(double got, double want, double rel)
{
	double tol = rel * fabs(want) + 1e-300;

	if (!(fabs(got - want) <= tol))
		fail_msg("got %.17g, want %.17g (rel tol %g)", got, want, rel);
}

static struct qkd_entropy_in make_in(uint64_t b, uint64_t e, uint64_t d,
				     uint64_t ntx, uint64_t m, double mu,
				     enum qkd_leak_model src,
				     enum qkd_defense def)
{
	struct qkd_entropy_in in;

	qkd_entropy_in_defaults(&in);
	in.bits = b;
	in.errors = e;
	in.disclosed = d;
	in.transmitted = ntx;
	in.detected = m;
	in.mu = mu;
	in.source = src;
	in.defense = def;
	return in;
}

static struct qkd_entropy_out run_ok(const struct qkd_entropy_in *in)
{
	struct qkd_entropy_out out;
	const char *why = "unset";

	assert_int_equal(qkd_entropy_estimate(in, &out, &why), QKD_OK);
	assert_null(why);
	return out;
}

/* ---- independent reference: DESIGN 5 literally, in long double ---- */

struct ref {
	long double pm, q, tt, sdt, tn, sdn, sigma, sreal;
	uint64_t s;
};

static struct ref ref_estimate(const struct qkd_entropy_in *in)
{
	struct ref r;
	long double b = in->bits, e = in->errors, mu = in->mu;
	long double vart, varn;

	r.pm = 1.0L - expl(-mu) * (1.0L + mu);
	r.q = r.pm;
	if (in->source == QKD_LEAK_WEAK_COHERENT) {
		r.q = r.pm * (long double)in->transmitted / in->detected;
		if (r.q > 1.0L)
			r.q = 1.0L;
	}
	r.tt = b * r.q;
	vart = b * r.q * (1.0L - r.q);
	r.sdt = sqrtl(vart);
	if (in->defense == QKD_DEFENSE_BENNETT) {
		r.tn = (4.0L / sqrtl(2.0L)) * e;
		varn = (4.0L + 2.0L * sqrtl(2.0L)) * e;
		r.sdn = sqrtl(varn);
	} else {
		long double eps = e / b, tau = 1.0L, dtau = 0.0L;

		if (eps < 1.0L / 3.0L) {
			long double x = (1.0L - 3.0L * eps) / (1.0L - eps);

			tau = log2l(2.0L - x * x);
			dtau = 4.0L * x / ((1.0L - eps) * (1.0L - eps) *
					   (2.0L - x * x) * logl(2.0L));
		}
		r.tn = b * tau;
		r.sdn = b * dtau * sqrtl(eps * (1.0L - eps) / b);
		varn = r.sdn * r.sdn;
	}
	r.sigma = in->confidence * sqrtl(vart + varn);
	r.sreal = b - in->disclosed - r.tt - r.tn - in->nonrandom - r.sigma -
		  in->pa_margin;
	r.s = r.sreal < 1.0L ? 0 : (uint64_t)floorl(r.sreal);
	return r;
}

static void check_against_ref(const struct qkd_entropy_in *in)
{
	struct qkd_entropy_out o = run_ok(in);
	struct ref r = ref_estimate(in);

	near_rel(o.multiphoton_prob, (double)r.pm, 1e-9);
	near_rel(o.transparent_fraction, (double)r.q, 1e-9);
	near_rel(o.transparent, (double)r.tt, 1e-9);
	near_rel(o.transparent_sd, (double)r.sdt, 1e-9);
	near_rel(o.nontransparent, (double)r.tn, 1e-9);
	near_rel(o.nontransparent_sd, (double)r.sdn, 1e-9);
	near_rel(o.sigma_term, (double)r.sigma, 1e-9);
	/* s_real is a difference of terms of size b: compare it on that scale */
	if (!(fabs(o.secret_real - (double)r.sreal) <= 1e-9 * (double)in->bits))
		fail_msg("s_real %.17g, want %.17g", o.secret_real, (double)r.sreal);
	/* floor may differ by one only if s_real sits on an integer */
	assert_true(o.secret_bits + 1 >= r.s && o.secret_bits <= r.s + 1);
}

static void test_reference_grid(void **state)
{
	static const uint64_t bits[] = { 1, 7, 1000, 316000, 50000000 };
	static const double err_frac[] = { 0.0, 0.001, 0.03, 0.11, 0.3, 1.0 / 3, 0.5, 1.0 };
	static const double mus[] = { 0.001, 0.1, 0.5, 2.0 };
	(void)state;

	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
	for (size_t j = 0; j < sizeof(err_frac) / sizeof(err_frac[0]); j++)
	for (size_t k = 0; k < sizeof(mus) / sizeof(mus[0]); k++)
	for (int src = 0; src < 2; src++)
	for (int def = 0; def < 2; def++) {
		uint64_t b = bits[i];
		uint64_t e = (uint64_t)floor(err_frac[j] * (double)b);
		struct qkd_entropy_in in = make_in(b, e, b / 10, 40 * b, 2 * b,
						   mus[k], (enum qkd_leak_model)src,
						   (enum qkd_defense)def);

		in.nonrandom = 3.25;
		in.pa_margin = 7.0;
		check_against_ref(&in);
	}
}

/* ---- known-answer vectors (mpmath, 50 digits) ---- */

/* KAT 1: weak-coherent, slutsky; b = 316000, 3% errors, mu = 0.1,
 * N_tx = 2e7, M = 632000 (docs/entropy.md worked example). */
static void test_kat_weak_coherent_slutsky(void **state)
{
	struct qkd_entropy_in in = make_in(316000, 9480, 72000, 20000000, 632000,
					   0.1, QKD_LEAK_WEAK_COHERENT,
					   QKD_DEFENSE_SLUTSKY);
	struct qkd_entropy_out o = run_ok(&in);
	(void)state;

	near_rel(o.multiphoton_prob, 0.0046788401604444700216, 1e-14);
	near_rel(o.transparent_fraction, 0.14806456203938196271, 1e-14);
	near_rel(o.transparent, 46788.401604444700216, 1e-13);
	near_rel(o.transparent_sd, 199.65143979535904999, 1e-13);
	near_rel(o.nontransparent, 51618.874742315235177, 1e-13);
	near_rel(o.nontransparent_sd, 492.69396664161597756, 1e-13);
	near_rel(o.sigma_term, 2658.044592258610308, 1e-13);
	near_rel(o.secret_real, 142934.6790609814543, 1e-13);
	assert_int_equal(o.secret_bits, 142934);
	near_rel(o.disclosed, 72000, 0);
	near_rel(o.error_rate, 0.03, 1e-15);
	assert_false(o.transparent_saturated);
	assert_int_equal(o.limiting_term, QKD_TERM_DISCLOSED);
}

/* KAT 2: entangled, bennett, with r and pa_margin. */
static void test_kat_entangled_bennett(void **state)
{
	struct qkd_entropy_in in = make_in(100000, 2500, 20000, 0, 0, 0.05,
					   QKD_LEAK_ENTANGLED,
					   QKD_DEFENSE_BENNETT);
	struct qkd_entropy_out o;
	(void)state;

	in.nonrandom = 100;
	in.pa_margin = 50;
	o = run_ok(&in);
	near_rel(o.multiphoton_prob, 0.001209104274250290586, 1e-14);
	near_rel(o.transparent_fraction, 0.001209104274250290586, 1e-14);
	near_rel(o.transparent, 120.9104274250290586, 1e-13);
	near_rel(o.transparent_sd, 10.989278143282570788, 1e-13);
	near_rel(o.nontransparent, 7071.067811865475244, 1e-14);
	near_rel(o.nontransparent_sd, 130.65629648763765279, 1e-14);
	near_rel(o.sigma_term, 655.58813377714333197, 1e-13);
	near_rel(o.secret_real, 72002.433626932352365, 1e-13);
	assert_int_equal(o.secret_bits, 72002);
	near_rel(o.nonrandomness, 100, 0);
	near_rel(o.pa_margin, 50, 0);
	assert_int_equal(o.limiting_term, QKD_TERM_DISCLOSED);
}

/* KAT 3: the 25 km / mu = 0.1 case: p_m N_tx / M = 1.48, so q saturates at
 * 1, the multi-photon term alone takes every bit and the key is empty. */
static void test_kat_weak_coherent_saturated(void **state)
{
	struct qkd_entropy_in in = make_in(316000, 9480, 72000, 200000000,
					   632000, 0.1, QKD_LEAK_WEAK_COHERENT,
					   QKD_DEFENSE_SLUTSKY);
	struct qkd_entropy_out o = run_ok(&in);
	(void)state;

	assert_true(o.transparent_saturated);
	near_rel(o.transparent_fraction, 1.0, 0);
	near_rel(o.transparent, 316000.0, 0);
	near_rel(o.transparent_sd, 0.0, 0);
	near_rel(o.sigma_term, 2463.4698332080798878, 1e-13);
	near_rel(o.secret_real, -126082.34457552331506, 1e-13);
	assert_int_equal(o.secret_bits, 0);
	assert_int_equal(o.limiting_term, QKD_TERM_TRANSPARENT);
}

/* KAT 4: weak-coherent, bennett, c = 3, fractional r. */
static void test_kat_weak_coherent_bennett(void **state)
{
	struct qkd_entropy_in in = make_in(50000, 1000, 8000, 3000000, 100000,
					   0.2, QKD_LEAK_WEAK_COHERENT,
					   QKD_DEFENSE_BENNETT);
	struct qkd_entropy_out o;
	(void)state;

	in.confidence = 3;
	in.nonrandom = 10.5;
	in.pa_margin = 20;
	o = run_ok(&in);
	near_rel(o.multiphoton_prob, 0.017523096306421771414, 1e-14);
	near_rel(o.transparent_fraction, 0.52569288919265314242, 1e-14);
	near_rel(o.transparent, 26284.644459632657121, 1e-13);
	near_rel(o.transparent_sd, 111.65569296836907083, 1e-13);
	near_rel(o.nontransparent, 2828.4271247461900976, 1e-14);
	near_rel(o.nontransparent_sd, 82.634297508638567101, 1e-14);
	near_rel(o.sigma_term, 416.72387509349165221, 1e-13);
	near_rel(o.secret_real, 12439.704540527661129, 1e-12);
	assert_int_equal(o.secret_bits, 12439);
	assert_int_equal(o.limiting_term, QKD_TERM_TRANSPARENT);
}

/* KAT 5: entangled, slutsky, 1% errors, a million bits. */
static void test_kat_entangled_slutsky(void **state)
{
	struct qkd_entropy_in in = make_in(1000000, 10000, 90000, 0, 0, 0.01,
					   QKD_LEAK_ENTANGLED,
					   QKD_DEFENSE_SLUTSKY);
	struct qkd_entropy_out o = run_ok(&in);
	(void)state;

	near_rel(o.multiphoton_prob, 0.000049667913340265892416, 1e-14);
	near_rel(o.transparent, 49.667913340265892416, 1e-13);
	near_rel(o.transparent_sd, 7.0473715978831651398, 1e-13);
	near_rel(o.nontransparent, 56577.866864512702025, 1e-13);
	near_rel(o.nontransparent_sd, 551.93335811672053916, 1e-13);
	near_rel(o.sigma_term, 2759.8917426614704654, 1e-13);
	near_rel(o.secret_real, 850612.57347948556162, 1e-13);
	assert_int_equal(o.secret_bits, 850612);
	assert_int_equal(o.limiting_term, QKD_TERM_DISCLOSED);
}

/* ---- slutsky branches ---- */

static void test_slutsky_eps_third_and_above(void **state)
{
	struct qkd_entropy_in in = make_in(3000, 1000, 0, 0, 0, 0.1,
					   QKD_LEAK_ENTANGLED,
					   QKD_DEFENSE_SLUTSKY);
	struct qkd_entropy_out o = run_ok(&in);
	(void)state;

	/* eps = 1/3 exactly: tau = 1, tau' = 0 (decided on integers) */
	near_rel(o.nontransparent, 3000.0, 0);
	near_rel(o.nontransparent_sd, 0.0, 0);
	near_rel(o.transparent, 14.036520481333410065, 1e-13);
	near_rel(o.sigma_term, 18.688797343323383287, 1e-13);
	near_rel(o.secret_real, -32.725317824656793352, 1e-13);
	assert_int_equal(o.secret_bits, 0);
	assert_int_equal(o.limiting_term, QKD_TERM_NONTRANSPARENT);

	/* above 1/3 and at e = b */
	in.errors = 2000;
	o = run_ok(&in);
	near_rel(o.nontransparent, 3000.0, 0);
	near_rel(o.nontransparent_sd, 0.0, 0);
	in.errors = 3000;
	o = run_ok(&in);
	near_rel(o.nontransparent, 3000.0, 0);

	/* just below 1/3: tau close to 1 (continuous), finite sd */
	in.bits = 3000001;
	in.errors = 1000000;
	o = run_ok(&in);
	assert_true(o.nontransparent < 3000001.0);
	assert_true(o.nontransparent > 0.999999 * 3000001.0);
	assert_true(o.nontransparent_sd > 0.0 && isfinite(o.nontransparent_sd));
}

/* Zero errors: tau(0) = 0 and the slutsky sd is 0 (the model's, not ours). */
static void test_slutsky_zero_errors(void **state)
{
	struct qkd_entropy_in in = make_in(10000, 0, 100, 0, 0, 0.1,
					   QKD_LEAK_ENTANGLED,
					   QKD_DEFENSE_SLUTSKY);
	struct qkd_entropy_out o = run_ok(&in);
	(void)state;

	near_rel(o.nontransparent, 0.0, 0);
	near_rel(o.nontransparent_sd, 0.0, 0);
	in.defense = QKD_DEFENSE_BENNETT;
	o = run_ok(&in);
	near_rel(o.nontransparent, 0.0, 0);
}

/* Small eps: tau ~ 4 eps / ln2; log1p keeps the relative accuracy. */
static void test_slutsky_small_eps(void **state)
{
	struct qkd_entropy_in in = make_in(1000000000000ULL, 1, 0, 0, 0, 0.1,
					   QKD_LEAK_ENTANGLED,
					   QKD_DEFENSE_SLUTSKY);
	struct qkd_entropy_out o = run_ok(&in);
	/* b tau = b log2(1 + 4e(b-2e)/(b-e)^2); mpmath: */
	(void)state;
	near_rel(o.nontransparent, 5.7707801635443120691, 1e-12);
}

/* ---- floor and clamp ---- */

static void test_floor_and_clamp(void **state)
{
	/* entangled, e = 0, mu tiny: every term but pa_margin is ~0 */
	struct qkd_entropy_in in = make_in(1000, 0, 0, 0, 0, 1e-12,
					   QKD_LEAK_ENTANGLED,
					   QKD_DEFENSE_SLUTSKY);
	struct qkd_entropy_out o;
	(void)state;

	in.pa_margin = 989.25;		/* s_real = 10.75 - b p_m - c sqrt(b p_m) */
	o = run_ok(&in);
	near_rel(o.secret_real, 10.75 - 5e-22 - 5.0 * sqrt(5e-22), 1e-14);
	assert_int_equal(o.secret_bits, 10);
	assert_int_equal(o.limiting_term, QKD_TERM_PA_MARGIN);

	in.pa_margin = 999.5;		/* 0 < s_real < 1 */
	o = run_ok(&in);
	assert_int_equal(o.secret_bits, 0);

	in.pa_margin = 1000.5;		/* s_real < 0: clamp */
	o = run_ok(&in);
	assert_true(o.secret_real < 0);
	assert_int_equal(o.secret_bits, 0);

	in.pa_margin = 0;		/* p_m underflows: s_real exactly 10 */
	in.mu = 1e-300;
	in.disclosed = 990;
	o = run_ok(&in);
	near_rel(o.secret_real, 10.0, 0);
	assert_int_equal(o.secret_bits, 10);

	in.disclosed = 5000;		/* d > b is allowed, clamps */
	o = run_ok(&in);
	assert_int_equal(o.secret_bits, 0);
	assert_int_equal(o.limiting_term, QKD_TERM_DISCLOSED);
}

static void test_limiting_term(void **state)
{
	struct qkd_entropy_in in = make_in(1000, 0, 0, 0, 0, 1e-300,
					   QKD_LEAK_ENTANGLED,
					   QKD_DEFENSE_SLUTSKY);
	struct qkd_entropy_out o = run_ok(&in);
	(void)state;

	/* p_m underflows to 0: nothing consumed at all */
	assert_int_equal(o.limiting_term, QKD_TERM_NONE);
	assert_int_equal(o.secret_bits, 1000);
	assert_string_equal(qkd_entropy_term_name(o.limiting_term), "none");

	in.nonrandom = 12;
	o = run_ok(&in);
	assert_int_equal(o.limiting_term, QKD_TERM_NONRANDOMNESS);
	assert_int_equal(o.secret_bits, 988);

	in.errors = 20;			/* sigma term is now the largest */
	in.defense = QKD_DEFENSE_BENNETT;
	in.confidence = 50;
	in.nonrandom = 0;
	o = run_ok(&in);
	assert_true(o.sigma_term > o.nontransparent);
	assert_int_equal(o.limiting_term, QKD_TERM_SIGMA);
	assert_string_equal(qkd_entropy_term_name(o.limiting_term), "sigma_term");
}

/* ---- p_m at small mu ---- */

static void test_multiphoton_tiny_mu(void **state)
{
	static const struct {
		double mu, pm;
	} v[] = {
		{ 1e-12, 4.9999999999966664655e-25 },
		{ 1e-8, 4.9999999666666670009e-17 },
		{ 1e-4, 4.9996666791663338194e-9 },
		{ 0.001, 4.9966679163334029738e-7 },
		{ 0.1, 0.0046788401604444700216 },
		{ 0.5, 0.090204010431049864594 },
		{ 0.999, 0.26387323827728782017 },
		{ 1.0, 0.26424111765711535681 },
		{ 2.0, 0.59399415029016192432 },
		{ 10.0, 0.99950060077261266663 },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		near_rel(qkd_entropy_multiphoton_prob(v[i].mu), v[i].pm, 4e-16);
	/* the naive form is useless here, which is why the series exists */
	assert_true(fabs(1.0 - exp(-1e-8) * (1.0 + 1e-8) - 5e-17) > 1e-18);
	/* continuous across the switch at mu = 1 */
	near_rel(qkd_entropy_multiphoton_prob(nextafter(1.0, 0.0)),
		 qkd_entropy_multiphoton_prob(1.0), 1e-15);
	near_rel(qkd_entropy_multiphoton_prob(0.0), 0.0, 0);
	assert_true(isnan(qkd_entropy_multiphoton_prob(-1.0)));
	assert_true(isnan(qkd_entropy_multiphoton_prob(NAN)));

	/* and it reaches the estimate: entangled, b = 1e12, mu = 1e-8 */
	struct qkd_entropy_in in = make_in(1000000000000ULL, 0, 0, 0, 0, 1e-8,
					   QKD_LEAK_ENTANGLED,
					   QKD_DEFENSE_SLUTSKY);
	struct qkd_entropy_out o = run_ok(&in);

	near_rel(o.transparent, 4.9999999666666670009e-5, 1e-14);
}

/* ---- invalid input ---- */

static void expect_inval(const struct qkd_entropy_in *in)
{
	struct qkd_entropy_out out;
	const char *why = NULL;

	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(qkd_entropy_estimate(in, &out, &why), QKD_ERR_INVAL);
	assert_non_null(why);
	assert_true(strlen(why) > 0);
	assert_int_equal(out.secret_bits, 0);
	near_rel(out.disclosed, 0.0, 0);
}

static void test_invalid_input(void **state)
{
	const struct qkd_entropy_in good = make_in(1000, 10, 100, 100000, 2000,
						   0.1, QKD_LEAK_WEAK_COHERENT,
						   QKD_DEFENSE_SLUTSKY);
	struct qkd_entropy_in in;
	struct qkd_entropy_out out;
	const char *why = NULL;
	(void)state;

	(void)run_ok(&good);
#define BAD(stmt) do { in = good; stmt; expect_inval(&in); } while (0)
	BAD(in.bits = 0);
	BAD(in.errors = 1001);				/* e > b */
	BAD(in.detected = 0);				/* weak-coherent needs M */
	BAD(in.transmitted = 0);			/* ... and N_tx */
	BAD(in.transmitted = 1999);			/* M > N_tx */
	BAD(in.detected = 999);				/* b > M */
	BAD(in.mu = 0);
	BAD(in.mu = -0.1);
	BAD(in.mu = NAN);
	BAD(in.mu = INFINITY);
	BAD(in.confidence = -1);
	BAD(in.confidence = NAN);
	BAD(in.confidence = INFINITY);
	BAD(in.nonrandom = -0.5);
	BAD(in.nonrandom = NAN);
	BAD(in.pa_margin = -1);
	BAD(in.pa_margin = INFINITY);
	BAD(in.source = (enum qkd_leak_model)7);
	BAD(in.defense = (enum qkd_defense)7);
	BAD(in.defense = (enum qkd_defense)-1);
	BAD(in.bits = QKD_ENTROPY_COUNT_MAX + 1);
	BAD(in.disclosed = UINT64_MAX);
	/* entangled: N_tx, M unused, but checked when given */
	BAD(in.source = QKD_LEAK_ENTANGLED; in.detected = 500);
	BAD(in.source = QKD_LEAK_ENTANGLED; in.transmitted = 1500);
#undef BAD
	in = good;
	in.source = QKD_LEAK_ENTANGLED;
	in.transmitted = 0;
	in.detected = 0;
	(void)run_ok(&in);
	in.confidence = 0;			/* c = 0 is allowed */
	(void)run_ok(&in);

	assert_int_equal(qkd_entropy_estimate(NULL, &out, &why), QKD_ERR_INVAL);
	assert_non_null(why);
	assert_int_equal(qkd_entropy_estimate(&good, NULL, NULL), QKD_ERR_INVAL);
}

static void test_names(void **state)
{
	enum qkd_defense d = QKD_DEFENSE_SLUTSKY;
	enum qkd_leak_model s = QKD_LEAK_ENTANGLED;
	(void)state;

	assert_int_equal(qkd_defense_from_name("bennett", &d), QKD_OK);
	assert_int_equal(d, QKD_DEFENSE_BENNETT);
	assert_int_equal(qkd_defense_from_name("slutsky", &d), QKD_OK);
	assert_int_equal(d, QKD_DEFENSE_SLUTSKY);
	assert_int_equal(qkd_defense_from_name("Slutsky", &d), QKD_ERR_INVAL);
	assert_int_equal(qkd_defense_from_name("", &d), QKD_ERR_INVAL);
	assert_int_equal(qkd_defense_from_name(NULL, &d), QKD_ERR_INVAL);
	assert_int_equal(d, QKD_DEFENSE_SLUTSKY);	/* untouched on error */
	assert_string_equal(qkd_defense_name(QKD_DEFENSE_BENNETT), "bennett");
	assert_string_equal(qkd_defense_name(QKD_DEFENSE_SLUTSKY), "slutsky");
	assert_string_equal(qkd_defense_name(QKD_DEFENSE_DECOY), "decoy");
	assert_null(qkd_defense_name((enum qkd_defense)(QKD_DEFENSE_DECOY + 1)));

	assert_int_equal(qkd_leak_model_from_name("weak-coherent", &s), QKD_OK);
	assert_int_equal(s, QKD_LEAK_WEAK_COHERENT);
	assert_int_equal(qkd_leak_model_from_name("entangled", &s), QKD_OK);
	assert_int_equal(s, QKD_LEAK_ENTANGLED);
	assert_int_equal(qkd_leak_model_from_name("weak", &s), QKD_ERR_INVAL);
	assert_string_equal(qkd_leak_model_name(QKD_LEAK_WEAK_COHERENT), "weak-coherent");
	assert_null(qkd_leak_model_name((enum qkd_leak_model)2));

	assert_string_equal(qkd_entropy_term_name(QKD_TERM_TRANSPARENT), "transparent");
	assert_string_equal(qkd_entropy_term_name(QKD_TERM_PA_MARGIN), "pa_margin");
	assert_null(qkd_entropy_term_name((enum qkd_entropy_term)99));
}

static void test_defaults(void **state)
{
	struct qkd_entropy_in in;
	(void)state;

	memset(&in, 0xff, sizeof(in));
	qkd_entropy_in_defaults(&in);
	assert_int_equal(in.source, QKD_LEAK_WEAK_COHERENT);
	assert_int_equal(in.defense, QKD_DEFENSE_SLUTSKY);
	near_rel(in.confidence, 5.0, 0);
	near_rel(in.nonrandom, 0.0, 0);
	near_rel(in.pa_margin, 0.0, 0);
	assert_int_equal(in.bits, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kat_weak_coherent_slutsky),
		cmocka_unit_test(test_kat_entangled_bennett),
		cmocka_unit_test(test_kat_weak_coherent_saturated),
		cmocka_unit_test(test_kat_weak_coherent_bennett),
		cmocka_unit_test(test_kat_entangled_slutsky),
		cmocka_unit_test(test_reference_grid),
		cmocka_unit_test(test_slutsky_eps_third_and_above),
		cmocka_unit_test(test_slutsky_zero_errors),
		cmocka_unit_test(test_slutsky_small_eps),
		cmocka_unit_test(test_floor_and_clamp),
		cmocka_unit_test(test_limiting_term),
		cmocka_unit_test(test_multiphoton_tiny_mu),
		cmocka_unit_test(test_invalid_input),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_defaults),
	};

	return cmocka_run_group_tests_name("entropy", tests, NULL, NULL);
}
