/* ike_sa_auth.c - the IKE_AUTH exchange (RFC 7296 sections 1.2, 2.15,
 * 2.17) with a QKD key as the PPK of RFC 8784: the initiator asks the key
 * manager for a NEW key, sends PPK_IDENTITY (PPK_ID_FIXED and the 36
 * characters of the key_ID) and NO_PPK_AUTH (the AUTH computed without
 * the PPK); the responder GETs that key, and when AUTH does not verify
 * but NO_PPK_AUTH does, the two ends hold different bits under one key_ID:
 * AUTHENTICATION_FAILED plus our private status QKD_PPK_MISMATCH, nothing
 * installed, and the initiator tries again with a fresh key. Also the
 * first Child SA with its traffic selectors, and the notify helpers the
 * other exchanges share. Previous: ike_sa_init.c; next: ike_sa_child.c. */
#include <stdio.h>
#include <string.h>

#include "ike_sa_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

const struct qkd_ike_pld *ike_find_notify(const struct qkd_ike_msg *m, uint16_t type,
					  struct qkd_ike_notify *n)
{
	struct qkd_ike_notify tmp;
	const char *why;

	for (size_t i = 0; i < m->n; i++) {
		if (m->pld[i].type != QKD_IKE_PT_NOTIFY ||
		    qkd_ike_notify_parse(&m->pld[i], &tmp, &why) != QKD_OK || tmp.type != type)
			continue;
		if (n != NULL)
			*n = tmp;
		return &m->pld[i];
	}
	return NULL;
}

bool ike_error_notify(const struct qkd_ike_msg *m, uint16_t *type)
{
	struct qkd_ike_notify n;
	const char *why;

	for (size_t i = 0; i < m->n; i++) {
		if (m->pld[i].type == QKD_IKE_PT_NOTIFY &&
		    qkd_ike_notify_parse(&m->pld[i], &n, &why) == QKD_OK && n.type < 16384) {
			*type = n.type;
			return true;
		}
	}
	return false;
}

void ike_add_notify(struct qkd_ike_builder *b, uint8_t proto, const void *spi, size_t spi_len,
		    uint16_t type, const void *data, size_t len)
{
	struct qkd_ike_notify n = { .protocol = proto, .spi = { spi, spi_len }, .type = type,
				    .data = { data, len } };

	qkd_ike_add_notify(b, &n);
}

void ike_ppk_id_data(const char *key_id, uint8_t out[1 + QKD_IKE_KEY_ID_LEN])
{
	out[0] = IKE_PPK_ID_FIXED;
	memcpy(out + 1, key_id, QKD_IKE_KEY_ID_LEN);
}

/* PPK_ID_FIXED, then 36 printable characters (a UUID), then `extra`
 * octets (the confirmation of PPK_IDENTITY_KEY). */
bool ike_ppk_id_parse(const struct qkd_ike_notify *n, size_t extra,
		      char out[QKD_IKE_KEY_ID_LEN + 1])
{
	if (n->data.len != 1 + QKD_IKE_KEY_ID_LEN + extra || n->data.p[0] != IKE_PPK_ID_FIXED)
		return false;
	for (size_t i = 0; i < QKD_IKE_KEY_ID_LEN; i++)
		if (n->data.p[1 + i] < 0x21 || n->data.p[1 + i] > 0x7e)
			return false;
	memcpy(out, n->data.p + 1, QKD_IKE_KEY_ID_LEN);
	out[QKD_IKE_KEY_ID_LEN] = '\0';
	return true;
}

int ike_park(struct qkd_ike *ike, struct ike_isa *s, uint8_t exchange, uint32_t id)
{
	ike_pend_clear(ike);
	qkd_put_bytes(&ike->pend.pt, ike->cur_pt, ike->cur_len);
	if (ike->pend.pt.err != QKD_OK)
		return ike->pend.pt.err;
	ike->pend.on = true;
	ike->pend.sa = s;
	ike->pend.exchange = exchange;
	ike->pend.id = id;
	ike->pend.first = ike->cur_first;
	s->busy = true;
	return QKD_OK;
}

