/* test_ike_sa.c - the IKEv2 state machine (qkd/ike_sa.h, lib/vpn/ike_sa*.c,
 * ike_msg.c; docs/ike.md "State machine").
 *
 * Two objects, an initiator and a responder with mirrored tunnels built in
 * code, wired through an in-memory network (a queue per direction that a
 * test can drop from), a fake clock advanced in steps of 0.1 s, and a fake
 * key manager that hands both ends the same bits for a key_ID, or other
 * bits for the next keys (a mismatch), or refuses (QKD_ERR_REFUSED), at
 * once or on the next step. Every installed pair is recorded with its
 * keys, so the test checks that they agree crosswise (initiator key_out ==
 * responder key_in) and that the QKD key_ID is the one the KME issued.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/ike_sa.h"

#define QMAX 256
#define CMAX 32
#define STEP 0.1

struct pkt {
	int to;
	size_t len;
	uint8_t *p;
};

struct kkey {
	char id[QKD_IKE_KEY_ID_LEN + 1];
	uint8_t key[32];
	bool bad;
};

struct kreq {
	int side;
	struct qkd_ike_ppk_req r;
};

struct inst {
	struct qkd_ike_child c;
	bool deleted;
};

struct world;

struct side {
	int idx;
	struct world *w;
	struct qkd_ike *ike;
	struct qkd_vpn_tunnel t;
	struct inst in[CMAX];
	size_t n_in, n_del;
	unsigned ev[16];
	unsigned keylogs;
	unsigned refuse_installs;	/* child_install fails this many times */
	struct qkd_ike_keylog kl;
	uint8_t kl_ei[36];
	char last[16][64];
	unsigned sent;
};

struct world {
	double now;
	struct side s[2];
	struct pkt q[QMAX];
	size_t nq;
	unsigned drop[2];	/* drop the next N datagrams from this side */
	bool cut[2];		/* drop everything from this side */
	/* This side routes like the gateway (src/vpn_glue.c): a message on an
	 * IKE SA it does not hold is answered INVALID_IKE_SPI, not input. */
	bool gateway[2];
	unsigned ispi_sent[2];
	unsigned loss_pct;	/* drop this share of datagrams (a fixed LCG) */
	uint32_t lcg;
	/* the KME */
	struct kkey keys[64];
	size_t nkeys;
	int fail_new;		/* NEW requests to refuse; -1: all */
	unsigned mismatch;	/* next keys whose GET gives other bits */
	bool async;
	struct kreq kq[16];
	size_t nkq;
};

static int net_send(void *arg, const uint8_t *msg, size_t len)
{
	struct side *sd = arg;
	struct world *w = sd->w;

	sd->sent++;
	if (w->cut[sd->idx] || (w->drop[sd->idx] > 0 && w->drop[sd->idx]--))
		return 0;
	w->lcg = w->lcg * 1103515245u + 12345u;
	if (w->loss_pct > 0 && (w->lcg >> 16) % 100 < w->loss_pct)
		return 0;
	assert_true(w->nq < QMAX);
	w->q[w->nq].to = 1 - sd->idx;
	w->q[w->nq].len = len;
	w->q[w->nq].p = malloc(len);
	assert_non_null(w->q[w->nq].p);
	memcpy(w->q[w->nq].p, msg, len);
	w->nq++;
	return 0;
}

static int child_install(void *arg, const struct qkd_ike_child *c)
{
	struct side *sd = arg;

	if (sd->refuse_installs > 0) {
		sd->refuse_installs--;
		return QKD_ERR_NOMEM;
	}
	assert_true(sd->n_in < CMAX);
	sd->in[sd->n_in].c = *c;
	sd->in[sd->n_in].deleted = false;
	sd->n_in++;
	return 0;
}

static void child_delete(void *arg, uint32_t spi_in, uint32_t spi_out)
{
	struct side *sd = arg;

	for (size_t i = 0; i < sd->n_in; i++) {
		if (sd->in[i].c.spi_in == spi_in && !sd->in[i].deleted) {
			assert_int_equal(sd->in[i].c.spi_out, spi_out);
			sd->in[i].deleted = true;
			sd->n_del++;
			return;
		}
	}
	fail_msg("child_delete of a pair never installed: %08x", spi_in);
}

static void key_bits(const char *id, bool flip, uint8_t out[32])
{
	for (size_t i = 0; i < 32; i++)
		out[i] = (uint8_t)(id[i % QKD_IKE_KEY_ID_LEN] * 31 + i * 7);
	if (flip)
		out[5] ^= 0x10;
}

static void kme_answer(struct world *w, int side, const struct qkd_ike_ppk_req *r)
{
	struct qkd_ike *ike = w->s[side].ike;
	struct kkey *k = NULL;
	uint8_t bits[32];

	if (r->op == QKD_IKE_PPK_NEW) {
		if (w->fail_new != 0) {
			if (w->fail_new > 0)
				w->fail_new--;
			assert_int_equal(qkd_ike_ppk_answer(ike, r->token, QKD_ERR_REFUSED, NULL, NULL,
							    0, w->now), QKD_OK);
			return;
		}
		assert_true(w->nkeys < 64);
		k = &w->keys[w->nkeys++];
		snprintf(k->id, sizeof k->id, "6c2f8a10-0000-4000-8000-%012zu", w->nkeys);
		key_bits(k->id, false, k->key);
		k->bad = w->mismatch > 0;
		if (w->mismatch > 0)
			w->mismatch--;
		assert_int_equal(qkd_ike_ppk_answer(ike, r->token, 0, k->id, k->key, 32, w->now),
				 QKD_OK);
		return;
	}
	for (size_t i = 0; i < w->nkeys; i++)
		if (strcmp(w->keys[i].id, r->key_id) == 0)
			k = &w->keys[i];
	if (k == NULL) {
		assert_int_equal(qkd_ike_ppk_answer(ike, r->token, QKD_ERR_REFUSED, NULL, NULL, 0,
						    w->now), QKD_OK);
		return;
	}
	key_bits(k->id, k->bad, bits);
	assert_int_equal(qkd_ike_ppk_answer(ike, r->token, 0, k->id, bits, 32, w->now), QKD_OK);
}

static void ppk_request(void *arg, const struct qkd_ike_ppk_req *r)
{
	struct side *sd = arg;
	struct world *w = sd->w;

	assert_int_equal(r->bits, 256);
	if (w->async) {
		assert_true(w->nkq < 16);
		w->kq[w->nkq].side = sd->idx;
		w->kq[w->nkq].r = *r;
		w->nkq++;
		return;
	}
	kme_answer(w, sd->idx, r);
}

