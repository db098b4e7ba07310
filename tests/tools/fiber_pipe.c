/* fiber_pipe.c - both ends of a fiber socket for tests/cli/eve_proxy.sh: a
 * sender that plays Alice's node and a receiver that plays Bob's, so
 * `qkd eve` can be tested without nodes.
 *
 *   fiber_pipe send HOST PORT FRAMES SLOTS SEED [--linger]
 *       connect, send the connection's hello (QKD_FIBER_HELLO_LEN bytes, a
 *       pattern: a tap passes it on unread) and FRAMES emitter frames of
 *       SLOTS slots (two rounds: the first half is round 1, the rest round 2,
 *       each ending with `last`), then close; with --linger, wait (30 s at
 *       most) for the peer to close.
 *   fiber_pipe recv HOST PORT FRAMES SLOTS SEED
 *       listen (PORT 0: any free port), print "port N", accept one
 *       connection, check its hello arrived unchanged, read frames until EOF
 *       and compare them with the frames
 *       the same SEED's emitter sends. Prints one line:
 *       "frames F pulses P sent S changed C photons_lost L" (pulses received,
 *       pulses the emitter sent, states that differ among the pulses that
 *       arrived, photons missing). Exit 0 if F == FRAMES and every frame
 *       covered the expected slots, else 1.
 *
 * HOST is an IPv4 or IPv6 literal without brackets (127.0.0.1, ::1) or
 * localhost (qkd_netaddr_from_host); every wait is bounded (30 s). Test data only: the
 * key is a hash of SEED.
 */
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <sodium.h>

#include "qkd/error.h"
#include "qkd/fiber.h"
#include "qkd/netaddr.h"
#include "qkd/sysutil.h"

#define WAIT_S 30

struct pipe_args {
	struct qkd_netaddr sa;
	uint64_t frames, slots;
	struct qkd_emitter *em;
	int linger;
};

static int usage(void)
{
	fprintf(stderr, "usage: fiber_pipe send|recv HOST PORT FRAMES SLOTS SEED [--linger]\n");
	return 2;
}

static int parse(int argc, char **argv, struct pipe_args *a)
{
	struct qkd_link_params lp;
	uint8_t key[QKD_FIBER_KEY_BYTES];
	int rc;

	if (argc < 7 || argc > 8)
		return -1;
	memset(a, 0, sizeof *a);
	if (qkd_netaddr_from_host(argv[2], (uint16_t)strtoul(argv[3], NULL, 10), &a->sa,
				  NULL) != QKD_OK)
		return -1;
	a->frames = strtoull(argv[4], NULL, 10);
	a->slots = strtoull(argv[5], NULL, 10);
	a->linger = argc == 8 && strcmp(argv[7], "--linger") == 0;
	if (a->frames == 0 || a->slots == 0 || a->slots > QKD_FIBER_MAX_FRAME_SLOTS ||
	    (argc == 8 && !a->linger))
		return -1;
	crypto_generichash(key, sizeof key, (const uint8_t *)argv[6], strlen(argv[6]), NULL, 0);
	qkd_link_params_default(&lp);
	rc = qkd_emitter_new(&a->em, &lp, key);
	sodium_memzero(key, sizeof key);
	return rc == QKD_OK ? 0 : -1;
}

static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = WAIT_S };

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Frame i of the run: slots [i SLOTS, (i+1) SLOTS), two rounds. */
static int make_frame(const struct pipe_args *a, uint64_t i, struct qkd_fiber_frame *f)
{
	uint64_t half = (a->frames + 1) / 2;
	int rc = qkd_emitter_chunk(a->em, i * a->slots, a->slots, f);

	f->round = i < half ? 1 : 2;
	f->last = i + 1 == half || i + 1 == a->frames;
	return rc;
}

/* The hello a sender sends: any 72 bytes do for a tap, which never reads
 * them (qkd/fiber.h); a pattern lets the receiver see they arrived intact. */
static void hello_pattern(uint8_t *hello)
{
	for (size_t i = 0; i < QKD_FIBER_HELLO_LEN; i++)
		hello[i] = (uint8_t)(i * 7 + 1);
}

static int do_send(const struct pipe_args *a)
{
	uint8_t hello[QKD_FIBER_HELLO_LEN];
	struct qkd_fiber_frame f;
	int fd = -1, rc = QKD_ERR_IO;
	char c;

	qkd_fiber_frame_init(&f);
	if (qkd_netaddr_socket(&a->sa, 0, &fd) != QKD_OK ||
	    connect(fd, (const struct sockaddr *)&a->sa.ss, a->sa.len) != 0) {
		perror("fiber_pipe: connect");
		goto out;
	}
	set_timeouts(fd);
	hello_pattern(hello);
	rc = qkd_write_all(fd, hello, sizeof hello);
	for (uint64_t i = 0; rc == QKD_OK && i < a->frames; i++) {
		rc = make_frame(a, i, &f);
		if (rc == QKD_OK)
			rc = qkd_fiber_send(fd, &f);
	}
	if (rc == QKD_OK && a->linger) {
		ssize_t r = read(fd, &c, 1);	/* EOF, or WAIT_S: either is fine */

		(void)r;
	}
	if (rc != QKD_OK)
		fprintf(stderr, "fiber_pipe: send: %s\n", qkd_strerror(rc));
out:
	if (fd >= 0)
		close(fd);
	qkd_fiber_frame_cleanup(&f);
	return rc == QKD_OK ? 0 : 1;
}

