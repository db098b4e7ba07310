/* qkd/bits.h - packed bit strings (sifted, corrected and final key).
 *
 * Bit i lives in word i/64 at bit position i%64 (LSB first). Invariant: the
 * unused high bits of the last word are zero, so whole-word popcounts and
 * comparisons are exact. A qkd_bits is caller-owned (init/cleanup); its
 * storage is treated as secret and wiped by cleanup.
 */
#ifndef QKD_BITS_H
#define QKD_BITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct qkd_bits {
	uint64_t *w;	/* ceil(n/64) words, owned */
	size_t n;	/* length in bits */
};

static inline size_t qkd_bits_words(size_t nbits)
{
	return (nbits + 63) / 64;
}

/* Allocate n zero bits. On failure b is left empty ({NULL, 0}). */
int qkd_bits_init(struct qkd_bits *b, size_t n);
/* Wipe and free; b becomes empty. Accepts an empty or zeroed b. */
void qkd_bits_cleanup(struct qkd_bits *b);
/* Deep copy of src into dst (dst must be uninitialized or empty). */
int qkd_bits_copy(struct qkd_bits *dst, const struct qkd_bits *src);
/* Change the length; new bits are zero, dropped bits are wiped. */
int qkd_bits_resize(struct qkd_bits *b, size_t n);

static inline unsigned qkd_bits_get(const struct qkd_bits *b, size_t i)
{
	return (unsigned)(b->w[i >> 6] >> (i & 63)) & 1u;
}

static inline void qkd_bits_set(struct qkd_bits *b, size_t i, unsigned v)
{
	uint64_t m = (uint64_t)1 << (i & 63);

	b->w[i >> 6] = (b->w[i >> 6] & ~m) | ((uint64_t)(v & 1u) << (i & 63));
}

static inline void qkd_bits_flip(struct qkd_bits *b, size_t i)
{
	b->w[i >> 6] ^= (uint64_t)1 << (i & 63);
}

/* Parity of bits [start, end). Requires start <= end <= b->n. */
unsigned qkd_bits_parity(const struct qkd_bits *b, size_t start, size_t end);
/* Number of one bits. */
size_t qkd_bits_weight(const struct qkd_bits *b);
/* Number of positions where a and b differ (lengths must match). */
size_t qkd_bits_distance(const struct qkd_bits *a, const struct qkd_bits *b);
/* Constant-time equality (same length and same bits). */
bool qkd_bits_equal(const struct qkd_bits *a, const struct qkd_bits *b);
/* Write ceil(n/8) bytes, bit i at byte i/8 bit i%8 (LSB first). */
void qkd_bits_to_bytes(const struct qkd_bits *b, uint8_t *out);
/* Load n bits from ceil(n/8) bytes in the same order; b must be initialized
 * with length n. Stray bits beyond n in the last byte are ignored. */
void qkd_bits_from_bytes(struct qkd_bits *b, const uint8_t *in);
/* Copy n bits from src[spos..) to dst[dpos..) (word at a time). The ranges
 * must lie inside their strings. dst and src may be the same string only
 * when dpos <= spos (a move towards the start, which copies forwards). */
void qkd_bits_copy_range(struct qkd_bits *dst, size_t dpos, const struct qkd_bits *src,
			 size_t spos, size_t n);
/* Clear the bits beyond n in the last word (restores the invariant after
 * word-level writes). */
void qkd_bits_trim(struct qkd_bits *b);

#endif
