/* test_spd.c - the security policy database (qkd/spd.h, lib/vpn/spd.c):
 * IPv4 and IPv6 headers read and refused, and packets matched to the
 * tunnels of a configuration both ways (RFC 4301 sections 4.4.1 and 5.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/spd.h"

/* A minimal IPv4 packet of len bytes (>= 20) from src to dst. */
static size_t v4(uint8_t *p, size_t len, const char *src, const char *dst)
{
	memset(p, 0, len);
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
	memset(p, 0, len);
	p[0] = 0x60;
	p[4] = (uint8_t)((len - 40) >> 8);
	p[5] = (uint8_t)(len - 40);
	p[6] = 58;
	p[7] = 64;
	assert_int_equal(inet_pton(AF_INET6, src, p + 8), 1);
	assert_int_equal(inet_pton(AF_INET6, dst, p + 24), 1);
	return len;
}

static void test_headers(void **state)
{
	uint8_t p[128];
	struct qkd_ip_addrs a;
	const char *why;
	size_t n;

	(void)state;
	n = v4(p, 84, "192.168.1.7", "10.2.3.4");
	assert_int_equal(qkd_ip_addrs_read(p, n, &a, &why), QKD_OK);
	assert_int_equal(a.family, 4);
	assert_int_equal(a.next, 17);
	assert_int_equal(a.src[0], 192);
	assert_int_equal(a.dst[3], 4);
	assert_int_equal(qkd_ip_addrs_read(p, n - 1, &a, &why), QKD_ERR_PROTO);	/* total length */
	assert_string_equal(why, "IPv4 total length is not the packet's length");
	assert_int_equal(a.family, 0);						/* cleared */
	p[0] = 0x44;
	assert_int_equal(qkd_ip_addrs_read(p, n, &a, &why), QKD_ERR_PROTO);	/* IHL 4 */
	p[0] = 0x4f;								/* IHL 60 > ... fine at 84 */
	assert_int_equal(qkd_ip_addrs_read(p, n, &a, &why), QKD_OK);
	n = v4(p, 40, "192.168.1.7", "10.2.3.4");
	p[0] = 0x4f;								/* IHL 60 > 40 */
	assert_int_equal(qkd_ip_addrs_read(p, n, &a, &why), QKD_ERR_PROTO);
	for (size_t k = 0; k < 20; k++) {
		n = v4(p, 20, "1.2.3.4", "5.6.7.8");
		assert_int_equal(qkd_ip_addrs_read(p, k, &a, &why), QKD_ERR_PROTO);	/* truncated */
	}
	n = v6(p, 48, "fd01::7", "fd02::1");
	assert_int_equal(qkd_ip_addrs_read(p, n, &a, &why), QKD_OK);
	assert_int_equal(a.family, 6);
	assert_int_equal(a.next, 58);
	assert_int_equal(a.src[15], 7);
	assert_int_equal(qkd_ip_addrs_read(p, 47, &a, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ip_addrs_read(p, 39, &a, &why), QKD_ERR_PROTO);
	p[0] = 0x50;
	assert_int_equal(qkd_ip_addrs_read(p, n, &a, &why), QKD_ERR_PROTO);
	assert_string_equal(why, "not an IPv4 or IPv6 packet");
	assert_int_equal(qkd_ip_addrs_read(p, 0, &a, &why), QKD_ERR_PROTO);
	assert_int_equal(qkd_ip_addrs_read(NULL, 20, &a, &why), QKD_ERR_PROTO);
}

static void add_ts(struct qkd_vpn_prefix *p, size_t *n, const char *s)
{
	const char *why;

	assert_int_equal(qkd_vpn_prefix_parse(s, &p[(*n)++], &why), QKD_OK);
}

static void test_lookup(void **state)
{
	static struct qkd_vpn_config c;
	struct qkd_vpn_tunnel *t;
	struct qkd_ip_addrs a;
	uint8_t p[64];
	const char *why;
	size_t tun = 99;

	(void)state;
	memset(&c, 0, sizeof c);
	c.n_tunnels = 2;
	t = &c.tunnels[0];
	add_ts(t->local_ts, &t->n_local_ts, "192.168.1.0/24");
	add_ts(t->local_ts, &t->n_local_ts, "fd01::/64");
	add_ts(t->remote_ts, &t->n_remote_ts, "10.2.0.0/16");
	add_ts(t->remote_ts, &t->n_remote_ts, "fd02::/64");
	t = &c.tunnels[1];
	add_ts(t->local_ts, &t->n_local_ts, "192.168.1.0/24");
	add_ts(t->remote_ts, &t->n_remote_ts, "10.3.0.0/16");

	assert_int_equal(qkd_ip_addrs_read(p, v4(p, 20, "192.168.1.9", "10.3.0.1"), &a, &why),
			 QKD_OK);
	assert_int_equal(qkd_spd_outbound(&c, &a, &tun), QKD_OK);
	assert_int_equal(tun, 1);
	assert_false(qkd_spd_inbound_ok(&c, 1, &a));	/* the other way round only */
	assert_int_equal(qkd_ip_addrs_read(p, v4(p, 20, "10.3.0.1", "192.168.1.9"), &a, &why),
			 QKD_OK);
	assert_true(qkd_spd_inbound_ok(&c, 1, &a));
	assert_false(qkd_spd_inbound_ok(&c, 0, &a));	/* not what tunnel 0 negotiated */
	assert_false(qkd_spd_inbound_ok(&c, 2, &a));	/* no such tunnel */
	assert_int_equal(qkd_spd_outbound(&c, &a, &tun), QKD_ERR_NOKEY);
	assert_int_equal(qkd_ip_addrs_read(p, v6(p, 40, "fd01::1", "fd02::ffff"), &a, &why),
			 QKD_OK);
	assert_int_equal(qkd_spd_outbound(&c, &a, &tun), QKD_OK);
	assert_int_equal(tun, 0);
	assert_int_equal(qkd_ip_addrs_read(p, v6(p, 40, "fd01::1", "fd03::1"), &a, &why), QKD_OK);
	assert_int_equal(qkd_spd_outbound(&c, &a, &tun), QKD_ERR_NOKEY);
	/* An IPv4 packet never matches an IPv6 selector with the same bytes. */
	assert_int_equal(qkd_ip_addrs_read(p, v4(p, 20, "253.1.0.0", "253.2.0.0"), &a, &why),
			 QKD_OK);
	assert_int_equal(qkd_spd_outbound(&c, &a, &tun), QKD_ERR_NOKEY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_lookup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
