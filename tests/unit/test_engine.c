/* Tests of the protocol engine: whole simulated links (two processes over a
 * socketpair, lib/proto/simlink.c) and Alice's handling of hostile input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "qkd/channel.h"
#include "qkd/engine.h"
#include "qkd/error.h"
#include "qkd/msg.h"
#include "qkd/simlink.h"
#include "qkd/sift.h"

#include "../../lib/proto/engine_internal.h"

/* A short, bright link: many detections from few pulses, so tests are quick. */
static void small_link(struct qkd_link_params *l, struct qkd_engine_config *c)
{
	qkd_link_params_default(l);
	l->pulses = 2000000;
	l->distance_km = 5;
	l->detector_efficiency = 0.5;
	qkd_engine_config_default(c);
	c->frame_bits = 16384;
	c->estimate.mu = l->mu;
}

static void assert_parties_agree(const struct qkd_simlink_result *r)
{
	const struct qkd_engine_stats *a = &r->alice.st, *b = &r->bob.st;

	assert_int_equal(r->alice.rc, QKD_OK);
	assert_int_equal(r->bob.rc, QKD_OK);
	assert_true(a->pulses == b->pulses);
	assert_true(a->detections == b->detections);
	assert_true(a->sifted_bits == b->sifted_bits);
	assert_true(a->sample_errors == b->sample_errors);
	assert_true(a->frames == b->frames);
	assert_true(a->frame_bits == b->frame_bits);
	assert_true(a->errors_corrected == b->errors_corrected);
	assert_true(a->ec_disclosed_bits == b->ec_disclosed_bits);
	assert_true(a->frames_failed_verification == b->frames_failed_verification);
	assert_true(a->secret_bits == b->secret_bits);
	assert_int_equal(a->abort, b->abort);
	assert_true(r->alice.key.n == a->secret_bits);
	assert_true(qkd_bits_equal(&r->alice.key, &r->bob.key));
}

static void test_link_distils_identical_keys(void **state)
{
	struct qkd_link_params l;
	struct qkd_engine_config c;
	struct qkd_simlink_result r;
	double qber;

	(void)state;
	small_link(&l, &c);
	assert_int_equal(qkd_simlink_run(&l, &c, &r), QKD_OK);
	assert_parties_agree(&r);
	assert_int_equal(r.bob.st.abort, QKD_ABORT_NONE);
	assert_true(r.bob.st.secret_bits > 1000);
	assert_true(r.bob.st.secret_bits < r.bob.st.sifted_bits);
	assert_int_equal(r.bob.st.frames_failed_verification, 0);
	/* QBER near the model's: e_opt 1 % plus dark counts. */
	qber = (double)r.bob.st.errors_corrected / (double)r.bob.st.frame_bits;
	assert_true(qber > 0.005 && qber < 0.02);
	/* Every bit the estimate removes is accounted for. */
	assert_true(r.bob.st.entropy.disclosed ==
		    (double)(r.bob.st.ec_disclosed_bits + r.bob.st.verify_disclosed_bits));
	qkd_simlink_result_cleanup(&r);
}

static void test_same_seed_same_key(void **state)
{
	struct qkd_link_params l;
	struct qkd_engine_config c;
	struct qkd_simlink_result r1, r2, r3;

	(void)state;
	small_link(&l, &c);
	l.pulses = 500000;
	assert_int_equal(qkd_simlink_run(&l, &c, &r1), QKD_OK);
	assert_int_equal(qkd_simlink_run(&l, &c, &r2), QKD_OK);
	l.seed = 2;
	assert_int_equal(qkd_simlink_run(&l, &c, &r3), QKD_OK);
	assert_true(r1.bob.key.n > 0);
	assert_true(qkd_bits_equal(&r1.bob.key, &r2.bob.key));
	assert_true(r1.bob.st.ec_disclosed_bits == r2.bob.st.ec_disclosed_bits);
	assert_false(qkd_bits_equal(&r1.bob.key, &r3.bob.key));
	qkd_simlink_result_cleanup(&r1);
	qkd_simlink_result_cleanup(&r2);
	qkd_simlink_result_cleanup(&r3);
}

