/* qkd/ike_pld.h - IKEv2 messages on the wire (RFC 7296 section 3): the
 * header, the generic payload chain and the typed payloads the gateway
 * speaks (SA, KE, IDi/IDr, AUTH, Nonce, Notify, Delete, TSi/TSr, SK).
 *
 * Parsing (lib/vpn/ike_pld.c) validates before it reads, through the
 * bounded reader of qkd/wire.h: every length is checked against what is
 * left, so nothing past the buffer is ever read. A parsed message BORROWS
 * the input: every struct qkd_ike_span points into the caller's buffer,
 * which must outlive the parsed structs. Building (lib/vpn/ike_build.c)
 * appends to a qkd_wbuf owned by the caller. Neighbours: qkd/ike_keys.h
 * (the key schedule), the ESP data plane (another file), the state machine
 * (to come), which decides what a message must contain.
 *
 * Errors: QKD_ERR_PROTO for malformed input, with *why set to a static
 * string naming the rule; QKD_ERR_RANGE when a message or a count passes
 * its fixed bound; QKD_ERR_INVAL for arguments out of domain.
 */
#ifndef QKD_IKE_PLD_H
#define QKD_IKE_PLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/wire.h"

#define QKD_IKE_WUR __attribute__((warn_unused_result))

/* Bounds. A message over 64 KiB is refused (IKE over UDP never needs
 * more); counts are fixed so the parsed form needs no allocation. */
#define QKD_IKE_MSG_MAX 65536u
#define QKD_IKE_HDR_LEN 28u
#define QKD_IKE_GEN_LEN 4u	/* generic payload header */
#define QKD_IKE_MAX_PAYLOADS 32u
#define QKD_IKE_MAX_PROPOSALS 8u
#define QKD_IKE_MAX_TRANSFORMS 16u	/* per proposal */
#define QKD_IKE_MAX_SELECTORS 8u	/* per TS payload */
#define QKD_IKE_NONCE_MIN 16u	/* RFC 7296 section 3.9 */
#define QKD_IKE_NONCE_MAX 256u
#define QKD_IKE_SPI_MAX 8u

/* Payload types (IANA "IKEv2 Payload Types"). */
enum qkd_ike_pt {
	QKD_IKE_PT_NONE = 0,
	QKD_IKE_PT_SA = 33,
	QKD_IKE_PT_KE = 34,
	QKD_IKE_PT_IDI = 35,
	QKD_IKE_PT_IDR = 36,
	QKD_IKE_PT_CERT = 37,
	QKD_IKE_PT_CERTREQ = 38,
	QKD_IKE_PT_AUTH = 39,
	QKD_IKE_PT_NONCE = 40,
	QKD_IKE_PT_NOTIFY = 41,
	QKD_IKE_PT_DELETE = 42,
	QKD_IKE_PT_VENDOR = 43,
	QKD_IKE_PT_TSI = 44,
	QKD_IKE_PT_TSR = 45,
	QKD_IKE_PT_SK = 46,
	QKD_IKE_PT_CP = 47,
	QKD_IKE_PT_EAP = 48,
};

enum qkd_ike_exchange {
	QKD_IKE_SA_INIT = 34,
	QKD_IKE_AUTH = 35,
	QKD_IKE_CREATE_CHILD_SA = 36,
	QKD_IKE_INFORMATIONAL = 37,
};

/* Header flags (section 3.1). */
#define QKD_IKE_FLAG_I 0x08u	/* sent by the original initiator */
#define QKD_IKE_FLAG_V 0x10u	/* a higher version is spoken */
#define QKD_IKE_FLAG_R 0x20u	/* a response */

