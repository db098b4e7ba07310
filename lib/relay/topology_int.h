/* topology_int.h - what the topology's files share inside lib/relay:
 * growing the struct (topology.c) for the parser (topology_parse.c) and
 * the generator (topology_gen.c), and a small string-keyed index so a
 * 100000-line file is checked for repeats in linear time. */
#ifndef QKD_TOPOLOGY_INT_H
#define QKD_TOPOLOGY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "qkd/topology.h"

struct qkd_topology *topo_new(void);
/* Append a node with no SAEs (id valid, not checked for repeats) or a
 * link (a != b, both < n_nodes) with the defaults; return its index in
 * *at. 0 or QKD_ERR_NOMEM. */
int topo_add_node(struct qkd_topology *t, const char *id, size_t *at);
int topo_add_link(struct qkd_topology *t, size_t a, size_t b, size_t *at);
int topo_add_sae(struct qkd_topology *t, size_t node, const char *sae);
void topo_link_defaults(struct qkd_topo_link *l);

/* Keys are byte strings (copied); values size_t. */
struct topo_index {
	struct topo_slot *slot;
	size_t cap, n;
};
void topo_index_init(struct topo_index *x);
void topo_index_cleanup(struct topo_index *x);
/* The value of key, or -1. */
long topo_index_get(const struct topo_index *x, const char *key, size_t len);
/* Insert key (not present) with value. 0 or QKD_ERR_NOMEM. */
int topo_index_put(struct topo_index *x, const char *key, size_t len, size_t value);

#endif
