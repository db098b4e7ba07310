/* Unit tests of lib/proto/auth_wc.c: the Wegman-Carter authenticator. The
 * known answers come from a reference written here from the definition in
 * qkd/auth_wc.h (bitwise GF(2^64) multiply, byte-wise word assembly), not
 * from the library's code. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qkd/auth_wc.h"
#include "qkd/wire.h"
#include "qkd/channel.h"
#include "qkd/error.h"
#include "qkd/msg.h"
#include "qkd/rng.h"
#include "qkd/sysutil.h"
#include "qkd/verify.h"

/* ---- reference ---------------------------------------------------------- */

/* a * b in GF(2)[x] / (x^64 + x^4 + x^3 + x + 1), one bit of b at a time,
 * reducing a * x as it goes. */
static uint64_t ref_mul(uint64_t a, uint64_t b)
{
	uint64_t r = 0;

	while (b != 0) {
		if (b & 1)
			r ^= a;
		b >>= 1;
		a = (a & (1ull << 63)) ? (a << 1) ^ 0x1b : a << 1;
	}
	return r;
}

/* H_k(m): words little-endian, last one zero-padded, then the bit length. */
static uint64_t ref_hash(uint64_t k, const uint8_t *m, size_t len)
{
	uint64_t h = 0;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t w = 0;

		for (size_t j = 0; j < 8 && i + j < len; j++)
			w |= (uint64_t)m[i + j] << (8 * j);
		h = ref_mul(h ^ w, k);
	}
	return ref_mul(h ^ ((uint64_t)len * 8), k);
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* The tag a party sending in direction dir (0 = AB, 1 = BA) must produce for
 * seq s, assuming no replenishment: pad s of that direction is stream pad
 * 2s + dir, i.e. bootstrap bytes 16 + 8 (2s + dir) ... */
static void ref_tag(const uint8_t *boot, int dir, uint32_t s, const uint8_t *m, size_t len,
		    uint8_t out[8])
{
	uint64_t h = ref_hash(le64(boot + 8 * dir), m, len);
	const uint8_t *pad = boot + 16 + 8 * (2 * (size_t)s + (size_t)dir);

	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(h >> (8 * i)) ^ pad[i];
}

/* ---- helpers ------------------------------------------------------------ */

static void fill_pattern(uint8_t *p, size_t n, unsigned mul, unsigned add)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * mul + add);
}

/* Alice's and Bob's authenticators from one bootstrap of npads pads per direction. */
static void make_pair(struct qkd_wc **a, struct qkd_wc **b, uint8_t *boot, size_t npads)
{
	size_t len = QKD_WC_HASH_KEY_LEN + 2 * QKD_WC_PAD_LEN * npads;

	fill_pattern(boot, len, 37, 11);
	assert_int_equal(qkd_wc_new(a, boot, len, true), QKD_OK);
	assert_int_equal(qkd_wc_new(b, boot, len, false), QKD_OK);
}

/* ---- tests -------------------------------------------------------------- */

static void test_ref_field(void **state)
{
	struct qkd_rng g;

	(void)state;
	/* x^63 * x = x^64 = x^4 + x^3 + x + 1; 1 is the unit. */
	assert_true(ref_mul(1ull << 63, 2) == 0x1b);
	assert_true(ref_mul(0x123456789abcdef0ull, 1) == 0x123456789abcdef0ull);
	/* x^126 = x^62 (x^4+x^3+x+1) = x^66 + x^65 + x^63 + x^62, with
	 * x^66 = x^6+x^5+x^3+x^2 (0x6c) and x^65 = x^5+x^4+x^2+x (0x36). */
	assert_true(ref_mul(1ull << 63, 1ull << 63) ==
		    ((1ull << 63) ^ (1ull << 62) ^ 0x6c ^ 0x36));
	qkd_rng_init_seed(&g, 1, "auth_wc");
	for (int i = 0; i < 1000; i++) {
		uint64_t a = qkd_rng_u64(&g), b = qkd_rng_u64(&g);

		assert_true(ref_mul(a, b) == qkd_gf64_mul(a, b));
	}
	qkd_rng_cleanup(&g);
}

/* Tags of both parties for messages of every length class against the
 * reference, plus one frozen vector (seq 3, 8-byte message, Alice) that pins
 * the byte conventions, computed once by a separate Python transcription
 * of the definition. */
