/* cascade_alice.c - Alice's side of Cascade: answer Bob's parity queries.
 *
 * Alice keeps no tree and makes no decision: she rebuilds each pass from
 * the parameters Bob sends and answers parities of her own string. A
 * request is handled in two steps: parse() validates all of it (frame ids,
 * pass numbers, block and node indices, exact length) and answers the
 * queries into scratch space, so a hostile request changes nothing; only
 * then commit() starts frames and passes and marks frames done. Every bit
 * she sends is counted as disclosed for its frame.
 */
#include <stdlib.h>
#include <string.h>

#include "cascade_internal.h"
#include "qkd/error.h"
#include "qkd/secret.h"
#include "qkd/wire.h"

enum { AF_REGISTERED, AF_ACTIVE, AF_DONE };

struct alice_frame {
	uint64_t id, seed, disclosed;
	uint64_t seen;		/* parse epoch that last named the frame */
	struct qkd_bits bits;
	uint8_t state;
	unsigned np;
	struct cas_pass pass[CAS_MAX_PASSES];
};

/* A record as parsed; its state changes wait until the whole request is
 * known to be valid. */
struct rec {
	struct alice_frame *f;
	uint8_t flags;
	uint8_t type;		/* PASS */
	uint32_t k;		/* PASS, IDENT/PERM */
	uint32_t count;		/* PASS: passes started (several only for MASK) */
	uint64_t seed;		/* NEW */
	uint64_t nq;		/* QUERY: answers already in the reply bits */
	size_t off;		/* PASS: first reply bit reserved for it */
};

/* The reply's bit string, grown as answers are appended. */
struct answers {
	uint64_t *w;
	size_t n, cap;		/* bits used, words allocated */
};

struct qkd_ec_alice {
	const struct cas_variant *v;
	struct alice_frame **fr;	/* slots; the id map points into it */
	size_t nfr, capfr;
	struct cas_idmap ids;
	struct cas_ptabs tabs;		/* permutation tables by seed */
	struct cas_vec done;		/* ids declared finished, FIFO */
	size_t done_head;
	struct rec *recs;		/* scratch: records of one request */
	size_t caprecs;
	struct answers ans;		/* scratch: reply bits */
	uint64_t seq;			/* expected request sequence number */
	uint64_t epoch;			/* parse counter for duplicate records */
};

static void frame_release(struct alice_frame *f, struct cas_ptabs *tabs)
{
	for (unsigned i = 0; i < f->np; i++)
		cas_pass_cleanup(&f->pass[i], tabs);
	f->np = 0;
}

static void frame_free(struct alice_frame *f, struct cas_ptabs *tabs)
{
	if (f == NULL)
		return;
	frame_release(f, tabs);
	qkd_bits_cleanup(&f->bits);
	qkd_free_secret(f, sizeof *f);
}

int qkd_ec_alice_new(struct qkd_ec_alice **out, const char *name)
{
	const struct cas_variant *v = cas_variant_find(name);
	struct qkd_ec_alice *a;

	*out = NULL;
	if (v == NULL)
		return QKD_ERR_INVAL;
	a = calloc(1, sizeof *a);
	if (a == NULL)
		return QKD_ERR_NOMEM;
	a->v = v;
	cas_idmap_init(&a->ids);
	*out = a;
	return QKD_OK;
}

void qkd_ec_alice_free(struct qkd_ec_alice *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->nfr; i++)
		frame_free(a->fr[i], &a->tabs);
	free(a->fr);
	cas_idmap_cleanup(&a->ids);
	cas_ptabs_cleanup(&a->tabs);
	cas_vec_free(&a->done);
	free(a->recs);
	free(a->ans.w);
	qkd_free_secret(a, sizeof *a);
}

int qkd_ec_alice_add_frame(struct qkd_ec_alice *a, uint64_t frame_id,
			   const struct qkd_bits *bits)
{
	struct alice_frame *f;
	int rc;

	if (bits == NULL || bits->n == 0 || bits->n > QKD_EC_MAX_FRAME_BITS)
		return QKD_ERR_INVAL;
	if (cas_idmap_get(&a->ids, frame_id) >= 0)
		return QKD_ERR_INVAL;
	if (a->nfr == a->capfr) {
		size_t nc = a->capfr ? a->capfr * 2 : 8;
		struct alice_frame **nf = realloc(a->fr, nc * sizeof *nf);

		if (nf == NULL)
			return QKD_ERR_NOMEM;
		a->fr = nf;
		a->capfr = nc;
	}
	f = calloc(1, sizeof *f);
	if (f == NULL)
		return QKD_ERR_NOMEM;
	f->id = frame_id;
	rc = qkd_bits_copy(&f->bits, bits);
	if (rc == QKD_OK)
		rc = cas_idmap_put(&a->ids, frame_id, (uint32_t)a->nfr);
	if (rc != QKD_OK) {
		frame_free(f, &a->tabs);
		return rc;
	}
	a->fr[a->nfr++] = f;
	return QKD_OK;
}

