/* config_kme.c - the optional kme group of the node configuration: the key
 * manager's ETSI GS QKD 014 server (docs/kme.md) and its SAE table
 * (docs/config.md, "kme"). Read after the links, since a remote SAE names
 * the link that reaches its KME and the server's address must not be one of
 * the links' addresses. */
#include <stdio.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/etsi014.h"
#include "qkd/kme_server.h"
#include "config_int.h"

#define NODE(f) offsetof(struct qkd_node_config, f)

/* One SAE while it is read: the entry, and the node whose links it may name. */
struct sae_read {
	struct qkd_node_sae sae;
	const struct qkd_node_config *n;
};

#define SAE(f) offsetof(struct sae_read, sae.f)

_Static_assert(QKD_NODE_SAE_ID_MAX == QKD_ETSI014_ID_MAX, "SAE ID buffers");
_Static_assert(QKD_NODE_SAE_ID_MAX >= QKD_KME_CN_MAX, "CN buffer");

/* Limits of the server (docs/kme.md), as kme_fake's defaults. */
#define KME_KEY_SIZE_DEFAULT 256u
#define KME_MIN_KEY_SIZE_DEFAULT 64u
#define KME_MAX_KEY_SIZE_DEFAULT 8192u
#define KME_KEYS_PER_REQUEST_DEFAULT 128u
#define KME_SYNC_TIMEOUT_DEFAULT 10u
/* kme.key_ttl: an hour by default, 30 days at most (docs/config.md). */
#define KME_KEY_TTL_DEFAULT 3600u
#define KME_KEY_TTL_MAX 2592000

