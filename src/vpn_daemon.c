/* vpn_daemon.c - one `qkd vpn` gateway from start to stop (vpn_daemon.h):
 * read the tunnels' PSKs, start the key manager workers, open the TUN
 * device and the UDP socket (IKE and ESP share it, RFC 3948), build the
 * SA manager, the data plane and one IKE state machine per tunnel, then
 * run the event loop until SIGTERM or SIGINT. On a signal the IKE SAs are
 * deleted at the peers (3 s at most) before everything is torn down and
 * every key wiped.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/kme_client.h"
#include "qkd/secret.h"
#include "vpn_daemon.h"

/* How long a stopping gateway waits for its peers to confirm the deletes. */
#define VPN_CLOSE_SECONDS 3.0
/* A PSK file longer than this is not a key. */
#define VPN_PSK_MAX 1024

double vpn_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The file's bytes, all of them, are the key (docs/vpn.md "PSK"). */
static int read_psk(const char *path, uint8_t *buf, size_t *len, char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return QKD_ERR_IO;
	}
	n = read(fd, buf, VPN_PSK_MAX + 1);
	close(fd);
	if (n < (ssize_t)QKD_VPN_PSK_MIN_BYTES || n > VPN_PSK_MAX) {
		qkd_wipe(buf, VPN_PSK_MAX + 1);
		snprintf(why, whylen, "%s: a PSK is %u to %u bytes", path, QKD_VPN_PSK_MIN_BYTES,
			 VPN_PSK_MAX);
		return QKD_ERR_INVAL;
	}
	*len = (size_t)n;
	return 0;
}

static int new_tunnels(struct vpn_daemon *d, char *why, size_t whylen)
{
	uint8_t psk[VPN_PSK_MAX + 1];
	size_t psk_len = 0;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < d->cfg.n_tunnels; i++) {
		struct vpn_tunnel *vt = &d->tunnels[i];
		struct qkd_ike_params p = {0};

		vt->d = d;
		vt->index = i;
		rc = read_psk(d->cfg.tunnels[i].psk, psk, &psk_len, why, whylen);
		if (rc != 0)
			break;
		p.tunnel = &d->cfg.tunnels[i];
		p.psk = psk;
		p.psk_len = psk_len;
		p.ops = &vpn_ike_ops;
		p.arg = vt;
		p.log = &d->log;
		p.cookie_threshold = 16;
		p.dpd_s = d->cfg.tunnels[i].dpd_s;
		rc = qkd_ike_new(&p, &vt->ike);
		qkd_wipe(psk, sizeof psk);
		if (rc != 0)
			snprintf(why, whylen, "tunnel %s: %s", d->cfg.tunnels[i].name, qkd_strerror(rc));
	}
	return rc;
}

static bool all_idle(struct vpn_daemon *d)
{
	for (size_t i = 0; i < d->cfg.n_tunnels; i++) {
		struct qkd_ike_status s;

		qkd_ike_status(d->tunnels[i].ike, &s);
		if (s.state != QKD_IKE_IDLE)
			return false;
	}
	return true;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct vpn_daemon *d = arg;
	double now = vpn_now();

	(void)fd;
	(void)what;
	for (size_t i = 0; i < d->cfg.n_tunnels; i++)
		qkd_ike_tick(d->tunnels[i].ike, now);
	if (d->closing && (all_idle(d) || now >= d->close_deadline)) {
		event_base_loopbreak(d->base);
		return;
	}
	vpn_glue_arm_timer(d);
}

static void on_kme(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	vpn_glue_kme_ready(arg);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct vpn_daemon *d = arg;
	double now = vpn_now();

	(void)what;
	if (d->closing) {
		event_base_loopbreak(d->base);
		return;
	}
	qkd_logf(&d->log, QKD_LOG_INFO, "vpn %s: signal %d: deleting the IKE SAs and stopping",
		 d->cfg.name, (int)sig);
	d->closing = true;
	d->close_deadline = now + VPN_CLOSE_SECONDS;
	for (size_t i = 0; i < d->cfg.n_tunnels; i++)
		qkd_ike_close(d->tunnels[i].ike, now);
	vpn_glue_arm_timer(d);
}

static bool uses_qkd(const struct qkd_vpn_config *c)
{
	for (size_t i = 0; i < c->n_tunnels; i++)
		if (c->tunnels[i].qkd != QKD_VPN_QKD_OFF)
			return true;
	return false;
}

