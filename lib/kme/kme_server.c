/* kme_server.c - ETSI GS QKD 014 over HTTPS with client certificates
 * (qkd/kme_server.h; docs/kme.md "TLS and HTTP settings", "Connections",
 * "SAEs and their certificates").
 *
 * libmicrohttpd runs the sockets, one thread per connection (a provider
 * may block: qkd node's enc_keys waits for the peer KME); GnuTLS (its
 * backend) the TLS. Two checks guard every key:
 *   - at the handshake: the connection notifier switches the fresh session
 *     to GNUTLS_CERT_REQUIRE and installs on_verify (peer_verify) as its verify
 *     function: the chain against the CA (MHD_OPTION_HTTPS_MEM_TRUST), the
 *     dates, the TLS-client key purpose, and an extendedKeyUsage that names
 *     it. A client without such a certificate never gets to HTTP;
 *   - per request: the same check again, and the subject CN looked up in
 *     the SAE table. A connection remembers the SHA-256 of the certificate
 *     it verified and the SAE found, for VERIFY_TTL_S seconds: a request
 *     presenting the same certificate within that time skips the signature
 *     checks, anything else redoes them. The SAE ID found is the only
 *     identity qkd_etsi014_handle ever sees.
 * A stranger must not lock the SAEs out by holding connections: one address
 * gets at most per_address connection slots, a connection stays open on
 * silence only handshake_timeout_s until a known SAE has asked something
 * (trust), and libmicrohttpd's message per refused connection goes through
 * a rate limit (log_gate). libmicrohttpd 0.9.75 lets some malformed framing
 * through; begin refuses it (check_framing) together with a request-target
 * that would decode into something else (qkd_etsi014_target_check on the
 * target kept by on_uri).
 */
#include "qkd/kme_server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <sodium.h>

#include "qkd/error.h"
#include "counters.h"

/* TLS 1.3, and TLS 1.2 with ECDHE and AEAD suites only: no CBC, no SHA-1
 * or SHA-2 HMAC record protection, no RSA key transport (RFC 9325 section
 * 4.2). GnuTLS's secure defaults otherwise. */
#define TLS_PRIORITIES "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
	"-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:" \
	"-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"
#define PEM_MAX (1 << 20)
#define ARGS_MAX 8
/* How long a connection's verified certificate is trusted without redoing
 * the signature checks. */
#define VERIFY_TTL_S 10
/* libmicrohttpd's own messages: at most this many lines a second. */
#define LOG_BURST 5

struct sae_entry {
	char id[QKD_ETSI014_ID_MAX + 1];
	char cn[QKD_KME_CN_MAX + 1];
};

/* The rate limit of libmicrohttpd's messages: lines of the current second
 * (CLOCK_MONOTONIC), and those dropped since the last line that went out. */
struct log_gate {
	pthread_mutex_t mu;
	time_t second;
	unsigned lines;
	unsigned long suppressed;
};

struct qkd_kme_server {
	struct MHD_Daemon *d;
	struct qkd_etsi014_kme kme;
	char kme_id[QKD_ETSI014_ID_MAX + 1];
	struct sae_entry *saes;
	size_t nsaes;
	char *cert, *key, *ca;		/* PEM, NUL-terminated; key wiped at stop */
	size_t key_len;
	const struct qkd_logger *log;
	uint16_t port;
	unsigned max_conn, per_address, handshake_s, idle_s;	/* resolved limits */
	struct log_gate gate;
	struct kme_counters counters;	/* counters.c: every response queued */
};

/* One request in progress: its request-target as received, who asked, and
 * its body so far. */
struct req {
	char *target;			/* before percent-decoding (on_uri) */
	uint64_t t0_ns;			/* when the request line was in (the latency's start) */
	bool begun;			/* begin has run */
	const char *caller;		/* an id of the SAE table, or NULL */
	char *body;
	size_t len, cap;
};

/* The key purpose a client certificate must carry (RFC 5280: id-kp-clientAuth).
 * Static: GnuTLS keeps the pointer for the session's lifetime. */
