/* eve.c - the eavesdropper's names and its command-line spec
 * (qkd/optical.h, docs/optical-model.md "Eve"). */
#include "qkd/optical.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"

const char *qkd_eve_name(enum qkd_eve_attack a)
{
	switch (a) {
	case QKD_EVE_NONE: return "none";
	case QKD_EVE_INTERCEPT_RESEND: return "intercept-resend";
	case QKD_EVE_PNS: return "pns";
	case QKD_EVE_BEAMSPLIT: return "beamsplit";
	default: return "unknown";
	}
}

/* A plain decimal fraction in [0,1]: digits, a point, an exponent. Signs
 * only inside the exponent; no spaces, "inf", "nan" or hex, which strtod
 * would take. */
static const char *parse_fraction(const char *s, double *f)
{
	char *end;
	double v;

	if (*s == '\0')
		return "the fraction after ':' is missing";
	if (strspn(s, "0123456789.eE+-") != strlen(s) || !(*s == '.' || (*s >= '0' && *s <= '9')))
		return "the fraction must be a decimal number in [0,1]";
	v = strtod(s, &end);
	if (*end != '\0' || end == s)
		return "the fraction must be a decimal number in [0,1]";
	if (!isfinite(v) || v < 0.0 || v > 1.0)
		return "the fraction must be in [0,1]";
	*f = v;
	return NULL;
}

struct eve_spec {
	const char *name;
	enum qkd_eve_attack attack;
	bool fraction;		/* takes ":F" */
};

static const struct eve_spec specs[] = {
	{ "none", QKD_EVE_NONE, false },
	{ "intercept-resend", QKD_EVE_INTERCEPT_RESEND, true },
	{ "pns", QKD_EVE_PNS, false },
	{ "beamsplit", QKD_EVE_BEAMSPLIT, true },
};

/* p is written only on success. */
int qkd_eve_parse(const char *spec, struct qkd_link_params *p, const char **why)
{
	const char *msg = "eve must be none, intercept-resend:F, pns or beamsplit:F";
	double f = 0.0;

	for (size_t i = 0; spec != NULL && i < sizeof specs / sizeof specs[0]; i++) {
		size_t n = strlen(specs[i].name);

		if (strncmp(spec, specs[i].name, n) != 0 || (spec[n] != '\0' && spec[n] != ':'))
			continue;
		if (!specs[i].fraction)
			msg = spec[n] == ':' ? "this attack takes no fraction" : NULL;
		else if (spec[n] != ':')
			msg = "this attack needs a fraction, e.g. intercept-resend:0.5";
		else
			msg = parse_fraction(spec + n + 1, &f);
		if (msg == NULL) {
			p->eve = specs[i].attack;
			p->eve_fraction = f;
		}
		break;
	}
	if (why != NULL)
		*why = msg;
	return msg == NULL ? QKD_OK : QKD_ERR_INVAL;
}
