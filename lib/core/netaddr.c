/* netaddr.c - TCP socket addresses, IPv4 and IPv6 (qkd/netaddr.h): the one
 * parser of "A.B.C.D:PORT", "[IPV6]:PORT" and "localhost:PORT", the
 * canonical printing, and the sockets that follow the address's family.
 * Users: the node configuration (lib/node/config_path.c), the node's
 * sockets (lib/node/link_net.c), the key manager (lib/kme/kme_server.c),
 * `qkd eve` (src/cmd_eve.c) and the test tools. */
#include "qkd/netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "qkd/error.h"

/* Longest host literal inet_pton may take, plus one byte to see it is longer. */
#define HOST_MAX INET6_ADDRSTRLEN

static void set_v4(struct qkd_netaddr *out, const struct in_addr *ip, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

	memset(out, 0, sizeof *out);
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr = *ip;
	out->len = sizeof *sin;
}

static void set_v6(struct qkd_netaddr *out, const struct in6_addr *ip, uint16_t port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

	memset(out, 0, sizeof *out);
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	sin6->sin6_addr = *ip;
	out->len = sizeof *sin6;
}

/* The n bytes at s as an IPv6 literal (the inside of brackets). A mapped
 * IPv4 address is refused: an IPv6-only socket can neither bind nor reach
 * it, and the IPv4 form says the same more plainly. */
static int host_v6(const char *s, size_t n, uint16_t port, struct qkd_netaddr *out,
		   const char **why)
{
	char host[HOST_MAX];
	struct in6_addr ip6;
	struct in_addr ip4;

	if (n == 0 || n >= sizeof host) {
		*why = n == 0 ? "nothing between '[' and ']'" : "not an IPv6 address between '[' and ']'";
		return QKD_ERR_INVAL;
	}
	memcpy(host, s, n);
	host[n] = '\0';
	if (memchr(host, '%', n) != NULL) {
		*why = "a zone index (%...) is not supported: use an address that needs none";
		return QKD_ERR_INVAL;
	}
	if (inet_pton(AF_INET, host, &ip4) == 1) {
		*why = "brackets are for IPv6 addresses: write an IPv4 address without them";
		return QKD_ERR_INVAL;
	}
	if (inet_pton(AF_INET6, host, &ip6) != 1) {
		*why = "not an IPv6 address between '[' and ']'";
		return QKD_ERR_INVAL;
	}
	if (IN6_IS_ADDR_V4MAPPED(&ip6)) {
		*why = "an IPv4-mapped IPv6 address: write the IPv4 address itself";
		return QKD_ERR_INVAL;
	}
	set_v6(out, &ip6, port);
	return QKD_OK;
}

/* The n bytes at s as an IPv4 literal or localhost. */
static int host_v4(const char *s, size_t n, uint16_t port, struct qkd_netaddr *out,
		   const char **why)
{
	char host[HOST_MAX];
	struct in_addr ip4;

	if (n == 0) {
		*why = "no HOST before ':'";
		return QKD_ERR_INVAL;
	}
	if (n < sizeof host) {
		memcpy(host, s, n);
		host[n] = '\0';
		ip4.s_addr = htonl(INADDR_LOOPBACK);
		if (strcmp(host, "localhost") == 0 || inet_pton(AF_INET, host, &ip4) == 1) {
			set_v4(out, &ip4, port);
			return QKD_OK;
		}
	}
	*why = "HOST is not an IPv4 address (A.B.C.D), an IPv6 address in brackets or "
	       "localhost (host names are not looked up)";
	return QKD_ERR_INVAL;
}

/* Decimal digits only, no sign, no leading zero but "0" itself, in
 * min..65535. */
