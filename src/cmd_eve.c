/* cmd_eve.c - `qkd eve`: an eavesdropper on the fiber between two nodes
 * (DESIGN.md section 3 "Eve lives on the fiber"; docs/fiber.md s5).
 *
 *   qkd eve --listen HOST:PORT --forward HOST:PORT --attack SPEC [--log FILE]
 *
 * Alice's node connects to --listen as if it were Bob's fiber port; Eve
 * connects on to --forward (Bob's real one) and relays every fiber frame,
 * attacked (lib/optical/fiber_eve.c), and whatever Bob sends back, untouched.
 * One connection at a time; when either side closes she waits for the next.
 * Addresses are "A.B.C.D:PORT", "[IPV6]:PORT" or "localhost:PORT"
 * (qkd/netaddr.h, the node's own syntax): literals, never a name looked up,
 * so she never contacts anything the user did not name. Lines "TIMESTAMP LEVEL message" go to stderr or --log.
 * SIGTERM/SIGINT: the handler shuts the sockets down (async-signal-safe), so
 * a blocked read returns; she logs the totals and exits 0.
 *
 * Exit codes (cli.h): 0 stopped by a signal; 1 cannot listen or open the
 * log; 2 the command line is wrong.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "qkd/error.h"
#include "qkd/fiber.h"
#include "qkd/netaddr.h"
#include "qkd/optical.h"
#include "qkd/secret.h"
#include "qkd/sysutil.h"

#define CMD "eve"
#define IO_TIMEOUT_S 60		/* a peer silent mid-frame this long is dropped */
#define CONNECT_TRIES 50	/* Bob's port, 100 ms apart */
#define POLL_MS 200

enum opt_id { O_LISTEN = 256, O_FORWARD, O_ATTACK, O_LOG, O_HELP = 'h' };

