/* hostile - hostile peers for the integration tests (tests/integration/
 * hostile.sh, kme_http.sh): each subcommand is one kind of abuse of a node,
 * bounded in count and in time, and aimed at loopback addresses only
 * (127.0.0.0/8, and ::1 for IPv6), never anything else. HOST:PORT is
 * qkd/netaddr.h's syntax with such a HOST: 127.0.0.1:PORT, localhost:PORT,
 * [::1]:PORT; ADDR is one without port or brackets (127.0.0.2, ::1), of
 * the family of HOST.
 *
 *   hostile kme-idle --connect HOST:PORT --source ADDR --conns N --seconds S
 *   hostile idle     (the same)
 *       Holds N TCP connections from ADDR to HOST:PORT and says nothing on
 *       them (no TLS ClientHello, no handshake), reopening each as soon as
 *       the server closes it, for S seconds: a stranger who fills the key
 *       manager's connection slots, or sits in a link's accept queue. Then
 *       prints one line of counts on stdout and exits 0:
 *         kme-idle: conns N seconds S opened O closed_by_peer C failed F
 *                   open_at_end E open_max M
 *
 *   hostile stray --connect HOST:PORT --count N [--garbage]
 *       N connections that close at once (a port scanner, a TCP health
 *       check), or that send a few bytes of garbage first.
 *
 *   hostile sync --connect HOST:PORT --jump N
 *       A stranger at Alice's classical port who knows the handshake but not
 *       the link's key: HELLO, then a SYNC whose gate MAC is made up and whose
 *       AUTH index is N, then a made-up AUTH frame. Prints how far it got.
 *   hostile sync --config BOB.CONF --jump N [--bad-tag]
 *       Bob's own authentication state (a copy of STORE.auth, which the
 *       tool never writes back), so the gate passes: the SYNC claims an
 *       index N above Bob's next one, and with --bad-tag the first AUTH
 *       frame (RECOVER's) carries a wrong tag. Prints how far it got.
 *
 *   hostile rot --store PATH --block ID
 *       Flips one bit of block ID's stored bits in a stopped store, behind
 *       SQLite's back, as bit rot on the disk would.
 *
 * Errors go to stderr as "hostile: <what>: <why>", with exit status 1 (2 for
 * a usage error). To add a subcommand, write `static int cmd_NAME(int argc,
 * char **argv)` (argv[0] is the subcommand's name) and add a row to
 * `commands` in main.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "../../lib/node/node_int.h"
#include "qkd/error.h"
#include "qkd/fiber.h"
#include "qkd/msg.h"
#include "qkd/netaddr.h"
#include "qkd/sysutil.h"

#define CONNS_MAX 4096
#define SECONDS_MAX 600
/* A slot whose connect failed waits this long before it tries again. */
#define RETRY_MS 20

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24	/* linux/in.h */
#endif

static int fail(const char *what, const char *why)
{
	fprintf(stderr, "hostile: %s: %s\n", what, why);
	return 1;
}

