/* Wegman-Carter authentication of the classical channel: a GF(2^64)
 * polynomial hash, almost-XOR-universal, XORed with a one-time pad per
 * frame. Construction, key layout and bounds: qkd/auth_wc.h and
 * docs/authentication.md. */
#include "qkd/auth_wc.h"

#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/secret.h"
#include "qkd/verify.h"
#include "qkd/wire.h"

enum { DIR_AB = 0, DIR_BA = 1 };

/* One direction: its hash key and its unused pads. The pad of seq s
 * (s >= next) is pad[off + 8*(s - next)], held while that is < len. */
struct wc_dir {
	uint64_t key;
	uint8_t *pad;		/* secret, cap bytes; bytes outside [off, len) are zero */
	size_t off, len, cap;
	uint64_t next;		/* lowest seq whose pad is unused */
	uint64_t spent_bits;	/* pads destroyed, used or skipped */
};

struct qkd_wc {
	struct wc_dir dir[2];			/* DIR_AB, DIR_BA */
	int send, recv;				/* which dir[] this party uses */
	uint8_t carry[QKD_WC_PAD_LEN];		/* secret: partial pad of the stream */
	size_t ncarry;
	int turn;				/* direction of the next whole pad */
	uint64_t key_bits_in, tags_made, tags_verified, tags_failed;
};

static uint64_t load_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* H_k(m) of qkd/auth_wc.h by Horner's rule; the same value as
 * qkd_verify_tag() of m's bits, without copying m into a qkd_bits. */
static uint64_t wc_hash(uint64_t k, const uint8_t *m, size_t len)
{
	uint8_t last[8] = {0};
	size_t full = len / 8, rest = len % 8;
	uint64_t h = 0;

	for (size_t i = 0; i < full; i++)
		h = qkd_gf64_mul(h ^ load_le64(m + 8 * i), k);
	if (rest > 0) {
		memcpy(last, m + 8 * full, rest);
		h = qkd_gf64_mul(h ^ load_le64(last), k);
	}
	return qkd_gf64_mul(h ^ (uint64_t)len * 8, k);
}

static size_t dir_pads(const struct wc_dir *d)
{
	return (d->len - d->off) / QKD_WC_PAD_LEN;
}

/* Make room for extra more bytes behind the live pads, moving them to the
 * front of a (possibly new) buffer. Changes no pad: all or nothing. */
static int dir_reserve(struct wc_dir *d, size_t extra)
{
	size_t live = d->len - d->off, cap;
	uint8_t *p;

	if (extra <= d->cap - d->len)
		return QKD_OK;
	if (extra > SIZE_MAX / 2 - live)
		return QKD_ERR_RANGE;
	if (live + extra <= d->cap) {
		memmove(d->pad, d->pad + d->off, live);
		qkd_wipe(d->pad + live, d->len - live);
		d->off = 0;
		d->len = live;
		return QKD_OK;
	}
	cap = live + extra;
	if (d->cap <= SIZE_MAX / 4 && d->cap * 2 > cap)
		cap = d->cap * 2;
	p = calloc(1, cap);
	if (p == NULL)
		return QKD_ERR_NOMEM;
	if (live > 0)
		memcpy(p, d->pad + d->off, live);
	qkd_free_secret(d->pad, d->cap);
	d->pad = p;
	d->cap = cap;
	d->off = 0;
	d->len = live;
	return QKD_OK;
}

/* Append one whole pad; dir_reserve made room for it. */
static void dir_push(struct wc_dir *d, const uint8_t *pad)
{
	memcpy(d->pad + d->len, pad, QKD_WC_PAD_LEN);
	d->len += QKD_WC_PAD_LEN;
}

/* Copy pad(seq) to out and destroy it with every unused pad below it. */
static int dir_take(struct wc_dir *d, uint32_t seq, uint8_t *out)
{
	size_t idx, n;

	if (seq < d->next)
		return QKD_ERR_VERIFY;
	if (seq - d->next >= dir_pads(d))
		return QKD_ERR_NOKEY;
	idx = (size_t)(seq - d->next);
	memcpy(out, d->pad + d->off + idx * QKD_WC_PAD_LEN, QKD_WC_PAD_LEN);
	n = (idx + 1) * QKD_WC_PAD_LEN;
	qkd_wipe(d->pad + d->off, n);
	d->off += n;
	if (d->off == d->len)
		d->off = d->len = 0;
	d->next = (uint64_t)seq + 1;
	d->spent_bits += (uint64_t)n * 8;
	return QKD_OK;
}

