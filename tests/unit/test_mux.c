/* test_mux.c - services on a link's authenticated channel (lib/core/mux.c,
 * the service paths of lib/core/channel.c; qkd/mux.h, docs/protocol.md
 * "Services on a link").
 *
 * Two channels over a socketpair, each with a multiplexer carrying an
 * "echo" service: PING is answered by PONG. The checks: service messages
 * go between engine messages in both directions and the engine never sees
 * them; a service's AUTH that closed the engine's open batch satisfies the
 * receiver's expect_seal, and the sender's own seal then sends nothing;
 * pump keeps an engine frame for the next receive; a wake from another
 * thread reaches a link thread blocked in a receive; an unknown service
 * or type is dropped and logged and the channel goes on; an oversized
 * service frame, one without its AUTH frame, and one tampered with on the
 * wire (Wegman-Carter) are refused before any handler sees them; the
 * registry and send rules. Every wait is bounded (socket timeouts, counted
 * loops).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "qkd/auth_wc.h"
#include "qkd/channel.h"
#include "qkd/error.h"
#include "qkd/log.h"
#include "qkd/mux.h"
#include "qkd/sysutil.h"
#include "qkd/wire.h"

#define ECHO 5
#define PING 1
#define PONG 2
#define MSG_M 1			/* an engine message type (qkd/msg.h's HELLO) */

struct echo {
	int to_send;		/* PINGs the next pump sends */
	int pings, pongs;	/* delivered */
	uint32_t last;		/* the last PONG's counter */
};

struct side {
	struct qkd_channel ch;
	struct qkd_mux *mux;
	struct echo e;
};

struct wc_fix;

struct fix {
	int sv[2];
	struct side a, b;
	struct qkd_logger log;
	char logged[1024];
	pthread_mutex_t lock;
	struct wc_fix *wc;	/* the authenticators, for the Wegman-Carter tests */
};

static void log_write(void *ctx, enum qkd_log_level level, const char *line)
{
	struct fix *f = ctx;

	(void)level;
	pthread_mutex_lock(&f->lock);
	snprintf(f->logged, sizeof f->logged, "%s", line);
	pthread_mutex_unlock(&f->lock);
}

static int echo_deliver(void *ctx, struct qkd_mux *m, uint8_t type, struct qkd_rbuf *body,
			const char **why)
{
	struct echo *e = ctx;
	uint32_t n = qkd_get_u32(body);
	uint8_t out[4];

	if (!qkd_rbuf_done(body)) {
		*why = "malformed echo message";
		return QKD_ERR_PROTO;
	}
	if (type == PONG) {
		e->pongs++;
		e->last = n;
		return QKD_OK;
	}
	e->pings++;
	out[0] = (uint8_t)(n >> 24);
	out[1] = (uint8_t)(n >> 16);
	out[2] = (uint8_t)(n >> 8);
	out[3] = (uint8_t)n;
	return qkd_mux_send(m, ECHO, PONG, out, sizeof out);
}

static int echo_pump(void *ctx, struct qkd_mux *m, const char **why)
{
	struct echo *e = ctx;
	int rc = QKD_OK;

	(void)why;
	for (; rc == QKD_OK && e->to_send > 0; e->to_send--) {
		uint8_t n[4] = { 0, 0, 0, (uint8_t)e->to_send };

		rc = qkd_mux_send(m, ECHO, PING, n, sizeof n);
	}
	return rc;
}

static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = 10 };

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
}

static void side_init(struct fix *f, struct side *s, int fd, const char *name,
		      const struct qkd_auth_ops *auth, void *auth_ctx)
{
	struct qkd_service svc = { .name = "echo", .id = ECHO, .ntypes = 2,
				   .deliver = echo_deliver, .pump = echo_pump, .ctx = &s->e };

	qkd_channel_init(&s->ch, fd, auth, auth_ctx);
	assert_int_equal(qkd_mux_new(&s->mux, name, &f->log), QKD_OK);
	assert_int_equal(qkd_mux_register(s->mux, &svc), QKD_OK);
	qkd_mux_attach(s->mux, &s->ch);
}

