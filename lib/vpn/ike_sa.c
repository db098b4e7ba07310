/* ike_sa.c - the IKEv2 state machine object (qkd/ike_sa.h): creation,
 * the dispatch of incoming messages to the exchange that expects them,
 * the timers, the QKD key answers and the teardown. The exchanges live in
 * ike_sa_init.c, ike_sa_auth.c, ike_sa_child.c and ike_sa_info.c, the
 * message layer in ike_msg.c; docs/ike.md "State machine" tells the
 * whole story. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ike_sa_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

#define PPK_BITS 256u

void ike_rand(void *p, size_t n)
{
	randombytes_buf(p, n);
}

void ike_event(struct qkd_ike *ike, enum qkd_ike_event ev, const char *detail)
{
	ike->ops->event(ike->arg, ev, detail != NULL ? detail : "");
}

struct ike_isa *ike_isa_new(bool initiator, double now)
{
	struct ike_isa *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->initiator = initiator;
	s->created = s->last_rx = now;
	qkd_wbuf_init(&s->init_i);
	qkd_wbuf_init(&s->init_r);
	qkd_wbuf_init(&s->resp);
	qkd_wbuf_init(&s->out.msg);
	return s;
}

void ike_isa_free(struct ike_isa *s)
{
	if (s == NULL)
		return;
	qkd_ike_dh_free(s->dh);
	qkd_ike_sa_keys_wipe(&s->k0);
	qkd_ike_sa_keys_wipe(&s->k);
	qkd_wbuf_cleanup(&s->init_i);
	qkd_wbuf_cleanup(&s->init_r);
	qkd_wbuf_cleanup(&s->resp);
	qkd_wbuf_cleanup(&s->out.msg);
	qkd_free_secret(s, sizeof *s);
}

void ike_isa_drop(struct qkd_ike *ike, struct ike_isa *s)
{
	if (ike->pend.on && ike->pend.sa == s)
		ike_pend_clear(ike);
	if (ike->half == s)
		ike->half = NULL;
	if (ike->old == s)
		ike->old = NULL;
	if (ike->sa == s)
		ike->sa = NULL;
	ike_isa_free(s);
}

void ike_ppk_clear(struct ike_ppk *pk)
{
	qkd_wipe(pk, sizeof *pk);
}

void ike_pend_clear(struct qkd_ike *ike)
{
	qkd_wbuf_reset(&ike->pend.pt);
	ike->pend.on = false;
	ike->pend.sa = NULL;
	ike_ppk_clear(&ike->ppk_r);
}

void ike_schedule_restart(struct qkd_ike *ike, double now, double delay)
{
	if (!ike->t->initiate || ike->closing)
		return;
	ike->restart_at = now + delay;
}

/* Everything goes: the Child SAs (ops->child_delete), the IKE SAs, the
 * exchanges and key requests in flight. An initiator comes back after a
 * backoff that doubles up to a minute (reset when an IKE SA comes up). */
void ike_teardown(struct qkd_ike *ike, double now, const char *why, bool restart)
{
	bool was = ike->sa != NULL || ike->half != NULL;

	ike_children_delete_all(ike);
	ike_isa_drop(ike, ike->half);
	ike_isa_drop(ike, ike->old);
	ike_isa_drop(ike, ike->sa);
	ike_rekey_clear(ike);
	ike_irekey_clear(ike);
	ike_ppk_clear(&ike->ppk_i);
	ike_pend_clear(ike);
	memset(ike->del, 0, sizeof ike->del);
	ike->next_rekey_at = ike->ike_rekey_at = 0;
	ike->peer_no_9867 = false;
	if (was) {
		ike_event(ike, QKD_IKE_EV_IKE_DOWN, why);
		ike_log(ike, QKD_LOG_INFO, "IKE SA down: %s", why);
	}
	if (restart) {
		ike_schedule_restart(ike, now, ike->backoff);
		ike->backoff = ike->backoff * 2 < IKE_BACKOFF_MAX_S ? ike->backoff * 2
								    : IKE_BACKOFF_MAX_S;
	}
}

