/* test_freespace.c - the free-space channel of the optical model against
 * its formulas (docs/optical-model.md section 1a): T_geo, T_atm, the noise
 * per gate, the closed forms, simulated runs (detection-level and the
 * pulse-level Eve path) day and night, and that fiber links are untouched. */
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
#include "qkd/recording.h"

#define CHUNK ((uint64_t)1 << 24)
#define KSIGMA 5.0

static struct qkd_link_params fso_link(enum qkd_source_kind src, double km, bool day)
{
	struct qkd_link_params p;

	qkd_link_params_default(&p);
	p.source = src;
	p.channel = QKD_CHANNEL_FREE_SPACE;
	p.distance_km = km;
	p.daylight = day;
	return p;
}

#define assert_close(a, b, tol) close_check((a), (b), (tol), #a, __LINE__)

static void close_check(double a, double b, double tol, const char *expr, int line)
{
	if (!(fabs(a - b) <= tol))
		fail_msg("line %d: %s = %.17g, expected %.17g +- %.3g", line, expr, a, b, tol);
}

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

/* ---- the formulas, written out independently of the library ----------- */

static double f_geo(const struct qkd_link_params *p)
{
	double r = p->rx_aperture_m / (p->tx_aperture_m + p->distance_km * 1000.0 *
				       p->beam_divergence);

	return fmin(1.0, r * r);
}

static double f_atm(const struct qkd_link_params *p)
{
	return pow(10.0, -p->atmos_loss_db_per_km * p->distance_km / 10.0);
}

static double f_noise(const struct qkd_link_params *p)
{
	double bg = p->daylight ? p->background_day : p->background_night;

	return 1.0 - (1.0 - p->dark_count) * (1.0 - bg);
}

static void f_wcp(const struct qkd_link_params *p, double *pc, double *qber)
{
	double t = p->mu * f_geo(p) * f_atm(p) * p->detector_efficiency;
	double pd = f_noise(p), e = p->misalignment;
	double r = 1.0 - (1.0 - pd) * exp(-t * (1.0 - e));
	double w = 1.0 - (1.0 - pd) * exp(-t * e);

	*pc = 1.0 - (1.0 - r) * (1.0 - w);
	*qber = (w * (1.0 - r) + r * w / 2.0) / *pc;
}

/* Entangled, by inclusion-exclusion over the four detectors, Alice's with
 * silence probability sa = 1 - p_d, Bob's sb = 1 - p_n. */
static double x_term(double al, double be, double c, double sa, double sb, double e)
{
	return sa * sb * exp(-(al + be) / 2.0 + c * e / 2.0) -
	       sa * sa * sb * exp(-al - (be - c) / 2.0) -
	       sa * sb * sb * exp(-be - (al - c) / 2.0) +
	       sa * sa * sb * sb * exp(-(al + be - c));
}

static void f_spdc(const struct qkd_link_params *p, double *pc, double *qber)
{
	double tr = f_geo(p) * f_atm(p), ed = p->detector_efficiency, e = p->misalignment;
	double sa = 1.0 - p->dark_count, sb = 1.0 - f_noise(p);
	double al = p->mu * ed, be = p->mu * tr * ed, c = al * tr * ed;
	double xe = x_term(al, be, c, sa, sb, e), xc = x_term(al, be, c, sa, sb, 1.0 - e);

	*pc = 1.0 - sa * sa * exp(-al) - sb * sb * exp(-be) +
	      sa * sa * sb * sb * exp(-(al + be - c));
	*qber = (2.0 * xe + 0.5 * (*pc - 2.0 * xe - 2.0 * xc)) / *pc;
}

/* ---- the channel's figures -------------------------------------------- */

