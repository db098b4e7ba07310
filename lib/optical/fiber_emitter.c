/* fiber_emitter.c - Alice's weak-coherent transmitter on the fiber socket
 * (qkd/fiber.h; DESIGN.md section 3; docs/fiber.md s3).
 *
 * Her choices for slot s (basis, value and, with decoys, the intensity) sit
 * in a fixed record of AES-256-CTR keystream under her choice subkey: block
 * s / spb, record s % spb, so any slot is one keystream block away and the
 * engine's lookup of Bob's slots needs nothing stored. With fair choices
 * and one intensity (the usual link) a record is 2 bits, so her randomness
 * tests, which read every slot's choices, cost 16 times less keystream
 * than with the 4-byte records that biased choices need. The photon
 * numbers come from a second subkey, a stream restarted at every block of
 * 2^16 slots (the block number is in its IV): non-empty pulses are drawn
 * sparsely, with geometric gaps at the largest intensity's rate
 * P(n >= 1) = 1 - e^-mu_max, each candidate kept with
 * P(n >= 1 | mu_k) / P(n >= 1 | mu_max) (thinning by the slot's intensity),
 * then n from Poisson(mu_k) conditioned on n >= 1. Every candidate consumes
 * the same number of words whatever the caller's range, so any chunking of
 * the slots gives the same pulses. Both streams are read by the hundred
 * megabytes a round, hence AES (AES-NI) rather than ChaCha20
 * (docs/fiber.md s1, docs/performance.md "A node's round").
 */
#include "qkd/fiber.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "fiber_int.h"
#include "optical_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

#define PHOTON_BLOCK_SHIFT 16
#define MAX_PHOTONS 65535u
/* The photon number's uniform starts as the low PN_BITS bits of the gap's
 * word (docs/fiber.md s3): a table answers when its whole interval maps to
 * one n, which is all but a few in a thousand. */
#define PN_BITS 11u
#define PN_LEVELS (1u << PN_BITS)
/* The refining keystream of a photon block (ChaCha20 under its own
 * subkey): nonce = the block number, word = the slot's index in the block,
 * so a chunk that starts inside the block refines its pulses exactly as
 * the whole block would. */
/* Keystream generated at once when every block is likely needed (64 KB:
 * below malloc's mmap threshold, so the buffer is reused, not faulted in
 * anew for every frame). */
#define BULK_BLOCKS 1024u
/* Lookup batches: the next LOOKAHEAD slots, if they span at most
 * LOOKAHEAD_BLOCKS blocks, are generated in one call (one ChaCha20 call
 * costs about as much as eight blocks in bulk). */
#define LOOKAHEAD 8u
#define LOOKAHEAD_BLOCKS 64u

struct qkd_emitter {
	uint8_t k_choice[32];
	uint8_t k_photon[32];		/* AES-256-CTR: the walk's stream */
	uint8_t k_refine[32];		/* ChaCha20: random access, rarely */
	unsigned intensities;		/* 1 or 3 */
	unsigned stride;		/* keystream bytes per slot: 4, or 8 with decoys */
	unsigned spb;			/* slots per keystream block: 256, 16 or 8 */
	unsigned spb_shift;		/* log2 spb: slot / spb as a shift, not a division */
	bool packed;			/* fair, one intensity: 2 bits per slot */
	uint32_t thr_basis, thr_value;	/* 16-bit uniform < thr: bit 1 */
	uint64_t thr_int[2];		/* 32-bit uniform < thr_int[k]: intensity <= k */
	double mu_max;
	double inv_lq;			/* 1 / ln P(empty) = -1 / mu_max */
	double mu[QKD_INTENSITIES_MAX];
	double accept[QKD_INTENSITIES_MAX];	/* P(n>=1 | mu_k) / P(n>=1 | mu_max) */
	double p1[QKD_INTENSITIES_MAX];	/* P(n = 1 | n >= 1, mu_k) */
	/* n for every u in [v, v + 1) / PN_LEVELS, or 0 when two n share it. */
	uint16_t pn_tab[QKD_INTENSITIES_MAX][PN_LEVELS];
	bool dense;			/* most keystream blocks hold a candidate */
};

