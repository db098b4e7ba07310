/* test_fiber.c - the quantum channel between node processes (qkd/fiber.h,
 * docs/fiber.md): the frame format and its parser's bounds, Alice's emitter,
 * Bob's detector against the closed forms of DESIGN.md section 3
 * (qkd_link_expected), and Eve on the fiber. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "qkd/bits.h"
#include "qkd/error.h"
#include "qkd/fiber.h"
#include "qkd/optical.h"
#include "qkd/source.h"
#include "qkd/wire.h"

#include "../../lib/optical/fiber_int.h"

#define KSIGMA 5.0
#define FRAME_SLOTS ((uint64_t)1 << 20)

/* ---- helpers ---------------------------------------------------------- */

static void near(const char *what, double obs, double expect, double sigma)
{
	double tol = KSIGMA * sigma + 1e-12;

	if (!(fabs(obs - expect) <= tol))
		fail_msg("%s: observed %.6g, expected %.6g (+- %.3g)", what, obs, expect, tol);
}

/* A binomial proportion k/n against p, within KSIGMA. */
static void near_prop(const char *what, uint64_t k, uint64_t n, double p)
{
	assert_true(n > 0);
	near(what, (double)k / (double)n, p, sqrt(p * (1 - p) / (double)n));
}

static void key_of(uint8_t key[QKD_FIBER_KEY_BYTES], uint8_t tag)
{
	for (unsigned i = 0; i < QKD_FIBER_KEY_BYTES; i++)
		key[i] = (uint8_t)(tag * 31 + i);
}

static struct qkd_link_params link_default(void)
{
	struct qkd_link_params p;

	qkd_link_params_default(&p);
	return p;
}

static struct qkd_emitter *emitter_of(const struct qkd_link_params *p, uint8_t tag)
{
	uint8_t key[QKD_FIBER_KEY_BYTES];
	struct qkd_emitter *e = NULL;

	key_of(key, tag);
	assert_int_equal(qkd_emitter_new(&e, p, key), QKD_OK);
	return e;
}

static struct qkd_detector *detector_of(const struct qkd_link_params *p, uint8_t tag)
{
	uint8_t key[QKD_FIBER_KEY_BYTES];
	struct qkd_detector *d = NULL;

	key_of(key, tag);
	assert_int_equal(qkd_detector_new(&d, p, key), QKD_OK);
	return d;
}

static struct qkd_fiber_eve *eve_of(enum qkd_eve_attack a, double frac, uint8_t tag)
{
	uint8_t key[QKD_FIBER_KEY_BYTES];
	struct qkd_fiber_eve *e = NULL;

	key_of(key, tag);
	assert_int_equal(qkd_fiber_eve_new(&e, a, frac, key), QKD_OK);
	return e;
}

/* Alice's state (2 basis + value) at slots[0..n) through her source. */
static void alice_states(const struct qkd_emitter *e, const uint64_t *slots, size_t n,
			 uint8_t *state)
{
	struct qkd_alice_source ops;
	struct qkd_bits b, v, ok;

	qkd_emitter_alice_source(e, &ops);
	assert_int_equal(qkd_bits_init(&b, n), QKD_OK);
	assert_int_equal(qkd_bits_init(&v, n), QKD_OK);
	assert_int_equal(qkd_bits_init(&ok, n), QKD_OK);
	assert_int_equal(ops.lookup(ops.ctx, slots, n, &b, &v, &ok), QKD_OK);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(qkd_bits_get(&ok, i), 1);
		state[i] = (uint8_t)(2 * qkd_bits_get(&b, i) + qkd_bits_get(&v, i));
	}
	qkd_bits_cleanup(&b);
	qkd_bits_cleanup(&v);
	qkd_bits_cleanup(&ok);
}

/* Counts of one emitter -> (Eve) -> detector run. */
struct run {
	uint64_t slots, pulses, clicks, sifted, errors, doubles;
};

/* Sift one chunk of Bob's against Alice's lookup. */
static void sift_chunk(const struct qkd_emitter *em, const struct qkd_bob_chunk *c,
		       struct run *r)
{
	uint8_t *st = malloc(c->n ? c->n : 1);

	assert_non_null(st);
	alice_states(em, c->slot, c->n, st);
	for (size_t i = 0; i < c->n; i++) {
		if ((unsigned)(st[i] >> 1) != qkd_bits_get(&c->basis, i))
			continue;
		r->sifted++;
		r->errors += (st[i] & 1u) != qkd_bits_get(&c->value, i);
	}
	r->clicks += c->n;
	r->doubles += c->double_clicks;
	free(st);
}

static void run_link(const struct qkd_link_params *p, struct qkd_fiber_eve *eve,
		     uint64_t slots, struct run *r)
{
	struct qkd_emitter *em = emitter_of(p, 1);
	struct qkd_detector *det = detector_of(p, 2);
	struct qkd_fiber_frame f;

	memset(r, 0, sizeof *r);
	qkd_fiber_frame_init(&f);
	for (uint64_t first = 0; first < slots; first += FRAME_SLOTS) {
		struct qkd_bob_chunk c;
		uint64_t n = slots - first < FRAME_SLOTS ? slots - first : FRAME_SLOTS;

		memset(&c, 0, sizeof c);
		assert_int_equal(qkd_emitter_chunk(em, first, n, &f), QKD_OK);
		if (eve != NULL)
			assert_int_equal(qkd_fiber_eve_apply(eve, &f), QKD_OK);
		r->pulses += f.n;
		assert_int_equal(qkd_detector_frame(det, &f, &c), QKD_OK);
		sift_chunk(em, &c, r);
		qkd_bob_chunk_cleanup(&c);
	}
	r->slots = slots;
	qkd_fiber_frame_cleanup(&f);
	qkd_detector_free(det);
	qkd_emitter_free(em);
}

/* The key physics check: clicks per slot and sifted QBER as predicted. */
static void check_link(const char *what, const struct run *r, double pc, double q)
{
	char buf[128];

	snprintf(buf, sizeof buf, "%s: click probability", what);
	near_prop(buf, r->clicks, r->slots, pc);
	snprintf(buf, sizeof buf, "%s: QBER", what);
	near_prop(buf, r->errors, r->sifted, q);
	/* Half the clicks sift with p_x = 1/2. */
	snprintf(buf, sizeof buf, "%s: sifted fraction", what);
	near_prop(buf, r->sifted, r->clicks, 0.5);
}

/* ---- frames ----------------------------------------------------------- */

static void frame_fill(struct qkd_fiber_frame *f, uint64_t first, uint64_t slots,
		       const struct qkd_pulse *p, size_t n)
{
	qkd_fiber_frame_cleanup(f);
	f->round = 77;
	f->first = first;
	f->slots = slots;
	f->last = true;
	f->n = f->cap = n;
	f->p = calloc(n ? n : 1, sizeof *f->p);
	assert_non_null(f->p);
	if (n > 0)
		memcpy(f->p, p, n * sizeof *p);
}