/* Notify message types used by the gateway (sections 3.10.1, RFC 8784, RFC 9867). */
enum qkd_ike_notify_type {
	QKD_IKE_N_UNSUPPORTED_CRITICAL_PAYLOAD = 1,
	QKD_IKE_N_INVALID_IKE_SPI = 4,
	QKD_IKE_N_INVALID_SYNTAX = 7,
	QKD_IKE_N_NO_PROPOSAL_CHOSEN = 14,
	QKD_IKE_N_INVALID_KE_PAYLOAD = 17,
	QKD_IKE_N_AUTHENTICATION_FAILED = 24,
	QKD_IKE_N_TS_UNACCEPTABLE = 38,
	QKD_IKE_N_COOKIE = 16390,
	QKD_IKE_N_REKEY_SA = 16393,
	QKD_IKE_N_USE_PPK = 16435,
	QKD_IKE_N_PPK_IDENTITY = 16436,
	QKD_IKE_N_NO_PPK_AUTH = 16437,
	QKD_IKE_N_USE_PPK_INT = 16445,
	QKD_IKE_N_PPK_IDENTITY_KEY = 16446,
};

/* Security protocol ids (section 3.3.1). */
enum qkd_ike_proto { QKD_IKE_PROTO_IKE = 1, QKD_IKE_PROTO_AH = 2, QKD_IKE_PROTO_ESP = 3 };

/* Transform types and the ids of the suite (section 3.3.2, RFC 5282). */
enum qkd_ike_tt { QKD_IKE_TT_ENCR = 1, QKD_IKE_TT_PRF = 2, QKD_IKE_TT_INTEG = 3,
		  QKD_IKE_TT_KE = 4, QKD_IKE_TT_ESN = 5 };
#define QKD_IKE_ENCR_AES_GCM_16 20u
#define QKD_IKE_PRF_HMAC_SHA2_256 5u
#define QKD_IKE_GROUP_MODP2048 14u
#define QKD_IKE_GROUP_X25519 31u
#define QKD_IKE_ATTR_KEY_LENGTH 14u	/* TV attribute, value in bits */

enum qkd_ike_id_type { QKD_IKE_ID_IPV4 = 1, QKD_IKE_ID_FQDN = 2, QKD_IKE_ID_RFC822 = 3,
		       QKD_IKE_ID_IPV6 = 5, QKD_IKE_ID_KEY_ID = 11 };
#define QKD_IKE_AUTH_PSK 2u	/* Shared Key Message Integrity Code */
enum qkd_ike_ts_type { QKD_IKE_TS_IPV4 = 7, QKD_IKE_TS_IPV6 = 8 };

/* A borrowed run of bytes inside a parsed buffer (or the caller's data
 * when building). */
struct qkd_ike_span {
	const uint8_t *p;
	size_t len;
};

struct qkd_ike_hdr {
	uint8_t spi_i[8], spi_r[8];
	uint8_t next;		/* first payload type */
	uint8_t exchange;
	uint8_t flags;
	uint32_t msg_id;
	uint32_t length;	/* whole message, header included */
};

/* One payload of a chain, its body (after the generic header) borrowed. */
struct qkd_ike_pld {
	uint8_t type;
	bool critical;
	struct qkd_ike_span body;
};

/* A parsed chain. Unknown non-critical payloads are skipped (section 2.5)
 * and counted in `skipped`. For an SK payload (always last) `inner` is the
 * type of its first inner payload. */
struct qkd_ike_msg {
	struct qkd_ike_hdr hdr;
	size_t n;
	struct qkd_ike_pld pld[QKD_IKE_MAX_PAYLOADS];
	size_t skipped;
	uint8_t inner;
	uint8_t bad_critical;	/* set with the UNSUPPORTED_CRITICAL_PAYLOAD error */
};

struct qkd_ike_transform {
	uint8_t type;
	uint16_t id;
	uint16_t key_bits;	/* the Key Length attribute; 0 when absent */
	/* An attribute other than Key Length was present: section 3.3.6 has
	 * the policy layer reject this transform's proposal, not the message.
	 * Never built. */
	bool unknown_attr;
};

struct qkd_ike_proposal {
	uint8_t num, protocol;
	uint8_t spi_len;
	uint8_t spi[QKD_IKE_SPI_MAX];
	size_t nt;
	struct qkd_ike_transform t[QKD_IKE_MAX_TRANSFORMS];
};

