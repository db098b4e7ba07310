/* test_decoy.c - finite-key length of decoy-state BB84 (Lim et al. 2014).
 *
 *  - one small example with every bound written out by hand (digits from
 *    mpmath at 30 digits, formulas of Eqs. (1)-(5) typed in again);
 *  - the paper's own evaluation (Sec. IV, Fig. 1): its channel model with
 *    afterpulsing, rates optimised over {q_x, p_mu1, p_mu2, mu1, mu2}, and
 *    the two figures the text states in numbers;
 *  - properties: more pulses never shorten the key, positive key beyond
 *    100 km, no key under a photon-number-splitting channel, the finite
 *    rate approaches the asymptotic one;
 *  - invalid input.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "qkd/decoy.h"
#include "qkd/entropy.h"
#include "qkd/error.h"

static void near_rel(double got, double want, double rel)
{
	double tol = rel * fabs(want) + 1e-300;

	if (!(fabs(got - want) <= tol))
		fail_msg("got %.17g, want %.17g (rel tol %g)", got, want, rel);
}

static struct qkd_decoy_out run_ok(const struct qkd_decoy_counts *in)
{
	struct qkd_decoy_out out;
	const char *why = "unset";

	assert_int_equal(qkd_decoy_key_length(in, &out, &why), QKD_OK);
	assert_null(why);
	return out;
}

/* mu = (0.6, 0.2, 0), p = (0.5, 0.3, 0.2), eps_sec = 21 e^-8 so that
 * ln(21/eps_sec) = 8 and delta(n) = sqrt(n/2 * 8) = 2 sqrt(n).
 * eps_cor = 2^-49: log2(2/eps_cor) = 50. lambda_EC = 1000. */
static struct qkd_decoy_counts hand_example(void)
{
	struct qkd_decoy_counts in;

	qkd_decoy_counts_defaults(&in);
	in.mu[0] = 0.6, in.mu[1] = 0.2, in.mu[2] = 0.0;
	in.p_mu[0] = 0.5, in.p_mu[1] = 0.3, in.p_mu[2] = 0.2;
	in.p_x = 0.5;
	in.n_x[0] = 7000, in.n_x[1] = 2500, in.n_x[2] = 500;
	in.n_z[0] = 15750, in.n_z[1] = 5625, in.n_z[2] = 1125;
	in.m_z[0] = 120, in.m_z[1] = 50, in.m_z[2] = 30;
	in.lambda_ec = 1000.0;
	in.eps_sec = 21.0 * exp(-8.0);
	in.eps_cor = 0x1p-49;
	return in;
}

/* The arithmetic, step by step:
 * tau0 = .5 e^-.6 + .3 e^-.2 + .2 = 0.72002504397040777
 * tau1 = .5 e^-.6 .6 + .3 e^-.2 .2 = 0.21376733601288684
 * weights e^k/p_k: 3.6442376007810179, 4.0713425272005661, 5
 * X: n_X = 10000, delta = 200
 *   n+_1 = 3.64423760 * 7200 = 26238.510725623329
 *   n-_2 = 4.07134253 * 2300 = 9364.0878125613021
 *   n+_2 = 4.07134253 * 2700 = 10992.624823441529
 *   n-_3 = 5 * 300 = 1500,  n+_3 = 5 * 700 = 3500
 *   Eq.2: s_X0 = tau0 (0.2 * 1500 - 0 * n+_2) / 0.2 = 1500 tau0 = 1080.0375659556117
 *   Eq.3: den = 0.6 * 0.2 - 0.04 = 0.08
 *         s_X1 = 0.6 tau1 (9364.0878 - 3500 - 0.04/0.36 (26238.5107 - 1500)) / 0.08
 *              = 4994.7236114908923
 * Z: n_Z = 22500, delta = 300
 *   n+_1 = 3.64423760 * 16050 = 58490.013492535338
 *   n-_2 = 4.07134253 * 5325 = 21679.898957343015
 *   n-_3 = 5 * 825 = 4125
 *   s_Z0 = 4125 tau0 = 2970.1033063779321
 *   s_Z1 = 0.6 tau1 (21679.8990 - 7125 - 0.04/0.36 (58490.0135 - 4125)) / 0.08
 *        = 13650.661398189764
 * errors: m_Z = 200, delta = sqrt(800) = 28.284271247461901
 *   m+_2 = 4.07134253 * 78.2842712 = 318.72208274069615
 *   m-_3 = 5 * 1.7157288 = 8.5786437626904951
 *   Eq.4: v_Z1 = tau1 (318.7220827 - 8.5786438) / 0.2 = 331.49268366101800
 * Eq.5: b = v_Z1 / s_Z1 = 0.024284001631230688
 *   gamma = sqrt((c+d) b(1-b) / (c d ln2) log2((c+d)/(c d b(1-b)) 21^2/eps^2)),
 *   c = s_Z1, d = s_X1, 21/eps = e^8: log2 argument 102559.10716045288,
 *   gamma = 0.012474363864665823, phi_X = 0.036758365495896511
 * Eq.1: h(phi_X) = 0.22722669070467720, 6 log2(e^8) = 69.249361962670244,
 *   l = 1080.0376 + 4994.7236 (1 - 0.2272267) - 1000 - 69.2494 - 50
 *     = 3820.5772982602444 -> 3820 */
