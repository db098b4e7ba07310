/* test_kme_client.c - the ETSI GS QKD 014 client (qkd/kme_client.h,
 * lib/kme/kme_client*.c; docs/kme.md, "Client") without a network: the
 * response parsers of clause 6 against valid and broken Status, Key
 * container and Error objects; our own server's answers (qkd_etsi014_handle)
 * read back by the client's parsers; the bounded body buffer and its
 * wiping; the argument checks that refuse a request before anything is
 * sent; and the allocator that wipes jansson's copies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "qkd/error.h"
#include "qkd/etsi014.h"
#include "qkd/kme_client.h"

#include "../../lib/kme/kme_client_int.h"

#define ID0 "0b3a8a4e-5f6c-4d1e-8f2a-1b2c3d4e5f60"
#define ID1 "1b3a8a4e-5f6c-4d1e-8f2a-1b2c3d4e5f61"
#define ID2 "2b3a8a4e-5f6c-4d1e-8f2a-1b2c3d4e5f62"

static const char status_ok[] =
	"{\"source_KME_ID\":\"KME_A\",\"target_KME_ID\":\"KME_B\",\"master_SAE_ID\":\"SAE_A\","
	"\"slave_SAE_ID\":\"SAE_B\",\"key_size\":256,\"stored_key_count\":131072,"
	"\"max_key_count\":131072,\"max_key_per_request\":128,\"max_key_size\":8192,"
	"\"min_key_size\":64,\"max_SAE_ID_count\":0}";

static int parse_status_text(const char *text, const char *slave, struct qkd_kme_status *st,
			     struct qkd_kme_error *err)
{
	memset(err, 0, sizeof *err);
	return qkd_kme_parse_status(text, strlen(text), slave, st, err);
}

/* The valid Status with member name set to the JSON value (NULL: removed). */
static int status_with(const char *name, const char *value, struct qkd_kme_error *err)
{
	json_t *root = json_loads(status_ok, JSON_PRESERVE_ORDER, NULL);
	struct qkd_kme_status st;
	char *text;
	int rc;

	assert_non_null(root);
	if (value == NULL)
		assert_int_equal(json_object_del(root, name), 0);
	else
		assert_int_equal(json_object_set_new(root, name, json_loads(value, JSON_DECODE_ANY,
									   NULL)), 0);
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_non_null(text);
	rc = parse_status_text(text, "SAE_B", &st, err);
	if (rc != 0) {
		assert_int_equal(st.key_size, 0);	/* zeroed on failure */
		assert_int_equal(err->http_status, 200);
		assert_true(err->message[0] != '\0');
	}
	qkd_kme_status_cleanup(&st);
	free(text);
	json_decref(root);
	return rc;
}

static void test_status_valid(void **state)
{
	struct qkd_kme_status st;
	struct qkd_kme_error err;

	(void)state;
	assert_int_equal(parse_status_text(status_ok, "SAE_B", &st, &err), 0);
	assert_string_equal(st.source_kme_id, "KME_A");
	assert_string_equal(st.target_kme_id, "KME_B");
	assert_string_equal(st.master_sae_id, "SAE_A");
	assert_string_equal(st.slave_sae_id, "SAE_B");
	assert_int_equal(st.key_size, 256);
	assert_int_equal(st.stored_key_count, 131072);
	assert_int_equal(st.max_key_count, 131072);
	assert_int_equal(st.max_key_per_request, 128);
	assert_int_equal(st.max_key_size, 8192);
	assert_int_equal(st.min_key_size, 64);
	assert_int_equal(st.max_sae_id_count, 0);
	assert_null(st.body);
	qkd_kme_status_cleanup(&st);
	/* any slave when none is named; extension objects and null pass */
	assert_int_equal(parse_status_text(status_ok, NULL, &st, &err), 0);
	assert_int_equal(status_with("status_extension", "{\"vendor\":1}", &err), 0);
	assert_int_equal(status_with("status_extension", "null", &err), 0);
	assert_int_equal(status_with("stored_key_count", "9007199254740993", &err), QKD_ERR_PROTO);
	assert_int_equal(status_with("max_key_count", "9007199254740993", &err), 0);
	assert_int_equal(status_with("max_SAE_ID_count", "5", &err), 0);
	assert_int_equal(status_with("source_KME_ID", "\"kme-1.example:443/x\"", &err), 0);
}