static void test_geometry(void **state)
{
	struct qkd_link_params p = fso_link(QKD_SOURCE_WEAK_COHERENT, 10, false);

	(void)state;
	/* Defaults: spot 0.05 + 1e4 m * 20e-6 = 0.25 m, (0.10 / 0.25)^2 = 0.16. */
	assert_close(qkd_link_geometric_transmittance(&p), 0.16, 1e-15);
	assert_close(qkd_link_atmospheric_transmittance(&p), 0.79432823472428150, 1e-15);
	assert_close(qkd_link_transmittance(&p), 0.16 * 0.79432823472428150, 1e-15);
	assert_close(qkd_link_loss(&p), 1.0 - 0.16 * 0.79432823472428150, 1e-15);
	for (double km = 0; km <= 200; km += 12.5) {
		p.distance_km = km;
		p.beam_divergence = km < 100 ? 15e-6 : 40e-6;
		assert_close(qkd_link_geometric_transmittance(&p), f_geo(&p), 1e-15);
		assert_close(qkd_link_atmospheric_transmittance(&p), f_atm(&p), 1e-15);
		assert_close(qkd_link_transmittance(&p), f_geo(&p) * f_atm(&p), 1e-15);
		assert_close(qkd_link_loss(&p), 1.0 - f_geo(&p) * f_atm(&p), 1e-14);
	}
	/* A receiver wider than the spot collects it all: T_geo caps at 1. */
	p.distance_km = 1.0;
	p.rx_aperture_m = 0.5;
	assert_true(qkd_link_geometric_transmittance(&p) == 1.0);
	/* No divergence, no air: T = (D_r/D_t)^2 when D_r < D_t; and a
	 * lossless path (L = 0, D_r >= D_t) loses exactly nothing. */
	p.beam_divergence = 0;
	p.atmos_loss_db_per_km = 0;
	p.rx_aperture_m = 0.04;
	assert_close(qkd_link_transmittance(&p), 0.64, 1e-15);
	p.distance_km = 0;
	p.rx_aperture_m = 0.05;
	assert_true(qkd_link_transmittance(&p) == 1.0 && qkd_link_loss(&p) == 0.0);
	/* Loss without cancellation: 1e-9 dB over 1 km is 2.3e-10 lost. */
	p.distance_km = 1.0;
	p.atmos_loss_db_per_km = 1e-9;
	assert_close(qkd_link_loss(&p) / (1e-10 * M_LN10), 1.0, 1e-6);
}

static void test_noise(void **state)
{
	struct qkd_link_params p = fso_link(QKD_SOURCE_WEAK_COHERENT, 10, false);

	(void)state;
	/* f_noise's 1 - (1-p_d)(1-p_bg) cancels to ~1e-16 absolute; the
	 * expanded sum is exact to rounding. */
	assert_close(qkd_link_noise_per_gate(&p), f_noise(&p), 1e-15);
	assert_close(qkd_link_noise_per_gate(&p), 1e-5 + 1e-6 - 1e-11, 1e-20);
	p.daylight = true;
	assert_close(qkd_link_noise_per_gate(&p), f_noise(&p), 1e-15);
	assert_close(qkd_link_noise_per_gate(&p), 1e-5 + 1e-4 - 1e-9, 1e-19);
	p.background_day = 0;
	assert_true(qkd_link_noise_per_gate(&p) == p.dark_count);
	p.dark_count = 1.0;
	p.background_day = 0.3;
	assert_true(qkd_link_noise_per_gate(&p) == 1.0);
}

/* Fiber ignores every free-space field and computes what it always did. */
static void test_fiber_untouched(void **state)
{
	struct qkd_link_params p;

	(void)state;
	qkd_link_params_default(&p);
	assert_int_equal(p.channel, QKD_CHANNEL_FIBER);
	p.tx_aperture_m = -1;
	p.beam_divergence = NAN;
	p.background_night = 0.5;
	assert_int_equal(qkd_link_params_check(&p, NULL), QKD_OK);
	for (double km = 0; km <= 150; km += 7.5) {
		p.distance_km = km;
		assert_true(qkd_link_transmittance(&p) ==
			    pow(10.0, -p.fiber_loss_db_per_km * km / 10.0));
		assert_true(qkd_link_loss(&p) ==
			    -expm1(-p.fiber_loss_db_per_km * km / 10.0 * M_LN10));
		assert_true(qkd_link_geometric_transmittance(&p) == 1.0);
		assert_true(qkd_link_noise_per_gate(&p) == p.dark_count);
	}
}

static void test_names(void **state)
{
	enum qkd_channel_kind k = QKD_CHANNEL_FIBER;

	(void)state;
	assert_int_equal(qkd_channel_parse("free-space", &k), QKD_OK);
	assert_int_equal(k, QKD_CHANNEL_FREE_SPACE);
	assert_string_equal(qkd_channel_name(k), "free-space");
	assert_int_equal(qkd_channel_parse("fiber", &k), QKD_OK);
	assert_int_equal(k, QKD_CHANNEL_FIBER);
	assert_string_equal(qkd_channel_name(k), "fiber");
	assert_int_equal(qkd_channel_parse("fso", &k), QKD_OK);
	assert_int_equal(k, QKD_CHANNEL_FREE_SPACE);
	assert_int_equal(qkd_channel_parse("air", &k), QKD_ERR_INVAL);
	assert_int_equal(qkd_channel_parse(NULL, &k), QKD_ERR_INVAL);
	assert_string_equal(qkd_channel_name((enum qkd_channel_kind)7), "unknown");
}

static void expect_bad(struct qkd_link_params p, const char *field)
{
	const char *why = NULL;

	assert_int_equal(qkd_link_params_check(&p, &why), QKD_ERR_INVAL);
	assert_non_null(why);
	if (strncmp(why, field, strlen(field)) != 0)
		fail_msg("'%s' does not name %s", why, field);
}

