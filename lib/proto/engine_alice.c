/* Alice's side of the protocol engine: she answers what Bob asks, checks
 * that every request is well-formed and in order, and chooses the
 * privacy-amplification seeds. */
#include "engine_internal.h"

#include <stdlib.h>
#include <string.h>

#include "qkd/ec.h"
#include "qkd/error.h"
#include "qkd/msg.h"
#include "qkd/pa.h"
#include "qkd/secret.h"
#include "qkd/sift.h"
#include "qkd/verify.h"

enum alice_phase { PH_HELLO, PH_SIFT, PH_CORRECT, PH_ESTIMATED };

struct alice {
	struct qkd_channel *ch;
	const struct qkd_engine_config *cfg;
	const struct qkd_alice_source *src;
	struct qkd_rng *rng;
	struct qkd_engine_stats *st;
	struct qkd_wbuf msg;
	struct qkd_bits pool;
	size_t used;
	struct engine_frames fr;
	struct qkd_ec_alice *ec;
	enum alice_phase phase;
	const char *why;	/* reason sent with ABORT */
	struct qkd_randomness_stats rs_value;	/* her value choices, every pulse */
	struct qkd_randomness_stats rs_basis;	/* her bases, reported detections */
	struct qkd_bits ch_basis, ch_value;	/* buffers for a piece of them */
	double nonrandom_per_bit;	/* deficit charged to every key bit */
	struct engine_decoy dec;	/* decoy-state mode */
};

static int reply(struct alice *a, uint8_t type)
{
	if (a->msg.err)
		return a->msg.err;
	return qkd_channel_send(a->ch, type, a->msg.p, a->msg.len);
}

static int on_hello(struct alice *a, struct qkd_rbuf *r)
{
	int rc;

	if (a->phase != PH_HELLO)
		return QKD_ERR_PROTO;
	rc = engine_hello_check(r, a->cfg, &a->why);
	if (rc != QKD_OK)
		return rc;
	a->phase = PH_SIFT;
	qkd_wbuf_reset(&a->msg);
	return reply(a, QKD_MSG_HELLO_ACK);
}

/* Feed Alice's raw choices for every slot of the chunk to the randomness
 * tests, in pieces so memory stays bounded whatever the chunk size. The two
 * buffers are kept across chunks and wiped once, at the end of the run. */
static int test_choices(struct alice *a, uint64_t first, uint64_t slots)
{
	int rc = QKD_OK;

	if (a->ch_basis.w == NULL &&
	    ((rc = qkd_bits_init(&a->ch_basis, (size_t)ENGINE_CHOICES_SLOTS)) != QKD_OK ||
	     (rc = qkd_bits_init(&a->ch_value, (size_t)ENGINE_CHOICES_SLOTS)) != QKD_OK))
		return rc;
	for (uint64_t done = 0; rc == QKD_OK && done < slots; done += ENGINE_CHOICES_SLOTS) {
		uint64_t k = slots - done < ENGINE_CHOICES_SLOTS ? slots - done
								: ENGINE_CHOICES_SLOTS;
		struct qkd_bits basis = {a->ch_basis.w, (size_t)k}, value = {a->ch_value.w, (size_t)k};

		rc = a->src->choices(a->src->ctx, first + done, k, &basis, &value);
		if (rc == QKD_OK)
			rc = qkd_randomness_stats_add(&a->rs_value, &value);
	}
	return rc;
}

/* Decoy mode: announce the intensity of every kept slot (two bit strings,
 * low and high bit of the index, over the kept slots, after the keep
 * mask), send the reply, and split the kept bits into key and test. */