/* Alice's streams are AES-256-CTR (OpenSSL, AES-NI: about five times
 * ChaCha20's speed here), keyed once per call: a context per call keeps
 * the emitter immutable, so chunks may run on several threads. */
static EVP_CIPHER_CTX *aes_new(const uint8_t key[32])
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (ctx != NULL && EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), NULL, key, NULL) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

/* nblocks 64-byte blocks of ctx's keystream from block number counter on:
 * IV = 64 zero bits, then the 64-bit big-endian AES block counter
 * 4 counter (docs/fiber.md s1). */
static int aes_blocks(EVP_CIPHER_CTX *ctx, uint64_t counter, size_t nblocks, uint8_t *out)
{
	uint8_t iv[16] = { 0 };
	int outl = 0, rc = QKD_OK;

	for (unsigned i = 0; i < 8; i++)
		iv[8 + i] = (uint8_t)((counter * 4) >> (56 - 8 * i));
	if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1)
		rc = QKD_ERR_NOMEM;
	while (rc == QKD_OK && nblocks > 0) {
		size_t k = nblocks < FIB_ZEROS_BLOCKS ? nblocks : FIB_ZEROS_BLOCKS;

		if (EVP_EncryptUpdate(ctx, out, &outl, fib_zeros, (int)(k * FIB_BLOCK_BYTES)) != 1)
			rc = QKD_ERR_NOMEM;
		out += k * FIB_BLOCK_BYTES;
		nblocks -= k;
	}
	return rc;
}

/* A window of Alice's choice keystream. */
struct choice_cache {
	const struct qkd_emitter *e;
	EVP_CIPHER_CTX *ctx;	/* keyed with k_choice */
	uint64_t base;		/* first block held */
	size_t have, cap;	/* blocks held, capacity */
	uint8_t *buf;
};

static int cache_init(struct choice_cache *c, const struct qkd_emitter *e, size_t cap)
{
	c->e = e;
	c->base = 0;
	c->have = 0;
	c->cap = cap;
	c->buf = malloc(cap * FIB_BLOCK_BYTES);
	c->ctx = aes_new(e->k_choice);
	return c->buf != NULL && c->ctx != NULL ? QKD_OK : QKD_ERR_NOMEM;
}

static void cache_cleanup(struct choice_cache *c)
{
	qkd_free_secret(c->buf, c->cap * FIB_BLOCK_BYTES);
	c->buf = NULL;
	EVP_CIPHER_CTX_free(c->ctx);	/* cleanses the key schedule */
	c->ctx = NULL;
}

/* The keystream block holding slot's record, or NULL if the cipher
 * failed; on a miss the window is refilled from slot's block up to the
 * block of slot `upto` (>= slot), at most cap blocks. */
static inline __attribute__((always_inline)) const uint8_t *
cache_block(struct choice_cache *c, uint64_t slot, uint64_t upto)
{
	unsigned sh = c->e->spb_shift;
	uint64_t b = slot >> sh;

	/* have == 0 makes b - base >= have, whatever base is. */
	if (b - c->base >= c->have) {
		uint64_t n = (upto >> sh) - b + 1;

		c->have = n < c->cap ? (size_t)n : c->cap;
		c->base = b;
		if (aes_blocks(c->ctx, b, c->have, c->buf) != QKD_OK) {
			c->have = 0;
			return NULL;
		}
	}
	return c->buf + (b - c->base) * FIB_BLOCK_BYTES;
}

/* 2 * basis + value of slot, whose block is blk. Packed: bits 2i (basis)
 * and 2i + 1 (value) of the block, i = slot % 256, bytes in order and
 * bits from the least significant. Otherwise 16-bit uniforms against the
 * thresholds, at bytes (slot % spb) * stride. */
