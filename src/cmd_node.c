/* qkd node - the link daemon of one node (docs/node.md).
 *
 * The node object (qkd/node.h, lib/node/node.c) owns the links, their
 * threads and the key manager; this file is the process around it: the
 * arguments, the configuration, the log sink, the status socket and the
 * metrics endpoint (node_status.c, node_metrics.c, which read the node
 * only through its accessors), and the main thread, which waits for
 * SIGTERM/SIGINT (blocked everywhere else) and then stops the node.
 * Everything is opened and checked before any thread starts, so a refusal
 * is a startup error; after that the process ends only on a signal. Logs
 * are lines "TIMESTAMP LEVEL message".
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "node_metrics.h"
#include "node_status.h"

#include "qkd/error.h"
#include "qkd/log.h"
#include "qkd/node.h"
#include "qkd/node_config.h"

static void help(void)
{
	printf("usage: qkd node --config FILE [--check]\n\n"
	       "Run one node: every link of FILE (docs/config.md) as a daemon that\n"
	       "distils key into the link's key store until SIGTERM or SIGINT.\n"
	       "`qkd status --node SOCKET` shows the links.\n\n"
	       "  --check   load and check FILE as a start would (syntax, values, paths,\n"
	       "            key files), print one line and exit: nothing is bound or opened\n");
}

static int parse(int argc, char **argv, const char **config, bool *check)
{
	*config = NULL;
	*check = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			help();
			return 1;
		}
		if (strcmp(argv[i], "--check") == 0) {
			*check = true;
			continue;
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

/* The node (its links, then its key manager), the status socket and the
 * metrics endpoint, all bound up front: a port in use is a startup error
 * naming its configuration line. Metrics last, so that a bad address is a
 * startup error like every other; until the links run it shows their
 * first state. */
static int open_all(struct node_daemon *d, const char *config)
{
	struct qkd_node_error err;

	if (qkd_node_new(&d->node, &d->cfg, &d->log, &err) != QKD_OK) {
		if (err.line > 0)
			fprintf(stderr, "qkd: %s:%u: %s\n", config, err.line, err.text);
		else
			cli_error("node", err.text);
		return -1;
	}
	if (node_status_listen(d, config) != 0 || node_metrics_start(d, config) != 0)
		return -1;
	return 0;
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

static int run(struct node_daemon *d, const char *config)
{
	pthread_t st;
	bool status_started = false;
	sigset_t set;
	int rc;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (open_all(d, config) != 0)
		return CLI_EXIT_FAIL;
	rc = qkd_node_start(d->node);
	if (rc == QKD_OK && pthread_create(&st, NULL, node_status_thread, d) == 0)
		status_started = true;
	if (status_started)
		wait_for_stop(d, &set);
	/* Also ends the status thread (qkd_node_stopping). */
	if (qkd_node_stop(d->node) != QKD_OK)
		rc = QKD_ERR_IO;
	if (status_started)
		pthread_join(st, NULL);
	return rc == QKD_OK && status_started ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int cmd_node(int argc, char **argv)
{
	struct node_daemon *d;
	const char *config;
	char err[512];
	bool check;
	int rc;

	rc = parse(argc, argv, &config, &check);
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
	if (check) {
		/* The checks a start makes before it binds anything (docs/config.md):
		 * generated configurations (examples/relay/) are tested this way. */
		printf("%s: node %s: %zu link(s), %s\n", config, d->cfg.id, d->cfg.nlinks,
		       d->cfg.kme.enabled ? "a key manager" : "no key manager");
		free(d);
		return CLI_EXIT_OK;
	}
	if (logsink_open(&d->logsink, d->cfg.log_file, d->cfg.log_level, &d->log) != 0) {
		free(d);
		return CLI_EXIT_FAIL;
	}
	rc = run(d, config);
	/* Before the node, whose key manager's counters it reads; also after
	 * run's early returns (a startup error). */
	node_metrics_stop(d);
	node_status_close(d);
	qkd_node_free(d->node);
	logsink_close(&d->logsink);
	free(d);
	return rc;
}
