/* kme_sync.c - the key manager's service on a link: records crossing it
 * whenever they are ready (docs/kme.md, "Two nodes").
 *
 * It is a service of the link's multiplexer (qkd/mux.h), so its messages
 * go between any two engine messages, photon frames included, whoever
 * drives the round. Two messages, each sealed by its own AUTH frame, so
 * the receiver acts only on authenticated content:
 *   KME_BATCH   either way: outbox records, withdrawals, quarantines
 *   KME_ANSWER  back: a verdict per record and per withdrawal
 * Each end keeps at most one batch in flight; the answer settles it. A
 * record is the key's coordinates (key_ID, SAE pair, length, segments),
 * never its bits. A withdrawal names a key whose master gave up on it
 * (enc_keys answered 503 after its timeout): the slave's end retires its
 * copy, so no key stays deliverable that its master never handed out. A
 * quarantine names a block whose bits failed their digest at the sender:
 * the receiver retires it too, so both stores keep the same blocks; any
 * answer shows the batch's quarantines were taken in. The receiving end
 * consumes the same segments into its inbox (qkd_store_kme_accept,
 * idempotent) before it answers, and the master's end drops a record from
 * its outbox only on a verdict: a record whose answer is lost with its
 * connection is sent again on the next one and accepted once. A record
 * naming a block not yet final at the peer (LATER) is sent again after
 * RETRY_LATER_S. A batch goes when enc_keys has cut keys (node_kme_kick),
 * when the connection comes up, after each answer, and after each round
 * (quarantines found meanwhile). The records' wire format is in kme_wire.c.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "node_kme_int.h"
#include "kme_wire.h"
#include "../node/node_int.h"

#include "qkd/error.h"
#include "qkd/sysutil.h"
#include "qkd/mux.h"
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

static int parsed(struct qkd_rbuf *r, const char *what, const char **why)
{
	if (qkd_rbuf_done(r))
		return QKD_OK;
	*why = what;
	return QKD_ERR_PROTO;
}

/* ---- the service ---- */

enum { KME_BATCH = 1, KME_ANSWER = 2 };
/* A record the peer answered LATER (its block not final there yet) goes
 * again this much later: a commit settles within a round trip or two. */
#define RETRY_LATER_S 0.05

struct node_kme_service {
	struct qkd_link_ctx *ctx;
	struct qkd_mux *mux;
	atomic_bool dirty;		/* something may wait in the outbox */
	bool inflight;			/* s->out sent, its answer not in yet */
	double retry_at;		/* LATER: dirty again from then; 0 none */
	struct scratch *s;
};

static bool any_later(const struct kme_answer *a)
{
	for (size_t i = 0; i < a->nv; i++)
		if (a->v[i].v == QKD_KME_LATER)
			return true;
	return false;
}

static int svc_send(struct node_kme_service *k, struct qkd_mux *m, uint8_t type)
{
	struct qkd_wbuf *w = &k->s->w;

	return w->err ? w->err : qkd_mux_send(m, QKD_SERVICE_KME, type, w->p, w->len);
}

/* The peer's batch: taken in, answered at once. */
static int on_batch(struct node_kme_service *k, struct qkd_mux *m, struct qkd_rbuf *body,
		    const char **why)
{
	struct scratch *s = k->s;
	int rc;

	batch_get(body, &s->in);
	rc = parsed(body, "malformed KME_BATCH", why);
	if (rc == QKD_OK)
		rc = batch_take(k->ctx, k->ctx->store, &s->in, &s->aout, why);
	if (rc == QKD_OK) {
		qkd_wbuf_reset(&s->w);
		answer_put(&s->w, &s->aout);
		rc = svc_send(k, m, KME_ANSWER);
	}
	return rc;
}

/* The answer to the batch in flight. */
static int on_answer(struct node_kme_service *k, struct qkd_rbuf *body, const char **why)
{
	struct scratch *s = k->s;
	int rc;

	if (!k->inflight) {
		*why = "KME_ANSWER without a KME_BATCH in flight";
		return QKD_ERR_PROTO;
	}
	answer_get(body, &s->ain);
	rc = parsed(body, "malformed KME_ANSWER", why);
	if (rc == QKD_OK)
		rc = answer_take(k->ctx, k->ctx->store, &s->ain, &s->out, why);
	if (rc != QKD_OK)
		return rc;
	k->inflight = false;
	if (any_later(&s->ain))
		k->retry_at = qkd_wall_seconds() + RETRY_LATER_S;
	else
		node_kme_kick(&k->ctx->kme);	/* a full batch may have more behind it */
	return QKD_OK;
}

static int svc_deliver(void *ctx, struct qkd_mux *m, uint8_t type, struct qkd_rbuf *body,
		       const char **why)
{
	struct node_kme_service *k = ctx;

	return type == KME_BATCH ? on_batch(k, m, body, why) : on_answer(k, body, why);
}

static int svc_pump(void *ctx, struct qkd_mux *m, const char **why)
{
	struct node_kme_service *k = ctx;
	struct scratch *s = k->s;
	int rc;

	if (k->inflight)
		return QKD_OK;
	if (k->retry_at > 0 && qkd_wall_seconds() >= k->retry_at) {
		k->retry_at = 0;
		atomic_store(&k->dirty, true);
	}
	if (!atomic_exchange(&k->dirty, false))
		return QKD_OK;
	rc = batch_collect(k->ctx->store, s, why);
	if (rc != QKD_OK || batch_size(&s->out) == 0)
		return rc;
	qkd_wbuf_reset(&s->w);
	batch_put(&s->w, &s->out);
	rc = svc_send(k, m, KME_BATCH);
	k->inflight = rc == QKD_OK;
	return rc;
}

/* A new connection: nothing in flight on it, the whole outbox to send. */
static void svc_up(void *ctx, bool up)
{
	struct node_kme_service *k = ctx;

	k->inflight = false;
	k->retry_at = 0;
	atomic_store(&k->dirty, up);
}

int node_kme_service_new(struct qkd_link_ctx *ctx, struct qkd_mux *m,
			 struct node_kme_service **out)
{
	struct node_kme_service *k = calloc(1, sizeof *k);
	struct qkd_service svc = { .name = "kme", .id = QKD_SERVICE_KME, .ntypes = 2,
				   .deliver = svc_deliver, .pump = svc_pump, .up = svc_up };
	int rc = QKD_ERR_NOMEM;

	*out = NULL;
	if (k == NULL || (k->s = scratch_new()) == NULL)
		goto fail;
	k->ctx = ctx;
	k->mux = m;
	atomic_init(&k->dirty, false);
	svc.ctx = k;
	rc = qkd_mux_register(m, &svc);
	if (rc != QKD_OK)
		goto fail;
	*out = k;
	return QKD_OK;
fail:
	node_kme_service_free(k);
	return rc;
}

void node_kme_service_free(struct node_kme_service *k)
{
	if (k == NULL)
		return;
	scratch_free(k->s);
	free(k);
}

void node_kme_kick(struct qkd_link_kme *lk)
{
	struct node_kme_service *k = lk->svc;

	if (k == NULL)
		return;
	atomic_store(&k->dirty, true);
	qkd_mux_wake(k->mux);
}

bool node_kme_service_idle(const struct node_kme_service *k)
{
	return !k->inflight && !atomic_load(&((struct node_kme_service *)k)->dirty) &&
	       k->retry_at == 0;
}
