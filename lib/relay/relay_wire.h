/* relay_wire.h - the id strings of the relay's wire formats (lsa.c,
 * relay_msg.c): a one-byte length and that many characters, no NUL
 * (docs/relay.md "Wire format"). Internal to libqkd. */
#ifndef QKD_RELAY_WIRE_H
#define QKD_RELAY_WIRE_H

#include <stddef.h>

#include "qkd/wire.h"

/* Append s (at most 255 characters: the callers check their ids first). */
void relay_put_id(struct qkd_wbuf *w, const char *s);

/* A length byte and that many characters into out[cap]: an empty or
 * over-long string fails the reader with QKD_ERR_RANGE, a NUL inside with
 * QKD_ERR_PROTO (it would not re-encode). The id rules are the caller's,
 * after the whole message is read. */
void relay_get_id(struct qkd_rbuf *r, char *out, size_t cap);

#endif
