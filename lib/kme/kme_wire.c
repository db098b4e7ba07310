/* kme_wire.c - the key manager's records and verdicts on the wire
 * (kme_wire.h), with the bounded reader and writer of qkd/wire.h.
 *
 * Wire format (qkd/wire.h):
 *   records   varint n (<= NODE_KME_BATCH_MAX), then n times:
 *             key_id[16], u8 len + master, u8 len + slave (SAE IDs:
 *             1 .. 64 bytes of [A-Za-z0-9._~-]), varint nbits,
 *             varint nsegs (1 .. QKD_KME_KEY_SEGS_MAX), nsegs times
 *             varint block id, varint offset, varint nbits
 *   verdicts  varint n (<= NODE_KME_BATCH_MAX), then n times:
 *             key_id[16], u8 verdict (enum qkd_kme_verdict)
 *   withdrawals varint n (<= NODE_KME_BATCH_MAX), then n times: key_id[16],
 *             varint nsegs (0 .. QKD_KME_KEY_SEGS_MAX), nsegs segments
 *   wds       varint n (<= NODE_KME_BATCH_MAX), then n times:
 *             key_id[16], u8 (enum qkd_kme_withdraw_verdict)
 *   blocks    varint n (<= NODE_KME_BATCH_MAX), n varint block ids:
 *             blocks quarantined at the sender
 */
#include <string.h>

#include "kme_wire.h"

#include "qkd/error.h"
#include "qkd/etsi014.h"

static void put_id(struct qkd_wbuf *w, const char *id)
{
	size_t n = strlen(id);

	qkd_put_u8(w, (uint8_t)n);
	qkd_put_bytes(w, id, n);
}

/* An SAE ID: 1 .. 64 bytes of the ID alphabet (qkd_etsi014_id_valid), so
 * no NUL or other byte that would change its meaning when printed. */
static void get_id(struct qkd_rbuf *r, char out[QKD_KME_SAE_ID_MAX + 1])
{
	size_t n = qkd_get_u8(r);

	if (n == 0 || n > QKD_KME_SAE_ID_MAX)
		qkd_rbuf_fail(r, QKD_ERR_PROTO);
	qkd_get_copy(r, out, qkd_rbuf_ok(r) ? n : 0);
	out[qkd_rbuf_ok(r) ? n : 0] = '\0';
	if (qkd_rbuf_ok(r) && (strlen(out) != n || !qkd_etsi014_id_valid(out))) {
		qkd_rbuf_fail(r, QKD_ERR_PROTO);
		out[0] = '\0';
	}
}

/* A key's segments: varint nsegs, then (block id, offset, nbits) each. */
static void put_segs(struct qkd_wbuf *w, const struct qkd_kme_rec *r)
{
	qkd_put_varint(w, r->nsegs);
	for (size_t j = 0; j < r->nsegs; j++) {
		qkd_put_varint(w, r->segs[j].id);
		qkd_put_varint(w, r->segs[j].offset);
		qkd_put_varint(w, r->segs[j].nbits);
	}
}

static void get_segs(struct qkd_rbuf *r, struct qkd_kme_rec *k)
{
	k->nsegs = (size_t)qkd_get_count(r, QKD_KME_KEY_SEGS_MAX);
	for (size_t j = 0; j < k->nsegs && qkd_rbuf_ok(r); j++) {
		k->segs[j].id = qkd_get_varint(r);
		k->segs[j].offset = qkd_get_varint(r);
		k->segs[j].nbits = qkd_get_varint(r);
	}
}

void node_kme_put_recs(struct qkd_wbuf *w, const struct qkd_kme_rec *recs, size_t n)
{
	qkd_put_varint(w, n);
	for (size_t i = 0; i < n; i++) {
		const struct qkd_kme_rec *r = &recs[i];

		qkd_put_bytes(w, r->key_id, sizeof r->key_id);
		put_id(w, r->master);
		put_id(w, r->slave);
		qkd_put_varint(w, r->nbits);
		put_segs(w, r);
	}
}

