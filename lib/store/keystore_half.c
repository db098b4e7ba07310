/* keystore_half.c - the relay's pads: key cut from one end's half of a
 * link's blocks and consumed by the other end (qkd/keystore.h,
 * docs/relay.md "Pads").
 *
 * The halves are the key manager's (even block ids for Alice, odd for
 * Bob), so both ends can cut at the same time without a message; the
 * relay and the key manager of one end share a half and never cut the
 * same bits, because each cut plans and consumes in one write
 * transaction. Alice leaves her newest block alone: she makes a block
 * final before Bob does, and a pad Bob cannot consume yet would fail the
 * relay it carries.
 */
#include <sqlite3.h>

#include "qkd/error.h"
#include "keystore_int.h"

int qkd_store_take_half(struct qkd_store *s, unsigned parity, bool below_newest, uint64_t nbits,
			uint8_t *out, size_t outlen, struct qkd_store_seg *segs, size_t max_segs,
			size_t *nsegs, const char **why)
{
	if (parity > 1) {
		ks_why(why, "a parity not 0 or 1");
		return QKD_ERR_INVAL;
	}
	return ks_take(s, (int)parity, below_newest, nbits, out, outlen, segs, max_segs, nsegs,
		       why);
}

int qkd_store_take_at_half(struct qkd_store *s, unsigned parity, const struct qkd_store_seg *segs,
			   size_t nsegs, uint8_t *out, size_t outlen, const char **why)
{
	ks_why(why, NULL);
	for (size_t i = 0; segs != NULL && i < nsegs; i++)
		if (segs[i].id % 2 != parity) {
			ks_why(why, "a segment of the other end's half of the blocks");
			return QKD_ERR_INVAL;
		}
	return qkd_store_take_at(s, segs, nsegs, out, outlen, why);
}

int qkd_store_half_free(struct qkd_store *s, unsigned parity, bool below_newest, uint64_t *bits,
			const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc, src;

	ks_why(why, NULL);
	*bits = 0;
	if (s == NULL || parity > 1) {
		ks_why(why, "no store, or a parity not 0 or 1");
		return QKD_ERR_INVAL;
	}
	rc = ks_prep(s, "SELECT coalesce(sum(nbits - consumed), 0) FROM qblock"
		     " WHERE state = 'final' AND id % 2 = ?1"
		     " AND (?2 = 0 OR id < (SELECT max(id) FROM qblock))", &st, why);
	if (rc == 0) {
		sqlite3_bind_int(st, 1, (int)parity);
		sqlite3_bind_int(st, 2, below_newest ? 1 : 0);
		src = sqlite3_step(st);
		if (src == SQLITE_ROW)
			*bits = (uint64_t)sqlite3_column_int64(st, 0);
		else
			rc = ks_err(s->db, src == SQLITE_DONE ? SQLITE_CORRUPT : src, why);
	}
	sqlite3_finalize(st);
	return rc;
}
