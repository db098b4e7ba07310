/* qkd/ike_keys.h - the IKEv2 key schedule for the gateway's suite: PRF
 * HMAC-SHA2-256 (transform 5), AES-GCM (ENCR 20, RFC 5282) and the QKD key
 * entering as a PPK (RFC 8784 in IKE_AUTH, RFC 9867 in CREATE_CHILD_SA).
 *
 * Implemented in lib/vpn/ike_keys.c over OpenSSL's EVP_MAC. Every output is
 * a secret written into caller-owned memory; on error the output is wiped.
 * Inputs may alias outputs only where a function says so. Intermediate
 * values are wiped with qkd_wipe; comparisons run in constant time.
 * Errors: QKD_ERR_INVAL (lengths out of domain), QKD_ERR_NOMEM or
 * QKD_ERR_IO (OpenSSL failed), QKD_ERR_VERIFY (a check did not match).
 * Message formats: qkd/ike_pld.h.
 */
#ifndef QKD_IKE_KEYS_H
#define QKD_IKE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/ike_pld.h"

#define QKD_IKE_PRF_LEN 32u	/* HMAC-SHA2-256 output = its preferred key length */
#define QKD_IKE_PRFPLUS_MAX (255u * QKD_IKE_PRF_LEN)	/* section 2.13 */
#define QKD_IKE_GCM_SALT_LEN 4u	/* RFC 5282 section 7.1 */
#define QKD_IKE_ENC_MAX (32u + QKD_IKE_GCM_SALT_LEN)
#define QKD_IKE_PPK_CONFIRM_LEN 8u

/* The keys of one IKE SA under an AEAD suite (section 2.14): there are no
 * SK_ai/SK_ar (RFC 5282 section 7: integrity keys of length zero); SK_ei
 * and SK_er are the AES key followed by the 4-octet salt. */
struct qkd_ike_sa_keys {
	uint8_t sk_d[QKD_IKE_PRF_LEN];
	uint8_t sk_ei[QKD_IKE_ENC_MAX], sk_er[QKD_IKE_ENC_MAX];
	size_t enc_len;		/* AES key length + 4: 20, 28 or 36 */
	uint8_t sk_pi[QKD_IKE_PRF_LEN], sk_pr[QKD_IKE_PRF_LEN];
};

/* Wipe a key set (accepts NULL). */
void qkd_ike_sa_keys_wipe(struct qkd_ike_sa_keys *k);

/* prf(K, S) = HMAC-SHA-256(K, S[0] | S[1] | ...). n parts, any may be
 * empty; the key may not (QKD_ERR_INVAL: no IKE prf is keyed with nothing).
 * out may alias nothing in the inputs. */
QKD_IKE_WUR int qkd_ike_prf(const uint8_t *key, size_t key_len, const struct qkd_ike_span *s,
			    size_t n, uint8_t out[QKD_IKE_PRF_LEN]);

/* prf+(K, S) of section 2.13: T1 | T2 | ..., Tk = prf(K, Tk-1 | S | k),
 * truncated to 0 < out_len <= QKD_IKE_PRFPLUS_MAX octets. (With
 * HMAC-SHA-256 this is HKDF-Expand of RFC 5869 with PRK = K and info = S.)
 * out must not alias the key or S (the functions below that allow
 * aliasing go through a temporary). */
QKD_IKE_WUR int qkd_ike_prfplus(const uint8_t *key, size_t key_len, const struct qkd_ike_span *s,
				size_t n, uint8_t *out, size_t out_len);

/* SKEYSEED = prf(Ni | Nr, g^ir) (section 2.14). */
QKD_IKE_WUR int qkd_ike_skeyseed(struct qkd_ike_span ni, struct qkd_ike_span nr,
				 struct qkd_ike_span gir, uint8_t out[QKD_IKE_PRF_LEN]);

/* SKEYSEED of a rekeyed IKE SA (section 2.18):
 * prf(SK_d (old), g^ir (new) | Ni | Nr), with the new exchange's nonces. */
QKD_IKE_WUR int qkd_ike_skeyseed_rekey(const uint8_t sk_d_old[QKD_IKE_PRF_LEN],
				       struct qkd_ike_span gir_new, struct qkd_ike_span ni,
				       struct qkd_ike_span nr, uint8_t out[QKD_IKE_PRF_LEN]);

/* {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
 *     = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)        (section 2.14)
 * with SK_ai, SK_ar empty and SK_e* = aes_key_len + 4 octets (16, 24 or
 * 32 for aes_key_len). */
QKD_IKE_WUR int qkd_ike_sa_keys_derive(const uint8_t skeyseed[QKD_IKE_PRF_LEN],
				       struct qkd_ike_span ni, struct qkd_ike_span nr,
				       const uint8_t spi_i[8], const uint8_t spi_r[8],
				       size_t aes_key_len, struct qkd_ike_sa_keys *out);

