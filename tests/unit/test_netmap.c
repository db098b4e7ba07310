/* test_netmap.c - the network map of `qkd netmap` (lib/relay/netmap*.c,
 * qkd/netmap.h, docs/relay.md "Network map").
 *
 * Status JSON is built here from LSAs with jansson, as a node would write
 * it, and read back. The checks: both ends' reports merge by the routing
 * rule (up only when both ends say up, alarmed when either does, the larger
 * QBER, the smaller key), for every pair of states and for a one-sided
 * report; a neighbour without an LSA becomes a node of its own; route paths
 * mark their edges; the width formula; a 64 x 64 grid at the database's
 * bound is read whole and one LSA more is refused; and the refusals: no
 * relay object, not JSON, every field out of its domain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/lsdb.h"
#include "qkd/netmap.h"

static const char *const state_names[] = { "up", "down", "alarmed" };

static json_t *link_json(const char *nb, int state, double qber, uint64_t stored, uint64_t avail)
{
	return json_pack("{s:s, s:s, s:f, s:I, s:I, s:I}", "neighbour", nb, "state",
			 state_names[state], "qber", qber, "stored_bits", (json_int_t)stored,
			 "available_bits", (json_int_t)avail, "rate_bps", (json_int_t)1000);
}

static json_t *lsa_json(const char *origin, json_t *links)
{
	return json_pack("{s:s, s:I, s:[s], s:o}", "origin", origin, "seq", (json_int_t)1,
			 "saes", "SAE_X", "links", links);
}

/* A status object around lsdb (stolen) and routes (stolen, may be NULL). */
static char *status_text(json_t *lsdb, json_t *routes)
{
	json_t *relay = json_pack("{s:s, s:o}", "self", "A", "lsdb", lsdb), *root;
	char *s;

	if (routes != NULL)
		json_object_set_new(relay, "routes", routes);
	root = json_pack("{s:s, s:[], s:o}", "node", "A", "links", "relay", relay);
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	assert_non_null(s);
	return s;
}

static struct qkd_netmap *parse_ok(const char *text)
{
	struct qkd_netmap *m = NULL;
	char why[256];

	assert_int_equal(qkd_netmap_parse(text, strlen(text), &m, why, sizeof why), QKD_OK);
	assert_non_null(m);
	return m;
}

/* A-B reported by A in state sa and by B in state sb (-1: B has no LSA
 * entry for it). Returns the merged edge's state and checks the numbers. */
static int merged_state(int sa, int sb, bool *one_sided)
{
	json_t *lsdb = json_array();
	struct qkd_netmap *m;
	const struct qkd_netmap_edge *e;
	char *text;
	int st;

	json_array_append_new(lsdb, lsa_json("A", json_pack("[o]", link_json("B", sa, 0.02, 900, 800))));
	json_array_append_new(lsdb, lsa_json("B", sb < 0 ? json_array()
				  : json_pack("[o]", link_json("A", sb, 0.05, 600, 500))));
	text = status_text(lsdb, NULL);
	m = parse_ok(text);
	assert_int_equal(qkd_netmap_edges(m), 1);
	assert_int_equal(qkd_netmap_nodes(m), 2);
	e = qkd_netmap_edge(m, 0);
	assert_string_equal(e->a, "A");
	assert_string_equal(e->b, "B");
	assert_true(fabs(e->qber - (sb < 0 ? 0.02 : 0.05)) < 1e-12);
	assert_int_equal(e->available_bits, sb < 0 ? 800 : 500);
	assert_null(qkd_netmap_edge(m, 1));
	st = e->state;
	*one_sided = e->one_sided;
	qkd_netmap_free(m);
	free(text);
	return st;
}

static void test_merge_rules(void **state)
{
	bool one;

	(void)state;
	for (int sa = 0; sa < 3; sa++)
		for (int sb = 0; sb < 3; sb++) {
			int want = (sa == QKD_LSA_ALARMED || sb == QKD_LSA_ALARMED) ? QKD_LSA_ALARMED
				   : (sa == QKD_LSA_UP && sb == QKD_LSA_UP) ? QKD_LSA_UP : QKD_LSA_DOWN;

			assert_int_equal(merged_state(sa, sb, &one), want);
			assert_false(one);
		}
	/* One end only: never up (the far end has not confirmed it). */
	assert_int_equal(merged_state(QKD_LSA_UP, -1, &one), QKD_LSA_DOWN);
	assert_true(one);
	assert_int_equal(merged_state(QKD_LSA_ALARMED, -1, &one), QKD_LSA_ALARMED);
	assert_int_equal(merged_state(QKD_LSA_DOWN, -1, &one), QKD_LSA_DOWN);
}

