/* node_status.h - the daemon of `qkd node` and its status socket. */
#ifndef QKD_NODE_STATUS_H
#define QKD_NODE_STATUS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "qkd/log.h"
#include "qkd/node.h"
#include "qkd/node_config.h"

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
};

struct node_link_slot {
	struct qkd_link_ctx *ctx;
	atomic_bool *done;
};

/* Bind the status socket at cfg.status (a stale socket file nobody listens
 * on is replaced). 0, or -1 after printing "qkd: CONFIG: ...". */
int node_status_listen(struct node_daemon *d, const char *config);
/* Serve `qkd status` requests until d->stop. */
void *node_status_thread(void *arg);
/* Close and remove the socket. */
void node_status_close(struct node_daemon *d);

#endif
