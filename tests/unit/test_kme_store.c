/* test_kme_store.c - the key manager's records in the key store
 * (qkd/kme_store.h; docs/keystore.md, "Key manager records").
 *
 * Two stores play the two ends of a link: Alice cuts keys from even
 * blocks, Bob from odd ones, and both hold the same blocks. The checks:
 * issue cuts only its own half, lowest free bits first (gaps too), keys
 * spanning blocks; the peer's accept of the same record yields the same
 * bytes through deliver, once, to the right pair only, all or nothing;
 * accept is idempotent and refuses conflicts, the wrong half, consumed
 * bits, and waits (LATER) for blocks not final; RANGE leaves everything
 * as it was; the outbox in issue order; records survive reopening; a
 * version 1 store is upgraded by a writer and left alone by a reader;
 * qkd_store_check passes throughout and catches broken records; a ready
 * key or a block whose bits rot is quarantined by deliver, issue and
 * accept (QKD_ERR_CORRUPT, nothing handed out or consumed); abandoned
 * records stay in the outbox, flagged, and the peer's withdrawal retires
 * a ready key, leaves a delivered one, and tombstones an unknown key_ID;
 * ready keys expire by an explicit clock (bits wiped, tombstone refused
 * with a reason naming expiry, counted with their bits as lost),
 * tombstones of spent blocks are pruned while a replay stays refused, and
 * the pending records of a crashed master are abandoned at restart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "qkd/error.h"
#include "qkd/keystore.h"
#include "qkd/kme_store.h"
#include "qkd/secret.h"

#include "store_fixture.h"

#define MASTER "sae-master-1"
#define SLAVE "sae-slave-2"
#define ALICE QKD_KME_PARITY_ALICE
#define BOB QKD_KME_PARITY_BOB

struct fix {
	char dir[256];
	char pa[320], pb[320];		/* Alice's and Bob's store */
	struct qkd_store *a, *b;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (tmpdir_make(f->dir, sizeof(f->dir), "qkd-kme-store") != 0) {
		free(f);
		return -1;
	}
	snprintf(f->pa, sizeof(f->pa), "%s/alice.db", f->dir);
	snprintf(f->pb, sizeof(f->pb), "%s/bob.db", f->dir);
	f->a = open_ok(f->pa);
	f->b = open_ok(f->pb);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	qkd_store_close(f->a);
	qkd_store_close(f->b);
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

/* ---- helpers ---- */

/* Block id's bits: a pseudo-random stream of its id, so a prefix of any
 * length is the same stream (padding bits of the last byte zero). */
static uint8_t *block_bits(uint64_t id, uint64_t nbits)
{
	uint8_t *b = malloc((nbits + 7) / 8 + 1);

	assert_non_null(b);
	fill_bits(b, nbits, id * 1000003u + 17);
	return b;
}

/* The key the segments name: their bits concatenated, LSB first. */
static void expect_key(const struct qkd_kme_rec *r, uint8_t *out)
{
	uint64_t pos = 0;

	memset(out, 0, r->nbits / 8);
	for (size_t i = 0; i < r->nsegs; i++) {
		const struct qkd_store_seg *g = &r->segs[i];
		uint8_t *blk = block_bits(g->id, g->offset + g->nbits);

		for (uint64_t j = 0; j < g->nbits; j++, pos++)
			out[pos / 8] |= (uint8_t)(bit_at(blk, g->offset + j) << (pos % 8));
		free(blk);
	}
	assert_int_equal(pos, r->nbits);
}

/* Block id of nbits, final, its bits block_bits(id, nbits). */
static void put_block(struct qkd_store *s, uint64_t id, uint64_t nbits)
{
	uint8_t *b = block_bits(id, nbits);

	put_final(s, id, b, nbits);
	free(b);
}

/* The same final block at both ends. */
static void put_both(struct fix *f, uint64_t id, uint64_t nbits)
{
	put_block(f->a, id, nbits);
	put_block(f->b, id, nbits);
}

static uint64_t consumed(struct qkd_store *s, uint64_t id)
{
	return lookup_ok(s, id).consumed;
}

static enum qkd_store_state state_of(struct qkd_store *s, uint64_t id)
{
	return lookup_ok(s, id).state;
}

static struct qkd_kme_rec mkrec(unsigned n, const char *master, const char *slave,
				uint32_t nbits)
{
	struct qkd_kme_rec r;

	memset(&r, 0, sizeof(r));
	memset(r.key_id, 0xa5, sizeof(r.key_id));
	r.key_id[0] = (uint8_t)(n >> 8);
	r.key_id[15] = (uint8_t)n;
	snprintf(r.master, sizeof(r.master), "%s", master);
	snprintf(r.slave, sizeof(r.slave), "%s", slave);
	r.nbits = nbits;
	return r;
}

/* Issue n keys (ids first .. first+n-1) of nbits at s; bits to out. */
static void issue_ok(struct qkd_store *s, unsigned parity, struct qkd_kme_rec *recs, size_t n,
		     unsigned first, uint32_t nbits, uint8_t *out)
{
	const char *why = "unset";
	int rc;

	for (size_t i = 0; i < n; i++)
		recs[i] = mkrec(first + (unsigned)i, MASTER, SLAVE, nbits);
	rc = qkd_store_kme_issue(s, parity, recs, n, out, n * nbits / 8, &why);
	if (rc != QKD_OK)
		fail_msg("issue: %d %s", rc, why ? why : "?");
	assert_null(why);
}

static enum qkd_kme_verdict accept_v(struct qkd_store *s, unsigned peer,
				     const struct qkd_kme_rec *r, bool deliverable,
				     const char **why)
{
	enum qkd_kme_verdict v = (enum qkd_kme_verdict)99;

	assert_int_equal(qkd_store_kme_accept(s, peer, r, deliverable, &v, why), QKD_OK);
	return v;
}

/* Deliver the keys recs[0 .. n) to (master, slave) into bufs of cap. */
static int deliver(struct qkd_store *s, const char *master, const char *slave,
		   const struct qkd_kme_rec *const *recs, size_t n, uint8_t bufs[][1024],
		   size_t cap, size_t *lens, size_t *bad, const char **why)
{
	uint8_t ids[8][16];
	uint8_t *outs[8];

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		memcpy(ids[i], recs[i]->key_id, 16);
		outs[i] = bufs[i];
	}
	return qkd_store_kme_deliver(s, master, slave, (const uint8_t (*)[16])ids, n, outs,
				     cap, lens, bad, why);
}

static int deliver1(struct qkd_store *s, const char *master, const char *slave,
		    const struct qkd_kme_rec *r, uint8_t *out, size_t cap, size_t *len)
{
	uint8_t *outs[1] = { out };
	size_t bad = 99;
	int rc = qkd_store_kme_deliver(s, master, slave, (const uint8_t (*)[16])r->key_id, 1,
				       outs, cap, len, &bad, NULL);

	assert_int_equal(bad, rc == QKD_OK ? 1 : 0);
	return rc;
}

static struct qkd_kme_counts counts(struct qkd_store *s)
{
	struct qkd_kme_counts c;

	assert_int_equal(qkd_store_kme_counts(s, &c, NULL), QKD_OK);
	return c;
}

static void assert_counts(struct qkd_store *s, uint64_t outbox, uint64_t ready,
			  uint64_t delivered, uint64_t refused)
{
	struct qkd_kme_counts c = counts(s);

	assert_int_equal(c.outbox, outbox);
	assert_int_equal(c.ready, ready);
	assert_int_equal(c.delivered, delivered);
	assert_int_equal(c.refused, refused);
}

static uint64_t available(struct qkd_store *s, unsigned parity)
{
	uint64_t bits = 0;

	assert_int_equal(qkd_store_kme_available(s, parity, &bits, NULL), QKD_OK);
	return bits;
}

/* ---- master's end ---- */

static void test_issue_parity(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r[3], rb;
	uint8_t bits[3 * 32], kb[32], want[32];

	for (uint64_t id = 0; id < 4; id++)
		put_both(f, id, 1024);
	assert_int_equal(available(f->a, ALICE), 2048);
	assert_int_equal(available(f->a, BOB), 2048);

	issue_ok(f->a, ALICE, r, 3, 1, 256, bits);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(r[i].nsegs, 1);
		assert_int_equal(r[i].segs[0].id, 0);
		assert_int_equal(r[i].segs[0].offset, 256 * i);
		assert_int_equal(r[i].segs[0].nbits, 256);
		expect_key(&r[i], want);
		assert_memory_equal(bits + 32 * i, want, 32);
	}
	assert_int_equal(consumed(f->a, 0), 768);
	for (uint64_t id = 1; id < 4; id++)
		assert_int_equal(consumed(f->a, id), 0);
	assert_int_equal(available(f->a, ALICE), 2048 - 768);
	assert_int_equal(available(f->a, BOB), 2048);

	/* the rest of block 0, then block 2: still the even half */
	issue_ok(f->a, ALICE, r, 2, 10, 256, bits);
	assert_int_equal(r[0].segs[0].id, 0);
	assert_int_equal(r[0].segs[0].offset, 768);
	assert_int_equal(r[1].segs[0].id, 2);
	assert_int_equal(r[1].segs[0].offset, 0);
	assert_int_equal(state_of(f->a, 0), QKD_STORE_USED);

	/* Bob's end cuts from odd blocks */
	issue_ok(f->b, BOB, &rb, 1, 100, 256, kb);
	assert_int_equal(rb.nsegs, 1);
	assert_int_equal(rb.segs[0].id, 1);
	assert_int_equal(rb.segs[0].offset, 0);
	expect_key(&rb, want);
	assert_memory_equal(kb, want, 32);
	assert_int_equal(consumed(f->b, 0), 0);
	assert_int_equal(available(f->b, ALICE), 2048);
	assert_int_equal(available(f->b, BOB), 2048 - 256);
	assert_counts(f->a, 5, 0, 0, 0);
	assert_counts(f->b, 1, 0, 0, 0);
	check_ok(f->a);
	check_ok(f->b);
	qkd_wipe(bits, sizeof(bits));
}

