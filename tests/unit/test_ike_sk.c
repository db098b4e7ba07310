/* test_ike_sk.c - the IKEv2 Encrypted payload under AES-GCM-16
 * (lib/vpn/ike_sk.c, qkd/ike_sk.h, RFC 5282).
 *
 * Known answers: the AEAD primitive against the AES-GCM test cases of
 * draft-mcgrew-gcm-test-01 that tests/unit/test_esp.c uses (the same
 * primitive: key, 4-octet salt | 8-octet IV nonce, AAD, 16-octet ICV),
 * in both directions. Then the SK payload: seal -> parse -> open -> the
 * same inner chain, for both key sizes and an empty chain; every flipped
 * bit of the message refused (QKD_ERR_VERIFY, or a parse error for the
 * length fields); the wrong key; padding from a peer accepted and a Pad
 * Length past the plaintext refused (QKD_ERR_PROTO).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/ike_sk.h"

struct kat {
	const char *key, *salt, *iv, *aad, *plain, *ct_icv;
};

/* draft-mcgrew-gcm-test-01 section 4; aad is SPI | (seq high |) seq low. */
static const struct kat kats[] = {
	{ "abbccddef00112233445566778899aababbccddef00112233445566778899aab", "11223344",
	  "0102030405060708", "4a2cbfe300000002",
	  "4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee000000000"
	  "7002400020bf0000020405b40101040201020201",
	  "ff425c9b724599df7a3bcd510194e00d6a78107f1b0b1cbf06efae9d65a5d763"
	  "748a637985771d347f0545659f14e99def842d8eb335f4eecfdbf831824b4c49"
	  "15956c96" },
	{ "3de09874b388e6491988d0c3607eae1f", "57690e43", "4e280000a2fca1a3",
	  "42f67e3f1010101010101010",
	  "4500003c99c300008001cb7c40679318010101010800085c0200430061626364"
	  "65666768696a6b6c6d6e6f707172737475767761626364656667686901020201",
	  "fba2caa4853cf9f0f22cb10d86dd83b0fec75691cf1a04b00d1138ec9c357917"
	  "65acbd8701ad79845bf9fe3fba487bc91755e6662b4c8d0d1f5e22739530320a"
	  "e0d731cc978ecafaeae88f00e80d6e48" },
	{ "7d773d00c144c525ac619d18c84a3f47", "d9664267", "43457e9182443bc6", "335467aeffffffff",
	  "01020201", "437f866bcb3f699fe9b0822bac961c4504bef270" },
	{ "abbccddef00112233445566778899aababbccddef00112233445566778899aab", "73616c74",
	  "616e640169766563", "17405e67156f3126dd0db99b",
	  "45080028732c00004006e9f90a0106120a01038f06b88023dd6bafbecb712602"
	  "50101f646d540001",
	  "f2d69ecdbd5a0d5b8d5ef38bad4da58d1f278fde98ef67549d524a3018d9a57f"
	  "f4d3a31ce673119e451626c2415771e3b7eebca614c89b35" },
};

static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = strlen(h) / 2;

	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void test_gcm_kat(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof kats / sizeof kats[0]; k++) {
		uint8_t ske[36], iv[8], aad[16], pt[128], want[160], ct[128], icv[16], back[128];
		size_t kl = unhex(kats[k].key, ske);
		size_t el = kl + unhex(kats[k].salt, ske + kl);
		size_t al = unhex(kats[k].aad, aad), pl = unhex(kats[k].plain, pt);
		size_t wl = unhex(kats[k].ct_icv, want);

		unhex(kats[k].iv, iv);
		assert_int_equal(wl, pl + 16);
		assert_int_equal(qkd_ike_gcm_seal(ske, el, iv, aad, al, pt, pl, ct, icv), QKD_OK);
		assert_memory_equal(ct, want, pl);
		assert_memory_equal(icv, want + pl, 16);
		assert_int_equal(qkd_ike_gcm_open(ske, el, iv, aad, al, want, pl, want + pl, back),
				 QKD_OK);
		assert_memory_equal(back, pt, pl);
		want[pl] ^= 1;
		assert_int_equal(qkd_ike_gcm_open(ske, el, iv, aad, al, want, pl, want + pl, back),
				 QKD_ERR_VERIFY);
		aad[0] ^= 1;
		want[pl] ^= 1;
		assert_int_equal(qkd_ike_gcm_open(ske, el, iv, aad, al, want, pl, want + pl, back),
				 QKD_ERR_VERIFY);
	}
}

