/* kme_store.c - the key manager's records, kept next to the blocks
 * their bits come from (qkd/kme_store.h; docs/keystore.md, "Key manager
 * records").
 *
 * One table, kme_key, holds both directions: the master's OUTBOX (dir
 * 'out', state 'pending' until the peer answers, or 'abandoned') and the
 * slave's INBOX (dir 'in': 'ready' then 'delivered', or 'refused',
 * 'withdrawn', 'quarantined'). A ready key's bits live in kme_bits, apart
 * from its row as qbits is apart from qblock, with their digest in kme_sum:
 * they go in and out by blob I/O, and deleting them (secure_delete) on
 * delivery overwrites them in the file. Every call is one transaction;
 * issue and accept consume their segments with take's own code
 * (keystore_take.c) inside it, so the bits, the blocks' bookkeeping and the
 * record change together or not at all. Abandoned and withdrawn records
 * are kme_store_wd.c's; expiry, pruning and the running totals
 * kme_store_life.c's.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../store/keystore_int.h"
#include "qkd/error.h"
#include "qkd/kme_store.h"
#include "qkd/secret.h"

/* A segment as stored: block id, offset, length, big-endian u64 each. */
#define SEG_BYTES 24
#define KEY_BYTES_MAX (QKD_KME_KEY_BITS_MAX / 8)
/* Keys per issue call. */
#define ISSUE_MAX 1024

const char *const ks_kme_state_names[KME_NSTATES] = {
	"pending", "ready", "delivered", "refused", "abandoned", "withdrawn", "quarantined",
	"expired",
};

static const char *const bad_row = "the key store is inconsistent (a bad key manager record)";

/* ---- the stored form ---- */

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int segs_encode(const struct qkd_kme_rec *r, uint8_t *buf)
{
	for (size_t i = 0; i < r->nsegs; i++) {
		put_be64(buf + SEG_BYTES * i, r->segs[i].id);
		put_be64(buf + SEG_BYTES * i + 8, r->segs[i].offset);
		put_be64(buf + SEG_BYTES * i + 16, r->segs[i].nbits);
	}
	return (int)(SEG_BYTES * r->nsegs);
}

int ks_kme_segs_decode(const void *blob, int len, struct qkd_store_seg *segs, size_t *nsegs)
{
	const uint8_t *p = blob;

	*nsegs = 0;
	if (p == NULL || len < SEG_BYTES || len > SEG_BYTES * QKD_KME_KEY_SEGS_MAX ||
	    len % SEG_BYTES != 0)
		return QKD_ERR_IO;
	for (int i = 0; i < len / SEG_BYTES; i++, p += SEG_BYTES)
		segs[i] = (struct qkd_store_seg){
			.id = get_be64(p), .offset = get_be64(p + 8), .nbits = get_be64(p + 16),
		};
	*nsegs = (size_t)(len / SEG_BYTES);
	return 0;
}

static bool sae_ok(const char *id)
{
	return id[0] != '\0' && memchr(id, '\0', QKD_KME_SAE_ID_MAX + 1) != NULL;
}

/* Why r cannot be a key record, or NULL; its segments too when with_segs. */
static const char *rec_bad(const struct qkd_kme_rec *r, bool with_segs)
{
	if (r->nbits < 8 || r->nbits > QKD_KME_KEY_BITS_MAX || r->nbits % 8 != 0)
		return "key length not a whole number of bytes from 8 to 65536 bits";
	if (!sae_ok(r->master) || !sae_ok(r->slave))
		return "SAE ID empty or longer than 64 bytes";
	if (!with_segs)
		return NULL;
	if (r->nsegs == 0 || r->nsegs > QKD_KME_KEY_SEGS_MAX)
		return "segment count out of range";
	if (ks_segs_total(r->segs, r->nsegs) != r->nbits)
		return "segments empty, of a block id out of range, or not summing to the key length";
	return NULL;
}

