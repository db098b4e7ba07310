#include "qkd/sift.h"

#include <stdlib.h>

#include "qkd/error.h"
#include "qkd/secret.h"

#define GAP_ESCAPE 0xffffu	/* a u16 gap of this value: a varint follows */

void qkd_sift_report_cleanup(struct qkd_sift_report *r)
{
	if (r == NULL)
		return;
	free(r->slot);
	r->slot = NULL;
	qkd_bits_cleanup(&r->basis);
	r->n = 0;
}

void qkd_sift_report_write(struct qkd_wbuf *w, uint64_t first_slot, uint64_t slots,
			   const uint64_t *slot, const struct qkd_bits *basis)
{
	uint64_t next = first_slot;

	uint8_t *o;

	qkd_put_varint(w, first_slot);
	qkd_put_varint(w, slots);
	qkd_put_varint(w, basis->n);
	/* Reserve the worst case once, then encode the gaps in place: a u16
	 * each (big-endian), or the escape 0xffff and a varint for a gap of
	 * 0xffff or more. Fixed width keeps both ends free of data-dependent
	 * branches; at 10 km a gap is ~160 slots. */
	if (basis->n > SIZE_MAX / 12 || qkd_wbuf_reserve(w, basis->n * 12) != QKD_OK)
		return;
	o = w->p + w->len;
	for (size_t i = 0; i < basis->n; i++) {
		uint64_t gap = slot[i] - next;

		if (gap < GAP_ESCAPE) {
			o[0] = (uint8_t)(gap >> 8);
			o[1] = (uint8_t)gap;
			o += 2;
		} else {
			*o++ = 0xff;
			*o++ = 0xff;
			while (gap >= 0x80) {
				*o++ = (uint8_t)(gap | 0x80);
				gap >>= 7;
			}
			*o++ = (uint8_t)gap;
		}
		next = slot[i] + 1;
	}
	w->len = (size_t)(o - w->p);
	qkd_put_bits(w, basis);
}

int qkd_sift_report_read(struct qkd_rbuf *rb, struct qkd_sift_report *r, size_t max_n)
{
	uint64_t next, end;
	int rc = QKD_ERR_PROTO;

	r->slot = NULL;
	r->basis.w = NULL;
	r->basis.n = 0;
	r->n = 0;
	r->first_slot = qkd_get_varint(rb);
	r->slots = qkd_get_varint(rb);
	r->n = (size_t)qkd_get_count(rb, max_n);
	if (!qkd_rbuf_ok(rb) || r->slots > UINT64_MAX - r->first_slot || r->n > r->slots)
		goto fail;
	/* Each gap takes at least two bytes, so n is also bounded by the message. */
	if (r->n > qkd_rbuf_left(rb) / 2)
		goto fail;
	r->slot = malloc((r->n ? r->n : 1) * sizeof *r->slot);
	if (r->slot == NULL) {
		rc = QKD_ERR_NOMEM;
		goto fail;
	}
	next = r->first_slot;
	end = r->first_slot + r->slots;
	for (size_t i = 0; i < r->n; i++) {
		uint64_t gap;

		if (rb->len - rb->off < 2)
			goto fail;
		gap = (uint64_t)rb->p[rb->off] << 8 | rb->p[rb->off + 1];
		rb->off += 2;
		if (gap == GAP_ESCAPE) {
			gap = qkd_get_varint(rb);
			if (!qkd_rbuf_ok(rb))
				goto fail;
		}
		if (gap >= end - next)
			goto fail;
		r->slot[i] = next + gap;
		next = r->slot[i] + 1;
	}
	if (qkd_get_bits(rb, &r->basis, r->n) != QKD_OK || r->basis.n != r->n)
		goto fail;
	return QKD_OK;
fail:
	qkd_sift_report_cleanup(r);
	return rc;
}

void qkd_sift_decide(const struct qkd_sift_report *r, const struct qkd_bits *alice_basis,
		     const struct qkd_bits *alice_valid, struct qkd_bits *keep)
{
	size_t nw = qkd_bits_words(r->n);

	/* Word-parallel: keep = valid AND NOT (alice_basis XOR bob_basis). */
	for (size_t i = 0; i < nw; i++)
		keep->w[i] = alice_valid->w[i] & ~(alice_basis->w[i] ^ r->basis.w[i]);
	qkd_bits_trim(keep);
}

#ifdef __BMI2__
#include <immintrin.h>
static inline uint64_t gather_bits(uint64_t v, uint64_t mask)
{
	return _pext_u64(v, mask);
}
#else
static inline uint64_t gather_bits(uint64_t v, uint64_t mask)
{
	uint64_t out = 0;

	for (unsigned i = 0; mask; mask &= mask - 1, i++)
		out |= ((v >> __builtin_ctzll(mask)) & 1) << i;
	return out;
}
#endif

int qkd_sift_append(struct qkd_bits *pool, size_t *used, const struct qkd_bits *values,
		    const struct qkd_bits *keep)
{
	size_t add = qkd_bits_weight(keep), pos = *used;
	int rc;

	if (add > pool->n - pos) {
		size_t want = pool->n * 2 > pos + add ? pool->n * 2 : pos + add;

		rc = qkd_bits_resize(pool, want < 4096 ? 4096 : want);
		if (rc != QKD_OK)
			return rc;
	}
	/* Gather the kept values of each word (PEXT where the CPU has BMI2) and
	 * append them as one run. */
	for (size_t wi = 0; wi < qkd_bits_words(keep->n); wi++) {
		uint64_t k = keep->w[wi], v = gather_bits(values->w[wi], k);
		size_t c = (size_t)__builtin_popcountll(k);
		struct qkd_bits run = {&v, c};

		if (c > 0)
			qkd_bits_copy_range(pool, pos, &run, 0, c);
		pos += c;
	}
	*used = pos;
	return QKD_OK;
}