static gnutls_typed_vdata_st client_purpose[1] = {
	{ GNUTLS_DT_KEY_PURPOSE_OID, (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0 },
};

/* ---- files and configuration ---- */

static int read_pem(const char *path, char **out, size_t *len)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	char *buf = NULL;
	int fd, rc = QKD_ERR_IO;

	*out = NULL;
	if (path == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return QKD_ERR_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > PEM_MAX)
		goto out;
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		rc = QKD_ERR_NOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
	rc = 0;
out:
	if (buf != NULL) {
		sodium_memzero(buf, (size_t)st.st_size + 1);
		free(buf);
	}
	close(fd);
	return rc;
}

static int copy_saes(struct qkd_kme_server *s, const struct qkd_kme_server_config *cfg,
		     const char **why)
{
	if (cfg->nsaes == 0 || cfg->saes == NULL) {
		*why = "no SAE configured";
		return QKD_ERR_INVAL;
	}
	if ((s->saes = calloc(cfg->nsaes, sizeof *s->saes)) == NULL)
		return QKD_ERR_NOMEM;
	for (size_t i = 0; i < cfg->nsaes; i++) {
		const struct qkd_kme_sae *e = &cfg->saes[i];

		if (!qkd_etsi014_id_valid(e->id)) {
			*why = "an SAE ID is not 1..64 characters of [A-Za-z0-9._~-]";
			return QKD_ERR_INVAL;
		}
		if (e->cn == NULL || e->cn[0] == '\0' || strlen(e->cn) > QKD_KME_CN_MAX) {
			*why = "an SAE's certificate CN is empty or longer than 64 bytes";
			return QKD_ERR_INVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(s->saes[j].id, e->id) == 0 || strcmp(s->saes[j].cn, e->cn) == 0) {
				*why = "an SAE ID or certificate CN appears twice";
				return QKD_ERR_INVAL;
			}
		strcpy(s->saes[i].id, e->id);
		strcpy(s->saes[i].cn, e->cn);
		s->nsaes = i + 1;
	}
	return 0;
}

/* The configuration's limits, its 0s replaced by the defaults. */
static int set_limits(struct qkd_kme_server *s, const struct qkd_kme_server_config *cfg,
		      const char **why)
{
	s->max_conn = cfg->max_connections ? cfg->max_connections : QKD_KME_DEFAULT_CONNECTIONS;
	s->per_address = cfg->per_address_connections;
	if (s->per_address == 0)
		s->per_address = s->max_conn < QKD_KME_DEFAULT_PER_ADDRESS ? s->max_conn
									: QKD_KME_DEFAULT_PER_ADDRESS;
	s->handshake_s = cfg->handshake_timeout_s ? cfg->handshake_timeout_s
						  : QKD_KME_DEFAULT_HANDSHAKE_S;
	s->idle_s = cfg->idle_timeout_s ? cfg->idle_timeout_s : QKD_KME_DEFAULT_IDLE_S;
	if (s->per_address > s->max_conn) {
		*why = "per_address_connections exceeds max_connections";
		return QKD_ERR_INVAL;
	}
	if (s->handshake_s > 3600 || s->idle_s > 86400) {
		*why = "handshake_timeout is at most 3600 s, idle_timeout at most 86400 s";
		return QKD_ERR_INVAL;
	}
	return 0;
}

static int check_config(const struct qkd_kme_server_config *cfg, struct qkd_netaddr *sa,
			const char **why)
{
	if (qkd_etsi014_limits_check(&cfg->kme.lim, why) != 0)
		return QKD_ERR_INVAL;
	if (!qkd_etsi014_id_valid(cfg->kme.kme_id)) {
		*why = "the KME ID is not 1..64 characters of [A-Za-z0-9._~-]";
		return QKD_ERR_INVAL;
	}
	if (cfg->kme.ops == NULL || cfg->kme.ops->enc == NULL || cfg->kme.ops->dec == NULL ||
	    cfg->kme.ops->status == NULL) {
		*why = "no key provider";
		return QKD_ERR_INVAL;
	}
	*sa = cfg->listen;
	if (sa->len == 0 && qkd_netaddr_from_host("127.0.0.1", 0, sa, why) != 0)
		return QKD_ERR_INVAL;
	if (qkd_netaddr_family(sa) == AF_UNSPEC) {
		*why = "the listening address is neither IPv4 nor IPv6";
		return QKD_ERR_INVAL;
	}
	return 0;
}

