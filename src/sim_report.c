/* sim_report.c - what `qkd sim` prints: the human summary or the JSON
 * object of docs/qkd.1, and the key files. Only reports: the run itself is
 * cmd_sim.c's and the library's. */
#include "sim_report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "qkd/secret.h"

/* Alice's and Bob's final keys compared. With no key at either end there
 * is nothing to compare: KEYS_NONE, shown as "no key" and JSON null. */
enum keys_cmp { KEYS_NONE, KEYS_MATCH, KEYS_DIFFER };

/* Figures derived from the run that both reports show. */
struct derived {
	double link_seconds, qber, qber_expected, p_click_expected, f, rate_bps, cpu;
	enum qkd_qber_source qber_source;	/* qber is NaN for QKD_QBER_NONE */
	enum keys_cmp keys;
};

static void derive(const struct sim_options *o, const struct qkd_simlink_result *res,
		   struct derived *d)
{
	const struct qkd_engine_stats *st = &res->bob.st;

	d->link_seconds = (double)st->pulses / o->link.rate_hz;
	qkd_engine_qber(st, &d->qber, &d->qber_source);
	/* A replay has no model: the recording holds data, not the link's physics. */
	d->p_click_expected = d->qber_expected = NAN;
	if (o->replay_dir == NULL)
		qkd_link_expected(&o->link, &d->p_click_expected, &d->qber_expected);
	d->f = st->ec_ideal_bits > 0 ? (double)st->ec_disclosed_bits / st->ec_ideal_bits : 0;
	d->rate_bps = d->link_seconds > 0 ? (double)st->secret_bits / d->link_seconds : 0;
	d->cpu = res->alice.cpu_seconds + res->bob.cpu_seconds;
	if (res->alice.key.n == 0 && res->bob.key.n == 0)
		d->keys = KEYS_NONE;
	else
		d->keys = qkd_bits_equal(&res->alice.key, &res->bob.key) ? KEYS_MATCH : KEYS_DIFFER;
}

static int write_key(const char *path, const struct qkd_bits *key)
{
	size_t nb = (key->n + 7) / 8;
	uint8_t *buf = malloc(nb ? nb : 1);
	FILE *f = NULL;
	int rc = -1;

	if (buf == NULL) {
		cli_error(path, "out of memory");
		return -1;
	}
	qkd_bits_to_bytes(key, buf);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(buf, 1, nb, f) != nb || fflush(f) != 0)
		cli_error(path, strerror(errno));
	else
		rc = 0;
	if (f != NULL && fclose(f) != 0 && rc == 0) {
		cli_error(path, strerror(errno));
		rc = -1;
	}
	qkd_free_secret(buf, nb ? nb : 1);
	return rc;
}

static const char *term_label(enum qkd_entropy_term t)
{
	switch (t) {
	case QKD_TERM_DISCLOSED: return "disclosed bits (error correction and verification)";
	case QKD_TERM_TRANSPARENT: return "transparent (multi-photon) eavesdropping";
	case QKD_TERM_NONTRANSPARENT: return "non-transparent eavesdropping (defense function)";
	case QKD_TERM_NONRANDOMNESS: return "non-randomness";
	case QKD_TERM_SIGMA: return "statistical margin (c sigma)";
	case QKD_TERM_PA_MARGIN: return "privacy-amplification margin";
	default: return "none";
	}
}

