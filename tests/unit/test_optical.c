/* test_optical.c - the optical-layer simulator against its closed forms
 * (DESIGN.md section 3, docs/optical-model.md). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "qkd/error.h"
#include "qkd/optical.h"

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

static struct qkd_sim *sim_of(const struct qkd_link_params *p)
{
	struct qkd_sim *s = NULL;

	assert_int_equal(qkd_sim_new(&s, p), QKD_OK);
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

/* |a - b| <= tol (cmocka 1.1 has no assert_double_equal). */
#define assert_close(a, b, tol) close_check((a), (b), (tol), #a, __LINE__)

static void close_check(double a, double b, double tol, const char *expr, int line)
{
	if (!(fabs(a - b) <= tol))
		fail_msg("line %d: %s = %.17g, expected %.17g +- %.3g", line, expr, a, b, tol);
}

static double binom_sd(double p, double n)
{
	return n > 0 ? sqrt(p * (1.0 - p) / n) : 1.0;
}

/* Event statistics of a whole run, sifted as the engine will: Bob's
 * detections, Alice's lookup of those slots, a usable event when she did not
 * answer QKD_DET_NONE. */
struct tally {
	uint64_t slots, bob, usable, matched, errors, unmatched, agree_unmatched;
	uint64_t doubles, dark_only, multi, alice_value1, bob_basis1;
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

		assert_true(b->slot >= first && b->slot < first + n);
		assert_true(i == 0 || b->slot > l->d[i - 1].slot);
		assert_int_equal(a[i].slot, b->slot);
		t->bob++;
		t->doubles += (b->flags & QKD_DET_DOUBLE) != 0;
		t->bob_basis1 += b->basis;
		if (a[i].flags & QKD_DET_NONE)
			continue;
		t->usable++;
		t->alice_value1 += a[i].value;
		if (a[i].basis == b->basis) {
			t->matched++;
			t->errors += a[i].value != b->value;
		} else {
			t->unmatched++;
			t->agree_unmatched += a[i].value == b->value;
		}
	}
	free(a);
	free(slots);
}

static void run_tally(const struct qkd_link_params *p, struct tally *t)
{
	struct qkd_sim *s = sim_of(p);
	struct qkd_det_list l;

	memset(t, 0, sizeof *t);
	qkd_det_list_init(&l, true);
	for (uint64_t f = 0; f < p->pulses; f += CHUNK)
		tally_chunk(s, f, p->pulses - f < CHUNK ? p->pulses - f : CHUNK, &l, t);
	t->slots = p->pulses;
	assert_int_equal(t->st.slots, p->pulses);
	assert_int_equal(t->st.clicks, t->bob);
	assert_int_equal(t->st.double_clicks, t->doubles);
	qkd_det_list_cleanup(&l);
	qkd_sim_free(s);
}

/* The formulas written out independently of the library. */
static void formula_wcp(const struct qkd_link_params *p, double *pc, double *qber)
{
	double eta = pow(10.0, -p->fiber_loss_db_per_km * p->distance_km / 10.0) *
		     p->detector_efficiency;
	double t = p->mu * eta, pd = p->dark_count, e = p->misalignment;
	double r = 1.0 - (1.0 - pd) * exp(-t * (1.0 - e));
	double w = 1.0 - (1.0 - pd) * exp(-t * e);

	*pc = 1.0 - (1.0 - r) * (1.0 - w);
	*qber = (w * (1.0 - r) + r * w / 2.0) / *pc;
}

/* Entangled, by inclusion-exclusion over the four detectors (the library
 * uses the factored form; docs/optical-model.md shows they agree). */
static double x_term(double al, double be, double c, double s, double e)
{
	return s * s * exp(-(al + be) / 2.0 + c * e / 2.0) -
	       s * s * s * exp(-al - (be - c) / 2.0) -
	       s * s * s * exp(-be - (al - c) / 2.0) +
	       pow(s, 4) * exp(-(al + be - c));
}

static void formula_spdc(const struct qkd_link_params *p, double *pc, double *qber)
{
	double tr = pow(10.0, -p->fiber_loss_db_per_km * p->distance_km / 10.0);
	double ed = p->detector_efficiency, s = 1.0 - p->dark_count, e = p->misalignment;
	double al = p->mu * ed, be = p->mu * tr * ed, c = p->mu * ed * tr * ed;
	double xe = x_term(al, be, c, s, e), xc = x_term(al, be, c, s, 1.0 - e);

	*pc = 1.0 - s * s * exp(-al) - s * s * exp(-be) + pow(s, 4) * exp(-(al + be - c));
	*qber = (2.0 * xe + 0.5 * (*pc - 2.0 * xe - 2.0 * xc)) / *pc;
}

/* ---- parameters ------------------------------------------------------- */

static void test_defaults(void **state)
{
	struct qkd_link_params p;
	const char *why = "x";

	(void)state;
	qkd_link_params_default(&p);
	assert_int_equal(qkd_link_params_check(&p, &why), QKD_OK);
	assert_null(why);
	assert_int_equal(p.source, QKD_SOURCE_WEAK_COHERENT);
	assert_int_equal(p.pulses, 100000000);
	assert_true(p.rate_hz == 10e6 && p.mu == 0.1 && p.distance_km == 10.0);
	assert_true(p.fiber_loss_db_per_km == 0.2 && p.detector_efficiency == 0.1);
	assert_true(p.dark_count == 1e-5 && p.misalignment == 0.01);
}

