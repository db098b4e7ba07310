/* relay_wire.c - the id strings of the relay's wire formats (relay_wire.h). */
#include <string.h>

#include "qkd/error.h"
#include "relay_wire.h"

void relay_put_id(struct qkd_wbuf *w, const char *s)
{
	size_t n = strlen(s);

	qkd_put_u8(w, (uint8_t)n);
	qkd_put_bytes(w, s, n);
}

void relay_get_id(struct qkd_rbuf *r, char *out, size_t cap)
{
	size_t n = qkd_get_u8(r);
	const uint8_t *b;

	out[0] = '\0';
	if (!qkd_rbuf_ok(r))
		return;
	if (n == 0 || n >= cap) {
		qkd_rbuf_fail(r, QKD_ERR_RANGE);
		return;
	}
	b = qkd_get_bytes(r, n);
	if (b == NULL)
		return;
	if (memchr(b, '\0', n) != NULL) {
		qkd_rbuf_fail(r, QKD_ERR_PROTO);
		return;
	}
	memcpy(out, b, n);
	out[n] = '\0';
}
