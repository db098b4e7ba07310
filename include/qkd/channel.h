/* qkd/channel.h - the classical channel between Alice and Bob.
 *
 * A framed, versioned, sequenced message stream over a connected stream
 * socket (a socketpair in `qkd sim`, TCP between nodes). One frame:
 *
 *   u32 length      bytes that follow (header + payload + tag)
 *   u8  version     QKD_CHANNEL_VERSION
 *   u8  type        enum qkd_msg_type
 *   u32 seq         per direction, starting at 0, +1 per frame
 *   ... payload ...
 *   tag             auth->tag_len bytes over version..payload
 *
 * The authentication seam: every frame is tagged by auth->tag on send and
 * checked by auth->verify on receipt before the payload is parsed. Both get
 * the frame's sequence number (the sender's send_seq; on receipt the seq
 * field of the received header, read before anything else is trusted), so
 * an authenticator can bind each tag to its position in its direction: the
 * Wegman-Carter authenticator `qkd_auth_wc` (qkd/auth_wc.h) draws a fresh
 * one-time pad per seq. `qkd_auth_none` (tag length 0) authenticates nothing
 * and is for tests and local simulation only. A frame with a wrong version,
 * a sequence gap, an oversized length or a failed tag is a protocol error;
 * the receiver never parses its payload.
 */
#ifndef QKD_CHANNEL_H
#define QKD_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "qkd/wire.h"

#define QKD_CHANNEL_VERSION 1
#define QKD_CHANNEL_MAX_FRAME (256u << 20)	/* bound on one frame */

struct qkd_auth_ops {
	const char *name;
	size_t tag_len;
	/* Write tag_len bytes authenticating msg[0..len) as the frame with
	 * sequence number seq in the sending direction. May refuse (an error
	 * code, nothing written) when it has no key for seq. */
	int (*tag)(void *ctx, uint32_t seq, const uint8_t *msg, size_t len, uint8_t *tag);
	/* 0 when tag is valid for msg[0..len) as frame seq of the receiving
	 * direction, QKD_ERR_VERIFY otherwise (compared in constant time);
	 * other negative codes when it cannot check (e.g. key exhausted). */
	__attribute__((warn_unused_result))
	int (*verify)(void *ctx, uint32_t seq, const uint8_t *msg, size_t len, const uint8_t *tag);
};

extern const struct qkd_auth_ops qkd_auth_none;

struct qkd_channel {
	int fd;					/* borrowed, not closed by cleanup */
	const struct qkd_auth_ops *auth;
	void *auth_ctx;
	uint32_t send_seq, recv_seq;
	struct qkd_wbuf tx, rx;			/* frame buffers, wiped on cleanup */
	uint64_t bytes_sent, bytes_recv, frames_sent, frames_recv;
};

void qkd_channel_init(struct qkd_channel *ch, int fd,
		      const struct qkd_auth_ops *auth, void *auth_ctx);
void qkd_channel_cleanup(struct qkd_channel *ch);

/* Send one frame of the given type carrying payload[0..len). */
int qkd_channel_send(struct qkd_channel *ch, uint8_t type, const uint8_t *payload, size_t len);

/* Receive one frame. On success *type is set and *payload reads the frame's
 * payload, borrowed from ch->rx: valid until the next receive. */
__attribute__((warn_unused_result))
int qkd_channel_recv(struct qkd_channel *ch, uint8_t *type, struct qkd_rbuf *payload);

/* Receive a frame that must be of type want; an ERROR frame from the peer or
 * any other type is QKD_ERR_PROTO. */
__attribute__((warn_unused_result))
int qkd_channel_expect(struct qkd_channel *ch, uint8_t want, struct qkd_rbuf *payload);

#endif
