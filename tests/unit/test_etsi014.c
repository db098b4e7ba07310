/* test_etsi014.c - ETSI GS QKD 014 V1.1.1 requests and responses
 * (qkd/etsi014.h, lib/kme/etsi014*.c; docs/kme.md).
 *
 * A fake provider in this file records every call and fills keys with a
 * known pattern. The checks: UUID parse/format round trips and the strict
 * syntax; SAE IDs and limits; every request shape of clauses 5.2-5.4 (GET
 * and POST) with the defaults of clause 6.2; every refusal, with its HTTP
 * status and an Error object (clause 6.5) saying what was wrong; the exact
 * field names and JSON types of Status (6.1) and Key container (6.3); key
 * bytes through base64 and back; provider failures mapped to 400/401/503;
 * the request-target checked before decoding (NUL, encoded '/' and '\\',
 * malformed escapes, characters outside RFC 3986) and NULs in bodies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "qkd/error.h"
#include "qkd/etsi014.h"

/* ---- the fake provider ---- */

struct fake {
	int rc;			/* what every call returns */
	size_t bad;		/* dec: index reported at fault */
	int short_key;		/* enc: return one byte short */
	int wrong_id;		/* dec: answer with another id */
	unsigned relay_paths;	/* enc: keys say they were relayed */
	unsigned calls;
	char master[80], slave[80];
	uint32_t number, size;
	size_t n;
};

static uint8_t pattern(size_t key, size_t i)
{
	return (uint8_t)(key * 31 + i * 7 + 1);
}

static int fake_enc(void *ctx, const char *master, const char *slave, uint32_t number,
		    uint32_t size_bits, struct qkd_etsi014_key *keys, const char **why)
{
	struct fake *f = ctx;

	f->calls++;
	snprintf(f->master, sizeof f->master, "%s", master);
	snprintf(f->slave, sizeof f->slave, "%s", slave);
	f->number = number;
	f->size = size_bits;
	*why = "fake failure";
	if (f->rc != 0)
		return f->rc;
	for (uint32_t k = 0; k < number; k++) {
		assert_int_equal(keys[k].cap, size_bits / 8);
		memset(&keys[k].id, 0, sizeof keys[k].id);
		keys[k].id.b[15] = (uint8_t)k;
		keys[k].id.b[0] = 0xab;
		for (size_t i = 0; i < keys[k].cap; i++)
			keys[k].bytes[i] = pattern(k, i);
		keys[k].len = keys[k].cap - (f->short_key ? 1 : 0);
		keys[k].relay_paths = f->relay_paths;
		keys[k].relay_hops = f->relay_paths ? 3 : 0;
	}
	return 0;
}

static int fake_dec(void *ctx, const char *master, const char *slave,
		    struct qkd_etsi014_key *keys, size_t n, size_t *bad, const char **why)
{
	struct fake *f = ctx;

	f->calls++;
	snprintf(f->master, sizeof f->master, "%s", master);
	snprintf(f->slave, sizeof f->slave, "%s", slave);
	f->n = n;
	assert_int_equal(*bad, n);
	*why = "fake failure";
	if (f->rc != 0) {
		*bad = f->bad;
		return f->rc;
	}
	for (size_t k = 0; k < n; k++) {
		for (size_t i = 0; i < 16; i++)
			keys[k].bytes[i] = pattern(k, i);
		keys[k].len = 16;
		if (f->wrong_id)
			keys[k].id.b[0] ^= 1;
	}
	return 0;
}

static int fake_status(void *ctx, const char *master, const char *slave,
		       struct qkd_etsi014_counts *c, const char **why)
{
	struct fake *f = ctx;

	f->calls++;
	snprintf(f->master, sizeof f->master, "%s", master);
	snprintf(f->slave, sizeof f->slave, "%s", slave);
	*why = "fake failure";
	if (f->rc != 0)
		return f->rc;
	snprintf(c->target_kme_id, sizeof c->target_kme_id, "KME_B");
	c->stored_key_count = 25000;
	c->max_key_count = 100000;
	return 0;
}

static const struct qkd_etsi014_provider fake_ops = { fake_enc, fake_dec, fake_status };

static const struct qkd_etsi014_limits LIM = {
	.key_size = 352, .min_key_size = 64, .max_key_size = 1024, .max_key_per_request = 128,
};

/* ---- helpers ---- */

struct call {
	struct fake f;
	struct qkd_etsi014_kme kme;
	struct qkd_etsi014_response resp;
	json_t *json;
};

static int setup(void **state)
{
	struct call *c = calloc(1, sizeof *c);

	if (c == NULL || qkd_etsi014_init() != 0)
		return -1;
	c->kme = (struct qkd_etsi014_kme){ .kme_id = "KME_A", .lim = LIM, .ops = &fake_ops,
					   .ctx = &c->f };
	*state = c;
	return 0;
}

static void reset(struct call *c)
{
	qkd_etsi014_response_cleanup(&c->resp);
	json_decref(c->json);
	c->json = NULL;
}

static int teardown(void **state)
{
	struct call *c = *state;

	reset(c);
	free(c);
	return 0;
}

/* Serve one request as caller with args "name=value" pairs (a name without
 * '=' has a NULL value); returns the HTTP status and keeps the body's JSON. */
static unsigned serve(struct call *c, const char *caller, const char *method, const char *path,
		      const char *body, const char *const *args, size_t nargs)
{
	struct qkd_etsi014_arg a[8];
	char buf[8][256];
	struct qkd_etsi014_http h = { .method = method, .path = path, .args = a, .nargs = nargs,
				      .body = body, .body_len = body ? strlen(body) : 0 };
	json_error_t je;

	reset(c);
	assert_true(nargs <= 8);
	for (size_t i = 0; i < nargs; i++) {
		char *eq;

		snprintf(buf[i], sizeof buf[i], "%s", args[i]);
		eq = strchr(buf[i], '=');
		if (eq != NULL)
			*eq++ = '\0';
		a[i] = (struct qkd_etsi014_arg){ buf[i], eq };
	}
	assert_int_equal(qkd_etsi014_handle(&c->kme, caller, &h, &c->resp), 0);
	assert_non_null(c->resp.body);
	assert_int_equal(strlen(c->resp.body), c->resp.len);
	c->json = json_loads(c->resp.body, 0, &je);
	assert_non_null(c->json);
	return c->resp.status;
}