static void test_hand_example(void **state)
{
	(void)state;
	struct qkd_decoy_counts in = hand_example();
	struct qkd_decoy_out o = run_ok(&in);
	const double rel = 1e-11;

	near_rel(o.tau0, 0.72002504397040777, rel);
	near_rel(o.tau1, 0.21376733601288684, rel);
	near_rel(o.delta_x, 200.0, rel);
	near_rel(o.delta_z, 300.0, rel);
	near_rel(o.delta_mz, 28.284271247461901, rel);
	near_rel(o.s_x0, 1080.0375659556117, rel);
	near_rel(o.s_x1, 4994.7236114908923, rel);
	near_rel(o.s_z0, 2970.1033063779321, rel);
	near_rel(o.s_z1, 13650.661398189764, rel);
	near_rel(o.v_z1, 331.49268366101800, rel);
	near_rel(o.gamma, 0.012474363864665823, 1e-9);
	near_rel(o.phi_x, 0.036758365495896511, 1e-10);
	near_rel(o.eps_sec_term, 69.249361962670244, rel);
	near_rel(o.eps_cor_term, 50.0, rel);
	near_rel(o.lambda_ec, 1000.0, 0.0);
	near_rel(o.key_real, 3820.5772982602444, 1e-9);
	assert_int_equal(o.key_length, 3820);
}

/* ---- DESIGN section 3 link: the paper's detector numbers ---- */

static const double link_mu[3] = { 0.5, 0.1, 2e-4 };
static const double link_p[3] = { 0.8, 0.15, 0.05 };
#define LINK_PX 0.9
#define LINK_ETA_D 0.1		/* eta_Bob = 10% */
#define LINK_PD 6e-7		/* p_dc per detector */
#define LINK_EOPT 5e-3		/* e_mis */
#define LINK_FEC 1.16

static double fiber_eta(double km)
{
	return pow(10.0, -0.2 * km / 10.0) * LINK_ETA_D;
}

static struct qkd_decoy_out link_run(double km, uint64_t pulses)
{
	struct qkd_decoy_counts in;

	assert_int_equal(qkd_decoy_expected_counts(link_mu, link_p, LINK_PX,
						   fiber_eta(km), LINK_PD,
						   LINK_EOPT, pulses, LINK_FEC,
						   &in), QKD_OK);
	return run_ok(&in);
}

/* p_x^2 sum_k p_k R_asym(mu_k): an upper bound on l/N for large N (the
 * finite bounds only lose, and h is concave so one lambda_EC over the
 * mixed key costs at least the sum over intensities). */
static double link_asym(double km)
{
	double r = 0.0;

	for (int k = 0; k < 3; k++)
		r += link_p[k] * qkd_decoy_asymptotic_rate(link_mu[k],
				fiber_eta(km), LINK_PD, LINK_EOPT, LINK_FEC);
	return LINK_PX * LINK_PX * r;
}

