/* node_status.h - the daemon of `qkd node` and its status socket. */
#ifndef QKD_NODE_STATUS_H
#define QKD_NODE_STATUS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "qkd/log.h"
#include "qkd/node.h"
#include "qkd/node_config.h"

struct qkd_node_kme_server;
struct MHD_Daemon;

struct node_daemon {
	struct qkd_node_config cfg;
	struct qkd_link_ctx links[QKD_NODE_LINKS_MAX];
	atomic_bool done[QKD_NODE_LINKS_MAX];
	size_t nctx;			/* link contexts initialized */
	atomic_bool stop;
	struct qkd_logger log;
	struct node_logsink {
		FILE *f;
		pthread_mutex_t lock;
	} logsink;
	int status_fd;			/* listening unix socket, -1 if none */
	struct qkd_node_kme_server *kme;	/* the key manager, NULL if none */
	struct MHD_Daemon *metrics;		/* node_metrics.c, NULL if off */
};

struct node_link_slot {
	struct qkd_link_ctx *ctx;
	atomic_bool *done;
};

/* Bind the status socket at cfg.status (a stale socket file nobody listens
 * on is replaced), non-blocking, for node_status_thread. 0, or -1 after
 * printing "qkd: CONFIG: ...". */
int node_status_listen(struct node_daemon *d, const char *config);
/* Serve `qkd status` requests on d->status_fd until d->stop (seen within
 * 200 ms). One thread, a poll() loop over up to 32 clients at once, each
 * dropped 2 s after it connected whether or not it has been answered; a
 * 33rd client evicts the oldest. arg is the node_daemon, which must outlive
 * the thread; the thread reads d->cfg and d->links and closes only the
 * client sockets, never d->status_fd. Returns NULL. */
void *node_status_thread(void *arg);
/* Close and remove the socket. */
void node_status_close(struct node_daemon *d);

#endif