static void on_event(void *arg, enum qkd_ike_event ev, const char *detail)
{
	struct side *sd = arg;

	assert_true((unsigned)ev < 16);
	assert_non_null(detail);
	sd->ev[ev]++;
	snprintf(sd->last[ev], sizeof sd->last[ev], "%s", detail);
}

static void on_keylog(void *arg, const struct qkd_ike_keylog *k)
{
	struct side *sd = arg;

	sd->keylogs++;
	sd->kl = *k;
	assert_true(k->enc_len == 20 || k->enc_len == 36);
	memcpy(sd->kl_ei, k->sk_ei, k->enc_len);
}

static const struct qkd_ike_ops ops = { net_send, child_install, child_delete, ppk_request,
					on_event, on_keylog };

static const uint8_t psk[] = "a pre-shared key of the test, 32+ octets long";

static void prefix(struct qkd_vpn_prefix *p, const char *s)
{
	const char *why;

	assert_int_equal(qkd_vpn_prefix_parse(s, p, &why), QKD_OK);
}

static void tunnel(struct qkd_vpn_tunnel *t, bool a, enum qkd_vpn_qkd_policy q)
{
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", a ? "to-b" : "to-a");
	t->initiate = a;
	snprintf(t->local_id, sizeof t->local_id, "%s", a ? "gw-a.example" : "gw-b");
	snprintf(t->remote_id, sizeof t->remote_id, "%s", a ? "gw-b" : "gw-a.example");
	prefix(&t->local_ts[0], a ? "10.1.0.0/16" : "10.2.0.0/16");
	prefix(&t->remote_ts[0], a ? "10.2.0.0/16" : "10.1.0.0/16");
	prefix(&t->local_ts[1], a ? "fd01::/64" : "fd02::/64");
	prefix(&t->remote_ts[1], a ? "fd02::/64" : "fd01::/64");
	t->n_local_ts = t->n_remote_ts = 2;
	t->esp.key_bits = 256;
	t->ike.key_bits = 256;
	t->dh = QKD_VPN_DH_X25519 | QKD_VPN_DH_MODP2048;
	t->first_dh = QKD_VPN_DH_X25519;
	t->rekey_s = 60;
	t->ike_rekey_s = 14400;
	t->qkd = q;
	t->key_wait_s = 10;
}

static struct world *world_new(enum qkd_vpn_qkd_policy qa, enum qkd_vpn_qkd_policy qb)
{
	struct world *w = calloc(1, sizeof *w);

	assert_non_null(w);
	w->now = 1000;
	for (int i = 0; i < 2; i++) {
		w->s[i].idx = i;
		w->s[i].w = w;
		tunnel(&w->s[i].t, i == 0, i == 0 ? qa : qb);
	}
	return w;
}

static void side_open(struct world *w, int i, unsigned cookie_b, double dpd)
{
	struct qkd_ike_params p = { .tunnel = &w->s[i].t, .psk = psk,
				    .psk_len = sizeof psk - 1, .ops = &ops,
				    .arg = &w->s[i], .dpd_s = dpd,
				    .cookie_threshold = i == 1 ? cookie_b : 100 };

	assert_int_equal(qkd_ike_new(&p, &w->s[i].ike), QKD_OK);
}

static void world_open(struct world *w, unsigned cookie_b, double dpd)
{
	for (int i = 0; i < 2; i++)
		side_open(w, i, cookie_b, dpd);
}

static void world_free(struct world *w)
{
	for (size_t i = 0; i < w->nq; i++)
		free(w->q[i].p);
	qkd_ike_free(w->s[0].ike);
	qkd_ike_free(w->s[1].ike);
	free(w);
}

static void enqueue(struct world *w, int to, const uint8_t *msg, size_t len)
{
	assert_true(w->nq < QMAX);
	w->q[w->nq].to = to;
	w->q[w->nq].len = len;
	w->q[w->nq].p = malloc(len);
	assert_non_null(w->q[w->nq].p);
	memcpy(w->q[w->nq].p, msg, len);
	w->nq++;
}

/* One datagram to its side; a `gateway` side picks like dp_ike does. */
static void input(struct world *w, const struct pkt *p)
{
	static const uint8_t zero[8];
	struct qkd_wbuf r;

	if (!w->gateway[p->to] || p->len < QKD_IKE_HDR_LEN ||
	    qkd_ike_owns(w->s[p->to].ike, p->p, p->p + 8) || memcmp(p->p + 8, zero, 8) == 0) {
		(void)qkd_ike_input(w->s[p->to].ike, p->p, p->len, w->now);
		return;
	}
	qkd_wbuf_init(&r);
	if (qkd_ike_invalid_spi_reply(p->p, p->len, &r) == QKD_OK && !w->cut[p->to]) {
		w->ispi_sent[p->to]++;
		enqueue(w, 1 - p->to, r.p, r.len);
	}
	qkd_wbuf_cleanup(&r);
}

/* Deliver what is queued (what it makes is delivered too, bounded), and
 * answer parked KME requests. */
static void deliver(struct world *w)
{
	for (int round = 0; round < 64 && (w->nq > 0 || w->nkq > 0); round++) {
		struct pkt p;
		struct kreq k;

		if (w->nkq > 0) {
			k = w->kq[0];
			memmove(w->kq, w->kq + 1, (w->nkq - 1) * sizeof w->kq[0]);
			w->nkq--;
			kme_answer(w, k.side, &k.r);
			continue;
		}
		p = w->q[0];
		memmove(w->q, w->q + 1, (w->nq - 1) * sizeof w->q[0]);
		w->nq--;
		input(w, &p);
		free(p.p);
	}
}

static void deliver_one(struct world *w)
{
	struct pkt p = w->q[0];

	assert_true(w->nq > 0);
	memmove(w->q, w->q + 1, (w->nq - 1) * sizeof w->q[0]);
	w->nq--;
	input(w, &p);
	free(p.p);
}

static void run(struct world *w, double seconds)
{
	for (double end = w->now + seconds; w->now < end; w->now += STEP) {
		deliver(w);
		qkd_ike_tick(w->s[0].ike, w->now);
		qkd_ike_tick(w->s[1].ike, w->now);
		deliver(w);
		assert_true(qkd_ike_next_timer(w->s[0].ike, w->now) >= w->now);
	}
}

static enum qkd_ike_state state(const struct side *s)
{
	struct qkd_ike_status st;

	qkd_ike_status(s->ike, &st);
	return st.state;
}

static const struct inst *live(const struct side *s)
{
	const struct inst *last = NULL;

	for (size_t i = 0; i < s->n_in; i++)
		if (!s->in[i].deleted)
			last = &s->in[i];
	return last;
}

static size_t n_live(const struct side *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_in; i++)
		n += !s->in[i].deleted;
	return n;
}

