/* qkd/mux.h - services on a link's authenticated classical channel
 * (docs/protocol.md, "Services on a link").
 *
 * The protocol engine owns the classical channel (qkd/channel.h) while a
 * round runs, yet other parts of a node must talk to the peer at the same
 * time: the key manager's records today, routing and key relay next. The
 * multiplexer lets them. A service registers an id, its message types and
 * two callbacks; its messages travel as SERVICE frames of the channel:
 *
 *   SERVICE payload   u8 service id, u8 message type, body
 *
 * each followed at once by an AUTH frame, so a service message is
 * authenticated before its handler sees it (the tag also closes whatever
 * engine frames were open in that batch, which changes nothing for the
 * engine: qkd_channel_expect_seal finds them authenticated). The channel
 * moves service frames whenever the engine sends or waits for a frame,
 * and when the photon loop calls qkd_channel_pump between frames, so they
 * flow between any two engine messages, in both directions, whoever
 * drives the round; the engine never sees them.
 *
 * Threads: the link thread runs every callback. Any other thread asks for
 * a pump with qkd_mux_wake (the key manager after enc_keys cut a key).
 *
 * Bad input: a service frame larger than QKD_MUX_FRAME_MAX, or too short
 * for its header, or not followed by AUTH, ends the connection with
 * QKD_ERR_PROTO and a reason (qkd_mux_error). An authenticated message for
 * a service or type this node does not have (a newer peer) is logged and
 * dropped: the link goes on.
 */
#ifndef QKD_MUX_H
#define QKD_MUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/log.h"
#include "qkd/wire.h"

/* The channel frame type of a service message (qkd/channel.h numbers its
 * own frames from 31 down; qkd/msg.h the engine's from 1 up). */
#define QKD_MSG_SERVICE 30
#define QKD_MUX_HEADER_LEN 2
/* The largest service frame payload: a service splits larger content. */
#define QKD_MUX_FRAME_MAX ((size_t)1 << 20)
#define QKD_MUX_SERVICES_MAX 8

/* Service ids on the wire. */
enum qkd_service_id {
	QKD_SERVICE_KME = 1,		/* the key manager's records (docs/kme.md) */
	QKD_SERVICE_RELAY = 2,		/* routing and key relay (docs/relay.md) */
};

struct qkd_mux;
struct qkd_channel;

struct qkd_service {
	const char *name;		/* for logs */
	uint8_t id;			/* enum qkd_service_id, not 0 */
	uint8_t ntypes;			/* its message types are 1 .. ntypes */
	/* An authenticated message of one of its types, body borrowed for the
	 * call. May send (qkd_mux_send). An error ends the connection; set
	 * *why (static text) to say why. */
	int (*deliver)(void *ctx, struct qkd_mux *m, uint8_t type, struct qkd_rbuf *body,
		       const char **why);
	/* Send what is pending (qkd_mux_send), if anything: after a wake, and
	 * at least every QKD_MUX_TICK_MS while the channel waits. */
	int (*pump)(void *ctx, struct qkd_mux *m, const char **why);
	/* A connection came up (the channel attached) or went down. */
	void (*up)(void *ctx, bool up);
	void *ctx;
};

#define QKD_MUX_TICK_MS 100

/* A multiplexer for one link; name and log (borrowed) are for its log
 * lines. 0, QKD_ERR_NOMEM or QKD_ERR_IO (no eventfd). */
int qkd_mux_new(struct qkd_mux **out, const char *name, const struct qkd_logger *log);
void qkd_mux_free(struct qkd_mux *m);

/* Add a service (copied) before the first attach. QKD_ERR_INVAL for id 0,
 * a taken id, or too many services. */
int qkd_mux_register(struct qkd_mux *m, const struct qkd_service *s);

/* Put the services on ch (a connection that is up, authenticated) or take
 * them off. Attach tells every service up, and it pumps at once. */
void qkd_mux_attach(struct qkd_mux *m, struct qkd_channel *ch);
void qkd_mux_detach(struct qkd_mux *m);

/* Any thread: a service has something to send; the link thread pumps
 * soon (at the channel's next move, or within QKD_MUX_TICK_MS idle). */
void qkd_mux_wake(struct qkd_mux *m);

/* Only from a service's callbacks: one message to the peer's service of
 * the same id, sealed (an AUTH frame follows). QKD_ERR_RANGE when body is
 * larger than QKD_MUX_FRAME_MAX - QKD_MUX_HEADER_LEN; QKD_ERR_INVAL
 * outside a callback or for an unregistered id. */
int qkd_mux_send(struct qkd_mux *m, uint8_t service, uint8_t type, const uint8_t *body,
		 size_t len);

/* Why the last failure of this connection's service traffic happened,
 * or NULL; cleared by attach. */
const char *qkd_mux_error(const struct qkd_mux *m);

/* Service messages sent and delivered, and those dropped as unknown. */
struct qkd_mux_stats {
	uint64_t sent, delivered, unknown;
};
void qkd_mux_get_stats(const struct qkd_mux *m, struct qkd_mux_stats *out);

/* --- For the channel (lib/core/channel.c) ------------------------------- */

/* Whether a wake is pending or QKD_MUX_TICK_MS passed since the last
 * pumps (cheap: an atomic load and the monotonic clock). */
bool qkd_mux_pending(const struct qkd_mux *m);
/* The fd that becomes readable on a wake (poll it beside the socket). */
int qkd_mux_wake_fd(const struct qkd_mux *m);
/* Clear the wake and run every service's pump. */
int qkd_mux_run(struct qkd_mux *m);
/* An authenticated SERVICE frame's payload: check the header, deliver. */
int qkd_mux_deliver(struct qkd_mux *m, const uint8_t *p, size_t len);
/* Record why a service frame was refused (static text). */
void qkd_mux_fail(struct qkd_mux *m, const char *why);

#endif
