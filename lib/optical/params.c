/* params.c - link parameters: defaults, validation, closed-form predictions
 * (DESIGN.md section 3, docs/optical-model.md). */
#include "qkd/optical.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "qkd/error.h"
#include "optical_int.h"

#define MU_MAX 100.0		/* photons per pulse; beyond this "weak" is moot */
#define RATE_MAX 1e12		/* 1 THz */
#define DISTANCE_MAX 1e5	/* km */
#define LOSS_MAX 100.0		/* dB/km */
#define APERTURE_MAX 10.0	/* m: beyond the largest telescopes */
#define DIVERGENCE_MAX 0.1	/* rad: a beam, not a lamp */

void qkd_link_params_default(struct qkd_link_params *p)
{
	memset(p, 0, sizeof *p);
	p->source = QKD_SOURCE_WEAK_COHERENT;
	p->pulses = 100000000;
	p->rate_hz = 10e6;
	p->mu = 0.1;
	p->distance_km = 10.0;
	p->fiber_loss_db_per_km = 0.2;
	p->detector_efficiency = 0.1;
	p->dark_count = 1e-5;
	p->misalignment = 0.01;
	p->rng_bias = 0.5;
	p->seed = 1;
	p->intensities = 1;
	p->p_intensity[0] = 1.0;
	p->p_x = 0.5;
	p->eve = QKD_EVE_NONE;
	/* A ground link of a few km (docs/optical-model.md 1a): a small
	 * transmitter lens and a 10 cm receiver telescope, as in the short
	 * free-space links of Buttler et al. 2000 and Hughes et al. 2002;
	 * ~0.1 dB/km is clear air in the near infrared (Kim et al. 2001). */
	p->channel = QKD_CHANNEL_FIBER;
	p->tx_aperture_m = 0.05;
	p->rx_aperture_m = 0.10;
	p->beam_divergence = 20e-6;
	p->atmos_loss_db_per_km = 0.1;
	p->background_day = 1e-4;
	p->background_night = 1e-6;
	p->daylight = false;
}

struct range_rule {
	size_t off;		/* offsetof the double field */
	double lo, hi;
	bool lo_open;		/* lo excluded */
	const char *nan_msg, *lo_msg, *hi_msg;
};

#define RULE(f, l, h, open, name, lom, him) \
	{ offsetof(struct qkd_link_params, f), l, h, open, \
	  name " must be a finite number", name " " lom, name " " him }

static const struct range_rule rules[] = {
	RULE(rate_hz, 0.0, RATE_MAX, true, "rate_hz", "must be > 0",
	     "must be <= 1e12 (1 THz)"),
	RULE(mu, 0.0, MU_MAX, true, "mu", "must be > 0",
	     "must be <= 100 photons per pulse"),
	RULE(distance_km, 0.0, DISTANCE_MAX, false, "distance_km", "must be >= 0",
	     "must be <= 100000 km"),
	RULE(fiber_loss_db_per_km, 0.0, LOSS_MAX, false, "fiber_loss_db_per_km",
	     "must be >= 0", "must be <= 100 dB/km"),
	RULE(detector_efficiency, 0.0, 1.0, false, "detector_efficiency",
	     "must be >= 0 (a probability)", "must be <= 1 (a probability)"),
	RULE(dark_count, 0.0, 1.0, false, "dark_count",
	     "must be >= 0 (a probability per gate)",
	     "must be <= 1 (a probability per gate)"),
	RULE(misalignment, 0.0, 0.5, false, "misalignment",
	     "must be >= 0 (a probability)",
	     "must be <= 0.5 (beyond 0.5 the detectors are just relabelled)"),
	RULE(rng_bias, 0.0, 1.0, false, "rng_bias",
	     "must be >= 0 (a probability)", "must be <= 1 (a probability)"),
};

