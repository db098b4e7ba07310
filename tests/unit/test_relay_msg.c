/* test_relay_msg.c - the key relay message codec (lib/relay/relay_msg.c,
 * qkd/relay_msg.h, docs/relay.md "Key relay messages").
 *
 * The messages under test are written two ways: by the library's encoders
 * and by raw_key / raw_back below, a second writer of the documented format
 * that checks nothing, so a refusal can be fed to the decoder and the
 * library's encoding can be compared byte for byte with an independent one.
 * Known-answer vectors pin the format to the page. The checks: round trips
 * (decode then re-encode gives the input) of KEY, COMPLETION and FAILURE,
 * including the largest KEY message and every valid (hop, at, code) of a
 * back message; every truncation and a trailing byte; every refusal of the
 * header (version, path length, hop, loop, ids, shares), of KEY (hop 0, SAE
 * ids, nbits, pad count and sum) and of the back messages (code and at
 * rules, wrong type), each with the decoder's code, a reason, a zeroed
 * output and an encoder that refuses without writing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/relay_msg.h"
#include "qkd/wire.h"

static const struct qkd_relay_key_msg zero_key;
static const struct qkd_relay_back_msg zero_back;

/* ---- an independent writer of the wire format (no checks) -------------- */

static void raw_str(struct qkd_wbuf *w, const char *s)
{
	qkd_put_u8(w, (uint8_t)strlen(s));
	qkd_put_bytes(w, s, strlen(s));
}

static void raw_head(struct qkd_wbuf *w, const struct qkd_relay_head *h)
{
	size_t n = h->n_path < QKD_RELAY_PATH_MAX ? h->n_path : QKD_RELAY_PATH_MAX;

	qkd_put_u8(w, QKD_RELAY_MSG_VERSION);
	qkd_put_bytes(w, h->key_id, 16);
	qkd_put_u8(w, h->attempt);
	qkd_put_u8(w, h->share);
	qkd_put_u8(w, h->shares);
	qkd_put_u8(w, h->hop);
	qkd_put_u8(w, h->n_path);
	for (size_t i = 0; i < n; i++)
		raw_str(w, h->path[i]);
}

static void raw_key(struct qkd_wbuf *w, const struct qkd_relay_key_msg *m)
{
	size_t n_pad = m->n_pad < QKD_RELAY_PAD_SEGS_MAX ? m->n_pad : QKD_RELAY_PAD_SEGS_MAX;
	size_t bytes = m->nbits / 8 < sizeof m->cipher ? m->nbits / 8 : sizeof m->cipher;

	qkd_wbuf_reset(w);
	raw_head(w, &m->h);
	raw_str(w, m->master);
	raw_str(w, m->slave);
	qkd_put_u32(w, m->nbits);
	qkd_put_u8(w, (uint8_t)m->n_pad);
	for (size_t i = 0; i < n_pad; i++) {
		qkd_put_u64(w, m->pad[i].id);
		qkd_put_u64(w, m->pad[i].offset);
		qkd_put_u32(w, (uint32_t)m->pad[i].nbits);
	}
	qkd_put_bytes(w, m->cipher, bytes);
	assert_int_equal(w->err, 0);
}

static void raw_back(struct qkd_wbuf *w, const struct qkd_relay_back_msg *m)
{
	qkd_wbuf_reset(w);
	raw_head(w, &m->h);
	qkd_put_u8(w, m->code);
	qkd_put_u8(w, m->at);
	assert_int_equal(w->err, 0);
}

/* ---- fixtures ---------------------------------------------------------- */

static void set_path(struct qkd_relay_head *h, const char *const *ids, size_t n)
{
	h->n_path = (uint8_t)n;
	for (size_t i = 0; i < n; i++)
		snprintf(h->path[i], sizeof h->path[i], "%s", ids[i]);
}

static const char *const path4[] = { "alice", "relay-1", "r_2.x", "bob" };

/* A key message from alice to bob, received by relay-1 (hop 1): three pad
 * segments of 24 + 8 + 32 bits for a 64-bit share. */
static void key_fixture(struct qkd_relay_key_msg *m)
{
	memset(m, 0, sizeof *m);
	for (size_t i = 0; i < 16; i++)
		m->h.key_id[i] = (uint8_t)(0xa0 + i);
	m->h.attempt = 3;
	m->h.share = 1;
	m->h.shares = 2;
	m->h.hop = 1;
	set_path(&m->h, path4, 4);
	snprintf(m->master, sizeof m->master, "sae~A.1");
	snprintf(m->slave, sizeof m->slave, "SAE_b-2");
	m->nbits = 64;
	m->n_pad = 3;
	m->pad[0] = (struct qkd_store_seg){ .id = 7, .offset = 1000, .nbits = 24 };
	m->pad[1] = (struct qkd_store_seg){ .id = UINT64_MAX, .offset = UINT64_MAX - 8, .nbits = 8 };
	m->pad[2] = (struct qkd_store_seg){ .id = 9, .offset = 0, .nbits = 32 };
	for (size_t i = 0; i < 8; i++)
		m->cipher[i] = (uint8_t)(0x11 * (i + 1));
}

