/* test_kme_sync.c - the key manager's service on a link: records crossing
 * it as KME_BATCH / KME_ANSWER messages on the link's multiplexer
 * (lib/kme/kme_sync.c, lib/kme/kme_wire.c, lib/core/mux.c and the
 * channel's service frames in lib/core/channel.c; docs/kme.md, "Two
 * nodes"; qkd/mux.h).
 *
 * Two stores hold the same FINAL blocks, two channels run over a
 * socketpair (qkd_auth_none), and two link contexts play Alice and Bob
 * with their key managers' SAE tables; each context's multiplexer is
 * attached to its end of the connection, its service reading and writing
 * that end's store. One thread drives both ends (settle_both pumps the two
 * channels until neither service has anything in flight or pending and no
 * byte waits); a hand-made peer is an end whose multiplexer is detached:
 * it writes SERVICE frames itself and reads the real end's as a channel
 * without services does. The checks: records cross both ways and deliver
 * the issuer's bytes, more than a batch's worth in several batches with
 * one in flight per end; enc_keys waiters learn accepted, refused, time
 * out, or see the link go down; LATER keeps a record until the block is
 * final at the peer, and the record goes again RETRY_LATER_S later; a
 * verdict lost with its connection costs no bit twice (records sent again
 * on the next attach, accepted once); malformed KME_BATCH / KME_ANSWER,
 * and a KME_ANSWER with no batch in flight, are refused with nothing
 * changed and the connection's error named (qkd_mux_error); service frames
 * too short or of an unknown type; records that parse but are wrong for
 * the store get a verdict each, never a store error; withdrawals and
 * quarantine reports; the wire format round-trips and refuses what it
 * must; the lifecycle thread's pass expires a key only once it is key_ttl
 * old and publishes the counts, and the thread stops promptly.
 * qkd_store_check passes on both stores at the end of the tests that move
 * records. Every wait is bounded: socket timeouts, the settle loops'
 * rounds and seconds, and waiter deadlines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/kme/node_kme_int.h"
#include "../../lib/kme/kme_wire.h"
#include "../../lib/node/node_int.h"

#include "qkd/channel.h"
#include "qkd/error.h"
#include "qkd/keystore.h"
#include "qkd/kme_store.h"
#include "qkd/mux.h"
#include "qkd/secret.h"
#include "qkd/wire.h"

#define SAE_A "SAE_A"		/* Alice's local SAE */
#define SAE_B "SAE_B"		/* Bob's local SAE */
#define SAE_C "SAE_C"		/* known to Alice, behind another of her links */
#define SAE_Z "SAE_Z"		/* known to nobody */
#define ALICE QKD_KME_PARITY_ALICE
#define BOB QKD_KME_PARITY_BOB

#define NBLOCKS 6		/* 0 .. 3 FINAL at both ends; 4, 5 per test */
#define BLOCK_BITS 4096
#define KEY_BITS 256
#define KEY_BYTES (KEY_BITS / 8)
#define IO_TIMEOUT_S 30		/* bounds every blocking channel call (valgrind is slow) */

struct logcap {
	pthread_mutex_t lock;
	char text[8192];
	size_t len;
};

/* An enc_keys request waiting for its keys, in a thread of its own. */
struct waiter_run {
	struct qkd_link_kme *k;
	struct node_kme_waiter w;
	bool done[8];
	struct timespec deadline;
	int rc;
	double elapsed;
	pthread_t th;
	bool running;
};

#define WAITERS_MAX 6

/* The service's message types on the wire and its retry after LATER:
 * kme_sync.c keeps them private, so the test states them again. */
#define KME_BATCH 1
#define KME_ANSWER 2
#define RETRY_LATER_S 0.05
/* settle, pump_for and the hand-made peer's reads: at most this many
 * pumps of each end, and this long (valgrind is slow). */
#define SETTLE_ROUNDS 2000
#define SETTLE_S 10.0

struct fix {
	char dir[256], pa[320], pb[320];
	struct qkd_store *a, *b;
	uint8_t blocks[NBLOCKS][BLOCK_BITS / 8];
	struct qkd_link_config la, lb;
	struct qkd_node_kme ka, kb;
	struct qkd_link_ctx xa, xb;
	struct qkd_logger log;
	struct logcap cap;
	atomic_bool stop;
	int sv[2];			/* [0] Alice's end, [1] Bob's */
	struct qkd_channel cha, chb;
	bool ma, mb;			/* xa.mux on cha, xb.mux on chb */
	unsigned key_seq;
	/* waiters live here, so that teardown can wake and join them after a
	 * failed assertion left the test */
	struct waiter_run wr[WAITERS_MAX];
	size_t nwr;
};

/* ---- fixture ---- */

static void log_write(void *ctx, enum qkd_log_level level, const char *line)
{
	struct logcap *c = ctx;
	size_t n = strlen(line);

	(void)level;
	pthread_mutex_lock(&c->lock);
	if (c->len + n + 2 < sizeof c->text) {
		memcpy(c->text + c->len, line, n);
		c->len += n;
		c->text[c->len++] = '\n';
		c->text[c->len] = '\0';
	}
	pthread_mutex_unlock(&c->lock);
}

static bool logged(struct fix *f, const char *part)
{
	bool found;

	pthread_mutex_lock(&f->cap.lock);
	found = strstr(f->cap.text, part) != NULL;
	pthread_mutex_unlock(&f->cap.lock);
	return found;
}

static uint64_t mix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void put_block(struct qkd_store *s, const uint8_t *bits, uint64_t id, bool final)
{
	const char *why = NULL;

	assert_int_equal(qkd_store_put_pending(s, id, bits, BLOCK_BITS, &why), QKD_OK);
	if (final)
		assert_int_equal(qkd_store_finalize(s, id, &why), QKD_OK);
}

static void set_sae(struct qkd_node_kme *k, const char *id, int link)
{
	struct qkd_node_sae *s = &k->saes[k->nsaes++];

	snprintf(s->id, sizeof s->id, "%s", id);
	snprintf(s->cn, sizeof s->cn, "%s", id);
	s->link = link;
	if (link >= 0)
		snprintf(s->kme_id, sizeof s->kme_id, "KME_%d", link);
}

static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
}

static void connect_pair(struct fix *f)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, f->sv), 0);
	set_timeouts(f->sv[0]);
	set_timeouts(f->sv[1]);
	qkd_channel_init(&f->cha, f->sv[0], &qkd_auth_none, NULL);
	qkd_channel_init(&f->chb, f->sv[1], &qkd_auth_none, NULL);
}

static void disconnect_pair(struct fix *f)
{
	qkd_channel_cleanup(&f->cha);
	qkd_channel_cleanup(&f->chb);
	close(f->sv[0]);
	close(f->sv[1]);
	f->sv[0] = f->sv[1] = -1;
}

/* A new connection, as after a reconnect: fresh sequence numbers. */

/* The services on the ends given (a: Alice's on cha, b: Bob's on chb);
 * an end without them is a hand-made peer. Attach tells the service the
 * connection is up: its whole outbox goes at the next pump. */
static void attach(struct fix *f, bool a, bool b)
{
	if (a)
		qkd_mux_attach(f->xa.mux, &f->cha);
	if (b)
		qkd_mux_attach(f->xb.mux, &f->chb);
	f->ma = a;
	f->mb = b;
}

static void detach(struct fix *f)
{
	if (f->ma)
		qkd_mux_detach(f->xa.mux);
	if (f->mb)
		qkd_mux_detach(f->xb.mux);
	f->ma = f->mb = false;
}

/* A new connection, as after a reconnect: fresh sequence numbers, nothing
 * in flight, the services on the ends given. */
static void reconnect(struct fix *f, bool a, bool b)
{
	detach(f);
	disconnect_pair(f);
	connect_pair(f);
	attach(f, a, b);
}

/* Bob's end made by hand on this connection (before anything moved). */
static void hand_bob(struct fix *f)
{
	assert_true(f->mb);
	qkd_mux_detach(f->xb.mux);
	f->mb = false;
}

/* A link context whose service works on store st (the link thread's
 * handle in a node; here the test's own, so it must not be closed by
 * qkd_link_ctx_cleanup: teardown takes it back first). */
static void link_init(struct fix *f, struct qkd_link_ctx *x, struct qkd_link_config *l,
		      struct qkd_node_kme *k, enum qkd_link_role role, const char *kme_id,
		      struct qkd_store *st)
{
	snprintf(l->name, sizeof l->name, "ab");
	l->role = role;
	k->enabled = true;
	snprintf(k->id, sizeof k->id, "%s", kme_id);
	k->sync_timeout_s = 5;
	assert_int_equal(qkd_link_ctx_init(x, l, &f->log, &f->stop), QKD_OK);
	assert_non_null(x->mux);
	assert_non_null(x->kme.svc);
	x->kme.cfg = k;
	x->kme.link_index = 0;
	x->store = st;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof *f);
	const char *tmp = getenv("TMPDIR");
	uint64_t seed = 0x5eed1234abcdull;

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof f->dir, "%s/qkd-kme-sync.XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->pa, sizeof f->pa, "%s/alice.db", f->dir);
	snprintf(f->pb, sizeof f->pb, "%s/bob.db", f->dir);
	assert_int_equal(qkd_store_open(&f->a, f->pa, NULL), QKD_OK);
	assert_int_equal(qkd_store_open(&f->b, f->pb, NULL), QKD_OK);
	for (size_t i = 0; i < NBLOCKS; i++)
		for (size_t j = 0; j < sizeof f->blocks[i]; j++)
			f->blocks[i][j] = (uint8_t)mix(&seed);
	for (uint64_t id = 0; id < 4; id++) {
		put_block(f->a, f->blocks[id], id, true);
		put_block(f->b, f->blocks[id], id, true);
	}
	assert_int_equal(pthread_mutex_init(&f->cap.lock, NULL), 0);
	f->log.write = log_write;
	f->log.ctx = &f->cap;
	f->log.level = QKD_LOG_DEBUG;
	atomic_init(&f->stop, false);
	/* Alice's KME serves SAE_A; SAE_B is behind this link (index 0),
	 * SAE_C behind another one. Bob's serves SAE_B; SAE_A is behind it. */
	set_sae(&f->ka, SAE_A, -1);
	set_sae(&f->ka, SAE_B, 0);
	set_sae(&f->ka, SAE_C, 1);
	set_sae(&f->kb, SAE_B, -1);
	set_sae(&f->kb, SAE_A, 0);
	link_init(f, &f->xa, &f->la, &f->ka, QKD_ROLE_ALICE, "KME_A", f->a);
	link_init(f, &f->xb, &f->lb, &f->kb, QKD_ROLE_BOB, "KME_B", f->b);
	connect_pair(f);
	attach(f, true, true);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	DIR *d;
	struct dirent *e;
	char p[600];

	for (size_t i = 0; i < f->nwr; i++)
		if (f->wr[i].running) {
			node_kme_set_up(f->wr[i].k, false);
			pthread_join(f->wr[i].th, NULL);
		}
	detach(f);
	disconnect_pair(f);
	f->xa.store = NULL;		/* the test's handles, closed below */
	f->xb.store = NULL;
	qkd_link_ctx_cleanup(&f->xa);
	qkd_link_ctx_cleanup(&f->xb);
	pthread_mutex_destroy(&f->cap.lock);
	qkd_store_close(f->a);
	qkd_store_close(f->b);
	d = opendir(f->dir);
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
		unlink(p);
	}
	if (d != NULL)
		closedir(d);
	rmdir(f->dir);
	qkd_wipe(f->blocks, sizeof f->blocks);
	free(f);
	return 0;
}

/* ---- store helpers ---- */

static void check_ok(struct qkd_store *s)
{
	const char *why = NULL;
	int rc = qkd_store_check(s, &why);

	if (rc != QKD_OK)
		fail_msg("qkd_store_check: %d %s", rc, why ? why : "?");
}

