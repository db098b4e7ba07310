/* ike_sk.c - seal and open the IKEv2 Encrypted payload with AES-GCM-16
 * (qkd/ike_sk.h; RFC 7296 section 3.14, RFC 5282 sections 3 to 5). The
 * message layout comes from the builder and parser of qkd/ike_pld.h; the
 * state machine (ike_sa*.c) calls these for every message after
 * IKE_SA_INIT. */
#include "qkd/ike_sk.h"

#include <string.h>

#include <openssl/evp.h>

#include "qkd/error.h"
#include "qkd/ike_keys.h"
#include "qkd/secret.h"

static const EVP_CIPHER *gcm_of(size_t enc_len)
{
	if (enc_len == 16 + QKD_IKE_GCM_SALT_LEN)
		return EVP_aes_128_gcm();
	if (enc_len == 32 + QKD_IKE_GCM_SALT_LEN)
		return EVP_aes_256_gcm();
	return NULL;
}

/* The nonce of RFC 5282 section 4: salt | explicit IV (12 octets). */
static void gcm_nonce(const uint8_t *sk_e, size_t enc_len, const uint8_t *iv, uint8_t n[12])
{
	memcpy(n, sk_e + enc_len - QKD_IKE_GCM_SALT_LEN, QKD_IKE_GCM_SALT_LEN);
	memcpy(n + QKD_IKE_GCM_SALT_LEN, iv, QKD_IKE_SK_IV_LEN);
}

static bool len_ok(size_t aad_len, size_t len)
{
	return aad_len <= QKD_IKE_MSG_MAX && len <= QKD_IKE_MSG_MAX;
}

int qkd_ike_gcm_seal(const uint8_t *sk_e, size_t enc_len, const uint8_t iv[QKD_IKE_SK_IV_LEN],
		     const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t len, uint8_t *ct,
		     uint8_t icv[QKD_IKE_SK_ICV_LEN])
{
	const EVP_CIPHER *c = gcm_of(enc_len);
	EVP_CIPHER_CTX *x = NULL;
	uint8_t nonce[12];
	int n, rc = QKD_ERR_INVAL;

	if (c == NULL || sk_e == NULL || iv == NULL || !len_ok(aad_len, len) ||
	    (len > 0 && (pt == NULL || ct == NULL)) || (aad_len > 0 && aad == NULL))
		goto out;
	rc = QKD_ERR_NOMEM;
	gcm_nonce(sk_e, enc_len, iv, nonce);
	x = EVP_CIPHER_CTX_new();
	if (x == NULL || EVP_EncryptInit_ex(x, c, NULL, sk_e, nonce) != 1)
		goto out;
	if (aad_len > 0 && EVP_EncryptUpdate(x, NULL, &n, aad, (int)aad_len) != 1)
		goto out;
	if (len > 0 && EVP_EncryptUpdate(x, ct, &n, pt, (int)len) != 1)
		goto out;
	if (EVP_EncryptFinal_ex(x, ct + len, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, QKD_IKE_SK_ICV_LEN, icv) != 1)
		goto out;
	rc = QKD_OK;
out:
	EVP_CIPHER_CTX_free(x);
	qkd_wipe(nonce, sizeof nonce);
	return rc;
}

int qkd_ike_gcm_open(const uint8_t *sk_e, size_t enc_len, const uint8_t iv[QKD_IKE_SK_IV_LEN],
		     const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t len,
		     const uint8_t icv[QKD_IKE_SK_ICV_LEN], uint8_t *pt)
{
	const EVP_CIPHER *c = gcm_of(enc_len);
	EVP_CIPHER_CTX *x = NULL;
	uint8_t nonce[12], tag[QKD_IKE_SK_ICV_LEN];
	int n, rc = QKD_ERR_INVAL;

	if (c == NULL || sk_e == NULL || iv == NULL || icv == NULL || !len_ok(aad_len, len) ||
	    (len > 0 && (pt == NULL || ct == NULL)) || (aad_len > 0 && aad == NULL))
		goto out;
	rc = QKD_ERR_NOMEM;
	memcpy(tag, icv, sizeof tag);
	gcm_nonce(sk_e, enc_len, iv, nonce);
	x = EVP_CIPHER_CTX_new();
	if (x == NULL || EVP_DecryptInit_ex(x, c, NULL, sk_e, nonce) != 1)
		goto out;
	if (aad_len > 0 && EVP_DecryptUpdate(x, NULL, &n, aad, (int)aad_len) != 1)
		goto out;
	if (len > 0 && EVP_DecryptUpdate(x, pt, &n, ct, (int)len) != 1)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, sizeof tag, tag) != 1)
		goto out;
	rc = EVP_DecryptFinal_ex(x, pt + len, &n) == 1 ? QKD_OK : QKD_ERR_VERIFY;
	if (rc != QKD_OK && len > 0)
		qkd_wipe(pt, len);
