/* qkd/secret.h - handling of secret memory.
 *
 * Every buffer that holds key material (sifted, corrected or final key,
 * hash keys, PRNG state) is wiped before it is released (STYLE.md habit 5).
 */
#ifndef QKD_SECRET_H
#define QKD_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/* Wipe n bytes at p in a way the compiler may not elide. p may be NULL if n is 0. */
void qkd_wipe(void *p, size_t n);

/* Wipe then free. Accepts NULL. */
void qkd_free_secret(void *p, size_t n);

/* Allocate scratch of n bytes for big computations (the FFT of privacy
 * amplification): from 4 MiB up, 2 MiB-aligned and advised for huge pages,
 * so the first touch faults in hundreds, not thousands, of pages. Release
 * with qkd_free_scratch, which wipes (the scratch holds key material). */
void *qkd_alloc_scratch(size_t n);
void qkd_free_scratch(void *p, size_t n);

/* Constant-time comparison of n bytes: true when equal. Time depends on n only. */
bool qkd_ct_equal(const void *a, const void *b, size_t n);

#endif