/* Free gaps left between consumed ranges are cut first, lowest first. */
static void test_issue_fills_gaps(void **state)
{
	struct fix *f = *state;
	struct qkd_store_seg seg = { .id = 0, .offset = 64, .nbits = 64 };
	struct qkd_kme_rec r;
	uint8_t tmp[8], bits[16], want[16];

	put_block(f->a, 0, 1024);
	assert_int_equal(qkd_store_take_at(f->a, &seg, 1, tmp, sizeof(tmp), NULL), QKD_OK);
	issue_ok(f->a, ALICE, &r, 1, 1, 128, bits);
	assert_int_equal(r.nsegs, 2);
	assert_int_equal(r.segs[0].offset, 0);
	assert_int_equal(r.segs[0].nbits, 64);
	assert_int_equal(r.segs[1].offset, 128);
	assert_int_equal(r.segs[1].nbits, 64);
	expect_key(&r, want);
	assert_memory_equal(bits, want, sizeof(want));
	assert_int_equal(consumed(f->a, 0), 192);
	check_ok(f->a);
}

static void test_span_two_blocks(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r;
	uint8_t bits[128], want[128], out[1024];
	size_t len = 0;

	put_both(f, 0, 600);	/* not a whole number of bytes */
	put_both(f, 1, 5000);
	put_both(f, 2, 2000);
	issue_ok(f->a, ALICE, &r, 1, 1, 1024, bits);
	assert_int_equal(r.nsegs, 2);
	assert_int_equal(r.segs[0].id, 0);
	assert_int_equal(r.segs[0].offset, 0);
	assert_int_equal(r.segs[0].nbits, 600);
	assert_int_equal(r.segs[1].id, 2);
	assert_int_equal(r.segs[1].offset, 0);
	assert_int_equal(r.segs[1].nbits, 424);
	expect_key(&r, want);
	assert_memory_equal(bits, want, sizeof(want));
	assert_int_equal(state_of(f->a, 0), QKD_STORE_USED);

	assert_int_equal(accept_v(f->b, ALICE, &r, true, NULL), QKD_KME_ACCEPTED);
	assert_int_equal(state_of(f->b, 0), QKD_STORE_USED);
	assert_int_equal(consumed(f->b, 2), 424);
	assert_int_equal(consumed(f->b, 1), 0);
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r, out, sizeof(out), &len), QKD_OK);
	assert_int_equal(len, 128);
	assert_memory_equal(out, bits, 128);
	check_ok(f->a);
	check_ok(f->b);
}

static void test_issue_range(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r[5];
	uint8_t bits[5 * 32];
	const char *why = NULL;

	put_both(f, 0, 1024);
	put_both(f, 1, 1024);
	for (size_t i = 0; i < 5; i++)
		r[i] = mkrec(1 + (unsigned)i, MASTER, SLAVE, 256);
	memset(bits, 0xee, sizeof(bits));
	assert_int_equal(qkd_store_kme_issue(f->a, ALICE, r, 5, bits, sizeof(bits), &why),
			 QKD_ERR_RANGE);
	assert_non_null(why);
	assert_true(all_zero(bits, sizeof(bits)));
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(r[i].nsegs, 0);
	assert_int_equal(consumed(f->a, 0), 0);
	assert_int_equal(consumed(f->a, 1), 0);
	assert_counts(f->a, 0, 0, 0, 0);

	issue_ok(f->a, ALICE, r, 4, 1, 256, bits);
	assert_int_equal(state_of(f->a, 0), QKD_STORE_USED);
	r[0] = mkrec(9, MASTER, SLAVE, 8);
	assert_int_equal(qkd_store_kme_issue(f->a, ALICE, r, 1, bits, 1, &why), QKD_ERR_RANGE);
	assert_int_equal(consumed(f->a, 1), 0);	/* the other half untouched */
	assert_int_equal(available(f->a, BOB), 1024);
	assert_int_equal(available(f->a, ALICE), 0);
	assert_counts(f->a, 4, 0, 0, 0);
	check_ok(f->a);
}

/* More segments than a record holds: RANGE, nothing consumed. */
static void test_issue_too_many_segs(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r = mkrec(1, MASTER, SLAVE, 256);
	uint8_t tmp[8], bits[32];
	const char *why = NULL;

	put_block(f->a, 0, 4096);
	/* consumed every other 16 bits: the free gaps are 16 bits long */
	for (uint64_t off = 16; off < 16 * 40; off += 32) {
		struct qkd_store_seg seg = { .id = 0, .offset = off, .nbits = 16 };

		assert_int_equal(qkd_store_take_at(f->a, &seg, 1, tmp, sizeof(tmp), NULL), QKD_OK);
	}
	assert_int_equal(qkd_store_kme_issue(f->a, ALICE, &r, 1, bits, sizeof(bits), &why),
			 QKD_ERR_RANGE);
	assert_true(has_text(why, "segments"));
	assert_int_equal(consumed(f->a, 0), 16 * 20);
	r = mkrec(1, MASTER, SLAVE, 128);
	issue_ok(f->a, ALICE, &r, 1, 1, 128, bits);
	assert_int_equal(r.nsegs, QKD_KME_KEY_SEGS_MAX);
	check_ok(f->a);
}

static void test_issue_invalid(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r[3];
	uint8_t bits[96];
	char longid[80];
	const char *why = NULL;

	put_block(f->a, 0, 8192);
	for (size_t i = 0; i < 3; i++)
		r[i] = mkrec(1 + (unsigned)i, MASTER, SLAVE, 256);
#define ISSUE_FAILS(rc_, n_, len_)                                                     \
	do {                                                                           \
		memset(bits, 0x77, sizeof(bits));                                      \
		assert_int_equal(qkd_store_kme_issue(f->a, ALICE, r, (n_), bits, (len_), &why), \
				 (rc_));                                               \
		assert_non_null(why);                                                  \
		assert_true(all_zero(bits, (len_) < sizeof(bits) ? (len_) : sizeof(bits))); \
		assert_int_equal(consumed(f->a, 0), 0);                                \
	} while (0)

	ISSUE_FAILS(QKD_ERR_INVAL, 0, sizeof(bits));
	ISSUE_FAILS(QKD_ERR_RANGE, 3, sizeof(bits) - 1);		/* buffer short */
	assert_int_equal(qkd_store_kme_issue(f->a, 2, r, 1, bits, sizeof(bits), &why),
			 QKD_ERR_INVAL);				/* parity */
	assert_int_equal(qkd_store_kme_issue(NULL, ALICE, r, 1, bits, sizeof(bits), &why),
			 QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_issue(f->a, ALICE, NULL, 1, bits, sizeof(bits), &why),
			 QKD_ERR_INVAL);
	r[1].nbits = 128;						/* mixed lengths */
	ISSUE_FAILS(QKD_ERR_INVAL, 3, sizeof(bits));
	r[1].nbits = 256;
	r[0].nbits = 12;						/* not whole bytes */
	ISSUE_FAILS(QKD_ERR_INVAL, 1, sizeof(bits));
	r[0].nbits = QKD_KME_KEY_BITS_MAX + 8;
	ISSUE_FAILS(QKD_ERR_INVAL, 1, sizeof(bits));
	r[0].nbits = 256;
	r[2].slave[0] = '\0';						/* empty SAE ID */
	ISSUE_FAILS(QKD_ERR_INVAL, 3, sizeof(bits));
	memset(r[2].slave, 'x', sizeof(r[2].slave));			/* no NUL */
	ISSUE_FAILS(QKD_ERR_INVAL, 3, sizeof(bits));
	r[2] = mkrec(3, MASTER, SLAVE, 256);
	r[2].key_id[15] = 1;						/* same key_id twice */
	ISSUE_FAILS(QKD_ERR_INVAL, 3, sizeof(bits));
	assert_true(has_text(why, "key_ID"));
	assert_counts(f->a, 0, 0, 0, 0);
	/* a key_id already in the outbox */
	issue_ok(f->a, ALICE, r, 1, 1, 256, bits);
	memset(longid, 'm', 64);
	longid[64] = '\0';
	r[1] = mkrec(2, longid, SLAVE, 256);			/* 64 bytes: fine */
	r[2] = mkrec(1, MASTER, SLAVE, 256);
	memset(bits, 0x77, sizeof(bits));
	assert_int_equal(qkd_store_kme_issue(f->a, ALICE, &r[1], 2, bits, 64, &why),
			 QKD_ERR_INVAL);
	assert_true(has_text(why, "key_ID"));
	assert_true(all_zero(bits, 64));
	assert_int_equal(consumed(f->a, 0), 256);
	assert_counts(f->a, 1, 0, 0, 0);
	check_ok(f->a);
#undef ISSUE_FAILS
}

