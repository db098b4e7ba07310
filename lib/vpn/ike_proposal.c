/* ike_proposal.c - the SA payloads of the gateway's one suite, built from
 * a tunnel's policy, and the selection of the peer's (qkd/ike_proposal.h;
 * RFC 7296 sections 2.7, 3.3.2 to 3.3.6). Every transform type in a
 * proposal is a set of alternatives; a proposal fits when each type we
 * need has an alternative our policy allows and no type is present that
 * we cannot do. The state machine (ike_sa*.c) uses it in IKE_SA_INIT,
 * IKE_AUTH and CREATE_CHILD_SA. */
#include "qkd/ike_proposal.h"

#include <string.h>

#include "qkd/error.h"

size_t qkd_ike_tunnel_groups(const struct qkd_vpn_tunnel *t, uint16_t out[2])
{
	size_t n = 0;
	unsigned first = t->first_dh != 0 ? t->first_dh : QKD_VPN_DH_X25519;
	unsigned order[2] = { first, first == QKD_VPN_DH_X25519 ? QKD_VPN_DH_MODP2048
								 : QKD_VPN_DH_X25519 };

	for (size_t i = 0; i < 2; i++) {
		if ((t->dh & order[i]) == 0)
			continue;
		out[n++] = order[i] == QKD_VPN_DH_X25519 ? QKD_IKE_GROUP_X25519
							 : QKD_IKE_GROUP_MODP2048;
	}
	return n;
}

static void add_t(struct qkd_ike_proposal *p, uint8_t type, uint16_t id, uint16_t bits)
{
	if (p->nt < QKD_IKE_MAX_TRANSFORMS)
		p->t[p->nt++] = (struct qkd_ike_transform){ .type = type, .id = id, .key_bits = bits };
}

static void add_groups(const struct qkd_vpn_tunnel *t, struct qkd_ike_proposal *p)
{
	uint16_t g[2];
	size_t n = qkd_ike_tunnel_groups(t, g);

	for (size_t i = 0; i < n; i++)
		add_t(p, QKD_IKE_TT_KE, g[i], 0);
}

void qkd_ike_offer_ike(const struct qkd_vpn_tunnel *t, const uint8_t *spi, struct qkd_ike_sa *out)
{
	struct qkd_ike_proposal *p = &out->p[0];

	memset(out, 0, sizeof *out);
	out->np = 1;
	p->num = 1;
	p->protocol = QKD_IKE_PROTO_IKE;
	if (spi != NULL) {
		p->spi_len = 8;
		memcpy(p->spi, spi, 8);
	}
	add_t(p, QKD_IKE_TT_ENCR, QKD_IKE_ENCR_AES_GCM_16, (uint16_t)t->ike.key_bits);
	add_t(p, QKD_IKE_TT_PRF, QKD_IKE_PRF_HMAC_SHA2_256, 0);
	add_groups(t, p);
}

void qkd_ike_offer_esp(const struct qkd_vpn_tunnel *t, uint32_t spi, bool with_dh,
		       struct qkd_ike_sa *out)
{
	struct qkd_ike_proposal *p = &out->p[0];

	memset(out, 0, sizeof *out);
	out->np = 1;
	p->num = 1;
	p->protocol = QKD_IKE_PROTO_ESP;
	p->spi_len = 4;
	p->spi[0] = (uint8_t)(spi >> 24);
	p->spi[1] = (uint8_t)(spi >> 16);
	p->spi[2] = (uint8_t)(spi >> 8);
	p->spi[3] = (uint8_t)spi;
	add_t(p, QKD_IKE_TT_ENCR, QKD_IKE_ENCR_AES_GCM_16, (uint16_t)t->esp.key_bits);
	if (with_dh)
		add_groups(t, p);
	add_t(p, QKD_IKE_TT_ESN, 0, 0);
}

static bool group_allowed(const struct qkd_vpn_tunnel *t, uint16_t g)
{
	return (g == QKD_IKE_GROUP_X25519 && (t->dh & QKD_VPN_DH_X25519)) ||
	       (g == QKD_IKE_GROUP_MODP2048 && (t->dh & QKD_VPN_DH_MODP2048));
}

static bool has_t(const struct qkd_ike_proposal *p, uint8_t type, uint16_t id, uint16_t bits)
{
	for (size_t i = 0; i < p->nt; i++)
		if (p->t[i].type == type && p->t[i].id == id && p->t[i].key_bits == bits)
			return true;
	return false;
}

static bool has_type(const struct qkd_ike_proposal *p, uint8_t type)
{
	for (size_t i = 0; i < p->nt; i++)
		if (p->t[i].type == type)
			return true;
	return false;
}

/* The group: the KE's when offered and allowed, else our first that the
 * peer offered; 0 when none fits. */
static uint16_t pick_group(const struct qkd_vpn_tunnel *t, const struct qkd_ike_proposal *p,
			   uint16_t ke_group)
{
	uint16_t g[2];
	size_t n = qkd_ike_tunnel_groups(t, g);

	if (ke_group != 0 && group_allowed(t, ke_group) && has_t(p, QKD_IKE_TT_KE, ke_group, 0))
		return ke_group;
	for (size_t i = 0; i < n; i++)
		if (has_t(p, QKD_IKE_TT_KE, g[i], 0))
			return g[i];
	return 0;
}

