/* qkd sweep - run `qkd sim` over a range of one link parameter and plot the
 * secret key rate per pulse against it (docs/sweep.md). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "progress.h"
#include "sim_report.h"

#include "qkd/decoy.h"
#include "qkd/engine.h"
#include "qkd/entropy.h"
#include "qkd/error.h"
#include "qkd/optical.h"
#include "qkd/simlink.h"

#define SWEEP_POINTS_MAX 1000
/* The asymptotic decoy-state curve: a typical signal intensity and
 * error-correction efficiency (docs/sweep.md). */
#define SWEEP_DECOY_MU 0.5
#define SWEEP_DECOY_F_EC 1.16

enum {
	O_PARAM = 256, O_FROM, O_TO, O_STEP, O_DEFENSE, O_OUT, O_PULSES, O_SEED, O_JSON,
	O_MU, O_DET_EFF, O_DARK, O_MISALIGN, O_FIBER_LOSS, O_RATE, O_CONFIDENCE, O_DECOY,
	O_DECOY_MU, O_DECOY_PROBS, O_P_X, O_DECOY_PULSES, O_CHANNEL,
	O_HELP = O_CHANNEL + SIM_CHANNEL_OPTS,
};

static const struct option long_opts[] = {
	{"param", required_argument, NULL, O_PARAM},
	{"from", required_argument, NULL, O_FROM},
	{"to", required_argument, NULL, O_TO},
	{"step", required_argument, NULL, O_STEP},
	{"defense", required_argument, NULL, O_DEFENSE},
	{"out", required_argument, NULL, O_OUT},
	{"pulses", required_argument, NULL, O_PULSES},
	{"seed", required_argument, NULL, O_SEED},
	{"json", no_argument, NULL, O_JSON},
	{"mu", required_argument, NULL, O_MU},
	{"detector-efficiency", required_argument, NULL, O_DET_EFF},
	{"dark-count", required_argument, NULL, O_DARK},
	{"misalignment", required_argument, NULL, O_MISALIGN},
	{"fiber-loss", required_argument, NULL, O_FIBER_LOSS},
	{"rate", required_argument, NULL, O_RATE},
	{"confidence", required_argument, NULL, O_CONFIDENCE},
	{"decoy", required_argument, NULL, O_DECOY},
	{"decoy-mu", required_argument, NULL, O_DECOY_MU},
	{"decoy-probs", required_argument, NULL, O_DECOY_PROBS},
	{"p-x", required_argument, NULL, O_P_X},
	{"decoy-pulses", required_argument, NULL, O_DECOY_PULSES},
	SIM_CHANNEL_LONGOPTS(O_CHANNEL),
	{"help", no_argument, NULL, O_HELP},
	{NULL, 0, NULL, 0},
};

struct sweep_options {
	struct qkd_link_params link;
	struct qkd_engine_config cfg;
	bool have_param, have_from, have_to, have_step, json;
	double from, to, step;
	size_t points;
	const char *prefix;
	/* The decoy-state curve (--decoy): a second run per point, same link
	 * but three intensities, biased bases and --defense decoy. */
	bool decoy, decoy_probs_set;
	struct qkd_link_params dlink;
	struct qkd_engine_config dcfg;
};

struct sweep_point {
	double distance_km, qber;	/* NaN when the run has none (qber_source) */
	enum qkd_qber_source qber_source;
	uint64_t pulses, detections, sifted_bits, secret_bits;	/* the run, its own defense */
	uint64_t secret_bennett, secret_slutsky;		/* re-estimated from the totals */
	uint64_t secret_decoy;					/* the decoy run's key */
	double rate_bennett, rate_slutsky, rate_decoy, rate_decoy_finite;
};

