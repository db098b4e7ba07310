/* qkd sim - run a whole simulated link (DESIGN.md sections 2-5). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "progress.h"
#include "sim_report.h"

#include "qkd/ec.h"
#include "qkd/error.h"
#include "qkd/recording.h"

enum {
	O_PULSES = 256, O_RATE, O_MU, O_DISTANCE, O_FIBER_LOSS, O_DET_EFF, O_DARK,
	O_MISALIGN, O_RNG_BIAS, O_SEED, O_CHANNEL,
	O_SOURCE = O_CHANNEL + SIM_CHANNEL_OPTS, O_EC, O_FRAME_BITS, O_IN_FLIGHT, O_DEFENSE,
	O_CONFIDENCE, O_PA_MARGIN, O_ABORT_QBER, O_SAMPLE_BITS, O_PA_BLOCK, O_JSON,
	O_OUT_ALICE, O_OUT_BOB, O_EVE, O_DECOY, O_DECOY_PROBS, O_P_X, O_EPS_SEC, O_EPS_COR,
	O_RECORD, O_REPLAY, O_HELP,
};

static const struct option long_opts[] = {
	{"pulses", required_argument, NULL, O_PULSES},
	{"rate", required_argument, NULL, O_RATE},
	{"mu", required_argument, NULL, O_MU},
	{"distance", required_argument, NULL, O_DISTANCE},
	{"fiber-loss", required_argument, NULL, O_FIBER_LOSS},
	{"detector-efficiency", required_argument, NULL, O_DET_EFF},
	{"dark-count", required_argument, NULL, O_DARK},
	{"misalignment", required_argument, NULL, O_MISALIGN},
	{"rng-bias", required_argument, NULL, O_RNG_BIAS},
	{"seed", required_argument, NULL, O_SEED},
	{"source", required_argument, NULL, O_SOURCE},
	SIM_CHANNEL_LONGOPTS(O_CHANNEL),
	{"ec", required_argument, NULL, O_EC},
	{"frame-bits", required_argument, NULL, O_FRAME_BITS},
	{"frames-in-flight", required_argument, NULL, O_IN_FLIGHT},
	{"defense", required_argument, NULL, O_DEFENSE},
	{"confidence", required_argument, NULL, O_CONFIDENCE},
	{"pa-margin", required_argument, NULL, O_PA_MARGIN},
	{"abort-qber", required_argument, NULL, O_ABORT_QBER},
	{"sample-bits", required_argument, NULL, O_SAMPLE_BITS},
	{"pa-block", required_argument, NULL, O_PA_BLOCK},
	{"json", no_argument, NULL, O_JSON},
	{"out-alice", required_argument, NULL, O_OUT_ALICE},
	{"out-bob", required_argument, NULL, O_OUT_BOB},
	{"eve", required_argument, NULL, O_EVE},
	{"decoy", required_argument, NULL, O_DECOY},
	{"decoy-probs", required_argument, NULL, O_DECOY_PROBS},
	{"p-x", required_argument, NULL, O_P_X},
	{"eps-sec", required_argument, NULL, O_EPS_SEC},
	{"eps-cor", required_argument, NULL, O_EPS_COR},
	{"record", required_argument, NULL, O_RECORD},
	{"replay", required_argument, NULL, O_REPLAY},
	{"help", no_argument, NULL, O_HELP},
	{NULL, 0, NULL, 0},
};

static void help(void)
{
	struct qkd_link_params d;

	qkd_link_params_default(&d);
	printf("usage: qkd sim [options]\n\n"
	       "Simulate a BB84 link and distil a key: Alice and Bob run as two processes\n"
	       "that talk only through serialized messages.\n\n"
	       "optical link (DESIGN.md section 3):\n"
	       "  --source KIND              weak-coherent (default) or entangled\n"
	       "  --pulses N                 pulses (slots) to send (default %.0e)\n"
	       "  --rate HZ                  pulse rate, turns counts into rates (default %.0e)\n"
	       "  --mu MU                    mean photon number per pulse (default %g)\n"
	       "  --distance KM              fiber length (default %g)\n"
	       "  --fiber-loss DB_PER_KM     fiber attenuation (default %g)\n"
	       "  --detector-efficiency E    detector efficiency (default %g)\n"
	       "  --dark-count P             dark-count probability per gate (default %g)\n"
	       "  --misalignment E           optical error probability, 0..0.5 (default %g)\n"
	       "  --rng-bias P               Alice's RNG draws 1 with probability P (default 0.5)\n"
	       "  --seed N                   seed: the same seed gives the same keys (default %llu)\n"
	       "  --decoy MU2,MU3            decoy intensities: three-intensity BB84 (mu > MU2+MU3,\n"
	       "                             MU2 > MU3 >= 0)\n"
	       "  --decoy-probs P1,P2,P3     probabilities of mu, MU2, MU3 (default 0.8,0.15,0.05)\n"
	       "  --p-x P                    probability of basis X for both parties (default 0.5)\n"
	       "  --eve ATTACK               eavesdropper on the fiber: intercept-resend:F, pns,\n"
	       "                             beamsplit:F or none (docs/optical-model.md)\n",
	       (double)d.pulses, d.rate_hz, d.mu, d.distance_km, d.fiber_loss_db_per_km,
	       d.detector_efficiency, d.dark_count, d.misalignment, (unsigned long long)d.seed);
	sim_channel_help(&d);
	printf("\n"
	       "protocol (DESIGN.md sections 4-5):\n"
	       "  --ec NAME                  error-correction code (default cascade):\n");
	for (const char *const *n = qkd_ec_names(); *n != NULL; n++)
		printf("        %-20s %s\n", *n, qkd_ec_describe(*n));
	printf("  --frame-bits N             error-correction frame length (default %d)\n"
	       "  --frames-in-flight N       frames corrected concurrently (default 64)\n"
	       "  --sample-bits N            bits disclosed to estimate the first QBER (default 1024)\n"
	       "  --abort-qber Q             no key above this QBER (default 0.11)\n"
	       "  --defense NAME             bennett, slutsky (default) or decoy (needs --decoy)\n"
	       "  --eps-sec E                decoy: secrecy parameter (default 1e-10)\n"
	       "  --eps-cor E                decoy: correctness parameter (default 1e-15)\n"
	       "  --confidence C             standard deviations of margin (default 5)\n"
	       "  --pa-margin BITS           privacy-amplification security margin (default 0)\n"
	       "  --pa-block BITS            largest privacy-amplification block (default 2^27)\n\n"
	       "output:\n"
	       "  --json                     one JSON object on stdout (fields: man qkd)\n"
	       "  --out-alice FILE           write Alice's final key (raw bytes, LSB first)\n"
	       "  --out-bob FILE             write Bob's final key\n"
	       "  --record DIR               also record the link: DIR/alice.qkdrec, DIR/bob.qkdrec\n"
	       "  --replay DIR               run from a recording instead of the simulator (the\n"
	       "                             recording fixes the link; docs/recording-format.md)\n",
	       QKD_EC_DEFAULT_FRAME_BITS);
}

static int opt_size(const char *opt, const char *arg, uint64_t lo, uint64_t hi, size_t *out)
{
	uint64_t v;

	if (cli_opt_u64(opt, arg, lo, hi, &v) != 0)
		return -1;
	*out = (size_t)v;
	return 0;
}

/* A probability or epsilon strictly inside (0,1). */
static int opt_open_unit(const char *opt, const char *arg, double *out)
{
	if (cli_opt_real(opt, arg, 0, true, 1, out) != 0)
		return -1;
	if (*out >= 1) {
		cli_errorf(opt, "must be < 1: '%s'", arg);
		return -1;
	}
	return 0;
}

