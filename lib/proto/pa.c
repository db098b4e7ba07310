/* pa.c - privacy amplification: Toeplitz hashing (DESIGN.md section 4).
 *
 * out = coefficients [n-1, n-1+m) of seed(x) * in(x) (see qkd/pa.h). The
 * fast path shifts the seed by sigma bits so that this window starts on a
 * word boundary (word W of (x^sigma seed) * in), cuts the input into nblk
 * blocks of K words and adds up nblk square K-word middle products:
 *
 *     out (+)= words [K, 2K) of seed'[W-(b+1)K .. W-(b-1)K) * in_b,
 *
 * the Toeplitz matrix split into K x K Toeplitz blocks. Each runs as the
 * transposed Karatsuba of gf2poly, padded to Kp = qkd_gf2_mp_size(K)
 * words: the block gets Kp-K zero words on top and the seed window widens
 * by Kp-K words on each side, which only adds terms to the discarded output
 * words. The seed buffer carries zero margins so every window is in bounds.
 */
#include "qkd/pa.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/gf2poly_impl.h"
#include "qkd/bits.h"
#include "qkd/error.h"
#include "qkd/rng.h"
#include "qkd/secret.h"

/* Smallest block (words) worth a middle product when m is tiny. */
#define PA_KMIN 64
/* Input words from which the FFT product beats the middle products
 * (measured crossover on Zen 5: between 2^20 and 2^21 input bits). */
#define PA_FFT_T 24576

static atomic_int forced_method;

void qkd_pa_force_method(int method)
{
	atomic_store(&forced_method, method);
}

static bool use_fft(size_t n)
{
	int f = atomic_load(&forced_method);

	if (f != 0)
		return f == 2;
	return qkd_bits_words(n) >= PA_FFT_T;
}

struct pa_plan {
	size_t N, M;		/* words of in, of out */
	size_t K, Kp, d;	/* block, padded block, Kp - K */
	size_t nblk;		/* input blocks */
	size_t W;		/* first output word of seed' * in */
	unsigned sigma;		/* seed' = seed << sigma */
	size_t F;		/* seed' word s sits at sbuf[F + s] */
	size_t nsbuf, nscr;	/* words of the seed buffer, of mp scratch */
	size_t total;		/* words allocated */
};

int qkd_pa_seed_bits(size_t n, size_t m, size_t *out)
{
	if (m > n)
		return QKD_ERR_INVAL;
	if (n == 0) {
		*out = 0;
		return QKD_OK;
	}
	if (m > SIZE_MAX - n + 1)
		return QKD_ERR_RANGE;
	*out = n + m - 1;
	return QKD_OK;
}

static int check_args(const struct qkd_bits *out, size_t m,
		      const struct qkd_bits *in, const struct qkd_bits *seed)
{
	size_t want;
	int rc;

	if (out == NULL || in == NULL || seed == NULL || out == in ||
	    out == seed)
		return QKD_ERR_INVAL;
	rc = qkd_pa_seed_bits(in->n, m, &want);
	if (rc != QKD_OK)
		return rc;
	if (seed->n != want || (in->n > 0 && in->w == NULL) ||
	    (want > 0 && seed->w == NULL))
		return QKD_ERR_INVAL;
	return QKD_OK;
}

/* Block size K for nblk blocks and its cost estimate (Karatsuba exponent). */
static double block_cost(size_t N, size_t M, size_t nblk, size_t *K)
{
	size_t k = (N + nblk - 1) / nblk;

	if (k < M)
		k = M;
	if (k < PA_KMIN)
		k = N < PA_KMIN ? N : PA_KMIN;
	if (k < M)
		k = M;
	*K = k;
	return (double)nblk * pow((double)qkd_gf2_mp_size(k), 1.585);
}

static int plan_make(struct pa_plan *p, size_t n, size_t m)
{
	size_t K1, K2, b1, b2;

	memset(p, 0, sizeof *p);
	p->N = qkd_bits_words(n);
	p->M = qkd_bits_words(m);
	/* fewest blocks with K >= M, or one more (smaller) block */
	b1 = p->N / p->M;
	b2 = b1 + 1;
	if (block_cost(p->N, p->M, b1, &K1) <= block_cost(p->N, p->M, b2, &K2))
		p->K = K1;
	else
		p->K = K2;
	p->nblk = (p->N + p->K - 1) / p->K;
	p->Kp = qkd_gf2_mp_size(p->K);
	if (p->Kp == 0 || p->Kp > SIZE_MAX / 64)
		return QKD_ERR_RANGE;
	p->d = p->Kp - p->K;
	p->sigma = (unsigned)((64 - (n - 1) % 64) % 64);
	p->W = (n - 1 + p->sigma) / 64;
	p->F = p->nblk * p->K + p->d - p->W;
	p->nsbuf = p->nblk * p->K + p->K + 2 * p->d;
	p->nscr = qkd_gf2_mp_scratch(p->Kp);
	p->total = p->nsbuf + 2 * p->Kp + p->nscr;
	if (p->total > SIZE_MAX / sizeof(uint64_t))
		return QKD_ERR_RANGE;
	return QKD_OK;
}

