/* test_dataplane.c - the data plane (qkd/dataplane.h, lib/vpn/dataplane*.c)
 * in one process: two gateways A and B on one libevent loop, UDP on
 * 127.0.0.1, each with a fake TUN device (a SOCK_SEQPACKET pair behind the
 * qkd/tun.h ops, so every read and write is one packet). Packets written
 * at A's device come out of B's intact, both ways, IPv4 and IPv6, in ESP
 * and in the no-crypto mode; a datagram the test seals itself checks each
 * refusal at B: replay, bad ICV, unknown SPI, malformed, POLICY_IN, and
 * keepalives and IKE; at A: NO_POLICY, NO_SA with its rate-limited
 * ACQUIRE; soft expiry reported once per SA; IKE sent with the marker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qkd/dataplane.h"
#include "qkd/error.h"
#include "qkd/testing.h"

static const uint8_t K_AB[36] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };	/* A -> B */
static const uint8_t K_BA[36] = { 21, 22, 23, 24, 25, 26, 27, 28, 29, 30 };	/* B -> A */
#define SPI_AB 0x1001u
#define SPI_BA 0x2002u

/* The fake TUN: fd is the data plane's end, peer the test's. */
struct fake_tun {
	struct qkd_tun tun;
	int peer;
};

static int fake_read(struct qkd_tun *t, uint8_t *buf, size_t cap, size_t *len)
{
	ssize_t n = recv(t->fd, buf, cap, MSG_DONTWAIT);

	*len = 0;
	if (n < 0)
		return errno == EAGAIN ? QKD_OK : QKD_ERR_IO;
	*len = (size_t)n;
	return QKD_OK;
}

static int fake_write(struct qkd_tun *t, const uint8_t *pkt, size_t len)
{
	return send(t->fd, pkt, len, MSG_DONTWAIT) == (ssize_t)len ? QKD_OK : QKD_ERR_IO;
}

static void fake_close(struct qkd_tun *t)
{
	(void)t;
}

static const struct qkd_tun_ops fake_ops = { fake_read, fake_write, fake_close };

struct calls {
	int ike, acquire, soft;
	size_t ike_len;
	uint8_t ike_msg[64];
	uint32_t soft_spi;
	enum qkd_esp_dir soft_dir;
};

static void on_ike(void *arg, const uint8_t *msg, size_t len, const struct sockaddr *from,
		   socklen_t fromlen)
{
	struct calls *c = arg;

	(void)from;
	assert_true(fromlen > 0);
	c->ike++;
	c->ike_len = len;
	memcpy(c->ike_msg, msg, len < sizeof c->ike_msg ? len : sizeof c->ike_msg);
}

static void on_acquire(void *arg, size_t t)
{
	assert_int_equal(t, 0);
	((struct calls *)arg)->acquire++;
}

static void on_soft(void *arg, size_t t, uint32_t spi, enum qkd_esp_dir dir)
{
	struct calls *c = arg;

	assert_int_equal(t, 0);
	c->soft++;
	c->soft_spi = spi;
	c->soft_dir = dir;
}

static const struct qkd_dataplane_ops ops = { on_ike, on_acquire, on_soft };

struct gw {
	struct fake_tun ft;
	int udp;
	struct qkd_netaddr addr;
	struct qkd_vpn_config cfg;
	struct qkd_sa_mgr *sad;
	struct qkd_dataplane *dp;
	struct calls calls;
};

struct fix {
	struct event_base *base;
	struct gw a, b;
	int probe;		/* the test's own UDP socket */
};

static void prefix(struct qkd_vpn_prefix *p, const char *s)
{
	const char *why;

	assert_int_equal(qkd_vpn_prefix_parse(s, p, &why), QKD_OK);
}

static void gw_open(struct gw *g)
{
	int sv[2];
	socklen_t len = sizeof g->addr.ss;
	const char *why;

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	g->ft.tun = (struct qkd_tun){ .ops = &fake_ops, .fd = sv[0], .mtu = 1400 };
	g->ft.peer = sv[1];
	assert_int_equal(qkd_netaddr_parse("127.0.0.1:0", QKD_NETADDR_PORT_ANY, &g->addr, &why), QKD_OK);
	assert_int_equal(qkd_dataplane_udp_open(&g->addr, &g->udp), QKD_OK);
	assert_int_equal(getsockname(g->udp, (struct sockaddr *)&g->addr.ss, &len), 0);
	g->addr.len = len;
}

