/* netmap.c - the network a node knows, read from the `relay` object of its
 * status JSON (qkd/netmap.h, docs/relay.md "Network map").
 *
 * Each LSA of the database is read into a struct qkd_lsa and checked with
 * qkd_lsa_check, so an id that reaches the dot text is one an LSA could
 * carry ([A-Za-z0-9._-], [A-Za-z0-9._~-] for SAEs): nothing needs quoting.
 * The two ends' reports of a link are then merged by sorting half-edges,
 * so a database at its bound (4 096 origins of 32 links) costs one sort.
 * netmap_dot.c draws the result.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netmap_int.h"
#include "qkd/error.h"
#include "qkd/lsdb.h"

__attribute__((format(printf, 3, 4)))
static int bad(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (n > 0)
		vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return QKD_ERR_PROTO;
}

/* A string member copied into dst[size]: present, a string, shorter than size. */
static int get_str(json_t *o, const char *key, const char *at, char *dst, size_t size,
		   char *why, size_t n)
{
	const char *s = json_string_value(json_object_get(o, key));

	if (s == NULL)
		return bad(why, n, "%s.%s: missing or not a string", at, key);
	if (strlen(s) >= size || strlen(s) != json_string_length(json_object_get(o, key)))
		return bad(why, n, "%s.%s: too long or holds a NUL", at, key);
	memcpy(dst, s, strlen(s) + 1);
	return QKD_OK;
}

/* A non-negative member: an integer, or any number when real_ok. */
static int get_u64(json_t *o, const char *key, const char *at, bool real_ok, uint64_t *v,
		   char *why, size_t n)
{
	json_t *x = json_object_get(o, key);
	double d;

	if (json_is_integer(x) && json_integer_value(x) >= 0) {
		*v = (uint64_t)json_integer_value(x);
		return QKD_OK;
	}
	d = json_number_value(x);
	if (real_ok && json_is_real(x) && d >= 0 && d < 1.8e19) {
		*v = (uint64_t)llround(d);
		return QKD_OK;
	}
	return bad(why, n, "%s.%s: missing or not a %s >= 0", at, key,
		   real_ok ? "number" : "whole number");
}

static int parse_state(const char *s, uint8_t *state)
{
	if (strcmp(s, "up") == 0)
		*state = QKD_LSA_UP;
	else if (strcmp(s, "down") == 0)
		*state = QKD_LSA_DOWN;
	else if (strcmp(s, "alarmed") == 0)
		*state = QKD_LSA_ALARMED;
	else
		return QKD_ERR_PROTO;
	return QKD_OK;
}

static int parse_link(json_t *o, const char *at, struct qkd_lsa_link *k, char *why, size_t n)
{
	char state[16];
	json_t *q = json_object_get(o, "qber");
	int rc;

	if (!json_is_object(o))
		return bad(why, n, "%s: not an object", at);
	rc = get_str(o, "neighbour", at, k->neighbour, sizeof k->neighbour, why, n);
	if (rc == QKD_OK)
		rc = get_str(o, "state", at, state, sizeof state, why, n);
	if (rc == QKD_OK && parse_state(state, &k->state) != QKD_OK)
		return bad(why, n, "%s.state: '%s' is not up, down or alarmed", at, state);
	if (rc == QKD_OK && (!json_is_number(q) || !(json_number_value(q) >= 0) ||
			     json_number_value(q) > 1))
		return bad(why, n, "%s.qber: missing or not a number in [0, 1]", at);
	k->qber = json_number_value(q);
	if (rc == QKD_OK)
		rc = get_u64(o, "stored_bits", at, false, &k->stored_bits, why, n);
	if (rc == QKD_OK)
		rc = get_u64(o, "available_bits", at, false, &k->available_bits, why, n);
	if (rc == QKD_OK)
		rc = get_u64(o, "rate_bps", at, true, &k->rate_bps, why, n);
	return rc;
}

static int parse_saes(json_t *a, const char *at, struct qkd_lsa *l, char *why, size_t n)
{
	json_t *s;
	size_t i;

	if (!json_is_array(a))
		return bad(why, n, "%s.saes: missing or not an array", at);
	if (json_array_size(a) > QKD_LSA_SAES_MAX)
		return bad(why, n, "%s.saes: more than %d SAEs", at, QKD_LSA_SAES_MAX);
	json_array_foreach(a, i, s) {
		const char *v = json_string_value(s);

		if (v == NULL || strlen(v) > QKD_LSA_SAE_ID_MAX || strlen(v) != json_string_length(s))
			return bad(why, n, "%s.saes[%zu]: not an SAE id", at, i);
		memcpy(l->saes[i], v, strlen(v) + 1);
	}
	l->n_saes = json_array_size(a);
	return QKD_OK;
}

