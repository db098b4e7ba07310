/* fiber_frame.c - the wire format of the fiber socket (qkd/fiber.h,
 * docs/fiber.md s2): what physically travels from Alice's node to Bob's
 * (DESIGN.md section 3), one frame per block of slots.
 *
 * Frames carry Alice's encoded states, so every buffer holding one is
 * treated as secret and wiped. Everything read from the socket goes through
 * the bounded reader (STYLE.md habit 6) and is checked against the limits
 * of qkd/fiber.h before any memory is committed to it.
 */
#include "qkd/fiber.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "fiber_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"
#include "qkd/sysutil.h"

const uint8_t fib_zeros[FIB_ZEROS_BLOCKS * FIB_BLOCK_BYTES];

#define FRAME_FLAG_LAST 0x01u
#define MAX_PHOTONS 65535u
/* A pulse (docs/fiber.md s2, version 2) is one byte, 8 g + 4 m + state:
 * g the gap when below GAP_ESC, else GAP_ESC and a varint gap - GAP_ESC
 * follows; m = 1 when the pulse holds more than one photon, and a varint
 * photon number (2 .. 65535) follows. At mu = 0.1 about nine pulses in
 * ten are that one byte, a third of version 1's three. */
#define GAP_ESC 31u
#define PULSE_MULTI 0x04u
/* Smallest pulse encoding: the one byte. */
#define MIN_PULSE_BYTES 1u
/* Largest canonical pulse: the byte, gap - 31 < 2^24 (4 varint bytes),
 * photons <= 65535 (3 bytes); the header is far below 64 bytes. recv
 * refuses longer bodies before reading them. */
#define MAX_PULSE_BYTES 8u
#define MIN_BODY 6u
#define MAX_BODY (64u + MAX_PULSE_BYTES * QKD_FIBER_MAX_FRAME_PULSES)

void qkd_fiber_frame_init(struct qkd_fiber_frame *f)
{
	memset(f, 0, sizeof *f);
}

void qkd_fiber_frame_cleanup(struct qkd_fiber_frame *f)
{
	if (f == NULL)
		return;
	qkd_free_secret(f->p, f->cap * sizeof *f->p);
	qkd_fiber_frame_init(f);
}

int fib_frame_reserve(struct qkd_fiber_frame *f, size_t n)
{
	struct qkd_pulse *np;
	size_t cap;

	if (n <= f->cap)
		return QKD_OK;
	if (n > QKD_FIBER_MAX_FRAME_PULSES)
		return QKD_ERR_RANGE;
	cap = f->cap ? f->cap : 256;
	while (cap < n)
		cap *= 2;
	/* By copy, not realloc, so the old states can be wiped. */
	np = malloc(cap * sizeof *np);
	if (np == NULL)
		return QKD_ERR_NOMEM;
	if (f->n > 0)
		memcpy(np, f->p, f->n * sizeof *np);
	qkd_free_secret(f->p, f->cap * sizeof *f->p);
	f->p = np;
	f->cap = cap;
	return QKD_OK;
}

bool fib_frame_valid(const struct qkd_fiber_frame *f)
{
	uint64_t next;

	if (f->slots > QKD_FIBER_MAX_FRAME_SLOTS || f->first > QKD_PULSES_MAX - f->slots ||
	    f->n > QKD_FIBER_MAX_FRAME_PULSES || f->n > f->slots)
		return false;
	next = f->first;
	for (size_t i = 0; i < f->n; i++) {
		const struct qkd_pulse *p = &f->p[i];

		if (p->slot < next || p->slot - f->first >= f->slots || p->photons == 0 ||
		    p->state > 3)
			return false;
		next = p->slot + 1;
	}
	return true;
}

/* The LEB128 varint of x at p (room reserved); its length returned. */
static inline size_t varint_at(uint8_t *p, uint64_t x)
{
	size_t k = 0;

	while (x >= 0x80) {
		p[k++] = (uint8_t)(x | 0x80);
		x >>= 7;
	}
	p[k++] = (uint8_t)x;
	return k;
}

/* The pulses of f after its header (the gap counted from the end of the
 * previous pulse, so 0 for adjacent slots), checking fib_frame_valid's
 * per-pulse rules on the way: one pass over the pulses instead of a check
 * and then a write. w has room for MAX_PULSE_BYTES a pulse. False on a
 * pulse that breaks the rules. */
