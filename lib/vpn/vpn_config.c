/* vpn_config.c - qkd_vpn_config_load: the `qkd vpn` configuration file
 * (qkd/vpn_config.h, docs/vpn.md "Configuration"): read and parsed as the
 * node's is (lib/node/config_file.c), then the gateway group, the kmes
 * list and the tunnels list (vpn_config_tunnel.c). */
#include <stdio.h>
#include <string.h>

#include "qkd/error.h"
#include "vpn_config_int.h"

#define GW(f) offsetof(struct qkd_vpn_config, f)
#define KME(f) offsetof(struct qkd_vpn_kme, f)

static int set_tun(struct cfg_ctx *c, const config_setting_t *s, const struct cfg_field *f,
		   void *obj)
{
	struct qkd_vpn_config *v = obj;
	const char *val = NULL;

	if (cfg_get_string(c, s, f->key, &val) != QKD_OK)
		return QKD_ERR_INVAL;
	if (val[0] == '\0' || strlen(val) > QKD_TUN_NAME_MAX || strpbrk(val, "/% \t\n:") != NULL)
		return cfg_failk(c, s, f->key, "'%s': a device name of 1 to %d characters, without "
				 "'/', '%%', ':' or spaces", val, QKD_TUN_NAME_MAX);
	strcpy(v->tun, val);
	return QKD_OK;
}

static const struct cfg_field gateway_fields[] = {
	{ "name", cfg_set_name, GW(name), CFG_REQUIRED, 0, 0 },
	{ "listen", cfg_set_addr, GW(listen), CFG_REQUIRED, 0, 0 },
	{ "status", cfg_set_status, GW(status), CFG_REQUIRED, 0, 0 },
	{ "tun", set_tun, 0, 0, 0, 0 },
	{ "mtu", cfg_set_uint, GW(mtu), CFG_RANGE, QKD_TUN_MTU_MIN, 9000 },
	{ "log_file", cfg_set_log_file, GW(log_file), 0, 0, 0 },
	{ "log_level", cfg_set_log_level, GW(log_level), 0, 0, 0 },
	{ "metrics", cfg_set_addr, GW(metrics), 0, 0, 0 },
};

static int set_url(struct cfg_ctx *c, const config_setting_t *s, const struct cfg_field *f,
		   void *obj)
{
	struct qkd_vpn_kme *k = obj;
	const char *val = NULL;

	if (cfg_get_string(c, s, f->key, &val) != QKD_OK)
		return QKD_ERR_INVAL;
	/* ETSI GS QKD 014 runs over HTTPS with mutual TLS only (clause 4.3). */
	if (strncmp(val, "https://", 8) != 0 || val[8] == '\0' || strlen(val) >= sizeof k->url ||
	    strpbrk(val, " \t\n\"") != NULL)
		return cfg_failk(c, s, f->key, "'%s': an https:// URL of the key manager (at most "
				 "%zu characters)", val, sizeof k->url - 1);
	strcpy(k->url, val);
	return QKD_OK;
}

static const struct cfg_field kme_fields[] = {
	{ "name", cfg_set_name, KME(name), CFG_REQUIRED, 0, 0 },
	{ "url", set_url, 0, CFG_REQUIRED, 0, 0 },
	{ "ca", cfg_set_pem, KME(ca), CFG_REQUIRED, 0, 0 },
	{ "cert", cfg_set_pem, KME(cert), CFG_REQUIRED, 0, 0 },
	{ "key", cfg_set_pem, KME(key), CFG_REQUIRED, 0, 0 },
};

/* A list of at most max groups under key; each read by one(). */
static int read_list(struct cfg_ctx *c, const config_setting_t *s, const char *key, int max,
		     size_t *count, struct qkd_vpn_config *v,
		     int (*one)(struct cfg_ctx *, const config_setting_t *, struct qkd_vpn_config *,
				size_t))
{
	int len, rc = QKD_OK;

	if (!config_setting_is_list(s))
		return cfg_failk(c, s, key, "expected a list ( { ... }, ... )");
	len = config_setting_length(s);
	if (len < 1 || len > max)
		return cfg_failk(c, s, key, "%d entries: 1 to %d", len, max);
	for (int i = 0; rc == QKD_OK && i < len; i++) {
		snprintf(c->scope, sizeof c->scope, "%s[%d]", key, i);
		rc = one(c, config_setting_get_elem(s, (unsigned)i), v, (size_t)i);
		*count = (size_t)i + 1;
	}
	c->scope[0] = '\0';
	return rc;
}

static int kme_read(struct cfg_ctx *c, const config_setting_t *g, struct qkd_vpn_config *v,
		    size_t i)
{
	struct qkd_vpn_kme *k = &v->kmes[i];
	int rc;

	k->line = (unsigned)config_setting_source_line(g);
	rc = cfg_group(c, g, kme_fields, N_OF(kme_fields), k);
	for (size_t j = 0; rc == QKD_OK && j < i; j++)
		if (strcmp(v->kmes[j].name, k->name) == 0)
			rc = cfg_fail(c, g, "%s: kme name '%s' is already used by kmes[%zu]", c->scope,
				      k->name, j);
	return rc;
}

/* cfg_load's root callback: obj is the struct qkd_vpn_config. */
static int read_root(struct cfg_ctx *c, const config_setting_t *root, void *obj)
{
	struct qkd_vpn_config *v = obj;
	const config_setting_t *s;
	int rc = QKD_OK;

	for (int i = 0; rc == QKD_OK && i < config_setting_length(root); i++) {
		const char *key = config_setting_name(config_setting_get_elem(root, (unsigned)i));

		if (strcmp(key, "gateway") != 0 && strcmp(key, "kmes") != 0 &&
		    strcmp(key, "tunnels") != 0)
			rc = cfg_failk(c, config_setting_get_elem(root, (unsigned)i), key,
				       "unknown setting (gateway, kmes, tunnels)");
	}
	if (rc != QKD_OK)
		return rc;
	if ((s = config_setting_get_member(root, "gateway")) == NULL)
		return cfg_fail(c, NULL, "gateway: required group is missing");
	snprintf(c->scope, sizeof c->scope, "gateway");
	rc = cfg_group(c, s, gateway_fields, N_OF(gateway_fields), v);
	c->scope[0] = '\0';
	if (rc == QKD_OK && (s = config_setting_get_member(root, "kmes")) != NULL)
		rc = read_list(c, s, "kmes", QKD_VPN_KMES_MAX, &v->n_kmes, v, kme_read);
	if (rc == QKD_OK && (s = config_setting_get_member(root, "tunnels")) == NULL)
		rc = cfg_fail(c, NULL, "tunnels: required list is missing (1 to %d tunnels)",
			      QKD_VPN_TUNNELS_MAX);
	if (rc == QKD_OK)
		rc = read_list(c, s, "tunnels", QKD_VPN_TUNNELS_MAX, &v->n_tunnels, v,
			       vpn_tunnel_read);
	if (rc == QKD_OK && v->metrics.sa.len != 0 && qkd_netaddr_equal(&v->metrics.sa, &v->listen.sa))
		rc = cfg_fail(c, NULL, "gateway.metrics: %s is also gateway.listen", v->listen.text);
	return rc;
}


int qkd_vpn_config_load(const char *path, struct qkd_vpn_config *cfg, char *err, size_t errlen)
{
	if (cfg != NULL) {
		memset(cfg, 0, sizeof *cfg);
		cfg->log_level = QKD_LOG_INFO;
		strcpy(cfg->tun, "qkd0");
		cfg->mtu = 1400;
	}
	return cfg_load(path, err, errlen, cfg, read_root);
}
