/* test_optical_eve.c - decoy states, biased bases and Eve in the optical
 * simulator, against closed forms written out here independently of the
 * library (docs/optical-model.md sections "Decoy states" and "Eve"). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qkd/error.h"
#include "qkd/optical.h"
/* opt_sim_new_pulse_level: the pulse-level path with no Eve (internal). */
#include "../../lib/optical/optical_int.h"

#define CHUNK ((uint64_t)1 << 24)
#define KSIGMA 5.0

/* ---- helpers ---------------------------------------------------------- */

static struct qkd_link_params mk_link(enum qkd_source_kind src, double km)
{
	struct qkd_link_params p;

	qkd_link_params_default(&p);
	p.source = src;
	p.distance_km = km;
	return p;
}

static void set_decoys(struct qkd_link_params *p, double mu, double mu2, double mu3)
{
	p->intensities = 3;
	p->mu = mu;
	p->mu_decoy[0] = mu2;
	p->mu_decoy[1] = mu3;
	p->p_intensity[0] = 0.6;
	p->p_intensity[1] = 0.25;
	p->p_intensity[2] = 0.15;
}

static struct qkd_sim *sim_of(const struct qkd_link_params *p, bool pulse_level)
{
	struct qkd_sim *s = NULL;

	assert_int_equal(pulse_level ? opt_sim_new_pulse_level(&s, p) : qkd_sim_new(&s, p),
			 QKD_OK);
	assert_non_null(s);
	return s;
}

/* |obs - expect| <= KSIGMA * sigma, with a readable failure. */
static void near(const char *what, double obs, double expect, double sigma)
{
	double tol = KSIGMA * sigma + 1e-12;

	if (!(fabs(obs - expect) <= tol))
		fail_msg("%s: observed %.6g, expected %.6g (+- %.3g)", what, obs, expect, tol);
}

static double binom_sd(double p, double n)
{
	return n > 0 ? sqrt(p * (1.0 - p) / n) : 1.0;
}

/* A rate per slot: observed count / n against p, 5 sigma. */
static void near_rate(const char *what, uint64_t count, double n, double p)
{
	near(what, (double)count / n, p, binom_sd(p, n));
}

/* A fraction of m events: observed count / m against f, 5 sigma. */
static void near_frac(const char *what, uint64_t count, uint64_t m, double f)
{
	assert_true(m > 0);
	near(what, (double)count / (double)m, f, binom_sd(f, (double)m));
}

static double transmittance(const struct qkd_link_params *p)
{
	return pow(10.0, -p->fiber_loss_db_per_km * p->distance_km / 10.0);
}

/* Sifted tallies of a whole run, per intensity (from Alice's lookup). */
struct tally {
	uint64_t bob[QKD_INTENSITIES_MAX], matched[QKD_INTENSITIES_MAX];
	uint64_t errors[QKD_INTENSITIES_MAX];
	uint64_t usable, bob_basis1, alice_basis1, flagged_eve;
	uint64_t unmatched, agree_unmatched;
	/* entangled, coincidences from exactly one pair: sifted, sifted in
	 * error, sifted and flagged, flagged in any bases */
	uint64_t one_matched, one_errors, one_known, one_flagged;
	struct qkd_sim_stats st;
};

static void tally_chunk(const struct qkd_sim *s, uint64_t first, uint64_t n,
			struct qkd_det_list *l, struct tally *t)
{
	struct qkd_detection *a;
	uint64_t *slots;

	assert_int_equal(qkd_sim_bob_chunk(s, first, n, l, &t->st), QKD_OK);
	a = calloc(l->n + 1, sizeof *a);
	slots = calloc(l->n + 1, sizeof *slots);
	assert_non_null(a);
	assert_non_null(slots);
	for (size_t i = 0; i < l->n; i++)
		slots[i] = l->d[i].slot;
	assert_int_equal(qkd_sim_alice_lookup(s, slots, l->n, a), QKD_OK);
	for (size_t i = 0; i < l->n; i++) {
		const struct qkd_detection *b = &l->d[i];
		const struct qkd_det_truth *tr = &l->truth[i];
		unsigned k = a[i].intensity;
		bool match = a[i].basis == b->basis, err = a[i].value != b->value;

		assert_int_equal(b->intensity, 0);
		assert_true(k < QKD_INTENSITIES_MAX);
		t->bob[k]++;
		t->bob_basis1 += b->basis;
		t->flagged_eve += (tr->flags & QKD_TRUTH_EVE) != 0;
		if (a[i].flags & QKD_DET_NONE)
			continue;
		t->usable++;
		t->alice_basis1 += a[i].basis;
		t->matched[k] += match;
		t->errors[k] += match && err;
		t->unmatched += !match;
		t->agree_unmatched += !match && !err;
		t->one_flagged += tr->n_sent == 1 && (tr->flags & QKD_TRUTH_EVE);
		if (tr->n_sent == 1 && match) {
			t->one_matched++;
			t->one_errors += err;
			t->one_known += (tr->flags & QKD_TRUTH_EVE) != 0;
		}
	}
	free(a);
	free(slots);
}

static void run(const struct qkd_link_params *p, bool pulse_level, struct tally *t)
{
	struct qkd_sim *s = sim_of(p, pulse_level);
	struct qkd_det_list l;
	uint64_t sum = 0;

	memset(t, 0, sizeof *t);
	qkd_det_list_init(&l, true);
	for (uint64_t f = 0; f < p->pulses; f += CHUNK)
		tally_chunk(s, f, p->pulses - f < CHUNK ? p->pulses - f : CHUNK, &l, t);
	for (unsigned k = 0; k < QKD_INTENSITIES_MAX; k++) {
		assert_int_equal(t->st.by_intensity[k], t->bob[k]);
		sum += t->bob[k];
	}
	assert_int_equal(sum, t->st.clicks);
	assert_int_equal(t->st.eve_known, t->flagged_eve);
	assert_true(t->st.eve_known <= t->st.eve_touched);
	qkd_det_list_cleanup(&l);
	qkd_sim_free(s);
}

static uint64_t all_matched(const struct tally *t)
{
	return t->matched[0] + t->matched[1] + t->matched[2];
}

static uint64_t all_errors(const struct tally *t)
{
	return t->errors[0] + t->errors[1] + t->errors[2];
}

/* ---- closed forms, written out here ----------------------------------- */

/* Bob's detectors facing m photons (already at his detectors) of Alice's
 * state with bases matched, each detected with eta: P(click) and
 * P(error) = P(wrong fires, right silent) + P(both fire)/2. */
