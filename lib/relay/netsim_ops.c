/* netsim_ops.c - what each simulated node gives its relay agent
 * (struct qkd_relay_ops, qkd/relay.h): sending over a simulated link, pads
 * from the link's pool, keeping delivered keys, and the outcome at the
 * source, where the destination's bits are compared with the source's.
 * Also the requests that start relays (netsim_int.h). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/secret.h"
#include "netsim_int.h"

long ns_node_index(const struct qkd_netsim *s, const char *id)
{
	char key[QKD_NODE_NAME_MAX + 1];
	size_t n = strlen(id);

	if (n >= QKD_NODE_NAME_MAX)
		return -1;
	key[0] = 'n';
	memcpy(key + 1, id, n + 1);
	return topo_index_get(&s->ids, key, n + 1);
}

struct ns_link *ns_node_link(struct ns_node *n, const char *id, unsigned *my_half)
{
	struct qkd_netsim *s = n->sim;

	for (size_t i = 0; i < n->n_links; i++) {
		struct ns_link *l = &s->links[n->links[i]];
		size_t far = l->a == n->idx ? l->b : l->a;

		if (strcmp(s->t->nodes[far].id, id) == 0) {
			*my_half = l->a == n->idx ? 0 : 1;
			return l;
		}
	}
	return NULL;
}

static int ns_send(void *ctx, const char *neighbour, uint8_t type, const uint8_t *body, size_t len)
{
	struct ns_node *n = ctx;
	struct qkd_netsim *s = n->sim;
	struct ns_event ev = {0};
	unsigned half;
	struct ns_link *l = ns_node_link(n, neighbour, &half);
	int rc = QKD_ERR_INVAL;

	if (l == NULL || len > UINT32_MAX)
		goto out;
	rc = QKD_ERR_IO;
	if (!l->up)
		goto out;
	rc = QKD_ERR_NOMEM;
	ev.body = malloc(len ? len : 1);
	if (ev.body == NULL)
		goto out;
	memcpy(ev.body, body, len);
	ev.kind = NS_MSG;
	ev.type = type;
	ev.t = s->now + l->latency_s;
	ev.node = (uint32_t)(l->a == n->idx ? l->b : l->a);
	ev.link = (uint32_t)(l - s->links);
	ev.epoch = l->epoch;
	ev.len = (uint32_t)len;
	rc = ns_heap_push(&s->heap, &ev);
	if (rc == QKD_OK) {
		ev.body = NULL;
		s->res.messages++;
	}
out:
	free(ev.body);
	return rc;
}

static int ns_pad_take(void *ctx, const char *neighbour, uint32_t nbits, uint8_t *pad,
		       struct qkd_store_seg *pad_segs, size_t *n_pad, const char **why)
{
	struct ns_node *n = ctx;
	unsigned half;
	struct ns_link *l = ns_node_link(n, neighbour, &half);
	int rc;

	*n_pad = 0;
	if (l == NULL) {
		*why = "no link to that neighbour";
		return QKD_ERR_INVAL;
	}
	rc = ns_link_take(l, half, nbits, pad, &pad_segs[0], why);
	if (rc == QKD_OK) {
		*n_pad = 1;
		n->sim->res.pad_bits += nbits;
	}
	return rc;
}

static int ns_pad_use(void *ctx, const char *neighbour, const struct qkd_store_seg *pad_segs,
		      size_t n_pad, uint8_t *pad, uint32_t nbits, const char **why)
{
	struct ns_node *n = ctx;
	unsigned half;
	struct ns_link *l = ns_node_link(n, neighbour, &half);

	if (l == NULL) {
		*why = "no link to that neighbour";
		return QKD_ERR_INVAL;
	}
	/* The sender's half: the other one. */
	return ns_link_use(l, 1 - half, pad_segs, n_pad, pad, nbits, why);
}

/* The key a key_ID names: its index is in bytes 8..15 (ns_request). */
static struct ns_key *ns_key_find(struct qkd_netsim *s, const uint8_t id[16])
{
	uint64_t i = 0;

	for (int k = 8; k < 16; k++)
		i = i << 8 | id[k];
	if (i >= s->n_keys || memcmp(s->keys[i].id, id, 16) != 0)
		return NULL;
	return &s->keys[i];
}

static bool ns_node_has_sae(const struct qkd_topo_node *tn, const char *sae)
{
	for (size_t i = 0; i < tn->n_saes; i++)
		if (strcmp(tn->saes[i], sae) == 0)
			return true;
	return false;
}

static int ns_deliver(void *ctx, const uint8_t key_id[16], const char *master, const char *slave,
		      const char *source, const uint8_t *key, uint32_t nbits, const char **why)
{
	struct ns_node *n = ctx;
	struct qkd_netsim *s = n->sim;
	struct ns_key *k = ns_key_find(s, key_id);

	(void)master;
	(void)source;
	if (k == NULL || k->done || nbits != QKD_NETSIM_KEY_BITS || k->dst_node != n->idx ||
	    !ns_node_has_sae(&s->t->nodes[n->idx], slave)) {
		s->res.anomalies++;
		*why = "no such key expected here";
		return QKD_ERR_INVAL;
	}
	if (k->delivered) {
		/* The source's retry after a lost completion: the same bits. */
		if (sodium_memcmp(k->dst, key, sizeof k->dst) != 0)
			s->res.mismatches++;
		return QKD_OK;
	}
	memcpy(k->dst, key, sizeof k->dst);
	k->delivered = true;
	return QKD_OK;
}

