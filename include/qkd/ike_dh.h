/* qkd/ike_dh.h - the key exchanges of the gateway's IKEv2: X25519 (group
 * 31, RFC 8031: 32-octet public values, the shared secret as X25519's
 * output) and MODP-2048 (group 14, RFC 3526; the public value and g^ir as
 * 256-octet big-endian strings, left-padded with zeros, RFC 7296 section
 * 3.4 and 2.14). Implemented in lib/vpn/ike_dh.c over OpenSSL EVP_PKEY;
 * used by the state machine (qkd/ike_sa.h) for KE payloads.
 * The private key lives in the object and is freed (by OpenSSL, which
 * clears it) with qkd_ike_dh_free. The shared secret is written into
 * caller memory, which the caller wipes.
 * Errors: QKD_ERR_INVAL (a group other than 14 or 31, sizes), QKD_ERR_PROTO
 * (a peer value of the wrong length or refused: out of range for MODP,
 * a low-order point giving an all-zero X25519 secret), QKD_ERR_NOMEM
 * (OpenSSL failed).
 */
#ifndef QKD_IKE_DH_H
#define QKD_IKE_DH_H

#include <stddef.h>
#include <stdint.h>

#include "qkd/ike_pld.h"

#define QKD_IKE_DH_MAX 256u	/* octets of the largest public value or secret */

struct qkd_ike_dh;

/* Octets of the group's public value (= of its shared secret); 0 for a
 * group we do not speak. */
size_t qkd_ike_dh_len(uint16_t group);

/* A fresh key pair of group (14 or 31) from OpenSSL's generator. */
QKD_IKE_WUR int qkd_ike_dh_new(uint16_t group, struct qkd_ike_dh **out);
void qkd_ike_dh_free(struct qkd_ike_dh *dh);	/* accepts NULL */
uint16_t qkd_ike_dh_group(const struct qkd_ike_dh *dh);

/* The public value, qkd_ike_dh_len(group) octets, into out (cap octets). */
QKD_IKE_WUR int qkd_ike_dh_public(const struct qkd_ike_dh *dh, uint8_t *out, size_t cap);

/* g^ir from the peer's public value peer[0..len) (exactly the group's
 * length): qkd_ike_dh_len octets into out (cap octets). */
QKD_IKE_WUR int qkd_ike_dh_shared(const struct qkd_ike_dh *dh, const uint8_t *peer, size_t len,
				  uint8_t *out, size_t cap);

#endif
