/* ike_pld.c - validate, then parse, IKEv2 messages (RFC 7296 section 3).
 *
 * Every read goes through the bounded reader (qkd/wire.h); every length
 * field is checked against what is left before the bytes it announces are
 * taken, so a lying length is an error, never an out-of-bounds read. The
 * outputs borrow the input buffer. Builder: ike_build.c; keys: ike_keys.c.
 */
#include "qkd/ike_pld.h"

#include <string.h>

#include "qkd/error.h"

#define WHY_CRITICAL "unsupported critical payload (UNSUPPORTED_CRITICAL_PAYLOAD, notify type 1)"

static int bad(const char **why, const char *w)
{
	*why = w;
	return QKD_ERR_PROTO;
}

/* The payload types this layer knows (IANA 33..48); anything else is
 * "unknown" in the sense of section 2.5. */
static bool known_type(uint8_t t)
{
	return t >= QKD_IKE_PT_SA && t <= QKD_IKE_PT_EAP;
}

/* A body reader over one payload, and the check that it was all read. */
static void body_reader(struct qkd_rbuf *r, const struct qkd_ike_pld *pld)
{
	qkd_rbuf_init(r, pld->body.p, pld->body.len);
}

static struct qkd_ike_span take(struct qkd_rbuf *r, size_t n)
{
	struct qkd_ike_span s = { qkd_get_bytes(r, n), n };

	if (s.p == NULL)
		s.len = 0;
	return s;
}

static struct qkd_ike_span rest(struct qkd_rbuf *r)
{
	return take(r, qkd_rbuf_left(r));
}

/* One generic payload header and body; returns its Next Payload. */
static int read_generic(struct qkd_rbuf *r, uint8_t *next, struct qkd_ike_pld *pld,
			const char **why)
{
	uint8_t flags;
	uint16_t plen;

	if (qkd_rbuf_left(r) < QKD_IKE_GEN_LEN)
		return bad(why, "payload header truncated");
	*next = qkd_get_u8(r);
	flags = qkd_get_u8(r);
	plen = qkd_get_u16(r);
	if (plen < QKD_IKE_GEN_LEN)
		return bad(why, "payload length below 4");
	if ((size_t)(plen - QKD_IKE_GEN_LEN) > qkd_rbuf_left(r))
		return bad(why, "payload length overruns the message");
	pld->critical = (flags & 0x80) != 0;
	pld->body = take(r, plen - QKD_IKE_GEN_LEN);
	return qkd_rbuf_ok(r) ? 0 : bad(why, "payload truncated");
}

/* Walk a chain starting with type `type`. SK, when allowed, must be last. */
static int walk(struct qkd_rbuf *r, uint8_t type, bool allow_sk, struct qkd_ike_msg *m,
		const char **why)
{
	size_t seen = 0;
	int rc;

	while (type != QKD_IKE_PT_NONE) {
		struct qkd_ike_pld pld = { .type = type };
		uint8_t next;

		if (++seen > QKD_IKE_MAX_PAYLOADS) {
			*why = "more payloads than allowed";
			return QKD_ERR_RANGE;
		}
		if ((rc = read_generic(r, &next, &pld, why)) != 0)
			return rc;
		if (!known_type(type)) {
			if (pld.critical) {
				m->bad_critical = type;
				return bad(why, WHY_CRITICAL);
			}
			m->skipped++;
			type = next;
			continue;
		}
		m->pld[m->n++] = pld;
		if (type == QKD_IKE_PT_SK) {
			if (!allow_sk)
				return bad(why, "SK payload inside an SK payload");
			if (qkd_rbuf_left(r) != 0)
				return bad(why, "SK payload is not the last payload");
			m->inner = next;
			return 0;
		}
		type = next;
	}
	return qkd_rbuf_left(r) == 0 ? 0 : bad(why, "data after the last payload");
}

static void msg_clear(struct qkd_ike_msg *m)
{
	memset(&m->hdr, 0, sizeof m->hdr);
	m->n = m->skipped = 0;
	m->inner = m->bad_critical = 0;
}

int qkd_ike_msg_parse(const uint8_t *p, size_t len, struct qkd_ike_msg *m, const char **why)
{
	struct qkd_rbuf r;
	uint8_t version;

	msg_clear(m);
	*why = NULL;
	if (len > QKD_IKE_MSG_MAX) {
		*why = "message over 64 KiB";
		return QKD_ERR_RANGE;
	}
	if (len < QKD_IKE_HDR_LEN)
		return bad(why, "IKE header truncated");
	qkd_rbuf_init(&r, p, len);
	qkd_get_copy(&r, m->hdr.spi_i, 8);
	qkd_get_copy(&r, m->hdr.spi_r, 8);
	m->hdr.next = qkd_get_u8(&r);
	version = qkd_get_u8(&r);
	m->hdr.exchange = qkd_get_u8(&r);
	m->hdr.flags = qkd_get_u8(&r);
	m->hdr.msg_id = qkd_get_u32(&r);
	m->hdr.length = qkd_get_u32(&r);
	/* Section 3.1: a major version other than 2 is refused; the minor
	 * version is ignored on receipt. */
	if (version >> 4 != 2)
		return bad(why, "IKE major version is not 2");
	if (m->hdr.length != len)
		return bad(why, "IKE header length differs from the message size");
	return walk(&r, m->hdr.next, true, m, why);
}

