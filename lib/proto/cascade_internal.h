/* cascade_internal.h - what Bob's and Alice's halves of Cascade share.
 *
 * Vocabulary (docs/error-correction.md):
 *  - a pass orders the frame ("pass order") and cuts it into blocks;
 *  - inside a block, the sets whose parity can be asked form a binary tree:
 *    node h (heap numbering, root 1, children 2h and 2h+1) covers a
 *    contiguous range of pass order, split in near-equal halves
 *    (cas_node_range);
 *  - a query "bisect (pass, block, h)" asks the parity of node 2h.
 * Both parties derive every pass (permutation, mask, block geometry) from
 * the frame seed and the parameters on the wire, with the code below.
 */
#ifndef QKD_CASCADE_INTERNAL_H
#define QKD_CASCADE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/bits.h"
#include "qkd/ec.h"

#define CAS_MAX_PASSES 64

/* Message types and version (docs/error-correction.md, "Wire format"). */
#define CAS_MSG_REQUEST 0x51
#define CAS_MSG_REPLY 0x52
#define CAS_VERSION 1

/* Record flags in a request. */
#define CAS_REC_NEW 0x01	/* frame parameters follow */
#define CAS_REC_PASS 0x02	/* start the next pass(es) */
#define CAS_REC_QUERY 0x04	/* bisection queries follow */
#define CAS_REC_DONE 0x08	/* Bob finished the frame */

enum cas_pass_type {
	CAS_PASS_IDENT = 0,	/* natural order, blocks of k */
	CAS_PASS_PERM = 1,	/* seeded random permutation, blocks of k */
	CAS_PASS_MASK = 2,	/* seeded random subset and its complement */
};

/* A variant's fixed parameters; Alice and Bob must run the same one. */
struct cas_variant {
	const char *name;
	const char *desc;
	uint8_t id;		/* on the wire */
	double a1;		/* first block size k1 = a1 / qber_est */
	double a2;		/* k2 = a2 / qber measured in pass 1; 0: k doubles */
	bool pow2;		/* block sizes rounded to powers of two */
	bool shuffle_first;	/* pass 1 permuted (else natural order) */
	bool infer_last;	/* last block parity of passes >= 2 not sent */
	unsigned confirm;	/* quiet subset passes that end a frame */
	unsigned window;	/* a leaf waits for another pass's leaves this
				 * many size classes smaller; 0: never waits */
};

const struct cas_variant *cas_variant_find(const char *name);

/* A permutation table, shared by every frame of a seed epoch (Bob draws a
 * new seed every CAS_SEED_FRAMES frames; Fisher-Yates over 2^16 entries
 * would otherwise cost more than the rest of the protocol). */
struct cas_ptab {
	struct cas_ptab *next;
	uint64_t seed;
	uint32_t n;
	unsigned index;		/* pass index */
	unsigned refs;
	uint32_t *perm;		/* pass position -> frame index */
	uint32_t *inv;		/* frame index -> pass position */
};

#define CAS_SEED_FRAMES 256
#define CAS_PTAB_KEEP 16

/* A party's tables: every live one (for lookup) and a FIFO of the most
 * recently built ones, held so the next frame of the epoch finds them. */
struct cas_ptabs {
	struct cas_ptab *live;
	struct cas_ptab *keep[CAS_PTAB_KEEP];
	unsigned next_keep;
};

void cas_ptabs_cleanup(struct cas_ptabs *c);

/* One pass as both parties see it. PERM passes share a table from the
 * party's cache and keep the party's own string in pass order; MASK passes
 * keep the subset and its rank table. */
struct cas_pass {
	uint8_t type;
	uint8_t dbits;		/* tree stride is 1 << dbits node slots */
	uint32_t n;		/* frame length */
	uint32_t k;		/* block size; MASK: size of block 0 */
	uint32_t nb;		/* number of blocks */
	struct cas_ptab *tab;	/* PERM: reference into the cache */
	struct qkd_bits copy;	/* PERM: own string in pass order */
	uint64_t key;		/* MASK: the subset is cas_mask_word(0..) */
	uint8_t par[2];		/* MASK: block parities of the string at init */
	uint64_t *mask;		/* MASK, once indexed: the subset's words */
	uint32_t *rank;		/* MASK, once indexed: members before each word */
};

/* Build pass `index` of an n-bit frame from the wire parameters: type, k
 * (ignored for MASK), the seed; frame_id salts the per-frame subsets.
 * bits is the party's own string (read to fill copy). */
int cas_pass_init(struct cas_pass *p, struct cas_ptabs *tabs, unsigned type,
		  uint32_t k, uint32_t n, uint64_t seed, uint64_t frame_id,
		  unsigned index, const struct qkd_bits *bits);
