/* node_relay.c - the node's relay agent (qkd/relay.h) on its links
 * (docs/relay.md "In the node").
 *
 * One agent per node, one lock around it. Each link carries the relay
 * service (service id QKD_SERVICE_RELAY, qkd/mux.h): its link thread
 * delivers the neighbour's messages into the agent, and its pumps drive
 * the agent's timers, report the link's figures to it (QBER, alarm, key)
 * and send what the agent queued for that neighbour. The agent's sends go
 * into per-link queues because only a link's own thread may write its
 * channel; the lock is never held while a channel is written, so two links
 * forwarding to each other cannot deadlock.
 *
 * Pads come from the links' stores through the relay's own handles (one
 * per link, used under the lock only): this end cuts from its half of the
 * blocks, as its key manager does (docs/kme.md "Who cuts which bits"), and
 * consumes exactly the segments the far end names from the far end's half.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qkd/error.h"
#include "qkd/keystore.h"
#include "qkd/kme_store.h"
#include "qkd/mux.h"
#include "qkd/secret.h"
#include "qkd/sysutil.h"
#include "node_relay.h"

#define RELAY_QUEUE_MAX 4096		/* messages waiting for one link */
#define RELAY_TICK_S 0.1		/* the agent's timers (qkd_relay_tick) */
#define RELAY_REPORT_S 1.0		/* a link's figures to the agent */

struct relay_qmsg {
	uint8_t type;
	size_t len;
	uint8_t *body;
};

struct relay_link {
	struct node_relay *nr;
	struct qkd_link_ctx *ctx;
	const char *peer;			/* the neighbour's id (cfg) */
	unsigned parity;			/* this end's half: QKD_KME_PARITY_* */
	bool attached;				/* the service is on a live connection */
	double last_report;
	struct qkd_store *store;		/* the relay's handle, for pads */
	struct relay_qmsg *q;			/* to send, oldest first */
	size_t qn;
};

struct node_relay {
	pthread_mutex_t lock;
	struct qkd_relay *agent;
	const struct qkd_logger *log;
	size_t n;
	struct relay_link links[QKD_NODE_LINKS_MAX];
	double last_tick;
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct relay_link *link_by_peer(struct node_relay *nr, const char *peer)
{
	for (size_t i = 0; i < nr->n; i++)
		if (strcmp(nr->links[i].peer, peer) == 0)
			return &nr->links[i];
	return NULL;
}

static void queue_clear(struct relay_link *l)
{
	for (size_t i = 0; i < l->qn; i++)
		free(l->q[i].body);
	l->qn = 0;
}

/* --- The agent's callbacks (under the lock) ------------------------------ */

static int op_send(void *c, const char *nb, uint8_t type, const uint8_t *body, size_t len)
{
	struct relay_link *l = link_by_peer(c, nb);
	uint8_t *copy;

	if (l == NULL || !l->attached)
		return QKD_ERR_IO;
	if (l->qn == RELAY_QUEUE_MAX)
		return QKD_ERR_RANGE;
	copy = malloc(len > 0 ? len : 1);
	if (copy == NULL)
		return QKD_ERR_NOMEM;
	memcpy(copy, body, len);
	l->q[l->qn++] = (struct relay_qmsg){ type, len, copy };
	qkd_mux_wake(l->ctx->mux);
	return QKD_OK;
}

static int op_pad_take(void *c, const char *nb, uint32_t nbits, uint8_t *pad,
		       struct qkd_store_seg *segs, size_t *n_pad, const char **why)
{
	struct relay_link *l = link_by_peer(c, nb);