static int accept_one(const struct pipe_args *a)
{
	struct sockaddr_storage bound;
	struct qkd_netaddr here;
	socklen_t bl = sizeof bound;
	struct pollfd p;
	int lfd = -1, fd = -1;

	if (qkd_netaddr_listen(&a->sa, 0, 1, &lfd) != QKD_OK) {
		perror("fiber_pipe: listen");
		return -1;
	}
	if (getsockname(lfd, (struct sockaddr *)&bound, &bl) != 0 ||
	    qkd_netaddr_from_sockaddr((const struct sockaddr *)&bound, bl, &here) != QKD_OK) {
		perror("fiber_pipe: getsockname");
		close(lfd);
		return -1;
	}
	printf("port %u\n", (unsigned)qkd_netaddr_port(&here));
	fflush(stdout);
	p.fd = lfd;
	p.events = POLLIN;
	if (poll(&p, 1, WAIT_S * 1000) == 1)
		fd = accept(lfd, NULL, NULL);
	close(lfd);
	if (fd >= 0)
		set_timeouts(fd);
	return fd;
}

struct recv_counts {
	uint64_t frames, pulses, sent, changed, lost;
	int bad;
};

/* Compare received frame g with what the emitter sent as frame i. */
static void compare(const struct qkd_fiber_frame *f, const struct qkd_fiber_frame *g,
		    struct recv_counts *c)
{
	size_t j = 0;

	if (g->first != f->first || g->slots != f->slots || g->round != f->round ||
	    g->last != f->last)
		c->bad = 1;
	c->pulses += g->n;
	c->sent += f->n;
	for (size_t i = 0; i < f->n; i++) {
		if (j < g->n && g->p[j].slot == f->p[i].slot) {
			c->changed += g->p[j].state != f->p[i].state;
			if (g->p[j].photons > f->p[i].photons)
				c->bad = 1;
			c->lost += (uint64_t)(f->p[i].photons - g->p[j].photons);
			j++;
		} else {
			c->lost += f->p[i].photons;
		}
	}
	if (j != g->n)
		c->bad = 1;	/* a pulse the emitter never sent */
}

static int do_recv(const struct pipe_args *a)
{
	uint8_t hello[QKD_FIBER_HELLO_LEN], want[QKD_FIBER_HELLO_LEN];
	struct qkd_fiber_frame f, g;
	struct recv_counts c = { 0 };
	int fd = accept_one(a), rc = QKD_OK;

	qkd_fiber_frame_init(&f);
	qkd_fiber_frame_init(&g);
	if (fd < 0) {
		fprintf(stderr, "fiber_pipe: no connection\n");
		return 1;
	}
	hello_pattern(want);
	if (qkd_read_all(fd, hello, sizeof hello) != QKD_OK || memcmp(hello, want, sizeof hello) != 0)
		c.bad = 1;
	while (rc == QKD_OK) {
		rc = qkd_fiber_recv(fd, &g);
		if (rc == QKD_OK && c.frames >= a->frames)
			c.bad = 1;
		if (rc == QKD_OK && c.frames < a->frames && make_frame(a, c.frames, &f) == QKD_OK)
			compare(&f, &g, &c);
		c.frames += rc == QKD_OK;
	}
	close(fd);
	if (rc != QKD_ERR_EOF) {
		fprintf(stderr, "fiber_pipe: recv: %s\n", qkd_strerror(rc));
		c.bad = 1;
	}
	printf("frames %" PRIu64 " pulses %" PRIu64 " sent %" PRIu64 " changed %" PRIu64
	       " photons_lost %" PRIu64 "\n", c.frames, c.pulses, c.sent, c.changed, c.lost);
	qkd_fiber_frame_cleanup(&f);
	qkd_fiber_frame_cleanup(&g);
	return c.bad || c.frames != a->frames;
}

int main(int argc, char **argv)
{
	struct pipe_args a;
	int rc;

	if (sodium_init() < 0 || argc < 2 || parse(argc, argv, &a) != 0)
		return usage();
	if (strcmp(argv[1], "send") == 0)
		rc = do_send(&a);
	else if (strcmp(argv[1], "recv") == 0)
		rc = do_recv(&a);
	else
		rc = usage();
	qkd_emitter_free(a.em);
	return rc;
}
