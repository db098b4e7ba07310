/* engine_common.c - what Alice's and Bob's engines share (engine_alice.c,
 * engine_bob.c): the settings and HELLO, frames and privacy-amplification
 * blocks, the per-block estimate, and the figures derived from the stats
 * (the abort text, the round's QBER and its source). */
#include "engine_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/ec.h"
#include "qkd/error.h"
#include "qkd/msg.h"
#include "qkd/secret.h"
#include "qkd/verify.h"
#include "qkd/sysutil.h"

void qkd_engine_config_default(struct qkd_engine_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	strcpy(cfg->ec, "cascade");
	cfg->frame_bits = QKD_EC_DEFAULT_FRAME_BITS;
	cfg->frames_in_flight = 64;
	cfg->sample_bits = 1024;
	cfg->pa_block_bits = (size_t)1 << 27;
	cfg->abort_qber = 0.11;
	qkd_entropy_in_defaults(&cfg->estimate);
	cfg->estimate.mu = 0.1;
	cfg->decoy.p_x = 0.5;
	cfg->decoy.eps_sec = QKD_DECOY_EPS_SEC_DEFAULT;
	cfg->decoy.eps_cor = QKD_DECOY_EPS_COR_DEFAULT;
}

/* The decoy settings (Lim et al. 2014, Sec. II): three ordered intensities,
 * a probability distribution over them, a basis bias and the epsilons. */
static const char *decoy_check(const struct qkd_engine_config *cfg)
{
	const double *mu = cfg->decoy.mu, *p = cfg->decoy.p_mu;

	if (!(mu[0] > mu[1] + mu[2] && mu[1] > mu[2] && mu[2] >= 0) || !isfinite(mu[0]))
		return "decoy intensities must satisfy mu > mu2 + mu3 and mu2 > mu3 >= 0";
	if (!(p[0] > 0 && p[0] < 1 && p[1] > 0 && p[1] < 1 && p[2] > 0 && p[2] < 1) ||
	    fabs(p[0] + p[1] + p[2] - 1.0) > 1e-9)
		return "decoy probabilities must each be in (0,1) and sum to 1";
	if (!(cfg->decoy.p_x > 0 && cfg->decoy.p_x < 1))
		return "P(X) must be in (0,1)";
	if (!(cfg->decoy.eps_sec > 0 && cfg->decoy.eps_sec < 1))
		return "eps_sec must be in (0,1)";
	if (!(cfg->decoy.eps_cor > 0 && cfg->decoy.eps_cor < 1))
		return "eps_cor must be in (0,1)";
	if (cfg->decoy.mu[0] != cfg->estimate.mu)
		return "the signal intensity must equal mu";
	return NULL;
}

int qkd_engine_config_check(const struct qkd_engine_config *cfg, const char **why)
{
	*why = NULL;
	if (!qkd_ec_name_valid(cfg->ec))
		*why = "unknown error-correction code";
	else if (cfg->frame_bits < 64 || cfg->frame_bits > ENGINE_MAX_FRAME_BITS)
		*why = "frame length must be between 64 and 2^28 bits";
	else if (cfg->frames_in_flight < 1 || cfg->frames_in_flight > 4096)
		*why = "frames in flight must be between 1 and 4096";
	else if (cfg->pa_block_bits < 64)
		*why = "privacy-amplification block must be at least 64 bits";
	else if (!(cfg->abort_qber > 0 && cfg->abort_qber <= 0.5))
		*why = "abort QBER must be in (0, 0.5]";
	else if (cfg->estimate.defense == QKD_DEFENSE_DECOY)
		*why = decoy_check(cfg);
	return *why ? QKD_ERR_INVAL : QKD_OK;
}

const char *qkd_abort_reason_text(enum qkd_abort_reason r)
{
	switch (r) {
	case QKD_ABORT_NONE: return "none";
	case QKD_ABORT_NO_SIFTED: return "no detection survived sifting";
	case QKD_ABORT_SAMPLE_QBER: return "QBER of the sample is above the abort threshold";
	case QKD_ABORT_QBER: return "QBER is above the abort threshold";
	}
	return "unknown";
}

