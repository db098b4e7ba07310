/* kme_client.c - the ETSI GS QKD 014 client's operations (qkd/kme_client.h):
 * status, enc_keys and dec_keys as clauses 5.2 to 5.4 define them. Each
 * checks its arguments before anything is sent, builds the path and the
 * query or the JSON body, hands them to the transport (kme_client_http.c) and
 * the answer to the parsers (kme_client_parse.c): a 200 must match the
 * request, anything else is the KME's Error object.
 */
#include "kme_client_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "qkd/error.h"
#include "qkd/secret.h"

#define API "/api/v1/keys/"

struct qkd_kme_client {
	struct kme_http *http;
};

__attribute__((format(printf, 3, 4)))
static int arg_fail(struct qkd_kme_error *err, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return rc;
	memset(err, 0, sizeof *err);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return rc;
}

int qkd_kme_client_init(void)
{
	int rc = qkd_etsi014_init();

	return rc != 0 ? rc : kme_http_global_init();
}

/* A regular file we can open: a clear message now rather than a TLS error
 * at the first request. */
static int check_file(const char *path, const char *what, struct qkd_kme_error *err)
{
	struct stat st;
	int fd, rc = 0;

	if (path == NULL || path[0] == '\0')
		return arg_fail(err, QKD_ERR_INVAL, "no %s given", what);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return arg_fail(err, QKD_ERR_IO, "cannot read the %s %s: %s", what, path,
				strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		rc = arg_fail(err, QKD_ERR_IO, "the %s %s is not a regular file", what, path);
	close(fd);
	return rc;
}

int qkd_kme_client_new(struct qkd_kme_client **out, const struct qkd_kme_client_config *cfg,
		       struct qkd_kme_error *err)
{
	struct qkd_kme_client *c = NULL;
	int rc;

	*out = NULL;
	if (err != NULL)
		memset(err, 0, sizeof *err);
	if ((rc = qkd_kme_client_init()) != 0)
		return arg_fail(err, rc, "libsodium or libcurl did not start");
	if (cfg == NULL || cfg->url == NULL)
		return arg_fail(err, QKD_ERR_INVAL, "no KME URL given");
	if ((rc = check_file(cfg->cert_file, "client certificate", err)) != 0 ||
	    (rc = check_file(cfg->key_file, "client key", err)) != 0 ||
	    (rc = check_file(cfg->ca_file, "CA file", err)) != 0)
		return rc;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return arg_fail(err, QKD_ERR_NOMEM, "out of memory");
	if ((rc = kme_http_new(&c->http, cfg, err)) != 0) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

const char *kme_client_base(const struct qkd_kme_client *c)
{
	return kme_http_base(c->http);
}

void qkd_kme_client_free(struct qkd_kme_client *c)
{
	if (c == NULL)
		return;
	kme_http_free(c->http);
	free(c);
}

/* Send one request. 0 with the body of a 200 in *body (NUL-terminated,
 * the caller wipes and frees len + 1 bytes); QKD_ERR_REFUSED with the
 * Error object in err for any other status; the transport's code else. */
static int exchange(struct qkd_kme_client *c, const char *path, const char *post, char **body,
		    size_t *len, struct qkd_kme_error *err)
{
	struct kme_body b;
	unsigned status = 0;
	int rc;

	*body = NULL;
	if ((rc = kme_http_request(c->http, path, post, &status, &b, err)) != 0)
		return rc;
	if (status == 200) {
		if ((*body = kme_body_take(&b, len)) == NULL)
			rc = arg_fail(err, QKD_ERR_NOMEM, "out of memory");
		kme_body_free(&b);
		return rc;
	}
	/* Refused either way; when the body is no Error object (a proxy's
	 * page, say), err->message says so and quotes its start. */
	rc = qkd_kme_parse_error(status, b.p, b.len, err);
	kme_body_free(&b);
	return rc == QKD_ERR_NOMEM ? rc : QKD_ERR_REFUSED;
}

static int check_sae(const char *id, const char *what, struct qkd_kme_error *err)
{
	if (!qkd_etsi014_id_valid(id))
		return arg_fail(err, QKD_ERR_INVAL, "bad %s SAE ID '%.80s' (1 to %d characters of "
				"[A-Za-z0-9._~-])", what, id ? id : "", QKD_ETSI014_ID_MAX);
	return 0;
}

int qkd_kme_client_status(struct qkd_kme_client *c, const char *slave,
			  struct qkd_kme_status *out, struct qkd_kme_error *err)
{
	char path[sizeof API + QKD_ETSI014_ID_MAX + 16], *body = NULL;
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof *out);
	if (err != NULL)
		memset(err, 0, sizeof *err);
	if ((rc = check_sae(slave, "slave", err)) != 0)
		return rc;
	snprintf(path, sizeof path, API "%s/status", slave);
	if ((rc = exchange(c, path, NULL, &body, &len, err)) != 0)
		return rc;
	if ((rc = qkd_kme_parse_status(body, len, slave, out, err)) != 0) {
		free(body);
		return rc;
	}
	out->body = body;
	out->body_len = len;
	return 0;
}

/* ---- enc_keys ---- */

static int enc_check(const char *slave, const struct qkd_kme_enc_request *req,
		     struct qkd_kme_error *err)
{
	int rc;

	if ((rc = check_sae(slave, "slave", err)) != 0)
		return rc;
	if (req->number > QKD_ETSI014_KEYS_MAX)
		return arg_fail(err, QKD_ERR_INVAL, "number must be 1 to %d", QKD_ETSI014_KEYS_MAX);
	if (req->size_bits % 8 != 0 || req->size_bits > QKD_ETSI014_KEY_BITS_MAX)
		return arg_fail(err, QKD_ERR_INVAL, "size must be a multiple of 8, 8 to %d bits",
				QKD_ETSI014_KEY_BITS_MAX);
	if (req->nadditional > QKD_ETSI014_KEYS_MAX)
		return arg_fail(err, QKD_ERR_INVAL, "too many additional slave SAEs");
	for (size_t i = 0; i < req->nadditional; i++)
		if ((rc = check_sae(req->additional_slaves[i], "additional slave", err)) != 0)
			return rc;
	return 0;
}

/* The Key request (clause 6.2): only what the caller set. */
static char *key_request(const struct qkd_kme_enc_request *req)
{
	json_t *root = json_object(), *arr = NULL;
	char *text = NULL;

	if (root == NULL ||
	    (req->number && json_object_set_new(root, "number", json_integer(req->number)) != 0) ||
	    (req->size_bits && json_object_set_new(root, "size", json_integer(req->size_bits)) != 0))
		goto out;
	if (req->nadditional > 0) {
		if ((arr = json_array()) == NULL ||
		    json_object_set_new(root, "additional_slave_SAE_IDs", arr) != 0)
			goto out;
		for (size_t i = 0; i < req->nadditional; i++)
			if (json_array_append_new(arr, json_string(req->additional_slaves[i])) != 0)
				goto out;
	}
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(root);
	return text;
}

/* GET enc_keys: ?number=N&size=S, each only when set. */
static void enc_query(char *path, size_t cap, const struct qkd_kme_enc_request *req)
{
	size_t n = strlen(path);
	const char *sep = "?";

	if (req->number) {
		n += (size_t)snprintf(path + n, cap - n, "%snumber=%u", sep, req->number);
		sep = "&";
	}
	if (req->size_bits)
		snprintf(path + n, cap - n, "%ssize=%u", sep, req->size_bits);
}

/* A 200's body as a Key container matching ex; on success *out owns body,
 * on failure body is wiped and freed. */
static int take_keys(char *body, size_t len, const struct qkd_kme_keys_expect *ex,
		     struct qkd_kme_keys *out, struct qkd_kme_error *err)
{
	int rc = qkd_kme_parse_keys(body, len, ex, out, err);

	if (rc != 0) {
		qkd_free_secret(body, len + 1);
		return rc;
	}
	out->body = body;
	out->body_len = len;
	return 0;
}

int qkd_kme_client_enc_keys(struct qkd_kme_client *c, const char *slave,
			    const struct qkd_kme_enc_request *req, struct qkd_kme_keys *out,
			    struct qkd_kme_error *err)
{
	struct qkd_kme_keys_expect ex;
	char path[sizeof API + QKD_ETSI014_ID_MAX + 48], *post = NULL, *body = NULL;
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof *out);
	if (err != NULL)
		memset(err, 0, sizeof *err);
	if ((rc = enc_check(slave, req, err)) != 0)
		return rc;
	ex = (struct qkd_kme_keys_expect){ req->number ? req->number : 1, req->size_bits, NULL };
	snprintf(path, sizeof path, API "%s/enc_keys", slave);
	if (req->post || req->nadditional > 0) {
		if ((post = key_request(req)) == NULL)
			return arg_fail(err, QKD_ERR_NOMEM, "out of memory");
	} else {
		enc_query(path, sizeof path, req);
	}
	rc = exchange(c, path, post, &body, &len, err);
	qkd_etsi014_free(post);
	return rc != 0 ? rc : take_keys(body, len, &ex, out, err);
}