static void assert_frames_equal(const struct qkd_fiber_frame *a, const struct qkd_fiber_frame *b)
{
	assert_true(a->round == b->round && a->first == b->first && a->slots == b->slots);
	assert_int_equal(a->last, b->last);
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		assert_true(a->p[i].slot == b->p[i].slot);
		assert_int_equal(a->p[i].photons, b->p[i].photons);
		assert_int_equal(a->p[i].state, b->p[i].state);
	}
}

/* Write f, check the length prefix, parse the body back into g. */
static void roundtrip(const struct qkd_fiber_frame *f, struct qkd_fiber_frame *g)
{
	struct qkd_wbuf w;
	struct qkd_rbuf r;
	uint32_t len;

	qkd_wbuf_init(&w);
	qkd_fiber_frame_write(&w, f);
	assert_int_equal(w.err, 0);
	assert_true(w.len >= 4);
	len = (uint32_t)w.p[0] << 24 | (uint32_t)w.p[1] << 16 | (uint32_t)w.p[2] << 8 | w.p[3];
	assert_int_equal(len, w.len - 4);
	qkd_rbuf_init(&r, w.p + 4, w.len - 4);
	assert_int_equal(qkd_fiber_frame_read(&r, g), QKD_OK);
	assert_frames_equal(f, g);
	qkd_wbuf_cleanup(&w);
}

static void test_frame_roundtrip(void **state)
{
	static const struct qkd_pulse p[] = {
		{ 1000, 1, 0 }, { 1001, 2, 1 }, { 1002, 65535, 2 }, { 5000, 3, 3 },
		{ 1000 + FRAME_SLOTS - 1, 1, 1 },
	};
	struct qkd_fiber_frame f, g;

	(void)state;
	qkd_fiber_frame_init(&f);
	qkd_fiber_frame_init(&g);
	frame_fill(&f, 1000, FRAME_SLOTS, p, 5);
	roundtrip(&f, &g);
	frame_fill(&f, 0, 0, NULL, 0);			/* an empty closing frame */
	roundtrip(&f, &g);
	f.last = false;
	f.round = UINT64_MAX;
	roundtrip(&f, &g);
	/* The largest range: slots up to the bound, ending at QKD_PULSES_MAX. */
	frame_fill(&f, QKD_PULSES_MAX - QKD_FIBER_MAX_FRAME_SLOTS, QKD_FIBER_MAX_FRAME_SLOTS, NULL, 0);
	roundtrip(&f, &g);
	/* An emitter frame, including many pulses. */
	{
		struct qkd_link_params lp = link_default();
		struct qkd_emitter *em;

		lp.mu = 2.0;
		em = emitter_of(&lp, 9);
		assert_int_equal(qkd_emitter_chunk(em, 12345, 100000, &f), QKD_OK);
		assert_true(f.n > 80000);
		roundtrip(&f, &g);
		qkd_emitter_free(em);
	}
	qkd_fiber_frame_cleanup(&f);
	qkd_fiber_frame_cleanup(&g);
}

/* A frame body written field by field, so each field can be corrupted.
 * A pulse is written as docs/fiber.md s2 (version 2) says: the byte
 * 8 min(gap, 31) + 4 m + state, then gap - 31 if gap >= 31, then the
 * photon number if m; m is set when photons != 1, or forced by `multi`
 * (a non-canonical single photon). `byte_or` ORs bits into the byte. */
struct raw {
	unsigned version;
	uint64_t round, first, slots;
	unsigned flags;
	uint64_t count;
	size_t np;
	uint64_t pulse[4][3];	/* gap, photons, state */
	int trailing;		/* extra bytes */
	bool multi[4];
};

static struct raw raw_ok(void)
{
	struct raw r = { 2, 5, 100, 64, 1, 3, 3,
			 { { 0, 1, 0 }, { 5, 2, 3 }, { 40, 65535, 1 } }, 0, { false } };

	return r;
}

static void raw_write(struct qkd_wbuf *w, const struct raw *r)
{
	qkd_put_u8(w, (uint8_t)r->version);
	qkd_put_varint(w, r->round);
	qkd_put_varint(w, r->first);
	qkd_put_varint(w, r->slots);
	qkd_put_u8(w, (uint8_t)r->flags);
	qkd_put_varint(w, r->count);
	for (size_t i = 0; i < r->np; i++) {
		uint64_t gap = r->pulse[i][0], photons = r->pulse[i][1];
		bool m = photons != 1 || r->multi[i];

		qkd_put_u8(w, (uint8_t)((gap < 31 ? gap : 31) << 3 | (m ? 4 : 0) |
					(r->pulse[i][2] & 3)));
		if (gap >= 31)
			qkd_put_varint(w, gap - 31);
		if (m)
			qkd_put_varint(w, photons);
	}
	for (int i = 0; i < r->trailing; i++)
		qkd_put_u8(w, 0);
}

static int raw_parse(const struct raw *r)
{
	struct qkd_fiber_frame f;
	struct qkd_wbuf w;
	struct qkd_rbuf rb;
	int rc;

	qkd_wbuf_init(&w);
	raw_write(&w, r);
	assert_int_equal(w.err, 0);
	qkd_fiber_frame_init(&f);
	qkd_rbuf_init(&rb, w.p, w.len);
	rc = qkd_fiber_frame_read(&rb, &f);
	if (rc != QKD_OK)
		assert_int_equal(f.n, 0);
	qkd_fiber_frame_cleanup(&f);
	qkd_wbuf_cleanup(&w);
	return rc;
}

static void test_frame_malformed(void **state)
{
	struct raw r = raw_ok();
	struct qkd_wbuf w;

	(void)state;
	assert_int_equal(raw_parse(&r), QKD_OK);
	/* Every truncation of a valid body is refused. */
	qkd_wbuf_init(&w);
	raw_write(&w, &r);
	for (size_t len = 0; len < w.len; len++) {
		struct qkd_fiber_frame f;
		struct qkd_rbuf rb;

		qkd_fiber_frame_init(&f);
		qkd_rbuf_init(&rb, w.p, len);
		assert_int_equal(qkd_fiber_frame_read(&rb, &f), QKD_ERR_PROTO);
		qkd_fiber_frame_cleanup(&f);
	}
	qkd_wbuf_cleanup(&w);
#define BAD(field_change) do { r = raw_ok(); field_change; \
		assert_int_equal(raw_parse(&r), QKD_ERR_PROTO); } while (0)
	BAD(r.version = 0);
	BAD(r.version = 1);				/* the 3-byte pulses of before */
	BAD(r.version = 3);
	BAD(r.slots = QKD_FIBER_MAX_FRAME_SLOTS + 1);
	BAD(r.first = QKD_PULSES_MAX + 1);
	BAD((r.first = QKD_PULSES_MAX - 10, r.slots = 11));	/* range past 2^62 */
	BAD(r.flags = 2);
	BAD(r.flags = 0x81);
	BAD(r.count = 4);				/* more pulses than written */
	BAD(r.count = 2);				/* trailing pulse bytes */
	BAD((r.slots = 2, r.pulse[1][0] = 0, r.count = 3));	/* count > slots */
	BAD(r.count = QKD_FIBER_MAX_FRAME_PULSES + 1);
	BAD((r.slots = 100000, r.count = 1000));	/* more than the bytes can hold */
	BAD(r.pulse[0][1] = 0);				/* an empty pulse */
	BAD(r.multi[0] = true);				/* photons 1 spelled out: not canonical */
	BAD(r.pulse[1][1] = 65536);			/* photons > 65535 */
	BAD(r.pulse[2][0] = 57);			/* slot 100 + 0+1 + 5+1 + 57 = 164: outside */
	BAD(r.pulse[0][0] = 64);			/* first pulse past the range */
	BAD(r.pulse[1][0] = UINT64_MAX);		/* gap overflow */
	BAD((r.slots = 20, r.pulse[0][0] = 31, r.np = 1, r.count = 1));	/* escaped gap past */
	BAD(r.trailing = 1);
