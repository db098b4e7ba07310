#include "qkd/bits.h"

#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/secret.h"

int qkd_bits_init(struct qkd_bits *b, size_t n)
{
	size_t nw = qkd_bits_words(n);

	b->w = NULL;
	b->n = 0;
	b->w = calloc(nw ? nw : 1, sizeof(uint64_t));
	if (b->w == NULL)
		return QKD_ERR_NOMEM;
	b->n = n;
	return QKD_OK;
}

void qkd_bits_cleanup(struct qkd_bits *b)
{
	if (b == NULL)
		return;
	qkd_free_secret(b->w, qkd_bits_words(b->n) * sizeof(uint64_t));
	b->w = NULL;
	b->n = 0;
}

int qkd_bits_copy(struct qkd_bits *dst, const struct qkd_bits *src)
{
	int rc = qkd_bits_init(dst, src->n);

	if (rc == QKD_OK && src->n > 0)
		memcpy(dst->w, src->w, qkd_bits_words(src->n) * sizeof(uint64_t));
	return rc;
}

int qkd_bits_resize(struct qkd_bits *b, size_t n)
{
	struct qkd_bits nb;
	size_t keep;
	int rc = qkd_bits_init(&nb, n);

	if (rc != QKD_OK)
		return rc;
	keep = qkd_bits_words(n < b->n ? n : b->n);
	if (keep > 0)
		memcpy(nb.w, b->w, keep * sizeof(uint64_t));
	qkd_bits_trim(&nb);
	qkd_bits_cleanup(b);
	*b = nb;
	return QKD_OK;
}

void qkd_bits_trim(struct qkd_bits *b)
{
	if (b->n & 63)
		b->w[b->n >> 6] &= ((uint64_t)1 << (b->n & 63)) - 1;
}

unsigned qkd_bits_parity(const struct qkd_bits *b, size_t start, size_t end)
{
	size_t ws = start >> 6, we = end >> 6;
	uint64_t lo = ~(uint64_t)0 << (start & 63);
	uint64_t acc;

	if (start >= end)
		return 0;
	if (ws == we)
		return (unsigned)__builtin_parityll(b->w[ws] & lo &
			(((uint64_t)1 << (end & 63)) - 1));
	acc = b->w[ws] & lo;
	for (size_t i = ws + 1; i < we; i++)
		acc ^= b->w[i];
	if (end & 63)
		acc ^= b->w[we] & (((uint64_t)1 << (end & 63)) - 1);
	return (unsigned)__builtin_parityll(acc);
}

size_t qkd_bits_weight(const struct qkd_bits *b)
{
	size_t s = 0, nw = qkd_bits_words(b->n);

	for (size_t i = 0; i < nw; i++)
		s += (size_t)__builtin_popcountll(b->w[i]);
	return s;
}

size_t qkd_bits_distance(const struct qkd_bits *a, const struct qkd_bits *b)
{
	size_t s = 0, nw = qkd_bits_words(a->n < b->n ? a->n : b->n);

	for (size_t i = 0; i < nw; i++)
		s += (size_t)__builtin_popcountll(a->w[i] ^ b->w[i]);
	return s;
}

bool qkd_bits_equal(const struct qkd_bits *a, const struct qkd_bits *b)
{
	if (a->n != b->n)
		return false;
	return qkd_ct_equal(a->w, b->w, qkd_bits_words(a->n) * sizeof(uint64_t));
}

void qkd_bits_to_bytes(const struct qkd_bits *b, uint8_t *out)
{
	size_t nb = (b->n + 7) / 8;

	for (size_t i = 0; i < nb; i++)
		out[i] = (uint8_t)(b->w[i >> 3] >> (8 * (i & 7)));
}

void qkd_bits_from_bytes(struct qkd_bits *b, const uint8_t *in)
{
	size_t nb = (b->n + 7) / 8;

	memset(b->w, 0, qkd_bits_words(b->n) * sizeof(uint64_t));
	for (size_t i = 0; i < nb; i++)
		b->w[i >> 3] |= (uint64_t)in[i] << (8 * (i & 7));
	qkd_bits_trim(b);
}

/* 64 bits of src starting at bit position pos (bits past the end read 0). */
static uint64_t load64(const struct qkd_bits *src, size_t pos)
{
	size_t wi = pos >> 6, sh = pos & 63, nw = qkd_bits_words(src->n);
	uint64_t v = src->w[wi] >> sh;

	if (sh && wi + 1 < nw)
		v |= src->w[wi + 1] << (64 - sh);
	return v;
}

void qkd_bits_copy_range(struct qkd_bits *dst, size_t dpos, const struct qkd_bits *src,
			 size_t spos, size_t n)
{
	/* Head: bring dpos to a word boundary. */
	while (n > 0 && (dpos & 63)) {
		size_t take = 64 - (dpos & 63);
		uint64_t v, m;

		if (take > n)
			take = n;
		m = (take == 64 ? ~(uint64_t)0 : ((uint64_t)1 << take) - 1) << (dpos & 63);
		v = load64(src, spos) << (dpos & 63);
		dst->w[dpos >> 6] = (dst->w[dpos >> 6] & ~m) | (v & m);
		dpos += take;
		spos += take;
		n -= take;
	}
	/* Body: whole destination words. */
	while (n >= 64) {
		dst->w[dpos >> 6] = load64(src, spos);
		dpos += 64;
		spos += 64;
		n -= 64;
	}
	if (n > 0) {
		uint64_t m = ((uint64_t)1 << n) - 1;

		dst->w[dpos >> 6] = (dst->w[dpos >> 6] & ~m) | (load64(src, spos) & m);
	}
}
