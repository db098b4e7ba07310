/* kme_server_http.c - one HTTP request to the key manager
 * (lib/kme/kme_server_int.h; docs/kme.md "TLS and HTTP settings"): its
 * request-target kept as it came, the caller identified and the framing
 * checked before any body is read, the body bounded, the request handed to
 * the ETSI layer (qkd_etsi014_handle) and its response queued and counted.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "kme_server_int.h"
#include "qkd/error.h"

#define ARGS_MAX 8

/* One request in progress: its request-target as received, who asked, and
 * its body so far. */
struct req {
	char *target;			/* before percent-decoding (kme_server_on_uri) */
	uint64_t t0_ns;			/* when the request line was in (the latency's start) */
	bool begun;			/* begin has run */
	const char *caller;		/* an id of the SAE table, or NULL */
	char *body;
	size_t len, cap;
};

/* Runs for each request once its request line is in, before libmicrohttpd
 * splits off the query and percent-decodes: keep the request-target as it
 * came (begin checks it). What this returns becomes the request's context
 * (*req_cls); NULL, out of memory, closes the connection in kme_server_on_request. */
void *kme_server_on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct req *rq = calloc(1, sizeof *rq);

	(void)cls;
	(void)c;
	if (rq != NULL)
		rq->t0_ns = kme_counters_now_ns();
	if (rq != NULL && (rq->target = strdup(uri)) == NULL) {
		free(rq);
		rq = NULL;
	}
	return rq;
}

void kme_server_on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			     enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *req_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (rq != NULL) {
		free(rq->target);
		free(rq->body);
		free(rq);
	}
	*req_cls = NULL;
}

/* Queue resp (taking its body, which may hold key) with JSON headers, and
 * count it (counters.c) once queued. */
static enum MHD_Result send_resp(struct qkd_kme_server *s, struct MHD_Connection *c,
				 const struct req *rq, struct qkd_etsi014_response *resp)
{
	struct MHD_Response *r;
	unsigned status = resp->status;
	size_t nkeys = resp->nkeys;
	enum MHD_Result ret;

	if (resp->body == NULL) {
		r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		status = 503;
	} else {
		r = MHD_create_response_from_buffer_with_free_callback(resp->len, resp->body,
								       qkd_etsi014_free);
		if (r == NULL)
			qkd_etsi014_free(resp->body);
		resp->body = NULL;
	}
	if (r == NULL)
		return MHD_NO;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") != MHD_YES ||
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES)
		ret = MHD_NO;
	else
		ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	if (ret == MHD_YES)
		kme_counters_record(&s->counters, rq->target, status, status == 200 ? nkeys : 0,
				    kme_counters_now_ns() - rq->t0_ns);
	return ret;
}

/* An error answered before the ETSI layer saw the request, as its Error
 * object (clause 6.5). */
static enum MHD_Result send_err(struct qkd_kme_server *s, struct MHD_Connection *c,
				const struct req *rq, const struct qkd_etsi014_error *err)
{
	struct qkd_etsi014_response resp = {0};

	qkd_logf(s->log, QKD_LOG_INFO, "kme: refused with %u: %s", err->status, err->message);
	if (qkd_etsi014_error_response(err, &resp) != 0)
		memset(&resp, 0, sizeof resp);
	return send_resp(s, c, rq, &resp);
}

static int refuse(struct qkd_etsi014_error *err, unsigned status, const char *message)
{
	err->status = status;
	snprintf(err->message, sizeof err->message, "%s", message);
	return QKD_ERR_INVAL;
}

static enum MHD_Result send_error(struct qkd_kme_server *s, struct MHD_Connection *c,
				  const struct req *rq, unsigned status, const char *message)
{
	struct qkd_etsi014_error err;

	memset(&err, 0, sizeof err);
	refuse(&err, status, message);
	return send_err(s, c, rq, &err);
}

struct args {
	struct qkd_etsi014_arg a[ARGS_MAX];
	size_t n;
	bool overflow;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	struct args *as = cls;

	(void)kind;
	if (as->n == ARGS_MAX) {
		as->overflow = true;
		return MHD_NO;
	}
	as->a[as->n++] = (struct qkd_etsi014_arg){ .name = key, .value = value };
	return MHD_YES;
}

/* The whole request is in: hand it to the ETSI layer. */
static enum MHD_Result serve(struct qkd_kme_server *s, struct MHD_Connection *c,
			     const char *url, const char *method, struct req *rq)
{
	struct qkd_etsi014_response resp = {0};
	struct qkd_etsi014_http h;
	struct args as = { .n = 0 };
	enum qkd_log_level lvl;

	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &as);
	if (as.overflow)
		return send_error(s, c, rq, 400, "too many query parameters");
	h = (struct qkd_etsi014_http){ .method = method, .path = url, .args = as.a,
				       .nargs = as.n, .body = rq->body, .body_len = rq->len,
				       .target = rq->target };
	if (qkd_etsi014_handle(&s->kme, rq->caller, &h, &resp) != 0)
		memset(&resp, 0, sizeof resp);
	lvl = resp.status == 200 ? QKD_LOG_DEBUG : QKD_LOG_INFO;
	if (resp.status == 200 || resp.body == NULL)
		qkd_logf(s->log, lvl, "kme: %s %s %s: %u", rq->caller, method, url, resp.status);
	else	/* an Error object: never key material */
		qkd_logf(s->log, lvl, "kme: %s %s %s: %u %s", rq->caller, method, url, resp.status,
			 resp.body);
	return send_resp(s, c, rq, &resp);
}