static void side_cleanup(struct side *s)
{
	qkd_mux_detach(s->mux);
	qkd_mux_free(s->mux);
	qkd_channel_cleanup(&s->ch);
}

static int setup_with(void **state, const struct qkd_auth_ops *auth, void *actx, void *bctx)
{
	struct fix *f = calloc(1, sizeof *f);

	if (f == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, f->sv) != 0)
		return -1;
	set_timeouts(f->sv[0]);
	set_timeouts(f->sv[1]);
	pthread_mutex_init(&f->lock, NULL);
	f->log.write = log_write;
	f->log.ctx = f;
	f->log.level = QKD_LOG_DEBUG;
	side_init(f, &f->a, f->sv[0], "a", auth, actx);
	side_init(f, &f->b, f->sv[1], "b", auth, bctx);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, NULL, NULL, NULL);
}

static int teardown(void **state)
{
	struct fix *f = *state;

	side_cleanup(&f->a);
	side_cleanup(&f->b);
	if (f->sv[0] >= 0)
		close(f->sv[0]);
	if (f->sv[1] >= 0)
		close(f->sv[1]);
	pthread_mutex_destroy(&f->lock);
	free(f);
	return 0;
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

/* A service message goes between two engine messages, and the answer to
 * it comes back while the sender waits for nothing of the engine's. */
static void test_between_engine_messages(void **state)
{
	struct fix *f = *state;
	struct qkd_mux_stats st;
	struct qkd_rbuf r;
	uint8_t type = 0;

	assert_int_equal(qkd_channel_send(&f->a.ch, MSG_M, (const uint8_t *)"m1", 2), QKD_OK);
	f->a.e.to_send = 1;
	qkd_mux_wake(f->a.mux);
	/* The wake is served before the next engine frame goes. */
	assert_int_equal(qkd_channel_send(&f->a.ch, MSG_M, (const uint8_t *)"m2", 2), QKD_OK);
	assert_int_equal(qkd_channel_seal(&f->a.ch), QKD_OK);
	/* Bob's engine sees m1, m2 and the seal; the PING on the way. */
	assert_int_equal(qkd_channel_recv(&f->b.ch, &type, &r), QKD_OK);
	assert_int_equal(type, MSG_M);
	assert_memory_equal(qkd_get_bytes(&r, 2), "m1", 2);
	assert_int_equal(f->b.e.pings, 0);
	assert_int_equal(qkd_channel_recv(&f->b.ch, &type, &r), QKD_OK);
	assert_int_equal(type, MSG_M);
	assert_memory_equal(qkd_get_bytes(&r, 2), "m2", 2);
	assert_int_equal(f->b.e.pings, 1);
	assert_int_equal(qkd_channel_expect_seal(&f->b.ch), QKD_OK);
	/* The PONG reaches Alice in a pump, engine-free. */
	assert_int_equal(qkd_channel_pump(&f->a.ch), QKD_OK);
	assert_int_equal(f->a.e.pongs, 1);
	assert_int_equal(f->a.e.last, 1);
	assert_false(readable(f->sv[0]) || readable(f->sv[1]));
	qkd_mux_get_stats(f->a.mux, &st);
	assert_true(st.sent == 1 && st.delivered == 1 && st.unknown == 0);
	/* Alice: PING's AUTH, then the engine's; Bob: PONG's. */
	assert_int_equal(f->a.ch.auth_frames_sent, 2);
	assert_int_equal(f->b.ch.auth_frames_sent, 1);
}

/* A service's AUTH closes the engine's open batch: the receiver's
 * expect_seal is satisfied by it, and the sender's seal sends nothing. */
static void test_service_seal_closes_batch(void **state)
{
	struct fix *f = *state;
	struct qkd_rbuf r;
	uint8_t type = 0;

	assert_int_equal(qkd_channel_send(&f->a.ch, MSG_M, (const uint8_t *)"m1", 2), QKD_OK);
	f->a.e.to_send = 1;
	qkd_mux_wake(f->a.mux);
	assert_int_equal(qkd_channel_pump(&f->a.ch), QKD_OK);	/* PING + AUTH */
	assert_int_equal(qkd_channel_seal(&f->a.ch), QKD_OK);	/* nothing */
	assert_int_equal(f->a.ch.auth_frames_sent, 1);
	assert_int_equal(qkd_channel_recv(&f->b.ch, &type, &r), QKD_OK);
	assert_int_equal(type, MSG_M);
	assert_int_equal(qkd_channel_expect_seal(&f->b.ch), QKD_OK);
	assert_int_equal(f->b.e.pings, 1);
	/* the payload returned last is still readable after it */
	assert_memory_equal(qkd_get_bytes(&r, 2), "m1", 2);
	assert_false(readable(f->sv[1]));
}

/* pump meets an engine frame: it keeps it for the next receive. */
static void test_pump_holds_engine_frame(void **state)
{
	struct fix *f = *state;
	struct qkd_rbuf r;
	uint8_t type = 0;

	assert_int_equal(qkd_channel_send_sealed(&f->a.ch, MSG_M, (const uint8_t *)"x", 1),
			 QKD_OK);
	f->a.e.to_send = 2;
	qkd_mux_wake(f->a.mux);
	assert_int_equal(qkd_channel_pump(&f->a.ch), QKD_OK);
	assert_int_equal(qkd_channel_pump(&f->b.ch), QKD_OK);
	assert_true(f->b.ch.held);
	assert_int_equal(f->b.e.pings, 0);	/* behind the held frame */
	assert_int_equal(qkd_channel_recv(&f->b.ch, &type, &r), QKD_OK);
	assert_int_equal(type, MSG_M);
	assert_int_equal(qkd_channel_expect_seal(&f->b.ch), QKD_OK);	/* its AUTH */
	assert_int_equal(qkd_channel_pump(&f->b.ch), QKD_OK);
	assert_int_equal(f->b.e.pings, 2);
	assert_int_equal(qkd_channel_pump(&f->a.ch), QKD_OK);
	assert_int_equal(f->a.e.pongs, 2);
}

struct waker {
	struct fix *f;
	int rc;
	uint8_t type;
};

/* Alice's link thread: blocked in a receive that the engine's "done"
 * ends; services run meanwhile. */
static void *alice_recv(void *arg)
{
	struct waker *w = arg;
	struct qkd_rbuf r;

	w->rc = qkd_channel_recv(&w->f->a.ch, &w->type, &r);
	return NULL;
}

/* Another thread's wake reaches a link thread blocked in a receive. */
static void test_wake_while_blocked(void **state)
{
	struct fix *f = *state;
	struct waker w = { .f = f, .rc = 1 };
	pthread_t th;
	int i;

	assert_int_equal(pthread_create(&th, NULL, alice_recv, &w), 0);
	usleep(20000);
	f->a.e.to_send = 1;	/* read by the link thread after the wake */
	qkd_mux_wake(f->a.mux);
	for (i = 0; i < 500 && f->b.e.pings == 0; i++) {
		assert_int_equal(qkd_channel_pump(&f->b.ch), QKD_OK);
		usleep(2000);
	}
	assert_int_equal(f->b.e.pings, 1);
	assert_int_equal(qkd_channel_send_sealed(&f->b.ch, MSG_M, (const uint8_t *)"done", 4),
			 QKD_OK);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.rc, QKD_OK);
	assert_int_equal(w.type, MSG_M);
	assert_int_equal(f->a.e.pongs, 1);
}

