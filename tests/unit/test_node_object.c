/* Unit tests of the node object (qkd/node.h, lib/node/node.c): a node of
 * two links on loopback made from a configuration file in a temp dir,
 * started, its status read through the accessors while the links run,
 * stopped and freed; a node refused at startup because a link's port is
 * taken, with the link and the configuration line in the message, leaving
 * nothing open behind it. Whole daemons talking to each other are tested
 * by tests/integration/node.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/kme_server.h"
#include "qkd/log.h"
#include "qkd/node.h"
#include "qkd/node_config.h"

/* The lines the node logged, for the assertions on its messages. */
struct log_buf {
	pthread_mutex_t lock;
	char text[16384];
	size_t len;
};

static void log_write(void *ctx, enum qkd_log_level level, const char *line)
{
	struct log_buf *b = ctx;
	int n;

	(void)level;
	pthread_mutex_lock(&b->lock);
	n = snprintf(b->text + b->len, sizeof b->text - b->len, "%s\n", line);
	if (n > 0 && (size_t)n < sizeof b->text - b->len)
		b->len += (size_t)n;
	pthread_mutex_unlock(&b->lock);
}

static bool logged(struct log_buf *b, const char *s)
{
	bool found;

	pthread_mutex_lock(&b->lock);
	found = strstr(b->text, s) != NULL;
	pthread_mutex_unlock(&b->lock);
	return found;
}

struct fixture {
	char dir[64];
	char conf[128];
	uint16_t port[4];		/* ab classical, ab fiber, cd classical, cd fiber */
	struct qkd_node_config cfg;
	struct log_buf log;
	struct qkd_logger logger;
};

/* A loopback port free now: bound to 0, read back, closed. */
static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* A socket listening on 127.0.0.1:port, as another program would hold it. */
static int hold_port(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(fd, 1), 0);
	return fd;
}

/* Two links: ab (Alice, listens on its classical port) and cd (Bob,
 * listens on its fiber port), each with its own store and bootstrap key.
 * Their peers never come: the links keep trying until stopped. */
static void fixture_init(struct fixture *f)
{
	char err[512], key[4096], path[160];
	FILE *fp;

	memset(f, 0, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/qkd-test-node-object.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	for (size_t i = 0; i < sizeof key; i++)
		key[i] = (char)(i * 197 + 11);
	for (int k = 0; k < 2; k++) {
		snprintf(path, sizeof path, "%s/%s.key", f->dir, k == 0 ? "ab" : "cd");
		key[0] = (char)k;
		fp = fopen(path, "wb");
		assert_non_null(fp);
		assert_int_equal(fwrite(key, 1, sizeof key, fp), sizeof key);
		fclose(fp);
	}
	/* Four different ports: the kernel may hand a just-closed port out
	 * again at once, and the config refuses two links' addresses alike. */
	for (size_t i = 0; i < 4; i++) {
		bool dup = true;

		for (int tries = 0; dup && tries < 100; tries++) {
			f->port[i] = free_port();
			dup = false;
			for (size_t j = 0; j < i; j++)
				dup |= f->port[j] == f->port[i];
		}
		assert_false(dup);
	}
	snprintf(f->conf, sizeof f->conf, "%s/n.conf", f->dir);
	fp = fopen(f->conf, "w");
	assert_non_null(fp);
	fprintf(fp, "node = { name = \"n\"; status = \"n.sock\"; log_level = \"info\"; };\n"
		"links = (\n"
		"{ name = \"ab\"; role = \"alice\"; classical = \"127.0.0.1:%u\";\n"
		"  fiber = \"127.0.0.1:%u\"; store = \"ab.db\"; auth_key = \"ab.key\"; },\n"
		"{ name = \"cd\"; role = \"bob\"; classical = \"127.0.0.1:%u\";\n"
		"  fiber = \"127.0.0.1:%u\"; store = \"cd.db\"; auth_key = \"cd.key\"; }\n"
		");\n", f->port[0], f->port[1], f->port[2], f->port[3]);
	fclose(fp);
	if (qkd_node_config_load(f->conf, &f->cfg, err, sizeof err) != QKD_OK)
		fail_msg("%s", err);
	assert_int_equal(pthread_mutex_init(&f->log.lock, NULL), 0);
	f->logger = (struct qkd_logger){ .write = log_write, .ctx = &f->log,
					 .level = QKD_LOG_INFO };
}

static void fixture_cleanup(struct fixture *f)
{
	char cmd[128];

	pthread_mutex_destroy(&f->log.lock);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
}

static void nap_ms(long ms)
{
	struct timespec t = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&t, NULL);
}

/* Until link i's state is no longer "starting": its thread runs. 5 s at most. */
static bool wait_running(struct qkd_node *n, size_t i)
{
	struct qkd_link_status s;

	for (int k = 0; k < 100; k++) {
		assert_int_equal(qkd_node_link_status(n, i, &s), QKD_OK);
		if (strcmp(s.state, "starting") != 0)
			return true;
		nap_ms(50);
	}
	return false;
}

