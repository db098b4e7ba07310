/* qkd/netaddr.h - TCP socket addresses as users write them, IPv4 and IPv6
 * (docs/config.md "Addresses").
 *
 * One parser for every address the node's links, its key manager, `qkd eve`
 * and the test tools take, so that they accept the same text, refuse the
 * same text and say the same thing when they refuse:
 *
 *   A.B.C.D:PORT       an IPv4 literal in dotted-quad form
 *   [IPV6]:PORT        an IPv6 literal in brackets, as in URLs (RFC 3986
 *                      section 3.2.2): without them the last colon could
 *                      belong to the address or to the port
 *   localhost:PORT     127.0.0.1, the one name known (kept from before IPv6)
 *
 * No name is ever looked up: a node must not depend on DNS or /etc/hosts to
 * find its peer, and parsing never touches the network. PORT is decimal,
 * without sign or leading zeros. Refused with a reason: an IPv6 address
 * without brackets ("::1:8000"), brackets around an IPv4 address, an
 * unterminated bracket, a missing or out-of-range port, a zone index
 * ("%eth0"), an IPv4-mapped IPv6 address (write the IPv4 address), and any
 * other text that is not one of the three forms.
 *
 * Printing gives the canonical form: "127.0.0.1:7101", "[::1]:7101"
 * (inet_ntop's compressed lowercase), so that logs and `qkd status` show an
 * address the parser takes back unchanged.
 */
#ifndef QKD_NETADDR_H
#define QKD_NETADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* "[" + 45 characters of the longest IPv6 literal + "]:" + 5 digits + NUL. */
#define QKD_NETADDR_STR_MAX 54

/* qkd_netaddr_parse flags. */
#define QKD_NETADDR_PORT_ANY 0x1u	/* accept port 0 ("any free port", to listen) */

/* An AF_INET or AF_INET6 address and port, ready for bind and connect. */
struct qkd_netaddr {
	struct sockaddr_storage ss;	/* sockaddr_in or sockaddr_in6, network byte order */
	socklen_t len;			/* sizeof the one in ss; 0: no address */
};

/* Parse text (NUL-terminated, one of the forms above) into *out. Returns 0,
 * or QKD_ERR_INVAL with *why (when why is not NULL) a static sentence
 * saying what is wrong; *out is then zeroed. Port 0 is refused unless flags
 * has QKD_NETADDR_PORT_ANY. */
__attribute__((warn_unused_result))
int qkd_netaddr_parse(const char *text, unsigned flags, struct qkd_netaddr *out,
		      const char **why);

/* A bare host, without port or brackets: an IPv4 literal, an IPv6 literal
 * or localhost, with port (any value) into *out. Same errors as
 * qkd_netaddr_parse's host part. For tools that take HOST and PORT apart. */
__attribute__((warn_unused_result))
int qkd_netaddr_from_host(const char *host, uint16_t port, struct qkd_netaddr *out,
			  const char **why);

/* The address the kernel gave (accept, getsockname): sa of len bytes, read
 * only. QKD_ERR_INVAL for a family other than AF_INET and AF_INET6 or a len
 * too short for it. */
__attribute__((warn_unused_result))
int qkd_netaddr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct qkd_netaddr *out);

/* The canonical text of a into buf, which is returned ("(none)" when a has
 * no address). */
const char *qkd_netaddr_str(const struct qkd_netaddr *a, char buf[QKD_NETADDR_STR_MAX]);

/* AF_INET or AF_INET6 (AF_UNSPEC when a has no address). */
int qkd_netaddr_family(const struct qkd_netaddr *a);
uint16_t qkd_netaddr_port(const struct qkd_netaddr *a);
void qkd_netaddr_set_port(struct qkd_netaddr *a, uint16_t port);

/* The same family, address and port (IPv6: scope too). */
bool qkd_netaddr_equal(const struct qkd_netaddr *a, const struct qkd_netaddr *b);
/* 127.0.0.0/8 or ::1. */
bool qkd_netaddr_is_loopback(const struct qkd_netaddr *a);

/* A TCP socket of a's family: socket(family, SOCK_STREAM | type_flags, 0)
 * (type_flags: SOCK_CLOEXEC, SOCK_NONBLOCK) into *fd, which the caller
 * closes. 0, or QKD_ERR_IO with errno kept. */
__attribute__((warn_unused_result))
int qkd_netaddr_socket(const struct qkd_netaddr *a, int type_flags, int *fd);

/* A listening TCP socket on a into *fd: SO_REUSEADDR, and IPV6_V6ONLY for
 * an IPv6 address (so that "[::]:PORT" means IPv6 only: an IPv4 address is
 * configured as one), bound, listen(backlog). 0, or QKD_ERR_IO with errno
 * kept and nothing left open. */
__attribute__((warn_unused_result))
int qkd_netaddr_listen(const struct qkd_netaddr *a, int type_flags, int backlog, int *fd);

#endif
