/* bench.c - the simulator benchmark behind `qkd bench` (qkd/optical.h). */
#include "qkd/optical.h"

#include <stdlib.h>
#include <time.h>

#include "qkd/error.h"
#include "qkd/secret.h"

#define BENCH_CHUNK ((uint64_t)1 << 24)

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One chunk as a `qkd sim` run does it: Bob's view, then Alice's lookup. */
static int bench_chunk(const struct qkd_sim *s, uint64_t first, uint64_t count,
		       struct qkd_det_list *bob, struct qkd_detection **alice,
		       size_t *alice_cap, uint64_t **slots, struct qkd_sim_stats *st)
{
	int rc = qkd_sim_bob_chunk(s, first, count, bob, st);

	if (rc != QKD_OK)
		return rc;
	if (bob->n > *alice_cap) {
		qkd_free_secret(*alice, *alice_cap * sizeof **alice);
		free(*slots);
		*alice_cap = 0;
		*alice = calloc(bob->cap, sizeof **alice);
		*slots = calloc(bob->cap, sizeof **slots);
		if (*alice == NULL || *slots == NULL)
			return QKD_ERR_NOMEM;
		*alice_cap = bob->cap;
	}
	for (size_t i = 0; i < bob->n; i++)
		(*slots)[i] = bob->d[i].slot;
	return qkd_sim_alice_lookup(s, *slots, bob->n, *alice);
}

int qkd_sim_bench(const struct qkd_link_params *p, uint64_t pulses,
		  double *seconds, struct qkd_sim_stats *st)
{
	struct qkd_link_params lp;
	struct qkd_sim *s = NULL;
	struct qkd_det_list bob;
	struct qkd_detection *alice = NULL;
	uint64_t *slots = NULL;
	size_t alice_cap = 0;
	double t0;
	int rc;

	if (p != NULL)
		lp = *p;
	else
		qkd_link_params_default(&lp);
	lp.pulses = pulses;
	qkd_det_list_init(&bob, false);
	rc = qkd_sim_new(&s, &lp);
	t0 = now_seconds();
	for (uint64_t first = 0; rc == QKD_OK && first < pulses; first += BENCH_CHUNK) {
		uint64_t n = pulses - first < BENCH_CHUNK ? pulses - first : BENCH_CHUNK;

		rc = bench_chunk(s, first, n, &bob, &alice, &alice_cap, &slots, st);
	}
	if (seconds != NULL)
		*seconds = now_seconds() - t0;
	qkd_det_list_cleanup(&bob);
	qkd_free_secret(alice, alice_cap * sizeof *alice);
	free(slots);
	qkd_sim_free(s);
	return rc;
}