int ike_unpark(struct qkd_ike *ike, struct qkd_ike_msg *m)
{
	const char *why;

	return qkd_ike_chain_parse(ike->pend.first, ike->pend.pt.p, ike->pend.pt.len, m, &why);
}

/* ID type from the name: an FQDN when it has a dot, else a KEY_ID (an
 * opaque string, section 3.5). The body is what AUTH signs. */
static size_t id_body(const char *name, uint8_t out[4 + QKD_NODE_NAME_MAX])
{
	size_t n = strnlen(name, QKD_NODE_NAME_MAX);

	out[0] = strchr(name, '.') != NULL ? QKD_IKE_ID_FQDN : QKD_IKE_ID_KEY_ID;
	out[1] = out[2] = out[3] = 0;
	memcpy(out + 4, name, n);
	return 4 + n;
}

static bool id_matches(const struct qkd_ike_msg *m, uint8_t type, const char *want,
		       struct qkd_ike_span *body)
{
	const struct qkd_ike_pld *p = qkd_ike_msg_find(m, type);
	uint8_t exp[4 + QKD_NODE_NAME_MAX];
	size_t n = id_body(want, exp);

	if (p == NULL || p->body.len != n || memcmp(p->body.p, exp, 1) != 0 ||
	    memcmp(p->body.p + 4, exp + 4, n - 4) != 0)
		return false;
	*body = p->body;
	return true;
}

static bool auth_data(const struct qkd_ike_msg *m, struct qkd_ike_span *data)
{
	const struct qkd_ike_pld *p = qkd_ike_msg_find(m, QKD_IKE_PT_AUTH);
	struct qkd_ike_auth a;
	const char *why;

	if (p == NULL || qkd_ike_auth_parse(p, &a, &why) != QKD_OK || a.method != QKD_IKE_AUTH_PSK)
		return false;
	*data = a.data;
	return true;
}

static bool read_ts(const struct qkd_ike_msg *m, struct qkd_ike_tss *tsi, struct qkd_ike_tss *tsr)
{
	const struct qkd_ike_pld *a = qkd_ike_msg_find(m, QKD_IKE_PT_TSI);
	const struct qkd_ike_pld *b = qkd_ike_msg_find(m, QKD_IKE_PT_TSR);
	const char *why;

	return a != NULL && b != NULL && qkd_ike_ts_parse(a, tsi, &why) == QKD_OK &&
	       qkd_ike_ts_parse(b, tsr, &why) == QKD_OK;
}

static bool read_sa(const struct qkd_ike_msg *m, struct qkd_ike_sa *sa)
{
	const struct qkd_ike_pld *p = qkd_ike_msg_find(m, QKD_IKE_PT_SA);
	const char *why;

	return p != NULL && qkd_ike_sa_parse(p, sa, &why) == QKD_OK;
}

/* ---- initiator ---- */

static void auth_i_chain(struct qkd_ike *ike, struct ike_isa *s, struct qkd_ike_builder *b,
			 const uint8_t *auth, const uint8_t *no_ppk)
{
	uint8_t idb[4 + QKD_NODE_NAME_MAX], pid[1 + QKD_IKE_KEY_ID_LEN];
	size_t n = id_body(ike->t->local_id, idb);
	struct qkd_ike_id id = { idb[0], { idb + 4, n - 4 } };
	struct qkd_ike_auth a = { QKD_IKE_AUTH_PSK, { auth, QKD_IKE_PRF_LEN } };
	struct qkd_ike_sa offer;

	qkd_ike_add_id(b, QKD_IKE_PT_IDI, &id);
	qkd_ike_add_auth(b, &a);
	if (s->ppk) {
		ike_ppk_id_data(s->ppk_id, pid);
		ike_add_notify(b, 0, NULL, 0, QKD_IKE_N_PPK_IDENTITY, pid, sizeof pid);
		ike_add_notify(b, 0, NULL, 0, QKD_IKE_N_NO_PPK_AUTH, no_ppk, QKD_IKE_PRF_LEN);
	}
	qkd_ike_offer_esp(ike->t, s->esp_spi, false, &offer);
	qkd_ike_add_sa(b, &offer);
	qkd_ike_add_ts(b, QKD_IKE_PT_TSI, &s->ts_i);
	qkd_ike_add_ts(b, QKD_IKE_PT_TSR, &s->ts_r);
}

