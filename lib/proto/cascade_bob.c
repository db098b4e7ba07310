/* cascade_bob.c - Bob's Cascade object: frames in flight, requests, replies.
 *
 * One request carries one record per frame in flight (docs/error-correction.md,
 * "Wire format"); the reply is one bit string holding every answer in the
 * order the request asked them. The algorithm per frame is in
 * cascade_bob_frame.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cascade_internal.h"
#include "qkd/error.h"
#include "qkd/rng.h"
#include "qkd/secret.h"
#include "qkd/wire.h"

struct qkd_ec_bob {
	const struct cas_variant *v;
	struct qkd_rng *rng;		/* borrowed */
	struct cas_bframe **act;	/* in flight, in the order added */
	size_t nact, capact;
	struct cas_bframe **done;	/* finished, not yet taken, FIFO */
	size_t ndone, capdone;
	struct cas_idmap ids;		/* ids in act or done */
	struct cas_ptabs tabs;		/* permutation tables by seed */
	uint64_t seed;			/* current permutation seed */
	unsigned seed_uses;		/* frames added with it */
	uint64_t seq;			/* sequence number of the next request */
	size_t expect;			/* answer bits of the outstanding request */
	bool awaiting;			/* a request is outstanding */
	bool broken;			/* contradictory answers were seen */
};

static int frames_push(struct cas_bframe ***arr, size_t *n, size_t *cap,
		       struct cas_bframe *f)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct cas_bframe **na = realloc(*arr, nc * sizeof *na);

		if (na == NULL)
			return QKD_ERR_NOMEM;
		*arr = na;
		*cap = nc;
	}
	(*arr)[(*n)++] = f;
	return QKD_OK;
}

int qkd_ec_bob_new(struct qkd_ec_bob **out, const char *name, struct qkd_rng *rng)
{
	const struct cas_variant *v = cas_variant_find(name);
	struct qkd_ec_bob *bob;

	*out = NULL;
	if (v == NULL || rng == NULL)
		return QKD_ERR_INVAL;
	bob = calloc(1, sizeof *bob);
	if (bob == NULL)
		return QKD_ERR_NOMEM;
	bob->v = v;
	bob->rng = rng;
	cas_idmap_init(&bob->ids);
	*out = bob;
	return QKD_OK;
}

void qkd_ec_bob_free(struct qkd_ec_bob *bob)
{
	if (bob == NULL)
		return;
	for (size_t i = 0; i < bob->nact; i++)
		cas_bframe_free(bob->act[i]);
	for (size_t i = 0; i < bob->ndone; i++)
		cas_bframe_free(bob->done[i]);
	free(bob->act);
	free(bob->done);
	cas_idmap_cleanup(&bob->ids);
	cas_ptabs_cleanup(&bob->tabs);
	qkd_free_secret(bob, sizeof *bob);
}

int qkd_ec_bob_add_frame(struct qkd_ec_bob *bob, uint64_t frame_id,
			 const struct qkd_bits *bits, double qber_est)
{
	struct cas_bframe *f;
	int rc;

	if (bits == NULL || bits->n == 0 || bits->n > QKD_EC_MAX_FRAME_BITS ||
	    !(qber_est >= 0.0 && qber_est <= 0.5))
		return QKD_ERR_INVAL;
	if (cas_idmap_get(&bob->ids, frame_id) >= 0)
		return QKD_ERR_INVAL;
	/* A fresh seed every CAS_SEED_FRAMES frames: the permutation tables
	 * are built once per seed (cascade_pass.c). */
	if (bob->seed_uses++ % CAS_SEED_FRAMES == 0)
		bob->seed = qkd_rng_u64(bob->rng);
	rc = cas_bframe_new(&f, &bob->tabs, frame_id, bits, qber_est, bob->seed);
	if (rc != QKD_OK)
		return rc;
	rc = cas_idmap_put(&bob->ids, frame_id, 0);
	if (rc == QKD_OK)
		rc = frames_push(&bob->act, &bob->nact, &bob->capact, f);
	if (rc != QKD_OK) {
		cas_idmap_del(&bob->ids, frame_id);
		cas_bframe_free(f);
	}
	return rc;
}

unsigned qkd_ec_bob_in_flight(const struct qkd_ec_bob *bob)
{
	return (unsigned)(bob->nact + bob->ndone);
}

/* Queries sorted by key: per query, varint (block delta << 1 | 0), or on a
 * change of pass varint (block << 1 | 1) and varint pass delta; then
 * varint heap index of the node to bisect. */
static void put_queries(struct qkd_wbuf *out, const struct cas_vec *asked)
{
	unsigned prev_p = 0;
	uint32_t prev_b = 0;

	qkd_put_varint(out, asked->n);
	for (size_t i = 0; i < asked->n; i++) {
		uint64_t key = asked->v[i];
		unsigned p = cas_key_pass(key);
		uint32_t b = cas_key_block(key);

		if (p != prev_p) {
			qkd_put_varint(out, ((uint64_t)b << 1) | 1);
			qkd_put_varint(out, p - prev_p);
			prev_p = p;
		} else {
			qkd_put_varint(out, (uint64_t)(b - prev_b) << 1);
		}
		prev_b = b;
		qkd_put_varint(out, cas_key_heap(key));
	}
}

