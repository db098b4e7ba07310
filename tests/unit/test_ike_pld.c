/* test_ike_pld.c - IKEv2 messages on the wire (qkd/ike_pld.h,
 * lib/vpn/ike_pld.c, ike_pld_sa.c, ike_build.c).
 *
 * Round trips: every payload type is built, parsed and compared field by
 * field with what was built. Then one test per validation rule, each with
 * its own malformed input, checking the error code and that a reason is
 * given. Every parse reads from an exactly sized heap copy, so under ASan
 * (build/asan) and valgrind a read past the end would be caught.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/ike_pld.h"

static const struct qkd_ike_hdr HDR = {
	.spi_i = { 1, 2, 3, 4, 5, 6, 7, 8 }, .spi_r = { 0 },
	.exchange = QKD_IKE_SA_INIT, .flags = QKD_IKE_FLAG_I, .msg_id = 0,
};

/* The message under test, in an exactly sized heap copy. */
static uint8_t *copy;
static size_t copy_len;
static struct qkd_ike_msg msg;
static const char *why;

static void set_copy(const uint8_t *p, size_t n)
{
	free(copy);
	copy = malloc(n > 0 ? n : 1);
	assert_non_null(copy);
	if (n > 0)
		memcpy(copy, p, n);
	copy_len = n;
}

static int parse_wbuf(const struct qkd_wbuf *w)
{
	set_copy(w->p, w->len);
	why = NULL;
	return qkd_ike_msg_parse(copy, copy_len, &msg, &why);
}

/* Parse and expect a refusal with a reason. */
static void expect_bad(const struct qkd_wbuf *w, int rc)
{
	assert_int_equal(parse_wbuf(w), rc);
	assert_non_null(why);
}

/* A message of one raw payload; parsed (must succeed); returns it. */
static const struct qkd_ike_pld *one_raw(uint8_t type, const void *body, size_t len)
{
	struct qkd_wbuf w;
	struct qkd_ike_builder b;

	qkd_wbuf_init(&w);
	qkd_ike_build_msg(&b, &w, &HDR);
	qkd_ike_add_raw(&b, type, false, body, len);
	assert_int_equal(qkd_ike_build_end(&b), 0);
	assert_int_equal(parse_wbuf(&w), 0);
	qkd_wbuf_cleanup(&w);
	assert_int_equal(msg.n, 1);
	return &msg.pld[0];
}

static void span_eq(struct qkd_ike_span a, const void *p, size_t n)
{
	assert_int_equal(a.len, n);
	if (n > 0)
		assert_memory_equal(a.p, p, n);
}

/* ---- round trips ---- */

static void test_header_roundtrip(void **state)
{
	struct qkd_ike_hdr h = HDR;
	struct qkd_ike_builder b;
	struct qkd_wbuf w;
	uint8_t nonce[32];

	(void)state;
	memset(nonce, 0x5a, sizeof nonce);
	memset(h.spi_r, 0xee, 8);
	h.exchange = QKD_IKE_AUTH;
	h.flags = QKD_IKE_FLAG_R;
	h.msg_id = 0x01020304;
	qkd_wbuf_init(&w);
	qkd_ike_build_msg(&b, &w, &h);
	qkd_ike_add_nonce(&b, nonce, sizeof nonce);
	assert_int_equal(qkd_ike_build_end(&b), 0);
	assert_int_equal(w.len, QKD_IKE_HDR_LEN + QKD_IKE_GEN_LEN + sizeof nonce);
	assert_int_equal(w.p[17], 0x20);	/* version 2.0 */
	assert_int_equal(parse_wbuf(&w), 0);
	assert_memory_equal(msg.hdr.spi_i, h.spi_i, 8);
	assert_memory_equal(msg.hdr.spi_r, h.spi_r, 8);
	assert_int_equal(msg.hdr.next, QKD_IKE_PT_NONCE);
	assert_int_equal(msg.hdr.exchange, QKD_IKE_AUTH);
	assert_int_equal(msg.hdr.flags, QKD_IKE_FLAG_R);
	assert_int_equal(msg.hdr.msg_id, 0x01020304);
	assert_int_equal(msg.hdr.length, w.len);
	assert_int_equal(msg.n, 1);
	assert_false(msg.pld[0].critical);
	span_eq(msg.pld[0].body, nonce, sizeof nonce);
	/* A minor version above 0 is ignored on receipt (section 3.1). */
	copy[17] = 0x21;
	assert_int_equal(qkd_ike_msg_parse(copy, copy_len, &msg, &why), 0);
	qkd_wbuf_cleanup(&w);
}

static void fill_sa(struct qkd_ike_sa *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->np = 2;
	sa->p[0] = (struct qkd_ike_proposal){ .num = 1, .protocol = QKD_IKE_PROTO_IKE, .nt = 4 };
	sa->p[0].t[0] = (struct qkd_ike_transform){ QKD_IKE_TT_ENCR, QKD_IKE_ENCR_AES_GCM_16, 256, false };
	sa->p[0].t[1] = (struct qkd_ike_transform){ QKD_IKE_TT_PRF, QKD_IKE_PRF_HMAC_SHA2_256, 0, false };
	sa->p[0].t[2] = (struct qkd_ike_transform){ QKD_IKE_TT_KE, QKD_IKE_GROUP_X25519, 0, false };
	sa->p[0].t[3] = (struct qkd_ike_transform){ QKD_IKE_TT_KE, QKD_IKE_GROUP_MODP2048, 0, false };
	sa->p[1] = (struct qkd_ike_proposal){ .num = 2, .protocol = QKD_IKE_PROTO_ESP, .spi_len = 4,
					      .spi = { 0xc0, 0xff, 0xee, 0x01 }, .nt = 2 };
	sa->p[1].t[0] = (struct qkd_ike_transform){ QKD_IKE_TT_ENCR, QKD_IKE_ENCR_AES_GCM_16, 256, false };
	sa->p[1].t[1] = (struct qkd_ike_transform){ QKD_IKE_TT_ESN, 0, 0, false };
}