/* --- parsing --- */

/* Next query of a QUERY record: *p, *b, *h. prev holds (pass, block, heap)
 * of the previous query of the record, or all ~0 before the first. */
static void get_query(struct qkd_rbuf *r, const struct alice_frame *f,
		      uint32_t prev[3], uint32_t *p, uint32_t *b, uint32_t *h)
{
	bool first = prev[0] == UINT32_MAX;
	uint64_t t = qkd_get_varint(r), bb, pp = first ? 0 : prev[0];
	uint32_t s, l;

	if (t & 1) {
		uint64_t pd = qkd_get_varint(r);

		if (pd == 0 || pd >= CAS_MAX_PASSES)
			qkd_rbuf_fail(r, QKD_ERR_PROTO);
		pp += pd;
		bb = t >> 1;
	} else {
		bb = (first ? 0 : prev[1]) + (t >> 1);
	}
	*h = (uint32_t)qkd_get_count(r, UINT32_MAX);
	if (!qkd_rbuf_ok(r))
		return;
	if (pp >= f->np || bb >= f->pass[pp].nb) {
		qkd_rbuf_fail(r, QKD_ERR_PROTO);
		return;
	}
	*p = (uint32_t)pp;
	*b = (uint32_t)bb;
	/* Strictly increasing (pass, block, node); the node must have two
	 * children, the left one being what is asked. */
	if ((!first && *p == prev[0] && *b == prev[1] && *h <= prev[2]) ||
	    !cas_node_range(&f->pass[*p], *b, *h, &s, &l) || l < 2) {
		qkd_rbuf_fail(r, QKD_ERR_PROTO);
		return;
	}
	prev[0] = *p;
	prev[1] = *b;
	prev[2] = *h;
}

/* Block parities sent for the passes a PASS record starts at index. */
static size_t pass_bits(const struct qkd_ec_alice *a, unsigned index,
			const struct rec *rc)
{
	size_t nb = rc->type == CAS_PASS_MASK ? 2 : (rc->f->bits.n + rc->k - 1) / rc->k;
	size_t bits = 0;

	for (unsigned i = index; i < index + rc->count; i++)
		bits += nb - (a->v->infer_last && i > 0 ? 1 : 0);
	return bits;
}

static void get_record(struct qkd_ec_alice *a, struct qkd_rbuf *r, struct rec *rc)
{
	uint64_t id = qkd_get_varint(r);
	long slot;
	struct alice_frame *f;
	uint8_t fl = qkd_get_u8(r);

	memset(rc, 0, sizeof *rc);
	slot = qkd_rbuf_ok(r) ? cas_idmap_get(&a->ids, id) : -1;
	if (slot < 0) {
		qkd_rbuf_fail(r, QKD_ERR_PROTO);
		return;
	}
	f = rc->f = a->fr[slot];
	rc->flags = fl;
	if (fl != (CAS_REC_NEW | CAS_REC_PASS) && fl != CAS_REC_PASS &&
	    fl != CAS_REC_QUERY && fl != CAS_REC_DONE) {
		qkd_rbuf_fail(r, QKD_ERR_PROTO);
		return;
	}
	if ((fl & CAS_REC_NEW) ? f->state != AF_REGISTERED : f->state != AF_ACTIVE) {
		qkd_rbuf_fail(r, QKD_ERR_PROTO);
		return;
	}
	if (fl & CAS_REC_NEW) {
		if (qkd_get_u8(r) != a->v->id || qkd_get_varint(r) != f->bits.n)
			qkd_rbuf_fail(r, QKD_ERR_PROTO);
		rc->seed = qkd_get_u64(r);
	}
	if (fl & CAS_REC_PASS) {
		unsigned np = (fl & CAS_REC_NEW) ? 0 : f->np;
		uint64_t v;

		rc->type = qkd_get_u8(r);
		v = qkd_get_count(r, rc->type == CAS_PASS_MASK ? CAS_MAX_PASSES : f->bits.n);
		if (rc->type > CAS_PASS_MASK || v == 0)
			qkd_rbuf_fail(r, QKD_ERR_PROTO);
		rc->k = rc->type == CAS_PASS_MASK ? 0 : (uint32_t)v;
		rc->count = rc->type == CAS_PASS_MASK ? (uint32_t)v : 1;
		if (np + rc->count > CAS_MAX_PASSES)
			qkd_rbuf_fail(r, QKD_ERR_RANGE);
	}
	/* Each query takes at least two bytes. */
	if (fl & CAS_REC_QUERY)
		rc->nq = qkd_get_count(r, qkd_rbuf_left(r) / 2);
}