static bool same_rec(const struct qkd_kme_rec *a, const struct qkd_kme_rec *b)
{
	if (strcmp(a->master, b->master) != 0 || strcmp(a->slave, b->slave) != 0 ||
	    a->nbits != b->nbits || a->nsegs != b->nsegs)
		return false;
	for (size_t i = 0; i < a->nsegs; i++)
		if (a->segs[i].id != b->segs[i].id || a->segs[i].offset != b->segs[i].offset ||
		    a->segs[i].nbits != b->segs[i].nbits)
			return false;
	return true;
}

/* ---- rows ---- */

int ks_kme_present(struct qkd_store *s, bool *present, const char **why)
{
	int rc = s->version >= KS_KME_VERSION ? 0 : ks_version_refresh(s, why);

	*present = rc == 0 && s->version >= KS_KME_VERSION;
	return rc;
}

static int copy_sae(sqlite3_stmt *st, int col, char *dst)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	int n = sqlite3_column_bytes(st, col);

	if (t == NULL || n < 1 || n > QKD_KME_SAE_ID_MAX)
		return QKD_ERR_IO;
	memcpy(dst, t, (size_t)n);
	dst[n] = '\0';
	return sae_ok(dst) ? 0 : QKD_ERR_IO;
}

int ks_kme_parse_state(const unsigned char *t, enum ks_kme_state *st)
{
	for (int i = 0; t != NULL && i < KME_NSTATES; i++)
		if (strcmp((const char *)t, ks_kme_state_names[i]) == 0) {
			*st = (enum ks_kme_state)i;
			return 0;
		}
	return QKD_ERR_IO;
}

/* The KS_KME_ROW_COLS of the current row of st into row. A tombstone without
 * contents (withdrawn, abandoned) reads as a bare record. */
int ks_kme_read_row(sqlite3_stmt *st, struct ks_kme_row *row, const char **why)
{
	const void *id = sqlite3_column_blob(st, 1);
	int idlen = sqlite3_column_bytes(st, 1);
	const unsigned char *dir = sqlite3_column_text(st, 2);
	const void *segs;
	int rc;

	memset(row, 0, sizeof(*row));
	row->seq = sqlite3_column_int64(st, 0);
	row->out = dir != NULL && strcmp((const char *)dir, "out") == 0;
	row->rec.nbits = (uint32_t)sqlite3_column_int64(st, 6);
	row->bare = sqlite3_column_type(st, 4) == SQLITE_NULL;
	rc = id != NULL && idlen == 16 ? 0 : QKD_ERR_IO;
	if (rc == 0) {
		memcpy(row->rec.key_id, id, 16);
		rc = ks_kme_parse_state(sqlite3_column_text(st, 3), &row->state);
	}
	row->rec.abandoned = row->state == KME_ABANDONED;
	if (rc == 0 && row->bare)
		goto out;
	if (rc == 0)
		rc = copy_sae(st, 4, row->rec.master);
	if (rc == 0)
		rc = copy_sae(st, 5, row->rec.slave);
	if (rc == 0) {
		segs = sqlite3_column_blob(st, 7);
		rc = ks_kme_segs_decode(segs, sqlite3_column_bytes(st, 7), row->rec.segs,
					&row->rec.nsegs);
	}
out:
	if (rc != 0)
		ks_why(why, bad_row);
	return rc;
}

/* The row of key_id; *found false when there is none. */
int ks_kme_find(struct qkd_store *s, const uint8_t key_id[16], struct ks_kme_row *row,
		    bool *found, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = ks_prep(s, "SELECT " KS_KME_ROW_COLS " FROM kme_key WHERE key_id = ?1", &st, why), src;

	*found = false;
	if (rc != 0)
		goto out;
	sqlite3_bind_blob(st, 1, key_id, 16, SQLITE_STATIC);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		rc = ks_kme_read_row(st, row, why);
		*found = rc == 0;
	} else if (src != SQLITE_DONE) {
		rc = ks_err(s->db, src, why);
	}
out:
	sqlite3_finalize(st);
	return rc;
}

