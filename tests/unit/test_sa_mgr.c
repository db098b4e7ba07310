/* test_sa_mgr.c - the SA database (qkd/sa_mgr.h, lib/vpn/sa_mgr.c):
 * install, lookup and removal; make-before-break activation on both ends
 * of a rekey (RFC 7296 s2.8); removal waiting for a checkin held by a
 * second thread; the per-tunnel capacity; list() in installation order.
 * Run under valgrind for the ownership rules (every SA freed once). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "qkd/error.h"
#include "qkd/sa_mgr.h"

static struct qkd_esp_sa *sa(enum qkd_esp_dir dir, uint32_t spi)
{
	uint8_t keymat[36];
	struct qkd_esp_params p = { .dir = dir, .spi = spi, .keymat = keymat,
				    .keymat_len = sizeof keymat, .now = 100 };
	struct qkd_esp_sa *s = NULL;

	memset(keymat, (int)(spi & 0xff), sizeof keymat);
	assert_int_equal(qkd_esp_sa_new(&p, &s), QKD_OK);
	return s;
}

static int install(struct qkd_sa_mgr *m, size_t t, uint32_t spi_in, uint32_t spi_out, bool act)
{
	return qkd_sa_mgr_install(m, t, sa(QKD_ESP_IN, spi_in), sa(QKD_ESP_OUT, spi_out), act);
}

/* The SPI of tunnel t's active outbound SA, 0 when none. */
static uint32_t active_out(struct qkd_sa_mgr *m, size_t t)
{
	struct qkd_esp_sa *s = qkd_sa_mgr_checkout_out(m, t);
	uint32_t spi = s != NULL ? qkd_esp_sa_spi(s) : 0;

	qkd_sa_mgr_checkin(m, s);
	return spi;
}

static void test_install_lookup_remove(void **state)
{
	struct qkd_sa_mgr *m = NULL;
	struct qkd_esp_sa *s;
	size_t t = 99;

	(void)state;
	assert_int_equal(qkd_sa_mgr_new(0, &m), QKD_ERR_INVAL);
	assert_null(m);
	assert_int_equal(qkd_sa_mgr_new(2, &m), QKD_OK);
	assert_null(qkd_sa_mgr_checkout_out(m, 1));
	assert_int_equal(install(m, 1, 1000, 2000, true), QKD_OK);
	s = qkd_sa_mgr_checkout_in(m, 1000, &t);
	assert_non_null(s);
	assert_int_equal(qkd_esp_sa_spi(s), 1000);
	assert_int_equal(t, 1);
	qkd_sa_mgr_checkin(m, s);
	assert_null(qkd_sa_mgr_checkout_in(m, 2000, &t));	/* an outbound SPI is not inbound */
	assert_null(qkd_sa_mgr_checkout_in(m, 1001, &t));
	assert_int_equal(active_out(m, 1), 2000);
	assert_int_equal(active_out(m, 0), 0);
	assert_null(qkd_sa_mgr_checkout_out(m, 2));		/* no such tunnel */

	/* Refusals free what they were given (valgrind sees any leak). */
	assert_int_equal(install(m, 2, 1100, 2100, true), QKD_ERR_INVAL);
	assert_int_equal(install(m, 0, 1000, 2100, true), QKD_ERR_INVAL);	/* SPI in use */
	assert_int_equal(qkd_sa_mgr_install(m, 0, sa(QKD_ESP_OUT, 1100), sa(QKD_ESP_OUT, 2100),
					    true), QKD_ERR_INVAL);
	assert_int_equal(qkd_sa_mgr_install(m, 0, sa(QKD_ESP_IN, 1100), NULL, true),
			 QKD_ERR_INVAL);
	assert_null(qkd_sa_mgr_checkout_in(m, 1100, &t));

	assert_int_equal(qkd_sa_mgr_remove(m, 2000), QKD_ERR_NOKEY);	/* by inbound SPI only */
	assert_int_equal(qkd_sa_mgr_remove(m, 1000), QKD_OK);
	assert_int_equal(qkd_sa_mgr_remove(m, 1000), QKD_ERR_NOKEY);
	assert_null(qkd_sa_mgr_checkout_in(m, 1000, &t));
	assert_int_equal(active_out(m, 1), 0);
	/* The SPI is free again; one left installed is freed with the manager. */
	assert_int_equal(install(m, 0, 1000, 2000, false), QKD_OK);
	assert_int_equal(active_out(m, 0), 2000);	/* nothing to break: active at once */
	qkd_sa_mgr_free(m);
	qkd_sa_mgr_free(NULL);
}

