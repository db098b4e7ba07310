/* qkd/verify.h - error verification of corrected frames (DESIGN section 4).
 *
 * After error correction both parties hash their frame with the same fresh
 * key and compare 64-bit tags; a frame whose tags differ is discarded, never
 * passed on. The hash is the polynomial evaluation hash over GF(2^64)
 * (modulus x^64 + x^4 + x^3 + x + 1): for a frame of L 64-bit words w_1..w_L
 * and n bits,
 *     tag = w_1 k^(L+1) + w_2 k^L + ... + w_L k^2 + n k
 * so two different frames of equal length collide for at most L+1 of the
 * 2^64 keys: probability <= (L+1) / 2^64 (about 2^-53 for 10^5 bits). The
 * key is drawn after the frames are fixed and sent over the authenticated
 * channel; the 64 tag bits are counted as disclosed.
 */
#ifndef QKD_VERIFY_H
#define QKD_VERIFY_H

#include <stdint.h>

#include "qkd/bits.h"

#define QKD_VERIFY_TAG_BITS 64

/* Multiply in GF(2^64) modulo x^64 + x^4 + x^3 + x + 1. */
uint64_t qkd_gf64_mul(uint64_t a, uint64_t b);
/* The same product by shift-and-add, used where the CPU has no carry-less
 * multiply; exported so the tests check both paths. */
uint64_t qkd_gf64_mul_portable(uint64_t a, uint64_t b);

/* The tag of b under key k (see above). */
uint64_t qkd_verify_tag(const struct qkd_bits *b, uint64_t key);

#endif
