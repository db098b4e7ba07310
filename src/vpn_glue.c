/* vpn_glue.c - where the gateway's parts meet (vpn_daemon.h): the IKE state
 * machines' callbacks (send through the data plane's socket, install and
 * delete ESP SAs in the SA manager, ask the key manager workers for QKD
 * keys) and the data plane's (IKE datagrams to the right tunnel, ACQUIRE,
 * soft lifetimes). Every callback runs on the event loop.
 */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/esp.h"
#include "qkd/secret.h"
#include "qkd/wire.h"
#include "vpn_daemon.h"

/* ---- IKE → the gateway ---- */

static int ike_send(void *arg, const uint8_t *msg, size_t len)
{
	struct vpn_tunnel *vt = arg;
	const struct qkd_netaddr *peer = &vt->d->cfg.tunnels[vt->index].peer.sa;

	return qkd_dataplane_send_ike(vt->d->dp, (const struct sockaddr *)&peer->ss, peer->len,
				      msg, len);
}

/* The SA's lifetimes from the tunnel's (RFC 4301 4.4.2.1). The rekey
 * every tunnel->rekey_s is the IKE SA initiator's timer (qkd/ike_sa.h);
 * the soft seconds limit, which would fire at both ends at once and make
 * them rekey twice, is a backstop halfway to the hard one. Bytes and
 * packets, which only the data plane sees, rekey at their soft limit. */
static void limits_of(const struct qkd_vpn_tunnel *t, struct qkd_esp_params *p)
{
	p->soft.seconds = t->seconds.hard > t->seconds.soft
				  ? t->seconds.soft + (t->seconds.hard - t->seconds.soft) / 2
				  : t->seconds.soft;
	p->hard.seconds = t->seconds.hard;
	p->soft.bytes = t->kbytes.soft * 1024u;
	p->hard.bytes = t->kbytes.hard * 1024u;
	p->soft.packets = t->packets.soft;
	p->hard.packets = t->packets.hard;
}

static struct vpn_pair *pair_find(struct vpn_tunnel *vt, uint32_t spi_in)
{
	for (size_t i = 0; i < vt->npairs; i++)
		if (vt->pairs[i].spi_in == spi_in)
			return &vt->pairs[i];
	return NULL;
}

static void pair_add(struct vpn_tunnel *vt, const struct qkd_ike_child *c, double now)
{
	struct vpn_pair *p;

	if (vt->npairs == VPN_PAIRS_MAX) {
		memmove(&vt->pairs[0], &vt->pairs[1], (VPN_PAIRS_MAX - 1) * sizeof vt->pairs[0]);
		vt->npairs--;
	}
	p = &vt->pairs[vt->npairs++];
	memset(p, 0, sizeof *p);
	p->spi_in = c->spi_in;
	p->spi_out = c->spi_out;
	p->qkd = c->qkd;
	memcpy(p->key_id, c->key_id, sizeof p->key_id);
	p->installed_at = now;
}

static void latency_add(struct vpn_tunnel *vt, double s)
{
	vt->latencies[vt->lat_next] = s;
	vt->lat_next = (vt->lat_next + 1) % VPN_LATENCIES_MAX;
	if (vt->nlat < VPN_LATENCIES_MAX)
		vt->nlat++;
}

