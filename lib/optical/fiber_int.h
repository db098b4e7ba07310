/* fiber_int.h - private to lib/optical/fiber_*.c: the keyed ChaCha20
 * streams behind the fiber emitter, detector and Eve (docs/fiber.md s3),
 * and the frame helpers they share.
 *
 * Every party's randomness is ChaCha20 (libsodium) under a subkey derived
 * from the party's 32-byte secret with crypto_kdf (BLAKE2b), one subkey per
 * purpose, so the streams are independent and none reveals another. Two
 * access patterns:
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
};

#define FIB_BLOCK_BYTES 64u	/* one ChaCha20 block */
#define FIB_STREAM_WORDS 64u	/* a sequential stream buffers 8 blocks */

static inline void fib_subkey(uint8_t out[32], const uint8_t key[QKD_FIBER_KEY_BYTES],
			      enum fib_purpose id)
{
	crypto_kdf_derive_from_key(out, 32, (uint64_t)id, "qkdfiber", key);
}

static inline uint64_t fib_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static inline uint32_t fib_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint32_t fib_le16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

/* nblocks keystream blocks from block number counter on, nonce 0. */
static inline void fib_blocks(const uint8_t key[32], uint64_t counter, size_t nblocks,
			      uint8_t *out)
{
	static const uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];

	memset(out, 0, nblocks * FIB_BLOCK_BYTES);
	crypto_stream_chacha20_xor_ic(out, out, nblocks * FIB_BLOCK_BYTES, nonce, counter, key);
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
		memset(s->buf, 0, sizeof s->buf);
		crypto_stream_chacha20_xor_ic(s->buf, s->buf, sizeof s->buf, s->nonce,
					      s->counter, s->key);
		s->counter += sizeof s->buf / FIB_BLOCK_BYTES;
		s->pos = 0;
	}
	return fib_le64(s->buf + 8 * s->pos++);
}

/* Uniform in [0, 1) with 53 bits. */
static inline double fib_unit(struct fib_stream *s)
{
	return (double)(fib_u64(s) >> 11) * 0x1p-53;
}

/* Uniform in (0, 1]: safe for log(). */
static inline double fib_open(struct fib_stream *s)
{
	return (double)((fib_u64(s) >> 11) + 1) * 0x1p-53;
}

/* Gap to the next success of a Bernoulli process whose log failure
 * probability is lq (< 0; -inf for certainty): floor(ln U / lq), U in (0,1],
 * by inversion. Returned as a double so a huge gap never overflows; callers
 * compare it with the room left. */
static inline double fib_gap(struct fib_stream *s, double lq)
{
	return floor(log(fib_open(s)) / lq);
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