static int decoy_sift(struct alice *a, const struct qkd_sift_report *rep,
		      const struct qkd_bits *basis, const struct qkd_bits *value,
		      const struct qkd_bits *keep)
{
	size_t kept = qkd_bits_weight(keep), j = 0;
	uint8_t *k_all = malloc(rep->n ? rep->n : 1), *k_kept = malloc(kept ? kept : 1);
	struct qkd_bits lo = {0}, hi = {0}, keep_key = {0};
	int rc = QKD_ERR_NOMEM;

	if (k_all == NULL || k_kept == NULL)
		goto out;
	if ((rc = qkd_bits_init(&lo, kept)) != QKD_OK || (rc = qkd_bits_init(&hi, kept)) != QKD_OK ||
	    (rc = qkd_bits_init(&keep_key, rep->n)) != QKD_OK)
		goto out;
	rc = a->src->intensity(a->src->ctx, rep->slot, rep->n, k_all);
	for (size_t i = 0; rc == QKD_OK && i < rep->n; i++) {
		if (!qkd_bits_get(keep, i))
			continue;
		k_kept[j] = k_all[i];
		qkd_bits_set(&lo, j, k_all[i] & 1);
		qkd_bits_set(&hi, j, (k_all[i] >> 1) & 1);
		j++;
	}
	if (rc != QKD_OK)
		goto out;
	qkd_put_bits(&a->msg, &lo);
	qkd_put_bits(&a->msg, &hi);
	rc = reply(a, QKD_MSG_SIFT_REPLY);
	if (rc == QKD_OK)
		rc = engine_decoy_sift(&a->dec, &a->pool, &a->used, value, basis, keep, k_kept,
				       &keep_key);
out:
	free(k_all);
	free(k_kept);
	qkd_bits_cleanup(&lo);
	qkd_bits_cleanup(&hi);
	qkd_bits_cleanup(&keep_key);
	return rc;
}

static int on_sift(struct alice *a, struct qkd_rbuf *r)
{
	struct qkd_sift_report rep;
	struct qkd_bits basis = {0}, value = {0}, valid = {0}, keep = {0};
	double t0 = qkd_cpu_seconds();
	int rc;

	if (a->phase != PH_SIFT)
		return QKD_ERR_PROTO;
	rc = qkd_sift_report_read(r, &rep, ENGINE_MAX_DETECTIONS);
	if (rc != QKD_OK)
		return rc;
	/* Chunks must follow each other: a replayed or overlapping range would
	 * make Alice reuse bits she already gave out. */
	if (!qkd_rbuf_done(r) || rep.first_slot != a->st->pulses ||
	    rep.slots > ENGINE_MAX_CHUNK_SLOTS) {
		a->why = "sifting report out of sequence";
		rc = QKD_ERR_PROTO;
		goto out;
	}
	if ((rc = qkd_bits_init(&basis, rep.n)) != QKD_OK ||
	    (rc = qkd_bits_init(&value, rep.n)) != QKD_OK ||
	    (rc = qkd_bits_init(&valid, rep.n)) != QKD_OK ||
	    (rc = qkd_bits_init(&keep, rep.n)) != QKD_OK)
		goto out;
	rc = a->src->lookup(a->src->ctx, rep.slot, rep.n, &basis, &value, &valid);
	if (rc != QKD_OK)
		goto out;
	qkd_sift_decide(&rep, &basis, &valid, &keep);
	qkd_wbuf_reset(&a->msg);
	qkd_put_bits(&a->msg, &keep);
	if (a->dec.on)
		rc = decoy_sift(a, &rep, &basis, &value, &keep);
	else
		rc = reply(a, QKD_MSG_SIFT_REPLY);
	if (rc == QKD_OK && !a->dec.on)
		rc = qkd_sift_append(&a->pool, &a->used, &value, &keep);
	/* Her value choices are tested over every pulse (they become key bits
	 * and set the non-randomness term); her bases, which only decide what
	 * is sifted, over the detections Bob reports, as his are (report only). */
	if (rc == QKD_OK && a->src->choices != NULL)
		rc = test_choices(a, rep.first_slot, rep.slots);
	if (rc == QKD_OK && a->src->choices != NULL)
		rc = qkd_randomness_stats_add(&a->rs_basis, &basis);
	a->st->pulses += rep.slots;
	a->st->detections += rep.n;
	a->st->sifted_bits = a->used;
out:
	a->st->cpu_sift += qkd_cpu_seconds() - t0;
	qkd_sift_report_cleanup(&rep);
	qkd_bits_cleanup(&basis);
	qkd_bits_cleanup(&value);
	qkd_bits_cleanup(&valid);
	qkd_bits_cleanup(&keep);
	return rc;
}

