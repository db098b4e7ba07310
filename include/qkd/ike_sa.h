/* qkd/ike_sa.h - the IKEv2 state machine of one `qkd vpn` tunnel (RFC 7296),
 * with QKD keys entering as PPKs: RFC 8784 in IKE_AUTH, RFC 9867 in every
 * CREATE_CHILD_SA (issue 14, docs/ike.md "State machine").
 *
 * One object per configured tunnel. It holds the tunnel's IKE SA (and the
 * one replacing it during an IKE SA rekey), the exchange in flight in each
 * direction, and the Child SAs negotiated under it. It is pure protocol:
 * no sockets, no clock, no key manager. The caller (src/, the daemon)
 * feeds it datagrams, the time and QKD keys; callbacks carry datagrams to
 * send, Child SAs to install and delete, key requests and events out.
 * Every entry point takes `now`, the caller's monotonic clock in seconds.
 * Not thread-safe: one event loop owns it. Callbacks may not re-enter the
 * object, except qkd_ike_ppk_answer, which may be called from inside
 * ops->ppk_request (a key that is already at hand).
 *
 * Files: lib/vpn/ike_sa.c (object, dispatch, teardown), ike_sa_timer.c
 * (timers, QKD key answers, close, status), ike_sa_init.c (IKE_SA_INIT,
 * COOKIE), ike_sa_auth.c (IKE_AUTH, RFC 8784), ike_child.c (the pairs and
 * their keys), ike_sa_child.c (CREATE_CHILD_SA, RFC 9867), ike_sa_rekey.c
 * (the IKE SA rekey),
 * ike_sa_info.c (INFORMATIONAL), ike_invalid_spi.c (INVALID_IKE_SPI,
 * section 2.21.4), ike_ts.c (traffic selectors), ike_msg.c
 * (message IDs, windows, retransmission), ike_sk.c (the Encrypted payload,
 * qkd/ike_sk.h), ike_dh.c (qkd/ike_dh.h), ike_proposal.c
 * (qkd/ike_proposal.h). Messages: qkd/ike_pld.h; keys: qkd/ike_keys.h.
 *
 * Who rekeys: the original initiator of the current IKE SA rekeys the
 * Child SA every tunnel->rekey_s and the IKE SA every ike_rekey_s; either
 * end rekeys a Child SA on qkd_ike_child_soft_expired. When both tunnels
 * have initiate = true and start at once, the IKE SA with the lower SPIi
 * survives (docs/ike.md "State machine").
 *
 * Errors: QKD_ERR_INVAL (arguments), QKD_ERR_NOMEM, QKD_ERR_PROTO (a
 * message refused: it is dropped, counted and logged; the object is
 * unharmed), QKD_ERR_NOKEY (an unknown token in qkd_ike_ppk_answer).
 */
#ifndef QKD_IKE_SA_H
#define QKD_IKE_SA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/ike_pld.h"
#include "qkd/log.h"
#include "qkd/vpn_config.h"

/* The PPK_ID of a QKD key is its ETSI 014 key_ID, the 36 characters of a
 * UUID, sent as PPK_ID_FIXED (RFC 8784 section 3). */
#define QKD_IKE_KEY_ID_LEN 36
#define QKD_IKE_PPK_MAX 64	/* octets of a PPK: QKD keys of 256 to 512 bits */
#define QKD_IKE_KEYMAT_MAX 36	/* AES-256 key + 4-octet salt (RFC 4106 s8.1) */

/* A QKD key request. The IKE layer asks; the caller answers, at once or
 * later, with qkd_ike_ppk_answer and the same token. NEW is enc_keys
 * (the side that initiates the exchange picks a fresh key); GET is
 * dec_keys of key_id (the responder). */
enum qkd_ike_ppk_op { QKD_IKE_PPK_NEW, QKD_IKE_PPK_GET };
struct qkd_ike_ppk_req {
	uint64_t token;
	enum qkd_ike_ppk_op op;
	char key_id[QKD_IKE_KEY_ID_LEN + 1];	/* GET only */
	size_t bits;		/* the PPK size wanted: 256 */
};

/* One Child SA pair to install (tunnel mode ESP, AES-GCM-16, UDP
 * encapsulated). The keys are the KEYMAT slices of RFC 7296 section 2.17
 * for this end: in is what the peer encrypts to us under spi_in. The
 * struct is the callee's to read during the call only; the IKE layer
 * wipes it when the callback returns. */
struct qkd_ike_child {
	uint32_t spi_in, spi_out;
	uint8_t key_in[QKD_IKE_KEYMAT_MAX], key_out[QKD_IKE_KEYMAT_MAX];
	size_t key_len;			/* 20 or 36 */
	/* The pair this one replaces in a rekey (0: a first Child SA). */
	uint32_t old_spi_in, old_spi_out;
	/* true when this end initiated the exchange: it moves its outbound
	 * traffic to the new SA at once. The responder keeps sending on the
	 * old one until the first packet arrives on spi_in, or the old pair
	 * is deleted (make-before-break, RFC 7296 section 2.8). */
	bool initiator;
	bool qkd;			/* a QKD key was mixed in */
	char key_id[QKD_IKE_KEY_ID_LEN + 1];	/* its key_ID when qkd */
	struct qkd_ike_tss ts_local, ts_remote;	/* as negotiated */
};