static int open_io(struct vpn_daemon *d, char *why, size_t whylen)
{
	const char *w = NULL;
	int rc;

	if (uses_qkd(&d->cfg)) {
		rc = vpn_kme_start(&d->cfg, &d->log, &d->kme, &d->kme_fd, why, whylen);
		if (rc != 0)
			return rc;
	}
	rc = qkd_tun_open_linux(d->cfg.tun, d->cfg.mtu, &d->tun, &w);
	if (rc != 0) {
		snprintf(why, whylen, "tun %s: %s", d->cfg.tun, w ? w : qkd_strerror(rc));
		return rc;
	}
	rc = qkd_dataplane_udp_open(&d->cfg.listen.sa, &d->udp_fd);
	if (rc != 0)
		snprintf(why, whylen, "listen %s: %s", d->cfg.listen.text, strerror(errno));
	return rc;
}

static int open_loop(struct vpn_daemon *d, char *why, size_t whylen)
{
	struct qkd_dataplane_params dp = {0};
	int rc;

	d->base = event_base_new();
	if (!d->base) {
		snprintf(why, whylen, "cannot start the event loop");
		return QKD_ERR_NOMEM;
	}
	rc = qkd_sa_mgr_new(d->cfg.n_tunnels, &d->sad);
	if (rc == 0) {
		dp.base = d->base;
		dp.tun = d->tun;
		dp.udp_fd = d->udp_fd;
		dp.cfg = &d->cfg;
		dp.sad = d->sad;
		dp.ops = &vpn_dp_ops;
		dp.arg = d;
		dp.log = &d->log;
		dp.now = vpn_now;
		rc = qkd_dataplane_new(&dp, &d->dp);
	}
	if (rc != 0) {
		snprintf(why, whylen, "data plane: %s", qkd_strerror(rc));
		return rc;
	}
	d->timer = evtimer_new(d->base, on_timer, d);
	d->sig_term = evsignal_new(d->base, SIGTERM, on_signal, d);
	d->sig_int = evsignal_new(d->base, SIGINT, on_signal, d);
	if (d->kme)
		d->kme_ev = event_new(d->base, d->kme_fd, EV_READ | EV_PERSIST, on_kme, d);
	if (!d->timer || !d->sig_term || !d->sig_int || (d->kme && !d->kme_ev) ||
	    event_add(d->sig_term, NULL) || event_add(d->sig_int, NULL) ||
	    (d->kme_ev && event_add(d->kme_ev, NULL))) {
		snprintf(why, whylen, "cannot set up the event loop's events");
		return QKD_ERR_NOMEM;
	}
	return 0;
}

int vpn_daemon_run(struct vpn_daemon *d, const char *keylog, char *why, size_t whylen)
{
	int rc;

	signal(SIGPIPE, SIG_IGN);
	d->udp_fd = d->status_fd = -1;
	d->started = vpn_now();
	rc = open_io(d, why, whylen);
	if (rc == 0)
		rc = open_loop(d, why, whylen);
	if (rc == 0)
		rc = new_tunnels(d, why, whylen);
	if (rc == 0 && keylog)
		rc = vpn_keylog_open(d, keylog, why, whylen);
	if (rc == 0)
		rc = vpn_status_listen(d, why, whylen);
	if (rc == 0 && d->cfg.metrics.sa.len)
		rc = vpn_metrics_start(d, why, whylen);
	if (rc != 0)
		return rc;
	qkd_logf(&d->log, QKD_LOG_INFO, "vpn %s: %zu tunnel(s) on %s, device %s, UDP %s",
		 d->cfg.name, d->cfg.n_tunnels, d->config_path, d->tun->name, d->cfg.listen.text);
	for (size_t i = 0; i < d->cfg.n_tunnels; i++)
		if (d->cfg.tunnels[i].initiate && qkd_ike_start(d->tunnels[i].ike, vpn_now()) != 0)
			qkd_logf(&d->log, QKD_LOG_ERROR, "vpn: tunnel %s: cannot start IKE",
				 d->cfg.tunnels[i].name);
	vpn_glue_arm_timer(d);
	event_base_dispatch(d->base);
	qkd_logf(&d->log, QKD_LOG_INFO, "vpn %s: stopped", d->cfg.name);
	return 0;
}

void vpn_daemon_free(struct vpn_daemon *d)
{
	vpn_metrics_stop(d);
	vpn_status_close(d);
	/* The workers first: an answer in flight must not meet a freed IKE. */
	vpn_kme_stop(d->kme);
	d->kme = NULL;
	for (size_t i = 0; i < d->cfg.n_tunnels; i++)
		qkd_ike_free(d->tunnels[i].ike);
	vpn_glue_free_deferred(d);
	qkd_dataplane_free(d->dp);
	qkd_sa_mgr_free(d->sad);
	if (d->kme_ev)
		event_free(d->kme_ev);
	if (d->timer)
		event_free(d->timer);
	if (d->sig_term)
		event_free(d->sig_term);
	if (d->sig_int)
		event_free(d->sig_int);
	if (d->base)
		event_base_free(d->base);
	if (d->udp_fd >= 0)
		close(d->udp_fd);
	qkd_tun_close(d->tun);
	vpn_keylog_close(d);
}
