/* lib/core/gf2poly_impl.h - internals shared by the lib/core/gf2poly*.c files.
 *
 * The recursive layers (gf2poly.c) bottom out in a "window" kernel that
 * computes a run of words of a small schoolbook product. There are three
 * interchangeable kernels, one file each, picked once per call by
 * qkd_gf2_kernel_pick() from what the CPU has.
 */
#ifndef QKD_GF2POLY_IMPL_H
#define QKD_GF2POLY_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest operand (words) a window kernel accepts. */
#define GF2_KMAX 256
/* Zero margin (words) the kernels keep around their private copy of t. */
#define GF2_PAD 16

/* out[k - lo] = word k of t * v, for lo <= k < hi (acc: out[k - lo] ^= ...).
 * Requires nt, nv <= GF2_KMAX, lo < hi <= nt + nv. out must not overlap t
 * or v. Roles: the recursions always pass seed-derived (public) data as t
 * and key-derived data as v, but every kernel is constant-time in both. */
typedef void gf2_win_fn(uint64_t *out, const uint64_t *t, size_t nt,
			const uint64_t *v, size_t nv, size_t lo, size_t hi,
			bool acc);

void qkd_gf2_win_portable(uint64_t *out, const uint64_t *t, size_t nt,
			  const uint64_t *v, size_t nv, size_t lo, size_t hi,
			  bool acc);
void qkd_gf2_win_pclmul(uint64_t *out, const uint64_t *t, size_t nt,
			const uint64_t *v, size_t nv, size_t lo, size_t hi,
			bool acc);
void qkd_gf2_win_vpclmul(uint64_t *out, const uint64_t *t, size_t nt,
			 const uint64_t *v, size_t nv, size_t lo, size_t hi,
			 bool acc);

/* ---- GF(2^64) vector kernels for the additive FFT (gf2poly_fft.c) ----
 * The field is GF(2)[u]/(u^64 + u^4 + u^3 + u + 1), an element a uint64_t
 * (bit i = coefficient of u^i). */

/* XOR of beta_i over the set bits i of m (beta = the Cantor basis below),
 * by byte tables: w(m) = t[0][m & 255] ^ t[1][(m >> 8) & 255] ^ ... */
struct gf2_omega {
	uint64_t t[5][256];
};

static inline uint64_t qkd_gf2_omega(const struct gf2_omega *om, uint64_t m)
{
	return om->t[0][m & 255] ^ om->t[1][(m >> 8) & 255] ^
	       om->t[2][(m >> 16) & 255] ^ om->t[3][(m >> 24) & 255] ^
	       om->t[4][(m >> 32) & 255];
}

/* Cantor basis: beta_0 = 1, beta_i^2 + beta_i = beta_(i-1). */
extern const uint64_t qkd_gf2_cantor[64];

/* Butterflies of one FFT level on two halves x, y of n words with the
 * constant c: forward x ^= c*y, y ^= x; inverse y ^= x, x ^= c*y. */
typedef void gf64_bfly_fn(uint64_t *x, uint64_t *y, size_t n, uint64_t c,
			  bool inv);
/* The three lowest levels (distances 4, 2, 1) on n words (n % 8 == 0)
 * whose first word has FFT index pos (pos % 8 == 0). */
typedef void gf64_low3_fn(uint64_t *x, size_t n, uint64_t pos,
			  const struct gf2_omega *om, bool inv);
/* a[k] = a[k] * b[k] for k < n. */
typedef void gf64_vmul_fn(uint64_t *a, const uint64_t *b, size_t n);

struct gf2_ops {
	gf2_win_fn *win;
	gf64_bfly_fn *bfly;
	gf64_low3_fn *low3;
	gf64_vmul_fn *vmul;
	const char *name;
};

extern const struct gf2_ops qkd_gf2_ops_portable, qkd_gf2_ops_pclmul,
	qkd_gf2_ops_vpclmul;

