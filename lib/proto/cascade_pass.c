/* cascade_pass.c - the geometry of a Cascade pass, identical on both sides.
 *
 * A pass is derived from the frame seed (sent by Bob), the pass index and
 * the block size on the wire, by a small fast generator (xoshiro256**
 * seeded through splitmix64): the seed already came from Bob's ChaCha20
 * DRBG, and the generator only has to spread it over n positions quickly.
 * Three kinds of pass:
 *  IDENT  natural order, blocks of k: a block parity is a word popcount;
 *  PERM   a Fisher-Yates permutation of (seed, pass index); each party
 *         keeps its string copied in pass order, so every block and
 *         sub-block is a contiguous range. The table itself is cached and
 *         shared by the frames of one seed (CAS_SEED_FRAMES);
 *  MASK   a uniformly random subset (block 0) and its complement (block 1),
 *         each in natural order, drawn from (seed, frame id, pass index): for any nonzero error pattern block 0 has
 *         odd error parity with probability exactly 1/2, which is what the
 *         confirmation passes need, and a sub-block parity is a masked
 *         popcount over a range of the string, so no copy is kept.
 */
#include <stdlib.h>
#include <string.h>

#include "cascade_internal.h"
#include "qkd/error.h"
#include "qkd/secret.h"

struct xoshiro {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void xo_seed(struct xoshiro *g, uint64_t seed, uint64_t salt, unsigned index)
{
	uint64_t x = salt, y;