/* The current pairs of both ends are the two halves of one SA pair. */
static void check_pair(const struct world *w, bool qkd)
{
	const struct inst *a = live(&w->s[0]), *b = live(&w->s[1]);

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->c.spi_out, b->c.spi_in);
	assert_int_equal(a->c.spi_in, b->c.spi_out);
	assert_int_equal(a->c.key_len, 36);
	assert_int_equal(b->c.key_len, 36);
	assert_memory_equal(a->c.key_out, b->c.key_in, 36);
	assert_memory_equal(a->c.key_in, b->c.key_out, 36);
	assert_memory_not_equal(a->c.key_in, a->c.key_out, 36);
	assert_int_equal(a->c.qkd, qkd);
	assert_int_equal(b->c.qkd, qkd);
	if (qkd)
		assert_string_equal(a->c.key_id, b->c.key_id);
	assert_true(a->c.ts_local.n > 0 && a->c.ts_remote.n > 0);
}

static void establish(struct world *w)
{
	assert_int_equal(qkd_ike_start(w->s[0].ike, w->now), QKD_OK);
	run(w, 2);
	assert_int_equal(state(&w->s[0]), QKD_IKE_ESTABLISHED);
	assert_int_equal(state(&w->s[1]), QKD_IKE_ESTABLISHED);
}

static void test_establish_ppk(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_REQUIRED);
	struct qkd_ike_status st;

	(void)state_;
	world_open(w, 100, 30);
	establish(w);
	check_pair(w, true);
	assert_string_equal(live(&w->s[0])->c.key_id, w->keys[0].id);
	assert_int_equal(w->nkeys, 1);
	assert_true(live(&w->s[0])->c.initiator);
	assert_false(live(&w->s[1])->c.initiator);
	assert_int_equal(live(&w->s[0])->c.old_spi_in, 0);
	for (int i = 0; i < 2; i++) {
		qkd_ike_status(w->s[i].ike, &st);
		assert_int_equal(st.stats.ike_up, 1);
		assert_int_equal(st.stats.child_up, 1);
		assert_int_equal(st.stats.bad_messages, 0);
		assert_true(st.qkd);
		assert_string_equal(st.key_id, w->keys[0].id);
		assert_int_equal(st.initiator, i == 0);
		assert_int_equal(w->s[i].ev[QKD_IKE_EV_IKE_UP], 1);
		assert_int_equal(w->s[i].ev[QKD_IKE_EV_CHILD_UP], 1);
		assert_int_equal(w->s[i].ev[QKD_IKE_EV_QKD_FALLBACK], 0);
	}
	assert_int_equal(w->s[0].keylogs, 1);
	assert_int_equal(w->s[1].keylogs, 1);
	assert_memory_equal(w->s[0].kl.spi_r, w->s[1].kl.spi_r, 8);
	assert_memory_equal(w->s[0].kl_ei, w->s[1].kl_ei, 36);
	assert_string_equal(qkd_ike_state_name(QKD_IKE_ESTABLISHED), "established");
	assert_string_equal(qkd_ike_event_name(QKD_IKE_EV_PPK_MISMATCH), "ppk_mismatch");
	world_free(w);
}

static void test_qkd_off(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_OFF, QKD_VPN_QKD_OFF);

	(void)state_;
	world_open(w, 100, 30);
	establish(w);
	check_pair(w, false);
	assert_int_equal(w->nkeys, 0);
	world_free(w);
}

static void test_preferred_fallback(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_PREFERRED, QKD_VPN_QKD_PREFERRED);
	struct qkd_ike_status st;

	(void)state_;
	w->fail_new = -1;
	w->s[0].t.key_wait_s = 5;
	world_open(w, 100, 30);
	assert_int_equal(qkd_ike_start(w->s[0].ike, w->now), QKD_OK);
	run(w, 4);
	assert_int_equal(state(&w->s[0]), QKD_IKE_CONNECTING);
	assert_true(w->s[0].ev[QKD_IKE_EV_QKD_WAIT] >= 3);
	assert_int_equal(w->s[0].n_in, 0);
	run(w, 3);
	assert_int_equal(state(&w->s[0]), QKD_IKE_ESTABLISHED);
	assert_int_equal(w->s[0].ev[QKD_IKE_EV_QKD_FALLBACK], 1);
	check_pair(w, false);
	qkd_ike_status(w->s[0].ike, &st);
	assert_int_equal(st.stats.qkd_fallbacks, 1);
	assert_true(st.stats.qkd_waits >= 4);
	world_free(w);
}

static void test_required_gives_up(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_REQUIRED);

	(void)state_;
	w->fail_new = -1;
	w->s[0].t.key_wait_s = 3;
	world_open(w, 100, 30);
	assert_int_equal(qkd_ike_start(w->s[0].ike, w->now), QKD_OK);
	run(w, 4);
	assert_int_equal(w->s[0].n_in + w->s[1].n_in, 0);
	assert_int_equal(w->s[0].ev[QKD_IKE_EV_QKD_FALLBACK], 0);
	assert_true(w->s[0].ev[QKD_IKE_EV_QKD_WAIT] >= 2);
	assert_int_equal(w->s[0].ev[QKD_IKE_EV_IKE_DOWN], 1);
	assert_int_not_equal(state(&w->s[0]), QKD_IKE_ESTABLISHED);
	/* the key manager recovers: the next attempt (after the backoff) works */
	w->fail_new = 0;
	run(w, 20);
	assert_int_equal(state(&w->s[0]), QKD_IKE_ESTABLISHED);
	check_pair(w, true);
	world_free(w);
}

static void test_mismatch_auth(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_REQUIRED);

	(void)state_;
	w->mismatch = 1;
	world_open(w, 100, 30);
	assert_int_equal(qkd_ike_start(w->s[0].ike, w->now), QKD_OK);
	run(w, 0.5);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(w->s[i].ev[QKD_IKE_EV_PPK_MISMATCH], 1);
		assert_string_equal(w->s[i].last[QKD_IKE_EV_PPK_MISMATCH], w->keys[0].id);
		assert_int_equal(w->s[i].n_in, 0);
		assert_int_equal(w->s[i].ev[QKD_IKE_EV_AUTH_FAILED], 0);
	}
	run(w, 2);
	assert_int_equal(state(&w->s[0]), QKD_IKE_ESTABLISHED);
	assert_int_equal(state(&w->s[1]), QKD_IKE_ESTABLISHED);
	check_pair(w, true);
	assert_int_equal(w->nkeys, 2);
	assert_string_equal(live(&w->s[0])->c.key_id, w->keys[1].id);
	world_free(w);
}