/* Why there is no key, as one sentence; NULL when there is a key. */
static const char *no_key_reason(const struct qkd_engine_stats *st, char *buf, size_t len)
{
	const struct qkd_entropy_out *e = &st->entropy;

	if (st->secret_bits > 0)
		return NULL;
	if (st->abort != QKD_ABORT_NONE && st->abort != QKD_ABORT_NO_SIFTED) {
		snprintf(buf, len, "%s (%.2f %%)", qkd_abort_reason_text(st->abort),
			 100 * st->qber_abort_value);
	} else if (st->abort == QKD_ABORT_NO_SIFTED) {
		snprintf(buf, len, "%s", qkd_abort_reason_text(st->abort));
	} else if (st->pa_input_bits == 0) {
		snprintf(buf, len, "every frame failed verification");
	} else if (st->decoy_used) {
		snprintf(buf, len, "the decoy-state bound leaves nothing: %.0f single-photon "
			 "X events at least (s_X1), phase error rate at most %.4f, %.0f bits "
			 "disclosed, %.0f bits for the epsilons", st->decoy_out.s_x1,
			 st->decoy_out.phi_x, st->decoy_in.lambda_ec,
			 st->decoy_out.eps_sec_term + st->decoy_out.eps_cor_term);
	} else if (e->limiting_term == QKD_TERM_TRANSPARENT && e->transparent_saturated) {
		snprintf(buf, len, "the %s term takes every bit: multi-photon pulses sent "
			 "outnumber detections (q = 1); a lower mu or decoy states are needed",
			 term_label(e->limiting_term));
	} else {
		snprintf(buf, len, "the %s term (%.0f bits) leaves nothing of the %llu bits",
			 term_label(e->limiting_term),
			 e->limiting_term == QKD_TERM_TRANSPARENT ? e->transparent :
			 e->limiting_term == QKD_TERM_NONTRANSPARENT ? e->nontransparent :
			 e->limiting_term == QKD_TERM_DISCLOSED ? e->disclosed :
			 e->limiting_term == QKD_TERM_SIGMA ? e->sigma_term : e->pa_margin,
			 (unsigned long long)st->pa_input_bits);
	}
	if (st->rnd_tested && (st->rnd_value.biased || st->rnd_value.correlated)) {
		size_t len0 = strlen(buf);

		snprintf(buf + len0, len - len0, "; Alice's RNG failed the %s test, and the "
			 "non-randomness term took %.0f bits", st->rnd_value.biased ?
			 "frequency" : "serial-correlation", e->nonrandomness);
	}
	return buf;
}

static json_t *entropy_json(const struct sim_options *o, const struct qkd_engine_stats *st)
{
	const struct qkd_entropy_out *e = &st->entropy;

	return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:s, s:f, s:f, s:f, s:s, s:s, s:s, s:f, s:f}",
		"disclosed", e->disclosed, "transparent", e->transparent,
		"transparent_sd", e->transparent_sd, "nontransparent", e->nontransparent,
		"nontransparent_sd", e->nontransparent_sd, "nonrandomness", e->nonrandomness,
		"nonrandomness_note", st->rnd_tested ?
			"frequency and serial tests of Alice's value choices (docs/randomness.md)" :
			"no raw choices to test (entangled source): term is 0",
		"pa_margin", e->pa_margin, "sigma_term", e->sigma_term,
		"confidence", o->cfg.estimate.confidence,
		"defense", qkd_defense_name(o->cfg.estimate.defense),
		"source", qkd_leak_model_name(o->cfg.estimate.source),
		"limiting_term", qkd_entropy_term_name(e->limiting_term),
		"multiphoton_prob", e->multiphoton_prob,
		"transparent_fraction", e->transparent_fraction);
}

/* Bits removed for eavesdropping: everything taken off the corrected bits
 * except what was disclosed, the non-randomness term and the margin. For
 * bennett/slutsky this is t_T + t_N + c sigma (up to the floor); for decoy,
 * what Eq. (1) of Lim et al. takes beyond lambda_EC. */
static double eve_removed(const struct qkd_engine_stats *a)
{
	const struct qkd_entropy_out *e = &a->entropy;
	double r = (double)a->pa_input_bits - e->disclosed - e->nonrandomness - e->pa_margin
		   - (double)a->secret_bits;

	return r > 0 ? r : 0;
}

static json_t *u64_array(const uint64_t *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_integer((json_int_t)v[i]));
	return a;
}

