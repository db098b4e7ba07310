/* qkd/ec_driver.h - running error correction over a channel.
 *
 * The loop both the engine and the benchmark use: Bob keeps up to `window`
 * frames in flight, sends one EC_REQ message per round covering all of them,
 * applies Alice's EC_REPLY, and hands each finished frame to a callback while
 * new frames take its place. So Cascade's round trips cost latency, not
 * throughput. Alice's counterpart answers EC_REQ messages until Bob sends
 * the message type given as `end`.
 */
#ifndef QKD_EC_DRIVER_H
#define QKD_EC_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "qkd/bits.h"
#include "qkd/channel.h"
#include "qkd/rng.h"

struct qkd_ec_bob_driver {
	const char *code;		/* error-correction code name */
	struct qkd_rng *rng;		/* Bob's choices (borrowed) */
	unsigned window;		/* frames in flight */
	/* QBER estimate for the next frame to start (called once per frame). */
	double (*qber_estimate)(void *ctx);
	/* A frame finished: bits (moved to the callee, who cleans them up),
	 * parity bits Alice disclosed, bits Bob flipped. Non-zero stops the run. */
	int (*done)(void *ctx, uint64_t id, struct qkd_bits *bits, uint64_t disclosed,
		    uint64_t corrected);
	void *ctx;
	uint64_t round_trips;		/* out: EC_REQ/EC_REPLY pairs so far */
};

/* Correct frames[0..n) (Bob's strings; ids are the indices) against Alice. */
__attribute__((warn_unused_result))
int qkd_ec_drive_bob(struct qkd_channel *ch, struct qkd_ec_bob_driver *d,
		     const struct qkd_bits *frames, size_t n);

#endif
