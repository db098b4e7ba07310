/* node_status_relay.c - the "relay" object of `qkd status --json`: the
 * node's neighbours, its link-state database and its routes, read from
 * the node's relay agent under its lock (qkd_node_relay_view). The schema
 * is documented in docs/relay.md "Status"; `qkd netmap` draws it. */
#include <jansson.h>

#include "node_status.h"
#include "relay_routes_json.h"

#include "qkd/relay.h"

static const char *state_name(uint8_t s)
{
	return s == QKD_LSA_UP ? "up" : s == QKD_LSA_ALARMED ? "alarmed" : "down";
}

static json_t *lsa_json(const struct qkd_lsa *lsa)
{
	json_t *o = json_object(), *links = json_array(), *saes = json_array();

	for (size_t i = 0; i < lsa->n_links; i++) {
		const struct qkd_lsa_link *l = &lsa->links[i];

		json_array_append_new(links,
			json_pack("{s:s, s:s, s:f, s:I, s:I, s:I}", "neighbour", l->neighbour, "state",
				  state_name(l->state), "qber", l->qber, "stored_bits",
				  (json_int_t)l->stored_bits, "available_bits",
				  (json_int_t)l->available_bits, "rate_bps", (json_int_t)l->rate_bps));
	}
	for (size_t i = 0; i < lsa->n_saes; i++)
		json_array_append_new(saes, json_string(lsa->saes[i]));
	json_object_set_new(o, "origin", json_string(lsa->origin));
	json_object_set_new(o, "seq", json_integer((json_int_t)lsa->seq));
	json_object_set_new(o, "saes", saes);
	json_object_set_new(o, "links", links);
	return o;
}

static json_t *stats_json(const struct qkd_relay_stats *s)
{
	json_t *o = json_object();

#define STAT(f) json_object_set_new(o, #f, json_integer((json_int_t)s->f))
	STAT(lsa_originated);
	STAT(lsa_received);
	STAT(lsa_refused);
	STAT(route_changes);
	STAT(relays_started);
	STAT(relays_completed);
	STAT(relays_failed);
	STAT(relays_two_paths);
	STAT(reroutes);
	STAT(shares_forwarded);
	STAT(keys_delivered);
	STAT(pad_bits);
	STAT(refused);
	STAT(withdrawals_sent);
	STAT(withdrawals_received);
#undef STAT
	return o;
}

static void relay_fill(void *ctx, const struct qkd_relay *r)
{
	json_t *o = ctx, *nbs = json_array(), *db = json_array();
	const struct qkd_lsdb *lsdb = qkd_relay_lsdb(r);
	struct qkd_relay_stats st;

	for (size_t i = 0; i < qkd_relay_neighbour_count(r); i++) {
		struct qkd_relay_neighbour nb;

		qkd_relay_neighbour_at(r, i, &nb);
		json_array_append_new(nbs,
			json_pack("{s:s, s:b, s:b, s:f, s:I, s:I, s:I}", "id", nb.id, "up", nb.up,
				  "alarmed", nb.alarmed, "qber", nb.qber, "stored_bits",
				  (json_int_t)nb.stored_bits, "available_bits",
				  (json_int_t)nb.available_bits, "rate_bps", (json_int_t)nb.rate_bps));
	}
	for (size_t i = 0; i < qkd_lsdb_count(lsdb); i++)
		json_array_append_new(db, lsa_json(qkd_lsdb_at(lsdb, i)));
	qkd_relay_get_stats(r, &st);
	json_object_set_new(o, "neighbours", nbs);
	json_object_set_new(o, "lsdb", db);
	json_object_set_new(o, "routes", relay_routes_json(qkd_relay_routes(r)));
	json_object_set_new(o, "stats", stats_json(&st));
}

json_t *node_status_relay_json(struct node_daemon *d)
{
	json_t *o = json_object();

	json_object_set_new(o, "self", json_string(d->cfg.id));
	if (!qkd_node_relay_view(d->node, relay_fill, o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}