/* ---- identity ---- */

/* The subject's one CN into cn[QKD_KME_CN_MAX + 1]; a certificate with no
 * CN, two CNs or a longer one has none. */
static int subject_cn(const gnutls_datum_t *der, char *cn)
{
	gnutls_x509_crt_t crt = NULL;
	size_t len = QKD_KME_CN_MAX + 1, len2 = 0;
	int rc = QKD_ERR_VERIFY;

	if (gnutls_x509_crt_init(&crt) < 0)
		return QKD_ERR_NOMEM;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) < 0 ||
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &len) < 0 ||
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1, 0, NULL, &len2) !=
		    GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE ||
	    len == 0 || len > QKD_KME_CN_MAX || strlen(cn) != len)
		goto out;
	rc = 0;
out:
	gnutls_x509_crt_deinit(crt);
	return rc;
}

/* RFC 5280 section 4.2.1.12 lets a certificate without extendedKeyUsage
 * serve any purpose, and GnuTLS's purpose check accepts one. docs/kme.md
 * requires more: the extension is present and names id-kp-clientAuth (an
 * anyExtendedKeyUsage alone does not do). */
static bool names_client_auth(const gnutls_datum_t *der)
{
	gnutls_x509_crt_t crt = NULL;
	char oid[128];
	size_t len;
	unsigned critical = 0;
	bool found = false;
	int rc = 0;

	if (gnutls_x509_crt_init(&crt) < 0)
		return false;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) < 0)
		goto out;
	for (unsigned i = 0; !found && rc != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE; i++) {
		len = sizeof oid;
		rc = gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &len, &critical);
		if (rc < 0 && rc != GNUTLS_E_SHORT_MEMORY_BUFFER &&
		    rc != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			goto out;	/* a malformed extension */
		found = rc >= 0 && strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT) == 0;
	}
out:
	gnutls_x509_crt_deinit(crt);
	return found;
}

/* The peer's certificate, verified: chain to the CA, validity dates, the
 * TLS-client purpose along the chain (gnutls_certificate_verify_peers), and
 * an extendedKeyUsage naming it on the leaf. NULL and why otherwise. */
static const gnutls_datum_t *peer_verify(gnutls_session_t ss, const char **why)
{
	const gnutls_datum_t *certs;
	unsigned ncerts = 0, status = 0;

	if ((certs = gnutls_certificate_get_peers(ss, &ncerts)) == NULL || ncerts == 0) {
		*why = "no client certificate";
		return NULL;
	}
	if (gnutls_certificate_verify_peers(ss, client_purpose, 1, &status) < 0 || status != 0) {
		*why = "no client certificate signed by the CA for TLS clients";
		return NULL;
	}
	if (!names_client_auth(&certs[0])) {
		*why = "the client certificate's extendedKeyUsage does not name clientAuth";
		return NULL;
	}
	return &certs[0];
}

/* GnuTLS calls this in the handshake once the client's certificate is in
 * (gnutls_session_set_verify_function): a refusal ends the handshake, so a
 * client without a good certificate never reaches HTTP. */
static int on_verify(gnutls_session_t ss)
{
	const char *why = NULL;

	return peer_verify(ss, &why) != NULL ? 0 : GNUTLS_E_CERTIFICATE_ERROR;
}

/* What a connection proved, kept in its socket context: the SAE and the
 * SHA-256 of the certificate it was verified with, and when. */
struct conn_state {
	const char *sae;		/* NULL until a verification succeeded */
	uint8_t fp[crypto_hash_sha256_BYTES];
	time_t at;			/* CLOCK_MONOTONIC seconds */
	bool trusted;			/* idle_timeout applies (trust) */
};

