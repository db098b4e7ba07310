/* cli.h - small helpers shared by every `qkd` subcommand.
 *
 * DESIGN.md section 2: errors go to stderr as "qkd: <what>: <why>" with a
 * non-zero exit code. Every subcommand uses the same exit codes and the same
 * strict number parsers, so `qkd sim --mu abc` and `qkd entropy --mu abc`
 * fail the same way. Nothing here allocates or keeps state.
 */
#ifndef QKD_CLI_H
#define QKD_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes of every subcommand. */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAIL = 1,	/* the command ran and failed, or its input was rejected */
	CLI_EXIT_USAGE = 2,	/* the command line itself is wrong (option, value, missing) */
};

/* Print "qkd: <what>: <why>\n" to stderr ("qkd: <why>" when what is NULL). */
void cli_error(const char *what, const char *why);
/* Same, with a printf-style why. */
void cli_errorf(const char *what, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Strict parsers: the whole of s must be the number, with no white space,
 * sign tricks or suffix. On success return 0 and set *out; on failure return
 * -1, leave *out untouched and set *why to a static reason ("empty value",
 * "not a number", "out of range", ...).
 *
 * cli_parse_double: decimal notation only ("0.1", "-2", "1e-3", ".5");
 * inf, nan, hex floats and values that overflow or underflow are rejected,
 * so the result is always finite.
 * cli_parse_u64: decimal digits only; a leading '-' or '+' is rejected
 * (strtoull would silently wrap "-1" to 2^64-1). */
__attribute__((warn_unused_result))
int cli_parse_double(const char *s, double *out, const char **why);
__attribute__((warn_unused_result))
int cli_parse_u64(const char *s, uint64_t *out, const char **why);

/* Parse the value arg of option opt (e.g. "--mu") and check min <= value <=
 * max. On failure print "qkd: <opt>: <why>: '<arg>'" (e.g.
 * "qkd: --mu: not a number: 'abc'", "qkd: --confidence: must be >= 0: '-1'")
 * and return -1; the caller then exits with CLI_EXIT_USAGE. */
__attribute__((warn_unused_result))
int cli_opt_double(const char *opt, const char *arg, double min, double max,
		   double *out);
__attribute__((warn_unused_result))
int cli_opt_u64(const char *opt, const char *arg, uint64_t min, uint64_t max,
		uint64_t *out);

/* Parse the real value arg of option opt and check lo < value (lo_open) or
 * lo <= value, and value <= hi, with the bound in the message ("qkd: --mu:
 * must be > 0: '-1'"). 0, or -1 after printing. */
__attribute__((warn_unused_result))
int cli_opt_real(const char *opt, const char *arg, double lo, bool lo_open, double hi,
		 double *out);

/* Parse arg of option opt as exactly n comma-separated reals, each by the
 * rules of cli_parse_double ("0.1,0.02"). 0, or -1 after printing. */
__attribute__((warn_unused_result))
int cli_opt_reals(const char *opt, const char *arg, size_t n, double *out);

struct option;

/* The option loop every subcommand runs: getopt_long over argv (optind
 * reset), each option handed to one(c, optarg, ctx); the option whose code
 * is help_code prints help() and stops. Unknown options, missing values and
 * stray arguments are reported as "qkd: <cmd>: ...". Returns 0 when every
 * option parsed, 1 after help, -1 after an error was printed. */
__attribute__((warn_unused_result))
int cli_getopts(const char *cmd, int argc, char **argv, const struct option *opts,
		int help_code, void (*help)(void),
		int (*one)(int c, const char *arg, void *ctx), void *ctx);

/* Report what getopt_long() returned as '?' (unknown option) or ':' (missing
 * value; the optstring must begin with ':') as "qkd: <cmd>: ...". Call it
 * right after getopt_long() returned, while optind/optopt are current. */
void cli_getopt_error(const char *cmd, int c, char *const argv[]);

#endif
