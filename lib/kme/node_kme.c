/* node_kme.c - the key manager of a `qkd node` (node_kme_int.h): the key
 * provider of the ETSI GS QKD 014 layer over the links' key stores, and
 * the HTTPS server that calls it (docs/kme.md, "Two nodes").
 *
 * The provider runs in the server's connection threads. Each link's store
 * has one handle here, used under its own mutex (a store handle serves one
 * thread at a time); the link thread has another. enc_keys cuts keys and
 * records them in one transaction, then waits, without any lock, for the
 * link thread to bring the peer's verdict (lib/kme/kme_sync.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node_kme_int.h"
#include "../node/node_int.h"

#include "qkd/error.h"
#include "qkd/etsi014.h"
#include "qkd/kme_server.h"
#include "qkd/secret.h"

struct qkd_node_kme_server {
	const struct qkd_node_config *cfg;
	struct qkd_link_ctx *links;
	const struct qkd_logger *log;
	struct node_kme_slot stores[QKD_NODE_LINKS_MAX];
	struct node_kme_janitor janitor;	/* expiry and pruning (node_kme_janitor.c) */
	struct qkd_kme_sae saes[QKD_NODE_SAES_MAX];	/* the local SAEs, for TLS */
	size_t nsaes;
	struct qkd_kme_server *srv;
	struct node_kme_relay relay;		/* serves NULL: no relay */
};

static const struct qkd_node_sae *find_sae(const struct qkd_node_kme_server *k, const char *id)
{
	for (size_t i = 0; i < k->cfg->kme.nsaes; i++)
		if (strcmp(k->cfg->kme.saes[i].id, id) == 0)
			return &k->cfg->kme.saes[i];
	return NULL;
}

/* A pair for the relay: the local SAE attached here, the remote one
 * unknown to the configuration but advertised by another node. */
static bool relayed(const struct qkd_node_kme_server *k, const char *local, const char *remote)
{
	const struct qkd_node_sae *l = find_sae(k, local);

	return k->relay.serves != NULL && l != NULL && l->link < 0 && find_sae(k, remote) == NULL &&
	       k->relay.serves(k->relay.ctx, remote);
}

/* The remote SAE of a pair whose other SAE (the caller) is local. */
static int remote_sae(const struct qkd_node_kme_server *k, const char *local, const char *remote,
		      const struct qkd_node_sae **out, const char **why)
{
	const struct qkd_node_sae *l = find_sae(k, local), *r = find_sae(k, remote);

	if (l == NULL || l->link >= 0) {
		*why = "the caller is not an SAE attached to this KME";
		return QKD_ERR_VERIFY;
	}
	if (r == NULL) {
		*why = "unknown SAE: not in this KME's configuration";
		return QKD_ERR_INVAL;
	}
	if (r->link < 0) {
		*why = "both SAEs are attached to this KME: a pair spans two KMEs";
		return QKD_ERR_INVAL;
	}
	*out = r;
	return QKD_OK;
}

static bool link_up(struct qkd_link_kme *lk)
{
	bool up;

	pthread_mutex_lock(&lk->lock);
	up = lk->up;
	pthread_mutex_unlock(&lk->lock);
	return up;
}

/* Blocks quarantined in a row before enc_keys gives up with 503. */
#define ISSUE_TRIES 4

/* Cut number keys (recs' ids, pair and length set) on the slave's link;
 * the records go to the peer with the link's next exchange. */
static int issue(struct qkd_node_kme_server *k, const struct qkd_node_sae *slave_sae,
		 uint32_t number, struct qkd_kme_rec *recs, uint8_t *bits, size_t len,
		 const char **why)
{
	struct node_kme_slot *slot = &k->stores[slave_sae->link];
	struct qkd_link_ctx *l = &k->links[slave_sae->link];
	const char *w = NULL;
	int rc;

	/* A block that fails its digest is quarantined by the store (and
	 * reported to the peer by the link); the keys are cut around it. */
	for (int tries = 0; tries < ISSUE_TRIES; tries++) {
		pthread_mutex_lock(&slot->lock);
		rc = qkd_store_kme_issue(slot->st, node_kme_parity(l->cfg->role), recs, number,
					 bits, len, &w);
		pthread_mutex_unlock(&slot->lock);
		if (rc != QKD_ERR_CORRUPT)
			break;
		qkd_logf(k->log, QKD_LOG_ERROR, "kme: link %s: %s: stored key failed its digest; "
			 "the block is quarantined and never served", l->cfg->name,
			 w != NULL ? w : "a block");
	}
	/* RANGE: fewer free bits in this end's half than asked, or a key that
	 * would span too many segments; the store's reason says which. */
	if (rc == QKD_ERR_RANGE)
		*why = w != NULL ? w : "not enough key in this end's half of the blocks";
	else if (rc != QKD_OK)
		*why = w != NULL ? w : "the key store failed";
	return rc == QKD_OK || rc == QKD_ERR_RANGE ? rc : QKD_ERR_IO;
}

