/* topology_gen.c - topologies made without a file, for `qkd netsim
 * --generate` (qkd/topology.h): a ring, a grid, and a random connected
 * network with every degree in 2..5 drawn from the seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/rng.h"
#include "topology_int.h"

#define GEN_DEG_MIN 2
#define GEN_DEG_MAX 5

int qkd_topology_shape_parse(const char *name, enum qkd_topo_shape *out)
{
	static const char *const names[] = {"ring", "grid", "random"};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(name, names[i]) == 0) {
			*out = (enum qkd_topo_shape)i;
			return QKD_OK;
		}
	return QKD_ERR_INVAL;
}

static int gen_nodes(struct qkd_topology *t, size_t n)
{
	char id[QKD_NODE_NAME_MAX], sae[QKD_LSA_SAE_ID_MAX + 1];
	size_t at;
	int rc = QKD_OK;

	for (size_t i = 0; i < n && rc == QKD_OK; i++) {
		snprintf(id, sizeof id, "n%zu", i);
		snprintf(sae, sizeof sae, "sae-n%zu", i);
		rc = topo_add_node(t, id, &at);
		if (rc == QKD_OK)
			rc = topo_add_sae(t, at, sae);
	}
	return rc;
}

static int gen_grid(struct qkd_topology *t, size_t n)
{
	size_t w = 1, at;
	int rc = QKD_OK;

	while (w * w < n)
		w++;
	for (size_t i = 0; i < n && rc == QKD_OK; i++) {
		if ((i + 1) % w != 0 && i + 1 < n)
			rc = topo_add_link(t, i, i + 1, &at);
		if (rc == QKD_OK && i + w < n)
			rc = topo_add_link(t, i, i + w, &at);
	}
	return rc;
}

static bool gen_linked(const struct qkd_topology *t, size_t a, size_t b)
{
	for (size_t i = 0; i < t->n_links; i++)
		if ((t->links[i].a == a && t->links[i].b == b) ||
		    (t->links[i].a == b && t->links[i].b == a))
			return true;
	return false;
}

/* A ring through a random order of the nodes (connected, degree 2), then
 * n/2 tries at chords between nodes of degree under 5. Each link gets a
 * length of 5..50 km. */
static int gen_random(struct qkd_topology *t, size_t n, uint64_t seed, size_t *perm)
{
	struct qkd_rng g;
	size_t at;
	int rc = QKD_OK;

	qkd_rng_init_seed(&g, seed, "netsim-topology");
	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)qkd_rng_below(&g, i + 1), x = perm[i];

		perm[i] = perm[j];
		perm[j] = x;
	}
	for (size_t i = 0; i < n && rc == QKD_OK; i++)
		rc = topo_add_link(t, perm[i], perm[(i + 1) % n], &at);
	for (size_t k = 0; k < n / 2 && rc == QKD_OK; k++) {
		size_t a = (size_t)qkd_rng_below(&g, n), b = (size_t)qkd_rng_below(&g, n);

		if (a == b || t->nodes[a].n_links >= GEN_DEG_MAX ||
		    t->nodes[b].n_links >= GEN_DEG_MAX || gen_linked(t, a, b))
			continue;
		rc = topo_add_link(t, a, b, &at);
	}
	for (size_t i = 0; i < t->n_links; i++)
		t->links[i].km = 5.0 + (double)qkd_rng_below(&g, 451) / 10.0;
	qkd_rng_cleanup(&g);
	return rc;
}

int qkd_topology_generate(enum qkd_topo_shape shape, size_t n, uint64_t seed,
			  struct qkd_topology **out)
{
	struct qkd_topology *t = NULL;
	size_t *perm = NULL, at;
	int rc = QKD_ERR_INVAL;

	*out = NULL;
	if (n < 3 || n > QKD_TOPO_GEN_MAX || (shape == QKD_TOPO_GRID && n < 4) ||
	    shape > QKD_TOPO_RANDOM)
		goto out;
	rc = QKD_ERR_NOMEM;
	t = topo_new();
	perm = calloc(n, sizeof *perm);
	if (t == NULL || perm == NULL || (rc = gen_nodes(t, n)) != QKD_OK)
		goto out;
	if (shape == QKD_TOPO_RING)
		for (size_t i = 0; i < n && rc == QKD_OK; i++)
			rc = topo_add_link(t, i, (i + 1) % n, &at);
	else if (shape == QKD_TOPO_GRID)
		rc = gen_grid(t, n);
	else
		rc = gen_random(t, n, seed, perm);
	if (rc != QKD_OK)
		goto out;
	*out = t;
	t = NULL;
out:
	qkd_topology_free(t);
	free(perm);
	return rc;
}
