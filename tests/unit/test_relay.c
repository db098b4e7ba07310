/* test_relay.c - the link-state core of the relay network (lib/relay/:
 * qkd/lsa.h, qkd/lsdb.h, qkd/route.h; docs/relay.md).
 *
 * The topologies are built here as LSAs, one per node, from an edge list:
 * a 6-node mesh with a cycle and chords, and the 10-node two-ring network
 * (two 5-rings joined by two links). The checks: next hops that follow key,
 * not hop count; every route's cost equal to an independent Floyd-Warshall
 * over the same metric, from every node, and every path made of usable
 * links; a drained link moves routes; a down, alarmed, out-of-key or
 * one-sided link carries none; hysteresis holds a path against a small
 * change (and the same change moves it with no margin) but not a large one
 * or a broken link; the database refuses old and equal sequences, bounds
 * its size, queues what to flood, removes; the SAE map; the LSA codec
 * round-trips and refuses truncated, over-long, over-bound and invalid
 * messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qkd/error.h"
#include "qkd/lsa.h"
#include "qkd/lsdb.h"
#include "qkd/route.h"
#include "qkd/wire.h"

#define NODES_MAX 10
#define BIG 1000000ULL	/* available bits of a full link: cost ~2 with K = 1e6 */

struct edge {
	const char *a, *b;
	uint64_t avail;
};

struct net {
	size_t n;
	struct qkd_lsa lsa[NODES_MAX];
	struct qkd_lsdb *db;
};

/* 6-node mesh: the cycle a-b-c-d-f-e-a with the chord b-e. The a-e link
 * holds little key (cost 6), so from a even e is reached through b. */
static const struct edge mesh6[] = {
	{ "a", "b", BIG }, { "b", "c", BIG }, { "c", "d", BIG }, { "d", "f", BIG },
	{ "f", "e", BIG }, { "e", "a", 200000 }, { "b", "e", BIG },
};

static const char *const mesh6_nodes[] = { "a", "b", "c", "d", "e", "f" };

static struct qkd_lsa *net_lsa(struct net *nt, const char *id)
{
	for (size_t i = 0; i < nt->n; i++)
		if (strcmp(nt->lsa[i].origin, id) == 0)
			return &nt->lsa[i];
	fail_msg("no node %s", id);
	return NULL;
}

static struct qkd_lsa_link *net_link(struct net *nt, const char *from, const char *to)
{
	struct qkd_lsa *l = net_lsa(nt, from);

	for (size_t i = 0; i < l->n_links; i++)
		if (strcmp(l->links[i].neighbour, to) == 0)
			return &l->links[i];
	fail_msg("no link %s-%s", from, to);
	return NULL;
}

static void add_end(struct net *nt, const char *from, const char *to, uint64_t avail)
{
	struct qkd_lsa *l = net_lsa(nt, from);
	struct qkd_lsa_link *k = &l->links[l->n_links++];

	snprintf(k->neighbour, sizeof k->neighbour, "%s", to);
	k->state = QKD_LSA_UP;
	k->qber = 0.02;
	k->stored_bits = avail + 1000;
	k->available_bits = avail;
	k->rate_bps = 5000;
}

static void install_all(struct net *nt)
{
	const char *why;

	for (size_t i = 0; i < nt->n; i++) {
		nt->lsa[i].seq++;
		assert_int_equal(qkd_lsdb_install(nt->db, &nt->lsa[i], &why), QKD_OK);
	}
}

static void net_build(struct net *nt, const char *const *nodes, size_t n,
		      const struct edge *e, size_t ne)
{
	memset(nt, 0, sizeof *nt);
	nt->n = n;
	for (size_t i = 0; i < n; i++) {
		snprintf(nt->lsa[i].origin, sizeof nt->lsa[i].origin, "%s", nodes[i]);
		nt->lsa[i].n_saes = 1;
		snprintf(nt->lsa[i].saes[0], sizeof nt->lsa[i].saes[0], "sae-%s", nodes[i]);
	}
	for (size_t i = 0; i < ne; i++) {
		add_end(nt, e[i].a, e[i].b, e[i].avail);
		add_end(nt, e[i].b, e[i].a, e[i].avail);
	}
	assert_int_equal(qkd_lsdb_new(QKD_LSDB_NODES_MAX, &nt->db), QKD_OK);
	install_all(nt);
}

/* Both ends' reports of a link changed alike, then re-flooded. */
static void set_avail(struct net *nt, const char *a, const char *b, uint64_t avail)
{
	net_link(nt, a, b)->available_bits = avail;
	net_link(nt, a, b)->stored_bits = avail + 1000;
	net_link(nt, b, a)->available_bits = avail;
	net_link(nt, b, a)->stored_bits = avail + 1000;
}

static struct qkd_routes *routes_for(struct net *nt, const char *self, double margin)
{
	struct qkd_route_params p;
	struct qkd_routes *rt;

