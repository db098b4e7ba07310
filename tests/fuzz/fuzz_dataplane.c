/* libFuzzer target: the inbound path of the data plane (lib/vpn/
 * dataplane_in.c): UDP datagrams classified, ESP decapsulated, the inner
 * packet read, checked against its SA's tunnel and written to the TUN
 * device. One data plane is set up once, on a libevent loop, with its UDP
 * socket on 127.0.0.1 and a fake TUN device (a SOCK_SEQPACKET pair); each
 * datagram is sent to it over loopback and the loop run until it is
 * handled. The input, read with the bounded reader: up to 16 records
 *
 *   { u8 kind; u16 length; length bytes }:
 *     kind 0 mod 3: the bytes are a datagram, as they are;
 *     kind 1 mod 3: the bytes are an inner packet, sealed by the harness on
 *                   the SA the data plane holds (next header kind / 3), so
 *                   the fuzzer reaches the checks behind the ICV;
 *     kind 2 mod 3: the last sealed datagram again (a replay).
 *
 * Checked beyond memory safety: every datagram is counted exactly once (a
 * drop, a keepalive, an IKE message, or a packet delivered), except an
 * authentic dummy packet (next header 59), counted nowhere; nothing the
 * harness did not seal reaches the device; what does is the sealed inner
 * packet byte for byte, a whole IP packet its tunnel may carry; a replay
 * is a REPLAY drop. */
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qkd/dataplane.h"
#include "qkd/error.h"
#include "qkd/spd.h"
#include "qkd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_SPI 0x0a0b0c0du
#define FZ_MAX 2048

static const uint8_t fz_keymat[36] = {
	0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0,
	0x85, 0x7d, 0x77, 0x81, 0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7,
	0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4, 0xca, 0xfe, 0xba, 0xbe,
};

static int tun_read(struct qkd_tun *t, uint8_t *buf, size_t cap, size_t *len)
{
	ssize_t n = recv(t->fd, buf, cap, MSG_DONTWAIT);

	*len = n > 0 ? (size_t)n : 0;
	return n >= 0 || errno == EAGAIN ? QKD_OK : QKD_ERR_IO;
}

static int tun_write(struct qkd_tun *t, const uint8_t *pkt, size_t len)
{
	return send(t->fd, pkt, len, MSG_DONTWAIT) == (ssize_t)len ? QKD_OK : QKD_ERR_IO;
}

static void tun_close(struct qkd_tun *t)
{
	(void)t;
}

static const struct qkd_tun_ops fz_tun_ops = { tun_read, tun_write, tun_close };

static struct {
	struct event_base *base;
	struct qkd_tun tun;
	int tun_peer, udp, probe;
	struct qkd_netaddr addr;
	struct qkd_vpn_config cfg;
	struct qkd_sa_mgr *sad;
	struct qkd_dataplane *dp;
	struct qkd_esp_sa *seal;	/* the peer's outbound SA: same SPI and key */
	uint8_t last[FZ_MAX];
	size_t last_len;
} fz;

static struct qkd_esp_sa *sa_new(enum qkd_esp_dir dir)
{
	struct qkd_esp_params p = { .dir = dir, .spi = FZ_SPI, .keymat = fz_keymat,
				    .keymat_len = sizeof fz_keymat, .esn = true };
	struct qkd_esp_sa *sa = NULL;

	if (qkd_esp_sa_new(&p, &sa) != QKD_OK)
		abort();
	return sa;
}

static void prefix(struct qkd_vpn_prefix *p, const char *s)
{
	const char *why;

	if (qkd_vpn_prefix_parse(s, p, &why) != QKD_OK)
		abort();
}

static void fz_config(void)
{
	struct qkd_vpn_tunnel *t = &fz.cfg.tunnels[0];
	const char *why;

	fz.cfg.n_tunnels = 1;
	strcpy(t->name, "fz");
	if (qkd_netaddr_parse("127.0.0.1:9", 0, &t->peer.sa, &why) != QKD_OK)
		abort();
	prefix(&t->local_ts[0], "10.2.0.0/16");
	prefix(&t->local_ts[1], "fd02::/64");
	prefix(&t->remote_ts[0], "10.1.0.0/16");
	prefix(&t->remote_ts[1], "fd01::/64");
	t->n_local_ts = t->n_remote_ts = 2;
}

