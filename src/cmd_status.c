/* qkd status - ask a running `qkd node` how its links are doing. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "status_client.h"

static void help(void)
{
	printf("usage: qkd status --node SOCKET [--json]\n\n"
	       "Show each link of the node whose status socket is SOCKET (the `status`\n"
	       "path of its config): state, QBER, key rate, stored bits, authentication\n"
	       "key left, and whether eavesdropping is suspected.\n");
}

/* "QBER 1.140 %, ", naming the sample when the last round aborted on it
 * (docs/node.md), or "QBER -, " before any round measured one. */
static void print_qber(json_t *l)
{
	json_t *q = json_object_get(l, "qber");
	const char *src = json_string_value(json_object_get(l, "qber_source"));

	if (!json_is_number(q)) {
		printf("    QBER -, ");
		return;
	}
	printf("    QBER %.3f %%%s, ", 100 * json_number_value(q),
	       src != NULL && strcmp(src, "sample") == 0 ? " (sample)" : "");
}

/* The relay's view: neighbours, routes, and the database in brief. */
static void print_relay(json_t *r)
{
	json_t *v;
	size_t i;

	printf("  relay (docs/relay.md):\n");
	json_array_foreach(json_object_get(r, "neighbours"), i, v)
		printf("    neighbour %s: %s, QBER %.4f, %lld bits available, %lld bit/s\n",
		       json_string_value(json_object_get(v, "id")),
		       !json_is_true(json_object_get(v, "up")) ? "down"
		       : json_is_true(json_object_get(v, "alarmed")) ? "ALARMED" : "up",
		       json_real_value(json_object_get(v, "qber")),
		       json_integer_value(json_object_get(v, "available_bits")),
		       json_integer_value(json_object_get(v, "rate_bps")));
	json_array_foreach(json_object_get(r, "routes"), i, v) {
		json_t *hop;
		size_t k;

		printf("    route to %s via %s, cost %.2f:", json_string_value(json_object_get(v, "dest")),
		       json_string_value(json_object_get(v, "next_hop")),
		       json_real_value(json_object_get(v, "cost")));
		json_array_foreach(json_object_get(v, "path"), k, hop)
			printf("%s%s", k == 0 ? " " : " > ", json_string_value(hop));
		printf("\n");
	}
	json_array_foreach(json_object_get(r, "lsdb"), i, v) {
		json_t *l, *sae;
		size_t k, up = 0;

		json_array_foreach(json_object_get(v, "links"), k, l)
			up += strcmp(json_string_value(json_object_get(l, "state")), "up") == 0;
		printf("    node %s: LSA seq %lld, %zu of %zu links up, SAEs",
		       json_string_value(json_object_get(v, "origin")),
		       json_integer_value(json_object_get(v, "seq")), up,
		       json_array_size(json_object_get(v, "links")));
		json_array_foreach(json_object_get(v, "saes"), k, sae)
			printf(" %s", json_string_value(sae));
		printf("%s\n", json_array_size(json_object_get(v, "saes")) == 0 ? " none" : "");
	}
}

