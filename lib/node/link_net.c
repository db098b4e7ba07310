/* link_net.c - the node's TCP sockets: listen, accept and connect that
 * give up when the daemon is told to stop, and I/O timeouts so a silent
 * peer cannot hang a link forever. IPv4 or IPv6, as the configured address
 * is (qkd/netaddr.h). */
#include "node_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/netaddr.h"

void node_set_timeouts_s(int fd, int seconds)
{
	struct timeval tv = { .tv_sec = seconds };

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void node_tune_socket(int fd)
{
	int one = 1;

	node_set_timeouts_s(fd, NODE_IO_TIMEOUT_S);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int node_listen(const struct qkd_node_addr *a, const char **why)
{
	int fd = -1;

	/* Non-blocking: the accept loops poll first and take what is queued
	 * until EAGAIN, never blocking on an empty queue. */
	if (qkd_netaddr_listen(&a->sa, SOCK_CLOEXEC | SOCK_NONBLOCK, 16, &fd) != QKD_OK) {
		*why = strerror(errno);
		return -1;
	}
	return fd;
}

int node_accept(int lfd, atomic_bool *stop, int timeout_s, const char **why)
{
	for (long waited_ms = 0; !atomic_load(stop); waited_ms += 200) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		int r, fd;

		if (timeout_s > 0 && waited_ms >= (long)timeout_s * 1000) {
			*why = "the peer did not connect in time";
			return -1;
		}
		r = poll(&p, 1, 200);
		if (r < 0 && errno != EINTR) {
			*why = strerror(errno);
			return -1;
		}
		if (r <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			node_tune_socket(fd);
			return fd;
		}
		if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
			*why = strerror(errno);
			return -1;
		}
	}
	*why = "stopped";
	return -1;
}

static void nap_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int node_connect(const struct qkd_node_addr *a, atomic_bool *stop, int timeout_s,
		 const char **why)
{
	for (long waited_ms = 0; !atomic_load(stop); waited_ms += 500) {
		int fd = -1;

		if (qkd_netaddr_socket(&a->sa, SOCK_CLOEXEC, &fd) != QKD_OK) {
			*why = strerror(errno);
			return -1;
		}
		if (connect(fd, (const struct sockaddr *)&a->sa.ss, a->sa.len) == 0) {
			node_tune_socket(fd);
			return fd;
		}
		close(fd);
		if (timeout_s > 0 && waited_ms >= (long)timeout_s * 1000) {
			*why = "the peer did not take the connection in time";
			return -1;
		}
		/* The peer is not up (yet): try again shortly, in small naps so
		 * that a stop is seen quickly. */
		for (int i = 0; i < 5 && !atomic_load(stop); i++)
			nap_ms(100);
	}
	*why = "stopped";
	return -1;
}
