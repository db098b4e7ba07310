/* fiber_int.h - private to lib/optical/fiber_*.c: the keyed ChaCha20
 * streams behind the fiber emitter, detector and Eve (docs/fiber.md s1),
 * and the frame helpers they share.
 *
 * Every party's randomness is keystream under a subkey derived from the
 * party's 32-byte secret with crypto_kdf (BLAKE2b), one subkey per purpose,
 * so the streams are independent and none reveals another. ChaCha20
 * (libsodium) here; Alice's two bulk streams are AES-256-CTR, in
 * fiber_emitter.c. Two access patterns:
 *   - random access by slot: the keystream block number is slot / slots per
 *     block (nonce 0), so any slot's choice costs one ChaCha20 block and
 *     nothing is stored;
 *   - sequential: a buffered stream with a 64-bit nonce (a block of slots,
 *     or 0), read word by word.
 * Words are decoded little-endian explicitly, so results do not depend on
 * the host.
 */
#ifndef QKD_FIBER_INT_H
#define QKD_FIBER_INT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "qkd/fiber.h"

/* One subkey id per purpose (crypto_kdf context "qkdfiber"). */
enum fib_purpose {
	FIB_ALICE_CHOICE = 1,	/* her basis, value, intensity per slot */
	FIB_ALICE_PHOTON = 2,	/* her photon numbers (gaps, thinning, n) */
	FIB_BOB_CHOICE = 3,	/* his basis and double-click bit per slot */
	FIB_BOB_CHANNEL = 4,	/* fiber loss, detectors, dark counts */
	FIB_EVE = 5,		/* Eve's decisions */
	FIB_ALICE_REFINE = 6,	/* refining bits of the rare open photon numbers */
};

#define FIB_BLOCK_BYTES 64u	/* one ChaCha20 block */
#define FIB_STREAM_WORDS 64u	/* a sequential stream buffers 8 blocks */

static inline void fib_subkey(uint8_t out[32], const uint8_t key[QKD_FIBER_KEY_BYTES],
			      enum fib_purpose id)
{
	crypto_kdf_derive_from_key(out, 32, (uint64_t)id, "qkdfiber", key);
}

/* Little-endian loads as single moves (the keystream is read by the
 * gigabyte); a big-endian host swaps. */
static inline uint64_t fib_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof v);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline uint32_t fib_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof v);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

static inline uint32_t fib_le16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

/* Zeros that keystream is XORed onto (read-only: no memset per call). */
#define FIB_ZEROS_BLOCKS 64u
extern const uint8_t fib_zeros[FIB_ZEROS_BLOCKS * FIB_BLOCK_BYTES];

/* nblocks keystream blocks from block number counter on, nonce 0. */
static inline void fib_blocks(const uint8_t key[32], uint64_t counter, size_t nblocks,
			      uint8_t *out)
{
	static const uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];

	while (nblocks > 0) {
		size_t k = nblocks < FIB_ZEROS_BLOCKS ? nblocks : FIB_ZEROS_BLOCKS;

		crypto_stream_chacha20_xor_ic(out, fib_zeros, k * FIB_BLOCK_BYTES, nonce, counter,
					      key);
		out += k * FIB_BLOCK_BYTES;
		counter += k;
		nblocks -= k;
	}
}

/* Word i (little-endian) of the keystream under key with a 64-bit nonce
 * id: random access, one ChaCha20 block a call. */
static inline uint64_t fib_word_at(const uint8_t key[32], uint64_t id, uint64_t i)
{
	uint8_t nonce[crypto_stream_chacha20_NONCEBYTES], blk[FIB_BLOCK_BYTES];
	uint64_t w;

	for (unsigned j = 0; j < sizeof nonce; j++)
		nonce[j] = (uint8_t)(id >> (8 * j));
	crypto_stream_chacha20_xor_ic(blk, fib_zeros, sizeof blk, nonce, i / 8, key);
	w = fib_le64(blk + 8 * (i % 8));
	sodium_memzero(blk, sizeof blk);
	return w;
}

/* The two uniforms a keystream word makes: [0, 1) and (0, 1] (for logs),
 * from its top 53 bits. */
static inline double fib_unit_of(uint64_t w)
{
	return (double)(w >> 11) * 0x1p-53;
}

static inline double fib_open_of(uint64_t w)
{
	return (double)((w >> 11) + 1) * 0x1p-53;
}

struct fib_stream {
	uint8_t key[32];
	uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
	uint64_t counter;
	unsigned pos;
	uint8_t buf[FIB_STREAM_WORDS * 8];
};

