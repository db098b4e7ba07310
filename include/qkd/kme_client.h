/* qkd/kme_client.h - an ETSI GS QKD 014 V1.1.1 client: how an SAE gets key
 * from a key manager (KME), ours or another vendor's (DESIGN.md section 6;
 * docs/kme.md, "Client"). The server side is qkd/etsi014.h and
 * qkd/kme_server.h; `qkd kme` (src/cmd_kme.c) is this client's CLI.
 *
 * Files: lib/kme/kme_client.c (the three operations), lib/kme/kme_client_http.c
 * (libcurl: mutual TLS, timeouts), lib/kme/kme_client_body.c (the bounded,
 * wiped body), lib/kme/kme_client_parse.c (the responses of clause 6, pure, no
 * I/O).
 *
 * One client is one KME base URL, one SAE identity (client certificate and
 * key) and one trust anchor (the CA file: the system's CAs are never
 * used). It keeps its connection open between requests. A client is not
 * thread-safe: give each thread its own.
 *
 * Every answer is checked strictly before the caller sees it: a 200 must be
 * a Status (6.1) or a Key container (6.3) that matches the request (count,
 * key size, key_IDs), anything else is an error. Members the spec does not
 * define are refused; the spec's *_extension members must be objects and
 * are otherwise ignored. A non-200 answer is returned as QKD_ERR_REFUSED
 * with the HTTP status and the Error object (6.5) in struct qkd_kme_error.
 *
 * Secrets: key bytes are decoded into one buffer per response, and the
 * response body is kept in another; both are wiped when released
 * (qkd_kme_keys_cleanup), on error paths too. The body grows by wiped
 * copies. qkd_kme_client_init installs, process-wide, jansson allocation
 * functions (qkd_etsi014_init) and libcurl allocation functions that wipe
 * every block they free, so the copies of the JSON inside jansson and
 * libcurl's receive buffer are wiped as well. GnuTLS's record buffers are
 * out of reach (docs/kme.md, "Secrets").
 *
 * Errors: every function returns 0 or a negative QKD_ERR_* code:
 *   QKD_ERR_INVAL    a bad argument or configuration (nothing was sent)
 *   QKD_ERR_IO       no HTTP answer: connection, TLS handshake, timeout
 *   QKD_ERR_VERIFY   the KME's certificate did not verify against the CA
 *                    file, or does not name the host (or server_name)
 *   QKD_ERR_REFUSED  the KME answered with a status other than 200
 *   QKD_ERR_PROTO    a 200 whose body breaks clause 6 or the request
 *   QKD_ERR_RANGE    the body is larger than max_response_bytes
 *   QKD_ERR_NOMEM
 * and, when the caller passed one, fills struct qkd_kme_error.
 */
#ifndef QKD_KME_CLIENT_H
#define QKD_KME_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/etsi014.h"

/* Defaults of the configuration's 0 values. */
#define QKD_KME_CLIENT_CONNECT_TIMEOUT_MS 10000
#define QKD_KME_CLIENT_TIMEOUT_MS 30000
/* 1024 keys of 65536 bits in base64 with their key_IDs take 11.3 MB. */
#define QKD_KME_CLIENT_RESPONSE_MAX ((size_t)16 << 20)
/* The longest ID this client prints (Status's KME and SAE IDs). */
#define QKD_KME_CLIENT_ID_MAX 256

/* Everything borrowed only during qkd_kme_client_new. */
struct qkd_kme_client_config {
	/* The KME's base: https://HOST[:PORT][/PREFIX], with or without a
	 * trailing '/'; requests go to PREFIX/api/v1/keys/... No query, no
	 * fragment, no user:password. Only https. */
	const char *url;
	const char *cert_file;		/* PEM: this SAE's client certificate */
	const char *key_file;		/* PEM: its private key */
	const char *ca_file;		/* PEM: the CA(s) the KME's certificate must chain to */
	/* The name the KME's certificate must carry (subjectAltName DNS or
	 * IP), when it is not the URL's host: the client connects to the
	 * URL's host and port but checks, and sends as SNI, this name. NULL:
	 * the URL's host. The check is never skipped. */
	const char *server_name;
	unsigned connect_timeout_ms;	/* TCP and TLS; 0: QKD_KME_CLIENT_CONNECT_TIMEOUT_MS */
	unsigned timeout_ms;		/* a whole request; 0: QKD_KME_CLIENT_TIMEOUT_MS */
	size_t max_response_bytes;	/* largest body read; 0: QKD_KME_CLIENT_RESPONSE_MAX */
};