static bool write_pulses(struct qkd_wbuf *w, const struct qkd_fiber_frame *f)
{
	/* Locals: a byte store may alias any field, which would reload them. */
	const struct qkd_pulse *pp = f->p;
	uint64_t next = f->first, end = f->first + f->slots;
	uint8_t *out = w->p + w->len;
	size_t n = f->n, len = 0;

	for (size_t i = 0; i < n; i++) {
		const struct qkd_pulse p = pp[i];
		uint64_t gap = p.slot - next;
		unsigned esc = gap >= GAP_ESC, multi = p.photons > 1;

		if (p.slot < next || p.slot >= end || p.photons == 0 || p.state > 3) {
			qkd_wipe(out, len);	/* states written past w->len */
			return false;
		}
		out[len++] = (uint8_t)((esc ? GAP_ESC : gap) << 3 | multi << 2 | p.state);
		if (__builtin_expect(esc, 0))
			len += varint_at(out + len, gap - GAP_ESC);
		if (__builtin_expect(multi, 0))
			len += varint_at(out + len, p.photons);
		next = p.slot + 1;
	}
	w->len += len;
	return true;
}

/* docs/fiber.md s2: u32 body length, then version, round, first, slots,
 * flags, count, and the pulses (write_pulses). */
void qkd_fiber_frame_write(struct qkd_wbuf *w, const struct qkd_fiber_frame *f)
{
	size_t start = w->len, body;

	if (w->err != 0)
		return;
	if (f->slots > QKD_FIBER_MAX_FRAME_SLOTS || f->first > QKD_PULSES_MAX - f->slots ||
	    f->n > QKD_FIBER_MAX_FRAME_PULSES || f->n > f->slots) {
		w->err = QKD_ERR_INVAL;
		return;
	}
	/* Room for the longest encoding at once (a header below 64 bytes, then
	 * per pulse the byte, a 4-byte gap and 3-byte photons), so
	 * write_pulses never grows the buffer. */
	if (qkd_wbuf_reserve(w, 64 + f->n * MAX_PULSE_BYTES) != QKD_OK) {
		w->err = w->err != 0 ? w->err : QKD_ERR_RANGE;
		return;
	}
	qkd_put_u32(w, 0);	/* patched below, once the body's length is known */
	qkd_put_u8(w, QKD_FIBER_VERSION);
	qkd_put_varint(w, f->round);
	qkd_put_varint(w, f->first);
	qkd_put_varint(w, f->slots);
	qkd_put_u8(w, f->last ? FRAME_FLAG_LAST : 0);
	qkd_put_varint(w, f->n);
	if (w->err == 0 && !write_pulses(w, f)) {
		/* Nothing malformed leaves: drop what was written of it. */
		qkd_wipe(w->p + start, w->len - start);
		w->len = start;
		w->err = QKD_ERR_INVAL;
	}
	if (w->err != 0)
		return;
	body = w->len - start - 4;
	for (unsigned i = 0; i < 4; i++)
		w->p[start + i] = (uint8_t)(body >> (24 - 8 * i));
}

/* The pulses of a frame whose header r has just read; f->first/slots set.
 * Only the canonical encoding is accepted: a photon number follows the
 * byte only when it is 2 or more. */
static void read_pulses(struct qkd_rbuf *r, struct qkd_fiber_frame *f, size_t count)
{
	uint64_t next = f->first, room = f->slots;
	size_t i;

	for (i = 0; i < count; i++) {
		unsigned b = qkd_get_u8(r);
		uint64_t gap = b >> 3, photons = 1;

		/* The gap is bounded by the room left, so slot stays in range. */
		if (__builtin_expect(gap == GAP_ESC, 0))
			gap += qkd_get_count(r, room);
		if (__builtin_expect(b & PULSE_MULTI, 0)) {
			photons = qkd_get_count(r, MAX_PHOTONS);
			if (photons < 2)
				qkd_rbuf_fail(r, QKD_ERR_PROTO);
		}
		if (!qkd_rbuf_ok(r))
			break;
		if (gap >= room) {
			qkd_rbuf_fail(r, QKD_ERR_PROTO);
			break;
		}
		f->p[i].slot = next + gap;
		f->p[i].photons = (uint16_t)photons;
		f->p[i].state = (uint8_t)(b & 3);
		next += gap + 1;
		room -= gap + 1;
	}
	f->n = i;	/* the pulses stored: the caller wipes them on error */
}

