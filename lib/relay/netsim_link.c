/* netsim_link.c - a simulated link's key pool and its pads (netsim_int.h).
 *
 * The pad bits of a segment are a ChaCha20 keystream of the link's own key
 * at the segment's bit offset, nonce the half: both ends compute them
 * from the coordinates alone, as two QKD stores hold the same bits, so
 * the end-to-end keys the agents relay are checked for real. The receiver
 * keeps which segments of the sender's half it has used and refuses a
 * segment used before, or one beyond what the sender has taken. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/secret.h"
#include "netsim_int.h"

#define NS_PAD_BYTES_MAX (QKD_RELAY_KEY_BITS_MAX / 8)

void ns_link_cleanup(struct ns_link *l)
{
	for (unsigned h = 0; h < 2; h++)
		free(l->used[h].r);
	qkd_wipe(l->key, sizeof l->key);
}

uint64_t ns_link_available(const struct ns_link *l, unsigned half)
{
	uint64_t made = (uint64_t)l->made & ~(uint64_t)7;	/* whole bytes */

	return made > l->next[half] ? made - l->next[half] : 0;
}

/* The pad bits of [offset, offset + nbits) of half h; offset and nbits
 * multiples of 8. */
static void ns_pad_bits(const struct ns_link *l, unsigned half, uint64_t offset, uint32_t nbits,
			uint8_t *pad)
{
	static const uint8_t zero[NS_PAD_BYTES_MAX + 64];
	uint8_t buf[NS_PAD_BYTES_MAX + 64], nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
	uint64_t byte = offset / 8;
	size_t skip = (size_t)(byte % 64), n = nbits / 8;

	nonce[0] = (uint8_t)half;
	crypto_stream_chacha20_xor_ic(buf, zero, skip + n, nonce, byte / 64, l->key);
	memcpy(pad, buf + skip, n);
	qkd_wipe(buf, skip + n);
}

int ns_link_take(struct ns_link *l, unsigned half, uint32_t nbits, uint8_t *pad,
		 struct qkd_store_seg *seg, const char **why)
{
	if (nbits == 0 || nbits % 8 != 0 || nbits > QKD_RELAY_KEY_BITS_MAX) {
		*why = "pad length not a multiple of 8 up to the key maximum";
		return QKD_ERR_INVAL;
	}
	if (ns_link_available(l, half) < nbits) {
		*why = "the link holds too little key";
		return QKD_ERR_RANGE;
	}
	seg->id = half;
	seg->offset = l->next[half];
	seg->nbits = nbits;
	ns_pad_bits(l, half, seg->offset, nbits, pad);
	l->next[half] += nbits;
	return QKD_OK;
}

/* Index of the first used range ending after lo. */
static size_t ns_used_find(const struct ns_used *u, uint64_t lo)
{
	size_t a = 0, b = u->n;

	while (a < b) {
		size_t m = a + (b - a) / 2;

		if (u->r[m][1] <= lo)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

static bool ns_used_free(const struct ns_used *u, uint64_t lo, uint64_t hi)
{
	size_t i = ns_used_find(u, lo);

	return i == u->n || u->r[i][0] >= hi;
}

/* Mark [lo, hi) used (free, checked): merge with the neighbours. */
static int ns_used_add(struct ns_used *u, uint64_t lo, uint64_t hi)
{
	size_t i = ns_used_find(u, lo);

	if (i > 0 && u->r[i - 1][1] == lo) {
		u->r[i - 1][1] = hi;
		if (i < u->n && u->r[i][0] == hi) {
			u->r[i - 1][1] = u->r[i][1];
			memmove(&u->r[i], &u->r[i + 1], (u->n - i - 1) * sizeof u->r[0]);
			u->n--;
		}
		return QKD_OK;
	}
	if (i < u->n && u->r[i][0] == hi) {
		u->r[i][0] = lo;
		return QKD_OK;
	}
	if (u->n == u->cap) {
		size_t cap = u->cap ? 2 * u->cap : 8;
		uint64_t (*r)[2] = realloc(u->r, cap * sizeof *r);

		if (r == NULL)
			return QKD_ERR_NOMEM;
		u->r = r;
		u->cap = cap;
	}
	memmove(&u->r[i + 1], &u->r[i], (u->n - i) * sizeof u->r[0]);
	u->r[i][0] = lo;
	u->r[i][1] = hi;
	u->n++;
	return QKD_OK;
}

static int ns_segs_check(const struct ns_link *l, unsigned half, const struct qkd_store_seg *segs,
			 size_t n, uint32_t nbits, const char **why)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++) {
		const struct qkd_store_seg *g = &segs[i];

		*why = g->id != half ? "segment of the wrong half" :
		       g->nbits == 0 || g->nbits % 8 || g->offset % 8 ? "segment not whole bytes" :
		       g->offset > l->next[half] || g->nbits > l->next[half] - g->offset ?
		       "segment never taken by the sender" :
		       !ns_used_free(&l->used[half], g->offset, g->offset + g->nbits) ?
		       "segment already used" : NULL;
		for (size_t k = 0; *why == NULL && k < i; k++)
			if (segs[k].offset < g->offset + g->nbits &&
			    g->offset < segs[k].offset + segs[k].nbits)
				*why = "segment already used";
		if (*why != NULL)
			return QKD_ERR_INVAL;
		sum += g->nbits;
	}
	*why = sum != nbits ? "segments do not sum to the pad's length" : NULL;
	return *why == NULL ? QKD_OK : QKD_ERR_INVAL;
}

int ns_link_use(struct ns_link *l, unsigned half, const struct qkd_store_seg *segs, size_t n,
		uint8_t *pad, uint32_t nbits, const char **why)
{
	size_t pos = 0;
	int rc;

	if (n == 0 || n > QKD_RELAY_PAD_SEGS_MAX || nbits > QKD_RELAY_KEY_BITS_MAX) {
		*why = "bad segment count or pad length";
		return QKD_ERR_INVAL;
	}
	rc = ns_segs_check(l, half, segs, n, nbits, why);
	for (size_t i = 0; rc == QKD_OK && i < n; i++) {
		rc = ns_used_add(&l->used[half], segs[i].offset, segs[i].offset + segs[i].nbits);
		if (rc == QKD_OK)
			ns_pad_bits(l, half, segs[i].offset, (uint32_t)segs[i].nbits, pad + pos);
		pos += segs[i].nbits / 8;
	}
	return rc;
}
