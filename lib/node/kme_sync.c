/* kme_sync.c - key manager records crossing the link between rounds
 * (docs/kme.md, "Two nodes").
 *
 * Bob drives the classical channel, so the exchange is his, before every
 * round:
 *   KME_SYNC   B->A  Bob's outbox records
 *   KME_REPLY  A->B  Alice's verdicts on them; Alice's outbox records
 *   KME_ACK    B->A  Bob's verdicts on those
 * A record is the key's coordinates (key_ID, SAE pair, length, segments),
 * never its bits. The receiving end consumes the same segments into its
 * inbox (qkd_store_kme_accept, idempotent) before it answers, and the
 * master's end drops a record from its outbox only on a verdict: a record
 * whose answer is lost is sent again and accepted once. Every message is
 * Wegman-Carter authenticated like all others on the channel.
 * The records' wire format is in kme_wire.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kme_int.h"
#include "kme_wire.h"
#include "node_int.h"

#include "qkd/error.h"
#include "qkd/wire.h"

unsigned node_kme_parity(enum qkd_link_role role)
{
	return role == QKD_ROLE_ALICE ? QKD_KME_PARITY_ALICE : QKD_KME_PARITY_BOB;
}

void node_kme_set_up(struct qkd_link_kme *k, bool up)
{
	pthread_mutex_lock(&k->lock);
	k->up = up;
	pthread_cond_broadcast(&k->settled);	/* waiters give up on a link gone down */
	pthread_mutex_unlock(&k->lock);
}

void node_kme_waiter_add(struct qkd_link_kme *k, struct node_kme_waiter *w)
{
	pthread_mutex_lock(&k->lock);
	w->next = k->waiters;
	k->waiters = w;
	pthread_mutex_unlock(&k->lock);
}