static inline __attribute__((always_inline)) unsigned
rec_state(const struct qkd_emitter *e, const uint8_t *blk, uint64_t slot)
{
	unsigned i = (unsigned)(slot & (e->spb - 1)), basis, value;
	const uint8_t *rec = blk + (size_t)i * e->stride;

	if (e->packed) {
		unsigned two = (blk[i >> 2] >> (2 * (i & 3))) & 3u;

		return 2 * (two & 1) + (two >> 1);
	}
	basis = fib_le16(rec) < e->thr_basis;
	value = fib_le16(rec + 2) < e->thr_value;
	return 2 * basis + value;
}

static inline __attribute__((always_inline)) unsigned
rec_intensity(const struct qkd_emitter *e, const uint8_t *blk, uint64_t slot)
{
	uint64_t u;

	if (e->intensities < QKD_INTENSITIES_MAX)
		return 0;
	u = fib_le32(blk + (slot & (e->spb - 1)) * e->stride + 4);
	return u < e->thr_int[0] ? 0 : u < e->thr_int[1] ? 1 : 2;
}

/* n ~ Poisson(mu_k) given n >= 1, by inversion of one uniform u in [0,1). */
static uint16_t photon_number(const struct qkd_emitter *e, unsigned k, double u)
{
	double term = e->p1[k], cdf = term;
	unsigned n = 1;

	while (u >= cdf && n < MAX_PHOTONS) {
		n++;
		term *= e->mu[k] / n;
		/* Past the mode the terms only shrink: rounding left u above a
		 * cdf that no longer moves. */
		if (cdf + term == cdf && n > e->mu[k])
			break;
		cdf += term;
	}
	return (uint16_t)n;
}

static void set_photon_law(struct qkd_emitter *e, unsigned k, double mu)
{
	double pne = -expm1(-mu);

	e->mu[k] = mu;
	e->accept[k] = mu > 0 ? pne / -expm1(-e->mu_max) : 0.0;
	e->p1[k] = mu > 0 ? mu * exp(-mu) / pne : 1.0;
	/* The inversion is monotone in u: equal at both ends of an interval,
	 * it is that n throughout. */
	for (unsigned v = 0; v < PN_LEVELS; v++) {
		uint16_t lo = photon_number(e, k, (double)v / PN_LEVELS);
		uint16_t hi = photon_number(e, k, nextafter((double)(v + 1) / PN_LEVELS, 0.0));

		e->pn_tab[k][v] = lo == hi ? lo : 0;
	}
}

int qkd_emitter_new(struct qkd_emitter **out, const struct qkd_link_params *link,
		    const uint8_t key[QKD_FIBER_KEY_BYTES])
{
	struct qkd_emitter *e = NULL;
	int rc = QKD_ERR_INVAL;

	*out = NULL;
	if (qkd_link_params_check(link, NULL) != QKD_OK ||
	    link->source != QKD_SOURCE_WEAK_COHERENT)
		goto out;
	rc = QKD_ERR_NOMEM;
	if (sodium_init() < 0 || (e = calloc(1, sizeof *e)) == NULL)
		goto out;
	fib_subkey(e->k_choice, key, FIB_ALICE_CHOICE);
	fib_subkey(e->k_photon, key, FIB_ALICE_PHOTON);
	fib_subkey(e->k_refine, key, FIB_ALICE_REFINE);
	e->intensities = link->intensities == QKD_INTENSITIES_MAX ? QKD_INTENSITIES_MAX : 1;
	e->stride = e->intensities == 1 ? 4 : 8;
	e->thr_basis = fib_thr16(link->p_x);
	e->thr_value = fib_thr16(link->rng_bias);
	e->packed = e->intensities == 1 && e->thr_basis == 0x8000 && e->thr_value == 0x8000;
	e->spb = e->packed ? FIB_BLOCK_BYTES * 4 : FIB_BLOCK_BYTES / e->stride;
	e->spb_shift = (unsigned)__builtin_ctz(e->spb);
	e->thr_int[0] = (uint64_t)llround(link->p_intensity[0] * 0x1p32);
	e->thr_int[1] = (uint64_t)llround((link->p_intensity[0] + link->p_intensity[1]) * 0x1p32);
	/* DESIGN.md s3 decoys: the signal mu is the largest intensity. */
	e->mu_max = link->mu;
	e->inv_lq = -1.0 / e->mu_max;
	for (unsigned k = 0; k < e->intensities; k++)
		set_photon_law(e, k, qkd_link_intensity(link, k));
	e->dense = -expm1(-e->mu_max * e->spb) > 0.2;
	*out = e;
	e = NULL;
	rc = QKD_OK;
out:
	qkd_emitter_free(e);
	return rc;
}