static bool params_ok(const struct qkd_ike_params *p)
{
	const struct qkd_ike_ops *o = p->ops;

	return p->tunnel != NULL && o != NULL && o->send != NULL && o->child_install != NULL &&
	       o->child_delete != NULL && o->ppk_request != NULL && o->event != NULL &&
	       p->psk != NULL && p->psk_len > 0 && p->psk_len <= 4096 &&
	       (p->tunnel->ike.key_bits == 128 || p->tunnel->ike.key_bits == 256) &&
	       (p->tunnel->esp.key_bits == 128 || p->tunnel->esp.key_bits == 256) &&
	       (p->tunnel->dh & (QKD_VPN_DH_X25519 | QKD_VPN_DH_MODP2048)) != 0;
}

int qkd_ike_new(const struct qkd_ike_params *p, struct qkd_ike **out)
{
	struct qkd_ike *ike = NULL;
	int rc = QKD_ERR_INVAL;

	if (out == NULL)
		return rc;
	*out = NULL;
	if (p == NULL || !params_ok(p))
		goto out;
	rc = QKD_ERR_NOMEM;
	ike = calloc(1, sizeof *ike);
	if (ike == NULL || sodium_init() < 0)
		goto out;
	ike->psk = malloc(p->psk_len);
	if (ike->psk == NULL)
		goto out;
	memcpy(ike->psk, p->psk, p->psk_len);
	ike->psk_len = p->psk_len;
	ike->t = p->tunnel;
	ike->ops = p->ops;
	ike->arg = p->arg;
	ike->log = p->log;
	ike->rtx_s = p->retransmit_s > 0 ? p->retransmit_s : 0.5;
	ike->rtx_tries = p->retransmit_tries > 0 ? p->retransmit_tries : 7;
	ike->cookie_threshold = p->cookie_threshold;
	ike->dpd_s = p->dpd_s > 0 ? p->dpd_s : 30;
	ike->backoff = IKE_BACKOFF_MIN_S;
	ike->secret_at = -1e300;
	qkd_wbuf_init_secret(&ike->pend.pt);
	*out = ike;
	ike = NULL;
	rc = QKD_OK;
out:
	qkd_ike_free(ike);
	return rc;
}

void qkd_ike_free(struct qkd_ike *ike)
{
	if (ike == NULL)
		return;
	ike_isa_free(ike->sa);
	ike_isa_free(ike->half);
	ike_isa_free(ike->old);
	qkd_ike_dh_free(ike->rk.dh);
	qkd_ike_dh_free(ike->irk.dh);
	qkd_wbuf_cleanup(&ike->pend.pt);
	qkd_free_secret(ike->psk, ike->psk_len);
	qkd_free_secret(ike, sizeof *ike);
}

int qkd_ike_start(struct qkd_ike *ike, double now)
{
	uint16_t g[2];

	if (ike == NULL || !ike->t->initiate)
		return QKD_ERR_INVAL;
	if (ike->sa != NULL || ike->closing)
		return QKD_OK;
	ike->restart_at = 0;
	qkd_ike_tunnel_groups(ike->t, g);
	return ike_init_start(ike, g[0], now);
}

static bool spi_eq(const uint8_t a[8], const uint8_t b[8])
{
	return memcmp(a, b, 8) == 0;
}

static struct ike_isa *find_sa(const struct qkd_ike *ike, const uint8_t spi_i[8],
			       const uint8_t spi_r[8])
{
	struct ike_isa *all[3] = { ike->sa, ike->half, ike->old };

	for (size_t i = 0; i < 3; i++)
		if (all[i] != NULL && spi_eq(all[i]->spi_i, spi_i) && spi_eq(all[i]->spi_r, spi_r))
			return all[i];
	return NULL;
}