static void test_other_code_and_source(void **state)
{
	struct qkd_link_params l;
	struct qkd_engine_config c;
	struct qkd_simlink_result r;

	(void)state;
	small_link(&l, &c);
	strcpy(c.ec, "cascade-bbn");
	c.estimate.defense = QKD_DEFENSE_BENNETT;
	assert_int_equal(qkd_simlink_run(&l, &c, &r), QKD_OK);
	assert_parties_agree(&r);
	assert_true(r.bob.st.secret_bits > 0);
	qkd_simlink_result_cleanup(&r);

	small_link(&l, &c);
	l.source = QKD_SOURCE_ENTANGLED;
	l.mu = 0.05;
	c.estimate.mu = l.mu;
	c.estimate.source = QKD_LEAK_ENTANGLED;
	assert_int_equal(qkd_simlink_run(&l, &c, &r), QKD_OK);
	assert_parties_agree(&r);
	assert_true(r.bob.st.secret_bits > 0);
	qkd_simlink_result_cleanup(&r);
}

static void test_high_qber_aborts(void **state)
{
	struct qkd_link_params l;
	struct qkd_engine_config c;
	struct qkd_simlink_result r;
	enum qkd_qber_source src;
	double qber;

	(void)state;
	small_link(&l, &c);
	l.misalignment = 0.2;
	assert_int_equal(qkd_simlink_run(&l, &c, &r), QKD_OK);
	assert_parties_agree(&r);
	assert_int_equal(r.bob.st.abort, QKD_ABORT_SAMPLE_QBER);
	assert_true(r.bob.st.qber_abort_value > 0.15);
	assert_true(r.bob.st.secret_bits == 0);
	/* Nothing corrected: the round's QBER is the sample's, on both sides. */
	for (int side = 0; side < 2; side++) {
		const struct qkd_engine_stats *st = side ? &r.alice.st : &r.bob.st;

		qkd_engine_qber(st, &qber, &src);
		assert_int_equal(src, QKD_QBER_SAMPLE);
		assert_true(qber == r.bob.st.qber_abort_value);
	}
	qkd_simlink_result_cleanup(&r);

	/* Just above the threshold: the sample may pass, the exact QBER not. */
	small_link(&l, &c);
	c.abort_qber = 0.02;
	l.misalignment = 0.03;
	c.sample_bits = 0;
	assert_int_equal(qkd_simlink_run(&l, &c, &r), QKD_OK);
	assert_parties_agree(&r);
	assert_int_equal(r.bob.st.abort, QKD_ABORT_QBER);
	assert_true(r.bob.st.secret_bits == 0);
	/* Frames were corrected before the abort: their count is the QBER. */
	qkd_engine_qber(&r.bob.st, &qber, &src);
	assert_int_equal(src, QKD_QBER_CORRECTED);
	assert_true(qber == (double)r.bob.st.errors_corrected / (double)r.bob.st.frame_bits);
	assert_true(qber > 0.02);
	qkd_simlink_result_cleanup(&r);
}

/* The source rule on its own: corrected frames first, then the sample,
 * else nothing (NaN). */
static void test_qber_source(void **state)
{
	struct qkd_engine_stats st;
	enum qkd_qber_source src;
	double qber;

	(void)state;
	memset(&st, 0, sizeof st);
	qkd_engine_qber(&st, &qber, &src);
	assert_int_equal(src, QKD_QBER_NONE);
	assert_true(isnan(qber));
	assert_string_equal(qkd_qber_source_name(src), "none");
	st.sample_bits = 1024;
	st.sample_errors = 256;
	qkd_engine_qber(&st, &qber, &src);
	assert_int_equal(src, QKD_QBER_SAMPLE);
	assert_true(qber == 0.25);
	assert_string_equal(qkd_qber_source_name(src), "sample");
	st.frame_bits = 1000;
	st.errors_corrected = 10;
	qkd_engine_qber(&st, &qber, &src);
	assert_int_equal(src, QKD_QBER_CORRECTED);
	assert_true(qber == 0.01);
	assert_string_equal(qkd_qber_source_name(src), "corrected");
}