static void test_status_missing_and_types(void **state)
{
	static const char *const mandatory[] = {
		"source_KME_ID", "target_KME_ID", "master_SAE_ID", "slave_SAE_ID", "key_size",
		"stored_key_count", "max_key_count", "max_key_per_request", "max_key_size",
		"min_key_size", "max_SAE_ID_count",
	};
	struct qkd_kme_error err;

	(void)state;
	for (size_t i = 0; i < sizeof mandatory / sizeof mandatory[0]; i++) {
		assert_int_equal(status_with(mandatory[i], NULL, &err), QKD_ERR_PROTO);
		assert_non_null(strstr(err.message, mandatory[i]));
		assert_non_null(strstr(err.message, "missing"));
		assert_int_equal(status_with(mandatory[i], "null", &err), QKD_ERR_PROTO);
		assert_non_null(strstr(err.message, mandatory[i]));
	}
	assert_int_equal(status_with("key_size", "\"256\"", &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "key_size must be an integer"));
	assert_int_equal(status_with("key_size", "256.0", &err), QKD_ERR_PROTO);
	assert_int_equal(status_with("key_size", "true", &err), QKD_ERR_PROTO);
	assert_int_equal(status_with("source_KME_ID", "5", &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "source_KME_ID must be a string"));
	assert_int_equal(status_with("master_SAE_ID", "[\"SAE_A\"]", &err), QKD_ERR_PROTO);
	assert_int_equal(status_with("status_extension", "[]", &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "status_extension must be an object"));
	assert_int_equal(status_with("vendor_field", "1", &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "unknown member \"vendor_field\""));
}

static void test_status_values(void **state)
{
	struct qkd_kme_status st;
	struct qkd_kme_error err;

	(void)state;
	assert_int_equal(status_with("key_size", "-1", &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "out of range"));
	assert_int_equal(status_with("max_key_size", "4294967296", &err), QKD_ERR_PROTO);
	assert_int_equal(status_with("stored_key_count", "-5", &err), QKD_ERR_PROTO);
	assert_int_equal(status_with("min_key_size", "512", &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "min_key_size (512) <= key_size (256)"));
	assert_int_equal(status_with("min_key_size", "0", &err), QKD_ERR_PROTO);
	assert_int_equal(status_with("max_key_size", "128", &err), QKD_ERR_PROTO);
	assert_int_equal(status_with("max_key_per_request", "0", &err), QKD_ERR_PROTO);
	assert_int_equal(status_with("stored_key_count", "131073", &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "exceeds max_key_count"));
	assert_int_equal(status_with("source_KME_ID", "\"\"", &err), QKD_ERR_PROTO);
	assert_int_equal(status_with("target_KME_ID", "\"KME B\"", &err), QKD_ERR_PROTO);
	assert_int_equal(status_with("master_SAE_ID", "\"SAE\\u001b[31mA\"", &err), QKD_ERR_PROTO);
	assert_int_equal(status_with("master_SAE_ID", "\"S\\u00c4E\"", &err), QKD_ERR_PROTO);
	/* the slave must be the one asked for */
	assert_int_equal(parse_status_text(status_ok, "SAE_C", &st, &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "\"SAE_B\", not the \"SAE_C\""));
}

static void test_status_framing(void **state)
{
	static const char *const bad[] = {
		"", " ", "[]", "null", "\"status\"", "{", "{\"key_size\":256,}",
		"{\"source_KME_ID\":\"KME_A\",\"source_KME_ID\":\"KME_A\"}",
	};
	struct qkd_kme_status st;
	struct qkd_kme_error err;
	char buf[1024];

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(parse_status_text(bad[i], "SAE_B", &st, &err), QKD_ERR_PROTO);
	/* trailing garbage, a second object, a duplicate member */
	snprintf(buf, sizeof buf, "%s x", status_ok);
	assert_int_equal(parse_status_text(buf, "SAE_B", &st, &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "not JSON"));
	snprintf(buf, sizeof buf, "%s%s", status_ok, status_ok);
	assert_int_equal(parse_status_text(buf, "SAE_B", &st, &err), QKD_ERR_PROTO);
	snprintf(buf, sizeof buf, "%.*s,\"key_size\":256}", (int)strlen(status_ok) - 1, status_ok);
	assert_int_equal(parse_status_text(buf, "SAE_B", &st, &err), QKD_ERR_PROTO);
	/* white space around the object is fine */
	snprintf(buf, sizeof buf, " \n%s\n", status_ok);
	assert_int_equal(parse_status_text(buf, "SAE_B", &st, &err), 0);
	/* a NUL inside: the length counts, not the C string */
	memcpy(buf, status_ok, sizeof status_ok);
	buf[10] = '\0';
	assert_int_equal(qkd_kme_parse_status(buf, sizeof status_ok - 1, "SAE_B", &st, &err),
			 QKD_ERR_PROTO);
}

/* ---- Key container ---- */

/* A container of keys whose bytes are pattern(i, j), n of len bytes. */
static char *container(size_t n, size_t len, const char *const *ids, const char *extra)
{
	char b64[200], *out = malloc(8192);
	uint8_t key[128];
	size_t o;

	assert_non_null(out);
	o = (size_t)snprintf(out, 8192, "{\"keys\":[");
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < len; j++)
			key[j] = (uint8_t)(i * 37 + j);
		sodium_bin2base64(b64, sizeof b64, key, len, sodium_base64_VARIANT_ORIGINAL);
		o += (size_t)snprintf(out + o, 8192 - o, "%s{\"key_ID\":\"%s\",\"key\":\"%s\"}",
				      i ? "," : "", ids[i], b64);
	}
	snprintf(out + o, 8192 - o, "]%s}", extra ? extra : "");
	return out;
}

static const char *const ids3[] = { ID0, ID1, ID2 };

