/* entropy.c - entropy estimation, DESIGN.md section 5 (BBN's model).
 *
 * s = floor(b - d - t_T - t_N - r - c*sqrt(var_T + var_N) - pa_margin), >= 0.
 * Every term is kept in struct qkd_entropy_out so the user sees which one ate
 * the key. The arithmetic is arranged so that the small quantities that
 * matter (p_m at small mu, tau at small error rates) do not cancel.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "qkd/entropy.h"
#include "qkd/error.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const double ln2 = 0.693147180559945309417232121458176568;

/* A defense function (DESIGN 5.3): bits of information Eve may hold from
 * attacks that cause errors, and its standard deviation. b > 0, e <= b. */
typedef void defense_fn(uint64_t b, uint64_t e, double *t, double *sd);

static defense_fn defense_bennett, defense_slutsky;

/* Index = enum qkd_defense. Adding a defense = one enumerator + one row. */
static const struct defense_ops {
	const char *name;
	defense_fn *leak;
} defenses[] = {
	[QKD_DEFENSE_BENNETT] = { "bennett", defense_bennett },
	[QKD_DEFENSE_SLUTSKY] = { "slutsky", defense_slutsky },
	/* Named here so every list of defenses shows it; its bound is
	 * qkd_decoy_key_length over the whole run, not a per-block leak. */
	[QKD_DEFENSE_DECOY] = { "decoy", NULL },
};

static const char *const leak_names[] = {
	[QKD_LEAK_WEAK_COHERENT] = "weak-coherent",
	[QKD_LEAK_ENTANGLED] = "entangled",
};

static const char *const term_names[] = {
	[QKD_TERM_NONE] = "none",
	[QKD_TERM_DISCLOSED] = "disclosed",
	[QKD_TERM_TRANSPARENT] = "transparent",
	[QKD_TERM_NONTRANSPARENT] = "nontransparent",
	[QKD_TERM_NONRANDOMNESS] = "nonrandomness",
	[QKD_TERM_SIGMA] = "sigma_term",
	[QKD_TERM_PA_MARGIN] = "pa_margin",
};

int qkd_defense_from_name(const char *name, enum qkd_defense *out)
{
	if (name == NULL || out == NULL)
		return QKD_ERR_INVAL;
	for (size_t i = 0; i < ARRAY_LEN(defenses); i++) {
		if (strcmp(name, defenses[i].name) == 0) {
			*out = (enum qkd_defense)i;
			return QKD_OK;
		}
	}
	return QKD_ERR_INVAL;
}

const char *qkd_defense_name(enum qkd_defense defense)
{
	if ((unsigned)defense >= ARRAY_LEN(defenses))
		return NULL;
	return defenses[defense].name;
}

int qkd_leak_model_from_name(const char *name, enum qkd_leak_model *out)
{
	if (name == NULL || out == NULL)
		return QKD_ERR_INVAL;
	for (size_t i = 0; i < ARRAY_LEN(leak_names); i++) {
		if (strcmp(name, leak_names[i]) == 0) {
			*out = (enum qkd_leak_model)i;
			return QKD_OK;
		}
	}
	return QKD_ERR_INVAL;
}

const char *qkd_leak_model_name(enum qkd_leak_model source)
{
	if ((unsigned)source >= ARRAY_LEN(leak_names))
		return NULL;
	return leak_names[source];
}

const char *qkd_entropy_term_name(enum qkd_entropy_term term)
{
	if ((unsigned)term >= ARRAY_LEN(term_names))
		return NULL;
	return term_names[term];
}

void qkd_entropy_in_defaults(struct qkd_entropy_in *in)
{
	memset(in, 0, sizeof(*in));
	in->source = QKD_LEAK_WEAK_COHERENT;
	in->defense = QKD_DEFENSE_SLUTSKY;
	in->confidence = QKD_ENTROPY_CONFIDENCE_DEFAULT;
}

