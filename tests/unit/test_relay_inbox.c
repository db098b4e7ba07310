/* test_relay_inbox.c - the destination's relayed keys (qkd/relay_inbox.h):
 * a key put is taken once by its slave for its master and then only a
 * tombstone is left, across a reopen; a second put of the same key_ID is
 * accepted only with the same pair, length and bits; take is all or none;
 * keys expire unfetched after the TTL; counts follow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/relay_inbox.h"

static char dir[64], path[96];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/qkd-inbox.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/relay.db", dir);
	return 0;
}

static int teardown(void **state)
{
	char p[128];
	static const char *const sfx[] = { "", "-wal", "-shm" };

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", path, sfx[i]);
		unlink(p);
	}
	return rmdir(dir);
}

static const uint8_t id1[16] = "key-id-number-01", id2[16] = "key-id-number-02";
static const uint8_t key1[32] = "the first relayed key, 32 bytes", key2[32] = "another relayed key of 32 bytes";

static void test_put_take_once(void **state)
{
	struct qkd_relay_inbox *ib = NULL;
	struct qkd_relay_inbox_counts c;
	uint8_t buf[2][64], *outs[2] = { buf[0], buf[1] };
	const uint8_t ids[2][16] = { "key-id-number-01", "key-id-number-02" };
	size_t lens[2], bad;
	const char *why;

	(void)state;
	assert_int_equal(qkd_relay_inbox_open(&ib, path, &why), QKD_OK);
	assert_int_equal(qkd_relay_inbox_put(ib, id1, "SAE_A", "SAE_D", "A", key1, 256, 100, &why),
			 QKD_OK);
	assert_int_equal(qkd_relay_inbox_put(ib, id2, "SAE_A", "SAE_D", "A", key2, 256, 100, &why),
			 QKD_OK);
	/* The same key again (a retry): fine; other bits or another pair: not. */
	assert_int_equal(qkd_relay_inbox_put(ib, id1, "SAE_A", "SAE_D", "A", key1, 256, 101, &why),
			 QKD_OK);
	assert_int_equal(qkd_relay_inbox_put(ib, id1, "SAE_A", "SAE_D", "A", key2, 256, 101, &why),
			 QKD_ERR_VERIFY);
	assert_int_equal(qkd_relay_inbox_put(ib, id1, "SAE_B", "SAE_D", "A", key1, 256, 101, &why),
			 QKD_ERR_VERIFY);
	qkd_relay_inbox_close(ib);
	assert_int_equal(qkd_relay_inbox_open(&ib, path, &why), QKD_OK);	/* survives */
	/* Another pair's slave, all or none: nothing taken. */
	assert_int_equal(qkd_relay_inbox_take(ib, "SAE_A", "SAE_X", ids, 2, outs, 64, lens, &bad,
					      &why), QKD_ERR_VERIFY);
	assert_int_equal(bad, 0);
	assert_int_equal(qkd_relay_inbox_take(ib, "SAE_A", "SAE_D", ids, 2, outs, 16, lens, &bad,
					      &why), QKD_ERR_RANGE);
	assert_int_equal(qkd_relay_inbox_take(ib, "SAE_A", "SAE_D", ids, 2, outs, 64, lens, &bad,
					      &why), QKD_OK);
	assert_int_equal(lens[0], 32);
	assert_memory_equal(buf[0], key1, 32);
	assert_memory_equal(buf[1], key2, 32);
	assert_int_equal(qkd_relay_inbox_take(ib, "SAE_A", "SAE_D", ids, 1, outs, 64, lens, &bad,
					      &why), QKD_ERR_INVAL);
	assert_non_null(strstr(why, "already delivered"));
	/* A delivered key_ID put again is a late retry: acknowledged, not served again. */
	assert_int_equal(qkd_relay_inbox_put(ib, id1, "SAE_A", "SAE_D", "A", key1, 256, 102, &why),
			 QKD_OK);
	assert_int_equal(qkd_relay_inbox_take(ib, "SAE_A", "SAE_D", ids, 1, outs, 64, lens, &bad,
					      &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_relay_inbox_counts(ib, &c, &why), QKD_OK);
	assert_int_equal(c.ready, 0);
	assert_int_equal(c.delivered, 2);
	qkd_relay_inbox_close(ib);
}

