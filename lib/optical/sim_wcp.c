/* sim_wcp.c - weak-coherent BB84 source (DESIGN.md section 3).
 *
 * Alice's pulse holds Poisson(mu) photons. By Poisson thinning, the photons of
 * each fate are independent Poisson counts:
 *   detected by Bob's detector of Alice's value   t(1-e_opt)  (bases match)
 *   detected by his other detector                t e_opt     (bases match)
 *   either detector when the bases differ         t/2 each
 *   reached Bob, not detected                     mu T (1-eta_d)
 *   lost in the fiber                             mu (1-T)
 * with T the channel's transmittance (channel_model.c: 10^(-alpha L/10) for
 * fiber), t = mu T eta_d; plus a noise click (dark count, and background
 * light on a free-space channel) on each of Bob's detectors with
 * probability p_n = qkd_link_noise_per_gate. The first four are "active"; the last
 * two only feed the photon-number truth.
 */
#include "optical_int.h"

#include <math.h>

static void wcp_mode(const struct qkd_link_params *p, struct opt_mode *m, bool match)
{
	double tr = qkd_link_transmittance(p);
	double t = p->mu * tr * p->detector_efficiency;
	double right = match ? t * (1.0 - p->misalignment) : t / 2.0;
	double wrong = match ? t * p->misalignment : t / 2.0;
	double pn = qkd_link_noise_per_gate(p);
	unsigned det = OPT_R_SENT | OPT_R_B_ARR | OPT_R_B_DET;

	opt_mode_clear(m);
	opt_add_poisson(m, right, OPT_B0, det);
	opt_add_poisson(m, wrong, OPT_B1, det);
	opt_add_bernoulli(m, pn, OPT_B0, 0);
	opt_add_bernoulli(m, pn, OPT_B1, 0);
	opt_mode_seal_active(m);
	opt_add_poisson(m, p->mu * tr * (1.0 - p->detector_efficiency), 0,
			OPT_R_SENT | OPT_R_B_ARR);
	opt_add_poisson(m, p->mu * qkd_link_loss(p), 0, OPT_R_SENT);
	opt_mode_seal(m);
}

void opt_wcp_modes(const struct qkd_link_params *p, struct opt_mode mode[2])
{
	wcp_mode(p, &mode[0], false);
	wcp_mode(p, &mode[1], true);
}

/* DESIGN.md s3 (p_d: Bob's noise per gate, qkd_link_noise_per_gate):
 * R = 1-(1-p_d)e^{-t(1-e)}, W = 1-(1-p_d)e^{-t e},
 * P(click) = 1-(1-R)(1-W) = 1-(1-p_d)^2 e^{-t}, QBER = (W(1-R) + RW/2)/P. */
void opt_wcp_expected(const struct qkd_link_params *p, double *p_click, double *qber)
{
	double t = p->mu * qkd_link_transmittance(p) * p->detector_efficiency;
	double ls = log1p(-qkd_link_noise_per_gate(p));
	double r = -expm1(ls - t * (1.0 - p->misalignment));
	double w = -expm1(ls - t * p->misalignment);
	double pc = -expm1(2.0 * ls - t);

	*p_click = pc;
	*qber = pc > 0 ? (w * (1.0 - r) + r * w / 2.0) / pc : 0.0;
}
