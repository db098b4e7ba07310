/* decoy.c - finite-key length of decoy-state BB84, Lim et al., PRA 89,
 * 022307 (2014), Eqs. (1)-(5); DESIGN.md section 5.3 "decoy".
 *
 * l = floor(s_X0 + s_X1 (1 - h(phi_X)) - lambda_EC - 6 log2(21/eps_sec)
 *           - log2(2/eps_cor)),  at least 0.
 * Every bound is kept in struct qkd_decoy_out so the user sees which one ate
 * the key. Index 0, 1, 2 = mu1, mu2, mu3 of the paper.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "qkd/decoy.h"
#include "qkd/error.h"

static const double ln2 = 0.693147180559945309417232121458176568;

/* One basis' statistics, weighted as the paper's n^{+-}_{.,k}. */
struct basis_stats {
	double plus[3];		/* e^k/p_k (n_k + delta) */
	double minus[3];	/* e^k/p_k (n_k - delta) */
};

/* h(x) = -x log2 x - (1-x) log2(1-x); 0 at 0 and 1. */
static double binary_entropy(double x)
{
	if (!(x > 0.0) || !(x < 1.0))
		return 0.0;
	return (-x * log(x) - (1.0 - x) * log1p(-x)) / ln2;
}

/* Hoeffding deviation of Eqs. (2)-(4): delta(n, eps/21) = sqrt(n/2 ln(21/eps)).
 * (Appendix A, Eq. A1, with eps_1 = eps_2 = eps_sec/21 as in Eq. B4.) */
static double hoeffding(double n, double eps_sec)
{
	return sqrt(n / 2.0 * log(21.0 / eps_sec));
}

static void weigh(const double mu[3], const double p[3], const uint64_t n[3],
		  double delta, struct basis_stats *s)
{
	for (int k = 0; k < 3; k++) {
		double w = exp(mu[k]) / p[k];

		s->plus[k] = w * ((double)n[k] + delta);
		s->minus[k] = w * ((double)n[k] - delta);
	}
}

/* Eq. (2): s_0 >= tau0 (mu2 n^-_{mu3} - mu3 n^+_{mu2}) / (mu2 - mu3).
 * s_0 >= 0 holds trivially, so max(0, .) is still a valid lower bound. */
static double vacuum_lower(const double mu[3], double tau0,
			   const struct basis_stats *s)
{
	double v = tau0 * (mu[1] * s->minus[2] - mu[2] * s->plus[1]) /
		   (mu[1] - mu[2]);

	return v > 0.0 ? v : 0.0;
}

/* Eq. (3): s_1 >= mu1 tau1 [n^-_{mu2} - n^+_{mu3}
 *            - (mu2^2 - mu3^2)/mu1^2 (n^+_{mu1} - s_0/tau0)]
 *            / (mu1 (mu2 - mu3) - mu2^2 + mu3^2).
 * The denominator is > 0 because mu1 > mu2 + mu3. The bound grows with
 * s_0, so the clamped s_0 of vacuum_lower() may be used. */
static double single_lower(const double mu[3], double tau0, double tau1,
			   double s0, const struct basis_stats *s)
{
	double m1 = mu[0], m2 = mu[1], m3 = mu[2];
	double d2 = m2 * m2 - m3 * m3;
	double den = m1 * (m2 - m3) - d2;
	double v = m1 * tau1 *
		   (s->minus[1] - s->plus[2] -
		    d2 / (m1 * m1) * (s->plus[0] - s0 / tau0)) / den;

	return v > 0.0 ? v : 0.0;
}

/* Eq. (5): gamma(a, b, c, d) = sqrt((c+d)(1-b)b / (c d ln2)
 *            * log2((c+d) / (c d (1-b) b) * 21^2 / a^2)),
 * a = eps_sec, b = v_Z1/s_Z1, c = s_Z1, d = s_X1 (c, d > 0, 0 < b < 1).
 * The paper writes "log 2" in the first factor; we read it as ln 2 (the
 * form of Fung et al. PRA 81, 012318 (2010), ref. [31]). b(1-b) log(1/b(1-b))
 * -> 0 as b -> 0, so gamma = 0 at b = 0 is the limit, not a special case. */