double qkd_binary_entropy(double p)
{
	if (p <= 0 || p >= 1)
		return 0;
	return -p * log2(p) - (1 - p) * log2(1 - p);
}

int engine_finish(int rc, const struct qkd_channel *ch, struct qkd_engine_stats *st,
		  struct qkd_bits *key, size_t key_used)
{
	if (rc == QKD_OK)
		rc = qkd_bits_resize(key, key_used);
	if (rc != QKD_OK)
		qkd_bits_cleanup(key);
	st->bytes_sent = ch->bytes_sent;
	st->bytes_recv = ch->bytes_recv;
	st->messages_sent = ch->frames_sent;
	st->auth_tags = ch->auth_frames_sent;
	return rc;
}

int engine_confirm(struct qkd_channel *ch, bool alice)
{
	int rc;

	if (alice) {
		rc = qkd_channel_expect_seal(ch);
		return rc == QKD_OK ? qkd_channel_seal(ch) : rc;
	}
	rc = qkd_channel_seal(ch);
	return rc == QKD_OK ? qkd_channel_expect_seal(ch) : rc;
}

void engine_send_abort(struct qkd_channel *ch, struct qkd_wbuf *msg, const char *why)
{
	qkd_wbuf_reset(msg);
	qkd_put_bytes(msg, why, strlen(why));
	if (msg->err == 0)
		(void)qkd_channel_send(ch, QKD_MSG_ABORT, msg->p, msg->len);
}

void engine_progress(const struct qkd_engine_config *cfg, const char *stage, double done)
{
	if (cfg->progress != NULL)
		cfg->progress(cfg->progress_ctx, stage, done);
}

void engine_frames_cleanup(struct engine_frames *fr)
{
	if (fr == NULL || fr->f == NULL)
		return;
	for (size_t i = 0; i < fr->n; i++)
		qkd_bits_cleanup(&fr->f[i].bits);
	free(fr->f);
	fr->f = NULL;
	fr->n = 0;
}

int engine_frames_cut(struct engine_frames *fr, const struct qkd_bits *pool, size_t used,
		      size_t frame_bits)
{
	size_t n, pos = 0;
	int rc;

	fr->f = NULL;
	fr->n = 0;
	if (used == 0)
		return QKD_OK;
	/* Equal frames close to frame_bits: rounding keeps every frame within
	 * [2/3, 2] x frame_bits, and never cuts a sliver. */
	n = (used + frame_bits / 2) / frame_bits;
	if (n == 0)
		n = 1;
	fr->f = calloc(n, sizeof *fr->f);
	if (fr->f == NULL)
		return QKD_ERR_NOMEM;
	fr->n = n;
	for (size_t i = 0; i < n; i++) {
		size_t len = used / n + (i < used % n ? 1 : 0);
		struct engine_frame *f = &fr->f[i];

		rc = qkd_bits_init(&f->bits, len);
		if (rc != QKD_OK) {
			engine_frames_cleanup(fr);
			return rc;
		}
		qkd_bits_copy_range(&f->bits, 0, pool, pos, len);
		pos += len;
	}
	return QKD_OK;
}

void engine_hello_write(struct qkd_wbuf *w, const struct qkd_engine_config *cfg)
{
	const struct qkd_entropy_in *e = &cfg->estimate;

	qkd_put_u8(w, ENGINE_PROTO_VERSION);
	qkd_put_varint(w, strlen(cfg->ec));
	qkd_put_bytes(w, cfg->ec, strlen(cfg->ec));
	qkd_put_varint(w, cfg->frame_bits);
	qkd_put_varint(w, cfg->sample_bits);
	qkd_put_varint(w, cfg->pa_block_bits);
	qkd_put_double(w, cfg->abort_qber);
	qkd_put_u8(w, (uint8_t)e->source);
	qkd_put_u8(w, (uint8_t)e->defense);
	qkd_put_double(w, e->confidence);
	qkd_put_double(w, e->nonrandom);
	qkd_put_double(w, e->pa_margin);
	qkd_put_double(w, e->mu);
	if (e->defense == QKD_DEFENSE_DECOY) {
		for (int k = 0; k < 3; k++) {
			qkd_put_double(w, cfg->decoy.mu[k]);
			qkd_put_double(w, cfg->decoy.p_mu[k]);
		}
		qkd_put_double(w, cfg->decoy.p_x);
		qkd_put_double(w, cfg->decoy.eps_sec);
		qkd_put_double(w, cfg->decoy.eps_cor);
	}
}