static int parse_keys_text(const char *text, size_t number, uint32_t bits,
			   const struct qkd_etsi014_uuid *ids, struct qkd_kme_keys *k,
			   struct qkd_kme_error *err)
{
	struct qkd_kme_keys_expect ex = { number, bits, ids };
	int rc;

	memset(err, 0, sizeof *err);
	rc = qkd_kme_parse_keys(text, strlen(text), &ex, k, err);
	if (rc != 0) {
		/* nothing is left behind on failure */
		assert_null(k->keys);
		assert_null(k->buf);
		assert_int_equal(k->n, 0);
		assert_true(err->message[0] != '\0');
	}
	return rc;
}

static void test_keys_valid(void **state)
{
	struct qkd_etsi014_uuid want[3], rev[3];
	struct qkd_kme_keys k;
	struct qkd_kme_error err;
	char *text = container(3, 32, ids3, NULL);

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(qkd_etsi014_uuid_parse(ids3[i], strlen(ids3[i]), &want[i]), 0);
		rev[2 - i] = want[i];
	}
	assert_int_equal(parse_keys_text(text, 3, 256, NULL, &k, &err), 0);
	assert_int_equal(k.n, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_memory_equal(&k.keys[i].id, &want[i], sizeof want[i]);
		assert_int_equal(k.keys[i].len, 32);
		for (size_t j = 0; j < 32; j++)
			assert_int_equal(k.keys[i].bytes[j], (uint8_t)(i * 37 + j));
	}
	qkd_kme_keys_cleanup(&k);
	assert_null(k.keys);
	assert_null(k.buf);
	assert_int_equal(k.n, 0);
	/* size not asked: any one size; dec: the ids asked for, any order */
	assert_int_equal(parse_keys_text(text, 3, 0, NULL, &k, &err), 0);
	qkd_kme_keys_cleanup(&k);
	assert_int_equal(parse_keys_text(text, 3, 256, rev, &k, &err), 0);
	assert_memory_equal(&k.keys[0].id, &want[0], sizeof want[0]);
	qkd_kme_keys_cleanup(&k);
	free(text);
	/* the spec's extension members */
	text = container(1, 16, ids3, ",\"key_container_extension\":{\"x\":1}");
	assert_int_equal(parse_keys_text(text, 1, 128, NULL, &k, &err), 0);
	qkd_kme_keys_cleanup(&k);
	free(text);
	text = strdup("{\"keys\":[{\"key_ID\":\"" ID0 "\",\"key_ID_extension\":{\"a\":[]},"
		      "\"key\":\"AAECAw==\",\"key_extension\":null}]}");
	assert_int_equal(parse_keys_text(text, 1, 32, NULL, &k, &err), 0);
	assert_int_equal(k.keys[0].len, 4);
	assert_int_equal(k.keys[0].bytes[3], 3);
	qkd_kme_keys_cleanup(&k);
	free(text);
	/* uppercase UUIDs are UUIDs (RFC 4122 section 3) */
	text = strdup("{\"keys\":[{\"key_ID\":\"0B3A8A4E-5F6C-4D1E-8F2A-1B2C3D4E5F60\","
		      "\"key\":\"AAECAw==\"}]}");
	assert_int_equal(parse_keys_text(text, 1, 0, NULL, &k, &err), 0);
	assert_memory_equal(&k.keys[0].id, &want[0], sizeof want[0]);
	qkd_kme_keys_cleanup(&k);
	free(text);
	qkd_kme_keys_cleanup(NULL);
}

static void test_keys_count_and_ids(void **state)
{
	struct qkd_etsi014_uuid want[3];
	struct qkd_kme_keys k;
	struct qkd_kme_error err;
	const char *const dup[] = { ID0, ID1, ID0 };
	char *text = container(3, 32, ids3, NULL);

	(void)state;
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(qkd_etsi014_uuid_parse(ids3[i], strlen(ids3[i]), &want[i]), 0);
	assert_int_equal(parse_keys_text(text, 2, 256, NULL, &k, &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "3 keys, not the 2 asked for"));
	assert_int_equal(parse_keys_text(text, 4, 256, NULL, &k, &err), QKD_ERR_PROTO);
	assert_int_equal(parse_keys_text("{\"keys\":[]}", 1, 0, NULL, &k, &err), QKD_ERR_PROTO);
	/* dec: a key_ID not asked for, or one missing */
	want[2].b[15] ^= 1;
	assert_int_equal(parse_keys_text(text, 3, 256, want, &k, &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "keys[2].key_ID: not one of the key_IDs asked for"));
	free(text);
	text = container(3, 32, dup, NULL);
	assert_int_equal(parse_keys_text(text, 3, 256, NULL, &k, &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "keys[2].key_ID: the same as keys[0]"));
	free(text);
	/* a bad expectation is the caller's fault */
	assert_int_equal(parse_keys_text("{\"keys\":[]}", 0, 0, NULL, &k, &err), QKD_ERR_INVAL);
	assert_int_equal(parse_keys_text("{\"keys\":[]}", 1, 12, NULL, &k, &err), QKD_ERR_INVAL);
	assert_int_equal(parse_keys_text("{\"keys\":[]}", 1025, 0, NULL, &k, &err), QKD_ERR_INVAL);
}

