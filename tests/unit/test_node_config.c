/* test_node_config.c - the `qkd node` configuration file (qkd/node_config.h,
 * docs/config.md).
 *
 * Every test writes its files into its own mkdtemp directory, removed
 * afterwards. The checks: a file giving every key round-trips into the
 * struct field by field, with the engine settings derived from the optical
 * ones; missing keys take the defaults of `qkd sim`; each kind of error
 * (syntax, unknown key, type, domain, address, key file, store directory,
 * duplicates, link count, decoy settings, names of codes and defenses,
 * source) is QKD_ERR_INVAL with "PATH:LINE:" naming the right line; the
 * optional kme group round-trips, takes its defaults, and refuses each of
 * its errors at the right line; and the example configurations of
 * examples/ load, from a relative path too (with stub PEM files: the parser
 * only checks that they are readable regular files).
 */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "qkd/error.h"
#include "qkd/netaddr.h"
#include "qkd/node_config.h"

struct fix {
	char dir[PATH_MAX];	/* realpath of the temp directory */
	char conf[PATH_MAX + 16];
	char err[512];
	struct qkd_node_config cfg;
};

/* ---- fixture ---- */

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

/* A key file of n bytes in f's directory. */
static void make_key(const struct fix *f, const char *name, size_t n)
{
	char path[PATH_MAX + 64], *buf = calloc(1, n + 1);

	assert_non_null(buf);
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)(i * 131 + 7);
	snprintf(path, sizeof path, "%s/%s", f->dir, name);
	write_file(path, buf, n);
	free(buf);
}

/* Stub PEM files in pki/, where the kme groups of the tests and of the
 * examples look for them: the parser checks only that they are readable
 * regular files. */
