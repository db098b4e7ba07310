/* config_link.c - one link of the node configuration: its addresses, files,
 * optical parameters (DESIGN.md section 3) and protocol settings, and the
 * engine settings the optical parameters imply, by the same rules as
 * `qkd sim` (docs/config.md, docs/decoy.md). */
#include <stdio.h>
#include <string.h>

#include "qkd/ec.h"
#include "qkd/entropy.h"
#include "qkd/error.h"
#include "config_int.h"

#define LINK(f) offsetof(struct qkd_link_config, f)

/* Default decoy probabilities when a three-intensity source gives none:
 * those of `qkd sim` (signal most often, the vacuum-like decoy least). */
static const double decoy_probs_default[3] = { 0.8, 0.15, 0.05 };

static int set_role(struct cfg_ctx *c, const config_setting_t *s,
		    const struct cfg_field *f, void *obj)
{
	struct qkd_link_config *l = obj;
	const char *v = NULL;

	if (cfg_get_string(c, s, f->key, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	if (strcmp(v, "alice") == 0)
		l->role = QKD_ROLE_ALICE;
	else if (strcmp(v, "bob") == 0)
		l->role = QKD_ROLE_BOB;
	else
		return cfg_failk(c, s, f->key, "'%s' is not a role (alice or bob)", v);
	return QKD_OK;
}

/* The fiber carries pulses of a weak-coherent source; an entangled source
 * would need a pair source between the nodes, which the node does not run. */
static int set_source(struct cfg_ctx *c, const config_setting_t *s,
		      const struct cfg_field *f, void *obj)
{
	struct qkd_link_config *l = obj;
	const char *v = NULL;

	if (cfg_get_string(c, s, f->key, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	if (qkd_source_parse(v, &l->optical.source) != QKD_OK)
		return cfg_failk(c, s, f->key, "'%s' is not a source (weak-coherent)", v);
	if (l->optical.source != QKD_SOURCE_WEAK_COHERENT)
		return cfg_failk(c, s, f->key, "'%s' is refused: a node's fiber carries a "
				 "weak-coherent source only", v);
	return QKD_OK;
}

static int set_channel(struct cfg_ctx *c, const config_setting_t *s,
		       const struct cfg_field *f, void *obj)
{
	struct qkd_link_config *l = obj;
	const char *v = NULL;

	if (cfg_get_string(c, s, f->key, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	if (qkd_channel_parse(v, &l->optical.channel) != QKD_OK)
		return cfg_failk(c, s, f->key, "'%s' is not a channel (fiber or free-space)", v);
	return QKD_OK;
}

/* daylight = true | false: which background count of a free-space
 * channel applies (docs/optical-model.md 1a). */
static int set_daylight(struct cfg_ctx *c, const config_setting_t *s,
			const struct cfg_field *f, void *obj)
{
	struct qkd_link_config *l = obj;

	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return cfg_failk(c, s, f->key, "expected true or false");
	l->optical.daylight = config_setting_get_bool(s) != 0;
	return QKD_OK;
}

static int set_decoy(struct cfg_ctx *c, const config_setting_t *s,
		     const struct cfg_field *f, void *obj)
{
	struct qkd_link_config *l = obj;

	if (cfg_get_reals(c, s, f->key, l->optical.mu_decoy, 2) != QKD_OK)
		return QKD_ERR_INVAL;
	l->optical.intensities = 3;
	return QKD_OK;
}

static int set_decoy_probs(struct cfg_ctx *c, const config_setting_t *s,
			   const struct cfg_field *f, void *obj)
{
	struct qkd_link_config *l = obj;

	if (cfg_get_reals(c, s, f->key, l->optical.p_intensity, 3) != QKD_OK)
		return QKD_ERR_INVAL;
	c->decoy_probs = s;
	return QKD_OK;
}

static int set_ec(struct cfg_ctx *c, const config_setting_t *s,
		  const struct cfg_field *f, void *obj)
{
	struct qkd_link_config *l = obj;
	const char *const *names = qkd_ec_names();
	char list[128] = "";
	size_t used = 0;
	const char *v = NULL;

	if (cfg_get_string(c, s, f->key, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	if (!qkd_ec_name_valid(v) || strlen(v) >= sizeof l->engine.ec) {
		for (size_t i = 0; names[i] != NULL && used < sizeof list; i++) {
			int n = snprintf(list + used, sizeof list - used, "%s%s",
					 i > 0 ? ", " : "", names[i]);
			used += n < 0 ? 0 : (size_t)n;
		}
		return cfg_failk(c, s, f->key, "'%s' is not an error-correction code (%s)",
				 v, list);
	}
	strcpy(l->engine.ec, v);
	return QKD_OK;
}

static int set_defense(struct cfg_ctx *c, const config_setting_t *s,
		       const struct cfg_field *f, void *obj)
{
	struct qkd_link_config *l = obj;
	const char *v = NULL;

	if (cfg_get_string(c, s, f->key, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	if (qkd_defense_from_name(v, &l->engine.estimate.defense) != QKD_OK)
		return cfg_failk(c, s, f->key, "'%s' is not a defense function "
				 "(bennett, slutsky or decoy)", v);
	return QKD_OK;
}

/* Optical parameters: their domains are qkd_link_params_check's, applied
 * to the whole link once it is read (link_finish). */
static const struct cfg_field optical_fields[] = {
	{ "source", set_source, 0, 0, 0, 0 },
	{ "mu", cfg_set_real, LINK(optical.mu), 0, 0, 0 },
	{ "distance_km", cfg_set_real, LINK(optical.distance_km), 0, 0, 0 },
	{ "fiber_loss_db_per_km", cfg_set_real, LINK(optical.fiber_loss_db_per_km), 0, 0, 0 },
	{ "detector_efficiency", cfg_set_real, LINK(optical.detector_efficiency), 0, 0, 0 },
	{ "dark_count", cfg_set_real, LINK(optical.dark_count), 0, 0, 0 },
	{ "misalignment", cfg_set_real, LINK(optical.misalignment), 0, 0, 0 },
	{ "rate_hz", cfg_set_real, LINK(optical.rate_hz), 0, 0, 0 },
	{ "decoy", set_decoy, 0, 0, 0, 0 },
	{ "decoy_probs", set_decoy_probs, 0, 0, 0, 0 },
	{ "p_x", cfg_set_real, LINK(optical.p_x), 0, 0, 0 },
	{ "channel", set_channel, 0, 0, 0, 0 },
	{ "tx_aperture_m", cfg_set_real, LINK(optical.tx_aperture_m), 0, 0, 0 },
	{ "rx_aperture_m", cfg_set_real, LINK(optical.rx_aperture_m), 0, 0, 0 },
	{ "beam_divergence", cfg_set_real, LINK(optical.beam_divergence), 0, 0, 0 },
	{ "atmos_loss_db_per_km", cfg_set_real, LINK(optical.atmos_loss_db_per_km), 0, 0, 0 },
	{ "background_day", cfg_set_real, LINK(optical.background_day), 0, 0, 0 },
	{ "background_night", cfg_set_real, LINK(optical.background_night), 0, 0, 0 },
	{ "daylight", set_daylight, 0, 0, 0, 0 },
};

/* Protocol settings: the domains of `qkd sim`'s options. Those
 * qkd_engine_config_check knows (abort_qber, the decoy settings) are
 * checked there, on the whole link. */
static const struct cfg_field protocol_fields[] = {
	{ "ec", set_ec, 0, 0, 0, 0 },
	{ "frame_bits", cfg_set_size, LINK(engine.frame_bits), CFG_RANGE, 64, 1 << 28 },
	{ "frames_in_flight", cfg_set_uint, LINK(engine.frames_in_flight), CFG_RANGE, 1, 4096 },
	{ "sample_bits", cfg_set_size, LINK(engine.sample_bits), CFG_RANGE, 0, 1 << 24 },
	{ "pa_block_bits", cfg_set_size, LINK(engine.pa_block_bits), CFG_RANGE, 64,
	  17179869184.0 },
	{ "defense", set_defense, 0, 0, 0, 0 },
	{ "confidence", cfg_set_real, LINK(engine.estimate.confidence), CFG_RANGE, 0, 1e3 },
	{ "abort_qber", cfg_set_real, LINK(engine.abort_qber), 0, 0, 0 },
	{ "pa_margin", cfg_set_real, LINK(engine.estimate.pa_margin), CFG_RANGE, 0, 1e15 },
	{ "eps_sec", cfg_set_real, LINK(engine.decoy.eps_sec),
	  CFG_RANGE | CFG_LO_OPEN | CFG_HI_OPEN, 0, 1 },
	{ "eps_cor", cfg_set_real, LINK(engine.decoy.eps_cor),
	  CFG_RANGE | CFG_LO_OPEN | CFG_HI_OPEN, 0, 1 },
};

/* Read a subgroup with its own scope ("links[0].optical"), then restore. */
static int subgroup(struct cfg_ctx *c, const config_setting_t *s,
		    const struct cfg_field *t, size_t n, void *obj)
{
	char saved[sizeof c->scope];
	size_t len = strlen(c->scope);
	int rc;

	memcpy(saved, c->scope, sizeof saved);
	if (config_setting_is_group(s))
		snprintf(c->scope + len, sizeof c->scope - len, ".%s", config_setting_name(s));
	rc = cfg_group(c, s, t, n, obj);
	memcpy(c->scope, saved, sizeof saved);
	return rc;
}

static int set_optical(struct cfg_ctx *c, const config_setting_t *s,
		       const struct cfg_field *f, void *obj)
{
	(void)f;
	return subgroup(c, s, optical_fields, N_OF(optical_fields), obj);
}

static int set_protocol(struct cfg_ctx *c, const config_setting_t *s,
			const struct cfg_field *f, void *obj)
{
	(void)f;
	return subgroup(c, s, protocol_fields, N_OF(protocol_fields), obj);
}

static const struct cfg_field link_fields[] = {
	{ "name", cfg_set_name, LINK(name), CFG_REQUIRED, 0, 0 },
	{ "peer", cfg_set_name, LINK(peer), 0, 0, 0 },
	{ "role", set_role, 0, CFG_REQUIRED, 0, 0 },
	{ "classical", cfg_set_addr, LINK(classical), CFG_REQUIRED, 0, 0 },
	{ "fiber", cfg_set_addr, LINK(fiber), CFG_REQUIRED, 0, 0 },
	{ "store", cfg_set_store, LINK(store), CFG_REQUIRED, 0, 0 },
	{ "auth_key", cfg_set_auth_key, LINK(auth_key), CFG_REQUIRED, 0, 0 },
	{ "auth_reserve_bits", cfg_set_u64, LINK(auth_reserve_bits), CFG_RANGE, 1024,
	  4294967296.0 },
	/* A round is one sifting chunk of the engine: at most 2^32 slots. */
	{ "round_pulses", cfg_set_u64, LINK(round_pulses), CFG_RANGE, 1,
	  4294967296.0 },
	{ "optical", set_optical, 0, 0, 0, 0 },
	{ "protocol", set_protocol, 0, 0, 0, 0 },
};

/* Link defaults, chosen so that the default link keeps itself going: a
 * round on the default optical link spends some 50 000 - 100 000 bits of
 * authentication key on its messages, so it must distil clearly more
 * (5e8 pulses: about 150 000 bits; qkd sim's 1e8: only about 28 000), and
 * the reserve must cover a few rounds' tags. */
#define LINK_ROUND_PULSES_DEFAULT 500000000u
#define LINK_AUTH_RESERVE_DEFAULT 262144u

static void link_defaults(struct qkd_link_config *l)
{
	memset(l, 0, sizeof *l);
	l->role = QKD_ROLE_ALICE;
	qkd_link_params_default(&l->optical);
	qkd_engine_config_default(&l->engine);
	l->round_pulses = LINK_ROUND_PULSES_DEFAULT;
	l->auth_reserve_bits = LINK_AUTH_RESERVE_DEFAULT;
}

/* The engine settings the optical parameters imply (as src/sim_config.c
 * does for `qkd sim`): the estimate's mu and leak model follow the source,
 * and the decoy defense takes the intensities, their probabilities and P(X)
 * from it. Then both final structs are checked, errors at the link's line. */
static int link_finish(struct cfg_ctx *c, const config_setting_t *g, struct qkd_link_config *l)
{
	struct qkd_link_params *o = &l->optical;
	struct qkd_engine_config *e = &l->engine;
	const char *why = NULL;

	o->pulses = l->round_pulses;
	if (qkd_netaddr_equal(&l->classical.sa, &l->fiber.sa))
		return cfg_fail(c, g, "link '%s': classical and fiber must be different "
				"addresses", l->name);
	if (c->decoy_probs != NULL && o->intensities != 3)
		return cfg_failk(c, c->decoy_probs, "optical.decoy_probs",
				 "needs optical.decoy (the two decoy intensities)");
	if (o->intensities == 3 && c->decoy_probs == NULL)
		memcpy(o->p_intensity, decoy_probs_default, sizeof decoy_probs_default);
	e->estimate.mu = o->mu;
	if (qkd_leak_model_from_name(qkd_source_name(o->source), &e->estimate.source) != QKD_OK)
		return cfg_fail(c, g, "link '%s': no leak model for source %s", l->name,
				qkd_source_name(o->source));
	if (e->estimate.defense == QKD_DEFENSE_DECOY) {
		if (o->intensities != 3)
			return cfg_fail(c, g, "link '%s': defense decoy needs optical.decoy "
					"(the two decoy intensities)", l->name);
		e->decoy.mu[0] = o->mu;
		e->decoy.mu[1] = o->mu_decoy[0];
		e->decoy.mu[2] = o->mu_decoy[1];
		memcpy(e->decoy.p_mu, o->p_intensity, sizeof e->decoy.p_mu);
		e->decoy.p_x = o->p_x;
	}
	if (qkd_link_params_check(o, &why) != QKD_OK ||
	    qkd_engine_config_check(e, &why) != QKD_OK)
		return cfg_fail(c, g, "link '%s': %s", l->name, why);
	return QKD_OK;
}

int cfg_link_read(struct cfg_ctx *c, const config_setting_t *g, struct qkd_link_config *l)
{
	int rc;

	link_defaults(l);
	l->line = (unsigned)config_setting_source_line(g);
	c->decoy_probs = NULL;
	rc = cfg_group(c, g, link_fields, N_OF(link_fields), l);
	if (rc == QKD_OK)
		rc = link_finish(c, g, l);
	return rc;
}