/* An AEAD proposal may carry INTEG only as NONE (RFC 5282 section 8);
 * ESN must offer "none": the data plane does 32-bit sequence numbers
 * on the wire (it can keep ESN, but we negotiate none, as strongSwan's
 * default). Unknown attributes disqualify the proposal (section 3.3.6). */
static bool fits(const struct qkd_vpn_tunnel *t, const struct qkd_ike_proposal *p,
		 uint8_t protocol, bool need_dh, uint16_t ke_group, struct qkd_ike_choice *c)
{
	unsigned bits = protocol == QKD_IKE_PROTO_IKE ? t->ike.key_bits : t->esp.key_bits;

	for (size_t i = 0; i < p->nt; i++)
		if (p->t[i].unknown_attr || p->t[i].type > QKD_IKE_TT_ESN ||
		    (p->t[i].type == QKD_IKE_TT_INTEG && p->t[i].id != 0))
			return false;
	if (p->protocol != protocol || !has_t(p, QKD_IKE_TT_ENCR, QKD_IKE_ENCR_AES_GCM_16,
					      (uint16_t)bits))
		return false;
	if (protocol == QKD_IKE_PROTO_IKE &&
	    ((p->spi_len != 0 && p->spi_len != 8) ||
	     !has_t(p, QKD_IKE_TT_PRF, QKD_IKE_PRF_HMAC_SHA2_256, 0) || has_type(p, QKD_IKE_TT_ESN)))
		return false;
	if (protocol == QKD_IKE_PROTO_ESP &&
	    (p->spi_len != 4 || !has_t(p, QKD_IKE_TT_ESN, 0, 0) || has_type(p, QKD_IKE_TT_PRF)))
		return false;
	memset(c, 0, sizeof *c);
	c->group = need_dh ? pick_group(t, p, ke_group) : 0;
	if (need_dh && c->group == 0)
		return false;
	if (!need_dh && has_type(p, QKD_IKE_TT_KE) && !has_t(p, QKD_IKE_TT_KE, 0, 0))
		return false;
	c->protocol = protocol;
	c->num = p->num;
	c->key_bits = (uint16_t)bits;
	c->spi_len = p->spi_len;
	memcpy(c->spi, p->spi, p->spi_len);
	return true;
}

int qkd_ike_select(const struct qkd_vpn_tunnel *t, const struct qkd_ike_sa *offer,
		   uint8_t protocol, bool need_dh, uint16_t ke_group, struct qkd_ike_choice *out)
{
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < offer->np; i++)
		if (fits(t, &offer->p[i], protocol, need_dh, ke_group, out))
			return QKD_OK;
	memset(out, 0, sizeof *out);
	return QKD_ERR_PROTO;
}

void qkd_ike_answer(const struct qkd_ike_choice *c, const uint8_t *spi, uint8_t spi_len,
		    struct qkd_ike_sa *out)
{
	struct qkd_ike_proposal *p = &out->p[0];

	memset(out, 0, sizeof *out);
	out->np = 1;
	p->num = c->num;
	p->protocol = c->protocol;
	p->spi_len = spi_len <= QKD_IKE_SPI_MAX ? spi_len : 0;
	if (p->spi_len > 0)
		memcpy(p->spi, spi, p->spi_len);
	add_t(p, QKD_IKE_TT_ENCR, QKD_IKE_ENCR_AES_GCM_16, c->key_bits);
	if (c->protocol == QKD_IKE_PROTO_IKE)
		add_t(p, QKD_IKE_TT_PRF, QKD_IKE_PRF_HMAC_SHA2_256, 0);
	if (c->group != 0)
		add_t(p, QKD_IKE_TT_KE, c->group, 0);
	if (c->protocol == QKD_IKE_PROTO_ESP)
		add_t(p, QKD_IKE_TT_ESN, 0, 0);
}

/* The answer must be exactly one transform of each type (section 3.3.6),
 * each one we offered. */
static bool one_each(const struct qkd_ike_proposal *p)
{
	unsigned seen = 0;

	for (size_t i = 0; i < p->nt; i++) {
		unsigned bit = 1u << (p->t[i].type & 7u);

		if ((seen & bit) != 0)
			return false;
		seen |= bit;
	}
	return true;
}

int qkd_ike_accept(const struct qkd_vpn_tunnel *t, const struct qkd_ike_sa *answer,
		   uint8_t protocol, bool need_dh, struct qkd_ike_choice *out)
{
	int rc = QKD_ERR_PROTO;

	memset(out, 0, sizeof *out);
	if (answer->np != 1 || !one_each(&answer->p[0]) ||
	    !fits(t, &answer->p[0], protocol, need_dh, 0, out))
		goto out;
	if (protocol == QKD_IKE_PROTO_IKE && answer->p[0].spi_len != 0 &&
	    answer->p[0].spi_len != 8)
		goto out;
	rc = QKD_OK;
out:
	if (rc != QKD_OK)
		memset(out, 0, sizeof *out);
	return rc;
}
