/* dataplane_int.h - the inside of the data plane (qkd/dataplane.h), shared
 * by lib/vpn/dataplane.c (object, events, counters, the batch's SAs),
 * dataplane_out.c (TUN to UDP), dataplane_in.c (UDP to TUN) and
 * dataplane_udp.c (the socket). Not a public header. */
#ifndef QKD_DATAPLANE_INT_H
#define QKD_DATAPLANE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "qkd/dataplane.h"

#define DP_BATCH QKD_DATAPLANE_BATCH
/* Batches one wakeup may run before it yields to the other descriptor. */
#define DP_BATCHES_PER_WAKEUP 4
/* SAs remembered per tunnel as already reported soft-expired: more than a
 * tunnel can hold at once (QKD_SA_MGR_INBOUND_MAX pairs, two SAs each). */
#define DP_NOTIFIED_PER_TUNNEL (4 * QKD_SA_MGR_INBOUND_MAX)
/* The rx slot holds anything the socket may hand over: a datagram of up
 * to 64 KiB, or as many datagrams coalesced by UDP GRO. */
#define DP_RX_SLOT_MIN 65536u
#define DP_PLAIN_TAG_LEN 4
/* One UDP GSO send (UDP_SEGMENT): at most this many datagrams, and bytes
 * under the 64 KiB of one IP packet with its headers. */
#define DP_GSO_SEGS 64
#define DP_GSO_BYTES 65000u

/* An SA checked out for the current batch. */
struct dp_held {
	struct qkd_esp_sa *sa;
	enum qkd_esp_dir dir;
	size_t tunnel;
	uint32_t spi;
	bool hard;			/* hard-expired when checked out: drop */
};

struct dp_sa_mark {
	uint32_t spi;
	enum qkd_esp_dir dir;
	bool used;
};

struct dp_notice {
	size_t tunnel;
	uint32_t spi;
	enum qkd_esp_dir dir;
};

struct qkd_dataplane {
	struct qkd_dataplane_params p;
	size_t ntunnels;
	struct event *tun_ev, *udp_ev;
	bool plain;
	double now;			/* seconds, read once per batch */

	size_t inner_cap;		/* the largest inner packet: the TUN MTU */
	size_t tx_slot, rx_slot;
	uint8_t *inner;			/* one inner packet before encapsulation */
	uint8_t *tx, *rx, *plaintext;	/* DP_BATCH slots each; plaintext: one rx slot */
	struct mmsghdr txm[DP_BATCH], rxm[DP_BATCH];
	struct iovec txiov[DP_BATCH], rxiov[DP_BATCH];
	struct sockaddr_storage rxfrom[DP_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} rxctl[DP_BATCH];		/* UDP_GRO: the size of coalesced datagrams */
	size_t txtunnel[DP_BATCH], txinner[DP_BATCH];
	/* The batch as sent: groups of consecutive slots for one peer. */
	struct mmsghdr gm[DP_BATCH];
	size_t gfirst[DP_BATCH], gcount[DP_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} gctl[DP_BATCH];
	bool gso_off;			/* the kernel refused UDP_SEGMENT once */

	struct dp_held held[DP_BATCH];
	size_t nheld;
	struct dp_notice notices[DP_BATCH];
	size_t nnotices;
	struct dp_sa_mark *notified;	/* ntunnels x DP_NOTIFIED_PER_TUNNEL, a ring each */
	size_t *notified_next;

	double *acquire_at;		/* per tunnel: last ACQUIRE, rate limit */
	struct qkd_dp_stats stats;
	struct qkd_dp_tunnel_stats *tstats;
	double log_at[QKD_DP_DROP_COUNT];
	uint64_t log_quiet[QKD_DP_DROP_COUNT];	/* drops not logged since log_at */
};

/* Count a drop (tunnel SIZE_MAX: no tunnel known) and log it, at most once
 * a second per reason, with how many went unlogged. */
void dp_drop(struct qkd_dataplane *dp, enum qkd_dp_drop d, size_t tunnel, const char *why);
/* Whether a drop for reason d now would be logged (not rate-limited). */
bool dp_drop_logs(const struct qkd_dataplane *dp, enum qkd_dp_drop d);
/* The SA of tunnel t (outbound) or SPI spi (inbound) for this batch,
 * checked out on first use; NULL when there is none. *t gets the tunnel of
 * an inbound SA. */
struct dp_held *dp_hold_out(struct qkd_dataplane *dp, size_t t);
struct dp_held *dp_hold_in(struct qkd_dataplane *dp, uint32_t spi);
/* Check every held SA in, then report the soft expiries found. Before any
 * callback and at the end of each batch. */
void dp_release(struct qkd_dataplane *dp);
/* ACQUIRE for tunnel t, at most once a second (releases first). */
void dp_acquire(struct qkd_dataplane *dp, size_t t);
double dp_clock(const struct qkd_dataplane *dp);

/* One wakeup's work on each descriptor. */
void dp_tun_readable(struct qkd_dataplane *dp);
void dp_udp_readable(struct qkd_dataplane *dp);
/* sendmmsg of the n datagrams in dp->txm, counting what was sent per tunnel
 * and what the kernel refused as IO drops, without retrying a full buffer. */
void dp_udp_flush(struct qkd_dataplane *dp, size_t n);

#endif