/* At 25 km, mu = 0.1 without decoys, multi-photon pulses sent outnumber the
 * detections: the transparent term takes everything. */
static void test_multiphoton_term_eats_key_at_25km(void **state)
{
	struct qkd_link_params l;
	struct qkd_engine_config c;
	struct qkd_simlink_result r;

	(void)state;
	small_link(&l, &c);
	l.detector_efficiency = 0.1;
	l.distance_km = 25;
	l.pulses = 10000000;
	assert_int_equal(qkd_simlink_run(&l, &c, &r), QKD_OK);
	assert_parties_agree(&r);
	assert_true(r.bob.st.sifted_bits > 10000);
	assert_true(r.bob.st.secret_bits == 0);
	assert_int_equal(r.bob.st.entropy.limiting_term, QKD_TERM_TRANSPARENT);
	assert_true(r.bob.st.entropy.transparent_saturated);
	qkd_simlink_result_cleanup(&r);
}

/* A frame that failed verification never reaches privacy amplification:
 * blocks skip it, and the estimate counts neither its bits, its errors nor
 * its disclosures. */
static void test_failed_frames_are_discarded(void **state)
{
	struct engine_frames fr = {0};
	struct qkd_engine_config c;
	struct qkd_engine_stats st;
	struct qkd_entropy_out est;
	struct qkd_bits pool, block;
	uint64_t m, bits;
	size_t first = 0, count;
	bool over;

	(void)state;
	qkd_engine_config_default(&c);
	assert_int_equal(qkd_bits_init(&pool, 40000), QKD_OK);
	for (size_t i = 0; i < pool.n; i++)
		qkd_bits_set(&pool, i, (unsigned)((i * 2654435761u) >> 7) & 1u);
	assert_int_equal(engine_frames_cut(&fr, &pool, pool.n, 10000), QKD_OK);
	assert_int_equal(fr.n, 4);
	for (size_t i = 0; i < fr.n; i++) {
		fr.f[i].verified = i != 1;
		fr.f[i].failed = i == 1;
		fr.f[i].errors = 100;
		fr.f[i].disclosed = 900;
	}
	memset(&st, 0, sizeof st);
	st.pulses = 10000000;
	st.detections = 80000;
	st.frame_bits = 40000;
	assert_true(engine_next_block(&fr, &first, &count, 1u << 20));
	assert_int_equal(first, 0);
	assert_int_equal(count, 4);
	assert_int_equal(engine_block_concat(&fr, first, count, &block), QKD_OK);
	assert_int_equal(block.n, 30000);	/* frame 1 left out */
	for (size_t i = 0; i < 10000; i++)
		assert_int_equal(qkd_bits_get(&block, 10000 + i), qkd_bits_get(&pool, 20000 + i));
	assert_int_equal(engine_block_estimate(&c, &st, &fr, first, count, 0, &est, &m, &bits, &over),
			 QKD_OK);
	assert_true(bits == 30000);
	assert_false(over);
	assert_true(est.disclosed == 3 * (900 + 64));
	/* A block made only of failed frames does not exist. */
	for (size_t i = 0; i < fr.n; i++)
		fr.f[i].verified = false;
	first = 0;
	assert_false(engine_next_block(&fr, &first, &count, 1u << 20));
	qkd_bits_cleanup(&block);
	qkd_bits_cleanup(&pool);
	engine_frames_cleanup(&fr);
}

/* Alice's side alone, fed by a hand-written Bob. */
struct alice_thread {
	int fd;
	int rc;
	struct qkd_engine_config cfg;
};

