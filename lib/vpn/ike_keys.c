/* ike_keys.c - the IKEv2 key schedule (RFC 7296 sections 2.13 to 2.18,
 * RFC 5282 section 7, RFC 8784 section 3, RFC 9867) over HMAC-SHA-256
 * from OpenSSL's EVP_MAC. Contracts in qkd/ike_keys.h.
 *
 * Every intermediate secret (prf+ blocks, the key pad, key sets under
 * construction) lives on the stack and is wiped before return, on every
 * path. The message layer beside it is ike_pld.c / ike_build.c.
 */
#include "qkd/ike_keys.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "qkd/error.h"
#include "qkd/secret.h"

#define NONCE_CAT_MAX (2 * QKD_IKE_NONCE_MAX)
#define KEY_PAD "Key Pad for IKEv2"	/* section 2.15, 17 octets, no NUL */

struct mac {
	EVP_MAC *alg;
	EVP_MAC_CTX *ctx;
};

static int mac_open(struct mac *m)
{
	m->alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	m->ctx = m->alg != NULL ? EVP_MAC_CTX_new(m->alg) : NULL;
	return m->ctx != NULL ? 0 : QKD_ERR_NOMEM;
}

static void mac_close(struct mac *m)
{
	EVP_MAC_CTX_free(m->ctx);	/* cleanses the keyed state */
	EVP_MAC_free(m->alg);
}

/* out = HMAC-SHA-256(key, pre | s[0..n) | post); pre and post may be empty. */
static int mac_run(struct mac *m, const uint8_t *key, size_t key_len, struct qkd_ike_span pre,
		   const struct qkd_ike_span *s, size_t n, struct qkd_ike_span post,
		   uint8_t out[QKD_IKE_PRF_LEN])
{
	OSSL_PARAM params[2] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	size_t olen = 0;
	int ok;

	ok = EVP_MAC_init(m->ctx, key, key_len, params);
	if (ok && pre.len > 0)
		ok = EVP_MAC_update(m->ctx, pre.p, pre.len);
	for (size_t i = 0; ok && i < n; i++)
		if (s[i].len > 0)
			ok = EVP_MAC_update(m->ctx, s[i].p, s[i].len);
	if (ok && post.len > 0)
		ok = EVP_MAC_update(m->ctx, post.p, post.len);
	if (ok)
		ok = EVP_MAC_final(m->ctx, out, &olen, QKD_IKE_PRF_LEN);
	if (!ok || olen != QKD_IKE_PRF_LEN) {
		qkd_wipe(out, QKD_IKE_PRF_LEN);
		return QKD_ERR_IO;
	}
	return 0;
}

static const struct qkd_ike_span none = { NULL, 0 };

int qkd_ike_prf(const uint8_t *key, size_t key_len, const struct qkd_ike_span *s, size_t n,
		uint8_t out[QKD_IKE_PRF_LEN])
{
	struct mac m;
	int rc;

	if (key == NULL || key_len == 0)
		return QKD_ERR_INVAL;
	if ((rc = mac_open(&m)) == 0)
		rc = mac_run(&m, key, key_len, none, s, n, none, out);
	mac_close(&m);
	return rc;
}

int qkd_ike_prfplus(const uint8_t *key, size_t key_len, const struct qkd_ike_span *s, size_t n,
		    uint8_t *out, size_t out_len)
{
	uint8_t t[QKD_IKE_PRF_LEN];
	struct mac m;
	size_t done = 0;
	int rc;

	if (key == NULL || key_len == 0 || out_len == 0 || out_len > QKD_IKE_PRFPLUS_MAX)
		return QKD_ERR_INVAL;
	if ((rc = mac_open(&m)) != 0)
		goto out;
	for (unsigned k = 1; done < out_len; k++) {
		uint8_t ctr = (uint8_t)k;
		struct qkd_ike_span prev = { t, k == 1 ? 0 : QKD_IKE_PRF_LEN };
		size_t take = out_len - done < QKD_IKE_PRF_LEN ? out_len - done : QKD_IKE_PRF_LEN;

		if ((rc = mac_run(&m, key, key_len, prev, s, n, (struct qkd_ike_span){ &ctr, 1 },
				  t)) != 0)
			break;
		memcpy(out + done, t, take);
		done += take;
	}
out:
	if (rc != 0)
		qkd_wipe(out, out_len);
	qkd_wipe(t, sizeof t);
	mac_close(&m);
	return rc;
}

static bool nonce_ok(struct qkd_ike_span n)
{
	return n.p != NULL && n.len >= QKD_IKE_NONCE_MIN && n.len <= QKD_IKE_NONCE_MAX;
}