/* FFT path: seed' = seed << sigma (nsp words), then words [W, W + M) of
 * seed' * in straight from the FFT. */
static size_t fft_seed_words(size_t n, size_t m)
{
	unsigned sigma = (unsigned)((64 - (n - 1) % 64) % 64);

	return (n + m - 1 + sigma + 63) / 64;
}

size_t qkd_pa_toeplitz_scratch_bytes(size_t n, size_t m)
{
	struct pa_plan p;
	size_t ns, nf;

	if (m == 0 || m > n)
		return 0;
	if (use_fft(n)) {
		ns = fft_seed_words(n, m);
		nf = qkd_gf2_fft_scratch(ns, qkd_bits_words(n));
		return (ns + nf) * sizeof(uint64_t) + sizeof(struct gf2_omega);
	}
	if (plan_make(&p, n, m) != QKD_OK)
		return 0;
	return p.total * sizeof(uint64_t);
}

/* sbuf = zero margins around seed << sigma. */
static void load_seed(const struct pa_plan *p, uint64_t *sbuf,
		      const struct qkd_bits *seed)
{
	size_t ns = qkd_bits_words(seed->n);
	size_t nsp = (seed->n + p->sigma + 63) / 64;
	uint64_t *dst = sbuf + p->F;

	memset(sbuf, 0, p->nsbuf * sizeof *sbuf);
	for (size_t s = 0; s < nsp; s++) {
		uint64_t w = s < ns ? seed->w[s] << p->sigma : 0;

		if (p->sigma > 0 && s > 0)
			w |= seed->w[s - 1] >> (64 - p->sigma);
		dst[s] = w;
	}
	/* bits of the last seed word beyond seed->n are zero (qkd_bits
	 * invariant); even if not, they only reach coefficients past the
	 * output window. */
}

/* vb = block b of the input, zero-padded to Kp words. */
static void load_block(const struct pa_plan *p, uint64_t *vb,
		       const struct qkd_bits *in, size_t b)
{
	size_t off = b * p->K;
	size_t len = p->N - off < p->K ? p->N - off : p->K;

	memcpy(vb, in->w + off, len * sizeof *vb);
	memset(vb + len, 0, (p->Kp - len) * sizeof *vb);
	if (off + len == p->N && (in->n & 63))
		vb[len - 1] &= ((uint64_t)1 << (in->n & 63)) - 1;
}

/* out->w[0 .. M) by nblk middle products (the plan above). */
static int toeplitz_mp(struct qkd_bits *out, const struct qkd_bits *in,
		       const struct qkd_bits *seed)
{
	struct pa_plan p;
	uint64_t *buf, *sbuf, *vb, *acc, *scr;
	gf2_win_fn *win;
	int rc = plan_make(&p, in->n, out->n);

	if (rc != QKD_OK)
		return rc;
	buf = qkd_alloc_scratch(p.total * sizeof *buf);
	if (buf == NULL)
		return QKD_ERR_NOMEM;
	sbuf = buf, vb = sbuf + p.nsbuf, acc = vb + p.Kp, scr = acc + p.Kp;
	load_seed(&p, sbuf, seed);
	memset(acc, 0, p.Kp * sizeof *acc);
	win = qkd_gf2_ops_pick()->win;
	for (size_t b = 0; b < p.nblk; b++) {
		/* seed' window for block b: words W-(b+1)K-d .. W-(b-1)K+d */
		const uint64_t *t = sbuf + p.F + p.W - (b + 1) * p.K - p.d;

		load_block(&p, vb, in, b);
		qkd_gf2_mp_run(win, acc, t, vb, p.Kp, true, scr);
	}
	memcpy(out->w, acc, p.M * sizeof *acc);
	qkd_free_scratch(buf, p.total * sizeof *buf);
	return QKD_OK;
}

/* out->w[0 .. M) = words [W, W + M) of (seed << sigma) * in by one FFT
 * product (in must keep the qkd_bits invariant: zero bits past n). */
