/* netsim_routes.c - route tables of simulated nodes at given times
 * (src/netsim_routes.h), in the JSON of `qkd status --json`'s relay.routes
 * (src/relay_routes_json.h), so a script compares a real node with its
 * simulated twin field by field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "netsim_routes.h"
#include "relay_routes_json.h"

int netsim_probe_parse(const struct qkd_topology *t, const char *spec, struct netsim_probe *out)
{
	const char *at = strrchr(spec, '@');
	char id[QKD_NODE_NAME_MAX];
	long node;

	memset(out, 0, sizeof *out);
	if (at == NULL || at == spec || (size_t)(at - spec) >= sizeof id) {
		cli_errorf("--routes", "expected NODE@T: '%s'", spec);
		return -1;
	}
	memcpy(id, spec, (size_t)(at - spec));
	id[at - spec] = '\0';
	node = qkd_topology_find(t, id);
	if (node < 0) {
		cli_errorf("--routes", "no node '%s' in the topology", id);
		return -1;
	}
	out->node = (size_t)node;
	return cli_opt_real("--routes", at + 1, 0, false, 1e6, &out->t);
}

json_t *netsim_probes_json(const struct qkd_topology *t, const struct netsim_probe *p, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < n; i++)
		if (json_array_append_new(a, json_pack("{s:s, s:f, s:O}", "node",
						       t->nodes[p[i].node].id, "t", p[i].t,
						       "routes", p[i].routes)) != 0) {
			json_decref(a);
			a = NULL;
		}
	return a;
}

int netsim_probes_human(const struct qkd_topology *t, const struct netsim_probe *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t k;
		json_t *r;

		printf("\nroutes of %s at %.3f s:\n", t->nodes[p[i].node].id, p[i].t);
		if (json_array_size(p[i].routes) == 0)
			printf("  (none)\n");
		json_array_foreach(p[i].routes, k, r) {
			size_t h;
			json_t *id;

			printf("  %-16s cost %8.3f  ", json_string_value(json_object_get(r, "dest")),
			       json_real_value(json_object_get(r, "cost")));
			json_array_foreach(json_object_get(r, "path"), h, id)
				printf("%s%s", h ? " " : "", json_string_value(id));
			printf("\n");
		}
	}
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -1;
}
