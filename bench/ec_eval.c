/* ec_eval - efficiency, residual errors and speed of the error correction.
 *
 * Runs a Bob and an Alice object in one process, passing the serialized
 * messages between them exactly as the engine does, on random frames with
 * independent errors at a given QBER. Prints, per QBER:
 *   f     = sum(disclosed) / sum(n * h(QBER_actual))   (reconciliation efficiency)
 *   f_avg = mean of the per-frame efficiencies
 *   resid = frames whose corrected string still differs from Alice's
 *   Mbit/s = sifted bits corrected per CPU-second, both parties together
 *            (only the EC calls are timed, not the frame generation)
 *   bytes/frame = request + reply bytes per frame
 *   rounds/frame = round trips each frame took part in (latency in RTTs)
 *
 * Built by `make build` as build/bench/ec_eval (docs/error-correction.md).
 * Usage:
 *   ec_eval [-v variant] [-n bits] [-f frames] [-j in-flight] [-s seed]
 *           [-e estimate-factor] [-q qber[,qber...]]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qkd/bits.h"
#include "qkd/ec.h"
#include "qkd/error.h"
#include "qkd/rng.h"
#include "qkd/wire.h"

struct opts {
	const char *variant;
	size_t n;
	unsigned frames, inflight;
	uint64_t seed;
	double est;
	const char *qbers;
};

struct stats {
	double disclosed, ideal, fsum;
	unsigned frames, resid, mismatch;
	uint64_t bytes, rounds, frame_rounds;
	double cpu;
};

static double now_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double h2(double p)
{
	return p <= 0 || p >= 1 ? 0 : -p * log2(p) - (1 - p) * log2(1 - p);
}

/* Alice's random frame and Bob's copy with independent errors (geometric
 * gaps, so generation stays cheap next to the correction). */
static int make_frame(struct qkd_rng *g, size_t n, double q, struct qkd_bits *a,
		      struct qkd_bits *b, size_t *errors)
{
	int rc = qkd_bits_init(a, n);

	if (rc == QKD_OK)
		rc = qkd_bits_init(b, n);
	if (rc != QKD_OK)
		return rc;
	qkd_rng_bytes(g, a->w, qkd_bits_words(n) * 8);
	qkd_bits_trim(a);
	memcpy(b->w, a->w, qkd_bits_words(n) * 8);
	*errors = 0;
	for (double pos = -1;;) {
		double u = qkd_rng_double(g);

		pos += 1 + floor(log1p(-u) / log1p(-q));
		if (pos >= (double)n)
			break;
		qkd_bits_flip(b, (size_t)pos);
		(*errors)++;
	}
	return QKD_OK;
}

struct pending {
	uint64_t id, alice_disclosed, disclosed, corrected;
	struct qkd_bits alice, bob, out;
	size_t errors;
};

/* Make the frames the next batch needs (not timed). */
static int generate(const struct opts *o, double q, struct qkd_rng *gen,
		    struct pending *pend, unsigned from, unsigned to)
{
	int rc = QKD_OK;

	for (unsigned i = from; i < to && rc == QKD_OK; i++) {
		pend[i].id = 1000 + i;
		rc = make_frame(gen, o->n, q, &pend[i].alice, &pend[i].bob, &pend[i].errors);
	}
	return rc;
}

/* One round trip, then take out what finished (timed). */
static int round_trip(struct qkd_ec_bob *bob, struct qkd_ec_alice *alice,
		      struct qkd_wbuf *req, struct qkd_wbuf *rep,
		      struct pending *pend, struct stats *st, unsigned *order,
		      unsigned *finished)
{
	struct qkd_rbuf r;
	uint64_t id, d, c;
	int rc;

	qkd_wbuf_reset(req);
	qkd_wbuf_reset(rep);
	st->frame_rounds += qkd_ec_bob_in_flight(bob);
	rc = qkd_ec_bob_request(bob, req);
	if (rc == 1) {
		qkd_rbuf_init(&r, req->p, req->len);
		rc = qkd_ec_alice_answer(alice, &r, rep);
		if (rc == QKD_OK) {
			qkd_rbuf_init(&r, rep->p, rep->len);
			rc = qkd_ec_bob_reply(bob, &r);
		}
		st->bytes += req->len + rep->len;
		st->rounds++;
	}
	while (rc >= 0 && qkd_ec_alice_take_done(alice, &id, &d) == 1)
		pend[id - 1000].alice_disclosed = d;
	while (rc >= 0) {
		struct qkd_bits out = { NULL, 0 };

		if (qkd_ec_bob_take_done(bob, &id, &out, &d, &c) != 1)
			break;
		pend[id - 1000].out = out;
		pend[id - 1000].disclosed = d;
		pend[id - 1000].corrected = c;
		order[(*finished)++] = (unsigned)(id - 1000);
	}
	return rc;
}

static void account(const struct opts *o, struct pending *p, struct stats *st)
{
	double ideal = o->n * h2((double)p->errors / o->n);

	st->mismatch += p->alice_disclosed != p->disclosed;
	st->disclosed += p->disclosed;
	st->ideal += ideal;
	st->fsum += ideal > 0 ? p->disclosed / ideal : 0;
	st->resid += !qkd_bits_equal(&p->out, &p->alice);
	st->frames++;
	if (getenv("EC_EVAL_FRAMES"))
		printf("frame %llu errors %zu corrected %llu disclosed %llu f %.4f\n",
		       (unsigned long long)p->id, p->errors,
		       (unsigned long long)p->corrected,
		       (unsigned long long)p->disclosed,
		       ideal > 0 ? p->disclosed / ideal : 0);
	qkd_bits_cleanup(&p->out);
	qkd_bits_cleanup(&p->alice);
	qkd_bits_cleanup(&p->bob);
}