static int auth_i_send(struct qkd_ike *ike, struct ike_isa *s, const struct ike_ppk *pk,
		       double now)
{
	uint8_t idb[4 + QKD_NODE_NAME_MAX], auth[QKD_IKE_PRF_LEN], no_ppk[QKD_IKE_PRF_LEN];
	struct qkd_ike_auth_input in = { { s->init_i.p, s->init_i.len }, { s->nr, s->nr_len },
					 NULL, { idb, id_body(ike->t->local_id, idb) } };
	struct qkd_ike_builder b;
	struct qkd_wbuf w;
	int rc = QKD_OK;

	qkd_wbuf_init(&w);
	if (pk != NULL) {
		rc = qkd_ike_ppk_mix_auth(&s->k0, pk->key, pk->len, &s->k);
		s->ppk = rc == QKD_OK;
		memcpy(s->ppk_id, pk->id, sizeof s->ppk_id);
	}
	in.sk_p = s->k0.sk_pi;
	if (rc == QKD_OK && s->ppk)
		rc = qkd_ike_psk_auth(ike->psk, ike->psk_len, &in, no_ppk);
	in.sk_p = s->k.sk_pi;
	if (rc == QKD_OK)
		rc = qkd_ike_psk_auth(ike->psk, ike->psk_len, &in, auth);
	if (rc != QKD_OK)
		goto out;
	s->esp_spi = ike_new_spi();
	ike_ts_from_prefixes(ike->t->local_ts, ike->t->n_local_ts, &s->ts_i);
	ike_ts_from_prefixes(ike->t->remote_ts, ike->t->n_remote_ts, &s->ts_r);
	qkd_ike_build_chain(&b, &w);
	auth_i_chain(ike, s, &b, auth, no_ppk);
	rc = qkd_ike_build_end(&b);
	if (rc == QKD_OK) {
		s->ph = PH_AUTH_SENT;
		rc = ike_send_request(ike, s, QKD_IKE_AUTH, X_AUTH, &w, b.first, now);
	}
out:
	ike_ppk_clear(&ike->ppk_i);
	qkd_wipe(no_ppk, sizeof no_ppk);
	qkd_wbuf_cleanup(&w);
	return rc;
}

/* Go on with IKE_AUTH as initiator: wait for a QKD key when the policy
 * and the peer want one, fall back or give up when the peer cannot do
 * RFC 8784, else send. */
void ike_auth_go(struct qkd_ike *ike, struct ike_isa *s, double now)
{
	bool want = ike->t->qkd != QKD_VPN_QKD_OFF;

	if (want && !s->peer_ppk && !s->no_ppk) {
		if (ike->t->qkd == QKD_VPN_QKD_REQUIRED) {
			ike->st.auth_failures++;
			ike_event(ike, QKD_IKE_EV_AUTH_FAILED, "peer does not offer USE_PPK");
			ike_teardown(ike, now, "peer does not do RFC 8784 (qkd = required)", true);
			return;
		}
		ike->st.qkd_fallbacks++;
		ike_event(ike, QKD_IKE_EV_QKD_FALLBACK, "peer does not offer USE_PPK");
		ike_log(ike, QKD_LOG_ERROR, "peer sent no USE_PPK: IKE SA WITHOUT a QKD key");
		s->no_ppk = true;
	}
	if (want && !s->no_ppk && !ike->ppk_i.have) {
		s->ph = PH_PPK_WAIT;
		if (!ike->ppk_i.pending && !(ike->ppk_i.started && ike->ppk_i.retry_at != 0))
			(void)ike_ppk_request(ike, &ike->ppk_i, QKD_IKE_PPK_NEW, NULL, X_AUTH, now);
		return;	/* the answer may have moved on already: s may be gone */
	}
	if (auth_i_send(ike, s, want && !s->no_ppk ? &ike->ppk_i : NULL, now) != QKD_OK)
		ike_teardown(ike, now, "IKE_AUTH could not be built", true);
}

