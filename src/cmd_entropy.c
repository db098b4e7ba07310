/* cmd_entropy.c - `qkd entropy`: the entropy estimate of DESIGN.md section 5
 * from counts given on the command line (analysis, scripting).
 *
 * Exit codes (cli.h): 0 success; 2 the command line is wrong (unknown option,
 * missing value or option, a value outside its own domain, an option twice,
 * a stray argument); 1 the values parse but are inconsistent with each other
 * (qkd_entropy_estimate rejects them, e.g. e > b or M > N_tx) or output
 * could not be written. Nothing is ever defaulted silently: a value that
 * does not parse is an error, and the defaults used are printed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "commands.h"
#include "qkd/entropy.h"

#define CMD "entropy"

enum opt_id {
	OPT_BITS = 256, OPT_ERRORS, OPT_DISCLOSED, OPT_TRANSMITTED,
	OPT_DETECTED, OPT_MU, OPT_SOURCE, OPT_DEFENSE, OPT_CONFIDENCE,
	OPT_NONRANDOM, OPT_PA_MARGIN, OPT_JSON,
	OPT_HELP = 'h',
};

static const struct option long_opts[] = {
	{ "bits", required_argument, NULL, OPT_BITS },
	{ "errors", required_argument, NULL, OPT_ERRORS },
	{ "disclosed", required_argument, NULL, OPT_DISCLOSED },
	{ "transmitted", required_argument, NULL, OPT_TRANSMITTED },
	{ "detected", required_argument, NULL, OPT_DETECTED },
	{ "mu", required_argument, NULL, OPT_MU },
	{ "source", required_argument, NULL, OPT_SOURCE },
	{ "defense", required_argument, NULL, OPT_DEFENSE },
	{ "confidence", required_argument, NULL, OPT_CONFIDENCE },
	{ "nonrandom", required_argument, NULL, OPT_NONRANDOM },
	{ "pa-margin", required_argument, NULL, OPT_PA_MARGIN },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

struct entropy_args {
	struct qkd_entropy_in in;
	bool json;
	uint32_t seen;		/* bit (id - OPT_BITS) per option given */
};

static void usage(FILE *f)
{
	fputs(
"usage: qkd entropy --bits B --errors E --disclosed D --mu MU\n"
"                   [--transmitted N --detected M] [--source weak-coherent|entangled]\n"
"                   [--defense bennett|slutsky] [--confidence C] [--nonrandom R]\n"
"                   [--pa-margin P] [--json] [--help]\n"
"\n"
"Entropy estimate of one corrected block (DESIGN.md section 5, docs/entropy.md):\n"
"  s = floor(b - d - t_T - t_N - r - c*sqrt(var_T + var_N) - pa_margin), >= 0\n"
"\n"
"  --bits B          b, corrected bits in the block (>= 1)\n"
"  --errors E        e, errors corrected (<= b)\n"
"  --disclosed D     d, bits disclosed (parities and verification hash)\n"
"  --transmitted N   N_tx, pulses sent for the block (required for weak-coherent)\n"
"  --detected M      M, detections for the block (required for weak-coherent)\n"
"  --mu MU           mean photon number per pulse (> 0)\n"
"  --source S        weak-coherent (default): leak ~ pulses sent, q = min(1, p_m N_tx/M)\n"
"                    entangled: leak ~ bits received, q = p_m\n"
"  --defense F       slutsky (default) or bennett\n"
"  --confidence C    standard deviations of margin, >= 0 (default 5)\n"
"  --nonrandom R     non-randomness deficit in bits, >= 0 (default 0)\n"
"  --pa-margin P     privacy-amplification margin in bits, >= 0 (default 0)\n"
"  --json            print one JSON object instead of the table\n"
"\n"
"Exit status: 0 ok, 1 inconsistent values (e.g. e > b, M > N_tx), 2 usage error.\n",
	      f);
}

/* Print "qkd: --defense: unknown defense function: 'x' (one of: a, b)". */
static void unknown_name(const char *opt, const char *what, const char *arg,
			 const char *(*name)(int))
{
	char list[128] = "";
	size_t used = 0;

	for (int i = 0; name(i) != NULL && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
					 i ? ", " : "", name(i));
	cli_errorf(opt, "unknown %s: '%s' (one of: %s)", what, arg, list);
}

static const char *defense_name_i(int i)
{
	return qkd_defense_name((enum qkd_defense)i);
}

static const char *source_name_i(int i)
{
	return qkd_leak_model_name((enum qkd_leak_model)i);
}