/* enc_keys gave up on these keys (503): withdraw them at the peer, so that
 * the slave's end does not keep keys its master never handed out. */
static void abandon(struct qkd_node_kme_server *k, const struct qkd_node_sae *slave_sae,
		    const struct qkd_kme_rec *recs, uint32_t number)
{
	struct node_kme_slot *slot = &k->stores[slave_sae->link];
	uint8_t (*ids)[16] = calloc(number, sizeof *ids);
	const char *w = NULL;
	int rc = QKD_ERR_NOMEM;

	for (uint32_t i = 0; ids != NULL && i < number; i++)
		memcpy(ids[i], recs[i].key_id, 16);
	if (ids != NULL) {
		pthread_mutex_lock(&slot->lock);
		rc = qkd_store_kme_abandon(slot->st, (const uint8_t (*)[16])ids, number, &w);
		pthread_mutex_unlock(&slot->lock);
	}
	if (rc != QKD_OK)
		qkd_logf(k->log, QKD_LOG_ERROR, "kme: cannot mark %u key(s) abandoned: %s; the "
			 "peer may keep them deliverable", number, w != NULL ? w : qkd_strerror(rc));
	else
		node_kme_kick(&k->links[slave_sae->link].kme);	/* the withdrawal goes */
	free(ids);
}

static int enc(void *ctx, const char *master, const char *slave, uint32_t number,
	       uint32_t size_bits, struct qkd_etsi014_key *keys, const char **why)
{
	struct qkd_node_kme_server *k = ctx;
	const struct qkd_node_sae *s = NULL;
	struct node_kme_waiter w = { 0 };
	struct qkd_kme_rec *recs = NULL;
	size_t kbytes = size_bits / 8, len = (size_t)number * kbytes;
	struct timespec deadline;
	uint8_t *bits = NULL;
	int rc;

	if (relayed(k, master, slave))
		return k->relay.enc(k->relay.ctx, master, slave, number, size_bits, keys, why);
	rc = remote_sae(k, master, slave, &s, why);
	if (rc != QKD_OK)
		return rc;
	if (!link_up(&k->links[s->link].kme)) {
		*why = "the link to the slave SAE's KME is down";
		return QKD_ERR_IO;
	}
	recs = calloc(number, sizeof *recs);
	w.done = calloc(number, sizeof *w.done);
	bits = malloc(len);
	if (recs == NULL || w.done == NULL || bits == NULL) {
		*why = "out of memory";
		rc = QKD_ERR_NOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < number; i++) {
		struct qkd_etsi014_uuid u;

		qkd_etsi014_uuid_random(&u);
		memcpy(recs[i].key_id, u.b, sizeof u.b);
		snprintf(recs[i].master, sizeof recs[i].master, "%s", master);
		snprintf(recs[i].slave, sizeof recs[i].slave, "%s", s->id);
		recs[i].nbits = size_bits;
	}
	w.recs = recs;
	w.n = number;
	node_kme_waiter_add(&k->links[s->link].kme, &w);
	rc = issue(k, s, number, recs, bits, len, why);
	if (rc != QKD_OK) {
		node_kme_waiter_remove(&k->links[s->link].kme, &w);
		goto out;
	}
	node_kme_kick(&k->links[s->link].kme);	/* the records go at once */
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)k->cfg->kme.sync_timeout_s;
	rc = node_kme_wait(&k->links[s->link].kme, &w, &deadline);
	if (rc == QKD_ERR_IO || rc == QKD_ERR_EOF)
		abandon(k, s, recs, number);
	if (rc == QKD_ERR_VERIFY) {
		*why = "the slave SAE's KME refused the keys (see its log)";
		rc = QKD_ERR_IO;
	} else if (rc == QKD_ERR_EOF) {
		*why = "the link to the slave SAE's KME went down before it confirmed the keys";
		rc = QKD_ERR_IO;
	} else if (rc != QKD_OK) {
		*why = "the slave SAE's KME did not confirm the keys in time";
	}
	for (uint32_t i = 0; rc == QKD_OK && i < number; i++) {
		memcpy(keys[i].id.b, recs[i].key_id, sizeof keys[i].id.b);
		memcpy(keys[i].bytes, bits + (size_t)i * kbytes, kbytes);
		keys[i].len = kbytes;
	}
	if (rc == QKD_OK)
		qkd_logf(k->log, QKD_LOG_DEBUG, "kme: %u key(s) of %u bits issued for %s -> %s",
			 number, size_bits, master, slave);
out:
	if (bits != NULL)
		qkd_wipe(bits, len);
	free(bits);
	free(w.done);
	free(recs);
	return rc;
}