static void group_m(double m, double eta, double e, double pd, double *click, double *err)
{
	double rs = (1 - pd) * pow(1 - eta * (1 - e), m);	/* right detector silent */
	double ws = (1 - pd) * pow(1 - eta * e, m);
	double bs = (1 - pd) * (1 - pd) * pow(1 - eta, m);

	*click = 1 - bs;
	*err = rs - bs + 0.5 * (1 - rs - ws + bs);
}

/* The same facing Poisson(t) detected photons (DESIGN.md s3). */
static void group_poisson(double t, double e, double pd, double *click, double *err)
{
	double r = 1 - (1 - pd) * exp(-t * (1 - e)), w = 1 - (1 - pd) * exp(-t * e);

	*click = 1 - (1 - r) * (1 - w);
	*err = w * (1 - r) + r * w / 2;
}

static double poisson_pmf(double mu, unsigned n)
{
	return exp(-mu + n * log(mu) - lgamma(n + 1.0));
}

/* Intercept-resend on a fraction F of pulses of mean mu, per slot with
 * matched bases: P(Bob clicks), P(error), P(click and Eve knows). */
static void expect_ir(const struct qkd_link_params *p, double mu, double f,
		      double *pc, double *err, double *known)
{
	double eta = p->detector_efficiency, tr = transmittance(p), pd = p->dark_count;
	double e = p->misalignment, dark = 1 - (1 - pd) * (1 - pd);
	double ch, eh, x, cx, ex, ne = 1 - exp(-mu);

	group_poisson(mu * tr * eta, e, pd, &ch, &eh);
	/* (1 - e^-mu)(1 - e^-x) = 1 - e^{-mu T eta} */
	x = -log(1 - (1 - exp(-mu * tr * eta)) / ne);
	group_poisson(x, e, pd, &cx, &ex);
	*pc = (1 - f) * ch + f * (exp(-mu) * dark + ne * cx);
	*err = (1 - f) * eh + f * (exp(-mu) * dark / 2 + ne * (ex / 2 + cx / 4));
	*known = f * ne * cx / 2;
}

/* PNS at mean mu with the forwarding probabilities of signal mu0. */
static void pns_split(double mu0, double tr, double eta, double *s1, double *s2)
{
	double tau = 1 - exp(-mu0 * tr * eta), m = 0, single = mu0 * exp(-mu0) * eta;

	for (unsigned n = 2; n < 200; n++)
		m += poisson_pmf(mu0, n) * (1 - pow(1 - eta, n - 1.0));
	if (m <= tau) {
		*s2 = 1;
		*s1 = fmin(1, (tau - m) / single);
	} else {
		*s1 = 0;
		*s2 = tau / m;
	}
}

static void expect_pns(const struct qkd_link_params *p, double mu, double *pc, double *err,
		       double *known)
{
	double eta = p->detector_efficiency, pd = p->dark_count, e = p->misalignment;
	double s1, s2, c, r, c0, r0;

	pns_split(p->mu, transmittance(p), eta, &s1, &s2);
	group_m(0, eta, e, pd, &c0, &r0);
	*pc = exp(-mu) * c0;
	*err = exp(-mu) * r0;
	*known = 0;
	group_m(1, eta, e, pd, &c, &r);
	*pc += poisson_pmf(mu, 1) * (s1 * c + (1 - s1) * c0);
	*err += poisson_pmf(mu, 1) * (s1 * r + (1 - s1) * r0);
	for (unsigned n = 2; n < 200; n++) {
		double pn = poisson_pmf(mu, n);

		group_m(n - 1.0, eta, e, pd, &c, &r);
		*pc += pn * (s2 * c + (1 - s2) * c0);
		*err += pn * (s2 * r + (1 - s2) * r0);
		*known += pn * s2 * c;
	}
}

/* Beamsplitting: Eve's photons Poisson(mu F), Bob's detected ones
 * Poisson(mu (1-F) min(1, T/(1-F)) eta), independent. */
static void expect_bs(const struct qkd_link_params *p, double mu, double f, double *pc,
		      double *err, double *known)
{
	double line = f < 1 ? fmin(1, transmittance(p) / (1 - f)) : 0;

	group_poisson(mu * (1 - f) * line * p->detector_efficiency, p->misalignment,
		      p->dark_count, pc, err);
	*known = (1 - exp(-mu * f)) * *pc;
}

/* Checks a run's per-intensity click rates and QBER against a model:
 * model(p, mu_k, &pc, &err, &known) per slot of that intensity. */
typedef void (*model_fn)(const struct qkd_link_params *p, double mu, double *pc,
			 double *err, double *known);

static void check_model(const char *name, const struct qkd_link_params *p,
			const struct tally *t, model_fn model)
{
	double n = (double)p->pulses, known = 0, px = p->p_x;
	double sift = px * px + (1 - px) * (1 - px);
	char what[128];

	for (unsigned k = 0; k < p->intensities; k++) {
		double pk = p->intensities == 1 ? 1.0 : p->p_intensity[k], pc, err, kn;

		model(p, qkd_link_intensity(p, k), &pc, &err, &kn);
		snprintf(what, sizeof what, "%s: clicks per pulse, intensity %u", name, k);
		near_rate(what, t->bob[k], n, pk * pc);
		snprintf(what, sizeof what, "%s: QBER, intensity %u", name, k);
		near_frac(what, t->errors[k], t->matched[k], err / pc);
		snprintf(what, sizeof what, "%s: sifted fraction, intensity %u", name, k);
		near_frac(what, t->matched[k], t->bob[k], sift);
		known += pk * kn;
	}
	snprintf(what, sizeof what, "%s: Eve-known clicks per pulse", name);
	near_rate(what, t->st.eve_known, n, known);
	/* Whatever Eve does, Bob's bit in the other basis than Alice's is
	 * independent of hers. */
	snprintf(what, sizeof what, "%s: agreement in unmatched bases", name);
	near_frac(what, t->agree_unmatched, t->unmatched, 0.5);
}

static double g_f;	/* the fraction the wrappers below pass on */

static void model_honest(const struct qkd_link_params *p, double mu, double *pc,
			 double *err, double *known)
{
	group_poisson(mu * transmittance(p) * p->detector_efficiency, p->misalignment,
		      p->dark_count, pc, err);
	*known = 0;
}

static void model_ir(const struct qkd_link_params *p, double mu, double *pc, double *err,
		     double *known)
{
	expect_ir(p, mu, g_f, pc, err, known);
}

static void model_bs(const struct qkd_link_params *p, double mu, double *pc, double *err,
		     double *known)
{
	expect_bs(p, mu, g_f, pc, err, known);
}

/* ---- parameters ------------------------------------------------------- */