static int kme_insert(struct qkd_store *s, const struct qkd_kme_rec *r, bool out,
		      enum ks_kme_state state, int64_t *seq, const char **why)
{
	uint8_t segs[SEG_BYTES * QKD_KME_KEY_SEGS_MAX];
	int len = segs_encode(r, segs);
	sqlite3_stmt *st = NULL;
	int rc = ks_prep(s, "INSERT INTO kme_key (key_id, dir, state, master, slave, nbits,"
			 " segs, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", &st, why);

	if (rc == 0) {
		sqlite3_bind_blob(st, 1, r->key_id, 16, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, out ? "out" : "in", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, ks_kme_state_names[state], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, r->master, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, r->slave, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, (sqlite3_int64)r->nbits);
		sqlite3_bind_blob(st, 7, segs, len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 8, (sqlite3_int64)time(NULL));
		rc = ks_step_done(st, why);
	}
	if (rc == 0)
		*seq = sqlite3_last_insert_rowid(s->db);
	sqlite3_finalize(st);
	return rc;
}

/* A ready key's bits: zeroblob reserves the space and the bits go straight
 * into the page cache, as put_pending writes a block; their digest from the
 * bits as consumed (checked chunk by chunk on their way out of the blocks). */
static int kme_put_bits(struct qkd_store *s, int64_t seq, const uint8_t key_id[16],
			const uint8_t *bits, uint64_t n, const char **why)
{
	int rc = ks_run(s, "INSERT INTO kme_bits (seq, bits) VALUES (?1, zeroblob(?2))",
			(const int64_t[]){ seq, (int64_t)n }, 2, why);

	if (rc == 0)
		rc = ks_blob_write_in(s, "kme_bits", seq, 0, bits, n, why);
	if (rc == 0)
		rc = ks_sum_put_key(s, seq, key_id, bits, (size_t)n, why);
	return rc;
}

static int half_available(struct qkd_store *s, unsigned parity, uint64_t *bits,
			  const char **why)
{
	return qkd_store_half_free(s, parity, false, bits, why);
}

/* ---- master's end ---- */

static int issue_args(const struct qkd_store *s, unsigned parity, const struct qkd_kme_rec *recs,
		      size_t n, const uint8_t *bits, size_t bitslen, const char **why)
{
	const char *bad = NULL;

	if (s == NULL || recs == NULL || bits == NULL || parity > 1 || n == 0 || n > ISSUE_MAX) {
		ks_why(why, "no store, records or buffer, a parity not 0 or 1, or not 1 to 1024 keys");
		return QKD_ERR_INVAL;
	}
	for (size_t i = 0; bad == NULL && i < n; i++) {
		bad = rec_bad(&recs[i], false);
		if (bad == NULL && recs[i].nbits != recs[0].nbits)
			bad = "keys of different lengths in one call";
	}
	if (bad != NULL) {
		ks_why(why, bad);
		return QKD_ERR_INVAL;
	}
	if (bitslen / n < recs[0].nbits / 8) {
		ks_why(why, "buffer too small for the keys asked");
		return QKD_ERR_RANGE;
	}
	return 0;
}

/* Cut key r from the half of the blocks of the given parity into out,
 * and put its record in the outbox. */
static int issue_one(struct qkd_store *s, unsigned parity, struct qkd_kme_rec *r,
		     uint8_t *out, const char **why)
{
	struct ks_kme_row old;
	bool found = false;
	int64_t seq = 0;
	int rc = ks_kme_find(s, r->key_id, &old, &found, why);

	if (rc == 0 && found) {
		ks_why(why, "key_ID already in the outbox or inbox");
		return QKD_ERR_INVAL;
	}
	if (rc == 0)
		rc = ks_plan_take(s, (int)parity, false, r->nbits, r->segs, QKD_KME_KEY_SEGS_MAX,
				  &r->nsegs, why);
	if (rc == 0)
		rc = ks_consume_all(s, r->segs, r->nsegs, out, r->nbits / 8, why);
	if (rc == 0)
		rc = kme_insert(s, r, true, KME_PENDING, &seq, why);
	return rc;
}

