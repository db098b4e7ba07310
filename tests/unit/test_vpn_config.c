/* test_vpn_config.c - `qkd vpn`'s configuration (qkd/vpn_config.h,
 * lib/vpn/vpn_config*.c, docs/vpn.md "Configuration"): a full example
 * read back field by field, the defaults, the traffic selectors, and
 * every refusal with its FILE:LINE message. Each test writes its files
 * into its own mkdtemp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/vpn_config.h"

struct fix {
	char dir[64];
	char path[128];
	struct qkd_vpn_config cfg;
	char err[512];
};

static void write_file(const struct fix *f, const char *name, const char *text, size_t n)
{
	char p[192];
	FILE *fp;

	snprintf(p, sizeof p, "%s/%s", f->dir, name);
	fp = fopen(p, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof *f);
	static const char psk[] = "0123456789abcdef0123456789abcdef-a shared secret";
	static const char pem[] = "-----BEGIN STUB-----\n";

	assert_non_null(f);
	strcpy(f->dir, "/tmp/qkd-vpncfg.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/gw.conf", f->dir);
	write_file(f, "psk.key", psk, sizeof psk - 1);
	write_file(f, "short.key", psk, 31);
	write_file(f, "ca.pem", pem, sizeof pem - 1);
	write_file(f, "gw.pem", pem, sizeof pem - 1);
	write_file(f, "gw.key", pem, sizeof pem - 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	static const char *const names[] = { "gw.conf", "psk.key", "short.key", "ca.pem",
					     "gw.pem", "gw.key" };
	char p[192];

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", f->dir, names[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static const char gateway[] =
	"gateway = { name = \"gw-a\"; listen = \"127.0.0.1:4500\"; status = \"gw-a.sock\"; };\n"
	"kmes = ( { name = \"kme-a\"; url = \"https://127.0.0.1:8443\"; ca = \"ca.pem\";\n"
	"           cert = \"gw.pem\"; key = \"gw.key\"; } );\n";

/* gateway + kmes + "tunnels = ( { TUNNEL } );" */
static int load_tunnel(struct fix *f, const char *tunnel)
{
	char text[4096];
	int n = snprintf(text, sizeof text, "%stunnels = ( {\n%s\n} );\n", gateway, tunnel);

	write_file(f, "gw.conf", text, (size_t)n);
	return qkd_vpn_config_load(f->path, &f->cfg, f->err, sizeof f->err);
}

static const char base_tunnel[] =
	"name = \"a-b\"; peer = \"127.0.0.2:4500\"; remote_id = \"gw-b\"; psk = \"psk.key\";\n"
	"local_ts = [ \"192.168.1.0/24\" ]; remote_ts = [ \"192.168.2.0/24\" ];\n"
	"kme = \"kme-a\"; peer_sae = \"SAE_GWB\";";