static void test_new_defaults(void **state)
{
	struct qkd_link_params p;

	(void)state;
	qkd_link_params_default(&p);
	assert_int_equal(p.intensities, 1);
	assert_true(p.mu_decoy[0] == 0 && p.mu_decoy[1] == 0);
	assert_true(p.p_intensity[0] == 1 && p.p_intensity[1] == 0 && p.p_intensity[2] == 0);
	assert_true(p.p_x == 0.5);
	assert_int_equal(p.eve, QKD_EVE_NONE);
	assert_true(p.eve_fraction == 0);
	assert_int_equal(qkd_link_params_check(&p, NULL), QKD_OK);
}

struct bad_case {
	const char *field;	/* must appear in the message */
	void (*apply)(struct qkd_link_params *p);
};

#define BAD(name, stmt) \
	static void bad_##name(struct qkd_link_params *p) { stmt; }
#define DECOYS set_decoys(p, 0.5, 0.1, 0.01)
BAD(int_two, p->intensities = 2)
BAD(int_zero, p->intensities = 0)
BAD(int_spdc, (DECOYS, p->source = QKD_SOURCE_ENTANGLED))
BAD(dec_sum, (DECOYS, p->mu_decoy[0] = 0.45, p->mu_decoy[1] = 0.1))
BAD(dec_order, (DECOYS, p->mu_decoy[0] = 0.01, p->mu_decoy[1] = 0.1))
BAD(dec_equal, (DECOYS, p->mu_decoy[1] = 0.1))
BAD(dec_neg, (DECOYS, p->mu_decoy[1] = -0.01))
BAD(dec_nan, (DECOYS, p->mu_decoy[0] = NAN))
BAD(pk_zero, (DECOYS, p->p_intensity[2] = 0, p->p_intensity[0] = 0.75))
BAD(pk_one, (DECOYS, p->p_intensity[0] = 1))
BAD(pk_sum, (DECOYS, p->p_intensity[0] = 0.5))
BAD(pk_nan, (DECOYS, p->p_intensity[1] = NAN))
BAD(px_zero, p->p_x = 0)
BAD(px_one, p->p_x = 1)
BAD(px_nan, p->p_x = NAN)
BAD(eve_bad, p->eve = (enum qkd_eve_attack)9)
BAD(ef_neg, (p->eve = QKD_EVE_BEAMSPLIT, p->eve_fraction = -0.1))
BAD(ef_big, (p->eve = QKD_EVE_BEAMSPLIT, p->eve_fraction = 1.5))
BAD(ef_nan, (p->eve = QKD_EVE_INTERCEPT_RESEND, p->eve_fraction = NAN))
BAD(pns_spdc, (p->eve = QKD_EVE_PNS, p->source = QKD_SOURCE_ENTANGLED))

static void test_check_decoy_eve(void **state)
{
	static const struct bad_case cases[] = {
		{ "intensities", bad_int_two }, { "intensities", bad_int_zero },
		{ "weak-coherent", bad_int_spdc },
		{ "mu > mu2 + mu3", bad_dec_sum }, { "mu2 > mu3", bad_dec_order },
		{ "mu2 > mu3", bad_dec_equal }, { "mu3 >= 0", bad_dec_neg },
		{ "decoy intensities", bad_dec_nan },
		{ "p_intensity", bad_pk_zero }, { "p_intensity", bad_pk_one },
		{ "p_intensity", bad_pk_sum }, { "p_intensity", bad_pk_nan },
		{ "p_x", bad_px_zero }, { "p_x", bad_px_one }, { "p_x", bad_px_nan },
		{ "eve", bad_eve_bad },
		{ "eve_fraction", bad_ef_neg }, { "eve_fraction", bad_ef_big },
		{ "eve_fraction", bad_ef_nan }, { "pns", bad_pns_spdc },
	};
	struct qkd_link_params p;
	const char *why = "x";

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct qkd_sim *s = (struct qkd_sim *)&p;

		qkd_link_params_default(&p);
		cases[i].apply(&p);
		assert_int_equal(qkd_link_params_check(&p, &why), QKD_ERR_INVAL);
		assert_non_null(why);
		if (strstr(why, cases[i].field) == NULL)
			fail_msg("case %zu: message \"%s\" does not name %s", i, why,
				 cases[i].field);
		assert_int_equal(qkd_sim_new(&s, &p), QKD_ERR_INVAL);
		assert_null(s);
	}
	qkd_link_params_default(&p);
	p.mu = 0.5;
	p.p_intensity[1] = 0.7;	/* ignored with one intensity */
	p.mu_decoy[0] = 9;
	assert_int_equal(qkd_link_params_check(&p, NULL), QKD_OK);
	set_decoys(&p, 0.5, 0.1, 0.0);	/* a vacuum decoy is allowed */
	p.p_intensity[0] = 0.6 + 5e-10;	/* sum within 1e-9 */
	p.p_x = 0.9;
	p.eve = QKD_EVE_PNS;
	assert_int_equal(qkd_link_params_check(&p, &why), QKD_OK);
	assert_null(why);
	qkd_link_params_default(&p);
	p.source = QKD_SOURCE_ENTANGLED;
	p.eve = QKD_EVE_BEAMSPLIT;
	p.eve_fraction = 1;
	assert_int_equal(qkd_link_params_check(&p, NULL), QKD_OK);
	qkd_link_params_default(&p);
	p.intensities = 2;
	assert_int_equal(qkd_link_params_check(&p, &why), QKD_ERR_INVAL);
	assert_string_equal(why, "intensities must be 1 or 3");
	set_decoys(&p, 0.5, 0.3, 0.3);
	assert_int_equal(qkd_link_params_check(&p, &why), QKD_ERR_INVAL);
	assert_string_equal(why,
			    "decoy intensities must satisfy mu > mu2 + mu3 and mu2 > mu3 >= 0");
}