size_t node_kme_get_recs(struct qkd_rbuf *r, struct qkd_kme_rec *recs)
{
	size_t n = (size_t)qkd_get_count(r, NODE_KME_BATCH_MAX);

	for (size_t i = 0; i < n && qkd_rbuf_ok(r); i++) {
		struct qkd_kme_rec *k = &recs[i];

		memset(k, 0, sizeof *k);
		qkd_get_copy(r, k->key_id, sizeof k->key_id);
		get_id(r, k->master);
		get_id(r, k->slave);
		k->nbits = (uint32_t)qkd_get_count(r, QKD_KME_KEY_BITS_MAX);
		get_segs(r, k);
		if (k->nsegs == 0)
			qkd_rbuf_fail(r, QKD_ERR_PROTO);
	}
	return qkd_rbuf_ok(r) ? n : 0;
}

void node_kme_put_verdicts(struct qkd_wbuf *w, const struct node_kme_verdict *v, size_t n)
{
	qkd_put_varint(w, n);
	for (size_t i = 0; i < n; i++) {
		qkd_put_bytes(w, v[i].key_id, sizeof v[i].key_id);
		qkd_put_u8(w, (uint8_t)v[i].v);
	}
}

size_t node_kme_get_verdicts(struct qkd_rbuf *r, struct node_kme_verdict *v)
{
	size_t n = (size_t)qkd_get_count(r, NODE_KME_BATCH_MAX);

	for (size_t i = 0; i < n && qkd_rbuf_ok(r); i++) {
		uint8_t x;

		qkd_get_copy(r, v[i].key_id, sizeof v[i].key_id);
		x = qkd_get_u8(r);
		if (x > QKD_KME_LATER)
			qkd_rbuf_fail(r, QKD_ERR_PROTO);
		v[i].v = (enum qkd_kme_verdict)x;
	}
	return qkd_rbuf_ok(r) ? n : 0;
}


void node_kme_put_withdrawals(struct qkd_wbuf *w, const struct qkd_kme_rec *recs, size_t n)
{
	qkd_put_varint(w, n);
	for (size_t i = 0; i < n; i++) {
		qkd_put_bytes(w, recs[i].key_id, 16);
		put_segs(w, &recs[i]);
	}
}

size_t node_kme_get_withdrawals(struct qkd_rbuf *r, struct qkd_kme_rec *out)
{
	size_t n = (size_t)qkd_get_count(r, NODE_KME_BATCH_MAX);

	for (size_t i = 0; i < n && qkd_rbuf_ok(r); i++) {
		struct qkd_kme_rec *k = &out[i];

		memset(k, 0, sizeof *k);
		qkd_get_copy(r, k->key_id, sizeof k->key_id);
		get_segs(r, k);
	}
	return qkd_rbuf_ok(r) ? n : 0;
}

void node_kme_put_wds(struct qkd_wbuf *w, const struct node_kme_wd *v, size_t n)
{
	qkd_put_varint(w, n);
	for (size_t i = 0; i < n; i++) {
		qkd_put_bytes(w, v[i].key_id, sizeof v[i].key_id);
		qkd_put_u8(w, (uint8_t)v[i].v);
	}
}

size_t node_kme_get_wds(struct qkd_rbuf *r, struct node_kme_wd *v)
{
	size_t n = (size_t)qkd_get_count(r, NODE_KME_BATCH_MAX);

	for (size_t i = 0; i < n && qkd_rbuf_ok(r); i++) {
		uint8_t x;

		qkd_get_copy(r, v[i].key_id, sizeof v[i].key_id);
		x = qkd_get_u8(r);
		if (x > QKD_KME_WD_DELIVERED)
			qkd_rbuf_fail(r, QKD_ERR_PROTO);
		v[i].v = (enum qkd_kme_withdraw_verdict)x;
	}
	return qkd_rbuf_ok(r) ? n : 0;
}

void node_kme_put_blocks(struct qkd_wbuf *w, const uint64_t *ids, size_t n)
{
	qkd_put_varint(w, n);
	for (size_t i = 0; i < n; i++)
		qkd_put_varint(w, ids[i]);
}

size_t node_kme_get_blocks(struct qkd_rbuf *r, uint64_t *out)
{
	size_t n = (size_t)qkd_get_count(r, NODE_KME_BATCH_MAX);

	for (size_t i = 0; i < n && qkd_rbuf_ok(r); i++) {
		out[i] = qkd_get_varint(r);
		if (out[i] > QKD_STORE_ID_MAX)
			qkd_rbuf_fail(r, QKD_ERR_PROTO);
	}
	return qkd_rbuf_ok(r) ? n : 0;
}