static int issue_all(struct qkd_store *s, unsigned parity, struct qkd_kme_rec *recs, size_t n,
		     uint8_t *bits, const char **why)
{
	uint64_t avail = 0, nbytes = recs[0].nbits / 8;
	int rc = ks_require_current(s, why);

	/* Known short before any work: nothing is planned or consumed. */
	if (rc == 0)
		rc = half_available(s, parity, &avail, why);
	if (rc == 0 && avail < (uint64_t)n * recs[0].nbits) {
		ks_why(why, "not enough key in this end's half of the blocks");
		rc = QKD_ERR_RANGE;
	}
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = issue_one(s, parity, &recs[i], bits + i * nbytes, why);
	return rc;
}

int qkd_store_kme_issue(struct qkd_store *s, unsigned parity, struct qkd_kme_rec *recs,
			size_t n, uint8_t *bits, size_t bitslen, const char **why)
{
	int rc;

	ks_why(why, NULL);
	rc = issue_args(s, parity, recs, n, bits, bitslen, why);
	for (size_t i = 0; rc == 0 && i < n; i++)
		recs[i].abandoned = false;
	if (rc == 0) {
		rc = ks_begin(s, true, why);
		if (rc == 0)
			rc = ks_finish(s, issue_all(s, parity, recs, n, bits, why), true, why);
		for (size_t i = 0; rc != 0 && i < n; i++) {
			recs[i].nsegs = 0;
			memset(recs[i].segs, 0, sizeof(recs[i].segs));
		}
	}
	if (rc != 0 && bits != NULL)
		qkd_wipe(bits, bitslen);
	return rc;
}

int qkd_store_kme_outbox(struct qkd_store *s, struct qkd_kme_rec *recs, size_t max,
			 size_t *n, const char **why)
{
	sqlite3_stmt *st = NULL;
	struct ks_kme_row row;
	bool present = false;
	int rc, src = SQLITE_DONE;

	ks_why(why, NULL);
	if (s == NULL || n == NULL || (recs == NULL && max > 0)) {
		ks_why(why, "no store or output given");
		return QKD_ERR_INVAL;
	}
	*n = 0;
	if (max == 0)
		return 0;
	rc = ks_begin(s, false, why);
	if (rc != 0)
		return rc;
	rc = ks_kme_present(s, &present, why);	/* version 1: an empty outbox */
	if (rc == 0 && present)
		rc = ks_prep(s, "SELECT " KS_KME_ROW_COLS " FROM kme_key WHERE dir = 'out'"
			     " ORDER BY seq LIMIT ?1", &st, why);
	if (rc == 0 && present) {
		sqlite3_bind_int64(st, 1, (uint64_t)max > (uint64_t)INT64_MAX ? INT64_MAX
				   : (sqlite3_int64)max);
		while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
			rc = ks_kme_read_row(st, &row, why);
			if (rc == 0)
				recs[(*n)++] = row.rec;
		}
		if (rc == 0 && src != SQLITE_DONE)
			rc = ks_err(s->db, src, why);
	}
	sqlite3_finalize(st);
	rc = ks_end(s, rc, why);
	if (rc != 0)
		*n = 0;
	return rc;
}

/* Drop the outbox rows of ids[0 .. n) that are in state (one transaction). */
static int outbox_drop(struct qkd_store *s, const uint8_t (*ids)[16], size_t n, const char *sql,
		       const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = ks_begin_batch(s, s != NULL && (n == 0 || ids != NULL),
				"no store or key_ID given", n, why);

	if (rc != 0)
		return rc == KS_NOTHING ? 0 : rc;
	rc = ks_prep(s, sql, &st, why);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_blob(st, 1, ids[i], 16, SQLITE_STATIC);
		rc = ks_step_done(st, why);
	}
	sqlite3_finalize(st);
	return ks_end(s, rc, why);
}

int qkd_store_kme_outbox_done_batch(struct qkd_store *s, const uint8_t (*ids)[16], size_t n,
				    const char **why)
{
	return outbox_drop(s, ids, n, "DELETE FROM kme_key WHERE key_id = ?1 AND dir = 'out' "
			   "AND state = 'pending'", why);
}