static int fake_lookup(void *ctx, const uint64_t *slot, size_t n, struct qkd_bits *basis,
		       struct qkd_bits *value, struct qkd_bits *valid)
{
	(void)ctx;
	for (size_t i = 0; i < n; i++) {
		qkd_bits_set(basis, i, (unsigned)(slot[i] & 1));
		qkd_bits_set(value, i, (unsigned)((slot[i] >> 1) & 1));
		qkd_bits_set(valid, i, 1);
	}
	return QKD_OK;
}

static void *alice_main(void *arg)
{
	struct alice_thread *t = arg;
	struct qkd_alice_source src = {.lookup = fake_lookup};
	struct qkd_channel ch;
	struct qkd_rng rng;
	struct qkd_engine_stats st;
	struct qkd_bits key;

	qkd_channel_init(&ch, t->fd, NULL, NULL);
	qkd_rng_init_seed(&rng, 1, "alice-test");
	t->rc = qkd_engine_alice(&ch, &t->cfg, &src, &rng, &st, &key);
	qkd_bits_cleanup(&key);
	qkd_rng_cleanup(&rng);
	qkd_channel_cleanup(&ch);
	return NULL;
}

/* Start Alice, say HELLO, then send the given frames; return Alice's result
 * and whether she answered the last frame with ABORT. */
static int run_hostile(const uint8_t *types, const struct qkd_wbuf *payloads, size_t n,
		       bool *aborted)
{
	struct alice_thread t;
	struct qkd_channel bob;
	struct qkd_wbuf hello;
	struct qkd_rbuf r;
	pthread_t th;
	int sv[2];
	uint8_t type = 0;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	t.fd = sv[0];
	qkd_engine_config_default(&t.cfg);
	assert_int_equal(pthread_create(&th, NULL, alice_main, &t), 0);
	qkd_channel_init(&bob, sv[1], NULL, NULL);
	qkd_wbuf_init(&hello);
	engine_hello_write(&hello, &t.cfg);
	assert_int_equal(qkd_channel_send(&bob, QKD_MSG_HELLO, hello.p, hello.len), QKD_OK);
	assert_int_equal(qkd_channel_expect(&bob, QKD_MSG_HELLO_ACK, &r), QKD_OK);
	*aborted = false;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(qkd_channel_send(&bob, types[i], payloads[i].p, payloads[i].len),
				 QKD_OK);
		if (types[i] == QKD_MSG_SIFT_REPORT || i + 1 == n) {
			if (qkd_channel_recv(&bob, &type, &r) == QKD_OK && type == QKD_MSG_ABORT) {
				*aborted = true;
				break;
			}
		}
	}
	close(sv[1]);
	pthread_join(th, NULL);
	close(sv[0]);
	qkd_channel_cleanup(&bob);
	qkd_wbuf_cleanup(&hello);
	return t.rc;
}

