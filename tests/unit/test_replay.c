/* test_replay.c - the anti-replay window (lib/vpn/replay.c, qkd/replay.h,
 * docs/vpn.md "Replay window"): in order, out of order inside the window,
 * replays, too old, jumps of more than the window, sequence number 0, ESN
 * inference of the high 32 bits across a wrap of the low 32 (RFC 4303
 * Appendix A.2), the two steps (a checked but never updated number stays
 * acceptable), and a long random walk against a plain set of every number
 * received, which is the definition the ring must agree with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/replay.h"

#define W QKD_REPLAY_WINDOW

/* check then update, as the ESP layer does after a good ICV. */
static int receive(struct qkd_replay *r, uint32_t low, uint64_t *seq)
{
	uint64_t s = 0;
	int rc = qkd_replay_check(r, low, &s);

	if (rc == QKD_OK)
		rc = qkd_replay_update(r, s);
	if (seq != NULL)
		*seq = s;
	return rc;
}

static void test_in_order(void **state)
{
	struct qkd_replay r;
	uint64_t s;

	(void)state;
	qkd_replay_init(&r, false);
	for (uint32_t i = 1; i <= 3 * W; i++) {
		assert_int_equal(receive(&r, i, &s), QKD_OK);
		assert_int_equal(s, i);
	}
	assert_int_equal(r.top, 3 * W);
	for (uint32_t i = 2 * W + 1; i <= 3 * W; i++)
		assert_int_equal(receive(&r, i, NULL), QKD_ERR_ABORT);
}

static void test_zero_refused(void **state)
{
	struct qkd_replay r;
	uint64_t s = 77;

	(void)state;
	qkd_replay_init(&r, false);
	assert_int_equal(qkd_replay_check(&r, 0, &s), QKD_ERR_ABORT);
	assert_int_equal(s, 77);	/* untouched on refusal */
	assert_int_equal(qkd_replay_update(&r, 0), QKD_ERR_ABORT);
	qkd_replay_init(&r, true);
	assert_int_equal(qkd_replay_check(&r, 0, &s), QKD_ERR_ABORT);
}

static void test_out_of_order(void **state)
{
	struct qkd_replay r;

	(void)state;
	qkd_replay_init(&r, false);
	assert_int_equal(receive(&r, 5000, NULL), QKD_OK);
	/* Every number of the window behind the top, in a scrambled order. */
	for (uint32_t i = 0; i < W - 1; i++) {
		uint32_t k = (uint32_t)((uint64_t)i * 1031 % (W - 1));	/* a permutation of 0..W-2 */

		assert_int_equal(receive(&r, 5000 - 1 - k, NULL), QKD_OK);
	}
	for (uint32_t i = 5000 - W + 1; i <= 5000; i++)
		assert_int_equal(receive(&r, i, NULL), QKD_ERR_ABORT);
	assert_int_equal(r.top, 5000);
}

static void test_too_old(void **state)
{
	struct qkd_replay r;
	uint64_t s;

	(void)state;
	qkd_replay_init(&r, false);
	assert_int_equal(receive(&r, 10000, NULL), QKD_OK);
	/* The oldest still inside: top - W + 1; one older is refused. */
	assert_int_equal(qkd_replay_check(&r, 10000 - W, &s), QKD_ERR_ABORT);
	assert_int_equal(qkd_replay_check(&r, 10000 - W + 1, &s), QKD_OK);
	assert_int_equal(qkd_replay_check(&r, 1, &s), QKD_ERR_ABORT);
	/* update re-checks: a too-old number is never marked */
	assert_int_equal(qkd_replay_update(&r, 10000 - W), QKD_ERR_ABORT);
}

static void test_big_jump(void **state)
{
	struct qkd_replay r;

	(void)state;
	qkd_replay_init(&r, false);
	for (uint32_t i = 1; i <= 100; i++)
		assert_int_equal(receive(&r, i, NULL), QKD_OK);
	/* More than the window (and than the whole ring) ahead: old bits must
	 * not survive into the new window. */
	assert_int_equal(receive(&r, 100 + 3 * 64 * QKD_REPLAY_BLOCKS + 7, NULL), QKD_OK);
	for (uint32_t i = 1; i < W; i++) {
		uint32_t s = 100 + 3 * 64 * QKD_REPLAY_BLOCKS + 7 - i;

		assert_int_equal(receive(&r, s, NULL), QKD_OK);
	}
	/* A jump of exactly the window: the old top falls out. */
	qkd_replay_init(&r, false);
	assert_int_equal(receive(&r, 1, NULL), QKD_OK);
	assert_int_equal(receive(&r, 1 + W, NULL), QKD_OK);
	assert_int_equal(receive(&r, 1, NULL), QKD_ERR_ABORT);
	assert_int_equal(receive(&r, 2, NULL), QKD_OK);
	assert_int_equal(receive(&r, 2, NULL), QKD_ERR_ABORT);
}

