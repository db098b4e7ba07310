/* slot_rng.c - the simulator's random choices, computable for any slot.
 *
 * Four parties of randomness, each keyed from the one user seed through
 * qkd_rng_init_seed with its own label, so Alice's choices, Bob's choices,
 * Eve's choices and the physics are independent streams, and none of them
 * coincides with the protocol RNGs the engine keys with other labels:
 *   "optical/alice"   her (basis, value, intensity) per slot, and her
 *                     double-click bits
 *   "optical/bob"     his basis per slot, and his double-click bits
 *   "optical/channel" gaps between event slots, photon counts, detectors
 *   "optical/eve"     Eve's decisions, basis and guesses per slot
 * Per-slot choices are mix(key, slot / 32) -> 64 bits = 32 slots x (basis,
 * value) for Alice, mix(key, slot / 64) -> 64 bases for Bob, so nothing is
 * stored and any slot costs one mixer call. Biased or multi-valued choices
 * take one word per slot, its input tagged by a high bit so that no two
 * kinds of word ever share a mixer input (slot < 2^62):
 *   slot >> 5, slot >> 6   fair words               < 2^57
 *   slot | 2^62            decoy / p_x words        [2^62, 2^63)
 *   slot | 2^63            --rng-bias words         [2^63, 2^63 + 2^62)
 * This is a simulation generator (splitmix64 finalizers keyed by 128 bits),
 * not a cryptographic one.
 */
#include "optical_int.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/secret.h"

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
	qkd_rng_init_seed(&g, s->p.seed, "optical/eve");
	key_from(&g, &s->eve);
	qkd_rng_cleanup(&g);
}

#define WORD_TAG ((uint64_t)1 << 62)
#define A_BITS 21		/* basis and value fields of Alice's word */
#define K_BITS 22		/* intensity field */

static uint32_t thr_bits(double prob, int bits)
{
	return (uint32_t)llround(ldexp(prob, bits));
}

/* The word paths only when needed: a link without decoys and with
 * symmetric bases keeps the fair and --rng-bias paths bit for bit. */
