/* libFuzzer target: service frames on the classical channel (qkd/mux.h,
 * lib/core/mux.c and the service paths of lib/core/channel.c). The input,
 * after its first byte, is written to one end of a socketpair and read at
 * the other by a channel with a multiplexer carrying one service (id 5,
 * types 1 and 2; type 1 is answered with a type 2 message), until an
 * error. The first byte's bit 0 picks the reader: the engine's
 * (qkd_channel_recv, with expect_seal after every frame of the caller's
 * when bit 1 is set) or the photon loop's (qkd_channel_pump). With
 * qkd_auth_none an AUTH frame is an index only, so the fuzzer reaches
 * delivery.
 *
 * Checks besides not crashing or leaking:
 * - a handler sees only its own id's types 1 and 2, with a body within
 *   the frame bound;
 * - nothing is delivered that an AUTH frame has not closed: deliveries
 *   never outnumber the AUTH frames taken in;
 * - a delivered type 1 is answered (the send path works mid-read);
 * - messages of other services or types are counted as unknown, never
 *   delivered, and do not end the connection. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "qkd/channel.h"
#include "qkd/error.h"
#include "qkd/mux.h"
#include "qkd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SVC 5
#define FRAMES_MAX 4096

static struct {
	uint64_t delivered, answered;
	struct qkd_channel *ch;
} g;

static int deliver(void *ctx, struct qkd_mux *m, uint8_t type, struct qkd_rbuf *body,
		   const char **why)
{
	(void)ctx;
	(void)why;
	if (type < 1 || type > 2 || qkd_rbuf_left(body) > QKD_MUX_FRAME_MAX - 2)
		abort();
	if (g.delivered + 1 > g.ch->auth_frames_recv)
		abort();	/* delivered before its AUTH */
	g.delivered++;
	if (type == 1 && qkd_mux_send(m, SVC, 2, (const uint8_t *)"ok", 2) == QKD_OK)
		g.answered++;
	return QKD_OK;
}

static int pump(void *ctx, struct qkd_mux *m, const char **why)
{
	(void)ctx;
	(void)m;
	(void)why;
	return QKD_OK;
}

static void read_all(struct qkd_channel *ch, uint8_t mode)
{
	for (int i = 0; i < FRAMES_MAX; i++) {
		struct qkd_rbuf r;
		uint8_t type;

		if (mode & 1) {
			if (qkd_channel_pump(ch) != QKD_OK)
				return;
			if (ch->held) {
				if (qkd_channel_recv(ch, &type, &r) != QKD_OK)
					return;
			} else if (qkd_channel_recv(ch, &type, &r) != QKD_OK) {
				return;	/* nothing waiting: EOF ends it */
			}
		} else if (qkd_channel_recv(ch, &type, &r) != QKD_OK) {
			return;
		}
		if (type == QKD_MSG_SERVICE)
			abort();	/* never the caller's */
		if ((mode & 2) && qkd_channel_expect_seal(ch) != QKD_OK)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qkd_service s = { .name = "fuzz", .id = SVC, .ntypes = 2,
				 .deliver = deliver, .pump = pump };
	struct timeval tv = { .tv_sec = 1 };
	struct qkd_mux_stats st;
	struct qkd_channel ch;
	struct qkd_mux *m;
	int sv[2];

	if (size < 1 || size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 0;
	signal(SIGPIPE, SIG_IGN);
	(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	(void)setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (write(sv[0], data + 1, size - 1) != (ssize_t)(size - 1) || shutdown(sv[0], SHUT_WR))
		goto out;
	if (qkd_mux_new(&m, "fuzz", NULL) != QKD_OK)
		goto out;
	if (qkd_mux_register(m, &s) != QKD_OK)
		abort();
	qkd_channel_init(&ch, sv[1], NULL, NULL);
	memset(&g, 0, sizeof g);
	g.ch = &ch;
	qkd_mux_attach(m, &ch);
	read_all(&ch, data[0]);
	qkd_mux_get_stats(m, &st);
	if (st.delivered != g.delivered || st.sent != g.answered)
		abort();
	qkd_mux_detach(m);
	qkd_mux_free(m);
	qkd_channel_cleanup(&ch);
out:
	close(sv[0]);
	close(sv[1]);
	return 0;
}
