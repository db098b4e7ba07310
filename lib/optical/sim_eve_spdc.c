/* sim_eve_spdc.c - entangled pairs on the pulse-level path, Eve on Bob's
 * arm (docs/optical-model.md "Eve").
 *
 * Each pair is drawn as its outcome a in Alice's basis (uniform). Alice's
 * photon reaches her detectors (no fiber) and is detected with eta_d on
 * detector a. Bob's photon then behaves exactly like a photon prepared in
 * state (Alice's basis, a): measured in that basis it gives a (up to Bob's
 * misalignment), in the other a uniform bit. This is the honest model's
 * pair law; measuring in either order gives the same joint outcomes, so Eve
 * may act on Bob's photon as on a weak-coherent photon:
 *   intercept-resend  she measures the slot's photons in her basis (Alice's
 *                     basis: outcome a; the other: a uniform bit); if the
 *                     outcomes disagree (several pairs) she guesses. She
 *                     resends one photon in her state over a line of
 *                     transmittance T_E (eve_setup.c). Her result matters
 *                     only if Bob detects that photon, so it is drawn then:
 *                     in the other basis it is a uniform bit (agreeing
 *                     uniform outcomes or a guess), in Alice's basis the
 *                     pairs' common a, or a guess if they differ.
 *   beamsplit         each of Bob's photons goes to her with probability F,
 *                     the rest to Bob over a line of min(1, T/(1-F)).
 */
#include "optical_int.h"

#define LOW32 0xffffffffull

struct arm {
	bool intercept;		/* intercept-resend acts in this slot */
	uint8_t basis;		/* Eve's basis */
	uint8_t a_first;	/* outcome of the first pair in Alice's basis */
	bool a_mixed;		/* the pairs' outcomes differ */
	uint32_t held;		/* beamsplit: photons she holds */
	uint32_t und;		/* photons on Bob's line not detected (opt_bob_line) */
	double line;		/* that line's transmittance */
};

/* Bob's photon of a pair whose outcome in Alice's basis is a. */
static unsigned bob_arm(const struct qkd_sim *s, struct opt_stream *cs,
			struct opt_event *ev, struct arm *arm, uint8_t a)
{
	if (arm->intercept)
		return 0;	/* measured by Eve: intercept() */
	if (s->p.eve == QKD_EVE_BEAMSPLIT)
		return opt_split_one(s, cs, ev, a, &arm->held, &arm->und);
	return opt_bob_line(s, cs, ev, 1, arm->line, OPT_ALICE_STATE, a, &arm->und);
}

/* Eve resends one photon over the line T_E; w is her word (bit 33: her
 * guess). */
static unsigned intercept(const struct qkd_sim *s, struct opt_stream *cs,
			  struct opt_event *ev, struct arm *arm, uint64_t w)
{
	uint32_t d;
	uint8_t v;

	arm->line = s->pl.res_det[0];	/* T_E, eve_setup.c */
	d = opt_binomial(cs, 1, arm->line * s->p.detector_efficiency);
	arm->und += 1 - d;
	if (d == 0)
		return 0;
	ev->n_arr[1]++;
	ev->n_det[1]++;
	opt_ev_alice(s, ev);
	if (arm->basis != ev->basis[0])
		v = (uint8_t)(opt_next64(cs) & 1);
	else
		v = arm->a_mixed ? (uint8_t)((w >> 33) & 1) : arm->a_first;
	return opt_bob_route(s, cs, ev, 1, arm->basis, v);
}

/* Eve knows Alice's bit only from a slot of one pair whose twin she
 * measured in Alice's basis or holds; opt_pulse_fill then also asks that
 * Alice's bit came from that pair. Only a click is ever reported, so
 * Alice's basis is drawn only then. */
static void eve_truth(const struct qkd_sim *s, struct opt_event *ev, const struct arm *arm,
		      unsigned fired)
{
	bool one = ev->n_sent == 1;

	if (arm->intercept) {
		ev->eve |= OPT_EVE_TOUCHED;
		if (one && fired != 0) {
			opt_ev_alice(s, ev);
			ev->eve |= arm->basis == ev->basis[0] ? OPT_EVE_KNOWN : 0;
		}
	} else if (s->p.eve == QKD_EVE_BEAMSPLIT && arm->held > 0) {
		ev->eve |= OPT_EVE_TOUCHED;
		if (one)
			ev->eve |= OPT_EVE_KNOWN;
	}
}

/* One channel word per pair: bit 0 is its outcome a, the top 53 bits the
 * uniform deciding whether Alice's photon (no fiber) is detected, on
 * detector a (the mixer's output bits are independent). */
unsigned opt_spdc_pairs(const struct qkd_sim *s, struct opt_stream *cs, struct opt_event *ev,
			unsigned darks)
{
	uint64_t w = s->p.eve == QKD_EVE_NONE ? 0 : opt_eve_word(s, ev->slot);
	struct arm arm = {
		.intercept = s->p.eve == QKD_EVE_INTERCEPT_RESEND && (w & LOW32) < s->pl.thr_f,
		.basis = (uint8_t)((w >> 32) & 1),
		.line = s->p.eve == QKD_EVE_BEAMSPLIT ? s->pl.bs_line : s->pl.tr,
	};
	unsigned fired = darks;

	for (uint32_t i = 0; i < ev->n_sent; i++) {
		uint64_t r = opt_next64(cs);
		uint8_t a = (uint8_t)(r & 1);

		arm.a_first = i == 0 ? a : arm.a_first;
		arm.a_mixed |= a != arm.a_first;
		ev->n_arr[0]++;
		if ((double)(r >> 11) * 0x1.0p-53 < s->p.detector_efficiency) {
			ev->n_det[0]++;
			fired |= (unsigned)OPT_A0 << a;
		}
		fired |= bob_arm(s, cs, ev, &arm, a);
	}
	if (arm.intercept && ev->n_sent > 0)
		fired |= intercept(s, cs, ev, &arm, w);
	opt_bob_arrivals(s, cs, ev, fired, arm.und, arm.line);
	eve_truth(s, ev, &arm, fired);
	return fired;
}
