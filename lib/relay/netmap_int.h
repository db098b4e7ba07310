/* netmap_int.h - the map's insides, shared by netmap.c (parse, merge) and
 * netmap_dot.c (render); not a public header (qkd/netmap.h is). */
#ifndef QKD_NETMAP_INT_H
#define QKD_NETMAP_INT_H

#include "qkd/netmap.h"

struct qkd_netmap {
	char self[QKD_NODE_NAME_MAX];
	size_t n_lsas;			/* LSA origins, sorted by id */
	struct qkd_lsa *lsas;
	size_t n_bare;			/* neighbours without an LSA, sorted */
	struct qkd_lsa *bare;		/* only origin set */
	size_t n_edges;			/* sorted by (a, b) */
	struct qkd_netmap_edge *edges;
};

#endif
