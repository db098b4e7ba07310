/* fiber_detector.c - Bob's end of the fiber: loss, his two detectors, dark
 * counts, his basis (qkd/fiber.h; DESIGN.md section 3; docs/fiber.md s4).
 *
 * Per pulse of n photons, each photon independently is lost (fiber
 * 10^(-alpha L/10), then detector efficiency eta_d), or reaches the
 * detector of the state's value (eta (1 - e_opt) when Bob's basis matches
 * the state's, eta/2 otherwise) or the other one (eta e_opt, or eta/2).
 * Only whether each detector got at least one photon matters, so one
 * uniform u decides by inversion over the four outcomes:
 *   P(neither) = (1-eta)^n, P(no photon at D) = (1 - eta_D)^n.
 * P(neither) does not depend on Bob's basis, so the common case (nothing
 * detected) costs one uniform and no basis lookup. Single-photon pulses,
 * most of a weak-coherent frame, cost less still: whether each is detected
 * (eta) is a Bernoulli process over them, walked with geometric gaps as the
 * dark counts are; a detected one then takes u uniform in [1 - eta, 1), the
 * law of u given u >= P(neither). Bob's stream is read about eta times per
 * single-photon pulse instead of once (docs/fiber.md s4).
 *
 * Dark counts: each detector fires with p_d in every slot of the frame, so
 * slots with some dark count form a Bernoulli process of rate
 * 1 - (1-p_d)^2, walked with geometric gaps from the frame's first slot
 * (memoryless, so restarting per frame is exact); given one, both fire with
 * p_d^2 / (1 - (1-p_d)^2), else one of the two with equal odds.
 *
 * Bob's basis (1 with p_x) and his double-click bit for slot s come from a
 * random-access record of ChaCha20 under his choice subkey: 2 x 16 bits, or
 * with p_x = 1/2 exactly 2 bits, read BOB_WINDOW blocks at a time, so a
 * detection costs a few dozen keystream bytes instead of a ChaCha20 call of
 * its own. The physics draws from a sequential stream under his channel
 * subkey.
 */
#include "qkd/fiber.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fiber_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

#define TABLE_N 16u		/* photon numbers with tabled powers */
#define REC_BYTES 4u		/* per slot: basis u16, double-click bit u16 */
#define SPB (FIB_BLOCK_BYTES / REC_BYTES)
#define SPB_PACKED (FIB_BLOCK_BYTES * 4)	/* p_x = 1/2: 2 bits per slot */
#define BOB_WINDOW 64u		/* packed blocks made at once (16384 slots) */
#define CHUNK_MIN_CAP 1024u

enum { D0 = 1, D1 = 2 };	/* detector of value 0 / value 1 fired */

struct qkd_detector {
	uint8_t k_choice[32];
	struct fib_stream ch;		/* channel physics, sequential */
	uint32_t thr_basis;
	double eta;			/* T eta_d */
	/* (1 - x)^n for x = eta (no photon detected), eta (1 - e_opt) (none at
	 * the right detector), eta e_opt (none at the wrong one), eta/2. */
	double l_none, l_right, l_wrong, l_half;	/* log1p(-x) */
	double t_none[TABLE_N + 1], t_right[TABLE_N + 1];
	double t_wrong[TABLE_N + 1], t_half[TABLE_N + 1];
	double dark_lq;			/* log P(no dark count in a slot) */
	double dark_both;		/* P(both | some dark count) */
	uint64_t skip;			/* single-photon pulses lost before the next detected one */
	bool skip_ok;			/* skip was drawn */
	bool packed;			/* p_x = 1/2: 2-bit records */
	unsigned spb;			/* slots per record block */
	uint64_t rec_block;		/* first block held in rec (valid if rec_ok) */
	size_t rec_have;		/* blocks held */
	bool rec_ok;
	uint8_t rec[BOB_WINDOW * FIB_BLOCK_BYTES];
};

/* t[n] = (1-x)^n from l = log1p(-x); l = -inf (x = 1) is fine for n >= 1. */
static void fill_table(double *t, double l)
{
	t[0] = 1.0;
	for (unsigned n = 1; n <= TABLE_N; n++)
		t[n] = exp(n * l);
}

static double power(const double *t, double l, unsigned n)
{
	return n <= TABLE_N ? t[n] : exp(n * l);
}

static void set_physics(struct qkd_detector *d, const struct qkd_link_params *link)
{
	/* Bob's noise per gate: dark counts, plus background on free space. */
	double e = link->misalignment, pd = qkd_link_noise_per_gate(link);

	d->eta = qkd_link_transmittance(link) * link->detector_efficiency;
	d->l_none = log1p(-d->eta);
	d->l_right = log1p(-d->eta * (1 - e));
	d->l_wrong = log1p(-d->eta * e);
	d->l_half = log1p(-d->eta / 2);
	fill_table(d->t_none, d->l_none);
	fill_table(d->t_right, d->l_right);
	fill_table(d->t_wrong, d->l_wrong);
	fill_table(d->t_half, d->l_half);
	/* p_d = 1 gives -inf: a dark count in every slot (gap 0). */
	d->dark_lq = 2 * log1p(-pd);
	d->dark_both = pd > 0 ? pd * pd / (pd * (2 - pd)) : 0.0;
}

