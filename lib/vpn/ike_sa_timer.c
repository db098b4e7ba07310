/* ike_sa_timer.c - the clock and the key manager side of the IKEv2 state
 * machine (qkd/ike_sa.h): qkd_ike_tick and qkd_ike_next_timer, the QKD
 * key requests and their answers (waiting up to key_wait, then falling
 * back or giving up by the tunnel's qkd policy), soft expiry, close and
 * status. Dispatch and teardown are in ike_sa.c. */
#include <string.h>

#include "ike_sa_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

#define PPK_BITS 256u
#define REQUIRED_REKEY_RETRY_S 10.0

uint64_t ike_ppk_request(struct qkd_ike *ike, struct ike_ppk *pk, enum qkd_ike_ppk_op op,
			 const char *key_id, enum ike_kind kind, double now)
{
	struct qkd_ike_ppk_req r = { .op = op, .bits = PPK_BITS };

	if (!pk->started) {
		pk->started = true;
		pk->first_at = now;
	}
	pk->pending = true;
	pk->have = false;
	pk->retry_at = 0;
	pk->for_kind = kind;
	pk->token = ++ike->token;
	r.token = pk->token;
	if (key_id != NULL) {
		memcpy(r.key_id, key_id, QKD_IKE_KEY_ID_LEN);
		memcpy(pk->id, key_id, QKD_IKE_KEY_ID_LEN);
	}
	ike->ops->ppk_request(ike->arg, &r);	/* may answer at once (re-enters) */
	return r.token;
}

/* qkd = preferred goes on without the QKD key, loudly; required gives up
 * this attempt. */
static void ppk_give_up(struct qkd_ike *ike, enum ike_kind kind, double now)
{
	ike_ppk_clear(&ike->ppk_i);
	if (ike->t->qkd == QKD_VPN_QKD_PREFERRED) {
		ike->st.qkd_fallbacks++;
		ike_event(ike, QKD_IKE_EV_QKD_FALLBACK, "no QKD key within key_wait");
		ike_log(ike, QKD_LOG_ERROR, "no QKD key within key_wait (%.0f s): continuing "
			"WITHOUT a QKD key (qkd = preferred)", ike->t->key_wait_s);
		if (kind == X_AUTH && ike->sa != NULL) {
			ike->sa->no_ppk = true;
			ike_auth_go(ike, ike->sa, now);
		} else if (kind == X_REKEY) {
			ike->rk.no_ppk = true;
			ike_rekey_send(ike, now);
		}
		return;
	}
	ike_log(ike, QKD_LOG_ERROR, "no QKD key within key_wait (%.0f s), qkd = required: "
		"giving up this attempt", ike->t->key_wait_s);
	if (kind == X_AUTH) {
		ike_teardown(ike, now, "no QKD key (qkd = required)", true);
	} else {
		ike_rekey_clear(ike);
		ike->rk.retry_at = now + REQUIRED_REKEY_RETRY_S;
	}
}

static void ppk_i_failed(struct qkd_ike *ike, int status, double now)
{
	struct ike_ppk *pk = &ike->ppk_i;

	if (now - pk->first_at >= ike->t->key_wait_s) {
		ppk_give_up(ike, pk->for_kind, now);
		return;
	}
	pk->retry_at = now + IKE_RETRY_PPK_S;
	ike->st.qkd_waits++;
	ike_event(ike, QKD_IKE_EV_QKD_WAIT, qkd_strerror(status));
}

static void ppk_i_ready(struct qkd_ike *ike, double now)
{
	if (ike->ppk_i.for_kind == X_AUTH && ike->sa != NULL && ike->sa->ph == PH_PPK_WAIT)
		ike_auth_go(ike, ike->sa, now);
	else if (ike->ppk_i.for_kind == X_REKEY)
		ike_rekey_send(ike, now);
}

static bool answer_ok(const struct ike_ppk *pk, bool get, const char *key_id,
		      const uint8_t *ppk, size_t len)
{
	return ppk != NULL && len >= 16 && len <= QKD_IKE_PPK_MAX && key_id != NULL &&
	       strnlen(key_id, QKD_IKE_KEY_ID_LEN + 1) == QKD_IKE_KEY_ID_LEN &&
	       (!get || memcmp(key_id, pk->id, QKD_IKE_KEY_ID_LEN) == 0);
}

