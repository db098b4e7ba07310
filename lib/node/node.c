/* node.c - the node object (qkd/node.h): one running `qkd node`, owner of
 * its configuration, its links and their threads, the stop flag they
 * share, and its key manager (docs/node.md, "The node object").
 *
 * Everything is opened and bound by qkd_node_new, before any thread, so a
 * refusal is a startup error naming what was refused; after that nothing
 * ends on its own. The link contexts live in the node (never moved) because
 * the key manager's threads hold pointers into them. n->lock guards only the
 * key manager pointer, so the metrics thread can ask for its counters while
 * qkd_node_stop takes it down. Neighbours: link.c (one link's life),
 * kme_node.c (the key manager), src/cmd_node.c (the process around it). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../kme/node_kme_int.h"
#include "node_int.h"
#include "node_relay.h"

#include "qkd/error.h"

/* A link sees the stop flag between rounds. qkd_node_stop gives the round
 * in progress STOP_GRACE_S to end (both stores then agree on its block)
 * before cutting the sockets; a round cut in its commit leaves a PENDING
 * block that only the next connection settles (docs/node.md). */
#define STOP_GRACE_S 5

/* One link thread's slot: the context and whether the thread is done. */
struct node_link_slot {
	struct qkd_link_ctx *ctx;
	atomic_bool done;
	pthread_t thread;
};

struct qkd_node {
	struct qkd_node_config cfg;		/* the node's own copy */
	const struct qkd_logger *log;		/* borrowed */
	atomic_bool stop;			/* every link's *stop */
	struct qkd_link_ctx links[QKD_NODE_LINKS_MAX];
	struct node_link_slot slots[QKD_NODE_LINKS_MAX];
	size_t nctx;				/* link contexts initialized */
	size_t nthreads;			/* link threads started */
	bool started, joined;
	pthread_mutex_t lock;			/* guards kme */
	struct qkd_node_kme_server *kme;	/* NULL: none, or stopped */
	struct node_relay *relay;		/* routing and key relay (node_relay.c) */
};

static void set_error(struct qkd_node_error *err, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_error(struct qkd_node_error *err, unsigned line, const char *fmt, ...)
{
	va_list ap;

	err->line = line;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof err->text, fmt, ap);
	va_end(ap);
}

/* Link i: its context, its listening socket, then its store and state. */
static int open_link(struct qkd_node *n, size_t i, struct qkd_node_error *err)
{
	const struct qkd_link_config *l = &n->cfg.links[i];
	const struct qkd_node_addr *a = l->role == QKD_ROLE_ALICE ? &l->classical : &l->fiber;
	const char *why = NULL;
	int rc;

	rc = qkd_link_ctx_init(&n->links[i], l, n->log, &n->stop);
	if (rc != QKD_OK) {
		set_error(err, 0, "out of memory");
		return rc;
	}
	n->nctx = i + 1;
	rc = qkd_link_bind(&n->links[i], &why);
	if (rc != QKD_OK) {
		set_error(err, l->line, "link %s: %s: %s", l->name, a->text, why);
		return rc;
	}
	rc = qkd_link_open(&n->links[i], &why);
	if (rc != QKD_OK)
		set_error(err, l->line, "link %s: %s: %s", l->name, l->store, why);
	return rc;
}

/* The key manager, when the configuration has a kme group: bound before
 * any link runs, so a port in use is a startup error. */
static int start_kme(struct qkd_node *n, struct qkd_node_error *err)
{
	const struct qkd_node_kme *k = &n->cfg.kme;
	struct node_kme_relay hooks;
	const char *why = NULL;
	int rc;

	if (!k->enabled)
		return QKD_OK;
	node_relay_kme_hooks(n->relay, &hooks);
	rc = qkd_node_kme_start(&n->kme, &n->cfg, n->links, &hooks, n->log, &why);
	if (rc != QKD_OK) {
		set_error(err, k->line, "kme: %s: %s", k->listen.text, why);
		return rc;
	}
	qkd_logf(n->log, QKD_LOG_INFO, "node %s: key manager %s on https://%s", n->cfg.name,
		 k->id, k->listen.text);
	return QKD_OK;
}

/* The relay agent on every link with a named peer: its services are
 * registered before any link thread runs. */
static int start_relay(struct qkd_node *n, struct qkd_node_error *err)
{
	const char *why = NULL;
	int rc = node_relay_new(&n->relay, &n->cfg, n->links, n->nctx, n->log, &why);

	if (rc != QKD_OK)
		set_error(err, 0, "relay: %s", why);
	return rc;
}