/* Only the EC calls are timed: the clock is read around frame generation,
 * not around every call (reading a CPU clock is a system call). */
static int run(const struct opts *o, double q, struct stats *st)
{
	struct qkd_rng gen, brng;
	struct qkd_ec_bob *bob = NULL;
	struct qkd_ec_alice *alice = NULL;
	struct qkd_wbuf req, rep;
	struct pending *pend = calloc(o->frames, sizeof *pend);
	unsigned *order = calloc(o->frames, sizeof *order);	/* finishing order */
	unsigned added = 0, finished = 0, accounted = 0;
	double t0 = now_cpu();
	int rc;

	memset(st, 0, sizeof *st);
	qkd_rng_init_seed(&gen, o->seed, "frames");
	qkd_rng_init_seed(&brng, o->seed, "bob");
	qkd_wbuf_init(&req);
	qkd_wbuf_init(&rep);
	rc = pend && order ? qkd_ec_bob_new(&bob, o->variant, &brng) : QKD_ERR_NOMEM;
	if (rc == QKD_OK)
		rc = qkd_ec_alice_new(&alice, o->variant);
	while (rc >= 0 && finished < o->frames) {
		unsigned want = o->inflight - qkd_ec_bob_in_flight(bob);

		if (want > o->frames - added)
			want = o->frames - added;
		/* Refill in batches: half the window, or whatever is left. */
		if (want > 0 && (2 * want >= o->inflight || added + want == o->frames)) {
			st->cpu += now_cpu() - t0;
			while (accounted < finished)
				account(o, &pend[order[accounted++]], st);
			rc = generate(o, q, &gen, pend, added, added + want);
			t0 = now_cpu();
			for (unsigned i = added; i < added + want && rc == QKD_OK; i++) {
				rc = qkd_ec_bob_add_frame(bob, pend[i].id, &pend[i].bob, q * o->est);
				if (rc == QKD_OK)
					rc = qkd_ec_alice_add_frame(alice, pend[i].id, &pend[i].alice);
			}
			added += want;
		}
		if (rc == QKD_OK)
			rc = round_trip(bob, alice, &req, &rep, pend, st, order, &finished);
		if (rc == 0 && finished < o->frames && qkd_ec_bob_in_flight(bob) == 0 &&
		    added == o->frames)
			rc = QKD_ERR_INVAL;	/* nothing in flight, frames missing */
		if (rc > 0)
			rc = QKD_OK;
	}
	st->cpu += now_cpu() - t0;
	while (accounted < finished)
		account(o, &pend[order[accounted++]], st);
	qkd_ec_bob_free(bob);
	qkd_ec_alice_free(alice);
	qkd_wbuf_cleanup(&req);
	qkd_wbuf_cleanup(&rep);
	qkd_rng_cleanup(&gen);
	qkd_rng_cleanup(&brng);
	for (unsigned i = 0; i < o->frames && pend; i++) {
		qkd_bits_cleanup(&pend[i].out);
		qkd_bits_cleanup(&pend[i].alice);
		qkd_bits_cleanup(&pend[i].bob);
	}
	free(pend);
	free(order);
	return rc < 0 ? rc : QKD_OK;
}

int main(int argc, char **argv)
{
	struct opts o = { "cascade", 65536, 100, 16, 1, 1.0, "0.01,0.02,0.03,0.04,0.05,0.06,0.07,0.08" };
	double favg = 0;
	unsigned nq = 0;
	char *list, *tok, *save;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "-v")) o.variant = argv[i + 1];
		else if (!strcmp(argv[i], "-n")) o.n = strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "-f")) o.frames = (unsigned)strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "-j")) o.inflight = (unsigned)strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "-s")) o.seed = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "-e")) o.est = strtod(argv[i + 1], NULL);
		else if (!strcmp(argv[i], "-q")) o.qbers = argv[i + 1];
		else {
			fprintf(stderr, "ec_eval: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	printf("variant=%s n=%zu frames=%u in_flight=%u estimate=%.2fxQBER\n",
	       o.variant, o.n, o.frames, o.inflight, o.est);
	printf("%6s %8s %8s %9s %9s %12s %12s\n", "QBER", "f", "f_avg", "resid",
	       "Mbit/s", "bytes/frame", "rounds/frame");
	list = strdup(o.qbers);
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct stats st;
		double q = strtod(tok, NULL);
		int rc = run(&o, q, &st);

		if (rc != QKD_OK) {
			fprintf(stderr, "ec_eval: %s\n", qkd_strerror(rc));
			return 1;
		}
		if (st.mismatch)
			printf("warning: %u frames with Alice's and Bob's disclosed counts differing\n",
			       st.mismatch);
		printf("%5.1f%% %8.4f %8.4f %4u/%-4u %9.1f %12.0f %12.0f\n", 100 * q,
		       st.disclosed / st.ideal, st.fsum / st.frames, st.resid, st.frames,
		       (double)st.frames * o.n / st.cpu / 1e6,
		       (double)st.bytes / st.frames, (double)st.frame_rounds / st.frames);
		fflush(stdout);
		favg += st.disclosed / st.ideal;
		nq++;
	}
	printf("mean f over the QBERs above: %.4f\n", favg / nq);
	free(list);
	return 0;
}
