/* sim_eve.c - the pulse-level path: Eve on the fiber (docs/optical-model.md
 * "Eve").
 *
 * With an eavesdropper the photons of a pulse no longer split into
 * independent Poisson classes (what Eve resends depends on what she caught),
 * so this path samples the pulse itself: the candidate slots are those where
 * something happens at all, a non-empty pulse (weak-coherent) or at least
 * one pair (entangled), or a dark count on any detector. Per intensity k
 * that is a mode of independent sources, src[0] ~ Poisson(mu_k) photons or
 * pairs and one Bernoulli(p_d) per detector, so the machinery of sources.c
 * gives the candidates (geometric gaps with the brightest intensity's
 * P(event), thinned for the others exactly as in block.c) and, given an
 * event, the photon number and dark counts from their exact joint law. Eve
 * then acts on the photons and Bob's detectors on what reaches them.
 *
 * Cost: a default link makes ~15 times more candidates than detection-level
 * events, so a candidate must be cheap. What only a click's report needs is
 * drawn only when a party clicked: the parties' choices (opt_ev_alice,
 * opt_ev_bob, unless a detected photon needs them first), and how many
 * undetected photons reached Bob (opt_bob_arrivals). A photon on a line is
 * drawn as detected or not up front, one uniform that is nearly always "not".
 *
 * Randomness: Eve's own choices (whether to act, her basis, her guess) are
 * her per-slot word keyed by "optical/eve"; everything physical (photon
 * numbers, beamsplitter, loss, detection, measurement outcomes) comes from
 * the block's channel stream, so blocks stay independent and every outcome
 * is a pure function of (params, slot).
 */
#include "optical_int.h"

#include <math.h>

#define LOW32 0xffffffffull

void opt_pulse_setup(struct qkd_sim *s)
{
	static const unsigned darks[4] = { OPT_A0, OPT_A1, OPT_B0, OPT_B1 };
	const struct qkd_link_params *p = &s->p;
	struct opt_pulse_cfg *pl = &s->pl;
	/* Weak-coherent: only Bob has detectors. */
	unsigned first = p->source == QKD_SOURCE_ENTANGLED ? 0 : 2;

	for (unsigned k = 0; k < p->intensities; k++) {
		struct opt_mode *m = &pl->src[k];

		opt_mode_clear(m);
		opt_add_poisson(m, qkd_link_intensity(p, k), 0, OPT_R_SENT);
		/* Alice's detectors (0, 1) see dark counts; Bob's the channel's noise. */
		for (unsigned d = first; d < 4; d++)
			opt_add_bernoulli(m, d < 2 ? p->dark_count : qkd_link_noise_per_gate(p),
					  darks[d], 0);
		opt_mode_seal_active(m);
		opt_mode_seal(m);
		s->accept[k] = opt_thin_ratio(m->log_silent, pl->src[0].log_silent);
	}
	pl->tr = qkd_link_transmittance(p);
	opt_eve_setup(p, pl);
	s->log_silent = pl->src[0].log_silent;
	s->pulse_level = true;
}

unsigned opt_bob_route(const struct qkd_sim *s, struct opt_stream *cs, struct opt_event *ev,
		       uint32_t d, uint8_t basis, uint8_t value)
{
	uint32_t right;

	opt_ev_alice(s, ev);
	opt_ev_bob(s, ev);
	basis = basis == OPT_ALICE_STATE ? ev->basis[0] : basis;
	value = value == OPT_ALICE_STATE ? ev->value[0] : value;
	right = opt_binomial(cs, d, ev->basis[1] == basis ? 1.0 - s->p.misalignment : 0.5);
	return (right > 0 ? (unsigned)OPT_B0 << value : 0u) |
	       (d > right ? (unsigned)OPT_B0 << (value ^ 1) : 0u);
}

unsigned opt_bob_line(const struct qkd_sim *s, struct opt_stream *cs, struct opt_event *ev,
		      uint32_t m, double line, uint8_t basis, uint8_t value, uint32_t *und)
{
	uint32_t d = opt_binomial(cs, m, line * s->p.detector_efficiency);

	ev->n_arr[1] += d;
	ev->n_det[1] += d;
	*und += m - d;
	return d > 0 ? opt_bob_route(s, cs, ev, d, basis, value) : 0u;
}