static void test_eve_parse(void **state)
{
	static const struct {
		const char *spec;
		enum qkd_eve_attack a;
		double f;
	} good[] = {
		{ "none", QKD_EVE_NONE, 0 },
		{ "intercept-resend:0.5", QKD_EVE_INTERCEPT_RESEND, 0.5 },
		{ "intercept-resend:1", QKD_EVE_INTERCEPT_RESEND, 1 },
		{ "intercept-resend:0", QKD_EVE_INTERCEPT_RESEND, 0 },
		{ "intercept-resend:.25", QKD_EVE_INTERCEPT_RESEND, 0.25 },
		{ "pns", QKD_EVE_PNS, 0 },
		{ "beamsplit:0.3", QKD_EVE_BEAMSPLIT, 0.3 },
		{ "beamsplit:1e-1", QKD_EVE_BEAMSPLIT, 0.1 },
		{ "beamsplit:1.0", QKD_EVE_BEAMSPLIT, 1 },
	};
	static const char *const bad[] = {
		"", "eve", "intercept-resend", "intercept-resend:", "intercept-resend:abc",
		"intercept-resend:1.5", "intercept-resend:-0.1", "intercept-resend:0.5x",
		"intercept-resend:nan", "intercept-resend:inf", "intercept-resend:0x1p-1",
		"intercept-resend: 0.5", "intercept-resend:0.5 ", "intercept-resend:0.5:1",
		"intercept-resend 0.5", "intercept-resendx:0.5", "Intercept-resend:0.5",
		"pns:0.3", "pns:", "pnsx", "beamsplit", "beamsplit:1.0000001", "none:0",
		"none ", "beamsplit:1e", "beamsplit:.",
	};
	struct qkd_link_params p;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		qkd_link_params_default(&p);
		p.eve_fraction = 0.77;
		why = "x";
		assert_int_equal(qkd_eve_parse(good[i].spec, &p, &why), QKD_OK);
		assert_null(why);
		assert_int_equal(p.eve, good[i].a);
		assert_true(p.eve_fraction == good[i].f);
		assert_int_equal(qkd_link_params_check(&p, NULL), QKD_OK);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		qkd_link_params_default(&p);
		why = NULL;
		if (qkd_eve_parse(bad[i], &p, &why) != QKD_ERR_INVAL)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_non_null(why);
		assert_int_equal(p.eve, QKD_EVE_NONE);	/* untouched */
		assert_true(p.eve_fraction == 0);
	}
	assert_int_equal(qkd_eve_parse(NULL, &p, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_eve_parse("pns:0.3", &p, NULL), QKD_ERR_INVAL);
	/* Names round-trip through the parser. */
	for (int a = QKD_EVE_NONE; a <= QKD_EVE_BEAMSPLIT; a++) {
		char spec[64];
		bool frac = a == QKD_EVE_INTERCEPT_RESEND || a == QKD_EVE_BEAMSPLIT;

		snprintf(spec, sizeof spec, "%s%s", qkd_eve_name((enum qkd_eve_attack)a),
			 frac ? ":0.125" : "");
		assert_int_equal(qkd_eve_parse(spec, &p, NULL), QKD_OK);
		assert_int_equal(p.eve, a);
		assert_true(p.eve_fraction == (frac ? 0.125 : 0));
	}
	assert_string_equal(qkd_eve_name(QKD_EVE_PNS), "pns");
	assert_string_equal(qkd_eve_name((enum qkd_eve_attack)42), "unknown");
}

static void test_intensity_expected(void **state)
{
	struct qkd_link_params p = mk_link(QKD_SOURCE_WEAK_COHERENT, 25), q;
	double pc, e, pc0, e0, sum = 0, err = 0;

	(void)state;
	/* One intensity: the numbers of a link without decoys. */
	qkd_link_expected(&p, &pc, &e);
	qkd_link_expected_intensity(&p, 0, &pc0, &e0);
	assert_true(pc == pc0 && e == e0);
	assert_true(qkd_link_intensity(&p, 0) == p.mu);
	set_decoys(&p, 0.5, 0.1, 0.0);
	assert_true(qkd_link_intensity(&p, 1) == 0.1 && qkd_link_intensity(&p, 2) == 0.0);
	for (unsigned k = 0; k < 3; k++) {
		double ck, ek, fc, fe;

		q = p;
		q.intensities = 1;
		q.mu = qkd_link_intensity(&p, k);
		group_poisson(q.mu * transmittance(&p) * p.detector_efficiency,
			      p.misalignment, p.dark_count, &fc, &fe);
		qkd_link_expected_intensity(&p, k, &ck, &ek);
		assert_true(fabs(ck / fc - 1) < 1e-9);
		assert_true(fabs(ek - fe / fc) < 1e-9);
		sum += p.p_intensity[k] * fc;
		err += p.p_intensity[k] * fe;
	}
	/* The vacuum decoy: dark counts only, QBER 1/2. */
	qkd_link_expected_intensity(&p, 2, &pc, &e);
	assert_true(fabs(e - 0.5) < 1e-12);
	qkd_link_expected(&p, &pc, &e);
	assert_true(fabs(pc / sum - 1) < 1e-9);
	assert_true(fabs(e - err / sum) < 1e-9);
	/* Eve and p_x do not change the honest expectation. */
	q = p;
	q.eve = QKD_EVE_PNS;
	q.p_x = 0.8;
	qkd_link_expected(&q, &pc0, &e0);
	assert_true(pc0 == pc && e0 == e);
}

/* ---- the default link is unchanged ------------------------------------ */

static uint64_t mixh(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 29);
}

/* Bob's detections with truth, and Alice's lookup of his slots, hashed. */
static uint64_t checksum(const struct qkd_link_params *p, uint64_t first, uint64_t count)
{
	struct qkd_sim *s = sim_of(p, false);
	struct qkd_det_list l;
	struct qkd_detection *a;
	uint64_t *sl, h = 0;

	qkd_det_list_init(&l, true);
	assert_int_equal(qkd_sim_bob_chunk(s, first, count, &l, NULL), QKD_OK);
	a = calloc(l.n + 1, sizeof *a);
	sl = calloc(l.n + 1, sizeof *sl);
	assert_non_null(a);
	assert_non_null(sl);
	for (size_t i = 0; i < l.n; i++)
		sl[i] = l.d[i].slot;
	assert_int_equal(qkd_sim_alice_lookup(s, sl, l.n, a), QKD_OK);
	for (size_t i = 0; i < l.n; i++) {
		const struct qkd_det_truth *t = &l.truth[i];

		h = mixh(h, l.d[i].slot);
		h = mixh(h, (uint64_t)l.d[i].basis | (uint64_t)l.d[i].value << 8 |
			    (uint64_t)l.d[i].flags << 16 | (uint64_t)t->n_sent << 24 |
			    (uint64_t)t->n_arrived << 32 | (uint64_t)t->n_detected << 40 |
			    (uint64_t)t->flags << 48);
		h = mixh(h, (uint64_t)a[i].basis | (uint64_t)a[i].value << 8 |
			    (uint64_t)a[i].flags << 16);
	}
	free(a);
	free(sl);
	qkd_det_list_cleanup(&l);
	qkd_sim_free(s);
	return h;
}

/* The values were computed with the simulator as it was before decoys,
 * biased bases and Eve were added: a link with one intensity, p_x = 1/2
 * and no Eve must keep producing exactly these detections (the pinned keys
 * of tests/cli/sim.sh depend on it). A change here is a change of every
 * simulated run. */