static void make_pki(const struct fix *f)
{
	static const char *const names[] = { "ca.pem", "server.pem", "server.key" };
	static const char stub[] = "-----BEGIN STUB-----\n-----END STUB-----\n";
	char path[PATH_MAX + 64];

	snprintf(path, sizeof path, "%s/pki", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/pki/%s", f->dir, names[i]);
		write_file(path, stub, sizeof stub - 1);
	}
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof *f);
	const char *tmp = getenv("TMPDIR");
	char dir[PATH_MAX];

	if (f == NULL)
		return -1;
	snprintf(dir, sizeof dir, "%s/qkd-nodecfg.XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL || realpath(dir, f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->conf, sizeof f->conf, "%s/node.conf", f->dir);
	make_key(f, "ab.key", 4096);
	make_key(f, "cd.key", 5000);
	make_key(f, "short.key", 100);
	make_pki(f);
	*state = f;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fix *f = *state;

	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* ---- the file under test ---- */

/* A valid configuration, one line per entry (line numbers = index + 1). */
static const char *const base[] = {
	"node = {",					/* 1 */
	"  name = \"alice\";",				/* 2 */
	"  status = \"alice.sock\";",			/* 3 */
	"  log_file = \"\";",				/* 4 */
	"  log_level = \"info\";",			/* 5 */
	"};",						/* 6 */
	"links = (",					/* 7 */
	"  {",						/* 8 */
	"    name = \"ab\";",				/* 9 */
	"    role = \"alice\";",			/* 10 */
	"    classical = \"127.0.0.1:7101\";",		/* 11 */
	"    fiber = \"127.0.0.1:7201\";",		/* 12 */
	"    store = \"alice-ab.db\";",			/* 13 */
	"    auth_key = \"ab.key\";",			/* 14 */
	"    auth_reserve_bits = 65536;",		/* 15 */
	"    round_pulses = 10000000;",			/* 16 */
	"    optical = {",				/* 17 */
	"      source = \"weak-coherent\";",		/* 18 */
	"      mu = 0.1; distance_km = 10.0;",		/* 19 */
	"      decoy = [0.05, 0.001];",			/* 20 */
	"      p_x = 0.5;",				/* 21 */
	"    };",					/* 22 */
	"    protocol = {",				/* 23 */
	"      ec = \"cascade\"; frame_bits = 65536;",	/* 24 */
	"      defense = \"slutsky\"; confidence = 5.0;",	/* 25 */
	"      sample_bits = 1024; eps_sec = 1e-10;",	/* 26 */
	"    };",					/* 27 */
	"  }",						/* 28 */
	");",						/* 29 */
};

/* A kme group after base (line numbers go on from 30). */
static const char *const kme_base[] = {
	"kme = {",					/* 30 */
	"  id = \"KME_A\";",				/* 31 */
	"  listen = \"127.0.0.1:8443\";",		/* 32 */
	"  cert = \"pki/server.pem\";",			/* 33 */
	"  key = \"pki/server.key\";",			/* 34 */
	"  ca = \"pki/ca.pem\";",			/* 35 */
	"  key_size = 512; min_key_size = 128;",	/* 36 */
	"  max_key_size = 4096; max_keys_per_request = 64;",	/* 37 */
	"  max_connections = 32; idle_timeout = 30; per_address_connections = 8;"
	"  handshake_timeout = 3;",			/* 38 */
	"  sync_timeout = 20;",				/* 39 */
	"  saes = (",					/* 40 */
	"    { id = \"SAE_A\"; cn = \"sae-a.example\"; },",	/* 41 */
	"    { id = \"SAE_B\"; link = \"ab\"; kme = \"KME_B\"; }",	/* 42 */
	"  );",						/* 43 */
	"};",						/* 44 */
};

#define NBASE (sizeof base / sizeof base[0])
#define NKME (sizeof kme_base / sizeof kme_base[0])
#define L_LINK 8	/* the link group's line */
#define L_KME 30	/* the kme group's line */
#define L_SAE0 41	/* the first SAE's */
#define L_SAE1 42

/* Write base (and kme_base when kme) with some lines replaced: pairs
 * (line, text) ending with 0. */
static void conf_lines(struct fix *f, bool kme, va_list ap)
{
	const char *lines[NBASE + NKME];
	size_t n = kme ? NBASE + NKME : NBASE;
	char text[8192];
	size_t used = 0;
	int ln;

	memcpy(lines, base, sizeof base);
	memcpy(lines + NBASE, kme_base, sizeof kme_base);
	while ((ln = va_arg(ap, int)) != 0) {
		assert_true(ln >= 1 && (size_t)ln <= n);
		lines[ln - 1] = va_arg(ap, const char *);
	}
	for (size_t i = 0; i < n; i++)
		used += (size_t)snprintf(text + used, sizeof text - used, "%s\n", lines[i]);
	assert_true(used < sizeof text);
	write_file(f->conf, text, used);
}

static void conf_with(struct fix *f, ...)
{
	va_list ap;

	va_start(ap, f);
	conf_lines(f, false, ap);
	va_end(ap);
}

/* The same with the kme group. */
static void kme_with(struct fix *f, ...)
{
	va_list ap;

	va_start(ap, f);
	conf_lines(f, true, ap);
	va_end(ap);
}

static int load(struct fix *f)
{
	return qkd_node_config_load(f->conf, &f->cfg, f->err, sizeof f->err);
}

/* Loading fails with QKD_ERR_INVAL, "CONF:LINE: " and what in the message. */
static void expect_err(struct fix *f, int line, const char *what)
{
	char prefix[PATH_MAX + 40];

	assert_int_equal(load(f), QKD_ERR_INVAL);
	if (line > 0)
		snprintf(prefix, sizeof prefix, "%s:%d: ", f->conf, line);
	else
		snprintf(prefix, sizeof prefix, "%s: ", f->conf);
	if (strncmp(f->err, prefix, strlen(prefix)) != 0)
		fail_msg("expected \"%s...\", got \"%s\"", prefix, f->err);
	if (what != NULL && strstr(f->err, what) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", what, f->err);
}

static void path_in(const struct fix *f, const char *name, const char *got)
{
	char want[PATH_MAX + 64];

	snprintf(want, sizeof want, "%s/%s", f->dir, name);
	assert_string_equal(got, want);
}

/* ---- valid files ---- */

static const char full_text[] =
	"# every key, none at its default\n"
	"node = {\n"
	"  name = \"alice-1\";\n"
	"  status = \"run/alice.sock\";\n"
	"  log_file = \"logs/alice.log\";\n"
	"  log_level = \"debug\";\n"
	"};\n"
	"links = (\n"
	"  {\n"
	"    name = \"ab\"; role = \"bob\";\n"
	"    classical = \"localhost:7101\"; fiber = \"10.0.0.2:65535\";\n"
	"    store = \"%s/alice-ab.db\";\n"
	"    auth_key = \"ab.key\";\n"
	"    auth_reserve_bits = 131072;\n"
	"    round_pulses = 4000000000L;\n"
	"    optical = {\n"
	"      source = \"weak-coherent\"; mu = 0.5; distance_km = 25;\n"
	"      fiber_loss_db_per_km = 0.21; detector_efficiency = 0.2;\n"
	"      dark_count = 2e-6; misalignment = 0.02; rate_hz = 1e8;\n"
	"      decoy = [0.1, 0.0002]; decoy_probs = (0.7, 0.2, 0.1); p_x = 0.75;\n"
	"    };\n"
	"    protocol = {\n"
	"      ec = \"cascade-bbn\"; frame_bits = 32768; frames_in_flight = 16;\n"
	"      defense = \"decoy\"; confidence = 6; abort_qber = 0.09;\n"
	"      sample_bits = 2048; pa_block_bits = 1e6; pa_margin = 10.5;\n"
	"      eps_sec = 1e-9; eps_cor = 1e-12;\n"
	"    };\n"
	"  },\n"
	"  { name = \"cd\"; role = \"alice\"; classical = \"[::1]:7102\";\n"
	"    fiber = \"[2001:DB8:0::2]:7202\"; store = \"alice-cd.db\"; auth_key = \"cd.key\"; }\n"
	");\n";

static void check_full_optical(const struct qkd_link_config *l)
{
	const struct qkd_link_params *o = &l->optical;

	assert_int_equal(o->source, QKD_SOURCE_WEAK_COHERENT);
	assert_true(o->pulses == 4000000000ull);
	assert_true(o->mu == 0.5 && o->distance_km == 25.0);
	assert_true(o->fiber_loss_db_per_km == 0.21 && o->detector_efficiency == 0.2);
	assert_true(o->dark_count == 2e-6 && o->misalignment == 0.02 && o->rate_hz == 1e8);
	assert_int_equal(o->intensities, 3);
	assert_true(o->mu_decoy[0] == 0.1 && o->mu_decoy[1] == 0.0002);
	assert_true(o->p_intensity[0] == 0.7 && o->p_intensity[1] == 0.2 &&
		    o->p_intensity[2] == 0.1);
	assert_true(o->p_x == 0.75);
	assert_int_equal(o->eve, QKD_EVE_NONE);
}

static void check_full_engine(const struct qkd_engine_config *e)
{
	assert_string_equal(e->ec, "cascade-bbn");
	assert_int_equal(e->frame_bits, 32768);
	assert_int_equal(e->frames_in_flight, 16);
	assert_int_equal(e->estimate.defense, QKD_DEFENSE_DECOY);
	assert_true(e->estimate.confidence == 6.0 && e->abort_qber == 0.09);
	assert_int_equal(e->sample_bits, 2048);
	assert_int_equal(e->pa_block_bits, 1000000);
	assert_true(e->estimate.pa_margin == 10.5);
	assert_true(e->decoy.eps_sec == 1e-9 && e->decoy.eps_cor == 1e-12);
	/* Derived from the optical group, as qkd sim does. */
	assert_true(e->estimate.mu == 0.5);
	assert_int_equal(e->estimate.source, QKD_LEAK_WEAK_COHERENT);
	assert_true(e->decoy.mu[0] == 0.5 && e->decoy.mu[1] == 0.1 && e->decoy.mu[2] == 0.0002);
	assert_true(e->decoy.p_mu[0] == 0.7 && e->decoy.p_mu[1] == 0.2 && e->decoy.p_mu[2] == 0.1);
	assert_true(e->decoy.p_x == 0.75);
}

static void test_full(void **state)
{
	struct fix *f = *state;
	const struct qkd_node_config *c = &f->cfg;
	const struct qkd_link_config *l = &c->links[0];
	char text[sizeof full_text + PATH_MAX], sub[PATH_MAX + 16];

	snprintf(sub, sizeof sub, "%s/run", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(sub, sizeof sub, "%s/logs", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(text, sizeof text, full_text, f->dir);
	write_file(f->conf, text, strlen(text));
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_string_equal(f->err, "");
	assert_string_equal(c->name, "alice-1");
	path_in(f, "run/alice.sock", c->status);
	path_in(f, "logs/alice.log", c->log_file);
	assert_int_equal(c->log_level, QKD_LOG_DEBUG);
	assert_int_equal(c->nlinks, 2);
	assert_string_equal(l->name, "ab");
	assert_int_equal(l->role, QKD_ROLE_BOB);
	/* localhost is 127.0.0.1, and printed so. */
	assert_string_equal(l->classical.text, "127.0.0.1:7101");
	assert_int_equal(qkd_netaddr_family(&l->classical.sa), AF_INET);
	assert_int_equal(qkd_netaddr_port(&l->classical.sa), 7101);
	assert_string_equal(l->fiber.text, "10.0.0.2:65535");
	assert_int_equal(qkd_netaddr_port(&l->fiber.sa), 65535);
	path_in(f, "alice-ab.db", l->store);	/* given absolute */
	path_in(f, "ab.key", l->auth_key);	/* given relative */
	assert_true(l->auth_reserve_bits == 131072);
	assert_true(l->round_pulses == 4000000000ull);
	check_full_optical(l);
	check_full_engine(&l->engine);
	l = &c->links[1];
	assert_string_equal(l->name, "cd");
	assert_int_equal(l->role, QKD_ROLE_ALICE);
	path_in(f, "alice-cd.db", l->store);
	path_in(f, "cd.key", l->auth_key);
	/* IPv6, in the canonical form (lowercase, zeros compressed). */
	assert_string_equal(l->classical.text, "[::1]:7102");
	assert_int_equal(qkd_netaddr_family(&l->classical.sa), AF_INET6);
	assert_true(qkd_netaddr_is_loopback(&l->classical.sa));
	assert_string_equal(l->fiber.text, "[2001:db8::2]:7202");
	assert_int_equal(qkd_netaddr_family(&l->fiber.sa), AF_INET6);
	assert_int_equal(qkd_netaddr_port(&l->fiber.sa), 7202);
}

static void test_defaults(void **state)
{
	struct fix *f = *state;
	const struct qkd_link_config *l = &f->cfg.links[0];
	struct qkd_link_params o;
	struct qkd_engine_config e;

	/* Only the required keys: node name and status, the link's six. */
	conf_with(f, 4, "", 5, "", 15, "", 16, "", 17, "", 18, "", 19, "", 20, "", 21, "",
		  22, "", 23, "", 24, "", 25, "", 26, "", 27, "", 0);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_int_equal(f->cfg.log_level, QKD_LOG_INFO);
	assert_string_equal(f->cfg.log_file, "");
	assert_int_equal(f->cfg.nlinks, 1);
	qkd_link_params_default(&o);
	qkd_engine_config_default(&e);
	assert_true(l->round_pulses == 500000000);
	assert_true(l->auth_reserve_bits == 262144);
	o.pulses = l->round_pulses;	/* the only optical value not qkd sim's */
	assert_memory_equal(&l->optical, &o, sizeof o);
	assert_memory_equal(&l->engine, &e, sizeof e);
	assert_string_equal(qkd_link_role_name(l->role), "alice");
	assert_string_equal(qkd_log_level_name(QKD_LOG_WARN), "warn");
	/* No kme group: no key manager. */
	assert_false(f->cfg.kme.enabled);
	assert_int_equal(f->cfg.kme.nsaes, 0);
}

/* The base file has decoys and no decoy_probs: qkd sim's defaults. */
static void test_decoy_defaults(void **state)
{
	struct fix *f = *state;
	const struct qkd_link_params *o = &f->cfg.links[0].optical;

	conf_with(f, 0);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_int_equal(o->intensities, 3);
	assert_true(o->p_intensity[0] == 0.8 && o->p_intensity[1] == 0.15 &&
		    o->p_intensity[2] == 0.05);
	assert_true(o->pulses == 10000000);
	/* Not the decoy defense: the engine's decoy settings stay default. */
	assert_true(f->cfg.links[0].engine.decoy.mu[1] == 0);
}

/* ---- errors ---- */

static void test_syntax(void **state)
{
	struct fix *f = *state;

	conf_with(f, 19, "      mu = = 0.1;", 0);
	expect_err(f, 19, "syntax error");
	conf_with(f, 5, "  log_level = \"info\"; log_level = \"debug\";", 0);
	expect_err(f, 5, "duplicate");
	conf_with(f, 16, "    round_pulses = 10000000000;", 0);
	expect_err(f, 16, "32 bits");
	conf_with(f, 15, "    auth_reserve_bits = 0xffffffff;", 0);
	expect_err(f, 15, "32 bits");
	conf_with(f, 6, "}; @include \"other.conf\"", 0);
	expect_err(f, 6, "@include");
}

static void test_unknown_key(void **state)
{
	struct fix *f = *state;

	conf_with(f, 6, "}; nodes = 1;", 0);
	expect_err(f, 6, "nodes: unknown key");
	conf_with(f, 4, "  logfile = \"\";", 0);
	expect_err(f, 4, "node.logfile: unknown key");
	conf_with(f, 15, "    auth_reserve = 65536;", 0);
	expect_err(f, 15, "links[0].auth_reserve: unknown key");
	conf_with(f, 21, "      p_X = 0.5;", 0);
	expect_err(f, 21, "links[0].optical.p_X: unknown key");
	conf_with(f, 26, "      sample = 1024;", 0);
	expect_err(f, 26, "links[0].protocol.sample: unknown key");
	conf_with(f, 21, "      eve = \"pns\";", 0);
	expect_err(f, 21, "unknown key");
}

static void test_wrong_type(void **state)
{
	struct fix *f = *state;

	conf_with(f, 19, "      mu = \"0.1\";", 0);
	expect_err(f, 19, "links[0].optical.mu: expected a number");
	conf_with(f, 16, "    round_pulses = 1.5e7;", 0);
	assert_int_equal(load(f), QKD_OK);	/* an integral real is an integer */
	conf_with(f, 16, "    round_pulses = 1.5;", 0);
	expect_err(f, 16, "expected a non-negative integer");
	conf_with(f, 16, "    round_pulses = \"many\";", 0);
	expect_err(f, 16, "expected an integer");
	conf_with(f, 2, "  name = 5;", 0);
	expect_err(f, 2, "expected a string");
	conf_with(f, 17, "    optical = 5; xx = {", 0);
	expect_err(f, 17, "optical: expected a group");
	conf_with(f, 20, "      decoy = 0.05;", 0);
	expect_err(f, 20, "expected an array of 2 numbers");
	conf_with(f, 20, "      decoy = [0.05, 0.001, 0.0001];", 0);
	expect_err(f, 20, "expected 2 numbers");
	conf_with(f, 20, "      decoy = (0.05, \"x\");", 0);
	expect_err(f, 20, "expected a number");
	conf_with(f, 7, "links = 3; /*", 29, "*/", 0);
	expect_err(f, 7, "links: expected a list");
	conf_with(f, 10, "    role = true;", 0);
	expect_err(f, 10, "expected a string, got a boolean");
}

static void test_domain(void **state)
{
	struct fix *f = *state;

	/* qkd_link_params_check / qkd_engine_config_check: the link's line. */
	conf_with(f, 19, "      mu = -0.1;", 0);
	expect_err(f, L_LINK, "link 'ab': mu must be > 0");
	conf_with(f, 19, "      mu = 0.1; distance_km = -3;", 0);
	expect_err(f, L_LINK, "distance_km");
	conf_with(f, 26, "      abort_qber = 0.7;", 0);
	expect_err(f, L_LINK, "abort QBER");
	/* The parser's own domains: the value's line. */
	conf_with(f, 26, "      sample_bits = -1;", 0);
	expect_err(f, 26, "sample_bits: must be >= 0");
	conf_with(f, 24, "      frame_bits = 32;", 0);
	expect_err(f, 24, "must be between 64 and 268435456");
	conf_with(f, 25, "      confidence = 1e9;", 0);
	expect_err(f, 25, "confidence: must be in [0, 1000]");
	conf_with(f, 26, "      eps_sec = 1;", 0);
	expect_err(f, 26, "eps_sec: must be in (0, 1)");
	conf_with(f, 19, "      mu = 1e999;", 0);
	expect_err(f, 19, "finite");
	conf_with(f, 16, "    round_pulses = 0;", 0);
	expect_err(f, 16, "round_pulses");
	conf_with(f, 16, "    round_pulses = 4294967297L;", 0);	/* one engine chunk */
	expect_err(f, 16, "round_pulses");
	conf_with(f, 15, "    auth_reserve_bits = 100;", 0);
	expect_err(f, 15, "auth_reserve_bits");
	conf_with(f, 5, "  log_level = \"verbose\";", 0);
	expect_err(f, 5, "not a log level");
	conf_with(f, 10, "    role = \"charlie\";", 0);
	expect_err(f, 10, "not a role");
	conf_with(f, 9, "    name = \"a b\";", 0);
	expect_err(f, 9, "not a name");
}

static void test_address(void **state)
{
	/* Each refused address with the reason the message gives. */
	static const struct { const char *text, *why; } bad[] = {
		{ "127.0.0.1", "no :PORT" },
		{ "example.com:7101", "HOST is not an IPv4 address" },
		{ "127.0.0.1:0", "PORT is out of range 1..65535" },
		{ "127.0.0.1:70000", "PORT is out of range 1..65535" },
		{ "127.0.0.1:+80", "PORT is not a decimal number" },
		{ "127.0.0.1:080", "PORT has a leading zero" },
		{ "127.0.0.1:80x", "PORT is not a decimal number" },
		{ ":80", "no HOST before ':'" },
		{ "127.1:80", "HOST is not an IPv4 address" },
		{ "localhost:", "no PORT after ':'" },
		{ "127.0.0.1: 80", "PORT is not a decimal number" },
		{ "::1:8000", "an IPv6 address goes in brackets: [ADDRESS]:PORT" },
		{ "::1", "an IPv6 address goes in brackets" },
		{ "[::1", "'[' without its closing ']'" },
		{ "[::1]", "no :PORT after ']'" },
		{ "[::1]8000", "expected ':' after ']'" },
		{ "[::1]:", "no PORT after ':'" },
		{ "[::1]:0", "PORT is out of range 1..65535" },
		{ "[::1]:65536", "PORT is out of range 1..65535" },
		{ "[]:8000", "nothing between '[' and ']'" },
		{ "[::g]:8000", "not an IPv6 address between '[' and ']'" },
		{ "[1:2:3:4:5:6:7:8:9]:8000", "not an IPv6 address" },
		{ "[127.0.0.1]:8000", "brackets are for IPv6 addresses" },
		{ "[localhost]:8000", "not an IPv6 address" },
		{ "[fe80::1%lo]:8000", "a zone index (%...) is not supported" },
		{ "[::ffff:127.0.0.1]:8000", "an IPv4-mapped IPv6 address" },
		{ "", "empty" },
	};
	static const struct { const char *text, *canonical; } good[] = {
		{ "[::1]:7101", "[::1]:7101" },
		{ "[0:0:0:0:0:0:0:1]:7101", "[::1]:7101" },
		{ "[2001:DB8::A]:1", "[2001:db8::a]:1" },
		{ "[::]:65535", "[::]:65535" },
		{ "localhost:7201", "127.0.0.1:7201" },
	};
	struct fix *f = *state;
	char line[128], want[160];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(line, sizeof line, "    classical = \"%s\";", bad[i].text);
		snprintf(want, sizeof want, "links[0].classical: '%s' is not HOST:PORT: %s",
			 bad[i].text, bad[i].why);
		conf_with(f, 11, line, 0);
		expect_err(f, 11, want);
	}
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		snprintf(line, sizeof line, "    fiber = \"%s\";", good[i].text);
		conf_with(f, 12, line, 0);
		if (load(f) != QKD_OK)
			fail_msg("%s: %s", good[i].text, f->err);
		assert_string_equal(f->cfg.links[0].fiber.text, good[i].canonical);
	}
	conf_with(f, 12, "    fiber = \"127.0.0.1:7101\";", 0);
	expect_err(f, L_LINK, "different");
	conf_with(f, 12, "    fiber = \"localhost:7101\";", 0);
	expect_err(f, L_LINK, "different");
	/* One address, however written. */
	conf_with(f, 11, "    classical = \"[::1]:7101\";", 12, "    fiber = \"[0::1]:7101\";", 0);
	expect_err(f, L_LINK, "different");
	/* The same port on ::1 and 127.0.0.1 are two sockets. */
	conf_with(f, 11, "    classical = \"[::1]:7101\";", 12, "    fiber = \"127.0.0.1:7101\";", 0);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
}

static void test_files(void **state)
{
	struct fix *f = *state;

	conf_with(f, 14, "    auth_key = \"nokey.key\";", 0);
	expect_err(f, 14, "nokey.key: no such file");
	conf_with(f, 14, "    auth_key = \"short.key\";", 0);
	expect_err(f, 14, "short.key: holds 100 bytes, at least 4096");
	conf_with(f, 14, "    auth_key = \".\";", 0);
	expect_err(f, 14, "not a regular file");
	conf_with(f, 14, "    auth_key = \"\";", 0);
	expect_err(f, 14, "must not be empty");
	if (geteuid() != 0) {	/* root reads anything */
		char key[PATH_MAX + 16];

		snprintf(key, sizeof key, "%s/ab.key", f->dir);
		assert_int_equal(chmod(key, 0), 0);
		conf_with(f, 0);
		expect_err(f, 14, "cannot be read");
		assert_int_equal(chmod(key, 0600), 0);
	}
	conf_with(f, 13, "    store = \"nodir/alice-ab.db\";", 0);
	expect_err(f, 13, "nodir: no such file");
	conf_with(f, 13, "    store = \"ab.key/alice-ab.db\";", 0);
	expect_err(f, 13, "not a directory");
	conf_with(f, 13, "    store = \".\";", 0);
	expect_err(f, 13, "is a directory");
	conf_with(f, 3, "  status = \"nodir/alice.sock\";", 0);
	expect_err(f, 3, "status: ");
	conf_with(f, 4, "  log_file = \"nodir/alice.log\";", 0);
	expect_err(f, 4, "log_file: ");
	conf_with(f, 3, "  status = \"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\";", 0);
	expect_err(f, 3, "unix socket");
}

static void test_missing(void **state)
{
	struct fix *f = *state;
	char conf[PATH_MAX + 32];

	conf_with(f, 13, "", 0);
	expect_err(f, L_LINK, "links[0].store: required key is missing");
	conf_with(f, 2, "", 0);
	expect_err(f, 1, "node.name: required key is missing");
	write_file(f->conf, "links = ();\n", 12);
	expect_err(f, 0, "node: required group is missing");
	conf_with(f, 8, "", 9, "", 10, "", 11, "", 12, "", 13, "", 14, "", 15, "", 16, "",
		  17, "", 18, "", 19, "", 20, "", 21, "", 22, "", 23, "", 24, "", 25, "",
		  26, "", 27, "", 28, "", 0);
	expect_err(f, 7, "1 to 16");	/* no links */
	conf_with(f, 7, "", 8, "", 9, "", 10, "", 11, "", 12, "", 13, "", 14, "", 15, "",
		  16, "", 17, "", 18, "", 19, "", 20, "", 21, "", 22, "", 23, "", 24, "",
		  25, "", 26, "", 27, "", 28, "", 29, "", 0);
	expect_err(f, 0, "links: required list is missing");
	snprintf(conf, sizeof conf, "%s/absent.conf", f->dir);
	assert_int_equal(qkd_node_config_load(conf, &f->cfg, f->err, sizeof f->err), QKD_ERR_IO);
	assert_non_null(strstr(f->err, "absent.conf: no such file"));
}

/* A list of n copies of the base link, named l0, l1, ... (dup: all "ab"). */
static void write_links(struct fix *f, int n, bool dup)
{
	char text[32768], key[64];
	size_t used = 0;

	for (size_t i = 0; i < 7; i++)
		used += (size_t)snprintf(text + used, sizeof text - used, "%s\n", base[i]);
	for (int k = 0; k < n; k++) {
		snprintf(key, sizeof key, "k%d.key", k);
		make_key(f, key, 4096);
		used += (size_t)snprintf(text + used, sizeof text - used,
			"  %s{ name = \"%s%d\"; role = \"bob\"; classical = \"127.0.0.1:%d\";\n"
			"    fiber = \"127.0.0.1:%d\"; store = \"s%d.db\"; auth_key = \"%s\"; }\n",
			k > 0 ? "," : "", dup ? "ab" : "l", dup ? 0 : k, 7000 + k, 8000 + k, k, key);
	}
	used += (size_t)snprintf(text + used, sizeof text - used, ");\n");
	assert_true(used < sizeof text);
	write_file(f->conf, text, used);
}

static void test_links(void **state)
{
	struct fix *f = *state;

	write_links(f, QKD_NODE_LINKS_MAX, false);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_int_equal(f->cfg.nlinks, QKD_NODE_LINKS_MAX);
	write_links(f, QKD_NODE_LINKS_MAX + 1, false);
	expect_err(f, 7, "17 links: a node has 1 to 16");
	write_links(f, 3, true);	/* the second link (lines 10-11) repeats "ab0" */
	expect_err(f, 10, "link name 'ab0' is already used by links[0]");
	/* Two links sharing a key file would reuse its one-time pads. */
	conf_with(f, 28, "  },{ name = \"cd\"; role = \"bob\"; classical = \"127.0.0.1:7102\";",
		  29, "    fiber = \"127.0.0.1:7202\"; store = \"cd.db\"; auth_key = \"ab.key\"; });", 0);
	expect_err(f, 28, "links[1]: auth_key");
	conf_with(f, 28, "  },{ name = \"cd\"; role = \"bob\"; classical = \"127.0.0.1:7102\";",
		  29, "    fiber = \"127.0.0.1:7202\"; store = \"alice-ab.db\"; auth_key = \"cd.key\"; });", 0);
	expect_err(f, 28, "links[1]: store");
}

static void test_decoy_errors(void **state)
{
	struct fix *f = *state;

	conf_with(f, 21, "      decoy_probs = [0.5, 0.2, 0.2];", 0);
	expect_err(f, L_LINK, "sum to 1");
	conf_with(f, 20, "      decoy_probs = [0.8, 0.15, 0.05];", 0);
	expect_err(f, 20, "decoy_probs: needs optical.decoy");
	conf_with(f, 20, "", 25, "      defense = \"decoy\";", 0);
	expect_err(f, L_LINK, "defense decoy needs optical.decoy");
	conf_with(f, 20, "      decoy = [0.2, 0.001];", 0);
	expect_err(f, L_LINK, "decoy intensities");
	conf_with(f, 25, "      defense = \"decoy\";", 0);
	assert_int_equal(load(f), QKD_OK);
	assert_true(f->cfg.links[0].engine.decoy.mu[1] == 0.05);
}

/* The free-space channel's fields (docs/config.md, optical-model.md 1a). */
static void test_free_space(void **state)
{
	struct fix *f = *state;
	const struct qkd_link_params *o = &f->cfg.links[0].optical;

	conf_with(f, 19, "      mu = 0.1; channel = \"free-space\"; tx_aperture_m = 0.03;"
		  " rx_aperture_m = 0.2; beam_divergence = 1.5e-5; atmos_loss_db_per_km = 0.3;"
		  " background_day = 2e-4; background_night = 3e-7; daylight = true;", 0);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_int_equal(o->channel, QKD_CHANNEL_FREE_SPACE);
	assert_true(o->tx_aperture_m == 0.03 && o->rx_aperture_m == 0.2);
	assert_true(o->beam_divergence == 1.5e-5 && o->atmos_loss_db_per_km == 0.3);
	assert_true(o->background_day == 2e-4 && o->background_night == 3e-7 && o->daylight);
	conf_with(f, 19, "      mu = 0.1;", 0);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_int_equal(o->channel, QKD_CHANNEL_FIBER);
	assert_false(o->daylight);
	conf_with(f, 19, "      mu = 0.1; channel = \"air\";", 0);
	expect_err(f, 19, "'air' is not a channel (fiber or free-space)");
	conf_with(f, 19, "      mu = 0.1; channel = \"free-space\"; beam_divergence = -1e-6;", 0);
	expect_err(f, L_LINK, "beam_divergence must be >= 0");
	conf_with(f, 19, "      mu = 0.1; channel = \"free-space\"; background_night = 1.5;", 0);
	expect_err(f, L_LINK, "background_night must be <= 1");
	conf_with(f, 19, "      mu = 0.1; daylight = 1;", 0);
	expect_err(f, 19, "daylight: expected true or false");
}

static void test_names(void **state)
{
	struct fix *f = *state;

	conf_with(f, 24, "      ec = \"ldpc\";", 0);
	expect_err(f, 24, "'ldpc' is not an error-correction code (cascade");
	conf_with(f, 25, "      defense = \"koashi\";", 0);
	expect_err(f, 25, "'koashi' is not a defense function");
	conf_with(f, 18, "      source = \"entangled\";", 0);
	expect_err(f, 18, "weak-coherent source only");
	conf_with(f, 18, "      source = \"spdc\";", 0);
	expect_err(f, 18, "refused");
	conf_with(f, 18, "      source = \"laser\";", 0);
	expect_err(f, 18, "not a source");
	conf_with(f, 18, "      source = \"wcp\";", 0);
	assert_int_equal(load(f), QKD_OK);
}

/* node.id defaults to the name and reaches every link; a link's peer is
 * optional, a name, and never the node's own id. */
static void test_node_ids(void **state)
{
	struct fix *f = *state;

	conf_with(f, 0);
	assert_int_equal(load(f), QKD_OK);
	assert_string_equal(f->cfg.id, "alice");
	assert_string_equal(f->cfg.links[0].node_id, "alice");
	assert_string_equal(f->cfg.links[0].peer, "");
	conf_with(f, 4, "  id = \"node-7\";", 9, "    name = \"ab\"; peer = \"bob.east\";", 0);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_string_equal(f->cfg.id, "node-7");
	assert_string_equal(f->cfg.links[0].node_id, "node-7");
	assert_string_equal(f->cfg.links[0].peer, "bob.east");
	conf_with(f, 9, "    name = \"ab\"; peer = \"alice\";", 0);
	expect_err(f, L_LINK, "peer 'alice' is this node's own id");
	conf_with(f, 4, "  id = \"-x\";", 0);
	expect_err(f, 4, "'-x' is not a name");
	conf_with(f, 9, "    name = \"ab\"; peer = 7;", 0);
	expect_err(f, 9, "peer");
}

/* ---- the kme group ---- */

#define LINK_CD1 "  },{ name = \"cd\"; role = \"bob\"; classical = \"127.0.0.1:7102\";"
#define LINK_CD2 "    fiber = \"127.0.0.1:7202\"; store = \"cd.db\"; auth_key = \"cd.key\"; });"

static void check_sae(const struct qkd_node_sae *e, const char *id, const char *cn, int link,
		      const char *kme, unsigned line)
{
	assert_string_equal(e->id, id);
	assert_string_equal(e->cn, cn);
	assert_int_equal(e->link, link);
	assert_string_equal(e->kme_id, kme);
	assert_int_equal(e->line, line);
}

static void test_kme_full(void **state)
{
	struct fix *f = *state;
	const struct qkd_node_kme *k = &f->cfg.kme;
	char cert[PATH_MAX + 64];

	/* Two links, so that a remote SAE's link index is not always 0; the
	 * certificate given absolute, the others relative. */
	snprintf(cert, sizeof cert, "  cert = \"%s/pki/server.pem\";", f->dir);
	kme_with(f, 28, LINK_CD1, 29, LINK_CD2, 33, cert,
		 42, "    { id = \"SAE_B\"; link = \"ab\"; kme = \"KME_B\"; },",
		 43, "    { id = \"SAE_C\"; link = \"cd\"; kme = \"KME_C\"; }, { id = \"SAE_D\"; } );",
		 44, "};", 0);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_int_equal(f->cfg.nlinks, 2);
	assert_true(k->enabled);
	assert_int_equal(k->line, L_KME);
	assert_string_equal(k->id, "KME_A");
	assert_string_equal(k->listen.text, "127.0.0.1:8443");
	assert_int_equal(qkd_netaddr_port(&k->listen.sa), 8443);
	path_in(f, "pki/server.pem", k->cert);
	path_in(f, "pki/server.key", k->key);
	path_in(f, "pki/ca.pem", k->ca);
	assert_int_equal(k->key_size, 512);
	assert_int_equal(k->min_key_size, 128);
	assert_int_equal(k->max_key_size, 4096);
	assert_int_equal(k->max_keys_per_request, 64);
	assert_int_equal(k->max_connections, 32);
	assert_int_equal(k->idle_timeout_s, 30);
	assert_int_equal(k->per_address_connections, 8);
	assert_int_equal(k->handshake_timeout_s, 3);
	assert_int_equal(k->sync_timeout_s, 20);
	assert_int_equal(k->nsaes, 4);
	check_sae(&k->saes[0], "SAE_A", "sae-a.example", -1, "", L_SAE0);
	check_sae(&k->saes[1], "SAE_B", "", 0, "KME_B", L_SAE1);
	check_sae(&k->saes[2], "SAE_C", "", 1, "KME_C", 43);
	check_sae(&k->saes[3], "SAE_D", "SAE_D", -1, "", 43);
}

static void test_kme_defaults(void **state)
{
	struct fix *f = *state;
	const struct qkd_node_kme *k = &f->cfg.kme;

	kme_with(f, 36, "", 37, "", 38, "", 39, "", 41, "    { id = \"SAE_A\"; },", 0);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_true(k->enabled);
	assert_int_equal(k->key_size, 256);
	assert_int_equal(k->min_key_size, 64);
	assert_int_equal(k->max_key_size, 8192);
	assert_int_equal(k->max_keys_per_request, 128);
	assert_int_equal(k->max_connections, 0);	/* the server's default */
	assert_int_equal(k->idle_timeout_s, 0);
	assert_int_equal(k->per_address_connections, 0);
	assert_int_equal(k->handshake_timeout_s, 0);
	assert_int_equal(k->sync_timeout_s, 10);
	assert_int_equal(k->key_ttl_s, 3600);
	assert_int_equal(k->nsaes, 2);
	check_sae(&k->saes[0], "SAE_A", "SAE_A", -1, "", L_SAE0);	/* cn = id */
	check_sae(&k->saes[1], "SAE_B", "", 0, "KME_B", L_SAE1);
	/* Remote SAEs are optional to the parser. */
	kme_with(f, 42, "    { id = \"SAE_B\"; }", 0);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_int_equal(k->saes[1].link, -1);
}

/* The group anywhere in the file: it is read after the links all the same. */
static void test_kme_first(void **state)
{
	struct fix *f = *state;
	char text[8192];
	size_t used = 0;

	for (size_t i = 0; i < NKME; i++)
		used += (size_t)snprintf(text + used, sizeof text - used, "%s\n", kme_base[i]);
	for (size_t i = 0; i < NBASE; i++)
		used += (size_t)snprintf(text + used, sizeof text - used, "%s\n", base[i]);
	assert_true(used < sizeof text);
	write_file(f->conf, text, used);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_int_equal(f->cfg.kme.line, 1);
	assert_int_equal(f->cfg.kme.saes[1].link, 0);
}

static void test_kme_missing(void **state)
{
	static const struct { int line; const char *key; } req[] = {
		{ 31, "id" }, { 32, "listen" }, { 33, "cert" }, { 34, "key" }, { 35, "ca" },
	};
	struct fix *f = *state;
	char what[64];

	for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
		kme_with(f, req[i].line, "", 0);
		snprintf(what, sizeof what, "kme.%s: required key is missing", req[i].key);
		expect_err(f, L_KME, what);
	}
	kme_with(f, 40, "", 41, "", 42, "", 43, "", 0);
	expect_err(f, L_KME, "kme.saes: required key is missing");
	kme_with(f, 41, "    { cn = \"sae-a.example\"; },", 0);
	expect_err(f, L_SAE0, "kme.saes[0].id: required key is missing");
}

static void test_kme_ids(void **state)
{
	struct fix *f = *state;
	char line[160], id[80];

	kme_with(f, 31, "  id = \"KME A\";", 0);
	expect_err(f, 31, "kme.id: 'KME A' is not an ID");
	kme_with(f, 31, "  id = \"\";", 0);
	expect_err(f, 31, "kme.id: '' is not an ID");
	kme_with(f, 31, "  id = 5;", 0);
	expect_err(f, 31, "kme.id: expected a string");
	memset(id, 'k', 64);
	id[64] = '\0';
	snprintf(line, sizeof line, "  id = \"%s\";", id);
	kme_with(f, 31, line, 0);
	assert_int_equal(load(f), QKD_OK);		/* 64 characters */
	assert_string_equal(f->cfg.kme.id, id);
	snprintf(line, sizeof line, "  id = \"%sk\";", id);
	kme_with(f, 31, line, 0);
	expect_err(f, 31, "is not an ID");		/* 65 */
	kme_with(f, 31, "  id = \"K.M_E~A-1\";", 0);
	assert_int_equal(load(f), QKD_OK);
	kme_with(f, 41, "    { id = \"SAE/A\"; },", 0);
	expect_err(f, L_SAE0, "kme.saes[0].id: 'SAE/A' is not an ID");
	kme_with(f, 42, "    { id = \"SAE_B\"; link = \"ab\"; kme = \"KME B\"; }", 0);
	expect_err(f, L_SAE1, "kme.saes[1].kme: 'KME B' is not an ID");
}

/* A line of n SAEs "{ id = "S<first+i>"; }, " (local, all distinct). */
static void many_saes(char *out, size_t cap, int first, int n)
{
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < n; i++)
		used += (size_t)snprintf(out + used, cap - used, "{ id = \"S%d\"; }, ", first + i);
	assert_true(used < cap);
}

