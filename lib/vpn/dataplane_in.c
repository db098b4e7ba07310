/* dataplane_in.c - the inbound half of the data plane (qkd/dataplane.h):
 * a recvmmsg batch from the gateway's UDP socket, each datagram classified
 * (RFC 3948 s2: keepalive, IKE behind the non-ESP marker, ESP), ESP
 * decapsulated on the inbound SA its SPI names (RFC 4303 s3.4), the inner
 * packet checked against the SA's tunnel (RFC 4301 s5.2) and written to
 * the TUN device. Neighbours: dataplane.c (SAs, counters), dataplane_out.c
 * (the other direction). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>

#include "dataplane_int.h"
#include "qkd/spd.h"

/* The drop of a decapsulation error (qkd/esp.h's codes). */
static enum qkd_dp_drop decap_drop(int rc)
{
	switch (rc) {
	case QKD_ERR_ABORT:
		return QKD_DP_DROP_REPLAY;
	case QKD_ERR_VERIFY:
		return QKD_DP_DROP_BAD_ICV;
	case QKD_ERR_NOKEY:
		return QKD_DP_DROP_EXPIRED;
	case QKD_ERR_INVAL:
		return QKD_DP_DROP_UNKNOWN_SPI;
	default:
		return QKD_DP_DROP_MALFORMED;
	}
}

/* An authentic inner packet of tunnel t: check it against the tunnel's
 * selectors, hand it to the kernel. nh: ESP's next header (tunnel mode:
 * 4 or 41, the inner version), or -1 in plain mode, which has none. */
static void deliver(struct qkd_dataplane *dp, size_t t, const uint8_t *pkt, size_t len, int nh)
{
	struct qkd_ip_addrs a;
	const char *why;

	if (qkd_ip_addrs_read(pkt, len, &a, &why) != QKD_OK) {
		dp_drop(dp, QKD_DP_DROP_MALFORMED, t, why);
		return;
	}
	if (nh >= 0 && nh != (a.family == 4 ? 4 : 41)) {
		dp_drop(dp, QKD_DP_DROP_MALFORMED, t, "next header is not the inner packet's version");
		return;
	}
	if (!qkd_spd_inbound_ok(dp->p.cfg, t, &a)) {
		dp_drop(dp, QKD_DP_DROP_POLICY_IN, t, "the inner packet is outside the SA's selectors");
		return;
	}
	if (qkd_tun_write(dp->p.tun, pkt, len) != QKD_OK) {
		/* A full TUN queue (EAGAIN) drops the packet; TCP above recovers. */
		dp_drop(dp, QKD_DP_DROP_IO, t, errno == EAGAIN ? "the TUN queue is full" : "TUN write failed");
		return;
	}
	dp->tstats[t].in_packets++;
	dp->tstats[t].in_bytes += len;
}

static void esp_packet(struct qkd_dataplane *dp, const uint8_t *pkt, size_t len)
{
	struct dp_held *h;
	size_t out_len = 0;
	uint32_t spi;
	uint8_t nh = 0;
	int rc;

	if (qkd_esp_peek_spi(pkt, len, &spi) != QKD_OK) {
		dp_drop(dp, QKD_DP_DROP_MALFORMED, SIZE_MAX, "shorter than an ESP header");
		return;
	}
	if (dp->plain && spi >= 1 && spi <= dp->ntunnels) {
		deliver(dp, spi - 1, pkt + DP_PLAIN_TAG_LEN, len - DP_PLAIN_TAG_LEN, -1);
		return;
	}
	h = dp_hold_in(dp, spi);
	if (h == NULL) {
		dp_drop(dp, QKD_DP_DROP_UNKNOWN_SPI, SIZE_MAX, "no inbound SA has this SPI");
		return;
	}
	if (h->hard) {
		dp_drop(dp, QKD_DP_DROP_EXPIRED, h->tunnel, "the inbound SA is past its hard lifetime");
		return;
	}
	rc = qkd_esp_decapsulate(h->sa, pkt, len, dp->plaintext, dp->rx_slot, &out_len, &nh);
	if (rc != QKD_OK) {
		dp_drop(dp, decap_drop(rc), h->tunnel, qkd_strerror(rc));
		return;
	}
	if (nh == 59)
		return;		/* a dummy packet (RFC 4303 s2.6): authentic, carries nothing */
	deliver(dp, h->tunnel, dp->plaintext, out_len, nh);
}

