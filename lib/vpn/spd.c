/* spd.c - the security policy database's lookups (qkd/spd.h): the IP
 * header read and checked through the bounded reader, then the tunnels'
 * selectors scanned (lib/vpn/vpn_prefix.c for the prefix test). */
#include <string.h>

#include "qkd/error.h"
#include "qkd/spd.h"
#include "qkd/wire.h"

/* RFC 791: version 4, IHL >= 5 words, total length the whole packet. */
static int read_v4(struct qkd_rbuf *r, size_t len, struct qkd_ip_addrs *out, const char **why)
{
	uint8_t vihl = qkd_get_u8(r);
	size_t ihl = (size_t)(vihl & 0x0f) * 4;
	uint16_t total;

	(void)qkd_get_u8(r);			/* DSCP, ECN */
	total = qkd_get_u16(r);
	(void)qkd_get_bytes(r, 5);		/* id, flags, fragment offset, TTL */
	out->next = qkd_get_u8(r);
	(void)qkd_get_u16(r);			/* header checksum: the kernel's to check */
	qkd_get_copy(r, out->src, 4);
	qkd_get_copy(r, out->dst, 4);
	*why = "IPv4 header truncated";
	if (!qkd_rbuf_ok(r))
		return QKD_ERR_PROTO;
	*why = "IPv4 header length under 20 bytes or past the packet";
	if (ihl < 20 || ihl > len)
		return QKD_ERR_PROTO;
	*why = "IPv4 total length is not the packet's length";
	if (total != len)
		return QKD_ERR_PROTO;
	out->family = 4;
	return QKD_OK;
}

/* RFC 8200: version 6, a 40-byte header, payload length the rest (a
 * jumbogram's 0 is refused: a TUN MTU never allows one). */
static int read_v6(struct qkd_rbuf *r, size_t len, struct qkd_ip_addrs *out, const char **why)
{
	uint16_t plen;

	(void)qkd_get_u32(r);			/* version, traffic class, flow label */
	plen = qkd_get_u16(r);
	out->next = qkd_get_u8(r);
	(void)qkd_get_u8(r);			/* hop limit */
	qkd_get_copy(r, out->src, 16);
	qkd_get_copy(r, out->dst, 16);
	*why = "IPv6 header truncated";
	if (!qkd_rbuf_ok(r))
		return QKD_ERR_PROTO;
	*why = "IPv6 payload length is not the rest of the packet";
	if ((size_t)plen + 40 != len)
		return QKD_ERR_PROTO;
	out->family = 6;
	return QKD_OK;
}

int qkd_ip_addrs_read(const uint8_t *pkt, size_t len, struct qkd_ip_addrs *out,
		      const char **why)
{
	struct qkd_rbuf r;
	int rc;

	memset(out, 0, sizeof *out);
	*why = "empty packet";
	if (pkt == NULL || len == 0)
		return QKD_ERR_PROTO;
	qkd_rbuf_init(&r, pkt, len);
	switch (pkt[0] >> 4) {
	case 4:
		rc = read_v4(&r, len, out, why);
		break;
	case 6:
		rc = read_v6(&r, len, out, why);
		break;
	default:
		*why = "not an IPv4 or IPv6 packet";
		rc = QKD_ERR_PROTO;
		break;
	}
	if (rc != QKD_OK)
		memset(out, 0, sizeof *out);
	return rc;
}

static bool any_holds(const struct qkd_vpn_prefix *p, size_t n, uint8_t family,
		      const uint8_t addr[16])
{
	for (size_t i = 0; i < n; i++)
		if (qkd_vpn_prefix_contains(&p[i], family, addr))
			return true;
	return false;
}

int qkd_spd_outbound(const struct qkd_vpn_config *c, const struct qkd_ip_addrs *a,
		     size_t *tunnel)
{
	for (size_t t = 0; t < c->n_tunnels; t++) {
		const struct qkd_vpn_tunnel *tn = &c->tunnels[t];

		if (any_holds(tn->local_ts, tn->n_local_ts, a->family, a->src) &&
		    any_holds(tn->remote_ts, tn->n_remote_ts, a->family, a->dst)) {
			*tunnel = t;
			return QKD_OK;
		}
	}
	return QKD_ERR_NOKEY;
}

bool qkd_spd_inbound_ok(const struct qkd_vpn_config *c, size_t t, const struct qkd_ip_addrs *a)
{
	const struct qkd_vpn_tunnel *tn;

	if (t >= c->n_tunnels)
		return false;
	tn = &c->tunnels[t];
	return any_holds(tn->remote_ts, tn->n_remote_ts, a->family, a->src) &&
	       any_holds(tn->local_ts, tn->n_local_ts, a->family, a->dst);
}