static time_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* The full check: peer_verify, one subject CN, and that CN in the SAE
 * table. */
static const char *verify_peer(const struct qkd_kme_server *s, gnutls_session_t ss,
			       const char **why)
{
	const gnutls_datum_t *cert;
	char cn[QKD_KME_CN_MAX + 1];

	if ((cert = peer_verify(ss, why)) == NULL)
		return NULL;
	if (subject_cn(cert, cn) != 0) {
		*why = "the client certificate has no single subject CN";
		return NULL;
	}
	for (size_t i = 0; i < s->nsaes; i++)
		if (strcmp(s->saes[i].cn, cn) == 0)
			return s->saes[i].id;
	*why = "the client certificate's CN is not a known SAE";
	return NULL;
}

/* The SAE whose certificate this connection presented, or NULL and why.
 * Every request looks at the peer's certificate; the signature checks run
 * again only when it is not the one verified on this connection in the
 * last VERIFY_TTL_S seconds (they dominate the cost of a request). */
static const char *identify(const struct qkd_kme_server *s, struct MHD_Connection *c,
			    const char **why)
{
	const union MHD_ConnectionInfo *ci, *sc;
	struct conn_state *cs = NULL;
	const gnutls_datum_t *certs;
	uint8_t fp[crypto_hash_sha256_BYTES];
	unsigned ncerts = 0;
	gnutls_session_t ss;
	const char *sae;
	time_t t = mono_now();

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || (ss = ci->tls_session) == NULL) {
		*why = "not a TLS connection";
		return NULL;
	}
	if ((certs = gnutls_certificate_get_peers(ss, &ncerts)) == NULL || ncerts == 0) {
		*why = "no client certificate";
		return NULL;
	}
	crypto_hash_sha256(fp, certs[0].data, certs[0].size);
	if ((sc = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT)) != NULL)
		cs = sc->socket_context;
	if (cs != NULL && cs->sae != NULL && t - cs->at < VERIFY_TTL_S &&
	    sodium_memcmp(fp, cs->fp, sizeof fp) == 0)
		return cs->sae;
	sae = verify_peer(s, ss, why);
	if (cs != NULL) {
		cs->sae = sae;
		memcpy(cs->fp, fp, sizeof fp);
		cs->at = t;
	}
	return sae;
}

/* A known SAE is asking: from now on the connection may stay idle for
 * idle_timeout_s between requests (keep-alive), no longer only for
 * handshake_timeout_s, the daemon's timeout for every new connection. */
static void trust(const struct qkd_kme_server *s, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *sc;
	struct conn_state *cs = NULL;

	if ((sc = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT)) != NULL)
		cs = sc->socket_context;
	if (cs != NULL && cs->trusted)
		return;
	(void)MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, s->idle_s);
	if (cs != NULL)
		cs->trusted = true;
}

/* ---- libmicrohttpd's messages ---- */

/* Whether one more line may go out now; if so, *suppressed is how many were
 * dropped before it (and the count starts again). */
static bool log_gate_pass(struct log_gate *g, unsigned long *suppressed)
{
	time_t t = mono_now();
	bool pass;

	pthread_mutex_lock(&g->mu);
	if (t != g->second) {
		g->second = t;
		g->lines = 0;
	}
	pass = g->lines < LOG_BURST;
	if (pass) {
		g->lines++;
		*suppressed = g->suppressed;
		g->suppressed = 0;
	} else {
		g->suppressed++;
	}
	pthread_mutex_unlock(&g->mu);
	return pass;
}

static void log_suppressed(const struct qkd_kme_server *s, unsigned long n)
{
	if (n > 0)
		qkd_logf(s->log, QKD_LOG_INFO, "kme: httpd: %lu more messages suppressed "
			 "(at most %d lines a second)", n, LOG_BURST);
}

