/* qkd netmap - draw the network a node knows (docs/relay.md "Network map").
 *
 * The status JSON comes from the node's status socket (status_client.c,
 * as `qkd status` asks) or from a file saved from `qkd status --json`.
 * libqkd turns its relay object into dot source (qkd/netmap.h); this file
 * writes that source, or pipes it through graphviz's `dot` for svg or png.
 * dot is found on PATH and run with posix_spawnp, never through a shell.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "status_client.h"

#include "qkd/error.h"
#include "qkd/netmap.h"
#include "qkd/sysutil.h"

extern char **environ;

struct netmap_opts {
	const char *node;	/* --node SOCKET */
	const char *status;	/* --status FILE */
	const char *out;	/* --out FILE; NULL: stdout */
	const char *format;	/* svg, png or dot; NULL: from --out's suffix, else svg */
};

static void help(void)
{
	printf("usage: qkd netmap (--node SOCKET | --status FILE) [--out FILE]\n"
	       "                  [--format svg|png|dot]\n\n"
	       "Draw the whole network the node knows from its link-state database: one\n"
	       "box per node (its id and SAEs), one line per link with both ends' reports\n"
	       "merged: green up, red alarmed, grey dashed down; wider with more key\n"
	       "available; bold on the node's own routes; labelled with QBER and key.\n\n"
	       "  --node SOCKET   ask the running node (its `status` socket)\n"
	       "  --status FILE   read a saved `qkd status --json` instead\n"
	       "  --out FILE      write here (default: standard output)\n"
	       "  --format F      svg (default), png (both need graphviz's dot) or dot;\n"
	       "                  without it, a FILE ending in .dot, .gv or .png sets it\n");
}

static int one_opt(int c, const char *arg, void *ctx)
{
	struct netmap_opts *o = ctx;

	switch (c) {
	case 'n': o->node = arg; break;
	case 's': o->status = arg; break;
	case 'o': o->out = arg; break;
	case 'f':
		if (strcmp(arg, "svg") != 0 && strcmp(arg, "png") != 0 && strcmp(arg, "dot") != 0) {
			cli_errorf("--format", "'%s' is not svg, png or dot", arg);
			return -1;
		}
		o->format = arg;
		break;
	default: return -1;
	}
	return 0;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), k = strlen(tail);

	return n >= k && strcmp(s + n - k, tail) == 0;
}

static const char *format_of(const struct netmap_opts *o)
{
	if (o->format != NULL)
		return o->format;
	if (o->out != NULL && (ends_with(o->out, ".dot") || ends_with(o->out, ".gv")))
		return "dot";
	if (o->out != NULL && ends_with(o->out, ".png"))
		return "png";
	return "svg";
}

