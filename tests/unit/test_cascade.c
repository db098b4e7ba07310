/* test_cascade.c - error correction (include/qkd/ec.h): correctness,
 * efficiency, the engine's driving pattern, hostile messages, determinism.
 *
 * Alice and Bob are separate objects that only exchange serialized messages
 * here, exactly as over the network.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qkd/bits.h"
#include "qkd/ec.h"
#include "qkd/error.h"
#include "qkd/rng.h"
#include "qkd/wire.h"

/* Wire constants as documented in docs/error-correction.md. */
#define MSG_REQUEST 0x51
#define MSG_REPLY 0x52
#define REC_NEW 0x01
#define REC_PASS 0x02
#define REC_QUERY 0x04
#define REC_DONE 0x08
#define PASS_IDENT 0
#define PASS_MASK 2

#define MAX_FRAMES 64

struct link {
	struct qkd_rng brng;
	struct qkd_ec_bob *bob;
	struct qkd_ec_alice *alice;
	struct qkd_wbuf req, rep;
	struct qkd_bits a[MAX_FRAMES];	/* Alice's frames, by id */
	size_t errors[MAX_FRAMES];
	unsigned finished, rounds;
	uint64_t disclosed[MAX_FRAMES], alice_disclosed[MAX_FRAMES];
	uint64_t corrected[MAX_FRAMES];
	struct qkd_bits out[MAX_FRAMES];	/* Bob's corrected frames */
};

static double h2(double p)
{
	return p <= 0 || p >= 1 ? 0 : -p * log2(p) - (1 - p) * log2(1 - p);
}

static void link_init(struct link *l, const char *variant, uint64_t seed)
{
	memset(l, 0, sizeof *l);
	qkd_rng_init_seed(&l->brng, seed, "bob");
	assert_int_equal(qkd_ec_bob_new(&l->bob, variant, &l->brng), QKD_OK);
	assert_int_equal(qkd_ec_alice_new(&l->alice, variant), QKD_OK);
	qkd_wbuf_init(&l->req);
	qkd_wbuf_init(&l->rep);
}

static void link_cleanup(struct link *l)
{
	qkd_ec_bob_free(l->bob);
	qkd_ec_alice_free(l->alice);
	qkd_wbuf_cleanup(&l->req);
	qkd_wbuf_cleanup(&l->rep);
	for (int i = 0; i < MAX_FRAMES; i++) {
		qkd_bits_cleanup(&l->a[i]);
		qkd_bits_cleanup(&l->out[i]);
	}
	qkd_rng_cleanup(&l->brng);
}

/* Alice's random frame id of n bits; Bob's copy gets errors at rate q
 * (exactly `exact` errors if exact >= 0). */
static void add_frame(struct link *l, struct qkd_rng *g, unsigned id, size_t n,
		      double q, long exact)
{
	struct qkd_bits b;

	assert_true(id < MAX_FRAMES);
	assert_int_equal(qkd_bits_init(&l->a[id], n), QKD_OK);
	qkd_rng_bytes(g, l->a[id].w, qkd_bits_words(n) * 8);
	qkd_bits_trim(&l->a[id]);
	assert_int_equal(qkd_bits_copy(&b, &l->a[id]), QKD_OK);
	if (exact >= 0) {
		while (qkd_bits_distance(&b, &l->a[id]) < (size_t)exact) {
			size_t i = qkd_rng_below(g, n);

			if (qkd_bits_get(&b, i) == qkd_bits_get(&l->a[id], i))
				qkd_bits_flip(&b, i);
		}
	} else {
		for (size_t i = 0; i < n; i++)
			if (qkd_rng_double(g) < q)
				qkd_bits_flip(&b, i);
	}
	l->errors[id] = qkd_bits_distance(&b, &l->a[id]);
	assert_int_equal(qkd_ec_bob_add_frame(l->bob, id, &b, q > 0 ? q : 0.01), QKD_OK);
	assert_int_equal(qkd_ec_alice_add_frame(l->alice, id, &l->a[id]), QKD_OK);
	qkd_bits_cleanup(&b);
}

/* Collect what both sides finished. */
static void take(struct link *l)
{
	uint64_t id, d, c;
	struct qkd_bits out = { NULL, 0 };

	while (qkd_ec_alice_take_done(l->alice, &id, &d) == 1) {
		assert_true(id < MAX_FRAMES);
		l->alice_disclosed[id] = d;
	}
	while (qkd_ec_bob_take_done(l->bob, &id, &out, &d, &c) == 1) {
		assert_true(id < MAX_FRAMES);
		l->out[id] = out;
		l->disclosed[id] = d;
		l->corrected[id] = c;
		l->finished++;
		out.w = NULL;
		out.n = 0;
	}
}

