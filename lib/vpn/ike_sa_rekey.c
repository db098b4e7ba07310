/* ike_sa_rekey.c - the rekey of the IKE SA itself (RFC 7296 section 2.18):
 * a CREATE_CHILD_SA with an IKE proposal carrying the new SPI, a nonce and
 * a fresh key exchange, SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr).
 * The Child SAs belong to the tunnel object, not to an IKE SA, so they
 * move to the new IKE SA without a word; the rekey's initiator becomes the
 * new SA's original initiator and deletes the old IKE SA, whose Delete
 * takes nothing else with it. Only the IKE SA's initiator rekeys it (on
 * ike_rekey_s), and never while a Child SA rekey is in flight, so the two
 * ends never rekey it at once. The old SA's SK_d carries the QKD key mixed
 * in at IKE_AUTH (RFC 8784), so the new one inherits it; no new QKD key is
 * drawn here (RFC 9867 would allow one: not done). Neighbours: ike_sa_child.c
 * hands CREATE_CHILD_SA requests without REKEY_SA here. */
#include <string.h>

#include "ike_sa_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

void ike_irekey_clear(struct qkd_ike *ike)
{
	qkd_ike_dh_free(ike->irk.dh);
	qkd_wipe(&ike->irk, sizeof ike->irk);
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

void ike_irekey_start(struct qkd_ike *ike, double now)
{
	struct ike_isa *s = ike->sa;
	struct qkd_ike_builder b;
	struct qkd_ike_sa offer;
	struct qkd_wbuf w;
	int rc;

	if (s == NULL || s->ph != PH_UP || ike->irk.active || ike->rk.active ||
	    s->out.kind != X_NONE)
		return;
	ike_irekey_clear(ike);
	ike_new_spi8(ike->irk.spi);
	ike_rand(ike->irk.ni, sizeof ike->irk.ni);
	rc = qkd_ike_dh_new(s->group, &ike->irk.dh);	/* the group both took */
	qkd_wbuf_init(&w);
	qkd_ike_build_chain(&b, &w);
	qkd_ike_offer_ike(ike->t, ike->irk.spi, &offer);
	qkd_ike_add_sa(&b, &offer);
	qkd_ike_add_nonce(&b, ike->irk.ni, sizeof ike->irk.ni);
	if (rc == QKD_OK)
		rc = add_ke(&b, ike->irk.dh);
	if (rc == QKD_OK)
		rc = qkd_ike_build_end(&b);
	if (rc == QKD_OK)
		rc = ike_send_request(ike, s, QKD_IKE_CREATE_CHILD_SA, X_IKE_REKEY, &w, b.first, now);
	qkd_wbuf_cleanup(&w);
	ike->ike_rekey_at = 0;
	if (rc == QKD_OK) {
		ike->irk.active = true;
	} else {
		ike_irekey_clear(ike);
		ike->ike_rekey_at = now + IKE_BACKOFF_MAX_S;
	}
}

/* The new IKE SA from the rekey's values; old keeps its keys until its
 * Delete. */
static struct ike_isa *new_sa(const struct ike_isa *old, bool initiator,
			      const struct qkd_ike_dh *dh, struct qkd_ike_span peer_ke,
			      struct qkd_ike_span ni, struct qkd_ike_span nr, double now)
{
	struct ike_isa *s = ike_isa_new(initiator, now);
	uint8_t gir[QKD_IKE_DH_MAX], seed[QKD_IKE_PRF_LEN];
	size_t n = qkd_ike_dh_len(qkd_ike_dh_group(dh));
	int rc = s == NULL ? QKD_ERR_NOMEM
			   : qkd_ike_dh_shared(dh, peer_ke.p, peer_ke.len, gir, sizeof gir);

	if (rc == QKD_OK)
		rc = qkd_ike_skeyseed_rekey(old->k.sk_d, (struct qkd_ike_span){ gir, n }, ni, nr,
					    seed);
	if (rc == QKD_OK) {
		memcpy(s->ni, ni.p, ni.len);
		s->ni_len = ni.len;
		memcpy(s->nr, nr.p, nr.len);
		s->nr_len = nr.len;
		s->group = qkd_ike_dh_group(dh);
		s->ppk = old->ppk;
		memcpy(s->ppk_id, old->ppk_id, sizeof s->ppk_id);
	}
	qkd_wipe(gir, sizeof gir);
	if (rc != QKD_OK) {
		ike_isa_free(s);
		s = NULL;
	}
	if (s != NULL)
		memcpy(s->k0.sk_d, seed, sizeof seed);	/* SKEYSEED until the SPIs are set */
	qkd_wipe(seed, sizeof seed);
	return s;
}

static int finish_keys(struct qkd_ike *ike, struct ike_isa *s)
{
	uint8_t seed[QKD_IKE_PRF_LEN];
	int rc;

	memcpy(seed, s->k0.sk_d, sizeof seed);
	rc = qkd_ike_sa_keys_derive(seed, (struct qkd_ike_span){ s->ni, s->ni_len },
				    (struct qkd_ike_span){ s->nr, s->nr_len }, s->spi_i, s->spi_r,
				    ike->t->ike.key_bits / 8, &s->k0);
	qkd_wipe(seed, sizeof seed);
	if (rc == QKD_OK) {
		s->k = s->k0;
		s->keys_ok = true;
	}
	return rc;
}

/* The new SA takes over: the old one waits for its Delete. */
static void switch_to(struct qkd_ike *ike, struct ike_isa *old, struct ike_isa *s, double now)
{
	ike_isa_drop(ike, ike->old);
	ike->old = old;
	ike->sa = s;
	s->ph = PH_UP;
	s->up_at = s->last_rx = now;
	ike->st.ike_rekeys++;
	ike->ike_rekey_at = s->initiator && ike->t->ike_rekey_s > 0 ? now + ike->t->ike_rekey_s : 0;
	ike_event(ike, QKD_IKE_EV_IKE_UP, "IKE SA rekeyed");
	ike_log(ike, QKD_LOG_INFO, "IKE SA rekeyed");
}

struct irk_in {
	struct qkd_ike_sa sa;
	struct qkd_ike_ke ke;
	struct qkd_ike_span nonce;
};

static bool irk_read(const struct qkd_ike_msg *m, struct irk_in *r)
{
	const struct qkd_ike_pld *sa = qkd_ike_msg_find(m, QKD_IKE_PT_SA);
	const struct qkd_ike_pld *ke = qkd_ike_msg_find(m, QKD_IKE_PT_KE);
	const struct qkd_ike_pld *no = qkd_ike_msg_find(m, QKD_IKE_PT_NONCE);
	const char *why;

	return sa != NULL && ke != NULL && no != NULL &&
	       qkd_ike_sa_parse(sa, &r->sa, &why) == QKD_OK &&
	       qkd_ike_ke_parse(ke, &r->ke, &why) == QKD_OK &&
	       qkd_ike_nonce_parse(no, &r->nonce, &why) == QKD_OK;
}

static int irk_reply(struct qkd_ike *ike, struct ike_isa *old, uint32_t id,
		     const struct qkd_ike_choice *c, const struct ike_isa *s,
		     const struct qkd_ike_dh *dh)
{
	struct qkd_ike_builder b;
	struct qkd_ike_sa ans;
	struct qkd_wbuf w;
	int rc;

	qkd_wbuf_init(&w);
	qkd_ike_build_chain(&b, &w);
	qkd_ike_answer(c, s->spi_r, 8, &ans);
	qkd_ike_add_sa(&b, &ans);
	qkd_ike_add_nonce(&b, s->nr, s->nr_len);
	rc = add_ke(&b, dh);
	if (rc == QKD_OK)
		rc = qkd_ike_build_end(&b);
	if (rc == QKD_OK)
		rc = ike_send_response(ike, old, QKD_IKE_CREATE_CHILD_SA, id, &w, b.first);
	qkd_wbuf_cleanup(&w);
	return rc;
}

int ike_irekey_request(struct qkd_ike *ike, struct ike_isa *old, uint32_t id,
		       const struct qkd_ike_msg *m, double now)
{
	struct irk_in r;
	struct qkd_ike_choice c;
	struct qkd_ike_dh *dh = NULL;
	struct ike_isa *s = NULL;
	uint8_t nr[IKE_NONCE_LEN];

	if (!irk_read(m, &r) || qkd_ike_select(ike->t, &r.sa, QKD_IKE_PROTO_IKE, true, r.ke.group,
					       &c) != QKD_OK || c.spi_len != 8 ||
	    c.group != r.ke.group || ike->irk.active) {
		ike_respond_notify(ike, old, QKD_IKE_CREATE_CHILD_SA, id,
				   ike->irk.active ? IKE_N_TEMPORARY_FAILURE
						   : QKD_IKE_N_NO_PROPOSAL_CHOSEN, NULL, 0);
		ike_event(ike, QKD_IKE_EV_NO_PROPOSAL, "IKE SA rekey refused");
		return QKD_OK;
	}
	ike_rand(nr, sizeof nr);
	if (qkd_ike_dh_new(c.group, &dh) == QKD_OK)
		s = new_sa(old, false, dh, r.ke.data, r.nonce,
			   (struct qkd_ike_span){ nr, sizeof nr }, now);
	if (s != NULL) {
		memcpy(s->spi_i, c.spi, 8);
		ike_new_spi8(s->spi_r);
	}
	if (s == NULL || finish_keys(ike, s) != QKD_OK || irk_reply(ike, old, id, &c, s, dh) != QKD_OK) {
		ike_isa_free(s);
		ike_respond_notify(ike, old, QKD_IKE_CREATE_CHILD_SA, id,
				   QKD_IKE_N_NO_PROPOSAL_CHOSEN, NULL, 0);
		qkd_ike_dh_free(dh);
		return QKD_OK;
	}
	qkd_ike_dh_free(dh);
	switch_to(ike, old, s, now);
	return QKD_OK;
}

int ike_irekey_response(struct qkd_ike *ike, struct ike_isa *old, const struct qkd_ike_msg *m,
			double now)
{
	struct irk_in r;
	struct qkd_ike_choice c;
	struct ike_isa *s = NULL;
	uint16_t err;

	if (!ike_error_notify(m, &err) && irk_read(m, &r) &&
	    qkd_ike_accept(ike->t, &r.sa, QKD_IKE_PROTO_IKE, true, &c) == QKD_OK &&
	    c.spi_len == 8 && r.ke.group == qkd_ike_dh_group(ike->irk.dh))
		s = new_sa(old, true, ike->irk.dh, r.ke.data,
			   (struct qkd_ike_span){ ike->irk.ni, IKE_NONCE_LEN }, r.nonce, now);
	if (s != NULL) {
		memcpy(s->spi_i, ike->irk.spi, 8);
		memcpy(s->spi_r, c.spi, 8);
	}
	ike_irekey_clear(ike);
	if (s == NULL || finish_keys(ike, s) != QKD_OK) {
		ike_isa_free(s);
		ike_event(ike, QKD_IKE_EV_NO_PROPOSAL, "IKE SA rekey refused by the peer");
		ike->ike_rekey_at = now + IKE_BACKOFF_MAX_S;
		return QKD_OK;
	}
	switch_to(ike, old, s, now);
	ike_info_send_delete_old(ike, old, now);
	return QKD_OK;
}