/* This end initiated the rekey: the new outbound SA is used at once, the
 * old inbound SA keeps accepting until it is removed. */
static void test_rekey_initiator(void **state)
{
	struct qkd_sa_mgr *m = NULL;
	struct qkd_esp_sa *s;
	size_t t;

	(void)state;
	assert_int_equal(qkd_sa_mgr_new(1, &m), QKD_OK);
	assert_int_equal(install(m, 0, 1000, 2000, true), QKD_OK);
	assert_int_equal(install(m, 0, 1001, 2001, true), QKD_OK);
	assert_int_equal(active_out(m, 0), 2001);
	s = qkd_sa_mgr_checkout_in(m, 1000, &t);
	assert_non_null(s);
	qkd_sa_mgr_checkin(m, s);
	assert_int_equal(active_out(m, 0), 2001);	/* an old packet moves nothing back */
	assert_int_equal(qkd_sa_mgr_remove(m, 1000), QKD_OK);
	assert_int_equal(active_out(m, 0), 2001);
	assert_int_equal(qkd_sa_mgr_remove(m, 1001), QKD_OK);
	assert_int_equal(active_out(m, 0), 0);
	qkd_sa_mgr_free(m);
}

/* This end responded: the new outbound SA waits for the peer's first
 * packet on the new inbound SA, or for the old pair's removal. */
static void test_rekey_responder(void **state)
{
	struct qkd_sa_mgr *m = NULL;
	struct qkd_esp_sa *s;
	size_t t;

	(void)state;
	assert_int_equal(qkd_sa_mgr_new(1, &m), QKD_OK);
	assert_int_equal(install(m, 0, 1000, 2000, true), QKD_OK);
	assert_int_equal(install(m, 0, 1001, 2001, false), QKD_OK);
	assert_int_equal(active_out(m, 0), 2000);
	s = qkd_sa_mgr_checkout_in(m, 1000, &t);	/* still the old pair */
	qkd_sa_mgr_checkin(m, s);
	assert_int_equal(active_out(m, 0), 2000);
	s = qkd_sa_mgr_checkout_in(m, 1001, &t);	/* the peer moved */
	assert_non_null(s);
	assert_int_equal(active_out(m, 0), 2001);
	qkd_sa_mgr_checkin(m, s);

	/* A second rekey, this time finished by removing the old pair. */
	assert_int_equal(install(m, 0, 1002, 2002, false), QKD_OK);
	assert_int_equal(active_out(m, 0), 2001);
	assert_int_equal(qkd_sa_mgr_remove(m, 1000), QKD_OK);	/* not the active one */
	assert_int_equal(active_out(m, 0), 2001);
	assert_int_equal(qkd_sa_mgr_remove(m, 1001), QKD_OK);
	assert_int_equal(active_out(m, 0), 2002);
	qkd_sa_mgr_flush(m, 0);
	assert_int_equal(active_out(m, 0), 0);
	assert_null(qkd_sa_mgr_checkout_in(m, 1002, &t));
	qkd_sa_mgr_flush(m, 5);		/* no such tunnel: nothing */
	qkd_sa_mgr_free(m);
}

struct remover {
	struct qkd_sa_mgr *m;
	uint32_t spi;
	int rc;
	atomic_bool done;
};