static int ans_reserve(struct answers *s, uint64_t nbits)
{
	size_t need;

	if (nbits > QKD_EC_MAX_FRAME_BITS)
		return QKD_ERR_RANGE;
	need = (s->n + (size_t)nbits + 63) / 64;
	if (need > s->cap) {
		size_t cap = s->cap ? s->cap : 64;
		uint64_t *nw;

		while (cap < need)
			cap *= 2;
		nw = realloc(s->w, cap * sizeof *nw);
		if (nw == NULL)
			return QKD_ERR_NOMEM;
		memset(nw + s->cap, 0, (cap - s->cap) * sizeof *nw);
		s->w = nw;
		s->cap = cap;
	}
	return QKD_OK;
}

static inline void ans_set(struct answers *s, size_t i, unsigned v)
{
	s->w[i >> 6] |= (uint64_t)(v & 1) << (i & 63);
}

/* Answer the queries of a validated-so-far QUERY record, reading them. */
static void parse_queries(struct qkd_rbuf *r, struct rec *rc, struct answers *s)
{
	uint32_t prev[3] = { UINT32_MAX, UINT32_MAX, UINT32_MAX }, p = 0, b = 0, h = 0;
	int err = ans_reserve(s, rc->nq);

	if (err != QKD_OK) {
		qkd_rbuf_fail(r, err);
		return;
	}
	for (uint64_t q = 0; q < rc->nq && qkd_rbuf_ok(r); q++) {
		struct cas_pass *g;
		uint32_t s0 = 0, l = 0;

		get_query(r, rc->f, prev, &p, &b, &h);
		if (!qkd_rbuf_ok(r))
			break;
		g = &rc->f->pass[p];
		err = cas_pass_index(g);	/* a cache: not protocol state */
		if (err != QKD_OK) {
			qkd_rbuf_fail(r, err);
			break;
		}
		(void)cas_node_range(g, b, 2 * h, &s0, &l);	/* checked in get_query */
		ans_set(s, s->n++, cas_parity(g, &rc->f->bits, s0, l));
	}
}

/* Step 1: validate the whole request, answer the queries, reserve
 * the bits of the new passes. Nothing of Alice's protocol state changes. */
static int parse(struct qkd_ec_alice *a, struct qkd_rbuf *r, size_t *nrec_out)
{
	uint64_t nrec;
	int err = QKD_OK;

	a->epoch++;
	a->ans.n = 0;
	if (qkd_get_u8(r) != CAS_MSG_REQUEST || qkd_get_u8(r) != CAS_VERSION ||
	    qkd_get_varint(r) != a->seq)
		qkd_rbuf_fail(r, QKD_ERR_PROTO);
	nrec = qkd_get_count(r, a->nfr);
	if (qkd_rbuf_ok(r) && nrec > a->caprecs) {
		struct rec *nr = realloc(a->recs, (size_t)nrec * sizeof *nr);

		if (nr == NULL)
			return QKD_ERR_NOMEM;
		a->recs = nr;
		a->caprecs = (size_t)nrec;
	}
	for (uint64_t i = 0; i < nrec && qkd_rbuf_ok(r); i++) {
		struct rec *rc = &a->recs[i];

		get_record(a, r, rc);
		if (!qkd_rbuf_ok(r))
			break;
		if (rc->f->seen == a->epoch) {
			qkd_rbuf_fail(r, QKD_ERR_PROTO);	/* frame named twice */
			break;
		}
		rc->f->seen = a->epoch;
		rc->off = a->ans.n;
		if (rc->flags & CAS_REC_PASS) {
			size_t nb = pass_bits(a, (rc->flags & CAS_REC_NEW) ? 0 : rc->f->np, rc);

			err = ans_reserve(&a->ans, nb);
			if (err != QKD_OK)
				qkd_rbuf_fail(r, err);
			a->ans.n += nb;
		}
		if (rc->flags & CAS_REC_QUERY)
			parse_queries(r, rc, &a->ans);
	}
	*nrec_out = (size_t)nrec;
	if (!qkd_rbuf_done(r))
		return r->err ? r->err : QKD_ERR_PROTO;
	return QKD_OK;
}