#undef BAD
	r = raw_ok();
	r.pulse[2][0] = 56;				/* slot 163, the last of the range */
	assert_int_equal(raw_parse(&r), QKD_OK);
	r.pulse[2][0] = 30;				/* the largest gap of one byte */
	r.pulse[1][0] = 31;				/* the smallest escaped one */
	assert_int_equal(raw_parse(&r), QKD_OK);
	/* The sizes version 2 promises: one byte for a single photon with a
	 * gap below 31, two with an escaped gap below 31 + 128, and the
	 * largest pulse 8 bytes. */
	{
		static const struct qkd_pulse one[] = { { 30, 1, 3 } }, esc[] = { { 31, 1, 0 } };
		static const struct qkd_pulse big[] = { { (1u << 24) - 1, 65535, 2 } };
		struct qkd_fiber_frame f;
		size_t base;

		qkd_fiber_frame_init(&f);
		qkd_wbuf_init(&w);
		frame_fill(&f, 0, 1u << 24, NULL, 0);
		qkd_fiber_frame_write(&w, &f);
		base = w.len;
		frame_fill(&f, 0, 1u << 24, one, 1);
		qkd_wbuf_reset(&w);
		qkd_fiber_frame_write(&w, &f);
		assert_int_equal(w.len, base + 1);
		frame_fill(&f, 0, 1u << 24, esc, 1);
		qkd_wbuf_reset(&w);
		qkd_fiber_frame_write(&w, &f);
		assert_int_equal(w.len, base + 2);
		frame_fill(&f, 0, 1u << 24, big, 1);
		qkd_wbuf_reset(&w);
		qkd_fiber_frame_write(&w, &f);
		assert_int_equal(w.len, base + 8);
		qkd_wbuf_cleanup(&w);
		qkd_fiber_frame_cleanup(&f);
	}
}

static void test_frame_write_refuses(void **state)
{
	static const struct qkd_pulse dup[] = { { 10, 1, 0 }, { 10, 1, 0 } };
	static const struct qkd_pulse down[] = { { 11, 1, 0 }, { 10, 1, 0 } };
	static const struct qkd_pulse empty[] = { { 10, 0, 0 } };
	static const struct qkd_pulse st4[] = { { 10, 1, 4 } };
	static const struct qkd_pulse out[] = { { 20, 1, 0 } };
	static const struct qkd_pulse before[] = { { 9, 1, 0 } };
	const struct { const struct qkd_pulse *p; size_t n; } bad[] = {
		{ dup, 2 }, { down, 2 }, { empty, 1 }, { st4, 1 }, { out, 1 }, { before, 1 },
	};
	struct qkd_fiber_frame f;
	int sv[2];

	(void)state;
	qkd_fiber_frame_init(&f);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct qkd_wbuf w;

		frame_fill(&f, 10, 10, bad[i].p, bad[i].n);
		qkd_wbuf_init(&w);
		qkd_fiber_frame_write(&w, &f);
		assert_int_equal(w.err, QKD_ERR_INVAL);
		qkd_wbuf_cleanup(&w);
		assert_int_equal(qkd_fiber_send(sv[0], &f), QKD_ERR_INVAL);
	}
	frame_fill(&f, 10, QKD_FIBER_MAX_FRAME_SLOTS + 1, NULL, 0);
	assert_int_equal(qkd_fiber_send(sv[0], &f), QKD_ERR_INVAL);
	close(sv[0]);
	assert_int_equal(qkd_fiber_recv(sv[1], &f), QKD_ERR_EOF);	/* nothing was sent */
	close(sv[1]);
	qkd_fiber_frame_cleanup(&f);
}

static void send_bytes(int fd, const void *p, size_t n)
{
	assert_int_equal(write(fd, p, n), (ssize_t)n);
}

/* recv over a socket: frames in sequence, clean EOF, and truncations. */
static void test_frame_socket(void **state)
{
	static const struct qkd_pulse p[] = { { 3, 1, 0 }, { 4, 7, 3 } };
	static const uint8_t short_len[] = { 0, 0 };
	static const uint8_t tiny_len[] = { 0, 0, 0, 5, 1, 0, 0, 0, 0 };
	static const uint8_t huge_len[] = { 0x7f, 0, 0, 0 };
	static const uint8_t cut_body[] = { 0, 0, 0, 9, 1, 0, 0 };
	struct qkd_fiber_frame f, g;
	int sv[2];

	(void)state;
	qkd_fiber_frame_init(&f);
	qkd_fiber_frame_init(&g);
	frame_fill(&f, 0, 16, p, 2);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(qkd_fiber_send(sv[0], &f), QKD_OK);
	f.round = 78;
	f.first = 16;
	f.p[0].slot = 16;
	f.p[1].slot = 31;
	assert_int_equal(qkd_fiber_send(sv[0], &f), QKD_OK);
	close(sv[0]);
	assert_int_equal(qkd_fiber_recv(sv[1], &g), QKD_OK);
	assert_true(g.round == 77 && g.n == 2 && g.p[1].slot == 4 && g.p[1].photons == 7);
	assert_int_equal(qkd_fiber_recv(sv[1], &g), QKD_OK);
	assert_frames_equal(&f, &g);
	assert_int_equal(qkd_fiber_recv(sv[1], &g), QKD_ERR_EOF);
	close(sv[1]);
	/* Truncated or absurd length prefixes and bodies: protocol errors. */
	{
		const struct { const uint8_t *b; size_t n; } bad[] = {
			{ short_len, sizeof short_len }, { tiny_len, sizeof tiny_len },
			{ huge_len, sizeof huge_len }, { cut_body, sizeof cut_body },
		};

		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
			send_bytes(sv[0], bad[i].b, bad[i].n);
			close(sv[0]);
			assert_int_equal(qkd_fiber_recv(sv[1], &g), QKD_ERR_PROTO);
			close(sv[1]);
		}
	}
	/* A peer gone: an error, not SIGPIPE. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	assert_int_equal(qkd_fiber_send(sv[0], &f), QKD_ERR_IO);
	close(sv[0]);
	qkd_fiber_frame_cleanup(&f);
	qkd_fiber_frame_cleanup(&g);
}

/* ---- emitter ---------------------------------------------------------- */

struct emit_counts {
	uint64_t slots, pulses, multi, basis1, value1;
};

