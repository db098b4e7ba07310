/* qkd/entropy.h - entropy estimation: how many secret bits a corrected,
 * verified block still holds after everything Eve may know is subtracted.
 *
 * Implements DESIGN.md section 5 exactly (BBN's model, Elliott/Pearson/Troxel,
 * SIGCOMM 2003): each leak is computed and reported separately, the standard
 * deviations are combined at the end and multiplied by the confidence c, so
 * that systems can be compared under like assumptions. docs/entropy.md gives
 * every formula and a worked example.
 *
 * Pure computation: no allocation, no I/O, no global state; thread-safe.
 * All counts must be at most 2^53 so that they are exact as doubles.
 */
#ifndef QKD_ENTROPY_H
#define QKD_ENTROPY_H

#include <stdbool.h>
#include <stdint.h>

/* Non-transparent eavesdropping bound (DESIGN 5.3). To add a defense (e.g.
 * "decoy"), append an enumerator here and one row to the name/ops table in
 * lib/proto/entropy.c; qkd_defense_name() then returns NULL one past the last
 * defense, so callers can list the names without knowing how many there are. */
enum qkd_defense {
	QKD_DEFENSE_BENNETT,	/* Bennett et al. 1992 */
	QKD_DEFENSE_SLUTSKY,	/* Slutsky et al. 1998, Renyi information */
	/* Lim et al. 2014 finite-key decoy bound (qkd/decoy.h). It needs
	 * per-intensity counts, which only the engine has: the per-block
	 * qkd_entropy_estimate refuses it (QKD_ERR_INVAL). */
	QKD_DEFENSE_DECOY,
};

/* How multi-photon (transparent) leakage scales (DESIGN 5.2). Kept separate
 * from the optical layer's enum qkd_source_kind: the entropy model depends
 * only on the leak law, not on how the source is simulated. */
enum qkd_leak_model {
	QKD_LEAK_WEAK_COHERENT,	/* scales with pulses transmitted: q = min(1, p_m N_tx / M) */
	QKD_LEAK_ENTANGLED,	/* scales with bits received:      q = p_m */
};

/* The terms of s = b - d - t_T - t_N - r - c*sigma - pa_margin. The names
 * returned by qkd_entropy_term_name() equal the JSON field names. */
enum qkd_entropy_term {
	QKD_TERM_NONE,		/* nothing consumed any bit (all terms 0) */
	QKD_TERM_DISCLOSED,	/* "disclosed" */
	QKD_TERM_TRANSPARENT,	/* "transparent" */
	QKD_TERM_NONTRANSPARENT,/* "nontransparent" */
	QKD_TERM_NONRANDOMNESS,	/* "nonrandomness" */
	QKD_TERM_SIGMA,		/* "sigma_term" */
	QKD_TERM_PA_MARGIN,	/* "pa_margin" */
};

#define QKD_ENTROPY_CONFIDENCE_DEFAULT 5.0
/* Largest count accepted: every integer up to 2^53 is exact in a double. */
#define QKD_ENTROPY_COUNT_MAX (UINT64_C(1) << 53)

struct qkd_entropy_in {
	uint64_t bits;		/* b: corrected (and verified) bits in the block, > 0 */
	uint64_t errors;	/* e: errors corrected, e <= b */
	uint64_t disclosed;	/* d: parity bits disclosed + verification hash bits */
	uint64_t transmitted;	/* N_tx: pulses sent in the frames that made the block */
	uint64_t detected;	/* M: detections in those frames (b <= M <= N_tx) */
	double mu;		/* mean photon (pair) number per pulse, finite, > 0 */
	enum qkd_leak_model source;
	enum qkd_defense defense;
	double confidence;	/* c: number of standard deviations, finite, >= 0 */
	double nonrandom;	/* r: min-entropy deficit of the raw choices, bits, >= 0 */
	double pa_margin;	/* privacy-amplification security margin, bits, >= 0 */
};

/* Every term in bits (DESIGN 5, numbered as there). */
struct qkd_entropy_out {
	double disclosed;		/* 1. d, exact */
	double transparent;		/* 2. t_T = b q */
	double transparent_sd;		/*    sqrt(var_T), var_T = b q (1-q) */
	double nontransparent;		/* 3. t_N (defense function) */
	double nontransparent_sd;	/*    sd_N = sqrt(var_N) */
	double nonrandomness;		/* 4. r */
	double pa_margin;		/*    pa_margin */
	double sigma_term;		/* c * sqrt(var_T + var_N) */
	double secret_real;		/* b - all of the above, before floor and clamp (may be < 0) */
	uint64_t secret_bits;		/* s = max(0, floor(secret_real)) */
	enum qkd_entropy_term limiting_term; /* largest consumer; first in the order above on ties */
	double multiphoton_prob;	/* p_m = 1 - exp(-mu)(1 + mu) */
	double transparent_fraction;	/* q */
	bool transparent_saturated;	/* q was clamped to 1 (p_m N_tx / M >= 1) */
	double error_rate;		/* eps = e / b */
};

/* Name <-> enum. from_name: 0, or QKD_ERR_INVAL (and *out untouched) for an
 * unknown name; matching is exact. name: a static string, or NULL for a value
 * that is not a known enumerator (lets callers iterate 0, 1, ... until NULL). */
__attribute__((warn_unused_result))
int qkd_defense_from_name(const char *name, enum qkd_defense *out);
const char *qkd_defense_name(enum qkd_defense defense);
/* "weak-coherent" / "entangled" */
__attribute__((warn_unused_result))
int qkd_leak_model_from_name(const char *name, enum qkd_leak_model *out);
const char *qkd_leak_model_name(enum qkd_leak_model source);
/* "none", "disclosed", "transparent", "nontransparent", "nonrandomness",
 * "sigma_term", "pa_margin"; NULL for an unknown value. */
const char *qkd_entropy_term_name(enum qkd_entropy_term term);

/* Fill *in with the documented defaults: weak-coherent, slutsky, c = 5,
 * r = 0, pa_margin = 0, all counts 0 and mu 0 (which the caller must set). */
void qkd_entropy_in_defaults(struct qkd_entropy_in *in);

/* p_m = 1 - exp(-mu)(1 + mu), accurate to a few ulps also for tiny mu (where
 * the naive form cancels to 0). mu must be finite and >= 0; returns NaN else. */
double qkd_entropy_multiphoton_prob(double mu);

/* Compute the estimate of DESIGN section 5 for one block.
 * in and out must not alias. On success returns 0, fills *out and sets *why
 * to NULL. On invalid input (out of domain or mutually inconsistent values)
 * returns QKD_ERR_INVAL, zeroes *out and sets *why to a static reason string.
 * why may be NULL. */
__attribute__((warn_unused_result))
int qkd_entropy_estimate(const struct qkd_entropy_in *in,
			 struct qkd_entropy_out *out, const char **why);

#endif
