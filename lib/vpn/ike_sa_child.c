/* ike_sa_child.c - the CREATE_CHILD_SA rekey of a Child SA (sections 1.3.3,
 * 2.8) carrying a fresh QKD key each time by RFC 9867: the request sends
 * PPK_IDENTITY_KEY (PPK_ID_FIXED key_ID | 8-octet confirmation computed
 * with Ni and an empty Nr, since the request precedes Nr: our reading of
 * RFC 9867 section 3.2, docs/ike.md), the responder GETs the key and
 * checks the confirmation, and SK_d' = prf+(PPK, SK_d) replaces SK_d in
 * this Child SA's KEYMAT only. A mismatch is our private error notify
 * QKD_PPK_MISMATCH (8273) with NO_PROPOSAL_CHOSEN: nothing is installed,
 * the old pair keeps working and the initiator retries with a fresh key.
 * The rekey's initiator deletes the old pair IKE_DELETE_GRACE_S after
 * installing the new one (ike_sa_info.c sends the Delete). Simultaneous
 * rekeys are settled by role: only the original initiator of the IKE SA
 * rekeys on time; when a soft expiry makes the other end rekey the same
 * pair at once, the IKE SA's initiator answers TEMPORARY_FAILURE and the
 * other end gives its own up (its pair is being replaced anyway). */
#include <string.h>

#include "ike_sa_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

void ike_rekey_clear(struct qkd_ike *ike)
{
	qkd_ike_dh_free(ike->rk.dh);
	qkd_wipe(&ike->rk, sizeof ike->rk);
	ike_ppk_clear(&ike->ppk_i);
}

void ike_rekey_start(struct qkd_ike *ike, struct ike_child *c, double now)
{
	if (ike->rk.active || ike->sa == NULL || ike->sa->ph != PH_UP || ike->closing)
		return;
	ike_rekey_clear(ike);
	ike->rk.active = true;
	ike->rk.old_in = c->spi_in;
	ike->rk.old_out = c->spi_out;
	/* preferred stops drawing keys a peer without RFC 9867 never uses */
	ike->rk.with_ppk = ike->t->qkd == QKD_VPN_QKD_REQUIRED ||
			   (ike->t->qkd == QKD_VPN_QKD_PREFERRED && !ike->peer_no_9867);
	ike->next_rekey_at = 0;
	ike_rekey_send(ike, now);
}