int qkd_ike_chain_parse(uint8_t first, const uint8_t *p, size_t len, struct qkd_ike_msg *m,
			const char **why)
{
	struct qkd_rbuf r;

	msg_clear(m);
	*why = NULL;
	if (len > QKD_IKE_MSG_MAX) {
		*why = "message over 64 KiB";
		return QKD_ERR_RANGE;
	}
	qkd_rbuf_init(&r, p, len);
	return walk(&r, first, false, m, why);
}

const struct qkd_ike_pld *qkd_ike_msg_find(const struct qkd_ike_msg *m, uint8_t type)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->pld[i].type == type)
			return &m->pld[i];
	return NULL;
}

/* ---- the typed payloads ---- */

static int check_type(const struct qkd_ike_pld *pld, uint8_t a, uint8_t b, const char **why)
{
	*why = NULL;
	return pld->type == a || pld->type == b ? 0 : bad(why, "payload of another type");
}

int qkd_ike_ke_parse(const struct qkd_ike_pld *pld, struct qkd_ike_ke *ke, const char **why)
{
	struct qkd_rbuf r;

	if (check_type(pld, QKD_IKE_PT_KE, QKD_IKE_PT_KE, why) != 0)
		return QKD_ERR_PROTO;
	body_reader(&r, pld);
	if (qkd_rbuf_left(&r) < 4)
		return bad(why, "KE payload truncated");
	ke->group = qkd_get_u16(&r);
	(void)qkd_get_u16(&r);	/* RESERVED */
	ke->data = rest(&r);
	return ke->data.len > 0 ? 0 : bad(why, "KE payload without key exchange data");
}

/* IDi/IDr and AUTH: type octet, three reserved octets, non-empty data. */
static int typed_blob(const struct qkd_ike_pld *pld, uint8_t *type, struct qkd_ike_span *data,
		      const char *trunc, const char *empty, const char **why)
{
	struct qkd_rbuf r;

	body_reader(&r, pld);
	if (qkd_rbuf_left(&r) < 4)
		return bad(why, trunc);
	*type = qkd_get_u8(&r);
	(void)qkd_get_bytes(&r, 3);
	*data = rest(&r);
	return data->len > 0 ? 0 : bad(why, empty);
}

int qkd_ike_id_parse(const struct qkd_ike_pld *pld, struct qkd_ike_id *id, const char **why)
{
	if (check_type(pld, QKD_IKE_PT_IDI, QKD_IKE_PT_IDR, why) != 0)
		return QKD_ERR_PROTO;
	return typed_blob(pld, &id->type, &id->data, "ID payload truncated",
			  "ID payload without identification data", why);
}

int qkd_ike_auth_parse(const struct qkd_ike_pld *pld, struct qkd_ike_auth *a, const char **why)
{
	if (check_type(pld, QKD_IKE_PT_AUTH, QKD_IKE_PT_AUTH, why) != 0)
		return QKD_ERR_PROTO;
	return typed_blob(pld, &a->method, &a->data, "AUTH payload truncated",
			  "AUTH payload without authentication data", why);
}

int qkd_ike_nonce_parse(const struct qkd_ike_pld *pld, struct qkd_ike_span *nonce,
			const char **why)
{
	if (check_type(pld, QKD_IKE_PT_NONCE, QKD_IKE_PT_NONCE, why) != 0)
		return QKD_ERR_PROTO;
	if (pld->body.len < QKD_IKE_NONCE_MIN)
		return bad(why, "nonce shorter than 16 octets");
	if (pld->body.len > QKD_IKE_NONCE_MAX)
		return bad(why, "nonce longer than 256 octets");
	*nonce = pld->body;
	return 0;
}

/* SPI sizes this gateway can meet: none, ESP/AH (4), IKE (8). */
static bool spi_size_ok(size_t n)
{
	return n == 0 || n == 4 || n == 8;
}

int qkd_ike_notify_parse(const struct qkd_ike_pld *pld, struct qkd_ike_notify *n,
			 const char **why)
{
	struct qkd_rbuf r;
	uint8_t spi_size;

	if (check_type(pld, QKD_IKE_PT_NOTIFY, QKD_IKE_PT_NOTIFY, why) != 0)
		return QKD_ERR_PROTO;
	body_reader(&r, pld);
	if (qkd_rbuf_left(&r) < 4)
		return bad(why, "Notify payload truncated");
	n->protocol = qkd_get_u8(&r);
	spi_size = qkd_get_u8(&r);
	n->type = qkd_get_u16(&r);
	if (!spi_size_ok(spi_size))
		return bad(why, "Notify SPI size not 0, 4 or 8");
	if (spi_size > qkd_rbuf_left(&r))
		return bad(why, "Notify SPI overruns the payload");
	n->spi = take(&r, spi_size);
	n->data = rest(&r);
	return 0;
}

