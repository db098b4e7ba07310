/* libFuzzer target: the frame reader of the classical channel
 * (lib/core/channel.c) and the wire reader behind every message parser.
 * The input is written to one end of a socketpair and read back as frames
 * until an error; each payload is then walked with the bounded reader. */
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qkd/bits.h"
#include "qkd/channel.h"
#include "qkd/error.h"
#include "qkd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(struct qkd_rbuf *r)
{
	struct qkd_bits b;

	while (qkd_rbuf_ok(r) && qkd_rbuf_left(r) > 0) {
		switch (qkd_get_u8(r) & 3) {
		case 0: (void)qkd_get_varint(r); break;
		case 1: (void)qkd_get_count(r, 1000); break;
		case 2:
			if (qkd_get_bits(r, &b, 1u << 16) == QKD_OK)
				qkd_bits_cleanup(&b);
			break;
		default: (void)qkd_get_double(r); break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qkd_channel ch;
	int sv[2];

	if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 0;
	if (write(sv[0], data, size) != (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	close(sv[0]);
	qkd_channel_init(&ch, sv[1], NULL, NULL);
	for (;;) {
		struct qkd_rbuf r;
		uint8_t type;

		if (qkd_channel_recv(&ch, &type, &r) != QKD_OK)
			break;
		walk(&r);
	}
	qkd_channel_cleanup(&ch);
	close(sv[1]);
	return 0;
}