static int parse_port(const char *p, unsigned min, uint16_t *port, const char **why)
{
	unsigned long v = 0;
	size_t n = strlen(p);

	if (n == 0) {
		*why = "no PORT after ':'";
		return QKD_ERR_INVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9') {
			*why = "PORT is not a decimal number";
			return QKD_ERR_INVAL;
		}
		if (i < 6)
			v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (n > 1 && p[0] == '0') {
		*why = "PORT has a leading zero";
		return QKD_ERR_INVAL;
	}
	if (n > 5 || v < min || v > 65535) {
		*why = min == 0 ? "PORT is out of range 0..65535" : "PORT is out of range 1..65535";
		return QKD_ERR_INVAL;
	}
	*port = (uint16_t)v;
	return QKD_OK;
}

/* "[IPV6]:PORT": the bracket, then the port, then the literal, so that the
 * message names the first thing wrong in reading order after the form. */
static int parse_bracketed(const char *text, unsigned min, struct qkd_netaddr *out,
			   const char **why)
{
	const char *end = strchr(text, ']');
	uint16_t port = 0;

	if (end == NULL) {
		*why = "'[' without its closing ']'";
		return QKD_ERR_INVAL;
	}
	if (end[1] != ':') {
		*why = end[1] == '\0' ? "no :PORT after ']'" : "expected ':' after ']'";
		return QKD_ERR_INVAL;
	}
	if (parse_port(end + 2, min, &port, why) != QKD_OK)
		return QKD_ERR_INVAL;
	return host_v6(text + 1, (size_t)(end - text - 1), port, out, why);
}

int qkd_netaddr_parse(const char *text, unsigned flags, struct qkd_netaddr *out,
		      const char **why)
{
	const char *colon, *w = NULL;
	unsigned min = (flags & QKD_NETADDR_PORT_ANY) ? 0 : 1;
	uint16_t port = 0;
	int rc = QKD_ERR_INVAL;

	memset(out, 0, sizeof *out);
	if (text == NULL || text[0] == '\0') {
		w = "empty: expected HOST:PORT";
		goto out;
	}
	if (text[0] == '[') {
		rc = parse_bracketed(text, min, out, &w);
		goto out;
	}
	colon = strchr(text, ':');
	if (colon == NULL) {
		w = "no :PORT";
		goto out;
	}
	if (strchr(colon + 1, ':') != NULL) {
		/* "::1:8000", "::1": which colon ends the address is anyone's guess. */
		w = "an IPv6 address goes in brackets: [ADDRESS]:PORT";
		goto out;
	}
	if (parse_port(colon + 1, min, &port, &w) != QKD_OK)
		goto out;
	rc = host_v4(text, (size_t)(colon - text), port, out, &w);
out:
	if (rc != QKD_OK)
		memset(out, 0, sizeof *out);
	if (why != NULL)
		*why = rc == QKD_OK ? NULL : w;
	return rc;
}

int qkd_netaddr_from_host(const char *host, uint16_t port, struct qkd_netaddr *out,
			  const char **why)
{
	const char *w = NULL;
	size_t n = host != NULL ? strlen(host) : 0;
	int rc;

	memset(out, 0, sizeof *out);
	if (n > 0 && host[0] == '[') {
		w = "HOST without brackets and port: an IPv4 address, an IPv6 address or localhost";
		rc = QKD_ERR_INVAL;
	} else if (host != NULL && strchr(host, ':') != NULL) {
		rc = host_v6(host, n, port, out, &w);
	} else {
		rc = host_v4(host, n, port, out, &w);
	}
	if (rc != QKD_OK)
		memset(out, 0, sizeof *out);
	if (why != NULL)
		*why = rc == QKD_OK ? NULL : w;
	return rc;
}

int qkd_netaddr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct qkd_netaddr *out)
{
	memset(out, 0, sizeof *out);
	if (sa == NULL)
		return QKD_ERR_INVAL;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		memcpy(&out->ss, sa, sizeof(struct sockaddr_in));
		out->len = sizeof(struct sockaddr_in);
		return QKD_OK;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		memcpy(&out->ss, sa, sizeof(struct sockaddr_in6));
		out->len = sizeof(struct sockaddr_in6);
		return QKD_OK;
	}
	return QKD_ERR_INVAL;
}

