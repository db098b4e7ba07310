/* gf2poly_clmul.c - PCLMULQDQ (128-bit) and VPCLMULQDQ (AVX-512) kernels.
 *
 * Both compute a window of output words of a small schoolbook product,
 * output-stationary: for each block of output words they run over the pairs
 * (v[i], v[i+1]) of the broadcast operand and load the matching words of t
 * unaligned, so t*v terms land directly in their lanes with no shuffles:
 *   E (lane-aligned, offset w + 2l): v[i]*t[w-i+2l]   ^ v[i+1]*t[w-i-1+2l]
 *   O (offset w + 2l + 1):           v[i+1]*t[w-i+2l] ^ v[i]*t[w-i+1+2l]
 * O is one word out of phase; its top word carries into the next block
 * (alignr). Loads that reach past either end of t are masked to zero.
 * Compiled with target attributes only: the rest of the
 * library is built for x86-64-v3 and these run only after the CPUID check.
 */
#include <immintrin.h>
#include <stdint.h>

#include "gf2poly_impl.h"

#define TGT_PCLMUL __attribute__((target("pclmul,sse4.1")))
#define TGT_VPCLMUL __attribute__((target( \
	"pclmul,avx2,avx512f,avx512vl,avx512bw,vpclmulqdq")))

/* Words t[s], t[s+1] (zero outside [0, nt)). */
TGT_PCLMUL static inline __m128i load2(const uint64_t *t, size_t nt,
				       ptrdiff_t s)
{
	if (s >= 0 && (size_t)s + 2 <= nt)
		return _mm_loadu_si128((const __m128i *)(t + s));
	return _mm_set_epi64x(
		(long long)(s + 1 >= 0 && (size_t)(s + 1) < nt ? t[s + 1] : 0),
		(long long)(s >= 0 && (size_t)s < nt ? t[s] : 0));
}

/* ---- PCLMULQDQ: blocks of 2 output words ---------------------------- */

TGT_PCLMUL static __m128i odd2(const uint64_t *t, size_t nt,
			       const uint64_t *v, size_t nv,
			       ptrdiff_t w, ptrdiff_t ilo, ptrdiff_t ihi)
{
	__m128i o = _mm_setzero_si128();

	for (ptrdiff_t i = ilo; i <= ihi; i += 2) {
		__m128i a = load2(v, nv, i), x = load2(t, nt, w - i);

		o = _mm_xor_si128(o, _mm_xor_si128(_mm_clmulepi64_si128(a, x, 0x01),
						   _mm_clmulepi64_si128(a, x, 0x10)));
	}
	return o;
}

TGT_PCLMUL void qkd_gf2_win_pclmul(uint64_t *out, const uint64_t *t,
				   size_t nt, const uint64_t *v, size_t nv,
				   size_t lo, size_t hi, bool acc)
{
	ptrdiff_t imax = (ptrdiff_t)((nv - 1) & ~(size_t)1), snt = (ptrdiff_t)nt;
	__m128i oprev = _mm_setzero_si128();

	if (lo > 0) {	/* the odd terms at lo - 1 spill into word lo */
		ptrdiff_t w = (ptrdiff_t)lo - 2, ihi = (ptrdiff_t)lo - 1;
		ptrdiff_t ilo = w - snt - 1;

		ilo = ilo < 0 ? 0 : ilo & ~(ptrdiff_t)1;
		oprev = odd2(t, nt, v, nv, w, ilo, ihi < imax ? ihi : imax);
	}
	for (size_t w = lo; w < hi; w += 2) {
		ptrdiff_t sw = (ptrdiff_t)w, ilo = sw - snt - 1, ihi = sw + 1;
		__m128i e = _mm_setzero_si128(), o = _mm_setzero_si128(), r;

		ilo = ilo < 0 ? 0 : ilo & ~(ptrdiff_t)1;
		if (ihi > imax)
			ihi = imax;
		for (ptrdiff_t i = ilo; i <= ihi; i += 2) {
			__m128i a = load2(v, nv, i);
			__m128i x = load2(t, nt, sw - i);
			__m128i y = load2(t, nt, sw - i - 2);

			e = _mm_xor_si128(e, _mm_xor_si128(_mm_clmulepi64_si128(a, x, 0x00),
							   _mm_clmulepi64_si128(a, y, 0x11)));
			o = _mm_xor_si128(o, _mm_xor_si128(_mm_clmulepi64_si128(a, x, 0x01),
							   _mm_clmulepi64_si128(a, x, 0x10)));
		}
		r = _mm_xor_si128(e, _mm_alignr_epi8(o, oprev, 8));
		oprev = o;
		if (hi - w >= 2) {
			if (acc)
				r = _mm_xor_si128(r, _mm_loadu_si128((const __m128i *)(out + w - lo)));
			_mm_storeu_si128((__m128i *)(out + w - lo), r);
		} else {
			uint64_t r0 = (uint64_t)_mm_cvtsi128_si64(r);

			out[w - lo] = acc ? out[w - lo] ^ r0 : r0;
		}
	}
}

