/* status_client.c - the client side of a node's status socket
 * (status_client.h): one request, the reply read to EOF, bounded in size
 * and in time so that a stuck node cannot hang `qkd status` or
 * `qkd netmap`. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "status_client.h"

#include "qkd/error.h"
#include "qkd/sysutil.h"

/* Read fd to EOF into a new buffer; NULL on error, timeout or overflow. */
static char *read_all(int fd, size_t *len)
{
	size_t n = 0, cap = 4096;
	char *buf = malloc(cap), *nb;

	while (buf != NULL) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (n + 1 == cap) {
			nb = cap < STATUS_REPLY_MAX ? realloc(buf, cap * 2) : NULL;
			if (nb == NULL)
				break;
			buf = nb;
			cap *= 2;
		}
		if (poll(&p, 1, 5000) <= 0)
			break;
		r = read(fd, buf + n, cap - 1 - n);
		if (r < 0)
			break;
		if (r == 0) {
			buf[n] = '\0';
			*len = n;
			return buf;
		}
		n += (size_t)r;
	}
	free(buf);
	return NULL;
}

char *status_client_ask(const char *path, size_t *len, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *buf = NULL;
	int fd = -1;

	if (strlen(path) >= sizeof sa.sun_path) {
		snprintf(why, whylen, "socket path too long");
		goto out;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		snprintf(why, whylen, "cannot reach the node: %s", strerror(errno));
		goto out;
	}
	if (qkd_write_all(fd, "status\n", 7) != QKD_OK || (buf = read_all(fd, len)) == NULL)
		snprintf(why, whylen, "no answer from the node");
out:
	if (fd >= 0)
		close(fd);
	return buf;
}