static void test_wrong_psk(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_REQUIRED);
	static const uint8_t other[] = "another pre-shared key, also 32+ octets";
	struct qkd_ike_params p = { .tunnel = &w->s[1].t, .psk = other,
				    .psk_len = sizeof other - 1, .ops = &ops, .arg = &w->s[1],
				    .cookie_threshold = 100 };

	(void)state_;
	world_open(w, 100, 30);
	qkd_ike_free(w->s[1].ike);
	assert_int_equal(qkd_ike_new(&p, &w->s[1].ike), QKD_OK);
	assert_int_equal(qkd_ike_start(w->s[0].ike, w->now), QKD_OK);
	run(w, 0.5);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(w->s[i].ev[QKD_IKE_EV_AUTH_FAILED], 1);
		assert_int_equal(w->s[i].ev[QKD_IKE_EV_PPK_MISMATCH], 0);
		assert_int_equal(w->s[i].n_in, 0);
	}
	world_free(w);
}

static void copy_id(char out[QKD_IKE_KEY_ID_LEN + 1], const struct side *s)
{
	const struct inst *c = live(s);

	assert_non_null(c);
	if (c != NULL)
		snprintf(out, QKD_IKE_KEY_ID_LEN + 1, "%s", c->c.key_id);
}

static void test_rekey_three(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_REQUIRED);
	char ids[4][QKD_IKE_KEY_ID_LEN + 1];
	struct qkd_ike_status st;

	(void)state_;
	world_open(w, 100, 30);
	establish(w);
	copy_id(ids[0], &w->s[0]);
	for (int k = 1; k <= 3; k++) {
		run(w, 60);
		check_pair(w, true);
		copy_id(ids[k], &w->s[0]);
		for (int j = 0; j < k; j++)
			assert_string_not_equal(ids[k], ids[j]);
		assert_int_equal(live(&w->s[0])->c.old_spi_in, w->s[0].in[k - 1].c.spi_in);
		assert_true(live(&w->s[0])->c.initiator);
	}
	run(w, 3);	/* the grace before the last old pair goes */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(w->s[i].n_in, 4);
		assert_int_equal(w->s[i].n_del, 3);	/* each old pair, on both ends */
		assert_int_equal(n_live(&w->s[i]), 1);
		qkd_ike_status(w->s[i].ike, &st);
		assert_int_equal(st.stats.child_rekeys, 3);
		assert_int_equal(st.spi_in, live(&w->s[i])->c.spi_in);
	}
	assert_int_equal(w->nkeys, 4);
	world_free(w);
}

static void test_mismatch_rekey(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_REQUIRED);
	uint32_t first;

	(void)state_;
	world_open(w, 100, 30);
	establish(w);
	first = live(&w->s[0])->c.spi_in;
	w->mismatch = 1;
	run(w, 58.5);
	assert_int_equal(w->s[0].ev[QKD_IKE_EV_PPK_MISMATCH], 1);
	assert_int_equal(w->s[1].ev[QKD_IKE_EV_PPK_MISMATCH], 1);
	assert_string_equal(w->s[1].last[QKD_IKE_EV_PPK_MISMATCH], w->keys[1].id);
	assert_int_equal(w->s[0].n_in, 1);	/* the old pair untouched */
	assert_int_equal(w->s[1].n_in, 1);
	assert_int_equal(w->s[0].n_del + w->s[1].n_del, 0);
	assert_int_equal(live(&w->s[0])->c.spi_in, first);
	run(w, 4);
	check_pair(w, true);
	assert_int_equal(w->s[0].n_in, 2);
	assert_string_equal(live(&w->s[0])->c.key_id, w->keys[2].id);
	assert_int_equal(live(&w->s[1])->c.old_spi_out, first);
	assert_int_equal(w->s[0].n_del, 1);
	assert_int_equal(w->s[1].n_del, 1);
	world_free(w);
}

static void test_lost_messages(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_REQUIRED);
	struct qkd_ike_status st;

	(void)state_;
	world_open(w, 100, 30);
	w->drop[0] = 1;		/* the first IKE_SA_INIT request */
	w->drop[1] = 2;		/* the IKE_SA_INIT response, then the IKE_AUTH response */
	w->async = true;	/* the responder's key arrives a step later */
	assert_int_equal(qkd_ike_start(w->s[0].ike, w->now), QKD_OK);
	run(w, 6);
	assert_int_equal(state(&w->s[0]), QKD_IKE_ESTABLISHED);
	check_pair(w, true);
	qkd_ike_status(w->s[0].ike, &st);
	assert_true(st.stats.retransmits >= 3);
	assert_int_equal(w->s[0].ev[QKD_IKE_EV_RETRANSMIT], st.stats.retransmits);
	assert_int_equal(w->s[0].n_in, 1);
	assert_int_equal(w->s[1].n_in, 1);
	world_free(w);
}

static void test_peer_dead(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_OFF, QKD_VPN_QKD_OFF);
	struct qkd_ike_status st;

	(void)state_;
	world_open(w, 100, 5);
	establish(w);
	w->cut[1] = true;
	run(w, 5 + 0.5 * 127 + 2);
	qkd_ike_status(w->s[0].ike, &st);
	assert_int_equal(st.stats.peer_dead, 1);
	assert_int_equal(w->s[0].ev[QKD_IKE_EV_PEER_DEAD], 1);
	assert_int_equal(w->s[0].ev[QKD_IKE_EV_IKE_DOWN], 1);
	assert_int_equal(w->s[0].n_del, 1);
	assert_int_equal(n_live(&w->s[0]), 0);
	/* the peer comes back; the initiator restarts after its backoff */
	w->cut[1] = false;
	run(w, 10);
	assert_int_equal(state(&w->s[0]), QKD_IKE_ESTABLISHED);
	world_free(w);
}

static void test_cookie(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_REQUIRED);
	struct qkd_ike_status st;

	(void)state_;
	world_open(w, 0, 30);
	establish(w);
	check_pair(w, true);
	qkd_ike_status(w->s[1].ike, &st);
	assert_int_equal(st.stats.cookies, 1);
	assert_int_equal(w->s[1].ev[QKD_IKE_EV_COOKIE], 1);
	assert_int_equal(w->s[0].ev[QKD_IKE_EV_COOKIE], 1);
	world_free(w);
}

