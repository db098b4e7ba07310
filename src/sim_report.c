#include "sim_report.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "qkd/secret.h"

/* Figures derived from the run that both reports show. */
struct derived {
	double link_seconds, qber, qber_expected, p_click_expected, f, rate_bps, cpu;
	bool keys_match;
};

static void derive(const struct sim_options *o, const struct qkd_simlink_result *res,
		   struct derived *d)
{
	const struct qkd_engine_stats *st = &res->bob.st;

	d->link_seconds = (double)st->pulses / o->link.rate_hz;
	d->qber = st->frame_bits ? (double)st->errors_corrected / (double)st->frame_bits : 0;
	qkd_link_expected(&o->link, &d->p_click_expected, &d->qber_expected);
	d->f = st->ec_ideal_bits > 0 ? (double)st->ec_disclosed_bits / st->ec_ideal_bits : 0;
	d->rate_bps = d->link_seconds > 0 ? (double)st->secret_bits / d->link_seconds : 0;
	d->cpu = res->alice.cpu_seconds + res->bob.cpu_seconds;
	d->keys_match = qkd_bits_equal(&res->alice.key, &res->bob.key);
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

static int report_json(const struct sim_options *o, const struct qkd_simlink_result *res,
		       const struct derived *d)
{
	const struct qkd_engine_stats *st = &res->bob.st;
	char buf[512];
	const char *why = no_key_reason(&res->alice.st, buf, sizeof buf);
	json_t *j = json_object();
	int rc;

	json_object_set_new(j, "pulses", json_integer((json_int_t)st->pulses));
	json_object_set_new(j, "detections", json_integer((json_int_t)st->detections));
	json_object_set_new(j, "double_clicks", json_integer((json_int_t)st->double_clicks));
	json_object_set_new(j, "sifted_bits", json_integer((json_int_t)st->sifted_bits));
	json_object_set_new(j, "sample_bits", json_integer((json_int_t)st->sample_bits));
	json_object_set_new(j, "sample_errors", json_integer((json_int_t)st->sample_errors));
	json_object_set_new(j, "qber", json_real(d->qber));
	json_object_set_new(j, "qber_expected", json_real(d->qber_expected));
	json_object_set_new(j, "detection_prob_expected", json_real(d->p_click_expected));
	json_object_set_new(j, "ec", json_string(o->cfg.ec));
	json_object_set_new(j, "ec_disclosed_bits", json_integer((json_int_t)st->ec_disclosed_bits));
	json_object_set_new(j, "ec_efficiency", json_real(d->f));
	json_object_set_new(j, "frames", json_integer((json_int_t)st->frames));
	json_object_set_new(j, "frame_bits", json_integer((json_int_t)st->frame_bits));
	json_object_set_new(j, "frames_failed_verification",
			    json_integer((json_int_t)st->frames_failed_verification));
	json_object_set_new(j, "verify_disclosed_bits",
			    json_integer((json_int_t)st->verify_disclosed_bits));
	/* Alice applies the non-randomness term: her estimate is the full one. */
	json_object_set_new(j, "entropy", entropy_json(o, &res->alice.st));
	json_object_set_new(j, "randomness", randomness_json(res));
	json_object_set_new(j, "secret_bits", json_integer((json_int_t)st->secret_bits));
	json_object_set_new(j, "secret_key_rate_bps", json_real(d->rate_bps));
	json_object_set_new(j, "link_seconds", json_real(d->link_seconds));
	json_object_set_new(j, "keys_match", json_boolean(d->keys_match));
	json_object_set_new(j, "aborted", json_boolean(st->abort != QKD_ABORT_NONE));
	json_object_set_new(j, "no_key_reason", why ? json_string(why) : json_null());
	json_object_set_new(j, "cpu_seconds", json_real(d->cpu));
	json_object_set_new(j, "cpu_seconds_alice", json_real(res->alice.cpu_seconds));
	json_object_set_new(j, "cpu_seconds_bob", json_real(res->bob.cpu_seconds));
	json_object_set_new(j, "cpu_seconds_optical",
			    json_real(res->alice.cpu_optical + res->bob.cpu_optical));
	json_object_set_new(j, "wall_seconds", json_real(res->wall_seconds));
	json_object_set_new(j, "seed", json_integer((json_int_t)o->link.seed));
	rc = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
	printf("\n");
	json_decref(j);
	return rc == 0 ? 0 : -1;
}

static void report_human(const struct sim_options *o, const struct qkd_simlink_result *res,
			 const struct derived *d)
{
	const struct qkd_engine_stats *st = &res->bob.st, *as = &res->alice.st;
	const struct qkd_entropy_out *e = &as->entropy;
	char buf[512];
	const char *why = no_key_reason(as, buf, sizeof buf);

	printf("qkd sim: %s BB84, %g km at %g dB/km, mu %g, %llu pulses at %g Hz, seed %llu\n\n",
	       qkd_source_name(o->link.source), o->link.distance_km,
	       o->link.fiber_loss_db_per_km, o->link.mu, (unsigned long long)st->pulses,
	       o->link.rate_hz, (unsigned long long)o->link.seed);
	printf("  detections            %12llu   (%.3e per pulse, model %.3e)\n",
	       (unsigned long long)st->detections,
	       st->pulses ? (double)st->detections / (double)st->pulses : 0, d->p_click_expected);
	printf("  sifted bits           %12llu   (QBER sample %llu of %llu bits in error)\n",
	       (unsigned long long)st->sifted_bits, (unsigned long long)st->sample_errors,
	       (unsigned long long)st->sample_bits);
	printf("  QBER                  %11.3f %%   (model %.3f %%)\n", 100 * d->qber,
	       100 * d->qber_expected);
	printf("  error correction      %12llu   parity bits disclosed by %s, f = %.3f\n",
	       (unsigned long long)st->ec_disclosed_bits, o->cfg.ec, d->f);
	printf("  frames                %12llu   (%llu failed verification, %llu tag bits)\n",
	       (unsigned long long)st->frames, (unsigned long long)st->frames_failed_verification,
	       (unsigned long long)st->verify_disclosed_bits);
	printf("\n  entropy estimate (%s, c = %g), bits removed from %llu:\n",
	       qkd_defense_name(o->cfg.estimate.defense), o->cfg.estimate.confidence,
	       (unsigned long long)st->pa_input_bits);
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
	printf("\n  secret key            %12llu bits   %.1f bit/s of link time (%.2f s)\n",
	       (unsigned long long)st->secret_bits, d->rate_bps, d->link_seconds);
	if (why != NULL)
		printf("  no key: %s\n", why);
	printf("  keys match            %12s   (Alice's and Bob's final keys compared)\n",
	       d->keys_match ? "yes" : "NO");
	printf("  cpu                   %11.2f s   (Alice %.2f s, Bob %.2f s)\n", d->cpu,
	       res->alice.cpu_seconds, res->bob.cpu_seconds);
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
	if (!d.keys_match) {
		cli_error("sim", "Alice's and Bob's final keys differ");
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}
