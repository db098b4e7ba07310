/* vpn_metrics.c - the gateway's Prometheus endpoint (docs/metrics.md,
 * "qkd vpn"): GET /metrics on `gateway.metrics`, plain HTTP on the
 * gateway's own event loop (libevent's evhttp), in the text exposition
 * format 0.0.4. The figures are the ones `qkd vpn status` shows: per
 * tunnel traffic, drops by reason, SAs, rekeys, QKD key mismatches and
 * fallbacks, QKD key bits used, and the IKE counters.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/metrics.h"
#include "vpn_daemon.h"

/* Label values here are tunnel names (letters, digits, '.', '_', '-':
 * the configuration refuses anything else), so they need no escaping. */
static void family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct tunnel_figures {
	struct qkd_ike_status ike;
	struct qkd_dp_tunnel_stats dp;
};

static void traffic(struct evbuffer *b, struct vpn_daemon *d, const struct tunnel_figures *f)
{
	family(b, "qkd_vpn_packets_total", "counter", "Inner packets through a tunnel's SAs.");
	for (size_t t = 0; t < d->cfg.n_tunnels; t++) {
		const char *n = d->cfg.tunnels[t].name;

		evbuffer_add_printf(b, "qkd_vpn_packets_total{tunnel=\"%s\",direction=\"out\"} %llu\n",
				    n, (unsigned long long)f[t].dp.out_packets);
		evbuffer_add_printf(b, "qkd_vpn_packets_total{tunnel=\"%s\",direction=\"in\"} %llu\n",
				    n, (unsigned long long)f[t].dp.in_packets);
	}
	family(b, "qkd_vpn_bytes_total", "counter", "Inner bytes through a tunnel's SAs.");
	for (size_t t = 0; t < d->cfg.n_tunnels; t++) {
		const char *n = d->cfg.tunnels[t].name;

		evbuffer_add_printf(b, "qkd_vpn_bytes_total{tunnel=\"%s\",direction=\"out\"} %llu\n",
				    n, (unsigned long long)f[t].dp.out_bytes);
		evbuffer_add_printf(b, "qkd_vpn_bytes_total{tunnel=\"%s\",direction=\"in\"} %llu\n",
				    n, (unsigned long long)f[t].dp.in_bytes);
	}
	family(b, "qkd_vpn_drops_total", "counter", "Packets dropped, by reason.");
	for (size_t t = 0; t < d->cfg.n_tunnels; t++)
		for (int r = 0; r < QKD_DP_DROP_COUNT; r++)
			evbuffer_add_printf(b, "qkd_vpn_drops_total{tunnel=\"%s\",reason=\"%s\"} %llu\n",
					    d->cfg.tunnels[t].name,
					    qkd_dp_drop_name((enum qkd_dp_drop)r),
					    (unsigned long long)f[t].dp.drops[r]);
}

