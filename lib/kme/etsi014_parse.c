/* etsi014_parse.c - an ETSI GS QKD 014 V1.1.1 request read from its HTTP
 * parts (qkd/etsi014.h): the request-target (RFC 3986), the path
 * /api/v1/keys/{SAE_ID}/{status|enc_keys|dec_keys}, the method, the query
 * arguments of a GET (clauses 5.2 to 5.4), and the defaults and limits a
 * Key request meets. POST bodies are etsi014_json.c's.
 *
 * Everything a client sends is checked here, strictly: unknown fields and
 * parameters are refused rather than ignored, so that a typo ("numbr")
 * never silently yields the default.
 */
#include "qkd/etsi014.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "etsi014_int.h"
#include "qkd/error.h"

#define API_PREFIX "/api/v1/keys/"

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
	int hi = etsi014_hexval(t[1]), lo = hi >= 0 ? etsi014_hexval(t[2]) : -1;

	return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
}

int qkd_etsi014_target_check(const char *target, struct qkd_etsi014_error *err)
{
	bool query = false;
	int b;

	if (target == NULL || target[0] != '/')
		return etsi014_fail(err, 400, NULL, "the request-target must be a path (origin-form, "
				    "RFC 9112 section 3.2.1)");
	for (size_t i = 0; target[i] != '\0'; i++) {
		if (target[i] == '?')
			query = true;
		if (target[i] != '%') {
			if (!target_char((unsigned char)target[i]))
				return etsi014_fail(err, 400, json_pack("{s:I}", "position", (json_int_t)i),
						    "character not allowed in the request-target (RFC 3986)");
			continue;
		}
		if ((b = pct_byte(target + i)) < 0)
			return etsi014_fail(err, 400, json_pack("{s:I}", "position", (json_int_t)i),
					    "malformed percent-encoding in the request-target");
		if (b == 0)
			return etsi014_fail(err, 400, json_pack("{s:I}", "position", (json_int_t)i),
					    "NUL byte (%%00) in the request-target");
		if (!query && (b == '/' || b == '\\'))
			return etsi014_fail(err, 400, json_pack("{s:I}", "position", (json_int_t)i),
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
		return etsi014_fail(err, 404, NULL,
				    "no such resource (the API is under " API_PREFIX ")");
	id = path + strlen(API_PREFIX);
	if ((slash = strchr(id, '/')) == NULL)
		return etsi014_fail(err, 404, NULL, "no such resource");
	for (size_t i = 0; i < sizeof res / sizeof res[0]; i++) {
		if (strcmp(slash + 1, res[i].name) != 0)
			continue;
		idlen = (size_t)(slash - id);
		if (idlen == 0 || idlen > QKD_ETSI014_ID_MAX)
			return etsi014_fail(err, 400, NULL, "malformed SAE ID in the path");
		memcpy(r->sae, id, idlen);
		r->sae[idlen] = '\0';
		if (!qkd_etsi014_id_valid(r->sae))
			return etsi014_fail(err, 400, NULL, "malformed SAE ID in the path");
		r->op = res[i].op;
		return 0;
	}
	return etsi014_fail(err, 404, NULL, "no such resource (status, enc_keys or dec_keys)");
}

/* status: GET; enc_keys, dec_keys: GET with arguments or POST with a body. */
static int check_method(const struct qkd_etsi014_http *h, enum qkd_etsi014_op op, bool *post,
			struct qkd_etsi014_error *err)
{
	const char *m = h->method ? h->method : "";

	*post = strcmp(m, "POST") == 0;
	if (strcmp(m, "GET") != 0 && !(*post && op != QKD_ETSI014_STATUS))
		return etsi014_fail(err, 405, json_pack("{s:s}", "method", m),
				    "method not allowed (%s)", op == QKD_ETSI014_STATUS ? "GET" : "GET or POST");
	if (!*post && h->body_len > 0)
		return etsi014_fail(err, 400, NULL, "a GET request takes no body");
	if (*post && h->nargs > 0)
		return etsi014_fail(err, 400, json_pack("{s:s}", "parameter", h->args[0].name),
				    "a POST request takes its parameters in the JSON body, not the query");
	if (h->body_len > QKD_ETSI014_BODY_MAX)
		return etsi014_fail(err, 413, json_pack("{s:I}", "max_body_bytes", (json_int_t)QKD_ETSI014_BODY_MAX),
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
		return etsi014_fail(err, 400, json_pack("{s:s}", name, v ? v : ""),
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
			return etsi014_fail(err, 400, json_pack("{s:s}", "parameter", name),
					    "unknown query parameter (enc_keys takes number and size)");
		}
		if (*seen)
			return etsi014_fail(err, 400, json_pack("{s:s}", "parameter", name),
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
			return etsi014_fail(err, 400, json_pack("{s:s}", "parameter",
								h->args[i].name ? h->args[i].name : ""),
					    "unknown query parameter (dec_keys takes key_ID)");
	if (h->nargs != 1)
		return etsi014_fail(err, 400, NULL, h->nargs == 0 ? "key_ID is missing" :
				    "give one key_ID per GET (POST takes several)");
	if ((r->ids = calloc(1, sizeof *r->ids)) == NULL)
		return etsi014_fail_nomem(err);
	v = h->args[0].value ? h->args[0].value : "";
	if (qkd_etsi014_uuid_parse(v, strlen(v), &r->ids[0]) != 0)
		return etsi014_fail(err, 400, json_pack("{s:s}", "key_ID", v),
				    "malformed key_ID (not a UUID)");
	r->nids = 1;
	return 0;
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
		return etsi014_fail(err, 400, json_pack("{s:I,s:I}", "number", (json_int_t)r->number,
							"max_key_per_request",
							(json_int_t)lim->max_key_per_request),
				    "number must be between 1 and max_key_per_request");
	if (r->size % 8 != 0)
		return etsi014_fail(err, 400, json_pack("{s:I}", "size", (json_int_t)r->size),
				    "size must be a multiple of 8 bits");
	if (r->size < lim->min_key_size || r->size > lim->max_key_size)
		return etsi014_fail(err, 400, json_pack("{s:I,s:I,s:I}", "size", (json_int_t)r->size,
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
			return etsi014_fail(err, 400, json_pack("{s:s}", "parameter",
								h->args[0].name ? h->args[0].name : ""),
					    "status takes no query parameter");
		return 0;
	case QKD_ETSI014_ENC_KEYS:
		rc = post ? etsi014_parse_key_request(h, r, &has_number, &has_size, err)
			  : parse_enc_args(h, r, &has_number, &has_size, err);
		return rc != 0 ? rc : check_enc(lim, r, has_number, has_size, err);
	case QKD_ETSI014_DEC_KEYS:
		return post ? etsi014_parse_key_ids(h, lim->max_key_per_request, r, err)
			    : parse_dec_args(h, r, err);
	}
	return etsi014_fail(err, 404, NULL, "no such resource");
}