/* One round trip; returns what qkd_ec_bob_request returned. */
static int pump(struct link *l)
{
	struct qkd_rbuf r;
	int rc;

	qkd_wbuf_reset(&l->req);
	qkd_wbuf_reset(&l->rep);
	rc = qkd_ec_bob_request(l->bob, &l->req);
	assert_true(rc == 0 || rc == 1);
	if (rc == 1) {
		qkd_rbuf_init(&r, l->req.p, l->req.len);
		assert_int_equal(qkd_ec_alice_answer(l->alice, &r, &l->rep), QKD_OK);
		qkd_rbuf_init(&r, l->rep.p, l->rep.len);
		assert_int_equal(qkd_ec_bob_reply(l->bob, &r), QKD_OK);
		l->rounds++;
	}
	take(l);
	return rc;
}

static void run_to_end(struct link *l)
{
	unsigned guard = 0;

	while (pump(l) == 1)
		assert_true(++guard < 100000);
}

/* Every frame came out right, with equal disclosed counts on both sides. */
static void check_frames(struct link *l, unsigned nframes)
{
	assert_int_equal(l->finished, nframes);
	for (unsigned i = 0; i < nframes; i++) {
		assert_true(qkd_bits_equal(&l->out[i], &l->a[i]));
		assert_int_equal(l->disclosed[i], l->alice_disclosed[i]);
		assert_int_equal(l->corrected[i], l->errors[i]);
	}
}

/* --- names --- */

static void test_names(void **state)
{
	const char *const *names = qkd_ec_names();
	unsigned n = 0;

	(void)state;
	for (; names[n] != NULL; n++) {
		assert_true(qkd_ec_name_valid(names[n]));
		assert_non_null(qkd_ec_describe(names[n]));
	}
	assert_int_equal(n, 2);
	assert_string_equal(names[0], QKD_EC_DEFAULT);
	assert_true(qkd_ec_name_valid("cascade-bbn"));
	assert_false(qkd_ec_name_valid("ldpc"));
	assert_false(qkd_ec_name_valid(NULL));
	assert_null(qkd_ec_describe("nope"));
}

/* --- correctness --- */

static void many_frames(const char *variant)
{
	static const size_t sizes[] = { 4000, 2500, 3001, 1000, 16384, 777 };
	struct qkd_rng g;
	unsigned id = 0;

	qkd_rng_init_seed(&g, 11, variant);
	for (unsigned pct = 1; pct <= 10; pct++) {
		struct link l;

		link_init(&l, variant, pct);
		/* Several frames in flight, of different lengths. */
		for (id = 0; id < 36; id++)
			add_frame(&l, &g, id, sizes[id % 6], pct / 100.0, -1);
		run_to_end(&l);
		check_frames(&l, id);
		link_cleanup(&l);
	}
	qkd_rng_cleanup(&g);
}

static void test_many_frames_default(void **state)
{
	(void)state;
	many_frames("cascade");
}

static void test_many_frames_bbn(void **state)
{
	(void)state;
	many_frames("cascade-bbn");
}

static void test_zero_and_one_error(void **state)
{
	static const char *variants[] = { "cascade", "cascade-bbn" };
	struct qkd_rng g;

	(void)state;
	qkd_rng_init_seed(&g, 3, "zero");
	for (unsigned v = 0; v < 2; v++) {
		struct link l;

		link_init(&l, variants[v], 5);
		add_frame(&l, &g, 0, 8192, 0.02, 0);
		add_frame(&l, &g, 1, 8192, 0.02, 1);
		add_frame(&l, &g, 2, 777, 0.02, 1);
		run_to_end(&l);
		check_frames(&l, 3);
		assert_int_equal(l.corrected[0], 0);
		assert_int_equal(l.corrected[1], 1);
		/* No error: only block parities and confirmations are disclosed. */
		assert_true(l.disclosed[0] > 0 && l.disclosed[0] < 8192 / 4);
		link_cleanup(&l);
	}
	qkd_rng_cleanup(&g);
}

static void test_odd_lengths(void **state)
{
	struct qkd_rng g;
	struct link l;
	unsigned id = 0;

	(void)state;
	qkd_rng_init_seed(&g, 4, "odd");
	link_init(&l, NULL, 6);
	/* Lengths not multiples of 64, down to a single bit. */
	for (size_t n = 1; n <= 9; n++)
		add_frame(&l, &g, id++, n, 0.1, n > 2 ? 1 : (long)n - 1);
	add_frame(&l, &g, id++, 63, 0.05, 2);
	add_frame(&l, &g, id++, 65, 0.05, 3);
	add_frame(&l, &g, id++, 127, 0.05, -1);
	add_frame(&l, &g, id++, 1000, 0.08, -1);
	add_frame(&l, &g, id++, 4097, 0.03, -1);
	run_to_end(&l);
	check_frames(&l, id);
	link_cleanup(&l);
	qkd_rng_cleanup(&g);
}