static void test_full(void **state)
{
	struct fix *f = *state;
	const struct qkd_vpn_tunnel *t;
	char text[4096];
	int n = snprintf(text, sizeof text,
		"gateway = { name = \"gw-a\"; listen = \"[::1]:4500\"; status = \"gw-a.sock\";\n"
		"  tun = \"qkdtest0\"; mtu = 1380; log_level = \"debug\"; metrics = \"127.0.0.1:9300\"; };\n"
		"kmes = ( { name = \"kme-a\"; url = \"https://127.0.0.1:8443\"; ca = \"ca.pem\";\n"
		"           cert = \"gw.pem\"; key = \"gw.key\"; } );\n"
		"tunnels = (\n"
		" { name = \"a-b\"; peer = \"[::1]:4501\"; initiate = false; local_id = \"east\";\n"
		"   remote_id = \"west\"; psk = \"psk.key\";\n"
		"   local_ts = [ \"192.168.1.0/24\", \"fd01::/64\" ]; remote_ts = [ \"10.2.0.0/16\" ];\n"
		"   esp = \"aes128gcm16\"; ike = \"aes128gcm16\"; dh = [ \"modp2048\", \"x25519\" ];\n"
		"   rekey = 5.0; ike_rekey = 600.0; lifetime_seconds = [ 5, 12 ];\n"
		"   lifetime_kbytes = [ 1000000, 2000000 ]; lifetime_packets = [ 0, 1000000000 ];\n"
		"   qkd = \"preferred\"; kme = \"kme-a\"; peer_sae = \"SAE_GWB\"; key_wait = 30.0; },\n"
		" { name = \"a-c\"; peer = \"[::1]:4502\"; remote_id = \"gw-c\"; psk = \"psk.key\";\n"
		"   local_ts = [ \"192.168.1.0/24\" ]; remote_ts = [ \"10.3.0.0/16\" ]; qkd = \"off\"; }\n"
		");\n");

	write_file(f, "gw.conf", text, (size_t)n);
	assert_int_equal(qkd_vpn_config_load(f->path, &f->cfg, f->err, sizeof f->err), QKD_OK);
	assert_string_equal(f->cfg.name, "gw-a");
	assert_string_equal(f->cfg.listen.text, "[::1]:4500");
	assert_string_equal(f->cfg.tun, "qkdtest0");
	assert_int_equal(f->cfg.mtu, 1380);
	assert_int_equal(f->cfg.log_level, QKD_LOG_DEBUG);
	assert_non_null(strstr(f->cfg.status, "/gw-a.sock"));
	assert_int_equal(f->cfg.n_kmes, 1);
	assert_string_equal(f->cfg.kmes[0].url, "https://127.0.0.1:8443");
	assert_non_null(strstr(f->cfg.kmes[0].cert, "/gw.pem"));
	assert_int_equal(f->cfg.n_tunnels, 2);
	t = &f->cfg.tunnels[0];
	assert_false(t->initiate);
	assert_string_equal(t->local_id, "east");
	assert_int_equal(t->n_local_ts, 2);
	assert_int_equal(t->local_ts[1].family, 6);
	assert_int_equal(t->local_ts[1].len, 64);
	assert_int_equal(t->esp.key_bits, 128);
	assert_int_equal(t->ike.key_bits, 128);
	assert_int_equal(t->dh, QKD_VPN_DH_MODP2048 | QKD_VPN_DH_X25519);
	assert_int_equal(t->first_dh, QKD_VPN_DH_MODP2048);
	assert_true(t->rekey_s == 5.0);
	assert_int_equal(t->seconds.soft, 5);
	assert_int_equal(t->seconds.hard, 12);
	assert_int_equal(t->kbytes.hard, 2000000);
	assert_int_equal(t->packets.soft, 0);
	assert_int_equal(t->qkd, QKD_VPN_QKD_PREFERRED);
	assert_int_equal(t->kme_index, 0);
	assert_true(t->key_wait_s == 30.0);
	/* The second: the defaults. */
	t = &f->cfg.tunnels[1];
	assert_true(t->initiate);
	assert_string_equal(t->local_id, "gw-a");
	assert_int_equal(t->esp.key_bits, 256);
	assert_int_equal(t->first_dh, QKD_VPN_DH_X25519);
	assert_true(t->rekey_s == 60.0);	/* BBN's "about once a minute" */
	assert_int_equal(t->seconds.soft, 60);
	assert_int_equal(t->seconds.hard, 120);
	assert_int_equal(t->qkd, QKD_VPN_QKD_OFF);
	assert_true(t->key_wait_s == 300.0);
}

static void test_defaults(void **state)
{
	struct fix *f = *state;

	assert_int_equal(load_tunnel(f, base_tunnel), QKD_OK);
	assert_string_equal(f->cfg.tun, "qkd0");
	assert_int_equal(f->cfg.mtu, 1400);
	assert_int_equal(f->cfg.log_level, QKD_LOG_INFO);
	assert_int_equal(f->cfg.metrics.sa.len, 0);
	assert_int_equal(f->cfg.tunnels[0].qkd, QKD_VPN_QKD_REQUIRED);
}