/* libmicrohttpd writes a line for every connection it refuses: a stranger
 * who reconnects in a loop made a million of them in 100 s. At most
 * LOG_BURST go out a second, and the next one that does says how many were
 * dropped. */
__attribute__((format(printf, 2, 0)))
static void on_log(void *cls, const char *fmt, va_list ap)
{
	struct qkd_kme_server *s = cls;
	unsigned long dropped = 0;
	char line[256];
	size_t n;

	if (!log_gate_pass(&s->gate, &dropped))
		return;
	log_suppressed(s, dropped);
	vsnprintf(line, sizeof line, fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	qkd_logf(s->log, QKD_LOG_INFO, "kme: httpd: %s", line);
}

/* ---- libmicrohttpd callbacks ---- */

/* Runs for each accepted connection before its handshake: demand and
 * verify a client certificate (see the top of the file), bound the whole
 * handshake's time, and give the connection its state; frees that state
 * when the connection closes. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	const struct qkd_kme_server *s = cls;
	const union MHD_ConnectionInfo *ci;

	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		free(*socket_ctx);
		*socket_ctx = NULL;
		return;
	}
	*socket_ctx = calloc(1, sizeof(struct conn_state));	/* NULL: no cache */
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return;
	gnutls_certificate_server_set_request(ci->tls_session, GNUTLS_CERT_REQUIRE);
	gnutls_session_set_verify_function(ci->tls_session, on_verify);
	/* The daemon's timeout counts silence; this, the handshake's total, so
	 * that a client trickling a byte at a time cannot hold a slot. */
	gnutls_handshake_set_timeout(ci->tls_session, s->handshake_s * 1000);
}

/* Runs for each request once its request line is in, before libmicrohttpd
 * splits off the query and percent-decodes: keep the request-target as it
 * came (begin checks it). What this returns becomes the request's context
 * (*req_cls); NULL, out of memory, closes the connection in on_request. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
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

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
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
 * is the request's only one: libmicrohttpd calls on_request no more, and
 * closes the connection after it when a body was announced. */
