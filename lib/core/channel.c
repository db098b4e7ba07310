/* channel.c - framing, sequencing and batch authentication of the
 * classical channel (qkd/channel.h; docs/protocol.md "Framing",
 * docs/authentication.md "Batches"). */
#include "qkd/channel.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/msg.h"
#include "qkd/sysutil.h"

#define HDR_LEN 6	/* version, type, seq */
#define LEN_LEN 4	/* the length prefix */
#define INDEX_LEN 4	/* an AUTH frame's pad index */

static void none_absorb(void *ctx, bool sent, const uint8_t *p, size_t len)
{
	(void)ctx; (void)sent; (void)p; (void)len;
}

static int none_tag(void *ctx, uint32_t index, uint8_t *tag)
{
	(void)ctx; (void)index; (void)tag;
	return QKD_OK;
}

static int none_verify(void *ctx, uint32_t index, const uint8_t *tag)
{
	(void)ctx; (void)index; (void)tag;
	return QKD_OK;
}

const struct qkd_auth_ops qkd_auth_none = {
	.name = "none", .tag_len = 0,
	.absorb = none_absorb, .tag = none_tag, .verify = none_verify,
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
	qkd_wbuf_init(&ch->aux);
}

void qkd_channel_cleanup(struct qkd_channel *ch)
{
	if (ch == NULL)
		return;
	qkd_wbuf_cleanup(&ch->tx);
	qkd_wbuf_cleanup(&ch->rx);
	qkd_wbuf_cleanup(&ch->aux);
}

void qkd_channel_bind(struct qkd_channel *ch, const uint8_t *session)
{
	memcpy(ch->session, session, sizeof ch->session);
}

/* Length prefix and header of a frame with a body of body bytes. */
static void put_head(struct qkd_channel *ch, uint8_t type, size_t body)
{
	qkd_wbuf_reset(&ch->tx);
	qkd_put_u32(&ch->tx, (uint32_t)body);
	qkd_put_u8(&ch->tx, QKD_CHANNEL_VERSION);
	qkd_put_u8(&ch->tx, type);
	qkd_put_u32(&ch->tx, ch->send_seq);
}

static int write_frame(struct qkd_channel *ch)
{
	int rc = ch->tx.err ? ch->tx.err : qkd_write_all(ch->fd, ch->tx.p, ch->tx.len);

	if (rc != QKD_OK)
		return rc;
	ch->send_seq++;
	ch->frames_sent++;
	ch->bytes_sent += ch->tx.len;
	return QKD_OK;
}

int qkd_channel_seal(struct qkd_channel *ch)
{
	size_t tl = ch->auth->tag_len, body = HDR_LEN + INDEX_LEN + tl;
	int rc;

	if (ch->unauth_sent == 0)
		return QKD_OK;
	put_head(ch, QKD_MSG_AUTH, body);
	qkd_put_u32(&ch->tx, ch->auth_send);
	if (qkd_wbuf_reserve(&ch->tx, tl) != QKD_OK)
		return ch->tx.err;
	/* The tag covers the AUTH frame up to its index, then the session. */
	ch->auth->absorb(ch->auth_ctx, true, ch->tx.p, ch->tx.len);
	ch->auth->absorb(ch->auth_ctx, true, ch->session, sizeof ch->session);
	rc = ch->auth->tag(ch->auth_ctx, ch->auth_send, ch->tx.p + ch->tx.len);
	if (rc != QKD_OK)
		return rc;
	ch->tx.len += tl;
	rc = write_frame(ch);
	if (rc != QKD_OK)
		return rc;
	ch->auth_send++;
	ch->auth_frames_sent++;
	ch->unauth_sent = 0;
	return QKD_OK;
}

int qkd_channel_send(struct qkd_channel *ch, uint8_t type, const uint8_t *payload, size_t len)
{
	int rc;

	if (type == QKD_MSG_AUTH)
		return QKD_ERR_INVAL;
	if (len > QKD_CHANNEL_MAX_FRAME - HDR_LEN)
		return QKD_ERR_RANGE;
	put_head(ch, type, HDR_LEN + len);
	qkd_put_bytes(&ch->tx, payload, len);
	if (ch->tx.err)
		return ch->tx.err;
	ch->auth->absorb(ch->auth_ctx, true, ch->tx.p, ch->tx.len);
	ch->unauth_sent += ch->tx.len;
	rc = write_frame(ch);
	if (rc == QKD_OK && ch->unauth_sent >= QKD_CHANNEL_SEAL_BYTES)
		rc = qkd_channel_seal(ch);
	return rc;
}

int qkd_channel_send_sealed(struct qkd_channel *ch, uint8_t type, const uint8_t *payload,
			    size_t len)
{
	int rc = qkd_channel_send(ch, type, payload, len);

	return rc == QKD_OK ? qkd_channel_seal(ch) : rc;
}

/* Read one whole frame into b (length prefix included) and check its
 * length bound, seq and version. */