/* Raw service payloads from a hand-made peer (Alice's side, detached). */
static void send_raw(struct fix *f, uint8_t id, uint8_t type, size_t body)
{
	uint8_t *p = calloc(1, body + 2);

	assert_non_null(p);
	p[0] = id;
	p[1] = type;
	assert_int_equal(qkd_channel_send_service(&f->a.ch, p, body + 2), QKD_OK);
	free(p);
}

/* A newer peer's messages: dropped, logged once, the channel goes on. */
static void test_unknown_dropped(void **state)
{
	struct fix *f = *state;
	struct qkd_mux_stats st;
	uint8_t ping[6] = { ECHO, PING, 0, 0, 0, 7 };

	send_raw(f, 9, 1, 4);		/* no such service */
	send_raw(f, ECHO, 3, 4);	/* no such type */
	send_raw(f, ECHO, 0, 4);	/* type 0 */
	assert_int_equal(qkd_channel_send_service(&f->a.ch, ping, sizeof ping), QKD_OK);
	assert_int_equal(qkd_channel_pump(&f->b.ch), QKD_OK);
	qkd_mux_get_stats(f->b.mux, &st);
	assert_int_equal(st.unknown, 3);
	assert_int_equal(st.delivered, 1);
	assert_int_equal(f->b.e.pings, 1);
	assert_non_null(strstr(f->logged, "service 9, type 1"));
	assert_non_null(strstr(f->logged, "does not have"));
	assert_null(qkd_mux_error(f->b.mux));
}