static void sa_eq(const struct qkd_ike_sa *a, const struct qkd_ike_sa *b)
{
	assert_int_equal(a->np, b->np);
	for (size_t i = 0; i < a->np; i++) {
		const struct qkd_ike_proposal *p = &a->p[i], *q = &b->p[i];

		assert_int_equal(p->num, q->num);
		assert_int_equal(p->protocol, q->protocol);
		assert_int_equal(p->spi_len, q->spi_len);
		assert_memory_equal(p->spi, q->spi, p->spi_len);
		assert_int_equal(p->nt, q->nt);
		for (size_t j = 0; j < p->nt; j++) {
			assert_int_equal(p->t[j].type, q->t[j].type);
			assert_int_equal(p->t[j].id, q->t[j].id);
			assert_int_equal(p->t[j].key_bits, q->t[j].key_bits);
			assert_int_equal(p->t[j].unknown_attr, q->t[j].unknown_attr);
		}
	}
}

/* IKE_SA_INIT: SA, KE (X25519), Ni, N(COOKIE); then MODP-2048 KE. */
static void test_sa_init_roundtrip(void **state)
{
	struct qkd_ike_sa sa, got;
	struct qkd_ike_ke ke;
	struct qkd_ike_notify n, ngot;
	struct qkd_ike_span nonce;
	struct qkd_ike_builder b;
	struct qkd_wbuf w;
	uint8_t pub[256], ni[QKD_IKE_NONCE_MAX], cookie[24];

	(void)state;
	fill_sa(&sa);
	for (size_t i = 0; i < sizeof pub; i++)
		pub[i] = (uint8_t)(i * 7);
	memset(ni, 0x11, sizeof ni);
	memset(cookie, 0xc0, sizeof cookie);
	n = (struct qkd_ike_notify){ .protocol = 0, .type = QKD_IKE_N_COOKIE,
				     .data = { cookie, sizeof cookie } };
	qkd_wbuf_init(&w);
	qkd_ike_build_msg(&b, &w, &HDR);
	qkd_ike_add_notify(&b, &n);
	qkd_ike_add_sa(&b, &sa);
	ke = (struct qkd_ike_ke){ QKD_IKE_GROUP_X25519, { pub, 32 } };
	qkd_ike_add_ke(&b, &ke);
	qkd_ike_add_nonce(&b, ni, QKD_IKE_NONCE_MIN);
	assert_int_equal(qkd_ike_build_end(&b), 0);
	assert_int_equal(parse_wbuf(&w), 0);
	assert_int_equal(msg.n, 4);
	assert_int_equal(msg.hdr.next, QKD_IKE_PT_NOTIFY);
	assert_int_equal(qkd_ike_notify_parse(qkd_ike_msg_find(&msg, QKD_IKE_PT_NOTIFY), &ngot, &why), 0);
	assert_int_equal(ngot.type, QKD_IKE_N_COOKIE);
	assert_int_equal(ngot.protocol, 0);
	span_eq(ngot.spi, NULL, 0);
	span_eq(ngot.data, cookie, sizeof cookie);
	assert_int_equal(qkd_ike_sa_parse(qkd_ike_msg_find(&msg, QKD_IKE_PT_SA), &got, &why), 0);
	sa_eq(&got, &sa);
	assert_int_equal(qkd_ike_ke_parse(qkd_ike_msg_find(&msg, QKD_IKE_PT_KE), &ke, &why), 0);
	assert_int_equal(ke.group, QKD_IKE_GROUP_X25519);
	span_eq(ke.data, pub, 32);
	assert_int_equal(qkd_ike_nonce_parse(qkd_ike_msg_find(&msg, QKD_IKE_PT_NONCE), &nonce, &why), 0);
	span_eq(nonce, ni, QKD_IKE_NONCE_MIN);
	assert_null(qkd_ike_msg_find(&msg, QKD_IKE_PT_AUTH));

	/* MODP-2048 public value and the longest nonce. */
	qkd_wbuf_reset(&w);
	qkd_ike_build_msg(&b, &w, &HDR);
	ke = (struct qkd_ike_ke){ QKD_IKE_GROUP_MODP2048, { pub, 256 } };
	qkd_ike_add_ke(&b, &ke);
	qkd_ike_add_nonce(&b, ni, QKD_IKE_NONCE_MAX);
	assert_int_equal(qkd_ike_build_end(&b), 0);
	assert_int_equal(parse_wbuf(&w), 0);
	assert_int_equal(qkd_ike_ke_parse(&msg.pld[0], &ke, &why), 0);
	assert_int_equal(ke.group, QKD_IKE_GROUP_MODP2048);
	span_eq(ke.data, pub, 256);
	assert_int_equal(qkd_ike_nonce_parse(&msg.pld[1], &nonce, &why), 0);
	span_eq(nonce, ni, QKD_IKE_NONCE_MAX);
	qkd_wbuf_cleanup(&w);
}