/* The status JSON from the socket or the file, or NULL after an error. */
static char *load(const struct netmap_opts *o, size_t *len)
{
	char why[256];
	char *buf;
	FILE *f;

	if (o->node != NULL) {
		buf = status_client_ask(o->node, len, why, sizeof why);
		if (buf == NULL)
			cli_errorf("netmap", "%s: %s", o->node, why);
		return buf;
	}
	f = fopen(o->status, "rb");
	if (f == NULL) {
		cli_errorf("netmap", "%s: %s", o->status, strerror(errno));
		return NULL;
	}
	buf = malloc(QKD_NETMAP_JSON_MAX + 1);
	*len = buf == NULL ? 0 : fread(buf, 1, QKD_NETMAP_JSON_MAX + 1, f);
	if (buf == NULL || ferror(f) || *len > QKD_NETMAP_JSON_MAX) {
		cli_errorf("netmap", "%s: %s", o->status, buf == NULL ? "out of memory"
			   : ferror(f) ? "read error" : "larger than 16 MiB");
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* Write the dot text to --out, or to stdout. */
static int write_dot(const char *out, const char *text, size_t len)
{
	FILE *f = out == NULL ? stdout : fopen(out, "w");
	int bad;

	if (f == NULL) {
		cli_errorf("netmap", "%s: %s", out, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	bad = fwrite(text, 1, len, f) != len;
	bad |= out == NULL ? fflush(f) != 0 : fclose(f) != 0;
	if (bad) {
		cli_errorf("netmap", "%s: write error", out == NULL ? "standard output" : out);
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}

/* Whether an executable named name is in a directory of PATH. Checked
 * before spawning: where posix_spawnp cannot report a failed exec (some
 * libcs, valgrind), the child would only exit 127. */
static bool on_path(const char *name)
{
	const char *path = getenv("PATH"), *p, *end;
	char full[4096];

	if (path == NULL)
		path = "/usr/bin:/bin";
	for (p = path; ; p = end + 1) {
		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		if (snprintf(full, sizeof full, "%.*s/%s", (int)(end - p), end == p ? "." : p,
			     name) < (int)sizeof full && access(full, X_OK) == 0)
			return true;
		if (*end == '\0')
			return false;
	}
}

/* Pipe text through `dot -T FORMAT [-o OUT]` and wait for it. */
static int run_dot(const char *format, const char *out, const char *text, size_t len)
{
	char tflag[8];
	char *argv[] = { "dot", tflag, out ? "-o" : NULL, (char *)out, NULL };
	posix_spawn_file_actions_t fa;
	int pfd[2], rc, status = 0;
	pid_t pid;

	snprintf(tflag, sizeof tflag, "-T%s", format);
	if (!on_path("dot")) {
		cli_error("netmap", "graphviz 'dot' not found (apt-get install graphviz)");
		return CLI_EXIT_FAIL;
	}
	if (pipe(pfd) != 0) {
		cli_errorf("netmap", "pipe: %s", strerror(errno));
		return CLI_EXIT_FAIL;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[0], STDIN_FILENO);
	posix_spawn_file_actions_addclose(&fa, pfd[0]);
	posix_spawn_file_actions_addclose(&fa, pfd[1]);
	rc = posix_spawnp(&pid, "dot", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[0]);
	if (rc != 0) {
		close(pfd[1]);
		if (rc == ENOENT)
			cli_error("netmap", "graphviz 'dot' not found (apt-get install graphviz)");
		else
			cli_errorf("netmap", "cannot run graphviz 'dot': %s", strerror(rc));
		return CLI_EXIT_FAIL;
	}
	signal(SIGPIPE, SIG_IGN);	/* dot dying early is reported by its status */
	rc = qkd_write_all(pfd[1], text, len);
	close(pfd[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || rc != QKD_OK) {
		cli_errorf("netmap", "graphviz 'dot -T%s' failed (exit %d)", format,
			   WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}

/* Parse the status, render it, write it. */
static int draw(const struct netmap_opts *o, const char *json, size_t len)
{
	const char *src = o->node != NULL ? o->node : o->status;
	struct qkd_netmap *m = NULL;
	char why[512], *text = NULL;
	size_t tlen = 0;
	int rc = CLI_EXIT_FAIL;

	if (qkd_netmap_parse(json, len, &m, why, sizeof why) != QKD_OK) {
		cli_errorf("netmap", "%s: %s", src, why);
		goto out;
	}
	if (qkd_netmap_dot(m, &text, &tlen) != QKD_OK) {
		cli_error("netmap", "out of memory");
		goto out;
	}
	if (strcmp(format_of(o), "dot") == 0)
		rc = write_dot(o->out, text, tlen);
	else
		rc = run_dot(format_of(o), o->out, text, tlen);
out:
	free(text);
	qkd_netmap_free(m);
	return rc;
}

int cmd_netmap(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "node", required_argument, NULL, 'n' },
		{ "status", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct netmap_opts o = { 0 };
	size_t len = 0;
	char *json;
	int rc;

	rc = cli_getopts("netmap", argc, argv, opts, 'h', help, one_opt, &o);
	if (rc != 0)
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	if ((o.node == NULL) == (o.status == NULL)) {
		cli_error("netmap", "give one of --node SOCKET and --status FILE");
		return CLI_EXIT_USAGE;
	}
	json = load(&o, &len);
	if (json == NULL)
		return CLI_EXIT_FAIL;
	rc = draw(&o, json, len);
	free(json);
	return rc;
}
