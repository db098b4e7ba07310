/* test_netaddr.c - socket addresses, IPv4 and IPv6 (qkd/netaddr.h,
 * lib/core/netaddr.c).
 *
 * The parser: every accepted form gives the right family, port and
 * canonical text, and the canonical text parses back to the same address;
 * every refused form gives its own reason, with *out zeroed. Then the bare
 * host form, addresses from the kernel, equality, the loopback predicate,
 * and real sockets on 127.0.0.1 and ::1: listen on port 0, connect, accept,
 * the peer printed in brackets, IPV6_V6ONLY on the IPv6 listener. The
 * wildcard "[::]" listener (where IPV6_V6ONLY matters: the kernel sets it by
 * itself for a specific IPv6 address) is bound in a network namespace of a
 * child of its own, so that nothing outside the test sees it (root only).
 * ::1 must work: this machine has it (`ip -6 addr show lo`), and an IPv6
 * test that passed without it would prove nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/netaddr.h"

/* ---- parsing ---- */

static const struct {
	const char *text;
	int family;
	uint16_t port;
	const char *canonical;
} good[] = {
	{ "127.0.0.1:7101", AF_INET, 7101, "127.0.0.1:7101" },
	{ "10.0.0.2:65535", AF_INET, 65535, "10.0.0.2:65535" },
	{ "0.0.0.0:1", AF_INET, 1, "0.0.0.0:1" },
	{ "localhost:8443", AF_INET, 8443, "127.0.0.1:8443" },
	{ "[::1]:8000", AF_INET6, 8000, "[::1]:8000" },
	{ "[0:0:0:0:0:0:0:1]:8000", AF_INET6, 8000, "[::1]:8000" },
	{ "[::]:9", AF_INET6, 9, "[::]:9" },
	{ "[2001:DB8:0:0:1::A]:443", AF_INET6, 443, "[2001:db8::1:0:0:a]:443" },
	{ "[fe80::1]:7", AF_INET6, 7, "[fe80::1]:7" },
	{ "[1:2:3:4:5:6:7:8]:65535", AF_INET6, 65535, "[1:2:3:4:5:6:7:8]:65535" },
	/* An IPv4 tail in an address that is not IPv4-mapped. */
	{ "[64:ff9b::192.0.2.1]:80", AF_INET6, 80, "[64:ff9b::c000:201]:80" },
};

static void test_parse_good(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct qkd_netaddr a, b;
		char buf[QKD_NETADDR_STR_MAX];
		const char *why = "untouched";

		if (qkd_netaddr_parse(good[i].text, 0, &a, &why) != QKD_OK)
			fail_msg("%s: refused: %s", good[i].text, why);
		assert_null(why);
		assert_int_equal(qkd_netaddr_family(&a), good[i].family);
		assert_int_equal(a.len, good[i].family == AF_INET ? sizeof(struct sockaddr_in)
								 : sizeof(struct sockaddr_in6));
		assert_int_equal(qkd_netaddr_port(&a), good[i].port);
		assert_string_equal(qkd_netaddr_str(&a, buf), good[i].canonical);
		/* The canonical text is the same address. */
		assert_int_equal(qkd_netaddr_parse(buf, 0, &b, NULL), QKD_OK);
		assert_true(qkd_netaddr_equal(&a, &b));
		assert_memory_equal(&a, &b, sizeof a);
	}
}

