/* netsim.c - the simulator's loop (qkd/netsim.h): building the agents and
 * links from a topology, and running the events in time order. Events are
 * messages between agents, links coming up, the 100 ms tick (pools grow,
 * agents' timers), the 1 s link reports, faults and requests. The pads are
 * netsim_link.c, the agents' callbacks netsim_ops.c, the figures
 * netsim_stats.c. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qkd/error.h"
#include "qkd/lsdb.h"
#include "qkd/secret.h"
#include "netsim_int.h"

void qkd_netsim_config_default(struct qkd_netsim_config *c)
{
	memset(c, 0, sizeof *c);
	c->duration_s = 60;
	c->requests_per_s = 10;
	c->warmup_s = 2;
	c->paths = 1;
	c->seed = 1;
}

static double ns_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int ns_schedule(struct qkd_netsim *s, double t, enum ns_kind kind, uint32_t node,
		       uint32_t link)
{
	struct ns_event ev = {0};

	ev.t = t;
	ev.kind = (uint8_t)kind;
	ev.node = node;
	ev.link = link;
	return ns_heap_push(&s->heap, &ev);
}

static int ns_links_init(struct qkd_netsim *s)
{
	const struct qkd_topology *t = s->t;
	struct qkd_link_params p;

	for (size_t i = 0; i < t->n_links; i++) {
		const struct qkd_topo_link *tl = &t->links[i];
		struct ns_link *l = &s->links[i];
		uint8_t in[16];

		l->a = tl->a;
		l->b = tl->b;
		l->latency_s = qkd_topology_link_latency_s(tl);
		l->rate_bps = qkd_topology_link_rate_bps(tl);
		qkd_link_params_default(&p);
		p.channel = tl->channel;
		p.distance_km = tl->km;
		p.daylight = tl->day;
		qkd_link_expected(&p, NULL, &l->qber);
		l->made = (double)(tl->pool_bits / 2);
		for (int k = 0; k < 8; k++) {
			in[k] = (uint8_t)(s->c.seed >> (8 * k));
			in[8 + k] = (uint8_t)((uint64_t)i >> (8 * k));
		}
		crypto_generichash(l->key, sizeof l->key, in, sizeof in,
				   (const uint8_t *)"qkd-netsim-pad", 14);
		s->nodes[l->a].links[s->nodes[l->a].n_links++] = i;
		s->nodes[l->b].links[s->nodes[l->b].n_links++] = i;
		if (ns_schedule(s, l->latency_s, NS_LINK_UP, 0, (uint32_t)i) != QKD_OK)
			return QKD_ERR_NOMEM;
	}
	return QKD_OK;
}

static int ns_agent_new(struct qkd_netsim *s, size_t i)
{
	const struct qkd_topo_node *tn = &s->t->nodes[i];
	struct ns_node *n = &s->nodes[i];
	const char *nb[QKD_LSA_LINKS_MAX], *saes[QKD_TOPO_NODE_SAES_MAX];
	struct qkd_relay_config rc;

	for (size_t k = 0; k < n->n_links; k++) {
		const struct ns_link *l = &s->links[n->links[k]];

		nb[k] = s->t->nodes[l->a == i ? l->b : l->a].id;
	}
	for (size_t k = 0; k < tn->n_saes; k++)
		saes[k] = tn->saes[k];
	qkd_relay_config_default(&rc);
	rc.self = tn->id;
	rc.n_neighbours = n->n_links;
	rc.neighbours = nb;
	rc.n_saes = tn->n_saes;
	rc.saes = saes;
	rc.seq_start = 1;
	rc.relays_max = QKD_NETSIM_RELAYS_MAX;
	rc.log = s->c.log;
	rc.ops = &ns_ops;
	rc.ctx = n;
	return qkd_relay_new(&rc, &n->r);
}

static int ns_check(const struct qkd_netsim_config *c, const char **why)
{
	const struct qkd_topology *t = c->topo;

	*why = t == NULL || t->n_nodes < 2 ? "the topology needs at least 2 nodes" :
	       t->n_nodes > QKD_LSDB_NODES_MAX ? "the topology has over 4096 nodes" :
	       !(c->duration_s > 0 && c->duration_s <= 1e6) ? "duration not in (0, 1e6] s" :
	       !(c->requests_per_s >= 0 && c->requests_per_s <= 1e6) ? "requests not in [0, 1e6]/s" :
	       !(c->warmup_s >= 0) ? "warm-up below 0" :
	       c->paths != 1 && c->paths != 2 ? "paths must be 1 or 2" :
	       c->n_faults > QKD_NETSIM_FAULTS_MAX ? "too many faults" : NULL;
	for (size_t f = 0; *why == NULL && f < c->n_faults; f++)
		if (c->faults[f].link >= t->n_links || !(c->faults[f].t >= 0) ||
		    c->faults[f].t > c->duration_s)
			*why = "a fault names no link, or its time is not within the run";
	return *why == NULL ? QKD_OK : QKD_ERR_INVAL;
}

/* SAEs of the whole network, for the requests; node ids indexed. */
static int ns_index(struct qkd_netsim *s, const char **why)
{
	size_t holders = 0, n = 0;
	char key[QKD_NODE_NAME_MAX + 1];

	for (size_t i = 0; i < s->t->n_nodes; i++) {
		n += s->t->nodes[i].n_saes;
		holders += s->t->nodes[i].n_saes > 0;
		key[0] = 'n';
		strcpy(key + 1, s->t->nodes[i].id);
		if (topo_index_put(&s->ids, key, strlen(key), i) != QKD_OK)
			return QKD_ERR_NOMEM;
	}
	if (s->c.requests_per_s > 0 && holders < 2) {
		*why = "requests need SAEs at two nodes at least";
		return QKD_ERR_INVAL;
	}
	s->saes = calloc(n ? n : 1, sizeof *s->saes);
	if (s->saes == NULL)
		return QKD_ERR_NOMEM;
	for (size_t i = 0; i < s->t->n_nodes; i++)
		for (size_t k = 0; k < s->t->nodes[i].n_saes; k++) {
			s->saes[s->n_saes].node = i;
			s->saes[s->n_saes++].id = s->t->nodes[i].saes[k];
		}
	return QKD_OK;
}