/* Reserve room in both directions for the whole pads that len more stream
 * bytes complete, before any byte is handed out. */
static int wc_reserve(struct qkd_wc *w, size_t len)
{
	size_t npads, first, second;
	int rc;

	if (len > SIZE_MAX - w->ncarry)
		return QKD_ERR_RANGE;
	npads = (w->ncarry + len) / QKD_WC_PAD_LEN;
	first = (npads + 1) / 2;	/* to dir[turn] */
	second = npads / 2;
	rc = dir_reserve(&w->dir[w->turn], first * QKD_WC_PAD_LEN);
	if (rc == QKD_OK)
		rc = dir_reserve(&w->dir[w->turn ^ 1], second * QKD_WC_PAD_LEN);
	return rc;
}

int qkd_wc_replenish(struct qkd_wc *w, const uint8_t *key, size_t len)
{
	size_t i = 0, take;
	int rc;

	if (w == NULL || (key == NULL && len > 0))
		return QKD_ERR_INVAL;
	if (len == 0)
		return QKD_OK;
	rc = wc_reserve(w, len);
	if (rc != QKD_OK)
		return rc;
	/* Complete the partial pad first, then whole pads straight from key. */
	if (w->ncarry > 0) {
		take = QKD_WC_PAD_LEN - w->ncarry < len ? QKD_WC_PAD_LEN - w->ncarry : len;
		memcpy(w->carry + w->ncarry, key, take);
		w->ncarry += take;
		i = take;
		if (w->ncarry < QKD_WC_PAD_LEN)
			goto out;
		dir_push(&w->dir[w->turn], w->carry);
		w->turn ^= 1;
		qkd_wipe(w->carry, sizeof w->carry);
		w->ncarry = 0;
	}
	for (; len - i >= QKD_WC_PAD_LEN; i += QKD_WC_PAD_LEN) {
		dir_push(&w->dir[w->turn], key + i);
		w->turn ^= 1;
	}
	memcpy(w->carry, key + i, len - i);
	w->ncarry = len - i;
out:
	w->key_bits_in += (uint64_t)len * 8;
	return QKD_OK;
}

int qkd_wc_new(struct qkd_wc **out, const uint8_t *bootstrap, size_t len, bool alice)
{
	struct qkd_wc *w = NULL;
	int rc = QKD_ERR_INVAL;

	if (out == NULL)
		return QKD_ERR_INVAL;
	*out = NULL;
	if (bootstrap == NULL || len < QKD_WC_MIN_BOOTSTRAP)
		goto out;
	w = calloc(1, sizeof *w);
	if (w == NULL) {
		rc = QKD_ERR_NOMEM;
		goto out;
	}
	w->dir[DIR_AB].key = load_le64(bootstrap);
	w->dir[DIR_BA].key = load_le64(bootstrap + 8);
	/* A zero key makes H constant: any seen tag would fit any message. */
	if (w->dir[DIR_AB].key == 0 || w->dir[DIR_BA].key == 0)
		goto out;
	w->send = alice ? DIR_AB : DIR_BA;
	w->recv = alice ? DIR_BA : DIR_AB;
	w->turn = DIR_AB;
	rc = qkd_wc_replenish(w, bootstrap + QKD_WC_HASH_KEY_LEN, len - QKD_WC_HASH_KEY_LEN);
	if (rc != QKD_OK)
		goto out;
	w->key_bits_in += QKD_WC_HASH_KEY_LEN * 8;
	*out = w;
	w = NULL;
out:
	qkd_wc_free(w);
	return rc;
}

void qkd_wc_free(struct qkd_wc *w)
{
	if (w == NULL)
		return;
	for (int i = 0; i < 2; i++)
		qkd_free_secret(w->dir[i].pad, w->dir[i].cap);
	qkd_free_secret(w, sizeof *w);
}

