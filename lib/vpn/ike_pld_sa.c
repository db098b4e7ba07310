/* ike_pld_sa.c - the SA payload: proposals, transforms and the Key Length
 * attribute (RFC 7296 sections 3.3.1 to 3.3.5), validated before read.
 *
 * The rest of the payload parsers are in ike_pld.c; the builder of the
 * same structure is in ike_build.c.
 */
#include "qkd/ike_pld.h"

#include <string.h>

#include "qkd/error.h"

#define LAST 0u
#define MORE_PROPOSALS 2u
#define MORE_TRANSFORMS 3u
#define ATTR_TV 0x8000u

static int bad(const char **why, const char *w)
{
	*why = w;
	return QKD_ERR_PROTO;
}

/* Attributes of one transform: Key Length (TV) is kept; anything else is
 * flagged for the policy layer (section 3.3.6), after its length was
 * checked like every other. */
static int read_attrs(struct qkd_rbuf *r, struct qkd_ike_transform *t, const char **why)
{
	while (qkd_rbuf_left(r) > 0) {
		uint16_t at, av;

		if (qkd_rbuf_left(r) < 4)
			return bad(why, "transform attribute truncated");
		at = qkd_get_u16(r);
		av = qkd_get_u16(r);
		if ((at & ATTR_TV) == 0) {
			/* TLV: av is the value's length. */
			if (av > qkd_rbuf_left(r))
				return bad(why, "transform attribute overruns the transform");
			(void)qkd_get_bytes(r, av);
			t->unknown_attr = true;
		} else if ((at & ~ATTR_TV) == QKD_IKE_ATTR_KEY_LENGTH) {
			if (av == 0)
				return bad(why, "Key Length attribute of zero");
			t->key_bits = av;
		} else {
			t->unknown_attr = true;
		}
	}
	return 0;
}

static int read_transform(struct qkd_rbuf *r, bool *more, struct qkd_ike_transform *t,
			  const char **why)
{
	struct qkd_rbuf tr;
	uint8_t flag;
	uint16_t tlen;
	const uint8_t *body;

	if (qkd_rbuf_left(r) < 8)
		return bad(why, "transform truncated");
	flag = qkd_get_u8(r);
	(void)qkd_get_u8(r);
	tlen = qkd_get_u16(r);
	if (flag != LAST && flag != MORE_TRANSFORMS)
		return bad(why, "transform Last Substruc not 0 or 3");
	if (tlen < 8)
		return bad(why, "transform length below 8");
	if (tlen - 4u > qkd_rbuf_left(r))
		return bad(why, "transform length overruns the proposal");
	body = qkd_get_bytes(r, tlen - 4u);
	qkd_rbuf_init(&tr, body, tlen - 4u);
	memset(t, 0, sizeof *t);
	t->type = qkd_get_u8(&tr);
	(void)qkd_get_u8(&tr);
	t->id = qkd_get_u16(&tr);
	*more = flag == MORE_TRANSFORMS;
	return read_attrs(&tr, t, why);
}

/* The proposal's fixed part, its SPI and its transforms, from pr (which
 * covers exactly the proposal's length). */
static int read_proposal_body(struct qkd_rbuf *pr, struct qkd_ike_proposal *p, const char **why)
{
	uint8_t nt;
	bool more = true;
	int rc;

	p->num = qkd_get_u8(pr);
	p->protocol = qkd_get_u8(pr);
	p->spi_len = qkd_get_u8(pr);
	nt = qkd_get_u8(pr);
	if (p->spi_len != 0 && p->spi_len != 4 && p->spi_len != 8)
		return bad(why, "proposal SPI size not 0, 4 or 8");
	if (p->spi_len > qkd_rbuf_left(pr))
		return bad(why, "proposal SPI overruns the proposal");
	qkd_get_copy(pr, p->spi, p->spi_len);
	if (nt == 0)
		return bad(why, "proposal without transforms");
	if (nt > QKD_IKE_MAX_TRANSFORMS) {
		*why = "more transforms than allowed";
		return QKD_ERR_RANGE;
	}
	for (p->nt = 0; p->nt < nt; p->nt++) {
		if (!more)
			return bad(why, "transform marked last before the announced count");
		if ((rc = read_transform(pr, &more, &p->t[p->nt], why)) != 0)
			return rc;
	}
	if (more)
		return bad(why, "last transform not marked last");
	return qkd_rbuf_left(pr) == 0 ? 0 : bad(why, "data after the last transform");
}

static int read_proposal(struct qkd_rbuf *r, bool *more, struct qkd_ike_proposal *p,
			 const char **why)
{
	struct qkd_rbuf pr;
	uint8_t flag;
	uint16_t plen;

	if (qkd_rbuf_left(r) < 8)
		return bad(why, "proposal truncated");
	flag = qkd_get_u8(r);
	(void)qkd_get_u8(r);
	plen = qkd_get_u16(r);
	if (flag != LAST && flag != MORE_PROPOSALS)
		return bad(why, "proposal Last Substruc not 0 or 2");
	if (plen < 8)
		return bad(why, "proposal length below 8");
	if (plen - 4u > qkd_rbuf_left(r))
		return bad(why, "proposal length overruns the SA payload");
	qkd_rbuf_init(&pr, qkd_get_bytes(r, plen - 4u), plen - 4u);
	*more = flag == MORE_PROPOSALS;
	return read_proposal_body(&pr, p, why);
}

int qkd_ike_sa_parse(const struct qkd_ike_pld *pld, struct qkd_ike_sa *sa, const char **why)
{
	struct qkd_rbuf r;
	bool more = true;
	int rc;

	*why = NULL;
	if (pld->type != QKD_IKE_PT_SA)
		return bad(why, "payload of another type");
	qkd_rbuf_init(&r, pld->body.p, pld->body.len);
	if (pld->body.len == 0)
		return bad(why, "SA payload without proposals");
	for (sa->np = 0; more; sa->np++) {
		if (qkd_rbuf_left(&r) == 0)
			return bad(why, "proposal marked more but none follows");
		if (sa->np == QKD_IKE_MAX_PROPOSALS) {
			*why = "more proposals than allowed";
			return QKD_ERR_RANGE;
		}
		if ((rc = read_proposal(&r, &more, &sa->p[sa->np], why)) != 0)
			return rc;
	}
	return qkd_rbuf_left(&r) == 0 ? 0 : bad(why, "data after the last proposal");
}
