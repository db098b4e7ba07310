/* vpn_status.c - `qkd vpn status`'s server side (docs/vpn.md "Status"): a
 * unix stream socket on the gateway's event loop; a client writes the line
 * "status" and reads one JSON object, then the gateway closes. A client
 * has 2 s for the whole exchange, and at most 16 are served at once, so a
 * silent client costs a slot, not the loop. The JSON shows per tunnel the
 * IKE SA, the ESP SAs with their SPIs, bytes and packets, the QKD key_IDs
 * in use, rekeys, mismatches, fallbacks and every drop counter.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qkd/error.h"
#include "vpn_daemon.h"

#define STATUS_CLIENTS_MAX 16
#define STATUS_SECONDS 2
#define STATUS_REQ_MAX 64

static unsigned clients_now;

static json_t *hex_spi(const uint8_t spi[8])
{
	char s[17];

	for (int i = 0; i < 8; i++)
		snprintf(s + 2 * i, 3, "%02x", spi[i]);
	return json_string(s);
}

static json_t *spi32(uint32_t spi)
{
	char s[9];

	snprintf(s, sizeof s, "%08x", spi);
	return json_string(s);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static json_t *latency_json(const struct vpn_tunnel *vt)
{
	double v[VPN_LATENCIES_MAX];
	json_t *j = json_object();
	size_t n = vt->nlat;

	json_object_set_new(j, "n", json_integer((json_int_t)n));
	if (n > 0) {
		memcpy(v, vt->latencies, n * sizeof v[0]);
		qsort(v, n, sizeof v[0], cmp_double);
		json_object_set_new(j, "p50_s", json_real(v[(n - 1) / 2]));
		json_object_set_new(j, "p99_s", json_real(v[(size_t)((double)(n - 1) * 0.99)]));
		json_object_set_new(j, "max_s", json_real(v[n - 1]));
	}
	return j;
}

static json_t *drops_json(const uint64_t *drops)
{
	json_t *j = json_object();

	for (int i = 0; i < QKD_DP_DROP_COUNT; i++)
		json_object_set_new(j, qkd_dp_drop_name((enum qkd_dp_drop)i),
				    json_integer((json_int_t)drops[i]));
	return j;
}

static json_t *ike_counters(const struct qkd_ike_stats *s, const struct vpn_tunnel *vt)
{
	json_t *j = json_object();

#define C(name, v) json_object_set_new(j, name, json_integer((json_int_t)(v)))
	C("ike_up", s->ike_up);
	C("child_up", s->child_up);
	C("child_rekeys", s->child_rekeys);
	C("ike_rekeys", s->ike_rekeys);
	C("qkd_mismatches", s->ppk_mismatches);
	C("qkd_fallbacks", s->qkd_fallbacks);
	C("qkd_waits", s->qkd_waits);
	C("auth_failures", s->auth_failures);
	C("retransmits", s->retransmits);
	C("bad_messages", s->bad_messages);
	C("cookies", s->cookies);
	C("peer_dead", s->peer_dead);
	C("init_dropped", s->init_dropped);
	C("invalid_spi_hints", s->invalid_spi_hints);
	C("sa_installs", vt->installs);
	C("sa_deletes", vt->deletes);
	C("sa_install_failures", vt->install_failures);
#undef C
	return j;
}

static json_t *sas_json(struct vpn_daemon *d, size_t t)
{
	struct qkd_sa_info info[2 * QKD_SA_MGR_INBOUND_MAX];
	size_t n = qkd_sa_mgr_list(d->sad, t, (uint64_t)vpn_now(), info, 2 * QKD_SA_MGR_INBOUND_MAX);
	json_t *a = json_array();
	static const char *const state[] = {"ok", "soft-expired", "hard-expired"};

	if (n > 2 * QKD_SA_MGR_INBOUND_MAX)
		n = 2 * QKD_SA_MGR_INBOUND_MAX;
	for (size_t i = 0; i < n; i++) {
		json_t *j = json_object();

		json_object_set_new(j, "spi", spi32(info[i].spi));
		json_object_set_new(j, "dir", json_string(info[i].dir == QKD_ESP_IN ? "in" : "out"));
		json_object_set_new(j, "active", json_boolean(info[i].active));
		json_object_set_new(j, "bytes", json_integer((json_int_t)info[i].bytes));
		json_object_set_new(j, "packets", json_integer((json_int_t)info[i].packets));
		json_object_set_new(j, "state", json_string(state[info[i].state]));
		json_array_append_new(a, j);
	}
	return a;
}

static json_t *pairs_json(const struct vpn_tunnel *vt)
{
	json_t *a = json_array();

	for (size_t i = 0; i < vt->npairs; i++) {
		const struct vpn_pair *p = &vt->pairs[i];
		json_t *j = json_object();

		json_object_set_new(j, "spi_in", spi32(p->spi_in));
		json_object_set_new(j, "spi_out", spi32(p->spi_out));
		json_object_set_new(j, "key_id", p->qkd ? json_string(p->key_id) : json_null());
		json_object_set_new(j, "age_s", json_real(vpn_now() - p->installed_at));
		json_array_append_new(a, j);
	}
	return a;
}

static json_t *tunnel_json(struct vpn_daemon *d, size_t t)
{
	const struct qkd_vpn_tunnel *c = &d->cfg.tunnels[t];
	const struct vpn_tunnel *vt = &d->tunnels[t];
	struct qkd_dp_tunnel_stats ds;
	struct qkd_ike_status s;
	json_t *j = json_object(), *tr = json_object();

	qkd_ike_status(vt->ike, &s);
	qkd_dataplane_tunnel_stats(d->dp, t, &ds);
	json_object_set_new(j, "name", json_string(c->name));
	json_object_set_new(j, "peer", json_string(c->peer.text));
	json_object_set_new(j, "qkd_policy", json_string(qkd_vpn_qkd_policy_name(c->qkd)));
	json_object_set_new(j, "state", json_string(qkd_ike_state_name(s.state)));
	json_object_set_new(j, "ike_initiator", json_boolean(s.initiator));
	json_object_set_new(j, "ike_spi_i", hex_spi(s.spi_i));
	json_object_set_new(j, "ike_spi_r", hex_spi(s.spi_r));
	json_object_set_new(j, "established_s",
			    json_real(s.established_at > 0 ? vpn_now() - s.established_at : 0));
	json_object_set_new(j, "spi_in", spi32(s.spi_in));
	json_object_set_new(j, "spi_out", spi32(s.spi_out));
	json_object_set_new(j, "qkd", json_boolean(s.qkd));
	json_object_set_new(j, "key_id", s.qkd ? json_string(s.key_id) : json_null());
	json_object_set_new(j, "pairs", pairs_json(vt));
	json_object_set_new(j, "sas", sas_json(d, t));
	json_object_set_new(j, "counters", ike_counters(&s.stats, vt));
	json_object_set_new(tr, "out_packets", json_integer((json_int_t)ds.out_packets));
	json_object_set_new(tr, "out_bytes", json_integer((json_int_t)ds.out_bytes));
	json_object_set_new(tr, "in_packets", json_integer((json_int_t)ds.in_packets));
	json_object_set_new(tr, "in_bytes", json_integer((json_int_t)ds.in_bytes));
	json_object_set_new(tr, "drops", drops_json(ds.drops));
	json_object_set_new(j, "traffic", tr);
	json_object_set_new(j, "qkd_bits", json_integer((json_int_t)vt->qkd_bits));
	json_object_set_new(j, "rekey_latency", latency_json(vt));
	json_object_set_new(j, "last_event", json_string(vt->last_event));
	return j;
}

char *vpn_status_json(struct vpn_daemon *d)
{
	json_t *j = json_object(), *ts = json_array(), *dp = json_object(), *k = json_object();
	struct qkd_dp_stats s;
	char *text;

	qkd_dataplane_stats(d->dp, &s);
	json_object_set_new(j, "gateway", json_string(d->cfg.name));
	json_object_set_new(j, "listen", json_string(d->cfg.listen.text));
	json_object_set_new(j, "tun", json_string(d->tun->name));
	json_object_set_new(j, "uptime_s", json_real(vpn_now() - d->started));
	json_object_set_new(dp, "drops", drops_json(s.drops));
	json_object_set_new(dp, "ike_in", json_integer((json_int_t)s.ike_in));
	json_object_set_new(dp, "ike_unmatched", json_integer((json_int_t)d->ike_unmatched));
	json_object_set_new(dp, "invalid_spi_sent", json_integer((json_int_t)d->invalid_spi_sent));
	json_object_set_new(dp, "invalid_spi_limited",
			    json_integer((json_int_t)d->invalid_spi_limited));
	json_object_set_new(dp, "keepalives", json_integer((json_int_t)s.keepalives));
	json_object_set_new(j, "dataplane", dp);
	if (d->kme) {
		struct vpn_kme_counts kc;

		vpn_kme_counts(d->kme, &kc);
		json_object_set_new(k, "enc_keys", json_integer((json_int_t)kc.enc_ok));
		json_object_set_new(k, "dec_keys", json_integer((json_int_t)kc.dec_ok));
		json_object_set_new(k, "failed", json_integer((json_int_t)kc.failed));
	}
	json_object_set_new(j, "kme", k);
	for (size_t t = 0; t < d->cfg.n_tunnels; t++)
		json_array_append_new(ts, tunnel_json(d, t));
	json_object_set_new(j, "tunnels", ts);
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}

/* ---- the socket ---- */

