/* node_status.c - the status socket of `qkd node` (docs/node.md): a unix
 * stream socket; a client writes one line "status" and reads one JSON
 * object, then the daemon closes the connection.
 *
 * One thread serves every client with a poll() loop: reads and writes are
 * non-blocking and each client has a deadline, so a client that sends
 * nothing or reads nothing costs a slot for STATUS_CLIENT_SECONDS and
 * delays nobody. It sees the node only through qkd/node.h's accessors.
 * Neighbours: cmd_node.c starts the thread and stops the node, which ends
 * it; cmd_status.c is the client. */
#include "node_status.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "qkd/error.h"
#include "qkd/sysutil.h"

/* Clients served at once; a newcomer beyond that evicts the oldest. */
#define STATUS_CLIENTS_MAX 32
/* From accept to the last byte written: a local client needs milliseconds. */
#define STATUS_CLIENT_SECONDS 2.0
/* The longest poll() wait: how soon the thread sees the node stop. */
#define STATUS_TICK_MS 200
/* "status\n" and then some; a longer line is an unknown request. */
#define STATUS_REQ_MAX 64

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa->sun_path)
		return -1;
	strcpy(sa->sun_path, path);
	return 0;
}

/* A socket file someone still listens on is in use; otherwise stale. */
static bool socket_in_use(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool used;

	if (fd < 0)
		return false;
	used = connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0;
	close(fd);
	return used;
}

int node_status_listen(struct node_daemon *d, const char *config)
{
	struct sockaddr_un sa;
	int fd;

	if (unix_addr(d->cfg.status, &sa) != 0) {
		cli_errorf(config, "status socket path too long: %s", d->cfg.status);
		return -1;
	}
	if (socket_in_use(&sa)) {
		cli_errorf(config, "status socket %s: another node is running there", d->cfg.status);
		return -1;
	}
	(void)unlink(d->cfg.status);
	/* Non-blocking: the status thread accepts until EAGAIN. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, STATUS_CLIENTS_MAX) != 0) {
		cli_errorf(config, "status socket %s: %s", d->cfg.status, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	(void)chmod(d->cfg.status, 0660);
	d->status_fd = fd;
	return 0;
}

void node_status_close(struct node_daemon *d)
{
	if (d->status_fd < 0)
		return;
	close(d->status_fd);
	d->status_fd = -1;
	(void)unlink(d->cfg.status);
}

static json_t *link_json(const struct qkd_link_config *c, const struct qkd_link_status *s)
{
	json_t *j = json_object();

	json_object_set_new(j, "name", json_string(c->name));
	json_object_set_new(j, "role", json_string(qkd_link_role_name(c->role)));
	json_object_set_new(j, "state", json_string(s->state));
	/* As configured, in the canonical form: "[::1]:7101" for IPv6. */
	json_object_set_new(j, "classical", json_string(c->classical.text));
	json_object_set_new(j, "fiber", json_string(c->fiber.text));
	/* The far end's node id once a handshake passed, and the configured one. */
	json_object_set_new(j, "peer_id", s->peer_id[0] ? json_string(s->peer_id) : json_null());
	json_object_set_new(j, "peer", c->peer[0] ? json_string(c->peer) : json_null());
	json_object_set_new(j, "qber", s->last_qber_source == QKD_QBER_NONE ? json_null() :
			    json_real(s->last_qber));
	json_object_set_new(j, "qber_source",
			    json_string(qkd_qber_source_name(s->last_qber_source)));
	json_object_set_new(j, "key_rate_bps", json_real(s->key_rate_bps));
	json_object_set_new(j, "stored_blocks", json_integer((json_int_t)s->stored_blocks));
	json_object_set_new(j, "stored_bits", json_integer((json_int_t)s->stored_bits));
	json_object_set_new(j, "available_bits", json_integer((json_int_t)s->available_bits));
	json_object_set_new(j, "last_block_bits", json_integer((json_int_t)s->last_block_bits));
	json_object_set_new(j, "auth_bits_left", json_integer((json_int_t)s->auth_bits_left));
	json_object_set_new(j, "auth_bits_spent", json_integer((json_int_t)s->auth_bits_spent));
	json_object_set_new(j, "auth_bits_replenished",
			    json_integer((json_int_t)s->auth_bits_replenished));
	json_object_set_new(j, "auth_bits_poorer", json_integer((json_int_t)s->auth_bits_poorer));
	json_object_set_new(j, "last_round_auth_bits",
			    json_integer((json_int_t)s->last_round_auth_bits));
	json_object_set_new(j, "last_round_key_bits",
			    json_integer((json_int_t)s->last_round_key_bits));
	json_object_set_new(j, "last_round_trips", json_integer((json_int_t)s->last_round_trips));
	json_object_set_new(j, "session_auth_bits", json_integer((json_int_t)s->session_auth_bits));
	json_object_set_new(j, "session_key_bits", json_integer((json_int_t)s->session_key_bits));
	json_object_set_new(j, "tags_failed", json_integer((json_int_t)s->tags_failed));
	json_object_set_new(j, "strangers_refused", json_integer((json_int_t)s->strangers_refused));
	json_object_set_new(j, "service_sent", json_integer((json_int_t)s->service_sent));
	json_object_set_new(j, "service_delivered",
			    json_integer((json_int_t)s->service_delivered));
	json_object_set_new(j, "service_unknown", json_integer((json_int_t)s->service_unknown));
	json_object_set_new(j, "blocks_quarantined",
			    json_integer((json_int_t)s->blocks_quarantined));
	json_object_set_new(j, "rounds_ok", json_integer((json_int_t)s->rounds_ok));
	json_object_set_new(j, "rounds_empty", json_integer((json_int_t)s->rounds_empty));
	json_object_set_new(j, "rounds_failed", json_integer((json_int_t)s->rounds_failed));
	json_object_set_new(j, "rounds_qber_abort", json_integer((json_int_t)s->rounds_qber_abort));
	json_object_set_new(j, "eavesdropping_suspected", json_boolean(s->eavesdropping_suspected));
	json_object_set_new(j, "auth_exhausted", json_boolean(s->auth_exhausted));
	json_object_set_new(j, "auth_low", json_boolean(s->auth_low));
	json_object_set_new(j, "disk_fault", json_boolean(s->disk_fault));
	json_object_set_new(j, "kme_available_bits",
			    json_integer((json_int_t)s->kme_available_bits));
	json_object_set_new(j, "kme_outbox", json_integer((json_int_t)s->kme_outbox));
	json_object_set_new(j, "kme_ready", json_integer((json_int_t)s->kme_ready));
	json_object_set_new(j, "kme_delivered", json_integer((json_int_t)s->kme_delivered));
	json_object_set_new(j, "kme_refused", json_integer((json_int_t)s->kme_refused));
	json_object_set_new(j, "kme_abandoned", json_integer((json_int_t)s->kme_abandoned));
	json_object_set_new(j, "kme_withdrawn", json_integer((json_int_t)s->kme_withdrawn));
	json_object_set_new(j, "kme_quarantined", json_integer((json_int_t)s->kme_quarantined));
	json_object_set_new(j, "kme_expired", json_integer((json_int_t)s->kme_expired));
	json_object_set_new(j, "kme_lost_bits", json_integer((json_int_t)s->kme_lost_bits));
	json_object_set_new(j, "kme_pruned", json_integer((json_int_t)s->kme_pruned));
	json_object_set_new(j, "last_error", s->last_error[0] ? json_string(s->last_error)
							      : json_null());
	return j;
}

