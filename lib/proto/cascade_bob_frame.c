/* cascade_bob_frame.c - Bob's Cascade on one frame: which sets to ask about
 * next, and what the answers imply.
 *
 * Every set whose parity Alice disclosed is kept (block roots and every
 * sub-block of every bisection), as BBN did. Bob keeps, per set, whether his
 * parity differs from Alice's; flipping a bit toggles every kept set that
 * contains it, and a set left with odd mismatch is bisected again. In each
 * pass the kept sets form a binary tree per block; only its leaves carry
 * state, so a flip costs one root-to-leaf walk per pass.
 *
 * Scheduling: odd leaves wait in buckets by pass and size class
 * (floor(log2 len)). A leaf is bisected in this round unless a smaller odd
 * leaf of another pass is waiting (more than `window` classes smaller): the
 * error the small search finds often evens out the large set, which would
 * have cost a long binary search (the order sequential Cascade follows).
 * Leaves of one pass are disjoint, so they never wait for each other and
 * all go in the same round.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cascade_internal.h"
#include "qkd/error.h"
#include "qkd/secret.h"

/* The tree of pass bp: two bits per node slot, side by side so one cache
 * line serves both: EXP (bisected: both children known) and MIS (Bob's
 * parity differs from Alice's). */
#define EXP 0
#define MIS 1

static size_t tree_words(const struct cas_pass *g)
{
	return ((2 * ((size_t)g->nb << g->dbits)) + 63) / 64;
}

static inline size_t node_bit(const struct cas_bpass *bp, uint32_t b, uint32_t h,
			      unsigned which)
{
	return 2 * (((size_t)b << bp->g.dbits) | h) + which;
}

static int tree_alloc(struct cas_bpass *bp)
{
	bp->tree = calloc(tree_words(&bp->g), sizeof *bp->tree);
	if (bp->tree == NULL)
		return QKD_ERR_NOMEM;
	for (uint32_t b = 0; b < 2 && b < bp->g.nb; b++)
		if (bp->rootmis[b])
			cas_bit_set(bp->tree, node_bit(bp, b, 1, MIS));
	return QKD_OK;
}

static unsigned get_mis(const struct cas_bpass *bp, uint32_t b, uint32_t h)
{
	if (bp->tree == NULL)
		return h == 1 ? bp->rootmis[b] : 0;
	return cas_bit(bp->tree, node_bit(bp, b, h, MIS));
}

static bool get_exp(const struct cas_bpass *bp, uint32_t b, uint32_t h)
{
	return bp->tree != NULL && cas_bit(bp->tree, node_bit(bp, b, h, EXP));
}

static void bpass_cleanup(struct cas_bpass *bp, struct cas_ptabs *tabs)
{
	size_t nw = tree_words(&bp->g);

	qkd_free_secret(bp->tree, bp->tree ? nw * sizeof *bp->tree : 0);
	if (bp->bucket != NULL)
		for (unsigned c = 0; c < CAS_CLASSES; c++)
			cas_vec_free(&bp->bucket[c]);
	free(bp->bucket);
	cas_pass_cleanup(&bp->g, tabs);
	qkd_wipe(bp, sizeof *bp);
}

int cas_bframe_new(struct cas_bframe **out, struct cas_ptabs *tabs, uint64_t id,
		   const struct qkd_bits *bits, double qber_est, uint64_t seed)
{
	struct cas_bframe *f = calloc(1, sizeof *f);
	int rc;

	*out = NULL;
	if (f == NULL)
		return QKD_ERR_NOMEM;
	rc = qkd_bits_copy(&f->bits, bits);
	if (rc != QKD_OK) {
		free(f);
		return rc;
	}
	f->tabs = tabs;
	f->id = id;
	f->seed = seed;
	f->n = (uint32_t)bits->n;
	f->qber_est = qber_est;
	*out = f;
	return QKD_OK;
}

void cas_bframe_release(struct cas_bframe *f)
{
	for (unsigned i = 0; i < f->np; i++)
		bpass_cleanup(&f->pass[i], f->tabs);
	f->np = 0;
	f->active = 0;
	cas_vec_free(&f->asked);
	cas_vec_free(&f->flips);
}