static void test_kme_saes(void **state)
{
	struct fix *f = *state;
	char line[8192];

	kme_with(f, 42, "    { id = \"SAE_A\"; link = \"ab\"; kme = \"KME_B\"; }", 0);
	expect_err(f, L_SAE1, "kme.saes[1]: SAE ID 'SAE_A' is already used by saes[0]");
	/* A CN given, and one defaulting to the ID. */
	kme_with(f, 42, "    { id = \"SAE_C\"; cn = \"sae-a.example\"; }", 0);
	expect_err(f, L_SAE1, "kme.saes[1]: cn 'sae-a.example' is already used by saes[0]");
	kme_with(f, 42, "    { id = \"sae-a.example\"; }", 0);
	expect_err(f, L_SAE1, "cn 'sae-a.example' is already used");
	/* A remote SAE has no CN here: its ID may equal a local CN. */
	kme_with(f, 42, "    { id = \"sae-a.example\"; link = \"ab\"; kme = \"KME_B\"; }", 0);
	assert_int_equal(load(f), QKD_OK);
	kme_with(f, 41, "    { id = \"SAE_A\"; cn = \"\"; },", 0);
	expect_err(f, L_SAE0, "kme.saes[0].cn: a CN has 1 to 64 bytes, got 0");
	snprintf(line, sizeof line, "    { id = \"SAE_A\"; cn = \"%065d\"; },", 0);
	kme_with(f, 41, line, 0);
	expect_err(f, L_SAE0, "got 65");
	/* Remote: both link and kme, no cn; local: neither. */
	kme_with(f, 42, "    { id = \"SAE_B\"; link = \"ab\"; }", 0);
	expect_err(f, L_SAE1, "kme.saes[1].kme: a remote SAE (one with link) needs the ID of its KME");
	kme_with(f, 42, "    { id = \"SAE_B\"; kme = \"KME_B\"; }", 0);
	expect_err(f, L_SAE1, "kme.saes[1].link: a remote SAE (one with kme) needs the link");
	kme_with(f, 42, "    { id = \"SAE_B\"; link = \"xy\"; kme = \"KME_B\"; }", 0);
	expect_err(f, L_SAE1, "kme.saes[1].link: 'xy' is not the name of a link of this node");
	kme_with(f, 42, "    { id = \"SAE_B\"; link = 0; kme = \"KME_B\"; }", 0);
	expect_err(f, L_SAE1, "kme.saes[1].link: expected a string");
	kme_with(f, 42, "    { id = \"SAE_B\"; cn = \"B\"; link = \"ab\"; }", 0);
	expect_err(f, L_SAE1, "kme.saes[1].link: an SAE with cn is local and has no link or kme");
	kme_with(f, 42, "    { id = \"SAE_B\"; cn = \"B\"; kme = \"KME_B\"; }", 0);
	expect_err(f, L_SAE1, "kme.saes[1].kme: an SAE with cn is local");
	kme_with(f, 42, "    { id = \"SAE_B\"; link = \"ab\"; kme = \"KME_B\"; cn = \"B\"; }", 0);
	expect_err(f, L_SAE1, "an SAE with cn is local");
	kme_with(f, 42, "    { id = \"SAE_B\"; link = \"ab\"; kme = \"KME_A\"; }", 0);
	expect_err(f, L_SAE1, "kme.saes[1].kme: 'KME_A' is this KME's own ID");
	/* One link has one KME at its other end. */
	kme_with(f, 43, "    , { id = \"SAE_C\"; link = \"ab\"; kme = \"KME_C\"; } );", 0);
	expect_err(f, 43, "kme.saes[2]: kme 'KME_C': link 'ab' reaches KME 'KME_B' (saes[1])");
	kme_with(f, 43, "    , { id = \"SAE_C\"; link = \"ab\"; kme = \"KME_B\"; } );", 0);
	assert_int_equal(load(f), QKD_OK);
	/* At least one local SAE, at most QKD_NODE_SAES_MAX in all. */
	kme_with(f, 41, "    { id = \"SAE_C\"; link = \"ab\"; kme = \"KME_B\"; },", 0);
	expect_err(f, 40, "kme.saes: no local SAE");
	kme_with(f, 41, "", 42, "", 0);
	expect_err(f, 40, "kme.saes: 0 SAEs: a KME has 1 to 64");
	many_saes(line, sizeof line, 0, QKD_NODE_SAES_MAX - 1);
	kme_with(f, 41, line, 0);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_int_equal(f->cfg.kme.nsaes, QKD_NODE_SAES_MAX);
	assert_int_equal(f->cfg.kme.saes[QKD_NODE_SAES_MAX - 1].link, 0);
	many_saes(line, sizeof line, 0, QKD_NODE_SAES_MAX);
	kme_with(f, 41, line, 0);
	expect_err(f, 40, "kme.saes: 65 SAEs: a KME has 1 to 64");
	/* Shapes. */
	kme_with(f, 40, "  saes = 5; /*", 43, "  */", 0);
	expect_err(f, 40, "kme.saes: expected a list");
	/* libconfig gives a scalar the line of the token after it. */
	kme_with(f, 42, "    \"SAE_B\" );", 43, "", 0);
	expect_err(f, L_SAE1, "kme.saes[1]: expected a group");
	kme_with(f, 41, "    { id = \"SAE_A\"; name = \"a\"; },", 0);
	expect_err(f, L_SAE0, "kme.saes[0].name: unknown key");
}