static void test_default_regression(void **state)
{
	struct qkd_link_params p;

	(void)state;
	qkd_link_params_default(&p);
	p.seed = 7;
	p.pulses = (uint64_t)1 << 30;
	assert_true(checksum(&p, 0, 1u << 22) == 0x7d1641e32fb0892bULL);
	assert_true(checksum(&p, 98765432, 3000001) == 0xafe1bf4790a2db91ULL);
	p.rng_bias = 0.6;
	assert_true(checksum(&p, 1000, 1u << 22) == 0x93d33e0bb042193bULL);
	qkd_link_params_default(&p);
	p.seed = 7;
	p.pulses = (uint64_t)1 << 30;
	p.source = QKD_SOURCE_ENTANGLED;
	assert_true(checksum(&p, 0, 1u << 22) == 0xbee7a1eb699a442aULL);
	assert_true(checksum(&p, 98765432, 3000001) == 0x51d024b5037ff455ULL);
}

/* ---- decoys and biased bases ------------------------------------------ */

/* Alice's intensity and basis frequencies, Bob's basis frequency, over
 * every slot of a range; her raw choices equal her lookup. */
static void test_choice_frequencies(void **state)
{
	struct qkd_link_params p = mk_link(QKD_SOURCE_WEAK_COHERENT, 10);
	const uint64_t n = 1u << 21;
	struct qkd_detection *d = calloc(n, sizeof *d);
	uint64_t *slots = calloc(n, sizeof *slots), cnt[3] = { 0 }, b1 = 0, v1 = 0;
	struct qkd_bits basis, value;
	struct qkd_sim *s;

	(void)state;
	assert_non_null(d);
	assert_non_null(slots);
	set_decoys(&p, 0.5, 0.1, 0.01);
	p.p_x = 0.8;
	p.rng_bias = 0.55;
	s = sim_of(&p, false);
	for (uint64_t i = 0; i < n; i++)
		slots[i] = 12345 + i;
	assert_int_equal(qkd_sim_alice_lookup(s, slots, n, d), QKD_OK);
	for (uint64_t i = 0; i < n; i++) {
		cnt[d[i].intensity]++;
		b1 += d[i].basis;
		v1 += d[i].value;
	}
	for (unsigned k = 0; k < 3; k++)
		near_frac("intensity frequency", cnt[k], n, p.p_intensity[k]);
	near_frac("Alice's P(basis X)", b1, n, p.p_x);
	near_frac("Alice's P(value 1)", v1, n, p.rng_bias);
	assert_int_equal(qkd_bits_init(&basis, 300), QKD_OK);
	assert_int_equal(qkd_bits_init(&value, 300), QKD_OK);
	assert_int_equal(qkd_sim_alice_choices(s, 12345, 300, &basis, &value), QKD_OK);
	for (size_t i = 0; i < 300; i++) {
		assert_int_equal(qkd_bits_get(&basis, i), d[i].basis);
		assert_int_equal(qkd_bits_get(&value, i), d[i].value);
	}
	qkd_bits_cleanup(&basis);
	qkd_bits_cleanup(&value);
	qkd_sim_free(s);
	/* p_x = 1/2 with decoys: the basis follows rng_bias, as without. */
	p.p_x = 0.5;
	p.rng_bias = 0.5;
	s = sim_of(&p, false);
	b1 = 0;
	assert_int_equal(qkd_sim_alice_lookup(s, slots, n, d), QKD_OK);
	for (uint64_t i = 0; i < n; i++)
		b1 += d[i].basis;
	near_frac("Alice's P(basis X), p_x 1/2", b1, n, 0.5);
	qkd_sim_free(s);
	free(d);
	free(slots);
}

/* Per-intensity click rates and QBER on the detection-level path; Bob's
 * basis frequency p_x (clicks do not depend on it) and the sifted fraction
 * p_x^2 + (1-p_x)^2. */
static void test_decoy_rates(void **state)
{
	static const double px[2] = { 0.5, 0.75 };

	(void)state;
	for (int i = 0; i < 2; i++) {
		struct qkd_link_params p = mk_link(QKD_SOURCE_WEAK_COHERENT, 25);
		struct tally t;

		set_decoys(&p, 0.6, 0.15, i == 0 ? 0.0 : 0.02);
		p.p_x = px[i];
		p.dark_count = 2e-4;
		p.pulses = 60000000;
		p.seed = 31 + (uint64_t)i;
		run(&p, false, &t);
		check_model(i == 0 ? "decoys, vacuum" : "decoys, p_x 0.75", &p, &t,
			    model_honest);
		near_frac("Bob's P(basis X)", t.bob_basis1, t.st.clicks, p.p_x);
		near_frac("Alice's P(basis X) at clicks", t.alice_basis1, t.usable, p.p_x);
		assert_int_equal(t.st.eve_touched, 0);
	}
}

/* ---- the pulse-level path without Eve -------------------------------- */

static void test_pulse_level_honest(void **state)
{
	(void)state;
	for (int src = 0; src < 2; src++) {
		struct qkd_link_params p = mk_link((enum qkd_source_kind)src, 5);
		struct tally t;
		double pc, q, n;

		p.mu = 0.6;
		p.detector_efficiency = 0.3;
		p.dark_count = 2e-3;
		p.misalignment = 0.05;
		p.pulses = 3000000;
		p.seed = 50 + (uint64_t)src;
		run(&p, true, &t);
		qkd_link_expected(&p, &pc, &q);
		n = (double)p.pulses;
		near_rate("pulse level, usable events", t.usable, n, pc);
		near_frac("pulse level, QBER", all_errors(&t), all_matched(&t), q);
		if (src == QKD_SOURCE_WEAK_COHERENT) {
			double eta = transmittance(&p) * p.detector_efficiency, tt = p.mu * eta;
			double pd = p.dark_count, pdark, pmulti;

			pdark = exp(-tt) * (1 - (1 - pd) * (1 - pd));
			pmulti = qkd_multiphoton_prob(p.mu) - (1 - pd) * (1 - pd) *
				 (exp(-tt) - exp(-p.mu) * (1 + p.mu * (1 - eta)));
			near_rate("pulse level, dark-only clicks", t.st.dark_only, n, pdark);
			near_rate("pulse level, multi-photon clicks", t.st.multi_photon, n,
				  pmulti);
			assert_int_equal(t.st.coincidences, 0);
		} else {
			double pb = 1 - pow(1 - p.dark_count, 2) *
					 exp(-p.mu * transmittance(&p) * p.detector_efficiency);

			near_rate("pulse level, Bob's clicks", t.st.clicks, n, pb);
			assert_int_equal(t.st.coincidences, t.usable);
		}
		assert_int_equal(t.st.eve_known, 0);
		assert_int_equal(t.st.eve_touched, 0);
	}
	{
		/* Decoys on the pulse-level path. */
		struct qkd_link_params p = mk_link(QKD_SOURCE_WEAK_COHERENT, 15);
		struct tally t;

		set_decoys(&p, 0.6, 0.2, 0.0);
		p.detector_efficiency = 0.2;
		p.dark_count = 5e-4;
		p.pulses = 3000000;
		p.p_x = 0.6;
		run(&p, true, &t);
		check_model("pulse level, decoys", &p, &t, model_honest);
	}
}

