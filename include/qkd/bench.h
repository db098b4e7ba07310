/* qkd/bench.h - measurements behind `qkd bench` (docs/performance.md). */
#ifndef QKD_BENCH_H
#define QKD_BENCH_H

#include <stddef.h>
#include <stdint.h>

struct qkd_ec_bench_result {
	uint64_t bits, frames, errors, disclosed;
	uint64_t frames_wrong;		/* frames still differing after correction */
	uint64_t bytes;			/* both directions, framing included */
	double efficiency;		/* disclosed / sum n h(e/n) */
	double cpu_seconds;		/* both parties */
	double wall_seconds;
};

/* Error correction alone, as in a link: Alice and Bob are two threads with
 * their own objects, talking through a socketpair with framed messages;
 * Bob keeps `window` frames in flight and is told the true QBER (the figure
 * measures the code, not the estimator). Frames are random, with errors at
 * independent positions with probability qber. CPU is the process's (both
 * parties). */
__attribute__((warn_unused_result))
int qkd_ec_bench(const char *code, double qber, size_t frame_bits, size_t frames,
		 unsigned window, uint64_t seed, struct qkd_ec_bench_result *out);

#endif