/* One tunnel from local to remote (IPv4 and IPv6 prefixes), peer at `peer`. */
static void gw_config(struct gw *g, const struct gw *peer, const char *l4, const char *r4,
		      const char *l6, const char *r6)
{
	struct qkd_vpn_tunnel *t = &g->cfg.tunnels[0];

	g->cfg.n_tunnels = 1;
	strcpy(t->name, "t0");
	t->peer.sa = peer->addr;
	prefix(&t->local_ts[0], l4);
	prefix(&t->remote_ts[0], r4);
	prefix(&t->local_ts[1], l6);
	prefix(&t->remote_ts[1], r6);
	t->n_local_ts = t->n_remote_ts = 2;
}

static struct qkd_esp_sa *mk_sa(enum qkd_esp_dir dir, uint32_t spi, const uint8_t *key,
				uint64_t soft_packets)
{
	struct qkd_esp_params p = { .dir = dir, .spi = spi, .keymat = key, .keymat_len = 36,
				    .esn = true, .soft = { .packets = soft_packets } };
	struct qkd_esp_sa *sa = NULL;

	assert_int_equal(qkd_esp_sa_new(&p, &sa), QKD_OK);
	return sa;
}

static void gw_start(struct fix *f, struct gw *g)
{
	struct qkd_dataplane_params p = { .base = f->base, .tun = &g->ft.tun, .udp_fd = g->udp,
					  .cfg = &g->cfg, .sad = g->sad, .ops = &ops,
					  .arg = &g->calls };

	assert_int_equal(qkd_dataplane_new(&p, &g->dp), QKD_OK);
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof *f);

	assert_non_null(f);
	f->base = event_base_new();
	assert_non_null(f->base);
	gw_open(&f->a);
	gw_open(&f->b);
	gw_config(&f->a, &f->b, "10.1.0.0/16", "10.2.0.0/16", "fd01::/64", "fd02::/64");
	gw_config(&f->b, &f->a, "10.2.0.0/16", "10.1.0.0/16", "fd02::/64", "fd01::/64");
	assert_int_equal(qkd_sa_mgr_new(1, &f->a.sad), QKD_OK);
	assert_int_equal(qkd_sa_mgr_new(1, &f->b.sad), QKD_OK);
	assert_int_equal(qkd_sa_mgr_install(f->a.sad, 0, mk_sa(QKD_ESP_IN, SPI_BA, K_BA, 0),
					    mk_sa(QKD_ESP_OUT, SPI_AB, K_AB, 0), true), QKD_OK);
	/* B's inbound SA asks for a rekey after 3 packets. */
	assert_int_equal(qkd_sa_mgr_install(f->b.sad, 0, mk_sa(QKD_ESP_IN, SPI_AB, K_AB, 3),
					    mk_sa(QKD_ESP_OUT, SPI_BA, K_BA, 0), true), QKD_OK);
	gw_start(f, &f->a);
	gw_start(f, &f->b);
	f->probe = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(f->probe >= 0);
	*state = f;
	return 0;
}

static void gw_close(struct gw *g)
{
	qkd_dataplane_free(g->dp);
	qkd_sa_mgr_free(g->sad);
	close(g->udp);
	close(g->ft.tun.fd);
	close(g->ft.peer);
}

static int teardown(void **state)
{
	struct fix *f = *state;

	gw_close(&f->a);
	gw_close(&f->b);
	close(f->probe);
	event_base_free(f->base);
	free(f);
	return 0;
}

/* Run the loop until a packet is at g's device (into buf, its length
 * returned) or 1 s passed (0). */
static size_t pump_until_tun(struct fix *f, struct gw *g, uint8_t *buf, size_t cap)
{
	struct timeval tick = { 0, 10000 };

	for (int i = 0; i < 100; i++) {
		ssize_t n = recv(g->ft.peer, buf, cap, MSG_DONTWAIT);

		if (n > 0)
			return (size_t)n;
		event_base_loopexit(f->base, &tick);
		event_base_dispatch(f->base);
	}
	return 0;
}

