/* node_int.h - private to lib/node: the link daemon's pieces. */
#ifndef QKD_NODE_INT_H
#define QKD_NODE_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/auth_wc.h"
#include "qkd/channel.h"
#include "qkd/keystore.h"
#include "qkd/node.h"

/* Frames of authentication key leased ahead: the state on disk always
 * claims every seq below the lease is used, so a restart never reuses a pad
 * (docs/node.md). A crash costs at most this many pads per direction. */
#define NODE_AUTH_LEASE 512
/* Largest forward jump of a sequence number a peer may ask for at SYNC. */
#define NODE_MAX_SEQ_JUMP ((uint64_t)1 << 20)
/* Socket timeouts: a peer silent this long is gone. */
#define NODE_IO_TIMEOUT_S 10

/* Control messages of the node on the classical channel (after the
 * engine's types, qkd/msg.h). */
enum node_msg {
	NODE_MSG_RECOVER = 32,		/* B->A: Bob's pending block ids, his largest id */
	NODE_MSG_RECOVER_REPLY = 33,	/* A->B: final or discard per id, her largest id */
	NODE_MSG_ROUND = 34,		/* B->A: round id, pulses, auth bits to take */
	NODE_MSG_ROUND_ACK = 35,	/* A->B: ready; the photon frames follow on the fiber */
	NODE_MSG_COMMIT = 36,		/* B->A: Bob holds block id (pending), its length */
	NODE_MSG_COMMIT_ACK = 37,	/* A->B: Alice has made it final */
	NODE_MSG_ROUND_END = 38,	/* B->A: the round ended without a block */
	NODE_MSG_KME_SYNC = 39,		/* B->A: Bob's key records (kme_sync.c) */
	NODE_MSG_KME_REPLY = 40,	/* A->B: verdicts on them; Alice's records */
	NODE_MSG_KME_ACK = 41,		/* B->A: verdicts on Alice's records */
};

/* The authentication state of a link, persisted next to its store. */
struct node_auth {
	char path[QKD_NODE_PATH_MAX + 8];
	struct qkd_wc *wc;
	uint64_t lease_send, lease_recv;	/* seqs claimed used on disk */
	uint64_t replenished_through;		/* last round whose key refilled the pool */
	uint64_t tentative_round;		/* 0: none */
	uint8_t *tentative;			/* secret: that round's auth bits */
	size_t tentative_len;
	bool save_failed;
};

/* Load PATH.auth, or create it from the bootstrap key file when it does not
 * exist and the store holds no block yet (a store with blocks but no auth
 * state would mean reusing the bootstrap key: refused). *why on failure. */
int node_auth_open(struct node_auth *a, const struct qkd_link_config *cfg,
		   struct qkd_store *store, const char **why);
void node_auth_close(struct node_auth *a);
/* Atomic save (temp file, fsync, rename, fsync of the directory). */
int node_auth_save(struct node_auth *a);
/* Record a round's authentication bits before its block may become final. */
int node_auth_set_tentative(struct node_auth *a, uint64_t round, const uint8_t *bits, size_t len);
/* The round's block is final: move its bits into the pad pool. */
int node_auth_apply(struct node_auth *a, uint64_t round);
/* Resolve a tentative round after recovery: applied if its block is FINAL
 * in the store, dropped otherwise. */
int node_auth_resolve(struct node_auth *a, struct qkd_store *store);
/* The auth ops for qkd_channel: Wegman-Carter behind the lease. */
extern const struct qkd_auth_ops node_auth_ops;

/* Sockets (link_net.c). Each returns an fd or -1 with *why set. */
int node_listen(const struct qkd_node_addr *a, const char **why);
/* Wait for a connection on lfd; -1 when stop is set (why "stopped") or
 * after timeout_s seconds (0: no limit). */
int node_accept(int lfd, atomic_bool *stop, int timeout_s, const char **why);
/* Connect, retrying every second until stop is set. */
int node_connect(const struct qkd_node_addr *a, atomic_bool *stop, const char **why);
void node_set_timeouts(int fd);

/* SYNC (link_sync.c): the unauthenticated opening of a connection that
 * aligns sequence numbers after a restart; then the channel is set up. */
int node_sync(int fd, struct node_auth *a, const struct qkd_link_config *cfg,
	      struct qkd_channel *ch, const char **why);

/* Recovery (link_commit.c): make both stores agree on every pending block. */
int node_recover_bob(struct qkd_channel *ch, struct qkd_store *st, uint64_t *next_id,
		     const char **why);
int node_recover_alice(struct qkd_channel *ch, struct qkd_store *st, const char **why);

/* Key manager records between rounds (kme_sync.c, docs/kme.md). Bob runs
 * the exchange before each round; Alice answers a KME_SYNC received where
 * she waits for a ROUND. Both also run one at every checkpoint of a
 * round's pulses: after each fiber frame that ends a multiple of
 * NODE_KME_CHECKPOINT_SLOTS slots, except the last, Alice stops sending
 * and waits for Bob's KME_SYNC, and Bob sends it once he has read that
 * frame. A record then waits for a checkpoint or the end of the round,
 * whichever comes first, not for a whole round. */
#define NODE_KME_CHECKPOINT_SLOTS ((uint64_t)1 << 24)
int node_kme_exchange_bob(struct qkd_link_ctx *ctx, struct qkd_channel *ch,
			  struct qkd_store *st, const char **why);
int node_kme_serve_alice(struct qkd_link_ctx *ctx, struct qkd_channel *ch,
			 struct qkd_store *st, struct qkd_rbuf *msg, const char **why);
/* The parity of the blocks an end cuts keys from (qkd/kme_store.h). */
unsigned node_kme_parity(enum qkd_link_role role);
/* The link is (not) connected: enc_keys refuses at once while it is not. */
void node_kme_set_up(struct qkd_link_kme *k, bool up);

#endif
