/* route.c - the routing table of one node: key-aware metric, paths from
 * Dijkstra, hysteresis (qkd/route.h, docs/relay.md "Metric" and
 * "Hysteresis").
 *
 * Hysteresis is per destination: the path held from the last compute is
 * re-costed on the new graph and kept unless it broke (a link on it down,
 * alarmed, out of key or no longer listed by both ends), the new best path
 * is cheaper by more than the margin, or the best costs exactly as much
 * (full links: then the tie-break's path wins, so every node, and netsim,
 * settles on the path the database alone determines, whatever was held
 * while the pools were filling). Because the key relay names
 * every hop (source routing), keeping an older path at the source cannot
 * make a forwarding loop.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/route.h"
#include "route_int.h"

struct qkd_routes {
	char self[QKD_NODE_NAME_MAX];
	struct qkd_route_params p;
	struct qkd_route *r;	/* sorted by dest; each path owned */
	size_t n;
};

void qkd_route_params_default(struct qkd_route_params *p)
{
	p->k_bits = 1e6;
	p->min_available_bits = 4096;
	p->full_bits = (uint64_t)1 << 20;
	p->margin = 0.2;
}

double qkd_route_link_cost(const struct qkd_route_params *p, const struct qkd_lsa_link *l)
{
	uint64_t avail = l->available_bits < p->full_bits ? l->available_bits : p->full_bits;

	if (l->state != QKD_LSA_UP || l->available_bits < p->min_available_bits)
		return INFINITY;
	return 1.0 + p->k_bits / ((double)avail + 1.0);
}

int qkd_routes_new(const char *self, const struct qkd_route_params *p,
		   struct qkd_routes **out)
{
	struct qkd_routes *rt;

	*out = NULL;
	if (!qkd_lsa_node_id_valid(self) || !(p->k_bits > 0.0 && isfinite(p->k_bits)) ||
	    !(p->margin >= 0.0 && p->margin < 1.0) || p->full_bits == 0)
		return QKD_ERR_INVAL;
	rt = calloc(1, sizeof *rt);
	if (rt == NULL)
		return QKD_ERR_NOMEM;
	strcpy(rt->self, self);
	rt->p = *p;
	*out = rt;
	return QKD_OK;
}

static void routes_clear(struct qkd_route *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(r[i].path);
	free(r);
}

void qkd_routes_free(struct qkd_routes *rt)
{
	if (rt == NULL)
		return;
	routes_clear(rt->r, rt->n);
	free(rt);
}

/* The held path re-costed on g: INFINITY when any of its links is gone. */
static double path_cost(const struct route_graph *g, const struct qkd_route *r)
{
	double c = 0.0;

	for (size_t i = 0; i < r->hops; i++)
		c += route_graph_edge(g, route_graph_index(g, r->path[i]),
				      route_graph_index(g, r->path[i + 1]));
	return c;
}

static bool path_equal(const struct qkd_route *a, const struct qkd_route *b)
{
	if (a->hops != b->hops)
		return false;
	for (size_t i = 0; i <= a->hops; i++)
		if (strcmp(a->path[i], b->path[i]) != 0)
			return false;
	return true;
}

/* out's path: a copy of old's, or g's shortest path to node j. */
static int route_fill(const struct route_graph *g, size_t j, const struct qkd_route *old,
		      struct qkd_route *out)
{
	size_t hops = 0;

	if (old != NULL) {
		hops = old->hops;
	} else {
		for (size_t v = j; g->prev[v] != g->n && hops < g->n; v = g->prev[v])
			hops++;
	}
	out->path = calloc(hops + 1, sizeof *out->path);
	if (out->path == NULL)
		return QKD_ERR_NOMEM;
	out->hops = hops;
	if (old != NULL) {
		memcpy(out->path, old->path, (hops + 1) * sizeof *out->path);
	} else {
		size_t v = j;

		for (size_t i = hops + 1; i-- > 0; v = g->prev[v])
			strcpy(out->path[i], qkd_lsdb_at(g->db, v)->origin);
	}
	strcpy(out->dest, out->path[hops]);
	strcpy(out->next_hop, out->path[1]);
	return QKD_OK;
}

/* One destination: keep the held path unless it broke, the new best is
 * cheaper by more than the margin, or the best costs exactly the same
 * (the sums run in the same order along a path, so equal link costs give
 * equal totals). */