static void test_kat(void **state)
{
	static const uint8_t frozen[8] = {0xcb, 0x63, 0x71, 0x64, 0xc3, 0x4a, 0x14, 0xfe};
	static const size_t lens[] = {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 100, 1000};
	enum { N = sizeof lens / sizeof lens[0] };
	uint8_t boot[16 + 16 * N], msg[1000], got[8], want[8];
	struct qkd_wc *a, *b;

	(void)state;
	fill_pattern(msg, sizeof msg, 101, 7);
	make_pair(&a, &b, boot, N);
	for (uint32_t s = 0; s < N; s++) {
		assert_int_equal(qkd_wc_tag(a, s, msg, lens[s], got), QKD_OK);
		ref_tag(boot, 0, s, msg, lens[s], want);
		assert_memory_equal(got, want, 8);
		if (s == 3)
			assert_memory_equal(got, frozen, 8);
		assert_int_equal(qkd_wc_tag(b, s, msg, lens[s], got), QKD_OK);
		ref_tag(boot, 1, s, msg, lens[s], want);
		assert_memory_equal(got, want, 8);
	}
	qkd_wc_free(a);
	qkd_wc_free(b);
}

/* Many messages each way, random lengths; every tag verifies on the other side. */
static void test_roundtrip(void **state)
{
	enum { N = 300 };
	uint8_t *boot = malloc(16 + 16 * N), msg[700], tag[8];
	struct qkd_wc *a, *b;
	struct qkd_rng g;

	(void)state;
	assert_non_null(boot);
	make_pair(&a, &b, boot, N);
	qkd_rng_init_seed(&g, 2, "auth_wc");
	for (uint32_t s = 0; s < N; s++) {
		size_t len = (size_t)qkd_rng_below(&g, sizeof msg + 1);

		qkd_rng_bytes(&g, msg, len);
		assert_int_equal(qkd_wc_tag(a, s, msg, len, tag), QKD_OK);
		assert_int_equal(qkd_wc_verify(b, s, msg, len, tag), QKD_OK);
		assert_int_equal(qkd_wc_tag(b, s, msg, len, tag), QKD_OK);
		assert_int_equal(qkd_wc_verify(a, s, msg, len, tag), QKD_OK);
	}
	assert_int_equal(qkd_wc_send_pads_left(a), 0);
	assert_int_equal(qkd_wc_recv_pads_left(b), 0);
	qkd_rng_cleanup(&g);
	qkd_wc_free(a);
	qkd_wc_free(b);
	free(boot);
}

/* A flipped bit anywhere in message or tag, a tag presented under another
 * seq, a tag of one direction used in the other: all rejected. Each failure
 * burns the pad, so the honest tag for that seq is refused afterwards. */