static void test_expire(void **state)
{
	struct qkd_relay_inbox *ib = NULL;
	struct qkd_relay_inbox_counts c;
	uint8_t buf[64], *outs[1] = { buf };
	size_t lens[1], bad, n = 9;
	const char *why;

	(void)state;
	assert_int_equal(qkd_relay_inbox_open(&ib, path, &why), QKD_OK);
	assert_int_equal(qkd_relay_inbox_put(ib, id1, "SAE_A", "SAE_D", "A", key1, 256, 1000, &why),
			 QKD_OK);
	assert_int_equal(qkd_relay_inbox_put(ib, id2, "SAE_A", "SAE_D", "A", key2, 256, 1500, &why),
			 QKD_OK);
	assert_int_equal(qkd_relay_inbox_expire(ib, 2000, 0, &n, &why), QKD_OK);
	assert_int_equal(n, 0);	/* ttl 0: never */
	assert_int_equal(qkd_relay_inbox_expire(ib, 2000, 600, &n, &why), QKD_OK);
	assert_int_equal(n, 1);
	assert_int_equal(qkd_relay_inbox_take(ib, "SAE_A", "SAE_D", &id1, 1, outs, 64, lens, &bad,
					      &why), QKD_ERR_INVAL);
	assert_non_null(strstr(why, "expired"));
	assert_int_equal(qkd_relay_inbox_take(ib, "SAE_A", "SAE_D", &id2, 1, outs, 64, lens, &bad,
					      &why), QKD_OK);
	assert_int_equal(qkd_relay_inbox_counts(ib, &c, &why), QKD_OK);
	assert_int_equal(c.expired, 1);
	assert_int_equal(c.delivered, 1);
	/* A retry of an expired key is refused: it would never be served. */
	assert_int_equal(qkd_relay_inbox_put(ib, id1, "SAE_A", "SAE_D", "A", key1, 256, 2001, &why),
			 QKD_ERR_INVAL);
	qkd_relay_inbox_close(ib);
}

static void test_withdraw(void **state)
{
	static const uint8_t id3[16] = "key-id-number-03";
	struct qkd_relay_inbox *ib = NULL;
	struct qkd_relay_inbox_counts c;
	uint8_t buf[64], *outs[1] = { buf };
	size_t lens[1], bad;
	bool found = true;
	const char *why;

	(void)state;
	assert_int_equal(qkd_relay_inbox_open(&ib, path, &why), QKD_OK);
	assert_int_equal(qkd_relay_inbox_put(ib, id1, "SAE_A", "SAE_D", "A", key1, 256, 10, &why),
			 QKD_OK);
	assert_int_equal(qkd_relay_inbox_put(ib, id2, "SAE_A", "SAE_D", "A", key2, 256, 10, &why),
			 QKD_OK);
	/* Only the node that relayed it may withdraw it. */
	assert_int_equal(qkd_relay_inbox_withdraw(ib, id1, "B", &found, &why), QKD_OK);
	assert_false(found);
	assert_int_equal(qkd_relay_inbox_withdraw(ib, id1, "A", &found, &why), QKD_OK);
	assert_true(found);
	assert_int_equal(qkd_relay_inbox_withdraw(ib, id1, "A", &found, &why), QKD_OK);
	assert_false(found);		/* once */
	assert_int_equal(qkd_relay_inbox_withdraw(ib, id3, "A", &found, &why), QKD_OK);
	assert_false(found);		/* never held */
	qkd_relay_inbox_close(ib);
	assert_int_equal(qkd_relay_inbox_open(&ib, path, &why), QKD_OK);	/* on disk */
	assert_int_equal(qkd_relay_inbox_take(ib, "SAE_A", "SAE_D", &id1, 1, outs, 64, lens, &bad,
					      &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_relay_inbox_put(ib, id1, "SAE_A", "SAE_D", "A", key1, 256, 11, &why),
			 QKD_ERR_INVAL);
	/* A served key is not withdrawn: its SAE has it. */
	assert_int_equal(qkd_relay_inbox_take(ib, "SAE_A", "SAE_D", &id2, 1, outs, 64, lens, &bad,
					      &why), QKD_OK);
	assert_int_equal(qkd_relay_inbox_withdraw(ib, id2, "A", &found, &why), QKD_OK);
	assert_false(found);
	assert_int_equal(qkd_relay_inbox_counts(ib, &c, &why), QKD_OK);
	assert_int_equal(c.ready, 0);
	assert_int_equal(c.expired, 1);
	assert_int_equal(c.delivered, 1);
	qkd_relay_inbox_close(ib);
}

static void test_open_refused(void **state)
{
	struct qkd_relay_inbox *ib = NULL;
	const char *why = NULL;
	FILE *f;

	(void)state;
	assert_int_not_equal(qkd_relay_inbox_open(&ib, "/nonexistent-dir/x.db", &why), QKD_OK);
	assert_null(ib);
	assert_non_null(why);
	f = fopen(path, "w");	/* not a database */
	assert_non_null(f);
	fputs("this is not an SQLite file, and it is long enough to be read as one..........", f);
	fclose(f);
	assert_int_not_equal(qkd_relay_inbox_open(&ib, path, &why), QKD_OK);
	assert_null(ib);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_take_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_withdraw, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refused, setup, teardown),
	};

	return cmocka_run_group_tests_name("relay_inbox", tests, NULL, NULL);
}