int qkd_ike_skeyseed(struct qkd_ike_span ni, struct qkd_ike_span nr, struct qkd_ike_span gir,
		     uint8_t out[QKD_IKE_PRF_LEN])
{
	uint8_t key[NONCE_CAT_MAX];
	int rc;

	if (!nonce_ok(ni) || !nonce_ok(nr) || gir.p == NULL || gir.len == 0)
		return QKD_ERR_INVAL;
	/* The PRF key is the nonces themselves, concatenated (section 2.14). */
	memcpy(key, ni.p, ni.len);
	memcpy(key + ni.len, nr.p, nr.len);
	rc = qkd_ike_prf(key, ni.len + nr.len, &gir, 1, out);
	qkd_wipe(key, sizeof key);
	return rc;
}

int qkd_ike_skeyseed_rekey(const uint8_t sk_d_old[QKD_IKE_PRF_LEN], struct qkd_ike_span gir_new,
			   struct qkd_ike_span ni, struct qkd_ike_span nr,
			   uint8_t out[QKD_IKE_PRF_LEN])
{
	struct qkd_ike_span s[3] = { gir_new, ni, nr };

	if (!nonce_ok(ni) || !nonce_ok(nr) || gir_new.p == NULL || gir_new.len == 0)
		return QKD_ERR_INVAL;
	return qkd_ike_prf(sk_d_old, QKD_IKE_PRF_LEN, s, 3, out);
}

void qkd_ike_sa_keys_wipe(struct qkd_ike_sa_keys *k)
{
	if (k != NULL)
		qkd_wipe(k, sizeof *k);
}

int qkd_ike_sa_keys_derive(const uint8_t skeyseed[QKD_IKE_PRF_LEN], struct qkd_ike_span ni,
			   struct qkd_ike_span nr, const uint8_t spi_i[8], const uint8_t spi_r[8],
			   size_t aes_key_len, struct qkd_ike_sa_keys *out)
{
	struct qkd_ike_span s[4] = { ni, nr, { spi_i, 8 }, { spi_r, 8 } };
	uint8_t buf[3 * QKD_IKE_PRF_LEN + 2 * QKD_IKE_ENC_MAX];
	size_t e = aes_key_len + QKD_IKE_GCM_SALT_LEN, total = 3 * QKD_IKE_PRF_LEN + 2 * e;
	uint8_t *p = buf;
	int rc;

	memset(out, 0, sizeof *out);
	if ((aes_key_len != 16 && aes_key_len != 24 && aes_key_len != 32) || !nonce_ok(ni) ||
	    !nonce_ok(nr))
		return QKD_ERR_INVAL;
	if ((rc = qkd_ike_prfplus(skeyseed, QKD_IKE_PRF_LEN, s, 4, buf, total)) != 0)
		goto out;
	/* Order of section 2.14; SK_ai and SK_ar take no octets (AEAD). */
	memcpy(out->sk_d, p, QKD_IKE_PRF_LEN);
	p += QKD_IKE_PRF_LEN;
	memcpy(out->sk_ei, p, e);
	p += e;
	memcpy(out->sk_er, p, e);
	p += e;
	memcpy(out->sk_pi, p, QKD_IKE_PRF_LEN);
	p += QKD_IKE_PRF_LEN;
	memcpy(out->sk_pr, p, QKD_IKE_PRF_LEN);
	out->enc_len = e;
out:
	qkd_wipe(buf, sizeof buf);
	return rc;
}

int qkd_ike_child_keymat(const uint8_t sk_d[QKD_IKE_PRF_LEN], struct qkd_ike_span gir_new,
			 struct qkd_ike_span ni, struct qkd_ike_span nr, uint8_t *out,
			 size_t out_len)
{
	struct qkd_ike_span s[3] = { gir_new, ni, nr };

	if (!nonce_ok(ni) || !nonce_ok(nr) || (gir_new.len > 0 && gir_new.p == NULL))
		return QKD_ERR_INVAL;
	/* An empty g^ir adds nothing to the input: KEYMAT = prf+(SK_d, Ni | Nr). */
	return qkd_ike_prfplus(sk_d, QKD_IKE_PRF_LEN, s, 3, out, out_len);
}

int qkd_ike_ppk_mix_sk_d(const uint8_t sk_d[QKD_IKE_PRF_LEN], const uint8_t *ppk, size_t ppk_len,
			 uint8_t out[QKD_IKE_PRF_LEN])
{
	uint8_t tmp[QKD_IKE_PRF_LEN];
	struct qkd_ike_span s = { sk_d, QKD_IKE_PRF_LEN };
	int rc;

	/* Through tmp, so that out may alias sk_d. */
	rc = qkd_ike_prfplus(ppk, ppk_len, &s, 1, tmp, sizeof tmp);
	if (rc == 0)
		memcpy(out, tmp, sizeof tmp);
	qkd_wipe(tmp, sizeof tmp);
	return rc;
}

