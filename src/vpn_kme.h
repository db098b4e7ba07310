/* vpn_kme.h - the gateway's key manager workers (issue 14): one thread per
 * configured ETSI GS QKD 014 key manager, each with its own client
 * (qkd/kme_client.h is not thread-safe), so a slow or dead KME never
 * blocks the event loop that carries IKE and ESP.
 *
 * The event loop queues requests (enc_keys for a fresh key, dec_keys for
 * the peer's key_ID); a worker answers in the result queue and writes one
 * byte to a pipe the loop watches, and the loop hands each answer to the
 * IKE state machine (qkd_ike_ppk_answer). Key bytes live in the result
 * until the loop has taken them, then they are wiped.
 * Neighbours: vpn_daemon.c owns the workers; qkd/ike_sa.h asks for keys.
 */
#ifndef QKD_VPN_KME_H
#define QKD_VPN_KME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/ike_sa.h"
#include "qkd/log.h"
#include "qkd/vpn_config.h"

struct vpn_kme;

/* One answer, as the loop receives it. */
struct vpn_kme_result {
	size_t tunnel;
	uint64_t token;
	int status;			/* 0 or a QKD_ERR_* of the client */
	char key_id[QKD_IKE_KEY_ID_LEN + 1];
	uint8_t key[QKD_IKE_PPK_MAX];
	size_t key_len;
	char why[320];			/* when status != 0: the KME's answer or the error */
	double seconds;			/* how long the request took */
	bool fetched_for_peer;		/* dec_keys: the peer chose this key */
};

/* Start one worker per cfg->kmes entry. *notify_fd becomes readable when
 * results wait. 0, or a QKD_ERR_* with why filled. */
int vpn_kme_start(const struct qkd_vpn_config *cfg, const struct qkd_logger *log,
		  struct vpn_kme **out, int *notify_fd, char *why, size_t whylen);
/* Stop the workers (a request in flight ends at its timeout), wipe and
 * free. Accepts NULL. */
void vpn_kme_stop(struct vpn_kme *k);

/* Queue the IKE layer's request for tunnel t (its kme and peer_sae). A
 * full queue answers at once with QKD_ERR_RANGE through the result queue. */
void vpn_kme_request(struct vpn_kme *k, size_t t, const struct qkd_ike_ppk_req *r);

/* Take the next result: 1 and *out (the caller wipes it with qkd_wipe
 * after use), or 0 when none waits. Drains the notify pipe. */
int vpn_kme_take(struct vpn_kme *k, struct vpn_kme_result *out);

/* Requests and failures so far, for the status. */
struct vpn_kme_counts {
	uint64_t enc_ok, dec_ok, failed;
};
void vpn_kme_counts(struct vpn_kme *k, struct vpn_kme_counts *out);

#endif
