/* libFuzzer target: the ETSI GS QKD 014 request parsers and response
 * builders (lib/kme/etsi014*.c), path + query + body, behind a deterministic
 * in-file provider. The input, read with the bounded reader:
 *
 *   u8 method (mod 4: GET, POST, PUT, HEAD; bit 2: also hand the layer
 *   the request-target, path + '?' + query, as it was before decoding),
 *   u8 caller (mod 3: none, SAE_A, SAE_B), then the rest split at the first
 *   two '\n': the path, the query ("a=b&c" with no percent-decoding: the
 *   HTTP server decodes), and the body (raw bytes, any length).
 *
 * Besides not crashing, leaking or reading out of bounds, it checks the
 * layer's promises: every response is one JSON object; a 200 is a Status
 * with its 11 fields or a Key container whose keys are UUIDs with base64 of
 * whole bytes; anything else is an Error object with a message and one of
 * the statuses the layer documents. The body, alone, also goes through the
 * UUID parser, which must round-trip through the formatter. The
 * request-target goes through qkd_etsi014_target_check, whose every
 * acceptance must pass an independent reading of its rules. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "qkd/error.h"
#include "qkd/etsi014.h"
#include "qkd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MAX_INPUT (QKD_ETSI014_BODY_MAX + 4096)
#define MAX_ARGS 8

/* Keys derived from the request; dec fails by the first key_ID byte. */
static int fz_enc(void *ctx, const char *master, const char *slave, uint32_t number,
		  uint32_t size_bits, struct qkd_etsi014_key *keys, const char **why)
{
	(void)ctx;
	(void)slave;
	*why = "fuzz";
	if (master[0] == 'X')
		return QKD_ERR_RANGE;
	for (uint32_t i = 0; i < number; i++) {
		memset(&keys[i].id, (int)i, sizeof keys[i].id);
		memset(keys[i].bytes, (int)(size_bits + i), keys[i].cap);
		keys[i].len = keys[i].cap;
	}
	return 0;
}

static int fz_dec(void *ctx, const char *master, const char *slave,
		  struct qkd_etsi014_key *keys, size_t n, size_t *bad, const char **why)
{
	static const int rcs[] = { 0, QKD_ERR_INVAL, QKD_ERR_VERIFY, QKD_ERR_RANGE, QKD_ERR_IO };

	(void)ctx;
	(void)master;
	(void)slave;
	*why = "fuzz";
	for (size_t i = 0; i < n; i++) {
		int rc = rcs[keys[i].id.b[0] % 5];

		if (rc != 0) {
			*bad = keys[i].id.b[1] % (n + 1);
			return rc;
		}
		memset(keys[i].bytes, 0x5a, keys[i].cap);
		keys[i].len = 1 + keys[i].id.b[2] % keys[i].cap;
	}
	return 0;
}

static int fz_status(void *ctx, const char *master, const char *slave,
		     struct qkd_etsi014_counts *c, const char **why)
{
	(void)ctx;
	(void)master;
	*why = "fuzz";
	if (slave[0] == 'Z')
		return QKD_ERR_INVAL;
	strcpy(c->target_kme_id, "KME_B");
	c->stored_key_count = UINT64_MAX;
	c->max_key_count = 7;
	return 0;
}

static const struct qkd_etsi014_provider fz_ops = { fz_enc, fz_dec, fz_status };

/* A copy of p[0..n) as a C string (cut at an embedded NUL, as HTTP would). */
static char *cstr(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s != NULL) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* Split the next line off in (up to '\n', or all that is left). */
static char *next_line(struct qkd_rbuf *in)
{
	size_t left = qkd_rbuf_left(in);
	const uint8_t *p = in->p + in->off;
	const uint8_t *nl = memchr(p, '\n', left);
	size_t n = nl != NULL ? (size_t)(nl - p) : left;
	char *s = cstr(qkd_get_bytes(in, n), n);

	if (nl != NULL)
		(void)qkd_get_u8(in);
	return s;
}

static size_t split_query(char *q, struct qkd_etsi014_arg *a)
{
	size_t n = 0;

	for (char *save = NULL, *t = strtok_r(q, "&", &save); t != NULL && n < MAX_ARGS;
	     t = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(t, '=');

		if (eq != NULL)
			*eq++ = '\0';
		a[n++] = (struct qkd_etsi014_arg){ t, eq };
	}
	return n;
}

