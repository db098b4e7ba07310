/* Unit tests of lib/node: the authentication state file (leases, tentative
 * refills, refusal to reuse the bootstrap key, a store and its state that
 * lost their common past), the handshake (gate, jumps) and the recovery of
 * pending blocks between two stores over a real socketpair. The daemon as a whole is
 * tested by tests/integration/node.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../lib/node/node_int.h"
#include "qkd/error.h"
#include "qkd/keystore.h"

struct fixture {
	char dir[64];
	struct qkd_link_config cfg;
};

static void fixture_init(struct fixture *f, const char *store)
{
	FILE *k;
	uint8_t key[4096];

	snprintf(f->dir, sizeof f->dir, "/tmp/qkd-test-node.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	memset(&f->cfg, 0, sizeof f->cfg);
	snprintf(f->cfg.name, sizeof f->cfg.name, "ab");
	f->cfg.role = QKD_ROLE_ALICE;
	snprintf(f->cfg.store, sizeof f->cfg.store, "%s/%s", f->dir, store);
	snprintf(f->cfg.auth_key, sizeof f->cfg.auth_key, "%s/ab.key", f->dir);
	for (size_t i = 0; i < sizeof key; i++)
		key[i] = (uint8_t)(i * 131 + 7);
	k = fopen(f->cfg.auth_key, "wb");
	assert_non_null(k);
	assert_int_equal(fwrite(key, 1, sizeof key, k), sizeof key);
	fclose(k);
}

static void fixture_cleanup(struct fixture *f)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
}

static void put_final(struct qkd_store *st, uint64_t id, bool final)
{
	uint8_t bits[16];

	memset(bits, (int)id, sizeof bits);
	assert_int_equal(qkd_store_put_pending(st, id, bits, 128, NULL), QKD_OK);
	if (final)
		assert_int_equal(qkd_store_finalize(st, id, NULL), QKD_OK);
}

/* STORE.auth loaded, or made from the bootstrap key (as qkd_link_open). */
static int auth_open(struct node_auth *a, const struct qkd_link_config *cfg,
		     struct qkd_store *st, const char **why)
{
	bool found = false;
	int rc = node_auth_load(a, cfg, &found, why);

	if (rc == QKD_OK && !found)
		rc = node_auth_create(a, cfg, st, why);
	return rc;
}

/* The lease: what is on disk always claims more indexes used than were,
 * but never more than the pads held. */
static void test_auth_lease(void **state)
{
	struct fixture f;
	struct qkd_store *st;
	struct node_auth a;
	const char *why = NULL;
	uint8_t tag[QKD_WC_TAG_LEN];
	uint64_t pads;

	(void)state;
	fixture_init(&f, "s.db");
	assert_int_equal(qkd_store_open(&st, f.cfg.store, &why), QKD_OK);
	assert_int_equal(auth_open(&a, &f.cfg, st, &why), QKD_OK);
	pads = qkd_wc_send_pads_left(a.wc);
	node_auth_ops.absorb(&a, true, (const uint8_t *)"msg", 3);
	assert_int_equal(node_auth_ops.tag(&a, 0, tag), QKD_OK);
	assert_true(a.lease_send == NODE_AUTH_LEASE);
	assert_int_equal(node_auth_ops.tag(&a, 1, tag), QKD_OK);
	node_auth_close(&a);
	/* A restart resumes at the lease, never below it. */
	assert_int_equal(auth_open(&a, &f.cfg, st, &why), QKD_OK);
	assert_true(qkd_wc_next_send_index(a.wc) == NODE_AUTH_LEASE);
	assert_true(qkd_wc_send_pads_left(a.wc) == pads - NODE_AUTH_LEASE);
	assert_int_equal(node_auth_ops.tag(&a, 2, tag), QKD_ERR_VERIFY);
	/* Near the end of the pool the lease stops at the last pad held. */
	assert_int_equal(node_auth_ops.tag(&a, (uint32_t)(NODE_AUTH_LEASE + pads - 1 -
					      NODE_AUTH_LEASE - 2), tag), QKD_OK);
	assert_true(a.lease_send == pads);
	node_auth_close(&a);
	assert_int_equal(auth_open(&a, &f.cfg, st, &why), QKD_OK);
	assert_true(qkd_wc_next_send_index(a.wc) == pads);
	assert_int_equal(node_auth_ops.tag(&a, (uint32_t)pads, tag), QKD_ERR_NOKEY);
	node_auth_close(&a);
	qkd_store_close(st);
	fixture_cleanup(&f);
}

