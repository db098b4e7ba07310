/* ike_sa_int.h - the insides of the IKEv2 state machine (qkd/ike_sa.h),
 * shared by its files: ike_sa.c (object, dispatch, timers), ike_msg.c
 * (message IDs, retransmission, response cache, refusals), ike_sa_init.c
 * (IKE_SA_INIT, COOKIE), ike_sa_auth.c (IKE_AUTH, RFC 8784), ike_child.c
 * (the pairs and their keys), ike_sa_child.c (CREATE_CHILD_SA, RFC 9867),
 * ike_sa_rekey.c (the IKE SA rekey), ike_sa_timer.c (timers, QKD keys),
 * ike_sa_info.c (INFORMATIONAL: Delete, liveness), ike_invalid_spi.c
 * (INVALID_IKE_SPI, section 2.21.4), ike_ts.c (traffic selectors). */
#ifndef QKD_IKE_SA_INT_H
#define QKD_IKE_SA_INT_H

#include "qkd/ike_dh.h"
#include "qkd/ike_keys.h"
#include "qkd/ike_proposal.h"
#include "qkd/ike_sa.h"
#include "qkd/ike_sk.h"

#define IKE_NONCE_LEN 32u
#define IKE_CHILDREN 4u		/* installed pairs: current, rekeyed, spare */
#define IKE_DELETES 8u
#define IKE_COOKIE_LEN 17u	/* version octet + 16 octets of HMAC */
#define IKE_PPK_ID_FIXED 2u	/* RFC 8784 section 3 */
#define IKE_N_QKD_PPK_MISMATCH 40960u	/* private status: the AUTH failure was the QKD key */
#define IKE_N_QKD_PPK_MISMATCH_ERR 8273u	/* private error (8192 + 0x51): in CREATE_CHILD_SA */
#define IKE_N_NAT_SRC 16388u
#define IKE_N_NAT_DST 16389u
#define IKE_N_TEMPORARY_FAILURE 43u
#define IKE_N_CHILD_SA_NOT_FOUND 44u
#define IKE_RETRY_MISMATCH_S 1.0	/* a fresh key after a PPK mismatch */
#define IKE_RETRY_PPK_S 1.0		/* a failed key request */
#define IKE_DELETE_GRACE_S 2.0		/* old pair kept for packets in flight */
#define IKE_BACKOFF_MIN_S 2.0
#define IKE_BACKOFF_MAX_S 60.0
#define IKE_INIT_RATE 20u		/* IKE_SA_INIT requests per second answered */
#define IKE_COOKIE_ROTATE_S 60.0

enum ike_phase {
	PH_INIT_SENT,		/* initiator: IKE_SA_INIT request out */
	PH_PPK_WAIT,		/* initiator: keys known, waiting for a NEW QKD key */
	PH_AUTH_SENT,		/* initiator: IKE_AUTH request out */
	PH_HALF_OPEN,		/* responder: IKE_SA_INIT answered */
	PH_UP,			/* established */
};

/* What our request in flight is. */
enum ike_kind { X_NONE, X_INIT, X_AUTH, X_REKEY, X_DEL_CHILD, X_DPD, X_DEL_IKE, X_IKE_REKEY };

struct ike_req {
	enum ike_kind kind;
	uint32_t id;
	uint8_t exchange;
	struct qkd_wbuf msg;
	double next_at, timeout;
	unsigned sends;
	/* After an INVALID_IKE_SPI hint (ike_invalid_spi.c): the last send
	 * (0: retransmit_tries), at a fixed interval. */
	unsigned max_sends;
	bool hinted;
	uint32_t del_in, del_out;	/* X_DEL_CHILD: the pair */
	bool del_installed;
};