static void test_gcm_args(void **state)
{
	uint8_t k[36] = { 0 }, iv[8] = { 0 }, buf[8] = { 0 }, icv[16];

	(void)state;
	assert_int_equal(qkd_ike_gcm_seal(k, 28, iv, NULL, 0, buf, 8, buf, icv), QKD_ERR_INVAL);
	assert_int_equal(qkd_ike_gcm_seal(k, 32, iv, NULL, 0, buf, 8, buf, icv), QKD_ERR_INVAL);
	assert_int_equal(qkd_ike_gcm_seal(k, 36, iv, NULL, 0, NULL, 8, buf, icv), QKD_ERR_INVAL);
	assert_int_equal(qkd_ike_gcm_seal(k, 20, iv, NULL, 0, buf, 8, buf, icv), QKD_OK);
	assert_int_equal(qkd_ike_gcm_open(k, 20, iv, NULL, 0, buf, 8, icv, buf), QKD_OK);
}

/* A sample inner chain: IDi + Nonce. */
static void make_inner(struct qkd_wbuf *w, uint8_t *first)
{
	static const uint8_t nonce[32] = { 1, 2, 3 };
	struct qkd_ike_id id = { QKD_IKE_ID_FQDN, { (const uint8_t *)"gw-a.example", 12 } };
	struct qkd_ike_builder b;

	qkd_ike_build_chain(&b, w);
	qkd_ike_add_id(&b, QKD_IKE_PT_IDI, &id);
	qkd_ike_add_nonce(&b, nonce, sizeof nonce);
	assert_int_equal(qkd_ike_build_end(&b), QKD_OK);
	*first = b.first;
}

static const struct qkd_ike_hdr hdr = { .spi_i = { 1, 2, 3, 4, 5, 6, 7, 8 },
					.spi_r = { 9, 9, 9, 9, 9, 9, 9, 9 },
					.exchange = QKD_IKE_AUTH, .flags = QKD_IKE_FLAG_I,
					.msg_id = 1 };

static int open_msg(const uint8_t *p, size_t n, const uint8_t *ske, size_t el, uint8_t *pt,
		    size_t *pl, uint8_t *inner)
{
	struct qkd_ike_msg m;
	const char *why;
	int rc = qkd_ike_msg_parse(p, n, &m, &why);

	if (rc != QKD_OK)
		return rc;
	*inner = m.inner;
	return qkd_ike_sk_open(p, n, &m, ske, el, pt, 2048, pl);
}