static int usage_error(const char *what, const char *why)
{
	fail(what, why);
	return 2;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A decimal in 1..max. */
static int parse_count(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* A loopback address without port: an IPv4 literal in 127.0.0.0/8, the
 * IPv6 literal ::1 (no brackets) or localhost. These tools never aim
 * anywhere else. */
static int parse_loopback(const char *s, struct qkd_netaddr *a)
{
	if (s == NULL || qkd_netaddr_from_host(s, 0, a, NULL) != QKD_OK ||
	    !qkd_netaddr_is_loopback(a))
		return -1;
	return 0;
}

/* "HOST:PORT" (qkd/netaddr.h: "[::1]:PORT" for IPv6) with HOST a loopback
 * address as above and PORT 1..65535. */
static int parse_target(const char *s, struct qkd_netaddr *sa)
{
	if (s == NULL || qkd_netaddr_parse(s, 0, sa, NULL) != QKD_OK ||
	    !qkd_netaddr_is_loopback(sa))
		return -1;
	return 0;
}

#define TARGET_RULE "not HOST:PORT with HOST in 127.0.0.0/8 or [::1]"

/* ---- kme-idle ---- */

enum slot_state { SLOT_CLOSED, SLOT_CONNECTING, SLOT_OPEN };

struct slot {
	int fd;
	enum slot_state st;
	long retry_at;		/* SLOT_CLOSED: when to try again (ms) */
};

struct idle {
	struct qkd_netaddr to, from;	/* one family */
	unsigned long conns, seconds;
	struct slot *slots;
	struct pollfd *pfd;
	size_t *pidx;		/* pfd[i] belongs to slots[pidx[i]] */
	unsigned long opened, closed_by_peer, failed, open_now, open_max;
};

static void slot_close(struct idle *t, struct slot *s, long retry_at)
{
	if (s->st == SLOT_OPEN)
		t->open_now--;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->st = SLOT_CLOSED;
	s->retry_at = retry_at;
}

/* Start a non-blocking connect from t->from (any port) to t->to. A failure
 * that a retry may cure (no free port, refused) only counts; anything else
 * is fatal. */
static int slot_open(struct idle *t, struct slot *s, long now)
{
	static const int one = 1;
	int fd = -1;

	if (qkd_netaddr_socket(&t->to, SOCK_NONBLOCK | SOCK_CLOEXEC, &fd) != QKD_OK)
		return fail("socket", strerror(errno));
	/* The port is picked at connect, per destination: a long run does not
	 * exhaust the ephemeral ports of the source address. */
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
	if (bind(fd, (const struct sockaddr *)&t->from.ss, t->from.len) != 0) {
		close(fd);
		return fail("bind to the source address", strerror(errno));
	}
	s->fd = fd;
	if (connect(fd, (const struct sockaddr *)&t->to.ss, t->to.len) == 0) {
		s->st = SLOT_OPEN;
		t->opened++;
		if (++t->open_now > t->open_max)
			t->open_max = t->open_now;
	} else if (errno == EINPROGRESS) {
		s->st = SLOT_CONNECTING;
	} else {
		t->failed++;
		slot_close(t, s, now + RETRY_MS);
	}
	return 0;
}

/* The connect finished, one way or the other. */
static void slot_connected(struct idle *t, struct slot *s, long now)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
		t->failed++;
		slot_close(t, s, now + RETRY_MS);
		return;
	}
	s->st = SLOT_OPEN;
	t->opened++;
	if (++t->open_now > t->open_max)
		t->open_max = t->open_now;
}

/* Something to read on an open connection: the server's close (or a TLS
 * alert before it). Whatever it sent is dropped. */
static void slot_readable(struct idle *t, struct slot *s, long now)
{
	char buf[512];
	ssize_t n = recv(s->fd, buf, sizeof buf, 0);

	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
		return;
	t->closed_by_peer++;
	slot_close(t, s, now);
}

/* pfd[] for the slots with a socket; the next retry time bounds the wait. */
static size_t idle_fill(struct idle *t, long now, long *wait_ms)
{
	size_t n = 0;

	for (size_t i = 0; i < t->conns; i++) {
		struct slot *s = &t->slots[i];

		if (s->st == SLOT_CLOSED) {
			if (s->retry_at - now < *wait_ms)
				*wait_ms = s->retry_at - now > 0 ? s->retry_at - now : 0;
			continue;
		}
		t->pfd[n] = (struct pollfd){ .fd = s->fd,
			.events = s->st == SLOT_CONNECTING ? POLLOUT : POLLIN };
		t->pidx[n++] = i;
	}
	return n;
}

