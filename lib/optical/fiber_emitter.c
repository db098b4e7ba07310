/* fiber_emitter.c - Alice's weak-coherent transmitter on the fiber socket
 * (qkd/fiber.h; DESIGN.md section 3; docs/fiber.md s3).
 *
 * Her choices for slot s (basis, value and, with decoys, the intensity) sit
 * in a fixed record of ChaCha20 keystream under her choice subkey: block
 * s / spb, bytes (s % spb) * stride, so any slot is one keystream block away
 * and the engine's lookup of Bob's slots needs nothing stored. The photon
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
#include "qkd/error.h"
#include "qkd/secret.h"

#define PHOTON_BLOCK_SHIFT 16
#define MAX_PHOTONS 65535u
/* Keystream generated at once when every block is likely needed (256 KB). */
#define BULK_BLOCKS 4096u
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
	uint32_t thr_basis, thr_value;	/* 16-bit uniform < thr: bit 1 */
	uint64_t thr_int[2];		/* 32-bit uniform < thr_int[k]: intensity <= k */
	double mu_max;
	double mu[QKD_INTENSITIES_MAX];
	double accept[QKD_INTENSITIES_MAX];	/* P(n>=1 | mu_k) / P(n>=1 | mu_max) */
	double p1[QKD_INTENSITIES_MAX];	/* P(n = 1 | n >= 1, mu_k) */
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

/* The record of slot; on a miss the window is refilled from slot's block up
 * to the block of slot `upto` (>= slot), at most cap blocks. */
static const uint8_t *cache_rec(struct choice_cache *c, uint64_t slot, uint64_t upto)
{
	unsigned spb = c->e->spb;
	uint64_t b = slot / spb;

	if (c->have == 0 || b < c->base || b - c->base >= c->have) {
		uint64_t n = upto / spb - b + 1;

		c->have = n < c->cap ? (size_t)n : c->cap;
		c->base = b;
		fib_blocks(c->e->k_choice, b, c->have, c->buf);
	}
	return c->buf + (b - c->base) * FIB_BLOCK_BYTES + (slot % spb) * c->e->stride;
}

static unsigned rec_state(const struct qkd_emitter *e, const uint8_t *rec)
{
	unsigned basis = fib_le16(rec) < e->thr_basis;
	unsigned value = fib_le16(rec + 2) < e->thr_value;

	return 2 * basis + value;
}

static unsigned rec_intensity(const struct qkd_emitter *e, const uint8_t *rec)
{
	uint64_t u;

	if (e->intensities < QKD_INTENSITIES_MAX)
		return 0;
	u = fib_le32(rec + 4);
	return u < e->thr_int[0] ? 0 : u < e->thr_int[1] ? 1 : 2;
}

static void set_photon_law(struct qkd_emitter *e, unsigned k, double mu)
{
	double pne = -expm1(-mu);

	e->mu[k] = mu;
	e->accept[k] = mu > 0 ? pne / -expm1(-e->mu_max) : 0.0;
	e->p1[k] = mu > 0 ? mu * exp(-mu) / pne : 1.0;
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
	e->spb = FIB_BLOCK_BYTES / e->stride;
	e->thr_basis = fib_thr16(link->p_x);
	e->thr_value = fib_thr16(link->rng_bias);
	e->thr_int[0] = (uint64_t)llround(link->p_intensity[0] * 0x1p32);
	e->thr_int[1] = (uint64_t)llround((link->p_intensity[0] + link->p_intensity[1]) * 0x1p32);
	/* DESIGN.md s3 decoys: the signal mu is the largest intensity. */
	e->mu_max = link->mu;
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

/* Candidate slot s with its photon-stream uniforms: keep it or not. */
static int candidate(const struct qkd_emitter *e, uint64_t s, double ua, double un,
		     uint64_t upto, struct choice_cache *cc, struct qkd_fiber_frame *f)
{
	const uint8_t *rec = cache_rec(cc, s, upto);
	unsigned k = rec_intensity(e, rec);
	int rc;

	if (!(ua < e->accept[k]))
		return QKD_OK;
	rc = fib_frame_reserve(f, f->n + 1);
	if (rc != QKD_OK)
		return rc;
	f->p[f->n].slot = s;
	f->p[f->n].photons = photon_number(e, k, un);
	f->p[f->n].state = (uint8_t)rec_state(e, rec);
	f->n++;
	return QKD_OK;
}

/* The non-empty pulses of photon block b that fall in [first, end). The
 * walk starts at the block's first slot, whatever first is. */
static int walk_block(const struct qkd_emitter *e, uint64_t b, uint64_t first, uint64_t end,
		      struct choice_cache *cc, struct qkd_fiber_frame *f)
{
	uint64_t pos = b << PHOTON_BLOCK_SHIFT;
	uint64_t stop = pos + ((uint64_t)1 << PHOTON_BLOCK_SHIFT);
	struct fib_stream st;
	int rc = QKD_OK;

	if (stop > end)
		stop = end;
	fib_stream_init(&st, e->k_photon, b);
	while (rc == QKD_OK) {
		double g = fib_gap(&st, -e->mu_max);
		double ua, un;
		uint64_t s;

		if (!(g < (double)(stop - pos)))
			break;
		s = pos + (uint64_t)g;
		pos = s + 1;
		ua = e->intensities > 1 ? fib_unit(&st) : 0.0;
		un = fib_unit(&st);
		if (s >= first)
			rc = candidate(e, s, ua, un, end - 1, cc, f);
	}
	sodium_memzero(&st, sizeof st);
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
		unsigned st = rec_state(e, cache_rec(&cc, slot[i], lookahead(e, slot, n, i)));

		qkd_bits_set(basis, i, st >> 1);
		qkd_bits_set(value, i, st & 1);
		qkd_bits_set(valid, i, 1);	/* she sent a pulse in every slot */
	}
	cache_cleanup(&cc);
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
	rc = cache_init(&cc, e, BULK_BLOCKS);
	for (uint64_t i = 0; rc == QKD_OK && i < count; i++) {
		unsigned st = rec_state(e, cache_rec(&cc, first + i, first + count - 1));

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
		out[i] = (uint8_t)rec_intensity(e, cache_rec(&cc, slot[i], lookahead(e, slot, n, i)));
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
