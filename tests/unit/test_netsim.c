/* test_netsim.c - the relay network simulator (qkd/netsim.h,
 * lib/relay/netsim*.c, docs/netsim.md) on the 6-node mesh (a ring A..F with
 * the chord B-E, an SAE at every node):
 * - every requested key is relayed, and the destination's bits equal the
 *   source's, over one path and over two;
 * - a cut of A-B, and an alarm on A-B, each move A's routes off A-B, the
 *   convergence is measured, and keys keep being delivered;
 * - a run is a pure function of the seed: two runs give the same figures and
 *   the same trace, another seed other requests;
 * - the pads: both ends derive the same bits, a segment used twice or never
 *   taken is refused, and segments of the wrong half are refused;
 * - the event heap pops in (time, order) order;
 * - fault specs parse ids that contain '-', and bad ones are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/netsim.h"
#include "qkd/topology.h"
#include "../../lib/relay/netsim_int.h"

static const char mesh6[] =
	"node A sae=SAE_A\nnode B sae=SAE_B\nnode C sae=SAE_C\n"
	"node D sae=SAE_D\nnode E sae=SAE_E\nnode F sae=SAE_F\n"
	"link A B\nlink B C\nlink C D\nlink D E\nlink E F\nlink F A\nlink B E\n";

static struct qkd_topology *mesh(void)
{
	struct qkd_topology *t;
	size_t line;
	const char *why;

	assert_int_equal(qkd_topology_parse(mesh6, strlen(mesh6), &t, &line, &why), QKD_OK);
	return t;
}

static void config(struct qkd_netsim_config *c, const struct qkd_topology *t)
{
	qkd_netsim_config_default(c);
	c->topo = t;
	c->duration_s = 20;
	c->requests_per_s = 20;
}

static void add_fault(struct qkd_netsim_config *c, const struct qkd_topology *t,
		      const char *spec, bool alarm)
{
	const char *why;

	assert_int_equal(qkd_netsim_fault_parse(t, spec, alarm, &c->faults[c->n_faults++], &why),
			 QKD_OK);
}

static void assert_all_delivered(const struct qkd_netsim_result *r, double per_bit_max)
{
	assert_true(r->requests > 200);
	assert_int_equal(r->refused, 0);
	assert_int_equal(r->started, r->requests);
	assert_int_equal(r->completed, r->started);
	assert_int_equal(r->failed, 0);
	assert_int_equal(r->mismatches, 0);
	assert_int_equal(r->anomalies, 0);
	assert_int_equal(r->proto_errors, 0);
	assert_int_equal(r->relayed_bits, r->completed * QKD_NETSIM_KEY_BITS);
	/* Every hop spends a pad as long as the key (or share): at least one
	 * bit per bit, at most the longest path's hops per share. */
	assert_true(r->key_per_bit >= 1.0 && r->key_per_bit <= per_bit_max);
	assert_true(r->latency_p50_s > 0 && r->latency_p50_s <= r->latency_p99_s);
	assert_true(r->latency_p99_s < 0.1);
}

static void test_all_keys_equal(void **state)
{
	struct qkd_topology *t = mesh();
	struct qkd_netsim_config c;
	struct qkd_netsim_result r;
	const char *why;

	(void)state;
	config(&c, t);
	assert_int_equal(qkd_netsim_run(&c, &r, &why), QKD_OK);
	assert_all_delivered(&r, 3.0);	/* the mesh's longest shortest path: 3 hops */
	assert_int_equal(r.two_paths, 0);
	qkd_netsim_result_cleanup(&r);
	/* Two shares over node-disjoint paths: the mesh has them between any two nodes. */
	c.paths = 2;
	assert_int_equal(qkd_netsim_run(&c, &r, &why), QKD_OK);
	assert_all_delivered(&r, 6.0);	/* two node-disjoint paths: 6 links at most */
	assert_true(r.two_path_fraction > 0.9);
	assert_true(r.key_per_bit > 2.0);	/* two shares, each at least a hop */
	qkd_netsim_result_cleanup(&r);
	qkd_topology_free(t);
}