static int ns_fault_cmp(const void *x, const void *y)
{
	const struct qkd_netsim_fault *a = x, *b = y;

	return (a->t > b->t) - (a->t < b->t);
}

static int ns_schedule_all(struct qkd_netsim *s)
{
	int rc = QKD_OK;

	for (size_t i = 0; rc == QKD_OK && i < s->t->n_nodes; i++)
		rc = ns_agent_new(s, i);
	if (rc != QKD_OK)
		return rc;
	qsort(s->c.faults, s->c.n_faults, sizeof s->c.faults[0], ns_fault_cmp);
	for (size_t f = 0; rc == QKD_OK && f < s->c.n_faults; f++)
		rc = ns_schedule(s, s->c.faults[f].t, NS_FAULT, 0, (uint32_t)f);
	if (rc == QKD_OK)
		rc = ns_schedule(s, QKD_NETSIM_TICK_S, NS_TICK, 0, 0);
	if (rc == QKD_OK)
		rc = ns_schedule(s, QKD_NETSIM_REPORT_S, NS_REPORT, 0, 0);
	if (rc == QKD_OK && s->c.requests_per_s > 0)
		rc = ns_schedule(s, s->c.warmup_s, NS_REQUEST, 0, 0);
	return rc;
}

int qkd_netsim_new(const struct qkd_netsim_config *c, struct qkd_netsim **out,
		   const char **why)
{
	struct qkd_netsim *s = NULL;
	size_t nn;
	int rc;

	*out = NULL;
	*why = NULL;
	if ((rc = ns_check(c, why)) != QKD_OK)
		goto out;
	rc = QKD_ERR_NOMEM;
	s = calloc(1, sizeof *s);
	if (s == NULL)
		goto out;
	s->c = *c;
	s->t = c->topo;
	s->wall0 = ns_wall();
	nn = s->t->n_nodes;
	topo_index_init(&s->ids);
	qkd_rng_init_seed(&s->rng, c->seed, "netsim");
	s->nodes = calloc(nn, sizeof *s->nodes);
	s->links = calloc(s->t->n_links ? s->t->n_links : 1, sizeof *s->links);
	s->clear = calloc(nn * (c->n_faults ? c->n_faults : 1), sizeof *s->clear);
	s->informed = calloc(nn * (c->n_faults ? c->n_faults : 1), sizeof *s->informed);
	if (s->nodes == NULL || s->links == NULL || s->clear == NULL || s->informed == NULL)
		goto out;
	if (c->trace && (s->hops = malloc(nn * nn * sizeof *s->hops)) == NULL)
		goto out;
	for (size_t i = 0; c->trace && i < nn * nn; i++)
		s->hops[i] = UINT32_MAX;
	for (size_t i = 0; i < nn; i++) {
		s->nodes[i].sim = s;
		s->nodes[i].idx = i;
	}
	if ((rc = ns_index(s, why)) != QKD_OK || (rc = ns_links_init(s)) != QKD_OK ||
	    (rc = ns_schedule_all(s)) != QKD_OK)
		goto out;
	*out = s;
	s = NULL;
out:
	if (rc != QKD_OK && *why == NULL)
		*why = rc == QKD_ERR_NOMEM ? "out of memory" : "a relay agent refused its configuration";
	qkd_netsim_free(s);
	return rc;
}

void qkd_netsim_free(struct qkd_netsim *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; s->nodes != NULL && i < s->t->n_nodes; i++)
		qkd_relay_free(s->nodes[i].r);
	for (size_t i = 0; s->links != NULL && i < s->t->n_links; i++)
		ns_link_cleanup(&s->links[i]);
	if (s->keys != NULL)
		qkd_wipe(s->keys, s->cap_keys * sizeof *s->keys);
	ns_heap_cleanup(&s->heap);
	topo_index_cleanup(&s->ids);
	qkd_rng_cleanup(&s->rng);
	free(s->nodes);
	free(s->links);
	free(s->clear);
	free(s->informed);
	free(s->hops);
	free(s->saes);
	free(s->keys);
	free(s->lat);
	free(s->trace);
	free(s);
}
