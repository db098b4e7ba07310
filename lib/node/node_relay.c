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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qkd/error.h"
#include "qkd/etsi014.h"
#include "qkd/keystore.h"
#include "qkd/kme_store.h"
#include "qkd/mux.h"
#include "qkd/relay_inbox.h"
#include "qkd/rng.h"
#include "qkd/secret.h"
#include "node_relay.h"

#define RELAY_QUEUE_MAX 4096		/* messages waiting for one link */
#define RELAY_TICK_S 0.1		/* the agent's timers (qkd_relay_tick) */
#define RELAY_REPORT_S 1.0		/* a link's figures to the agent */
#define RELAY_EXPIRE_S 60.0		/* how often unfetched relayed keys expire */
/* enc_keys waits this much longer than the agent's own timeout, so the
 * agent always settles first (its tick runs with any link's pump). */
#define RELAY_WAIT_MARGIN_S 1.0

/* An enc_keys request waiting for its keys' relays (op_done settles them). */
struct relay_waiter {
	struct relay_waiter *next;
	const struct qkd_etsi014_key *keys;
	size_t n, settled;
	int *result;			/* per key: 0 delivered, or the error */
	unsigned *shares, *hops;
	const char *why;		/* the first failure's reason (static) */
};

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
	pthread_cond_t settled;			/* a waiter's key settled */
	struct qkd_relay *agent;
	const struct qkd_logger *log;
	size_t n;
	struct relay_link links[QKD_NODE_LINKS_MAX];
	double last_tick, last_expire;
	unsigned paths;				/* relay.paths */
	double timeout_s;			/* relay.timeout */
	uint64_t key_ttl_s;			/* kme.key_ttl */
	struct qkd_relay_inbox *inbox;		/* NULL: no key manager, no destination */
	struct relay_waiter *waiters;
	struct qkd_rng rng;			/* the relayed keys themselves */
	bool rng_ok;
	char self[QKD_NODE_NAME_MAX];
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
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
	struct node_relay *nr = c;

	if (nr->inbox == NULL) {
		*why = "this node has no key manager to keep relayed keys";
		return QKD_ERR_INVAL;
	}
	return qkd_relay_inbox_put(nr->inbox, key_id, master, slave, source, key, nbits,
				   (int64_t)time(NULL), why);
}

static void op_done(void *c, const uint8_t key_id[16], int result, const char *why,
		    unsigned shares, unsigned hops)
{
	struct node_relay *nr = c;

	for (struct relay_waiter *w = nr->waiters; w != NULL; w = w->next)
		for (size_t i = 0; i < w->n; i++)
			if (memcmp(w->keys[i].id.b, key_id, 16) == 0 && w->result[i] > 0) {
				w->result[i] = result;
				w->shares[i] = shares;
				w->hops[i] = hops;
				if (result != QKD_OK && w->why == NULL)
					w->why = why != NULL && why[0] != '\0' ? why : "relay failed";
				w->settled++;
				pthread_cond_broadcast(&nr->settled);
				return;
			}
}

static double op_now(void *c)
{
	(void)c;
	return mono_now();
}

static int op_withdraw(void *c, const uint8_t key_id[16], const char *source, bool *found,
		       const char **why)
{
	struct node_relay *nr = c;

	*found = false;
	return nr->inbox == NULL ? QKD_OK
				 : qkd_relay_inbox_withdraw(nr->inbox, key_id, source, found, why);
}

static const struct qkd_relay_ops node_relay_ops = { op_send, op_pad_take, op_pad_use,
						     op_deliver, op_done, op_now, op_withdraw };

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
	if (nr->inbox != NULL && now - nr->last_expire >= RELAY_EXPIRE_S) {
		size_t n = 0;
		const char *w = NULL;

		nr->last_expire = now;
		if (qkd_relay_inbox_expire(nr->inbox, (int64_t)time(NULL), nr->key_ttl_s, &n, &w) ==
		    QKD_OK && n > 0)
			qkd_logf(nr->log, QKD_LOG_INFO, "relay: %zu relayed key(s) expired unfetched", n);
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
	/* Routes at once: with its last link down no pump would tick it. */
	qkd_relay_tick(l->nr->agent);
	pthread_mutex_unlock(&l->nr->lock);
}


/* --- The key manager's side (its connection threads) ------------------- */

static bool kme_serves(void *c, const char *sae)
{
	struct node_relay *nr = c;
	const char *node;
	bool yes;

	pthread_mutex_lock(&nr->lock);
	node = qkd_relay_sae_node(nr->agent, sae);
	yes = node != NULL && strcmp(node, nr->self) != 0;
	pthread_mutex_unlock(&nr->lock);
	return yes;
}

/* Wait until every key of w settled or the deadline passed (lock held). */
static void wait_settled(struct node_relay *nr, struct relay_waiter *w)
{
	struct timespec dl;
	double t = nr->timeout_s + RELAY_WAIT_MARGIN_S;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += (time_t)t;
	dl.tv_nsec += (long)((t - (double)(time_t)t) * 1e9);
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	while (w->settled < w->n)
		if (pthread_cond_timedwait(&nr->settled, &nr->lock, &dl) != 0)
			break;
}