	qkd_route_params_default(&p);
	p.margin = margin;
	assert_int_equal(qkd_routes_new(self, &p, &rt), QKD_OK);
	assert_int_equal(qkd_routes_compute(rt, nt->db, NULL), QKD_OK);
	return rt;
}

static const char *hop(const struct qkd_routes *rt, const char *dest)
{
	const struct qkd_route *r = qkd_routes_get(rt, dest);

	return r != NULL ? r->next_hop : "(none)";
}

static bool path_uses(const struct qkd_route *r, const char *u, const char *v)
{
	for (size_t i = 0; i < r->hops; i++)
		if ((strcmp(r->path[i], u) == 0 && strcmp(r->path[i + 1], v) == 0) ||
		    (strcmp(r->path[i], v) == 0 && strcmp(r->path[i + 1], u) == 0))
			return true;
	return false;
}

/* An independent reference: the same metric written out from the LSAs and
 * all-pairs Floyd-Warshall. */
static double ref_cost(const struct net *nt, size_t i, size_t j)
{
	const struct qkd_lsa *a = &nt->lsa[i], *b = &nt->lsa[j];
	double worst = -1.0;

	for (size_t k = 0; k < a->n_links; k++)
		for (size_t m = 0; m < b->n_links; m++) {
			const struct qkd_lsa_link *x = &a->links[k], *y = &b->links[m];

			if (strcmp(x->neighbour, b->origin) != 0 || strcmp(y->neighbour, a->origin) != 0)
				continue;
			if (x->state != QKD_LSA_UP || y->state != QKD_LSA_UP ||
			    x->available_bits < 4096 || y->available_bits < 4096)
				return INFINITY;
			worst = fmax(1.0 + 1e6 / (fmin((double)x->available_bits, 1048576.0) + 1.0),
				     1.0 + 1e6 / (fmin((double)y->available_bits, 1048576.0) + 1.0));
		}
	return worst < 0 ? INFINITY : worst;
}

static void check_against_reference(struct net *nt)
{
	double d[NODES_MAX][NODES_MAX];

	for (size_t i = 0; i < nt->n; i++)
		for (size_t j = 0; j < nt->n; j++)
			d[i][j] = i == j ? 0.0 : ref_cost(nt, i, j);
	for (size_t k = 0; k < nt->n; k++)
		for (size_t i = 0; i < nt->n; i++)
			for (size_t j = 0; j < nt->n; j++)
				if (d[i][k] + d[k][j] < d[i][j])
					d[i][j] = d[i][k] + d[k][j];
	for (size_t i = 0; i < nt->n; i++) {
		struct qkd_routes *rt = routes_for(nt, nt->lsa[i].origin, 0.2);
		size_t reach = 0;

		for (size_t j = 0; j < nt->n; j++) {
			const struct qkd_route *r = qkd_routes_get(rt, nt->lsa[j].origin);
			double sum = 0.0;

			if (i == j || isinf(d[i][j])) {
				assert_null(r);
				continue;
			}
			reach++;
			assert_non_null(r);
			assert_true(fabs(r->cost - d[i][j]) < 1e-9);
			assert_string_equal(r->path[0], nt->lsa[i].origin);
			assert_string_equal(r->path[r->hops], nt->lsa[j].origin);
			assert_string_equal(r->next_hop, r->path[1]);
			for (size_t h = 0; h < r->hops; h++) {
				size_t u = (size_t)(net_lsa(nt, r->path[h]) - nt->lsa);
				size_t v = (size_t)(net_lsa(nt, r->path[h + 1]) - nt->lsa);

				sum += ref_cost(nt, u, v);
			}
			assert_true(fabs(sum - r->cost) < 1e-9);
		}
		assert_int_equal(qkd_routes_count(rt), reach);
		qkd_routes_free(rt);
	}
}

static void test_mesh_next_hops(void **state)
{
	struct net nt;
	struct qkd_routes *rt;

	(void)state;
	net_build(&nt, mesh6_nodes, 6, mesh6, sizeof mesh6 / sizeof mesh6[0]);
	rt = routes_for(&nt, "a", 0.2);
	assert_int_equal(qkd_routes_count(rt), 5);
	assert_string_equal(hop(rt, "b"), "b");
	assert_string_equal(hop(rt, "c"), "b");
	assert_string_equal(hop(rt, "d"), "b");
	/* two hops over full pools beat one hop over a drained one */
	assert_string_equal(hop(rt, "e"), "b");
	assert_int_equal(qkd_routes_get(rt, "e")->hops, 2);
	assert_string_equal(hop(rt, "f"), "b");
	assert_null(qkd_routes_get(rt, "a"));
	qkd_routes_free(rt);
	rt = routes_for(&nt, "d", 0.2);
	assert_string_equal(hop(rt, "a"), "c");
	assert_string_equal(hop(rt, "e"), "f");
	qkd_routes_free(rt);
	check_against_reference(&nt);
	qkd_lsdb_free(nt.db);
}