/* The engine adds frames while others are in flight and takes finished
 * ones out as they come, in the request -> answer -> reply loop. */
static void test_engine_pattern(void **state)
{
	struct qkd_rng g;
	struct link l;
	unsigned next = 0, guard = 0;

	(void)state;
	qkd_rng_init_seed(&g, 5, "engine");
	link_init(&l, NULL, 7);
	while (l.finished < 12) {
		while (next < 12 && qkd_ec_bob_in_flight(l.bob) < 4) {
			add_frame(&l, &g, next, 2048 + 65 * next, 0.04, -1);
			next++;
		}
		assert_true(pump(&l) == 1 || next == 12);
		assert_true(++guard < 100000);
	}
	assert_int_equal(pump(&l), 0);	/* nothing left to say */
	check_frames(&l, 12);
	assert_int_equal(qkd_ec_bob_in_flight(l.bob), 0);
	link_cleanup(&l);
	qkd_rng_cleanup(&g);
}

/* Efficiency of the default variant on the recommended frame size: the
 * literature's f = disclosed / (n h(QBER)) with QBER the actual error rate. */
static void test_efficiency_default(void **state)
{
	static const double qbers[] = { 0.02, 0.05 };
	struct qkd_rng g;

	(void)state;
	qkd_rng_init_seed(&g, 9, "eff");
	for (unsigned k = 0; k < 2; k++) {
		struct link l;
		double disclosed = 0, ideal = 0;

		link_init(&l, NULL, 20 + k);
		for (unsigned id = 0; id < 8; id++)
			add_frame(&l, &g, id, QKD_EC_DEFAULT_FRAME_BITS, qbers[k], -1);
		run_to_end(&l);
		check_frames(&l, 8);
		for (unsigned id = 0; id < 8; id++) {
			size_t n = QKD_EC_DEFAULT_FRAME_BITS;

			disclosed += l.disclosed[id];
			ideal += n * h2((double)l.errors[id] / n);
		}
		print_message("QBER %.0f%%: f = %.4f\n", 100 * qbers[k], disclosed / ideal);
		assert_true(disclosed / ideal < 1.10);
		assert_true(disclosed / ideal > 1.0);	/* Shannon bound */
		link_cleanup(&l);
	}
	qkd_rng_cleanup(&g);
}

/* Bob's estimate off by +-20%: still exact, efficiency a little worse. */
static void test_estimate_off(void **state)
{
	static const double factor[] = { 0.8, 1.2 };
	struct qkd_rng g;

	(void)state;
	qkd_rng_init_seed(&g, 10, "est");
	for (unsigned k = 0; k < 2; k++) {
		struct link l;
		struct qkd_bits b;

		link_init(&l, NULL, 30 + k);
		for (unsigned id = 0; id < 4; id++) {
			assert_int_equal(qkd_bits_init(&l.a[id], 16384), QKD_OK);
			qkd_rng_bytes(&g, l.a[id].w, 16384 / 8);
			assert_int_equal(qkd_bits_copy(&b, &l.a[id]), QKD_OK);
			for (size_t i = 0; i < 16384; i++)
				if (qkd_rng_double(&g) < 0.03)
					qkd_bits_flip(&b, i);
			l.errors[id] = qkd_bits_distance(&b, &l.a[id]);
			assert_int_equal(qkd_ec_bob_add_frame(l.bob, id, &b, 0.03 * factor[k]), QKD_OK);
			assert_int_equal(qkd_ec_alice_add_frame(l.alice, id, &l.a[id]), QKD_OK);
			qkd_bits_cleanup(&b);
		}
		run_to_end(&l);
		check_frames(&l, 4);
		link_cleanup(&l);
	}
	qkd_rng_cleanup(&g);
}

/* --- API misuse --- */

