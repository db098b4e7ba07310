/* dataplane_out.c - the outbound half of the data plane (qkd/dataplane.h):
 * up to QKD_DATAPLANE_BATCH packets read from the TUN device per batch,
 * each matched to its tunnel (qkd/spd.h), encapsulated on the tunnel's
 * active outbound SA (qkd/esp.h, RFC 4303 s3.3) into its own fixed slot,
 * and the batch sent with one sendmmsg to the tunnels' peers (RFC 3948).
 * Neighbours: dataplane.c (SAs, counters), dataplane_udp.c (sendmmsg). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "dataplane_int.h"
#include "qkd/spd.h"

/* Encapsulate dp->inner (len bytes) for tunnel t into slot; 0 and *out_len,
 * or a drop already counted. */
static int seal(struct qkd_dataplane *dp, size_t t, const struct qkd_ip_addrs *a, size_t len,
		uint8_t *slot, size_t *out_len)
{
	struct dp_held *h = dp_hold_out(dp, t);
	int rc;

	if (h == NULL) {
		dp_drop(dp, QKD_DP_DROP_NO_SA, t, "no outbound SA yet");
		dp_acquire(dp, t);
		return QKD_ERR_NOKEY;
	}
	if (h->hard) {
		dp_drop(dp, QKD_DP_DROP_EXPIRED, t, "the outbound SA is past its hard lifetime");
		return QKD_ERR_NOKEY;
	}
	rc = qkd_esp_encapsulate(h->sa, a->family == 4 ? 4 : 41, dp->inner, len, slot, dp->tx_slot,
				 out_len);
	if (rc == QKD_ERR_NOKEY)
		dp_drop(dp, QKD_DP_DROP_EXPIRED, t, "the outbound SA is exhausted");
	else if (rc != QKD_OK)
		dp_drop(dp, QKD_DP_DROP_MALFORMED, t, qkd_strerror(rc));
	return rc;
}

/* The addresses go into the (rate-limited) line: which traffic lacks a
 * policy is what the operator needs to know. Formatted only when logged. */
static void no_policy(struct qkd_dataplane *dp, const struct qkd_ip_addrs *a)
{
	char src[INET6_ADDRSTRLEN] = "?", dst[INET6_ADDRSTRLEN] = "?";
	char why[2 * INET6_ADDRSTRLEN + 64];
	int af = a->family == 4 ? AF_INET : AF_INET6;

	if (!dp_drop_logs(dp, QKD_DP_DROP_NO_POLICY)) {
		dp_drop(dp, QKD_DP_DROP_NO_POLICY, SIZE_MAX, "");
		return;
	}
	inet_ntop(af, a->src, src, sizeof src);
	inet_ntop(af, a->dst, dst, sizeof dst);
	snprintf(why, sizeof why, "no tunnel's selectors cover %s -> %s (protocol %u)", src, dst,
		 (unsigned)a->next);
	dp_drop(dp, QKD_DP_DROP_NO_POLICY, SIZE_MAX, why);
}

/* Read one packet into the batch's slot n, ready to send: 1 when the slot
 * was filled, 0 when the packet was dropped, -1 when the device is empty. */
static int one_packet(struct qkd_dataplane *dp, size_t n)
{
	uint8_t *slot = dp->tx + n * dp->tx_slot;
	/* In plain mode the packet lands behind its tag, no copy. */
	uint8_t *buf = dp->plain ? slot + DP_PLAIN_TAG_LEN : dp->inner;
	struct qkd_ip_addrs a;
	size_t len = 0, wire = 0, t;
	const char *why;
	int rc;

	rc = qkd_tun_read(dp->p.tun, buf, dp->inner_cap, &len);
	if (rc == QKD_ERR_RANGE) {
		dp_drop(dp, QKD_DP_DROP_MALFORMED, SIZE_MAX, "a packet over the TUN MTU");
		return 0;
	}
	if (rc != QKD_OK || len == 0)
		return -1;
	dp->stats.tun_reads++;
	if (qkd_ip_addrs_read(buf, len, &a, &why) != QKD_OK) {
		dp_drop(dp, QKD_DP_DROP_MALFORMED, SIZE_MAX, why);
		return 0;
	}
	if (qkd_spd_outbound(dp->p.cfg, &a, &t) != QKD_OK) {
		no_policy(dp, &a);
		return 0;
	}
	if (dp->plain) {
		uint32_t tag = (uint32_t)t + 1;

		slot[0] = (uint8_t)(tag >> 24);
		slot[1] = (uint8_t)(tag >> 16);
		slot[2] = (uint8_t)(tag >> 8);
		slot[3] = (uint8_t)tag;
		wire = len + DP_PLAIN_TAG_LEN;
	} else if (seal(dp, t, &a, len, slot, &wire) != QKD_OK) {
		return 0;
	}
	dp->txiov[n] = (struct iovec){ .iov_base = slot, .iov_len = wire };
	dp->txm[n].msg_hdr.msg_name = (void *)&dp->p.cfg->tunnels[t].peer.sa.ss;
	dp->txm[n].msg_hdr.msg_namelen = dp->p.cfg->tunnels[t].peer.sa.len;
	dp->txtunnel[n] = t;
	dp->txinner[n] = len;
	return 1;
}

void dp_tun_readable(struct qkd_dataplane *dp)
{
	for (int b = 0; b < DP_BATCHES_PER_WAKEUP; b++) {
		size_t n = 0, reads = 0;
		int r = 0;

		dp->now = dp_clock(dp);
		/* Bounded by reads, not by packets kept: a flood of drops ends too. */
		while (reads < DP_BATCH && (r = one_packet(dp, n)) >= 0) {
			reads++;
			n += (size_t)r;
		}
		dp_release(dp);
		if (n > 0)
			dp_udp_flush(dp, n);
		if (r < 0)
			break;
	}
}