static int parse_name(int id, const char *opt, const char *arg,
		      struct qkd_entropy_in *in)
{
	if (id == OPT_SOURCE) {
		if (qkd_leak_model_from_name(arg, &in->source) == 0)
			return 0;
		unknown_name(opt, "source", arg, source_name_i);
	} else {
		if (qkd_defense_from_name(arg, &in->defense) == 0 &&
		    in->defense == QKD_DEFENSE_DECOY) {
			cli_error(opt, "decoy needs per-intensity counts of a whole run: "
				  "use qkd sim --defense decoy (docs/decoy.md)");
			return -1;
		}
		if (qkd_defense_from_name(arg, &in->defense) == 0)
			return 0;
		unknown_name(opt, "defense function", arg, defense_name_i);
	}
	return -1;
}

/* One option's value, checked against its own domain only. */
static int parse_value(int id, const char *opt, const char *arg,
		       struct entropy_args *a)
{
	struct qkd_entropy_in *in = &a->in;
	const uint64_t max = QKD_ENTROPY_COUNT_MAX;

	switch (id) {
	case OPT_BITS:		return cli_opt_u64(opt, arg, 1, max, &in->bits);
	case OPT_ERRORS:	return cli_opt_u64(opt, arg, 0, max, &in->errors);
	case OPT_DISCLOSED:	return cli_opt_u64(opt, arg, 0, max, &in->disclosed);
	case OPT_TRANSMITTED:	return cli_opt_u64(opt, arg, 0, max, &in->transmitted);
	case OPT_DETECTED:	return cli_opt_u64(opt, arg, 0, max, &in->detected);
	case OPT_CONFIDENCE:	return cli_opt_double(opt, arg, 0, HUGE_VAL, &in->confidence);
	case OPT_NONRANDOM:	return cli_opt_double(opt, arg, 0, HUGE_VAL, &in->nonrandom);
	case OPT_PA_MARGIN:	return cli_opt_double(opt, arg, 0, HUGE_VAL, &in->pa_margin);
	case OPT_SOURCE:
	case OPT_DEFENSE:	return parse_name(id, opt, arg, in);
	case OPT_MU:
		if (cli_opt_double(opt, arg, -HUGE_VAL, HUGE_VAL, &in->mu) != 0)
			return -1;
		if (!(in->mu > 0)) {
			cli_errorf(opt, "must be > 0: '%s'", arg);
			return -1;
		}
		return 0;
	case OPT_JSON:
		a->json = true;
		return 0;
	default:
		cli_errorf(CMD, "internal error: option %d", id);
		return -1;
	}
}

static const char *opt_name(int id)
{
	for (const struct option *o = long_opts; o->name != NULL; o++)
		if (o->val == id)
			return o->name;
	return "?";
}

static bool seen(const struct entropy_args *a, int id)
{
	return (a->seen >> (id - OPT_BITS)) & 1u;
}

static int check_required(const struct entropy_args *a)
{
	static const int always[] = { OPT_BITS, OPT_ERRORS, OPT_DISCLOSED, OPT_MU };
	static const int weak[] = { OPT_TRANSMITTED, OPT_DETECTED };

	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++) {
		if (!seen(a, always[i])) {
			cli_errorf(CMD, "missing --%s (see 'qkd entropy --help')",
				   opt_name(always[i]));
			return -1;
		}
	}
	if (a->in.source != QKD_LEAK_WEAK_COHERENT)
		return 0;
	for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++) {
		if (!seen(a, weak[i])) {
			cli_errorf(CMD, "missing --%s (required for --source weak-coherent)",
				   opt_name(weak[i]));
			return -1;
		}
	}
	return 0;
}

/* 0: run; 1: --help printed; -1: usage error printed. */
static int parse_args(int argc, char **argv, struct entropy_args *a)
{
	int c;

	qkd_entropy_in_defaults(&a->in);
	a->json = false;
	a->seen = 0;
	optind = 0;		/* glibc: full reset, cmd_entropy may run twice */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
		if (c == '?' || c == ':') {
			cli_getopt_error(CMD, c, argv);
			return -1;
		}
		if (c == OPT_HELP) {
			usage(stdout);
			return 1;
		}
		char name[32];

		snprintf(name, sizeof(name), "--%s", opt_name(c));
		if (seen(a, c)) {
			cli_errorf(CMD, "%s given more than once", name);
			return -1;
		}
		a->seen |= 1u << (c - OPT_BITS);
		if (parse_value(c, name, optarg, a) != 0)
			return -1;
	}
	if (optind < argc) {
		cli_errorf(CMD, "unexpected argument '%s'", argv[optind]);
		return -1;
	}
	return check_required(a);
}

static void print_row(const char *name, double bits, double sd, bool has_sd)
{
	if (has_sd)
		printf("  %-18s %14.2f %10.2f\n", name, bits, sd);
	else
		printf("  %-18s %14.2f %10s\n", name, bits, "-");
}