static void test_misuse(void **state)
{
	struct qkd_rng g;
	struct link l;
	struct qkd_bits b;
	struct qkd_ec_bob *bob = NULL;
	struct qkd_ec_alice *alice = NULL;
	struct qkd_rbuf r;

	(void)state;
	assert_int_equal(qkd_ec_bob_new(&bob, "nope", &g), QKD_ERR_INVAL);
	assert_null(bob);
	assert_int_equal(qkd_ec_alice_new(&alice, "nope"), QKD_ERR_INVAL);
	qkd_ec_bob_free(NULL);
	qkd_ec_alice_free(NULL);

	qkd_rng_init_seed(&g, 12, "misuse");
	link_init(&l, NULL, 12);
	add_frame(&l, &g, 0, 1000, 0.05, -1);
	assert_int_equal(qkd_bits_init(&b, 1000), QKD_OK);
	assert_int_equal(qkd_ec_bob_add_frame(l.bob, 0, &b, 0.05), QKD_ERR_INVAL);
	assert_int_equal(qkd_ec_alice_add_frame(l.alice, 0, &b), QKD_ERR_INVAL);
	assert_int_equal(qkd_ec_bob_add_frame(l.bob, 1, &b, 0.9), QKD_ERR_INVAL);
	assert_int_equal(qkd_ec_bob_add_frame(l.bob, 1, &b, NAN), QKD_ERR_INVAL);
	qkd_bits_cleanup(&b);
	assert_int_equal(qkd_bits_init(&b, 0), QKD_OK);
	assert_int_equal(qkd_ec_bob_add_frame(l.bob, 2, &b, 0.05), QKD_ERR_INVAL);
	qkd_bits_cleanup(&b);

	/* A reply nobody asked for; a second request before the reply. */
	qkd_rbuf_init(&r, "\x52\x01\x00\x00", 4);
	assert_int_equal(qkd_ec_bob_reply(l.bob, &r), QKD_ERR_PROTO);
	assert_int_equal(qkd_ec_bob_request(l.bob, &l.req), 1);
	assert_int_equal(qkd_ec_bob_request(l.bob, &l.req), QKD_ERR_INVAL);
	link_cleanup(&l);
	qkd_rng_cleanup(&g);
}

static void test_variant_mismatch(void **state)
{
	struct qkd_rng g, br;
	struct qkd_ec_bob *bob;
	struct qkd_ec_alice *alice;
	struct qkd_wbuf req, rep;
	struct qkd_bits a;
	struct qkd_rbuf r;

	(void)state;
	qkd_rng_init_seed(&g, 13, "vm");
	qkd_rng_init_seed(&br, 13, "bob");
	assert_int_equal(qkd_ec_bob_new(&bob, "cascade", &br), QKD_OK);
	assert_int_equal(qkd_ec_alice_new(&alice, "cascade-bbn"), QKD_OK);
	assert_int_equal(qkd_bits_init(&a, 500), QKD_OK);
	assert_int_equal(qkd_ec_bob_add_frame(bob, 1, &a, 0.02), QKD_OK);
	assert_int_equal(qkd_ec_alice_add_frame(alice, 1, &a), QKD_OK);
	qkd_wbuf_init(&req);
	qkd_wbuf_init(&rep);
	assert_int_equal(qkd_ec_bob_request(bob, &req), 1);
	qkd_rbuf_init(&r, req.p, req.len);
	assert_int_equal(qkd_ec_alice_answer(alice, &r, &rep), QKD_ERR_PROTO);
	assert_int_equal(rep.len, 0);
	qkd_wbuf_cleanup(&req);
	qkd_wbuf_cleanup(&rep);
	qkd_bits_cleanup(&a);
	qkd_ec_bob_free(bob);
	qkd_ec_alice_free(alice);
	qkd_rng_cleanup(&g);
	qkd_rng_cleanup(&br);
}

/* --- hostile messages --- */

/* A request crafted by hand (docs/error-correction.md, "Wire format"). */
static void put_header(struct qkd_wbuf *w, uint64_t seq, uint64_t nrec)
{
	qkd_put_u8(w, MSG_REQUEST);
	qkd_put_u8(w, 1);
	qkd_put_varint(w, seq);
	qkd_put_varint(w, nrec);
}

static int answer_bytes(struct qkd_ec_alice *alice, const struct qkd_wbuf *msg)
{
	struct qkd_wbuf rep;
	struct qkd_rbuf r;
	int rc;

	qkd_wbuf_init(&rep);
	qkd_rbuf_init(&r, msg->p, msg->len);
	rc = qkd_ec_alice_answer(alice, &r, &rep);
	if (rc != QKD_OK)
		assert_int_equal(rep.len, 0);
	qkd_wbuf_cleanup(&rep);
	return rc;
}

/* One query "bisect (pass, block, node)" as the only query of a record. */
static int ask(struct qkd_ec_alice *alice, uint64_t seq, uint64_t pass,
	       uint64_t block, uint64_t node)
{
	struct qkd_wbuf w;
	int rc;

	qkd_wbuf_init(&w);
	put_header(&w, seq, 1);
	qkd_put_varint(&w, 0);		/* frame id */
	qkd_put_u8(&w, REC_QUERY);
	qkd_put_varint(&w, 1);
	if (pass > 0) {
		qkd_put_varint(&w, block << 1 | 1);
		qkd_put_varint(&w, pass);
	} else {
		qkd_put_varint(&w, block << 1);
	}
	qkd_put_varint(&w, node);
	rc = answer_bytes(alice, &w);
	qkd_wbuf_cleanup(&w);
	return rc;
}