/* Run the loop for about ms milliseconds. */
static void pump(struct fix *f, int ms)
{
	struct timeval tv = { 0, ms * 1000 };

	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
}

static size_t v4(uint8_t *p, size_t len, const char *src, const char *dst, uint8_t fill)
{
	memset(p, fill, len);
	memset(p, 0, 20);
	p[0] = 0x45;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[8] = 64;
	p[9] = 17;
	assert_int_equal(inet_pton(AF_INET, src, p + 12), 1);
	assert_int_equal(inet_pton(AF_INET, dst, p + 16), 1);
	return len;
}

static size_t v6(uint8_t *p, size_t len, const char *src, const char *dst)
{
	memset(p, 0x5a, len);
	memset(p, 0, 40);
	p[0] = 0x60;
	p[4] = (uint8_t)((len - 40) >> 8);
	p[5] = (uint8_t)(len - 40);
	p[6] = 17;
	p[7] = 64;
	assert_int_equal(inet_pton(AF_INET6, src, p + 8), 1);
	assert_int_equal(inet_pton(AF_INET6, dst, p + 24), 1);
	return len;
}

/* pkt in at `from`'s device must come out of `to`'s, byte for byte. */
static void crosses(struct fix *f, struct gw *from, struct gw *to, const uint8_t *pkt, size_t len)
{
	uint8_t got[2048];

	assert_int_equal(send(from->ft.peer, pkt, len, 0), (ssize_t)len);
	assert_int_equal(pump_until_tun(f, to, got, sizeof got), len);
	assert_memory_equal(got, pkt, len);
}

static void test_both_ways(void **state)
{
	struct fix *f = *state;
	struct qkd_dp_tunnel_stats ta, tb;
	struct qkd_dp_stats s;
	uint8_t p[1400];

	crosses(f, &f->a, &f->b, p, v4(p, 1400, "10.1.0.5", "10.2.3.4", 0x11));
	crosses(f, &f->b, &f->a, p, v4(p, 64, "10.2.3.4", "10.1.0.5", 0x22));
	crosses(f, &f->a, &f->b, p, v6(p, 333, "fd01::5", "fd02::9"));
	qkd_dataplane_tunnel_stats(f->a.dp, 0, &ta);
	qkd_dataplane_tunnel_stats(f->b.dp, 0, &tb);
	assert_int_equal(ta.out_packets, 2);
	assert_int_equal(ta.out_bytes, 1400 + 333);
	assert_int_equal(tb.in_packets, 2);
	assert_int_equal(tb.in_bytes, 1400 + 333);
	assert_int_equal(tb.out_packets, 1);
	assert_int_equal(ta.in_packets, 1);
	assert_int_equal(ta.in_bytes, 64);
	qkd_dataplane_stats(f->b.dp, &s);
	for (int d = 0; d < QKD_DP_DROP_COUNT; d++)
		assert_int_equal(s.drops[d], 0);
	assert_int_equal(s.tun_reads, 1);
	assert_true(s.udp_batches >= 1);
	qkd_dataplane_tunnel_stats(f->b.dp, 7, &tb);	/* no such tunnel: zeros */
	assert_int_equal(tb.in_packets, 0);
	assert_int_equal(f->b.calls.soft, 0);	/* 2 packets: under the soft limit of 3 */
}

/* A burst of packets read in one batch: runs of one size go out as UDP GSO
 * sends and may arrive coalesced (UDP GRO on loopback); every packet comes
 * out intact and in order, runs broken by a shorter packet or the end. */
