/* netsim_routes.h - `qkd netsim --routes NODE@T`: a node's route table at a
 * simulated time (docs/netsim.md "Route tables"), to set beside a real
 * node's `qkd status` routes. */
#ifndef QKD_NETSIM_ROUTES_H
#define QKD_NETSIM_ROUTES_H

#include <jansson.h>
#include <stddef.h>

#include "qkd/relay.h"
#include "qkd/topology.h"

#define NETSIM_PROBES_MAX 64	/* --routes given at most this often */

struct netsim_probe {
	size_t node;		/* topology index */
	double t;		/* simulated seconds */
	json_t *routes;		/* captured at t; owned */
};

/* "NODE@T" against topology t: 0, or -1 after printing the error. */
int netsim_probe_parse(const struct qkd_topology *t, const char *spec, struct netsim_probe *out);

/* The probes for the JSON report ({node, t, routes}), or NULL out of memory. */
json_t *netsim_probes_json(const struct qkd_topology *t, const struct netsim_probe *p, size_t n);

/* The probes as text on stdout; 0, or -1 when stdout could not be written. */
int netsim_probes_human(const struct qkd_topology *t, const struct netsim_probe *p, size_t n);

#endif
