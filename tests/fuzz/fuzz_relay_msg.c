/* libFuzzer target: the key relay message decoders (lib/relay/relay_msg.c,
 * qkd/relay_msg.h, docs/relay.md "Key relay messages"). The first input
 * byte picks the kind (modulo 4: KEY, COMPLETION, FAILURE, WITHDRAW); the
 * rest is one message.
 *
 * Checks besides not crashing, leaking or reading out of bounds:
 * - what decodes passes the head check and re-encodes to exactly the input
 *   bytes (the format has one encoding per message);
 * - a refused input leaves the output zeroed and gives a reason;
 * - a back message decodes as one of COMPLETION, FAILURE and WITHDRAW at
 *   most (code 0 at the destination, codes 1..6, code 0 going forwards);
 * - the failure code of a decoded FAILURE has a name.
 */
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/relay_msg.h"
#include "qkd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The largest KEY message: header with 16 ids of 63 characters, two SAE
 * ids of 64, 16 segments, 8,192 cipher bytes; a margin for over-long input. */
#define INPUT_MAX (22 + QKD_RELAY_PATH_MAX * QKD_NODE_NAME_MAX + 2 * 65 + 5 + \
		   QKD_RELAY_PAD_SEGS_MAX * 20 + QKD_RELAY_KEY_BITS_MAX / 8 + 64)

static void fuzz_key(const uint8_t *p, size_t n)
{
	static struct qkd_relay_key_msg m, zero;
	struct qkd_wbuf w;
	const char *why = NULL;

	if (qkd_relay_key_decode(&m, p, n, &why) != QKD_OK) {
		if (why == NULL || memcmp(&m, &zero, sizeof m) != 0)
			abort();
		return;
	}
	if (qkd_relay_head_check(&m.h, &why) != QKD_OK || m.h.hop < 1)
		abort();
	qkd_wbuf_init(&w);
	if (qkd_relay_key_encode(&m, &w) != QKD_OK || w.len != n || memcmp(w.p, p, n) != 0)
		abort();
	qkd_wbuf_cleanup(&w);
}

static void fuzz_back(uint8_t type, const uint8_t *p, size_t n)
{
	static const struct qkd_relay_back_msg zero;
	static const uint8_t back_types[] = { QKD_RELAY_MSG_COMPLETION, QKD_RELAY_MSG_FAILURE,
					      QKD_RELAY_MSG_WITHDRAW };
	struct qkd_relay_back_msg m, other;
	struct qkd_wbuf w;
	const char *why = NULL;

	if (qkd_relay_back_decode(&m, type, p, n, &why) != QKD_OK) {
		if (why == NULL || memcmp(&m, &zero, sizeof m) != 0)
			abort();
		return;
	}
	if (qkd_relay_head_check(&m.h, &why) != QKD_OK)
		abort();
	for (size_t i = 0; i < sizeof back_types; i++)
		if (back_types[i] != type &&
		    qkd_relay_back_decode(&other, back_types[i], p, n, &why) == QKD_OK)
			abort();
	if (type == QKD_RELAY_MSG_FAILURE && strcmp(qkd_relay_fail_name(m.code), "unknown") == 0)
		abort();
	qkd_wbuf_init(&w);
	if (qkd_relay_back_encode(&m, type, &w) != QKD_OK || w.len != n ||
	    memcmp(w.p, p, n) != 0)
		abort();
	qkd_wbuf_cleanup(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > INPUT_MAX)
		return 0;
	switch (data[0] % 4) {
	case 0:
		fuzz_key(data + 1, size - 1);
		break;
	case 1:
		fuzz_back(QKD_RELAY_MSG_COMPLETION, data + 1, size - 1);
		break;
	case 2:
		fuzz_back(QKD_RELAY_MSG_FAILURE, data + 1, size - 1);
		break;
	default:
		fuzz_back(QKD_RELAY_MSG_WITHDRAW, data + 1, size - 1);
		break;
	}
	return 0;
}