/* A round's refill is applied only if its block became final. */
static void test_auth_tentative(void **state)
{
	struct fixture f;
	struct qkd_store *st;
	struct node_auth a;
	struct qkd_wc_stats w0, w1;
	const char *why = NULL;
	uint8_t bits[64];

	(void)state;
	fixture_init(&f, "s.db");
	memset(bits, 0xa5, sizeof bits);
	assert_int_equal(qkd_store_open(&st, f.cfg.store, &why), QKD_OK);
	assert_int_equal(auth_open(&a, &f.cfg, st, &why), QKD_OK);
	qkd_wc_get_stats(a.wc, &w0);
	assert_int_equal(node_auth_set_tentative(&a, 5, bits, sizeof bits), QKD_OK);
	assert_int_equal(node_auth_resolve(&a, st), QKD_OK);	/* no block 5: dropped */
	assert_true(a.tentative_round == 0);
	put_final(st, 6, true);
	assert_int_equal(node_auth_set_tentative(&a, 6, bits, sizeof bits), QKD_OK);
	node_auth_close(&a);
	/* Crash after the commit, before the refill: the restart applies it. */
	assert_int_equal(auth_open(&a, &f.cfg, st, &why), QKD_OK);
	assert_true(a.tentative_round == 6);
	assert_int_equal(node_auth_check_store(&a, st, &why), QKD_OK);
	assert_int_equal(node_auth_resolve(&a, st), QKD_OK);
	assert_true(a.replenished_through == 6 && a.tentative_round == 0);
	qkd_wc_get_stats(a.wc, &w1);
	assert_true(w1.key_bits_in == w0.key_bits_in + 8 * sizeof bits);
	assert_int_equal(node_auth_apply(&a, 6), QKD_OK);	/* idempotent */
	qkd_wc_get_stats(a.wc, &w0);
	assert_true(w0.key_bits_in == w1.key_bits_in);
	node_auth_close(&a);
	qkd_store_close(st);
	fixture_cleanup(&f);
}

/* Blocks but no state file: the bootstrap key must not be used again. A
 * corrupt file, or one of format 1, is refused with a reason. */
static void test_auth_refuses_reuse(void **state)
{
	struct fixture f;
	struct qkd_store *st;
	struct node_auth a;
	const char *why = NULL;
	char path[sizeof a.path];
	FILE *c;

	(void)state;
	fixture_init(&f, "s.db");
	assert_int_equal(qkd_store_open(&st, f.cfg.store, &why), QKD_OK);
	assert_int_equal(auth_open(&a, &f.cfg, st, &why), QKD_OK);
	node_auth_close(&a);
	put_final(st, 1, true);
	snprintf(path, sizeof path, "%s.auth", f.cfg.store);
	assert_int_equal(unlink(path), 0);
	why = NULL;
	assert_int_not_equal(auth_open(&a, &f.cfg, st, &why), QKD_OK);
	assert_non_null(strstr(why, "bootstrap"));
	node_auth_close(&a);
	c = fopen(path, "wb");
	assert_non_null(c);
	fputs("QKDAUTH2 garbage, garbage, garbage, garbage, garbage", c);
	fclose(c);
	assert_int_not_equal(auth_open(&a, &f.cfg, st, &why), QKD_OK);
	assert_non_null(strstr(why, "corrupt"));
	node_auth_close(&a);
	c = fopen(path, "wb");
	assert_non_null(c);
	fputs("QKDAUTH1 an older format, an older format, an older format", c);
	fclose(c);
	assert_int_not_equal(auth_open(&a, &f.cfg, st, &why), QKD_OK);
	assert_non_null(strstr(why, "Start the link over"));
	node_auth_close(&a);
	qkd_store_close(st);
	fixture_cleanup(&f);
}

