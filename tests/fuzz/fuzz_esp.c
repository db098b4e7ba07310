/* libFuzzer target: ESP decapsulation (lib/vpn/esp_packet.c) of arbitrary
 * bytes on one inbound SA with a fixed key, plus the SPI peek and the
 * UDP/4500 classification of each packet. The input, read with the bounded
 * reader:
 *
 *   u8 flags (bit 0: the SA uses ESN), then up to 16 records
 *   { u8 kind; u16 length; length bytes }:
 *     kind bit 0 clear: the bytes are a packet from the wire, as they are;
 *     kind bit 0 set:   u32 sequence number, then a plaintext which the
 *                       harness seals with OpenSSL directly under the SA's
 *                       key (an authentic packet with any trailer, so the
 *                       fuzzer reaches the padding checks behind the ICV).
 *
 * Besides not crashing or reading out of bounds, it checks the layer's
 * promises: success only for a packet whose ICV OpenSSL verifies
 * independently; then the inner packet is a prefix of that plaintext,
 * followed by padding 1, 2, 3..., the pad length and the next header it
 * returned. Any failure leaves out_len 0 and the output wiped. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "qkd/error.h"
#include "qkd/esp.h"
#include "qkd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_SPI 0x0a0b0c0du
#define FZ_MAX 2048

static const uint8_t fz_keymat[36] = {
	0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0,
	0x85, 0x7d, 0x77, 0x81, 0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7,
	0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4, 0xca, 0xfe, 0xba, 0xbe,
};

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* The AEAD over a packet's fields with OpenSSL alone: seal (pt -> the
 * packet's ciphertext and ICV) or open (returns true if the ICV verifies,
 * plaintext into pt). AAD per RFC 4106 s5 with the full sequence number. */
static bool ref_aead(bool seal, bool esn, uint64_t seq, uint8_t *pkt, size_t ct_len, uint8_t *pt)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t nonce[12], aad[12];
	size_t alen = esn ? 12 : 8;
	int m, ok;

	if (c == NULL)
		abort();
	be32(aad, FZ_SPI);
	be32(aad + 4, esn ? (uint32_t)(seq >> 32) : (uint32_t)seq);
	be32(aad + 8, (uint32_t)seq);
	memcpy(nonce, fz_keymat + 32, 4);
	memcpy(nonce + 4, pkt + 8, 8);
	if (seal)
		ok = EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, fz_keymat, nonce) == 1 &&
		     EVP_EncryptUpdate(c, NULL, &m, aad, (int)alen) == 1 &&
		     EVP_EncryptUpdate(c, pkt + 16, &m, pt, (int)ct_len) == 1 &&
		     EVP_EncryptFinal_ex(c, pkt + 16 + ct_len, &m) == 1 &&
		     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, pkt + 16 + ct_len) == 1;
	else
		ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, fz_keymat, nonce) == 1 &&
		     EVP_DecryptUpdate(c, NULL, &m, aad, (int)alen) == 1 &&
		     EVP_DecryptUpdate(c, pt, &m, pkt + 16, (int)ct_len) == 1 &&
		     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, pkt + 16 + ct_len) == 1 &&
		     EVP_DecryptFinal_ex(c, pt + ct_len, &m) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok;
}

/* A success must be an authentic packet with a well-formed trailer. The
 * full sequence number is not returned, so every high half that the
 * window could have inferred (the top's span and its neighbours) is tried. */
static void check_success(bool esn, uint64_t top, const uint8_t *pkt, size_t len,
			  const uint8_t *out, size_t out_len, uint8_t nh)
{
	static uint8_t copy[FZ_MAX + 64], pt[FZ_MAX + 64];
	size_t ct_len = len - 32, pad;
	uint32_t low = (uint32_t)pkt[4] << 24 | (uint32_t)pkt[5] << 16 | (uint32_t)pkt[6] << 8 | pkt[7];
	uint64_t th = top >> 32;
	bool ok = false;

	memcpy(copy, pkt, len);
	for (int d = -1; d <= 1 && !ok; d++) {
		if (!esn && d != 0)
			continue;
		ok = ref_aead(false, esn, (esn ? (th + (uint64_t)(int64_t)d) << 32 : 0) | low, copy,
			      ct_len, pt);
	}
	if (!ok || out_len + 2 > ct_len || pt[ct_len - 1] != nh)
		abort();
	pad = pt[ct_len - 2];
	if (out_len + pad + 2 != ct_len || memcmp(out, pt, out_len) != 0)
		abort();
	for (size_t i = 0; i < pad; i++)
		if (pt[out_len + i] != (uint8_t)(i + 1))
			abort();
}

