/* gf2poly_base.c - portable carry-less base case and the plain reference.
 *
 * The portable kernel runs where the CPU has no PCLMULQDQ (and under
 * qkd_gf2poly_force_portable). Its 64x64 product uses integer multiplies on
 * operands thinned to every fourth bit, so no table is indexed by key bits
 * and the time does not depend on the data. The reference is deliberately a
 * different algorithm (bit-serial) so that the tests compare two independent
 * computations.
 */
#include "qkd/gf2poly.h"

#include <string.h>

#include "gf2poly_impl.h"
#include "qkd/secret.h"

/* Low 64 bits of the carry-less product. Every integer product below adds,
 * in each bit column of one residue class mod 4, at most 15 ones below bit
 * 64 (16 only at column 64, which is cut off), so the carries stay in the
 * three bits between two columns of the class and the masked class bits
 * are the exact parities. */
static inline uint64_t bmul_lo(uint64_t x, uint64_t y)
{
	const uint64_t m0 = 0x1111111111111111u, m1 = m0 << 1;
	const uint64_t m2 = m0 << 2, m3 = m0 << 3;
	uint64_t x0 = x & m0, x1 = x & m1, x2 = x & m2, x3 = x & m3;
	uint64_t y0 = y & m0, y1 = y & m1, y2 = y & m2, y3 = y & m3;
	uint64_t z0 = (x0 * y0) ^ (x1 * y3) ^ (x2 * y2) ^ (x3 * y1);
	uint64_t z1 = (x0 * y1) ^ (x1 * y0) ^ (x2 * y3) ^ (x3 * y2);
	uint64_t z2 = (x0 * y2) ^ (x1 * y1) ^ (x2 * y0) ^ (x3 * y3);
	uint64_t z3 = (x0 * y3) ^ (x1 * y2) ^ (x2 * y1) ^ (x3 * y0);

	return (z0 & m0) | (z1 & m1) | (z2 & m2) | (z3 & m3);
}

static inline uint64_t rev64(uint64_t x)
{
	x = __builtin_bswap64(x);
	x = ((x >> 4) & 0x0f0f0f0f0f0f0f0fu) | ((x & 0x0f0f0f0f0f0f0f0fu) << 4);
	x = ((x >> 2) & 0x3333333333333333u) | ((x & 0x3333333333333333u) << 2);
	x = ((x >> 1) & 0x5555555555555555u) | ((x & 0x5555555555555555u) << 1);
	return x;
}

/* Full 128-bit product; rx, ry are rev64(x), rev64(y). The reversed
 * operands multiply to the reversed 127-bit product, whose low word holds
 * the high word of x*y shifted by one. */
static inline void bmul(uint64_t *lo, uint64_t *hi, uint64_t x, uint64_t y,
			uint64_t rx, uint64_t ry)
{
	*lo = bmul_lo(x, y);
	*hi = rev64(bmul_lo(rx, ry)) >> 1;
}

void qkd_gf2_win_portable(uint64_t *out, const uint64_t *t, size_t nt,
			  const uint64_t *v, size_t nv, size_t lo, size_t hi,
			  bool acc)
{
	uint64_t rt[GF2_KMAX];

	if (!acc)
		memset(out, 0, (hi - lo) * sizeof *out);
	for (size_t j = 0; j < nt; j++)
		rt[j] = rev64(t[j]);
	for (size_t i = 0; i < nv; i++) {
		uint64_t rv = rev64(v[i]);
		/* products at word i + j with i + j in [lo - 1, hi) */
		size_t jlo = lo > i + 1 ? lo - 1 - i : 0;
		size_t jhi = hi > i ? hi - i : 0;

		if (jhi > nt)
			jhi = nt;
		for (size_t j = jlo; j < jhi; j++) {
			uint64_t pl, ph;
			size_t k = i + j;

			bmul(&pl, &ph, v[i], t[j], rv, rt[j]);
			if (k >= lo)
				out[k - lo] ^= pl;
			if (k + 1 < hi)
				out[k + 1 - lo] ^= ph;
		}
	}
	qkd_wipe(rt, sizeof rt);
}

/* Bit-serial 64x64 product with masks instead of branches. */
static void clmul_ref(uint64_t *lo, uint64_t *hi, uint64_t a, uint64_t b)
{
	uint64_t l = 0, h = 0;

	for (unsigned k = 0; k < 64; k++) {
		uint64_t m = (uint64_t)0 - ((a >> k) & 1);

		l ^= (b << k) & m;
		if (k > 0)
			h ^= (b >> (64 - k)) & m;
	}
	*lo = l;
	*hi = h;
}

void qkd_gf2poly_mul_ref(uint64_t *c, const uint64_t *a, size_t na,
			 const uint64_t *b, size_t nb)
{
	if (na + nb == 0)
		return;
	memset(c, 0, (na + nb) * sizeof *c);
	for (size_t i = 0; i < na; i++) {
		for (size_t j = 0; j < nb; j++) {
			uint64_t lo, hi;

			clmul_ref(&lo, &hi, a[i], b[j]);
			c[i + j] ^= lo;
			c[i + j + 1] ^= hi;
		}
	}
}

static inline uint64_t gf64_mul_portable(uint64_t x, uint64_t y)
{
	uint64_t lo, hi;

	bmul(&lo, &hi, x, y, rev64(x), rev64(y));
	return qkd_gf64_reduce(lo, hi);
}

QKD_GF64_SCALAR_OPS(portable, , gf64_mul_portable)

const struct gf2_ops qkd_gf2_ops_portable = {
	.win = qkd_gf2_win_portable,
	.bfly = bfly_portable,
	.low3 = low3_portable,
	.vmul = vmul_portable,
	.name = "portable",
};
