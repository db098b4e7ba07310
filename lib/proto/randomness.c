/* randomness.c - randomness tests of raw choices, DESIGN.md 5.4 (term r).
 *
 * Counting is word at a time: for a word w and its successor-aligned copy
 * nx = (w >> 1) | (next_word << 63), bit j of (w, nx) is the pair
 * (x_i, x_{i+1}) with i = 64k + j, so three popcounts per 64 bits give the
 * ones among "current" bits, the 1->1 pairs and the changes; the other
 * transition counts follow by subtraction. The estimators are in
 * docs/randomness.md.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/randomness.h"

static const double sqrt2 = 1.41421356237309504880168872420969808;

/* Sums over the pairs (x_i, x_{i+1}), 0 <= i < n-1, of one chunk. */
struct pair_sums {
	uint64_t ones;		/* ones among all n bits */
	uint64_t cur_ones;	/* ones among x_0 .. x_{n-2}: t10 + t11 */
	uint64_t t11;
	uint64_t changes;	/* t01 + t10 */
};

static inline uint64_t pc(uint64_t x)
{
	return (uint64_t)__builtin_popcountll(x);
}

/* n >= 1 bits in ceil(n/64) words of a. */
static void count_pairs(const uint64_t *a, size_t n, struct pair_sums *s)
{
	size_t words = qkd_bits_words(n), k;
	uint64_t cur = 0, t11 = 0, chg = 0, w, nx, m;
	unsigned rem;

	/* Every bit of a word but the last has its successor in the string. */
	for (k = 0; k + 1 < words; k++) {
		w = a[k];
		nx = (w >> 1) | (a[k + 1] << 63);
		cur += pc(w);
		t11 += pc(w & nx);
		chg += pc(w ^ nx);
	}
	s->ones = cur;
	rem = (unsigned)(n - 64 * k);		/* 1..64 bits in the last word */
	w = a[k];
	if (rem < 64)
		w &= ((uint64_t)1 << rem) - 1;	/* do not trust the trim invariant */
	s->ones += pc(w);
	m = ((uint64_t)1 << (rem - 1)) - 1;	/* positions with a successor here */
	nx = (w >> 1) & m;
	w &= m;
	s->cur_ones = cur + pc(w);
	s->t11 = t11 + pc(w & nx);
	s->changes = chg + pc(w ^ nx);
}

void qkd_randomness_stats_init(struct qkd_randomness_stats *st)
{
	memset(st, 0, sizeof(*st));
}

void qkd_randomness_stats_cleanup(struct qkd_randomness_stats *st)
{
	if (st != NULL)
		explicit_bzero(st, sizeof(*st));
}

int qkd_randomness_stats_add(struct qkd_randomness_stats *st,
			     const struct qkd_bits *bits)
{
	struct pair_sums s;
	uint64_t n = bits->n, pairs, t10, t01;
	unsigned first;

	if (n == 0)
		return QKD_OK;
	if (st->n > QKD_RANDOMNESS_COUNT_MAX || n > QKD_RANDOMNESS_COUNT_MAX - st->n)
		return QKD_ERR_RANGE;
	count_pairs(bits->w, (size_t)n, &s);
	pairs = n - 1;
	t10 = s.cur_ones - s.t11;
	t01 = s.changes - t10;
	st->t11 += s.t11;
	st->t10 += t10;
	st->t01 += t01;
	st->t00 += pairs - s.t11 - t10 - t01;

	/* The pair straddling the previous chunk and this one. */
	first = (unsigned)(bits->w[0] & 1);
	if (st->n > 0) {
		if (st->last)
			*(first ? &st->t11 : &st->t10) += 1;
		else
			*(first ? &st->t01 : &st->t00) += 1;
	}
	st->n += n;
	st->ones += s.ones;
	st->last = qkd_bits_get(bits, (size_t)(n - 1));
	return QKD_OK;
}

/* Reject counts that no bit string produces: then every later formula is in
 * its domain (n >= 2, p in [1/2, 1], margins consistent). */