/* relay.lsdb[idx] into *l, checked as an LSA off the wire would be. */
static int parse_lsa(json_t *o, size_t idx, struct qkd_lsa *l, char *why, size_t n)
{
	char at[64], lat[96];
	json_t *links = json_object_get(o, "links"), *k;
	const char *reason;
	size_t i;
	int rc;

	snprintf(at, sizeof at, "relay.lsdb[%zu]", idx);
	if (!json_is_object(o))
		return bad(why, n, "%s: not an object", at);
	rc = get_str(o, "origin", at, l->origin, sizeof l->origin, why, n);
	if (rc == QKD_OK)
		rc = get_u64(o, "seq", at, false, &l->seq, why, n);
	if (rc == QKD_OK)
		rc = parse_saes(json_object_get(o, "saes"), at, l, why, n);
	if (rc != QKD_OK)
		return rc;
	if (!json_is_array(links) || json_array_size(links) > QKD_LSA_LINKS_MAX)
		return bad(why, n, "%s.links: missing, not an array or over %d links", at,
			   QKD_LSA_LINKS_MAX);
	json_array_foreach(links, i, k) {
		snprintf(lat, sizeof lat, "%s.links[%zu]", at, i);
		rc = parse_link(k, lat, &l->links[i], why, n);
		if (rc != QKD_OK)
			return rc;
	}
	l->n_links = json_array_size(links);
	if (qkd_lsa_check(l, &reason) != QKD_OK)
		return bad(why, n, "%s (origin '%.63s'): %s", at, l->origin, reason);
	return QKD_OK;
}

static int cmp_lsa(const void *x, const void *y)
{
	return strcmp(((const struct qkd_lsa *)x)->origin, ((const struct qkd_lsa *)y)->origin);
}

static int parse_lsdb(json_t *relay, struct qkd_netmap *m, char *why, size_t n)
{
	json_t *db = json_object_get(relay, "lsdb"), *o;
	size_t i;
	int rc;

	if (!json_is_array(db))
		return bad(why, n, "relay.lsdb: missing or not an array");
	if (json_array_size(db) > QKD_LSDB_NODES_MAX) {
		bad(why, n, "relay.lsdb: more than %d LSAs", QKD_LSDB_NODES_MAX);
		return QKD_ERR_RANGE;
	}
	m->lsas = calloc(json_array_size(db) + 1, sizeof *m->lsas);
	if (m->lsas == NULL)
		return QKD_ERR_NOMEM;
	json_array_foreach(db, i, o) {
		rc = parse_lsa(o, i, &m->lsas[i], why, n);
		if (rc != QKD_OK)
			return rc;
	}
	m->n_lsas = json_array_size(db);
	qsort(m->lsas, m->n_lsas, sizeof *m->lsas, cmp_lsa);
	for (i = 1; i < m->n_lsas; i++)
		if (strcmp(m->lsas[i - 1].origin, m->lsas[i].origin) == 0)
			return bad(why, n, "relay.lsdb: origin '%s' twice", m->lsas[i].origin);
	return QKD_OK;
}

/* One end's report of a link, keyed by the pair in byte order. */
struct half {
	const char *a, *b;
	const struct qkd_lsa_link *r;
};

static int cmp_half(const void *x, const void *y)
{
	const struct half *p = x, *q = y;
	int c = strcmp(p->a, q->a);

	return c != 0 ? c : strcmp(p->b, q->b);
}