static void test_tamper(void **state)
{
	enum { LEN = 24, N = LEN * 8 + 64 + 2 };
	uint8_t *boot = malloc(16 + 16 * N), msg[LEN], tag[8];
	struct qkd_wc *a, *b;
	uint32_t s = 0;

	(void)state;
	assert_non_null(boot);
	make_pair(&a, &b, boot, N);
	fill_pattern(msg, LEN, 3, 1);
	for (int bit = 0; bit < LEN * 8 + 64; bit++, s++) {
		assert_int_equal(qkd_wc_tag(a, s, msg, LEN, tag), QKD_OK);
		if (bit < LEN * 8)
			msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		else
			tag[(bit - LEN * 8) / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(qkd_wc_verify(b, s, msg, LEN, tag), QKD_ERR_VERIFY);
		if (bit < LEN * 8)
			msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		else
			tag[(bit - LEN * 8) / 8] ^= (uint8_t)(1u << (bit % 8));
		/* The pad is burned: the genuine tag gets no second chance. */
		assert_int_equal(qkd_wc_verify(b, s, msg, LEN, tag), QKD_ERR_VERIFY);
	}
	/* Alice's tag for seq s offered as seq s+1 (Bob skips s, uses pad s+1). */
	assert_int_equal(qkd_wc_tag(a, s, msg, LEN, tag), QKD_OK);
	assert_int_equal(qkd_wc_verify(b, s + 1, msg, LEN, tag), QKD_ERR_VERIFY);
	qkd_wc_free(a);
	qkd_wc_free(b);
	/* Reflection: Alice's frame sent back to Alice meets the other
	 * direction's key and pad; Bob still accepts it. */
	make_pair(&a, &b, boot, 1);
	assert_int_equal(qkd_wc_tag(a, 0, msg, LEN, tag), QKD_OK);
	assert_int_equal(qkd_wc_verify(a, 0, msg, LEN, tag), QKD_ERR_VERIFY);
	assert_int_equal(qkd_wc_verify(b, 0, msg, LEN, tag), QKD_OK);
	qkd_wc_free(a);
	qkd_wc_free(b);
	free(boot);
}

/* Replays are refused on both sides; a dropped frame does not desynchronise. */
static void test_replay_and_drop(void **state)
{
	uint8_t boot[16 + 16 * 10], tag[10][8];
	const uint8_t *m = (const uint8_t *)"frame";
	struct qkd_wc *a, *b;

	(void)state;
	make_pair(&a, &b, boot, 10);
	for (uint32_t s = 0; s < 6; s++)
		assert_int_equal(qkd_wc_tag(a, s, m, 5, tag[s]), QKD_OK);
	/* Tagging a used seq again would reuse its pad. */
	assert_int_equal(qkd_wc_tag(a, 5, m, 5, tag[9]), QKD_ERR_VERIFY);
	assert_int_equal(qkd_wc_tag(a, 0, m, 5, tag[9]), QKD_ERR_VERIFY);
	assert_int_equal(qkd_wc_verify(b, 0, m, 5, tag[0]), QKD_OK);
	assert_int_equal(qkd_wc_verify(b, 0, m, 5, tag[0]), QKD_ERR_VERIFY);
	/* Frames 1 and 2 are lost: 3 still verifies, with pad 3. */
	assert_int_equal(qkd_wc_verify(b, 3, m, 5, tag[3]), QKD_OK);
	assert_true(qkd_wc_next_recv_seq(b) == 4);
	/* The late frames are now replays: their pads were destroyed. */
	assert_int_equal(qkd_wc_verify(b, 1, m, 5, tag[1]), QKD_ERR_VERIFY);
	assert_int_equal(qkd_wc_verify(b, 2, m, 5, tag[2]), QKD_ERR_VERIFY);
	assert_int_equal(qkd_wc_verify(b, 3, m, 5, tag[3]), QKD_ERR_VERIFY);
	assert_int_equal(qkd_wc_verify(b, 5, m, 5, tag[5]), QKD_OK);
	assert_int_equal(qkd_wc_recv_pads_left(b), 4);
	qkd_wc_free(a);
	qkd_wc_free(b);
}

/* The saved image of a lease (qkd_wc_export) claims every seq below the
 * lease used: a party restored from it can never tag or check with a pad it
 * may already have used, and still talks to a peer that did not restart. */
static void test_export_import(void **state)
{
	uint8_t boot[16 + 16 * 20], tag[8], t2[8];
	const uint8_t *m = (const uint8_t *)"frame";
	struct qkd_wc *a, *b, *a2 = NULL;
	struct qkd_wbuf img;
	struct qkd_rbuf r;

	(void)state;
	make_pair(&a, &b, boot, 20);
	for (uint32_t s = 0; s < 3; s++) {
		assert_int_equal(qkd_wc_tag(a, s, m, 5, tag), QKD_OK);
		assert_int_equal(qkd_wc_verify(b, s, m, 5, tag), QKD_OK);
	}
	qkd_wbuf_init_secret(&img);
	assert_int_equal(qkd_wc_export(a, 8, 0, &img), QKD_OK);
	qkd_rbuf_init(&r, img.p, img.len);
	assert_int_equal(qkd_wc_import(&a2, &r), QKD_OK);
	assert_true(qkd_wc_next_send_seq(a2) == 8);
	assert_true(qkd_wc_send_pads_left(a2) == 12);
	/* Seqs below the lease are gone, as after a crash. */
	assert_int_equal(qkd_wc_tag(a2, 5, m, 5, tag), QKD_ERR_VERIFY);
	/* The restored Alice and the old one agree from the lease on. */
	assert_int_equal(qkd_wc_tag(a2, 8, m, 5, tag), QKD_OK);
	assert_int_equal(qkd_wc_tag(a, 8, m, 5, t2), QKD_OK);
	assert_memory_equal(tag, t2, 8);
	assert_int_equal(qkd_wc_verify(b, 8, m, 5, tag), QKD_OK);
	/* A damaged image is refused, whatever byte is cut off. */
	for (size_t cut = 0; cut < img.len; cut += 7) {
		struct qkd_wc *x = NULL;

		qkd_rbuf_init(&r, img.p, cut);
		assert_int_not_equal(qkd_wc_import(&x, &r), QKD_OK);
		assert_null(x);
	}
	qkd_wbuf_cleanup(&img);
	qkd_wc_free(a);
	qkd_wc_free(a2);
	qkd_wc_free(b);
}

/* Running out gives QKD_ERR_NOKEY and consumes nothing; replenishing both
 * sides with the same bytes, in odd-sized pieces, brings them back in step. */
static void test_exhaustion(void **state)
{
	uint8_t boot[QKD_WC_MIN_BOOTSTRAP], fresh[45], tag[8];
	const uint8_t *m = (const uint8_t *)"msg";
	struct qkd_wc *a, *b;

	(void)state;
	make_pair(&a, &b, boot, 1);
	assert_int_equal(qkd_wc_send_pads_left(a), 1);
	assert_int_equal(qkd_wc_tag(a, 0, m, 3, tag), QKD_OK);
	assert_int_equal(qkd_wc_verify(b, 0, m, 3, tag), QKD_OK);
	assert_int_equal(qkd_wc_tag(a, 1, m, 3, tag), QKD_ERR_NOKEY);
	assert_int_equal(qkd_wc_verify(b, 1, m, 3, tag), QKD_ERR_NOKEY);
	assert_int_equal(qkd_wc_verify(b, 7, m, 3, tag), QKD_ERR_NOKEY);
	assert_true(qkd_wc_next_send_seq(a) == 1);
	assert_true(qkd_wc_next_recv_seq(b) == 1);
	assert_string_equal(qkd_strerror(QKD_ERR_NOKEY), "authentication key exhausted");
	/* 45 bytes = 5 pads + 5 bytes: AB gets 3, BA 2, BA next. Pieces of 1,
	 * 6, 13 and 25 bytes on Alice, 45 at once on Bob: same pads. */
	fill_pattern(fresh, sizeof fresh, 59, 200);
	assert_int_equal(qkd_wc_replenish(a, fresh, 1), QKD_OK);
	assert_int_equal(qkd_wc_replenish(a, fresh + 1, 6), QKD_OK);
	assert_int_equal(qkd_wc_replenish(a, fresh + 7, 13), QKD_OK);
	assert_int_equal(qkd_wc_replenish(a, fresh + 20, 25), QKD_OK);
	assert_int_equal(qkd_wc_replenish(a, NULL, 0), QKD_OK);
	assert_int_equal(qkd_wc_replenish(b, fresh, sizeof fresh), QKD_OK);
	assert_int_equal(qkd_wc_send_pads_left(a), 3);
	assert_int_equal(qkd_wc_recv_pads_left(a), 3);	/* BA's bootstrap pad is unused */
	assert_int_equal(qkd_wc_send_pads_left(b), 3);
	assert_int_equal(qkd_wc_recv_pads_left(b), 3);
	for (uint32_t s = 1; s < 4; s++) {
		assert_int_equal(qkd_wc_tag(a, s, m, 3, tag), QKD_OK);
		assert_int_equal(qkd_wc_verify(b, s, m, 3, tag), QKD_OK);
	}
	for (uint32_t s = 0; s < 3; s++) {
		assert_int_equal(qkd_wc_tag(b, s, m, 3, tag), QKD_OK);
		assert_int_equal(qkd_wc_verify(a, s, m, 3, tag), QKD_OK);
	}
	assert_int_equal(qkd_wc_tag(b, 3, m, 3, tag), QKD_ERR_NOKEY);
	/* 3 more bytes complete the pending pad, which goes to BA. */
	assert_int_equal(qkd_wc_replenish(a, fresh, 3), QKD_OK);
	assert_int_equal(qkd_wc_replenish(b, fresh, 3), QKD_OK);
	assert_int_equal(qkd_wc_tag(b, 3, m, 3, tag), QKD_OK);
	assert_int_equal(qkd_wc_verify(a, 3, m, 3, tag), QKD_OK);
	assert_int_equal(qkd_wc_tag(a, 4, m, 3, tag), QKD_ERR_NOKEY);
	assert_int_equal(qkd_wc_replenish(NULL, fresh, 3), QKD_ERR_INVAL);
	assert_int_equal(qkd_wc_replenish(a, NULL, 3), QKD_ERR_INVAL);
	qkd_wc_free(a);
	qkd_wc_free(b);
}

/* Every counter after a scripted exchange. */
static void test_counters(void **state)
{
	uint8_t boot[16 + 16 * 8], tag[8];
	const uint8_t *m = (const uint8_t *)"count";
	struct qkd_wc_stats st;
	struct qkd_wc *a, *b;

	(void)state;
	make_pair(&a, &b, boot, 8);
	qkd_wc_get_stats(b, &st);
	assert_true(st.key_bits_in == 8 * sizeof boot);
	assert_true(st.hash_key_bits == 128);
	assert_true(st.send_bits_left == 8 * 64 && st.recv_bits_left == 8 * 64);
	assert_true(qkd_wc_bits_spent(b) == 128);
	for (uint32_t s = 0; s < 3; s++) {
		assert_int_equal(qkd_wc_tag(a, s, m, 5, tag), QKD_OK);
		assert_int_equal(qkd_wc_verify(b, s, m, 5, tag), QKD_OK);
	}
	assert_int_equal(qkd_wc_tag(a, 3, m, 5, tag), QKD_OK);
	tag[0] ^= 1;
	assert_int_equal(qkd_wc_verify(b, 3, m, 5, tag), QKD_ERR_VERIFY);
	assert_int_equal(qkd_wc_verify(b, 2, m, 5, tag), QKD_ERR_VERIFY);	/* replay */
	assert_int_equal(qkd_wc_verify(b, 8, m, 5, tag), QKD_ERR_NOKEY);	/* not a failure */
	assert_int_equal(qkd_wc_verify(b, 6, m, 5, tag), QKD_ERR_VERIFY);	/* skips 4, 5 */
	assert_int_equal(qkd_wc_tag(b, 1, m, 5, tag), QKD_OK);			/* skips 0 */
	assert_int_equal(qkd_wc_replenish(b, boot, 3), QKD_OK);
	qkd_wc_get_stats(b, &st);
	assert_true(st.key_bits_in == 8 * (sizeof boot + 3));
	assert_true(st.tags_made == 1);
	assert_true(st.tags_verified == 3);
	assert_true(st.tags_failed == 3);
	assert_true(st.recv_bits_spent == 7 * 64);
	assert_true(st.recv_bits_left == 1 * 64);
	assert_true(st.send_bits_spent == 2 * 64);
	assert_true(st.send_bits_left == 6 * 64);
	assert_true(st.pending_bits == 24);
	assert_true(qkd_wc_bits_spent(b) == 128 + 9 * 64);
	qkd_wc_get_stats(a, &st);
	assert_true(st.tags_made == 4 && st.tags_verified == 0 && st.tags_failed == 0);
	assert_true(st.send_bits_spent == 4 * 64 && st.recv_bits_spent == 0);
	qkd_wc_free(a);
	qkd_wc_free(b);
}

static void test_bad_bootstrap(void **state)
{
	uint8_t boot[QKD_WC_MIN_BOOTSTRAP];
	struct qkd_wc *w = (struct qkd_wc *)boot;	/* must be reset to NULL */

	(void)state;
	fill_pattern(boot, sizeof boot, 5, 1);
	assert_int_equal(qkd_wc_new(&w, boot, sizeof boot - 1, true), QKD_ERR_INVAL);
	assert_null(w);
	assert_int_equal(qkd_wc_new(&w, NULL, sizeof boot, true), QKD_ERR_INVAL);
	assert_int_equal(qkd_wc_new(NULL, boot, sizeof boot, true), QKD_ERR_INVAL);
	/* A zero hash key, in either direction, is refused. */
	memset(boot + 8, 0, 8);
	assert_int_equal(qkd_wc_new(&w, boot, sizeof boot, false), QKD_ERR_INVAL);
	assert_null(w);
	fill_pattern(boot, sizeof boot, 5, 1);
	memset(boot, 0, 8);
	assert_int_equal(qkd_wc_new(&w, boot, sizeof boot, true), QKD_ERR_INVAL);
	fill_pattern(boot, sizeof boot, 5, 1);
	assert_int_equal(qkd_wc_new(&w, boot, sizeof boot, true), QKD_OK);
	assert_non_null(w);
	assert_int_equal(qkd_wc_send_pads_left(w), 1);
	assert_int_equal(qkd_wc_recv_pads_left(w), 1);
	qkd_wc_free(w);
	qkd_wc_free(NULL);
}

/* Frames authenticated end to end between two channels on a socketpair. */
static void test_channel_roundtrip(void **state)
{
	uint8_t boot[16 + 16 * 20];
	struct qkd_wc *wa, *wb;
	struct qkd_channel ca, cb;
	struct qkd_rbuf r;
	uint8_t type;
	int sv[2];

	(void)state;
	make_pair(&wa, &wb, boot, 20);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	qkd_channel_init(&ca, sv[0], &qkd_auth_wc, wa);
	qkd_channel_init(&cb, sv[1], &qkd_auth_wc, wb);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(qkd_channel_send(&cb, QKD_MSG_EC_REQ, (const uint8_t *)"query", 5), QKD_OK);
		assert_int_equal(qkd_channel_expect(&ca, QKD_MSG_EC_REQ, &r), QKD_OK);
		assert_int_equal(qkd_rbuf_left(&r), 5);
		assert_memory_equal(r.p + r.off, "query", 5);
		assert_int_equal(qkd_channel_send(&ca, QKD_MSG_EC_REPLY, NULL, 0), QKD_OK);
		assert_int_equal(qkd_channel_recv(&cb, &type, &r), QKD_OK);
		assert_int_equal(type, QKD_MSG_EC_REPLY);
		assert_int_equal(qkd_rbuf_left(&r), 0);
	}
	/* Out of pads: the sender says so and sends nothing. */
	assert_int_equal(qkd_channel_send(&ca, QKD_MSG_DONE, NULL, 0), QKD_ERR_NOKEY);
	assert_true(ca.frames_sent == 20);
	/* Alice replenishes, Bob (out of step) does not: Bob reports NOKEY for
	 * the frame he expected. */
	assert_int_equal(qkd_wc_replenish(wa, boot, 16), QKD_OK);
	assert_int_equal(qkd_channel_send(&ca, QKD_MSG_DONE, NULL, 0), QKD_OK);
	assert_int_equal(qkd_channel_recv(&cb, &type, &r), QKD_ERR_NOKEY);
	qkd_channel_cleanup(&ca);
	qkd_channel_cleanup(&cb);
	close(sv[0]);
	close(sv[1]);
	qkd_wc_free(wa);
	qkd_wc_free(wb);
}

