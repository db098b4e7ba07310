/* node_int.h - private to lib/node: the link daemon's pieces. A link's
 * context (struct qkd_link_ctx) and its side of the key manager live here,
 * not in qkd/node.h, because they carry locks and the link thread's own
 * state: the node object (node.c) owns them, and everything outside
 * lib/node sees a link through qkd_node_link_status and friends. */
#ifndef QKD_NODE_INT_H
#define QKD_NODE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/auth_wc.h"
#include "qkd/channel.h"
#include "qkd/keystore.h"
#include "qkd/node.h"

/* AUTH frames leased ahead: the state on disk always claims every index
 * below the lease is used, so a restart never reuses a pad (docs/node.md).
 * A crash costs at most this many pads of the sending direction. */
#define NODE_AUTH_LEASE 16
/* Largest forward jump of an AUTH index the handshake accepts: what a
 * peer's crash can explain (its lease, and AUTH frames sent but never
 * checked here), with room to spare. More is refused before any pad is
 * touched. */
#define NODE_MAX_AUTH_JUMP 128
/* The handshake's MAC key (link_handshake.c): the first bytes of the
 * bootstrap key file. */
#define NODE_GATE_KEY_LEN 32
/* Socket timeouts within a session: a peer silent this long is gone. A
 * crashed peer is seen at once (its connection closes); this is for one
 * that hangs, and must outlast a busy peer's longest computation (Alice
 * preparing a chunk of 5e8 pulses on a loaded machine took over 10 s). */
#define NODE_IO_TIMEOUT_S 30
/* How long a node waits for its peer to turn up: Bob for the fiber after
 * the handshake, Alice to reach Bob's fiber port, Bob for Alice's HELLO.
 * Then it starts over, so a connection a relay took and dropped never
 * leaves both ends waiting for each other. */
#define NODE_PEER_WAIT_S 10
/* A connection that has not finished its handshake within this is
 * dropped, so a stranger sitting on a port delays the link this long at
 * most. */
#define NODE_HANDSHAKE_TIMEOUT_S 2

struct node_kme_waiter;
struct node_kme_service;
struct node_auth;
struct qkd_mux;
struct qkd_store;

/* The link's side of its node's key manager (docs/kme.md, "Coordination
 * between nodes"): whether the link is connected, and the enc_keys
 * requests waiting for the peer's verdict on their keys. Shared by the
 * link thread and the key manager's connection threads, under lock. */
struct qkd_link_kme {
	pthread_mutex_t lock;
	pthread_cond_t settled;			/* broadcast when verdicts arrive */
	bool up;				/* connected, recovered: records can cross */
	struct node_kme_waiter *waiters;
	const struct qkd_node_kme *cfg;		/* NULL: this node has no key manager */
	int link_index;				/* this link's index in the node's links */
	struct node_kme_service *svc;		/* the link's KME service (kme_sync.c) */
};

/* One link of a node (link.c), owned by the node object (node.c), which
 * keeps it in place while the key manager holds pointers into it. */
struct qkd_link_ctx {
	const struct qkd_link_config *cfg;
	const struct qkd_logger *log;
	atomic_bool *stop;		/* the node's, set by qkd_node_stop */
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
	/* 39 .. 41 were the key manager's lockstep exchange, now a service
	 * (qkd/mux.h, kme_sync.c): never reused, so an old peer is refused. */
	NODE_MSG_HELLO = 42,		/* both: the handshake's nonces (link_handshake.c) */
	NODE_MSG_SYNC = 43,		/* both: settings and AUTH index, gate MAC */
};

/* The authentication state of a link, persisted next to its store
 * (auth_file.c). */
struct node_auth {
	char path[QKD_NODE_PATH_MAX + 8];
	struct qkd_wc *wc;
	uint8_t gate[NODE_GATE_KEY_LEN];	/* secret: the handshake's MAC key */
	uint64_t lease_send;			/* AUTH indexes below it claimed used on disk */
	uint64_t replenished_through;		/* last block whose key refilled the pool */
	uint64_t tentative_round;		/* 0: none */
	uint8_t *tentative;			/* secret: that round's auth bits */
	size_t tentative_len;
	int save_err;				/* the last save's result */
};

