/* qkd/replay.h - the ESP anti-replay window of one inbound SA.
 *
 * A ring of 64-bit blocks in the style of RFC 6479: moving the window ahead
 * clears whole blocks and never shifts the bitmap, so the cost of a packet
 * does not grow with the window. Sequence numbers are 64 bits; with extended
 * sequence numbers (ESN, RFC 4303 section 2.2.1) only the low 32 travel and
 * the high 32 are inferred from the window (RFC 4303 Appendix A.2).
 *
 * RFC 4303 section 3.4.3 asks for two steps, and so does this API:
 * qkd_replay_check before the ICV is verified (cheap refusal of duplicates,
 * no plaintext produced), qkd_replay_update only after the ICV verified (a
 * forged packet must never move the window). Neighbours: lib/vpn/replay.c
 * implements it; lib/vpn/esp_context.c holds one per inbound SA.
 *
 * Errors: QKD_ERR_ABORT means "refused by the anti-replay policy" (sequence
 * number 0, a duplicate, older than the window, or a high half that cannot
 * be inferred); it is the code the ESP layer returns for a replay.
 */
#ifndef QKD_REPLAY_H
#define QKD_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "qkd/error.h"

/* Packets the window accepts behind the highest one authenticated: a
 * packet is acceptable if it is newer than the top or at most
 * QKD_REPLAY_WINDOW - 1 behind it and not seen. RFC 4303 section 3.4.3
 * asks for at least 32 (64 recommended); issue 14 asks for >= 1024 because
 * a multi-queue sender reorders thousands of packets at 10 Gbit/s. */
#define QKD_REPLAY_WINDOW 4096u
/* Blocks in the ring: a power of two (the index is a mask) with at least
 * one block more than the window needs, so the block being reused as the
 * window slides never holds a bit still inside the window (RFC 6479 s2). */
#define QKD_REPLAY_BLOCKS 128u

struct qkd_replay {
	uint64_t top;	/* highest sequence number authenticated, 0 = none yet */
	bool esn;	/* 64-bit sequence numbers, 32 on the wire */
	uint64_t ring[QKD_REPLAY_BLOCKS];
};

/* A fresh window (nothing received). Caller owns r. */
void qkd_replay_init(struct qkd_replay *r, bool esn);

/* Step 1, before the ICV: is the packet carrying the 32 low bits seq_low
 * acceptable? On 0, *seq is the full sequence number (the inferred high
 * half with ESN, RFC 4303 A.2; seq_low itself without) which the caller
 * authenticates (it goes into the AAD) and passes to qkd_replay_update.
 * QKD_ERR_ABORT if refused; r is not changed either way. */
__attribute__((warn_unused_result))
int qkd_replay_check(const struct qkd_replay *r, uint32_t seq_low, uint64_t *seq);

/* Step 2, after the ICV verified: mark seq received, sliding the window
 * ahead if seq is beyond the top. Checks again (RFC 4303 3.4.3: the window
 * may have moved since step 1) and returns QKD_ERR_ABORT, changing nothing,
 * if seq is now a duplicate or too old; 0 otherwise. */
__attribute__((warn_unused_result))
int qkd_replay_update(struct qkd_replay *r, uint64_t seq);

#endif