static int dec(void *ctx, const char *master, const char *slave, struct qkd_etsi014_key *keys,
	       size_t n, size_t *bad, const char **why)
{
	struct qkd_node_kme_server *k = ctx;
	const struct qkd_node_sae *m = NULL;
	uint8_t (*ids)[16] = NULL;
	uint8_t **outs = NULL;
	size_t *lens = NULL;
	const char *w = NULL;
	struct node_kme_slot *slot;
	int rc;

	*bad = n;
	if (relayed(k, slave, master))
		return k->relay.dec(k->relay.ctx, master, slave, keys, n, bad, why);
	rc = remote_sae(k, slave, master, &m, why);
	if (rc != QKD_OK)
		return rc;
	slot = &k->stores[m->link];
	ids = calloc(n, sizeof *ids);
	outs = calloc(n, sizeof *outs);
	lens = calloc(n, sizeof *lens);
	if (ids == NULL || outs == NULL || lens == NULL) {
		*why = "out of memory";
		rc = QKD_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		memcpy(ids[i], keys[i].id.b, sizeof ids[i]);
		outs[i] = keys[i].bytes;
	}
	pthread_mutex_lock(&slot->lock);
	rc = qkd_store_kme_deliver(slot->st, master, slave, (const uint8_t (*)[16])ids, n, outs,
				   keys[0].cap, lens, bad, &w);
	pthread_mutex_unlock(&slot->lock);
	/* A withdrawn or expired key_ID gets its own message (docs/kme.md,
	 * "Errors"); unknown, delivered and refused ones one message. */
	if (rc == QKD_ERR_INVAL && (w == qkd_store_kme_why_withdrawn ||
				    w == qkd_store_kme_why_expired))
		*why = w;
	else if (rc == QKD_ERR_INVAL)
		*why = "key_ID unknown or already delivered";
	else if (rc == QKD_ERR_VERIFY)
		*why = "key_ID was issued to another pair of SAEs";
	else if (rc == QKD_ERR_CORRUPT)
		*why = "the key's stored bits failed their digest: quarantined, never served";
	else if (rc != QKD_OK)
		*why = w != NULL ? w : "the key store failed";
	if (rc == QKD_ERR_CORRUPT)
		qkd_logf(k->log, QKD_LOG_ERROR, "kme: a ready key for %s -> %s failed its digest "
			 "(%s): quarantined, never served", master, slave, w != NULL ? w : "-");
	if (rc == QKD_ERR_RANGE || rc == QKD_ERR_CORRUPT)
		rc = QKD_ERR_IO;
	for (size_t i = 0; rc == QKD_OK && i < n; i++)
		keys[i].len = lens[i];
out:
	free(lens);
	free(outs);
	free(ids);
	return rc;
}

static int status(void *ctx, const char *master, const char *slave,
		  struct qkd_etsi014_counts *counts, const char **why)
{
	struct qkd_node_kme_server *k = ctx;
	const struct qkd_node_sae *s = NULL;
	struct node_kme_slot *slot;
	uint64_t bits = 0;
	const char *w = NULL;
	int rc;

	if (relayed(k, master, slave))
		return k->relay.status(k->relay.ctx, slave, k->cfg->kme.key_size, counts, why);
	rc = remote_sae(k, master, slave, &s, why);
	if (rc != QKD_OK)
		return rc;
	slot = &k->stores[s->link];
	pthread_mutex_lock(&slot->lock);
	rc = qkd_store_kme_available(slot->st, node_kme_parity(k->cfg->links[s->link].role),
				     &bits, &w);
	pthread_mutex_unlock(&slot->lock);
	if (rc != QKD_OK) {
		*why = w != NULL ? w : "the key store failed";
		return QKD_ERR_IO;
	}
	snprintf(counts->target_kme_id, sizeof counts->target_kme_id, "%s", s->kme_id);
	/* The store has no capacity limit: what it holds is the most it can
	 * hand out now (docs/kme.md, "Status"). */
	counts->stored_key_count = bits / k->cfg->kme.key_size;
	counts->max_key_count = counts->stored_key_count;
	return QKD_OK;
}

static const struct qkd_etsi014_provider node_provider = {
	.enc = enc,
	.dec = dec,
	.status = status,
};

void qkd_node_kme_stop(struct qkd_node_kme_server *k)
{
	if (k == NULL)
		return;
	qkd_kme_server_stop(k->srv);
	node_kme_janitor_stop(&k->janitor);
	for (size_t i = 0; i < k->cfg->nlinks; i++) {
		qkd_store_close(k->stores[i].st);
		pthread_mutex_destroy(&k->stores[i].lock);
	}
	free(k);
}