/* Why an operation failed. http_status is 0 when no HTTP answer came (or
 * the arguments were refused), 200 when a 200 was malformed, else the
 * KME's status with its Error object: message, and details as compact
 * JSON (an array; "" when absent). Both are for people: bytes outside
 * printable ASCII in message become '?', details is JSON with every
 * non-ASCII character escaped, and either may end in "..." when cut. */
struct qkd_kme_error {
	unsigned http_status;
	char message[256];
	char details[512];
};

/* Status (clause 6.1). IDs are 1 .. QKD_KME_CLIENT_ID_MAX bytes of
 * printable ASCII. Checked: every mandatory member present with its type,
 * integers non-negative and in range, 1 <= min_key_size <= key_size <=
 * max_key_size, max_key_per_request >= 1, stored_key_count <=
 * max_key_count, slave_SAE_ID the one asked for. */
struct qkd_kme_status {
	char source_kme_id[QKD_KME_CLIENT_ID_MAX + 1];
	char target_kme_id[QKD_KME_CLIENT_ID_MAX + 1];
	char master_sae_id[QKD_KME_CLIENT_ID_MAX + 1];
	char slave_sae_id[QKD_KME_CLIENT_ID_MAX + 1];
	uint32_t key_size;		/* bits */
	uint32_t max_key_per_request;
	uint32_t max_key_size;
	uint32_t min_key_size;
	uint32_t max_sae_id_count;
	uint64_t stored_key_count;
	uint64_t max_key_count;
	/* The body as received, NUL-terminated (set by qkd_kme_client_status;
	 * NULL after qkd_kme_parse_status). Freed by qkd_kme_status_cleanup. */
	char *body;
	size_t body_len;
};

/* One key of a Key container. bytes points into the set's buffer. */
struct qkd_kme_key {
	struct qkd_etsi014_uuid id;
	const uint8_t *bytes;
	size_t len;			/* bytes, 1 .. QKD_ETSI014_KEY_BITS_MAX / 8 */
};

/* A Key container (clause 6.3), caller-owned; release with
 * qkd_kme_keys_cleanup, which wipes. keys are in the order received. */
struct qkd_kme_keys {
	struct qkd_kme_key *keys;
	size_t n;
	/* The body as received, NUL-terminated; it holds the keys in base64
	 * (set by the client functions, NULL after qkd_kme_parse_keys). */
	char *body;
	size_t body_len;
	uint8_t *buf;			/* private: the key bytes */
	size_t buf_len;
};

/* enc_keys (clauses 5.3, 6.2). */
struct qkd_kme_enc_request {
	uint32_t number;		/* 1 .. QKD_ETSI014_KEYS_MAX; 0: not sent (the KME's default, 1) */
	/* A multiple of 8, 8 .. QKD_ETSI014_KEY_BITS_MAX; 0: not sent (the
	 * KME's key_size; the keys must then all be of one size). */
	uint32_t size_bits;
	bool post;			/* a Key request body (6.2) instead of the query */
	/* additional_slave_SAE_IDs (key multicast), valid SAE IDs; any makes
	 * the request a POST. At most QKD_ETSI014_KEYS_MAX. */
	const char *const *additional_slaves;
	size_t nadditional;
};

/* dec_keys (clauses 5.4, 6.4). One key_ID goes by GET ?key_ID= unless
 * post is set; several always go by POST as Key IDs. */
struct qkd_kme_dec_request {
	const struct qkd_etsi014_uuid *ids;	/* 1 .. QKD_ETSI014_KEYS_MAX, distinct */
	size_t n;
	uint32_t size_bits;		/* 0: any size; else every key must have it */
	bool post;
};

/* What a Key container must hold to match its request. */
struct qkd_kme_keys_expect {
	size_t number;			/* exactly this many keys, >= 1 */
	uint32_t size_bits;		/* 0: any (but one size for all when ids is NULL) */
	/* dec_keys: the key_IDs asked for (number of them); the container
	 * must hold exactly these, in any order. NULL for enc_keys: then the
	 * key_IDs must merely be distinct. */
	const struct qkd_etsi014_uuid *ids;
};