/* Both ends' reports of one pair (h[0], and h[1] when two) into e. */
static void merge(struct qkd_netmap_edge *e, const struct half *h, size_t k)
{
	memcpy(e->a, h[0].a, strlen(h[0].a) + 1);
	memcpy(e->b, h[0].b, strlen(h[0].b) + 1);
	e->one_sided = k == 1;
	e->qber = h[0].r->qber;
	e->available_bits = h[0].r->available_bits;
	e->state = h[0].r->state;
	if (k == 2) {
		e->qber = fmax(e->qber, h[1].r->qber);
		if (h[1].r->available_bits < e->available_bits)
			e->available_bits = h[1].r->available_bits;
		if (h[1].r->state == QKD_LSA_ALARMED || e->state == QKD_LSA_ALARMED)
			e->state = QKD_LSA_ALARMED;
		else if (h[1].r->state != QKD_LSA_UP)
			e->state = QKD_LSA_DOWN;
	} else if (e->state == QKD_LSA_UP) {
		e->state = QKD_LSA_DOWN;	/* not confirmed by the far end */
	}
}

static int build_edges(struct qkd_netmap *m)
{
	size_t total = 0, nh = 0, i, j;
	struct half *h;

	for (i = 0; i < m->n_lsas; i++)
		total += m->lsas[i].n_links;
	h = calloc(total + 1, sizeof *h);
	m->edges = calloc(total + 1, sizeof *m->edges);
	if (h == NULL || m->edges == NULL) {
		free(h);
		return QKD_ERR_NOMEM;
	}
	for (i = 0; i < m->n_lsas; i++)
		for (j = 0; j < m->lsas[i].n_links; j++) {
			const char *o = m->lsas[i].origin, *nb = m->lsas[i].links[j].neighbour;
			bool lo = strcmp(o, nb) < 0;

			h[nh++] = (struct half){ lo ? o : nb, lo ? nb : o, &m->lsas[i].links[j] };
		}
	qsort(h, nh, sizeof *h, cmp_half);
	/* Origins are distinct and an LSA names a neighbour once, so a pair
	 * has at most two reports, one from each end. */
	for (i = 0; i < nh; i += j) {
		j = i + 1 < nh && cmp_half(&h[i], &h[i + 1]) == 0 ? 2 : 1;
		merge(&m->edges[m->n_edges++], &h[i], j);
	}
	free(h);
	return QKD_OK;
}

static int cmp_edge(const void *x, const void *y)
{
	const struct qkd_netmap_edge *p = x, *q = y;
	int c = strcmp(p->a, q->a);

	return c != 0 ? c : strcmp(p->b, q->b);
}

/* The pair u, v among the edges, or NULL. */
static struct qkd_netmap_edge *find_edge(struct qkd_netmap *m, const char *u, const char *v)
{
	struct qkd_netmap_edge key;
	bool lo = strcmp(u, v) < 0;

	snprintf(key.a, sizeof key.a, "%s", lo ? u : v);
	snprintf(key.b, sizeof key.b, "%s", lo ? v : u);
	return bsearch(&key, m->edges, m->n_edges, sizeof key, cmp_edge);
}

/* relay.routes: each path's links marked routed. A hop that is no edge
 * of the database (a route from before the last LSA) marks nothing. */
static int mark_routes(json_t *relay, struct qkd_netmap *m, char *why, size_t n)
{
	json_t *routes = json_object_get(relay, "routes"), *r, *p;
	size_t i, j;

	if (routes == NULL)
		return QKD_OK;
	if (!json_is_array(routes))
		return bad(why, n, "relay.routes: not an array");
	json_array_foreach(routes, i, r) {
		const char *prev = NULL;

		p = json_object_get(r, "path");
		if (!json_is_array(p) || json_array_size(p) < 2 ||
		    json_array_size(p) > QKD_LSDB_NODES_MAX)
			return bad(why, n, "relay.routes[%zu].path: missing, or not an array of "
				   "2 to %d node ids", i, QKD_LSDB_NODES_MAX);
		for (j = 0; j < json_array_size(p); j++) {
			const char *id = json_string_value(json_array_get(p, j));
			struct qkd_netmap_edge *e;

			if (!qkd_lsa_node_id_valid(id))
				return bad(why, n, "relay.routes[%zu].path[%zu]: not a node id", i, j);
			if (prev != NULL && strcmp(prev, id) != 0 && (e = find_edge(m, prev, id)) != NULL)
				e->routed = true;
			prev = id;
		}
	}
	return QKD_OK;
}

static bool has_lsa(const struct qkd_netmap *m, const char *id)
{
	struct qkd_lsa key;

	snprintf(key.origin, sizeof key.origin, "%s", id);
	return bsearch(&key, m->lsas, m->n_lsas, sizeof key, cmp_lsa) != NULL;
}