static void check_both(struct fix *f)
{
	check_ok(f->a);
	check_ok(f->b);
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

static uint64_t consumed_bits(struct qkd_store *s)
{
	struct qkd_store_stats st;

	assert_int_equal(qkd_store_stats(s, &st, NULL), QKD_OK);
	return st.consumed_bits;
}

/* What a malformed message must leave as it was. */
struct snap {
	struct qkd_store_stats st;
	struct qkd_kme_counts c;
	uint64_t avail[2];
	struct qkd_kme_rec out[8];
	size_t nout;
};

static void snap_take(struct qkd_store *s, struct snap *p)
{
	memset(p, 0, sizeof *p);
	assert_int_equal(qkd_store_stats(s, &p->st, NULL), QKD_OK);
	p->c = counts(s);
	for (unsigned par = 0; par < 2; par++)
		assert_int_equal(qkd_store_kme_available(s, par, &p->avail[par], NULL), QKD_OK);
	assert_int_equal(qkd_store_kme_outbox(s, p->out, 8, &p->nout, NULL), QKD_OK);
}

static void snap_same(struct qkd_store *s, const struct snap *before)
{
	struct snap now;

	snap_take(s, &now);
	assert_memory_equal(&now.st, &before->st, sizeof now.st);
	assert_memory_equal(&now.c, &before->c, sizeof now.c);
	assert_memory_equal(now.avail, before->avail, sizeof now.avail);
	assert_int_equal(now.nout, before->nout);
	for (size_t i = 0; i < now.nout; i++)
		assert_memory_equal(now.out[i].key_id, before->out[i].key_id, 16);
}

static struct qkd_kme_rec mkrec(struct fix *f, const char *master, const char *slave,
				uint32_t nbits)
{
	struct qkd_kme_rec r;

	memset(&r, 0, sizeof r);
	memset(r.key_id, 0x5a, sizeof r.key_id);
	f->key_seq++;
	r.key_id[0] = (uint8_t)(f->key_seq >> 8);
	r.key_id[15] = (uint8_t)f->key_seq;
	snprintf(r.master, sizeof r.master, "%s", master);
	snprintf(r.slave, sizeof r.slave, "%s", slave);
	r.nbits = nbits;
	return r;
}

/* Cut n keys of nbits for master -> slave at s; their bytes to bits. */
static void issue(struct fix *f, struct qkd_store *s, unsigned parity, const char *master,
		  const char *slave, uint32_t nbits, struct qkd_kme_rec *recs, size_t n,
		  uint8_t *bits)
{
	const char *why = NULL;
	int rc;

	for (size_t i = 0; i < n; i++)
		recs[i] = mkrec(f, master, slave, nbits);
	rc = qkd_store_kme_issue(s, parity, recs, n, bits, n * (nbits / 8), &why);
	if (rc != QKD_OK)
		fail_msg("issue: %d %s", rc, why ? why : "?");
}

/* The key a record names, from the blocks both ends hold. */
static void expect_key(const struct fix *f, const struct qkd_kme_rec *r, uint8_t *out)
{
	uint64_t pos = 0;

	memset(out, 0, r->nbits / 8);
	for (size_t i = 0; i < r->nsegs; i++) {
		const struct qkd_store_seg *g = &r->segs[i];

		assert_true(g->id < NBLOCKS);
		for (uint64_t j = 0; j < g->nbits; j++, pos++) {
			uint64_t b = g->offset + j;
			unsigned bit = (f->blocks[g->id][b / 8] >> (b % 8)) & 1u;

			out[pos / 8] |= (uint8_t)(bit << (pos % 8));
		}
	}
	assert_int_equal(pos, r->nbits);
}

/* Deliver recs[0 .. n) (n <= 8) for master -> slave; bytes to out[i]. */
static int deliver(struct qkd_store *s, const char *master, const char *slave,
		   const struct qkd_kme_rec *recs, size_t n, uint8_t out[][KEY_BYTES],
		   size_t *lens)
{
	uint8_t ids[8][16];
	uint8_t *outs[8];
	size_t bad = 99;

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		memcpy(ids[i], recs[i].key_id, 16);
		outs[i] = out[i];
	}
	return qkd_store_kme_deliver(s, master, slave, (const uint8_t (*)[16])ids, n, outs,
				     KEY_BYTES, lens, &bad, NULL);
}

/* Deliver n keys of KEY_BITS at s and compare them with the issuer's bytes. */
static void deliver_same(struct qkd_store *s, const char *master, const char *slave,
			 const struct qkd_kme_rec *recs, size_t n, const uint8_t *issued)
{
	uint8_t out[8][KEY_BYTES];
	size_t lens[8];

	assert_int_equal(deliver(s, master, slave, recs, n, out, lens), QKD_OK);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(lens[i], KEY_BYTES);
		assert_memory_equal(out[i], issued + i * KEY_BYTES, KEY_BYTES);
	}
	/* once only */
	assert_int_equal(deliver(s, master, slave, recs, 1, out, lens), QKD_ERR_INVAL);
	qkd_wipe(out, sizeof out);
}

/* ---- waiters ---- */

static double mono_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *waiter_main(void *arg)
{
	struct waiter_run *r = arg;
	double t0 = mono_now();

	r->rc = node_kme_wait(r->k, &r->w, &r->deadline);
	r->elapsed = mono_now() - t0;
	return NULL;
}

static bool registered(struct qkd_link_kme *k, const struct node_kme_waiter *w)
{
	bool found = false;

	pthread_mutex_lock(&k->lock);
	for (const struct node_kme_waiter *p = k->waiters; p != NULL; p = p->next)
		found |= p == w;
	pthread_mutex_unlock(&k->lock);
	return found;
}

static size_t settled(struct qkd_link_kme *k, const struct node_kme_waiter *w)
{
	size_t n;

	pthread_mutex_lock(&k->lock);
	n = w->settled;
	pthread_mutex_unlock(&k->lock);
	return n;
}

/* Start a waiter on recs[0 .. n) with a deadline ms away; return once it
 * is registered (at most 5 s). */
static struct waiter_run *waiter_start(struct fix *f, struct qkd_link_kme *k,
				       const struct qkd_kme_rec *recs, size_t n, long ms)
{
	struct waiter_run *r;

	assert_true(n <= 8);
	assert_true(f->nwr < WAITERS_MAX);
	r = &f->wr[f->nwr++];
	memset(r, 0, sizeof *r);
	r->k = k;
	r->w.recs = recs;
	r->w.n = n;
	r->w.done = r->done;
	r->rc = 1;
	clock_gettime(CLOCK_MONOTONIC, &r->deadline);
	r->deadline.tv_sec += ms / 1000;
	r->deadline.tv_nsec += (ms % 1000) * 1000000;
	if (r->deadline.tv_nsec >= 1000000000) {
		r->deadline.tv_sec++;
		r->deadline.tv_nsec -= 1000000000;
	}
	/* As enc() does: registered before its records can be settled. */
	node_kme_waiter_add(k, &r->w);
	assert_true(registered(k, &r->w));
	assert_int_equal(pthread_create(&r->th, NULL, waiter_main, r), 0);
	r->running = true;
	return r;
}

static int waiter_join(struct waiter_run *r)
{
	assert_true(r->running);
	assert_int_equal(pthread_join(r->th, NULL), 0);
	r->running = false;
	assert_false(registered(r->k, &r->w));
	return r->rc;
}


/* ---- the services ---- */