/* Whether any route of node i crosses x-y. */
static bool routes_use(const struct qkd_netsim *s, size_t i, const char *x, const char *y)
{
	const struct qkd_routes *rt = qkd_relay_routes(qkd_netsim_agent(s, i));

	for (size_t k = 0; k < qkd_routes_count(rt); k++) {
		const struct qkd_route *r = qkd_routes_at(rt, k);

		for (size_t h = 0; h < r->hops; h++)
			if ((!strcmp(r->path[h], x) && !strcmp(r->path[h + 1], y)) ||
			    (!strcmp(r->path[h], y) && !strcmp(r->path[h + 1], x)))
				return true;
	}
	return false;
}

static void fault_moves_routes(bool alarm)
{
	struct qkd_topology *t = mesh();
	struct qkd_netsim_config c;
	struct qkd_netsim_result r;
	struct qkd_netsim *s;
	const struct qkd_route *rb;
	const char *why;

	config(&c, t);
	add_fault(&c, t, "A-B@10", alarm);
	assert_int_equal(qkd_netsim_new(&c, &s, &why), QKD_OK);
	assert_int_equal(qkd_netsim_run_until(s, 9.95), QKD_OK);
	rb = qkd_routes_get(qkd_relay_routes(qkd_netsim_agent(s, 0)), "B");
	assert_non_null(rb);
	assert_string_equal(rb->next_hop, "B");
	assert_true(routes_use(s, 0, "A", "B"));
	assert_int_equal(qkd_netsim_run_until(s, 11), QKD_OK);
	for (size_t i = 0; i < t->n_nodes; i++)
		assert_false(routes_use(s, i, "A", "B"));
	rb = qkd_routes_get(qkd_relay_routes(qkd_netsim_agent(s, 0)), "B");
	assert_non_null(rb);
	assert_string_equal(rb->next_hop, "F");	/* A F E B */
	assert_int_equal(qkd_netsim_finish(s, &r), QKD_OK);
	assert_int_equal(r.n_conv, 1);
	assert_true(r.conv[0].seconds >= 0 && r.conv[0].seconds <= 1.0);
	/* Known everywhere after a flood of a few links' latency (0.15 ms each). */
	assert_true(r.conv[0].flood_s > 0 && r.conv[0].flood_s < 0.01);
	assert_true(r.conv[0].nodes_using >= 2);
	assert_int_equal(r.mismatches, 0);
	assert_int_equal(r.anomalies, 0);
	/* A key in flight over A-B when it was cut may fail; the rest arrive. */
	assert_true(r.completed + 2 >= r.started);
	assert_true(r.completed > 200);
	if (!alarm)
		assert_true(r.messages_lost <= r.messages);
	qkd_netsim_result_cleanup(&r);
	qkd_netsim_free(s);
	qkd_topology_free(t);
}

static void test_cut_reroutes(void **state)
{
	(void)state;
	fault_moves_routes(false);
}

static void test_alarm_reroutes(void **state)
{
	(void)state;
	fault_moves_routes(true);
}

