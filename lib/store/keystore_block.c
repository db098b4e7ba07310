/* keystore_block.c - the life of a Qblock up to FINAL (put_pending,
 * finalize, discard: the node daemon's two-phase commit) and the read-only
 * views (lookup, get, list, stats). docs/keystore.md, "States". A
 * QUARANTINED block (keystore_quarantine.c) refuses them all with
 * QKD_ERR_CORRUPT but lookup, list and stats. */
#include <string.h>
#include <time.h>

#include "keystore_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

static int check_store(const struct qkd_store *s, const char **why)
{
	if (s == NULL) {
		ks_why(why, "no store given");
		return QKD_ERR_INVAL;
	}
	ks_why(why, NULL);
	return 0;
}

static int check_id(const struct qkd_store *s, uint64_t id, const char **why)
{
	if (check_store(s, why) != 0)
		return QKD_ERR_INVAL;
	if (id > QKD_STORE_ID_MAX) {
		ks_why(why, "block id out of range (above 2^63 - 1)");
		return QKD_ERR_INVAL;
	}
	ks_why(why, NULL);
	return 0;
}

static int check_put(const struct qkd_store *s, uint64_t id, const uint8_t *bits,
		     uint64_t nbits, const char **why)
{
	int rc = check_id(s, id, why);

	if (rc != 0)
		return rc;
	if (bits == NULL || nbits == 0 || nbits > QKD_STORE_BLOCK_MAX_BITS) {
		ks_why(why, "block length out of range (1 to 2^31 bits)");
		return QKD_ERR_INVAL;
	}
	if (nbits % 8 != 0 && (bits[nbits / 8] >> (nbits % 8)) != 0) {
		ks_why(why, "bits beyond the block length in the last byte are not zero");
		return QKD_ERR_INVAL;
	}
	return 0;
}

/* The row, then the bits straight into the page cache: zeroblob reserves
 * the space, so no SQLite record buffer ever holds the key. */
static int insert_block(struct qkd_store *s, uint64_t id, const uint8_t *bits,
			uint64_t nbits, const char **why)
{
	int64_t meta[] = { (int64_t)id, (int64_t)nbits, (int64_t)time(NULL) };
	int64_t reserve[] = { (int64_t)id, (int64_t)ks_nbytes(nbits) };
	int rc;

	rc = ks_run(s, "INSERT INTO qblock (id, nbits, state, created)"
		    " VALUES (?1, ?2, 'pending', ?3)", meta, 3, why);
	if (rc == 0)
		rc = ks_run(s, "INSERT INTO qbits (id, bits) VALUES (?1, zeroblob(?2))",
			    reserve, 2, why);
	if (rc == 0)
		rc = ks_blob_write(s, id, 0, bits, ks_nbytes(nbits), why);
	if (rc == 0)	/* from the caller's bits: what was meant to be stored */
		rc = ks_sum_put_block(s, id, bits, ks_nbytes(nbits), why);
	return rc;
}

/* A retried put whose bits differ from the stored ones: a conflict, or the
 * stored bits rotted (then QKD_ERR_CORRUPT, and the block is quarantined). */
static int retry_differs(struct qkd_store *s, const struct qkd_store_block *b,
			 const char **why)
{
	uint64_t chunk = 0;
	bool ok = true;
	int rc = 0;

	if (b->state == QKD_STORE_PENDING)
		rc = ks_check_block(s, b->id, ks_nbytes(b->nbits), &ok, &chunk, why);
	if (rc == 0 && !ok)
		return ks_fault_block(s, b->id, chunk, ks_nchunks(ks_nbytes(b->nbits)), why);
	if (rc == 0) {
		ks_why(why, b->state == QKD_STORE_PENDING
		       ? "block id already pending with other bits"
		       : "block id already taken by a final or used block");
		rc = QKD_ERR_INVAL;
	}
	return rc;
}

int qkd_store_put_pending(struct qkd_store *s, uint64_t id, const uint8_t *bits,
			  uint64_t nbits, const char **why)
{
	struct qkd_store_block b;
	bool found = false, same = false;
	int rc = check_put(s, id, bits, nbits, why);

	if (rc != 0)
		return rc;
	rc = ks_begin(s, true, why);
	if (rc != 0)
		return rc;
	rc = ks_require_current(s, why);
	if (rc == 0)
		rc = ks_block_row(s, id, &b, &found, why);
	if (rc != 0)
		goto out;
	if (!found) {
		rc = insert_block(s, id, bits, nbits, why);
		goto out;
	}
	if (b.state == QKD_STORE_QUARANTINED) {
		rc = ks_why_quarantined(s, id, why);
		goto out;
	}
	if (b.state == QKD_STORE_PENDING && b.nbits == nbits)
		rc = ks_blob_equal(s, id, bits, ks_nbytes(nbits), &same, why);
	if (rc == 0 && !same)
		rc = retry_differs(s, &b, why);
out:
	return ks_finish(s, rc, true, why);
}