static void test_two_rings(void **state)
{
	static const char *const nodes[] = { "r0", "r1", "r2", "r3", "r4",
					     "s0", "s1", "s2", "s3", "s4" };
	struct edge e[12];
	uint64_t x = 12345;
	struct net nt;
	struct qkd_routes *rt;

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		e[i] = (struct edge){ nodes[i], nodes[(i + 1) % 5], 0 };
		e[5 + i] = (struct edge){ nodes[5 + i], nodes[5 + (i + 1) % 5], 0 };
	}
	e[10] = (struct edge){ "r0", "s0", 0 };
	e[11] = (struct edge){ "r2", "s2", 0 };
	/* pools from a fixed LCG, 1e5..1e6 bits (below full): no ties to
	 * depend on */
	for (size_t i = 0; i < 12; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		e[i].avail = 100000 + (x >> 33) % 900000;
	}
	net_build(&nt, nodes, 10, e, 12);
	check_against_reference(&nt);
	/* every pool full: hop count decides; r4 to s0 goes over the r0 bridge */
	for (size_t i = 0; i < 12; i++)
		set_avail(&nt, e[i].a, e[i].b, BIG);
	install_all(&nt);
	rt = routes_for(&nt, "r4", 0.2);
	assert_string_equal(hop(rt, "s0"), "r0");
	assert_int_equal(qkd_routes_get(rt, "s0")->hops, 2);
	assert_string_equal(hop(rt, "s2"), "r3");
	qkd_routes_free(rt);
	/* one bridge cut: all of the s ring through the other */
	net_link(&nt, "r0", "s0")->state = QKD_LSA_DOWN;
	net_link(&nt, "s0", "r0")->state = QKD_LSA_DOWN;
	install_all(&nt);
	rt = routes_for(&nt, "r4", 0.2);
	for (size_t i = 5; i < 10; i++)
		assert_true(path_uses(qkd_routes_get(rt, nodes[i]), "r2", "s2"));
	qkd_routes_free(rt);
	check_against_reference(&nt);
	qkd_lsdb_free(nt.db);
}

static void test_drained_link_moves(void **state)
{
	struct net nt;
	struct qkd_routes *rt;
	size_t changed = 0;

	(void)state;
	net_build(&nt, mesh6_nodes, 6, mesh6, sizeof mesh6 / sizeof mesh6[0]);
	rt = routes_for(&nt, "a", 0.2);
	assert_string_equal(hop(rt, "c"), "b");
	set_avail(&nt, "a", "b", 5000);		/* cost ~201: drained, not empty */
	install_all(&nt);
	assert_int_equal(qkd_routes_compute(rt, nt.db, &changed), QKD_OK);
	assert_true(changed >= 5);
	assert_string_equal(hop(rt, "b"), "e");
	assert_string_equal(hop(rt, "c"), "e");
	assert_false(path_uses(qkd_routes_get(rt, "d"), "a", "b"));
	assert_true(qkd_routes_get(rt, "b")->cost < 10.0);
	/* refilled: back through b (the new path is far cheaper) */
	set_avail(&nt, "a", "b", BIG);
	install_all(&nt);
	assert_int_equal(qkd_routes_compute(rt, nt.db, &changed), QKD_OK);
	assert_string_equal(hop(rt, "c"), "b");
	qkd_routes_free(rt);
	check_against_reference(&nt);
	qkd_lsdb_free(nt.db);
}

/* Each way a link becomes unusable, applied to b-c as seen from a. */
static void test_unusable_links(void **state)
{
	enum { ALARM_B, DOWN_C_ONLY, OUT_OF_KEY, ONE_SIDED, CASES };
	(void)state;
	for (int cs = 0; cs < CASES; cs++) {
		struct net nt;
		struct qkd_routes *rt;
		struct qkd_lsa *c;

		net_build(&nt, mesh6_nodes, 6, mesh6, sizeof mesh6 / sizeof mesh6[0]);
		rt = routes_for(&nt, "a", 0.2);
		assert_true(path_uses(qkd_routes_get(rt, "c"), "b", "c"));
		if (cs == ALARM_B) {
			net_link(&nt, "b", "c")->state = QKD_LSA_ALARMED;
			net_link(&nt, "b", "c")->qber = 0.2;
		} else if (cs == DOWN_C_ONLY) {
			net_link(&nt, "c", "b")->state = QKD_LSA_DOWN;
		} else if (cs == OUT_OF_KEY) {
			set_avail(&nt, "b", "c", 4095);
		} else {
			c = net_lsa(&nt, "c");
			assert_string_equal(c->links[0].neighbour, "b");
			c->links[0] = c->links[--c->n_links];
		}
		install_all(&nt);
		assert_int_equal(qkd_routes_compute(rt, nt.db, NULL), QKD_OK);
		for (size_t i = 0; i < qkd_routes_count(rt); i++)
			assert_false(path_uses(qkd_routes_at(rt, i), "b", "c"));
		assert_non_null(qkd_routes_get(rt, "c"));	/* still reachable, around */
		qkd_routes_free(rt);
		check_against_reference(&nt);
		qkd_lsdb_free(nt.db);
	}
}

/* From a to d: a-b-c-d (6) against a-e-f-d (7, with a-e full and e-f at
 * half). */
