/* kme_server_log.c - libmicrohttpd's messages into the key manager's log
 * (lib/kme/kme_server_int.h; docs/kme.md "Connections"), through a rate
 * limit: a stranger reconnecting in a loop must not flood the log.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kme_server_int.h"

/* libmicrohttpd's own messages: at most this many lines a second. */
#define LOG_BURST 5

/* Whether one more line may go out now; if so, *suppressed is how many were
 * dropped before it (and the count starts again). */
static bool log_gate_pass(struct log_gate *g, unsigned long *suppressed)
{
	time_t t = kme_server_mono_now();
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

void kme_server_log_suppressed(const struct qkd_kme_server *s, unsigned long n)
{
	if (n > 0)
		qkd_logf(s->log, QKD_LOG_INFO, "kme: httpd: %lu more messages suppressed "
			 "(at most %d lines a second)", n, LOG_BURST);
}

/* libmicrohttpd writes a line for every connection it refuses: a stranger
 * who reconnects in a loop made a million of them in 100 s. At most
 * LOG_BURST go out a second, and the next one that does says how many were
 * dropped. */
void kme_server_on_log(void *cls, const char *fmt, va_list ap)
{
	struct qkd_kme_server *s = cls;
	unsigned long dropped = 0;
	char line[256];
	size_t n;

	if (!log_gate_pass(&s->gate, &dropped))
		return;
	kme_server_log_suppressed(s, dropped);
	vsnprintf(line, sizeof line, fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	qkd_logf(s->log, QKD_LOG_INFO, "kme: httpd: %s", line);
}