bool qkd_ike_owns(const struct qkd_ike *ike, const uint8_t spi_i[8], const uint8_t spi_r[8])
{
	static const uint8_t zero[8];
	const struct ike_isa *all[3] = { ike->sa, ike->half, ike->old };

	if (find_sa(ike, spi_i, spi_r) != NULL)
		return true;
	for (size_t i = 0; i < 3; i++)	/* an IKE_SA_INIT response or its retransmission */
		if (all[i] != NULL && spi_eq(all[i]->spi_i, spi_i) &&
		    (all[i]->ph == PH_INIT_SENT || spi_eq(spi_r, zero)))
			return true;
	return false;
}

static struct ike_isa *init_sa(const struct qkd_ike *ike, const uint8_t spi_i[8])
{
	struct ike_isa *all[3] = { ike->sa, ike->half, ike->old };

	for (size_t i = 0; i < 3; i++)
		if (all[i] != NULL && spi_eq(all[i]->spi_i, spi_i) &&
		    (all[i]->ph == PH_INIT_SENT || all[i]->ph == PH_HALF_OPEN))
			return all[i];
	return NULL;
}

static int input_init(struct qkd_ike *ike, const uint8_t *msg, size_t len,
		      const struct qkd_ike_msg *m, double now)
{
	static const uint8_t zero[8];
	struct ike_isa *s = init_sa(ike, m->hdr.spi_i);
	const char *bad = NULL;
	int rc = QKD_OK;

	if (m->hdr.msg_id != 0)
		bad = "IKE_SA_INIT with a message ID other than 0";
	else if ((m->hdr.flags & QKD_IKE_FLAG_R) != 0 &&
		 (s == NULL || !s->initiator || s->ph != PH_INIT_SENT ||
		  (m->hdr.flags & QKD_IKE_FLAG_I) != 0))
		bad = "unexpected IKE_SA_INIT response";
	else if ((m->hdr.flags & QKD_IKE_FLAG_R) == 0 &&
		 (!spi_eq(m->hdr.spi_r, zero) || (m->hdr.flags & QKD_IKE_FLAG_I) == 0))
		bad = "IKE_SA_INIT request with SPIr or without the I flag";
	if (bad != NULL) {
		ike_bad(ike, now, bad);
		rc = QKD_ERR_PROTO;
	} else if ((m->hdr.flags & QKD_IKE_FLAG_R) != 0) {
		rc = ike_init_response(ike, s, msg, len, m, now);
	} else if (s != NULL && !s->initiator && s->ph == PH_HALF_OPEN && s->init_i.len == len &&
		   memcmp(s->init_i.p, msg, len) == 0) {
		(void)ike->ops->send(ike->arg, s->init_r.p, s->init_r.len);	/* retransmitted */
	} else {
		rc = ike_init_request(ike, msg, len, m, now);
	}
	return rc;
}

/* The peer's I flag is set exactly when it is the original initiator,
 * that is when we are not (section 3.1). */
static bool i_flag_ok(const struct ike_isa *s, const struct qkd_ike_msg *m)
{
	return ((m->hdr.flags & QKD_IKE_FLAG_I) != 0) == !s->initiator;
}

static int input_response(struct qkd_ike *ike, struct ike_isa *s, const uint8_t *msg,
			  size_t len, const struct qkd_ike_msg *m, double now)
{
	struct qkd_wbuf pt;
	struct qkd_ike_msg in;
	struct ike_req done;
	int rc = QKD_ERR_PROTO;

	qkd_wbuf_init_secret(&pt);
	if (s->out.kind == X_NONE || s->out.kind == X_INIT || m->hdr.msg_id != s->out.id ||
	    m->hdr.exchange != s->out.exchange || !i_flag_ok(s, m)) {
		ike_bad(ike, now, "unexpected response (message ID, exchange or flags)");
		goto out;
	}
	if (ike_open(s, msg, len, m, &pt, &in, !s->initiator) != QKD_OK) {
		ike_bad(ike, now, "response refused: SK payload does not verify or parse");
		goto out;
	}
	s->last_rx = now;
	done = s->out;
	memset(&done.msg, 0, sizeof done.msg);
	ike_req_clear(&s->out);
	s->req_id++;
	if (done.kind == X_AUTH)
		rc = ike_auth_response(ike, s, &in, now);
	else if (done.kind == X_REKEY)
		rc = ike_rekey_response(ike, s, &in, now);
	else if (done.kind == X_IKE_REKEY)
		rc = ike_irekey_response(ike, s, &in, now);
	else
		rc = ike_info_response(ike, s, &done, &in, now);
out:
	qkd_wbuf_cleanup(&pt);
	return rc;
}

