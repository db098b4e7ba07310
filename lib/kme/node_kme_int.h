/* node_kme_int.h - private to the node's key manager: what its connection
 * threads (lib/kme/node_kme.c), its lifecycle thread (node_kme_janitor.c)
 * and the link thread (lib/kme/kme_sync.c) share about keys issued here
 * and waiting for the peer's verdict. */
#ifndef QKD_NODE_KME_INT_H
#define QKD_NODE_KME_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "../node/node_int.h"

#include "qkd/kme_server.h"
#include "qkd/kme_store.h"

/* One enc_keys request waiting for the peer to settle its keys. */
struct node_kme_waiter {
	struct node_kme_waiter *next;
	const struct qkd_kme_rec *recs;
	size_t n;
	bool *done;			/* per record: its verdict arrived */
	size_t settled;			/* records done */
	bool refused;
};

/* Register w: from now on the link thread marks its records settled as
 * their verdicts arrive. Register before the records can reach the
 * outbox, or a verdict could come before anyone listens for it. */
void node_kme_waiter_add(struct qkd_link_kme *k, struct node_kme_waiter *w);
/* Unregister w without waiting (its records never reached the outbox). */
void node_kme_waiter_remove(struct qkd_link_kme *k, struct node_kme_waiter *w);

/* Wait until all of w's records are settled, the link goes down or the
 * deadline (CLOCK_MONOTONIC) passes, then unregister w. 0 when every key
 * was accepted; QKD_ERR_VERIFY when one was refused; QKD_ERR_IO when time
 * ran out, QKD_ERR_EOF when the link went down (the keys stay in the
 * outbox either way: the peer still consumes their bits when the link is
 * back, and nobody can ask for them). */
int node_kme_wait(struct qkd_link_kme *k, struct node_kme_waiter *w,
		  const struct timespec *deadline);

/* A link's store handle in the key manager: one thread at a time. */
struct node_kme_slot {
	pthread_mutex_t lock;
	struct qkd_store *st;		/* NULL: no remote SAE behind this link */
};

/* Tombstones are kept at least this long (docs/kme.md, "Key lifecycle"):
 * far longer than any record is sent again (sync_timeout, at most 300 s),
 * and a day of history for an operator. */
#define NODE_KME_PRUNE_AGE_S 86400u

/* The key manager's lifecycle thread (node_kme_janitor.c): every
 * node_kme_janitor_period(ttl_s) seconds it expires each slot's ready keys
 * older than ttl_s, prunes spent tombstones, and puts the counts in the
 * links' status. */
struct node_kme_janitor {
	struct node_kme_slot *slots;	/* [nlinks], borrowed */
	struct qkd_link_ctx *links;	/* [nlinks], borrowed */
	size_t nlinks;
	unsigned ttl_s;			/* 0: keys never expire, pruning still runs */
	const struct qkd_logger *log;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop, running;
};

/* Seconds between passes: min(60, ttl_s / 4), at least 1; 60 for ttl 0. */
unsigned node_kme_janitor_period(unsigned ttl_s);
/* One pass over every slot at wall time now (seconds since 1970). */
void node_kme_janitor_pass(struct node_kme_janitor *j, int64_t now);
/* Start the thread (j's first fields set, the rest zeroed); 0 or
 * QKD_ERR_NOMEM. Stop: wake it, join it; accepts one never started. */
__attribute__((warn_unused_result))
int node_kme_janitor_start(struct node_kme_janitor *j);
void node_kme_janitor_stop(struct node_kme_janitor *j);

/* The key manager of a node (kme_node.c), which the node object (node.c)
 * starts and stops: ETSI GS QKD 014 over mutual TLS (qkd/kme_server.h),
 * serving keys cut from the node's links' key stores and agreed with the
 * KME at each link's other end (docs/kme.md, "Two nodes"). Local SAEs (the
 * `kme` group's saes with a cn) are the callers; a remote SAE names the
 * link its KME is behind. enc_keys, by a local master for a remote slave,
 * cuts keys from this end's half of that link's blocks and returns once
 * the peer KME holds them in its inbox (or fails with 503 after
 * sync_timeout). dec_keys, by a local slave for a remote master, hands out
 * once the keys the peer issued for that pair. */
struct qkd_node_kme_server;

/* Keys for SAEs attached to nodes that are not neighbours: the node's
 * relay (lib/node/node_relay.c, docs/relay.md "In the key manager"). The
 * key manager asks it when a request names an SAE its configuration does
 * not list. serves: whether some other node advertises sae. enc, dec and
 * status: as the provider's (qkd/etsi014.h), for such pairs. */
struct node_kme_relay {
	bool (*serves)(void *ctx, const char *sae);
	int (*enc)(void *ctx, const char *master, const char *slave, uint32_t number,
		   uint32_t size_bits, struct qkd_etsi014_key *keys, const char **why);
	int (*dec)(void *ctx, const char *master, const char *slave, struct qkd_etsi014_key *keys,
		   size_t n, size_t *bad, const char **why);
	int (*status)(void *ctx, const char *slave, uint32_t key_size,
		      struct qkd_etsi014_counts *counts, const char **why);
	void *ctx;
};

/* Start the key manager of cfg (cfg->kme.enabled) over links[0 ..
 * cfg->nlinks), whose contexts are initialized and whose threads have not
 * started: it sets each links[i].kme.cfg. cfg, links and log must outlive
 * the server. 0 with *out running, or an error with *why (static text). */
__attribute__((warn_unused_result))
int qkd_node_kme_start(struct qkd_node_kme_server **out, const struct qkd_node_config *cfg,
		       struct qkd_link_ctx *links, const struct node_kme_relay *relay,
		       const struct qkd_logger *log, const char **why);

/* The HTTPS port (the configured one). */
uint16_t qkd_node_kme_port(const struct qkd_node_kme_server *k);

/* Its HTTPS server's counters (qkd_kme_server_counters), for the node's
 * metrics. Any thread, while k runs. */
void qkd_node_kme_counters(const struct qkd_node_kme_server *k, struct qkd_kme_counters *out);

/* Stop serving (requests in progress complete), close the stores, free.
 * Accepts NULL. */
void qkd_node_kme_stop(struct qkd_node_kme_server *k);

#endif