static void help(void)
{
	struct qkd_link_params d;

	qkd_link_params_default(&d);
	printf("usage: qkd sweep --param distance --from A --to B --step S [options]\n\n"
	       "Run the simulated link (as qkd sim) at each distance A, A+S, ..., B with the\n"
	       "same seed, and write PREFIX.csv and a gnuplot plot PREFIX.svg of the secret\n"
	       "key rate per pulse for each defense function and the asymptotic decoy-state\n"
	       "rate (docs/sweep.md).\n\n"
	       "  --param NAME               the swept parameter; supported: distance\n"
	       "  --from X --to Y --step S   the range (km); (Y - X) must be a multiple of S,\n"
	       "                             at most %d points\n"
	       "  --defense NAME             the run's defense: bennett or slutsky (default slutsky)\n"
	       "  --decoy MU2,MU3            add the finite-key decoy-state curve (Lim et al. 2014):\n"
	       "                             a second run per point with intensities\n"
	       "                             --decoy-mu (default 0.5), MU2, MU3\n"
	       "  --decoy-probs P1,P2,P3     their probabilities (default 0.8,0.15,0.05)\n"
	       "  --p-x P                    P(basis X) of the decoy run (default 0.9)\n"
	       "  --decoy-pulses N           pulses of the decoy run (default: --pulses)\n"
	       "  --confidence C             standard deviations of margin (default 5)\n"
	       "  --out PREFIX               write PREFIX.csv and PREFIX.svg (default sweep)\n"
	       "  --json                     one JSON object on stdout\n\n"
	       "link (as qkd sim):\n"
	       "  --pulses N                 pulses per point (default %.0e)\n"
	       "  --seed N                   seed, the same at every point (default %llu)\n"
	       "  --mu MU                    mean photon number per pulse (default %g)\n"
	       "  --fiber-loss DB_PER_KM     fiber attenuation (default %g)\n"
	       "  --detector-efficiency E    detector efficiency (default %g)\n"
	       "  --dark-count P             dark-count probability per gate (default %g)\n"
	       "  --misalignment E           optical error probability, 0..0.5 (default %g)\n"
	       "  --rate HZ                  pulse rate (default %.0e)\n",
	       SWEEP_POINTS_MAX, (double)d.pulses, (unsigned long long)d.seed, d.mu,
	       d.fiber_loss_db_per_km, d.detector_efficiency, d.dark_count, d.misalignment,
	       d.rate_hz);
	sim_channel_help(&d);
}

static int parse_one(int c, const char *arg, void *ctx)
{
	struct sweep_options *o = ctx;
	struct qkd_link_params *l = &o->link;
	struct qkd_engine_config *g = &o->cfg;

	switch (c) {
	case O_PARAM:
		if (strcmp(arg, "distance") != 0) {
			cli_errorf("--param", "unknown parameter '%s' (supported: distance)", arg);
			return -1;
		}
		o->have_param = true;
		return 0;
	case O_FROM: o->have_from = true; return cli_opt_real("--from", arg, 0, false, 1e5, &o->from);
	case O_TO: o->have_to = true; return cli_opt_real("--to", arg, 0, false, 1e5, &o->to);
	case O_STEP: o->have_step = true; return cli_opt_real("--step", arg, 0, true, 1e5, &o->step);
	case O_DEFENSE:
		if (qkd_defense_from_name(arg, &g->estimate.defense) != QKD_OK ||
		    g->estimate.defense == QKD_DEFENSE_DECOY) {
			cli_errorf("--defense", "'%s': the run's defense is bennett or slutsky; "
				   "--decoy MU2,MU3 adds the decoy curve", arg);
			return -1;
		}
		return 0;
	case O_OUT:
		if (arg[0] == '\0') {
			cli_error("--out", "empty prefix");
			return -1;
		}
		o->prefix = arg;
		return 0;
	case O_PULSES: return cli_opt_u64("--pulses", arg, 1, QKD_PULSES_MAX, &l->pulses);
	case O_SEED: return cli_opt_u64("--seed", arg, 0, UINT64_MAX, &l->seed);
	case O_JSON: o->json = true; return 0;
	case O_MU: return cli_opt_real("--mu", arg, 0, true, 100, &l->mu);
	case O_DET_EFF: return cli_opt_real("--detector-efficiency", arg, 0, true, 1, &l->detector_efficiency);
	case O_DARK: return cli_opt_real("--dark-count", arg, 0, false, 1, &l->dark_count);
	case O_MISALIGN: return cli_opt_real("--misalignment", arg, 0, false, 0.5, &l->misalignment);
	case O_FIBER_LOSS: return cli_opt_real("--fiber-loss", arg, 0, false, 100, &l->fiber_loss_db_per_km);
	case O_RATE: return cli_opt_real("--rate", arg, 0, true, 1e15, &l->rate_hz);
	case O_CONFIDENCE: return cli_opt_real("--confidence", arg, 0, false, 1e3, &g->estimate.confidence);
	case O_DECOY:
		o->decoy = true;
		o->dlink.intensities = 3;
		return cli_opt_reals("--decoy", arg, 2, o->dlink.mu_decoy);
	case O_DECOY_MU: return cli_opt_real("--decoy-mu", arg, 0, true, 100, &o->dlink.mu);
	case O_DECOY_PROBS:
		o->decoy_probs_set = true;
		return cli_opt_reals("--decoy-probs", arg, 3, o->dlink.p_intensity);
	case O_P_X:
		if (cli_opt_real("--p-x", arg, 0, true, 1, &o->dlink.p_x) != 0)
			return -1;
		if (o->dlink.p_x >= 1) {
			cli_errorf("--p-x", "must be < 1: '%s'", arg);
			return -1;
		}
		return 0;
	case O_DECOY_PULSES:
		return cli_opt_u64("--decoy-pulses", arg, 1, QKD_PULSES_MAX, &o->dlink.pulses);
	default:
		/* The channel: the decoy run's link is copied from this one. */
		if (c >= O_CHANNEL && c < O_CHANNEL + SIM_CHANNEL_OPTS)
			return sim_channel_option(c - O_CHANNEL, arg, l);
		return -1;
	}
}