/* The JSON object `qkd status --json` prints (caller decrefs). */
static json_t *node_status_json(struct node_daemon *d)
{
	json_t *j = json_object(), *a = json_array(), *relay;
	size_t n = qkd_node_nlinks(d->node);

	for (size_t i = 0; i < n; i++) {
		struct qkd_link_status s;

		if (qkd_node_link_status(d->node, i, &s) == QKD_OK)
			json_array_append_new(a, link_json(qkd_node_link_config(d->node, i), &s));
	}
	json_object_set_new(j, "node", json_string(d->cfg.name));
	json_object_set_new(j, "id", json_string(d->cfg.id));
	json_object_set_new(j, "kme_listen", d->cfg.kme.enabled ? json_string(d->cfg.kme.listen.text)
								 : json_null());
	json_object_set_new(j, "links", a);
	relay = node_status_relay_json(d);
	if (relay != NULL)
		json_object_set_new(j, "relay", relay);
	return j;
}

/* One client: the request read so far, then the response being written. */
struct status_client {
	int fd;				/* -1: a free slot */
	double deadline;		/* qkd_wall_seconds() by which it is dropped */
	size_t nreq;
	char req[STATUS_REQ_MAX];
	char *out;			/* the response (malloc), NULL while reading */
	size_t nout, off;
};

struct status_server {
	struct node_daemon *d;
	struct status_client c[STATUS_CLIENTS_MAX];
};

static void client_drop(struct status_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->out);
	*c = (struct status_client){ .fd = -1 };
}

/* A copy of s followed by a newline, or NULL. */
static char *line_dup(const char *s, size_t *n)
{
	size_t len = strlen(s);
	char *p = malloc(len + 2);

	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\n';
	p[len + 1] = '\0';
	*n = len + 1;
	return p;
}

/* The whole first line, without its "\r\n" or "\n", must be "status". */
static bool request_is_status(const struct status_client *c)
{
	const char *nl = memchr(c->req, '\n', c->nreq);
	size_t len = nl != NULL ? (size_t)(nl - c->req) : c->nreq;

	if (len > 0 && c->req[len - 1] == '\r')
		len--;
	return len == 6 && memcmp(c->req, "status", 6) == 0;
}

/* Build the response once the request is complete: it is computed here,
 * in full, so writing it later never touches the daemon's state. */