struct bad_case {
	const char *field;	/* must appear in the message */
	void (*apply)(struct qkd_link_params *p);
};

#define BAD(name, field, stmt) \
	static void bad_##name(struct qkd_link_params *p) { stmt; }
BAD(mu_neg, "mu", p->mu = -0.1)
BAD(mu_zero, "mu", p->mu = 0.0)
BAD(mu_nan, "mu", p->mu = NAN)
BAD(mu_inf, "mu", p->mu = INFINITY)
BAD(mu_huge, "mu", p->mu = 1000.0)
BAD(mis_big, "misalignment", p->misalignment = 0.51)
BAD(mis_neg, "misalignment", p->misalignment = -0.01)
BAD(mis_nan, "misalignment", p->misalignment = NAN)
BAD(eta_big, "detector_efficiency", p->detector_efficiency = 1.5)
BAD(eta_nan, "detector_efficiency", p->detector_efficiency = NAN)
BAD(dark_neg, "dark_count", p->dark_count = -1e-6)
BAD(dark_big, "dark_count", p->dark_count = 2.0)
BAD(dist_neg, "distance_km", p->distance_km = -1.0)
BAD(dist_nan, "distance_km", p->distance_km = NAN)
BAD(dist_inf, "distance_km", p->distance_km = INFINITY)
BAD(loss_neg, "fiber_loss_db_per_km", p->fiber_loss_db_per_km = -0.2)
BAD(rate_zero, "rate_hz", p->rate_hz = 0.0)
BAD(rate_nan, "rate_hz", p->rate_hz = NAN)
BAD(pulses_zero, "pulses", p->pulses = 0)
BAD(pulses_huge, "pulses", p->pulses = QKD_PULSES_MAX + 1)
BAD(source_bad, "source", p->source = (enum qkd_source_kind)7)