/* A failure on the 4-node path: relay-1 (hop 1) hears that r_2.x (at 2)
 * found no key on its next link. */
static void back_fixture(struct qkd_relay_back_msg *m)
{
	memset(m, 0, sizeof *m);
	memset(m->h.key_id, 0x5c, 16);
	m->h.shares = 1;
	m->h.hop = 1;
	set_path(&m->h, path4, 4);
	m->code = QKD_RELAY_FAIL_NO_KEY;
	m->at = 2;
}

/* ---- helpers ----------------------------------------------------------- */

/* Decodes p[0..n) as KEY, expects rc, a reason and a zeroed output. */
#define key_refused(p, n, rc) key_refused_at((p), (n), (rc), __LINE__)
static void key_refused_at(const uint8_t *p, size_t n, int rc, int line)
{
	static struct qkd_relay_key_msg out;
	const char *why = NULL;
	int got;

	memset(&out, 0xee, sizeof out);
	got = qkd_relay_key_decode(&out, p, n, &why);
	if (got != rc)
		fail_msg("line %d: key decode of %zu bytes gave %d, expected %d (%s)", line, n,
			 got, rc, why != NULL ? why : "-");
	if (why == NULL)
		fail_msg("line %d: no reason", line);
	if (memcmp(&out, &zero_key, sizeof out) != 0)
		fail_msg("line %d: output not wiped", line);
}

#define back_refused(type, p, n, rc) back_refused_at((type), (p), (n), (rc), __LINE__)
static void back_refused_at(uint8_t type, const uint8_t *p, size_t n, int rc, int line)
{
	struct qkd_relay_back_msg out;
	const char *why = NULL;
	int got;

	memset(&out, 0xee, sizeof out);
	got = qkd_relay_back_decode(&out, type, p, n, &why);
	if (got != rc)
		fail_msg("line %d: back decode (type %u) of %zu bytes gave %d, expected %d (%s)",
			 line, type, n, got, rc, why != NULL ? why : "-");
	if (why == NULL)
		fail_msg("line %d: no reason", line);
	if (memcmp(&out, &zero_back, sizeof out) != 0)
		fail_msg("line %d: output not zeroed", line);
}

/* m is refused by the encoder (QKD_ERR_INVAL, w untouched) and, written by
 * hand, by the decoder with dec_rc. */
#define key_bad(m, dec_rc) key_bad_at((m), (dec_rc), __LINE__)
static void key_bad_at(const struct qkd_relay_key_msg *m, int dec_rc, int line)
{
	struct qkd_wbuf w;
	int rc;

	qkd_wbuf_init(&w);
	qkd_put_bytes(&w, "xyz", 3);
	rc = qkd_relay_key_encode(m, &w);
	if (rc != QKD_ERR_INVAL || w.len != 3 || memcmp(w.p, "xyz", 3) != 0 || w.err != 0)
		fail_msg("line %d: encoder gave %d and %zu bytes", line, rc, w.len);
	raw_key(&w, m);
	key_refused_at(w.p, w.len, dec_rc, line);
	qkd_wbuf_cleanup(&w);
}

#define back_bad(m, type, dec_rc) back_bad_at((m), (type), (dec_rc), __LINE__)
static void back_bad_at(const struct qkd_relay_back_msg *m, uint8_t type, int dec_rc, int line)
{
	struct qkd_wbuf w;
	int rc;

	qkd_wbuf_init(&w);
	qkd_put_bytes(&w, "xyz", 3);
	rc = qkd_relay_back_encode(m, type, &w);
	if (rc != QKD_ERR_INVAL || w.len != 3 || memcmp(w.p, "xyz", 3) != 0 || w.err != 0)
		fail_msg("line %d: encoder gave %d and %zu bytes", line, rc, w.len);
	raw_back(&w, m);
	back_refused_at(type, w.p, w.len, dec_rc, line);
	qkd_wbuf_cleanup(&w);
}

/* Encodes m, checks it equals the independent writer's bytes, decodes it,
 * checks the fields and that re-encoding gives the same bytes. */
