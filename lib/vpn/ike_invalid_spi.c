/* ike_invalid_spi.c - both ends of RFC 7296 section 2.21.4, so that a
 * gateway restarted (killed, crashed) is noticed within seconds rather
 * than after a minute of retransmissions (docs/ike.md "Restarts"):
 * - the end without the IKE SA answers a request on it with an
 *   unprotected INFORMATIONAL response holding Notify INVALID_IKE_SPI
 *   (qkd_ike_invalid_spi_reply; the caller picks whom to answer and how
 *   often, qkd_ike_rate_take);
 * - the end holding the IKE SA takes such a response to its request in
 *   flight as a hint only, since anyone on the path can forge it: the
 *   request gets two more sends 0.5 s apart, and if they go unanswered
 *   the usual retransmission exhaustion declares the peer dead
 *   (ike_msg.c, ike_retransmit). State is never changed by the hint
 *   itself, as the section demands. */
#include <string.h>

#include "ike_sa_int.h"
#include "qkd/error.h"

#define HINT_SENDS 2u		/* sends left after a hint */
#define HINT_INTERVAL_S 0.5

int qkd_ike_invalid_spi_reply(const uint8_t *msg, size_t len, struct qkd_wbuf *out)
{
	struct qkd_ike_msg m;
	struct qkd_ike_builder b;
	struct qkd_ike_hdr h = { .exchange = QKD_IKE_INFORMATIONAL };
	struct qkd_ike_notify n = { .type = QKD_IKE_N_INVALID_IKE_SPI };
	const char *why;
	int rc = QKD_ERR_INVAL;

	if (msg == NULL || out == NULL)
		goto out;
	qkd_wbuf_reset(out);
	rc = qkd_ike_msg_parse(msg, len, &m, &why);
	if (rc != QKD_OK || (m.hdr.flags & QKD_IKE_FLAG_R) != 0 ||
	    m.hdr.exchange == QKD_IKE_SA_INIT) {
		rc = QKD_ERR_PROTO;	/* section 2.21.4: never answer a response */
		goto out;
	}
	memcpy(h.spi_i, m.hdr.spi_i, 8);
	memcpy(h.spi_r, m.hdr.spi_r, 8);
	h.msg_id = m.hdr.msg_id;
	/* The I flag names the original initiator (section 3.1): the sender
	 * of the request had it, so we are the other end. */
	h.flags = QKD_IKE_FLAG_R | ((m.hdr.flags & QKD_IKE_FLAG_I) != 0 ? 0 : QKD_IKE_FLAG_I);
	qkd_ike_build_msg(&b, out, &h);
	qkd_ike_add_notify(&b, &n);
	rc = qkd_ike_build_end(&b);
out:
	return rc;
}

bool qkd_ike_rate_take(struct qkd_ike_rate *r, double now, unsigned per_s)
{
	if (now - r->at >= 1.0 || now < r->at) {
		r->at = now;
		r->n = 0;
	}
	if (r->n >= per_s)
		return false;
	r->n++;
	return true;
}

/* An unprotected response (no SK payload) of an INFORMATIONAL exchange
 * carrying Notify INVALID_IKE_SPI. */
bool ike_is_invalid_spi(const struct qkd_ike_msg *m)
{
	return (m->hdr.flags & QKD_IKE_FLAG_R) != 0 && m->hdr.exchange == QKD_IKE_INFORMATIONAL &&
	       qkd_ike_msg_find(m, QKD_IKE_PT_SK) == NULL &&
	       ike_find_notify(m, QKD_IKE_N_INVALID_IKE_SPI, NULL) != NULL;
}

/* The hint for s: only for the Message ID of our request in flight (an
 * IKE_SA_INIT has no IKE SA to forget). Counted every time; the request's
 * remaining sends are cut once and only ever shortened. */
int ike_invalid_spi_hint(struct qkd_ike *ike, struct ike_isa *s, const struct qkd_ike_msg *m,
			 double now)
{
	struct ike_req *r = &s->out;
	unsigned limit;

	if (r->kind == X_NONE || r->kind == X_INIT || m->hdr.msg_id != r->id ||
	    ((m->hdr.flags & QKD_IKE_FLAG_I) != 0) != !s->initiator) {
		ike_bad(ike, now, "INVALID_IKE_SPI for no request of ours");
		return QKD_ERR_PROTO;
	}
	ike->st.invalid_spi_hints++;
	if (r->hinted)
		return QKD_OK;
	limit = r->sends + HINT_SENDS;
	r->hinted = true;
	r->max_sends = limit < ike->rtx_tries ? limit : ike->rtx_tries;
	r->timeout = HINT_INTERVAL_S;
	if (r->next_at > now + HINT_INTERVAL_S)
		r->next_at = now + HINT_INTERVAL_S;
	ike_log(ike, QKD_LOG_WARN, "INVALID_IKE_SPI for request %u: the peer may have restarted; "
		"%u more send(s) before it counts as dead", r->id, r->max_sends - r->sends);
	return QKD_OK;
}