/* The range: (to - from) must be a whole number of steps, at most
 * SWEEP_POINTS_MAX points. */
static int check_range(struct sweep_options *o)
{
	double span = o->to - o->from, k;

	if (o->to < o->from) {
		cli_errorf("sweep", "--to (%g) must be >= --from (%g)", o->to, o->from);
		return -1;
	}
	k = nearbyint(span / o->step);
	if (fabs(k * o->step - span) > 1e-9 * fmax(1.0, fabs(span))) {
		cli_errorf("sweep", "(to - from) must be a multiple of step: %g - %g is not a "
			   "multiple of %g", o->to, o->from, o->step);
		return -1;
	}
	if (k + 1 > SWEEP_POINTS_MAX) {
		cli_errorf("sweep", "too many points: %.0f (at most %d)", k + 1, SWEEP_POINTS_MAX);
		return -1;
	}
	o->points = (size_t)k + 1;
	return 0;
}

/* The decoy run's link: the swept link with the decoy options on top. */
static int decoy_setup(struct sweep_options *o)
{
	struct qkd_link_params d = o->link;
	const char *why;

	if (!o->decoy) {
		if (o->decoy_probs_set || o->dlink.pulses != 0) {
			cli_error("sweep", "--decoy-probs and --decoy-pulses need --decoy MU2,MU3");
			return -1;
		}
		return 0;
	}
	d.mu = o->dlink.mu;
	d.intensities = 3;
	d.mu_decoy[0] = o->dlink.mu_decoy[0];
	d.mu_decoy[1] = o->dlink.mu_decoy[1];
	memcpy(d.p_intensity, o->dlink.p_intensity, sizeof d.p_intensity);
	d.p_x = o->dlink.p_x;
	if (o->dlink.pulses != 0)
		d.pulses = o->dlink.pulses;
	o->dcfg = o->cfg;
	o->dcfg.estimate.defense = QKD_DEFENSE_DECOY;
	if (sim_options_finish(&d, &o->dcfg, o->decoy_probs_set) != 0)
		return -1;
	if (qkd_link_params_check(&d, &why) != QKD_OK ||
	    qkd_engine_config_check(&o->dcfg, &why) != QKD_OK) {
		cli_errorf("sweep", "decoy run: %s", why);
		return -1;
	}
	o->dlink = d;
	return 0;
}