static int opt_eve(const char *arg, struct qkd_link_params *l)
{
	const char *why;

	if (qkd_eve_parse(arg, l, &why) != QKD_OK) {
		cli_errorf("--eve", "%s: '%s'", why, arg);
		return -1;
	}
	return 0;
}

/* The options that describe the optical link, which a recording fixes. */
static bool link_option(int c)
{
	return (c >= O_PULSES && c <= O_SOURCE && c != O_SEED) || c == O_EVE || c == O_DECOY ||
	       c == O_DECOY_PROBS || c == O_P_X;
}

static int parse_one(int c, const char *arg, void *ctx)
{
	struct sim_options *o = ctx;
	struct qkd_link_params *l = &o->link;
	struct qkd_engine_config *g = &o->cfg;
	size_t sz;

	switch (c) {
	case O_PULSES: return cli_opt_u64("--pulses", arg, 1, QKD_PULSES_MAX, &l->pulses);
	case O_RATE: return cli_opt_real("--rate", arg, 0, true, 1e15, &l->rate_hz);
	case O_MU: return cli_opt_real("--mu", arg, 0, true, 100, &l->mu);
	case O_DISTANCE: return cli_opt_real("--distance", arg, 0, false, 1e5, &l->distance_km);
	case O_FIBER_LOSS: return cli_opt_real("--fiber-loss", arg, 0, false, 100, &l->fiber_loss_db_per_km);
	case O_DET_EFF: return cli_opt_real("--detector-efficiency", arg, 0, true, 1, &l->detector_efficiency);
	case O_DARK: return cli_opt_real("--dark-count", arg, 0, false, 1, &l->dark_count);
	case O_MISALIGN: return cli_opt_real("--misalignment", arg, 0, false, 0.5, &l->misalignment);
	case O_RNG_BIAS: return cli_opt_real("--rng-bias", arg, 0, false, 1, &l->rng_bias);
	case O_SEED: return cli_opt_u64("--seed", arg, 0, UINT64_MAX, &l->seed);
	case O_SOURCE:
		if (qkd_source_parse(arg, &l->source) != QKD_OK) {
			cli_errorf("--source", "unknown source '%s' (weak-coherent or entangled)", arg);
			return -1;
		}
		return qkd_leak_model_from_name(qkd_source_name(l->source), &g->estimate.source);
	case O_EC:
		if (!qkd_ec_name_valid(arg) || strlen(arg) >= sizeof g->ec) {
			cli_errorf("--ec", "unknown error-correction code '%s' (see qkd sim --help)", arg);
			return -1;
		}
		strcpy(g->ec, arg);
		return 0;
	case O_FRAME_BITS: return opt_size("--frame-bits", arg, 64, (uint64_t)1 << 28, &g->frame_bits);
	case O_IN_FLIGHT:
		if (opt_size("--frames-in-flight", arg, 1, 4096, &sz) != 0)
			return -1;
		g->frames_in_flight = (unsigned)sz;
		return 0;
	case O_SAMPLE_BITS: return opt_size("--sample-bits", arg, 0, (uint64_t)1 << 24, &g->sample_bits);
	case O_PA_BLOCK: return opt_size("--pa-block", arg, 64, (uint64_t)1 << 34, &g->pa_block_bits);
	case O_ABORT_QBER: return cli_opt_real("--abort-qber", arg, 0, true, 0.5, &g->abort_qber);
	case O_DEFENSE:
		if (qkd_defense_from_name(arg, &g->estimate.defense) != QKD_OK) {
			cli_errorf("--defense", "unknown defense function '%s' (bennett, slutsky or decoy)", arg);
			return -1;
		}
		return 0;
	case O_EVE: return opt_eve(arg, l);
	case O_DECOY:
		l->intensities = 3;
		return cli_opt_reals("--decoy", arg, 2, l->mu_decoy);
	case O_DECOY_PROBS:
		o->decoy_probs_set = true;
		return cli_opt_reals("--decoy-probs", arg, 3, l->p_intensity);
	case O_P_X: return opt_open_unit("--p-x", arg, &l->p_x);
	case O_EPS_SEC: return opt_open_unit("--eps-sec", arg, &g->decoy.eps_sec);
	case O_EPS_COR: return opt_open_unit("--eps-cor", arg, &g->decoy.eps_cor);
	case O_CONFIDENCE: return cli_opt_real("--confidence", arg, 0, false, 1e3, &g->estimate.confidence);
	case O_PA_MARGIN: return cli_opt_real("--pa-margin", arg, 0, false, 1e15, &g->estimate.pa_margin);
	case O_JSON: o->json = true; return 0;
	case O_OUT_ALICE: o->out_alice = arg; return 0;
	case O_OUT_BOB: o->out_bob = arg; return 0;
	default:
		if (c >= O_CHANNEL && c < O_CHANNEL + SIM_CHANNEL_OPTS)
			return sim_channel_option(c - O_CHANNEL, arg, l);
		return -1;
	}
}