static void test_check_rejects(void **state)
{
	static const struct bad_case cases[] = {
		{ "mu", bad_mu_neg }, { "mu", bad_mu_zero }, { "mu", bad_mu_nan },
		{ "mu", bad_mu_inf }, { "mu", bad_mu_huge },
		{ "misalignment", bad_mis_big }, { "misalignment", bad_mis_neg },
		{ "misalignment", bad_mis_nan },
		{ "detector_efficiency", bad_eta_big }, { "detector_efficiency", bad_eta_nan },
		{ "dark_count", bad_dark_neg }, { "dark_count", bad_dark_big },
		{ "distance_km", bad_dist_neg }, { "distance_km", bad_dist_nan },
		{ "distance_km", bad_dist_inf },
		{ "fiber_loss_db_per_km", bad_loss_neg },
		{ "rate_hz", bad_rate_zero }, { "rate_hz", bad_rate_nan },
		{ "pulses", bad_pulses_zero }, { "pulses", bad_pulses_huge },
		{ "source", bad_source_bad },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct qkd_link_params p;
		struct qkd_sim *s = (struct qkd_sim *)&p;
		const char *why = NULL;

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
	{
		struct qkd_link_params p;
		const char *why;

		qkd_link_params_default(&p);
		p.mu = -1;
		assert_int_equal(qkd_link_params_check(&p, &why), QKD_ERR_INVAL);
		assert_string_equal(why, "mu must be > 0");
		p.mu = 0.1;
		p.misalignment = 0.5;	/* the boundary is allowed */
		p.dark_count = 1.0;
		p.detector_efficiency = 0.0;
		p.distance_km = 0.0;
		assert_int_equal(qkd_link_params_check(&p, NULL), QKD_OK);
	}
}

static void test_source_names(void **state)
{
	enum qkd_source_kind k = QKD_SOURCE_WEAK_COHERENT;

	(void)state;
	assert_string_equal(qkd_source_name(QKD_SOURCE_ENTANGLED), "entangled");
	assert_string_equal(qkd_source_name(QKD_SOURCE_WEAK_COHERENT), "weak-coherent");
	assert_int_equal(qkd_source_parse("entangled", &k), QKD_OK);
	assert_int_equal(k, QKD_SOURCE_ENTANGLED);
	assert_int_equal(qkd_source_parse("wcp", &k), QKD_OK);
	assert_int_equal(k, QKD_SOURCE_WEAK_COHERENT);
	assert_int_equal(qkd_source_parse("laser", &k), QKD_ERR_INVAL);
}

static void test_multiphoton(void **state)
{
	(void)state;
	assert_close(qkd_multiphoton_prob(0.1), 1.0 - exp(-0.1) * 1.1, 1e-15);
	assert_close(qkd_multiphoton_prob(2.0), 1.0 - exp(-2.0) * 3.0, 1e-15);
	/* Tiny mu: p_m ~ mu^2/2 (1 - 2mu/3); the naive form loses every digit. */
	assert_close(qkd_multiphoton_prob(1e-8) / 5e-17, 1.0, 1e-7);
	assert_true(qkd_multiphoton_prob(0.0) == 0.0);
}

/* ---- closed forms ----------------------------------------------------- */

static void test_expected_matches_formulas(void **state)
{
	static const double km[] = { 0, 10, 25, 50, 100, 200 };
	static const double mu[] = { 0.1, 0.5, 0.02 };

	(void)state;
	for (size_t i = 0; i < 6; i++) {
		for (size_t j = 0; j < 3; j++) {
			for (int src = 0; src < 2; src++) {
				struct qkd_link_params p = mk_link((enum qkd_source_kind)src, km[i]);
				double pc, q, fpc, fq;

				p.mu = mu[j];
				qkd_link_expected(&p, &pc, &q);
				if (src == QKD_SOURCE_ENTANGLED)
					formula_spdc(&p, &fpc, &fq);
				else
					formula_wcp(&p, &fpc, &fq);
				assert_close(pc / fpc, 1.0, 1e-6);
				assert_close(q, fq, 1e-6 * fq + 1e-9);
			}
		}
	}
	{
		/* Limits: no dark counts -> QBER is e_opt up to multi-photon double
		 * clicks, O(t e_opt) (WCP); SPDC too when multi-pair accidentals vanish. */
		struct qkd_link_params p = mk_link(QKD_SOURCE_WEAK_COHERENT, 50);
		double pc, q;

		p.dark_count = 0;
		qkd_link_expected(&p, &pc, &q);
		assert_close(q, p.misalignment, 1e-6);
		p.source = QKD_SOURCE_ENTANGLED;
		p.mu = 1e-6;
		qkd_link_expected(&p, &pc, &q);
		assert_close(q, p.misalignment, 1e-4);
		p.misalignment = 0.5;
		qkd_link_expected(&p, &pc, &q);
		assert_close(q, 0.5, 1e-12);
	}
}

/* A dense, photon-by-photon reference simulator with its own generator: it
 * checks the closed forms (hence the derivation in the docs) independently of
 * the library's sparse sampler. */
static uint64_t ref_x;

static double ref_u(void)
{
	uint64_t z = (ref_x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}

static unsigned ref_poisson(double mu)
{
	double l = exp(-mu), prod = ref_u();
	unsigned k = 0;

	while (prod > l) {
		k++;
		prod *= ref_u();
	}
	return k;
}

static unsigned ref_bit(void)
{
	return ref_u() < 0.5;
}

/* One slot; returns Alice's and Bob's detector bits (bit v = detector v). */
static void ref_slot(const struct qkd_link_params *p, double tr, unsigned ab,
		     unsigned av, unsigned bb, unsigned *adet, unsigned *bdet)
{
	unsigned n = ref_poisson(p->mu);

	*adet = *bdet = 0;
	for (unsigned i = 0; i < n; i++) {
		unsigned a = p->source == QKD_SOURCE_ENTANGLED ? ref_bit() : av, b;

		if (p->source == QKD_SOURCE_ENTANGLED && ref_u() < p->detector_efficiency)
			*adet |= 1u << a;
		if (!(ref_u() < tr && ref_u() < p->detector_efficiency))
			continue;
		b = ab == bb ? a ^ (ref_u() < p->misalignment) : ref_bit();
		*bdet |= 1u << b;
	}
	for (unsigned d = 0; d < 2; d++) {
		*adet |= (unsigned)(ref_u() < p->dark_count) << d;
		*bdet |= (unsigned)(ref_u() < p->dark_count) << d;
	}
}

static unsigned ref_value(unsigned det)
{
	return det == 3 ? ref_bit() : det >> 1;
}

static void ref_run(const struct qkd_link_params *p, uint64_t n, double *pc, double *q,
		    double *nm)
{
	double tr = pow(10.0, -p->fiber_loss_db_per_km * p->distance_km / 10.0);
	uint64_t ev = 0, m = 0, err = 0;

	for (uint64_t i = 0; i < n; i++) {
		unsigned ab = ref_bit(), av = ref_bit(), bb = ref_bit(), ad, bd, avv;

		ref_slot(p, tr, ab, av, bb, &ad, &bd);
		if (bd == 0 || (p->source == QKD_SOURCE_ENTANGLED && ad == 0))
			continue;
		ev++;
		avv = p->source == QKD_SOURCE_ENTANGLED ? ref_value(ad) : av;
		if (ab == bb) {
			m++;
			err += avv != ref_value(bd);
		}
	}
	*pc = (double)ev / (double)n;
	*q = (double)err / (double)m;
	*nm = (double)m;
}

static void test_dense_reference(void **state)
{
	(void)state;
	ref_x = 12345;
	for (int src = 0; src < 2; src++) {
		struct qkd_link_params p = mk_link((enum qkd_source_kind)src, 5);
		double pc, q, rpc, rq, nm;
		const uint64_t n = 400000;

		p.mu = 0.6;
		p.detector_efficiency = 0.5;
		p.dark_count = 0.02;
		p.misalignment = 0.05;
		qkd_link_expected(&p, &pc, &q);
		ref_run(&p, n, &rpc, &rq, &nm);
		near("dense reference P(event)", rpc, pc, binom_sd(pc, (double)n));
		near("dense reference QBER", rq, q, binom_sd(q, nm));
	}
}

/* ---- simulation against the closed forms ------------------------------- */

/* Pulses for about `target` usable events, within [1e6, cap]. */
static uint64_t pulses_for(const struct qkd_link_params *p, double target, double cap)
{
	double pc, n;

	qkd_link_expected(p, &pc, NULL);
	n = target / pc;
	return (uint64_t)(n < 1e6 ? 1e6 : n > cap ? cap : n);
}

static void check_link(struct qkd_link_params *p, double target, double cap)
{
	struct tally t;
	double pc, q, n;
	char what[96];

	p->pulses = pulses_for(p, target, cap);
	qkd_link_expected(p, &pc, &q);
	run_tally(p, &t);
	n = (double)t.slots;
	snprintf(what, sizeof what, "%s %g km P(event)", qkd_source_name(p->source),
		 p->distance_km);
	near(what, (double)t.usable / n, pc, binom_sd(pc, n));
	snprintf(what, sizeof what, "%s %g km QBER", qkd_source_name(p->source),
		 p->distance_km);
	near(what, (double)t.errors / (double)t.matched, q, binom_sd(q, (double)t.matched));
	near("basis match fraction", (double)t.matched / (double)t.usable, 0.5,
	     binom_sd(0.5, (double)t.usable));
	near("unmatched-basis agreement", (double)t.agree_unmatched / (double)t.unmatched,
	     0.5, binom_sd(0.5, (double)t.unmatched));
	near("Alice value balance", (double)t.alice_value1 / (double)t.usable, 0.5,
	     binom_sd(0.5, (double)t.usable));
	near("Bob basis balance", (double)t.bob_basis1 / (double)t.bob, 0.5,
	     binom_sd(0.5, (double)t.bob));
	assert_int_equal(t.st.coincidences,
			 p->source == QKD_SOURCE_ENTANGLED ? t.usable : 0);
}

static void test_wcp_distances(void **state)
{
	static const double km[] = { 0, 10, 25, 50, 100 };

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		struct qkd_link_params p = mk_link(QKD_SOURCE_WEAK_COHERENT, km[i]);

		p.seed = 100 + i;
		check_link(&p, 3e5, 3e9);
	}
}

static void test_entangled_distances(void **state)
{
	static const double km[] = { 0, 10, 25, 50, 100 };

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		struct qkd_link_params p = mk_link(QKD_SOURCE_ENTANGLED, km[i]);

		p.seed = 200 + i;
		check_link(&p, 1e5, 2.5e8);
	}
}

