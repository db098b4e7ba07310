/* ike_sa_init.c - the IKE_SA_INIT exchange (RFC 7296 sections 1.2, 2.6,
 * 2.7, 3.4) for both roles: SA, KE, nonces, NAT_DETECTION notifies that
 * never match (the gateway always encapsulates ESP in UDP, RFC 3948, so a
 * strongSwan peer is told a NAT is in the way and does the same), USE_PPK
 * (RFC 8784 section 3) when the tunnel's qkd policy is not off, COOKIE
 * demands and their answers, INVALID_KE_PAYLOAD, the rate limit on new
 * requests, and the tie-break when both gateways initiate at once. Next:
 * ike_sa_auth.c. */
#include <string.h>

#include "ike_sa_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

#define NAT_HASH_LEN 20u	/* SHA-1 length of a real NAT_DETECTION hash */
#define INIT_TRIES_MAX 4u

void ike_cookie_rotate(struct qkd_ike *ike, double now)
{
	if (now - ike->secret_at < IKE_COOKIE_ROTATE_S)
		return;
	if (ike->secret_at < -1e299)
		ike_rand(ike->secret, sizeof ike->secret);	/* both: no known old secret */
	ike->secret_ver++;
	ike_rand(ike->secret[ike->secret_ver & 1], sizeof ike->secret[0]);
	ike->secret_at = now;
}

/* Cookie = version | first 16 octets of prf(secret_version, Ni | SPIi)
 * (section 2.6; the peer's address is implicit: one object per peer). */
static int make_cookie(const struct qkd_ike *ike, uint8_t ver, struct qkd_ike_span ni,
		       const uint8_t spi_i[8], uint8_t out[IKE_COOKIE_LEN])
{
	struct qkd_ike_span s[2] = { ni, { spi_i, 8 } };
	uint8_t full[QKD_IKE_PRF_LEN];
	int rc = qkd_ike_prf(ike->secret[ver & 1], sizeof ike->secret[0], s, 2, full);

	out[0] = ver;
	memcpy(out + 1, full, IKE_COOKIE_LEN - 1);
	qkd_wipe(full, sizeof full);
	return rc;
}

static bool cookie_valid(const struct qkd_ike *ike, const struct qkd_ike_notify *n,
			 struct qkd_ike_span ni, const uint8_t spi_i[8])
{
	uint8_t want[IKE_COOKIE_LEN];
	uint8_t ver;

	if (n->data.len != IKE_COOKIE_LEN)
		return false;
	ver = n->data.p[0];
	if (ver != ike->secret_ver && ver != (uint8_t)(ike->secret_ver - 1))
		return false;
	if (make_cookie(ike, ver, ni, spi_i, want) != QKD_OK)
		return false;
	return qkd_ct_equal(want, n->data.p, IKE_COOKIE_LEN);
}

static void add_nat(struct qkd_ike_builder *b)
{
	uint8_t h[NAT_HASH_LEN];

	ike_rand(h, sizeof h);	/* random: never matches, so UDP encapsulation */
	ike_add_notify(b, 0, NULL, 0, IKE_N_NAT_SRC, h, sizeof h);
	ike_rand(h, sizeof h);
	ike_add_notify(b, 0, NULL, 0, IKE_N_NAT_DST, h, sizeof h);
}

static int add_ke(struct qkd_ike_builder *b, const struct ike_isa *s)
{
	uint8_t pub[QKD_IKE_DH_MAX];
	size_t n = qkd_ike_dh_len(s->group);
	struct qkd_ike_ke ke = { s->group, { pub, n } };
	int rc = qkd_ike_dh_public(s->dh, pub, sizeof pub);

	if (rc == QKD_OK)
		qkd_ike_add_ke(b, &ke);
	return rc;
}