static void key_roundtrip(const struct qkd_relay_key_msg *m)
{
	static struct qkd_relay_key_msg back;
	struct qkd_wbuf w, w2, raw;
	const char *why = "x";

	qkd_wbuf_init(&w);
	qkd_wbuf_init(&w2);
	qkd_wbuf_init(&raw);
	assert_int_equal(qkd_relay_key_encode(m, &w), QKD_OK);
	raw_key(&raw, m);
	assert_int_equal(w.len, raw.len);
	assert_memory_equal(w.p, raw.p, w.len);
	assert_int_equal(qkd_relay_key_decode(&back, w.p, w.len, &why), QKD_OK);
	assert_null(why);
	assert_memory_equal(back.h.key_id, m->h.key_id, 16);
	assert_int_equal(back.h.attempt, m->h.attempt);
	assert_int_equal(back.h.share, m->h.share);
	assert_int_equal(back.h.shares, m->h.shares);
	assert_int_equal(back.h.hop, m->h.hop);
	assert_int_equal(back.h.n_path, m->h.n_path);
	for (size_t i = 0; i < m->h.n_path; i++)
		assert_string_equal(back.h.path[i], m->h.path[i]);
	assert_string_equal(back.master, m->master);
	assert_string_equal(back.slave, m->slave);
	assert_int_equal(back.nbits, m->nbits);
	assert_int_equal(back.n_pad, m->n_pad);
	assert_memory_equal(back.pad, m->pad, m->n_pad * sizeof m->pad[0]);
	assert_memory_equal(back.cipher, m->cipher, m->nbits / 8);
	assert_int_equal(qkd_relay_key_encode(&back, &w2), QKD_OK);
	assert_int_equal(w2.len, w.len);
	assert_memory_equal(w2.p, w.p, w.len);
	qkd_wbuf_cleanup(&w);
	qkd_wbuf_cleanup(&w2);
	qkd_wbuf_cleanup(&raw);
}

static void back_roundtrip(const struct qkd_relay_back_msg *m, uint8_t type)
{
	struct qkd_relay_back_msg back;
	struct qkd_wbuf w, w2, raw;
	const char *why = "x";

	qkd_wbuf_init(&w);
	qkd_wbuf_init(&w2);
	qkd_wbuf_init(&raw);
	assert_int_equal(qkd_relay_back_encode(m, type, &w), QKD_OK);
	raw_back(&raw, m);
	assert_int_equal(w.len, raw.len);
	assert_memory_equal(w.p, raw.p, w.len);
	assert_int_equal(qkd_relay_back_decode(&back, type, w.p, w.len, &why), QKD_OK);
	assert_null(why);
	assert_memory_equal(back.h.key_id, m->h.key_id, 16);
	assert_int_equal(back.h.hop, m->h.hop);
	assert_int_equal(back.h.n_path, m->h.n_path);
	for (size_t i = 0; i < m->h.n_path; i++)
		assert_string_equal(back.h.path[i], m->h.path[i]);
	assert_int_equal(back.code, m->code);
	assert_int_equal(back.at, m->at);
	/* the other back type refuses the same bytes: COMPLETION's code is 0,
	 * FAILURE's never is */
	back_refused(type == QKD_RELAY_MSG_FAILURE ? QKD_RELAY_MSG_COMPLETION
						   : QKD_RELAY_MSG_FAILURE,
		     w.p, w.len, QKD_ERR_INVAL);
	assert_int_equal(qkd_relay_back_encode(&back, type, &w2), QKD_OK);
	assert_int_equal(w2.len, w.len);
	assert_memory_equal(w2.p, w.p, w.len);
	qkd_wbuf_cleanup(&w);
	qkd_wbuf_cleanup(&w2);
	qkd_wbuf_cleanup(&raw);
}

/* ---- tests ------------------------------------------------------------- */