static int read_frame(struct qkd_channel *ch, struct qkd_wbuf *b)
{
	size_t body, total;
	struct qkd_rbuf hdr;
	int rc;

	qkd_wbuf_reset(b);
	if (qkd_wbuf_reserve(b, LEN_LEN) != QKD_OK)
		return b->err;
	rc = qkd_read_all(ch->fd, b->p, LEN_LEN);
	if (rc != QKD_OK)
		return rc;
	b->len = LEN_LEN;
	body = (size_t)b->p[0] << 24 | (size_t)b->p[1] << 16 |
	       (size_t)b->p[2] << 8 | b->p[3];
	if (body < HDR_LEN || body > QKD_CHANNEL_MAX_FRAME ||
	    ch->unauth_recv + LEN_LEN + body > QKD_CHANNEL_UNAUTH_MAX)
		return QKD_ERR_PROTO;
	total = LEN_LEN + body;
	/* Grow with the bytes that actually arrive, so a forged length costs the
	 * sender as much memory as it costs us. */
	while (b->len < total) {
		size_t step = total - b->len;

		if (step > ((size_t)1 << 20) && step > b->len)
			step = b->len > ((size_t)1 << 20) ? b->len : (size_t)1 << 20;
		if (qkd_wbuf_reserve(b, step) != QKD_OK)
			return b->err;
		rc = qkd_read_all(ch->fd, b->p + b->len, step);
		if (rc != QKD_OK)
			return rc;
		b->len += step;
	}
	ch->frames_recv++;
	ch->bytes_recv += total;
	qkd_rbuf_init(&hdr, b->p + LEN_LEN, HDR_LEN);
	if (qkd_get_u8(&hdr) != QKD_CHANNEL_VERSION)
		return QKD_ERR_PROTO;
	(void)qkd_get_u8(&hdr);
	if (qkd_get_u32(&hdr) != ch->recv_seq)
		return QKD_ERR_PROTO;
	ch->recv_seq++;
	return QKD_OK;
}

static uint8_t frame_type(const struct qkd_wbuf *b)
{
	return b->p[LEN_LEN + 1];
}

/* The AUTH frame in b closes the receiving batch. Its form and index are
 * checked before the authenticator sees it: only the expected index may
 * touch a pad. */
static int check_auth(struct qkd_channel *ch, const struct qkd_wbuf *b)
{
	size_t tl = ch->auth->tag_len, head = LEN_LEN + HDR_LEN;
	struct qkd_rbuf r;
	int rc;

	if (b->len != head + INDEX_LEN + tl)
		return QKD_ERR_PROTO;
	qkd_rbuf_init(&r, b->p + head, INDEX_LEN);
	if (qkd_get_u32(&r) != ch->auth_recv)
		return QKD_ERR_PROTO;
	ch->auth->absorb(ch->auth_ctx, false, b->p, head + INDEX_LEN);
	ch->auth->absorb(ch->auth_ctx, false, ch->session, sizeof ch->session);
	rc = ch->auth->verify(ch->auth_ctx, ch->auth_recv, b->p + head + INDEX_LEN);
	if (rc != QKD_OK)
		return rc == QKD_ERR_NOKEY ? rc : QKD_ERR_VERIFY;
	ch->auth_recv++;
	ch->auth_frames_recv++;
	ch->unauth_recv = 0;
	return QKD_OK;
}

int qkd_channel_recv(struct qkd_channel *ch, uint8_t *type, struct qkd_rbuf *payload)
{
	int rc;

	for (;;) {
		rc = read_frame(ch, &ch->rx);
		if (rc != QKD_OK)
			return rc;
		if (frame_type(&ch->rx) != QKD_MSG_AUTH)
			break;
		rc = check_auth(ch, &ch->rx);
		if (rc != QKD_OK)
			return rc;
	}
	ch->auth->absorb(ch->auth_ctx, false, ch->rx.p, ch->rx.len);
	ch->unauth_recv += ch->rx.len;
	*type = frame_type(&ch->rx);
	qkd_rbuf_init(payload, ch->rx.p + LEN_LEN + HDR_LEN, ch->rx.len - LEN_LEN - HDR_LEN);
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

int qkd_channel_expect_seal(struct qkd_channel *ch)
{
	int rc;

	if (ch->unauth_recv == 0)
		return QKD_OK;
	/* Into its own buffer: the payload last returned stays readable. */
	rc = read_frame(ch, &ch->aux);
	if (rc != QKD_OK)
		return rc;
	if (frame_type(&ch->aux) == QKD_MSG_AUTH)
		return check_auth(ch, &ch->aux);
	return frame_type(&ch->aux) == QKD_MSG_ABORT ? QKD_ERR_ABORT : QKD_ERR_PROTO;
}

int qkd_channel_skip_to_seal(struct qkd_channel *ch)
{
	int rc;

	for (;;) {
		rc = read_frame(ch, &ch->aux);
		if (rc != QKD_OK)
			return rc;
		if (frame_type(&ch->aux) == QKD_MSG_AUTH)
			return check_auth(ch, &ch->aux);
		if (frame_type(&ch->aux) == QKD_MSG_ABORT)
			return QKD_ERR_ABORT;
		ch->auth->absorb(ch->auth_ctx, false, ch->aux.p, ch->aux.len);
		ch->unauth_recv += ch->aux.len;
	}
}