/* ---- dec_keys ---- */

static int dec_check(const char *master, const struct qkd_kme_dec_request *req,
		     struct qkd_kme_error *err)
{
	int rc;

	if ((rc = check_sae(master, "master", err)) != 0)
		return rc;
	if (req->ids == NULL || req->n < 1 || req->n > QKD_ETSI014_KEYS_MAX)
		return arg_fail(err, QKD_ERR_INVAL, "give 1 to %d key_IDs", QKD_ETSI014_KEYS_MAX);
	if (req->size_bits % 8 != 0 || req->size_bits > QKD_ETSI014_KEY_BITS_MAX)
		return arg_fail(err, QKD_ERR_INVAL, "size must be a multiple of 8, 8 to %d bits",
				QKD_ETSI014_KEY_BITS_MAX);
	for (size_t i = 1; i < req->n; i++)
		for (size_t j = 0; j < i; j++)
			if (memcmp(&req->ids[i], &req->ids[j], sizeof req->ids[i]) == 0)
				return arg_fail(err, QKD_ERR_INVAL, "key_ID %zu is the same as %zu",
						i + 1, j + 1);
	return 0;
}

/* Key IDs (clause 6.4): {"key_IDs": [{"key_ID": UUID}, ...]}. */
static char *key_ids(const struct qkd_kme_dec_request *req)
{
	json_t *arr = json_array(), *root = NULL;
	char id[QKD_ETSI014_UUID_LEN + 1], *text = NULL;

	if (arr == NULL)
		return NULL;
	for (size_t i = 0; i < req->n; i++) {
		qkd_etsi014_uuid_format(&req->ids[i], id);
		if (json_array_append_new(arr, json_pack("{s:s}", "key_ID", id)) != 0)
			goto out;
	}
	if ((root = json_pack("{s:O}", "key_IDs", arr)) != NULL)
		text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(arr);
	json_decref(root);
	return text;
}

