/* qkd/pa.h - privacy amplification by Toeplitz hashing (DESIGN.md section 4).
 *
 * The corrected key in (n bits) is compressed to m bits with a random
 * Toeplitz matrix T, a 2-universal hash family; the seed that fixes T is
 * public and travels over the authenticated channel. The convention, in the
 * bit order of struct qkd_bits (bit i of x is x_i):
 *
 *     out_i = XOR_{j=0}^{n-1} T[i][j] in_j,   T[i][j] = seed[i - j + n - 1],
 *     0 <= i < m,
 *
 * so seed bit n-1 is the main diagonal, seed bits 0..n-2 lie above it (row 0
 * reads seed[n-1], seed[n-2], ..., seed[0]) and bits n..n+m-2 below it.
 * Equivalently, with polynomials in(x) = sum in_j x^j, seed(x) likewise:
 *
 *     out_i = coefficient of x^(n-1+i) in seed(x) * in(x),
 *
 * the m coefficients starting at x^(n-1) of the product, computed as a middle
 * product (docs/privacy-amplification.md derives it). The seed has exactly
 * n + m - 1 bits (qkd_pa_seed_bits). Alice and Bob must use the same
 * convention; any other bit order gives another, incompatible key.
 */
#ifndef QKD_PA_H
#define QKD_PA_H

#include <stddef.h>

struct qkd_bits;

/* *out = n + m - 1, the seed length for an m x n Toeplitz matrix; 0 when
 * n = m = 0. QKD_ERR_INVAL if m > n (privacy amplification never expands),
 * QKD_ERR_RANGE on overflow. */
int qkd_pa_seed_bits(size_t n, size_t m, size_t *out);

/* Hash in (n = in->n bits) to m bits with the Toeplitz matrix given by seed
 * (exactly qkd_pa_seed_bits(n, m) bits). out must be uninitialized or empty:
 * the function initializes it with m bits (caller then owns it and releases
 * it with qkd_bits_cleanup); on error out is left empty. out must be another
 * object than in and seed, which are only read. m = 0 gives an empty out. Every scratch word that held key
 * material is wiped before it is freed. Below about 1.5 Mbit of input it runs
 * transposed-Karatsuba middle products, above that one additive-FFT product
 * (O(n log n)); both exact, see docs/privacy-amplification.md. The input
 * must keep the qkd_bits invariant (zero bits past n).
 * Returns 0, QKD_ERR_INVAL (m > n, wrong seed length, NULL argument),
 * QKD_ERR_RANGE (size overflow) or QKD_ERR_NOMEM. */
__attribute__((warn_unused_result))
int qkd_pa_toeplitz(struct qkd_bits *out, size_t m, const struct qkd_bits *in,
		    const struct qkd_bits *seed);

/* The same function straight from the matrix definition, O(n * m) bit
 * operations: the reference for tests. Same contract. */
__attribute__((warn_unused_result))
int qkd_pa_toeplitz_ref(struct qkd_bits *out, size_t m,
			const struct qkd_bits *in, const struct qkd_bits *seed);

/* TEST ONLY: choose the algorithm of qkd_pa_toeplitz: 0 automatic (the
 * default), 1 transposed-Karatsuba middle products, 2 additive-FFT product.
 * All give the same output; tests use it to cover both on every size.
 * Process-wide; production code never calls it. */
void qkd_pa_force_method(int method);

/* Heap bytes qkd_pa_toeplitz allocates internally for (n, m) besides out
 * (0 if m = 0). Lets a caller budget memory; qkd_pa_bench reports it. */
size_t qkd_pa_toeplitz_scratch_bytes(size_t n, size_t m);

/* Benchmark for `qkd bench`: hash a pseudo-random n_bits-bit key with a
 * pseudo-random seed to m = n_bits/2 bits (deterministic data, fixed seed).
 * *seconds = wall-clock time (CLOCK_MONOTONIC) of the fastest of several
 * runs of qkd_pa_toeplitz alone (runs repeat until 0.5 s have passed, at
 * most 20, at least 1); data generation is not timed. Throughput in the
 * docs' sense is n_bits / *seconds (bits of INPUT per second).
 * *peak_bytes = bytes live at the peak of one hash: input + seed + output +
 * qkd_pa_toeplitz_scratch_bytes(n_bits, n_bits/2). Either pointer may be
 * NULL. Returns 0, QKD_ERR_INVAL (n_bits < 2), or an error of
 * qkd_pa_toeplitz. */
int qkd_pa_bench(size_t n_bits, double *seconds, size_t *peak_bytes);

#endif