static int send_init_request(struct qkd_ike *ike, struct ike_isa *s, double now)
{
	struct qkd_ike_hdr h = { .exchange = QKD_IKE_SA_INIT, .flags = QKD_IKE_FLAG_I };
	struct qkd_ike_builder b;
	struct qkd_ike_sa offer;
	int rc;

	memcpy(h.spi_i, s->spi_i, 8);
	qkd_wbuf_reset(&s->init_i);
	qkd_ike_build_msg(&b, &s->init_i, &h);
	if (s->cookie_len > 0)	/* first, as section 2.6 asks */
		ike_add_notify(&b, 0, NULL, 0, QKD_IKE_N_COOKIE, s->cookie, s->cookie_len);
	qkd_ike_offer_ike(ike->t, NULL, &offer);
	qkd_ike_add_sa(&b, &offer);
	rc = add_ke(&b, s);
	if (rc != QKD_OK)
		return rc;
	qkd_ike_add_nonce(&b, s->ni, s->ni_len);
	add_nat(&b);
	if (ike->t->qkd != QKD_VPN_QKD_OFF)
		ike_add_notify(&b, 0, NULL, 0, QKD_IKE_N_USE_PPK, NULL, 0);
	rc = qkd_ike_build_end(&b);
	if (rc == QKD_OK)
		rc = ike_send_init(ike, s, &s->init_i, now);
	return rc;
}

void ike_new_spi8(uint8_t spi[8])
{
	static const uint8_t zero[8];

	do
		ike_rand(spi, 8);
	while (memcmp(spi, zero, 8) == 0);
}

int ike_init_start(struct qkd_ike *ike, uint16_t group, double now)
{
	struct ike_isa *s = ike_isa_new(true, now);
	int rc = QKD_ERR_NOMEM;

	if (s == NULL)
		goto out;
	ike_new_spi8(s->spi_i);
	s->ni_len = IKE_NONCE_LEN;
	ike_rand(s->ni, s->ni_len);
	s->group = group;
	rc = qkd_ike_dh_new(group, &s->dh);
	if (rc != QKD_OK)
		goto out;
	s->ph = PH_INIT_SENT;
	ike_ppk_clear(&ike->ppk_i);
	ike_isa_free(ike->sa);
	ike->sa = s;
	s = NULL;
	rc = send_init_request(ike, ike->sa, now);
	ike_log(ike, QKD_LOG_INFO, "IKE_SA_INIT sent (group %u)", group);
out:
	ike_isa_free(s);
	return rc;
}

/* For Wireshark (--keylog): SK_e* are the same with or without a PPK
 * (RFC 8784 mixes only SK_d and SK_p*), so they are final here. */
static void keylog(struct qkd_ike *ike, const struct ike_isa *s)
{
	struct qkd_ike_keylog kl = { .sk_ei = s->k.sk_ei, .sk_er = s->k.sk_er,
				     .enc_len = s->k.enc_len };

	if (ike->ops->keylog == NULL)
		return;
	memcpy(kl.spi_i, s->spi_i, 8);
	memcpy(kl.spi_r, s->spi_r, 8);
	ike->ops->keylog(ike->arg, &kl);
}

/* The keys of a new IKE SA from the exchange's values (section 2.14). */
static int derive(struct qkd_ike *ike, struct ike_isa *s, struct qkd_ike_span peer_ke)
{
	uint8_t gir[QKD_IKE_DH_MAX], seed[QKD_IKE_PRF_LEN];
	size_t n = qkd_ike_dh_len(s->group);
	struct qkd_ike_span ni = { s->ni, s->ni_len }, nr = { s->nr, s->nr_len };
	int rc = qkd_ike_dh_shared(s->dh, peer_ke.p, peer_ke.len, gir, sizeof gir);

	if (rc == QKD_OK)
		rc = qkd_ike_skeyseed(ni, nr, (struct qkd_ike_span){ gir, n }, seed);
	if (rc == QKD_OK)
		rc = qkd_ike_sa_keys_derive(seed, ni, nr, s->spi_i, s->spi_r,
					    ike->t->ike.key_bits / 8, &s->k0);
	if (rc == QKD_OK) {
		s->k = s->k0;
		s->keys_ok = true;
		keylog(ike, s);
	}
	qkd_wipe(gir, sizeof gir);
	qkd_wipe(seed, sizeof seed);
	qkd_ike_dh_free(s->dh);
	s->dh = NULL;
	return rc;
}

/* The initiator's answer to a COOKIE or INVALID_KE_PAYLOAD: 1 when it
 * sent IKE_SA_INIT again, 0 when the message asks for neither. */
