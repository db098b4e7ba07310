/* dataplane.c - the gateway's packet path (qkd/dataplane.h): the object,
 * its two libevent events (TUN readable, UDP readable), the counters and
 * their rate-limited log, and the SAs one batch holds. The per-packet work
 * is in dataplane_out.c (TUN to UDP) and dataplane_in.c (UDP to TUN); the
 * socket in dataplane_udp.c. */
#include <event2/event.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataplane_int.h"
#include "qkd/secret.h"
#include "qkd/testing.h"

static const char *const drop_names[QKD_DP_DROP_COUNT] = {
	[QKD_DP_DROP_NO_POLICY] = "no_policy",	 [QKD_DP_DROP_NO_SA] = "no_sa",
	[QKD_DP_DROP_MALFORMED] = "malformed",	 [QKD_DP_DROP_UNKNOWN_SPI] = "unknown_spi",
	[QKD_DP_DROP_REPLAY] = "replay",	 [QKD_DP_DROP_BAD_ICV] = "bad_icv",
	[QKD_DP_DROP_EXPIRED] = "expired",	 [QKD_DP_DROP_POLICY_IN] = "policy_in",
	[QKD_DP_DROP_IO] = "io",
};

const char *qkd_dp_drop_name(enum qkd_dp_drop d)
{
	return (unsigned)d < QKD_DP_DROP_COUNT ? drop_names[d] : "unknown";
}

