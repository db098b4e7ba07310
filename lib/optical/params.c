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

double qkd_link_transmittance(const struct qkd_link_params *p)
{
	return pow(10.0, -p->fiber_loss_db_per_km * p->distance_km / 10.0);
}

void qkd_link_expected(const struct qkd_link_params *p, double *p_click, double *qber)
{
	double pc, q;

	if (p->source == QKD_SOURCE_ENTANGLED)
		opt_spdc_expected(p, &pc, &q);
	else
		opt_wcp_expected(p, &pc, &q);
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