static void test_kme_sizes(void **state)
{
	struct fix *f = *state;

	/* qkd_etsi014_limits_check's rules, at the group's line. */
	kme_with(f, 36, "  key_size = 100; min_key_size = 64;", 0);
	expect_err(f, L_KME, "kme: key sizes must be multiples of 8 bits");
	kme_with(f, 37, "  max_key_size = 4100; max_keys_per_request = 64;", 0);
	expect_err(f, L_KME, "multiples of 8");
	kme_with(f, 36, "  key_size = 512; min_key_size = 0;", 0);
	expect_err(f, L_KME, "kme: key sizes must satisfy 8 <= min <= default <= max <= 65536");
	kme_with(f, 36, "  key_size = 128; min_key_size = 256;", 0);
	expect_err(f, L_KME, "8 <= min <= default");
	kme_with(f, 36, "  key_size = 8192; min_key_size = 64;", 0);	/* above max 4096 */
	expect_err(f, L_KME, "8 <= min <= default");
	kme_with(f, 36, "  key_size = 512; min_key_size = 64;",
		 37, "  max_key_size = 65544; max_keys_per_request = 64;", 0);
	expect_err(f, L_KME, "8 <= min <= default");
	kme_with(f, 37, "  max_key_size = 4096; max_keys_per_request = 0;", 0);
	expect_err(f, L_KME, "kme: max_key_per_request must be 1 .. 1024");
	kme_with(f, 37, "  max_key_size = 4096; max_keys_per_request = 1025;", 0);
	expect_err(f, L_KME, "1 .. 1024");
	/* The bounds themselves are fine. */
	kme_with(f, 36, "  key_size = 8; min_key_size = 8;",
		 37, "  max_key_size = 65536; max_keys_per_request = 1024;", 0);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_int_equal(f->cfg.kme.max_key_size, 65536);
	kme_with(f, 37, "  max_key_size = 4096; max_keys_per_request = 1;", 0);
	assert_int_equal(load(f), QKD_OK);
	/* Values that are no uint32 at all: the value's line. */
	kme_with(f, 36, "  key_size = 4294967304L; min_key_size = 64;", 0);
	expect_err(f, 36, "kme.key_size: must be at most 4294967295");
	kme_with(f, 36, "  key_size = -8; min_key_size = 64;", 0);
	expect_err(f, 36, "kme.key_size: must be >= 0");
	kme_with(f, 36, "  key_size = \"256\"; min_key_size = 64;", 0);
	expect_err(f, 36, "kme.key_size: expected an integer");
	/* The server's settings. */
	kme_with(f, 39, "  sync_timeout = 0;", 0);
	expect_err(f, 39, "kme.sync_timeout: must be between 1 and 300");
	kme_with(f, 39, "  sync_timeout = 301;", 0);
	expect_err(f, 39, "kme.sync_timeout: must be between 1 and 300");
	kme_with(f, 39, "  sync_timeout = 300;", 0);
	assert_int_equal(load(f), QKD_OK);
	/* key_ttl: 0 (never) or longer than sync_timeout, 30 days at most */
	kme_with(f, 39, "  sync_timeout = 20; key_ttl = 0;", 0);
	assert_int_equal(load(f), QKD_OK);
	assert_int_equal(f->cfg.kme.key_ttl_s, 0);
	kme_with(f, 39, "  sync_timeout = 20; key_ttl = 21;", 0);
	assert_int_equal(load(f), QKD_OK);
	assert_int_equal(f->cfg.kme.key_ttl_s, 21);
	kme_with(f, 39, "  sync_timeout = 20; key_ttl = 20;", 0);
	expect_err(f, L_KME, "kme: key_ttl (20 s) must be 0 (never expire) or longer than "
		   "sync_timeout (20 s)");
	kme_with(f, 39, "  sync_timeout = 20; key_ttl = 2592001;", 0);
	expect_err(f, 39, "kme.key_ttl: must be between 0 and 2592000");
	kme_with(f, 39, "  sync_timeout = 20; key_ttl = -1;", 0);
	expect_err(f, 39, "kme.key_ttl");
	kme_with(f, 38, "  max_connections = 65537; idle_timeout = 30;", 0);
	expect_err(f, 38, "kme.max_connections: must be between 0 and 65536");
	kme_with(f, 38, "  max_connections = 0; idle_timeout = 86401;", 0);
	expect_err(f, 38, "kme.idle_timeout: must be between 0 and 86400");
	kme_with(f, 38, "  per_address_connections = 65537;", 0);
	expect_err(f, 38, "kme.per_address_connections: must be between 0 and 65536");
	kme_with(f, 38, "  handshake_timeout = 3601;", 0);
	expect_err(f, 38, "kme.handshake_timeout: must be between 0 and 3600");
	kme_with(f, 38, "  handshake_timeout = 3600;", 0);
	assert_int_equal(load(f), QKD_OK);
	/* One address cannot have more than all: the group's line. */
	kme_with(f, 38, "  max_connections = 4; per_address_connections = 5;", 0);
	expect_err(f, L_KME, "kme: per_address_connections (5) exceeds max_connections (4)");
	kme_with(f, 38, "  per_address_connections = 257;", 0);	/* the default: 256 */
	expect_err(f, L_KME, "exceeds max_connections (256)");
	kme_with(f, 38, "  max_connections = 4; per_address_connections = 4;", 0);
	assert_int_equal(load(f), QKD_OK);
}