static void tss_eq(const struct qkd_ike_tss *a, const struct qkd_ike_tss *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		size_t alen = a->ts[i].type == QKD_IKE_TS_IPV6 ? 16 : 4;

		assert_int_equal(a->ts[i].type, b->ts[i].type);
		assert_int_equal(a->ts[i].ip_proto, b->ts[i].ip_proto);
		assert_int_equal(a->ts[i].start_port, b->ts[i].start_port);
		assert_int_equal(a->ts[i].end_port, b->ts[i].end_port);
		assert_memory_equal(a->ts[i].start, b->ts[i].start, alen);
		assert_memory_equal(a->ts[i].end, b->ts[i].end, alen);
	}
}

static void fill_tss(struct qkd_ike_tss *t)
{
	memset(t, 0, sizeof *t);
	t->n = 2;
	t->ts[0] = (struct qkd_ike_ts){ .type = QKD_IKE_TS_IPV4, .ip_proto = 0, .start_port = 0,
					.end_port = 65535, .start = { 10, 1, 0, 0 },
					.end = { 10, 1, 255, 255 } };
	t->ts[1] = (struct qkd_ike_ts){ .type = QKD_IKE_TS_IPV6, .ip_proto = 17, .start_port = 500,
					.end_port = 4500 };
	t->ts[1].start[0] = 0x20, t->ts[1].start[1] = 0x01, t->ts[1].start[2] = 0x0d;
	t->ts[1].start[3] = 0xb8;
	memcpy(t->ts[1].end, t->ts[1].start, 16);
	memset(t->ts[1].end + 8, 0xff, 8);
}

/* IKE_AUTH inner payloads: IDi, AUTH, SA, TSi, TSr, N(PPK_IDENTITY), and
 * the outer message with its SK framing. */
static void test_auth_roundtrip(void **state)
{
	static const char fqdn[] = "gw-a.example";
	uint8_t authd[32], iv[8], ct[96], icv[16], ppk_id[9] = { 2, 'q', 'k', 'd', '-', 'k', 'e', 'y', '1' };
	struct qkd_ike_id id = { QKD_IKE_ID_FQDN, { (const uint8_t *)fqdn, sizeof fqdn - 1 } }, idg;
	struct qkd_ike_auth au = { QKD_IKE_AUTH_PSK, { authd, sizeof authd } }, aug;
	struct qkd_ike_notify n = { .type = QKD_IKE_N_PPK_IDENTITY, .data = { ppk_id, sizeof ppk_id } }, ng;
	struct qkd_ike_sk sk = { QKD_IKE_PT_IDI, { iv, 8 }, { ct, sizeof ct }, { icv, 16 } }, skg;
	struct qkd_ike_sa sa, sag;
	struct qkd_ike_tss tsi, tsr, tsg;
	struct qkd_ike_builder b;
	struct qkd_wbuf w;

	(void)state;
	memset(authd, 0xa5, sizeof authd), memset(iv, 1, 8), memset(ct, 2, sizeof ct), memset(icv, 3, 16);
	fill_sa(&sa);
	sa.np = 1;
	sa.p[0] = sa.p[1];
	sa.p[0].num = 1;
	fill_tss(&tsi);
	fill_tss(&tsr);
	tsr.n = 1;
	qkd_wbuf_init(&w);
	qkd_ike_build_chain(&b, &w);
	qkd_ike_add_id(&b, QKD_IKE_PT_IDI, &id);
	qkd_ike_add_auth(&b, &au);
	qkd_ike_add_sa(&b, &sa);
	qkd_ike_add_ts(&b, QKD_IKE_PT_TSI, &tsi);
	qkd_ike_add_ts(&b, QKD_IKE_PT_TSR, &tsr);
	qkd_ike_add_notify(&b, &n);
	assert_int_equal(qkd_ike_build_end(&b), 0);
	assert_int_equal(b.first, QKD_IKE_PT_IDI);
	set_copy(w.p, w.len);
	assert_int_equal(qkd_ike_chain_parse(b.first, copy, copy_len, &msg, &why), 0);
	assert_int_equal(msg.n, 6);
	assert_int_equal(qkd_ike_id_parse(&msg.pld[0], &idg, &why), 0);
	assert_int_equal(idg.type, QKD_IKE_ID_FQDN);
	span_eq(idg.data, fqdn, sizeof fqdn - 1);
	assert_int_equal(qkd_ike_auth_parse(&msg.pld[1], &aug, &why), 0);
	assert_int_equal(aug.method, QKD_IKE_AUTH_PSK);
	span_eq(aug.data, authd, sizeof authd);
	assert_int_equal(qkd_ike_sa_parse(&msg.pld[2], &sag, &why), 0);
	sa_eq(&sag, &sa);
	assert_int_equal(qkd_ike_ts_parse(&msg.pld[3], &tsg, &why), 0);
	assert_int_equal(msg.pld[3].type, QKD_IKE_PT_TSI);
	tss_eq(&tsg, &tsi);
	assert_int_equal(qkd_ike_ts_parse(&msg.pld[4], &tsg, &why), 0);
	assert_int_equal(msg.pld[4].type, QKD_IKE_PT_TSR);
	tss_eq(&tsg, &tsr);
	assert_int_equal(qkd_ike_notify_parse(&msg.pld[5], &ng, &why), 0);
	assert_int_equal(ng.type, QKD_IKE_N_PPK_IDENTITY);
	span_eq(ng.data, ppk_id, sizeof ppk_id);

	/* The outer message: header, SK{...}. */
	qkd_wbuf_reset(&w);
	qkd_ike_build_msg(&b, &w, &HDR);
	qkd_ike_add_sk(&b, &sk);
	assert_int_equal(qkd_ike_build_end(&b), 0);
	assert_int_equal(parse_wbuf(&w), 0);
	assert_int_equal(msg.hdr.next, QKD_IKE_PT_SK);
	assert_int_equal(msg.inner, QKD_IKE_PT_IDI);
	assert_int_equal(qkd_ike_sk_parse(&msg.pld[0], msg.inner, 8, 16, &skg, &why), 0);
	assert_int_equal(skg.inner, QKD_IKE_PT_IDI);
	span_eq(skg.iv, iv, 8);
	span_eq(skg.ct, ct, sizeof ct);
	span_eq(skg.icv, icv, 16);
	/* Nothing may follow SK. */
	qkd_ike_add_nonce(&b, ct, 16);
	assert_int_equal(qkd_ike_build_end(&b), QKD_ERR_INVAL);
	qkd_wbuf_cleanup(&w);
}

