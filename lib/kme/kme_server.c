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
 * (kme_server_trust), and libmicrohttpd's message per refused connection
 * goes through a rate limit (log_gate, kme_server_log.c). libmicrohttpd
 * 0.9.75 lets some malformed framing through; begin (kme_server_http.c)
 * refuses it (check_framing) together with a request-target that would
 * decode into something else (qkd_etsi014_target_check on the target kept
 * by kme_server_on_uri).
 *
 * This file: the configuration, the PEM files, start and stop. Its
 * neighbours (kme_server_int.h): kme_server_tls.c, kme_server_http.c,
 * kme_server_log.c.
 */
#include "qkd/kme_server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "kme_server_int.h"
#include "qkd/error.h"

/* TLS 1.3, and TLS 1.2 with ECDHE and AEAD suites only: no CBC, no SHA-1
 * or SHA-2 HMAC record protection, no RSA key transport (RFC 9325 section
 * 4.2). GnuTLS's secure defaults otherwise. */
#define TLS_PRIORITIES "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
	"-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:" \
	"-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"
#define PEM_MAX (1 << 20)

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
	s->d = MHD_start_daemon(flags, qkd_netaddr_port(sa), NULL, NULL, kme_server_on_request, s,
		MHD_OPTION_EXTERNAL_LOGGER, kme_server_on_log, s,	/* first, to catch every message */
		MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&sa->ss,
		MHD_OPTION_HTTPS_MEM_CERT, s->cert,
		MHD_OPTION_HTTPS_MEM_KEY, s->key,
		MHD_OPTION_HTTPS_MEM_TRUST, s->ca,
		MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
		MHD_OPTION_CONNECTION_LIMIT, s->max_conn,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->per_address,
		MHD_OPTION_CONNECTION_TIMEOUT, s->handshake_s,	/* until trust */
		MHD_OPTION_NOTIFY_CONNECTION, kme_server_on_connection, s,
		MHD_OPTION_URI_LOG_CALLBACK, kme_server_on_uri, s,
		MHD_OPTION_NOTIFY_COMPLETED, kme_server_on_completed, s,
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
	kme_server_log_suppressed(s, s->gate.suppressed);
	pthread_mutex_destroy(&s->gate.mu);
	if (s->key != NULL)
		sodium_memzero(s->key, s->key_len);
	free(s->key);
	free(s->cert);
	free(s->ca);
	free(s->saes);
	free(s);
}