int qkd_fiber_frame_read(struct qkd_rbuf *r, struct qkd_fiber_frame *f)
{
	uint64_t count;
	uint8_t flags;
	int rc;

	f->n = 0;
	if (qkd_get_u8(r) != QKD_FIBER_VERSION)
		qkd_rbuf_fail(r, QKD_ERR_PROTO);
	f->round = qkd_get_varint(r);
	f->first = qkd_get_count(r, QKD_PULSES_MAX);
	f->slots = qkd_get_count(r, QKD_FIBER_MAX_FRAME_SLOTS);
	flags = qkd_get_u8(r);
	count = qkd_get_count(r, QKD_FIBER_MAX_FRAME_PULSES);
	if (qkd_rbuf_ok(r) && (f->first > QKD_PULSES_MAX - f->slots ||
			       (flags & ~FRAME_FLAG_LAST) != 0 || count > f->slots ||
			       count > qkd_rbuf_left(r) / MIN_PULSE_BYTES))
		qkd_rbuf_fail(r, QKD_ERR_PROTO);
	if (!qkd_rbuf_ok(r)) {
		rc = QKD_ERR_PROTO;
		goto out;
	}
	f->last = (flags & FRAME_FLAG_LAST) != 0;
	rc = fib_frame_reserve(f, (size_t)count);
	if (rc != QKD_OK)
		goto out;
	read_pulses(r, f, (size_t)count);
	rc = qkd_rbuf_done(r) ? QKD_OK : QKD_ERR_PROTO;
out:
	if (rc != QKD_OK && f->n > 0) {
		qkd_wipe(f->p, f->n * sizeof *f->p);
		f->n = 0;
	}
	return rc;
}

/* send(2) with MSG_NOSIGNAL: a peer that went away is an error to report,
 * not a SIGPIPE that kills the node. Plain write for non-sockets. */
static int send_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == ENOTSOCK)
			return qkd_write_all(fd, p, n);
		if (w <= 0)
			return QKD_ERR_IO;
		p += w;
		n -= (size_t)w;
	}
	return QKD_OK;
}

int qkd_fiber_send(int fd, const struct qkd_fiber_frame *f)
{
	struct qkd_wbuf w;
	int rc;

	qkd_wbuf_init_secret(&w);
	qkd_fiber_frame_write(&w, f);
	rc = w.err != 0 ? w.err : send_all(fd, w.p, w.len);
	qkd_wbuf_cleanup(&w);
	return rc;
}

/* Read a body of len bytes into w, growing with the bytes that actually
 * arrive (a forged length costs the sender as much memory as us). */
static int read_body(int fd, struct qkd_wbuf *w, size_t len)
{
	int rc = QKD_OK;

	while (rc == QKD_OK && w->len < len) {
		size_t step = len - w->len;

		if (step > ((size_t)1 << 20) && step > w->len)
			step = w->len > ((size_t)1 << 20) ? w->len : (size_t)1 << 20;
		rc = qkd_wbuf_reserve(w, step);
		if (rc == QKD_OK)
			rc = qkd_read_all(fd, w->p + w->len, step);
		if (rc == QKD_OK)
			w->len += step;
	}
	return rc == QKD_ERR_EOF ? QKD_ERR_PROTO : rc;
}

int qkd_fiber_recv(int fd, struct qkd_fiber_frame *f)
{
	struct qkd_wbuf w;
	struct qkd_rbuf r;
	uint8_t lenb[4];
	size_t len;
	int rc;

	qkd_wbuf_init_secret(&w);
	f->n = 0;
	/* EOF before a frame starts is a clean close; inside one, truncation. */
	rc = qkd_read_all(fd, lenb, 1);
	if (rc == QKD_OK) {
		rc = qkd_read_all(fd, lenb + 1, 3);
		if (rc == QKD_ERR_EOF)
			rc = QKD_ERR_PROTO;
	}
	if (rc != QKD_OK)
		goto out;
	len = (size_t)lenb[0] << 24 | (size_t)lenb[1] << 16 | (size_t)lenb[2] << 8 | lenb[3];
	if (len < MIN_BODY || len > MAX_BODY) {
		rc = QKD_ERR_PROTO;
		goto out;
	}
	rc = read_body(fd, &w, len);
	if (rc != QKD_OK)
		goto out;
	qkd_rbuf_init(&r, w.p, w.len);
	rc = qkd_fiber_frame_read(&r, f);
out:
	qkd_wbuf_cleanup(&w);
	return rc;
}

void qkd_fiber_key_random(uint8_t key[QKD_FIBER_KEY_BYTES])
{
	/* The system generator (getrandom), which randombytes_buf uses with or
	 * without sodium_init. */
	randombytes_buf(key, QKD_FIBER_KEY_BYTES);
}