static void waiter_remove(struct node_relay *nr, struct relay_waiter *w)
{
	for (struct relay_waiter **p = &nr->waiters; *p != NULL; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			return;
		}
}

/* enc_keys answers all or nothing: when any key of w failed, the keys that
 * did reach the slave's node are withdrawn there, since nobody will learn
 * their key_IDs (the agent withdraws the failed ones itself). */
static void withdraw_delivered(struct node_relay *nr, const struct relay_waiter *w,
			       const char *slave)
{
	bool failed = false;

	for (size_t i = 0; i < w->n; i++)
		failed |= w->result[i] != QKD_OK;
	for (size_t i = 0; failed && i < w->n; i++) {
		const char *why = NULL;

		if (w->result[i] == QKD_OK &&
		    qkd_relay_withdraw(nr->agent, w->keys[i].id.b, slave, &why) != QKD_OK)
			qkd_logf(nr->log, QKD_LOG_WARN, "relay: a key to %s not withdrawn: %s "
				 "(it expires there with kme.key_ttl)", slave, why);
	}
}

/* enc_keys for a relayed pair: fresh keys from the node's random
 * generator, each relayed to the slave's node; the answer waits for every
 * completion notification (docs/relay.md "In the key manager"). */
static int kme_enc(void *c, const char *master, const char *slave, uint32_t number,
		   uint32_t size_bits, struct qkd_etsi014_key *keys, const char **why)
{
	struct node_relay *nr = c;
	struct relay_waiter w = { .keys = keys, .n = number };
	unsigned two = 0;
	int rc = QKD_ERR_NOMEM;

	w.result = calloc(number, sizeof *w.result);
	w.shares = calloc(number, sizeof *w.shares);
	w.hops = calloc(number, sizeof *w.hops);
	*why = "out of memory";
	if (w.result == NULL || w.shares == NULL || w.hops == NULL || !nr->rng_ok)
		goto out;
	pthread_mutex_lock(&nr->lock);
	w.next = nr->waiters;
	nr->waiters = &w;
	for (uint32_t i = 0; i < number; i++) {
		const char *sw = NULL;

		qkd_etsi014_uuid_random(&keys[i].id);
		qkd_rng_bytes(&nr->rng, keys[i].bytes, size_bits / 8);
		keys[i].len = size_bits / 8;
		w.result[i] = 1;	/* pending */
		rc = qkd_relay_start(nr->agent, keys[i].id.b, master, slave, keys[i].bytes,
				     size_bits, nr->paths, &sw);
		if (rc != QKD_OK) {
			w.result[i] = rc;
			w.settled++;
			if (w.why == NULL)
				w.why = sw;
		}
	}
	wait_settled(nr, &w);
	waiter_remove(nr, &w);
	withdraw_delivered(nr, &w, slave);
	pthread_mutex_unlock(&nr->lock);
	rc = QKD_OK;
	for (uint32_t i = 0; i < number && rc == QKD_OK; i++) {
		rc = w.result[i] == 1 ? QKD_ERR_IO : w.result[i];
		two += w.shares[i] == 2;
		keys[i].relay_paths = w.shares[i];
		keys[i].relay_hops = w.hops[i];
	}
	if (rc != QKD_OK) {
		*why = w.why != NULL ? w.why : "the slave SAE's node did not confirm the keys in time";
		qkd_logf(nr->log, QKD_LOG_WARN, "relay: enc_keys %s -> %s: %u key(s) not relayed: %s",
			 master, slave, number, *why);
		for (uint32_t i = 0; i < number; i++)
			qkd_wipe(keys[i].bytes, keys[i].cap);
		rc = rc == QKD_ERR_INVAL ? QKD_ERR_INVAL : QKD_ERR_IO;
	} else {
		qkd_logf(nr->log, QKD_LOG_INFO, "relay: enc_keys %s -> %s: %u key(s) of %u bits "
			 "relayed, %u of them as two shares", master, slave, number, size_bits, two);
	}
out:
	free(w.result);
	free(w.shares);
	free(w.hops);
	return rc;
}

static int kme_dec(void *c, const char *master, const char *slave, struct qkd_etsi014_key *keys,
		   size_t n, size_t *bad, const char **why)
{
	struct node_relay *nr = c;
	uint8_t (*ids)[16] = calloc(n, sizeof *ids);
	uint8_t **outs = calloc(n, sizeof *outs);
	size_t *lens = calloc(n, sizeof *lens);
	int rc = QKD_ERR_NOMEM;

	*bad = n;
	*why = "out of memory";
	if (ids == NULL || outs == NULL || lens == NULL)
		goto out;
	*why = "this node keeps no relayed keys (no key manager)";
	rc = QKD_ERR_INVAL;
	if (nr->inbox == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		memcpy(ids[i], keys[i].id.b, 16);
		outs[i] = keys[i].bytes;
	}
	pthread_mutex_lock(&nr->lock);
	rc = qkd_relay_inbox_take(nr->inbox, master, slave, (const uint8_t (*)[16])ids, n, outs,
				  keys[0].cap, lens, bad, why);
	pthread_mutex_unlock(&nr->lock);
	for (size_t i = 0; rc == QKD_OK && i < n; i++)
		keys[i].len = lens[i];
	if (rc == QKD_ERR_RANGE)
		rc = QKD_ERR_IO;
out:
	free(ids);
	free(outs);
	free(lens);
	return rc;
}