static double gamma_term(double a, double b, double c, double d)
{
	double bb = b * (1.0 - b);

	if (!(bb > 0.0))
		return 0.0;
	double arg = (c + d) / (c * d * bb) * (21.0 / a) * (21.0 / a);
	double lg = log2(arg);

	if (!(lg > 0.0))
		return 0.0;
	return sqrt((c + d) * bb / (c * d * ln2) * lg);
}

static const char *check_params(const double mu[3], const double p[3],
				double p_x)
{
	for (int k = 0; k < 3; k++) {
		if (!isfinite(mu[k]))
			return "intensity not finite";
		if (!isfinite(p[k]) || !(p[k] > 0.0) || !(p[k] < 1.0))
			return "intensity probability must be in (0,1)";
	}
	if (!(mu[2] >= 0.0))
		return "mu3 must be >= 0";
	if (!(mu[1] > mu[2]))
		return "intensities must satisfy mu2 > mu3";
	if (!(mu[0] > mu[1] + mu[2]))
		return "intensities must satisfy mu1 > mu2 + mu3";
	if (!(fabs(p[0] + p[1] + p[2] - 1.0) <= 1e-9))
		return "intensity probabilities must sum to 1";
	if (!isfinite(p_x) || !(p_x > 0.0) || !(p_x < 1.0))
		return "basis probability p_x must be in (0,1)";
	return NULL;
}

static const char *check_counts(const struct qkd_decoy_counts *in)
{
	uint64_t nx = 0, nz = 0;

	for (int k = 0; k < 3; k++) {
		if (in->n_x[k] > QKD_DECOY_COUNT_MAX ||
		    in->n_z[k] > QKD_DECOY_COUNT_MAX ||
		    in->m_z[k] > QKD_DECOY_COUNT_MAX)
			return "count above 2^53 (not exact as a double)";
		if (in->m_z[k] > in->n_z[k])
			return "more Z errors than Z detections (m_z > n_z)";
		nx += in->n_x[k];
		nz += in->n_z[k];
	}
	if (nx > QKD_DECOY_COUNT_MAX || nz > QKD_DECOY_COUNT_MAX)
		return "total count above 2^53 (not exact as a double)";
	if (nx == 0)
		return "no detections in the key basis X";
	if (nz == 0)
		return "no detections in basis Z: phase errors cannot be estimated";
	return NULL;
}

static const char *check_in(const struct qkd_decoy_counts *in)
{
	const char *r = check_params(in->mu, in->p_mu, in->p_x);

	if (r != NULL)
		return r;
	if (!isfinite(in->lambda_ec) || !(in->lambda_ec >= 0.0))
		return "lambda_ec must be a finite number >= 0";
	if (!(in->eps_sec > 0.0) || !(in->eps_sec < 1.0))
		return "eps_sec must be in (0,1)";
	if (!(in->eps_cor > 0.0) || !(in->eps_cor < 1.0))
		return "eps_cor must be in (0,1)";
	return check_counts(in);
}

void qkd_decoy_counts_defaults(struct qkd_decoy_counts *in)
{
	memset(in, 0, sizeof(*in));
	in->eps_sec = QKD_DECOY_EPS_SEC_DEFAULT;
	in->eps_cor = QKD_DECOY_EPS_COR_DEFAULT;
}

static double sum3(const uint64_t n[3])
{
	return (double)n[0] + (double)n[1] + (double)n[2];
}