static int init_retry(struct qkd_ike *ike, struct ike_isa *s, const struct qkd_ike_msg *m,
		      double now)
{
	struct qkd_ike_notify n;
	uint16_t g;

	if (ike_find_notify(m, QKD_IKE_N_COOKIE, &n) != NULL && n.data.len > 0 &&
	    n.data.len <= sizeof s->cookie && s->init_tries < INIT_TRIES_MAX) {
		s->init_tries++;
		memcpy(s->cookie, n.data.p, n.data.len);
		s->cookie_len = n.data.len;
		ike->st.cookies++;
		ike_event(ike, QKD_IKE_EV_COOKIE, "responder demands a cookie");
		return send_init_request(ike, s, now) == QKD_OK ? 1 : -1;
	}
	if (ike_find_notify(m, QKD_IKE_N_INVALID_KE_PAYLOAD, &n) == NULL || n.data.len != 2)
		return 0;
	g = (uint16_t)(n.data.p[0] << 8 | n.data.p[1]);
	if (g == s->group || qkd_ike_dh_len(g) == 0 || s->init_tries >= INIT_TRIES_MAX ||
	    ((g == QKD_IKE_GROUP_X25519 ? QKD_VPN_DH_X25519 : QKD_VPN_DH_MODP2048) & ike->t->dh) == 0)
		return -1;
	s->init_tries++;
	qkd_ike_dh_free(s->dh);
	s->dh = NULL;
	s->group = g;
	if (qkd_ike_dh_new(g, &s->dh) != QKD_OK)
		return -1;
	ike_event(ike, QKD_IKE_EV_NO_PROPOSAL, "INVALID_KE_PAYLOAD: trying the group asked for");
	return send_init_request(ike, s, now) == QKD_OK ? 1 : -1;
}

struct init_plds {
	struct qkd_ike_sa sa;
	struct qkd_ike_ke ke;
	struct qkd_ike_span nonce;
};

static int read_init(const struct qkd_ike_msg *m, struct init_plds *p, const char **why)
{
	const struct qkd_ike_pld *sa = qkd_ike_msg_find(m, QKD_IKE_PT_SA);
	const struct qkd_ike_pld *ke = qkd_ike_msg_find(m, QKD_IKE_PT_KE);
	const struct qkd_ike_pld *no = qkd_ike_msg_find(m, QKD_IKE_PT_NONCE);
	int rc = QKD_ERR_PROTO;

	*why = "IKE_SA_INIT without SA, KE or Nonce";
	if (sa == NULL || ke == NULL || no == NULL)
		return rc;
	rc = qkd_ike_sa_parse(sa, &p->sa, why);
	if (rc == QKD_OK)
		rc = qkd_ike_ke_parse(ke, &p->ke, why);
	if (rc == QKD_OK)
		rc = qkd_ike_nonce_parse(no, &p->nonce, why);
	return rc;
}

static int init_fail(struct qkd_ike *ike, double now, const char *why)
{
	ike_event(ike, QKD_IKE_EV_NO_PROPOSAL, why);
	ike_log(ike, QKD_LOG_WARN, "IKE_SA_INIT refused by the peer: %s", why);
	ike_teardown(ike, now, why, true);
	return QKD_OK;
}

int ike_init_response(struct qkd_ike *ike, struct ike_isa *s, const uint8_t *msg, size_t len,
		      const struct qkd_ike_msg *m, double now)
{
	static const uint8_t zero[8];
	struct init_plds p;
	struct qkd_ike_choice c;
	const char *why = "IKE_SA_INIT response";
	uint16_t err;
	int r = init_retry(ike, s, m, now);

	if (r != 0)
		return r > 0 ? QKD_OK : init_fail(ike, now, "IKE_SA_INIT retry refused");
	if (ike_error_notify(m, &err))
		return init_fail(ike, now, err == QKD_IKE_N_NO_PROPOSAL_CHOSEN
						   ? "NO_PROPOSAL_CHOSEN" : "error notify");
	if (read_init(m, &p, &why) != QKD_OK || memcmp(m->hdr.spi_r, zero, 8) == 0 ||
	    qkd_ike_accept(ike->t, &p.sa, QKD_IKE_PROTO_IKE, true, &c) != QKD_OK ||
	    c.group != s->group || p.ke.group != s->group) {
		ike_bad(ike, now, why);
		return QKD_ERR_PROTO;
	}
	memcpy(s->spi_r, m->hdr.spi_r, 8);
	memcpy(s->nr, p.nonce.p, p.nonce.len);
	s->nr_len = p.nonce.len;
	s->peer_ppk = ike_find_notify(m, QKD_IKE_N_USE_PPK, NULL) != NULL;
	if (derive(ike, s, p.ke.data) != QKD_OK) {
		ike_bad(ike, now, "IKE_SA_INIT response: key exchange value refused");
		memset(s->spi_r, 0, 8);
		return QKD_ERR_PROTO;
	}
	qkd_wbuf_reset(&s->init_r);
	qkd_put_bytes(&s->init_r, msg, len);
	ike_req_clear(&s->out);
	s->req_id = 1;
	s->peer_id = 0;
	ike_auth_go(ike, s, now);
	return QKD_OK;
}

