/* netsim_int.h - the simulator's parts inside lib/relay (qkd/netsim.h):
 * the event heap (netsim_heap.c), the links' key pools and pads
 * (netsim_link.c), the agents' callbacks and the keys in flight
 * (netsim_ops.c), the loop (netsim.c) and the figures (netsim_stats.c). */
#ifndef QKD_NETSIM_INT_H
#define QKD_NETSIM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/netsim.h"
#include "qkd/rng.h"
#include "topology_int.h"

enum ns_kind { NS_MSG, NS_LINK_UP, NS_TICK, NS_REPORT, NS_FAULT, NS_REQUEST };

struct ns_event {
	double t;
	uint64_t seq;		/* ties broken by scheduling order: FIFO per direction */
	uint8_t kind, type;	/* enum ns_kind; a message's relay type */
	uint32_t node, link;	/* receiver; the link (NS_MSG, NS_LINK_UP), fault index */
	uint32_t epoch;		/* the link's epoch when sent: a cut drops what is in flight */
	uint32_t len;
	uint8_t *body;		/* NS_MSG: owned */
};

struct ns_heap {
	struct ns_event *e;
	size_t n, cap;
	uint64_t seq;
};
void ns_heap_cleanup(struct ns_heap *h);
int ns_heap_push(struct ns_heap *h, struct ns_event *ev);	/* sets ev->seq */
bool ns_heap_pop(struct ns_heap *h, struct ns_event *out);
const struct ns_event *ns_heap_top(const struct ns_heap *h);

/* Receiver's record of one half's segments used: sorted disjoint [lo, hi). */
struct ns_used {
	uint64_t (*r)[2];
	size_t n, cap;
};

/* One link. Its key is one pool in two halves, as a node's store (even
 * blocks Alice's, odd Bob's: docs/kme.md "Who cuts which bits"): half 0 is
 * cut by end a, half 1 by end b, each half one endless block with id the
 * half, so a pad segment is {half, offset, nbits}. */
struct ns_link {
	size_t a, b;
	double latency_s, rate_bps, qber;
	bool up, alarmed, cut;	/* cut: for good, even before it came up */
	uint32_t epoch;
	double made;		/* bits made into each half so far, initial pool included */
	uint64_t next[2];	/* sender's next offset in half h: [0, next) taken */
	struct ns_used used[2];	/* receiver's: segments of half h used */
	uint8_t key[32];	/* the pad stream's key */
};

void ns_link_cleanup(struct ns_link *l);
uint64_t ns_link_available(const struct ns_link *l, unsigned half);
/* Take nbits (multiple of 8) of half h: one segment, its bits to pad. */
int ns_link_take(struct ns_link *l, unsigned half, uint32_t nbits, uint8_t *pad,
		 struct qkd_store_seg *seg, const char **why);
/* Use the segments as the receiver of half h; nothing used on refusal. */
int ns_link_use(struct ns_link *l, unsigned half, const struct qkd_store_seg *segs, size_t n,
		uint8_t *pad, uint32_t nbits, const char **why);

struct ns_node {
	struct qkd_netsim *sim;
	size_t idx;
	struct qkd_relay *r;
	size_t n_links;
	size_t links[QKD_LSA_LINKS_MAX];
	uint64_t seen_route_changes;
};

/* A requested key: its bits at the source and at the destination. */
struct ns_key {
	uint8_t id[16];
	uint8_t src[QKD_NETSIM_KEY_BITS / 8], dst[QKD_NETSIM_KEY_BITS / 8];
	double t0;
	uint32_t src_node, dst_node;
	bool delivered, done, failed, withdrawn;
};

struct ns_sae {
	size_t node;
	const char *id;
};

struct qkd_netsim {
	struct qkd_netsim_config c;
	const struct qkd_topology *t;
	double now, wall0;
	struct ns_heap heap;
	struct ns_node *nodes;
	struct ns_link *links;
	struct topo_index ids;		/* node id -> index */
	struct ns_sae *saes;
	size_t n_saes;
	struct qkd_rng rng;
	struct ns_key *keys;
	size_t n_keys, cap_keys;
	double *lat;			/* completed keys' latencies */
	size_t n_lat, cap_lat;
	/* convergence: clear[f * n_nodes + i], node i clear of fault f's link */
	bool *clear;
	bool watching[QKD_NETSIM_FAULTS_MAX];	/* fault seen, routes not yet clear */
	bool happened[QKD_NETSIM_FAULTS_MAX];	/* fault seen */
	/* flood: informed[f * n_nodes + i], node i's database knows of fault f */
	bool *informed;
	size_t uninformed[QKD_NETSIM_FAULTS_MAX];
	size_t flooding;		/* faults with uninformed nodes */
	struct qkd_netsim_convergence conv[QKD_NETSIM_FAULTS_MAX];
	size_t n_conv;
	uint32_t *hops;			/* trace: n x n last next hops */
	struct qkd_netsim_reroute *trace;
	size_t n_trace, cap_trace;
	struct qkd_netsim_result res;	/* counters filled as it goes */
	double next_progress;
};

extern const struct qkd_relay_ops ns_ops;
long ns_node_index(const struct qkd_netsim *s, const char *id);
/* The link at node n towards neighbour id, or NULL. */
struct ns_link *ns_node_link(struct ns_node *n, const char *id, unsigned *my_half);
int ns_request(struct qkd_netsim *s);
/* After a tick: convergence of the watched fault and the trace. */
int ns_after_tick(struct qkd_netsim *s);
/* Fault f happened: start watching its convergence. */
int ns_watch(struct qkd_netsim *s, size_t f);
/* After node i received a message: whether it now knows of the faults. */
void ns_after_message(struct qkd_netsim *s, size_t i);
int ns_result(struct qkd_netsim *s, struct qkd_netsim_result *out);

#endif