/* Alice's own detections (entangled) have the marginal rate
 * 1-(1-p_d)^2 e^{-mu eta_d}, agree with her lookup, and Bob's marginal is
 * 1-(1-p_d)^2 e^{-mu T eta_d}. */
static void test_entangled_marginals(void **state)
{
	struct qkd_link_params p = mk_link(QKD_SOURCE_ENTANGLED, 25);
	struct qkd_det_list la, lb;
	struct qkd_sim_stats sa = { 0 }, sb = { 0 };
	struct qkd_detection *look;
	uint64_t *slots;
	struct qkd_sim *s;
	double n, pa, pb, tr;
	size_t j = 0;

	(void)state;
	p.pulses = 20000000;
	s = sim_of(&p);
	qkd_det_list_init(&la, false);
	qkd_det_list_init(&lb, false);
	assert_int_equal(qkd_sim_alice_chunk(s, 0, p.pulses, &la, &sa), QKD_OK);
	assert_int_equal(qkd_sim_bob_chunk(s, 0, p.pulses, &lb, &sb), QKD_OK);
	n = (double)p.pulses;
	tr = qkd_link_transmittance(&p);
	pa = 1.0 - pow(1.0 - p.dark_count, 2) * exp(-p.mu * p.detector_efficiency);
	pb = 1.0 - pow(1.0 - p.dark_count, 2) * exp(-p.mu * tr * p.detector_efficiency);
	near("Alice click rate", (double)la.n / n, pa, binom_sd(pa, n));
	near("Bob click rate", (double)lb.n / n, pb, binom_sd(pb, n));
	assert_int_equal(sa.coincidences, sb.coincidences);
	/* Her lookup at Bob's slots is exactly her list restricted to them. */
	slots = calloc(lb.n, sizeof *slots);
	look = calloc(lb.n, sizeof *look);
	assert_non_null(slots);
	assert_non_null(look);
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
		} else {
			assert_int_equal(look[i].flags, QKD_DET_NONE);
		}
	}
	free(slots);
	free(look);
	qkd_det_list_cleanup(&la);
	qkd_det_list_cleanup(&lb);
	qkd_sim_free(s);
}

/* Double clicks, dark-only clicks and multi-photon clicks (WCP, bright). */
static void test_wcp_truth_rates(void **state)
{
	struct qkd_link_params p = mk_link(QKD_SOURCE_WEAK_COHERENT, 5);
	struct tally t;
	double tr, t_, pd, n, r, w, rh, pdbl, pdark, pmulti, eta;

	(void)state;
	p.mu = 1.0;
	p.detector_efficiency = 0.3;
	p.dark_count = 2e-3;
	p.misalignment = 0.05;
	p.pulses = 4000000;
	run_tally(&p, &t);
	tr = qkd_link_transmittance(&p);
	eta = tr * p.detector_efficiency;
	t_ = p.mu * eta;
	pd = p.dark_count;
	n = (double)p.pulses;
	r = 1.0 - (1.0 - pd) * exp(-t_ * (1.0 - p.misalignment));
	w = 1.0 - (1.0 - pd) * exp(-t_ * p.misalignment);
	rh = 1.0 - (1.0 - pd) * exp(-t_ / 2.0);
	pdbl = 0.5 * r * w + 0.5 * rh * rh;
	pdark = exp(-t_) * (1.0 - (1.0 - pd) * (1.0 - pd));
	/* P(click, n >= 2) = p_m - (1-p_d)^2 (e^-t - e^-mu (1 + mu(1-eta))). */
	pmulti = qkd_multiphoton_prob(p.mu) -
		 (1.0 - pd) * (1.0 - pd) * (exp(-t_) - exp(-p.mu) * (1.0 + p.mu * (1.0 - eta)));
	near("double clicks per pulse", (double)t.doubles / n, pdbl, binom_sd(pdbl, n));
	near("dark-only clicks per pulse", (double)t.st.dark_only / n, pdark,
	     binom_sd(pdark, n));
	near("multi-photon clicks per pulse", (double)t.st.multi_photon / n, pmulti,
	     binom_sd(pmulti, n));
}

