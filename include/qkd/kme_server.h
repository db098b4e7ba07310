/* qkd/kme_server.h - the key manager's HTTPS server: ETSI GS QKD 014 over
 * mutually authenticated TLS (DESIGN.md section 6; docs/kme.md).
 *
 * libmicrohttpd with its GnuTLS backend, one thread per connection, a
 * bounded number of connections, HTTP/1.1 keep-alive. TLS 1.2 and 1.3 only.
 * Every client presents a certificate that chains to the configured CA and
 * carries the TLS client purpose (extendedKeyUsage clientAuth): a client
 * without one fails the TLS handshake. Each request then checks the
 * certificate again and maps its subject CN to an SAE ID through the table
 * of the configuration: an unknown CN is answered 401. The SAE ID so found
 * is the caller of qkd_etsi014_handle, which serves only the caller's own
 * pairs (enc_keys: the caller is the master; dec_keys: the slave).
 *
 * Request bodies larger than QKD_ETSI014_BODY_MAX are refused with 413.
 * Threads: the provider of the configuration is called from the connection
 * threads, concurrently. Logging goes through cfg->log (never key bits).
 */
#ifndef QKD_KME_SERVER_H
#define QKD_KME_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "qkd/etsi014.h"
#include "qkd/log.h"

/* Longest certificate subject CN matched, in bytes. */
#define QKD_KME_CN_MAX 64
/* Defaults of the configuration's 0 values. */
#define QKD_KME_DEFAULT_CONNECTIONS 64
#define QKD_KME_DEFAULT_IDLE_S 60

/* One SAE this KME serves: the subject CN its client certificate carries. */
struct qkd_kme_sae {
	const char *id;		/* a valid SAE ID (qkd_etsi014_id_valid) */
	const char *cn;		/* 1 .. QKD_KME_CN_MAX bytes, unique in the table */
};

/* Everything borrowed only during qkd_kme_server_start, except kme.ops,
 * kme.ctx and log, which must outlive the server. */
struct qkd_kme_server_config {
	const char *addr;		/* IPv4 literal to bind; NULL: "127.0.0.1" */
	uint16_t port;			/* 0: any free port (qkd_kme_server_port) */
	const char *cert_file;		/* PEM: the server's certificate (chain) */
	const char *key_file;		/* PEM: its private key */
	const char *ca_file;		/* PEM: the CA that signs SAE certificates */
	const struct qkd_kme_sae *saes;
	size_t nsaes;
	unsigned max_connections;	/* 0: QKD_KME_DEFAULT_CONNECTIONS */
	unsigned idle_timeout_s;	/* keep-alive idle limit; 0: QKD_KME_DEFAULT_IDLE_S */
	struct qkd_etsi014_kme kme;	/* kme_id, limits, provider */
	const struct qkd_logger *log;	/* may be NULL */
};

struct qkd_kme_server;

/* Check cfg, read the PEM files, bind and start serving. On success *out is
 * the running server; on failure *out is NULL, the result is QKD_ERR_INVAL
 * (a bad configuration: *why says what), QKD_ERR_IO (a file cannot be read,
 * the address cannot be bound or TLS does not start) or QKD_ERR_NOMEM. */
__attribute__((warn_unused_result))
int qkd_kme_server_start(struct qkd_kme_server **out, const struct qkd_kme_server_config *cfg,
			 const char **why);

/* The port it listens on (the one chosen when cfg->port was 0). */
uint16_t qkd_kme_server_port(const struct qkd_kme_server *s);

/* Close the listening socket and every connection, wait for the connection
 * threads (a request in progress completes first), wipe the server's
 * private key from memory and free. Accepts NULL. */
void qkd_kme_server_stop(struct qkd_kme_server *s);

#endif