int qkd_store_kme_withdrawals_done_batch(struct qkd_store *s, const uint8_t (*ids)[16], size_t n,
					 const char **why)
{
	return outbox_drop(s, ids, n, "DELETE FROM kme_key WHERE key_id = ?1 AND dir = 'out' "
			   "AND state = 'abandoned'", why);
}

int qkd_store_kme_outbox_done(struct qkd_store *s, const uint8_t key_id[16], const char **why)
{
	if (key_id == NULL) {
		ks_why(why, "no store or key_ID given");
		return QKD_ERR_INVAL;
	}
	return qkd_store_kme_outbox_done_batch(s, (const uint8_t (*)[16])key_id, 1, why);
}

/* ---- slave's end ---- */

/* The answer to a record whose key_id is known: the same one as before
 * for the same contents, a refusal for anything else. */
static enum qkd_kme_verdict known_verdict(const struct ks_kme_row *old,
					  const struct qkd_kme_rec *rec, const char **why)
{
	if (old->out) {
		ks_why(why, "the key_ID is one this end issued");
		return QKD_KME_REFUSED;
	}
	if (old->state == KME_WITHDRAWN) {
		ks_why(why, "the key was withdrawn by its master");
		return QKD_KME_REFUSED;
	}
	if (old->state == KME_EXPIRED) {
		ks_why(why, "the key expired here unfetched (kme.key_ttl)");
		return QKD_KME_REFUSED;
	}
	if (old->state == KME_QUARANTINED) {
		ks_why(why, "the key's bits failed their digest here");
		return QKD_KME_REFUSED;
	}
	if (!same_rec(&old->rec, rec)) {
		ks_why(why, "the key_ID is known with other contents");
		return QKD_KME_REFUSED;
	}
	if (old->state == KME_REFUSED) {
		ks_why(why, "the key was refused before");
		return QKD_KME_REFUSED;
	}
	return QKD_KME_ACCEPTED;
}

/* Look at the segments' blocks without changing anything: *refuse for a
 * cause that no retry can lift, *later for a block not final here yet.
 * Overlaps with bits already consumed show when consuming. */
static int probe_segs(struct qkd_store *s, unsigned peer_parity, const struct qkd_kme_rec *rec,
		      const char **refuse, bool *later, const char **why)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && *refuse == NULL && i < rec->nsegs; i++) {
		const struct qkd_store_seg *g = &rec->segs[i];
		struct qkd_store_block b;
		bool found = false;

		if (g->id % 2 != peer_parity) {
			*refuse = "a segment lies in a block of the other end's half";
			break;
		}
		rc = ks_block_row(s, g->id, &b, &found, why);
		if (rc != 0)
			break;
		if (!found || b.state == QKD_STORE_PENDING)
			*later = true;
		else if (b.state == QKD_STORE_QUARANTINED)
			*refuse = "a block of the key is quarantined here";
		else if (b.state == QKD_STORE_USED)
			*refuse = "bits of the key were already consumed here";
		else if (g->offset > b.nbits || g->nbits > b.nbits - g->offset)
			*refuse = "a segment lies outside its block";
	}
	return rc;
}

/* Consume rec's segments into buf, or leave everything as it was and set
 * *refuse when take_at's checks refuse them (bits already consumed, by
 * another key or by an earlier segment of this one). */
static int consume_rec(struct qkd_store *s, const struct qkd_kme_rec *rec, uint8_t *buf,
		       const char **refuse, const char **why)
{
	const char *w = NULL;
	int rc = ks_exec(s, "SAVEPOINT kme_accept", why);

	if (rc != 0)
		return rc;
	rc = ks_consume_all(s, rec->segs, rec->nsegs, buf, rec->nbits / 8, &w);
	if (rc == QKD_ERR_INVAL) {
		*refuse = "bits of the key were already consumed here";
		rc = ks_exec(s, "ROLLBACK TO kme_accept", why);
	} else if (rc != 0) {
		ks_why(why, w);
	}
	if (rc == 0)
		rc = ks_exec(s, "RELEASE kme_accept", why);
	return rc;
}