/* A ring A-B-C-D-A where D has no LSA; the route A-B-C marks A-B and B-C. */
static void test_bare_node_and_routes(void **state)
{
	json_t *lsdb = json_array();
	struct qkd_netmap *m;
	const struct qkd_lsa *n;
	bool lsa;
	char *text, *dot;
	size_t len;

	(void)state;
	json_array_append_new(lsdb, lsa_json("C", json_pack("[o,o]", link_json("B", 0, 0.01, 9, 9),
							    link_json("D", 0, 0.01, 9, 9))));
	json_array_append_new(lsdb, lsa_json("A", json_pack("[o,o]", link_json("B", 0, 0.01, 9, 9),
							    link_json("D", 0, 0.01, 9, 9))));
	json_array_append_new(lsdb, lsa_json("B", json_pack("[o,o]", link_json("A", 0, 0.01, 9, 9),
							    link_json("C", 0, 0.01, 9, 9))));
	text = status_text(lsdb, json_pack("[{s:[s,s,s]}, {s:[s,s]}]", "path", "A", "B", "C",
					    "path", "A", "Q"));
	m = parse_ok(text);
	assert_string_equal(qkd_netmap_self(m), "A");
	assert_int_equal(qkd_netmap_nodes(m), 4);
	n = qkd_netmap_node(m, 0, &lsa);
	assert_string_equal(n->origin, "A");
	assert_true(lsa);
	assert_int_equal(n->n_saes, 1);
	n = qkd_netmap_node(m, 3, &lsa);
	assert_string_equal(n->origin, "D");
	assert_false(lsa);
	assert_null(qkd_netmap_node(m, 4, &lsa));
	assert_int_equal(qkd_netmap_edges(m), 4);	/* A-B, A-D, B-C, C-D */
	assert_string_equal(qkd_netmap_edge(m, 1)->b, "D");
	assert_true(qkd_netmap_edge(m, 0)->routed);
	assert_false(qkd_netmap_edge(m, 1)->routed);
	assert_true(qkd_netmap_edge(m, 2)->routed);
	assert_false(qkd_netmap_edge(m, 3)->routed);
	assert_true(qkd_netmap_edge(m, 1)->one_sided);
	assert_int_equal(qkd_netmap_edge(m, 0)->state, QKD_LSA_UP);
	assert_int_equal(qkd_netmap_dot(m, &dot, &len), QKD_OK);
	assert_int_equal(strlen(dot), len);
	assert_non_null(strstr(dot, "\"D\" [label=\"D\\n(no LSA)\""));
	assert_non_null(strstr(dot, "\"A\" -- \"B\" [color=\"darkgreen\", style=\"bold\""));
	assert_non_null(strstr(dot, "\"A\" -- \"D\" [color=\"grey\", style=\"dashed\""));
	free(dot);
	qkd_netmap_free(m);
	free(text);
}

static void test_penwidth(void **state)
{
	(void)state;
	assert_true(fabs(qkd_netmap_penwidth(0) - 1.0) < 1e-12);
	assert_true(fabs(qkd_netmap_penwidth(65536) - 2.0) < 1e-12);
	assert_true(fabs(qkd_netmap_penwidth(3 * 65536) - 3.0) < 1e-12);
	assert_true(fabs(qkd_netmap_penwidth(127 * 65536ull) - 8.0) < 1e-12);
	assert_true(fabs(qkd_netmap_penwidth(UINT64_MAX) - 8.0) < 1e-12);
	assert_true(qkd_netmap_penwidth(1000000) > qkd_netmap_penwidth(100000));
}

/* A side x side grid: nodes "r.c", links to the right and down. */
static json_t *grid(int side, int extra)
{
	json_t *lsdb = json_array();
	char id[32], nb[32];

	for (int r = 0; r < side; r++)
		for (int c = 0; c < side; c++) {
			json_t *links = json_array();
			const int dr[4] = { 0, 0, 1, -1 }, dc[4] = { 1, -1, 0, 0 };

			for (int k = 0; k < 4; k++) {
				int rr = r + dr[k], cc = c + dc[k];

				if (rr < 0 || cc < 0 || rr >= side || cc >= side)
					continue;
				snprintf(nb, sizeof nb, "n%d.%d", rr, cc);
				json_array_append_new(links, link_json(nb, 0, 0.01, 1 << 20, 1 << 19));
			}
			snprintf(id, sizeof id, "n%d.%d", r, c);
			json_array_append_new(lsdb, lsa_json(id, links));
		}
	for (int i = 0; i < extra; i++) {
		snprintf(id, sizeof id, "x%d", i);
		json_array_append_new(lsdb, lsa_json(id, json_array()));
	}
	return lsdb;
}

