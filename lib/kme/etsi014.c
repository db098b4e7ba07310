/* etsi014.c - ETSI GS QKD 014 V1.1.1 requests and responses (qkd/etsi014.h).
 *
 * Clause numbers refer to the spec: 5.2 Get status, 5.3 Get key, 5.4 Get key
 * with key IDs; 6.1 Status, 6.2 Key request, 6.3 Key container, 6.4 Key IDs,
 * 6.5 Error. Everything a client sends is checked here, strictly: unknown
 * fields and parameters are refused rather than ignored, so that a typo
 * ("numbr") never silently yields the default.
 */
#include "qkd/etsi014.h"

#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "qkd/error.h"

#define API_PREFIX "/api/v1/keys/"
#define JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER)

/* ---- secrets ---- */

void qkd_etsi014_free(void *p)
{
	if (p == NULL)
		return;
	sodium_memzero(p, malloc_usable_size(p));
	free(p);
}

static void *json_alloc(size_t n)
{
	return malloc(n);
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc = QKD_ERR_IO;

/* jansson copies every string it is given (the base64 of keys among them)
 * and grows its dump buffers by copy: with this free function every such
 * copy is wiped when jansson releases it. */
static void init_run(void)
{
	if (sodium_init() < 0)
		return;
	json_set_alloc_funcs(json_alloc, qkd_etsi014_free);
	init_rc = 0;
}

int qkd_etsi014_init(void)
{
	if (pthread_once(&init_once, init_run) != 0)
		return QKD_ERR_IO;
	return init_rc;
}

void qkd_etsi014_response_cleanup(struct qkd_etsi014_response *resp)
{
	if (resp == NULL)
		return;
	qkd_etsi014_free(resp->body);
	resp->body = NULL;
	resp->len = 0;
}

/* ---- identifiers ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int qkd_etsi014_uuid_parse(const char *s, size_t len, struct qkd_etsi014_uuid *out)
{
	struct qkd_etsi014_uuid u;
	size_t n = 0;

	if (s == NULL || len != QKD_ETSI014_UUID_LEN)
		return QKD_ERR_INVAL;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return QKD_ERR_INVAL;
			continue;
		}
		hi = hexval(s[i]);
		lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return QKD_ERR_INVAL;
		u.b[n++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	*out = u;
	return 0;
}

void qkd_etsi014_uuid_format(const struct qkd_etsi014_uuid *u, char out[QKD_ETSI014_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[u->b[i] >> 4];
		out[o++] = hex[u->b[i] & 15];
	}
	out[o] = '\0';
}

void qkd_etsi014_uuid_random(struct qkd_etsi014_uuid *u)
{
	randombytes_buf(u->b, sizeof u->b);
	u->b[6] = (uint8_t)((u->b[6] & 0x0f) | 0x40);	/* version 4 */
	u->b[8] = (uint8_t)((u->b[8] & 0x3f) | 0x80);	/* variant 10 */
}

bool qkd_etsi014_id_valid(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	for (n = 0; s[n] != '\0'; n++) {
		char c = s[n];

		if (n >= QKD_ETSI014_ID_MAX)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '~' || c == '-'))
			return false;
	}
	return n > 0;
}

int qkd_etsi014_limits_check(const struct qkd_etsi014_limits *l, const char **why)
{
	const char *w = NULL;

	if (l->min_key_size % 8 || l->key_size % 8 || l->max_key_size % 8)
		w = "key sizes must be multiples of 8 bits";
	else if (l->min_key_size < 8 || l->min_key_size > l->key_size ||
		 l->key_size > l->max_key_size || l->max_key_size > QKD_ETSI014_KEY_BITS_MAX)
		w = "key sizes must satisfy 8 <= min <= default <= max <= 65536";
	else if (l->max_key_per_request < 1 || l->max_key_per_request > QKD_ETSI014_KEYS_MAX)
		w = "max_key_per_request must be 1 .. 1024";
	if (why != NULL)
		*why = w;
	return w == NULL ? 0 : QKD_ERR_INVAL;
}

/* ---- errors ---- */

void qkd_etsi014_error_cleanup(struct qkd_etsi014_error *err)
{
	if (err == NULL)
		return;
	json_decref(err->detail);
	memset(err, 0, sizeof *err);
}

