/* mitm - a man in the middle of a node's classical channel, for the
 * integration tests (tests/integration/node.sh).
 *
 *   mitm LISTEN_PORT FORWARD_PORT MODE N
 *
 * Listens on 127.0.0.1:LISTEN_PORT, connects each client to
 * 127.0.0.1:FORWARD_PORT and relays both directions. It parses the
 * channel's frames (u32 big-endian length + body), the handshake's first,
 * and, to every Nth frame of either direction: flip (one bit of the body),
 * drop, replay (send it twice) or reorder (hold it and send it after the
 * next one); "pass" changes nothing. "sync" tampers with the handshake
 * instead: on every Nth connection it adds 2^20 to the AUTH index that ends
 * each direction's SYNC (the second frame each way: docs/node.md, "The
 * handshake"), the jump that once burned a link's pads; the gate MAC must
 * refuse it before any pad moves. Stops on SIGTERM, printing how many
 * frames it touched. Loopback only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FRAME_MAX (256u << 20)

enum mode { M_PASS, M_FLIP, M_DROP, M_REPLAY, M_REORDER, M_SYNC };
#define SYNC_JUMP ((uint32_t)1 << 20)

struct dir {
	int in, out;
	unsigned char *buf;	/* frame being assembled */
	size_t have, need;
	unsigned char *held;	/* reorder: a frame waiting */
	size_t held_len;
	unsigned long n;	/* frames this way on this connection */
};

static volatile sig_atomic_t stop;
static enum mode mode;
static unsigned long every, frames, touched, conns;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* sync mode: a SYNC's body ends with the sender's next AUTH index, a u32
 * big-endian; move it 2^20 ahead. */
static void jump_index(unsigned char *end)
{
	uint32_t v = (uint32_t)end[-4] << 24 | (uint32_t)end[-3] << 16 |
		     (uint32_t)end[-2] << 8 | end[-1];

	v += SYNC_JUMP;
	for (int i = 0; i < 4; i++)
		end[i - 4] = (unsigned char)(v >> (24 - 8 * i));
}

/* A complete frame (4 + body bytes in d->buf): treat it and pass it on. */
static int frame_out(struct dir *d, size_t len)
{
	int rc = 0;
	bool hit = every > 0 && ++frames % every == 0;

	d->n++;
	if (mode == M_SYNC) {
		hit = d->n == 2 && conns % every == 0 && len >= 12;
		if (hit)
			jump_index(d->buf + len);
	}
	if (hit && mode != M_PASS)
		touched++;
	if (hit && mode == M_FLIP && len > 8)
		d->buf[4 + (len - 4) / 2] ^= 0x10;
	if (hit && mode == M_DROP)
		return 0;
	if (hit && mode == M_REORDER && d->held == NULL) {
		d->held = malloc(len);
		if (d->held == NULL)
			return -1;
		memcpy(d->held, d->buf, len);
		d->held_len = len;
		return 0;
	}
	rc = write_all(d->out, d->buf, len);
	if (rc == 0 && hit && mode == M_REPLAY)
		rc = write_all(d->out, d->buf, len);
	if (rc == 0 && d->held != NULL && !(hit && mode == M_REORDER)) {
		rc = write_all(d->out, d->held, d->held_len);
		free(d->held);
		d->held = NULL;
	}
	return rc;
}

/* Move what arrived on d->in to d->out. -1 when the connection is over. */
static int pump(struct dir *d)
{
	unsigned char tmp[65536];
	ssize_t n = read(d->in, tmp, sizeof tmp);
	size_t i = 0;

	if (n <= 0)
		return -1;
	while (i < (size_t)n) {
		size_t take;

		take = d->need - d->have < (size_t)n - i ? d->need - d->have : (size_t)n - i;
		memcpy(d->buf + d->have, tmp + i, take);
		d->have += take;
		i += take;
		if (d->have == 4 && d->need == 4) {
			size_t body = (size_t)d->buf[0] << 24 | (size_t)d->buf[1] << 16 |
				      (size_t)d->buf[2] << 8 | d->buf[3];
			unsigned char *nb;

			if (body > FRAME_MAX || (nb = realloc(d->buf, 4 + body)) == NULL)
				return -1;
			d->buf = nb;
			d->need = 4 + body;
		}
		if (d->have == d->need && d->need > 4) {
			if (frame_out(d, d->need) != 0)
				return -1;
			d->have = 0;
			d->need = 4;
		}
	}
	return 0;
}

static void relay(int a, int b)
{
	struct dir d[2] = {
		{ .in = a, .out = b, .need = 4 },
		{ .in = b, .out = a, .need = 4 },
	};

	d[0].buf = malloc(4);
	d[1].buf = malloc(4);
	while (!stop && d[0].buf != NULL && d[1].buf != NULL) {
		struct pollfd p[2] = { { .fd = a, .events = POLLIN }, { .fd = b, .events = POLLIN } };
		int r = poll(p, 2, 200);

		if (r < 0 && errno != EINTR)
			break;
		if (r > 0 && (((p[0].revents & (POLLIN | POLLHUP)) && pump(&d[0]) != 0) ||
			      ((p[1].revents & (POLLIN | POLLHUP)) && pump(&d[1]) != 0)))
			break;
	}
	for (int i = 0; i < 2; i++) {
		free(d[i].buf);
		free(d[i].held);
	}
}

static int tcp(int port, bool listen_side)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (listen_side) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 4) == 0)
			return fd;
	} else if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
		return fd;
	}
	close(fd);
	return -1;
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "pass", "flip", "drop", "replay", "reorder", "sync" };
	struct sigaction sa = { .sa_handler = on_term };
	int lfd, m = -1;

	for (int i = 0; argc == 5 && i < 6; i++)
		if (strcmp(argv[3], names[i]) == 0)
			m = i;
	if (m < 0 || (every = strtoul(argv[4], NULL, 10)) == 0) {
		fprintf(stderr, "usage: mitm LISTEN_PORT FORWARD_PORT pass|flip|drop|replay|reorder|sync N\n");
		return 2;
	}
	mode = (enum mode)m;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	lfd = tcp(atoi(argv[1]), true);
	if (lfd < 0) {
		perror("mitm: listen");
		return 1;
	}
	while (!stop) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		int c, f;

		if (poll(&p, 1, 200) <= 0)
			continue;
		c = accept(lfd, NULL, NULL);
		conns += c >= 0;
		f = c >= 0 ? tcp(atoi(argv[2]), false) : -1;
		if (c >= 0 && f >= 0)
			relay(c, f);
		if (c >= 0)
			close(c);
		if (f >= 0)
			close(f);
	}
	printf("mitm: %s every %lu: %lu frames seen, %lu touched\n", names[m], every, frames, touched);
	close(lfd);
	return 0;
}
