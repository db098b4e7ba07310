/* qkd/wire.h - the one bounded reader and writer for wire data.
 *
 * Every message between Alice and Bob is built with a qkd_wbuf and parsed with
 * a qkd_rbuf (STYLE.md habit 6). Integers are big-endian (network order);
 * varints are unsigned LEB128, at most 10 bytes. Errors are sticky: after the
 * first failure every get returns 0 and qkd_rbuf_ok() is false, so a parser
 * can read a whole record and check once.
 */
#ifndef QKD_WIRE_H
#define QKD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/error.h"

struct qkd_bits;

struct qkd_wbuf {
	uint8_t *p;	/* owned, grows as needed */
	size_t len, cap;
	int err;	/* first error, 0 if none */
	bool secret;	/* wipe on reset, growth and cleanup */
};

struct qkd_rbuf {
	const uint8_t *p;	/* borrowed */
	size_t len, off;
	int err;
};

/* A buffer for messages: what it holds goes on the wire, so it is public
 * and not wiped. */
void qkd_wbuf_init(struct qkd_wbuf *w);
/* A buffer that may hold secrets (a key passed between processes): wiped
 * on reset, on growth and on cleanup. */
void qkd_wbuf_init_secret(struct qkd_wbuf *w);
/* Frees (wiping first if secret). Accepts NULL. */
void qkd_wbuf_cleanup(struct qkd_wbuf *w);
void qkd_wbuf_reset(struct qkd_wbuf *w);	/* length 0, capacity kept */
int qkd_wbuf_reserve(struct qkd_wbuf *w, size_t extra);
void qkd_put_u16(struct qkd_wbuf *w, uint16_t v);
void qkd_put_u32(struct qkd_wbuf *w, uint32_t v);
void qkd_put_u64(struct qkd_wbuf *w, uint64_t v);
/* The general case of qkd_put_varint (growth, errors). */
void qkd_put_varint_long(struct qkd_wbuf *w, uint64_t v);
void qkd_put_double(struct qkd_wbuf *w, double v);	/* IEEE-754 bits, big-endian */
void qkd_put_bytes(struct qkd_wbuf *w, const void *p, size_t n);
/* varint bit count, then ceil(n/8) bytes LSB-first (qkd_bits_to_bytes). */
void qkd_put_bits(struct qkd_wbuf *w, const struct qkd_bits *b);

/* The writers and readers of every byte of a photon frame (tens of millions
 * a round) are inline when the buffer has room; anything else takes the
 * general path, so errors stay sticky and bounds are checked as before. */
static inline void qkd_put_u8(struct qkd_wbuf *w, uint8_t v)
{
	if (w->err == 0 && w->len < w->cap)
		w->p[w->len++] = v;
	else
		qkd_put_bytes(w, &v, 1);
}

static inline void qkd_put_varint(struct qkd_wbuf *w, uint64_t v)
{
	if (w->err != 0 || w->cap - w->len < 10) {
		qkd_put_varint_long(w, v);
		return;
	}
	while (v >= 0x80) {
		w->p[w->len++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	w->p[w->len++] = (uint8_t)v;
}

void qkd_rbuf_init(struct qkd_rbuf *r, const void *p, size_t len);
static inline bool qkd_rbuf_ok(const struct qkd_rbuf *r) { return r->err == 0; }
static inline size_t qkd_rbuf_left(const struct qkd_rbuf *r) { return r->len - r->off; }
/* True when no error occurred and every byte was consumed. */
__attribute__((warn_unused_result)) bool qkd_rbuf_done(const struct qkd_rbuf *r);
uint16_t qkd_get_u16(struct qkd_rbuf *r);
uint32_t qkd_get_u32(struct qkd_rbuf *r);
uint64_t qkd_get_u64(struct qkd_rbuf *r);
/* The general case of qkd_get_varint: any length, malformed input. */
uint64_t qkd_get_varint_long(struct qkd_rbuf *r);
double qkd_get_double(struct qkd_rbuf *r);
/* Borrow n bytes in place (NULL and error if fewer are left). */
const uint8_t *qkd_get_bytes(struct qkd_rbuf *r, size_t n);
void qkd_get_copy(struct qkd_rbuf *r, void *out, size_t n);
/* Read a bit string written by qkd_put_bits with at most max bits; dst must be
 * uninitialized. On error dst is left empty. */
__attribute__((warn_unused_result))
int qkd_get_bits(struct qkd_rbuf *r, struct qkd_bits *dst, size_t max);
void qkd_rbuf_fail(struct qkd_rbuf *r, int err);

/* Inline fast paths (see the writers above): one-byte varints and bytes. */
static inline uint8_t qkd_get_u8(struct qkd_rbuf *r)
{
	const uint8_t *b;

	if (r->err == 0 && r->off < r->len)
		return r->p[r->off++];
	b = qkd_get_bytes(r, 1);
	return b != NULL ? *b : 0;
}

static inline uint64_t qkd_get_varint(struct qkd_rbuf *r)
{
	if (r->err == 0 && r->off < r->len && r->p[r->off] < 0x80)
		return r->p[r->off++];
	return qkd_get_varint_long(r);
}

/* A varint that must be <= max; larger values set QKD_ERR_RANGE. */
static inline uint64_t qkd_get_count(struct qkd_rbuf *r, uint64_t max)
{
	uint64_t v = qkd_get_varint(r);

	if (r->err != 0)
		return 0;
	if (v > max) {
		qkd_rbuf_fail(r, QKD_ERR_RANGE);
		return 0;
	}
	return v;
}

#endif
