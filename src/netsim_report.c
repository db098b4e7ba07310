/* netsim_report.c - `qkd netsim`'s output (netsim_report.h): the figures
 * of docs/netsim.md "Output", the convergence after each fault and, with
 * --trace, every next-hop change in time order. */
#include <jansson.h>
#include <stdio.h>

#include "netsim_report.h"

static const char *hop_name(const struct qkd_topology *t, long i)
{
	return i < 0 ? "-" : t->nodes[i].id;
}

static void human_faults(const struct qkd_netsim_config *c, const struct qkd_topology *t,
			 const struct qkd_netsim_result *r)
{
	(void)c;
	for (size_t f = 0; f < r->n_conv; f++) {
		const struct qkd_netsim_convergence *v = &r->conv[f];
		const struct qkd_topo_link *l = &t->links[v->fault.link];

		printf("%-5s %s-%s at %g s: ", v->fault.alarm ? "alarm" : "cut", t->nodes[l->a].id,
		       t->nodes[l->b].id, v->fault.t);
		if (v->flood_s >= 0)
			printf("known everywhere after %.3f ms, ", 1e3 * v->flood_s);
		if (v->seconds >= 0)
			printf("converged after %.3f s (%zu nodes routed over it)\n", v->seconds,
			       v->nodes_using);
		else
			printf("not converged by the end (%zu nodes routed over it)\n", v->nodes_using);
	}
}

int netsim_report_human(const struct qkd_netsim_config *c, const struct qkd_topology *t,
			const struct qkd_netsim_result *r)
{
	printf("qkd netsim: %zu nodes, %zu links, %g s simulated in %.2f s, seed %llu, "
	       "%g requests/s, paths %u\n\n", t->n_nodes, t->n_links, r->sim_s, r->wall_s,
	       (unsigned long long)c->seed, c->requests_per_s, c->paths);
	printf("relays             requested %llu, refused %llu, started %llu, completed %llu, "
	       "failed %llu, in flight %llu\n", (unsigned long long)r->requests,
	       (unsigned long long)r->refused, (unsigned long long)r->started,
	       (unsigned long long)r->completed, (unsigned long long)r->failed,
	       (unsigned long long)r->in_flight);
	printf("throughput         %.1f bit/s relayed (%llu bits)\n", r->throughput_bps,
	       (unsigned long long)r->relayed_bits);
	printf("link key per bit   %.3f (%llu pad bits)\n", r->key_per_bit,
	       (unsigned long long)r->pad_bits);
	printf("latency            p50 %.3f ms, p99 %.3f ms\n", 1e3 * r->latency_p50_s,
	       1e3 * r->latency_p99_s);
	printf("two paths          %.1f %%\n", 100 * r->two_path_fraction);
	printf("key mismatches     %llu\n", (unsigned long long)r->mismatches);
	printf("withdrawn          %llu failed keys dropped at the destination, %llu still held\n",
	       (unsigned long long)r->withdrawn, (unsigned long long)r->orphans);
	printf("routing            %llu route changes, %llu reroutes, %llu LSAs originated, "
	       "%llu received\n", (unsigned long long)r->route_changes,
	       (unsigned long long)r->reroutes, (unsigned long long)r->lsa_originated,
	       (unsigned long long)r->lsa_received);
	printf("messages           %llu sent, %llu lost on cut links, %llu refused, %llu malformed, "
	       "%llu anomalies\n", (unsigned long long)r->messages,
	       (unsigned long long)r->messages_lost, (unsigned long long)r->refused_msgs,
	       (unsigned long long)r->proto_errors, (unsigned long long)r->anomalies);
	if (r->n_conv)
		printf("\n");
	human_faults(c, t, r);
	if (c->trace && r->n_trace)
		printf("\nreroutes (time s, node, destination, old next hop -> new):\n");
	for (size_t i = 0; c->trace && i < r->n_trace; i++) {
		const struct qkd_netsim_reroute *e = &r->trace[i];

		printf("reroute %.3f %s %s %s -> %s\n", e->t, t->nodes[e->node].id,
		       t->nodes[e->dest].id, hop_name(t, e->old_hop), hop_name(t, e->new_hop));
	}
	return fflush(stdout) == 0 ? 0 : -1;
}

