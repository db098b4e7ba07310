/* netsim_stats.c - what a simulation measures (qkd/netsim.h): convergence
 * after each fault (until no node's routes use the failed link, checked
 * after every tick, when routes are recomputed), the trace of next-hop
 * changes, and the result's figures. Also the fault spec parser. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qkd/error.h"
#include "netsim_int.h"

/* Whether node i's routes cross the link between ids x and y. */
static bool ns_uses(const struct qkd_netsim *s, size_t i, const char *x, const char *y)
{
	const struct qkd_routes *rt = qkd_relay_routes(s->nodes[i].r);
	size_t n = rt ? qkd_routes_count(rt) : 0;

	for (size_t k = 0; k < n; k++) {
		const struct qkd_route *r = qkd_routes_at(rt, k);

		for (size_t h = 0; h < r->hops; h++) {
			const char *p = r->path[h], *q = r->path[h + 1];

			if ((!strcmp(p, x) && !strcmp(q, y)) || (!strcmp(p, y) && !strcmp(q, x)))
				return true;
		}
	}
	return false;
}

/* Mark the nodes now clear of fault f's link; true when all are. */
static bool ns_sweep(struct qkd_netsim *s, size_t f)
{
	const struct ns_link *l = &s->links[s->c.faults[f].link];
	const char *x = s->t->nodes[l->a].id, *y = s->t->nodes[l->b].id;
	size_t nn = s->t->n_nodes;
	bool all = true;

	for (size_t i = 0; i < nn; i++) {
		bool *c = &s->clear[f * nn + i];

		if (!*c)
			*c = !ns_uses(s, i, x, y);
		all &= *c;
	}
	return all;
}

/* Whether node i's database shows fault f's link down or alarmed, or no
 * longer listed, in the LSA of either end. */
static bool ns_knows(const struct qkd_netsim *s, size_t i, size_t f)
{
	const struct ns_link *l = &s->links[s->c.faults[f].link];
	const struct qkd_lsdb *db = qkd_relay_lsdb(s->nodes[i].r);
	size_t end[2] = {l->a, l->b};

	for (int k = 0; k < 2; k++) {
		const struct qkd_lsa *lsa = qkd_lsdb_get(db, s->t->nodes[end[k]].id);
		const struct qkd_lsa_link *ll;

		if (lsa == NULL)
			continue;
		ll = qkd_lsa_find_link(lsa, s->t->nodes[end[1 - k]].id);
		if (ll == NULL || ll->state != QKD_LSA_UP)
			return true;
	}
	return false;
}

static void ns_inform(struct qkd_netsim *s, size_t i, size_t f)
{
	bool *k = &s->informed[f * s->t->n_nodes + i];

	if (*k || !ns_knows(s, i, f))
		return;
	*k = true;
	if (--s->uninformed[f] == 0) {
		s->conv[f].flood_s = s->now - s->c.faults[f].t;
		s->flooding--;
	}
}

void ns_after_message(struct qkd_netsim *s, size_t i)
{
	for (size_t f = 0; f < s->c.n_faults; f++)
		if (s->happened[f] && s->uninformed[f] > 0)
			ns_inform(s, i, f);
}

int ns_watch(struct qkd_netsim *s, size_t f)
{
	size_t nn = s->t->n_nodes, using = 0;

	s->conv[f].fault = s->c.faults[f];
	s->conv[f].seconds = -1;
	s->conv[f].flood_s = -1;
	s->happened[f] = true;
	s->uninformed[f] = nn;
	s->flooding++;
	for (size_t i = 0; i < nn && s->uninformed[f] > 0; i++)
		ns_inform(s, i, f);
	s->watching[f] = !ns_sweep(s, f);
	for (size_t i = 0; i < nn; i++)
		using += !s->clear[f * nn + i];
	s->conv[f].nodes_using = using;
	if (!s->watching[f])
		s->conv[f].seconds = 0;
	return QKD_OK;
}