/* New passes: build them and fill the bits reserved for their block
 * parities. */
static int commit_pass(struct qkd_ec_alice *a, const struct rec *rc)
{
	struct alice_frame *f = rc->f;
	size_t off = rc->off;
	int err = QKD_OK;

	for (uint32_t i = 0; i < rc->count && err == QKD_OK; i++) {
		struct cas_pass *g = &f->pass[f->np];
		bool infer = a->v->infer_last && f->np > 0;

		err = cas_pass_init(g, &a->tabs, rc->type, rc->k, (uint32_t)f->bits.n,
				    f->seed, f->id, f->np, &f->bits);
		if (err != QKD_OK)
			break;
		cas_pass_drop_table(g, &a->tabs);
		f->np++;
		for (uint32_t b = 0; b < g->nb - (infer ? 1 : 0); b++) {
			ans_set(&a->ans, off++, cas_block_parity(g, &f->bits, b));
			f->disclosed++;
		}
	}
	return err;
}

/* Step 2: apply the records' state changes. */
static int commit(struct qkd_ec_alice *a, size_t nrec)
{
	int err = QKD_OK;

	for (size_t i = 0; i < nrec && err == QKD_OK; i++) {
		struct rec *rc = &a->recs[i];

		if (rc->flags & CAS_REC_NEW) {
			rc->f->seed = rc->seed;
			rc->f->state = AF_ACTIVE;
		}
		if (rc->flags & CAS_REC_PASS)
			err = commit_pass(a, rc);
		rc->f->disclosed += rc->nq;
		if (rc->flags & CAS_REC_DONE) {
			rc->f->state = AF_DONE;
			frame_release(rc->f, &a->tabs);
			err = cas_vec_push(&a->done, rc->f->id);
		}
	}
	return err;
}

int qkd_ec_alice_answer(struct qkd_ec_alice *a, struct qkd_rbuf *req,
			struct qkd_wbuf *reply)
{
	struct qkd_bits bits;
	size_t nrec = 0;
	int err = parse(a, req, &nrec);

	if (err == QKD_OK)
		err = commit(a, nrec);
	if (err == QKD_OK) {
		bits.w = a->ans.w;
		bits.n = a->ans.n;
		qkd_put_u8(reply, CAS_MSG_REPLY);
		qkd_put_u8(reply, CAS_VERSION);
		qkd_put_varint(reply, a->seq);
		qkd_put_bits(reply, &bits);
		err = reply->err;
		a->seq++;
	}
	/* ans_set ORs bits in: leave the scratch zeroed for the next request. */
	if (a->ans.w != NULL)
		memset(a->ans.w, 0, qkd_bits_words(a->ans.n) * sizeof *a->ans.w);
	a->ans.n = 0;
	if (err == QKD_ERR_PROTO || err == QKD_ERR_RANGE)
		qkd_rbuf_fail(req, err);
	return err;
}

static void remove_slot(struct qkd_ec_alice *a, size_t slot)
{
	struct alice_frame *f = a->fr[slot];

	cas_idmap_del(&a->ids, f->id);
	frame_free(f, &a->tabs);
	a->nfr--;
	if (slot != a->nfr) {
		a->fr[slot] = a->fr[a->nfr];
		/* The id is present: re-pointing it cannot need memory. */
		(void)cas_idmap_put(&a->ids, a->fr[slot]->id, (uint32_t)slot);
	}
}

int qkd_ec_alice_take_done(struct qkd_ec_alice *a, uint64_t *frame_id,
			   uint64_t *disclosed)
{
	long slot;

	if (a->done_head == a->done.n)
		return 0;
	*frame_id = a->done.v[a->done_head++];
	if (a->done_head == a->done.n)
		a->done_head = a->done.n = 0;
	slot = cas_idmap_get(&a->ids, *frame_id);
	*disclosed = a->fr[slot]->disclosed;
	remove_slot(a, (size_t)slot);
	return 1;
}
