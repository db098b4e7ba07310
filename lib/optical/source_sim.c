/* The optical simulator behind the engine's source interfaces. */
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/optical.h"
#include "qkd/secret.h"
#include "qkd/simlink.h"
#include "qkd/source.h"
#include "qkd/sysutil.h"

#include "source_batch.h"

/* Chunk of slots simulated and sifted at a time: large enough that message
 * overhead is negligible, small enough to bound Bob's memory. */
#define SIM_CHUNK_SLOTS ((uint64_t)1 << 26)

void qkd_bob_chunk_cleanup(struct qkd_bob_chunk *c)
{
	if (c == NULL)
		return;
	free(c->slot);
	c->slot = NULL;
	qkd_bits_cleanup(&c->basis);
	qkd_bits_cleanup(&c->value);
	qkd_bits_cleanup(&c->eve_known);
	c->n = 0;
}

/* Ground truth for the report: which detections' bits Eve knows. */
static int truth_bits(const struct qkd_det_list *dl, struct qkd_bits *eve)
{
	int rc = qkd_bits_init(eve, dl->n);

	for (size_t i = 0; rc == QKD_OK && i < dl->n; i++)
		qkd_bits_set(eve, i, (dl->truth[i].flags & QKD_TRUTH_EVE) != 0);
	return rc;
}

static int bob_next(void *ctx, struct qkd_bob_chunk *c)
{
	struct qkd_sim_bob_source *s = ctx;
	const struct qkd_link_params *p = qkd_sim_params(s->sim);
	struct qkd_det_list dl;
	struct qkd_sim_stats st;
	uint64_t count;
	double t0 = qkd_cpu_seconds();
	int rc;

	if (s->next_slot >= p->pulses)
		return 0;
	count = p->pulses - s->next_slot;
	if (count > s->chunk_slots)
		count = s->chunk_slots;
	memset(&st, 0, sizeof st);
	qkd_det_list_init(&dl, p->eve != QKD_EVE_NONE);
	rc = qkd_sim_bob_chunk(s->sim, s->next_slot, count, &dl, &st);
	if (rc == QKD_OK) {
		c->first_slot = s->next_slot;
		c->slots = count;
		c->n = dl.n;
		c->double_clicks = st.double_clicks;
		c->slot = malloc((dl.n ? dl.n : 1) * sizeof *c->slot);
		if (c->slot == NULL)
			rc = QKD_ERR_NOMEM;
	}
	if (rc == QKD_OK && (rc = qkd_bits_init(&c->basis, dl.n)) == QKD_OK)
		rc = qkd_bits_init(&c->value, dl.n);
	if (rc == QKD_OK && dl.want_truth)
		rc = truth_bits(&dl, &c->eve_known);
	for (size_t w = 0; rc == QKD_OK && w < dl.n; w += 64) {
		uint64_t bw = 0, vw = 0;
		size_t e = dl.n - w < 64 ? dl.n - w : 64;

		for (size_t i = 0; i < e; i++) {
			c->slot[w + i] = dl.d[w + i].slot;
			bw |= (uint64_t)(dl.d[w + i].basis & 1) << i;
			vw |= (uint64_t)(dl.d[w + i].value & 1) << i;
		}
		c->basis.w[w / 64] = bw;
		c->value.w[w / 64] = vw;
	}
	qkd_det_list_cleanup(&dl);
	s->next_slot += count;
	s->cpu += qkd_cpu_seconds() - t0;
	return rc == QKD_OK ? 1 : rc;
}

void qkd_sim_bob_source_init(struct qkd_sim_bob_source *s, const struct qkd_sim *sim,
			     struct qkd_bob_source *ops)
{
	s->sim = sim;
	s->next_slot = 0;
	s->chunk_slots = SIM_CHUNK_SLOTS;
	s->cpu = 0;
	ops->next = bob_next;
	ops->ctx = s;
	ops->total_slots = qkd_sim_params(sim)->pulses;
	ops->eve_truth = qkd_sim_params(sim)->eve != QKD_EVE_NONE;
}

static int backend_lookup(void *backend, const uint64_t *slots, size_t n,
			  struct qkd_detection *out)
{
	return qkd_sim_alice_lookup(backend, slots, n, out);
}

static int alice_lookup(void *ctx, const uint64_t *slot, size_t n, struct qkd_bits *basis,
			struct qkd_bits *value, struct qkd_bits *valid)
{
	struct qkd_sim_alice_source *s = ctx;
	double t0 = qkd_cpu_seconds();
	int rc = opt_batch_lookup(backend_lookup, (void *)s->sim, slot, n, basis, value, valid);

	s->cpu += qkd_cpu_seconds() - t0;
	return rc;
}

static int alice_choices(void *ctx, uint64_t first, uint64_t count, struct qkd_bits *basis,
			 struct qkd_bits *value)
{
	struct qkd_sim_alice_source *s = ctx;
	double t0 = qkd_cpu_seconds();
	int rc = qkd_sim_alice_choices(s->sim, first, count, basis, value);

	s->cpu += qkd_cpu_seconds() - t0;
	return rc;
}

static int alice_intensity(void *ctx, const uint64_t *slot, size_t n, uint8_t *out)
{
	struct qkd_sim_alice_source *s = ctx;
	double t0 = qkd_cpu_seconds();
	int rc = opt_batch_intensity(backend_lookup, (void *)s->sim, slot, n, out);

	s->cpu += qkd_cpu_seconds() - t0;
	return rc;
}

void qkd_sim_alice_source_init(struct qkd_sim_alice_source *s, const struct qkd_sim *sim,
			       struct qkd_alice_source *ops)
{
	s->sim = sim;
	s->cpu = 0;
	ops->lookup = alice_lookup;
	/* An entangled source's values are measurement outcomes, not RNG output:
	 * only a weak-coherent source's choices are tested. */
	ops->choices = qkd_sim_params(sim)->source == QKD_SOURCE_WEAK_COHERENT ? alice_choices
									       : NULL;
	ops->intensity = qkd_sim_params(sim)->intensities > 1 ? alice_intensity : NULL;
	ops->ctx = s;
}