static json_t *decoy_json(const struct sim_options *o, const struct qkd_engine_stats *a)
{
	const struct qkd_decoy_counts *in = &a->decoy_in;
	const struct qkd_decoy_out *d = &a->decoy_out;

	return json_pack("{s:[f,f,f], s:[f,f,f], s:f, s:o, s:o, s:o, s:f, s:f, s:f, s:f, s:f, "
			 "s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:I}",
			 "mu", in->mu[0], in->mu[1], in->mu[2],
			 "p_mu", in->p_mu[0], in->p_mu[1], in->p_mu[2], "p_x", in->p_x,
			 "n_x", u64_array(in->n_x, 3), "n_z", u64_array(in->n_z, 3),
			 "m_z", u64_array(in->m_z, 3), "s_x0", d->s_x0, "s_x1", d->s_x1,
			 "s_z1", d->s_z1, "v_z1", d->v_z1, "gamma", d->gamma, "phi_x", d->phi_x,
			 "lambda_ec", in->lambda_ec, "eps_sec", o->cfg.decoy.eps_sec,
			 "eps_cor", o->cfg.decoy.eps_cor, "eps_sec_term", d->eps_sec_term,
			 "eps_cor_term", d->eps_cor_term,
			 "key_length", (json_int_t)d->key_length,
			 "discarded_bits", (json_int_t)a->decoy_discarded_bits);
}

static json_t *eve_json(const struct sim_options *o)
{
	return json_pack("{s:s, s:f}", "attack", qkd_eve_name(o->link.eve),
			 "fraction", o->link.eve_fraction);
}

static json_t *rnd_json(const struct qkd_randomness_result *r, uint64_t n)
{
	return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:b, s:b, s:f}", "bits", (json_int_t)n,
			 "h_min", r->h_min, "h_freq", r->h_freq, "h_markov", r->h_markov,
			 "z_freq", r->z_freq, "z_serial", r->z_serial, "biased", r->biased,
			 "correlated", r->correlated, "false_alarm_prob", r->false_alarm_prob);
}

/* The randomness tests: Alice's value choices over every pulse, her and
 * Bob's bases over the detections (docs/randomness.md). */
static json_t *randomness_json(const struct qkd_simlink_result *res)
{
	const struct qkd_engine_stats *a = &res->alice.st;
	json_t *j = json_object();

	if (a->rnd_tested) {
		json_object_set_new(j, "alice_value", rnd_json(&a->rnd_value, a->rnd_bits));
		json_object_set_new(j, "alice_basis", rnd_json(&a->rnd_basis, a->rnd_basis_bits));
	}
	json_object_set_new(j, "bob_basis", rnd_json(&res->bob.st.rnd_basis, res->bob.st.rnd_bits));
	return j;
}

/* What the run's messages cost a Wegman-Carter authenticator with 64-bit
 * tags (docs/authentication.md): the AUTH frames both parties sent (the
 * channel's batches), beside what a tag on every frame would have cost. */
struct auth_cost {
	uint64_t tags, frames, round_trips;
	uint64_t bits, per_frame_bits;
	double share;		/* bits / (bits + secret bits) */
};

static void auth_cost(const struct qkd_simlink_result *res, struct auth_cost *c)
{
	const struct qkd_engine_stats *a = &res->alice.st, *b = &res->bob.st;

	c->tags = a->auth_tags + b->auth_tags;
	c->frames = a->messages_sent + b->messages_sent - c->tags;
	c->round_trips = b->ec_round_trips;
	c->bits = c->tags * 64;
	c->per_frame_bits = c->frames * 64;
	c->share = c->bits + b->secret_bits > 0
		   ? (double)c->bits / (double)(c->bits + b->secret_bits) : 0;
}

static json_t *auth_json(const struct qkd_simlink_result *res)
{
	struct auth_cost c;
	json_t *j = json_object();

	auth_cost(res, &c);
	json_object_set_new(j, "tags", json_integer((json_int_t)c.tags));
	json_object_set_new(j, "bits", json_integer((json_int_t)c.bits));
	json_object_set_new(j, "share_of_key", json_real(c.share));
	json_object_set_new(j, "messages", json_integer((json_int_t)c.frames));
	json_object_set_new(j, "per_message_tag_bits", json_integer((json_int_t)c.per_frame_bits));
	json_object_set_new(j, "ec_round_trips", json_integer((json_int_t)c.round_trips));
	return j;
}

/* NaN (a figure this run cannot know) as JSON null. */
static json_t *real_or_null(double v)
{
	return isnan(v) ? json_null() : json_real(v);
}