static const struct {
	const char *text, *why;
} bad[] = {
	{ "", "empty: expected HOST:PORT" },
	{ "127.0.0.1", "no :PORT" },
	{ "localhost", "no :PORT" },
	{ ":80", "no HOST before ':'" },
	{ "127.0.0.1:", "no PORT after ':'" },
	{ "127.0.0.1:0", "PORT is out of range 1..65535" },
	{ "127.0.0.1:65536", "PORT is out of range 1..65535" },
	{ "127.0.0.1:999999", "PORT is out of range 1..65535" },
	{ "127.0.0.1:99999999999999999999999", "PORT is out of range 1..65535" },
	{ "127.0.0.1:080", "PORT has a leading zero" },
	{ "127.0.0.1:00", "PORT has a leading zero" },
	{ "127.0.0.1:+80", "PORT is not a decimal number" },
	{ "127.0.0.1:-1", "PORT is not a decimal number" },
	{ "127.0.0.1: 80", "PORT is not a decimal number" },
	{ "127.0.0.1:80 ", "PORT is not a decimal number" },
	{ "127.0.0.1:0x50", "PORT is not a decimal number" },
	{ "127.1:80", "HOST is not an IPv4 address (A.B.C.D), an IPv6 address in brackets or "
		      "localhost (host names are not looked up)" },
	{ "127.0.0.01:80", "HOST is not an IPv4 address" },
	{ "256.0.0.1:80", "HOST is not an IPv4 address" },
	{ "example.com:80", "HOST is not an IPv4 address" },
	{ "LOCALHOST:80", "HOST is not an IPv4 address" },
	{ " 127.0.0.1:80", "HOST is not an IPv4 address" },
	{ "::1:8000", "an IPv6 address goes in brackets: [ADDRESS]:PORT" },
	{ "::1", "an IPv6 address goes in brackets: [ADDRESS]:PORT" },
	{ "2001:db8::1:443", "an IPv6 address goes in brackets" },
	{ "::1]:8000", "an IPv6 address goes in brackets" },
	{ "[::1", "'[' without its closing ']'" },
	{ "[::1:8000", "'[' without its closing ']'" },
	{ "[", "'[' without its closing ']'" },
	{ "[::1]", "no :PORT after ']'" },
	{ "[::1]8000", "expected ':' after ']'" },
	{ "[::1]]:8000", "expected ':' after ']'" },
	{ "[::1]:", "no PORT after ':'" },
	{ "[::1]:0", "PORT is out of range 1..65535" },
	{ "[::1]:65536", "PORT is out of range 1..65535" },
	{ "[::1]:08000", "PORT has a leading zero" },
	{ "[::1]:80:80", "PORT is not a decimal number" },
	{ "[]:8000", "nothing between '[' and ']'" },
	{ "[::g]:8000", "not an IPv6 address between '[' and ']'" },
	{ "[1:2:3:4:5:6:7:8:9]:8000", "not an IPv6 address between '[' and ']'" },
	{ "[:::1]:8000", "not an IPv6 address between '[' and ']'" },
	{ "[ ::1]:8000", "not an IPv6 address between '[' and ']'" },
	{ "[localhost]:8000", "not an IPv6 address between '[' and ']'" },
	{ "[0000:0000:0000:0000:0000:0000:0000:0000:1]:80", "not an IPv6 address" },
	{ "[127.0.0.1]:8000", "brackets are for IPv6 addresses: write an IPv4 address without them" },
	{ "[fe80::1%lo]:8000", "a zone index (%...) is not supported: use an address that needs none" },
	{ "[fe80::1%25eth0]:8000", "a zone index (%...) is not supported" },
	{ "[::ffff:127.0.0.1]:8000", "an IPv4-mapped IPv6 address: write the IPv4 address itself" },
	{ "[::FFFF:7f00:1]:8000", "an IPv4-mapped IPv6 address" },
};

static void test_parse_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		static const struct qkd_netaddr zero;
		struct qkd_netaddr a;
		const char *why = NULL;

		memset(&a, 0xa5, sizeof a);
		if (qkd_netaddr_parse(bad[i].text, 0, &a, &why) != QKD_ERR_INVAL)
			fail_msg("'%s' accepted", bad[i].text);
		if (why == NULL || strncmp(why, bad[i].why, strlen(bad[i].why)) != 0)
			fail_msg("'%s': \"%s\", expected \"%s...\"", bad[i].text,
				 why ? why : "(null)", bad[i].why);
		assert_memory_equal(&a, &zero, sizeof a);
		assert_int_equal(qkd_netaddr_family(&a), AF_UNSPEC);
		/* why may be NULL. */
		assert_int_equal(qkd_netaddr_parse(bad[i].text, 0, &a, NULL), QKD_ERR_INVAL);
	}
	assert_int_equal(qkd_netaddr_parse(NULL, 0, &(struct qkd_netaddr){ .len = 0 }, NULL),
			 QKD_ERR_INVAL);
}