void cas_bframe_free(struct cas_bframe *f)
{
	if (f == NULL)
		return;
	cas_bframe_release(f);
	qkd_bits_cleanup(&f->bits);
	qkd_free_secret(f, sizeof *f);
}

/* --- pass schedule --- */

/* Bob's QBER estimate, refined by the first pass. A block of k bits has odd
 * error parity with probability P(p) = (1 - (1-2p)^k) / 2; the odd fraction o
 * of N full blocks inverts to p_m, with relative spread
 * sqrt(o(1-o)/N) / (P'(p_m) p_m). With k ~ 1/QBER, o sits near 1/2 where
 * the inverse is steep, so p_m alone is noisy (about 20% for 2^16 bits at
 * 1%) and can saturate: it is combined with the prior estimate (taken as
 * good to CAS_PRIOR_SPREAD) by inverse-variance weighting of logarithms. */
#define CAS_PRIOR_SPREAD 0.25

static double refined_qber(const struct cas_bframe *f)
{
	double prior = f->qber_est < 1e-4 ? 1e-4 : f->qber_est;
	uint32_t k = f->pass[0].g.k, full = f->n / k;
	double o, pm, slope, sm, w0, wm;

	if (full == 0 || f->odd_first == 0 || 2 * f->odd_first >= full)
		return prior;
	o = (double)f->odd_first / full;
	pm = (1.0 - pow(1.0 - 2.0 * o, 1.0 / k)) / 2.0;
	slope = k * pow(1.0 - 2.0 * pm, k - 1.0);
	sm = sqrt(o * (1.0 - o) / full) / (slope * pm);
	w0 = 1.0 / (CAS_PRIOR_SPREAD * CAS_PRIOR_SPREAD);
	wm = 1.0 / (sm * sm);
	return exp((w0 * log(prior) + wm * log(pm)) / (w0 + wm));
}

/* A block size near kk: a power of two (nearest in log scale) when the
 * variant asks for it, since bisecting 2^m bits costs exactly m parities
 * while other sizes waste a fraction of a parity per search. */
static uint32_t block_size(const struct cas_variant *v, double kk)
{
	if (kk < 2)
		return 2;
	if (kk > QKD_EC_MAX_FRAME_BITS)
		return QKD_EC_MAX_FRAME_BITS;
	return v->pow2 ? (uint32_t)1 << lround(log2(kk)) : (uint32_t)lround(kk);
}

static void next_geometry(const struct cas_bframe *f, const struct cas_variant *v,
			  unsigned *type, uint32_t *k)
{
	double kk;

	*k = 0;
	if (f->np == 0) {
		double q = f->qber_est < 1e-4 ? 1e-4 : f->qber_est;

		*k = block_size(v, v->a1 / q);
		if (*k > f->n)
			*k = f->n;
		*type = v->shuffle_first ? CAS_PASS_PERM : CAS_PASS_IDENT;
		return;
	}
	*type = CAS_PASS_MASK;
	if (f->pass[f->np - 1].g.type == CAS_PASS_MASK || (v->a2 > 0 && f->np >= 2))
		return;
	kk = v->a2 > 0 ? v->a2 / refined_qber(f) : 2.0 * f->pass[f->np - 1].g.k;
	/* Two blocks or fewer: the random subset does the same job cheaper. */
	if (2 * (double)block_size(v, kk) < f->n) {
		*type = CAS_PASS_PERM;
		*k = block_size(v, kk);
	}
}

static int start_one(struct cas_bframe *f, unsigned type, uint32_t k)
{
	struct cas_bpass *bp = &f->pass[f->np];
	int rc = cas_pass_init(&bp->g, f->tabs, type, k, f->n, f->seed, f->id,
			       f->np, &f->bits);

	if (rc == QKD_OK && type != CAS_PASS_MASK) {
		rc = tree_alloc(bp);
		if (rc != QKD_OK)
			cas_pass_cleanup(&bp->g, f->tabs);
	}
	if (rc == QKD_OK)
		f->np++;
	return rc;
}