static int put_record(struct qkd_ec_bob *bob, struct cas_bframe *f,
		      struct qkd_wbuf *out)
{
	int flags = cas_bframe_plan(f, bob->v);

	if (flags < 0)
		return flags;
	qkd_put_varint(out, f->id);
	qkd_put_u8(out, (uint8_t)flags);
	if (flags & CAS_REC_NEW) {
		qkd_put_u8(out, bob->v->id);
		qkd_put_varint(out, f->n);
		qkd_put_u64(out, f->seed);
	}
	if (flags & CAS_REC_PASS) {
		const struct cas_pass *g = &f->pass[f->np - 1].g;

		qkd_put_u8(out, g->type);
		qkd_put_varint(out, g->type == CAS_PASS_MASK ? f->np - f->batch_first : g->k);
	}
	if (flags & CAS_REC_QUERY)
		put_queries(out, &f->asked);
	bob->expect += cas_bframe_expect(f, bob->v);
	return QKD_OK;
}

/* Finished frames leave the in-flight list once their DONE is written. */
static int retire_done(struct qkd_ec_bob *bob)
{
	size_t keep = 0;
	int rc = QKD_OK;

	for (size_t i = 0; i < bob->nact; i++) {
		struct cas_bframe *f = bob->act[i];

		if (f->sent == CAS_REC_DONE && rc == QKD_OK) {
			rc = frames_push(&bob->done, &bob->ndone, &bob->capdone, f);
			if (rc == QKD_OK) {
				cas_bframe_release(f);
				continue;
			}
		}
		bob->act[keep++] = f;
	}
	bob->nact = keep;
	return rc;
}

int qkd_ec_bob_request(struct qkd_ec_bob *bob, struct qkd_wbuf *out)
{
	int rc = QKD_OK;

	if (bob->broken)
		return QKD_ERR_PROTO;
	if (bob->awaiting)
		return QKD_ERR_INVAL;
	if (out->err)
		return out->err;
	if (bob->nact == 0)
		return 0;
	qkd_put_u8(out, CAS_MSG_REQUEST);
	qkd_put_u8(out, CAS_VERSION);
	qkd_put_varint(out, bob->seq);
	qkd_put_varint(out, bob->nact);
	bob->expect = 0;
	for (size_t i = 0; i < bob->nact && rc == QKD_OK; i++)
		rc = put_record(bob, bob->act[i], out);
	if (rc == QKD_OK)
		rc = out->err;
	if (rc == QKD_OK)
		rc = retire_done(bob);
	if (rc != QKD_OK) {
		/* Frames were half planned: there is no consistent way on. */
		bob->broken = true;
		return rc;
	}
	bob->awaiting = true;
	return 1;
}

int qkd_ec_bob_reply(struct qkd_ec_bob *bob, struct qkd_rbuf *in)
{
	struct qkd_bits ans = { NULL, 0 };
	size_t off = 0;
	int rc;

	if (bob->broken)
		return QKD_ERR_PROTO;
	if (!bob->awaiting)
		return QKD_ERR_PROTO;
	if (qkd_get_u8(in) != CAS_MSG_REPLY || qkd_get_u8(in) != CAS_VERSION ||
	    qkd_get_varint(in) != bob->seq) {
		qkd_rbuf_fail(in, QKD_ERR_PROTO);
		return in->err;
	}
	rc = qkd_get_bits(in, &ans, bob->expect);
	if (rc != QKD_OK)
		return rc;
	if (ans.n != bob->expect || !qkd_rbuf_done(in)) {
		qkd_bits_cleanup(&ans);
		qkd_rbuf_fail(in, QKD_ERR_PROTO);
		return QKD_ERR_PROTO;
	}
	/* The reply is well formed: from here on it is applied. */
	for (size_t i = 0; i < bob->nact && rc == QKD_OK; i++)
		if (bob->act[i]->sent != 0)
			rc = cas_bframe_apply(bob->act[i], bob->v, &ans, &off);
	qkd_bits_cleanup(&ans);
	bob->awaiting = false;
	bob->seq++;
	if (rc != QKD_OK)
		bob->broken = true;
	return rc;
}

int qkd_ec_bob_take_done(struct qkd_ec_bob *bob, uint64_t *frame_id,
			 struct qkd_bits *out, uint64_t *disclosed,
			 uint64_t *corrected)
{
	struct cas_bframe *f;

	if (bob->ndone == 0)
		return 0;
	f = bob->done[0];
	memmove(bob->done, bob->done + 1, (bob->ndone - 1) * sizeof *bob->done);
	bob->ndone--;
	cas_idmap_del(&bob->ids, f->id);
	*frame_id = f->id;
	*disclosed = f->disclosed;
	*corrected = f->corrected;
	*out = f->bits;
	f->bits.w = NULL;
	f->bits.n = 0;
	cas_bframe_free(f);
	return 1;
}
