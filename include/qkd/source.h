/* qkd/source.h - what the optical layer hands each party (DESIGN section 1).
 *
 * The protocol engine never sees the optical backend, only these two small
 * interfaces, so the simulator, a recording of real detector data (`file`),
 * or real hardware can stand behind them (STYLE.md habit 8).
 *
 * Bob's side yields his detections chunk by chunk: the slot range the chunk
 * covers and, per detection, the slot, his basis and his bit (for a double
 * click his random bit). Alice's side answers, for the slots Bob reports,
 * her basis and bit and whether she has a usable event there (always, for a
 * weak-coherent source, which emitted in every slot; only where she detected
 * her half of a pair, for an entangled source).
 */
#ifndef QKD_SOURCE_H
#define QKD_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/bits.h"

struct qkd_bob_chunk {
	uint64_t first_slot;	/* the chunk covers [first_slot, first_slot + slots) */
	uint64_t slots;
	size_t n;		/* detections */
	uint64_t *slot;		/* n strictly increasing slots, owned */
	struct qkd_bits basis;	/* n bits */
	struct qkd_bits value;	/* n bits, secret */
	uint64_t double_clicks;	/* detections where both detectors fired */
	/* Simulator ground truth, optional (n == 0 when the source has none):
	 * bit i set when Eve knows Alice's bit of detection i exactly once the
	 * bases are announced. The engine only counts these bits into
	 * qkd_engine_stats.eve_known_bits; no protocol decision reads them. */
	struct qkd_bits eve_known;
};

void qkd_bob_chunk_cleanup(struct qkd_bob_chunk *c);

struct qkd_bob_source {
	/* Fill *c (uninitialized on entry; the caller cleans it up). Returns 1
	 * for a chunk, 0 when the source is exhausted, < 0 on error. */
	int (*next)(void *ctx, struct qkd_bob_chunk *c);
	void *ctx;
	uint64_t total_slots;	/* for progress reports; 0 if unknown */
	bool eve_truth;		/* every chunk carries eve_known (simulator only) */
};

struct qkd_alice_source {
	/* For slot[0..n) (strictly increasing), set bit i of basis, value and
	 * valid; the three are initialized with n bits by the caller. */
	int (*lookup)(void *ctx, const uint64_t *slot, size_t n, struct qkd_bits *basis,
		      struct qkd_bits *value, struct qkd_bits *valid);
	/* Optional (NULL: the randomness tests are skipped and the
	 * non-randomness term is 0): Alice's raw random choices for every slot
	 * of [first, first+count), as bits (initialized with count bits). */
	int (*choices)(void *ctx, uint64_t first, uint64_t count, struct qkd_bits *basis,
		       struct qkd_bits *value);
	/* Optional (NULL: a source with one intensity): for slot[0..n), the
	 * intensity index (0 signal, 1 and 2 decoys) of the pulse Alice sent.
	 * The decoy-state defense needs it; it is announced for sifted slots. */
	int (*intensity)(void *ctx, const uint64_t *slot, size_t n, uint8_t *out);
	void *ctx;
};

#endif