static int parse(int argc, char **argv, struct sweep_options *o)
{
	const char *why;
	int rc;

	memset(o, 0, sizeof *o);
	qkd_link_params_default(&o->link);
	qkd_engine_config_default(&o->cfg);
	o->dlink.mu = SWEEP_DECOY_MU;
	o->dlink.p_x = 0.9;
	o->prefix = "sweep";
	rc = cli_getopts("sweep", argc, argv, long_opts, O_HELP, help, parse_one, o);
	if (rc != 0)
		return rc;
	if (!o->have_param) {
		cli_error("sweep", "--param is required (supported: distance)");
		return -1;
	}
	if (!o->have_from || !o->have_to || !o->have_step) {
		cli_error("sweep", "--from, --to and --step are required");
		return -1;
	}
	if (check_range(o) != 0)
		return -1;
	o->cfg.estimate.mu = o->link.mu;
	o->link.distance_km = o->to;
	if (qkd_link_params_check(&o->link, &why) != QKD_OK ||
	    qkd_engine_config_check(&o->cfg, &why) != QKD_OK) {
		cli_error("sweep", why);
		return -1;
	}
	if (decoy_setup(o) != 0)
		return -1;
	return 0;
}

/* The engine's progress, mapped onto the whole sweep. */
struct sweep_progress {
	struct progress *p;
	size_t i, n;
};

static void sweep_progress_update(void *ctx, const char *stage, double done)
{
	struct sweep_progress *sp = ctx;

	(void)stage;
	progress_update(sp->p, "sweep", ((double)sp->i + done) / (double)sp->n);
}

/* The key the run's totals give under one defense function (0 when nothing
 * was verified or the run aborted). */
static int estimate(const struct sweep_options *o, const struct qkd_simlink_result *res,
		    enum qkd_defense defense, uint64_t *secret)
{
	const struct qkd_engine_stats *st = &res->bob.st;
	struct qkd_entropy_in in;
	struct qkd_entropy_out out;
	const char *why;

	*secret = 0;
	if (st->abort != QKD_ABORT_NONE || st->pa_input_bits == 0)
		return 0;
	qkd_entropy_in_defaults(&in);
	in.bits = st->pa_input_bits;
	in.errors = st->errors_corrected < in.bits ? st->errors_corrected : in.bits;
	in.disclosed = st->ec_disclosed_bits + st->verify_disclosed_bits;
	in.transmitted = st->pulses;
	in.detected = st->detections;
	in.mu = o->link.mu;
	in.source = QKD_LEAK_WEAK_COHERENT;
	in.defense = defense;
	in.confidence = o->cfg.estimate.confidence;
	in.nonrandom = res->alice.st.entropy.nonrandomness;
	in.pa_margin = o->cfg.estimate.pa_margin;
	if (qkd_entropy_estimate(&in, &out, &why) != QKD_OK) {
		cli_errorf("sweep", "entropy estimate at %g km: %s", o->link.distance_km, why);
		return -1;
	}
	*secret = out.secret_bits;
	return 0;
}

/* Asymptotic decoy-state rate per pulse sent: the rate per sifted pulse of
 * qkd_decoy_asymptotic_rate times 1/2, the probability that BB84's bases
 * match (both bases give key). */
static double decoy_rate(const struct qkd_link_params *l)
{
	double eta = qkd_link_transmittance(l) * l->detector_efficiency, r;

	if (!(eta > 0))
		return 0;
	r = qkd_decoy_asymptotic_rate(SWEEP_DECOY_MU, eta, qkd_link_noise_per_gate(l),
				      l->misalignment, SWEEP_DECOY_F_EC);
	return isfinite(r) && r > 0 ? 0.5 * r : 0;
}

