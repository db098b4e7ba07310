/* Unit tests of lib/node: the authentication state file (leases, tentative
 * refills, refusal to reuse the bootstrap key) and the recovery of pending
 * blocks between two stores over a real socketpair. The daemon as a whole is
 * tested by tests/integration/node.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
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

/* The lease: what is on disk always claims more seqs used than were. */
static void test_auth_lease(void **state)
{
	struct fixture f;
	struct qkd_store *st;
	struct node_auth a;
	const char *why = NULL;
	const uint8_t m[4] = "msg";
	uint8_t tag[QKD_WC_TAG_LEN];

	(void)state;
	fixture_init(&f, "s.db");
	assert_int_equal(qkd_store_open(&st, f.cfg.store, &why), QKD_OK);
	assert_int_equal(node_auth_open(&a, &f.cfg, st, &why), QKD_OK);
	assert_int_equal(node_auth_ops.tag(&a, 0, m, 3, tag), QKD_OK);
	assert_true(a.lease_send == NODE_AUTH_LEASE);
	assert_int_equal(node_auth_ops.tag(&a, 1, m, 3, tag), QKD_OK);
	node_auth_close(&a);
	/* A restart resumes at the lease, never below it. */
	assert_int_equal(node_auth_open(&a, &f.cfg, st, &why), QKD_OK);
	assert_true(qkd_wc_next_send_seq(a.wc) == NODE_AUTH_LEASE);
	assert_int_equal(node_auth_ops.tag(&a, 2, m, 3, tag), QKD_ERR_VERIFY);
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
	assert_int_equal(node_auth_open(&a, &f.cfg, st, &why), QKD_OK);
	qkd_wc_get_stats(a.wc, &w0);
	assert_int_equal(node_auth_set_tentative(&a, 5, bits, sizeof bits), QKD_OK);
	assert_int_equal(node_auth_resolve(&a, st), QKD_OK);	/* no block 5: dropped */
	assert_true(a.tentative_round == 0);
	put_final(st, 6, true);
	assert_int_equal(node_auth_set_tentative(&a, 6, bits, sizeof bits), QKD_OK);
	node_auth_close(&a);
	/* Crash after the commit, before the refill: the restart applies it. */
	assert_int_equal(node_auth_open(&a, &f.cfg, st, &why), QKD_OK);
	assert_true(a.tentative_round == 6);
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

/* Blocks but no state file: the bootstrap key must not be used again. */
static void test_auth_refuses_reuse(void **state)
{
	struct fixture f;
	struct qkd_store *st;
	struct node_auth a;
	const char *why = NULL;
	char path[sizeof a.path];

	(void)state;
	fixture_init(&f, "s.db");
	assert_int_equal(qkd_store_open(&st, f.cfg.store, &why), QKD_OK);
	assert_int_equal(node_auth_open(&a, &f.cfg, st, &why), QKD_OK);
	node_auth_close(&a);
	put_final(st, 1, true);
	snprintf(path, sizeof path, "%s.auth", f.cfg.store);
	assert_int_equal(unlink(path), 0);
	why = NULL;
	assert_int_not_equal(node_auth_open(&a, &f.cfg, st, &why), QKD_OK);
	assert_non_null(strstr(why, "bootstrap"));
	/* A corrupted state file is refused too. */
	put_final(st, 2, false);
	{
		FILE *c = fopen(path, "wb");

		assert_non_null(c);
		fputs("QKDAUTH1 garbage", c);
		fclose(c);
	}
	assert_int_not_equal(node_auth_open(&a, &f.cfg, st, &why), QKD_OK);
	qkd_store_close(st);
	fixture_cleanup(&f);
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
		cmocka_unit_test(test_recover),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
