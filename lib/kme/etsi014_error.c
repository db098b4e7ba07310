/* etsi014_error.c - the Error object of ETSI GS QKD 014 V1.1.1 clause 6.5
 * (qkd/etsi014.h): how the parsers and the dispatcher record the first
 * failure of a request (lib/kme/etsi014_int.h), and how an object becomes
 * a response body. The status chosen for each failure is documented in
 * docs/kme.md.
 */
#include "qkd/etsi014.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "etsi014_int.h"
#include "qkd/error.h"

#define JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER)

/* Fill err (keeping the first failure) and take ownership of detail. */
int etsi014_fail(struct qkd_etsi014_error *err, unsigned status, json_t *detail,
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

int etsi014_fail_nomem(struct qkd_etsi014_error *err)
{
	return etsi014_fail(err, 503, NULL, "the key manager is out of memory");
}

/* Render root into resp (the caller keeps root). */
int etsi014_dump(const json_t *root, unsigned status, struct qkd_etsi014_response *resp)
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
	rc = etsi014_dump(root, err->status ? err->status : 503, resp);
out:
	json_decref(details);
	json_decref(root);
	return rc;
}
