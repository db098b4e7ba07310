/* netsim_report.h - how `qkd netsim` shows a run (src/cmd_netsim.c): a
 * table or one JSON object on stdout (docs/netsim.md "Output"). */
#ifndef QKD_NETSIM_REPORT_H
#define QKD_NETSIM_REPORT_H

#include <jansson.h>

#include "qkd/netsim.h"
#include "qkd/topology.h"

/* 0, or -1 when stdout could not be written. */
int netsim_report_human(const struct qkd_netsim_config *c, const struct qkd_topology *t,
			const struct qkd_netsim_result *r);
/* routes: the --routes probes (netsim_probes_json), stolen; NULL for none. */
int netsim_report_json(const struct qkd_netsim_config *c, const struct qkd_topology *t,
		       const struct qkd_netsim_result *r, json_t *routes);

#endif