#define GET(c, caller, path, ...) \
	serve(c, caller, "GET", path, NULL, (const char *const[]){ __VA_ARGS__ }, \
	      sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *))
#define GET0(c, caller, path) serve(c, caller, "GET", path, NULL, NULL, 0)
#define POST(c, caller, path, body) serve(c, caller, "POST", path, body, NULL, 0)

/* The response is an Error object (clause 6.5) with this status, whose
 * message contains want. Returns its first details entry (or NULL). */
static json_t *expect_error(struct call *c, unsigned got, unsigned status, const char *want)
{
	json_t *msg = json_object_get(c->json, "message"), *det;
	const char *k;
	json_t *v;

	assert_int_equal(got, status);
	assert_true(json_is_string(msg));
	if (strstr(json_string_value(msg), want) == NULL)
		fail_msg("message '%s' lacks '%s'", json_string_value(msg), want);
	json_object_foreach(c->json, k, v)
		assert_true(strcmp(k, "message") == 0 || strcmp(k, "details") == 0);
	det = json_object_get(c->json, "details");
	if (det == NULL)
		return NULL;
	assert_true(json_is_array(det));
	assert_int_equal(json_array_size(det), 1);
	assert_true(json_is_object(json_array_get(det, 0)));
	return json_array_get(det, 0);
}

static json_int_t detail_int(json_t *d, const char *name)
{
	assert_non_null(d);
	assert_true(json_is_integer(json_object_get(d, name)));
	return json_integer_value(json_object_get(d, name));
}

/* Check a Key container of n keys of len bytes each with the fake's bytes. */
static void expect_keys(struct call *c, size_t n, size_t len)
{
	json_t *keys = json_object_get(c->json, "keys"), *k;
	uint8_t bin[256];
	size_t i, binlen;

	assert_int_equal(c->resp.status, 200);
	assert_int_equal(json_object_size(c->json), 1);
	assert_true(json_is_array(keys));
	assert_int_equal(json_array_size(keys), n);
	json_array_foreach(keys, i, k) {
		const char *id = json_string_value(json_object_get(k, "key_ID"));
		const char *b64 = json_string_value(json_object_get(k, "key"));
		struct qkd_etsi014_uuid u;

		/* key_ID and key, and the key_extension of a relayed key */
		assert_int_equal(json_object_size(k), c->f.relay_paths ? 3 : 2);
		assert_non_null(id);
		assert_non_null(b64);
		assert_int_equal(qkd_etsi014_uuid_parse(id, strlen(id), &u), 0);
		assert_int_equal(sodium_base642bin(bin, sizeof bin, b64, strlen(b64), NULL, &binlen,
						   NULL, sodium_base64_VARIANT_ORIGINAL), 0);
		assert_int_equal(binlen, len);
		for (size_t j = 0; j < len; j++)
			assert_int_equal(bin[j], pattern(i, j));
	}
}

/* ---- identifiers ---- */

static void test_uuid(void **state)
{
	static const char *bad[] = {
		"", "550e8400-e29b-41d4-a716-44665544000", "550e8400-e29b-41d4-a716-4466554400000",
		"550e8400e29b-41d4-a716-4466554400000", "550e8400-e29b-41d4-a716_446655440000",
		"{50e8400-e29b-41d4-a716-44665544000}", "550e8400-e29b-41d4-a716-44665544000g",
		" 50e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a7-16446655440000",
		"urn:uuid:550e8400-e29b-41d4-a716-44", "550e8400-e29b-41d4-a716-44665544000\n",
	};
	struct qkd_etsi014_uuid u, v;
	char out[QKD_ETSI014_UUID_LEN + 1];

	(void)state;
	assert_int_equal(qkd_etsi014_uuid_parse("550e8400-e29b-41d4-a716-446655440000", 36, &u), 0);
	assert_int_equal(u.b[0], 0x55);
	assert_int_equal(u.b[15], 0x00);
	qkd_etsi014_uuid_format(&u, out);
	assert_string_equal(out, "550e8400-e29b-41d4-a716-446655440000");
	/* Either case in, lowercase out. */
	assert_int_equal(qkd_etsi014_uuid_parse("ABCDEF01-2345-6789-ABCD-EF0123456789", 36, &v), 0);
	qkd_etsi014_uuid_format(&v, out);
	assert_string_equal(out, "abcdef01-2345-6789-abcd-ef0123456789");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(qkd_etsi014_uuid_parse(bad[i], strlen(bad[i]), &u), QKD_ERR_INVAL);
	assert_int_equal(qkd_etsi014_uuid_parse(NULL, 36, &u), QKD_ERR_INVAL);
	/* Random ones: version 4, variant 10, distinct, and they round-trip. */
	for (int i = 0; i < 100; i++) {
		qkd_etsi014_uuid_random(&u);
		assert_int_equal(u.b[6] >> 4, 4);
		assert_int_equal(u.b[8] >> 6, 2);
		qkd_etsi014_uuid_format(&u, out);
		assert_int_equal(out[14], '4');
		assert_int_equal(qkd_etsi014_uuid_parse(out, strlen(out), &v), 0);
		assert_memory_equal(&u, &v, sizeof u);
	}
	qkd_etsi014_uuid_random(&v);
	assert_memory_not_equal(&u, &v, sizeof u);
}

