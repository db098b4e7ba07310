/* qkd/etsi014.h - key delivery to applications as ETSI GS QKD 014 V1.1.1
 * specifies it (DESIGN.md section 6; the API as served: docs/kme.md).
 *
 * This layer is pure: it parses a request that an HTTP server already
 * received (method, decoded path, query arguments, body), checks it against
 * the KME's limits, asks a key provider (an ops struct) for key, and builds
 * the JSON response. No socket, no file, no thread of its own. The HTTPS
 * server (qkd/kme_server.h) authenticates the caller and hands its SAE ID in.
 *
 * Resources (spec clause 5.1):
 *   GET       /api/v1/keys/{slave_SAE_ID}/status             Status (6.1)
 *   GET, POST /api/v1/keys/{slave_SAE_ID}/enc_keys           Key container (6.3)
 *             GET: ?number=N&size=S; POST: Key request (6.2)
 *   GET, POST /api/v1/keys/{master_SAE_ID}/dec_keys          Key container (6.3)
 *             GET: ?key_ID=UUID; POST: Key IDs (6.4)
 * The caller of status and enc_keys is the master SAE, the caller of
 * dec_keys the slave. Failures carry the Error object (6.5):
 *   {"message": "...", "details": [{"name": value}]}.
 *
 * Secrets: key bytes and their base64 text live only in buffers this layer
 * wipes (sodium_memzero) before freeing, response bodies included
 * (qkd_etsi014_response_cleanup). jansson keeps copies of strings, so
 * qkd_etsi014_init installs, process-wide, jansson allocation functions that
 * wipe every block they free (docs/kme.md, "Secrets").
 *
 * Errors: functions return 0 or a negative QKD_ERR_* code (qkd/error.h).
 */
#ifndef QKD_ETSI014_H
#define QKD_ETSI014_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QKD_ETSI014_WUR __attribute__((warn_unused_result))

/* Longest SAE or KME ID, in bytes. IDs are 1..64 characters of
 * [A-Za-z0-9._~-] (the URL's unreserved set: they travel in the path). */
#define QKD_ETSI014_ID_MAX 64
/* A UUID as text, 8-4-4-4-12 hex digits, without the NUL. */
#define QKD_ETSI014_UUID_LEN 36
/* Upper bounds on the configurable limits. */
#define QKD_ETSI014_KEYS_MAX 1024		/* max_key_per_request */
#define QKD_ETSI014_KEY_BITS_MAX 65536		/* max_key_size */
/* Largest request body; a larger one is refused with 413. */
#define QKD_ETSI014_BODY_MAX 65536

enum qkd_etsi014_op {
	QKD_ETSI014_STATUS,
	QKD_ETSI014_ENC_KEYS,
	QKD_ETSI014_DEC_KEYS,
};

struct qkd_etsi014_uuid {
	uint8_t b[16];
};

/* Initialize libsodium and install jansson's wiping allocator. Idempotent
 * and thread-safe, but call it before other threads use jansson: it
 * changes jansson's global allocation functions. 0, or QKD_ERR_IO when
 * libsodium cannot start. qkd_etsi014_handle calls it too. */
QKD_ETSI014_WUR
int qkd_etsi014_init(void);

/* Parse exactly len bytes of s as a UUID: 8-4-4-4-12 hex digits with '-'
 * between the groups, nothing else (no braces, no "urn:uuid:", no space).
 * Hex digits of either case are accepted (RFC 4122 section 3); version and
 * variant bits are not checked. 0 or QKD_ERR_INVAL. */
QKD_ETSI014_WUR
int qkd_etsi014_uuid_parse(const char *s, size_t len, struct qkd_etsi014_uuid *out);
/* Write u as 36 lowercase characters and a NUL. */
void qkd_etsi014_uuid_format(const struct qkd_etsi014_uuid *u,
			     char out[QKD_ETSI014_UUID_LEN + 1]);
/* A random version-4 UUID (RFC 4122 section 4.4) from libsodium's CSPRNG. */
void qkd_etsi014_uuid_random(struct qkd_etsi014_uuid *u);

/* True when s is a valid SAE or KME ID (see QKD_ETSI014_ID_MAX). */
bool qkd_etsi014_id_valid(const char *s);