/* A record with an unknown key_id: consume and keep it, or refuse it and
 * keep a tombstone, or (a block not final here yet) change nothing. */
static int accept_new(struct qkd_store *s, unsigned peer_parity, const struct qkd_kme_rec *rec,
		      bool deliverable, enum qkd_kme_verdict *v, const char **why)
{
	uint8_t buf[KEY_BYTES_MAX];
	const char *refuse = NULL;
	bool later = false;
	int64_t seq = 0;
	int rc = probe_segs(s, peer_parity, rec, &refuse, &later, why);

	if (rc == 0 && refuse == NULL && later) {
		*v = QKD_KME_LATER;
		ks_why(why, "a block of the key is not final here yet");
		goto out;
	}
	if (rc == 0 && refuse == NULL)
		rc = consume_rec(s, rec, buf, &refuse, why);
	if (rc == 0 && refuse == NULL && !deliverable) {
		refuse = "the SAE pair is not one this end serves";
		rc = ks_kme_tally_add(s, "lost_bits", rec->nbits, why);	/* consumed */
	}
	if (rc == 0)
		rc = kme_insert(s, rec, false, refuse == NULL ? KME_READY : KME_REFUSED, &seq, why);
	if (rc == 0 && refuse == NULL)
		rc = kme_put_bits(s, seq, rec->key_id, buf, rec->nbits / 8, why);
	if (rc == 0) {
		*v = refuse == NULL ? QKD_KME_ACCEPTED : QKD_KME_REFUSED;
		ks_why(why, refuse);
	}
out:
	qkd_wipe(buf, sizeof(buf));
	return rc;
}

/* One record inside the open write transaction: *v and *why set; a
 * non-zero result only when the store failed. */
static int accept_one(struct qkd_store *s, unsigned peer_parity, const struct qkd_kme_rec *rec,
		      bool deliverable, enum qkd_kme_verdict *v, const char **why)
{
	struct ks_kme_row old;
	const char *bad;
	bool found = false;
	int rc;

	/* Malformed: refused, and not recorded (the table cannot hold it);
	 * the same record sent again gets the same answer all the same. */
	*v = QKD_KME_REFUSED;
	bad = rec_bad(rec, true);
	if (bad != NULL) {
		ks_why(why, bad);
		return 0;
	}
	rc = ks_kme_find(s, rec->key_id, &old, &found, why);
	if (rc == 0 && found)
		*v = known_verdict(&old, rec, why);
	else if (rc == 0)
		rc = accept_new(s, peer_parity, rec, deliverable, v, why);
	return rc;
}

int qkd_store_kme_accept_batch(struct qkd_store *s, unsigned peer_parity,
			       const struct qkd_kme_rec *recs, size_t n, const bool *deliverable,
			       enum qkd_kme_verdict *v, const char **whys, const char **why)
{
	int rc;

	ks_why(why, NULL);
	if (s == NULL || (n > 0 && (recs == NULL || deliverable == NULL || v == NULL ||
				    whys == NULL)) || peer_parity > 1) {
		ks_why(why, "no store, record or verdict given, or a parity not 0 or 1");
		return QKD_ERR_INVAL;
	}
	for (size_t i = 0; i < n; i++) {
		v[i] = QKD_KME_LATER;
		whys[i] = NULL;
	}
	if (n == 0)
		return 0;
	rc = ks_begin(s, true, why);
	if (rc != 0)
		return rc;
	rc = ks_require_current(s, why);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = accept_one(s, peer_parity, &recs[i], deliverable[i], &v[i], &whys[i]);
		if (rc != 0)
			ks_why(why, whys[i]);	/* the store's reason went there */
	}
	rc = ks_finish(s, rc, true, why);
	if (rc != 0)	/* nothing changed: every record is to be sent again */
		for (size_t i = 0; i < n; i++) {
			v[i] = QKD_KME_LATER;
			whys[i] = NULL;
		}
	return rc;
}

