/* libFuzzer target: Alice's protocol engine (lib/proto/engine_alice.c,
 * docs/protocol.md) against whatever Bob sends her during a round: sift
 * reports, the QBER sample or the decoy test set, Cascade requests,
 * verification, the estimate, DONE, ABORT, and frames of no type she knows.
 * Alice runs qkd_engine_alice in a thread on one end of a socketpair, with
 * the simulator as her source (a small round: 40 000 pulses); the fuzzer is
 * Bob on the other end, with an unauthenticated channel, and a thread
 * drains her answers. The first input byte picks her settings (mod 3:
 * cascade, cascade-bbn, decoy states with cascade); the rest is a script
 * read with the bounded reader, each op byte's low two bits picking:
 *
 *   0 HELLO  Bob's proper HELLO for those settings
 *   1 FRAME  u8 type, u16 length, the payload; bits 2-3 of the op byte
 *            spoil it: 1 a zero byte appended, 2 its last byte dropped
 *   2 SEAL   an AUTH frame closing Bob's batch (Alice waits for one after
 *            DONE)
 *   3 RAW    u8 length, bytes written as they are (no frame)
 *
 * Checks besides not crashing or leaking:
 * - an error leaves no key (the key is cleaned up);
 * - a run that ends well has the key its stats say, and stats that hold
 *   together (secret <= amplified <= corrected <= sifted <= detections <=
 *   pulses, errors <= corrected bits, sample and frames within the sifted);
 * - a malformed message yields an error, not key: a frame spoilt by a byte
 *   too many or too few, or raw bytes, before Bob's DONE means the run fails;
 * - key comes only after verification and the estimate were sent.
 *
 * Seeds (tests/fuzz/corpus/engine_alice/): whole rounds of a real Bob,
 * recorded by this file when QKD_FUZZ_RECORD=DIR is set (it runs both
 * engines once per setting, writes DIR/round_<setting>, then fuzzes as
 * usual): regenerate them when the protocol changes. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../lib/proto/engine_internal.h"
#include "qkd/channel.h"
#include "qkd/error.h"
#include "qkd/msg.h"
#include "qkd/optical.h"
#include "qkd/rng.h"
#include "qkd/simlink.h"
#include "qkd/sysutil.h"
#include "qkd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SETTINGS 3		/* cascade, cascade-bbn, decoy */
#define SEED 11

enum { OP_HELLO, OP_FRAME, OP_SEAL, OP_RAW };
enum { SPOIL_NONE, SPOIL_APPEND, SPOIL_DROP };

static struct {
	bool ready;
	struct qkd_link_params link[SETTINGS];
	struct qkd_engine_config cfg[SETTINGS];
	struct qkd_sim *sim[SETTINGS];
} g;

static const char *const setting_name[SETTINGS] = { "cascade", "cascade-bbn", "decoy" };

/* A short bright round: about 2 000 detections, frames of 256 bits. */
static void settings(int s, struct qkd_link_params *l, struct qkd_engine_config *c)
{
	qkd_link_params_default(l);
	l->pulses = 40000;
	l->distance_km = 0;
	l->detector_efficiency = 0.5;
	l->seed = SEED;
	qkd_engine_config_default(c);
	c->frame_bits = 256;
	c->frames_in_flight = 4;
	c->sample_bits = 64;
	c->estimate.confidence = 1;
	strcpy(c->ec, s == 1 ? "cascade-bbn" : "cascade");
	if (s == 2) {
		l->mu = 0.5;
		l->intensities = 3;
		l->mu_decoy[0] = 0.1;
		l->mu_decoy[1] = 0.0002;
		l->p_intensity[0] = 0.8;
		l->p_intensity[1] = 0.15;
		l->p_intensity[2] = 0.05;
		c->estimate.defense = QKD_DEFENSE_DECOY;
		c->decoy.mu[0] = l->mu;
		c->decoy.mu[1] = l->mu_decoy[0];
		c->decoy.mu[2] = l->mu_decoy[1];
		for (int k = 0; k < 3; k++)
			c->decoy.p_mu[k] = l->p_intensity[k];
		c->decoy.p_x = l->p_x;
	}
	c->estimate.mu = l->mu;
}

