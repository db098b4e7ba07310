/* ike_dh.c - X25519 and MODP-2048 key exchange for IKEv2 KE payloads
 * (qkd/ike_dh.h; RFC 7296 sections 2.14, 3.4; RFC 8031; RFC 3526 group
 * 14) over OpenSSL 3's EVP_PKEY. The state machine (ike_sa*.c) makes one
 * object per exchange and frees it once g^ir is known. */
#include "qkd/ike_dh.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/dh.h>
#include <openssl/evp.h>

#include "qkd/error.h"
#include "qkd/secret.h"
#include "qkd/testing.h"

struct qkd_ike_dh {
	uint16_t group;
	EVP_PKEY *key;
};

size_t qkd_ike_dh_len(uint16_t group)
{
	if (group == QKD_IKE_GROUP_X25519)
		return 32;
	if (group == QKD_IKE_GROUP_MODP2048)
		return 256;
	return 0;
}

/* MODP-2048 is OpenSSL's named DH group "modp_2048" (RFC 3526 section 3). */
static EVP_PKEY *modp_keygen(void)
{
	OSSL_PARAM params[2];
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	EVP_PKEY *k = NULL;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						     (char *)"modp_2048", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (c == NULL || EVP_PKEY_keygen_init(c) != 1 || EVP_PKEY_CTX_set_params(c, params) != 1 ||
	    EVP_PKEY_generate(c, &k) != 1)
		k = NULL;
	EVP_PKEY_CTX_free(c);
	return k;
}

int qkd_ike_dh_new(uint16_t group, struct qkd_ike_dh **out)
{
	struct qkd_ike_dh *dh = NULL;
	int rc = QKD_ERR_INVAL;

	*out = NULL;
	if (qkd_ike_dh_len(group) == 0)
		goto out;
	rc = QKD_ERR_NOMEM;
	dh = calloc(1, sizeof *dh);
	if (dh == NULL)
		goto out;
	dh->group = group;
	if (group == QKD_IKE_GROUP_X25519)
		dh->key = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	else
		dh->key = modp_keygen();
	if (dh->key == NULL)
		goto out;
	*out = dh;
	dh = NULL;
	rc = QKD_OK;
out:
	qkd_ike_dh_free(dh);
	return rc;
}

int qkd_ike_dh_testing_x25519(const uint8_t priv[32], struct qkd_ike_dh **out)
{
	struct qkd_ike_dh *dh = calloc(1, sizeof *dh);
	int rc = QKD_ERR_NOMEM;

	*out = NULL;
	if (dh == NULL)
		goto out;
	dh->group = QKD_IKE_GROUP_X25519;
	dh->key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
	if (dh->key == NULL)
		goto out;
	*out = dh;
	dh = NULL;
	rc = QKD_OK;
out:
	qkd_ike_dh_free(dh);
	return rc;
}

void qkd_ike_dh_free(struct qkd_ike_dh *dh)
{
	if (dh == NULL)
		return;
	EVP_PKEY_free(dh->key);
	free(dh);
}

uint16_t qkd_ike_dh_group(const struct qkd_ike_dh *dh)
{
	return dh->group;
}

int qkd_ike_dh_public(const struct qkd_ike_dh *dh, uint8_t *out, size_t cap)
{
	size_t n = qkd_ike_dh_len(dh->group), got = n;
	unsigned char *enc = NULL;
	int rc = QKD_ERR_INVAL;

	if (cap < n)
		goto out;
	rc = QKD_ERR_NOMEM;
	if (dh->group == QKD_IKE_GROUP_X25519) {
		if (EVP_PKEY_get_raw_public_key(dh->key, out, &got) != 1 || got != n)
			goto out;
	} else {
		/* For DH the encoded public key is big-endian, padded to the
		 * prime's length. */
		got = EVP_PKEY_get1_encoded_public_key(dh->key, &enc);
		if (got == 0 || got > n)
			goto out;
		memset(out, 0, n - got);
		memcpy(out + n - got, enc, got);
	}
	rc = QKD_OK;
out:
	OPENSSL_free(enc);
	return rc;
}

static EVP_PKEY *peer_key(const struct qkd_ike_dh *dh, const uint8_t *peer, size_t len)
{
	EVP_PKEY *p = NULL;

	if (dh->group == QKD_IKE_GROUP_X25519)
		return EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, len);
	p = EVP_PKEY_new();
	if (p == NULL || EVP_PKEY_copy_parameters(p, dh->key) != 1 ||
	    EVP_PKEY_set1_encoded_public_key(p, peer, len) != 1) {
		EVP_PKEY_free(p);
		p = NULL;
	}
	return p;
}

/* OpenSSL refuses a MODP value outside 2..p-2 and an X25519 result of all
 * zeros (a small-order point): both are the peer's fault, QKD_ERR_PROTO.
 * The DH secret is left-padded to the prime's length (set_dh_pad). */
int qkd_ike_dh_shared(const struct qkd_ike_dh *dh, const uint8_t *peer, size_t len,
		      uint8_t *out, size_t cap)
{
	size_t n = qkd_ike_dh_len(dh->group), got = cap;
	EVP_PKEY *p = NULL;
	EVP_PKEY_CTX *c = NULL;
	int rc = QKD_ERR_INVAL;

	if (cap < n || peer == NULL)
		goto out;
	rc = QKD_ERR_PROTO;
	if (len != n)
		goto out;
	p = peer_key(dh, peer, len);
	c = EVP_PKEY_CTX_new_from_pkey(NULL, dh->key, NULL);
	if (p == NULL || c == NULL || EVP_PKEY_derive_init(c) != 1)
		goto out;
	if (dh->group == QKD_IKE_GROUP_MODP2048 && EVP_PKEY_CTX_set_dh_pad(c, 1) != 1)
		goto out;
	if (EVP_PKEY_derive_set_peer(c, p) != 1 || EVP_PKEY_derive(c, out, &got) != 1 ||
	    got != n) {
		qkd_wipe(out, cap);
		goto out;
	}
	rc = QKD_OK;
out:
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(p);
	return rc;
}
