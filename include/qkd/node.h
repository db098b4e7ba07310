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
 */
#ifndef QKD_NODE_H
#define QKD_NODE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "qkd/log.h"
#include "qkd/node_config.h"

/* What `qkd status` shows for one link. Written by the link thread under
 * the mutex, read by the status server. */
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

/* The link's side of its node's key manager (docs/kme.md, "Coordination
 * between nodes"): whether the link is connected, and the enc_keys
 * requests waiting for the peer's verdict on their keys. Shared by the
 * link thread and the key manager's connection threads, under lock. */
struct node_kme_waiter;
struct node_kme_service;
struct node_auth;
struct qkd_mux;
struct qkd_store;
struct qkd_link_kme {
	pthread_mutex_t lock;
	pthread_cond_t settled;			/* broadcast when verdicts arrive */
	bool up;				/* connected, recovered: records can cross */
	struct node_kme_waiter *waiters;
	const struct qkd_node_kme *cfg;		/* NULL: this node has no key manager */
	int link_index;				/* this link's index in the node's links */
	struct node_kme_service *svc;		/* the link's KME service (kme_sync.c) */
};

struct qkd_link_ctx {
	const struct qkd_link_config *cfg;
	const struct qkd_logger *log;
	atomic_bool *stop;		/* set by the daemon on SIGTERM */
	pthread_mutex_t lock;		/* guards status and fds */
	struct qkd_link_status status;
	int fds[2];			/* classical, fiber: -1 if closed; shut down on stop */
	int listen_fd;			/* bound by qkd_link_bind before the thread starts */
	double started;			/* wall clock at start */
	int result;			/* qkd_link_run's return, for qkd_link_thread */
	struct qkd_link_kme kme;	/* set up by qkd_link_ctx_init; cfg by the key manager */
	struct qkd_mux *mux;		/* services on the link's channel (qkd/mux.h) */
	struct qkd_store *store;	/* the link thread's handle, from qkd_link_open */
	struct node_auth *auth;		/* its authentication state, from qkd_link_open */
	uint64_t prior_errors, prior_bits;	/* QBER of the rounds so far (engine.h) */
	/* Alice: connections accepted that have not spoken yet (link.c). */
	int waiting[16];
	double waiting_since[16];
	size_t nwaiting;
	double stranger_logged;		/* when a refused connection was last logged */
	double peer_logged;		/* when a peer of the wrong id was last logged */
	uint64_t strangers_unlogged;	/* refused since then, not logged */
};

/* Initialize ctx for cfg (borrowed, must outlive the run). */
int qkd_link_ctx_init(struct qkd_link_ctx *ctx, const struct qkd_link_config *cfg,
		      const struct qkd_logger *log, atomic_bool *stop);
/* Close what qkd_link_open opened, and the listening socket. */
void qkd_link_ctx_cleanup(struct qkd_link_ctx *ctx);

/* Open the link's key store (locked against a second node) and its
 * authentication state, and check that they belong together (docs/node.md,
 * "Stores with a past"), before the thread starts: a refusal is a startup
 * error. *why says what to do. */
int qkd_link_open(struct qkd_link_ctx *ctx, const char **why);

/* Bind the link's listening socket (Alice: classical, Bob: fiber) before
 * the thread starts, so "address in use" is a startup error. *why set. */
int qkd_link_bind(struct qkd_link_ctx *ctx, const char **why);

/* The link thread: runs until *stop is set (after qkd_link_open). Returns 0
 * after a clean stop. A pthread start routine wrapper is qkd_link_thread. */
int qkd_link_run(struct qkd_link_ctx *ctx);
void *qkd_link_thread(void *ctx);

/* Break the link's blocking socket calls (after *stop was set). */
void qkd_link_interrupt(struct qkd_link_ctx *ctx);

/* Copy the status under the lock. */
void qkd_link_status_get(struct qkd_link_ctx *ctx, struct qkd_link_status *out);

#endif
