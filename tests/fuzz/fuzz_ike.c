/* libFuzzer target: the IKEv2 message parser (lib/vpn/ike_pld.c,
 * ike_pld_sa.c, qkd/ike_pld.h). The input is one IKE message.
 *
 * Checks besides not crashing, leaking or reading out of bounds:
 * - a refused input gives a reason and QKD_ERR_PROTO or QKD_ERR_RANGE;
 * - an accepted one has a header length equal to its size and at most
 *   QKD_IKE_MAX_PAYLOADS payloads, each body inside the input;
 * - every payload that its typed parser accepts is built again by
 *   ike_build.c, parsed again and found equal (reserved octets and unknown
 *   attributes aside, which the builder does not reproduce);
 * - the ciphertext of an SK payload (IV 8, ICV 16, as AES-GCM) is also
 *   parsed as an inner chain, as if the cipher were the identity, so the
 *   header-less chain parser sees fuzzed data too.
 * Seeds: tests/fuzz/corpus/ike/, written by build/tests/tools/ike_corpus.
 */
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/ike_pld.h"
#include "qkd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

static bool span_same(struct qkd_ike_span a, struct qkd_ike_span b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static bool sa_same(const struct qkd_ike_sa *a, const struct qkd_ike_sa *b)
{
	if (a->np != b->np)
		return false;
	for (size_t i = 0; i < a->np; i++) {
		const struct qkd_ike_proposal *p = &a->p[i], *q = &b->p[i];

		if (p->num != q->num || p->protocol != q->protocol || p->spi_len != q->spi_len ||
		    memcmp(p->spi, q->spi, p->spi_len) != 0 || p->nt != q->nt)
			return false;
		for (size_t j = 0; j < p->nt; j++)
			if (p->t[j].type != q->t[j].type || p->t[j].id != q->t[j].id ||
			    p->t[j].key_bits != q->t[j].key_bits)
				return false;
	}
	return true;
}

static bool ts_same(const struct qkd_ike_tss *a, const struct qkd_ike_tss *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->ts[i].type != b->ts[i].type || a->ts[i].ip_proto != b->ts[i].ip_proto ||
		    a->ts[i].start_port != b->ts[i].start_port ||
		    a->ts[i].end_port != b->ts[i].end_port ||
		    memcmp(a->ts[i].start, b->ts[i].start, 16) != 0 ||
		    memcmp(a->ts[i].end, b->ts[i].end, 16) != 0)
			return false;
	return true;
}

/* Build one payload with the builder, parse it back: the only payload of
 * the chain, of the same type. */
static const struct qkd_ike_pld *reparse(struct qkd_wbuf *w, struct qkd_ike_builder *b,
					 struct qkd_ike_msg *m)
{
	const char *why;

	check(qkd_ike_build_end(b) == 0);
	check(qkd_ike_chain_parse(b->first, w->p, w->len, m, &why) == 0);
	check(m->n == 1);
	return &m->pld[0];
}

