/* node_status.c - the status socket of `qkd node` (docs/node.md): a unix
 * stream socket; a client writes one line "status" and reads one JSON
 * object, then the daemon closes the connection. */
#include "node_status.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "qkd/error.h"
#include "qkd/sysutil.h"

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
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 8) != 0) {
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
	json_object_set_new(j, "qber", json_real(s->last_qber));
	json_object_set_new(j, "key_rate_bps", json_real(s->key_rate_bps));
	json_object_set_new(j, "stored_blocks", json_integer((json_int_t)s->stored_blocks));
	json_object_set_new(j, "stored_bits", json_integer((json_int_t)s->stored_bits));
	json_object_set_new(j, "available_bits", json_integer((json_int_t)s->available_bits));
	json_object_set_new(j, "last_block_bits", json_integer((json_int_t)s->last_block_bits));
	json_object_set_new(j, "auth_bits_left", json_integer((json_int_t)s->auth_bits_left));
	json_object_set_new(j, "auth_bits_spent", json_integer((json_int_t)s->auth_bits_spent));
	json_object_set_new(j, "auth_bits_replenished",
			    json_integer((json_int_t)s->auth_bits_replenished));
	json_object_set_new(j, "tags_failed", json_integer((json_int_t)s->tags_failed));
	json_object_set_new(j, "rounds_ok", json_integer((json_int_t)s->rounds_ok));
	json_object_set_new(j, "rounds_empty", json_integer((json_int_t)s->rounds_empty));
	json_object_set_new(j, "rounds_failed", json_integer((json_int_t)s->rounds_failed));
	json_object_set_new(j, "rounds_qber_abort", json_integer((json_int_t)s->rounds_qber_abort));
	json_object_set_new(j, "eavesdropping_suspected", json_boolean(s->eavesdropping_suspected));
	json_object_set_new(j, "auth_exhausted", json_boolean(s->auth_exhausted));
	json_object_set_new(j, "auth_low", json_boolean(s->auth_low));
	json_object_set_new(j, "kme_available_bits",
			    json_integer((json_int_t)s->kme_available_bits));
	json_object_set_new(j, "kme_outbox", json_integer((json_int_t)s->kme_outbox));
	json_object_set_new(j, "kme_ready", json_integer((json_int_t)s->kme_ready));
	json_object_set_new(j, "kme_delivered", json_integer((json_int_t)s->kme_delivered));
	json_object_set_new(j, "kme_refused", json_integer((json_int_t)s->kme_refused));
	json_object_set_new(j, "last_error", s->last_error[0] ? json_string(s->last_error)
							      : json_null());
	return j;
}

/* The JSON object `qkd status --json` prints (caller decrefs). */
static json_t *node_status_json(struct node_daemon *d)
{
	json_t *j = json_object(), *a = json_array();

	for (size_t i = 0; i < d->nctx; i++) {
		struct qkd_link_status s;

		qkd_link_status_get(&d->links[i], &s);
		json_array_append_new(a, link_json(&d->cfg.links[i], &s));
	}
	json_object_set_new(j, "node", json_string(d->cfg.name));
	json_object_set_new(j, "links", a);
	return j;
}

/* One client: read up to a newline (bounded, with a timeout), answer. */
static void serve(struct node_daemon *d, int fd)
{
	char req[64];
	size_t n = 0;
	json_t *j;
	char *out;

	while (n < sizeof req - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 1000) <= 0)
			return;
		r = read(fd, req + n, sizeof req - 1 - n);
		if (r <= 0)
			return;
		n += (size_t)r;
		if (memchr(req, '\n', n) != NULL)
			break;
	}
	req[n] = '\0';
	if (strncmp(req, "status", 6) != 0) {
		static const char bad[] = "{\"error\": \"unknown request\"}\n";

		(void)qkd_write_all(fd, bad, sizeof bad - 1);
		return;
	}
	j = node_status_json(d);
	out = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(j);
	if (out != NULL) {
		(void)qkd_write_all(fd, out, strlen(out));
		(void)qkd_write_all(fd, "\n", 1);
	}
	free(out);
}

void *node_status_thread(void *arg)
{
	struct node_daemon *d = arg;

	while (!atomic_load(&d->stop)) {
		struct pollfd p = { .fd = d->status_fd, .events = POLLIN };
		int fd;

		if (poll(&p, 1, 200) <= 0)
			continue;
		fd = accept4(d->status_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve(d, fd);
		close(fd);
	}
	return NULL;
}
