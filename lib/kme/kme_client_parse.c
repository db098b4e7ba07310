/* kme_client_parse.c - a KME's answers as ETSI GS QKD 014 V1.1.1 clause 6
 * defines them, read by the client (qkd/kme_client.h): Status (6.1), Key
 * container (6.3), Error (6.5). Pure: bytes in, checked structs out.
 *
 * Strict on purpose: a key the client hands to a VPN gateway or a relay
 * must be exactly the key asked for, so a Key container with one key too
 * many, a key one byte short or a key_ID nobody asked for is refused as a
 * whole, never trimmed or padded. Members the spec does not define are
 * refused as the server (etsi014_json.c) refuses them in requests; the spec's
 * *_extension members must be objects (null counts as absent) and are not
 * interpreted. The server's request parsers answer with an HTTP status for
 * the peer; these answer the caller with a reason, so only the helpers of
 * qkd/etsi014.h (UUIDs, IDs, the wiping allocator) are shared.
 */
#include "qkd/kme_client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "qkd/error.h"
#include "qkd/secret.h"

#define KEY_BYTES_MAX (QKD_ETSI014_KEY_BITS_MAX / 8)
/* base64 of KEY_BYTES_MAX bytes, with padding, without the NUL. */
#define KEY_B64_MAX (((KEY_BYTES_MAX + 2) / 3) * 4)

/* Bytes outside printable ASCII become '?': the text ends up on a
 * terminal and in logs, and it came from the network. */
static void printable_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src), i;

	for (i = 0; i < n && i + 1 < cap; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[i] = '\0';
	if (i < n && cap >= 4)
		memcpy(dst + cap - 4, "...", 4);
}

__attribute__((format(printf, 4, 5)))
static int fail(struct qkd_kme_error *err, unsigned status, int rc, const char *fmt, ...)
{
	char text[sizeof err->message + 64];
	va_list ap;

	if (err == NULL)
		return rc;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	err->http_status = status;
	printable_copy(err->message, sizeof err->message, text);
	err->details[0] = '\0';
	return rc;
}

/* One JSON object, nothing after it, no duplicate member. */
static json_t *load_object(const char *body, size_t len, const char *what, unsigned status,
			   struct qkd_kme_error *err)
{
	json_error_t je;
	json_t *root;

	if (body == NULL || len == 0) {
		fail(err, status, QKD_ERR_PROTO, "%s: empty body", what);
		return NULL;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		fail(err, status, QKD_ERR_PROTO, "%s: not JSON: %s (byte %d)", what, je.text,
		     je.position);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		fail(err, status, QKD_ERR_PROTO, "%s: not a JSON object", what);
		return NULL;
	}
	return root;
}

/* ---- members ---- */

enum mtype { M_STRING, M_INTEGER, M_ARRAY, M_OBJECT };

struct member {
	const char *name;
	enum mtype type;
	bool mandatory;		/* else optional: null counts as absent */
};

static bool has_type(const json_t *v, enum mtype t)
{
	switch (t) {
	case M_STRING: return json_is_string(v);
	case M_INTEGER: return json_is_integer(v);
	case M_ARRAY: return json_is_array(v);
	case M_OBJECT: return json_is_object(v);
	}
	return false;
}

static const char *type_name(enum mtype t)
{
	static const char *const names[] = { "a string", "an integer", "an array", "an object" };

	return names[t];
}

/* Every member of obj is one of rules[0..n) with its type, and every
 * mandatory one is there. where names obj in messages ("Status"). */
static int check_members(const json_t *obj, const struct member *rules, size_t n,
			 const char *where, unsigned status, struct qkd_kme_error *err)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)obj, k, v) {
		size_t i;

		for (i = 0; i < n && strcmp(k, rules[i].name) != 0; i++)
			;
		if (i == n)
			return fail(err, status, QKD_ERR_PROTO, "%s: unknown member \"%s\"", where, k);
		if (!rules[i].mandatory && json_is_null(v))
			continue;
		if (!has_type(v, rules[i].type))
			return fail(err, status, QKD_ERR_PROTO, "%s: %s must be %s", where, k,
				    type_name(rules[i].type));
	}
	for (size_t i = 0; i < n; i++)
		if (rules[i].mandatory && json_object_get(obj, rules[i].name) == NULL)
			return fail(err, status, QKD_ERR_PROTO, "%s: %s is missing", where,
				    rules[i].name);
	return 0;
}