/* Take one piece of the body; false once it would exceed the limit. */
static bool body_append(struct req *rq, const char *p, size_t n)
{
	char *nb;
	size_t cap;

	if (n > QKD_ETSI014_BODY_MAX - rq->len)
		return false;
	if (rq->len + n > rq->cap) {
		cap = rq->cap ? rq->cap : 1024;
		while (cap < rq->len + n)
			cap *= 2;
		if ((nb = realloc(rq->body, cap)) == NULL)
			return false;
		rq->body = nb;
		rq->cap = cap;
	}
	memcpy(rq->body + rq->len, p, n);
	rq->len += n;
	return true;
}

/* The framing headers of a request, counted (names without case, RFC 9110
 * section 5.1). */
struct framing {
	unsigned host, clen, tenc;
	const char *clen_v, *tenc_v;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	struct framing *f = cls;

	(void)kind;
	if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
		f->host++;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		f->clen++;
		f->clen_v = value;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		f->tenc++;
		f->tenc_v = value;
	}
	return MHD_YES;
}

/* What HTTP/1.1 forbids and libmicrohttpd 0.9.75 lets through: above all a
 * body whose length two readers could see differently (request smuggling).
 * libmicrohttpd reads the first Content-Length only, and Transfer-Encoding
 * before it. A Content-Length that is not a number it refuses itself. */
static int check_framing(struct MHD_Connection *c, const char *version,
			 struct qkd_etsi014_error *err)
{
	struct framing f = { .host = 0 };
	bool http10 = version != NULL && strcmp(version, MHD_HTTP_VERSION_1_0) == 0;

	MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &f);
	if (f.host > 1 || (f.host == 0 && !http10))
		return refuse(err, 400, "a request needs exactly one Host header "
			      "(RFC 9112 section 3.2)");
	if (f.clen > 1)
		return refuse(err, 400, "Content-Length given more than once "
			      "(RFC 9112 section 6.3)");
	if (f.tenc > 0 && (f.clen > 0 || http10 || f.tenc > 1))
		return refuse(err, 400, "Transfer-Encoding together with Content-Length, in "
			      "HTTP/1.0, or twice (RFC 9112 section 6.1)");
	if (f.tenc == 1 && strcasecmp(f.tenc_v, "chunked") != 0)
		return refuse(err, 501, "no transfer coding but chunked is implemented "
			      "(RFC 9112 section 6.1)");
	if (f.clen == 1 && (strlen(f.clen_v) > 9 || strtoul(f.clen_v, NULL, 10) > QKD_ETSI014_BODY_MAX))
		return refuse(err, 413, "request body too large (at most 65536 bytes)");
	return 0;
}

/* The first call, with the headers: identify the caller, refuse early what
 * will be refused anyway (before any body is read). A response queued here
 * is the request's only one: libmicrohttpd calls kme_server_on_request no more, and
 * closes the connection after it when a body was announced. */
static enum MHD_Result begin(struct qkd_kme_server *s, struct MHD_Connection *c,
			     const char *version, struct req *rq)
{
	struct qkd_etsi014_error err;
	const char *why = NULL;
	enum MHD_Result ret = MHD_YES;

	memset(&err, 0, sizeof err);
	rq->begun = true;
	if ((rq->caller = kme_server_identify(s, c, &why)) == NULL)
		return send_error(s, c, rq, 401, why);
	kme_server_trust(s, c);
	if (check_framing(c, version, &err) != 0 ||
	    qkd_etsi014_target_check(rq->target, &err) != 0)
		ret = send_err(s, c, rq, &err);
	qkd_etsi014_error_cleanup(&err);
	return ret;
}

enum MHD_Result kme_server_on_request(void *cls, struct MHD_Connection *c, const char *url,
				      const char *method, const char *version,
				      const char *upload, size_t *upload_size, void **req_cls)
{
	struct qkd_kme_server *s = cls;
	struct req *rq = *req_cls;

	if (rq == NULL)		/* kme_server_on_uri ran out of memory */
		return MHD_NO;
	if (!rq->begun)
		return begin(s, c, version, rq);
	if (*upload_size > 0) {
		/* Past the limit without a Content-Length (chunked): close. */
		if (!body_append(rq, upload, *upload_size))
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	return serve(s, c, url, method, rq);
}