static void test_check(void **state)
{
	struct qkd_link_params g = fso_link(QKD_SOURCE_ENTANGLED, 10, true), p;
	const char *why = "x";

	(void)state;
	assert_int_equal(qkd_link_params_check(&g, &why), QKD_OK);
	assert_null(why);
	p = g; p.tx_aperture_m = 0; expect_bad(p, "tx_aperture_m");
	p = g; p.tx_aperture_m = 11; expect_bad(p, "tx_aperture_m");
	p = g; p.rx_aperture_m = -0.1; expect_bad(p, "rx_aperture_m");
	p = g; p.rx_aperture_m = INFINITY; expect_bad(p, "rx_aperture_m");
	p = g; p.beam_divergence = -1e-6; expect_bad(p, "beam_divergence");
	p = g; p.beam_divergence = 0.2; expect_bad(p, "beam_divergence");
	p = g; p.beam_divergence = NAN; expect_bad(p, "beam_divergence");
	p = g; p.atmos_loss_db_per_km = -0.1; expect_bad(p, "atmos_loss_db_per_km");
	p = g; p.background_day = 1.5; expect_bad(p, "background_day");
	p = g; p.background_night = -1e-9; expect_bad(p, "background_night");
	p = g; p.channel = (enum qkd_channel_kind)5; expect_bad(p, "channel");
	p = g; p.beam_divergence = 0; p.atmos_loss_db_per_km = 0;
	assert_int_equal(qkd_link_params_check(&p, NULL), QKD_OK);
}

/* A recording's id names the run: a free-space channel's fields enter it,
 * a fiber link's id ignores them (and so is the one it always had). */
static void test_recording_id(void **state)
{
	struct qkd_link_params f, g;
	struct qkd_rec_info a, b;

	(void)state;
	qkd_link_params_default(&f);
	g = f;
	g.beam_divergence = 1e-5;	/* ignored on fiber */
	qkd_rec_info_from_link(&a, &f);
	qkd_rec_info_from_link(&b, &g);
	assert_memory_equal(a.id, b.id, sizeof a.id);
	g = f;
	g.channel = QKD_CHANNEL_FREE_SPACE;
	qkd_rec_info_from_link(&b, &g);
	assert_memory_not_equal(a.id, b.id, sizeof a.id);
	a = b;
	g.daylight = true;
	qkd_rec_info_from_link(&b, &g);
	assert_memory_not_equal(a.id, b.id, sizeof a.id);
	g.daylight = false;
	g.rx_aperture_m = 0.2;
	qkd_rec_info_from_link(&b, &g);
	assert_memory_not_equal(a.id, b.id, sizeof a.id);
}

/* qkd_link_expected against the formulas, both sources, day and night. */
static void test_expected(void **state)
{
	static const double km[] = { 0, 1, 5, 10, 30, 100 };

	(void)state;
	for (size_t i = 0; i < sizeof km / sizeof km[0]; i++)
		for (int day = 0; day < 2; day++) {
			struct qkd_link_params w = fso_link(QKD_SOURCE_WEAK_COHERENT, km[i], day);
			struct qkd_link_params e = fso_link(QKD_SOURCE_ENTANGLED, km[i], day);
			double pc, q, fpc, fq;

			qkd_link_expected(&w, &pc, &q);
			f_wcp(&w, &fpc, &fq);
			/* The formulas' 1 - (1-x) cancels; the library's
			 * expm1/log1p does not: agreement to 1e-9. */
			assert_close(pc / fpc, 1.0, 1e-9);
			assert_close(q / fq, 1.0, 1e-9);
			qkd_link_expected(&e, &pc, &q);
			f_spdc(&e, &fpc, &fq);
			assert_close(pc / fpc, 1.0, 1e-9);
			assert_close(q / fq, 1.0, 1e-6);
		}
}

/* ---- simulated runs ---------------------------------------------------- */

struct tally {
	uint64_t slots, bob, usable, matched, errors;
};

static void tally_chunk(const struct qkd_sim *s, uint64_t first, uint64_t n,
			struct qkd_det_list *l, struct tally *t)
{
	struct qkd_detection *a;
	uint64_t *slots;

	assert_int_equal(qkd_sim_bob_chunk(s, first, n, l, NULL), QKD_OK);
	a = calloc(l->n + 1, sizeof *a);
	slots = calloc(l->n + 1, sizeof *slots);
	assert_non_null(a);
	assert_non_null(slots);
	for (size_t i = 0; i < l->n; i++)
		slots[i] = l->d[i].slot;
	assert_int_equal(qkd_sim_alice_lookup(s, slots, l->n, a), QKD_OK);
	for (size_t i = 0; i < l->n; i++) {
		t->bob++;
		if (a[i].flags & QKD_DET_NONE)
			continue;
		t->usable++;
		if (a[i].basis == l->d[i].basis) {
			t->matched++;
			t->errors += a[i].value != l->d[i].value;
		}
	}
	free(a);
	free(slots);
}

