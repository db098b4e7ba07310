/* test_ike_dh.c - the key exchanges (lib/vpn/ike_dh.c, qkd/ike_dh.h) and
 * the SA payload policy (lib/vpn/ike_proposal.c, qkd/ike_proposal.h).
 *
 * X25519: the RFC 7748 section 6.1 vector (both public keys and the
 * shared secret from both sides), a fresh pair agreeing, the all-zero
 * (small-order) point refused. MODP-2048: fresh pairs agree on 256
 * octets, and the public values 0, 1 and p-1 and a wrong length are
 * refused. Proposals: offer -> select -> answer -> accept for IKE and ESP
 * (with and without PFS), the KE group preferred, key length and groups
 * outside the policy refused, INTEG and unknown attributes refused, and
 * an answer the initiator did not offer refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/ike_dh.h"
#include "qkd/ike_proposal.h"
#include "qkd/testing.h"

static void unhex(const char *h, uint8_t *out)
{
	for (size_t i = 0; i < strlen(h) / 2; i++) {
		unsigned v;

		assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void test_x25519_rfc7748(void **state)
{
	uint8_t a_priv[32], b_priv[32], a_pub[32], b_pub[32], k[32], got[32], s1[32], s2[32];
	struct qkd_ike_dh *a, *b;

	(void)state;
	unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a_priv);
	unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", a_pub);
	unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b_priv);
	unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", b_pub);
	unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", k);
	assert_int_equal(qkd_ike_dh_testing_x25519(a_priv, &a), QKD_OK);
	assert_int_equal(qkd_ike_dh_testing_x25519(b_priv, &b), QKD_OK);
	assert_int_equal(qkd_ike_dh_public(a, got, sizeof got), QKD_OK);
	assert_memory_equal(got, a_pub, 32);
	assert_int_equal(qkd_ike_dh_public(b, got, sizeof got), QKD_OK);
	assert_memory_equal(got, b_pub, 32);
	assert_int_equal(qkd_ike_dh_shared(a, b_pub, 32, s1, sizeof s1), QKD_OK);
	assert_int_equal(qkd_ike_dh_shared(b, a_pub, 32, s2, sizeof s2), QKD_OK);
	assert_memory_equal(s1, k, 32);
	assert_memory_equal(s2, k, 32);
	memset(got, 0, sizeof got);
	assert_int_equal(qkd_ike_dh_shared(a, got, 32, s1, sizeof s1), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_dh_shared(a, b_pub, 31, s1, sizeof s1), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_dh_shared(a, b_pub, 32, s1, 31), QKD_ERR_INVAL);
	qkd_ike_dh_free(a);
	qkd_ike_dh_free(b);
}

static void agree(uint16_t group)
{
	size_t n = qkd_ike_dh_len(group);
	uint8_t pa[256], pb[256], s1[256], s2[256];
	struct qkd_ike_dh *a, *b;

	assert_int_equal(qkd_ike_dh_new(group, &a), QKD_OK);
	assert_int_equal(qkd_ike_dh_new(group, &b), QKD_OK);
	assert_int_equal(qkd_ike_dh_group(a), group);
	assert_int_equal(qkd_ike_dh_public(a, pa, n), QKD_OK);
	assert_int_equal(qkd_ike_dh_public(b, pb, n), QKD_OK);
	assert_memory_not_equal(pa, pb, n);
	assert_int_equal(qkd_ike_dh_shared(a, pb, n, s1, n), QKD_OK);
	assert_int_equal(qkd_ike_dh_shared(b, pa, n, s2, n), QKD_OK);
	assert_memory_equal(s1, s2, n);
	if (group == QKD_IKE_GROUP_MODP2048) {
		/* p - 1 (RFC 3526 section 3's prime ends ...FFFFFFFF) */
		memset(pb, 0, n);
		assert_int_equal(qkd_ike_dh_shared(a, pb, n, s1, n), QKD_ERR_PROTO);
		pb[n - 1] = 1;
		assert_int_equal(qkd_ike_dh_shared(a, pb, n, s1, n), QKD_ERR_PROTO);
		memset(pb, 0xff, n);
		pb[n - 1] = 0xfe;
		assert_int_equal(qkd_ike_dh_shared(a, pb, n, s1, n), QKD_ERR_PROTO);
	}
	assert_int_equal(qkd_ike_dh_shared(a, pb, n - 1, s1, n), QKD_ERR_PROTO);
	qkd_ike_dh_free(a);
	qkd_ike_dh_free(b);
}