/* A store and its authentication state share their past. */
static void test_auth_store_past(void **state)
{
	struct fixture f;
	struct qkd_store *st;
	struct node_auth a;
	const char *why = NULL;
	uint8_t bits[8] = { 1 };

	(void)state;
	fixture_init(&f, "s.db");
	assert_int_equal(qkd_store_open(&st, f.cfg.store, &why), QKD_OK);
	assert_int_equal(auth_open(&a, &f.cfg, st, &why), QKD_OK);
	assert_int_equal(node_auth_check_store(&a, st, &why), QKD_OK);
	put_final(st, 1, true);
	put_final(st, 2, true);
	assert_int_equal(node_auth_set_tentative(&a, 2, bits, sizeof bits), QKD_OK);
	assert_int_equal(node_auth_apply(&a, 2), QKD_OK);
	assert_int_equal(node_auth_check_store(&a, st, &why), QKD_OK);
	/* A committed block the state does not know: the state is older. */
	put_final(st, 3, true);
	assert_int_not_equal(node_auth_check_store(&a, st, &why), QKD_OK);
	assert_non_null(strstr(why, "older than the key store"));
	/* A pending one is not committed: fine. */
	assert_int_equal(node_auth_set_tentative(&a, 3, bits, sizeof bits), QKD_OK);
	assert_int_equal(node_auth_apply(&a, 3), QKD_OK);
	put_final(st, 4, false);
	assert_int_equal(node_auth_check_store(&a, st, &why), QKD_OK);
	qkd_store_close(st);
	/* The store replaced by an empty one: its past is gone. */
	assert_int_equal(unlink(f.cfg.store), 0);
	assert_int_not_equal(node_store_open(&st, f.cfg.store, true, &why), QKD_OK);
	assert_non_null(strstr(why, "missing or empty"));
	assert_int_equal(close(open(f.cfg.store, O_WRONLY | O_CREAT, 0600)), 0);
	assert_int_not_equal(node_store_open(&st, f.cfg.store, true, &why), QKD_OK);
	assert_int_equal(qkd_store_open(&st, f.cfg.store, &why), QKD_OK);
	put_final(st, 1, true);
	assert_int_not_equal(node_auth_check_store(&a, st, &why), QKD_OK);
	assert_non_null(strstr(why, "lacks blocks"));
	node_auth_close(&a);
	qkd_store_close(st);
	fixture_cleanup(&f);
}

/* A file whose checksum is right but whose authenticator image is not is
 * refused, and the refusal holds nothing: no authenticator, no tentative
 * bits (node_auth_decode used to keep the tentative copy it had made). A
 * good image decodes and encodes back to the same bytes. */
