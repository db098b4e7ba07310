/* qkd/sift.h - BB84 sifting (DESIGN section 4).
 *
 * Bob reports, for a range of slots, in which slots he detected (as
 * run-length gaps) and the basis he measured in; Alice answers with one keep
 * bit per reported detection: she keeps a detection when she has a valid
 * event in that slot and her basis equals Bob's. Both then keep their own
 * values of the kept detections, in slot order. Wire formats in
 * docs/protocol.md.
 */
#ifndef QKD_SIFT_H
#define QKD_SIFT_H

#include <stddef.h>
#include <stdint.h>

#include "qkd/bits.h"
#include "qkd/wire.h"

/* Bob's detections of one chunk as they go on the wire. */
struct qkd_sift_report {
	uint64_t first_slot;	/* chunk covers [first_slot, first_slot + slots) */
	uint64_t slots;
	size_t n;		/* detections */
	uint64_t *slot;		/* n strictly increasing slot numbers, owned */
	struct qkd_bits basis;	/* n bits: Bob's basis per detection */
};

void qkd_sift_report_cleanup(struct qkd_sift_report *r);

/* Encode: first_slot, slots, n (varints), n gaps (the first relative to
 * first_slot, then to the previous slot plus one; each a big-endian u16, or
 * 0xffff followed by a varint when the gap is 0xffff or more), then the
 * basis bits. */
void qkd_sift_report_write(struct qkd_wbuf *w, uint64_t first_slot, uint64_t slots,
			   const uint64_t *slot, const struct qkd_bits *basis);

/* Decode and validate (every slot inside the chunk, strictly increasing,
 * n <= slots, n <= max_n). r must be uninitialized; on error it is left empty. */
__attribute__((warn_unused_result))
int qkd_sift_report_read(struct qkd_rbuf *rb, struct qkd_sift_report *r, size_t max_n);

/* Alice's decision: keep[i] = valid[i] && alice_basis[i] == report basis[i].
 * keep must be initialized with r->n bits. */
void qkd_sift_decide(const struct qkd_sift_report *r, const struct qkd_bits *alice_basis,
		     const struct qkd_bits *alice_valid, struct qkd_bits *keep);

/* Append values[i] for every i with keep[i] to the pool: pool->n is its
 * capacity, *used the bits filled so far; the pool grows (geometrically) as
 * needed, and what it drops on growing is wiped. */
int qkd_sift_append(struct qkd_bits *pool, size_t *used, const struct qkd_bits *values,
		    const struct qkd_bits *keep);

#endif