static void test_deterministic(void **state)
{
	struct qkd_topology *t = mesh();
	struct qkd_netsim_config c;
	struct qkd_netsim_result r1, r2, r3;
	const char *why;

	(void)state;
	config(&c, t);
	c.trace = true;
	add_fault(&c, t, "B-E@5", false);
	add_fault(&c, t, "C-D@8", true);
	assert_int_equal(qkd_netsim_run(&c, &r1, &why), QKD_OK);
	assert_int_equal(qkd_netsim_run(&c, &r2, &why), QKD_OK);
	assert_int_equal(r1.requests, r2.requests);
	assert_int_equal(r1.completed, r2.completed);
	assert_int_equal(r1.pad_bits, r2.pad_bits);
	assert_int_equal(r1.messages, r2.messages);
	assert_true(r1.latency_p50_s == r2.latency_p50_s && r1.latency_p99_s == r2.latency_p99_s);
	assert_true(r1.conv[0].seconds == r2.conv[0].seconds);
	assert_true(r1.conv[1].seconds == r2.conv[1].seconds);
	assert_true(r1.conv[0].flood_s == r2.conv[0].flood_s && r1.conv[0].flood_s > 0);
	assert_true(r1.n_trace > 30);	/* every route appears once at least */
	assert_int_equal(r1.n_trace, r2.n_trace);
	assert_memory_equal(r1.trace, r2.trace, r1.n_trace * sizeof *r1.trace);
	for (size_t i = 1; i < r1.n_trace; i++)
		assert_true(r1.trace[i].t >= r1.trace[i - 1].t);
	/* The trace shows the reroute of the cut: some node's next hop moved at or after 5 s. */
	{
		bool moved = false;

		for (size_t i = 0; i < r1.n_trace; i++)
			moved |= r1.trace[i].t >= 5 && r1.trace[i].old_hop >= 0;
		assert_true(moved);
	}
	c.seed = 2;
	assert_int_equal(qkd_netsim_run(&c, &r3, &why), QKD_OK);
	assert_true(r3.requests != r1.requests || r3.pad_bits != r1.pad_bits ||
		    r3.latency_p50_s != r1.latency_p50_s);
	qkd_netsim_result_cleanup(&r1);
	qkd_netsim_result_cleanup(&r2);
	qkd_netsim_result_cleanup(&r3);
	qkd_topology_free(t);
}

static void test_pads(void **state)
{
	struct ns_link l;
	struct qkd_store_seg seg, seg2, bad;
	uint8_t pa[64], pb[64], pc[64];
	const char *why;

	(void)state;
	memset(&l, 0, sizeof l);
	memset(l.key, 7, sizeof l.key);
	l.made = 1000;
	assert_int_equal(ns_link_available(&l, 0), 1000);
	assert_int_equal(ns_link_take(&l, 0, 256, pa, &seg, &why), QKD_OK);
	assert_int_equal(seg.id, 0);
	assert_int_equal(seg.offset, 0);
	assert_int_equal(ns_link_take(&l, 0, 256, pc, &seg2, &why), QKD_OK);
	assert_int_equal(seg2.offset, 256);
	assert_memory_not_equal(pa, pc, 32);	/* fresh bits */
	assert_int_equal(ns_link_available(&l, 0), 1000 - 512);
	assert_int_equal(ns_link_available(&l, 1), 1000);	/* the other half untouched */
	/* The receiver gets the same bits, in either order, once. */
	assert_int_equal(ns_link_use(&l, 0, &seg2, 1, pb, 256, &why), QKD_OK);
	assert_memory_equal(pb, pc, 32);
	assert_int_equal(ns_link_use(&l, 0, &seg, 1, pb, 256, &why), QKD_OK);
	assert_memory_equal(pa, pb, 32);
	assert_int_equal(ns_link_use(&l, 0, &seg, 1, pb, 256, &why), QKD_ERR_INVAL);
	assert_string_equal(why, "segment already used");
	/* Never taken, wrong half, wrong length, overlapping. */
	bad = (struct qkd_store_seg){0, 512, 8};
	assert_int_equal(ns_link_use(&l, 0, &bad, 1, pb, 8, &why), QKD_ERR_INVAL);
	assert_string_equal(why, "segment never taken by the sender");
	bad = (struct qkd_store_seg){1, 0, 8};
	assert_int_equal(ns_link_use(&l, 0, &bad, 1, pb, 8, &why), QKD_ERR_INVAL);
	assert_string_equal(why, "segment of the wrong half");
	assert_int_equal(ns_link_take(&l, 0, 256, pa, &seg, &why), QKD_OK);
	assert_int_equal(ns_link_use(&l, 0, &seg, 1, pb, 128, &why), QKD_ERR_INVAL);
	{
		struct qkd_store_seg two[2] = {{0, 512, 128}, {0, 600, 128}};

		assert_int_equal(ns_link_use(&l, 0, two, 2, pb, 256, &why), QKD_ERR_INVAL);
		assert_string_equal(why, "segment already used");
		two[1].offset = 640;
		assert_int_equal(ns_link_use(&l, 0, two, 2, pb, 256, &why), QKD_OK);
		assert_memory_equal(pa, pb, 32);
	}
	/* Too little key. */
	assert_int_equal(ns_link_take(&l, 0, 512, pa, &seg, &why), QKD_ERR_RANGE);
	ns_link_cleanup(&l);
}

