/* qkd/metrics.h - a node's figures in the Prometheus text exposition format
 * 0.0.4 (docs/metrics.md lists every metric).
 *
 * The renderer is a pure function of a snapshot: the links' statuses as
 * `qkd status` shows them (qkd_link_status_get) and the key manager's
 * counters (qkd_kme_server_counters). It does no I/O and takes no lock, so
 * the caller decides when the figures are read; `qkd node` serves the text
 * on plain HTTP (src/node_metrics.c, `node.metrics` in docs/config.md).
 */
#ifndef QKD_METRICS_H
#define QKD_METRICS_H

#include <stddef.h>

#include "qkd/kme_server.h"
#include "qkd/node.h"
#include "qkd/node_config.h"
#include "qkd/relay.h"

/* The Content-Type of the text (the format's version 0.0.4). */
#define QKD_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* One link: its name (any bytes but NUL; escaped in the labels) and role
 * from the configuration, and a copy of its status. */
struct qkd_metrics_link {
	const char *name;
	enum qkd_link_role role;
	struct qkd_link_status status;
};

/* The relay's figures: its counters, the nodes it knows, its routes. */
struct qkd_metrics_route {
	char dest[QKD_NODE_NAME_MAX], next_hop[QKD_NODE_NAME_MAX];
	double cost;
	size_t hops;
};
struct qkd_metrics_relay {
	struct qkd_relay_stats stats;
	size_t nodes;				/* in the link-state database */
	size_t nroutes;
	const struct qkd_metrics_route *routes;
};

struct qkd_metrics_snapshot {
	const char *node;			/* the node's name */
	const struct qkd_metrics_link *links;
	size_t nlinks;
	/* The key manager's counters; NULL: the node has none, and the
	 * qkd_kme_ families are left out. */
	const struct qkd_kme_counters *kme;
	/* NULL: the node has no relay, and the qkd_relay_ families are left out. */
	const struct qkd_metrics_relay *relay;
};

/* Render snap into *out (malloc'd, NUL-terminated, caller frees; *len its
 * length without the NUL). Families in a fixed order, each once with its
 * HELP and TYPE lines; label values escaped (backslash, double quote,
 * newline) as the format requires. snap is only read. 0, or QKD_ERR_NOMEM
 * (*out NULL) or QKD_ERR_INVAL (snap, out or len NULL, or a NULL name). */
__attribute__((warn_unused_result))
int qkd_metrics_render(const struct qkd_metrics_snapshot *snap, char **out, size_t *len);

#endif
