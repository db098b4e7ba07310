/* qkd/relay.h - one relay node's routing and key relay, whatever carries
 * its messages (docs/relay.md).
 *
 * An agent is the whole of a node's part in the relay network: it
 * originates the node's link-state advertisement from what the links
 * report, floods LSAs to its neighbours, keeps the link-state database and
 * the routes (qkd/lsdb.h, qkd/route.h), and relays end-to-end keys hop by
 * hop (qkd/relay_msg.h) as source, relay and destination. It knows nothing
 * of sockets, threads, stores or clocks: the caller supplies them as
 * callbacks (struct qkd_relay_ops). `qkd node` runs one agent over its
 * links' services (qkd/mux.h) and stores; `qkd netsim` runs thousands over
 * simulated links with a simulated clock. So the network a simulation shows
 * is the network the nodes make.
 *
 * Not thread-safe: the caller serializes every call (the node holds a
 * lock). The callbacks run inside the calls and must not call back into
 * the agent.
 */
#ifndef QKD_RELAY_H
#define QKD_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/log.h"
#include "qkd/lsa.h"
#include "qkd/lsdb.h"
#include "qkd/relay_msg.h"
#include "qkd/route.h"

struct qkd_relay;

/* What the agent asks of its node. ctx is qkd_relay_config.ctx. */
struct qkd_relay_ops {
	/* Queue one message for neighbour, to go on that link's
	 * authenticated channel in order. An error means it was not queued
	 * (the link is down): the agent treats it as a lost message. */
	int (*send)(void *ctx, const char *neighbour, uint8_t type, const uint8_t *body,
		    size_t len);
	/* Sender of a hop: consume nbits of the link's key that were never
	 * used, from this end's half of the link (docs/kme.md "Who cuts which
	 * bits"), write them to pad and their coordinates to pad_segs
	 * (*n_pad of at most QKD_RELAY_PAD_SEGS_MAX). QKD_ERR_RANGE when the
	 * link holds too little. */
	int (*pad_take)(void *ctx, const char *neighbour, uint32_t nbits, uint8_t *pad,
			struct qkd_store_seg *pad_segs, size_t *n_pad, const char **why);
	/* Receiver of a hop: consume exactly the segments the sender named,
	 * from the sender's half, and write their bits to pad. Refused (an
	 * error, nothing consumed) when any bit is unknown, of the wrong half
	 * or already used. */
	int (*pad_use)(void *ctx, const char *neighbour, const struct qkd_store_seg *pad_segs,
		       size_t n_pad, uint8_t *pad, uint32_t nbits, const char **why);
	/* Destination: keep the key for its slave SAE (a local SAE), to be
	 * served once by dec_keys. Called again with the same key_ID and bits
	 * when a completion was lost and the source tried again: 0 then too.
	 * An error sends a failure back. */
	int (*deliver)(void *ctx, const uint8_t key_id[16], const char *master, const char *slave,
		       const char *source, const uint8_t *key, uint32_t nbits, const char **why);
	/* Source: the outcome of qkd_relay_start. result 0: the destination
	 * holds the key, shares says over how many node-disjoint paths it
	 * went, hops the longest path's links. Otherwise an error code and
	 * why (static or the agent's, valid for the call). */
	void (*done)(void *ctx, const uint8_t key_id[16], int result, const char *why,
		     unsigned shares, unsigned hops);
	/* Seconds on a monotonic clock (the simulator's clock in netsim). */
	double (*now)(void *ctx);
	/* Destination, may be NULL: the source node withdrew key_id (it gave
	 * the key up, docs/relay.md "Withdrawal"): drop it if it is held for
	 * a pair relayed from source and not yet served. *found says whether
	 * it was. An error is logged; nothing is sent back. */
	int (*withdraw)(void *ctx, const uint8_t key_id[16], const char *source, bool *found,
			const char **why);
};

struct qkd_relay_config {
	const char *self;			/* this node's id */
	size_t n_neighbours;			/* the node's links, by the far end's id */
	const char *const *neighbours;		/* at most QKD_LSA_LINKS_MAX, distinct */
	size_t n_saes;				/* SAEs attached to this node's key manager */
	const char *const *saes;		/* at most QKD_LSA_SAES_MAX */
	struct qkd_route_params route;
	uint64_t seq_start;	/* first LSA sequence: higher than any earlier run's
				 * (the node uses wall-clock microseconds) */
	double lsa_interval_s;	/* least time between two LSAs for key changes (1) */
	double lsa_refresh_s;	/* an LSA at least this often (30) */
	double key_change;	/* a link's available key moving by this fraction
				 * makes a new LSA (0.25) */
	double relay_timeout_s;	/* the source gives up after this (5) */
	unsigned attempts;	/* tries per key, rerouting in between (3) */
	size_t relays_max;	/* relays in progress as source, and at the
				 * destination (1024) */
	const struct qkd_logger *log;		/* may be NULL */
	const struct qkd_relay_ops *ops;	/* borrowed */
	void *ctx;
};

/* The defaults in parentheses above; self, neighbours, SAEs, seq_start,
 * log, ops and ctx are left to the caller. */
void qkd_relay_config_default(struct qkd_relay_config *c);

/* QKD_ERR_INVAL (with a log line) for an invalid id, too many or repeated
 * neighbours or SAEs, a neighbour equal to self, or bad parameters. The
 * configuration is copied. Every link starts down. */