static int idle_round(struct idle *t, long end)
{
	long now = now_ms(), wait_ms = end - now;
	size_t n;
	int rc;

	for (size_t i = 0; i < t->conns; i++)
		if (t->slots[i].st == SLOT_CLOSED && t->slots[i].retry_at <= now &&
		    (rc = slot_open(t, &t->slots[i], now)) != 0)
			return rc;
	n = idle_fill(t, now, &wait_ms);
	if (poll(t->pfd, n, (int)(wait_ms > 0 ? wait_ms : 0)) < 0 && errno != EINTR)
		return fail("poll", strerror(errno));
	now = now_ms();
	for (size_t i = 0; i < n; i++) {
		struct slot *s = &t->slots[t->pidx[i]];

		if (t->pfd[i].revents == 0)
			continue;
		if (s->st == SLOT_CONNECTING)
			slot_connected(t, s, now);
		else
			slot_readable(t, s, now);
	}
	return 0;
}

static int idle_run(struct idle *t)
{
	long end = now_ms() + (long)t->seconds * 1000;
	int rc = 0;

	t->slots = calloc(t->conns, sizeof *t->slots);
	t->pfd = calloc(t->conns, sizeof *t->pfd);
	t->pidx = calloc(t->conns, sizeof *t->pidx);
	if (t->slots == NULL || t->pfd == NULL || t->pidx == NULL) {
		rc = fail("kme-idle", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < t->conns; i++)
		t->slots[i] = (struct slot){ .fd = -1, .st = SLOT_CLOSED, .retry_at = 0 };
	while (rc == 0 && now_ms() < end)
		rc = idle_round(t, end);
	if (rc == 0)
		printf("kme-idle: conns %lu seconds %lu opened %lu closed_by_peer %lu failed %lu "
		       "open_at_end %lu open_max %lu\n", t->conns, t->seconds, t->opened,
		       t->closed_by_peer, t->failed, t->open_now, t->open_max);
out:
	for (size_t i = 0; t->slots != NULL && i < t->conns; i++)
		if (t->slots[i].fd >= 0)
			close(t->slots[i].fd);
	free(t->slots);
	free(t->pfd);
	free(t->pidx);
	return rc;
}

/* One descriptor per connection, and a few for stdio: check the limit
 * first rather than fail half way. */
static int check_nofile(unsigned long conns)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return fail("getrlimit", strerror(errno));
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < conns + 16) {
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < conns + 16)
			return fail("--conns", "more than the descriptor limit (ulimit -n) allows");
		rl.rlim_cur = conns + 16;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			return fail("setrlimit", strerror(errno));
	}
	return 0;
}

static int idle_opts(struct idle *t, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "source", required_argument, NULL, 's' },
		{ "conns", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_to = false, have_from = false;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (parse_target(optarg, &t->to) != 0)
				return usage_error("--connect", TARGET_RULE);
			have_to = true;
			break;
		case 's':
			if (parse_loopback(optarg, &t->from) != 0)
				return usage_error("--source", "not an address in 127.0.0.0/8 or ::1");
			have_from = true;
			break;
		case 'n':
			if (parse_count(optarg, CONNS_MAX, &t->conns) != 0)
				return usage_error("--conns", "not a number in 1..4096");
			break;
		case 't':
			if (parse_count(optarg, SECONDS_MAX, &t->seconds) != 0)
				return usage_error("--seconds", "not a number in 1..600");
			break;
		default:
			return usage_error("kme-idle", "unknown option or missing value (usage: "
					   "hostile kme-idle --connect HOST:PORT --source ADDR "
					   "--conns N --seconds S)");
		}
	}
	if (optind != argc || !have_to || !have_from || t->conns == 0 || t->seconds == 0)
		return usage_error("kme-idle", "--connect, --source, --conns and --seconds are "
				   "all required");
	if (qkd_netaddr_family(&t->from) != qkd_netaddr_family(&t->to))
		return usage_error("--source", "not of --connect's family (IPv4 or IPv6)");
	return 0;
}

static int cmd_kme_idle(int argc, char **argv)
{
	struct idle t = { .conns = 0 };
	int rc;

	if ((rc = idle_opts(&t, argc, argv)) != 0)
		return rc;
	if (check_nofile(t.conns) != 0)
		return 1;
	return idle_run(&t);
}

/* ---- stray ---- */

