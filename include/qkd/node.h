/* qkd/node.h - one end of a QKD link as a long-running daemon (qkd node).
 *
 * A link runs in its own thread: it connects the classical channel (TCP,
 * a gated handshake, then batches of frames Wegman-Carter authenticated)
 * and the fiber (TCP carrying photon frames, qkd/fiber.h, bound to the
 * classical session), then runs rounds until told to stop. It never
 * stops on its own: a link out of authentication key stays down with an
 * alarm, a disk fault pauses it until the fault clears. Bob
 * drives each round: fresh secret randomness on both sides, the pulses of
 * the round over the fiber, the whole protocol engine, and a two-phase
 * commit of the round's key into both key stores. docs/node.md describes
 * the messages, the commit and recovery rules, and the authentication-key
 * bookkeeping that survive kill -9 at any moment.
 *
 * The node object below owns its links and its key manager; a caller
 * (`qkd node`, a test) sees them only through its accessors, so nothing
 * here carries a lock or a thread type.
 */
#ifndef QKD_NODE_H
#define QKD_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/log.h"
#include "qkd/node_config.h"

/* What `qkd status` shows for one link: plain data. Written by the link
 * thread under its lock, copied out by qkd_node_link_status. */
struct qkd_link_status {
	char state[32];			/* connecting, syncing, round, idle, stopped, ... */
	char peer_id[QKD_NODE_NAME_MAX];	/* the far end's node id, once a handshake passed */
	uint64_t rounds_ok;		/* rounds that stored a block */
	uint64_t rounds_empty;		/* rounds that ended without key */
	uint64_t rounds_failed;		/* rounds lost to an error (tag, I/O, abort) */
	uint64_t rounds_qber_abort;	/* rounds stopped by the QBER threshold */
	uint64_t qber_abort_streak;	/* consecutive ones */
	bool eavesdropping_suspected;	/* QBER above the threshold 3 rounds running */
	/* The QBER of the last round that measured one (qkd_engine_qber): the
	 * error-correction count, or the sample's when the round aborted on
	 * its sample; QKD_QBER_NONE before any round has. */
	double last_qber;
	enum qkd_qber_source last_qber_source;
	uint64_t last_block_bits;
	double key_rate_bps;		/* stored bits per second since start */
	uint64_t stored_blocks, stored_bits, available_bits;
	uint64_t auth_bits_left, auth_bits_spent, auth_bits_replenished;
	uint64_t auth_bits_poorer;	/* pads of the poorer direction (the reserve's measure) */
	uint64_t tags_failed;
	bool auth_exhausted;		/* the link is down: no authentication key left */
	bool auth_low;			/* a direction below a quarter of the reserve */
	bool disk_fault;		/* paused: the store or its state cannot be written */
	uint64_t last_round_auth_bits;	/* pads the last round spent (both directions) */
	uint64_t last_round_key_bits;	/* key it distilled: block plus refill */
	uint64_t last_round_trips;	/* its error-correction round trips */
	uint64_t session_auth_bits;	/* pads spent since this daemon started */
	uint64_t session_key_bits;	/* key distilled since this daemon started */
	uint64_t strangers_refused;	/* connections that failed the handshake's gate */
	/* Services on the link's channel (qkd/mux.h), since the node started:
	 * messages sent, delivered here, and dropped as of an unknown service
	 * or type (a newer peer). */
	uint64_t service_sent, service_delivered, service_unknown;
	uint64_t blocks_quarantined;	/* stored blocks that failed their digest */
	/* The key manager's records in the store (qkd/kme_store.h). */
	uint64_t kme_available_bits;	/* free bits of this end's half */
	uint64_t kme_outbox, kme_ready, kme_delivered, kme_refused;
	uint64_t kme_abandoned, kme_withdrawn, kme_quarantined;
	/* Running totals of the key lifecycle (docs/kme.md, "Key lifecycle"). */
	uint64_t kme_expired;		/* ready keys expired unfetched (kme.key_ttl) */
	uint64_t kme_lost_bits;		/* bits consumed here for keys no SAE gets */
	uint64_t kme_pruned;		/* tombstones pruned */
	uint64_t session_bits;		/* bits stored since this daemon started */
	char last_error[160];
};

