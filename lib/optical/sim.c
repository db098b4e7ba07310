/* sim.c - the simulator object and the two parties' views (qkd/optical.h). */
#include "optical_int.h"

#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/secret.h"

#define LIST_MIN_CAP 1024

/* The detection-level path: one pair of source tables per intensity; the
 * candidates are index 0's events (block.c thins them for the others). */
static void honest_setup(struct qkd_sim *s)
{
	const struct qkd_link_params *p = &s->p;

	for (unsigned k = 0; k < p->intensities; k++) {
		struct qkd_link_params q = *p;

		q.mu = qkd_link_intensity(p, k);
		if (p->source == QKD_SOURCE_ENTANGLED)
			opt_spdc_modes(&q, s->mode[k]);
		else
			opt_wcp_modes(&q, s->mode[k]);
		s->accept[k] = opt_thin_ratio(s->mode[k][1].log_silent,
					      s->mode[0][1].log_silent);
	}
	s->relative_b = p->source == QKD_SOURCE_WEAK_COHERENT;
	s->log_silent = s->mode[0][1].log_silent;
}

static int sim_new(struct qkd_sim **out, const struct qkd_link_params *p, bool pulse_level)
{
	struct qkd_sim *s;

	*out = NULL;
	if (qkd_link_params_check(p, NULL) != QKD_OK)
		return QKD_ERR_INVAL;
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return QKD_ERR_NOMEM;
	s->p = *p;
	opt_keys_derive(s);
	opt_choices_setup(s);
	if (pulse_level || p->eve != QKD_EVE_NONE)
		opt_pulse_setup(s);
	else
		honest_setup(s);
	s->inv_log_silent = s->log_silent < 0 ? 1.0 / s->log_silent : 0.0;
	*out = s;
	return QKD_OK;
}

int qkd_sim_new(struct qkd_sim **out, const struct qkd_link_params *p)
{
	return sim_new(out, p, false);
}

int opt_sim_new_pulse_level(struct qkd_sim **out, const struct qkd_link_params *p)
{
	return sim_new(out, p, true);
}

void qkd_sim_free(struct qkd_sim *s)
{
	qkd_free_secret(s, sizeof *s);
}

const struct qkd_link_params *qkd_sim_params(const struct qkd_sim *s)
{
	return &s->p;
}

void qkd_det_list_init(struct qkd_det_list *l, bool want_truth)
{
	memset(l, 0, sizeof *l);
	l->want_truth = want_truth;
}

void qkd_det_list_cleanup(struct qkd_det_list *l)
{
	bool want;

	if (l == NULL)
		return;
	want = l->want_truth;
	qkd_free_secret(l->d, l->cap * sizeof *l->d);
	qkd_free_secret(l->truth, l->cap * sizeof *l->truth);
	qkd_det_list_init(l, want);
}

static void list_reset(struct qkd_det_list *l)
{
	qkd_wipe(l->d, l->n * sizeof *l->d);
	if (l->truth != NULL)
		qkd_wipe(l->truth, l->n * sizeof *l->truth);
	l->n = 0;
}

/* Grow without realloc so the old copy of the raw bits is wiped. */
static int list_grow(struct qkd_det_list *l)
{
	size_t cap = l->cap < LIST_MIN_CAP ? LIST_MIN_CAP : l->cap;
	struct qkd_detection *d;
	struct qkd_det_truth *t = NULL;

	if (l->cap >= LIST_MIN_CAP) {
		if (cap > SIZE_MAX / 2 / sizeof *d)
			return QKD_ERR_RANGE;
		cap *= 2;
	}
	d = malloc(cap * sizeof *d);
	if (l->want_truth)
		t = malloc(cap * sizeof *t);
	if (d == NULL || (l->want_truth && t == NULL)) {
		free(d);
		free(t);
		return QKD_ERR_NOMEM;
	}
	if (l->n > 0)
		memcpy(d, l->d, l->n * sizeof *d);
	if (l->n > 0 && t != NULL)
		memcpy(t, l->truth, l->n * sizeof *t);
	qkd_free_secret(l->d, l->cap * sizeof *l->d);
	qkd_free_secret(l->truth, l->cap * sizeof *l->truth);
	l->d = d;
	l->truth = t;
	l->cap = cap;
	return QKD_OK;
}