/* The file's bytes (auth_file.c): node_auth_encode appends the image of
 * a, checksum included, to w (a secret qkd_wbuf; w->err on failure).
 * node_auth_decode reads buf[0..len) into a, which the caller zeroed (or
 * whose path alone is set); it only reads buf. On success a->wc and
 * a->tentative are new (node_auth_close frees them) and *why is NULL; on
 * failure neither is set (nothing to free), the other fields are
 * unspecified, and *why says why: QKD_ERR_PROTO for a corrupt file or one
 * of format 1, QKD_ERR_NOMEM. */
void node_auth_encode(const struct node_auth *a, struct qkd_wbuf *w);
__attribute__((warn_unused_result))
int node_auth_decode(struct node_auth *a, const uint8_t *buf, size_t len, const char **why);
/* Load STORE.auth into a (zeroed first). *found false (and 0 returned)
 * when there is none. A file of the older format 1 is refused with a why
 * that says what to do. */
int node_auth_load(struct node_auth *a, const struct qkd_link_config *cfg, bool *found,
		   const char **why);
/* Make STORE.auth from the bootstrap key file (gate key, then the
 * Wegman-Carter bootstrap), for a store that holds no block yet: one with
 * blocks would mean reusing the bootstrap key (refused). */
int node_auth_create(struct node_auth *a, const struct qkd_link_config *cfg,
		     struct qkd_store *store, const char **why);
/* A store and its authentication state must share their past: refused when
 * the store lacks the blocks the state shows committed (emptied, truncated,
 * an older copy) or holds committed blocks the state does not know (the
 * state restored from a backup would reuse pads). */
int node_auth_check_store(const struct node_auth *a, struct qkd_store *store, const char **why);
void node_auth_close(struct node_auth *a);
/* Atomic save (temp file, fsync, rename, fsync of the directory). A full
 * disk is QKD_ERR_NOSPACE, a read-only one QKD_ERR_READONLY; the file on
 * disk is then the previous one, and so is what may be used. */
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
/* Connect, retrying every half second until stop is set or timeout_s
 * seconds have passed (0: no limit). */
int node_connect(const struct qkd_node_addr *a, atomic_bool *stop, int timeout_s,
		 const char **why);
/* Receive and send timeouts of a connected socket. */
void node_set_timeouts_s(int fd, int seconds);
/* A connection's options: the I/O timeouts, and TCP_NODELAY (Cascade's
 * round trips must not wait for Nagle). */
void node_tune_socket(int fd);

/* The store of a link (link_store.c): opened for the daemon, locked
 * against a second node on the same file; must_exist when the link has a
 * past (a missing or empty file is then refused, never made anew). */
int node_store_open(struct qkd_store **out, const char *path, bool must_exist, const char **why);
/* Whether the disk under the store takes writes again after a fault: the
 * store file opens for writing and a scratch file beside it can be
 * written and synced. QKD_ERR_NOSPACE / QKD_ERR_READONLY otherwise. */
int node_disk_probe(const char *store_path);

/* The opening of a classical connection (link_handshake.c): nonces, the
 * gate (a MAC with the gate key, so a stranger learns nothing and moves no
 * pad), then SYNC, which aligns the AUTH indexes. On success ch is set up
 * on fd, bound to the session id, and session (QKD_CHANNEL_SESSION_LEN
 * bytes) holds it, for the fiber; on failure ch is already cleaned up.
 * *stranger is set when the peer failed the gate or the handshake's form
 * (not the link's peer). */
/* Unless peer_id is NULL, the peer's node id from its SYNC goes there
 * (QKD_NODE_NAME_MAX bytes; "" when no SYNC passed the gate), whether or
 * not the handshake then succeeds, so a refusal can name it. */