static void test_sk_round_trip(void **state)
{
	(void)state;
	for (size_t el = 20; el <= 36; el += 16) {
		struct qkd_wbuf in, out;
		uint8_t ske[36], other[36], pt[2048], first = 0, inner = 0;
		size_t pl;
		struct qkd_ike_msg m;
		const char *why;

		for (size_t i = 0; i < sizeof ske; i++) {
			ske[i] = (uint8_t)(i * 7 + 1);
			other[i] = (uint8_t)(i * 7 + 2);
		}
		qkd_wbuf_init(&in);
		qkd_wbuf_init(&out);
		make_inner(&in, &first);
		assert_int_equal(qkd_ike_sk_seal(&hdr, first, in.p, in.len, ske, el, 5, &out),
				 QKD_OK);
		assert_int_equal(out.len, 28 + 4 + 8 + in.len + 1 + 16);
		assert_int_equal(open_msg(out.p, out.len, ske, el, pt, &pl, &inner), QKD_OK);
		assert_int_equal(pl, in.len);
		assert_memory_equal(pt, in.p, in.len);
		assert_int_equal(inner, first);
		assert_int_equal(qkd_ike_chain_parse(inner, pt, pl, &m, &why), QKD_OK);
		assert_int_equal(m.n, 2);
		assert_int_equal(open_msg(out.p, out.len, other, el, pt, &pl, &inner),
				 QKD_ERR_VERIFY);
		/* every bit of the message matters */
		for (size_t i = 0; i < out.len * 8; i++) {
			int rc;

			out.p[i / 8] ^= (uint8_t)(1u << (i % 8));
			rc = open_msg(out.p, out.len, ske, el, pt, &pl, &inner);
			assert_int_not_equal(rc, QKD_OK);
			out.p[i / 8] ^= (uint8_t)(1u << (i % 8));
		}
		qkd_wbuf_cleanup(&in);
		qkd_wbuf_cleanup(&out);
	}
}

static void test_sk_empty(void **state)
{
	struct qkd_wbuf out;
	uint8_t ske[20] = { 3 }, pt[64], inner = 9;
	size_t pl = 9;

	(void)state;
	qkd_wbuf_init(&out);
	assert_int_equal(qkd_ike_sk_seal(&hdr, 0, NULL, 0, ske, 20, 1, &out), QKD_OK);
	assert_int_equal(open_msg(out.p, out.len, ske, 20, pt, &pl, &inner), QKD_OK);
	assert_int_equal(pl, 0);
	assert_int_equal(inner, QKD_IKE_PT_NONE);
	qkd_wbuf_cleanup(&out);
}

/* A peer's message with padding, sealed by hand. pad: the Pad Length. */
static void hand_sealed(const uint8_t *ske, uint8_t pad, size_t extra, struct qkd_wbuf *out)
{
	uint8_t body[64] = { 0 }, ct[64], icv[16], iv[8] = { 0, 0, 0, 0, 0, 0, 0, 7 };
	size_t n = extra + 1;
	struct qkd_ike_builder b;
	struct qkd_ike_sk sk = { .inner = QKD_IKE_PT_NONE, .iv = { iv, 8 }, .ct = { ct, n },
				 .icv = { icv, 16 } };

	body[n - 1] = pad;
	memset(ct, 0, sizeof ct);
	qkd_ike_build_msg(&b, out, &hdr);
	qkd_ike_add_sk(&b, &sk);
	assert_int_equal(qkd_ike_build_end(&b), QKD_OK);
	assert_int_equal(qkd_ike_gcm_seal(ske, 36, iv, out->p, out->len - 16 - n - 8, body, n,
					  out->p + out->len - 16 - n, out->p + out->len - 16),
			 QKD_OK);
}

static void test_sk_padding(void **state)
{
	uint8_t ske[36] = { 5 }, pt[64], inner;
	size_t pl;
	struct qkd_wbuf w;

	(void)state;
	qkd_wbuf_init(&w);
	hand_sealed(ske, 7, 7, &w);
	assert_int_equal(open_msg(w.p, w.len, ske, 36, pt, &pl, &inner), QKD_OK);
	assert_int_equal(pl, 0);
	qkd_wbuf_reset(&w);
	hand_sealed(ske, 8, 7, &w);
	assert_int_equal(open_msg(w.p, w.len, ske, 36, pt, &pl, &inner), QKD_ERR_PROTO);
	qkd_wbuf_cleanup(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gcm_kat),
		cmocka_unit_test(test_gcm_args),
		cmocka_unit_test(test_sk_round_trip),
		cmocka_unit_test(test_sk_empty),
		cmocka_unit_test(test_sk_padding),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
