/* dataplane_udp.c - the gateway's UDP socket (qkd/dataplane.h): IKE and
 * ESP share one port (RFC 3948 s2); opening it with buffers deep enough for
 * whole batches, IKE messages out behind the non-ESP marker, and the
 * sendmmsg of a batch of ESP packets with its accounting. Neighbours:
 * dataplane_out.c (fills the batch), dataplane_in.c (recvmmsg). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
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
	/* Accept datagrams coalesced by UDP GRO (Linux 5.0): a peer's GSO send
	 * arrives as one message. Without it the kernel splits them first. */
	(void)setsockopt(s, SOL_UDP, UDP_GRO, &(int){ 1 }, sizeof(int));
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

/* Group the slots from..n-1 into dp->gm: consecutive datagrams to one
 * tunnel of one size (the last may be shorter) go out as one UDP GSO send
 * (UDP_SEGMENT, Linux 4.18): the kernel's UDP, IP and veth path runs once
 * for the group instead of once a datagram, and a peer socket with
 * UDP_GRO receives it whole. Returns the number of groups. */
static size_t group(struct qkd_dataplane *dp, size_t from, size_t n)
{
	size_t g = 0;

	for (size_t i = from; i < n; g++) {
		size_t size = dp->txiov[i].iov_len, j = i + 1;
		size_t max = DP_GSO_BYTES / size < DP_GSO_SEGS ? DP_GSO_BYTES / size : DP_GSO_SEGS;
		struct msghdr *mh = &dp->gm[g].msg_hdr;

		while (!dp->gso_off && j < n && j - i < max && dp->txtunnel[j] == dp->txtunnel[i] &&
		       dp->txiov[j].iov_len <= size)
			if (dp->txiov[j++].iov_len < size)
				break;		/* a shorter one ends the group */
		*mh = (struct msghdr){ .msg_name = dp->txm[i].msg_hdr.msg_name,
				       .msg_namelen = dp->txm[i].msg_hdr.msg_namelen,
				       .msg_iov = &dp->txiov[i], .msg_iovlen = j - i };
		if (j - i > 1) {
			uint16_t seg = (uint16_t)size;
			struct cmsghdr *c;

			mh->msg_control = dp->gctl[g].buf;
			mh->msg_controllen = sizeof dp->gctl[g].buf;
			c = CMSG_FIRSTHDR(mh);
			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof seg);
			memcpy(CMSG_DATA(c), &seg, sizeof seg);
		}
		dp->gfirst[g] = i;
		dp->gcount[g] = j - i;
		i = j;
	}
	return g;
}

/* The errors of a kernel or route that cannot do UDP GSO (EIO: no
 * checksum offload), as opposed to ones any datagram would get. */
static bool gso_refused(int e)
{
	return e == EIO || e == EINVAL || e == ENOPROTOOPT || e == EOPNOTSUPP;
}

static void group_dropped(struct qkd_dataplane *dp, size_t k, const char *why)
{
	for (size_t i = dp->gfirst[k]; i < dp->gfirst[k] + dp->gcount[k]; i++)
		dp_drop(dp, QKD_DP_DROP_IO, dp->txtunnel[i], why);
}

void dp_udp_flush(struct qkd_dataplane *dp, size_t n)
{
	size_t done = 0, g = group(dp, 0, n);

	/* Each round sends some groups, gives up one, or turns GSO off (once):
	 * bounded. A full socket buffer drops the rest at once, never spins. */
	while (done < g) {
		int r = sendmmsg(dp->p.udp_fd, dp->gm + done, (unsigned)(g - done), MSG_DONTWAIT);

		if (r > 0) {
			for (size_t k = done; k < done + (size_t)r; k++)
				for (size_t i = dp->gfirst[k]; i < dp->gfirst[k] + dp->gcount[k]; i++)
					sent(dp, i);
			done += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
			for (; done < g; done++)
				group_dropped(dp, done, "the UDP send buffer is full");
			break;
		}
		if (dp->gcount[done] > 1 && !dp->gso_off && gso_refused(errno)) {
			/* No UDP GSO on this path (EIO: no checksum offload; EINVAL):
			 * send this batch's rest, and all later ones, one by one. */
			qkd_logf(dp->p.log, QKD_LOG_INFO, "dataplane: UDP GSO refused (%s): off",
				 strerror(errno));
			dp->gso_off = true;
			g = group(dp, dp->gfirst[done], n);
			done = 0;
			continue;
		}
		/* One datagram the kernel refused (no route, too big): skip it. */
		group_dropped(dp, done, "sendmmsg refused a datagram");
		done++;
	}
}