int node_handshake(int fd, struct node_auth *a, const struct qkd_link_config *cfg,
		   struct qkd_channel *ch, uint8_t *session, bool *stranger, const char **why,
		   char *peer_id);
/* The SYNC message's fields (link_sync.c, docs/node.md "The handshake"),
 * after its MAC: the sender's settings and the index of the next AUTH
 * frame it will send. */
#define NODE_SYNC_VERSION 5
#define NODE_SYNC_FIELDS_LEN (2 + 2 * QKD_NODE_NAME_MAX + 8 + 8 + 4)
struct node_sync_fields {
	uint8_t version, role;
	char name[QKD_NODE_NAME_MAX];	/* the link's name, NUL-terminated */
	char node[QKD_NODE_NAME_MAX];	/* the sender's node id, NUL-terminated */
	uint64_t reserve, pulses;	/* auth_reserve_bits, round_pulses */
	uint32_t index;			/* next AUTH index of the sender */
};
/* Append f's NODE_SYNC_FIELDS_LEN bytes to w (w->err on failure). */
void node_sync_put(struct qkd_wbuf *w, const struct node_sync_fields *f);
/* Read fields from r, which must hold exactly NODE_SYNC_FIELDS_LEN bytes:
 * QKD_ERR_PROTO otherwise. The name is cut at its last byte, so it is
 * always NUL-terminated. */
__attribute__((warn_unused_result))
int node_sync_get(struct qkd_rbuf *r, struct node_sync_fields *f);
/* Whether the peer's fields may open a session with this end's (mine):
 * NULL when they may, else why not. The settings must match (version,
 * the other role, name, reserve, pulses), and the peer's index must lie in
 * [next, next + min(NODE_MAX_AUTH_JUMP + 1, held)), next and held being
 * this end's next receive index and its receive pads held. A pure
 * function: no pad is touched. */
const char *node_sync_check(const struct node_sync_fields *mine,
			    const struct node_sync_fields *peer, uint64_t next, uint64_t held);
/* Whether the peer is the node this end expects: NULL when it is, else why
 * not. Its id must differ from this end's (mine->node: two nodes with one
 * id) and equal want unless want is "" (the link has no `peer`). Pure. */
const char *node_sync_check_node(const struct node_sync_fields *mine,
				 const struct node_sync_fields *peer, const char *want);
/* The fiber's first bytes (link_handshake.c): Alice sends the session id
 * and its MAC; Bob accepts fiber connections until one shows them, and
 * drops the others. */
int node_fiber_hello_send(int fd, const struct node_auth *a, const uint8_t *session);
bool node_fiber_hello_ok(int fd, const struct node_auth *a, const uint8_t *session);
/* The highest id of a committed block (FINAL or USED; 0 if none). */
int node_store_last_final(struct qkd_store *st, struct qkd_store_block *out, const char **why);

/* Recovery (link_commit.c): make both stores agree on every pending block. */
int node_recover_bob(struct qkd_channel *ch, struct qkd_store *st, uint64_t *next_id,
		     const char **why);
int node_recover_alice(struct qkd_channel *ch, struct qkd_store *st, const char **why);

/* The key manager's service on a link's multiplexer (kme_sync.c,
 * docs/kme.md "Two nodes"): registered on m for ctx's link, with ctx's
 * store handle (the link thread's) and ctx->kme's waiters. */
struct node_kme_service;
int node_kme_service_new(struct qkd_link_ctx *ctx, struct qkd_mux *m,
			 struct node_kme_service **out);
void node_kme_service_free(struct node_kme_service *k);
/* Any thread: the outbox changed (keys cut, withdrawn); send soon. */
void node_kme_kick(struct qkd_link_kme *k);
/* Nothing in flight, nothing known to be waiting (tests). */
bool node_kme_service_idle(const struct node_kme_service *k);
/* The parity of the blocks an end cuts keys from (qkd/kme_store.h). */
unsigned node_kme_parity(enum qkd_link_role role);
/* The link is (not) connected: enc_keys refuses at once while it is not. */
void node_kme_set_up(struct qkd_link_kme *k, bool up);

#endif