/* ---- VPCLMULQDQ on zmm: blocks of 8 output words --------------------- */

/* Words t[s .. s+8), zero outside [0, nt). A masked load never touches
 * (nor faults on) the masked-out words, so the address may run past t;
 * it is formed as an integer to keep the C pointer arithmetic in bounds. */
TGT_VPCLMUL static inline __m512i load8(const uint64_t *t, size_t nt,
					ptrdiff_t s)
{
	ptrdiff_t first, end;

	if (s >= 0 && (size_t)s + 8 <= nt)
		return _mm512_loadu_si512(t + s);
	first = s < 0 ? -s : 0;
	end = (ptrdiff_t)nt - s;
	if (end > 8)
		end = 8;
	if (end <= first)
		return _mm512_setzero_si512();
	return _mm512_maskz_loadu_epi64(
		(__mmask8)(((1u << end) - 1) & ~((1u << first) - 1)),
		(const void *)((uintptr_t)t + (uintptr_t)s * sizeof *t));
}

/* (v[i], v[i+1]) in every 128-bit lane, v[nv] read as zero. */
TGT_VPCLMUL static inline __m512i bcast_pair(const uint64_t *v, size_t nv,
					     ptrdiff_t i)
{
	__m128i p;

	if ((size_t)i + 2 <= nv)
		p = _mm_loadu_si128((const __m128i *)(v + i));
	else
		p = _mm_maskz_loadu_epi64(1, v + i);
	return _mm512_broadcast_i32x4(p);
}

TGT_VPCLMUL static __m512i odd8(const uint64_t *t, size_t nt,
				const uint64_t *v, size_t nv,
				ptrdiff_t w, ptrdiff_t ilo, ptrdiff_t ihi)
{
	__m512i o = _mm512_setzero_si512();

	for (ptrdiff_t i = ilo; i <= ihi; i += 2) {
		__m512i a = bcast_pair(v, nv, i), x = load8(t, nt, w - i);

		o = _mm512_ternarylogic_epi64(o, _mm512_clmulepi64_epi128(a, x, 0x01),
					      _mm512_clmulepi64_epi128(a, x, 0x10), 0x96);
	}
	return o;
}

TGT_VPCLMUL static void store8(uint64_t *dst, __m512i r, size_t cnt, bool acc)
{
	__mmask8 m = (__mmask8)(cnt >= 8 ? 0xff : (1u << cnt) - 1);

	if (acc)
		r = _mm512_xor_si512(r, _mm512_maskz_loadu_epi64(m, dst));
	_mm512_mask_storeu_epi64(dst, m, r);
}