int qkd_store_kme_accept(struct qkd_store *s, unsigned peer_parity, const struct qkd_kme_rec *rec,
			 bool deliverable, enum qkd_kme_verdict *v, const char **why)
{
	const char *w = NULL;
	int rc;

	ks_why(why, NULL);
	if (s == NULL || rec == NULL || v == NULL || peer_parity > 1) {
		ks_why(why, "no store, record or verdict given, or a parity not 0 or 1");
		if (v != NULL)
			*v = QKD_KME_LATER;
		return QKD_ERR_INVAL;
	}
	rc = qkd_store_kme_accept_batch(s, peer_parity, rec, 1, &deliverable, v, &w, why);
	if (rc == 0)
		ks_why(why, w);
	return rc;
}

const char qkd_store_kme_why_withdrawn[] =
	"key_ID withdrawn: its master KME gave up on it (enc_keys failed); never served";
const char qkd_store_kme_why_expired[] =
	"key_ID expired: not fetched within kme.key_ttl; its bits were wiped";

static const char *state_refusal(enum ks_kme_state st)
{
	switch (st) {
	case KME_DELIVERED: return "the key was already delivered";
	case KME_WITHDRAWN: return qkd_store_kme_why_withdrawn;
	case KME_EXPIRED: return qkd_store_kme_why_expired;
	default: return "the key was refused";
	}
}

/* Whether row (of a key_ID *found or not) may go to (master, slave). */
static int deliverable_row(struct qkd_store *s, const struct ks_kme_row *row, bool found,
			   const char *master, const char *slave, const char **why)
{
	if (!found || row->out) {
		ks_why(why, "no such key_ID");
		return QKD_ERR_INVAL;
	}
	if (row->bare) {	/* a withdrawn key_ID this end never had */
		ks_why(why, state_refusal(row->state));
		return QKD_ERR_INVAL;
	}
	if (strcmp(row->rec.master, master) != 0 || strcmp(row->rec.slave, slave) != 0) {
		ks_why(why, "the key_ID was issued for another pair of SAEs");
		return QKD_ERR_VERIFY;
	}
	if (row->state == KME_QUARANTINED) {
		snprintf(s->whybuf, sizeof(s->whybuf), "the key is quarantined: its bits failed"
			 " their digest and were deleted");
		ks_why(why, s->whybuf);
		return QKD_ERR_CORRUPT;
	}
	if (row->state != KME_READY) {
		ks_why(why, state_refusal(row->state));
		return QKD_ERR_INVAL;
	}
	return 0;
}

/* Hand out key id to (master, slave) into out and make it a tombstone. */
static int deliver_one(struct qkd_store *s, const char *master, const char *slave,
		       const uint8_t id[16], uint8_t *out, size_t cap, size_t *len,
		       const char **why)
{
	struct ks_kme_row row;
	bool found = false, ok = false;
	int rc = ks_kme_find(s, id, &row, &found, why);

	if (rc != 0)
		return rc;
	rc = deliverable_row(s, &row, found, master, slave, why);
	if (rc != 0)
		return rc;
	if (out == NULL || row.rec.nbits / 8 > cap) {
		ks_why(why, "output buffer missing or too small for the key");
		return out == NULL ? QKD_ERR_INVAL : QKD_ERR_RANGE;
	}
	rc = ks_blob_read_in(s, "kme_bits", row.seq, 0, out, row.rec.nbits / 8, why);
	if (rc == 0)
		rc = ks_check_key(s, row.seq, id, out, row.rec.nbits / 8, &ok, why);
	if (rc == 0 && !ok)
		rc = ks_fault_key(s, id, why);
	if (rc == 0)	/* secure_delete overwrites them in the file */
		rc = ks_run(s, "DELETE FROM kme_sum WHERE seq = ?1", &row.seq, 1, why);
	if (rc == 0)
		rc = ks_run(s, "DELETE FROM kme_bits WHERE seq = ?1", &row.seq, 1, why);
	if (rc == 0)
		rc = ks_run(s, "UPDATE kme_key SET state = 'delivered' WHERE seq = ?1",
			    &row.seq, 1, why);
	if (rc == 0)
		*len = row.rec.nbits / 8;
	return rc;
}