static int dispatch_request(struct qkd_ike *ike, struct ike_isa *s, const struct qkd_ike_msg *m,
			    const struct qkd_ike_msg *in, double now)
{
	uint8_t x = m->hdr.exchange;

	if (x == QKD_IKE_AUTH && !s->initiator && s->ph == PH_HALF_OPEN)
		return ike_auth_request(ike, s, m->hdr.msg_id, in, now);
	if (x == QKD_IKE_CREATE_CHILD_SA && s->ph == PH_UP && s == ike->sa)
		return ike_rekey_request(ike, s, m->hdr.msg_id, in, now);
	if (x == QKD_IKE_INFORMATIONAL && (s->ph == PH_UP || s->ph == PH_HALF_OPEN))
		return ike_info_request(ike, s, m->hdr.msg_id, in, now);
	ike_bad(ike, now, "request of an exchange not expected now");
	return QKD_ERR_PROTO;
}

static int input_request(struct qkd_ike *ike, struct ike_isa *s, const uint8_t *msg, size_t len,
			 const struct qkd_ike_msg *m, double now)
{
	struct qkd_wbuf pt;
	struct qkd_ike_msg in;
	uint32_t id = m->hdr.msg_id;
	int rc = QKD_ERR_PROTO;

	qkd_wbuf_init_secret(&pt);
	if (!i_flag_ok(s, m) || (id != s->peer_id && !(id + 1 == s->peer_id && s->resp_ok))) {
		ike_bad(ike, now, "request with an unexpected message ID or flags");
		goto out;
	}
	if (s->busy && id == s->peer_id) {
		rc = QKD_OK;	/* a retransmission while we fetch its QKD key */
		goto out;
	}
	if (ike_open(s, msg, len, m, &pt, &in, !s->initiator) != QKD_OK) {
		ike_bad(ike, now, "request refused: SK payload does not verify or parse");
		goto out;
	}
	s->last_rx = now;
	if (id + 1 == s->peer_id) {
		(void)ike->ops->send(ike->arg, s->resp.p, s->resp.len);
		rc = QKD_OK;
		goto out;
	}
	ike->cur_pt = pt.p;
	ike->cur_len = pt.len;
	ike->cur_first = m->inner;
	rc = dispatch_request(ike, s, m, &in, now);
	ike->cur_pt = NULL;
	ike->cur_len = 0;
out:
	qkd_wbuf_cleanup(&pt);
	return rc;
}

int qkd_ike_input(struct qkd_ike *ike, const uint8_t *msg, size_t len, double now)
{
	struct qkd_ike_msg m;
	struct ike_isa *s;
	const char *why = NULL;
	int rc = QKD_ERR_INVAL;

	if (ike == NULL || msg == NULL)
		goto out;
	rc = qkd_ike_msg_parse(msg, len, &m, &why);
	if (rc != QKD_OK) {
		ike_bad(ike, now, why != NULL ? why : "malformed message");
		rc = QKD_ERR_PROTO;
		goto out;
	}
	if (m.hdr.exchange == QKD_IKE_SA_INIT) {
		rc = input_init(ike, msg, len, &m, now);
		goto out;
	}
	s = find_sa(ike, m.hdr.spi_i, m.hdr.spi_r);
	if (s == NULL) {
		ike_bad(ike, now, "unknown IKE SPIs");
		rc = QKD_ERR_PROTO;
	} else if (ike_is_invalid_spi(&m)) {
		rc = ike_invalid_spi_hint(ike, s, &m, now);	/* section 2.21.4 */
	} else if ((m.hdr.flags & QKD_IKE_FLAG_R) != 0) {
		rc = input_response(ike, s, msg, len, &m, now);
	} else {
		rc = input_request(ike, s, msg, len, &m, now);
	}
out:
	return rc;
}