int qkd_detector_new(struct qkd_detector **out, const struct qkd_link_params *link,
		     const uint8_t key[QKD_FIBER_KEY_BYTES])
{
	struct qkd_detector *d = NULL;
	uint8_t k_channel[32];
	int rc = QKD_ERR_INVAL;

	*out = NULL;
	if (qkd_link_params_check(link, NULL) != QKD_OK ||
	    link->source != QKD_SOURCE_WEAK_COHERENT)
		goto out;
	rc = QKD_ERR_NOMEM;
	if (sodium_init() < 0 || (d = calloc(1, sizeof *d)) == NULL)
		goto out;
	fib_subkey(d->k_choice, key, FIB_BOB_CHOICE);
	fib_subkey(k_channel, key, FIB_BOB_CHANNEL);
	fib_stream_init(&d->ch, k_channel, 0);
	d->thr_basis = fib_thr16(link->p_x);
	d->packed = d->thr_basis == 0x8000;
	d->spb = d->packed ? SPB_PACKED : SPB;
	set_physics(d, link);
	*out = d;
	d = NULL;
	rc = QKD_OK;
out:
	sodium_memzero(k_channel, sizeof k_channel);
	qkd_detector_free(d);
	return rc;
}

void qkd_detector_free(struct qkd_detector *d)
{
	qkd_free_secret(d, d != NULL ? sizeof *d : 0);
}

/* Bob's basis and double-click bit for slot s (docs/fiber.md s4). Packed:
 * bits 2i (basis) and 2i + 1 of block s / 256, i = s % 256, from the least
 * significant bit of each byte; otherwise a 16-bit uniform against the
 * threshold and bit 0 of byte 2, at bytes 4 (s % 16) of block s / 16. */
static void bob_choice(struct qkd_detector *d, uint64_t s, unsigned *basis, unsigned *dbl)
{
	uint64_t b = s / d->spb;
	unsigned i = (unsigned)(s % d->spb);
	const uint8_t *blk;

	if (!d->rec_ok || b < d->rec_block || b - d->rec_block >= d->rec_have) {
		d->rec_have = d->packed ? BOB_WINDOW : 1;
		d->rec_block = b;
		fib_blocks(d->k_choice, b, d->rec_have, d->rec);
		d->rec_ok = true;
	}
	blk = d->rec + (b - d->rec_block) * FIB_BLOCK_BYTES;
	if (d->packed) {
		unsigned two = (blk[i >> 2] >> (2 * (i & 3))) & 3u;

		*basis = two & 1;
		*dbl = two >> 1;
		return;
	}
	*basis = fib_le16(blk + i * REC_BYTES) < d->thr_basis;
	*dbl = blk[i * REC_BYTES + 2] & 1;
}

static unsigned bob_basis(struct qkd_detector *d, uint64_t s)
{
	unsigned basis, dbl;

	bob_choice(d, s, &basis, &dbl);
	return basis;
}

/* The uniform that decides a single-photon pulse, or -1 when it is lost:
 * the lost ones are skipped in runs of geometric length (log P(lost) =
 * l_none), the detected one gets u uniform in [a, 1), a = 1 - eta. */
static double single_photon_u(struct qkd_detector *d)
{
	double g;

	if (!d->skip_ok) {
		/* eta = 0: l_none = 0 and the gap is infinite. */
		g = d->l_none < 0 ? fib_gap(&d->ch, d->l_none) : INFINITY;
		d->skip = g < 0x1p63 ? (uint64_t)g : UINT64_MAX;
		d->skip_ok = true;
	}
	if (d->skip > 0) {
		d->skip--;
		return -1;
	}
	d->skip_ok = false;
	return d->t_none[1] + d->eta * fib_unit(&d->ch);
}

/* Which detectors the photons of pulse p fire (D0 | D1, or 0). */
static unsigned photon_clicks(struct qkd_detector *d, const struct qkd_pulse *p)
{
	double u = p->photons == 1 ? single_photon_u(d) : fib_unit(&d->ch);
	double a = power(d->t_none, d->l_none, p->photons), b, c;
	unsigned hit, miss;

	if (u < a)
		return 0;
	if (bob_basis(d, p->slot) == (unsigned)(p->state >> 1)) {
		/* b: none at the right detector; c: none at the wrong one. */
		b = power(d->t_right, d->l_right, p->photons);
		c = power(d->t_wrong, d->l_wrong, p->photons);
		hit = (p->state & 1) ? D1 : D0;
	} else {
		b = c = power(d->t_half, d->l_half, p->photons);
		hit = D0;
	}
	miss = hit ^ (D0 | D1);
	if (u < b)
		return miss;
	if (u < b + c - a)
		return hit;
	return D0 | D1;
}