static void test_burst(void **state)
{
	static const size_t sizes[] = { 1000, 1000, 1000, 500, 1000, 60, 60, 1400 };
	struct fix *f = *state;
	uint8_t p[64][1400], got[2048];
	size_t len[64], n = 0;
	struct qkd_dp_tunnel_stats tb;
	struct qkd_dp_stats s;

	for (size_t run = 0; run < 8; run++)
		for (size_t k = 0; k < (run % 2 ? 3 : 6) && n < 44; k++, n++) {
			len[n] = v4(p[n], sizes[run], "10.1.0.5", "10.2.3.4", (uint8_t)n);
			assert_int_equal(send(f->a.ft.peer, p[n], len[n], 0), (ssize_t)len[n]);
		}
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(pump_until_tun(f, &f->b, got, sizeof got), len[i]);
		assert_memory_equal(got, p[i], len[i]);
	}
	qkd_dataplane_tunnel_stats(f->b.dp, 0, &tb);
	qkd_dataplane_stats(f->b.dp, &s);
	assert_int_equal(tb.in_packets, n);
	assert_true(s.udp_batches < n);
	for (int d = 0; d < QKD_DP_DROP_COUNT; d++)
		assert_int_equal(s.drops[d], 0);
}

static void test_plain(void **state)
{
	struct fix *f = *state;
	struct qkd_dp_tunnel_stats tb;
	uint8_t p[1400];

	qkd_dataplane_testing_plain(f->a.dp, true);
	qkd_dataplane_testing_plain(f->b.dp, true);
	crosses(f, &f->a, &f->b, p, v4(p, 1400, "10.1.0.5", "10.2.3.4", 0x33));
	crosses(f, &f->b, &f->a, p, v6(p, 100, "fd02::9", "fd01::5"));
	qkd_dataplane_tunnel_stats(f->b.dp, 0, &tb);
	assert_int_equal(tb.in_packets, 1);
	assert_int_equal(tb.out_packets, 1);
}

/* A datagram to B from the test's socket. */
static void to_b(struct fix *f, const uint8_t *d, size_t len)
{
	assert_int_equal(sendto(f->probe, d, len, 0, (const struct sockaddr *)&f->b.addr.ss,
				f->b.addr.len), (ssize_t)len);
}

static void seal(struct qkd_esp_sa *sa, const uint8_t *inner, size_t len, uint8_t *out,
		 size_t *out_len)
{
	assert_int_equal(qkd_esp_encapsulate(sa, inner[0] >> 4 == 4 ? 4 : 41, inner, len, out, 2048,
					     out_len), QKD_OK);
}

static void test_refusals_at_b(void **state)
{
	struct fix *f = *state;
	struct qkd_esp_sa *a_out = mk_sa(QKD_ESP_OUT, SPI_AB, K_AB, 0);
	struct qkd_esp_sa *wrong = mk_sa(QKD_ESP_OUT, 0x7777, K_AB, 0);
	uint8_t inner[200], pkt[2048], got[2048];
	static const uint8_t keepalive = 0xff, ike[] = { 0, 0, 0, 0, 'h', 'i' }, junk[3] = { 1, 2, 3 };
	struct qkd_dp_tunnel_stats tb;
	struct qkd_dp_stats s;
	size_t n;

	seal(a_out, inner, v4(inner, 200, "10.1.0.5", "10.2.3.4", 0x44), pkt, &n);
	to_b(f, pkt, n);
	assert_int_equal(pump_until_tun(f, &f->b, got, sizeof got), 200);
	to_b(f, pkt, n);				/* the same again: a replay */
	seal(a_out, inner, 200, pkt, &n);
	pkt[n - 1] ^= 1;
	to_b(f, pkt, n);				/* a flipped ICV bit */
	seal(wrong, inner, 200, pkt, &n);
	to_b(f, pkt, n);				/* an SPI B never installed */
	to_b(f, junk, sizeof junk);
	to_b(f, &keepalive, 1);
	to_b(f, ike, sizeof ike);
	seal(a_out, inner, v4(inner, 100, "10.9.0.5", "10.2.3.4", 0x55), pkt, &n);
	to_b(f, pkt, n);				/* authentic, outside the selectors */
	seal(a_out, inner, v4(inner, 100, "10.1.0.6", "10.2.3.4", 0x66), pkt, &n);
	to_b(f, pkt, n);				/* third packet: soft limit */
	assert_int_equal(pump_until_tun(f, &f->b, got, sizeof got), 100);
	assert_int_equal(got[19], 4);
	seal(a_out, inner, v4(inner, 100, "10.1.0.6", "10.2.3.4", 0x66), pkt, &n);
	to_b(f, pkt, n);				/* fourth: no second report */
	assert_int_equal(pump_until_tun(f, &f->b, got, sizeof got), 100);
	/* Authentic, but next header 0 where tunnel mode carries 4 or 41. */
	assert_int_equal(qkd_esp_encapsulate(a_out, 0, inner, 100, pkt, sizeof pkt, &n), QKD_OK);
	to_b(f, pkt, n);
	pump(f, 30);

	qkd_dataplane_stats(f->b.dp, &s);
	assert_int_equal(s.drops[QKD_DP_DROP_REPLAY], 1);
	assert_int_equal(s.drops[QKD_DP_DROP_BAD_ICV], 1);
	assert_int_equal(s.drops[QKD_DP_DROP_UNKNOWN_SPI], 1);
	assert_int_equal(s.drops[QKD_DP_DROP_MALFORMED], 2);
	assert_int_equal(s.drops[QKD_DP_DROP_POLICY_IN], 1);
	assert_int_equal(s.keepalives, 1);
	assert_int_equal(s.ike_in, 1);
	qkd_dataplane_tunnel_stats(f->b.dp, 0, &tb);
	assert_int_equal(tb.in_packets, 3);
	assert_int_equal(tb.drops[QKD_DP_DROP_REPLAY], 1);
	assert_int_equal(tb.drops[QKD_DP_DROP_UNKNOWN_SPI], 0);	/* no tunnel known */
	assert_int_equal(tb.drops[QKD_DP_DROP_MALFORMED], 1);	/* after decapsulation */
	assert_int_equal(f->b.calls.ike, 1);
	assert_int_equal(f->b.calls.ike_len, 2);
	assert_memory_equal(f->b.calls.ike_msg, "hi", 2);
	assert_int_equal(f->b.calls.soft, 1);
	assert_int_equal(f->b.calls.soft_spi, SPI_AB);
	assert_int_equal(f->b.calls.soft_dir, QKD_ESP_IN);
	qkd_esp_sa_free(a_out);
	qkd_esp_sa_free(wrong);
}

