/* libFuzzer target: the Wegman-Carter authenticator (lib/proto/auth_wc.c)
 * behind two qkd_channels, Alice and Bob, with the fuzzer as the man in the
 * middle. Each channel's fd is one end of a socketpair whose other end (the
 * "wire") the target holds; frames are relayed by hand, so they can be
 * dropped, corrupted or made up. The input is a script read with the
 * bounded reader; every op byte (mod 6) picks one of:
 *
 *   0 SEND     u8 flags (1: Bob sends, 2: drop, 4: flip), u8 type, u8 len,
 *              len payload bytes, and with flag 4: u16 offset, u8 mask
 *   1 RECV     u8 party: one more receive (drains leftovers)
 *   2 INJECT   u8 party, u8 len, len raw bytes written to that party
 *   3 REFILL   u8 who (mod 3: both, Alice only, Bob only), u8 len, bytes
 *   4 PAIR     u8 party, u32 seq, u8 len, bytes, u8 pos, u8 mask: the
 *              party tags, the other verifies the tag with one byte XORed
 *   5 VERIFY   u8 party, u32 seq, u8 len, bytes, 8 tag bytes
 *
 * Besides not crashing, it checks the authenticator's promise: a frame a
 * channel accepts is, byte for byte, the frame its peer sent with that seq,
 * and a tag with a flipped bit never verifies (either is a forgery, which
 * could happen by chance with probability about 2^-60: never). All fds
 * are non-blocking, so a forged length cannot stall the target. */
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
#define MAX_LOG 2048		/* > frames one input can send */
#define BOOT_PADS 32

struct sent {
	const uint8_t *p;	/* payload, borrowed from the input */
	size_t len;
	uint8_t type;
};

struct fz {
	struct qkd_wc *w[2];		/* 0 Alice, 1 Bob */
	struct qkd_channel ch[2];
	int fd[2], wire[2];		/* ch[i] uses fd[i]; its peer end is wire[i] */
	struct sent log[2][MAX_LOG];	/* frames party i sent, by seq */
};

static int setup(struct fz *f)
{
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

/* One receive by party j; an accepted frame must be one its peer sent. */
static void recv_one(struct fz *f, int j)
{
	const struct sent *s;
	struct qkd_rbuf r;
	uint8_t type;
	uint32_t seq;

	if (qkd_channel_recv(&f->ch[j], &type, &r) != QKD_OK)
		return;
	seq = f->ch[j].recv_seq - 1;
	if (seq >= MAX_LOG || seq >= f->ch[!j].send_seq)
		abort();
	s = &f->log[!j][seq];
	if (s->type != type || s->len != qkd_rbuf_left(&r) ||
	    (s->len > 0 && memcmp(s->p, r.p + r.off, s->len) != 0))
		abort();
}

static void op_send(struct fz *f, struct qkd_rbuf *in)
{
	uint8_t flags = qkd_get_u8(in), type = qkd_get_u8(in), len = qkd_get_u8(in);
	const uint8_t *payload = qkd_get_bytes(in, len);
	uint8_t frame[4 + 6 + 255 + QKD_WC_TAG_LEN];
	int i = flags & 1, j = !i;
	uint32_t seq = f->ch[i].send_seq;
	size_t n;

	if (!qkd_rbuf_ok(in) || seq >= MAX_LOG ||
	    qkd_channel_send(&f->ch[i], type, payload, len) != QKD_OK)
		return;
	f->log[i][seq] = (struct sent){.p = payload, .len = len, .type = type};
	n = f->ch[i].tx.len;
	if (n > sizeof frame || qkd_read_all(f->wire[i], frame, n) != QKD_OK)
		return;
	if (flags & 4) {
		uint16_t off = qkd_get_u16(in);
		uint8_t mask = qkd_get_u8(in);

		frame[off % n] ^= mask;
	}
	if (flags & 2)
		return;
	if (qkd_write_all(f->wire[j], frame, n) == QKD_OK)
		recv_one(f, j);
}

static void op_inject(struct fz *f, struct qkd_rbuf *in)
{
	int j = qkd_get_u8(in) & 1;
	uint8_t len = qkd_get_u8(in);
	const uint8_t *p = qkd_get_bytes(in, len);

	if (qkd_rbuf_ok(in) && qkd_write_all(f->wire[j], p, len) == QKD_OK)
		recv_one(f, j);
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

/* Direct use of the API, outside the channels (they share the pads). */
static void op_direct(struct fz *f, struct qkd_rbuf *in, bool pair)
{
	int i = qkd_get_u8(in) & 1;
	uint32_t seq = qkd_get_u32(in);
	uint8_t len = qkd_get_u8(in), tag[QKD_WC_TAG_LEN];
	const uint8_t *msg = qkd_get_bytes(in, len);
	uint8_t pos, mask;

	if (!pair) {
		qkd_get_copy(in, tag, sizeof tag);
		if (qkd_rbuf_ok(in)) {
			/* The tag is the fuzzer's guess: any result is allowed. */
			int rc = qkd_wc_verify(f->w[i], seq, msg, len, tag);

			(void)rc;
		}
		return;
	}
	pos = qkd_get_u8(in);
	mask = qkd_get_u8(in);
	if (!qkd_rbuf_ok(in) || qkd_wc_tag(f->w[i], seq, msg, len, tag) != QKD_OK)
		return;
	tag[pos % QKD_WC_TAG_LEN] ^= mask;
	if (qkd_wc_verify(f->w[!i], seq, msg, len, tag) == QKD_OK && mask != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *f;
	struct qkd_rbuf in;

	if (size > MAX_INPUT || (f = malloc(sizeof *f)) == NULL)
		return 0;
	if (setup(f) != 0)
		goto out;
	qkd_rbuf_init(&in, data, size);
	while (qkd_rbuf_ok(&in) && qkd_rbuf_left(&in) > 0) {
		switch (qkd_get_u8(&in) % 6) {
		case 0: op_send(f, &in); break;
		case 1: recv_one(f, qkd_get_u8(&in) & 1); break;
		case 2: op_inject(f, &in); break;
		case 3: op_refill(f, &in); break;
		case 4: op_direct(f, &in, true); break;
		default: op_direct(f, &in, false); break;
		}
	}
out:
	teardown(f);
	free(f);
	return 0;
}