static void test_groups(void **state_)
{
	unsigned cases[3][4] = {
		{ QKD_VPN_DH_MODP2048, QKD_VPN_DH_MODP2048, QKD_VPN_DH_MODP2048, QKD_VPN_DH_MODP2048 },
		{ QKD_VPN_DH_X25519, QKD_VPN_DH_X25519, QKD_VPN_DH_X25519, QKD_VPN_DH_X25519 },
		/* the initiator's KE is X25519, the responder only does MODP-2048 */
		{ QKD_VPN_DH_X25519 | QKD_VPN_DH_MODP2048, QKD_VPN_DH_X25519, QKD_VPN_DH_MODP2048,
		  QKD_VPN_DH_MODP2048 },
	};

	(void)state_;
	for (size_t k = 0; k < 3; k++) {
		struct world *w = world_new(QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_REQUIRED);

		w->s[0].t.dh = cases[k][0];
		w->s[0].t.first_dh = cases[k][1];
		w->s[1].t.dh = cases[k][2];
		w->s[1].t.first_dh = cases[k][3];
		world_open(w, 100, 30);
		establish(w);
		check_pair(w, true);
		run(w, 61);	/* a rekey with PFS in that group */
		check_pair(w, true);
		assert_int_equal(w->s[0].n_in, 2);
		/* INVALID_KE_PAYLOAD in IKE_SA_INIT, then in the first rekey only */
		assert_int_equal(w->s[0].ev[QKD_IKE_EV_NO_PROPOSAL], k == 2 ? 2 : 0);
		run(w, 60);
		assert_int_equal(w->s[0].n_in, 3);
		assert_int_equal(w->s[0].ev[QKD_IKE_EV_NO_PROPOSAL], k == 2 ? 2 : 0);
		world_free(w);
	}
}

static unsigned log_lines;

static void count_line(void *ctx, enum qkd_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	assert_non_null(strstr(line, "to-a"));
	log_lines++;
}

static void test_malformed(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_REQUIRED);
	struct qkd_logger lg = { count_line, NULL, QKD_LOG_WARN };
	struct qkd_ike_params p = { .tunnel = &w->s[1].t, .psk = psk, .psk_len = sizeof psk - 1,
				    .ops = &ops, .arg = &w->s[1], .cookie_threshold = 100,
				    .log = &lg };
	struct qkd_ike_status st;
	uint8_t junk[300];

	(void)state_;
	world_open(w, 100, 30);
	qkd_ike_free(w->s[1].ike);
	assert_int_equal(qkd_ike_new(&p, &w->s[1].ike), QKD_OK);
	log_lines = 0;
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (uint8_t)(i * 13);
	assert_int_equal(qkd_ike_input(w->s[1].ike, junk, sizeof junk, w->now), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_input(w->s[1].ike, junk, 10, w->now), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_start(w->s[0].ike, w->now), QKD_OK);
	deliver_one(w);	/* INIT and its response; the AUTH request now waits in the queue */
	deliver_one(w);
	assert_int_equal(w->nq, 1);
	for (size_t bit = 0; bit < w->q[0].len * 8; bit += 7) {
		uint8_t *c = malloc(w->q[0].len);

		assert_non_null(c);
		memcpy(c, w->q[0].p, w->q[0].len);
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(qkd_ike_input(w->s[1].ike, c, w->q[0].len, w->now), QKD_ERR_PROTO);
		free(c);
	}
	assert_int_equal(w->s[1].n_in, 0);
	qkd_ike_status(w->s[1].ike, &st);
	assert_true(st.stats.bad_messages >= 2 + w->q[0].len * 8 / 7);
	assert_int_equal(w->s[1].ev[QKD_IKE_EV_BAD_MESSAGE], st.stats.bad_messages);
	assert_int_equal(log_lines, 1);	/* all at one instant: one line a second */
	w->now += 1.5;
	assert_int_equal(qkd_ike_input(w->s[1].ike, junk, 10, w->now), QKD_ERR_PROTO);
	assert_int_equal(log_lines, 2);
	run(w, 2);	/* the genuine one still works */
	check_pair(w, true);
	/* a replayed IKE_AUTH request gets the cached response, nothing more */
	world_free(w);
}

static void test_close(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_OFF, QKD_VPN_QKD_OFF);

	(void)state_;
	world_open(w, 100, 30);
	establish(w);
	qkd_ike_close(w->s[0].ike, w->now);
	run(w, 1);
	assert_int_equal(state(&w->s[0]), QKD_IKE_IDLE);
	assert_int_equal(state(&w->s[1]), QKD_IKE_IDLE);
	assert_int_equal(w->s[0].n_del, 1);
	assert_int_equal(w->s[1].n_del, 1);
	run(w, 10);
	assert_int_equal(state(&w->s[0]), QKD_IKE_IDLE);	/* closed stays closed */
	world_free(w);
}

static void test_collision(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_REQUIRED);
	struct qkd_ike_status a, b;

	(void)state_;
	w->s[1].t.initiate = true;
	world_open(w, 100, 30);
	assert_int_equal(qkd_ike_start(w->s[0].ike, w->now), QKD_OK);
	assert_int_equal(qkd_ike_start(w->s[1].ike, w->now), QKD_OK);
	run(w, 3);
	qkd_ike_status(w->s[0].ike, &a);
	qkd_ike_status(w->s[1].ike, &b);
	assert_int_equal(a.state, QKD_IKE_ESTABLISHED);
	assert_int_equal(b.state, QKD_IKE_ESTABLISHED);
	assert_memory_equal(a.spi_i, b.spi_i, 8);	/* one IKE SA, not two */
	assert_memory_equal(a.spi_r, b.spi_r, 8);
	assert_int_not_equal(a.initiator, b.initiator);
	assert_int_equal(n_live(&w->s[0]), 1);
	assert_int_equal(n_live(&w->s[1]), 1);
	check_pair(w, true);
	run(w, 60);	/* one rekey, by the IKE SA's initiator */
	check_pair(w, true);
	assert_int_equal(w->s[0].n_in, 2);
	assert_int_equal(live(&w->s[a.initiator ? 0 : 1])->c.initiator, true);
	world_free(w);
}

static void test_soft_expiry(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_REQUIRED);

	(void)state_;
	world_open(w, 100, 30);
	establish(w);
	qkd_ike_child_soft_expired(w->s[1].ike, live(&w->s[1])->c.spi_in, w->now);
	run(w, 3);
	check_pair(w, true);
	assert_true(live(&w->s[1])->c.initiator);	/* the responder rekeyed */
	assert_int_equal(w->s[0].n_in, 2);
	assert_int_equal(w->s[0].n_del, 1);
	assert_int_equal(w->s[1].n_del, 1);
	assert_int_equal(w->nkeys, 2);
	/* an SPI that is not ours is ignored */
	qkd_ike_child_soft_expired(w->s[1].ike, 12345, w->now);
	run(w, 1);
	assert_int_equal(w->s[0].n_in, 2);
	world_free(w);
}