/* Start the next pass, or the next batch of confirmation (MASK) passes:
 * after a quiet batch the next one is twice as large, so a frame whose
 * errors are all gone needs log2(confirm) round trips to be confirmed, while
 * a batch that finds an error wastes few parities. */
static int start_passes(struct cas_bframe *f, const struct cas_variant *v)
{
	unsigned type, count = 1;
	uint32_t k;
	int rc = QKD_OK;

	next_geometry(f, v, &type, &k);
	if (type == CAS_PASS_MASK) {
		count = f->next_batch ? f->next_batch : 1;
		if (count > v->confirm - f->quiet)
			count = v->confirm - f->quiet;
		if (count > CAS_MAX_PASSES - f->np)
			count = CAS_MAX_PASSES - f->np;
	}
	f->batch_first = f->np;
	for (unsigned i = 0; i < count && rc == QKD_OK; i++)
		rc = start_one(f, type, k);
	f->corrected_at_pass = f->corrected;
	return rc;
}

/* Called once at the end of every batch: true when the frame is finished.
 * Only confirmation passes started after the last correction count. */
static bool pass_end(struct cas_bframe *f, const struct cas_variant *v)
{
	unsigned len = f->np - f->batch_first;

	if (f->pass[f->np - 1].g.type == CAS_PASS_MASK) {
		if (f->corrected == f->corrected_at_pass) {
			f->quiet += len;
			f->next_batch = 2 * len;
		} else {
			f->quiet = 0;
			f->next_batch = 1;
		}
	}
	return f->quiet >= v->confirm || f->np == CAS_MAX_PASSES;
}

/* --- bisection schedule --- */

static bool leaf_odd(const struct cas_bframe *f, uint64_t key)
{
	const struct cas_bpass *bp = &f->pass[cas_key_pass(key)];
	uint32_t b = cas_key_block(key), h = cas_key_heap(key);

	return get_mis(bp, b, h) && !get_exp(bp, b, h);
}

static int mark_bisected(struct cas_bframe *f, uint64_t key)
{
	struct cas_bpass *bp = &f->pass[cas_key_pass(key)];
	int rc = QKD_OK;

	if (bp->tree == NULL)
		rc = tree_alloc(bp);
	if (rc == QKD_OK)
		rc = cas_pass_index(&bp->g);
	if (rc == QKD_OK)
		cas_bit_set(bp->tree, node_bit(bp, cas_key_block(key), cas_key_heap(key), EXP));
	if (rc == QKD_OK)
		rc = cas_vec_push(&f->asked, key);
	return rc;
}

/* Schedule odd leaf (p, b, h) of length l >= 2. */
static int push_leaf(struct cas_bframe *f, unsigned p, uint32_t b, uint32_t h, uint32_t l)
{
	struct cas_bpass *bp = &f->pass[p];
	unsigned c = cas_log2(l);

	if (bp->bucket == NULL) {
		bp->bucket = calloc(CAS_CLASSES, sizeof *bp->bucket);
		if (bp->bucket == NULL)
			return QKD_ERR_NOMEM;
	}
	bp->nonempty |= 1u << c;
	f->active |= (uint64_t)1 << p;
	return cas_vec_push(&bp->bucket[c], cas_key(p, b, h));
}

/* Smallest class of pass p holding an odd leaf (stale entries, leaves that
 * were evened out or bisected since, are dropped); CAS_CLASSES if none. */
static unsigned min_class(struct cas_bframe *f, unsigned p)
{
	struct cas_bpass *bp = &f->pass[p];

	while (bp->nonempty) {
		unsigned c = (unsigned)__builtin_ctz(bp->nonempty);
		struct cas_vec *bk = &bp->bucket[c];

		while (bk->n > 0 && !leaf_odd(f, bk->v[bk->n - 1]))
			bk->n--;
		if (bk->n > 0)
			return c;
		bp->nonempty &= ~(1u << c);
	}
	f->active &= ~((uint64_t)1 << p);
	return CAS_CLASSES;
}