static void test_kme_files(void **state)
{
	struct fix *f = *state;
	char path[PATH_MAX + 32];

	kme_with(f, 33, "  cert = \"pki/nocert.pem\";", 0);
	expect_err(f, 33, "kme.cert: ");
	assert_non_null(strstr(f->err, "pki/nocert.pem: no such file"));
	kme_with(f, 35, "  ca = \"nodir/ca.pem\";", 0);
	expect_err(f, 35, "kme.ca: ");
	assert_non_null(strstr(f->err, "no such file"));
	kme_with(f, 35, "  ca = \"pki\";", 0);
	expect_err(f, 35, "kme.ca: ");
	assert_non_null(strstr(f->err, "pki: not a regular file"));
	kme_with(f, 33, "  cert = \"\";", 0);
	expect_err(f, 33, "kme.cert: must not be empty");
	kme_with(f, 33, "  cert = 1;", 0);
	expect_err(f, 33, "kme.cert: expected a string");
	snprintf(path, sizeof path, "%s/pki/empty.key", f->dir);
	write_file(path, "", 0);
	kme_with(f, 34, "  key = \"pki/empty.key\";", 0);
	expect_err(f, 34, "kme.key: ");
	assert_non_null(strstr(f->err, "empty.key: is empty"));
	if (geteuid() != 0) {	/* root reads anything */
		snprintf(path, sizeof path, "%s/pki/server.key", f->dir);
		assert_int_equal(chmod(path, 0), 0);
		kme_with(f, 0);
		expect_err(f, 34, "kme.key: ");
		assert_non_null(strstr(f->err, "server.key: cannot be read"));
		assert_int_equal(chmod(path, 0600), 0);
	}
	kme_with(f, 0);
	assert_int_equal(load(f), QKD_OK);
}