static void check_keys(const json_t *root)
{
	const json_t *keys = json_object_get(root, "keys"), *k;
	struct qkd_etsi014_uuid u;
	uint8_t bin[QKD_ETSI014_KEY_BITS_MAX / 8];
	size_t i, len;

	if (json_object_size(root) != 1 || !json_is_array(keys) || json_array_size(keys) == 0)
		abort();
	json_array_foreach(keys, i, k) {
		const json_t *id = json_object_get(k, "key_ID"), *b = json_object_get(k, "key");

		if (!json_is_string(id) || !json_is_string(b) ||
		    qkd_etsi014_uuid_parse(json_string_value(id), json_string_length(id), &u) != 0 ||
		    sodium_base642bin(bin, sizeof bin, json_string_value(b), json_string_length(b),
				      NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
		    len == 0)
			abort();
	}
}

static void check_response(const struct qkd_etsi014_response *resp)
{
	json_t *root = json_loadb(resp->body, resp->len, 0, NULL);

	if (root == NULL || !json_is_object(root))
		abort();
	switch (resp->status) {
	case 200:
		if (json_object_get(root, "keys") != NULL)
			check_keys(root);
		else if (json_object_size(root) != 11 ||
			 !json_is_integer(json_object_get(root, "max_SAE_ID_count")))
			abort();
		break;
	case 400: case 401: case 404: case 405: case 413: case 503:
		if (!json_is_string(json_object_get(root, "message")))
			abort();
		break;
	default:
		abort();
	}
	json_decref(root);
}

/* path + '?' + query (just path when the query is empty). */
static char *join_target(const char *path, const char *query)
{
	size_t lp = strlen(path), lq = strlen(query);
	char *t = malloc(lp + lq + 2);

	if (t != NULL)
		snprintf(t, lp + lq + 2, "%s%s%s", path, lq > 0 ? "?" : "", query);
	return t;
}

/* A target the checker accepts starts with '/', has only printable ASCII
 * but space, a valid escape at every '%', no %00 anywhere and no %2F or %5C
 * before the first '?'. */
static void check_target(const char *t)
{
	struct qkd_etsi014_error err;
	const char *q = strchr(t, '?');
	size_t plen = q != NULL ? (size_t)(q - t) : strlen(t);

	memset(&err, 0, sizeof err);
	if (qkd_etsi014_target_check(t, &err) != 0) {
		if (err.status != 400)
			abort();
		qkd_etsi014_error_cleanup(&err);
		return;
	}
	if (t[0] != '/' || err.status != 0)
		abort();
	for (size_t i = 0; t[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)t[i];

		if (ch <= 0x20 || ch >= 0x7f)
			abort();
		if (ch != '%')
			continue;
		if (!isxdigit((unsigned char)t[i + 1]) || !isxdigit((unsigned char)t[i + 2]))
			abort();
		if (t[i + 1] == '0' && t[i + 2] == '0')
			abort();
		if (i < plen && ((t[i + 1] == '2' && tolower((unsigned char)t[i + 2]) == 'f') ||
				 (t[i + 1] == '5' && tolower((unsigned char)t[i + 2]) == 'c')))
			abort();
	}
}

/* The body as a UUID: when it parses, the lowercase print of it must equal
 * the input lowercased, and parse back to the same bytes. */
static void check_uuid(const uint8_t *p, size_t n)
{
	struct qkd_etsi014_uuid u, v;
	char out[QKD_ETSI014_UUID_LEN + 1];

	if (qkd_etsi014_uuid_parse((const char *)p, n, &u) != 0)
		return;
	qkd_etsi014_uuid_format(&u, out);
	for (size_t i = 0; i < n; i++)
		if (out[i] != tolower(p[i]))
			abort();
	if (qkd_etsi014_uuid_parse(out, strlen(out), &v) != 0 || memcmp(&u, &v, sizeof u) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "GET", "POST", "PUT", "HEAD" };
	static const char *const callers[] = { NULL, "SAE_A", "SAE_B" };
	const struct qkd_etsi014_kme kme = {
		.kme_id = "KME_A", .ops = &fz_ops, .ctx = NULL,
		.lim = { .key_size = 256, .min_key_size = 8, .max_key_size = 4096,
			 .max_key_per_request = 16 },
	};
	struct qkd_etsi014_response resp = {0};
	struct qkd_etsi014_arg args[MAX_ARGS];
	struct qkd_etsi014_http h = {0};
	struct qkd_rbuf in;
	char *path = NULL, *query = NULL, *target = NULL;
	uint8_t m, c;

	if (size > FZ_MAX_INPUT || qkd_etsi014_init() != 0)
		return 0;
	qkd_rbuf_init(&in, data, size);
	m = qkd_get_u8(&in);
	c = qkd_get_u8(&in);
	if (!qkd_rbuf_ok(&in) || (path = next_line(&in)) == NULL ||
	    (query = next_line(&in)) == NULL || (target = join_target(path, query)) == NULL)
		goto out;
	check_target(target);
	h.method = methods[m % 4];
	h.target = (m & 4) != 0 ? target : NULL;
	h.path = path;
	h.args = args;
	h.nargs = split_query(query, args);
	h.body_len = qkd_rbuf_left(&in);
	h.body = (const char *)qkd_get_bytes(&in, h.body_len);
	check_uuid((const uint8_t *)h.body, h.body_len);
	if (qkd_etsi014_handle(&kme, callers[c % 3], &h, &resp) == 0)
		check_response(&resp);
out:
	qkd_etsi014_response_cleanup(&resp);
	free(path);
	free(query);
	free(target);
	return 0;
}
