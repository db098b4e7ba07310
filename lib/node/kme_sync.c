/* kme_sync.c - key manager records crossing the link between rounds
 * (docs/kme.md, "Two nodes").
 *
 * Bob drives the classical channel, so the exchange is his, before every
 * round:
 *   KME_SYNC   B->A  Bob's batch: outbox records, withdrawals, quarantines
 *   KME_REPLY  A->B  Alice's answers to it; Alice's batch
 *   KME_ACK    B->A  Bob's answers to that
 * A record is the key's coordinates (key_ID, SAE pair, length, segments),
 * never its bits. A withdrawal names a key whose master gave up on it
 * (enc_keys answered 503 after its timeout): the slave's end retires its
 * copy, so no key stays deliverable that its master never handed out. A
 * quarantine names a block whose bits failed their digest at the sender:
 * the receiver retires it too, so both stores keep the same blocks. The receiving end consumes the same segments into its
 * inbox (qkd_store_kme_accept, idempotent) before it answers, and the
 * master's end drops a record from its outbox only on a verdict: a record
 * whose answer is lost is sent again and accepted once. A message that
 * carries records or verdicts closes its sender's batch, and the receiver
 * checks that tag before it acts on them (qkd/channel.h); an empty one
 * costs no pad. Whether a message is empty is read from the message
 * itself at both ends, so a forger who fills an empty one meets a missing
 * AUTH frame, and one who empties a full one an AUTH frame that fails.
 * The records' wire format is in kme_wire.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../kme/node_kme_int.h"
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

/* What one end sends in an exchange: its outbox records, the key_IDs its
 * master SAEs gave up on (withdrawals), and the blocks quarantined here
 * that the peer has not acknowledged. */
struct kme_batch {
	struct qkd_kme_rec recs[NODE_KME_BATCH_MAX];
	struct qkd_kme_rec wd[NODE_KME_BATCH_MAX];	/* key_id and segments */
	uint64_t q[NODE_KME_BATCH_MAX];
	size_t nrecs, nwd, nq;
};

/* The other end's answer: a verdict per record, one per withdrawal. The
 * quarantine reports need none: any answer shows they were taken in. */
struct kme_answer {
	struct node_kme_verdict v[NODE_KME_BATCH_MAX];
	struct node_kme_wd wd[NODE_KME_BATCH_MAX];
	size_t nv, nwd;
};

/* Scratch of one exchange. */
struct scratch {
	struct kme_batch out, in;
	struct kme_answer aout, ain;
	struct qkd_kme_rec box[NODE_KME_BATCH_MAX];	/* the outbox as read */
	struct qkd_wbuf w;
};

static struct scratch *scratch_new(void)
{
	struct scratch *s = calloc(1, sizeof *s);

	if (s != NULL)
		qkd_wbuf_init(&s->w);
	return s;
}

static void scratch_free(struct scratch *s)
{
	if (s != NULL)
		qkd_wbuf_cleanup(&s->w);
	free(s);
}

static size_t batch_size(const struct kme_batch *b)
{
	return b->nrecs + b->nwd + b->nq;
}

static size_t answer_size(const struct kme_answer *a)
{
	return a->nv + a->nwd;
}

/* This end's batch: the outbox split into records and withdrawals, and
 * the unreported quarantines. */
static int batch_collect(struct qkd_store *st, struct scratch *s, const char **why)
{
	struct kme_batch *b = &s->out;
	struct qkd_kme_rec *box = s->box;
	size_t n = 0;
	int rc = qkd_store_kme_outbox(st, box, NODE_KME_BATCH_MAX, &n, why);

	b->nrecs = b->nwd = b->nq = 0;
	for (size_t i = 0; rc == QKD_OK && i < n; i++) {
		if (box[i].abandoned)
			b->wd[b->nwd++] = box[i];
		else
			b->recs[b->nrecs++] = box[i];
	}
	if (rc == QKD_OK)
		rc = qkd_store_quarantine_unreported(st, b->q, NODE_KME_BATCH_MAX, &b->nq, why);
	return rc;
}