static void test_kme_listen(void **state)
{
	struct fix *f = *state;

	kme_with(f, 32, "  listen = \"127.0.0.1:7101\";", 0);
	expect_err(f, 32, "kme.listen: 127.0.0.1:7101 is also the classical address "
		   "127.0.0.1:7101 of link 'ab'");
	/* localhost is 127.0.0.1. */
	kme_with(f, 32, "  listen = \"localhost:7201\";", 0);
	expect_err(f, 32, "kme.listen: localhost:7201 is also the fiber address "
		   "127.0.0.1:7201 of link 'ab'");
	kme_with(f, 28, LINK_CD1, 29, LINK_CD2, 32, "  listen = \"127.0.0.1:7202\";", 0);
	expect_err(f, 32, "fiber address 127.0.0.1:7202 of link 'cd'");
	kme_with(f, 32, "  listen = \"127.0.0.1:99999\";", 0);
	expect_err(f, 32, "kme.listen: '127.0.0.1:99999' is not HOST:PORT");
	kme_with(f, 32, "  listen = \"10.0.0.1:7101\";", 0);	/* another host */
	assert_int_equal(load(f), QKD_OK);
	assert_string_equal(f->cfg.kme.listen.text, "10.0.0.1:7101");
	assert_int_equal(qkd_netaddr_port(&f->cfg.kme.listen.sa), 7101);
	/* IPv6: [::1]:7101 is not 127.0.0.1:7101, but the same IPv6 address
	 * however written is. */
	kme_with(f, 32, "  listen = \"[::1]:7101\";", 0);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_string_equal(f->cfg.kme.listen.text, "[::1]:7101");
	assert_int_equal(qkd_netaddr_family(&f->cfg.kme.listen.sa), AF_INET6);
	kme_with(f, 11, "    classical = \"[::1]:7101\";", 32, "  listen = \"[0:0::1]:7101\";", 0);
	expect_err(f, 32, "kme.listen: [0:0::1]:7101 is also the classical address [::1]:7101 "
		   "of link 'ab'");
	kme_with(f, 32, "  listen = \"[::1:8443\";", 0);
	expect_err(f, 32, "kme.listen: '[::1:8443' is not HOST:PORT: '[' without its closing ']'");
}