static void test_hostile_requests(void **state)
{
	struct qkd_rng g;
	struct link l;
	struct qkd_wbuf w;

	(void)state;
	qkd_rng_init_seed(&g, 14, "hostile");
	/* Alice has never heard of frame 0: a request about it is refused. */
	link_init(&l, NULL, 14);
	assert_int_equal(qkd_bits_init(&l.a[0], 1000), QKD_OK);
	assert_int_equal(qkd_ec_alice_add_frame(l.alice, 5, &l.a[0]), QKD_OK);
	assert_int_equal(qkd_ec_bob_add_frame(l.bob, 0, &l.a[0], 1.0 / 64), QKD_OK);
	assert_int_equal(qkd_ec_bob_request(l.bob, &l.req), 1);
	assert_int_equal(answer_bytes(l.alice, &l.req), QKD_ERR_PROTO);
	link_cleanup(&l);

	/* Frame 0: 1000 bits, first pass IDENT with k = 64 (1/QBER rounded to a
	 * power of two): 16 blocks, the last of 40 bits. */
	link_init(&l, NULL, 15);
	add_frame(&l, &g, 0, 1000, 1.0 / 64, 3);
	assert_int_equal(pump(&l), 1);
	/* A second frame Alice knows, never started by Bob. */
	assert_int_equal(qkd_ec_alice_add_frame(l.alice, 9, &l.a[0]), QKD_OK);
	assert_int_equal(ask(l.alice, 1, 0, 16, 1), QKD_ERR_PROTO);	/* no block 16 */
	assert_int_equal(ask(l.alice, 1, 1, 0, 1), QKD_ERR_PROTO);	/* no pass 1 */
	assert_int_equal(ask(l.alice, 1, 0, 0, 0), QKD_ERR_PROTO);	/* no node 0 */
	assert_int_equal(ask(l.alice, 1, 0, 0, 128), QKD_ERR_PROTO);	/* below leaves */
	assert_int_equal(ask(l.alice, 1, 0, 0, 64), QKD_ERR_PROTO);	/* a single bit */
	assert_int_equal(ask(l.alice, 1, 0, 15, 32), QKD_ERR_PROTO);	/* 1 bit of 40 */
	assert_int_equal(ask(l.alice, 1, 0, (uint64_t)1 << 40, 1), QKD_ERR_PROTO);
	assert_int_equal(ask(l.alice, 1, 0, 0, (uint64_t)1 << 40), QKD_ERR_RANGE);
	assert_int_equal(ask(l.alice, 7, 0, 0, 1), QKD_ERR_PROTO);	/* sequence */
	/* Malformed records. */
	qkd_wbuf_init(&w);
	put_header(&w, 1, 3);	/* more records than Alice has frames */
	qkd_put_varint(&w, 0);
	qkd_put_u8(&w, REC_DONE);
	assert_int_equal(answer_bytes(l.alice, &w), QKD_ERR_RANGE);
	qkd_wbuf_reset(&w);
	put_header(&w, 1, 1);
	qkd_put_varint(&w, 0);
	qkd_put_u8(&w, REC_PASS);
	qkd_put_u8(&w, PASS_IDENT);
	qkd_put_varint(&w, 0);	/* block size 0 */
	assert_int_equal(answer_bytes(l.alice, &w), QKD_ERR_PROTO);
	w.len -= 1;
	qkd_put_varint(&w, 1001);	/* block larger than the frame */
	assert_int_equal(answer_bytes(l.alice, &w), QKD_ERR_RANGE);
	qkd_wbuf_reset(&w);
	put_header(&w, 1, 1);
	qkd_put_varint(&w, 0);
	qkd_put_u8(&w, REC_PASS);
	qkd_put_u8(&w, PASS_MASK);
	qkd_put_varint(&w, 64);	/* more passes than allowed */
	assert_int_equal(answer_bytes(l.alice, &w), QKD_ERR_RANGE);
	qkd_wbuf_reset(&w);
	put_header(&w, 1, 1);
	qkd_put_varint(&w, 0);
	qkd_put_u8(&w, REC_NEW | REC_PASS);	/* frame already started */
	qkd_put_u8(&w, 1);
	qkd_put_varint(&w, 1000);
	qkd_put_u64(&w, 0);
	qkd_put_u8(&w, PASS_MASK);
	qkd_put_varint(&w, 1);
	assert_int_equal(answer_bytes(l.alice, &w), QKD_ERR_PROTO);
	qkd_wbuf_reset(&w);
	put_header(&w, 1, 1);
	qkd_put_varint(&w, 0);
	qkd_put_u8(&w, REC_DONE | REC_QUERY);	/* no such combination */
	assert_int_equal(answer_bytes(l.alice, &w), QKD_ERR_PROTO);
	qkd_wbuf_reset(&w);
	put_header(&w, 1, 2);	/* the same frame twice */
	for (int i = 0; i < 2; i++) {
		qkd_put_varint(&w, 0);
		qkd_put_u8(&w, REC_PASS);
		qkd_put_u8(&w, PASS_MASK);
		qkd_put_varint(&w, 1);
	}
	assert_int_equal(answer_bytes(l.alice, &w), QKD_ERR_PROTO);
	qkd_wbuf_reset(&w);
	put_header(&w, 1, 1);
	qkd_put_varint(&w, 9);
	qkd_put_u8(&w, REC_QUERY);	/* a frame Bob never started */
	qkd_put_varint(&w, 0);
	assert_int_equal(answer_bytes(l.alice, &w), QKD_ERR_PROTO);
	qkd_wbuf_reset(&w);
	put_header(&w, 1, 1);
	qkd_put_varint(&w, 9);
	qkd_put_u8(&w, REC_NEW | REC_PASS);	/* wrong length for frame 9 */
	qkd_put_u8(&w, 1);
	qkd_put_varint(&w, 999);
	qkd_put_u64(&w, 0);
	qkd_put_u8(&w, PASS_IDENT);
	qkd_put_varint(&w, 64);
	assert_int_equal(answer_bytes(l.alice, &w), QKD_ERR_PROTO);
	qkd_wbuf_reset(&w);
	put_header(&w, 1, 0);
	qkd_put_u8(&w, 0);	/* trailing garbage */
	assert_int_equal(answer_bytes(l.alice, &w), QKD_ERR_PROTO);
	qkd_wbuf_cleanup(&w);
	/* None of that changed Alice: the real conversation goes on. */
	assert_int_equal(ask(l.alice, 1, 0, 0, 1), QKD_OK);
	link_cleanup(&l);
	qkd_rng_cleanup(&g);
}