int qkd_node_new(struct qkd_node **out, const struct qkd_node_config *cfg,
		 const struct qkd_logger *log, struct qkd_node_error *err)
{
	struct qkd_node *n = calloc(1, sizeof *n);
	int rc = QKD_OK;

	*out = NULL;
	memset(err, 0, sizeof *err);
	if (n == NULL || pthread_mutex_init(&n->lock, NULL) != 0) {
		free(n);
		set_error(err, 0, "out of memory");
		return QKD_ERR_NOMEM;
	}
	n->cfg = *cfg;
	n->log = log;
	atomic_init(&n->stop, false);
	for (size_t i = 0; i < n->cfg.nlinks && rc == QKD_OK; i++)
		rc = open_link(n, i, err);
	if (rc == QKD_OK)
		rc = start_relay(n, err);
	if (rc == QKD_OK)
		rc = start_kme(n, err);
	if (rc != QKD_OK) {
		qkd_node_free(n);
		return rc;
	}
	*out = n;
	return QKD_OK;
}

static void *link_main(void *arg)
{
	struct node_link_slot *s = arg;

	(void)qkd_link_thread(s->ctx);
	atomic_store(&s->done, true);
	return NULL;
}

int qkd_node_start(struct qkd_node *n)
{
	int rc = QKD_OK;

	if (n->started)
		return QKD_ERR_INVAL;
	n->started = true;
	qkd_logf(n->log, QKD_LOG_INFO, "node %s: starting %zu link(s), status on %s",
		 n->cfg.name, n->cfg.nlinks, n->cfg.status);
	for (; n->nthreads < n->nctx; n->nthreads++) {
		struct node_link_slot *s = &n->slots[n->nthreads];

		s->ctx = &n->links[n->nthreads];
		atomic_init(&s->done, false);
		if (pthread_create(&s->thread, NULL, link_main, s) != 0) {
			rc = QKD_ERR_NOMEM;
			break;
		}
	}
	return rc;
}

static bool all_links_done(struct qkd_node *n)
{
	for (size_t i = 0; i < n->nthreads; i++)
		if (!atomic_load(&n->slots[i].done))
			return false;
	return true;
}

static void finish_rounds(struct qkd_node *n)
{
	struct timespec tick = { .tv_nsec = 50000000L };

	for (int i = 0; i < STOP_GRACE_S * 20 && !all_links_done(n); i++)
		while (nanosleep(&tick, &tick) != 0 && errno == EINTR)
			;
}

/* Take the key manager out from under the lock, then stop it, so that a
 * reader of its counters never sees it half stopped. */
static void stop_kme(struct qkd_node *n)
{
	struct qkd_node_kme_server *k;

	pthread_mutex_lock(&n->lock);
	k = n->kme;
	n->kme = NULL;
	pthread_mutex_unlock(&n->lock);
	qkd_node_kme_stop(k);
}

int qkd_node_stop(struct qkd_node *n)
{
	bool failed = false;

	atomic_store(&n->stop, true);
	if (!n->started || n->joined) {
		stop_kme(n);
		return QKD_OK;
	}
	finish_rounds(n);
	for (size_t i = 0; i < n->nthreads; i++)
		qkd_link_interrupt(&n->links[i]);
	for (size_t i = 0; i < n->nthreads; i++) {
		pthread_join(n->slots[i].thread, NULL);
		failed |= n->links[i].result != QKD_OK;
	}
	n->joined = true;
	stop_kme(n);
	qkd_logf(n->log, QKD_LOG_INFO, "node %s: stopped", n->cfg.name);
	return !failed && n->nthreads == n->cfg.nlinks ? QKD_OK : QKD_ERR_IO;
}

void qkd_node_free(struct qkd_node *n)
{
	if (n == NULL)
		return;
	(void)qkd_node_stop(n);
	node_relay_free(n->relay);	/* it points into the links */
	for (size_t i = 0; i < n->nctx; i++)
		qkd_link_ctx_cleanup(&n->links[i]);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

const struct qkd_node_config *qkd_node_config_of(const struct qkd_node *n)
{
	return &n->cfg;
}

bool qkd_node_stopping(const struct qkd_node *n)
{
	return atomic_load(&n->stop);
}

size_t qkd_node_nlinks(const struct qkd_node *n)
{
	return n->nctx;
}

const struct qkd_link_config *qkd_node_link_config(const struct qkd_node *n, size_t i)
{
	return i < n->nctx ? &n->cfg.links[i] : NULL;
}

int qkd_node_link_status(struct qkd_node *n, size_t i, struct qkd_link_status *out)
{
	if (i >= n->nctx)
		return QKD_ERR_INVAL;
	qkd_link_status_get(&n->links[i], out);
	return QKD_OK;
}

bool qkd_node_kme_counters_get(struct qkd_node *n, struct qkd_kme_counters *out)
{
	bool have;

	/* Held across the copy: stop_kme waits for it before stopping. */
	pthread_mutex_lock(&n->lock);
	have = n->kme != NULL;
	if (have)
		qkd_node_kme_counters(n->kme, out);
	pthread_mutex_unlock(&n->lock);
	return have;
}

bool qkd_node_relay_view(struct qkd_node *n, void (*fn)(void *ctx, const struct qkd_relay *r),
			 void *ctx)
{
	if (n->relay == NULL)
		return false;
	node_relay_view(n->relay, fn, ctx);
	return true;
}