static int ns_trace_add(struct qkd_netsim *s, size_t node, size_t dest, uint32_t old, uint32_t now)
{
	struct qkd_netsim_reroute *e;

	if (s->n_trace == s->cap_trace) {
		size_t cap = s->cap_trace ? 2 * s->cap_trace : 256;

		e = realloc(s->trace, cap * sizeof *e);
		if (e == NULL)
			return QKD_ERR_NOMEM;
		s->trace = e;
		s->cap_trace = cap;
	}
	e = &s->trace[s->n_trace++];
	e->t = s->now;
	e->node = node;
	e->dest = dest;
	e->old_hop = old == UINT32_MAX ? -1 : (long)old;
	e->new_hop = now == UINT32_MAX ? -1 : (long)now;
	return QKD_OK;
}

/* Node i's next hops against the last ones seen; changes to the trace. */
static int ns_trace_node(struct qkd_netsim *s, size_t i, uint32_t *row)
{
	const struct qkd_routes *rt = qkd_relay_routes(s->nodes[i].r);
	size_t nn = s->t->n_nodes, n = rt ? qkd_routes_count(rt) : 0;
	uint32_t *old = &s->hops[i * nn];
	int rc = QKD_OK;

	for (size_t d = 0; d < nn; d++)
		row[d] = UINT32_MAX;
	for (size_t k = 0; k < n; k++) {
		const struct qkd_route *r = qkd_routes_at(rt, k);
		long d = ns_node_index(s, r->dest), h = ns_node_index(s, r->next_hop);

		if (d >= 0 && h >= 0)
			row[d] = (uint32_t)h;
	}
	for (size_t d = 0; d < nn && rc == QKD_OK; d++)
		if (row[d] != old[d]) {
			rc = ns_trace_add(s, i, d, old[d], row[d]);
			old[d] = row[d];
		}
	return rc;
}

int ns_after_tick(struct qkd_netsim *s)
{
	struct qkd_relay_stats st;
	uint32_t *row = NULL;
	int rc = QKD_OK;

	for (size_t f = 0; f < s->c.n_faults; f++)
		if (s->watching[f] && ns_sweep(s, f)) {
			s->watching[f] = false;
			s->conv[f].seconds = s->now - s->c.faults[f].t;
		}
	if (!s->c.trace)
		return QKD_OK;
	row = malloc(s->t->n_nodes * sizeof *row);
	if (row == NULL)
		return QKD_ERR_NOMEM;
	for (size_t i = 0; i < s->t->n_nodes && rc == QKD_OK; i++) {
		qkd_relay_get_stats(s->nodes[i].r, &st);
		if (st.route_changes == s->nodes[i].seen_route_changes)
			continue;
		s->nodes[i].seen_route_changes = st.route_changes;
		rc = ns_trace_node(s, i, row);
	}
	free(row);
	return rc;
}

static int ns_dcmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

/* Nearest rank: the smallest value with at least p of the samples at or below. */
static double ns_pct(const double *v, size_t n, double p)
{
	size_t k = (size_t)ceil(p * (double)n);

	return n == 0 ? 0 : v[k > 0 ? k - 1 : 0];
}

int ns_result(struct qkd_netsim *s, struct qkd_netsim_result *r)
{
	struct qkd_relay_stats st;
	double span = s->c.duration_s - s->c.warmup_s;
	struct timespec ts;

	*r = s->res;
	r->conv = NULL;
	r->trace = NULL;
	for (size_t i = 0; i < s->t->n_nodes; i++) {
		qkd_relay_get_stats(s->nodes[i].r, &st);
		r->route_changes += st.route_changes;
		r->reroutes += st.reroutes;
		r->lsa_originated += st.lsa_originated;
		r->lsa_received += st.lsa_received;
		r->refused_msgs += st.refused;
	}
	r->sim_s = s->now;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	r->wall_s = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 - s->wall0;
	r->in_flight = r->started - r->completed - r->failed;
	for (size_t i = 0; i < s->n_keys; i++)
		r->orphans += s->keys[i].failed && s->keys[i].delivered && !s->keys[i].withdrawn;
	r->throughput_bps = span > 0 ? (double)r->relayed_bits / span : 0;
	r->key_per_bit = r->relayed_bits ? (double)r->pad_bits / (double)r->relayed_bits : 0;
	r->two_path_fraction = r->completed ? (double)r->two_paths / (double)r->completed : 0;
	qsort(s->lat, s->n_lat, sizeof *s->lat, ns_dcmp);
	r->latency_p50_s = ns_pct(s->lat, s->n_lat, 0.5);
	r->latency_p99_s = ns_pct(s->lat, s->n_lat, 0.99);
	r->n_conv = s->c.n_faults;
	r->conv = calloc(r->n_conv ? r->n_conv : 1, sizeof *r->conv);
	r->trace = malloc((s->n_trace ? s->n_trace : 1) * sizeof *r->trace);
	if (r->conv == NULL || r->trace == NULL) {
		qkd_netsim_result_cleanup(r);
		return QKD_ERR_NOMEM;
	}
	for (size_t f = 0; f < r->n_conv; f++)
		r->conv[f] = s->happened[f] ?
			     s->conv[f] : (struct qkd_netsim_convergence){s->c.faults[f], -1, -1, 0};
	r->n_trace = s->n_trace;
	if (s->n_trace)
		memcpy(r->trace, s->trace, s->n_trace * sizeof *r->trace);
	return QKD_OK;
}

