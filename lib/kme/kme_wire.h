/* kme_wire.h - private to lib/node: the key manager's records and
 * verdicts as they cross the link (kme_wire.c; docs/kme.md). */
#ifndef QKD_NODE_KME_WIRE_H
#define QKD_NODE_KME_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "qkd/kme_store.h"
#include "qkd/wire.h"

/* Records per KME message: bounds a message to about 150 KiB. */
#define NODE_KME_BATCH_MAX 512

struct node_kme_verdict {
	uint8_t key_id[16];
	enum qkd_kme_verdict v;
};

/* The answer to a withdrawal (qkd_store_kme_withdraw_batch). */
struct node_kme_wd {
	uint8_t key_id[16];
	enum qkd_kme_withdraw_verdict v;
};

/* n <= NODE_KME_BATCH_MAX records / verdicts onto w. */
void node_kme_put_recs(struct qkd_wbuf *w, const struct qkd_kme_rec *recs, size_t n);
void node_kme_put_verdicts(struct qkd_wbuf *w, const struct node_kme_verdict *v, size_t n);
/* Read into out (room for NODE_KME_BATCH_MAX) and return the count; on a
 * malformed input r fails (qkd_rbuf_ok false) and 0 is returned. Only the
 * format's bounds are checked here; the store checks what records say. */
size_t node_kme_get_recs(struct qkd_rbuf *r, struct qkd_kme_rec *out);
size_t node_kme_get_verdicts(struct qkd_rbuf *r, struct node_kme_verdict *out);
/* Withdrawals (keys the master gave up on: key_id and the segments it had,
 * nsegs 0 for a key already settled; the other fields are not sent), their
 * answers, and block ids quarantined at the sender (docs/keystore.md,
 * "Digests"); the same bound and conventions. */
void node_kme_put_withdrawals(struct qkd_wbuf *w, const struct qkd_kme_rec *recs, size_t n);
size_t node_kme_get_withdrawals(struct qkd_rbuf *r, struct qkd_kme_rec *out);
void node_kme_put_wds(struct qkd_wbuf *w, const struct node_kme_wd *v, size_t n);
size_t node_kme_get_wds(struct qkd_rbuf *r, struct node_kme_wd *out);
void node_kme_put_blocks(struct qkd_wbuf *w, const uint64_t *ids, size_t n);
size_t node_kme_get_blocks(struct qkd_rbuf *r, uint64_t *out);

#endif
