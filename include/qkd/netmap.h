/* qkd/netmap.h - the network a node knows, read from its status JSON and
 * drawn as graphviz dot text (`qkd netmap`, docs/relay.md "Network map").
 *
 * The input is the `relay` object of `qkd status --json`: the node's id,
 * its link-state database (one LSA per origin, each listing the origin's
 * links as it reports them) and its routes. The map has one node per LSA
 * origin and one edge per linked pair, both ends' reports merged: the
 * same rule as routing (docs/relay.md "Metric"), so a link drawn green is
 * a link routes may use. Parsing is strict (every id checked as an LSA's
 * is, every number in its domain): the text ends up inside dot source,
 * and a status with a bad field is a broken node, not something to draw.
 */
#ifndef QKD_NETMAP_H
#define QKD_NETMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/lsa.h"

struct qkd_netmap;

/* One linked pair, a < b in byte order. */
struct qkd_netmap_edge {
	char a[QKD_NODE_NAME_MAX];
	char b[QKD_NODE_NAME_MAX];
	uint8_t state;		/* enum qkd_lsa_state: up only when both ends
				 * report it up; alarmed when either end does */
	bool one_sided;		/* listed by one end's LSA only */
	bool routed;		/* on a path of one of the node's own routes */
	double qber;		/* the larger of the ends' reports */
	uint64_t available_bits;	/* the smaller of the ends' reports */
};

/* Status JSON longer than this is refused (as `qkd status` bounds a reply). */
#define QKD_NETMAP_JSON_MAX (1u << 24)

/* Parse len bytes of status JSON (not NUL-terminated) into a new map in
 * *out (free with qkd_netmap_free). QKD_ERR_INVAL: a status object that
 * has no "relay" member (the node runs no relay service). QKD_ERR_PROTO:
 * not JSON, not an object, or a relay object that breaks the schema of
 * docs/relay.md "Network map" (a missing or mistyped field, an invalid id,
 * an unknown state, a value out of its domain, an origin twice); why[0..
 * whylen) then names the field. QKD_ERR_RANGE: more than
 * QKD_LSDB_NODES_MAX LSAs or len over QKD_NETMAP_JSON_MAX. QKD_ERR_NOMEM.
 * *out is NULL on every error. */
__attribute__((warn_unused_result))
int qkd_netmap_parse(const char *json, size_t len, struct qkd_netmap **out, char *why,
		     size_t whylen);

void qkd_netmap_free(struct qkd_netmap *m);

/* The node whose status it is ("relay.self"). */
const char *qkd_netmap_self(const struct qkd_netmap *m);

/* Nodes: the LSA origins in byte order, then (also in byte order) the
 * neighbours some LSA names that have no LSA of their own. */
size_t qkd_netmap_nodes(const struct qkd_netmap *m);
/* Node i's id and its SAEs (empty for a node without an LSA); has_lsa
 * false for the second kind above. NULL for i out of range. */
const struct qkd_lsa *qkd_netmap_node(const struct qkd_netmap *m, size_t i, bool *has_lsa);

/* Edges in byte order of (a, b). NULL for i out of range. */
size_t qkd_netmap_edges(const struct qkd_netmap *m);
const struct qkd_netmap_edge *qkd_netmap_edge(const struct qkd_netmap *m, size_t i);

/* The width an edge is drawn with: 1 + log2(1 + available_bits / 65536),
 * at most 8, so a link with a 2^16-bit pool is twice as wide as an empty
 * one and the widest pools do not swamp the picture. */
double qkd_netmap_penwidth(uint64_t available_bits);

/* The whole map as graphviz dot source (an undirected graph, laid out by
 * neato), in a new NUL-terminated string *out (*len bytes without the NUL;
 * the caller frees it). Colours: up green, alarmed red, down (or one-sided)
 * grey and dashed; edges on the node's routes bold; the node itself drawn
 * with a double border. QKD_ERR_NOMEM. */
int qkd_netmap_dot(const struct qkd_netmap *m, char **out, size_t *len);

#endif
