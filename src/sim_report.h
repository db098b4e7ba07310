/* sim_report.h - what `qkd sim` prints (human summary or JSON) and writes. */
#ifndef QKD_SIM_REPORT_H
#define QKD_SIM_REPORT_H

#include <stdbool.h>

#include "qkd/engine.h"
#include "qkd/optical.h"
#include "qkd/simlink.h"

struct sim_options {
	struct qkd_link_params link;
	struct qkd_engine_config cfg;
	bool json;
	bool decoy_probs_set;	/* --decoy-probs was given */
	const char *out_alice, *out_bob;
	/* --record DIR / --replay DIR (docs/recording-format.md). In a replay
	 * link comes from the recording and the simulator's model is unknown. */
	const char *record_dir, *replay_dir;
	bool link_given;	/* an optical-link option other than --seed was given */
	bool seed_given;
};

/* After the options: default decoy probabilities, and the engine settings
 * that follow from the link (mu, the decoy intensities and P(X)). Checks
 * the combinations no single option can (--defense decoy without --decoy).
 * 0, or -1 after printing "qkd: ...". */
int sim_options_finish(struct qkd_link_params *l, struct qkd_engine_config *g,
		       bool decoy_probs_set);

/* The channel options (--channel ... --night), shared by qkd sim and qkd
 * sweep: a command lists SIM_CHANNEL_LONGOPTS(first) in its getopt table,
 * its codes first .. first + SIM_CHANNEL_OPTS - 1, and hands them to
 * sim_channel_option(code - first, arg, l): 0, or -1 after "qkd: ...". */
#define SIM_CHANNEL_OPTS 9
#define SIM_CHANNEL_LONGOPTS(first) \
	{"channel", required_argument, NULL, (first)}, \
	{"tx-aperture", required_argument, NULL, (first) + 1}, \
	{"rx-aperture", required_argument, NULL, (first) + 2}, \
	{"beam-divergence", required_argument, NULL, (first) + 3}, \
	{"atmos-loss", required_argument, NULL, (first) + 4}, \
	{"background-day", required_argument, NULL, (first) + 5}, \
	{"background-night", required_argument, NULL, (first) + 6}, \
	{"daylight", no_argument, NULL, (first) + 7}, \
	{"night", no_argument, NULL, (first) + 8}
int sim_channel_option(int which, const char *arg, struct qkd_link_params *l);
/* The help lines of those options, with the defaults of d. */
void sim_channel_help(const struct qkd_link_params *d);

/* Write the key files and print the report; returns the exit code. */
int sim_report(const struct sim_options *o, const struct qkd_simlink_result *res);

#endif