void qkd_emitter_free(struct qkd_emitter *e)
{
	qkd_free_secret(e, e != NULL ? sizeof *e : 0);
}


/* Candidate slot s with its thinning uniform ua and the first PN_BITS
 * bits v of its photon uniform: keep it or not. Where v leaves n open, the
 * uniform is refined with 53 more bits, the slot's word of the block's
 * refining keystream: u = (v + U) / PN_LEVELS is then uniform in [0, 1)
 * exactly. Inlined into the walk: it runs once a pulse. */
static inline __attribute__((always_inline)) int
candidate(const struct qkd_emitter *e, uint64_t s, double ua, unsigned v, uint64_t upto,
	  struct choice_cache *cc, struct qkd_fiber_frame *f)
{
	uint64_t r;
	uint16_t n;
	const uint8_t *blk = cache_block(cc, s, upto);
	unsigned k;
	struct qkd_pulse *p;
	int rc;

	if (blk == NULL)
		return QKD_ERR_NOMEM;
	k = rec_intensity(e, blk, s);
	if (!(ua < e->accept[k]))
		return QKD_OK;
	/* qkd_emitter_chunk reserved the likely count: this rarely grows. */
	rc = f->n < f->cap ? QKD_OK : fib_frame_reserve(f, f->n + 1);
	if (rc != QKD_OK)
		return rc;
	n = e->pn_tab[k][v];
	if (__builtin_expect(n == 0, 0)) {
		r = fib_word_at(e->k_refine, s >> PHOTON_BLOCK_SHIFT,
				s & (((uint64_t)1 << PHOTON_BLOCK_SHIFT) - 1));
		n = photon_number(e, k, (fib_unit_of(r) + v) * (1.0 / PN_LEVELS));
	}
	p = &f->p[f->n++];
	p->slot = s;
	p->photons = n;
	p->state = (uint8_t)rec_state(e, blk, s);
	return QKD_OK;
}

/* The draws of the next WALK_BATCH candidates, in the stream's order
 * (the next words of the block's photon stream, which ctx continues): a
 * word whose top 53 bits are the gap's uniform and whose low PN_BITS bits
 * start the photon number's, then with decoys the thinning uniform's word.
 * The logarithms do not depend on one another, so the CPU overlaps them
 * instead of waiting for each gap before drawing the next. Draws past the
 * block's end are discarded, which changes nothing: the block's stream is
 * read from its start on every walk. */
#define WALK_BATCH 128u
/* Keystream is made 4 KiB at a time (AES-CTR's fast path wants long
 * calls); a batch takes 1 or 2 KiB of it, so never straddles a refill. */
#define WALK_KS_BYTES 4096u
struct walk_draws {
	uint8_t ks[WALK_KS_BYTES];
	size_t ks_pos;		/* bytes of ks used; WALK_KS_BYTES: empty */
	double g[WALK_BATCH], ua[WALK_BATCH];
	unsigned v[WALK_BATCH];
};