static void test_outbox(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r[4], got[8];
	uint8_t bits[4 * 16], unknown[16] = { 0 };
	size_t n = 99;
	const char *why = "unset";

	put_block(f->a, 0, 4096);
	issue_ok(f->a, ALICE, r, 2, 1, 128, bits);
	issue_ok(f->a, ALICE, &r[2], 1, 7, 128, bits);
	issue_ok(f->a, ALICE, &r[3], 1, 3, 128, bits);	/* ids not in issue order */
	assert_int_equal(qkd_store_kme_outbox(f->a, got, 8, &n, &why), QKD_OK);
	assert_null(why);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_memory_equal(got[i].key_id, r[i].key_id, 16);
		assert_string_equal(got[i].master, MASTER);
		assert_string_equal(got[i].slave, SLAVE);
		assert_int_equal(got[i].nbits, 128);
		assert_int_equal(got[i].nsegs, r[i].nsegs);
		assert_memory_equal(got[i].segs, r[i].segs, r[i].nsegs * sizeof(r[i].segs[0]));
	}
	assert_int_equal(qkd_store_kme_outbox(f->a, got, 2, &n, NULL), QKD_OK);
	assert_int_equal(n, 2);
	assert_memory_equal(got[1].key_id, r[1].key_id, 16);
	assert_int_equal(qkd_store_kme_outbox(f->a, NULL, 0, &n, NULL), QKD_OK);
	assert_int_equal(n, 0);

	assert_int_equal(qkd_store_kme_outbox_done(f->a, r[1].key_id, &why), QKD_OK);
	assert_int_equal(qkd_store_kme_outbox_done(f->a, r[1].key_id, &why), QKD_OK);
	assert_int_equal(qkd_store_kme_outbox_done(f->a, unknown, &why), QKD_OK);
	assert_counts(f->a, 3, 0, 0, 0);
	assert_int_equal(qkd_store_kme_outbox(f->a, got, 8, &n, NULL), QKD_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(got[0].key_id, r[0].key_id, 16);
	assert_memory_equal(got[1].key_id, r[2].key_id, 16);
	assert_memory_equal(got[2].key_id, r[3].key_id, 16);
	/* a later issue comes after, even once the newest was dropped */
	assert_int_equal(qkd_store_kme_outbox_done(f->a, r[3].key_id, NULL), QKD_OK);
	issue_ok(f->a, ALICE, &r[3], 1, 50, 128, bits);
	assert_int_equal(qkd_store_kme_outbox(f->a, got, 8, &n, NULL), QKD_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(got[2].key_id, r[3].key_id, 16);
	/* the master's own records are not deliverable here */
	assert_int_equal(deliver1(f->a, MASTER, SLAVE, &r[0], bits, 16, &n), QKD_ERR_INVAL);
	{
		/* a message of verdicts in one transaction: a repeat and an
		 * unknown id among them change nothing else */
		uint8_t ids[4][16];

		memcpy(ids[0], got[2].key_id, 16);
		memcpy(ids[1], unknown, 16);
		memcpy(ids[2], got[2].key_id, 16);
		memcpy(ids[3], got[0].key_id, 16);
		assert_int_equal(qkd_store_kme_outbox_done_batch(f->a, (const uint8_t (*)[16])ids,
								 4, &why), QKD_OK);
		assert_null(why);
		assert_int_equal(qkd_store_kme_outbox(f->a, got, 8, &n, NULL), QKD_OK);
		assert_int_equal(n, 1);
		assert_memory_equal(got[0].key_id, r[2].key_id, 16);
		assert_int_equal(qkd_store_kme_outbox_done_batch(f->a, NULL, 0, NULL), QKD_OK);
		assert_int_equal(qkd_store_kme_outbox_done_batch(f->a, NULL, 1, NULL),
				 QKD_ERR_INVAL);
		assert_int_equal(qkd_store_kme_outbox_done_batch(f->a, (const uint8_t (*)[16])ids,
								 1, NULL), QKD_OK);
	}
	assert_int_equal(qkd_store_kme_outbox_done(f->a, r[2].key_id, NULL), QKD_OK);
	assert_int_equal(qkd_store_kme_outbox(f->a, got, 8, &n, NULL), QKD_OK);
	assert_int_equal(n, 0);
	assert_counts(f->a, 0, 0, 0, 0);
	assert_int_equal(consumed(f->a, 0), 5 * 128);	/* done drops records, not key */
	assert_int_equal(qkd_store_kme_outbox(f->a, got, 8, NULL, NULL), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_outbox(f->a, NULL, 1, &n, NULL), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_outbox_done(f->a, NULL, NULL), QKD_ERR_INVAL);
	check_ok(f->a);
}

/* ---- slave's end ---- */

static void test_accept_deliver(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r[2];
	uint8_t bits[2 * 64], out[2][1024];
	const struct qkd_kme_rec *pr[2] = { &r[0], &r[1] };
	size_t lens[2] = { 0, 0 }, bad = 99;
	const char *why = "unset";

	put_both(f, 0, 2048);
	put_both(f, 1, 2048);
	issue_ok(f->a, ALICE, r, 2, 1, 512, bits);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(accept_v(f->b, ALICE, &r[i], true, &why), QKD_KME_ACCEPTED);
		assert_null(why);
	}
	assert_int_equal(consumed(f->b, 0), 1024);
	assert_int_equal(consumed(f->b, 1), 0);
	assert_counts(f->b, 0, 2, 0, 0);
	assert_int_equal(available(f->b, ALICE), 1024);
	assert_int_equal(available(f->b, BOB), 2048);

	assert_int_equal(deliver(f->b, MASTER, SLAVE, pr, 2, out, sizeof(out[0]), lens, &bad,
				 &why), QKD_OK);
	assert_null(why);
	assert_int_equal(bad, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(lens[i], 64);
		assert_memory_equal(out[i], bits + 64 * i, 64);
	}
	assert_counts(f->b, 0, 0, 2, 0);

	/* once only */
	memset(out, 0x33, sizeof(out));
	assert_int_equal(deliver(f->b, MASTER, SLAVE, pr, 1, out, sizeof(out[0]), lens, &bad,
				 &why), QKD_ERR_INVAL);
	assert_int_equal(bad, 0);
	assert_true(has_text(why, "already delivered"));
	assert_true(all_zero(out[0], sizeof(out[0])));
	/* a delivered record sent again: still accepted, not deliverable again */
	assert_int_equal(accept_v(f->b, ALICE, &r[1], true, NULL), QKD_KME_ACCEPTED);
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r[1], out[0], 1024, lens), QKD_ERR_INVAL);
	assert_int_equal(consumed(f->b, 0), 1024);
	check_ok(f->a);
	check_ok(f->b);
	qkd_wipe(bits, sizeof(bits));
	qkd_wipe(out, sizeof(out));
}

static void test_deliver_wrong_pair(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r;
	uint8_t bits[32], out[1][1024];
	const struct qkd_kme_rec *pr[1] = { &r };
	size_t len = 0, bad = 99;
	const char *why = NULL;

	put_both(f, 0, 1024);
	issue_ok(f->a, ALICE, &r, 1, 1, 256, bits);
	assert_int_equal(accept_v(f->b, ALICE, &r, true, NULL), QKD_KME_ACCEPTED);
	memset(out, 0x44, sizeof(out));
	assert_int_equal(deliver(f->b, "sae-other", SLAVE, pr, 1, out, 1024, &len, &bad, &why),
			 QKD_ERR_VERIFY);
	assert_int_equal(bad, 0);
	assert_true(has_text(why, "another pair"));
	assert_true(all_zero(out[0], sizeof(out[0])));
	assert_int_equal(len, 0);
	assert_int_equal(deliver(f->b, MASTER, "sae-slave-2x", pr, 1, out, 1024, &len, &bad,
				 &why), QKD_ERR_VERIFY);
	assert_int_equal(deliver(f->b, SLAVE, MASTER, pr, 1, out, 1024, &len, &bad, &why),
			 QKD_ERR_VERIFY);	/* the pair reversed */
	assert_counts(f->b, 0, 1, 0, 0);
	/* still there for the right pair */
	assert_int_equal(deliver(f->b, MASTER, SLAVE, pr, 1, out, 1024, &len, &bad, &why), QKD_OK);
	assert_int_equal(len, 32);
	assert_memory_equal(out[0], bits, 32);
	/* and a delivered key is still another pair's to the wrong one */
	assert_int_equal(deliver(f->b, "sae-other", SLAVE, pr, 1, out, 1024, &len, &bad, &why),
			 QKD_ERR_VERIFY);
	check_ok(f->b);
	qkd_wipe(out, sizeof(out));
}

static void test_deliver_all_or_nothing(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r[3], unknown = mkrec(999, MASTER, SLAVE, 256), other;
	uint8_t bits[3 * 32], obits[32], out[3][1024];
	const struct qkd_kme_rec *pr[3] = { &r[0], &unknown, &r[2] };
	size_t lens[3] = { 7, 7, 7 }, bad = 99;
	const char *why = NULL;

	put_both(f, 0, 1024);
	issue_ok(f->a, ALICE, r, 3, 1, 256, bits);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(accept_v(f->b, ALICE, &r[i], true, NULL), QKD_KME_ACCEPTED);

	memset(out, 0x55, sizeof(out));
	assert_int_equal(deliver(f->b, MASTER, SLAVE, pr, 3, out, 1024, lens, &bad, &why),
			 QKD_ERR_INVAL);
	assert_int_equal(bad, 1);
	assert_true(has_text(why, "no such key_ID"));
	assert_true(all_zero((const uint8_t *)out, sizeof(out)));
	assert_int_equal(lens[0] + lens[1] + lens[2], 0);
	assert_counts(f->b, 0, 3, 0, 0);

	/* an id given twice: the second is already delivered */
	pr[1] = &r[0];
	assert_int_equal(deliver(f->b, MASTER, SLAVE, pr, 2, out, 1024, lens, &bad, &why),
			 QKD_ERR_INVAL);
	assert_int_equal(bad, 1);
	assert_counts(f->b, 0, 3, 0, 0);
	/* a buffer too small for the last */
	pr[1] = &r[1];
	assert_int_equal(deliver(f->b, MASTER, SLAVE, pr, 3, out, 31, lens, &bad, &why),
			 QKD_ERR_RANGE);
	assert_int_equal(bad, 0);
	assert_counts(f->b, 0, 3, 0, 0);
	/* one of another pair in the middle */
	other = mkrec(77, "sae-other", SLAVE, 256);
	assert_int_equal(qkd_store_kme_issue(f->a, ALICE, &other, 1, obits, sizeof(obits), NULL),
			 QKD_OK);
	assert_int_equal(accept_v(f->b, ALICE, &other, true, NULL), QKD_KME_ACCEPTED);
	pr[1] = &other;
	assert_int_equal(deliver(f->b, MASTER, SLAVE, pr, 3, out, 1024, lens, &bad, &why),
			 QKD_ERR_VERIFY);
	assert_int_equal(bad, 1);
	assert_true(all_zero((const uint8_t *)out, sizeof(out)));
	assert_counts(f->b, 0, 4, 0, 0);
	/* bad arguments: no id at fault, *bad = n */
	assert_int_equal(qkd_store_kme_deliver(f->b, MASTER, SLAVE, NULL, 1, NULL, 1024, lens,
					       &bad, &why), QKD_ERR_INVAL);
	assert_int_equal(bad, 1);
	pr[1] = &r[1];

	assert_int_equal(deliver(f->b, MASTER, SLAVE, pr, 3, out, 1024, lens, &bad, &why), QKD_OK);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(lens[i], 32);
		assert_memory_equal(out[i], bits + 32 * i, 32);
	}
	assert_counts(f->b, 0, 1, 3, 0);
	assert_int_equal(deliver1(f->b, "sae-other", SLAVE, &other, out[0], 1024, lens), QKD_OK);
	assert_memory_equal(out[0], obits, 32);
	check_ok(f->b);
	qkd_wipe(out, sizeof(out));
}