/* Child SA keying material (section 2.17):
 *   KEYMAT = prf+(SK_d, Ni | Nr)                  gir_new.len == 0
 *   KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr)     with a fresh (EC)DH
 * ESP takes, in order, initiator-to-responder key + salt, then the
 * responder-to-initiator ones (section 2.17, RFC 4106 salt). */
QKD_IKE_WUR int qkd_ike_child_keymat(const uint8_t sk_d[QKD_IKE_PRF_LEN],
				     struct qkd_ike_span gir_new, struct qkd_ike_span ni,
				     struct qkd_ike_span nr, uint8_t *out, size_t out_len);

/* RFC 8784 section 3 (IKE_AUTH): with SK_d', SK_pi', SK_pr' from the
 * usual derivation,
 *   SK_d  = prf+(PPK, SK_d'),  SK_pi = prf+(PPK, SK_pi'),  SK_pr = prf+(PPK, SK_pr')
 * each as long as the key it replaces. `in` and `out` may be the same
 * object; a caller that must send NO_PPK_AUTH keeps a copy of SK_pi'
 * first (RFC 8784 section 3). SK_e* are copied unchanged. */
QKD_IKE_WUR int qkd_ike_ppk_mix_auth(const struct qkd_ike_sa_keys *in, const uint8_t *ppk,
				     size_t ppk_len, struct qkd_ike_sa_keys *out);

/* The RFC 9867 mixing of a PPK into an existing SK_d:
 *   SK_d' = prf+(PPK, SK_d)   (QKD_IKE_PRF_LEN octets)
 * In CREATE_CHILD_SA (RFC 9867 section 3.2) SK_d' takes the place of SK_d
 * in qkd_ike_child_keymat (a Child SA) or qkd_ike_skeyseed_rekey (an IKE
 * SA rekey); in IKE_INTERMEDIATE (section 3.1) the same value is the new
 * SKEYSEED' from which all IKE SA keys are derived again with
 * qkd_ike_sa_keys_derive. sk_d and out may alias. */
QKD_IKE_WUR int qkd_ike_ppk_mix_sk_d(const uint8_t sk_d[QKD_IKE_PRF_LEN], const uint8_t *ppk,
				     size_t ppk_len, uint8_t out[QKD_IKE_PRF_LEN]);

/* PPK confirmation carried in PPK_IDENTITY_KEY (RFC 9867): the first 8
 * octets of prf(PPK, Ni | Nr | SPIi | SPIr). nr may be empty (len 0): in
 * a CREATE_CHILD_SA request the responder's nonce is not known yet. */
QKD_IKE_WUR int qkd_ike_ppk_confirm(const uint8_t *ppk, size_t ppk_len, struct qkd_ike_span ni,
				    struct qkd_ike_span nr, const uint8_t spi_i[8],
				    const uint8_t spi_r[8], uint8_t out[QKD_IKE_PPK_CONFIRM_LEN]);
/* 0 when `got` (what the peer sent) equals the confirmation for ppk,
 * QKD_ERR_VERIFY otherwise; compared in constant time. */
QKD_IKE_WUR int qkd_ike_ppk_confirm_check(const uint8_t *ppk, size_t ppk_len,
					  struct qkd_ike_span ni, struct qkd_ike_span nr,
					  const uint8_t spi_i[8], const uint8_t spi_r[8],
					  struct qkd_ike_span got);

/* The AUTH payload data for a pre-shared key (section 2.15):
 *   AUTH = prf(prf(PSK, "Key Pad for IKEv2"), <SignedOctets>)
 *   SignedOctets = RealMessage | Nonce | prf(SK_p, RestOfIDPayload)
 * where RealMessage is the sender's first message (IKE_SA_INIT), Nonce the
 * peer's nonce data, SK_p the sender's SK_pi or SK_pr and RestOfIDPayload
 * the sender's ID payload body (ID type, three reserved octets, data). */
struct qkd_ike_auth_input {
	struct qkd_ike_span real_message;
	struct qkd_ike_span peer_nonce;
	const uint8_t *sk_p;		/* QKD_IKE_PRF_LEN octets */
	struct qkd_ike_span id_body;
};

QKD_IKE_WUR int qkd_ike_psk_auth(const uint8_t *psk, size_t psk_len,
				 const struct qkd_ike_auth_input *in, uint8_t out[QKD_IKE_PRF_LEN]);
/* 0 when got equals the expected AUTH data (constant time), else
 * QKD_ERR_VERIFY. */
QKD_IKE_WUR int qkd_ike_psk_auth_check(const uint8_t *psk, size_t psk_len,
				       const struct qkd_ike_auth_input *in, struct qkd_ike_span got);

#endif
