/* sources.c - exact sampling of one event slot from independent sources.
 *
 * A mode is a list of independent sources (Poisson photon/pair counts of one
 * fate, Bernoulli dark counts). Given that some active source is non-zero,
 * the index j of the first non-zero one has
 *   P(j <= k | event) = (1 - prod_{i<=k} q_i) / (1 - prod_{all active} q_i)
 * (computed as expm1 of summed logs: exact to rounding even when the event
 * probability is 1e-12); source j is then drawn conditioned on >= 1. The
 * sources after j keep their plain laws; they are drawn the same way without
 * the conditioning: the first non-zero one among them (or none, the common
 * case, one uniform), conditioned on >= 1, and so on. The joint law of all
 * counts given the event is therefore exact, and an event slot costs a few
 * uniforms whatever the number of sources.
 */
#include "optical_int.h"

#include <math.h>
#include <string.h>

void opt_mode_clear(struct opt_mode *m)
{
	memset(m, 0, sizeof *m);
}

static struct opt_source *add(struct opt_mode *m, unsigned mask, unsigned role)
{
	struct opt_source *src = &m->src[m->n++];

	src->mask = (uint8_t)mask;
	src->role = (uint8_t)role;
	return src;
}

void opt_add_poisson(struct opt_mode *m, double mean, unsigned mask, unsigned role)
{
	struct opt_source *src = add(m, mask, role);

	src->mean = mean;
	src->q = exp(-mean);
	/* mean e^-mean / (1 - e^-mean), with the limit 1 as mean -> 0. */
	src->p1 = mean > 0 ? mean * src->q / -expm1(-mean) : 1.0;
}

void opt_add_bernoulli(struct opt_mode *m, double prob, unsigned mask, unsigned role)
{
	struct opt_source *src = add(m, mask, role);

	src->bernoulli = 1;
	src->mean = prob;
	src->q = 1.0 - prob;
	src->p1 = 1.0;
}

static double log_q(const struct opt_source *src)
{
	return src->bernoulli ? log1p(-src->mean) : -src->mean;
}

void opt_mode_seal_active(struct opt_mode *m)
{
	double l = 0.0, lj = 0.0, prev = 0.0;
	unsigned last = 0;

	m->n_active = m->n;
	for (unsigned i = 0; i < m->n; i++) {
		l += log_q(&m->src[i]);
		if (m->src[i].q < 1.0)
			last = i;
	}
	m->log_silent = l;
	for (unsigned i = 0; i < m->n; i++) {
		double c;

		lj += log_q(&m->src[i]);
		c = l < 0 ? expm1(lj) / expm1(l) : 1.0;
		/* Rounding must neither reorder nor leave a gap at the top that
		 * would let a source of probability 0 be drawn. */
		if (c < prev)
			c = prev;
		if (c > 1.0 || i >= last)
			c = 1.0;
		m->src[i].cdf = prev = c;
	}
}

/* Poisson(mean) conditioned on >= 1, by inversion from k = 1. */
static uint32_t poisson_ge1(const struct opt_source *src, double u)
{
	double pk = src->p1, f = pk;
	uint32_t k = 1;

	while (u >= f && pk > 0 && k < OPT_POISSON_KMAX) {
		k++;
		pk *= src->mean / k;
		f += pk;
	}
	return k;
}

void opt_mode_seal(struct opt_mode *m)
{
	for (unsigned st = 0; st < m->n; st++) {
		double l = 0.0;

		for (unsigned k = st; k < m->n; k++) {
			l += log_q(&m->src[k]);
			m->tail[st][k] = -expm1(l);
		}
	}
}

static uint32_t sample_ge1(const struct opt_source *src, struct opt_stream *cs)
{
	return src->bernoulli ? 1 : poisson_ge1(src, opt_u01(cs));
}