static void emit_count(const struct qkd_emitter *em, uint64_t slots, struct emit_counts *c)
{
	struct qkd_fiber_frame f;

	memset(c, 0, sizeof *c);
	qkd_fiber_frame_init(&f);
	for (uint64_t first = 0; first < slots; first += FRAME_SLOTS) {
		assert_int_equal(qkd_emitter_chunk(em, first, FRAME_SLOTS, &f), QKD_OK);
		for (size_t i = 0; i < f.n; i++) {
			c->multi += f.p[i].photons >= 2;
			c->basis1 += f.p[i].state >> 1;
			c->value1 += f.p[i].state & 1;
		}
		c->pulses += f.n;
	}
	c->slots = slots;
	qkd_fiber_frame_cleanup(&f);
}

static void test_emitter_stats(void **state)
{
	struct qkd_link_params p = link_default();
	struct qkd_emitter *em;
	struct emit_counts c;

	(void)state;
	em = emitter_of(&p, 1);
	emit_count(em, 16 * FRAME_SLOTS, &c);
	near_prop("non-empty fraction", c.pulses, c.slots, -expm1(-p.mu));
	near_prop("multi-photon share", c.multi, c.pulses,
		  qkd_multiphoton_prob(p.mu) / -expm1(-p.mu));
	near_prop("basis 1", c.basis1, c.pulses, 0.5);
	near_prop("value 1", c.value1, c.pulses, 0.5);
	qkd_emitter_free(em);
	/* Biased choices and a bright pulse (inversion beyond n = 1). */
	p.p_x = 0.9;
	p.rng_bias = 0.3;
	p.mu = 3.0;
	em = emitter_of(&p, 1);
	emit_count(em, 2 * FRAME_SLOTS, &c);
	near_prop("non-empty fraction, mu 3", c.pulses, c.slots, -expm1(-p.mu));
	near_prop("multi-photon share, mu 3", c.multi, c.pulses,
		  qkd_multiphoton_prob(p.mu) / -expm1(-p.mu));
	near_prop("basis 1, p_x 0.9", c.basis1, c.pulses, 0.9);
	near_prop("value 1, bias 0.3", c.value1, c.pulses, 0.3);
	qkd_emitter_free(em);
}

static void test_emitter_decoys(void **state)
{
	struct qkd_link_params p = link_default();
	struct qkd_alice_source ops;
	struct qkd_fiber_frame f;
	struct qkd_emitter *em;
	uint64_t *slots, per_k[3] = { 0 }, all_k[3] = { 0 }, nslots = 4 * FRAME_SLOTS;
	uint8_t *k;

	(void)state;
	p.mu = 0.5;
	p.intensities = 3;
	p.mu_decoy[0] = 0.1;
	p.mu_decoy[1] = 0.0002;
	p.p_intensity[0] = 0.7;
	p.p_intensity[1] = 0.2;
	p.p_intensity[2] = 0.1;
	em = emitter_of(&p, 4);
	qkd_emitter_alice_source(em, &ops);
	assert_non_null(ops.intensity);
	slots = malloc(FRAME_SLOTS * sizeof *slots);
	k = malloc(FRAME_SLOTS);
	assert_true(slots != NULL && k != NULL);
	qkd_fiber_frame_init(&f);
	for (uint64_t first = 0; first < nslots; first += FRAME_SLOTS) {
		/* Every slot's intensity, then those of the non-empty pulses. */
		for (uint64_t i = 0; i < FRAME_SLOTS; i++)
			slots[i] = first + i;
		assert_int_equal(ops.intensity(ops.ctx, slots, FRAME_SLOTS, k), QKD_OK);
		for (uint64_t i = 0; i < FRAME_SLOTS; i++)
			all_k[k[i]]++;
		assert_int_equal(qkd_emitter_chunk(em, first, FRAME_SLOTS, &f), QKD_OK);
		for (size_t i = 0; i < f.n; i++)
			per_k[k[f.p[i].slot - first]]++;
	}
	for (unsigned j = 0; j < 3; j++) {
		near_prop("intensity frequency", all_k[j], nslots, p.p_intensity[j]);
		near_prop("non-empty per intensity", per_k[j], all_k[j],
			  -expm1(-qkd_link_intensity(&p, j)));
	}
	qkd_fiber_frame_cleanup(&f);
	qkd_emitter_free(em);
	free(slots);
	free(k);
	/* Without decoys there is no intensity callback. */
	p = link_default();
	em = emitter_of(&p, 4);
	qkd_emitter_alice_source(em, &ops);
	assert_null(ops.intensity);
	assert_non_null(ops.choices);
	qkd_emitter_free(em);
}

/* Any chunking of [first, first+n) gives the pulses of whole. A chunk
 * inside a photon block re-walks the block from its start (docs/fiber.md
 * s3), so small cuts cover fewer slots. */
static void check_chunkings(const struct qkd_emitter *em, uint64_t first, uint64_t n,
			    const struct qkd_fiber_frame *whole)
{
	static const uint64_t cuts[] = { 1, 7, 65535, 65536, 65537, 100000, 300001 };
	struct qkd_fiber_frame part;

	qkd_fiber_frame_init(&part);
	for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
		uint64_t step = cuts[c] * 13, lim = step * 64 < n ? step * 64 : n;
		size_t want = 0, k = 0;

		for (uint64_t s = first; s < first + lim; s += step) {
			uint64_t cnt = first + lim - s < step ? first + lim - s : step;

			assert_int_equal(qkd_emitter_chunk(em, s, cnt, &part), QKD_OK);
			for (size_t i = 0; i < part.n; i++, k++) {
				assert_true(k < whole->n);
				assert_true(part.p[i].slot == whole->p[k].slot);
				assert_int_equal(part.p[i].photons, whole->p[k].photons);
				assert_int_equal(part.p[i].state, whole->p[k].state);
			}
		}
		while (want < whole->n && whole->p[want].slot < first + lim)
			want++;
		assert_int_equal(k, want);
	}
	qkd_fiber_frame_cleanup(&part);
}

/* Lookup and choices agree with the states in the frames, and any chunking
 * of the slots gives the same pulses. */