static int draw_batch(const struct qkd_emitter *e, EVP_CIPHER_CTX *ctx, struct walk_draws *d)
{
	unsigned per = e->intensities > 1 ? 2 : 1;	/* words a candidate */
	size_t bytes = per * WALK_BATCH * 8;
	const uint8_t *ks;
	int outl = 0;

	_Static_assert(WALK_KS_BYTES % (2 * WALK_BATCH * 8) == 0, "batches tile the buffer");
	_Static_assert(WALK_KS_BYTES <= sizeof fib_zeros, "keystream from fib_zeros");
	if (d->ks_pos == WALK_KS_BYTES) {
		if (EVP_EncryptUpdate(ctx, d->ks, &outl, fib_zeros, (int)WALK_KS_BYTES) != 1 ||
		    outl != (int)WALK_KS_BYTES)
			return QKD_ERR_NOMEM;
		d->ks_pos = 0;
	}
	ks = d->ks + d->ks_pos;
	d->ks_pos += bytes;
	for (unsigned j = 0; j < WALK_BATCH; j++) {
		uint64_t w = fib_le64(ks + 8 * per * j);

		d->g[j] = fib_open_of(w);
		d->v[j] = (unsigned)(w & (PN_LEVELS - 1));
		d->ua[j] = per > 1 ? fib_unit_of(fib_le64(ks + 8 * per * j + 8)) : 0.0;
	}
	for (unsigned j = 0; j < WALK_BATCH; j += 4)
		fib_log_unit4(d->g + j, d->g + j);
	for (unsigned j = 0; j < WALK_BATCH; j++)
		d->g[j] = floor(d->g[j] * e->inv_lq);	/* fib_gap: floor(ln U / lq) */
	return QKD_OK;
}

/* Start ctx (keyed with k_photon) at the photon stream of block b, and
 * empty d's keystream buffer: AES-256-CTR, IV = the block number (64 bits,
 * big-endian) then a 64-bit counter from 0. A block reads little more
 * than 2^17 words (1 MiB), so the counter never carries into the block
 * number's half. */
static int photon_stream_at(EVP_CIPHER_CTX *ctx, uint64_t b, struct walk_draws *d)
{
	uint8_t iv[16] = { 0 };

	d->ks_pos = WALK_KS_BYTES;
	for (unsigned i = 0; i < 8; i++)
		iv[i] = (uint8_t)(b >> (56 - 8 * i));
	return EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) == 1 ? QKD_OK : QKD_ERR_NOMEM;
}

/* The non-empty pulses of photon block b that fall in [first, end). The
 * walk starts at the block's first slot, whatever first is. */
static int walk_block(const struct qkd_emitter *e, uint64_t b, uint64_t first, uint64_t end,
		      struct choice_cache *cc, struct qkd_fiber_frame *f, struct walk_draws *d,
		      EVP_CIPHER_CTX *ctx)
{
	uint64_t pos = b << PHOTON_BLOCK_SHIFT;
	uint64_t stop = pos + ((uint64_t)1 << PHOTON_BLOCK_SHIFT);
	bool more = true;
	int rc = photon_stream_at(ctx, b, d);

	if (stop > end)
		stop = end;
	while (rc == QKD_OK && more && (rc = draw_batch(e, ctx, d)) == QKD_OK) {
		for (unsigned j = 0; rc == QKD_OK && j < WALK_BATCH; j++) {
			uint64_t s;

			if (!(d->g[j] < (double)(stop - pos))) {
				more = false;
				break;
			}
			s = pos + (uint64_t)d->g[j];
			pos = s + 1;
			if (s >= first)
				rc = candidate(e, s, d->ua[j], d->v[j], end - 1, cc, f);
		}
	}
	return rc;
}

/* Room for the pulses of count slots, which are Binomial(count, 1 - e^-mu_max)
 * at most: the mean and 8 standard deviations, so the walk almost never
 * grows the frame (candidate() still grows it if it must). */
static int reserve_likely(const struct qkd_emitter *e, uint64_t count,
			  struct qkd_fiber_frame *f)
{
	double p = -expm1(-e->mu_max), m = (double)count * p;
	double want = m + 8.0 * sqrt(m * (1.0 - p)) + 64.0;