TGT_VPCLMUL void qkd_gf2_win_vpclmul(uint64_t *out, const uint64_t *t,
				     size_t nt, const uint64_t *v, size_t nv,
				     size_t lo, size_t hi, bool acc)
{
	ptrdiff_t imax = (ptrdiff_t)((nv - 1) & ~(size_t)1), snt = (ptrdiff_t)nt;
	__m512i oprev = _mm512_setzero_si512();

	if (lo > 0) {
		ptrdiff_t w = (ptrdiff_t)lo - 8, ihi = (ptrdiff_t)lo - 1;
		ptrdiff_t ilo = w - snt - 1;

		ilo = ilo < 0 ? 0 : ilo & ~(ptrdiff_t)1;
		oprev = odd8(t, nt, v, nv, w, ilo, ihi < imax ? ihi : imax);
	}
	for (size_t w = lo; w < hi; w += 8) {
		ptrdiff_t sw = (ptrdiff_t)w, ilo = sw - snt - 1, ihi = sw + 7;
		__m512i e = _mm512_setzero_si512(), o = _mm512_setzero_si512();

		ilo = ilo < 0 ? 0 : ilo & ~(ptrdiff_t)1;
		if (ihi > imax)
			ihi = imax;
		for (ptrdiff_t i = ilo; i <= ihi; i += 2) {
			__m512i a = bcast_pair(v, nv, i);
			__m512i x = load8(t, nt, sw - i);
			__m512i y = load8(t, nt, sw - i - 2);

			e = _mm512_ternarylogic_epi64(e, _mm512_clmulepi64_epi128(a, x, 0x00),
						      _mm512_clmulepi64_epi128(a, y, 0x11), 0x96);
			o = _mm512_ternarylogic_epi64(o, _mm512_clmulepi64_epi128(a, x, 0x01),
						      _mm512_clmulepi64_epi128(a, x, 0x10), 0x96);
		}
		store8(out + (w - lo), _mm512_xor_si512(e, _mm512_alignr_epi64(o, oprev, 7)),
		       hi - w, acc);
		oprev = o;
	}
}

/* ---- GF(2^64) arithmetic for the additive FFT ------------------------ */

TGT_PCLMUL static inline uint64_t gf64_mul_pclmul(uint64_t x, uint64_t y)
{
	__m128i p = _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)x),
					 _mm_cvtsi64_si128((long long)y), 0x00);

	return qkd_gf64_reduce((uint64_t)_mm_cvtsi128_si64(p),
			       (uint64_t)_mm_extract_epi64(p, 1));
}

QKD_GF64_SCALAR_OPS(pclmul, TGT_PCLMUL, gf64_mul_pclmul)

const struct gf2_ops qkd_gf2_ops_pclmul = {
	.win = qkd_gf2_win_pclmul,
	.bfly = bfly_pclmul,
	.low3 = low3_pclmul,
	.vmul = vmul_pclmul,
	.name = "pclmulqdq",
};

/* Eight products at once, lane by lane; reduction as qkd_gf64_reduce. */
TGT_VPCLMUL static inline __m512i gf64_mul8(__m512i x, __m512i y)
{
	__m512i p0 = _mm512_clmulepi64_epi128(x, y, 0x00);
	__m512i p1 = _mm512_clmulepi64_epi128(x, y, 0x11);
	__m512i lo = _mm512_unpacklo_epi64(p0, p1);
	__m512i hi = _mm512_unpackhi_epi64(p0, p1);
	__m512i o = _mm512_ternarylogic_epi64(_mm512_srli_epi64(hi, 60),
					      _mm512_srli_epi64(hi, 61),
					      _mm512_srli_epi64(hi, 63), 0x96);

	hi = _mm512_xor_si512(hi, o);
	return _mm512_ternarylogic_epi64(lo, hi,
		_mm512_ternarylogic_epi64(_mm512_slli_epi64(hi, 1),
					  _mm512_slli_epi64(hi, 3),
					  _mm512_slli_epi64(hi, 4), 0x96), 0x96);
}

/* n % 8 == 0 (levels with halves of 8 words or more). */
TGT_VPCLMUL static void bfly_vpclmul(uint64_t *x, uint64_t *y, size_t n,
				     uint64_t c, bool inv)
{
	__m512i cc = _mm512_set1_epi64((long long)c);

	for (size_t k = 0; k < n; k += 8) {
		__m512i a = _mm512_loadu_si512(x + k), b = _mm512_loadu_si512(y + k);

		if (inv) {
			b = _mm512_xor_si512(b, a);
			a = _mm512_xor_si512(a, gf64_mul8(cc, b));
		} else {
			a = _mm512_xor_si512(a, gf64_mul8(cc, b));
			b = _mm512_xor_si512(b, a);
		}
		_mm512_storeu_si512(x + k, a);
		_mm512_storeu_si512(y + k, b);
	}
}