/* tag = LE64(H_k(msg)) XOR pad(seq), written to out. */
static int wc_compute(struct wc_dir *d, uint32_t seq, const uint8_t *msg, size_t len,
		      uint8_t *out)
{
	uint8_t pad[QKD_WC_PAD_LEN];
	uint64_t h;
	int rc;

	if ((uint64_t)len > UINT64_MAX / 8)
		return QKD_ERR_RANGE;
	if (msg == NULL && len > 0)
		return QKD_ERR_INVAL;
	rc = dir_take(d, seq, pad);
	if (rc != QKD_OK)
		return rc;
	h = wc_hash(d->key, msg, len);
	for (int i = 0; i < QKD_WC_PAD_LEN; i++)
		out[i] = (uint8_t)(h >> (8 * i)) ^ pad[i];
	qkd_wipe(pad, sizeof pad);
	qkd_wipe(&h, sizeof h);
	return QKD_OK;
}

int qkd_wc_tag(struct qkd_wc *w, uint32_t seq, const uint8_t *msg, size_t len,
	       uint8_t *tag)
{
	int rc;

	if (w == NULL || tag == NULL)
		return QKD_ERR_INVAL;
	rc = wc_compute(&w->dir[w->send], seq, msg, len, tag);
	if (rc == QKD_OK)
		w->tags_made++;
	return rc;
}

int qkd_wc_verify(struct qkd_wc *w, uint32_t seq, const uint8_t *msg, size_t len,
		  const uint8_t *tag)
{
	uint8_t want[QKD_WC_TAG_LEN];
	int rc;

	if (w == NULL || tag == NULL)
		return QKD_ERR_INVAL;
	rc = wc_compute(&w->dir[w->recv], seq, msg, len, want);
	if (rc == QKD_OK && !qkd_ct_equal(want, tag, sizeof want))
		rc = QKD_ERR_VERIFY;
	/* The expected tag of a forgery gives H(m) + H(m'): key information. */
	qkd_wipe(want, sizeof want);
	if (rc == QKD_OK)
		w->tags_verified++;
	else if (rc == QKD_ERR_VERIFY)
		w->tags_failed++;
	return rc;
}

uint64_t qkd_wc_send_pads_left(const struct qkd_wc *w)
{
	return dir_pads(&w->dir[w->send]);
}

uint64_t qkd_wc_recv_pads_left(const struct qkd_wc *w)
{
	return dir_pads(&w->dir[w->recv]);
}

uint64_t qkd_wc_next_send_seq(const struct qkd_wc *w)
{
	return w->dir[w->send].next;
}

uint64_t qkd_wc_next_recv_seq(const struct qkd_wc *w)
{
	return w->dir[w->recv].next;
}

uint64_t qkd_wc_bits_spent(const struct qkd_wc *w)
{
	return QKD_WC_HASH_KEY_LEN * 8 + w->dir[DIR_AB].spent_bits + w->dir[DIR_BA].spent_bits;
}

void qkd_wc_get_stats(const struct qkd_wc *w, struct qkd_wc_stats *st)
{
	memset(st, 0, sizeof *st);
	st->key_bits_in = w->key_bits_in;
	st->hash_key_bits = QKD_WC_HASH_KEY_LEN * 8;
	st->send_bits_spent = w->dir[w->send].spent_bits;
	st->recv_bits_spent = w->dir[w->recv].spent_bits;
	st->send_bits_left = (uint64_t)dir_pads(&w->dir[w->send]) * QKD_WC_PAD_LEN * 8;
	st->recv_bits_left = (uint64_t)dir_pads(&w->dir[w->recv]) * QKD_WC_PAD_LEN * 8;
	st->pending_bits = (uint64_t)w->ncarry * 8;
	st->tags_made = w->tags_made;
	st->tags_verified = w->tags_verified;
	st->tags_failed = w->tags_failed;
}

static int ops_tag(void *ctx, uint32_t seq, const uint8_t *msg, size_t len, uint8_t *tag)
{
	return qkd_wc_tag(ctx, seq, msg, len, tag);
}

static int ops_verify(void *ctx, uint32_t seq, const uint8_t *msg, size_t len,
		      const uint8_t *tag)
{
	return qkd_wc_verify(ctx, seq, msg, len, tag);
}

const struct qkd_auth_ops qkd_auth_wc = {
	.name = "wegman-carter", .tag_len = QKD_WC_TAG_LEN,
	.tag = ops_tag, .verify = ops_verify,
};

/* --- Saving and restoring the state (crash safety, docs/node.md) -------- */

#define WC_IMAGE_VERSION 1

