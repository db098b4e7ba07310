/* route_int.h - the graph of usable links and its shortest paths, shared by
 * lib/relay/route.c (table, hysteresis) and route_graph.c (graph, Dijkstra).
 * Internal to libqkd. */
#ifndef QKD_ROUTE_INT_H
#define QKD_ROUTE_INT_H

#include <stddef.h>

#include "qkd/lsdb.h"
#include "qkd/route.h"

struct route_edge {
	size_t to;	/* index in the lsdb's origin order */
	double cost;	/* finite: unusable links are left out */
};

struct route_graph {
	const struct qkd_lsdb *db;	/* borrowed: node i is qkd_lsdb_at(db, i) */
	size_t n;
	size_t *deg;			/* edges of node i: edge[i * QKD_LSA_LINKS_MAX ..] */
	struct route_edge *edge;
	double *dist;			/* from the source, INFINITY when unreachable */
	size_t *prev;			/* predecessor on the shortest path; n for none */
};

/* Builds the graph of db's usable links and runs Dijkstra from node src;
 * ex (may be NULL) leaves nodes and links out (qkd_route_path). */
int route_graph_build(struct route_graph *g, const struct qkd_lsdb *db,
		      const struct qkd_route_params *p, size_t src,
		      const struct qkd_route_exclude *ex);
void route_graph_cleanup(struct route_graph *g);
/* Index of node id in db's origin order; n when absent. */
size_t route_graph_index(const struct route_graph *g, const char *id);
/* The cost of the edge from u to v, INFINITY when there is none. */
double route_graph_edge(const struct route_graph *g, size_t u, size_t v);

#endif