static void record_all(const char *dir);

static void setup(void)
{
	const char *why = NULL;
	const char *rec = getenv("QKD_FUZZ_RECORD");

	signal(SIGPIPE, SIG_IGN);	/* Alice gone: Bob's writes fail, no signal */
	for (int s = 0; s < SETTINGS; s++) {
		settings(s, &g.link[s], &g.cfg[s]);
		if (qkd_link_params_check(&g.link[s], &why) != QKD_OK ||
		    qkd_engine_config_check(&g.cfg[s], &why) != QKD_OK ||
		    qkd_sim_new(&g.sim[s], &g.link[s]) != QKD_OK) {
			fprintf(stderr, "fuzz_engine_alice: setting %d: %s\n", s, why ? why : "?");
			abort();
		}
	}
	if (rec != NULL)
		record_all(rec);
	g.ready = true;
}

/* ---- Alice, and the drain of her answers ---- */

struct alice_run {
	int fd, setting, rc;
	struct qkd_engine_stats st;
	struct qkd_bits key;
};

static void *alice_main(void *arg)
{
	struct alice_run *a = arg;
	struct qkd_sim_alice_source as;
	struct qkd_alice_source ops;
	struct qkd_channel ch;
	struct qkd_rng rng;

	qkd_sim_alice_source_init(&as, g.sim[a->setting], &ops);
	qkd_channel_init(&ch, a->fd, &qkd_auth_none, NULL);
	qkd_rng_init_seed(&rng, SEED, "alice-protocol");
	a->rc = qkd_engine_alice(&ch, &g.cfg[a->setting], &ops, &rng, &a->st, &a->key);
	qkd_rng_cleanup(&rng);
	qkd_channel_cleanup(&ch);
	shutdown(a->fd, SHUT_RDWR);	/* as a party hangs up: Bob's writes fail now */
	return NULL;
}

static void *drain_main(void *arg)
{
	int fd = *(int *)arg;
	char buf[4096];

	while (read(fd, buf, sizeof buf) > 0)
		;
	return NULL;
}

/* ---- Bob: the script ---- */

struct bob_run {
	struct qkd_channel ch;
	int fd, setting;
	bool done_sent;		/* a proper DONE went out */
	bool bad_before_done;	/* a spoilt frame or raw bytes before it */
	bool verify_sent, estimate_sent;	/* before DONE */
};

static void op_frame(struct bob_run *b, struct qkd_rbuf *in, unsigned spoil)
{
	uint8_t type = qkd_get_u8(in);
	uint16_t len = qkd_get_u16(in);
	const uint8_t *p = qkd_get_bytes(in, len);
	struct qkd_wbuf w;
	bool spoilt;

	if (p == NULL)
		return;
	qkd_wbuf_init(&w);
	qkd_put_bytes(&w, p, len);
	if (spoil == SPOIL_APPEND)
		qkd_put_u8(&w, 0);
	else if (spoil == SPOIL_DROP && w.len > 0)
		w.len--;
	spoilt = spoil == SPOIL_APPEND || (spoil == SPOIL_DROP && len > 0);
	if (w.err != 0)
		abort();
	if (qkd_channel_send(&b->ch, type, w.p, w.len) == QKD_OK && !b->done_sent) {
		b->bad_before_done |= spoilt;
		b->verify_sent |= type == QKD_MSG_VERIFY_REQ;
		b->estimate_sent |= type == QKD_MSG_ESTIMATE;
		b->done_sent = type == QKD_MSG_DONE && !spoilt;
	}
	qkd_wbuf_cleanup(&w);
}