/* Bisect the odd leaves of pass p in classes below limit. */
static int take_classes(struct cas_bframe *f, unsigned p, unsigned limit)
{
	struct cas_bpass *bp = &f->pass[p];
	int rc = QKD_OK;

	while (bp->nonempty && rc == QKD_OK) {
		unsigned c = (unsigned)__builtin_ctz(bp->nonempty);
		struct cas_vec *bk = &bp->bucket[c];

		if (c >= limit)
			break;
		for (size_t i = 0; i < bk->n && rc == QKD_OK; i++)
			if (leaf_odd(f, bk->v[i]))
				rc = mark_bisected(f, bk->v[i]);
		bk->n = 0;
		bp->nonempty &= ~(1u << c);
	}
	return rc;
}

/* Sort the asked keys (ascending, as the wire format wants): insertion sort
 * for short lists, else an LSD radix sort over the bytes in which the keys
 * differ, using tmp (f->flips, empty while planning) as scratch. */
static int sort_keys(struct cas_vec *a, struct cas_vec *tmp)
{
	uint64_t *src = a->v, *dst, diff = 0;
	size_t n = a->n;

	if (n <= 32) {
		for (size_t i = 1; i < n; i++) {
			uint64_t x = src[i];
			size_t j = i;

			for (; j > 0 && src[j - 1] > x; j--)
				src[j] = src[j - 1];
			src[j] = x;
		}
		return QKD_OK;
	}
	while (tmp->cap < n)
		if (cas_vec_grow(tmp) != QKD_OK)
			return QKD_ERR_NOMEM;
	dst = tmp->v;
	for (size_t i = 1; i < n; i++)
		diff |= src[i] ^ src[0];
	for (unsigned shift = 0; shift < 64; shift += 8) {
		size_t count[257] = { 0 };
		uint64_t *t;

		if (((diff >> shift) & 0xff) == 0)
			continue;
		for (size_t i = 0; i < n; i++)
			count[((src[i] >> shift) & 0xff) + 1]++;
		for (unsigned d = 0; d < 256; d++)
			count[d + 1] += count[d];
		for (size_t i = 0; i < n; i++)
			dst[count[(src[i] >> shift) & 0xff]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	if (src != a->v)
		memcpy(a->v, src, n * sizeof *src);
	return QKD_OK;
}

/* Class limit for pass p: its leaves wait while another pass q holds an odd
 * leaf `window` classes smaller, or as small when q comes first (so equal
 * sets of two passes, likely holding the same error, go one at a time). */
static unsigned class_limit(const struct cas_bframe *f, const struct cas_variant *v,
			    const unsigned *mc, unsigned p)
{
	unsigned limit = CAS_CLASSES;

	if (v->window == 0)
		return limit;
	for (uint64_t act = f->active; act; act &= act - 1) {
		unsigned q = (unsigned)__builtin_ctzll(act);
		unsigned l = mc[q] + v->window - 1 + (p < q);

		if (q != p && mc[q] < CAS_CLASSES && l < limit)
			limit = l;
	}
	return limit;
}

/* Pick this round's leaves into f->asked; returns how many (0: none odd). */
static int select_leaves(struct cas_bframe *f, const struct cas_variant *v)
{
	unsigned mc[CAS_MAX_PASSES];
	uint64_t act;
	int rc = QKD_OK;

	for (act = f->active; act; act &= act - 1) {
		unsigned p = (unsigned)__builtin_ctzll(act);

		mc[p] = min_class(f, p);
	}
	for (act = f->active; act && rc == QKD_OK; act &= act - 1) {
		unsigned p = (unsigned)__builtin_ctzll(act);

		rc = take_classes(f, p, class_limit(f, v, mc, p));
	}
	if (rc == QKD_OK)
		rc = sort_keys(&f->asked, &f->flips);
	return rc < 0 ? rc : (int)f->asked.n;
}

int cas_bframe_plan(struct cas_bframe *f, const struct cas_variant *v)
{
	int rc;

	f->asked.n = 0;
	f->sent = 0;
	if (!f->announced) {
		rc = start_passes(f, v);
		if (rc == QKD_OK)
			f->sent = CAS_REC_NEW | CAS_REC_PASS;
		return rc < 0 ? rc : f->sent;
	}
	rc = select_leaves(f, v);
	if (rc != 0) {
		if (rc > 0)
			f->sent = CAS_REC_QUERY;
		return rc < 0 ? rc : f->sent;
	}
	if (pass_end(f, v)) {
		f->sent = CAS_REC_DONE;
		return f->sent;
	}
	rc = start_passes(f, v);
	if (rc == QKD_OK)
		f->sent = CAS_REC_PASS;
	return rc < 0 ? rc : f->sent;
}

size_t cas_bframe_expect(const struct cas_bframe *f, const struct cas_variant *v)
{
	size_t e = 0;

	for (unsigned i = f->batch_first; (f->sent & CAS_REC_PASS) && i < f->np; i++)
		e += f->pass[i].g.nb - (v->infer_last && i > 0 ? 1 : 0);
	if (f->sent & CAS_REC_QUERY)
		e += f->asked.n;
	return e;
}

/* --- applying answers --- */

/* Leaf (p, b, h) covering [s, s+l) has just been found odd. */
static int mark_odd(struct cas_bframe *f, unsigned p, uint32_t b, uint32_t h,
		    uint32_t s, uint32_t l)
{
	struct cas_bpass *bp = &f->pass[p];
	int rc;

	if (bp->tree != NULL)
		cas_bit_set(bp->tree, node_bit(bp, b, h, MIS));
	else
		bp->rootmis[b] = 1;
	if (l >= 2)
		return push_leaf(f, p, b, h, l);
	if (l == 0)
		return QKD_ERR_PROTO;	/* "the empty set has odd parity" */
	/* A single odd bit: an error, flipped once all answers are in. */
	rc = cas_pass_index(&bp->g);
	if (rc == QKD_OK)
		rc = cas_vec_push(&f->flips, cas_frame_index(&bp->g, s));
	return rc == QKD_OK ? cas_vec_push(&f->flips, cas_key(p, b, h)) : rc;
}

static int apply_pass(struct cas_bframe *f, const struct cas_variant *v,
		      unsigned i, const struct qkd_bits *ans, size_t *off)
{
	unsigned acc = 0;
	struct cas_bpass *bp = &f->pass[i];
	bool infer = v->infer_last && i > 0;
	int rc = QKD_OK;

	for (uint32_t b = 0; b < bp->g.nb && rc == QKD_OK; b++) {
		uint32_t s, l;
		unsigned a, m;

		cas_block_range(&bp->g, b, &s, &l);
		if (infer && b == bp->g.nb - 1) {
			a = f->total_parity ^ acc;
		} else {
			a = qkd_bits_get(ans, (*off)++);
			f->disclosed++;
		}
		acc ^= a;
		m = a ^ cas_block_parity(&bp->g, &f->bits, b);
		if (i == 0 && l == bp->g.k)
			f->odd_first += m;
		if (m)
			rc = mark_odd(f, i, b, 1, s, l);
	}
	if (i == 0)
		f->total_parity = acc;
	return rc;
}

static int apply_queries(struct cas_bframe *f, const struct qkd_bits *ans, size_t *off)
{
	int rc = QKD_OK;

	for (size_t i = 0; i < f->asked.n && rc == QKD_OK; i++) {
		uint64_t key = f->asked.v[i];
		unsigned p = cas_key_pass(key);
		struct cas_bpass *bp = &f->pass[p];
		uint32_t b = cas_key_block(key), h = cas_key_heap(key);
		uint32_t s = 0, l = 0, sr = 0, lr = 0;
		unsigned ml, mr;

		/* Bob built the keys: both children exist. */
		(void)cas_node_range(&bp->g, b, 2 * h, &s, &l);
		(void)cas_node_range(&bp->g, b, 2 * h + 1, &sr, &lr);
		ml = qkd_bits_get(ans, (*off)++) ^ cas_parity(&bp->g, &f->bits, s, l);
		mr = get_mis(bp, b, h) ^ ml;
		f->disclosed++;
		if (ml)
			rc = mark_odd(f, p, b, 2 * h, s, l);
		if (mr && rc == QKD_OK)
			rc = mark_odd(f, p, b, 2 * h + 1, sr, lr);
	}
	return rc;
}

/* Bit x of pass p sits at position q of block b: toggle the kept leaf
 * holding it, and schedule the leaf if it turned odd. */
static int toggle_leaf(struct cas_bframe *f, unsigned p, uint32_t b, uint32_t q)
{
	struct cas_bpass *bp = &f->pass[p];
	uint32_t s, l, h = 1;
	unsigned m;

	cas_block_range(&bp->g, b, &s, &l);
	if (bp->tree == NULL) {
		m = bp->rootmis[b] ^= 1;
	} else {
		uint32_t bs = s, bl = l;

		for (unsigned d = 0; cas_bit(bp->tree, node_bit(bp, b, h, EXP)); d++)
			h = 2 * h + (q >= cas_node_mid(bs, bl, d, h - (1u << d)));
		cas_bit_flip(bp->tree, node_bit(bp, b, h, MIS));
		m = cas_bit(bp->tree, node_bit(bp, b, h, MIS));
		if (m)
			(void)cas_node_range(&bp->g, b, h, &s, &l);
	}
	if (!m)
		return QKD_OK;
	/* A single bit known to match Alice's now differs: contradiction. */
	if (l < 2)
		return QKD_ERR_PROTO;
	return push_leaf(f, p, b, h, l);
}

static int flip_bit(struct cas_bframe *f, uint32_t x)
{
	int rc = QKD_OK;

	qkd_bits_flip(&f->bits, x);
	f->corrected++;
	for (unsigned p = 0; p < f->np && rc == QKD_OK; p++) {
		struct cas_bpass *bp = &f->pass[p];
		struct cas_pass *g = &bp->g;
		uint32_t b, q = x;

		if (g->type == CAS_PASS_IDENT) {
			b = x / g->k;
		} else if (g->type == CAS_PASS_PERM) {
			q = g->tab->inv[x];
			b = q / g->k;
			qkd_bits_flip(&g->copy, q);
		} else if (bp->tree != NULL) {
			b = !cas_bit(g->mask, x);	/* indexed when bisected */
			q = cas_mask_position(g, x);
		} else {
			b = !((cas_mask_word(g, x >> 6) >> (x & 63)) & 1);
		}
		rc = toggle_leaf(f, p, b, q);
	}
	return rc;
}

static int run_flips(struct cas_bframe *f)
{
	int rc = QKD_OK;

	for (size_t i = 0; i + 1 < f->flips.n && rc == QKD_OK; i += 2) {
		uint64_t key = f->flips.v[i + 1];

		/* Two searches may end on the same bit: flip it once. */
		if (get_mis(&f->pass[cas_key_pass(key)], cas_key_block(key), cas_key_heap(key)))
			rc = flip_bit(f, (uint32_t)f->flips.v[i]);
	}
	f->flips.n = 0;
	return rc;
}

int cas_bframe_apply(struct cas_bframe *f, const struct cas_variant *v,
		     const struct qkd_bits *ans, size_t *off)
{
	int rc = QKD_OK;

	f->flips.n = 0;
	if (f->sent & CAS_REC_NEW)
		f->announced = true;
	for (unsigned i = f->batch_first; (f->sent & CAS_REC_PASS) && i < f->np; i++)
		if (rc == QKD_OK)
			rc = apply_pass(f, v, i, ans, off);
	if (rc == QKD_OK && (f->sent & CAS_REC_QUERY))
		rc = apply_queries(f, ans, off);
	if (rc == QKD_OK)
		rc = run_flips(f);
	f->sent = 0;
	f->asked.n = 0;
	return rc;
}