static void child_fill(struct qkd_ike_child *c, const struct ike_isa *s)
{
	c->qkd = s->ppk;
	if (s->ppk)
		memcpy(c->key_id, s->ppk_id, sizeof c->key_id);
}

void ike_promote(struct qkd_ike *ike, struct ike_isa *s, double now)
{
	if (s == ike->half) {	/* the peer started over: the old SA and its children go */
		ike_children_delete_all(ike);
		ike_rekey_clear(ike);
		memset(ike->del, 0, sizeof ike->del);
		ike_isa_drop(ike, ike->sa);
		ike->sa = s;
		ike->half = NULL;
	} else if (ike->half != NULL) {
		ike_isa_drop(ike, ike->half);
	}
	s->ph = PH_UP;
	s->up_at = now;
	s->last_rx = now;
	ike->backoff = IKE_BACKOFF_MIN_S;
	ike->restart_at = 0;
	ike->st.ike_up++;
	ike->next_rekey_at = now + ike->t->rekey_s;
	ike->ike_rekey_at = s->initiator && ike->t->ike_rekey_s > 0 ? now + ike->t->ike_rekey_s : 0;
	ike_event(ike, QKD_IKE_EV_IKE_UP, s->ppk ? s->ppk_id : "no QKD key");
	ike_log(ike, QKD_LOG_INFO, "IKE SA up as %s%s%s", s->initiator ? "initiator" : "responder",
		s->ppk ? ", PPK " : "", s->ppk ? s->ppk_id : "");
}

static int auth_i_fail(struct qkd_ike *ike, struct ike_isa *s, const struct qkd_ike_msg *m,
		       uint16_t err, double now)
{
	char why[96];

	if (err == QKD_IKE_N_AUTHENTICATION_FAILED &&
	    ike_find_notify(m, IKE_N_QKD_PPK_MISMATCH, NULL) != NULL && s->ppk) {
		ike->st.ppk_mismatches++;
		ike_event(ike, QKD_IKE_EV_PPK_MISMATCH, s->ppk_id);
		ike_log(ike, QKD_LOG_ERROR, "QKD key mismatch in IKE_AUTH (key_ID %s): retrying "
			"with a fresh key", s->ppk_id);
		ike_teardown(ike, now, "QKD key mismatch", false);
		ike_schedule_restart(ike, now, IKE_RETRY_MISMATCH_S);
		return QKD_OK;
	}
	snprintf(why, sizeof why, "IKE_AUTH refused by the peer (notify %u)", err);
	if (err == QKD_IKE_N_AUTHENTICATION_FAILED) {
		ike->st.auth_failures++;
		ike_event(ike, QKD_IKE_EV_AUTH_FAILED, why);
	} else {
		ike_event(ike, QKD_IKE_EV_NO_PROPOSAL, why);
	}
	ike_teardown(ike, now, why, true);
	return QKD_OK;
}

static int auth_i_local_fail(struct qkd_ike *ike, double now, const char *why)
{
	ike->st.auth_failures++;
	ike_event(ike, QKD_IKE_EV_AUTH_FAILED, why);
	ike_log(ike, QKD_LOG_WARN, "IKE_AUTH response refused: %s", why);
	ike_teardown(ike, now, why, true);
	return QKD_OK;
}

/* RFC 8784: a responder that could not use the PPK answers with the
 * NO_PPK_AUTH path and sends no PPK_IDENTITY; then the keys are the ones
 * without it. */