int qkd_store_finalize(struct qkd_store *s, uint64_t id, const char **why)
{
	struct qkd_store_block b;
	bool found = false;
	int64_t arg[] = { (int64_t)id };
	int rc = check_id(s, id, why);

	if (rc != 0)
		return rc;
	rc = ks_begin(s, true, why);
	if (rc != 0)
		return rc;
	rc = ks_require_current(s, why);
	if (rc == 0)
		rc = ks_block_row(s, id, &b, &found, why);
	if (rc == 0 && !found) {
		ks_why(why, "no such block");
		rc = QKD_ERR_INVAL;
	}
	if (rc == 0 && b.state == QKD_STORE_QUARANTINED)
		rc = ks_why_quarantined(s, id, why);
	if (rc == 0 && b.state == QKD_STORE_PENDING)
		rc = ks_run(s, "UPDATE qblock SET state = 'final' WHERE id = ?1", arg, 1, why);
	return ks_end(s, rc, why);
}

int qkd_store_discard(struct qkd_store *s, uint64_t id, const char **why)
{
	struct qkd_store_block b;
	bool found = false;
	int64_t arg[] = { (int64_t)id };
	int rc = check_id(s, id, why);

	if (rc != 0)
		return rc;
	rc = ks_begin(s, true, why);
	if (rc != 0)
		return rc;
	rc = ks_require_current(s, why);
	if (rc == 0)
		rc = ks_block_row(s, id, &b, &found, why);
	if (rc != 0 || !found)
		goto out;
	if (b.state == QKD_STORE_QUARANTINED) {
		rc = ks_why_quarantined(s, id, why);
		goto out;
	}
	if (b.state != QKD_STORE_PENDING) {
		ks_why(why, "refusing to discard a final block");
		rc = QKD_ERR_INVAL;
		goto out;
	}
	/* secure_delete overwrites the freed bits in the file. */
	rc = ks_run(s, "DELETE FROM qsum WHERE id = ?1", arg, 1, why);
	if (rc == 0)
		rc = ks_run(s, "DELETE FROM qbits WHERE id = ?1", arg, 1, why);
	if (rc == 0)
		rc = ks_run(s, "DELETE FROM qblock WHERE id = ?1", arg, 1, why);
out:
	return ks_end(s, rc, why);
}

int qkd_store_lookup(struct qkd_store *s, uint64_t id, struct qkd_store_block *info,
		     bool *found, const char **why)
{
	struct qkd_store_block b;
	int rc = check_id(s, id, why);

	if (rc != 0)
		return rc;
	if (info == NULL || found == NULL) {
		ks_why(why, "no output given");
		return QKD_ERR_INVAL;
	}
	rc = ks_block_row(s, id, &b, found, why);
	if (rc == 0 && *found)
		*info = b;
	return rc;
}

/* Clear in buf every bit of block id that was handed out. */
static int mask_consumed(struct qkd_store *s, const struct qkd_store_block *b,
			 uint8_t *buf, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = ks_prep(s, "SELECT off, nbits FROM consumed_range WHERE block = ?1", &st, why);
	int src = SQLITE_DONE;

	if (rc != 0)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)b->id);
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t off = (uint64_t)sqlite3_column_int64(st, 0);
		uint64_t n = (uint64_t)sqlite3_column_int64(st, 1);

		if (off > b->nbits || n > b->nbits - off) {
			ks_why(why, "the key store is inconsistent (range outside its block)");
			rc = QKD_ERR_IO;
			goto out;
		}
		ks_bits_clear(buf, off, off + n);
	}
	if (src != SQLITE_DONE)
		rc = ks_err(s->db, src, why);
out:
	sqlite3_finalize(st);
	return rc;
}

/* The block's stored bytes: checked against their digests, but on a
 * reader's handle of an older file, which has none. */
static int read_stored(struct qkd_store *s, const struct qkd_store_block *b, uint8_t *buf,
		       const char **why)
{
	if (b->state == QKD_STORE_QUARANTINED)
		return ks_why_quarantined(s, b->id, why);
	if (s->version >= KS_SUM_VERSION)
		return ks_read_block(s, b->id, buf, ks_nbytes(b->nbits), why);
	return ks_blob_read(s, b->id, 0, buf, ks_nbytes(b->nbits), why);
}

int qkd_store_get(struct qkd_store *s, uint64_t id, uint8_t *buf, size_t buflen,
		  uint64_t *nbits, const char **why)
{
	struct qkd_store_block b = { 0 };
	bool found = false;
	int rc = check_id(s, id, why);

	if (rc != 0)
		return rc;
	if (nbits == NULL || (buf == NULL && buflen != 0)) {
		ks_why(why, "no output given");
		return QKD_ERR_INVAL;
	}
	rc = ks_begin(s, false, why);	/* one snapshot: bits and ranges agree */
	if (rc != 0)
		return rc;
	rc = ks_version_refresh(s, why);
	if (rc == 0)
		rc = ks_block_row(s, id, &b, &found, why);
	if (rc == 0 && !found) {
		ks_why(why, "no such block");
		rc = QKD_ERR_INVAL;
	}
	if (rc != 0)
		goto out;
	*nbits = b.nbits;
	if (buflen < ks_nbytes(b.nbits)) {
		ks_why(why, "buffer too small for the block");
		rc = QKD_ERR_RANGE;
		goto out;
	}
	if (b.state == QKD_STORE_USED) {
		memset(buf, 0, ks_nbytes(b.nbits));
		goto out;
	}
	rc = read_stored(s, &b, buf, why);
	if (rc == 0)
		rc = mask_consumed(s, &b, buf, why);
	if (rc != 0)
		qkd_wipe(buf, ks_nbytes(b.nbits));
out:
	/* a reader's handle (`qkd keys export`) reports, never quarantines */
	return ks_finish(s, rc, s->writer, why);
}