/* An unencrypted answer to an IKE_SA_INIT request, keeping no state. */
static void init_notify(struct qkd_ike *ike, const struct qkd_ike_msg *req, uint16_t type,
			const void *data, size_t len)
{
	struct qkd_ike_hdr h = { .exchange = QKD_IKE_SA_INIT, .flags = QKD_IKE_FLAG_R };
	struct qkd_ike_builder b;
	struct qkd_wbuf w;

	memcpy(h.spi_i, req->hdr.spi_i, 8);
	qkd_wbuf_init(&w);
	qkd_ike_build_msg(&b, &w, &h);
	ike_add_notify(&b, 0, NULL, 0, type, data, len);
	if (qkd_ike_build_end(&b) == QKD_OK)
		(void)ike->ops->send(ike->arg, w.p, w.len);
	qkd_wbuf_cleanup(&w);
}

static bool rate_limited(struct qkd_ike *ike, double now)
{
	if (now - ike->rl_at >= 1.0 || now < ike->rl_at) {
		ike->rl_at = now;
		ike->rl_n = 0;
	}
	if (++ike->rl_n <= IKE_INIT_RATE)
		return false;
	ike->st.init_dropped++;
	return true;
}

static unsigned half_open(const struct qkd_ike *ike)
{
	return (ike->sa != NULL && ike->sa->ph == PH_HALF_OPEN) +
	       (ike->half != NULL && ike->half->ph == PH_HALF_OPEN);
}

/* Section 2.6: with `cookie_threshold` half-open SAs (0: always), a
 * request must carry the cookie we would compute for it; otherwise we
 * answer with one and forget the request. 1: answered with a cookie. */
static int cookie_gate(struct qkd_ike *ike, const struct qkd_ike_msg *m, struct qkd_ike_span ni)
{
	struct qkd_ike_notify n;
	uint8_t ck[IKE_COOKIE_LEN];

	if (half_open(ike) < ike->cookie_threshold)
		return 0;
	if (ike_find_notify(m, QKD_IKE_N_COOKIE, &n) != NULL && cookie_valid(ike, &n, ni,
									      m->hdr.spi_i))
		return 0;
	if (make_cookie(ike, ike->secret_ver, ni, m->hdr.spi_i, ck) != QKD_OK)
		return 1;
	init_notify(ike, m, QKD_IKE_N_COOKIE, ck, sizeof ck);
	ike->st.cookies++;
	ike_event(ike, QKD_IKE_EV_COOKIE, "cookie demanded");
	return 1;
}

/* Both ends initiating at once: the IKE SA with the lower SPIi goes on
 * (both ends see both SPIs, so they agree); false: ignore this request. */
static bool collision_ok(struct qkd_ike *ike, const struct qkd_ike_msg *m)
{
	struct ike_isa *s = ike->sa;

	if (s == NULL || !s->initiator || s->ph == PH_UP)
		return true;
	if (memcmp(m->hdr.spi_i, s->spi_i, 8) > 0)
		return false;
	ike_isa_drop(ike, s);
	ike_ppk_clear(&ike->ppk_i);
	ike->restart_at = 0;
	return true;
}

static int build_init_response(struct qkd_ike *ike, struct ike_isa *s,
			       const struct qkd_ike_choice *c)
{
	struct qkd_ike_hdr h = { .exchange = QKD_IKE_SA_INIT, .flags = QKD_IKE_FLAG_R };
	struct qkd_ike_builder b;
	struct qkd_ike_sa ans;
	int rc;

	memcpy(h.spi_i, s->spi_i, 8);
	memcpy(h.spi_r, s->spi_r, 8);
	qkd_ike_build_msg(&b, &s->init_r, &h);
	qkd_ike_answer(c, NULL, 0, &ans);
	qkd_ike_add_sa(&b, &ans);
	rc = add_ke(&b, s);
	if (rc != QKD_OK)
		return rc;
	qkd_ike_add_nonce(&b, s->nr, s->nr_len);
	add_nat(&b);
	if (ike->t->qkd != QKD_VPN_QKD_OFF && s->peer_ppk)
		ike_add_notify(&b, 0, NULL, 0, QKD_IKE_N_USE_PPK, NULL, 0);
	return qkd_ike_build_end(&b);
}