/* INFORMATIONAL: Delete of the IKE SA and of three ESP SAs, N(REKEY_SA)
 * with an ESP SPI, N(PPK_IDENTITY_KEY). */
static void test_info_roundtrip(void **state)
{
	uint8_t spis[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }, spi4[4] = { 9, 8, 7, 6 };
	uint8_t idkey[17];
	struct qkd_ike_delete dike = { QKD_IKE_PROTO_IKE, 0, 0, { NULL, 0 } };
	struct qkd_ike_delete desp = { QKD_IKE_PROTO_ESP, 4, 3, { spis, 12 } }, dg;
	struct qkd_ike_notify rk = { QKD_IKE_PROTO_ESP, { spi4, 4 }, QKD_IKE_N_REKEY_SA, { NULL, 0 } };
	struct qkd_ike_notify pk = { 0, { NULL, 0 }, QKD_IKE_N_PPK_IDENTITY_KEY, { idkey, sizeof idkey } };
	struct qkd_ike_notify ng;
	struct qkd_ike_builder b;
	struct qkd_wbuf w;

	(void)state;
	memset(idkey, 0x3c, sizeof idkey);
	qkd_wbuf_init(&w);
	qkd_ike_build_msg(&b, &w, &HDR);
	qkd_ike_add_delete(&b, &dike);
	qkd_ike_add_delete(&b, &desp);
	qkd_ike_add_notify(&b, &rk);
	qkd_ike_add_notify(&b, &pk);
	assert_int_equal(qkd_ike_build_end(&b), 0);
	assert_int_equal(parse_wbuf(&w), 0);
	assert_int_equal(msg.n, 4);
	assert_int_equal(qkd_ike_delete_parse(&msg.pld[0], &dg, &why), 0);
	assert_int_equal(dg.protocol, QKD_IKE_PROTO_IKE);
	assert_int_equal(dg.nspi, 0);
	assert_int_equal(qkd_ike_delete_parse(&msg.pld[1], &dg, &why), 0);
	assert_int_equal(dg.protocol, QKD_IKE_PROTO_ESP);
	assert_int_equal(dg.spi_size, 4);
	assert_int_equal(dg.nspi, 3);
	span_eq(dg.spis, spis, 12);
	assert_int_equal(qkd_ike_notify_parse(&msg.pld[2], &ng, &why), 0);
	assert_int_equal(ng.protocol, QKD_IKE_PROTO_ESP);
	assert_int_equal(ng.type, QKD_IKE_N_REKEY_SA);
	span_eq(ng.spi, spi4, 4);
	span_eq(ng.data, NULL, 0);
	assert_int_equal(qkd_ike_notify_parse(&msg.pld[3], &ng, &why), 0);
	assert_int_equal(ng.type, QKD_IKE_N_PPK_IDENTITY_KEY);
	span_eq(ng.data, idkey, sizeof idkey);
	qkd_wbuf_cleanup(&w);
}

/* Section 2.5: unknown payloads are skipped unless critical. */
static void test_unknown_payloads(void **state)
{
	uint8_t nonce[16] = { 0 }, junk[5] = { 1, 2, 3, 4, 5 };
	struct qkd_ike_builder b;
	struct qkd_wbuf w;

	(void)state;
	qkd_wbuf_init(&w);
	qkd_ike_build_msg(&b, &w, &HDR);
	qkd_ike_add_raw(&b, 200, false, junk, sizeof junk);
	qkd_ike_add_nonce(&b, nonce, sizeof nonce);
	qkd_ike_add_raw(&b, 3, false, NULL, 0);
	assert_int_equal(qkd_ike_build_end(&b), 0);
	assert_int_equal(parse_wbuf(&w), 0);
	assert_int_equal(msg.n, 1);
	assert_int_equal(msg.skipped, 2);
	assert_int_equal(msg.pld[0].type, QKD_IKE_PT_NONCE);

	qkd_wbuf_reset(&w);
	qkd_ike_build_msg(&b, &w, &HDR);
	qkd_ike_add_nonce(&b, nonce, sizeof nonce);
	qkd_ike_add_raw(&b, 201, true, junk, sizeof junk);
	assert_int_equal(qkd_ike_build_end(&b), 0);
	expect_bad(&w, QKD_ERR_PROTO);
	assert_int_equal(msg.bad_critical, 201);
	assert_non_null(strstr(why, "UNSUPPORTED_CRITICAL_PAYLOAD"));
	/* A known payload with the critical bit is parsed as usual. */
	qkd_wbuf_reset(&w);
	qkd_ike_build_msg(&b, &w, &HDR);
	qkd_ike_add_raw(&b, QKD_IKE_PT_NONCE, true, nonce, sizeof nonce);
	assert_int_equal(qkd_ike_build_end(&b), 0);
	assert_int_equal(parse_wbuf(&w), 0);
	assert_true(msg.pld[0].critical);
	qkd_wbuf_cleanup(&w);
}

