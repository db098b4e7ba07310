/* esp_packet.c - the ESP packet (qkd/esp.h): encapsulation and
 * decapsulation in tunnel mode with AES-GCM (RFC 4303 s3.3, s3.4; RFC 4106),
 * the SPI peek for SA lookup and the UDP/4500 classification (RFC 3948).
 * Every byte from the wire is read through the bounded reader (qkd/wire.h).
 * The cipher, counters and replay window are lib/vpn/esp_context.c's. */
#include <string.h>

#include "esp_int.h"
#include "qkd/secret.h"
#include "qkd/wire.h"

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* RFC 4303 s2.4: pad so that inner, padding, pad length and next header end
 * on a 4-byte boundary (GCM needs no block alignment, RFC 4106 s3.2), with
 * the default padding bytes 1, 2, 3... The trailer is at most 5 bytes. */
static size_t make_trailer(size_t len, uint8_t next_header, uint8_t trailer[5])
{
	size_t pad = (4 - (len + 2) % 4) % 4;

	for (size_t i = 0; i < pad; i++)
		trailer[i] = (uint8_t)(i + 1);
	trailer[pad] = (uint8_t)pad;
	trailer[pad + 1] = next_header;
	return pad + 2;
}

/* Take the next sequence number, or refuse when it would cycle (RFC 4303
 * s3.3.3: the counter never wraps; the SA must be replaced first). */
static int next_seq(struct qkd_esp_sa *sa, uint64_t *seq)
{
	uint64_t last = sa->esn ? UINT64_MAX : UINT32_MAX;

	if (sa->exhausted || sa->seq >= last)
		return QKD_ERR_NOKEY;
	*seq = ++sa->seq;
	if (*seq == last)
		sa->exhausted = true;	/* this one is the last the SA may send */
	return QKD_OK;
}

int qkd_esp_encapsulate(struct qkd_esp_sa *sa, uint8_t next_header, const uint8_t *inner,
			size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
	uint8_t trailer[5], aad[ESP_AAD_MAX], tag[QKD_ESP_ICV_LEN];
	size_t tlen, ct_len, aad_len;
	uint64_t seq;
	int rc = QKD_ERR_INVAL;

	*out_len = 0;
	if (sa->dir != QKD_ESP_OUT || (inner == NULL && len > 0) || out == NULL)
		goto out;
	rc = QKD_ERR_RANGE;
	if (len > ESP_INNER_MAX)
		goto out;
	tlen = make_trailer(len, next_header, trailer);
	ct_len = len + tlen;
	if (cap < QKD_ESP_HDR_LEN + QKD_ESP_IV_LEN + ct_len + QKD_ESP_ICV_LEN)
		goto out;
	rc = QKD_ERR_NOKEY;
	if (esp_over_hard(sa, len))
		goto out;
	rc = next_seq(sa, &seq);
	if (rc != QKD_OK)
		goto out;
	/* The IV is the sequence number: unique per packet under the key,
	 * which is all GCM needs (RFC 4106 s3.1, s8.1). */
	put_be32(out, sa->spi);
	put_be32(out + 4, (uint32_t)seq);
	put_be32(out + 8, (uint32_t)(seq >> 32));
	put_be32(out + 12, (uint32_t)seq);
	aad_len = esp_aad(sa, seq, aad);
	rc = esp_seal(sa, out + 8, aad, aad_len, inner, len, trailer, tlen, out + 16, tag);
	if (rc != QKD_OK) {
		qkd_wipe(out, cap);
		goto out;
	}
	memcpy(out + 16 + ct_len, tag, QKD_ESP_ICV_LEN);
	esp_account(sa, len);
	*out_len = 16 + ct_len + QKD_ESP_ICV_LEN;
out:
	return rc;
}

/* The fixed fields of an ESP packet and where its ciphertext and ICV lie. */
struct esp_view {
	uint32_t spi, seq_low;
	const uint8_t *iv, *ct, *icv;
	size_t ct_len;
};

/* RFC 4303 s3.4.1, s2.4: header, IV, a ciphertext of at least the 2-byte
 * trailer ending on a 4-byte boundary, and the ICV. */
static int esp_parse(const uint8_t *pkt, size_t len, struct esp_view *v)
{
	struct qkd_rbuf r;
	size_t left;

	qkd_rbuf_init(&r, pkt, len);
	v->spi = qkd_get_u32(&r);
	v->seq_low = qkd_get_u32(&r);
	v->iv = qkd_get_bytes(&r, QKD_ESP_IV_LEN);
	left = qkd_rbuf_left(&r);
	if (!qkd_rbuf_ok(&r) || left < QKD_ESP_ICV_LEN + 4)
		return QKD_ERR_PROTO;
	v->ct_len = left - QKD_ESP_ICV_LEN;
	if (v->ct_len % 4 != 0 || v->ct_len > ESP_INNER_MAX + 5)
		return QKD_ERR_PROTO;
	v->ct = qkd_get_bytes(&r, v->ct_len);
	v->icv = qkd_get_bytes(&r, QKD_ESP_ICV_LEN);
	return qkd_rbuf_done(&r) ? QKD_OK : QKD_ERR_PROTO;
}

