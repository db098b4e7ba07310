/* ike_msg.c - the message layer of the IKEv2 state machine (RFC 7296
 * sections 2.1 to 2.3): message IDs with a window of one in each
 * direction, our request kept and retransmitted with a doubling timeout
 * until `retransmit_tries` sends, our last response kept to answer a
 * retransmitted request, sealing and opening the SK payload (ike_sk.c),
 * and the counting and rate-limited logging of every refusal. The
 * exchanges (ike_sa_*.c) build chains and call these. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ike_sa_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

void ike_log(struct qkd_ike *ike, enum qkd_log_level lv, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (ike->log == NULL || ike->log->write == NULL || lv > ike->log->level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	qkd_logf(ike->log, lv, "ike %s: %s", ike->t->name, line);
}

/* At most one line a second per object, so a flood cannot fill the log;
 * the count of lines held back goes with the next one. */
void ike_bad(struct qkd_ike *ike, double now, const char *why)
{
	ike->st.bad_messages++;
	ike_event(ike, QKD_IKE_EV_BAD_MESSAGE, why);
	if (now - ike->log_at < 1.0 && ike->log_at != 0) {
		ike->log_dropped++;
		return;
	}
	ike_log(ike, QKD_LOG_WARN, "message dropped: %s (%u more since the last line)", why,
		ike->log_dropped);
	ike->log_at = now;
	ike->log_dropped = 0;
}

void ike_req_clear(struct ike_req *r)
{
	struct qkd_wbuf keep = r->msg;

	qkd_wbuf_reset(&keep);
	memset(r, 0, sizeof *r);
	r->msg = keep;
}

static const uint8_t *own_key(const struct ike_isa *s)
{
	return s->initiator ? s->k.sk_ei : s->k.sk_er;
}

static void arm(struct qkd_ike *ike, struct ike_isa *s, enum ike_kind kind, uint8_t exchange,
		uint32_t id, double now)
{
	s->out.kind = kind;
	s->out.exchange = exchange;
	s->out.id = id;
	s->out.sends = 1;
	s->out.timeout = ike->rtx_s;
	s->out.next_at = now + ike->rtx_s;
	(void)ike->ops->send(ike->arg, s->out.msg.p, s->out.msg.len);
}

int ike_send_request(struct qkd_ike *ike, struct ike_isa *s, uint8_t exchange,
		     enum ike_kind kind, const struct qkd_wbuf *chain, uint8_t first, double now)
{
	struct qkd_ike_hdr h = { .exchange = exchange, .msg_id = s->req_id,
				 .flags = s->initiator ? QKD_IKE_FLAG_I : 0 };
	int rc;

	if (s->out.kind != X_NONE)
		return QKD_ERR_INVAL;
	memcpy(h.spi_i, s->spi_i, 8);
	memcpy(h.spi_r, s->spi_r, 8);
	ike_req_clear(&s->out);
	rc = qkd_ike_sk_seal(&h, first, chain->p, chain->len, own_key(s), s->k.enc_len, s->iv++,
			     &s->out.msg);
	if (rc == QKD_OK)
		arm(ike, s, kind, exchange, s->req_id, now);
	return rc;
}

int ike_send_init(struct qkd_ike *ike, struct ike_isa *s, const struct qkd_wbuf *msg, double now)
{
	ike_req_clear(&s->out);
	qkd_put_bytes(&s->out.msg, msg->p, msg->len);
	if (s->out.msg.err != QKD_OK)
		return s->out.msg.err;
	arm(ike, s, X_INIT, QKD_IKE_SA_INIT, 0, now);
	return QKD_OK;
}

int ike_send_response(struct qkd_ike *ike, struct ike_isa *s, uint8_t exchange, uint32_t id,
		      const struct qkd_wbuf *chain, uint8_t first)
{
	struct qkd_ike_hdr h = { .exchange = exchange, .msg_id = id,
				 .flags = QKD_IKE_FLAG_R | (s->initiator ? QKD_IKE_FLAG_I : 0) };
	int rc;

	memcpy(h.spi_i, s->spi_i, 8);
	memcpy(h.spi_r, s->spi_r, 8);
	qkd_wbuf_reset(&s->resp);
	s->resp_ok = false;
	rc = qkd_ike_sk_seal(&h, first, chain->p, chain->len, own_key(s), s->k.enc_len, s->iv++,
			     &s->resp);
	s->peer_id = id + 1;
	s->busy = false;
	if (rc != QKD_OK)
		return rc;
	s->resp_ok = true;
	(void)ike->ops->send(ike->arg, s->resp.p, s->resp.len);
	return QKD_OK;
}

void ike_respond_notify(struct qkd_ike *ike, struct ike_isa *s, uint8_t exchange, uint32_t id,
			uint16_t type, const void *data, size_t len)
{
	struct qkd_wbuf w;
	struct qkd_ike_builder b;

	qkd_wbuf_init(&w);
	qkd_ike_build_chain(&b, &w);
	ike_add_notify(&b, 0, NULL, 0, type, data, len);
	if (qkd_ike_build_end(&b) == QKD_OK)
		(void)ike_send_response(ike, s, exchange, id, &w, b.first);
	qkd_wbuf_cleanup(&w);
}

int ike_open(struct ike_isa *s, const uint8_t *msg, size_t len, const struct qkd_ike_msg *m,
	     struct qkd_wbuf *pt, struct qkd_ike_msg *inner, bool from_initiator)
{
	const char *why;
	size_t n = 0;
	int rc = QKD_ERR_PROTO;

	if (!s->keys_ok || m->n == 0 || m->pld[m->n - 1].type != QKD_IKE_PT_SK || m->n != 1)
		goto out;
	rc = qkd_wbuf_reserve(pt, len);
	if (rc != QKD_OK)
		goto out;
	rc = qkd_ike_sk_open(msg, len, m, from_initiator ? s->k.sk_ei : s->k.sk_er, s->k.enc_len,
			     pt->p, pt->cap, &n);
	if (rc != QKD_OK)
		goto out;
	pt->len = n;
	rc = qkd_ike_chain_parse(m->inner, pt->p, n, inner, &why);
out:
	return rc;
}

/* After an INVALID_IKE_SPI hint the request has a lower limit and a
 * fixed interval (ike_invalid_spi.c); exhaustion is the same either way. */
void ike_retransmit(struct qkd_ike *ike, struct ike_isa *s, double now)
{
	unsigned limit;

	if (s->out.kind == X_NONE || now < s->out.next_at)
		return;
	limit = s->out.max_sends != 0 ? s->out.max_sends : ike->rtx_tries;
	if (s->out.sends >= limit && s != ike->sa) {
		ike_isa_drop(ike, s);	/* a half-open or old IKE SA: only it goes */
		return;
	}
	if (s->out.sends >= limit) {
		ike->st.peer_dead++;
		ike_event(ike, QKD_IKE_EV_PEER_DEAD, s->out.hinted ? "INVALID_IKE_SPI, then no answer"
								   : "retransmissions exhausted");
		ike_log(ike, QKD_LOG_WARN, "peer not answering after %u sends", s->out.sends);
		ike_teardown(ike, now, "peer dead", ike->t->initiate && !ike->closing);
		return;
	}
	s->out.sends++;
	if (!s->out.hinted)
		s->out.timeout *= 2;
	s->out.next_at = now + s->out.timeout;
	ike->st.retransmits++;
	ike_event(ike, QKD_IKE_EV_RETRANSMIT, "request resent");
	(void)ike->ops->send(ike->arg, s->out.msg.p, s->out.msg.len);
}
