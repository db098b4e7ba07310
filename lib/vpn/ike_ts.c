/* ike_ts.c - traffic selectors between the tunnel's prefixes and the TS
 * payloads of IKEv2 (RFC 7296 sections 2.9, 3.13.1): a prefix becomes an
 * address range, any protocol, ports 0..65535; a responder narrows what
 * the initiator proposes to the intersection with its own policy; an
 * initiator checks that the answer lies within what it proposed. Used by
 * ike_sa_auth.c and ike_sa_child.c (declarations in ike_sa_int.h). */
#include <string.h>

#include "ike_sa_int.h"

static size_t alen(uint8_t type)
{
	return type == QKD_IKE_TS_IPV4 ? 4 : 16;
}

static void prefix_range(const struct qkd_vpn_prefix *p, struct qkd_ike_ts *ts)
{
	size_t n = p->family == 4 ? 4 : 16;

	memset(ts, 0, sizeof *ts);
	ts->type = p->family == 4 ? QKD_IKE_TS_IPV4 : QKD_IKE_TS_IPV6;
	ts->end_port = 0xffff;
	for (size_t i = 0; i < n; i++) {
		unsigned bits = p->len > i * 8 ? p->len - (unsigned)(i * 8) : 0;
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff00u >> bits);

		ts->start[i] = p->addr[i] & mask;
		ts->end[i] = (uint8_t)(p->addr[i] | (uint8_t)~mask);
	}
}

void ike_ts_from_prefixes(const struct qkd_vpn_prefix *p, size_t n, struct qkd_ike_tss *out)
{
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < n && out->n < QKD_IKE_MAX_SELECTORS; i++)
		prefix_range(&p[i], &out->ts[out->n++]);
}

/* a ∩ b into out; false when empty or of different families. */
static bool intersect(const struct qkd_ike_ts *a, const struct qkd_ike_ts *b,
		      struct qkd_ike_ts *out)
{
	size_t n = alen(a->type);

	if (a->type != b->type || (a->ip_proto != 0 && b->ip_proto != 0 &&
				   a->ip_proto != b->ip_proto))
		return false;
	memset(out, 0, sizeof *out);
	out->type = a->type;
	out->ip_proto = a->ip_proto != 0 ? a->ip_proto : b->ip_proto;
	out->start_port = a->start_port > b->start_port ? a->start_port : b->start_port;
	out->end_port = a->end_port < b->end_port ? a->end_port : b->end_port;
	memcpy(out->start, memcmp(a->start, b->start, n) > 0 ? a->start : b->start, n);
	memcpy(out->end, memcmp(a->end, b->end, n) < 0 ? a->end : b->end, n);
	return out->start_port <= out->end_port && memcmp(out->start, out->end, n) <= 0;
}

bool ike_ts_narrow(const struct qkd_ike_tss *offer, const struct qkd_vpn_prefix *allowed,
		   size_t n, struct qkd_ike_tss *out)
{
	struct qkd_ike_ts mine, x;

	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < offer->n; i++) {
		for (size_t j = 0; j < n; j++) {
			prefix_range(&allowed[j], &mine);
			if (intersect(&offer->ts[i], &mine, &x) && out->n < QKD_IKE_MAX_SELECTORS)
				out->ts[out->n++] = x;
		}
	}
	return out->n > 0;
}

static bool inside(const struct qkd_ike_ts *g, const struct qkd_ike_ts *o)
{
	size_t n = alen(g->type);

	return g->type == o->type && (o->ip_proto == 0 || g->ip_proto == o->ip_proto) &&
	       g->start_port >= o->start_port && g->end_port <= o->end_port &&
	       g->start_port <= g->end_port && memcmp(g->start, o->start, n) >= 0 &&
	       memcmp(g->end, o->end, n) <= 0 && memcmp(g->start, g->end, n) <= 0;
}

bool ike_ts_within(const struct qkd_ike_tss *got, const struct qkd_ike_tss *offered)
{
	if (got->n == 0)
		return false;
	for (size_t i = 0; i < got->n; i++) {
		bool ok = false;

		for (size_t j = 0; j < offered->n && !ok; j++)
			ok = inside(&got->ts[i], &offered->ts[j]);
		if (!ok)
			return false;
	}
	return true;
}
