/* libFuzzer target: the IP header reader of the security policy database
 * (lib/vpn/spd.c, qkd/spd.h) on arbitrary bytes, then both lookups against a
 * fixed two-tunnel policy. Checks besides not crashing or reading out of
 * bounds: an accepted header is IPv4 or IPv6 and its length fields agree
 * with the input; a refused one says why and leaves the output cleared; a
 * packet the outbound lookup sends to a tunnel, turned round, is one that
 * tunnel may carry inbound. */
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/spd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct qkd_vpn_config cfg;

static void setup(void)
{
	static const char *const ts[2][2][2] = {
		{ { "192.168.1.0/24", "fd01::/64" }, { "10.2.0.0/16", "fd02::/64" } },
		{ { "192.168.1.0/24", "0.0.0.0/32" }, { "10.3.0.0/16", "::/128" } },
	};
	const char *why;

	cfg.n_tunnels = 2;
	for (size_t t = 0; t < 2; t++) {
		struct qkd_vpn_tunnel *tn = &cfg.tunnels[t];

		for (size_t k = 0; k < 2; k++) {
			if (qkd_vpn_prefix_parse(ts[t][0][k], &tn->local_ts[k], &why) != QKD_OK ||
			    qkd_vpn_prefix_parse(ts[t][1][k], &tn->remote_ts[k], &why) != QKD_OK)
				abort();
		}
		tn->n_local_ts = tn->n_remote_ts = 2;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct qkd_ip_addrs zero;
	struct qkd_ip_addrs a, back;
	const char *why = NULL;
	size_t t;

	if (cfg.n_tunnels == 0)
		setup();
	if (qkd_ip_addrs_read(data, size, &a, &why) != QKD_OK) {
		if (why == NULL || memcmp(&a, &zero, sizeof a) != 0)
			abort();
		return 0;
	}
	if ((a.family != 4 || size < 20 || ((size_t)data[2] << 8 | data[3]) != size) &&
	    (a.family != 6 || size < 40 || ((size_t)data[4] << 8 | data[5]) + 40 != size))
		abort();
	if (qkd_spd_outbound(&cfg, &a, &t) == QKD_OK) {
		back = a;
		memcpy(back.src, a.dst, 16);
		memcpy(back.dst, a.src, 16);
		if (t >= cfg.n_tunnels || !qkd_spd_inbound_ok(&cfg, t, &back))
			abort();
	}
	return 0;
}
