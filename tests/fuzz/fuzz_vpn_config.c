/* libFuzzer target: the `qkd vpn` configuration parser
 * (lib/vpn/vpn_config*.c, vpn_prefix.c, on the node's machinery and
 * libconfig). The input becomes the config file, in a scratch directory
 * that also holds a PSK file and stand-ins for a key manager's PEM files,
 * so inputs can get past the file checks to the value and cross checks.
 * The parser must refuse or accept without crashing and always
 * NUL-terminate its message; an accepted file must hold what the checks
 * promise (tunnels with selectors, soft below hard, a known kme). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/vpn_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/qkd-fuzz-vpncfg.XXXXXX";
static char path[sizeof dir + 16];

static int put(const char *name, const char *text)
{
	char p[sizeof dir + 32];
	FILE *f;

	snprintf(p, sizeof p, "%s/%s", dir, name);
	f = fopen(p, "wb");
	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static int setup(void)
{
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/g.conf", dir);
	return put("psk.key", "0123456789abcdef0123456789abcdef0123") | put("ca.pem", "x\n") |
	       put("gw.pem", "x\n") | put("gw.key", "x\n");
}

static void check_accepted(const struct qkd_vpn_config *c)
{
	if (c->n_tunnels < 1 || c->n_tunnels > QKD_VPN_TUNNELS_MAX || c->n_kmes > QKD_VPN_KMES_MAX)
		abort();
	for (size_t i = 0; i < c->n_tunnels; i++) {
		const struct qkd_vpn_tunnel *t = &c->tunnels[i];

		if (t->n_local_ts < 1 || t->n_remote_ts < 1 || t->seconds.soft >= t->seconds.hard ||
		    (t->qkd != QKD_VPN_QKD_OFF && t->kme_index >= c->n_kmes) ||
		    (t->esp.key_bits != 128 && t->esp.key_bits != 256) || (t->dh & t->first_dh) == 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct qkd_vpn_config *cfg;
	char err[512];
	FILE *f;

	if (!ready && setup() != 0)
		abort();
	ready = 1;
	f = fopen(path, "wb");
	if (f == NULL)
		abort();
	fwrite(data, 1, size, f);
	fclose(f);
	cfg = malloc(sizeof *cfg);
	if (cfg == NULL)
		return 0;
	err[0] = 'x';
	if (qkd_vpn_config_load(path, cfg, err, sizeof err) != QKD_OK) {
		if (memchr(err, '\0', sizeof err) == NULL)
			abort();
	} else {
		check_accepted(cfg);
	}
	free(cfg);
	return 0;
}