static enum MHD_Result begin(struct qkd_kme_server *s, struct MHD_Connection *c,
			     const char *version, struct req *rq)
{
	struct qkd_etsi014_error err;
	const char *why = NULL;
	enum MHD_Result ret = MHD_YES;

	memset(&err, 0, sizeof err);
	rq->begun = true;
	if ((rq->caller = identify(s, c, &why)) == NULL)
		return send_error(s, c, rq, 401, why);
	trust(s, c);
	if (check_framing(c, version, &err) != 0 ||
	    qkd_etsi014_target_check(rq->target, &err) != 0)
		ret = send_err(s, c, rq, &err);
	qkd_etsi014_error_cleanup(&err);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload, size_t *upload_size, void **req_cls)
{
	struct qkd_kme_server *s = cls;
	struct req *rq = *req_cls;

	if (rq == NULL)		/* on_uri ran out of memory */
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

/* ---- start, stop ---- */

static int load_files(struct qkd_kme_server *s, const struct qkd_kme_server_config *cfg,
		      const char **why)
{
	size_t len;
	int rc;

	if ((rc = read_pem(cfg->cert_file, &s->cert, &len)) != 0)
		*why = "cannot read the server certificate file";
	else if ((rc = read_pem(cfg->key_file, &s->key, &s->key_len)) != 0)
		*why = "cannot read the server key file";
	else if ((rc = read_pem(cfg->ca_file, &s->ca, &len)) != 0)
		*why = "cannot read the CA certificate file";
	return rc;
}

/* MHD_OPTION_STRICT_FOR_CLIENT is 0, not 1: in strict mode libmicrohttpd
 * 0.9.75 refuses a request without Host itself, and sends that refusal's
 * status line and headers twice (fixed in 1.0.0). check_framing requires
 * Host instead, and qkd_etsi014_target_check refuses the spaces in a
 * request-target that strict mode would. */
static int start_daemon(struct qkd_kme_server *s, const struct qkd_netaddr *sa,
			const char **why)
{
	unsigned flags = MHD_USE_TLS | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *di;

	/* With MHD_OPTION_SOCK_ADDR, MHD_USE_IPv6 only picks the socket's family
	 * (and the length of the address it binds); without MHD_USE_DUAL_STACK
	 * libmicrohttpd sets IPV6_V6ONLY on it, as qkd_netaddr_listen does. */
	if (qkd_netaddr_family(sa) == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->d = MHD_start_daemon(flags, qkd_netaddr_port(sa), NULL, NULL, on_request, s,
		MHD_OPTION_EXTERNAL_LOGGER, on_log, s,	/* first, to catch every message */
		MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&sa->ss,
		MHD_OPTION_HTTPS_MEM_CERT, s->cert,
		MHD_OPTION_HTTPS_MEM_KEY, s->key,
		MHD_OPTION_HTTPS_MEM_TRUST, s->ca,
		MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
		MHD_OPTION_CONNECTION_LIMIT, s->max_conn,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->per_address,
		MHD_OPTION_CONNECTION_TIMEOUT, s->handshake_s,	/* until trust */
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_STRICT_FOR_CLIENT, 0,
		MHD_OPTION_END);
	if (s->d == NULL) {
		*why = "cannot start the HTTPS server (address in use, or a bad certificate or key)";
		return QKD_ERR_IO;
	}
	di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di != NULL ? di->port : qkd_netaddr_port(sa);
	return 0;
}

int qkd_kme_server_start(struct qkd_kme_server **out, const struct qkd_kme_server_config *cfg,
			 const char **why)
{
	struct qkd_kme_server *s = NULL;
	struct qkd_netaddr sa;
	char where[QKD_NETADDR_STR_MAX];
	const char *w = NULL;
	int rc;

	*out = NULL;
	if ((rc = check_config(cfg, &sa, &w)) != 0)
		goto out;
	if ((rc = qkd_etsi014_init()) != 0) {
		w = "libsodium did not start";
		goto out;
	}
	if ((s = calloc(1, sizeof *s)) == NULL) {
		rc = QKD_ERR_NOMEM;
		goto out;
	}
	pthread_mutex_init(&s->gate.mu, NULL);
	s->log = cfg->log;
	s->kme = cfg->kme;
	snprintf(s->kme_id, sizeof s->kme_id, "%s", cfg->kme.kme_id);
	s->kme.kme_id = s->kme_id;
	if ((rc = set_limits(s, cfg, &w)) != 0 || (rc = copy_saes(s, cfg, &w)) != 0 ||
	    (rc = load_files(s, cfg, &w)) != 0 || (rc = start_daemon(s, &sa, &w)) != 0)
		goto out;
	qkd_netaddr_set_port(&sa, s->port);
	qkd_logf(s->log, QKD_LOG_INFO, "kme: %s serving ETSI GS QKD 014 on https://%s/ "
		 "(%u connections, %u per address; timeouts: %u s until a known SAE asks, "
		 "%u s idle)", s->kme_id, qkd_netaddr_str(&sa, where), s->max_conn,
		 s->per_address, s->handshake_s, s->idle_s);
	*out = s;
	s = NULL;
out:
	qkd_kme_server_stop(s);
	if (why != NULL)
		*why = rc != 0 ? (w != NULL ? w : qkd_strerror(rc)) : NULL;
	return rc;
}

uint16_t qkd_kme_server_port(const struct qkd_kme_server *s)
{
	return s->port;
}

void qkd_kme_server_counters(const struct qkd_kme_server *s, struct qkd_kme_counters *out)
{
	kme_counters_copy(&s->counters, out);
}

void qkd_kme_server_stop(struct qkd_kme_server *s)
{
	if (s == NULL)
		return;
	if (s->d != NULL)
		MHD_stop_daemon(s->d);
	log_suppressed(s, s->gate.suppressed);
	pthread_mutex_destroy(&s->gate.mu);
	if (s->key != NULL)
		sodium_memzero(s->key, s->key_len);
	free(s->key);
	free(s->cert);
	free(s->ca);
	free(s->saes);
	free(s);
}
