/* qkd/route.h - key-aware shortest paths from this node over the
 * link-state database (docs/relay.md "Metric" and "Hysteresis").
 *
 * A link counts only when both ends' LSAs list it. Its cost is
 * 1 + K / (min(available, full) + 1), the worse of the two ends' reports, so
 * it grows as the link's key pool drains below full; it is infinite when
 * either end reports it down or alarmed, or its available key is below
 * min_available_bits. Links with full pools cost the same, so among them
 * paths go by hops and the fixed tie-break, not by noise in pool sizes
 * reported at different moments. Routes are whole paths (the key relay
 * names every hop), chosen by Dijkstra, and a destination's path changes
 * only when a new one is cheaper by the margin, costs exactly as much (the
 * tie-break's choice then wins), or the old one broke. Pure computation: no
 * sockets, no threads, no locks.
 */
#ifndef QKD_ROUTE_H
#define QKD_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "qkd/lsa.h"
#include "qkd/lsdb.h"

struct qkd_route_params {
	double k_bits;			/* K of the metric, > 0 */
	uint64_t min_available_bits;	/* below: out of key, infinite cost */
	uint64_t full_bits;		/* at or above: a full pool, the least cost; > 0 */
	double margin;			/* in [0, 1): hysteresis fraction */
};

/* K = 1e6 bits, out of key below 4096 bits, full from 2^20 bits, margin 0.2. */
void qkd_route_params_default(struct qkd_route_params *p);

/* The cost of one end's report of a link (INFINITY when unusable). */
double qkd_route_link_cost(const struct qkd_route_params *p, const struct qkd_lsa_link *l);

struct qkd_route {
	char dest[QKD_NODE_NAME_MAX];
	char next_hop[QKD_NODE_NAME_MAX];	/* path[1] */
	double cost;				/* of path, at the last compute */
	size_t hops;				/* links on the path, >= 1 */
	char (*path)[QKD_NODE_NAME_MAX];	/* hops + 1 ids, self first; owned by the table */
};

struct qkd_routes;

/* A table for node self (a node id), empty until the first compute; p is
 * copied. QKD_ERR_INVAL for an invalid id or parameters. */
int qkd_routes_new(const char *self, const struct qkd_route_params *p,
		   struct qkd_routes **out);
void qkd_routes_free(struct qkd_routes *rt);	/* accepts NULL */

/* What a one-off path must avoid: nodes (a first share's relays, for a
 * node-disjoint second share) and links (one a relay reported failing,
 * before its LSA arrives), each link as its two end ids in either order. */
struct qkd_route_exclude {
	size_t n_nodes;
	const char (*nodes)[QKD_NODE_NAME_MAX];
	size_t n_links;
	const char (*links)[2][QKD_NODE_NAME_MAX];
};

/* The cheapest path from src to dst over db's usable links avoiding ex (may
 * be NULL), without hysteresis: path[0 .. *hops] (cap ids at most), src
 * first, and its cost. QKD_ERR_NOKEY when dst is unreachable (or src or
 * dst is excluded or unknown), QKD_ERR_RANGE when the path is longer than
 * cap - 1 links, QKD_ERR_NOMEM. */
int qkd_route_path(const struct qkd_lsdb *db, const struct qkd_route_params *p, const char *src,
		   const char *dst, const struct qkd_route_exclude *ex,
		   char (*path)[QKD_NODE_NAME_MAX], size_t cap, size_t *hops, double *cost);

/* Recomputes every route from db (which needs self's own LSA: without it
 * nothing is reachable). *changed (may be NULL) counts destinations whose
 * path appeared, disappeared or moved. On error the table is unchanged.
 * Pointers from qkd_routes_get/at are invalid afterwards. */
int qkd_routes_compute(struct qkd_routes *rt, const struct qkd_lsdb *db, size_t *changed);

/* The route to dest, or NULL when it is unreachable (or self). */
const struct qkd_route *qkd_routes_get(const struct qkd_routes *rt, const char *dest);
size_t qkd_routes_count(const struct qkd_routes *rt);
const struct qkd_route *qkd_routes_at(const struct qkd_routes *rt, size_t i);	/* dest order */

#endif
