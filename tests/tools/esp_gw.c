/* esp_gw.c - a test gateway for tests/integration/vpn_dataplane.sh and
 * bench/vpn_tun.sh: the data plane of `qkd vpn` (qkd/dataplane.h) without
 * IKE. TEST-ONLY MANUAL KEYING: the ESP keys come from the command line,
 * are never rekeyed, and are visible to anyone who can list processes.
 * Nothing here is how the daemon keys its SAs (IKEv2 with QKD key).
 *
 *   esp_gw --config FILE --spi-in N --spi-out N --key-in HEX --key-out HEX
 *          [--plain] [--no-gso]
 *
 * Reads a `qkd vpn` configuration (docs/vpn.md "Configuration"), opens its
 * TUN device (name and MTU from the file), binds its listen address, and
 * installs one static SA pair per tunnel: tunnel t gets inbound SPI
 * spi-in + t and outbound SPI spi-out + t, with the keys given as KEYMAT
 * in hex (AES key || 4-byte salt, RFC 4106 s8.1: 72 digits for the
 * AES-256-GCM a tunnel's `esp = "aes256gcm16"` asks for, 40 for AES-128),
 * ESN on, lifetimes from the tunnel's lifetime_* settings. --plain runs the
 * benchmark's no-crypto mode (qkd/testing.h) instead; --no-gso sends every
 * datagram on its own (no UDP GSO), for the benchmark's comparison. Prints "ready" once
 * packets flow, logs to stderr, and on SIGTERM or SIGINT prints its
 * counters as one JSON object on stdout and exits 0.
 */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qkd/dataplane.h"
#include "qkd/error.h"
#include "qkd/sa_mgr.h"
#include "qkd/secret.h"
#include "qkd/testing.h"
#include "qkd/vpn_config.h"

#define KEYMAT_MAX 36

struct opts {
	const char *config;
	unsigned long spi_in, spi_out;
	uint8_t key_in[KEYMAT_MAX], key_out[KEYMAT_MAX];
	size_t key_in_len, key_out_len;
	bool plain, no_gso;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void log_line(void *ctx, enum qkd_log_level level, const char *line)
{
	(void)ctx;
	fprintf(stderr, "esp_gw: %s: %s\n", qkd_log_level_name(level), line);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool parse_hex(const char *s, uint8_t *out, size_t *len)
{
	size_t n = strlen(s);

	if (n % 2 != 0 || (n / 2 != 20 && n / 2 != 36))
		return false;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return true;
}

static bool parse_spi(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 0);
	return errno == 0 && *end == '\0' && *out >= QKD_ESP_SPI_MIN && *out <= 0xffffff00ul;
}

static int usage(const char *why)
{
	fprintf(stderr, "qkd: esp_gw: %s\nusage: esp_gw --config FILE --spi-in N --spi-out N "
			"--key-in HEX --key-out HEX [--plain] [--no-gso]\n", why);
	return 1;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{ "config", required_argument, NULL, 'c' }, { "spi-in", required_argument, NULL, 'i' },
		{ "spi-out", required_argument, NULL, 'o' }, { "key-in", required_argument, NULL, 'I' },
		{ "key-out", required_argument, NULL, 'O' }, { "plain", no_argument, NULL, 'p' },
		{ "no-gso", no_argument, NULL, 'g' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (c == 'c')
			o->config = optarg;
		else if (c == 'i' && parse_spi(optarg, &o->spi_in))
			continue;
		else if (c == 'o' && parse_spi(optarg, &o->spi_out))
			continue;
		else if (c == 'I' && parse_hex(optarg, o->key_in, &o->key_in_len))
			continue;
		else if (c == 'O' && parse_hex(optarg, o->key_out, &o->key_out_len))
			continue;
		else if (c == 'p')
			o->plain = true;
		else if (c == 'g')
			o->no_gso = true;
		else
			return usage("a bad option or value (SPIs 256 .. 2^32-256, keys 40 or 72 hex digits)");
	}
	if (o->config == NULL || o->spi_in == 0 || o->spi_out == 0 || o->key_in_len == 0 ||
	    o->key_out_len == 0)
		return usage("--config, --spi-in, --spi-out, --key-in and --key-out are required");
	return 0;
}

static struct qkd_esp_limits limits(const struct qkd_vpn_tunnel *t, bool hard)
{
	return (struct qkd_esp_limits){
		.seconds = hard ? t->seconds.hard : t->seconds.soft,
		.bytes = (hard ? t->kbytes.hard : t->kbytes.soft) * 1000,
		.packets = hard ? t->packets.hard : t->packets.soft,
	};
}

/* One SA of tunnel t from the command line's key for its direction. */
static int make_sa(const struct opts *o, const struct qkd_vpn_tunnel *tun, size_t t,
		   enum qkd_esp_dir dir, struct qkd_esp_sa **out)
{
	struct qkd_esp_params p = {
		.dir = dir,
		.spi = (uint32_t)((dir == QKD_ESP_IN ? o->spi_in : o->spi_out) + t),
		.keymat = dir == QKD_ESP_IN ? o->key_in : o->key_out,
		.keymat_len = dir == QKD_ESP_IN ? o->key_in_len : o->key_out_len,
		.esn = true,
		.soft = limits(tun, false),
		.hard = limits(tun, true),
		.now = (uint64_t)now_s(),
	};