static void test_accept_idempotent(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r, other;
	uint8_t bits[32], out[1024];
	size_t len = 0;
	const char *why = NULL;

	put_both(f, 0, 1024);
	issue_ok(f->a, ALICE, &r, 1, 1, 256, bits);
	assert_int_equal(accept_v(f->b, ALICE, &r, true, NULL), QKD_KME_ACCEPTED);
	assert_int_equal(accept_v(f->b, ALICE, &r, true, &why), QKD_KME_ACCEPTED);
	assert_null(why);
	assert_int_equal(consumed(f->b, 0), 256);
	assert_counts(f->b, 0, 1, 0, 0);

	/* the same key_id with other contents: refused, nothing changes */
	other = r;
	snprintf(other.slave, sizeof(other.slave), "sae-elsewhere");
	assert_int_equal(accept_v(f->b, ALICE, &other, true, &why), QKD_KME_REFUSED);
	assert_true(has_text(why, "other contents"));
	other = r;
	other.segs[0].offset = 512;
	assert_int_equal(accept_v(f->b, ALICE, &other, true, &why), QKD_KME_REFUSED);
	other = r;
	other.nsegs = 2;
	other.segs[0].nbits = 128;
	other.segs[1] = (struct qkd_store_seg){ .id = 0, .offset = 128, .nbits = 128 };
	assert_int_equal(accept_v(f->b, ALICE, &other, true, &why), QKD_KME_REFUSED);
	assert_int_equal(consumed(f->b, 0), 256);
	assert_counts(f->b, 0, 1, 0, 0);
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r, out, sizeof(out), &len), QKD_OK);
	assert_memory_equal(out, bits, 32);

	/* a key_id this end issued itself */
	assert_int_equal(accept_v(f->a, ALICE, &r, true, &why), QKD_KME_REFUSED);
	assert_true(has_text(why, "issued"));
	assert_int_equal(consumed(f->a, 0), 256);
	check_ok(f->a);
	check_ok(f->b);
	qkd_wipe(out, sizeof(out));
}

static void test_accept_refused(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r = mkrec(1, MASTER, SLAVE, 256);
	uint8_t tmp[64], out[1024];
	struct qkd_store_seg seg;
	size_t len = 0;
	const char *why = NULL;

	put_block(f->b, 0, 1024);
	put_block(f->b, 1, 1024);
	put_block(f->b, 2, 1024);

	/* a block of Bob's own half */
	r.nsegs = 1;
	r.segs[0] = (struct qkd_store_seg){ .id = 1, .offset = 0, .nbits = 256 };
	assert_int_equal(accept_v(f->b, ALICE, &r, true, &why), QKD_KME_REFUSED);
	assert_true(has_text(why, "half"));
	assert_int_equal(consumed(f->b, 1), 0);
	assert_counts(f->b, 0, 0, 0, 1);
	assert_int_equal(accept_v(f->b, ALICE, &r, true, &why), QKD_KME_REFUSED);	/* again */
	assert_counts(f->b, 0, 0, 0, 1);
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r, out, sizeof(out), &len), QKD_ERR_INVAL);

	/* outside its block */
	r = mkrec(2, MASTER, SLAVE, 256);
	r.nsegs = 1;
	r.segs[0] = (struct qkd_store_seg){ .id = 0, .offset = 800, .nbits = 256 };
	assert_int_equal(accept_v(f->b, ALICE, &r, true, &why), QKD_KME_REFUSED);
	assert_true(has_text(why, "outside"));
	assert_int_equal(consumed(f->b, 0), 0);

	/* already consumed here: the free segment before it stays free */
	seg = (struct qkd_store_seg){ .id = 2, .offset = 100, .nbits = 50 };
	assert_int_equal(qkd_store_take_at(f->b, &seg, 1, tmp, sizeof(tmp), NULL), QKD_OK);
	r = mkrec(3, MASTER, SLAVE, 256);
	r.nsegs = 2;
	r.segs[0] = (struct qkd_store_seg){ .id = 0, .offset = 0, .nbits = 128 };
	r.segs[1] = (struct qkd_store_seg){ .id = 2, .offset = 64, .nbits = 128 };
	assert_int_equal(accept_v(f->b, ALICE, &r, true, &why), QKD_KME_REFUSED);
	assert_true(has_text(why, "already consumed"));
	assert_int_equal(consumed(f->b, 0), 0);
	assert_int_equal(consumed(f->b, 2), 50);
	/* two segments of one record overlapping */
	r = mkrec(4, MASTER, SLAVE, 256);
	r.nsegs = 2;
	r.segs[0] = (struct qkd_store_seg){ .id = 0, .offset = 0, .nbits = 128 };
	r.segs[1] = (struct qkd_store_seg){ .id = 0, .offset = 64, .nbits = 128 };
	assert_int_equal(accept_v(f->b, ALICE, &r, true, &why), QKD_KME_REFUSED);
	assert_int_equal(consumed(f->b, 0), 0);
	assert_counts(f->b, 0, 0, 0, 4);

	/* not a pair this end serves: consumed, kept as a tombstone only */
	r = mkrec(5, MASTER, SLAVE, 256);
	r.nsegs = 1;
	r.segs[0] = (struct qkd_store_seg){ .id = 0, .offset = 0, .nbits = 256 };
	assert_int_equal(accept_v(f->b, ALICE, &r, false, &why), QKD_KME_REFUSED);
	assert_true(has_text(why, "serves"));
	assert_int_equal(consumed(f->b, 0), 256);
	assert_int_equal(accept_v(f->b, ALICE, &r, true, &why), QKD_KME_REFUSED);
	assert_true(has_text(why, "refused before"));
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r, out, sizeof(out), &len), QKD_ERR_INVAL);
	assert_int_equal(consumed(f->b, 0), 256);
	assert_counts(f->b, 0, 0, 0, 5);
	check_ok(f->b);
}

/* Records the table cannot hold: refused, not recorded. */
static void test_accept_malformed(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec good = mkrec(1, MASTER, SLAVE, 256), r;
	enum qkd_kme_verdict v;
	const char *why = NULL;

	put_block(f->b, 0, 1024);
	good.nsegs = 1;
	good.segs[0] = (struct qkd_store_seg){ .id = 0, .offset = 0, .nbits = 256 };
#define REFUSED_MALFORMED(edit)                                                        \
	do {                                                                           \
		r = good;                                                              \
		edit;                                                                  \
		assert_int_equal(accept_v(f->b, ALICE, &r, true, &why), QKD_KME_REFUSED); \
		assert_non_null(why);                                                  \
	} while (0)
	REFUSED_MALFORMED(r.nbits = 255);
	REFUSED_MALFORMED(r.nbits = 0);
	REFUSED_MALFORMED(r.nbits = QKD_KME_KEY_BITS_MAX + 8);
	REFUSED_MALFORMED(r.nsegs = 0);
	REFUSED_MALFORMED(r.nsegs = QKD_KME_KEY_SEGS_MAX + 1);
	REFUSED_MALFORMED(r.segs[0].nbits = 248);
	REFUSED_MALFORMED((r.nsegs = 2, r.segs[1] = (struct qkd_store_seg){ 0, 300, 0 }));
	REFUSED_MALFORMED(r.segs[0].id = QKD_STORE_ID_MAX + 1);
	REFUSED_MALFORMED(r.master[0] = '\0');
	REFUSED_MALFORMED(memset(r.slave, 's', sizeof(r.slave)));
#undef REFUSED_MALFORMED
	assert_counts(f->b, 0, 0, 0, 0);
	assert_int_equal(consumed(f->b, 0), 0);
	assert_int_equal(qkd_store_kme_accept(f->b, 2, &good, true, &v, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_accept(f->b, ALICE, NULL, true, &v, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_accept(f->b, ALICE, &good, true, NULL, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_accept(NULL, ALICE, &good, true, &v, &why), QKD_ERR_INVAL);
	/* the key_id was not burnt */
	assert_int_equal(accept_v(f->b, ALICE, &good, true, NULL), QKD_KME_ACCEPTED);
	check_ok(f->b);
}

static void test_accept_later(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r, unknown = mkrec(50, MASTER, SLAVE, 256), mixed;
	uint8_t bits[128], *blk = block_bits(2, 1024), out[1024];
	size_t len = 0;
	const char *why = NULL;

	put_both(f, 0, 512);
	put_block(f->a, 2, 1024);
	assert_int_equal(qkd_store_put_pending(f->b, 2, blk, 1024, NULL), QKD_OK);
	free(blk);
	issue_ok(f->a, ALICE, &r, 1, 1, 1024, bits);
	assert_int_equal(r.nsegs, 2);

	/* block 2 still pending at Bob: nothing changes, ask again */
	assert_int_equal(accept_v(f->b, ALICE, &r, true, &why), QKD_KME_LATER);
	assert_true(has_text(why, "not final"));
	assert_int_equal(consumed(f->b, 0), 0);
	assert_int_equal(state_of(f->b, 2), QKD_STORE_PENDING);
	assert_counts(f->b, 0, 0, 0, 0);
	/* a block unknown here: the same */
	unknown.nsegs = 1;
	unknown.segs[0] = (struct qkd_store_seg){ .id = 4, .offset = 0, .nbits = 256 };
	assert_int_equal(accept_v(f->b, ALICE, &unknown, true, &why), QKD_KME_LATER);
	assert_counts(f->b, 0, 0, 0, 0);

	assert_int_equal(qkd_store_finalize(f->b, 2, NULL), QKD_OK);
	assert_int_equal(accept_v(f->b, ALICE, &r, true, &why), QKD_KME_ACCEPTED);
	assert_null(why);
	assert_int_equal(state_of(f->b, 0), QKD_STORE_USED);
	assert_int_equal(consumed(f->b, 2), 512);
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r, out, sizeof(out), &len), QKD_OK);
	assert_int_equal(len, 128);
	assert_memory_equal(out, bits, 128);

	/* bits gone for good weigh more than a block not final yet */
	mixed = mkrec(51, MASTER, SLAVE, 256);
	mixed.nsegs = 2;
	mixed.segs[0] = (struct qkd_store_seg){ .id = 0, .offset = 0, .nbits = 8 };
	mixed.segs[1] = (struct qkd_store_seg){ .id = 4, .offset = 0, .nbits = 248 };
	assert_int_equal(accept_v(f->b, ALICE, &mixed, true, &why), QKD_KME_REFUSED);
	assert_true(has_text(why, "already consumed"));
	assert_counts(f->b, 0, 0, 1, 1);
	check_ok(f->a);
	check_ok(f->b);
	qkd_wipe(out, sizeof(out));
}

/* ---- persistence, schema ---- */

static void test_persistence(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r[3], got[4];
	uint8_t bits[3 * 32], out[1024];
	size_t len = 0, n = 0;

	put_both(f, 0, 1024);
	issue_ok(f->a, ALICE, r, 3, 1, 256, bits);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(accept_v(f->b, ALICE, &r[i], true, NULL), QKD_KME_ACCEPTED);
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r[0], out, sizeof(out), &len), QKD_OK);
	qkd_store_close(f->a);
	qkd_store_close(f->b);
	f->a = open_ok(f->pa);
	f->b = open_ok(f->pb);
	check_ok(f->a);
	check_ok(f->b);
	assert_counts(f->a, 3, 0, 0, 0);
	assert_counts(f->b, 0, 2, 1, 0);
	assert_int_equal(qkd_store_kme_outbox(f->a, got, 4, &n, NULL), QKD_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(got[2].key_id, r[2].key_id, 16);
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r[0], out, sizeof(out), &len),
			 QKD_ERR_INVAL);
	for (size_t i = 1; i < 3; i++) {
		assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r[i], out, sizeof(out), &len),
				 QKD_OK);
		assert_int_equal(len, 32);
		assert_memory_equal(out, bits + 32 * i, 32);
	}
	/* the bits of delivered keys are gone from the file */
	qkd_store_close(f->b);
	assert_int_equal(raw_int(f->pb, "SELECT count(*) FROM kme_bits"), 0);
	f->b = open_ok(f->pb);
	assert_counts(f->b, 0, 0, 3, 0);
	check_ok(f->b);
	qkd_wipe(out, sizeof(out));
}