void opt_sample_counts(const struct opt_mode *m, struct opt_stream *cs, uint32_t *cnt)
{
	const struct opt_source *src = m->src;
	double u = opt_u01(cs);
	unsigned j = 0;

	for (unsigned i = 0; i < m->n; i++)
		cnt[i] = 0;
	while (j + 1 < m->n_active && !(u < src[j].cdf))
		j++;
	cnt[j] = sample_ge1(&src[j], cs);
	/* Sources after the one just drawn are unconditioned: find the first
	 * non-zero among them (usually none: one compare), and repeat. */
	for (unsigned st = j + 1; st < m->n; ) {
		const double *d = m->tail[st];
		unsigned k = st;

		u = opt_u01(cs);
		if (!(u < d[m->n - 1]))
			break;
		while (!(u < d[k]))
			k++;
		cnt[k] = sample_ge1(&src[k], cs);
		st = k + 1;
	}
}

/* 1/k for the inversion loops below: a multiply instead of a divide per
 * step (these samplers are off the detection-level path, whose draws must
 * stay bit for bit). */
#define RECIP_N 64
static const double recip_tab[RECIP_N] = {
	0.0, 1.0 / 1, 1.0 / 2, 1.0 / 3, 1.0 / 4, 1.0 / 5, 1.0 / 6, 1.0 / 7,
	1.0 / 8, 1.0 / 9, 1.0 / 10, 1.0 / 11, 1.0 / 12, 1.0 / 13, 1.0 / 14, 1.0 / 15,
	1.0 / 16, 1.0 / 17, 1.0 / 18, 1.0 / 19, 1.0 / 20, 1.0 / 21, 1.0 / 22, 1.0 / 23,
	1.0 / 24, 1.0 / 25, 1.0 / 26, 1.0 / 27, 1.0 / 28, 1.0 / 29, 1.0 / 30, 1.0 / 31,
	1.0 / 32, 1.0 / 33, 1.0 / 34, 1.0 / 35, 1.0 / 36, 1.0 / 37, 1.0 / 38, 1.0 / 39,
	1.0 / 40, 1.0 / 41, 1.0 / 42, 1.0 / 43, 1.0 / 44, 1.0 / 45, 1.0 / 46, 1.0 / 47,
	1.0 / 48, 1.0 / 49, 1.0 / 50, 1.0 / 51, 1.0 / 52, 1.0 / 53, 1.0 / 54, 1.0 / 55,
	1.0 / 56, 1.0 / 57, 1.0 / 58, 1.0 / 59, 1.0 / 60, 1.0 / 61, 1.0 / 62, 1.0 / 63,
};

static double inv(uint32_t k)
{
	return k < RECIP_N ? recip_tab[k] : 1.0 / k;
}

/* (1-p)^m: a product for the small m of photon counts, else exp/log1p. */
static double pow_q(double q, double p, uint32_t m)
{
	double r = 1.0;

	if (m > 16)
		return exp((double)m * log1p(-p));
	for (uint32_t i = 0; i < m; i++)
		r *= q;
	return r;
}

/* Binomial(m, p) by inversion from 0 for p <= 1/2 (P(0) = (1-p)^m >= 2^-m);
 * photon counts are small, and if P(0) ever underflowed the trials are drawn
 * one by one. */
static uint32_t binomial_low(struct opt_stream *cs, uint32_t m, double p)
{
	double q = 1.0 - p, pk = pow_q(q, p, m), r = p / q, f = pk, u;
	uint32_t k = 0;

	if (!(pk > 0)) {
		for (uint32_t i = 0; i < m; i++)
			k += opt_u01(cs) < p;
		return k;
	}
	u = opt_u01(cs);
	while (u >= f && k < m) {
		pk *= r * (double)(m - k) * inv(k + 1);
		k++;
		f += pk;
	}
	return k;
}

uint32_t opt_binomial(struct opt_stream *cs, uint32_t m, double p)
{
	if (m == 0 || !(p > 0))
		return 0;
	if (p >= 1.0)
		return m;
	if (m == 1)
		return opt_u01(cs) < p;
	return p <= 0.5 ? binomial_low(cs, m, p) : m - binomial_low(cs, m, 1.0 - p);
}

uint32_t opt_poisson(struct opt_stream *cs, double mean, double q)
{
	double pk = q, f = q, u;
	uint32_t k = 0;

	if (!(mean > 0))
		return 0;
	u = opt_u01(cs);
	while (u >= f && pk > 0 && k < OPT_POISSON_KMAX) {
		k++;
		pk *= mean * inv(k);
		f += pk;
	}
	return k;
}