static int ike_child_install(void *arg, const struct qkd_ike_child *c)
{
	struct vpn_tunnel *vt = arg;
	struct vpn_daemon *d = vt->d;
	const struct qkd_vpn_tunnel *t = &d->cfg.tunnels[vt->index];
	struct qkd_esp_params p = {0};
	struct qkd_esp_sa *in = NULL, *out = NULL;
	double now = vpn_now();
	int rc;

	limits_of(t, &p);
	p.now = (uint64_t)now;
	p.keymat_len = c->key_len;
	p.dir = QKD_ESP_IN;
	p.spi = c->spi_in;
	p.keymat = c->key_in;
	rc = qkd_esp_sa_new(&p, &in);
	if (rc == 0) {
		p.dir = QKD_ESP_OUT;
		p.spi = c->spi_out;
		p.keymat = c->key_out;
		rc = qkd_esp_sa_new(&p, &out);
	}
	if (rc == 0) {
		rc = qkd_sa_mgr_install(d->sad, vt->index, in, out, c->initiator);
		in = out = NULL;	/* the manager owns them, even on error */
	}
	qkd_esp_sa_free(in);
	qkd_esp_sa_free(out);
	if (rc != 0) {
		vt->install_failures++;
		qkd_logf(&d->log, QKD_LOG_ERROR, "vpn: tunnel %s: cannot install SPIs %08x/%08x: %s",
			 t->name, c->spi_in, c->spi_out, qkd_strerror(rc));
		return rc;
	}
	vt->installs++;
	if (c->qkd)
		vt->qkd_bits += 256;
	if (c->initiator && c->old_spi_in != 0 && vt->exchange_started > 0) {
		latency_add(vt, now - vt->exchange_started);
		vt->exchange_started = 0;
	}
	pair_add(vt, c, now);
	vpn_keylog_child(d, vt->index, c);
	qkd_logf(&d->log, QKD_LOG_INFO,
		 "vpn: tunnel %s: SA in %08x out %08x installed%s%s%s (%s)", t->name, c->spi_in,
		 c->spi_out, c->qkd ? ", QKD key " : ", no QKD key", c->qkd ? c->key_id : "",
		 c->old_spi_in ? ", a rekey" : "", c->initiator ? "initiator" : "responder");
	return 0;
}

static void ike_child_delete(void *arg, uint32_t spi_in, uint32_t spi_out)
{
	struct vpn_tunnel *vt = arg;
	struct vpn_daemon *d = vt->d;
	struct vpn_pair *p = pair_find(vt, spi_in);
	int rc = qkd_sa_mgr_remove(d->sad, spi_in);

	if (p) {
		size_t i = (size_t)(p - vt->pairs);

		memmove(p, p + 1, (vt->npairs - i - 1) * sizeof *p);
		vt->npairs--;
	}
	vt->deletes++;
	qkd_logf(&d->log, rc == 0 ? QKD_LOG_INFO : QKD_LOG_WARN,
		 "vpn: tunnel %s: SA in %08x out %08x deleted%s", d->cfg.tunnels[vt->index].name,
		 spi_in, spi_out, rc == 0 ? "" : " (it was not installed)");
}

static void ike_ppk_request(void *arg, const struct qkd_ike_ppk_req *r)
{
	struct vpn_tunnel *vt = arg;

	if (r->op == QKD_IKE_PPK_NEW)
		vt->exchange_started = vpn_now();
	vpn_kme_request(vt->d->kme, vt->index, r);
}

static void ike_event(void *arg, enum qkd_ike_event ev, const char *detail)
{
	struct vpn_tunnel *vt = arg;

	snprintf(vt->last_event, sizeof vt->last_event, "%s%s%s", qkd_ike_event_name(ev),
		 detail && *detail ? ": " : "", detail ? detail : "");
	if (ev == QKD_IKE_EV_IKE_DOWN)
		vt->npairs = 0;
}

static void ike_keylog(void *arg, const struct qkd_ike_keylog *k)
{
	struct vpn_tunnel *vt = arg;

	vpn_keylog_ike(vt->d, vt->index, k);
}

const struct qkd_ike_ops vpn_ike_ops = {
	.send = ike_send,
	.child_install = ike_child_install,
	.child_delete = ike_child_delete,
	.ppk_request = ike_ppk_request,
	.event = ike_event,
	.keylog = ike_keylog,
};

/* ---- the data plane → the gateway ---- */

static bool same_host(const struct sockaddr *a, const struct qkd_netaddr *b)
{
	struct qkd_netaddr x;

	if (qkd_netaddr_from_sockaddr(a, a->sa_family == AF_INET ? sizeof(struct sockaddr_in)
							       : sizeof(struct sockaddr_in6),
				      &x) != 0)
		return false;
	qkd_netaddr_set_port(&x, qkd_netaddr_port(b));
	return qkd_netaddr_equal(&x, b);
}

/* The tunnel whose peer is `from`: first an exact address and port, then
 * the address alone (a NAT may change the port). */