/* A version 1 store as the first program wrote it (docs/keystore.md,
 * "Schema versions"), with blocks 0 and 1 final, 1024 bits each. */
static void make_v1(const char *path)
{
	char sql[1200];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	unlink(path);
	raw_sql(path, "CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT;"
		"INSERT INTO schema_version VALUES (1);"
		"CREATE TABLE qblock (id INTEGER PRIMARY KEY CHECK (id >= 0),"
		" nbits INTEGER NOT NULL CHECK (nbits > 0 AND nbits <= 2147483648),"
		" state TEXT NOT NULL CHECK (state IN ('pending', 'final', 'used')),"
		" created INTEGER NOT NULL,"
		" consumed INTEGER NOT NULL DEFAULT 0 CHECK (consumed >= 0 AND consumed <= nbits),"
		" CHECK (state <> 'pending' OR consumed = 0),"
		" CHECK (state <> 'final' OR consumed < nbits),"
		" CHECK (state <> 'used' OR consumed = nbits)) STRICT;"
		"CREATE INDEX qblock_final ON qblock (id) WHERE state = 'final';"
		"CREATE TABLE qbits (id INTEGER PRIMARY KEY REFERENCES qblock (id) ON DELETE CASCADE,"
		" bits BLOB NOT NULL) STRICT;"
		"CREATE TABLE consumed_range (block INTEGER NOT NULL REFERENCES qblock (id)"
		" ON DELETE CASCADE, off INTEGER NOT NULL CHECK (off >= 0),"
		" nbits INTEGER NOT NULL CHECK (nbits > 0), PRIMARY KEY (block, off))"
		" STRICT, WITHOUT ROWID;"
		"PRAGMA application_id = 1363887187;");
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	for (uint64_t id = 0; id < 2; id++) {
		uint8_t *b = block_bits(id, 1024);

		snprintf(sql, sizeof(sql), "INSERT INTO qblock VALUES (%llu, 1024, 'final', 0, 0)",
			 (unsigned long long)id);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		snprintf(sql, sizeof(sql), "INSERT INTO qbits VALUES (%llu, ?1)",
			 (unsigned long long)id);
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
		sqlite3_bind_blob(st, 1, b, 128, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_finalize(st);
		free(b);
	}
	sqlite3_close(db);
}

/* A version 1 store: left alone by a reader, upgraded by a writer. */
static void test_migrate_v1(void **state)
{
	struct fix *f = *state;
	struct qkd_store *ro = NULL;
	struct qkd_kme_rec r = mkrec(1, MASTER, SLAVE, 256), got[1];
	struct qkd_kme_counts c;
	enum qkd_kme_verdict v = QKD_KME_ACCEPTED;
	uint8_t bits[32];
	uint64_t avail = 0;
	size_t n = 9;
	const char *why = NULL;

	qkd_store_close(f->b);
	f->b = NULL;
	make_v1(f->pb);
	assert_int_equal(raw_int(f->pb, "SELECT count(*) FROM sqlite_schema"
				 " WHERE name LIKE 'kme%'"), 0);

	/* a reader: works, leaves version 1, KME writers refuse clearly */
	assert_int_equal(qkd_store_open_existing(&ro, f->pb, &why), QKD_OK);
	check_ok(ro);
	assert_int_equal(qkd_store_kme_counts(ro, &c, NULL), QKD_OK);
	assert_int_equal(c.outbox + c.ready + c.delivered + c.refused, 0);
	assert_int_equal(qkd_store_kme_outbox(ro, got, 1, &n, NULL), QKD_OK);
	assert_int_equal(n, 0);
	assert_int_equal(qkd_store_kme_available(ro, ALICE, &avail, NULL), QKD_OK);
	assert_int_equal(avail, 1024);
	r.nsegs = 1;
	r.segs[0] = (struct qkd_store_seg){ .id = 0, .offset = 0, .nbits = 256 };
	assert_int_equal(qkd_store_kme_accept(ro, ALICE, &r, true, &v, &why), QKD_ERR_INVAL);
	assert_true(has_text(why, "schema version 1"));
	assert_int_equal(v, QKD_KME_LATER);
	assert_int_equal(qkd_store_kme_issue(ro, BOB, &r, 1, bits, sizeof(bits), &why),
			 QKD_ERR_INVAL);
	assert_int_equal(consumed(ro, 0), 0);
	assert_int_equal(consumed(ro, 1), 0);
	assert_int_equal(r.nsegs, 0);		/* a failed issue clears the segments */
	r.nsegs = 1;
	r.segs[0] = (struct qkd_store_seg){ .id = 0, .offset = 0, .nbits = 256 };
	assert_int_equal(raw_int(f->pb, "SELECT version FROM schema_version"), 1);

	/* a writer upgrades it; the reader's handle sees the new tables */
	f->b = open_ok(f->pb);
	assert_int_equal(raw_int(f->pb, "SELECT version FROM schema_version"),
			 QKD_STORE_SCHEMA_VERSION);
	check_ok(f->b);
	assert_int_equal(accept_v(ro, ALICE, &r, true, NULL), QKD_KME_ACCEPTED);
	assert_counts(f->b, 0, 1, 0, 0);
	assert_int_equal(consumed(f->b, 0), 256);
	check_ok(ro);
	qkd_store_close(ro);
	qkd_store_close(f->b);
	/* and the upgraded file opens as any current one */
	f->b = open_ok(f->pb);
	assert_counts(f->b, 0, 1, 0, 0);
	check_ok(f->b);
}

/* qkd_store_check catches records that break the invariants. */
static void test_check_catches(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r[2];
	uint8_t bits[64];
	const char *why = NULL;

	put_both(f, 0, 1024);
	issue_ok(f->a, ALICE, r, 2, 1, 256, bits);
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(accept_v(f->b, ALICE, &r[i], true, NULL), QKD_KME_ACCEPTED);
	qkd_store_close(f->b);
	f->b = NULL;

	raw_sql(f->pb, "CREATE TABLE keep AS SELECT * FROM kme_bits;"
		"DELETE FROM kme_bits WHERE seq = (SELECT min(seq) FROM kme_bits)");
	f->b = open_ok(f->pb);
	assert_int_equal(qkd_store_check(f->b, &why), QKD_ERR_IO);
	assert_true(has_text(why, "ready key"));
	qkd_store_close(f->b);
	raw_sql(f->pb, "INSERT OR REPLACE INTO kme_bits SELECT * FROM keep;"
		"UPDATE kme_bits SET bits = zeroblob(31) WHERE seq = (SELECT min(seq) FROM kme_bits)");
	f->b = open_ok(f->pb);
	assert_int_equal(qkd_store_check(f->b, &why), QKD_ERR_IO);
	assert_true(has_text(why, "wrong length"));
	qkd_store_close(f->b);
	raw_sql(f->pb, "INSERT OR REPLACE INTO kme_bits SELECT * FROM keep; DROP TABLE keep");
	f->b = open_ok(f->pb);
	check_ok(f->b);
	qkd_store_close(f->b);

	/* segments that do not make the length (an outbox record: no bits) */
	qkd_store_close(f->a);
	raw_sql(f->pa, "UPDATE kme_key SET nbits = 248 WHERE seq = (SELECT min(seq) FROM kme_key)");
	f->a = open_ok(f->pa);
	assert_int_equal(qkd_store_check(f->a, &why), QKD_ERR_IO);
	assert_true(has_text(why, "segments"));
	qkd_store_close(f->a);
	raw_sql(f->pa, "UPDATE kme_key SET nbits = 256");
	f->a = open_ok(f->pa);
	check_ok(f->a);
	/* a record whose bits were never consumed (offset 512 is free) */
	raw_sql(f->pb, "UPDATE kme_key SET segs = x'000000000000000000000000000002000000000000000100'"
		" WHERE seq = (SELECT max(seq) FROM kme_key)");
	f->b = open_ok(f->pb);
	assert_int_equal(qkd_store_check(f->b, &why), QKD_ERR_IO);
	assert_true(has_text(why, "not consumed"));
}

static void test_bad_arguments(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_counts c;
	uint64_t bits = 0;
	uint8_t id[16] = { 0 }, buf[8];
	uint8_t *outs[1] = { buf };
	size_t len = 0, bad = 0;
	const char *why = NULL;

	assert_int_equal(qkd_store_kme_available(f->a, 2, &bits, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_available(NULL, ALICE, &bits, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_available(f->a, ALICE, NULL, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_counts(NULL, &c, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_counts(f->a, NULL, &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_deliver(f->a, MASTER, SLAVE, (const uint8_t (*)[16])id, 0,
					       outs, sizeof(buf), &len, &bad, &why),
			 QKD_ERR_INVAL);
	assert_int_equal(bad, 0);
	assert_int_equal(qkd_store_kme_deliver(f->a, NULL, SLAVE, (const uint8_t (*)[16])id, 1,
					       outs, sizeof(buf), &len, &bad, &why),
			 QKD_ERR_INVAL);
	assert_int_equal(bad, 1);
	assert_int_equal(qkd_store_kme_deliver(f->a, MASTER, SLAVE, (const uint8_t (*)[16])id, 1,
					       outs, sizeof(buf), &len, &bad, &why),
			 QKD_ERR_INVAL);
	assert_int_equal(bad, 0);
	assert_true(has_text(why, "no such key_ID"));
	assert_counts(f->a, 0, 0, 0, 0);
	assert_int_equal(available(f->a, ALICE), 0);
}

/* ---- digests, quarantine ---- */

/* Flip one bit of row `row` of table's bits behind the store's back. */
static void raw_flip(const char *path, const char *table, int64_t row, int byte, int bit)
{
	sqlite3 *db = NULL;
	sqlite3_blob *b = NULL;
	uint8_t c;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_blob_open(db, "main", table, "bits", row, 1, &b), SQLITE_OK);
	assert_int_equal(sqlite3_blob_read(b, &c, 1, byte), SQLITE_OK);
	c ^= (uint8_t)(1u << bit);
	assert_int_equal(sqlite3_blob_write(b, &c, 1, byte), SQLITE_OK);
	sqlite3_blob_close(b);
	sqlite3_close(db);
}

/* A ready key whose bits rot: deliver fails with QKD_ERR_CORRUPT, hands
 * out nothing (not even the good key before it), and quarantines it. */
static void test_deliver_corrupt(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r[2];
	const struct qkd_kme_rec *pr[2] = { &r[0], &r[1] };
	uint8_t bits[64], out[2][1024];
	size_t lens[2], bad = 9, len = 0;
	struct qkd_kme_counts c;
	const char *why = NULL;

	put_both(f, 0, 2048);
	issue_ok(f->a, ALICE, r, 2, 1, 256, bits);
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(accept_v(f->b, ALICE, &r[i], true, NULL), QKD_KME_ACCEPTED);
	qkd_store_close(f->b);
	raw_flip(f->pb, "kme_bits", raw_int(f->pb, "SELECT max(seq) FROM kme_bits"), 5, 2);
	f->b = open_ok(f->pb);
	check_ok(f->b);		/* the invariants hold: only the digest tells */
	memset(out, 0x77, sizeof(out));
	assert_int_equal(deliver(f->b, MASTER, SLAVE, pr, 2, out, sizeof(out[0]), lens, &bad, &why),
			 QKD_ERR_CORRUPT);
	assert_int_equal(bad, 1);
	assert_true(has_text(why, "key 00a5a5a5-a5a5-a5a5-a5a5-a5a5a5a5a502:"));
	assert_true(has_text(why, "quarantined"));
	assert_true(all_zero(out[0], sizeof(out[0])));
	assert_true(all_zero(out[1], sizeof(out[1])));
	c = counts(f->b);
	assert_int_equal(c.ready, 1);
	assert_int_equal(c.quarantined, 1);
	assert_int_equal(c.delivered, 0);
	assert_int_equal(c.lost_bits, 256);	/* the quarantined key's bits */
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r[1], out[1], 1024, &len), QKD_ERR_CORRUPT);
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r[0], out[0], 1024, &len), QKD_OK);
	assert_memory_equal(out[0], bits, 32);
	/* the record sent again is refused now */
	assert_int_equal(accept_v(f->b, ALICE, &r[1], true, &why), QKD_KME_REFUSED);
	assert_true(has_text(why, "digest"));
	check_ok(f->b);
	qkd_store_close(f->b);
	assert_int_equal(raw_int(f->pb, "SELECT count(*) FROM kme_bits"), 0);
	assert_int_equal(raw_int(f->pb, "SELECT count(*) FROM kme_sum"), 0);
	f->b = open_ok(f->pb);
	qkd_wipe(out, sizeof(out));
}

/* A block that rots under issue or accept: the call fails, nothing is
 * consumed or recorded, the block is quarantined; a retry goes around it
 * (issue) or is refused (accept). */
static void test_issue_accept_corrupt(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r[1], again[1];
	enum qkd_kme_verdict v = QKD_KME_ACCEPTED;
	uint8_t bits[32];
	size_t n = 9;
	const char *why = NULL;

	put_both(f, 0, 1024);
	put_both(f, 2, 1024);
	qkd_store_close(f->a);
	raw_flip(f->pa, "qbits", 0, 3, 0);
	f->a = open_ok(f->pa);
	r[0] = mkrec(1, MASTER, SLAVE, 256);
	assert_int_equal(qkd_store_kme_issue(f->a, ALICE, r, 1, bits, sizeof(bits), &why),
			 QKD_ERR_CORRUPT);
	assert_true(has_text(why, "block 0:"));
	assert_int_equal(r[0].nsegs, 0);
	assert_int_equal(state_of(f->a, 0), QKD_STORE_QUARANTINED);
	assert_int_equal(consumed(f->a, 2), 0);
	assert_int_equal(qkd_store_kme_outbox(f->a, again, 1, &n, NULL), QKD_OK);
	assert_int_equal(n, 0);
	issue_ok(f->a, ALICE, r, 1, 1, 256, bits);
	assert_int_equal(r[0].segs[0].id, 2);

	/* Bob's copy of block 2 rots: his accept fails, then refuses */
	qkd_store_close(f->b);
	raw_flip(f->pb, "qbits", 2, 0, 7);
	f->b = open_ok(f->pb);
	assert_int_equal(qkd_store_kme_accept(f->b, ALICE, &r[0], true, &v, &why), QKD_ERR_CORRUPT);
	assert_int_equal(v, QKD_KME_LATER);
	assert_true(has_text(why, "block 2:"));
	assert_int_equal(state_of(f->b, 2), QKD_STORE_QUARANTINED);
	assert_counts(f->b, 0, 0, 0, 0);
	assert_int_equal(accept_v(f->b, ALICE, &r[0], true, &why), QKD_KME_REFUSED);
	assert_true(has_text(why, "quarantined"));
	assert_counts(f->b, 0, 0, 0, 1);
	check_ok(f->a);
	check_ok(f->b);
	qkd_wipe(bits, sizeof(bits));
}

/* ---- abandoned and withdrawn ---- */

static struct qkd_kme_counts counts_of(struct qkd_store *s)
{
	return counts(s);
}

static void test_abandon_withdraw(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r[3], got[8], wd[5];
	uint8_t bits[3 * 32], out[64], ids[5][16], settled[16];
	enum qkd_kme_withdraw_verdict v[5];
	struct qkd_kme_counts c;
	size_t n = 0, len = 0;
	const char *why = NULL;

	put_both(f, 0, 4096);
	issue_ok(f->a, ALICE, r, 3, 1, 256, bits);
	assert_int_equal(accept_v(f->b, ALICE, &r[0], true, NULL), QKD_KME_ACCEPTED);	/* ready */
	assert_int_equal(accept_v(f->b, ALICE, &r[1], true, NULL), QKD_KME_ACCEPTED);
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r[1], out, sizeof(out), &len), QKD_OK);
	/* r[2] never reached Bob; key 40 was settled at Alice just before */
	memcpy(settled, mkrec(40, MASTER, SLAVE, 256).key_id, 16);
	for (size_t i = 0; i < 3; i++)
		memcpy(ids[i], r[i].key_id, 16);
	memcpy(ids[3], settled, 16);
	memcpy(ids[4], ids[0], 16);	/* twice */

	assert_int_equal(qkd_store_kme_abandon(f->a, (const uint8_t (*)[16])ids, 5, &why), QKD_OK);
	assert_null(why);
	assert_int_equal(qkd_store_kme_abandon(f->a, (const uint8_t (*)[16])ids, 4, NULL), QKD_OK);
	c = counts_of(f->a);
	assert_int_equal(c.outbox, 4);
	assert_int_equal(c.abandoned, 4);
	assert_int_equal(c.lost_bits, 3 * 256);	/* the settled one had no record left */
	assert_int_equal(qkd_store_kme_outbox(f->a, got, 8, &n, NULL), QKD_OK);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < 3; i++) {
		assert_true(got[i].abandoned);
		assert_memory_equal(got[i].key_id, r[i].key_id, 16);
		assert_int_equal(got[i].nsegs, r[i].nsegs);	/* the record is kept */
	}
	assert_true(got[3].abandoned);
	assert_memory_equal(got[3].key_id, settled, 16);
	assert_int_equal(got[3].nsegs, 0);
	assert_int_equal(got[3].nbits, 0);
	assert_string_equal(got[3].master, "");
	check_ok(f->a);

	/* Bob: ready -> withdrawn, delivered stays, unknown -> tombstone
	 * (the withdrawals as the link sends them: key_id and segments) */
	for (size_t i = 0; i < 5; i++) {
		memset(&wd[i], 0, sizeof wd[i]);
		memcpy(wd[i].key_id, ids[i], 16);
	}
	for (size_t i = 0; i < 3; i++) {
		wd[i].nsegs = got[i].nsegs;
		memcpy(wd[i].segs, got[i].segs, sizeof wd[i].segs);
	}
	wd[4] = wd[0];
	assert_int_equal(qkd_store_kme_withdraw_batch(f->b, ALICE, wd, 5, v, &why), QKD_OK);
	assert_int_equal(v[0], QKD_KME_WD_WITHDRAWN);
	assert_int_equal(v[1], QKD_KME_WD_DELIVERED);
	assert_int_equal(v[2], QKD_KME_WD_WITHDRAWN);
	assert_int_equal(v[3], QKD_KME_WD_WITHDRAWN);
	assert_int_equal(v[4], QKD_KME_WD_WITHDRAWN);
	c = counts_of(f->b);
	assert_int_equal(c.ready, 0);
	assert_int_equal(c.delivered, 1);
	assert_int_equal(c.withdrawn, 3);
	assert_int_equal(c.lost_bits, 2 * 256);	/* r[0] retired, r[2] consumed */
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r[0], out, sizeof(out), &len), QKD_ERR_INVAL);
	/* the record arriving late is refused for good; its bits were consumed
	 * with the withdrawal, as at the master */
	assert_int_equal(accept_v(f->b, ALICE, &r[2], true, &why), QKD_KME_REFUSED);
	assert_true(has_text(why, "withdrawn"));
	assert_int_equal(consumed(f->b, 0), 3 * 256);
	/* again: the same answers, nothing changes */
	assert_int_equal(qkd_store_kme_withdraw_batch(f->b, ALICE, wd, 4, v, NULL), QKD_OK);
	assert_int_equal(v[0], QKD_KME_WD_WITHDRAWN);
	assert_int_equal(v[1], QKD_KME_WD_DELIVERED);
	assert_int_equal(counts_of(f->b).withdrawn, 3);
	check_ok(f->b);
	qkd_store_close(f->b);
	assert_int_equal(raw_int(f->pb, "SELECT count(*) FROM kme_bits"), 0);
	f->b = open_ok(f->pb);

	/* A verdict on an abandoned record keeps it (the peer may have
	 * accepted it: it must be withdrawn); the answers to the withdrawals
	 * drop them. */
	assert_int_equal(qkd_store_kme_outbox_done_batch(f->a, (const uint8_t (*)[16])ids, 4, NULL),
			 QKD_OK);
	assert_int_equal(counts_of(f->a).abandoned, 4);
	assert_int_equal(qkd_store_kme_withdrawals_done_batch(f->a, (const uint8_t (*)[16])ids, 4,
							      NULL), QKD_OK);
	assert_counts(f->a, 0, 0, 0, 0);
	assert_int_equal(consumed(f->a, 0), 3 * 256);	/* bits stay consumed */
	/* an inbox key is not abandoned; Alice's own ids are not withdrawn at her end */
	assert_int_equal(qkd_store_kme_abandon(f->b, (const uint8_t (*)[16])ids, 1, NULL), QKD_OK);
	assert_int_equal(counts_of(f->b).abandoned, 0);
	issue_ok(f->a, ALICE, r, 1, 60, 256, bits);
	assert_int_equal(qkd_store_kme_withdraw_batch(f->a, BOB, &r[0], 1, v, NULL), QKD_OK);
	assert_int_equal(v[0], QKD_KME_WD_WITHDRAWN);
	assert_counts(f->a, 1, 0, 0, 0);
	assert_int_equal(qkd_store_kme_withdraw_batch(f->a, 2, wd, 1, v, NULL), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_withdraw_batch(f->a, BOB, NULL, 1, v, NULL), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_abandon(NULL, (const uint8_t (*)[16])ids, 1, NULL),
			 QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_abandon(f->a, NULL, 0, NULL), QKD_OK);
	check_ok(f->a);
	check_ok(f->b);
	qkd_wipe(bits, sizeof(bits));
	qkd_wipe(out, sizeof(out));
}