static void place_half_open(struct qkd_ike *ike, struct ike_isa *s)
{
	if (ike->sa == NULL || ike->sa->ph == PH_HALF_OPEN) {
		ike_isa_drop(ike, ike->sa);
		ike->sa = s;
		return;
	}
	ike_isa_drop(ike, ike->half);	/* the established SA stays until this one is up */
	ike->half = s;
}

static struct ike_isa *responder_sa(struct qkd_ike *ike, const struct qkd_ike_msg *m,
				    const struct init_plds *p, const struct qkd_ike_choice *c,
				    double now)
{
	struct ike_isa *s = ike_isa_new(false, now);

	if (s == NULL)
		return NULL;
	memcpy(s->spi_i, m->hdr.spi_i, 8);
	ike_new_spi8(s->spi_r);
	memcpy(s->ni, p->nonce.p, p->nonce.len);
	s->ni_len = p->nonce.len;
	s->nr_len = IKE_NONCE_LEN;
	ike_rand(s->nr, s->nr_len);
	s->group = c->group;
	s->peer_ppk = ike_find_notify(m, QKD_IKE_N_USE_PPK, NULL) != NULL;
	if (qkd_ike_dh_new(c->group, &s->dh) != QKD_OK || build_init_response(ike, s, c) != QKD_OK ||
	    derive(ike, s, p->ke.data) != QKD_OK) {
		ike_isa_free(s);
		return NULL;
	}
	s->ph = PH_HALF_OPEN;
	s->peer_id = 1;
	s->req_id = 0;
	return s;
}

/* An INVALID_KE_PAYLOAD answer names the group we want (section 1.2). */
static void invalid_ke(struct qkd_ike *ike, const struct qkd_ike_msg *m, uint16_t group)
{
	uint8_t g[2] = { (uint8_t)(group >> 8), (uint8_t)group };

	init_notify(ike, m, QKD_IKE_N_INVALID_KE_PAYLOAD, g, 2);
	ike_event(ike, QKD_IKE_EV_NO_PROPOSAL, "INVALID_KE_PAYLOAD sent");
}

int ike_init_request(struct qkd_ike *ike, const uint8_t *msg, size_t len,
		     const struct qkd_ike_msg *m, double now)
{
	struct init_plds p;
	struct qkd_ike_choice c;
	struct ike_isa *s;
	const char *why = "IKE_SA_INIT request";
	int rc = QKD_OK;

	if (ike->closing || rate_limited(ike, now))
		goto out;
	rc = read_init(m, &p, &why);
	if (rc != QKD_OK) {
		ike_bad(ike, now, why);
		rc = QKD_ERR_PROTO;
		goto out;
	}
	ike_cookie_rotate(ike, now);
	if (cookie_gate(ike, m, p.nonce) != 0 || !collision_ok(ike, m))
		goto out;
	if (qkd_ike_select(ike->t, &p.sa, QKD_IKE_PROTO_IKE, true, p.ke.group, &c) != QKD_OK) {
		init_notify(ike, m, QKD_IKE_N_NO_PROPOSAL_CHOSEN, NULL, 0);
		ike_event(ike, QKD_IKE_EV_NO_PROPOSAL, "IKE_SA_INIT: no acceptable proposal");
		goto out;
	}
	if (c.group != p.ke.group) {
		invalid_ke(ike, m, c.group);
		goto out;
	}
	s = responder_sa(ike, m, &p, &c, now);
	if (s == NULL) {
		ike_bad(ike, now, "IKE_SA_INIT: key exchange value refused");
		rc = QKD_ERR_PROTO;
		goto out;
	}
	qkd_put_bytes(&s->init_i, msg, len);
	place_half_open(ike, s);
	(void)ike->ops->send(ike->arg, s->init_r.p, s->init_r.len);
out:
	return rc;
}
