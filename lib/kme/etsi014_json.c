/* etsi014_json.c - the JSON bodies of ETSI GS QKD 014 V1.1.1 POST requests
 * (qkd/etsi014.h, lib/kme/etsi014_int.h): the Key request object of
 * enc_keys (clause 6.2) and the Key IDs object of dec_keys (clause 6.4).
 * Like the rest of the request (etsi014_parse.c), unknown members are
 * refused, and a duplicate member makes the body invalid JSON.
 */
#include "qkd/etsi014.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "etsi014_int.h"
#include "qkd/error.h"

static json_t *load_object(const struct qkd_etsi014_http *h, struct qkd_etsi014_error *err)
{
	json_error_t je;
	json_t *root;

	root = json_loadb(h->body ? h->body : "", h->body_len,
			  JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (root == NULL) {
		etsi014_fail(err, 400, json_pack("{s:s,s:I}", "json_error", je.text, "position",
						 (json_int_t)je.position),
			     "request body is not valid JSON");
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		etsi014_fail(err, 400, NULL, "request body must be a JSON object");
		return NULL;
	}
	return root;
}

static int json_u32(const char *name, const json_t *v, uint32_t *out,
		    struct qkd_etsi014_error *err)
{
	json_int_t x;

	if (!json_is_integer(v))
		return etsi014_fail(err, 400, json_pack("{s:O}", name, v),
				    "%s must be an integer", name);
	x = json_integer_value(v);
	if (x < 0 || x > (json_int_t)UINT32_MAX)
		return etsi014_fail(err, 400, json_pack("{s:O}", name, v),
				    "%s is out of range", name);
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
		return etsi014_fail(err, 400, NULL, "%s must be an array of objects", field);
	json_array_foreach(v, i, item)
		if (!json_is_object(item))
			return etsi014_fail(err, 400, NULL,
					    "%s must be an array of objects", field);
	if (!mandatory || json_array_size(v) == 0)
		return 0;
	if ((names = json_array()) == NULL)
		return etsi014_fail_nomem(err);
	json_array_foreach(v, i, item)
		json_object_foreach(item, name, val)
			(void)json_array_append_new(names, json_string(name));
	if (json_array_size(names) == 0) {
		json_decref(names);
		return 0;
	}
	return etsi014_fail(err, 400, json_pack("{s:o}", "extension_mandatory_unsupported", names),
			    "not all extension_mandatory parameters are supported");
}

/* additional_slave_SAE_IDs: key multicast, which this KME does not offer
 * (max_SAE_ID_count is 0), so only an empty array passes. */
static int check_additional(const json_t *v, struct qkd_etsi014_error *err)
{
	const json_t *item;
	size_t i;

	if (!json_is_array(v))
		return etsi014_fail(err, 400, NULL,
				    "additional_slave_SAE_IDs must be an array of strings");
	json_array_foreach(v, i, item)
		if (!json_is_string(item) || !qkd_etsi014_id_valid(json_string_value(item)))
			return etsi014_fail(err, 400, NULL,
					    "additional_slave_SAE_IDs must be an array of SAE IDs");
	if (json_array_size(v) > 0)
		return etsi014_fail(err, 400, json_pack("{s:i}", "max_SAE_ID_count", 0),
				    "key multicast (additional_slave_SAE_IDs) is not supported");
	return 0;
}

/* POST enc_keys: the Key request object (clause 6.2). A null member counts
 * as absent. */
int etsi014_parse_key_request(const struct qkd_etsi014_http *h, struct qkd_etsi014_request *r,
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
			rc = etsi014_fail(err, 400, json_pack("{s:s}", "field", k),
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
		return etsi014_fail(err, 400, NULL, "each key_IDs element must be an object");
	json_object_foreach((json_t *)item, k, v) {
		if (strcmp(k, "key_ID_extension") == 0) {
			if (!json_is_object(v) && !json_is_null(v))
				return etsi014_fail(err, 400, NULL,
						    "key_ID_extension must be an object");
		} else if (strcmp(k, "key_ID") == 0) {
			if (!json_is_string(v) ||
			    qkd_etsi014_uuid_parse(json_string_value(v), json_string_length(v), out) != 0)
				return etsi014_fail(err, 400, json_pack("{s:O}", "key_ID", v),
						    "malformed key_ID (not a UUID)");
			have = true;
		} else {
			return etsi014_fail(err, 400, json_pack("{s:s}", "field", k),
					    "unknown field in a key_IDs element");
		}
	}
	if (!have)
		return etsi014_fail(err, 400, NULL, "a key_IDs element has no key_ID");
	return 0;
}

/* The key_IDs array: 1 .. max_key_per_request distinct UUIDs. */
static int parse_id_array(const json_t *arr, uint32_t max, struct qkd_etsi014_request *r,
			  struct qkd_etsi014_error *err)
{
	const json_t *item;
	size_t i, n;

	if (!json_is_array(arr) || (n = json_array_size(arr)) == 0)
		return etsi014_fail(err, 400, NULL, "key_IDs must be a non-empty array");
	if (n > max)
		return etsi014_fail(err, 400, json_pack("{s:I}", "max_key_per_request", (json_int_t)max),
				    "too many key_IDs in one request");
	if ((r->ids = calloc(n, sizeof *r->ids)) == NULL)
		return etsi014_fail_nomem(err);
	json_array_foreach(arr, i, item) {
		if (parse_key_id(item, &r->ids[i], err) != 0)
			return QKD_ERR_INVAL;
		for (size_t j = 0; j < i; j++)
			if (memcmp(&r->ids[j], &r->ids[i], sizeof r->ids[i]) == 0)
				return etsi014_fail(err, 400, json_pack("{s:O}", "key_ID",
									json_object_get(item, "key_ID")),
						    "key_ID requested twice");
	}
	r->nids = n;
	return 0;
}

/* POST dec_keys: the Key IDs object (clause 6.4). */
int etsi014_parse_key_ids(const struct qkd_etsi014_http *h, uint32_t max,
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
				rc = etsi014_fail(err, 400, NULL,
						  "key_IDs_extension must be an object");
		} else {
			rc = etsi014_fail(err, 400, json_pack("{s:s}", "field", k),
					  "unknown field in the key IDs request");
		}
		if (rc != 0)
			goto out;
	}
	if (ids == NULL)
		rc = etsi014_fail(err, 400, NULL, "key_IDs is missing");
	else
		rc = parse_id_array(ids, max, r, err);
out:
	json_decref(root);
	return rc;
}