static void batch_put(struct qkd_wbuf *w, const struct kme_batch *b)
{
	node_kme_put_recs(w, b->recs, b->nrecs);
	node_kme_put_withdrawals(w, b->wd, b->nwd);
	node_kme_put_blocks(w, b->q, b->nq);
}

static void batch_get(struct qkd_rbuf *r, struct kme_batch *b)
{
	b->nrecs = node_kme_get_recs(r, b->recs);
	b->nwd = node_kme_get_withdrawals(r, b->wd);
	b->nq = node_kme_get_blocks(r, b->q);
}

static void answer_put(struct qkd_wbuf *w, const struct kme_answer *a)
{
	node_kme_put_verdicts(w, a->v, a->nv);
	node_kme_put_wds(w, a->wd, a->nwd);
}

static void answer_get(struct qkd_rbuf *r, struct kme_answer *a)
{
	a->nv = node_kme_get_verdicts(r, a->v);
	a->nwd = node_kme_get_wds(r, a->wd);
}

/* The peer's withdrawals: each key retired here, and an answer for it. */
static int take_withdrawals(struct qkd_link_ctx *ctx, struct qkd_store *st,
			    const struct kme_batch *in, struct kme_answer *out, const char **why)
{
	enum qkd_kme_withdraw_verdict v[NODE_KME_BATCH_MAX];
	unsigned peer = node_kme_parity(ctx->cfg->role) ^ 1u;
	int rc = in->nwd > 0 ? qkd_store_kme_withdraw_batch(st, peer, in->wd, in->nwd, v, why)
			     : QKD_OK;

	out->nwd = rc == QKD_OK ? in->nwd : 0;
	for (size_t i = 0; i < out->nwd; i++) {
		memcpy(out->wd[i].key_id, in->wd[i].key_id, 16);
		out->wd[i].v = v[i];
	}
	return rc;
}

/* The peer's quarantined blocks: retired here too, so both ends hold the
 * same blocks (docs/keystore.md, "Digests"). */
static int take_quarantines(struct qkd_link_ctx *ctx, struct qkd_store *st,
			    const struct kme_batch *in, const char **why)
{
	int rc = QKD_OK;

	for (size_t i = 0; rc == QKD_OK && i < in->nq; i++) {
		rc = qkd_store_quarantine(st, in->q[i], why);
		if (rc == QKD_OK)
			qkd_logf(ctx->log, QKD_LOG_WARN, "link %s: block %llu quarantined at "
				 "the peer (its bits failed their digest there): retired here too",
				 ctx->cfg->name, (unsigned long long)in->q[i]);
	}
	return rc;
}

/* Everything the peer's batch asks of this end, and the answer to it. */
static int batch_take(struct qkd_link_ctx *ctx, struct qkd_store *st, const struct kme_batch *in,
		      struct kme_answer *out, const char **why)
{
	int rc = accept_recs(ctx, st, in->recs, in->nrecs, out->v, why);

	out->nv = rc == QKD_OK ? in->nrecs : 0;
	if (rc == QKD_OK)
		rc = take_withdrawals(ctx, st, in, out, why);
	if (rc == QKD_OK)
		rc = take_quarantines(ctx, st, in, why);
	return rc;
}

/* The peer's answer to this end's batch: settled records and withdrawals
 * leave the outbox, and the quarantines it took in are reported. */
static int answer_take(struct qkd_link_ctx *ctx, struct qkd_store *st, const struct kme_answer *a,
		       const struct kme_batch *sent, const char **why)
{
	uint8_t ids[NODE_KME_BATCH_MAX][16];
	int rc = settle(ctx, st, a->v, a->nv, why);

	for (size_t i = 0; i < a->nwd; i++)
		memcpy(ids[i], a->wd[i].key_id, 16);
	if (rc == QKD_OK && a->nwd > 0)
		rc = qkd_store_kme_withdrawals_done_batch(st, (const uint8_t (*)[16])ids, a->nwd,
							  why);
	if (rc == QKD_OK && sent->nq > 0)
		rc = qkd_store_quarantine_reported(st, sent->q, sent->nq, why);
	return rc;
}