/* Port 0 ("any free port") only when the caller says it will listen. */
static void test_port_any(void **state)
{
	struct qkd_netaddr a;
	char buf[QKD_NETADDR_STR_MAX];
	const char *why = NULL;

	(void)state;
	assert_int_equal(qkd_netaddr_parse("[::1]:0", 0, &a, &why), QKD_ERR_INVAL);
	assert_string_equal(why, "PORT is out of range 1..65535");
	assert_int_equal(qkd_netaddr_parse("[::1]:0", QKD_NETADDR_PORT_ANY, &a, &why), QKD_OK);
	assert_string_equal(qkd_netaddr_str(&a, buf), "[::1]:0");
	assert_int_equal(qkd_netaddr_parse("127.0.0.1:0", QKD_NETADDR_PORT_ANY, &a, NULL), QKD_OK);
	assert_int_equal(qkd_netaddr_port(&a), 0);
	assert_int_equal(qkd_netaddr_parse("127.0.0.1:65536", QKD_NETADDR_PORT_ANY, &a, &why),
			 QKD_ERR_INVAL);
	assert_string_equal(why, "PORT is out of range 0..65535");
	assert_int_equal(qkd_netaddr_parse("127.0.0.1:00", QKD_NETADDR_PORT_ANY, &a, &why),
			 QKD_ERR_INVAL);
	qkd_netaddr_set_port(&a, 4242);		/* a was zeroed: no address, no port */
	assert_int_equal(qkd_netaddr_port(&a), 0);
	assert_int_equal(qkd_netaddr_parse("[::1]:1", 0, &a, NULL), QKD_OK);
	qkd_netaddr_set_port(&a, 4242);
	assert_string_equal(qkd_netaddr_str(&a, buf), "[::1]:4242");
}