/* The medium and its figures (docs/optical-model.md 1, 1a). */
static json_t *channel_json(const struct qkd_link_params *l)
{
	json_t *j = json_object();

	json_object_set_new(j, "kind", json_string(qkd_channel_name(l->channel)));
	json_object_set_new(j, "distance_km", json_real(l->distance_km));
	json_object_set_new(j, "transmittance", json_real(qkd_link_transmittance(l)));
	json_object_set_new(j, "noise_per_gate", json_real(qkd_link_noise_per_gate(l)));
	if (l->channel != QKD_CHANNEL_FREE_SPACE) {
		json_object_set_new(j, "loss_db_per_km", json_real(l->fiber_loss_db_per_km));
		return j;
	}
	json_object_set_new(j, "tx_aperture_m", json_real(l->tx_aperture_m));
	json_object_set_new(j, "rx_aperture_m", json_real(l->rx_aperture_m));
	json_object_set_new(j, "beam_divergence", json_real(l->beam_divergence));
	json_object_set_new(j, "atmos_loss_db_per_km", json_real(l->atmos_loss_db_per_km));
	json_object_set_new(j, "geometric_transmittance",
			    json_real(qkd_link_geometric_transmittance(l)));
	json_object_set_new(j, "atmospheric_transmittance",
			    json_real(qkd_link_atmospheric_transmittance(l)));
	json_object_set_new(j, "daylight", json_boolean(l->daylight));
	return j;
}

static int report_json(const struct sim_options *o, const struct qkd_simlink_result *res,
		       const struct derived *d)
{
	const struct qkd_engine_stats *st = &res->bob.st;
	char buf[512];
	const char *why = no_key_reason(&res->alice.st, buf, sizeof buf);
	json_t *j = json_object();
	int rc;

	json_object_set_new(j, "channel", o->replay_dir ? json_null() : channel_json(&o->link));
	json_object_set_new(j, "pulses", json_integer((json_int_t)st->pulses));
	json_object_set_new(j, "detections", json_integer((json_int_t)st->detections));
	json_object_set_new(j, "double_clicks", json_integer((json_int_t)st->double_clicks));
	json_object_set_new(j, "sifted_bits", json_integer((json_int_t)st->sifted_bits));
	json_object_set_new(j, "sample_bits", json_integer((json_int_t)st->sample_bits));
	json_object_set_new(j, "sample_errors", json_integer((json_int_t)st->sample_errors));
	json_object_set_new(j, "qber", real_or_null(d->qber));
	json_object_set_new(j, "qber_source", json_string(qkd_qber_source_name(d->qber_source)));
	json_object_set_new(j, "qber_expected", real_or_null(d->qber_expected));
	json_object_set_new(j, "detection_prob_expected", real_or_null(d->p_click_expected));
	json_object_set_new(j, "ec", json_string(o->cfg.ec));
	json_object_set_new(j, "ec_disclosed_bits", json_integer((json_int_t)st->ec_disclosed_bits));
	json_object_set_new(j, "ec_efficiency", json_real(d->f));
	json_object_set_new(j, "frames", json_integer((json_int_t)st->frames));
	json_object_set_new(j, "frame_bits", json_integer((json_int_t)st->frame_bits));
	json_object_set_new(j, "frames_failed_verification",
			    json_integer((json_int_t)st->frames_failed_verification));
	json_object_set_new(j, "verify_disclosed_bits",
			    json_integer((json_int_t)st->verify_disclosed_bits));
	json_object_set_new(j, "authentication", auth_json(res));
	/* Alice applies the non-randomness term: her estimate is the full one. */
	json_object_set_new(j, "entropy", entropy_json(o, &res->alice.st));
	json_object_set_new(j, "randomness", randomness_json(res));
	if (res->alice.st.decoy_used)
		json_object_set_new(j, "decoy", decoy_json(o, &res->alice.st));
	/* Eve and her ground truth are the simulator's: unknown in a replay. */
	json_object_set_new(j, "eve", o->replay_dir ? json_null() : eve_json(o));
	json_object_set_new(j, "eve_known_bits", o->replay_dir ? json_null() :
			    json_integer((json_int_t)st->eve_known_bits));
	json_object_set_new(j, "eve_removed_bits", json_real(eve_removed(&res->alice.st)));
	json_object_set_new(j, "secret_bits", json_integer((json_int_t)st->secret_bits));
	json_object_set_new(j, "secret_key_rate_bps", json_real(d->rate_bps));
	json_object_set_new(j, "link_seconds", json_real(d->link_seconds));
	json_object_set_new(j, "keys_match", d->keys == KEYS_NONE ? json_null() :
			    json_boolean(d->keys == KEYS_MATCH));
	json_object_set_new(j, "aborted", json_boolean(st->abort != QKD_ABORT_NONE));
	json_object_set_new(j, "no_key_reason", why ? json_string(why) : json_null());
	json_object_set_new(j, "cpu_seconds", json_real(d->cpu));
	json_object_set_new(j, "cpu_seconds_alice", json_real(res->alice.cpu_seconds));
	json_object_set_new(j, "cpu_seconds_bob", json_real(res->bob.cpu_seconds));
	json_object_set_new(j, "cpu_seconds_optical",
			    json_real(res->alice.cpu_optical + res->bob.cpu_optical));
	json_object_set_new(j, "wall_seconds", json_real(res->wall_seconds));
	json_object_set_new(j, "seed", json_integer((json_int_t)o->link.seed));
	json_object_set_new(j, "replay", o->replay_dir ? json_string(o->replay_dir) : json_null());
	rc = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
	printf("\n");
	json_decref(j);
	return rc == 0 ? 0 : -1;
}

