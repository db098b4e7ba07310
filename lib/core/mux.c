/* mux.c - services on a link's authenticated channel (qkd/mux.h;
 * docs/protocol.md, "Services on a link"). The registry, the wake that
 * other threads use, and the SERVICE frame's header; the channel
 * (channel.c) decides when frames move. */
#include "qkd/mux.h"

#include <errno.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "qkd/channel.h"
#include "qkd/error.h"
#include "qkd/sysutil.h"

/* Unknown service messages are logged at most this often. */
#define UNKNOWN_LOG_S 10

struct qkd_mux {
	char name[64];
	const struct qkd_logger *log;
	struct qkd_service svc[QKD_MUX_SERVICES_MAX];
	size_t nsvc;
	struct qkd_channel *ch;		/* attached connection, or NULL */
	bool in_callback;		/* qkd_mux_send allowed */
	atomic_bool woken;
	int wake_fd;			/* eventfd */
	double next_tick;		/* pump by then even without a wake */
	const char *why;
	struct qkd_mux_stats st;
	uint64_t unknown_unlogged;
	double unknown_logged;
	struct qkd_wbuf tx;
};

int qkd_mux_new(struct qkd_mux **out, const char *name, const struct qkd_logger *log)
{
	struct qkd_mux *m = calloc(1, sizeof *m);

	*out = NULL;
	if (m == NULL)
		return QKD_ERR_NOMEM;
	m->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (m->wake_fd < 0) {
		free(m);
		return QKD_ERR_IO;
	}
	snprintf(m->name, sizeof m->name, "%s", name != NULL ? name : "?");
	m->log = log;
	m->unknown_logged = -1e9;
	atomic_init(&m->woken, false);
	qkd_wbuf_init(&m->tx);
	*out = m;
	return QKD_OK;
}

void qkd_mux_free(struct qkd_mux *m)
{
	if (m == NULL)
		return;
	close(m->wake_fd);
	qkd_wbuf_cleanup(&m->tx);
	free(m);
}

static struct qkd_service *find(struct qkd_mux *m, uint8_t id)
{
	for (size_t i = 0; i < m->nsvc; i++)
		if (m->svc[i].id == id)
			return &m->svc[i];
	return NULL;
}

int qkd_mux_register(struct qkd_mux *m, const struct qkd_service *s)
{
	if (s->id == 0 || find(m, s->id) != NULL || m->nsvc == QKD_MUX_SERVICES_MAX ||
	    s->deliver == NULL || s->pump == NULL)
		return QKD_ERR_INVAL;
	m->svc[m->nsvc++] = *s;
	return QKD_OK;
}

void qkd_mux_attach(struct qkd_mux *m, struct qkd_channel *ch)
{
	m->ch = ch;
	m->why = NULL;
	qkd_channel_set_mux(ch, m);
	for (size_t i = 0; i < m->nsvc; i++)
		if (m->svc[i].up != NULL)
			m->svc[i].up(m->svc[i].ctx, true);
	qkd_mux_wake(m);
}

void qkd_mux_detach(struct qkd_mux *m)
{
	if (m->ch != NULL)
		qkd_channel_set_mux(m->ch, NULL);
	m->ch = NULL;
	for (size_t i = 0; i < m->nsvc; i++)
		if (m->svc[i].up != NULL)
			m->svc[i].up(m->svc[i].ctx, false);
}

void qkd_mux_wake(struct qkd_mux *m)
{
	uint64_t one = 1;

	if (atomic_exchange(&m->woken, true))
		return;		/* already pending: the link thread will look */
	/* The eventfd only breaks a poll(); a full counter is a wake too. */
	if (write(m->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
		return;
}

bool qkd_mux_pending(const struct qkd_mux *m)
{
	/* A busy channel never waits a whole tick, so the services' timers
	 * are kept here too. */
	return atomic_load_explicit(&((struct qkd_mux *)m)->woken, memory_order_acquire) ||
	       qkd_wall_seconds() >= m->next_tick;
}

int qkd_mux_wake_fd(const struct qkd_mux *m)
{
	return m->wake_fd;
}

const char *qkd_mux_error(const struct qkd_mux *m)
{
	return m->why;
}

void qkd_mux_fail(struct qkd_mux *m, const char *why)
{
	m->why = why;
}

void qkd_mux_get_stats(const struct qkd_mux *m, struct qkd_mux_stats *out)
{
	*out = m->st;
}

int qkd_mux_run(struct qkd_mux *m)
{
	uint64_t n;
	int rc = QKD_OK;

	/* Clear before pumping: a wake during the pumps is seen next time. */
	atomic_store(&m->woken, false);
	m->next_tick = qkd_wall_seconds() + QKD_MUX_TICK_MS / 1000.0;
	if (read(m->wake_fd, &n, sizeof n) < 0 && errno != EAGAIN)
		return QKD_ERR_IO;
	m->in_callback = true;
	for (size_t i = 0; rc == QKD_OK && i < m->nsvc; i++) {
		const char *why = NULL;

		rc = m->svc[i].pump(m->svc[i].ctx, m, &why);
		if (rc != QKD_OK && why != NULL)
			m->why = why;
	}
	m->in_callback = false;
	return rc;
}

int qkd_mux_send(struct qkd_mux *m, uint8_t service, uint8_t type, const uint8_t *body,
		 size_t len)
{
	int rc;

	if (!m->in_callback || m->ch == NULL || find(m, service) == NULL)
		return QKD_ERR_INVAL;
	if (len > QKD_MUX_FRAME_MAX - QKD_MUX_HEADER_LEN)
		return QKD_ERR_RANGE;
	qkd_wbuf_reset(&m->tx);
	qkd_put_u8(&m->tx, service);
	qkd_put_u8(&m->tx, type);
	qkd_put_bytes(&m->tx, body, len);
	rc = m->tx.err ? m->tx.err : qkd_channel_send_service(m->ch, m->tx.p, m->tx.len);
	if (rc == QKD_OK)
		m->st.sent++;
	return rc;
}

/* A message no service here takes: logged (rate-limited), dropped. */
static void unknown(struct qkd_mux *m, uint8_t id, uint8_t type)
{
	double now = qkd_wall_seconds();

	m->st.unknown++;
	m->unknown_unlogged++;
	if (now - m->unknown_logged < UNKNOWN_LOG_S)
		return;
	qkd_logf(m->log, QKD_LOG_WARN, "link %s: %llu service message(s) of a service or type "
		 "this node does not have dropped (last: service %u, type %u; the peer runs "
		 "a newer qkd?)", m->name, (unsigned long long)m->unknown_unlogged, id, type);
	m->unknown_unlogged = 0;
	m->unknown_logged = now;
}

int qkd_mux_deliver(struct qkd_mux *m, const uint8_t *p, size_t len)
{
	struct qkd_service *s;
	struct qkd_rbuf body;
	const char *why = NULL;
	int rc;

	if (len < QKD_MUX_HEADER_LEN) {
		m->why = "service frame too short for its header";
		return QKD_ERR_PROTO;
	}
	s = find(m, p[0]);
	if (s == NULL || p[1] == 0 || p[1] > s->ntypes) {
		unknown(m, p[0], p[1]);
		return QKD_OK;
	}
	qkd_rbuf_init(&body, p + QKD_MUX_HEADER_LEN, len - QKD_MUX_HEADER_LEN);
	m->in_callback = true;
	rc = s->deliver(s->ctx, m, p[1], &body, &why);
	m->in_callback = false;
	if (rc == QKD_OK)
		m->st.delivered++;
	else if (why != NULL)
		m->why = why;
	return rc;
}
