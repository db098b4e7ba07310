/* qkd/randomness.h - randomness tests of a party's raw random choices (basis
 * or value bits), turned into the non-randomness term r of DESIGN.md 5.4.
 *
 * Two estimators in the manner of NIST SP 800-90B section 6.3, each an upper
 * bound on a guessing probability at the same confidence c (standard
 * deviations) as the rest of the entropy estimate:
 *   frequency (800-90B 6.3.1, most common value) and
 *   first-order Markov (after 800-90B 6.3.3): the most likely next bit given
 *   the previous one.
 * H_min, the smaller per-bit min-entropy, gives r = ceil(b (1 - H_min)).
 * Each test also has a z-score flagged at |z| > c (false-alarm probability
 * erfc(c/sqrt2), 5.7e-7 at c = 5). docs/randomness.md derives every formula.
 *
 * Pure computation: no allocation, no I/O, no global state; thread-safe on
 * distinct objects.
 */
#ifndef QKD_RANDOMNESS_H
#define QKD_RANDOMNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "qkd/bits.h"

/* Counts of one stream of choices, accumulable chunk by chunk. Caller-owned
 * (init/cleanup). Transitions: t_ab = number of i with x_i = a, x_{i+1} = b,
 * counted across chunk boundaries too, so t00+t01+t10+t11 = n-1 when n > 0.
 * last holds the stream's most recent raw bit, which may be secret: cleanup
 * wipes the struct. */
struct qkd_randomness_stats {
	uint64_t n;		/* bits seen */
	uint64_t ones;		/* of which ones */
	uint64_t t00, t01, t10, t11;
	unsigned last;		/* x_{n-1}, valid when n > 0 */
};

struct qkd_randomness_result {
	/* estimates (upper bounds at c standard deviations) */
	double p_freq_upper;	/* p_u of the most common value */
	double h_freq;		/* -log2(p_freq_upper) */
	double p_markov_upper;	/* max over previous bit a of the bound on max_b P(b|a) */
	double h_markov;	/* -log2(p_markov_upper) */
	double h_min;		/* min(h_freq, h_markov), bits of min-entropy per bit */
	double deficit_per_bit;	/* 1 - h_min, computed as log2(2 max p_u) */
	/* pass/fail statistics, asymptotically N(0,1) for i.i.d. fair bits */
	double z_freq;		/* (2 ones - n) / sqrt(n) */
	double z_serial;	/* sqrt(n-1) * phi of the transition table (0 if a margin is 0) */
	bool biased;		/* |z_freq| > c */
	bool correlated;	/* |z_serial| > c */
	double false_alarm_prob;/* per test: P(|Z| > c) = erfc(c / sqrt 2) */
};

/* Largest n accepted by assess: counts stay exact as doubles. */
#define QKD_RANDOMNESS_COUNT_MAX (UINT64_C(1) << 53)

void qkd_randomness_stats_init(struct qkd_randomness_stats *st);
/* Wipe (the struct holds one raw choice bit). Accepts NULL. */
void qkd_randomness_stats_cleanup(struct qkd_randomness_stats *st);

/* Add the bits of *bits (in order, after those already seen) to *st, word at
 * a time. bits is only read; it may be empty. Returns 0, or QKD_ERR_RANGE
 * (and *st unchanged) if n would exceed QKD_RANDOMNESS_COUNT_MAX. */
int qkd_randomness_stats_add(struct qkd_randomness_stats *st,
			     const struct qkd_bits *bits);

/* Run both tests at confidence c (standard deviations, finite, >= 0) on the
 * counts in *st. st and out must not alias. On success returns 0, fills *out
 * and sets *why to NULL. On invalid input (n < 2, n > COUNT_MAX, counts that
 * no bit string could produce, bad c) returns QKD_ERR_INVAL, zeroes *out and
 * sets *why to a static reason. why may be NULL. */
__attribute__((warn_unused_result))
int qkd_randomness_assess(const struct qkd_randomness_stats *st, double confidence,
			  struct qkd_randomness_result *out, const char **why);

/* r = ceil(b * (1 - h_min)) bits, 0 <= r <= b, for a key built from
 * key_source_bits = b raw bits drawn from the assessed source (DESIGN 5.4). */
uint64_t qkd_randomness_deficit(const struct qkd_randomness_result *r,
				uint64_t key_source_bits);

#endif