/* One IKE SA: set up, established or being replaced. */
struct ike_isa {
	bool initiator;
	enum ike_phase ph;
	uint8_t spi_i[8], spi_r[8];
	struct qkd_ike_sa_keys k0;	/* as derived (SK_d', SK_pi', SK_pr' of RFC 8784) */
	struct qkd_ike_sa_keys k;	/* in use: PPK mixed when ppk */
	bool keys_ok, ppk;
	char ppk_id[QKD_IKE_KEY_ID_LEN + 1];
	uint16_t group;
	struct qkd_ike_dh *dh;
	uint8_t ni[QKD_IKE_NONCE_MAX], nr[QKD_IKE_NONCE_MAX];
	size_t ni_len, nr_len;
	struct qkd_wbuf init_i, init_r;	/* the IKE_SA_INIT messages, for AUTH */
	bool peer_ppk;			/* USE_PPK received */
	bool no_ppk;			/* initiator: go on without a QKD key (fallback) */
	uint8_t cookie[64];
	size_t cookie_len;
	unsigned init_tries;		/* COOKIE and INVALID_KE round trips */
	uint32_t esp_spi;		/* initiator: the inbound SPI offered in IKE_AUTH */
	struct qkd_ike_tss ts_i, ts_r;	/* initiator: offered */
	uint32_t req_id, peer_id;	/* next request to send, next expected */
	struct qkd_wbuf resp;		/* our response to request peer_id - 1 */
	bool resp_ok, busy;		/* busy: request peer_id waits for a QKD key */
	struct ike_req out;
	uint64_t iv;
	double created, last_rx, up_at;
};

/* A QKD key request of ours (NEW, as initiator of an exchange) or of the
 * peer's exchange (GET, as responder). */
struct ike_ppk {
	bool started, pending, have;
	uint64_t token;
	enum ike_kind for_kind;
	char id[QKD_IKE_KEY_ID_LEN + 1];
	uint8_t key[QKD_IKE_PPK_MAX];
	size_t len;
	double first_at, retry_at;
	int status;
};

struct ike_child {
	bool used;
	uint32_t spi_in, spi_out;
	bool qkd;
	char key_id[QKD_IKE_KEY_ID_LEN + 1];
	double at;
	struct qkd_ike_tss ts_l, ts_r;
};

struct ike_del {
	bool used, installed;
	uint32_t spi_in, spi_out;
	double at;
};

/* Our CREATE_CHILD_SA rekey in flight (or waiting for its key). */
struct ike_rekey {
	bool active, sent;
	uint32_t old_in, old_out, new_in;
	uint8_t ni[IKE_NONCE_LEN];
	struct qkd_ike_dh *dh;
	bool with_ppk, no_ppk;
	double retry_at;	/* 0: none */
};

/* Our IKE SA rekey in flight (section 2.18). */
struct ike_irekey {
	bool active;
	uint8_t spi[8];
	uint8_t ni[IKE_NONCE_LEN];
	struct qkd_ike_dh *dh;
};

/* A peer's request parked while its QKD key is fetched. */
struct ike_pend {
	bool on;
	struct ike_isa *sa;
	uint8_t exchange, first;
	uint32_t id;
	struct qkd_wbuf pt;
};

struct qkd_ike {
	const struct qkd_vpn_tunnel *t;
	const struct qkd_ike_ops *ops;
	void *arg;
	const struct qkd_logger *log;
	uint8_t *psk;
	size_t psk_len;
	double rtx_s, dpd_s;
	unsigned rtx_tries, cookie_threshold;
	struct qkd_ike_stats st;
	struct ike_isa *sa, *half, *old;	/* current, being set up beside it, being deleted */
	struct ike_child child[IKE_CHILDREN];
	struct ike_del del[IKE_DELETES];
	struct ike_rekey rk;
	uint16_t rk_group;
	struct ike_irekey irk;	/* PFS group of rekeys: 0 the first, else the peer's choice */
	struct ike_ppk ppk_i, ppk_r;
	struct ike_pend pend;
	uint64_t token;
	double restart_at, backoff, next_rekey_at, ike_rekey_at;
	bool closing, close_sent;
	bool peer_no_9867;	/* a rekey came back without PPK_IDENTITY */
	uint8_t secret[2][32];
	uint8_t secret_ver;
	double secret_at;
	double rl_at;
	unsigned rl_n;
	double log_at;
	unsigned log_dropped;
	/* The decrypted chain of the request being handled (ike_sa.c sets it
	 * for the handler's call), so a handler can park it (ike_park). */
	const uint8_t *cur_pt;
	size_t cur_len;
	uint8_t cur_first;
};