static void ike(struct evbuffer *b, struct vpn_daemon *d, const struct tunnel_figures *f)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} c[] = {
		{"qkd_vpn_child_rekeys_total", "Child SA rekeys (each with fresh QKD key).",
		 offsetof(struct qkd_ike_stats, child_rekeys)},
		{"qkd_vpn_ike_rekeys_total", "IKE SA rekeys.", offsetof(struct qkd_ike_stats, ike_rekeys)},
		{"qkd_vpn_qkd_mismatches_total", "Exchanges failed because the QKD keys differed.",
		 offsetof(struct qkd_ike_stats, ppk_mismatches)},
		{"qkd_vpn_qkd_fallbacks_total", "SAs made without QKD key (qkd = preferred).",
		 offsetof(struct qkd_ike_stats, qkd_fallbacks)},
		{"qkd_vpn_auth_failures_total", "IKE authentication failures.",
		 offsetof(struct qkd_ike_stats, auth_failures)},
		{"qkd_vpn_ike_retransmits_total", "IKE requests sent again.",
		 offsetof(struct qkd_ike_stats, retransmits)},
		{"qkd_vpn_ike_bad_messages_total", "IKE messages refused.",
		 offsetof(struct qkd_ike_stats, bad_messages)},
		{"qkd_vpn_ike_invalid_spi_hints_total",
		 "INVALID_IKE_SPI answers to our requests (the peer may have restarted).",
		 offsetof(struct qkd_ike_stats, invalid_spi_hints)},
	};

	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		family(b, c[i].name, "counter", c[i].help);
		for (size_t t = 0; t < d->cfg.n_tunnels; t++) {
			uint64_t v;

			memcpy(&v, (const char *)&f[t].ike.stats + c[i].off, sizeof v);
			evbuffer_add_printf(b, "%s{tunnel=\"%s\"} %llu\n", c[i].name,
					    d->cfg.tunnels[t].name, (unsigned long long)v);
		}
	}
	family(b, "qkd_vpn_tunnel_up", "gauge", "1 when the tunnel's IKE SA is established.");
	for (size_t t = 0; t < d->cfg.n_tunnels; t++)
		evbuffer_add_printf(b, "qkd_vpn_tunnel_up{tunnel=\"%s\"} %d\n", d->cfg.tunnels[t].name,
				    f[t].ike.state == QKD_IKE_ESTABLISHED);
	family(b, "qkd_vpn_qkd_key_bytes_total", "counter", "QKD key mixed into SAs.");
	for (size_t t = 0; t < d->cfg.n_tunnels; t++)
		evbuffer_add_printf(b, "qkd_vpn_qkd_key_bytes_total{tunnel=\"%s\"} %llu\n",
				    d->cfg.tunnels[t].name,
				    (unsigned long long)d->tunnels[t].qkd_bits / 8);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
	struct vpn_daemon *d = arg;
	struct tunnel_figures f[QKD_VPN_TUNNELS_MAX];
	struct evbuffer *b;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_send_error(req, 405, "only GET");
		return;
	}
	b = evbuffer_new();
	if (!b) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	for (size_t t = 0; t < d->cfg.n_tunnels; t++) {
		qkd_ike_status(d->tunnels[t].ike, &f[t].ike);
		qkd_dataplane_tunnel_stats(d->dp, t, &f[t].dp);
	}
	traffic(b, d, f);
	ike(b, d, f);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  QKD_METRICS_CONTENT_TYPE);
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void on_other(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_send_error(req, 404, "only /metrics");
}

int vpn_metrics_start(struct vpn_daemon *d, char *why, size_t whylen)
{
	char host[QKD_NETADDR_STR_MAX];
	const struct qkd_netaddr *a = &d->cfg.metrics.sa;
	uint16_t port = qkd_netaddr_port(a);
	const char *text = d->cfg.metrics.text, *colon = strrchr(text, ':');
	size_t hl;

	/* evhttp binds by host text: the configuration's canonical form
	 * without the port and without IPv6 brackets. */
	if (!colon)
		return QKD_ERR_INVAL;
	hl = (size_t)(colon - text);
	if (text[0] == '[') {
		text++;
		hl -= 2;
	}
	snprintf(host, sizeof host, "%.*s", (int)hl, text);
	d->metrics = evhttp_new(d->base);
	if (!d->metrics || evhttp_bind_socket(d->metrics, host, port) != 0) {
		snprintf(why, whylen, "metrics %s: cannot listen", d->cfg.metrics.text);
		return QKD_ERR_IO;
	}
	evhttp_set_allowed_methods(d->metrics, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_cb(d->metrics, "/metrics", on_metrics, d);
	evhttp_set_gencb(d->metrics, on_other, d);
	evhttp_set_timeout(d->metrics, 5);
	return 0;
}

void vpn_metrics_stop(struct vpn_daemon *d)
{
	if (d->metrics)
		evhttp_free(d->metrics);
	d->metrics = NULL;
}
