/* qkd node - the link daemon of one node (docs/node.md).
 *
 * Threads: one per link (lib/node/link.c), one for the status socket, one
 * for the metrics endpoint when configured (node_metrics.c), and
 * the main thread, which waits for SIGTERM/SIGINT (blocked everywhere else)
 * and then stops everything: sets the stop flag, shuts the links' sockets
 * down, joins. Everything a link needs is opened and checked before any
 * thread starts, so a refusal is a startup error; after that the process
 * ends only on a signal. Logs are lines "TIMESTAMP LEVEL message".
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "node_metrics.h"
#include "node_status.h"

#include "qkd/error.h"
#include "qkd/log.h"
#include "qkd/node.h"
#include "qkd/node_config.h"
#include "qkd/node_kme.h"

static void log_write(void *ctx, enum qkd_log_level level, const char *line)
{
	struct node_daemon *d = ctx;
	struct node_logsink *l = &d->logsink;
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	pthread_mutex_lock(&l->lock);
	fprintf(l->f, "%s.%03ldZ %-5s %s\n", stamp, ts.tv_nsec / 1000000L,
		qkd_log_level_name(level), line);
	fflush(l->f);
	pthread_mutex_unlock(&l->lock);
}

static void help(void)
{
	printf("usage: qkd node --config FILE\n\n"
	       "Run one node: every link of FILE (docs/config.md) as a daemon that\n"
	       "distils key into the link's key store until SIGTERM or SIGINT.\n"
	       "`qkd status --node SOCKET` shows the links.\n");
}

static int parse(int argc, char **argv, const char **config)
{
	*config = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			help();
			return 1;
		}
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			*config = argv[++i];
			continue;
		}
		if (strcmp(argv[i], "--config") == 0)
			cli_error("--config", "missing file name");
		else
			cli_errorf("node", "unknown argument '%s' (see qkd node --help)", argv[i]);
		return -1;
	}
	if (*config == NULL) {
		cli_error("node", "--config FILE is required");
		return -1;
	}
	return 0;
}

/* Bind every link's listening socket and the status socket up front, so a
 * port in use is a startup error naming the link. */
static int bind_all(struct node_daemon *d, const char *config)
{
	for (size_t i = 0; i < d->cfg.nlinks; i++) {
		const char *why = NULL;

		if (qkd_link_ctx_init(&d->links[i], &d->cfg.links[i], &d->log, &d->stop) != QKD_OK) {
			cli_error("node", "out of memory");
			return -1;
		}
		d->nctx = i + 1;
		if (qkd_link_bind(&d->links[i], &why) != QKD_OK) {
			const struct qkd_link_config *l = &d->cfg.links[i];
			const struct qkd_node_addr *a = l->role == QKD_ROLE_ALICE ? &l->classical
										  : &l->fiber;

			fprintf(stderr, "qkd: %s:%u: link %s: %s: %s\n", config, l->line, l->name,
				a->text, why);
			return -1;
		}
		if (qkd_link_open(&d->links[i], &why) != QKD_OK) {
			const struct qkd_link_config *l = &d->cfg.links[i];

			fprintf(stderr, "qkd: %s:%u: link %s: %s: %s\n", config, l->line, l->name,
				l->store, why);
			return -1;
		}
	}
	return node_status_listen(d, config);
}

/* The key manager, when the file has a kme group: bound before any link
 * runs, so a port in use is a startup error. */
static int start_kme(struct node_daemon *d, const char *config,
		     struct qkd_node_kme_server **kme)
{
	const struct qkd_node_kme *k = &d->cfg.kme;
	const char *why = NULL;

	if (!k->enabled)
		return 0;
	if (qkd_node_kme_start(kme, &d->cfg, d->links, &d->log, &why) != QKD_OK) {
		fprintf(stderr, "qkd: %s:%u: kme: %s: %s\n", config, k->line, k->listen.text, why);
		return -1;
	}
	qkd_logf(&d->log, QKD_LOG_INFO, "node %s: key manager %s on https://%s",
		 d->cfg.name, k->id, k->listen.text);
	return 0;
}

static bool all_links_done(struct node_daemon *d)
{
	for (size_t i = 0; i < d->nctx; i++)
		if (!atomic_load(&d->done[i]))
			return false;
	return true;
}

