/* netsim_heap.c - the simulator's event queue: a binary min-heap ordered
 * by (time, scheduling sequence), so events at equal times run in the
 * order they were scheduled and a run is deterministic (netsim_int.h). */
#include <stdlib.h>

#include "qkd/error.h"
#include "netsim_int.h"

static bool ns_before(const struct ns_event *x, const struct ns_event *y)
{
	return x->t < y->t || (x->t == y->t && x->seq < y->seq);
}

void ns_heap_cleanup(struct ns_heap *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->e[i].body);
	free(h->e);
	h->e = NULL;
	h->n = h->cap = 0;
}

int ns_heap_push(struct ns_heap *h, struct ns_event *ev)
{
	size_t i;

	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 1024;
		struct ns_event *e = realloc(h->e, cap * sizeof *e);

		if (e == NULL)
			return QKD_ERR_NOMEM;
		h->e = e;
		h->cap = cap;
	}
	ev->seq = h->seq++;
	for (i = h->n++; i > 0 && ns_before(ev, &h->e[(i - 1) / 2]); i = (i - 1) / 2)
		h->e[i] = h->e[(i - 1) / 2];
	h->e[i] = *ev;
	return QKD_OK;
}

const struct ns_event *ns_heap_top(const struct ns_heap *h)
{
	return h->n ? &h->e[0] : NULL;
}

bool ns_heap_pop(struct ns_heap *h, struct ns_event *out)
{
	struct ns_event last;
	size_t i = 0;

	if (h->n == 0)
		return false;
	*out = h->e[0];
	last = h->e[--h->n];
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && ns_before(&h->e[c + 1], &h->e[c]))
			c++;
		if (!ns_before(&h->e[c], &last))
			break;
		h->e[i] = h->e[c];
		i = c;
	}
	if (h->n > 0)
		h->e[i] = last;
	return true;
}