/* Before any link thread runs, no enc_keys call of this process waits:
 * records still pending in the outbox are those of calls that died with a
 * previous process (a crash or kill between issue and the peer's verdict).
 * No SAE got their keys, so they are abandoned and withdrawn at the peer,
 * never delivered there; their bits count as lost. */
static int abandon_orphans(struct qkd_node_kme_server *k, size_t l, const char **why)
{
	size_t n = 0, total = 0;
	int rc, rounds = 0;

	do {
		rc = qkd_store_kme_abandon_pending(k->stores[l].st, &n, why);
		total += n;
	} while (rc == QKD_OK && n > 0 && ++rounds < 1024);
	if (total > 0)
		qkd_logf(k->log, QKD_LOG_WARN, "kme: link %s: %zu key(s) issued before a restart "
			 "were never confirmed to their SAE: withdrawn at the peer",
			 k->cfg->links[l].name, total);
	return rc;
}

/* One store handle per link that has a remote SAE behind it. */
static int open_stores(struct qkd_node_kme_server *k, const char **why)
{
	int rc = QKD_OK;

	for (size_t i = 0; i < k->cfg->kme.nsaes && rc == QKD_OK; i++) {
		int l = k->cfg->kme.saes[i].link;

		if (l >= 0 && k->stores[l].st == NULL) {
			rc = qkd_store_open(&k->stores[l].st, k->cfg->links[l].store, why);
			if (rc == QKD_OK)
				rc = abandon_orphans(k, (size_t)l, why);
		}
	}
	return rc;
}

static int start_janitor(struct qkd_node_kme_server *k, const char **why)
{
	int rc;

	k->janitor.slots = k->stores;
	k->janitor.links = k->links;
	k->janitor.nlinks = k->cfg->nlinks;
	k->janitor.ttl_s = k->cfg->kme.key_ttl_s;
	k->janitor.log = k->log;
	rc = node_kme_janitor_start(&k->janitor);
	if (rc != QKD_OK)
		*why = "cannot start the key lifecycle thread";
	return rc;
}

int qkd_node_kme_start(struct qkd_node_kme_server **out, const struct qkd_node_config *cfg,
		       struct qkd_link_ctx *links, const struct node_kme_relay *relay,
		       const struct qkd_logger *log, const char **why)
{
	const struct qkd_node_kme *c = &cfg->kme;
	struct qkd_node_kme_server *k = calloc(1, sizeof *k);
	struct qkd_kme_server_config sc;
	int rc;

	*out = NULL;
	if (k == NULL) {
		*why = "out of memory";
		return QKD_ERR_NOMEM;
	}
	k->cfg = cfg;
	k->links = links;
	k->log = log;
	if (relay != NULL)
		k->relay = *relay;
	for (size_t i = 0; i < cfg->nlinks; i++) {
		pthread_mutex_init(&k->stores[i].lock, NULL);
		links[i].kme.cfg = c;
		links[i].kme.link_index = (int)i;
	}
	for (size_t i = 0; i < c->nsaes; i++)
		if (c->saes[i].link < 0)
			k->saes[k->nsaes++] = (struct qkd_kme_sae){ c->saes[i].id, c->saes[i].cn };
	rc = qkd_etsi014_init();
	if (rc != QKD_OK)
		*why = "libsodium cannot start";
	if (rc == QKD_OK)
		rc = open_stores(k, why);
	if (rc == QKD_OK)
		rc = start_janitor(k, why);
	if (rc == QKD_OK) {
		memset(&sc, 0, sizeof sc);
		sc.listen = c->listen.sa;
		sc.cert_file = c->cert;
		sc.key_file = c->key;
		sc.ca_file = c->ca;
		sc.saes = k->saes;
		sc.nsaes = k->nsaes;
		sc.max_connections = c->max_connections;
		sc.idle_timeout_s = c->idle_timeout_s;
		sc.per_address_connections = c->per_address_connections;
		sc.handshake_timeout_s = c->handshake_timeout_s;
		sc.kme = (struct qkd_etsi014_kme){
			.kme_id = c->id,
			.lim = { .key_size = c->key_size, .min_key_size = c->min_key_size,
				 .max_key_size = c->max_key_size,
				 .max_key_per_request = c->max_keys_per_request },
			.ops = &node_provider, .ctx = k,
		};
		sc.log = log;
		rc = qkd_kme_server_start(&k->srv, &sc, why);
	}
	if (rc != QKD_OK) {
		qkd_node_kme_stop(k);
		return rc;
	}
	*out = k;
	return QKD_OK;
}

uint16_t qkd_node_kme_port(const struct qkd_node_kme_server *k)
{
	return qkd_kme_server_port(k->srv);
}

void qkd_node_kme_counters(const struct qkd_node_kme_server *k, struct qkd_kme_counters *out)
{
	qkd_kme_server_counters(k->srv, out);
}