static int read_positions(struct qkd_rbuf *r, size_t k, size_t n, uint64_t *pos)
{
	uint64_t prev = 0;

	for (size_t i = 0; i < k; i++) {
		uint64_t gap = qkd_get_varint(r);

		/* Strictly increasing after the first, all below n. */
		if (!qkd_rbuf_ok(r) || (i > 0 && gap == 0) || gap >= n - prev)
			return QKD_ERR_PROTO;
		pos[i] = prev + gap;
		prev = pos[i];
	}
	return QKD_OK;
}

static int start_correction(struct alice *a)
{
	int rc = engine_frames_cut(&a->fr, &a->pool, a->used, a->cfg->frame_bits);

	if (rc == QKD_OK)
		rc = qkd_ec_alice_new(&a->ec, a->cfg->ec);
	for (size_t i = 0; rc == QKD_OK && i < a->fr.n; i++)
		rc = qkd_ec_alice_add_frame(a->ec, i, &a->fr.f[i].bits);
	a->phase = PH_CORRECT;
	return rc;
}

/* Sifting is over: every raw choice has been seen. */
static void sifting_over(struct alice *a)
{
	struct qkd_engine_stats *st = a->st;
	double c = a->cfg->estimate.confidence;

	if (a->src->choices == NULL)
		return;
	st->rnd_tested = true;
	st->rnd_bits = a->rs_value.n;
	st->rnd_basis_bits = a->rs_basis.n;
	a->nonrandom_per_bit = engine_randomness_assess(&a->rs_value, c, &st->rnd_value);
	(void)engine_randomness_assess(&a->rs_basis, c, &st->rnd_basis);
}

/* Decoy mode: Bob discloses his whole Z-basis test set, Alice answers with
 * hers; both count the errors per intensity (m_{Z,k}). The test QBER plays
 * the part of the sample's. */
static int on_test(struct alice *a, struct qkd_rbuf *r)
{
	struct qkd_engine_stats *st = a->st;
	struct qkd_bits theirs = {0}, mine;
	uint64_t k, errors;
	double t0 = qkd_cpu_seconds();
	int rc;

	if (a->phase != PH_SIFT || !a->dec.on)
		return QKD_ERR_PROTO;
	sifting_over(a);
	engine_decoy_test_view(&a->dec, &mine);
	k = qkd_get_count(r, mine.n);
	rc = qkd_get_bits(r, &theirs, mine.n);
	if (rc == QKD_OK && (k != mine.n || theirs.n != mine.n || !qkd_rbuf_done(r)))
		rc = QKD_ERR_PROTO;
	if (rc == QKD_OK) {
		qkd_wbuf_reset(&a->msg);
		qkd_put_bits(&a->msg, &mine);
		rc = reply(a, QKD_MSG_TEST_REPLY);
	}
	if (rc != QKD_OK)
		goto out;
	engine_decoy_count_errors(&a->dec, &theirs);
	errors = engine_decoy_test_errors(&a->dec);
	st->sample_bits = mine.n;
	st->sample_errors = errors;
	if (mine.n > 0 && (double)errors > a->cfg->abort_qber * (double)mine.n) {
		st->abort = QKD_ABORT_SAMPLE_QBER;
		st->qber_abort_value = (double)errors / (double)mine.n;
		a->phase = PH_ESTIMATED;	/* Bob ends the run next */
	} else {
		rc = start_correction(a);
	}
out:
	st->cpu_sample = qkd_cpu_seconds() - t0;
	qkd_bits_cleanup(&theirs);
	return rc;
}