static void test_auth_decode(void **state)
{
	struct fixture f;
	struct qkd_store *st;
	struct node_auth a, b;
	struct qkd_wbuf w, w2;
	const char *why = NULL;
	uint8_t bits[24];
	size_t img_len_at;

	(void)state;
	fixture_init(&f, "s.db");
	memset(bits, 0x3c, sizeof bits);
	assert_int_equal(qkd_store_open(&st, f.cfg.store, &why), QKD_OK);
	assert_int_equal(auth_open(&a, &f.cfg, st, &why), QKD_OK);
	assert_int_equal(node_auth_set_tentative(&a, 4, bits, sizeof bits), QKD_OK);
	qkd_wbuf_init_secret(&w);
	qkd_wbuf_init_secret(&w2);
	node_auth_encode(&a, &w);
	assert_int_equal(w.err, 0);
	memset(&b, 0, sizeof b);
	assert_int_equal(node_auth_decode(&b, w.p, w.len, &why), QKD_OK);
	assert_null(why);
	assert_true(b.tentative_round == 4 && b.tentative_len == sizeof bits);
	assert_memory_equal(b.tentative, bits, sizeof bits);
	node_auth_encode(&b, &w2);
	assert_int_equal(w2.len, w.len);
	assert_memory_equal(w2.p, w.p, w.len);
	node_auth_close(&b);
	/* Spoil the image's version byte (magic, 3 u64, gate, varint 24, the
	 * 24 bits, then the image's varint length: 2 bytes here), then put
	 * the checksum right again. */
	img_len_at = 8 + 3 * 8 + NODE_GATE_KEY_LEN + 1 + sizeof bits;
	assert_true(w.p[img_len_at] & 0x80);
	w.p[img_len_at + 2] ^= 0xff;
	crypto_generichash(w.p + w.len - 32, 32, w.p, w.len - 32, NULL, 0);
	memset(&b, 0, sizeof b);
	assert_int_equal(node_auth_decode(&b, w.p, w.len, &why), QKD_ERR_PROTO);
	assert_non_null(strstr(why, "corrupt"));
	assert_null(b.wc);
	assert_null(b.tentative);
	assert_true(b.tentative_len == 0);
	node_auth_close(&b);
	qkd_wbuf_cleanup(&w);
	qkd_wbuf_cleanup(&w2);
	node_auth_close(&a);
	qkd_store_close(st);
	fixture_cleanup(&f);
}

/* The SYNC rules on the index (node_sync_check), at each edge: behind,
 * a jump of exactly 128 and of 129, the last pad held and one beyond. */
static void test_sync_rules(void **state)
{
	struct node_sync_fields mine = { .version = NODE_SYNC_VERSION, .role = QKD_ROLE_ALICE,
					 .name = "ab", .node = "node-a", .reserve = 100,
					 .pulses = 200 };
	struct node_sync_fields peer = mine;
	struct qkd_wbuf w;
	struct qkd_rbuf r;
	struct node_sync_fields back;

	(void)state;
	peer.role = QKD_ROLE_BOB;
	peer.index = 1000;
	/* The node ids: not this node's own, and the link's peer if it names one. */
	assert_non_null(strstr(node_sync_check_node(&mine, &peer, ""), "own id"));
	snprintf(peer.node, sizeof peer.node, "node-b");
	assert_null(node_sync_check_node(&mine, &peer, ""));
	assert_null(node_sync_check_node(&mine, &peer, "node-b"));
	assert_non_null(strstr(node_sync_check_node(&mine, &peer, "node-c"), "not the node"));
	peer.node[0] = '\0';
	assert_non_null(strstr(node_sync_check_node(&mine, &peer, ""), "no node id"));
	snprintf(peer.node, sizeof peer.node, "node-b");
	assert_null(node_sync_check(&mine, &peer, 1000, 1));
	assert_non_null(strstr(node_sync_check(&mine, &peer, 1001, 500), "behind"));
	assert_null(node_sync_check(&mine, &peer, 1000 - 128, 500));
	assert_non_null(strstr(node_sync_check(&mine, &peer, 1000 - 129, 500), "skip more"));
	assert_null(node_sync_check(&mine, &peer, 990, 11));
	assert_non_null(strstr(node_sync_check(&mine, &peer, 990, 10), "beyond the pads"));
	assert_non_null(strstr(node_sync_check(&mine, &peer, 1000, 0), "beyond the pads"));
	/* An index far behind a next past 2^32 stays behind (no wrap). */
	assert_non_null(strstr(node_sync_check(&mine, &peer, (uint64_t)1 << 32, 500), "behind"));
	peer.role = QKD_ROLE_ALICE;
	assert_non_null(strstr(node_sync_check(&mine, &peer, 1000, 500), "same role"));
	peer.role = 7;
	assert_non_null(strstr(node_sync_check(&mine, &peer, 1000, 500), "neither"));
	/* The fields go over the wire and back unchanged. */
	peer.role = QKD_ROLE_BOB;
	qkd_wbuf_init(&w);
	node_sync_put(&w, &peer);
	assert_int_equal(w.len, NODE_SYNC_FIELDS_LEN);
	qkd_rbuf_init(&r, w.p, w.len);
	assert_int_equal(node_sync_get(&r, &back), QKD_OK);
	assert_memory_equal(&back.name, &peer.name, sizeof peer.name);
	assert_string_equal(back.node, "node-b");
	assert_true(back.index == 1000 && back.reserve == 100 && back.pulses == 200);
	qkd_rbuf_init(&r, w.p, w.len - 1);
	assert_int_equal(node_sync_get(&r, &back), QKD_ERR_PROTO);
	qkd_wbuf_cleanup(&w);
}