struct qkd_kme_client;

/* Install the wiping allocators of jansson (qkd_etsi014_init) and libcurl
 * (curl_global_init_mem) and start libcurl. Idempotent and thread-safe,
 * but call it before any other thread uses jansson or libcurl; if libcurl
 * was started elsewhere first, its blocks are not wiped. 0, QKD_ERR_IO or
 * QKD_ERR_NOMEM. qkd_kme_client_new calls it. */
QKD_ETSI014_WUR
int qkd_kme_client_init(void);

/* Check cfg, check that the three files can be read, and set up a client
 * (no connection yet). *out is the client, or NULL on failure. err may be
 * NULL. */
QKD_ETSI014_WUR
int qkd_kme_client_new(struct qkd_kme_client **out, const struct qkd_kme_client_config *cfg,
		       struct qkd_kme_error *err);

/* Close the connection and free. Accepts NULL. */
void qkd_kme_client_free(struct qkd_kme_client *c);

/* GET {slave}/status (clause 5.2). slave is a valid SAE ID
 * (qkd_etsi014_id_valid). On success *out is filled and owns its body;
 * on failure it is empty. */
QKD_ETSI014_WUR
int qkd_kme_client_status(struct qkd_kme_client *c, const char *slave,
			  struct qkd_kme_status *out, struct qkd_kme_error *err);

/* enc_keys for slave (clause 5.3), as the master SAE. On success *out
 * holds exactly the keys asked for; on failure it is empty. */
QKD_ETSI014_WUR
int qkd_kme_client_enc_keys(struct qkd_kme_client *c, const char *slave,
			    const struct qkd_kme_enc_request *req, struct qkd_kme_keys *out,
			    struct qkd_kme_error *err);

/* dec_keys from master (clause 5.4), as the slave SAE. On success *out
 * holds exactly the keys of req->ids (in the KME's order); on failure it
 * is empty. */
QKD_ETSI014_WUR
int qkd_kme_client_dec_keys(struct qkd_kme_client *c, const char *master,
			    const struct qkd_kme_dec_request *req, struct qkd_kme_keys *out,
			    struct qkd_kme_error *err);

/* Wipe and free what *k / *s hold and clear them. Accept NULL and a
 * zeroed or already cleaned struct. */
void qkd_kme_keys_cleanup(struct qkd_kme_keys *k);
void qkd_kme_status_cleanup(struct qkd_kme_status *s);

/* ---- the response parsers (pure; lib/kme/kme_client_parse.c) ----
 * body is len bytes (need not be NUL-terminated). Exactly one JSON object,
 * nothing after it, no duplicate member names. err may be NULL. */

/* A Status for slave (NULL: any slave_SAE_ID). 0 or QKD_ERR_PROTO (or
 * QKD_ERR_NOMEM), with *out zeroed on failure. */
QKD_ETSI014_WUR
int qkd_kme_parse_status(const char *body, size_t len, const char *slave,
			 struct qkd_kme_status *out, struct qkd_kme_error *err);

/* A Key container matching *ex: key_ID a UUID (qkd_etsi014_uuid_parse),
 * key base64 of RFC 4648 with padding (no white space), 1 ..
 * QKD_ETSI014_KEY_BITS_MAX / 8 bytes. 0 or QKD_ERR_PROTO (or QKD_ERR_INVAL
 * for a bad *ex, QKD_ERR_NOMEM); on failure *out is empty and every byte
 * decoded so far wiped. */
QKD_ETSI014_WUR
int qkd_kme_parse_keys(const char *body, size_t len, const struct qkd_kme_keys_expect *ex,
		       struct qkd_kme_keys *out, struct qkd_kme_error *err);

/* The answer to a request that failed with http_status (not 200): fills
 * *err with the status and the Error object (clause 6.5: message a
 * string, details, if present, an array of objects, nothing else). 0 when
 * the body is such an object; QKD_ERR_PROTO when it is not, and then
 * err->message says so. */
QKD_ETSI014_WUR
int qkd_kme_parse_error(unsigned http_status, const char *body, size_t len,
			struct qkd_kme_error *err);

#endif