static void run_script(struct bob_run *b, struct qkd_rbuf *in)
{
	struct qkd_wbuf hello;

	while (qkd_rbuf_ok(in) && qkd_rbuf_left(in) > 0) {
		uint8_t op = qkd_get_u8(in);

		switch (op & 3) {
		case OP_HELLO:
			qkd_wbuf_init(&hello);
			engine_hello_write(&hello, &g.cfg[b->setting]);
			(void)qkd_channel_send(&b->ch, QKD_MSG_HELLO, hello.p, hello.len);
			qkd_wbuf_cleanup(&hello);
			break;
		case OP_FRAME:
			op_frame(b, in, (op >> 2) & 3);
			break;
		case OP_SEAL:
			(void)qkd_channel_seal(&b->ch);
			break;
		default: {
			uint8_t len = qkd_get_u8(in);
			const uint8_t *p = qkd_get_bytes(in, len);

			if (p != NULL && len > 0 && qkd_write_all(b->fd, p, len) == QKD_OK &&
			    !b->done_sent)
				b->bad_before_done = true;
			break;
		}
		}
	}
}

static void check(const struct alice_run *a, const struct bob_run *b)
{
	const struct qkd_engine_stats *st = &a->st;
	bool decoy = b->setting == 2;

	if (a->rc != QKD_OK) {
		if (a->key.n != 0 || a->key.w != NULL)
			abort();	/* an error leaves no key */
		return;
	}
	if (a->key.n != st->secret_bits || st->secret_bits > st->pa_input_bits ||
	    st->pa_input_bits > st->frame_bits || st->errors_corrected > st->frame_bits ||
	    st->frame_bits + (decoy ? 0 : st->sample_bits) > st->sifted_bits ||
	    st->sifted_bits > st->detections || st->detections > st->pulses)
		abort();	/* stats that do not hold together */
	if (b->bad_before_done)
		abort();	/* a malformed message taken in */
	if (a->key.n > 0 && !(b->verify_sent && b->estimate_sent))
		abort();	/* key before verification and the estimate */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct alice_run a;
	struct bob_run b;
	struct qkd_rbuf in;
	pthread_t ta, td;
	int sv[2];

	if (!g.ready)
		setup();
	if (size < 1)
		return 0;
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	a.setting = b.setting = data[0] % SETTINGS;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	a.fd = sv[0];
	b.fd = sv[1];
	qkd_channel_init(&b.ch, sv[1], &qkd_auth_none, NULL);
	if (pthread_create(&ta, NULL, alice_main, &a) != 0 ||
	    pthread_create(&td, NULL, drain_main, &b.fd) != 0)
		abort();
	qkd_rbuf_init(&in, data + 1, size - 1);
	run_script(&b, &in);
	shutdown(sv[1], SHUT_WR);	/* the script is over: Alice reads EOF */
	pthread_join(ta, NULL);
	pthread_join(td, NULL);
	qkd_channel_cleanup(&b.ch);
	close(sv[0]);
	close(sv[1]);
	check(&a, &b);
	if (getenv("QKD_FUZZ_VERBOSE") != NULL)
		fprintf(stderr, "fuzz_engine_alice: %s: rc %d, key %zu bits, abort %d\n",
			setting_name[a.setting], a.rc, a.key.n, (int)a.st.abort);
	qkd_bits_cleanup(&a.key);
	return 0;
}

/* ---- recording the seeds: a real Bob, his frames to Alice kept ---- */

struct relay {
	int from, to;
	struct qkd_wbuf *log;	/* NULL: forward only */
};

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	uint8_t buf[65536];
	ssize_t n;

	while ((n = read(r->from, buf, sizeof buf)) > 0) {
		if (r->log != NULL)
			qkd_put_bytes(r->log, buf, (size_t)n);
		if (qkd_write_all(r->to, buf, (size_t)n) != QKD_OK)
			break;
	}
	shutdown(r->to, SHUT_WR);
	return NULL;
}

struct bob_party {
	int fd, setting, rc;
};