static struct vpn_tunnel *peer_tunnel(struct vpn_daemon *d, const struct sockaddr *from)
{
	for (size_t i = 0; i < d->cfg.n_tunnels; i++) {
		struct qkd_netaddr x;

		if (qkd_netaddr_from_sockaddr(from, d->cfg.tunnels[i].peer.sa.len, &x) == 0 &&
		    qkd_netaddr_equal(&x, &d->cfg.tunnels[i].peer.sa))
			return &d->tunnels[i];
	}
	for (size_t i = 0; i < d->cfg.n_tunnels; i++)
		if (same_host(from, &d->cfg.tunnels[i].peer.sa))
			return &d->tunnels[i];
	return NULL;
}

/* A request that opens an IKE SA (SPIr zero) goes to the tunnel whose peer
 * sent it. Everything else goes by SPI. */
static struct vpn_tunnel *tunnel_for(struct vpn_daemon *d, const struct qkd_ike_hdr *h,
				     const struct sockaddr *from)
{
	static const uint8_t zero[8];

	for (size_t i = 0; i < d->cfg.n_tunnels; i++)
		if (qkd_ike_owns(d->tunnels[i].ike, h->spi_i, h->spi_r))
			return &d->tunnels[i];
	return memcmp(h->spi_r, zero, 8) == 0 ? peer_tunnel(d, from) : NULL;
}

/* A request on an IKE SA we do not know, most likely because this gateway
 * restarted and the peer still holds the old one: tell the peer at once
 * with an unprotected INVALID_IKE_SPI (RFC 7296 section 2.21.4) rather
 * than let it retransmit for a minute. Only to a configured peer (a
 * stranger gets nothing to reflect at a third party), at most
 * VPN_INVALID_SPI_RATE a second in all; never a response, an
 * IKE_SA_INIT or garbage (qkd_ike_invalid_spi_reply refuses them). */
static void answer_invalid_spi(struct vpn_daemon *d, const uint8_t *msg, size_t len,
			       const struct sockaddr *from, socklen_t fromlen)
{
	struct qkd_wbuf w;
	struct vpn_tunnel *vt = peer_tunnel(d, from);

	qkd_wbuf_init(&w);
	if (vt == NULL || qkd_ike_invalid_spi_reply(msg, len, &w) != 0)
		goto out;
	if (!qkd_ike_rate_take(&d->invalid_spi_rate, vpn_now(), VPN_INVALID_SPI_RATE)) {
		d->invalid_spi_limited++;
		goto out;
	}
	if (qkd_dataplane_send_ike(d->dp, from, fromlen, w.p, w.len) == 0) {
		d->invalid_spi_sent++;
		qkd_logf(&d->log, QKD_LOG_DEBUG,
			 "vpn: tunnel %s: request on an unknown IKE SA answered INVALID_IKE_SPI",
			 d->cfg.tunnels[vt->index].name);
	}
out:
	qkd_wbuf_cleanup(&w);
}

static void dp_ike(void *arg, const uint8_t *msg, size_t len, const struct sockaddr *from,
		   socklen_t fromlen)
{
	struct vpn_daemon *d = arg;
	struct qkd_ike_hdr h;
	struct qkd_rbuf r;
	struct vpn_tunnel *vt;

	/* Only the SPIs decide where a message goes; the IKE layer
	 * validates the rest (qkd_ike_input). */
	qkd_rbuf_init(&r, msg, len);
	qkd_get_copy(&r, h.spi_i, sizeof h.spi_i);
	qkd_get_copy(&r, h.spi_r, sizeof h.spi_r);
	vt = qkd_rbuf_ok(&r) && len >= QKD_IKE_HDR_LEN ? tunnel_for(d, &h, from) : NULL;
	if (!vt) {
		d->ike_unmatched++;
		qkd_logf(&d->log, QKD_LOG_DEBUG, "vpn: IKE message of %zu bytes for no tunnel dropped",
			 len);
		answer_invalid_spi(d, msg, len, from, fromlen);
		return;
	}
	(void)qkd_ike_input(vt->ike, msg, len, vpn_now());
	vpn_glue_arm_timer(d);
}

static void dp_acquire(void *arg, size_t t)
{
	struct vpn_daemon *d = arg;

	if (d->cfg.tunnels[t].initiate && !d->closing && qkd_ike_start(d->tunnels[t].ike, vpn_now()) == 0)
		vpn_glue_arm_timer(d);
}