/* Known-answer vectors: the bytes docs/relay.md describes. */
static void test_known_answer(void **state)
{
	static const uint8_t completion[] = {
		0x01,						/* version */
		0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,	/* key_id */
		0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
		0x02, 0x00, 0x01, 0x00, 0x02,			/* attempt share shares hop n_path */
		0x01, 's', 0x01, 'd',				/* path */
		0x00, 0x01,					/* code, at */
	};
	static const uint8_t key[] = {
		0x01,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x00, 0x01, 0x02, 0x01, 0x02,
		0x01, 's', 0x01, 'd',
		0x01, 'A', 0x01, 'B',				/* master, slave */
		0x00, 0x00, 0x00, 0x10,				/* nbits 16 */
		0x02,						/* n_pad */
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,	/* block id */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09,	/* offset */
		0x00, 0x00, 0x00, 0x08,				/* nbits */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x08,
		0xab, 0xcd,					/* cipher */
	};
	static struct qkd_relay_key_msg k;
	struct qkd_relay_back_msg b;
	struct qkd_wbuf w;
	const char *why;

	(void)state;
	qkd_wbuf_init(&w);
	assert_int_equal(qkd_relay_back_decode(&b, QKD_RELAY_MSG_COMPLETION, completion,
					       sizeof completion, &why), QKD_OK);
	assert_int_equal(b.h.key_id[15], 0x0f);
	assert_int_equal(b.h.attempt, 2);
	assert_string_equal(b.h.path[0], "s");
	assert_string_equal(b.h.path[1], "d");
	assert_int_equal(b.code, 0);
	assert_int_equal(b.at, 1);
	assert_int_equal(qkd_relay_back_encode(&b, QKD_RELAY_MSG_COMPLETION, &w), QKD_OK);
	assert_int_equal(w.len, sizeof completion);
	assert_memory_equal(w.p, completion, sizeof completion);

	assert_int_equal(qkd_relay_key_decode(&k, key, sizeof key, &why), QKD_OK);
	assert_int_equal(k.h.share, 1);
	assert_int_equal(k.h.shares, 2);
	assert_int_equal(k.h.hop, 1);
	assert_string_equal(k.master, "A");
	assert_string_equal(k.slave, "B");
	assert_int_equal(k.nbits, 16);
	assert_int_equal(k.n_pad, 2);
	assert_true(k.pad[0].id == 0x0102030405060708ULL);
	assert_true(k.pad[0].offset == 9 && k.pad[0].nbits == 8);
	assert_true(k.pad[1].id == 2 && k.pad[1].offset == 0 && k.pad[1].nbits == 8);
	assert_int_equal(k.cipher[0], 0xab);
	assert_int_equal(k.cipher[1], 0xcd);
	qkd_wbuf_reset(&w);
	assert_int_equal(qkd_relay_key_encode(&k, &w), QKD_OK);
	assert_int_equal(w.len, sizeof key);
	assert_memory_equal(w.p, key, sizeof key);
	qkd_wbuf_cleanup(&w);
}

static void test_key_roundtrip(void **state)
{
	static struct qkd_relay_key_msg m;

	(void)state;
	key_fixture(&m);
	key_roundtrip(&m);
	m.h.hop = 3;			/* the destination receives the last hop */
	m.h.share = 0;
	m.h.shares = 1;
	m.h.attempt = 255;
	key_roundtrip(&m);
	/* the smallest: two nodes, one byte, one segment */
	key_fixture(&m);
	m.h.n_path = 2;
	m.nbits = 8;
	m.n_pad = 1;
	m.pad[0].nbits = 8;
	key_roundtrip(&m);
}

/* Every bound at its maximum: 16 nodes of 63 characters, SAE ids of 64,
 * 16 pad segments, a 65,536-bit share. */
static void test_key_largest(void **state)
{
	static struct qkd_relay_key_msg m;
	struct qkd_wbuf w;

	(void)state;
	memset(&m, 0, sizeof m);
	m.h.shares = 2;
	m.h.share = 1;
	m.h.hop = QKD_RELAY_PATH_MAX - 1;
	m.h.n_path = QKD_RELAY_PATH_MAX;
	for (size_t i = 0; i < QKD_RELAY_PATH_MAX; i++) {
		memset(m.h.path[i], 'n', QKD_NODE_NAME_MAX - 1);
		m.h.path[i][0] = (char)('a' + i);
	}
	memset(m.master, 'm', QKD_LSA_SAE_ID_MAX);
	memset(m.slave, '~', QKD_LSA_SAE_ID_MAX);
	m.nbits = QKD_RELAY_KEY_BITS_MAX;
	m.n_pad = QKD_RELAY_PAD_SEGS_MAX;
	for (size_t i = 0; i < QKD_RELAY_PAD_SEGS_MAX; i++)
		m.pad[i] = (struct qkd_store_seg){ .id = i, .offset = i << 20,
						   .nbits = QKD_RELAY_KEY_BITS_MAX / QKD_RELAY_PAD_SEGS_MAX };
	for (size_t i = 0; i < sizeof m.cipher; i++)
		m.cipher[i] = (uint8_t)(i * 131 + 7);
	key_roundtrip(&m);
	qkd_wbuf_init(&w);
	assert_int_equal(qkd_relay_key_encode(&m, &w), QKD_OK);
	assert_int_equal(w.len, 22 + 16 * 64 + 2 * 65 + 4 + 1 + 16 * 20 + 8192);
	qkd_wbuf_cleanup(&w);
}

