#include "qkd/channel.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/msg.h"
#include "qkd/sysutil.h"

#define HDR_LEN 6	/* version, type, seq */

static int none_tag(void *ctx, uint32_t seq, const uint8_t *msg, size_t len, uint8_t *tag)
{
	(void)ctx; (void)seq; (void)msg; (void)len; (void)tag;
	return QKD_OK;
}

static int none_verify(void *ctx, uint32_t seq, const uint8_t *msg, size_t len,
		       const uint8_t *tag)
{
	(void)ctx; (void)seq; (void)msg; (void)len; (void)tag;
	return QKD_OK;
}

const struct qkd_auth_ops qkd_auth_none = {
	.name = "none", .tag_len = 0, .tag = none_tag, .verify = none_verify,
};

void qkd_channel_init(struct qkd_channel *ch, int fd,
		      const struct qkd_auth_ops *auth, void *auth_ctx)
{
	memset(ch, 0, sizeof *ch);
	ch->fd = fd;
	ch->auth = auth ? auth : &qkd_auth_none;
	ch->auth_ctx = auth_ctx;
	qkd_wbuf_init(&ch->tx);
	qkd_wbuf_init(&ch->rx);
}

void qkd_channel_cleanup(struct qkd_channel *ch)
{
	if (ch == NULL)
		return;
	qkd_wbuf_cleanup(&ch->tx);
	qkd_wbuf_cleanup(&ch->rx);
}

int qkd_channel_send(struct qkd_channel *ch, uint8_t type, const uint8_t *payload, size_t len)
{
	size_t tl = ch->auth->tag_len, body;
	int rc;

	if (len > QKD_CHANNEL_MAX_FRAME - HDR_LEN - tl)
		return QKD_ERR_RANGE;
	body = HDR_LEN + len + tl;
	qkd_wbuf_reset(&ch->tx);
	qkd_put_u32(&ch->tx, (uint32_t)body);
	qkd_put_u8(&ch->tx, QKD_CHANNEL_VERSION);
	qkd_put_u8(&ch->tx, type);
	qkd_put_u32(&ch->tx, ch->send_seq);
	qkd_put_bytes(&ch->tx, payload, len);
	if (qkd_wbuf_reserve(&ch->tx, tl) != QKD_OK)
		return ch->tx.err;
	rc = ch->auth->tag(ch->auth_ctx, ch->send_seq, ch->tx.p + 4, HDR_LEN + len,
			   ch->tx.p + ch->tx.len);
	if (rc != QKD_OK)
		return rc;
	ch->tx.len += tl;
	rc = qkd_write_all(ch->fd, ch->tx.p, ch->tx.len);
	if (rc != QKD_OK)
		return rc;
	ch->send_seq++;
	ch->frames_sent++;
	ch->bytes_sent += ch->tx.len;
	return QKD_OK;
}

int qkd_channel_recv(struct qkd_channel *ch, uint8_t *type, struct qkd_rbuf *payload)
{
	uint8_t lenb[4];
	size_t tl = ch->auth->tag_len, body;
	struct qkd_rbuf hdr;
	uint32_t seq;
	int rc;

	rc = qkd_read_all(ch->fd, lenb, sizeof lenb);
	if (rc != QKD_OK)
		return rc;
	body = (size_t)lenb[0] << 24 | (size_t)lenb[1] << 16 | (size_t)lenb[2] << 8 | lenb[3];
	if (body < HDR_LEN + tl || body > QKD_CHANNEL_MAX_FRAME)
		return QKD_ERR_PROTO;
	qkd_wbuf_reset(&ch->rx);
	/* Grow with the bytes that actually arrive, so a forged length costs the
	 * sender as much memory as it costs us. */
	while (ch->rx.len < body) {
		size_t step = body - ch->rx.len;

		if (step > ((size_t)1 << 20) && step > ch->rx.len)
			step = ch->rx.len > ((size_t)1 << 20) ? ch->rx.len : (size_t)1 << 20;
		if (qkd_wbuf_reserve(&ch->rx, step) != QKD_OK)
			return ch->rx.err;
		rc = qkd_read_all(ch->fd, ch->rx.p + ch->rx.len, step);
		if (rc != QKD_OK)
			return rc;
		ch->rx.len += step;
	}
	ch->frames_recv++;
	ch->bytes_recv += 4 + body;
	/* Authenticate before looking at anything else the peer could have
	 * forged. The tag is bound to the seq the frame claims (it picks the
	 * one-time pad). Only the expected seq reaches the authenticator: a
	 * verification destroys the pads up to the seq it is given, so a forged
	 * frame claiming a far seq must not touch them (it would burn the
	 * authentication key). Any other seq is forged, replayed or out of
	 * order: refused as a failed tag. */
	qkd_rbuf_init(&hdr, ch->rx.p, HDR_LEN);
	(void)qkd_get_u16(&hdr);
	seq = qkd_get_u32(&hdr);
	if (seq != ch->recv_seq)
		return tl > 0 ? QKD_ERR_VERIFY : QKD_ERR_PROTO;
	rc = ch->auth->verify(ch->auth_ctx, seq, ch->rx.p, body - tl, ch->rx.p + body - tl);
	if (rc == QKD_ERR_NOKEY)
		return rc;
	if (rc != QKD_OK)
		return QKD_ERR_VERIFY;
	qkd_rbuf_init(&hdr, ch->rx.p, HDR_LEN);
	if (qkd_get_u8(&hdr) != QKD_CHANNEL_VERSION)
		return QKD_ERR_PROTO;
	*type = qkd_get_u8(&hdr);
	if (qkd_get_u32(&hdr) != ch->recv_seq)
		return QKD_ERR_PROTO;
	ch->recv_seq++;
	qkd_rbuf_init(payload, ch->rx.p + HDR_LEN, body - HDR_LEN - tl);
	return QKD_OK;
}

int qkd_channel_expect(struct qkd_channel *ch, uint8_t want, struct qkd_rbuf *payload)
{
	uint8_t type;
	int rc = qkd_channel_recv(ch, &type, payload);

	if (rc != QKD_OK)
		return rc;
	if (type == QKD_MSG_ABORT)
		return QKD_ERR_ABORT;
	return type == want ? QKD_OK : QKD_ERR_PROTO;
}
