/* config.c - qkd_node_config_load: the `qkd node` configuration file
 * (qkd/node_config.h, docs/config.md). The file is read and parsed
 * (config_file.c), then walked group by group (config_value.c,
 * config_path.c, config_link.c). */
#include <string.h>

#include "qkd/error.h"
#include "config_int.h"

#define NODE(f) offsetof(struct qkd_node_config, f)

const char *qkd_link_role_name(enum qkd_link_role r)
{
	switch (r) {
	case QKD_ROLE_ALICE: return "alice";
	case QKD_ROLE_BOB: return "bob";
	}
	return "unknown";
}

static int set_metrics(struct cfg_ctx *c, const config_setting_t *s,
		       const struct cfg_field *f, void *obj)
{
	struct qkd_node_config *n = obj;

	n->metrics_line = (unsigned)config_setting_source_line(s);
	return cfg_set_addr(c, s, f, obj);
}

static const struct cfg_field node_fields[] = {
	{ "name", cfg_set_name, NODE(name), CFG_REQUIRED, 0, 0 },
	{ "id", cfg_set_name, NODE(id), 0, 0, 0 },
	{ "status", cfg_set_status, NODE(status), CFG_REQUIRED, 0, 0 },
	{ "log_file", cfg_set_log_file, NODE(log_file), 0, 0, 0 },
	{ "log_level", cfg_set_log_level, NODE(log_level), 0, 0, 0 },
	{ "metrics", set_metrics, NODE(metrics), 0, 0, 0 },
};

/* node.metrics comes before the links and the kme group in the file's
 * order of reading, so it is compared with their addresses once they are
 * read: the same address twice would be a bind error at start, named less
 * clearly. As for kme.listen, a wildcard and a specific address on one port
 * are left to bind time. */
static int metrics_unique(struct cfg_ctx *c, const struct qkd_node_config *n)
{
	const struct qkd_node_addr *m = &n->metrics, *o;

	if (m->sa.len == 0)
		return QKD_OK;
	for (size_t i = 0; i < n->nlinks; i++)
		for (int k = 0; k < 2; k++) {
			o = k == 0 ? &n->links[i].classical : &n->links[i].fiber;
			if (qkd_netaddr_equal(&m->sa, &o->sa))
				return cfg_fail_at(c, n->metrics_line, "node.metrics: %s is also the "
						   "%s address of link '%s'", m->text,
						   k == 0 ? "classical" : "fiber", n->links[i].name);
		}
	if (n->kme.enabled && qkd_netaddr_equal(&m->sa, &n->kme.listen.sa))
		return cfg_fail_at(c, n->metrics_line, "node.metrics: %s is also the key "
				   "manager's kme.listen", m->text);
	return QKD_OK;
}

/* Two links must not share a name, a key store or an authentication key
 * (one key file at two links would reuse its one-time pads). */
static int link_unique(struct cfg_ctx *c, const config_setting_t *g,
		       const struct qkd_node_config *n, size_t i)
{
	const struct qkd_link_config *l = &n->links[i], *o;

	for (size_t j = 0; j < i; j++) {
		o = &n->links[j];
		if (strcmp(o->name, l->name) == 0)
			return cfg_fail(c, g, "%s: link name '%s' is already used by links[%zu]",
					c->scope, l->name, j);
		if (strcmp(o->store, l->store) == 0)
			return cfg_fail(c, g, "%s: store %s is already used by link '%s'",
					c->scope, l->store, o->name);
		if (strcmp(o->auth_key, l->auth_key) == 0)
			return cfg_fail(c, g, "%s: auth_key %s is already used by link '%s'",
					c->scope, l->auth_key, o->name);
	}
	return QKD_OK;
}

static int read_links(struct cfg_ctx *c, const config_setting_t *s, struct qkd_node_config *n)
{
	const config_setting_t *g;
	int len, rc = QKD_OK;

	if (!config_setting_is_list(s)) {
		rc = cfg_failk(c, s, "links", "expected a list ( { ... }, ... ) of links");
		goto out;
	}
	len = config_setting_length(s);
	if (len < 1 || len > QKD_NODE_LINKS_MAX) {
		rc = cfg_failk(c, s, "links", "%d links: a node has 1 to %d", len,
			       QKD_NODE_LINKS_MAX);
		goto out;
	}
	for (int i = 0; rc == QKD_OK && i < len; i++) {
		g = config_setting_get_elem(s, (unsigned)i);
		snprintf(c->scope, sizeof c->scope, "links[%d]", i);
		rc = cfg_link_read(c, g, &n->links[i]);
		if (rc == QKD_OK)
			rc = link_unique(c, g, n, (size_t)i);
		memcpy(n->links[i].node_id, n->id, sizeof n->id);
		/* Both ends would refuse each other in the handshake. */
		if (rc == QKD_OK && strcmp(n->links[i].peer, n->id) == 0)
			rc = cfg_fail(c, g, "%s: peer '%s' is this node's own id (node.id)", c->scope,
				      n->id);
		n->nlinks = (size_t)i + 1;
	}
	c->scope[0] = '\0';
out:
	return rc;
}

