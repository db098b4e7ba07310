/* slot_rng.c - the simulator's random choices, computable for any slot.
 *
 * Three parties of randomness, each keyed from the one user seed through
 * qkd_rng_init_seed with its own label, so Alice's choices, Bob's choices and
 * the physics are independent streams, and none of them coincides with the
 * protocol RNGs the engine keys with other labels:
 *   "optical/alice"   her (basis, value) per slot, and her double-click bits
 *   "optical/bob"     his basis per slot, and his double-click bits
 *   "optical/channel" gaps between event slots, photon counts, detectors
 * Per-slot choices are mix(key, slot / 32) -> 64 bits = 32 slots x (basis,
 * value) for Alice, mix(key, slot / 64) -> 64 bases for Bob, so nothing is
 * stored and any slot costs one mixer call. This is a simulation generator
 * (splitmix64 finalizers keyed by 128 bits), not a cryptographic one.
 */
#include "optical_int.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "qkd/error.h"

#include "qkd/rng.h"

static void key_from(struct qkd_rng *g, struct opt_key *k)
{
	k->k0 = qkd_rng_u64(g);
	k->k1 = qkd_rng_u64(g);
}

void opt_keys_derive(struct qkd_sim *s)
{
	struct qkd_rng g;

	qkd_rng_init_seed(&g, s->p.seed, "optical/alice");
	key_from(&g, &s->alice);
	key_from(&g, &s->alice_dc);
	qkd_rng_cleanup(&g);
	qkd_rng_init_seed(&g, s->p.seed, "optical/bob");
	key_from(&g, &s->bob);
	key_from(&g, &s->bob_dc);
	qkd_rng_cleanup(&g);
	qkd_rng_init_seed(&g, s->p.seed, "optical/channel");
	key_from(&g, &s->chan);
	qkd_rng_cleanup(&g);
}

void opt_stream_init(struct opt_stream *cs, const struct qkd_sim *s, uint64_t block)
{
	cs->x = opt_mix(&s->chan, block);
}

/* A biased RNG (--rng-bias P): per slot one mixer word whose two 32-bit
 * halves are compared with P 2^32, so each bit is 1 with probability P.
 * The mixer input has its top bit set: it never equals a fair-path input
 * (slot >> 5 < 2^57). */
static void biased_choice(const struct qkd_sim *s, uint64_t slot, uint8_t *basis,
			  uint8_t *value)
{
	uint64_t w = opt_mix(&s->alice, slot | ((uint64_t)1 << 63));
	uint64_t t = (uint64_t)llround(s->p.rng_bias * 4294967296.0);

	*basis = (uint8_t)((w & 0xffffffffu) < t);
	*value = (uint8_t)((w >> 32) < t);
}

void opt_alice_choice(const struct qkd_sim *s, uint64_t slot, uint8_t *basis,
		      uint8_t *value)
{
	uint64_t w;

	if (s->p.rng_bias != 0.5) {
		biased_choice(s, slot, basis, value);
		return;
	}
	w = opt_mix(&s->alice, slot >> 5) >> (2 * (slot & 31));
	*basis = (uint8_t)(w & 1);
	*value = (uint8_t)((w >> 1) & 1);
}

/* Even bits of w to the low half, odd bits to the high half (a fair word
 * holds 32 slots as basis, value pairs). */
#ifdef __BMI2__
#include <immintrin.h>
static uint64_t deinterleave(uint64_t w)
{
	return _pext_u64(w, 0x5555555555555555ull) |
	       (_pext_u64(w, 0xaaaaaaaaaaaaaaaaull) << 32);
}
#else
static uint64_t deinterleave(uint64_t w)
{
	static const uint64_t m[5] = {0x3333333333333333ull, 0x0f0f0f0f0f0f0f0full,
				      0x00ff00ff00ff00ffull, 0x0000ffff0000ffffull,
				      0x00000000ffffffffull};
	uint64_t even = w & 0x5555555555555555ull, odd = (w >> 1) & 0x5555555555555555ull;

	/* Compress each 0x55-spaced half to 32 contiguous bits. */
	for (int sh = 1, i = 0; i < 5; i++, sh <<= 1) {
		even = (even | (even >> sh)) & m[i];
		odd = (odd | (odd >> sh)) & m[i];
	}
	return even | (odd << 32);
}
#endif

int qkd_sim_alice_choices(const struct qkd_sim *s, uint64_t first, uint64_t count,
			  struct qkd_bits *basis, struct qkd_bits *value)
{
	bool wcp = s->p.source == QKD_SOURCE_WEAK_COHERENT;
	uint64_t i = 0;

	if (count > s->p.pulses || first > s->p.pulses - count)
		return QKD_ERR_RANGE;
	if (basis->n < count || value->n < count)
		return QKD_ERR_INVAL;
	memset(basis->w, 0, qkd_bits_words(basis->n) * sizeof(uint64_t));
	memset(value->w, 0, qkd_bits_words(value->n) * sizeof(uint64_t));
	/* Fair and 32-aligned: one mixer word gives 32 slots. */
	if (s->p.rng_bias == 0.5 && (first & 31) == 0) {
		for (; i + 32 <= count; i += 32) {
			uint64_t d = deinterleave(opt_mix(&s->alice, (first + i) >> 5));

			basis->w[i >> 6] |= (d & 0xffffffffu) << (i & 63);
			if (wcp)
				value->w[i >> 6] |= (d >> 32) << (i & 63);
		}
	}
	for (; i < count; i++) {
		uint8_t b, v;

		opt_alice_choice(s, first + i, &b, &v);
		basis->w[i >> 6] |= (uint64_t)b << (i & 63);
		if (wcp)
			value->w[i >> 6] |= (uint64_t)v << (i & 63);
	}
	return QKD_OK;
}

uint8_t opt_bob_basis(const struct qkd_sim *s, uint64_t slot)
{
	return (uint8_t)((opt_mix(&s->bob, slot >> 6) >> (slot & 63)) & 1);
}

uint8_t opt_dc_bit(const struct opt_key *k, uint64_t slot)
{
	return (uint8_t)((opt_mix(k, slot >> 6) >> (slot & 63)) & 1);
}