/* The kernels to use now: honours qkd_gf2poly_force_portable(), else the
 * widest ones the CPU (and OS) support. */
const struct gf2_ops *qkd_gf2_ops_pick(void);

/* Reduction of a 128-bit product (hi:lo) modulo u^64 + u^4 + u^3 + u + 1:
 * hi * u^64 = hi * (u^4 + u^3 + u + 1), whose bits past 63 (o, 4 bits)
 * fold once more without overflow. */
static inline uint64_t qkd_gf64_reduce(uint64_t lo, uint64_t hi)
{
	uint64_t o = (hi >> 60) ^ (hi >> 61) ^ (hi >> 63);

	hi ^= o;
	return lo ^ hi ^ (hi << 1) ^ (hi << 3) ^ (hi << 4);
}

/* Scalar FFT kernels written once over a field multiply MUL(x, y); the
 * portable and PCLMULQDQ files instantiate them. */
#define QKD_GF64_SCALAR_OPS(SUF, ATTR, MUL)				\
ATTR static void bfly_##SUF(uint64_t *x, uint64_t *y, size_t n,		\
			     uint64_t c, bool inv)				\
{									\
	for (size_t k = 0; k < n; k++) {				\
		if (inv) {						\
			y[k] ^= x[k];					\
			x[k] ^= MUL(c, y[k]);				\
		} else {						\
			x[k] ^= MUL(c, y[k]);				\
			y[k] ^= x[k];					\
		}							\
	}								\
}									\
ATTR static void low3_##SUF(uint64_t *x, size_t n, uint64_t pos,	\
			     const struct gf2_omega *om, bool inv)	\
{									\
	for (size_t b = 0; b < n; b += 8) {				\
		for (unsigned s = 0; s < 3; s++) {			\
			unsigned r = inv ? s : 2 - s;			\
			size_t h = (size_t)1 << r;			\
			for (size_t g = 0; g < 8; g += 2 * h) {		\
				uint64_t c = qkd_gf2_omega(om,		\
					(pos + b + g) >> r);		\
				bfly_##SUF(x + b + g, x + b + g + h, h,	\
					   c, inv);			\
			}						\
		}							\
	}								\
}									\
ATTR static void vmul_##SUF(uint64_t *a, const uint64_t *b, size_t n)	\
{									\
	for (size_t k = 0; k < n; k++)					\
		a[k] = MUL(a[k], b[k]);					\
}

/* c = words [lo, lo + nc) of a * b by the additive FFT (gf2poly_fft.c);
 * na, nb >= 1, lo + nc <= na + nb, c not overlapping a or b.
 * Returns 0 or QKD_ERR_NOMEM / QKD_ERR_RANGE. */
int qkd_gf2_fft_mul(const struct gf2_ops *ops, uint64_t *c, const uint64_t *a,
		    size_t na, const uint64_t *b, size_t nb, size_t lo,
		    size_t nc);
/* Words of memory qkd_gf2_fft_mul allocates for (na, nb); 0 on overflow. */
size_t qkd_gf2_fft_scratch(size_t na, size_t nb);

/* Middle-product sizes the recursion handles without padding: n < 2*T or
 * n = q * 2^k with T <= q < 2T. Returns the smallest such size >= n, or 0 on
 * overflow. */
size_t qkd_gf2_mp_size(size_t n);
/* Scratch words qkd_gf2_mp_run() needs for a size returned above. */
size_t qkd_gf2_mp_scratch(size_t n);
/* c (^)= words [n, 2n) of t * v, n a size from qkd_gf2_mp_size(), t 2n
 * words, v n words, scr qkd_gf2_mp_scratch(n) words. No allocation. */
void qkd_gf2_mp_run(gf2_win_fn *win, uint64_t *c, const uint64_t *t,
		    const uint64_t *v, size_t n, bool acc, uint64_t *scr);

#endif