	if (want > (double)count)
		want = (double)count;
	if (want > (double)QKD_FIBER_MAX_FRAME_PULSES)
		want = (double)QKD_FIBER_MAX_FRAME_PULSES;
	return fib_frame_reserve(f, (size_t)want);
}

int qkd_emitter_chunk(const struct qkd_emitter *e, uint64_t first, uint64_t count,
		      struct qkd_fiber_frame *f)
{
	struct choice_cache cc = { 0 };
	struct walk_draws *d = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	uint64_t end = first + count;
	int rc;

	f->n = 0;
	if (count > QKD_FIBER_MAX_FRAME_SLOTS || first > QKD_PULSES_MAX - count)
		return QKD_ERR_RANGE;
	f->first = first;
	f->slots = count;
	rc = reserve_likely(e, count, f);
	if (rc == QKD_OK)
		rc = cache_init(&cc, e, e->dense ? BULK_BLOCKS : 1);
	if (rc == QKD_OK && (d = malloc(sizeof *d)) == NULL)
		rc = QKD_ERR_NOMEM;
	/* The key schedule once a chunk; each block only sets the IV. */
	if (rc == QKD_OK && (ctx = aes_new(e->k_photon)) == NULL)
		rc = QKD_ERR_NOMEM;
	for (uint64_t b = first >> PHOTON_BLOCK_SHIFT;
	     rc == QKD_OK && count > 0 && (b << PHOTON_BLOCK_SHIFT) < end; b++)
		rc = walk_block(e, b, first, end, &cc, f, d, ctx);
	EVP_CIPHER_CTX_free(ctx);	/* cleanses the key schedule */
	qkd_free_secret(d, d != NULL ? sizeof *d : 0);
	cache_cleanup(&cc);
	if (rc != QKD_OK) {
		qkd_wipe(f->p, f->n * sizeof *f->p);
		f->n = 0;
	}
	return rc;
}

/* ---- Alice's source for the engine (qkd/source.h) ---- */

static bool slots_ok(const uint64_t *slot, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (slot[i] >= QKD_PULSES_MAX || (i > 0 && slot[i] <= slot[i - 1]))
			return false;
	return true;
}

/* Where the batch of a lookup miss at slot[i] should end. */
static uint64_t lookahead(const struct qkd_emitter *e, const uint64_t *slot, size_t n, size_t i)
{
	size_t j = n - 1 - i > LOOKAHEAD ? i + LOOKAHEAD : n - 1;

	return slot[j] / e->spb - slot[i] / e->spb < LOOKAHEAD_BLOCKS ? slot[j] : slot[i];
}

static int src_lookup(void *ctx, const uint64_t *slot, size_t n, struct qkd_bits *basis,
		      struct qkd_bits *value, struct qkd_bits *valid)
{
	const struct qkd_emitter *e = ctx;
	struct choice_cache cc;
	int rc;

	if (!slots_ok(slot, n))
		return QKD_ERR_INVAL;
	rc = cache_init(&cc, e, LOOKAHEAD_BLOCKS);
	for (size_t i = 0; rc == QKD_OK && i < n; i++) {
		const uint8_t *blk = cache_block(&cc, slot[i], lookahead(e, slot, n, i));
		unsigned st;

		if (blk == NULL) {
			rc = QKD_ERR_NOMEM;
			break;
		}
		st = rec_state(e, blk, slot[i]);
		qkd_bits_set(basis, i, st >> 1);
		qkd_bits_set(value, i, st & 1);
		qkd_bits_set(valid, i, 1);	/* she sent a pulse in every slot */
	}
	cache_cleanup(&cc);
	return rc;
}

/* Packed records, 32 slots per keystream word, 32-aligned: the choices of
 * [first, first + count) by words (opt_deinterleave splits a word's basis
 * and value bits), the keystream made BULK_BLOCKS at a time. */