/* Photon numbers given a click, lossless ideal detectors: Poisson given >= 1. */
static void test_wcp_photon_numbers(void **state)
{
	struct qkd_link_params p = mk_link(QKD_SOURCE_WEAK_COHERENT, 0);
	struct qkd_det_list l;
	struct qkd_sim *s;
	uint64_t hist[4] = { 0 };
	double p1, p2;

	(void)state;
	p.mu = 0.5;
	p.detector_efficiency = 1.0;
	p.dark_count = 0.0;
	p.pulses = 2000000;
	s = sim_of(&p);
	qkd_det_list_init(&l, true);
	assert_int_equal(qkd_sim_bob_chunk(s, 0, p.pulses, &l, NULL), QKD_OK);
	for (size_t i = 0; i < l.n; i++) {
		const struct qkd_det_truth *t = &l.truth[i];

		assert_true(t->n_sent == t->n_arrived && t->n_arrived == t->n_detected);
		assert_true(t->n_sent >= 1);
		assert_int_equal(t->flags & QKD_TRUTH_DARK, 0);
		hist[t->n_sent < 3 ? t->n_sent : 3]++;
	}
	p1 = 0.5 * exp(-0.5) / -expm1(-0.5);
	p2 = p1 * 0.5 / 2.0;
	near("P(n=1 | click)", (double)hist[1] / (double)l.n, p1, binom_sd(p1, (double)l.n));
	near("P(n=2 | click)", (double)hist[2] / (double)l.n, p2, binom_sd(p2, (double)l.n));
	qkd_det_list_cleanup(&l);
	qkd_sim_free(s);
}

/* Truth invariants on a lossy link, both sources and both views. */
static void test_truth_invariants(void **state)
{
	(void)state;
	for (int src = 0; src < 2; src++) {
		struct qkd_link_params p = mk_link((enum qkd_source_kind)src, 30);
		struct qkd_det_list l;
		struct qkd_sim *s;

		p.mu = 0.8;
		p.dark_count = 1e-4;
		p.pulses = 3000000;
		s = sim_of(&p);
		qkd_det_list_init(&l, true);
		for (int who = 0; who < 2; who++) {
			int rc = who == 1 ? qkd_sim_bob_chunk(s, 0, p.pulses, &l, NULL) :
				 qkd_sim_alice_chunk(s, 0, p.pulses, &l, NULL);

			if (who == 0 && src == QKD_SOURCE_WEAK_COHERENT) {
				assert_int_equal(rc, QKD_ERR_INVAL);
				assert_int_equal(l.n, 0);
				continue;
			}
			assert_int_equal(rc, QKD_OK);
			assert_true(l.n > 1000);
			for (size_t i = 0; i < l.n; i++) {
				const struct qkd_det_truth *t = &l.truth[i];

				assert_true(t->n_detected <= t->n_arrived);
				assert_true(t->n_arrived <= t->n_sent);
				assert_int_equal((t->flags & QKD_TRUTH_DARK) != 0,
						 t->n_detected == 0);
				assert_true(l.d[i].basis <= 1 && l.d[i].value <= 1);
			}
		}
		qkd_det_list_cleanup(&l);
		qkd_sim_free(s);
	}
}

/* With e_opt = 0 and no dark counts, a matched-basis event carries Alice's bit
 * exactly (entangled: when a single pair was emitted). */
static void test_ideal_values_agree(void **state)
{
	(void)state;
	for (int src = 0; src < 2; src++) {
		struct qkd_link_params p = mk_link((enum qkd_source_kind)src, 20);
		struct qkd_det_list l;
		struct qkd_detection *a;
		uint64_t *slots, checked = 0;
		struct qkd_sim *s;

		p.mu = 1.0;
		p.misalignment = 0.0;
		p.dark_count = 0.0;
		p.pulses = 4000000;
		s = sim_of(&p);
		qkd_det_list_init(&l, true);
		assert_int_equal(qkd_sim_bob_chunk(s, 0, p.pulses, &l, NULL), QKD_OK);
		slots = calloc(l.n, sizeof *slots);
		a = calloc(l.n, sizeof *a);
		assert_non_null(slots);
		assert_non_null(a);
		for (size_t i = 0; i < l.n; i++)
			slots[i] = l.d[i].slot;
		assert_int_equal(qkd_sim_alice_lookup(s, slots, l.n, a), QKD_OK);
		for (size_t i = 0; i < l.n; i++) {
			if (a[i].basis != l.d[i].basis || (a[i].flags & QKD_DET_NONE))
				continue;
			if (src == QKD_SOURCE_ENTANGLED && l.truth[i].n_sent != 1)
				continue;
			assert_int_equal(l.d[i].flags & QKD_DET_DOUBLE, 0);
			assert_int_equal(a[i].value, l.d[i].value);
			checked++;
		}
		assert_true(checked > 1000);
		free(slots);
		free(a);
		qkd_det_list_cleanup(&l);
		qkd_sim_free(s);
	}
}