/* The keys of an IKE SA, for --keylog (Wireshark's ikev2 decryption table:
 * SPIs, SK_ei, SK_er; AES-GCM has no SK_a). Valid during the call only. */
struct qkd_ike_keylog {
	uint8_t spi_i[8], spi_r[8];
	const uint8_t *sk_ei, *sk_er;	/* key then 4-octet salt */
	size_t enc_len;			/* 20 or 36 */
};

enum qkd_ike_event {
	QKD_IKE_EV_IKE_UP,		/* an IKE SA is established (or rekeyed) */
	QKD_IKE_EV_IKE_DOWN,		/* deleted, timed out, or failed */
	QKD_IKE_EV_CHILD_UP,		/* a Child SA (first or rekey) is installed */
	QKD_IKE_EV_PPK_MISMATCH,	/* the two ends' QKD keys differ (detail: key_IDs) */
	QKD_IKE_EV_QKD_FALLBACK,	/* qkd = preferred went on without QKD key */
	QKD_IKE_EV_QKD_WAIT,		/* no QKD key yet; still within key_wait */
	QKD_IKE_EV_AUTH_FAILED,
	QKD_IKE_EV_NO_PROPOSAL,		/* or TS_UNACCEPTABLE, INVALID_KE_PAYLOAD */
	QKD_IKE_EV_BAD_MESSAGE,		/* dropped: malformed, bad ICV, unexpected */
	QKD_IKE_EV_RETRANSMIT,
	QKD_IKE_EV_PEER_DEAD,		/* retransmissions exhausted */
	QKD_IKE_EV_COOKIE,		/* a COOKIE demanded or sent */
};

struct qkd_ike_ops {
	/* Send one IKE message to the tunnel's peer (the caller adds the
	 * non-ESP marker of RFC 3948). Failure counts as a lost datagram. */
	int (*send)(void *arg, const uint8_t *msg, size_t len);
	/* Install a Child SA pair: 0, or an error, after which the IKE layer
	 * deletes the pair at the peer. */
	int (*child_install)(void *arg, const struct qkd_ike_child *c);
	/* Remove the pair with this inbound SPI (the caller finds its
	 * outbound SA). Called after a rekey's delete or the IKE SA's end. */
	void (*child_delete)(void *arg, uint32_t spi_in, uint32_t spi_out);
	void (*ppk_request)(void *arg, const struct qkd_ike_ppk_req *r);
	/* Status changes, for counters and the log (the IKE layer also logs
	 * through params.log). detail is a short static or formatted text. */
	void (*event)(void *arg, enum qkd_ike_event ev, const char *detail);
	void (*keylog)(void *arg, const struct qkd_ike_keylog *k);	/* may be NULL */
};

struct qkd_ike_params {
	const struct qkd_vpn_tunnel *tunnel;	/* borrowed for the object's life */
	const uint8_t *psk;			/* copied */
	size_t psk_len;
	const struct qkd_ike_ops *ops;
	void *arg;
	const struct qkd_logger *log;		/* may be NULL */
	/* Retransmission (RFC 7296 section 2.4): first timeout, doubling up
	 * to `tries` sends, then the peer is dead. 0: 0.5 s and 7 tries. */
	double retransmit_s;
	unsigned retransmit_tries;
	/* Half-open IKE SAs (IKE_SA_INIT answered, IKE_AUTH not yet) above
	 * which a responder demands a COOKIE (section 2.6). 0: always. */
	unsigned cookie_threshold;
	/* Liveness check after this long without a message from the peer
	 * (an empty INFORMATIONAL, section 1.4). 0: 30 s. */
	double dpd_s;
};

/* Counters for `qkd vpn status` and the metrics. */
struct qkd_ike_stats {
	uint64_t ike_up, child_up, child_rekeys, ike_rekeys;
	uint64_t ppk_mismatches, qkd_fallbacks, qkd_waits, auth_failures;
	uint64_t retransmits, bad_messages, cookies, peer_dead;
	uint64_t init_dropped;	/* IKE_SA_INIT requests dropped by the rate limit */
	/* Unprotected INVALID_IKE_SPI responses to our request in flight
	 * (RFC 7296 section 2.21.4): hints that the peer lost its state. */
	uint64_t invalid_spi_hints;
};

enum qkd_ike_state { QKD_IKE_IDLE, QKD_IKE_CONNECTING, QKD_IKE_ESTABLISHED, QKD_IKE_DELETING };

struct qkd_ike_status {
	enum qkd_ike_state state;
	uint8_t spi_i[8], spi_r[8];	/* the current IKE SA; zero when none */
	bool initiator;			/* of the current IKE SA */
	double established_at;		/* the caller's clock; 0 when not */
	uint32_t spi_in, spi_out;	/* the current Child SA pair; 0 when none */
	bool qkd;			/* the current Child SA has a QKD key */
	char key_id[QKD_IKE_KEY_ID_LEN + 1];
	struct qkd_ike_stats stats;
};