/* ---- the handshake over a socketpair ---- */

struct hs_side {
	int fd;
	struct node_auth *a;
	struct qkd_link_config cfg;
	struct qkd_channel ch;
	uint8_t session[QKD_CHANNEL_SESSION_LEN];
	bool stranger;
	const char *why;
	int rc;
};

static void *hs_run(void *arg)
{
	struct hs_side *s = arg;

	s->why = NULL;
	s->rc = node_handshake(s->fd, s->a, &s->cfg, &s->ch, s->session, &s->stranger, &s->why,
			       NULL);
	if (s->rc != QKD_OK)
		shutdown(s->fd, SHUT_RDWR);	/* as the daemon hangs up */
	return NULL;
}

/* Both sides at once; Alice in a thread. */
static void handshake(struct hs_side *al, struct hs_side *bo)
{
	int sv[2];
	pthread_t th;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	al->fd = sv[0];
	bo->fd = sv[1];
	assert_int_equal(pthread_create(&th, NULL, hs_run, al), 0);
	hs_run(bo);
	pthread_join(th, NULL);
	if (al->rc == QKD_OK)
		qkd_channel_cleanup(&al->ch);
	if (bo->rc == QKD_OK)
		qkd_channel_cleanup(&bo->ch);
	close(sv[0]);
	close(sv[1]);
}

