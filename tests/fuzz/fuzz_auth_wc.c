/* libFuzzer target: batch authentication of the classical channel
 * (lib/core/channel.c over the Wegman-Carter authenticator of
 * lib/proto/auth_wc.c), Alice and Bob, with the fuzzer as the man in the
 * middle. Each channel's fd is one end of a socketpair whose other end
 * (the "wire") the target holds; frames are relayed by hand, so they can
 * be dropped, corrupted or made up. The input is a script read with the
 * bounded reader; every op byte (mod 7) picks one of:
 *
 *   0 SEND     u8 flags (1: Bob sends, 2: drop, 4: flip), u8 type, u8 len,
 *              len payload bytes, and with flag 4: u16 offset, u8 mask
 *   1 SEAL     u8 flags as SEND (type and payload absent): an AUTH frame
 *   2 RECV     u8 party: one more receive
 *   3 CHECK    u8 party: qkd_channel_expect_seal
 *   4 INJECT   u8 party, u8 len, len raw bytes written to that party
 *   5 REFILL   u8 who (mod 3: both, Alice only, Bob only), u8 len, bytes
 *   6 DIRECT   u8 party, u32 index, u8 len, bytes, 8 tag bytes: a guess
 *              checked with qkd_wc_verify outside the channels
 *
 * Besides not crashing, it checks the promise of qkd/channel.h: once a
 * party has checked an AUTH frame, every frame it received before it is,
 * byte for byte, the frame its peer sent with that seq. A violation is a
 * forgery, which could happen by chance with probability about 2^-60:
 * never. All fds are non-blocking, so a forged length cannot stall the
 * target. */
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qkd/auth_wc.h"
#include "qkd/channel.h"
#include "qkd/error.h"
#include "qkd/sysutil.h"
#include "qkd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT 4096
#define MAX_LOG 512		/* frames logged per party; later ones are not checked */
#define BOOT_PADS 32

struct sent {
	const uint8_t *p;	/* payload, borrowed from the input */
	size_t len;
	uint8_t type;
};

struct got {
	uint8_t payload[256];
	size_t len;
	uint32_t seq;
	uint8_t type;
};

struct fz {
	struct qkd_wc *w[2];		/* 0 Alice, 1 Bob */
	struct qkd_channel ch[2];
	int fd[2], wire[2];		/* ch[i] uses fd[i]; its peer end is wire[i] */
	struct sent log[2][MAX_LOG];	/* frames party i sent, by seq */
	struct got pending[2][MAX_LOG];	/* frames party i received, not yet authenticated */
	size_t npending[2];
};

static int setup(struct fz *f)
{
	static const uint8_t session[QKD_CHANNEL_SESSION_LEN] = { 7 };
	uint8_t boot[QKD_WC_HASH_KEY_LEN + 2 * QKD_WC_PAD_LEN * BOOT_PADS];
	int sv[2];

	memset(f, 0, sizeof *f);
	f->fd[0] = f->fd[1] = f->wire[0] = f->wire[1] = -1;
	for (size_t i = 0; i < sizeof boot; i++)
		boot[i] = (uint8_t)(i * 37 + 11);
	for (int i = 0; i < 2; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
			return -1;
		f->fd[i] = sv[0];
		f->wire[i] = sv[1];
		(void)fcntl(sv[0], F_SETFL, O_NONBLOCK);
		(void)fcntl(sv[1], F_SETFL, O_NONBLOCK);
		if (qkd_wc_new(&f->w[i], boot, sizeof boot, i == 0) != QKD_OK)
			return -1;
		qkd_channel_init(&f->ch[i], f->fd[i], &qkd_auth_wc, f->w[i]);
		qkd_channel_bind(&f->ch[i], session);
	}
	return 0;
}

static void teardown(struct fz *f)
{
	for (int i = 0; i < 2; i++) {
		qkd_channel_cleanup(&f->ch[i]);
		qkd_wc_free(f->w[i]);
		if (f->fd[i] >= 0)
			close(f->fd[i]);
		if (f->wire[i] >= 0)
			close(f->wire[i]);
	}
}

/* Party j has checked an AUTH frame: what it received before must be
 * exactly what its peer sent. */
static void authenticated(struct fz *f, int j)
{
	for (size_t k = 0; k < f->npending[j]; k++) {
		const struct got *g = &f->pending[j][k];
		const struct sent *s;

		if (g->seq >= MAX_LOG || g->seq >= f->ch[!j].send_seq)
			abort();
		s = &f->log[!j][g->seq];
		if (s->type != g->type || s->len != g->len ||
		    (s->len > 0 && memcmp(s->p, g->payload, s->len) != 0))
			abort();
	}
	f->npending[j] = 0;
}