/* ---- determinism, chunking, views -------------------------------------- */

static bool same_list(const struct qkd_det_list *x, const struct qkd_det_list *y)
{
	if (x->n != y->n)
		return false;
	for (size_t i = 0; i < x->n; i++) {
		const struct qkd_detection *a = &x->d[i], *b = &y->d[i];

		if (a->slot != b->slot || a->basis != b->basis || a->value != b->value ||
		    a->flags != b->flags)
			return false;
		if (x->truth != NULL && y->truth != NULL &&
		    memcmp(&x->truth[i], &y->truth[i], sizeof x->truth[i]) != 0)
			return false;
	}
	return true;
}

static void whole(const struct qkd_link_params *p, uint64_t seed, struct qkd_det_list *l)
{
	struct qkd_link_params q = *p;
	struct qkd_sim *s;

	q.seed = seed;
	s = sim_of(&q);
	assert_int_equal(qkd_sim_bob_chunk(s, 0, q.pulses, l, NULL), QKD_OK);
	qkd_sim_free(s);
}

/* Alice's raw choices for a range of slots equal her lookup slot by slot,
 * on the fair (word) path and the biased path, aligned or not; a biased RNG
 * draws ones at its rate. */
static void test_alice_choices(void **state)
{
	struct qkd_link_params q;
	struct qkd_bits basis, value;
	struct qkd_detection d[300];
	uint64_t slots[300];
	const double bias[2] = {0.5, 0.6};

	(void)state;
	for (int k = 0; k < 2; k++) {
		struct qkd_sim *s;

		qkd_link_params_default(&q);
		q.rng_bias = bias[k];
		s = sim_of(&q);
		for (uint64_t first = 0; first < 70; first += 37) {
			assert_int_equal(qkd_bits_init(&basis, 300), QKD_OK);
			assert_int_equal(qkd_bits_init(&value, 300), QKD_OK);
			assert_int_equal(qkd_sim_alice_choices(s, first, 300, &basis, &value), QKD_OK);
			for (int i = 0; i < 300; i++)
				slots[i] = first + (uint64_t)i;
			assert_int_equal(qkd_sim_alice_lookup(s, slots, 300, d), QKD_OK);
			for (int i = 0; i < 300; i++) {
				assert_int_equal(qkd_bits_get(&basis, (size_t)i), d[i].basis);
				assert_int_equal(qkd_bits_get(&value, (size_t)i), d[i].value);
			}
			qkd_bits_cleanup(&basis);
			qkd_bits_cleanup(&value);
		}
		/* Ones among 2^20 value choices: 2^20 P +- 5 sd. */
		assert_int_equal(qkd_bits_init(&basis, 1u << 20), QKD_OK);
		assert_int_equal(qkd_bits_init(&value, 1u << 20), QKD_OK);
		assert_int_equal(qkd_sim_alice_choices(s, 64, 1u << 20, &basis, &value), QKD_OK);
		{
			double n = 1u << 20, m = n * bias[k], sd = sqrt(n * bias[k] * (1 - bias[k]));
			double ones = (double)qkd_bits_weight(&value);

			assert_true(fabs(ones - m) < 5 * sd);
			assert_true(fabs((double)qkd_bits_weight(&basis) - m) < 5 * sd);
		}
		qkd_bits_cleanup(&basis);
		qkd_bits_cleanup(&value);
		assert_int_equal(qkd_sim_alice_choices(s, q.pulses, 1, &basis, &value), QKD_ERR_RANGE);
		qkd_sim_free(s);
	}
}

static void test_determinism(void **state)
{
	(void)state;
	for (int src = 0; src < 2; src++) {
		struct qkd_link_params p = mk_link((enum qkd_source_kind)src, 10);
		struct qkd_det_list a, b, c;
		struct qkd_detection la[64], lc[64];
		uint64_t slots[64];
		struct qkd_sim *s1, *s2;

		p.pulses = 3000000;
		qkd_det_list_init(&a, true);
		qkd_det_list_init(&b, true);
		qkd_det_list_init(&c, true);
		whole(&p, 42, &a);
		whole(&p, 42, &b);
		whole(&p, 43, &c);
		assert_true(a.n > 1000);
		assert_true(same_list(&a, &b));
		assert_false(same_list(&a, &c));
		/* Alice's view depends on her seed too. */
		for (size_t i = 0; i < 64; i++)
			slots[i] = a.d[i].slot;
		p.seed = 42;
		s1 = sim_of(&p);
		p.seed = 43;
		s2 = sim_of(&p);
		assert_int_equal(qkd_sim_alice_lookup(s1, slots, 64, la), QKD_OK);
		assert_int_equal(qkd_sim_alice_lookup(s2, slots, 64, lc), QKD_OK);
		assert_true(memcmp(la, lc, sizeof la) != 0);
		qkd_sim_free(s1);
		qkd_sim_free(s2);
		qkd_det_list_cleanup(&a);
		qkd_det_list_cleanup(&b);
		qkd_det_list_cleanup(&c);
	}
}