out:
	EVP_CIPHER_CTX_free(x);
	qkd_wipe(nonce, sizeof nonce);
	return rc;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* The message is built with the plaintext (and a zero Pad Length octet)
 * in the ciphertext's place and a zero ICV, so the builder writes every
 * length; then the ciphertext replaces the plaintext in place. out is
 * grown first, so no copy of the plaintext is left behind by a realloc. The AAD is
 * everything before the IV: header, (no other payload), SK generic header. */
int qkd_ike_sk_seal(const struct qkd_ike_hdr *h, uint8_t first, const uint8_t *inner,
		    size_t len, const uint8_t *sk_e, size_t enc_len, uint64_t iv,
		    struct qkd_wbuf *out)
{
	struct qkd_ike_builder b;
	struct qkd_wbuf pt;
	uint8_t ivb[QKD_IKE_SK_IV_LEN], zero_icv[QKD_IKE_SK_ICV_LEN] = { 0 };
	struct qkd_ike_sk sk;
	size_t start = out->len, ct_at;
	int rc = QKD_ERR_INVAL;

	qkd_wbuf_init_secret(&pt);
	if (gcm_of(enc_len) == NULL || (len > 0 && inner == NULL))
		goto out;
	qkd_put_bytes(&pt, inner, len);
	qkd_put_u8(&pt, 0);	/* Pad Length: no padding */
	rc = pt.err;
	if (rc != QKD_OK)
		goto out;
	rc = qkd_wbuf_reserve(out, QKD_IKE_HDR_LEN + QKD_IKE_GEN_LEN + QKD_IKE_SK_IV_LEN +
				     pt.len + QKD_IKE_SK_ICV_LEN);
	if (rc != QKD_OK)
		goto out;
	put_be64(ivb, iv);
	sk = (struct qkd_ike_sk){ .inner = len > 0 ? first : QKD_IKE_PT_NONE,
				  .iv = { ivb, sizeof ivb }, .ct = { pt.p, pt.len },
				  .icv = { zero_icv, sizeof zero_icv } };
	qkd_ike_build_msg(&b, out, h);
	qkd_ike_add_sk(&b, &sk);
	rc = qkd_ike_build_end(&b);
	if (rc != QKD_OK)
		goto out;
	ct_at = out->len - QKD_IKE_SK_ICV_LEN - pt.len;
	rc = qkd_ike_gcm_seal(sk_e, enc_len, ivb, out->p + start,
			      ct_at - QKD_IKE_SK_IV_LEN - start, pt.p, pt.len, out->p + ct_at,
			      out->p + out->len - QKD_IKE_SK_ICV_LEN);
out:
	if (rc != QKD_OK && start < out->len) {
		qkd_wipe(out->p + start, out->len - start);
		out->len = start;
	}
	qkd_wbuf_cleanup(&pt);
	return rc;
}

int qkd_ike_sk_open(const uint8_t *msg, size_t len, const struct qkd_ike_msg *m,
		    const uint8_t *sk_e, size_t enc_len, uint8_t *pt, size_t cap, size_t *pt_len)
{
	struct qkd_ike_sk sk;
	const char *why;
	size_t pad;
	int rc = QKD_ERR_INVAL;

	*pt_len = 0;
	if (m->n == 0 || m->pld[m->n - 1].type != QKD_IKE_PT_SK || gcm_of(enc_len) == NULL)
		goto out;
	rc = qkd_ike_sk_parse(&m->pld[m->n - 1], m->inner, QKD_IKE_SK_IV_LEN, QKD_IKE_SK_ICV_LEN,
			      &sk, &why);
	if (rc != QKD_OK)
		goto out;
	rc = QKD_ERR_INVAL;
	if (sk.iv.p < msg || sk.iv.p > msg + len || cap < sk.ct.len)
		goto out;
	rc = qkd_ike_gcm_open(sk_e, enc_len, sk.iv.p, msg, (size_t)(sk.iv.p - msg), sk.ct.p,
			      sk.ct.len, sk.icv.p, pt);
	if (rc != QKD_OK)
		goto out;
	pad = pt[sk.ct.len - 1];
	rc = QKD_ERR_PROTO;
	if (pad + 1 > sk.ct.len) {
		qkd_wipe(pt, sk.ct.len);
		goto out;
	}
	*pt_len = sk.ct.len - pad - 1;
	rc = QKD_OK;
out:
	return rc;
}
