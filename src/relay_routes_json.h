/* relay_routes_json.h - a relay agent's route table as JSON, the schema of
 * `qkd status --json` relay.routes (docs/relay.md "Status"), shared by the
 * status (src/node_status_relay.c) and `qkd netsim --routes`
 * (src/netsim_routes.c) so the two compare field by field. */
#ifndef QKD_RELAY_ROUTES_JSON_H
#define QKD_RELAY_ROUTES_JSON_H

#include <jansson.h>

#include "qkd/route.h"

/* An array of {dest, next_hop, cost, hops, path} in destination order;
 * NULL when out of memory. */
json_t *relay_routes_json(const struct qkd_routes *rts);

#endif