/* Checked only for a free-space channel: a fiber link ignores them. */
static const struct range_rule fso_rules[] = {
	RULE(tx_aperture_m, 0.0, APERTURE_MAX, true, "tx_aperture_m",
	     "must be > 0 (m)", "must be <= 10 m"),
	RULE(rx_aperture_m, 0.0, APERTURE_MAX, true, "rx_aperture_m",
	     "must be > 0 (m)", "must be <= 10 m"),
	RULE(beam_divergence, 0.0, DIVERGENCE_MAX, false, "beam_divergence",
	     "must be >= 0 (rad, full angle)", "must be <= 0.1 rad (full angle)"),
	RULE(atmos_loss_db_per_km, 0.0, LOSS_MAX, false, "atmos_loss_db_per_km",
	     "must be >= 0", "must be <= 100 dB/km"),
	RULE(background_day, 0.0, 1.0, false, "background_day",
	     "must be >= 0 (a probability per gate)",
	     "must be <= 1 (a probability per gate)"),
	RULE(background_night, 0.0, 1.0, false, "background_night",
	     "must be >= 0 (a probability per gate)",
	     "must be <= 1 (a probability per gate)"),
};

static const char *check_range(const struct qkd_link_params *p,
			       const struct range_rule *r)
{
	double v;

	memcpy(&v, (const char *)p + r->off, sizeof v);
	if (!isfinite(v))
		return r->nan_msg;
	if (r->lo_open ? !(v > r->lo) : !(v >= r->lo))
		return r->lo_msg;
	if (!(v <= r->hi))
		return r->hi_msg;
	return NULL;
}

/* Three-intensity decoy BB84 (Lim et al. 2014): signal mu above the sum of
 * the decoys, so that index 0 is the brightest pulse (the simulator's
 * candidate process relies on it), and a proper distribution. */
static const char *check_decoys(const struct qkd_link_params *p)
{
	double sum = 0.0;

	if (p->intensities == 1)
		return NULL;
	if (p->intensities != 3)
		return "intensities must be 1 or 3";
	if (p->source != QKD_SOURCE_WEAK_COHERENT)
		return "decoy states need a weak-coherent source";
	if (!(p->mu > p->mu_decoy[0] + p->mu_decoy[1]) ||
	    !(p->mu_decoy[0] > p->mu_decoy[1]) || !(p->mu_decoy[1] >= 0.0))
		return "decoy intensities must satisfy mu > mu2 + mu3 and mu2 > mu3 >= 0";
	for (unsigned k = 0; k < QKD_INTENSITIES_MAX; k++) {
		if (!(p->p_intensity[k] > 0.0 && p->p_intensity[k] < 1.0))
			return "p_intensity must be in (0,1) for each intensity";
		sum += p->p_intensity[k];
	}
	if (!(fabs(sum - 1.0) <= 1e-9))
		return "p_intensity must sum to 1";
	return NULL;
}

static const char *check_channel(const struct qkd_link_params *p)
{
	const char *msg = NULL;

	if (p->channel == QKD_CHANNEL_FIBER)
		return NULL;
	if (p->channel != QKD_CHANNEL_FREE_SPACE)
		return "channel must be fiber or free-space";
	for (size_t i = 0; msg == NULL && i < sizeof fso_rules / sizeof fso_rules[0]; i++)
		msg = check_range(p, &fso_rules[i]);
	return msg;
}

static const char *check_basis_eve(const struct qkd_link_params *p)
{
	if (!(p->p_x > 0.0 && p->p_x < 1.0))
		return "p_x must be a finite number in (0,1)";
	if (p->eve != QKD_EVE_NONE && p->eve != QKD_EVE_INTERCEPT_RESEND &&
	    p->eve != QKD_EVE_PNS && p->eve != QKD_EVE_BEAMSPLIT)
		return "eve must be none, intercept-resend, pns or beamsplit";
	if (!(p->eve_fraction >= 0.0 && p->eve_fraction <= 1.0))
		return "eve_fraction must be a finite number in [0,1]";
	/* PNS needs the photon number of a pulse Alice prepared; an SPDC
	 * pair's twin on Bob's arm gives nothing extra to split. */
	if (p->eve == QKD_EVE_PNS && p->source != QKD_SOURCE_WEAK_COHERENT)
		return "eve pns needs a weak-coherent source";
	return NULL;
}