double dp_clock(const struct qkd_dataplane *dp)
{
	struct timespec ts;

	if (dp->p.now != NULL)
		return dp->p.now();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool dp_drop_logs(const struct qkd_dataplane *dp, enum qkd_dp_drop d)
{
	return dp->now - dp->log_at[d] >= 1.0;
}

void dp_drop(struct qkd_dataplane *dp, enum qkd_dp_drop d, size_t tunnel, const char *why)
{
	dp->stats.drops[d]++;
	if (tunnel < dp->ntunnels)
		dp->tstats[tunnel].drops[d]++;
	/* A flood of bad packets must not become a flood of log lines. */
	if (!dp_drop_logs(dp, d)) {
		dp->log_quiet[d]++;
		return;
	}
	qkd_logf(dp->p.log, QKD_LOG_INFO, "dataplane: drop %s%s%s: %s (%llu more since the last line)",
		 drop_names[d], tunnel < dp->ntunnels ? " on tunnel " : "",
		 tunnel < dp->ntunnels ? dp->p.cfg->tunnels[tunnel].name : "", why,
		 (unsigned long long)dp->log_quiet[d]);
	dp->log_at[d] = dp->now;
	dp->log_quiet[d] = 0;
}

/* Queue a soft-expiry report for h's SA unless it was made already. */
static void note_state(struct qkd_dataplane *dp, const struct dp_held *h)
{
	struct dp_sa_mark *ring = &dp->notified[h->tunnel * DP_NOTIFIED_PER_TUNNEL];
	size_t *next = &dp->notified_next[h->tunnel];

	if (qkd_esp_sa_state(h->sa, (uint64_t)dp->now) == QKD_ESP_OK)
		return;
	for (size_t i = 0; i < DP_NOTIFIED_PER_TUNNEL; i++)
		if (ring[i].used && ring[i].spi == h->spi && ring[i].dir == h->dir)
			return;
	if (dp->nnotices == DP_BATCH)
		return;		/* reported at the next release */
	ring[*next] = (struct dp_sa_mark){ .spi = h->spi, .dir = h->dir, .used = true };
	*next = (*next + 1) % DP_NOTIFIED_PER_TUNNEL;
	dp->notices[dp->nnotices++] =
		(struct dp_notice){ .tunnel = h->tunnel, .spi = h->spi, .dir = h->dir };
}

static struct dp_held *hold(struct qkd_dataplane *dp, struct qkd_esp_sa *sa, size_t t)
{
	struct dp_held *h;

	if (sa == NULL)
		return NULL;
	h = &dp->held[dp->nheld++];
	*h = (struct dp_held){ .sa = sa, .tunnel = t, .spi = qkd_esp_sa_spi(sa) };
	h->hard = qkd_esp_sa_state(sa, (uint64_t)dp->now) == QKD_ESP_HARD_EXPIRED;
	return h;
}

struct dp_held *dp_hold_out(struct qkd_dataplane *dp, size_t t)
{
	struct dp_held *h;

	for (size_t i = 0; i < dp->nheld; i++)
		if (dp->held[i].dir == QKD_ESP_OUT && dp->held[i].tunnel == t)
			return &dp->held[i];
	if (dp->nheld == DP_BATCH)
		dp_release(dp);
	h = hold(dp, qkd_sa_mgr_checkout_out(dp->p.sad, t), t);
	if (h != NULL)
		h->dir = QKD_ESP_OUT;
	return h;
}

struct dp_held *dp_hold_in(struct qkd_dataplane *dp, uint32_t spi)
{
	struct qkd_esp_sa *sa;
	struct dp_held *h;
	size_t t = SIZE_MAX;

	for (size_t i = 0; i < dp->nheld; i++)
		if (dp->held[i].dir == QKD_ESP_IN && dp->held[i].spi == spi)
			return &dp->held[i];
	if (dp->nheld == DP_BATCH)
		dp_release(dp);
	sa = qkd_sa_mgr_checkout_in(dp->p.sad, spi, &t);
	if (sa != NULL && t >= dp->ntunnels) {
		/* An SA manager made for more tunnels than the configuration. */
		qkd_sa_mgr_checkin(dp->p.sad, sa);
		sa = NULL;
	}
	h = hold(dp, sa, t);
	if (h != NULL)
		h->dir = QKD_ESP_IN;
	return h;
}

void dp_release(struct qkd_dataplane *dp)
{
	size_t n;

	for (size_t i = 0; i < dp->nheld; i++) {
		note_state(dp, &dp->held[i]);
		qkd_sa_mgr_checkin(dp->p.sad, dp->held[i].sa);
	}
	dp->nheld = 0;
	/* Copy first: a callback may re-enter through another event. */
	n = dp->nnotices;
	dp->nnotices = 0;
	for (size_t i = 0; i < n; i++) {
		struct dp_notice nt = dp->notices[i];

		qkd_logf(dp->p.log, QKD_LOG_INFO, "dataplane: %s SA %08x of tunnel %s expires soon",
			 nt.dir == QKD_ESP_OUT ? "outbound" : "inbound", (unsigned)nt.spi,
			 dp->p.cfg->tunnels[nt.tunnel].name);
		if (dp->p.ops != NULL && dp->p.ops->soft_expired != NULL)
			dp->p.ops->soft_expired(dp->p.arg, nt.tunnel, nt.spi, nt.dir);
	}
}

void dp_acquire(struct qkd_dataplane *dp, size_t t)
{
	if (dp->now - dp->acquire_at[t] < 1.0)
		return;
	dp->acquire_at[t] = dp->now;
	dp_release(dp);
	if (dp->p.ops != NULL && dp->p.ops->acquire != NULL)
		dp->p.ops->acquire(dp->p.arg, t);
}

static void on_tun(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dp_tun_readable(arg);
}

static void on_udp(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dp_udp_readable(arg);
}

static bool params_ok(const struct qkd_dataplane_params *p)
{
	return p != NULL && p->base != NULL && p->tun != NULL && p->tun->fd >= 0 &&
	       p->udp_fd >= 0 && p->cfg != NULL && p->cfg->n_tunnels > 0 && p->sad != NULL;
}

/* The buffers, sized from the TUN MTU once; nothing is allocated later. */
static int alloc_buffers(struct qkd_dataplane *dp)
{
	size_t nt = dp->ntunnels;

	dp->inner_cap = dp->p.tun->mtu != 0 ? dp->p.tun->mtu : QKD_TUN_MTU_MAX;
	dp->tx_slot = dp->inner_cap + QKD_ESP_OVERHEAD_MAX + DP_PLAIN_TAG_LEN;
	dp->rx_slot = dp->inner_cap + 128 > DP_RX_SLOT_MIN ? dp->inner_cap + 128 : DP_RX_SLOT_MIN;
	dp->inner = malloc(dp->inner_cap);
	dp->tx = malloc(DP_BATCH * dp->tx_slot);
	dp->rx = malloc(DP_BATCH * dp->rx_slot);
	dp->plaintext = malloc(dp->rx_slot);
	dp->notified = calloc(nt * DP_NOTIFIED_PER_TUNNEL, sizeof *dp->notified);
	dp->notified_next = calloc(nt, sizeof *dp->notified_next);
	dp->acquire_at = malloc(nt * sizeof *dp->acquire_at);
	dp->tstats = calloc(nt, sizeof *dp->tstats);
	if (dp->inner == NULL || dp->tx == NULL || dp->rx == NULL || dp->plaintext == NULL ||
	    dp->notified == NULL || dp->notified_next == NULL || dp->acquire_at == NULL ||
	    dp->tstats == NULL)
		return QKD_ERR_NOMEM;
	for (size_t t = 0; t < nt; t++)
		dp->acquire_at[t] = -INFINITY;
	for (size_t d = 0; d < QKD_DP_DROP_COUNT; d++)
		dp->log_at[d] = -INFINITY;
	for (size_t i = 0; i < DP_BATCH; i++) {
		dp->rxiov[i] = (struct iovec){ .iov_base = dp->rx + i * dp->rx_slot,
					       .iov_len = dp->rx_slot };
		dp->txm[i].msg_hdr.msg_iov = &dp->txiov[i];
		dp->txm[i].msg_hdr.msg_iovlen = 1;
	}
	return QKD_OK;
}

int qkd_dataplane_new(const struct qkd_dataplane_params *p, struct qkd_dataplane **out)
{
	struct qkd_dataplane *dp = NULL;
	int rc = QKD_ERR_INVAL;

	*out = NULL;
	if (!params_ok(p))
		goto out;
	rc = QKD_ERR_NOMEM;
	dp = calloc(1, sizeof *dp);
	if (dp == NULL)
		goto out;
	dp->p = *p;
	dp->ntunnels = p->cfg->n_tunnels;
	rc = alloc_buffers(dp);
	if (rc != QKD_OK)
		goto out;
	rc = QKD_ERR_NOMEM;
	dp->tun_ev = event_new(p->base, p->tun->fd, EV_READ | EV_PERSIST, on_tun, dp);
	dp->udp_ev = event_new(p->base, p->udp_fd, EV_READ | EV_PERSIST, on_udp, dp);
	if (dp->tun_ev == NULL || dp->udp_ev == NULL || event_add(dp->tun_ev, NULL) != 0 ||
	    event_add(dp->udp_ev, NULL) != 0)
		goto out;
	*out = dp;
	dp = NULL;
	rc = QKD_OK;
out:
	qkd_dataplane_free(dp);
	return rc;
}

void qkd_dataplane_free(struct qkd_dataplane *dp)
{
	if (dp == NULL)
		return;
	if (dp->tun_ev != NULL)
		event_free(dp->tun_ev);
	if (dp->udp_ev != NULL)
		event_free(dp->udp_ev);
	/* Inner packets in cleartext passed through these. */
	if (dp->inner != NULL)
		qkd_wipe(dp->inner, dp->inner_cap);
	if (dp->tx != NULL)
		qkd_wipe(dp->tx, DP_BATCH * dp->tx_slot);
	if (dp->rx != NULL)
		qkd_wipe(dp->rx, DP_BATCH * dp->rx_slot);
	if (dp->plaintext != NULL)
		qkd_wipe(dp->plaintext, dp->rx_slot);
	free(dp->inner);
	free(dp->tx);
	free(dp->rx);
	free(dp->plaintext);
	free(dp->notified);
	free(dp->notified_next);
	free(dp->acquire_at);
	free(dp->tstats);
	free(dp);
}

void qkd_dataplane_stats(const struct qkd_dataplane *dp, struct qkd_dp_stats *all)
{
	*all = dp->stats;
}

void qkd_dataplane_tunnel_stats(const struct qkd_dataplane *dp, size_t t,
				struct qkd_dp_tunnel_stats *out)
{
	if (t < dp->ntunnels)
		*out = dp->tstats[t];
	else
		memset(out, 0, sizeof *out);
}

void qkd_dataplane_testing_plain(struct qkd_dataplane *dp, bool on)
{
	dp->plain = on;
}

void qkd_dataplane_testing_gso(struct qkd_dataplane *dp, bool on)
{
	dp->gso_off = !on;
}