static void *bob_main(void *arg)
{
	struct bob_party *p = arg;
	struct qkd_sim_bob_source bs;
	struct qkd_bob_source ops;
	struct qkd_channel ch;
	struct qkd_rng rng;
	struct qkd_engine_stats st;
	struct qkd_bits key;

	qkd_sim_bob_source_init(&bs, g.sim[p->setting], &ops);
	qkd_channel_init(&ch, p->fd, &qkd_auth_none, NULL);
	qkd_rng_init_seed(&rng, SEED, "bob-protocol");
	p->rc = qkd_engine_bob(&ch, &g.cfg[p->setting], &ops, &rng, &st, &key);
	if (p->rc == QKD_OK)
		qkd_bits_cleanup(&key);
	qkd_rng_cleanup(&rng);
	qkd_channel_cleanup(&ch);
	shutdown(p->fd, SHUT_RDWR);
	return NULL;
}

/* Bob's frames as a script: HELLO as op 0, AUTH as SEAL, the rest as FRAME. */
static void write_script(const char *path, int setting, const struct qkd_wbuf *log)
{
	struct qkd_rbuf r;
	struct qkd_wbuf s;
	FILE *f;

	qkd_wbuf_init(&s);
	qkd_put_u8(&s, (uint8_t)setting);
	qkd_rbuf_init(&r, log->p, log->len);
	while (qkd_rbuf_left(&r) > 0) {
		uint32_t len = qkd_get_u32(&r);
		uint8_t type;

		(void)qkd_get_u8(&r);		/* version */
		type = qkd_get_u8(&r);
		(void)qkd_get_u32(&r);		/* seq */
		if (!qkd_rbuf_ok(&r) || len < 6 || len - 6 > qkd_rbuf_left(&r) || len - 6 > 65535)
			abort();
		if (type == QKD_MSG_HELLO) {
			qkd_put_u8(&s, OP_HELLO);
		} else if (type == QKD_MSG_AUTH) {
			qkd_put_u8(&s, OP_SEAL);
		} else {
			qkd_put_u8(&s, OP_FRAME);
			qkd_put_u8(&s, type);
			qkd_put_u16(&s, (uint16_t)(len - 6));
			qkd_put_bytes(&s, r.p + r.off, len - 6);
		}
		(void)qkd_get_bytes(&r, len - 6);
	}
	f = fopen(path, "wb");
	if (s.err != 0 || f == NULL || fwrite(s.p, 1, s.len, f) != s.len || fclose(f) != 0)
		abort();
	qkd_wbuf_cleanup(&s);
}

static void record_one(const char *dir, int setting)
{
	struct alice_run a = { .setting = setting };
	struct bob_party bob = { .setting = setting };
	struct qkd_wbuf log;
	struct relay to_alice, to_bob;
	pthread_t ta, tb, r1, r2;
	int ab[2], ba[2];
	char path[512];

	qkd_wbuf_init(&log);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, ab) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, ba) != 0)
		abort();
	bob.fd = ab[0];
	a.fd = ba[0];
	to_alice = (struct relay){ .from = ab[1], .to = ba[1], .log = &log };
	to_bob = (struct relay){ .from = ba[1], .to = ab[1], .log = NULL };
	if (pthread_create(&tb, NULL, bob_main, &bob) != 0 ||
	    pthread_create(&ta, NULL, alice_main, &a) != 0 ||
	    pthread_create(&r1, NULL, relay_main, &to_alice) != 0 ||
	    pthread_create(&r2, NULL, relay_main, &to_bob) != 0)
		abort();
	pthread_join(tb, NULL);
	pthread_join(ta, NULL);
	pthread_join(r1, NULL);
	pthread_join(r2, NULL);
	fprintf(stderr, "fuzz_engine_alice: recorded %s: Alice rc %d, Bob rc %d, key %zu bits\n",
		setting_name[setting], a.rc, bob.rc, a.key.n);
	if (a.rc != QKD_OK || bob.rc != QKD_OK)
		abort();
	snprintf(path, sizeof path, "%s/round_%s", dir, setting_name[setting]);
	write_script(path, setting, &log);
	qkd_bits_cleanup(&a.key);
	qkd_wbuf_cleanup(&log);
	for (int i = 0; i < 2; i++) {
		close(ab[i]);
		close(ba[i]);
	}
}

static void record_all(const char *dir)
{
	for (int s = 0; s < SETTINGS; s++)
		record_one(dir, s);
}