/* node.metrics: off by default, IPv4 or IPv6, refused when it is not an
 * address or when it is another address of the file (compared parsed, after
 * the links and the kme group that come later in the file). */
static void test_metrics_addr(void **state)
{
	struct fix *f = *state;

	kme_with(f, 0);
	assert_int_equal(load(f), QKD_OK);
	assert_int_equal(f->cfg.metrics.sa.len, 0);
	kme_with(f, 5, "  log_level = \"info\"; metrics = \"127.0.0.1:9101\";", 0);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_string_equal(f->cfg.metrics.text, "127.0.0.1:9101");
	assert_int_equal(f->cfg.metrics_line, 5);
	conf_with(f, 4, "  metrics = \"[0:0::1]:9102\";", 0);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_string_equal(f->cfg.metrics.text, "[::1]:9102");
	assert_int_equal(qkd_netaddr_family(&f->cfg.metrics.sa), AF_INET6);
	conf_with(f, 4, "  metrics = \"::1:9102\";", 0);
	expect_err(f, 4, "node.metrics: '::1:9102' is not HOST:PORT: ");
	conf_with(f, 4, "  metrics = \"127.0.0.1:0\";", 0);
	expect_err(f, 4, "node.metrics: '127.0.0.1:0' is not HOST:PORT");
	conf_with(f, 4, "  metrics = 9101;", 0);
	expect_err(f, 4, "node.metrics: ");
	conf_with(f, 4, "  metrics = \"localhost:7101\";", 0);
	expect_err(f, 4, "node.metrics: 127.0.0.1:7101 is also the classical address of link 'ab'");
	conf_with(f, 4, "  metrics = \"127.0.0.1:7202\";", 28, LINK_CD1, 29, LINK_CD2, 0);
	expect_err(f, 4, "node.metrics: 127.0.0.1:7202 is also the fiber address of link 'cd'");
	kme_with(f, 4, "  metrics = \"127.0.0.1:8443\";", 0);
	expect_err(f, 4, "node.metrics: 127.0.0.1:8443 is also the key manager's kme.listen");
	/* The same port on another address family is another address. */
	kme_with(f, 4, "  metrics = \"[::1]:8443\";", 0);
	assert_int_equal(load(f), QKD_OK);
}