int qkd_ike_ppk_answer(struct qkd_ike *ike, uint64_t token, int status, const char *key_id,
		       const uint8_t *ppk, size_t len, double now)
{
	struct ike_ppk *pk;
	bool mine;

	if (ike == NULL)
		return QKD_ERR_INVAL;
	mine = ike->ppk_i.pending && ike->ppk_i.token == token;
	if (!mine && !(ike->ppk_r.pending && ike->ppk_r.token == token))
		return QKD_ERR_NOKEY;
	pk = mine ? &ike->ppk_i : &ike->ppk_r;
	pk->pending = false;
	if (status == QKD_OK && !answer_ok(pk, !mine, key_id, ppk, len))
		status = QKD_ERR_PROTO;
	pk->status = status;
	if (status == QKD_OK) {
		pk->have = true;
		memcpy(pk->id, key_id, QKD_IKE_KEY_ID_LEN);
		pk->id[QKD_IKE_KEY_ID_LEN] = '\0';
		memcpy(pk->key, ppk, len);
		pk->len = len;
	}
	if (!mine) {
		if (ike->pend.on && ike->pend.exchange == QKD_IKE_AUTH)
			ike_auth_resume(ike, now);
		else if (ike->pend.on)
			ike_rekey_resume(ike, now);
	} else if (status == QKD_OK) {
		ppk_i_ready(ike, now);
	} else {
		ppk_i_failed(ike, status, now);
	}
	return QKD_OK;
}

static void ppk_timer(struct qkd_ike *ike, double now)
{
	struct ike_ppk *pk = &ike->ppk_i;

	if (!pk->started || pk->pending || pk->have || pk->retry_at == 0 || now < pk->retry_at)
		return;
	if (now - pk->first_at >= ike->t->key_wait_s) {
		ppk_give_up(ike, pk->for_kind, now);
		return;
	}
	(void)ike_ppk_request(ike, pk, QKD_IKE_PPK_NEW, NULL, pk->for_kind, now);
}

static double half_open_limit(const struct qkd_ike *ike)
{
	return ike->t->key_wait_s + 60.0;
}

static void expire_half_open(struct qkd_ike *ike, double now)
{
	if (ike->half != NULL && now - ike->half->created >= half_open_limit(ike))
		ike_isa_drop(ike, ike->half);
	if (ike->sa != NULL && ike->sa->ph == PH_HALF_OPEN &&
	    now - ike->sa->created >= half_open_limit(ike))
		ike_isa_drop(ike, ike->sa);
}

static struct ike_del *due_delete(struct qkd_ike *ike, double now)
{
	for (size_t i = 0; i < IKE_DELETES; i++)
		if (ike->del[i].used && now >= ike->del[i].at)
			return &ike->del[i];
	return NULL;
}

static void up_timers(struct qkd_ike *ike, double now)
{
	struct ike_isa *s = ike->sa;
	struct ike_child *c = ike_child_current(ike);
	struct ike_del *d;

	if (ike->closing) {
		if (!ike->close_sent && s->out.kind == X_NONE)
			ike_info_send_delete_ike(ike, s, now);
		return;
	}
	if (ike->rk.retry_at != 0 && now >= ike->rk.retry_at) {
		ike->rk.retry_at = 0;
		if (c != NULL)
			ike_rekey_start(ike, c, now);
	} else if (s->initiator && !ike->rk.active && ike->next_rekey_at != 0 &&
		   now >= ike->next_rekey_at) {
		if (c == NULL) {	/* no pair left to rekey (refused by a data plane) */
			ike_teardown(ike, now, "no Child SA left: starting over", true);
			return;
		}
		ike_rekey_start(ike, c, now);
	}
	if (ike->sa == NULL)
		return;
	if (ike->rk.active && !ike->rk.sent)
		ike_rekey_send(ike, now);
	if (ike->ike_rekey_at != 0 && now >= ike->ike_rekey_at && !ike->rk.active)
		ike_irekey_start(ike, now);	/* waits for a free window */
	d = due_delete(ike, now);
	if (ike->sa != NULL && ike->sa->out.kind == X_NONE && d != NULL)
		ike_info_send_delete_child(ike, d, now);
	s = ike->sa;
	if (s != NULL && s->out.kind == X_NONE && now - s->last_rx >= ike->dpd_s)
		ike_info_send_dpd(ike, now);
}

