/* block.c - the sparse walk over one block of slots.
 *
 * Event slots (some detector of either party fires) are a Bernoulli process
 * with p = 1 - exp(log_silent), the same whatever the bases, so the gap to the
 * next one is geometric: G = floor(ln U / ln(1-p)), U uniform in (0, 1]
 * (P(G >= g) = (1-p)^g exactly; ln(1-p) is log_silent, summed from log1p and
 * -mean terms, so p = 1e-15 and p = 1 both work). Each block of 2^16 slots
 * draws from its own channel stream starting at the block's first slot, so a
 * slot's outcome never depends on where a caller's chunk started.
 *
 * Decoys. The gaps are drawn with the brightest intensity's p_0 (index 0);
 * a candidate slot whose pulse has intensity k is kept with probability
 * a_k = p_k / p_0 (one uniform, only for k != 0). Alice's choices are
 * independent of the channel, so each slot is an event independently with
 * probability p_0 a_k = p_k: this thinning is exact, and with one intensity
 * it draws nothing extra. The pulse-level path (sim_eve.c) walks the same
 * way with its own candidate process.
 */
#include "optical_int.h"

#include <math.h>

void opt_block_begin(struct opt_block_it *it, const struct qkd_sim *s,
		     uint64_t block, uint64_t end)
{
	it->s = s;
	it->pos = block << OPT_BLOCK_SHIFT;
	it->end = end;
	it->done = !(s->log_silent < 0) || it->pos >= end;
	opt_stream_init(&it->cs, s, block);
}

static uint8_t sat8(uint32_t v)
{
	return v > 255 ? 255 : (uint8_t)v;
}

void opt_party_reading(struct opt_event *ev, int who, unsigned bits,
		       const struct opt_key *dc)
{
	ev->clicked[who] = bits != 0;
	ev->flags[who] = 0;
	if (bits == 3) {
		ev->flags[who] = QKD_DET_DOUBLE;
		ev->value[who] = opt_dc_bit(dc, ev->slot);
	} else if (bits != 0) {
		ev->value[who] = (uint8_t)(bits >> 1);
	}
}

/* Complete a candidate slot; false when thinning drops it. */
static bool event_fill(const struct qkd_sim *s, struct opt_stream *cs,
		       struct opt_event *ev)
{
	uint32_t cnt[OPT_SRC_MAX];
	const struct opt_mode *m;
	unsigned fired = 0, a_value;
	uint8_t k;

	opt_alice_choice(s, ev->slot, &ev->basis[0], &ev->value[0], &k);
	if (k != 0 && !(opt_u01(cs) < s->accept[k]))
		return false;
	ev->intensity = k;
	ev->eve = 0;
	a_value = ev->value[0];
	ev->basis[1] = opt_bob_basis(s, ev->slot);
	m = &s->mode[k][ev->basis[0] == ev->basis[1]];
	opt_sample_counts(m, cs, cnt);
	ev->n_sent = ev->n_arr[0] = ev->n_arr[1] = ev->n_det[0] = ev->n_det[1] = 0;
	for (unsigned i = 0; i < m->n; i++) {
		unsigned r = m->src[i].role;

		if (cnt[i] == 0)
			continue;
		fired |= m->src[i].mask;
		ev->n_sent += (r & OPT_R_SENT) ? cnt[i] : 0;
		ev->n_arr[0] += (r & OPT_R_A_ARR) ? cnt[i] : 0;
		ev->n_det[0] += (r & OPT_R_A_DET) ? cnt[i] : 0;
		ev->n_arr[1] += (r & OPT_R_B_ARR) ? cnt[i] : 0;
		ev->n_det[1] += (r & OPT_R_B_DET) ? cnt[i] : 0;
	}
	if (s->relative_b) {
		/* B0 meant "the detector of Alice's value". */
		if (a_value)
			fired = (fired & 3u) | ((fired & OPT_B0) << 1) | ((fired & OPT_B1) >> 1);
		ev->clicked[0] = 0;
		ev->flags[0] = 0;
	} else {
		opt_party_reading(ev, 0, fired & 3u, &s->alice_dc);
	}
	opt_party_reading(ev, 1, (fired >> 2) & 3u, &s->bob_dc);
	return true;
}

bool opt_block_next(struct opt_block_it *it, struct opt_event *ev)
{
	const struct qkd_sim *s = it->s;

	for (;;) {
		double g;

		if (it->done)
			return false;
		g = floor(log(opt_u_open0(&it->cs)) * s->inv_log_silent);
		if (!(g < (double)(it->end - it->pos))) {
			it->done = true;
			return false;
		}
		ev->slot = it->pos + (uint64_t)g;
		it->pos = ev->slot + 1;
		if (s->pulse_level ? opt_pulse_fill(s, &it->cs, ev) : event_fill(s, &it->cs, ev))
			return true;
	}
}

void opt_event_truth(const struct opt_event *ev, int who, struct qkd_det_truth *t)
{
	t->n_sent = sat8(ev->n_sent);
	t->n_arrived = sat8(ev->n_arr[who]);
	t->n_detected = sat8(ev->n_det[who]);
	t->flags = (uint8_t)((ev->n_det[who] == 0 ? QKD_TRUTH_DARK : 0) |
			     (ev->clicked[0] && ev->clicked[1] ? QKD_TRUTH_COINC : 0) |
			     (ev->eve & OPT_EVE_KNOWN ? QKD_TRUTH_EVE : 0));
}