/* One datagram of message i (one of several when UDP GRO coalesced them). */
static void one_datagram(struct qkd_dataplane *dp, size_t i, const uint8_t *pkt, size_t len)
{
	const struct msghdr *mh = &dp->rxm[i].msg_hdr;

	switch (qkd_esp_udp_classify(pkt, len)) {
	case QKD_ESP_UDP_KEEPALIVE:
		dp->stats.keepalives++;
		break;
	case QKD_ESP_UDP_IKE:
		dp->stats.ike_in++;
		dp_release(dp);
		if (dp->p.ops != NULL && dp->p.ops->ike != NULL)
			dp->p.ops->ike(dp->p.arg, pkt + 4, len - 4, (const struct sockaddr *)&dp->rxfrom[i],
				       mh->msg_namelen);
		break;
	case QKD_ESP_UDP_ESP:
		esp_packet(dp, pkt, len);
		break;
	default:
		dp_drop(dp, QKD_DP_DROP_MALFORMED, SIZE_MAX, "neither ESP, IKE nor a keepalive");
		break;
	}
}

/* The segment size of a message UDP GRO coalesced, or 0 (one datagram). */
static size_t gro_size(const struct msghdr *mh)
{
	for (const struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL;
	     c = CMSG_NXTHDR((struct msghdr *)mh, (struct cmsghdr *)c)) {
		int seg;

		if (c->cmsg_level != SOL_UDP || c->cmsg_type != UDP_GRO ||
		    c->cmsg_len < CMSG_LEN(sizeof seg))
			continue;
		memcpy(&seg, CMSG_DATA(c), sizeof seg);
		return seg > 0 ? (size_t)seg : 0;
	}
	return 0;
}

static void one_message(struct qkd_dataplane *dp, size_t i)
{
	const struct msghdr *mh = &dp->rxm[i].msg_hdr;
	const uint8_t *pkt = dp->rx + i * dp->rx_slot;
	size_t len = dp->rxm[i].msg_len, seg;

	if (mh->msg_flags & MSG_TRUNC) {
		dp_drop(dp, QKD_DP_DROP_MALFORMED, SIZE_MAX, "a datagram larger than the receive slot");
		return;
	}
	seg = gro_size(mh);
	if (seg == 0 || seg >= len) {
		one_datagram(dp, i, pkt, len);
		return;
	}
	/* Coalesced datagrams of seg bytes each, the last possibly shorter. */
	for (size_t off = 0; off < len; off += seg)
		one_datagram(dp, i, pkt + off, len - off < seg ? len - off : seg);
}

/* One recvmmsg; returns how many datagrams it brought. */
static int receive(struct qkd_dataplane *dp)
{
	int n;

	for (size_t i = 0; i < DP_BATCH; i++) {
		dp->rxm[i].msg_hdr = (struct msghdr){ .msg_name = &dp->rxfrom[i],
						      .msg_namelen = sizeof dp->rxfrom[i],
						      .msg_iov = &dp->rxiov[i],
						      .msg_iovlen = 1,
						      .msg_control = dp->rxctl[i].buf,
						      .msg_controllen = sizeof dp->rxctl[i].buf };
		dp->rxm[i].msg_len = 0;
	}
	do {
		n = recvmmsg(dp->p.udp_fd, dp->rxm, DP_BATCH, MSG_DONTWAIT, NULL);
	} while (n < 0 && errno == EINTR);
	return n;
}

void dp_udp_readable(struct qkd_dataplane *dp)
{
	for (int b = 0; b < DP_BATCHES_PER_WAKEUP; b++) {
		int n = receive(dp);

		if (n <= 0)
			break;
		dp->stats.udp_batches++;
		dp->now = dp_clock(dp);
		for (int i = 0; i < n; i++)
			one_message(dp, (size_t)i);
		dp_release(dp);
		if (n < DP_BATCH)
			break;
	}
}
