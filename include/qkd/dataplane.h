/* qkd/dataplane.h - the gateway's packet path (issue 14, docs/vpn.md "Data
 * plane"): IP packets from the TUN device are matched to a tunnel
 * (qkd/spd.h), encapsulated in ESP (qkd/esp.h) on the tunnel's active
 * outbound SA (qkd/sa_mgr.h) and sent in UDP to the peer gateway (RFC
 * 3948); UDP datagrams on the gateway's port are classified, ESP is
 * decapsulated on its inbound SA, checked against the SA's tunnel, and
 * written to the TUN device. IKE datagrams (non-ESP marker) are handed to
 * the caller.
 *
 * It runs on the caller's libevent loop, one thread. Throughput comes from
 * batching: recvmmsg/sendmmsg on the UDP socket and many TUN packets per
 * wakeup, with fixed buffers allocated once; nothing is allocated per
 * packet. Every refusal is counted per reason (and per tunnel where the
 * tunnel is known) and never stops the loop.
 *
 * The SAs are checked out of the SA manager once per batch and checked in
 * at its end, so a removal waits at most one batch. Every callback of
 * qkd_dataplane_ops runs with no SA checked out: it may install or remove
 * SAs (the IKE state machine runs on the same loop).
 *
 * Files: lib/vpn/dataplane.c (the object, events, counters, the batch's
 * SAs), dataplane_out.c (TUN to UDP), dataplane_in.c (UDP to TUN),
 * dataplane_udp.c (the socket). Private: dataplane_int.h.
 */
#ifndef QKD_DATAPLANE_H
#define QKD_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "qkd/log.h"
#include "qkd/netaddr.h"
#include "qkd/sa_mgr.h"
#include "qkd/tun.h"
#include "qkd/vpn_config.h"

struct event_base;

#define QKD_DATAPLANE_BATCH 64	/* datagrams per recvmmsg/sendmmsg */

struct qkd_dataplane_ops {
	/* An IKE message (marker stripped) from `from`. */
	void (*ike)(void *arg, const uint8_t *msg, size_t len, const struct sockaddr *from,
		    socklen_t fromlen);
	/* A packet for tunnel t found no outbound SA (RFC 4301 ACQUIRE): the
	 * caller starts IKE if it is idle. Rate-limited to once a second per
	 * tunnel. */
	void (*acquire)(void *arg, size_t t);
	/* The SA with this SPI (inbound or outbound) reached a soft limit
	 * (bytes, packets, or seconds on params.now's clock) or a hard one:
	 * rekey. Once per SA, found when the SA is checked in. */
	void (*soft_expired)(void *arg, size_t t, uint32_t spi, enum qkd_esp_dir dir);
};

/* Why packets were dropped (docs/vpn.md "Counters"). */
enum qkd_dp_drop {
	QKD_DP_DROP_NO_POLICY,		/* from TUN: no tunnel's selectors cover it */
	QKD_DP_DROP_NO_SA,		/* from TUN: the tunnel has no SA yet */
	QKD_DP_DROP_MALFORMED,		/* not IPv4/IPv6, or bad ESP framing */
	QKD_DP_DROP_UNKNOWN_SPI,
	QKD_DP_DROP_REPLAY,
	QKD_DP_DROP_BAD_ICV,
	QKD_DP_DROP_EXPIRED,		/* hard lifetime reached */
	QKD_DP_DROP_POLICY_IN,		/* decapsulated packet outside the SA's selectors */
	QKD_DP_DROP_IO,			/* send or TUN write failed */
	QKD_DP_DROP_COUNT
};

struct qkd_dp_tunnel_stats {
	uint64_t out_packets, out_bytes;	/* inner bytes, encapsulated and sent */
	uint64_t in_packets, in_bytes;		/* inner bytes, decapsulated and accepted */
	uint64_t drops[QKD_DP_DROP_COUNT];
};

struct qkd_dp_stats {
	uint64_t drops[QKD_DP_DROP_COUNT];	/* all, including those of no tunnel */
	uint64_t ike_in, keepalives;
	uint64_t tun_reads, udp_batches;	/* wakeups' work, for the benchmark */
};

struct qkd_dataplane_params {
	struct event_base *base;
	struct qkd_tun *tun;			/* borrowed */
	int udp_fd;				/* bound, non-blocking; borrowed */
	const struct qkd_vpn_config *cfg;	/* tunnels and their peers; borrowed */
	struct qkd_sa_mgr *sad;			/* borrowed */
	const struct qkd_dataplane_ops *ops;
	void *arg;
	const struct qkd_logger *log;		/* may be NULL; drops log rate-limited */
	double (*now)(void);			/* monotonic seconds, for SA lifetimes and
						 * rate limits; NULL: CLOCK_MONOTONIC */
};

struct qkd_dataplane;

/* A data plane on p->base, its two events added; p is copied, everything
 * it points to is borrowed and must outlive the data plane (cfg's tunnel
 * indexes are the SA manager's). Buffers are sized from p->tun->mtu.
 * 0 and *out, or QKD_ERR_INVAL (no base, TUN fd, UDP fd, tunnels or SA
 * manager) or QKD_ERR_NOMEM; *out is NULL on error. */
__attribute__((warn_unused_result))
int qkd_dataplane_new(const struct qkd_dataplane_params *p, struct qkd_dataplane **out);
/* Stops its events and frees (the TUN, socket and SAs are the caller's).
 * Accepts NULL. */
void qkd_dataplane_free(struct qkd_dataplane *dp);

/* The gateway's UDP socket on addr (IKE and ESP share it, RFC 3948):
 * non-blocking, close-on-exec, bound, with send and receive buffers of
 * QKD_DATAPLANE_SOCKBUF bytes where the kernel allows (batches of
 * QKD_DATAPLANE_BATCH datagrams must fit). *fd is the caller's to close.
 * 0, or QKD_ERR_IO with errno kept and nothing left open. */
#define QKD_DATAPLANE_SOCKBUF (4u << 20)
__attribute__((warn_unused_result))
int qkd_dataplane_udp_open(const struct qkd_netaddr *addr, int *fd);

/* Send an IKE message to `to`, with the non-ESP marker. 0 or QKD_ERR_IO. */
__attribute__((warn_unused_result))
int qkd_dataplane_send_ike(struct qkd_dataplane *dp, const struct sockaddr *to,
			   socklen_t tolen, const uint8_t *msg, size_t len);

/* Copies of the counters (a tunnel index out of range gives zeros). */
void qkd_dataplane_stats(const struct qkd_dataplane *dp, struct qkd_dp_stats *all);
void qkd_dataplane_tunnel_stats(const struct qkd_dataplane *dp, size_t t,
				struct qkd_dp_tunnel_stats *out);
/* "no_policy", "no_sa", ... (static; "unknown" outside the enum): the
 * names of docs/vpn.md "Counters" and of the test gateway's JSON. */
const char *qkd_dp_drop_name(enum qkd_dp_drop d);

#endif