/* One direction as it will be after the pads below `lease` are used. */
static void dir_export(const struct wc_dir *d, uint64_t lease, struct qkd_wbuf *out)
{
	uint64_t skip = lease > d->next ? lease - d->next : 0, pads = dir_pads(d);

	if (skip > pads)
		skip = pads;
	qkd_put_u64(out, d->key);
	qkd_put_u64(out, lease > d->next ? lease : d->next);
	qkd_put_u64(out, d->spent_bits + skip * QKD_WC_PAD_LEN * 8);
	qkd_put_varint(out, (pads - skip) * QKD_WC_PAD_LEN);
	qkd_put_bytes(out, d->pad + d->off + skip * QKD_WC_PAD_LEN,
		      (size_t)(pads - skip) * QKD_WC_PAD_LEN);
}

int qkd_wc_export(const struct qkd_wc *w, uint64_t lease_send, uint64_t lease_recv,
		  struct qkd_wbuf *out)
{
	if (w == NULL || out == NULL)
		return QKD_ERR_INVAL;
	qkd_put_u8(out, WC_IMAGE_VERSION);
	qkd_put_u8(out, (uint8_t)(w->send == DIR_AB));
	for (int i = 0; i < 2; i++)
		dir_export(&w->dir[i], i == w->send ? lease_send : lease_recv, out);
	qkd_put_u8(out, (uint8_t)w->turn);
	qkd_put_u8(out, (uint8_t)w->ncarry);
	qkd_put_bytes(out, w->carry, w->ncarry);
	qkd_put_u64(out, w->key_bits_in);
	qkd_put_u64(out, w->tags_made);
	qkd_put_u64(out, w->tags_verified);
	qkd_put_u64(out, w->tags_failed);
	return out->err;
}

static int dir_import(struct wc_dir *d, struct qkd_rbuf *in)
{
	const uint8_t *p;
	uint64_t nbytes;
	int rc;

	d->key = qkd_get_u64(in);
	d->next = qkd_get_u64(in);
	d->spent_bits = qkd_get_u64(in);
	nbytes = qkd_get_varint(in);
	if (!qkd_rbuf_ok(in) || d->key == 0 || nbytes % QKD_WC_PAD_LEN != 0 ||
	    nbytes > qkd_rbuf_left(in) || d->next > (uint64_t)UINT32_MAX + 1)
		return QKD_ERR_PROTO;
	rc = dir_reserve(d, (size_t)nbytes);
	if (rc != QKD_OK)
		return rc;
	p = qkd_get_bytes(in, (size_t)nbytes);
	if (p == NULL)
		return QKD_ERR_PROTO;
	if (nbytes > 0)
		memcpy(d->pad, p, (size_t)nbytes);
	d->len = (size_t)nbytes;
	return QKD_OK;
}

int qkd_wc_import(struct qkd_wc **out, struct qkd_rbuf *in)
{
	struct qkd_wc *w = calloc(1, sizeof *w);
	int rc = QKD_ERR_PROTO;
	uint8_t alice;

	*out = NULL;
	if (w == NULL)
		return QKD_ERR_NOMEM;
	if (qkd_get_u8(in) != WC_IMAGE_VERSION)
		goto out;
	alice = qkd_get_u8(in);
	w->send = alice ? DIR_AB : DIR_BA;
	w->recv = alice ? DIR_BA : DIR_AB;
	for (int i = 0; i < 2; i++)
		if ((rc = dir_import(&w->dir[i], in)) != QKD_OK)
			goto out;
	rc = QKD_ERR_PROTO;
	w->turn = qkd_get_u8(in);
	w->ncarry = qkd_get_u8(in);
	if (!qkd_rbuf_ok(in) || alice > 1 || w->turn > 1 || w->ncarry >= QKD_WC_PAD_LEN)
		goto out;
	if (w->ncarry > 0) {
		const uint8_t *c = qkd_get_bytes(in, w->ncarry);

		if (c == NULL)
			goto out;
		memcpy(w->carry, c, w->ncarry);
	}
	w->key_bits_in = qkd_get_u64(in);
	w->tags_made = qkd_get_u64(in);
	w->tags_verified = qkd_get_u64(in);
	w->tags_failed = qkd_get_u64(in);
	if (!qkd_rbuf_done(in))
		goto out;
	*out = w;
	w = NULL;
	rc = QKD_OK;
out:
	qkd_wc_free(w);
	return rc;
}