void qkd_ike_tick(struct qkd_ike *ike, double now)
{
	if (ike == NULL)
		return;
	ike_cookie_rotate(ike, now);
	if (ike->old != NULL)
		ike_retransmit(ike, ike->old, now);
	if (ike->half != NULL)
		ike_retransmit(ike, ike->half, now);
	if (ike->sa != NULL)
		ike_retransmit(ike, ike->sa, now);
	expire_half_open(ike, now);
	if (ike->sa == NULL && ike->restart_at != 0 && now >= ike->restart_at) {
		ike->restart_at = 0;
		if (qkd_ike_start(ike, now) != QKD_OK)
			ike_schedule_restart(ike, now, IKE_BACKOFF_MAX_S);
	}
	ppk_timer(ike, now);
	if (ike->sa != NULL && ike->sa->ph == PH_UP)
		up_timers(ike, now);
}

static void earliest(double *t, double v)
{
	if (v > 0 && v < *t)
		*t = v;
}

double qkd_ike_next_timer(const struct qkd_ike *ike, double now)
{
	const struct ike_isa *all[3] = { ike->sa, ike->half, ike->old };
	double t = now + 3600;

	earliest(&t, ike->secret_at + IKE_COOKIE_ROTATE_S);
	for (size_t i = 0; i < 3; i++) {
		if (all[i] == NULL)
			continue;
		if (all[i]->out.kind != X_NONE)
			earliest(&t, all[i]->out.next_at);
		if (all[i]->ph == PH_HALF_OPEN)
			earliest(&t, all[i]->created + half_open_limit(ike));
	}
	earliest(&t, ike->restart_at);
	if (ike->ppk_i.started && !ike->ppk_i.pending && !ike->ppk_i.have)
		earliest(&t, ike->ppk_i.retry_at);
	if (ike->sa != NULL && ike->sa->ph == PH_UP) {
		earliest(&t, ike->rk.retry_at);
		if (ike->sa->initiator && !ike->rk.active)
			earliest(&t, ike->next_rekey_at);
		for (size_t i = 0; i < IKE_DELETES; i++)
			if (ike->del[i].used)
				earliest(&t, ike->del[i].at);
		earliest(&t, ike->sa->last_rx + ike->dpd_s);
		earliest(&t, ike->ike_rekey_at);
	}
	return t < now ? now : t;
}

void qkd_ike_child_soft_expired(struct qkd_ike *ike, uint32_t spi_in, double now)
{
	struct ike_child *c;

	if (ike == NULL || ike->sa == NULL || ike->sa->ph != PH_UP || ike->rk.active)
		return;
	c = ike_child_by_in(ike, spi_in);
	if (c != NULL)
		ike_rekey_start(ike, c, now);
}

void qkd_ike_close(struct qkd_ike *ike, double now)
{
	if (ike == NULL)
		return;
	ike->closing = true;
	ike->restart_at = 0;
	if (ike->sa != NULL && ike->sa->ph == PH_UP) {
		if (ike->sa->out.kind == X_NONE)
			ike_info_send_delete_ike(ike, ike->sa, now);
		return;
	}
	ike_teardown(ike, now, "closed", false);
}

void qkd_ike_status(const struct qkd_ike *ike, struct qkd_ike_status *out)
{
	const struct ike_isa *s = ike->sa;
	const struct ike_child *c = ike_child_current((struct qkd_ike *)ike);

	memset(out, 0, sizeof *out);
	out->stats = ike->st;
	if (s == NULL) {
		out->state = ike->half != NULL ? QKD_IKE_CONNECTING : QKD_IKE_IDLE;
		return;
	}
	out->state = ike->closing ? QKD_IKE_DELETING
		     : s->ph == PH_UP ? QKD_IKE_ESTABLISHED : QKD_IKE_CONNECTING;
	memcpy(out->spi_i, s->spi_i, 8);
	memcpy(out->spi_r, s->spi_r, 8);
	out->initiator = s->initiator;
	out->established_at = s->ph == PH_UP ? s->up_at : 0;
	if (c != NULL) {
		out->spi_in = c->spi_in;
		out->spi_out = c->spi_out;
		out->qkd = c->qkd;
		memcpy(out->key_id, c->key_id, sizeof out->key_id);
	}
}

const char *qkd_ike_event_name(enum qkd_ike_event ev)
{
	static const char *const names[] = { "ike_up", "ike_down", "child_up", "ppk_mismatch",
					     "qkd_fallback", "qkd_wait", "auth_failed",
					     "no_proposal", "bad_message", "retransmit",
					     "peer_dead", "cookie" };

	return (unsigned)ev < sizeof names / sizeof names[0] ? names[ev] : "unknown";
}

const char *qkd_ike_state_name(enum qkd_ike_state s)
{
	static const char *const names[] = { "idle", "connecting", "established", "deleting" };

	return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}