static void hysteresis_case(double margin, bool expect_move)
{
	struct net nt;
	struct qkd_routes *rt;
	size_t changed = 99;

	net_build(&nt, mesh6_nodes, 6, mesh6, sizeof mesh6 / sizeof mesh6[0]);
	set_avail(&nt, "a", "e", BIG);
	set_avail(&nt, "e", "f", 500000);
	install_all(&nt);
	rt = routes_for(&nt, "a", margin);
	assert_string_equal(hop(rt, "d"), "b");
	/* recomputing an unchanged database changes nothing */
	assert_int_equal(qkd_routes_compute(rt, nt.db, &changed), QKD_OK);
	assert_int_equal(changed, 0);
	/* b-c to cost ~4: the held path costs ~8, the other 7 (12 % less) */
	set_avail(&nt, "b", "c", 330000);
	install_all(&nt);
	assert_int_equal(qkd_routes_compute(rt, nt.db, NULL), QKD_OK);
	assert_string_equal(hop(rt, "d"), expect_move ? "e" : "b");
	assert_true(qkd_routes_get(rt, "d")->cost > (expect_move ? 6.9 : 8.0));
	/* b-c to cost 11: the held path 15, the other less than half */
	set_avail(&nt, "b", "c", 100000);
	install_all(&nt);
	assert_int_equal(qkd_routes_compute(rt, nt.db, NULL), QKD_OK);
	assert_string_equal(hop(rt, "d"), "e");
	/* c-d alarmed would not matter now; alarm e-f: the held path broke,
	 * so d moves back at once even though no margin is met */
	net_link(&nt, "f", "e")->state = QKD_LSA_ALARMED;
	install_all(&nt);
	assert_int_equal(qkd_routes_compute(rt, nt.db, NULL), QKD_OK);
	assert_string_equal(hop(rt, "d"), "b");
	qkd_routes_free(rt);
	qkd_lsdb_free(nt.db);
}

static void test_hysteresis(void **state)
{
	(void)state;
	hysteresis_case(0.2, false);
	hysteresis_case(0.0, true);	/* the same change flaps with no margin */
}

/* Full pools cost alike whatever their size, and a held path that costs
 * exactly as much as the best gives way to the tie-break's choice: the
 * square a-b-d, a-c-d from a to d. */
static void test_full_pools_tie_break(void **state)
{
	static const char *const nodes[] = { "a", "b", "c", "d" };
	const struct edge sq[] = {
		{ "a", "b", 500000 }, { "b", "d", 4000000 }, { "a", "c", 2000000 }, { "c", "d", 9000000 },
	};
	struct qkd_route_params p;
	struct qkd_lsa_link l = { .state = QKD_LSA_UP };
	struct qkd_routes *rt, *bad = NULL;
	struct net nt;
	size_t changed = 0;

	(void)state;
	qkd_route_params_default(&p);
	l.available_bits = p.full_bits;
	double full = qkd_route_link_cost(&p, &l);
	l.available_bits = 50 * p.full_bits;
	assert_true(qkd_route_link_cost(&p, &l) == full);
	l.available_bits = p.full_bits - 65536;
	assert_true(qkd_route_link_cost(&p, &l) > full);
	p.full_bits = 0;
	assert_int_equal(qkd_routes_new("a", &p, &bad), QKD_ERR_INVAL);
	assert_null(bad);
	qkd_route_params_default(&p);

	net_build(&nt, nodes, 4, sq, 4);
	rt = routes_for(&nt, "a", 0.2);
	assert_string_equal(hop(rt, "d"), "c");		/* a-b is not full yet */
	set_avail(&nt, "a", "b", 3 * p.full_bits / 2);
	install_all(&nt);
	assert_int_equal(qkd_routes_compute(rt, nt.db, &changed), QKD_OK);
	/* both paths cost 2 full links exactly: b settles first (byte order) */
	assert_string_equal(hop(rt, "d"), "b");
	assert_int_equal(changed, 1);		/* d only: b and c are direct */
	assert_true(qkd_routes_get(rt, "d")->cost == 2.0 * full);
	/* and it stays there as the pools move above full */
	set_avail(&nt, "a", "c", 40 * p.full_bits);
	set_avail(&nt, "a", "b", 2 * p.full_bits);
	install_all(&nt);
	assert_int_equal(qkd_routes_compute(rt, nt.db, &changed), QKD_OK);
	assert_int_equal(changed, 0);
	assert_string_equal(hop(rt, "d"), "b");
	qkd_routes_free(rt);
	check_against_reference(&nt);
	qkd_lsdb_free(nt.db);
}