/* One key whose key_ID and key members are the given JSON texts. */
static int one_key(const char *id_json, const char *key_json, uint32_t bits,
		   struct qkd_kme_error *err)
{
	struct qkd_kme_keys k;
	char text[512];
	int rc;

	snprintf(text, sizeof text, "{\"keys\":[{\"key_ID\":%s,\"key\":%s}]}", id_json, key_json);
	rc = parse_keys_text(text, 1, bits, NULL, &k, err);
	qkd_kme_keys_cleanup(&k);
	return rc;
}

static void test_keys_bad_fields(void **state)
{
	static const char *const bad_ids[] = {
		"\"0b3a8a4e-5f6c-4d1e-8f2a-1b2c3d4e5f6\"", "\"0b3a8a4e-5f6c-4d1e-8f2a-1b2c3d4e5f600\"",
		"\"0b3a8a4e5f6c-4d1e-8f2a-1b2c3d4e5f60-\"", "\"{0b3a8a4e-5f6c-4d1e-8f2a-1b2c3d4e5f6}\"",
		"\"0b3a8a4e-5f6c-4d1e-8f2a-1b2c3d4e5f6g\"", "\" 0b3a8a4e-5f6c-4d1e-8f2a-1b2c3d4e5f6\"",
		"\"\"", "7", "null",
	};
	static const char *const bad_b64[] = {
		"\"AAECAw\"",		/* no padding */
		"\"AAEC Aw==\"",	/* white space */
		"\"AAECAw=\"",		/* short padding */
		"\"AAECA*==\"",		/* outside the alphabet */
		"\"AAECAx==\"",		/* bits left over that are not zero */
		"\"AAEC_w==\"",		/* the URL alphabet */
		"\"AAEC\\u0188QF\"",	/* UTF-8 c6 88: libsodium 1.0.18 decodes it */
		"\"AAECAw==AAECAw==\"",	/* padding inside */
		"\"\"", "[]", "1234",
	};
	struct qkd_kme_error err;

	(void)state;
	assert_int_equal(one_key("\"" ID0 "\"", "\"AAECAw==\"", 32, &err), 0);
	for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++)
		assert_int_equal(one_key(bad_ids[i], "\"AAECAw==\"", 32, &err), QKD_ERR_PROTO);
	assert_int_equal(one_key("\"" ID0 "x\"", "\"AAECAw==\"", 32, &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "keys[0].key_ID: not a UUID"));
	for (size_t i = 0; i < sizeof bad_b64 / sizeof bad_b64[0]; i++)
		assert_int_equal(one_key("\"" ID0 "\"", bad_b64[i], 0, &err), QKD_ERR_PROTO);
	assert_int_equal(one_key("\"" ID0 "\"", "\"AAECAw\"", 0, &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "not base64"));
	/* wrong size: 4 bytes where 5 and 3 were asked */
	assert_int_equal(one_key("\"" ID0 "\"", "\"AAECAw==\"", 40, &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "32 bits, not the 40 asked for"));
	assert_int_equal(one_key("\"" ID0 "\"", "\"AAECAw==\"", 24, &err), QKD_ERR_PROTO);
}

static void test_keys_shape(void **state)
{
	static const char *const bad[] = {
		"{}", "{\"keys\":{}}", "{\"keys\":[1]}", "{\"keys\":[[]]}", "{\"keys\":null}",
		"{\"keys\":[{\"key\":\"AAECAw==\"}]}",
		"{\"keys\":[{\"key_ID\":\"" ID0 "\"}]}",
		"{\"keys\":[{\"key_ID\":\"" ID0 "\",\"key\":\"AAECAw==\",\"key_size\":32}]}",
		"{\"keys\":[{\"key_ID\":\"" ID0 "\",\"key\":\"AAECAw==\"}],\"count\":1}",
		"{\"keys\":[{\"key_ID\":\"" ID0 "\",\"key\":\"AAECAw==\",\"key_extension\":[]}]}",
		"{\"keys\":[{\"key_ID\":\"" ID0 "\",\"key\":\"AAECAw==\"}]} {}",
		"{\"keys\":[{\"key_ID\":\"" ID0 "\",\"key\":\"AAECAw==\"}]}x",
		"{\"keys\":[{\"key_ID\":\"" ID0 "\",\"key\":\"AAECAw==\",\"key\":\"AAECAw==\"}]}",
		"{\"keys\":[{\"key_ID\":\"" ID0 "\",\"key\":\"AAECAw==\"}]",
		"[{\"key_ID\":\"" ID0 "\",\"key\":\"AAECAw==\"}]",
	};
	struct qkd_kme_keys k;
	struct qkd_kme_error err;
	struct qkd_etsi014_uuid ids[2];
	const char *mixed;
	char *text;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(parse_keys_text(bad[i], 1, 0, NULL, &k, &err), QKD_ERR_PROTO);
	/* enc without a size: every key of one size (dec may mix sizes) */
	mixed = "{\"keys\":[{\"key_ID\":\"" ID0 "\",\"key\":\"AAECAw==\"},"
		"{\"key_ID\":\"" ID1 "\",\"key\":\"AAECAwQ=\"}]}";
	assert_int_equal(parse_keys_text(mixed, 2, 0, NULL, &k, &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "keys[1].key: 40 bits, but keys[0] has 32"));
	assert_int_equal(qkd_etsi014_uuid_parse(ID0, strlen(ID0), &ids[0]), 0);
	assert_int_equal(qkd_etsi014_uuid_parse(ID1, strlen(ID1), &ids[1]), 0);
	assert_int_equal(parse_keys_text(mixed, 2, 0, ids, &k, &err), 0);
	assert_int_equal(k.keys[1].len, 5);
	qkd_kme_keys_cleanup(&k);
	/* a key above 65536 bits is refused before decoding */
	text = malloc(20000);
	assert_non_null(text);
	snprintf(text, 20000, "{\"keys\":[{\"key_ID\":\"%s\",\"key\":\"", ID0);
	memset(text + strlen(text), 'A', 10928);
	memcpy(strchr(text, 'A') + 10928, "\"}]}", 5);
	assert_int_equal(parse_keys_text(text, 1, 0, NULL, &k, &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "longer than a key of 65536 bits"));
	free(text);
}