static json_t *json_faults(const struct qkd_topology *t, const struct qkd_netsim_result *r)
{
	json_t *a = json_array();

	for (size_t f = 0; f < r->n_conv; f++) {
		const struct qkd_netsim_convergence *v = &r->conv[f];
		const struct qkd_topo_link *l = &t->links[v->fault.link];

		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:f, s:o, s:o, s:I}",
			"kind", v->fault.alarm ? "alarm" : "cut", "a", t->nodes[l->a].id,
			"b", t->nodes[l->b].id, "t", v->fault.t,
			"flood_s", v->flood_s >= 0 ? json_real(v->flood_s) : json_null(),
			"convergence_s", v->seconds >= 0 ? json_real(v->seconds) : json_null(),
			"nodes_using", (json_int_t)v->nodes_using));
	}
	return a;
}

static json_t *json_trace(const struct qkd_topology *t, const struct qkd_netsim_result *r)
{
	json_t *a = json_array();

	for (size_t i = 0; i < r->n_trace; i++) {
		const struct qkd_netsim_reroute *e = &r->trace[i];

		json_array_append_new(a, json_pack("{s:f, s:s, s:s, s:o, s:o}", "t", e->t,
			"node", t->nodes[e->node].id, "dest", t->nodes[e->dest].id,
			"old", e->old_hop < 0 ? json_null() : json_string(t->nodes[e->old_hop].id),
			"new", e->new_hop < 0 ? json_null() : json_string(t->nodes[e->new_hop].id)));
	}
	return a;
}

int netsim_report_json(const struct qkd_netsim_config *c, const struct qkd_topology *t,
		       const struct qkd_netsim_result *r, json_t *routes)
{
	json_t *j = json_pack("{s:I, s:I, s:f, s:f, s:I, s:f, s:i, s:I, s:I, s:I, s:I, s:I, s:I,"
			      " s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:I}",
		"nodes", (json_int_t)t->n_nodes, "links", (json_int_t)t->n_links,
		"sim_s", r->sim_s, "wall_s", r->wall_s, "seed", (json_int_t)c->seed,
		"requests_per_s", c->requests_per_s, "paths", (int)c->paths,
		"requests", (json_int_t)r->requests, "refused", (json_int_t)r->refused,
		"started", (json_int_t)r->started, "completed", (json_int_t)r->completed,
		"failed", (json_int_t)r->failed, "in_flight", (json_int_t)r->in_flight,
		"relayed_bits", (json_int_t)r->relayed_bits, "pad_bits", (json_int_t)r->pad_bits,
		"mismatches", (json_int_t)r->mismatches,
		"throughput_bps", r->throughput_bps, "key_per_relayed_bit", r->key_per_bit,
		"latency_p50_s", r->latency_p50_s, "latency_p99_s", r->latency_p99_s,
		"two_path_fraction", r->two_path_fraction,
		"route_changes", (json_int_t)r->route_changes, "reroutes", (json_int_t)r->reroutes,
		"lsa_originated", (json_int_t)r->lsa_originated,
		"lsa_received", (json_int_t)r->lsa_received, "messages", (json_int_t)r->messages);
	int rc;

	if (j == NULL) {
		json_decref(routes);
		return -1;
	}
	json_object_set_new(j, "messages_lost", json_integer((json_int_t)r->messages_lost));
	json_object_set_new(j, "messages_refused", json_integer((json_int_t)r->refused_msgs));
	json_object_set_new(j, "malformed", json_integer((json_int_t)r->proto_errors));
	json_object_set_new(j, "anomalies", json_integer((json_int_t)r->anomalies));
	json_object_set_new(j, "withdrawn", json_integer((json_int_t)r->withdrawn));
	json_object_set_new(j, "orphans", json_integer((json_int_t)r->orphans));
	json_object_set_new(j, "faults", json_faults(t, r));
	json_object_set_new(j, "trace", c->trace ? json_trace(t, r) : json_null());
	json_object_set_new(j, "routes", routes != NULL ? routes : json_array());
	rc = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
	printf("\n");
	json_decref(j);
	return rc == 0 && fflush(stdout) == 0 ? 0 : -1;
}