static void test_kme_unknown(void **state)
{
	struct fix *f = *state;

	kme_with(f, 39, "  sync_timeout = 20; timeout = 5;", 0);
	expect_err(f, 39, "kme.timeout: unknown key");
	kme_with(f, 30, "kme = 5; /*", 44, "*/", 0);
	expect_err(f, 30, "kme: expected a group");
	kme_with(f, 30, "kmes = {", 0);
	expect_err(f, 30, "kmes: unknown key (the file holds node, links, kme and relay)");
	kme_with(f, 44, "}; kme = 1;", 0);
	expect_err(f, 44, "duplicate");
}

/* The relay group: its keys, their domains, the default store. */
static void test_relay(void **state)
{
	struct fix *f = *state;
	const char *r;

	kme_with(f, 0);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_int_equal(f->cfg.relay.line, 0);
	assert_int_equal(f->cfg.relay.paths, 1);
	assert_true(f->cfg.relay.timeout_s == 5.0);
	r = strrchr(f->cfg.relay.store, '/');
	assert_non_null(r);
	assert_string_equal(r, "/alice-relay.db");
	kme_with(f, 44, "}; relay = { paths = 2; timeout = 2.5; store = \"relayed.db\"; };",
		 0);
	if (load(f) != QKD_OK)
		fail_msg("%s", f->err);
	assert_int_equal(f->cfg.relay.line, 44);
	assert_int_equal(f->cfg.relay.paths, 2);
	assert_true(f->cfg.relay.timeout_s == 2.5);
	path_in(f, "relayed.db", f->cfg.relay.store);
	kme_with(f, 44, "}; relay = { paths = 3; };", 0);
	expect_err(f, 44, "relay.paths");
	kme_with(f, 44, "}; relay = { timeout = 0.1; };", 0);
	expect_err(f, 44, "relay.timeout");
	kme_with(f, 44, "}; relay = { hops = 2; };", 0);
	expect_err(f, 44, "relay.hops: unknown key");
	kme_with(f, 44, "}; relay = { store = \"alice-ab.db\"; };", 0);
	expect_err(f, 44, "is also link");
}

/* ---- the examples ---- */

/* examples/ of the source tree, from this file's path (the tests run from
 * the top of the tree, where __FILE__ is relative). */
static void examples_dir(char *out, size_t n)
{
	const char *me = __FILE__, *p = strstr(me, "tests/unit/");

	assert_non_null(p);
	snprintf(out, n, "%.*sexamples", (int)(p - me), me);
}

static void copy_example(const struct fix *f, const char *name)
{
	char src[PATH_MAX], dst[PATH_MAX + 64], buf[8192];
	FILE *in;
	size_t len;

	examples_dir(src, sizeof src - 32);
	strcat(src, "/");
	strcat(src, name);
	in = fopen(src, "r");
	if (in == NULL)
		fail_msg("%s: cannot open (run the tests from the top of the tree)", src);
	len = fread(buf, 1, sizeof buf, in);
	assert_true(len > 0 && len < sizeof buf);
	fclose(in);
	snprintf(dst, sizeof dst, "%s/%s", f->dir, name);
	write_file(dst, buf, len);
}

/* The two KMEs of the examples: each serves its own SAE and reaches the
 * other's through link ab, with the stub pki/ of make_pki in place of the
 * one make-test-pki.sh makes. */
static void check_example_kmes(const struct fix *f, const struct qkd_node_kme *a,
			       const struct qkd_node_kme *b)
{
	assert_true(a->enabled && b->enabled);
	assert_string_equal(a->id, "KME_A");
	assert_string_equal(b->id, "KME_B");
	assert_string_equal(a->listen.text, "127.0.0.1:8443");
	assert_string_equal(b->listen.text, "127.0.0.1:8444");
	path_in(f, "pki/server.pem", a->cert);
	path_in(f, "pki/server.key", a->key);
	path_in(f, "pki/ca.pem", a->ca);
	assert_string_equal(a->cert, b->cert);
	assert_int_equal(a->nsaes, 2);
	assert_int_equal(b->nsaes, 2);
	check_sae(&a->saes[0], "SAE_A", "SAE_A", -1, "", a->saes[0].line);
	check_sae(&a->saes[1], "SAE_B", "", 0, "KME_B", a->saes[1].line);
	check_sae(&b->saes[0], "SAE_B", "SAE_B", -1, "", b->saes[0].line);
	check_sae(&b->saes[1], "SAE_A", "", 0, "KME_A", b->saes[1].line);
	assert_true(a->saes[0].line > a->line && a->saes[1].line > a->saes[0].line);
	/* Both ends serve the same limits. */
	assert_true(a->key_size == b->key_size && a->min_key_size == b->min_key_size &&
		    a->max_key_size == b->max_key_size &&
		    a->max_keys_per_request == b->max_keys_per_request &&
		    a->sync_timeout_s == b->sync_timeout_s);
}

static void test_examples(void **state)
{
	struct fix *f = *state;
	struct qkd_node_config *bob = calloc(1, sizeof *bob);
	const struct qkd_link_config *a = &f->cfg.links[0], *b = &bob->links[0];
	char cwd[PATH_MAX];

	assert_non_null(bob);
	copy_example(f, "alice.conf");
	copy_example(f, "bob.conf");
	make_key(f, "ab.key", 65536);
	/* Relative config paths: the directory is resolved to an absolute one. */
	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_int_equal(chdir(f->dir), 0);
	if (qkd_node_config_load("alice.conf", &f->cfg, f->err, sizeof f->err) != QKD_OK ||
	    qkd_node_config_load("./bob.conf", bob, f->err, sizeof f->err) != QKD_OK) {
		assert_int_equal(chdir(cwd), 0);
		fail_msg("%s", f->err);
	}
	assert_int_equal(chdir(cwd), 0);
	path_in(f, "alice.sock", f->cfg.status);
	path_in(f, "bob.sock", bob->status);
	path_in(f, "alice-ab.db", a->store);
	path_in(f, "bob-ab.db", b->store);
	path_in(f, "ab.key", a->auth_key);
	assert_string_equal(a->auth_key, b->auth_key);
	/* The two ends of one link. */
	assert_string_equal(a->name, b->name);
	assert_int_equal(a->role, QKD_ROLE_ALICE);
	assert_int_equal(b->role, QKD_ROLE_BOB);
	assert_memory_equal(&a->classical, &b->classical, sizeof a->classical);
	assert_memory_equal(&a->fiber, &b->fiber, sizeof a->fiber);
	assert_string_equal(a->classical.text, "127.0.0.1:7101");
	assert_string_equal(a->fiber.text, "127.0.0.1:7201");
	assert_true(a->round_pulses == b->round_pulses && a->auth_reserve_bits == b->auth_reserve_bits);
	assert_memory_equal(&a->optical, &b->optical, sizeof a->optical);
	assert_memory_equal(&a->engine, &b->engine, sizeof a->engine);
	check_example_kmes(f, &f->cfg.kme, &bob->kme);
	free(bob);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_full), T(test_defaults), T(test_decoy_defaults),
		T(test_syntax), T(test_unknown_key), T(test_wrong_type), T(test_domain),
		T(test_address), T(test_files), T(test_missing), T(test_links),
		T(test_decoy_errors),
		T(test_free_space), T(test_names), T(test_node_ids),
		T(test_kme_full), T(test_kme_defaults), T(test_kme_first), T(test_kme_missing),
		T(test_kme_ids), T(test_kme_saes), T(test_kme_sizes), T(test_kme_files),
		T(test_kme_listen), T(test_metrics_addr), T(test_kme_unknown), T(test_relay), T(test_examples),
	};

	return cmocka_run_group_tests_name("node_config", tests, NULL, NULL);
}