/* The least key available on any link of the route to the slave's node:
 * how many keys a relay could carry now. */
static int kme_status(void *c, const char *slave, uint32_t key_size,
		      struct qkd_etsi014_counts *counts, const char **why)
{
	struct node_relay *nr = c;
	const struct qkd_lsdb *db;
	const struct qkd_route *rt = NULL;
	const char *node;
	uint64_t least = UINT64_MAX;

	pthread_mutex_lock(&nr->lock);
	db = qkd_relay_lsdb(nr->agent);
	node = qkd_relay_sae_node(nr->agent, slave);
	if (node != NULL)
		rt = qkd_routes_get(qkd_relay_routes(nr->agent), node);
	for (size_t i = 0; rt != NULL && i < rt->hops; i++)
		for (int e = 0; e < 2; e++) {
			const struct qkd_lsa *a = qkd_lsdb_get(db, rt->path[i + e]);
			const struct qkd_lsa_link *l = a != NULL ? qkd_lsa_find_link(a, rt->path[i + 1 - e])
								 : NULL;

			least = l == NULL ? 0 : l->available_bits < least ? l->available_bits : least;
		}
	snprintf(counts->target_kme_id, sizeof counts->target_kme_id, "%s",
		 node != NULL ? node : "");
	pthread_mutex_unlock(&nr->lock);
	*why = NULL;
	counts->stored_key_count = rt == NULL || least == UINT64_MAX ? 0 : least / key_size;
	counts->max_key_count = counts->stored_key_count;
	return QKD_OK;
}

void node_relay_kme_hooks(struct node_relay *nr, struct node_kme_relay *out)
{
	*out = (struct node_kme_relay){ .serves = kme_serves, .enc = kme_enc, .dec = kme_dec,
					.status = kme_status, .ctx = nr };
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
			/* Debug: a two-node link without `peer` is an ordinary
			 * configuration (docs/config.md), not a fault. */
			qkd_logf(nr->log, QKD_LOG_DEBUG, "node %s: link %s %s: the relay does not use it",
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
	c.relay_timeout_s = cfg->relay.timeout_s > 0 ? cfg->relay.timeout_s : c.relay_timeout_s;
	c.neighbours = nbs;
	c.n_neighbours = nr->n;
	c.saes = saes;
	c.n_saes = ns;
	/* Above every LSA an earlier run of this node made: microseconds of
	 * the real-time clock (a run makes far fewer than 10^6 LSAs a second). */
	c.seq_start = realtime_us();
	c.log = nr->log;
	c.ops = &node_relay_ops;
	c.ctx = nr;
	return qkd_relay_new(&c, &nr->agent);
}

static int cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t a;
	int rc = pthread_condattr_init(&a);

	if (rc == 0)
		rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
	return rc;
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
	if (cond_init_monotonic(&nr->settled) != 0) {
		pthread_mutex_destroy(&nr->lock);
		free(nr);
		return rc;
	}
	nr->log = log;
	nr->last_tick = -1e9;
	nr->last_expire = -1e9;
	nr->paths = cfg->relay.paths >= 1 ? cfg->relay.paths : 1;
	nr->timeout_s = cfg->relay.timeout_s > 0 ? cfg->relay.timeout_s : 5.0;
	nr->key_ttl_s = cfg->kme.key_ttl_s;
	snprintf(nr->self, sizeof nr->self, "%s", cfg->id);
	nr->rng_ok = qkd_rng_init_system(&nr->rng) == QKD_OK;
	rc = relay_links(nr, cfg, links, nlinks, why);
	if (rc == QKD_OK && cfg->kme.enabled) {
		rc = qkd_relay_inbox_open(&nr->inbox, cfg->relay.store, why);
		if (rc != QKD_OK)
			qkd_logf(log, QKD_LOG_ERROR, "node %s: relay.store %s: %s", cfg->name,
				 cfg->relay.store, *why);
	}
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
	qkd_relay_inbox_close(nr->inbox);
	qkd_rng_cleanup(&nr->rng);
	for (size_t i = 0; i < nr->n; i++) {
		if (nr->links[i].q != NULL)
			queue_clear(&nr->links[i]);
		free(nr->links[i].q);
		qkd_store_close(nr->links[i].store);
	}
	pthread_cond_destroy(&nr->settled);
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
