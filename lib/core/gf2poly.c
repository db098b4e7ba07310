/* gf2poly.c - Karatsuba and transposed-Karatsuba layers, kernel dispatch.
 *
 * Products whose shorter operand has FFT_T words or more go to the additive
 * FFT (gf2poly_fft.c); below that Karatsuba wins.
 *
 * Full product: Karatsuba on the halves of the longer operand, the three
 * half products computed in place in c and a 4h-word scratch slice, down to
 * MUL_T words; unbalanced operands are cut into squares. Middle product (the
 * Toeplitz matrix-vector product): the transposed Karatsuba of Hanrot,
 * Quercia and Zimmermann. With t = (S0,S1,S2,S3) in quarters and
 * v = (v0,v1) in halves, and MP(s,u) = words [h,2h) of s*u:
 *     c0 = MP(S1S2, v0) + MP(S0S1, v1),   c1 = MP(S2S3, v0) + MP(S1S2, v1)
 * so with P = MP(S1S2, v0+v1):
 *     c0 = P + MP(S0S1 + S1S2, v1),       c1 = P + MP(S2S3 + S1S2, v0)
 * three half-size middle products, as Karatsuba has three half products.
 * Sizes are padded once to q*2^k (T <= q < 2T) so every level splits evenly.
 */
#include "qkd/gf2poly.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gf2poly_impl.h"
#include "qkd/error.h"
#include "qkd/secret.h"

/* Recursion thresholds in words (tuned on Zen 5, see the docs). */
#define MUL_T 32
#define MP_T 32
/* Shorter operand (words) from which the additive FFT is faster. */
#define FFT_T 2048

static atomic_bool force_portable;

void qkd_gf2poly_force_portable(bool on)
{
	atomic_store(&force_portable, on);
}

const struct gf2_ops *qkd_gf2_ops_pick(void)
{
	if (atomic_load(&force_portable))
		return &qkd_gf2_ops_portable;
	/* libgcc checks XCR0 too: AVX-512 state must be enabled by the OS */
	if (__builtin_cpu_supports("vpclmulqdq") &&
	    __builtin_cpu_supports("avx512f") &&
	    __builtin_cpu_supports("avx512vl") &&
	    __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("pclmul"))
		return &qkd_gf2_ops_vpclmul;
	if (__builtin_cpu_supports("pclmul"))
		return &qkd_gf2_ops_pclmul;
	return &qkd_gf2_ops_portable;
}

const char *qkd_gf2poly_kernel(void)
{
	return qkd_gf2_ops_pick()->name;
}

static void xor_into(uint64_t *d, const uint64_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] ^= s[i];
}

/* d = x ^ y where y may be shorter (zero-extended). */
static void xor3(uint64_t *d, const uint64_t *x, const uint64_t *y,
		 size_t n, size_t ny)
{
	for (size_t i = 0; i < ny; i++)
		d[i] = x[i] ^ y[i];
	memcpy(d + ny, x + ny, (n - ny) * sizeof *d);
}

/* ---- full product --------------------------------------------------- */

static void mul_rec(gf2_win_fn *win, uint64_t *c, const uint64_t *a,
		    size_t na, const uint64_t *b, size_t nb, uint64_t *scr);

/* nb small: schoolbook kernel over chunks of a, accumulated in c. */
static void mul_small(gf2_win_fn *win, uint64_t *c, const uint64_t *a,
		      size_t na, const uint64_t *b, size_t nb)
{
	memset(c, 0, (na + nb) * sizeof *c);
	for (size_t off = 0; off < na; off += MUL_T) {
		size_t len = na - off < MUL_T ? na - off : MUL_T;

		win(c + off, a + off, len, b, nb, 0, len + nb, true);
	}
}

/* nb <= ceil(na/2): square nb x nb products along a. */
static void mul_unbalanced(gf2_win_fn *win, uint64_t *c, const uint64_t *a,
			   size_t na, const uint64_t *b, size_t nb,
			   uint64_t *scr)
{
	memset(c, 0, (na + nb) * sizeof *c);
	for (size_t off = 0; off < na; off += nb) {
		size_t len = na - off < nb ? na - off : nb;

		mul_rec(win, scr, a + off, len, b, nb, scr + len + nb);
		xor_into(c + off, scr, len + nb);
	}
}

static void mul_rec(gf2_win_fn *win, uint64_t *c, const uint64_t *a,
		    size_t na, const uint64_t *b, size_t nb, uint64_t *scr)
{
	size_t h, na1, nb1;
	uint64_t *sa, *sb, *m;

	if (na < nb) {
		const uint64_t *tp = a;
		size_t tn = na;

		a = b, na = nb, b = tp, nb = tn;
	}
	if (nb == 0) {
		memset(c, 0, na * sizeof *c);
		return;
	}
	if (nb <= MUL_T) {
		mul_small(win, c, a, na, b, nb);
		return;
	}
	h = (na + 1) / 2;
	if (nb <= h) {
		mul_unbalanced(win, c, a, na, b, nb, scr);
		return;
	}
	na1 = na - h, nb1 = nb - h;
	sa = scr, sb = scr + h, m = scr + 2 * h;
	mul_rec(win, c, a, h, b, h, scr);
	mul_rec(win, c + 2 * h, a + h, na1, b + h, nb1, scr);
	xor3(sa, a, a + h, h, na1);
	xor3(sb, b, b + h, h, nb1);
	mul_rec(win, m, sa, h, sb, h, scr + 4 * h);
	/* m = mid + lo + hi, added at x^h */
	xor_into(m, c, 2 * h);
	xor_into(m, c + 2 * h, na1 + nb1);
	xor_into(c + h, m, 2 * h);
}