static int run_point(struct sweep_options *o, struct sweep_progress *sp, struct sweep_point *pt)
{
	struct qkd_simlink_result res;
	const struct qkd_engine_stats *st;
	int rc;

	o->link.distance_km = o->from + (double)sp->i * o->step;
	if (sp->i + 1 == sp->n)
		o->link.distance_km = o->to;
	rc = qkd_simlink_run(&o->link, &o->cfg, &res);
	if (rc != QKD_OK) {
		cli_errorf("sweep", "the link failed at %g km: %s", o->link.distance_km,
			   qkd_strerror(rc));
		qkd_simlink_result_cleanup(&res);
		return -1;
	}
	st = &res.bob.st;
	memset(pt, 0, sizeof *pt);
	pt->distance_km = o->link.distance_km;
	pt->pulses = st->pulses;
	pt->detections = st->detections;
	pt->sifted_bits = st->sifted_bits;
	qkd_engine_qber(st, &pt->qber, &pt->qber_source);
	pt->secret_bits = st->secret_bits;
	if (estimate(o, &res, QKD_DEFENSE_BENNETT, &pt->secret_bennett) != 0 ||
	    estimate(o, &res, QKD_DEFENSE_SLUTSKY, &pt->secret_slutsky) != 0) {
		qkd_simlink_result_cleanup(&res);
		return -1;
	}
	qkd_simlink_result_cleanup(&res);
	pt->rate_bennett = pt->pulses ? (double)pt->secret_bennett / (double)pt->pulses : 0;
	pt->rate_slutsky = pt->pulses ? (double)pt->secret_slutsky / (double)pt->pulses : 0;
	pt->rate_decoy = decoy_rate(&o->link);
	if (!o->decoy)
		return 0;
	o->dlink.distance_km = o->link.distance_km;
	rc = qkd_simlink_run(&o->dlink, &o->dcfg, &res);
	if (rc != QKD_OK) {
		cli_errorf("sweep", "the decoy run failed at %g km: %s", o->link.distance_km,
			   qkd_strerror(rc));
		qkd_simlink_result_cleanup(&res);
		return -1;
	}
	pt->secret_decoy = res.bob.st.secret_bits;
	pt->rate_decoy_finite = res.bob.st.pulses ?
		(double)pt->secret_decoy / (double)res.bob.st.pulses : 0;
	qkd_simlink_result_cleanup(&res);
	return 0;
}

static char *path_with(const char *prefix, const char *ext)
{
	size_t n = strlen(prefix) + strlen(ext) + 1;
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s%s", prefix, ext);
	return p;
}

static int write_csv(const char *path, const struct sweep_point *pts, size_t n)
{
	FILE *f = fopen(path, "w");
	int rc = 0;

	if (f == NULL) {
		cli_error(path, strerror(errno));
		return -1;
	}
	fprintf(f, "distance_km,pulses,detections,sifted_bits,qber,secret_bits,"
		   "rate_bennett,rate_slutsky,rate_decoy_asymptotic,secret_bits_decoy,rate_decoy,"
		   "qber_source\n");
	for (size_t i = 0; i < n; i++) {
		char qber[32] = "";	/* empty when the run has no QBER */

		if (!isnan(pts[i].qber))
			snprintf(qber, sizeof qber, "%.6f", pts[i].qber);
		fprintf(f, "%.10g,%llu,%llu,%llu,%s,%llu,%.6e,%.6e,%.6e,%llu,%.6e,%s\n",
			pts[i].distance_km,
			(unsigned long long)pts[i].pulses, (unsigned long long)pts[i].detections,
			(unsigned long long)pts[i].sifted_bits, qber,
			(unsigned long long)pts[i].secret_bits, pts[i].rate_bennett,
			pts[i].rate_slutsky, pts[i].rate_decoy,
			(unsigned long long)pts[i].secret_decoy, pts[i].rate_decoy_finite,
			qkd_qber_source_name(pts[i].qber_source));
	}
	if (ferror(f) || fflush(f) != 0)
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	if (rc != 0)
		cli_error(path, strerror(errno));
	return rc;
}

/* A gnuplot single-quoted string: ' is doubled. */
static void gp_quote(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

static bool gnuplot_in_path(void)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (path == NULL)
		return false;
	while (*path) {
		size_t len = strcspn(path, ":");

		if (len > 0 && len + sizeof "/gnuplot" < sizeof buf) {
			memcpy(buf, path, len);
			strcpy(buf + len, "/gnuplot");
			if (access(buf, X_OK) == 0)
				return true;
		}
		path += len;
		if (*path == ':')
			path++;
	}
	return false;
}