static int tcp_connect(const struct qkd_netaddr *to)
{
	int fd = -1;

	if (qkd_netaddr_socket(to, SOCK_CLOEXEC, &fd) == QKD_OK &&
	    connect(fd, (const struct sockaddr *)&to->ss, to->len) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int cmd_stray(int argc, char **argv)
{
	static const char junk[] = "GET / HTTP/1.0\r\n\r\n\x00\xff garbage";
	struct qkd_netaddr to;
	unsigned long count = 0, made = 0;
	bool garbage = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc) {
			if (parse_target(argv[++i], &to) != 0)
				return usage_error("--connect", TARGET_RULE);
		} else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			if (parse_count(argv[++i], CONNS_MAX, &count) != 0)
				return usage_error("--count", "not a number in 1..4096");
		} else if (strcmp(argv[i], "--garbage") == 0) {
			garbage = true;
		} else {
			return usage_error("stray", "usage: hostile stray --connect HOST:PORT "
					   "--count N [--garbage]");
		}
	}
	if (count == 0)
		return usage_error("stray", "--connect and --count are required");
	for (unsigned long i = 0; i < count; i++) {
		int fd = tcp_connect(&to);

		if (fd < 0)
			continue;
		if (garbage)
			(void)qkd_write_all(fd, junk, sizeof junk - 1);
		close(fd);
		made++;
	}
	printf("stray: count %lu connected %lu\n", count, made);
	return 0;
}

/* ---- sync ---- */

/* What the node sends and checks in a handshake (lib/node/link_handshake.c);
 * only a stranger's made-up messages need them here. */
#define HELLO_MAGIC "QKDHELO5"	/* the 5 of NODE_SYNC_VERSION */
#define NONCE_LEN 16
#define MAC_LEN 32

/* A tag that is simply wrong: 8 random bytes. */
static void bad_absorb(void *ctx, bool sent, const uint8_t *p, size_t len)
{
	(void)ctx; (void)sent; (void)p; (void)len;
}

static int bad_tag(void *ctx, uint32_t index, uint8_t *tag)
{
	(void)ctx; (void)index;
	randombytes_buf(tag, QKD_WC_TAG_LEN);
	return QKD_OK;
}

static int bad_verify(void *ctx, uint32_t index, const uint8_t *tag)
{
	(void)ctx; (void)index; (void)tag;
	return QKD_ERR_VERIFY;
}

static const struct qkd_auth_ops made_up = {
	.name = "made-up", .tag_len = QKD_WC_TAG_LEN,
	.absorb = bad_absorb, .tag = bad_tag, .verify = bad_verify,
};

/* RECOVER (nothing pending) closed by an AUTH frame, then wait for the
 * node to hang up. "closed" when it did, "open" when it was still there. */
static const char *recover_and_wait(struct qkd_channel *ch)
{
	static const uint8_t none[2] = { 0, 0 };
	struct qkd_rbuf r;
	uint8_t type;

	if (qkd_channel_send_sealed(ch, NODE_MSG_RECOVER, none, sizeof none) != QKD_OK)
		return "closed";
	node_set_timeouts_s(ch->fd, 5);
	return qkd_channel_recv(ch, &type, &r) == QKD_ERR_IO ? "open" : "closed";
}