static int on_sample(struct alice *a, struct qkd_rbuf *r)
{
	struct qkd_engine_stats *st = a->st;
	struct qkd_bits theirs = {0}, mine = {0};
	uint64_t *pos = NULL;
	size_t k;
	double t0 = qkd_cpu_seconds();
	int rc = QKD_ERR_PROTO;

	if (a->phase != PH_SIFT || a->dec.on)
		return QKD_ERR_PROTO;
	sifting_over(a);
	k = (size_t)qkd_get_count(r, a->cfg->sample_bits < a->used ? a->cfg->sample_bits : a->used);
	if (!qkd_rbuf_ok(r))
		goto out;
	pos = malloc((k ? k : 1) * sizeof *pos);
	if (pos == NULL || (rc = qkd_bits_init(&mine, k)) != QKD_OK) {
		rc = QKD_ERR_NOMEM;
		goto out;
	}
	rc = read_positions(r, k, a->used, pos);
	if (rc == QKD_OK)
		rc = qkd_get_bits(r, &theirs, k);
	if (rc == QKD_OK && (theirs.n != k || !qkd_rbuf_done(r)))
		rc = QKD_ERR_PROTO;
	if (rc != QKD_OK)
		goto out;
	for (size_t i = 0; i < k; i++)
		qkd_bits_set(&mine, i, qkd_bits_get(&a->pool, pos[i]));
	qkd_wbuf_reset(&a->msg);
	qkd_put_bits(&a->msg, &mine);
	rc = reply(a, QKD_MSG_SAMPLE_REPLY);
	if (rc != QKD_OK)
		goto out;
	st->sample_bits = k;
	st->sample_errors = qkd_bits_distance(&mine, &theirs);
	engine_pool_remove(&a->pool, &a->used, pos, k);
	if (k > 0 && (double)st->sample_errors > a->cfg->abort_qber * (double)k) {
		st->abort = QKD_ABORT_SAMPLE_QBER;
		st->qber_abort_value = (double)st->sample_errors / (double)k;
		a->phase = PH_ESTIMATED;	/* Bob ends the run next */
	} else {
		rc = start_correction(a);
	}
out:
	st->cpu_sample = qkd_cpu_seconds() - t0;
	free(pos);
	qkd_bits_cleanup(&mine);
	qkd_bits_cleanup(&theirs);
	return rc;
}

static int on_ec(struct alice *a, struct qkd_rbuf *r)
{
	uint64_t id, disclosed;
	double t0 = qkd_cpu_seconds();
	int rc;

	if (a->phase != PH_CORRECT)
		return QKD_ERR_PROTO;
	qkd_wbuf_reset(&a->msg);
	rc = qkd_ec_alice_answer(a->ec, r, &a->msg);
	if (rc == QKD_OK)
		rc = reply(a, QKD_MSG_EC_REPLY);
	a->st->ec_round_trips++;
	while (rc == QKD_OK && (rc = qkd_ec_alice_take_done(a->ec, &id, &disclosed)) == 1) {
		if (id >= a->fr.n || a->fr.f[id].corrected) {
			rc = QKD_ERR_PROTO;
			break;
		}
		a->fr.f[id].corrected = true;
		a->fr.f[id].disclosed = disclosed;
		rc = QKD_OK;
	}
	a->st->cpu_ec += qkd_cpu_seconds() - t0;
	return rc;
}

static int on_verify(struct alice *a, struct qkd_rbuf *r)
{
	struct qkd_engine_stats *st = a->st;
	struct qkd_bits ok = {0};
	uint64_t key;
	double t0 = qkd_cpu_seconds();
	int rc;

	if (a->phase != PH_CORRECT)
		return QKD_ERR_PROTO;
	key = qkd_get_u64(r);
	if (qkd_get_count(r, a->fr.n) != a->fr.n || !qkd_rbuf_ok(r))
		return QKD_ERR_PROTO;
	for (size_t i = 0; i < a->fr.n; i++)
		if (!a->fr.f[i].corrected)
			return QKD_ERR_PROTO;	/* verification before correction ended */
	rc = qkd_bits_init(&ok, a->fr.n);
	for (size_t i = 0; rc == QKD_OK && i < a->fr.n; i++) {
		uint64_t theirs = qkd_get_u64(r);
		bool same = qkd_rbuf_ok(r) && theirs == qkd_verify_tag(&a->fr.f[i].bits, key);

		qkd_bits_set(&ok, i, same);
		a->fr.f[i].verified = same;
		a->fr.f[i].failed = !same;
		st->frames_failed_verification += !same;
		st->verify_disclosed_bits += QKD_VERIFY_TAG_BITS;
	}
	if (rc == QKD_OK && !qkd_rbuf_done(r))
		rc = QKD_ERR_PROTO;
	if (rc == QKD_OK) {
		qkd_wbuf_reset(&a->msg);
		qkd_put_bits(&a->msg, &ok);
		rc = reply(a, QKD_MSG_VERIFY_REPLY);
	}
	qkd_bits_cleanup(&ok);
	st->cpu_verify = qkd_cpu_seconds() - t0;
	return rc;
}