/* ---- malformed input: the header and the chain ---- */

/* A message whose payload chain is given as raw bytes. */
static void raw_msg(struct qkd_wbuf *w, uint8_t first, const uint8_t *chain, size_t n)
{
	struct qkd_ike_builder b;
	size_t len;

	qkd_wbuf_reset(w);
	qkd_ike_build_msg(&b, w, &HDR);
	assert_int_equal(qkd_ike_build_end(&b), 0);
	qkd_put_bytes(w, chain, n);
	assert_int_equal(w->err, 0);
	len = w->len;
	w->p[16] = first;
	w->p[24] = (uint8_t)(len >> 24), w->p[25] = (uint8_t)(len >> 16);
	w->p[26] = (uint8_t)(len >> 8), w->p[27] = (uint8_t)len;
}

static void test_bad_header(void **state)
{
	static const uint8_t nonce_pld[20] = { 0, 0, 0, 20 };
	struct qkd_wbuf w;
	uint8_t *big;

	(void)state;
	qkd_wbuf_init(&w);
	raw_msg(&w, QKD_IKE_PT_NONCE, nonce_pld, sizeof nonce_pld);
	assert_int_equal(parse_wbuf(&w), 0);
	/* Truncated header; empty datagram. */
	set_copy(w.p, QKD_IKE_HDR_LEN - 1);
	assert_int_equal(qkd_ike_msg_parse(copy, copy_len, &msg, &why), QKD_ERR_PROTO);
	assert_non_null(why);
	set_copy(w.p, 0);
	assert_int_equal(qkd_ike_msg_parse(copy, 0, &msg, &why), QKD_ERR_PROTO);
	/* The datagram cut short of what the length field says. */
	set_copy(w.p, w.len - 1);
	assert_int_equal(qkd_ike_msg_parse(copy, copy_len, &msg, &why), QKD_ERR_PROTO);
	/* Length field longer, then shorter, than the data. */
	w.p[27]++;
	expect_bad(&w, QKD_ERR_PROTO);
	w.p[27] -= 2;
	expect_bad(&w, QKD_ERR_PROTO);
	w.p[27]++;
	/* Major versions 1 and 3. */
	w.p[17] = 0x10;
	expect_bad(&w, QKD_ERR_PROTO);
	w.p[17] = 0x30;
	expect_bad(&w, QKD_ERR_PROTO);
	w.p[17] = 0x20;
	assert_int_equal(parse_wbuf(&w), 0);
	/* Over 64 KiB, whatever it holds. */
	big = calloc(1, QKD_IKE_MSG_MAX + 1);
	assert_non_null(big);
	assert_int_equal(qkd_ike_msg_parse(big, QKD_IKE_MSG_MAX + 1, &msg, &why), QKD_ERR_RANGE);
	assert_non_null(why);
	free(big);
	qkd_wbuf_cleanup(&w);
}

static void test_bad_chain(void **state)
{
	static const uint8_t short_len[] = { 0, 0, 0, 3 };
	static const uint8_t half_hdr[] = { 0, 0 };
	static const uint8_t overrun[] = { 0, 0, 0, 20, 1, 2, 3, 4 };
	static const uint8_t trailing[] = { 0, 0, 0, 20, [20] = 9, 9, 9 };
	static const uint8_t dangling[20] = { QKD_IKE_PT_NONCE, 0, 0, 20 };
	static const uint8_t sk_then[] = { QKD_IKE_PT_NONCE, 0, 0, 8, 1, 2, 3, 4,
					   0, 0, 0, 20, [27] = 0 };
	uint8_t many[4 * (QKD_IKE_MAX_PAYLOADS + 1)];
	struct qkd_wbuf w;

	(void)state;
	qkd_wbuf_init(&w);
	raw_msg(&w, QKD_IKE_PT_NONCE, short_len, sizeof short_len);
	expect_bad(&w, QKD_ERR_PROTO);
	raw_msg(&w, QKD_IKE_PT_NONCE, half_hdr, sizeof half_hdr);
	expect_bad(&w, QKD_ERR_PROTO);
	raw_msg(&w, QKD_IKE_PT_NONCE, overrun, sizeof overrun);
	expect_bad(&w, QKD_ERR_PROTO);
	raw_msg(&w, QKD_IKE_PT_NONCE, trailing, sizeof trailing);
	expect_bad(&w, QKD_ERR_PROTO);
	raw_msg(&w, QKD_IKE_PT_NONCE, dangling, sizeof dangling);
	expect_bad(&w, QKD_ERR_PROTO);
	/* SK followed by another payload. */
	raw_msg(&w, QKD_IKE_PT_SK, sk_then, sizeof sk_then);
	expect_bad(&w, QKD_ERR_PROTO);
	/* SK inside the decrypted chain. */
	set_copy(sk_then, 8);
	assert_int_equal(qkd_ike_chain_parse(QKD_IKE_PT_SK, copy, 8, &msg, &why), QKD_ERR_PROTO);
	assert_non_null(why);
	/* 32 payloads pass, 33 do not (unknown, skipped ones count too). */
	for (size_t i = 0; i < QKD_IKE_MAX_PAYLOADS + 1; i++) {
		many[4 * i] = i + 1 < QKD_IKE_MAX_PAYLOADS + 1 ? 99 : 0;
		many[4 * i + 1] = 0, many[4 * i + 2] = 0, many[4 * i + 3] = 4;
	}
	raw_msg(&w, 99, many + 4, sizeof many - 4);
	assert_int_equal(parse_wbuf(&w), 0);
	assert_int_equal(msg.skipped, QKD_IKE_MAX_PAYLOADS);
	raw_msg(&w, 99, many, sizeof many);
	expect_bad(&w, QKD_ERR_RANGE);
	qkd_wbuf_cleanup(&w);
}

