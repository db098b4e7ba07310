/* vpn_config_tunnel.c - one element of the tunnels list of `qkd vpn`'s
 * configuration (qkd/vpn_config.h, docs/vpn.md "Configuration"): the
 * tunnel's policy read through the node's table-driven machinery
 * (lib/node/config_int.h), then its defaults and the checks between keys. */
#include <stdio.h>
#include <string.h>

#include "qkd/error.h"
#include "vpn_config_int.h"

#define TUN(f) offsetof(struct qkd_vpn_tunnel, f)

static int set_bool(struct cfg_ctx *c, const config_setting_t *s, const struct cfg_field *f,
		    void *obj)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return cfg_failk(c, s, f->key, "expected true or false");
	*(bool *)((char *)obj + f->off) = config_setting_get_bool(s) != 0;
	return QKD_OK;
}

/* "aes128gcm16" or "aes256gcm16": AES-GCM with a 16-byte ICV. */
static int set_aead(struct cfg_ctx *c, const config_setting_t *s, const struct cfg_field *f,
		    void *obj)
{
	struct qkd_vpn_aead *a = (struct qkd_vpn_aead *)((char *)obj + f->off);
	const char *v = NULL;

	if (cfg_get_string(c, s, f->key, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	if (strcmp(v, "aes128gcm16") == 0)
		a->key_bits = 128;
	else if (strcmp(v, "aes256gcm16") == 0)
		a->key_bits = 256;
	else
		return cfg_failk(c, s, f->key, "'%s': aes128gcm16 or aes256gcm16 (AES-GCM, "
				 "16-byte ICV, 128- or 256-bit key)", v);
	return QKD_OK;
}

static int dh_one(struct cfg_ctx *c, const config_setting_t *e, const char *key,
		  struct qkd_vpn_tunnel *t)
{
	const char *v = config_setting_get_string(e);
	unsigned g;

	if (v == NULL)
		return cfg_failk(c, e, key, "expected group names (\"x25519\", \"modp2048\")");
	if (strcmp(v, "x25519") == 0)
		g = QKD_VPN_DH_X25519;
	else if (strcmp(v, "modp2048") == 0)
		g = QKD_VPN_DH_MODP2048;
	else
		return cfg_failk(c, e, key, "'%s': x25519 (group 31) or modp2048 (group 14)", v);
	if (t->dh & g)
		return cfg_failk(c, e, key, "'%s' is listed twice", v);
	if (t->dh == 0)
		t->first_dh = g;
	t->dh |= g;
	return QKD_OK;
}

/* A list of groups, the initiator's choice first. */
static int set_dh(struct cfg_ctx *c, const config_setting_t *s, const struct cfg_field *f,
		  void *obj)
{
	struct qkd_vpn_tunnel *t = obj;
	int n = config_setting_length(s), rc = QKD_OK;

	if (!config_setting_is_array(s) && !config_setting_is_list(s))
		return cfg_failk(c, s, f->key, "expected [\"x25519\", \"modp2048\"] or one of them");
	if (n < 1)
		return cfg_failk(c, s, f->key, "at least one group");
	t->dh = 0;
	for (int i = 0; rc == QKD_OK && i < n; i++)
		rc = dh_one(c, config_setting_get_elem(s, (unsigned)i), f->key, t);
	return rc;
}

static int set_policy(struct cfg_ctx *c, const config_setting_t *s, const struct cfg_field *f,
		      void *obj)
{
	struct qkd_vpn_tunnel *t = obj;
	const char *v = NULL;

	if (cfg_get_string(c, s, f->key, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	for (int p = QKD_VPN_QKD_REQUIRED; p <= QKD_VPN_QKD_OFF; p++)
		if (strcmp(v, qkd_vpn_qkd_policy_name((enum qkd_vpn_qkd_policy)p)) == 0) {
			t->qkd = (enum qkd_vpn_qkd_policy)p;
			return QKD_OK;
		}
	return cfg_failk(c, s, f->key, "'%s': required, preferred or off", v);
}

/* Traffic selectors: a list of 1..QKD_VPN_TS_MAX prefixes. */
static int set_ts(struct cfg_ctx *c, const config_setting_t *s, const struct cfg_field *f,
		  void *obj)
{
	struct qkd_vpn_tunnel *t = obj;
	bool local = strcmp(f->key, "local_ts") == 0;
	struct qkd_vpn_prefix *p = local ? t->local_ts : t->remote_ts;
	size_t *n = local ? &t->n_local_ts : &t->n_remote_ts;
	int len = config_setting_length(s);

	if (!config_setting_is_array(s) && !config_setting_is_list(s))
		return cfg_failk(c, s, f->key, "expected a list of prefixes [\"10.1.0.0/16\", ...]");
	if (len < 1 || len > QKD_VPN_TS_MAX)
		return cfg_failk(c, s, f->key, "%d prefixes: 1 to %d", len, QKD_VPN_TS_MAX);
	for (int i = 0; i < len; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e), *why = NULL;

		if (v == NULL || qkd_vpn_prefix_parse(v, &p[i], &why) != QKD_OK)
			return cfg_failk(c, e, f->key, "'%s': %s", v != NULL ? v : "(not a string)",
					 why != NULL ? why : "expected a prefix string");
	}
	*n = (size_t)len;
	return QKD_OK;
}

/* [soft, hard]: soft < hard when both are set (0 is none). */
static int set_limit(struct cfg_ctx *c, const config_setting_t *s, const struct cfg_field *f,
		     void *obj)
{
	struct qkd_vpn_limit *l = (struct qkd_vpn_limit *)((char *)obj + f->off);
	double v[2];

	if (cfg_get_reals(c, s, f->key, v, 2) != QKD_OK)
		return QKD_ERR_INVAL;
	for (int i = 0; i < 2; i++)
		if (!(v[i] >= 0 && v[i] <= 9007199254740992.0) || v[i] != (double)(uint64_t)v[i])
			return cfg_failk(c, s, f->key, "[soft, hard]: whole numbers >= 0 (0: none)");
	l->soft = (uint64_t)v[0];
	l->hard = (uint64_t)v[1];
	if (l->soft != 0 && l->hard != 0 && l->soft >= l->hard)
		return cfg_failk(c, s, f->key, "soft (%llu) must be below hard (%llu): the rekey "
				 "comes before the delete", (unsigned long long)l->soft,
				 (unsigned long long)l->hard);
	return QKD_OK;
}

static int set_psk(struct cfg_ctx *c, const config_setting_t *s, const struct cfg_field *f,
		   void *obj)
{
	return cfg_set_file_min(c, s, f, obj, QKD_VPN_PSK_MIN_BYTES);
}

static const struct cfg_field tunnel_fields[] = {
	{ "name", cfg_set_name, TUN(name), CFG_REQUIRED, 0, 0 },
	{ "peer", cfg_set_addr, TUN(peer), CFG_REQUIRED, 0, 0 },
	{ "initiate", set_bool, TUN(initiate), 0, 0, 0 },
	{ "local_id", cfg_set_name, TUN(local_id), 0, 0, 0 },
	{ "remote_id", cfg_set_name, TUN(remote_id), CFG_REQUIRED, 0, 0 },
	{ "psk", set_psk, TUN(psk), CFG_REQUIRED, 0, 0 },
	{ "local_ts", set_ts, 0, CFG_REQUIRED, 0, 0 },
	{ "remote_ts", set_ts, 0, CFG_REQUIRED, 0, 0 },
	{ "esp", set_aead, TUN(esp), 0, 0, 0 },
	{ "ike", set_aead, TUN(ike), 0, 0, 0 },
	{ "dh", set_dh, 0, 0, 0, 0 },
	{ "rekey", cfg_set_real, TUN(rekey_s), CFG_RANGE, 1, 86400 },
	{ "ike_rekey", cfg_set_real, TUN(ike_rekey_s), CFG_RANGE, 60, 604800 },
	{ "lifetime_seconds", set_limit, TUN(seconds), 0, 0, 0 },
	{ "lifetime_kbytes", set_limit, TUN(kbytes), 0, 0, 0 },
	{ "lifetime_packets", set_limit, TUN(packets), 0, 0, 0 },
	{ "qkd", set_policy, 0, 0, 0, 0 },
	{ "kme", cfg_set_name, TUN(kme), 0, 0, 0 },
	{ "peer_sae", cfg_set_name, TUN(peer_sae), 0, 0, 0 },
	{ "key_wait", cfg_set_real, TUN(key_wait_s), CFG_RANGE, 0, 86400 },
	{ "ppk_lead", cfg_set_real, TUN(ppk_lead_s), CFG_RANGE, 0, 60 },
	{ "dpd", cfg_set_real, TUN(dpd_s), CFG_RANGE, 1, 3600 },
};

static void tunnel_defaults(struct qkd_vpn_tunnel *t, const char *gateway)
{
	memset(t, 0, sizeof *t);
	t->initiate = true;
	memcpy(t->local_id, gateway, strlen(gateway) + 1);	/* both QKD_NODE_NAME_MAX */
	t->esp.key_bits = 256;
	t->ike.key_bits = 256;
	t->dh = QKD_VPN_DH_X25519 | QKD_VPN_DH_MODP2048;
	t->first_dh = QKD_VPN_DH_X25519;
	t->rekey_s = 60;		/* BBN's "about once a minute" */
	t->ike_rekey_s = 14400;
	t->qkd = QKD_VPN_QKD_REQUIRED;
	t->key_wait_s = 300;
	t->dpd_s = 30;
}

/* The checks between keys, once all are read. */
static int tunnel_check(struct cfg_ctx *c, const config_setting_t *g, struct qkd_vpn_config *v,
			struct qkd_vpn_tunnel *t)
{
	if (t->seconds.hard == 0)	/* delete at twice the rekey when not given */
		t->seconds.hard = (uint64_t)(2 * t->rekey_s + 0.5);
	if (t->seconds.soft == 0)
		t->seconds.soft = (uint64_t)(t->rekey_s + 0.5);
	if (t->seconds.soft >= t->seconds.hard)
		return cfg_fail(c, g, "%s: lifetime_seconds: the hard limit %llu s must be above the "
				"rekey interval %g s", c->scope, (unsigned long long)t->seconds.hard,
				t->rekey_s);
	if (qkd_netaddr_equal(&t->peer.sa, &v->listen.sa))
		return cfg_fail(c, g, "%s: peer %s is this gateway's own listen address", c->scope,
				t->peer.text);
	if (t->qkd != QKD_VPN_QKD_OFF && (t->kme[0] == '\0' || t->peer_sae[0] == '\0'))
		return cfg_fail(c, g, "%s: qkd = \"%s\" needs kme and peer_sae (or qkd = \"off\")",
				c->scope, qkd_vpn_qkd_policy_name(t->qkd));
	if (t->kme[0] != '\0') {
		for (t->kme_index = 0; t->kme_index < v->n_kmes; t->kme_index++)
			if (strcmp(v->kmes[t->kme_index].name, t->kme) == 0)
				break;
		if (t->kme_index == v->n_kmes)
			return cfg_fail(c, g, "%s: kme '%s' is not in the kmes list", c->scope,
					t->kme);
	}
	return QKD_OK;
}

/* No two tunnels share a name, and no two cover the same traffic: a packet
 * must have one policy. */
static int tunnel_unique(struct cfg_ctx *c, const config_setting_t *g,
			 const struct qkd_vpn_config *v, size_t i)
{
	const struct qkd_vpn_tunnel *t = &v->tunnels[i], *o;

	for (size_t j = 0; j < i; j++) {
		o = &v->tunnels[j];
		if (strcmp(o->name, t->name) == 0)
			return cfg_fail(c, g, "%s: tunnel name '%s' is already used by tunnels[%zu]",
					c->scope, t->name, j);
		for (size_t a = 0; a < t->n_local_ts; a++)
			for (size_t b = 0; b < o->n_local_ts; b++)
				for (size_t x = 0; x < t->n_remote_ts; x++)
					for (size_t y = 0; y < o->n_remote_ts; y++)
						if (qkd_vpn_prefix_overlap(&t->local_ts[a], &o->local_ts[b]) &&
						    qkd_vpn_prefix_overlap(&t->remote_ts[x], &o->remote_ts[y]))
							return cfg_fail(c, g, "%s: its traffic selectors overlap "
									"tunnel '%s''s: a packet would "
									"match both", c->scope, o->name);
	}
	return QKD_OK;
}

int vpn_tunnel_read(struct cfg_ctx *c, const config_setting_t *g, struct qkd_vpn_config *v,
		    size_t i)
{
	struct qkd_vpn_tunnel *t = &v->tunnels[i];
	int rc;

	tunnel_defaults(t, v->name);
	t->line = (unsigned)config_setting_source_line(g);
	rc = cfg_group(c, g, tunnel_fields, N_OF(tunnel_fields), t);
	if (rc == QKD_OK)
		rc = tunnel_check(c, g, v, t);
	if (rc == QKD_OK)
		rc = tunnel_unique(c, g, v, i);
	return rc;
}
