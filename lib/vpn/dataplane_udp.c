/* dataplane_udp.c - the gateway's UDP socket (qkd/dataplane.h): IKE and
 * ESP share one port (RFC 3948 s2); opening it with buffers deep enough for
 * whole batches, IKE messages out behind the non-ESP marker, and the
 * sendmmsg of a batch of ESP packets with its accounting. Neighbours:
 * dataplane_out.c (fills the batch), dataplane_in.c (recvmmsg). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include "dataplane_int.h"

/* SO_*BUFFORCE passes net.core.[rw]mem_max with CAP_NET_ADMIN, which a
 * gateway holding a TUN device has; without it the plain option is capped
 * by the kernel, which is still correct, only shallower. */
static void set_buffers(int fd)
{
	int size = (int)QKD_DATAPLANE_SOCKBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

int qkd_dataplane_udp_open(const struct qkd_netaddr *addr, int *fd)
{
	int s = -1, rc = QKD_ERR_IO, e;

	*fd = -1;
	s = socket(qkd_netaddr_family(addr), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		goto out;
	if (qkd_netaddr_family(addr) == AF_INET6) {
		int on = 1;

		/* "[::]:4500" is IPv6 only, as for qkd_netaddr_listen. */
		if (setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) != 0)
			goto out;
	}
	set_buffers(s);
	if (bind(s, (const struct sockaddr *)&addr->ss, addr->len) != 0)
		goto out;
	*fd = s;
	s = -1;
	rc = QKD_OK;
out:
	e = errno;
	if (s >= 0)
		close(s);
	errno = e;
	return rc;
}

int qkd_dataplane_send_ike(struct qkd_dataplane *dp, const struct sockaddr *to, socklen_t tolen,
			   const uint8_t *msg, size_t len)
{
	static const uint8_t marker[4] = { 0, 0, 0, 0 };
	/* Two pieces, so the message is not copied behind its marker. */
	struct iovec iov[2] = { { .iov_base = (void *)marker, .iov_len = sizeof marker },
				{ .iov_base = (void *)msg, .iov_len = len } };
	struct msghdr mh = { .msg_name = (void *)to, .msg_namelen = tolen, .msg_iov = iov,
			     .msg_iovlen = 2 };
	ssize_t n;

	if (dp == NULL || to == NULL || (msg == NULL && len > 0))
		return QKD_ERR_INVAL;
	do {
		n = sendmsg(dp->p.udp_fd, &mh, 0);
	} while (n < 0 && errno == EINTR);
	return n == (ssize_t)(len + sizeof marker) ? QKD_OK : QKD_ERR_IO;
}

static void sent(struct qkd_dataplane *dp, size_t i)
{
	struct qkd_dp_tunnel_stats *ts = &dp->tstats[dp->txtunnel[i]];

	ts->out_packets++;
	ts->out_bytes += dp->txinner[i];
}

void dp_udp_flush(struct qkd_dataplane *dp, size_t n)
{
	size_t done = 0;

	/* Each round either sends some or gives up one datagram: at most n
	 * rounds. A full socket buffer drops the rest at once, never spins. */
	while (done < n) {
		int r = sendmmsg(dp->p.udp_fd, dp->txm + done, (unsigned)(n - done), MSG_DONTWAIT);

		if (r > 0) {
			for (size_t i = done; i < done + (size_t)r; i++)
				sent(dp, i);
			done += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
			for (; done < n; done++)
				dp_drop(dp, QKD_DP_DROP_IO, dp->txtunnel[done], "the UDP send buffer is full");
			break;
		}
		/* One datagram the kernel refused (no route, too big): skip it. */
		dp_drop(dp, QKD_DP_DROP_IO, dp->txtunnel[done], "sendmmsg refused a datagram");
		done++;
	}
}