static void test_heap(void **state)
{
	struct ns_heap h = {0};
	struct ns_event e;
	double last = -1;
	uint64_t last_seq = 0;

	(void)state;
	for (int i = 0; i < 1000; i++) {
		memset(&e, 0, sizeof e);
		e.t = (double)((i * 7919) % 101);
		e.node = (uint32_t)i;
		assert_int_equal(ns_heap_push(&h, &e), QKD_OK);
	}
	for (int i = 0; i < 1000; i++) {
		assert_true(ns_heap_pop(&h, &e));
		assert_true(e.t > last || (e.t == last && e.seq > last_seq));
		last = e.t;
		last_seq = e.seq;
	}
	assert_false(ns_heap_pop(&h, &e));
	ns_heap_cleanup(&h);
}

static void test_fault_parse(void **state)
{
	static const char net[] = "node a-b\nnode c\nnode a\nnode b-c\nlink a-b c\nlink a b-c\n";
	struct qkd_topology *t;
	struct qkd_netsim_fault f;
	struct qkd_netsim_config c;
	struct qkd_netsim *s;
	size_t line;
	const char *why;

	(void)state;
	assert_int_equal(qkd_topology_parse(net, strlen(net), &t, &line, &why), QKD_OK);
	assert_int_equal(qkd_netsim_fault_parse(t, "a-b-c@1.5", true, &f, &why), QKD_ERR_INVAL);
	assert_string_equal(why, "ambiguous: the ids split in more than one way");
	assert_int_equal(qkd_netsim_fault_parse(t, "c-a-b@2", false, &f, &why), QKD_OK);
	assert_int_equal(f.link, 0);
	assert_true(f.t == 2 && !f.alarm);
	assert_int_equal(qkd_netsim_fault_parse(t, "a-c@2", false, &f, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_netsim_fault_parse(t, "c-a-b", false, &f, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_netsim_fault_parse(t, "c-a-b@-1", false, &f, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_netsim_fault_parse(t, "c-a-b@x", false, &f, &why), QKD_ERR_INVAL);
	/* A run refuses what it cannot do. */
	qkd_netsim_config_default(&c);
	c.topo = t;
	c.requests_per_s = 1;	/* no SAEs anywhere */
	assert_int_equal(qkd_netsim_new(&c, &s, &why), QKD_ERR_INVAL);
	assert_null(s);
	c.requests_per_s = 0;
	c.paths = 3;
	assert_int_equal(qkd_netsim_new(&c, &s, &why), QKD_ERR_INVAL);
	c.paths = 1;
	c.n_faults = 1;
	c.faults[0] = (struct qkd_netsim_fault){100, false, 0};	/* after the end */
	assert_int_equal(qkd_netsim_new(&c, &s, &why), QKD_ERR_INVAL);
	qkd_topology_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_keys_equal),
		cmocka_unit_test(test_cut_reroutes),
		cmocka_unit_test(test_alarm_reroutes),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_pads),
		cmocka_unit_test(test_heap),
		cmocka_unit_test(test_fault_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
