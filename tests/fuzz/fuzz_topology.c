/* libFuzzer target: the topology file parser (lib/relay/topology_parse.c,
 * qkd/topology.h, docs/netsim.md "The topology file"). The input is a file.
 *
 * Checks besides not crashing, leaking or reading out of bounds:
 * - a refused input gives no topology, a reason and a line within the
 *   input's lines;
 * - what parses holds only valid ids, no repeated node, SAE or pair, at
 *   most 32 links at a node, and formats to text that parses to the same
 *   counts and formats to the very same text again.
 */
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/topology.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct qkd_topology *t)
{
	for (size_t i = 0; i < t->n_nodes; i++) {
		if (!qkd_lsa_node_id_valid(t->nodes[i].id) || t->nodes[i].n_links > QKD_LSA_LINKS_MAX)
			abort();
		for (size_t k = 0; k < i; k++)
			if (strcmp(t->nodes[i].id, t->nodes[k].id) == 0)
				abort();
	}
	for (size_t i = 0; i < t->n_links; i++) {
		const struct qkd_topo_link *l = &t->links[i];

		if (l->a == l->b || l->a >= t->n_nodes || l->b >= t->n_nodes)
			abort();
		for (size_t k = 0; k < i; k++)
			if ((t->links[k].a == l->a && t->links[k].b == l->b) ||
			    (t->links[k].a == l->b && t->links[k].b == l->a))
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qkd_topology *t = NULL, *u = NULL;
	size_t line = 0, lines = 1, n1, n2;
	const char *why = NULL;
	char *s1 = NULL, *s2 = NULL;

	if (size > 65536)
		return 0;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (qkd_topology_parse((const char *)data, size, &t, &line, &why) != QKD_OK) {
		if (t != NULL || why == NULL || line == 0 || line > lines)
			abort();
		return 0;
	}
	check(t);
	if (qkd_topology_format(t, &s1, &n1) != QKD_OK ||
	    qkd_topology_parse(s1, n1, &u, &line, &why) != QKD_OK ||
	    u->n_nodes != t->n_nodes || u->n_links != t->n_links ||
	    qkd_topology_format(u, &s2, &n2) != QKD_OK || n1 != n2 || memcmp(s1, s2, n1) != 0)
		abort();
	free(s1);
	free(s2);
	qkd_topology_free(u);
	qkd_topology_free(t);
	return 0;
}