/* new, start, status, stop, free: the whole life of a node. */
static void test_node_lifecycle(void **state)
{
	struct fixture f;
	struct qkd_node *n = NULL;
	struct qkd_node_error err;
	struct qkd_link_status s;
	struct qkd_kme_counters kc;

	(void)state;
	fixture_init(&f);
	assert_int_equal(qkd_node_new(&n, &f.cfg, &f.logger, &err), QKD_OK);
	assert_non_null(n);
	/* The node keeps its own copy: the caller's may change or go. */
	memset(&f.cfg, 0, sizeof f.cfg);
	assert_string_equal(qkd_node_config_of(n)->name, "n");
	assert_int_equal(qkd_node_nlinks(n), 2);
	assert_string_equal(qkd_node_link_config(n, 0)->name, "ab");
	assert_string_equal(qkd_node_link_config(n, 1)->name, "cd");
	assert_int_equal(qkd_node_link_config(n, 1)->role, QKD_ROLE_BOB);
	assert_null(qkd_node_link_config(n, 2));
	assert_int_equal(qkd_node_link_status(n, 2, &s), QKD_ERR_INVAL);
	assert_false(qkd_node_kme_counters_get(n, &kc));	/* no kme group */
	/* Bound before any thread: a second node on the same ports is refused. */
	{
		/* Anything but NULL: a refusal must clear it. */
		struct qkd_node *n2 = (struct qkd_node *)&f;
		struct qkd_node_config c2;
		char e2[512];

		assert_int_equal(qkd_node_config_load(f.conf, &c2, e2, sizeof e2), QKD_OK);
		assert_int_equal(qkd_node_new(&n2, &c2, &f.logger, &err), QKD_ERR_IO);
		assert_null(n2);
		assert_non_null(strstr(err.text, "link ab: 127.0.0.1:"));
		assert_non_null(strstr(err.text, "in use"));
	}
	assert_int_equal(qkd_node_link_status(n, 0, &s), QKD_OK);
	assert_string_equal(s.state, "starting");
	assert_false(qkd_node_stopping(n));
	assert_int_equal(qkd_node_start(n), QKD_OK);
	assert_int_equal(qkd_node_start(n), QKD_ERR_INVAL);	/* once only */
	assert_true(logged(&f.log, "node n: starting 2 link(s), status on "));
	assert_true(wait_running(n, 0));
	assert_true(wait_running(n, 1));
	assert_int_equal(qkd_node_link_status(n, 1, &s), QKD_OK);
	assert_true(s.rounds_ok == 0 && s.peer_id[0] == '\0');
	assert_int_equal(qkd_node_stop(n), QKD_OK);
	assert_true(qkd_node_stopping(n));
	assert_true(logged(&f.log, "node n: stopped"));
	/* The accessors outlive the threads: each link says it stopped. */
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(qkd_node_link_status(n, i, &s), QKD_OK);
		assert_string_equal(s.state, "stopped");
	}
	assert_int_equal(qkd_node_stop(n), QKD_OK);		/* again: nothing to do */
	qkd_node_free(n);
	qkd_node_free(NULL);
	fixture_cleanup(&f);
}

/* A port in use: refused at qkd_node_new, naming the link, its address and
 * the configuration line, with nothing left open (the first link's store
 * lock too: a node made after the port is freed opens the same stores). */
static void test_node_port_in_use(void **state)
{
	struct fixture f;
	struct qkd_node *n = NULL;
	struct qkd_node_error err;
	struct qkd_node_config c2;
	char want[128], e2[512];
	int held;

	(void)state;
	fixture_init(&f);
	held = hold_port(f.port[3]);		/* cd's fiber, where Bob listens */
	assert_int_equal(qkd_node_new(&n, &f.cfg, &f.logger, &err), QKD_ERR_IO);
	assert_null(n);
	assert_int_equal(err.line, f.cfg.links[1].line);
	assert_true(err.line > 0);
	snprintf(want, sizeof want, "link cd: 127.0.0.1:%u: Address already in use",
		 f.port[3]);
	assert_string_equal(err.text, want);
	assert_false(logged(&f.log, "starting"));
	close(held);
	/* Everything the refused node opened was closed: it all opens again. */
	assert_int_equal(qkd_node_config_load(f.conf, &c2, e2, sizeof e2), QKD_OK);
	assert_int_equal(qkd_node_new(&n, &c2, &f.logger, &err), QKD_OK);
	/* Freed without start or stop: free stops what runs and closes all. */
	qkd_node_free(n);
	assert_false(logged(&f.log, "node n: stopped"));
	fixture_cleanup(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_node_lifecycle),
		cmocka_unit_test(test_node_port_in_use),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
