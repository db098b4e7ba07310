/* qkd/decoy.h - composable finite-key length for decoy-state BB84.
 *
 * Implements Lim, Curty, Walenta, Xu, Zbinden, "Concise security bounds for
 * practical decoy-state quantum key distribution", Phys. Rev. A 89, 022307
 * (2014), arXiv:1311.7129, Eqs. (1)-(5): weak-coherent BB84 with a biased
 * basis choice (key from X, phase errors estimated from Z) and three
 * intensities mu1 > mu2 + mu3, mu2 > mu3 >= 0, all used for the key.
 * DESIGN.md section 5.3, defense "decoy". docs/decoy.md gives every formula
 * with its equation number and a worked example.
 *
 * Pure computation: no allocation, no I/O, no global state; thread-safe.
 * All counts must be at most 2^53 so that they are exact as doubles.
 */
#ifndef QKD_DECOY_H
#define QKD_DECOY_H

#include <stdint.h>

#define QKD_DECOY_EPS_SEC_DEFAULT 1e-10
#define QKD_DECOY_EPS_COR_DEFAULT 1e-15
/* Largest count (or sum of counts over the three intensities) accepted. */
#define QKD_DECOY_COUNT_MAX (UINT64_C(1) << 53)

/* Index k = 0, 1, 2 is intensity mu1 (signal), mu2, mu3 (decoys) of the
 * paper. Counts are of sifted events: both parties chose the basis, Bob
 * detected (a double click counts, with a random bit). */
struct qkd_decoy_counts {
	double mu[3];		/* mu1 > mu2 + mu3, mu2 > mu3 >= 0, finite */
	double p_mu[3];		/* p_mu1, p_mu2, p_mu3 in (0,1), sum 1 (+-1e-9) */
	double p_x;		/* q_x: P(basis X) for Alice and for Bob, in (0,1) */
	uint64_t n_x[3];	/* n_{X,k}: detections with both in X (the key) */
	uint64_t n_z[3];	/* n_{Z,k}: detections with both in Z */
	uint64_t m_z[3];	/* m_{Z,k}: bit errors among n_{Z,k}, m <= n */
	double lambda_ec;	/* lambda_EC: bits disclosed by error correction, >= 0 */
	double eps_sec;		/* secrecy, in (0,1), default 1e-10 */
	double eps_cor;		/* correctness = verification hash collision, in (0,1), default 1e-15 */
};

/* Every bound of the paper, in bits (events), with its equation number. */
struct qkd_decoy_out {
	double tau0, tau1;	/* tau_n = sum_k p_k e^-k k^n / n! */
	double delta_x;		/* sqrt(n_X/2 ln(21/eps_sec)) (Hoeffding, Eq. 2) */
	double delta_z;		/* the same for n_Z */
	double delta_mz;	/* the same for m_Z (Eq. 4) */
	double s_x0;		/* Eq. (2), lower bound, clamped at 0 */
	double s_x1;		/* Eq. (3), lower bound, clamped at 0 */
	double s_z0;		/* Eq. (2) with Z statistics, clamped at 0 */
	double s_z1;		/* Eq. (3) with Z statistics, clamped at 0 */
	double v_z1;		/* Eq. (4), upper bound on single-photon errors in Z, >= 0 */
	double gamma;		/* Eq. (5) statistical term (0 when s_z1 or s_x1 is 0) */
	double phi_x;		/* Eq. (5) phase error rate upper bound, capped at 1/2 */
	double lambda_ec;	/* copied from the input */
	double eps_sec_term;	/* 6 log2(21/eps_sec) */
	double eps_cor_term;	/* log2(2/eps_cor) */
	double key_real;	/* Eq. (1) before floor and clamp (may be < 0) */
	uint64_t key_length;	/* l = max(0, floor(key_real)), bits */
};

/* Fill *in with eps_sec = 1e-10, eps_cor = 1e-15 and every other field 0
 * (intensities, probabilities and counts are for the caller to set). */
void qkd_decoy_counts_defaults(struct qkd_decoy_counts *in);

/* Secret key length of Lim et al. 2014, Eq. (1), from the bounds of Eqs.
 * (2)-(5). in and out must not alias. On success returns 0, fills *out and
 * sets *why to NULL; a key length of 0 (bounds too weak, e.g. under a
 * photon-number-splitting attack) is a success. On invalid input (out of
 * domain or inconsistent: m_z > n_z, no X or no Z detections) returns
 * QKD_ERR_INVAL, zeroes *out and sets *why to a static reason string. why
 * may be NULL. */
__attribute__((warn_unused_result))
int qkd_decoy_key_length(const struct qkd_decoy_counts *in,
			 struct qkd_decoy_out *out, const char **why);

/* Asymptotic key rate per pulse with sifted (matching) bases, for one
 * intensity mu with infinitely many decoys (GLLP, with the vacuum term of
 * Lim Eq. (1)):  R = Q_0 + Q_1 (1 - h(e_1)) - f_ec Q_mu h(E_mu),
 * Q_0 = e^-mu Y_0, Q_1 = mu e^-mu Y_1, with the DESIGN.md section 3 channel
 * (eta includes the detector, p_dark per detector, misalignment e_opt).
 * Multiply by the probability that the bases match and are the key basis
 * (p_x^2 for the biased protocol) to compare with l/N. Returns at least 0;
 * NaN for out-of-domain arguments (mu > 0, eta in (0,1], p_dark in [0,1),
 * e_opt in [0,1/2], f_ec >= 1, all finite). */
double qkd_decoy_asymptotic_rate(double mu, double eta, double p_dark,
				 double e_opt, double f_ec);

/* Expected counts of the DESIGN.md section 3 channel for `pulses` pulses
 * (each count rounded to the nearest integer): n_{X,k} = N p_x^2 p_k P_k,
 * n_{Z,k} = N (1-p_x)^2 p_k P_k, m_{Z,k} = N (1-p_x)^2 p_k E_k P_k, where
 * P_k is the click probability and E_k the QBER at intensity mu_k, and
 * lambda_ec = f_ec n_X h(E_X) with E_X the expected error rate of the X
 * key. eps_sec and eps_cor are set to the defaults. mu, p_mu must satisfy
 * the rules of struct qkd_decoy_counts; the link arguments as for
 * qkd_decoy_asymptotic_rate; pulses <= 2^53. out must not alias mu or p_mu.
 * Returns 0, or QKD_ERR_INVAL (and *out reset as by
 * qkd_decoy_counts_defaults()) on invalid arguments. */
__attribute__((warn_unused_result))
int qkd_decoy_expected_counts(const double mu[3], const double p_mu[3],
			      double p_x, double eta, double p_dark,
			      double e_opt, uint64_t pulses, double f_ec,
			      struct qkd_decoy_counts *out);

#endif