static void run_tally(const struct qkd_link_params *p, struct tally *t)
{
	struct qkd_sim *s = NULL;
	struct qkd_det_list l;

	memset(t, 0, sizeof *t);
	assert_int_equal(qkd_sim_new(&s, p), QKD_OK);
	qkd_det_list_init(&l, false);
	for (uint64_t f = 0; f < p->pulses; f += CHUNK)
		tally_chunk(s, f, p->pulses - f < CHUNK ? p->pulses - f : CHUNK, &l, t);
	t->slots = p->pulses;
	qkd_det_list_cleanup(&l);
	qkd_sim_free(s);
}

/* Simulate about `target` usable events (a tenth under valgrind,
 * QKD_VALGRIND=1: the tolerances are in standard deviations, so they hold)
 * and check their rate and QBER against the independent formula; returns
 * the observed QBER. */
static double check_run(struct qkd_link_params *p, double target, double *sd)
{
	const char *vg = getenv("QKD_VALGRIND");
	struct tally t;
	double pc, q, n;
	char what[128];

	if (vg != NULL && strcmp(vg, "1") == 0)
		target /= 10;

	if (p->source == QKD_SOURCE_ENTANGLED)
		f_spdc(p, &pc, &q);
	else
		f_wcp(p, &pc, &q);
	n = target / pc;
	p->pulses = (uint64_t)(n > 1e9 ? 1e9 : n);
	run_tally(p, &t);
	n = (double)t.slots;
	snprintf(what, sizeof what, "%s free-space %g km %s P(event)",
		 qkd_source_name(p->source), p->distance_km, p->daylight ? "day" : "night");
	near(what, (double)t.usable / n, pc, binom_sd(pc, n));
	snprintf(what, sizeof what, "%s free-space %g km %s QBER",
		 qkd_source_name(p->source), p->distance_km, p->daylight ? "day" : "night");
	near(what, (double)t.errors / (double)t.matched, q, binom_sd(q, (double)t.matched));
	*sd = binom_sd(q, (double)t.matched);
	return (double)t.errors / (double)t.matched;
}

/* Detection rate and QBER of simulated runs, and daylight visibly raises
 * the QBER (1e-4 background against 1e-6 at night, 10 km). */
static void test_sim_day_night(void **state)
{
	static const double km[] = { 1, 10, 25 };

	(void)state;
	for (size_t i = 0; i < sizeof km / sizeof km[0]; i++) {
		struct qkd_link_params n = fso_link(QKD_SOURCE_WEAK_COHERENT, km[i], false);
		struct qkd_link_params d = fso_link(QKD_SOURCE_WEAK_COHERENT, km[i], true);
		double sn, sdd, qn, qd;

		n.seed = 300 + i;
		d.seed = 400 + i;
		qn = check_run(&n, 2e5, &sn);
		qd = check_run(&d, 2e5, &sdd);
		if (km[i] >= 10 && !(qd - qn > KSIGMA * sqrt(sn * sn + sdd * sdd)))
			fail_msg("%g km: daylight QBER %.4g not above night %.4g", km[i], qd, qn);
	}
}

static void test_sim_entangled(void **state)
{
	(void)state;
	for (int day = 0; day < 2; day++) {
		struct qkd_link_params p = fso_link(QKD_SOURCE_ENTANGLED, 5, day);
		double sd;

		p.seed = 500 + (uint64_t)day;
		p.background_day = 2e-3;	/* enough to see in the coincidences */
		(void)check_run(&p, 1e5, &sd);
	}
}

/* The pulse-level path (an eavesdropper present) draws Bob's noise from the
 * channel too: a beamsplitter tapping nothing leaves the honest figures. */
static void test_sim_pulse_path(void **state)
{
	(void)state;
	for (int src = 0; src < 2; src++) {
		struct qkd_link_params p = fso_link((enum qkd_source_kind)src, 5, true);
		double sd;

		p.seed = 600 + (uint64_t)src;
		p.eve = QKD_EVE_BEAMSPLIT;
		p.eve_fraction = 0.0;
		p.background_day = 1e-3;
		(void)check_run(&p, 1e5, &sd);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_geometry),
		cmocka_unit_test(test_noise),
		cmocka_unit_test(test_fiber_untouched),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_recording_id),
		cmocka_unit_test(test_expected),
		cmocka_unit_test(test_sim_day_night),
		cmocka_unit_test(test_sim_entangled),
		cmocka_unit_test(test_sim_pulse_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