/* Eqs. (2)-(5) into out. */
static void bounds(const struct qkd_decoy_counts *in, struct qkd_decoy_out *out)
{
	const double *mu = in->mu, *p = in->p_mu;
	struct basis_stats x, z, mz;

	for (int k = 0; k < 3; k++) {
		out->tau0 += p[k] * exp(-mu[k]);
		out->tau1 += p[k] * exp(-mu[k]) * mu[k];
	}
	out->delta_x = hoeffding(sum3(in->n_x), in->eps_sec);
	out->delta_z = hoeffding(sum3(in->n_z), in->eps_sec);
	out->delta_mz = hoeffding(sum3(in->m_z), in->eps_sec);
	weigh(mu, p, in->n_x, out->delta_x, &x);
	weigh(mu, p, in->n_z, out->delta_z, &z);
	weigh(mu, p, in->m_z, out->delta_mz, &mz);

	out->s_x0 = vacuum_lower(mu, out->tau0, &x);
	out->s_x1 = single_lower(mu, out->tau0, out->tau1, out->s_x0, &x);
	out->s_z0 = vacuum_lower(mu, out->tau0, &z);
	out->s_z1 = single_lower(mu, out->tau0, out->tau1, out->s_z0, &z);
	/* Eq. (4): v_Z1 <= tau1 (m^+_{mu2} - m^-_{mu3}) / (mu2 - mu3). */
	out->v_z1 = out->tau1 * (mz.plus[1] - mz.minus[2]) / (mu[1] - mu[2]);
	if (!(out->v_z1 > 0.0))
		out->v_z1 = 0.0;

	/* Eq. (5). Without single-photon events in either basis there is
	 * nothing to estimate: phi = 1/2 (h = 1) is the worst case. */
	if (out->s_z1 > 0.0 && out->s_x1 > 0.0) {
		double b = out->v_z1 / out->s_z1;

		if (b < 0.5) {
			out->gamma = gamma_term(in->eps_sec, b, out->s_z1,
						out->s_x1);
			out->phi_x = b + out->gamma;
		} else {
			out->phi_x = 0.5;
		}
	} else {
		out->phi_x = 0.5;
	}
	/* h is increasing on [0, 1/2]: the worst phase error rate not above
	 * the bound is min(bound, 1/2). */
	if (!(out->phi_x < 0.5))
		out->phi_x = 0.5;
}

int qkd_decoy_key_length(const struct qkd_decoy_counts *in,
			 struct qkd_decoy_out *out, const char **why)
{
	const char *reason = "null argument";
	int rc = QKD_ERR_INVAL;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (in == NULL || out == NULL)
		goto out;
	if ((reason = check_in(in)) != NULL)
		goto out;

	bounds(in, out);
	out->lambda_ec = in->lambda_ec;
	out->eps_sec_term = 6.0 * log2(21.0 / in->eps_sec);
	out->eps_cor_term = log2(2.0 / in->eps_cor);
	/* Eq. (1). */
	out->key_real = out->s_x0 + out->s_x1 * (1.0 - binary_entropy(out->phi_x)) -
			out->lambda_ec - out->eps_sec_term - out->eps_cor_term;
	/* key_real <= s_X0 + s_X1, each bounded by a few times 2^53 / p_k
	 * e^k; beyond 2^64 the length would not be meaningful anyway. */
	if (out->key_real >= 1.0)
		out->key_length = out->key_real < 0x1p64 ?
				  (uint64_t)floor(out->key_real) : UINT64_MAX;
	reason = NULL;
	rc = QKD_OK;
out:
	if (why != NULL)
		*why = reason;
	return rc;
}

static const char *check_link(double eta, double p_dark, double e_opt,
			      double f_ec)
{
	if (!isfinite(eta) || !(eta > 0.0) || !(eta <= 1.0))
		return "eta must be in (0,1]";
	if (!isfinite(p_dark) || !(p_dark >= 0.0) || !(p_dark < 1.0))
		return "p_dark must be in [0,1)";
	if (!isfinite(e_opt) || !(e_opt >= 0.0) || !(e_opt <= 0.5))
		return "e_opt must be in [0,1/2]";
	if (!isfinite(f_ec) || !(f_ec >= 1.0))
		return "f_ec must be a finite number >= 1";
	return NULL;
}

