/* Wegman-Carter authentication of the classical channel: a GF(2^64)
 * polynomial hash, almost-XOR-universal, XORed with a one-time pad per
 * tag; the channel tags batches of frames through a running hash per
 * direction. Construction, key layout and bounds: qkd/auth_wc.h and
 * docs/authentication.md. */
#include "qkd/auth_wc.h"

#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/secret.h"
#include "qkd/verify.h"
#include "qkd/wire.h"

enum { DIR_AB = 0, DIR_BA = 1 };

/* One direction: its hash key and its unused pads. The pad of index s
 * (s >= next) is pad[off + 8*(s - next)], held while that is < len. */
struct wc_dir {
	uint64_t key;
	uint8_t *pad;		/* secret, cap bytes; bytes outside [off, len) are zero */
	size_t off, len, cap;
	uint64_t next;		/* lowest index whose pad is unused */
	uint64_t spent_bits;	/* pads destroyed, used or skipped */
	/* Indexes above next whose pad a failed check destroyed in place
	 * (wiped, never handed out); forgotten once next passes them. */
	uint64_t burnt[QKD_WC_BURNT_MAX];
	size_t nburnt;
};

/* H_k over a byte stream, by Horner's rule as it arrives: h holds the
 * words absorbed so far, part the bytes of an unfinished word. Secret (h
 * depends on k). */
struct wc_stream {
	uint64_t h, nbytes;
	uint8_t part[8];
	size_t npart;
};