const char *qkd_netaddr_str(const struct qkd_netaddr *a, char buf[QKD_NETADDR_STR_MAX])
{
	char ip[INET6_ADDRSTRLEN];

	switch (qkd_netaddr_family(a)) {
	case AF_INET:
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->ss)->sin_addr, ip, sizeof ip);
		snprintf(buf, QKD_NETADDR_STR_MAX, "%s:%u", ip, (unsigned)qkd_netaddr_port(a));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, ip, sizeof ip);
		snprintf(buf, QKD_NETADDR_STR_MAX, "[%s]:%u", ip, (unsigned)qkd_netaddr_port(a));
		break;
	default:
		snprintf(buf, QKD_NETADDR_STR_MAX, "(none)");
		break;
	}
	return buf;
}

int qkd_netaddr_family(const struct qkd_netaddr *a)
{
	if (a->len == sizeof(struct sockaddr_in) && a->ss.ss_family == AF_INET)
		return AF_INET;
	if (a->len == sizeof(struct sockaddr_in6) && a->ss.ss_family == AF_INET6)
		return AF_INET6;
	return AF_UNSPEC;
}

uint16_t qkd_netaddr_port(const struct qkd_netaddr *a)
{
	switch (qkd_netaddr_family(a)) {
	case AF_INET:
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	case AF_INET6:
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	default:
		return 0;
	}
}

void qkd_netaddr_set_port(struct qkd_netaddr *a, uint16_t port)
{
	switch (qkd_netaddr_family(a)) {
	case AF_INET:
		((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
		break;
	case AF_INET6:
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
		break;
	default:
		break;
	}
}

bool qkd_netaddr_equal(const struct qkd_netaddr *a, const struct qkd_netaddr *b)
{
	const struct sockaddr_in6 *x6 = (const struct sockaddr_in6 *)&a->ss;
	const struct sockaddr_in6 *y6 = (const struct sockaddr_in6 *)&b->ss;
	int f = qkd_netaddr_family(a);

	if (f != qkd_netaddr_family(b) || qkd_netaddr_port(a) != qkd_netaddr_port(b))
		return false;
	if (f == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)&b->ss)->sin_addr.s_addr;
	if (f == AF_INET6)
		return memcmp(&x6->sin6_addr, &y6->sin6_addr, sizeof x6->sin6_addr) == 0 &&
		       x6->sin6_scope_id == y6->sin6_scope_id;
	return false;
}

bool qkd_netaddr_is_loopback(const struct qkd_netaddr *a)
{
	switch (qkd_netaddr_family(a)) {
	case AF_INET:
		return (ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr) >> 24) == 127;
	case AF_INET6:
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
	default:
		return false;
	}
}

int qkd_netaddr_socket(const struct qkd_netaddr *a, int type_flags, int *fd)
{
	int f = qkd_netaddr_family(a);

	*fd = -1;
	if (f == AF_UNSPEC) {
		errno = EAFNOSUPPORT;
		return QKD_ERR_IO;
	}
	*fd = socket(f, SOCK_STREAM | type_flags, 0);
	return *fd >= 0 ? QKD_OK : QKD_ERR_IO;
}

int qkd_netaddr_listen(const struct qkd_netaddr *a, int type_flags, int backlog, int *fd)
{
	int s = -1, one = 1, err;

	*fd = -1;
	if (qkd_netaddr_socket(a, type_flags, &s) != QKD_OK)
		return QKD_ERR_IO;
	(void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	/* An IPv6 address means IPv6 only, whatever net.ipv6.bindv6only says:
	 * "[::]:PORT" must not take IPv4 connections nobody configured. */
	if ((qkd_netaddr_family(a) == AF_INET6 &&
	     setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
	    bind(s, (const struct sockaddr *)&a->ss, a->len) != 0 || listen(s, backlog) != 0) {
		err = errno;
		close(s);
		errno = err;
		return QKD_ERR_IO;
	}
	*fd = s;
	return QKD_OK;
}