static bool bytes_waiting(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

/* Up to ms for a byte to arrive at either end. */
static void wait_either(struct fix *f, int ms)
{
	struct pollfd p[2] = { { .fd = f->sv[0], .events = POLLIN },
			       { .fd = f->sv[1], .events = POLLIN } };

	(void)poll(p, 2, ms);
}

static bool quiet(struct fix *f)
{
	return node_kme_service_idle(f->xa.kme.svc) && node_kme_service_idle(f->xb.kme.svc) &&
	       !bytes_waiting(f->sv[0]) && !bytes_waiting(f->sv[1]);
}

/* What the two link threads do, in this thread: both channels pumped until
 * neither service has a batch in flight or anything pending (a kick, a
 * LATER to retry) and no byte waits at either end. With kick, both kicked
 * first, as enc_keys does, so that records a test just issued go. The
 * first error of either end, or QKD_ERR_IO when not settled within
 * SETTLE_ROUNDS pumps and SETTLE_S. */
static int settle(struct fix *f, bool kick)
{
	double until = mono_now() + SETTLE_S;
	int rc = QKD_OK;

	assert_true(f->ma && f->mb);
	if (kick) {
		node_kme_kick(&f->xa.kme);
		node_kme_kick(&f->xb.kme);
	}
	for (int i = 0; rc == QKD_OK && i < SETTLE_ROUNDS && mono_now() < until; i++) {
		rc = qkd_channel_pump(&f->cha);
		if (rc == QKD_OK)
			rc = qkd_channel_pump(&f->chb);
		if (rc == QKD_OK && quiet(f))
			return QKD_OK;
		wait_either(f, 5);
	}
	return rc != QKD_OK ? rc : QKD_ERR_IO;
}

static int settle_both(struct fix *f)
{
	return settle(f, true);
}

/* One settle (both kicked) that must succeed at both ends. */
static void settle_ok(struct fix *f)
{
	int rc = settle_both(f);
	const char *wa = qkd_mux_error(f->xa.mux), *wb = qkd_mux_error(f->xb.mux);

	if (rc != QKD_OK)
		fail_msg("settle: %d (Alice: %s; Bob: %s)", rc, wa ? wa : "-", wb ? wb : "-");
}

/* Both ends pumped for about s seconds whatever they do (LATER retries
 * never settle); the first error. */
static int pump_for(struct fix *f, double s)
{
	double until = mono_now() + s;
	int rc = QKD_OK;

	for (int i = 0; rc == QKD_OK && i < SETTLE_ROUNDS && mono_now() < until; i++) {
		rc = qkd_channel_pump(&f->cha);
		if (rc == QKD_OK)
			rc = qkd_channel_pump(&f->chb);
		wait_either(f, 5);
	}
	return rc;
}

static uint64_t sent(struct qkd_mux *m)
{
	struct qkd_mux_stats st;

	qkd_mux_get_stats(m, &st);
	return st.sent;
}

/* A hand-made end sends one KME service message: a SERVICE frame
 * [QKD_SERVICE_KME, type, body] and its AUTH, as qkd_mux_send would. */
static void hand_send(struct qkd_channel *ch, uint8_t type, const struct qkd_wbuf *body)
{
	struct qkd_wbuf w;

	qkd_wbuf_init(&w);
	qkd_put_u8(&w, QKD_SERVICE_KME);
	qkd_put_u8(&w, type);
	if (body != NULL && body->len > 0)
		qkd_put_bytes(&w, body->p, body->len);
	assert_int_equal(w.err, 0);
	assert_int_equal(qkd_channel_send_service(ch, w.p, w.len), QKD_OK);
	qkd_wbuf_cleanup(&w);
}

/* The next message the real end sends the hand-made one: the real end is
 * pumped until a byte waits at the hand-made end (bounded), which then
 * reads it as a channel without services does, a SERVICE frame and its
 * AUTH. Its type is returned, its body copied into body. */
static uint8_t hand_read(struct qkd_channel *real, struct qkd_channel *hand, struct qkd_wbuf *body)
{
	double until = mono_now() + SETTLE_S;
	struct qkd_rbuf msg;
	uint8_t t = 0, type;

	for (int i = 0; !bytes_waiting(hand->fd) && i < SETTLE_ROUNDS && mono_now() < until; i++) {
		struct pollfd p = { .fd = hand->fd, .events = POLLIN };

		assert_int_equal(qkd_channel_pump(real), QKD_OK);
		(void)poll(&p, 1, 5);
	}
	assert_true(bytes_waiting(hand->fd));
	assert_int_equal(qkd_channel_recv(hand, &t, &msg), QKD_OK);
	assert_int_equal(t, QKD_MSG_SERVICE);
	assert_int_equal(qkd_get_u8(&msg), QKD_SERVICE_KME);
	type = qkd_get_u8(&msg);
	assert_true(qkd_rbuf_ok(&msg));
	qkd_wbuf_reset(body);
	qkd_put_bytes(body, msg.p + msg.off, qkd_rbuf_left(&msg));
	assert_int_equal(qkd_channel_expect_seal(hand), QKD_OK);
	return type;
}

/* A KME_BATCH body as kme_sync.c writes it: records, withdrawals,
 * quarantined blocks (none of the last two here). */
static void put_batch(struct qkd_wbuf *w, const struct qkd_kme_rec *recs, size_t n)
{
	node_kme_put_recs(w, recs, n);
	node_kme_put_withdrawals(w, NULL, 0);
	node_kme_put_blocks(w, NULL, 0);
}

/* A KME_ANSWER body: verdicts, then answers to withdrawals (none). */
static void put_answer(struct qkd_wbuf *w, const struct node_kme_verdict *v, size_t n)
{
	node_kme_put_verdicts(w, v, n);
	node_kme_put_wds(w, NULL, 0);
}

/* Read a KME_BATCH body by hand: its records into in (room for
 * NODE_KME_BATCH_MAX), their count; no withdrawal or quarantine. */
static size_t get_batch(const struct qkd_wbuf *body, struct qkd_kme_rec *in)
{
	struct qkd_kme_rec wr[4];
	uint64_t q[4];
	struct qkd_rbuf r;
	size_t n;

	qkd_rbuf_init(&r, body->p, body->len);
	n = node_kme_get_recs(&r, in);
	assert_int_equal(node_kme_get_withdrawals(&r, wr), 0);
	assert_int_equal(node_kme_get_blocks(&r, q), 0);
	assert_true(qkd_rbuf_ok(&r) && qkd_rbuf_done(&r));
	return n;
}

/* Read a KME_ANSWER body by hand: verdicts into v, their count; no answer
 * to a withdrawal. */
static size_t get_answer(const struct qkd_wbuf *body, struct node_kme_verdict *v)
{
	struct node_kme_wd wd[4];
	struct qkd_rbuf r;
	size_t n;

	qkd_rbuf_init(&r, body->p, body->len);
	n = node_kme_get_verdicts(&r, v);
	assert_int_equal(node_kme_get_wds(&r, wd), 0);
	assert_true(qkd_rbuf_ok(&r) && qkd_rbuf_done(&r));
	return n;
}

/* The real end's pump meets what a hand-made end sent and refuses it:
 * QKD_ERR_PROTO, and the connection's error says why. */
static void pump_refused(struct qkd_channel *real, struct qkd_mux *m, const char *why)
{
	int rc = qkd_channel_pump(real);
	const char *got = qkd_mux_error(m);

	if (rc != QKD_ERR_PROTO || got == NULL || strcmp(got, why) != 0)
		fail_msg("pump: %d (%s), want %d (%s)", rc, got ? got : "-", QKD_ERR_PROTO, why);
}
static void put_raw_id(struct qkd_wbuf *w, size_t len, char c)
{
	char id[256];

	memset(id, c, sizeof id);
	qkd_put_u8(w, (uint8_t)len);
	qkd_put_bytes(w, id, len);
}

/* One record by hand: IDs of mlen and slen bytes, nsegs segments of
 * nbits / nsegs bits (the count written as is). */
static void put_raw_rec(struct qkd_wbuf *w, uint8_t tag, size_t mlen, size_t slen,
			uint64_t nbits, uint64_t nsegs)
{
	uint8_t id[16];

	memset(id, tag, sizeof id);
	qkd_put_bytes(w, id, sizeof id);
	put_raw_id(w, mlen, 'M');
	put_raw_id(w, slen, 'S');
	qkd_put_varint(w, nbits);
	qkd_put_varint(w, nsegs);
	for (uint64_t j = 0; j < nsegs; j++) {
		qkd_put_varint(w, 1);
		qkd_put_varint(w, j * 8);
		qkd_put_varint(w, nsegs ? nbits / nsegs : 0);
	}
}

static bool nothing_sent(int fd)
{
	uint8_t b;

	return recv(fd, &b, 1, MSG_DONTWAIT) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static struct qkd_kme_rec seg_rec(uint8_t tag, const char *slave, uint32_t nbits, uint64_t id,
				  uint64_t offset, uint64_t seg_bits)
{
	struct qkd_kme_rec r;

	memset(&r, 0, sizeof r);
	memset(r.key_id, tag, sizeof r.key_id);
	snprintf(r.master, sizeof r.master, "%s", SAE_B);
	snprintf(r.slave, sizeof r.slave, "%s", slave);
	r.nbits = nbits;
	r.nsegs = 1;
	r.segs[0] = (struct qkd_store_seg){ .id = id, .offset = offset, .nbits = seg_bits };
	return r;
}

/* ---- records both ways ---- */

/* Bob's three keys reach Alice and Alice's two reach Bob; each end
 * delivers exactly the issuer's bytes, once. */
static void test_exchange_both_ways(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec rb[3], ra[2];
	uint8_t kb[3 * KEY_BYTES], ka[2 * KEY_BYTES], want[KEY_BYTES];
	uint8_t out[8][KEY_BYTES];
	size_t lens[8];
	uint64_t sa, sb;

	issue(f, f->b, BOB, SAE_B, SAE_A, KEY_BITS, rb, 3, kb);
	issue(f, f->a, ALICE, SAE_A, SAE_B, KEY_BITS, ra, 2, ka);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(rb[i].segs[0].id % 2, 1);
		expect_key(f, &rb[i], want);
		assert_memory_equal(kb + i * KEY_BYTES, want, KEY_BYTES);
	}
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(ra[i].segs[0].id % 2, 0);
		expect_key(f, &ra[i], want);
		assert_memory_equal(ka + i * KEY_BYTES, want, KEY_BYTES);
	}
	assert_counts(f->a, 2, 0, 0, 0);
	assert_counts(f->b, 3, 0, 0, 0);

	settle_ok(f);
	assert_counts(f->a, 0, 3, 0, 0);
	assert_counts(f->b, 0, 2, 0, 0);
	assert_int_equal(consumed_bits(f->a), 5 * KEY_BITS);
	assert_int_equal(consumed_bits(f->b), 5 * KEY_BITS);
	/* one batch and one answer each way */
	assert_int_equal(sent(f->xa.mux), 2);
	assert_int_equal(sent(f->xb.mux), 2);
	/* the pair is checked: not to Bob's key the other way round */
	assert_int_equal(deliver(f->a, SAE_A, SAE_B, rb, 1, out, lens), QKD_ERR_VERIFY);
	deliver_same(f->a, SAE_B, SAE_A, rb, 3, kb);
	deliver_same(f->b, SAE_A, SAE_B, ra, 2, ka);
	assert_counts(f->a, 0, 0, 3, 0);
	assert_counts(f->b, 0, 0, 2, 0);

	/* kicked with nothing to say: no message, nothing changes */
	sa = sent(f->xa.mux);
	sb = sent(f->xb.mux);
	settle_ok(f);
	assert_int_equal(sent(f->xa.mux), sa);
	assert_int_equal(sent(f->xb.mux), sb);
	assert_counts(f->a, 0, 0, 3, 0);
	assert_counts(f->b, 0, 0, 2, 0);
	assert_int_equal(consumed_bits(f->a), 5 * KEY_BITS);
	assert_int_equal(consumed_bits(f->b), 5 * KEY_BITS);
	assert_null(qkd_mux_error(f->xa.mux));
	assert_null(qkd_mux_error(f->xb.mux));
	check_both(f);
	qkd_wipe(kb, sizeof kb);
	qkd_wipe(ka, sizeof ka);
}

/* More than NODE_KME_BATCH_MAX records go in two batches from each end,
 * one in flight at a time: the second goes only once the first is
 * answered. */
static void test_exchange_batches(void **state)
{
	struct fix *f = *state;
	enum { N = NODE_KME_BATCH_MAX + 40 };
	struct qkd_kme_rec *rb = calloc(N, sizeof *rb), *ra = calloc(N, sizeof *ra);
	uint8_t kb[N], ka[N];

	assert_non_null(rb);
	assert_non_null(ra);
	issue(f, f->b, BOB, SAE_B, SAE_A, 8, rb, N, kb);
	issue(f, f->a, ALICE, SAE_A, SAE_B, 8, ra, N, ka);
	/* Alice's first batch goes; kicked again, nothing more while it is in
	 * flight */
	assert_int_equal(qkd_channel_pump(&f->cha), QKD_OK);
	assert_int_equal(sent(f->xa.mux), 1);
	node_kme_kick(&f->xa.kme);
	assert_int_equal(qkd_channel_pump(&f->cha), QKD_OK);
	assert_int_equal(sent(f->xa.mux), 1);
	assert_false(node_kme_service_idle(f->xa.kme.svc));
	/* Bob: his first batch, and his answer to hers */
	assert_int_equal(qkd_channel_pump(&f->chb), QKD_OK);
	assert_int_equal(sent(f->xb.mux), 2);
	assert_counts(f->b, N, NODE_KME_BATCH_MAX, 0, 0);
	/* Alice: his batch taken in and answered, hers settled */
	assert_int_equal(qkd_channel_pump(&f->cha), QKD_OK);
	assert_counts(f->a, N - NODE_KME_BATCH_MAX, NODE_KME_BATCH_MAX, 0, 0);
	/* unkicked: an answer to a full batch is enough for the next to go */
	assert_int_equal(settle(f, false), QKD_OK);
	assert_counts(f->b, 0, N, 0, 0);
	assert_counts(f->a, 0, N, 0, 0);
	/* two batches and two answers each way, nothing more */
	assert_int_equal(sent(f->xa.mux), 4);
	assert_int_equal(sent(f->xb.mux), 4);
	assert_int_equal(consumed_bits(f->a), 2 * 8 * N);
	assert_int_equal(consumed_bits(f->b), 2 * 8 * N);
	{
		/* the last of each batch, delivered as the issuer cut it */
		uint8_t out[1][KEY_BYTES];
		uint8_t *outs[1] = { out[0] };
		size_t len = 0, bad = 0;

		assert_int_equal(qkd_store_kme_deliver(f->a, SAE_B, SAE_A,
						       (const uint8_t (*)[16])rb[N - 1].key_id,
						       1, outs, KEY_BYTES, &len, &bad, NULL), QKD_OK);
		assert_int_equal(len, 1);
		assert_int_equal(out[0][0], kb[N - 1]);
		assert_int_equal(qkd_store_kme_deliver(f->b, SAE_A, SAE_B,
						       (const uint8_t (*)[16])ra[N - 1].key_id,
						       1, outs, KEY_BYTES, &len, &bad, NULL), QKD_OK);
		assert_int_equal(len, 1);
		assert_int_equal(out[0][0], ka[N - 1]);
	}
	check_both(f);
	free(rb);
	free(ra);
}

/* ---- waiters ---- */

