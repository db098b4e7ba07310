/* sim_config.c - the engine settings a simulated link implies, and the
 * channel options (qkd sim, qkd sweep). */
#include <stdio.h>

#include "cli.h"
#include "sim_report.h"

#include "qkd/error.h"

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

int sim_channel_option(int which, const char *arg, struct qkd_link_params *l)
{
	switch (which) {
	case 0:
		if (qkd_channel_parse(arg, &l->channel) != QKD_OK) {
			cli_errorf("--channel", "unknown channel '%s' (fiber or free-space)", arg);
			return -1;
		}
		return 0;
	case 1: return cli_opt_real("--tx-aperture", arg, 0, true, 10, &l->tx_aperture_m);
	case 2: return cli_opt_real("--rx-aperture", arg, 0, true, 10, &l->rx_aperture_m);
	case 3: return cli_opt_real("--beam-divergence", arg, 0, false, 0.1, &l->beam_divergence);
	case 4: return cli_opt_real("--atmos-loss", arg, 0, false, 100, &l->atmos_loss_db_per_km);
	case 5: return cli_opt_real("--background-day", arg, 0, false, 1, &l->background_day);
	case 6: return cli_opt_real("--background-night", arg, 0, false, 1, &l->background_night);
	case 7: l->daylight = true; return 0;
	case 8: l->daylight = false; return 0;
	default: return -1;
	}
}

void sim_channel_help(const struct qkd_link_params *d)
{
	printf("  --channel KIND             fiber (default) or free-space (docs/optical-model.md 1a);\n"
	       "                             free space uses --distance and the options below\n"
	       "  --tx-aperture M            transmitter aperture D_t in m (default %g)\n"
	       "  --rx-aperture M            receiver aperture D_r in m (default %g)\n"
	       "  --beam-divergence RAD      full-angle beam divergence (default %g)\n"
	       "  --atmos-loss DB_PER_KM     atmospheric attenuation (default %g)\n"
	       "  --background-day P         background counts per gate per detector, day (default %g)\n"
	       "  --background-night P       the same at night (default %g)\n"
	       "  --daylight, --night        which background applies (default night)\n",
	       d->tx_aperture_m, d->rx_aperture_m, d->beam_divergence, d->atmos_loss_db_per_km,
	       d->background_day, d->background_night);
}