static void test_emitter_lookup(void **state)
{
	struct qkd_link_params p = link_default();
	struct qkd_fiber_frame whole, part;
	struct qkd_alice_source ops;
	struct qkd_bits b, v;
	struct qkd_emitter *em;
	uint64_t *slots, first = 3 * 65536 + 11, n = 400000;
	uint8_t *st;

	(void)state;
	p.mu = 0.3;
	em = emitter_of(&p, 2);
	qkd_emitter_alice_source(em, &ops);
	qkd_fiber_frame_init(&whole);
	qkd_fiber_frame_init(&part);
	assert_int_equal(qkd_emitter_chunk(em, first, n, &whole), QKD_OK);
	slots = malloc(whole.n * sizeof *slots);
	st = malloc(whole.n);
	assert_true(slots != NULL && st != NULL);
	for (size_t i = 0; i < whole.n; i++)
		slots[i] = whole.p[i].slot;
	alice_states(em, slots, whole.n, st);
	for (size_t i = 0; i < whole.n; i++)
		assert_int_equal(st[i], whole.p[i].state);
	/* choices: bit i is slot first+i, and matches the pulses. */
	assert_int_equal(qkd_bits_init(&b, n), QKD_OK);
	assert_int_equal(qkd_bits_init(&v, n), QKD_OK);
	assert_int_equal(ops.choices(ops.ctx, first, n, &b, &v), QKD_OK);
	for (size_t i = 0; i < whole.n; i++) {
		size_t j = (size_t)(whole.p[i].slot - first);

		assert_int_equal(2 * qkd_bits_get(&b, j) + qkd_bits_get(&v, j), whole.p[i].state);
	}
	near_prop("choices: basis 1", qkd_bits_weight(&b), n, 0.5);
	check_chunkings(em, first, n, &whole);
	/* Bad calls. */
	slots[1] = slots[0];
	assert_int_equal(ops.lookup(ops.ctx, slots, 2, &b, &v, &v), QKD_ERR_INVAL);
	assert_int_equal(qkd_emitter_chunk(em, 0, QKD_FIBER_MAX_FRAME_SLOTS + 1, &part),
			 QKD_ERR_RANGE);
	assert_int_equal(qkd_emitter_chunk(em, QKD_PULSES_MAX - 5, 6, &part), QKD_ERR_RANGE);
	assert_int_equal(qkd_emitter_chunk(em, QKD_PULSES_MAX - 5, 5, &part), QKD_OK);
	assert_int_equal(qkd_emitter_chunk(em, 42, 0, &part), QKD_OK);
	assert_int_equal(part.n, 0);
	qkd_bits_cleanup(&b);
	qkd_bits_cleanup(&v);
	free(slots);
	free(st);
	qkd_fiber_frame_cleanup(&whole);
	qkd_fiber_frame_cleanup(&part);
	qkd_emitter_free(em);
}

/* Packed choices (fair, one intensity: docs/fiber.md s3) by words agree slot
 * by slot with lookup, whether the range starts on a word, inside a block,
 * or off a word (the per-slot path), and ends off a word. */
static void test_emitter_packed(void **state)
{
	struct qkd_link_params p = link_default();
	struct qkd_alice_source ops;
	struct qkd_emitter *em = emitter_of(&p, 7);
	const uint64_t firsts[] = {0, 5 * 65536 + 32 * 3, 9 * 256 + 224, 77 * 65536 + 13};
	const uint64_t n = 300007;
	uint64_t *slots = malloc(n * sizeof *slots);
	struct qkd_bits b, v, lb, lv, ok;

	(void)state;
	assert_non_null(slots);
	qkd_emitter_alice_source(em, &ops);
	assert_int_equal(qkd_bits_init(&b, n), QKD_OK);
	assert_int_equal(qkd_bits_init(&v, n), QKD_OK);
	assert_int_equal(qkd_bits_init(&lb, n), QKD_OK);
	assert_int_equal(qkd_bits_init(&lv, n), QKD_OK);
	assert_int_equal(qkd_bits_init(&ok, n), QKD_OK);
	for (size_t k = 0; k < sizeof firsts / sizeof firsts[0]; k++) {
		for (uint64_t i = 0; i < n; i++)
			slots[i] = firsts[k] + i;
		/* Garbage beyond n must not leak into the answer. */
		memset(b.w, 0xff, qkd_bits_words(n) * sizeof(uint64_t));
		assert_int_equal(ops.choices(ops.ctx, firsts[k], n, &b, &v), QKD_OK);
		assert_int_equal(ops.lookup(ops.ctx, slots, n, &lb, &lv, &ok), QKD_OK);
		for (uint64_t i = 0; i < n; i++) {
			assert_int_equal(qkd_bits_get(&b, i), qkd_bits_get(&lb, i));
			assert_int_equal(qkd_bits_get(&v, i), qkd_bits_get(&lv, i));
		}
		near_prop("packed: basis 1", qkd_bits_weight(&b), n, 0.5);
		near_prop("packed: value 1", qkd_bits_weight(&v), n, 0.5);
	}
	qkd_bits_cleanup(&b);
	qkd_bits_cleanup(&v);
	qkd_bits_cleanup(&lb);
	qkd_bits_cleanup(&lv);
	qkd_bits_cleanup(&ok);
	free(slots);
	qkd_emitter_free(em);
}

/* AES-256-CTR keystream of nbytes under key with a 16-byte IV, computed
 * here independently of the emitter (docs/fiber.md s1). */
static void aes_ctr(const uint8_t key[32], const uint8_t iv[16], uint8_t *out, int nbytes)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	uint8_t *zero = calloc(1, (size_t)nbytes);
	int outl = 0;

	assert_true(ctx != NULL && zero != NULL);
	assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), NULL, key, iv), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, out, &outl, zero, nbytes), 1);
	assert_int_equal(outl, nbytes);
	EVP_CIPHER_CTX_free(ctx);
	free(zero);
}

/* Alice's streams are laid out as docs/fiber.md s1 and s3 say: the packed
 * choice record of slot s is bits 2i, 2i + 1 of AES-256-CTR block s / 256
 * (IV: 64 zero bits, then 4 (s / 256) big-endian) under subkey 1; the
 * photon stream of block b (IV: b big-endian, then a zero counter) under
 * subkey 2 gives, word by word, the gaps floor(ln U / -mu) and the
 * pulses' slots, and n = 1 exactly where the word's low 11 bits say so. */
static void test_emitter_streams(void **state)
{
	struct qkd_link_params p = link_default();
	struct qkd_emitter *em = emitter_of(&p, 4);
	const uint64_t blk = 37, base = blk << 16;
	uint8_t key[QKD_FIBER_KEY_BYTES], sub[32], iv[16] = {0}, ks[4096];
	double p1 = p.mu * exp(-p.mu) / -expm1(-p.mu);
	struct qkd_fiber_frame f;
	uint64_t slots[64], pos = base;
	uint8_t st[64];
	size_t i;

	(void)state;
	key_of(key, 4);
	qkd_fiber_frame_init(&f);
	assert_int_equal(qkd_emitter_chunk(em, base, 65536, &f), QKD_OK);
	assert_true(f.n > 64 * 4);
	/* The photon stream: the first 64 candidates (mu 0.1: each one kept). */
	fib_subkey(sub, key, FIB_ALICE_PHOTON);
	for (i = 0; i < 8; i++)
		iv[i] = (uint8_t)(blk >> (56 - 8 * i));
	aes_ctr(sub, iv, ks, 64 * 8);
	for (i = 0; i < 64; i++) {
		uint64_t w = fib_le64(ks + 8 * i);
		unsigned v = (unsigned)(w & 2047);

		pos += (uint64_t)floor(log(fib_open_of(w)) / -p.mu);
		assert_int_equal(f.p[i].slot, pos);
		if ((v + 1) / 2048.0 <= p1)
			assert_int_equal(f.p[i].photons, 1);
		else if (v / 2048.0 >= p1)
			assert_true(f.p[i].photons >= 2);
		slots[i] = pos++;
	}
	/* The choice records of those slots. */
	fib_subkey(sub, key, FIB_ALICE_CHOICE);
	alice_states(em, slots, 64, st);
	for (i = 0; i < 64; i++) {
		uint64_t b = slots[i] / 256, ctr = 4 * b;
		unsigned j = (unsigned)(slots[i] % 256), two;

		memset(iv, 0, sizeof iv);
		for (unsigned k = 0; k < 8; k++)
			iv[8 + k] = (uint8_t)(ctr >> (56 - 8 * k));
		aes_ctr(sub, iv, ks, 64);
		two = (ks[j / 4] >> (2 * (j % 4))) & 3u;
		assert_int_equal(st[i], 2 * (two & 1) + (two >> 1));
		assert_int_equal(f.p[i].state, st[i]);
	}
	qkd_fiber_frame_cleanup(&f);
	qkd_emitter_free(em);
}