/* ---- Error object ---- */

static void test_error_object(void **state)
{
	struct qkd_kme_error err;
	const char *b;
	char longmsg[600];

	(void)state;
	b = "{\"message\":\"not enough key available: pool empty\","
	    "\"details\":[{\"number\":2,\"size\":256}]}";
	assert_int_equal(qkd_kme_parse_error(503, b, strlen(b), &err), 0);
	assert_int_equal(err.http_status, 503);
	assert_string_equal(err.message, "not enough key available: pool empty");
	assert_string_equal(err.details, "[{\"number\":2,\"size\":256}]");
	b = "{\"message\":\"unauthorized\"}";
	assert_int_equal(qkd_kme_parse_error(401, b, strlen(b), &err), 0);
	assert_string_equal(err.message, "unauthorized");
	assert_string_equal(err.details, "");
	b = "{\"message\":\"x\",\"details\":null}";
	assert_int_equal(qkd_kme_parse_error(400, b, strlen(b), &err), 0);
	/* terminal control bytes never pass; non-ASCII details are escaped */
	b = "{\"message\":\"bad\\u001b[2Jthing\\u00e9\",\"details\":[{\"w\":\"\\u00e9\\u001b\"}]}";
	assert_int_equal(qkd_kme_parse_error(400, b, strlen(b), &err), 0);
	assert_string_equal(err.message, "bad?[2Jthing??");
	assert_string_equal(err.details, "[{\"w\":\"\\u00E9\\u001B\"}]");
	/* a long message is cut with "..." */
	snprintf(longmsg, sizeof longmsg, "{\"message\":\"%0500d\"}", 7);
	assert_int_equal(qkd_kme_parse_error(400, longmsg, strlen(longmsg), &err), 0);
	assert_int_equal(strlen(err.message), sizeof err.message - 1);
	assert_string_equal(err.message + sizeof err.message - 4, "...");
}

static void test_error_not_etsi(void **state)
{
	static const char *const bad[] = {
		"{\"details\":[]}", "{\"message\":5}", "{\"message\":\"x\",\"details\":{}}",
		"{\"message\":\"x\",\"details\":[1]}", "{\"message\":\"x\",\"code\":7}",
		"{\"message\":\"x\"} trailing", "[\"message\"]",
	};
	struct qkd_kme_error err;
	const char *html = "<html><body>502 Bad Gateway</body></html>";

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(qkd_kme_parse_error(400, bad[i], strlen(bad[i]), &err),
				 QKD_ERR_PROTO);
		assert_int_equal(err.http_status, 400);
		assert_non_null(strstr(err.message, "no ETSI Error object"));
	}
	assert_int_equal(qkd_kme_parse_error(502, html, strlen(html), &err), QKD_ERR_PROTO);
	assert_int_equal(err.http_status, 502);
	assert_non_null(strstr(err.message, "\"<html><body>502 Bad Gateway"));
	assert_int_equal(qkd_kme_parse_error(500, NULL, 0, &err), QKD_ERR_PROTO);
	assert_non_null(strstr(err.message, "empty body"));
	assert_int_equal(qkd_kme_parse_error(500, "", 0, NULL), QKD_ERR_PROTO);
}

/* ---- our server's answers, read by the client ---- */

static int srv_enc(void *ctx, const char *master, const char *slave, uint32_t number,
		   uint32_t size_bits, struct qkd_etsi014_key *keys, const char **why)
{
	(void)ctx;
	(void)master;
	(void)slave;
	(void)size_bits;
	*why = "test pool empty";
	if (number == 7)
		return QKD_ERR_RANGE;
	for (uint32_t i = 0; i < number; i++) {
		qkd_etsi014_uuid_random(&keys[i].id);
		for (size_t j = 0; j < keys[i].cap; j++)
			keys[i].bytes[j] = (uint8_t)(i + 3 * j);
		keys[i].len = keys[i].cap;
	}
	return 0;
}

