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
	const char *out_alice, *out_bob;
};

/* Write the key files and print the report; returns the exit code. */
int sim_report(const struct sim_options *o, const struct qkd_simlink_result *res);

#endif