static int ns_lat_add(struct qkd_netsim *s, double v)
{
	if (s->n_lat == s->cap_lat) {
		size_t cap = s->cap_lat ? 2 * s->cap_lat : 1024;
		double *p = realloc(s->lat, cap * sizeof *p);

		if (p == NULL)
			return QKD_ERR_NOMEM;
		s->lat = p;
		s->cap_lat = cap;
	}
	s->lat[s->n_lat++] = v;
	return QKD_OK;
}

static void ns_done(void *ctx, const uint8_t key_id[16], int result, const char *why,
		    unsigned shares, unsigned hops)
{
	struct ns_node *n = ctx;
	struct qkd_netsim *s = n->sim;
	struct ns_key *k = ns_key_find(s, key_id);

	(void)why;
	(void)hops;
	if (k == NULL || k->done || k->src_node != n->idx) {
		s->res.anomalies++;
		return;
	}
	k->done = true;
	if (result != QKD_OK) {
		s->res.failed++;
		k->failed = true;
	} else {
		s->res.completed++;
		s->res.relayed_bits += QKD_NETSIM_KEY_BITS;
		s->res.two_paths += shares == 2;
		if (!k->delivered || sodium_memcmp(k->src, k->dst, sizeof k->src) != 0)
			s->res.mismatches++;
		if (ns_lat_add(s, s->now - k->t0) != QKD_OK)
			s->res.anomalies++;
	}
	qkd_wipe(k->src, sizeof k->src);
	qkd_wipe(k->dst, sizeof k->dst);
}

/* The source gave the key up: the destination drops what it holds. */
static int ns_withdraw(void *ctx, const uint8_t key_id[16], const char *source, bool *found,
		       const char **why)
{
	struct ns_node *n = ctx;
	struct qkd_netsim *s = n->sim;
	struct ns_key *k = ns_key_find(s, key_id);

	(void)source;
	(void)why;
	*found = false;
	if (k == NULL || k->dst_node != n->idx || (k->done && !k->failed)) {
		s->res.anomalies++;	/* never sent here, or withdrawn after success */
		return QKD_OK;
	}
	*found = k->delivered && !k->withdrawn;
	s->res.withdrawn += *found;
	k->withdrawn = true;
	qkd_wipe(k->dst, sizeof k->dst);
	return QKD_OK;
}

static double ns_now(void *ctx)
{
	const struct ns_node *n = ctx;

	return n->sim->now;
}

const struct qkd_relay_ops ns_ops = {
	.send = ns_send,
	.pad_take = ns_pad_take,
	.pad_use = ns_pad_use,
	.deliver = ns_deliver,
	.done = ns_done,
	.now = ns_now,
	.withdraw = ns_withdraw,
};

static int ns_key_new(struct qkd_netsim *s, struct ns_key **out)
{
	if (s->n_keys == s->cap_keys) {
		size_t cap = s->cap_keys ? 2 * s->cap_keys : 1024;
		struct ns_key *k = realloc(s->keys, cap * sizeof *k);

		if (k == NULL)
			return QKD_ERR_NOMEM;
		s->keys = k;
		s->cap_keys = cap;
	}
	*out = &s->keys[s->n_keys];
	memset(*out, 0, sizeof **out);
	qkd_rng_bytes(&s->rng, (*out)->id, 8);
	for (int i = 0; i < 8; i++)
		(*out)->id[8 + i] = (uint8_t)(s->n_keys >> (56 - 8 * i));
	(*out)->id[6] = (uint8_t)(((*out)->id[6] & 0x0f) | 0x40);	/* a UUID, version 4 */
	s->n_keys++;
	return QKD_OK;
}

/* One request: a random SAE pair on two different nodes, a fresh key. */
int ns_request(struct qkd_netsim *s)
{
	const struct ns_sae *m, *v;
	struct ns_key *k;
	const char *why = NULL;
	int rc;

	s->res.requests++;
	m = &s->saes[qkd_rng_below(&s->rng, s->n_saes)];
	do
		v = &s->saes[qkd_rng_below(&s->rng, s->n_saes)];
	while (v->node == m->node);
	if ((rc = ns_key_new(s, &k)) != QKD_OK)
		return rc;
	k->t0 = s->now;
	k->src_node = (uint32_t)m->node;
	k->dst_node = (uint32_t)v->node;
	qkd_rng_bytes(&s->rng, k->src, sizeof k->src);
	rc = qkd_relay_start(s->nodes[m->node].r, k->id, m->id, v->id, k->src,
			     QKD_NETSIM_KEY_BITS, s->c.paths, &why);
	if (rc != QKD_OK) {
		s->res.refused++;
		k->done = true;
		qkd_wipe(k->src, sizeof k->src);
		return QKD_OK;
	}
	s->res.started++;
	return QKD_OK;
}