/* Record a whole small session's requests (each malloc'ed). */
struct log {
	uint8_t *msg[4096];
	size_t len[4096];
	unsigned n;
};

static void record_session(struct log *lg, uint64_t seed)
{
	struct qkd_rng g;
	struct link l;

	memset(lg, 0, sizeof *lg);
	qkd_rng_init_seed(&g, seed, "log");
	link_init(&l, NULL, seed);
	add_frame(&l, &g, 0, 300, 0.06, -1);
	add_frame(&l, &g, 1, 130, 0.06, -1);
	for (;;) {
		int rc = pump(&l);

		if (rc == 0)
			break;
		assert_true(lg->n < 4096);
		lg->msg[lg->n] = malloc(l.req.len);
		assert_non_null(lg->msg[lg->n]);
		memcpy(lg->msg[lg->n], l.req.p, l.req.len);
		lg->len[lg->n++] = l.req.len;
	}
	check_frames(&l, 2);
	link_cleanup(&l);
	qkd_rng_cleanup(&g);
}

/* A fresh Alice that has answered the first `upto` logged requests. */
static struct qkd_ec_alice *alice_at(const struct log *lg, uint64_t seed, unsigned upto)
{
	struct qkd_rng g;
	struct link l;
	struct qkd_ec_alice *alice;
	struct qkd_wbuf rep;

	qkd_rng_init_seed(&g, seed, "log");
	link_init(&l, NULL, seed);
	add_frame(&l, &g, 0, 300, 0.06, -1);
	add_frame(&l, &g, 1, 130, 0.06, -1);
	alice = l.alice;
	l.alice = NULL;
	link_cleanup(&l);
	qkd_rng_cleanup(&g);
	qkd_wbuf_init(&rep);
	for (unsigned i = 0; i < upto; i++) {
		struct qkd_rbuf r;

		qkd_wbuf_reset(&rep);
		qkd_rbuf_init(&r, lg->msg[i], lg->len[i]);
		assert_int_equal(qkd_ec_alice_answer(alice, &r, &rep), QKD_OK);
	}
	qkd_wbuf_cleanup(&rep);
	return alice;
}

/* Truncated and mutated requests: an error code, never a crash (the ASan
 * build checks the reads), and a refused request leaves Alice unchanged. */