struct qkd_ike_sa {
	size_t np;
	struct qkd_ike_proposal p[QKD_IKE_MAX_PROPOSALS];
};

struct qkd_ike_ke {
	uint16_t group;
	struct qkd_ike_span data;
};

/* IDi/IDr and AUTH share one shape: a one-octet type then data. */
struct qkd_ike_id {
	uint8_t type;
	struct qkd_ike_span data;
};

struct qkd_ike_auth {
	uint8_t method;
	struct qkd_ike_span data;
};

struct qkd_ike_notify {
	uint8_t protocol;
	struct qkd_ike_span spi;	/* 0, 4 or 8 octets */
	uint16_t type;
	struct qkd_ike_span data;
};

struct qkd_ike_delete {
	uint8_t protocol;
	uint8_t spi_size;
	uint16_t nspi;
	struct qkd_ike_span spis;	/* nspi * spi_size octets */
};

struct qkd_ike_ts {
	uint8_t type;		/* QKD_IKE_TS_IPV4 or _IPV6 */
	uint8_t ip_proto;	/* 0: any */
	uint16_t start_port, end_port;
	uint8_t start[16], end[16];	/* 4 octets used for IPv4 */
};

struct qkd_ike_tss {
	size_t n;
	struct qkd_ike_ts ts[QKD_IKE_MAX_SELECTORS];
};

/* The framing of the Encrypted payload (section 3.14, RFC 5282 section 3):
 * IV, ciphertext (which holds the padded inner payloads) and ICV. */
struct qkd_ike_sk {
	uint8_t inner;		/* first inner payload type */
	struct qkd_ike_span iv, ct, icv;
};

/* ---- parsing (lib/vpn/ike_pld.c) ---- */

/* Parse a whole message: header (version 2.0, length equal to len, at most
 * QKD_IKE_MSG_MAX) and its payload chain. *m borrows p. An unknown payload
 * with the critical bit fails with QKD_ERR_PROTO, *why naming
 * UNSUPPORTED_CRITICAL_PAYLOAD and m->bad_critical its type (the responder
 * answers with notify 1 carrying that octet). */
QKD_IKE_WUR int qkd_ike_msg_parse(const uint8_t *p, size_t len, struct qkd_ike_msg *m,
				  const char **why);

/* Parse a chain of payloads without header (the decrypted inner payloads
 * of SK, whose first type comes from the SK payload). m->hdr is zeroed. */
QKD_IKE_WUR int qkd_ike_chain_parse(uint8_t first, const uint8_t *p, size_t len,
				    struct qkd_ike_msg *m, const char **why);

/* Typed parses of one payload of a parsed chain. Each checks pld->type and
 * that the body is consumed exactly; outputs borrow the message buffer. */
QKD_IKE_WUR int qkd_ike_sa_parse(const struct qkd_ike_pld *pld, struct qkd_ike_sa *sa,
				 const char **why);
QKD_IKE_WUR int qkd_ike_ke_parse(const struct qkd_ike_pld *pld, struct qkd_ike_ke *ke,
				 const char **why);
/* IDi or IDr. */
QKD_IKE_WUR int qkd_ike_id_parse(const struct qkd_ike_pld *pld, struct qkd_ike_id *id,
				 const char **why);
QKD_IKE_WUR int qkd_ike_auth_parse(const struct qkd_ike_pld *pld, struct qkd_ike_auth *a,
				   const char **why);
/* 16..256 octets (section 3.9). */
QKD_IKE_WUR int qkd_ike_nonce_parse(const struct qkd_ike_pld *pld, struct qkd_ike_span *nonce,
				    const char **why);
QKD_IKE_WUR int qkd_ike_notify_parse(const struct qkd_ike_pld *pld, struct qkd_ike_notify *n,
				     const char **why);
QKD_IKE_WUR int qkd_ike_delete_parse(const struct qkd_ike_pld *pld, struct qkd_ike_delete *d,
				     const char **why);