/* A frame too short for the service header ends the connection. */
static void test_short_refused(void **state)
{
	struct fix *f = *state;
	uint8_t one = ECHO;

	assert_int_equal(qkd_channel_send_service(&f->a.ch, &one, 1), QKD_OK);
	assert_int_equal(qkd_channel_pump(&f->b.ch), QKD_ERR_PROTO);
	assert_non_null(strstr(qkd_mux_error(f->b.mux), "too short"));
}

struct big {
	struct fix *f;
	int rc;
};

static void *send_big(void *arg)
{
	struct big *b = arg;
	size_t len = QKD_MUX_FRAME_MAX + 1;
	uint8_t *p = calloc(1, len);

	if (p == NULL) {
		b->rc = QKD_ERR_NOMEM;
		return NULL;
	}
	p[0] = ECHO;
	p[1] = PING;
	b->rc = qkd_channel_send_service(&b->f->a.ch, p, len);
	free(p);
	return NULL;
}

/* An oversized service frame is refused before any handler sees it, and
 * qkd_mux_send will not make one. */
static void test_oversized_refused(void **state)
{
	struct fix *f = *state;
	struct big b = { .f = f, .rc = 1 };
	struct qkd_rbuf r;
	uint8_t type = 0;
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, send_big, &b), 0);
	assert_int_equal(qkd_channel_recv(&f->b.ch, &type, &r), QKD_ERR_PROTO);
	assert_non_null(strstr(qkd_mux_error(f->b.mux), "larger than its bound"));
	assert_int_equal(f->b.e.pings, 0);
	shutdown(f->sv[1], SHUT_RDWR);	/* the sender may still be writing */
	assert_int_equal(pthread_join(th, NULL), 0);
}

/* A SERVICE frame must be followed by its AUTH frame. */
static void test_unsealed_refused(void **state)
{
	struct fix *f = *state;
	struct qkd_wbuf w;
	uint8_t body[6] = { ECHO, PING, 0, 0, 0, 1 };

	/* By hand: length, version, type, seq, payload; then an engine frame. */
	qkd_wbuf_init(&w);
	qkd_put_u32(&w, 6 + sizeof body);
	qkd_put_u8(&w, QKD_CHANNEL_VERSION);
	qkd_put_u8(&w, QKD_MSG_SERVICE);
	qkd_put_u32(&w, 0);
	qkd_put_bytes(&w, body, sizeof body);
	qkd_put_u32(&w, 6 + 1);
	qkd_put_u8(&w, QKD_CHANNEL_VERSION);
	qkd_put_u8(&w, MSG_M);
	qkd_put_u32(&w, 1);
	qkd_put_u8(&w, 'x');
	assert_int_equal(qkd_write_all(f->sv[0], w.p, w.len), QKD_OK);
	qkd_wbuf_cleanup(&w);
	assert_int_equal(qkd_channel_pump(&f->b.ch), QKD_ERR_PROTO);
	assert_non_null(strstr(qkd_mux_error(f->b.mux), "not sealed"));
	assert_int_equal(f->b.e.pings, 0);
}