int engine_hello_check(struct qkd_rbuf *r, const struct qkd_engine_config *cfg,
		       const char **why)
{
	struct qkd_wbuf mine;
	int rc = QKD_OK;

	/* Settings must match field for field: compare the encodings. */
	qkd_wbuf_init(&mine);
	engine_hello_write(&mine, cfg);
	*why = NULL;
	if (mine.err)
		rc = mine.err;
	else if (qkd_rbuf_left(r) < 1 || r->p[r->off] != ENGINE_PROTO_VERSION)
		*why = "protocol version differs";
	else if (qkd_rbuf_left(r) != mine.len || memcmp(r->p + r->off, mine.p, mine.len) != 0)
		*why = "link parameters differ between Alice and Bob";
	if (*why != NULL)
		rc = QKD_ERR_PROTO;
	qkd_wbuf_cleanup(&mine);
	return rc;
}

void engine_pool_remove(struct qkd_bits *pool, size_t *used, const uint64_t *pos, size_t k)
{
	size_t out = pos[0], from;

	if (k == 0)
		return;
	/* Slide each run between two removed positions down, a word at a time. */
	for (size_t j = 0; j < k; j++) {
		size_t end = j + 1 < k ? (size_t)pos[j + 1] : *used;

		from = (size_t)pos[j] + 1;
		if (end > from) {
			qkd_bits_copy_range(pool, out, pool, from, end - from);
			out += end - from;
		}
	}
	for (size_t i = out; i < *used; i++)
		qkd_bits_set(pool, i, 0);
	*used = out;
}

bool engine_next_block(const struct engine_frames *fr, size_t *first, size_t *count,
		       size_t max_bits)
{
	size_t i = *first, bits = 0;

	while (i < fr->n && !fr->f[i].verified)
		i++;
	if (i == fr->n)
		return false;
	*first = i;
	*count = 0;
	for (; i < fr->n; i++) {
		if (!fr->f[i].verified)
			continue;
		if (*count > 0 && bits + fr->f[i].bits.n > max_bits)
			break;
		bits += fr->f[i].bits.n;
		*count = i - *first + 1;
	}
	return true;
}

int engine_block_concat(const struct engine_frames *fr, size_t first, size_t count,
			struct qkd_bits *out)
{
	size_t total = 0, pos = 0;
	int rc;

	for (size_t i = first; i < first + count; i++)
		if (fr->f[i].verified)
			total += fr->f[i].bits.n;
	rc = qkd_bits_init(out, total);
	if (rc != QKD_OK)
		return rc;
	for (size_t i = first; i < first + count; i++) {
		const struct qkd_bits *b = &fr->f[i].bits;

		if (!fr->f[i].verified)
			continue;
		qkd_bits_copy_range(out, pos, b, 0, b->n);
		pos += b->n;
	}
	return QKD_OK;
}

void engine_block_sums(const struct engine_frames *fr, size_t first, size_t count,
		       uint64_t *bits, uint64_t *errors, uint64_t *disclosed)
{
	*bits = *errors = *disclosed = 0;
	for (size_t i = first; i < first + count; i++) {
		const struct engine_frame *f = &fr->f[i];

		if (!f->verified)
			continue;
		*bits += f->bits.n;
		*errors += f->errors;
		*disclosed += f->disclosed + QKD_VERIFY_TAG_BITS;
	}
}