static void test_fuzzed_requests(void **state)
{
	struct log lg;
	struct qkd_rng g;
	unsigned picks[] = { 0, 1, 2, 5, 9, 0, 0 };

	(void)state;
	record_session(&lg, 16);
	assert_true(lg.n > 10);
	picks[5] = lg.n / 2;
	picks[6] = lg.n - 1;
	qkd_rng_init_seed(&g, 16, "fuzz");
	for (unsigned k = 0; k < sizeof picks / sizeof picks[0]; k++) {
		unsigned i = picks[k];
		struct qkd_ec_alice *alice = alice_at(&lg, 16, i);
		uint8_t *buf = malloc(lg.len[i]);
		struct qkd_wbuf msg;

		assert_non_null(buf);
		qkd_wbuf_init(&msg);
		/* Every truncation. */
		for (size_t cut = 0; cut < lg.len[i]; cut++) {
			qkd_wbuf_reset(&msg);
			qkd_put_bytes(&msg, lg.msg[i], cut);
			assert_true(answer_bytes(alice, &msg) < 0);
		}
		/* Mutations: accepted or refused, the next check tells. */
		for (unsigned m = 0; m < 40; m++) {
			int rc;

			memcpy(buf, lg.msg[i], lg.len[i]);
			buf[qkd_rng_below(&g, lg.len[i])] ^= (uint8_t)(1 + qkd_rng_below(&g, 255));
			qkd_wbuf_reset(&msg);
			qkd_put_bytes(&msg, buf, lg.len[i]);
			rc = answer_bytes(alice, &msg);
			assert_true(rc == QKD_OK || rc == QKD_ERR_PROTO || rc == QKD_ERR_RANGE);
			if (rc == QKD_OK) {
				qkd_ec_alice_free(alice);
				alice = alice_at(&lg, 16, i);
			}
		}
		/* Garbage of every length. */
		for (size_t len = 1; len < 64; len++) {
			qkd_wbuf_reset(&msg);
			for (size_t j = 0; j < len; j++)
				qkd_put_u8(&msg, (uint8_t)qkd_rng_below(&g, 256));
			assert_true(answer_bytes(alice, &msg) < 0);
		}
		/* The genuine request is still answered. */
		qkd_wbuf_reset(&msg);
		qkd_put_bytes(&msg, lg.msg[i], lg.len[i]);
		assert_int_equal(answer_bytes(alice, &msg), QKD_OK);
		qkd_wbuf_cleanup(&msg);
		free(buf);
		qkd_ec_alice_free(alice);
	}
	for (unsigned i = 0; i < lg.n; i++)
		free(lg.msg[i]);
	qkd_rng_cleanup(&g);
}

static int reply_bytes(struct qkd_ec_bob *bob, const uint8_t *p, size_t len)
{
	struct qkd_rbuf r;

	qkd_rbuf_init(&r, p, len);
	return qkd_ec_bob_reply(bob, &r);
}

/* Malformed replies are refused without a change; the genuine one then
 * goes through. */
static void test_hostile_replies(void **state)
{
	struct qkd_rng g;
	struct link l;
	unsigned round = 0;

	(void)state;
	qkd_rng_init_seed(&g, 17, "replies");
	link_init(&l, NULL, 17);
	add_frame(&l, &g, 0, 2000, 0.05, -1);
	add_frame(&l, &g, 1, 700, 0.05, -1);
	for (;;) {
		struct qkd_rbuf r;
		uint8_t *buf;
		int rc;

		qkd_wbuf_reset(&l.req);
		qkd_wbuf_reset(&l.rep);
		rc = qkd_ec_bob_request(l.bob, &l.req);
		if (rc == 0)
			break;
		assert_int_equal(rc, 1);
		qkd_rbuf_init(&r, l.req.p, l.req.len);
		assert_int_equal(qkd_ec_alice_answer(l.alice, &r, &l.rep), QKD_OK);
		if (round++ % 3 == 0) {
			buf = malloc(l.rep.len + 64);
			assert_non_null(buf);
			memcpy(buf, l.rep.p, l.rep.len);
			for (size_t cut = 0; cut < l.rep.len; cut++)
				assert_true(reply_bytes(l.bob, buf, cut) < 0);
			buf[l.rep.len] = 0;	/* one byte too many */
			assert_int_equal(reply_bytes(l.bob, buf, l.rep.len + 1), QKD_ERR_PROTO);
			buf[0] ^= 1;		/* wrong message type */
			assert_int_equal(reply_bytes(l.bob, buf, l.rep.len), QKD_ERR_PROTO);
			buf[0] ^= 1;
			buf[2] ^= 0x40;		/* wrong sequence number */
			assert_int_equal(reply_bytes(l.bob, buf, l.rep.len), QKD_ERR_PROTO);
			buf[2] ^= 0x40;
			for (size_t len = 1; len < 40; len++) {
				for (size_t j = 0; j < len; j++)
					buf[j] = (uint8_t)qkd_rng_below(&g, 256);
				assert_true(reply_bytes(l.bob, buf, len < l.rep.len ? len : 1) < 0);
			}
			free(buf);
		}
		assert_int_equal(reply_bytes(l.bob, l.rep.p, l.rep.len), QKD_OK);
		take(&l);
	}
	check_frames(&l, 2);
	link_cleanup(&l);
	qkd_rng_cleanup(&g);
}

