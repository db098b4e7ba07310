/* vpn_daemon.h - the state of one running `qkd vpn` gateway, shared by the
 * files of the daemon (docs/vpn.md "The daemon"):
 *
 *   cmd_vpn.c        the command line: the daemon and `qkd vpn status`
 *   vpn_daemon.c     start-up, the event loop, shutdown
 *   vpn_glue.c       the IKE state machines' and the data plane's callbacks
 *   vpn_kme.c        the key manager worker threads
 *   vpn_status.c     the status socket and its JSON
 *   vpn_metrics.c    the Prometheus endpoint
 *   vpn_keylog.c     --keylog, for Wireshark
 *
 * One event loop (libevent) owns everything here; only vpn_kme.c has
 * threads of its own, and they touch nothing but their queues.
 */
#ifndef QKD_VPN_DAEMON_H
#define QKD_VPN_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "logsink.h"
#include "qkd/dataplane.h"
#include "qkd/ike_sa.h"
#include "qkd/log.h"
#include "qkd/sa_mgr.h"
#include "qkd/tun.h"
#include "qkd/vpn_config.h"
#include "vpn_kme.h"

struct event;
struct event_base;
struct evhttp;
struct evconnlistener;

/* Child SA pairs a tunnel remembers for its status: the pairs installed
 * and not yet deleted, with the QKD key each was made with. */
#define VPN_PAIRS_MAX (QKD_SA_MGR_INBOUND_MAX + 2)
/* Rekey latencies kept for the percentiles. */
#define VPN_LATENCIES_MAX 1024

struct vpn_pair {
	uint32_t spi_in, spi_out;
	bool qkd;
	char key_id[QKD_IKE_KEY_ID_LEN + 1];
	double installed_at;
};

struct vpn_tunnel {
	struct vpn_daemon *d;
	size_t index;
	struct qkd_ike *ike;
	struct vpn_pair pairs[VPN_PAIRS_MAX];
	size_t npairs;
	uint64_t installs, deletes, install_failures;
	uint64_t qkd_bits;		/* QKD key bits mixed into SAs */
	/* The exchange this end started: when its key request went out, for
	 * the rekey latency (KME fetch included). */
	double exchange_started;
	double latencies[VPN_LATENCIES_MAX];
	size_t nlat, lat_next;
	char last_event[160];
};

/* A fresh QKD key held back for the tunnel's ppk_lead before the IKE
 * layer may name it to the peer. */
#define VPN_DEFERRED_MAX 16
/* INVALID_IKE_SPI answers per second, all peers together (vpn_glue.c). */
#define VPN_INVALID_SPI_RATE 10u
struct vpn_deferred {
	struct vpn_daemon *d;
	struct event *ev;
	bool busy;
	struct vpn_kme_result r;
};

struct vpn_daemon {
	struct qkd_vpn_config cfg;
	const char *config_path;
	struct qkd_logger log;
	struct logsink logsink;
	struct event_base *base;
	struct qkd_tun *tun;
	int udp_fd;
	struct qkd_sa_mgr *sad;
	struct qkd_dataplane *dp;
	struct vpn_kme *kme;
	int kme_fd;
	struct event *kme_ev, *timer, *sig_term, *sig_int;
	struct vpn_tunnel tunnels[QKD_VPN_TUNNELS_MAX];
	struct vpn_deferred deferred[VPN_DEFERRED_MAX];
	FILE *keylog;
	int status_fd;
	struct event *status_ev;
	struct evhttp *metrics;
	double started;
	uint64_t ike_unmatched;		/* IKE messages of no tunnel */
	/* INVALID_IKE_SPI answers (vpn_glue.c, RFC 7296 section 2.21.4):
	 * sent, and held back by the rate limit. */
	uint64_t invalid_spi_sent, invalid_spi_limited;
	struct qkd_ike_rate invalid_spi_rate;
	bool closing;
	double close_deadline;
};

/* vpn_daemon.c: run until a signal (d->cfg and d->config_path set, the
 * log sink open); 0, or a QKD_ERR_* of start-up with why filled. Then
 * vpn_daemon_free, whatever run returned. */
int vpn_daemon_run(struct vpn_daemon *d, const char *keylog, char *why, size_t whylen);
void vpn_daemon_free(struct vpn_daemon *d);

/* Monotonic seconds. */
double vpn_now(void);

/* vpn_glue.c: the callbacks. */
extern const struct qkd_ike_ops vpn_ike_ops;
extern const struct qkd_dataplane_ops vpn_dp_ops;
/* Hand every waiting key manager answer to its tunnel's IKE. */
void vpn_glue_kme_ready(struct vpn_daemon *d);
/* Free the held-back keys (wiped) and their timers, at shutdown. */
void vpn_glue_free_deferred(struct vpn_daemon *d);
/* Re-arm the timer at the earliest IKE deadline. */
void vpn_glue_arm_timer(struct vpn_daemon *d);

/* vpn_status.c */
int vpn_status_listen(struct vpn_daemon *d, char *why, size_t whylen);
void vpn_status_close(struct vpn_daemon *d);
/* The status as JSON text (malloc'd, caller frees), NULL on no memory. */
char *vpn_status_json(struct vpn_daemon *d);

/* vpn_metrics.c */
int vpn_metrics_start(struct vpn_daemon *d, char *why, size_t whylen);
void vpn_metrics_stop(struct vpn_daemon *d);

/* vpn_keylog.c: open (append) and write records; each record is one line
 * "uat:TABLE:RECORD", the form tshark's -o option takes. */
int vpn_keylog_open(struct vpn_daemon *d, const char *path, char *why, size_t whylen);
void vpn_keylog_child(struct vpn_daemon *d, size_t t, const struct qkd_ike_child *c);
void vpn_keylog_ike(struct vpn_daemon *d, size_t t, const struct qkd_ike_keylog *k);
void vpn_keylog_close(struct vpn_daemon *d);

#endif
