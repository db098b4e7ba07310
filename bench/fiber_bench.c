/* fiber_bench.c - the optical half of a node's round, stage by stage, in
 * CPU seconds (bench/node_cpu.sh puts them beside `qkd sim` and two real
 * nodes; docs/performance.md, "A node's round").
 *
 *   fiber_bench [--pulses N] [--frame-slots N]
 *
 * On the default link (qkd_link_params_default: 10 km, mu 0.1) with N
 * pulses (default 5e8, the example link's round) in frames of 2^22 slots,
 * as lib/node/link_round.c sends them:
 *   emit      Alice's emitter: the non-empty pulses of every frame
 *   encode    the frames on the wire (docs/fiber.md s2)
 *   choices   every slot's basis and value, which her randomness tests read
 *   decode    Bob parses the frames
 *   detect    his fiber loss and detectors
 * One line per stage, "STAGE SECONDS", then "pulses P detections D".
 * Keys are random (qkd_fiber_key_random): test data only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qkd/bits.h"
#include "qkd/error.h"
#include "qkd/fiber.h"
#include "qkd/optical.h"
#include "qkd/source.h"
#include "qkd/wire.h"

enum stage { EMIT, ENCODE, CHOICES, DECODE, DETECT, STAGES };
static const char *const stage_name[STAGES] = {"emit", "encode", "choices", "decode", "detect"};

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct run {
	struct qkd_emitter *em;
	struct qkd_detector *det;
	struct qkd_fiber_frame f, g;
	struct qkd_wbuf w;
	struct qkd_bob_chunk c;
	double t[STAGES];
	uint64_t pulses;
};

/* One frame through every stage but choices. */
static int one_frame(struct run *r, uint64_t first, uint64_t count, int last)
{
	struct qkd_rbuf rb;
	double t0 = cpu_now(), t1, t2, t3;
	int rc = qkd_emitter_chunk(r->em, first, count, &r->f);

	t1 = cpu_now();
	if (rc != QKD_OK)
		return rc;
	r->f.last = last;
	r->pulses += r->f.n;
	qkd_wbuf_reset(&r->w);
	qkd_fiber_frame_write(&r->w, &r->f);
	if (r->w.err != 0)
		return r->w.err;
	t2 = cpu_now();
	qkd_rbuf_init(&rb, r->w.p + 4, r->w.len - 4);	/* past the length word */
	rc = qkd_fiber_frame_read(&rb, &r->g);
	t3 = cpu_now();
	if (rc == QKD_OK)
		rc = qkd_detector_frame(r->det, &r->g, &r->c);
	r->t[EMIT] += t1 - t0;
	r->t[ENCODE] += t2 - t1;
	r->t[DECODE] += t3 - t2;
	r->t[DETECT] += cpu_now() - t3;
	return rc;
}

/* Every slot's choices, 2^24 at a time as the engine asks for them. */
static int all_choices(struct run *r, uint64_t n)
{
	const uint64_t step = (uint64_t)1 << 24;
	struct qkd_alice_source ops;
	struct qkd_bits b = {0}, v = {0};
	double t0 = cpu_now();
	int rc;

	qkd_emitter_alice_source(r->em, &ops);
	rc = qkd_bits_init(&b, step);
	if (rc == QKD_OK)
		rc = qkd_bits_init(&v, step);
	for (uint64_t first = 0; rc == QKD_OK && first < n; first += step) {
		uint64_t k = n - first < step ? n - first : step;
		struct qkd_bits bb = {b.w, (size_t)k}, vv = {v.w, (size_t)k};

		rc = ops.choices(ops.ctx, first, k, &bb, &vv);
	}
	qkd_bits_cleanup(&b);
	qkd_bits_cleanup(&v);
	r->t[CHOICES] = cpu_now() - t0;
	return rc;
}

static int parse(int argc, char **argv, uint64_t *pulses, uint64_t *frame)
{
	for (int i = 1; i < argc; i++) {
		char *end = NULL;
		double v = i + 1 < argc ? strtod(argv[i + 1], &end) : 0;

		if (i + 1 >= argc || end == argv[i + 1] || *end != '\0' || !(v >= 1 && v <= 1e12)) {
			fprintf(stderr, "fiber_bench: %s: expects a number from 1 to 1e12\n", argv[i]);
			return -1;
		}
		if (strcmp(argv[i], "--pulses") == 0)
			*pulses = (uint64_t)v;
		else if (strcmp(argv[i], "--frame-slots") == 0 && v <= QKD_FIBER_MAX_FRAME_SLOTS)
			*frame = (uint64_t)v;
		else {
			fprintf(stderr, "fiber_bench: unknown or out-of-range option '%s'\n", argv[i]);
			return -1;
		}
		i++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t n = 500000000, frame = (uint64_t)1 << 22;
	uint8_t ka[QKD_FIBER_KEY_BYTES], kb[QKD_FIBER_KEY_BYTES];
	struct qkd_link_params p;
	struct run r;
	int rc;

	if (parse(argc, argv, &n, &frame) != 0)
		return 2;
	memset(&r, 0, sizeof r);
	qkd_link_params_default(&p);
	qkd_fiber_key_random(ka);
	qkd_fiber_key_random(kb);
	qkd_fiber_frame_init(&r.f);
	qkd_fiber_frame_init(&r.g);
	qkd_wbuf_init(&r.w);
	rc = qkd_emitter_new(&r.em, &p, ka);
	if (rc == QKD_OK)
		rc = qkd_detector_new(&r.det, &p, kb);
	for (uint64_t first = 0; rc == QKD_OK && first < n; first += frame) {
		uint64_t k = n - first < frame ? n - first : frame;

		rc = one_frame(&r, first, k, first + k == n);
	}
	if (rc == QKD_OK)
		rc = all_choices(&r, n);
	if (rc != QKD_OK) {
		fprintf(stderr, "fiber_bench: %s\n", qkd_strerror(rc));
	} else {
		for (int s = 0; s < STAGES; s++)
			printf("%s %.3f\n", stage_name[s], r.t[s]);
		printf("pulses %llu detections %zu\n", (unsigned long long)r.pulses, r.c.n);
	}
	qkd_bob_chunk_cleanup(&r.c);
	qkd_fiber_frame_cleanup(&r.f);
	qkd_fiber_frame_cleanup(&r.g);
	qkd_wbuf_cleanup(&r.w);
	qkd_emitter_free(r.em);
	qkd_detector_free(r.det);
	return rc == QKD_OK ? 0 : 1;
}