static void client_done(struct bufferevent *bev)
{
	bufferevent_free(bev);
	clients_now--;
}

static void on_written(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		client_done(bev);
}

static void on_client_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	client_done(bev);
}

static void on_request(struct bufferevent *bev, void *arg)
{
	struct vpn_daemon *d = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
	char *text = NULL;

	if (!line) {
		if (evbuffer_get_length(in) > STATUS_REQ_MAX)
			client_done(bev);
		return;
	}
	if (strcmp(line, "status") == 0)
		text = vpn_status_json(d);
	if (text) {
		bufferevent_write(bev, text, strlen(text));
		bufferevent_write(bev, "\n", 1);
		free(text);
	} else {
		static const char msg[] = "{\"error\":\"unknown request\"}\n";

		bufferevent_write(bev, msg, sizeof msg - 1);
	}
	free(line);
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, on_written, on_client_event, d);
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct vpn_daemon *d = arg;
	struct timeval tv = {STATUS_SECONDS, 0};
	struct bufferevent *bev;
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)what;
	if (c < 0)
		return;
	if (clients_now >= STATUS_CLIENTS_MAX) {
		close(c);
		return;
	}
	bev = bufferevent_socket_new(d->base, c, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		close(c);
		return;
	}
	clients_now++;
	bufferevent_setcb(bev, on_request, NULL, on_client_event, d);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ);
}