static void print_human(json_t *j)
{
	size_t i;
	json_t *l;

	printf("node %s (id %s)\n", json_string_value(json_object_get(j, "node")),
	       json_is_string(json_object_get(j, "id")) ? json_string_value(json_object_get(j, "id"))
							 : "-");
	if (json_is_string(json_object_get(j, "kme_listen")))
		printf("  key manager on https://%s\n",
		       json_string_value(json_object_get(j, "kme_listen")));
	json_array_foreach(json_object_get(j, "links"), i, l) {
		json_t *err = json_object_get(l, "last_error");

		printf("  link %s (%s): %s\n", json_string_value(json_object_get(l, "name")),
		       json_string_value(json_object_get(l, "role")),
		       json_string_value(json_object_get(l, "state")));
		if (json_is_string(json_object_get(l, "peer_id")))
			printf("    far end: node %s\n",
			       json_string_value(json_object_get(l, "peer_id")));
		if (json_is_string(json_object_get(l, "classical")) &&
		    json_is_string(json_object_get(l, "fiber")))
			printf("    classical %s, fiber %s\n",
			       json_string_value(json_object_get(l, "classical")),
			       json_string_value(json_object_get(l, "fiber")));
		print_qber(l);
		printf("key rate %.1f bit/s, %lld blocks, %lld bits stored "
		       "(%lld available)\n", json_real_value(json_object_get(l, "key_rate_bps")),
		       json_integer_value(json_object_get(l, "stored_blocks")),
		       json_integer_value(json_object_get(l, "stored_bits")),
		       json_integer_value(json_object_get(l, "available_bits")));
		printf("    authentication key: %lld bits left, %lld spent, %lld tags failed; "
		       "last round %lld bits of %lld\n",
		       json_integer_value(json_object_get(l, "auth_bits_left")),
		       json_integer_value(json_object_get(l, "auth_bits_spent")),
		       json_integer_value(json_object_get(l, "tags_failed")),
		       json_integer_value(json_object_get(l, "last_round_auth_bits")),
		       json_integer_value(json_object_get(l, "last_round_key_bits")));
		printf("    rounds: %lld with key, %lld without, %lld failed, %lld over the QBER threshold\n",
		       json_integer_value(json_object_get(l, "rounds_ok")),
		       json_integer_value(json_object_get(l, "rounds_empty")),
		       json_integer_value(json_object_get(l, "rounds_failed")),
		       json_integer_value(json_object_get(l, "rounds_qber_abort")));
		printf("    key manager: %lld bits in this end's half; keys: %lld awaiting the peer, "
		       "%lld ready, %lld delivered, %lld refused\n",
		       json_integer_value(json_object_get(l, "kme_available_bits")),
		       json_integer_value(json_object_get(l, "kme_outbox")),
		       json_integer_value(json_object_get(l, "kme_ready")),
		       json_integer_value(json_object_get(l, "kme_delivered")),
		       json_integer_value(json_object_get(l, "kme_refused")));
		printf("    key lifecycle: %lld expired, %lld withdrawn, %lld abandoned; "
		       "%lld bits lost; %lld tombstones pruned\n",
		       json_integer_value(json_object_get(l, "kme_expired")),
		       json_integer_value(json_object_get(l, "kme_withdrawn")),
		       json_integer_value(json_object_get(l, "kme_abandoned")),
		       json_integer_value(json_object_get(l, "kme_lost_bits")),
		       json_integer_value(json_object_get(l, "kme_pruned")));
		if (json_is_true(json_object_get(l, "auth_low")))
			printf("    AUTHENTICATION KEY LOW: rounds spend more on tags than they refill\n");
		if (json_is_true(json_object_get(l, "eavesdropping_suspected")))
			printf("    EAVESDROPPING SUSPECTED: the QBER stays above the abort threshold\n");
		if (json_is_true(json_object_get(l, "auth_exhausted")))
			printf("    AUTHENTICATION KEY EXHAUSTED: the link is down\n");
		if (json_is_true(json_object_get(l, "disk_fault")))
			printf("    DISK FAULT: the link is paused until its store can be written\n");
		if (json_integer_value(json_object_get(l, "blocks_quarantined")) > 0)
			printf("    QUARANTINED: %lld stored block(s) failed their digests\n",
			       json_integer_value(json_object_get(l, "blocks_quarantined")));
		if (json_integer_value(json_object_get(l, "strangers_refused")) > 0)
			printf("    %lld connection(s) refused at the handshake\n",
			       json_integer_value(json_object_get(l, "strangers_refused")));
		if (json_integer_value(json_object_get(l, "service_unknown")) > 0)
			printf("    %lld service message(s) of an unknown service or type dropped "
			       "(a newer peer?)\n",
			       json_integer_value(json_object_get(l, "service_unknown")));
		if (json_is_string(err))
			printf("    last error: %s\n", json_string_value(err));
	}
	if (json_is_object(json_object_get(j, "relay")))
		print_relay(json_object_get(j, "relay"));
}

int cmd_status(int argc, char **argv)
{
	const char *node = NULL;
	bool as_json = false;
	char why[256];
	size_t len;
	json_t *j;
	char *reply;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			help();
			return CLI_EXIT_OK;
		} else if (strcmp(argv[i], "--json") == 0) {
			as_json = true;
		} else if (strcmp(argv[i], "--node") == 0 && i + 1 < argc) {
			node = argv[++i];
		} else {
			cli_errorf("status", "unknown or incomplete argument '%s'", argv[i]);
			return CLI_EXIT_USAGE;
		}
	}
	if (node == NULL) {
		cli_error("status", "--node SOCKET is required");
		return CLI_EXIT_USAGE;
	}
	reply = status_client_ask(node, &len, why, sizeof why);
	if (reply == NULL) {
		cli_error(node, why);
		return CLI_EXIT_FAIL;
	}
	j = json_loadb(reply, len, 0, NULL);
	if (j == NULL || !json_is_array(json_object_get(j, "links"))) {
		cli_error(node, "the node's answer is not a status object");
		free(reply);
		json_decref(j);
		return CLI_EXIT_FAIL;
	}
	if (as_json)
		printf("%s", reply);
	else
		print_human(j);
	json_decref(j);
	free(reply);
	return CLI_EXIT_OK;
}