void qkd_etsi014_request_cleanup(struct qkd_etsi014_request *r)
{
	if (r == NULL)
		return;
	free(r->ids);
	memset(r, 0, sizeof *r);
}

/* Fill err (keeping the first failure) and take ownership of detail. */
__attribute__((format(printf, 4, 5)))
static int fail(struct qkd_etsi014_error *err, unsigned status, json_t *detail,
		const char *fmt, ...)
{
	va_list ap;

	if (err->status != 0) {
		json_decref(detail);
		return QKD_ERR_INVAL;
	}
	err->status = status;
	err->detail = detail;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return status == 503 ? QKD_ERR_NOMEM : QKD_ERR_INVAL;
}

static int fail_nomem(struct qkd_etsi014_error *err)
{
	return fail(err, 503, NULL, "the key manager is out of memory");
}

/* Render root into resp (the caller keeps root). */
static int dump(const json_t *root, unsigned status, struct qkd_etsi014_response *resp)
{
	size_t n = json_dumpb(root, NULL, 0, JSON_FLAGS);
	char *buf;

	if (n == 0 || (buf = malloc(n + 1)) == NULL)
		return QKD_ERR_NOMEM;
	if (json_dumpb(root, buf, n, JSON_FLAGS) != n) {
		qkd_etsi014_free(buf);
		return QKD_ERR_NOMEM;
	}
	buf[n] = '\0';
	resp->status = status;
	resp->body = buf;
	resp->len = n;
	return 0;
}

int qkd_etsi014_error_response(const struct qkd_etsi014_error *err,
			       struct qkd_etsi014_response *resp)
{
	json_t *root = json_object(), *details = NULL;
	int rc = QKD_ERR_NOMEM;

	if (root == NULL || json_object_set_new(root, "message", json_string(err->message)) != 0)
		goto out;
	if (err->detail != NULL) {
		if ((details = json_array()) == NULL ||
		    json_array_append(details, err->detail) != 0 ||
		    json_object_set_new(root, "details", details) != 0)
			goto out;
		details = NULL;
	}
	rc = dump(root, err->status ? err->status : 503, resp);
out:
	json_decref(details);
	json_decref(root);
	return rc;
}

/* ---- path, method, query ---- */

/* RFC 3986 section 3.3 and 3.4: outside of percent-encoding a path is made
 * of pchar and '/', a query of pchar, '/' and '?'; pchar is unreserved,
 * sub-delims, ':' and '@'. */
static bool target_char(unsigned char c)
{
	static const char other[] = "-._~!$&'()*+,;=:@/?";

	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && memchr(other, c, sizeof other - 1) != NULL);
}

/* The escape at t[0] == '%': its byte, or -1 when not "%" HEXDIG HEXDIG. */
static int pct_byte(const char *t)
{
	int hi = hexval(t[1]), lo = hi >= 0 ? hexval(t[2]) : -1;

	return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
}

int qkd_etsi014_target_check(const char *target, struct qkd_etsi014_error *err)
{
	bool query = false;
	int b;

	if (target == NULL || target[0] != '/')
		return fail(err, 400, NULL, "the request-target must be a path (origin-form, "
			    "RFC 9112 section 3.2.1)");
	for (size_t i = 0; target[i] != '\0'; i++) {
		if (target[i] == '?')
			query = true;
		if (target[i] != '%') {
			if (!target_char((unsigned char)target[i]))
				return fail(err, 400, json_pack("{s:I}", "position", (json_int_t)i),
					    "character not allowed in the request-target (RFC 3986)");
			continue;
		}
		if ((b = pct_byte(target + i)) < 0)
			return fail(err, 400, json_pack("{s:I}", "position", (json_int_t)i),
				    "malformed percent-encoding in the request-target");
		if (b == 0)
			return fail(err, 400, json_pack("{s:I}", "position", (json_int_t)i),
				    "NUL byte (%%00) in the request-target");
		if (!query && (b == '/' || b == '\\'))
			return fail(err, 400, json_pack("{s:I}", "position", (json_int_t)i),
				    "encoded '/' or '\\' (%%2F, %%5C) in the path");
		i += 2;
	}
	return 0;
}

