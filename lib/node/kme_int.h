/* kme_int.h - private to lib/node: what the key manager's connection
 * threads (kme_node.c) and the link thread (kme_sync.c) share about keys
 * issued here and waiting for the peer's verdict. */
#ifndef QKD_NODE_KME_INT_H
#define QKD_NODE_KME_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "qkd/kme_store.h"
#include "qkd/node.h"

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

#endif
