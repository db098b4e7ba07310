/* keystore_take.c - handing key out, each bit exactly once (DESIGN.md
 * section 6; docs/keystore.md, "Delivery").
 *
 * A FINAL block records what was handed out as disjoint, merged ranges in
 * consumed_range and their total in qblock.consumed. take plans which free
 * bits to hand out (read-only queries), then consumes each planned segment
 * exactly as take_at does, all inside one write transaction: the bits, the
 * ranges and the counters change together or not at all. Bytes whose every
 * bit is consumed are overwritten with zeros in the same transaction, and a
 * block's bits are deleted when its last bit goes. Every chunk a segment
 * reads is checked against its digest before a bit is cut, and the digests
 * of the chunks the step zeroes are recomputed in the same transaction
 * (keystore_sum.c); a failing chunk fails the whole call with
 * QKD_ERR_CORRUPT, rolled back, and the block is then quarantined. The key
 * manager's issue and accept (lib/kme/kme_store.c) plan and consume through the
 * same functions.
 */
#include <string.h>

#include "keystore_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

/* One consumed range of block id chosen by sql (?1 = id, ?2 = pos). */
static int range_at(struct qkd_store *s, const char *sql, uint64_t id, uint64_t pos,
		    bool *found, uint64_t *off, uint64_t *n, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = ks_prep(s, sql, &st, why), src;

	*found = false;
	if (rc != 0)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)pos);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		*found = true;
		*off = (uint64_t)sqlite3_column_int64(st, 0);
		*n = (uint64_t)sqlite3_column_int64(st, 1);
	} else if (src != SQLITE_DONE) {
		rc = ks_err(s->db, src, why);
	}
out:
	sqlite3_finalize(st);
	return rc;
}

/* Zero the bytes of [off, off + n) whose bits all lie in the merged
 * consumed range [a, b) (the block's padding bits count as consumed), and
 * refresh the digests of their chunks: consume_seg checked those chunks
 * when it read the segment, so the new digests bless no corruption. */
static int wipe_consumed(struct qkd_store *s, const struct qkd_store_block *blk,
			 uint64_t off, uint64_t n, uint64_t a, uint64_t b, const char **why)
{
	uint64_t first = ks_nbytes(a);
	uint64_t last = b == blk->nbits ? ks_nbytes(blk->nbits) : b / 8;
	uint64_t lo = first > off / 8 ? first : off / 8;
	uint64_t hi = last < ks_nbytes(off + n) ? last : ks_nbytes(off + n);

	int rc = hi > lo ? ks_blob_zero(s, blk->id, lo, hi - lo, why) : 0;

	if (rc == 0 && hi > lo)
		rc = ks_sum_refresh(s, blk->id, lo, hi, why);
	return rc;
}

/* The last bits of a block: it becomes USED and its bits go (secure_delete
 * overwrites them in the file); its ranges are no longer needed. */
static int mark_used(struct qkd_store *s, uint64_t id, const char **why)
{
	int64_t arg[] = { (int64_t)id };
	int rc;

	rc = ks_run(s, "DELETE FROM consumed_range WHERE block = ?1", arg, 1, why);
	if (rc == 0)
		rc = ks_run(s, "DELETE FROM qsum WHERE id = ?1", arg, 1, why);
	if (rc == 0)
		rc = ks_run(s, "DELETE FROM qbits WHERE id = ?1", arg, 1, why);
	if (rc == 0)
		rc = ks_run(s, "UPDATE qblock SET state = 'used', consumed = nbits WHERE id = ?1",
			    arg, 1, why);
	return rc;
}

/* Record [off, off + n) of blk as consumed, merged with its neighbours.
 * The one range that could overlap is the last one starting before the
 * end: ranges are disjoint, so if any overlaps, that one does. */