static void test_expected_counts(void **state)
{
	(void)state;
	struct qkd_decoy_counts c;
	/* eta = 1e-2 (no fiber, eta_d 1%), mu1 = 0.5, p_d = 0, e_opt = 0.01:
	 * t = 5e-3, P = 1 - e^-t = 4.98752080e-3, R = 1 - e^{-.99 t},
	 * W = 1 - e^{-.01 t} = 4.99987500e-5, error = W(1-R) + RW/2. */
	const double mu[3] = { 0.5, 0.1, 0.0 }, p[3] = { 0.5, 0.25, 0.25 };

	assert_int_equal(qkd_decoy_expected_counts(mu, p, 0.75, 1e-2, 0.0, 0.01,
						   UINT64_C(1000000000), 1.0,
						   &c), QKD_OK);
	/* 1e9 * 0.5625 * 0.5 * 4.98752080e-3 = 1402740.2 */
	assert_int_equal(c.n_x[0], 1402740);
	/* 1e9 * 0.0625 * 0.5 * 4.98752080e-3 = 155860.0 */
	assert_int_equal(c.n_z[0], 155860);
	/* mu3 = 0 and p_d = 0: nothing clicks. */
	assert_int_equal(c.n_x[2], 0);
	assert_int_equal(c.m_z[2], 0);
	assert_true(c.m_z[0] > 0 && c.m_z[0] < c.n_z[0] / 50);
	near_rel(c.eps_sec, 1e-10, 0.0);
	near_rel(c.eps_cor, 1e-15, 0.0);
	assert_true(c.lambda_ec > 0.0);
}

/* (a) More pulses never give a shorter key. */
static void test_monotone_in_pulses(void **state)
{
	(void)state;
	const double kms[] = { 0.0, 50.0, 100.0 };

	for (size_t i = 0; i < sizeof(kms) / sizeof(kms[0]); i++) {
		uint64_t prev = 0;

		for (double n = 1e8; n <= 1e14; n *= 3.1622776601683795) {
			struct qkd_decoy_out o = link_run(kms[i], (uint64_t)n);

			assert_true(o.key_length >= prev);
			prev = o.key_length;
		}
		assert_true(prev > 0);
	}
}

/* (b) Positive key well beyond 100 km at the paper's detector numbers. */
static void test_long_distance(void **state)
{
	(void)state;
	struct qkd_decoy_out o = link_run(125.0, UINT64_C(1000000000000));

	assert_true(o.key_length > 0);
	/* l/N = 2.54e-5 here; the asymptote is 5.32e-5. */
	assert_true((double)o.key_length / 1e12 > 1e-5);
	o = link_run(150.0, UINT64_C(100000000000000));
	assert_true(o.key_length > 0);
	/* ... and none once dark counts dominate. */
	o = link_run(200.0, UINT64_C(100000000000000));
	assert_int_equal(o.key_length, 0);
}

/* (c) A photon-number-splitting channel: Eve blocks every vacuum and
 * single-photon pulse and forwards the multi-photon ones losslessly, so
 * Bob's yield at intensity k is p_m(mu_k) eta_d with no dark counts and no
 * errors. An attack the plain BBN estimate must catch by q; the decoy
 * bounds must see that no single-photon pulse arrives. */
static void test_pns_no_key(void **state)
{
	(void)state;
	const double n = 1e12, px = 0.9;
	struct qkd_decoy_counts in;

	qkd_decoy_counts_defaults(&in);
	for (int k = 0; k < 3; k++) {
		double y = qkd_entropy_multiphoton_prob(link_mu[k]) * LINK_ETA_D;

		in.mu[k] = link_mu[k];
		in.p_mu[k] = link_p[k];
		in.n_x[k] = (uint64_t)llround(n * px * px * link_p[k] * y);
		in.n_z[k] = (uint64_t)llround(n * (1 - px) * (1 - px) * link_p[k] * y);
	}
	in.p_x = px;
	in.m_z[0] = in.n_z[0] / 200;	/* a little misalignment */
	in.lambda_ec = 0.0;		/* even with error correction for free */

	struct qkd_decoy_out o = run_ok(&in);

	assert_true(in.n_x[0] > 1000000);
	assert_true(o.s_x1 == 0.0);
	assert_true(o.s_x0 == 0.0);
	near_rel(o.phi_x, 0.5, 0.0);
	assert_int_equal(o.key_length, 0);

	/* The same number of detections from the honest channel at the same
	 * signal yield does give a key: it is the yields' pattern, not their
	 * size, that the decoys reveal. */
	struct qkd_decoy_out h = link_run(0.0, UINT64_C(1000000000000));

	assert_true(h.key_length > 0);
}

/* (d) l/N approaches the asymptotic rate from below as N grows. Fractions
 * of the bound this code gives at 50 km: N = 1e11 0.779, 1e12 0.906,
 * 1e13 0.943, 1e14 0.955, 1e15 0.959. The limit is below 1 because three
 * intensities bound s_1 less tightly than infinitely many decoys and one
 * lambda_EC over the mixed key costs more than per intensity. */