static void fz_setup(void)
{
	int sv[2];
	socklen_t len = sizeof fz.addr.ss;
	const char *why;
	struct qkd_dataplane_params p = { 0 };

	fz_config();
	fz.base = event_base_new();
	if (fz.base == NULL || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) != 0)
		abort();
	fz.tun = (struct qkd_tun){ .ops = &fz_tun_ops, .fd = sv[0], .mtu = 1400 };
	fz.tun_peer = sv[1];
	if (qkd_netaddr_parse("127.0.0.1:0", QKD_NETADDR_PORT_ANY, &fz.addr, &why) != QKD_OK ||
	    qkd_dataplane_udp_open(&fz.addr, &fz.udp) != QKD_OK ||
	    getsockname(fz.udp, (struct sockaddr *)&fz.addr.ss, &len) != 0)
		abort();
	fz.addr.len = len;
	fz.probe = socket(AF_INET, SOCK_DGRAM, 0);
	if (fz.probe < 0 || qkd_sa_mgr_new(1, &fz.sad) != QKD_OK ||
	    qkd_sa_mgr_install(fz.sad, 0, sa_new(QKD_ESP_IN), sa_new(QKD_ESP_OUT), true) != QKD_OK)
		abort();
	fz.seal = sa_new(QKD_ESP_OUT);
	p = (struct qkd_dataplane_params){ .base = fz.base, .tun = &fz.tun, .udp_fd = fz.udp,
					   .cfg = &fz.cfg, .sad = fz.sad };
	if (qkd_dataplane_new(&p, &fz.dp) != QKD_OK)
		abort();
}

static uint64_t counted(void)
{
	struct qkd_dp_stats s;
	struct qkd_dp_tunnel_stats t;
	uint64_t n;

	qkd_dataplane_stats(fz.dp, &s);
	qkd_dataplane_tunnel_stats(fz.dp, 0, &t);
	n = s.keepalives + s.ike_in + t.in_packets;
	for (int d = 0; d < QKD_DP_DROP_COUNT; d++)
		n += s.drops[d];
	return n;
}

/* Send one datagram and run the loop until it is counted (bounded). */
static void deliver(const uint8_t *d, size_t len, bool counted_once)
{
	uint64_t before = counted();

	if (sendto(fz.probe, d, len, 0, (const struct sockaddr *)&fz.addr.ss, fz.addr.len) !=
	    (ssize_t)len)
		abort();
	for (int i = 0; i < 20 && counted() == before; i++)
		event_base_loop(fz.base, EVLOOP_NONBLOCK);
	if (!counted_once) {
		/* A dummy packet: give it the same chance to be (wrongly) counted. */
		for (int i = 0; i < 3; i++)
			event_base_loop(fz.base, EVLOOP_NONBLOCK);
	}
	if (counted() != before + (counted_once ? 1 : 0))
		abort();
}

static ssize_t from_tun(uint8_t *buf, size_t cap)
{
	return recv(fz.tun_peer, buf, cap, MSG_DONTWAIT);
}

static void sealed(uint8_t nh, const uint8_t *inner, size_t len)
{
	static uint8_t got[FZ_MAX];
	struct qkd_dp_tunnel_stats t0, t1;
	struct qkd_ip_addrs a;
	const char *why;
	ssize_t n;

	if (qkd_esp_encapsulate(fz.seal, nh, inner, len, fz.last, sizeof fz.last, &fz.last_len) !=
	    QKD_OK)
		abort();
	qkd_dataplane_tunnel_stats(fz.dp, 0, &t0);
	deliver(fz.last, fz.last_len, nh != 59);
	qkd_dataplane_tunnel_stats(fz.dp, 0, &t1);
	n = from_tun(got, sizeof got);
	if ((n >= 0) != (t1.in_packets == t0.in_packets + 1))
		abort();
	if (n < 0)
		return;
	if ((size_t)n != len || memcmp(got, inner, len) != 0 ||
	    qkd_ip_addrs_read(got, len, &a, &why) != QKD_OK || !qkd_spd_inbound_ok(&fz.cfg, 0, &a) ||
	    nh != (a.family == 4 ? 4 : 41))
		abort();
}

static void replayed(void)
{
	struct qkd_dp_stats s0, s1;
	uint8_t got[16];

	if (fz.last_len == 0)
		return;
	qkd_dataplane_stats(fz.dp, &s0);
	deliver(fz.last, fz.last_len, true);
	qkd_dataplane_stats(fz.dp, &s1);
	if (s1.drops[QKD_DP_DROP_REPLAY] != s0.drops[QKD_DP_DROP_REPLAY] + 1 ||
	    from_tun(got, sizeof got) >= 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qkd_rbuf r;
	uint8_t got[16];

	if (fz.dp == NULL)
		fz_setup();
	qkd_rbuf_init(&r, data, size);
	for (int i = 0; i < 16 && qkd_rbuf_left(&r) >= 3; i++) {
		uint8_t kind = qkd_get_u8(&r);
		uint16_t len = qkd_get_u16(&r);
		const uint8_t *bytes;

		if (len > FZ_MAX - 64)
			break;
		bytes = qkd_get_bytes(&r, len);
		if (!qkd_rbuf_ok(&r))
			break;
		if (kind % 3 == 0 && len > 0) {
			deliver(bytes, len, true);
			if (from_tun(got, sizeof got) >= 0)
				abort();	/* nothing unsealed is authentic */
		} else if (kind % 3 == 1) {
			sealed((uint8_t)(kind / 3), bytes, len);
		} else if (kind % 3 == 2) {
			replayed();
		}
	}
	return 0;
}