int qkd_ike_ppk_mix_auth(const struct qkd_ike_sa_keys *in, const uint8_t *ppk, size_t ppk_len,
			 struct qkd_ike_sa_keys *out)
{
	struct qkd_ike_sa_keys tmp;
	int rc;

	tmp = *in;
	rc = qkd_ike_ppk_mix_sk_d(in->sk_d, ppk, ppk_len, tmp.sk_d);
	if (rc == 0)
		rc = qkd_ike_ppk_mix_sk_d(in->sk_pi, ppk, ppk_len, tmp.sk_pi);
	if (rc == 0)
		rc = qkd_ike_ppk_mix_sk_d(in->sk_pr, ppk, ppk_len, tmp.sk_pr);
	if (rc == 0)
		*out = tmp;
	qkd_ike_sa_keys_wipe(&tmp);
	return rc;
}

int qkd_ike_ppk_confirm(const uint8_t *ppk, size_t ppk_len, struct qkd_ike_span ni,
			struct qkd_ike_span nr, const uint8_t spi_i[8], const uint8_t spi_r[8],
			uint8_t out[QKD_IKE_PPK_CONFIRM_LEN])
{
	struct qkd_ike_span s[4] = { ni, nr, { spi_i, 8 }, { spi_r, 8 } };
	uint8_t full[QKD_IKE_PRF_LEN];
	int rc;

	/* Nr may be empty: a CREATE_CHILD_SA request precedes the responder's
	 * nonce (docs/ike.md "State machine", our reading of RFC 9867). */
	if (!nonce_ok(ni) || (nr.len != 0 && !nonce_ok(nr)))
		return QKD_ERR_INVAL;
	rc = qkd_ike_prf(ppk, ppk_len, s, 4, full);
	if (rc == 0)
		memcpy(out, full, QKD_IKE_PPK_CONFIRM_LEN);
	qkd_wipe(full, sizeof full);
	return rc;
}

int qkd_ike_ppk_confirm_check(const uint8_t *ppk, size_t ppk_len, struct qkd_ike_span ni,
			      struct qkd_ike_span nr, const uint8_t spi_i[8],
			      const uint8_t spi_r[8], struct qkd_ike_span got)
{
	uint8_t want[QKD_IKE_PPK_CONFIRM_LEN];
	int rc = qkd_ike_ppk_confirm(ppk, ppk_len, ni, nr, spi_i, spi_r, want);

	if (rc == 0 && (got.len != sizeof want || !qkd_ct_equal(want, got.p, sizeof want)))
		rc = QKD_ERR_VERIFY;
	qkd_wipe(want, sizeof want);
	return rc;
}

int qkd_ike_psk_auth(const uint8_t *psk, size_t psk_len, const struct qkd_ike_auth_input *in,
		     uint8_t out[QKD_IKE_PRF_LEN])
{
	static const struct qkd_ike_span pad_text = { (const uint8_t *)KEY_PAD,
						       sizeof KEY_PAD - 1 };
	uint8_t pad[QKD_IKE_PRF_LEN], maced[QKD_IKE_PRF_LEN];
	struct qkd_ike_span signed_octets[3] = { in->real_message, in->peer_nonce,
						 { maced, sizeof maced } };
	int rc;

	if (in->sk_p == NULL || in->real_message.len == 0 || in->id_body.len == 0)
		return QKD_ERR_INVAL;
	rc = qkd_ike_prf(psk, psk_len, &pad_text, 1, pad);
	if (rc == 0)
		rc = qkd_ike_prf(in->sk_p, QKD_IKE_PRF_LEN, &in->id_body, 1, maced);
	if (rc == 0)
		rc = qkd_ike_prf(pad, sizeof pad, signed_octets, 3, out);
	qkd_wipe(pad, sizeof pad);
	qkd_wipe(maced, sizeof maced);
	return rc;
}

int qkd_ike_psk_auth_check(const uint8_t *psk, size_t psk_len, const struct qkd_ike_auth_input *in,
			   struct qkd_ike_span got)
{
	uint8_t want[QKD_IKE_PRF_LEN];
	int rc = qkd_ike_psk_auth(psk, psk_len, in, want);

	if (rc == 0 && (got.len != sizeof want || !qkd_ct_equal(want, got.p, sizeof want)))
		rc = QKD_ERR_VERIFY;
	qkd_wipe(want, sizeof want);
	return rc;
}