int qkd_relay_new(const struct qkd_relay_config *c, struct qkd_relay **out);
void qkd_relay_free(struct qkd_relay *r);

/* --- Links --------------------------------------------------------------- */

/* The link to neighbour is connected (authenticated) or lost. Up: the
 * agent sends it its own LSA and the whole database. Down: the link
 * counts as down in the next LSA, at once, and relays this node started
 * over it try another path. QKD_ERR_INVAL for an unknown neighbour. */
int qkd_relay_link_up(struct qkd_relay *r, const char *neighbour, bool up);

/* What a link reports after a round or a change: QBER, key stored,
 * available to relay, key rate, and whether its QBER alarm holds (state
 * alarmed). The agent originates an LSA at once when the state changes,
 * within lsa_interval_s when the available key moved by key_change or
 * crossed the route's out-of-key threshold, and every lsa_refresh_s. */
int qkd_relay_link_report(struct qkd_relay *r, const char *neighbour, bool alarmed,
			  double qber, uint64_t stored_bits, uint64_t available_bits,
			  uint64_t rate_bps);

/* --- Messages and time ------------------------------------------------- */

/* An authenticated message of the relay service from neighbour. A
 * malformed message is QKD_ERR_PROTO with *why (the link should drop the
 * connection: its peer is broken); a well-formed one that is refused (an
 * old LSA, our own origin, a loop, an unknown key_ID, a pad that cannot be
 * used) is logged, counted and answered where the protocol says, and the
 * call returns 0. */
int qkd_relay_receive(struct qkd_relay *r, const char *neighbour, uint8_t type,
		      const uint8_t *body, size_t len, const char **why);

/* Timers: delayed LSAs, refreshes, relays timed out at the source, shares
 * waiting too long at the destination, routes after database changes.
 * Call at least every 100 ms (the node's service pump does). */
void qkd_relay_tick(struct qkd_relay *r);

/* --- Relaying keys ----------------------------------------------------- */

/* Source: relay key (nbits, a multiple of 8 up to QKD_RELAY_KEY_BITS_MAX)
 * for the pair master (a local SAE) and slave (an SAE another node
 * advertises), as key_id, over shares (1 or 2) node-disjoint paths: with
 * 2 the key goes as two XOR shares, or as one share when no second path
 * exists (done says which). The key is copied and wiped when done is
 * called. 0: under way, done will be called exactly once. An error with
 * *why, done not called: QKD_ERR_INVAL (unknown SAE, the slave local,
 * a key_ID in progress), QKD_ERR_RANGE (too many relays), QKD_ERR_NOKEY
 * (no route). */
int qkd_relay_start(struct qkd_relay *r, const uint8_t key_id[16], const char *master,
		    const char *slave, const uint8_t *key, uint32_t nbits, unsigned shares,
		    const char **why);

/* Source: withdraw key_id, a key this node relayed to slave's node and
 * then discarded (an enc_keys that failed as a whole): a WITHDRAW goes over
 * the current route, and the destination drops the key if it holds it.
 * Best effort: a withdrawal that cannot get through leaves the key to the
 * destination's key_ttl (nobody learned its key_ID). A key the agent
 * gives up on itself (done with an error) is withdrawn without this call.
 * 0 when sent; QKD_ERR_INVAL (unknown SAE, or the key still in progress)
 * or QKD_ERR_NOKEY (no route) with *why. */
int qkd_relay_withdraw(struct qkd_relay *r, const uint8_t key_id[16], const char *slave,
		       const char **why);

/* The node id that serves SAE id sae, from the database, or NULL. */
const char *qkd_relay_sae_node(const struct qkd_relay *r, const char *sae);

/* --- The operator's view ------------------------------------------------ */

const struct qkd_lsdb *qkd_relay_lsdb(const struct qkd_relay *r);
/* Routes as of the last tick (qkd/route.h). */
const struct qkd_routes *qkd_relay_routes(const struct qkd_relay *r);

struct qkd_relay_neighbour {
	char id[QKD_NODE_NAME_MAX];
	bool up, alarmed;
	double qber;
	uint64_t stored_bits, available_bits, rate_bps;
};
size_t qkd_relay_neighbour_count(const struct qkd_relay *r);
void qkd_relay_neighbour_at(const struct qkd_relay *r, size_t i, struct qkd_relay_neighbour *out);

struct qkd_relay_stats {
	uint64_t lsa_originated;	/* own LSAs made */
	uint64_t lsa_received;		/* LSAs from neighbours, installed */
	uint64_t lsa_refused;		/* old, duplicate, own origin or invalid */
	uint64_t route_changes;		/* destinations whose path moved */
	uint64_t relays_started;	/* as source */
	uint64_t relays_completed;	/* done with 0 */
	uint64_t relays_failed;		/* done with an error */
	uint64_t relays_two_paths;	/* completed as two shares */
	uint64_t reroutes;		/* tries after the first */
	uint64_t shares_forwarded;	/* as a relay */
	uint64_t keys_delivered;	/* as destination */
	uint64_t pad_bits;		/* link key spent on relay pads, sent and received */
	uint64_t refused;		/* relay messages refused (loop, unknown key_ID, ...) */
	uint64_t withdrawals_sent;	/* as source */
	uint64_t withdrawals_received;	/* as destination */
};
void qkd_relay_get_stats(const struct qkd_relay *r, struct qkd_relay_stats *out);

#endif
