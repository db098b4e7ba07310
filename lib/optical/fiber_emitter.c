/* fiber_emitter.c - Alice's weak-coherent transmitter on the fiber socket
 * (qkd/fiber.h; DESIGN.md section 3; docs/fiber.md s3).
 *
 * Her choices for slot s (basis, value and, with decoys, the intensity) sit
 * in a fixed record of ChaCha20 keystream under her choice subkey: block
 * s / spb, record s % spb, so any slot is one keystream block away and the
 * engine's lookup of Bob's slots needs nothing stored. With fair choices
 * and one intensity (the usual link) a record is 2 bits, so her randomness
 * tests, which read every slot's choices, cost 16 times less keystream
 * than with the 4-byte records that biased choices need (docs/fiber.md s1). The photon
 * numbers come from a second subkey, restarted at every block of 2^16 slots
 * (the block number is the nonce): non-empty pulses are drawn sparsely, with
 * geometric gaps at the largest intensity's rate P(n >= 1) = 1 - e^-mu_max,
 * each candidate kept with P(n >= 1 | mu_k) / P(n >= 1 | mu_max) (thinning
 * by the slot's intensity), then n from Poisson(mu_k) conditioned on n >= 1.
 * Every candidate consumes the same number of words whatever the caller's
 * range, so any chunking of the slots gives the same pulses.
 */
#include "qkd/fiber.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
/* The refining keystream of a photon block: nonce = block | this bit, word
 * = the slot's index in the block, so a chunk that starts inside the block
 * refines its pulses exactly as the whole block would. */
#define PN_REFINE_NONCE ((uint64_t)1 << 63)
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
	uint8_t k_photon[32];
	unsigned intensities;		/* 1 or 3 */
	unsigned stride;		/* keystream bytes per slot: 4, or 8 with decoys */
	unsigned spb;			/* slots per keystream block */
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

/* A window of Alice's choice keystream. */
struct choice_cache {
	const struct qkd_emitter *e;
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
	return c->buf != NULL ? QKD_OK : QKD_ERR_NOMEM;
}

static void cache_cleanup(struct choice_cache *c)
{
	qkd_free_secret(c->buf, c->cap * FIB_BLOCK_BYTES);
	c->buf = NULL;
}

/* The keystream block holding slot's record; on a miss the window is
 * refilled from slot's block up to the block of slot `upto` (>= slot), at
 * most cap blocks. */