static void test_refusals_at_a(void **state)
{
	struct fix *f = *state;
	uint8_t p[200], got[2048];
	static const uint8_t msg[] = { 'i', 'k', 'e' };
	struct qkd_dp_stats s;

	/* Outside every selector: never sent. */
	assert_int_equal(send(f->a.ft.peer, p, v4(p, 60, "10.1.0.5", "10.3.0.1", 0), 0), 60);
	/* Not an IP packet. */
	memset(p, 0, 30);
	assert_int_equal(send(f->a.ft.peer, p, 30, 0), 30);
	pump(f, 30);
	/* No SA: NO_SA for each, one ACQUIRE within the second. */
	qkd_sa_mgr_flush(f->a.sad, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(send(f->a.ft.peer, p, v4(p, 60, "10.1.0.5", "10.2.0.1", 0), 0), 60);
	pump(f, 50);
	qkd_dataplane_stats(f->a.dp, &s);
	assert_int_equal(s.drops[QKD_DP_DROP_NO_POLICY], 1);
	assert_int_equal(s.drops[QKD_DP_DROP_MALFORMED], 1);
	assert_int_equal(s.drops[QKD_DP_DROP_NO_SA], 3);
	assert_int_equal(f->a.calls.acquire, 1);
	assert_int_equal(recv(f->b.ft.peer, got, sizeof got, MSG_DONTWAIT), -1);	/* nothing crossed */

	/* IKE from A to B, behind the non-ESP marker. */
	assert_int_equal(qkd_dataplane_send_ike(f->a.dp, (const struct sockaddr *)&f->b.addr.ss,
						f->b.addr.len, msg, sizeof msg), QKD_OK);
	for (int i = 0; i < 50 && f->b.calls.ike == 0; i++)
		pump(f, 10);
	assert_int_equal(f->b.calls.ike, 1);
	assert_int_equal(f->b.calls.ike_len, 3);
	assert_memory_equal(f->b.calls.ike_msg, "ike", 3);
	assert_string_equal(qkd_dp_drop_name(QKD_DP_DROP_BAD_ICV), "bad_icv");
	assert_string_equal(qkd_dp_drop_name(QKD_DP_DROP_COUNT), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_burst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals_at_b, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals_at_a, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