/* p_m = 1 - exp(-mu)(1 + mu) = exp(-mu) * sum_{k>=2} mu^k / k!  (DESIGN 5).
 * Below mu = 1 the naive form loses everything to cancellation (mu = 1e-8
 * gives 0 instead of 5e-17), and even -expm1(log1p(mu) - mu) cancels inside
 * log1p(mu) - mu; the series has only positive terms, each smaller than
 * the previous by mu/(k+1), so 30 terms are far below one ulp. From mu = 1 on
 * p_m >= 0.26 and the closed form is accurate. */
double qkd_entropy_multiphoton_prob(double mu)
{
	if (!isfinite(mu) || mu < 0)
		return NAN;
	if (mu >= 1.0)
		return -expm1(log1p(mu) - mu);

	double term = mu * mu / 2.0, sum = 0.0;
	for (int k = 2; k < 32 && term > 0.0; k++) {
		sum += term;
		term *= mu / (double)(k + 1);
	}
	return exp(-mu) * sum;
}

/* bennett (DESIGN 5.3): t_N = (4/sqrt2) e, var_N = (4 + 2 sqrt2) e. */
static void defense_bennett(uint64_t b, uint64_t e, double *t, double *sd)
{
	(void)b;
	*t = 4.0 / sqrt(2.0) * (double)e;
	*sd = sqrt((4.0 + 2.0 * sqrt(2.0)) * (double)e);
}

/* slutsky (DESIGN 5.3): eps = e/b, x = (1-3eps)/(1-eps),
 * tau = log2(2 - x^2) for eps < 1/3 else 1, t_N = b tau,
 * sd_N = b tau'(eps) sqrt(eps(1-eps)/b), tau' = 4x/((1-eps)^2 (2-x^2) ln2),
 * tau' = 0 for eps >= 1/3.
 * The branch is decided on the integers (3e < b), not on a rounded eps. For
 * small eps, 2 - x^2 is close to 1, so tau is computed as log1p(1 - x^2)/ln2
 * with 1 - x^2 = (1-x)(1+x) and 1 - x = 2e/(b-e) exactly from the counts. */
static void defense_slutsky(uint64_t b, uint64_t e, double *t, double *sd)
{
	double db = (double)b;

	if (3 * e >= b) {
		*t = db;
		*sd = 0.0;
		return;
	}
	double eps = (double)e / db;
	double one_m_eps = (double)(b - e) / db;
	double x = (double)(b - 3 * e) / (double)(b - e);
	double u = 2.0 * (double)e / (double)(b - e) * (1.0 + x); /* 1 - x^2 */
	double tau = log1p(u) / ln2;
	double dtau = 4.0 * x / (one_m_eps * one_m_eps * (1.0 + u) * ln2);

	*t = db * tau;
	*sd = db * dtau * sqrt(eps * one_m_eps / db);
}

/* Domain of each field on its own. */
static const char *check_values(const struct qkd_entropy_in *in)
{
	if ((unsigned)in->source >= ARRAY_LEN(leak_names))
		return "unknown source (leak model)";
	if ((unsigned)in->defense >= ARRAY_LEN(defenses))
		return "unknown defense function";
	if (defenses[in->defense].leak == NULL)
		return "the decoy defense needs per-intensity counts (qkd_decoy_key_length), not a block estimate";
	if (!isfinite(in->mu) || !(in->mu > 0.0))
		return "mu must be a finite number > 0";
	if (!isfinite(in->confidence) || !(in->confidence >= 0.0))
		return "confidence must be a finite number >= 0";
	if (!isfinite(in->nonrandom) || !(in->nonrandom >= 0.0))
		return "nonrandomness must be a finite number >= 0";
	if (!isfinite(in->pa_margin) || !(in->pa_margin >= 0.0))
		return "pa_margin must be a finite number >= 0";
	return NULL;
}

/* Counts, and their consistency: e <= b <= M <= N_tx. For the entangled leak
 * N_tx and M are not used; when given (non-zero) they must still agree. */
