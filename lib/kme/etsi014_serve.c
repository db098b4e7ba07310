/* etsi014_serve.c - one ETSI GS QKD 014 V1.1.1 request answered
 * (qkd_etsi014_handle, qkd/etsi014.h): the request parsed
 * (etsi014_parse.c), the provider asked for keys or figures, and its
 * answer checked and rendered as a Status object (clause 6.1), a Key
 * container (6.3) or an Error object (6.5, etsi014_error.c). Key bytes
 * live in one wiped buffer per request.
 */
#include "qkd/etsi014.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "etsi014_int.h"
#include "qkd/error.h"

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
		return etsi014_fail(err, 503, detail, "not enough key available: %s", why);
	case QKD_ERR_INVAL:
		return etsi014_fail(err, 400, detail, "%s", why);
	case QKD_ERR_VERIFY:
		return etsi014_fail(err, 401, detail, "unauthorized: %s", why);
	default:
		return etsi014_fail(err, 503, detail, "key manager error: %s", why);
	}
}

/* One key of the container: {"key_ID", "key"}, and the key_extension of
 * a relayed key. */
static json_t *key_json(const struct qkd_etsi014_key *k, const char *id, const char *b64)
{
	if (k->relay_paths == 0)
		return json_pack("{s:s,s:s}", "key_ID", id, "key", b64);
	return json_pack("{s:s,s:s,s:{s:{s:I,s:I}}}", "key_ID", id, "key", b64, "key_extension",
			 "relay", "paths", (json_int_t)k->relay_paths, "hops",
			 (json_int_t)k->relay_hops);
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
		if (json_array_append_new(arr, key_json(&keys[i], id, b64)) != 0)
			goto out;
	}
	if ((root = json_pack("{s:O}", "keys", arr)) != NULL)
		rc = etsi014_dump(root, 200, resp);
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
		rc = etsi014_fail_nomem(err);
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
			rc = etsi014_fail(err, 503, NULL,
					  "key manager error: a key of the wrong size");
			goto out;
		}
	if ((rc = key_container(ks.keys, ks.n, ks.cap, resp)) != 0)
		rc = etsi014_fail_nomem(err);
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
		rc = etsi014_fail_nomem(err);
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
			rc = etsi014_fail(err, 503, NULL,
					  "key manager error: a key that was not asked for");
			goto out;
		}
	if ((rc = key_container(ks.keys, ks.n, ks.cap, resp)) != 0)
		rc = etsi014_fail_nomem(err);
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
	rc = root != NULL ? etsi014_dump(root, 200, resp) : QKD_ERR_NOMEM;
	json_decref(root);
	return rc != 0 ? etsi014_fail_nomem(err) : 0;
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
		rc = etsi014_fail(&err, 503, NULL, "key manager error: libsodium did not start");
		goto fail;
	}
	if (caller == NULL || !qkd_etsi014_id_valid(caller)) {
		rc = etsi014_fail(&err, 401, NULL,
				  "unauthorized: no valid client certificate of a known SAE");
		goto fail;
	}
	if ((rc = qkd_etsi014_parse(&kme->lim, h, &r, &err)) != 0)
		goto fail;
	if (strcmp(r.sae, caller) == 0) {
		rc = etsi014_fail(&err, 400, json_pack("{s:s}", "SAE_ID", caller),
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