static int auth_i_ppk_check(struct qkd_ike *ike, struct ike_isa *s, const struct qkd_ike_msg *m,
			    double now)
{
	bool used = ike_find_notify(m, QKD_IKE_N_PPK_IDENTITY, NULL) != NULL;

	if (used && !s->ppk)
		return auth_i_local_fail(ike, now, "PPK_IDENTITY in a response to none");
	if (!s->ppk || used)
		return 1;
	if (ike->t->qkd == QKD_VPN_QKD_REQUIRED)
		return auth_i_local_fail(ike, now, "peer did not use the QKD key (qkd = required)");
	s->k = s->k0;
	s->ppk = false;
	ike->st.qkd_fallbacks++;
	ike_event(ike, QKD_IKE_EV_QKD_FALLBACK, "peer answered without the PPK");
	ike_log(ike, QKD_LOG_ERROR, "peer did not use the QKD key: IKE SA WITHOUT it");
	return 1;
}

static int auth_i_child(struct qkd_ike *ike, struct ike_isa *s, const struct qkd_ike_msg *m,
			double now)
{
	struct qkd_ike_sa sa;
	struct qkd_ike_choice c;
	struct qkd_ike_tss tsi, tsr;
	struct qkd_ike_child ch;
	int rc;

	memset(&ch, 0, sizeof ch);
	if (!read_sa(m, &sa) || qkd_ike_accept(ike->t, &sa, QKD_IKE_PROTO_ESP, false, &c) != QKD_OK ||
	    !read_ts(m, &tsi, &tsr) || !ike_ts_within(&tsi, &s->ts_i) ||
	    !ike_ts_within(&tsr, &s->ts_r)) {
		ike_event(ike, QKD_IKE_EV_NO_PROPOSAL, "IKE_AUTH response: SA or TS not ours");
		ike_teardown(ike, now, "first Child SA refused", true);
		return QKD_OK;
	}
	ch.spi_in = s->esp_spi;
	ch.spi_out = (uint32_t)c.spi[0] << 24 | (uint32_t)c.spi[1] << 16 | (uint32_t)c.spi[2] << 8 |
		     c.spi[3];
	ch.ts_local = tsi;
	ch.ts_remote = tsr;
	child_fill(&ch, s);
	rc = ike_child_keys(ike, s->k.sk_d, (struct qkd_ike_span){ NULL, 0 },
			    (struct qkd_ike_span){ s->ni, s->ni_len },
			    (struct qkd_ike_span){ s->nr, s->nr_len }, true, &ch);
	if (rc != QKD_OK) {
		ike_teardown(ike, now, "Child SA keys", true);
		return QKD_OK;
	}
	ike_promote(ike, s, now);
	ike_child_install(ike, &ch, now);
	return QKD_OK;
}

static bool auth_r_proof(const struct qkd_ike *ike, const struct ike_isa *s,
			 struct qkd_ike_span idb, struct qkd_ike_span got)
{
	struct qkd_ike_auth_input in = { { s->init_r.p, s->init_r.len }, { s->ni, s->ni_len },
					 s->k.sk_pr, idb };

	return qkd_ike_psk_auth_check(ike->psk, ike->psk_len, &in, got) == QKD_OK;
}

int ike_auth_response(struct qkd_ike *ike, struct ike_isa *s, const struct qkd_ike_msg *m,
		      double now)
{
	struct qkd_ike_span idb, got;
	uint16_t err;
	int rc;

	if (ike_error_notify(m, &err))
		rc = auth_i_fail(ike, s, m, err, now);
	else if (!id_matches(m, QKD_IKE_PT_IDR, ike->t->remote_id, &idb))
		rc = auth_i_local_fail(ike, now, "IDr is not the tunnel's remote_id");
	else if (!auth_data(m, &got))
		rc = auth_i_local_fail(ike, now, "no PSK AUTH payload");
	else if (auth_i_ppk_check(ike, s, m, now) != 1)
		rc = QKD_OK;	/* refused, and the SA is gone */
	else if (!auth_r_proof(ike, s, idb, got))
		rc = auth_i_local_fail(ike, now, "responder's AUTH does not verify");
	else
		rc = auth_i_child(ike, s, m, now);
	return rc;
}