/* The neighbours that no LSA of their own describes, sorted, once each. */
static int find_bare(struct qkd_netmap *m)
{
	size_t i, k, w = 0;

	m->bare = calloc(2 * m->n_edges + 1, sizeof *m->bare);
	if (m->bare == NULL)
		return QKD_ERR_NOMEM;
	for (i = 0; i < m->n_edges; i++)
		for (k = 0; k < 2; k++) {
			const char *id = k == 0 ? m->edges[i].a : m->edges[i].b;

			if (!has_lsa(m, id))
				snprintf(m->bare[m->n_bare++].origin, QKD_NODE_NAME_MAX, "%s", id);
		}
	qsort(m->bare, m->n_bare, sizeof *m->bare, cmp_lsa);
	for (i = 0; i < m->n_bare; i++)
		if (w == 0 || strcmp(m->bare[w - 1].origin, m->bare[i].origin) != 0)
			m->bare[w++] = m->bare[i];
	m->n_bare = w;
	return QKD_OK;
}

static int parse_relay(json_t *root, struct qkd_netmap *m, char *why, size_t n)
{
	json_t *relay;
	int rc;

	if (!json_is_object(root))
		return bad(why, n, "not a status object");
	relay = json_object_get(root, "relay");
	if (relay == NULL || json_is_null(relay)) {
		snprintf(why, n, "the node runs no relay service");
		return QKD_ERR_INVAL;
	}
	if (!json_is_object(relay))
		return bad(why, n, "relay: not an object");
	rc = get_str(relay, "self", "relay", m->self, sizeof m->self, why, n);
	if (rc == QKD_OK && !qkd_lsa_node_id_valid(m->self))
		rc = bad(why, n, "relay.self: not a node id");
	if (rc == QKD_OK)
		rc = parse_lsdb(relay, m, why, n);
	if (rc == QKD_OK)
		rc = build_edges(m);
	if (rc == QKD_OK)
		rc = mark_routes(relay, m, why, n);
	if (rc == QKD_OK)
		rc = find_bare(m);
	return rc;
}

int qkd_netmap_parse(const char *json, size_t len, struct qkd_netmap **out, char *why,
		     size_t whylen)
{
	struct qkd_netmap *m = NULL;
	json_error_t je;
	json_t *root = NULL;
	int rc;

	*out = NULL;
	if (whylen > 0)
		why[0] = '\0';
	if (len > QKD_NETMAP_JSON_MAX) {
		snprintf(why, whylen, "status JSON over %u bytes", QKD_NETMAP_JSON_MAX);
		return QKD_ERR_RANGE;
	}
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		rc = bad(why, whylen, "not JSON: %s (line %d)", je.text, je.line);
		goto out;
	}
	m = calloc(1, sizeof *m);
	rc = m == NULL ? QKD_ERR_NOMEM : parse_relay(root, m, why, whylen);
	if (rc == QKD_OK) {
		*out = m;
		m = NULL;
	}
out:
	qkd_netmap_free(m);
	json_decref(root);
	return rc;
}

void qkd_netmap_free(struct qkd_netmap *m)
{
	if (m == NULL)
		return;
	free(m->lsas);
	free(m->bare);
	free(m->edges);
	free(m);
}

const char *qkd_netmap_self(const struct qkd_netmap *m)
{
	return m->self;
}

size_t qkd_netmap_nodes(const struct qkd_netmap *m)
{
	return m->n_lsas + m->n_bare;
}

const struct qkd_lsa *qkd_netmap_node(const struct qkd_netmap *m, size_t i, bool *lsa)
{
	if (i >= m->n_lsas + m->n_bare)
		return NULL;
	if (lsa != NULL)
		*lsa = i < m->n_lsas;
	return i < m->n_lsas ? &m->lsas[i] : &m->bare[i - m->n_lsas];
}

size_t qkd_netmap_edges(const struct qkd_netmap *m)
{
	return m->n_edges;
}

const struct qkd_netmap_edge *qkd_netmap_edge(const struct qkd_netmap *m, size_t i)
{
	return i < m->n_edges ? &m->edges[i] : NULL;
}

double qkd_netmap_penwidth(uint64_t available_bits)
{
	double w = 1.0 + log2(1.0 + (double)available_bits / 65536.0);

	return w > 8.0 ? 8.0 : w;
}
