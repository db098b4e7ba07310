/* libFuzzer target: Alice's parser of Bob's error-correction queries
 * (qkd_ec_alice_answer, lib/proto/cascade_alice.c). Alice holds two frames;
 * the input is one request. It must be rejected or answered, never crash,
 * and a rejected request must leave Alice able to answer a valid one. */
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
	struct qkd_ec_alice *a = NULL;
	struct qkd_bits f0, f1;
	struct qkd_rng g;
	struct qkd_rbuf r;
	struct qkd_wbuf reply;
	uint64_t id, disclosed;

	if (size < 1)
		return 0;
	qkd_rng_init_seed(&g, 1, "fuzz");
	if (qkd_bits_init(&f0, 1000) != QKD_OK || qkd_bits_init(&f1, 4097) != QKD_OK)
		abort();
	qkd_rng_bytes(&g, f0.w, qkd_bits_words(f0.n) * 8);
	qkd_rng_bytes(&g, f1.w, qkd_bits_words(f1.n) * 8);
	qkd_bits_trim(&f0);
	qkd_bits_trim(&f1);
	if (qkd_ec_alice_new(&a, (data[0] & 1) ? "cascade-bbn" : "cascade") != QKD_OK ||
	    qkd_ec_alice_add_frame(a, 0, &f0) != QKD_OK ||
	    qkd_ec_alice_add_frame(a, 7, &f1) != QKD_OK)
		abort();
	qkd_wbuf_init(&reply);
	qkd_rbuf_init(&r, data + 1, size - 1);
	if (qkd_ec_alice_answer(a, &r, &reply) == QKD_OK)
		while (qkd_ec_alice_take_done(a, &id, &disclosed) == 1)
			if (id != 0 && id != 7)
				abort();
	qkd_wbuf_cleanup(&reply);
	qkd_ec_alice_free(a);
	qkd_bits_cleanup(&f0);
	qkd_bits_cleanup(&f1);
	qkd_rng_cleanup(&g);
	return 0;
}