static void *remove_thread(void *arg)
{
	struct remover *r = arg;

	r->rc = qkd_sa_mgr_remove(r->m, r->spi);
	atomic_store(&r->done, true);
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* A removal waits for the checkin of an SA in use; meanwhile the pair is
 * invisible to lookups and the tunnel's traffic has moved on. */
static void test_remove_waits_for_checkin(void **state)
{
	struct qkd_sa_mgr *m = NULL;
	struct remover r = { .spi = 1000, .rc = 1 };
	struct qkd_esp_sa *in, *out;
	pthread_t th;
	size_t t;

	(void)state;
	assert_int_equal(qkd_sa_mgr_new(1, &m), QKD_OK);
	r.m = m;
	atomic_init(&r.done, false);
	assert_int_equal(install(m, 0, 1000, 2000, true), QKD_OK);
	assert_int_equal(install(m, 0, 1001, 2001, false), QKD_OK);
	in = qkd_sa_mgr_checkout_in(m, 1000, &t);
	out = qkd_sa_mgr_checkout_out(m, 0);
	assert_non_null(in);
	assert_int_equal(qkd_esp_sa_spi(out), 2000);
	assert_int_equal(pthread_create(&th, NULL, remove_thread, &r), 0);
	sleep_ms(150);
	assert_false(atomic_load(&r.done));
	assert_null(qkd_sa_mgr_checkout_in(m, 1000, &t));	/* dying: not handed out */
	assert_int_equal(active_out(m, 0), 2001);		/* the pending pair took over */
	qkd_sa_mgr_checkin(m, in);
	sleep_ms(100);
	assert_false(atomic_load(&r.done));			/* the outbound SA is still out */
	/* Reading the SA while the remover waits is still ours to do. */
	assert_int_equal(qkd_esp_sa_spi(out), 2000);
	qkd_sa_mgr_checkin(m, out);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(atomic_load(&r.done));
	assert_int_equal(r.rc, QKD_OK);
	qkd_sa_mgr_free(m);
}

static void test_capacity(void **state)
{
	struct qkd_sa_mgr *m = NULL;

	(void)state;
	assert_int_equal(qkd_sa_mgr_new(2, &m), QKD_OK);
	for (uint32_t i = 0; i < QKD_SA_MGR_INBOUND_MAX; i++)
		assert_int_equal(install(m, 0, 1000 + i, 2000 + i, false), QKD_OK);
	assert_int_equal(install(m, 0, 1100, 2100, true), QKD_ERR_RANGE);
	assert_int_equal(install(m, 1, 1100, 2100, true), QKD_OK);	/* per tunnel */
	assert_int_equal(active_out(m, 0), 2000);
	assert_int_equal(qkd_sa_mgr_remove(m, 1002), QKD_OK);
	assert_int_equal(install(m, 0, 1200, 2200, true), QKD_OK);	/* room again */
	assert_int_equal(active_out(m, 0), 2200);
	qkd_sa_mgr_free(m);
}

static void test_list(void **state)
{
	struct qkd_sa_mgr *m = NULL;
	struct qkd_sa_info info[8];
	struct qkd_esp_sa *out;
	uint8_t inner[100] = { 0x45 }, pkt[200];
	size_t n;

	(void)state;
	assert_int_equal(qkd_sa_mgr_new(3, &m), QKD_OK);
	assert_int_equal(qkd_sa_mgr_list(m, SIZE_MAX, 100, info, 8), 0);
	assert_int_equal(install(m, 2, 1000, 2000, true), QKD_OK);
	assert_int_equal(install(m, 0, 1001, 2001, true), QKD_OK);
	assert_int_equal(install(m, 2, 1002, 2002, false), QKD_OK);
	out = qkd_sa_mgr_checkout_out(m, 2);
	assert_int_equal(qkd_esp_encapsulate(out, 4, inner, sizeof inner, pkt, sizeof pkt, &n),
			 QKD_OK);
	qkd_sa_mgr_checkin(m, out);

	memset(info, 0xa5, sizeof info);
	assert_int_equal(qkd_sa_mgr_list(m, SIZE_MAX, 100, info, 8), 6);
	assert_int_equal(info[0].spi, 1000);
	assert_int_equal(info[0].dir, QKD_ESP_IN);
	assert_int_equal(info[0].tunnel, 2);
	assert_false(info[0].active);
	assert_int_equal(info[1].spi, 2000);
	assert_int_equal(info[1].dir, QKD_ESP_OUT);
	assert_true(info[1].active);
	assert_int_equal(info[1].bytes, 100);
	assert_int_equal(info[1].packets, 1);
	assert_int_equal(info[1].state, QKD_ESP_OK);
	assert_int_equal(info[2].spi, 1001);
	assert_int_equal(info[2].tunnel, 0);
	assert_int_equal(info[3].spi, 2001);
	assert_true(info[3].active);
	assert_int_equal(info[5].spi, 2002);
	assert_false(info[5].active);			/* pending */
	assert_int_equal(info[5].packets, 0);

	memset(info, 0xa5, sizeof info);
	assert_int_equal(qkd_sa_mgr_list(m, 2, 100, info, 3), 4);	/* count beyond cap */
	assert_int_equal(info[2].spi, 1002);
	assert_int_equal(info[3].spi, 0xa5a5a5a5u);			/* untouched */
	assert_int_equal(qkd_sa_mgr_list(m, 1, 100, info, 8), 0);
	qkd_sa_mgr_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_install_lookup_remove),
		cmocka_unit_test(test_rekey_initiator),
		cmocka_unit_test(test_rekey_responder),
		cmocka_unit_test(test_remove_waits_for_checkin),
		cmocka_unit_test(test_capacity),
		cmocka_unit_test(test_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