static int write_plot(const struct sweep_options *o, const char *csv, const char *svg,
		      const struct sweep_point *pts, size_t n)
{
	static const char *const titles[4] = {
		"bennett", "slutsky", "decoy, asymptotic (mu 0.5)", "decoy, finite key (Lim et al.)",
	};
	static const int column[4] = { 7, 8, 9, 11 };
	bool any[4] = {false, false, false, false}, first = true;
	FILE *gp;
	int st;

	if (!gnuplot_in_path()) {
		cli_errorf("sweep", "gnuplot not found: no executable 'gnuplot' in PATH "
			   "(the CSV was written to %s)", csv);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		any[0] |= pts[i].rate_bennett > 0;
		any[1] |= pts[i].rate_slutsky > 0;
		any[2] |= pts[i].rate_decoy > 0;
		any[3] |= pts[i].rate_decoy_finite > 0;
	}
	remove(svg);
	fflush(stdout);
	gp = popen("gnuplot", "w");
	if (gp == NULL) {
		cli_errorf("sweep", "gnuplot not found: %s", strerror(errno));
		return -1;
	}
	fprintf(gp, "set terminal svg size 800,500 dynamic enhanced font 'sans,12'\n"
		    "set output ");
	gp_quote(gp, svg);
	fprintf(gp, "\nset datafile separator ','\n"
		    "set logscale y\nset format y '10^{%%L}'\nset grid\n"
		    "set xlabel 'distance (km)'\nset ylabel 'secret key rate per pulse'\n"
		    "set title 'qkd sweep: mu %g, %g dB/km, eta_d %g, %llu pulses per point' noenhanced\n"
		    "set key top right\n"
		    "pos(x) = x > 0 ? x : NaN\n",
		o->link.mu, o->link.fiber_loss_db_per_km, o->link.detector_efficiency,
		(unsigned long long)o->link.pulses);
	if (o->from < o->to)
		fprintf(gp, "set xrange [%.10g:%.10g]\n", o->from, o->to);
	if (!any[0] && !any[1] && !any[2] && !any[3]) {
		fprintf(gp, "set yrange [1e-12:1]\nplot NaN title 'no positive rate at any point'\n");
	} else {
		fprintf(gp, "plot ");
		for (int k = 0; k < 4; k++) {
			if (!any[k])
				continue;
			fprintf(gp, "%s", first ? "" : ", ");
			gp_quote(gp, csv);
			fprintf(gp, " skip 1 using 1:(pos($%d)) with linespoints title '%s'",
				column[k], titles[k]);
			first = false;
		}
		fprintf(gp, "\n");
	}
	st = pclose(gp);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 127)
			cli_error("sweep", "gnuplot not found: the shell could not run it");
		else
			cli_errorf("sweep", "gnuplot failed (status %d) writing %s", st, svg);
		return -1;
	}
	if (access(svg, R_OK) != 0) {
		cli_errorf("sweep", "gnuplot wrote no plot to %s", svg);
		return -1;
	}
	return 0;
}

static int report_json(const struct sweep_options *o, const struct sweep_point *pts, size_t n,
		       const char *csv, const char *svg)
{
	json_t *j = json_object(), *a = json_array();
	int rc;

	for (size_t i = 0; i < n; i++) {
		const struct sweep_point *p = &pts[i];

		json_array_append_new(a, json_pack(
			"{s:f, s:I, s:I, s:I, s:o, s:s, s:I, s:I, s:I, s:f, s:f, s:f, s:I, s:f}",
			"distance_km", p->distance_km, "pulses", (json_int_t)p->pulses,
			"detections", (json_int_t)p->detections,
			"sifted_bits", (json_int_t)p->sifted_bits,
			"qber", isnan(p->qber) ? json_null() : json_real(p->qber),
			"qber_source", qkd_qber_source_name(p->qber_source),
			"secret_bits", (json_int_t)p->secret_bits,
			"secret_bits_bennett", (json_int_t)p->secret_bennett,
			"secret_bits_slutsky", (json_int_t)p->secret_slutsky,
			"rate_bennett", p->rate_bennett, "rate_slutsky", p->rate_slutsky,
			"rate_decoy_asymptotic", p->rate_decoy,
			"secret_bits_decoy", (json_int_t)p->secret_decoy,
			"rate_decoy", p->rate_decoy_finite));
	}
	json_object_set_new(j, "param", json_string("distance"));
	json_object_set_new(j, "defense", json_string(qkd_defense_name(o->cfg.estimate.defense)));
	json_object_set_new(j, "seed", json_integer((json_int_t)o->link.seed));
	json_object_set_new(j, "decoy_mu", json_real(SWEEP_DECOY_MU));
	json_object_set_new(j, "decoy_run", o->decoy ? json_pack("{s:[f,f,f], s:[f,f,f], s:f, s:I}",
		"mu", o->dlink.mu, o->dlink.mu_decoy[0], o->dlink.mu_decoy[1],
		"p_mu", o->dlink.p_intensity[0], o->dlink.p_intensity[1], o->dlink.p_intensity[2],
		"p_x", o->dlink.p_x, "pulses", (json_int_t)o->dlink.pulses) : json_null());
	json_object_set_new(j, "points", a);
	json_object_set_new(j, "csv", json_string(csv));
	json_object_set_new(j, "plot", svg ? json_string(svg) : json_null());
	rc = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
	printf("\n");
	json_decref(j);
	return rc == 0 ? 0 : -1;
}