/* /api/v1/keys/{SAE_ID}/{status|enc_keys|dec_keys}, nothing more. */
static int parse_path(const char *path, struct qkd_etsi014_request *r,
		      struct qkd_etsi014_error *err)
{
	static const struct { const char *name; enum qkd_etsi014_op op; } res[] = {
		{ "status", QKD_ETSI014_STATUS },
		{ "enc_keys", QKD_ETSI014_ENC_KEYS },
		{ "dec_keys", QKD_ETSI014_DEC_KEYS },
	};
	const char *id, *slash;
	size_t idlen;

	if (path == NULL || strncmp(path, API_PREFIX, strlen(API_PREFIX)) != 0)
		return fail(err, 404, NULL, "no such resource (the API is under " API_PREFIX ")");
	id = path + strlen(API_PREFIX);
	if ((slash = strchr(id, '/')) == NULL)
		return fail(err, 404, NULL, "no such resource");
	for (size_t i = 0; i < sizeof res / sizeof res[0]; i++) {
		if (strcmp(slash + 1, res[i].name) != 0)
			continue;
		idlen = (size_t)(slash - id);
		if (idlen == 0 || idlen > QKD_ETSI014_ID_MAX)
			return fail(err, 400, NULL, "malformed SAE ID in the path");
		memcpy(r->sae, id, idlen);
		r->sae[idlen] = '\0';
		if (!qkd_etsi014_id_valid(r->sae))
			return fail(err, 400, NULL, "malformed SAE ID in the path");
		r->op = res[i].op;
		return 0;
	}
	return fail(err, 404, NULL, "no such resource (status, enc_keys or dec_keys)");
}

/* status: GET; enc_keys, dec_keys: GET with arguments or POST with a body. */
static int check_method(const struct qkd_etsi014_http *h, enum qkd_etsi014_op op, bool *post,
			struct qkd_etsi014_error *err)
{
	const char *m = h->method ? h->method : "";

	*post = strcmp(m, "POST") == 0;
	if (strcmp(m, "GET") != 0 && !(*post && op != QKD_ETSI014_STATUS))
		return fail(err, 405, json_pack("{s:s}", "method", m),
			    "method not allowed (%s)", op == QKD_ETSI014_STATUS ? "GET" : "GET or POST");
	if (!*post && h->body_len > 0)
		return fail(err, 400, NULL, "a GET request takes no body");
	if (*post && h->nargs > 0)
		return fail(err, 400, json_pack("{s:s}", "parameter", h->args[0].name),
			    "a POST request takes its parameters in the JSON body, not the query");
	if (h->body_len > QKD_ETSI014_BODY_MAX)
		return fail(err, 413, json_pack("{s:I}", "max_body_bytes", (json_int_t)QKD_ETSI014_BODY_MAX),
			    "request body too large");
	return 0;
}

/* A query value: 1 to 10 decimal digits, no sign, within uint32. */
static int parse_decimal(const char *name, const char *v, uint32_t *out,
			 struct qkd_etsi014_error *err)
{
	uint64_t x = 0;
	size_t n;

	for (n = 0; v != NULL && v[n] >= '0' && v[n] <= '9' && n < 11; n++)
		x = x * 10 + (uint64_t)(v[n] - '0');
	if (v == NULL || n == 0 || v[n] != '\0' || n > 10 || x > UINT32_MAX)
		return fail(err, 400, json_pack("{s:s}", name, v ? v : ""),
			    "%s must be a decimal integer", name);
	*out = (uint32_t)x;
	return 0;
}

/* GET enc_keys: number and size, each at most once (clause 5.3). */
static int parse_enc_args(const struct qkd_etsi014_http *h, struct qkd_etsi014_request *r,
			  bool *has_number, bool *has_size, struct qkd_etsi014_error *err)
{
	for (size_t i = 0; i < h->nargs; i++) {
		const char *name = h->args[i].name ? h->args[i].name : "";
		bool *seen;
		uint32_t *dst;

		if (strcmp(name, "number") == 0) {
			seen = has_number;
			dst = &r->number;
		} else if (strcmp(name, "size") == 0) {
			seen = has_size;
			dst = &r->size;
		} else {
			return fail(err, 400, json_pack("{s:s}", "parameter", name),
				    "unknown query parameter (enc_keys takes number and size)");
		}
		if (*seen)
			return fail(err, 400, json_pack("{s:s}", "parameter", name),
				    "query parameter given twice");
		if (parse_decimal(name, h->args[i].value, dst, err) != 0)
			return QKD_ERR_INVAL;
		*seen = true;
	}
	return 0;
}