static const char *check_counts(const struct qkd_entropy_in *in)
{
	if (in->bits > QKD_ENTROPY_COUNT_MAX || in->errors > QKD_ENTROPY_COUNT_MAX ||
	    in->disclosed > QKD_ENTROPY_COUNT_MAX ||
	    in->transmitted > QKD_ENTROPY_COUNT_MAX ||
	    in->detected > QKD_ENTROPY_COUNT_MAX)
		return "count above 2^53 (not exact as a double)";
	if (in->bits == 0)
		return "no corrected bits (b = 0)";
	if (in->errors > in->bits)
		return "more errors than corrected bits (e > b)";
	if (in->source == QKD_LEAK_WEAK_COHERENT) {
		if (in->detected == 0)
			return "weak-coherent leak needs detections M > 0";
		if (in->transmitted == 0)
			return "weak-coherent leak needs pulses transmitted N_tx > 0";
	}
	if (in->detected > 0 && in->bits > in->detected)
		return "more corrected bits than detections (b > M)";
	if (in->transmitted > 0 && in->detected > in->transmitted)
		return "more detections than pulses transmitted (M > N_tx)";
	return NULL;
}

/* DESIGN 5.2: weak-coherent q = min(1, p_m N_tx / M), entangled q = p_m;
 * t_T = b q, var_T = b q (1-q). */
static double leak_transparent(const struct qkd_entropy_in *in,
			       struct qkd_entropy_out *out)
{
	double b = (double)in->bits;
	double q = out->multiphoton_prob;

	if (in->source == QKD_LEAK_WEAK_COHERENT) {
		q = q * (double)in->transmitted / (double)in->detected;
		if (!(q < 1.0)) {
			q = 1.0;
			out->transparent_saturated = true;
		}
	}
	double var = b * q * (1.0 - q);

	out->transparent_fraction = q;
	out->transparent = b * q;
	out->transparent_sd = sqrt(var);
	return var;
}

/* The largest consumer; on a tie the first in DESIGN 5 order. */
static enum qkd_entropy_term limiting_term(const struct qkd_entropy_out *o)
{
	const struct {
		enum qkd_entropy_term term;
		double bits;
	} t[] = {
		{ QKD_TERM_DISCLOSED, o->disclosed },
		{ QKD_TERM_TRANSPARENT, o->transparent },
		{ QKD_TERM_NONTRANSPARENT, o->nontransparent },
		{ QKD_TERM_NONRANDOMNESS, o->nonrandomness },
		{ QKD_TERM_SIGMA, o->sigma_term },
		{ QKD_TERM_PA_MARGIN, o->pa_margin },
	};
	enum qkd_entropy_term best = QKD_TERM_NONE;
	double max = 0.0;

	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		if (t[i].bits > max) {
			max = t[i].bits;
			best = t[i].term;
		}
	}
	return best;
}

int qkd_entropy_estimate(const struct qkd_entropy_in *in,
			 struct qkd_entropy_out *out, const char **why)
{
	const char *reason = "null argument";
	int rc = QKD_ERR_INVAL;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (in == NULL || out == NULL)
		goto out;
	if ((reason = check_values(in)) != NULL ||
	    (reason = check_counts(in)) != NULL)
		goto out;

	double b = (double)in->bits;
	double var_t, var_n;

	out->error_rate = (double)in->errors / b;
	out->multiphoton_prob = qkd_entropy_multiphoton_prob(in->mu);
	var_t = leak_transparent(in, out);
	defenses[in->defense].leak(in->bits, in->errors, &out->nontransparent,
				   &out->nontransparent_sd);
	var_n = out->nontransparent_sd * out->nontransparent_sd;
	out->disclosed = (double)in->disclosed;
	out->nonrandomness = in->nonrandom;
	out->pa_margin = in->pa_margin;
	out->sigma_term = in->confidence * sqrt(var_t + var_n);
	out->secret_real = b - out->disclosed - out->transparent -
			   out->nontransparent - out->nonrandomness -
			   out->sigma_term - out->pa_margin;
	/* secret_real <= b <= 2^53, so the conversion is exact and in range. */
	out->secret_bits = out->secret_real >= 1.0 ?
			   (uint64_t)floor(out->secret_real) : 0;
	out->limiting_term = limiting_term(out);
	reason = NULL;
	rc = QKD_OK;
out:
	if (why != NULL)
		*why = reason;
	return rc;
}