/* Every valid (hop, at) of each back type on paths of 2 to 5 nodes, and
 * every failure code. */
static void test_back_roundtrip(void **state)
{
	static const char *const ids[] = { "n0", "n1", "n2", "n3", "n4" };
	struct qkd_relay_back_msg m;
	unsigned count = 0;

	(void)state;
	for (size_t np = 2; np <= 5; np++)
		for (size_t hop = 0; hop + 2 <= np; hop++) {
			back_fixture(&m);
			set_path(&m.h, ids, np);
			m.h.hop = (uint8_t)hop;
			m.code = 0;
			m.at = (uint8_t)(np - 1);
			back_roundtrip(&m, QKD_RELAY_MSG_COMPLETION);
			count++;
			for (size_t at = hop + 1; at < np; at++)
				for (unsigned code = 1; code <= QKD_RELAY_FAIL_MAX; code++) {
					m.code = (uint8_t)code;
					m.at = (uint8_t)at;
					back_roundtrip(&m, QKD_RELAY_MSG_FAILURE);
					count++;
				}
		}
	/* completions: 1+2+3+4; failures: 6 * (1 + 3 + 6 + 10) */
	assert_int_equal(count, 10 + 6 * 20);
	/* withdrawals go forwards: every receiver after the source */
	for (size_t np = 2; np <= 5; np++)
		for (size_t hop = 1; hop < np; hop++) {
			back_fixture(&m);
			set_path(&m.h, ids, np);
			m.h.hop = (uint8_t)hop;
			m.code = 0;
			m.at = 0;
			back_roundtrip(&m, QKD_RELAY_MSG_WITHDRAW);
		}
}

/* Every truncation of each kind, and one byte too many. */
static void test_truncated_and_trailing(void **state)
{
	static struct qkd_relay_key_msg k;
	static uint8_t longer[QKD_RELAY_KEY_BITS_MAX / 8 + 2048];
	struct qkd_relay_back_msg b;
	struct qkd_wbuf w;

	(void)state;
	qkd_wbuf_init(&w);
	key_fixture(&k);
	assert_int_equal(qkd_relay_key_encode(&k, &w), QKD_OK);
	for (size_t n = 0; n < w.len; n++)
		key_refused(w.p, n, QKD_ERR_PROTO);
	memcpy(longer, w.p, w.len);
	longer[w.len] = 0;
	key_refused(longer, w.len + 1, QKD_ERR_PROTO);
	key_refused(NULL, 0, QKD_ERR_PROTO);

	back_fixture(&b);
	qkd_wbuf_reset(&w);
	assert_int_equal(qkd_relay_back_encode(&b, QKD_RELAY_MSG_FAILURE, &w), QKD_OK);
	for (size_t n = 0; n < w.len; n++)
		back_refused(QKD_RELAY_MSG_FAILURE, w.p, n, QKD_ERR_PROTO);
	memcpy(longer, w.p, w.len);
	longer[w.len] = 0;
	back_refused(QKD_RELAY_MSG_FAILURE, longer, w.len + 1, QKD_ERR_PROTO);
	qkd_wbuf_cleanup(&w);
}

/* Offsets in the key fixture's encoding. */
#define OFF_VERSION 0
#define OFF_SHARE 18
#define OFF_NPATH 21
#define OFF_PATH 22	/* "alice": length byte, then its characters */