/* The decrypted trailer (RFC 4303 s2.4, s2.6): pad length within the
 * plaintext, padding bytes 1, 2, 3...; sets the inner length. */
static int esp_trailer(const uint8_t *plain, size_t n, size_t *inner_len, uint8_t *next_header)
{
	struct qkd_rbuf r;
	const uint8_t *pad;
	uint8_t pad_len;

	qkd_rbuf_init(&r, plain, n);
	(void)qkd_get_bytes(&r, n - 2);
	pad_len = qkd_get_u8(&r);
	*next_header = qkd_get_u8(&r);
	if (!qkd_rbuf_done(&r) || pad_len > n - 2)
		return QKD_ERR_PROTO;
	*inner_len = n - 2 - pad_len;
	qkd_rbuf_init(&r, plain, n - 2);
	(void)qkd_get_bytes(&r, *inner_len);
	pad = qkd_get_bytes(&r, pad_len);
	if (!qkd_rbuf_done(&r))
		return QKD_ERR_PROTO;
	for (size_t i = 0; i < pad_len; i++)
		if (pad[i] != (uint8_t)(i + 1))
			return QKD_ERR_PROTO;
	return QKD_OK;
}

int qkd_esp_decapsulate(struct qkd_esp_sa *sa, const uint8_t *pkt, size_t len, uint8_t *out,
			size_t cap, size_t *out_len, uint8_t *next_header)
{
	uint8_t aad[ESP_AAD_MAX], nh = 0;
	struct esp_view v;
	size_t inner = 0, written = 0;
	uint64_t seq;
	int rc = QKD_ERR_INVAL;

	*out_len = 0;
	*next_header = 0;
	if (sa->dir != QKD_ESP_IN || (pkt == NULL && len > 0) || out == NULL)
		goto out;
	rc = esp_parse(pkt, len, &v);
	if (rc != QKD_OK)
		goto out;
	rc = QKD_ERR_INVAL;
	if (v.spi != sa->spi)
		goto out;
	rc = QKD_ERR_NOKEY;
	if (esp_over_hard(sa, 0))
		goto out;
	rc = QKD_ERR_RANGE;
	if (cap < v.ct_len)
		goto out;
	/* RFC 4303 s3.4.3: refuse duplicates before spending the decryption. */
	rc = qkd_replay_check(&sa->replay, v.seq_low, &seq);
	if (rc != QKD_OK)
		goto out;
	written = v.ct_len;
	rc = esp_open(sa, v.iv, aad, esp_aad(sa, seq, aad), v.ct, v.ct_len, v.icv, out);
	if (rc != QKD_OK)
		goto out;
	/* Only an authentic packet moves the window (RFC 4303 s3.4.3). */
	rc = qkd_replay_update(&sa->replay, seq);
	if (rc != QKD_OK)
		goto out;
	rc = esp_trailer(out, v.ct_len, &inner, &nh);
	if (rc != QKD_OK)
		goto out;
	esp_account(sa, inner);
	*out_len = inner;
	*next_header = nh;
out:
	if (rc != QKD_OK)
		qkd_wipe(out, written);
	return rc;
}

int qkd_esp_peek_spi(const uint8_t *pkt, size_t len, uint32_t *spi)
{
	struct qkd_rbuf r;

	qkd_rbuf_init(&r, pkt, len);
	*spi = qkd_get_u32(&r);
	(void)qkd_get_u32(&r);	/* an SPI alone is not an ESP header */
	if (!qkd_rbuf_ok(&r)) {
		*spi = 0;
		return QKD_ERR_PROTO;
	}
	return QKD_OK;
}

enum qkd_esp_udp_kind qkd_esp_udp_classify(const uint8_t *payload, size_t len)
{
	struct qkd_rbuf r;
	uint32_t first;

	qkd_rbuf_init(&r, payload, len);
	if (len == 1)
		return qkd_get_u8(&r) == 0xff ? QKD_ESP_UDP_KEEPALIVE : QKD_ESP_UDP_INVALID;
	first = qkd_get_u32(&r);
	if (!qkd_rbuf_ok(&r))
		return QKD_ESP_UDP_INVALID;
	if (first == 0)
		return QKD_ESP_UDP_IKE;
	(void)qkd_get_u32(&r);
	return qkd_rbuf_ok(&r) ? QKD_ESP_UDP_ESP : QKD_ESP_UDP_INVALID;
}
