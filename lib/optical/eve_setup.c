/* eve_setup.c - the constants of Eve's attacks, fixed for a run
 * (docs/optical-model.md "Eve" derives each equation).
 *
 * Eve tunes what she sends so that Bob's photon-click probability per pulse
 * equals the honest channel's, tau(mu) = 1 - e^{-mu T eta_d}: a click rate
 * that drops would give her away before any QBER is measured. Dark counts
 * add the same on both sides, so matching the photon part matches the total.
 */
#include "optical_int.h"

#include <math.h>

/* Beyond this mean number of photons detected by Bob, more photons change
 * P(Bob detects none) = e^{-x} by less than a double resolves (2^-53). */
#define X_USEFUL (53.0 * M_LN2)

static uint64_t thr32(double prob)
{
	return (uint64_t)llround(ldexp(prob, 32));
}

/* Weak-coherent intercept-resend: Eve resends only when she caught a photon
 * (probability 1 - e^{-mu}), a coherent pulse of mean mu_E over the same
 * fiber, so (1 - e^{-mu}) (1 - e^{-x}) = tau(mu) with x = mu_E T eta_d:
 *   x = -ln(1 - tau(mu) / (1 - e^{-mu})).
 * The ratio is < 1 exactly when T eta_d < 1; at T eta_d = 1 (no loss at
 * all) no finite mu_E suffices and x is capped at X_USEFUL. Returns the
 * mean number of her photons reaching Bob's detectors, mu_E T = x / eta_d. */
static double resend_mean(double mu, double tr, double eta)
{
	double rho, x;

	if (!(mu > 0))
		return 0.0;
	if (!(eta > 0))
		return mu * tr;	/* Bob detects nothing either way */
	rho = -expm1(-mu * tr * eta) / -expm1(-mu);
	x = rho < 1.0 ? -log1p(-rho) : X_USEFUL;
	return (x < X_USEFUL ? x : X_USEFUL) / eta;
}

/* Entangled intercept-resend: one photon in her state over a line of
 * transmittance T_E, so (1 - e^{-mu}) T_E eta_d = tau(mu) when possible:
 *   T_E = min(1, tau(mu) / (eta_d (1 - e^{-mu}))).
 * The cap binds near T = 1, where a single photon cannot match the
 * multi-pair slots. */
static double resend_line(double mu, double tr, double eta)
{
	double t;

	if (!(eta > 0))
		return tr;
	t = -expm1(-mu * tr * eta) / (eta * -expm1(-mu));
	return t < 1.0 ? t : 1.0;
}

/* M = sum_{n>=2} P(n) (1 - (1-eta)^{n-1}): Bob's click probability from
 * multi-photon pulses when PNS forwards all of them, each minus the photon
 * Eve keeps, over a lossless line. */
static double pns_multi(double mu, double eta)
{
	double pn = mu * exp(-mu), m = 0.0, lq = eta < 1.0 ? log1p(-eta) : -INFINITY;

	for (unsigned n = 2; n < OPT_POISSON_KMAX; n++) {
		double term;

		pn *= mu / n;
		term = pn * -expm1((double)(n - 1) * lq);
		m += term;
		if (n > mu && term <= m * 1e-17)
			break;
	}
	return m;
}

/* PNS forwarding probabilities s1 (n = 1) and s2 (n >= 2), for the signal
 * intensity: s2 = 1 and s1 = min(1, (tau - M) / (mu e^{-mu} eta_d)) when
 * the multi-photon pulses alone fall short of tau; else s1 = 0 and
 * s2 = tau / M. */
static void pns_split(double mu, double tr, double eta, double *s1, double *s2)
{
	double tau = -expm1(-mu * tr * eta), m = pns_multi(mu, eta);
	double single = mu * exp(-mu) * eta;

	if (m <= tau) {
		*s2 = 1.0;
		*s1 = single > 0 ? (tau - m) / single : 0.0;
		if (*s1 > 1.0)
			*s1 = 1.0;
	} else {
		*s1 = 0.0;
		*s2 = tau / m;
	}
}

void opt_eve_setup(const struct qkd_link_params *p, struct opt_pulse_cfg *pl)
{
	double eta = p->detector_efficiency, f = p->eve_fraction;

	for (unsigned k = 0; k < p->intensities; k++) {
		double mu = qkd_link_intensity(p, k), y;

		if (p->source == QKD_SOURCE_ENTANGLED) {
			pl->res_det[k] = resend_line(mu, pl->tr, eta);
			continue;
		}
		y = resend_mean(mu, pl->tr, eta);
		pl->res_det[k] = y * eta;
		pl->res_und[k] = y * (1.0 - eta);
		pl->res_det_q[k] = exp(-pl->res_det[k]);
		pl->res_und_q[k] = exp(-pl->res_und[k]);
	}
	/* She hides her tap in the fiber's loss: Bob's line gets T / (1-F)
	 * per photon she lets pass, so each photon still reaches him with T,
	 * until the line would need a gain (F > 1 - T). */
	pl->bs_line = f < 1.0 ? pl->tr / (1.0 - f) : 0.0;
	if (pl->bs_line > 1.0)
		pl->bs_line = 1.0;
	pl->bs_cut = f + (1.0 - f) * pl->bs_line * eta;
	pns_split(p->mu, pl->tr, eta, &pl->s1, &pl->s2);
	pl->thr_f = thr32(f);
	pl->thr_s1 = thr32(pl->s1);
	pl->thr_s2 = thr32(pl->s2);
}