static void be32(uint8_t p[4], uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int add_ke(struct qkd_ike_builder *b, const struct qkd_ike_dh *dh)
{
	uint8_t pub[QKD_IKE_DH_MAX];
	uint16_t g = qkd_ike_dh_group(dh);
	struct qkd_ike_ke ke = { g, { pub, qkd_ike_dh_len(g) } };
	int rc = qkd_ike_dh_public(dh, pub, sizeof pub);

	if (rc == QKD_OK)
		qkd_ike_add_ke(b, &ke);
	return rc;
}

static int add_ppk_key(struct qkd_ike *ike, struct qkd_ike_builder *b)
{
	const struct ike_isa *s = ike->sa;
	uint8_t d[1 + QKD_IKE_KEY_ID_LEN + QKD_IKE_PPK_CONFIRM_LEN];
	int rc;

	ike_ppk_id_data(ike->ppk_i.id, d);
	rc = qkd_ike_ppk_confirm(ike->ppk_i.key, ike->ppk_i.len,
				 (struct qkd_ike_span){ ike->rk.ni, IKE_NONCE_LEN },
				 (struct qkd_ike_span){ NULL, 0 }, s->spi_i, s->spi_r,
				 d + 1 + QKD_IKE_KEY_ID_LEN);
	if (rc == QKD_OK)
		ike_add_notify(b, 0, NULL, 0, QKD_IKE_N_PPK_IDENTITY_KEY, d, sizeof d);
	return rc;
}

static int rekey_build(struct qkd_ike *ike, struct qkd_wbuf *w, uint8_t *first)
{
	struct ike_rekey *rk = &ike->rk;
	struct qkd_ike_builder b;
	struct qkd_ike_sa offer;
	struct qkd_ike_tss tsi, tsr;
	uint16_t g[2];
	uint8_t old[4];
	int rc = QKD_OK;

	rk->new_in = ike_new_spi();
	ike_rand(rk->ni, sizeof rk->ni);
	if (qkd_ike_tunnel_groups(ike->t, g) > 0)	/* PFS: the first group, or the one */
		rc = qkd_ike_dh_new(ike->rk_group != 0 ? ike->rk_group : g[0], &rk->dh);	/* asked for */
	if (rc != QKD_OK)
		return rc;
	be32(old, rk->old_in);
	qkd_ike_build_chain(&b, w);
	ike_add_notify(&b, QKD_IKE_PROTO_ESP, old, 4, QKD_IKE_N_REKEY_SA, NULL, 0);
	qkd_ike_offer_esp(ike->t, rk->new_in, rk->dh != NULL, &offer);
	qkd_ike_add_sa(&b, &offer);
	qkd_ike_add_nonce(&b, rk->ni, sizeof rk->ni);
	if (rk->dh != NULL)
		rc = add_ke(&b, rk->dh);
	ike_ts_from_prefixes(ike->t->local_ts, ike->t->n_local_ts, &tsi);
	ike_ts_from_prefixes(ike->t->remote_ts, ike->t->n_remote_ts, &tsr);
	qkd_ike_add_ts(&b, QKD_IKE_PT_TSI, &tsi);
	qkd_ike_add_ts(&b, QKD_IKE_PT_TSR, &tsr);
	if (rc == QKD_OK && ike->ppk_i.have)
		rc = add_ppk_key(ike, &b);
	if (rc == QKD_OK)
		rc = qkd_ike_build_end(&b);
	*first = b.first;
	return rc;
}

/* Send the rekey when its key is at hand (or not wanted) and the request
 * window is free; tick calls again until then. */
void ike_rekey_send(struct qkd_ike *ike, double now)
{
	struct ike_rekey *rk = &ike->rk;
	struct ike_isa *s = ike->sa;
	struct qkd_wbuf w;
	uint8_t first = 0;

	if (s == NULL || s->ph != PH_UP || !rk->active || rk->sent)
		return;
	if (rk->with_ppk && !rk->no_ppk && !ike->ppk_i.have) {
		if (!ike->ppk_i.pending && !(ike->ppk_i.started && ike->ppk_i.retry_at != 0))
			(void)ike_ppk_request(ike, &ike->ppk_i, QKD_IKE_PPK_NEW, NULL, X_REKEY, now);
		return;
	}
	if (s->out.kind != X_NONE)
		return;
	qkd_wbuf_init(&w);
	if (rekey_build(ike, &w, &first) == QKD_OK &&
	    ike_send_request(ike, s, QKD_IKE_CREATE_CHILD_SA, X_REKEY, &w, first, now) == QKD_OK) {
		rk->sent = true;
	} else {
		ike_rekey_clear(ike);
		ike->rk.retry_at = now + IKE_BACKOFF_MIN_S;
	}
	qkd_wbuf_cleanup(&w);
}

/* ---- responder ---- */

static void rekey_refuse(struct qkd_ike *ike, struct ike_isa *s, uint32_t id, uint16_t type,
			 const uint8_t *data, size_t len, const char *why)
{
	struct qkd_wbuf w;
	struct qkd_ike_builder b;

	qkd_wbuf_init(&w);
	qkd_ike_build_chain(&b, &w);
	if (type == IKE_N_QKD_PPK_MISMATCH_ERR)	/* ours first, then the standard one */
		ike_add_notify(&b, 0, NULL, 0, type, data, len);
	ike_add_notify(&b, 0, NULL, 0,
		       type == IKE_N_QKD_PPK_MISMATCH_ERR ? QKD_IKE_N_NO_PROPOSAL_CHOSEN : type,
		       type == IKE_N_QKD_PPK_MISMATCH_ERR ? NULL : data,
		       type == IKE_N_QKD_PPK_MISMATCH_ERR ? 0 : len);
	if (qkd_ike_build_end(&b) == QKD_OK)
		(void)ike_send_response(ike, s, QKD_IKE_CREATE_CHILD_SA, id, &w, b.first);
	qkd_wbuf_cleanup(&w);
	if (type == IKE_N_QKD_PPK_MISMATCH_ERR) {
		ike->st.ppk_mismatches++;
		ike_event(ike, QKD_IKE_EV_PPK_MISMATCH, why);
		ike_log(ike, QKD_LOG_ERROR, "QKD key mismatch in CREATE_CHILD_SA (key_ID %s): "
			"nothing installed", why);
	} else if (type != IKE_N_TEMPORARY_FAILURE) {
		ike_event(ike, QKD_IKE_EV_NO_PROPOSAL, why);
		ike_log(ike, QKD_LOG_WARN, "CREATE_CHILD_SA refused: %s", why);
	}
}

struct rekey_in {
	struct ike_child *old;
	struct qkd_ike_sa sa;
	struct qkd_ike_ke ke;
	bool has_ke;
	struct qkd_ike_span ni;
	struct qkd_ike_tss tsi, tsr;
};

static bool rekey_read(struct qkd_ike *ike, const struct qkd_ike_msg *m, struct rekey_in *r)
{
	const struct qkd_ike_pld *sa = qkd_ike_msg_find(m, QKD_IKE_PT_SA);
	const struct qkd_ike_pld *ke = qkd_ike_msg_find(m, QKD_IKE_PT_KE);
	const struct qkd_ike_pld *no = qkd_ike_msg_find(m, QKD_IKE_PT_NONCE);
	const struct qkd_ike_pld *a = qkd_ike_msg_find(m, QKD_IKE_PT_TSI);
	const struct qkd_ike_pld *b = qkd_ike_msg_find(m, QKD_IKE_PT_TSR);
	struct qkd_ike_notify n;
	const char *why;

	memset(r, 0, sizeof *r);
	if (ike_find_notify(m, QKD_IKE_N_REKEY_SA, &n) == NULL || n.protocol != QKD_IKE_PROTO_ESP ||
	    n.spi.len != 4)
		return false;
	r->old = ike_child_by_out(ike, rd32(n.spi.p));
	r->has_ke = ke != NULL;
	return sa != NULL && no != NULL && a != NULL && b != NULL &&
	       qkd_ike_sa_parse(sa, &r->sa, &why) == QKD_OK &&
	       qkd_ike_nonce_parse(no, &r->ni, &why) == QKD_OK &&
	       (ke == NULL || qkd_ike_ke_parse(ke, &r->ke, &why) == QKD_OK) &&
	       qkd_ike_ts_parse(a, &r->tsi, &why) == QKD_OK &&
	       qkd_ike_ts_parse(b, &r->tsr, &why) == QKD_OK;
}

/* The key to derive this Child SA from: SK_d, or SK_d' when a QKD key was
 * confirmed. 1 go on, 0 refused (answered). */
static int rekey_r_key(struct qkd_ike *ike, struct ike_isa *s, uint32_t id, bool tried,
		       const struct qkd_ike_msg *m, const struct rekey_in *r, uint8_t sk_d[32])
{
	struct qkd_ike_notify n;
	const struct ike_ppk *pk = &ike->ppk_r;

	memcpy(sk_d, s->k.sk_d, QKD_IKE_PRF_LEN);
	if (tried && pk->have && ike_find_notify(m, QKD_IKE_N_PPK_IDENTITY_KEY, &n) != NULL) {
		struct qkd_ike_span conf = { n.data.p + 1 + QKD_IKE_KEY_ID_LEN,
					     QKD_IKE_PPK_CONFIRM_LEN };

		if (qkd_ike_ppk_confirm_check(pk->key, pk->len, r->ni, (struct qkd_ike_span){ NULL, 0 },
					      s->spi_i, s->spi_r, conf) != QKD_OK) {
			rekey_refuse(ike, s, id, IKE_N_QKD_PPK_MISMATCH_ERR,
				     (const uint8_t *)pk->id, QKD_IKE_KEY_ID_LEN, pk->id);
			return 0;
		}
		return qkd_ike_ppk_mix_sk_d(s->k.sk_d, pk->key, pk->len, sk_d) == QKD_OK ? 1 : 0;
	}
	if (ike->t->qkd == QKD_VPN_QKD_REQUIRED) {
		rekey_refuse(ike, s, id, QKD_IKE_N_NO_PROPOSAL_CHOSEN, NULL, 0,
			     "no QKD key for the rekey (qkd = required)");
		return 0;
	}
	if (ike->t->qkd == QKD_VPN_QKD_PREFERRED) {
		ike->st.qkd_fallbacks++;
		ike_event(ike, QKD_IKE_EV_QKD_FALLBACK, "Child SA rekey without a QKD key");
		ike_log(ike, QKD_LOG_ERROR, "Child SA rekeyed WITHOUT a QKD key");
	}
	return 1;
}

static int rekey_r_reply(struct qkd_ike *ike, struct ike_isa *s, uint32_t id,
			 const struct qkd_ike_choice *c, const struct qkd_ike_child *ch,
			 const uint8_t *nr, const struct qkd_ike_dh *dh)
{
	uint8_t spi[4], pid[1 + QKD_IKE_KEY_ID_LEN];
	struct qkd_ike_sa ans;
	struct qkd_ike_builder b;
	struct qkd_wbuf w;
	int rc = QKD_OK;

	be32(spi, ch->spi_in);
	qkd_wbuf_init(&w);
	qkd_ike_build_chain(&b, &w);
	qkd_ike_answer(c, spi, 4, &ans);
	qkd_ike_add_sa(&b, &ans);
	qkd_ike_add_nonce(&b, nr, IKE_NONCE_LEN);
	if (dh != NULL)
		rc = add_ke(&b, dh);
	qkd_ike_add_ts(&b, QKD_IKE_PT_TSI, &ch->ts_remote);
	qkd_ike_add_ts(&b, QKD_IKE_PT_TSR, &ch->ts_local);
	if (ch->qkd) {
		ike_ppk_id_data(ch->key_id, pid);
		ike_add_notify(&b, 0, NULL, 0, QKD_IKE_N_PPK_IDENTITY, pid, sizeof pid);
	}
	if (rc == QKD_OK)
		rc = qkd_ike_build_end(&b);
	if (rc == QKD_OK)
		rc = ike_send_response(ike, s, QKD_IKE_CREATE_CHILD_SA, id, &w, b.first);
	qkd_wbuf_cleanup(&w);
	return rc;
}

/* Proposal, KE and TS of the request, then the new pair's keys. */
static int rekey_r_pair(struct qkd_ike *ike, struct ike_isa *s, uint32_t id,
			const struct rekey_in *r, const uint8_t *sk_d, struct qkd_ike_child *ch,
			double now)
{
	struct qkd_ike_choice c;
	struct qkd_ike_dh *dh = NULL;
	uint8_t nr[IKE_NONCE_LEN], gir[QKD_IKE_DH_MAX], g[2];
	size_t gl = 0;
	int rc = QKD_ERR_PROTO;

	if (qkd_ike_select(ike->t, &r->sa, QKD_IKE_PROTO_ESP, r->has_ke, r->ke.group, &c) != QKD_OK) {
		rekey_refuse(ike, s, id, QKD_IKE_N_NO_PROPOSAL_CHOSEN, NULL, 0, "no ESP proposal");
		goto out;
	}
	if (r->has_ke && c.group != r->ke.group) {
		g[0] = (uint8_t)(c.group >> 8);
		g[1] = (uint8_t)c.group;
		rekey_refuse(ike, s, id, QKD_IKE_N_INVALID_KE_PAYLOAD, g, 2, "INVALID_KE_PAYLOAD");
		goto out;
	}
	if (!ike_ts_narrow(&r->tsi, ike->t->remote_ts, ike->t->n_remote_ts, &ch->ts_remote) ||
	    !ike_ts_narrow(&r->tsr, ike->t->local_ts, ike->t->n_local_ts, &ch->ts_local)) {
		rekey_refuse(ike, s, id, QKD_IKE_N_TS_UNACCEPTABLE, NULL, 0, "TS_UNACCEPTABLE");
		goto out;
	}
	ike_rand(nr, sizeof nr);
	if (r->has_ke) {
		gl = qkd_ike_dh_len(c.group);
		if (qkd_ike_dh_new(c.group, &dh) != QKD_OK ||
		    qkd_ike_dh_shared(dh, r->ke.data.p, r->ke.data.len, gir, sizeof gir) != QKD_OK) {
			rekey_refuse(ike, s, id, QKD_IKE_N_NO_PROPOSAL_CHOSEN, NULL, 0, "bad KE");
			goto out;
		}
	}
	ch->spi_in = ike_new_spi();
	ch->spi_out = rd32(c.spi);
	ch->old_spi_in = r->old->spi_in;
	ch->old_spi_out = r->old->spi_out;
	rc = ike_child_keys(ike, sk_d, (struct qkd_ike_span){ gir, gl }, r->ni,
			    (struct qkd_ike_span){ nr, sizeof nr }, false, ch);
	if (rc == QKD_OK)
		rc = rekey_r_reply(ike, s, id, &c, ch, nr, dh);
	if (rc == QKD_OK) {
		ike->st.child_rekeys++;
		ike_child_install(ike, ch, now);
	}
out:
	qkd_ike_dh_free(dh);
	qkd_wipe(gir, sizeof gir);
	return rc;
}

static int rekey_r_finish(struct qkd_ike *ike, struct ike_isa *s, uint32_t id, bool tried,
			  const struct qkd_ike_msg *m, double now)
{
	struct rekey_in r;
	struct qkd_ike_child ch;
	uint8_t sk_d[QKD_IKE_PRF_LEN];

	memset(&ch, 0, sizeof ch);
	if (!rekey_read(ike, m, &r)) {
		rekey_refuse(ike, s, id, QKD_IKE_N_INVALID_SYNTAX, NULL, 0, "malformed rekey");
		return QKD_OK;
	}
	if (r.old == NULL) {
		rekey_refuse(ike, s, id, IKE_N_CHILD_SA_NOT_FOUND, NULL, 0, "CHILD_SA_NOT_FOUND");
		return QKD_OK;
	}
	if (rekey_r_key(ike, s, id, tried, m, &r, sk_d) == 1) {
		ch.qkd = tried && ike->ppk_r.have;
		if (ch.qkd)
			memcpy(ch.key_id, ike->ppk_r.id, sizeof ch.key_id);
		(void)rekey_r_pair(ike, s, id, &r, sk_d, &ch, now);
	}
	qkd_wipe(sk_d, sizeof sk_d);
	qkd_wipe(&ch, sizeof ch);
	return QKD_OK;
}

int ike_rekey_request(struct qkd_ike *ike, struct ike_isa *s, uint32_t id,
		      const struct qkd_ike_msg *m, double now)
{
	struct qkd_ike_notify n;
	char key_id[QKD_IKE_KEY_ID_LEN + 1];

	if (ike_find_notify(m, QKD_IKE_N_REKEY_SA, &n) == NULL)
		return ike_irekey_request(ike, s, id, m, now);	/* or refused there */
	if (ike->rk.active && s->initiator && n.spi.len == 4 &&
	    ike_child_by_in(ike, ike->rk.old_in) != NULL &&
	    ike_child_by_out(ike, rd32(n.spi.p)) == ike_child_by_in(ike, ike->rk.old_in)) {
		rekey_refuse(ike, s, id, IKE_N_TEMPORARY_FAILURE, NULL, 0, "rekey collision");
		return QKD_OK;
	}
	if (ike->t->qkd == QKD_VPN_QKD_OFF ||
	    ike_find_notify(m, QKD_IKE_N_PPK_IDENTITY_KEY, &n) == NULL)
		return rekey_r_finish(ike, s, id, false, m, now);
	if (!ike_ppk_id_parse(&n, QKD_IKE_PPK_CONFIRM_LEN, key_id) ||
	    ike_park(ike, s, QKD_IKE_CREATE_CHILD_SA, id) != QKD_OK) {
		ike_pend_clear(ike);
		s->busy = false;
		return rekey_r_finish(ike, s, id, true, m, now);
	}
	(void)ike_ppk_request(ike, &ike->ppk_r, QKD_IKE_PPK_GET, key_id, X_REKEY, now);
	return QKD_OK;
}

void ike_rekey_resume(struct qkd_ike *ike, double now)
{
	struct qkd_ike_msg m;
	struct ike_isa *s = ike->pend.sa;

	if (s == NULL || ike_unpark(ike, &m) != QKD_OK) {
		ike_pend_clear(ike);
		return;
	}
	(void)rekey_r_finish(ike, s, ike->pend.id, true, &m, now);
	ike_pend_clear(ike);
}

/* ---- initiator: the response ---- */

/* INVALID_KE_PAYLOAD names the group the responder wants (section
 * 1.3): take it for this and later rekeys when our policy allows it. */
static bool ke_asked(struct qkd_ike *ike, const struct qkd_ike_msg *m)
{
	struct qkd_ike_notify n;
	uint16_t g[2], want;
	size_t k;

	if (ike_find_notify(m, QKD_IKE_N_INVALID_KE_PAYLOAD, &n) == NULL || n.data.len != 2)
		return false;
	want = (uint16_t)(n.data.p[0] << 8 | n.data.p[1]);
	k = qkd_ike_tunnel_groups(ike->t, g);
	for (size_t i = 0; i < k; i++) {
		if (g[i] == want && want != ike->rk_group) {
			ike->rk_group = want;
			return true;
		}
	}
	return false;
}

static int rekey_i_fail(struct qkd_ike *ike, const struct qkd_ike_msg *m, uint16_t err,
			double now)
{
	bool mismatch = ike_find_notify(m, IKE_N_QKD_PPK_MISMATCH_ERR, NULL) != NULL &&
			ike->ppk_i.have;
	char id[QKD_IKE_KEY_ID_LEN + 1];

	memcpy(id, ike->ppk_i.id, sizeof id);
	ike_rekey_clear(ike);
	if (mismatch) {
		ike->st.ppk_mismatches++;
		ike_event(ike, QKD_IKE_EV_PPK_MISMATCH, id);
		ike_log(ike, QKD_LOG_ERROR, "QKD key mismatch in CREATE_CHILD_SA (key_ID %s): "
			"old SA kept, retrying with a fresh key", id);
		ike->rk.retry_at = now + IKE_RETRY_MISMATCH_S;
	} else if (err == QKD_IKE_N_INVALID_KE_PAYLOAD && ke_asked(ike, m)) {
		ike_event(ike, QKD_IKE_EV_NO_PROPOSAL, "INVALID_KE_PAYLOAD: rekeying in the group "
			  "asked for");
		ike->rk.retry_at = now;
	} else if (err == IKE_N_TEMPORARY_FAILURE || err == IKE_N_CHILD_SA_NOT_FOUND) {
		ike_log(ike, QKD_LOG_INFO, "rekey given up (peer answered %u)", err);
	} else {
		ike_event(ike, QKD_IKE_EV_NO_PROPOSAL, "CREATE_CHILD_SA refused by the peer");
		ike->rk.retry_at = now + IKE_BACKOFF_MAX_S / 6;
	}
	return QKD_OK;
}

/* The peer's answer about the QKD key: 1 with SK_d' in sk_d, 2 without a
 * QKD key, 0 refused (the new pair is deleted at the peer). */
static int rekey_i_key(struct qkd_ike *ike, const struct ike_isa *s, const struct qkd_ike_msg *m,
		       uint32_t peer_spi, uint8_t sk_d[QKD_IKE_PRF_LEN], double now)
{
	bool used = ike_find_notify(m, QKD_IKE_N_PPK_IDENTITY, NULL) != NULL;

	memcpy(sk_d, s->k.sk_d, QKD_IKE_PRF_LEN);
	if (ike->ppk_i.have && used)
		return qkd_ike_ppk_mix_sk_d(s->k.sk_d, ike->ppk_i.key, ike->ppk_i.len,
					    sk_d) == QKD_OK ? 1 : 0;
	if (used)
		return 0;
	if (ike->t->qkd == QKD_VPN_QKD_REQUIRED) {
		ike_queue_delete(ike, ike->rk.new_in, peer_spi, false, now);
		ike_event(ike, QKD_IKE_EV_NO_PROPOSAL, "peer rekeyed without the QKD key");
		return 0;
	}
	if (ike->rk.with_ppk) {
		ike->peer_no_9867 = ike->ppk_i.have;	/* it had the key and did not use it */
		ike->st.qkd_fallbacks++;
		ike_event(ike, QKD_IKE_EV_QKD_FALLBACK, "peer rekeyed without the QKD key");
		ike_log(ike, QKD_LOG_ERROR, "Child SA rekeyed WITHOUT a QKD key (peer)");
	}
	return 2;
}

static int rekey_i_pair(struct qkd_ike *ike, const struct ike_isa *s, const struct qkd_ike_msg *m,
			const struct qkd_ike_choice *c, const struct rekey_in *r,
			struct qkd_ike_child *ch, double now)
{
	uint8_t sk_d[QKD_IKE_PRF_LEN], gir[QKD_IKE_DH_MAX];
	size_t gl = 0;
	int k = rekey_i_key(ike, s, m, rd32(c->spi), sk_d, now), rc = QKD_ERR_PROTO;

	if (k == 0)
		goto out;
	if (ike->rk.dh != NULL) {
		gl = qkd_ike_dh_len(c->group);
		if (qkd_ike_dh_shared(ike->rk.dh, r->ke.data.p, r->ke.data.len, gir,
				      sizeof gir) != QKD_OK)
			goto out;
	}
	ch->spi_in = ike->rk.new_in;
	ch->spi_out = rd32(c->spi);
	ch->old_spi_in = ike->rk.old_in;
	ch->old_spi_out = ike->rk.old_out;
	ch->ts_local = r->tsi;
	ch->ts_remote = r->tsr;
	ch->qkd = k == 1;
	if (ch->qkd)
		memcpy(ch->key_id, ike->ppk_i.id, sizeof ch->key_id);
	rc = ike_child_keys(ike, sk_d, (struct qkd_ike_span){ gir, gl },
			    (struct qkd_ike_span){ ike->rk.ni, IKE_NONCE_LEN }, r->ni, true, ch);
out:
	qkd_wipe(sk_d, sizeof sk_d);
	qkd_wipe(gir, sizeof gir);
	return rc;
}

int ike_rekey_response(struct qkd_ike *ike, struct ike_isa *s, const struct qkd_ike_msg *m,
		       double now)
{
	struct rekey_in r;
	struct qkd_ike_choice c;
	struct qkd_ike_child ch;
	const struct qkd_ike_pld *ke = qkd_ike_msg_find(m, QKD_IKE_PT_KE);
	const struct qkd_ike_pld *sa = qkd_ike_msg_find(m, QKD_IKE_PT_SA);
	const struct qkd_ike_pld *no = qkd_ike_msg_find(m, QKD_IKE_PT_NONCE);
	const struct qkd_ike_pld *a = qkd_ike_msg_find(m, QKD_IKE_PT_TSI);
	const struct qkd_ike_pld *b = qkd_ike_msg_find(m, QKD_IKE_PT_TSR);
	uint32_t old_in = ike->rk.old_in, old_out = ike->rk.old_out;
	const char *why;
	uint16_t err;

	memset(&r, 0, sizeof r);
	memset(&ch, 0, sizeof ch);
	if (ike_error_notify(m, &err))
		return rekey_i_fail(ike, m, err, now);
	if (sa == NULL || no == NULL || a == NULL || b == NULL || (ke == NULL) != (ike->rk.dh == NULL) ||
	    qkd_ike_sa_parse(sa, &r.sa, &why) != QKD_OK ||
	    qkd_ike_nonce_parse(no, &r.ni, &why) != QKD_OK ||
	    (ke != NULL && (qkd_ike_ke_parse(ke, &r.ke, &why) != QKD_OK ||
			    r.ke.group != qkd_ike_dh_group(ike->rk.dh))) ||
	    qkd_ike_ts_parse(a, &r.tsi, &why) != QKD_OK || qkd_ike_ts_parse(b, &r.tsr, &why) != QKD_OK ||
	    qkd_ike_accept(ike->t, &r.sa, QKD_IKE_PROTO_ESP, ke != NULL, &c) != QKD_OK ||
	    (ke != NULL && c.group != r.ke.group) || rekey_i_pair(ike, s, m, &c, &r, &ch, now) != QKD_OK) {
		ike_event(ike, QKD_IKE_EV_NO_PROPOSAL, "CREATE_CHILD_SA response refused");
		ike_rekey_clear(ike);
		ike->rk.retry_at = now + IKE_BACKOFF_MAX_S / 6;
		qkd_wipe(&ch, sizeof ch);
		return QKD_OK;
	}
	ike_rekey_clear(ike);
	ike->st.child_rekeys++;
	ike_child_install(ike, &ch, now);
	ike_queue_delete(ike, old_in, old_out, true, now + IKE_DELETE_GRACE_S);
	ike->next_rekey_at = now + ike->t->rekey_s;
	return QKD_OK;
}