int vpn_status_listen(struct vpn_daemon *d, char *why, size_t whylen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(d->cfg.status) >= sizeof sa.sun_path) {
		snprintf(why, whylen, "status %s: path too long", d->cfg.status);
		return QKD_ERR_INVAL;
	}
	strcpy(sa.sun_path, d->cfg.status);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
		close(fd);
		snprintf(why, whylen, "status %s: another gateway is using it", d->cfg.status);
		return QKD_ERR_IO;
	}
	if (fd >= 0)
		close(fd);
	unlink(d->cfg.status);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0) {
		snprintf(why, whylen, "status %s: %s", d->cfg.status, strerror(errno));
		if (fd >= 0)
			close(fd);
		return QKD_ERR_IO;
	}
	d->status_fd = fd;
	d->status_ev = event_new(d->base, fd, EV_READ | EV_PERSIST, on_accept, d);
	if (!d->status_ev || event_add(d->status_ev, NULL) != 0) {
		snprintf(why, whylen, "status %s: cannot watch the socket", d->cfg.status);
		return QKD_ERR_NOMEM;
	}
	return 0;
}

void vpn_status_close(struct vpn_daemon *d)
{
	if (d->status_ev)
		event_free(d->status_ev);
	d->status_ev = NULL;
	if (d->status_fd >= 0) {
		close(d->status_fd);
		unlink(d->cfg.status);
	}
	d->status_fd = -1;
}