/* Policies that cannot agree: nothing installed, the reason on both ends. */
static void test_policy_refusals(void **state_)
{
	static const enum qkd_vpn_qkd_policy pol[3][2] = {
		{ QKD_VPN_QKD_OFF, QKD_VPN_QKD_REQUIRED },
		{ QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_OFF },
		{ QKD_VPN_QKD_PREFERRED, QKD_VPN_QKD_OFF },
	};

	(void)state_;
	for (size_t k = 0; k < 3; k++) {
		struct world *w = world_new(pol[k][0], pol[k][1]);

		world_open(w, 100, 30);
		assert_int_equal(qkd_ike_start(w->s[0].ike, w->now), QKD_OK);
		run(w, 1);
		if (k < 2) {
			assert_int_equal(w->s[0].n_in + w->s[1].n_in, 0);
			assert_int_equal(w->s[0].ev[QKD_IKE_EV_AUTH_FAILED], 1);
			assert_int_equal(w->s[1].ev[QKD_IKE_EV_AUTH_FAILED], k == 0 ? 1 : 0);
		} else {
			check_pair(w, false);	/* preferred falls back at once */
			assert_int_equal(w->s[0].ev[QKD_IKE_EV_QKD_FALLBACK], 1);
			/* rekeys: the first draws a key the peer ignores (no RFC
			 * 9867), later ones draw none */
			run(w, 125);
			check_pair(w, false);
			assert_int_equal(w->s[0].n_in, 3);
			assert_int_equal(w->s[0].ev[QKD_IKE_EV_QKD_FALLBACK], 2);
			assert_int_equal(w->nkeys, 1);
		}
		world_free(w);
	}
}

static void test_identity_and_ts(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_OFF, QKD_VPN_QKD_OFF);
	const struct inst *c;

	(void)state_;
	snprintf(w->s[1].t.remote_id, sizeof w->s[1].t.remote_id, "gw-c.example");
	world_open(w, 100, 30);
	assert_int_equal(qkd_ike_start(w->s[0].ike, w->now), QKD_OK);
	run(w, 0.5);
	assert_int_equal(w->s[1].ev[QKD_IKE_EV_AUTH_FAILED], 1);
	assert_int_equal(w->s[0].n_in + w->s[1].n_in, 0);
	world_free(w);

	w = world_new(QKD_VPN_QKD_OFF, QKD_VPN_QKD_OFF);
	prefix(&w->s[1].t.remote_ts[0], "10.9.0.0/16");
	prefix(&w->s[1].t.remote_ts[1], "fd09::/64");
	world_open(w, 100, 30);
	assert_int_equal(qkd_ike_start(w->s[0].ike, w->now), QKD_OK);
	run(w, 0.5);
	assert_int_equal(w->s[1].ev[QKD_IKE_EV_NO_PROPOSAL], 1);
	assert_int_equal(w->s[0].ev[QKD_IKE_EV_NO_PROPOSAL], 1);
	assert_int_equal(w->s[0].n_in + w->s[1].n_in, 0);
	world_free(w);

	w = world_new(QKD_VPN_QKD_OFF, QKD_VPN_QKD_OFF);	/* narrowed to a /24 */
	prefix(&w->s[1].t.local_ts[0], "10.2.5.0/24");
	w->s[1].t.n_local_ts = 1;
	world_open(w, 100, 30);
	establish(w);
	check_pair(w, false);
	c = live(&w->s[0]);
	assert_int_equal(c->c.ts_remote.n, 1);
	assert_int_equal(c->c.ts_remote.ts[0].start[2], 5);
	assert_int_equal(c->c.ts_remote.ts[0].end[3], 255);
	assert_int_equal(c->c.ts_local.n, 2);
	world_free(w);
}

static void test_init_flood(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_OFF, QKD_VPN_QKD_OFF);
	struct qkd_ike_status st;
	struct pkt init;

	(void)state_;
	world_open(w, 100, 30);
	assert_int_equal(qkd_ike_start(w->s[0].ike, w->now), QKD_OK);
	assert_int_equal(w->nq, 1);
	init = w->q[0];
	w->nq = 0;
	for (int i = 0; i < 30; i++) {
		init.p[0] = (uint8_t)i;	/* a new SPIi: a new request */
		(void)qkd_ike_input(w->s[1].ike, init.p, init.len, w->now);
	}
	qkd_ike_status(w->s[1].ike, &st);
	assert_int_equal(st.stats.init_dropped, 10);
	assert_int_equal(w->s[1].sent, 20);
	free(init.p);
	for (size_t i = 0; i < w->nq; i++)
		free(w->q[i].p);
	w->nq = 0;
	world_free(w);
}

static void test_ike_rekey(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_REQUIRED);
	struct qkd_ike_status a0, a, b;

	(void)state_;
	w->s[0].t.ike_rekey_s = 100;
	w->s[1].t.ike_rekey_s = 100;
	world_open(w, 100, 30);
	establish(w);
	qkd_ike_status(w->s[0].ike, &a0);
	run(w, 250);
	qkd_ike_status(w->s[0].ike, &a);
	qkd_ike_status(w->s[1].ike, &b);
	assert_int_equal(a.state, QKD_IKE_ESTABLISHED);
	assert_int_equal(a.stats.ike_rekeys, 2);
	assert_int_equal(b.stats.ike_rekeys, 2);
	assert_memory_not_equal(a.spi_i, a0.spi_i, 8);
	assert_memory_equal(a.spi_i, b.spi_i, 8);
	assert_memory_equal(a.spi_r, b.spi_r, 8);
	assert_true(a.initiator);
	assert_int_equal(a.stats.bad_messages + b.stats.bad_messages, 0);
	assert_int_equal(a.stats.ike_up, 1);	/* never down */
	assert_int_equal(w->s[0].ev[QKD_IKE_EV_IKE_DOWN], 0);
	/* the Child SAs moved over and are rekeyed under the new SK_d */
	check_pair(w, true);
	assert_int_equal(a.stats.child_rekeys, 4);
	assert_int_equal(n_live(&w->s[0]), 1);
	assert_int_equal(n_live(&w->s[1]), 1);
	world_free(w);
}

/* A fifth of all datagrams lost for ten minutes of rekeys, then a clean
 * network: the two ends must agree on one pair, with nothing left over. */
static void lossy(uint32_t seed, unsigned pct)
{
	struct world *w = world_new(QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_REQUIRED);
	struct qkd_ike_status a, b;

	print_message("loss %u%%, seed %u\n", pct, seed);
	w->loss_pct = pct;
	w->lcg = seed;
	w->s[0].t.ike_rekey_s = 250;
	w->s[1].t.ike_rekey_s = 250;
	world_open(w, 100, 10);
	assert_int_equal(qkd_ike_start(w->s[0].ike, w->now), QKD_OK);
	run(w, 600);
	w->loss_pct = 0;
	run(w, 130);
	qkd_ike_status(w->s[0].ike, &a);
	qkd_ike_status(w->s[1].ike, &b);
	assert_int_equal(a.state, QKD_IKE_ESTABLISHED);
	assert_int_equal(b.state, QKD_IKE_ESTABLISHED);
	assert_true(a.stats.retransmits > 0);
	assert_true(a.stats.child_rekeys >= 8);
	check_pair(w, true);
	assert_int_equal(n_live(&w->s[0]), 1);
	assert_int_equal(n_live(&w->s[1]), 1);
	world_free(w);
}