/* Key a sequential stream with key (copied) and a 64-bit stream id. */
static inline void fib_stream_init(struct fib_stream *s, const uint8_t key[32], uint64_t id)
{
	memcpy(s->key, key, sizeof s->key);
	for (unsigned i = 0; i < sizeof s->nonce; i++)
		s->nonce[i] = (uint8_t)(id >> (8 * i));
	s->counter = 0;
	s->pos = FIB_STREAM_WORDS;
}

static inline uint64_t fib_u64(struct fib_stream *s)
{
	if (s->pos == FIB_STREAM_WORDS) {
		crypto_stream_chacha20_xor_ic(s->buf, fib_zeros, sizeof s->buf, s->nonce,
					      s->counter, s->key);
		s->counter += sizeof s->buf / FIB_BLOCK_BYTES;
		s->pos = 0;
	}
	return fib_le64(s->buf + 8 * s->pos++);
}

/* Uniform in [0, 1) with 53 bits. */
static inline double fib_unit(struct fib_stream *s)
{
	return fib_unit_of(fib_u64(s));
}

/* Uniform in (0, 1]: safe for log(). */
static inline double fib_open(struct fib_stream *s)
{
	return fib_open_of(fib_u64(s));
}

/* Gap to the next success of a Bernoulli process whose log failure
 * probability is lq (< 0; -inf for certainty): floor(ln U / lq), U in (0,1],
 * by inversion. Returned as a double so a huge gap never overflows; callers
 * compare it with the room left. */
static inline double fib_gap(struct fib_stream *s, double lq)
{
	return floor(log(fib_open(s)) / lq);
}

/* out[i] = ln in[i] for four uniforms in (0, 1] from fib_open (out may be
 * in), at once in GCC/clang vector types: no table, no branch, no call, so
 * the emitter's gaps cost a few instructions each. x = m 2^e with m in [sqrt(1/2), sqrt(2));
 * ln m = 2 atanh(f), f = (m - 1)/(m + 1), |f| <= 0.1716, by its series to
 * f^21 (the next term is below 2^-57 of the result). It agrees with libm's
 * log to a few ulp (tests/unit/test_fiber.c), which moves floor(ln U / lq)
 * only when U sits within about 1e-15 of a step. */
typedef double fib_v4d __attribute__((vector_size(32)));
typedef uint64_t fib_v4u __attribute__((vector_size(32)));

static inline void fib_log_unit4(const double in[4], double out[4])
{
	const fib_v4d sqrt2 = {1.4142135623730951, 1.4142135623730951, 1.4142135623730951,
			       1.4142135623730951};
	fib_v4u bits, mb, eb, big;
	fib_v4d m, e, f, s, p, half, one;

	/* In and out by pointer: a vector by value would depend on the ABI. */
	memcpy(&bits, in, sizeof bits);
	/* The biased exponent E as the double 2^52 + E, minus 2^52 + 1023. */
	eb = (bits >> 52) | 0x4330000000000000ull;
	memcpy(&e, &eb, sizeof e);
	e = e - (0x1p52 + 1023.0);
	mb = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
	memcpy(&m, &mb, sizeof m);
	/* m > sqrt 2: halve m, add 1 to e (masks as 0.5 and 1.0, no branch). */
	big = (fib_v4u)(m > sqrt2);
	eb = big & 0x3fe0000000000000ull;
	memcpy(&half, &eb, sizeof half);
	eb = big & 0x3ff0000000000000ull;
	memcpy(&one, &eb, sizeof one);
	m = m - m * half;
	e = e + one;
	f = (m - 1.0) / (m + 1.0);
	s = f * f;
	p = s * (1.0 / 21) + 1.0 / 19;
	p = p * s + 1.0 / 17;
	p = p * s + 1.0 / 15;
	p = p * s + 1.0 / 13;
	p = p * s + 1.0 / 11;
	p = p * s + 1.0 / 9;
	p = p * s + 1.0 / 7;
	p = p * s + 1.0 / 5;
	p = p * s + 1.0 / 3;
	p = p * s + 1.0;
	p = e * 0.6931471805599453 + 2.0 * f * p;
	memcpy(out, &p, sizeof p);
}

/* Threshold for a 16-bit uniform: u < thr with probability p (2^-16 grid). */
static inline uint32_t fib_thr16(double p)
{
	return (uint32_t)llround(p * 65536.0);
}

/* Frame helpers (fiber_frame.c). */
/* Grow f->p to hold at least n pulses (geometric; old storage wiped). */
__attribute__((warn_unused_result))
int fib_frame_reserve(struct qkd_fiber_frame *f, size_t n);
/* The invariants every frame must satisfy (docs/fiber.md s2): range within
 * bounds and QKD_PULSES_MAX, pulses inside it and increasing, photons >= 1,
 * states <= 3. */
__attribute__((warn_unused_result))
bool fib_frame_valid(const struct qkd_fiber_frame *f);

#endif
