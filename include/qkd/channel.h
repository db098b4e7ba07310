/* qkd/channel.h - the classical channel between Alice and Bob.
 *
 * A framed, versioned, sequenced message stream over a connected stream
 * socket (a socketpair in `qkd sim`, TCP between nodes). One frame:
 *
 *   u32 length      bytes that follow (header + payload)
 *   u8  version     QKD_CHANNEL_VERSION
 *   u8  type        enum qkd_msg_type
 *   u32 seq         per direction, starting at 0, +1 per frame
 *   ... payload ...
 *
 * Authentication in batches (docs/authentication.md, "Batches"). Frames
 * carry no tag of their own. Every byte of every frame a party sends,
 * length prefix included, goes into its direction's running universal hash
 * (auth->absorb), and an AUTH frame closes the batch:
 *
 *   AUTH payload    u32 index, then auth->tag_len bytes of tag
 *   tag             over: the batch, the AUTH frame's own length, version,
 *                   type, seq and index, then the 32-byte session id
 *
 * The index picks the one-time pad (qkd/auth_wc.h), one per AUTH frame in
 * each direction, counted from the values the caller puts in auth_send and
 * auth_recv when the connection opens. The session id binds every tag to
 * this connection, so a batch from an earlier connection never verifies in
 * a later one. A receiver takes AUTH frames in as they come: the tag is
 * checked against everything received since the previous one, and a
 * failure is QKD_ERR_VERIFY. A payload returned by qkd_channel_recv is
 * therefore not yet authenticated: a party must not keep, store or act on
 * anything derived from received messages outside the protocol run until
 * qkd_channel_expect_seal has returned 0 (the sender having called
 * qkd_channel_seal at the same point of the protocol). Senders also close
 * a batch by themselves once it holds QKD_CHANNEL_SEAL_BYTES, and a
 * receiver refuses more than QKD_CHANNEL_UNAUTH_MAX bytes without an AUTH
 * frame, which bounds the length a forgery can have.
 *
 * The receiver checks, in order: the length bound, the seq (the next one
 * expected), the version; for an AUTH frame then its length and index
 * before any pad is touched, so a forged frame claiming another index never
 * burns a pad. A frame that fails any check is a protocol error; after any
 * error the channel is not used again.
 *
 * `qkd_auth_none` (tag length 0) authenticates nothing and is for tests and
 * local simulation: AUTH frames still flow, so `qkd sim` counts what a real
 * authenticator would spend.
 */
#ifndef QKD_CHANNEL_H
#define QKD_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/wire.h"

#define QKD_CHANNEL_VERSION 2
#define QKD_CHANNEL_MAX_FRAME (256u << 20)	/* bound on one frame */
/* A sender closes its batch by itself once it holds this many bytes. */
#define QKD_CHANNEL_SEAL_BYTES ((size_t)4 << 20)
/* The most a receiver takes in before it must see an AUTH frame: a batch
 * just short of QKD_CHANNEL_SEAL_BYTES, then the largest frame. */
#define QKD_CHANNEL_UNAUTH_MAX (QKD_CHANNEL_SEAL_BYTES + 4 + QKD_CHANNEL_MAX_FRAME)
#define QKD_CHANNEL_SESSION_LEN 32
/* The channel's own frame type (qkd/msg.h numbers the others). */
#define QKD_MSG_AUTH 31

struct qkd_auth_ops {
	const char *name;
	size_t tag_len;
	/* Feed p[0..len) into the running hash of the sending (sent) or the
	 * receiving direction. */
	void (*absorb)(void *ctx, bool sent, const uint8_t *p, size_t len);
	/* Write tag_len bytes authenticating the sending direction's batch
	 * with pad index; start a new batch. May refuse (an error code,
	 * nothing written) when it has no key for index. */
	int (*tag)(void *ctx, uint32_t index, uint8_t *tag);
	/* 0 when tag is valid for the receiving direction's batch with pad
	 * index, QKD_ERR_VERIFY otherwise (compared in constant time); other
	 * negative codes when it cannot check (e.g. key exhausted). Starts a
	 * new batch. */
	__attribute__((warn_unused_result))
	int (*verify)(void *ctx, uint32_t index, const uint8_t *tag);
};

extern const struct qkd_auth_ops qkd_auth_none;

struct qkd_channel {
	int fd;					/* borrowed, not closed by cleanup */
	const struct qkd_auth_ops *auth;
	void *auth_ctx;
	uint32_t send_seq, recv_seq;		/* frames of this connection */
	uint32_t auth_send, auth_recv;		/* pad index of the next AUTH frame */
	uint8_t session[QKD_CHANNEL_SESSION_LEN];	/* 0s until qkd_channel_bind */
	size_t unauth_sent, unauth_recv;	/* bytes of the open batches */
	struct qkd_wbuf tx, rx;			/* frame buffers, wiped on cleanup */
	struct qkd_wbuf aux;			/* the AUTH frame of expect_seal */
	uint64_t bytes_sent, bytes_recv, frames_sent, frames_recv;
	uint64_t auth_frames_sent, auth_frames_recv;
	/* Services sharing the channel (qkd/mux.h), NULL for none. */
	struct qkd_mux *mux;
	struct qkd_wbuf in;			/* the frame being read */
	bool held;				/* in holds a frame read ahead by pump */
	int wait_ms;				/* the socket's receive timeout, 0 none */
};

