/* ike_sa_info.c - the INFORMATIONAL exchange (RFC 7296 sections 1.4,
 * 2.4, 3.11): Delete of Child SAs (the old pair after a rekey, after its
 * grace period) and of the IKE SA (close, or the peer's), and the empty
 * request that checks the peer is alive after dpd_s of silence. Each end
 * lists the SPI it receives on (section 3.11); the other finds the pair
 * by that SPI as its outbound one. Neighbours: ike_sa_child.c queues the
 * deletes, ike_sa_timer.c sends them. */
#include <string.h>

#include "ike_sa_int.h"
#include "qkd/error.h"

static void delete_pair_by_out(struct qkd_ike *ike, uint32_t spi_out, uint8_t *list, size_t *n)
{
	struct ike_child *c = ike_child_by_out(ike, spi_out);

	if (c == NULL)
		return;
	list[4 * *n] = (uint8_t)(c->spi_in >> 24);
	list[4 * *n + 1] = (uint8_t)(c->spi_in >> 16);
	list[4 * *n + 2] = (uint8_t)(c->spi_in >> 8);
	list[4 * *n + 3] = (uint8_t)c->spi_in;
	(*n)++;
	for (size_t i = 0; i < IKE_DELETES; i++)	/* our own delete of it is moot */
		if (ike->del[i].used && ike->del[i].spi_in == c->spi_in)
			memset(&ike->del[i], 0, sizeof ike->del[i]);
	ike->ops->child_delete(ike->arg, c->spi_in, c->spi_out);
	memset(c, 0, sizeof *c);
}

static int info_reply(struct qkd_ike *ike, struct ike_isa *s, uint32_t id, const uint8_t *spis,
		      size_t n)
{
	struct qkd_wbuf w;
	struct qkd_ike_builder b;
	struct qkd_ike_delete d = { QKD_IKE_PROTO_ESP, 4, (uint16_t)n, { spis, 4 * n } };
	int rc;

	qkd_wbuf_init(&w);
	qkd_ike_build_chain(&b, &w);
	if (n > 0)
		qkd_ike_add_delete(&b, &d);
	rc = qkd_ike_build_end(&b);
	if (rc == QKD_OK)
		rc = ike_send_response(ike, s, QKD_IKE_INFORMATIONAL, id, &w, b.first);
	qkd_wbuf_cleanup(&w);
	return rc;
}

int ike_info_request(struct qkd_ike *ike, struct ike_isa *s, uint32_t id,
		     const struct qkd_ike_msg *m, double now)
{
	uint8_t spis[4 * IKE_CHILDREN];
	size_t n = 0;
	bool del_ike = false;
	struct qkd_ike_delete d;
	const char *why;

	for (size_t i = 0; i < m->n; i++) {
		if (m->pld[i].type != QKD_IKE_PT_DELETE)
			continue;
		if (qkd_ike_delete_parse(&m->pld[i], &d, &why) != QKD_OK)
			continue;
		if (d.protocol == QKD_IKE_PROTO_IKE)
			del_ike = true;
		for (size_t k = 0; d.protocol == QKD_IKE_PROTO_ESP && k < d.nspi; k++) {
			const uint8_t *p = d.spis.p + 4 * k;

			if (n < IKE_CHILDREN)
				delete_pair_by_out(ike, (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
							    (uint32_t)p[2] << 8 | p[3], spis, &n);
		}
	}
	(void)info_reply(ike, s, id, spis, del_ike ? 0 : n);
	if (del_ike) {
		if (s == ike->sa)
			ike_teardown(ike, now, "deleted by the peer", ike->t->initiate && !ike->closing);
		else
			ike_isa_drop(ike, s);
	}
	return QKD_OK;
}

int ike_info_response(struct qkd_ike *ike, struct ike_isa *s, const struct ike_req *done,
		      const struct qkd_ike_msg *m, double now)
{
	(void)m;
	if (done->kind == X_DEL_CHILD && done->del_installed &&
	    ike_child_by_in(ike, done->del_in) != NULL) {
		ike->ops->child_delete(ike->arg, done->del_in, done->del_out);
		ike_child_forget(ike, done->del_in);
	} else if (done->kind == X_DEL_IKE) {
		if (s == ike->sa)
			ike_teardown(ike, now, "closed", false);
		else
			ike_isa_drop(ike, s);
	}
	return QKD_OK;
}

static void send_chain(struct qkd_ike *ike, struct ike_isa *s, enum ike_kind kind,
		       const struct qkd_ike_delete *d, double now)
{
	struct qkd_wbuf w;
	struct qkd_ike_builder b;

	qkd_wbuf_init(&w);
	qkd_ike_build_chain(&b, &w);
	if (d != NULL)
		qkd_ike_add_delete(&b, d);
	if (qkd_ike_build_end(&b) == QKD_OK)
		(void)ike_send_request(ike, s, QKD_IKE_INFORMATIONAL, kind, &w, b.first, now);
	qkd_wbuf_cleanup(&w);
}

void ike_info_send_delete_child(struct qkd_ike *ike, struct ike_del *dl, double now)
{
	struct ike_isa *s = ike->sa;
	uint8_t spi[4] = { (uint8_t)(dl->spi_in >> 24), (uint8_t)(dl->spi_in >> 16),
			   (uint8_t)(dl->spi_in >> 8), (uint8_t)dl->spi_in };
	struct qkd_ike_delete d = { QKD_IKE_PROTO_ESP, 4, 1, { spi, 4 } };

	send_chain(ike, s, X_DEL_CHILD, &d, now);
	if (s->out.kind == X_DEL_CHILD) {
		s->out.del_in = dl->spi_in;
		s->out.del_out = dl->spi_out;
		s->out.del_installed = dl->installed;
	}
	memset(dl, 0, sizeof *dl);
}

void ike_info_send_dpd(struct qkd_ike *ike, double now)
{
	send_chain(ike, ike->sa, X_DPD, NULL, now);
}

void ike_info_send_delete_ike(struct qkd_ike *ike, struct ike_isa *s, double now)
{
	ike_info_send_delete_old(ike, s, now);
	ike->close_sent = true;
}

/* The Delete of an IKE SA that a rekey replaced (section 2.18): its Child
 * SAs have moved to the new one, so only it goes. */
void ike_info_send_delete_old(struct qkd_ike *ike, struct ike_isa *s, double now)
{
	struct qkd_ike_delete d = { QKD_IKE_PROTO_IKE, 0, 0, { NULL, 0 } };

	send_chain(ike, s, X_DEL_IKE, &d, now);
}
