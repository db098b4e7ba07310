/* kme_client_http.c - the ETSI 014 client's transport (lib/kme/kme_client_int.h):
 * one libcurl easy handle per client, HTTPS only, mutual TLS, timeouts, the
 * answer read into a bounded body (kme_client_body.c). Neighbours: kme_client.c
 * builds the requests, kme_client_parse.c reads the answers.
 *
 * TLS: the KME's certificate must chain to the configured CA file alone
 * (no system store, no CA directory) and name the host asked for, or
 * server_name (CURLOPT_CONNECT_TO keeps the connection on the URL's host
 * while the certificate check and SNI use the name). TLS 1.2 at least. No
 * proxy from the environment (https_proxy would otherwise carry key), no
 * redirect, no protocol but https.
 *
 * Wiping: libcurl's allocations go through functions whose free and
 * realloc wipe the whole block first (malloc_usable_size), so its receive
 * buffer, which holds the decrypted JSON, is wiped when released; our body
 * buffer grows by wiped copies.
 */
#include "kme_client_int.h"

#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <gnutls/gnutls.h>

#include "qkd/error.h"
#include "qkd/secret.h"

struct kme_http {
	CURL *curl;
	char *base;			/* https://HOST:PORT[/PREFIX], no trailing '/' */
	struct curl_slist *connect_to;	/* server_name:port -> host:port, or NULL */
	struct curl_slist *hdr_get, *hdr_post;
	size_t max_response;
	char errbuf[CURL_ERROR_SIZE];
};

/* ---- libcurl's allocator ---- */

static void wipe_free(void *p)
{
	if (p != NULL)
		qkd_free_secret(p, malloc_usable_size(p));
}

static void *wipe_realloc(void *p, size_t n)
{
	size_t old;
	void *q;

	if (p == NULL)
		return malloc(n);
	old = malloc_usable_size(p);
	if (n <= old)
		return p;
	if ((q = malloc(n)) == NULL)
		return NULL;
	memcpy(q, p, old);
	wipe_free(p);
	return q;
}

static char *plain_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_rc = QKD_ERR_IO;

static void curl_start(void)
{
	CURLcode cc = curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, wipe_free, wipe_realloc,
					   plain_strdup, calloc);

	curl_rc = cc == CURLE_OK ? 0 : cc == CURLE_OUT_OF_MEMORY ? QKD_ERR_NOMEM : QKD_ERR_IO;
}

int kme_http_global_init(void)
{
	if (pthread_once(&curl_once, curl_start) != 0)
		return QKD_ERR_IO;
	return curl_rc;
}

/* ---- the base URL ---- */

__attribute__((format(printf, 3, 4)))
static int http_fail(struct qkd_kme_error *err, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return rc;
	err->http_status = 0;
	err->details[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return rc;
}

/* A host name or an IP literal as the certificate would name it. */
static bool server_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253)
		return false;
	if (s[0] == '[')
		return n > 2 && s[n - 1] == ']' && strspn(s + 1, "0123456789abcdefABCDEF:.") == n - 2;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

/* What a base URL may not have: curl_url_get answers these codes when the
 * part is absent. */
static bool url_part_absent(CURLU *u, CURLUPart part, CURLUcode absent)
{
	char *v = NULL;
	CURLUcode uc = curl_url_get(u, part, &v, 0);

	curl_free(v);
	return uc == absent;
}

/* server_name: requests name it (SNI, certificate check) and connect to
 * the URL's host and port. */
static int url_rename(CURLU *u, const char *name, struct kme_http *h, struct qkd_kme_error *err)
{
	char *host = NULL, *port = NULL, line[600];
	int rc = QKD_ERR_INVAL;

	if (!server_name_ok(name)) {
		http_fail(err, rc, "bad server name '%.80s' (a DNS name or an IP literal)", name);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		http_fail(err, rc, "the URL has no host or port");
		goto out;
	}
	snprintf(line, sizeof line, "%s:%s:%s:%s", name, port, host, port);
	rc = QKD_ERR_NOMEM;
	if ((h->connect_to = curl_slist_append(NULL, line)) == NULL ||
	    curl_url_set(u, CURLUPART_HOST, name, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_PORT, port, 0) != CURLUE_OK) {
		http_fail(err, rc, "cannot set the server name");
		goto out;
	}
	rc = 0;
out:
	curl_free(host);
	curl_free(port);
	return rc;
}