static void test_ids_limits(void **state)
{
	struct qkd_etsi014_limits l = LIM;
	const char *why = NULL;
	char long_id[80];

	(void)state;
	assert_true(qkd_etsi014_id_valid("SAE_A"));
	assert_true(qkd_etsi014_id_valid("a.b-c~d_0"));
	assert_false(qkd_etsi014_id_valid(""));
	assert_false(qkd_etsi014_id_valid(NULL));
	assert_false(qkd_etsi014_id_valid("SAE A"));
	assert_false(qkd_etsi014_id_valid("SAE/A"));
	assert_false(qkd_etsi014_id_valid("SAE%41"));
	memset(long_id, 'x', sizeof long_id);
	long_id[64] = '\0';
	assert_true(qkd_etsi014_id_valid(long_id));
	long_id[64] = 'x';
	long_id[65] = '\0';
	assert_false(qkd_etsi014_id_valid(long_id));

	assert_int_equal(qkd_etsi014_limits_check(&l, &why), 0);
	assert_null(why);
	l.key_size = 100;
	assert_int_equal(qkd_etsi014_limits_check(&l, &why), QKD_ERR_INVAL);
	assert_non_null(why);
	l = LIM;
	l.min_key_size = 512;
	assert_int_equal(qkd_etsi014_limits_check(&l, &why), QKD_ERR_INVAL);
	l = LIM;
	l.max_key_size = QKD_ETSI014_KEY_BITS_MAX + 8;
	assert_int_equal(qkd_etsi014_limits_check(&l, &why), QKD_ERR_INVAL);
	l = LIM;
	l.max_key_per_request = 0;
	assert_int_equal(qkd_etsi014_limits_check(&l, &why), QKD_ERR_INVAL);
	l.max_key_per_request = QKD_ETSI014_KEYS_MAX + 1;
	assert_int_equal(qkd_etsi014_limits_check(&l, &why), QKD_ERR_INVAL);
}

/* ---- status ---- */

static void test_status(void **state)
{
	static const char *const fields[] = {
		"source_KME_ID", "target_KME_ID", "master_SAE_ID", "slave_SAE_ID", "key_size",
		"stored_key_count", "max_key_count", "max_key_per_request", "max_key_size",
		"min_key_size", "max_SAE_ID_count",
	};
	struct call *c = *state;
	const char *k;
	json_t *v;
	size_t i = 0;

	assert_int_equal(GET0(c, "SAE_A", "/api/v1/keys/SAE_B/status"), 200);
	assert_string_equal(c->f.master, "SAE_A");
	assert_string_equal(c->f.slave, "SAE_B");
	/* Exactly the fields of clause 6.1, in its order, strings then integers. */
	json_object_foreach(c->json, k, v) {
		assert_true(i < 11);
		assert_string_equal(k, fields[i]);
		assert_true(i < 4 ? json_is_string(v) : json_is_integer(v));
		i++;
	}
	assert_int_equal(i, 11);
	assert_string_equal(json_string_value(json_object_get(c->json, "source_KME_ID")), "KME_A");
	assert_string_equal(json_string_value(json_object_get(c->json, "target_KME_ID")), "KME_B");
	assert_string_equal(json_string_value(json_object_get(c->json, "master_SAE_ID")), "SAE_A");
	assert_string_equal(json_string_value(json_object_get(c->json, "slave_SAE_ID")), "SAE_B");
	assert_int_equal(detail_int(c->json, "key_size"), 352);
	assert_int_equal(detail_int(c->json, "stored_key_count"), 25000);
	assert_int_equal(detail_int(c->json, "max_key_count"), 100000);
	assert_int_equal(detail_int(c->json, "max_key_per_request"), 128);
	assert_int_equal(detail_int(c->json, "max_key_size"), 1024);
	assert_int_equal(detail_int(c->json, "min_key_size"), 64);
	assert_int_equal(detail_int(c->json, "max_SAE_ID_count"), 0);

	expect_error(c, GET(c, "SAE_A", "/api/v1/keys/SAE_B/status", "x=1"), 400, "no query");
	expect_error(c, POST(c, "SAE_A", "/api/v1/keys/SAE_B/status", "{}"), 405, "not allowed");
	c->f.rc = QKD_ERR_INVAL;
	expect_error(c, GET0(c, "SAE_A", "/api/v1/keys/SAE_Q/status"), 400, "fake failure");
}

/* ---- enc_keys ---- */