/* The node object (lib/node/node.c): one running `qkd node`. It owns a
 * copy of its configuration, every link (its context, listening socket,
 * key store, authentication state and thread), the stop flag they share,
 * and the key manager when the configuration has one; a relay will join
 * them. What a link or the key manager holds stays private (lib/node/
 * node_int.h): callers see the node through the accessors below, which
 * copy under the owner's lock, so no caller needs a thread type. The
 * status socket and the metrics endpoint of `qkd node` (src/) read it
 * only through them. Lifecycle: qkd_node_new (opens and binds all, no
 * thread), qkd_node_start (threads), qkd_node_stop (joins),
 * qkd_node_free. docs/node.md, "The node object". */
struct qkd_node;
struct qkd_kme_counters;

/* Why qkd_node_new refused, for a message "CONFIG:LINE: TEXT". */
struct qkd_node_error {
	unsigned line;		/* the configuration line of what failed; 0: none */
	char text[384];		/* e.g. "link ab: 127.0.0.1:7101: Address already in use" */
};

/* Make a node of cfg (copied: the caller's may go) that logs through log
 * (borrowed, must outlive the node; its write may be called from any of
 * the node's threads). Everything a link needs is opened and bound here,
 * before any thread runs, so that a refusal is a startup error: for each
 * link in turn its listening socket (Alice: classical, Bob: fiber), then
 * its store and authentication state (docs/node.md, "Stores with a
 * past"); then the key manager when cfg->kme.enabled, which it logs.
 * 0 with *out set, or an error with *out NULL and *err filled (err may
 * not be NULL). */
__attribute__((warn_unused_result))
int qkd_node_new(struct qkd_node **out, const struct qkd_node_config *cfg,
		 const struct qkd_logger *log, struct qkd_node_error *err);

/* Start one thread per link. 0, or QKD_ERR_NOMEM when a thread could not
 * be made (those made run on; qkd_node_stop ends them). Once only. */
__attribute__((warn_unused_result))
int qkd_node_start(struct qkd_node *n);

/* Stop: set the stop flag, give a round in progress a few seconds to
 * end (both stores then agree on its block), shut the links' sockets,
 * join their threads, then stop the key manager (after the links: their
 * end woke every enc_keys still waiting). Logs "node NAME: stopped".
 * 0 when every link ended cleanly; QKD_ERR_IO when one failed or not all
 * had started. A second call, or one on a node never started, only stops
 * the key manager and returns 0. The accessors stay valid afterwards. */
int qkd_node_stop(struct qkd_node *n);

/* Stop if still running, close everything, free. Accepts NULL. */
void qkd_node_free(struct qkd_node *n);

/* The node's own copy of its configuration (valid while n lives). */
const struct qkd_node_config *qkd_node_config_of(const struct qkd_node *n);

/* Whether qkd_node_stop has begun: a caller's own threads (the status
 * socket) end on it too. Any thread. */
bool qkd_node_stopping(const struct qkd_node *n);

/* The links: as many as the configuration has. A link's configuration by
 * index (NULL when i is out of range), and a copy of its status taken
 * under its lock, from any thread (QKD_ERR_INVAL when out of range). */
size_t qkd_node_nlinks(const struct qkd_node *n);
const struct qkd_link_config *qkd_node_link_config(const struct qkd_node *n, size_t i);
int qkd_node_link_status(struct qkd_node *n, size_t i, struct qkd_link_status *out);

/* The node's relay agent (qkd/relay.h: its neighbours, link-state
 * database, routes and counters), shown to fn under the relay's lock, from
 * any thread; fn must only read and must not call into the node. false
 * when the node has no relay. */
struct qkd_relay;
bool qkd_node_relay_view(struct qkd_node *n, void (*fn)(void *ctx, const struct qkd_relay *r),
			 void *ctx);

/* The key manager's HTTPS counters (qkd_kme_server_counters), for the
 * metrics. true with *out filled while the node has a running key manager;
 * false (out untouched) when it has none or it has stopped. Any thread. */
bool qkd_node_kme_counters_get(struct qkd_node *n, struct qkd_kme_counters *out);

#endif