void cas_pass_cleanup(struct cas_pass *p, struct cas_ptabs *tabs);
/* Let go of a PERM pass's table once the copy is made (Alice needs no
 * more): her memory then stays within the cache's CAS_PTAB_KEEP tables
 * whatever a peer asks for. cas_frame_index is not available afterwards. */
void cas_pass_drop_table(struct cas_pass *p, struct cas_ptabs *tabs);
/* Block b as a range [*s, *s + *l) of pass order. */
static inline void cas_block_range(const struct cas_pass *p, uint32_t b,
				   uint32_t *s, uint32_t *l)
{
	if (p->type == CAS_PASS_MASK) {
		*s = b ? p->k : 0;
		*l = b ? p->n - p->k : p->k;
	} else {
		*s = b * p->k;
		*l = p->n - *s < p->k ? p->n - *s : p->k;
	}
}

/* Range of node h of block b; false if h names no node of that block.
 * Node (depth d, j = h - 2^d) of a block of length L starting at S covers
 * [S + j*L/2^d, S + (j+1)*L/2^d) (floors): closed form, near-equal halves. */
static inline bool cas_node_range(const struct cas_pass *p, uint32_t b, uint32_t h,
				  uint32_t *s, uint32_t *l)
{
	uint32_t bs, bl, j;
	unsigned d;
	uint64_t lo, hi;

	if (b >= p->nb || h == 0 || (h >> p->dbits) != 0)
		return false;
	cas_block_range(p, b, &bs, &bl);
	d = 31u - (unsigned)__builtin_clz(h);
	j = h - (1u << d);
	lo = ((uint64_t)j * bl) >> d;
	hi = ((uint64_t)(j + 1) * bl) >> d;
	*s = bs + (uint32_t)lo;
	*l = (uint32_t)(hi - lo);
	return hi > lo;
}

/* Where a node of block b (start S, length L) at depth d, index j, splits. */
static inline uint32_t cas_node_mid(uint32_t S, uint32_t L, unsigned d, uint32_t j)
{
	return S + (uint32_t)(((2 * (uint64_t)j + 1) * L) >> (d + 1));
}
/* MASK: word w of the subset (bit i set = frame index 64w+i in block 0). */
uint64_t cas_mask_word(const struct cas_pass *p, size_t w);
/* MASK: build mask/rank, needed by cas_parity, cas_frame_index and
 * cas_mask_position (everything below a block root). Idempotent; no-op for
 * other passes. */
int cas_pass_index(struct cas_pass *p);
/* Parity of block b of the party's string. For MASK, the parity of the
 * string given to cas_pass_init (computed there in the same sweep as the
 * subset's size): both parties use it before their string changes. */
unsigned cas_block_parity(const struct cas_pass *p, const struct qkd_bits *bits,
			  uint32_t b);
/* Parity of pass positions [s, s + l) of the party's string bits. */
unsigned cas_parity(const struct cas_pass *p, const struct qkd_bits *bits,
		    uint32_t s, uint32_t l);
/* Frame index of pass position q. */
uint32_t cas_frame_index(const struct cas_pass *p, uint32_t q);
/* MASK: pass position of frame index x (which block follows from mask). */
uint32_t cas_mask_position(const struct cas_pass *p, uint32_t x);

/* Query keys: (pass, block, heap index) packed so that sorting the keys
 * sorts queries by pass, then block, then node. */
#define CAS_KEY_HBITS 29
#define CAS_KEY_BBITS 29
static inline uint64_t cas_key(unsigned pass, uint32_t b, uint32_t h)
{
	return ((uint64_t)pass << (CAS_KEY_HBITS + CAS_KEY_BBITS)) |
	       ((uint64_t)b << CAS_KEY_HBITS) | h;
}
static inline unsigned cas_key_pass(uint64_t key)
{
	return (unsigned)(key >> (CAS_KEY_HBITS + CAS_KEY_BBITS));
}
static inline uint32_t cas_key_block(uint64_t key)
{
	return (uint32_t)(key >> CAS_KEY_HBITS) & ((1u << CAS_KEY_BBITS) - 1);
}
static inline uint32_t cas_key_heap(uint64_t key)
{
	return (uint32_t)key & ((1u << CAS_KEY_HBITS) - 1);
}

/* Frame id -> slot map (open addressing). Both parties look frames up by
 * the id carried on the wire. */
struct cas_idmap {
	uint64_t *ids;
	uint32_t *slots;
	uint8_t *used;
	size_t cap, count;
};
void cas_idmap_init(struct cas_idmap *m);
void cas_idmap_cleanup(struct cas_idmap *m);
/* Slot of id, or -1. */
long cas_idmap_get(const struct cas_idmap *m, uint64_t id);
int cas_idmap_put(struct cas_idmap *m, uint64_t id, uint32_t slot);
void cas_idmap_del(struct cas_idmap *m, uint64_t id);