/* ---- Status (clause 6.1) ---- */

static const struct member status_members[] = {
	{ "source_KME_ID", M_STRING, true },
	{ "target_KME_ID", M_STRING, true },
	{ "master_SAE_ID", M_STRING, true },
	{ "slave_SAE_ID", M_STRING, true },
	{ "key_size", M_INTEGER, true },
	{ "stored_key_count", M_INTEGER, true },
	{ "max_key_count", M_INTEGER, true },
	{ "max_key_per_request", M_INTEGER, true },
	{ "max_key_size", M_INTEGER, true },
	{ "min_key_size", M_INTEGER, true },
	{ "max_SAE_ID_count", M_INTEGER, true },
	{ "status_extension", M_OBJECT, false },
};

/* An ID of Status: 1 .. QKD_KME_CLIENT_ID_MAX visible ASCII characters. */
static int get_id(const json_t *root, const char *name, char *dst, struct qkd_kme_error *err)
{
	const json_t *v = json_object_get(root, name);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if (n == 0 || n > QKD_KME_CLIENT_ID_MAX)
		return fail(err, 200, QKD_ERR_PROTO, "Status: %s must be 1 to %d characters", name,
			    QKD_KME_CLIENT_ID_MAX);
	for (size_t i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return fail(err, 200, QKD_ERR_PROTO,
				    "Status: %s must be visible ASCII characters", name);
	memcpy(dst, s, n + 1);
	return 0;
}

static int get_int(const json_t *root, const char *name, uint64_t max, uint64_t *out,
		   struct qkd_kme_error *err)
{
	json_int_t x = json_integer_value(json_object_get(root, name));

	if (x < 0 || (uint64_t)x > max)
		return fail(err, 200, QKD_ERR_PROTO, "Status: %s is out of range (%lld)", name,
			    (long long)x);
	*out = (uint64_t)x;
	return 0;
}

static int get_u32(const json_t *root, const char *name, uint32_t *out, struct qkd_kme_error *err)
{
	uint64_t x = 0;

	if (get_int(root, name, UINT32_MAX, &x, err) != 0)
		return QKD_ERR_PROTO;
	*out = (uint32_t)x;
	return 0;
}

/* The relations clause 6.1's definitions imply. */
static int status_consistent(const struct qkd_kme_status *s, const char *slave,
			     struct qkd_kme_error *err)
{
	if (s->min_key_size < 1 || s->min_key_size > s->key_size || s->key_size > s->max_key_size)
		return fail(err, 200, QKD_ERR_PROTO, "Status: key sizes must satisfy 1 <= "
			    "min_key_size (%u) <= key_size (%u) <= max_key_size (%u)",
			    s->min_key_size, s->key_size, s->max_key_size);
	if (s->max_key_per_request < 1)
		return fail(err, 200, QKD_ERR_PROTO, "Status: max_key_per_request must be >= 1");
	if (s->stored_key_count > s->max_key_count)
		return fail(err, 200, QKD_ERR_PROTO,
			    "Status: stored_key_count (%llu) exceeds max_key_count (%llu)",
			    (unsigned long long)s->stored_key_count,
			    (unsigned long long)s->max_key_count);
	if (slave != NULL && strcmp(s->slave_sae_id, slave) != 0)
		return fail(err, 200, QKD_ERR_PROTO, "Status: slave_SAE_ID is \"%s\", not the "
			    "\"%s\" asked for", s->slave_sae_id, slave);
	return 0;
}

int qkd_kme_parse_status(const char *body, size_t len, const char *slave,
			 struct qkd_kme_status *out, struct qkd_kme_error *err)
{
	struct qkd_kme_status s;
	json_t *root;
	int rc;

	memset(out, 0, sizeof *out);
	memset(&s, 0, sizeof s);
	if ((rc = qkd_etsi014_init()) != 0)
		return fail(err, 0, rc, "libsodium did not start");
	if ((root = load_object(body, len, "Status", 200, err)) == NULL)
		return QKD_ERR_PROTO;
	if ((rc = check_members(root, status_members,
				sizeof status_members / sizeof status_members[0], "Status", 200,
				err)) != 0 ||
	    (rc = get_id(root, "source_KME_ID", s.source_kme_id, err)) != 0 ||
	    (rc = get_id(root, "target_KME_ID", s.target_kme_id, err)) != 0 ||
	    (rc = get_id(root, "master_SAE_ID", s.master_sae_id, err)) != 0 ||
	    (rc = get_id(root, "slave_SAE_ID", s.slave_sae_id, err)) != 0 ||
	    (rc = get_u32(root, "key_size", &s.key_size, err)) != 0 ||
	    (rc = get_int(root, "stored_key_count", INT64_MAX, &s.stored_key_count, err)) != 0 ||
	    (rc = get_int(root, "max_key_count", INT64_MAX, &s.max_key_count, err)) != 0 ||
	    (rc = get_u32(root, "max_key_per_request", &s.max_key_per_request, err)) != 0 ||
	    (rc = get_u32(root, "max_key_size", &s.max_key_size, err)) != 0 ||
	    (rc = get_u32(root, "min_key_size", &s.min_key_size, err)) != 0 ||
	    (rc = get_u32(root, "max_SAE_ID_count", &s.max_sae_id_count, err)) != 0 ||
	    (rc = status_consistent(&s, slave, err)) != 0)
		goto out;
	*out = s;
out:
	json_decref(root);
	return rc;
}

void qkd_kme_status_cleanup(struct qkd_kme_status *s)
{
	if (s == NULL)
		return;
	free(s->body);
	memset(s, 0, sizeof *s);
}

/* ---- Key container (clause 6.3) ---- */

static const struct member container_members[] = {
	{ "keys", M_ARRAY, true },
	{ "key_container_extension", M_OBJECT, false },
};

static const struct member key_members[] = {
	{ "key_ID", M_STRING, true },
	{ "key_ID_extension", M_OBJECT, false },
	{ "key", M_STRING, true },
	{ "key_extension", M_OBJECT, false },
};

void qkd_kme_keys_cleanup(struct qkd_kme_keys *k)
{
	if (k == NULL)
		return;
	if (k->body != NULL)
		qkd_free_secret(k->body, k->body_len + 1);
	qkd_free_secret(k->buf, k->buf_len);
	free(k->keys);
	memset(k, 0, sizeof *k);
}

/* Is ex something a request can expect? */
static int expect_check(const struct qkd_kme_keys_expect *ex, struct qkd_kme_error *err)
{
	if (ex == NULL || ex->number < 1 || ex->number > QKD_ETSI014_KEYS_MAX ||
	    ex->size_bits % 8 != 0 || ex->size_bits > QKD_ETSI014_KEY_BITS_MAX)
		return fail(err, 0, QKD_ERR_INVAL, "bad expectation for a Key container");
	return 0;
}

/* First pass over keys[]: the members of each element, and the room its
 * key needs (a base64 string of b64 characters decodes to at most
 * b64 / 4 * 3 bytes), so that the bytes can go into one buffer. */
static int scan_keys(const json_t *keys, size_t *room, struct qkd_kme_error *err)
{
	char where[32];
	const json_t *item;
	size_t i, b64;

	*room = 0;
	json_array_foreach(keys, i, item) {
		snprintf(where, sizeof where, "keys[%zu]", i);
		if (!json_is_object(item))
			return fail(err, 200, QKD_ERR_PROTO, "Key container: %s must be an object",
				    where);
		if (check_members(item, key_members, sizeof key_members / sizeof key_members[0],
				  where, 200, err) != 0)
			return QKD_ERR_PROTO;
		b64 = json_string_length(json_object_get(item, "key"));
		if (b64 == 0 || b64 > KEY_B64_MAX)
			return fail(err, 200, QKD_ERR_PROTO, "%s.key: %s", where,
				    b64 == 0 ? "empty" : "longer than a key of 65536 bits");
		*room += b64 / 4 * 3 + 3;
	}
	return 0;
}

/* The key_ID of element i: a UUID, distinct from those before it and, for
 * dec_keys, one of those asked for. */
static int take_id(const json_t *item, size_t i, const struct qkd_kme_keys_expect *ex,
		   struct qkd_kme_keys *k, struct qkd_kme_error *err)
{
	const json_t *v = json_object_get(item, "key_ID");
	struct qkd_etsi014_uuid *id = &k->keys[i].id;
	size_t j;

	if (qkd_etsi014_uuid_parse(json_string_value(v), json_string_length(v), id) != 0)
		return fail(err, 200, QKD_ERR_PROTO, "keys[%zu].key_ID: not a UUID", i);
	for (j = 0; j < i; j++)
		if (memcmp(&k->keys[j].id, id, sizeof *id) == 0)
			return fail(err, 200, QKD_ERR_PROTO, "keys[%zu].key_ID: the same as keys[%zu]",
				    i, j);
	if (ex->ids == NULL)
		return 0;
	for (j = 0; j < ex->number; j++)
		if (memcmp(&ex->ids[j], id, sizeof *id) == 0)
			return 0;
	return fail(err, 200, QKD_ERR_PROTO, "keys[%zu].key_ID: not one of the key_IDs asked for",
		    i);
}

/* Decode element i's key into k->buf at *off and check its size. The
 * alphabet is checked first: libsodium 1.0.18 maps bytes above 0x7f to
 * sextets instead of refusing them (found by fuzz_kme_client). */
static int take_key(const json_t *item, size_t i, const struct qkd_kme_keys_expect *ex,
		    size_t *off, struct qkd_kme_keys *k, struct qkd_kme_error *err)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
	const json_t *v = json_object_get(item, "key");
	const char *s = json_string_value(v);
	struct qkd_kme_key *key = &k->keys[i];
	size_t len = 0, n = json_string_length(v);

	if (strspn(s, alphabet) != n ||
	    sodium_base642bin(k->buf + *off, k->buf_len - *off, s, n, NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return fail(err, 200, QKD_ERR_PROTO,
			    "keys[%zu].key: not base64 (RFC 4648, with padding)", i);
	key->bytes = k->buf + *off;
	key->len = len;
	*off += len;
	if (len == 0 || len > KEY_BYTES_MAX)
		return fail(err, 200, QKD_ERR_PROTO, "keys[%zu].key: %zu bytes", i, len);
	if (ex->size_bits != 0 && len * 8 != ex->size_bits)
		return fail(err, 200, QKD_ERR_PROTO, "keys[%zu].key: %zu bits, not the %u asked for",
			    i, len * 8, ex->size_bits);
	if (ex->ids == NULL && i > 0 && len != k->keys[0].len)
		return fail(err, 200, QKD_ERR_PROTO, "keys[%zu].key: %zu bits, but keys[0] has %zu",
			    i, len * 8, k->keys[0].len * 8);
	return 0;
}

static int decode_keys(const json_t *keys, const struct qkd_kme_keys_expect *ex,
		       struct qkd_kme_keys *k, struct qkd_kme_error *err)
{
	const json_t *item;
	size_t i, room, off = 0;
	int rc;

	if ((rc = scan_keys(keys, &room, err)) != 0)
		return rc;
	k->n = json_array_size(keys);
	k->keys = calloc(k->n, sizeof *k->keys);
	k->buf = malloc(room);
	if (k->keys == NULL || k->buf == NULL)
		return fail(err, 0, QKD_ERR_NOMEM, "out of memory");
	k->buf_len = room;
	json_array_foreach(keys, i, item)
		if ((rc = take_id(item, i, ex, k, err)) != 0 ||
		    (rc = take_key(item, i, ex, &off, k, err)) != 0)
			return rc;
	return 0;
}

int qkd_kme_parse_keys(const char *body, size_t len, const struct qkd_kme_keys_expect *ex,
		       struct qkd_kme_keys *out, struct qkd_kme_error *err)
{
	json_t *root = NULL, *keys;
	size_t n;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = expect_check(ex, err)) != 0)
		return rc;
	if ((rc = qkd_etsi014_init()) != 0)
		return fail(err, 0, rc, "libsodium did not start");
	if ((root = load_object(body, len, "Key container", 200, err)) == NULL)
		return QKD_ERR_PROTO;
	rc = check_members(root, container_members,
			   sizeof container_members / sizeof container_members[0],
			   "Key container", 200, err);
	if (rc != 0)
		goto out;
	keys = json_object_get(root, "keys");
	if ((n = json_array_size(keys)) != ex->number) {
		rc = fail(err, 200, QKD_ERR_PROTO, "Key container: %zu keys, not the %zu asked for",
			  n, ex->number);
		goto out;
	}
	rc = decode_keys(keys, ex, out, err);
out:
	if (rc != 0)
		qkd_kme_keys_cleanup(out);
	json_decref(root);
	return rc;
}

