/* libFuzzer target: the network map's reader and renderer (lib/relay/
 * netmap*.c, qkd/netmap.h, docs/relay.md "Network map"). The input is a
 * node's status JSON.
 *
 * Checks besides not crashing, leaking or reading out of bounds:
 * - a refused input gives no map and a reason;
 * - an accepted one has its edges in strict byte order of (a, b), a < b,
 *   each end a valid node id, the merged state up only for a two-sided
 *   report, the width within [1, 8];
 * - its dot text has exactly one node line per node and one edge line per
 *   edge, no quote inside an id (so nothing the input says can break out
 *   of a dot string), and its length is what qkd_netmap_dot reports.
 */
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/netmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count(const char *s, const char *needle)
{
	size_t n = 0;

	for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void check_map(const struct qkd_netmap *m)
{
	size_t i, len;
	char *dot;

	for (i = 0; i < qkd_netmap_edges(m); i++) {
		const struct qkd_netmap_edge *e = qkd_netmap_edge(m, i), *p;
		double w = qkd_netmap_penwidth(e->available_bits);

		if (strcmp(e->a, e->b) >= 0 || !qkd_lsa_node_id_valid(e->a) ||
		    !qkd_lsa_node_id_valid(e->b) || (e->state == QKD_LSA_UP && e->one_sided) ||
		    !(w >= 1.0 && w <= 8.0))
			abort();
		p = i > 0 ? qkd_netmap_edge(m, i - 1) : NULL;
		if (p != NULL && (strcmp(p->a, e->a) > 0 ||
				  (strcmp(p->a, e->a) == 0 && strcmp(p->b, e->b) >= 0)))
			abort();
	}
	for (i = 0; i < qkd_netmap_nodes(m); i++)
		if (!qkd_lsa_node_id_valid(qkd_netmap_node(m, i, NULL)->origin))
			abort();
	if (qkd_netmap_dot(m, &dot, &len) != QKD_OK)
		return;	/* out of memory only */
	if (strlen(dot) != len || count(dot, "\" [label=") != qkd_netmap_nodes(m) ||
	    count(dot, "\" -- \"") != qkd_netmap_edges(m))
		abort();
	free(dot);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qkd_netmap *m = NULL;
	char why[256];
	int rc;

	if (size > 1 << 16)
		return 0;
	rc = qkd_netmap_parse((const char *)data, size, &m, why, sizeof why);
	if (rc != QKD_OK) {
		if (m != NULL || why[0] == '\0')
			abort();
		return 0;
	}
	check_map(m);
	qkd_netmap_free(m);
	return 0;
}