/* ike_sa.c */
void ike_event(struct qkd_ike *ike, enum qkd_ike_event ev, const char *detail);
struct ike_isa *ike_isa_new(bool initiator, double now);
void ike_isa_free(struct ike_isa *s);
void ike_isa_drop(struct qkd_ike *ike, struct ike_isa *s);
void ike_teardown(struct qkd_ike *ike, double now, const char *why, bool restart);
void ike_schedule_restart(struct qkd_ike *ike, double now, double delay);
void ike_rand(void *p, size_t n);
uint64_t ike_ppk_request(struct qkd_ike *ike, struct ike_ppk *pk, enum qkd_ike_ppk_op op,
			 const char *key_id, enum ike_kind kind, double now);
void ike_ppk_clear(struct ike_ppk *pk);
void ike_pend_clear(struct qkd_ike *ike);

/* ike_msg.c */
void ike_bad(struct qkd_ike *ike, double now, const char *why);
int ike_send_request(struct qkd_ike *ike, struct ike_isa *s, uint8_t exchange,
		     enum ike_kind kind, const struct qkd_wbuf *chain, uint8_t first, double now);
int ike_send_init(struct qkd_ike *ike, struct ike_isa *s, const struct qkd_wbuf *msg, double now);
int ike_send_response(struct qkd_ike *ike, struct ike_isa *s, uint8_t exchange, uint32_t id,
		      const struct qkd_wbuf *chain, uint8_t first);
int ike_open(struct ike_isa *s, const uint8_t *msg, size_t len, const struct qkd_ike_msg *m,
	     struct qkd_wbuf *pt, struct qkd_ike_msg *inner, bool from_initiator);
void ike_retransmit(struct qkd_ike *ike, struct ike_isa *s, double now);
void ike_req_clear(struct ike_req *r);
void ike_respond_notify(struct qkd_ike *ike, struct ike_isa *s, uint8_t exchange, uint32_t id,
			uint16_t type, const void *data, size_t len);