static void test_lossy(void **state_)
{
	static const uint32_t seeds[] = { 42, 7, 1234, 99, 2026, 5 };

	(void)state_;
	for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
		lossy(seeds[i], i % 2 == 0 ? 20 : 30);
}

/* The responder's data plane refuses the first pair: the initiator's half
 * is deleted through an INFORMATIONAL Delete; at the rekey time the
 * initiator, with no pair left, starts the IKE SA over. */
static void test_install_refused(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_REQUIRED);

	(void)state_;
	world_open(w, 100, 30);
	w->s[1].refuse_installs = 1;
	establish(w);
	assert_int_equal(w->s[1].n_in, 0);
	assert_int_equal(w->s[0].n_in, 1);
	assert_int_equal(w->s[0].n_del, 1);	/* deleted at the peer's request */
	assert_int_equal(w->s[1].n_del, 0);	/* never installed, never deleted */
	assert_int_equal(n_live(&w->s[0]), 0);
	run(w, 65);	/* at the rekey time, with nothing to rekey, it starts over */
	assert_int_equal(w->s[0].ev[QKD_IKE_EV_IKE_DOWN], 1);
	assert_int_equal(state(&w->s[0]), QKD_IKE_ESTABLISHED);
	check_pair(w, true);
	world_free(w);
}

/* RFC 7296 section 2.21.4: the responder restarts (its object freed and
 * made anew, its installed pairs gone, as after kill -9). The initiator's
 * next request (a liveness check here) is answered INVALID_IKE_SPI; that
 * is only a hint, so two quick retransmissions follow, answered alike,
 * and the peer is dead within 2 s of the request instead of ~63 s; the
 * initiator then starts over with the new responder. */
static void test_restart_invalid_spi(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_REQUIRED, QKD_VPN_QKD_REQUIRED);
	struct qkd_ike_status st;
	uint64_t rtx0;
	unsigned sent0;
	double t_req = 0, t_dead = 0;

	(void)state_;
	world_open(w, 100, 5);
	establish(w);
	w->gateway[1] = true;
	qkd_ike_free(w->s[1].ike);
	memset(w->s[1].in, 0, sizeof w->s[1].in);
	w->s[1].n_in = w->s[1].n_del = 0;
	side_open(w, 1, 100, 5);
	qkd_ike_status(w->s[0].ike, &st);
	rtx0 = st.stats.retransmits;
	sent0 = w->s[0].sent;
	for (int i = 0; i < 200 && t_dead == 0; i++) {
		run(w, STEP / 2);
		if (t_req == 0 && w->s[0].sent > sent0)
			t_req = w->now;
		if (w->s[0].ev[QKD_IKE_EV_PEER_DEAD] > 0)
			t_dead = w->now;
	}
	assert_true(t_req > 0 && t_dead > 0);
	assert_true(t_dead - t_req >= 1.0);	/* not torn down at the first hint */
	assert_true(t_dead - t_req <= 2.0);
	qkd_ike_status(w->s[0].ike, &st);
	assert_int_equal(st.stats.retransmits - rtx0, 2);
	assert_int_equal(st.stats.invalid_spi_hints, 3);
	assert_int_equal(st.stats.peer_dead, 1);
	assert_int_equal(w->ispi_sent[1], 3);
	assert_string_equal(w->s[0].last[QKD_IKE_EV_PEER_DEAD], "INVALID_IKE_SPI, then no answer");
	assert_int_equal(w->s[0].ev[QKD_IKE_EV_IKE_DOWN], 1);
	assert_int_equal(n_live(&w->s[0]), 0);
	assert_int_equal(state(&w->s[1]), QKD_IKE_IDLE);
	/* back after the 2 s backoff, with a fresh QKD key */
	run(w, 4);
	assert_int_equal(state(&w->s[0]), QKD_IKE_ESTABLISHED);
	assert_int_equal(state(&w->s[1]), QKD_IKE_ESTABLISHED);
	check_pair(w, true);
	assert_string_equal(live(&w->s[0])->c.key_id, w->keys[w->nkeys - 1].id);
	assert_int_equal(w->s[0].ev[QKD_IKE_EV_IKE_UP], 2);
	world_free(w);
}

/* A forged INVALID_IKE_SPI (anyone on the path can send one) does not tear
 * the tunnel down: the real response, even one lost and resent, wins. A
 * hint for another Message ID, or with nothing in flight, is refused. */
static void test_forged_hint(void **state_)
{
	struct world *w = world_new(QKD_VPN_QKD_OFF, QKD_VPN_QKD_OFF);
	struct qkd_ike_status st;
	struct qkd_wbuf r;
	uint64_t bad0;

	(void)state_;
	world_open(w, 100, 3);
	establish(w);
	for (int i = 0; i < 100 && w->nq == 0; i++) {	/* only the initiator's clock runs */
		w->now += STEP;
		qkd_ike_tick(w->s[0].ike, w->now);
	}
	assert_int_equal(w->nq, 1);
	assert_int_equal(w->q[0].to, 1);
	qkd_wbuf_init(&r);
	assert_int_equal(qkd_ike_invalid_spi_reply(w->q[0].p, w->q[0].len, &r), QKD_OK);
	qkd_ike_status(w->s[0].ike, &st);
	bad0 = st.stats.bad_messages;
	r.p[23] ^= 1;	/* the Message ID's last octet */
	assert_int_equal(qkd_ike_input(w->s[0].ike, r.p, r.len, w->now), QKD_ERR_PROTO);
	r.p[23] ^= 1;
	assert_int_equal(qkd_ike_input(w->s[0].ike, r.p, r.len, w->now), QKD_OK);
	assert_int_equal(qkd_ike_input(w->s[0].ike, r.p, r.len, w->now), QKD_OK);	/* again */
	qkd_ike_status(w->s[0].ike, &st);
	assert_int_equal(st.stats.invalid_spi_hints, 2);
	assert_int_equal(st.stats.bad_messages, bad0 + 1);
	w->drop[1] = 1;		/* the genuine response is lost once */
	run(w, 5);
	qkd_ike_status(w->s[0].ike, &st);
	assert_true(st.stats.retransmits >= 1);
	assert_int_equal(st.stats.peer_dead, 0);
	assert_int_equal(w->s[0].ev[QKD_IKE_EV_IKE_DOWN], 0);
	assert_int_equal(state(&w->s[0]), QKD_IKE_ESTABLISHED);
	assert_int_equal(state(&w->s[1]), QKD_IKE_ESTABLISHED);
	assert_int_equal(qkd_ike_input(w->s[0].ike, r.p, r.len, w->now), QKD_ERR_PROTO);
	qkd_ike_status(w->s[0].ike, &st);
	assert_int_equal(st.stats.invalid_spi_hints, 2);
	qkd_wbuf_cleanup(&r);
	world_free(w);
}

