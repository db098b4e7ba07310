/* optical_int.h - private to lib/optical: the simulator's internals.
 *
 * Sampling model (docs/optical-model.md): in one slot, a mode (bases equal or
 * not) is a list of independent sources, each a Poisson count (photons or
 * pairs of one fate) or a Bernoulli event (a dark count). "Active" sources
 * light detectors; the rest only feed the ground truth. A slot is an event
 * when some active source is non-zero; P(no event) is the same in both modes,
 * so event slots form a Bernoulli process independent of the bases and the
 * gap to the next one is geometric. Given an event, the first non-zero active
 * source is drawn from its exact conditional law, it is sampled conditioned
 * on >= 1, and every later source unconditionally.
 */
#ifndef QKD_OPTICAL_INT_H
#define QKD_OPTICAL_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "qkd/optical.h"

/* Channel randomness is restarted per block of 2^16 slots, so any slot range
 * can be simulated without the slots before it (geometric gaps are
 * memoryless, so the restart is exact). */
#define OPT_BLOCK_SHIFT 16
#define OPT_BLOCK_SLOTS ((uint64_t)1 << OPT_BLOCK_SHIFT)
#define OPT_SRC_MAX 16
#define OPT_POISSON_KMAX 4000u	/* inversion loop bound; mu <= 100 keeps far below */

/* Detector bits of a fired mask. For the weak-coherent source Bob's two bits
 * mean "the detector of Alice's value" (B0) and "the other one" (B1) until
 * opt_event_fill maps them to absolute values. */
enum { OPT_A0 = 1, OPT_A1 = 2, OPT_B0 = 4, OPT_B1 = 8 };

/* What one unit of a source counts toward in the ground truth. */
enum {
	OPT_R_SENT = 1,		/* a photon (WCP) or pair (SPDC) emitted */
	OPT_R_A_ARR = 2,	/* reached Alice's detectors */
	OPT_R_A_DET = 4,	/* detected by Alice */
	OPT_R_B_ARR = 8,	/* reached Bob's detectors */
	OPT_R_B_DET = 16,	/* detected by Bob */
};

struct opt_key {
	uint64_t k0, k1;
};

struct opt_source {
	double mean;		/* Poisson mean, or Bernoulli probability */
	double q;		/* P(count == 0) */
	double p1;		/* Poisson: P(count == 1 | count >= 1) */
	double cdf;		/* active: P(first non-zero source <= this | event) */
	uint8_t bernoulli, mask, role;
};

struct opt_mode {
	struct opt_source src[OPT_SRC_MAX];
	unsigned n_active;	/* src[0 .. n_active) light detectors */
	unsigned n;		/* all sources */
	double log_silent;	/* log P(no active source fires) */
	/* tail[s][k] = 1 - prod_{i=s..k} q_i = P(first non-zero of src[s..] is
	 * <= k), for s <= k < n: the rest of a slot is sampled by jumping from
	 * one non-zero source to the next, one uniform per jump. */
	double tail[OPT_SRC_MAX][OPT_SRC_MAX];
};

struct qkd_sim {
	struct qkd_link_params p;
	struct opt_key alice;		/* Alice's (basis, value) per slot */
	struct opt_key alice_dc;	/* Alice's random bit on a double click */
	struct opt_key bob;		/* Bob's basis per slot */
	struct opt_key bob_dc;		/* Bob's random bit on a double click */
	struct opt_key chan;		/* physics: gaps, photon counts */
	struct opt_mode mode[2];	/* [0] bases differ, [1] bases match */
	double log_silent;		/* log P(slot is not an event) */
	double inv_log_silent;		/* 1 / log_silent (-0 when every slot is one) */
	bool relative_b;		/* WCP: B0/B1 relative to Alice's value */
};

/* One event slot with everything the simulator knows; party 0 Alice, 1 Bob. */
struct opt_event {
	uint64_t slot;
	uint8_t basis[2], value[2], flags[2];
	uint8_t clicked[2];	/* WCP: Alice's entry is 0 (she has no detectors) */
	uint32_t n_sent, n_arr[2], n_det[2];
};

/* Counter-based streams: one 64-bit channel stream per block. */
struct opt_stream {
	uint64_t x;
};

struct opt_block_it {
	const struct qkd_sim *s;
	struct opt_stream cs;
	uint64_t pos, end;
	bool done;
};

static inline uint64_t opt_fmix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Keyed mixer: a bijection of ctr for a fixed key, two splitmix64 finalizer
 * rounds with the two key words. Simulation quality, not cryptographic. */
static inline uint64_t opt_mix(const struct opt_key *k, uint64_t ctr)
{
	return opt_fmix64(opt_fmix64(ctr * 0x9e3779b97f4a7c15ULL + k->k0) ^ k->k1);
}

static inline uint64_t opt_next64(struct opt_stream *cs)
{
	cs->x += 0x9e3779b97f4a7c15ULL;
	return opt_fmix64(cs->x);
}

/* Uniform in [0, 1). */
static inline double opt_u01(struct opt_stream *cs)
{
	return (double)(opt_next64(cs) >> 11) * 0x1.0p-53;
}

/* Uniform in (0, 1]: safe for log(). */
static inline double opt_u_open0(struct opt_stream *cs)
{
	return (double)((opt_next64(cs) >> 11) + 1) * 0x1.0p-53;
}

/* slot_rng.c */
void opt_keys_derive(struct qkd_sim *s);
void opt_stream_init(struct opt_stream *cs, const struct qkd_sim *s, uint64_t block);
void opt_alice_choice(const struct qkd_sim *s, uint64_t slot, uint8_t *basis, uint8_t *value);
uint8_t opt_bob_basis(const struct qkd_sim *s, uint64_t slot);
uint8_t opt_dc_bit(const struct opt_key *k, uint64_t slot);

/* sources.c */
void opt_mode_clear(struct opt_mode *m);
void opt_add_poisson(struct opt_mode *m, double mean, unsigned mask, unsigned role);
void opt_add_bernoulli(struct opt_mode *m, double prob, unsigned mask, unsigned role);
/* Call once after the active sources are added, before the truth-only ones. */
void opt_mode_seal_active(struct opt_mode *m);
/* Call once after all sources are added. */
void opt_mode_seal(struct opt_mode *m);
/* Fill cnt[0 .. m->n) for an event slot (some active source non-zero). */
void opt_sample_counts(const struct opt_mode *m, struct opt_stream *cs, uint32_t *cnt);

/* sim_wcp.c, sim_entangled.c: the two modes' source tables and closed forms. */
void opt_wcp_modes(const struct qkd_link_params *p, struct opt_mode mode[2]);
void opt_wcp_expected(const struct qkd_link_params *p, double *p_click, double *qber);
void opt_spdc_modes(const struct qkd_link_params *p, struct opt_mode mode[2]);
void opt_spdc_expected(const struct qkd_link_params *p, double *p_click, double *qber);

/* block.c: iterate the event slots of one block up to end (exclusive). */
void opt_block_begin(struct opt_block_it *it, const struct qkd_sim *s,
		     uint64_t block, uint64_t end);
bool opt_block_next(struct opt_block_it *it, struct opt_event *ev);
/* Ground truth of one party (0 Alice, 1 Bob) of an event, saturated to 8 bits. */
void opt_event_truth(const struct opt_event *ev, int who, struct qkd_det_truth *t);

#endif