static void stats_add(struct qkd_store_stats *st, const struct qkd_store_block *b)
{
	st->count++;
	st->total_bits += b->nbits;
	st->consumed_bits += b->consumed;
	st->state_count[b->state]++;
	st->state_bits[b->state] += b->nbits;
	if (b->state == QKD_STORE_FINAL)
		st->available_bits += b->nbits - b->consumed;
}

static int list_row(sqlite3_stmt *st, struct qkd_store_block *b, const char **why)
{
	b->id = (uint64_t)sqlite3_column_int64(st, 0);
	b->nbits = (uint64_t)sqlite3_column_int64(st, 1);
	b->created = sqlite3_column_int64(st, 3);
	b->consumed = (uint64_t)sqlite3_column_int64(st, 4);
	if (ks_state_parse(sqlite3_column_text(st, 2), &b->state) != 0) {
		ks_why(why, "the key store file is corrupt (unknown block state)");
		return QKD_ERR_IO;
	}
	return 0;
}

/* Quarantined blocks the peer has not acknowledged (schema version 3 on). */
static int count_unreported(struct qkd_store *s, struct qkd_store_stats *st, const char **why)
{
	int64_t n = 0;
	int rc = ks_version_refresh(s, why);

	if (rc == 0 && s->version >= KS_SUM_VERSION)
		rc = ks_query_int(s, "SELECT count(*) FROM qblock WHERE state = 'quarantined'"
				  " AND reported = 0", &n, why);
	st->quarantine_unreported = (uint64_t)n;
	return rc;
}

int qkd_store_list(struct qkd_store *s, qkd_store_list_fn fn, void *ctx,
		   struct qkd_store_stats *stats, const char **why)
{
	struct qkd_store_stats acc;
	struct qkd_store_block b;
	sqlite3_stmt *st = NULL;
	int rc = check_store(s, why), src = SQLITE_DONE;

	if (rc != 0)
		return rc;
	memset(&acc, 0, sizeof(acc));
	rc = ks_begin(s, false, why);
	if (rc != 0)
		return rc;
	rc = ks_prep(s, "SELECT id, nbits, state, created, consumed FROM qblock ORDER BY id",
		     &st, why);
	while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
		rc = list_row(st, &b, why);
		if (rc != 0)
			break;
		stats_add(&acc, &b);
		if (fn != NULL)
			rc = fn(&b, ctx);
	}
	if (rc == 0 && src != SQLITE_DONE)
		rc = ks_err(s->db, src, why);
	sqlite3_finalize(st);
	if (rc == 0)
		rc = count_unreported(s, &acc, why);
	if (rc == 0 && stats != NULL)
		*stats = acc;
	return ks_end(s, rc, why);
}

int qkd_store_stats(struct qkd_store *s, struct qkd_store_stats *stats, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = check_store(s, why), src = SQLITE_DONE;

	if (rc != 0)
		return rc;
	if (stats == NULL) {
		ks_why(why, "no output given");
		return QKD_ERR_INVAL;
	}
	memset(stats, 0, sizeof(*stats));
	rc = ks_begin(s, false, why);
	if (rc != 0)
		return rc;
	rc = ks_prep(s, "SELECT state, count(*), sum(nbits), sum(consumed)"
		     " FROM qblock GROUP BY state", &st, why);
	while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
		enum qkd_store_state state;
		uint64_t n = (uint64_t)sqlite3_column_int64(st, 1);
		uint64_t bits = (uint64_t)sqlite3_column_int64(st, 2);
		uint64_t used = (uint64_t)sqlite3_column_int64(st, 3);

		if (ks_state_parse(sqlite3_column_text(st, 0), &state) != 0) {
			ks_why(why, "the key store file is corrupt (unknown block state)");
			rc = QKD_ERR_IO;
			break;
		}
		stats->count += n;
		stats->total_bits += bits;
		stats->consumed_bits += used;
		stats->state_count[state] = n;
		stats->state_bits[state] = bits;
		if (state == QKD_STORE_FINAL)
			stats->available_bits = bits - used;
	}
	if (rc == 0 && src != SQLITE_DONE)
		rc = ks_err(s->db, src, why);
	sqlite3_finalize(st);
	if (rc == 0)
		rc = count_unreported(s, stats, why);
	rc = ks_end(s, rc, why);
	if (rc != 0)
		memset(stats, 0, sizeof(*stats));
	return rc;
}
