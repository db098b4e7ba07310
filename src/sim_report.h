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

/* Write the key files and print the report; returns the exit code. */
int sim_report(const struct sim_options *o, const struct qkd_simlink_result *res);

#endif