/* The stranger: made-up MAC, index jump in its SYNC, made-up AUTH frame. */
static int sync_stranger(const struct qkd_netaddr *to, uint32_t jump)
{
	uint8_t hello[8 + NONCE_LEN], sync[MAC_LEN + NODE_SYNC_FIELDS_LEN];
	const char *got = "refused at once";
	struct qkd_channel ch;
	struct qkd_rbuf r;
	int fd = tcp_connect(to);

	if (fd < 0)
		return fail("sync", "cannot connect");
	node_set_timeouts_s(fd, 5);
	qkd_channel_init(&ch, fd, &made_up, NULL);
	memcpy(hello, HELLO_MAGIC, 8);
	randombytes_buf(hello + 8, NONCE_LEN);
	randombytes_buf(sync, sizeof sync);
	sync[MAC_LEN] = NODE_SYNC_VERSION;
	sync[MAC_LEN + 1] = (uint8_t)QKD_ROLE_BOB;
	memcpy(sync + sizeof sync - 4, (uint8_t[4]){ (uint8_t)(jump >> 24), (uint8_t)(jump >> 16),
						      (uint8_t)(jump >> 8), (uint8_t)jump }, 4);
	if (qkd_channel_send(&ch, NODE_MSG_HELLO, hello, sizeof hello) == QKD_OK &&
	    qkd_channel_expect(&ch, NODE_MSG_HELLO, &r) == QKD_OK) {
		got = "answered HELLO";
		if (qkd_channel_send(&ch, NODE_MSG_SYNC, sync, sizeof sync) == QKD_OK &&
		    qkd_channel_expect(&ch, NODE_MSG_SYNC, &r) == QKD_OK)
			got = "answered SYNC";
	}
	printf("sync: stranger jump %u: %s\n", jump, got);
	qkd_channel_cleanup(&ch);
	close(fd);
	return 0;
}

/* Bob's state, loaded from his STORE.auth but saved (its lease) elsewhere. */
static int load_bob(const char *conf, struct qkd_node_config *cfg, struct node_auth *a,
		    const char *scratch)
{
	char err[512];
	const char *why = NULL;
	bool found = false;

	if (qkd_node_config_load(conf, cfg, err, sizeof err) != QKD_OK)
		return fail(conf, err);
	if (cfg->nlinks < 1 || cfg->links[0].role != QKD_ROLE_BOB)
		return fail(conf, "its first link is not Bob's");
	if (node_auth_load(a, &cfg->links[0], &found, &why) != QKD_OK || !found)
		return fail(cfg->links[0].store, why != NULL ? why : "no STORE.auth");
	snprintf(a->path, sizeof a->path, "%s", scratch);
	return 0;
}

/* Bob's side of the fiber for this session: Alice connects it after the
 * handshake and before she reads RECOVER. */
static int take_fiber(int lfd)
{
	atomic_bool stop = false;
	const char *why = NULL;
	int fd = node_accept(lfd, &stop, 5, &why);

	if (fd >= 0) {
		uint8_t hello[QKD_FIBER_HELLO_LEN];

		(void)qkd_read_all(fd, hello, sizeof hello);
	}
	return fd;
}

/* With Bob's key: his next index moved up by jump (in the copy only, as a
 * crash's lease would), the handshake, then RECOVER. Bob is stopped: the
 * tool stands in for him on his fiber port too. */
static int sync_keyed(const char *conf, uint32_t jump, bool bad)
{
	static struct qkd_node_config cfg;
	char scratch[] = "/tmp/hostile-auth.XXXXXX";
	uint8_t session[QKD_CHANNEL_SESSION_LEN], tag[QKD_WC_TAG_LEN];
	struct node_auth a;
	struct qkd_channel ch;
	const char *why = "-", *got;
	bool stranger = false;
	atomic_bool stop = false;
	int fd, lfd = -1, ffd = -1, sfd = mkstemp(scratch), rc;

	if (sfd < 0)
		return fail("mkstemp", strerror(errno));
	close(sfd);
	rc = load_bob(conf, &cfg, &a, scratch);
	if (rc == 0 && jump > 0) {
		uint64_t at = qkd_wc_next_send_index(a.wc) + jump - 1;

		if (at > UINT32_MAX || qkd_wc_seal(a.wc, (uint32_t)at, tag) != QKD_OK)
			rc = fail("--jump", "more than the pads Bob holds");
	}
	lfd = rc == 0 ? node_listen(&cfg.links[0].fiber, &why) : -1;
	if (rc == 0 && lfd < 0)
		rc = fail("Bob's fiber port (is Bob stopped?)", why);
	fd = rc == 0 ? node_connect(&cfg.links[0].classical, &stop, 5, &why) : -1;
	if (rc == 0 && fd < 0)
		rc = fail("sync", why);
	if (rc == 0) {
		got = "handshake refused";
		if (node_handshake(fd, &a, &cfg.links[0], &ch, session, &stranger, &why, NULL) == QKD_OK) {
			ffd = take_fiber(lfd);
			if (bad)
				qkd_wc_absorb(a.wc, true, (const uint8_t *)"x", 1);
			got = recover_and_wait(&ch);
			qkd_channel_cleanup(&ch);
		}
		printf("sync: keyed jump %u%s: %s (%s)\n", jump, bad ? " bad tag" : "", got,
		       why != NULL ? why : "-");
		close(fd);
	}
	if (ffd >= 0)
		close(ffd);
	if (lfd >= 0)
		close(lfd);
	if (a.wc != NULL)
		node_auth_close(&a);
	(void)unlink(scratch);
	return rc;
}

