/* ike_corpus.c - writes the seed corpus of tests/fuzz/fuzz_ike.c with the
 * message builder (lib/vpn/ike_build.c): one file per message shape the
 * gateway exchanges (IKE_SA_INIT with X25519 and MODP-2048 and a COOKIE,
 * IKE_AUTH with an SK payload whose "ciphertext" is a real inner chain,
 * CREATE_CHILD_SA, INFORMATIONAL with Deletes), plus unknown payloads.
 *
 *     build/tests/tools/ike_corpus tests/fuzz/corpus/ike
 */
#include <stdio.h>
#include <string.h>

#include "qkd/ike_pld.h"

static const struct qkd_ike_hdr base = {
	.spi_i = { 0x8a, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77 },
	.exchange = QKD_IKE_SA_INIT, .flags = QKD_IKE_FLAG_I,
};

static uint8_t pattern[512];

static int save(const char *dir, const char *name, struct qkd_ike_builder *b)
{
	char path[4096];
	FILE *f;
	int rc = qkd_ike_build_end(b);

	if (rc != 0) {
		fprintf(stderr, "ike_corpus: %s: build failed (%d)\n", name, rc);
		return 1;
	}
	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(b->w->p, 1, b->w->len, f) != b->w->len || fclose(f) != 0) {
		perror(path);
		return 1;
	}
	qkd_wbuf_reset(b->w);
	return 0;
}

static void ike_sa(struct qkd_ike_sa *sa, uint16_t group)
{
	memset(sa, 0, sizeof *sa);
	sa->np = 1;
	sa->p[0] = (struct qkd_ike_proposal){ .num = 1, .protocol = QKD_IKE_PROTO_IKE, .nt = 3 };
	sa->p[0].t[0] = (struct qkd_ike_transform){ QKD_IKE_TT_ENCR, QKD_IKE_ENCR_AES_GCM_16, 256, false };
	sa->p[0].t[1] = (struct qkd_ike_transform){ QKD_IKE_TT_PRF, QKD_IKE_PRF_HMAC_SHA2_256, 0, false };
	sa->p[0].t[2] = (struct qkd_ike_transform){ QKD_IKE_TT_KE, group, 0, false };
}

static void esp_sa(struct qkd_ike_sa *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->np = 1;
	sa->p[0] = (struct qkd_ike_proposal){ .num = 1, .protocol = QKD_IKE_PROTO_ESP, .spi_len = 4,
					      .spi = { 0xc1, 0xc2, 0xc3, 0xc4 }, .nt = 2 };
	sa->p[0].t[0] = (struct qkd_ike_transform){ QKD_IKE_TT_ENCR, QKD_IKE_ENCR_AES_GCM_16, 256, false };
	sa->p[0].t[1] = (struct qkd_ike_transform){ QKD_IKE_TT_ESN, 0, 0, false };
}

static void tss(struct qkd_ike_tss *t, uint8_t net)
{
	memset(t, 0, sizeof *t);
	t->n = 2;
	t->ts[0] = (struct qkd_ike_ts){ .type = QKD_IKE_TS_IPV4, .end_port = 65535,
					.start = { 10, net, 0, 0 }, .end = { 10, net, 255, 255 } };
	t->ts[1] = (struct qkd_ike_ts){ .type = QKD_IKE_TS_IPV6, .end_port = 65535,
					.start = { 0xfd, 0, net }, .end = { 0xfd, 0, net } };
	memset(t->ts[1].end + 3, 0xff, 13);
}

static int sa_init(const char *dir, struct qkd_wbuf *w, uint16_t group, size_t publen, bool cookie)
{
	struct qkd_ike_builder b;
	struct qkd_ike_sa sa;
	struct qkd_ike_ke ke = { group, { pattern, publen } };
	struct qkd_ike_notify n = { .type = QKD_IKE_N_COOKIE, .data = { pattern + 3, 16 } };
	struct qkd_ike_notify ppk = { .type = QKD_IKE_N_USE_PPK };

	qkd_ike_build_msg(&b, w, &base);
	if (cookie)
		qkd_ike_add_notify(&b, &n);
	ike_sa(&sa, group);
	qkd_ike_add_sa(&b, &sa);
	qkd_ike_add_ke(&b, &ke);
	qkd_ike_add_nonce(&b, pattern + 7, 32);
	qkd_ike_add_notify(&b, &ppk);
	return save(dir, group == QKD_IKE_GROUP_X25519 ? (cookie ? "sa_init_cookie" : "sa_init_x25519")
			 : "sa_init_modp2048", &b);
}

/* IKE_AUTH: SK whose ciphertext is the inner chain itself (the fuzz target
 * treats the cipher as the identity). */
