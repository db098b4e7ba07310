/* gf2poly_fft.c - long products by an additive FFT over GF(2^64).
 *
 * Packing: a binary polynomial is cut into 32-bit chunks, each taken as an
 * element of GF(2^64) = GF(2)[u]/(u^64+u^4+u^3+u+1) (x^i -> u^i), i.e.
 * a(x) = A(z) at z = x^32. The chunk products have degree <= 62, so no
 * reduction ever happens and the coefficients of A(z)B(z), computed in the
 * field, ARE the binary polynomials to add up at x^(32i).
 *
 * The product of A and B (2^l > deg AB coefficients) is evaluated at the
 * 2^l points of the subspace spanned by the Cantor basis beta_0..beta_(l-1)
 * with the FFT of Lin, Chung and Han (2014) in their "novel" polynomial
 * basis X_k = prod_{bits j of k} s_j, s_j the subspace vanishing
 * polynomials; for a Cantor basis s_j = (x^2 + x) composed j times, with
 * 0/1 coefficients and s_j(beta_i) = beta_(i-j), so
 *   - the change from the monomial to the novel basis is XORs only: a
 *     Taylor expansion at x^(2^K) + x = s_K (K a power of two, Gao and
 *     Mateer 2010), then the same conversion on the blocks and inside them;
 *   - the twiddle of a butterfly block at FFT index p on level r is
 *     s_r(omega_p) = omega_(p >> r), omega_m = XOR of beta_i over bits of m.
 * Butterfly (level r, halves f0, f1 of the block's coefficients):
 *   f0 += c * f1, f1 += f0  (evaluation on the coset and on coset + beta_r).
 * Cost: 3 FFTs of 2^l points, l * 2^(l-1) multiplications each, plus O(l)
 * XOR passes for the conversions; about 5-6 bytes of scratch per product
 * bit. The inverse runs every step backwards.
 */
#include <stdlib.h>
#include <string.h>

#include "gf2poly_impl.h"
#include "qkd/error.h"
#include "qkd/secret.h"

const uint64_t qkd_gf2_cantor[64] = {
	0x0000000000000001u, 0x19c9369f278adc02u,
	0xa181e7d66f5ff794u, 0x5db84357ce785d08u,
	0xb973d466f5c9d0cau, 0x521ac889831a075eu,
	0x033ce8beddc8a656u, 0xb5846c4e07b91010u,
	0x4087b8cbb37a32ecu, 0x00d0d3888c0ae17cu,
	0xafd5ac70237f2222u, 0xe3f5af99cc3aaaf8u,
	0x5a1db3b16a0b58b8u, 0x09947c54fe7ee248u,
	0x0e8eaf0e0068f544u, 0xa2a113500b4b4f5au,
	0xe96f9805d6ce0bb0u, 0x53496f8b5c9edd4cu,
	0xad325cb6f4ac2a9eu, 0x4a8dcf8bd7ede826u,
	0xa3e9c552b6434210u, 0x5fa92ad9c9bc7ed0u,
	0xa389f910cd7734deu, 0xe916f3dfca4609d8u,
	0xf89578714bd28f96u, 0x564dda59237a3352u,
	0xad33bc6cc75aed38u, 0x57a3104fcd0e5f34u,
	0xb0f502e4cd60039au, 0xeb42e79f91f49f8cu,
	0x54e5bf3774b3f850u, 0xb66864e6ec14b4d2u,
	0xed57ce778f0d6244u, 0x523aaf9d6148ba24u,
	0xa8fcbfaac14940c6u, 0xe503eacfcef77780u,
	0xf3746c7b5183a372u, 0xec50d77d2f416218u,
	0xf9cdf54569fe87e6u, 0xe576269915705e2cu,
	0xee2a197148fa8c72u, 0x49e31453575f365au,
	0xb86698d88add0bc0u, 0x4f35fb218e7f37c0u,
	0xa306feea8a242832u, 0x5e5f06a9daead6e6u,
	0xbe13089ecc784ea0u, 0xfe1a10738739c892u,
	0xe2266ceb0c5bc774u, 0xf490e6ed40d1dd1au,
	0xf3f5f515077e92f0u, 0x467c20312e7eb0f0u,
	0xb06caa4295d350c2u, 0x5c5916d98a583c16u,
	0xa04de5b4c7a1ceacu, 0x41430183d6e85ec0u,
	0xb361d8dabe3b3632u, 0x4357375d88b88b56u,
	0xb057dcc8a19fbc9cu, 0xf26e1791be4b37c2u,
	0xe9f744031bfe63e4u, 0xe50803875e9ab776u,
	0x44ee098f4d56753eu, 0x9dc338f8399031b4u,
};