struct qkd_ike;

/* A new state machine for p->tunnel; nothing is sent until
 * qkd_ike_start (initiator) or a request arrives (responder). */
QKD_IKE_WUR int qkd_ike_new(const struct qkd_ike_params *p, struct qkd_ike **out);
/* Wipes every key and frees; no callback is called. Accepts NULL. */
void qkd_ike_free(struct qkd_ike *ike);

/* Begin IKE_SA_INIT as initiator, or do nothing (0) if an IKE SA exists
 * or is being set up. QKD_ERR_INVAL when the tunnel has initiate = false.
 * After a failure or the peer's death an initiator starts again by itself
 * (qkd_ike_tick), after 1 s for a QKD key mismatch, else after a backoff
 * of 2 s doubling to 60 s; qkd_ike_close stops that. */
QKD_IKE_WUR int qkd_ike_start(struct qkd_ike *ike, double now);

/* Whether a message with these IKE SPIs (from its header) belongs here: an
 * IKE SA this object holds or sets up. A new IKE_SA_INIT request (SPIr
 * zero) belongs to the tunnel whose peer sent it; the caller decides. */
bool qkd_ike_owns(const struct qkd_ike *ike, const uint8_t spi_i[8], const uint8_t spi_r[8]);

/* One IKE message from the peer, marker stripped (the caller found it
 * with qkd_ike_owns or by the peer's address). Never trusts it: any
 * refusal is counted, rate-limited in the log, and answered as RFC 7296
 * says (or not at all). 0 or QKD_ERR_PROTO. */
int qkd_ike_input(struct qkd_ike *ike, const uint8_t *msg, size_t len, double now);

/* Run the timers due at now: retransmissions, Child SA rekey every
 * tunnel->rekey_s (RFC 9867: each with a fresh QKD key), IKE SA rekey,
 * key_wait, liveness. */
void qkd_ike_tick(struct qkd_ike *ike, double now);
/* When qkd_ike_tick next has something to do (a time >= now). */
double qkd_ike_next_timer(const struct qkd_ike *ike, double now);

/* The data plane saw the Child SA with inbound SPI spi_in reach a soft
 * lifetime (bytes or packets): rekey it now. */
void qkd_ike_child_soft_expired(struct qkd_ike *ike, uint32_t spi_in, double now);

/* The answer to ops->ppk_request. status 0: key_id (the one asked for,
 * for GET) and ppk[0..len) are copied and wiped by the IKE layer when
 * used. Otherwise a negative QKD_ERR_* from the key manager: the request
 * is retried until the tunnel's key_wait runs out, then qkd = preferred
 * falls back (QKD_IKE_EV_QKD_FALLBACK) and required gives up. */
int qkd_ike_ppk_answer(struct qkd_ike *ike, uint64_t token, int status, const char *key_id,
		       const uint8_t *ppk, size_t len, double now);

/* Delete everything (INFORMATIONAL Delete for the IKE SA, which takes its
 * Child SAs with it) before shutdown; the caller keeps calling input and
 * tick until the state is IDLE or its patience ends. */
void qkd_ike_close(struct qkd_ike *ike, double now);

/* ---- a peer that forgot its IKE SA (RFC 7296 section 2.21.4) ---- */

/* The answer of a gateway that has no IKE SA for a request: when msg is
 * a well-formed IKEv2 request (R flag clear) other than IKE_SA_INIT, *out
 * (reset first; the caller owns it) gets an UNPROTECTED INFORMATIONAL
 * response with the request's SPIs and Message ID, the R flag, the I flag
 * when the request lacked it, and one Notify INVALID_IKE_SPI (no SPI, no
 * data). QKD_ERR_PROTO for a response, an IKE_SA_INIT, or anything that
 * does not parse (too short, bad version or length): never answered.
 * The caller sends it to the request's source address and port, only to
 * a configured peer and rate-limited (qkd_ike_rate_take). The receiver
 * treats it as a hint only: qkd_ike_input then cuts the retransmissions
 * of the request it answers to two, 0.5 s apart, and counts
 * invalid_spi_hints; a protected response in time still wins. */
QKD_IKE_WUR int qkd_ike_invalid_spi_reply(const uint8_t *msg, size_t len, struct qkd_wbuf *out);

/* A budget of events per second, in fixed one-second windows. */
struct qkd_ike_rate {
	double at;
	unsigned n;
};
/* Whether one more event fits in r's window at now (and take it);
 * a clock that steps back opens a new window. */
bool qkd_ike_rate_take(struct qkd_ike_rate *r, double now, unsigned per_s);

void qkd_ike_status(const struct qkd_ike *ike, struct qkd_ike_status *out);
const char *qkd_ike_event_name(enum qkd_ike_event ev);
const char *qkd_ike_state_name(enum qkd_ike_state s);

#endif
