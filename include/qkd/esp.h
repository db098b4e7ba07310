/* qkd/esp.h - one direction of an ESP security association: the per-packet
 * layer of `qkd vpn` (issue 14, docs/vpn.md "ESP data plane").
 *
 * ESP (RFC 4303) in tunnel mode with AES-GCM and a 16-byte ICV (RFC 4106),
 * 128- or 256-bit keys, carried in UDP on port 4500 (RFC 3948). An SA is one
 * direction: an outbound SA encapsulates, an inbound SA decapsulates (RFC
 * 4301 section 4.1). The SA manager, IKEv2, TUN and sockets live elsewhere;
 * this layer never allocates per packet and never blocks. An SA is used by
 * one thread at a time (the SA manager's checkout/checkin serialises it).
 *
 * Packet (RFC 4303 s2, RFC 4106 s3):
 *   SPI (4) | sequence number, low 32 bits (4) | IV (8) |
 *   ciphertext of (inner | padding 1,2,3.. | pad length (1) | next header (1))
 *   | ICV (16)
 * nonce = salt (4) || IV (8) (RFC 4106 s4); the IV is the 64-bit sequence
 * number, unique per packet under one key (RFC 4106 s3.1, s8.1).
 * AAD = SPI || seq low (8 bytes), or SPI || seq high || seq low (12) with
 * extended sequence numbers (RFC 4106 s5).
 *
 * Error codes, distinct so the daemon can count each (docs/vpn.md):
 *   QKD_ERR_PROTO   malformed: too short, ciphertext not 4-byte aligned, bad
 *                   pad length or padding bytes (RFC 4303 s2.4), not ESP
 *   QKD_ERR_INVAL   the packet's SPI is not this SA's (or a bad argument:
 *                   wrong direction, bad parameters)
 *   QKD_ERR_ABORT   replay: a duplicate, older than the window, or seq 0
 *   QKD_ERR_VERIFY  the ICV did not verify (forged or corrupted)
 *   QKD_ERR_NOKEY   the SA is hard-expired: a hard lifetime was reached or
 *                   the sequence counter would cycle (RFC 4303 s3.3.3)
 *   QKD_ERR_RANGE   out has not enough room
 *   QKD_ERR_NOMEM   allocation failed (qkd_esp_sa_new only)
 */
#ifndef QKD_ESP_H
#define QKD_ESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/error.h"

#define QKD_ESP_UDP_PORT 4500	/* RFC 3948 s2 */
#define QKD_ESP_HDR_LEN 8	/* SPI + sequence number */
#define QKD_ESP_IV_LEN 8	/* RFC 4106 s3.1 */
#define QKD_ESP_ICV_LEN 16	/* RFC 4106 s6: the 16-byte ICV is the MUST */
#define QKD_ESP_SALT_LEN 4	/* RFC 4106 s8.1 */
/* Bytes a packet grows by, at most: header, IV, 3 padding, pad length,
 * next header, ICV. */
#define QKD_ESP_OVERHEAD_MAX (QKD_ESP_HDR_LEN + QKD_ESP_IV_LEN + 3 + 2 + QKD_ESP_ICV_LEN)
/* IANA reserves SPIs 1..255 and 0 is never sent (RFC 4303 s2.1); in UDP
 * encapsulation four zero bytes are the non-ESP (IKE) marker. */
#define QKD_ESP_SPI_MIN 256u

enum qkd_esp_dir { QKD_ESP_OUT, QKD_ESP_IN };

/* One set of limits; 0 means no limit of that kind (RFC 4301 s4.4.2.1). */
struct qkd_esp_limits {
	uint64_t seconds;	/* since the SA was created */
	uint64_t bytes;		/* inner packet bytes, before encryption / after decryption */
	uint64_t packets;
};

struct qkd_esp_params {
	enum qkd_esp_dir dir;
	uint32_t spi;			/* >= QKD_ESP_SPI_MIN */
	const uint8_t *keymat;		/* borrowed: key || salt (RFC 4106 s8.1) */
	size_t keymat_len;		/* 16 + 4 or 32 + 4 */
	bool esn;			/* extended (64-bit) sequence numbers */
	struct qkd_esp_limits soft;	/* reached: rekey (make-before-break) */
	struct qkd_esp_limits hard;	/* reached: the SA refuses every packet */
	uint64_t now;			/* creation time, the caller's clock in seconds */
};