static int auth(const char *dir, struct qkd_wbuf *w)
{
	static const char fqdn[] = "gw-a.example";
	struct qkd_ike_builder b;
	struct qkd_wbuf in;
	struct qkd_ike_id id = { QKD_IKE_ID_FQDN, { (const uint8_t *)fqdn, sizeof fqdn - 1 } };
	struct qkd_ike_auth au = { QKD_IKE_AUTH_PSK, { pattern, 32 } };
	struct qkd_ike_notify pid = { .type = QKD_IKE_N_PPK_IDENTITY, .data = { pattern, 9 } };
	struct qkd_ike_sa sa;
	struct qkd_ike_tss t;
	struct qkd_ike_sk sk;
	int rc;

	qkd_wbuf_init(&in);
	qkd_ike_build_chain(&b, &in);
	qkd_ike_add_id(&b, QKD_IKE_PT_IDI, &id);
	qkd_ike_add_auth(&b, &au);
	qkd_ike_add_notify(&b, &pid);
	esp_sa(&sa);
	qkd_ike_add_sa(&b, &sa);
	tss(&t, 1);
	qkd_ike_add_ts(&b, QKD_IKE_PT_TSI, &t);
	tss(&t, 2);
	qkd_ike_add_ts(&b, QKD_IKE_PT_TSR, &t);
	rc = qkd_ike_build_end(&b);
	sk = (struct qkd_ike_sk){ b.first, { pattern, 8 }, { in.p, in.len }, { pattern + 8, 16 } };
	if (rc == 0) {
		struct qkd_ike_hdr h = base;

		h.exchange = QKD_IKE_AUTH;
		h.msg_id = 1;
		qkd_ike_build_msg(&b, w, &h);
		qkd_ike_add_sk(&b, &sk);
		rc = save(dir, "auth_sk", &b);
	}
	qkd_wbuf_cleanup(&in);
	return rc;
}

static int child_and_info(const char *dir, struct qkd_wbuf *w)
{
	static const uint8_t spis[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct qkd_ike_hdr h = base;
	struct qkd_ike_builder b;
	struct qkd_ike_sa sa;
	struct qkd_ike_tss t;
	struct qkd_ike_ke ke = { QKD_IKE_GROUP_X25519, { pattern + 1, 32 } };
	struct qkd_ike_notify rk = { QKD_IKE_PROTO_ESP, { spis, 4 }, QKD_IKE_N_REKEY_SA, { NULL, 0 } };
	struct qkd_ike_notify pk = { .type = QKD_IKE_N_PPK_IDENTITY_KEY, .data = { pattern, 17 } };
	struct qkd_ike_delete d1 = { QKD_IKE_PROTO_IKE, 0, 0, { NULL, 0 } };
	struct qkd_ike_delete d2 = { QKD_IKE_PROTO_ESP, 4, 2, { spis, 8 } };
	int rc;

	h.exchange = QKD_IKE_CREATE_CHILD_SA;
	h.msg_id = 2;
	qkd_ike_build_chain(&b, w);	/* the plaintext of a CREATE_CHILD_SA request */
	qkd_ike_add_notify(&b, &rk);
	qkd_ike_add_notify(&b, &pk);
	esp_sa(&sa);
	qkd_ike_add_sa(&b, &sa);
	qkd_ike_add_nonce(&b, pattern + 40, 32);
	qkd_ike_add_ke(&b, &ke);
	tss(&t, 3);
	qkd_ike_add_ts(&b, QKD_IKE_PT_TSI, &t);
	qkd_ike_add_ts(&b, QKD_IKE_PT_TSR, &t);
	if (qkd_ike_build_end(&b) != 0)
		return 1;
	/* As a clear message (as if outside SK), so every payload is reached. */
	{
		struct qkd_wbuf body;
		uint8_t first = b.first;

		qkd_wbuf_init(&body);
		qkd_put_bytes(&body, w->p, w->len);
		qkd_wbuf_reset(w);
		qkd_ike_build_msg(&b, w, &h);
		qkd_ike_add_raw(&b, 199, false, pattern, 5);	/* unknown, skipped */
		qkd_put_bytes(w, body.p, body.len);
		w->p[b.next_at] = first;
		qkd_wbuf_cleanup(&body);
		rc = save(dir, "create_child_sa", &b);
	}
	h.exchange = QKD_IKE_INFORMATIONAL;
	h.msg_id = 3;
	qkd_ike_build_msg(&b, w, &h);
	qkd_ike_add_delete(&b, &d1);
	qkd_ike_add_delete(&b, &d2);
	return rc | save(dir, "informational_delete", &b);
}

int main(int argc, char **argv)
{
	struct qkd_wbuf w;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: ike_corpus DIR\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof pattern; i++)
		pattern[i] = (uint8_t)(i * 37 + 11);
	qkd_wbuf_init(&w);
	rc = sa_init(argv[1], &w, QKD_IKE_GROUP_X25519, 32, false);
	rc |= sa_init(argv[1], &w, QKD_IKE_GROUP_MODP2048, 256, false);
	rc |= sa_init(argv[1], &w, QKD_IKE_GROUP_X25519, 32, true);
	rc |= auth(argv[1], &w);
	rc |= child_and_info(argv[1], &w);
	qkd_wbuf_cleanup(&w);
	return rc;
}