int qkd_kme_client_dec_keys(struct qkd_kme_client *c, const char *master,
			    const struct qkd_kme_dec_request *req, struct qkd_kme_keys *out,
			    struct qkd_kme_error *err)
{
	struct qkd_kme_keys_expect ex;
	char path[sizeof API + QKD_ETSI014_ID_MAX + QKD_ETSI014_UUID_LEN + 32];
	char id[QKD_ETSI014_UUID_LEN + 1], *post = NULL, *body = NULL;
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof *out);
	if (err != NULL)
		memset(err, 0, sizeof *err);
	if ((rc = dec_check(master, req, err)) != 0)
		return rc;
	ex = (struct qkd_kme_keys_expect){ req->n, req->size_bits, req->ids };
	if (req->n > 1 || req->post) {
		snprintf(path, sizeof path, API "%s/dec_keys", master);
		if ((post = key_ids(req)) == NULL)
			return arg_fail(err, QKD_ERR_NOMEM, "out of memory");
	} else {
		qkd_etsi014_uuid_format(&req->ids[0], id);
		snprintf(path, sizeof path, API "%s/dec_keys?key_ID=%s", master, id);
	}
	rc = exchange(c, path, post, &body, &len, err);
	qkd_etsi014_free(post);
	return rc != 0 ? rc : take_keys(body, len, &ex, out, err);
}