enum qkd_esp_state { QKD_ESP_OK, QKD_ESP_SOFT_EXPIRED, QKD_ESP_HARD_EXPIRED };

/* What a UDP/4500 payload is (RFC 3948 s2.2, s2.3). */
enum qkd_esp_udp_kind {
	QKD_ESP_UDP_KEEPALIVE,	/* NAT-keepalive: the single byte 0xFF */
	QKD_ESP_UDP_IKE,	/* non-ESP marker (four zero bytes), IKE follows */
	QKD_ESP_UDP_ESP,	/* an ESP packet: nonzero SPI and room for a header */
	QKD_ESP_UDP_INVALID,	/* none of these: drop */
};

struct qkd_esp_sa;

/* A new SA from p. The key is copied (and scheduled once into its AEAD
 * context) so p->keymat may be wiped when this returns. *out is NULL on
 * error. QKD_ERR_INVAL for a key length other than 16/32 (+4), an SPI below
 * QKD_ESP_SPI_MIN, a soft limit above its hard limit; QKD_ERR_NOMEM. */
__attribute__((warn_unused_result))
int qkd_esp_sa_new(const struct qkd_esp_params *p, struct qkd_esp_sa **out);
/* Wipes the key, salt and cipher state, then frees. Accepts NULL. */
void qkd_esp_sa_free(struct qkd_esp_sa *sa);

uint32_t qkd_esp_sa_spi(const struct qkd_esp_sa *sa);
/* Counters for lifetimes and metrics: inner bytes and packets that went
 * through this SA (encapsulated, or decapsulated and accepted). */
uint64_t qkd_esp_sa_bytes(const struct qkd_esp_sa *sa);
uint64_t qkd_esp_sa_packets(const struct qkd_esp_sa *sa);
/* Where the SA stands at time now (same clock as params.now): hard-expired
 * if any hard limit is reached or the counter is exhausted, else
 * soft-expired if any soft limit is, else ok. */
enum qkd_esp_state qkd_esp_sa_state(const struct qkd_esp_sa *sa, uint64_t now);

/* Encapsulate one inner IP packet (next_header 4 for IPv4, 41 for IPv6) on
 * an outbound SA: RFC 4303 s3.3 with RFC 4106. out (cap bytes, caller's)
 * must not overlap inner; it receives len + at most QKD_ESP_OVERHEAD_MAX
 * bytes, *out_len says how many. Takes the next sequence number; refuses
 * with QKD_ERR_NOKEY when it would cycle (2^32 - 1 sent, or 2^64 - 1 with
 * ESN) or a hard bytes/packets limit would be passed. */
__attribute__((warn_unused_result))
int qkd_esp_encapsulate(struct qkd_esp_sa *sa, uint8_t next_header, const uint8_t *inner,
			size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* Decapsulate one ESP packet on an inbound SA (RFC 4303 s3.4): SPI, replay
 * check, ICV, replay update, then padding. out (cap bytes, caller's, not
 * overlapping pkt) needs room for the whole ciphertext, len -
 * QKD_ESP_HDR_LEN - QKD_ESP_IV_LEN - QKD_ESP_ICV_LEN bytes; on success
 * *out_len bytes of it are the inner packet and *next_header its protocol.
 * Plaintext is released only after the ICV verified: on any error out is
 * wiped. Codes as listed above. */
__attribute__((warn_unused_result))
int qkd_esp_decapsulate(struct qkd_esp_sa *sa, const uint8_t *pkt, size_t len, uint8_t *out,
			size_t cap, size_t *out_len, uint8_t *next_header);

/* The SPI of an ESP packet, for SA lookup before anything else (RFC 4303
 * s3.4.2). QKD_ERR_PROTO if pkt is shorter than an ESP header. */
__attribute__((warn_unused_result))
int qkd_esp_peek_spi(const uint8_t *pkt, size_t len, uint32_t *spi);

/* What the payload of a UDP datagram on port 4500 is (RFC 3948 s2). */
enum qkd_esp_udp_kind qkd_esp_udp_classify(const uint8_t *payload, size_t len);

#endif
