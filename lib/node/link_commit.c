/* link_commit.c - recovery of pending blocks at the start of a connection.
 *
 * The commit of a round (docs/node.md): Bob writes the block PENDING and
 * sends COMMIT; Alice writes it PENDING, makes it FINAL and answers
 * COMMIT_ACK; Bob makes it FINAL. So Alice's FINAL is the commit point:
 *   - Bob PENDING, Alice FINAL  -> Bob finalizes;
 *   - Bob PENDING, Alice PENDING or nothing -> both discard;
 *   - Alice PENDING and Bob nothing cannot happen (Bob writes first), and
 *     Alice discards any pending block Bob does not name.
 * After RECOVER both stores hold the same FINAL blocks and no PENDING one.
 * Both messages close their sender's batch, and each end checks the tag
 * before it touches the store. They are the first AUTH frames of a
 * connection, so they also authenticate the handshake (link_handshake.c).
 */
#include "node_int.h"

#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/wire.h"

#define RECOVER_MAX_IDS ((size_t)1 << 20)

struct id_list {
	uint64_t *id;
	size_t n, cap;
	uint64_t max_id;
};

static int collect(const struct qkd_store_block *b, void *ctx)
{
	struct id_list *l = ctx;

	if (b->id > l->max_id)
		l->max_id = b->id;
	if (b->state != QKD_STORE_PENDING)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		uint64_t *p = cap <= RECOVER_MAX_IDS ? realloc(l->id, cap * sizeof *p) : NULL;

		if (p == NULL)
			return QKD_ERR_NOMEM;
		l->id = p;
		l->cap = cap;
	}
	l->id[l->n++] = b->id;
	return 0;
}

static int pending_ids(struct qkd_store *st, struct id_list *l)
{
	memset(l, 0, sizeof *l);
	return qkd_store_list(st, collect, l, NULL, NULL);
}

int node_recover_bob(struct qkd_channel *ch, struct qkd_store *st, uint64_t *next_id,
		     const char **why)
{
	struct qkd_bits verdict = {0};
	struct id_list l;
	struct qkd_wbuf w;
	struct qkd_rbuf r;
	uint64_t alice_max;
	int rc;

	qkd_wbuf_init(&w);
	rc = pending_ids(st, &l);
	if (rc != QKD_OK) {
		*why = "cannot list the key store";
		goto out;
	}
	qkd_put_varint(&w, l.max_id);
	qkd_put_varint(&w, l.n);
	for (size_t i = 0; i < l.n; i++)
		qkd_put_varint(&w, l.id[i]);
	rc = w.err ? w.err : qkd_channel_send_sealed(ch, NODE_MSG_RECOVER, w.p, w.len);
	if (rc == QKD_OK)
		rc = qkd_channel_expect(ch, NODE_MSG_RECOVER_REPLY, &r);
	if (rc == QKD_OK)
		rc = qkd_channel_expect_seal(ch);
	if (rc != QKD_OK) {
		*why = "recovery exchange failed";
		goto out;
	}
	alice_max = qkd_get_varint(&r);
	rc = qkd_get_bits(&r, &verdict, l.n);
	if (rc != QKD_OK || verdict.n != l.n || !qkd_rbuf_done(&r)) {
		*why = "malformed RECOVER_REPLY";
		rc = QKD_ERR_PROTO;
		goto out;
	}
	for (size_t i = 0; rc == QKD_OK && i < l.n; i++)
		rc = qkd_bits_get(&verdict, i) ? qkd_store_finalize(st, l.id[i], why)
					       : qkd_store_discard(st, l.id[i], why);
	*next_id = (alice_max > l.max_id ? alice_max : l.max_id) + 1;
out:
	free(l.id);
	qkd_bits_cleanup(&verdict);
	qkd_wbuf_cleanup(&w);
	return rc;
}

/* Alice's verdict on one id Bob holds pending. */
static int alice_verdict(struct qkd_store *st, uint64_t id, unsigned *final, const char **why)
{
	struct qkd_store_block b;
	bool found = false;
	int rc = qkd_store_lookup(st, id, &b, &found, why);

	*final = 0;
	if (rc != QKD_OK)
		return rc;
	if (found && b.state != QKD_STORE_PENDING) {
		*final = 1;
		return QKD_OK;
	}
	return found ? qkd_store_discard(st, id, why) : QKD_OK;
}

int node_recover_alice(struct qkd_channel *ch, struct qkd_store *st, const char **why)
{
	struct qkd_bits verdict = {0};
	struct id_list mine;
	struct qkd_rbuf r;
	struct qkd_wbuf w;
	uint64_t n;
	int rc;

	qkd_wbuf_init(&w);
	memset(&mine, 0, sizeof mine);
	rc = qkd_channel_expect(ch, NODE_MSG_RECOVER, &r);
	if (rc == QKD_OK)
		rc = qkd_channel_expect_seal(ch);
	if (rc != QKD_OK) {
		*why = "recovery exchange failed";
		goto out;
	}
	(void)qkd_get_varint(&r);	/* Bob's largest id: he picks the next one */
	n = qkd_get_count(&r, RECOVER_MAX_IDS);
	rc = qkd_rbuf_ok(&r) ? qkd_bits_init(&verdict, (size_t)n) : QKD_ERR_PROTO;
	for (uint64_t i = 0; rc == QKD_OK && i < n; i++) {
		uint64_t id = qkd_get_varint(&r);
		unsigned fin;

		rc = qkd_rbuf_ok(&r) ? alice_verdict(st, id, &fin, why) : QKD_ERR_PROTO;
		if (rc == QKD_OK)
			qkd_bits_set(&verdict, (size_t)i, fin);
	}
	if (rc == QKD_OK && !qkd_rbuf_done(&r))
		rc = QKD_ERR_PROTO;
	/* Any block still pending here was never named by Bob: never final. */
	if (rc == QKD_OK && (rc = pending_ids(st, &mine)) == QKD_OK)
		for (size_t i = 0; rc == QKD_OK && i < mine.n; i++)
			rc = qkd_store_discard(st, mine.id[i], why);
	if (rc == QKD_OK) {
		qkd_put_varint(&w, mine.max_id);
		qkd_put_bits(&w, &verdict);
		rc = w.err ? w.err : qkd_channel_send_sealed(ch, NODE_MSG_RECOVER_REPLY, w.p, w.len);
	}
	if (rc == QKD_ERR_PROTO && *why == NULL)
		*why = "malformed RECOVER";
out:
	free(mine.id);
	qkd_bits_cleanup(&verdict);
	qkd_wbuf_cleanup(&w);
	return rc;
}