/* The emitter's vector logarithm (fiber_int.h) against libm: within 4 ulp
 * of ln x, or 1e-300 absolute at x = 1, over the uniforms fib_open makes
 * (k 2^-53, k = 1 .. 2^53) at both ends, around the mantissa's sqrt 2 cut
 * and at random. */
static void check_log4(const double *x)
{
	double r[4];

	fib_log_unit4(x, r);
	for (int i = 0; i < 4; i++) {
		double want = log(x[i]);

		if (!(fabs(r[i] - want) <= 4 * DBL_EPSILON * fabs(want) + 1e-300))
			fail_msg("ln %.17g: %.17g, libm %.17g", x[i], r[i], want);
	}
}

static void test_log_unit(void **state)
{
	const double edge[] = {0x1p-53, 0x2p-53, 0x3p-53, 1.0, 0.5, 0.25, 1.0 - 0x1p-53,
			       0.70710678118654746, 0.70710678118654757, 0.70710678118654768,
			       0.35355339059327373, 0.35355339059327379, 1e-10, 0.9};
	struct fib_stream st;
	uint8_t key[32] = {9};
	double x[4];

	(void)state;
	for (size_t i = 0; i + 4 <= sizeof edge / sizeof edge[0]; i += 2)
		check_log4(edge + i);
	fib_stream_init(&st, key, 1);
	for (int n = 0; n < 250000; n++) {
		for (int i = 0; i < 4; i++)
			x[i] = fib_open(&st);
		check_log4(x);
	}
}

static void test_emitter_refuses(void **state)
{
	struct qkd_link_params p = link_default();
	uint8_t key[QKD_FIBER_KEY_BYTES];
	struct qkd_emitter *e = (struct qkd_emitter *)&p;
	struct qkd_detector *d = (struct qkd_detector *)&p;

	(void)state;
	key_of(key, 1);
	p.source = QKD_SOURCE_ENTANGLED;
	assert_int_equal(qkd_emitter_new(&e, &p, key), QKD_ERR_INVAL);
	assert_null(e);
	assert_int_equal(qkd_detector_new(&d, &p, key), QKD_ERR_INVAL);
	assert_null(d);
	p = link_default();
	p.mu = -1;
	assert_int_equal(qkd_emitter_new(&e, &p, key), QKD_ERR_INVAL);
	p = link_default();
	p.misalignment = 0.7;
	assert_int_equal(qkd_detector_new(&d, &p, key), QKD_ERR_INVAL);
	qkd_emitter_free(NULL);
	qkd_detector_free(NULL);
	qkd_fiber_eve_free(NULL);
	qkd_fiber_frame_cleanup(NULL);
}

/* ---- detector --------------------------------------------------------- */

static void test_detector_default_link(void **state)
{
	struct qkd_link_params p = link_default();
	double pc, q;
	struct run r;

	(void)state;
	qkd_link_expected(&p, &pc, &q);
	run_link(&p, NULL, 32 * FRAME_SLOTS, &r);
	check_link("default link", &r, pc, q);
	assert_true(r.clicks > 150000);
}

/* Bright pulses and strong dark counts: multi-photon outcomes, the tabled
 * and the computed powers, double clicks. */
static void test_detector_bright(void **state)
{
	struct qkd_link_params p = link_default();
	double pc, q, t, s, rr, w, rh, dbl;
	struct run r;

	(void)state;
	p.mu = 2.0;
	p.distance_km = 0;
	p.detector_efficiency = 0.3;
	p.misalignment = 0.05;
	p.dark_count = 1e-3;
	qkd_link_expected(&p, &pc, &q);
	run_link(&p, NULL, 2 * FRAME_SLOTS, &r);
	check_link("mu 2", &r, pc, q);
	/* docs/optical-model.md s2: double clicks (R W + R'^2) / 2 per slot. */
	t = p.mu * p.detector_efficiency;
	s = 1 - p.dark_count;
	rr = 1 - s * exp(-t * (1 - p.misalignment));
	w = 1 - s * exp(-t * p.misalignment);
	rh = 1 - s * exp(-t / 2);
	dbl = (rr * w + rh * rh) / 2;
	near_prop("mu 2: double clicks", r.doubles, r.slots, dbl);
	/* Photon numbers beyond the table. */
	p.mu = 40.0;
	p.detector_efficiency = 0.02;
	qkd_link_expected(&p, &pc, &q);
	run_link(&p, NULL, FRAME_SLOTS / 2, &r);
	check_link("mu 40", &r, pc, q);
}

/* No photon arrives: only dark counts, ~2 p_d per slot, QBER 1/2. */
static void test_detector_dark_only(void **state)
{
	struct qkd_link_params p = link_default();
	struct run r;

	(void)state;
	p.distance_km = 10000;		/* T = 1e-200 */
	p.dark_count = 1e-4;
	run_link(&p, NULL, 16 * FRAME_SLOTS, &r);
	near_prop("dark clicks", r.clicks, r.slots, 1 - (1 - p.dark_count) * (1 - p.dark_count));
	near_prop("dark QBER", r.errors, r.sifted, 0.5);
	near_prop("dark double clicks", r.doubles, r.slots, p.dark_count * p.dark_count);
	/* A tiny mu: the same. */
	p = link_default();
	p.mu = 1e-9;
	p.dark_count = 1e-3;
	run_link(&p, NULL, 2 * FRAME_SLOTS, &r);
	near_prop("dark clicks, mu 1e-9", r.clicks, r.slots, 1 - (1 - p.dark_count) * (1 - p.dark_count));
	/* No dark counts and no light: nothing. */
	p.dark_count = 0;
	p.distance_km = 10000;
	run_link(&p, NULL, 2 * FRAME_SLOTS, &r);
	assert_int_equal(r.clicks, 0);
	/* p_d = 1: both detectors in every slot. */
	p.dark_count = 1;
	run_link(&p, NULL, 1000, &r);
	assert_int_equal(r.clicks, 1000);
	assert_int_equal(r.doubles, 1000);
}

/* The node's detector behind a free-space channel (docs/optical-model.md
 * 1a): T = T_geo T_atm and the background light on top of the dark counts,
 * by day and by night, against the formula written out. */
