/* source_batch.c - Alice's lookups in small, cache-resident batches (wiped
 * once at the end) instead of one array as long as Bob's report. */
#include "source_batch.h"

#include "qkd/error.h"
#include "qkd/secret.h"

#define LOOKUP_BATCH 1024

int opt_batch_lookup(opt_lookup_fn fn, void *backend, const uint64_t *slot, size_t n,
		     struct qkd_bits *basis, struct qkd_bits *value, struct qkd_bits *valid)
{
	struct qkd_detection d[LOOKUP_BATCH];
	int rc = QKD_OK;

	for (size_t base = 0; rc == QKD_OK && base < n; base += LOOKUP_BATCH) {
		size_t k = n - base < LOOKUP_BATCH ? n - base : LOOKUP_BATCH;

		rc = fn(backend, slot + base, k, d);
		/* Assemble whole words: base is a multiple of 64. */
		for (size_t w = 0; rc == QKD_OK && w < k; w += 64) {
			uint64_t bw = 0, vw = 0, ok = 0;
			size_t e = k - w < 64 ? k - w : 64;

			for (size_t i = 0; i < e; i++) {
				bw |= (uint64_t)(d[w + i].basis & 1) << i;
				vw |= (uint64_t)(d[w + i].value & 1) << i;
				ok |= (uint64_t)!(d[w + i].flags & QKD_DET_NONE) << i;
			}
			basis->w[(base + w) / 64] = bw;
			value->w[(base + w) / 64] = vw;
			valid->w[(base + w) / 64] = ok;
		}
	}
	qkd_wipe(d, sizeof d);
	return rc;
}

int opt_batch_intensity(opt_lookup_fn fn, void *backend, const uint64_t *slot, size_t n,
			uint8_t *out)
{
	struct qkd_detection d[LOOKUP_BATCH];
	int rc = QKD_OK;

	for (size_t base = 0; rc == QKD_OK && base < n; base += LOOKUP_BATCH) {
		size_t k = n - base < LOOKUP_BATCH ? n - base : LOOKUP_BATCH;

		rc = fn(backend, slot + base, k, d);
		for (size_t i = 0; rc == QKD_OK && i < k; i++)
			out[base + i] = d[i].intensity;
	}
	qkd_wipe(d, sizeof d);
	return rc;
}