/* Any split into chunks yields the same detections as one run. */
static void test_chunking(void **state)
{
	static const uint64_t sizes[] = { 1, 7, 65535, 65537, 1, 100003, 65536, 3,
					  250000, 131072, 999, 400001 };

	(void)state;
	for (int src = 0; src < 2; src++) {
		for (int who = 0; who < 2; who++) {
			struct qkd_link_params p = mk_link((enum qkd_source_kind)src, 0);
			struct qkd_det_list one, part, cat;
			struct qkd_sim *s;
			uint64_t first = 0;
			size_t k = 0;

			if (src == QKD_SOURCE_WEAK_COHERENT && who == 0)
				continue;
			p.pulses = 2500000;
			s = sim_of(&p);
			qkd_det_list_init(&one, true);
			qkd_det_list_init(&part, true);
			qkd_det_list_init(&cat, false);
			assert_int_equal(who ? qkd_sim_bob_chunk(s, 0, p.pulses, &one, NULL) :
					 qkd_sim_alice_chunk(s, 0, p.pulses, &one, NULL), QKD_OK);
			cat.d = calloc(one.n + 1, sizeof *cat.d);
			assert_non_null(cat.d);
			cat.cap = one.n + 1;
			while (first < p.pulses) {
				uint64_t n = sizes[k++ % (sizeof sizes / sizeof sizes[0])];

				if (n > p.pulses - first)
					n = p.pulses - first;
				assert_int_equal(who ? qkd_sim_bob_chunk(s, first, n, &part, NULL) :
						 qkd_sim_alice_chunk(s, first, n, &part, NULL),
						 QKD_OK);
				assert_true(cat.n + part.n <= one.n);
				if (part.n > 0)
					memcpy(cat.d + cat.n, part.d, part.n * sizeof *part.d);
				cat.n += part.n;
				first += n;
			}
			assert_true(one.n > 1000);
			assert_true(same_list(&one, &cat));
			qkd_det_list_cleanup(&one);
			qkd_det_list_cleanup(&part);
			qkd_det_list_cleanup(&cat);
			qkd_sim_free(s);
		}
	}
}

/* The engine's pattern: create the simulator, fork; Bob's process sends only
 * what Bob would send (slots, bases); Alice's answers from her own view. */
