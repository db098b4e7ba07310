/* channel_model.c - the medium between Alice and Bob: its transmittance and the
 * noise it adds at Bob's detectors (docs/optical-model.md sections 1, 1a).
 *
 * The one place these are computed: the simulator's modes (sim_wcp.c,
 * sim_entangled.c), its pulse-level Eve path (sim_eve.c), the closed forms
 * and the node's fiber detector (fiber_detector.c) all call in here, so a
 * channel kind changes every path at once. The fiber branch keeps the
 * exact expressions the model used before free space existed: a fiber
 * link's numbers, and so every pinned key hash, do not move.
 */
#include "qkd/optical.h"

#include <math.h>
#include <string.h>

#include "qkd/error.h"

const char *qkd_channel_name(enum qkd_channel_kind k)
{
	switch (k) {
	case QKD_CHANNEL_FIBER: return "fiber";
	case QKD_CHANNEL_FREE_SPACE: return "free-space";
	default: return "unknown";
	}
}

int qkd_channel_parse(const char *name, enum qkd_channel_kind *k)
{
	if (name == NULL)
		return QKD_ERR_INVAL;
	if (strcmp(name, "fiber") == 0)
		*k = QKD_CHANNEL_FIBER;
	else if (strcmp(name, "free-space") == 0 || strcmp(name, "fso") == 0)
		*k = QKD_CHANNEL_FREE_SPACE;
	else
		return QKD_ERR_INVAL;
	return QKD_OK;
}

static bool free_space(const struct qkd_link_params *p)
{
	return p->channel == QKD_CHANNEL_FREE_SPACE;
}

/* D_r over the beam's diameter at the receiver, D_t + L theta (L in m):
 * the fraction of a uniform spot the aperture collects is its square. A
 * receiver wider than the spot collects everything, hence the cap. */
static double aperture_ratio(const struct qkd_link_params *p)
{
	double spot = p->tx_aperture_m + p->distance_km * 1e3 * p->beam_divergence;
	double r = p->rx_aperture_m / spot;

	return r < 1.0 ? r : 1.0;
}

double qkd_link_geometric_transmittance(const struct qkd_link_params *p)
{
	double r;

	if (!free_space(p))
		return 1.0;
	r = aperture_ratio(p);
	return r * r;
}

double qkd_link_atmospheric_transmittance(const struct qkd_link_params *p)
{
	double a = free_space(p) ? p->atmos_loss_db_per_km : p->fiber_loss_db_per_km;

	return pow(10.0, -a * p->distance_km / 10.0);
}

double qkd_link_transmittance(const struct qkd_link_params *p)
{
	if (!free_space(p))
		return pow(10.0, -p->fiber_loss_db_per_km * p->distance_km / 10.0);
	return qkd_link_geometric_transmittance(p) * qkd_link_atmospheric_transmittance(p);
}

/* ln T in both cases, then 1 - T = -expm1(ln T): no cancellation when the
 * channel is nearly lossless (a short fiber, a wide receiver). */
double qkd_link_loss(const struct qkd_link_params *p)
{
	double ln_t;

	if (!free_space(p))
		return -expm1(-p->fiber_loss_db_per_km * p->distance_km / 10.0 * M_LN10);
	ln_t = 2.0 * log(aperture_ratio(p)) -
	       p->atmos_loss_db_per_km * p->distance_km / 10.0 * M_LN10;
	return -expm1(ln_t);
}

double qkd_link_noise_per_gate(const struct qkd_link_params *p)
{
	double bg;

	if (!free_space(p))
		return p->dark_count;
	bg = p->daylight ? p->background_day : p->background_night;
	/* 1 - (1-p_d)(1-p_bg) written so that p_bg = 0 gives p_d exactly. */
	return p->dark_count + bg * (1.0 - p->dark_count);
}
