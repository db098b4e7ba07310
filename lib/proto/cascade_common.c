/* cascade_common.c - variant table, names for --help, small containers.
 *
 * The parameters of "cascade" were tuned by simulation (bench/ec_eval.c,
 * docs/error-correction.md): a first pass in natural order with blocks of
 * about 1/QBER, a second permuted pass with blocks of about 6/QBER (QBER
 * refined from the first pass's odd blocks), both rounded to powers of two,
 * then confirmation passes over a random subset and its complement (one
 * disclosed parity each) until `confirm` of them in a row found nothing.
 * "cascade-bbn" is Cascade as BBN ran it: blocks of 0.73/QBER doubling every
 * pass, all sets kept and re-examined, every odd set bisected at once.
 */
#include <stdlib.h>
#include <string.h>

#include "cascade_internal.h"
#include "qkd/error.h"
#include "qkd/secret.h"

static const struct cas_variant variants[] = {
	{
		.name = "cascade",
		.desc = "tuned Cascade (f ~1.04): blocks ~1/QBER then ~6/QBER, "
			"every disclosed parity reused, small sets first",
		.id = 1, .a1 = 1.0, .a2 = 6, .pow2 = true, .shuffle_first = false,
		.infer_last = true, .confirm = 20, .window = 1,
	},
	{
		.name = "cascade-bbn",
		.desc = "Cascade as BBN ran it (f ~1.2): blocks 0.73/QBER doubling "
			"each pass, every disclosed parity reused",
		.id = 2, .a1 = 0.73, .a2 = 0, .pow2 = false, .shuffle_first = true,
		.infer_last = false, .confirm = 20, .window = 0,
	},
};

#define NVARIANTS (sizeof variants / sizeof variants[0])

static const char *const names[NVARIANTS + 1] = { "cascade", "cascade-bbn", NULL };

const struct cas_variant *cas_variant_find(const char *name)
{
	if (name == NULL)
		name = QKD_EC_DEFAULT;
	for (size_t i = 0; i < NVARIANTS; i++)
		if (strcmp(variants[i].name, name) == 0)
			return &variants[i];
	return NULL;
}

bool qkd_ec_name_valid(const char *name)
{
	return name != NULL && cas_variant_find(name) != NULL;
}

const char *const *qkd_ec_names(void)
{
	return names;
}

const char *qkd_ec_describe(const char *name)
{
	const struct cas_variant *v = name ? cas_variant_find(name) : NULL;

	return v ? v->desc : NULL;
}

/* --- frame id map: linear probing, backward-shift deletion --- */

void cas_idmap_init(struct cas_idmap *m)
{
	memset(m, 0, sizeof *m);
}

void cas_idmap_cleanup(struct cas_idmap *m)
{
	free(m->ids);
	free(m->slots);
	free(m->used);
	cas_idmap_init(m);
}

static size_t idhash(uint64_t id, size_t cap)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)id & (cap - 1);
}

long cas_idmap_get(const struct cas_idmap *m, uint64_t id)
{
	if (m->cap == 0)
		return -1;
	for (size_t i = idhash(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (!m->used[i])
			return -1;
		if (m->ids[i] == id)
			return (long)m->slots[i];
	}
}

static int idmap_grow(struct cas_idmap *m)
{
	struct cas_idmap nm;
	size_t cap = m->cap ? m->cap * 2 : 16;
	int rc = QKD_OK;

	cas_idmap_init(&nm);
	nm.ids = calloc(cap, sizeof *nm.ids);
	nm.slots = calloc(cap, sizeof *nm.slots);
	nm.used = calloc(cap, 1);
	nm.cap = cap;
	if (nm.ids == NULL || nm.slots == NULL || nm.used == NULL) {
		cas_idmap_cleanup(&nm);
		return QKD_ERR_NOMEM;
	}
	for (size_t i = 0; i < m->cap && rc == QKD_OK; i++)
		if (m->used[i])
			rc = cas_idmap_put(&nm, m->ids[i], m->slots[i]);
	cas_idmap_cleanup(m);
	*m = nm;
	return rc;
}

int cas_idmap_put(struct cas_idmap *m, uint64_t id, uint32_t slot)
{
	size_t i;

	if (m->cap > 0) {
		for (i = idhash(id, m->cap); m->used[i]; i = (i + 1) & (m->cap - 1))
			if (m->ids[i] == id) {
				m->slots[i] = slot;	/* re-point: never allocates */
				return QKD_OK;
			}
	}
	if (4 * (m->count + 1) > 3 * m->cap) {
		int rc = idmap_grow(m);

		if (rc != QKD_OK)
			return rc;
	}
	for (i = idhash(id, m->cap); m->used[i]; i = (i + 1) & (m->cap - 1))
		;
	m->used[i] = 1;
	m->ids[i] = id;
	m->slots[i] = slot;
	m->count++;
	return QKD_OK;
}

void cas_idmap_del(struct cas_idmap *m, uint64_t id)
{
	size_t mask = m->cap - 1, i, j;

	if (m->cap == 0)
		return;
	for (i = idhash(id, m->cap); m->used[i]; i = (i + 1) & mask)
		if (m->ids[i] == id)
			break;
	if (!m->used[i])
		return;
	/* Shift later members of the probe run back into the hole. */
	for (j = (i + 1) & mask; m->used[j]; j = (j + 1) & mask) {
		size_t home = idhash(m->ids[j], m->cap);

		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->ids[i] = m->ids[j];
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->used[i] = 0;
	m->count--;
}

int cas_vec_grow(struct cas_vec *a)
{
	size_t cap = a->cap ? a->cap * 2 : 16;
	uint64_t *nv = malloc(cap * sizeof *nv);

	if (nv == NULL)
		return QKD_ERR_NOMEM;
	if (a->n > 0)
		memcpy(nv, a->v, a->n * sizeof *nv);
	qkd_free_secret(a->v, a->cap * sizeof *a->v);
	a->v = nv;
	a->cap = cap;
	return QKD_OK;
}

void cas_vec_free(struct cas_vec *a)
{
	/* Scratch vectors hold error positions: wiped like everything else. */
	qkd_free_secret(a->v, a->cap * sizeof *a->v);
	a->v = NULL;
	a->n = a->cap = 0;
}