static int packed_choices(const struct qkd_emitter *e, uint64_t first, uint64_t count,
			  struct qkd_bits *basis, struct qkd_bits *value)
{
	uint8_t *buf = malloc(BULK_BLOCKS * FIB_BLOCK_BYTES);
	EVP_CIPHER_CTX *ctx = aes_new(e->k_choice);
	uint64_t i = 0;
	int rc = buf != NULL && ctx != NULL ? QKD_OK : QKD_ERR_NOMEM;

	if (rc != QKD_OK)
		goto out;
	memset(basis->w, 0, qkd_bits_words(count) * sizeof(uint64_t));
	memset(value->w, 0, qkd_bits_words(count) * sizeof(uint64_t));
	while (rc == QKD_OK && i < count) {
		uint64_t b = (first + i) / e->spb, left = (count - i + e->spb - 1) / e->spb;
		size_t nb = left < BULK_BLOCKS ? (size_t)left : BULK_BLOCKS;
		/* The window may start inside a block: skip its first words. */
		size_t w = (size_t)((first + i) % e->spb / 32), words = nb * FIB_BLOCK_BYTES / 8;

		rc = aes_blocks(ctx, b, nb, buf);
		for (; rc == QKD_OK && w < words && i < count; w++, i += 32) {
			uint64_t d = opt_deinterleave(fib_le64(buf + 8 * w));
			uint64_t keep = count - i >= 32 ? 0xffffffffu : (1ull << (count - i)) - 1;

			basis->w[i >> 6] |= (d & keep) << (i & 63);
			value->w[i >> 6] |= ((d >> 32) & keep) << (i & 63);
		}
	}
out:
	EVP_CIPHER_CTX_free(ctx);
	qkd_free_secret(buf, buf != NULL ? BULK_BLOCKS * FIB_BLOCK_BYTES : 0);
	return rc;
}

static int src_choices(void *ctx, uint64_t first, uint64_t count, struct qkd_bits *basis,
		       struct qkd_bits *value)
{
	const struct qkd_emitter *e = ctx;
	struct choice_cache cc;
	int rc;

	if (count == 0)
		return QKD_OK;
	if (first > QKD_PULSES_MAX - count || basis->n < count || value->n < count)
		return QKD_ERR_RANGE;
	if (e->packed && first % 32 == 0)
		return packed_choices(e, first, count, basis, value);
	rc = cache_init(&cc, e, BULK_BLOCKS);
	for (uint64_t i = 0; rc == QKD_OK && i < count; i++) {
		uint64_t s = first + i;
		const uint8_t *blk = cache_block(&cc, s, first + count - 1);
		unsigned st;

		if (blk == NULL) {
			rc = QKD_ERR_NOMEM;
			break;
		}
		st = rec_state(e, blk, s);
		qkd_bits_set(basis, (size_t)i, st >> 1);
		qkd_bits_set(value, (size_t)i, st & 1);
	}
	cache_cleanup(&cc);
	return rc;
}

static int src_intensity(void *ctx, const uint64_t *slot, size_t n, uint8_t *out)
{
	const struct qkd_emitter *e = ctx;
	struct choice_cache cc;
	int rc;

	if (!slots_ok(slot, n))
		return QKD_ERR_INVAL;
	rc = cache_init(&cc, e, LOOKAHEAD_BLOCKS);
	for (size_t i = 0; rc == QKD_OK && i < n; i++) {
		const uint8_t *blk = cache_block(&cc, slot[i], lookahead(e, slot, n, i));

		if (blk == NULL)
			rc = QKD_ERR_NOMEM;
		else
			out[i] = (uint8_t)rec_intensity(e, blk, slot[i]);
	}
	cache_cleanup(&cc);
	return rc;
}

void qkd_emitter_alice_source(const struct qkd_emitter *e, struct qkd_alice_source *ops)
{
	memset(ops, 0, sizeof *ops);
	ops->lookup = src_lookup;
	ops->choices = src_choices;
	ops->intensity = e->intensities == QKD_INTENSITIES_MAX ? src_intensity : NULL;
	ops->ctx = (void *)e;	/* the callbacks only read it */
}