static int client_answer(struct node_daemon *d, struct status_client *c)
{
	static const char bad[] = "{\"error\": \"unknown request\"}";
	char *js;
	json_t *j;

	if (!request_is_status(c)) {
		c->out = line_dup(bad, &c->nout);
		return c->out != NULL ? 0 : -1;
	}
	j = node_status_json(d);
	js = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(j);
	if (js != NULL)
		c->out = line_dup(js, &c->nout);
	free(js);
	return c->out != NULL ? 0 : -1;
}

/* Write what the socket takes now. 1 when all is written, 0 to wait for
 * POLLOUT, -1 on error. MSG_NOSIGNAL: a client gone is no SIGPIPE. */
static int client_write(struct status_client *c)
{
	while (c->off < c->nout) {
		ssize_t r = send(c->fd, c->out + c->off, c->nout - c->off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		c->off += (size_t)r;
	}
	return 1;
}

/* Read what has arrived. The request ends at a newline, at EOF (a client
 * that shuts down its side) or when the buffer is full. 0 to keep the
 * client, -1 to drop it. */
static int client_read(struct node_daemon *d, struct status_client *c)
{
	ssize_t r;

	do
		r = recv(c->fd, c->req + c->nreq, sizeof c->req - c->nreq, MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	if (r == 0 && c->nreq == 0)
		return -1;
	c->nreq += (size_t)r;
	if (r > 0 && c->nreq < sizeof c->req && memchr(c->req, '\n', c->nreq) == NULL)
		return 0;
	if (client_answer(d, c) != 0)
		return -1;
	/* Most responses fit in the socket buffer: no extra poll round. */
	return client_write(c) == 0 ? 0 : -1;
}

/* A free slot; when all are taken, the oldest client's, so that a crowd of
 * idle connections cannot lock out a client that asks at once. */
static struct status_client *slot_for_new(struct status_server *s)
{
	struct status_client *old = &s->c[0];

	for (size_t i = 0; i < STATUS_CLIENTS_MAX; i++) {
		if (s->c[i].fd < 0)
			return &s->c[i];
		if (s->c[i].deadline < old->deadline)
			old = &s->c[i];
	}
	client_drop(old);
	return old;
}

/* Accept what is pending, at most one table's worth per wake-up so that the
 * clients already there are served too. */
static void accept_clients(struct status_server *s, double now)
{
	for (size_t i = 0; i < STATUS_CLIENTS_MAX; i++) {
		int fd = accept4(s->d->status_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct status_client *c;

		if (fd < 0)
			return;
		c = slot_for_new(s);
		c->fd = fd;
		c->deadline = now + STATUS_CLIENT_SECONDS;
	}
}

/* Fill p: the listening socket, then each client; map[k] is p[k + 1]'s
 * slot. Returns the poll timeout: the nearest deadline, at most a tick so
 * that the node stopping is seen promptly. */
static int fill_poll(struct status_server *s, struct pollfd *p, size_t *map, size_t *n,
		     double now)
{
	double wait = STATUS_TICK_MS / 1000.0;

	p[0] = (struct pollfd){ .fd = s->d->status_fd, .events = POLLIN };
	*n = 1;
	for (size_t i = 0; i < STATUS_CLIENTS_MAX; i++) {
		struct status_client *c = &s->c[i];

		if (c->fd < 0)
			continue;
		if (c->deadline - now < wait)
			wait = c->deadline - now;
		p[*n] = (struct pollfd){ .fd = c->fd, .events = c->out ? POLLOUT : POLLIN };
		map[*n - 1] = i;
		(*n)++;
	}
	return wait > 0 ? (int)(wait * 1000) + 1 : 0;
}

/* Serve the clients poll found ready; drop those done, failed or late. */
static void serve_ready(struct status_server *s, const struct pollfd *p, const size_t *map,
			size_t n, double now)
{
	for (size_t k = 1; k < n; k++) {
		struct status_client *c = &s->c[map[k - 1]];
		int rc = 0;

		if (p[k].revents != 0)
			rc = c->out != NULL ? (client_write(c) == 0 ? 0 : -1) : client_read(s->d, c);
		if (rc != 0 || now >= c->deadline)
			client_drop(c);
	}
}

void *node_status_thread(void *arg)
{
	struct status_server s = { .d = arg };
	struct pollfd p[1 + STATUS_CLIENTS_MAX];
	size_t map[STATUS_CLIENTS_MAX], n;

	for (size_t i = 0; i < STATUS_CLIENTS_MAX; i++)
		s.c[i].fd = -1;
	while (!qkd_node_stopping(s.d->node)) {
		int timeout = fill_poll(&s, p, map, &n, qkd_wall_seconds());

		if (poll(p, n, timeout) < 0) {
			/* revents are undefined; ENOMEM may pass: wait a tick, retry. */
			if (errno != EINTR)
				(void)poll(NULL, 0, STATUS_TICK_MS);
			continue;
		}
		serve_ready(&s, p, map, n, qkd_wall_seconds());
		/* After serving: a slot freed now can take a newcomer. */
		if (p[0].revents & POLLIN)
			accept_clients(&s, qkd_wall_seconds());
	}
	for (size_t i = 0; i < STATUS_CLIENTS_MAX; i++)
		client_drop(&s.c[i]);
	return NULL;
}
