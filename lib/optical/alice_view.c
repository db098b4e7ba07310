/* alice_view.c - Alice's side of the slots Bob reports (qkd/optical.h).
 *
 * Weak-coherent: her choices (basis, value, intensity) are a pure function
 * of the slot, one mixer call each. Entangled: whether and what she detected
 * comes out of the same block walk as Bob's detections (the pair physics is
 * joint, and with Eve on the fiber the pulse-level walk), so the blocks
 * holding the requested slots are walked lazily, each once, only as far as
 * the last slot asked for. Bob's data is never needed.
 */
#include "optical_int.h"

#include <string.h>

#include "qkd/error.h"
#include "qkd/secret.h"

static int check_slots(const struct qkd_sim *s, const uint64_t *slots, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (slots[i] >= s->p.pulses)
			return QKD_ERR_RANGE;
		if (i > 0 && slots[i] <= slots[i - 1])
			return QKD_ERR_INVAL;
	}
	return QKD_OK;
}

static void lookup_spdc(const struct qkd_sim *s, const uint64_t *slots, size_t n,
			struct qkd_detection *out)
{
	struct opt_block_it it;
	struct opt_event ev;
	uint64_t block = 0;
	bool have = false, started = false;

	for (size_t i = 0; i < n; i++) {
		uint64_t slot = slots[i], b = slot >> OPT_BLOCK_SHIFT;
		uint8_t value;

		if (!started || b != block) {
			block = b;
			started = true;
			opt_block_begin(&it, s, b, (b + 1) << OPT_BLOCK_SHIFT);
			have = opt_block_next(&it, &ev);
		}
		while (have && ev.slot < slot)
			have = opt_block_next(&it, &ev);
		out[i].slot = slot;
		opt_alice_choice(s, slot, &out[i].basis, &value, &out[i].intensity);
		if (have && ev.slot == slot && ev.clicked[0]) {
			out[i].value = ev.value[0];
			out[i].flags = ev.flags[0];
		} else {
			out[i].value = 0;
			out[i].flags = QKD_DET_NONE;
		}
	}
	qkd_wipe(&ev, sizeof ev);
}

int qkd_sim_alice_lookup(const struct qkd_sim *s, const uint64_t *slots, size_t n,
			 struct qkd_detection *out)
{
	int rc = check_slots(s, slots, n);

	if (rc != QKD_OK)
		return rc;
	if (n > 0)
		memset(out, 0, n * sizeof *out);
	if (s->p.source == QKD_SOURCE_ENTANGLED) {
		lookup_spdc(s, slots, n, out);
		return QKD_OK;
	}
	for (size_t i = 0; i < n; i++) {
		out[i].slot = slots[i];
		opt_alice_choice(s, slots[i], &out[i].basis, &out[i].value,
				 &out[i].intensity);
	}
	return QKD_OK;
}
