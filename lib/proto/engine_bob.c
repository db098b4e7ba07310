/* Bob's side of the protocol engine: he drives every stage. */
#include "engine_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/ec.h"
#include "qkd/ec_driver.h"
#include "qkd/error.h"
#include "qkd/msg.h"
#include "qkd/pa.h"
#include "qkd/secret.h"
#include "qkd/sift.h"
#include "qkd/verify.h"

struct bob {
	struct qkd_channel *ch;
	const struct qkd_engine_config *cfg;
	struct qkd_rng *rng;
	struct qkd_engine_stats *st;
	struct qkd_wbuf msg;
	struct qkd_bits pool;	/* sifted bits; pool.n is the capacity */
	size_t used;
	struct engine_frames fr;
	double qber_est;
	struct qkd_randomness_stats rs_basis;	/* his bases, detected slots */
	struct engine_decoy dec;	/* decoy-state mode */
	/* Simulator truth, parallel to pool and then to fr: which key bits
	 * Eve knew (only counted, see qkd_bob_chunk.eve_known). */
	bool truth;
	struct qkd_bits eve_pool;
	size_t eve_used;
	struct engine_frames eve_fr;
};

static int send_msg(struct bob *b, uint8_t type)
{
	if (b->msg.err)
		return b->msg.err;
	return qkd_channel_send(b->ch, type, b->msg.p, b->msg.len);
}

static int bob_hello(struct bob *b)
{
	struct qkd_rbuf r;
	int rc;

	qkd_wbuf_reset(&b->msg);
	engine_hello_write(&b->msg, b->cfg);
	rc = send_msg(b, QKD_MSG_HELLO);
	if (rc == QKD_OK)
		rc = qkd_channel_expect(b->ch, QKD_MSG_HELLO_ACK, &r);
	return rc;
}

/* Decoy mode: read the intensities Alice announced for the kept slots and
 * split the kept bits into key (X) and test (Z); key_keep gets the mask of
 * the key bits. */
static int bob_decoy_sift(struct bob *b, const struct qkd_bob_chunk *c,
			  const struct qkd_bits *keep, struct qkd_rbuf *r, struct qkd_bits *key_keep)
{
	size_t kept = qkd_bits_weight(keep);
	struct qkd_bits lo = {0}, hi = {0};
	uint8_t *k = malloc(kept ? kept : 1);
	int rc = QKD_ERR_NOMEM;

	if (k == NULL)
		goto out;
	rc = qkd_get_bits(r, &lo, kept);
	if (rc == QKD_OK)
		rc = qkd_get_bits(r, &hi, kept);
	if (rc == QKD_OK && (lo.n != kept || hi.n != kept || !qkd_rbuf_done(r)))
		rc = QKD_ERR_PROTO;
	if (rc == QKD_OK)
		rc = qkd_bits_init(key_keep, c->n);
	if (rc != QKD_OK)
		goto out;
	for (size_t j = 0; j < kept; j++)
		k[j] = (uint8_t)(qkd_bits_get(&lo, j) | qkd_bits_get(&hi, j) << 1);
	rc = engine_decoy_sift(&b->dec, &b->pool, &b->used, &c->value, &c->basis, keep, k,
			       key_keep);
out:
	free(k);
	qkd_bits_cleanup(&lo);
	qkd_bits_cleanup(&hi);
	return rc;
}

static int bob_sift_chunk(struct bob *b, struct qkd_bob_chunk *c)
{
	struct qkd_bits keep = {0}, key_keep = {0};
	struct qkd_rbuf r;
	int rc;

	qkd_wbuf_reset(&b->msg);
	qkd_sift_report_write(&b->msg, c->first_slot, c->slots, c->slot, &c->basis);
	rc = send_msg(b, QKD_MSG_SIFT_REPORT);
	if (rc == QKD_OK)
		rc = qkd_channel_expect(b->ch, QKD_MSG_SIFT_REPLY, &r);
	if (rc == QKD_OK)
		rc = qkd_get_bits(&r, &keep, c->n);
	if (rc == QKD_OK && keep.n != c->n)
		rc = QKD_ERR_PROTO;
	if (rc == QKD_OK && b->dec.on)
		rc = bob_decoy_sift(b, c, &keep, &r, &key_keep);
	else if (rc == QKD_OK && !qkd_rbuf_done(&r))
		rc = QKD_ERR_PROTO;
	else if (rc == QKD_OK)
		rc = qkd_sift_append(&b->pool, &b->used, &c->value, &keep);
	if (rc == QKD_OK && b->truth)
		rc = qkd_sift_append(&b->eve_pool, &b->eve_used, &c->eve_known,
				     b->dec.on ? &key_keep : &keep);
	if (rc == QKD_OK)
		rc = qkd_randomness_stats_add(&b->rs_basis, &c->basis);
	qkd_bits_cleanup(&keep);
	qkd_bits_cleanup(&key_keep);
	return rc;
}