static void test_handshake(void **state)
{
	struct fixture fa, fb;
	struct node_auth aa, ab;
	struct qkd_store *sa, *sb;
	struct hs_side al, bo;
	const char *why = NULL;
	uint8_t tag[QKD_WC_TAG_LEN];
	uint64_t held;

	(void)state;
	fixture_init(&fa, "a.db");
	fixture_init(&fb, "b.db");
	fb.cfg.role = QKD_ROLE_BOB;
	assert_int_equal(qkd_store_open(&sa, fa.cfg.store, &why), QKD_OK);
	assert_int_equal(qkd_store_open(&sb, fb.cfg.store, &why), QKD_OK);
	assert_int_equal(auth_open(&aa, &fa.cfg, sa, &why), QKD_OK);
	assert_int_equal(auth_open(&ab, &fb.cfg, sb, &why), QKD_OK);
	memset(&al, 0, sizeof al);
	memset(&bo, 0, sizeof bo);
	al.a = &aa;
	al.cfg = fa.cfg;
	bo.a = &ab;
	bo.cfg = fb.cfg;
	snprintf(al.cfg.node_id, sizeof al.cfg.node_id, "node-a");
	snprintf(bo.cfg.node_id, sizeof bo.cfg.node_id, "node-b");
	/* Same key: both agree on the session and where the AUTH frames start. */
	handshake(&al, &bo);
	assert_int_equal(al.rc, QKD_OK);
	assert_int_equal(bo.rc, QKD_OK);
	assert_memory_equal(al.session, bo.session, sizeof al.session);
	/* Bob's lease moved his index past what Alice expects: she follows. */
	bo.a->lease_send = 0;
	assert_int_equal(node_auth_ops.tag(bo.a, 5, tag), QKD_OK);
	handshake(&al, &bo);
	assert_int_equal(al.rc, QKD_OK);
	assert_true(al.ch.auth_recv == 6 && bo.ch.auth_send == 6);
	/* A jump beyond what a crash explains: refused before any pad moves. */
	held = qkd_wc_recv_pads_left(aa.wc);
	assert_int_equal(node_auth_ops.tag(bo.a, 6 + NODE_MAX_AUTH_JUMP + 1, tag), QKD_OK);
	handshake(&al, &bo);
	assert_int_not_equal(al.rc, QKD_OK);
	assert_non_null(strstr(al.why, "skip more"));
	assert_false(al.stranger);
	assert_true(qkd_wc_recv_pads_left(aa.wc) == held);
	/* A forged tag at an index ahead makes Alice skip nothing. */
	{
		uint64_t next = qkd_wc_next_recv_index(aa.wc);

		held = qkd_wc_recv_pads_left(aa.wc);
		assert_int_equal(qkd_wc_check(aa.wc, (uint32_t)next + 40, tag), QKD_ERR_VERIFY);
		assert_true(qkd_wc_next_recv_index(aa.wc) == next);
		assert_true(qkd_wc_recv_pads_left(aa.wc) == held - 1);
	}
	/* Alice ahead of Bob (his state restored from an older copy): refused. */
	{
		struct node_auth old;
		bool found = false;
		uint32_t ahead;

		assert_int_equal(node_auth_load(&old, &fb.cfg, &found, &why), QKD_OK);
		ahead = (uint32_t)qkd_wc_next_send_index(old.wc) + 2;
		qkd_wc_reset_batches(ab.wc);
		qkd_wc_reset_batches(aa.wc);
		assert_int_equal(node_auth_ops.tag(&ab, ahead, tag), QKD_OK);
		assert_int_equal(qkd_wc_check(aa.wc, ahead, tag), QKD_OK);
		bo.a = &old;
		handshake(&al, &bo);
		assert_int_not_equal(al.rc, QKD_OK);
		assert_non_null(strstr(al.why, "behind"));
		bo.a = &ab;
		node_auth_close(&old);
	}
	/* Another gate key: Bob sees a stranger, Alice learns nothing of him. */
	ab.gate[0] ^= 1;
	held = qkd_wc_recv_pads_left(aa.wc);
	handshake(&al, &bo);
	assert_true(bo.rc == QKD_ERR_PROTO && bo.stranger);
	assert_non_null(strstr(bo.why, "gate"));
	assert_int_not_equal(al.rc, QKD_OK);
	assert_true(qkd_wc_recv_pads_left(aa.wc) == held);
	/* Another link name: the gate passes, the settings do not. */
	ab.gate[0] ^= 1;
	snprintf(bo.cfg.name, sizeof bo.cfg.name, "ac");
	handshake(&al, &bo);
	assert_int_not_equal(bo.rc, QKD_OK);
	/* A role that is neither: Alice refuses it past the gate. */
	snprintf(bo.cfg.name, sizeof bo.cfg.name, "ab");
	bo.cfg.role = (enum qkd_link_role)5;
	handshake(&al, &bo);
	assert_int_not_equal(al.rc, QKD_OK);
	assert_non_null(strstr(al.why, "neither alice nor bob"));
	assert_false(al.stranger);
	/* Node ids: Alice's link expects node-c, Bob is node-b: refused past
	 * the gate, no pad moved, and the id she saw is reported. */
	bo.cfg.role = QKD_ROLE_BOB;
	snprintf(al.cfg.peer, sizeof al.cfg.peer, "node-c");
	held = qkd_wc_recv_pads_left(aa.wc);
	{
		char seen[QKD_NODE_NAME_MAX];
		int sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		al.fd = sv[0];
		bo.fd = sv[1];
		{
			pthread_t th;

			assert_int_equal(pthread_create(&th, NULL, hs_run, &bo), 0);
			al.rc = node_handshake(al.fd, al.a, &al.cfg, &al.ch, al.session,
					       &al.stranger, &al.why, seen);
			if (al.rc != QKD_OK)
				shutdown(al.fd, SHUT_RDWR);
			pthread_join(th, NULL);
		}
		close(sv[0]);
		close(sv[1]);
		assert_int_not_equal(al.rc, QKD_OK);
		assert_false(al.stranger);
		assert_non_null(strstr(al.why, "not the node"));
		assert_string_equal(seen, "node-b");
	}
	assert_true(qkd_wc_recv_pads_left(aa.wc) == held);
	/* Two nodes with one id. */
	al.cfg.peer[0] = '\0';
	snprintf(bo.cfg.node_id, sizeof bo.cfg.node_id, "node-a");
	handshake(&al, &bo);
	assert_int_not_equal(al.rc, QKD_OK);
	assert_non_null(strstr(al.why, "own id"));
	/* The peer it names: accepted. */
	snprintf(bo.cfg.node_id, sizeof bo.cfg.node_id, "node-b");
	snprintf(al.cfg.peer, sizeof al.cfg.peer, "node-b");
	snprintf(bo.cfg.peer, sizeof bo.cfg.peer, "node-a");
	handshake(&al, &bo);
	assert_int_equal(al.rc, QKD_OK);
	assert_int_equal(bo.rc, QKD_OK);
	node_auth_close(&aa);
	node_auth_close(&ab);
	qkd_store_close(sa);
	qkd_store_close(sb);
	fixture_cleanup(&fa);
	fixture_cleanup(&fb);
}