static int list_push(struct qkd_det_list *l, const struct opt_event *ev, int who)
{
	struct qkd_detection *d;
	int rc;

	if (l->n == l->cap && (rc = list_grow(l)) != QKD_OK)
		return rc;
	d = &l->d[l->n];
	memset(d, 0, sizeof *d);
	d->slot = ev->slot;
	d->basis = ev->basis[who];
	d->value = ev->value[who];
	d->flags = ev->flags[who];
	/* The intensity is Alice's choice: never in Bob's view. */
	d->intensity = who == 0 ? ev->intensity : 0;
	if (l->truth != NULL)
		opt_event_truth(ev, who, &l->truth[l->n]);
	l->n++;
	return QKD_OK;
}

static void stats_add(struct qkd_sim_stats *st, const struct opt_event *ev, int who)
{
	st->clicks++;
	st->double_clicks += (ev->flags[who] & QKD_DET_DOUBLE) != 0;
	st->dark_only += ev->n_det[who] == 0;
	st->multi_photon += ev->n_sent >= 2;
	st->coincidences += ev->clicked[0] && ev->clicked[1];
	st->eve_known += (ev->eve & OPT_EVE_KNOWN) != 0;
	st->eve_touched += (ev->eve & OPT_EVE_TOUCHED) != 0;
	st->by_intensity[ev->intensity]++;
}

static void stats_merge(struct qkd_sim_stats *st, const struct qkd_sim_stats *a)
{
	st->slots += a->slots;
	st->clicks += a->clicks;
	st->double_clicks += a->double_clicks;
	st->dark_only += a->dark_only;
	st->multi_photon += a->multi_photon;
	st->coincidences += a->coincidences;
	st->eve_known += a->eve_known;
	st->eve_touched += a->eve_touched;
	for (unsigned k = 0; k < QKD_INTENSITIES_MAX; k++)
		st->by_intensity[k] += a->by_intensity[k];
}

static bool range_ok(const struct qkd_sim *s, uint64_t first, uint64_t count)
{
	return count <= s->p.pulses && first <= s->p.pulses - count;
}

/* Detections of party `who` in [first, first+count), whole blocks walked from
 * their start so chunking never changes a slot's outcome. */
static int chunk(const struct qkd_sim *s, int who, uint64_t first, uint64_t count,
		 struct qkd_det_list *out, struct qkd_sim_stats *st)
{
	struct qkd_sim_stats acc = { .slots = count };
	uint64_t end = first + count;
	struct opt_block_it it;
	struct opt_event ev;
	int rc = QKD_OK;

	list_reset(out);
	if (!range_ok(s, first, count))
		return QKD_ERR_RANGE;
	for (uint64_t b = first >> OPT_BLOCK_SHIFT;
	     rc == QKD_OK && count > 0 && (b << OPT_BLOCK_SHIFT) < end; b++) {
		uint64_t bend = (b + 1) << OPT_BLOCK_SHIFT;

		opt_block_begin(&it, s, b, bend < end ? bend : end);
		while (rc == QKD_OK && opt_block_next(&it, &ev)) {
			if (ev.slot < first || !ev.clicked[who])
				continue;
			rc = list_push(out, &ev, who);
			stats_add(&acc, &ev, who);
		}
	}
	qkd_wipe(&ev, sizeof ev);
	if (rc != QKD_OK) {
		list_reset(out);
		return rc;
	}
	if (st != NULL)
		stats_merge(st, &acc);
	return QKD_OK;
}

int qkd_sim_bob_chunk(const struct qkd_sim *s, uint64_t first, uint64_t count,
		      struct qkd_det_list *out, struct qkd_sim_stats *st)
{
	return chunk(s, 1, first, count, out, st);
}

int qkd_sim_alice_chunk(const struct qkd_sim *s, uint64_t first, uint64_t count,
			struct qkd_det_list *out, struct qkd_sim_stats *st)
{
	if (s->p.source != QKD_SOURCE_ENTANGLED) {
		list_reset(out);
		return QKD_ERR_INVAL;
	}
	return chunk(s, 0, first, count, out, st);
}
