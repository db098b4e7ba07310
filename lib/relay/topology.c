/* topology.c - the topology struct (qkd/topology.h): growing it, writing it
 * back in the file format, and what a link's defaults resolve to (latency,
 * key rate from the optical model). The parser is topology_parse.c, the
 * generator topology_gen.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/decoy.h"
#include "qkd/error.h"
#include "qkd/optical.h"
#include "topology_int.h"

struct qkd_topology *topo_new(void)
{
	return calloc(1, sizeof(struct qkd_topology));
}

void qkd_topology_free(struct qkd_topology *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n_nodes; i++)
		free(t->nodes[i].saes);
	free(t->nodes);
	free(t->links);
	free(t);
}

/* Make room for one more of n elements of size sz in *p (capacity *cap). */
static int topo_reserve(void **p, size_t *cap, size_t n, size_t sz)
{
	size_t c = *cap ? 2 * *cap : 16;
	void *q;

	if (n < *cap)
		return QKD_OK;
	q = realloc(*p, c * sz);
	if (q == NULL)
		return QKD_ERR_NOMEM;
	*p = q;
	*cap = c;
	return QKD_OK;
}

int topo_add_node(struct qkd_topology *t, const char *id, size_t *at)
{
	struct qkd_topo_node *n;
	int rc = topo_reserve((void **)&t->nodes, &t->cap_nodes, t->n_nodes, sizeof *t->nodes);

	if (rc != QKD_OK)
		return rc;
	n = &t->nodes[t->n_nodes];
	memset(n, 0, sizeof *n);
	snprintf(n->id, sizeof n->id, "%s", id);
	*at = t->n_nodes++;
	return QKD_OK;
}

int topo_add_sae(struct qkd_topology *t, size_t node, const char *sae)
{
	struct qkd_topo_node *n = &t->nodes[node];
	char (*s)[QKD_LSA_SAE_ID_MAX + 1];

	if (n->n_saes >= QKD_TOPO_NODE_SAES_MAX)
		return QKD_ERR_RANGE;
	s = realloc(n->saes, (n->n_saes + 1) * sizeof *s);
	if (s == NULL)
		return QKD_ERR_NOMEM;
	n->saes = s;
	snprintf(s[n->n_saes], sizeof s[0], "%s", sae);
	n->n_saes++;
	return QKD_OK;
}

void topo_link_defaults(struct qkd_topo_link *l)
{
	memset(l, 0, sizeof *l);
	l->channel = QKD_CHANNEL_FIBER;
	l->km = QKD_TOPO_KM_DEFAULT;
	l->pool_bits = QKD_TOPO_POOL_DEFAULT;
}

int topo_add_link(struct qkd_topology *t, size_t a, size_t b, size_t *at)
{
	int rc = topo_reserve((void **)&t->links, &t->cap_links, t->n_links, sizeof *t->links);

	if (rc != QKD_OK)
		return rc;
	topo_link_defaults(&t->links[t->n_links]);
	t->links[t->n_links].a = a;
	t->links[t->n_links].b = b;
	t->nodes[a].n_links++;
	t->nodes[b].n_links++;
	*at = t->n_links++;
	return QKD_OK;
}

long qkd_topology_find(const struct qkd_topology *t, const char *id)
{
	for (size_t i = 0; i < t->n_nodes; i++)
		if (strcmp(t->nodes[i].id, id) == 0)
			return (long)i;
	return -1;
}

double qkd_topology_link_latency_s(const struct qkd_topo_link *l)
{
	double ms = l->latency_set ? l->latency_ms :
		    QKD_TOPO_MS_PER_KM * l->km + QKD_TOPO_MS_PER_HOP;

	return ms / 1000.0;
}

double qkd_topology_optics_rate_bps(const struct qkd_link_params *p)
{
	double eta = qkd_link_transmittance(p) * p->detector_efficiency, r;

	if (!(eta > 0) || eta > 1)
		return 0;
	r = qkd_decoy_asymptotic_rate(QKD_TOPO_RATE_MU, eta, qkd_link_noise_per_gate(p),
				      p->misalignment, QKD_TOPO_RATE_F_EC);
	return isfinite(r) && r > 0 ? p->rate_hz * 0.5 * r : 0;
}

double qkd_topology_link_rate_bps(const struct qkd_topo_link *l)
{
	struct qkd_link_params p;

	if (l->rate_set)
		return l->rate_bps;
	qkd_link_params_default(&p);
	p.channel = l->channel;
	p.distance_km = l->km;
	p.daylight = l->day;
	return qkd_topology_optics_rate_bps(&p);
}

/* Appends to a growing string; a failed allocation sticks in s->rc. */
struct topo_str {
	char *p;
	size_t len, cap;
	int rc;
};

static void topo_printf(struct topo_str *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void topo_printf(struct topo_str *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->rc != QKD_OK)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(s->p ? s->p + s->len : NULL, s->p ? s->cap - s->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			s->rc = QKD_ERR_INVAL;
			return;
		}
		if (s->p != NULL && s->len + (size_t)n < s->cap) {
			s->len += (size_t)n;
			return;
		}
		size_t c = (s->cap ? 2 * s->cap : 4096) + (size_t)n;
		char *q = realloc(s->p, c);

		if (q == NULL) {
			s->rc = QKD_ERR_NOMEM;
			return;
		}
		s->p = q;
		s->cap = c;
	}
}

static void topo_format_link(struct topo_str *s, const struct qkd_topology *t,
			     const struct qkd_topo_link *l)
{
	topo_printf(s, "link %s %s", t->nodes[l->a].id, t->nodes[l->b].id);
	if (l->channel != QKD_CHANNEL_FIBER)
		topo_printf(s, " channel=%s", qkd_channel_name(l->channel));
	if (l->km != QKD_TOPO_KM_DEFAULT)
		topo_printf(s, " km=%.17g", l->km);
	if (l->latency_set)
		topo_printf(s, " latency_ms=%.17g", l->latency_ms);
	if (l->day)
		topo_printf(s, " day=yes");
	if (l->rate_set)
		topo_printf(s, " rate_bps=%.17g", l->rate_bps);
	if (l->pool_bits != QKD_TOPO_POOL_DEFAULT)
		topo_printf(s, " pool_bits=%llu", (unsigned long long)l->pool_bits);
	topo_printf(s, "\n");
}

int qkd_topology_format(const struct qkd_topology *t, char **out, size_t *len)
{
	struct topo_str s = {NULL, 0, 0, QKD_OK};

	*out = NULL;
	*len = 0;
	topo_printf(&s, "# %zu nodes, %zu links (docs/netsim.md)\n", t->n_nodes, t->n_links);
	for (size_t i = 0; i < t->n_nodes; i++) {
		const struct qkd_topo_node *n = &t->nodes[i];

		topo_printf(&s, "node %s", n->id);
		for (size_t k = 0; k < n->n_saes; k++)
			topo_printf(&s, "%s%s", k ? "," : " sae=", n->saes[k]);
		topo_printf(&s, "\n");
	}
	for (size_t i = 0; i < t->n_links; i++)
		topo_format_link(&s, t, &t->links[i]);
	if (s.rc != QKD_OK) {
		free(s.p);
		return s.rc;
	}
	*out = s.p;
	*len = s.len;
	return QKD_OK;
}