static void test_head_refused(void **state)
{
	static struct qkd_relay_key_msg m;
	struct qkd_relay_back_msg b;
	struct qkd_wbuf w;
	const char *why;

	(void)state;
	qkd_wbuf_init(&w);
	key_fixture(&m);
	assert_int_equal(qkd_relay_key_encode(&m, &w), QKD_OK);
	/* byte edits: version, counts over their bound, id lengths, NUL */
	w.p[OFF_VERSION] = 2;
	key_refused(w.p, w.len, QKD_ERR_PROTO);
	w.p[OFF_VERSION] = 0;
	key_refused(w.p, w.len, QKD_ERR_PROTO);
	w.p[OFF_VERSION] = QKD_RELAY_MSG_VERSION;
	w.p[OFF_NPATH] = QKD_RELAY_PATH_MAX + 1;
	key_refused(w.p, w.len, QKD_ERR_RANGE);
	w.p[OFF_NPATH] = 255;
	key_refused(w.p, w.len, QKD_ERR_RANGE);
	w.p[OFF_NPATH] = 4;
	w.p[OFF_PATH] = 0;			/* an empty id */
	key_refused(w.p, w.len, QKD_ERR_RANGE);
	w.p[OFF_PATH] = QKD_NODE_NAME_MAX;	/* 64 characters: one too many */
	key_refused(w.p, w.len, QKD_ERR_RANGE);
	w.p[OFF_PATH] = 5;
	w.p[OFF_PATH + 3] = '\0';		/* "al\0ce" */
	key_refused(w.p, w.len, QKD_ERR_PROTO);
	w.p[OFF_PATH + 3] = 'i';
	w.p[OFF_SHARE] = 2;			/* share 2 of 2 */
	key_refused(w.p, w.len, QKD_ERR_INVAL);
	w.p[OFF_SHARE] = 1;
	{	/* every edit undone: accepted again */
		static struct qkd_relay_key_msg ok;

		assert_int_equal(qkd_relay_key_decode(&ok, w.p, w.len, &why), QKD_OK);
	}

	/* field refusals: the encoder refuses, the decoder refuses the bytes */
	key_fixture(&m); m.h.shares = 0; m.h.share = 0; key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); m.h.shares = 3; key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); m.h.share = 2; key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); m.h.shares = 1; key_bad(&m, QKD_ERR_INVAL);	/* share 1 of 1 */
	key_fixture(&m); m.h.n_path = 0; m.h.hop = 0; key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); m.h.n_path = 1; m.h.hop = 0; key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); m.h.n_path = 17; key_bad(&m, QKD_ERR_RANGE);
	key_fixture(&m); m.h.hop = 4; key_bad(&m, QKD_ERR_INVAL);	/* hop == n_path */
	key_fixture(&m); m.h.hop = 200; key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); snprintf(m.h.path[2], sizeof m.h.path[2], "-x"); key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); snprintf(m.h.path[2], sizeof m.h.path[2], ".x"); key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); snprintf(m.h.path[2], sizeof m.h.path[2], "a/b"); key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); snprintf(m.h.path[2], sizeof m.h.path[2], "a~b"); key_bad(&m, QKD_ERR_INVAL);
	/* loops: a node twice, adjacent or not, source or destination */
	key_fixture(&m); snprintf(m.h.path[3], sizeof m.h.path[3], "alice"); key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); snprintf(m.h.path[2], sizeof m.h.path[2], "relay-1"); key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); snprintf(m.h.path[1], sizeof m.h.path[1], "bob"); key_bad(&m, QKD_ERR_INVAL);

	/* the reasons senders see */
	key_fixture(&m);
	assert_int_equal(qkd_relay_head_check(&m.h, &why), QKD_OK);
	assert_null(why);
	snprintf(m.h.path[3], sizeof m.h.path[3], "relay-1");
	assert_int_equal(qkd_relay_head_check(&m.h, &why), QKD_ERR_INVAL);
	assert_string_equal(why, "a node twice on the path (a loop)");
	{
		const char *dwhy;
		static struct qkd_relay_key_msg out;

		raw_key(&w, &m);
		assert_int_equal(qkd_relay_key_decode(&out, w.p, w.len, &dwhy), QKD_ERR_INVAL);
		assert_string_equal(dwhy, "a node twice on the path (a loop)");
	}
	/* a back message shares the head checks */
	back_fixture(&b); snprintf(b.h.path[0], sizeof b.h.path[0], "bob");
	back_bad(&b, QKD_RELAY_MSG_FAILURE, QKD_ERR_INVAL);
	back_fixture(&b); b.h.n_path = 17; back_bad(&b, QKD_RELAY_MSG_FAILURE, QKD_ERR_RANGE);
	back_fixture(&b); b.h.shares = 0; back_bad(&b, QKD_RELAY_MSG_FAILURE, QKD_ERR_INVAL);
	back_fixture(&b); b.h.n_path = 1; b.h.hop = 0; b.at = 0;
	back_bad(&b, QKD_RELAY_MSG_FAILURE, QKD_ERR_INVAL);
	qkd_wbuf_cleanup(&w);
}