static int amplify_block(struct alice *a, size_t first, size_t count,
			 struct qkd_bits *key, size_t *key_used)
{
	struct qkd_entropy_out est;
	struct qkd_bits in = {0}, seed = {0}, out = {0};
	uint64_t m, bits;
	size_t seed_bits = 0;
	bool qber_over;
	int rc = QKD_OK;

	if (a->dec.on)
		engine_decoy_block(&a->dec, a->cfg, &a->fr, first, count, a->nonrandom_per_bit,
				   &est, &m, &bits, &qber_over);
	else
		rc = engine_block_estimate(a->cfg, a->st, &a->fr, first, count,
					   a->nonrandom_per_bit, &est, &m, &bits, &qber_over);
	if (rc != QKD_OK)
		return rc;
	if (qber_over)
		engine_note_qber_abort(a->st, &a->fr, first, count);
	if (m > 0)
		rc = qkd_pa_seed_bits(bits, m, &seed_bits);
	if (rc == QKD_OK)
		rc = qkd_bits_init(&seed, seed_bits);
	if (rc != QKD_OK)
		goto out;
	qkd_rng_bytes(a->rng, seed.w, qkd_bits_words(seed.n) * sizeof(uint64_t));
	qkd_bits_trim(&seed);
	qkd_wbuf_reset(&a->msg);
	qkd_put_varint(&a->msg, a->st->pa_blocks);
	qkd_put_varint(&a->msg, m);
	qkd_put_bits(&a->msg, &seed);
	rc = reply(a, QKD_MSG_PA_SEED);
	if (rc == QKD_OK && m > 0)
		rc = engine_block_concat(&a->fr, first, count, &in);
	if (rc == QKD_OK && m > 0)
		rc = qkd_pa_toeplitz(&out, m, &in, &seed);
	if (rc == QKD_OK && m > 0)
		rc = engine_key_append(key, key_used, &out);
	if (rc == QKD_OK) {
		engine_stats_add_entropy(a->st, &est);
		a->st->pa_blocks++;
		a->st->pa_input_bits += bits;
		a->st->secret_bits += m;
	}
out:
	qkd_bits_cleanup(&in);
	qkd_bits_cleanup(&seed);
	qkd_bits_cleanup(&out);
	return rc;
}

static int on_estimate(struct alice *a, struct qkd_rbuf *r, struct qkd_bits *key,
		       size_t *key_used)
{
	struct qkd_engine_stats *st = a->st;
	size_t first = 0, count;
	double t0 = qkd_cpu_seconds();
	int rc = QKD_OK;

	if (a->phase != PH_CORRECT || qkd_get_count(r, a->fr.n) != a->fr.n)
		return QKD_ERR_PROTO;
	for (size_t i = 0; i < a->fr.n; i++) {
		struct engine_frame *f = &a->fr.f[i];

		f->errors = qkd_get_count(r, f->bits.n);
	}
	if (!qkd_rbuf_done(r))
		return QKD_ERR_PROTO;
	for (size_t i = 0; i < a->fr.n; i++) {
		struct engine_frame *f = &a->fr.f[i];

		st->frames++;
		st->frame_bits += f->bits.n;
		st->ec_disclosed_bits += f->disclosed;
		st->errors_corrected += f->errors;
		st->ec_ideal_bits += (double)f->bits.n *
			qkd_binary_entropy((double)f->errors / (double)f->bits.n);
	}
	a->phase = PH_ESTIMATED;
	if (a->dec.on)
		rc = engine_decoy_bound(&a->dec, a->cfg, st, &a->fr, a->nonrandom_per_bit);
	while (rc == QKD_OK && engine_next_block(&a->fr, &first, &count, a->cfg->pa_block_bits)) {
		rc = amplify_block(a, first, count, key, key_used);
		first += count;
	}
	st->cpu_pa = qkd_cpu_seconds() - t0;
	return rc;
}

