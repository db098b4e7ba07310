/* node_status.h - the process around a `qkd node` (its log sink, the
 * status socket, the metrics endpoint) and the status socket's server.
 * The links and the key manager are the node object's (qkd/node.h); this
 * side reads them only through its accessors. */
#ifndef QKD_NODE_STATUS_H
#define QKD_NODE_STATUS_H

#include <pthread.h>
#include <stdio.h>

#include "logsink.h"
#include "qkd/log.h"
#include "qkd/node.h"
#include "qkd/node_config.h"

struct MHD_Daemon;

struct node_daemon {
	struct qkd_node_config cfg;	/* as loaded; the node keeps its own copy */
	struct qkd_node *node;		/* NULL until qkd_node_new succeeded */
	struct qkd_logger log;
	struct logsink logsink;
	int status_fd;			/* listening unix socket, -1 if none */
	struct MHD_Daemon *metrics;	/* node_metrics.c, NULL if off */
};

/* Bind the status socket at cfg.status (a stale socket file nobody listens
 * on is replaced), non-blocking, for node_status_thread. 0, or -1 after
 * printing "qkd: CONFIG: ...". */
int node_status_listen(struct node_daemon *d, const char *config);
/* Serve `qkd status` requests on d->status_fd until the node stops
 * (qkd_node_stopping, seen within 200 ms). One thread, a poll() loop over
 * up to 32 clients at once, each dropped 2 s after it connected whether or
 * not it has been answered; a 33rd client evicts the oldest. arg is the
 * node_daemon, whose node must outlive the thread; the thread reads d->cfg
 * and the node's links through qkd_node_link_status and closes only the
 * client sockets, never d->status_fd. Returns NULL. */
void *node_status_thread(void *arg);
/* The "relay" object of the status (node_status_relay.c), or NULL when
 * the node has no relay. Caller decrefs. */
struct json_t;
struct json_t *node_status_relay_json(struct node_daemon *d);
/* Close and remove the socket. */
void node_status_close(struct node_daemon *d);

#endif