struct qkd_wc {
	struct wc_dir dir[2];			/* DIR_AB, DIR_BA */
	struct wc_stream batch[2];		/* running H of each direction's batch */
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

static void stream_absorb(struct wc_stream *s, uint64_t k, const uint8_t *m, size_t len)
{
	size_t i = 0;

	s->nbytes += len;
	if (s->npart > 0) {
		size_t take = 8 - s->npart < len ? 8 - s->npart : len;

		memcpy(s->part + s->npart, m, take);
		s->npart += take;
		i = take;
		if (s->npart < 8)
			return;
		s->h = qkd_gf64_mul(s->h ^ load_le64(s->part), k);
		s->npart = 0;
	}
	for (; len - i >= 8; i += 8)
		s->h = qkd_gf64_mul(s->h ^ load_le64(m + i), k);
	memcpy(s->part, m + i, len - i);
	s->npart = len - i;
}

/* H_k of everything absorbed: the last word zero-padded, then the bit
 * length. The stream starts over. */
static uint64_t stream_final(struct wc_stream *s, uint64_t k)
{
	uint64_t h = s->h;

	if (s->npart > 0) {
		memset(s->part + s->npart, 0, 8 - s->npart);
		h = qkd_gf64_mul(h ^ load_le64(s->part), k);
	}
	h = qkd_gf64_mul(h ^ s->nbytes * 8, k);
	qkd_wipe(s, sizeof *s);
	return h;
}

/* H_k(m) of qkd/auth_wc.h; the same value as qkd_verify_tag() of m's
 * bits, without copying m into a qkd_bits. */
static uint64_t wc_hash(uint64_t k, const uint8_t *m, size_t len)
{
	struct wc_stream s = {0};

	stream_absorb(&s, k, m, len);
	return stream_final(&s, k);
}

static size_t dir_pads(const struct wc_dir *d)
{
	return (d->len - d->off) / QKD_WC_PAD_LEN;
}

/* Pads that can still be used: those held but the burnt ones. */
static size_t dir_usable(const struct wc_dir *d)
{
	return dir_pads(d) - d->nburnt;
}

static bool dir_is_burnt(const struct wc_dir *d, uint64_t index)
{
	for (size_t i = 0; i < d->nburnt; i++)
		if (d->burnt[i] == index)
			return true;
	return false;
}

/* next moved: burnt indexes below it are gone with the pads. */
static void dir_forget_burnt(struct wc_dir *d)
{
	size_t k = 0;

	for (size_t i = 0; i < d->nburnt; i++)
		if (d->burnt[i] >= d->next)
			d->burnt[k++] = d->burnt[i];
	d->nburnt = k;
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

/* Burnt indexes below end: their pads were counted spent when burnt. */
static size_t count_burnt_below(const struct wc_dir *d, uint64_t end)
{
	size_t n = 0;

	for (size_t i = 0; i < d->nburnt; i++)
		n += d->burnt[i] < end;
	return n;
}

/* Copy pad(index) to out and destroy it with every unused pad below it. */
static int dir_take(struct wc_dir *d, uint32_t index, uint8_t *out)
{
	size_t idx, n;

	if (index < d->next || dir_is_burnt(d, index))
		return QKD_ERR_VERIFY;
	if (index - d->next >= dir_pads(d))
		return QKD_ERR_NOKEY;
	idx = (size_t)(index - d->next);
	memcpy(out, d->pad + d->off + idx * QKD_WC_PAD_LEN, QKD_WC_PAD_LEN);
	n = (idx + 1) * QKD_WC_PAD_LEN;
	qkd_wipe(d->pad + d->off, n);
	d->off += n;
	if (d->off == d->len)
		d->off = d->len = 0;
	d->spent_bits += (uint64_t)(n / QKD_WC_PAD_LEN - count_burnt_below(d, index + 1)) *
			 QKD_WC_PAD_LEN * 8;
	d->next = (uint64_t)index + 1;
	dir_forget_burnt(d);
	return QKD_OK;
}

/* A check of pad(index) failed: destroy that pad alone, in place, so that a
 * forger who names an index ahead of the sender's makes the receiver skip
 * nothing. With no room to remember it, the pads up to it go (the old
 * rule: still one try per pad). */
static void dir_burn(struct wc_dir *d, uint32_t index)
{
	uint8_t pad[QKD_WC_PAD_LEN];

	if (d->nburnt == QKD_WC_BURNT_MAX) {
		(void)dir_take(d, index, pad);
		qkd_wipe(pad, sizeof pad);
		return;
	}
	qkd_wipe(d->pad + d->off + (size_t)(index - d->next) * QKD_WC_PAD_LEN, QKD_WC_PAD_LEN);
	d->burnt[d->nburnt++] = index;
	d->spent_bits += QKD_WC_PAD_LEN * 8;
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

/* out = LE64(h) XOR pad(index) of d; the pad is then destroyed. */
static int wc_mask(struct wc_dir *d, uint32_t index, uint64_t h, uint8_t *out)
{
	uint8_t pad[QKD_WC_PAD_LEN];
	int rc = dir_take(d, index, pad);

	if (rc != QKD_OK)
		return rc;
	for (int i = 0; i < QKD_WC_PAD_LEN; i++)
		out[i] = (uint8_t)(h >> (8 * i)) ^ pad[i];
	qkd_wipe(pad, sizeof pad);
	return QKD_OK;
}

/* Whether dir_take would hand out pad(index): nothing is consumed. */
static int dir_holds(const struct wc_dir *d, uint32_t index)
{
	if (index < d->next || dir_is_burnt(d, index))
		return QKD_ERR_VERIFY;
	return index - d->next < dir_pads(d) ? QKD_OK : QKD_ERR_NOKEY;
}

/* Check tag against h with pad(index) of the receiving direction d: on
 * success the pad goes with every unused pad below it, on failure it alone
 * is destroyed (dir_burn). Counts the outcome. */
static int dir_check(struct qkd_wc *w, struct wc_dir *d, uint32_t index, uint64_t h,
		     const uint8_t *tag)
{
	uint8_t want[QKD_WC_TAG_LEN];
	const uint8_t *pad;
	int rc = dir_holds(d, index);

	if (rc == QKD_ERR_NOKEY)
		return rc;
	if (rc == QKD_OK) {
		pad = d->pad + d->off + (size_t)(index - d->next) * QKD_WC_PAD_LEN;
		for (int i = 0; i < QKD_WC_PAD_LEN; i++)
			want[i] = (uint8_t)(h >> (8 * i)) ^ pad[i];
		if (!qkd_ct_equal(want, tag, QKD_WC_TAG_LEN))
			rc = QKD_ERR_VERIFY;
		if (rc == QKD_OK)
			(void)dir_take(d, index, want);
		else
			dir_burn(d, index);
	}
	/* The expected tag of a forgery gives H(m) + H(m'): key information. */
	qkd_wipe(want, sizeof want);
	if (rc == QKD_OK)
		w->tags_verified++;
	else
		w->tags_failed++;
	return rc;
}

/* The tag a party makes: count it. */
static int made(struct qkd_wc *w, int rc)
{
	if (rc == QKD_OK)
		w->tags_made++;
	return rc;
}

static int msg_ok(const uint8_t *msg, size_t len)
{
	if ((uint64_t)len > UINT64_MAX / 8)
		return QKD_ERR_RANGE;
	return msg == NULL && len > 0 ? QKD_ERR_INVAL : QKD_OK;
}

int qkd_wc_tag(struct qkd_wc *w, uint32_t index, const uint8_t *msg, size_t len,
	       uint8_t *tag)
{
	struct wc_dir *d;
	uint64_t h;
	int rc;

	if (w == NULL || tag == NULL)
		return QKD_ERR_INVAL;
	d = &w->dir[w->send];
	rc = msg_ok(msg, len);
	if (rc == QKD_OK)
		rc = dir_holds(d, index);
	if (rc != QKD_OK)
		return rc;
	h = wc_hash(d->key, msg, len);
	rc = wc_mask(d, index, h, tag);
	qkd_wipe(&h, sizeof h);
	return made(w, rc);
}

int qkd_wc_verify(struct qkd_wc *w, uint32_t index, const uint8_t *msg, size_t len,
		  const uint8_t *tag)
{
	uint64_t h;
	int rc;

	if (w == NULL || tag == NULL)
		return QKD_ERR_INVAL;
	rc = msg_ok(msg, len);
	if (rc != QKD_OK)
		return rc;
	h = wc_hash(w->dir[w->recv].key, msg, len);
	rc = dir_check(w, &w->dir[w->recv], index, h, tag);
	qkd_wipe(&h, sizeof h);
	return rc;
}

void qkd_wc_absorb(struct qkd_wc *w, bool sent, const uint8_t *p, size_t len)
{
	int d = sent ? w->send : w->recv;

	if (len > 0)
		stream_absorb(&w->batch[d], w->dir[d].key, p, len);
}

int qkd_wc_seal(struct qkd_wc *w, uint32_t index, uint8_t *tag)
{
	struct wc_dir *d;
	uint64_t h;
	int rc;

	if (w == NULL || tag == NULL)
		return QKD_ERR_INVAL;
	d = &w->dir[w->send];
	rc = dir_holds(d, index);
	if (rc != QKD_OK)
		return rc;
	h = stream_final(&w->batch[w->send], d->key);
	rc = wc_mask(d, index, h, tag);
	qkd_wipe(&h, sizeof h);
	return made(w, rc);
}

int qkd_wc_check(struct qkd_wc *w, uint32_t index, const uint8_t *tag)
{
	struct wc_dir *d;
	uint64_t h;
	int rc;

	if (w == NULL || tag == NULL)
		return QKD_ERR_INVAL;
	d = &w->dir[w->recv];
	if (dir_holds(d, index) == QKD_ERR_NOKEY)
		return QKD_ERR_NOKEY;
	/* A batch is checked once, whatever comes of it: the next starts over. */
	h = stream_final(&w->batch[w->recv], d->key);
	rc = dir_check(w, d, index, h, tag);
	qkd_wipe(&h, sizeof h);
	return rc;
}

void qkd_wc_reset_batches(struct qkd_wc *w)
{
	qkd_wipe(w->batch, sizeof w->batch);
}

uint64_t qkd_wc_send_pads_left(const struct qkd_wc *w)
{
	return dir_pads(&w->dir[w->send]);
}

uint64_t qkd_wc_recv_pads_left(const struct qkd_wc *w)
{
	return dir_usable(&w->dir[w->recv]);
}

uint64_t qkd_wc_next_send_index(const struct qkd_wc *w)
{
	return w->dir[w->send].next;
}

uint64_t qkd_wc_next_recv_index(const struct qkd_wc *w)
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
	st->recv_bits_left = (uint64_t)dir_usable(&w->dir[w->recv]) * QKD_WC_PAD_LEN * 8;
	st->pending_bits = (uint64_t)w->ncarry * 8;
	st->tags_made = w->tags_made;
	st->tags_verified = w->tags_verified;
	st->tags_failed = w->tags_failed;
}

static void ops_absorb(void *ctx, bool sent, const uint8_t *p, size_t len)
{
	qkd_wc_absorb(ctx, sent, p, len);
}

static int ops_tag(void *ctx, uint32_t index, uint8_t *tag)
{
	return qkd_wc_seal(ctx, index, tag);
}

static int ops_verify(void *ctx, uint32_t index, const uint8_t *tag)
{
	return qkd_wc_check(ctx, index, tag);
}

const struct qkd_auth_ops qkd_auth_wc = {
	.name = "wegman-carter", .tag_len = QKD_WC_TAG_LEN,
	.absorb = ops_absorb, .tag = ops_tag, .verify = ops_verify,
};

/* --- Saving and restoring the state (crash safety, docs/node.md) -------- */

#define WC_IMAGE_VERSION 2

/* One direction as it will be after the pads below `lease` are used. */
static void dir_export(const struct wc_dir *d, uint64_t lease, struct qkd_wbuf *out)
{
	uint64_t skip = lease > d->next ? lease - d->next : 0, pads = dir_pads(d);
	uint64_t end;

	if (pads > (uint64_t)UINT32_MAX + 1 - d->next)
		pads = (uint64_t)UINT32_MAX + 1 - d->next;	/* past the last index */
	if (skip > pads)
		skip = pads;
	end = d->next + pads;
	qkd_put_u64(out, d->key);
	qkd_put_u64(out, d->next + skip);	/* never beyond the pads held */
	qkd_put_u64(out, d->spent_bits + skip * QKD_WC_PAD_LEN * 8);
	qkd_put_varint(out, (pads - skip) * QKD_WC_PAD_LEN);
	/* A direction with no pad may have no buffer at all (an image of one
	 * read back): no pointer arithmetic on it. */
	if (pads > skip)
		qkd_put_bytes(out, d->pad + d->off + skip * QKD_WC_PAD_LEN,
			      (size_t)(pads - skip) * QKD_WC_PAD_LEN);
	qkd_put_varint(out, count_burnt_below(d, end) - count_burnt_below(d, d->next + skip));
	for (size_t i = 0; i < d->nburnt; i++)
		if (d->burnt[i] >= d->next + skip && d->burnt[i] < end)
			qkd_put_varint(out, d->burnt[i]);
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
	/* Tag indices are 32 bits (qkd_wc_seal): pad i exists only for
	 * i <= UINT32_MAX, so next plus the pads held is at most 2^32. An
	 * image claiming more is corrupt, and its export, which moves next
	 * forward by a lease, would name an index no import accepts. */
	if (!qkd_rbuf_ok(in) || d->key == 0 || nbytes % QKD_WC_PAD_LEN != 0 ||
	    nbytes > qkd_rbuf_left(in) || d->next > (uint64_t)UINT32_MAX + 1 ||
	    nbytes / QKD_WC_PAD_LEN > (uint64_t)UINT32_MAX + 1 - d->next)
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
	d->nburnt = (size_t)qkd_get_count(in, QKD_WC_BURNT_MAX);
	for (size_t i = 0; i < d->nburnt && qkd_rbuf_ok(in); i++) {
		d->burnt[i] = qkd_get_varint(in);
		if (d->burnt[i] < d->next || d->burnt[i] - d->next >= dir_pads(d))
			qkd_rbuf_fail(in, QKD_ERR_PROTO);
		for (size_t j = 0; j < i; j++)
			if (d->burnt[j] == d->burnt[i])
				qkd_rbuf_fail(in, QKD_ERR_PROTO);
	}
	return qkd_rbuf_ok(in) ? QKD_OK : QKD_ERR_PROTO;
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