static void report_bbn(const struct sim_options *o, const struct qkd_engine_stats *as);
static void report_decoy(const struct sim_options *o, const struct qkd_engine_stats *as);

static void report_auth(const struct qkd_simlink_result *res)
{
	struct auth_cost c;

	auth_cost(res, &c);
	printf("  authentication        %12llu   bits: %llu tags over %llu messages, "
	       "%.2f %% of the key\n", (unsigned long long)c.bits, (unsigned long long)c.tags,
	       (unsigned long long)c.frames, 100 * c.share);
}

/* The QBER line names where the figure comes from: the error-correction
 * count is exact, a sample of 1024 bits is good to about a percent, and a
 * round that aborted on its sample has no other figure. */
static void report_qber(const struct sim_options *o, const struct qkd_engine_stats *st,
			const struct derived *d)
{
	const char *model = o->link.eve != QKD_EVE_NONE ? "model without Eve" : "model";

	if (d->qber_source == QKD_QBER_NONE) {
		printf("  QBER                  %12s   (no sample compared, nothing corrected)\n", "-");
		return;
	}
	printf("  QBER                  %11.3f %%   (", 100 * d->qber);
	if (d->qber_source == QKD_QBER_CORRECTED)
		printf("counted by error correction");
	else
		printf("from the %llu-bit %s; %s", (unsigned long long)st->sample_bits,
		       o->cfg.estimate.defense == QKD_DEFENSE_DECOY ? "Z-basis test set" : "sample",
		       st->abort == QKD_ABORT_SAMPLE_QBER ? "the round aborted" :
		       "nothing was corrected");
	if (!isnan(d->qber_expected))
		printf("; %s %.3f %%", model, 100 * d->qber_expected);
	printf(")\n");
}

/* The header of a free-space run: the channel's figures, so a reader can
 * check T = T_geo T_atm and the noise against docs/optical-model.md 1a. */
static void report_free_space(const struct sim_options *o, const struct qkd_engine_stats *st)
{
	const struct qkd_link_params *l = &o->link;

	printf("qkd sim: %s BB84, %s %g km, mu %g, %llu pulses at %g Hz, seed %llu\n",
	       qkd_source_name(l->source), qkd_channel_name(l->channel), l->distance_km, l->mu,
	       (unsigned long long)st->pulses, l->rate_hz, (unsigned long long)l->seed);
	printf("  channel: D_t %g m, D_r %g m, divergence %g rad, %g dB/km air, %s\n"
	       "  T_geo %.4g, T_atm %.4g, T %.4g; noise %.3e per gate per detector\n\n",
	       l->tx_aperture_m, l->rx_aperture_m, l->beam_divergence, l->atmos_loss_db_per_km,
	       l->daylight ? "daylight" : "night", qkd_link_geometric_transmittance(l),
	       qkd_link_atmospheric_transmittance(l), qkd_link_transmittance(l),
	       qkd_link_noise_per_gate(l));
}

