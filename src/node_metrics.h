/* node_metrics.h - the Prometheus metrics endpoint of `qkd node`
 * (node_metrics.c, docs/metrics.md). */
#ifndef QKD_NODE_METRICS_H
#define QKD_NODE_METRICS_H

#include "node_status.h"

/* When cfg.metrics is set: bind it and serve GET /metrics from a thread of
 * libmicrohttpd's, reading d->cfg and d->node (set before, which must
 * outlive the server) through the node's accessors. Logs the address. 0 (also when
 * off), or -1 after printing "qkd: CONFIG:LINE: node.metrics: ...". */
int node_metrics_start(struct node_daemon *d, const char *config);
/* Close every connection and the socket, join the thread. Accepts a
 * daemon whose metrics never started. */
void node_metrics_stop(struct node_daemon *d);

#endif