void opt_choices_setup(struct qkd_sim *s)
{
	const struct qkd_link_params *p = &s->p;
	double c0 = 1.0, c1 = 1.0;

	s->alice_word = p->p_x != 0.5 || p->intensities != 1;
	s->bob_word = p->p_x != 0.5;
	s->a_thr_basis = thr_bits(p->p_x != 0.5 ? p->p_x : p->rng_bias, A_BITS);
	s->a_thr_value = thr_bits(p->rng_bias, A_BITS);
	if (p->intensities == QKD_INTENSITIES_MAX) {
		c0 = p->p_intensity[0];
		c1 = p->p_intensity[0] + p->p_intensity[1];
	}
	s->a_cut[0] = thr_bits(c0, K_BITS);
	s->a_cut[1] = thr_bits(c1 < 1.0 ? c1 : 1.0, K_BITS);
	/* p_x < 1, so p_x 2^64 < 2^64 is exact in a double and fits. */
	s->b_thr = (uint64_t)ldexp(p->p_x, 64);
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

/* Decoys or biased bases: one word per slot, three fields: basis (21 bits,
 * P(1) = p_x, or rng_bias when p_x is 1/2), value (21 bits, rng_bias) and
 * intensity (22 bits, cut at the cumulative p_intensity). */
static void word_choice(const struct qkd_sim *s, uint64_t slot, uint8_t *basis,
			uint8_t *value, uint8_t *intensity)
{
	uint64_t w = opt_mix(&s->alice, slot | WORD_TAG);
	uint32_t k = (uint32_t)(w >> (2 * A_BITS));

	*basis = (uint8_t)((w & ((1u << A_BITS) - 1)) < s->a_thr_basis);
	*value = (uint8_t)(((w >> A_BITS) & ((1u << A_BITS) - 1)) < s->a_thr_value);
	*intensity = (uint8_t)((k >= s->a_cut[0]) + (k >= s->a_cut[1]));
}

void opt_alice_choice(const struct qkd_sim *s, uint64_t slot, uint8_t *basis,
		      uint8_t *value, uint8_t *intensity)
{
	uint64_t w;

	*intensity = 0;
	if (s->alice_word) {
		word_choice(s, slot, basis, value, intensity);
		return;
	}
	if (s->p.rng_bias != 0.5) {
		biased_choice(s, slot, basis, value);
		return;
	}
	w = opt_mix(&s->alice, slot >> 5) >> (2 * (slot & 31));
	*basis = (uint8_t)(w & 1);
	*value = (uint8_t)((w >> 1) & 1);
}


/* w[j] = opt_mix(k, base + j) for j < 64 (base | WORD_TAG never carries
 * into bit 62 for slots < 2^62 aligned to 64). Plain loops the compiler
 * vectorizes; with AVX-512DQ (64-bit lane multiplies), chosen at run time
 * so the program still runs everywhere, 8 words at a time. */
#define MIX_WORDS_BODY							\
	for (unsigned j = 0; j < 64; j++) {				\
		uint64_t z = (base + j) * 0x9e3779b97f4a7c15ULL + k0;	\
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;		\
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;		\
		z = (z ^ (z >> 31)) ^ k1;				\
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;		\
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;		\
		w[j] = z ^ (z >> 31);					\
	}

/* GCC vectorizes at -O2 only with the cheapest cost model; ask for the
 * loop. Clang vectorizes it anyway and has no such attribute. */
#ifdef __clang__
#define VECTORIZE
#else
#define VECTORIZE __attribute__((optimize("tree-vectorize")))
#endif

__attribute__((target("avx512f,avx512dq"))) VECTORIZE
static void mix_words_avx512(uint64_t k0, uint64_t k1, uint64_t base, uint64_t *restrict w)
{
	MIX_WORDS_BODY
}

VECTORIZE
static void mix_words_plain(uint64_t k0, uint64_t k1, uint64_t base, uint64_t *restrict w)
{
	MIX_WORDS_BODY
}

static void mix_words(const struct opt_key *k, uint64_t base, uint64_t *w)
{
	static int avx512 = -1;

	if (avx512 < 0)
		avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
	if (avx512)
		mix_words_avx512(k->k0, k->k1, base, w);
	else
		mix_words_plain(k->k0, k->k1, base, w);
}

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
	if (!s->alice_word && s->p.rng_bias == 0.5 && (first & 31) == 0) {
		for (; i + 32 <= count; i += 32) {
			uint64_t d = opt_deinterleave(opt_mix(&s->alice, (first + i) >> 5));

			basis->w[i >> 6] |= (d & 0xffffffffu) << (i & 63);
			if (wcp)
				value->w[i >> 6] |= (d >> 32) << (i & 63);
		}
	}
	/* Word path: 64 slots per output word, the mixer calls independent so
	 * the CPU overlaps their multiplies (the per-slot call below is 3x
	 * slower, and the randomness tests read every pulse's choice). */
	if (s->alice_word) {
		const uint64_t m = (1u << A_BITS) - 1;
		uint64_t w[64];

		for (; i + 64 <= count; i += 64) {
			uint64_t bw = 0, vw = 0;

			mix_words(&s->alice, (first + i) | WORD_TAG, w);
			for (unsigned j = 0; j < 64; j++) {
				bw |= (uint64_t)((w[j] & m) < s->a_thr_basis) << j;
				vw |= (uint64_t)(((w[j] >> A_BITS) & m) < s->a_thr_value) << j;
			}
			basis->w[i >> 6] = bw;
			if (wcp)
				value->w[i >> 6] = vw;
		}
		qkd_wipe(w, sizeof w);
	}
	for (; i < count; i++) {
		uint8_t b, v, k;

		opt_alice_choice(s, first + i, &b, &v, &k);
		basis->w[i >> 6] |= (uint64_t)b << (i & 63);
		if (wcp)
			value->w[i >> 6] |= (uint64_t)v << (i & 63);
	}
	return QKD_OK;
}

uint8_t opt_bob_basis(const struct qkd_sim *s, uint64_t slot)
{
	if (s->bob_word)
		return (uint8_t)(opt_mix(&s->bob, slot | WORD_TAG) < s->b_thr);
	return (uint8_t)((opt_mix(&s->bob, slot >> 6) >> (slot & 63)) & 1);
}

uint8_t opt_dc_bit(const struct opt_key *k, uint64_t slot)
{
	return (uint8_t)((opt_mix(k, slot >> 6) >> (slot & 63)) & 1);
}
