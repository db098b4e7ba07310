/* channel.c - framing, sequencing and batch authentication of the
 * classical channel (qkd/channel.h; docs/protocol.md "Framing",
 * docs/authentication.md "Batches"). */
#include "qkd/channel.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/msg.h"
#include "qkd/mux.h"
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
	qkd_wbuf_init(&ch->in);
}

void qkd_channel_cleanup(struct qkd_channel *ch)
{
	if (ch == NULL)
		return;
	qkd_wbuf_cleanup(&ch->tx);
	qkd_wbuf_cleanup(&ch->rx);
	qkd_wbuf_cleanup(&ch->aux);
	qkd_wbuf_cleanup(&ch->in);
}

void qkd_channel_set_mux(struct qkd_channel *ch, struct qkd_mux *m)
{
	struct timeval tv = {0};
	socklen_t tl = sizeof tv;

	ch->mux = m;
	ch->wait_ms = 0;
	if (m != NULL && getsockopt(ch->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &tl) == 0)
		ch->wait_ms = (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000);
}

void qkd_channel_bind(struct qkd_channel *ch, const uint8_t *session)
{
	memcpy(ch->session, session, sizeof ch->session);
}

static int send_frame(struct qkd_channel *ch, uint8_t type, const uint8_t *payload, size_t len);

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

	if (type == QKD_MSG_AUTH || type == QKD_MSG_SERVICE)
		return QKD_ERR_INVAL;
	if (len > QKD_CHANNEL_MAX_FRAME - HDR_LEN)
		return QKD_ERR_RANGE;
	/* Services go between two of the caller's frames. */
	if (ch->mux != NULL && qkd_mux_pending(ch->mux) && (rc = qkd_mux_run(ch->mux)) != QKD_OK)
		return rc;
	return send_frame(ch, type, payload, len);
}

int qkd_channel_send_service(struct qkd_channel *ch, const uint8_t *payload, size_t len)
{
	int rc = send_frame(ch, QKD_MSG_SERVICE, payload, len);

	return rc == QKD_OK ? qkd_channel_seal(ch) : rc;
}