static void report_human(const struct sim_options *o, const struct qkd_simlink_result *res,
			 const struct derived *d)
{
	const struct qkd_engine_stats *st = &res->bob.st, *as = &res->alice.st;
	char buf[512];
	const char *why = no_key_reason(as, buf, sizeof buf);

	if (o->replay_dir != NULL)
		printf("qkd sim: replay of %s: %s BB84, mu %g, %llu pulses at %g Hz, seed %llu\n\n",
		       o->replay_dir, qkd_source_name(o->link.source), o->link.mu,
		       (unsigned long long)st->pulses, o->link.rate_hz,
		       (unsigned long long)o->link.seed);
	else if (o->link.channel == QKD_CHANNEL_FIBER)
		printf("qkd sim: %s BB84, %g km at %g dB/km, mu %g, %llu pulses at %g Hz, seed %llu\n\n",
		       qkd_source_name(o->link.source), o->link.distance_km,
		       o->link.fiber_loss_db_per_km, o->link.mu, (unsigned long long)st->pulses,
		       o->link.rate_hz, (unsigned long long)o->link.seed);
	else
		report_free_space(o, st);
	printf("  detections            %12llu   (%.3e per pulse",
	       (unsigned long long)st->detections,
	       st->pulses ? (double)st->detections / (double)st->pulses : 0);
	if (!isnan(d->p_click_expected))
		printf(", model %.3e", d->p_click_expected);
	printf(")\n  sifted bits           %12llu   (QBER sample %llu of %llu bits in error)\n",
	       (unsigned long long)st->sifted_bits, (unsigned long long)st->sample_errors,
	       (unsigned long long)st->sample_bits);
	report_qber(o, st, d);
	printf("  error correction      %12llu   parity bits disclosed by %s, f = %.3f\n",
	       (unsigned long long)st->ec_disclosed_bits, o->cfg.ec, d->f);
	printf("  frames                %12llu   (%llu failed verification, %llu tag bits)\n",
	       (unsigned long long)st->frames, (unsigned long long)st->frames_failed_verification,
	       (unsigned long long)st->verify_disclosed_bits);
	report_auth(res);
	if (as->decoy_used)
		report_decoy(o, as);
	else
		report_bbn(o, as);
	if (o->link.eve != QKD_EVE_NONE)
		printf("\n  eavesdropper          %s", qkd_eve_name(o->link.eve));
	if (o->link.eve == QKD_EVE_INTERCEPT_RESEND || o->link.eve == QKD_EVE_BEAMSPLIT)
		printf(" F = %g", o->link.eve_fraction);
	if (o->link.eve != QKD_EVE_NONE)
		printf(": Eve knows %llu of the %llu key bits; %.0f removed for eavesdropping\n",
		       (unsigned long long)st->eve_known_bits,
		       (unsigned long long)st->pa_input_bits, eve_removed(as));
	printf("\n  secret key            %12llu bits   %.1f bit/s of link time (%.2f s)\n",
	       (unsigned long long)st->secret_bits, d->rate_bps, d->link_seconds);
	if (why != NULL)
		printf("  no key: %s\n", why);
	if (d->keys == KEYS_NONE)
		printf("  keys match            %12s   (neither party has a key to compare)\n",
		       "no key");
	else
		printf("  keys match            %12s   (Alice's and Bob's final keys compared)\n",
		       d->keys == KEYS_MATCH ? "yes" : "NO");
	printf("  cpu                   %11.2f s   (Alice %.2f s, Bob %.2f s)\n", d->cpu,
	       res->alice.cpu_seconds, res->bob.cpu_seconds);
}