/* ---- Error (clause 6.5) ---- */

static const struct member error_members[] = {
	{ "message", M_STRING, true },
	{ "details", M_ARRAY, false },
};

/* details as compact ASCII JSON, cut with "..." when it does not fit. */
static int error_details(const json_t *details, struct qkd_kme_error *err)
{
	const json_t *item;
	size_t i, cap = sizeof err->details;
	char *text;

	json_array_foreach(details, i, item)
		if (!json_is_object(item))
			return fail(err, err->http_status, QKD_ERR_PROTO,
				    "Error object: details[%zu] must be an object", i);
	text = json_dumps(details, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
	if (text == NULL)
		return fail(err, err->http_status, QKD_ERR_NOMEM, "out of memory");
	printable_copy(err->details, cap, text);
	qkd_etsi014_free(text);
	return 0;
}

/* A body that is no Error object: say so, with its start, which is what an
 * operator needs to recognize a proxy's or another server's page. */
static int not_etsi(unsigned status, const char *body, size_t len, const char *why,
		    struct qkd_kme_error *err)
{
	char head[61];
	size_t n = len < sizeof head - 1 ? len : sizeof head - 1;

	if (body != NULL)
		memcpy(head, body, n);
	head[body != NULL ? n : 0] = '\0';
	return fail(err, status, QKD_ERR_PROTO, "no ETSI Error object (%s)%s%s%s", why,
		    head[0] != '\0' ? ": \"" : "", head, head[0] != '\0' ? "\"" : "");
}

int qkd_kme_parse_error(unsigned http_status, const char *body, size_t len,
			struct qkd_kme_error *err)
{
	struct qkd_kme_error scratch, tmp;
	json_t *root;
	int rc = 0;

	if (err == NULL)
		err = &scratch;
	memset(err, 0, sizeof *err);
	memset(&tmp, 0, sizeof tmp);
	err->http_status = http_status;
	if ((root = load_object(body, len, "body", http_status, &tmp)) == NULL)
		return not_etsi(http_status, body, len, tmp.message, err);
	if (check_members(root, error_members, sizeof error_members / sizeof error_members[0],
			  "Error object", http_status, &tmp) != 0) {
		rc = not_etsi(http_status, body, len, tmp.message, err);
		goto out;
	}
	printable_copy(err->message, sizeof err->message,
		       json_string_value(json_object_get(root, "message")));
	if (json_is_array(json_object_get(root, "details")) &&
	    (rc = error_details(json_object_get(root, "details"), &tmp)) != 0) {
		rc = not_etsi(http_status, body, len, tmp.message, err);
		goto out;
	}
	memcpy(err->details, tmp.details, sizeof err->details);
out:
	json_decref(root);
	return rc;
}
