/* netmap_dot.c - a parsed network map (netmap.c) written as graphviz dot
 * source (qkd/netmap.h, docs/relay.md "Network map").
 *
 * The ids in the map were checked as LSA ids (netmap.c), so they are
 * written between quotes as they are. Numbers are printed in the C locale
 * forms the library uses everywhere ("%.2f"), which dot reads. The text is
 * built in a memory stream: the library writes no file and prints nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netmap_int.h"
#include "qkd/error.h"

#define COLOUR_UP "darkgreen"
#define COLOUR_ALARMED "red"
#define COLOUR_DOWN "grey"
#define LABEL_SAES_MAX 4	/* SAEs named in a node's label; the rest counted */

/* "1.2 Mbit": the available key in a label. */
static void bits_text(char *dst, size_t n, uint64_t bits)
{
	if (bits < 1000)
		snprintf(dst, n, "%llu bit", (unsigned long long)bits);
	else if (bits < 1000000)
		snprintf(dst, n, "%.1f kbit", (double)bits / 1e3);
	else if (bits < 1000000000)
		snprintf(dst, n, "%.1f Mbit", (double)bits / 1e6);
	else
		snprintf(dst, n, "%.1f Gbit", (double)bits / 1e9);
}

static void write_node(FILE *f, const struct qkd_lsa *l, bool lsa, bool self)
{
	size_t i;

	fprintf(f, "  \"%s\" [label=\"%s", l->origin, l->origin);
	if (!lsa)
		fprintf(f, "\\n(no LSA)");
	for (i = 0; i < l->n_saes && i < LABEL_SAES_MAX; i++)
		fprintf(f, "%s%s", i == 0 ? "\\n" : ", ", l->saes[i]);
	if (l->n_saes > LABEL_SAES_MAX)
		fprintf(f, ", +%zu more", l->n_saes - LABEL_SAES_MAX);
	fprintf(f, "\"");
	if (!lsa)
		fprintf(f, ", style=\"rounded,dashed\", color=\"%s\"", COLOUR_DOWN);
	if (self)
		fprintf(f, ", peripheries=2, penwidth=2");
	fprintf(f, "];\n");
}

static void write_edge(FILE *f, const struct qkd_netmap_edge *e)
{
	const char *colour = e->state == QKD_LSA_UP ? COLOUR_UP
			     : e->state == QKD_LSA_ALARMED ? COLOUR_ALARMED : COLOUR_DOWN;
	const char *style = e->state == QKD_LSA_DOWN ? (e->routed ? "dashed,bold" : "dashed")
			    : (e->routed ? "bold" : "solid");
	char bits[32];

	bits_text(bits, sizeof bits, e->available_bits);
	fprintf(f, "  \"%s\" -- \"%s\" [color=\"%s\", style=\"%s\", penwidth=%.2f, "
		"label=\"QBER %.2f %%\\n%s%s%s\"];\n", e->a, e->b, colour, style,
		qkd_netmap_penwidth(e->available_bits), 100.0 * e->qber, bits,
		e->state == QKD_LSA_ALARMED ? "\\nALARMED" : "",
		e->one_sided ? "\\n(one end reports)" : "");
}

int qkd_netmap_dot(const struct qkd_netmap *m, char **out, size_t *len)
{
	char *buf = NULL;
	size_t n = 0, i;
	FILE *f;

	*out = NULL;
	*len = 0;
	f = open_memstream(&buf, &n);
	if (f == NULL)
		return QKD_ERR_NOMEM;
	fprintf(f, "graph qkdnet {\n"
		"  graph [layout=neato, overlap=false, sep=\"+20\", splines=true, fontname=\"Helvetica\", "
		"label=\"the network as node %s knows it\"];\n"
		"  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n"
		"  edge [fontname=\"Helvetica\", fontsize=9, len=2.2];\n", m->self);
	for (i = 0; i < qkd_netmap_nodes(m); i++) {
		bool lsa;
		const struct qkd_lsa *l = qkd_netmap_node(m, i, &lsa);

		write_node(f, l, lsa, strcmp(l->origin, m->self) == 0);
	}
	for (i = 0; i < m->n_edges; i++)
		write_edge(f, &m->edges[i]);
	fprintf(f, "}\n");
	if (ferror(f) != 0) {
		fclose(f);
		free(buf);
		return QKD_ERR_NOMEM;
	}
	if (fclose(f) != 0) {
		free(buf);
		return QKD_ERR_NOMEM;
	}
	*out = buf;
	*len = n;
	return QKD_OK;
}