/* DESIGN 5, term by term (Alice's estimate: it has the non-randomness term). */
static void report_bbn(const struct sim_options *o, const struct qkd_engine_stats *as)
{
	const struct qkd_entropy_out *e = &as->entropy;

	printf("\n  entropy estimate (%s, c = %g), bits removed from %llu:\n",
	       qkd_defense_name(o->cfg.estimate.defense), o->cfg.estimate.confidence,
	       (unsigned long long)as->pa_input_bits);
	printf("    %-28s %10.0f\n", "disclosed", e->disclosed);
	printf("    %-28s %10.0f   sd %.0f  (q = %.3f)\n", "transparent (multi-photon)",
	       e->transparent, e->transparent_sd, e->transparent_fraction);
	printf("    %-28s %10.0f   sd %.0f\n", "non-transparent", e->nontransparent,
	       e->nontransparent_sd);
	if (as->rnd_tested)
		printf("    %-28s %10.0f   (Alice's choices: H_min %.4f bit/bit%s%s)\n",
		       "non-randomness", e->nonrandomness, as->rnd_value.h_min,
		       as->rnd_value.biased ? ", BIASED" : "",
		       as->rnd_value.correlated ? ", CORRELATED" : "");
	else
		printf("    %-28s %10.0f   (no raw choices to test)\n", "non-randomness",
		       e->nonrandomness);
	printf("    %-28s %10.0f\n", "c * sigma", e->sigma_term);
	printf("    %-28s %10.0f\n", "pa margin", e->pa_margin);
}

/* Lim et al. 2014: the counts per intensity and each bound (docs/decoy.md). */
static void report_decoy(const struct sim_options *o, const struct qkd_engine_stats *as)
{
	const struct qkd_decoy_counts *in = &as->decoy_in;
	const struct qkd_decoy_out *d = &as->decoy_out;

	printf("\n  decoy-state bound (Lim et al. 2014), eps_sec %g, eps_cor %g, P(X) %g:\n",
	       o->cfg.decoy.eps_sec, o->cfg.decoy.eps_cor, in->p_x);
	printf("    %-10s %10s %10s %10s %10s\n", "intensity", "p", "n_X", "n_Z", "m_Z");
	for (int k = 0; k < 3; k++)
		printf("    %-10g %10g %10llu %10llu %10llu\n", in->mu[k], in->p_mu[k],
		       (unsigned long long)in->n_x[k], (unsigned long long)in->n_z[k],
		       (unsigned long long)in->m_z[k]);
	printf("    %-28s %10.0f   vacuum events in X, Eq. (2)\n", "s_X0", d->s_x0);
	printf("    %-28s %10.0f   single-photon events in X, Eq. (3)\n", "s_X1", d->s_x1);
	printf("    %-28s %10.4f   single-photon phase error bound, Eq. (5)\n", "phi_X",
	       d->phi_x);
	printf("    %-28s %10.0f   error correction and verification\n", "lambda_EC",
	       in->lambda_ec);
	printf("    %-28s %10.0f   6 log2(21/eps_sec) + log2(2/eps_cor)\n", "epsilons",
	       d->eps_sec_term + d->eps_cor_term);
	printf("    %-28s %10llu   Eq. (1)\n", "key length l", (unsigned long long)d->key_length);
	if (as->decoy_discarded_bits > 0)
		printf("    %-28s %10llu\n", "frames failed verification",
		       (unsigned long long)as->decoy_discarded_bits);
	printf("    %-28s %10.0f\n", "non-randomness", as->entropy.nonrandomness);
}

int sim_report(const struct sim_options *o, const struct qkd_simlink_result *res)
{
	struct derived d;

	derive(o, res, &d);
	if (o->out_alice != NULL && write_key(o->out_alice, &res->alice.key) != 0)
		return CLI_EXIT_FAIL;
	if (o->out_bob != NULL && write_key(o->out_bob, &res->bob.key) != 0)
		return CLI_EXIT_FAIL;
	if (o->json) {
		if (report_json(o, res, &d) != 0)
			return CLI_EXIT_FAIL;
	} else {
		report_human(o, res, &d);
	}
	if (d.keys == KEYS_DIFFER) {
		cli_error("sim", "Alice's and Bob's final keys differ");
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}