static int parse_base(struct kme_http *h, const struct qkd_kme_client_config *cfg,
		      struct qkd_kme_error *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *full = NULL;
	size_t n;
	int rc = QKD_ERR_INVAL;

	if (u == NULL) {
		rc = http_fail(err, QKD_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (curl_url_set(u, CURLUPART_URL, cfg->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		http_fail(err, rc, "not a URL: '%.200s'", cfg->url);
		goto out;
	}
	if (strcmp(scheme, "https") != 0 ||
	    !url_part_absent(u, CURLUPART_USER, CURLUE_NO_USER) ||
	    !url_part_absent(u, CURLUPART_QUERY, CURLUE_NO_QUERY) ||
	    !url_part_absent(u, CURLUPART_FRAGMENT, CURLUE_NO_FRAGMENT)) {
		http_fail(err, rc, "the URL must be https://HOST[:PORT][/PREFIX], without "
			  "user, query or fragment: '%.200s'", cfg->url);
		goto out;
	}
	if (cfg->server_name != NULL && (rc = url_rename(u, cfg->server_name, h, err)) != 0)
		goto out;
	if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK ||
	    (h->base = plain_strdup(full)) == NULL) {
		rc = http_fail(err, QKD_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (n = strlen(h->base); n > 0 && h->base[n - 1] == '/'; n--)
		h->base[n - 1] = '\0';
	rc = 0;
out:
	curl_free(scheme);
	curl_free(full);
	curl_url_cleanup(u);
	return rc;
}

/* ---- the handle ---- */

/* The certificate, its key and the CA file as GnuTLS reads them (libcurl's
 * backend here): a clear message now instead of a failed handshake at the
 * first request. GnuTLS also checks that the key is the certificate's. */
static int check_credentials(const struct qkd_kme_client_config *cfg, struct qkd_kme_error *err)
{
	gnutls_certificate_credentials_t cred = NULL;
	int g, rc = 0;

	if (gnutls_certificate_allocate_credentials(&cred) < 0)
		return http_fail(err, QKD_ERR_NOMEM, "out of memory");
	g = gnutls_certificate_set_x509_key_file(cred, cfg->cert_file, cfg->key_file,
						 GNUTLS_X509_FMT_PEM);
	if (g < 0)
		rc = http_fail(err, QKD_ERR_INVAL, "TLS: cannot use the client certificate %s "
			       "with the key %s: %s", cfg->cert_file, cfg->key_file,
			       gnutls_strerror(g));
	else if ((g = gnutls_certificate_set_x509_trust_file(cred, cfg->ca_file,
							     GNUTLS_X509_FMT_PEM)) <= 0)
		rc = http_fail(err, QKD_ERR_INVAL, "TLS: the CA file %s holds no usable "
			       "certificate%s%s", cfg->ca_file, g < 0 ? ": " : "",
			       g < 0 ? gnutls_strerror(g) : "");
	gnutls_certificate_free_credentials(cred);
	return rc;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct kme_body *b = ctx;

	/* size is 1 (CURLOPT_WRITEFUNCTION); anything short of nmemb aborts */
	if (kme_body_append(b, data, size * nmemb) != 0)
		return 0;
	return size * nmemb;
}

static int set_tls(struct kme_http *h, const struct qkd_kme_client_config *cfg)
{
	CURL *c = h->curl;

	if (curl_easy_setopt(c, CURLOPT_SSLCERT, cfg->cert_file) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSLKEY, cfg->key_file) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CAPATH, NULL) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
	    (h->connect_to != NULL &&
	     curl_easy_setopt(c, CURLOPT_CONNECT_TO, h->connect_to) != CURLE_OK))
		return QKD_ERR_IO;
	return 0;
}

static int set_http(struct kme_http *h, const struct qkd_kme_client_config *cfg)
{
	CURL *c = h->curl;
	long conn = cfg->connect_timeout_ms ? (long)cfg->connect_timeout_ms
					    : QKD_KME_CLIENT_CONNECT_TIMEOUT_MS;
	long total = cfg->timeout_ms ? (long)cfg->timeout_ms : QKD_KME_CLIENT_TIMEOUT_MS;

	if (curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROXY, "") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, conn) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->max_response) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_USERAGENT, "qkdnet-kme-client") != CURLE_OK)
		return QKD_ERR_IO;
	return 0;
}

static int set_headers(struct kme_http *h)
{
	h->hdr_get = curl_slist_append(NULL, "Accept: application/json");
	if (h->hdr_get == NULL)
		return QKD_ERR_NOMEM;
	h->hdr_post = curl_slist_append(NULL, "Accept: application/json");
	if (h->hdr_post == NULL)
		return QKD_ERR_NOMEM;
	if (curl_slist_append(h->hdr_post, "Content-Type: application/json") == NULL)
		return QKD_ERR_NOMEM;
	return 0;
}