static unsigned dark_clicks(struct qkd_detector *d)
{
	double u = fib_unit(&d->ch);

	if (u < d->dark_both)
		return D0 | D1;
	return u < d->dark_both + (1 - d->dark_both) / 2 ? D0 : D1;
}

/* The chunk's storage holds cap(n) entries: no capacity field exists in
 * qkd_bob_chunk, so it is a function of n (a power of two), which makes
 * the growth geometric. */
static size_t chunk_cap(size_t n)
{
	size_t cap = CHUNK_MIN_CAP;

	if (n == 0)
		return 0;
	while (cap < n)
		cap *= 2;
	return cap;
}

/* Bits storage for cap bits holding the first n of old (wiped, freed). */
static int bits_regrow(struct qkd_bits *b, size_t cap)
{
	uint64_t *w = calloc(cap / 64, sizeof *w);

	if (w == NULL)
		return QKD_ERR_NOMEM;
	if (b->n > 0)
		memcpy(w, b->w, qkd_bits_words(b->n) * sizeof *w);
	qkd_free_secret(b->w, qkd_bits_words(b->n) * sizeof *w);
	b->w = w;
	return QKD_OK;
}

static int chunk_grow(struct qkd_bob_chunk *c)
{
	size_t cap = chunk_cap(c->n + 1);
	uint64_t *s;

	if (c->n > 0 && cap == chunk_cap(c->n))
		return QKD_OK;
	s = realloc(c->slot, cap * sizeof *s);	/* slot numbers are public */
	if (s == NULL)
		return QKD_ERR_NOMEM;
	c->slot = s;
	if (bits_regrow(&c->basis, cap) != QKD_OK || bits_regrow(&c->value, cap) != QKD_OK)
		return QKD_ERR_NOMEM;
	return QKD_OK;
}

/* One click of Bob's at slot s with detectors `fired`. */
static int push(struct qkd_detector *d, struct qkd_bob_chunk *c, uint64_t s, unsigned fired)
{
	unsigned basis, dbl, value;
	int rc = chunk_grow(c);

	if (rc != QKD_OK)
		return rc;
	bob_choice(d, s, &basis, &dbl);
	if (fired == (D0 | D1)) {
		value = dbl;	/* double click: his random bit */
		c->double_clicks++;
	} else {
		value = fired == D1;
	}
	c->slot[c->n] = s;
	c->basis.n = c->value.n = c->n + 1;
	qkd_bits_set(&c->basis, c->n, basis);
	qkd_bits_set(&c->value, c->n, value);
	c->n++;
	return QKD_OK;
}

/* Undo a failed frame: the chunk is as before the call. */
static void chunk_rollback(struct qkd_bob_chunk *c, size_t n0, uint64_t dc0)
{
	for (size_t i = n0; i < c->n; i++) {
		qkd_bits_set(&c->basis, i, 0);
		qkd_bits_set(&c->value, i, 0);
	}
	c->n = n0;
	c->basis.n = c->value.n = n0;
	c->double_clicks = dc0;
}

/* Next dark-count slot at or after pos, or end if none is left. */
static uint64_t next_dark(struct qkd_detector *d, uint64_t pos, uint64_t end)
{
	double g;

	if (d->dark_lq == 0 || pos >= end)
		return end;
	g = fib_gap(&d->ch, d->dark_lq);
	return g < (double)(end - pos) ? pos + (uint64_t)g : end;
}

static bool chunk_order_ok(const struct qkd_bob_chunk *c, const struct qkd_fiber_frame *f)
{
	return c->n == 0 || c->slot[c->n - 1] < f->first;
}

int qkd_detector_frame(struct qkd_detector *d, const struct qkd_fiber_frame *f,
		       struct qkd_bob_chunk *c)
{
	uint64_t end = f->first + f->slots, dark;
	size_t n0 = c->n, i = 0;
	uint64_t dc0 = c->double_clicks;
	int rc = QKD_OK;

	if (!fib_frame_valid(f) || !chunk_order_ok(c, f))
		return QKD_ERR_INVAL;
	dark = next_dark(d, f->first, end);
	/* Merge the pulses and the dark-count slots, both increasing. */
	while (rc == QKD_OK && (i < f->n || dark < end)) {
		unsigned fired = 0;
		uint64_t s = dark;

		if (i < f->n && f->p[i].slot <= dark) {
			s = f->p[i].slot;
			fired = photon_clicks(d, &f->p[i++]);
		}
		if (s == dark) {
			fired |= dark_clicks(d);
			dark = next_dark(d, s + 1, end);
		}
		if (fired != 0)
			rc = push(d, c, s, fired);
	}
	if (rc != QKD_OK)
		chunk_rollback(c, n0, dc0);
	return rc;
}