/* ---- responder ---- */

static void auth_r_refuse(struct qkd_ike *ike, struct ike_isa *s, uint32_t id, bool mismatch,
			  const char *why)
{
	struct qkd_wbuf w;
	struct qkd_ike_builder b;

	qkd_wbuf_init(&w);
	qkd_ike_build_chain(&b, &w);
	ike_add_notify(&b, 0, NULL, 0, QKD_IKE_N_AUTHENTICATION_FAILED, NULL, 0);
	if (mismatch)
		ike_add_notify(&b, 0, NULL, 0, IKE_N_QKD_PPK_MISMATCH, s->ppk_id, QKD_IKE_KEY_ID_LEN);
	if (qkd_ike_build_end(&b) == QKD_OK)
		(void)ike_send_response(ike, s, QKD_IKE_AUTH, id, &w, b.first);
	qkd_wbuf_cleanup(&w);
	if (mismatch) {
		ike->st.ppk_mismatches++;
		ike_event(ike, QKD_IKE_EV_PPK_MISMATCH, s->ppk_id);
		ike_log(ike, QKD_LOG_ERROR, "QKD key mismatch in IKE_AUTH (key_ID %s): nothing "
			"installed", s->ppk_id);
	} else {
		ike->st.auth_failures++;
		ike_event(ike, QKD_IKE_EV_AUTH_FAILED, why);
		ike_log(ike, QKD_LOG_WARN, "IKE_AUTH refused: %s", why);
	}
	ike_isa_drop(ike, s);
}

static bool check_auth(const struct qkd_ike *ike, const struct ike_isa *s, const uint8_t *sk_pi,
		       struct qkd_ike_span idb, struct qkd_ike_span got)
{
	struct qkd_ike_auth_input in = { { s->init_i.p, s->init_i.len }, { s->nr, s->nr_len },
					 sk_pi, idb };

	return got.len > 0 && qkd_ike_psk_auth_check(ike->psk, ike->psk_len, &in, got) == QKD_OK;
}

/* Which keys the initiator's AUTH proves, by RFC 8784 section 3 and the
 * tunnel's policy: 1 go on (s->k set), 0 refused (already answered). */
static int auth_r_verify(struct qkd_ike *ike, struct ike_isa *s, uint32_t id, bool tried,
			 const struct qkd_ike_msg *m, struct qkd_ike_span idb,
			 struct qkd_ike_span got)
{
	struct qkd_ike_notify np;
	bool has_np = ike_find_notify(m, QKD_IKE_N_NO_PPK_AUTH, &np) != NULL;
	struct qkd_ike_sa_keys mixed;
	bool ok = false;

	if (tried && ike->ppk_r.have &&
	    qkd_ike_ppk_mix_auth(&s->k0, ike->ppk_r.key, ike->ppk_r.len, &mixed) == QKD_OK) {
		ok = check_auth(ike, s, mixed.sk_pi, idb, got);
		if (ok) {
			s->k = mixed;
			s->ppk = true;
		}
		qkd_ike_sa_keys_wipe(&mixed);
		if (ok)
			return 1;
		if (has_np && check_auth(ike, s, s->k0.sk_pi, idb, np.data)) {
			auth_r_refuse(ike, s, id, true, "PPK mismatch");
			return 0;
		}
		auth_r_refuse(ike, s, id, false, "AUTH does not verify (PSK)");
		return 0;
	}
	if (ike->t->qkd == QKD_VPN_QKD_REQUIRED) {
		auth_r_refuse(ike, s, id, false, "no QKD key for this IKE SA (qkd = required)");
		return 0;
	}
	if (tried ? !(has_np && check_auth(ike, s, s->k0.sk_pi, idb, np.data))
		  : !check_auth(ike, s, s->k0.sk_pi, idb, got)) {
		auth_r_refuse(ike, s, id, false, "AUTH does not verify (PSK)");
		return 0;
	}
	if (tried || ike->t->qkd == QKD_VPN_QKD_PREFERRED) {
		ike->st.qkd_fallbacks++;
		ike_event(ike, QKD_IKE_EV_QKD_FALLBACK, "IKE SA without a QKD key");
		ike_log(ike, QKD_LOG_ERROR, "IKE SA WITHOUT a QKD key (qkd = preferred)");
	}
	return 1;
}

