/* keystore_verify.c - read every stored bit against its digest: the
 * read-only walk of `qkd keys check` (qkd_store_verify) and the node
 * daemon's start-up walk that quarantines what fails (qkd_store_verify_all).
 * docs/keystore.md, "Digests".
 *
 * Each block and each key is read in a read transaction of its own: with a
 * rollback journal a reader holds off the writer's commit, so a walk over a
 * large store must not keep one snapshot for its whole length.
 */
#include <string.h>

#include "keystore_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

struct walk {
	struct qkd_store *s;
	qkd_store_fault_fn fn;
	void *ctx;
	bool quarantine;
	struct qkd_store_verify_stats vs;
};

/* The next row of sql (?1 = the last one seen) in the open transaction:
 * two integers and, for keys, a key_id. */
struct item {
	int64_t at;		/* block id or key seq */
	uint64_t nbytes;
	uint8_t key_id[16];
	bool found;
};

static int next_item(struct qkd_store *s, const char *sql, struct item *it, const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = ks_prep(s, sql, &st, why), src;

	it->found = false;
	if (rc != 0)
		return rc;
	sqlite3_bind_int64(st, 1, it->at);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		const void *k = sqlite3_column_blob(st, 2);

		it->found = true;
		it->at = sqlite3_column_int64(st, 0);
		it->nbytes = (uint64_t)sqlite3_column_int64(st, 1);
		memset(it->key_id, 0, 16);
		if (k != NULL && sqlite3_column_bytes(st, 2) == 16)
			memcpy(it->key_id, k, 16);
	} else if (src != SQLITE_DONE) {
		rc = ks_err(s->db, src, why);
	}
	sqlite3_finalize(st);
	return rc;
}

/* A failure found: quarantine it (its own transaction), tell fn. */
static int report(struct walk *w, const struct qkd_store_fault *f, const char **why)
{
	struct qkd_store *s = w->s;
	int rc = 0;

	if (w->quarantine) {	/* the fault's reason is not the walk's */
		const char *qwhy = NULL;

		(void)(f->is_key ? ks_fault_key(s, f->key_id, &qwhy)
		       : ks_fault_block(s, f->id, f->chunk, f->nchunks, &qwhy));
		rc = ks_settle(s, &qwhy);
		if (rc != 0)
			ks_why(why, qwhy);
	}
	if (rc == 0 && w->fn != NULL)
		rc = w->fn(f, w->ctx);
	return rc;
}

static int walk_block(struct walk *w, struct item *it, const char **why)
{
	struct qkd_store_fault f = { .is_key = false };
	bool ok = true;
	int rc = ks_begin(w->s, false, why);

	if (rc != 0)
		return rc;
	rc = next_item(w->s, "SELECT id, (nbits + 7) / 8, NULL FROM qblock WHERE id > ?1"
		       " AND state IN ('pending', 'final') ORDER BY id LIMIT 1", it, why);
	if (rc == 0 && it->found)
		rc = ks_check_block(w->s, (uint64_t)it->at, it->nbytes, &ok, &f.chunk, why);
	rc = ks_end(w->s, rc, why);
	if (rc != 0 || !it->found)
		return rc;
	f.id = (uint64_t)it->at;
	f.nchunks = ks_nchunks(it->nbytes);
	w->vs.blocks++;
	w->vs.chunks += f.nchunks;
	w->vs.bad_blocks += !ok;
	return ok ? 0 : report(w, &f, why);
}

static int walk_key(struct walk *w, struct item *it, const char **why)
{
	uint8_t buf[KS_KEY_BYTES_MAX];
	struct qkd_store_fault f = { .is_key = true };
	bool ok = true;
	int rc = ks_begin(w->s, false, why);

	if (rc != 0)
		return rc;
	rc = next_item(w->s, "SELECT k.seq, length(b.bits), k.key_id FROM kme_key k"
		       " JOIN kme_bits b ON b.seq = k.seq WHERE k.seq > ?1 AND k.state = 'ready'"
		       " ORDER BY k.seq LIMIT 1", it, why);
	if (rc == 0 && it->found && (it->nbytes == 0 || it->nbytes > sizeof(buf))) {
		ks_why(why, "the key store is inconsistent: key manager bits of the wrong length");
		rc = QKD_ERR_IO;
	}
	if (rc == 0 && it->found)
		rc = ks_blob_read_in(w->s, "kme_bits", it->at, 0, buf, it->nbytes, why);
	if (rc == 0 && it->found)
		rc = ks_check_key(w->s, it->at, it->key_id, buf, (size_t)it->nbytes, &ok, why);
	qkd_wipe(buf, sizeof(buf));
	rc = ks_end(w->s, rc, why);
	if (rc != 0 || !it->found)
		return rc;
	memcpy(f.key_id, it->key_id, 16);
	w->vs.keys++;
	w->vs.bad_keys += !ok;
	return ok ? 0 : report(w, &f, why);
}

static int count_quarantined(struct walk *w, const char **why)
{
	int64_t b = 0, k = 0;
	int rc = ks_begin(w->s, false, why);

	if (rc == 0)
		rc = ks_query_int(w->s, "SELECT count(*) FROM qblock WHERE state = 'quarantined'",
				  &b, why);
	if (rc == 0)
		rc = ks_query_int(w->s, "SELECT count(*) FROM kme_key WHERE state = 'quarantined'",
				  &k, why);
	w->vs.quarantined_blocks = (uint64_t)b;
	w->vs.quarantined_keys = (uint64_t)k;
	return ks_end(w->s, rc, why);
}

static int walk(struct walk *w, const char **why)
{
	struct item it = { .at = -1 };
	int rc;

	if (w->s == NULL) {
		ks_why(why, "no store given");
		return QKD_ERR_INVAL;
	}
	rc = ks_require_current(w->s, why);
	if (rc == 0)
		rc = count_quarantined(w, why);
	do
		rc = rc == 0 ? walk_block(w, &it, why) : rc;
	while (rc == 0 && it.found);
	it.at = -1;
	do
		rc = rc == 0 ? walk_key(w, &it, why) : rc;
	while (rc == 0 && it.found);
	return rc;
}

int qkd_store_verify(struct qkd_store *s, qkd_store_fault_fn fn, void *ctx,
		     struct qkd_store_verify_stats *vs, const char **why)
{
	struct walk w = { .s = s, .fn = fn, .ctx = ctx, .quarantine = false };
	int rc;

	ks_why(why, NULL);
	rc = walk(&w, why);
	if (vs != NULL)
		*vs = w.vs;
	return rc;
}

int qkd_store_verify_all(struct qkd_store *s, uint64_t *nbad, const char **why)
{
	struct walk w = { .s = s, .quarantine = true };
	int rc;

	ks_why(why, NULL);
	rc = walk(&w, why);
	if (nbad != NULL)
		*nbad = w.vs.bad_blocks + w.vs.bad_keys;
	return rc;
}