/* Growable array of 64-bit values (query keys, frame slots). */
struct cas_vec {
	uint64_t *v;
	size_t n, cap;
};
int cas_vec_grow(struct cas_vec *a);
void cas_vec_free(struct cas_vec *a);

static inline int cas_vec_push(struct cas_vec *a, uint64_t x)
{
	if (a->n == a->cap) {
		int rc = cas_vec_grow(a);

		if (rc != 0)
			return rc;
	}
	a->v[a->n++] = x;
	return 0;
}

/* --- Bob's side of one frame (cascade_bob_frame.c) --- */

/* Bob's view of a pass: the geometry plus the tree of sets whose parity he
 * knows: per node, whether it was bisected (both children known) and
 * whether Bob's parity differs from Alice's. Only the mismatch of tree
 * leaves matters: an inner node's is the XOR of its children's, so one
 * toggle per pass per flipped bit keeps every kept set current (the BBN
 * cascade effect). */
#define CAS_CLASSES 32

struct cas_bpass {
	struct cas_pass g;
	uint64_t *tree;		/* 2 bits per node slot (cascade_bob_frame.c);
				 * MASK: NULL until first bisected */
	uint8_t rootmis[2];	/* MASK roots while tree is NULL */
	uint32_t nonempty;	/* classes whose bucket has entries */
	struct cas_vec *bucket;	/* [CAS_CLASSES] odd leaves by floor(log2 len),
				 * allocated at the pass's first odd leaf */
};

struct cas_bframe {
	struct cas_ptabs *tabs;	/* Bob's table cache (borrowed) */
	uint64_t id, seed;
	uint32_t n;
	double qber_est;
	struct qkd_bits bits;	/* Bob's string, corrected in place */
	uint64_t disclosed, corrected;
	unsigned np;		/* passes started */
	unsigned batch_first;	/* first pass of the last PASS record */
	unsigned quiet;		/* confirmation passes since the last flip */
	unsigned next_batch;	/* size of the next confirmation batch */
	uint64_t corrected_at_pass;	/* corrected when the last batch began */
	uint32_t odd_first;	/* odd full-size blocks in the first pass */
	unsigned total_parity;	/* Alice's whole-frame parity, from pass 1 */
	bool announced;		/* NEW already sent */
	uint8_t sent;		/* record flags of the outstanding request */
	uint64_t active;	/* passes with odd leaves waiting */
	struct cas_vec asked;	/* keys bisected in the outstanding request */
	struct cas_vec flips;	/* scratch: (frame index, singleton key) pairs */
	struct cas_bpass pass[CAS_MAX_PASSES];
};

int cas_bframe_new(struct cas_bframe **out, struct cas_ptabs *tabs, uint64_t id,
		   const struct qkd_bits *bits, double qber_est, uint64_t seed);
/* Wipes everything. Accepts NULL. */
void cas_bframe_free(struct cas_bframe *f);
/* Free the per-pass state of a finished frame (keeps bits and counters). */
void cas_bframe_release(struct cas_bframe *f);
/* Decide the frame's part of the next request: returns CAS_REC_* flags
 * (never 0) or a negative error. For CAS_REC_PASS the new passes are
 * f->pass[f->batch_first .. f->np - 1] (several only for MASK); for
 * CAS_REC_QUERY the keys are in f->asked, sorted. */
int cas_bframe_plan(struct cas_bframe *f, const struct cas_variant *v);
/* Answer bits the outstanding record expects. */
size_t cas_bframe_expect(const struct cas_bframe *f, const struct cas_variant *v);
/* Consume the answers from ans at *off and run the cascade they trigger.
 * QKD_ERR_PROTO if the answers contradict each other. */
int cas_bframe_apply(struct cas_bframe *f, const struct cas_variant *v,
		     const struct qkd_bits *ans, size_t *off);

static inline unsigned cas_bit(const uint64_t *m, size_t i)
{
	return (unsigned)(m[i >> 6] >> (i & 63)) & 1u;
}
static inline void cas_bit_set(uint64_t *m, size_t i)
{
	m[i >> 6] |= (uint64_t)1 << (i & 63);
}
static inline void cas_bit_flip(uint64_t *m, size_t i)
{
	m[i >> 6] ^= (uint64_t)1 << (i & 63);
}

/* floor(log2(x)) for x >= 1. */
static inline unsigned cas_log2(uint32_t x)
{
	return 31u - (unsigned)__builtin_clz(x);
}

#endif