static void test_approaches_asymptotic(void **state)
{
	(void)state;
	const double kms[] = { 25.0, 50.0, 100.0 };

	for (size_t i = 0; i < sizeof(kms) / sizeof(kms[0]); i++) {
		double asym = link_asym(kms[i]), prev = 0.0;

		for (double n = 1e10; n <= 1.01e15; n *= 10.0) {
			struct qkd_decoy_out o = link_run(kms[i], (uint64_t)n);
			double r = (double)o.key_length / n;

			assert_true(r <= asym);
			assert_true(r >= prev);
			prev = r;
		}
		assert_true(prev > 0.95 * asym);
	}
	/* Zero pulses' worth of key asymptotically where there is none. */
	assert_true(qkd_decoy_asymptotic_rate(0.5, fiber_eta(250.0), LINK_PD,
					      LINK_EOPT, LINK_FEC) == 0.0);
	assert_true(isnan(qkd_decoy_asymptotic_rate(0.0, 0.1, 0, 0, 1.16)));
	assert_true(isnan(qkd_decoy_asymptotic_rate(0.5, 0.1, 0, 0, 0.9)));
}

/* ---- The paper's Sec. IV evaluation (Fig. 1, dedicated fiber) ----
 * mu3 = 2e-4, eta_Bob = 10%, p_dc = 6e-7, p_ap = 4e-2, e_mis = 5e-3,
 * 0.2 dB/km, f_EC = 1.16, eps_cor = 1e-15, eps_sec = kappa l with
 * kappa = 1e-15; block size n_X fixed, N = n_X / (q_x^2 sum_k p_k R_k),
 * D_k = 1 - (1 - 2 p_dc) e^{-eta_sys k}, R_k = D_k (1 + p_ap),
 * error probability e_k = p_dc + e_mis (1 - e^{-eta_sys k}) + p_ap D_k / 2
 * (the paper prints eta_ch in the e_mis term; we read eta_sys, since e_mis
 * is the fraction of detections in error), lambda_EC = f_EC n_X h(e_obs). */

