/* qkd/rng.h - deterministic random bit generator for protocol choices.
 *
 * ChaCha20 keystream (libsodium) keyed from a 32-byte key. Every random choice
 * a party makes in the protocol (Cascade permutation seeds, hash keys, the
 * privacy-amplification seed) is drawn from its own qkd_rng, so a simulated run
 * is reproducible bit for bit from --seed, while a node seeds it from the
 * system RNG (qkd_rng_init_system). The state is secret and wiped at cleanup.
 */
#ifndef QKD_RNG_H
#define QKD_RNG_H

#include <stddef.h>
#include <stdint.h>

#define QKD_RNG_BUF 512

struct qkd_rng {
	uint8_t key[32];
	uint64_t counter;		/* ChaCha20 block counter */
	uint8_t buf[QKD_RNG_BUF];	/* unread keystream */
	size_t pos;			/* bytes of buf already used */
};

/* Key the generator with key[32]. */
void qkd_rng_init(struct qkd_rng *g, const uint8_t key[32]);
/* Key from a 64-bit seed and a domain label, so independent streams
 * ("alice", "bob", "sim") come from one user seed: key = BLAKE2b-256(label || seed). */
void qkd_rng_init_seed(struct qkd_rng *g, uint64_t seed, const char *label);
/* Key from the operating system's RNG (getrandom). */
int qkd_rng_init_system(struct qkd_rng *g);
void qkd_rng_cleanup(struct qkd_rng *g);

void qkd_rng_bytes(struct qkd_rng *g, void *out, size_t n);
uint64_t qkd_rng_u64(struct qkd_rng *g);
/* Uniform in [0, bound), bound > 0, without modulo bias. */
uint64_t qkd_rng_below(struct qkd_rng *g, uint64_t bound);
/* Uniform double in [0, 1) with 53 random bits. */
double qkd_rng_double(struct qkd_rng *g);

#endif