static void test_grid_at_bound(void **state)
{
	struct qkd_netmap *m = NULL;
	char *text, why[256], *dot;
	size_t len;

	(void)state;
	text = status_text(grid(64, 0), NULL);
	m = parse_ok(text);
	assert_int_equal(qkd_netmap_nodes(m), QKD_LSDB_NODES_MAX);
	assert_int_equal(qkd_netmap_edges(m), 2 * 64 * 63);
	for (size_t i = 0; i < qkd_netmap_edges(m); i++) {
		assert_int_equal(qkd_netmap_edge(m, i)->state, QKD_LSA_UP);
		assert_false(qkd_netmap_edge(m, i)->one_sided);
	}
	assert_int_equal(qkd_netmap_dot(m, &dot, &len), QKD_OK);
	assert_true(len > 100000);
	free(dot);
	qkd_netmap_free(m);
	free(text);
	text = status_text(grid(64, 1), NULL);
	assert_int_equal(qkd_netmap_parse(text, strlen(text), &m, why, sizeof why), QKD_ERR_RANGE);
	assert_null(m);
	assert_non_null(strstr(why, "more than 4096 LSAs"));
	free(text);
}

/* text must be refused with code want and a why that contains why_part. */
static void refused(const char *text, int want, const char *why_part)
{
	struct qkd_netmap *m = (struct qkd_netmap *)1;
	char why[256];

	assert_int_equal(qkd_netmap_parse(text, strlen(text), &m, why, sizeof why), want);
	assert_null(m);
	if (strstr(why, why_part) == NULL)
		fail_msg("why '%s' does not name '%s'", why, why_part);
}

static void test_refusals(void **state)
{
	static const char *const link_ok =
		"{\"neighbour\":\"B\",\"state\":\"up\",\"qber\":0.1,\"stored_bits\":5,"
		"\"available_bits\":4,\"rate_bps\":1}";
	static const struct { const char *from, *to, *why; } cases[] = {
		{ "\"state\":\"up\"", "\"state\":\"UP\"", "links[0].state: 'UP' is not up" },
		{ "\"qber\":0.1", "\"qber\":-0.1", "links[0].qber" },
		{ "\"qber\":0.1", "\"qber\":\"0.1\"", "links[0].qber" },
		{ "\"stored_bits\":5", "\"stored_bits\":5.5", "stored_bits: missing or not a whole" },
		{ "\"available_bits\":4", "\"available_bits\":6", "more key available than stored" },
		{ "\"rate_bps\":1", "\"rate_bps\":-1", "rate_bps: missing or not a number" },
		{ "\"neighbour\":\"B\"", "\"neighbour\":\"A\"", "origin 'A'" },
		{ "\"neighbour\":\"B\"", "\"neighbour\":\"B\\u0000x\"", "not JSON: \\u0000 is not allowed" },
		{ "\"origin\":\"A\"", "\"origin\":\".A\"", "origin is not a node id" },
		{ "\"saes\":[\"S\"]", "\"saes\":[\"S/1\"]", "an SAE id is not valid" },
		{ "\"saes\":[\"S\"]", "\"saes\":\"S\"", "saes: missing or not an array" },
		{ "\"seq\":3", "\"seq\":-3", "seq: missing or not a whole number" },
		{ "\"self\":\"A\"", "\"self\":\"A B\"", "relay.self: not a node id" },
		{ "\"routes\":[]", "\"routes\":{}", "relay.routes: not an array" },
		{ "\"routes\":[]", "\"routes\":[{\"path\":[\"A\"]}]", "routes[0].path" },
	};
	char base[512], text[512];

	(void)state;
	snprintf(base, sizeof base, "{\"links\":[],\"relay\":{\"self\":\"A\",\"routes\":[],"
		 "\"lsdb\":[{\"origin\":\"A\",\"seq\":3,\"saes\":[\"S\"],\"links\":[%s]}]}}", link_ok);
	qkd_netmap_free(parse_ok(base));	/* the base itself is good */
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *at = strstr(base, cases[i].from);

		assert_non_null(at);
		snprintf(text, sizeof text, "%.*s%s%s", (int)(at - base), base, cases[i].to,
			 at + strlen(cases[i].from));
		refused(text, QKD_ERR_PROTO, cases[i].why);
	}
	refused("{\"node\":\"A\",\"links\":[]}", QKD_ERR_INVAL, "the node runs no relay service");
	refused("{\"relay\":null}", QKD_ERR_INVAL, "no relay service");
	refused("{\"relay\":[]}", QKD_ERR_PROTO, "relay: not an object");
	refused("{\"relay\":", QKD_ERR_PROTO, "not JSON");
	refused("[]", QKD_ERR_PROTO, "not a status object");
	refused("{\"a\":1,\"a\":2}", QKD_ERR_PROTO, "not JSON");
	refused("", QKD_ERR_PROTO, "not JSON");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_rules),
		cmocka_unit_test(test_bare_node_and_routes),
		cmocka_unit_test(test_penwidth),
		cmocka_unit_test(test_grid_at_bound),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