static int route_choose(const struct qkd_routes *rt, const struct route_graph *g, size_t j,
			struct qkd_route *out, size_t *changed)
{
	const struct qkd_route *old = qkd_routes_get(rt, qkd_lsdb_at(g->db, j)->origin);
	double old_cost = old != NULL ? path_cost(g, old) : INFINITY;
	bool keep = !isinf(old_cost) && !(g->dist[j] < old_cost * (1.0 - rt->p.margin)) &&
		    g->dist[j] != old_cost;
	int rc = route_fill(g, j, keep ? old : NULL, out);

	if (rc != QKD_OK)
		return rc;
	out->cost = keep ? old_cost : g->dist[j];
	if (old == NULL || !path_equal(old, out))
		(*changed)++;
	return QKD_OK;
}

/* Held destinations that the new table lacks. */
static size_t routes_lost(const struct qkd_routes *rt, const struct qkd_route *r, size_t n)
{
	size_t lost = 0, k = 0;

	for (size_t i = 0; i < rt->n; i++) {
		while (k < n && strcmp(r[k].dest, rt->r[i].dest) < 0)
			k++;
		if (k == n || strcmp(r[k].dest, rt->r[i].dest) != 0)
			lost++;
	}
	return lost;
}

int qkd_routes_compute(struct qkd_routes *rt, const struct qkd_lsdb *db, size_t *changed)
{
	struct route_graph g = { 0 };
	struct qkd_route *r = NULL;
	size_t n = 0, moved = 0, src;
	int rc = QKD_OK;

	if (qkd_lsdb_get(db, rt->self) != NULL) {
		g.db = db;
		g.n = qkd_lsdb_count(db);
		src = route_graph_index(&g, rt->self);
		rc = route_graph_build(&g, db, &rt->p, src, NULL);
		if (rc != QKD_OK)
			goto out;
		rc = QKD_ERR_NOMEM;
		r = calloc(g.n, sizeof *r);
		if (r == NULL)
			goto out;
		for (size_t j = 0; j < g.n; j++) {
			if (j == src || isinf(g.dist[j]))
				continue;
			rc = route_choose(rt, &g, j, &r[n], &moved);
			if (rc != QKD_OK)
				goto out;
			n++;
		}
	}
	moved += routes_lost(rt, r, n);
	routes_clear(rt->r, rt->n);
	rt->r = r;
	rt->n = n;
	r = NULL;
	n = 0;
	if (changed != NULL)
		*changed = moved;
	rc = QKD_OK;
out:
	routes_clear(r, n);
	route_graph_cleanup(&g);
	return rc;
}

const struct qkd_route *qkd_routes_get(const struct qkd_routes *rt, const char *dest)
{
	size_t lo = 0, hi = rt->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(rt->r[mid].dest, dest);

		if (c == 0)
			return &rt->r[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

size_t qkd_routes_count(const struct qkd_routes *rt)
{
	return rt->n;
}

const struct qkd_route *qkd_routes_at(const struct qkd_routes *rt, size_t i)
{
	return i < rt->n ? &rt->r[i] : NULL;
}

int qkd_route_path(const struct qkd_lsdb *db, const struct qkd_route_params *p, const char *src,
		   const char *dst, const struct qkd_route_exclude *ex,
		   char (*path)[QKD_NODE_NAME_MAX], size_t cap, size_t *hops, double *cost)
{
	struct route_graph g = { .db = db, .n = qkd_lsdb_count(db) };
	size_t s = route_graph_index(&g, src), d = route_graph_index(&g, dst), n = 0;
	int rc = QKD_ERR_NOKEY;

	*hops = 0;
	*cost = INFINITY;
	if (s == g.n || d == g.n || s == d)
		return QKD_ERR_NOKEY;
	rc = route_graph_build(&g, db, p, s, ex);
	if (rc != QKD_OK)
		goto out;
	rc = QKD_ERR_NOKEY;
	if (isinf(g.dist[d]))
		goto out;
	for (size_t v = d; g.prev[v] != g.n && n < g.n; v = g.prev[v])
		n++;
	rc = QKD_ERR_RANGE;
	if (n + 1 > cap)
		goto out;
	for (size_t i = n + 1, v = d; i-- > 0; v = g.prev[v])
		strcpy(path[i], qkd_lsdb_at(db, v)->origin);
	*hops = n;
	*cost = g.dist[d];
	rc = QKD_OK;
out:
	route_graph_cleanup(&g);
	return rc;
}