static const char *check_stats(const struct qkd_randomness_stats *st, double c)
{
	uint64_t n = st->n, pairs = n - 1;

	if (!isfinite(c) || !(c >= 0))
		return "confidence must be finite and >= 0";
	if (n < 2)
		return "need at least 2 bits";
	if (n > QKD_RANDOMNESS_COUNT_MAX)
		return "more than 2^53 bits";
	if (st->ones > n || st->last > 1)
		return "ones > n or last not a bit";
	if (st->t00 > pairs || st->t01 > pairs || st->t10 > pairs || st->t11 > pairs ||
	    st->t00 + st->t01 + st->t10 + st->t11 != pairs)
		return "transition counts do not sum to n - 1";
	/* ones = (t10 + t11) + x_{n-1} = x_0 + (t01 + t11) */
	if (st->t10 + st->t11 + st->last != st->ones ||
	    st->ones - (st->t01 + st->t11) > 1)	/* wraps when t01 + t11 > ones */
		return "transition counts inconsistent with ones";
	return NULL;
}

/* Upper bound at c standard deviations on a probability estimated as k/m
 * (800-90B 6.3.1 form, m-1 in the variance). Fewer than 2 observations say
 * nothing, so the bound is 1 (no entropy credited). */
static double p_upper(uint64_t k, uint64_t m, double c)
{
	double p, u;

	if (m < 2)
		return 1.0;
	p = (double)k / (double)m;
	u = p + c * sqrt(p * (1.0 - p) / (double)(m - 1));
	return u < 1.0 ? u : 1.0;
}

/* -log2(p) for p in [1/2, 1], as +0 (not -0) at p = 1. */
static double min_entropy(double p)
{
	double h = -log2(p);

	return h > 0 ? h : 0.0;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Signed root of the 2x2 Pearson chi-square of (x_i, x_{i+1}): sqrt(n-1) phi.
 * Independent of the bias, asymptotically N(0,1) for any i.i.d. source. */
static double z_serial(const struct qkd_randomness_stats *st)
{
	double r0 = (double)(st->t00 + st->t01), r1 = (double)(st->t10 + st->t11);
	double c0 = (double)(st->t00 + st->t10), c1 = (double)(st->t01 + st->t11);
	double num, den;

	if (r0 == 0 || r1 == 0 || c0 == 0 || c1 == 0)
		return 0.0;	/* a constant margin: no correlation to measure */
	num = (double)st->t00 * (double)st->t11 - (double)st->t01 * (double)st->t10;
	den = sqrt(r0 * c0) * sqrt(r1 * c1);
	return num / den * sqrt((double)(st->n - 1));
}

int qkd_randomness_assess(const struct qkd_randomness_stats *st, double confidence,
			  struct qkd_randomness_result *out, const char **why)
{
	const char *reason = check_stats(st, confidence);
	double c = confidence, n, p0, p1, pmax;
	int rc = QKD_ERR_INVAL;

	memset(out, 0, sizeof(*out));
	if (reason != NULL)
		goto out;
	n = (double)st->n;
	out->p_freq_upper = p_upper(max_u64(st->ones, st->n - st->ones), st->n, c);
	p0 = p_upper(max_u64(st->t00, st->t01), st->t00 + st->t01, c);
	p1 = p_upper(max_u64(st->t10, st->t11), st->t10 + st->t11, c);
	out->p_markov_upper = p0 > p1 ? p0 : p1;
	out->h_freq = min_entropy(out->p_freq_upper);
	out->h_markov = min_entropy(out->p_markov_upper);
	pmax = out->p_freq_upper > out->p_markov_upper ? out->p_freq_upper
						      : out->p_markov_upper;
	out->h_min = min_entropy(pmax);
	/* 1 - h_min without cancelling when pmax is just above 1/2 */
	out->deficit_per_bit = log2(2.0 * pmax);
	out->z_freq = (2.0 * (double)st->ones - n) / sqrt(n);
	out->z_serial = z_serial(st);
	out->biased = fabs(out->z_freq) > c;
	out->correlated = fabs(out->z_serial) > c;
	out->false_alarm_prob = erfc(c / sqrt2);
	rc = QKD_OK;
out:
	if (why != NULL)
		*why = reason;
	return rc;
}

uint64_t qkd_randomness_deficit(const struct qkd_randomness_result *r,
				uint64_t key_source_bits)
{
	double b = (double)key_source_bits, x = b * r->deficit_per_bit;

	if (!(x > 0))
		return 0;
	if (x >= b)
		return key_source_bits;
	x = ceil(x);
	return x >= b ? key_source_bits : (uint64_t)x;
}