/* Blocks of at most 2^FFT_LEAF words are transformed level after level
 * (they sit in L1/L2); larger ones split top-down. */
#define FFT_LEAF 11

static void omega_init(struct gf2_omega *om)
{
	for (unsigned t = 0; t < 5; t++) {
		om->t[t][0] = 0;
		for (unsigned m = 1; m < 256; m++) {
			unsigned low = (unsigned)__builtin_ctz(m);

			om->t[t][m] = om->t[t][m & (m - 1)] ^
				      qkd_gf2_cantor[8 * t + low];
		}
	}
}

static void xor_words(uint64_t *restrict d, const uint64_t *restrict s,
		      size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] ^= s[i];
}

/* ---- monomial <-> novel basis (XOR only) ----------------------------- */

/* Expand c (2^l units of u words) in powers of y = x^t + x, t = 2^K:
 * c = A + x^(tD) H = (A + x^D h0 + x^D h1) + y^D (H + h1), with
 * (x^t + x)^D = x^(tD) + x^D, H = h0 + x^(tD-D) h1; then both halves. */
static void taylor(uint64_t *c, unsigned l, unsigned K, size_t u, bool inv)
{
	size_t t = (size_t)1 << K, D, td;
	uint64_t *h;

	if (l <= K)
		return;
	D = (size_t)1 << (l - K - 1);
	td = t * D;
	h = c + td * u;
	if (inv) {
		taylor(c, l - 1, K, u, inv);
		taylor(h, l - 1, K, u, inv);
		xor_words(h, h + (td - D) * u, D * u);
		xor_words(c + D * u, h + (td - D) * u, D * u);
		xor_words(c + D * u, h, (td - D) * u);
	} else {
		xor_words(c + D * u, h, (td - D) * u);
		xor_words(c + D * u, h + (td - D) * u, D * u);
		xor_words(h, h + (td - D) * u, D * u);
		taylor(c, l - 1, K, u, inv);
		taylor(h, l - 1, K, u, inv);
	}
}

/* c (2^l units of u words): monomial -> novel basis coefficients (or back).
 * X_(q 2^K + r)(x) = X_r(x) X_q(s_K(x)): Taylor-expand in y = s_K(x), then
 * convert in y with units of 2^K and in x inside each unit. */
static void convert(uint64_t *c, unsigned l, size_t u, bool inv)
{
	unsigned K = 1;
	size_t t;

	if (l <= 1)
		return;
	while (2 * K < l)
		K *= 2;
	t = (size_t)1 << K;
	if (!inv)
		taylor(c, l, K, u, false);
	convert(c, l - K, t * u, inv);
	for (size_t j = 0; j < ((size_t)1 << (l - K)); j++)
		convert(c + j * t * u, K, u, inv);
	if (inv)
		taylor(c, l, K, u, true);
}

/* ---- the transform ----------------------------------------------------- */

struct fft_ctx {
	const struct gf2_ops *ops;
	struct gf2_omega om;
};

/* Levels r = e-1 .. 3 of a block of 2^e words at FFT index pos, one level
 * at a time over the block (e <= FFT_LEAF), then the low three. */