static int mark_consumed(struct qkd_store *s, const struct qkd_store_block *blk,
			 uint64_t off, uint64_t n, const char **why)
{
	uint64_t poff = 0, pn = 0, noff = 0, nn = 0, a = off, b = off + n;
	bool prev = false, next = false;
	int rc;

	rc = range_at(s, "SELECT off, nbits FROM consumed_range WHERE block = ?1 AND off < ?2"
		      " ORDER BY off DESC LIMIT 1", blk->id, off + n, &prev, &poff, &pn, why);
	if (rc == 0 && prev && poff + pn > off) {
		ks_why(why, "bits of this range were already handed out");
		return QKD_ERR_INVAL;
	}
	if (rc == 0 && blk->consumed + n == blk->nbits)
		return mark_used(s, blk->id, why);
	if (rc == 0)
		rc = range_at(s, "SELECT off, nbits FROM consumed_range WHERE block = ?1 AND off = ?2",
			      blk->id, off + n, &next, &noff, &nn, why);
	if (rc == 0 && prev && poff + pn == off) {
		a = poff;
		rc = ks_run(s, "DELETE FROM consumed_range WHERE block = ?1 AND off = ?2",
			    (const int64_t[]){ (int64_t)blk->id, (int64_t)poff }, 2, why);
	}
	if (rc == 0 && next) {
		b = noff + nn;
		rc = ks_run(s, "DELETE FROM consumed_range WHERE block = ?1 AND off = ?2",
			    (const int64_t[]){ (int64_t)blk->id, (int64_t)noff }, 2, why);
	}
	if (rc == 0)
		rc = ks_run(s, "INSERT INTO consumed_range (block, off, nbits) VALUES (?1, ?2, ?3)",
			    (const int64_t[]){ (int64_t)blk->id, (int64_t)a, (int64_t)(b - a) },
			    3, why);
	if (rc == 0)
		rc = wipe_consumed(s, blk, off, n, a, b, why);
	if (rc == 0)
		rc = ks_run(s, "UPDATE qblock SET consumed = consumed + ?2 WHERE id = ?1",
			    (const int64_t[]){ (int64_t)blk->id, (int64_t)n }, 2, why);
	return rc;
}

/* Copy segment seg into out at bit dpos and mark it consumed. */
static int consume_seg(struct qkd_store *s, const struct qkd_store_seg *seg,
		       uint8_t *out, uint64_t dpos, const char **why)
{
	struct qkd_store_block blk;
	bool found = false;
	int rc = ks_block_row(s, seg->id, &blk, &found, why);

	if (rc != 0)
		return rc;
	if (!found) {
		ks_why(why, "no such block");
		return QKD_ERR_INVAL;
	}
	if (blk.state == QKD_STORE_QUARANTINED)
		return ks_why_quarantined(s, seg->id, why);
	if (blk.state != QKD_STORE_FINAL) {
		ks_why(why, blk.state == QKD_STORE_PENDING ? "block is not final yet"
			    : "bits of this range were already handed out");
		return QKD_ERR_INVAL;
	}
	if (seg->offset > blk.nbits || seg->nbits > blk.nbits - seg->offset) {
		ks_why(why, "range lies outside its block");
		return QKD_ERR_INVAL;
	}
	/* Read (and check) before marking: marking may zero these bytes or
	 * delete the bits. */
	rc = ks_read_bits(s, seg->id, seg->offset, seg->nbits, out, dpos, why);
	if (rc == 0)
		rc = mark_consumed(s, &blk, seg->offset, seg->nbits, why);
	return rc;
}

struct plan {
	struct qkd_store_seg *segs;
	size_t max, n;
	uint64_t need;		/* bits still to find */
};

/* Hand out (part of) the free gap [from, to) of block id. */
static int plan_gap(struct plan *p, uint64_t id, uint64_t from, uint64_t to,
		    const char **why)
{
	uint64_t n;

	if (to <= from || p->need == 0)
		return 0;
	if (p->n == p->max) {
		ks_why(why, "the key would span more segments than allowed");
		return QKD_ERR_RANGE;
	}
	n = to - from < p->need ? to - from : p->need;
	p->segs[p->n++] = (struct qkd_store_seg){ .id = id, .offset = from, .nbits = n };
	p->need -= n;
	return 0;
}

/* The gaps between block id's consumed ranges, lowest first. */
static int plan_block(struct qkd_store *s, struct plan *p, uint64_t id, uint64_t nbits,
		      const char **why)
{
	sqlite3_stmt *st = NULL;
	uint64_t pos = 0;
	int rc, src = SQLITE_DONE;

	rc = ks_prep(s, "SELECT off, nbits FROM consumed_range WHERE block = ?1 ORDER BY off",
		     &st, why);
	if (rc != 0)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	while (rc == 0 && p->need > 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t off = (uint64_t)sqlite3_column_int64(st, 0);

		rc = plan_gap(p, id, pos, off, why);
		pos = off + (uint64_t)sqlite3_column_int64(st, 1);
	}
	if (rc == 0 && src == SQLITE_DONE)
		rc = plan_gap(p, id, pos, nbits, why);
	else if (rc == 0 && src != SQLITE_ROW)
		rc = ks_err(s->db, src, why);
out:
	sqlite3_finalize(st);
	return rc;
}

/* take plans over every block; the key manager's issue over its own half
 * of the blocks only (qkd/kme_store.h), so the two ends never plan the
 * same bits. */
int ks_plan_take(struct qkd_store *s, int parity, bool below_newest, uint64_t nbits,
		 struct qkd_store_seg *segs, size_t max, size_t *nsegs, const char **why)
{
	struct plan plan = { .segs = segs, .max = max, .n = 0, .need = nbits }, *p = &plan;
	sqlite3_stmt *st = NULL;
	int rc, src = SQLITE_DONE;