static inline __attribute__((always_inline)) const uint8_t *
cache_block(struct choice_cache *c, uint64_t slot, uint64_t upto)
{
	unsigned spb = c->e->spb;
	uint64_t b = slot / spb;

	if (c->have == 0 || b < c->base || b - c->base >= c->have) {
		uint64_t n = upto / spb - b + 1;

		c->have = n < c->cap ? (size_t)n : c->cap;
		c->base = b;
		fib_blocks(c->e->k_choice, b, c->have, c->buf);
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
	unsigned i = (unsigned)(slot % e->spb), basis, value;
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
	u = fib_le32(blk + (slot % e->spb) * e->stride + 4);
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
	e->intensities = link->intensities == QKD_INTENSITIES_MAX ? QKD_INTENSITIES_MAX : 1;
	e->stride = e->intensities == 1 ? 4 : 8;
	e->thr_basis = fib_thr16(link->p_x);
	e->thr_value = fib_thr16(link->rng_bias);
	e->packed = e->intensities == 1 && e->thr_basis == 0x8000 && e->thr_value == 0x8000;
	e->spb = e->packed ? FIB_BLOCK_BYTES * 4 : FIB_BLOCK_BYTES / e->stride;
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
 * exactly. */
static int candidate(const struct qkd_emitter *e, uint64_t s, double ua, unsigned v,
		     uint64_t upto, struct choice_cache *cc, struct qkd_fiber_frame *f)
{
	uint64_t r;
	uint16_t n;
	const uint8_t *blk = cache_block(cc, s, upto);
	unsigned k = rec_intensity(e, blk, s);
	int rc;

	if (!(ua < e->accept[k]))
		return QKD_OK;
	rc = f->n < f->cap ? QKD_OK : fib_frame_reserve(f, f->n + 1);
	if (rc != QKD_OK)
		return rc;
	n = e->pn_tab[k][v];
	if (n == 0) {
		r = fib_word_at(e->k_photon, (s >> PHOTON_BLOCK_SHIFT) | PN_REFINE_NONCE,
				s & (((uint64_t)1 << PHOTON_BLOCK_SHIFT) - 1));
		n = photon_number(e, k, (fib_unit_of(r) + v) * (1.0 / PN_LEVELS));
	}
	f->p[f->n].slot = s;
	f->p[f->n].photons = n;
	f->p[f->n].state = (uint8_t)rec_state(e, blk, s);
	f->n++;
	return QKD_OK;
}

/* The draws of the next WALK_BATCH candidates, in the stream's order: a
 * word whose top 53 bits are the gap's uniform and whose low PN_BITS bits
 * start the photon number's, then with decoys the thinning uniform. The
 * logarithms do
 * not depend on one another, so the CPU overlaps them instead of waiting for
 * each gap before drawing the next: the walk costs half as much. Draws past
 * the block's end are discarded, which changes nothing: the block's stream
 * is read from its start on every walk. */
#define WALK_BATCH 64u
struct walk_draws {
	double g[WALK_BATCH], ua[WALK_BATCH];
	unsigned v[WALK_BATCH];
};

static void draw_batch(const struct qkd_emitter *e, struct fib_stream *st, struct walk_draws *d)
{
	for (unsigned j = 0; j < WALK_BATCH; j++) {
		uint64_t w = fib_u64(st);

		d->g[j] = fib_open_of(w);
		d->v[j] = (unsigned)(w & (PN_LEVELS - 1));
		d->ua[j] = e->intensities > 1 ? fib_unit(st) : 0.0;
	}
	for (unsigned j = 0; j < WALK_BATCH; j += 4)
		fib_log_unit4(d->g + j, d->g + j);
	for (unsigned j = 0; j < WALK_BATCH; j++)
		d->g[j] = floor(d->g[j] * e->inv_lq);	/* fib_gap: floor(ln U / lq) */
}

/* The non-empty pulses of photon block b that fall in [first, end). The
 * walk starts at the block's first slot, whatever first is. */
static int walk_block(const struct qkd_emitter *e, uint64_t b, uint64_t first, uint64_t end,
		      struct choice_cache *cc, struct qkd_fiber_frame *f)
{
	uint64_t pos = b << PHOTON_BLOCK_SHIFT;
	uint64_t stop = pos + ((uint64_t)1 << PHOTON_BLOCK_SHIFT);
	struct fib_stream st;
	struct walk_draws d;
	bool more = true;
	int rc = QKD_OK;

	if (stop > end)
		stop = end;
	fib_stream_init(&st, e->k_photon, b);
	while (rc == QKD_OK && more) {
		draw_batch(e, &st, &d);
		for (unsigned j = 0; rc == QKD_OK && j < WALK_BATCH; j++) {
			uint64_t s;

			if (!(d.g[j] < (double)(stop - pos))) {
				more = false;
				break;
			}
			s = pos + (uint64_t)d.g[j];
			pos = s + 1;
			if (s >= first)
				rc = candidate(e, s, d.ua[j], d.v[j], end - 1, cc, f);
		}
	}
	sodium_memzero(&st, sizeof st);
	sodium_memzero(&d, sizeof d);
	return rc;
}

int qkd_emitter_chunk(const struct qkd_emitter *e, uint64_t first, uint64_t count,
		      struct qkd_fiber_frame *f)
{
	struct choice_cache cc = { 0 };
	uint64_t end = first + count;
	int rc;

	f->n = 0;
	if (count > QKD_FIBER_MAX_FRAME_SLOTS || first > QKD_PULSES_MAX - count)
		return QKD_ERR_RANGE;
	f->first = first;
	f->slots = count;
	rc = cache_init(&cc, e, e->dense ? BULK_BLOCKS : 1);
	for (uint64_t b = first >> PHOTON_BLOCK_SHIFT;
	     rc == QKD_OK && count > 0 && (b << PHOTON_BLOCK_SHIFT) < end; b++)
		rc = walk_block(e, b, first, end, &cc, f);
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
		unsigned st = rec_state(e, cache_block(&cc, slot[i], lookahead(e, slot, n, i)),
					slot[i]);

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
	uint64_t i = 0;

	if (buf == NULL)
		return QKD_ERR_NOMEM;
	memset(basis->w, 0, qkd_bits_words(count) * sizeof(uint64_t));
	memset(value->w, 0, qkd_bits_words(count) * sizeof(uint64_t));
	while (i < count) {
		uint64_t b = (first + i) / e->spb, left = (count - i + e->spb - 1) / e->spb;
		size_t nb = left < BULK_BLOCKS ? (size_t)left : BULK_BLOCKS;
		/* The window may start inside a block: skip its first words. */
		size_t w = (size_t)((first + i) % e->spb / 32), words = nb * FIB_BLOCK_BYTES / 8;

		fib_blocks(e->k_choice, b, nb, buf);
		for (; w < words && i < count; w++, i += 32) {
			uint64_t d = opt_deinterleave(fib_le64(buf + 8 * w));
			uint64_t keep = count - i >= 32 ? 0xffffffffu : (1ull << (count - i)) - 1;

			basis->w[i >> 6] |= (d & keep) << (i & 63);
			value->w[i >> 6] |= ((d >> 32) & keep) << (i & 63);
		}
	}
	qkd_free_secret(buf, BULK_BLOCKS * FIB_BLOCK_BYTES);
	return QKD_OK;
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
		unsigned st = rec_state(e, cache_block(&cc, s, first + count - 1), s);

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
	for (size_t i = 0; rc == QKD_OK && i < n; i++)
		out[i] = (uint8_t)rec_intensity(e, cache_block(&cc, slot[i],
							      lookahead(e, slot, n, i)), slot[i]);
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