/* ---- the key lifecycle: expiry, pruning, orphans of a restart ---- */

static size_t expire_n(struct qkd_store *s, int64_t now, uint64_t ttl)
{
	size_t n = 99;
	const char *why = "unset";

	assert_int_equal(qkd_store_kme_expire(s, now, ttl, &n, &why), QKD_OK);
	assert_null(why);
	return n;
}

static size_t prune_n(struct qkd_store *s, int64_t now, uint64_t age)
{
	size_t n = 99;

	assert_int_equal(qkd_store_kme_prune(s, now, age, &n, NULL), QKD_OK);
	return n;
}

/* Bob accepts Alice's records r[0 .. n) between *t0 and *t1 (the
 * records' creation times lie in between). */
static void accept_all(struct fix *f, const struct qkd_kme_rec *r, size_t n, int64_t *t0,
		       int64_t *t1)
{
	*t0 = (int64_t)time(NULL);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(accept_v(f->b, ALICE, &r[i], true, NULL), QKD_KME_ACCEPTED);
	*t1 = (int64_t)time(NULL);
}

static void test_expire(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r[4];
	uint8_t bits[4 * 32], out[64], want[32];
	enum qkd_kme_withdraw_verdict v;
	struct qkd_kme_counts c;
	int64_t t0, t1;
	size_t len = 0;
	const char *why = NULL;

	put_both(f, 0, 4096);
	issue_ok(f->a, ALICE, r, 4, 1, 256, bits);
	accept_all(f, r, 4, &t0, &t1);
	/* one key older than the others: expired first, alone */
	qkd_store_close(f->b);
	raw_sql(f->pb, "UPDATE kme_key SET created = created - 100 WHERE seq = 4");
	f->b = open_ok(f->pb);
	assert_int_equal(expire_n(f->b, t0 - 1, 100), 0);	/* not yet */
	assert_int_equal(expire_n(f->b, t1, 100), 1);			/* r[3] only */
	assert_int_equal(expire_n(f->b, t1, 0), 0);			/* TTL 0: never */
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r[1], out, sizeof(out), &len), QKD_OK);
	expect_key(&r[1], want);
	assert_memory_equal(out, want, 32);
	assert_int_equal(expire_n(f->b, t1 + 100, 100), 2);		/* r[0], r[2] */
	assert_int_equal(expire_n(f->b, t1 + 100, 100), 0);		/* done already */
	c = counts(f->b);
	assert_int_equal(c.ready, 0);
	assert_int_equal(c.delivered, 1);
	assert_int_equal(c.expired, 3);
	assert_int_equal(c.lost_bits, 3 * 256);
	assert_int_equal(c.withdrawn, 0);
	/* dec_keys of an expired key: refused, the reason names expiry */
	{
		uint8_t bufs[1][1024];
		const struct qkd_kme_rec *one[1] = { &r[0] };
		size_t lens[1], bad = 99;

		assert_int_equal(deliver(f->b, MASTER, SLAVE, one, 1, bufs, sizeof(bufs[0]), lens,
					 &bad, &why), QKD_ERR_INVAL);
		assert_int_equal(bad, 0);
		assert_ptr_equal(why, qkd_store_kme_why_expired);
		assert_true(all_zero(bufs[0], 32));
	}
	/* the record sent again is refused; a withdrawal leaves it expired */
	assert_int_equal(accept_v(f->b, ALICE, &r[2], true, &why), QKD_KME_REFUSED);
	assert_true(has_text(why, "expired"));
	assert_int_equal(qkd_store_kme_withdraw_batch(f->b, ALICE, &r[0], 1, &v, NULL), QKD_OK);
	assert_int_equal(v, QKD_KME_WD_WITHDRAWN);
	c = counts(f->b);
	assert_int_equal(c.expired, 3);
	assert_int_equal(c.withdrawn, 0);
	assert_int_equal(c.lost_bits, 3 * 256);
	assert_int_equal(consumed(f->b, 0), 4 * 256);	/* nothing returns to the pool */
	check_ok(f->b);
	/* the bits are gone from the file, the tombstones stay */
	qkd_store_close(f->b);
	assert_int_equal(raw_int(f->pb, "SELECT count(*) FROM kme_bits"), 0);
	assert_int_equal(raw_int(f->pb, "SELECT count(*) FROM kme_sum"), 0);
	assert_int_equal(raw_int(f->pb, "SELECT count(*) FROM kme_key WHERE state = 'expired'"), 3);
	f->b = open_ok(f->pb);
	assert_int_equal(counts(f->b).expired, 3);	/* across reopening */
	/* the master's end has no ready key: nothing there expires */
	assert_int_equal(expire_n(f->a, t1 + 100, 100), 0);
	assert_int_equal(counts(f->a).outbox, 4);
	/* bad arguments */
	assert_int_equal(qkd_store_kme_expire(NULL, t1, 1, &len, NULL), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_expire(f->b, t1, 1, NULL, NULL), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_expire(f->b, -1, 1, &len, NULL), QKD_ERR_INVAL);
	assert_int_equal(expire_n(f->b, 5, 100), 0);	/* a TTL longer than all time */
	qkd_wipe(bits, sizeof(bits));
	qkd_wipe(out, sizeof(out));
	qkd_wipe(want, sizeof(want));
}