static void test_key_refused(void **state)
{
	static struct qkd_relay_key_msg m;
	struct qkd_wbuf w;
	size_t sae_at;

	(void)state;
	key_fixture(&m); m.h.hop = 0; key_bad(&m, QKD_ERR_INVAL);	/* to the source */
	key_fixture(&m); m.master[0] = '\0'; key_bad(&m, QKD_ERR_RANGE);	/* empty */
	key_fixture(&m); m.slave[0] = '\0'; key_bad(&m, QKD_ERR_RANGE);
	key_fixture(&m); snprintf(m.master, sizeof m.master, "a b"); key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); snprintf(m.slave, sizeof m.slave, "a/b"); key_bad(&m, QKD_ERR_INVAL);
	/* nbits: 0, not a multiple of 8, too big */
	key_fixture(&m); m.nbits = 0; m.n_pad = 1; m.pad[0].nbits = 0; key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); m.nbits = 63; m.pad[2].nbits = 31; key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); m.nbits = 60; m.pad[2].nbits = 28; key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); m.nbits = QKD_RELAY_KEY_BITS_MAX + 8; m.n_pad = 1;
	m.pad[0].nbits = m.nbits; key_bad(&m, QKD_ERR_RANGE);
	key_fixture(&m); m.nbits = UINT32_MAX - 7; m.n_pad = 1;
	m.pad[0].nbits = m.nbits; key_bad(&m, QKD_ERR_RANGE);
	/* pad count 0 and 17 */
	key_fixture(&m); m.n_pad = 0; key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); m.n_pad = QKD_RELAY_PAD_SEGS_MAX + 1; key_bad(&m, QKD_ERR_RANGE);
	/* pad sum: short, long, a zero-length segment, wrapping past 2^32 */
	key_fixture(&m); m.pad[2].nbits = 31; key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); m.pad[2].nbits = 33; key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); m.pad[1].nbits = 0; m.pad[2].nbits = 40; key_bad(&m, QKD_ERR_INVAL);
	key_fixture(&m); m.n_pad = 2; m.pad[0].nbits = UINT32_MAX; m.pad[1].nbits = 65;
	key_bad(&m, QKD_ERR_INVAL);	/* 2^32 + 64: sums to 64 modulo 2^32 */
	/* the struct's segment lengths are 64-bit: 2^64 - 1 + 65 wraps to 64 */
	key_fixture(&m); m.n_pad = 2; m.pad[0].nbits = UINT64_MAX; m.pad[1].nbits = 65;
	key_bad(&m, QKD_ERR_INVAL);
	/* an SAE id of 65 characters: its length byte over the bound */
	key_fixture(&m);
	qkd_wbuf_init(&w);
	raw_key(&w, &m);
	sae_at = OFF_PATH + 6 + 8 + 6 + 4;	/* after the four ids */
	assert_int_equal(w.p[sae_at], 7);	/* "sae~A.1" */
	w.p[sae_at] = QKD_LSA_SAE_ID_MAX + 1;
	key_refused(w.p, w.len, QKD_ERR_RANGE);
	w.p[sae_at] = 7;
	w.p[sae_at + 2] = '\0';
	key_refused(w.p, w.len, QKD_ERR_PROTO);
	qkd_wbuf_cleanup(&w);
	/* a refusal after the cipher was read leaves none of it behind */
	key_fixture(&m); m.pad[0].nbits = 23; key_bad(&m, QKD_ERR_INVAL);
}