static void test_no_own_lsa(void **state)
{
	struct net nt;
	struct qkd_routes *rt;
	size_t changed = 0;

	struct qkd_route_params p;
	struct qkd_routes *bad = NULL;

	(void)state;
	qkd_route_params_default(&p);
	assert_int_equal(qkd_routes_new("-a", &p, &bad), QKD_ERR_INVAL);
	p.margin = 1.0;
	assert_int_equal(qkd_routes_new("a", &p, &bad), QKD_ERR_INVAL);
	qkd_route_params_default(&p);
	p.k_bits = 0.0;
	assert_int_equal(qkd_routes_new("a", &p, &bad), QKD_ERR_INVAL);
	assert_null(bad);
	net_build(&nt, mesh6_nodes, 6, mesh6, sizeof mesh6 / sizeof mesh6[0]);
	rt = routes_for(&nt, "a", 0.2);
	assert_int_equal(qkd_routes_count(rt), 5);
	assert_int_equal(qkd_lsdb_remove(nt.db, "c"), QKD_OK);
	assert_int_equal(qkd_routes_compute(rt, nt.db, &changed), QKD_OK);
	assert_null(qkd_routes_get(rt, "c"));
	assert_int_equal(qkd_routes_count(rt), 4);
	assert_int_equal(qkd_lsdb_remove(nt.db, "a"), QKD_OK);
	assert_int_equal(qkd_routes_compute(rt, nt.db, &changed), QKD_OK);
	assert_int_equal(qkd_routes_count(rt), 0);
	assert_int_equal(changed, 4);
	for (size_t i = 0; i < 6; i++)
		(void)qkd_lsdb_remove(nt.db, mesh6_nodes[i]);
	assert_int_equal(qkd_lsdb_count(nt.db), 0);
	assert_int_equal(qkd_routes_compute(rt, nt.db, &changed), QKD_OK);	/* empty */
	assert_int_equal(qkd_routes_count(rt), 0);
	assert_int_equal(changed, 0);
	qkd_routes_free(rt);
	qkd_lsdb_free(nt.db);
}

static void test_lsdb_sequence_and_flood(void **state)
{
	struct net nt;
	struct qkd_lsa l;
	const char *why = NULL, *node = NULL;
	struct qkd_lsdb *small;
	uint64_t v;

	(void)state;
	net_build(&nt, mesh6_nodes, 6, mesh6, sizeof mesh6 / sizeof mesh6[0]);
	assert_int_equal(qkd_lsdb_count(nt.db), 6);
	assert_int_equal(qkd_lsdb_flood_pending(nt.db), 6);
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(qkd_lsdb_flood_next(nt.db)->origin, mesh6_nodes[i]);
	assert_null(qkd_lsdb_flood_next(nt.db));
	v = qkd_lsdb_version(nt.db);
	l = *net_lsa(&nt, "c");
	assert_int_equal(qkd_lsdb_install(nt.db, &l, &why), QKD_ERR_PROTO);
	assert_string_equal(why, "sequence equal to the held one");
	l.seq--;
	assert_int_equal(qkd_lsdb_install(nt.db, &l, &why), QKD_ERR_PROTO);
	assert_string_equal(why, "sequence older than the held one");
	assert_int_equal(qkd_lsdb_version(nt.db), v);
	assert_int_equal(qkd_lsdb_flood_pending(nt.db), 0);
	l.seq += 5;
	l.links[0].available_bits = 7777;
	assert_int_equal(qkd_lsdb_install(nt.db, &l, &why), QKD_OK);
	assert_int_equal(qkd_lsdb_get(nt.db, "c")->links[0].available_bits, 7777);
	assert_int_equal(qkd_lsdb_flood_pending(nt.db), 1);
	assert_string_equal(qkd_lsdb_flood_next(nt.db)->origin, "c");
	assert_true(qkd_lsdb_version(nt.db) > v);
	/* invalid never enters */
	l.seq++;
	l.links[0].qber = NAN;
	assert_int_equal(qkd_lsdb_install(nt.db, &l, &why), QKD_ERR_INVAL);
	/* SAE map, and a doubly claimed SAE refused */
	assert_int_equal(qkd_lsdb_sae_node(nt.db, "sae-d", &node), QKD_OK);
	assert_string_equal(node, "d");
	assert_int_equal(qkd_lsdb_sae_node(nt.db, "sae-x", &node), QKD_ERR_INVAL);
	l = *net_lsa(&nt, "e");
	l.seq += 10;
	snprintf(l.saes[1], sizeof l.saes[1], "sae-d");
	l.n_saes = 2;
	assert_int_equal(qkd_lsdb_install(nt.db, &l, &why), QKD_OK);
	assert_int_equal(qkd_lsdb_sae_node(nt.db, "sae-d", &node), QKD_ERR_PROTO);
	/* removal and the bound */
	assert_int_equal(qkd_lsdb_remove(nt.db, "e"), QKD_OK);
	assert_int_equal(qkd_lsdb_remove(nt.db, "e"), QKD_ERR_INVAL);
	assert_null(qkd_lsdb_get(nt.db, "e"));
	assert_int_equal(qkd_lsdb_count(nt.db), 5);
	assert_int_equal(qkd_lsdb_new(0, &small), QKD_ERR_INVAL);
	assert_int_equal(qkd_lsdb_new(QKD_LSDB_NODES_MAX + 1, &small), QKD_ERR_INVAL);
	assert_int_equal(qkd_lsdb_new(2, &small), QKD_OK);
	assert_int_equal(qkd_lsdb_install(small, &nt.lsa[0], &why), QKD_OK);
	assert_int_equal(qkd_lsdb_install(small, &nt.lsa[1], &why), QKD_OK);
	assert_int_equal(qkd_lsdb_install(small, &nt.lsa[2], &why), QKD_ERR_RANGE);
	assert_string_equal(why, "database full");
	nt.lsa[1].seq++;
	assert_int_equal(qkd_lsdb_install(small, &nt.lsa[1], &why), QKD_OK);	/* update fits */
	qkd_lsdb_free(small);
	qkd_lsdb_free(nt.db);
}