/* GET dec_keys: exactly one key_ID (clause 5.4). */
static int parse_dec_args(const struct qkd_etsi014_http *h, struct qkd_etsi014_request *r,
			  struct qkd_etsi014_error *err)
{
	const char *v;

	for (size_t i = 0; i < h->nargs; i++)
		if (h->args[i].name == NULL || strcmp(h->args[i].name, "key_ID") != 0)
			return fail(err, 400, json_pack("{s:s}", "parameter",
							h->args[i].name ? h->args[i].name : ""),
				    "unknown query parameter (dec_keys takes key_ID)");
	if (h->nargs != 1)
		return fail(err, 400, NULL, h->nargs == 0 ? "key_ID is missing" :
			    "give one key_ID per GET (POST takes several)");
	if ((r->ids = calloc(1, sizeof *r->ids)) == NULL)
		return fail_nomem(err);
	v = h->args[0].value ? h->args[0].value : "";
	if (qkd_etsi014_uuid_parse(v, strlen(v), &r->ids[0]) != 0)
		return fail(err, 400, json_pack("{s:s}", "key_ID", v), "malformed key_ID (not a UUID)");
	r->nids = 1;
	return 0;
}

/* ---- JSON bodies ---- */

static json_t *load_object(const struct qkd_etsi014_http *h, struct qkd_etsi014_error *err)
{
	json_error_t je;
	json_t *root;

	root = json_loadb(h->body ? h->body : "", h->body_len,
			  JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (root == NULL) {
		fail(err, 400, json_pack("{s:s,s:I}", "json_error", je.text, "position",
					 (json_int_t)je.position),
		     "request body is not valid JSON");
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		fail(err, 400, NULL, "request body must be a JSON object");
		return NULL;
	}
	return root;
}

static int json_u32(const char *name, const json_t *v, uint32_t *out,
		    struct qkd_etsi014_error *err)
{
	json_int_t x;

	if (!json_is_integer(v))
		return fail(err, 400, json_pack("{s:O}", name, v), "%s must be an integer", name);
	x = json_integer_value(v);
	if (x < 0 || x > (json_int_t)UINT32_MAX)
		return fail(err, 400, json_pack("{s:O}", name, v), "%s is out of range", name);
	*out = (uint32_t)x;
	return 0;
}

/* extension_mandatory / extension_optional: arrays of objects whose member
 * names are the extension parameters. This KME implements none, so every
 * mandatory one is refused (clause 6.2: "KME shall handle or return an
 * error") and optional ones are ignored. */
static int check_extensions(const char *field, const json_t *v, bool mandatory,
			    struct qkd_etsi014_error *err)
{
	json_t *names, *item, *val;
	const char *name;
	size_t i;

	if (!json_is_array(v))
		return fail(err, 400, NULL, "%s must be an array of objects", field);
	json_array_foreach(v, i, item)
		if (!json_is_object(item))
			return fail(err, 400, NULL, "%s must be an array of objects", field);
	if (!mandatory || json_array_size(v) == 0)
		return 0;
	if ((names = json_array()) == NULL)
		return fail_nomem(err);
	json_array_foreach(v, i, item)
		json_object_foreach(item, name, val)
			(void)json_array_append_new(names, json_string(name));
	if (json_array_size(names) == 0) {
		json_decref(names);
		return 0;
	}
	return fail(err, 400, json_pack("{s:o}", "extension_mandatory_unsupported", names),
		    "not all extension_mandatory parameters are supported");
}

/* additional_slave_SAE_IDs: key multicast, which this KME does not offer
 * (max_SAE_ID_count is 0), so only an empty array passes. */
static int check_additional(const json_t *v, struct qkd_etsi014_error *err)
{
	const json_t *item;
	size_t i;

	if (!json_is_array(v))
		return fail(err, 400, NULL, "additional_slave_SAE_IDs must be an array of strings");
	json_array_foreach(v, i, item)
		if (!json_is_string(item) || !qkd_etsi014_id_valid(json_string_value(item)))
			return fail(err, 400, NULL,
				    "additional_slave_SAE_IDs must be an array of SAE IDs");
	if (json_array_size(v) > 0)
		return fail(err, 400, json_pack("{s:i}", "max_SAE_ID_count", 0),
			    "key multicast (additional_slave_SAE_IDs) is not supported");
	return 0;
}

/* POST enc_keys: the Key request object (clause 6.2). A null member counts
 * as absent. */
static int parse_key_request(const struct qkd_etsi014_http *h, struct qkd_etsi014_request *r,
			     bool *has_number, bool *has_size, struct qkd_etsi014_error *err)
{
	json_t *root, *v;
	const char *k;
	int rc = 0;

	if ((root = load_object(h, err)) == NULL)
		return QKD_ERR_INVAL;
	json_object_foreach(root, k, v) {
		if (json_is_null(v))
			continue;
		if (strcmp(k, "number") == 0) {
			rc = json_u32(k, v, &r->number, err);
			*has_number = true;
		} else if (strcmp(k, "size") == 0) {
			rc = json_u32(k, v, &r->size, err);
			*has_size = true;
		} else if (strcmp(k, "additional_slave_SAE_IDs") == 0) {
			rc = check_additional(v, err);
		} else if (strcmp(k, "extension_mandatory") == 0) {
			rc = check_extensions(k, v, true, err);
		} else if (strcmp(k, "extension_optional") == 0) {
			rc = check_extensions(k, v, false, err);
		} else {
			rc = fail(err, 400, json_pack("{s:s}", "field", k),
				  "unknown field in the key request");
		}
		if (rc != 0)
			break;
	}
	json_decref(root);
	return rc;
}

/* One element of key_IDs: {"key_ID": UUID, "key_ID_extension": {...}}. */
static int parse_key_id(const json_t *item, struct qkd_etsi014_uuid *out,
			struct qkd_etsi014_error *err)
{
	const json_t *v;
	const char *k;
	bool have = false;

	if (!json_is_object(item))
		return fail(err, 400, NULL, "each key_IDs element must be an object");
	json_object_foreach((json_t *)item, k, v) {
		if (strcmp(k, "key_ID_extension") == 0) {
			if (!json_is_object(v) && !json_is_null(v))
				return fail(err, 400, NULL, "key_ID_extension must be an object");
		} else if (strcmp(k, "key_ID") == 0) {
			if (!json_is_string(v) ||
			    qkd_etsi014_uuid_parse(json_string_value(v), json_string_length(v), out) != 0)
				return fail(err, 400, json_pack("{s:O}", "key_ID", v),
					    "malformed key_ID (not a UUID)");
			have = true;
		} else {
			return fail(err, 400, json_pack("{s:s}", "field", k),
				    "unknown field in a key_IDs element");
		}
	}
	if (!have)
		return fail(err, 400, NULL, "a key_IDs element has no key_ID");
	return 0;
}

/* The key_IDs array: 1 .. max_key_per_request distinct UUIDs. */
static int parse_id_array(const json_t *arr, uint32_t max, struct qkd_etsi014_request *r,
			  struct qkd_etsi014_error *err)
{
	const json_t *item;
	size_t i, n;

	if (!json_is_array(arr) || (n = json_array_size(arr)) == 0)
		return fail(err, 400, NULL, "key_IDs must be a non-empty array");
	if (n > max)
		return fail(err, 400, json_pack("{s:I}", "max_key_per_request", (json_int_t)max),
			    "too many key_IDs in one request");
	if ((r->ids = calloc(n, sizeof *r->ids)) == NULL)
		return fail_nomem(err);
	json_array_foreach(arr, i, item) {
		if (parse_key_id(item, &r->ids[i], err) != 0)
			return QKD_ERR_INVAL;
		for (size_t j = 0; j < i; j++)
			if (memcmp(&r->ids[j], &r->ids[i], sizeof r->ids[i]) == 0)
				return fail(err, 400, json_pack("{s:O}", "key_ID",
								json_object_get(item, "key_ID")),
					    "key_ID requested twice");
	}
	r->nids = n;
	return 0;
}

/* POST dec_keys: the Key IDs object (clause 6.4). */
static int parse_key_ids(const struct qkd_etsi014_http *h, uint32_t max,
			 struct qkd_etsi014_request *r, struct qkd_etsi014_error *err)
{
	json_t *root, *v, *ids = NULL;
	const char *k;
	int rc = 0;

	if ((root = load_object(h, err)) == NULL)
		return QKD_ERR_INVAL;
	json_object_foreach(root, k, v) {
		if (strcmp(k, "key_IDs") == 0) {
			ids = v;
		} else if (strcmp(k, "key_IDs_extension") == 0) {
			if (!json_is_object(v) && !json_is_null(v))
				rc = fail(err, 400, NULL, "key_IDs_extension must be an object");
		} else {
			rc = fail(err, 400, json_pack("{s:s}", "field", k),
				  "unknown field in the key IDs request");
		}
		if (rc != 0)
			goto out;
	}
	if (ids == NULL)
		rc = fail(err, 400, NULL, "key_IDs is missing");
	else
		rc = parse_id_array(ids, max, r, err);
out:
	json_decref(root);
	return rc;
}

/* Defaults of clause 6.2, then the KME's limits (Status, clause 6.1). */
static int check_enc(const struct qkd_etsi014_limits *lim, struct qkd_etsi014_request *r,
		     bool has_number, bool has_size, struct qkd_etsi014_error *err)
{
	if (!has_number)
		r->number = 1;
	if (!has_size)
		r->size = lim->key_size;
	if (r->number < 1 || r->number > lim->max_key_per_request)
		return fail(err, 400, json_pack("{s:I,s:I}", "number", (json_int_t)r->number,
						"max_key_per_request",
						(json_int_t)lim->max_key_per_request),
			    "number must be between 1 and max_key_per_request");
	if (r->size % 8 != 0)
		return fail(err, 400, json_pack("{s:I}", "size", (json_int_t)r->size),
			    "size must be a multiple of 8 bits");
	if (r->size < lim->min_key_size || r->size > lim->max_key_size)
		return fail(err, 400, json_pack("{s:I,s:I,s:I}", "size", (json_int_t)r->size,
						"min_key_size", (json_int_t)lim->min_key_size,
						"max_key_size", (json_int_t)lim->max_key_size),
			    "size must be between min_key_size and max_key_size");
	return 0;
}

int qkd_etsi014_parse(const struct qkd_etsi014_limits *lim, const struct qkd_etsi014_http *h,
		      struct qkd_etsi014_request *r, struct qkd_etsi014_error *err)
{
	bool post = false, has_number = false, has_size = false;
	int rc;

	memset(r, 0, sizeof *r);
	if (h->target != NULL && (rc = qkd_etsi014_target_check(h->target, err)) != 0)
		return rc;
	if ((rc = parse_path(h->path, r, err)) != 0 ||
	    (rc = check_method(h, r->op, &post, err)) != 0)
		return rc;
	switch (r->op) {
	case QKD_ETSI014_STATUS:
		if (h->nargs > 0)
			return fail(err, 400, json_pack("{s:s}", "parameter",
							h->args[0].name ? h->args[0].name : ""),
				    "status takes no query parameter");
		return 0;
	case QKD_ETSI014_ENC_KEYS:
		rc = post ? parse_key_request(h, r, &has_number, &has_size, err)
			  : parse_enc_args(h, r, &has_number, &has_size, err);
		return rc != 0 ? rc : check_enc(lim, r, has_number, has_size, err);
	case QKD_ETSI014_DEC_KEYS:
		return post ? parse_key_ids(h, lim->max_key_per_request, r, err)
			    : parse_dec_args(h, r, err);
	}
	return fail(err, 404, NULL, "no such resource");
}

/* ---- serving ---- */

/* keys[0..n), each with cap bytes of one wiped buffer. */
struct keyset {
	struct qkd_etsi014_key *keys;
	uint8_t *buf;
	size_t n, cap;
};

static int keyset_alloc(struct keyset *ks, size_t n, size_t cap)
{
	ks->n = n;
	ks->cap = cap;
	ks->keys = calloc(n, sizeof *ks->keys);
	ks->buf = calloc(n, cap);
	if (ks->keys == NULL || ks->buf == NULL)
		return QKD_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		ks->keys[i].bytes = ks->buf + i * cap;
		ks->keys[i].cap = cap;
	}
	return 0;
}

