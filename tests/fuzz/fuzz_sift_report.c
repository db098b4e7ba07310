/* libFuzzer target: Alice's parser of Bob's sifting report (lib/proto/sift.c).
 * Any input must be either rejected or yield a report whose slots are
 * strictly increasing inside the chunk. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "qkd/error.h"
#include "qkd/sift.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qkd_sift_report r;
	struct qkd_rbuf rb;

	qkd_rbuf_init(&rb, data, size);
	if (qkd_sift_report_read(&rb, &r, 1u << 20) != QKD_OK)
		return 0;
	for (size_t i = 0; i < r.n; i++) {
		if (r.slot[i] < r.first_slot || r.slot[i] - r.first_slot >= r.slots ||
		    (i > 0 && r.slot[i] <= r.slot[i - 1]))
			abort();
	}
	if (r.basis.n != r.n)
		abort();
	qkd_sift_report_cleanup(&r);
	return 0;
}