static void test_detector_free_space(void **state)
{
	(void)state;
	for (int day = 0; day < 2; day++) {
		struct qkd_link_params p = link_default();
		double pc, q, tr, pn;
		struct run r;

		p.channel = QKD_CHANNEL_FREE_SPACE;
		p.distance_km = 5;
		p.daylight = day;
		p.background_day = 2e-3;
		/* spot 0.05 + 5000 * 20e-6 = 0.15 m; 0.1 dB/km over 5 km. */
		tr = (0.10 / 0.15) * (0.10 / 0.15) * pow(10.0, -0.05);
		pn = 1 - (1 - p.dark_count) * (1 - (day ? 2e-3 : 1e-6));
		qkd_link_expected(&p, &pc, &q);
		if (!(fabs(pc - (1 - (1 - pn) * (1 - pn) * exp(-p.mu * tr *
							    p.detector_efficiency))) < 1e-9 * pc))
			fail_msg("free space P(click) %.10g off the formula", pc);
		run_link(&p, NULL, 4 * FRAME_SLOTS, &r);
		check_link(day ? "free space, day" : "free space, night", &r, pc, q);
	}
}

/* The chunk grows across frames; slots increase; the order is enforced. */
static void test_detector_chunk(void **state)
{
	struct qkd_link_params p = link_default();
	struct qkd_emitter *em;
	struct qkd_detector *det;
	struct qkd_fiber_frame f;
	struct qkd_bob_chunk c;
	uint64_t slots = 0;
	size_t before;

	(void)state;
	p.distance_km = 0;
	p.detector_efficiency = 0.5;
	em = emitter_of(&p, 1);
	det = detector_of(&p, 2);
	qkd_fiber_frame_init(&f);
	memset(&c, 0, sizeof c);
	for (uint64_t first = 0; first < 4 * FRAME_SLOTS; first += FRAME_SLOTS / 3) {
		assert_int_equal(qkd_emitter_chunk(em, first, FRAME_SLOTS / 3, &f), QKD_OK);
		assert_int_equal(qkd_detector_frame(det, &f, &c), QKD_OK);
		slots += f.slots;
	}
	near_prop("clicks over frames", c.n, slots, 1 - pow(1 - p.dark_count, 2) *
		  exp(-p.mu * p.detector_efficiency));
	assert_int_equal(c.basis.n, c.n);
	assert_int_equal(c.value.n, c.n);
	for (size_t i = 1; i < c.n; i++)
		assert_true(c.slot[i] > c.slot[i - 1]);
	/* A frame that does not come after the chunk's last slot. */
	before = c.n;
	assert_int_equal(qkd_emitter_chunk(em, 0, 1000, &f), QKD_OK);
	assert_int_equal(qkd_detector_frame(det, &f, &c), QKD_ERR_INVAL);
	assert_int_equal(c.n, before);
	/* An invalid frame. */
	assert_int_equal(qkd_emitter_chunk(em, slots, 1000, &f), QKD_OK);
	assert_true(f.n > 10);
	f.p[3].state = 9;
	assert_int_equal(qkd_detector_frame(det, &f, &c), QKD_ERR_INVAL);
	assert_int_equal(c.n, before);
	qkd_bob_chunk_cleanup(&c);
	qkd_fiber_frame_cleanup(&f);
	qkd_detector_free(det);
	qkd_emitter_free(em);
}

/* ---- Eve -------------------------------------------------------------- */

static void intercept_run(double frac, uint64_t slots)
{
	struct qkd_link_params p = link_default(), half;
	struct qkd_fiber_eve *eve = eve_of(QKD_EVE_INTERCEPT_RESEND, frac, 3);
	struct qkd_fiber_eve_stats st;
	double pc, q, qhalf, want;
	char what[64];
	struct run r;

	qkd_link_expected(&p, &pc, &q);
	half = p;
	half.misalignment = 0.5;
	qkd_link_expected(&half, NULL, &qhalf);
	/* Resent in Alice's basis (1/2): her value, the honest QBER; in the
	 * other: Bob's outcome is random (like e_opt = 1/2). */
	want = (1 - frac / 2) * q + frac / 2 * qhalf;
	run_link(&p, eve, slots, &r);
	snprintf(what, sizeof what, "intercept-resend:%g", frac);
	check_link(what, &r, pc, want);
	qkd_fiber_eve_stats(eve, &st);
	assert_true(st.pulses == r.pulses);
	assert_true(st.frames == (slots + FRAME_SLOTS - 1) / FRAME_SLOTS);
	near_prop("intercepted fraction", st.intercepted, st.pulses, frac);
	assert_true(st.photons_tapped == 0);
	qkd_fiber_eve_free(eve);
}

static void test_eve_intercept(void **state)
{
	(void)state;
	intercept_run(1.0, 16 * FRAME_SLOTS);	/* QBER ~ 25 % */
	intercept_run(0.4, 16 * FRAME_SLOTS);	/* ~ +10 % */
}

static void test_eve_beamsplit(void **state)
{
	struct qkd_link_params p = link_default(), thin;
	struct qkd_fiber_eve *eve = eve_of(QKD_EVE_BEAMSPLIT, 0.5, 3);
	struct qkd_fiber_eve_stats st;
	struct run honest, r;
	double pc, q;

	(void)state;
	/* Poisson thinning: Bob sees a coherent state of mean mu (1 - F). */
	thin = p;
	thin.mu = p.mu * 0.5;
	qkd_link_expected(&thin, &pc, &q);
	run_link(&p, eve, 16 * FRAME_SLOTS, &r);
	check_link("beamsplit:0.5", &r, pc, q);
	run_link(&p, NULL, 16 * FRAME_SLOTS, &honest);
	near("beamsplit halves the clicks", (double)r.clicks / (double)honest.clicks, 0.5, 0.01);
	qkd_fiber_eve_stats(eve, &st);
	/* Pulses sent to Bob: non-empty after thinning. */
	near_prop("pulses left", r.pulses, r.slots, -expm1(-thin.mu));
	near("photons tapped per slot", (double)st.photons_tapped / (double)r.slots, 0.5 * p.mu,
	     sqrt(0.5 * p.mu / (double)r.slots));
	qkd_fiber_eve_free(eve);
}