/* Wait for SIGTERM/SIGINT: the links never end on their own. */
static void wait_for_stop(struct node_daemon *d, sigset_t *set)
{
	for (;;) {
		int sig = sigwaitinfo(set, NULL);

		if (sig == SIGTERM || sig == SIGINT) {
			qkd_logf(&d->log, QKD_LOG_INFO, "node %s: signal %d: stopping",
				 d->cfg.name, sig);
			return;
		}
	}
}

static void *link_main(void *arg)
{
	struct node_link_slot *s = arg;

	(void)qkd_link_thread(s->ctx);
	atomic_store(s->done, true);
	return NULL;
}

/* A link sees the stop flag between rounds. Give the round in progress
 * STOP_GRACE_S to end (both stores then agree on its block) before
 * cutting the sockets; a round cut in its commit leaves a PENDING block
 * that only the next connection settles (docs/node.md). */
#define STOP_GRACE_S 5

static void finish_rounds(struct node_daemon *d)
{
	struct timespec tick = { .tv_nsec = 50000000L };

	for (int i = 0; i < STOP_GRACE_S * 20 && !all_links_done(d); i++)
		while (nanosleep(&tick, &tick) != 0 && errno == EINTR)
			;
}

static int run(struct node_daemon *d, const char *config)
{
	struct node_link_slot slots[QKD_NODE_LINKS_MAX];
	pthread_t th[QKD_NODE_LINKS_MAX], st;
	size_t started = 0;
	bool status_started = false;
	sigset_t set;
	int failed = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Metrics before the link threads, so that a bad address is a startup
	 * error like every other; until they run it shows their first state. */
	if (bind_all(d, config) != 0 || start_kme(d, config, &d->kme) != 0 ||
	    node_metrics_start(d, config) != 0)
		return CLI_EXIT_FAIL;
	qkd_logf(&d->log, QKD_LOG_INFO, "node %s: starting %zu link(s), status on %s",
		 d->cfg.name, d->cfg.nlinks, d->cfg.status);
	for (; started < d->cfg.nlinks; started++) {
		slots[started].ctx = &d->links[started];
		slots[started].done = &d->done[started];
		if (pthread_create(&th[started], NULL, link_main, &slots[started]) != 0)
			break;
	}
	if (started == d->cfg.nlinks && pthread_create(&st, NULL, node_status_thread, d) == 0)
		status_started = true;
	if (status_started)
		wait_for_stop(d, &set);
	atomic_store(&d->stop, true);
	finish_rounds(d);
	for (size_t i = 0; i < started; i++)
		qkd_link_interrupt(&d->links[i]);
	for (size_t i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		failed |= d->links[i].result != QKD_OK;
	}
	if (status_started)
		pthread_join(st, NULL);
	/* Before the key manager, whose counters it reads. */
	node_metrics_stop(d);
	/* After the links: their end woke every enc_keys still waiting. */
	qkd_node_kme_stop(d->kme);
	d->kme = NULL;
	qkd_logf(&d->log, QKD_LOG_INFO, "node %s: stopped", d->cfg.name);
	return started == d->cfg.nlinks && status_started && !failed ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int cmd_node(int argc, char **argv)
{
	struct node_daemon *d;
	const char *config;
	char err[512];
	int rc;

	rc = parse(argc, argv, &config);
	if (rc != 0)
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	d = calloc(1, sizeof *d);
	if (d == NULL) {
		cli_error("node", "out of memory");
		return CLI_EXIT_FAIL;
	}
	d->status_fd = -1;
	if (qkd_node_config_load(config, &d->cfg, err, sizeof err) != QKD_OK) {
		fprintf(stderr, "qkd: %s\n", err);
		free(d);
		return CLI_EXIT_USAGE;
	}
	pthread_mutex_init(&d->logsink.lock, NULL);
	d->logsink.f = stderr;
	if (d->cfg.log_file[0] != '\0' && (d->logsink.f = fopen(d->cfg.log_file, "a")) == NULL) {
		cli_errorf(d->cfg.log_file, "%s", strerror(errno));
		free(d);
		return CLI_EXIT_FAIL;
	}
	d->log.write = log_write;
	d->log.ctx = d;
	d->log.level = d->cfg.log_level;
	rc = run(d, config);
	/* run's early returns (a startup error) leave these running. */
	node_metrics_stop(d);
	qkd_node_kme_stop(d->kme);
	node_status_close(d);
	for (size_t i = 0; i < d->nctx; i++)
		qkd_link_ctx_cleanup(&d->links[i]);
	if (d->logsink.f != stderr)
		fclose(d->logsink.f);
	pthread_mutex_destroy(&d->logsink.lock);
	free(d);
	return rc;
}
