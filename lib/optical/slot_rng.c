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

void opt_alice_choice(const struct qkd_sim *s, uint64_t slot, uint8_t *basis,
		      uint8_t *value)
{
	uint64_t w = opt_mix(&s->alice, slot >> 5) >> (2 * (slot & 31));

	*basis = (uint8_t)(w & 1);
	*value = (uint8_t)((w >> 1) & 1);
}

uint8_t opt_bob_basis(const struct qkd_sim *s, uint64_t slot)
{
	return (uint8_t)((opt_mix(&s->bob, slot >> 6) >> (slot & 63)) & 1);
}

uint8_t opt_dc_bit(const struct opt_key *k, uint64_t slot)
{
	return (uint8_t)((opt_mix(k, slot >> 6) >> (slot & 63)) & 1);
}