static void test_eve_edges(void **state)
{
	static const struct qkd_pulse p[] = { { 1, 3, 0 }, { 2, 1, 1 }, { 5, 9, 2 }, { 6, 2, 3 } };
	uint8_t key[QKD_FIBER_KEY_BYTES];
	struct qkd_fiber_eve *e = NULL;
	struct qkd_fiber_eve_stats st;
	struct qkd_fiber_frame f, g;

	(void)state;
	key_of(key, 3);
	assert_int_equal(qkd_fiber_eve_new(&e, QKD_EVE_PNS, 0.5, key), QKD_ERR_INVAL);
	assert_null(e);
	assert_int_equal(qkd_fiber_eve_new(&e, QKD_EVE_BEAMSPLIT, 1.5, key), QKD_ERR_INVAL);
	assert_int_equal(qkd_fiber_eve_new(&e, QKD_EVE_BEAMSPLIT, NAN, key), QKD_ERR_INVAL);
	assert_int_equal(qkd_fiber_eve_new(&e, QKD_EVE_INTERCEPT_RESEND, -0.1, key), QKD_ERR_INVAL);
	qkd_fiber_frame_init(&f);
	qkd_fiber_frame_init(&g);
	frame_fill(&g, 0, 8, p, 4);
	/* F = 0 and "none": untouched. */
	frame_fill(&f, 0, 8, p, 4);
	e = eve_of(QKD_EVE_BEAMSPLIT, 0.0, 3);
	assert_int_equal(qkd_fiber_eve_apply(e, &f), QKD_OK);
	assert_frames_equal(&f, &g);
	qkd_fiber_eve_free(e);
	e = eve_of(QKD_EVE_NONE, 0.0, 3);
	assert_int_equal(qkd_fiber_eve_apply(e, &f), QKD_OK);
	assert_frames_equal(&f, &g);
	qkd_fiber_eve_free(e);
	/* Beamsplit F = 1: every pulse dropped, every photon tapped. */
	e = eve_of(QKD_EVE_BEAMSPLIT, 1.0, 3);
	assert_int_equal(qkd_fiber_eve_apply(e, &f), QKD_OK);
	assert_int_equal(f.n, 0);
	qkd_fiber_eve_stats(e, &st);
	assert_true(st.frames == 1 && st.pulses == 4 && st.intercepted == 4 &&
		    st.photons_tapped == 15);
	qkd_fiber_eve_free(e);
	/* Intercept-resend F = 1: photon numbers and slots kept; a pulse keeps
	 * its state whenever Eve's basis matched. */
	frame_fill(&f, 0, 8, p, 4);
	e = eve_of(QKD_EVE_INTERCEPT_RESEND, 1.0, 3);
	assert_int_equal(qkd_fiber_eve_apply(e, &f), QKD_OK);
	for (size_t i = 0; i < 4; i++) {
		assert_true(f.p[i].slot == g.p[i].slot);
		assert_int_equal(f.p[i].photons, g.p[i].photons);
		assert_true(f.p[i].state <= 3);
		if ((f.p[i].state >> 1) == (g.p[i].state >> 1))
			assert_int_equal(f.p[i].state, g.p[i].state);
	}
	f.p[0].photons = 0;
	assert_int_equal(qkd_fiber_eve_apply(e, &f), QKD_ERR_INVAL);
	qkd_fiber_eve_free(e);
	qkd_fiber_frame_cleanup(&f);
	qkd_fiber_frame_cleanup(&g);
}

/* ---- keys ------------------------------------------------------------- */

static void choices_of(uint8_t tag, struct qkd_bits *b, struct qkd_bits *v, uint64_t n)
{
	struct qkd_link_params p = link_default();
	struct qkd_emitter *em = emitter_of(&p, tag);
	struct qkd_alice_source ops;

	qkd_emitter_alice_source(em, &ops);
	assert_int_equal(qkd_bits_init(b, n), QKD_OK);
	assert_int_equal(qkd_bits_init(v, n), QKD_OK);
	assert_int_equal(ops.choices(ops.ctx, 1000, n, b, v), QKD_OK);
	qkd_emitter_free(em);
}

/* Bob's detections of one emitter frame with detector key tag. */
static void bob_of(uint8_t tag, const struct qkd_link_params *p, const struct qkd_fiber_frame *f,
		   struct qkd_bob_chunk *c)
{
	struct qkd_detector *d = detector_of(p, tag);

	memset(c, 0, sizeof *c);
	assert_int_equal(qkd_detector_frame(d, f, c), QKD_OK);
	qkd_detector_free(d);
}

static void test_keys(void **state)
{
	struct qkd_bits b1, v1, b2, v2, b3, v3;
	struct qkd_link_params p = link_default();
	struct qkd_bob_chunk c1, c2, c3;
	struct qkd_fiber_frame f;
	struct qkd_emitter *em;
	uint64_t n = 100000;

	(void)state;
	choices_of(1, &b1, &v1, n);
	choices_of(1, &b2, &v2, n);
	choices_of(2, &b3, &v3, n);
	assert_true(qkd_bits_equal(&b1, &b2) && qkd_bits_equal(&v1, &v2));
	near_prop("other key: bases differ", qkd_bits_distance(&b1, &b3), n, 0.5);
	near_prop("other key: values differ", qkd_bits_distance(&v1, &v3), n, 0.5);
	/* Bob: same key, same detections; another key, other bases. */
	p.distance_km = 0;
	p.detector_efficiency = 1;
	em = emitter_of(&p, 1);
	qkd_fiber_frame_init(&f);
	assert_int_equal(qkd_emitter_chunk(em, 0, 200000, &f), QKD_OK);
	bob_of(5, &p, &f, &c1);
	bob_of(5, &p, &f, &c2);
	bob_of(6, &p, &f, &c3);
	assert_int_equal(c1.n, c2.n);
	assert_memory_equal(c1.slot, c2.slot, c1.n * sizeof *c1.slot);
	assert_true(qkd_bits_equal(&c1.basis, &c2.basis) && qkd_bits_equal(&c1.value, &c2.value));
	assert_true(c1.n > 10000 && c3.n > 10000);
	{
		size_t i = 0, j = 0, same = 0, both = 0;

		while (i < c1.n && j < c3.n) {
			if (c1.slot[i] < c3.slot[j]) {
				i++;
			} else if (c1.slot[i] > c3.slot[j]) {
				j++;
			} else {
				same += qkd_bits_get(&c1.basis, i) == qkd_bits_get(&c3.basis, j);
				both++;
				i++;
				j++;
			}
		}
		near_prop("Bob, other key: same basis", same, both, 0.5);
	}
	qkd_bob_chunk_cleanup(&c1);
	qkd_bob_chunk_cleanup(&c2);
	qkd_bob_chunk_cleanup(&c3);
	qkd_fiber_frame_cleanup(&f);
	qkd_emitter_free(em);
	qkd_bits_cleanup(&b1);
	qkd_bits_cleanup(&v1);
	qkd_bits_cleanup(&b2);
	qkd_bits_cleanup(&v2);
	qkd_bits_cleanup(&b3);
	qkd_bits_cleanup(&v3);
}

static void test_key_random(void **state)
{
	uint8_t a[QKD_FIBER_KEY_BYTES], b[QKD_FIBER_KEY_BYTES];

	(void)state;
	qkd_fiber_key_random(a);
	qkd_fiber_key_random(b);
	assert_memory_not_equal(a, b, sizeof a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_roundtrip),
		cmocka_unit_test(test_frame_malformed),
		cmocka_unit_test(test_frame_write_refuses),
		cmocka_unit_test(test_frame_socket),
		cmocka_unit_test(test_emitter_stats),
		cmocka_unit_test(test_emitter_decoys),
		cmocka_unit_test(test_emitter_lookup),
		cmocka_unit_test(test_emitter_packed),
		cmocka_unit_test(test_emitter_streams),
		cmocka_unit_test(test_emitter_refuses),
		cmocka_unit_test(test_detector_default_link),
		cmocka_unit_test(test_detector_bright),
		cmocka_unit_test(test_detector_dark_only),
		cmocka_unit_test(test_detector_free_space),
		cmocka_unit_test(test_detector_chunk),
		cmocka_unit_test(test_eve_intercept),
		cmocka_unit_test(test_eve_beamsplit),
		cmocka_unit_test(test_eve_edges),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_key_random),
		cmocka_unit_test(test_log_unit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