/* The longest canonical text fits QKD_NETADDR_STR_MAX. */
static void test_longest(void **state)
{
	struct qkd_netaddr a;
	char buf[QKD_NETADDR_STR_MAX];

	(void)state;
	assert_int_equal(qkd_netaddr_parse("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535", 0,
					   &a, NULL), QKD_OK);
	assert_string_equal(qkd_netaddr_str(&a, buf),
			    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535");
	assert_int_equal(qkd_netaddr_from_host("1111:2222:3333:4444:5555:6666:255.255.255.254",
					       65535, &a, NULL), QKD_OK);
	assert_true(strlen(qkd_netaddr_str(&a, buf)) < QKD_NETADDR_STR_MAX);
}

static void test_from_host(void **state)
{
	struct qkd_netaddr a, b;
	char buf[QKD_NETADDR_STR_MAX];
	const char *why = NULL;

	(void)state;
	assert_int_equal(qkd_netaddr_from_host("::1", 7, &a, &why), QKD_OK);
	assert_string_equal(qkd_netaddr_str(&a, buf), "[::1]:7");
	assert_int_equal(qkd_netaddr_parse("[::1]:7", 0, &b, NULL), QKD_OK);
	assert_true(qkd_netaddr_equal(&a, &b));
	assert_int_equal(qkd_netaddr_from_host("localhost", 0, &a, NULL), QKD_OK);
	assert_string_equal(qkd_netaddr_str(&a, buf), "127.0.0.1:0");
	assert_int_equal(qkd_netaddr_from_host("192.0.2.9", 65535, &a, NULL), QKD_OK);
	assert_string_equal(qkd_netaddr_str(&a, buf), "192.0.2.9:65535");
	assert_int_equal(qkd_netaddr_from_host("[::1]", 7, &a, &why), QKD_ERR_INVAL);
	assert_non_null(strstr(why, "without brackets"));
	assert_int_equal(qkd_netaddr_from_host("::ffff:10.0.0.1", 7, &a, &why), QKD_ERR_INVAL);
	assert_non_null(strstr(why, "IPv4-mapped"));
	assert_int_equal(qkd_netaddr_from_host("example.com", 7, &a, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_netaddr_from_host("", 7, &a, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_netaddr_from_host(NULL, 7, &a, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_netaddr_family(&a), AF_UNSPEC);
}

static void test_from_sockaddr(void **state)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(99),
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(98) };
	struct sockaddr_un su = { .sun_family = AF_UNIX };
	struct qkd_netaddr a;
	char buf[QKD_NETADDR_STR_MAX];

	(void)state;
	s4.sin_addr.s_addr = htonl(0x7f000002);
	assert_int_equal(qkd_netaddr_from_sockaddr((struct sockaddr *)&s6, sizeof s6, &a), QKD_OK);
	assert_string_equal(qkd_netaddr_str(&a, buf), "[::1]:99");
	assert_int_equal(qkd_netaddr_from_sockaddr((struct sockaddr *)&s4, sizeof s4, &a), QKD_OK);
	assert_string_equal(qkd_netaddr_str(&a, buf), "127.0.0.2:98");
	assert_int_equal(qkd_netaddr_from_sockaddr((struct sockaddr *)&s6, sizeof s4, &a),
			 QKD_ERR_INVAL);
	assert_int_equal(qkd_netaddr_from_sockaddr((struct sockaddr *)&su, sizeof su, &a),
			 QKD_ERR_INVAL);
	assert_int_equal(qkd_netaddr_from_sockaddr(NULL, 0, &a), QKD_ERR_INVAL);
	assert_string_equal(qkd_netaddr_str(&a, buf), "(none)");
	assert_int_equal(qkd_netaddr_port(&a), 0);
}

static struct qkd_netaddr addr(const char *text)
{
	struct qkd_netaddr a;

	assert_int_equal(qkd_netaddr_parse(text, QKD_NETADDR_PORT_ANY, &a, NULL), QKD_OK);
	return a;
}

static void test_equal_loopback(void **state)
{
	struct qkd_netaddr none = { .len = 0 };
	struct qkd_netaddr v4 = addr("127.0.0.1:80"), v6 = addr("[::1]:80");
	struct qkd_netaddr lh = addr("localhost:80"), v6b = addr("[::1]:81");
	struct qkd_netaddr v6c = addr("[::2]:80"), v6d = addr("[0:0::1]:80");

	(void)state;
	assert_true(qkd_netaddr_equal(&v4, &lh));
	assert_true(qkd_netaddr_equal(&v6, &v6d));
	assert_false(qkd_netaddr_equal(&v4, &v6));	/* one port, two families */
	assert_false(qkd_netaddr_equal(&v6, &v6b));
	assert_false(qkd_netaddr_equal(&v6, &v6c));
	assert_false(qkd_netaddr_equal(&none, &none));
	assert_true(qkd_netaddr_is_loopback(&v4));
	assert_true(qkd_netaddr_is_loopback(&v6));
	v4 = addr("127.255.0.9:1");
	assert_true(qkd_netaddr_is_loopback(&v4));
	v4 = addr("128.0.0.1:1");
	assert_false(qkd_netaddr_is_loopback(&v4));
	v4 = addr("10.0.0.1:1");
	assert_false(qkd_netaddr_is_loopback(&v4));
	v6 = addr("[::2]:1");
	assert_false(qkd_netaddr_is_loopback(&v6));
	v6 = addr("[::]:1");
	assert_false(qkd_netaddr_is_loopback(&v6));
	assert_false(qkd_netaddr_is_loopback(&none));
}

/* ---- sockets ---- */

/* Listen on text (port 0), connect, accept, one byte across; the peer as
 * accept gives it must print as peer_prefix"PORT". */
static void round_trip(const char *text, int family, const char *peer_prefix)
{
	struct qkd_netaddr l = addr(text), bound, peer;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char buf[QKD_NETADDR_STR_MAX], c = 'q';
	int lfd = -1, cfd = -1, afd = -1, again = 0;

	if (qkd_netaddr_listen(&l, SOCK_CLOEXEC, 4, &lfd) != QKD_OK)
		fail_msg("cannot listen on %s: %s (IPv6 loopback missing?)", text, strerror(errno));
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&ss, &sl), 0);
	assert_int_equal(qkd_netaddr_from_sockaddr((struct sockaddr *)&ss, sl, &bound), QKD_OK);
	assert_int_equal(qkd_netaddr_family(&bound), family);
	assert_true(qkd_netaddr_port(&bound) != 0);
	if (family == AF_INET6) {
		int v6only = 0;
		socklen_t ol = sizeof v6only;

		assert_int_equal(getsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &ol), 0);
		assert_int_equal(v6only, 1);
	}
	assert_int_equal(qkd_netaddr_socket(&bound, SOCK_CLOEXEC, &cfd), QKD_OK);
	assert_int_equal(connect(cfd, (struct sockaddr *)&bound.ss, bound.len), 0);
	sl = sizeof ss;
	afd = accept(lfd, (struct sockaddr *)&ss, &sl);
	assert_true(afd >= 0);
	assert_int_equal(qkd_netaddr_from_sockaddr((struct sockaddr *)&ss, sl, &peer), QKD_OK);
	assert_int_equal(strncmp(qkd_netaddr_str(&peer, buf), peer_prefix, strlen(peer_prefix)), 0);
	assert_true(qkd_netaddr_is_loopback(&peer));
	assert_int_equal(write(cfd, &c, 1), 1);
	c = 0;
	assert_int_equal(read(afd, &c, 1), 1);
	assert_int_equal(c, 'q');
	/* The port is taken: a second listener fails, errno kept, nothing open. */
	errno = 0;
	assert_int_equal(qkd_netaddr_listen(&bound, 0, 1, &again), QKD_ERR_IO);
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(again, -1);
	close(afd);
	close(cfd);
	close(lfd);
}