/* The builder refuses what the parser would. */
static void test_build_bounds(void **state)
{
	static uint8_t body[65600];
	struct qkd_ike_builder b;
	struct qkd_wbuf w;
	struct qkd_ike_tss none = { 0 };

	(void)state;
	qkd_wbuf_init(&w);
	qkd_ike_build_msg(&b, &w, &HDR);
	qkd_ike_add_raw(&b, QKD_IKE_PT_VENDOR, false, body, 65532);	/* 65536 with header */
	assert_int_equal(qkd_ike_build_end(&b), QKD_ERR_RANGE);
	qkd_wbuf_reset(&w);
	qkd_ike_build_msg(&b, &w, &HDR);
	qkd_ike_add_raw(&b, QKD_IKE_PT_VENDOR, false, body, 40000);
	qkd_ike_add_raw(&b, QKD_IKE_PT_VENDOR, false, body, 40000);
	assert_int_equal(qkd_ike_build_end(&b), QKD_ERR_RANGE);
	qkd_wbuf_reset(&w);
	qkd_ike_build_msg(&b, &w, &HDR);
	qkd_ike_add_nonce(&b, body, QKD_IKE_NONCE_MIN - 1);
	assert_int_equal(qkd_ike_build_end(&b), QKD_ERR_INVAL);
	qkd_wbuf_reset(&w);
	qkd_ike_build_msg(&b, &w, &HDR);
	qkd_ike_add_ts(&b, QKD_IKE_PT_TSI, &none);
	assert_int_equal(qkd_ike_build_end(&b), QKD_ERR_INVAL);
	qkd_wbuf_reset(&w);
	qkd_ike_build_chain(&b, &w);
	for (size_t i = 0; i < QKD_IKE_MAX_PAYLOADS + 1; i++)
		qkd_ike_add_raw(&b, QKD_IKE_PT_VENDOR, false, body, 1);
	assert_int_equal(qkd_ike_build_end(&b), QKD_ERR_RANGE);
	qkd_wbuf_cleanup(&w);
}

/* ---- malformed input: typed payloads ---- */

#define RAW(type, ...) one_raw(type, (const uint8_t[]){ __VA_ARGS__ }, \
			       sizeof((const uint8_t[]){ __VA_ARGS__ }))