static void hdr28(uint8_t m[28], uint8_t exchange, uint8_t flags, uint8_t version)
{
	for (int i = 0; i < 16; i++)
		m[i] = (uint8_t)(i + 1);
	m[16] = 0;		/* no payload */
	m[17] = version;
	m[18] = exchange;
	m[19] = flags;
	memcpy(m + 20, "\0\0\0\5\0\0\0\x1c", 8);	/* Message ID 5, length 28 */
}

/* The answer's octets (sections 2.21.4, 3.1, 3.10), and what is never
 * answered: a response, an IKE_SA_INIT, a short or malformed message. */
static void test_invalid_spi_reply(void **state_)
{
	static const uint8_t tail[] = { 41, 0x20, 37, 0x20, 0, 0, 0, 5, 0, 0, 0, 36,
					0, 0, 0, 8, 0, 0, 0, 4 };
	uint8_t m[28];
	struct qkd_wbuf r;
	struct qkd_ike_rate rl = {0};

	(void)state_;
	qkd_wbuf_init(&r);
	hdr28(m, QKD_IKE_INFORMATIONAL, QKD_IKE_FLAG_I, 0x20);
	assert_int_equal(qkd_ike_invalid_spi_reply(m, 28, &r), QKD_OK);
	assert_int_equal(r.len, 36);
	assert_memory_equal(r.p, m, 16);
	assert_memory_equal(r.p + 16, tail, sizeof tail);
	hdr28(m, QKD_IKE_CREATE_CHILD_SA, 0, 0x20);	/* from the original responder */
	assert_int_equal(qkd_ike_invalid_spi_reply(m, 28, &r), QKD_OK);
	assert_int_equal(r.len, 36);
	assert_int_equal(r.p[18], QKD_IKE_INFORMATIONAL);
	assert_int_equal(r.p[19], QKD_IKE_FLAG_R | QKD_IKE_FLAG_I);
	hdr28(m, QKD_IKE_INFORMATIONAL, QKD_IKE_FLAG_R, 0x20);
	assert_int_equal(qkd_ike_invalid_spi_reply(m, 28, &r), QKD_ERR_PROTO);
	assert_int_equal(r.len, 0);
	hdr28(m, QKD_IKE_SA_INIT, QKD_IKE_FLAG_I, 0x20);
	assert_int_equal(qkd_ike_invalid_spi_reply(m, 28, &r), QKD_ERR_PROTO);
	hdr28(m, QKD_IKE_AUTH, QKD_IKE_FLAG_I, 0x10);	/* IKEv1 */
	assert_int_equal(qkd_ike_invalid_spi_reply(m, 28, &r), QKD_ERR_PROTO);
	hdr28(m, QKD_IKE_AUTH, QKD_IKE_FLAG_I, 0x20);
	assert_int_equal(qkd_ike_invalid_spi_reply(m, 27, &r), QKD_ERR_PROTO);
	m[16] = 41;		/* a payload announced, none there */
	assert_int_equal(qkd_ike_invalid_spi_reply(m, 28, &r), QKD_ERR_PROTO);
	assert_int_equal(qkd_ike_invalid_spi_reply(NULL, 28, &r), QKD_ERR_INVAL);
	assert_int_equal(r.len, 0);
	qkd_wbuf_cleanup(&r);
	/* the rate limit: 10 in a second, then a new window */
	for (int i = 0; i < 10; i++)
		assert_true(qkd_ike_rate_take(&rl, 100.0 + i * 0.01, 10));
	assert_false(qkd_ike_rate_take(&rl, 100.5, 10));
	assert_false(qkd_ike_rate_take(&rl, 100.99, 10));
	assert_true(qkd_ike_rate_take(&rl, 101.0, 10));
	assert_true(qkd_ike_rate_take(&rl, 50.0, 10));	/* the clock stepped back */
	assert_false(qkd_ike_rate_take(&rl, 50.0, 0));
}

static void test_args(void **state_)
{
	struct qkd_vpn_tunnel t;
	struct qkd_ike *ike = (struct qkd_ike *)1;
	struct qkd_ike_params p = { .tunnel = &t, .psk = psk, .psk_len = 0, .ops = &ops };

	(void)state_;
	tunnel(&t, true, QKD_VPN_QKD_OFF);
	assert_int_equal(qkd_ike_new(&p, &ike), QKD_ERR_INVAL);
	assert_null(ike);
	p.psk_len = 8;
	assert_int_equal(qkd_ike_new(&p, &ike), QKD_OK);
	assert_int_equal(qkd_ike_ppk_answer(ike, 99, 0, NULL, NULL, 0, 0), QKD_ERR_NOKEY);
	qkd_ike_free(ike);
	qkd_ike_free(NULL);
	t.initiate = false;
	assert_int_equal(qkd_ike_new(&p, &ike), QKD_OK);
	assert_int_equal(qkd_ike_start(ike, 0), QKD_ERR_INVAL);
	qkd_ike_free(ike);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_establish_ppk),
		cmocka_unit_test(test_qkd_off),
		cmocka_unit_test(test_preferred_fallback),
		cmocka_unit_test(test_required_gives_up),
		cmocka_unit_test(test_mismatch_auth),
		cmocka_unit_test(test_wrong_psk),
		cmocka_unit_test(test_rekey_three),
		cmocka_unit_test(test_mismatch_rekey),
		cmocka_unit_test(test_lost_messages),
		cmocka_unit_test(test_peer_dead),
		cmocka_unit_test(test_cookie),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_close),
		cmocka_unit_test(test_collision),
		cmocka_unit_test(test_soft_expiry),
		cmocka_unit_test(test_policy_refusals),
		cmocka_unit_test(test_identity_and_ts),
		cmocka_unit_test(test_init_flood),
		cmocka_unit_test(test_ike_rekey),
		cmocka_unit_test(test_lossy),
		cmocka_unit_test(test_install_refused),
		cmocka_unit_test(test_restart_invalid_spi),
		cmocka_unit_test(test_forged_hint),
		cmocka_unit_test(test_invalid_spi_reply),
		cmocka_unit_test(test_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