static void test_prune(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r[4], lone, wd;
	uint8_t bits[4 * 32], out[64];
	enum qkd_kme_withdraw_verdict v;
	struct qkd_kme_counts c;
	int64_t t0, t1, t2, t3;
	size_t len = 0;
	const char *why = NULL;

	put_both(f, 0, 1024);	/* four keys use all of it: USED at both ends */
	put_both(f, 2, 4096);	/* one key, the block stays FINAL */
	issue_ok(f->a, ALICE, r, 4, 1, 256, bits);
	issue_ok(f->a, ALICE, &lone, 1, 10, 256, bits);
	assert_int_equal(state_of(f->b, 0), QKD_STORE_FINAL);
	accept_all(f, r, 4, &t0, &t1);
	accept_all(f, &lone, 1, &t2, &t3);
	assert_int_equal(state_of(f->b, 0), QKD_STORE_USED);
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r[0], out, sizeof(out), &len), QKD_OK);
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r[1], out, sizeof(out), &len), QKD_OK);
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &lone, out, sizeof(out), &len), QKD_OK);
	assert_int_equal(expire_n(f->b, t1 + 10, 10), 2);	/* r[2], r[3] */
	/* a withdrawn key_ID Bob never had: a tombstone without segments */
	wd = mkrec(50, MASTER, SLAVE, 256);
	wd.nsegs = 0;
	assert_int_equal(qkd_store_kme_withdraw_batch(f->b, ALICE, &wd, 1, &v, NULL), QKD_OK);

	assert_int_equal(prune_n(f->b, t0 + 50 - 1, 50), 0);	/* too young */
	assert_int_equal(prune_n(f->b, t3 + 50, 50), 4);	/* block 0's four */
	assert_int_equal(prune_n(f->b, t3 + 50, 50), 0);
	c = counts(f->b);
	assert_int_equal(c.pruned, 4);
	assert_int_equal(c.delivered, 1);	/* lone's: its block has free bits */
	assert_int_equal(c.withdrawn, 1);	/* kept for good */
	assert_int_equal(c.expired, 2);		/* the tally outlives the rows */
	assert_int_equal(c.lost_bits, 2 * 256);
	assert_int_equal(c.ready, 0);
	/* a pruned record sent again is still refused (its bits are spent)
	 * and never served */
	assert_int_equal(accept_v(f->b, ALICE, &r[0], true, &why), QKD_KME_REFUSED);
	assert_true(has_text(why, "consumed") || has_text(why, "used"));
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r[0], out, sizeof(out), &len),
			 QKD_ERR_INVAL);
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r[2], out, sizeof(out), &len),
			 QKD_ERR_INVAL);
	assert_int_equal(consumed(f->b, 0), 1024);
	check_ok(f->b);
	/* nothing in the outbox is pruned */
	assert_int_equal(prune_n(f->a, t3 + 50, 50), 0);
	assert_int_equal(counts(f->a).outbox, 5);
	assert_int_equal(qkd_store_kme_prune(NULL, t3, 1, &len, NULL), QKD_ERR_INVAL);
	assert_int_equal(qkd_store_kme_prune(f->b, -1, 1, &len, NULL), QKD_ERR_INVAL);
	qkd_wipe(bits, sizeof(bits));
	qkd_wipe(out, sizeof(out));
}