/* enc_keys at either end learns that its keys were accepted. */
static void test_waiter_accepted(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec rb[3], ra[1];
	uint8_t kb[3 * KEY_BYTES], ka[KEY_BYTES];
	struct waiter_run *wb, *wa;

	node_kme_set_up(&f->xa.kme, true);
	node_kme_set_up(&f->xb.kme, true);
	issue(f, f->b, BOB, SAE_B, SAE_A, KEY_BITS, rb, 3, kb);
	issue(f, f->a, ALICE, SAE_A, SAE_B, KEY_BITS, ra, 1, ka);
	wb = waiter_start(f, &f->xb.kme, rb, 3, 5000);
	wa = waiter_start(f, &f->xa.kme, ra, 1, 5000);
	assert_int_equal(settled(&f->xb.kme, &wb->w), 0);
	settle_ok(f);
	assert_int_equal(waiter_join(wb), QKD_OK);
	assert_int_equal(waiter_join(wa), QKD_OK);
	assert_true(wb->elapsed < 4.0 && wa->elapsed < 4.0);	/* woken, not timed out */
	assert_int_equal(wb->w.settled, 3);
	assert_false(wb->w.refused);
	for (size_t i = 0; i < 3; i++)
		assert_true(wb->done[i]);
	assert_int_equal(wa->w.settled, 1);
	assert_counts(f->a, 0, 3, 0, 0);
	assert_counts(f->b, 0, 1, 0, 0);
	deliver_same(f->a, SAE_B, SAE_A, rb, 3, kb);
	deliver_same(f->b, SAE_A, SAE_B, ra, 1, ka);
	check_both(f);
	qkd_wipe(kb, sizeof kb);
	qkd_wipe(ka, sizeof ka);
}

/* A record for a pair the peer does not serve is refused: its waiter gets
 * QKD_ERR_VERIFY, the record leaves the outbox, and the peer consumed its
 * bits all the same. */
static void test_waiter_refused(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec good[1], z[1], c[1];
	uint8_t kg[KEY_BYTES], kz[KEY_BYTES], kc[KEY_BYTES];
	uint8_t out[8][KEY_BYTES];
	size_t lens[8];
	struct qkd_kme_rec az[1];
	uint8_t kaz[KEY_BYTES];
	struct waiter_run *wg, *wz, *wc, *waz;

	node_kme_set_up(&f->xa.kme, true);
	node_kme_set_up(&f->xb.kme, true);
	issue(f, f->b, BOB, SAE_B, SAE_A, KEY_BITS, good, 1, kg);
	issue(f, f->b, BOB, SAE_B, SAE_Z, KEY_BITS, z, 1, kz);	/* slave unknown to Alice */
	issue(f, f->b, BOB, SAE_C, SAE_A, KEY_BITS, c, 1, kc);	/* master behind another link */
	issue(f, f->a, ALICE, SAE_A, SAE_Z, KEY_BITS, az, 1, kaz);	/* unknown to Bob */
	wg = waiter_start(f, &f->xb.kme, good, 1, 5000);
	wz = waiter_start(f, &f->xb.kme, z, 1, 5000);
	wc = waiter_start(f, &f->xb.kme, c, 1, 5000);
	waz = waiter_start(f, &f->xa.kme, az, 1, 5000);
	settle_ok(f);
	assert_int_equal(waiter_join(wg), QKD_OK);
	assert_int_equal(waiter_join(wz), QKD_ERR_VERIFY);
	assert_int_equal(waiter_join(wc), QKD_ERR_VERIFY);
	assert_int_equal(waiter_join(waz), QKD_ERR_VERIFY);	/* Bob's KME_ANSWER */
	assert_true(wz->elapsed < 4.0 && wc->elapsed < 4.0 && waz->elapsed < 4.0);
	assert_true(wz->w.refused && wc->w.refused && waz->w.refused);
	assert_counts(f->b, 0, 0, 0, 1);		/* refused records left the outboxes */
	assert_counts(f->a, 0, 1, 0, 2);
	assert_true(logged(f, "SAE_A -> SAE_Z refused"));
	/* Alice says why, in her log (the wording is the store's) */
	assert_true(logged(f, "SAE_B -> SAE_Z refused"));
	assert_true(logged(f, "SAE_C -> SAE_A refused"));
	assert_false(logged(f, "SAE_B -> SAE_A"));
	assert_int_equal(consumed_bits(f->a), 4 * KEY_BITS);
	assert_int_equal(consumed_bits(f->b), 4 * KEY_BITS);
	assert_int_equal(deliver(f->a, SAE_B, SAE_Z, z, 1, out, lens), QKD_ERR_INVAL);
	assert_int_equal(deliver(f->b, SAE_A, SAE_Z, az, 1, out, lens), QKD_ERR_INVAL);
	assert_int_equal(deliver(f->a, SAE_C, SAE_A, c, 1, out, lens), QKD_ERR_INVAL);
	deliver_same(f->a, SAE_B, SAE_A, good, 1, kg);
	/* a refusal is for good: sent again, the same answer, nothing consumed */
	{
		enum qkd_kme_verdict v = QKD_KME_ACCEPTED;

		assert_int_equal(qkd_store_kme_accept(f->a, BOB, &z[0], false, &v, NULL), QKD_OK);
		assert_int_equal(v, QKD_KME_REFUSED);
		assert_int_equal(consumed_bits(f->a), 4 * KEY_BITS);
	}
	check_both(f);
	qkd_wipe(kaz, sizeof kaz);
	qkd_wipe(kg, sizeof kg);
	qkd_wipe(kz, sizeof kz);
	qkd_wipe(kc, sizeof kc);
}

/* Nobody pumps: the waiter gives up at its deadline; the record stays in
 * the outbox and the services still settle it once they run. */
static void test_waiter_timeout(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec rb[1];
	uint8_t kb[KEY_BYTES];
	struct waiter_run *w;

	node_kme_set_up(&f->xb.kme, true);
	issue(f, f->b, BOB, SAE_B, SAE_A, KEY_BITS, rb, 1, kb);
	w = waiter_start(f, &f->xb.kme, rb, 1, 200);
	assert_int_equal(waiter_join(w), QKD_ERR_IO);
	assert_true(w->elapsed >= 0.15 && w->elapsed < 3.0);
	assert_int_equal(w->w.settled, 0);
	assert_counts(f->b, 1, 0, 0, 0);
	settle_ok(f);
	assert_counts(f->b, 0, 0, 0, 0);
	assert_counts(f->a, 0, 1, 0, 0);
	assert_int_equal(consumed_bits(f->a), consumed_bits(f->b));
	check_both(f);
	qkd_wipe(kb, sizeof kb);
}

/* The link going down wakes a waiter with QKD_ERR_EOF; while it is down a
 * waiter returns at once. */
static void test_waiter_link_down(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec rb[1];
	uint8_t kb[KEY_BYTES];
	struct waiter_run *w;
	struct node_kme_waiter d;
	bool dd[1];
	struct timespec dl;
	double t0;

	node_kme_set_up(&f->xb.kme, true);
	issue(f, f->b, BOB, SAE_B, SAE_A, KEY_BITS, rb, 1, kb);
	w = waiter_start(f, &f->xb.kme, rb, 1, 5000);
	node_kme_set_up(&f->xb.kme, false);
	assert_int_equal(waiter_join(w), QKD_ERR_EOF);
	assert_true(w->elapsed < 3.0);
	assert_counts(f->b, 1, 0, 0, 0);

	memset(&d, 0, sizeof d);
	d.recs = rb;
	d.n = 1;
	d.done = dd;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += 5;
	t0 = mono_now();
	assert_int_equal(node_kme_wait(&f->xb.kme, &d, &dl), QKD_ERR_EOF);
	assert_true(mono_now() - t0 < 3.0);
	assert_null(f->xb.kme.waiters);
	check_both(f);
	qkd_wipe(kb, sizeof kb);
}

/* ---- LATER ---- */

/* A record naming a block still PENDING at the peer stays in the master's
 * outbox (its waiter keeps waiting) while the service sends it again and
 * again, and goes through once the block is final there. Both
 * directions at once. */
static void test_later_then_accepted(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec fa[2], fb[2], la[1], lb[1];
	uint8_t big[2 * BLOCK_BITS / 8], ka[KEY_BYTES], kb[KEY_BYTES];
	struct waiter_run *wa, *wb;
	bool found = false;
	struct qkd_store_block blk;
	uint64_t sa, sb;

	/* empty the blocks both ends hold final, then the newest ones: block 4
	 * final at Alice, pending at Bob; block 5 final at Bob, pending at
	 * Alice */
	issue(f, f->a, ALICE, SAE_A, SAE_B, BLOCK_BITS, fa, 2, big);
	issue(f, f->b, BOB, SAE_B, SAE_A, BLOCK_BITS, fb, 2, big);
	put_block(f->a, f->blocks[4], 4, true);
	put_block(f->b, f->blocks[4], 4, false);
	put_block(f->b, f->blocks[5], 5, true);
	put_block(f->a, f->blocks[5], 5, false);
	issue(f, f->a, ALICE, SAE_A, SAE_B, KEY_BITS, la, 1, ka);
	issue(f, f->b, BOB, SAE_B, SAE_A, KEY_BITS, lb, 1, kb);
	assert_int_equal(la[0].segs[0].id, 4);
	assert_int_equal(lb[0].segs[0].id, 5);
	node_kme_set_up(&f->xa.kme, true);
	node_kme_set_up(&f->xb.kme, true);
	wa = waiter_start(f, &f->xa.kme, la, 1, 8000);
	wb = waiter_start(f, &f->xb.kme, lb, 1, 8000);

	/* each end's batch and answer, and something more from each: a retry
	 * or the answer to one, so both first batches were answered */
	for (int i = 0; i < 100 && (sent(f->xa.mux) < 3 || sent(f->xb.mux) < 3); i++)
		assert_int_equal(pump_for(f, 0.1), QKD_OK);
	assert_null(qkd_mux_error(f->xa.mux));
	assert_null(qkd_mux_error(f->xb.mux));
	sa = sent(f->xa.mux);
	sb = sent(f->xb.mux);
	assert_true(sa >= 3 && sb >= 3);
	assert_counts(f->a, 1, 2, 0, 0);	/* la stays; fb taken in */
	assert_counts(f->b, 1, 2, 0, 0);
	assert_true(registered(&f->xa.kme, &wa->w));
	assert_true(registered(&f->xb.kme, &wb->w));
	assert_int_equal(settled(&f->xa.kme, &wa->w), 0);
	assert_int_equal(settled(&f->xb.kme, &wb->w), 0);
	assert_int_equal(qkd_store_lookup(f->b, 4, &blk, &found, NULL), QKD_OK);
	assert_true(found && blk.state == QKD_STORE_PENDING && blk.consumed == 0);
	assert_int_equal(qkd_store_lookup(f->a, 5, &blk, &found, NULL), QKD_OK);
	assert_true(found && blk.state == QKD_STORE_PENDING && blk.consumed == 0);
	/* LATER again and again while the blocks stay pending */
	for (int i = 0; i < 100 && (sent(f->xa.mux) <= sa + 1 || sent(f->xb.mux) <= sb + 1); i++)
		assert_int_equal(pump_for(f, 0.1), QKD_OK);
	assert_true(sent(f->xa.mux) > sa + 1 && sent(f->xb.mux) > sb + 1);
	assert_counts(f->a, 1, 2, 0, 0);
	assert_counts(f->b, 1, 2, 0, 0);
	assert_false(node_kme_service_idle(f->xa.kme.svc));

	assert_int_equal(qkd_store_finalize(f->b, 4, NULL), QKD_OK);
	assert_int_equal(qkd_store_finalize(f->a, 5, NULL), QKD_OK);
	settle_ok(f);
	assert_int_equal(waiter_join(wa), QKD_OK);
	assert_int_equal(waiter_join(wb), QKD_OK);
	assert_counts(f->a, 0, 3, 0, 0);
	assert_counts(f->b, 0, 3, 0, 0);
	assert_int_equal(consumed_bits(f->a), consumed_bits(f->b));
	assert_int_equal(consumed_bits(f->a), 4 * BLOCK_BITS + 2 * KEY_BITS);
	deliver_same(f->b, SAE_A, SAE_B, la, 1, ka);
	deliver_same(f->a, SAE_B, SAE_A, lb, 1, kb);
	check_both(f);
	qkd_wipe(big, sizeof big);
	qkd_wipe(ka, sizeof ka);
	qkd_wipe(kb, sizeof kb);
}