static void encode(const struct qkd_lsa *l, struct qkd_wbuf *w)
{
	qkd_wbuf_reset(w);
	assert_int_equal(qkd_lsa_encode(l, w), QKD_OK);
}

static void test_lsa_roundtrip(void **state)
{
	struct net nt;
	struct qkd_wbuf w, w2;
	struct qkd_lsa back;
	const char *why;

	(void)state;
	qkd_wbuf_init(&w);
	qkd_wbuf_init(&w2);
	net_build(&nt, mesh6_nodes, 6, mesh6, sizeof mesh6 / sizeof mesh6[0]);
	nt.lsa[1].seq = UINT64_MAX;
	nt.lsa[1].links[0].state = QKD_LSA_ALARMED;
	nt.lsa[1].links[0].qber = 1.0;
	nt.lsa[1].links[1].stored_bits = UINT64_MAX;
	for (size_t i = 0; i < 6; i++) {
		encode(&nt.lsa[i], &w);
		assert_int_equal(qkd_lsa_decode(&back, w.p, w.len, &why), QKD_OK);
		assert_string_equal(back.origin, nt.lsa[i].origin);
		assert_true(back.seq == nt.lsa[i].seq);
		assert_int_equal(back.n_links, nt.lsa[i].n_links);
		assert_int_equal(back.links[0].state, nt.lsa[i].links[0].state);
		assert_true(back.links[0].qber == nt.lsa[i].links[0].qber);
		assert_true(back.links[1].stored_bits == nt.lsa[i].links[1].stored_bits);
		assert_string_equal(back.saes[0], nt.lsa[i].saes[0]);
		encode(&back, &w2);
		assert_int_equal(w2.len, w.len);
		assert_memory_equal(w2.p, w.p, w.len);
	}
	/* the largest LSA: every bound at its maximum */
	memset(&back, 0, sizeof back);
	memset(back.origin, 'o', QKD_NODE_NAME_MAX - 1);
	back.n_links = QKD_LSA_LINKS_MAX;
	for (size_t i = 0; i < QKD_LSA_LINKS_MAX; i++) {
		memset(back.links[i].neighbour, 'n', QKD_NODE_NAME_MAX - 1);
		snprintf(back.links[i].neighbour, 3, "%02zu", i);
		back.links[i].neighbour[2] = 'n';
	}
	back.n_saes = QKD_LSA_SAES_MAX;
	for (size_t i = 0; i < QKD_LSA_SAES_MAX; i++) {
		memset(back.saes[i], 's', QKD_LSA_SAE_ID_MAX);
		snprintf(back.saes[i], 3, "%02zu", i);
		back.saes[i][2] = '~';
	}
	encode(&back, &w);
	assert_int_equal(w.len, QKD_LSA_WIRE_MAX);
	assert_int_equal(qkd_lsa_decode(&nt.lsa[0], w.p, w.len, &why), QKD_OK);
	qkd_wbuf_cleanup(&w);
	qkd_wbuf_cleanup(&w2);
	qkd_lsdb_free(nt.db);
}

/* Decode must fail with rc; the output is left zeroed. */
#define refuse(p, n, rc) refuse_at((p), (n), (rc), __LINE__)
static void refuse_at(const uint8_t *p, size_t n, int rc, int line)
{
	struct qkd_lsa out;
	const char *why = NULL;

	int got = qkd_lsa_decode(&out, p, n, &why);

	if (got != rc)
		fail_msg("line %d: decode gave %d, expected %d (%s)", line, got, rc,
			 why != NULL ? why : "-");
	assert_non_null(why);
	assert_int_equal(out.origin[0], '\0');
}

/* An LSA with no links or SAEs whose origin is n 'x's, written by hand. */
static void bare_lsa(struct qkd_wbuf *w, size_t n)
{
	qkd_wbuf_reset(w);
	qkd_put_u8(w, QKD_LSA_VERSION);
	qkd_put_u8(w, (uint8_t)n);
	for (size_t i = 0; i < n; i++)
		qkd_put_u8(w, 'x');
	qkd_put_u64(w, 1);
	qkd_put_u8(w, 0);
	qkd_put_u8(w, 0);
}

