/* sim_config.c - the engine settings a simulated link implies (qkd sim,
 * qkd sweep). */
#include "cli.h"
#include "sim_report.h"

/* Default decoy probabilities: those of the property tests in docs/decoy.md
 * (signal most of the time, the weak decoy next, the vacuum-like one least). */
static const double decoy_probs_default[3] = { 0.8, 0.15, 0.05 };

int sim_options_finish(struct qkd_link_params *l, struct qkd_engine_config *g,
		       bool decoy_probs_set)
{
	if (decoy_probs_set && l->intensities != 3) {
		cli_error("--decoy-probs", "needs --decoy MU2,MU3");
		return -1;
	}
	if (l->intensities == 3 && !decoy_probs_set)
		for (int k = 0; k < 3; k++)
			l->p_intensity[k] = decoy_probs_default[k];
	g->estimate.mu = l->mu;
	if (g->estimate.defense != QKD_DEFENSE_DECOY)
		return 0;
	if (l->intensities != 3) {
		cli_error("--defense", "decoy needs decoy intensities (--decoy MU2,MU3)");
		return -1;
	}
	g->decoy.mu[0] = l->mu;
	g->decoy.mu[1] = l->mu_decoy[0];
	g->decoy.mu[2] = l->mu_decoy[1];
	for (int k = 0; k < 3; k++)
		g->decoy.p_mu[k] = l->p_intensity[k];
	g->decoy.p_x = l->p_x;
	return 0;
}
