/* relay_int.h - the relay agent's state, shared by relay.c (links, LSAs,
 * routes, timers) and relay_key.c (key relay as source, relay and
 * destination). Internal to libqkd; the API is qkd/relay.h. */
#ifndef QKD_RELAY_INT_H
#define QKD_RELAY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/relay.h"
#include "qkd/rng.h"
#include "qkd/wire.h"

/* Links a source may be told to avoid while it retries one key. */
#define RELAY_AVOID_MAX 8
#define RELAY_SETTLED_MAX 256

/* One link, by its far end. */
struct relay_nb {
	char id[QKD_NODE_NAME_MAX];
	bool up, alarmed;
	double qber;
	uint64_t stored, available, rate;
	uint64_t adv_available;		/* what the last LSA said */
};

/* A key this node started and has not settled (relay_key.c). */
struct relay_src {
	bool used;
	uint8_t key_id[16];
	char master[QKD_LSA_SAE_ID_MAX + 1], slave[QKD_LSA_SAE_ID_MAX + 1];
	char dest[QKD_NODE_NAME_MAX];
	uint8_t *key;			/* secret, nbits / 8 bytes */
	uint32_t nbits;
	unsigned shares_wanted;		/* the policy: 1 or 2 */
	unsigned shares;		/* of the current attempt */
	unsigned attempt;
	unsigned hops;			/* links on the current attempt's longest path */
	double deadline;
	bool retry;			/* try again at the next tick (a first hop went down) */
	bool sent;			/* a share went out: withdraw the key if it fails */
	char first_hop[QKD_RELAY_SHARES_MAX][QKD_NODE_NAME_MAX];
	size_t n_avoid;
	char avoid[RELAY_AVOID_MAX][2][QKD_NODE_NAME_MAX];
};

/* Shares arriving at this node as the destination of one attempt. */
struct relay_dst {
	bool used;
	uint8_t key_id[16];
	uint8_t attempt, shares, got;	/* got: a bit per share received */
	uint32_t nbits;
	uint8_t *acc;			/* secret: XOR of the shares so far */
	double expires;
};

struct qkd_relay {
	char self[QKD_NODE_NAME_MAX];
	size_t n_saes;
	char saes[QKD_LSA_SAES_MAX][QKD_LSA_SAE_ID_MAX + 1];
	struct qkd_relay_config cfg;	/* copied; its pointers to ids are not kept */
	size_t n_nb;
	struct relay_nb nb[QKD_LSA_LINKS_MAX];
	struct qkd_lsdb *db;
	struct qkd_routes *routes;
	uint64_t routes_version;	/* qkd_lsdb_version when routes were computed */
	uint64_t seq;			/* of the last own LSA */
	double last_lsa;		/* when it was made; -inf before the first */
	bool lsa_due;			/* a key change waits for lsa_interval_s */
	struct relay_src *src;		/* cfg.relays_max each */
	struct relay_dst *dst;
	struct qkd_rng rng;		/* shares */
	struct qkd_wbuf out;		/* encoding scratch */
	struct qkd_relay_key_msg *msg;	/* decoding scratch (large, secret) */
	struct qkd_relay_stats st;
	/* Key_IDs settled lately, so a second completion (an attempt that
	 * raced its retry) is not taken for a forged one. */
	uint8_t settled[RELAY_SETTLED_MAX][16];
	size_t settled_next;
	/* Key_IDs withdrawn at this node as destination, so a share still in
	 * flight does not bring the key back. */
	uint8_t withdrawn[RELAY_SETTLED_MAX][16];
	size_t withdrawn_next;
};

double relay_now(const struct qkd_relay *r);
struct relay_nb *relay_nb_find(struct qkd_relay *r, const char *id);
bool relay_sae_local(const struct qkd_relay *r, const char *sae);
/* Routes recomputed if the database changed since the last time. */
void relay_routes_refresh(struct qkd_relay *r);
/* Send what r->out holds to neighbour; false (logged) when not queued. */
bool relay_send_out(struct qkd_relay *r, const char *neighbour, uint8_t type);

/* relay_key.c */
int relay_key_receive(struct qkd_relay *r, const char *from, uint8_t type, const uint8_t *body,
		      size_t len, const char **why);
void relay_key_tick(struct qkd_relay *r);
void relay_key_link_down(struct qkd_relay *r, const char *neighbour);
void relay_key_free_all(struct qkd_relay *r);

#endif