/* ---- Eve, weak-coherent ------------------------------------------------ */

static void test_intercept_resend(void **state)
{
	static const double fr[3] = { 1.0, 0.5, 0.0 };

	(void)state;
	for (int i = 0; i < 3; i++) {
		struct qkd_link_params p = mk_link(QKD_SOURCE_WEAK_COHERENT, 10);
		struct tally t;
		double pc, err, kn, hc, hq;
		char name[64];

		p.eve = QKD_EVE_INTERCEPT_RESEND;
		p.eve_fraction = g_f = fr[i];
		p.pulses = 20000000;
		p.seed = 70 + (uint64_t)i;
		run(&p, false, &t);
		snprintf(name, sizeof name, "intercept-resend:%g", fr[i]);
		check_model(name, &p, &t, model_ir);
		/* The headline numbers: click rate of the honest link, QBER about
		 * e_honest + F/4, Eve knows about F/2 of the clicks. */
		expect_ir(&p, p.mu, fr[i], &pc, &err, &kn);
		qkd_link_expected(&p, &hc, &hq);
		assert_true(fabs(pc / hc - 1) < 1e-9);
		assert_true(fabs(err / pc - (hq + fr[i] / 4)) < 0.01);
		near_frac("intercepted clicks", t.st.eve_touched, t.st.clicks, fr[i]);
		assert_true(fabs((double)t.st.eve_known / (double)t.st.clicks -
				 fr[i] / 2) < 0.01);
	}
	{
		/* Decoys: she resends each intensity's own mean, so every
		 * intensity keeps its honest click rate. */
		struct qkd_link_params p = mk_link(QKD_SOURCE_WEAK_COHERENT, 20);
		struct tally t;

		set_decoys(&p, 0.5, 0.1, 0.02);
		p.eve = QKD_EVE_INTERCEPT_RESEND;
		p.eve_fraction = g_f = 0.7;
		p.pulses = 20000000;
		run(&p, false, &t);
		check_model("intercept-resend, decoys", &p, &t, model_ir);
	}
}

static void test_pns(void **state)
{
	static const double km[3] = { 10, 50, 0 };

	(void)state;
	for (int i = 0; i < 3; i++) {
		struct qkd_link_params p = mk_link(QKD_SOURCE_WEAK_COHERENT, km[i]);
		struct tally t;
		double pc, err, kn, hc, hq, s1, s2;
		char name[64];

		p.eve = QKD_EVE_PNS;
		p.mu = i == 1 ? 0.8 : 0.3;
		p.pulses = i == 1 ? 8000000 : 20000000;
		p.seed = 80 + (uint64_t)i;
		run(&p, false, &t);
		snprintf(name, sizeof name, "pns at %g km", km[i]);
		check_model(name, &p, &t, expect_pns);
		expect_pns(&p, p.mu, &pc, &err, &kn);
		qkd_link_expected(&p, &hc, &hq);
		pns_split(p.mu, transmittance(&p), p.detector_efficiency, &s1, &s2);
		if (km[i] > 0) {
			/* She hides: the honest click rate and QBER. */
			assert_true(fabs(pc / hc - 1) < 1e-3);
			near_frac("pns QBER vs honest", all_errors(&t), all_matched(&t), hq);
		} else {
			/* No fiber to hide in: s1 capped, fewer clicks. */
			assert_true(s1 == 1 && s2 == 1 && pc < hc * 0.99);
		}
		/* Every forwarded multi-photon pulse is hers. */
		assert_true(t.st.eve_known <= t.st.multi_photon);
	}
	{
		/* Decoys: the same s1, s2 for every intensity give the decoys a
		 * click rate that is not the honest one. */
		struct qkd_link_params p = mk_link(QKD_SOURCE_WEAK_COHERENT, 50);
		struct tally t;
		double pc, err, kn, hc;

		set_decoys(&p, 0.8, 0.2, 0.02);
		p.eve = QKD_EVE_PNS;
		p.dark_count = 1e-4;
		p.pulses = 8000000;
		run(&p, false, &t);
		check_model("pns, decoys", &p, &t, expect_pns);
		expect_pns(&p, p.mu_decoy[0], &pc, &err, &kn);
		qkd_link_expected_intensity(&p, 1, &hc, NULL);
		assert_true(pc < hc * 0.8);
	}
}

static void test_beamsplit(void **state)
{
	static const double fr[3] = { 0.3, 0.6, 1.0 };	/* T = 0.63 at 10 km */

	(void)state;
	for (int i = 0; i < 3; i++) {
		struct qkd_link_params p = mk_link(QKD_SOURCE_WEAK_COHERENT, 10);
		struct tally t;
		double pc, err, kn, hc;
		char name[64];

		p.mu = 0.5;
		p.eve = QKD_EVE_BEAMSPLIT;
		p.eve_fraction = g_f = fr[i];
		p.pulses = 6000000;
		p.seed = 90 + (uint64_t)i;
		run(&p, false, &t);
		snprintf(name, sizeof name, "beamsplit:%g", fr[i]);
		check_model(name, &p, &t, model_bs);
		expect_bs(&p, p.mu, fr[i], &pc, &err, &kn);
		qkd_link_expected(&p, &hc, NULL);
		if (fr[i] <= 1 - transmittance(&p))
			assert_true(fabs(pc / hc - 1) < 1e-9);
		else
			assert_true(pc < hc * 0.95);
		assert_int_equal(t.st.eve_known, t.st.eve_touched);
		if (fr[i] == 1.0)
			assert_int_equal(t.st.dark_only, t.st.clicks);
	}
}

/* ---- Eve, entangled ------------------------------------------------------ */

/* Coincidences of exactly one pair with no dark counts and e_opt: Eve
 * measures Bob's photon in Alice's basis half the time (no error, she
 * knows the bit) and in the other basis otherwise (error 1/2): QBER 1/4 +
 * e_opt/2 and Eve knows half. Bob's click rate is the honest one while her
 * line T_E is below 1. */
