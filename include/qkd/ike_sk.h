/* qkd/ike_sk.h - the Encrypted payload of IKEv2 (RFC 7296 section 3.14)
 * under AES-GCM with a 16-octet ICV (ENCR 20, RFC 5282).
 *
 * RFC 5282 section 3: an 8-octet explicit IV travels in the payload; the
 * GCM nonce is the 4-octet salt (the last octets of SK_ei or SK_er) then
 * that IV; the additional data is the IKE header through the SK payload's
 * generic header (section 5.1); no integrity transform. Padding is as
 * section 3.14 has it: any octets then a Pad Length octet; we send none
 * (GCM needs no block alignment) and accept up to 255 from the peer.
 * Implemented in lib/vpn/ike_sk.c over OpenSSL's EVP AEAD interface;
 * used by the state machine (qkd/ike_sa.h). Keys are the caller's; every
 * plaintext buffer of the decrypt side is the caller's to wipe.
 * Errors: QKD_ERR_INVAL (arguments), QKD_ERR_VERIFY (the ICV does not
 * match), QKD_ERR_PROTO (bad padding inside an authentic payload),
 * QKD_ERR_NOMEM (OpenSSL or the buffer).
 */
#ifndef QKD_IKE_SK_H
#define QKD_IKE_SK_H

#include <stddef.h>
#include <stdint.h>

#include "qkd/ike_pld.h"
#include "qkd/wire.h"

#define QKD_IKE_SK_IV_LEN 8u
#define QKD_IKE_SK_ICV_LEN 16u

/* The AEAD primitive: AES-GCM with key = sk_e[0..enc_len-4), nonce =
 * sk_e[enc_len-4..enc_len) | iv, 16-octet tag. enc_len is 20 or 36
 * (AES-128 or AES-256 with the salt). ct may be pt (in place); nothing
 * else may alias. */
QKD_IKE_WUR int qkd_ike_gcm_seal(const uint8_t *sk_e, size_t enc_len,
				 const uint8_t iv[QKD_IKE_SK_IV_LEN], const uint8_t *aad,
				 size_t aad_len, const uint8_t *pt, size_t len, uint8_t *ct,
				 uint8_t icv[QKD_IKE_SK_ICV_LEN]);
/* The inverse: QKD_ERR_VERIFY and pt wiped when the tag does not match. */
QKD_IKE_WUR int qkd_ike_gcm_open(const uint8_t *sk_e, size_t enc_len,
				 const uint8_t iv[QKD_IKE_SK_IV_LEN], const uint8_t *aad,
				 size_t aad_len, const uint8_t *ct, size_t len,
				 const uint8_t icv[QKD_IKE_SK_ICV_LEN], uint8_t *pt);

/* Build a whole message: header h (next and length filled in) and one SK
 * payload holding the inner chain inner[0..len) whose first payload is of
 * type first (from qkd_ike_build_chain: b.first), sealed under sk_e with
 * the explicit IV iv (the caller never repeats one under a key: a
 * counter). Appended to out, which the caller owns. */
QKD_IKE_WUR int qkd_ike_sk_seal(const struct qkd_ike_hdr *h, uint8_t first,
				const uint8_t *inner, size_t len, const uint8_t *sk_e,
				size_t enc_len, uint64_t iv, struct qkd_wbuf *out);

/* Open the SK payload of the parsed message m (parsed from msg[0..len),
 * its last payload must be SK): checks the ICV over the header and SK
 * generic header, decrypts into pt (capacity cap, at least the ciphertext
 * length), strips the padding and sets *pt_len; m->inner is the first
 * inner type, to parse pt with qkd_ike_chain_parse. */
QKD_IKE_WUR int qkd_ike_sk_open(const uint8_t *msg, size_t len, const struct qkd_ike_msg *m,
				const uint8_t *sk_e, size_t enc_len, uint8_t *pt, size_t cap,
				size_t *pt_len);

#endif