static void waiter_unlink(struct qkd_link_kme *k, struct node_kme_waiter *w)
{
	for (struct node_kme_waiter **p = &k->waiters; *p != NULL; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
}

void node_kme_waiter_remove(struct qkd_link_kme *k, struct node_kme_waiter *w)
{
	pthread_mutex_lock(&k->lock);
	waiter_unlink(k, w);
	pthread_mutex_unlock(&k->lock);
}

int node_kme_wait(struct qkd_link_kme *k, struct node_kme_waiter *w,
		  const struct timespec *deadline)
{
	int rc = 0;

	pthread_mutex_lock(&k->lock);
	while (w->settled < w->n && !w->refused && k->up && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&k->settled, &k->lock, deadline);
	waiter_unlink(k, w);
	pthread_mutex_unlock(&k->lock);
	if (w->refused)
		return QKD_ERR_VERIFY;
	if (w->settled == w->n)
		return QKD_OK;
	return rc == ETIMEDOUT ? QKD_ERR_IO : QKD_ERR_EOF;
}

/* ---- the two halves of a record's life ---- */

/* Whether this node serves rec's pair on this link: the slave is one of
 * its own SAEs and the master an SAE it knows behind this very link. */
static bool deliverable(const struct qkd_link_kme *k, const struct qkd_kme_rec *rec)
{
	bool slave_local = false, master_here = false;

	if (k->cfg == NULL || !k->cfg->enabled)
		return false;
	for (size_t i = 0; i < k->cfg->nsaes; i++) {
		const struct qkd_node_sae *s = &k->cfg->saes[i];

		if (strcmp(s->id, rec->slave) == 0)
			slave_local = s->link < 0;
		if (strcmp(s->id, rec->master) == 0)
			master_here = s->link == k->link_index;
	}
	return slave_local && master_here;
}

/* Take in the peer's records, in one store transaction; a verdict for each. */
static int accept_recs(struct qkd_link_ctx *ctx, struct qkd_store *st,
		       const struct qkd_kme_rec *recs, size_t n, struct node_kme_verdict *out,
		       const char **why)
{
	unsigned peer = node_kme_parity(ctx->cfg->role) ^ 1u;
	bool ok[NODE_KME_BATCH_MAX] = { false };
	enum qkd_kme_verdict v[NODE_KME_BATCH_MAX];
	const char *whys[NODE_KME_BATCH_MAX];
	int rc;

	for (size_t i = 0; i < n; i++)
		ok[i] = deliverable(&ctx->kme, &recs[i]);
	rc = qkd_store_kme_accept_batch(st, peer, recs, n, ok, v, whys, why);
	if (rc != QKD_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		memcpy(out[i].key_id, recs[i].key_id, sizeof out[i].key_id);
		out[i].v = v[i];
		if (v[i] == QKD_KME_REFUSED)
			qkd_logf(ctx->log, QKD_LOG_WARN, "link %s: key record for %s -> %s "
				 "refused: %s", ctx->cfg->name, recs[i].master, recs[i].slave,
				 whys[i] != NULL ? whys[i] : "refused");
	}
	return QKD_OK;
}

/* The peer's verdicts on our records: settled ones leave the outbox, and
 * the enc_keys requests waiting for them learn the outcome. */
static int settle(struct qkd_link_ctx *ctx, struct qkd_store *st, const struct node_kme_verdict *v,
		  size_t n, const char **why)
{
	struct qkd_link_kme *k = &ctx->kme;
	uint8_t ids[NODE_KME_BATCH_MAX][16];
	size_t nids = 0;
	int rc;

	for (size_t i = 0; i < n; i++)
		if (v[i].v != QKD_KME_LATER)
			memcpy(ids[nids++], v[i].key_id, 16);
	rc = qkd_store_kme_outbox_done_batch(st, (const uint8_t (*)[16])ids, nids, why);
	pthread_mutex_lock(&k->lock);
	for (struct node_kme_waiter *w = k->waiters; w != NULL; w = w->next)
		for (size_t i = 0; i < n; i++) {
			if (v[i].v == QKD_KME_LATER)
				continue;
			for (size_t j = 0; j < w->n; j++)
				if (!w->done[j] &&
				    memcmp(w->recs[j].key_id, v[i].key_id, 16) == 0) {
					w->done[j] = true;
					w->settled++;
					w->refused |= v[i].v == QKD_KME_REFUSED;
				}
		}
	pthread_cond_broadcast(&k->settled);
	pthread_mutex_unlock(&k->lock);
	return rc;
}

/* Scratch of one exchange: records in and out, verdicts in and out. */
struct scratch {
	struct qkd_kme_rec out[NODE_KME_BATCH_MAX], in[NODE_KME_BATCH_MAX];
	struct node_kme_verdict vin[NODE_KME_BATCH_MAX], vout[NODE_KME_BATCH_MAX];
	size_t nout, nin, nvin;
	struct qkd_wbuf w;
};

static struct scratch *scratch_new(void)
{
	struct scratch *s = malloc(sizeof *s);

	if (s != NULL) {
		s->nout = s->nin = s->nvin = 0;
		qkd_wbuf_init(&s->w);
	}
	return s;
}

static void scratch_free(struct scratch *s)
{
	if (s != NULL)
		qkd_wbuf_cleanup(&s->w);
	free(s);
}

static int send_w(struct qkd_channel *ch, uint8_t type, struct qkd_wbuf *w)
{
	return w->err != 0 ? w->err : qkd_channel_send(ch, type, w->p, w->len);
}

int node_kme_exchange_bob(struct qkd_link_ctx *ctx, struct qkd_channel *ch,
			  struct qkd_store *st, const char **why)
{
	struct scratch *s = scratch_new();
	struct qkd_rbuf r;
	int rc;

	if (s == NULL)
		return QKD_ERR_NOMEM;
	rc = qkd_store_kme_outbox(st, s->out, NODE_KME_BATCH_MAX, &s->nout, why);
	if (rc == QKD_OK) {
		node_kme_put_recs(&s->w, s->out, s->nout);
		rc = send_w(ch, NODE_MSG_KME_SYNC, &s->w);
	}
	if (rc == QKD_OK)
		rc = qkd_channel_expect(ch, NODE_MSG_KME_REPLY, &r);
	if (rc == QKD_OK) {
		s->nvin = node_kme_get_verdicts(&r, s->vin);
		s->nin = node_kme_get_recs(&r, s->in);
		if (!qkd_rbuf_done(&r)) {
			*why = "malformed KME_REPLY";
			rc = QKD_ERR_PROTO;
		}
	}
	if (rc == QKD_OK)
		rc = settle(ctx, st, s->vin, s->nvin, why);
	if (rc == QKD_OK)
		rc = accept_recs(ctx, st, s->in, s->nin, s->vout, why);
	if (rc == QKD_OK) {
		qkd_wbuf_reset(&s->w);
		node_kme_put_verdicts(&s->w, s->vout, s->nin);
		rc = send_w(ch, NODE_MSG_KME_ACK, &s->w);
	}
	scratch_free(s);
	return rc;
}

int node_kme_serve_alice(struct qkd_link_ctx *ctx, struct qkd_channel *ch,
			 struct qkd_store *st, struct qkd_rbuf *msg, const char **why)
{
	struct scratch *s = scratch_new();
	struct qkd_rbuf r;
	int rc = QKD_OK;

	if (s == NULL)
		return QKD_ERR_NOMEM;
	s->nin = node_kme_get_recs(msg, s->in);
	if (!qkd_rbuf_done(msg)) {
		*why = "malformed KME_SYNC";
		rc = QKD_ERR_PROTO;
	}
	if (rc == QKD_OK)
		rc = accept_recs(ctx, st, s->in, s->nin, s->vout, why);
	if (rc == QKD_OK)
		rc = qkd_store_kme_outbox(st, s->out, NODE_KME_BATCH_MAX, &s->nout, why);
	if (rc == QKD_OK) {
		node_kme_put_verdicts(&s->w, s->vout, s->nin);
		node_kme_put_recs(&s->w, s->out, s->nout);
		rc = send_w(ch, NODE_MSG_KME_REPLY, &s->w);
	}
	if (rc == QKD_OK)
		rc = qkd_channel_expect(ch, NODE_MSG_KME_ACK, &r);
	if (rc == QKD_OK) {
		s->nvin = node_kme_get_verdicts(&r, s->vin);
		if (!qkd_rbuf_done(&r)) {
			*why = "malformed KME_ACK";
			rc = QKD_ERR_PROTO;
		}
	}
	if (rc == QKD_OK)
		rc = settle(ctx, st, s->vin, s->nvin, why);
	scratch_free(s);
	return rc;
}