static void keyset_free(struct keyset *ks)
{
	if (ks->buf != NULL)
		sodium_memzero(ks->buf, ks->n * ks->cap);
	free(ks->buf);
	free(ks->keys);
	memset(ks, 0, sizeof *ks);
}

/* Map a provider failure to the Error object (see qkd_etsi014_provider). */
static int provider_fail(int rc, const char *why, json_t *detail, struct qkd_etsi014_error *err)
{
	if (why == NULL)
		why = qkd_strerror(rc);
	switch (rc) {
	case QKD_ERR_RANGE:
		return fail(err, 503, detail, "not enough key available: %s", why);
	case QKD_ERR_INVAL:
		return fail(err, 400, detail, "%s", why);
	case QKD_ERR_VERIFY:
		return fail(err, 401, detail, "unauthorized: %s", why);
	default:
		return fail(err, 503, detail, "key manager error: %s", why);
	}
}

/* The Key container (clause 6.3) of keys[0..n): {"keys": [{"key_ID": UUID,
 * "key": base64}]}. Every copy of the base64 is wiped: ours here, jansson's
 * by the allocator of qkd_etsi014_init, the body by its owner. */
static int key_container(const struct qkd_etsi014_key *keys, size_t n, size_t maxlen,
			 struct qkd_etsi014_response *resp)
{
	size_t b64len = sodium_base64_ENCODED_LEN(maxlen, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = malloc(b64len), id[QKD_ETSI014_UUID_LEN + 1];
	json_t *root = NULL, *arr = json_array();
	int rc = QKD_ERR_NOMEM;

	if (b64 == NULL || arr == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		qkd_etsi014_uuid_format(&keys[i].id, id);
		sodium_bin2base64(b64, b64len, keys[i].bytes, keys[i].len,
				  sodium_base64_VARIANT_ORIGINAL);
		if (json_array_append_new(arr, json_pack("{s:s,s:s}", "key_ID", id, "key", b64)) != 0)
			goto out;
	}
	if ((root = json_pack("{s:O}", "keys", arr)) != NULL)
		rc = dump(root, 200, resp);
	if (rc == 0)
		resp->nkeys = n;
out:
	if (b64 != NULL)
		sodium_memzero(b64, b64len);
	free(b64);
	json_decref(arr);
	json_decref(root);
	return rc;
}

static int do_enc(const struct qkd_etsi014_kme *kme, const char *caller,
		  const struct qkd_etsi014_request *r, struct qkd_etsi014_response *resp,
		  struct qkd_etsi014_error *err)
{
	struct keyset ks = {0};
	const char *why = NULL;
	int rc;

