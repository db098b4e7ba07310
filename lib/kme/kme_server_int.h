/* kme_server_int.h - private to lib/kme/kme_server*.c: the server's state
 * (struct qkd_kme_server, qkd/kme_server.h), what a connection proved, and
 * the callbacks each part hands to libmicrohttpd: kme_server.c (files,
 * configuration, start, stop), kme_server_tls.c (client certificates, per
 * connection and per request), kme_server_http.c (requests: framing, body,
 * the ETSI layer, responses), kme_server_log.c (libmicrohttpd's messages). */
#ifndef QKD_KME_SERVER_INT_H
#define QKD_KME_SERVER_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <microhttpd.h>

#include "counters.h"
#include "qkd/etsi014.h"
#include "qkd/kme_server.h"
#include "qkd/log.h"

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


/* CLOCK_MONOTONIC seconds: the certificate cache's age, the log gate's
 * second. */
static inline time_t kme_server_mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* MHD_OPTION_NOTIFY_CONNECTION (cls: the server): demand and verify a client
 * certificate in the handshake, bound the handshake's time, and keep the
 * connection's state in its socket context (freed at close). */
void kme_server_on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
			      enum MHD_ConnectionNotificationCode code);
/* The SAE (an id of s's table) whose certificate connection c presented,
 * or NULL and why (a static string). */
const char *kme_server_identify(const struct qkd_kme_server *s, struct MHD_Connection *c,
				const char **why);
/* A known SAE is asking on c: idle_timeout_s applies from now on. */
void kme_server_trust(const struct qkd_kme_server *s, struct MHD_Connection *c);

/* MHD_OPTION_URI_LOG_CALLBACK, MHD_OPTION_NOTIFY_COMPLETED and the access
 * handler (cls: the server): one request's life, from its request-target
 * to the response queued and counted. */
void *kme_server_on_uri(void *cls, const char *uri, struct MHD_Connection *c);
void kme_server_on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			     enum MHD_RequestTerminationCode toe);
enum MHD_Result kme_server_on_request(void *cls, struct MHD_Connection *c, const char *url,
				      const char *method, const char *version,
				      const char *upload, size_t *upload_size, void **req_cls);

/* MHD_OPTION_EXTERNAL_LOGGER (cls: the server): libmicrohttpd's messages
 * to s->log, rate limited by s->gate. */
__attribute__((format(printf, 2, 0)))
void kme_server_on_log(void *cls, const char *fmt, va_list ap);
/* Log how many messages the gate dropped (n > 0), as at stop. */
void kme_server_log_suppressed(const struct qkd_kme_server *s, unsigned long n);

#endif
