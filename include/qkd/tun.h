/* qkd/tun.h - the gateway's side of a TUN device: whole IP packets in and
 * out of the kernel, with no link-layer header (docs/vpn.md "TUN").
 *
 * The data plane (issue 14: ESP in UDP between gateways) reads the packets
 * the kernel routes into the device, and writes back the packets it
 * decapsulated. Behind a small ops struct, so the protocol code never
 * touches ioctls and tests can put something else in its place; the Linux
 * implementation is lib/vpn/tun_linux.c. The descriptor is non-blocking,
 * for an event loop.
 */
#ifndef QKD_TUN_H
#define QKD_TUN_H

#include <stddef.h>
#include <stdint.h>

#define QKD_TUN_NAME_MAX 15	/* IFNAMSIZ - 1 */
#define QKD_TUN_MTU_MIN 576	/* RFC 791's every-host minimum ... */
#define QKD_TUN_MTU_MAX 65535	/* ... and the IPv4 total-length limit */

struct qkd_tun;

struct qkd_tun_ops {
	/* One packet into buf (cap bytes): 0 and *len, *len 0 when none is
	 * waiting; QKD_ERR_RANGE when the packet was longer than cap (it is
	 * dropped); QKD_ERR_IO otherwise (errno kept). */
	int (*read)(struct qkd_tun *t, uint8_t *buf, size_t cap, size_t *len);
	/* One whole packet to the kernel: 0, or QKD_ERR_IO (errno kept; a
	 * full queue is EAGAIN). */
	int (*write)(struct qkd_tun *t, const uint8_t *pkt, size_t len);
	void (*close)(struct qkd_tun *t);
};

struct qkd_tun {
	const struct qkd_tun_ops *ops;
	int fd;				/* for poll or an event loop; -1 when none */
	char name[QKD_TUN_NAME_MAX + 1];	/* the device's name as the kernel gave it */
	size_t mtu;
};

/* Create (or attach to) the Linux TUN device name ("" lets the kernel name
 * it tunN), IFF_TUN | IFF_NO_PI, non-blocking, with the given MTU, and set
 * it up. Needs CAP_NET_ADMIN in the current network
 * namespace. Addresses and routes are the caller's (ip addr, ip route).
 * 0 and *out (qkd_tun_close frees it), or QKD_ERR_INVAL (a name too long
 * or with '/' or '%', an MTU out of range) or QKD_ERR_IO, with *why. */
__attribute__((warn_unused_result))
int qkd_tun_open_linux(const char *name, size_t mtu, struct qkd_tun **out, const char **why);

static inline int qkd_tun_read(struct qkd_tun *t, uint8_t *buf, size_t cap, size_t *len)
{
	return t->ops->read(t, buf, cap, len);
}

static inline int qkd_tun_write(struct qkd_tun *t, const uint8_t *pkt, size_t len)
{
	return t->ops->write(t, pkt, len);
}

/* Close and free; accepts NULL. A device this call created goes away. */
void qkd_tun_close(struct qkd_tun *t);

#endif