/* The retry against a hand-made Bob: after a LATER the record goes again,
 * not before RETRY_LATER_S, and after an ACCEPTED it does not. */
static void test_later_retry(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec ra[1], *in = calloc(NODE_KME_BATCH_MAX, sizeof *in);
	struct node_kme_verdict v[1];
	enum qkd_kme_verdict acc = QKD_KME_LATER;
	uint8_t ka[KEY_BYTES];
	struct qkd_wbuf body, ans;
	struct waiter_run *w;
	double t0 = 0;

	assert_non_null(in);
	qkd_wbuf_init(&body);
	qkd_wbuf_init(&ans);
	hand_bob(f);
	node_kme_set_up(&f->xa.kme, true);
	issue(f, f->a, ALICE, SAE_A, SAE_B, KEY_BITS, ra, 1, ka);
	w = waiter_start(f, &f->xa.kme, ra, 1, 8000);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(hand_read(&f->cha, &f->chb, &body), KME_BATCH);
		assert_int_equal(get_batch(&body, in), 1);
		assert_memory_equal(in[0].key_id, ra[0].key_id, 16);
		/* not before RETRY_LATER_S; soon after (the next tick at most) */
		if (i > 0 && (mono_now() - t0 < RETRY_LATER_S || mono_now() - t0 > 2.0))
			fail_msg("sent again %.3f s after LATER", mono_now() - t0);
		memcpy(v[0].key_id, ra[0].key_id, 16);
		v[0].v = QKD_KME_LATER;
		qkd_wbuf_reset(&ans);
		put_answer(&ans, v, 1);
		hand_send(&f->chb, KME_ANSWER, &ans);
		t0 = mono_now();
		assert_int_equal(qkd_channel_pump(&f->cha), QKD_OK);
		assert_counts(f->a, 1, 0, 0, 0);
		assert_int_equal(settled(&f->xa.kme, &w->w), 0);
	}
	/* now Bob takes it in */
	assert_int_equal(hand_read(&f->cha, &f->chb, &body), KME_BATCH);
	assert_int_equal(get_batch(&body, in), 1);
	assert_int_equal(qkd_store_kme_accept(f->b, ALICE, &in[0], true, &acc, NULL), QKD_OK);
	assert_int_equal(acc, QKD_KME_ACCEPTED);
	v[0].v = QKD_KME_ACCEPTED;
	qkd_wbuf_reset(&ans);
	put_answer(&ans, v, 1);
	hand_send(&f->chb, KME_ANSWER, &ans);
	assert_int_equal(qkd_channel_pump(&f->cha), QKD_OK);
	assert_int_equal(waiter_join(w), QKD_OK);
	assert_counts(f->a, 0, 0, 0, 0);
	/* past a retry period and a tick: nothing more goes */
	t0 = mono_now();
	while (mono_now() - t0 < 3 * RETRY_LATER_S + QKD_MUX_TICK_MS / 1000.0) {
		assert_int_equal(qkd_channel_pump(&f->cha), QKD_OK);
		usleep(5000);
	}
	assert_true(nothing_sent(f->sv[1]));
	assert_true(node_kme_service_idle(f->xa.kme.svc));
	deliver_same(f->b, SAE_A, SAE_B, ra, 1, ka);
	check_both(f);
	qkd_wbuf_cleanup(&body);
	qkd_wbuf_cleanup(&ans);
	free(in);
	qkd_wipe(ka, sizeof ka);
}

/* ---- lost verdicts ---- */

/* The peer took the record in, but its verdict never reached the master:
 * the record goes again and is accepted once, its bits consumed once. */
static void test_resend_after_lost_verdict(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec rb[2];
	uint8_t kb[2 * KEY_BYTES];
	enum qkd_kme_verdict v = QKD_KME_LATER;
	const char *why = "unset";

	issue(f, f->b, BOB, SAE_B, SAE_A, KEY_BITS, rb, 2, kb);
	assert_int_equal(qkd_store_kme_accept(f->a, BOB, &rb[0], true, &v, &why), QKD_OK);
	assert_int_equal(v, QKD_KME_ACCEPTED);
	assert_int_equal(consumed_bits(f->a), KEY_BITS);
	assert_counts(f->a, 0, 1, 0, 0);
	assert_counts(f->b, 2, 0, 0, 0);

	settle_ok(f);
	assert_counts(f->b, 0, 0, 0, 0);
	assert_counts(f->a, 0, 2, 0, 0);
	assert_int_equal(consumed_bits(f->a), 2 * KEY_BITS);
	assert_int_equal(consumed_bits(f->b), 2 * KEY_BITS);
	deliver_same(f->a, SAE_B, SAE_A, rb, 2, kb);
	check_both(f);
	qkd_wipe(kb, sizeof kb);
}

/* The same over the channel. Bob's record: Alice takes it in and answers,
 * but the connection drops before the answer reaches Bob (a hand-made Bob
 * reads and drops it). Alice's record: the same the other way round, on
 * the next connection, where Bob sends his record again unasked. On the
 * third connection both records go again: each accepted once. */
static void test_resend_over_channel(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec rb[1], ra[1], out[4], *in = calloc(NODE_KME_BATCH_MAX, sizeof *in);
	struct node_kme_verdict v[4];
	uint8_t kb[KEY_BYTES], ka[KEY_BYTES];
	struct qkd_wbuf w, body;
	struct waiter_run *wb;
	size_t n = 0;

	assert_non_null(in);
	qkd_wbuf_init(&w);
	qkd_wbuf_init(&body);
	node_kme_set_up(&f->xb.kme, true);
	issue(f, f->b, BOB, SAE_B, SAE_A, KEY_BITS, rb, 1, kb);
	issue(f, f->a, ALICE, SAE_A, SAE_B, KEY_BITS, ra, 1, ka);

	/* Bob by hand: his batch goes, Alice's batch and answer come, and the
	 * connection drops */
	hand_bob(f);
	assert_int_equal(qkd_store_kme_outbox(f->b, out, 4, &n, NULL), QKD_OK);
	assert_int_equal(n, 1);
	put_batch(&w, out, n);
	hand_send(&f->chb, KME_BATCH, &w);
	assert_int_equal(hand_read(&f->cha, &f->chb, &body), KME_BATCH);
	assert_int_equal(get_batch(&body, in), 1);
	assert_memory_equal(in[0].key_id, ra[0].key_id, 16);
	assert_int_equal(hand_read(&f->cha, &f->chb, &body), KME_ANSWER);
	assert_int_equal(get_answer(&body, v), 1);
	assert_memory_equal(v[0].key_id, rb[0].key_id, 16);
	assert_int_equal(v[0].v, QKD_KME_ACCEPTED);
	assert_counts(f->a, 1, 1, 0, 0);	/* Bob's record taken in; hers unsettled */
	assert_counts(f->b, 1, 0, 0, 0);
	reconnect(f, false, true);

	/* Alice by hand: her record goes, Bob's batch (his record again) and
	 * his answer come, and the connection drops */
	qkd_wbuf_reset(&w);
	put_batch(&w, ra, 1);
	hand_send(&f->cha, KME_BATCH, &w);
	assert_int_equal(hand_read(&f->chb, &f->cha, &body), KME_BATCH);
	assert_int_equal(get_batch(&body, in), 1);
	assert_memory_equal(in[0].key_id, rb[0].key_id, 16);
	assert_int_equal(hand_read(&f->chb, &f->cha, &body), KME_ANSWER);
	assert_int_equal(get_answer(&body, v), 1);
	assert_memory_equal(v[0].key_id, ra[0].key_id, 16);
	assert_int_equal(v[0].v, QKD_KME_ACCEPTED);
	assert_counts(f->b, 1, 1, 0, 0);	/* Alice's taken in; his unsettled */
	assert_counts(f->a, 1, 1, 0, 0);
	reconnect(f, true, true);

	/* the real thing: both sent again, each accepted once */
	wb = waiter_start(f, &f->xb.kme, rb, 1, 5000);
	settle_ok(f);
	assert_int_equal(waiter_join(wb), QKD_OK);
	assert_counts(f->a, 0, 1, 0, 0);
	assert_counts(f->b, 0, 1, 0, 0);
	assert_int_equal(consumed_bits(f->a), 2 * KEY_BITS);
	assert_int_equal(consumed_bits(f->b), 2 * KEY_BITS);
	deliver_same(f->a, SAE_B, SAE_A, rb, 1, kb);
	deliver_same(f->b, SAE_A, SAE_B, ra, 1, ka);
	check_both(f);
	qkd_wbuf_cleanup(&w);
	qkd_wbuf_cleanup(&body);
	free(in);
	qkd_wipe(kb, sizeof kb);
	qkd_wipe(ka, sizeof ka);
}

/* ---- malformed messages ---- */

/* A KME_BATCH that does not parse: Alice answers nothing, changes nothing,
 * and the connection's error says so; each case on a connection of its
 * own, as the link drops one that failed. */
static void test_malformed_batch(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec rb[1];
	struct node_kme_verdict v[4];
	uint8_t kb[KEY_BYTES];
	struct qkd_wbuf w[6], body;
	struct snap sa, sb;

	issue(f, f->b, BOB, SAE_B, SAE_A, KEY_BITS, rb, 1, kb);
	for (size_t i = 0; i < 6; i++)
		qkd_wbuf_init(&w[i]);
	qkd_wbuf_init(&body);
	node_kme_put_recs(&w[0], rb, 1);		/* truncated record */
	w[0].len -= 3;
	{
		/* count above the bound, one good record after it */
		struct qkd_wbuf t;

		qkd_wbuf_init(&t);
		node_kme_put_recs(&t, rb, 1);
		qkd_put_varint(&w[1], NODE_KME_BATCH_MAX + 1);
		qkd_put_bytes(&w[1], t.p + 1, t.len - 1);	/* the record after n = 1 */
		qkd_wbuf_cleanup(&t);
	}
	put_batch(&w[2], rb, 1);			/* a byte after the batch */
	qkd_put_u8(&w[2], 0);
	qkd_put_varint(&w[3], 1);			/* no segment */
	put_raw_rec(&w[3], 0x77, 5, 5, KEY_BITS, 0);
	qkd_put_varint(&w[4], 1);			/* 9 segments */
	put_raw_rec(&w[4], 0x77, 5, 5, 9 * 8, 9);
	qkd_put_varint(&w[5], 2);			/* good record, then a 65-byte ID */
	{
		struct qkd_wbuf t;

		qkd_wbuf_init(&t);
		node_kme_put_recs(&t, rb, 1);
		qkd_put_bytes(&w[5], t.p + 1, t.len - 1);
		qkd_wbuf_cleanup(&t);
	}
	put_raw_rec(&w[5], 0x78, 65, 5, KEY_BITS, 1);

	snap_take(f->a, &sa);
	snap_take(f->b, &sb);
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(w[i].err, 0);
		reconnect(f, true, false);
		assert_null(qkd_mux_error(f->xa.mux));
		hand_send(&f->chb, KME_BATCH, &w[i]);
		pump_refused(&f->cha, f->xa.mux, "malformed KME_BATCH");
		snap_same(f->a, &sa);
		assert_true(nothing_sent(f->sv[1]));
	}
	snap_same(f->b, &sb);
	/* the well-formed one goes through on a new connection */
	reconnect(f, true, false);
	qkd_wbuf_reset(&w[0]);
	put_batch(&w[0], rb, 1);
	hand_send(&f->chb, KME_BATCH, &w[0]);
	assert_int_equal(hand_read(&f->cha, &f->chb, &body), KME_ANSWER);
	assert_int_equal(get_answer(&body, v), 1);
	assert_int_equal(v[0].v, QKD_KME_ACCEPTED);
	assert_memory_equal(v[0].key_id, rb[0].key_id, 16);
	assert_counts(f->a, 0, 1, 0, 0);
	assert_null(qkd_mux_error(f->xa.mux));
	for (size_t i = 0; i < 6; i++)
		qkd_wbuf_cleanup(&w[i]);
	qkd_wbuf_cleanup(&body);
	check_both(f);
	qkd_wipe(kb, sizeof kb);
}

