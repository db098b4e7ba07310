/* source_file.c - recorded detections behind the engine's source
 * interfaces (qkd/source.h), as source_sim.c puts the simulator there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/recording.h"
#include "qkd/secret.h"
#include "qkd/simlink.h"
#include "qkd/source.h"
#include "qkd/sysutil.h"

#include "source_batch.h"

/* The simulator source's chunk (source_sim.c): the same chunk boundaries
 * make a replay sift, test and frame exactly as the live run did, so it
 * gives the same key. */
#define FILE_CHUNK_SLOTS ((uint64_t)1 << 26)

/* Detections in [first, first+count) as the engine's chunk. */
static int chunk_fill(struct qkd_bob_chunk *c, const struct qkd_det_list *dl,
		      uint64_t first, uint64_t count, uint64_t double_clicks)
{
	int rc;

	c->first_slot = first;
	c->slots = count;
	c->n = dl->n;
	c->double_clicks = double_clicks;
	c->slot = malloc((dl->n ? dl->n : 1) * sizeof *c->slot);
	if (c->slot == NULL)
		return QKD_ERR_NOMEM;
	if ((rc = qkd_bits_init(&c->basis, dl->n)) != QKD_OK ||
	    (rc = qkd_bits_init(&c->value, dl->n)) != QKD_OK)
		return rc;
	for (size_t i = 0; i < dl->n; i++) {
		c->slot[i] = dl->d[i].slot;
		qkd_bits_set(&c->basis, i, dl->d[i].basis);
		qkd_bits_set(&c->value, i, dl->d[i].value);
	}
	return QKD_OK;
}

static int bob_next(void *ctx, struct qkd_bob_chunk *c)
{
	struct qkd_file_bob_source *s = ctx;
	uint64_t slots = qkd_rec_bob_info(s->rec)->slots, count;
	struct qkd_det_list dl;
	struct qkd_sim_stats st;
	double t0 = qkd_cpu_seconds();
	int rc;

	if (s->next_slot >= slots)
		return 0;
	count = slots - s->next_slot;
	if (count > s->chunk_slots)
		count = s->chunk_slots;
	memset(&st, 0, sizeof st);
	qkd_det_list_init(&dl, false);
	rc = qkd_rec_bob_chunk(s->rec, s->next_slot, count, &dl, &st);
	if (rc == QKD_OK)
		rc = chunk_fill(c, &dl, s->next_slot, count, st.double_clicks);
	qkd_det_list_cleanup(&dl);
	s->next_slot += count;
	s->cpu += qkd_cpu_seconds() - t0;
	return rc == QKD_OK ? 1 : rc;
}

void qkd_file_bob_source_init(struct qkd_file_bob_source *s, struct qkd_rec_bob *r,
			      struct qkd_bob_source *ops)
{
	s->rec = r;
	s->next_slot = 0;
	s->chunk_slots = FILE_CHUNK_SLOTS;
	s->cpu = 0;
	ops->next = bob_next;
	ops->ctx = s;
	ops->total_slots = qkd_rec_bob_info(r)->slots;
	ops->eve_truth = false;	/* a recording knows nothing of Eve */
}

static int backend_lookup(void *backend, const uint64_t *slots, size_t n,
			  struct qkd_detection *out)
{
	return qkd_rec_alice_lookup(backend, slots, n, out);
}

static int alice_lookup(void *ctx, const uint64_t *slot, size_t n, struct qkd_bits *basis,
			struct qkd_bits *value, struct qkd_bits *valid)
{
	struct qkd_file_alice_source *s = ctx;
	double t0 = qkd_cpu_seconds();
	int rc = opt_batch_lookup(backend_lookup, s->rec, slot, n, basis, value, valid);

	s->cpu += qkd_cpu_seconds() - t0;
	return rc;
}

static int alice_choices(void *ctx, uint64_t first, uint64_t count, struct qkd_bits *basis,
			 struct qkd_bits *value)
{
	struct qkd_file_alice_source *s = ctx;
	double t0 = qkd_cpu_seconds();
	int rc = qkd_rec_alice_choices(s->rec, first, count, basis, value);

	s->cpu += qkd_cpu_seconds() - t0;
	return rc;
}

static int alice_intensity(void *ctx, const uint64_t *slot, size_t n, uint8_t *out)
{
	struct qkd_file_alice_source *s = ctx;
	double t0 = qkd_cpu_seconds();
	int rc = opt_batch_intensity(backend_lookup, s->rec, slot, n, out);

	s->cpu += qkd_cpu_seconds() - t0;
	return rc;
}

void qkd_file_alice_source_init(struct qkd_file_alice_source *s, struct qkd_rec_alice *r,
				struct qkd_alice_source *ops)
{
	const struct qkd_rec_info *info = qkd_rec_alice_info(r);

	s->rec = r;
	s->cpu = 0;
	ops->lookup = alice_lookup;
	/* As for the simulator: an entangled source's values are measurement
	 * outcomes, not RNG output, so only weak-coherent choices are tested. */
	ops->choices = info->source == QKD_SOURCE_WEAK_COHERENT ? alice_choices : NULL;
	ops->intensity = info->intensities > 1 ? alice_intensity : NULL;
	ops->ctx = s;
}

/* ---- The simlink factory: each party opens its own file ---- */

struct party_state {
	struct qkd_rec_alice *alice;
	struct qkd_rec_bob *bob;
	struct qkd_file_alice_source as;
	struct qkd_file_bob_source bs;
};

static int party_open(const char *dir, bool alice, struct party_state **out)
{
	struct party_state *p = calloc(1, sizeof *p);
	char path[4096];
	int n, rc;

	*out = NULL;
	if (p == NULL)
		return QKD_ERR_NOMEM;
	n = snprintf(path, sizeof path, "%s/%s", dir, alice ? QKD_REC_ALICE_FILE : QKD_REC_BOB_FILE);
	if (n < 0 || (size_t)n >= sizeof path)
		rc = QKD_ERR_INVAL;
	else if (alice)
		rc = qkd_rec_alice_open(&p->alice, path, NULL);
	else
		rc = qkd_rec_bob_open(&p->bob, path, NULL);
	if (rc != QKD_OK) {
		free(p);
		return rc;
	}
	*out = p;
	return QKD_OK;
}

static int party_alice(void *ctx, struct qkd_alice_source *ops, void **state)
{
	struct party_state *p;
	int rc = party_open(ctx, true, &p);

	if (rc == QKD_OK)
		qkd_file_alice_source_init(&p->as, p->alice, ops);
	*state = p;
	return rc;
}

static int party_bob(void *ctx, struct qkd_bob_source *ops, void **state)
{
	struct party_state *p;
	int rc = party_open(ctx, false, &p);

	if (rc == QKD_OK)
		qkd_file_bob_source_init(&p->bs, p->bob, ops);
	*state = p;
	return rc;
}

static double party_cpu(const void *state)
{
	const struct party_state *p = state;

	return p->alice != NULL ? p->as.cpu : p->bs.cpu;
}

static void party_release(void *state)
{
	struct party_state *p = state;

	if (p == NULL)
		return;
	qkd_rec_alice_free(p->alice);
	qkd_rec_bob_free(p->bob);
	free(p);
}

void qkd_file_party_sources(struct qkd_party_sources *ps, const char *dir)
{
	ps->alice = party_alice;
	ps->bob = party_bob;
	ps->cpu = party_cpu;
	ps->release = party_release;
	/* The callbacks only read dir; the cast drops const for the void *ctx. */
	ps->ctx = (void *)(uintptr_t)dir;
}