static void test_fork_views(void **state)
{
	struct qkd_link_params p = mk_link(QKD_SOURCE_WEAK_COHERENT, 10);
	struct qkd_det_list mine;
	struct qkd_sim *s;
	int fd[2], status;
	uint64_t n = 0, kept = 0, err = 0;
	pid_t pid;

	(void)state;
	p.pulses = 20000000;
	s = sim_of(&p);
	assert_int_equal(pipe(fd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct qkd_det_list l;

		close(fd[0]);
		qkd_det_list_init(&l, false);
		if (qkd_sim_bob_chunk(s, 0, p.pulses, &l, NULL) != QKD_OK)
			_exit(1);
		n = l.n;
		if (write(fd[1], &n, sizeof n) != (ssize_t)sizeof n)
			_exit(1);
		for (size_t i = 0; i < l.n; i++) {
			uint64_t rec[2] = { l.d[i].slot, l.d[i].basis };

			if (write(fd[1], rec, sizeof rec) != (ssize_t)sizeof rec)
				_exit(1);
		}
		_exit(0);
	}
	close(fd[1]);
	assert_int_equal(read(fd[0], &n, sizeof n), (ssize_t)sizeof n);
	/* Bob's list computed here as well, only to prove both processes agree. */
	qkd_det_list_init(&mine, false);
	assert_int_equal(qkd_sim_bob_chunk(s, 0, p.pulses, &mine, NULL), QKD_OK);
	assert_int_equal(n, mine.n);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t rec[2];
		struct qkd_detection a;
		size_t got = 0;

		while (got < sizeof rec) {
			ssize_t r = read(fd[0], (char *)rec + got, sizeof rec - got);

			assert_true(r > 0);
			got += (size_t)r;
		}
		assert_int_equal(rec[0], mine.d[i].slot);
		assert_int_equal(rec[1], mine.d[i].basis);
		assert_int_equal(qkd_sim_alice_lookup(s, &rec[0], 1, &a), QKD_OK);
		if (a.basis == rec[1]) {
			kept++;
			err += a.value != mine.d[i].value;
		}
	}
	close(fd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	{
		double q;

		qkd_link_expected(&p, NULL, &q);
		near("forked sifted QBER", (double)err / (double)kept, q,
		     binom_sd(q, (double)kept));
	}
	qkd_det_list_cleanup(&mine);
	qkd_sim_free(s);
}

/* ---- edges ------------------------------------------------------------- */

static void test_edges(void **state)
{
	(void)state;
	for (int src = 0; src < 2; src++) {
		struct qkd_link_params p = mk_link((enum qkd_source_kind)src, 10);
		struct qkd_sim_stats st = { 0 };
		struct qkd_det_list l;
		struct qkd_sim *s;

		qkd_det_list_init(&l, true);
		/* p_d = 1: every slot clicks on both detectors. */
		p.pulses = 200000;
		p.dark_count = 1.0;
		s = sim_of(&p);
		assert_int_equal(qkd_sim_bob_chunk(s, 0, p.pulses, &l, &st), QKD_OK);
		assert_int_equal(l.n, p.pulses);
		assert_int_equal(st.double_clicks, p.pulses);
		for (size_t i = 0; i < l.n; i++)
			assert_int_equal(l.d[i].slot, i);
		qkd_sim_free(s);
		/* Nothing can fire: no detections, and the walk is still cheap. */
		p.dark_count = 0.0;
		p.detector_efficiency = 0.0;
		p.pulses = QKD_PULSES_MAX;
		s = sim_of(&p);
		assert_int_equal(qkd_sim_bob_chunk(s, QKD_PULSES_MAX - 100000, 100000, &l, NULL),
				 QKD_OK);
		assert_int_equal(l.n, 0);
		qkd_sim_free(s);
		/* Beyond any fiber: dark counts only, QBER 1/2. */
		p = mk_link((enum qkd_source_kind)src, 100000);
		p.fiber_loss_db_per_km = 100;
		p.dark_count = 1e-2;
		p.pulses = 300000;
		s = sim_of(&p);
		assert_int_equal(qkd_sim_bob_chunk(s, 0, p.pulses, &l, NULL), QKD_OK);
		assert_true(l.n > 1000);
		for (size_t i = 0; i < l.n; i++)
			assert_true(l.truth[i].flags & QKD_TRUTH_DARK);
		qkd_sim_free(s);
		/* mu at its bound does not hang and clicks almost surely. */
		p = mk_link((enum qkd_source_kind)src, 0);
		p.mu = 100;
		p.detector_efficiency = 1.0;
		p.pulses = 100000;
		s = sim_of(&p);
		assert_int_equal(qkd_sim_bob_chunk(s, 0, p.pulses, &l, NULL), QKD_OK);
		assert_int_equal(l.n, p.pulses);
		qkd_sim_free(s);
		qkd_det_list_cleanup(&l);
	}
}

static void test_bad_calls(void **state)
{
	struct qkd_link_params p = mk_link(QKD_SOURCE_WEAK_COHERENT, 10);
	struct qkd_det_list l;
	struct qkd_detection out[3];
	uint64_t up[3] = { 5, 9, 9 }, down[2] = { 9, 5 }, past[1];
	struct qkd_sim *s;

	(void)state;
	p.pulses = 1000000;
	s = sim_of(&p);
	past[0] = p.pulses;
	qkd_det_list_init(&l, false);
	assert_int_equal(qkd_sim_bob_chunk(s, 0, p.pulses, &l, NULL), QKD_OK);
	assert_true(l.n > 0);
	assert_int_equal(qkd_sim_bob_chunk(s, p.pulses - 5, 10, &l, NULL), QKD_ERR_RANGE);
	assert_int_equal(l.n, 0);
	assert_int_equal(qkd_sim_bob_chunk(s, UINT64_MAX, 2, &l, NULL), QKD_ERR_RANGE);
	assert_int_equal(qkd_sim_bob_chunk(s, 17, 0, &l, NULL), QKD_OK);
	assert_int_equal(l.n, 0);
	assert_int_equal(qkd_sim_alice_lookup(s, up, 3, out), QKD_ERR_INVAL);
	assert_int_equal(qkd_sim_alice_lookup(s, down, 2, out), QKD_ERR_INVAL);
	assert_int_equal(qkd_sim_alice_lookup(s, past, 1, out), QKD_ERR_RANGE);
	assert_int_equal(qkd_sim_alice_lookup(s, up, 2, out), QKD_OK);
	assert_int_equal(qkd_sim_alice_chunk(s, 0, 10, &l, NULL), QKD_ERR_INVAL);
	assert_true(qkd_sim_params(s)->pulses == p.pulses);
	qkd_det_list_cleanup(&l);
	qkd_det_list_cleanup(NULL);
	qkd_sim_free(s);
	qkd_sim_free(NULL);
}

static void test_bench_runs(void **state)
{
	struct qkd_sim_stats st = { 0 };
	double sec = -1;

	(void)state;
	assert_int_equal(qkd_sim_bench(NULL, 3000000, &sec, &st), QKD_OK);
	assert_true(sec >= 0);
	assert_int_equal(st.slots, 3000000);
	assert_true(st.clicks > 10000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_check_rejects),
		cmocka_unit_test(test_source_names),
		cmocka_unit_test(test_multiphoton),
		cmocka_unit_test(test_expected_matches_formulas),
		cmocka_unit_test(test_dense_reference),
		cmocka_unit_test(test_wcp_distances),
		cmocka_unit_test(test_entangled_distances),
		cmocka_unit_test(test_entangled_marginals),
		cmocka_unit_test(test_wcp_truth_rates),
		cmocka_unit_test(test_wcp_photon_numbers),
		cmocka_unit_test(test_truth_invariants),
		cmocka_unit_test(test_ideal_values_agree),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_chunking),
		cmocka_unit_test(test_fork_views),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_bad_calls),
		cmocka_unit_test(test_alice_choices),
		cmocka_unit_test(test_bench_runs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