	if (l == NULL) {
		*why = "no link to that neighbour";
		return QKD_ERR_INVAL;
	}
	return qkd_store_take_half(l->store, l->parity, l->parity == QKD_KME_PARITY_ALICE, nbits,
				   pad, nbits / 8, segs, QKD_RELAY_PAD_SEGS_MAX, n_pad, why);
}

static int op_pad_use(void *c, const char *nb, const struct qkd_store_seg *segs, size_t n_pad,
		      uint8_t *pad, uint32_t nbits, const char **why)
{
	struct relay_link *l = link_by_peer(c, nb);

	if (l == NULL) {
		*why = "no link to that neighbour";
		return QKD_ERR_INVAL;
	}
	return qkd_store_take_at_half(l->store, l->parity ^ 1u, segs, n_pad, pad, nbits / 8, why);
}

static int op_deliver(void *c, const uint8_t key_id[16], const char *master, const char *slave,
		      const char *source, const uint8_t *key, uint32_t nbits, const char **why)
{
	(void)c;
	(void)key_id;
	(void)master;
	(void)slave;
	(void)source;
	(void)key;
	(void)nbits;
	/* The key manager's inbox for relayed keys is the next step of issue
	 * 13; until it exists this node relays keys through but is no
	 * destination, and says so to the source. */
	*why = "this node's key manager does not keep relayed keys yet";
	return QKD_ERR_INVAL;
}

static void op_done(void *c, const uint8_t key_id[16], int result, const char *why,
		    unsigned shares, unsigned hops)
{
	(void)c;
	(void)key_id;
	(void)result;
	(void)why;
	(void)shares;
	(void)hops;	/* the node starts no relays yet: nothing waits */
}

static double op_now(void *c)
{
	(void)c;
	return mono_now();
}

static const struct qkd_relay_ops node_relay_ops = { op_send, op_pad_take, op_pad_use,
						     op_deliver, op_done, op_now };

/* --- The service (the link's thread) ------------------------------------ */

/* Send what the agent queued for this link, outside the lock. */
static int flush(struct relay_link *l, struct qkd_mux *m, const char **why)
{
	struct relay_qmsg *q = NULL;
	size_t n;
	int rc = QKD_OK;

	pthread_mutex_lock(&l->nr->lock);
	n = l->qn;
	if (n > 0) {
		q = malloc(n * sizeof *q);
		if (q != NULL) {
			memcpy(q, l->q, n * sizeof *q);
			l->qn = 0;
		}
	}
	pthread_mutex_unlock(&l->nr->lock);
	if (n > 0 && q == NULL) {
		*why = "out of memory";
		return QKD_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (rc == QKD_OK)
			rc = qkd_mux_send(m, QKD_SERVICE_RELAY, q[i].type, q[i].body, q[i].len);
		free(q[i].body);
	}
	free(q);
	if (rc != QKD_OK)
		*why = "a relay message could not be sent";
	return rc;
}

/* The link's figures as the agent wants them (under the lock). */
static void report(struct relay_link *l, double now)
{
	struct qkd_link_status st;
	uint64_t avail = 0;
	const char *why = NULL;
	double qber;

	l->last_report = now;
	qkd_link_status_get(l->ctx, &st);
	if (qkd_store_half_free(l->store, l->parity, l->parity == QKD_KME_PARITY_ALICE, &avail,
				&why) != QKD_OK)
		avail = 0;
	qber = st.last_qber >= 0.0 && st.last_qber <= 1.0 ? st.last_qber : 0.0;
	(void)qkd_relay_link_report(l->nr->agent, l->peer, st.eavesdropping_suspected, qber,
				    st.stored_bits, avail,
				    st.key_rate_bps > 0 ? (uint64_t)st.key_rate_bps : 0);
}

static int svc_deliver(void *c, struct qkd_mux *m, uint8_t type, struct qkd_rbuf *body,
		       const char **why)
{
	struct relay_link *l = c;
	size_t n = qkd_rbuf_left(body);
	const uint8_t *p = qkd_get_bytes(body, n);
	int rc;

	pthread_mutex_lock(&l->nr->lock);
	rc = qkd_relay_receive(l->nr->agent, l->peer, type, n > 0 ? p : (const uint8_t *)"", n,
			       why);
	pthread_mutex_unlock(&l->nr->lock);
	return rc == QKD_OK ? flush(l, m, why) : rc;
}

static int svc_pump(void *c, struct qkd_mux *m, const char **why)
{
	struct relay_link *l = c;
	struct node_relay *nr = l->nr;
	double now = mono_now();

	pthread_mutex_lock(&nr->lock);
	if (now - l->last_report >= RELAY_REPORT_S)
		report(l, now);
	if (now - nr->last_tick >= RELAY_TICK_S) {
		nr->last_tick = now;
		qkd_relay_tick(nr->agent);
	}
	pthread_mutex_unlock(&nr->lock);
	return flush(l, m, why);
}

static void svc_up(void *c, bool up)
{
	struct relay_link *l = c;

	pthread_mutex_lock(&l->nr->lock);
	l->attached = up;
	if (!up)
		queue_clear(l);
	if (up)
		report(l, mono_now());
	(void)qkd_relay_link_up(l->nr->agent, l->peer, up);
	pthread_mutex_unlock(&l->nr->lock);
}

/* --- Lifecycle ------------------------------------------------------------ */

/* The links the relay uses: one per named peer. */
static int relay_links(struct node_relay *nr, const struct qkd_node_config *cfg,
		       struct qkd_link_ctx *links, size_t nlinks, const char **why)
{
	for (size_t i = 0; i < nlinks; i++) {
		const struct qkd_link_config *lc = links[i].cfg;
		struct relay_link *l;
		int rc;

		if (lc->peer[0] == '\0' || link_by_peer(nr, lc->peer) != NULL) {
			qkd_logf(nr->log, QKD_LOG_WARN, "node %s: link %s %s: the relay does not use it",
				 cfg->name, lc->name, lc->peer[0] == '\0' ? "names no peer"
									  : "reaches a peer another link reaches");
			continue;
		}
		l = &nr->links[nr->n];
		l->nr = nr;
		l->ctx = &links[i];
		l->peer = lc->peer;
		l->parity = lc->role == QKD_ROLE_ALICE ? QKD_KME_PARITY_ALICE : QKD_KME_PARITY_BOB;
		l->last_report = -1e9;
		l->q = calloc(RELAY_QUEUE_MAX, sizeof *l->q);
		if (l->q == NULL) {
			*why = "out of memory";
			return QKD_ERR_NOMEM;
		}
		nr->n++;
		rc = qkd_store_open(&l->store, lc->store, why);
		if (rc != QKD_OK)
			return rc;
	}
	return QKD_OK;
}

static int relay_register(struct node_relay *nr)
{
	for (size_t i = 0; i < nr->n; i++) {
		struct qkd_service svc = { .name = "relay", .id = QKD_SERVICE_RELAY,
					   .ntypes = QKD_RELAY_MSG_TYPES, .deliver = svc_deliver,
					   .pump = svc_pump, .up = svc_up, .ctx = &nr->links[i] };
		int rc = qkd_mux_register(nr->links[i].ctx->mux, &svc);

		if (rc != QKD_OK)
			return rc;
	}
	return QKD_OK;
}

static int relay_agent(struct node_relay *nr, const struct qkd_node_config *cfg)
{
	const char *nbs[QKD_NODE_LINKS_MAX], *saes[QKD_NODE_SAES_MAX];
	struct qkd_relay_config c;
	size_t ns = 0;

	qkd_relay_config_default(&c);
	for (size_t i = 0; i < nr->n; i++)
		nbs[i] = nr->links[i].peer;
	for (size_t i = 0; cfg->kme.enabled && i < cfg->kme.nsaes; i++)
		if (cfg->kme.saes[i].link < 0)
			saes[ns++] = cfg->kme.saes[i].id;
	c.self = cfg->id;
	c.neighbours = nbs;
	c.n_neighbours = nr->n;
	c.saes = saes;
	c.n_saes = ns;
	/* Above every LSA an earlier run of this node made. */
	c.seq_start = (uint64_t)(qkd_wall_seconds() * 1e6);
	c.log = nr->log;
	c.ops = &node_relay_ops;
	c.ctx = nr;
	return qkd_relay_new(&c, &nr->agent);
}

int node_relay_new(struct node_relay **out, const struct qkd_node_config *cfg,
		   struct qkd_link_ctx *links, size_t nlinks, const struct qkd_logger *log,
		   const char **why)
{
	struct node_relay *nr = calloc(1, sizeof *nr);
	int rc = QKD_ERR_NOMEM;

	*out = NULL;
	*why = "out of memory";
	if (nr == NULL)
		return rc;
	if (pthread_mutex_init(&nr->lock, NULL) != 0) {
		free(nr);
		return rc;
	}
	nr->log = log;
	nr->last_tick = -1e9;
	rc = relay_links(nr, cfg, links, nlinks, why);
	if (rc == QKD_OK) {
		rc = relay_agent(nr, cfg);
		if (rc != QKD_OK)
			*why = "the relay agent refused the node's ids (see the log)";
	}
	if (rc == QKD_OK) {
		rc = relay_register(nr);
		if (rc != QKD_OK)
			*why = "cannot register the relay service on a link";
	}
	if (rc != QKD_OK) {
		node_relay_free(nr);
		return rc;
	}
	*out = nr;
	return QKD_OK;
}

void node_relay_free(struct node_relay *nr)
{
	if (nr == NULL)
		return;
	qkd_relay_free(nr->agent);
	for (size_t i = 0; i < nr->n; i++) {
		if (nr->links[i].q != NULL)
			queue_clear(&nr->links[i]);
		free(nr->links[i].q);
		qkd_store_close(nr->links[i].store);
	}
	pthread_mutex_destroy(&nr->lock);
	free(nr);
}

void node_relay_view(struct node_relay *nr, void (*fn)(void *ctx, const struct qkd_relay *r),
		     void *ctx)
{
	pthread_mutex_lock(&nr->lock);
	fn(ctx, nr->agent);
	pthread_mutex_unlock(&nr->lock);
}