static void test_alice_rejects_hostile_bob(void **state)
{
	const uint64_t slots[] = {3, 9, 12};
	struct qkd_bits basis;
	struct qkd_wbuf p[3];
	uint8_t types[3];
	bool aborted;

	(void)state;
	for (int i = 0; i < 3; i++)
		qkd_wbuf_init(&p[i]);
	assert_int_equal(qkd_bits_init(&basis, 3), QKD_OK);

	/* A chunk replayed: Alice would reuse her bits. */
	qkd_sift_report_write(&p[0], 0, 16, slots, &basis);
	qkd_sift_report_write(&p[1], 0, 16, slots, &basis);
	types[0] = types[1] = QKD_MSG_SIFT_REPORT;
	assert_int_equal(run_hostile(types, p, 2, &aborted), QKD_ERR_PROTO);
	assert_true(aborted);

	/* A chunk claiming more slots than one chunk may hold. */
	qkd_wbuf_reset(&p[0]);
	qkd_sift_report_write(&p[0], 0, (uint64_t)1 << 40, slots, &basis);
	assert_int_equal(run_hostile(types, p, 1, &aborted), QKD_ERR_PROTO);
	assert_true(aborted);

	/* Garbage in a report. */
	qkd_wbuf_reset(&p[0]);
	qkd_put_bytes(&p[0], "\xff\xff\xff", 3);
	assert_int_equal(run_hostile(types, p, 1, &aborted), QKD_ERR_PROTO);
	assert_true(aborted);

	/* Verification before any correction, and an unknown message type. */
	qkd_wbuf_reset(&p[0]);
	qkd_put_u64(&p[0], 1);
	qkd_put_varint(&p[0], 0);
	types[0] = QKD_MSG_VERIFY_REQ;
	assert_int_equal(run_hostile(types, p, 1, &aborted), QKD_ERR_PROTO);
	types[0] = 200;
	assert_int_equal(run_hostile(types, p, 1, &aborted), QKD_ERR_PROTO);
	assert_true(aborted);

	/* A sample asking for more positions than were sifted. */
	qkd_wbuf_reset(&p[0]);
	qkd_sift_report_write(&p[0], 0, 16, slots, &basis);
	qkd_wbuf_reset(&p[1]);
	qkd_put_varint(&p[1], 50);
	types[0] = QKD_MSG_SIFT_REPORT;
	types[1] = QKD_MSG_SAMPLE_REQ;
	assert_int_equal(run_hostile(types, p, 2, &aborted), QKD_ERR_PROTO);
	assert_true(aborted);

	qkd_bits_cleanup(&basis);
	for (int i = 0; i < 3; i++)
		qkd_wbuf_cleanup(&p[i]);
}

/* DONE carries nothing. One with a payload is malformed: Alice refuses it
 * (ABORT, QKD_ERR_PROTO) even where a DONE may come, instead of taking it
 * and confirming the run (found by fuzz_engine_alice's rule that a
 * malformed message yields an error). Bob's reads time out rather than
 * hang if she does not answer. */
static void test_alice_refuses_malformed_done(void **state)
{
	struct timeval tv = { .tv_sec = 5 };
	struct alice_thread t;
	struct qkd_channel bob;
	struct qkd_wbuf hello;
	struct qkd_rbuf r;
	pthread_t th;
	int sv[2];
	uint8_t type = 0;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
	t.fd = sv[0];
	qkd_engine_config_default(&t.cfg);
	assert_int_equal(pthread_create(&th, NULL, alice_main, &t), 0);
	qkd_channel_init(&bob, sv[1], NULL, NULL);
	qkd_wbuf_init(&hello);
	engine_hello_write(&hello, &t.cfg);
	assert_int_equal(qkd_channel_send(&bob, QKD_MSG_HELLO, hello.p, hello.len), QKD_OK);
	assert_int_equal(qkd_channel_expect(&bob, QKD_MSG_HELLO_ACK, &r), QKD_OK);
	/* Nothing sifted: a proper DONE would end the run here. */
	assert_int_equal(qkd_channel_send(&bob, QKD_MSG_DONE, (const uint8_t *)"x", 1), QKD_OK);
	assert_int_equal(qkd_channel_seal(&bob), QKD_OK);
	assert_int_equal(qkd_channel_recv(&bob, &type, &r), QKD_OK);
	assert_int_equal(type, QKD_MSG_ABORT);
	close(sv[1]);
	pthread_join(th, NULL);
	close(sv[0]);
	assert_int_equal(t.rc, QKD_ERR_PROTO);
	qkd_channel_cleanup(&bob);
	qkd_wbuf_cleanup(&hello);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_link_distils_identical_keys),
		cmocka_unit_test(test_same_seed_same_key),
		cmocka_unit_test(test_other_code_and_source),
		cmocka_unit_test(test_high_qber_aborts),
		cmocka_unit_test(test_qber_source),
		cmocka_unit_test(test_multiphoton_term_eats_key_at_25km),
		cmocka_unit_test(test_failed_frames_are_discarded),
		cmocka_unit_test(test_alice_rejects_hostile_bob),
		cmocka_unit_test(test_alice_refuses_malformed_done),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