static void test_dh_agree(void **state)
{
	struct qkd_ike_dh *x = (struct qkd_ike_dh *)1;

	(void)state;
	agree(QKD_IKE_GROUP_X25519);
	agree(QKD_IKE_GROUP_MODP2048);
	assert_int_equal(qkd_ike_dh_len(19), 0);
	assert_int_equal(qkd_ike_dh_new(19, &x), QKD_ERR_INVAL);
	assert_null(x);
	qkd_ike_dh_free(NULL);
}

static void tunnel(struct qkd_vpn_tunnel *t, unsigned ike_bits, unsigned esp_bits, unsigned dh,
		   unsigned first)
{
	memset(t, 0, sizeof *t);
	t->ike.key_bits = ike_bits;
	t->esp.key_bits = esp_bits;
	t->dh = dh;
	t->first_dh = first;
}

static void test_proposal_ike(void **state)
{
	struct qkd_vpn_tunnel a, b;
	struct qkd_ike_sa offer, ans;
	struct qkd_ike_choice c, ci;
	uint16_t g[2];
	static const uint8_t spi[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	(void)state;
	tunnel(&a, 256, 256, QKD_VPN_DH_X25519 | QKD_VPN_DH_MODP2048, QKD_VPN_DH_MODP2048);
	tunnel(&b, 256, 256, QKD_VPN_DH_X25519 | QKD_VPN_DH_MODP2048, QKD_VPN_DH_X25519);
	assert_int_equal(qkd_ike_tunnel_groups(&a, g), 2);
	assert_int_equal(g[0], 14);
	assert_int_equal(g[1], 31);
	qkd_ike_offer_ike(&a, NULL, &offer);
	assert_int_equal(offer.p[0].spi_len, 0);
	/* the KE's group wins when both allow it; else the responder's first */
	assert_int_equal(qkd_ike_select(&b, &offer, QKD_IKE_PROTO_IKE, true, 14, &c), QKD_OK);
	assert_int_equal(c.group, 14);
	assert_int_equal(qkd_ike_select(&b, &offer, QKD_IKE_PROTO_IKE, true, 0, &c), QKD_OK);
	assert_int_equal(c.group, 31);
	assert_int_equal(c.key_bits, 256);
	qkd_ike_answer(&c, NULL, 0, &ans);
	assert_int_equal(qkd_ike_accept(&a, &ans, QKD_IKE_PROTO_IKE, true, &ci), QKD_OK);
	assert_int_equal(ci.group, 31);
	/* ESP is not IKE */
	assert_int_equal(qkd_ike_select(&b, &offer, QKD_IKE_PROTO_ESP, false, 0, &c),
			 QKD_ERR_PROTO);
	/* key length and groups outside policy */
	tunnel(&b, 128, 256, QKD_VPN_DH_X25519, QKD_VPN_DH_X25519);
	assert_int_equal(qkd_ike_select(&b, &offer, QKD_IKE_PROTO_IKE, true, 14, &c),
			 QKD_ERR_PROTO);
	tunnel(&a, 256, 256, QKD_VPN_DH_MODP2048, QKD_VPN_DH_MODP2048);
	tunnel(&b, 256, 256, QKD_VPN_DH_X25519, QKD_VPN_DH_X25519);
	qkd_ike_offer_ike(&a, spi, &offer);
	assert_int_equal(offer.p[0].spi_len, 8);
	assert_int_equal(qkd_ike_select(&b, &offer, QKD_IKE_PROTO_IKE, true, 14, &c),
			 QKD_ERR_PROTO);
	/* an answer with a group we did not offer */
	tunnel(&b, 256, 256, QKD_VPN_DH_MODP2048, QKD_VPN_DH_MODP2048);
	assert_int_equal(qkd_ike_select(&b, &offer, QKD_IKE_PROTO_IKE, true, 14, &c), QKD_OK);
	assert_memory_equal(c.spi, spi, 8);
	c.group = 31;
	qkd_ike_answer(&c, spi, 8, &ans);
	assert_int_equal(qkd_ike_accept(&a, &ans, QKD_IKE_PROTO_IKE, true, &ci), QKD_ERR_PROTO);
	/* an INTEG transform or an unknown attribute disqualify the proposal */
	offer.p[0].t[offer.p[0].nt++] = (struct qkd_ike_transform){ .type = QKD_IKE_TT_INTEG,
								    .id = 12 };
	assert_int_equal(qkd_ike_select(&b, &offer, QKD_IKE_PROTO_IKE, true, 14, &c),
			 QKD_ERR_PROTO);
	offer.p[0].nt--;
	offer.p[0].t[0].unknown_attr = true;
	assert_int_equal(qkd_ike_select(&b, &offer, QKD_IKE_PROTO_IKE, true, 14, &c),
			 QKD_ERR_PROTO);
}

static void test_proposal_esp(void **state)
{
	struct qkd_vpn_tunnel a, b;
	struct qkd_ike_sa offer, ans;
	struct qkd_ike_choice c, ci;
	static const uint8_t rspi[4] = { 0xc0, 0, 1, 2 };

	(void)state;
	tunnel(&a, 256, 128, QKD_VPN_DH_X25519, QKD_VPN_DH_X25519);
	tunnel(&b, 256, 128, QKD_VPN_DH_X25519, QKD_VPN_DH_X25519);
	qkd_ike_offer_esp(&a, 0x12345678, false, &offer);
	assert_int_equal(qkd_ike_select(&b, &offer, QKD_IKE_PROTO_ESP, false, 0, &c), QKD_OK);
	assert_int_equal(c.group, 0);
	assert_int_equal(c.spi_len, 4);
	assert_int_equal(c.spi[0], 0x12);
	assert_int_equal(qkd_ike_select(&b, &offer, QKD_IKE_PROTO_ESP, true, 31, &c),
			 QKD_ERR_PROTO);
	qkd_ike_offer_esp(&a, 0x12345678, true, &offer);
	assert_int_equal(qkd_ike_select(&b, &offer, QKD_IKE_PROTO_ESP, true, 31, &c), QKD_OK);
	assert_int_equal(c.group, 31);
	qkd_ike_answer(&c, rspi, 4, &ans);
	assert_int_equal(qkd_ike_accept(&a, &ans, QKD_IKE_PROTO_ESP, true, &ci), QKD_OK);
	assert_memory_equal(ci.spi, rspi, 4);
	assert_int_equal(ci.key_bits, 128);
	/* PFS asked, no KE in the answer */
	c.group = 0;
	qkd_ike_answer(&c, rspi, 4, &ans);
	assert_int_equal(qkd_ike_accept(&a, &ans, QKD_IKE_PROTO_ESP, true, &ci), QKD_ERR_PROTO);
	/* two proposals in an answer */
	qkd_ike_answer(&c, rspi, 4, &ans);
	ans.p[1] = ans.p[0];
	ans.np = 2;
	assert_int_equal(qkd_ike_accept(&a, &ans, QKD_IKE_PROTO_ESP, false, &ci), QKD_ERR_PROTO);
	/* ESP with ESN only is refused: we negotiate none */
	qkd_ike_offer_esp(&a, 0x12345678, false, &offer);
	offer.p[0].t[offer.p[0].nt - 1].id = 1;
	assert_int_equal(qkd_ike_select(&b, &offer, QKD_IKE_PROTO_ESP, false, 0, &c),
			 QKD_ERR_PROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_x25519_rfc7748),
		cmocka_unit_test(test_dh_agree),
		cmocka_unit_test(test_proposal_ike),
		cmocka_unit_test(test_proposal_esp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