/* An SAE or KME ID (qkd_etsi014_id_valid) into char[QKD_NODE_SAE_ID_MAX + 1]. */
static int set_id(struct cfg_ctx *c, const config_setting_t *s,
		  const struct cfg_field *f, void *obj)
{
	const char *v = NULL;

	if (cfg_get_string(c, s, f->key, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	if (!qkd_etsi014_id_valid(v))
		return cfg_failk(c, s, f->key, "'%s' is not an ID (1 to %d characters of "
				 "letters, digits, '.', '_', '~', '-')", v, QKD_ETSI014_ID_MAX);
	strcpy((char *)obj + f->off, v);
	return QKD_OK;
}

/* The subject CN of a local SAE's client certificate, compared byte for
 * byte by the server. */
static int set_cn(struct cfg_ctx *c, const config_setting_t *s,
		  const struct cfg_field *f, void *obj)
{
	const char *v = NULL;
	size_t len;

	if (cfg_get_string(c, s, f->key, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	len = strlen(v);
	if (len < 1 || len > QKD_KME_CN_MAX)
		return cfg_failk(c, s, f->key, "a CN has 1 to %d bytes, got %zu", QKD_KME_CN_MAX,
				 len);
	strcpy((char *)obj + f->off, v);
	return QKD_OK;
}

/* Parsed addresses compare: localhost is 127.0.0.1, and "[::1]" the same as
 * "[0::1]". The message quotes listen as written. Addresses of different
 * families never clash here; a wildcard ("0.0.0.0", "[::]") and a specific
 * address on one port do, at bind time, where the node names the link. */
static int set_listen(struct cfg_ctx *c, const config_setting_t *s,
		      const struct cfg_field *f, void *obj)
{
	const struct qkd_node_config *n = obj;
	const struct qkd_node_addr *a = &n->kme.listen, *o;

	if (cfg_set_addr(c, s, f, obj) != QKD_OK)
		return QKD_ERR_INVAL;
	for (size_t i = 0; i < n->nlinks; i++) {
		for (int k = 0; k < 2; k++) {
			o = k == 0 ? &n->links[i].classical : &n->links[i].fiber;
			if (qkd_netaddr_equal(&a->sa, &o->sa))
				return cfg_failk(c, s, f->key, "%s is also the %s address %s of "
						 "link '%s'", config_setting_get_string(s),
						 k == 0 ? "classical" : "fiber", o->text,
						 n->links[i].name);
		}
	}
	return QKD_OK;
}

/* The list's shape only: its elements are read once every other key of
 * the group is known (kme_read_saes). */
static int set_saes(struct cfg_ctx *c, const config_setting_t *s,
		    const struct cfg_field *f, void *obj)
{
	int len;

	(void)obj;
	if (!config_setting_is_list(s))
		return cfg_failk(c, s, f->key, "expected a list ( { ... }, ... ) of SAEs");
	len = config_setting_length(s);
	if (len < 1 || len > QKD_NODE_SAES_MAX)
		return cfg_failk(c, s, f->key, "%d SAEs: a KME has 1 to %d", len,
				 QKD_NODE_SAES_MAX);
	return QKD_OK;
}

static int set_sae_link(struct cfg_ctx *c, const config_setting_t *s,
			const struct cfg_field *f, void *obj)
{
	struct sae_read *r = obj;
	const char *v = NULL;

	if (cfg_get_string(c, s, f->key, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	for (size_t i = 0; i < r->n->nlinks; i++) {
		if (strcmp(r->n->links[i].name, v) == 0) {
			r->sae.link = (int)i;
			return QKD_OK;
		}
	}
	return cfg_failk(c, s, f->key, "'%s' is not the name of a link of this node", v);
}

static const struct cfg_field sae_fields[] = {
	{ "id", set_id, SAE(id), CFG_REQUIRED, 0, 0 },
	{ "cn", set_cn, SAE(cn), 0, 0, 0 },
	{ "link", set_sae_link, 0, 0, 0, 0 },
	{ "kme", set_id, SAE(kme_id), 0, 0, 0 },
};

static const struct cfg_field kme_fields[] = {
	{ "id", set_id, NODE(kme.id), CFG_REQUIRED, 0, 0 },
	{ "listen", set_listen, NODE(kme.listen), CFG_REQUIRED, 0, 0 },
	{ "cert", cfg_set_pem, NODE(kme.cert), CFG_REQUIRED, 0, 0 },
	{ "key", cfg_set_pem, NODE(kme.key), CFG_REQUIRED, 0, 0 },
	{ "ca", cfg_set_pem, NODE(kme.ca), CFG_REQUIRED, 0, 0 },
	/* Sizes: their rules are qkd_etsi014_limits_check's, on the whole group. */
	{ "key_size", cfg_set_u32, NODE(kme.key_size), 0, 0, 0 },
	{ "min_key_size", cfg_set_u32, NODE(kme.min_key_size), 0, 0, 0 },
	{ "max_key_size", cfg_set_u32, NODE(kme.max_key_size), 0, 0, 0 },
	{ "max_keys_per_request", cfg_set_u32, NODE(kme.max_keys_per_request), 0, 0, 0 },
	{ "max_connections", cfg_set_uint, NODE(kme.max_connections), CFG_RANGE, 0, 65536 },
	{ "per_address_connections", cfg_set_uint, NODE(kme.per_address_connections),
	  CFG_RANGE, 0, 65536 },
	{ "handshake_timeout", cfg_set_uint, NODE(kme.handshake_timeout_s), CFG_RANGE, 0, 3600 },
	{ "idle_timeout", cfg_set_uint, NODE(kme.idle_timeout_s), CFG_RANGE, 0, 86400 },
	{ "sync_timeout", cfg_set_uint, NODE(kme.sync_timeout_s), CFG_RANGE, 1, 300 },
	{ "key_ttl", cfg_set_uint, NODE(kme.key_ttl_s), CFG_RANGE, 0, KME_KEY_TTL_MAX },
	{ "saes", set_saes, 0, CFG_REQUIRED, 0, 0 },
};

/* Local (no link, no kme; cn defaults to the ID) or remote (both link and
 * kme, no cn): a remote SAE's certificate is its own KME's to check. */
static int sae_kind(struct cfg_ctx *c, const config_setting_t *g,
		    const struct qkd_node_kme *k, struct qkd_node_sae *e)
{
	const config_setting_t *cn = config_setting_get_member(g, "cn");
	const config_setting_t *link = config_setting_get_member(g, "link");
	const config_setting_t *kme = config_setting_get_member(g, "kme");

	if (link == NULL && kme == NULL) {
		if (cn == NULL)
			strcpy(e->cn, e->id);
		return QKD_OK;
	}
	if (cn != NULL)
		return cfg_failk(c, link != NULL ? link : kme, link != NULL ? "link" : "kme",
				 "an SAE with cn is local and has no link or kme; a remote "
				 "SAE has link and kme and no cn");
	if (link == NULL)
		return cfg_failk(c, g, "link", "a remote SAE (one with kme) needs the link "
				 "that reaches its KME");
	if (kme == NULL)
		return cfg_failk(c, g, "kme", "a remote SAE (one with link) needs the ID of "
				 "its KME");
	if (strcmp(e->kme_id, k->id) == 0)
		return cfg_failk(c, kme, "kme", "'%s' is this KME's own ID: a remote SAE is "
				 "attached to the KME at the other end of its link", e->kme_id);
	return QKD_OK;
}

/* IDs unique; CNs unique among local SAEs (the server maps a CN to one SAE);
 * one link reaches one peer KME. */
static int sae_unique(struct cfg_ctx *c, const config_setting_t *g,
		      const struct qkd_node_config *n, size_t i)
{
	const struct qkd_node_sae *e = &n->kme.saes[i], *o;

	for (size_t j = 0; j < i; j++) {
		o = &n->kme.saes[j];
		if (strcmp(o->id, e->id) == 0)
			return cfg_fail(c, g, "%s: SAE ID '%s' is already used by saes[%zu]",
					c->scope, e->id, j);
		if (e->link < 0 && o->link < 0 && strcmp(o->cn, e->cn) == 0)
			return cfg_fail(c, g, "%s: cn '%s' is already used by saes[%zu] ('%s')",
					c->scope, e->cn, j, o->id);
		if (e->link >= 0 && o->link == e->link && strcmp(o->kme_id, e->kme_id) != 0)
			return cfg_fail(c, g, "%s: kme '%s': link '%s' reaches KME '%s' "
					"(saes[%zu]); a link has one KME at its other end",
					c->scope, e->kme_id, n->links[e->link].name, o->kme_id, j);
	}
	return QKD_OK;
}

static int sae_read(struct cfg_ctx *c, const config_setting_t *g,
		    struct qkd_node_config *n, size_t i)
{
	struct sae_read r;
	int rc;

	memset(&r, 0, sizeof r);
	r.sae.link = -1;
	r.sae.line = (unsigned)config_setting_source_line(g);
	r.n = n;
	rc = cfg_group(c, g, sae_fields, N_OF(sae_fields), &r);
	if (rc == QKD_OK)
		rc = sae_kind(c, g, &n->kme, &r.sae);
	if (rc == QKD_OK) {
		n->kme.saes[i] = r.sae;
		n->kme.nsaes = i + 1;
		rc = sae_unique(c, g, n, i);
	}
	return rc;
}

static int kme_read_saes(struct cfg_ctx *c, const config_setting_t *s, struct qkd_node_config *n)
{
	size_t local = 0;
	int len = config_setting_length(s), rc = QKD_OK;

	for (int i = 0; rc == QKD_OK && i < len; i++) {
		snprintf(c->scope, sizeof c->scope, "kme.saes[%d]", i);
		rc = sae_read(c, config_setting_get_elem(s, (unsigned)i), n, (size_t)i);
	}
	snprintf(c->scope, sizeof c->scope, "kme");
	for (size_t i = 0; rc == QKD_OK && i < n->kme.nsaes; i++)
		local += n->kme.saes[i].link < 0;
	if (rc == QKD_OK && local == 0)
		rc = cfg_failk(c, s, "saes", "no local SAE (one without link and kme): the KME "
			       "would serve no one");
	return rc;
}

/* One address may not hold more connections than there are in all
 * (qkd_kme_server_start refuses that too; here it has a line). */
static int kme_check_connections(struct cfg_ctx *c, const config_setting_t *g,
				 const struct qkd_node_kme *k)
{
	unsigned max = k->max_connections ? k->max_connections : QKD_KME_DEFAULT_CONNECTIONS;

	if (k->per_address_connections > max)
		return cfg_fail(c, g, "kme: per_address_connections (%u) exceeds max_connections "
				"(%u)", k->per_address_connections, max);
	return QKD_OK;
}

int cfg_kme_read(struct cfg_ctx *c, const config_setting_t *g, struct qkd_node_config *n)
{
	struct qkd_node_kme *k = &n->kme;
	struct qkd_etsi014_limits lim;
	const char *why = NULL;
	int rc;

	memset(k, 0, sizeof *k);
	k->enabled = true;
	k->line = (unsigned)config_setting_source_line(g);
	k->key_size = KME_KEY_SIZE_DEFAULT;
	k->min_key_size = KME_MIN_KEY_SIZE_DEFAULT;
	k->max_key_size = KME_MAX_KEY_SIZE_DEFAULT;
	k->max_keys_per_request = KME_KEYS_PER_REQUEST_DEFAULT;
	k->sync_timeout_s = KME_SYNC_TIMEOUT_DEFAULT;
	k->key_ttl_s = KME_KEY_TTL_DEFAULT;
	if (config_setting_is_group(g))
		snprintf(c->scope, sizeof c->scope, "kme");
	rc = cfg_group(c, g, kme_fields, N_OF(kme_fields), n);
	if (rc == QKD_OK) {
		lim.key_size = k->key_size;
		lim.min_key_size = k->min_key_size;
		lim.max_key_size = k->max_key_size;
		lim.max_key_per_request = k->max_keys_per_request;
		if (qkd_etsi014_limits_check(&lim, &why) != QKD_OK)
			rc = cfg_fail(c, g, "kme: %s", why);
	}
	/* A key must outlive the wait for its verdict, or the slave's end
	 * could expire it before the master's SAE even has its key_ID. */
	if (rc == QKD_OK && k->key_ttl_s != 0 && k->key_ttl_s <= k->sync_timeout_s)
		rc = cfg_fail(c, g, "kme: key_ttl (%u s) must be 0 (never expire) or longer than "
			      "sync_timeout (%u s)", k->key_ttl_s, k->sync_timeout_s);
	if (rc == QKD_OK)
		rc = kme_check_connections(c, g, k);
	if (rc == QKD_OK)
		rc = kme_read_saes(c, config_setting_get_member(g, "saes"), n);
	c->scope[0] = '\0';
	return rc;
}
