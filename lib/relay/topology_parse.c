/* topology_parse.c - the topology file's parser (qkd/topology.h,
 * docs/netsim.md "The topology file"). It works on a private copy of the
 * buffer, one line at a time, and stops at the first error with its line
 * and a static reason. Repeats (node ids, SAEs, linked pairs) are found
 * through one hash index (topology_index.c), so a file of 100000 lines
 * parses in linear time. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "topology_int.h"

#define TOPO_TOKENS_MAX 16	/* a link has at most 6 keys: more is an error anyway */

struct topo_parser {
	struct qkd_topology *t;
	struct topo_index idx;	/* "n<id>" -> node, "s<sae>" -> node, "l<a> <b>" -> link */
	char *tok[TOPO_TOKENS_MAX];
	size_t n_tok;
	const char *why;
};

static bool topo_sae_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > QKD_LSA_SAE_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("._~-", s[i]) == NULL)
			return false;
	return true;
}

/* A real: decimal notation, finite, within [lo, hi]. */
static bool topo_real(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	if (s[0] == '\0' || strspn(s, "0123456789.eE+-") != strlen(s))
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (*end != '\0' || errno != 0 || !isfinite(v) || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool topo_u64(const char *s, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s[0] == '\0' || strspn(s, "0123456789") != strlen(s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0 || v > hi)
		return false;
	*out = v;
	return true;
}

/* Split line (NUL terminated, comment already cut) on spaces and tabs. */
static int topo_tokens(struct topo_parser *p, char *line)
{
	p->n_tok = 0;
	for (char *s = line; *s != '\0';) {
		while (*s == ' ' || *s == '\t' || *s == '\r')
			*s++ = '\0';
		if (*s == '\0')
			break;
		if (p->n_tok == TOPO_TOKENS_MAX) {
			p->why = "too many words on the line";
			return QKD_ERR_INVAL;
		}
		p->tok[p->n_tok++] = s;
		while (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\r')
			s++;
	}
	return QKD_OK;
}

static int topo_node_saes(struct topo_parser *p, size_t node, char *list)
{
	char key[QKD_LSA_SAE_ID_MAX + 2];
	int rc = QKD_ERR_INVAL;

	for (char *s = list, *comma;; s = comma + 1) {
		comma = strchr(s, ',');
		if (comma != NULL)
			*comma = '\0';
		if (!topo_sae_valid(s)) {
			p->why = "bad SAE id (1..64 of A-Z a-z 0-9 . _ ~ -)";
			goto out;
		}
		snprintf(key, sizeof key, "s%s", s);
		if (topo_index_get(&p->idx, key, strlen(key)) >= 0) {
			p->why = "SAE used twice";
			goto out;
		}
		rc = topo_add_sae(p->t, node, s);
		if (rc == QKD_ERR_RANGE)
			p->why = "more than 64 SAEs at a node";
		if (rc != QKD_OK || (rc = topo_index_put(&p->idx, key, strlen(key), node)) != QKD_OK)
			goto out;
		rc = QKD_ERR_INVAL;
		if (comma == NULL)
			break;
	}
	rc = QKD_OK;
out:
	if (rc == QKD_ERR_RANGE)
		rc = QKD_ERR_INVAL;
	return rc;
}

static int topo_node(struct topo_parser *p)
{
	char key[QKD_NODE_NAME_MAX + 1];
	size_t at;
	int rc = QKD_ERR_INVAL;

	if (p->n_tok < 2 || !qkd_lsa_node_id_valid(p->tok[1])) {
		p->why = p->n_tok < 2 ? "node without an id" :
			 "bad node id (1..63 of A-Z a-z 0-9 . _ -, not starting with . or -)";
		goto out;
	}
	snprintf(key, sizeof key, "n%s", p->tok[1]);
	if (topo_index_get(&p->idx, key, strlen(key)) >= 0) {
		p->why = "node id used twice";
		goto out;
	}
	if (p->n_tok > 3 || (p->n_tok == 3 && strncmp(p->tok[2], "sae=", 4) != 0)) {
		p->why = p->n_tok > 3 ? "node takes one sae= list" : "unknown key";
		goto out;
	}
	if ((rc = topo_add_node(p->t, p->tok[1], &at)) != QKD_OK ||
	    (rc = topo_index_put(&p->idx, key, strlen(key), at)) != QKD_OK)
		goto out;
	if (p->n_tok == 3)
		rc = topo_node_saes(p, at, p->tok[2] + 4);
out:
	return rc;
}

/* One key=value of a link; *seen is a bit mask of the keys already given. */
static int topo_link_key(struct topo_parser *p, struct qkd_topo_link *l, char *kv,
			 unsigned *seen)
{
	static const char *const keys[] = {"channel", "km", "latency_ms", "day", "rate_bps",
					   "pool_bits"};
	char *v = strchr(kv, '=');
	size_t k;
	bool ok = false;

	p->why = "expected key=value";
	if (v == NULL)
		return QKD_ERR_INVAL;
	*v++ = '\0';
	for (k = 0; k < sizeof keys / sizeof keys[0] && strcmp(kv, keys[k]) != 0; k++)
		;
	p->why = k == sizeof keys / sizeof keys[0] ? "unknown key" :
		 (*seen & (1u << k)) ? "key given twice" : NULL;
	if (p->why != NULL)
		return QKD_ERR_INVAL;
	*seen |= 1u << k;
	switch (k) {
	case 0: ok = qkd_channel_parse(v, &l->channel) == QKD_OK &&
		     strcmp(v, "fso") != 0;
		p->why = "bad value of channel (fiber or free-space)"; break;
	case 1: ok = topo_real(v, 0, 1e5, &l->km); p->why = "bad value of km (0..100000)"; break;
	case 2: ok = topo_real(v, 0, 6e4, &l->latency_ms); l->latency_set = true;
		p->why = "bad value of latency_ms (0..60000)"; break;
	case 3: ok = !strcmp(v, "yes") || !strcmp(v, "no"); l->day = !strcmp(v, "yes");
		p->why = "bad value of day (yes or no)"; break;
	case 4: ok = topo_real(v, 0, 1e12, &l->rate_bps); l->rate_set = true;
		p->why = "bad value of rate_bps (0..1e12)"; break;
	default: ok = topo_u64(v, (uint64_t)1 << 62, &l->pool_bits);
		p->why = "bad value of pool_bits (0..2^62)"; break;
	}
	return ok ? QKD_OK : QKD_ERR_INVAL;
}

/* The two ends: known, distinct, not linked yet, room for one more link. */
static int topo_link_ends(struct topo_parser *p, size_t *a, size_t *b, char *key, size_t ksz)
{
	char k[QKD_NODE_NAME_MAX + 1];
	long ia, ib;

	p->why = "link needs two node ids";
	if (p->n_tok < 3)
		return QKD_ERR_INVAL;
	snprintf(k, sizeof k, "n%s", p->tok[1]);
	ia = topo_index_get(&p->idx, k, strlen(k));
	snprintf(k, sizeof k, "n%s", p->tok[2]);
	ib = topo_index_get(&p->idx, k, strlen(k));
	p->why = ia < 0 || ib < 0 ? "link names an unknown node" :
		 ia == ib ? "node linked to itself" : NULL;
	if (p->why != NULL)
		return QKD_ERR_INVAL;
	snprintf(key, ksz, "l%ld %ld", ia < ib ? ia : ib, ia < ib ? ib : ia);
	p->why = topo_index_get(&p->idx, key, strlen(key)) >= 0 ? "pair linked twice" :
		 (p->t->nodes[ia].n_links >= QKD_LSA_LINKS_MAX ||
		  p->t->nodes[ib].n_links >= QKD_LSA_LINKS_MAX) ? "more than 32 links at a node" :
		 NULL;
	*a = (size_t)ia;
	*b = (size_t)ib;
	return p->why == NULL ? QKD_OK : QKD_ERR_INVAL;
}

static int topo_link(struct topo_parser *p)
{
	struct qkd_topo_link l;
	char key[48];
	size_t a, b, at;
	unsigned seen = 0;
	int rc;

	if ((rc = topo_link_ends(p, &a, &b, key, sizeof key)) != QKD_OK)
		goto out;
	topo_link_defaults(&l);
	for (size_t i = 3; i < p->n_tok; i++)
		if ((rc = topo_link_key(p, &l, p->tok[i], &seen)) != QKD_OK)
			goto out;
	if (l.day && l.channel != QKD_CHANNEL_FREE_SPACE) {
		p->why = "day= applies to free-space links only";
		rc = QKD_ERR_INVAL;
		goto out;
	}
	if ((rc = topo_add_link(p->t, a, b, &at)) != QKD_OK ||
	    (rc = topo_index_put(&p->idx, key, strlen(key), at)) != QKD_OK)
		goto out;
	l.a = a;
	l.b = b;
	p->t->links[at] = l;
out:
	return rc;
}

static int topo_line(struct topo_parser *p, char *line, size_t len)
{
	int rc;

	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t' && line[i] != '\r') {
			p->why = "control character";
			return QKD_ERR_INVAL;
		}
	line[strcspn(line, "#")] = '\0';
	if ((rc = topo_tokens(p, line)) != QKD_OK || p->n_tok == 0)
		return rc;
	if (strcmp(p->tok[0], "node") == 0)
		return topo_node(p);
	if (strcmp(p->tok[0], "link") == 0)
		return topo_link(p);
	p->why = "unknown statement (node or link)";
	return QKD_ERR_INVAL;
}

/* Lines of buf up to byte limit: the line the limit falls in. */
static size_t topo_line_of(const char *buf, size_t limit)
{
	size_t line = 1;

	for (size_t i = 0; i < limit; i++)
		line += buf[i] == '\n';
	return line;
}

int qkd_topology_parse(const char *buf, size_t n, struct qkd_topology **out, size_t *line,
		       const char **why)
{
	struct topo_parser p;
	char *copy = NULL;
	int rc = QKD_ERR_RANGE;

	memset(&p, 0, sizeof p);
	topo_index_init(&p.idx);
	*out = NULL;
	*line = 0;
	if (n > QKD_TOPO_BYTES_MAX) {
		*line = topo_line_of(buf, QKD_TOPO_BYTES_MAX + 1);
		p.why = "file over 1 MiB";
		goto out;
	}
	rc = QKD_ERR_NOMEM;
	copy = malloc(n + 1);
	p.t = topo_new();
	if (copy == NULL || p.t == NULL)
		goto out;
	memcpy(copy, buf, n);
	copy[n] = '\0';
	for (size_t pos = 0; pos < n;) {
		size_t len = 0;

		while (pos + len < n && copy[pos + len] != '\n')
			len++;
		copy[pos + len] = '\0';
		if (++*line > QKD_TOPO_LINES_MAX) {
			rc = QKD_ERR_RANGE;
			p.why = "file over 100000 lines";
			goto out;
		}
		if ((rc = topo_line(&p, copy + pos, len)) != QKD_OK)
			goto out;
		pos += len + 1;
	}
	*out = p.t;
	p.t = NULL;
	*line = 0;
	rc = QKD_OK;
out:
	if (rc == QKD_ERR_NOMEM && p.why == NULL)
		p.why = "out of memory";
	*why = rc == QKD_OK ? NULL : p.why;
	qkd_topology_free(p.t);
	topo_index_cleanup(&p.idx);
	free(copy);
	return rc;
}

int qkd_topology_load(const char *path, struct qkd_topology **out, size_t *line,
		      const char **why)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0;
	int rc = QKD_ERR_IO;

	*out = NULL;
	*line = 0;
	*why = NULL;
	if (f == NULL)
		goto out;
	rc = QKD_ERR_NOMEM;
	buf = malloc(QKD_TOPO_BYTES_MAX + 1);
	if (buf == NULL)
		goto out;
	n = fread(buf, 1, QKD_TOPO_BYTES_MAX + 1, f);
	rc = QKD_ERR_IO;
	if (ferror(f))
		goto out;
	rc = qkd_topology_parse(buf, n, out, line, why);
out:
	if (f != NULL) {
		int e = errno;

		fclose(f);
		errno = e;
	}
	free(buf);
	return rc;
}