int qkd_netsim_finish(struct qkd_netsim *s, struct qkd_netsim_result *out)
{
	int rc = qkd_netsim_run_until(s, s->c.duration_s);

	memset(out, 0, sizeof *out);
	return rc == QKD_OK ? ns_result(s, out) : rc;
}

void qkd_netsim_result_cleanup(struct qkd_netsim_result *r)
{
	free(r->conv);
	free(r->trace);
	r->conv = NULL;
	r->trace = NULL;
	r->n_conv = r->n_trace = 0;
}

int qkd_netsim_run(const struct qkd_netsim_config *c, struct qkd_netsim_result *out,
		   const char **why)
{
	struct qkd_netsim *s = NULL;
	int rc;

	memset(out, 0, sizeof *out);
	rc = qkd_netsim_new(c, &s, why);
	if (rc == QKD_OK && (rc = qkd_netsim_finish(s, out)) != QKD_OK)
		*why = rc == QKD_ERR_NOMEM ? "out of memory" : "the simulation failed";
	qkd_netsim_free(s);
	return rc;
}

/* Split spec's link part at each '-': exactly one split must name a link. */
static int ns_fault_link(const struct qkd_topology *t, const char *ab, size_t *link,
			 const char **why)
{
	char a[QKD_NODE_NAME_MAX], b[QKD_NODE_NAME_MAX];
	size_t n = strlen(ab), found = 0;

	for (size_t k = 1; k + 1 < n; k++) {
		long ia, ib;

		if (ab[k] != '-' || k >= sizeof a || n - k - 1 >= sizeof b)
			continue;
		memcpy(a, ab, k);
		a[k] = '\0';
		memcpy(b, ab + k + 1, n - k);
		ia = qkd_topology_find(t, a);
		ib = qkd_topology_find(t, b);
		for (size_t i = 0; ia >= 0 && ib >= 0 && i < t->n_links; i++)
			if ((t->links[i].a == (size_t)ia && t->links[i].b == (size_t)ib) ||
			    (t->links[i].a == (size_t)ib && t->links[i].b == (size_t)ia)) {
				*link = i;
				found++;
			}
	}
	*why = found == 0 ? "no link between two nodes of the topology (A-B@T)" :
	       found > 1 ? "ambiguous: the ids split in more than one way" : NULL;
	return found == 1 ? QKD_OK : QKD_ERR_INVAL;
}

int qkd_netsim_fault_parse(const struct qkd_topology *t, const char *spec, bool alarm,
			   struct qkd_netsim_fault *out, const char **why)
{
	const char *at = strrchr(spec, '@');
	char ab[2 * QKD_NODE_NAME_MAX + 1], *end;
	double v;

	memset(out, 0, sizeof *out);
	*why = "expected A-B@T";
	if (at == NULL || (size_t)(at - spec) >= sizeof ab || at[1] == '\0')
		return QKD_ERR_INVAL;
	memcpy(ab, spec, (size_t)(at - spec));
	ab[at - spec] = '\0';
	if (strspn(at + 1, "0123456789.eE+-") != strlen(at + 1))
		return QKD_ERR_INVAL;
	v = strtod(at + 1, &end);
	*why = "the time must be a number of seconds >= 0";
	if (*end != '\0' || !isfinite(v) || v < 0)
		return QKD_ERR_INVAL;
	out->t = v;
	out->alarm = alarm;
	return ns_fault_link(t, ab, &out->link, why);
}
