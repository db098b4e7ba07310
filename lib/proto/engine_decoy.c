/* engine_decoy.c - the engine's decoy-state mode (docs/decoy.md).
 *
 * Lim, Curty, Walenta, Xu, Zbinden 2014 (arXiv:1311.7129) bound the key
 * drawn from the X basis by single-photon counts estimated from all three
 * intensities, and the single-photon phase errors from the Z basis. So in
 * this mode sifting splits the kept detections by basis: X bits go to the
 * key pool (error correction, verification, amplification as always), Z
 * bits to a test set that is disclosed in full (TEST_REQ / TEST_REPLY) to
 * count m_{Z,k}. Alice announces the intensity of every kept slot with her
 * sifting reply, so both parties hold n_{X,k}, n_{Z,k}, m_{Z,k} and compute
 * the same length l for the whole run (Eq. 1), which is then spread over
 * the privacy-amplification blocks in proportion to their bits.
 */
#include "engine_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/secret.h"
#include "qkd/sift.h"
#include "qkd/verify.h"

void engine_decoy_init(struct engine_decoy *d, const struct qkd_engine_config *cfg)
{
	memset(d, 0, sizeof *d);
	d->on = cfg->estimate.defense == QKD_DEFENSE_DECOY;
}

void engine_decoy_cleanup(struct engine_decoy *d)
{
	qkd_bits_cleanup(&d->test);
	free(d->test_k);
	memset(d, 0, sizeof *d);
}

static int test_push(struct engine_decoy *d, unsigned bit, uint8_t k)
{
	int rc;

	if (d->test_used == d->test.n) {
		size_t want = d->test.n < 4096 ? 4096 : d->test.n * 2;
		uint8_t *nk;

		if ((rc = qkd_bits_resize(&d->test, want)) != QKD_OK)
			return rc;
		nk = realloc(d->test_k, want);
		if (nk == NULL)
			return QKD_ERR_NOMEM;
		d->test_k = nk;
	}
	qkd_bits_set(&d->test, d->test_used, bit);
	d->test_k[d->test_used++] = k;
	return QKD_OK;
}

int engine_decoy_sift(struct engine_decoy *d, struct qkd_bits *pool, size_t *used,
		      const struct qkd_bits *values, const struct qkd_bits *basis,
		      const struct qkd_bits *keep, const uint8_t *kept_intensity,
		      struct qkd_bits *keep_key)
{
	size_t j = 0;
	int rc = QKD_OK;

	for (size_t i = 0; rc == QKD_OK && i < keep->n; i++) {
		uint8_t k;

		qkd_bits_set(keep_key, i, 0);
		if (!qkd_bits_get(keep, i))
			continue;
		k = kept_intensity[j++];
		if (k >= QKD_INTENSITIES_ENGINE)
			return QKD_ERR_PROTO;
		if (qkd_bits_get(basis, i)) {	/* X: a key bit */
			d->n_x[k]++;
			qkd_bits_set(keep_key, i, 1);
		} else {			/* Z: a test bit */
			d->n_z[k]++;
			rc = test_push(d, qkd_bits_get(values, i), k);
		}
	}
	if (rc == QKD_OK)
		rc = qkd_sift_append(pool, used, values, keep_key);
	return rc;
}

void engine_decoy_test_view(const struct engine_decoy *d, struct qkd_bits *view)
{
	view->w = d->test.w;
	view->n = d->test_used;
}

void engine_decoy_count_errors(struct engine_decoy *d, const struct qkd_bits *theirs)
{
	for (size_t i = 0; i < d->test_used; i++)
		d->m_z[d->test_k[i]] += qkd_bits_get(&d->test, i) != qkd_bits_get(theirs, i);
}

uint64_t engine_decoy_test_errors(const struct engine_decoy *d)
{
	return d->m_z[0] + d->m_z[1] + d->m_z[2];
}

/* Everything the verification and correction disclosed, and the bits of
 * frames that failed verification. */
static void run_leakage(const struct engine_frames *fr, double *lambda, uint64_t *verified,
			uint64_t *discarded)
{
	*lambda = 0;
	*verified = *discarded = 0;
	for (size_t i = 0; i < fr->n; i++) {
		const struct engine_frame *f = &fr->f[i];

		*lambda += (double)f->disclosed + QKD_VERIFY_TAG_BITS;
		if (f->verified)
			*verified += f->bits.n;
		else
			*discarded += f->bits.n;
	}
}

int engine_decoy_bound(struct engine_decoy *d, const struct qkd_engine_config *cfg,
		       struct qkd_engine_stats *st, const struct engine_frames *fr,
		       double nonrandom_per_bit)
{
	struct qkd_decoy_counts *in = &st->decoy_in;
	struct qkd_decoy_out *out = &st->decoy_out;
	uint64_t verified, discarded;
	double l, lambda;

	qkd_decoy_counts_defaults(in);
	for (int k = 0; k < 3; k++) {
		in->mu[k] = cfg->decoy.mu[k];
		in->p_mu[k] = cfg->decoy.p_mu[k];
		in->n_x[k] = d->n_x[k];
		in->n_z[k] = d->n_z[k];
		in->m_z[k] = d->m_z[k];
	}
	in->p_x = cfg->decoy.p_x;
	in->eps_sec = cfg->decoy.eps_sec;
	in->eps_cor = cfg->decoy.eps_cor;
	run_leakage(fr, &lambda, &verified, &discarded);
	in->lambda_ec = lambda;
	st->decoy_used = true;
	st->decoy_discarded_bits = discarded;
	/* Too few counts for a bound (no X or no Z detections) leave l = 0. */
	if (qkd_decoy_key_length(in, out, NULL) != QKD_OK)
		memset(out, 0, sizeof *out);
	/* A discarded frame may have held single-photon bits: take its bits
	 * off; the deficit of the raw choices and the margin come off as in
	 * DESIGN 5. */
	l = (double)out->key_length - (double)discarded
	    - ceil(nonrandom_per_bit * (double)verified) - cfg->estimate.nonrandom
	    - cfg->estimate.pa_margin;
	d->key_total = l > 0 ? (uint64_t)floor(l) : 0;
	d->key_bits = verified;
	return QKD_OK;
}

void engine_decoy_block(const struct engine_decoy *d, const struct qkd_engine_config *cfg,
			const struct engine_frames *fr, size_t first, size_t count,
			double nonrandom_per_bit, struct qkd_entropy_out *out, uint64_t *m,
			uint64_t *block_bits, bool *qber_over)
{
	uint64_t b, e, dis;

	engine_block_sums(fr, first, count, &b, &e, &dis);
	memset(out, 0, sizeof *out);
	*block_bits = b;
	*qber_over = b > 0 && (double)e > cfg->abort_qber * (double)b;
	/* The block's share of l, rounded down: the shares never add up to
	 * more than l. */
	*m = 0;
	if (b > 0 && d->key_bits > 0 && !*qber_over)
		*m = (uint64_t)floor((double)d->key_total * ((double)b / (double)d->key_bits));
	if (*m > b)
		*m = b;
	out->disclosed = (double)dis;
	out->nonrandomness = ceil(nonrandom_per_bit * (double)b);
	out->secret_real = (double)*m;
	out->secret_bits = *m;
	out->limiting_term = QKD_TERM_NONTRANSPARENT;
}
