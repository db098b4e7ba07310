/* vpn_prefix.c - traffic selectors written as prefixes in `qkd vpn`'s
 * configuration (qkd/vpn_config.h): "192.168.1.0/24", "fd00::/64", or one
 * address. The IKE TS payload carries each as an address range (RFC 7296
 * section 3.13.1); a prefix with host bits set is refused rather than
 * silently widened, since it is most likely a typing error. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/vpn_config.h"

static bool host_bits_zero(const struct qkd_vpn_prefix *p)
{
	size_t nbytes = p->family == 4 ? 4 : 16;

	for (size_t i = 0; i < nbytes; i++) {
		unsigned keep = p->len >= 8 * (i + 1) ? 8 : p->len > 8 * i ? p->len - 8 * i : 0;
		uint8_t mask = (uint8_t)(keep == 8 ? 0xff : (0xff00u >> keep) & 0xff);

		if (p->addr[i] & (uint8_t)~mask)
			return false;
	}
	return true;
}

int qkd_vpn_prefix_parse(const char *s, struct qkd_vpn_prefix *out, const char **why)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned long len;

	memset(out, 0, sizeof *out);
	*why = "not an address or prefix (192.168.1.0/24, fd00::/64)";
	if (s == NULL || strlen(s) >= sizeof buf)
		return QKD_ERR_INVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1)
		out->family = 4;
	else if (inet_pton(AF_INET6, buf, out->addr) == 1)
		out->family = 6;
	else
		return QKD_ERR_INVAL;
	out->len = out->family == 4 ? 32 : 128;
	if (slash != NULL) {
		*why = "a prefix length of 0..32 (IPv4) or 0..128 (IPv6)";
		if (slash[1] < '0' || slash[1] > '9' || strlen(slash + 1) > 3)
			return QKD_ERR_INVAL;
		len = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || len > out->len)
			return QKD_ERR_INVAL;
		out->len = (uint8_t)len;
	}
	*why = "host bits set after the prefix length";
	if (!host_bits_zero(out))
		return QKD_ERR_INVAL;
	*why = NULL;
	return QKD_OK;
}

bool qkd_vpn_prefix_contains(const struct qkd_vpn_prefix *p, uint8_t family,
			     const uint8_t addr[16])
{
	struct qkd_vpn_prefix host = { .family = family, .len = family == 4 ? 32 : 128 };

	memcpy(host.addr, addr, 16);
	return qkd_vpn_prefix_overlap(p, &host);	/* a host overlaps p iff p holds it */
}

bool qkd_vpn_prefix_overlap(const struct qkd_vpn_prefix *a, const struct qkd_vpn_prefix *b)
{
	unsigned n = a->len < b->len ? a->len : b->len;

	if (a->family != b->family)
		return false;
	for (unsigned i = 0; i < n / 8; i++)
		if (a->addr[i] != b->addr[i])
			return false;
	if (n % 8 != 0) {
		uint8_t mask = (uint8_t)(0xff00u >> (n % 8));

		if ((a->addr[n / 8] & mask) != (b->addr[n / 8] & mask))
			return false;
	}
	return true;
}

const char *qkd_vpn_qkd_policy_name(enum qkd_vpn_qkd_policy p)
{
	switch (p) {
	case QKD_VPN_QKD_REQUIRED: return "required";
	case QKD_VPN_QKD_PREFERRED: return "preferred";
	case QKD_VPN_QKD_OFF: return "off";
	}
	return "unknown";
}