static int cmd_sync(int argc, char **argv)
{
	const char *conf = NULL;
	struct qkd_netaddr to;
	unsigned long jump = 0;
	bool bad = false, have_to = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc) {
			if (parse_target(argv[++i], &to) != 0)
				return usage_error("--connect", TARGET_RULE);
			have_to = true;
		} else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			conf = argv[++i];
		} else if (strcmp(argv[i], "--jump") == 0 && i + 1 < argc) {
			if (strcmp(argv[i + 1], "0") != 0 &&
			    parse_count(argv[i + 1], UINT32_MAX, &jump) != 0)
				return usage_error("--jump", "not a number in 0..2^32-1");
			i++;
		} else if (strcmp(argv[i], "--bad-tag") == 0) {
			bad = true;
		} else {
			return usage_error("sync", "usage: hostile sync --connect HOST:PORT --jump N | "
					   "--config BOB.CONF --jump N [--bad-tag]");
		}
	}
	if (have_to == (conf != NULL))
		return usage_error("sync", "one of --connect and --config");
	if (sodium_init() < 0)
		return fail("sync", "libsodium cannot start");
	return conf != NULL ? sync_keyed(conf, (uint32_t)jump, bad)
			    : sync_stranger(&to, (uint32_t)jump);
}

/* ---- rot ---- */

/* Flip bit 0 of the middle byte of block id's stored bits with plain
 * SQLite: what bit rot on disk does, unseen by SQLite's own checks. */
static int cmd_rot(int argc, char **argv)
{
	const char *path = NULL;
	unsigned long long id = 0;
	sqlite3 *db = NULL;
	sqlite3_blob *b = NULL;
	unsigned char c = 0;
	int at, rc;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--store") == 0)
			path = argv[i + 1];
		else if (strcmp(argv[i], "--block") == 0)
			id = strtoull(argv[i + 1], NULL, 10);
	}
	if (path == NULL || argc != 5)
		return usage_error("rot", "usage: hostile rot --store PATH --block ID");
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_blob_open(db, "main", "qbits", "bits", (sqlite3_int64)id, 1, &b);
	at = b != NULL ? sqlite3_blob_bytes(b) / 2 : 0;
	if (rc == SQLITE_OK)
		rc = sqlite3_blob_read(b, &c, 1, at);
	c ^= 1;
	if (rc == SQLITE_OK)
		rc = sqlite3_blob_write(b, &c, 1, at);
	sqlite3_blob_close(b);
	if (rc != SQLITE_OK)
		fail(path, sqlite3_errmsg(db));
	else
		printf("rot: block %llu byte %d flipped\n", id, at);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : 1;
}

/* ---- the program ---- */

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "kme-idle", cmd_kme_idle, "hold idle TCP connections to a key manager, reopening them" },
	{ "idle", cmd_kme_idle, "the same, against any port (a link's accept queue)" },
	{ "stray", cmd_stray, "connections that close at once, or send garbage" },
	{ "sync", cmd_sync, "a handshake that asks to skip pads, with or without the key" },
	{ "rot", cmd_rot, "flip a bit of a block in a stopped store" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: hostile <command> [options]   (loopback targets only)\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	return usage_error(argv[1], "unknown command (try 'hostile --help')");
}