/* Section 3.11: deleting the IKE SA names no SPI; ESP and AH SPIs are
 * four octets; no other protocol is deleted here. */
static bool delete_shape_ok(const struct qkd_ike_delete *d)
{
	if (d->protocol == QKD_IKE_PROTO_IKE)
		return d->spi_size == 0 && d->nspi == 0;
	if (d->protocol == QKD_IKE_PROTO_ESP || d->protocol == QKD_IKE_PROTO_AH)
		return d->spi_size == 4;
	return false;
}

int qkd_ike_delete_parse(const struct qkd_ike_pld *pld, struct qkd_ike_delete *d,
			 const char **why)
{
	struct qkd_rbuf r;

	if (check_type(pld, QKD_IKE_PT_DELETE, QKD_IKE_PT_DELETE, why) != 0)
		return QKD_ERR_PROTO;
	body_reader(&r, pld);
	if (qkd_rbuf_left(&r) < 4)
		return bad(why, "Delete payload truncated");
	d->protocol = qkd_get_u8(&r);
	d->spi_size = qkd_get_u8(&r);
	d->nspi = qkd_get_u16(&r);
	if (!delete_shape_ok(d))
		return bad(why, "Delete protocol, SPI size and count disagree");
	if ((size_t)d->nspi * d->spi_size != qkd_rbuf_left(&r))
		return bad(why, "Delete SPI count differs from the payload length");
	d->spis = rest(&r);
	if (d->protocol != QKD_IKE_PROTO_IKE && d->nspi == 0)
		return bad(why, "Delete payload without SPIs");
	return 0;
}

/* One traffic selector (section 3.13.1). */
static int read_selector(struct qkd_rbuf *r, struct qkd_ike_ts *ts, const char **why)
{
	uint16_t slen;
	size_t alen;

	if (qkd_rbuf_left(r) < 8)
		return bad(why, "traffic selector truncated");
	ts->type = qkd_get_u8(r);
	ts->ip_proto = qkd_get_u8(r);
	slen = qkd_get_u16(r);
	if (ts->type == QKD_IKE_TS_IPV4)
		alen = 4;
	else if (ts->type == QKD_IKE_TS_IPV6)
		alen = 16;
	else
		return bad(why, "traffic selector type not IPv4 or IPv6 range");
	if (slen != 8 + 2 * alen)
		return bad(why, "traffic selector length wrong for its type");
	if (slen - 4u > qkd_rbuf_left(r))
		return bad(why, "traffic selector overruns the payload");
	ts->start_port = qkd_get_u16(r);
	ts->end_port = qkd_get_u16(r);
	memset(ts->start, 0, sizeof ts->start);
	memset(ts->end, 0, sizeof ts->end);
	qkd_get_copy(r, ts->start, alen);
	qkd_get_copy(r, ts->end, alen);
	return qkd_rbuf_ok(r) ? 0 : bad(why, "traffic selector truncated");
}

int qkd_ike_ts_parse(const struct qkd_ike_pld *pld, struct qkd_ike_tss *ts, const char **why)
{
	struct qkd_rbuf r;
	uint8_t count;
	int rc;

	if (check_type(pld, QKD_IKE_PT_TSI, QKD_IKE_PT_TSR, why) != 0)
		return QKD_ERR_PROTO;
	body_reader(&r, pld);
	if (qkd_rbuf_left(&r) < 4)
		return bad(why, "TS payload truncated");
	count = qkd_get_u8(&r);
	(void)qkd_get_bytes(&r, 3);
	if (count == 0)
		return bad(why, "TS payload without selectors");
	if (count > QKD_IKE_MAX_SELECTORS) {
		*why = "more traffic selectors than allowed";
		return QKD_ERR_RANGE;
	}
	ts->n = 0;
	while (ts->n < count) {
		if ((rc = read_selector(&r, &ts->ts[ts->n], why)) != 0)
			return rc;
		ts->n++;
	}
	return qkd_rbuf_left(&r) == 0 ? 0 : bad(why, "data after the last traffic selector");
}

int qkd_ike_sk_parse(const struct qkd_ike_pld *pld, uint8_t inner, size_t iv_len, size_t icv_len,
		     struct qkd_ike_sk *sk, const char **why)
{
	struct qkd_rbuf r;

	if (check_type(pld, QKD_IKE_PT_SK, QKD_IKE_PT_SK, why) != 0)
		return QKD_ERR_PROTO;
	if (iv_len > QKD_IKE_MSG_MAX || icv_len > QKD_IKE_MSG_MAX) {
		*why = "IV or ICV length out of range";
		return QKD_ERR_INVAL;
	}
	/* At least one octet of ciphertext: the Pad Length octet (RFC 5282
	 * section 3 keeps the padding of section 3.14 under AEAD). */
	if (pld->body.len < iv_len + icv_len + 1)
		return bad(why, "SK payload shorter than IV, one octet and ICV");
	body_reader(&r, pld);
	sk->inner = inner;
	sk->iv = take(&r, iv_len);
	sk->ct = take(&r, pld->body.len - iv_len - icv_len);
	sk->icv = take(&r, icv_len);
	return 0;
}