static void test_bad_simple_payloads(void **state)
{
	uint8_t n[QKD_IKE_NONCE_MAX + 1] = { 0 };
	struct qkd_ike_ke ke;
	struct qkd_ike_id id;
	struct qkd_ike_auth au;
	struct qkd_ike_span sp;

	(void)state;
	assert_int_equal(qkd_ike_ke_parse(RAW(QKD_IKE_PT_KE, 0, 31, 0, 0), &ke, &why), QKD_ERR_PROTO);
	assert_non_null(why);
	assert_int_equal(qkd_ike_ke_parse(RAW(QKD_IKE_PT_KE, 0, 31), &ke, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_ke_parse(RAW(QKD_IKE_PT_KE, 0, 31, 0, 0, 7), &ke, &why), 0);
	assert_int_equal(qkd_ike_id_parse(RAW(QKD_IKE_PT_IDI, 2, 0, 0, 0), &id, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_id_parse(RAW(QKD_IKE_PT_IDR, 2, 0), &id, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_auth_parse(RAW(QKD_IKE_PT_AUTH, 2, 0, 0, 0), &au, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_auth_parse(RAW(QKD_IKE_PT_AUTH, 2), &au, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_nonce_parse(one_raw(QKD_IKE_PT_NONCE, n, 15), &sp, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_nonce_parse(one_raw(QKD_IKE_PT_NONCE, n, 257), &sp, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_nonce_parse(one_raw(QKD_IKE_PT_NONCE, n, 0), &sp, &why), QKD_ERR_PROTO);
	/* A typed parse of a payload of another type. */
	assert_int_equal(qkd_ike_nonce_parse(RAW(QKD_IKE_PT_KE, 0, 31, 0, 0, 7), &sp, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_ke_parse(one_raw(QKD_IKE_PT_NONCE, n, 16), &ke, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_id_parse(RAW(QKD_IKE_PT_AUTH, 2, 0, 0, 0, 1), &id, &why), QKD_ERR_PROTO);
}

static void test_bad_notify_delete(void **state)
{
	struct qkd_ike_notify n;
	struct qkd_ike_delete d;

	(void)state;
	assert_int_equal(qkd_ike_notify_parse(RAW(QKD_IKE_PT_NOTIFY, 0, 0, 0), &n, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_notify_parse(RAW(QKD_IKE_PT_NOTIFY, 0, 3, 0x40, 6, 1, 2, 3), &n, &why),
			 QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_notify_parse(RAW(QKD_IKE_PT_NOTIFY, 3, 4, 0x40, 9, 1, 2), &n, &why),
			 QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_notify_parse(RAW(QKD_IKE_PT_NOTIFY, 3, 4, 0x40, 9, 1, 2, 3, 4), &n, &why), 0);
	/* Delete: truncated; IKE with an SPI; ESP with 8-octet SPIs; count and
	 * length disagreeing; ESP without SPIs; an unknown protocol. */
	assert_int_equal(qkd_ike_delete_parse(RAW(QKD_IKE_PT_DELETE, 1, 0, 0), &d, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_delete_parse(RAW(QKD_IKE_PT_DELETE, 1, 4, 0, 1, 1, 2, 3, 4), &d, &why),
			 QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_delete_parse(RAW(QKD_IKE_PT_DELETE, 3, 8, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8),
					      &d, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_delete_parse(RAW(QKD_IKE_PT_DELETE, 3, 4, 0, 2, 1, 2, 3, 4), &d, &why),
			 QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_delete_parse(RAW(QKD_IKE_PT_DELETE, 3, 4, 0, 1, 1, 2, 3, 4, 5), &d, &why),
			 QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_delete_parse(RAW(QKD_IKE_PT_DELETE, 3, 4, 0, 0), &d, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_delete_parse(RAW(QKD_IKE_PT_DELETE, 9, 4, 0, 1, 1, 2, 3, 4), &d, &why),
			 QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_delete_parse(RAW(QKD_IKE_PT_DELETE, 2, 4, 0, 1, 1, 2, 3, 4), &d, &why), 0);
}

#define V4SEL(t, l) t, 0, 0, l, 0, 0, 0xff, 0xff, 10, 0, 0, 1, 10, 0, 0, 2

static void test_bad_ts(void **state)
{
	struct qkd_ike_tss ts;

	(void)state;
	assert_int_equal(qkd_ike_ts_parse(RAW(QKD_IKE_PT_TSI, 1, 0, 0, 0, V4SEL(7, 16)), &ts, &why), 0);
	assert_int_equal(ts.n, 1);
	assert_int_equal(qkd_ike_ts_parse(RAW(QKD_IKE_PT_TSI, 0, 0, 0, 0), &ts, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_ts_parse(RAW(QKD_IKE_PT_TSI, 1, 0), &ts, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_ts_parse(RAW(QKD_IKE_PT_TSR, 9, 0, 0, 0, V4SEL(7, 16)), &ts, &why),
			 QKD_ERR_RANGE);
	/* Unknown selector type; a length wrong for IPv4; one cut short; two
	 * announced, one present; bytes after the selectors. */
	assert_int_equal(qkd_ike_ts_parse(RAW(QKD_IKE_PT_TSI, 1, 0, 0, 0, V4SEL(9, 16)), &ts, &why),
			 QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_ts_parse(RAW(QKD_IKE_PT_TSI, 1, 0, 0, 0, V4SEL(7, 40)), &ts, &why),
			 QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_ts_parse(RAW(QKD_IKE_PT_TSI, 1, 0, 0, 0, 7, 0, 0, 16, 0, 0, 0xff), &ts,
					  &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_ts_parse(RAW(QKD_IKE_PT_TSI, 2, 0, 0, 0, V4SEL(7, 16)), &ts, &why),
			 QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_ts_parse(RAW(QKD_IKE_PT_TSI, 1, 0, 0, 0, V4SEL(7, 16), 0), &ts, &why),
			 QKD_ERR_PROTO);
	/* An IPv6 selector announced with the IPv4 length. */
	assert_int_equal(qkd_ike_ts_parse(RAW(QKD_IKE_PT_TSI, 1, 0, 0, 0, V4SEL(8, 16)), &ts, &why),
			 QKD_ERR_PROTO);
}

static void test_bad_sk(void **state)
{
	uint8_t body[25] = { 0 };
	struct qkd_ike_sk sk;

	(void)state;
	assert_int_equal(qkd_ike_sk_parse(one_raw(QKD_IKE_PT_SK, body, 24), QKD_IKE_PT_IDI, 8, 16, &sk,
					  &why), QKD_ERR_PROTO);
	assert_non_null(why);
	assert_int_equal(qkd_ike_sk_parse(one_raw(QKD_IKE_PT_SK, body, 25), QKD_IKE_PT_IDI, 8, 16, &sk,
					  &why), 0);
	assert_int_equal(sk.ct.len, 1);
	assert_int_equal(qkd_ike_sk_parse(one_raw(QKD_IKE_PT_SK, body, 0), 0, 0, 0, &sk, &why),
			 QKD_ERR_PROTO);
}

/* One proposal (IKE, no SPI) with the given transforms' bytes. */
#define T_ENCR 0, 0, 0, 8, 1, 0, 0, 20
#define T_LAST_KL 0, 0, 0, 12, 1, 0, 0, 20, 0x80, 14, 1, 0
#define T_MORE 3, 0, 0, 8, 2, 0, 0, 5

static int sa_rc(const struct qkd_ike_pld *pld, struct qkd_ike_sa *sa)
{
	int rc = qkd_ike_sa_parse(pld, sa, &why);

	if (rc != 0)
		assert_non_null(why);
	return rc;
}

static void test_bad_sa(void **state)
{
	uint8_t many[4 + 8 * (QKD_IKE_MAX_PROPOSALS + 1) * 2];
	struct qkd_ike_sa sa;

	(void)state;
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 24, 1, 1, 0, 2, T_MORE, T_ENCR), &sa), 0);
	assert_int_equal(sa.p[0].nt, 2);
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 20, 1, 1, 0, 1, T_LAST_KL), &sa), 0);
	assert_int_equal(sa.p[0].t[0].key_bits, 256);
	assert_int_equal(sa_rc(one_raw(QKD_IKE_PT_SA, NULL, 0), &sa), QKD_ERR_PROTO);
	/* No transforms; a proposal marked "more" with none after; flags 1. */
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 8, 1, 1, 0, 0), &sa), QKD_ERR_PROTO);
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 2, 0, 0, 16, 1, 1, 0, 1, T_ENCR), &sa), QKD_ERR_PROTO);
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 1, 0, 0, 16, 1, 1, 0, 1, T_ENCR), &sa), QKD_ERR_PROTO);
	/* Proposal length below 8, overrunning, short of its transforms. */
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 7, 1, 1, 0, 1, T_ENCR), &sa), QKD_ERR_PROTO);
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 17, 1, 1, 0, 1, T_ENCR), &sa), QKD_ERR_PROTO);
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 12, 1, 1, 0, 1, T_ENCR), &sa), QKD_ERR_PROTO);
	/* SPI size 3; SPI overrunning the proposal. */
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 19, 1, 3, 3, 1, 1, 2, 3, T_ENCR), &sa),
			 QKD_ERR_PROTO);
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 10, 1, 3, 4, 1, 1, 2), &sa), QKD_ERR_PROTO);
	/* Count and "last" marks disagreeing, both ways. */
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 24, 1, 1, 0, 2, T_ENCR, T_ENCR), &sa),
			 QKD_ERR_PROTO);
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 16, 1, 1, 0, 1, T_MORE), &sa), QKD_ERR_PROTO);
	/* Transform: flag 1, length below 8, overrunning, bytes after it. */
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 16, 1, 1, 0, 1, 1, 0, 0, 8, 1, 0, 0, 20), &sa),
			 QKD_ERR_PROTO);
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 16, 1, 1, 0, 1, 0, 0, 0, 7, 1, 0, 0, 20), &sa),
			 QKD_ERR_PROTO);
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 16, 1, 1, 0, 1, 0, 0, 0, 9, 1, 0, 0, 20), &sa),
			 QKD_ERR_PROTO);
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 17, 1, 1, 0, 1, T_ENCR, 0), &sa), QKD_ERR_PROTO);
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 16, 1, 1, 0, 1, T_ENCR, 0), &sa), QKD_ERR_PROTO);
	/* Attributes: Key Length 0; a truncated one; a TLV overrunning; an
	 * unknown TV and a well-formed TLV, both flagged, not refused. */
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 20, 1, 1, 0, 1, 0, 0, 0, 12, 1, 0, 0, 20,
				   0x80, 14, 0, 0), &sa), QKD_ERR_PROTO);
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 18, 1, 1, 0, 1, 0, 0, 0, 10, 1, 0, 0, 20,
				   0x80, 14), &sa), QKD_ERR_PROTO);
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 21, 1, 1, 0, 1, 0, 0, 0, 13, 1, 0, 0, 20,
				   0, 99, 0, 2, 1), &sa), QKD_ERR_PROTO);
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 20, 1, 1, 0, 1, 0, 0, 0, 12, 1, 0, 0, 20,
				   0x80, 99, 0, 1), &sa), 0);
	assert_true(sa.p[0].t[0].unknown_attr);
	assert_int_equal(sa_rc(RAW(QKD_IKE_PT_SA, 0, 0, 0, 22, 1, 1, 0, 1, 0, 0, 0, 14, 1, 0, 0, 20,
				   0, 99, 0, 2, 1, 2), &sa), 0);
	assert_true(sa.p[0].t[0].unknown_attr);
	/* 17 transforms; 9 proposals. */
	{
		uint8_t b[8 + 8 * 17];

		memcpy(b, (const uint8_t[]){ 0, 0, 0, sizeof b, 1, 1, 0, 17 }, 8);
		for (size_t i = 0; i < 17; i++)
			memcpy(b + 8 + 8 * i, (const uint8_t[]){ i < 16 ? 3 : 0, 0, 0, 8, 1, 0, 0, 20 }, 8);
		assert_int_equal(sa_rc(one_raw(QKD_IKE_PT_SA, b, sizeof b), &sa), QKD_ERR_RANGE);
	}
	for (size_t i = 0; i < QKD_IKE_MAX_PROPOSALS + 1; i++)
		memcpy(many + 16 * i, (const uint8_t[]){ i < QKD_IKE_MAX_PROPOSALS ? 2 : 0, 0, 0, 16,
							 (uint8_t)(i + 1), 1, 0, 1, T_ENCR }, 16);
	assert_int_equal(sa_rc(one_raw(QKD_IKE_PT_SA, many, 16 * (QKD_IKE_MAX_PROPOSALS + 1)), &sa),
			 QKD_ERR_RANGE);
	many[16 * (QKD_IKE_MAX_PROPOSALS - 1)] = 0;
	assert_int_equal(sa_rc(one_raw(QKD_IKE_PT_SA, many, 16 * QKD_IKE_MAX_PROPOSALS), &sa), 0);
	assert_int_equal(sa.np, QKD_IKE_MAX_PROPOSALS);
}

static int teardown(void **state)
{
	(void)state;
	free(copy);
	copy = NULL;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_sa_init_roundtrip),
		cmocka_unit_test(test_auth_roundtrip),
		cmocka_unit_test(test_info_roundtrip),
		cmocka_unit_test(test_unknown_payloads),
		cmocka_unit_test(test_bad_header),
		cmocka_unit_test(test_bad_chain),
		cmocka_unit_test(test_build_bounds),
		cmocka_unit_test(test_bad_simple_payloads),
		cmocka_unit_test(test_bad_notify_delete),
		cmocka_unit_test(test_bad_ts),
		cmocka_unit_test(test_bad_sk),
		cmocka_unit_test(test_bad_sa),
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}
