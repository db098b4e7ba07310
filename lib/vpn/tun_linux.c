/* tun_linux.c - the Linux TUN device behind struct qkd_tun_ops
 * (qkd/tun.h): /dev/net/tun with TUNSETIFF, IFF_TUN | IFF_NO_PI (no
 * packet-information header: each read or write is exactly one IP
 * packet), O_NONBLOCK for the gateway's event loop; the MTU and the UP
 * flag set through an AF_INET socket's interface ioctls. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/tun.h"

static int tun_read(struct qkd_tun *t, uint8_t *buf, size_t cap, size_t *len)
{
	ssize_t n;

	*len = 0;
	do {
		n = read(t->fd, buf, cap);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? QKD_OK : QKD_ERR_IO;
	/* A packet longer than cap is cut to cap by read(2): refuse it. */
	if ((size_t)n == cap && cap < t->mtu)
		return QKD_ERR_RANGE;
	*len = (size_t)n;
	return QKD_OK;
}

static int tun_write(struct qkd_tun *t, const uint8_t *pkt, size_t len)
{
	ssize_t n;

	do {
		n = write(t->fd, pkt, len);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return QKD_ERR_IO;
	if ((size_t)n != len) {
		errno = EMSGSIZE;
		return QKD_ERR_IO;
	}
	return QKD_OK;
}

static void tun_close(struct qkd_tun *t)
{
	if (t->fd >= 0)
		close(t->fd);
	free(t);
}

static const struct qkd_tun_ops tun_linux_ops = { tun_read, tun_write, tun_close };

static bool tun_name_ok(const char *name)
{
	return strlen(name) <= QKD_TUN_NAME_MAX && strpbrk(name, "/% \t\n:") == NULL;
}

/* MTU and IFF_UP on the device, through a throwaway socket. */
static int tun_configure(const char *name, size_t mtu, const char **why)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = QKD_ERR_IO;

	*why = "socket for the interface ioctls";
	if (s < 0)
		return rc;
	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, name, strlen(name));
	ifr.ifr_mtu = (int)mtu;
	*why = "SIOCSIFMTU: cannot set the MTU";
	if (ioctl(s, SIOCSIFMTU, &ifr) != 0)
		goto out;
	*why = "SIOCGIFFLAGS";
	if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
		goto out;
	ifr.ifr_flags |= IFF_UP;
	*why = "SIOCSIFFLAGS: cannot set the device up";
	if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
		goto out;
	rc = QKD_OK;
out:
	{
		int e = errno;

		close(s);
		errno = e;
	}
	return rc;
}

int qkd_tun_open_linux(const char *name, size_t mtu, struct qkd_tun **out, const char **why)
{
	struct qkd_tun *t = NULL;
	struct ifreq ifr;
	int rc = QKD_ERR_INVAL;

	*out = NULL;
	*why = "a device name of at most 15 characters, without '/', '%', ':' or spaces";
	if (name == NULL || !tun_name_ok(name))
		return rc;
	*why = "an MTU of 576 .. 65535 bytes";
	if (mtu < QKD_TUN_MTU_MIN || mtu > QKD_TUN_MTU_MAX)
		return rc;
	rc = QKD_ERR_NOMEM;
	*why = "out of memory";
	t = calloc(1, sizeof *t);
	if (t == NULL)
		return rc;
	t->ops = &tun_linux_ops;
	t->mtu = mtu;
	rc = QKD_ERR_IO;
	*why = "open /dev/net/tun";
	t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0)
		goto out;
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	memcpy(ifr.ifr_name, name, strlen(name));
	*why = "TUNSETIFF: cannot create the device (CAP_NET_ADMIN needed)";
	if (ioctl(t->fd, TUNSETIFF, &ifr) != 0)
		goto out;
	memcpy(t->name, ifr.ifr_name, QKD_TUN_NAME_MAX);
	t->name[QKD_TUN_NAME_MAX] = '\0';
	if (tun_configure(t->name, mtu, why) != QKD_OK)
		goto out;
	*out = t;
	t = NULL;
	rc = QKD_OK;
out:
	if (t != NULL) {
		int e = errno;

		tun_close(t);
		errno = e;
	}
	return rc;
}

void qkd_tun_close(struct qkd_tun *t)
{
	if (t != NULL)
		t->ops->close(t);
}