/* A KME_ANSWER that does not parse: Alice keeps her record in the outbox,
 * her waiter is not woken, and the connection's error says so; on the
 * next connection her batch goes again, and the real Bob settles it. */
static void test_malformed_answer(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec ra[1];
	uint8_t ka[KEY_BYTES];
	struct snap sa, sb;
	struct qkd_wbuf ans, body;
	struct waiter_run *w;
	struct qkd_kme_rec *in = calloc(NODE_KME_BATCH_MAX, sizeof *in);
	enum { NCASES = 5 };

	assert_non_null(in);
	node_kme_set_up(&f->xa.kme, true);
	issue(f, f->a, ALICE, SAE_A, SAE_B, KEY_BITS, ra, 1, ka);
	w = waiter_start(f, &f->xa.kme, ra, 1, 8000);
	qkd_wbuf_init(&ans);
	qkd_wbuf_init(&body);
	snap_take(f->a, &sa);
	snap_take(f->b, &sb);
	for (int c = 0; c < NCASES; c++) {
		qkd_wbuf_reset(&ans);
		switch (c) {
		case 0:	/* verdict byte 3 */
			qkd_put_varint(&ans, 1);
			qkd_put_bytes(&ans, ra[0].key_id, 16);
			qkd_put_u8(&ans, 3);
			node_kme_put_wds(&ans, NULL, 0);
			break;
		case 1:	/* count above the bound */
			qkd_put_varint(&ans, NODE_KME_BATCH_MAX + 1);
			qkd_put_bytes(&ans, ra[0].key_id, 16);
			qkd_put_u8(&ans, QKD_KME_ACCEPTED);
			node_kme_put_wds(&ans, NULL, 0);
			break;
		case 2:	/* truncated verdict */
			qkd_put_varint(&ans, 1);
			qkd_put_bytes(&ans, ra[0].key_id, 10);
			break;
		case 3:	/* a byte after the answers */
			qkd_put_varint(&ans, 1);
			qkd_put_bytes(&ans, ra[0].key_id, 16);
			qkd_put_u8(&ans, QKD_KME_ACCEPTED);
			node_kme_put_wds(&ans, NULL, 0);
			qkd_put_u8(&ans, 0);
			break;
		default: /* the withdrawals' answers missing */
			qkd_put_varint(&ans, 1);
			qkd_put_bytes(&ans, ra[0].key_id, 16);
			qkd_put_u8(&ans, QKD_KME_ACCEPTED);
			break;
		}
		assert_int_equal(ans.err, 0);
		/* Bob by hand, on a new connection: Alice's batch comes */
		reconnect(f, true, false);
		assert_int_equal(hand_read(&f->cha, &f->chb, &body), KME_BATCH);
		assert_int_equal(get_batch(&body, in), 1);
		assert_memory_equal(in[0].key_id, ra[0].key_id, 16);
		assert_int_equal(in[0].nsegs, ra[0].nsegs);
		hand_send(&f->chb, KME_ANSWER, &ans);
		pump_refused(&f->cha, f->xa.mux, "malformed KME_ANSWER");
		snap_same(f->a, &sa);
		assert_int_equal(settled(&f->xa.kme, &w->w), 0);
		assert_true(nothing_sent(f->sv[1]));
	}
	snap_same(f->b, &sb);
	reconnect(f, true, true);
	settle_ok(f);
	assert_int_equal(waiter_join(w), QKD_OK);
	assert_counts(f->a, 0, 0, 0, 0);
	assert_counts(f->b, 0, 1, 0, 0);
	deliver_same(f->b, SAE_A, SAE_B, ra, 1, ka);
	check_both(f);
	qkd_wbuf_cleanup(&ans);
	qkd_wbuf_cleanup(&body);
	free(in);
	qkd_wipe(ka, sizeof ka);
}

/* A KME_ANSWER with no KME_BATCH in flight is refused: with nothing ever
 * sent, and as a replay of the answer that just settled Alice's batch. */
static void test_answer_not_in_flight(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec ra[1], *in = calloc(NODE_KME_BATCH_MAX, sizeof *in);
	struct node_kme_verdict v[1];
	enum qkd_kme_verdict acc = QKD_KME_LATER;
	uint8_t ka[KEY_BYTES];
	struct qkd_wbuf ans, body;
	struct snap sa;
	struct waiter_run *w;

	assert_non_null(in);
	qkd_wbuf_init(&ans);
	qkd_wbuf_init(&body);
	hand_bob(f);
	/* nothing in Alice's outbox: nothing in flight */
	put_answer(&ans, NULL, 0);
	snap_take(f->a, &sa);
	hand_send(&f->chb, KME_ANSWER, &ans);
	pump_refused(&f->cha, f->xa.mux, "KME_ANSWER without a KME_BATCH in flight");
	snap_same(f->a, &sa);
	assert_true(nothing_sent(f->sv[1]));

	/* a record, its batch answered, and the same answer once more */
	reconnect(f, true, false);
	node_kme_set_up(&f->xa.kme, true);
	issue(f, f->a, ALICE, SAE_A, SAE_B, KEY_BITS, ra, 1, ka);
	w = waiter_start(f, &f->xa.kme, ra, 1, 5000);
	assert_int_equal(hand_read(&f->cha, &f->chb, &body), KME_BATCH);
	assert_int_equal(get_batch(&body, in), 1);
	assert_int_equal(qkd_store_kme_accept(f->b, ALICE, &in[0], true, &acc, NULL), QKD_OK);
	assert_int_equal(acc, QKD_KME_ACCEPTED);
	memcpy(v[0].key_id, ra[0].key_id, 16);
	v[0].v = QKD_KME_ACCEPTED;
	qkd_wbuf_reset(&ans);
	put_answer(&ans, v, 1);
	hand_send(&f->chb, KME_ANSWER, &ans);
	assert_int_equal(qkd_channel_pump(&f->cha), QKD_OK);
	assert_int_equal(waiter_join(w), QKD_OK);
	assert_counts(f->a, 0, 0, 0, 0);
	snap_take(f->a, &sa);
	hand_send(&f->chb, KME_ANSWER, &ans);
	pump_refused(&f->cha, f->xa.mux, "KME_ANSWER without a KME_BATCH in flight");
	snap_same(f->a, &sa);
	deliver_same(f->b, SAE_A, SAE_B, ra, 1, ka);
	check_both(f);
	qkd_wbuf_cleanup(&ans);
	qkd_wbuf_cleanup(&body);
	free(in);
	qkd_wipe(ka, sizeof ka);
}

/* The multiplexer's side of it: a service frame too short for its header
 * ends the connection with its reason; a message of a type the service
 * does not have (a newer peer) is dropped, counted, and the link goes on. */
static void test_service_frames(void **state)
{
	struct fix *f = *state;
	static const uint8_t shortf[1] = { QKD_SERVICE_KME };
	static const uint8_t newer[3] = { QKD_SERVICE_KME, 3, 0 };
	static const uint8_t other[2] = { 9, KME_BATCH };
	struct qkd_mux_stats st;
	struct qkd_kme_rec rb[1];
	uint8_t kb[KEY_BYTES];
	struct snap sa;

	hand_bob(f);
	snap_take(f->a, &sa);
	assert_int_equal(qkd_channel_send_service(&f->chb, newer, sizeof newer), QKD_OK);
	assert_int_equal(qkd_channel_send_service(&f->chb, other, sizeof other), QKD_OK);
	assert_int_equal(qkd_channel_pump(&f->cha), QKD_OK);
	qkd_mux_get_stats(f->xa.mux, &st);
	assert_int_equal(st.unknown, 2);
	assert_int_equal(st.delivered, 0);
	assert_true(logged(f, "service message(s) of a service or type this node does not have"));
	assert_null(qkd_mux_error(f->xa.mux));
	snap_same(f->a, &sa);
	assert_int_equal(qkd_channel_send_service(&f->chb, shortf, sizeof shortf), QKD_OK);
	pump_refused(&f->cha, f->xa.mux, "service frame too short for its header");
	snap_same(f->a, &sa);
	/* and a new connection works */
	reconnect(f, true, true);
	issue(f, f->b, BOB, SAE_B, SAE_A, KEY_BITS, rb, 1, kb);
	settle_ok(f);
	assert_counts(f->a, 0, 1, 0, 0);
	assert_counts(f->b, 0, 0, 0, 0);
	qkd_wipe(kb, sizeof kb);
}

/* ---- withdrawals and quarantines ---- */

/* enc_keys gave up on Bob's keys (abandoned): Alice retires her copy,
 * whether it was ready already or never arrived, and the outbox empties. */
static void test_withdrawals(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r1[1], r2[1];
	uint8_t k1[KEY_BYTES], k2[KEY_BYTES], id1[1][16], id2[1][16];
	struct qkd_kme_counts c;
	const char *why = NULL;

	issue(f, f->b, BOB, SAE_B, SAE_A, KEY_BITS, r1, 1, k1);
	settle_ok(f);
	assert_counts(f->a, 0, 1, 0, 0);
	assert_counts(f->b, 0, 0, 0, 0);
	/* settled, then abandoned: withdrawn all the same */
	memcpy(id1[0], r1[0].key_id, 16);
	assert_int_equal(qkd_store_kme_abandon(f->b, (const uint8_t (*)[16])id1, 1, &why), QKD_OK);
	issue(f, f->b, BOB, SAE_B, SAE_A, KEY_BITS, r2, 1, k2);
	memcpy(id2[0], r2[0].key_id, 16);
	assert_int_equal(qkd_store_kme_abandon(f->b, (const uint8_t (*)[16])id2, 1, &why), QKD_OK);
	settle_ok(f);
	c = counts(f->a);
	assert_int_equal(c.ready, 0);
	assert_int_equal(c.withdrawn, 2);
	assert_counts(f->b, 0, 0, 0, 0);
	/* The slave SAE cannot fetch either. */
	{
		uint8_t out[KEY_BYTES], *outs[1] = { out };
		size_t lens[1], bad = 0;

		assert_int_not_equal(qkd_store_kme_deliver(f->a, SAE_B, SAE_A,
							   (const uint8_t (*)[16])id1, 1, outs,
							   sizeof out, lens, &bad, &why), QKD_OK);
	}
	settle_ok(f);
	assert_int_equal(counts(f->a).withdrawn, 2);
	check_both(f);
	qkd_wipe(k1, sizeof k1);
	qkd_wipe(k2, sizeof k2);
}

/* A block whose bits rot at Bob's end is quarantined there at start-up,
 * reported in his next batch, retired at Alice's end, and reported once. */
