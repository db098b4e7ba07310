/* ike_build.c - serialize IKEv2 messages (RFC 7296 section 3) into a
 * qkd_wbuf: the header, the generic payload chain and the typed payloads
 * that ike_pld.c / ike_pld_sa.c parse. Lengths and Next Payload fields are
 * written as placeholders and patched once the payload is complete, so a
 * caller cannot get them wrong. Errors are sticky in the builder.
 */
#include "qkd/ike_pld.h"

#include <string.h>

#include "qkd/error.h"

#define HDR_NEXT_AT 16u	/* offset of Next Payload in the header */
#define HDR_LEN_AT 24u

static void fail(struct qkd_ike_builder *b, int err)
{
	if (b->err == 0)
		b->err = err;
}

/* Patch bytes already written (our own output, inside w->len). */
static void patch(struct qkd_ike_builder *b, size_t at, const uint8_t *v, size_t n)
{
	if (b->err == 0 && b->w->err == 0 && at <= b->w->len && n <= b->w->len - at)
		memcpy(b->w->p + at, v, n);
}

static void patch_u8(struct qkd_ike_builder *b, size_t at, uint8_t v)
{
	patch(b, at, &v, 1);
}

static void patch_u16(struct qkd_ike_builder *b, size_t at, size_t v)
{
	uint8_t be[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	if (v > 0xffff)
		fail(b, QKD_ERR_RANGE);
	patch(b, at, be, 2);
}

void qkd_ike_build_msg(struct qkd_ike_builder *b, struct qkd_wbuf *w, const struct qkd_ike_hdr *h)
{
	memset(b, 0, sizeof *b);
	b->w = w;
	b->start = w->len;
	b->has_hdr = true;
	b->next_at = b->start + HDR_NEXT_AT;
	qkd_put_bytes(w, h->spi_i, 8);
	qkd_put_bytes(w, h->spi_r, 8);
	qkd_put_u8(w, QKD_IKE_PT_NONE);
	qkd_put_u8(w, 0x20);	/* version 2.0 */
	qkd_put_u8(w, h->exchange);
	qkd_put_u8(w, h->flags);
	qkd_put_u32(w, h->msg_id);
	qkd_put_u32(w, 0);	/* patched by qkd_ike_build_end */
}

void qkd_ike_build_chain(struct qkd_ike_builder *b, struct qkd_wbuf *w)
{
	memset(b, 0, sizeof *b);
	b->w = w;
	b->start = w->len;
}

int qkd_ike_build_end(struct qkd_ike_builder *b)
{
	size_t total = b->w->len - b->start;
	uint8_t be[4] = { (uint8_t)(total >> 24), (uint8_t)(total >> 16), (uint8_t)(total >> 8),
			  (uint8_t)total };

	if (b->err == 0 && b->w->err != 0)
		b->err = b->w->err;
	if (b->n > QKD_IKE_MAX_PAYLOADS || total > QKD_IKE_MSG_MAX)
		fail(b, QKD_ERR_RANGE);
	if (b->has_hdr)
		patch(b, b->start + HDR_LEN_AT, be, 4);
	return b->err;
}

/* Open a payload: link it from the previous Next Payload field, write its
 * generic header with a placeholder length. Returns its offset. */
static size_t open_pld(struct qkd_ike_builder *b, uint8_t type, bool critical)
{
	size_t off = b->w->len;

	if (b->sealed)
		fail(b, QKD_ERR_INVAL);	/* nothing may follow SK */
	if (b->n == 0 && !b->has_hdr)
		b->first = type;
	else
		patch_u8(b, b->next_at, type);
	b->next_at = off;
	b->n++;
	qkd_put_u8(b->w, QKD_IKE_PT_NONE);
	qkd_put_u8(b->w, critical ? 0x80 : 0);
	qkd_put_u16(b->w, 0);
	return off;
}

static void close_pld(struct qkd_ike_builder *b, size_t off)
{
	patch_u16(b, off + 2, b->w->len - off);
}

void qkd_ike_add_raw(struct qkd_ike_builder *b, uint8_t type, bool critical, const void *body,
		     size_t len)
{
	size_t off = open_pld(b, type, critical);

	qkd_put_bytes(b->w, body, len);
	close_pld(b, off);
}

static void put_transform(struct qkd_ike_builder *b, const struct qkd_ike_transform *t, bool last)
{
	qkd_put_u8(b->w, last ? 0 : 3);
	qkd_put_u8(b->w, 0);
	qkd_put_u16(b->w, t->key_bits != 0 ? 12 : 8);
	qkd_put_u8(b->w, t->type);
	qkd_put_u8(b->w, 0);
	qkd_put_u16(b->w, t->id);
	if (t->key_bits != 0) {
		qkd_put_u16(b->w, 0x8000 | QKD_IKE_ATTR_KEY_LENGTH);
		qkd_put_u16(b->w, t->key_bits);
	}
}

static void put_proposal(struct qkd_ike_builder *b, const struct qkd_ike_proposal *p, bool last)
{
	size_t off = b->w->len;

	if (p->nt == 0 || p->nt > QKD_IKE_MAX_TRANSFORMS || p->spi_len > QKD_IKE_SPI_MAX) {
		fail(b, QKD_ERR_INVAL);
		return;
	}
	qkd_put_u8(b->w, last ? 0 : 2);
	qkd_put_u8(b->w, 0);
	qkd_put_u16(b->w, 0);
	qkd_put_u8(b->w, p->num);
	qkd_put_u8(b->w, p->protocol);
	qkd_put_u8(b->w, p->spi_len);
	qkd_put_u8(b->w, (uint8_t)p->nt);
	qkd_put_bytes(b->w, p->spi, p->spi_len);
	for (size_t i = 0; i < p->nt; i++)
		put_transform(b, &p->t[i], i + 1 == p->nt);
	patch_u16(b, off + 2, b->w->len - off);
}

void qkd_ike_add_sa(struct qkd_ike_builder *b, const struct qkd_ike_sa *sa)
{
	size_t off = open_pld(b, QKD_IKE_PT_SA, false);

	if (sa->np == 0 || sa->np > QKD_IKE_MAX_PROPOSALS)
		fail(b, QKD_ERR_INVAL);
	for (size_t i = 0; i < sa->np && b->err == 0; i++)
		put_proposal(b, &sa->p[i], i + 1 == sa->np);
	close_pld(b, off);
}

void qkd_ike_add_ke(struct qkd_ike_builder *b, const struct qkd_ike_ke *ke)
{
	size_t off = open_pld(b, QKD_IKE_PT_KE, false);

	qkd_put_u16(b->w, ke->group);
	qkd_put_u16(b->w, 0);
	qkd_put_bytes(b->w, ke->data.p, ke->data.len);
	close_pld(b, off);
}

static void put_typed_blob(struct qkd_ike_builder *b, uint8_t ptype, uint8_t type,
			   const struct qkd_ike_span *data)
{
	static const uint8_t zero[3];
	size_t off = open_pld(b, ptype, false);

	qkd_put_u8(b->w, type);
	qkd_put_bytes(b->w, zero, 3);
	qkd_put_bytes(b->w, data->p, data->len);
	close_pld(b, off);
}

void qkd_ike_add_id(struct qkd_ike_builder *b, uint8_t type, const struct qkd_ike_id *id)
{
	if (type != QKD_IKE_PT_IDI && type != QKD_IKE_PT_IDR)
		fail(b, QKD_ERR_INVAL);
	put_typed_blob(b, type, id->type, &id->data);
}

void qkd_ike_add_auth(struct qkd_ike_builder *b, const struct qkd_ike_auth *a)
{
	put_typed_blob(b, QKD_IKE_PT_AUTH, a->method, &a->data);
}

void qkd_ike_add_nonce(struct qkd_ike_builder *b, const void *nonce, size_t len)
{
	if (len < QKD_IKE_NONCE_MIN || len > QKD_IKE_NONCE_MAX)
		fail(b, QKD_ERR_INVAL);
	qkd_ike_add_raw(b, QKD_IKE_PT_NONCE, false, nonce, len);
}

void qkd_ike_add_notify(struct qkd_ike_builder *b, const struct qkd_ike_notify *n)
{
	size_t off = open_pld(b, QKD_IKE_PT_NOTIFY, false);

	if (n->spi.len != 0 && n->spi.len != 4 && n->spi.len != 8)
		fail(b, QKD_ERR_INVAL);
	qkd_put_u8(b->w, n->protocol);
	qkd_put_u8(b->w, (uint8_t)n->spi.len);
	qkd_put_u16(b->w, n->type);
	qkd_put_bytes(b->w, n->spi.p, n->spi.len);
	qkd_put_bytes(b->w, n->data.p, n->data.len);
	close_pld(b, off);
}

void qkd_ike_add_delete(struct qkd_ike_builder *b, const struct qkd_ike_delete *d)
{
	size_t off = open_pld(b, QKD_IKE_PT_DELETE, false);

	if ((size_t)d->nspi * d->spi_size != d->spis.len)
		fail(b, QKD_ERR_INVAL);
	qkd_put_u8(b->w, d->protocol);
	qkd_put_u8(b->w, d->spi_size);
	qkd_put_u16(b->w, d->nspi);
	qkd_put_bytes(b->w, d->spis.p, d->spis.len);
	close_pld(b, off);
}

void qkd_ike_add_ts(struct qkd_ike_builder *b, uint8_t type, const struct qkd_ike_tss *ts)
{
	static const uint8_t zero[3];
	size_t off = open_pld(b, type, false);

	if ((type != QKD_IKE_PT_TSI && type != QKD_IKE_PT_TSR) || ts->n == 0 ||
	    ts->n > QKD_IKE_MAX_SELECTORS)
		fail(b, QKD_ERR_INVAL);
	qkd_put_u8(b->w, (uint8_t)ts->n);
	qkd_put_bytes(b->w, zero, 3);
	for (size_t i = 0; i < ts->n && i < QKD_IKE_MAX_SELECTORS; i++) {
		const struct qkd_ike_ts *s = &ts->ts[i];
		size_t alen = s->type == QKD_IKE_TS_IPV6 ? 16 : 4;

		if (s->type != QKD_IKE_TS_IPV4 && s->type != QKD_IKE_TS_IPV6)
			fail(b, QKD_ERR_INVAL);
		qkd_put_u8(b->w, s->type);
		qkd_put_u8(b->w, s->ip_proto);
		qkd_put_u16(b->w, (uint16_t)(8 + 2 * alen));
		qkd_put_u16(b->w, s->start_port);
		qkd_put_u16(b->w, s->end_port);
		qkd_put_bytes(b->w, s->start, alen);
		qkd_put_bytes(b->w, s->end, alen);
	}
	close_pld(b, off);
}

void qkd_ike_add_sk(struct qkd_ike_builder *b, const struct qkd_ike_sk *sk)
{
	size_t off = open_pld(b, QKD_IKE_PT_SK, false);

	if (sk->ct.len == 0)
		fail(b, QKD_ERR_INVAL);
	patch_u8(b, off, sk->inner);	/* SK's Next Payload: the first inner one */
	qkd_put_bytes(b->w, sk->iv.p, sk->iv.len);
	qkd_put_bytes(b->w, sk->ct.p, sk->ct.len);
	qkd_put_bytes(b->w, sk->icv.p, sk->icv.len);
	close_pld(b, off);
	b->sealed = true;
}
