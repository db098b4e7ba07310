/* route_graph.c - the graph of usable links and Dijkstra over it
 * (lib/relay/route_int.h, docs/relay.md "Metric").
 *
 * A link is an edge only when both ends' LSAs list each other and both
 * reports give a finite cost: a one-sided report may be stale (the far end
 * has not seen it come up yet, or has seen it go down) and must not carry
 * key. Dijkstra runs with a binary heap, O(E log E) with at most
 * QKD_LSA_LINKS_MAX edges a node, so a recompute at QKD_LSDB_NODES_MAX nodes
 * stays in milliseconds. Among equal distances the lower node index (origin
 * order) settles first, so a database always gives the same paths.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "route_int.h"

size_t route_graph_index(const struct route_graph *g, const char *id)
{
	size_t lo = 0, hi = g->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(qkd_lsdb_at(g->db, mid)->origin, id);

		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return g->n;
}

double route_graph_edge(const struct route_graph *g, size_t u, size_t v)
{
	if (u >= g->n)
		return INFINITY;
	for (size_t k = 0; k < g->deg[u]; k++)
		if (g->edge[u * QKD_LSA_LINKS_MAX + k].to == v)
			return g->edge[u * QKD_LSA_LINKS_MAX + k].cost;
	return INFINITY;
}

static void graph_edges(struct route_graph *g, const struct qkd_route_params *p, size_t u)
{
	const struct qkd_lsa *a = qkd_lsdb_at(g->db, u);

	g->deg[u] = 0;
	for (size_t k = 0; k < a->n_links; k++) {
		const struct qkd_lsa_link *la = &a->links[k], *lb;
		size_t v = route_graph_index(g, la->neighbour);
		double c;

		if (v == g->n)
			continue;
		lb = qkd_lsa_find_link(qkd_lsdb_at(g->db, v), a->origin);
		if (lb == NULL)
			continue;
		c = fmax(qkd_route_link_cost(p, la), qkd_route_link_cost(p, lb));
		if (isinf(c))
			continue;
		g->edge[u * QKD_LSA_LINKS_MAX + g->deg[u]].to = v;
		g->edge[u * QKD_LSA_LINKS_MAX + g->deg[u]].cost = c;
		g->deg[u]++;
	}
}

/* The heap of Dijkstra's frontier: (distance, node) pairs, least first,
 * ordered by distance and then node index so the order is total. A node may
 * sit in it more than once (lazy deletion: a popped node already settled is
 * skipped), so it holds at most one entry per edge plus the source. */
struct heap_item {
	double d;
	size_t v;
};

static bool heap_less(const struct heap_item *a, const struct heap_item *b)
{
	return a->d < b->d || (a->d == b->d && a->v < b->v);
}

static void heap_push(struct heap_item *h, size_t *n, struct heap_item it)
{
	size_t i = (*n)++;

	while (i > 0 && heap_less(&it, &h[(i - 1) / 2])) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = it;
}

static struct heap_item heap_pop(struct heap_item *h, size_t *n)
{
	struct heap_item top = h[0], last = h[--(*n)];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= *n)
			break;
		if (c + 1 < *n && heap_less(&h[c + 1], &h[c]))
			c++;
		if (!heap_less(&h[c], &last))
			break;
		h[i] = h[c];
		i = c;
	}
	if (*n > 0)
		h[i] = last;
	return top;
}

static void graph_dijkstra(struct route_graph *g, bool *done, struct heap_item *heap, size_t src)
{
	size_t n = 0;

	for (size_t i = 0; i < g->n; i++) {
		g->dist[i] = INFINITY;
		g->prev[i] = g->n;
	}
	g->dist[src] = 0.0;
	heap_push(heap, &n, (struct heap_item){ 0.0, src });
	while (n > 0) {
		size_t u = heap_pop(heap, &n).v;

		if (done[u])
			continue;
		done[u] = true;
		for (size_t k = 0; k < g->deg[u]; k++) {
			const struct route_edge *e = &g->edge[u * QKD_LSA_LINKS_MAX + k];

			if (!done[e->to] && g->dist[u] + e->cost < g->dist[e->to]) {
				g->dist[e->to] = g->dist[u] + e->cost;
				g->prev[e->to] = u;
				heap_push(heap, &n, (struct heap_item){ g->dist[e->to], e->to });
			}
		}
	}
}

static bool graph_excluded_node(const struct qkd_route_exclude *ex, const char *id)
{
	for (size_t i = 0; i < ex->n_nodes; i++)
		if (strcmp(ex->nodes[i], id) == 0)
			return true;
	return false;
}

static bool graph_excluded_link(const struct qkd_route_exclude *ex, const char *a, const char *b)
{
	for (size_t i = 0; i < ex->n_links; i++)
		if ((strcmp(ex->links[i][0], a) == 0 && strcmp(ex->links[i][1], b) == 0) ||
		    (strcmp(ex->links[i][0], b) == 0 && strcmp(ex->links[i][1], a) == 0))
			return true;
	return false;
}

/* Drop the edges ex leaves out: every edge of an excluded node, and the
 * excluded links in both directions. */
static void graph_exclude(struct route_graph *g, const struct qkd_route_exclude *ex)
{
	for (size_t u = 0; u < g->n; u++) {
		const char *a = qkd_lsdb_at(g->db, u)->origin;
		size_t keep = 0;

		if (graph_excluded_node(ex, a)) {
			g->deg[u] = 0;
			continue;
		}
		for (size_t k = 0; k < g->deg[u]; k++) {
			struct route_edge e = g->edge[u * QKD_LSA_LINKS_MAX + k];
			const char *b = qkd_lsdb_at(g->db, e.to)->origin;

			if (!graph_excluded_node(ex, b) && !graph_excluded_link(ex, a, b))
				g->edge[u * QKD_LSA_LINKS_MAX + keep++] = e;
		}
		g->deg[u] = keep;
	}
}

int route_graph_build(struct route_graph *g, const struct qkd_lsdb *db,
		      const struct qkd_route_params *p, size_t src,
		      const struct qkd_route_exclude *ex)
{
	bool *done = NULL;
	struct heap_item *heap = NULL;
	int rc = QKD_ERR_NOMEM;

	memset(g, 0, sizeof *g);
	g->db = db;
	g->n = qkd_lsdb_count(db);
	if (g->n == 0 || src >= g->n) {
		rc = QKD_ERR_INVAL;
		goto out;
	}
	g->deg = calloc(g->n, sizeof *g->deg);
	g->edge = calloc(g->n * QKD_LSA_LINKS_MAX, sizeof *g->edge);
	g->dist = calloc(g->n, sizeof *g->dist);
	g->prev = calloc(g->n, sizeof *g->prev);
	done = calloc(g->n, sizeof *done);
	heap = calloc(g->n * QKD_LSA_LINKS_MAX + 1, sizeof *heap);
	if (g->deg == NULL || g->edge == NULL || g->dist == NULL || g->prev == NULL ||
	    done == NULL || heap == NULL)
		goto out;
	for (size_t u = 0; u < g->n; u++)
		graph_edges(g, p, u);
	if (ex != NULL)
		graph_exclude(g, ex);
	graph_dijkstra(g, done, heap, src);
	rc = QKD_OK;
out:
	free(done);
	free(heap);
	if (rc != QKD_OK)
		route_graph_cleanup(g);
	return rc;
}

void route_graph_cleanup(struct route_graph *g)
{
	free(g->deg);
	free(g->edge);
	free(g->dist);
	free(g->prev);
	memset(g, 0, sizeof *g);
}