static void dp_soft_expired(void *arg, size_t t, uint32_t spi, enum qkd_esp_dir dir)
{
	struct vpn_daemon *d = arg;
	struct vpn_tunnel *vt = &d->tunnels[t];
	uint32_t spi_in = spi;

	if (dir == QKD_ESP_OUT)
		for (size_t i = 0; i < vt->npairs; i++)
			if (vt->pairs[i].spi_out == spi)
				spi_in = vt->pairs[i].spi_in;
	qkd_ike_child_soft_expired(vt->ike, spi_in, vpn_now());
	vpn_glue_arm_timer(d);
}

const struct qkd_dataplane_ops vpn_dp_ops = {
	.ike = dp_ike,
	.acquire = dp_acquire,
	.soft_expired = dp_soft_expired,
};

/* ---- key manager answers and the timer ---- */

static void deliver(struct vpn_daemon *d, struct vpn_kme_result *r)
{
	(void)qkd_ike_ppk_answer(d->tunnels[r->tunnel].ike, r->token, r->status, r->key_id, r->key,
				 r->key_len, vpn_now());
	qkd_wipe(r, sizeof *r);
}

static void on_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct vpn_deferred *df = arg;

	(void)fd;
	(void)what;
	deliver(df->d, &df->r);
	df->busy = false;
	vpn_glue_arm_timer(df->d);
}

/* Hold a fresh key for the tunnel's ppk_lead (docs/vpn.md, "strongSwan
 * as responder"): false when no slot is free, and it goes at once. */
static bool defer(struct vpn_daemon *d, const struct vpn_kme_result *r, double lead)
{
	struct timeval tv = {(time_t)lead, (suseconds_t)((lead - (double)(time_t)lead) * 1e6)};

	for (size_t i = 0; i < VPN_DEFERRED_MAX; i++) {
		struct vpn_deferred *df = &d->deferred[i];

		if (df->busy)
			continue;
		if (!df->ev)
			df->ev = evtimer_new(d->base, on_deferred, df);
		if (!df->ev || evtimer_add(df->ev, &tv) != 0)
			return false;
		df->d = d;
		df->r = *r;
		df->busy = true;
		return true;
	}
	return false;
}

void vpn_glue_kme_ready(struct vpn_daemon *d)
{
	struct vpn_kme_result r;

	while (vpn_kme_take(d->kme, &r)) {
		const struct qkd_vpn_tunnel *t = &d->cfg.tunnels[r.tunnel];

		if (r.status != 0) {
			qkd_logf(&d->log, QKD_LOG_WARN, "vpn: tunnel %s: key manager: %s", t->name,
				 r.why);
		} else if (!r.fetched_for_peer && t->ppk_lead_s > 0) {
			qkd_logf(&d->log, QKD_LOG_INFO,
				 "vpn: tunnel %s: QKD key_ID %s fetched; named to the peer in %.1f s",
				 t->name, r.key_id, t->ppk_lead_s);
			if (defer(d, &r, t->ppk_lead_s)) {
				qkd_wipe(&r, sizeof r);
				continue;
			}
		}
		deliver(d, &r);
	}
	vpn_glue_arm_timer(d);
}

void vpn_glue_free_deferred(struct vpn_daemon *d)
{
	for (size_t i = 0; i < VPN_DEFERRED_MAX; i++) {
		if (d->deferred[i].ev)
			event_free(d->deferred[i].ev);
		qkd_wipe(&d->deferred[i], sizeof d->deferred[i]);
	}
}

void vpn_glue_arm_timer(struct vpn_daemon *d)
{
	double now = vpn_now(), next = now + 1.0, in;
	struct timeval tv;

	for (size_t i = 0; i < d->cfg.n_tunnels; i++) {
		double n = qkd_ike_next_timer(d->tunnels[i].ike, now);

		if (n < next)
			next = n;
	}
	in = next > now ? next - now : 0;
	tv.tv_sec = (time_t)in;
	tv.tv_usec = (suseconds_t)((in - (double)tv.tv_sec) * 1e6);
	evtimer_add(d->timer, &tv);
}