static void test_back_refused(void **state)
{
	struct qkd_relay_back_msg m;
	struct qkd_wbuf w;
	static const uint8_t types[] = { 0, QKD_RELAY_MSG_LSA, QKD_RELAY_MSG_KEY, 6, 255 };

	(void)state;
	qkd_wbuf_init(&w);
	/* completion: code 0 from the destination only */
	back_fixture(&m); m.code = 0; m.at = 3;
	back_bad(&m, QKD_RELAY_MSG_FAILURE, QKD_ERR_INVAL);	/* code 0 is no failure */
	back_fixture(&m); m.code = 1; m.at = 3;
	back_bad(&m, QKD_RELAY_MSG_COMPLETION, QKD_ERR_INVAL);
	back_fixture(&m); m.code = 0; m.at = 2;
	back_bad(&m, QKD_RELAY_MSG_COMPLETION, QKD_ERR_INVAL);
	back_fixture(&m); m.code = 0; m.at = 4;
	back_bad(&m, QKD_RELAY_MSG_COMPLETION, QKD_ERR_INVAL);
	back_fixture(&m); m.code = 0; m.at = 3; m.h.hop = 3;	/* received by the destination */
	back_bad(&m, QKD_RELAY_MSG_COMPLETION, QKD_ERR_INVAL);
	{
		const char *why;

		assert_int_equal(qkd_relay_back_encode(&m, QKD_RELAY_MSG_COMPLETION, &w),
				 QKD_ERR_INVAL);
		raw_back(&w, &m);
		assert_int_equal(qkd_relay_back_decode(&m, QKD_RELAY_MSG_COMPLETION, w.p, w.len,
						       &why), QKD_ERR_INVAL);
		assert_string_equal(why, "a message going back received by the destination");
	}
	/* failure: a known code, at after the receiver and on the path */
	back_fixture(&m); m.code = QKD_RELAY_FAIL_MAX + 1;
	back_bad(&m, QKD_RELAY_MSG_FAILURE, QKD_ERR_INVAL);
	back_fixture(&m); m.code = 255; back_bad(&m, QKD_RELAY_MSG_FAILURE, QKD_ERR_INVAL);
	back_fixture(&m); m.at = 1; back_bad(&m, QKD_RELAY_MSG_FAILURE, QKD_ERR_INVAL);	/* == hop */
	back_fixture(&m); m.at = 0; back_bad(&m, QKD_RELAY_MSG_FAILURE, QKD_ERR_INVAL);
	back_fixture(&m); m.h.hop = 0; m.at = 0; back_bad(&m, QKD_RELAY_MSG_FAILURE, QKD_ERR_INVAL);
	back_fixture(&m); m.at = 4; back_bad(&m, QKD_RELAY_MSG_FAILURE, QKD_ERR_INVAL);	/* n_path */
	back_fixture(&m); m.h.hop = 3; m.at = 3; back_bad(&m, QKD_RELAY_MSG_FAILURE, QKD_ERR_INVAL);
	back_fixture(&m); m.h.hop = 2; m.at = 2; back_bad(&m, QKD_RELAY_MSG_FAILURE, QKD_ERR_INVAL);
	/* withdrawal: forwards, code and at 0, naming the key and not a share */
	back_fixture(&m); m.code = 0; m.at = 0;
	back_roundtrip(&m, QKD_RELAY_MSG_WITHDRAW);
	back_bad(&m, QKD_RELAY_MSG_COMPLETION, QKD_ERR_INVAL);
	back_bad(&m, QKD_RELAY_MSG_FAILURE, QKD_ERR_INVAL);
	m.h.hop = 0; back_bad(&m, QKD_RELAY_MSG_WITHDRAW, QKD_ERR_INVAL);	/* at its source */
	back_fixture(&m); m.at = 0;			/* a code */
	back_bad(&m, QKD_RELAY_MSG_WITHDRAW, QKD_ERR_INVAL);
	back_fixture(&m); m.code = 0;			/* a failing node */
	back_bad(&m, QKD_RELAY_MSG_WITHDRAW, QKD_ERR_INVAL);
	back_fixture(&m); m.code = 0; m.at = 0; m.h.attempt = 1;
	back_bad(&m, QKD_RELAY_MSG_WITHDRAW, QKD_ERR_INVAL);
	back_fixture(&m); m.code = 0; m.at = 0; m.h.shares = 2; m.h.share = 1;
	back_bad(&m, QKD_RELAY_MSG_WITHDRAW, QKD_ERR_INVAL);
	/* another message type: refused before any byte is read */
	back_fixture(&m);
	raw_back(&w, &m);
	for (size_t i = 0; i < sizeof types; i++) {
		back_bad(&m, types[i], QKD_ERR_INVAL);
		back_refused(types[i], w.p, w.len, QKD_ERR_INVAL);
	}
	back_refused(QKD_RELAY_MSG_KEY, NULL, 0, QKD_ERR_INVAL);
	qkd_wbuf_cleanup(&w);
}

static void test_fail_name(void **state)
{
	(void)state;
	assert_string_equal(qkd_relay_fail_name(QKD_RELAY_FAIL_LINK_DOWN), "link down");
	assert_string_equal(qkd_relay_fail_name(QKD_RELAY_FAIL_NO_KEY), "no key");
	assert_string_equal(qkd_relay_fail_name(QKD_RELAY_FAIL_PAD), "pad refused");
	assert_string_equal(qkd_relay_fail_name(QKD_RELAY_FAIL_UNKNOWN_SAE), "unknown SAE");
	assert_string_equal(qkd_relay_fail_name(QKD_RELAY_FAIL_STORE), "store failed");
	assert_string_equal(qkd_relay_fail_name(QKD_RELAY_FAIL_BUSY), "busy");
	assert_string_equal(qkd_relay_fail_name(0), "unknown");
	assert_string_equal(qkd_relay_fail_name(QKD_RELAY_FAIL_MAX + 1), "unknown");
	assert_string_equal(qkd_relay_fail_name(256 + QKD_RELAY_FAIL_NO_KEY), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_key_roundtrip),
		cmocka_unit_test(test_key_largest),
		cmocka_unit_test(test_back_roundtrip),
		cmocka_unit_test(test_truncated_and_trailing),
		cmocka_unit_test(test_head_refused),
		cmocka_unit_test(test_key_refused),
		cmocka_unit_test(test_back_refused),
		cmocka_unit_test(test_fail_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