static double sigmoid(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

/* v = (ln mu1, logit of mu2 in (mu3, mu1 - mu3), ln p1/p3, ln p2/p3,
 * logit q_x): every v is a valid parameter set. Returns l/N. */
static double paper_rate(const double v[5], double km, double n_x)
{
	const double pdc = 6e-7, pap = 4e-2, emis = 5e-3, mu3 = 2e-4;
	double eta = pow(10.0, -0.02 * km) * 0.1, qx = sigmoid(v[4]);
	double s = 1.0 + exp(v[2]) + exp(v[3]), rx = 0.0, ex = 0.0;
	struct qkd_decoy_counts c;
	struct qkd_decoy_out o;

	qkd_decoy_counts_defaults(&c);
	c.mu[0] = exp(v[0]);
	c.mu[2] = mu3;
	if (!(c.mu[0] > 2 * mu3 + 1e-9))
		return 0.0;
	c.mu[1] = mu3 + (c.mu[0] - 2 * mu3) * sigmoid(v[1]);
	c.p_mu[0] = exp(v[2]) / s, c.p_mu[1] = exp(v[3]) / s, c.p_mu[2] = 1.0 / s;
	c.p_x = qx;

	double r[3], e[3];

	for (int k = 0; k < 3; k++) {
		double d = 1.0 - (1.0 - 2 * pdc) * exp(-eta * c.mu[k]);

		r[k] = d * (1.0 + pap);
		e[k] = pdc + emis * (1.0 - exp(-eta * c.mu[k])) + pap * d / 2.0;
		rx += c.p_mu[k] * r[k];
		ex += c.p_mu[k] * e[k];
	}
	double n = n_x / (qx * qx * rx), eo = ex / rx;

	if (n > 1e15)
		return 0.0;
	for (int k = 0; k < 3; k++) {
		c.n_x[k] = (uint64_t)llround(n * qx * qx * c.p_mu[k] * r[k]);
		c.n_z[k] = (uint64_t)llround(n * (1 - qx) * (1 - qx) * c.p_mu[k] * r[k]);
		c.m_z[k] = (uint64_t)llround(n * (1 - qx) * (1 - qx) * c.p_mu[k] * e[k]);
	}
	c.lambda_ec = 1.16 * n_x * (-eo * log2(eo) - (1 - eo) * log2(1 - eo));
	/* eps_sec = kappa l: a fixed point, reached in a few rounds. */
	c.eps_sec = 1e-10;
	for (int it = 0; it < 6; it++) {
		if (qkd_decoy_key_length(&c, &o, NULL) != QKD_OK ||
		    o.key_length == 0)
			return 0.0;
		c.eps_sec = fmin(1e-15 * (double)o.key_length, 0.5);
	}
	return (double)o.key_length / n;
}

/* Coarse grid, then a compass search: good to a few percent, which is all
 * a comparison with a figure can use. */
static double paper_optimum(double km, double n_x)
{
	double best = 0.0, v[5] = { 0 };

	for (double a = -1.5; a <= 0.01; a += 0.25)
	for (double b = -3; b <= 3.01; b += 1.0)
	for (double c = -4; c <= 3.01; c += 1.0)
	for (double d = -2; d <= 3.01; d += 1.0)
	for (double e = -3; e <= 3.01; e += 0.5) {
		double w[5] = { a, b, c, d, e }, r = paper_rate(w, km, n_x);

		if (r > best) {
			best = r;
			memcpy(v, w, sizeof(v));
		}
	}
	for (double step = 0.5; best > 0.0 && step > 1e-3; ) {
		bool improved = false;

		for (int i = 0; i < 10; i++) {
			double w[5];

			memcpy(w, v, sizeof(w));
			w[i / 2] += (i % 2 ? step : -step);
			double r = paper_rate(w, km, n_x);

			if (r > best) {
				best = r;
				memcpy(v, w, sizeof(v));
				improved = true;
			}
		}
		if (!improved)
			step /= 2;
	}
	return best;
}

/* The paper, Sec. IV: "at a fiber length of 100 km, the secret key rate
 * obtained with n_X = 10^9 is about 1.75 times the one based on
 * n_X = 10^7"; we get 8.54e-5 / 4.77e-5 = 1.79 (+2%). "Even if we use a
 * block size of 10^4, cryptographic keys can still be distributed over a
 * fiber length of 135 km"; we find key up to about 128 km (-5%). */
static void test_paper_fig1(void **state)
{
	(void)state;
	double r7 = paper_optimum(100.0, 1e7), r9 = paper_optimum(100.0, 1e9);

	assert_true(r7 > 3e-5 && r7 < 7e-5);
	near_rel(r9 / r7, 1.75, 0.05);

	assert_true(paper_optimum(120.0, 1e4) > 0.0);
	assert_true(paper_optimum(125.0, 1e4) > 0.0);
	assert_true(paper_optimum(145.0, 1e4) == 0.0);
	/* Larger blocks go further (Fig. 1, curves from left to right). */
	assert_true(paper_optimum(150.0, 1e6) > 0.0);
}

static void expect_inval(const struct qkd_decoy_counts *in, const char *want)
{
	struct qkd_decoy_out o;
	const char *why = NULL;

	memset(&o, 0xa5, sizeof(o));
	assert_int_equal(qkd_decoy_key_length(in, &o, &why), QKD_ERR_INVAL);
	assert_non_null(why);
	if (want != NULL)
		assert_string_equal(why, want);
	assert_int_equal(o.key_length, 0);
	assert_true(o.s_x1 == 0.0);
}

static void test_invalid_input(void **state)
{
	(void)state;
	struct qkd_decoy_counts base = hand_example(), in;
	struct qkd_decoy_out o;

	assert_int_equal(qkd_decoy_key_length(NULL, &o, NULL), QKD_ERR_INVAL);
	assert_int_equal(qkd_decoy_key_length(&base, NULL, NULL), QKD_ERR_INVAL);

	in = base, in.mu[0] = 0.2;
	expect_inval(&in, "intensities must satisfy mu1 > mu2 + mu3");
	in = base, in.mu[2] = 0.1, in.mu[0] = 0.3;	/* 0.3 = 0.2 + 0.1 */
	expect_inval(&in, "intensities must satisfy mu1 > mu2 + mu3");
	in = base, in.mu[2] = 0.2;
	expect_inval(&in, "intensities must satisfy mu2 > mu3");
	in = base, in.mu[2] = -0.01;
	expect_inval(&in, "mu3 must be >= 0");
	in = base, in.mu[0] = NAN;
	expect_inval(&in, "intensity not finite");
	in = base, in.mu[0] = INFINITY;
	expect_inval(&in, "intensity not finite");
	in = base, in.p_mu[0] = 0.6;
	expect_inval(&in, "intensity probabilities must sum to 1");
	in = base, in.p_mu[2] = 0.0, in.p_mu[0] = 0.7;
	expect_inval(&in, "intensity probability must be in (0,1)");
	in = base, in.p_mu[0] = 0.5 + 1e-10;	/* within tolerance */
	(void)run_ok(&in);
	in = base, in.p_x = 1.0;
	expect_inval(&in, "basis probability p_x must be in (0,1)");
	in = base, in.p_x = 0.0;
	expect_inval(&in, NULL);
	in = base, in.eps_sec = 0.0;
	expect_inval(&in, "eps_sec must be in (0,1)");
	in = base, in.eps_sec = 1.0;
	expect_inval(&in, "eps_sec must be in (0,1)");
	in = base, in.eps_cor = NAN;
	expect_inval(&in, "eps_cor must be in (0,1)");
	in = base, in.lambda_ec = -1.0;
	expect_inval(&in, "lambda_ec must be a finite number >= 0");
	in = base, in.m_z[1] = in.n_z[1] + 1;
	expect_inval(&in, "more Z errors than Z detections (m_z > n_z)");
	in = base, memset(in.n_x, 0, sizeof(in.n_x));
	expect_inval(&in, "no detections in the key basis X");
	in = base, memset(in.n_z, 0, sizeof(in.n_z)), memset(in.m_z, 0, sizeof(in.m_z));
	expect_inval(&in, "no detections in basis Z: phase errors cannot be estimated");
	in = base, in.n_x[0] = QKD_DECOY_COUNT_MAX + 1;
	expect_inval(&in, "count above 2^53 (not exact as a double)");
	in = base, in.n_x[0] = in.n_x[1] = QKD_DECOY_COUNT_MAX;
	expect_inval(&in, "total count above 2^53 (not exact as a double)");

	struct qkd_decoy_counts c;
	const double mu_bad[3] = { 0.1, 0.2, 0.0 };

	memset(&c, 0x5a, sizeof(c));
	assert_int_equal(qkd_decoy_expected_counts(mu_bad, link_p, 0.5, 0.1,
						   0, 0, 1000, 1.2, &c),
			 QKD_ERR_INVAL);
	assert_int_equal(c.n_x[0], 0);
	assert_int_equal(qkd_decoy_expected_counts(link_mu, link_p, 0.5, 0.0,
						   0, 0, 1000, 1.2, &c),
			 QKD_ERR_INVAL);
	assert_int_equal(qkd_decoy_expected_counts(link_mu, link_p, 0.5, 0.1,
						   0, 0.6, 1000, 1.2, &c),
			 QKD_ERR_INVAL);
	assert_int_equal(qkd_decoy_expected_counts(link_mu, link_p, 0.5, 0.1,
						   0, 0, QKD_DECOY_COUNT_MAX + 1,
						   1.2, &c), QKD_ERR_INVAL);
	assert_int_equal(qkd_decoy_expected_counts(NULL, link_p, 0.5, 0.1,
						   0, 0, 1000, 1.2, &c),
			 QKD_ERR_INVAL);
}

/* Weak statistics are not an error: the key is 0, every bound >= 0. */
static void test_weak_statistics(void **state)
{
	(void)state;
	struct qkd_decoy_counts in = hand_example();

	for (int k = 0; k < 3; k++)
		in.n_x[k] /= 100, in.n_z[k] /= 100, in.m_z[k] /= 100;
	struct qkd_decoy_out o = run_ok(&in);

	assert_int_equal(o.key_length, 0);
	assert_true(o.key_real < 0.0);
	assert_true(o.s_x0 >= 0.0 && o.s_x1 >= 0.0 && o.v_z1 >= 0.0);
	assert_true(o.phi_x <= 0.5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hand_example),
		cmocka_unit_test(test_expected_counts),
		cmocka_unit_test(test_monotone_in_pulses),
		cmocka_unit_test(test_long_distance),
		cmocka_unit_test(test_pns_no_key),
		cmocka_unit_test(test_approaches_asymptotic),
		cmocka_unit_test(test_paper_fig1),
		cmocka_unit_test(test_invalid_input),
		cmocka_unit_test(test_weak_statistics),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