static int alice_dispatch(struct alice *a, uint8_t type, struct qkd_rbuf *r,
			  struct qkd_bits *key, size_t *key_used, bool *done)
{
	switch (type) {
	case QKD_MSG_HELLO: return on_hello(a, r);
	case QKD_MSG_SIFT_REPORT: return on_sift(a, r);
	case QKD_MSG_SAMPLE_REQ: return on_sample(a, r);
	case QKD_MSG_TEST_REQ: return on_test(a, r);
	case QKD_MSG_EC_REQ: return on_ec(a, r);
	case QKD_MSG_VERIFY_REQ: return on_verify(a, r);
	case QKD_MSG_ESTIMATE: return on_estimate(a, r, key, key_used);
	case QKD_MSG_DONE:
		*done = true;
		/* DONE carries nothing: anything in it is a malformed message. */
		if (!qkd_rbuf_done(r)) {
			a->why = "malformed DONE";
			return QKD_ERR_PROTO;
		}
		/* Bob may end the run after sifting (nothing sifted) or after an
		 * aborted sample, but never in the middle of correction. */
		if (a->phase == PH_CORRECT)
			return QKD_ERR_PROTO;
		if (a->phase == PH_SIFT && a->used == 0)
			a->st->abort = QKD_ABORT_NO_SIFTED;
		else if (a->phase != PH_ESTIMATED)
			return QKD_ERR_PROTO;
		return QKD_OK;
	case QKD_MSG_ABORT:
		a->why = "Bob aborted the run";
		return QKD_ERR_ABORT;
	default:
		a->why = "unknown message type";
		return QKD_ERR_PROTO;
	}
}

int qkd_engine_alice(struct qkd_channel *ch, const struct qkd_engine_config *cfg,
		     const struct qkd_alice_source *src, struct qkd_rng *rng,
		     struct qkd_engine_stats *st, struct qkd_bits *key)
{
	struct alice a;
	size_t key_used = 0;
	bool done = false;
	int rc;

	memset(&a, 0, sizeof a);
	memset(st, 0, sizeof *st);
	a.ch = ch;
	a.cfg = cfg;
	a.src = src;
	a.rng = rng;
	a.st = st;
	a.phase = PH_HELLO;
	qkd_randomness_stats_init(&a.rs_value);
	qkd_randomness_stats_init(&a.rs_basis);
	qkd_wbuf_init(&a.msg);
	engine_decoy_init(&a.dec, cfg);
	rc = qkd_bits_init(key, 0);
	if (rc == QKD_OK && a.dec.on && src->intensity == NULL) {
		a.why = "the decoy defense needs a source that reports pulse intensities";
		rc = QKD_ERR_INVAL;
	}
	while (rc == QKD_OK && !done) {
		struct qkd_rbuf r;
		uint8_t type;

		rc = qkd_channel_recv(ch, &type, &r);
		if (rc == QKD_OK)
			rc = alice_dispatch(&a, type, &r, key, &key_used, &done);
	}
	if (rc == QKD_OK)
		rc = engine_confirm(ch, true);
	if (rc != QKD_OK && rc != QKD_ERR_ABORT && rc != QKD_ERR_EOF && rc != QKD_ERR_IO)
		engine_send_abort(ch, &a.msg, a.why ? a.why : qkd_strerror(rc));
	rc = engine_finish(rc, ch, st, key, key_used);
	qkd_ec_alice_free(a.ec);
	qkd_randomness_stats_cleanup(&a.rs_value);
	qkd_randomness_stats_cleanup(&a.rs_basis);
	qkd_bits_cleanup(&a.ch_basis);
	qkd_bits_cleanup(&a.ch_value);
	engine_frames_cleanup(&a.fr);
	engine_decoy_cleanup(&a.dec);
	qkd_bits_cleanup(&a.pool);
	qkd_wbuf_cleanup(&a.msg);
	return rc;
}
