/* libFuzzer target: Bob's parser of Alice's error-correction answers
 * (qkd_ec_bob_reply, lib/proto/cascade_bob.c). Bob starts two frames and
 * sends his first request; the input is taken as Alice's reply. A malformed
 * reply must be rejected without a crash or an out-of-bounds access. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "qkd/bits.h"
#include "qkd/ec.h"
#include "qkd/error.h"
#include "qkd/rng.h"
#include "qkd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qkd_ec_bob *b = NULL;
	struct qkd_bits f0, out;
	struct qkd_rng g, perm;
	struct qkd_rbuf r;
	struct qkd_wbuf req;
	uint64_t id, disclosed, corrected;

	if (size < 1)
		return 0;
	qkd_rng_init_seed(&g, 2, "fuzz");
	qkd_rng_init_seed(&perm, 3, "fuzz-perm");
	if (qkd_bits_init(&f0, 2000) != QKD_OK)
		abort();
	qkd_rng_bytes(&g, f0.w, qkd_bits_words(f0.n) * 8);
	qkd_bits_trim(&f0);
	if (qkd_ec_bob_new(&b, (data[0] & 1) ? "cascade-bbn" : "cascade", &perm) != QKD_OK ||
	    qkd_ec_bob_add_frame(b, 0, &f0, 0.03) != QKD_OK ||
	    qkd_ec_bob_add_frame(b, 5, &f0, 0.08) != QKD_OK)
		abort();
	qkd_wbuf_init(&req);
	if (qkd_ec_bob_request(b, &req) == 1) {
		qkd_rbuf_init(&r, data + 1, size - 1);
		if (qkd_ec_bob_reply(b, &r) == QKD_OK)
			while (qkd_ec_bob_take_done(b, &id, &out, &disclosed, &corrected) == 1)
				qkd_bits_cleanup(&out);
	}
	qkd_wbuf_cleanup(&req);
	qkd_ec_bob_free(b);
	qkd_bits_cleanup(&f0);
	qkd_rng_cleanup(&g);
	qkd_rng_cleanup(&perm);
	return 0;
}