static void test_abandon_pending(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r[3], got[4];
	uint8_t bits[3 * 32];
	struct qkd_kme_counts c;
	size_t n = 99;
	const char *why = "unset";

	put_both(f, 0, 4096);
	issue_ok(f->a, ALICE, r, 3, 1, 256, bits);
	/* r[0] was settled before the crash, r[1], r[2] were not */
	assert_int_equal(qkd_store_kme_outbox_done(f->a, r[0].key_id, NULL), QKD_OK);
	qkd_store_close(f->a);		/* the process dies */
	f->a = open_ok(f->pa);
	assert_int_equal(qkd_store_kme_abandon_pending(f->a, &n, &why), QKD_OK);
	assert_null(why);
	assert_int_equal(n, 2);
	assert_int_equal(qkd_store_kme_abandon_pending(f->a, &n, NULL), QKD_OK);
	assert_int_equal(n, 0);
	c = counts(f->a);
	assert_int_equal(c.outbox, 2);
	assert_int_equal(c.abandoned, 2);
	assert_int_equal(c.lost_bits, 2 * 256);
	assert_int_equal(qkd_store_kme_outbox(f->a, got, 4, &n, NULL), QKD_OK);
	assert_int_equal(n, 2);
	assert_true(got[0].abandoned && got[1].abandoned);
	assert_memory_equal(got[0].key_id, r[1].key_id, 16);
	/* a verdict arriving late does not drop them: only the withdrawal's */
	assert_int_equal(qkd_store_kme_outbox_done(f->a, r[1].key_id, NULL), QKD_OK);
	assert_int_equal(counts(f->a).abandoned, 2);
	/* Bob never saw them: the withdrawal consumes their bits there too and
	 * refuses the records for good */
	{
		enum qkd_kme_withdraw_verdict v[2];

		assert_int_equal(qkd_store_kme_withdraw_batch(f->b, ALICE, got, 2, v, NULL), QKD_OK);
		assert_int_equal(v[0], QKD_KME_WD_WITHDRAWN);
		assert_int_equal(v[1], QKD_KME_WD_WITHDRAWN);
		assert_int_equal(accept_v(f->b, ALICE, &r[2], true, NULL), QKD_KME_REFUSED);
		assert_int_equal(counts(f->b).lost_bits, 2 * 256);
		{
			uint8_t bufs[1][1024];
			const struct qkd_kme_rec *one[1] = { &r[1] };
			size_t lens[1], bad = 99;

			assert_int_equal(deliver(f->b, MASTER, SLAVE, one, 1, bufs, sizeof(bufs[0]),
						 lens, &bad, &why), QKD_ERR_INVAL);
			assert_ptr_equal(why, qkd_store_kme_why_withdrawn);
		}
		assert_int_equal(consumed(f->b, 0), 2 * 256);	/* as at Alice, bar r[0] */
	}
	assert_int_equal(qkd_store_kme_abandon_pending(NULL, &n, NULL), QKD_ERR_INVAL);
	check_ok(f->a);
	check_ok(f->b);
	qkd_wipe(bits, sizeof(bits));
}

/* A version 3 file as that version wrote it: kme_key without 'expired',
 * no kme_tally, no kme_ready (keystore_schema.c, step 3). */
static void make_v3(const char *path)
{
	raw_sql(path,
		"CREATE TABLE kme_key_old ("
		"  seq INTEGER PRIMARY KEY,"
		"  key_id BLOB NOT NULL UNIQUE CHECK (length(key_id) = 16),"
		"  dir TEXT NOT NULL CHECK (dir IN ('out', 'in')),"
		"  state TEXT NOT NULL CHECK (state IN ('pending', 'abandoned', 'ready', 'delivered',"
		"    'refused', 'withdrawn', 'quarantined')),"
		"  master TEXT CHECK (length(CAST(master AS BLOB)) BETWEEN 1 AND 64),"
		"  slave TEXT CHECK (length(CAST(slave AS BLOB)) BETWEEN 1 AND 64),"
		"  nbits INTEGER CHECK (nbits BETWEEN 8 AND 65536 AND nbits % 8 = 0),"
		"  segs BLOB CHECK (length(segs) BETWEEN 24 AND 192 AND length(segs) % 24 = 0),"
		"  created INTEGER NOT NULL,"
		"  CHECK ((dir = 'out') = (state IN ('pending', 'abandoned'))),"
		"  CHECK ((master IS NULL) = (slave IS NULL) AND (master IS NULL) = (nbits IS NULL)"
		"    AND (master IS NULL) = (segs IS NULL)),"
		"  CHECK (master IS NOT NULL OR state IN ('abandoned', 'withdrawn'))"
		") STRICT;"
		"INSERT INTO kme_key_old SELECT seq, key_id, dir, state, master, slave, nbits, segs,"
		"  created FROM kme_key;"
		"DROP TABLE kme_key;"
		"ALTER TABLE kme_key_old RENAME TO kme_key;"
		"CREATE INDEX kme_outbox ON kme_key (seq) WHERE dir = 'out';"
		"DROP TABLE kme_tally;"
		"UPDATE schema_version SET version = 3;");
}

/* A version 3 store with records: a reader sees them (no tallies) and
 * cannot expire; a writer upgrades it to 4 with every record kept, and
 * its ready keys then expire as any. */
static void test_migrate_v3(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r[3];
	uint8_t bits[3 * 32], out[64], want[32];
	struct qkd_store *ro = NULL;
	struct qkd_kme_counts c;
	size_t n = 0, len = 0;
	const char *why = NULL;

	put_both(f, 0, 4096);
	issue_ok(f->a, ALICE, r, 3, 1, 256, bits);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(accept_v(f->b, ALICE, &r[i], true, NULL), QKD_KME_ACCEPTED);
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r[0], out, sizeof(out), &len), QKD_OK);
	qkd_store_close(f->b);
	f->b = NULL;
	make_v3(f->pb);
	assert_int_equal(raw_int(f->pb, "SELECT count(*) FROM sqlite_schema WHERE name = 'kme_tally'"),
			 0);

	assert_int_equal(qkd_store_open_existing(&ro, f->pb, &why), QKD_OK);
	c = counts(ro);
	assert_int_equal(c.ready, 2);
	assert_int_equal(c.delivered, 1);
	assert_int_equal(c.expired, 0);
	assert_int_equal(c.lost_bits, 0);
	assert_int_equal(qkd_store_kme_expire(ro, INT64_MAX / 2, 1, &n, &why), QKD_ERR_INVAL);
	assert_true(has_text(why, "schema version 3"));
	assert_int_equal(raw_int(f->pb, "SELECT version FROM schema_version"), 3);

	f->b = open_ok(f->pb);		/* a writer upgrades it */
	assert_int_equal(raw_int(f->pb, "SELECT version FROM schema_version"),
			 QKD_STORE_SCHEMA_VERSION);
	check_ok(f->b);
	assert_counts(f->b, 0, 2, 1, 0);
	assert_int_equal(deliver1(f->b, MASTER, SLAVE, &r[1], out, sizeof(out), &len), QKD_OK);
	expect_key(&r[1], want);
	assert_memory_equal(out, want, 32);	/* the bits survived the rebuild */
	assert_int_equal(expire_n(f->b, INT64_MAX / 2, 1), 1);	/* r[2] */
	c = counts(f->b);
	assert_int_equal(c.expired, 1);
	assert_int_equal(c.lost_bits, 256);
	assert_int_equal(counts(ro).expired, 1);	/* the reader's handle follows */
	check_ok(f->b);
	qkd_store_close(ro);
	qkd_wipe(bits, sizeof(bits));
	qkd_wipe(out, sizeof(out));
	qkd_wipe(want, sizeof(want));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_issue_parity),
		T(test_issue_fills_gaps),
		T(test_span_two_blocks),
		T(test_issue_range),
		T(test_issue_too_many_segs),
		T(test_issue_invalid),
		T(test_outbox),
		T(test_accept_deliver),
		T(test_deliver_wrong_pair),
		T(test_deliver_all_or_nothing),
		T(test_accept_idempotent),
		T(test_accept_refused),
		T(test_accept_malformed),
		T(test_accept_later),
		T(test_persistence),
		T(test_migrate_v1),
		T(test_check_catches),
		T(test_bad_arguments),
		T(test_deliver_corrupt),
		T(test_issue_accept_corrupt),
		T(test_abandon_withdraw),
		T(test_expire),
		T(test_prune),
		T(test_abandon_pending),
		T(test_migrate_v3),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