static void test_prefixes(void **state)
{
	struct qkd_vpn_prefix p, q;
	const char *why;

	(void)state;
	assert_int_equal(qkd_vpn_prefix_parse("10.1.3.0/23", &p, &why), QKD_ERR_INVAL);
	assert_string_equal(why, "host bits set after the prefix length");
	assert_int_equal(qkd_vpn_prefix_parse("10.1.2.0/24", &p, &why), QKD_OK);
	assert_int_equal(qkd_vpn_prefix_parse("10.1.2.7", &q, &why), QKD_OK);
	assert_int_equal(q.len, 32);
	assert_true(qkd_vpn_prefix_overlap(&p, &q));
	assert_int_equal(qkd_vpn_prefix_parse("10.1.3.0/24", &q, &why), QKD_OK);
	assert_false(qkd_vpn_prefix_overlap(&p, &q));
	assert_int_equal(qkd_vpn_prefix_parse("10.0.0.0/15", &q, &why), QKD_OK);
	assert_true(qkd_vpn_prefix_overlap(&p, &q));
	assert_int_equal(qkd_vpn_prefix_parse("0.0.0.0/0", &q, &why), QKD_OK);
	assert_true(qkd_vpn_prefix_overlap(&p, &q));
	assert_int_equal(qkd_vpn_prefix_parse("::/0", &q, &why), QKD_OK);
	assert_false(qkd_vpn_prefix_overlap(&p, &q));	/* another family */
	assert_int_equal(qkd_vpn_prefix_parse("fd00::1:0/112", &q, &why), QKD_OK);
	assert_int_equal(qkd_vpn_prefix_parse("fd00::1:0/111", &q, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_vpn_prefix_parse("fd00::/129", &q, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_vpn_prefix_parse("10.0.0.0/33", &q, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_vpn_prefix_parse("10.0.0.0/", &q, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_vpn_prefix_parse("10.0.0.0/-1", &q, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_vpn_prefix_parse("10.0.0.0/8x", &q, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_vpn_prefix_parse("10.0.0/8", &q, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_vpn_prefix_parse("host.example/8", &q, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_vpn_prefix_parse("", &q, &why), QKD_ERR_INVAL);
}

/* One tunnel text with its expected error fragment. */
static void refused(struct fix *f, const char *tunnel, const char *want)
{
	int rc = load_tunnel(f, tunnel);

	if (rc == QKD_OK || strstr(f->err, want) == NULL)
		fail_msg("config\n%s\nwanted an error with '%s', got %d '%s'", tunnel, want, rc,
			 f->err);
	assert_non_null(strstr(f->err, f->path));	/* FILE:LINE: */
}

static void test_refusals(void **state)
{
	struct fix *f = *state;
	char t[2048];

#define WITH(extra) (snprintf(t, sizeof t, "%s\n%s", base_tunnel, extra), t)
	refused(f, WITH("esp = \"aes192gcm16\";"), "aes128gcm16 or aes256gcm16");
	refused(f, WITH("ike = \"3des\";"), "aes128gcm16 or aes256gcm16");
	refused(f, WITH("dh = [ \"modp1024\" ];"), "x25519 (group 31) or modp2048");
	refused(f, WITH("dh = [ \"x25519\", \"x25519\" ];"), "listed twice");
	refused(f, WITH("dh = [ ];"), "at least one group");
	refused(f, WITH("qkd = \"sometimes\";"), "required, preferred or off");
	refused(f, WITH("rekey = 0.5;"), "rekey");
	refused(f, WITH("lifetime_seconds = [ 10, 5 ];"), "soft (10) must be below hard (5)");
	refused(f, WITH("lifetime_seconds = [ 0, 50 ];"), "must be above the rekey interval");
	refused(f, WITH("lifetime_kbytes = [ 1.5, 5.0 ];"), "whole numbers");
	refused(f, WITH("lifetime_packets = [ 5 ];"), "lifetime_packets");
	refused(f, WITH("initiate = 1;"), "true or false");
	refused(f, WITH("key_wait = -1.0;"), "key_wait");
	refused(f, WITH("colour = \"blue\";"), "colour");
	snprintf(t, sizeof t, "%s", base_tunnel);
	*strstr(t, "kme = \"kme-a\";") = '\0';
	refused(f, t, "needs kme and peer_sae");
	refused(f, "name = \"a-b\"; peer = \"127.0.0.2:4500\"; remote_id = \"gw-b\"; psk = \"psk.key\";"
		   " local_ts = [ \"192.168.1.0/24\" ]; remote_ts = [ \"192.168.2.0/24\" ];"
		   " kme = \"nope\"; peer_sae = \"S\";", "kme 'nope' is not in the kmes list");
	refused(f, "name = \"a-b\"; peer = \"127.0.0.1:4500\"; remote_id = \"gw-b\"; psk = \"psk.key\";"
		   " local_ts = [ \"192.168.1.0/24\" ]; remote_ts = [ \"192.168.2.0/24\" ]; qkd = \"off\";",
		"own listen address");
	refused(f, "name = \"a-b\"; peer = \"127.0.0.2:4500\"; remote_id = \"gw-b\"; psk = \"short.key\";"
		   " local_ts = [ \"192.168.1.0/24\" ]; remote_ts = [ \"192.168.2.0/24\" ]; qkd = \"off\";",
		"holds 31 bytes, at least 32");
	refused(f, "name = \"a-b\"; peer = \"127.0.0.2:4500\"; remote_id = \"gw-b\"; psk = \"psk.key\";"
		   " local_ts = [ \"192.168.1.1/24\" ]; remote_ts = [ \"192.168.2.0/24\" ]; qkd = \"off\";",
		"host bits set");
	refused(f, "name = \"a-b\"; peer = \"127.0.0.2:4500\"; remote_id = \"gw-b\"; psk = \"psk.key\";"
		   " local_ts = [ ]; remote_ts = [ \"192.168.2.0/24\" ]; qkd = \"off\";",
		"0 prefixes: 1 to 8");
	refused(f, "name = \"a-b\"; peer = \"127.0.0.2:4500\"; psk = \"psk.key\";"
		   " local_ts = [ \"192.168.1.0/24\" ]; remote_ts = [ \"192.168.2.0/24\" ]; qkd = \"off\";",
		"remote_id");
#undef WITH
}

static void test_file_level(void **state)
{
	struct fix *f = *state;
	char text[4096];
	int n;

	/* Two tunnels for the same traffic: one packet, two policies. */
	n = snprintf(text, sizeof text, "%stunnels = ( { %s }, { %s } );\n", gateway, base_tunnel,
		     "name = \"a-c\"; peer = \"127.0.0.3:4500\"; remote_id = \"gw-c\"; psk = \"psk.key\";"
		     " local_ts = [ \"192.168.1.128/25\" ]; remote_ts = [ \"192.168.0.0/16\" ];"
		     " qkd = \"off\";");
	write_file(f, "gw.conf", text, (size_t)n);
	assert_int_equal(qkd_vpn_config_load(f->path, &f->cfg, f->err, sizeof f->err), QKD_ERR_INVAL);
	assert_non_null(strstr(f->err, "overlap tunnel 'a-b''s"));
	n = snprintf(text, sizeof text, "%stunnels = ( { %s }, { %s } );\n", gateway, base_tunnel,
		     base_tunnel);
	write_file(f, "gw.conf", text, (size_t)n);
	assert_int_equal(qkd_vpn_config_load(f->path, &f->cfg, f->err, sizeof f->err), QKD_ERR_INVAL);
	assert_non_null(strstr(f->err, "tunnel name 'a-b' is already used"));
	n = snprintf(text, sizeof text, "%s", gateway);
	write_file(f, "gw.conf", text, (size_t)n);
	assert_int_equal(qkd_vpn_config_load(f->path, &f->cfg, f->err, sizeof f->err), QKD_ERR_INVAL);
	assert_non_null(strstr(f->err, "tunnels: required list is missing"));
	n = snprintf(text, sizeof text, "tunnels = ( { %s } );\n", base_tunnel);
	write_file(f, "gw.conf", text, (size_t)n);
	assert_int_equal(qkd_vpn_config_load(f->path, &f->cfg, f->err, sizeof f->err), QKD_ERR_INVAL);
	assert_non_null(strstr(f->err, "gateway: required group is missing"));
	n = snprintf(text, sizeof text, "%snode = { };\ntunnels = ( { %s } );\n", gateway, base_tunnel);
	write_file(f, "gw.conf", text, (size_t)n);
	assert_int_equal(qkd_vpn_config_load(f->path, &f->cfg, f->err, sizeof f->err), QKD_ERR_INVAL);
	assert_non_null(strstr(f->err, "unknown setting"));
	n = snprintf(text, sizeof text,
		     "gateway = { name = \"gw\"; listen = \"127.0.0.1:4500\"; status = \"s.sock\";"
		     " tun = \"a/b\"; };\ntunnels = ( { %s } );\n", base_tunnel);
	write_file(f, "gw.conf", text, (size_t)n);
	assert_int_equal(qkd_vpn_config_load(f->path, &f->cfg, f->err, sizeof f->err), QKD_ERR_INVAL);
	assert_non_null(strstr(f->err, "a device name"));
	n = snprintf(text, sizeof text,
		     "gateway = { name = \"gw\"; listen = \"127.0.0.1:4500\"; status = \"s.sock\";"
		     " metrics = \"127.0.0.1:4500\"; };\nkmes = ( { name = \"k\"; url = \"http://x\";"
		     " ca = \"ca.pem\"; cert = \"gw.pem\"; key = \"gw.key\"; } );\n"
		     "tunnels = ( { %s } );\n", base_tunnel);
	write_file(f, "gw.conf", text, (size_t)n);
	assert_int_equal(qkd_vpn_config_load(f->path, &f->cfg, f->err, sizeof f->err), QKD_ERR_INVAL);
	assert_non_null(strstr(f->err, "an https:// URL"));
	n = snprintf(text, sizeof text, "%stunnels = ( { %s } ); @include \"x.conf\"\n", gateway,
		     base_tunnel);
	write_file(f, "gw.conf", text, (size_t)n);
	assert_int_equal(qkd_vpn_config_load(f->path, &f->cfg, f->err, sizeof f->err), QKD_ERR_INVAL);
	assert_non_null(strstr(f->err, "@include"));
	snprintf(text, sizeof text, "%s/none.conf", f->dir);
	assert_int_equal(qkd_vpn_config_load(text, &f->cfg, f->err, sizeof f->err), QKD_ERR_IO);
	assert_non_null(strstr(f->err, "no such file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_level, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