void opt_bob_arrivals(const struct qkd_sim *s, struct opt_stream *cs, struct opt_event *ev,
		      unsigned fired, uint32_t und, double line)
{
	double pd = line * s->p.detector_efficiency;

	if ((fired & (OPT_B0 | OPT_B1)) && und > 0 && pd < 1.0)
		ev->n_arr[1] += opt_binomial(cs, und, (line - pd) / (1.0 - pd));
}

/* Photons of Alice's pulse on a line to Bob; the truth once all is known. */
static unsigned wcp_line(const struct qkd_sim *s, struct opt_stream *cs, struct opt_event *ev,
			 uint32_t m, double line, unsigned darks)
{
	uint32_t und = 0;
	unsigned fired = opt_bob_line(s, cs, ev, m, line, OPT_ALICE_STATE, OPT_ALICE_STATE, &und);

	opt_bob_arrivals(s, cs, ev, darks | fired, und, line);
	return fired;
}

/* Intercept-resend: with probability F Eve measures the pulse in a random
 * basis (ideal detector, one result): her basis is Alice's -> Alice's
 * value; else a uniformly random bit. She resends a coherent pulse in her
 * state, whose photons reaching Bob are two independent Poisson counts,
 * detected and not (eve_setup.c); an empty pulse gives her nothing and she
 * sends nothing. What she knows matters only where Bob clicks. */
static unsigned wcp_intercept(const struct qkd_sim *s, struct opt_stream *cs,
			      struct opt_event *ev, uint64_t w, unsigned darks)
{
	const struct opt_pulse_cfg *pl = &s->pl;
	unsigned k = ev->intensity, fired = 0;
	uint8_t eb = (uint8_t)((w >> 32) & 1);
	uint32_t d;

	ev->eve |= OPT_EVE_TOUCHED;
	if (ev->n_sent == 0)
		return 0;
	d = opt_poisson(cs, pl->res_det[k], pl->res_det_q[k]);
	if (d > 0) {
		opt_ev_alice(s, ev);
		fired = opt_bob_route(s, cs, ev, d, eb, eb == ev->basis[0] ? ev->value[0] :
			      (uint8_t)(opt_next64(cs) & 1));
	}
	ev->n_arr[1] += d;
	ev->n_det[1] += d;
	if ((darks | fired) & (OPT_B0 | OPT_B1)) {
		ev->n_arr[1] += opt_poisson(cs, pl->res_und[k], pl->res_und_q[k]);
		opt_ev_alice(s, ev);
		ev->eve |= eb == ev->basis[0] ? OPT_EVE_KNOWN : 0;
	}
	return fired;
}

/* Photon-number splitting: Eve learns n without disturbing the state. She
 * keeps one photon of a multi-photon pulse and forwards the other n-1 over
 * a lossless line (probability s2), forwards a single photon losslessly
 * with probability s1, and blocks the rest. The photon she keeps is read
 * once the bases are announced: she knows Alice's bit. */
static unsigned wcp_pns(const struct qkd_sim *s, struct opt_stream *cs,
			struct opt_event *ev, uint64_t w, unsigned darks)
{
	uint32_t n = ev->n_sent;

	ev->eve |= OPT_EVE_TOUCHED;
	if ((w & LOW32) >= (n == 1 ? s->pl.thr_s1 : s->pl.thr_s2))
		return 0;
	if (n >= 2)
		ev->eve |= OPT_EVE_KNOWN;
	return wcp_line(s, cs, ev, n == 1 ? 1 : n - 1, 1.0, darks);
}

unsigned opt_split_one(const struct qkd_sim *s, struct opt_stream *cs, struct opt_event *ev,
		       uint8_t value, uint32_t *held, uint32_t *und)
{
	double u = opt_u01(cs);

	if (u < s->p.eve_fraction) {
		++*held;
		return 0;
	}
	if (!(u < s->pl.bs_cut)) {
		++*und;
		return 0;
	}
	ev->n_arr[1]++;
	ev->n_det[1]++;
	return opt_bob_route(s, cs, ev, 1, OPT_ALICE_STATE, value);
}

/* Beamsplitting: each photon goes to Eve with probability F, the rest to
 * Bob over a line of transmittance min(1, T/(1-F)). */
