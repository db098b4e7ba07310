#include "qkd/wire.h"

#include <stdlib.h>
#include <string.h>

#include "qkd/bits.h"
#include "qkd/error.h"
#include "qkd/secret.h"

void qkd_wbuf_init(struct qkd_wbuf *w)
{
	w->p = NULL;
	w->len = w->cap = 0;
	w->err = 0;
	w->secret = false;
}

void qkd_wbuf_init_secret(struct qkd_wbuf *w)
{
	qkd_wbuf_init(w);
	w->secret = true;
}

void qkd_wbuf_cleanup(struct qkd_wbuf *w)
{
	bool secret;

	if (w == NULL)
		return;
	secret = w->secret;
	if (secret)
		qkd_free_secret(w->p, w->cap);
	else
		free(w->p);
	qkd_wbuf_init(w);
	w->secret = secret;
}

void qkd_wbuf_reset(struct qkd_wbuf *w)
{
	if (w->secret)
		qkd_wipe(w->p, w->len);
	w->len = 0;
	w->err = 0;
}

int qkd_wbuf_reserve(struct qkd_wbuf *w, size_t extra)
{
	size_t need, cap;
	uint8_t *np;

	if (w->err)
		return w->err;
	if (extra > SIZE_MAX - w->len) {
		w->err = QKD_ERR_RANGE;
		return w->err;
	}
	need = w->len + extra;
	if (need <= w->cap)
		return QKD_OK;
	cap = w->cap ? w->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (!w->secret) {
		np = realloc(w->p, cap);
		if (np == NULL) {
			w->err = QKD_ERR_NOMEM;
			return w->err;
		}
		w->p = np;
		w->cap = cap;
		return QKD_OK;
	}
	/* Grow a secret buffer by copy, so the old one can be wiped. */
	np = malloc(cap);
	if (np == NULL) {
		w->err = QKD_ERR_NOMEM;
		return w->err;
	}
	if (w->len > 0)
		memcpy(np, w->p, w->len);
	qkd_free_secret(w->p, w->cap);
	w->p = np;
	w->cap = cap;
	return QKD_OK;
}

void qkd_put_bytes(struct qkd_wbuf *w, const void *p, size_t n)
{
	if (n == 0 || qkd_wbuf_reserve(w, n) != QKD_OK)
		return;
	memcpy(w->p + w->len, p, n);
	w->len += n;
}

static void put_be(struct qkd_wbuf *w, uint64_t v, unsigned nbytes)
{
	uint8_t b[8];

	for (unsigned i = 0; i < nbytes; i++)
		b[i] = (uint8_t)(v >> (8 * (nbytes - 1 - i)));
	qkd_put_bytes(w, b, nbytes);
}

void qkd_put_u16(struct qkd_wbuf *w, uint16_t v) { put_be(w, v, 2); }
void qkd_put_u32(struct qkd_wbuf *w, uint32_t v) { put_be(w, v, 4); }
void qkd_put_u64(struct qkd_wbuf *w, uint64_t v) { put_be(w, v, 8); }

void qkd_put_double(struct qkd_wbuf *w, double v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof u);
	put_be(w, u, 8);
}

void qkd_put_varint_long(struct qkd_wbuf *w, uint64_t v)
{
	uint8_t *o;

	if (qkd_wbuf_reserve(w, 10) != QKD_OK)
		return;
	o = w->p + w->len;
	while (v >= 0x80) {
		*o++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*o++ = (uint8_t)v;
	w->len = (size_t)(o - w->p);
}

void qkd_put_bits(struct qkd_wbuf *w, const struct qkd_bits *b)
{
	size_t nb = (b->n + 7) / 8;

	qkd_put_varint(w, b->n);
	if (nb == 0 || qkd_wbuf_reserve(w, nb) != QKD_OK)
		return;
	qkd_bits_to_bytes(b, w->p + w->len);
	w->len += nb;
}

void qkd_rbuf_init(struct qkd_rbuf *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = 0;
}

void qkd_rbuf_fail(struct qkd_rbuf *r, int err)
{
	if (r->err == 0)
		r->err = err;
}

bool qkd_rbuf_done(const struct qkd_rbuf *r)
{
	return r->err == 0 && r->off == r->len;
}

const uint8_t *qkd_get_bytes(struct qkd_rbuf *r, size_t n)
{
	const uint8_t *p;

	if (r->err)
		return NULL;
	if (n > r->len - r->off) {
		r->err = QKD_ERR_PROTO;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

void qkd_get_copy(struct qkd_rbuf *r, void *out, size_t n)
{
	const uint8_t *p = qkd_get_bytes(r, n);

	if (p != NULL)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

static uint64_t get_be(struct qkd_rbuf *r, unsigned nbytes)
{
	const uint8_t *p = qkd_get_bytes(r, nbytes);
	uint64_t v = 0;

	if (p == NULL)
		return 0;
	for (unsigned i = 0; i < nbytes; i++)
		v = (v << 8) | p[i];
	return v;
}

uint16_t qkd_get_u16(struct qkd_rbuf *r) { return (uint16_t)get_be(r, 2); }
uint32_t qkd_get_u32(struct qkd_rbuf *r) { return (uint32_t)get_be(r, 4); }
uint64_t qkd_get_u64(struct qkd_rbuf *r) { return get_be(r, 8); }

double qkd_get_double(struct qkd_rbuf *r)
{
	uint64_t u = get_be(r, 8);
	double v;

	memcpy(&v, &u, sizeof v);
	return v;
}

uint64_t qkd_get_varint_long(struct qkd_rbuf *r)
{
	uint64_t v = 0;

	if (r->err)
		return 0;
	for (unsigned shift = 0; shift < 70; shift += 7) {
		uint8_t b;

		if (r->off == r->len) {
			r->err = QKD_ERR_PROTO;
			return 0;
		}
		b = r->p[r->off++];
		/* The tenth byte may only carry the top bit of a 64-bit value. */
		if (shift == 63 && (b & 0x7e)) {
			r->err = QKD_ERR_PROTO;
			return 0;
		}
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	r->err = QKD_ERR_PROTO;
	return 0;
}

int qkd_get_bits(struct qkd_rbuf *r, struct qkd_bits *dst, size_t max)
{
	uint64_t n = qkd_get_count(r, max);
	const uint8_t *p;
	int rc;

	dst->w = NULL;
	dst->n = 0;
	if (r->err)
		return r->err;
	p = qkd_get_bytes(r, (size_t)((n + 7) / 8));
	if (p == NULL)
		return r->err;
	rc = qkd_bits_init(dst, (size_t)n);
	if (rc != QKD_OK) {
		qkd_rbuf_fail(r, rc);
		return rc;
	}
	qkd_bits_from_bytes(dst, p);
	return QKD_OK;
}