struct alice_side {
	int fd;
	struct qkd_store *st;
	int rc;
};

static void *alice_recover(void *arg)
{
	struct alice_side *s = arg;
	struct qkd_channel ch;
	const char *why = NULL;

	qkd_channel_init(&ch, s->fd, &qkd_auth_none, NULL);
	s->rc = node_recover_alice(&ch, s->st, &why);
	qkd_channel_cleanup(&ch);
	return NULL;
}

static enum qkd_store_state state_of(struct qkd_store *st, uint64_t id, bool *found)
{
	struct qkd_store_block b;

	assert_int_equal(qkd_store_lookup(st, id, &b, found, NULL), QKD_OK);
	return b.state;
}

/* The rules of docs/node.md: Alice's FINAL is the commit point. */
static void test_recover(void **state)
{
	struct fixture fa, fb;
	struct qkd_store *sa, *sb;
	struct alice_side as;
	struct qkd_channel ch;
	const char *why = NULL;
	uint64_t next = 0;
	pthread_t th;
	int sv[2];
	bool found;

	(void)state;
	fixture_init(&fa, "a.db");
	fixture_init(&fb, "b.db");
	assert_int_equal(qkd_store_open(&sa, fa.cfg.store, &why), QKD_OK);
	assert_int_equal(qkd_store_open(&sb, fb.cfg.store, &why), QKD_OK);
	put_final(sb, 1, false);
	put_final(sb, 2, false);
	put_final(sb, 3, false);
	put_final(sa, 1, true);		/* committed before a crash */
	put_final(sa, 2, false);	/* Alice wrote, but did not commit */
	put_final(sa, 4, false);	/* never named by Bob */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	as.fd = sv[0];
	as.st = sa;
	assert_int_equal(pthread_create(&th, NULL, alice_recover, &as), 0);
	qkd_channel_init(&ch, sv[1], &qkd_auth_none, NULL);
	assert_int_equal(node_recover_bob(&ch, sb, &next, &why), QKD_OK);
	pthread_join(th, NULL);
	assert_int_equal(as.rc, QKD_OK);
	assert_true(next == 5);
	assert_int_equal(state_of(sb, 1, &found), QKD_STORE_FINAL);
	assert_true(found);
	state_of(sb, 2, &found);
	assert_false(found);
	state_of(sb, 3, &found);
	assert_false(found);
	assert_int_equal(state_of(sa, 1, &found), QKD_STORE_FINAL);
	state_of(sa, 2, &found);
	assert_false(found);
	state_of(sa, 4, &found);
	assert_false(found);
	qkd_channel_cleanup(&ch);
	close(sv[0]);
	close(sv[1]);
	qkd_store_close(sa);
	qkd_store_close(sb);
	fixture_cleanup(&fa);
	fixture_cleanup(&fb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth_lease),
		cmocka_unit_test(test_auth_tentative),
		cmocka_unit_test(test_auth_refuses_reuse),
		cmocka_unit_test(test_auth_store_past),
		cmocka_unit_test(test_auth_decode),
		cmocka_unit_test(test_sync_rules),
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_recover),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
