/* metrics.c - qkd_metrics_render (qkd/metrics.h): a node's snapshot as
 * the Prometheus text exposition format 0.0.4, the format Prometheus
 * scrapes over HTTP. Per family: "# HELP", "# TYPE", then one line a
 * sample, "name{label="value",...} value". Samples of a family stay
 * together (the format requires it), so the link families loop over the
 * links inside, not the other way round. docs/metrics.md lists the
 * families; src/node_metrics.c serves the text. */
#include "qkd/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"

#define ST(f) offsetof(struct qkd_link_status, f)
#define N_OF(t) (sizeof(t) / sizeof((t)[0]))

/* The text being built; nomem once an allocation failed (later writes do
 * nothing, the caller sees it at the end). */
struct mbuf {
	char *p;
	size_t len, cap;
	bool nomem;
	unsigned nlabels;	/* of the sample being written */
};

static void put(struct mbuf *b, const char *s, size_t n)
{
	char *np;
	size_t cap;

	if (b->nomem)
		return;
	if (n + 1 > b->cap - b->len) {
		cap = b->cap ? b->cap : 4096;
		while (cap - b->len < n + 1)
			cap *= 2;
		if ((np = realloc(b->p, cap)) == NULL) {
			b->nomem = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(struct mbuf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void family(struct mbuf *b, const char *name, const char *type, const char *help)
{
	puts_(b, "# HELP ");
	puts_(b, name);
	puts_(b, " ");
	puts_(b, help);
	puts_(b, "\n# TYPE ");
	puts_(b, name);
	puts_(b, " ");
	puts_(b, type);
	puts_(b, "\n");
}

static void sample(struct mbuf *b, const char *name)
{
	puts_(b, name);
	b->nlabels = 0;
}

/* A label value may hold any UTF-8; the format escapes exactly backslash,
 * double quote and line feed (as \\, \" and \n). */
static void label(struct mbuf *b, const char *key, const char *value)
{
	const char *p = value;

	puts_(b, b->nlabels++ == 0 ? "{" : ",");
	puts_(b, key);
	puts_(b, "=\"");
	while (*p != '\0') {
		size_t run = strcspn(p, "\\\"\n");

		put(b, p, run);
		p += run;
		if (*p == '\0')
			break;
		puts_(b, *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : "\\n");
		p++;
	}
	puts_(b, "\"");
}

static void value_text(struct mbuf *b, const char *v)
{
	puts_(b, b->nlabels > 0 ? "} " : " ");
	puts_(b, v);
	puts_(b, "\n");
}

static void value_u64(struct mbuf *b, uint64_t v)
{
	char t[24];

	snprintf(t, sizeof t, "%" PRIu64, v);
	value_text(b, t);
}

/* Go's ParseFloat reads what Prometheus reads: NaN, +Inf, -Inf, and %g. */
static void value_f64(struct mbuf *b, double v)
{
	char t[32];

	if (isnan(v))
		snprintf(t, sizeof t, "NaN");
	else if (isinf(v))
		snprintf(t, sizeof t, "%s", v > 0 ? "+Inf" : "-Inf");
	else
		snprintf(t, sizeof t, "%.15g", v);
	value_text(b, t);
}

/* ---- the link families ---- */

enum field_kind { F_U64, F_F64, F_BOOL };

/* One sample of a link: the value of its label (NULL: the family has no
 * label but link) and the status field it shows. */
struct link_value {
	const char *lv;
	size_t off;
	enum field_kind kind;
};

struct link_family {
	const char *name, *type, *help;
	const char *lk;			/* the family's own label, or NULL */
	struct link_value v[8];
	size_t n;
};

static const struct link_family link_families[] = {
	{ "qkd_link_qber_ratio", "gauge",
	  "Quantum bit error rate of the link's last round that corrected frames.",
	  NULL, { { NULL, ST(last_qber), F_F64 } }, 1 },
	{ "qkd_link_key_rate_bits_per_second", "gauge",
	  "Key bits stored per second since the node started.",
	  NULL, { { NULL, ST(key_rate_bps), F_F64 } }, 1 },
	{ "qkd_link_stored_blocks", "gauge", "Key blocks in the link's store.",
	  NULL, { { NULL, ST(stored_blocks), F_U64 } }, 1 },
	{ "qkd_link_stored_bits", "gauge", "Key bits in the link's store.",
	  NULL, { { NULL, ST(stored_bits), F_U64 } }, 1 },
	{ "qkd_link_available_bits", "gauge", "Key bits of the link's store not yet taken.",
	  NULL, { { NULL, ST(available_bits), F_U64 } }, 1 },
	{ "qkd_link_last_block_bits", "gauge", "Size of the last key block stored.",
	  NULL, { { NULL, ST(last_block_bits), F_U64 } }, 1 },
	{ "qkd_link_rounds_total", "counter", "Rounds since the node started, by result.",
	  "result", { { "ok", ST(rounds_ok), F_U64 }, { "empty", ST(rounds_empty), F_U64 },
		      { "failed", ST(rounds_failed), F_U64 },
		      { "qber_abort", ST(rounds_qber_abort), F_U64 } }, 4 },
	{ "qkd_link_auth_bits", "gauge",
	  "Authentication key bits left: in all, and of the poorer direction.",
	  "kind", { { "left", ST(auth_bits_left), F_U64 },
		    { "poorer_direction", ST(auth_bits_poorer), F_U64 } }, 2 },
	{ "qkd_link_auth_spent_bits_total", "counter", "Authentication key bits spent on tags.",
	  NULL, { { NULL, ST(auth_bits_spent), F_U64 } }, 1 },
	{ "qkd_link_auth_replenished_bits_total", "counter",
	  "Authentication key bits received: the bootstrap key and every refill.",
	  NULL, { { NULL, ST(auth_bits_replenished), F_U64 } }, 1 },
	{ "qkd_link_session_key_bits_total", "counter",
	  "Key bits distilled (blocks and refills) since the node started.",
	  NULL, { { NULL, ST(session_key_bits), F_U64 } }, 1 },
	{ "qkd_link_session_auth_bits_total", "counter",
	  "Authentication key bits spent since the node started.",
	  NULL, { { NULL, ST(session_auth_bits), F_U64 } }, 1 },
	{ "qkd_link_tags_failed_total", "counter", "Authentication tags that failed to verify.",
	  NULL, { { NULL, ST(tags_failed), F_U64 } }, 1 },
	{ "qkd_link_strangers_refused_total", "counter",
	  "Connections that failed the handshake's gate.",
	  NULL, { { NULL, ST(strangers_refused), F_U64 } }, 1 },
	{ "qkd_link_service_messages_total", "counter",
	  "Messages of the services on the link's channel: sent, delivered, dropped as unknown.",
	  "kind", { { "sent", ST(service_sent), F_U64 },
		    { "delivered", ST(service_delivered), F_U64 },
		    { "unknown", ST(service_unknown), F_U64 } }, 3 },
	{ "qkd_link_blocks_quarantined", "gauge", "Stored blocks that failed their digest.",
	  NULL, { { NULL, ST(blocks_quarantined), F_U64 } }, 1 },
	{ "qkd_link_alarm", "gauge", "1 while the alarm is raised, else 0.",
	  "alarm", { { "auth_exhausted", ST(auth_exhausted), F_BOOL },
		     { "auth_low", ST(auth_low), F_BOOL },
		     { "disk_fault", ST(disk_fault), F_BOOL },
		     { "eavesdropping_suspected", ST(eavesdropping_suspected), F_BOOL } }, 4 },
	{ "qkd_link_kme_available_bits", "gauge",
	  "Free key bits of this end's half, which the key manager can issue.",
	  NULL, { { NULL, ST(kme_available_bits), F_U64 } }, 1 },
	{ "qkd_link_kme_keys", "gauge", "Key manager records in the link's store, by state.",
	  "state", { { "outbox", ST(kme_outbox), F_U64 }, { "ready", ST(kme_ready), F_U64 },
		     { "delivered", ST(kme_delivered), F_U64 },
		     { "refused", ST(kme_refused), F_U64 },
		     { "abandoned", ST(kme_abandoned), F_U64 },
		     { "withdrawn", ST(kme_withdrawn), F_U64 },
		     { "quarantined", ST(kme_quarantined), F_U64 } }, 7 },
	{ "qkd_link_kme_expired_total", "counter",
	  "Ready keys that expired unfetched (kme.key_ttl), their bits wiped.",
	  NULL, { { NULL, ST(kme_expired), F_U64 } }, 1 },
	{ "qkd_link_kme_lost_bits_total", "counter",
	  "Key bits consumed at this end for keys no SAE gets (failed, withdrawn, expired).",
	  NULL, { { NULL, ST(kme_lost_bits), F_U64 } }, 1 },
	{ "qkd_link_kme_pruned_total", "counter", "Key manager tombstones pruned.",
	  NULL, { { NULL, ST(kme_pruned), F_U64 } }, 1 },
};

static void link_value_put(struct mbuf *b, const struct qkd_link_status *s,
			   const struct link_value *v)
{
	const char *p = (const char *)s + v->off;
	uint64_t u;
	double d;
	bool t;

	switch (v->kind) {
	case F_U64:
		memcpy(&u, p, sizeof u);
		value_u64(b, u);
		break;
	case F_F64:
		memcpy(&d, p, sizeof d);
		value_f64(b, d);
		break;
	case F_BOOL:
		memcpy(&t, p, sizeof t);
		value_u64(b, t ? 1 : 0);
		break;
	}
}

static void link_family_put(struct mbuf *b, const struct qkd_metrics_snapshot *snap,
			    const struct link_family *f)
{
	family(b, f->name, f->type, f->help);
	for (size_t i = 0; i < snap->nlinks; i++)
		for (size_t k = 0; k < f->n; k++) {
			sample(b, f->name);
			label(b, "link", snap->links[i].name);
			if (f->lk != NULL)
				label(b, f->lk, f->v[k].lv);
			link_value_put(b, &snap->links[i].status, &f->v[k]);
		}
}

/* The node's name, each link's role and state: info-style gauges, 1. */
static void info_put(struct mbuf *b, const struct qkd_metrics_snapshot *snap)
{
	family(b, "qkd_node_info", "gauge", "The node's name; always 1.");
	sample(b, "qkd_node_info");
	label(b, "node", snap->node);
	value_u64(b, 1);
	family(b, "qkd_link_info", "gauge", "A configured link and its role; always 1.");
	for (size_t i = 0; i < snap->nlinks; i++) {
		sample(b, "qkd_link_info");
		label(b, "link", snap->links[i].name);
		label(b, "role", qkd_link_role_name(snap->links[i].role));
		value_u64(b, 1);
	}
	family(b, "qkd_link_state", "gauge", "The link's current state (as qkd status shows it); 1.");
	for (size_t i = 0; i < snap->nlinks; i++) {
		sample(b, "qkd_link_state");
		label(b, "link", snap->links[i].name);
		label(b, "state", snap->links[i].status.state);
		value_u64(b, 1);
	}
}

/* ---- the key manager's families ---- */

static void kme_requests_put(struct mbuf *b, const struct qkd_kme_counters *k)
{
	char code[12];		/* an int's decimal digits and sign, whatever the compiler sees */

	family(b, "qkd_kme_requests_total", "counter",
	       "Key manager responses, by ETSI 014 endpoint and HTTP status code.");
	for (int e = 0; e < QKD_KME_EP_COUNT; e++)
		for (int c = 0; c < QKD_KME_CODES; c++) {
			if (k->requests[e][c] == 0)
				continue;
			snprintf(code, sizeof code, "%d", c + QKD_KME_CODE_MIN);
			sample(b, "qkd_kme_requests_total");
			label(b, "endpoint", qkd_kme_endpoint_name((enum qkd_kme_endpoint)e));
			label(b, "code", code);
			value_u64(b, k->requests[e][c]);
		}
	family(b, "qkd_kme_keys_served_total", "counter",
	       "Keys handed to SAEs in successful enc_keys and dec_keys responses.");
	for (int i = 0; i < 2; i++) {
		sample(b, "qkd_kme_keys_served_total");
		label(b, "call", i == 0 ? "enc_keys" : "dec_keys");
		value_u64(b, k->keys_served[i]);
	}
}

/* Cumulative buckets as the format wants them; the count is the +Inf
 * bucket, so the two always agree. */
static void kme_latency_put(struct mbuf *b, const struct qkd_kme_counters *k)
{
	static const char name[] = "qkd_kme_request_duration_seconds";
	uint64_t cum = 0;
	char le[32];

	family(b, name, "histogram",
	       "Time from a request's arrival to its response being queued.");
	for (size_t i = 0; i <= QKD_KME_LATENCY_BUCKETS; i++) {
		cum += k->latency[i];
		if (i < QKD_KME_LATENCY_BUCKETS)
			snprintf(le, sizeof le, "%g", qkd_kme_latency_bounds_s[i]);
		else
			snprintf(le, sizeof le, "+Inf");
		sample(b, "qkd_kme_request_duration_seconds_bucket");
		label(b, "le", le);
		value_u64(b, cum);
	}
	sample(b, "qkd_kme_request_duration_seconds_sum");
	value_f64(b, (double)k->latency_sum_ns / 1e9);
	sample(b, "qkd_kme_request_duration_seconds_count");
	value_u64(b, cum);
}

/* ---- the relay's families (docs/relay.md "Metrics") ---- */

static void relay_counter(struct mbuf *b, const char *name, const char *help, uint64_t v)
{
	family(b, name, "counter", help);
	sample(b, name);
	value_u64(b, v);
}

static void relay_put(struct mbuf *b, const struct qkd_metrics_relay *r)
{
	static const char *const outcome[] = { "started", "completed", "failed", "two_paths" };
	const uint64_t keys[] = { r->stats.relays_started, r->stats.relays_completed,
				  r->stats.relays_failed, r->stats.relays_two_paths };
	static const char *const lsa_kind[] = { "originated", "received", "refused" };
	const uint64_t lsas[] = { r->stats.lsa_originated, r->stats.lsa_received,
				  r->stats.lsa_refused };

	family(b, "qkd_relay_nodes", "gauge", "Nodes in the link-state database, this one included.");
	sample(b, "qkd_relay_nodes");
	value_u64(b, r->nodes);
	family(b, "qkd_relay_route_cost", "gauge",
	       "Cost of the route to a node (docs/relay.md, Metric), by destination and next hop.");
	for (size_t i = 0; i < r->nroutes; i++) {
		sample(b, "qkd_relay_route_cost");
		label(b, "dest", r->routes[i].dest);
		label(b, "next_hop", r->routes[i].next_hop);
		value_f64(b, r->routes[i].cost);
	}
	family(b, "qkd_relay_route_hops", "gauge", "Links on the route to a node.");
	for (size_t i = 0; i < r->nroutes; i++) {
		sample(b, "qkd_relay_route_hops");
		label(b, "dest", r->routes[i].dest);
		value_u64(b, r->routes[i].hops);
	}
	family(b, "qkd_relay_lsa_total", "counter", "Link-state advertisements, by what became of them.");
	for (size_t i = 0; i < N_OF(lsas); i++) {
		sample(b, "qkd_relay_lsa_total");
		label(b, "kind", lsa_kind[i]);
		value_u64(b, lsas[i]);
	}
	family(b, "qkd_relay_keys_total", "counter",
	       "End-to-end keys this node relayed as their source, by outcome.");
	for (size_t i = 0; i < N_OF(keys); i++) {
		sample(b, "qkd_relay_keys_total");
		label(b, "outcome", outcome[i]);
		value_u64(b, keys[i]);
	}
	relay_counter(b, "qkd_relay_route_changes_total", "Destinations whose path moved.",
		      r->stats.route_changes);
	relay_counter(b, "qkd_relay_reroutes_total", "Relay tries after a key's first.",
		      r->stats.reroutes);
	relay_counter(b, "qkd_relay_shares_forwarded_total", "Key shares forwarded as a relay.",
		      r->stats.shares_forwarded);
	relay_counter(b, "qkd_relay_keys_delivered_total",
		      "Relayed keys kept for this node's SAEs (as destination).",
		      r->stats.keys_delivered);
	relay_counter(b, "qkd_relay_pad_bits_total", "Link key spent on relay pads, sent and received.",
		      r->stats.pad_bits);
	relay_counter(b, "qkd_relay_refused_total",
		      "Relay messages refused: a loop, a spent pad, an unknown key_ID or SAE.",
		      r->stats.refused);
	family(b, "qkd_relay_withdrawals_total", "counter",
	       "Withdrawals of keys given up on: sent as source, received as destination.");
	sample(b, "qkd_relay_withdrawals_total");
	label(b, "direction", "sent");
	value_u64(b, r->stats.withdrawals_sent);
	sample(b, "qkd_relay_withdrawals_total");
	label(b, "direction", "received");
	value_u64(b, r->stats.withdrawals_received);
}

int qkd_metrics_render(const struct qkd_metrics_snapshot *snap, char **out, size_t *len)
{
	struct mbuf b = { .p = NULL };
	int rc = QKD_ERR_INVAL;

	if (out != NULL)
		*out = NULL;
	if (snap == NULL || out == NULL || len == NULL || snap->node == NULL ||
	    (snap->nlinks > 0 && snap->links == NULL))
		goto out;
	for (size_t i = 0; i < snap->nlinks; i++)
		if (snap->links[i].name == NULL)
			goto out;
	info_put(&b, snap);
	for (size_t f = 0; f < N_OF(link_families); f++)
		link_family_put(&b, snap, &link_families[f]);
	if (snap->kme != NULL) {
		kme_requests_put(&b, snap->kme);
		kme_latency_put(&b, snap->kme);
	}
	if (snap->relay != NULL)
		relay_put(&b, snap->relay);
	if (b.nomem || b.p == NULL) {
		rc = QKD_ERR_NOMEM;
		goto out;
	}
	*out = b.p;
	*len = b.len;
	b.p = NULL;
	rc = 0;
out:
	free(b.p);
	return rc;
}