	if (p.keymat_len != tun->esp.key_bits / 8 + 4) {
		fprintf(stderr, "qkd: esp_gw: tunnel %s: esp is AES-%u-GCM, the key is %zu bytes\n",
			tun->name, tun->esp.key_bits, p.keymat_len);
		return QKD_ERR_INVAL;
	}
	return qkd_esp_sa_new(&p, out);
}

static int install_all(const struct opts *o, const struct qkd_vpn_config *cfg,
		       struct qkd_sa_mgr *sad)
{
	for (size_t t = 0; t < cfg->n_tunnels; t++) {
		struct qkd_esp_sa *in = NULL, *out = NULL;
		int rc = make_sa(o, &cfg->tunnels[t], t, QKD_ESP_IN, &in);

		if (rc == QKD_OK)
			rc = make_sa(o, &cfg->tunnels[t], t, QKD_ESP_OUT, &out);
		if (rc == QKD_OK)
			rc = qkd_sa_mgr_install(sad, t, in, out, true);
		else {
			qkd_esp_sa_free(in);
			qkd_esp_sa_free(out);
		}
		if (rc != QKD_OK)
			return rc;
	}
	return QKD_OK;
}

static void on_ike(void *arg, const uint8_t *msg, size_t len, const struct sockaddr *from,
		   socklen_t fromlen)
{
	(void)arg;
	(void)msg;
	(void)from;
	(void)fromlen;
	fprintf(stderr, "esp_gw: an IKE message of %zu bytes (no IKE here)\n", len);
}

static void on_acquire(void *arg, size_t t)
{
	const struct qkd_vpn_config *cfg = arg;

	fprintf(stderr, "esp_gw: acquire for tunnel %s (static keys only)\n", cfg->tunnels[t].name);
}

static void on_soft(void *arg, size_t t, uint32_t spi, enum qkd_esp_dir dir)
{
	(void)arg;
	fprintf(stderr, "esp_gw: tunnel %zu: %s SA %08x soft-expired (never rekeyed here)\n", t,
		dir == QKD_ESP_IN ? "inbound" : "outbound", (unsigned)spi);
}

static void print_drops(const uint64_t *d)
{
	printf("{");
	for (int i = 0; i < QKD_DP_DROP_COUNT; i++)
		printf("%s\"%s\": %llu", i ? ", " : "", qkd_dp_drop_name((enum qkd_dp_drop)i),
		       (unsigned long long)d[i]);
	printf("}");
}

static void print_stats(const struct qkd_dataplane *dp, const struct qkd_vpn_config *cfg)
{
	struct qkd_dp_stats s;

	qkd_dataplane_stats(dp, &s);
	printf("{\"tun_reads\": %llu, \"udp_batches\": %llu, \"ike_in\": %llu, \"keepalives\": %llu, "
	       "\"drops\": ", (unsigned long long)s.tun_reads, (unsigned long long)s.udp_batches,
	       (unsigned long long)s.ike_in, (unsigned long long)s.keepalives);
	print_drops(s.drops);
	printf(", \"tunnels\": [");
	for (size_t t = 0; t < cfg->n_tunnels; t++) {
		struct qkd_dp_tunnel_stats ts;

		qkd_dataplane_tunnel_stats(dp, t, &ts);
		printf("%s{\"name\": \"%s\", \"out_packets\": %llu, \"out_bytes\": %llu, "
		       "\"in_packets\": %llu, \"in_bytes\": %llu, \"drops\": ", t ? ", " : "",
		       cfg->tunnels[t].name, (unsigned long long)ts.out_packets,
		       (unsigned long long)ts.out_bytes, (unsigned long long)ts.in_packets,
		       (unsigned long long)ts.in_bytes);
		print_drops(ts.drops);
		printf("}");
	}
	printf("]}\n");
	fflush(stdout);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

struct gw {
	struct qkd_vpn_config cfg;
	struct qkd_tun *tun;
	int fd;
	struct qkd_sa_mgr *sad;
	struct event_base *base;
	struct event *sigterm, *sigint;
	struct qkd_dataplane *dp;
};

static int run(struct gw *g, const struct opts *o)
{
	static const struct qkd_dataplane_ops ops = { on_ike, on_acquire, on_soft };
	struct qkd_logger log = { log_line, NULL, g->cfg.log_level };
	struct qkd_dataplane_params p = { .tun = g->tun, .udp_fd = g->fd, .cfg = &g->cfg,
					  .sad = g->sad, .ops = &ops, .arg = &g->cfg,
					  .log = &log, .now = now_s };

	g->base = event_base_new();
	if (g->base == NULL)
		return QKD_ERR_NOMEM;
	p.base = g->base;
	g->sigterm = evsignal_new(g->base, SIGTERM, on_signal, g->base);
	g->sigint = evsignal_new(g->base, SIGINT, on_signal, g->base);
	if (g->sigterm == NULL || g->sigint == NULL || evsignal_add(g->sigterm, NULL) != 0 ||
	    evsignal_add(g->sigint, NULL) != 0 || qkd_dataplane_new(&p, &g->dp) != QKD_OK)
		return QKD_ERR_NOMEM;
	qkd_dataplane_testing_plain(g->dp, o->plain);
	qkd_dataplane_testing_gso(g->dp, !o->no_gso);
	printf("ready\n");
	fflush(stdout);
	if (event_base_dispatch(g->base) < 0)
		return QKD_ERR_IO;
	print_stats(g->dp, &g->cfg);
	return QKD_OK;
}

static int setup(struct gw *g, const struct opts *o)
{
	char err[512];
	const char *why = NULL;
	int rc;

	rc = qkd_vpn_config_load(o->config, &g->cfg, err, sizeof err);
	if (rc != QKD_OK) {
		fprintf(stderr, "qkd: esp_gw: %s\n", err);
		return rc;
	}
	rc = qkd_tun_open_linux(g->cfg.tun, g->cfg.mtu, &g->tun, &why);
	if (rc != QKD_OK) {
		fprintf(stderr, "qkd: esp_gw: tun %s: %s\n", g->cfg.tun, why);
		return rc;
	}
	rc = qkd_dataplane_udp_open(&g->cfg.listen.sa, &g->fd);
	if (rc != QKD_OK) {
		fprintf(stderr, "qkd: esp_gw: udp %s: %s\n", g->cfg.listen.text, strerror(errno));
		return rc;
	}
	rc = qkd_sa_mgr_new(g->cfg.n_tunnels, &g->sad);
	if (rc == QKD_OK && !o->plain)
		rc = install_all(o, &g->cfg, g->sad);
	if (rc != QKD_OK)
		fprintf(stderr, "qkd: esp_gw: SAs: %s\n", qkd_strerror(rc));
	return rc;
}

int main(int argc, char **argv)
{
	static struct gw g = { .fd = -1 };
	struct opts o = { 0 };
	int rc = 1;

	if (parse_args(argc, argv, &o) != 0)
		goto out;
	if (setup(&g, &o) != QKD_OK)
		goto out;
	if (run(&g, &o) != QKD_OK) {
		fprintf(stderr, "qkd: esp_gw: the event loop failed\n");
		goto out;
	}
	rc = 0;
out:
	qkd_wipe(&o, sizeof o);
	qkd_dataplane_free(g.dp);
	if (g.sigterm != NULL)
		event_free(g.sigterm);
	if (g.sigint != NULL)
		event_free(g.sigint);
	if (g.base != NULL)
		event_base_free(g.base);
	qkd_sa_mgr_free(g.sad);
	if (g.fd >= 0)
		close(g.fd);
	qkd_tun_close(g.tun);
	return rc;
}