/* Who may register and send what. */
static void test_rules(void **state)
{
	struct fix *f = *state;
	struct qkd_service s = { .name = "x", .id = ECHO, .ntypes = 1,
				 .deliver = echo_deliver, .pump = echo_pump };
	uint8_t b = 0;

	assert_int_equal(qkd_mux_register(f->a.mux, &s), QKD_ERR_INVAL);	/* taken */
	s.id = 0;
	assert_int_equal(qkd_mux_register(f->a.mux, &s), QKD_ERR_INVAL);
	s.id = 6;
	s.deliver = NULL;
	assert_int_equal(qkd_mux_register(f->a.mux, &s), QKD_ERR_INVAL);
	/* Outside a callback, or of a service not registered. */
	assert_int_equal(qkd_mux_send(f->a.mux, ECHO, PING, &b, 1), QKD_ERR_INVAL);
	/* The engine cannot send SERVICE or AUTH frames. */
	assert_int_equal(qkd_channel_send(&f->a.ch, QKD_MSG_SERVICE, &b, 1), QKD_ERR_INVAL);
	assert_int_equal(qkd_channel_send(&f->a.ch, QKD_MSG_AUTH, &b, 1), QKD_ERR_INVAL);
	assert_false(readable(f->sv[1]));
}

/* ---- with Wegman-Carter ---- */

struct wc_fix {
	uint8_t boot[QKD_WC_HASH_KEY_LEN + 2 * QKD_WC_PAD_LEN * 16];
	struct qkd_wc *wa, *wb;
};

static int setup_wc(void **state)
{
	struct wc_fix *w = calloc(1, sizeof *w);
	struct fix *f;
	int rc;

	if (w == NULL)
		return -1;
	for (size_t i = 0; i < sizeof w->boot; i++)
		w->boot[i] = (uint8_t)(i * 37 + 11);
	if (qkd_wc_new(&w->wa, w->boot, sizeof w->boot, true) != QKD_OK ||
	    qkd_wc_new(&w->wb, w->boot, sizeof w->boot, false) != QKD_OK)
		return -1;
	rc = setup_with(state, &qkd_auth_wc, w->wa, w->wb);
	if (rc != 0)
		return rc;
	f = *state;
	f->wc = w;
	return 0;
}

static int teardown_wc(void **state)
{
	struct fix *f = *state;
	struct wc_fix *w = f->wc;

	teardown(state);
	qkd_wc_free(w->wa);
	qkd_wc_free(w->wb);
	free(w);
	return 0;
}

/* A service message tampered with on the wire fails its tag: no handler
 * sees it. The same message untouched is delivered. */
static void test_tampered_refused(void **state)
{
	struct fix *f = *state;
	uint8_t buf[256];
	ssize_t n;
	int sv[2];

	f->a.e.to_send = 1;
	qkd_mux_wake(f->a.mux);
	assert_int_equal(qkd_channel_pump(&f->a.ch), QKD_OK);
	n = read(f->sv[1], buf, sizeof buf);
	assert_true(n > 20);
	/* Bob reads from a new pair that carries the bytes with one flipped
	 * in the PING's counter (its last payload byte, before the AUTH). */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	set_timeouts(sv[1]);
	buf[4 + 6 + 5] ^= 0x01;
	assert_int_equal(qkd_write_all(sv[0], buf, (size_t)n), QKD_OK);
	f->b.ch.fd = sv[1];
	assert_int_equal(qkd_channel_pump(&f->b.ch), QKD_ERR_VERIFY);
	assert_int_equal(f->b.e.pings, 0);
	f->b.ch.fd = f->sv[1];
	close(sv[0]);
	close(sv[1]);
}

static void test_wc_delivered(void **state)
{
	struct fix *f = *state;

	f->a.e.to_send = 3;
	qkd_mux_wake(f->a.mux);
	assert_int_equal(qkd_channel_pump(&f->a.ch), QKD_OK);
	assert_int_equal(qkd_channel_pump(&f->b.ch), QKD_OK);
	assert_int_equal(f->b.e.pings, 3);
	assert_int_equal(qkd_channel_pump(&f->a.ch), QKD_OK);
	assert_int_equal(f->a.e.pongs, 3);
	/* one pad per service message, each direction */
	assert_int_equal(f->a.ch.auth_frames_sent, 3);
	assert_int_equal(f->b.ch.auth_frames_sent, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_between_engine_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service_seal_closes_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pump_holds_engine_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wake_while_blocked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsealed_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampered_refused, setup_wc, teardown_wc),
		cmocka_unit_test_setup_teardown(test_wc_delivered, setup_wc, teardown_wc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
