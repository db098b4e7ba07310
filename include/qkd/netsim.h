/* qkd/netsim.h - the relay network simulator behind `qkd netsim`
 * (docs/netsim.md).
 *
 * One relay agent (qkd/relay.h), the same code `qkd node` runs, per node of
 * a topology (qkd/topology.h), joined by simulated links: messages arrive
 * after the link's latency, in order per direction, and are lost when the
 * link is cut; each link's key pool grows at its rate and hands out pad
 * bits that both ends derive alike, so every end-to-end key is really
 * checked at both ends. Time is a simulated clock driven by a discrete-event
 * loop (a binary heap of events): a run is a pure function of the topology,
 * the configuration and the seed. Single-threaded; the library never
 * prints (agents log through config.log).
 */
#ifndef QKD_NETSIM_H
#define QKD_NETSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/log.h"
#include "qkd/relay.h"
#include "qkd/topology.h"

#define QKD_NETSIM_KEY_BITS 256		/* an end-to-end key */
#define QKD_NETSIM_TICK_S 0.1		/* qkd_relay_tick and the pools' growth */
#define QKD_NETSIM_REPORT_S 1.0		/* qkd_relay_link_report */
#define QKD_NETSIM_FAULTS_MAX 64
/* Each agent's relays_max (qkd/relay.h): keys in progress as source, and
 * at the destination. Lower than a node's default (1024) because the agent
 * sweeps every slot each tick and a thousand agents share one process; a
 * simulated node has few keys in flight (docs/netsim.md "The model"). */
#define QKD_NETSIM_RELAYS_MAX 64
/* The QBER a link reports while alarmed: that of intercept-resend on every
 * pulse, well over any threshold. */
#define QKD_NETSIM_ALARM_QBER 0.25

/* A link cut (down at both ends) or alarmed (reported so) from time t. */
struct qkd_netsim_fault {
	double t;
	bool alarm;
	size_t link;		/* index in the topology */
};

struct qkd_netsim_config {
	const struct qkd_topology *topo;	/* borrowed for the simulator's life */
	double duration_s;			/* simulated seconds (60) */
	double requests_per_s;			/* end-to-end keys asked, whole network (10) */
	double warmup_s;			/* first request at this time (2) */
	unsigned paths;				/* 1 or 2 shares per key (1) */
	uint64_t seed;				/* requests, keys, pads (1) */
	size_t n_faults;
	struct qkd_netsim_fault faults[QKD_NETSIM_FAULTS_MAX];
	bool trace;				/* record every next-hop change */
	const struct qkd_logger *log;		/* the agents' logger, may be NULL */
	void (*progress)(void *ctx, double fraction);	/* each simulated second, may be NULL */
	void *progress_ctx;
};

/* The defaults in parentheses, no faults, no trace, topo NULL. */
void qkd_netsim_config_default(struct qkd_netsim_config *c);

/* Parse "A-B@T" for topology t: a link between nodes A and B (either
 * order; ids may hold '-', every split is tried and exactly one must name a
 * link) and a time 0 <= T. 0 and *out (alarm as given), or QKD_ERR_INVAL
 * with *why (static). */
__attribute__((warn_unused_result))
int qkd_netsim_fault_parse(const struct qkd_topology *t, const char *spec, bool alarm,
			   struct qkd_netsim_fault *out, const char **why);

/* A next-hop change at a node, as of a tick (config.trace). */
struct qkd_netsim_reroute {
	double t;
	size_t node, dest;	/* topology indices */
	long old_hop, new_hop;	/* topology indices, -1 for none (unreachable) */
};

struct qkd_netsim_convergence {
	struct qkd_netsim_fault fault;
	double seconds;		/* from the fault until no node's routes use the link; < 0: not by the end */
	double flood_s;		/* from the fault until every node's database shows the link
				 * down or alarmed (by either end's LSA); < 0: not by the end */
	size_t nodes_using;	/* nodes whose routes used the link at the fault */
};

struct qkd_netsim_result {
	double sim_s, wall_s;
	uint64_t requests;		/* asked */
	uint64_t refused;		/* qkd_relay_start refused (no route, too many relays) */
	uint64_t started, completed, failed, in_flight;	/* in_flight: neither by the end */
	uint64_t two_paths;		/* completed as two shares */
	uint64_t mismatches;		/* completed with the destination's bits different or absent: must be 0 */
	uint64_t anomalies;		/* done or deliver for an unknown or finished key, done twice */
	uint64_t withdrawn;		/* failed keys the destination held and dropped on withdrawal */
	uint64_t orphans;		/* failed keys still held at the destination at the end */
	uint64_t route_changes, reroutes, lsa_originated, lsa_received, refused_msgs;
	uint64_t messages, messages_lost, proto_errors;	/* proto_errors: a receive refused as malformed */
	uint64_t pad_bits;		/* link key taken for pads (sender side) */
	uint64_t relayed_bits;		/* completed keys' bits */
	double throughput_bps;		/* relayed_bits / (duration - warmup) */
	double key_per_bit;		/* pad_bits / relayed_bits (0 when none) */
	double latency_p50_s, latency_p99_s;	/* start to done, completed keys */
	double two_path_fraction;
	size_t n_conv;
	struct qkd_netsim_convergence *conv;	/* one per fault, in time order; owned */
	size_t n_trace;
	struct qkd_netsim_reroute *trace;	/* in time order; owned */
};

struct qkd_netsim;

/* Copies c (not the topology), makes the agents, schedules the links' up
 * events, the ticks, the reports, the faults and the first request.
 * QKD_ERR_INVAL with *why for a topology of fewer than 2 nodes or over
 * QKD_LSDB_NODES_MAX, requests with fewer than two nodes holding SAEs,
 * paths not 1 or 2, a bad duration or fault; QKD_ERR_NOMEM. */
__attribute__((warn_unused_result))
int qkd_netsim_new(const struct qkd_netsim_config *c, struct qkd_netsim **out,
		   const char **why);
void qkd_netsim_free(struct qkd_netsim *s);	/* accepts NULL; wipes keys and pads */

/* Process every event up to simulated time t (at most the duration). */
int qkd_netsim_run_until(struct qkd_netsim *s, double t);
double qkd_netsim_now(const struct qkd_netsim *s);

/* Node i's agent, for its routes and database (read only). */
const struct qkd_relay *qkd_netsim_agent(const struct qkd_netsim *s, size_t node);

/* Run to the end (qkd_netsim_run_until(duration)) and fill *out (the
 * caller cleans it up). */
int qkd_netsim_finish(struct qkd_netsim *s, struct qkd_netsim_result *out);
void qkd_netsim_result_cleanup(struct qkd_netsim_result *r);

/* new, finish, free in one call. */
__attribute__((warn_unused_result))
int qkd_netsim_run(const struct qkd_netsim_config *c, struct qkd_netsim_result *out,
		   const char **why);

#endif
