/* esp_int.h - the inside of an ESP SA, shared by lib/vpn/esp_context.c
 * (AEAD state, lifetimes, replay window) and lib/vpn/esp_packet.c (the
 * packet format). Not a public header. */
#ifndef QKD_ESP_INT_H
#define QKD_ESP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "qkd/esp.h"
#include "qkd/replay.h"

/* The largest inner packet: an IPv4/IPv6 datagram's length field is 16 bits
 * (jumbograms are out of scope); keeps every length in an int for OpenSSL. */
#define ESP_INNER_MAX 65535u
#define ESP_AAD_MAX 12

struct qkd_esp_sa {
	enum qkd_esp_dir dir;
	uint32_t spi;
	bool esn;
	bool exhausted;			/* the outbound counter reached its end */
	uint64_t seq;			/* outbound: last sequence number sent */
	uint64_t created;
	struct qkd_esp_limits soft, hard;
	uint64_t bytes, packets;
	uint8_t salt[QKD_ESP_SALT_LEN];
	EVP_CIPHER_CTX *aead;		/* key scheduled once, in qkd_esp_sa_new */
	struct qkd_replay replay;	/* inbound only */
};

/* The AAD of RFC 4106 s5 for seq into aad; returns its length (8 or 12). */
size_t esp_aad(const struct qkd_esp_sa *sa, uint64_t seq, uint8_t aad[ESP_AAD_MAX]);
/* True if one more packet of len inner bytes would pass a hard limit of
 * bytes or packets (then it is refused rather than counted). */
bool esp_over_hard(const struct qkd_esp_sa *sa, size_t len);
void esp_account(struct qkd_esp_sa *sa, size_t len);
/* AES-GCM with nonce salt || iv: encrypt a (na bytes) then b (nb bytes) as
 * one plaintext into out, tag into tag. 0 or QKD_ERR_VERIFY (cipher
 * failure: the caller drops the packet). */
int esp_seal(struct qkd_esp_sa *sa, const uint8_t iv[QKD_ESP_IV_LEN], const uint8_t *aad,
	     size_t aad_len, const uint8_t *a, size_t na, const uint8_t *b, size_t nb,
	     uint8_t *out, uint8_t tag[QKD_ESP_ICV_LEN]);
/* Decrypt and verify n bytes of ct into out; QKD_ERR_VERIFY if the tag does
 * not verify (out then holds unauthenticated bytes the caller must wipe). */
int esp_open(struct qkd_esp_sa *sa, const uint8_t iv[QKD_ESP_IV_LEN], const uint8_t *aad,
	     size_t aad_len, const uint8_t *ct, size_t n, const uint8_t tag[QKD_ESP_ICV_LEN],
	     uint8_t *out);

#endif
