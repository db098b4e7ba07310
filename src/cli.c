/* cli.c - shared option parsing and error reporting for the `qkd` tool. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_error(const char *what, const char *why)
{
	if (what != NULL)
		fprintf(stderr, "qkd: %s: %s\n", what, why);
	else
		fprintf(stderr, "qkd: %s\n", why);
}

void cli_errorf(const char *what, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	cli_error(what, why);
}

/* Only the characters of decimal notation: keeps strtod from accepting
 * " 1", "inf", "nan(...)" or "0x1p3". */
static int decimal_chars_only(const char *s)
{
	return s[strspn(s, "0123456789.eE+-")] == '\0';
}

int cli_parse_double(const char *s, double *out, const char **why)
{
	char *end = NULL;
	double v;

	if (s == NULL || *s == '\0') {
		*why = "empty value";
		return -1;
	}
	if (!decimal_chars_only(s)) {
		*why = "not a number";
		return -1;
	}
	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0') {
		*why = "not a number";
		return -1;
	}
	if (errno == ERANGE || !isfinite(v)) {
		*why = "out of range";
		return -1;
	}
	*out = v;
	return 0;
}

int cli_parse_u64(const char *s, uint64_t *out, const char **why)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0') {
		*why = "empty value";
		return -1;
	}
	if (*s == '-' && s[1] != '\0' && s[strspn(s + 1, "0123456789") + 1] == '\0') {
		*why = "must not be negative";
		return -1;
	}
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			*why = "not a whole number";
			return -1;
		}
		unsigned digit = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - digit) / 10) {
			*why = "out of range";
			return -1;
		}
		v = v * 10 + digit;
	}
	*out = v;
	return 0;
}

int cli_opt_double(const char *opt, const char *arg, double min, double max,
		   double *out)
{
	const char *why = NULL;
	double v = 0.0;

	if (cli_parse_double(arg, &v, &why) != 0) {
		cli_errorf(opt, "%s: '%s'", why, arg ? arg : "");
		return -1;
	}
	if (v < min) {
		cli_errorf(opt, "must be >= %g: '%s'", min, arg);
		return -1;
	}
	if (v > max) {
		cli_errorf(opt, "must be <= %g: '%s'", max, arg);
		return -1;
	}
	*out = v;
	return 0;
}

int cli_opt_u64(const char *opt, const char *arg, uint64_t min, uint64_t max,
		uint64_t *out)
{
	const char *why = NULL;
	uint64_t v = 0;

	if (cli_parse_u64(arg, &v, &why) != 0) {
		cli_errorf(opt, "%s: '%s'", why, arg ? arg : "");
		return -1;
	}
	if (v < min) {
		cli_errorf(opt, "must be >= %" PRIu64 ": '%s'", min, arg);
		return -1;
	}
	if (v > max) {
		cli_errorf(opt, "must be <= %" PRIu64 ": '%s'", max, arg);
		return -1;
	}
	*out = v;
	return 0;
}

/* getopt_long() has advanced optind past a bad long option, so its text is
 * argv[optind-1]; a bad short option may sit inside a bundle ("-xq"), so
 * only optopt names it. */
void cli_getopt_error(const char *cmd, int c, char *const argv[])
{
	const char *tok = optind > 0 ? argv[optind - 1] : NULL;
	int is_long = tok != NULL && strncmp(tok, "--", 2) == 0;

	if (c == ':') {
		if (is_long)
			cli_errorf(cmd, "option '%s' needs a value", tok);
		else
			cli_errorf(cmd, "option '-%c' needs a value", optopt);
	} else if (is_long) {
		cli_errorf(cmd, "unknown option '%s'", tok);
	} else if (optopt > 0 && optopt < 128) {
		cli_errorf(cmd, "unknown option '-%c'", optopt);
	} else {
		cli_errorf(cmd, "unknown option");
	}
}

int cli_opt_real(const char *opt, const char *arg, double lo, bool lo_open, double hi,
		 double *out)
{
	double v;

	if (cli_opt_double(opt, arg, -HUGE_VAL, HUGE_VAL, &v) != 0)
		return -1;
	if (lo_open ? !(v > lo) : !(v >= lo)) {
		cli_errorf(opt, "must be %s %g: '%s'", lo_open ? ">" : ">=", lo, arg);
		return -1;
	}
	if (v > hi) {
		cli_errorf(opt, "must be <= %g: '%s'", hi, arg);
		return -1;
	}
	*out = v;
	return 0;
}

int cli_opt_reals(const char *opt, const char *arg, size_t n, double *out)
{
	char buf[256];
	const char *why;
	size_t got = 0;

	if (strlen(arg) >= sizeof buf) {
		cli_errorf(opt, "too long: '%.40s...'", arg);
		return -1;
	}
	strcpy(buf, arg);
	for (char *p = buf, *next; p != NULL; p = next) {
		next = strchr(p, ',');
		if (next != NULL)
			*next++ = '\0';
		if (got == n) {
			cli_errorf(opt, "expected %zu comma-separated numbers: '%s'", n, arg);
			return -1;
		}
		if (cli_parse_double(p, &out[got], &why) != 0) {
			cli_errorf(opt, "%s: '%s' in '%s'", why, p, arg);
			return -1;
		}
		got++;
	}
	if (got != n) {
		cli_errorf(opt, "expected %zu comma-separated numbers: '%s'", n, arg);
		return -1;
	}
	return 0;
}

int cli_getopts(const char *cmd, int argc, char **argv, const struct option *opts,
		int help_code, void (*help)(void),
		int (*one)(int c, const char *arg, void *ctx), void *ctx)
{
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == help_code) {
			help();
			return 1;
		}
		if (c == '?' || c == ':') {
			cli_getopt_error(cmd, c, argv);
			return -1;
		}
		if (one(c, optarg, ctx) != 0)
			return -1;
	}
	if (optind < argc) {
		cli_errorf(cmd, "unexpected argument '%s'", argv[optind]);
		return -1;
	}
	return 0;
}