static int toeplitz_fft(struct qkd_bits *out, const struct qkd_bits *in,
			const struct qkd_bits *seed)
{
	size_t n = in->n, m = out->n, ns = fft_seed_words(n, m);
	unsigned sigma = (unsigned)((64 - (n - 1) % 64) % 64);
	size_t nsw = qkd_bits_words(seed->n), W = (n - 1 + sigma) / 64;
	uint64_t *sp = malloc(ns * sizeof *sp);
	int rc;

	if (sp == NULL)
		return QKD_ERR_NOMEM;
	for (size_t s = 0; s < ns; s++) {
		uint64_t w = s < nsw ? seed->w[s] << sigma : 0;

		if (sigma > 0 && s > 0)
			w |= seed->w[s - 1] >> (64 - sigma);
		sp[s] = w;
	}
	rc = qkd_gf2_fft_mul(qkd_gf2_ops_pick(), out->w, sp, ns, in->w,
			     qkd_bits_words(n), W, qkd_bits_words(m));
	free(sp);	/* public seed only */
	return rc;
}

int qkd_pa_toeplitz(struct qkd_bits *out, size_t m, const struct qkd_bits *in,
		    const struct qkd_bits *seed)
{
	int rc = check_args(out, m, in, seed);

	if (rc != QKD_OK) {
		if (out != NULL && out != in && out != seed)
			out->w = NULL, out->n = 0;
		return rc;
	}
	rc = qkd_bits_init(out, m);
	if (rc != QKD_OK || m == 0)
		return rc;
	if (use_fft(in->n))
		rc = toeplitz_fft(out, in, seed);
	else
		rc = toeplitz_mp(out, in, seed);
	if (rc != QKD_OK) {
		qkd_bits_cleanup(out);
		return rc;
	}
	qkd_bits_trim(out);
	return QKD_OK;
}

int qkd_pa_toeplitz_ref(struct qkd_bits *out, size_t m,
			const struct qkd_bits *in, const struct qkd_bits *seed)
{
	size_t n;
	int rc = check_args(out, m, in, seed);

	if (rc != QKD_OK) {
		if (out != NULL && out != in && out != seed)
			out->w = NULL, out->n = 0;
		return rc;
	}
	n = in->n;
	rc = qkd_bits_init(out, m);
	if (rc != QKD_OK)
		return rc;
	for (size_t i = 0; i < m; i++) {
		unsigned acc = 0;

		for (size_t j = 0; j < n; j++)	/* T[i][j] = seed[i - j + n - 1] */
			acc ^= qkd_bits_get(seed, i + n - 1 - j) &
			       qkd_bits_get(in, j);
		qkd_bits_set(out, i, acc);
	}
	return QKD_OK;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench_data(struct qkd_bits *in, struct qkd_bits *seed, size_t n,
		      size_t m)
{
	struct qkd_rng g;
	size_t ns;
	int rc;

	rc = qkd_pa_seed_bits(n, m, &ns);
	if (rc == QKD_OK)
		rc = qkd_bits_init(in, n);
	if (rc == QKD_OK)
		rc = qkd_bits_init(seed, ns);
	if (rc != QKD_OK)
		return rc;
	qkd_rng_init_seed(&g, 1, "pa-bench");
	qkd_rng_bytes(&g, in->w, qkd_bits_words(n) * sizeof(uint64_t));
	qkd_rng_bytes(&g, seed->w, qkd_bits_words(ns) * sizeof(uint64_t));
	qkd_rng_cleanup(&g);
	qkd_bits_trim(in);
	qkd_bits_trim(seed);
	return QKD_OK;
}

int qkd_pa_bench(size_t n_bits, double *seconds, size_t *peak_bytes)
{
	struct qkd_bits in = {0}, seed = {0}, out = {0};
	size_t m = n_bits / 2;
	double best = 0, spent = 0;
	int rc;

	if (n_bits < 2)
		return QKD_ERR_INVAL;
	rc = bench_data(&in, &seed, n_bits, m);
	for (unsigned r = 0; rc == QKD_OK && r < 20 && spent < 0.5; r++) {
		double t0 = now_s(), dt;

		rc = qkd_pa_toeplitz(&out, m, &in, &seed);
		dt = now_s() - t0;
		qkd_bits_cleanup(&out);
		spent += dt;
		if (r == 0 || dt < best)
			best = dt;
	}
	if (rc == QKD_OK && seconds != NULL)
		*seconds = best;
	if (rc == QKD_OK && peak_bytes != NULL)
		*peak_bytes = (qkd_bits_words(in.n) + qkd_bits_words(seed.n) +
			       qkd_bits_words(m)) * sizeof(uint64_t) +
			      qkd_pa_toeplitz_scratch_bytes(n_bits, m);
	qkd_bits_cleanup(&in);
	qkd_bits_cleanup(&seed);
	return rc;
}