static void deliver_wipe(uint8_t *const *out, size_t n, size_t cap, size_t *lens)
{
	for (size_t i = 0; out != NULL && i < n; i++)
		if (out[i] != NULL)
			qkd_wipe(out[i], cap);
	if (lens != NULL)
		memset(lens, 0, n * sizeof(*lens));
}

int qkd_store_kme_deliver(struct qkd_store *s, const char *master, const char *slave,
			  const uint8_t (*ids)[16], size_t n, uint8_t *const *out, size_t cap,
			  size_t *lens, size_t *bad, const char **why)
{
	size_t at = n;
	int rc;

	ks_why(why, NULL);
	if (s == NULL || master == NULL || slave == NULL || ids == NULL || out == NULL ||
	    lens == NULL || bad == NULL || n == 0) {
		ks_why(why, "no store, SAE ID, key_ID, output or length array given");
		rc = QKD_ERR_INVAL;
		goto out;
	}
	rc = ks_begin(s, true, why);
	if (rc != 0)
		goto out;
	rc = ks_require_current(s, why);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = deliver_one(s, master, slave, ids[i], out[i], cap, &lens[i], why);
		if (rc != 0)
			at = i;
	}
	rc = ks_finish(s, rc, true, why);
out:
	if (bad != NULL)
		*bad = rc != 0 ? at : n;
	if (rc != 0)
		deliver_wipe(out, n, cap, lens);
	return rc;
}

/* ---- figures ---- */

int qkd_store_kme_available(struct qkd_store *s, unsigned parity, uint64_t *bits,
			    const char **why)
{
	ks_why(why, NULL);
	if (s == NULL || bits == NULL || parity > 1) {
		ks_why(why, "no store or output given, or a parity not 0 or 1");
		return QKD_ERR_INVAL;
	}
	return half_available(s, parity, bits, why);
}

static void counts_add(struct qkd_kme_counts *c, const unsigned char *dir,
		       const unsigned char *state, uint64_t n)
{
	enum ks_kme_state st = KME_PENDING;

	if (ks_kme_parse_state(state, &st) != 0)
		return;		/* the CHECK constraints keep this from happening */
	if (dir != NULL && strcmp((const char *)dir, "out") == 0)
		c->outbox += n;
	switch (st) {
	case KME_READY: c->ready += n; break;
	case KME_DELIVERED: c->delivered += n; break;
	case KME_REFUSED: c->refused += n; break;
	case KME_ABANDONED: c->abandoned += n; break;
	case KME_WITHDRAWN: c->withdrawn += n; break;
	case KME_QUARANTINED: c->quarantined += n; break;
	case KME_PENDING: case KME_EXPIRED: break;	/* expired: the tally counts */
	}
}

int qkd_store_kme_counts(struct qkd_store *s, struct qkd_kme_counts *c, const char **why)
{
	sqlite3_stmt *st = NULL;
	bool present = false;
	int rc, src = SQLITE_DONE;

	ks_why(why, NULL);
	if (s == NULL || c == NULL) {
		ks_why(why, "no store or output given");
		return QKD_ERR_INVAL;
	}
	memset(c, 0, sizeof(*c));
	rc = ks_begin(s, false, why);
	if (rc != 0)
		return rc;
	rc = ks_kme_present(s, &present, why);	/* version 1: no records */
	if (rc == 0 && present)
		rc = ks_prep(s, "SELECT dir, state, count(*) FROM kme_key GROUP BY dir, state",
			     &st, why);
	while (rc == 0 && present && (src = sqlite3_step(st)) == SQLITE_ROW)
		counts_add(c, sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
			   (uint64_t)sqlite3_column_int64(st, 2));
	if (rc == 0 && present && src != SQLITE_DONE)
		rc = ks_err(s->db, src, why);
	sqlite3_finalize(st);
	if (rc == 0 && present)
		rc = ks_kme_tally_read(s, c, why);
	rc = ks_end(s, rc, why);
	if (rc != 0)
		memset(c, 0, sizeof(*c));
	return rc;
}