/* A lying Alice (well-formed replies, wrong parities): Bob finishes or
 * reports a contradiction, in bounded time, without crashing. */
static void test_lying_alice(void **state)
{
	struct qkd_rng g;

	(void)state;
	qkd_rng_init_seed(&g, 18, "liar");
	for (unsigned trial = 0; trial < 20; trial++) {
		struct link l;
		unsigned guard = 0;
		int rc = QKD_OK;

		link_init(&l, trial % 2 ? "cascade-bbn" : NULL, 100 + trial);
		add_frame(&l, &g, 0, 1500, 0.05, -1);
		add_frame(&l, &g, 1, 999, 0.05, -1);
		while (rc == QKD_OK) {
			struct qkd_rbuf r;

			qkd_wbuf_reset(&l.req);
			qkd_wbuf_reset(&l.rep);
			rc = qkd_ec_bob_request(l.bob, &l.req);
			if (rc != 1)
				break;
			qkd_rbuf_init(&r, l.req.p, l.req.len);
			assert_int_equal(qkd_ec_alice_answer(l.alice, &r, &l.rep), QKD_OK);
			/* Flip a random answer bit: past the type, version,
			 * sequence number and bit count. */
			qkd_rbuf_init(&r, l.rep.p, l.rep.len);
			(void)qkd_get_u8(&r);
			(void)qkd_get_u8(&r);
			(void)qkd_get_varint(&r);
			(void)qkd_get_varint(&r);
			if (r.off < l.rep.len && qkd_rng_below(&g, 4) == 0)
				l.rep.p[r.off + qkd_rng_below(&g, l.rep.len - r.off)] ^=
					(uint8_t)(1u << qkd_rng_below(&g, 8));
			rc = reply_bytes(l.bob, l.rep.p, l.rep.len);
			assert_true(rc == QKD_OK || rc == QKD_ERR_PROTO);
			take(&l);
			assert_true(++guard < 100000);
		}
		if (rc == QKD_ERR_PROTO) {
			assert_int_equal(qkd_ec_bob_request(l.bob, &l.req), QKD_ERR_PROTO);
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(l.finished, 2);
		}
		link_cleanup(&l);
	}
	qkd_rng_cleanup(&g);
}

/* --- determinism --- */

static void session_digest(const char *variant, uint64_t seed, uint64_t *bytes_hash,
			   uint64_t *disclosed)
{
	struct qkd_rng g;
	struct link l;
	uint64_t h = 1469598103934665603ULL;

	qkd_rng_init_seed(&g, 77, "det");
	link_init(&l, variant, seed);
	add_frame(&l, &g, 0, 5000, 0.04, -1);
	add_frame(&l, &g, 1, 3000, 0.04, -1);
	while (pump(&l) == 1) {
		for (size_t i = 0; i < l.req.len; i++)
			h = (h ^ l.req.p[i]) * 1099511628211ULL;
		for (size_t i = 0; i < l.rep.len; i++)
			h = (h ^ l.rep.p[i]) * 1099511628211ULL;
	}
	check_frames(&l, 2);
	*bytes_hash = h;
	*disclosed = l.disclosed[0] + l.disclosed[1];
	link_cleanup(&l);
	qkd_rng_cleanup(&g);
}

static void test_deterministic(void **state)
{
	uint64_t h1, h2v, h3, d1, d2, d3;

	(void)state;
	session_digest(NULL, 5, &h1, &d1);
	session_digest(NULL, 5, &h2v, &d2);
	session_digest(NULL, 6, &h3, &d3);
	assert_true(h1 == h2v);
	assert_true(d1 == d2);
	assert_true(h1 != h3);	/* another seed, other permutations */
	session_digest("cascade-bbn", 5, &h1, &d1);
	session_digest("cascade-bbn", 5, &h2v, &d2);
	assert_true(h1 == h2v);
	assert_true(d1 == d2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_many_frames_default),
		cmocka_unit_test(test_many_frames_bbn),
		cmocka_unit_test(test_zero_and_one_error),
		cmocka_unit_test(test_odd_lengths),
		cmocka_unit_test(test_engine_pattern),
		cmocka_unit_test(test_efficiency_default),
		cmocka_unit_test(test_estimate_off),
		cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_variant_mismatch),
		cmocka_unit_test(test_hostile_requests),
		cmocka_unit_test(test_fuzzed_requests),
		cmocka_unit_test(test_hostile_replies),
		cmocka_unit_test(test_lying_alice),
		cmocka_unit_test(test_deterministic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