static const struct cfg_field relay_fields[] = {
	{ "paths", cfg_set_uint, NODE(relay.paths), CFG_RANGE, 1, 2 },
	{ "timeout", cfg_set_real, NODE(relay.timeout_s), CFG_RANGE, 0.5, 120 },
	{ "store", cfg_set_store, NODE(relay.store), 0, 0, 0 },
};

/* The relay group, or its defaults: one path, 5 s, NAME-relay.db beside
 * the file. */
static int read_relay(struct cfg_ctx *c, const config_setting_t *root, struct qkd_node_config *n)
{
	const config_setting_t *s = config_setting_get_member(root, "relay");
	int rc = QKD_OK;

	n->relay.paths = 1;
	n->relay.timeout_s = 5.0;
	if ((size_t)snprintf(n->relay.store, sizeof n->relay.store, "%s/%s-relay.db", c->dir,
			     n->name) >= sizeof n->relay.store)
		return cfg_fail(c, NULL, "relay.store: the default path is too long");
	if (s == NULL)
		return QKD_OK;
	n->relay.line = (unsigned)config_setting_source_line(s);
	if (config_setting_is_group(s))
		snprintf(c->scope, sizeof c->scope, "relay");
	rc = cfg_group(c, s, relay_fields, N_OF(relay_fields), n);
	c->scope[0] = '\0';
	for (size_t i = 0; rc == QKD_OK && i < n->nlinks; i++)
		if (strcmp(n->links[i].store, n->relay.store) == 0)
			rc = cfg_fail(c, s, "relay.store: %s is also link '%s''s store",
				      n->relay.store, n->links[i].name);
	return rc;
}

/* cfg_load's root callback: obj is the struct qkd_node_config. */
static int read_root(struct cfg_ctx *c, const config_setting_t *root, void *obj)
{
	struct qkd_node_config *n = obj;
	const config_setting_t *s;
	const char *key;
	int rc = QKD_OK;

	for (int i = 0; rc == QKD_OK && i < config_setting_length(root); i++) {
		s = config_setting_get_elem(root, (unsigned)i);
		key = config_setting_name(s);
		if (strcmp(key, "node") != 0 && strcmp(key, "links") != 0 &&
		    strcmp(key, "kme") != 0 && strcmp(key, "relay") != 0)
			rc = cfg_failk(c, s, key,
				       "unknown key (the file holds node, links, kme and relay)");
	}
	if (rc == QKD_OK && (s = config_setting_get_member(root, "node")) == NULL)
		rc = cfg_fail(c, NULL, "node: required group is missing");
	if (rc == QKD_OK) {
		if (config_setting_is_group(s))
			snprintf(c->scope, sizeof c->scope, "node");
		rc = cfg_group(c, s, node_fields, N_OF(node_fields), n);
		c->scope[0] = '\0';
	}
	if (rc == QKD_OK && n->id[0] == '\0')
		memcpy(n->id, n->name, sizeof n->id);
	if (rc == QKD_OK && (s = config_setting_get_member(root, "links")) == NULL)
		rc = cfg_fail(c, NULL, "links: required list is missing (a node has 1 to %d links)",
			      QKD_NODE_LINKS_MAX);
	if (rc == QKD_OK)
		rc = read_links(c, s, n);
	/* After the links: remote SAEs name them. */
	if (rc == QKD_OK && (s = config_setting_get_member(root, "kme")) != NULL)
		rc = cfg_kme_read(c, s, n);
	if (rc == QKD_OK)
		rc = read_relay(c, root, n);
	if (rc == QKD_OK)
		rc = metrics_unique(c, n);
	return rc;
}


int qkd_node_config_load(const char *path, struct qkd_node_config *cfg, char *err, size_t errlen)
{
	if (cfg != NULL) {
		memset(cfg, 0, sizeof *cfg);
		cfg->log_level = QKD_LOG_INFO;
	}
	return cfg_load(path, err, errlen, cfg, read_root);
}