static void fft_leaf(const struct fft_ctx *x, uint64_t *f, unsigned e,
		     uint64_t pos, bool inv)
{
	size_t n = (size_t)1 << e;

	if (inv)
		x->ops->low3(f, n, pos, &x->om, true);
	for (unsigned s = 3; s < e; s++) {
		unsigned r = inv ? s : e - 1 - (s - 3);
		size_t h = (size_t)1 << r;

		for (size_t b = 0; b < n; b += 2 * h)
			x->ops->bfly(f + b, f + b + h, h,
				     qkd_gf2_omega(&x->om, (pos + b) >> r), inv);
	}
	if (!inv)
		x->ops->low3(f, n, pos, &x->om, false);
}

static void fft_rec(const struct fft_ctx *x, uint64_t *f, unsigned e,
		    uint64_t pos, bool inv)
{
	size_t h;
	uint64_t c;

	if (e <= FFT_LEAF) {
		fft_leaf(x, f, e, pos, inv);
		return;
	}
	h = (size_t)1 << (e - 1);
	c = qkd_gf2_omega(&x->om, pos >> (e - 1));
	if (!inv)
		x->ops->bfly(f, f + h, h, c, false);
	fft_rec(x, f, e - 1, pos, inv);
	fft_rec(x, f + h, e - 1, pos + h, inv);
	if (inv)
		x->ops->bfly(f, f + h, h, c, true);
}

/* ---- packing and the product -------------------------------------------- */

static unsigned fft_log(size_t na, size_t nb)
{
	size_t need = 2 * na + 2 * nb - 1;	/* coefficients of A(z)B(z) */
	unsigned l = 3;

	while (((size_t)1 << l) < need)
		l++;
	return l;
}

size_t qkd_gf2_fft_scratch(size_t na, size_t nb)
{
	if (na > SIZE_MAX / 8 - nb || na + nb > ((size_t)1 << 36))
		return 0;
	return (size_t)2 << fft_log(na, nb);
}

static void pack32(uint64_t *f, size_t len, const uint64_t *a, size_t na)
{
	for (size_t i = 0; i < na; i++) {
		f[2 * i] = a[i] & 0xffffffffu;
		f[2 * i + 1] = a[i] >> 32;
	}
	memset(f + 2 * na, 0, (len - 2 * na) * sizeof *f);
}

/* c = words [lo, lo + nc) of sum f[i] x^(32 i), f[i] < 2^63; f has len
 * entries, 2 (lo + nc) <= len. */
static void unpack32(uint64_t *c, size_t lo, size_t nc, const uint64_t *f)
{
	for (size_t w = lo; w < lo + nc; w++) {
		uint64_t v = f[2 * w] ^ (f[2 * w + 1] << 32);

		if (w > 0)
			v ^= f[2 * w - 1] >> 32;
		c[w - lo] = v;
	}
}

int qkd_gf2_fft_mul(const struct gf2_ops *ops, uint64_t *c, const uint64_t *a,
		    size_t na, const uint64_t *b, size_t nb, size_t lo, size_t nc)
{
	size_t nscr = qkd_gf2_fft_scratch(na, nb), len;
	unsigned l;
	struct fft_ctx *x;
	uint64_t *f, *g;

	if (nscr == 0)
		return QKD_ERR_RANGE;
	l = fft_log(na, nb);
	len = (size_t)1 << l;
	x = malloc(sizeof *x);
	f = qkd_alloc_scratch(nscr * sizeof *f);
	if (x == NULL || f == NULL) {
		free(x);
		free(f);
		return QKD_ERR_NOMEM;
	}
	x->ops = ops;
	omega_init(&x->om);
	g = f + len;
	pack32(f, len, a, na);
	pack32(g, len, b, nb);
	convert(f, l, 1, false);
	convert(g, l, 1, false);
	fft_rec(x, f, l, 0, false);
	fft_rec(x, g, l, 0, false);
	ops->vmul(f, g, len);
	fft_rec(x, f, l, 0, true);
	convert(f, l, 1, true);
	unpack32(c, lo, nc, f);
	qkd_free_scratch(f, nscr * sizeof *f);
	free(x);
	return QKD_OK;
}