static void test_enc_get(void **state)
{
	struct call *c = *state;

	/* Defaults (clause 6.2): number 1, size = key_size. */
	GET0(c, "SAE_A", "/api/v1/keys/SAE_B/enc_keys");
	expect_keys(c, 1, 352 / 8);
	assert_string_equal(c->f.master, "SAE_A");
	assert_string_equal(c->f.slave, "SAE_B");
	assert_int_equal(c->f.number, 1);
	assert_int_equal(c->f.size, 352);

	GET(c, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", "number=3", "size=1024");
	expect_keys(c, 3, 128);
	GET(c, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", "size=64");
	expect_keys(c, 1, 8);
	GET(c, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", "number=128");
	expect_keys(c, 128, 44);
	/* The key_IDs the provider chose, printed lowercase. */
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(json_object_get(c->json, "keys"), 2), "key_ID")),
		"ab000000-0000-0000-0000-000000000002");
	assert_null(json_object_get(json_array_get(json_object_get(c->json, "keys"), 0),
				    "key_extension"));
	/* A relayed key says how it went, in its key_extension (clause 6.3). */
	c->f.relay_paths = 2;
	GET(c, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", "number=2");
	expect_keys(c, 2, 44);
	for (size_t k = 0; k < 2; k++) {
		json_t *r = json_object_get(json_object_get(json_array_get(json_object_get(c->json,
							"keys"), k), "key_extension"), "relay");

		assert_int_equal(json_integer_value(json_object_get(r, "paths")), 2);
		assert_int_equal(json_integer_value(json_object_get(r, "hops")), 3);
	}
	c->f.relay_paths = 0;
}

static void test_enc_get_errors(void **state)
{
	static const char *const bad_num[] = { "number=", "number", "number=+1", "number=-1",
		"number=1a", "number=0x10", "number=99999999999", "number= 1", "number=4294967296" };
	struct call *c = *state;
	const char *p = "/api/v1/keys/SAE_B/enc_keys";
	json_t *d;

	d = expect_error(c, GET(c, "SAE_A", p, "size=100"), 400, "multiple of 8");
	assert_int_equal(detail_int(d, "size"), 100);
	d = expect_error(c, GET(c, "SAE_A", p, "number=129"), 400, "max_key_per_request");
	assert_int_equal(detail_int(d, "max_key_per_request"), 128);
	assert_int_equal(detail_int(d, "number"), 129);
	expect_error(c, GET(c, "SAE_A", p, "number=0"), 400, "between 1 and");
	d = expect_error(c, GET(c, "SAE_A", p, "size=56"), 400, "min_key_size");
	assert_int_equal(detail_int(d, "min_key_size"), 64);
	d = expect_error(c, GET(c, "SAE_A", p, "size=1032"), 400, "max_key_size");
	assert_int_equal(detail_int(d, "max_key_size"), 1024);
	expect_error(c, GET(c, "SAE_A", p, "size=0"), 400, "min_key_size");
	for (size_t i = 0; i < sizeof bad_num / sizeof bad_num[0]; i++)
		expect_error(c, GET(c, "SAE_A", p, bad_num[i]), 400, "decimal integer");
	expect_error(c, GET(c, "SAE_A", p, "number=1", "number=1"), 400, "twice");
	expect_error(c, GET(c, "SAE_A", p, "size=64", "size=64"), 400, "twice");
	d = expect_error(c, GET(c, "SAE_A", p, "count=1"), 400, "unknown query parameter");
	assert_string_equal(json_string_value(json_object_get(d, "parameter")), "count");
	expect_error(c, GET(c, "SAE_A", p, "key_ID=1"), 400, "unknown query parameter");
	assert_int_equal(c->f.calls, 0);	/* the provider never saw any of these */
}

static void test_enc_post(void **state)
{
	struct call *c = *state;
	const char *p = "/api/v1/keys/SAE_B/enc_keys";

	POST(c, "SAE_A", p, "{}");
	expect_keys(c, 1, 44);
	POST(c, "SAE_A", p, "{\"number\": 2, \"size\": 128}");
	expect_keys(c, 2, 16);
	assert_int_equal(c->f.number, 2);
	assert_int_equal(c->f.size, 128);
	/* Every field of clause 6.2 at once; null counts as absent. */
	POST(c, "SAE_A", p, "{\"number\": 3, \"size\": 256, \"additional_slave_SAE_IDs\": [],"
			    " \"extension_mandatory\": [], \"extension_optional\":"
			    " [{\"abc_max_age\": 30000}, {\"x\": {\"y\": [1]}}]}");
	expect_keys(c, 3, 32);
	POST(c, "SAE_A", p, "{\"number\": null, \"size\": null, \"additional_slave_SAE_IDs\": null}");
	expect_keys(c, 1, 44);
	POST(c, "SAE_A", p, " \n{\"size\" : 1024}\t");
	expect_keys(c, 1, 128);
}

static void test_enc_post_errors(void **state)
{
	struct call *c = *state;
	const char *p = "/api/v1/keys/SAE_B/enc_keys";
	json_t *d, *names;

	expect_error(c, POST(c, "SAE_A", p, "number=2"), 400, "not valid JSON");
	expect_error(c, POST(c, "SAE_A", p, ""), 400, "not valid JSON");
	expect_error(c, POST(c, "SAE_A", p, "{\"number\": 2"), 400, "not valid JSON");
	expect_error(c, POST(c, "SAE_A", p, "{} {}"), 400, "not valid JSON");
	expect_error(c, POST(c, "SAE_A", p, "{\"number\": 1, \"number\": 2}"), 400, "not valid JSON");
	expect_error(c, POST(c, "SAE_A", p, "[]"), 400, "JSON object");
	expect_error(c, POST(c, "SAE_A", p, "2"), 400, "JSON object");
	expect_error(c, POST(c, "SAE_A", p, "{\"number\": \"2\"}"), 400, "must be an integer");
	expect_error(c, POST(c, "SAE_A", p, "{\"number\": 2.0}"), 400, "must be an integer");
	expect_error(c, POST(c, "SAE_A", p, "{\"size\": true}"), 400, "must be an integer");
	expect_error(c, POST(c, "SAE_A", p, "{\"number\": -1}"), 400, "out of range");
	expect_error(c, POST(c, "SAE_A", p, "{\"number\": 4294967296}"), 400, "out of range");
	expect_error(c, POST(c, "SAE_A", p, "{\"number\": 0}"), 400, "between 1 and");
	expect_error(c, POST(c, "SAE_A", p, "{\"number\": 129}"), 400, "max_key_per_request");
	expect_error(c, POST(c, "SAE_A", p, "{\"size\": 100}"), 400, "multiple of 8");
	expect_error(c, POST(c, "SAE_A", p, "{\"size\": 2048}"), 400, "max_key_size");
	d = expect_error(c, POST(c, "SAE_A", p, "{\"numbr\": 2}"), 400, "unknown field");
	assert_string_equal(json_string_value(json_object_get(d, "field")), "numbr");
	/* extension_mandatory: unknown parameters named in the details. */
	d = expect_error(c, POST(c, "SAE_A", p, "{\"extension_mandatory\": [{\"abc_route_type\":"
				 " \"direct\"}, {\"abc_transfer_method\": \"qkd\"}]}"), 400,
			 "not all extension_mandatory parameters are supported");
	names = json_object_get(d, "extension_mandatory_unsupported");
	assert_int_equal(json_array_size(names), 2);
	assert_string_equal(json_string_value(json_array_get(names, 0)), "abc_route_type");
	assert_string_equal(json_string_value(json_array_get(names, 1)), "abc_transfer_method");
	expect_error(c, POST(c, "SAE_A", p, "{\"extension_mandatory\": {}}"), 400, "array of objects");
	expect_error(c, POST(c, "SAE_A", p, "{\"extension_mandatory\": [1]}"), 400, "array of objects");
	expect_error(c, POST(c, "SAE_A", p, "{\"extension_optional\": [\"x\"]}"), 400, "array of objects");
	d = expect_error(c, POST(c, "SAE_A", p, "{\"additional_slave_SAE_IDs\": [\"SAE_C\"]}"), 400,
			 "multicast");
	assert_int_equal(detail_int(d, "max_SAE_ID_count"), 0);
	expect_error(c, POST(c, "SAE_A", p, "{\"additional_slave_SAE_IDs\": \"SAE_C\"}"), 400,
		     "array of strings");
	expect_error(c, POST(c, "SAE_A", p, "{\"additional_slave_SAE_IDs\": [\"a b\"]}"), 400,
		     "array of SAE IDs");
	assert_int_equal(c->f.calls, 0);
}

/* ---- dec_keys ---- */

static void test_dec(void **state)
{
	struct call *c = *state;
	const char *p = "/api/v1/keys/SAE_A/dec_keys";
	const char *id = "550e8400-e29b-41d4-a716-446655440000";
	json_t *k;

	GET(c, "SAE_B", p, "key_ID=550e8400-e29b-41d4-a716-446655440000");
	expect_keys(c, 1, 16);
	/* The caller of dec_keys is the slave; the path names the master. */
	assert_string_equal(c->f.master, "SAE_A");
	assert_string_equal(c->f.slave, "SAE_B");
	k = json_array_get(json_object_get(c->json, "keys"), 0);
	assert_string_equal(json_string_value(json_object_get(k, "key_ID")), id);
	/* Uppercase in, lowercase out. */
	GET(c, "SAE_B", p, "key_ID=550E8400-E29B-41D4-A716-446655440000");
	expect_keys(c, 1, 16);
	k = json_array_get(json_object_get(c->json, "keys"), 0);
	assert_string_equal(json_string_value(json_object_get(k, "key_ID")), id);

	POST(c, "SAE_B", p, "{\"key_IDs\": [{\"key_ID\": \"550e8400-e29b-41d4-a716-446655440000\"},"
			    " {\"key_ID\": \"bc490419-7d60-487f-adc1-4ddcc177c139\","
			    " \"key_ID_extension\": {\"a\": 1}}], \"key_IDs_extension\": {}}");
	expect_keys(c, 2, 16);
	assert_int_equal(c->f.n, 2);
	k = json_array_get(json_object_get(c->json, "keys"), 1);
	assert_string_equal(json_string_value(json_object_get(k, "key_ID")),
			    "bc490419-7d60-487f-adc1-4ddcc177c139");
}

static void test_dec_errors(void **state)
{
	struct call *c = *state;
	const char *p = "/api/v1/keys/SAE_A/dec_keys";
	const char *u1 = "550e8400-e29b-41d4-a716-446655440000";
	char body[QKD_ETSI014_BODY_MAX], *w;
	json_t *d;

	expect_error(c, GET0(c, "SAE_B", p), 400, "key_ID is missing");
	d = expect_error(c, GET(c, "SAE_B", p, "key_ID=xyz"), 400, "malformed key_ID");
	assert_string_equal(json_string_value(json_object_get(d, "key_ID")), "xyz");
	expect_error(c, GET(c, "SAE_B", p, "key_ID"), 400, "malformed key_ID");
	expect_error(c, GET(c, "SAE_B", p, "key_ID={550e8400-e29b-41d4-a716-446655440000}"), 400,
		     "malformed key_ID");
	expect_error(c, GET(c, "SAE_B", p, "key_ID=550e8400-e29b-41d4-a716-446655440000",
			    "key_ID=bc490419-7d60-487f-adc1-4ddcc177c139"), 400, "one key_ID per GET");
	expect_error(c, GET(c, "SAE_B", p, "number=1"), 400, "unknown query parameter");
	expect_error(c, POST(c, "SAE_B", p, "{}"), 400, "key_IDs is missing");
	expect_error(c, POST(c, "SAE_B", p, "{\"key_IDs\": []}"), 400, "non-empty array");
	expect_error(c, POST(c, "SAE_B", p, "{\"key_IDs\": {}}"), 400, "non-empty array");
	expect_error(c, POST(c, "SAE_B", p, "{\"key_IDs\": [\"x\"]}"), 400, "must be an object");
	expect_error(c, POST(c, "SAE_B", p, "{\"key_IDs\": [{}]}"), 400, "has no key_ID");
	expect_error(c, POST(c, "SAE_B", p, "{\"key_IDs\": [{\"key_ID\": 1}]}"), 400, "malformed");
	expect_error(c, POST(c, "SAE_B", p, "{\"key_IDs\": [{\"key_ID\": \"550e8400\"}]}"), 400,
		     "malformed");
	expect_error(c, POST(c, "SAE_B", p, "{\"key_IDs\": [{\"key_ID\": \"550e8400-e29b-41d4-a716-"
				"446655440000\", \"key\": \"x\"}]}"), 400, "unknown field");
	expect_error(c, POST(c, "SAE_B", p, "{\"key_IDs\": [{\"key_ID\": \"550e8400-e29b-41d4-a716-"
				"446655440000\", \"key_ID_extension\": 3}]}"), 400, "must be an object");
	expect_error(c, POST(c, "SAE_B", p, "{\"key_IDs\": [], \"keys\": 1}"), 400, "unknown field");
	expect_error(c, POST(c, "SAE_B", p, "{\"key_IDs_extension\": 1, \"key_IDs\": []}"), 400,
		     "must be an object");
	d = expect_error(c, POST(c, "SAE_B", p, "{\"key_IDs\": [{\"key_ID\": \"550e8400-e29b-41d4-a716-"
				 "446655440000\"}, {\"key_ID\": \"550E8400-E29B-41D4-A716-"
				 "446655440000\"}]}"), 400, "twice");
	assert_non_null(json_object_get(d, "key_ID"));
	/* 129 key_IDs: above max_key_per_request. */
	w = body + sprintf(body, "{\"key_IDs\": [");
	for (int i = 0; i < 129; i++)
		w += sprintf(w, "%s{\"key_ID\": \"%.28s%08x\"}", i ? "," : "", u1, i);
	sprintf(w, "]}");
	d = expect_error(c, POST(c, "SAE_B", p, body), 400, "too many key_IDs");
	assert_int_equal(detail_int(d, "max_key_per_request"), 128);
	assert_int_equal(c->f.calls, 0);
}

/* ---- routing, methods, bodies, callers ---- */

static void test_routing(void **state)
{
	static const char *const notfound[] = {
		"/", "/api/v1/keys", "/api/v1/keys/", "/api/v1/keys/SAE_B", "/api/v1/keys/SAE_B/",
		"/api/v1/keys/SAE_B/status/", "/api/v1/keys/SAE_B/keys", "/api/v2/keys/SAE_B/status",
		"/API/v1/keys/SAE_B/status", "/api/v1/keys/SAE_B/x/status", "api/v1/keys/SAE_B/status",
	};
	struct call *c = *state;
	char p[200];

	for (size_t i = 0; i < sizeof notfound / sizeof notfound[0]; i++)
		expect_error(c, GET0(c, "SAE_A", notfound[i]), 404, "no such resource");
	expect_error(c, GET0(c, "SAE_A", "/api/v1/keys//status"), 400, "malformed SAE ID");
	expect_error(c, GET0(c, "SAE_A", "/api/v1/keys/SAE B/status"), 400, "malformed SAE ID");
	snprintf(p, sizeof p, "/api/v1/keys/%065d/status", 0);
	expect_error(c, GET0(c, "SAE_A", p), 400, "malformed SAE ID");
	snprintf(p, sizeof p, "/api/v1/keys/%064d/status", 0);
	assert_int_equal(GET0(c, "SAE_A", p), 200);
	expect_error(c, serve(c, "SAE_A", "DELETE", "/api/v1/keys/SAE_B/enc_keys", NULL, NULL, 0),
		     405, "not allowed");
	expect_error(c, serve(c, "SAE_A", "HEAD", "/api/v1/keys/SAE_B/status", NULL, NULL, 0),
		     405, "not allowed");
	expect_error(c, serve(c, "SAE_A", "get", "/api/v1/keys/SAE_B/status", NULL, NULL, 0),
		     405, "not allowed");
	expect_error(c, serve(c, "SAE_A", "GET", "/api/v1/keys/SAE_B/enc_keys", "{}", NULL, 0),
		     400, "takes no body");
	expect_error(c, serve(c, "SAE_A", "POST", "/api/v1/keys/SAE_B/enc_keys", "{}",
			      (const char *const[]){ "number=1" }, 1), 400, "JSON body");
}

static void test_body_limit(void **state)
{
	struct call *c = *state;
	char *body = malloc(QKD_ETSI014_BODY_MAX + 2);
	json_t *d;

	assert_non_null(body);
	/* Exactly the limit: parsed (white space around {}). */
	memset(body, ' ', QKD_ETSI014_BODY_MAX);
	body[0] = '{';
	body[QKD_ETSI014_BODY_MAX - 1] = '}';
	body[QKD_ETSI014_BODY_MAX] = '\0';
	POST(c, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", body);
	expect_keys(c, 1, 44);
	/* One byte more: 413. */
	body[QKD_ETSI014_BODY_MAX - 1] = ' ';
	body[QKD_ETSI014_BODY_MAX] = '}';
	body[QKD_ETSI014_BODY_MAX + 1] = '\0';
	d = expect_error(c, POST(c, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", body), 413, "too large");
	assert_int_equal(detail_int(d, "max_body_bytes"), QKD_ETSI014_BODY_MAX);
	free(body);
}

static void test_callers(void **state)
{
	struct call *c = *state;

	/* No certificate (no caller): 401 whatever the request. */
	expect_error(c, GET0(c, NULL, "/api/v1/keys/SAE_B/status"), 401, "unauthorized");
	expect_error(c, GET0(c, NULL, "/nope"), 401, "unauthorized");
	expect_error(c, GET0(c, "bad id", "/api/v1/keys/SAE_B/status"), 401, "unauthorized");
	/* An SAE naming itself as its peer. */
	expect_error(c, GET0(c, "SAE_B", "/api/v1/keys/SAE_B/enc_keys"), 400, "caller's own");
	expect_error(c, GET(c, "SAE_A", "/api/v1/keys/SAE_A/dec_keys",
			    "key_ID=550e8400-e29b-41d4-a716-446655440000"), 400, "caller's own");
	assert_int_equal(c->f.calls, 0);
}

/* ---- provider failures ---- */

static void test_provider_errors(void **state)
{
	struct call *c = *state;
	const char *e = "/api/v1/keys/SAE_B/enc_keys", *dk = "/api/v1/keys/SAE_A/dec_keys";
	const char *two = "{\"key_IDs\": [{\"key_ID\": \"550e8400-e29b-41d4-a716-446655440000\"},"
			  " {\"key_ID\": \"bc490419-7d60-487f-adc1-4ddcc177c139\"}]}";
	json_t *d;

	c->f.rc = QKD_ERR_RANGE;
	d = expect_error(c, GET(c, "SAE_A", e, "number=5"), 503, "not enough key available");
	assert_int_equal(detail_int(d, "number"), 5);
	assert_int_equal(detail_int(d, "size"), 352);
	c->f.rc = QKD_ERR_IO;
	expect_error(c, GET0(c, "SAE_A", e), 503, "key manager error");
	expect_error(c, GET0(c, "SAE_A", "/api/v1/keys/SAE_B/status"), 503, "key manager error");
	c->f.rc = QKD_ERR_INVAL;
	c->f.bad = 1;
	d = expect_error(c, POST(c, "SAE_B", dk, two), 400, "fake failure");
	assert_string_equal(json_string_value(json_object_get(d, "key_ID")),
			    "bc490419-7d60-487f-adc1-4ddcc177c139");
	c->f.rc = QKD_ERR_VERIFY;
	c->f.bad = 0;
	d = expect_error(c, POST(c, "SAE_B", dk, two), 401, "unauthorized");
	assert_string_equal(json_string_value(json_object_get(d, "key_ID")),
			    "550e8400-e29b-41d4-a716-446655440000");
	c->f.bad = 2;	/* no key_ID at fault: no details */
	assert_null(expect_error(c, POST(c, "SAE_B", dk, two), 401, "unauthorized"));
	/* A provider breaking its contract never makes a wrong key go out. */
	c->f.rc = 0;
	c->f.short_key = 1;
	expect_error(c, GET0(c, "SAE_A", e), 503, "wrong size");
	c->f.wrong_id = 1;
	expect_error(c, POST(c, "SAE_B", dk, two), 503, "not asked for");
}

/* ---- the Error object and base64 ---- */

static void test_error_object(void **state)
{
	struct qkd_etsi014_error err;
	struct qkd_etsi014_response resp = {0};

	(void)state;
	memset(&err, 0, sizeof err);
	err.status = 401;
	snprintf(err.message, sizeof err.message, "unauthorized: \"quoted\"");
	assert_int_equal(qkd_etsi014_error_response(&err, &resp), 0);
	assert_int_equal(resp.status, 401);
	assert_string_equal(resp.body, "{\"message\":\"unauthorized: \\\"quoted\\\"\"}");
	qkd_etsi014_response_cleanup(&resp);
	assert_null(resp.body);
	err.detail = json_pack("{s:s}", "key_ID", "x");
	assert_int_equal(qkd_etsi014_error_response(&err, &resp), 0);
	assert_string_equal(resp.body, "{\"message\":\"unauthorized: \\\"quoted\\\"\","
				       "\"details\":[{\"key_ID\":\"x\"}]}");
	qkd_etsi014_response_cleanup(&resp);
	qkd_etsi014_error_cleanup(&err);
	assert_null(err.detail);
	qkd_etsi014_error_cleanup(NULL);
	qkd_etsi014_response_cleanup(NULL);
	qkd_etsi014_free(NULL);
}

/* Every key size from 8 to 1024 bits: the base64 (ORIGINAL variant, with
 * padding) decodes to exactly the provider's bytes. */
static void test_base64_sizes(void **state)
{
	struct call *c = *state;
	char arg[32];

	for (unsigned bits = 64; bits <= 1024; bits += 8) {
		snprintf(arg, sizeof arg, "size=%u", bits);
		GET(c, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", "number=2", arg);
		expect_keys(c, 2, bits / 8);
	}
	/* A known vector: bytes 01 08 0f ... of key 0 (pattern). */
	GET(c, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", "size=64");
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(json_object_get(c->json, "keys"), 0), "key")), "AQgPFh0kKzI=");
}

/* ---- parse alone ---- */

static void test_parse_api(void **state)
{
	struct qkd_etsi014_request r;
	struct qkd_etsi014_error err;
	struct qkd_etsi014_arg a[2] = { { "number", "7" }, { "size", "64" } };
	struct qkd_etsi014_http h = { .method = "GET", .path = "/api/v1/keys/SAE_B/enc_keys",
				      .args = a, .nargs = 2 };
	const char *body = "{\"key_IDs\":[{\"key_ID\":\"550e8400-e29b-41d4-a716-446655440000\"}]}xx";

	(void)state;
	memset(&err, 0, sizeof err);
	assert_int_equal(qkd_etsi014_parse(&LIM, &h, &r, &err), 0);
	assert_int_equal(r.op, QKD_ETSI014_ENC_KEYS);
	assert_string_equal(r.sae, "SAE_B");
	assert_int_equal(r.number, 7);
	assert_int_equal(r.size, 64);
	assert_int_equal(err.status, 0);
	qkd_etsi014_request_cleanup(&r);

	h = (struct qkd_etsi014_http){ .method = "POST", .path = "/api/v1/keys/M/dec_keys",
				       .body = body, .body_len = strlen(body) - 2 };
	assert_int_equal(qkd_etsi014_parse(&LIM, &h, &r, &err), 0);	/* body_len bounds it */
	assert_int_equal(r.op, QKD_ETSI014_DEC_KEYS);
	assert_int_equal(r.nids, 1);
	assert_int_equal(r.ids[0].b[0], 0x55);
	qkd_etsi014_request_cleanup(&r);
	h.body_len = strlen(body);	/* now with the trailing "xx" */
	assert_int_equal(qkd_etsi014_parse(&LIM, &h, &r, &err), QKD_ERR_INVAL);
	assert_int_equal(err.status, 400);
	qkd_etsi014_request_cleanup(&r);
	qkd_etsi014_error_cleanup(&err);

	h = (struct qkd_etsi014_http){ .method = "GET", .path = "/api/v1/keys/SAE_B/status" };
	assert_int_equal(qkd_etsi014_parse(&LIM, &h, &r, &err), 0);
	assert_int_equal(r.op, QKD_ETSI014_STATUS);
	qkd_etsi014_request_cleanup(&r);
	h.path = NULL;
	assert_int_equal(qkd_etsi014_parse(&LIM, &h, &r, &err), QKD_ERR_INVAL);
	assert_int_equal(err.status, 404);
	qkd_etsi014_request_cleanup(&r);
	qkd_etsi014_error_cleanup(&err);
}

/* ---- the request-target before decoding ---- */

/* qkd_etsi014_target_check(t): want_rc, and for a refusal a 400 whose
 * message has want and whose details give pos (-1: no details). */
static void expect_target(const char *t, const char *want, json_int_t pos)
{
	struct qkd_etsi014_error err;
	int rc;

	memset(&err, 0, sizeof err);
	rc = qkd_etsi014_target_check(t, &err);
	if (want == NULL) {
		if (rc != 0)
			fail_msg("'%s' refused: %s", t, err.message);
		assert_int_equal(err.status, 0);
		assert_null(err.detail);
		return;
	}
	if (rc != QKD_ERR_INVAL)
		fail_msg("'%s' accepted", t);
	assert_int_equal(err.status, 400);
	if (strstr(err.message, want) == NULL)
		fail_msg("'%s': message '%s' lacks '%s'", t, err.message, want);
	if (pos < 0)
		assert_null(err.detail);
	else
		assert_int_equal(detail_int(err.detail, "position"), pos);
	qkd_etsi014_error_cleanup(&err);
}

static void test_target(void **state)
{
	static const char *const good[] = {
		"/api/v1/keys/SAE_B/status",
		"/api/v1/keys/SAE_B/enc_keys?number=2&size=256",
		"/api/v1/keys/SAE%5FB/status",			/* an unreserved '_', escaped */
		"/api/v1/keys/SAE_A/dec_keys?key_ID=%7Babc%7D",
		"/api/v1/keys/SAE_A/dec_keys?key_ID=a%2Fb%5Cc",	/* in a query: only data */
		"/x?a=b?c=d/e",				/* RFC 3986 section 3.4 */
		"/!$&'()*+,;=:@-._~AZaz09",
		"/",
	};
	static const struct { const char *t, *msg; json_int_t pos; } bad[] = {
		{ "/api/v1/keys/SAE_B/enc_keys?number=1%00", "NUL byte (%00)", 36 },
		{ "/api/v1/keys/SAE_B%00/status", "NUL byte", 18 },
		{ "/api/v1/keys/SAE_B%2Fstatus", "encoded '/'", 18 },
		{ "/api/v1/keys/SAE_B%2fstatus", "encoded '/'", 18 },
		{ "/api/v1/keys/SAE_B%5Cstatus", "(%2F, %5C) in the path", 18 },
		{ "/api/v1/keys/SAE_B%5cstatus", "(%2F, %5C) in the path", 18 },
		{ "/api/v1/keys/SAE_B/status%", "malformed percent-encoding", 25 },
		{ "/api/v1/keys/SAE_B/status%4", "malformed percent-encoding", 25 },
		{ "/api/v1/keys/SAE_B/status%zz", "malformed percent-encoding", 25 },
		{ "/api/v1/keys/SAE_B/status%%41", "malformed percent-encoding", 25 },
		{ "/api/v1/keys/SAE B/status", "not allowed", 16 },
		{ "/api/v1/keys/SAE_A/dec_keys?key_ID=%7B%7D#x", "not allowed", 41 },
		{ "/api/v1/keys/SAE\\B/status", "not allowed", 16 },
		{ "/x?key_ID={abc}", "not allowed", 10 },
		{ "/x\t", "not allowed", 2 },
		{ "/x\x7f", "not allowed", 2 },
		{ "/\xc3\xa4", "not allowed", 1 },
		{ "", "origin-form", -1 },
		{ "*", "origin-form", -1 },
		{ "https://kme/api/v1/keys/SAE_B/status", "origin-form", -1 },
		{ "api/v1/keys/SAE_B/status", "origin-form", -1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		expect_target(good[i], NULL, -1);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_target(bad[i].t, bad[i].msg, bad[i].pos);
	expect_target(NULL, "origin-form", -1);
}

/* Serve GET path?arg whose request-target was target. */
static unsigned get_target(struct call *c, const char *target, const char *path,
			   const char *name, const char *value)
{
	struct qkd_etsi014_arg a[1] = { { name, value } };
	struct qkd_etsi014_http h = { .method = "GET", .path = path, .args = a,
				      .nargs = name != NULL, .target = target };

	reset(c);
	assert_int_equal(qkd_etsi014_handle(&c->kme, "SAE_A", &h, &c->resp), 0);
	c->json = json_loads(c->resp.body, 0, NULL);
	assert_non_null(c->json);
	return c->resp.status;
}

/* What the HTTP server decoded looks fine; only the target shows it was not
 * sent that way. Refused before the provider is asked. */
static void test_target_handle(void **state)
{
	struct call *c = *state;
	const char *e = "/api/v1/keys/SAE_B/enc_keys", *st = "/api/v1/keys/SAE_B/status";

	/* "number=1%00" decodes to "1\0": a C string reads 1. */
	expect_error(c, get_target(c, "/api/v1/keys/SAE_B/enc_keys?number=1%00", e, "number", "1"),
		     400, "NUL byte");
	/* "SAE_B%2Fstatus" decodes to a path of one more segment. */
	expect_error(c, get_target(c, "/api/v1/keys/SAE_B%2Fstatus", st, NULL, NULL), 400,
		     "encoded '/'");
	assert_int_equal(c->f.calls, 0);
	assert_int_equal(get_target(c, "/api/v1/keys/SAE_B/enc_keys?number=1", e, "number", "1"),
			 200);
	expect_keys(c, 1, 44);
	assert_int_equal(get_target(c, "/api/v1/keys/SAE%5FB/status", st, NULL, NULL), 200);
	assert_int_equal(c->f.calls, 2);
}

/* A NUL in a body parameter: jansson refuses \u0000 in strings and names
 * (no JSON_ALLOW_NUL), and a raw NUL byte is no JSON at all. */
static void test_body_nul(void **state)
{
	static const char raw[] = "{\"number\": 1}\0";
	struct call *c = *state;
	const char *e = "/api/v1/keys/SAE_B/enc_keys", *dk = "/api/v1/keys/SAE_A/dec_keys";
	struct qkd_etsi014_http h = { .method = "POST", .path = e, .body = raw,
				      .body_len = sizeof raw - 1 };

	expect_error(c, POST(c, "SAE_A", e, "{\"number\": 1, \"n\\u0000\": 1}"), 400,
		     "not valid JSON");
	expect_error(c, POST(c, "SAE_A", e, "{\"number\\u0000\": 1}"), 400, "not valid JSON");
	expect_error(c, POST(c, "SAE_B", dk, "{\"key_IDs\": [{\"key_ID\": "
			     "\"550e8400-e29b-41d4-a716-44665544000\\u0000\"}]}"), 400,
		     "not valid JSON");
	reset(c);
	assert_int_equal(qkd_etsi014_handle(&c->kme, "SAE_A", &h, &c->resp), 0);
	c->json = json_loads(c->resp.body, 0, NULL);
	expect_error(c, c->resp.status, 400, "not valid JSON");
	assert_int_equal(c->f.calls, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_uuid), T(test_ids_limits), T(test_status), T(test_enc_get),
		T(test_enc_get_errors), T(test_enc_post), T(test_enc_post_errors), T(test_dec),
		T(test_dec_errors), T(test_routing), T(test_body_limit), T(test_callers),
		T(test_provider_errors), T(test_error_object), T(test_base64_sizes),
		T(test_parse_api), T(test_target), T(test_target_handle), T(test_body_nul),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