static int bob_sift(struct bob *b, const struct qkd_bob_source *src)
{
	struct qkd_engine_stats *st = b->st;
	double t0 = qkd_cpu_seconds();
	int rc;

	for (;;) {
		struct qkd_bob_chunk c;

		memset(&c, 0, sizeof c);
		rc = src->next(src->ctx, &c);
		if (rc == 1 && b->truth && c.eve_known.n != c.n)
			rc = QKD_ERR_INVAL;	/* truth on some chunks only */
		if (rc == 1) {
			st->pulses += c.slots;
			st->detections += c.n;
			st->double_clicks += c.double_clicks;
			rc = bob_sift_chunk(b, &c);
			if (rc == QKD_OK)
				rc = 1;
			if (src->total_slots > 0)
				engine_progress(b->cfg, "sifting",
						(double)st->pulses / (double)src->total_slots);
		}
		qkd_bob_chunk_cleanup(&c);
		if (rc <= 0)
			break;	/* 0: the source is exhausted */
	}
	st->sifted_bits = b->used;
	st->rnd_bits = b->rs_basis.n;
	st->rnd_basis_bits = b->rs_basis.n;
	(void)engine_randomness_assess(&b->rs_basis, b->cfg->estimate.confidence, &st->rnd_basis);
	st->cpu_sift = qkd_cpu_seconds() - t0;
	return rc < 0 ? rc : QKD_OK;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* k sorted distinct positions out of n (k <= n/10): draw, sort, drop
 * duplicates, draw again for the missing ones. Expected draws ~ k. */
static int pick_positions(struct qkd_rng *rng, size_t n, size_t k, uint64_t **out)
{
	uint64_t *pos = malloc((k ? k : 1) * sizeof *pos);
	size_t got = 0;

	*out = pos;
	if (pos == NULL)
		return QKD_ERR_NOMEM;
	while (got < k) {
		size_t u = 0;

		while (got < k)
			pos[got++] = qkd_rng_below(rng, n);
		qsort(pos, got, sizeof *pos, cmp_u64);
		for (size_t i = 0; i < got; i++)
			if (u == 0 || pos[i] != pos[u - 1])
				pos[u++] = pos[i];
		got = u;
	}
	return QKD_OK;
}

/* The estimate that sizes the first frames' blocks: the sample pooled
 * with the link's earlier rounds (cfg->prior_*), by Laplace's rule, which
 * keeps it positive when nothing was in error. */
static double first_estimate(const struct bob *b, uint64_t errors, uint64_t bits)
{
	return ((double)errors + (double)b->cfg->prior_errors + 1) /
	       ((double)bits + (double)b->cfg->prior_bits + 2);
}

static int bob_sample(struct bob *b)
{
	struct qkd_engine_stats *st = b->st;
	size_t k = b->cfg->sample_bits;
	struct qkd_bits mine = {0}, theirs = {0};
	uint64_t *pos = NULL, prev = 0;
	struct qkd_rbuf r;
	double t0 = qkd_cpu_seconds();
	int rc;

	if (k > b->used / 10)
		k = b->used / 10;	/* never spend more than a tenth of the key */
	rc = pick_positions(b->rng, b->used, k, &pos);
	if (rc == QKD_OK)
		rc = qkd_bits_init(&mine, k);
	if (rc != QKD_OK)
		goto out;
	qkd_wbuf_reset(&b->msg);
	qkd_put_varint(&b->msg, k);
	for (size_t i = 0; i < k; i++) {
		qkd_put_varint(&b->msg, pos[i] - prev);
		prev = pos[i];
		qkd_bits_set(&mine, i, qkd_bits_get(&b->pool, pos[i]));
	}
	qkd_put_bits(&b->msg, &mine);
	rc = send_msg(b, QKD_MSG_SAMPLE_REQ);
	if (rc == QKD_OK)
		rc = qkd_channel_expect(b->ch, QKD_MSG_SAMPLE_REPLY, &r);
	if (rc == QKD_OK)
		rc = qkd_get_bits(&r, &theirs, k);
	if (rc == QKD_OK && (theirs.n != k || !qkd_rbuf_done(&r)))
		rc = QKD_ERR_PROTO;
	if (rc != QKD_OK)
		goto out;
	st->sample_bits = k;
	st->sample_errors = qkd_bits_distance(&mine, &theirs);
	engine_pool_remove(&b->pool, &b->used, pos, k);
	if (b->truth)
		engine_pool_remove(&b->eve_pool, &b->eve_used, pos, k);
	b->qber_est = first_estimate(b, st->sample_errors, k);
out:
	st->cpu_sample = qkd_cpu_seconds() - t0;
	free(pos);
	qkd_bits_cleanup(&mine);
	qkd_bits_cleanup(&theirs);
	return rc;
}

/* Decoy mode: disclose the Z-basis test set, get Alice's, count errors per
 * intensity (see on_test in engine_alice.c). */
static int bob_test(struct bob *b)
{
	struct qkd_engine_stats *st = b->st;
	struct qkd_bits mine, theirs = {0};
	struct qkd_rbuf r;
	double t0 = qkd_cpu_seconds();
	int rc;

	engine_decoy_test_view(&b->dec, &mine);
	qkd_wbuf_reset(&b->msg);
	qkd_put_varint(&b->msg, mine.n);
	qkd_put_bits(&b->msg, &mine);
	rc = send_msg(b, QKD_MSG_TEST_REQ);
	if (rc == QKD_OK)
		rc = qkd_channel_expect(b->ch, QKD_MSG_TEST_REPLY, &r);
	if (rc == QKD_OK)
		rc = qkd_get_bits(&r, &theirs, mine.n);
	if (rc == QKD_OK && (theirs.n != mine.n || !qkd_rbuf_done(&r)))
		rc = QKD_ERR_PROTO;
	if (rc == QKD_OK) {
		engine_decoy_count_errors(&b->dec, &theirs);
		st->sample_bits = mine.n;
		st->sample_errors = engine_decoy_test_errors(&b->dec);
		b->qber_est = first_estimate(b, st->sample_errors, mine.n);
	}
	qkd_bits_cleanup(&theirs);
	st->cpu_sample = qkd_cpu_seconds() - t0;
	return rc;
}

static double bob_qber_estimate(void *ctx)
{
	return ((struct bob *)ctx)->qber_est;
}

static int bob_frame_done(void *ctx, uint64_t id, struct qkd_bits *bits,
			  uint64_t disclosed, uint64_t corrected)
{
	struct bob *b = ctx;
	struct qkd_engine_stats *st = b->st;
	struct engine_frame *f;

	if (id >= b->fr.n || b->fr.f[id].corrected || bits->n != b->fr.f[id].bits.n) {
		qkd_bits_cleanup(bits);
		return QKD_ERR_PROTO;
	}
	f = &b->fr.f[id];
	qkd_bits_cleanup(&f->bits);
	f->bits = *bits;
	f->errors = corrected;
	f->disclosed = disclosed;
	f->corrected = true;
	st->frames++;
	st->frame_bits += bits->n;
	st->errors_corrected += corrected;
	st->ec_disclosed_bits += disclosed;
	st->ec_ideal_bits += (double)bits->n * qkd_binary_entropy((double)corrected / (double)bits->n);
	/* Later frames are sized from everything corrected so far (Laplace's
	 * rule keeps it positive); the first ones from the sample. */
	b->qber_est = (double)(st->errors_corrected + 1) / (double)(st->frame_bits + 2);
	engine_progress(b->cfg, "error correction", (double)st->frames / (double)b->fr.n);
	return QKD_OK;
}

static int bob_correct(struct bob *b)
{
	struct qkd_ec_bob_driver d = {
		.code = b->cfg->ec, .rng = b->rng, .window = b->cfg->frames_in_flight,
		.qber_estimate = bob_qber_estimate, .done = bob_frame_done, .ctx = b,
	};
	struct qkd_bits *frames = malloc(b->fr.n * sizeof *frames);
	double t0 = qkd_cpu_seconds();
	int rc = QKD_ERR_NOMEM;

	if (frames != NULL) {
		/* The driver reads the sifted frames; results replace them. */
		for (size_t i = 0; i < b->fr.n; i++)
			frames[i] = b->fr.f[i].bits;
		rc = qkd_ec_drive_bob(b->ch, &d, frames, b->fr.n);
	}
	b->st->ec_round_trips = d.round_trips;
	free(frames);
	b->st->cpu_ec = qkd_cpu_seconds() - t0;
	return rc;
}

static int bob_verify(struct bob *b)
{
	struct qkd_engine_stats *st = b->st;
	struct qkd_bits ok = {0};
	uint64_t key = qkd_rng_u64(b->rng);
	struct qkd_rbuf r;
	double t0 = qkd_cpu_seconds();
	int rc;

	qkd_wbuf_reset(&b->msg);
	qkd_put_u64(&b->msg, key);
	qkd_put_varint(&b->msg, b->fr.n);
	for (size_t i = 0; i < b->fr.n; i++)
		qkd_put_u64(&b->msg, qkd_verify_tag(&b->fr.f[i].bits, key));
	rc = send_msg(b, QKD_MSG_VERIFY_REQ);
	if (rc == QKD_OK)
		rc = qkd_channel_expect(b->ch, QKD_MSG_VERIFY_REPLY, &r);
	if (rc == QKD_OK)
		rc = qkd_get_bits(&r, &ok, b->fr.n);
	if (rc == QKD_OK && (ok.n != b->fr.n || !qkd_rbuf_done(&r)))
		rc = QKD_ERR_PROTO;
	for (size_t i = 0; rc == QKD_OK && i < b->fr.n; i++) {
		b->fr.f[i].verified = qkd_bits_get(&ok, i);
		b->fr.f[i].failed = !b->fr.f[i].verified;
		st->frames_failed_verification += b->fr.f[i].failed;
		st->verify_disclosed_bits += QKD_VERIFY_TAG_BITS;
	}
	qkd_bits_cleanup(&ok);
	st->cpu_verify = qkd_cpu_seconds() - t0;
	return rc;
}

/* Truth: key bits of the block's verified frames that Eve knew. */
static uint64_t eve_known_in(const struct bob *b, size_t first, size_t count)
{
	uint64_t n = 0;

	for (size_t i = first; i < first + count && i < b->eve_fr.n; i++)
		if (b->fr.f[i].verified)
			n += qkd_bits_weight(&b->eve_fr.f[i].bits);
	return n;
}

static int bob_amplify_block(struct bob *b, size_t first, size_t count,
			     struct qkd_bits *key, size_t *key_used)
{
	struct qkd_entropy_out est;
	struct qkd_bits in = {0}, seed = {0}, out = {0};
	uint64_t m, bits, block, their_m;
	struct qkd_rbuf r;
	bool qber_over;
	int rc = QKD_OK;

	/* Bob cannot see Alice's raw choices: his estimate has no
	 * non-randomness term, and Alice may only shorten the key below it. */
	if (b->dec.on)
		engine_decoy_block(&b->dec, b->cfg, &b->fr, first, count, 0, &est, &m, &bits,
				   &qber_over);
	else
		rc = engine_block_estimate(b->cfg, b->st, &b->fr, first, count, 0, &est, &m,
					   &bits, &qber_over);
	if (rc != QKD_OK)
		return rc;
	if (qber_over)
		engine_note_qber_abort(b->st, &b->fr, first, count);
	rc = qkd_channel_expect(b->ch, QKD_MSG_PA_SEED, &r);
	if (rc != QKD_OK)
		return rc;
	block = qkd_get_varint(&r);
	their_m = qkd_get_count(&r, bits);
	if (!qkd_rbuf_ok(&r) || block != b->st->pa_blocks || their_m > m)
		return QKD_ERR_PROTO;	/* never longer than Bob's own bound */
	m = their_m;
	rc = qkd_get_bits(&r, &seed, bits + m);
	if (rc == QKD_OK && (!qkd_rbuf_done(&r) || seed.n != (m ? bits + m - 1 : 0)))
		rc = QKD_ERR_PROTO;
	if (rc == QKD_OK && m > 0)
		rc = engine_block_concat(&b->fr, first, count, &in);
	if (rc == QKD_OK && m > 0)
		rc = qkd_pa_toeplitz(&out, m, &in, &seed);
	if (rc == QKD_OK && m > 0)
		rc = engine_key_append(key, key_used, &out);
	if (rc == QKD_OK) {
		if (b->truth)
			b->st->eve_known_bits += eve_known_in(b, first, count);
		engine_stats_add_entropy(b->st, &est);
		b->st->pa_blocks++;
		b->st->pa_input_bits += bits;
		b->st->secret_bits += m;
	}
	qkd_bits_cleanup(&in);
	qkd_bits_cleanup(&seed);
	qkd_bits_cleanup(&out);
	return rc;
}

/* Tell Alice the errors corrected in every frame: she needs e for the
 * estimate, and the exact QBER decides the abort. */
static int bob_estimate(struct bob *b)
{
	qkd_wbuf_reset(&b->msg);
	qkd_put_varint(&b->msg, b->fr.n);
	for (size_t i = 0; i < b->fr.n; i++)
		qkd_put_varint(&b->msg, b->fr.f[i].errors);
	return send_msg(b, QKD_MSG_ESTIMATE);
}

static int bob_amplify(struct bob *b, struct qkd_bits *key, size_t *key_used)
{
	size_t first = 0, count;
	double t0 = qkd_cpu_seconds();
	int rc = bob_estimate(b);

	if (rc == QKD_OK && b->dec.on)
		rc = engine_decoy_bound(&b->dec, b->cfg, b->st, &b->fr, 0);
	while (rc == QKD_OK && engine_next_block(&b->fr, &first, &count, b->cfg->pa_block_bits)) {
		rc = bob_amplify_block(b, first, count, key, key_used);
		first += count;
	}
	b->st->cpu_pa = qkd_cpu_seconds() - t0;
	return rc;
}

static int bob_run(struct bob *b, const struct qkd_bob_source *src,
		   struct qkd_bits *key, size_t *key_used)
{
	int rc = bob_hello(b);

	if (rc == QKD_OK)
		rc = bob_sift(b, src);
	if (rc != QKD_OK)
		return rc;
	if (b->used == 0) {
		b->st->abort = QKD_ABORT_NO_SIFTED;
		return QKD_OK;
	}
	rc = b->dec.on ? bob_test(b) : bob_sample(b);
	if (rc != QKD_OK)
		return rc;
	if (b->st->sample_bits > 0 &&
	    (double)b->st->sample_errors > b->cfg->abort_qber * (double)b->st->sample_bits) {
		b->st->abort = QKD_ABORT_SAMPLE_QBER;
		b->st->qber_abort_value = (double)b->st->sample_errors / (double)b->st->sample_bits;
		return QKD_OK;
	}
	rc = engine_frames_cut(&b->fr, &b->pool, b->used, b->cfg->frame_bits);
	if (rc == QKD_OK && b->truth)
		rc = engine_frames_cut(&b->eve_fr, &b->eve_pool, b->eve_used, b->cfg->frame_bits);
	if (rc == QKD_OK)
		rc = bob_correct(b);
	if (rc == QKD_OK)
		rc = bob_verify(b);
	if (rc == QKD_OK)
		rc = bob_amplify(b, key, key_used);
	return rc;
}

int qkd_engine_bob(struct qkd_channel *ch, const struct qkd_engine_config *cfg,
		   const struct qkd_bob_source *src, struct qkd_rng *rng,
		   struct qkd_engine_stats *st, struct qkd_bits *key)
{
	struct bob b;
	size_t key_used = 0;
	int rc;

	memset(&b, 0, sizeof b);
	memset(st, 0, sizeof *st);
	b.ch = ch;
	b.cfg = cfg;
	b.rng = rng;
	b.st = st;
	qkd_randomness_stats_init(&b.rs_basis);
	qkd_wbuf_init(&b.msg);
	engine_decoy_init(&b.dec, cfg);
	b.truth = src->eve_truth;
	rc = qkd_bits_init(key, 0);
	if (rc == QKD_OK)
		rc = bob_run(&b, src, key, &key_used);
	if (rc == QKD_OK) {
		qkd_wbuf_reset(&b.msg);
		rc = send_msg(&b, QKD_MSG_DONE);
		if (rc == QKD_OK)
			rc = engine_confirm(ch, false);
	} else if (rc != QKD_ERR_EOF && rc != QKD_ERR_IO) {
		/* Tell Alice why, so she stops too; her error is then ABORT. */
		engine_send_abort(ch, &b.msg, qkd_strerror(rc));
	}
	rc = engine_finish(rc, ch, st, key, key_used);
	qkd_randomness_stats_cleanup(&b.rs_basis);
	st->eve_truth = b.truth;
	engine_frames_cleanup(&b.fr);
	engine_frames_cleanup(&b.eve_fr);
	engine_decoy_cleanup(&b.dec);
	qkd_bits_cleanup(&b.eve_pool);
	qkd_bits_cleanup(&b.pool);
	qkd_wbuf_cleanup(&b.msg);
	return rc;
}