/* The recording options, and which link options were given (a replay
 * refuses them); every other option is parse_one's. */
static int parse_rec(int c, const char *arg, void *ctx)
{
	struct sim_options *o = ctx;

	o->link_given |= link_option(c);
	o->seed_given |= c == O_SEED;
	if (c == O_RECORD)
		o->record_dir = arg;
	else if (c == O_REPLAY)
		o->replay_dir = arg;
	else
		return parse_one(c, arg, ctx);
	return 0;
}

/* --replay: the recording fixes the link, so link options are refused. */
static int replay_options(const struct sim_options *o)
{
	if (o->record_dir != NULL) {
		cli_error("--replay", "cannot be combined with --record");
		return -1;
	}
	if (o->link_given) {
		cli_error("--replay", "the recording fixes the optical link: drop the link "
			  "options (--mu, --distance, --pulses, --decoy, ...)");
		return -1;
	}
	return 0;
}

/* --replay: check the recording, take the link from its headers, then
 * finish and check the options as parse() does for a simulated link. */
static int replay_setup(struct sim_options *o)
{
	struct qkd_rec_info info;
	const char *file = NULL, *why = NULL;
	uint64_t seed = o->link.seed;
	int rc = qkd_rec_check_dir(o->replay_dir, &info, &file, &why);

	if (rc != QKD_OK) {
		cli_errorf(o->replay_dir, "%s: %s", file ? file : "recording",
			   why ? why : qkd_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	qkd_rec_info_to_link(&info, &o->link);
	if (o->seed_given)
		o->link.seed = seed;	/* the protocol RNGs' seed; default: the recording's */
	if (o->cfg.estimate.defense == QKD_DEFENSE_DECOY && o->link.intensities != 3) {
		cli_error("--defense", "decoy needs a recording with decoy intensities");
		return CLI_EXIT_USAGE;
	}
	if (qkd_leak_model_from_name(qkd_source_name(o->link.source),
				     &o->cfg.estimate.source) != QKD_OK ||
	    sim_options_finish(&o->link, &o->cfg, o->link.intensities == 3) != 0)
		return CLI_EXIT_USAGE;
	if (qkd_link_params_check(&o->link, &why) != QKD_OK ||
	    qkd_engine_config_check(&o->cfg, &why) != QKD_OK) {
		cli_error("sim", why);
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

/* --record: a pass over the simulator before the run (it is a pure
 * function of its parameters, so the run sees the same data). */
static int record(const struct sim_options *o)
{
	struct qkd_sim *sim = NULL;
	const char *why = NULL;
	int rc = qkd_sim_new(&sim, &o->link);

	if (rc == QKD_OK)
		rc = qkd_rec_record_sim(sim, o->record_dir, &why);
	qkd_sim_free(sim);
	if (rc != QKD_OK) {
		cli_errorf(o->record_dir, "cannot record: %s", why ? why : qkd_strerror(rc));
		return -1;
	}
	return 0;
}

static int parse(int argc, char **argv, struct sim_options *o)
{
	const char *why;
	int rc;

	memset(o, 0, sizeof *o);
	qkd_link_params_default(&o->link);
	qkd_engine_config_default(&o->cfg);
	rc = cli_getopts("sim", argc, argv, long_opts, O_HELP, help, parse_rec, o);
	if (rc != 0)
		return rc;
	if (o->replay_dir != NULL)
		return replay_options(o);	/* the rest once the recording is read */
	if (sim_options_finish(&o->link, &o->cfg, o->decoy_probs_set) != 0)
		return -1;
	if (qkd_link_params_check(&o->link, &why) != QKD_OK ||
	    qkd_engine_config_check(&o->cfg, &why) != QKD_OK) {
		cli_error("sim", why);
		return -1;
	}
	return 0;
}

int cmd_sim(int argc, char **argv)
{
	struct sim_options o;
	struct qkd_simlink_result res;
	struct qkd_party_sources files;
	struct progress prog;
	int rc;

	rc = parse(argc, argv, &o);
	if (rc != 0)
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	if (o.replay_dir != NULL && (rc = replay_setup(&o)) != CLI_EXIT_OK)
		return rc;
	if (o.record_dir != NULL && record(&o) != 0)
		return CLI_EXIT_FAIL;
	if (o.replay_dir != NULL)
		qkd_file_party_sources(&files, o.replay_dir);
	progress_init(&prog, isatty(STDERR_FILENO));
	o.cfg.progress = progress_update;
	o.cfg.progress_ctx = &prog;
	rc = qkd_simlink_run_sources(&o.link, &o.cfg, o.replay_dir ? &files : NULL, &res);
	progress_done(&prog);
	if (rc != QKD_OK) {
		cli_errorf("sim", "the link failed: %s", qkd_strerror(rc));
		qkd_simlink_result_cleanup(&res);
		return CLI_EXIT_FAIL;
	}
	rc = sim_report(&o, &res);
	qkd_simlink_result_cleanup(&res);
	return rc;
}
