/* qkd/gf2poly.h - products of long polynomials over GF(2).
 *
 * The engine of privacy amplification (DESIGN.md section 4, see
 * docs/privacy-amplification.md): a Toeplitz hash is a slice of one
 * polynomial product.
 *
 * Representation: a polynomial is an array of uint64_t words, coefficient of
 * x^i in word i/64 at bit i%64 (LSB first), exactly the layout of struct
 * qkd_bits. Sizes are in words. A zero-length operand (n = 0 words) is the
 * zero polynomial and its pointer may be NULL.
 *
 * Aliasing and ownership (gf2x style): inputs are only read; outputs are
 * caller-owned, fully written (never read before written), and must not
 * overlap any input. Scratch is allocated internally per call, wiped
 * (operands may be key material) and freed before return.
 *
 * Implementation: an additive FFT over GF(2^64) for long operands (shorter
 * one >= 2048 words), Karatsuba below that, its transpose for the middle
 * product, all down to carry-less kernels chosen at run time: VPCLMULQDQ on
 * AVX-512 (4 64x64 products per instruction), PCLMULQDQ, or portable C that
 * indexes nothing by data. All paths compute the same function; none
 * branches on operand bits. See docs/privacy-amplification.md.
 */
#ifndef QKD_GF2POLY_H
#define QKD_GF2POLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* c = a * b. c has na + nb words, must not overlap a or b.
 * Returns 0, QKD_ERR_NOMEM (c then undefined) or QKD_ERR_RANGE when
 * na + nb overflows. */
int qkd_gf2poly_mul(uint64_t *c, const uint64_t *a, size_t na,
		    const uint64_t *b, size_t nb);

/* Middle product: c = words [n, 2n) of t * v, where t has 2n words and v has
 * n words (c has n words, must not overlap t or v). This is an n-word square
 * Toeplitz matrix (built from t) times the vector v, computed in about the
 * time of one n x n product (transposed Karatsuba), where taking the slice
 * of a full product would cost twice that.
 * Returns 0, QKD_ERR_NOMEM or QKD_ERR_RANGE. */
int qkd_gf2poly_mulmid(uint64_t *c, const uint64_t *t, const uint64_t *v,
		       size_t n);

/* Plain word-by-word schoolbook, bit-serial 64x64 product, no SIMD, no
 * recursion: the independent reference the tests check the fast paths
 * against. O(na * nb * 64). Same contract as qkd_gf2poly_mul. */
void qkd_gf2poly_mul_ref(uint64_t *c, const uint64_t *a, size_t na,
			 const uint64_t *b, size_t nb);

/* Name of the base-case kernel in use: "vpclmulqdq-avx512", "pclmulqdq" or
 * "portable". */
const char *qkd_gf2poly_kernel(void);

/* TEST ONLY: force (true) or release (false) the portable base case so that
 * tests exercise it on a CPU that has the SIMD kernels. Process-wide; not
 * thread-safe against concurrent products. Production code never calls it. */
void qkd_gf2poly_force_portable(bool on);

#endif