/* What the KME serves, reported in Status (clause 6.1). Sizes are in bits
 * and multiples of 8 (keys are whole bytes):
 * 8 <= min_key_size <= key_size <= max_key_size <= QKD_ETSI014_KEY_BITS_MAX,
 * 1 <= max_key_per_request <= QKD_ETSI014_KEYS_MAX. max_SAE_ID_count is
 * always 0: key multicast (additional_slave_SAE_IDs) is not supported. */
struct qkd_etsi014_limits {
	uint32_t key_size;		/* default size of a key */
	uint32_t min_key_size;
	uint32_t max_key_size;
	uint32_t max_key_per_request;	/* also bounds the key_IDs of one dec_keys */
};

/* 0, or QKD_ERR_INVAL with *why saying which rule above is broken. */
QKD_ETSI014_WUR
int qkd_etsi014_limits_check(const struct qkd_etsi014_limits *l, const char **why);

/* One key crossing the provider interface. bytes points to cap bytes the
 * layer owns and wipes; the provider writes len <= cap bytes there. */
struct qkd_etsi014_key {
	struct qkd_etsi014_uuid id;
	uint8_t *bytes;
	size_t cap;
	size_t len;
	/* A key relayed across the network (docs/relay.md "In the key
	 * manager"): over how many node-disjoint paths (1 or 2) and the
	 * longest path's links; 0 for a key of this node's own links. When
	 * set, enc_keys answers them as the key's key_extension
	 * {"relay": {"paths": P, "hops": H}} (clause 6.3 allows the object). */
	unsigned relay_paths, relay_hops;
};

/* What a provider reports for Status, for one (master, slave) pair. */
struct qkd_etsi014_counts {
	char target_kme_id[QKD_ETSI014_ID_MAX + 1];	/* the slave's KME */
	uint64_t stored_key_count;	/* keys of key_size bits available now */
	uint64_t max_key_count;		/* the most it can store */
};

/* The key provider: where the key comes from (the key store and, later, the
 * peer node; tests use an in-memory pool). Called concurrently from the
 * server's connection threads: the provider serializes. master and slave are
 * valid IDs and differ; the layer checked number, size and the key_IDs'
 * syntax. Each call returns 0, or:
 *   QKD_ERR_RANGE   not enough key                          -> 503
 *   QKD_ERR_INVAL   an unknown SAE, a key_ID unknown, already
 *                   delivered, withdrawn or expired, a size the
 *                   pair cannot serve                         -> 400
 *   QKD_ERR_VERIFY  the caller may not have this key: the pair is not
 *                   allowed, or the key_ID was issued to another pair -> 401
 *   anything else   the key manager failed                    -> 503
 * with *why a static reason (no key material in it). Both key calls are all
 * or nothing, and the layer wipes keys on failure. What a failure consumes
 * (docs/kme.md, "The provider interface"): dec, nothing; enc, nothing when
 * it fails before any key is cut (bad arguments, RANGE, the peer
 * unreachable). A provider whose keys must reach another party before enc
 * answers (qkd node: the peer KME) may fail after cutting them; it must
 * then never hand those keys out anywhere (qkd node withdraws them at the
 * peer) and count their bits as lost, since bits that may already be
 * consumed at the peer cannot return to the pool at one end only. */
struct qkd_etsi014_provider {
	/* Hand out number keys of size_bits bits for master -> slave. keys[i]
	 * has cap = size_bits / 8; set its id (unique, never reused), its
	 * bytes and len = cap. */
	int (*enc)(void *ctx, const char *master, const char *slave, uint32_t number,
		   uint32_t size_bits, struct qkd_etsi014_key *keys, const char **why);
	/* Hand out, once, the keys that enc gave master for slave (the caller)
	 * under keys[0..n).id, in that order; cap is max_key_size / 8. On
	 * QKD_ERR_INVAL or QKD_ERR_VERIFY set *bad to the index of the key_ID
	 * at fault (or leave it at n). */
	int (*dec)(void *ctx, const char *master, const char *slave,
		   struct qkd_etsi014_key *keys, size_t n, size_t *bad, const char **why);
	int (*status)(void *ctx, const char *master, const char *slave,
		      struct qkd_etsi014_counts *counts, const char **why);
};

/* One KME as the layer sees it. Borrowed by qkd_etsi014_handle. */
struct qkd_etsi014_kme {
	const char *kme_id;			/* source_KME_ID */
	struct qkd_etsi014_limits lim;
	const struct qkd_etsi014_provider *ops;
	void *ctx;
};

/* A query argument as the HTTP server decoded it; value is NULL for a bare
 * "?name" without '='. */
