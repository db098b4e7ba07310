/* source_batch.h - private to lib/optical: Alice's source answers built
 * from a backend's per-slot lookup (simulator or recording), shared by the
 * engine adapters source_sim.c and source_file.c. */
#ifndef QKD_SOURCE_BATCH_H
#define QKD_SOURCE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "qkd/bits.h"
#include "qkd/optical.h"

/* A backend's lookup of slots[0..n) into out[0..n) (qkd_sim_alice_lookup's
 * contract). */
typedef int (*opt_lookup_fn)(void *backend, const uint64_t *slots, size_t n,
			     struct qkd_detection *out);

/* qkd_alice_source.lookup: basis, value and valid bits of slot[0..n). */
int opt_batch_lookup(opt_lookup_fn fn, void *backend, const uint64_t *slot, size_t n,
		     struct qkd_bits *basis, struct qkd_bits *value, struct qkd_bits *valid);
/* qkd_alice_source.intensity: the intensity index of slot[0..n). */
int opt_batch_intensity(opt_lookup_fn fn, void *backend, const uint64_t *slot, size_t n,
			uint8_t *out);

#endif