static void test_lsa_malformed(void **state)
{
	struct net nt;
	struct qkd_wbuf w;
	struct qkd_lsa bad;
	uint8_t *b;
	size_t links_at;

	(void)state;
	qkd_wbuf_init(&w);
	net_build(&nt, mesh6_nodes, 6, mesh6, sizeof mesh6 / sizeof mesh6[0]);
	encode(&nt.lsa[1], &w);	/* b: three links */
	b = w.p;
	for (size_t n = 0; n < w.len; n++)	/* every truncation */
		refuse(b, n, QKD_ERR_PROTO);
	{
		uint8_t longer[QKD_LSA_WIRE_MAX + 1];

		memcpy(longer, b, w.len);
		longer[w.len] = 0;
		refuse(longer, w.len + 1, QKD_ERR_PROTO);	/* a byte after the end */
	}
	b[0] = 2;
	refuse(b, w.len, QKD_ERR_PROTO);	/* version */
	b[0] = QKD_LSA_VERSION;
	links_at = 1 + 1 + 1 + 8;		/* version, len, "b", seq */
	b[links_at] = QKD_LSA_LINKS_MAX + 1;
	refuse(b, w.len, QKD_ERR_RANGE);	/* links over the bound */
	b[links_at] = 3;
	b[links_at + 1 + 1 + 1] = 3;		/* first link's state */
	refuse(b, w.len, QKD_ERR_INVAL);
	b[links_at + 1 + 1 + 1] = 0;
	b[links_at + 1 + 1] = '-';		/* neighbour "-" is no node id */
	refuse(b, w.len, QKD_ERR_INVAL);
	b[links_at + 1 + 1] = 'b';		/* the origin itself */
	refuse(b, w.len, QKD_ERR_INVAL);
	b[links_at + 1 + 1] = '\0';		/* a NUL inside an id */
	refuse(b, w.len, QKD_ERR_PROTO);
	b[1] = 0;				/* an empty origin */
	refuse(b, w.len, QKD_ERR_RANGE);
	/* SAE count over its bound: the last SAE's length byte sits before
	 * "sae-b" at the end, the count before that */
	encode(&nt.lsa[1], &w);
	w.p[w.len - 7] = QKD_LSA_SAES_MAX + 1;
	refuse(w.p, w.len, QKD_ERR_RANGE);
	/* an over-long origin (64 characters) built by hand */
	bare_lsa(&w, QKD_NODE_NAME_MAX);
	refuse(w.p, w.len, QKD_ERR_RANGE);
	bare_lsa(&w, QKD_NODE_NAME_MAX - 1);	/* 63 characters: the longest id */
	{
		struct qkd_lsa ok;
		const char *why;

		assert_int_equal(qkd_lsa_decode(&ok, w.p, w.len, &why), QKD_OK);
		assert_int_equal(strlen(ok.origin), QKD_NODE_NAME_MAX - 1);
	}
	/* the encoder refuses what the decoder would */
	bad = nt.lsa[1];
	bad.links[1].available_bits = bad.links[1].stored_bits + 1;
	qkd_wbuf_reset(&w);
	assert_int_equal(qkd_lsa_encode(&bad, &w), QKD_ERR_INVAL);
	assert_int_equal(w.len, 0);
	bad = nt.lsa[1];
	snprintf(bad.links[2].neighbour, sizeof bad.links[2].neighbour, "%s", bad.links[0].neighbour);
	assert_int_equal(qkd_lsa_encode(&bad, &w), QKD_ERR_INVAL);
	bad = nt.lsa[1];
	bad.n_links = QKD_LSA_LINKS_MAX + 1;
	assert_int_equal(qkd_lsa_encode(&bad, &w), QKD_ERR_INVAL);
	bad = nt.lsa[1];
	snprintf(bad.saes[0], sizeof bad.saes[0], "bad sae");
	assert_int_equal(qkd_lsa_encode(&bad, &w), QKD_ERR_INVAL);
	bad = nt.lsa[1];
	bad.links[0].qber = -0.01;
	assert_int_equal(qkd_lsa_encode(&bad, &w), QKD_ERR_INVAL);
	qkd_wbuf_cleanup(&w);
	qkd_lsdb_free(nt.db);
}

/* A 64 x 64 grid fills the database to QKD_LSDB_NODES_MAX: with every pool
 * full, the path from the corner to (x, y) has x + y hops; one more origin
 * is refused. Prints the CPU time one compute takes. */
static void grid_name(char *out, size_t x, size_t y)
{
	snprintf(out, QKD_NODE_NAME_MAX, "g%02zu-%02zu", x, y);
}

static void grid_lsa(struct qkd_lsa *l, size_t x, size_t y, size_t side)
{
	static const int dx[4] = { 1, -1, 0, 0 }, dy[4] = { 0, 0, 1, -1 };

	memset(l, 0, sizeof *l);
	grid_name(l->origin, x, y);
	l->seq = 1;
	for (size_t d = 0; d < 4; d++) {
		long nx = (long)x + dx[d], ny = (long)y + dy[d];
		struct qkd_lsa_link *k;

		if (nx < 0 || ny < 0 || nx >= (long)side || ny >= (long)side)
			continue;
		k = &l->links[l->n_links++];
		grid_name(k->neighbour, (size_t)nx, (size_t)ny);
		k->stored_bits = k->available_bits = BIG;
	}
}