int kme_http_new(struct kme_http **out, const struct qkd_kme_client_config *cfg,
		 struct qkd_kme_error *err)
{
	struct kme_http *h = calloc(1, sizeof *h);
	int rc;

	*out = NULL;
	if (h == NULL)
		return http_fail(err, QKD_ERR_NOMEM, "out of memory");
	h->max_response = cfg->max_response_bytes ? cfg->max_response_bytes
						   : QKD_KME_CLIENT_RESPONSE_MAX;
	if ((rc = parse_base(h, cfg, err)) != 0 || (rc = check_credentials(cfg, err)) != 0)
		goto fail;
	if ((h->curl = curl_easy_init()) == NULL || (rc = set_headers(h)) != 0) {
		rc = http_fail(err, QKD_ERR_NOMEM, "out of memory");
		goto fail;
	}
	if ((rc = set_tls(h, cfg)) != 0 || (rc = set_http(h, cfg)) != 0) {
		http_fail(err, rc, "libcurl refused a TLS or HTTP option");
		goto fail;
	}
	*out = h;
	return 0;
fail:
	kme_http_free(h);
	return rc;
}

void kme_http_free(struct kme_http *h)
{
	if (h == NULL)
		return;
	curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->connect_to);
	curl_slist_free_all(h->hdr_get);
	curl_slist_free_all(h->hdr_post);
	free(h->base);
	free(h);
}

const char *kme_http_base(const struct kme_http *h)
{
	return h->base;
}

/* ---- one request ---- */

/* libcurl's verdict as a code and a sentence. */
static int curl_fail(const struct kme_http *h, CURLcode cc, const struct kme_body *b,
		     struct qkd_kme_error *err)
{
	const char *why = h->errbuf[0] != '\0' ? h->errbuf : curl_easy_strerror(cc);

	switch (cc) {
	case CURLE_WRITE_ERROR:
		if (!b->over)
			return http_fail(err, QKD_ERR_NOMEM, "out of memory reading the answer");
		/* fall through */
	case CURLE_FILESIZE_EXCEEDED:
		return http_fail(err, QKD_ERR_RANGE, "the answer is larger than %zu bytes",
				 h->max_response);
	case CURLE_PEER_FAILED_VERIFICATION:
		return http_fail(err, QKD_ERR_VERIFY, "TLS: the KME's certificate does not verify "
				 "against the CA file or does not name the server: %s", why);
	case CURLE_SSL_CACERT_BADFILE:
		return http_fail(err, QKD_ERR_INVAL, "TLS: cannot use the CA file: %s", why);
	case CURLE_SSL_CERTPROBLEM:
		return http_fail(err, QKD_ERR_INVAL,
				 "TLS: cannot use the client certificate or its key: %s", why);
	case CURLE_OPERATION_TIMEDOUT:
		return http_fail(err, QKD_ERR_IO, "timed out: %s", why);
	case CURLE_OUT_OF_MEMORY:
		return http_fail(err, QKD_ERR_NOMEM, "out of memory");
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		return http_fail(err, QKD_ERR_IO, "no answer (TLS handshake or connection failed; "
				 "does the KME accept this client certificate?): %s", why);
	default:
		return http_fail(err, QKD_ERR_IO, "%s", why);
	}
}

int kme_http_request(struct kme_http *h, const char *path, const char *post,
		     unsigned *status, struct kme_body *body, struct qkd_kme_error *err)
{
	size_t n = strlen(h->base) + strlen(path) + 1;
	char *url = malloc(n);
	long code = 0;
	CURLcode cc;
	int rc;

	kme_body_init(body, h->max_response);
	h->errbuf[0] = '\0';
	if (url == NULL)
		return http_fail(err, QKD_ERR_NOMEM, "out of memory");
	snprintf(url, n, "%s%s", h->base, path);
	cc = curl_easy_setopt(h->curl, CURLOPT_URL, url);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, body);
	if (cc == CURLE_OK && post != NULL)
		cc = curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, post);
	if (cc == CURLE_OK && post != NULL)
		cc = curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(post));
	if (cc == CURLE_OK && post == NULL)
		cc = curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, post ? h->hdr_post : h->hdr_get);
	if (cc == CURLE_OK)
		cc = curl_easy_perform(h->curl);
	if (cc == CURLE_OK)
		cc = curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &code);
	rc = cc == CURLE_OK ? 0 : curl_fail(h, cc, body, err);
	if (rc != 0)
		kme_body_free(body);
	*status = (unsigned)code;
	free(url);
	return rc;
}