static void test_quarantine_report(void **state)
{
	struct fix *f = *state;
	struct qkd_store_block b;
	uint64_t bad = 0, ids[4];
	size_t n = 9;
	bool found = false;
	const char *why = NULL;
	sqlite3 *db;
	uint64_t sb;

	assert_int_equal(sqlite3_open(f->pb, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE qbits SET bits = CAST(x'01' || substr(bits, 2) "
				      "AS BLOB) WHERE id = 2", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(qkd_store_verify_all(f->b, &bad, &why), QKD_OK);
	assert_true(bad == 1);
	assert_int_equal(qkd_store_quarantine_unreported(f->b, ids, 4, &n, &why), QKD_OK);
	assert_true(n == 1 && ids[0] == 2);
	settle_ok(f);
	assert_int_equal(qkd_store_lookup(f->a, 2, &b, &found, &why), QKD_OK);
	assert_true(found && b.state == QKD_STORE_QUARANTINED);
	assert_int_equal(qkd_store_quarantine_unreported(f->b, ids, 4, &n, &why), QKD_OK);
	assert_true(n == 0);
	assert_int_equal(qkd_store_quarantine_unreported(f->a, ids, 4, &n, &why), QKD_OK);
	assert_true(n == 0);
	assert_true(logged(f, "block 2 quarantined at the peer"));
	/* reported once: kicked again, Bob sends nothing */
	sb = sent(f->xb.mux);
	settle_ok(f);
	assert_int_equal(sent(f->xb.mux), sb);
}

/* ---- records no honest peer sends ---- */

/* A KME_BATCH of records that are well-formed on the wire but wrong for
 * the store: Alice answers each (never a store error, which would drop the
 * link for good as the record came again), consumes only what she must,
 * and gives the same answers when they come again. */
static void test_hostile_records(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r[12];
	static const enum qkd_kme_verdict want[12] = {
		QKD_KME_ACCEPTED,	/* 0: good */
		QKD_KME_ACCEPTED,	/* 1: the same again in the same message */
		QKD_KME_REFUSED,	/* 2: another key_id on the same bits */
		QKD_KME_REFUSED,	/* 3: key_id of 0, other bits */
		QKD_KME_REFUSED,	/* 4: Alice's half */
		QKD_KME_REFUSED,	/* 5: past the block's end */
		QKD_KME_REFUSED,	/* 6: block id out of range */
		QKD_KME_REFUSED,	/* 7: offset + length wraps around */
		QKD_KME_REFUSED,	/* 8: not whole bytes */
		QKD_KME_REFUSED,	/* 9: segments short of the length */
		QKD_KME_REFUSED,	/* 10: pair not served (bits consumed) */
		QKD_KME_LATER,		/* 11: a block Alice does not have */
	};
	struct node_kme_verdict *v = calloc(NODE_KME_BATCH_MAX, sizeof *v);
	struct qkd_wbuf batch, body;
	size_t nv;

	assert_non_null(v);
	r[0] = seg_rec(0x10, SAE_A, KEY_BITS, 1, 0, KEY_BITS);
	r[1] = r[0];
	r[2] = seg_rec(0x12, SAE_A, KEY_BITS, 1, 0, KEY_BITS);
	r[3] = seg_rec(0x10, SAE_A, KEY_BITS, 1, KEY_BITS, KEY_BITS);
	r[4] = seg_rec(0x14, SAE_A, KEY_BITS, 0, 0, KEY_BITS);
	r[5] = seg_rec(0x15, SAE_A, KEY_BITS, 1, BLOCK_BITS - 8, KEY_BITS);
	r[6] = seg_rec(0x16, SAE_A, KEY_BITS, UINT64_MAX, 0, KEY_BITS);
	r[7] = seg_rec(0x17, SAE_A, KEY_BITS, 1, UINT64_MAX - 7, KEY_BITS);
	r[8] = seg_rec(0x18, SAE_A, 100, 1, 1024, 100);
	r[9] = seg_rec(0x19, SAE_A, KEY_BITS, 1, 1024, KEY_BITS / 2);
	r[10] = seg_rec(0x1a, SAE_Z, KEY_BITS, 3, 0, KEY_BITS);
	r[11] = seg_rec(0x1b, SAE_A, KEY_BITS, 1001, 0, KEY_BITS);
	qkd_wbuf_init(&batch);
	qkd_wbuf_init(&body);
	put_batch(&batch, r, 12);
	hand_bob(f);
	for (int round = 0; round < 2; round++) {
		hand_send(&f->chb, KME_BATCH, &batch);
		assert_int_equal(hand_read(&f->cha, &f->chb, &body), KME_ANSWER);
		nv = get_answer(&body, v);
		assert_int_equal(nv, 12);
		assert_null(qkd_mux_error(f->xa.mux));
		for (size_t i = 0; i < 12; i++) {
			assert_memory_equal(v[i].key_id, r[i].key_id, 16);
			if (v[i].v != want[i])
				fail_msg("round %d, record %zu: verdict %d, want %d", round, i,
					 (int)v[i].v, (int)want[i]);
		}
		/* r0 once, r10 (refused, its bits gone at both ends) */
		assert_int_equal(consumed_bits(f->a), 2 * KEY_BITS);
		assert_int_equal(counts(f->a).ready, 1);
		check_ok(f->a);
	}
	/* an answer, nothing else: Alice has nothing of her own to send */
	assert_int_equal(qkd_channel_pump(&f->cha), QKD_OK);
	assert_true(nothing_sent(f->sv[1]));
	check_both(f);
	qkd_wbuf_cleanup(&batch);
	qkd_wbuf_cleanup(&body);
	free(v);
}

/* The order enc() keeps (lib/kme/node_kme.c): the waiter is registered
 * with its key_IDs before the records reach the outbox, so a verdict that
 * arrives at once (the link thread settled them before the request got
 * to wait) is not missed. This once was a lost wake-up: the request
 * waited out sync_timeout for verdicts that had come and gone. */
static void test_waiter_after_verdict(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec rb[1];
	uint8_t kb[KEY_BYTES];
	struct waiter_run *w;
	const char *why = NULL;

	node_kme_set_up(&f->xb.kme, true);
	rb[0] = mkrec(f, SAE_B, SAE_A, KEY_BITS);
	w = waiter_start(f, &f->xb.kme, rb, 1, 2000);			/* enc: registered */
	assert_int_equal(qkd_store_kme_issue(f->b, BOB, rb, 1, kb, sizeof kb, &why), QKD_OK);
	settle_ok(f);							/* the link thread */
	assert_counts(f->a, 0, 1, 0, 0);				/* accepted at Alice */
	assert_int_equal(waiter_join(w), QKD_OK);
	check_both(f);
	qkd_wipe(kb, sizeof kb);
}

/* ---- the channel's waits ---- */

/* Kicks the key manager's service as enc_keys does, every 20 ms, until
 * told to stop or until a deadline. */
struct kicker {
	struct qkd_link_kme *k;
	atomic_bool stop;
	double until;
};

static void *kick_main(void *arg)
{
	struct kicker *kk = arg;

	while (!atomic_load(&kk->stop) && mono_now() < kk->until) {
		node_kme_kick(kk->k);
		usleep(20000);
	}
	return NULL;
}

/* A wait for the peer's next frame stays bounded by the socket's receive
 * timeout while the services are woken more often than every tick
 * (enc_keys requests arriving faster than QKD_MUX_TICK_MS): a peer gone
 * silent is still noticed. This once was not so: the channel counted only
 * the polls that timed out, so every wake put the timeout off. */
static void test_recv_timeout_while_kicked(void **state)
{
	struct fix *f = *state;
	struct timeval tv = { .tv_sec = 0, .tv_usec = 300000 };
	struct kicker kk;
	struct qkd_rbuf msg;
	pthread_t th;
	uint8_t type = 0;
	double t0, el;
	int rc;

	/* the channel takes the timeout from the socket when services attach */
	assert_int_equal(setsockopt(f->sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
	detach(f);
	attach(f, true, true);
	kk.k = &f->xa.kme;
	atomic_init(&kk.stop, false);
	kk.until = mono_now() + 4.0;
	assert_int_equal(pthread_create(&th, NULL, kick_main, &kk), 0);
	t0 = mono_now();
	rc = qkd_channel_recv(&f->cha, &type, &msg);
	el = mono_now() - t0;
	atomic_store(&kk.stop, true);
	assert_int_equal(pthread_join(th, NULL), 0);
	if (rc != QKD_ERR_IO || el < 0.25 || el > 2.0)
		fail_msg("recv: %d after %.3f s, want %d after 0.3 s", rc, el, QKD_ERR_IO);
}
/* ---- wire format ---- */

static void assert_rec_equal(const struct qkd_kme_rec *x, const struct qkd_kme_rec *y)
{
	assert_memory_equal(x->key_id, y->key_id, 16);
	assert_string_equal(x->master, y->master);
	assert_string_equal(x->slave, y->slave);
	assert_int_equal(x->nbits, y->nbits);
	assert_int_equal(x->nsegs, y->nsegs);
	for (size_t j = 0; j < x->nsegs; j++) {
		assert_true(x->segs[j].id == y->segs[j].id);
		assert_true(x->segs[j].offset == y->segs[j].offset);
		assert_true(x->segs[j].nbits == y->segs[j].nbits);
	}
}

/* Decode one records payload: the count, or -1 when refused. */
static long get_recs(const struct qkd_wbuf *w, struct qkd_kme_rec *out)
{
	struct qkd_rbuf r;
	size_t n;

	qkd_rbuf_init(&r, w->p, w->len);
	n = node_kme_get_recs(&r, out);
	if (!qkd_rbuf_ok(&r)) {
		assert_int_equal(n, 0);
		return -1;
	}
	return qkd_rbuf_done(&r) ? (long)n : -2;
}

static long get_verdicts(const struct qkd_wbuf *w, struct node_kme_verdict *out)
{
	struct qkd_rbuf r;
	size_t n;

	qkd_rbuf_init(&r, w->p, w->len);
	n = node_kme_get_verdicts(&r, out);
	if (!qkd_rbuf_ok(&r)) {
		assert_int_equal(n, 0);
		return -1;
	}
	return qkd_rbuf_done(&r) ? (long)n : -2;
}

static void test_wire_records(void **state)
{
	struct qkd_kme_rec *in = calloc(NODE_KME_BATCH_MAX + 1, sizeof *in);
	struct qkd_kme_rec *out = calloc(NODE_KME_BATCH_MAX, sizeof *out);
	struct qkd_wbuf w;

	(void)state;
	assert_non_null(in);
	assert_non_null(out);
	qkd_wbuf_init(&w);
	/* 8 segments, 64-byte IDs, the longest key, large coordinates */
	memset(in[0].key_id, 0xee, 16);
	memset(in[0].master, 'm', QKD_KME_SAE_ID_MAX);
	memset(in[0].slave, 's', QKD_KME_SAE_ID_MAX);
	in[0].nbits = QKD_KME_KEY_BITS_MAX;
	in[0].nsegs = QKD_KME_KEY_SEGS_MAX;
	for (size_t j = 0; j < QKD_KME_KEY_SEGS_MAX; j++)
		in[0].segs[j] = (struct qkd_store_seg){
			.id = QKD_STORE_ID_MAX - j, .offset = ((uint64_t)1 << 40) + j,
			.nbits = QKD_KME_KEY_BITS_MAX / QKD_KME_KEY_SEGS_MAX,
		};
	/* one segment, one-character IDs, the shortest key */
	for (size_t i = 0; i < 16; i++)
		in[1].key_id[i] = (uint8_t)i;
	snprintf(in[1].master, sizeof in[1].master, "A");
	snprintf(in[1].slave, sizeof in[1].slave, "B");
	in[1].nbits = 8;
	in[1].nsegs = 1;
	in[1].segs[0] = (struct qkd_store_seg){ .id = 0, .offset = 0, .nbits = 8 };
	/* something in between */
	memset(in[2].key_id, 0x01, 16);
	snprintf(in[2].master, sizeof in[2].master, "sae-master.1~x");
	snprintf(in[2].slave, sizeof in[2].slave, "%s", SAE_B);
	in[2].nbits = 1000;
	in[2].nsegs = 3;
	in[2].segs[0] = (struct qkd_store_seg){ .id = 127, .offset = 128, .nbits = 300 };
	in[2].segs[1] = (struct qkd_store_seg){ .id = 128, .offset = 16383, .nbits = 300 };
	in[2].segs[2] = (struct qkd_store_seg){ .id = 16384, .offset = 0, .nbits = 400 };
	node_kme_put_recs(&w, in, 3);
	assert_int_equal(w.err, 0);
	assert_int_equal(get_recs(&w, out), 3);
	for (size_t i = 0; i < 3; i++)
		assert_rec_equal(&out[i], &in[i]);
	/* every proper prefix is refused (the reader never reads past the end) */
	for (size_t len = 0; len < w.len; len++) {
		struct qkd_rbuf r;

		qkd_rbuf_init(&r, w.p, len);
		assert_int_equal(node_kme_get_recs(&r, out), 0);
		assert_false(qkd_rbuf_ok(&r));
	}

	/* none, and exactly the most a message may carry */
	qkd_wbuf_reset(&w);
	node_kme_put_recs(&w, in, 0);
	assert_int_equal(get_recs(&w, out), 0);
	for (size_t i = 3; i <= NODE_KME_BATCH_MAX; i++)
		in[i] = in[i % 3];
	qkd_wbuf_reset(&w);
	node_kme_put_recs(&w, in, NODE_KME_BATCH_MAX);
	assert_int_equal(get_recs(&w, out), NODE_KME_BATCH_MAX);
	assert_rec_equal(&out[NODE_KME_BATCH_MAX - 1], &in[NODE_KME_BATCH_MAX - 1]);
	/* one more is refused before anything is written to out */
	qkd_wbuf_reset(&w);
	node_kme_put_recs(&w, in, NODE_KME_BATCH_MAX + 1);
	assert_int_equal(get_recs(&w, out), -1);

	/* hand-made records the reader must refuse */
	{
		static const struct {
			size_t mlen, slen;
			uint64_t nbits, nsegs;
			long want;
		} c[] = {
			{ 64, 64, 64, 8, 1 },				/* the limits: fine */
			{ 65, 5, 64, 1, -1 },				/* 65-byte master */
			{ 5, 65, 64, 1, -1 },				/* 65-byte slave */
			{ 0, 5, 64, 1, -1 },				/* empty master */
			{ 5, 0, 64, 1, -1 },				/* empty slave */
			{ 5, 5, 64, 0, -1 },				/* no segment */
			{ 5, 5, 72, 9, -1 },				/* 9 segments */
			{ 5, 5, QKD_KME_KEY_BITS_MAX + 8, 1, -1 },	/* key too long */
		};

		for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
			qkd_wbuf_reset(&w);
			qkd_put_varint(&w, 1);
			put_raw_rec(&w, 0x42, c[i].mlen, c[i].slen, c[i].nbits, c[i].nsegs);
			if (get_recs(&w, out) != c[i].want)
				fail_msg("case %zu: %ld, want %ld", i, get_recs(&w, out), c[i].want);
		}
	}
	/* SAE IDs are of [A-Za-z0-9._~-] only: a byte of master's and of
	 * slave's, in the middle and at the end */
	{
		static const char bad[] = { ' ', '/', '%', ':', '@', '\n', '+', (char)0x80 };
		static const char good[] = { '.', '_', '~', '-', 'z', 'Z', '0', '9' };
		static const size_t pos[] = { 18 + 2, 18 + 4, 18 + 5 + 1 + 2, 18 + 5 + 1 + 4 };

		for (size_t p = 0; p < sizeof pos / sizeof pos[0]; p++)
			for (size_t i = 0; i < sizeof bad; i++) {
				qkd_wbuf_reset(&w);
				qkd_put_varint(&w, 1);
				put_raw_rec(&w, 0x42, 5, 5, 64, 1);
				assert_int_equal(w.p[pos[p]], p < 2 ? 'M' : 'S');
				w.p[pos[p]] = (uint8_t)bad[i];
				if (get_recs(&w, out) != -1)
					fail_msg("byte 0x%02x at %zu accepted", (uint8_t)bad[i], pos[p]);
				w.p[pos[p]] = (uint8_t)good[i];
				assert_int_equal(get_recs(&w, out), 1);
				assert_int_equal(strlen(out[0].master), 5);
				assert_int_equal(strlen(out[0].slave), 5);
			}
	}
	/* a segment coordinate that is not a varint (11 bytes of 0x80...) */
	qkd_wbuf_reset(&w);
	qkd_put_varint(&w, 1);
	put_raw_rec(&w, 0x42, 5, 5, 64, 1);
	w.len -= 3;				/* drop id, offset, nbits of the segment */
	for (int i = 0; i < 11; i++)
		qkd_put_u8(&w, 0x80);
	qkd_put_u8(&w, 0);
	qkd_put_u8(&w, 8);
	assert_int_equal(get_recs(&w, out), -1);
	qkd_wbuf_cleanup(&w);
	free(in);
	free(out);
}

/* A NUL byte inside an SAE ID is not of the ID alphabet either: "SAE_B"
 * followed by NUL and more bytes must not read as "SAE_B" (two encodings
 * of one record, and what the peer meant is not what is recorded). */
static void test_wire_id_nul(void **state)
{
	/* static: nothing to free when an assertion leaves the test */
	static struct qkd_kme_rec out[NODE_KME_BATCH_MAX];
	static const size_t pos[] = { 18 + 2, 18 + 4, 18 + 5 + 1 + 2, 18 + 5 + 1 + 4 };
	uint8_t msg[128];
	size_t len;
	struct qkd_wbuf w;

	(void)state;
	qkd_wbuf_init(&w);
	qkd_put_varint(&w, 1);
	put_raw_rec(&w, 0x42, 5, 5, 64, 1);
	assert_true(w.err == 0 && w.len <= sizeof msg);
	memcpy(msg, w.p, w.len);
	len = w.len;
	qkd_wbuf_cleanup(&w);
	for (size_t p = 0; p < sizeof pos / sizeof pos[0]; p++) {
		struct qkd_rbuf r;
		uint8_t m[128];
		size_t n;

		memcpy(m, msg, len);
		m[pos[p]] = 0;
		qkd_rbuf_init(&r, m, len);
		n = node_kme_get_recs(&r, out);
		if (qkd_rbuf_ok(&r))
			fail_msg("NUL at byte %zu accepted (%zu record): master \"%s\", slave \"%s\"",
				 pos[p], n, out[0].master, out[0].slave);
	}
}

static void test_wire_verdicts(void **state)
{
	struct node_kme_verdict *in = calloc(NODE_KME_BATCH_MAX + 1, sizeof *in);
	struct node_kme_verdict *out = calloc(NODE_KME_BATCH_MAX, sizeof *out);
	struct qkd_wbuf w;

	(void)state;
	assert_non_null(in);
	assert_non_null(out);
	qkd_wbuf_init(&w);
	for (size_t i = 0; i <= NODE_KME_BATCH_MAX; i++) {
		memset(in[i].key_id, (int)i, 16);
		in[i].key_id[0] = (uint8_t)(i >> 8);
		in[i].v = (enum qkd_kme_verdict)(i % 3);
	}
	node_kme_put_verdicts(&w, in, 3);
	assert_int_equal(w.len, 1 + 3 * 17);
	assert_int_equal(get_verdicts(&w, out), 3);
	for (size_t i = 0; i < 3; i++) {
		assert_memory_equal(out[i].key_id, in[i].key_id, 16);
		assert_int_equal(out[i].v, in[i].v);
	}
	for (size_t len = 0; len < w.len; len++) {
		struct qkd_rbuf r;

		qkd_rbuf_init(&r, w.p, len);
		assert_int_equal(node_kme_get_verdicts(&r, out), 0);
		assert_false(qkd_rbuf_ok(&r));
	}
	/* a verdict byte out of range */
	for (unsigned bad = 3; bad < 256; bad += 84) {
		w.p[1 + 2 * 17 + 16] = (uint8_t)bad;	/* the third verdict's byte */
		assert_int_equal(get_verdicts(&w, out), -1);
	}
	qkd_wbuf_reset(&w);
	node_kme_put_verdicts(&w, in, 0);
	assert_int_equal(get_verdicts(&w, out), 0);
	qkd_wbuf_reset(&w);
	node_kme_put_verdicts(&w, in, NODE_KME_BATCH_MAX);
	assert_int_equal(get_verdicts(&w, out), NODE_KME_BATCH_MAX);
	assert_memory_equal(out[NODE_KME_BATCH_MAX - 1].key_id,
			    in[NODE_KME_BATCH_MAX - 1].key_id, 16);
	qkd_wbuf_reset(&w);
	node_kme_put_verdicts(&w, in, NODE_KME_BATCH_MAX + 1);
	assert_int_equal(get_verdicts(&w, out), -1);
	qkd_wbuf_cleanup(&w);
	free(in);
	free(out);
}

/* The key manager's lifecycle thread (node_kme_janitor.c): a pass at an
 * explicit time expires Bob's unfetched key only once it is key_ttl old,
 * and publishes the counts in the link's status; the thread itself runs a
 * pass at once and stops promptly. */
static void test_janitor(void **state)
{
	struct fix *f = *state;
	struct qkd_kme_rec r;
	struct node_kme_slot slot;
	struct node_kme_janitor j;
	struct qkd_link_status st;
	enum qkd_kme_verdict v = QKD_KME_LATER;
	uint8_t bits[32];
	int64_t t0 = (int64_t)time(NULL);

	assert_int_equal(node_kme_janitor_period(0), 60);
	assert_int_equal(node_kme_janitor_period(3), 1);
	assert_int_equal(node_kme_janitor_period(100), 25);
	assert_int_equal(node_kme_janitor_period(3600), 60);
	memset(&r, 0, sizeof r);
	memset(r.key_id, 0x3c, sizeof r.key_id);
	snprintf(r.master, sizeof r.master, "%s", SAE_A);
	snprintf(r.slave, sizeof r.slave, "%s", SAE_B);
	r.nbits = 256;
	assert_int_equal(qkd_store_kme_issue(f->a, QKD_KME_PARITY_ALICE, &r, 1, bits, sizeof bits,
					     NULL), QKD_OK);
	assert_int_equal(qkd_store_kme_accept(f->b, QKD_KME_PARITY_ALICE, &r, true, &v, NULL),
			 QKD_OK);
	assert_int_equal(v, QKD_KME_ACCEPTED);

	assert_int_equal(pthread_mutex_init(&slot.lock, NULL), 0);
	slot.st = f->b;
	memset(&j, 0, sizeof j);
	j.slots = &slot;
	j.links = &f->xb;
	j.nlinks = 1;
	j.ttl_s = 100;
	j.log = &f->log;
	node_kme_janitor_pass(&j, t0 + 50);
	qkd_link_status_get(&f->xb, &st);
	assert_int_equal(st.kme_ready, 1);
	assert_int_equal(st.kme_expired, 0);
	assert_false(logged(f, "expired unfetched"));
	node_kme_janitor_pass(&j, t0 + 200);
	qkd_link_status_get(&f->xb, &st);
	assert_int_equal(st.kme_ready, 0);
	assert_int_equal(st.kme_expired, 1);
	assert_int_equal(st.kme_lost_bits, 256);
	assert_true(logged(f, "link ab: 1 ready key(s) expired unfetched after 100 s"));

	/* the thread: a first pass at once (the status is published), then a
	 * prompt stop although its period is 25 s */
	memset(&f->xb.status, 0, sizeof f->xb.status);
	assert_int_equal(node_kme_janitor_start(&j), QKD_OK);
	for (int i = 0; i < 500; i++) {
		qkd_link_status_get(&f->xb, &st);
		if (st.kme_expired == 1)
			break;
		usleep(10000);
	}
	assert_int_equal(st.kme_expired, 1);
	node_kme_janitor_stop(&j);
	assert_false(j.running);
	node_kme_janitor_stop(&j);	/* twice: nothing */
	pthread_mutex_destroy(&slot.lock);
	qkd_wipe(bits, sizeof bits);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exchange_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exchange_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiter_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiter_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiter_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiter_link_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_later_then_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_later_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resend_after_lost_verdict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resend_over_channel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_not_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_withdrawals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quarantine_report, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiter_after_verdict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recv_timeout_while_kicked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_janitor, setup, teardown),
		cmocka_unit_test(test_wire_records),
		cmocka_unit_test(test_wire_id_nul),
		cmocka_unit_test(test_wire_verdicts),
	};

	signal(SIGPIPE, SIG_IGN);	/* a peer gone is an error to see, not a kill */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