static void test_two_steps(void **state)
{
	struct qkd_replay r;
	uint64_t s, s2;

	(void)state;
	qkd_replay_init(&r, false);
	/* A packet whose ICV fails is checked but never updated: the genuine
	 * one with the same number is still accepted afterwards. */
	assert_int_equal(qkd_replay_check(&r, 9, &s), QKD_OK);
	assert_int_equal(r.top, 0);
	assert_int_equal(qkd_replay_check(&r, 9, &s2), QKD_OK);
	assert_int_equal(qkd_replay_update(&r, s2), QKD_OK);
	/* Two copies both pass check before either is updated (two threads):
	 * the second update refuses. */
	assert_int_equal(qkd_replay_check(&r, 8, &s), QKD_OK);
	assert_int_equal(qkd_replay_check(&r, 8, &s2), QKD_OK);
	assert_int_equal(qkd_replay_update(&r, s), QKD_OK);
	assert_int_equal(qkd_replay_update(&r, s2), QKD_ERR_ABORT);
}

static void test_esn_wrap(void **state)
{
	struct qkd_replay r;
	uint64_t s;
	const uint64_t base = UINT64_C(0x00000007fffff000);	/* span 7, near its end */

	(void)state;
	qkd_replay_init(&r, true);
	r.top = base;	/* as if received up to here */
	for (uint64_t q = base + 1; q <= base + 0x1010; q++) {	/* across 2^32 * 8 */
		assert_int_equal(receive(&r, (uint32_t)q, &s), QKD_OK);
		assert_int_equal(s, q);
	}
	assert_int_equal(r.top, UINT64_C(0x0000000800000010));
	/* A late packet from before the wrap (low half large) inside the
	 * window belongs to span 7 (case B of A.2) and is a replay. */
	assert_int_equal(qkd_replay_check(&r, 0xfffffff0u, &s), QKD_ERR_ABORT);
	/* Once the top is a window into span 8 (case A), the same low half
	 * means span 8 again: far ahead (the ICV then decides). */
	r.top = UINT64_C(0x0000000800001000);
	assert_int_equal(qkd_replay_check(&r, 0xfffffff0u, &s), QKD_OK);
	assert_int_equal(s, UINT64_C(0x00000008fffffff0));
	/* Not yet seen, span 7: accepted with the right high half. */
	qkd_replay_init(&r, true);
	r.top = UINT64_C(0x0000000800000010);
	assert_int_equal(qkd_replay_check(&r, 0xfffffff0u, &s), QKD_OK);
	assert_int_equal(s, UINT64_C(0x00000007fffffff0));
	assert_int_equal(qkd_replay_check(&r, 0x20, &s), QKD_OK);
	assert_int_equal(s, UINT64_C(0x0000000800000020));
	/* Case A: low half below the window means the next span. */
	r.top = UINT64_C(0x00000003f0000000);
	assert_int_equal(qkd_replay_check(&r, 5, &s), QKD_OK);
	assert_int_equal(s, UINT64_C(0x0000000400000005));
	/* Without ESN the same low half is just 5, far too old. */
	r.esn = false;
	r.top = 0xf0000000u;
	assert_int_equal(qkd_replay_check(&r, 5, &s), QKD_ERR_ABORT);
}

static void test_esn_edges(void **state)
{
	struct qkd_replay r;
	uint64_t s;

	(void)state;
	qkd_replay_init(&r, true);
	/* At the start (span 0, case B) a large low half would be span -1. */
	assert_int_equal(qkd_replay_check(&r, 0xffffff00u, &s), QKD_ERR_ABORT);
	assert_int_equal(qkd_replay_check(&r, 1, &s), QKD_OK);
	assert_int_equal(s, 1);
	/* At the end of the 64-bit space nothing lies beyond. */
	r.top = UINT64_MAX - 10;
	assert_int_equal(qkd_replay_check(&r, 0xffffffffu, &s), QKD_OK);
	assert_int_equal(s, UINT64_MAX);
	assert_int_equal(qkd_replay_update(&r, s), QKD_OK);
	assert_int_equal(qkd_replay_check(&r, 3, &s), QKD_ERR_ABORT);
	assert_int_equal(qkd_replay_check(&r, 0xffffffffu, &s), QKD_ERR_ABORT);
}

/* A random walk of arrivals (mostly ahead, some behind, some repeats, rare
 * big jumps) against the definition: accept iff nonzero, not seen, and
 * newer than top - W. */
static void test_random_against_set(void **state)
{
	enum { N = 200000 };
	struct qkd_replay r;
	uint8_t *seen = calloc(4 * N + 20 * W, 1);
	uint64_t top = 0, s;
	uint32_t x = 12345;

	(void)state;
	assert_non_null(seen);
	qkd_replay_init(&r, false);
	for (int i = 0; i < N; i++) {
		uint32_t q;
		bool want;

		x = x * 1103515245u + 12345u;
		if ((x >> 16) % 1000 == 0)
			q = (uint32_t)top + 1 + W + (x >> 20) % (2 * W);
		else
			q = (uint32_t)(top + 3 > (x >> 8) % (W + 200) ? top + 3 - (x >> 8) % (W + 200) : 0);
		if (q >= 4 * N + 20 * W)
			break;
		want = q != 0 && !seen[q] && (q > top || top - q < W);
		assert_int_equal(receive(&r, q, NULL), want ? QKD_OK : QKD_ERR_ABORT);
		if (want) {
			seen[q] = 1;
			if (q > top)
				top = q;
		}
	}
	assert_int_equal(r.top, top);
	(void)s;
	free(seen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_zero_refused),
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_too_old),
		cmocka_unit_test(test_big_jump),
		cmocka_unit_test(test_two_steps),
		cmocka_unit_test(test_esn_wrap),
		cmocka_unit_test(test_esn_edges),
		cmocka_unit_test(test_random_against_set),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