/* DESIGN 3, bases matched, t = mu eta: R = 1-(1-p_d)e^{-t(1-e_opt)},
 * W = 1-(1-p_d)e^{-t e_opt}, P = 1-(1-R)(1-W), error = W(1-R) + RW/2.
 * Written with expm1/log1p so that small t and p_d keep their digits. */
static void link_click(double mu, double eta, double p_dark, double e_opt,
		       double *p_click, double *p_err)
{
	double l1d = log1p(-p_dark), t = mu * eta;
	double r = -expm1(l1d - t * (1.0 - e_opt));
	double w = -expm1(l1d - t * e_opt);

	*p_click = -expm1(2.0 * l1d - t);
	*p_err = w * (1.0 - r) + r * w / 2.0;
}

double qkd_decoy_asymptotic_rate(double mu, double eta, double p_dark,
				 double e_opt, double f_ec)
{
	if (check_link(eta, p_dark, e_opt, f_ec) != NULL || !isfinite(mu) ||
	    !(mu > 0.0))
		return NAN;

	double d = p_dark, q, qe;
	/* A single photon goes to the right detector (eta(1-e_opt)), the
	 * wrong one (eta e_opt) or is lost; each detector adds dark counts. */
	double to_r = eta * (1.0 - e_opt), to_w = eta * e_opt, none = 1.0 - eta;
	double y0 = -expm1(2.0 * log1p(-d));
	double y1 = 1.0 - none * (1.0 - d) * (1.0 - d);
	double err1 = to_w * (1.0 - d) + none * d * (1.0 - d) +
		      (to_r * d + to_w * d + none * d * d) / 2.0;
	double e1 = err1 / y1;

	link_click(mu, eta, p_dark, e_opt, &q, &qe);
	double rate = exp(-mu) * y0 +
		      mu * exp(-mu) * y1 * (1.0 - binary_entropy(e1 < 0.5 ? e1 : 0.5)) -
		      f_ec * q * binary_entropy(qe / q);

	return rate > 0.0 ? rate : 0.0;
}

int qkd_decoy_expected_counts(const double mu[3], const double p_mu[3],
			      double p_x, double eta, double p_dark,
			      double e_opt, uint64_t pulses, double f_ec,
			      struct qkd_decoy_counts *out)
{
	int rc = QKD_ERR_INVAL;

	if (out == NULL)
		return rc;
	qkd_decoy_counts_defaults(out);
	if (mu == NULL || p_mu == NULL ||
	    check_params(mu, p_mu, p_x) != NULL ||
	    check_link(eta, p_dark, e_opt, f_ec) != NULL ||
	    pulses > QKD_DECOY_COUNT_MAX)
		goto out;

	double nx_tot = 0.0, mx_tot = 0.0, n = (double)pulses;
	double wx = n * p_x * p_x, wz = n * (1.0 - p_x) * (1.0 - p_x);

	for (int k = 0; k < 3; k++) {
		double pc, pe;

		link_click(mu[k], eta, p_dark, e_opt, &pc, &pe);
		out->mu[k] = mu[k];
		out->p_mu[k] = p_mu[k];
		out->n_x[k] = (uint64_t)llround(wx * p_mu[k] * pc);
		out->n_z[k] = (uint64_t)llround(wz * p_mu[k] * pc);
		out->m_z[k] = (uint64_t)llround(wz * p_mu[k] * pe);
		nx_tot += wx * p_mu[k] * pc;
		mx_tot += wx * p_mu[k] * pe;
	}
	out->p_x = p_x;
	out->lambda_ec = nx_tot > 0.0 ?
			 f_ec * nx_tot * binary_entropy(mx_tot / nx_tot) : 0.0;
	rc = QKD_OK;
out:
	if (rc != QKD_OK)
		qkd_decoy_counts_defaults(out);
	return rc;
}