static const struct option long_opts[] = {
	{ "listen", required_argument, NULL, O_LISTEN },
	{ "forward", required_argument, NULL, O_FORWARD },
	{ "attack", required_argument, NULL, O_ATTACK },
	{ "log", required_argument, NULL, O_LOG },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

struct eve_args {
	const char *listen, *forward, *attack, *log;
	struct qkd_netaddr listen_sa, forward_sa;
	enum qkd_eve_attack kind;
	double fraction;
};

/* Counters as Eve logs them; `sent` are the pulses passed on to Bob. */
struct tally {
	uint64_t frames, pulses, intercepted, tapped, sent;
};

static FILE *log_f;
/* The sockets a signal must shut down; -1 when none. Changed only with
 * the signals blocked, so the handler never sees a closed descriptor. */
static volatile sig_atomic_t sig_fd[3] = { -1, -1, -1 };
static volatile sig_atomic_t stop_flag;
static sigset_t stop_sigs;

static void help(void)
{
	fputs(
"usage: qkd eve --listen HOST:PORT --forward HOST:PORT --attack SPEC [--log FILE]\n"
"\n"
"Sit on the fiber between two nodes (docs/fiber.md): Alice's node connects\n"
"to --listen, Eve connects to --forward (Bob's fiber port) and relays each\n"
"photon frame with the attack applied. One connection at a time; SIGTERM or\n"
"SIGINT stops her and prints the totals.\n"
"\n"
"  --listen HOST:PORT    where Alice's node connects (port 0: any free port)\n"
"  --forward HOST:PORT   Bob's fiber port\n"
"                        HOST:PORT is A.B.C.D:PORT, [IPV6]:PORT (brackets\n"
"                        required) or localhost:PORT; no name is looked up\n"
"  --attack SPEC         intercept-resend:F  measure a fraction F of the pulses\n"
"                                            in a random basis and resend them\n"
"                        beamsplit:F         tap each photon with probability F\n"
"                        none                relay unchanged\n"
"  --log FILE            append the log there instead of standard error\n"
"\n"
"Exit status: 0 stopped by a signal, 1 cannot listen or open the log,\n"
"2 usage error.\n",
	      stdout);
}

/* ---- options ---- */

/* "HOST:PORT" (qkd/netaddr.h), port min_port..65535. */
static int parse_addr(const char *opt, const char *arg, unsigned min_port,
		      struct qkd_netaddr *sa)
{
	const char *why = NULL;

	if (qkd_netaddr_parse(arg, min_port == 0 ? QKD_NETADDR_PORT_ANY : 0, sa, &why) != QKD_OK) {
		cli_errorf(opt, "'%s' is not HOST:PORT: %s", arg, why);
		return -1;
	}
	return 0;
}

static int parse_attack(const char *arg, struct eve_args *a)
{
	struct qkd_link_params lp;
	const char *why = NULL;

	qkd_link_params_default(&lp);
	if (qkd_eve_parse(arg, &lp, &why) != QKD_OK) {
		cli_errorf("--attack", "%s: '%s'", why, arg);
		return -1;
	}
	if (lp.eve == QKD_EVE_PNS) {
		cli_error("--attack", "pns needs the link's parameters and is not available "
			  "on the fiber; use intercept-resend:F or beamsplit:F");
		return -1;
	}
	a->kind = lp.eve;
	a->fraction = lp.eve_fraction;
	return 0;
}

static int one_opt(int c, const char *arg, void *ctx)
{
	struct eve_args *a = ctx;

	switch (c) {
	case O_LISTEN:
		a->listen = arg;
		return parse_addr("--listen", arg, 0, &a->listen_sa);
	case O_FORWARD:
		a->forward = arg;
		return parse_addr("--forward", arg, 1, &a->forward_sa);
	case O_ATTACK:
		a->attack = arg;
		return parse_attack(arg, a);
	case O_LOG:
		if (*arg == '\0') {
			cli_error("--log", "empty file name");
			return -1;
		}
		a->log = arg;
		return 0;
	default:
		return -1;
	}
}

/* 0: run; 1: --help printed; -1: usage error printed. */
static int parse_args(int argc, char **argv, struct eve_args *a)
{
	int rc;

	memset(a, 0, sizeof *a);
	rc = cli_getopts(CMD, argc, argv, long_opts, O_HELP, help, one_opt, a);
	if (rc != 0)
		return rc;
	if (a->listen == NULL || a->forward == NULL || a->attack == NULL) {
		cli_errorf(CMD, "missing %s (see 'qkd eve --help')",
			   a->listen == NULL ? "--listen" : a->forward == NULL ? "--forward"
										: "--attack");
		return -1;
	}
	return 0;
}

/* ---- log ---- */

static void elog(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void elog(const char *level, const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32], line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(log_f, "%s.%03ldZ %-5s %s\n", stamp, ts.tv_nsec / 1000000L, level, line);
	fflush(log_f);
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole > 0 ? 100.0 * (double)part / (double)whole : 0.0;
}

static void log_tally(const char *what, const struct tally *t)
{
	elog("info", "%s: frames %" PRIu64 ", pulses %" PRIu64 ", intercepted %" PRIu64
	     " (%.2f%%), photons tapped %" PRIu64 ", pulses to bob %" PRIu64,
	     what, t->frames, t->pulses, t->intercepted, pct(t->intercepted, t->pulses),
	     t->tapped, t->sent);
}

static void tally_add(struct tally *t, const struct tally *d)
{
	t->frames += d->frames;
	t->pulses += d->pulses;
	t->intercepted += d->intercepted;
	t->tapped += d->tapped;
	t->sent += d->sent;
}

/* ---- signals and sockets ---- */

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
	for (int i = 0; i < 3; i++)
		if (sig_fd[i] >= 0)
			(void)shutdown(sig_fd[i], SHUT_RDWR);
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;	/* no SA_RESTART: poll and accept return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&stop_sigs);
	sigaddset(&stop_sigs, SIGTERM);
	sigaddset(&stop_sigs, SIGINT);
}

/* Register (fd >= 0) or close and forget slot i's socket. */
static void track_fd(int i, int fd)
{
	sigset_t old;

	sigprocmask(SIG_BLOCK, &stop_sigs, &old);
	if (fd < 0 && sig_fd[i] >= 0)
		close(sig_fd[i]);
	sig_fd[i] = fd;
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	int one = 1;

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* The listening socket, or -1 after printing "qkd: --listen: ...". */
static int listen_on(const struct eve_args *a)
{
	int fd = -1;

	if (qkd_netaddr_listen(&a->listen_sa, SOCK_CLOEXEC, 4, &fd) != QKD_OK) {
		cli_errorf("--listen", "%s: %s", a->listen, strerror(errno));
		return -1;
	}
	return fd;
}

static void nap_100ms(void)
{
	struct timespec ts = { .tv_nsec = 100000000L };

	nanosleep(&ts, NULL);	/* a signal cuts it short: the caller checks */
}

/* Bob's fiber port, retried for a few seconds (his node may be starting).
 * On failure *err is the last errno of socket/connect. */
static int connect_bob(const struct eve_args *a, int *err)
{
	*err = 0;
	for (int i = 0; i < CONNECT_TRIES && !stop_flag; i++) {
		int fd = -1;

		if (qkd_netaddr_socket(&a->forward_sa, SOCK_CLOEXEC, &fd) != QKD_OK) {
			*err = errno;
			break;
		}
		if (connect(fd, (const struct sockaddr *)&a->forward_sa.ss, a->forward_sa.len) == 0) {
			set_timeouts(fd);
			return fd;
		}
		*err = errno;
		close(fd);
		nap_100ms();
	}
	return -1;
}

/* ---- the relay ---- */

/* Alice's next frame through the attack to Bob; *d gets its counts, *who
 * the side that failed. */
static int relay_frame(int alice, int bob, struct qkd_fiber_eve *eve,
		       struct qkd_fiber_frame *f, struct tally *d, const char **who)
{
	struct qkd_fiber_eve_stats s0, s1;
	int rc = qkd_fiber_recv(alice, f);

	*who = "alice";
	if (rc != QKD_OK)
		return rc;
	qkd_fiber_eve_stats(eve, &s0);
	rc = qkd_fiber_eve_apply(eve, f);
	if (rc == QKD_OK && (rc = qkd_fiber_send(bob, f)) != QKD_OK)
		*who = "bob";
	qkd_fiber_eve_stats(eve, &s1);
	d->frames = 1;
	d->pulses = s1.pulses - s0.pulses;
	d->intercepted = s1.intercepted - s0.intercepted;
	d->tapped = s1.photons_tapped - s0.photons_tapped;
	d->sent = rc == QKD_OK ? f->n : 0;
	return rc;
}

/* The connection's hello (qkd/fiber.h) goes to Bob unchanged: it binds the
 * fiber to its classical session, and a tap on the fiber passes it on. */
static int relay_hello(int alice, int bob, const char **who)
{
	uint8_t hello[QKD_FIBER_HELLO_LEN];
	int rc = qkd_read_all(alice, hello, sizeof hello);

	*who = "alice";
	if (rc == QKD_OK && (rc = qkd_write_all(bob, hello, sizeof hello)) != QKD_OK)
		*who = "bob";
	return rc;
}

/* Whatever Bob sends goes back to Alice unchanged. */
static int relay_back(int bob, int alice)
{
	uint8_t buf[16384];
	ssize_t n = read(bob, buf, sizeof buf);

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? QKD_OK : QKD_ERR_IO;
	if (n == 0)
		return QKD_ERR_EOF;
	return qkd_write_all(alice, buf, (size_t)n);
}

/* One frame's worth of events on the connection; *who names the side
 * whose socket ended it. */
static int relay_step(int alice, int bob, struct qkd_fiber_eve *eve,
		      struct qkd_fiber_frame *f, struct tally *conn, struct tally *round,
		      const char **who)
{
	struct pollfd p[2] = { { .fd = alice, .events = POLLIN }, { .fd = bob, .events = POLLIN } };
	struct tally d = { 0 };
	int rc = QKD_OK;

	if (poll(p, 2, POLL_MS) <= 0)
		return QKD_OK;	/* a timeout, or a signal: the caller checks */
	if (p[1].revents != 0) {
		rc = relay_back(bob, alice);
		*who = "bob";
	}
	if (rc == QKD_OK && p[0].revents != 0) {
		rc = relay_frame(alice, bob, eve, f, &d, who);
		tally_add(conn, &d);
		tally_add(round, &d);
		if (rc == QKD_OK && f->last) {
			char what[48];

			snprintf(what, sizeof what, "round %" PRIu64, f->round);
			log_tally(what, round);
			memset(round, 0, sizeof *round);
		}
	}
	return rc;
}

static void log_end(int rc, const char *who)
{
	if (stop_flag)
		elog("info", "connection closed (stopping)");
	else if (rc == QKD_ERR_EOF)
		elog("info", "connection closed by %s", who);
	else
		elog("warn", "connection closed: %s: %s", who, qkd_strerror(rc));
}

/* Relay between alice and Bob until either closes or a signal arrives. */
static void serve(const struct eve_args *a, int alice, struct qkd_fiber_eve *eve,
		  struct tally *total)
{
	struct tally conn = { 0 }, round = { 0 };
	struct qkd_fiber_frame f;
	char where[QKD_NETADDR_STR_MAX];
	const char *who = "alice";
	int bob, err, rc = QKD_OK;

	qkd_fiber_frame_init(&f);
	bob = connect_bob(a, &err);
	if (bob < 0) {
		elog("error", "cannot connect to %s: %s; closing Alice's connection",
		     qkd_netaddr_str(&a->forward_sa, where), stop_flag ? "stopping" :
		     strerror(err));
		goto out;
	}
	track_fd(2, bob);
	elog("info", "connected to bob at %s", qkd_netaddr_str(&a->forward_sa, where));
	rc = relay_hello(alice, bob, &who);
	while (rc == QKD_OK && !stop_flag)
		rc = relay_step(alice, bob, eve, &f, &conn, &round, &who);
	log_end(rc, who);
	log_tally("connection", &conn);
	tally_add(total, &conn);
out:
	track_fd(2, -1);
	qkd_fiber_frame_cleanup(&f);
}

/* Accept Alice's connections one at a time until a signal. */
static void accept_loop(const struct eve_args *a, int lfd, struct qkd_fiber_eve *eve,
			struct tally *total, uint64_t *connections)
{
	while (!stop_flag) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		struct sockaddr_storage peer;
		struct qkd_netaddr from;
		socklen_t pl = sizeof peer;
		char who[QKD_NETADDR_STR_MAX];
		int fd;

		if (poll(&p, 1, POLL_MS) <= 0)
			continue;
		fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				nap_100ms();	/* e.g. out of descriptors: do not spin */
			continue;
		}
		set_timeouts(fd);
		track_fd(1, fd);
		(*connections)++;
		if (qkd_netaddr_from_sockaddr((const struct sockaddr *)&peer, pl, &from) != QKD_OK)
			memset(&from, 0, sizeof from);	/* printed as "(none)" */
		elog("info", "connection from %s", qkd_netaddr_str(&from, who));
		serve(a, fd, eve, total);
		track_fd(1, -1);
	}
}