	*nsegs = 0;
	rc = ks_prep(s, "SELECT id, nbits FROM qblock WHERE state = 'final'"
		     " AND (?1 < 0 OR id % 2 = ?1)"
		     " AND (?2 = 0 OR id < (SELECT max(id) FROM qblock)) ORDER BY id", &st, why);
	if (rc == 0) {
		sqlite3_bind_int(st, 1, parity);
		sqlite3_bind_int(st, 2, below_newest ? 1 : 0);
	}
	while (rc == 0 && p->need > 0 && (src = sqlite3_step(st)) == SQLITE_ROW)
		rc = plan_block(s, p, (uint64_t)sqlite3_column_int64(st, 0),
				(uint64_t)sqlite3_column_int64(st, 1), why);
	if (rc == 0 && src != SQLITE_ROW && src != SQLITE_DONE)
		rc = ks_err(s->db, src, why);
	if (rc == 0 && p->need > 0) {
		ks_why(why, "not enough key available");
		rc = QKD_ERR_RANGE;
	}
	if (rc == 0)
		*nsegs = p->n;
	sqlite3_finalize(st);
	return rc;
}

/* Consume segs in order into out (zeroed first), in the open transaction. */
int ks_consume_all(struct qkd_store *s, const struct qkd_store_seg *segs, size_t n,
		   uint8_t *out, uint64_t nbytes, const char **why)
{
	uint64_t pos = 0;
	int rc = 0;

	memset(out, 0, nbytes);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = consume_seg(s, &segs[i], out, pos, why);
		pos += segs[i].nbits;
	}
	return rc;
}

int ks_take(struct qkd_store *s, int parity, bool below_newest, uint64_t nbits, uint8_t *out,
	    size_t outlen, struct qkd_store_seg *segs, size_t max_segs, size_t *nsegs,
	    const char **why)
{
	size_t n = 0;
	int rc;

	ks_why(why, NULL);
	if (s == NULL || out == NULL || segs == NULL || nsegs == NULL || nbits == 0) {
		ks_why(why, "no store, buffer or segment array, or zero bits asked");
		return QKD_ERR_INVAL;
	}
	*nsegs = 0;
	if (outlen < ks_nbytes(nbits)) {
		ks_why(why, "buffer too small for the key asked");
		return QKD_ERR_RANGE;
	}
	rc = ks_begin(s, true, why);
	if (rc != 0)
		return rc;
	rc = ks_require_current(s, why);
	if (rc == 0)
		rc = ks_plan_take(s, parity, below_newest, nbits, segs, max_segs, &n, why);
	if (rc == 0)
		rc = ks_consume_all(s, segs, n, out, ks_nbytes(nbits), why);
	rc = ks_finish(s, rc, true, why);
	if (rc != 0)
		qkd_wipe(out, ks_nbytes(nbits));
	else
		*nsegs = n;
	return rc;
}

int qkd_store_take(struct qkd_store *s, uint64_t nbits, uint8_t *out, size_t outlen,
		   struct qkd_store_seg *segs, size_t max_segs, size_t *nsegs,
		   const char **why)
{
	return ks_take(s, KS_PARITY_ANY, false, nbits, out, outlen, segs, max_segs, nsegs, why);
}

uint64_t ks_segs_total(const struct qkd_store_seg *segs, size_t n)
{
	uint64_t total = 0;

	for (size_t i = 0; i < n; i++) {
		if (segs[i].nbits == 0 || segs[i].id > QKD_STORE_ID_MAX ||
		    segs[i].nbits > UINT64_MAX - total)
			return 0;
		total += segs[i].nbits;
	}
	return total;
}

int qkd_store_take_at(struct qkd_store *s, const struct qkd_store_seg *segs, size_t nsegs,
		      uint8_t *out, size_t outlen, const char **why)
{
	uint64_t total;
	int rc;

	ks_why(why, NULL);
	if (s == NULL || segs == NULL || out == NULL || nsegs == 0) {
		ks_why(why, "no store, segment or buffer given");
		return QKD_ERR_INVAL;
	}
	total = ks_segs_total(segs, nsegs);
	if (total == 0) {
		ks_why(why, "empty segment, block id out of range or length overflow");
		return QKD_ERR_INVAL;
	}
	if (outlen < ks_nbytes(total)) {
		ks_why(why, "buffer too small for the key asked");
		return QKD_ERR_RANGE;
	}
	rc = ks_begin(s, true, why);
	if (rc != 0)
		return rc;
	rc = ks_require_current(s, why);
	if (rc == 0)
		rc = ks_consume_all(s, segs, nsegs, out, ks_nbytes(total), why);
	rc = ks_finish(s, rc, true, why);
	if (rc != 0)
		qkd_wipe(out, ks_nbytes(total));
	return rc;
}