static int srv_dec(void *ctx, const char *master, const char *slave,
		   struct qkd_etsi014_key *keys, size_t n, size_t *bad, const char **why)
{
	(void)ctx;
	(void)master;
	(void)slave;
	(void)keys;
	*bad = n - 1;
	*why = "key_ID unknown or already delivered";
	return QKD_ERR_INVAL;
}

static int srv_status(void *ctx, const char *master, const char *slave,
		      struct qkd_etsi014_counts *c, const char **why)
{
	(void)ctx;
	(void)master;
	(void)slave;
	(void)why;
	strcpy(c->target_kme_id, "KME_B");
	c->stored_key_count = 10;
	c->max_key_count = 20;
	return 0;
}

static const struct qkd_etsi014_provider srv_ops = { srv_enc, srv_dec, srv_status };

static void serve(const char *method, const char *path, const char *name, const char *value,
		  const char *body, struct qkd_etsi014_response *resp)
{
	const struct qkd_etsi014_kme kme = {
		.kme_id = "KME_A", .ops = &srv_ops,
		.lim = { .key_size = 256, .min_key_size = 64, .max_key_size = 1024,
			 .max_key_per_request = 16 },
	};
	struct qkd_etsi014_arg args[2] = { { "number", "3" }, { name, value } };
	struct qkd_etsi014_http h = {
		.method = method, .path = path, .args = name ? args : NULL, .nargs = name ? 2 : 0,
		.body = body, .body_len = body ? strlen(body) : 0,
	};

	memset(resp, 0, sizeof *resp);
	assert_int_equal(qkd_etsi014_handle(&kme, "SAE_A", &h, resp), 0);
}

static void test_our_server(void **state)
{
	struct qkd_etsi014_response resp;
	struct qkd_kme_status st;
	struct qkd_kme_keys k;
	struct qkd_kme_error err;

	(void)state;
	serve("GET", "/api/v1/keys/SAE_B/status", NULL, NULL, NULL, &resp);
	assert_int_equal(resp.status, 200);
	assert_int_equal(qkd_kme_parse_status(resp.body, resp.len, "SAE_B", &st, &err), 0);
	assert_int_equal(st.stored_key_count, 10);
	assert_string_equal(st.master_sae_id, "SAE_A");
	qkd_etsi014_response_cleanup(&resp);
	serve("GET", "/api/v1/keys/SAE_B/enc_keys", "size", "512", NULL, &resp);
	assert_int_equal(resp.status, 200);
	{
		struct qkd_kme_keys_expect ex = { 3, 512, NULL };

		assert_int_equal(qkd_kme_parse_keys(resp.body, resp.len, &ex, &k, &err), 0);
	}
	assert_int_equal(k.n, 3);
	for (size_t i = 0; i < 3; i++)
		for (size_t j = 0; j < 64; j++)
			assert_int_equal(k.keys[i].bytes[j], (uint8_t)(i + 3 * j));
	qkd_kme_keys_cleanup(&k);
	qkd_etsi014_response_cleanup(&resp);
	serve("POST", "/api/v1/keys/SAE_B/enc_keys", NULL, NULL, "{\"number\":7}", &resp);
	assert_int_equal(resp.status, 503);
	assert_int_equal(qkd_kme_parse_error(resp.status, resp.body, resp.len, &err), 0);
	assert_string_equal(err.message, "not enough key available: test pool empty");
	assert_string_equal(err.details, "[{\"number\":7,\"size\":256}]");
	qkd_etsi014_response_cleanup(&resp);
	serve("GET", "/api/v1/keys/SAE_B/dec_keys", NULL, NULL, NULL, &resp);
	assert_int_equal(resp.status, 400);
	assert_int_equal(qkd_kme_parse_error(resp.status, resp.body, resp.len, &err), 0);
	assert_string_equal(err.message, "key_ID is missing");
	qkd_etsi014_response_cleanup(&resp);
}

/* ---- the body buffer and wiping ---- */

static void test_body(void **state)
{
	struct kme_body b;
	char chunk[3000], *p;
	size_t len = 0;

	(void)state;
	memset(chunk, 'k', sizeof chunk);
	kme_body_init(&b, 10000);
	for (int i = 0; i < 3; i++)
		assert_int_equal(kme_body_append(&b, chunk, sizeof chunk), 0);
	assert_int_equal(b.len, 9000);
	assert_true(b.cap > b.len);
	/* one byte past the bound is refused, and remembered */
	assert_int_equal(kme_body_append(&b, chunk, 1001), QKD_ERR_RANGE);
	assert_true(b.over);
	assert_int_equal(b.len, 9000);
	assert_int_equal(kme_body_append(&b, chunk, 1000), 0);
	assert_int_equal(b.len, 10000);
	assert_int_equal(kme_body_append(&b, chunk, 1), QKD_ERR_RANGE);
	/* the whole capacity is wiped, not just the length */
	kme_body_wipe(&b);
	assert_int_equal(b.len, 0);
	assert_false(b.over);
	for (size_t i = 0; i < b.cap; i++)
		assert_int_equal(b.p[i], 0);
	assert_int_equal(kme_body_append(&b, "{}", 2), 0);
	p = kme_body_take(&b, &len);
	assert_non_null(p);
	assert_int_equal(len, 2);
	assert_string_equal(p, "{}");
	assert_null(b.p);
	free(p);
	/* nothing received: "" */
	kme_body_init(&b, 100);
	p = kme_body_take(&b, &len);
	assert_non_null(p);
	assert_int_equal(len, 0);
	assert_string_equal(p, "");
	free(p);
	kme_body_free(&b);
}