static int auth_r_reply(struct qkd_ike *ike, struct ike_isa *s, uint32_t id,
			const struct qkd_ike_choice *c, const struct qkd_ike_child *ch)
{
	uint8_t idb[4 + QKD_NODE_NAME_MAX], auth[QKD_IKE_PRF_LEN], pid[1 + QKD_IKE_KEY_ID_LEN];
	uint8_t spi[4] = { (uint8_t)(ch->spi_in >> 24), (uint8_t)(ch->spi_in >> 16),
			   (uint8_t)(ch->spi_in >> 8), (uint8_t)ch->spi_in };
	size_t n = id_body(ike->t->local_id, idb);
	struct qkd_ike_auth_input in = { { s->init_r.p, s->init_r.len }, { s->ni, s->ni_len },
					 s->k.sk_pr, { idb, n } };
	struct qkd_ike_id idr = { idb[0], { idb + 4, n - 4 } };
	struct qkd_ike_auth a = { QKD_IKE_AUTH_PSK, { auth, sizeof auth } };
	struct qkd_ike_sa ans;
	struct qkd_ike_builder b;
	struct qkd_wbuf w;
	int rc = qkd_ike_psk_auth(ike->psk, ike->psk_len, &in, auth);

	qkd_wbuf_init(&w);
	qkd_ike_build_chain(&b, &w);
	qkd_ike_add_id(&b, QKD_IKE_PT_IDR, &idr);
	qkd_ike_add_auth(&b, &a);
	if (s->ppk) {
		ike_ppk_id_data(s->ppk_id, pid);
		ike_add_notify(&b, 0, NULL, 0, QKD_IKE_N_PPK_IDENTITY, pid, sizeof pid);
	}
	qkd_ike_answer(c, spi, 4, &ans);
	qkd_ike_add_sa(&b, &ans);
	qkd_ike_add_ts(&b, QKD_IKE_PT_TSI, &ch->ts_remote);
	qkd_ike_add_ts(&b, QKD_IKE_PT_TSR, &ch->ts_local);
	if (rc == QKD_OK)
		rc = qkd_ike_build_end(&b);
	if (rc == QKD_OK)
		rc = ike_send_response(ike, s, QKD_IKE_AUTH, id, &w, b.first);
	qkd_wbuf_cleanup(&w);
	return rc;
}

/* The first Child SA: ESP proposal, TSi within our remote prefixes and
 * TSr within our local ones (narrowed), keys, answer, install. */