	if (keyset_alloc(&ks, r->number, r->size / 8) != 0) {
		rc = fail_nomem(err);
		goto out;
	}
	rc = kme->ops->enc(kme->ctx, caller, r->sae, r->number, r->size, ks.keys, &why);
	if (rc != 0) {
		rc = provider_fail(rc, why, json_pack("{s:I,s:I}", "number", (json_int_t)r->number,
						      "size", (json_int_t)r->size), err);
		goto out;
	}
	for (size_t i = 0; i < ks.n; i++)
		if (ks.keys[i].len != ks.cap) {
			rc = fail(err, 503, NULL, "key manager error: a key of the wrong size");
			goto out;
		}
	if ((rc = key_container(ks.keys, ks.n, ks.cap, resp)) != 0)
		rc = fail_nomem(err);
out:
	keyset_free(&ks);
	return rc;
}

static int do_dec(const struct qkd_etsi014_kme *kme, const char *caller,
		  const struct qkd_etsi014_request *r, struct qkd_etsi014_response *resp,
		  struct qkd_etsi014_error *err)
{
	struct keyset ks = {0};
	char id[QKD_ETSI014_UUID_LEN + 1];
	const char *why = NULL;
	size_t bad = r->nids;
	int rc;

	if (keyset_alloc(&ks, r->nids, kme->lim.max_key_size / 8) != 0) {
		rc = fail_nomem(err);
		goto out;
	}
	for (size_t i = 0; i < ks.n; i++)
		ks.keys[i].id = r->ids[i];
	rc = kme->ops->dec(kme->ctx, r->sae, caller, ks.keys, ks.n, &bad, &why);
	if (rc != 0) {
		json_t *detail = NULL;

		if (bad < r->nids) {
			qkd_etsi014_uuid_format(&r->ids[bad], id);
			detail = json_pack("{s:s}", "key_ID", id);
		}
		rc = provider_fail(rc, why, detail, err);
		goto out;
	}
	for (size_t i = 0; i < ks.n; i++)
		if (ks.keys[i].len == 0 || ks.keys[i].len > ks.cap ||
		    memcmp(&ks.keys[i].id, &r->ids[i], sizeof r->ids[i]) != 0) {
			rc = fail(err, 503, NULL, "key manager error: a key that was not asked for");
			goto out;
		}
	if ((rc = key_container(ks.keys, ks.n, ks.cap, resp)) != 0)
		rc = fail_nomem(err);
out:
	keyset_free(&ks);
	return rc;
}

static json_int_t clamp(uint64_t x)
{
	return x > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX : (json_int_t)x;
}

/* The Status object (clause 6.1); status_extension is not sent. */
static int do_status(const struct qkd_etsi014_kme *kme, const char *caller,
		     const struct qkd_etsi014_request *r, struct qkd_etsi014_response *resp,
		     struct qkd_etsi014_error *err)
{
	struct qkd_etsi014_counts c;
	const char *why = NULL;
	json_t *root;
	int rc;