	y = splitmix64(&x);
	x = seed ^ y ^ ((uint64_t)index * 0xd1b54a32d192ed03ULL);
	for (int i = 0; i < 4; i++)
		g->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t xo_next(struct xoshiro *g)
{
	uint64_t *s = g->s;
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

/* Uniform-enough index below bound (multiply-high; the bias, bound/2^64,
 * is immaterial for spreading errors and both sides compute the same). */
static inline uint32_t xo_below(struct xoshiro *g, uint32_t bound)
{
	return (uint32_t)(((unsigned __int128)xo_next(g) * bound) >> 64);
}

static unsigned ceil_log2(uint32_t x)
{
	return x <= 1 ? 0 : cas_log2(x - 1) + 1;
}

static void ptab_free(struct cas_ptab *t)
{
	if (t == NULL)
		return;
	qkd_free_secret(t->perm, t->perm ? (size_t)t->n * sizeof *t->perm : 0);
	qkd_free_secret(t->inv, t->inv ? (size_t)t->n * sizeof *t->inv : 0);
	qkd_free_secret(t, sizeof *t);
}

static void ptab_put(struct cas_ptabs *c, struct cas_ptab *t)
{
	if (t == NULL || --t->refs > 0)
		return;
	for (struct cas_ptab **pp = &c->live; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	ptab_free(t);
}

static int ptab_build(struct cas_ptab *t)
{
	struct xoshiro g;

	t->perm = malloc((size_t)t->n * sizeof *t->perm);
	t->inv = malloc((size_t)t->n * sizeof *t->inv);
	if (t->perm == NULL || t->inv == NULL)
		return QKD_ERR_NOMEM;
	xo_seed(&g, t->seed, 0, t->index);
	/* Inside-out Fisher-Yates. */
	t->perm[0] = 0;
	for (uint32_t i = 1; i < t->n; i++) {
		uint32_t j = xo_below(&g, i + 1);

		t->perm[i] = t->perm[j];
		t->perm[j] = i;
	}
	for (uint32_t q = 0; q < t->n; q++)
		t->inv[t->perm[q]] = q;
	qkd_wipe(&g, sizeof g);
	return QKD_OK;
}

/* A reference to the table for (seed, n, index), built if need be. */
static int ptab_get(struct cas_ptabs *c, uint64_t seed, uint32_t n,
		    unsigned index, struct cas_ptab **out)
{
	struct cas_ptab *t;
	int rc;

	for (t = c->live; t; t = t->next)
		if (t->seed == seed && t->n == n && t->index == index) {
			t->refs++;
			*out = t;
			return QKD_OK;
		}
	t = calloc(1, sizeof *t);
	if (t == NULL)
		return QKD_ERR_NOMEM;
	t->seed = seed;
	t->n = n;
	t->index = index;
	rc = ptab_build(t);
	if (rc != QKD_OK) {
		ptab_free(t);
		return rc;
	}
	t->refs = 2;	/* the caller's and the keep FIFO's */
	t->next = c->live;
	c->live = t;
	ptab_put(c, c->keep[c->next_keep]);
	c->keep[c->next_keep] = t;
	c->next_keep = (c->next_keep + 1) % CAS_PTAB_KEEP;
	*out = t;
	return QKD_OK;
}

void cas_ptabs_cleanup(struct cas_ptabs *c)
{
	for (unsigned i = 0; i < CAS_PTAB_KEEP; i++) {
		ptab_put(c, c->keep[i]);
		c->keep[i] = NULL;
	}
	/* Tables still referenced by passes are released by their passes. */
}

static int perm_init(struct cas_pass *p, struct cas_ptabs *c, uint64_t seed,
		     unsigned index, const struct qkd_bits *bits)
{
	size_t nw = qkd_bits_words(p->n);
	const uint32_t *perm;
	int rc = ptab_get(c, seed, p->n, index, &p->tab);

	if (rc == QKD_OK)
		rc = qkd_bits_init(&p->copy, p->n);
	if (rc != QKD_OK)
		return rc;
	perm = p->tab->perm;
	for (size_t w = 0; w < nw; w++) {
		uint64_t acc = 0;
		size_t base = w * 64, m = p->n - base < 64 ? p->n - base : 64;

		for (size_t t = 0; t < m; t++)
			acc |= (uint64_t)qkd_bits_get(bits, perm[base + t]) << t;
		p->copy.w[w] = acc;
	}
	return QKD_OK;
}

/* Word w of a MASK pass's subset: splitmix64 of a per-pass key and w, so
 * membership of any bit costs one mix and nothing need be stored until the
 * subset is bisected (most confirmation passes find nothing). */
uint64_t cas_mask_word(const struct cas_pass *p, size_t w)
{
	uint64_t x = p->key + (uint64_t)w * 0x9e3779b97f4a7c15ULL, z;

	z = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	if (w == qkd_bits_words(p->n) - 1 && (p->n & 63))
		z &= ((uint64_t)1 << (p->n & 63)) - 1;
	return z;
}

/* The subset's size, and the parities of the party's string on it and on
 * everything, in one sweep. */
static void mask_init(struct cas_pass *p, uint64_t seed, uint64_t frame_id,
		      unsigned index, const struct qkd_bits *bits)
{
	size_t nw = qkd_bits_words(p->n);
	struct xoshiro g;
	uint64_t in = 0, all = 0;
	uint32_t c = 0;

	xo_seed(&g, seed, frame_id, index);
	p->key = xo_next(&g);
	qkd_wipe(&g, sizeof g);
	for (size_t w = 0; w < nw; w++) {
		uint64_t m = cas_mask_word(p, w);

		c += (uint32_t)__builtin_popcountll(m);
		in ^= bits->w[w] & m;
		all ^= bits->w[w];
	}
	p->k = c;
	p->nb = 2;
	p->dbits = (uint8_t)(ceil_log2(c > p->n - c ? c : p->n - c) + 1);
	p->par[0] = (uint8_t)__builtin_parityll(in);
	p->par[1] = (uint8_t)__builtin_parityll(in ^ all);
}

int cas_pass_index(struct cas_pass *p)
{
	size_t nw = qkd_bits_words(p->n);
	uint32_t c = 0;

	if (p->type != CAS_PASS_MASK || p->mask != NULL)
		return QKD_OK;
	p->mask = malloc(nw * sizeof *p->mask);
	p->rank = malloc((nw + 1) * sizeof *p->rank);
	if (p->mask == NULL || p->rank == NULL) {
		free(p->mask);
		free(p->rank);
		p->mask = NULL;
		p->rank = NULL;
		return QKD_ERR_NOMEM;
	}
	for (size_t w = 0; w < nw; w++) {
		p->mask[w] = cas_mask_word(p, w);
		p->rank[w] = c;
		c += (uint32_t)__builtin_popcountll(p->mask[w]);
	}
	p->rank[nw] = c;
	return QKD_OK;
}

int cas_pass_init(struct cas_pass *p, struct cas_ptabs *tabs, unsigned type,
		  uint32_t k, uint32_t n, uint64_t seed, uint64_t frame_id,
		  unsigned index, const struct qkd_bits *bits)
{
	int rc = QKD_OK;

	memset(p, 0, sizeof *p);
	p->type = (uint8_t)type;
	p->n = n;
	if (type == CAS_PASS_MASK) {
		mask_init(p, seed, frame_id, index, bits);
	} else {
		p->k = k;
		p->nb = (uint32_t)(((uint64_t)n + k - 1) / k);
		p->dbits = (uint8_t)(ceil_log2(k < n ? k : n) + 1);
		if (type == CAS_PASS_PERM)
			rc = perm_init(p, tabs, seed, index, bits);
	}
	if (rc != QKD_OK)
		cas_pass_cleanup(p, tabs);
	return rc;
}

void cas_pass_drop_table(struct cas_pass *p, struct cas_ptabs *tabs)
{
	ptab_put(tabs, p->tab);
	p->tab = NULL;
}

void cas_pass_cleanup(struct cas_pass *p, struct cas_ptabs *tabs)
{
	size_t nw = qkd_bits_words(p->n);

	ptab_put(tabs, p->tab);
	qkd_bits_cleanup(&p->copy);
	qkd_free_secret(p->mask, p->mask ? nw * sizeof *p->mask : 0);
	qkd_free_secret(p->rank, p->rank ? (nw + 1) * sizeof *p->rank : 0);
	qkd_wipe(p, sizeof *p);
}

/* Index of the (r+1)-th set bit of x (x has more than r set bits). */
static unsigned select64(uint64_t x, unsigned r)
{
	unsigned pos = 0;

	for (unsigned width = 32; width > 0; width /= 2) {
		unsigned c = (unsigned)__builtin_popcountll(x & (((uint64_t)1 << width) - 1));

		if (r >= c) {
			r -= c;
			x >>= width;
			pos += width;
		}
	}
	return pos;
}

/* Frame index of the j-th member (0-based) of MASK block b. */
static uint32_t mask_select(const struct cas_pass *p, unsigned b, uint32_t j)
{
	size_t lo = 0, hi = qkd_bits_words(p->n) - 1;

	/* Largest word whose count of members before it is <= j. */
	while (lo < hi) {
		size_t mid = (lo + hi + 1) / 2;
		uint32_t before = b ? (uint32_t)(64 * mid) - p->rank[mid] : p->rank[mid];

		if (before <= j)
			lo = mid;
		else
			hi = mid - 1;
	}
	j -= b ? (uint32_t)(64 * lo) - p->rank[lo] : p->rank[lo];
	return (uint32_t)(64 * lo) + select64(b ? ~p->mask[lo] : p->mask[lo], j);
}

uint32_t cas_frame_index(const struct cas_pass *p, uint32_t q)
{
	if (p->type == CAS_PASS_PERM)
		return p->tab->perm[q];
	if (p->type == CAS_PASS_MASK)
		return q < p->k ? mask_select(p, 0, q) : mask_select(p, 1, q - p->k);
	return q;
}

uint32_t cas_mask_position(const struct cas_pass *p, uint32_t x)
{
	uint64_t w = p->mask[x >> 6];
	uint32_t ones = p->rank[x >> 6] +
		(uint32_t)__builtin_popcountll(w & (((uint64_t)1 << (x & 63)) - 1));

	return ((w >> (x & 63)) & 1) ? ones : p->k + (x - ones);
}

static unsigned masked_parity(const uint64_t *x, const uint64_t *m, bool inv,
			      size_t lo, size_t hi)
{
	size_t ws = lo >> 6, we = (hi - 1) >> 6;
	uint64_t acc = 0;

	for (size_t w = ws; w <= we; w++) {
		uint64_t v = x[w] & (inv ? ~m[w] : m[w]);

		if (w == ws)
			v &= ~(uint64_t)0 << (lo & 63);
		if (w == we && (hi & 63))
			v &= ((uint64_t)1 << (hi & 63)) - 1;
		acc ^= v;
	}
	return (unsigned)__builtin_parityll(acc);
}

unsigned cas_block_parity(const struct cas_pass *p, const struct qkd_bits *bits,
			  uint32_t b)
{
	uint32_t s, l;

	if (p->type == CAS_PASS_MASK)
		return p->par[b];
	cas_block_range(p, b, &s, &l);
	return cas_parity(p, bits, s, l);
}

unsigned cas_parity(const struct cas_pass *p, const struct qkd_bits *bits,
		    uint32_t s, uint32_t l)
{
	unsigned b;
	uint32_t j, lo, hi;

	if (l == 0)
		return 0;
	if (p->type == CAS_PASS_IDENT)
		return qkd_bits_parity(bits, s, (size_t)s + l);
	if (p->type == CAS_PASS_PERM)
		return qkd_bits_parity(&p->copy, s, (size_t)s + l);
	b = s >= p->k;
	j = b ? s - p->k : s;
	lo = mask_select(p, b, j);
	hi = mask_select(p, b, j + l - 1) + 1;
	return masked_parity(bits->w, p->mask, b, lo, hi);
}
