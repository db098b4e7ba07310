/* node_relay.h - private to lib/node: the node's relay agent (qkd/relay.h)
 * on its links' services (node_relay.c). */
#ifndef QKD_NODE_RELAY_H
#define QKD_NODE_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "qkd/relay.h"
#include "../kme/node_kme_int.h"
#include "node_int.h"

struct node_relay;

/* The agent for cfg's node over links[0 .. nlinks) (borrowed, must outlive
 * it), its service registered on each link's multiplexer (before the link
 * threads start), and its own store handle per link for the pads. A link
 * without a `peer` has no neighbour to name and is left out, and so is a
 * second link to the same peer (one link per neighbour). *why on error. */
int node_relay_new(struct node_relay **out, const struct qkd_node_config *cfg,
		   struct qkd_link_ctx *links, size_t nlinks, const struct qkd_logger *log,
		   const char **why);
void node_relay_free(struct node_relay *nr);

/* The key manager's hooks into the relay (enc_keys, dec_keys and status
 * for SAEs of non-adjacent nodes). */
void node_relay_kme_hooks(struct node_relay *nr, struct node_kme_relay *out);

/* Call fn with the agent under the relay's lock (read only: the lsdb,
 * routes, neighbours and counters); any thread. */
void node_relay_view(struct node_relay *nr, void (*fn)(void *ctx, const struct qkd_relay *r),
		     void *ctx);

#endif