/* Alice's channel writes into one socketpair; the frame is copied to a
 * second with byte off flipped; Bob's channel reads that. Returns Bob's
 * result. Frame: 4 length, 6 header, 7 payload, 8 tag bytes. */
static int relay_flipped(size_t off, uint8_t mask)
{
	uint8_t boot[16 + 16 * 2], frame[4 + 6 + 7 + 8], type;
	struct qkd_wc *wa, *wb;
	struct qkd_channel ca, cb;
	struct qkd_rbuf r;
	int p[2], q[2], rc;

	make_pair(&wa, &wb, boot, 2);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, q), 0);
	qkd_channel_init(&ca, p[0], &qkd_auth_wc, wa);
	qkd_channel_init(&cb, q[1], &qkd_auth_wc, wb);
	assert_int_equal(qkd_channel_send(&ca, QKD_MSG_HELLO, (const uint8_t *)"payload", 7), QKD_OK);
	assert_int_equal(qkd_read_all(p[1], frame, sizeof frame), QKD_OK);
	if (off < sizeof frame)
		frame[off] ^= mask;
	assert_int_equal(qkd_write_all(q[0], frame, sizeof frame), QKD_OK);
	rc = qkd_channel_recv(&cb, &type, &r);
	if (rc == QKD_OK) {
		assert_int_equal(type, QKD_MSG_HELLO);
		assert_memory_equal(r.p + r.off, "payload", 7);
	}
	qkd_channel_cleanup(&ca);
	qkd_channel_cleanup(&cb);
	close(p[0]); close(p[1]); close(q[0]); close(q[1]);
	qkd_wc_free(wa);
	qkd_wc_free(wb);
	return rc;
}

static void test_channel_wire_flip(void **state)
{
	(void)state;
	assert_int_equal(relay_flipped(SIZE_MAX, 0), QKD_OK);
	/* Every byte after the length prefix, low and high bit: version, type,
	 * seq (which also moves to an unheld pad or a replay), payload, tag. */
	for (size_t off = 4; off < 4 + 6 + 7 + 8; off++) {
		assert_int_equal(relay_flipped(off, 0x01), QKD_ERR_VERIFY);
		assert_int_equal(relay_flipped(off, 0x80), QKD_ERR_VERIFY);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref_field),
		cmocka_unit_test(test_kat),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_replay_and_drop),
		cmocka_unit_test(test_exhaustion),
		cmocka_unit_test(test_export_import),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_bad_bootstrap),
		cmocka_unit_test(test_channel_roundtrip),
		cmocka_unit_test(test_channel_wire_flip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