/* Levels r = 2, 1, 0 inside one register: lane k's partner is k ^ d; the
 * lower lane holds u, the upper w; Y gives every lane its pair's w. */
TGT_VPCLMUL static void low3_vpclmul(uint64_t *x, size_t n, uint64_t pos,
				     const struct gf2_omega *om, bool inv)
{
	const uint64_t b1 = qkd_gf2_cantor[1], b2 = qkd_gf2_cantor[2];
	const __m512i kc[3] = {
		_mm512_set_epi64((long long)(b1 ^ b2), (long long)(b1 ^ b2),
				 (long long)b2, (long long)b2, (long long)b1,
				 (long long)b1, 0, 0),
		_mm512_set_epi64((long long)b1, (long long)b1, (long long)b1,
				 (long long)b1, 0, 0, 0, 0),
		_mm512_setzero_si512(),
	};
	const __m512i iy[3] = {
		_mm512_set_epi64(7, 7, 5, 5, 3, 3, 1, 1),
		_mm512_set_epi64(7, 6, 7, 6, 3, 2, 3, 2),
		_mm512_set_epi64(7, 6, 5, 4, 7, 6, 5, 4),
	};
	const __m512i ip[3] = {
		_mm512_set_epi64(6, 7, 4, 5, 2, 3, 0, 1),
		_mm512_set_epi64(5, 4, 7, 6, 1, 0, 3, 2),
		_mm512_set_epi64(3, 2, 1, 0, 7, 6, 5, 4),
	};
	const __mmask8 up[3] = {0xaa, 0xcc, 0xf0};

	for (size_t b = 0; b < n; b += 8) {
		__m512i v = _mm512_loadu_si512(x + b);

		for (unsigned s = 0; s < 3; s++) {
			unsigned r = inv ? s : 2 - s;
			__m512i c = _mm512_xor_si512(kc[r], _mm512_set1_epi64(
				(long long)qkd_gf2_omega(om, (pos + b) >> r)));
			__m512i p;

			if (inv) {
				p = _mm512_permutexvar_epi64(ip[r], v);
				v = _mm512_mask_xor_epi64(v, up[r], v, p);
				p = gf64_mul8(c, _mm512_permutexvar_epi64(iy[r], v));
				v = _mm512_mask_xor_epi64(v, (__mmask8)~up[r], v, p);
			} else {
				p = _mm512_permutexvar_epi64(ip[r], v);
				v = _mm512_xor_si512(v, gf64_mul8(c,
					_mm512_permutexvar_epi64(iy[r], v)));
				v = _mm512_mask_xor_epi64(v, up[r], v, p);
			}
		}
		_mm512_storeu_si512(x + b, v);
	}
}

TGT_VPCLMUL static void vmul_vpclmul(uint64_t *a, const uint64_t *b, size_t n)
{
	size_t k = 0;

	for (; k + 8 <= n; k += 8)
		_mm512_storeu_si512(a + k, gf64_mul8(_mm512_loadu_si512(a + k),
						     _mm512_loadu_si512(b + k)));
	if (k < n) {
		__mmask8 m = (__mmask8)((1u << (n - k)) - 1);

		_mm512_mask_storeu_epi64(a + k, m, gf64_mul8(
			_mm512_maskz_loadu_epi64(m, a + k),
			_mm512_maskz_loadu_epi64(m, b + k)));
	}
}

const struct gf2_ops qkd_gf2_ops_vpclmul = {
	.win = qkd_gf2_win_vpclmul,
	.bfly = bfly_vpclmul,
	.low3 = low3_vpclmul,
	.vmul = vmul_vpclmul,
	.name = "vpclmulqdq-avx512",
};
