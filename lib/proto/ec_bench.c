#include "qkd/bench.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qkd/channel.h"
#include "qkd/ec.h"
#include "qkd/ec_driver.h"
#include "qkd/engine.h"
#include "qkd/error.h"
#include "qkd/msg.h"
#include "qkd/rng.h"
#include "qkd/sysutil.h"

struct bench_ctx {
	const char *code;
	double qber;
	size_t n;
	struct qkd_bits *alice, *bob;
	int fd_alice, fd_bob;
	int rc_alice;
	struct qkd_ec_bench_result *res;
};

static void *alice_thread(void *arg)
{
	struct bench_ctx *c = arg;
	struct qkd_ec_alice *ec = NULL;
	struct qkd_channel ch;
	struct qkd_wbuf reply;
	int rc;

	qkd_channel_init(&ch, c->fd_alice, NULL, NULL);
	qkd_wbuf_init(&reply);
	rc = qkd_ec_alice_new(&ec, c->code);
	for (size_t i = 0; rc == QKD_OK && i < c->n; i++)
		rc = qkd_ec_alice_add_frame(ec, i, &c->alice[i]);
	while (rc == QKD_OK) {
		struct qkd_rbuf r;
		uint8_t type;
		uint64_t id, disclosed;

		rc = qkd_channel_recv(&ch, &type, &r);
		if (rc != QKD_OK || type == QKD_MSG_DONE)
			break;
		qkd_wbuf_reset(&reply);
		rc = type == QKD_MSG_EC_REQ ? qkd_ec_alice_answer(ec, &r, &reply) : QKD_ERR_PROTO;
		if (rc == QKD_OK)
			rc = qkd_channel_send(&ch, QKD_MSG_EC_REPLY, reply.p, reply.len);
		while (rc == QKD_OK && (rc = qkd_ec_alice_take_done(ec, &id, &disclosed)) == 1)
			rc = QKD_OK;	/* the engine checks ids; the bench only drains */
	}
	c->rc_alice = rc;
	/* Bob may be waiting for a reply that will not come: let him see EOF. */
	shutdown(c->fd_alice, SHUT_RDWR);
	c->res->bytes += ch.bytes_sent;
	qkd_ec_alice_free(ec);
	qkd_wbuf_cleanup(&reply);
	qkd_channel_cleanup(&ch);
	return NULL;
}

static double est(void *ctx)
{
	return ((struct bench_ctx *)ctx)->qber;
}

static int bob_done(void *ctx, uint64_t id, struct qkd_bits *bits, uint64_t disclosed,
		    uint64_t corrected)
{
	struct bench_ctx *c = ctx;
	struct qkd_ec_bench_result *r = c->res;
	double q = (double)corrected / (double)bits->n;

	r->frames++;
	r->bits += bits->n;
	r->errors += corrected;
	r->disclosed += disclosed;
	r->efficiency += (double)bits->n * qkd_binary_entropy(q);	/* ideal, for now */
	r->frames_wrong += !qkd_bits_equal(bits, &c->alice[id]);
	qkd_bits_cleanup(bits);
	return QKD_OK;
}

static int make_frames(struct bench_ctx *c, size_t frame_bits, uint64_t seed)
{
	struct qkd_rng g;
	int rc = QKD_OK;

	qkd_rng_init_seed(&g, seed, "ec-bench");
	c->alice = calloc(c->n, sizeof *c->alice);
	c->bob = calloc(c->n, sizeof *c->bob);
	if (c->alice == NULL || c->bob == NULL)
		rc = QKD_ERR_NOMEM;
	for (size_t i = 0; rc == QKD_OK && i < c->n; i++) {
		rc = qkd_bits_init(&c->alice[i], frame_bits);
		if (rc == QKD_OK)
			rc = qkd_bits_init(&c->bob[i], frame_bits);
		if (rc != QKD_OK)
			break;
		qkd_rng_bytes(&g, c->alice[i].w, qkd_bits_words(frame_bits) * 8);
		qkd_bits_trim(&c->alice[i]);
		memcpy(c->bob[i].w, c->alice[i].w, qkd_bits_words(frame_bits) * 8);
		/* Errors at geometric gaps: independent, probability qber each. */
		for (double pos = 0;;) {
			pos += floor(log(1 - qkd_rng_double(&g)) / log1p(-c->qber));
			if (pos >= (double)frame_bits)
				break;
			qkd_bits_flip(&c->bob[i], (size_t)pos);
			pos += 1;
		}
	}
	qkd_rng_cleanup(&g);
	return rc;
}

static void free_frames(struct bench_ctx *c)
{
	for (size_t i = 0; i < c->n; i++) {
		if (c->alice)
			qkd_bits_cleanup(&c->alice[i]);
		if (c->bob)
			qkd_bits_cleanup(&c->bob[i]);
	}
	free(c->alice);
	free(c->bob);
}

int qkd_ec_bench(const char *code, double qber, size_t frame_bits, size_t frames,
		 unsigned window, uint64_t seed, struct qkd_ec_bench_result *out)
{
	struct bench_ctx c = {.code = code, .qber = qber, .n = frames, .res = out};
	struct qkd_ec_bob_driver d = {.code = code, .window = window, .qber_estimate = est,
				      .done = bob_done, .ctx = &c};
	struct qkd_channel ch;
	struct qkd_rng rng;
	pthread_t th;
	int sv[2], rc;
	double cpu0, wall0;

	memset(out, 0, sizeof *out);
	if (!(qber > 0 && qber < 0.5) || frames == 0 || frame_bits == 0 || window == 0)
		return QKD_ERR_INVAL;
	rc = make_frames(&c, frame_bits, seed);
	if (rc != QKD_OK || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
		free_frames(&c);
		return rc != QKD_OK ? rc : QKD_ERR_IO;
	}
	c.fd_alice = sv[0];
	c.fd_bob = sv[1];
	qkd_rng_init_seed(&rng, seed, "ec-bench-bob");
	d.rng = &rng;
	qkd_channel_init(&ch, sv[1], NULL, NULL);
	cpu0 = qkd_cpu_seconds();
	wall0 = qkd_wall_seconds();
	if (pthread_create(&th, NULL, alice_thread, &c) != 0) {
		rc = QKD_ERR_NOMEM;
	} else {
		rc = qkd_ec_drive_bob(&ch, &d, c.bob, c.n);
		if (qkd_channel_send(&ch, QKD_MSG_DONE, NULL, 0) != QKD_OK && rc == QKD_OK)
			rc = QKD_ERR_IO;
		pthread_join(th, NULL);
		if (rc == QKD_OK)
			rc = c.rc_alice;
	}
	out->cpu_seconds = qkd_cpu_seconds() - cpu0;
	out->wall_seconds = qkd_wall_seconds() - wall0;
	out->bytes += ch.bytes_sent;
	out->efficiency = out->efficiency > 0 ? (double)out->disclosed / out->efficiency : 0;
	qkd_channel_cleanup(&ch);
	qkd_rng_cleanup(&rng);
	close(sv[0]);
	close(sv[1]);
	free_frames(&c);
	return rc;
}
