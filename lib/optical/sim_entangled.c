/* sim_entangled.c - SPDC pair source, BBM92 (DESIGN.md section 3).
 *
 * The source sits at Alice: Poisson(mu) pairs per slot; one photon of each
 * pair goes to Alice's detectors (no fiber, efficiency eta_A = eta_d), the
 * other through the fiber to Bob (eta_B = T eta_d). A pair measured in equal
 * bases gives outcomes a, b with a uniform and b = a except with probability
 * e_opt; in different bases a and b are independent and uniform. Poisson
 * thinning splits the pairs into independent classes by fate:
 *   both detect (a, b)        c(1-e)/2 if a = b, c e/2 otherwise (c/4 if the
 *                             bases differ),  c = mu eta_A eta_B
 *   Alice only, outcome a     mu eta_A (1-eta_B)/2, split into "Bob's photon
 *                             arrived undetected" and "lost in the fiber"
 *   Bob only, outcome b       mu (1-eta_A) eta_B / 2
 *   neither                   truth only (arrived at Bob / lost)
 * plus a dark count on each of Alice's detectors with probability p_d and a
 * noise click on each of Bob's with p_n = qkd_link_noise_per_gate (p_d on
 * fiber; dark counts and background light on a free-space channel, which
 * only Bob's telescope looks into). T is the channel's (channel_model.c).
 */
#include "optical_int.h"

#include <math.h>

#define R_PAIR (OPT_R_SENT | OPT_R_A_ARR)

static void spdc_mode(const struct qkd_link_params *p, struct opt_mode *m, bool match)
{
	static const unsigned a_mask[2] = { OPT_A0, OPT_A1 }, b_mask[2] = { OPT_B0, OPT_B1 };
	double tr = qkd_link_transmittance(p), ed = p->detector_efficiency;
	double lost = qkd_link_loss(p), pn[4];
	double eb = tr * ed, c = p->mu * ed * eb, e = p->misalignment;

	opt_mode_clear(m);
	for (unsigned a = 0; a < 2; a++) {
		opt_add_poisson(m, p->mu * ed * tr * (1.0 - ed) / 2.0, a_mask[a],
				R_PAIR | OPT_R_A_DET | OPT_R_B_ARR);
		opt_add_poisson(m, p->mu * ed * lost / 2.0, a_mask[a],
				R_PAIR | OPT_R_A_DET);
	}
	for (unsigned b = 0; b < 2; b++)
		opt_add_poisson(m, p->mu * (1.0 - ed) * eb / 2.0, b_mask[b],
				R_PAIR | OPT_R_B_ARR | OPT_R_B_DET);
	for (unsigned a = 0; a < 2; a++)
		for (unsigned b = 0; b < 2; b++)
			opt_add_poisson(m, !match ? c / 4.0 :
					a == b ? c * (1.0 - e) / 2.0 : c * e / 2.0,
					a_mask[a] | b_mask[b],
					R_PAIR | OPT_R_A_DET | OPT_R_B_ARR | OPT_R_B_DET);
	pn[0] = pn[1] = p->dark_count;
	pn[2] = pn[3] = qkd_link_noise_per_gate(p);
	for (unsigned d = 0; d < 4; d++)
		opt_add_bernoulli(m, pn[d], 1u << d, 0);
	opt_mode_seal_active(m);
	opt_add_poisson(m, p->mu * (1.0 - ed) * tr * (1.0 - ed), 0, R_PAIR | OPT_R_B_ARR);
	opt_add_poisson(m, p->mu * (1.0 - ed) * lost, 0, R_PAIR);
	opt_mode_seal(m);
}

void opt_spdc_modes(const struct qkd_link_params *p, struct opt_mode mode[2])
{
	spdc_mode(p, &mode[0], false);
	spdc_mode(p, &mode[1], true);
}

/* With alpha = mu eta_A, beta = mu eta_B, c = mu eta_A eta_B, s_A = 1 - p_d,
 * s_B = 1 - p_n (docs/optical-model.md derives both; on fiber s_A = s_B):
 *   P(coinc) = (1 - s_A^2 e^-alpha)(1 - s_B^2 e^-beta)
 *              + s_A^2 s_B^2 e^-(alpha+beta) (e^c - 1)
 *   QBER     = 1/2 - s_A s_B e^{-(alpha+beta)/2 + c e/2} (e^{c(1-2e)/2} - 1) / P(coinc) */
void opt_spdc_expected(const struct qkd_link_params *p, double *p_click, double *qber)
{
	double ed = p->detector_efficiency, e = p->misalignment;
	double al = p->mu * ed, be = p->mu * qkd_link_transmittance(p) * ed;
	double c = al * qkd_link_transmittance(p) * ed;
	/* On fiber lsa == lsb, and 2 lsa + 2 lsb, lsa + lsb are then exactly
	 * the 4 ls, 2 ls of the single-noise form: the same bits. */
	double lsa = log1p(-p->dark_count), lsb = log1p(-qkd_link_noise_per_gate(p));
	double pa = -expm1(2.0 * lsa - al), pb = -expm1(2.0 * lsb - be);
	double pc = pa * pb + exp(2.0 * lsa + 2.0 * lsb - al - be) * expm1(c);

	*p_click = pc;
	*qber = pc > 0 ? 0.5 - exp(lsa + lsb - (al + be) / 2.0 + c * e / 2.0) *
			 expm1(c * (1.0 - 2.0 * e) / 2.0) / pc : 0.0;
}