void qkd_channel_init(struct qkd_channel *ch, int fd,
		      const struct qkd_auth_ops *auth, void *auth_ctx);
void qkd_channel_cleanup(struct qkd_channel *ch);

/* Bind the channel to a session id (QKD_CHANNEL_SESSION_LEN bytes, copied)
 * that both ends agreed when the connection opened: every later AUTH tag
 * covers it. */
void qkd_channel_bind(struct qkd_channel *ch, const uint8_t *session);

/* Send one frame of the given type carrying payload[0..len); when the
 * frame brings the batch to QKD_CHANNEL_SEAL_BYTES, an AUTH frame closes it
 * right after. type QKD_MSG_AUTH is refused (QKD_ERR_INVAL). */
int qkd_channel_send(struct qkd_channel *ch, uint8_t type, const uint8_t *payload, size_t len);

/* Close the sending direction's batch with an AUTH frame; nothing is sent
 * when the batch is empty. QKD_ERR_NOKEY when the authenticator has no pad
 * for auth_send. */
int qkd_channel_seal(struct qkd_channel *ch);

/* Receive one frame other than AUTH; AUTH frames met on the way are
 * checked (QKD_ERR_VERIFY on a bad tag). On success *type is set and
 * *payload reads the frame's payload, borrowed from ch->rx: valid until
 * the next receive. The payload is not authenticated yet (see above). */
__attribute__((warn_unused_result))
int qkd_channel_recv(struct qkd_channel *ch, uint8_t *type, struct qkd_rbuf *payload);

/* Receive a frame that must be of type want; an ABORT from the peer is
 * QKD_ERR_ABORT, any other type QKD_ERR_PROTO. */
__attribute__((warn_unused_result))
int qkd_channel_expect(struct qkd_channel *ch, uint8_t want, struct qkd_rbuf *payload);

/* Make sure everything received so far is authenticated: returns 0 at
 * once when it is, else the next frame must be the peer's AUTH and its tag
 * must verify (QKD_ERR_VERIFY; ABORT gives QKD_ERR_ABORT, another frame
 * QKD_ERR_PROTO). The payload qkd_channel_recv returned last stays valid. */
__attribute__((warn_unused_result))
int qkd_channel_expect_seal(struct qkd_channel *ch);

/* After a malformed message: read and take in frames up to the peer's next
 * AUTH frame and check it. QKD_ERR_VERIFY then shows the channel was
 * damaged or tampered with; 0 that the peer really sent what arrived (a
 * bug, or another version); an ABORT from the peer is QKD_ERR_ABORT. */
__attribute__((warn_unused_result))
int qkd_channel_skip_to_seal(struct qkd_channel *ch);

/* Send a frame, then close the batch: the peer's qkd_channel_expect_seal
 * after receiving it authenticates it. */
int qkd_channel_send_sealed(struct qkd_channel *ch, uint8_t type, const uint8_t *payload,
			    size_t len);

/* --- Services (qkd/mux.h) ------------------------------------------------
 * With a multiplexer set, the channel moves SERVICE frames (each sealed by
 * the AUTH frame that follows it) whenever the caller sends or waits for a
 * frame: it pumps the services before a send, and while it waits for a
 * frame it polls the socket beside the multiplexer's wake, delivering the
 * service frames that arrive (after their AUTH verified) and pumping on
 * wakes and every QKD_MUX_TICK_MS, within the socket's SO_RCVTIMEO. The
 * caller's frames, AUTH handling and expect_seal are as without services:
 * a service's AUTH that closed the caller's open batch makes the next
 * expect_seal return at once, as the sender's own seal then sends nothing. */

/* Set (m not NULL) or clear the services; qkd_mux_attach calls it. */
void qkd_channel_set_mux(struct qkd_channel *ch, struct qkd_mux *m);

/* Send a SERVICE frame with payload[0..len) and seal it; for the
 * multiplexer only (qkd_mux_send). */
int qkd_channel_send_service(struct qkd_channel *ch, const uint8_t *payload, size_t len);

/* Without blocking (but for a frame that has begun to arrive): pump the
 * services if woken, and take in the service frames already waiting. A
 * frame of the caller's met on the way is kept for its next receive. For
 * loops that do not use the channel for a while, e.g. the photon frames
 * of a round (they call it between frames). 0 or an error that ends the
 * connection. Without services it does nothing. */
__attribute__((warn_unused_result))
int qkd_channel_pump(struct qkd_channel *ch);

#endif