void ike_log(struct qkd_ike *ike, enum qkd_log_level lv, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ike_sa_init.c */
int ike_init_start(struct qkd_ike *ike, uint16_t group, double now);
int ike_init_request(struct qkd_ike *ike, const uint8_t *msg, size_t len,
		     const struct qkd_ike_msg *m, double now);
int ike_init_response(struct qkd_ike *ike, struct ike_isa *s, const uint8_t *msg, size_t len,
		      const struct qkd_ike_msg *m, double now);
void ike_cookie_rotate(struct qkd_ike *ike, double now);

/* ike_sa_auth.c */
void ike_auth_go(struct qkd_ike *ike, struct ike_isa *s, double now);
int ike_auth_request(struct qkd_ike *ike, struct ike_isa *s, uint32_t id,
		     const struct qkd_ike_msg *m, double now);
void ike_auth_resume(struct qkd_ike *ike, double now);
int ike_auth_response(struct qkd_ike *ike, struct ike_isa *s, const struct qkd_ike_msg *m,
		      double now);
const struct qkd_ike_pld *ike_find_notify(const struct qkd_ike_msg *m, uint16_t type,
					  struct qkd_ike_notify *n);
bool ike_error_notify(const struct qkd_ike_msg *m, uint16_t *type);
void ike_add_notify(struct qkd_ike_builder *b, uint8_t proto, const void *spi, size_t spi_len,
		    uint16_t type, const void *data, size_t len);
void ike_ppk_id_data(const char *key_id, uint8_t out[1 + QKD_IKE_KEY_ID_LEN]);
bool ike_ppk_id_parse(const struct qkd_ike_notify *n, size_t extra, char out[QKD_IKE_KEY_ID_LEN + 1]);
void ike_promote(struct qkd_ike *ike, struct ike_isa *s, double now);
int ike_park(struct qkd_ike *ike, struct ike_isa *s, uint8_t exchange, uint32_t id);
int ike_unpark(struct qkd_ike *ike, struct qkd_ike_msg *m);

/* ike_child.c */
int ike_child_keys(struct qkd_ike *ike, const uint8_t sk_d[QKD_IKE_PRF_LEN],
		   struct qkd_ike_span gir, struct qkd_ike_span ni, struct qkd_ike_span nr,
		   bool exch_initiator, struct qkd_ike_child *c);
void ike_child_install(struct qkd_ike *ike, struct qkd_ike_child *c, double now);
struct ike_child *ike_child_by_in(struct qkd_ike *ike, uint32_t spi_in);
struct ike_child *ike_child_by_out(struct qkd_ike *ike, uint32_t spi_out);
struct ike_child *ike_child_current(struct qkd_ike *ike);
void ike_child_forget(struct qkd_ike *ike, uint32_t spi_in);
void ike_children_delete_all(struct qkd_ike *ike);
uint32_t ike_new_spi(void);
void ike_queue_delete(struct qkd_ike *ike, uint32_t spi_in, uint32_t spi_out, bool installed,
		      double at);

/* ike_sa_child.c */
void ike_rekey_start(struct qkd_ike *ike, struct ike_child *c, double now);
void ike_rekey_send(struct qkd_ike *ike, double now);
void ike_rekey_clear(struct qkd_ike *ike);
int ike_rekey_request(struct qkd_ike *ike, struct ike_isa *s, uint32_t id,
		      const struct qkd_ike_msg *m, double now);
void ike_rekey_resume(struct qkd_ike *ike, double now);
int ike_rekey_response(struct qkd_ike *ike, struct ike_isa *s, const struct qkd_ike_msg *m,
		       double now);

/* ike_sa_info.c */
int ike_info_request(struct qkd_ike *ike, struct ike_isa *s, uint32_t id,
		     const struct qkd_ike_msg *m, double now);
int ike_info_response(struct qkd_ike *ike, struct ike_isa *s, const struct ike_req *done,
		      const struct qkd_ike_msg *m, double now);
void ike_info_send_delete_child(struct qkd_ike *ike, struct ike_del *d, double now);
void ike_info_send_dpd(struct qkd_ike *ike, double now);
void ike_info_send_delete_ike(struct qkd_ike *ike, struct ike_isa *s, double now);
void ike_info_send_delete_old(struct qkd_ike *ike, struct ike_isa *s, double now);

/* ike_sa_rekey.c */
void ike_irekey_start(struct qkd_ike *ike, double now);
void ike_irekey_clear(struct qkd_ike *ike);
int ike_irekey_request(struct qkd_ike *ike, struct ike_isa *s, uint32_t id,
		       const struct qkd_ike_msg *m, double now);
int ike_irekey_response(struct qkd_ike *ike, struct ike_isa *s, const struct qkd_ike_msg *m,
			double now);
void ike_new_spi8(uint8_t spi[8]);

/* ike_invalid_spi.c */
bool ike_is_invalid_spi(const struct qkd_ike_msg *m);
int ike_invalid_spi_hint(struct qkd_ike *ike, struct ike_isa *s, const struct qkd_ike_msg *m,
			 double now);

/* ike_ts.c */
void ike_ts_from_prefixes(const struct qkd_vpn_prefix *p, size_t n, struct qkd_ike_tss *out);
bool ike_ts_narrow(const struct qkd_ike_tss *offer, const struct qkd_vpn_prefix *allowed,
		   size_t n, struct qkd_ike_tss *out);
bool ike_ts_within(const struct qkd_ike_tss *got, const struct qkd_ike_tss *offered);

#endif