static int open_log(const struct eve_args *a)
{
	log_f = stderr;
	if (a->log != NULL && (log_f = fopen(a->log, "a")) == NULL) {
		log_f = stderr;
		cli_errorf("--log", "%s: %s", a->log, strerror(errno));
		return -1;
	}
	return 0;
}

static int run(const struct eve_args *a)
{
	uint8_t key[QKD_FIBER_KEY_BYTES];
	struct qkd_fiber_eve *eve = NULL;
	struct tally total = { 0 };
	uint64_t connections = 0;
	struct sockaddr_storage bound;
	struct qkd_netaddr here_sa;
	socklen_t bl = sizeof bound;
	char here[QKD_NETADDR_STR_MAX], there[QKD_NETADDR_STR_MAX];
	int lfd, rc = CLI_EXIT_FAIL;

	qkd_fiber_key_random(key);
	if (qkd_fiber_eve_new(&eve, a->kind, a->fraction, key) != QKD_OK) {
		cli_error(CMD, "cannot set up the attack");
		goto out;
	}
	lfd = listen_on(a);
	if (lfd < 0)
		goto out;
	track_fd(0, lfd);
	/* The port the kernel chose for port 0. */
	if (getsockname(lfd, (struct sockaddr *)&bound, &bl) != 0 ||
	    qkd_netaddr_from_sockaddr((const struct sockaddr *)&bound, bl, &here_sa) != QKD_OK)
		here_sa = a->listen_sa;
	elog("info", "listening on %s, forwarding to %s, attack %s",
	     qkd_netaddr_str(&here_sa, here), qkd_netaddr_str(&a->forward_sa, there), a->attack);
	accept_loop(a, lfd, eve, &total, &connections);
	track_fd(0, -1);
	elog("info", "stopped: connections %" PRIu64 ", frames %" PRIu64 ", pulses %" PRIu64
	     ", intercepted %" PRIu64 " (%.2f%%), photons tapped %" PRIu64 ", pulses to bob %"
	     PRIu64, connections, total.frames, total.pulses, total.intercepted,
	     pct(total.intercepted, total.pulses), total.tapped, total.sent);
	rc = CLI_EXIT_OK;
out:
	qkd_wipe(key, sizeof key);
	qkd_fiber_eve_free(eve);
	return rc;
}

int cmd_eve(int argc, char **argv)
{
	struct eve_args a;
	int rc = parse_args(argc, argv, &a);

	if (rc != 0)
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	install_signals();
	if (open_log(&a) != 0)
		return CLI_EXIT_FAIL;
	rc = run(&a);
	if (log_f != stderr)
		fclose(log_f);
	return rc;
}