int qkd_link_params_check(const struct qkd_link_params *p, const char **why)
{
	const char *msg = NULL;

	if (p == NULL)
		msg = "link parameters missing";
	else if (p->source != QKD_SOURCE_WEAK_COHERENT &&
		 p->source != QKD_SOURCE_ENTANGLED)
		msg = "source must be weak-coherent or entangled";
	else if (p->pulses < 1)
		msg = "pulses must be >= 1";
	else if (p->pulses > QKD_PULSES_MAX)
		msg = "pulses must be <= 2^62";
	for (size_t i = 0; msg == NULL && i < sizeof rules / sizeof rules[0]; i++)
		msg = check_range(p, &rules[i]);
	if (msg == NULL)
		msg = check_decoys(p);
	if (msg == NULL)
		msg = check_basis_eve(p);
	if (msg == NULL)
		msg = check_channel(p);
	if (why != NULL)
		*why = msg;
	return msg == NULL ? QKD_OK : QKD_ERR_INVAL;
}

const char *qkd_source_name(enum qkd_source_kind k)
{
	switch (k) {
	case QKD_SOURCE_WEAK_COHERENT: return "weak-coherent";
	case QKD_SOURCE_ENTANGLED: return "entangled";
	default: return "unknown";
	}
}

int qkd_source_parse(const char *name, enum qkd_source_kind *k)
{
	if (name == NULL)
		return QKD_ERR_INVAL;
	if (strcmp(name, "weak-coherent") == 0 || strcmp(name, "wcp") == 0)
		*k = QKD_SOURCE_WEAK_COHERENT;
	else if (strcmp(name, "entangled") == 0 || strcmp(name, "spdc") == 0)
		*k = QKD_SOURCE_ENTANGLED;
	else
		return QKD_ERR_INVAL;
	return QKD_OK;
}

double qkd_link_intensity(const struct qkd_link_params *p, unsigned k)
{
	return k == 0 ? p->mu : k < QKD_INTENSITIES_MAX ? p->mu_decoy[k - 1] : 0.0;
}

static void expected_one(const struct qkd_link_params *p, double *pc, double *q)
{
	if (p->source == QKD_SOURCE_ENTANGLED)
		opt_spdc_expected(p, pc, q);
	else
		opt_wcp_expected(p, pc, q);
}

void qkd_link_expected_intensity(const struct qkd_link_params *p, unsigned k,
				 double *p_click, double *qber)
{
	struct qkd_link_params q = *p;
	double pc, e;

	q.mu = qkd_link_intensity(p, k);
	expected_one(&q, &pc, &e);
	if (p_click != NULL)
		*p_click = pc;
	if (qber != NULL)
		*qber = e;
}

/* One intensity: the closed form itself (no mixture arithmetic, so the
 * numbers are those of a link without decoys). Three: clicks averaged with
 * p_intensity, errors weighted by each intensity's clicks. */
void qkd_link_expected(const struct qkd_link_params *p, double *p_click, double *qber)
{
	double pc = 0.0, q = 0.0;

	if (p->intensities != QKD_INTENSITIES_MAX) {
		expected_one(p, &pc, &q);
	} else {
		double err = 0.0;

		for (unsigned k = 0; k < QKD_INTENSITIES_MAX; k++) {
			double pk, ek;

			qkd_link_expected_intensity(p, k, &pk, &ek);
			pc += p->p_intensity[k] * pk;
			err += p->p_intensity[k] * pk * ek;
		}
		q = pc > 0 ? err / pc : 0.0;
	}
	if (p_click != NULL)
		*p_click = pc;
	if (qber != NULL)
		*qber = q;
}

double qkd_multiphoton_prob(double mu)
{
	double term, sum;

	if (!(mu > 0))
		return 0.0;
	if (mu >= 1.0)
		return -expm1(-mu) - mu * exp(-mu);
	/* e^-mu * sum_{k>=2} mu^k/k!: no cancellation for small mu. */
	term = mu * mu / 2.0;
	sum = 0.0;
	for (unsigned k = 3; term > sum * 1e-18 && k < 64; k++) {
		sum += term;
		term *= mu / k;
	}
	return exp(-mu) * sum;
}