static int auth_r_child(struct qkd_ike *ike, struct ike_isa *s, uint32_t id,
			const struct qkd_ike_msg *m, double now)
{
	struct qkd_ike_sa sa;
	struct qkd_ike_choice c;
	struct qkd_ike_tss tsi, tsr;
	struct qkd_ike_child ch;

	memset(&ch, 0, sizeof ch);
	if (!read_sa(m, &sa) || qkd_ike_select(ike->t, &sa, QKD_IKE_PROTO_ESP, false, 0, &c) != QKD_OK) {
		ike_respond_notify(ike, s, QKD_IKE_AUTH, id, QKD_IKE_N_NO_PROPOSAL_CHOSEN, NULL, 0);
		ike_event(ike, QKD_IKE_EV_NO_PROPOSAL, "IKE_AUTH: no acceptable ESP proposal");
		ike_isa_drop(ike, s);
		return QKD_OK;
	}
	if (!read_ts(m, &tsi, &tsr) ||
	    !ike_ts_narrow(&tsi, ike->t->remote_ts, ike->t->n_remote_ts, &ch.ts_remote) ||
	    !ike_ts_narrow(&tsr, ike->t->local_ts, ike->t->n_local_ts, &ch.ts_local)) {
		ike_respond_notify(ike, s, QKD_IKE_AUTH, id, QKD_IKE_N_TS_UNACCEPTABLE, NULL, 0);
		ike_event(ike, QKD_IKE_EV_NO_PROPOSAL, "IKE_AUTH: TS_UNACCEPTABLE");
		ike_isa_drop(ike, s);
		return QKD_OK;
	}
	ch.spi_in = ike_new_spi();
	ch.spi_out = (uint32_t)c.spi[0] << 24 | (uint32_t)c.spi[1] << 16 | (uint32_t)c.spi[2] << 8 |
		     c.spi[3];
	child_fill(&ch, s);
	if (ike_child_keys(ike, s->k.sk_d, (struct qkd_ike_span){ NULL, 0 },
			   (struct qkd_ike_span){ s->ni, s->ni_len },
			   (struct qkd_ike_span){ s->nr, s->nr_len }, false, &ch) != QKD_OK ||
	    auth_r_reply(ike, s, id, &c, &ch) != QKD_OK) {
		qkd_wipe(&ch, sizeof ch);
		ike_isa_drop(ike, s);
		return QKD_OK;
	}
	ike_promote(ike, s, now);
	ike_child_install(ike, &ch, now);
	return QKD_OK;
}

static int auth_r_finish(struct qkd_ike *ike, struct ike_isa *s, uint32_t id, bool tried,
			 const struct qkd_ike_msg *m, double now)
{
	struct qkd_ike_span idb, got;

	if (!id_matches(m, QKD_IKE_PT_IDI, ike->t->remote_id, &idb)) {
		auth_r_refuse(ike, s, id, false, "IDi is not the tunnel's remote_id");
		return QKD_OK;
	}
	if (!auth_data(m, &got)) {
		auth_r_refuse(ike, s, id, false, "no PSK AUTH payload");
		return QKD_OK;
	}
	if (auth_r_verify(ike, s, id, tried, m, idb, got) != 1)
		return QKD_OK;
	return auth_r_child(ike, s, id, m, now);
}

int ike_auth_request(struct qkd_ike *ike, struct ike_isa *s, uint32_t id,
		     const struct qkd_ike_msg *m, double now)
{
	struct qkd_ike_notify n;
	char key_id[QKD_IKE_KEY_ID_LEN + 1];

	if (ike->t->qkd == QKD_VPN_QKD_OFF || !s->peer_ppk ||
	    ike_find_notify(m, QKD_IKE_N_PPK_IDENTITY, &n) == NULL)
		return auth_r_finish(ike, s, id, false, m, now);
	if (!ike_ppk_id_parse(&n, 0, key_id) || ike_park(ike, s, QKD_IKE_AUTH, id) != QKD_OK) {
		ike_pend_clear(ike);
		s->busy = false;
		return auth_r_finish(ike, s, id, true, m, now);	/* no usable PPK_ID */
	}
	memcpy(s->ppk_id, key_id, sizeof s->ppk_id);
	(void)ike_ppk_request(ike, &ike->ppk_r, QKD_IKE_PPK_GET, key_id, X_AUTH, now);
	return QKD_OK;	/* the answer may already have finished the exchange */
}

void ike_auth_resume(struct qkd_ike *ike, double now)
{
	struct qkd_ike_msg m;
	struct ike_isa *s = ike->pend.sa;
	uint32_t id = ike->pend.id;

	if (s == NULL || ike_unpark(ike, &m) != QKD_OK) {
		ike_pend_clear(ike);
		return;
	}
	(void)auth_r_finish(ike, s, id, true, &m, now);
	ike_pend_clear(ike);
}