/* Typed parse, and when it succeeds, build -> parse -> equal. */
static void check_typed(const struct qkd_ike_pld *pld)
{
	static struct qkd_ike_msg m2;
	static struct qkd_ike_sa sa, sa2;
	static struct qkd_ike_tss ts, ts2;
	struct qkd_ike_builder b;
	struct qkd_wbuf w;
	const char *why;

	qkd_wbuf_init(&w);
	qkd_ike_build_chain(&b, &w);
	switch (pld->type) {
	case QKD_IKE_PT_SA:
		if (qkd_ike_sa_parse(pld, &sa, &why) != 0)
			break;
		qkd_ike_add_sa(&b, &sa);
		check(qkd_ike_sa_parse(reparse(&w, &b, &m2), &sa2, &why) == 0 && sa_same(&sa, &sa2));
		break;
	case QKD_IKE_PT_TSI:
	case QKD_IKE_PT_TSR:
		if (qkd_ike_ts_parse(pld, &ts, &why) != 0)
			break;
		qkd_ike_add_ts(&b, pld->type, &ts);
		check(qkd_ike_ts_parse(reparse(&w, &b, &m2), &ts2, &why) == 0 && ts_same(&ts, &ts2));
		break;
	case QKD_IKE_PT_KE: {
		struct qkd_ike_ke a, c;

		if (qkd_ike_ke_parse(pld, &a, &why) != 0)
			break;
		qkd_ike_add_ke(&b, &a);
		check(qkd_ike_ke_parse(reparse(&w, &b, &m2), &c, &why) == 0 && a.group == c.group &&
		      span_same(a.data, c.data));
		break;
	}
	case QKD_IKE_PT_IDI:
	case QKD_IKE_PT_IDR: {
		struct qkd_ike_id a, c;

		if (qkd_ike_id_parse(pld, &a, &why) != 0)
			break;
		qkd_ike_add_id(&b, pld->type, &a);
		check(qkd_ike_id_parse(reparse(&w, &b, &m2), &c, &why) == 0 && a.type == c.type &&
		      span_same(a.data, c.data));
		break;
	}
	case QKD_IKE_PT_AUTH: {
		struct qkd_ike_auth a, c;

		if (qkd_ike_auth_parse(pld, &a, &why) != 0)
			break;
		qkd_ike_add_auth(&b, &a);
		check(qkd_ike_auth_parse(reparse(&w, &b, &m2), &c, &why) == 0 &&
		      a.method == c.method && span_same(a.data, c.data));
		break;
	}
	case QKD_IKE_PT_NONCE: {
		struct qkd_ike_span a, c;

		if (qkd_ike_nonce_parse(pld, &a, &why) != 0)
			break;
		qkd_ike_add_nonce(&b, a.p, a.len);
		check(qkd_ike_nonce_parse(reparse(&w, &b, &m2), &c, &why) == 0 && span_same(a, c));
		break;
	}
	case QKD_IKE_PT_NOTIFY: {
		struct qkd_ike_notify a, c;

		if (qkd_ike_notify_parse(pld, &a, &why) != 0)
			break;
		qkd_ike_add_notify(&b, &a);
		check(qkd_ike_notify_parse(reparse(&w, &b, &m2), &c, &why) == 0 &&
		      a.protocol == c.protocol && a.type == c.type && span_same(a.spi, c.spi) &&
		      span_same(a.data, c.data));
		break;
	}
	case QKD_IKE_PT_DELETE: {
		struct qkd_ike_delete a, c;

		if (qkd_ike_delete_parse(pld, &a, &why) != 0)
			break;
		qkd_ike_add_delete(&b, &a);
		check(qkd_ike_delete_parse(reparse(&w, &b, &m2), &c, &why) == 0 &&
		      a.protocol == c.protocol && a.spi_size == c.spi_size && a.nspi == c.nspi &&
		      span_same(a.spis, c.spis));
		break;
	}
	default:
		break;
	}
	qkd_wbuf_cleanup(&w);
}

static void check_msg(const struct qkd_ike_msg *m, const uint8_t *data, size_t size)
{
	check(m->n <= QKD_IKE_MAX_PAYLOADS);
	for (size_t i = 0; i < m->n; i++) {
		const struct qkd_ike_pld *p = &m->pld[i];

		check(p->body.len <= size &&
		      (p->body.len == 0 || (p->body.p >= data && p->body.p + p->body.len <= data + size)));
		check(p->type != QKD_IKE_PT_SK || i + 1 == m->n);
		check_typed(p);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct qkd_ike_msg m, inner;
	const struct qkd_ike_pld *sk;
	struct qkd_ike_sk f;
	const char *why = NULL;
	int rc;

	rc = qkd_ike_msg_parse(data, size, &m, &why);
	if (rc != 0) {
		check(why != NULL && (rc == QKD_ERR_PROTO || rc == QKD_ERR_RANGE));
		return 0;
	}
	check(m.hdr.length == size && size >= QKD_IKE_HDR_LEN && size <= QKD_IKE_MSG_MAX);
	check_msg(&m, data, size);
	sk = qkd_ike_msg_find(&m, QKD_IKE_PT_SK);
	if (sk == NULL || qkd_ike_sk_parse(sk, m.inner, 8, 16, &f, &why) != 0)
		return 0;
	check(f.iv.len == 8 && f.icv.len == 16 && f.ct.len + 24 == sk->body.len);
	rc = qkd_ike_chain_parse(f.inner, f.ct.p, f.ct.len, &inner, &why);
	if (rc == 0)
		check_msg(&inner, f.ct.p, f.ct.len);
	else
		check(why != NULL && (rc == QKD_ERR_PROTO || rc == QKD_ERR_RANGE));
	return 0;
}