static void test_grid_4096(void **state)
{
	const size_t side = 64;
	struct qkd_lsdb *db;
	struct qkd_routes *rt;
	struct qkd_route_params p;
	struct qkd_lsa *l = malloc(sizeof *l);
	struct timespec t0, t1;
	const char *why;
	char name[QKD_NODE_NAME_MAX];
	size_t changed = 1;

	(void)state;
	assert_non_null(l);
	assert_int_equal(qkd_lsdb_new(QKD_LSDB_NODES_MAX, &db), QKD_OK);
	for (size_t x = 0; x < side; x++)
		for (size_t y = 0; y < side; y++) {
			grid_lsa(l, x, y, side);
			assert_int_equal(qkd_lsdb_install(db, l, &why), QKD_OK);
		}
	assert_int_equal(qkd_lsdb_count(db), QKD_LSDB_NODES_MAX);
	snprintf(l->origin, sizeof l->origin, "extra");
	l->n_links = 0;
	assert_int_equal(qkd_lsdb_install(db, l, &why), QKD_ERR_RANGE);
	qkd_route_params_default(&p);
	assert_int_equal(qkd_routes_new("g00-00", &p, &rt), QKD_OK);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	assert_int_equal(qkd_routes_compute(rt, db, NULL), QKD_OK);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	print_message("4096-node grid: one compute %.1f ms CPU\n",
		      (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	/* again, unchanged: every held path is re-costed and kept */
	assert_int_equal(qkd_routes_compute(rt, db, &changed), QKD_OK);
	assert_int_equal(changed, 0);
	assert_int_equal(qkd_routes_count(rt), QKD_LSDB_NODES_MAX - 1);
	for (size_t x = 0; x < side; x += 7)
		for (size_t y = 0; y < side; y += 5) {
			if (x + y == 0)
				continue;
			grid_name(name, x, y);
			assert_int_equal(qkd_routes_get(rt, name)->hops, x + y);
		}
	qkd_routes_free(rt);
	qkd_lsdb_free(db);
	free(l);
}

/* The database keeps each LSA compactly (qkd_lsa_size): an LSA that
 * replaces one with more or fewer SAEs is stored whole, and a copy out
 * (qkd_lsa_copy) reads only what is held. Under ASan a read past the
 * held bytes would fail. */
static void test_lsdb_compact(void **state)
{
	struct qkd_lsdb *db = NULL;
	struct qkd_lsa *l = calloc(1, sizeof *l), *out = calloc(1, sizeof *out);
	const struct qkd_lsa *held;
	const char *why;

	(void)state;
	assert_non_null(l);
	assert_non_null(out);
	assert_int_equal(qkd_lsdb_new(4, &db), QKD_OK);
	snprintf(l->origin, sizeof l->origin, "n");
	l->seq = 1;
	l->n_saes = 1;
	snprintf(l->saes[0], sizeof l->saes[0], "SAE_0");
	assert_int_equal(qkd_lsa_size(l), offsetof(struct qkd_lsa, saes) + sizeof l->saes[0]);
	assert_int_equal(qkd_lsdb_install(db, l, &why), QKD_OK);
	l->seq = 2;
	l->n_saes = QKD_LSA_SAES_MAX;	/* grows */
	for (size_t i = 0; i < QKD_LSA_SAES_MAX; i++)
		snprintf(l->saes[i], sizeof l->saes[i], "SAE_%zu", i);
	assert_int_equal(qkd_lsdb_install(db, l, &why), QKD_OK);
	held = qkd_lsdb_get(db, "n");
	assert_int_equal(held->n_saes, QKD_LSA_SAES_MAX);
	assert_string_equal(held->saes[QKD_LSA_SAES_MAX - 1], "SAE_63");
	l->seq = 3;
	l->n_saes = 0;			/* shrinks */
	assert_int_equal(qkd_lsdb_install(db, l, &why), QKD_OK);
	qkd_lsa_copy(out, qkd_lsdb_get(db, "n"));
	assert_int_equal(out->seq, 3);
	assert_int_equal(out->n_saes, 0);
	assert_string_equal(out->saes[0], "");	/* zeroed, not the held bytes */
	qkd_lsdb_free(db);
	free(l);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mesh_next_hops),
		cmocka_unit_test(test_two_rings),
		cmocka_unit_test(test_drained_link_moves),
		cmocka_unit_test(test_unusable_links),
		cmocka_unit_test(test_hysteresis),
		cmocka_unit_test(test_full_pools_tie_break),
		cmocka_unit_test(test_no_own_lsa),
		cmocka_unit_test(test_lsdb_sequence_and_flood),
		cmocka_unit_test(test_lsdb_compact),
		cmocka_unit_test(test_lsa_roundtrip),
		cmocka_unit_test(test_lsa_malformed),
		cmocka_unit_test(test_grid_4096),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