/* TSi or TSr: IPv4 and IPv6 address ranges; other selector types refused. */
QKD_IKE_WUR int qkd_ike_ts_parse(const struct qkd_ike_pld *pld, struct qkd_ike_tss *ts,
				 const char **why);
/* SK: iv_len and icv_len come from the negotiated suite (8 and 16 for
 * AES-GCM with a 16-octet ICV, RFC 5282); the ciphertext must be non-empty.
 * inner is m->inner of the chain the payload came from. */
QKD_IKE_WUR int qkd_ike_sk_parse(const struct qkd_ike_pld *pld, uint8_t inner, size_t iv_len,
				 size_t icv_len, struct qkd_ike_sk *sk, const char **why);

/* First payload of the given type in m, NULL if none. */
const struct qkd_ike_pld *qkd_ike_msg_find(const struct qkd_ike_msg *m, uint8_t type);

/* ---- building (lib/vpn/ike_build.c) ---- */

/* Appends a message (or a header-less inner chain) to w, which the caller
 * owns; each add links the previous payload's Next Payload field to it.
 * Each qkd_ike_add_* writes the payload of the same name (RFC 7296 sections
 * 3.3 to 3.14) and copies every span it is given: the builder keeps no
 * pointer into the caller's structs, which may be freed or reused at once.
 * Errors are sticky in b->err (and w->err); qkd_ike_build_end reports:
 * QKD_ERR_INVAL for a payload that its parser would refuse (nonce length,
 * empty SA or TS, SPI sizes, anything after SK), QKD_ERR_RANGE for bounds,
 * QKD_ERR_NOMEM when w cannot grow. */
struct qkd_ike_builder {
	struct qkd_wbuf *w;
	size_t start;		/* offset of the message in w */
	size_t next_at;		/* offset of the Next Payload octet to patch */
	bool has_hdr, sealed;
	uint8_t first;		/* type of the first payload (for an inner chain) */
	size_t n;
	int err;
};

/* Start a message with header h (h->next and h->length are filled in). */
void qkd_ike_build_msg(struct qkd_ike_builder *b, struct qkd_wbuf *w, const struct qkd_ike_hdr *h);
/* Start a header-less chain (the plaintext of an SK payload). */
void qkd_ike_build_chain(struct qkd_ike_builder *b, struct qkd_wbuf *w);
/* Finish: patch the message length; refuse a message over QKD_IKE_MSG_MAX
 * or with more than QKD_IKE_MAX_PAYLOADS payloads (QKD_ERR_RANGE). */
QKD_IKE_WUR int qkd_ike_build_end(struct qkd_ike_builder *b);

void qkd_ike_add_raw(struct qkd_ike_builder *b, uint8_t type, bool critical, const void *body,
		     size_t len);
void qkd_ike_add_sa(struct qkd_ike_builder *b, const struct qkd_ike_sa *sa);
void qkd_ike_add_ke(struct qkd_ike_builder *b, const struct qkd_ike_ke *ke);
/* type: QKD_IKE_PT_IDI or QKD_IKE_PT_IDR. */
void qkd_ike_add_id(struct qkd_ike_builder *b, uint8_t type, const struct qkd_ike_id *id);
void qkd_ike_add_auth(struct qkd_ike_builder *b, const struct qkd_ike_auth *a);
void qkd_ike_add_nonce(struct qkd_ike_builder *b, const void *nonce, size_t len);
void qkd_ike_add_notify(struct qkd_ike_builder *b, const struct qkd_ike_notify *n);
void qkd_ike_add_delete(struct qkd_ike_builder *b, const struct qkd_ike_delete *d);
/* type: QKD_IKE_PT_TSI or QKD_IKE_PT_TSR. */
void qkd_ike_add_ts(struct qkd_ike_builder *b, uint8_t type, const struct qkd_ike_tss *ts);
/* The Encrypted payload, which must be the last: its Next Payload field
 * carries sk->inner. The cryptography is the caller's (ESP/AEAD layer). */
void qkd_ike_add_sk(struct qkd_ike_builder *b, const struct qkd_ike_sk *sk);

#endif
