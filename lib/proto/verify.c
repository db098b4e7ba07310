#include "qkd/verify.h"

#include <stdbool.h>
#include <immintrin.h>

/* x^64 = x^4 + x^3 + x + 1 (mod the field polynomial). */
#define GF64_RED 0x1bu

static uint64_t reduce128(uint64_t hi, uint64_t lo)
{
	/* Fold the high word twice: hi * x^64 = hi * (x^4+x^3+x+1). The first
	 * fold overflows by at most 4 bits, the second by none. */
	uint64_t over = (hi >> 60) ^ (hi >> 61) ^ (hi >> 63);

	lo ^= hi ^ (hi << 1) ^ (hi << 3) ^ (hi << 4);
	lo ^= over ^ (over << 1) ^ (over << 3) ^ (over << 4);
	return lo;
}

uint64_t qkd_gf64_mul_portable(uint64_t a, uint64_t b)
{
	uint64_t hi = 0, lo = 0;

	for (int i = 0; i < 64; i++) {
		uint64_t m = -((b >> i) & 1);

		lo ^= (a << i) & m;
		if (i)
			hi ^= (a >> (64 - i)) & m;
	}
	return reduce128(hi, lo);
}

__attribute__((target("pclmul,sse2")))
static uint64_t gf64_mul_clmul(uint64_t a, uint64_t b)
{
	__m128i p = _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)a),
					 _mm_cvtsi64_si128((long long)b), 0);

	return reduce128((uint64_t)_mm_extract_epi64(p, 1), (uint64_t)_mm_cvtsi128_si64(p));
}

static bool have_clmul(void)
{
	static int cached = -1;

	if (cached < 0)
		cached = __builtin_cpu_supports("pclmul") ? 1 : 0;
	return cached == 1;
}

uint64_t qkd_gf64_mul(uint64_t a, uint64_t b)
{
	return have_clmul() ? gf64_mul_clmul(a, b) : qkd_gf64_mul_portable(a, b);
}

uint64_t qkd_verify_tag(const struct qkd_bits *b, uint64_t key)
{
	size_t nw = qkd_bits_words(b->n);
	uint64_t h = 0;

	/* Horner's rule; unused bits of the last word are zero by invariant. */
	if (have_clmul()) {
		for (size_t i = 0; i < nw; i++)
			h = gf64_mul_clmul(h ^ b->w[i], key);
		return gf64_mul_clmul(h ^ (uint64_t)b->n, key);
	}
	for (size_t i = 0; i < nw; i++)
		h = qkd_gf64_mul_portable(h ^ b->w[i], key);
	return qkd_gf64_mul_portable(h ^ (uint64_t)b->n, key);
}
