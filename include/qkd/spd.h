/* qkd/spd.h - the gateway's security policy database: which tunnel an IP
 * packet belongs to (RFC 4301 section 4.4.1), from the tunnels' traffic
 * selectors in `qkd vpn`'s configuration (qkd/vpn_config.h).
 *
 * Outbound, a packet read from the TUN device goes to the tunnel whose
 * local selectors hold its source and whose remote selectors hold its
 * destination; a packet no tunnel covers is not sent (the caller drops and
 * counts it). Inbound, after ESP decapsulation, the inner packet must match
 * the SA's tunnel the other way round (RFC 4301 section 5.2, step 4), or
 * it is dropped: an SA may only carry the traffic it was negotiated for.
 * The configuration guarantees that no two tunnels overlap, so the first
 * match is the only one. The IP header is read through the bounded reader
 * and checked (version, header and total lengths) before any address is
 * used. A linear scan: at most 64 tunnels of 8 + 8 prefixes.
 */
#ifndef QKD_SPD_H
#define QKD_SPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/vpn_config.h"

/* The addresses of an IP packet, from its header. */
struct qkd_ip_addrs {
	uint8_t family;		/* 4 or 6 */
	uint8_t next;		/* IPv4 protocol, IPv6 next header (4: IPv4, 41: IPv6 in ESP's sense) */
	uint8_t src[16], dst[16];	/* IPv4 in the first 4 bytes */
};

/* Read the header of the packet pkt[0..len): 0 and *out, or QKD_ERR_PROTO
 * with *why (static) for anything but a whole IPv4 or IPv6 packet: too
 * short, another version, an IPv4 header length under 20 or over the
 * packet, a total or payload length that disagrees with len. */
__attribute__((warn_unused_result))
int qkd_ip_addrs_read(const uint8_t *pkt, size_t len, struct qkd_ip_addrs *out,
		      const char **why);

/* The tunnel of config c an outbound packet with addresses a goes to:
 * 0 and *tunnel, or QKD_ERR_NOKEY when no tunnel's selectors cover it. */
__attribute__((warn_unused_result))
int qkd_spd_outbound(const struct qkd_vpn_config *c, const struct qkd_ip_addrs *a,
		     size_t *tunnel);

/* Whether a packet with addresses a that arrived in an SA of tunnel t
 * (an index of c) is one that tunnel may carry. */
bool qkd_spd_inbound_ok(const struct qkd_vpn_config *c, size_t t, const struct qkd_ip_addrs *a);

#endif