static void test_wiping_allocator(void **state)
{
	json_malloc_t m = NULL;
	json_free_t f = NULL;

	(void)state;
	assert_int_equal(qkd_kme_client_init(), 0);
	assert_int_equal(qkd_kme_client_init(), 0);
	json_get_alloc_funcs(&m, &f);
	assert_true(f == qkd_etsi014_free);	/* every copy jansson frees is wiped */
}

/* ---- arguments refused before anything is sent ---- */

/* A self-signed certificate (CN "unit test SAE", P-256, 100 years) and its
 * key: the client loads them to check them; no handshake happens here. */
static const char fixture_key[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg7agnyFUB4ejEFtCt\n"
	"2I5eUmRpa9rJYZxPTHsajCi6lSOhRANCAASEq0veNXZzWL3kyH3c+qyumaC/Ep7e\n"
	"7IBc2qXj6wWEo+qEQ5W8ZOjYFermOihsa7b23yYp8GlyJcoXLezLhtJl\n"
	"-----END PRIVATE KEY-----\n";
static const char fixture_cert[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBhzCCAS2gAwIBAgIUVqpbW52Qd6ZFB1ZcUQW1tXNpjikwCgYIKoZIzj0EAwIw\n"
	"GDEWMBQGA1UEAwwNdW5pdCB0ZXN0IFNBRTAgFw0yNjEyMDUxNjE4MjhaGA8yMTI2\n"
	"MTExMTE2MTgyOFowGDEWMBQGA1UEAwwNdW5pdCB0ZXN0IFNBRTBZMBMGByqGSM49\n"
	"AgEGCCqGSM49AwEHA0IABISrS941dnNYveTIfdz6rK6ZoL8Snt7sgFzapePrBYSj\n"
	"6oRDlbxk6NgV6uY6KGxrtvbfJinwaXIlyhct7MuG0mWjUzBRMB0GA1UdDgQWBBQW\n"
	"8QdE2kCNj51yAtOzsyNNPa/7ETAfBgNVHSMEGDAWgBQW8QdE2kCNj51yAtOzsyNN\n"
	"Pa/7ETAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIA+nZOHlmxiv\n"
	"aL5YzSiqzGYu7ofvYHET1onYe9dfG7fIAiEAoIpGvrgiPX8k4641g/Tu0ArGAdBY\n"
	"1YdjjEeBd5xQrMM=\n"
	"-----END CERTIFICATE-----\n";

static char key_path[64], cert_path[64];

static int write_tmp(char *path, const char *text)
{
	int fd;
	bool ok;

	strcpy(path, "/tmp/qkd-kmec-XXXXXX");
	if ((fd = mkstemp(path)) < 0)
		return -1;
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	close(fd);
	return ok ? 0 : -1;
}

static int setup_file(void **state)
{
	(void)state;
	return write_tmp(key_path, fixture_key) != 0 || write_tmp(cert_path, fixture_cert) != 0;
}

static int teardown_file(void **state)
{
	(void)state;
	unlink(key_path);
	unlink(cert_path);
	return 0;
}

static int new_client(const char *url, const char *name, struct qkd_kme_client **c,
		      struct qkd_kme_error *err)
{
	struct qkd_kme_client_config cfg = {
		.url = url, .cert_file = cert_path, .key_file = key_path,
		.ca_file = cert_path, .server_name = name, .timeout_ms = 2000,
	};

	return qkd_kme_client_new(c, &cfg, err);
}

static void test_config(void **state)
{
	static const char *const bad_urls[] = {
		"http://127.0.0.1:8443", "127.0.0.1:8443", "https://u:p@127.0.0.1:8443",
		"https://127.0.0.1:8443/?x=1", "https://127.0.0.1:8443/#f", "ftp://x", "",
	};
	struct qkd_kme_client_config cfg = { 0 };
	struct qkd_kme_client *c = NULL;
	struct qkd_kme_error err;

	(void)state;
	for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
		assert_int_equal(new_client(bad_urls[i], NULL, &c, &err), QKD_ERR_INVAL);
		assert_null(c);
		assert_true(err.message[0] != '\0');
	}
	assert_int_equal(new_client("https://127.0.0.1:1", "bad name!", &c, &err), QKD_ERR_INVAL);
	assert_int_equal(new_client("https://127.0.0.1:1", "", &c, &err), QKD_ERR_INVAL);
	assert_int_equal(new_client("https://127.0.0.1:1", "[::1]", &c, &err), 0);
	qkd_kme_client_free(c);
	assert_int_equal(new_client("https://localhost:8443/kme/", "kme.example", &c, &err), 0);
	assert_string_equal(kme_client_base(c), "https://kme.example:8443/kme");
	qkd_kme_client_free(c);
	assert_int_equal(new_client("https://127.0.0.1", NULL, &c, &err), 0);
	assert_string_equal(kme_client_base(c), "https://127.0.0.1");
	qkd_kme_client_free(c);
	cfg.url = "https://127.0.0.1:1";
	cfg.cert_file = "/nonexistent/cert.pem";
	cfg.key_file = key_path;
	cfg.ca_file = cert_path;
	assert_int_equal(qkd_kme_client_new(&c, &cfg, &err), QKD_ERR_IO);
	assert_non_null(strstr(err.message, "/nonexistent/cert.pem"));
	cfg.cert_file = "/tmp";
	assert_int_equal(qkd_kme_client_new(&c, &cfg, &err), QKD_ERR_IO);
	assert_non_null(strstr(err.message, "not a regular file"));
	/* files that are there but unusable: GnuTLS reads them once */
	cfg.cert_file = key_path;
	assert_int_equal(qkd_kme_client_new(&c, &cfg, &err), QKD_ERR_INVAL);
	assert_non_null(strstr(err.message, "cannot use the client certificate"));
	cfg.cert_file = cert_path;
	cfg.ca_file = key_path;
	assert_int_equal(qkd_kme_client_new(&c, &cfg, &err), QKD_ERR_INVAL);
	assert_non_null(strstr(err.message, "holds no usable certificate"));
	assert_null(c);
	cfg.ca_file = NULL;
	assert_int_equal(qkd_kme_client_new(&c, &cfg, NULL), QKD_ERR_INVAL);
	qkd_kme_client_free(NULL);
}

static void test_request_args(void **state)
{
	struct qkd_kme_client *c = NULL;
	struct qkd_kme_error err;
	struct qkd_kme_keys k;
	struct qkd_kme_status st;
	struct qkd_etsi014_uuid ids[2];
	const char *add_bad[] = { "SAE C" };
	struct qkd_kme_enc_request enc = { 0 };
	struct qkd_kme_dec_request dec = { ids, 2, 0, false };

	(void)state;
	memset(ids, 7, sizeof ids);
	/* nothing listens on port 1; each refusal comes before connecting */
	assert_int_equal(new_client("https://127.0.0.1:1", NULL, &c, &err), 0);
	assert_int_equal(qkd_kme_client_status(c, "SAE/B", &st, &err), QKD_ERR_INVAL);
	assert_non_null(strstr(err.message, "bad slave SAE ID"));
	assert_int_equal(qkd_kme_client_status(c, "", &st, &err), QKD_ERR_INVAL);
	enc.number = 1025;
	assert_int_equal(qkd_kme_client_enc_keys(c, "SAE_B", &enc, &k, &err), QKD_ERR_INVAL);
	enc.number = 1;
	enc.size_bits = 100;
	assert_int_equal(qkd_kme_client_enc_keys(c, "SAE_B", &enc, &k, &err), QKD_ERR_INVAL);
	enc.size_bits = 65544;
	assert_int_equal(qkd_kme_client_enc_keys(c, "SAE_B", &enc, &k, &err), QKD_ERR_INVAL);
	enc.size_bits = 256;
	enc.additional_slaves = add_bad;
	enc.nadditional = 1;
	assert_int_equal(qkd_kme_client_enc_keys(c, "SAE_B", &enc, &k, &err), QKD_ERR_INVAL);
	assert_int_equal(qkd_kme_client_dec_keys(c, "SAE_A", &dec, &k, &err), QKD_ERR_INVAL);
	assert_non_null(strstr(err.message, "key_ID 2 is the same as 1"));
	dec.n = 0;
	assert_int_equal(qkd_kme_client_dec_keys(c, "SAE_A", &dec, &k, &err), QKD_ERR_INVAL);
	dec.n = 1;
	dec.size_bits = 7;
	assert_int_equal(qkd_kme_client_dec_keys(c, "SAE_A", &dec, &k, &err), QKD_ERR_INVAL);
	/* a valid request meets a closed port: no HTTP answer */
	dec.size_bits = 0;
	assert_int_equal(qkd_kme_client_dec_keys(c, "SAE_A", &dec, &k, &err), QKD_ERR_IO);
	assert_int_equal(err.http_status, 0);
	assert_true(err.message[0] != '\0');
	assert_null(k.keys);
	qkd_kme_client_free(c);
}

#define T(f) cmocka_unit_test(f)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_status_valid), T(test_status_missing_and_types), T(test_status_values),
		T(test_status_framing), T(test_keys_valid), T(test_keys_count_and_ids),
		T(test_keys_bad_fields), T(test_keys_shape), T(test_error_object),
		T(test_error_not_etsi), T(test_our_server), T(test_body), T(test_wiping_allocator),
		T(test_config), T(test_request_args),
	};

	return cmocka_run_group_tests(tests, setup_file, teardown_file);
}
