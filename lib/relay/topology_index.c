/* topology_index.c - an open-addressing hash of byte strings to indices,
 * for the topology parser's checks of repeated node ids, SAEs and links
 * (topology_int.h). Grows at half full; keys are copied. */
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "topology_int.h"

struct topo_slot {
	char *key;	/* NULL: empty */
	size_t len, value;
	uint64_t hash;
};

static uint64_t topo_hash(const char *k, size_t len)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)k[i];
		h *= 1099511628211ull;
	}
	return h;
}

void topo_index_init(struct topo_index *x)
{
	memset(x, 0, sizeof *x);
}

void topo_index_cleanup(struct topo_index *x)
{
	for (size_t i = 0; i < x->cap; i++)
		free(x->slot[i].key);
	free(x->slot);
	memset(x, 0, sizeof *x);
}

static size_t topo_probe(const struct topo_slot *s, size_t cap, uint64_t h, const char *k,
			 size_t len)
{
	size_t i = (size_t)h & (cap - 1);

	while (s[i].key != NULL &&
	       !(s[i].hash == h && s[i].len == len && memcmp(s[i].key, k, len) == 0))
		i = (i + 1) & (cap - 1);
	return i;
}

long topo_index_get(const struct topo_index *x, const char *key, size_t len)
{
	size_t i;

	if (x->cap == 0)
		return -1;
	i = topo_probe(x->slot, x->cap, topo_hash(key, len), key, len);
	return x->slot[i].key != NULL ? (long)x->slot[i].value : -1;
}

static int topo_grow(struct topo_index *x)
{
	size_t cap = x->cap ? 2 * x->cap : 64;
	struct topo_slot *s = calloc(cap, sizeof *s);

	if (s == NULL)
		return QKD_ERR_NOMEM;
	for (size_t i = 0; i < x->cap; i++)
		if (x->slot[i].key != NULL)
			s[topo_probe(s, cap, x->slot[i].hash, x->slot[i].key, x->slot[i].len)] =
				x->slot[i];
	free(x->slot);
	x->slot = s;
	x->cap = cap;
	return QKD_OK;
}

int topo_index_put(struct topo_index *x, const char *key, size_t len, size_t value)
{
	uint64_t h = topo_hash(key, len);
	struct topo_slot *s;
	int rc = QKD_OK;

	if (2 * (x->n + 1) > x->cap && (rc = topo_grow(x)) != QKD_OK)
		goto out;
	s = &x->slot[topo_probe(x->slot, x->cap, h, key, len)];
	s->key = malloc(len + 1);
	if (s->key == NULL) {
		rc = QKD_ERR_NOMEM;
		goto out;
	}
	memcpy(s->key, key, len);
	s->key[len] = '\0';
	s->len = len;
	s->value = value;
	s->hash = h;
	x->n++;
out:
	return rc;
}