static void test_entangled_intercept(void **state)
{
	struct qkd_link_params p = mk_link(QKD_SOURCE_ENTANGLED, 10);
	struct tally t;
	double pb;

	(void)state;
	p.eve = QKD_EVE_INTERCEPT_RESEND;
	p.eve_fraction = 1;
	p.dark_count = 0;
	p.detector_efficiency = 0.3;
	p.pulses = 20000000;
	p.seed = 101;
	run(&p, false, &t);
	near_frac("entangled intercept-resend, one-pair QBER", t.one_errors, t.one_matched,
		  0.25 + p.misalignment / 2);
	near_frac("entangled intercept-resend, Eve knows", t.one_known, t.one_matched, 0.5);
	near_frac("entangled intercept-resend, unmatched agreement", t.agree_unmatched,
		  t.unmatched, 0.5);
	pb = 1 - exp(-p.mu * transmittance(&p) * p.detector_efficiency);
	near_rate("entangled intercept-resend, Bob's clicks", t.st.clicks, (double)p.pulses, pb);
	assert_int_equal(t.st.eve_touched, t.st.clicks);
	/* Only one-pair coincidences are ever flagged. */
	assert_int_equal(t.st.eve_known, t.one_flagged);
	assert_true(t.one_known > 1000);
}

/* Beamsplitting an entangled link: Eve holds Poisson(mu F) photons,
 * independent of what Bob detects; she knows Alice's bit only when the one
 * pair's twin is hers and Bob's click is a dark count. */
static void test_entangled_beamsplit(void **state)
{
	struct qkd_link_params p = mk_link(QKD_SOURCE_ENTANGLED, 10);
	struct tally t;
	double n, pb, eta, pd, f = 0.3, known;

	(void)state;
	p.eve = QKD_EVE_BEAMSPLIT;
	p.eve_fraction = f;
	p.dark_count = 2e-3;
	p.pulses = 20000000;
	p.seed = 102;
	run(&p, false, &t);
	n = (double)p.pulses;
	eta = p.detector_efficiency;
	pd = p.dark_count;
	pb = 1 - (1 - pd) * (1 - pd) * exp(-p.mu * transmittance(&p) * eta);
	near_rate("entangled beamsplit, Bob's clicks", t.st.clicks, n, pb);
	near_frac("entangled beamsplit, touched", t.st.eve_touched, t.st.clicks,
		  1 - exp(-p.mu * f));
	/* one pair, hers, Alice's photon detected with her other detector
	 * silent, Bob's click a dark count */
	known = p.mu * exp(-p.mu) * f * eta * (1 - pd) * (1 - (1 - pd) * (1 - pd));
	near("entangled beamsplit, Eve-known clicks", (double)t.st.eve_known, known * n,
	     sqrt(known * n));
	{
		double pc, q;

		qkd_link_expected(&p, &pc, &q);
		near_frac("entangled beamsplit, QBER", all_errors(&t), all_matched(&t), q);
	}
}

/* ---- invariants, chunking, views -------------------------------------- */

static bool same_list(const struct qkd_det_list *x, const struct qkd_det_list *y)
{
	if (x->n != y->n)
		return false;
	for (size_t i = 0; i < x->n; i++) {
		const struct qkd_detection *a = &x->d[i], *b = &y->d[i];

		if (a->slot != b->slot || a->basis != b->basis || a->value != b->value ||
		    a->flags != b->flags || a->intensity != b->intensity)
			return false;
		if (x->truth != NULL && y->truth != NULL &&
		    memcmp(&x->truth[i], &y->truth[i], sizeof x->truth[i]) != 0)
			return false;
	}
	return true;
}

/* Concatenated chunks of odd sizes equal one run, truth included. */
static void chunks_equal_whole(const struct qkd_sim *s, uint64_t pulses, int who)
{
	static const uint64_t sizes[] = { 1, 7, 65535, 65537, 1, 100003, 65536, 3,
					  250000, 131072, 999, 400001 };
	struct qkd_det_list one, part, cat;
	uint64_t first = 0;
	size_t k = 0;

	qkd_det_list_init(&one, true);
	qkd_det_list_init(&part, true);
	qkd_det_list_init(&cat, true);
	assert_int_equal(who ? qkd_sim_bob_chunk(s, 0, pulses, &one, NULL) :
			 qkd_sim_alice_chunk(s, 0, pulses, &one, NULL), QKD_OK);
	cat.d = calloc(one.n + 1, sizeof *cat.d);
	cat.truth = calloc(one.n + 1, sizeof *cat.truth);
	assert_true(cat.d != NULL && cat.truth != NULL);
	cat.cap = one.n + 1;
	while (first < pulses) {
		uint64_t n = sizes[k++ % (sizeof sizes / sizeof sizes[0])];

		n = n < pulses - first ? n : pulses - first;
		assert_int_equal(who ? qkd_sim_bob_chunk(s, first, n, &part, NULL) :
				 qkd_sim_alice_chunk(s, first, n, &part, NULL), QKD_OK);
		assert_true(cat.n + part.n <= one.n);
		if (part.n > 0) {
			memcpy(cat.d + cat.n, part.d, part.n * sizeof *part.d);
			memcpy(cat.truth + cat.n, part.truth, part.n * sizeof *part.truth);
		}
		cat.n += part.n;
		first += n;
	}
	assert_true(one.n > 1000);
	assert_true(same_list(&one, &cat));
	qkd_det_list_cleanup(&one);
	qkd_det_list_cleanup(&part);
	qkd_det_list_cleanup(&cat);
}