static void print_human(const struct qkd_entropy_in *in,
			const struct qkd_entropy_out *o)
{
	double b = (double)in->bits;
	double lim = 0.0;

	printf("entropy estimate: source %s, defense %s, confidence %g\n",
	       qkd_leak_model_name(in->source), qkd_defense_name(in->defense),
	       in->confidence);
	printf("  %-18s %14" PRIu64 "   (e = %" PRIu64 ", e/b = %.6f)\n",
	       "corrected bits b", in->bits, in->errors, o->error_rate);
	printf("  %-18s %14s %10s\n", "term", "bits", "sd");
	print_row("disclosed", o->disclosed, 0, false);
	print_row("transparent", o->transparent, o->transparent_sd, true);
	print_row("nontransparent", o->nontransparent, o->nontransparent_sd, true);
	print_row("nonrandomness", o->nonrandomness, 0, false);
	print_row("pa_margin", o->pa_margin, 0, false);
	printf("  %-18s %14.2f %10s   (sigma = sqrt(var_T + var_N) = %.2f)\n",
	       "c*sigma", o->sigma_term, "-",
	       sqrt(o->transparent_sd * o->transparent_sd +
		    o->nontransparent_sd * o->nontransparent_sd));
	printf("  %-18s %14" PRIu64 "\n", "secret bits", o->secret_bits);
	switch (o->limiting_term) {
	case QKD_TERM_DISCLOSED:	lim = o->disclosed; break;
	case QKD_TERM_TRANSPARENT:	lim = o->transparent; break;
	case QKD_TERM_NONTRANSPARENT:	lim = o->nontransparent; break;
	case QKD_TERM_NONRANDOMNESS:	lim = o->nonrandomness; break;
	case QKD_TERM_SIGMA:		lim = o->sigma_term; break;
	case QKD_TERM_PA_MARGIN:	lim = o->pa_margin; break;
	case QKD_TERM_NONE:		break;
	}
	printf("limiting term: %s (%.1f%% of b)\n",
	       qkd_entropy_term_name(o->limiting_term), 100.0 * lim / b);
	printf("multi-photon: p_m = %.6g, q = %.6g\n", o->multiphoton_prob,
	       o->transparent_fraction);
	if (o->transparent_saturated)
		printf("note: p_m * N_tx / M >= 1: every bit may have leaked through "
		       "multi-photon pulses (q clamped to 1)\n");
}

static json_t *to_json(const struct qkd_entropy_in *in,
		       const struct qkd_entropy_out *o)
{
	return json_pack(
		"{s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f,"
		" s:I, s:f, s:s, s:s, s:s, s:f, s:f, s:b, s:f}",
		"bits", (json_int_t)in->bits,
		"errors", (json_int_t)in->errors,
		"disclosed", o->disclosed,
		"transparent", o->transparent,
		"transparent_sd", o->transparent_sd,
		"nontransparent", o->nontransparent,
		"nontransparent_sd", o->nontransparent_sd,
		"nonrandomness", o->nonrandomness,
		"pa_margin", o->pa_margin,
		"confidence", in->confidence,
		"sigma_term", o->sigma_term,
		"secret_bits", (json_int_t)o->secret_bits,
		"secret_real", o->secret_real,
		"limiting_term", qkd_entropy_term_name(o->limiting_term),
		"defense", qkd_defense_name(in->defense),
		"source", qkd_leak_model_name(in->source),
		"multiphoton_prob", o->multiphoton_prob,
		"transparent_fraction", o->transparent_fraction,
		"transparent_saturated", (int)o->transparent_saturated,
		"error_rate", o->error_rate);
}

static int print_json(const struct qkd_entropy_in *in,
		      const struct qkd_entropy_out *o)
{
	json_t *obj = to_json(in, o);
	int rc = -1;

	if (obj == NULL) {
		cli_error(CMD, "cannot build the JSON output");
		goto out;
	}
	/* a failed write shows in ferror(stdout), checked by the caller */
	if (json_dumpf(obj, stdout, JSON_COMPACT) == 0)
		putchar('\n');
	rc = 0;
out:
	json_decref(obj);
	return rc;
}

int cmd_entropy(int argc, char **argv)
{
	struct entropy_args a;
	struct qkd_entropy_out out;
	const char *why = NULL;
	int rc;

	rc = parse_args(argc, argv, &a);
	if (rc != 0)
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	if (qkd_entropy_estimate(&a.in, &out, &why) != 0) {
		cli_error(CMD, why);
		return CLI_EXIT_FAIL;
	}
	if (a.json) {
		if (print_json(&a.in, &out) != 0)
			return CLI_EXIT_FAIL;
	} else {
		print_human(&a.in, &out);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_errorf(CMD, "cannot write output: %s", strerror(errno));
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}