static void report_human(const struct sweep_options *o, const struct sweep_point *pts,
			 size_t n, const char *csv, const char *svg)
{
	bool sampled = false;

	printf("qkd sweep: distance %g..%g km step %g, mu %g, %llu pulses per point, seed %llu\n"
	       "secret_bits: the run's key (%s); rates: secret bits per pulse\n\n",
	       o->from, o->to, o->step, o->link.mu, (unsigned long long)o->link.pulses,
	       (unsigned long long)o->link.seed, qkd_defense_name(o->cfg.estimate.defense));
	printf("%10s %12s %12s %8s %12s %12s %12s %12s %12s\n", "km", "detections", "sifted",
	       "QBER %", "secret_bits", "bennett", "slutsky", "decoy asym", "decoy");
	for (size_t i = 0; i < n; i++) {
		char qber[16] = "       -";	/* no sample, nothing corrected */

		if (!isnan(pts[i].qber))
			snprintf(qber, sizeof qber, "%7.3f%s", 100 * pts[i].qber,
				 pts[i].qber_source == QKD_QBER_SAMPLE ? "*" : " ");
		sampled |= pts[i].qber_source == QKD_QBER_SAMPLE;
		printf("%10g %12llu %12llu %8s %12llu %12.4e %12.4e %12.4e %12.4e\n",
		       pts[i].distance_km,
		       (unsigned long long)pts[i].detections,
		       (unsigned long long)pts[i].sifted_bits, qber,
		       (unsigned long long)pts[i].secret_bits, pts[i].rate_bennett,
		       pts[i].rate_slutsky, pts[i].rate_decoy, pts[i].rate_decoy_finite);
	}
	if (sampled)
		printf("\n* QBER of the sample: nothing was corrected (the run aborted on the sample)\n");
	printf("\ncsv: %s\nplot: %s\n", csv, svg);
}

int cmd_sweep(int argc, char **argv)
{
	struct sweep_options o;
	struct sweep_point *pts = NULL;
	struct progress prog;
	struct sweep_progress sp;
	char *csv = NULL, *svg = NULL;
	int rc = CLI_EXIT_FAIL;

	rc = parse(argc, argv, &o);
	if (rc != 0)
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	rc = CLI_EXIT_FAIL;
	pts = calloc(o.points, sizeof *pts);
	csv = path_with(o.prefix, ".csv");
	svg = path_with(o.prefix, ".svg");
	if (pts == NULL || csv == NULL || svg == NULL) {
		cli_error("sweep", "out of memory");
		goto out;
	}
	progress_init(&prog, isatty(STDERR_FILENO));
	sp.p = &prog;
	sp.n = o.points;
	o.cfg.progress = sweep_progress_update;
	o.cfg.progress_ctx = &sp;
	for (sp.i = 0; sp.i < o.points; sp.i++) {
		if (run_point(&o, &sp, &pts[sp.i]) != 0) {
			progress_done(&prog);
			goto out;
		}
		progress_update(&prog, "sweep", (double)(sp.i + 1) / (double)o.points);
	}
	progress_done(&prog);
	if (write_csv(csv, pts, o.points) != 0 || write_plot(&o, csv, svg, pts, o.points) != 0)
		goto out;
	if (o.json ? report_json(&o, pts, o.points, csv, svg) != 0 :
		     (report_human(&o, pts, o.points, csv, svg), false))
		goto out;
	rc = CLI_EXIT_OK;
out:
	free(pts);
	free(csv);
	free(svg);
	return rc;
}