struct qkd_etsi014_arg {
	const char *name;
	const char *value;
};

/* A request as received. path is decoded and without the query. body need
 * not be NUL-terminated (body_len bytes; NULL when 0). target is the
 * request-target as it came on the wire, path and query before any
 * percent-decoding (RFC 9112 section 3.2), checked with
 * qkd_etsi014_target_check; NULL when the server has none (then only path
 * and args are checked). All borrowed. */
struct qkd_etsi014_http {
	const char *method;
	const char *path;
	const struct qkd_etsi014_arg *args;
	size_t nargs;
	const char *body;
	size_t body_len;
	const char *target;
};

/* A request after parsing, defaults applied (clause 6.2: number 1, size
 * key_size). Caller-owned; ids is heap-allocated, freed by cleanup. */
struct qkd_etsi014_request {
	enum qkd_etsi014_op op;
	char sae[QKD_ETSI014_ID_MAX + 1];	/* the SAE ID of the path */
	uint32_t number;			/* enc_keys */
	uint32_t size;				/* enc_keys, bits */
	struct qkd_etsi014_uuid *ids;		/* dec_keys: nids key_IDs */
	size_t nids;
};

void qkd_etsi014_request_cleanup(struct qkd_etsi014_request *r);

struct json_t;

/* Why a request failed: the HTTP status, the Error object's message, and
 * its single details entry (a JSON object, owned, or NULL). */
struct qkd_etsi014_error {
	unsigned status;
	char message[160];
	struct json_t *detail;
};

/* Release err->detail and clear err. Accepts an err never filled. */
void qkd_etsi014_error_cleanup(struct qkd_etsi014_error *err);

/* Check a request-target before the HTTP server's percent-decoding hides
 * what it was: origin-form only ('/' first; RFC 9112 section 3.2.1), only
 * the characters of RFC 3986 section 3.3 and 3.4 (pchar, '/', '?'), every
 * '%' followed by two hex digits (section 2.1), no %00 anywhere (a NUL would
 * cut a decoded parameter short: "number=1%00x" must not read as 1), and no
 * %2F or %5C in the path (an encoded '/' or '\' would become a separator
 * once decoded). 0, or QKD_ERR_INVAL with err filled (400). err must start
 * zeroed; the caller cleans it up. */
QKD_ETSI014_WUR
int qkd_etsi014_target_check(const char *target, struct qkd_etsi014_error *err);

/* Parse and validate h (everything but who the caller is) into *r, which
 * the caller cleans up in every case. 0, or on failure QKD_ERR_INVAL with
 * err filled (status 400, 404 unknown resource, 405 method, 413 body too
 * large) or QKD_ERR_NOMEM (err says 503). err must start zeroed; the caller
 * cleans it up. */
QKD_ETSI014_WUR
int qkd_etsi014_parse(const struct qkd_etsi014_limits *lim, const struct qkd_etsi014_http *h,
		      struct qkd_etsi014_request *r, struct qkd_etsi014_error *err);

/* A response: HTTP status and a NUL-terminated JSON body of len bytes.
 * body may hold key material: release it with qkd_etsi014_response_cleanup
 * (wipes, frees) or, once handed to an HTTP library that frees by pointer
 * alone, with qkd_etsi014_free. */
struct qkd_etsi014_response {
	unsigned status;
	char *body;
	size_t len;
	size_t nkeys;		/* keys in a 200 Key container (the server's counters) */
};

void qkd_etsi014_response_cleanup(struct qkd_etsi014_response *resp);
/* Wipe the whole heap block p (malloc_usable_size) and free it. Accepts NULL. */
void qkd_etsi014_free(void *p);

/* The Error object of err as a response. 0 or QKD_ERR_NOMEM. */
QKD_ETSI014_WUR
int qkd_etsi014_error_response(const struct qkd_etsi014_error *err,
			       struct qkd_etsi014_response *resp);

/* Serve one request of caller (the SAE ID the server bound to the client
 * certificate; NULL when there is none: 401) against kme. *resp (zeroed by
 * the caller) receives the response, success or failure: 0, or
 * QKD_ERR_NOMEM when not even an error body could be built (resp empty;
 * the server answers 503 without a body). */
QKD_ETSI014_WUR
int qkd_etsi014_handle(const struct qkd_etsi014_kme *kme, const char *caller,
		       const struct qkd_etsi014_http *h, struct qkd_etsi014_response *resp);

#endif