static void test_sockets(void **state)
{
	struct qkd_netaddr none = { .len = 0 };
	int fd = 0;

	(void)state;
	round_trip("127.0.0.1:0", AF_INET, "127.0.0.1:");
	round_trip("[::1]:0", AF_INET6, "[::1]:");
	errno = 0;
	assert_int_equal(qkd_netaddr_socket(&none, 0, &fd), QKD_ERR_IO);
	assert_int_equal(errno, EAFNOSUPPORT);
	assert_int_equal(fd, -1);
	assert_int_equal(qkd_netaddr_listen(&none, 0, 1, &fd), QKD_ERR_IO);
	assert_int_equal(fd, -1);
}

/* In a child, in a network namespace of its own: "[::]:0" listens IPv6
 * only. 0 on success, 77 when namespaces are not available, else the step
 * that failed. */
static int wildcard_v6only(void)
{
	struct qkd_netaddr any = addr("[::]:0");
	int fd = -1, v6only = 0;
	socklen_t ol = sizeof v6only;

	if (unshare(CLONE_NEWNET) != 0)
		return 77;
	if (qkd_netaddr_listen(&any, 0, 1, &fd) != QKD_OK)
		return 1;
	if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &ol) != 0 || v6only != 1)
		return 2;
	close(fd);
	return 0;
}

static void test_wildcard_v6only(void **state)
{
	int status = 0;
	pid_t pid;

	(void)state;
	if (geteuid() != 0)
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(wildcard_v6only());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_port_any),
		cmocka_unit_test(test_longest),
		cmocka_unit_test(test_from_host),
		cmocka_unit_test(test_from_sockaddr),
		cmocka_unit_test(test_equal_loopback),
		cmocka_unit_test(test_sockets),
		cmocka_unit_test(test_wildcard_v6only),
	};

	return cmocka_run_group_tests_name("netaddr", tests, NULL, NULL);
}
