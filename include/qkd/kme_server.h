/* qkd/kme_server.h - the key manager's HTTPS server: ETSI GS QKD 014 over
 * mutually authenticated TLS (DESIGN.md section 6; docs/kme.md).
 *
 * libmicrohttpd with its GnuTLS backend, one thread per connection, a
 * bounded number of connections, HTTP/1.1 keep-alive. TLS 1.3, and TLS 1.2
 * with AEAD suites only. Every client presents a certificate that chains to
 * the configured CA and carries the TLS client purpose (an extendedKeyUsage
 * extension naming clientAuth): a client without one fails the TLS
 * handshake. Each request then checks the
 * certificate again and maps its subject CN to an SAE ID through the table
 * of the configuration: an unknown CN is answered 401. The SAE ID so found
 * is the caller of qkd_etsi014_handle, which serves only the caller's own
 * pairs (enc_keys: the caller is the master; dec_keys: the slave).
 *
 * Request bodies larger than QKD_ETSI014_BODY_MAX are refused with 413.
 * Threads: the provider of the configuration is called from the connection
 * threads, concurrently. Logging goes through cfg->log (never key bits);
 * libmicrohttpd's own messages at most a few lines a second, with a count
 * of those suppressed.
 *
 * Against a stranger who holds connections open to lock the SAEs out
 * (docs/kme.md, "Connections"): one address holds at most
 * per_address_connections of the max_connections (libmicrohttpd counts per
 * whole address: an IPv4 address, or all 128 bits of an IPv6 one), and a connection whose
 * client has not yet proved to be a known SAE is closed after
 * handshake_timeout_s of silence (and a TLS handshake that takes longer in
 * all); only then does idle_timeout_s apply.
 */
#ifndef QKD_KME_SERVER_H
#define QKD_KME_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/etsi014.h"
#include "qkd/log.h"
#include "qkd/netaddr.h"

/* Longest certificate subject CN matched, in bytes. */
#define QKD_KME_CN_MAX 64
/* Defaults of the configuration's 0 values. */
#define QKD_KME_DEFAULT_CONNECTIONS 256
#define QKD_KME_DEFAULT_PER_ADDRESS 32
#define QKD_KME_DEFAULT_HANDSHAKE_S 5
#define QKD_KME_DEFAULT_IDLE_S 60

/* One SAE this KME serves: the subject CN its client certificate carries. */
struct qkd_kme_sae {
	const char *id;		/* a valid SAE ID (qkd_etsi014_id_valid) */
	const char *cn;		/* 1 .. QKD_KME_CN_MAX bytes, unique in the table */
};

/* Everything borrowed only during qkd_kme_server_start, except kme.ops,
 * kme.ctx and log, which must outlive the server. */
struct qkd_kme_server_config {
	/* Where to listen, IPv4 or IPv6 (an IPv6 socket is IPv6 only); port 0:
	 * any free port (qkd_kme_server_port). No address (len 0): 127.0.0.1,
	 * any free port. */
	struct qkd_netaddr listen;
	const char *cert_file;		/* PEM: the server's certificate (chain) */
	const char *key_file;		/* PEM: its private key */
	const char *ca_file;		/* PEM: the CA that signs SAE certificates */
	const struct qkd_kme_sae *saes;
	size_t nsaes;
	unsigned max_connections;	/* 0: QKD_KME_DEFAULT_CONNECTIONS */
	/* Connections from one IP address; 0: QKD_KME_DEFAULT_PER_ADDRESS, or
	 * max_connections when that is smaller. At most max_connections. */
	unsigned per_address_connections;
	/* Silence allowed before a client is a known SAE (TLS handshake and
	 * first request), and the whole handshake's limit; 0:
	 * QKD_KME_DEFAULT_HANDSHAKE_S. */
	unsigned handshake_timeout_s;
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

/* ---- counters (docs/metrics.md) ----
 *
 * Every response the server queues is counted once, when it is queued:
 * under the endpoint its request-target names and its HTTP status code,
 * with the time from the request line's arrival to the response queued in
 * the latency histogram, and (a 200 of enc_keys or dec_keys) the keys it
 * carries. A connection closed without a response (a body over the limit
 * without Content-Length, out of memory, a failed TLS handshake) counts
 * nowhere. The counters are atomics, updated from the connection threads
 * and read at any time; a copy is not one instant's (a request finishing
 * during the copy may be in one counter and not yet in another), except
 * that the histogram's count is the sum of its buckets by construction. */

/* The request-target's endpoint: /api/v1/keys/{SAE_ID}/{status|enc_keys|
 * dec_keys} (with any query), anything else "other". */
enum qkd_kme_endpoint {
	QKD_KME_EP_STATUS,
	QKD_KME_EP_ENC_KEYS,
	QKD_KME_EP_DEC_KEYS,
	QKD_KME_EP_OTHER,
	QKD_KME_EP_COUNT
};

/* Status codes counted: 100 .. 599 (libmicrohttpd sends no other). */
#define QKD_KME_CODE_MIN 100
#define QKD_KME_CODES 500
/* Latency buckets: upper bounds 1 ms .. 10 s (qkd_kme_latency_bounds_s),
 * plus one above the largest. */
#define QKD_KME_LATENCY_BUCKETS 13

/* The buckets' upper bounds in seconds, increasing. */
extern const double qkd_kme_latency_bounds_s[QKD_KME_LATENCY_BUCKETS];

struct qkd_kme_counters {
	uint64_t requests[QKD_KME_EP_COUNT][QKD_KME_CODES];	/* [endpoint][code - 100] */
	uint64_t keys_served[2];	/* in 200 responses: [0] enc_keys, [1] dec_keys */
	/* Responses by latency, not cumulative: [i] those above bound i - 1
	 * and at most bound i; [QKD_KME_LATENCY_BUCKETS] those above 10 s. */
	uint64_t latency[QKD_KME_LATENCY_BUCKETS + 1];
	uint64_t latency_sum_ns;	/* of every response counted */
};

/* "status", "enc_keys", "dec_keys", "other". */
const char *qkd_kme_endpoint_name(enum qkd_kme_endpoint e);

/* Copy s's counters into *out (caller-owned; about 16 KiB). Safe from any
 * thread while the server runs; s must not be stopped meanwhile. */
void qkd_kme_server_counters(const struct qkd_kme_server *s, struct qkd_kme_counters *out);

/* Close the listening socket and every connection, wait for the connection
 * threads (a request in progress completes first), wipe the server's
 * private key from memory and free. Accepts NULL. */
void qkd_kme_server_stop(struct qkd_kme_server *s);

#endif
