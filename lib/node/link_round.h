/* link_round.h - private to lib/node: one round of a link (link_round.c). */
#ifndef QKD_LINK_ROUND_H
#define QKD_LINK_ROUND_H

#include "node_int.h"

#include "qkd/engine.h"

struct round_env {
	const struct qkd_link_config *cfg;
	struct qkd_engine_config engine;	/* cfg's, with the link's QBER so far */
	struct qkd_channel *ch;
	int fiber_fd;
	struct qkd_store *store;
	struct node_auth *auth;
	/* Results of the round. */
	struct qkd_engine_stats st;	/* this party's engine statistics */
	bool engine_ran;
	uint64_t stored_bits;		/* the block's bits, 0 for none */
	uint64_t refill_bits;		/* the round's key that refilled the pads */
	uint64_t auth_bits;		/* pads the round spent, both directions */
	const char *why;		/* static reason of a failure, or NULL */
};

/* Bob: run round id. Alice: answer the ROUND message msg (its payload). */
int round_bob(struct round_env *env, uint64_t id);
int round_alice(struct round_env *env, struct qkd_rbuf *msg);

#endif