static unsigned wcp_beamsplit(const struct qkd_sim *s, struct opt_stream *cs,
			      struct opt_event *ev, unsigned darks)
{
	uint32_t j = 0, und = 0;
	unsigned fired;

	if (ev->n_sent == 1) {
		fired = opt_split_one(s, cs, ev, OPT_ALICE_STATE, &j, &und);
		opt_bob_arrivals(s, cs, ev, darks | fired, und, s->pl.bs_line);
	} else {
		j = opt_binomial(cs, ev->n_sent, s->p.eve_fraction);
		fired = wcp_line(s, cs, ev, ev->n_sent - j, s->pl.bs_line, darks);
	}
	if (j > 0)
		ev->eve |= OPT_EVE_KNOWN | OPT_EVE_TOUCHED;
	return fired;
}

/* Eve's word is drawn only for a pulse she may act on (not for a slot
 * that is a candidate through a dark count alone, except that an
 * intercepted empty pulse still counts as touched). */
static unsigned wcp_pulse(const struct qkd_sim *s, struct opt_stream *cs,
			  struct opt_event *ev, unsigned darks)
{
	uint64_t w;

	if (ev->n_sent == 0 && s->p.eve != QKD_EVE_INTERCEPT_RESEND)
		return 0;
	switch (s->p.eve) {
	case QKD_EVE_INTERCEPT_RESEND:
		w = opt_eve_word(s, ev->slot);
		if ((w & LOW32) < s->pl.thr_f)
			return wcp_intercept(s, cs, ev, w, darks);
		break;
	case QKD_EVE_PNS:
		return wcp_pns(s, cs, ev, opt_eve_word(s, ev->slot), darks);
	case QKD_EVE_BEAMSPLIT:
		return wcp_beamsplit(s, cs, ev, darks);
	default:
		break;
	}
	return wcp_line(s, cs, ev, ev->n_sent, s->pl.tr, darks);
}

/* Both views need the choices once a party clicked; Alice's are drawn
 * before her reading overwrites value[0] with what she measured.
 * Entangled: Eve knows Alice's recorded bit only if it came from the one
 * pair of the slot (her photon detected, no double click). */
static void readings(const struct qkd_sim *s, struct opt_event *ev, unsigned fired)
{
	if (fired != 0) {
		opt_ev_alice(s, ev);
		opt_ev_bob(s, ev);
	}
	if (s->p.source == QKD_SOURCE_ENTANGLED) {
		opt_party_reading(ev, 0, fired & 3u, &s->alice_dc);
		if ((ev->eve & OPT_EVE_KNOWN) &&
		    (ev->n_det[0] != 1 || (ev->flags[0] & QKD_DET_DOUBLE)))
			ev->eve &= (uint8_t)~OPT_EVE_KNOWN;
	} else {
		ev->clicked[0] = 0;
		ev->flags[0] = 0;
	}
	opt_party_reading(ev, 1, (fired >> 2) & 3u, &s->bob_dc);
}

bool opt_pulse_fill(const struct qkd_sim *s, struct opt_stream *cs, struct opt_event *ev)
{
	uint32_t cnt[OPT_SRC_MAX];
	const struct opt_mode *m;
	unsigned darks = 0;
	uint8_t k = 0;

	ev->lazy = OPT_LAZY_ALICE | OPT_LAZY_BOB;
	if (s->p.intensities > 1) {
		/* The intensity decides the thinning: Alice's choice first. */
		opt_alice_choice(s, ev->slot, &ev->basis[0], &ev->value[0], &k);
		ev->lazy = OPT_LAZY_BOB;
		if (k != 0 && !(opt_u01(cs) < s->accept[k]))
			return false;
	}
	ev->intensity = k;
	ev->eve = 0;
	m = &s->pl.src[k];
	opt_sample_counts(m, cs, cnt);
	for (unsigned i = 1; i < m->n; i++)
		darks |= cnt[i] != 0 ? m->src[i].mask : 0u;
	ev->n_sent = cnt[0];
	ev->n_arr[0] = ev->n_arr[1] = ev->n_det[0] = ev->n_det[1] = 0;
	readings(s, ev, s->p.source == QKD_SOURCE_ENTANGLED ?
		 opt_spdc_pairs(s, cs, ev, darks) : darks | wcp_pulse(s, cs, ev, darks));
	return true;
}