	memset(&c, 0, sizeof c);
	if ((rc = kme->ops->status(kme->ctx, caller, r->sae, &c, &why)) != 0)
		return provider_fail(rc, why, NULL, err);
	c.target_kme_id[QKD_ETSI014_ID_MAX] = '\0';
	root = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
			 "source_KME_ID", kme->kme_id, "target_KME_ID", c.target_kme_id,
			 "master_SAE_ID", caller, "slave_SAE_ID", r->sae,
			 "key_size", (json_int_t)kme->lim.key_size,
			 "stored_key_count", clamp(c.stored_key_count),
			 "max_key_count", clamp(c.max_key_count),
			 "max_key_per_request", (json_int_t)kme->lim.max_key_per_request,
			 "max_key_size", (json_int_t)kme->lim.max_key_size,
			 "min_key_size", (json_int_t)kme->lim.min_key_size,
			 "max_SAE_ID_count", (json_int_t)0);
	rc = root != NULL ? dump(root, 200, resp) : QKD_ERR_NOMEM;
	json_decref(root);
	return rc != 0 ? fail_nomem(err) : 0;
}

int qkd_etsi014_handle(const struct qkd_etsi014_kme *kme, const char *caller,
		       const struct qkd_etsi014_http *h, struct qkd_etsi014_response *resp)
{
	struct qkd_etsi014_request r;
	struct qkd_etsi014_error err;
	int rc;

	memset(&r, 0, sizeof r);
	memset(&err, 0, sizeof err);
	memset(resp, 0, sizeof *resp);
	if (qkd_etsi014_init() != 0) {
		rc = fail(&err, 503, NULL, "key manager error: libsodium did not start");
		goto fail;
	}
	if (caller == NULL || !qkd_etsi014_id_valid(caller)) {
		rc = fail(&err, 401, NULL, "unauthorized: no valid client certificate of a known SAE");
		goto fail;
	}
	if ((rc = qkd_etsi014_parse(&kme->lim, h, &r, &err)) != 0)
		goto fail;
	if (strcmp(r.sae, caller) == 0) {
		rc = fail(&err, 400, json_pack("{s:s}", "SAE_ID", caller),
			  "the SAE ID in the path is the caller's own");
		goto fail;
	}
	if (r.op == QKD_ETSI014_STATUS)
		rc = do_status(kme, caller, &r, resp, &err);
	else if (r.op == QKD_ETSI014_ENC_KEYS)
		rc = do_enc(kme, caller, &r, resp, &err);
	else
		rc = do_dec(kme, caller, &r, resp, &err);
	if (rc == 0)
		goto out;
fail:
	qkd_etsi014_response_cleanup(resp);
	rc = qkd_etsi014_error_response(&err, resp);
out:
	qkd_etsi014_request_cleanup(&r);
	qkd_etsi014_error_cleanup(&err);
	return rc;
}
