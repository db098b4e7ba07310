/* libFuzzer target: the socket address parser (lib/core/netaddr.c,
 * qkd/netaddr.h). The input: u8 flags (bit 0: QKD_NETADDR_PORT_ANY, bit 1:
 * also read the rest as a bare host for qkd_netaddr_from_host), then the
 * text, cut at the first NUL.
 *
 * Besides not crashing or reading out of bounds, it checks the parser's
 * promises: an accepted address is AF_INET or AF_INET6 with the matching
 * length, its canonical text fits QKD_NETADDR_STR_MAX, parses back to the
 * very same bytes, and brackets appear in it exactly for IPv6; a refused one
 * has a reason and is zeroed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "qkd/error.h"
#include "qkd/netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_TEXT_MAX 512

/* a holds an address: check it and its round trip. */
static void check_accepted(const struct qkd_netaddr *a, unsigned flags)
{
	struct qkd_netaddr b;
	char buf[QKD_NETADDR_STR_MAX];
	const char *s;
	int f = qkd_netaddr_family(a);

	if (f == AF_INET ? a->len != sizeof(struct sockaddr_in)
			 : f != AF_INET6 || a->len != sizeof(struct sockaddr_in6))
		abort();
	s = qkd_netaddr_str(a, buf);
	if (memchr(buf, '\0', sizeof buf) == NULL || (s[0] == '[') != (f == AF_INET6))
		abort();
	if (qkd_netaddr_parse(s, flags | QKD_NETADDR_PORT_ANY, &b, NULL) != QKD_OK ||
	    memcmp(a, &b, sizeof b) != 0 || !qkd_netaddr_equal(a, &b))
		abort();
	if (qkd_netaddr_port(a) == 0 && qkd_netaddr_parse(s, 0, &b, NULL) == QKD_OK)
		abort();
}

static void check_refused(const struct qkd_netaddr *a, const char *why)
{
	static const struct qkd_netaddr zero;

	if (why == NULL || why[0] == '\0' || memcmp(a, &zero, sizeof zero) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[FZ_TEXT_MAX + 1];
	struct qkd_netaddr a;
	const char *why = NULL;
	unsigned flags;
	size_t n;

	if (size < 1)
		return 0;
	flags = data[0] & QKD_NETADDR_PORT_ANY;
	n = size - 1 < FZ_TEXT_MAX ? size - 1 : FZ_TEXT_MAX;
	memcpy(text, data + 1, n);
	text[n] = '\0';
	if (qkd_netaddr_parse(text, flags, &a, &why) == QKD_OK) {
		if (why != NULL || (!(flags & QKD_NETADDR_PORT_ANY) && qkd_netaddr_port(&a) == 0))
			abort();
		check_accepted(&a, flags);
	} else {
		check_refused(&a, why);
	}
	if (data[0] & 2) {
		why = NULL;
		if (qkd_netaddr_from_host(text, 4242, &a, &why) == QKD_OK) {
			if (qkd_netaddr_port(&a) != 4242)
				abort();
			check_accepted(&a, 0);
		} else {
			check_refused(&a, why);
		}
	}
	return 0;
}