static void recv_one(struct fz *f, int j)
{
	uint64_t before = f->ch[j].auth_frames_recv;
	struct qkd_rbuf r;
	struct got *g;
	uint8_t type;
	int rc = qkd_channel_recv(&f->ch[j], &type, &r);

	/* AUTH frames checked inside recv come before the frame it returns. */
	if (f->ch[j].auth_frames_recv != before)
		authenticated(f, j);
	if (rc != QKD_OK || f->npending[j] >= MAX_LOG || qkd_rbuf_left(&r) > sizeof g->payload)
		return;
	g = &f->pending[j][f->npending[j]++];
	g->seq = f->ch[j].recv_seq - 1;
	g->type = type;
	g->len = qkd_rbuf_left(&r);
	memcpy(g->payload, r.p + r.off, g->len);
}

static void check_one(struct fz *f, int j)
{
	if (qkd_channel_expect_seal(&f->ch[j]) == QKD_OK)
		authenticated(f, j);
}

/* Move what party i just wrote (n bytes) to its peer, maybe flipped or
 * dropped. */
static void relay(struct fz *f, int i, size_t n, uint8_t flags, struct qkd_rbuf *in)
{
	uint8_t frame[4 + 6 + 255 + 4 + QKD_WC_TAG_LEN];

	if (n > sizeof frame || qkd_read_all(f->wire[i], frame, n) != QKD_OK)
		return;
	if (flags & 4) {
		uint16_t off = qkd_get_u16(in);
		uint8_t mask = qkd_get_u8(in);

		frame[off % n] ^= mask;
	}
	if (!(flags & 2))
		(void)qkd_write_all(f->wire[!i], frame, n);
}

static void op_send(struct fz *f, struct qkd_rbuf *in)
{
	uint8_t flags = qkd_get_u8(in), type = qkd_get_u8(in), len = qkd_get_u8(in);
	const uint8_t *payload = qkd_get_bytes(in, len);
	int i = flags & 1;
	uint32_t seq = f->ch[i].send_seq;
	uint64_t before = f->ch[i].bytes_sent;

	if (!qkd_rbuf_ok(in) || seq >= MAX_LOG ||
	    qkd_channel_send(&f->ch[i], type, payload, len) != QKD_OK)
		return;
	f->log[i][seq] = (struct sent){.p = payload, .len = len, .type = type};
	relay(f, i, (size_t)(f->ch[i].bytes_sent - before), flags, in);
}

static void op_seal(struct fz *f, struct qkd_rbuf *in)
{
	uint8_t flags = qkd_get_u8(in);
	int i = flags & 1;
	uint64_t before = f->ch[i].bytes_sent;

	if (!qkd_rbuf_ok(in) || qkd_channel_seal(&f->ch[i]) != QKD_OK ||
	    f->ch[i].bytes_sent == before)
		return;
	relay(f, i, (size_t)(f->ch[i].bytes_sent - before), flags, in);
}

static void op_inject(struct fz *f, struct qkd_rbuf *in)
{
	int j = qkd_get_u8(in) & 1;
	uint8_t len = qkd_get_u8(in);
	const uint8_t *p = qkd_get_bytes(in, len);

	if (qkd_rbuf_ok(in))
		(void)qkd_write_all(f->wire[j], p, len);
}

static void op_refill(struct fz *f, struct qkd_rbuf *in)
{
	int who = qkd_get_u8(in) % 3;
	uint8_t len = qkd_get_u8(in);
	const uint8_t *p = qkd_get_bytes(in, len);

	if (!qkd_rbuf_ok(in))
		return;
	if (who != 2)
		(void)qkd_wc_replenish(f->w[0], p, len);
	if (who != 1)
		(void)qkd_wc_replenish(f->w[1], p, len);
}

/* A guessed tag for a made-up message, outside the channels: any result
 * is allowed, but it must not disturb what the channels promise. */
static void op_direct(struct fz *f, struct qkd_rbuf *in)
{
	int i = qkd_get_u8(in) & 1;
	uint32_t index = qkd_get_u32(in);
	uint8_t len = qkd_get_u8(in), tag[QKD_WC_TAG_LEN];
	const uint8_t *msg = qkd_get_bytes(in, len);

	qkd_get_copy(in, tag, sizeof tag);
	if (qkd_rbuf_ok(in)) {
		int rc = qkd_wc_verify(f->w[i], index, msg, len, tag);

		(void)rc;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz state;	/* reused: a large allocation per input costs more than the run */
	struct fz *f = &state;
	struct qkd_rbuf in;

	if (size > MAX_INPUT)
		return 0;
	if (setup(f) != 0)
		goto out;
	qkd_rbuf_init(&in, data, size);
	while (qkd_rbuf_ok(&in) && qkd_rbuf_left(&in) > 0) {
		switch (qkd_get_u8(&in) % 7) {
		case 0: op_send(f, &in); break;
		case 1: op_seal(f, &in); break;
		case 2: recv_one(f, qkd_get_u8(&in) & 1); break;
		case 3: check_one(f, qkd_get_u8(&in) & 1); break;
		case 4: op_inject(f, &in); break;
		case 5: op_refill(f, &in); break;
		default: op_direct(f, &in); break;
		}
	}
out:
	teardown(f);
	return 0;
}
