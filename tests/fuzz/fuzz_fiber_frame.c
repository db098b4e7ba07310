/* libFuzzer target: the fiber frame parser (lib/optical/fiber_frame.c,
 * docs/fiber.md s2) and what consumes a parsed frame.
 *
 * The first input byte picks the path: even, the rest is one frame body for
 * qkd_fiber_frame_read; odd, the rest is a byte stream on a socketpair read
 * with qkd_fiber_recv until an error. Every frame that parses must write
 * back and parse to the same frame, and then goes through Eve
 * (intercept-resend) and Bob's detector, which must accept it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/fiber.h"
#include "qkd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct qkd_detector *det;
static struct qkd_fiber_eve *eve;

static void setup(void)
{
	struct qkd_link_params lp;
	uint8_t key[QKD_FIBER_KEY_BYTES] = { 7 };

	if (det != NULL)
		return;
	qkd_link_params_default(&lp);
	lp.distance_km = 0;	/* every pulse has a fair chance of a click */
	if (qkd_detector_new(&det, &lp, key) != QKD_OK ||
	    qkd_fiber_eve_new(&eve, QKD_EVE_INTERCEPT_RESEND, 0.5, key) != QKD_OK)
		abort();
}

static void same_or_die(const struct qkd_fiber_frame *a, const struct qkd_fiber_frame *b)
{
	if (a->round != b->round || a->first != b->first || a->slots != b->slots ||
	    a->last != b->last || a->n != b->n)
		abort();
	for (size_t i = 0; i < a->n; i++)
		if (a->p[i].slot != b->p[i].slot || a->p[i].photons != b->p[i].photons ||
		    a->p[i].state != b->p[i].state)
			abort();
}

/* A frame that parsed: round trip, then Eve and the detector. */
static void exercise(struct qkd_fiber_frame *f)
{
	struct qkd_fiber_frame g;
	struct qkd_bob_chunk c;
	struct qkd_wbuf w;
	struct qkd_rbuf r;

	qkd_fiber_frame_init(&g);
	qkd_wbuf_init(&w);
	qkd_fiber_frame_write(&w, f);
	if (w.err != 0 || w.len < 4)
		abort();
	qkd_rbuf_init(&r, w.p + 4, w.len - 4);
	if (qkd_fiber_frame_read(&r, &g) != QKD_OK)
		abort();
	same_or_die(f, &g);
	memset(&c, 0, sizeof c);
	if (qkd_fiber_eve_apply(eve, &g) != QKD_OK || qkd_detector_frame(det, &g, &c) != QKD_OK)
		abort();
	for (size_t i = 1; i < c.n; i++)
		if (c.slot[i] <= c.slot[i - 1] || c.slot[i] >= f->first + f->slots)
			abort();
	qkd_bob_chunk_cleanup(&c);
	qkd_wbuf_cleanup(&w);
	qkd_fiber_frame_cleanup(&g);
}

static void from_stream(const uint8_t *data, size_t size, struct qkd_fiber_frame *f)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return;
	if (write(sv[0], data, size) == (ssize_t)size) {
		close(sv[0]);
		sv[0] = -1;
		while (qkd_fiber_recv(sv[1], f) == QKD_OK)
			exercise(f);
	}
	if (sv[0] >= 0)
		close(sv[0]);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qkd_fiber_frame f;
	struct qkd_rbuf r;

	if (size < 1 || size > 65536)
		return 0;
	setup();
	qkd_fiber_frame_init(&f);
	if (data[0] & 1) {
		from_stream(data + 1, size - 1, &f);
	} else {
		qkd_rbuf_init(&r, data + 1, size - 1);
		if (qkd_fiber_frame_read(&r, &f) == QKD_OK)
			exercise(&f);
		else if (f.n != 0)
			abort();
	}
	qkd_fiber_frame_cleanup(&f);
	return 0;
}