int engine_block_estimate(const struct qkd_engine_config *cfg, const struct qkd_engine_stats *st,
			  const struct engine_frames *fr, size_t first, size_t count,
			  double nonrandom_per_bit, struct qkd_entropy_out *out, uint64_t *m,
			  uint64_t *block_bits, bool *qber_over)
{
	struct qkd_entropy_in in = cfg->estimate;
	uint64_t b, e, d;
	double share;
	int rc;

	engine_block_sums(fr, first, count, &b, &e, &d);
	*block_bits = b;
	*m = 0;
	*qber_over = false;
	memset(out, 0, sizeof *out);
	if (b == 0)
		return QKD_OK;
	/* N_tx and M are attributed to the block in proportion to its share of
	 * the bits that entered error correction (docs/protocol.md). */
	share = (double)b / (double)st->frame_bits;
	in.bits = b;
	in.errors = e;
	in.disclosed = d;
	in.nonrandom += ceil(nonrandom_per_bit * (double)b);
	in.transmitted = (uint64_t)ceil((double)st->pulses * share);
	in.detected = (uint64_t)ceil((double)st->detections * share);
	if (in.detected < b)
		in.detected = b;
	if (in.transmitted < in.detected)
		in.transmitted = in.detected;
	rc = qkd_entropy_estimate(&in, out, NULL);
	if (rc != QKD_OK)
		return rc;
	*qber_over = (double)e > cfg->abort_qber * (double)b;
	*m = *qber_over ? 0 : out->secret_bits;
	return QKD_OK;
}

void qkd_engine_qber(const struct qkd_engine_stats *st, double *qber,
		     enum qkd_qber_source *source)
{
	if (st->frame_bits > 0) {
		*qber = (double)st->errors_corrected / (double)st->frame_bits;
		*source = QKD_QBER_CORRECTED;
	} else if (st->sample_bits > 0) {
		*qber = (double)st->sample_errors / (double)st->sample_bits;
		*source = QKD_QBER_SAMPLE;
	} else {
		*qber = NAN;
		*source = QKD_QBER_NONE;
	}
}

const char *qkd_qber_source_name(enum qkd_qber_source s)
{
	switch (s) {
	case QKD_QBER_NONE: return "none";
	case QKD_QBER_CORRECTED: return "corrected";
	case QKD_QBER_SAMPLE: return "sample";
	}
	return "unknown";
}

double engine_randomness_assess(const struct qkd_randomness_stats *rs, double c,
				struct qkd_randomness_result *res)
{
	memset(res, 0, sizeof *res);
	if (qkd_randomness_assess(rs, c, res, NULL) != QKD_OK)
		return 1.0;	/* nothing to go on: no bit is trusted */
	return res->deficit_per_bit;
}

void engine_note_qber_abort(struct qkd_engine_stats *st, const struct engine_frames *fr,
			    size_t first, size_t count)
{
	uint64_t b = 0, e = 0;

	for (size_t i = first; i < first + count; i++) {
		if (fr->f[i].verified) {
			b += fr->f[i].bits.n;
			e += fr->f[i].errors;
		}
	}
	st->abort = QKD_ABORT_QBER;
	st->qber_abort_value = b ? (double)e / (double)b : 0;
}

void engine_stats_add_entropy(struct qkd_engine_stats *st, const struct qkd_entropy_out *e)
{
	struct qkd_entropy_out *t = &st->entropy;

	t->disclosed += e->disclosed;
	t->transparent += e->transparent;
	t->transparent_sd = hypot(t->transparent_sd, e->transparent_sd);
	t->nontransparent += e->nontransparent;
	t->nontransparent_sd = hypot(t->nontransparent_sd, e->nontransparent_sd);
	t->nonrandomness += e->nonrandomness;
	t->pa_margin += e->pa_margin;
	t->sigma_term += e->sigma_term;
	t->secret_real += e->secret_real;
	t->secret_bits += e->secret_bits;
	t->multiphoton_prob = e->multiphoton_prob;
	t->transparent_fraction = e->transparent_fraction;
	t->transparent_saturated = t->transparent_saturated || e->transparent_saturated;
	if (t->limiting_term == QKD_TERM_NONE || e->secret_bits == 0)
		t->limiting_term = e->limiting_term;
}

int engine_key_append(struct qkd_bits *key, size_t *used, const struct qkd_bits *src)
{
	size_t pos = *used;
	int rc;

	if (src->n > key->n - pos) {
		size_t want = key->n * 2 > pos + src->n ? key->n * 2 : pos + src->n;

		rc = qkd_bits_resize(key, want);
		if (rc != QKD_OK)
			return rc;
	}
	qkd_bits_copy_range(key, pos, src, 0, src->n);
	*used = pos + src->n;
	return QKD_OK;
}