static int alloc_words(uint64_t **p, size_t n)
{
	if (n > SIZE_MAX / sizeof(uint64_t))
		return QKD_ERR_RANGE;
	*p = malloc(n ? n * sizeof(uint64_t) : 1);
	return *p ? QKD_OK : QKD_ERR_NOMEM;
}

int qkd_gf2poly_mul(uint64_t *c, const uint64_t *a, size_t na,
		    const uint64_t *b, size_t nb)
{
	size_t big = na > nb ? na : nb, nscr;
	uint64_t *scr = NULL;
	int rc;

	if (na > SIZE_MAX - nb || big > (SIZE_MAX - 1024) / 8)
		return QKD_ERR_RANGE;
	if (na == 0 || nb == 0) {
		if (na + nb > 0)
			memset(c, 0, (na + nb) * sizeof *c);
		return QKD_OK;
	}
	if ((na < nb ? na : nb) >= FFT_T && qkd_gf2_fft_scratch(na, nb) != 0)
		return qkd_gf2_fft_mul(qkd_gf2_ops_pick(), c, a, na, b, nb, 0,
				       na + nb);
	/* Karatsuba takes 4h words per level, the unbalanced split 2nb plus
	 * the square below it: 8 * big bounds both. */
	nscr = 8 * big + 1024;
	rc = alloc_words(&scr, nscr);
	if (rc != QKD_OK)
		return rc;
	mul_rec(qkd_gf2_ops_pick()->win, c, a, na, b, nb, scr);
	qkd_free_secret(scr, nscr * sizeof *scr);
	return QKD_OK;
}

/* ---- middle product ------------------------------------------------- */

size_t qkd_gf2_mp_size(size_t n)
{
	size_t k = 0, q;

	if (n < 2 * MP_T)
		return n;
	while ((n >> k) >= 2 * MP_T)
		k++;
	q = ((n - 1) >> k) + 1;	/* ceil(n / 2^k), in [T, 2T] */
	if (q > (SIZE_MAX >> k))
		return 0;
	return q << k;
}

size_t qkd_gf2_mp_scratch(size_t n)
{
	return 4 * n + 8;	/* 2n at this level, then halving: < 4n */
}

void qkd_gf2_mp_run(gf2_win_fn *win, uint64_t *c, const uint64_t *t,
		    const uint64_t *v, size_t n, bool acc, uint64_t *scr)
{
	size_t h = n / 2;
	uint64_t *sv, *st, *p, *next;

	if (n < 2 * MP_T || (n & 1)) {
		/* only sizes from qkd_gf2_mp_size() get here: 2n < 4 MP_T */
		if (n > 0)
			win(c, t, 2 * n, v, n, n, 2 * n, acc);
		return;
	}
	sv = scr, st = scr + h, p = scr + 3 * h, next = scr + 4 * h;
	xor3(sv, v, v + h, h, h);
	qkd_gf2_mp_run(win, p, t + h, sv, h, false, next);
	if (acc) {
		xor_into(c, p, h);
		xor_into(c + h, p, h);
	} else {
		memcpy(c, p, h * sizeof *c);
		memcpy(c + h, p, h * sizeof *c);
	}
	xor3(st, t, t + h, 2 * h, 2 * h);
	qkd_gf2_mp_run(win, c, st, v + h, h, true, next);
	xor3(st, t + 2 * h, t + h, 2 * h, 2 * h);
	qkd_gf2_mp_run(win, c + h, st, v, h, true, next);
}

int qkd_gf2poly_mulmid(uint64_t *c, const uint64_t *t, const uint64_t *v,
		       size_t n)
{
	size_t np = qkd_gf2_mp_size(n), d, nscr, tot;
	uint64_t *buf = NULL, *tp, *vp, *cp, *scr;
	int rc;

	if (n == 0)
		return QKD_OK;
	if (np == 0 || np > (SIZE_MAX / 8 - 64) / 8)
		return QKD_ERR_RANGE;
	d = np - n;
	nscr = qkd_gf2_mp_scratch(np);
	/* Padding to np: v gets d zero words on top, t d zero words on each
	 * side; then words [np, 2np) of t'*v' start with words [n, 2n) of t*v. */
	tot = 2 * np + np + np + nscr;
	rc = alloc_words(&buf, tot);
	if (rc != QKD_OK)
		return rc;
	tp = buf, vp = tp + 2 * np, cp = vp + np, scr = cp + np;
	memset(tp, 0, d * sizeof *tp);
	memcpy(tp + d, t, 2 * n * sizeof *tp);
	memset(tp + d + 2 * n, 0, d * sizeof *tp);
	memcpy(vp, v, n * sizeof *vp);
	memset(vp + n, 0, d * sizeof *vp);
	qkd_gf2_mp_run(qkd_gf2_ops_pick()->win, cp, tp, vp, np, false, scr);
	memcpy(c, cp, n * sizeof *c);
	qkd_free_secret(buf, tot * sizeof *buf);
	return QKD_OK;
}