/* One frame of the caller's or a service's, and the seal a full batch gets. */
static int send_frame(struct qkd_channel *ch, uint8_t type, const uint8_t *payload, size_t len)
{
	int rc;

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

/* A SERVICE frame in ch->in: take it into the batch, read the AUTH frame
 * that must follow it, and deliver the payload once that verified. */
static int take_service(struct qkd_channel *ch)
{
	size_t len = ch->in.len - LEN_LEN - HDR_LEN;
	int rc;

	ch->auth->absorb(ch->auth_ctx, false, ch->in.p, ch->in.len);
	ch->unauth_recv += ch->in.len;
	if (len > QKD_MUX_FRAME_MAX) {
		qkd_mux_fail(ch->mux, "service frame larger than its bound (1 MiB)");
		return QKD_ERR_PROTO;
	}
	rc = read_frame(ch, &ch->aux);
	if (rc != QKD_OK)
		return rc;
	if (frame_type(&ch->aux) != QKD_MSG_AUTH) {
		qkd_mux_fail(ch->mux, "service frame not sealed by an AUTH frame");
		return frame_type(&ch->aux) == QKD_MSG_ABORT ? QKD_ERR_ABORT : QKD_ERR_PROTO;
	}
	rc = check_auth(ch, &ch->aux);
	return rc == QKD_OK ? qkd_mux_deliver(ch->mux, ch->in.p + LEN_LEN + HDR_LEN, len) : rc;
}

/* Until the socket is readable: the services pumped on wakes and ticks.
 * Bounded by the socket's receive timeout, as a blocking read would be,
 * counted on the clock: a wake ends a poll early, and wakes may come
 * faster than the tick (enc_keys kicking), which must not put it off. */
static int wait_readable(struct qkd_channel *ch)
{
	double until = qkd_wall_seconds() + ch->wait_ms / 1000.0;
	int rc = QKD_OK;

	while (rc == QKD_OK) {
		struct pollfd p[2] = { { .fd = ch->fd, .events = POLLIN },
				       { .fd = qkd_mux_wake_fd(ch->mux), .events = POLLIN } };
		int n;

		if (qkd_mux_pending(ch->mux) && (rc = qkd_mux_run(ch->mux)) != QKD_OK)
			break;
		n = poll(p, 2, QKD_MUX_TICK_MS);
		if (n < 0 && errno != EINTR)
			return QKD_ERR_IO;
		if (n > 0 && p[0].revents != 0)
			return QKD_OK;
		if (ch->wait_ms > 0 && qkd_wall_seconds() >= until)
			return QKD_ERR_IO;	/* as SO_RCVTIMEO's EAGAIN */
		if (n == 0)
			rc = qkd_mux_run(ch->mux);	/* the services' timers */
	}
	return rc;
}

/* ch->in's frame counts as sealed by a service (expect_seal's answer). */
#define SEALED_BY_SERVICE 1

/* The next frame other than SERVICE into ch->in: the one pump held, else
 * from the socket. With until_sealed, stop (SEALED_BY_SERVICE) as soon as
 * a service's AUTH has left nothing received unauthenticated. */
static int read_next(struct qkd_channel *ch, bool until_sealed)
{
	int rc;

	if (ch->held) {
		ch->held = false;
		return QKD_OK;
	}
	for (;;) {
		rc = ch->mux != NULL ? wait_readable(ch) : QKD_OK;
		if (rc == QKD_OK)
			rc = read_frame(ch, &ch->in);
		if (rc != QKD_OK || ch->mux == NULL || frame_type(&ch->in) != QKD_MSG_SERVICE)
			return rc;
		rc = take_service(ch);
		if (rc != QKD_OK)
			return rc;
		if (until_sealed && ch->unauth_recv == 0)
			return SEALED_BY_SERVICE;
	}
}

int qkd_channel_pump(struct qkd_channel *ch)
{
	int rc = QKD_OK;

	if (ch->mux == NULL)
		return QKD_OK;
	if (qkd_mux_pending(ch->mux))
		rc = qkd_mux_run(ch->mux);
	while (rc == QKD_OK && !ch->held) {
		struct pollfd p = { .fd = ch->fd, .events = POLLIN };

		if (poll(&p, 1, 0) <= 0)
			break;
		rc = read_frame(ch, &ch->in);
		if (rc == QKD_OK && frame_type(&ch->in) == QKD_MSG_SERVICE)
			rc = take_service(ch);
		else if (rc == QKD_OK)
			ch->held = true;	/* the caller's: for its next receive */
	}
	return rc;
}

/* Exchange two buffers (the frame just read becomes the one returned). */
static void swap_bufs(struct qkd_wbuf *a, struct qkd_wbuf *b)
{
	struct qkd_wbuf t = *a;

	*a = *b;
	*b = t;
}

int qkd_channel_recv(struct qkd_channel *ch, uint8_t *type, struct qkd_rbuf *payload)
{
	int rc;

	for (;;) {
		rc = read_next(ch, false);
		if (rc != QKD_OK)
			return rc;
		if (frame_type(&ch->in) != QKD_MSG_AUTH)
			break;
		rc = check_auth(ch, &ch->in);
		if (rc != QKD_OK)
			return rc;
	}
	swap_bufs(&ch->in, &ch->rx);
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
	/* Into ch->in: the payload last returned (ch->rx) stays readable. */
	rc = read_next(ch, true);
	if (rc == SEALED_BY_SERVICE)
		return QKD_OK;
	if (rc != QKD_OK)
		return rc;
	if (frame_type(&ch->in) == QKD_MSG_AUTH)
		return check_auth(ch, &ch->in);
	return frame_type(&ch->in) == QKD_MSG_ABORT ? QKD_ERR_ABORT : QKD_ERR_PROTO;
}

int qkd_channel_skip_to_seal(struct qkd_channel *ch)
{
	int rc;

	for (;;) {
		rc = read_next(ch, true);
		if (rc == SEALED_BY_SERVICE)
			return QKD_OK;
		if (rc != QKD_OK)
			return rc;
		if (frame_type(&ch->in) == QKD_MSG_AUTH)
			return check_auth(ch, &ch->in);
		if (frame_type(&ch->in) == QKD_MSG_ABORT)
			return QKD_ERR_ABORT;
		ch->auth->absorb(ch->auth_ctx, false, ch->in.p, ch->in.len);
		ch->unauth_recv += ch->in.len;
	}
}