static void test_eve_chunking(void **state)
{
	static const struct {
		enum qkd_source_kind src;
		const char *eve;
		bool decoys;
	} cfg[] = {
		{ QKD_SOURCE_WEAK_COHERENT, "intercept-resend:0.5", false },
		{ QKD_SOURCE_WEAK_COHERENT, "pns", true },
		{ QKD_SOURCE_WEAK_COHERENT, "beamsplit:0.4", false },
		{ QKD_SOURCE_WEAK_COHERENT, "none", true },
		{ QKD_SOURCE_ENTANGLED, "intercept-resend:0.5", false },
		{ QKD_SOURCE_ENTANGLED, "beamsplit:0.4", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
		struct qkd_link_params p = mk_link(cfg[i].src, 0);
		struct qkd_sim *s;

		assert_int_equal(qkd_eve_parse(cfg[i].eve, &p, NULL), QKD_OK);
		if (cfg[i].decoys)
			set_decoys(&p, 0.5, 0.1, 0.01);
		p.pulses = 2500000;
		s = sim_of(&p, false);
		chunks_equal_whole(s, p.pulses, 1);
		if (cfg[i].src == QKD_SOURCE_ENTANGLED)
			chunks_equal_whole(s, p.pulses, 0);
		qkd_sim_free(s);
	}
}

/* Truth invariants with Eve; Alice's entangled lookup equals her own list
 * restricted to Bob's slots; the same seed gives the same run. */
static void test_eve_views(void **state)
{
	static const char *const eves[] = { "intercept-resend:0.6", "beamsplit:0.5", "pns" };

	(void)state;
	for (int src = 0; src < 2; src++) {
		for (int e = 0; e < 3; e++) {
			struct qkd_link_params p = mk_link((enum qkd_source_kind)src, 20);
			struct qkd_det_list la, lb, lb2;
			struct qkd_detection *look;
			uint64_t *slots;
			struct qkd_sim *s;
			size_t j = 0;

			if (src == QKD_SOURCE_ENTANGLED && e == 2)
				continue;
			assert_int_equal(qkd_eve_parse(eves[e], &p, NULL), QKD_OK);
			p.mu = 0.4;
			/* Dark counts often enough that Alice's double clicks meet
			 * slots Eve would otherwise know. */
			p.dark_count = src == QKD_SOURCE_ENTANGLED ? 0.02 : 1e-4;
			p.pulses = 2000000;
			s = sim_of(&p, false);
			qkd_det_list_init(&la, true);
			qkd_det_list_init(&lb, true);
			qkd_det_list_init(&lb2, true);
			assert_int_equal(qkd_sim_bob_chunk(s, 0, p.pulses, &lb, NULL), QKD_OK);
			assert_true(lb.n > 1000);
			for (size_t i = 0; i < lb.n; i++) {
				const struct qkd_det_truth *t = &lb.truth[i];

				assert_true(t->n_detected <= t->n_arrived);
				assert_int_equal((t->flags & QKD_TRUTH_DARK) != 0,
						 t->n_detected == 0);
				if (p.eve != QKD_EVE_INTERCEPT_RESEND)
					assert_true(t->n_arrived <= t->n_sent);
				if (p.eve == QKD_EVE_PNS && (t->flags & QKD_TRUTH_EVE))
					assert_true(t->n_sent >= 2);
			}
			if (src == QKD_SOURCE_ENTANGLED) {
				assert_int_equal(qkd_sim_alice_chunk(s, 0, p.pulses, &la, NULL),
						 QKD_OK);
				/* Eve knows only a bit from the slot's one pair, detected
				 * by Alice in a single click. */
				for (size_t i = 0; i < la.n; i++) {
					if (!(la.truth[i].flags & QKD_TRUTH_EVE))
						continue;
					assert_int_equal(la.d[i].flags & QKD_DET_DOUBLE, 0);
					assert_int_equal(la.truth[i].n_sent, 1);
					assert_int_equal(la.truth[i].n_detected, 1);
				}
				slots = calloc(lb.n, sizeof *slots);
				look = calloc(lb.n, sizeof *look);
				assert_true(slots != NULL && look != NULL);
				for (size_t i = 0; i < lb.n; i++)
					slots[i] = lb.d[i].slot;
				assert_int_equal(qkd_sim_alice_lookup(s, slots, lb.n, look), QKD_OK);
				for (size_t i = 0; i < lb.n; i++) {
					while (j < la.n && la.d[j].slot < slots[i])
						j++;
					if (j < la.n && la.d[j].slot == slots[i]) {
						assert_int_equal(look[i].flags, la.d[j].flags);
						assert_int_equal(look[i].value, la.d[j].value);
						assert_int_equal(look[i].basis, la.d[j].basis);
						/* The slot's Eve flag is the same in both views. */
						assert_int_equal(la.truth[j].flags & QKD_TRUTH_EVE,
								 lb.truth[i].flags & QKD_TRUTH_EVE);
					} else {
						assert_int_equal(look[i].flags, QKD_DET_NONE);
						assert_int_equal(lb.truth[i].flags & QKD_TRUTH_EVE, 0);
					}
				}
				free(slots);
				free(look);
			}
			qkd_sim_free(s);
			s = sim_of(&p, false);
			assert_int_equal(qkd_sim_bob_chunk(s, 0, p.pulses, &lb2, NULL), QKD_OK);
			assert_true(same_list(&lb, &lb2));
			qkd_sim_free(s);
			qkd_det_list_cleanup(&la);
			qkd_det_list_cleanup(&lb);
			qkd_det_list_cleanup(&lb2);
		}
	}
}

/* Edges of Eve's equations: no loss at all (intercept-resend cannot match
 * the click rate: capped resend), nothing detectable, and F = 0 leaves the
 * honest statistics. */
static void test_eve_edges(void **state)
{
	struct qkd_link_params p = mk_link(QKD_SOURCE_WEAK_COHERENT, 0);
	struct qkd_sim_stats st = { 0 };
	struct qkd_det_list l;
	struct qkd_sim *s;
	double n, ne;

	(void)state;
	qkd_det_list_init(&l, true);
	p.detector_efficiency = 1;
	p.dark_count = 0;
	p.mu = 0.5;
	p.eve = QKD_EVE_INTERCEPT_RESEND;
	p.eve_fraction = 1;
	p.pulses = 2000000;
	s = sim_of(&p, false);
	assert_int_equal(qkd_sim_bob_chunk(s, 0, p.pulses, &l, &st), QKD_OK);
	/* Every non-empty pulse is resent bright enough to click surely. */
	n = (double)p.pulses;
	ne = 1 - exp(-p.mu);
	near_rate("lossless intercept-resend clicks", st.clicks, n, ne);
	qkd_sim_free(s);
	/* Nothing can be detected: no clicks, any attack. */
	for (int a = QKD_EVE_INTERCEPT_RESEND; a <= QKD_EVE_BEAMSPLIT; a++) {
		p = mk_link(QKD_SOURCE_WEAK_COHERENT, 10);
		p.detector_efficiency = 0;
		p.dark_count = 0;
		p.eve = (enum qkd_eve_attack)a;
		p.eve_fraction = 0.5;
		p.pulses = 1000000;
		s = sim_of(&p, false);
		assert_int_equal(qkd_sim_bob_chunk(s, 0, p.pulses, &l, NULL), QKD_OK);
		assert_int_equal(l.n, 0);
		qkd_sim_free(s);
	}
	qkd_det_list_cleanup(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_defaults),
		cmocka_unit_test(test_check_decoy_eve),
		cmocka_unit_test(test_eve_parse),
		cmocka_unit_test(test_intensity_expected),
		cmocka_unit_test(test_default_regression),
		cmocka_unit_test(test_choice_frequencies),
		cmocka_unit_test(test_decoy_rates),
		cmocka_unit_test(test_pulse_level_honest),
		cmocka_unit_test(test_intercept_resend),
		cmocka_unit_test(test_pns),
		cmocka_unit_test(test_beamsplit),
		cmocka_unit_test(test_entangled_intercept),
		cmocka_unit_test(test_entangled_beamsplit),
		cmocka_unit_test(test_eve_chunking),
		cmocka_unit_test(test_eve_views),
		cmocka_unit_test(test_eve_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