static void one_packet(struct qkd_esp_sa *sa, bool esn, uint64_t *top, uint8_t kind,
		       const uint8_t *body, size_t n)
{
	static uint8_t pkt[FZ_MAX + 64], out[FZ_MAX + 64], plain[FZ_MAX];
	size_t len = n, out_len = 99;
	uint8_t nh = 99;
	uint32_t spi;
	int rc;

	if ((kind & 1) == 0) {
		memcpy(pkt, body, n);
	} else {
		struct qkd_rbuf r;
		uint32_t seq;

		qkd_rbuf_init(&r, body, n);
		seq = qkd_get_u32(&r);
		if (!qkd_rbuf_ok(&r))
			return;
		n = qkd_rbuf_left(&r);
		qkd_get_copy(&r, plain, n);
		be32(pkt, FZ_SPI);
		be32(pkt + 4, seq);
		be32(pkt + 8, (uint32_t)(*top >> 32));
		be32(pkt + 12, seq);
		if (!ref_aead(true, esn, (esn ? *top & ~(uint64_t)UINT32_MAX : 0) | seq, pkt, n, plain))
			abort();
		len = 16 + n + 16;
	}
	(void)qkd_esp_udp_classify(pkt, len);
	if (qkd_esp_peek_spi(pkt, len, &spi) == 0 && len < 8)
		abort();
	memset(out, 0xa5, sizeof out);
	rc = qkd_esp_decapsulate(sa, pkt, len, out, sizeof out, &out_len, &nh);
	if (rc == QKD_OK) {
		uint64_t s = (uint32_t)pkt[4] << 24 | (uint32_t)pkt[5] << 16 | (uint32_t)pkt[6] << 8 | pkt[7];

		check_success(esn, *top, pkt, len, out, out_len, nh);
		if (!esn && s > *top)
			*top = s;
		return;
	}
	if (out_len != 0 || nh != 0)
		abort();
	if (rc == QKD_ERR_VERIFY || rc == QKD_ERR_PROTO)
		for (size_t i = 0; len >= 32 && i < len - 32 && i < sizeof out; i++)
			if (out[i] != 0 && out[i] != 0xa5)
				abort();	/* unauthenticated or rejected plaintext left behind */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qkd_esp_params p = { .dir = QKD_ESP_IN, .spi = FZ_SPI, .keymat = fz_keymat,
				    .keymat_len = sizeof fz_keymat };
	struct qkd_esp_sa *sa = NULL;
	struct qkd_rbuf in;
	uint64_t top = 0;

	qkd_rbuf_init(&in, data, size);
	p.esn = (qkd_get_u8(&in) & 1) != 0;
	if (!qkd_rbuf_ok(&in) || qkd_esp_sa_new(&p, &sa) != QKD_OK)
		return 0;
	for (int k = 0; k < 16 && qkd_rbuf_left(&in) > 0; k++) {
		uint8_t kind = qkd_get_u8(&in);
		size_t n = qkd_get_u16(&in);
		const uint8_t *body;

		if (n > FZ_MAX || n > qkd_rbuf_left(&in))
			n = qkd_rbuf_left(&in) < FZ_MAX ? qkd_rbuf_left(&in) : FZ_MAX;
		body = qkd_get_bytes(&in, n);
		if (!qkd_rbuf_ok(&in))
			break;
		one_packet(sa, p.esn, &top, kind, body, n);
	}
	qkd_esp_sa_free(sa);
	return 0;
}