/* Send w; a message with content (n > 0 items) is sealed. */
static int send_w(struct qkd_channel *ch, uint8_t type, struct qkd_wbuf *w, size_t n)
{
	if (w->err != 0)
		return w->err;
	return n > 0 ? qkd_channel_send_sealed(ch, type, w->p, w->len)
		     : qkd_channel_send(ch, type, w->p, w->len);
}

/* A received message with content must be authenticated before use. */
static int check_sealed(struct qkd_channel *ch, size_t n)
{
	return n > 0 ? qkd_channel_expect_seal(ch) : QKD_OK;
}

static int parsed(struct qkd_rbuf *r, const char *what, const char **why)
{
	if (qkd_rbuf_done(r))
		return QKD_OK;
	*why = what;
	return QKD_ERR_PROTO;
}

int node_kme_exchange_bob(struct qkd_link_ctx *ctx, struct qkd_channel *ch,
			  struct qkd_store *st, const char **why)
{
	struct scratch *s = scratch_new();
	struct qkd_rbuf r;
	int rc;

	if (s == NULL)
		return QKD_ERR_NOMEM;
	rc = batch_collect(st, s, why);
	if (rc == QKD_OK) {
		batch_put(&s->w, &s->out);
		rc = send_w(ch, NODE_MSG_KME_SYNC, &s->w, batch_size(&s->out));
	}
	if (rc == QKD_OK)
		rc = qkd_channel_expect(ch, NODE_MSG_KME_REPLY, &r);
	if (rc == QKD_OK) {
		answer_get(&r, &s->ain);
		batch_get(&r, &s->in);
		rc = parsed(&r, "malformed KME_REPLY", why);
	}
	if (rc == QKD_OK)
		rc = check_sealed(ch, answer_size(&s->ain) + batch_size(&s->in));
	if (rc == QKD_OK)
		rc = answer_take(ctx, st, &s->ain, &s->out, why);
	if (rc == QKD_OK)
		rc = batch_take(ctx, st, &s->in, &s->aout, why);
	if (rc == QKD_OK) {
		qkd_wbuf_reset(&s->w);
		answer_put(&s->w, &s->aout);
		rc = send_w(ch, NODE_MSG_KME_ACK, &s->w, answer_size(&s->aout));
	}
	scratch_free(s);
	return rc;
}

int node_kme_serve_alice(struct qkd_link_ctx *ctx, struct qkd_channel *ch,
			 struct qkd_store *st, struct qkd_rbuf *msg, const char **why)
{
	struct scratch *s = scratch_new();
	struct qkd_rbuf r;
	int rc;

	if (s == NULL)
		return QKD_ERR_NOMEM;
	batch_get(msg, &s->in);
	rc = parsed(msg, "malformed KME_SYNC", why);
	if (rc == QKD_OK)
		rc = check_sealed(ch, batch_size(&s->in));
	if (rc == QKD_OK)
		rc = batch_take(ctx, st, &s->in, &s->aout, why);
	if (rc == QKD_OK)
		rc = batch_collect(st, s, why);
	if (rc == QKD_OK) {
		answer_put(&s->w, &s->aout);
		batch_put(&s->w, &s->out);
		rc = send_w(ch, NODE_MSG_KME_REPLY, &s->w,
			    answer_size(&s->aout) + batch_size(&s->out));
	}
	if (rc == QKD_OK)
		rc = qkd_channel_expect(ch, NODE_MSG_KME_ACK, &r);
	if (rc == QKD_OK) {
		answer_get(&r, &s->ain);
		rc = parsed(&r, "malformed KME_ACK", why);
	}
	if (rc == QKD_OK)
		rc = check_sealed(ch, answer_size(&s->ain));
	if (rc == QKD_OK)
		rc = answer_take(ctx, st, &s->ain, &s->out, why);
	scratch_free(s);
	return rc;
}
