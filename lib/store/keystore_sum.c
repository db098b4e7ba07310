/* keystore_sum.c - the digests of stored bits (docs/keystore.md, "Digests").
 *
 * Bit rot passes SQLite's checks: a page's content is not checksummed, so a
 * flipped bit in a block's bits would be served, and the application would
 * get a key different from its peer's for the same coordinates. Each block
 * therefore carries one digest per 512-byte chunk of its stored bytes
 * (table qsum, 16 bytes per chunk), written by put_pending from the caller's
 * bits. Every read that hands bits out (take, take_at, the key manager's
 * issue and accept, get) checks the chunks it reads before a bit is cut or
 * returned; a consume step that zeroes bytes recomputes the digests of the
 * chunks it changed, in its transaction. A ready key's bytes (kme_bits) have
 * one digest (kme_sum), checked by deliver.
 *
 * The digest is BLAKE2b-128 (libsodium) with the block id and chunk index as
 * its salt and a personalization naming the table, so that chunks cannot be
 * swapped between places: a chunk of block 7 does not match the digest of
 * chunk 3 of block 9. A key's digest is salted with its key_ID. Each end
 * computes its digests from its own bits and never sends them: they are a
 * function of secret key (and would tell nothing the peer needs). They are
 * a check against accidental corruption, not a MAC: whoever can write the
 * file can rewrite them.
 */
#include <sodium.h>
#include <string.h>

#include "keystore_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

static const char block_personal[] = "qkdstore-qbits-1";
static const char key_personal[] = "qkdstore-kbits-1";

_Static_assert(sizeof(block_personal) == crypto_generichash_blake2b_PERSONALBYTES + 1,
	       "personalization is 16 bytes");
_Static_assert(sizeof(key_personal) == crypto_generichash_blake2b_PERSONALBYTES + 1,
	       "personalization is 16 bytes");
_Static_assert(KS_SUM_LEN >= crypto_generichash_blake2b_BYTES_MIN, "digest length");

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

void ks_sum_chunk(uint64_t id, uint64_t chunk, const uint8_t *p, size_t n,
		  uint8_t out[KS_SUM_LEN])
{
	uint8_t salt[crypto_generichash_blake2b_SALTBYTES];

	put_le64(salt, id);
	put_le64(salt + 8, chunk);
	(void)crypto_generichash_blake2b_salt_personal(out, KS_SUM_LEN, p, n, NULL, 0, salt,
						       (const unsigned char *)block_personal);
}

void ks_sum_key(const uint8_t key_id[16], const uint8_t *p, size_t n, uint8_t out[KS_SUM_LEN])
{
	(void)crypto_generichash_blake2b_salt_personal(out, KS_SUM_LEN, p, n, NULL, 0, key_id,
						       (const unsigned char *)key_personal);
}

/* ---- a block's chunks ---- */

struct chunks {
	sqlite3_blob *bits, *sums;
	uint64_t id, nbytes, n;
};

static int chunks_open(struct qkd_store *s, uint64_t id, bool sums_rw, struct chunks *c,
		       const char **why)
{
	int rc;

	memset(c, 0, sizeof(*c));
	c->id = id;
	rc = ks_blob_open(s, "qbits", "bits", (int64_t)id, false, &c->bits, why);
	if (rc == 0)
		rc = ks_blob_open(s, "qsum", "sums", (int64_t)id, sums_rw, &c->sums, why);
	if (rc != 0)
		return rc;
	c->nbytes = (uint64_t)sqlite3_blob_bytes(c->bits);
	c->n = ks_nchunks(c->nbytes);
	if ((uint64_t)sqlite3_blob_bytes(c->sums) != c->n * KS_SUM_LEN) {
		ks_why(why, "the key store is inconsistent (digests of the wrong length)");
		rc = QKD_ERR_IO;
	}
	return rc;
}

static int chunks_close(struct qkd_store *s, struct chunks *c, int rc, const char **why)
{
	sqlite3_blob_close(c->bits);
	return ks_blob_close(s, c->sums, rc, why);
}

static size_t chunk_len(const struct chunks *c, uint64_t k)
{
	uint64_t left = c->nbytes - k * KS_SUM_CHUNK;

	return left < KS_SUM_CHUNK ? (size_t)left : KS_SUM_CHUNK;
}

/* Chunk k into dst (KS_SUM_CHUNK bytes of room), *len its length, *ok
 * whether it matches its digest (compared in constant time). */
static int chunk_load(struct qkd_store *s, const struct chunks *c, uint64_t k, uint8_t *dst,
		      size_t *len, bool *ok, const char **why)
{
	uint8_t want[KS_SUM_LEN], got[KS_SUM_LEN];
	int rc;

	*ok = false;
	*len = 0;
	if (k >= c->n) {
		ks_why(why, "the key store is inconsistent (bits shorter than the block)");
		return QKD_ERR_IO;
	}
	*len = chunk_len(c, k);
	rc = ks_blob_xfer(s, c->bits, NULL, dst, k * KS_SUM_CHUNK, *len, why);
	if (rc == 0)
		rc = ks_blob_xfer(s, c->sums, NULL, want, k * KS_SUM_LEN, KS_SUM_LEN, why);
	if (rc == 0) {
		ks_sum_chunk(c->id, k, dst, *len, got);
		*ok = sodium_memcmp(got, want, KS_SUM_LEN) == 0;
	}
	qkd_wipe(got, sizeof(got));
	qkd_wipe(want, sizeof(want));
	return rc;
}

int ks_read_bits(struct qkd_store *s, uint64_t id, uint64_t off, uint64_t n,
		 uint8_t *out, uint64_t dpos, const char **why)
{
	uint8_t buf[KS_SUM_CHUNK];
	const uint64_t cbits = 8 * KS_SUM_CHUNK, end = off + n;
	struct chunks c;
	int rc = chunks_open(s, id, false, &c, why);

	for (uint64_t k = off / cbits; rc == 0 && k * cbits < end; k++) {
		uint64_t base = k * cbits, x0 = off > base ? off : base, x1;
		size_t len = 0;
		bool ok = false;

		rc = chunk_load(s, &c, k, buf, &len, &ok, why);
		if (rc == 0 && !ok)
			rc = ks_fault_block(s, id, k, c.n, why);
		x1 = end < base + 8 * len ? end : base + 8 * len;
		if (rc == 0 && x1 > x0)
			ks_bits_copy(out, dpos + (x0 - off), buf, x0 - base, x1 - x0);
	}
	qkd_wipe(buf, sizeof(buf));
	return chunks_close(s, &c, rc, why);
}

int ks_read_block(struct qkd_store *s, uint64_t id, uint8_t *buf, uint64_t nbytes,
		  const char **why)
{
	struct chunks c;
	int rc = chunks_open(s, id, false, &c, why);

	if (rc == 0 && c.nbytes != nbytes) {
		ks_why(why, "the key store is inconsistent (bits of the wrong length)");
		rc = QKD_ERR_IO;
	}
	for (uint64_t k = 0; rc == 0 && k < c.n; k++) {
		size_t len = 0;
		bool ok = false;

		rc = chunk_load(s, &c, k, buf + k * KS_SUM_CHUNK, &len, &ok, why);
		if (rc == 0 && !ok)
			rc = ks_fault_block(s, id, k, c.n, why);
	}
	return chunks_close(s, &c, rc, why);
}

int ks_check_block(struct qkd_store *s, uint64_t id, uint64_t nbytes, bool *ok,
		   uint64_t *bad_chunk, const char **why)
{
	uint8_t buf[KS_SUM_CHUNK];
	struct chunks c;
	int rc = chunks_open(s, id, false, &c, why);

	*ok = true;
	if (rc == 0 && c.nbytes != nbytes) {
		ks_why(why, "the key store is inconsistent (bits of the wrong length)");
		rc = QKD_ERR_IO;
	}
	for (uint64_t k = 0; rc == 0 && *ok && k < c.n; k++) {
		size_t len = 0;

		rc = chunk_load(s, &c, k, buf, &len, ok, why);
		*bad_chunk = k;
	}
	qkd_wipe(buf, sizeof(buf));
	return chunks_close(s, &c, rc, why);
}

/* ---- writing digests ---- */

int ks_sum_refresh(struct qkd_store *s, uint64_t id, uint64_t lo, uint64_t hi,
		   const char **why)
{
	uint8_t buf[KS_SUM_CHUNK], d[KS_SUM_LEN];
	struct chunks c;
	int rc;

	if (hi <= lo)
		return 0;
	rc = chunks_open(s, id, true, &c, why);
	for (uint64_t k = lo / KS_SUM_CHUNK; rc == 0 && k <= (hi - 1) / KS_SUM_CHUNK; k++) {
		size_t len = k < c.n ? chunk_len(&c, k) : 0;

		rc = ks_blob_xfer(s, c.bits, NULL, buf, k * KS_SUM_CHUNK, len, why);
		if (rc == 0) {
			ks_sum_chunk(id, k, buf, len, d);
			rc = ks_blob_xfer(s, c.sums, d, NULL, k * KS_SUM_LEN, KS_SUM_LEN, why);
		}
	}
	qkd_wipe(buf, sizeof(buf));
	qkd_wipe(d, sizeof(d));
	return chunks_close(s, &c, rc, why);
}

/* Digests are written KS_CHUNK bytes (256 chunks) at a time. */
#define SUMS_PER_WRITE (KS_CHUNK / KS_SUM_LEN)

int ks_sum_put_block(struct qkd_store *s, uint64_t id, const uint8_t *bits, uint64_t nbytes,
		     const char **why)
{
	uint8_t d[SUMS_PER_WRITE * KS_SUM_LEN];
	uint64_t n = ks_nchunks(nbytes);
	sqlite3_blob *b = NULL;
	int64_t arg[] = { (int64_t)id, (int64_t)(n * KS_SUM_LEN) };
	int rc = ks_run(s, "INSERT INTO qsum (id, sums) VALUES (?1, zeroblob(?2))", arg, 2, why);

	if (rc == 0)
		rc = ks_blob_open(s, "qsum", "sums", (int64_t)id, true, &b, why);
	for (uint64_t k0 = 0; rc == 0 && k0 < n; k0 += SUMS_PER_WRITE) {
		uint64_t m = n - k0 < SUMS_PER_WRITE ? n - k0 : SUMS_PER_WRITE;

		for (uint64_t j = 0; j < m; j++) {
			uint64_t k = k0 + j, left = nbytes - k * KS_SUM_CHUNK;

			ks_sum_chunk(id, k, bits + k * KS_SUM_CHUNK,
				     left < KS_SUM_CHUNK ? (size_t)left : KS_SUM_CHUNK,
				     d + j * KS_SUM_LEN);
		}
		rc = ks_blob_xfer(s, b, d, NULL, k0 * KS_SUM_LEN, m * KS_SUM_LEN, why);
	}
	qkd_wipe(d, sizeof(d));
	return ks_blob_close(s, b, rc, why);
}

int ks_sum_put_key(struct qkd_store *s, int64_t seq, const uint8_t key_id[16],
		   const uint8_t *bits, size_t n, const char **why)
{
	uint8_t d[KS_SUM_LEN];
	sqlite3_stmt *st = NULL;
	int rc = ks_prep(s, "INSERT INTO kme_sum (seq, sum) VALUES (?1, ?2)", &st, why);

	ks_sum_key(key_id, bits, n, d);
	if (rc == 0) {
		sqlite3_bind_int64(st, 1, seq);
		sqlite3_bind_blob(st, 2, d, KS_SUM_LEN, SQLITE_STATIC);
		rc = ks_step_done(st, why);
	}
	sqlite3_finalize(st);
	qkd_wipe(d, sizeof(d));
	return rc;
}

int ks_check_key(struct qkd_store *s, int64_t seq, const uint8_t key_id[16],
		 const uint8_t *buf, size_t n, bool *ok, const char **why)
{
	uint8_t want[KS_SUM_LEN], got[KS_SUM_LEN];
	sqlite3_blob *b = NULL;
	int rc = ks_blob_open(s, "kme_sum", "sum", seq, false, &b, why);

	*ok = false;
	if (rc == 0)
		rc = ks_blob_xfer(s, b, NULL, want, 0, KS_SUM_LEN, why);
	if (rc == 0) {
		ks_sum_key(key_id, buf, n, got);
		*ok = sodium_memcmp(got, want, KS_SUM_LEN) == 0;
	}
	sqlite3_blob_close(b);
	qkd_wipe(got, sizeof(got));
	qkd_wipe(want, sizeof(want));
	return rc;
}

/* ---- the upgrade to schema version 3 ---- */

/* Digests of a block already stored, from its stored bytes. */
static int backfill_block(struct qkd_store *s, uint64_t id, uint64_t nbytes, const char **why)
{
	uint8_t buf[KS_SUM_CHUNK], d[KS_SUM_LEN];
	int64_t arg[] = { (int64_t)id, (int64_t)(ks_nchunks(nbytes) * KS_SUM_LEN) };
	struct chunks c = { 0 };
	int rc = ks_run(s, "INSERT INTO qsum (id, sums) VALUES (?1, zeroblob(?2))", arg, 2, why);

	if (rc == 0)
		rc = chunks_open(s, id, true, &c, why);
	for (uint64_t k = 0; rc == 0 && k < c.n; k++) {
		rc = ks_blob_xfer(s, c.bits, NULL, buf, k * KS_SUM_CHUNK, chunk_len(&c, k), why);
		if (rc == 0) {
			ks_sum_chunk(id, k, buf, chunk_len(&c, k), d);
			rc = ks_blob_xfer(s, c.sums, d, NULL, k * KS_SUM_LEN, KS_SUM_LEN, why);
		}
	}
	qkd_wipe(buf, sizeof(buf));
	qkd_wipe(d, sizeof(d));
	return chunks_close(s, &c, rc, why);
}

static int backfill_key(struct qkd_store *s, sqlite3_stmt *st, const char **why)
{
	uint8_t buf[KS_KEY_BYTES_MAX];
	int64_t seq = sqlite3_column_int64(st, 0);
	const void *key_id = sqlite3_column_blob(st, 1);
	int idlen = sqlite3_column_bytes(st, 1);
	uint64_t n = (uint64_t)sqlite3_column_int64(st, 2);
	int rc = 0;

	if (key_id == NULL || idlen != 16 || n == 0 || n > sizeof(buf)) {
		ks_why(why, "the key store is inconsistent (a bad key manager record)");
		return QKD_ERR_IO;
	}
	rc = ks_blob_read_in(s, "kme_bits", seq, 0, buf, n, why);
	if (rc == 0)
		rc = ks_sum_put_key(s, seq, key_id, buf, (size_t)n, why);
	qkd_wipe(buf, sizeof(buf));
	return rc;
}

/* Run sql (one row per item) and fn on each row. */
static int each_row(struct qkd_store *s, const char *sql,
		    int (*fn)(struct qkd_store *, sqlite3_stmt *, const char **), const char **why)
{
	sqlite3_stmt *st = NULL;
	int rc = ks_prep(s, sql, &st, why), src = SQLITE_DONE;

	while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW)
		rc = fn(s, st, why);
	if (rc == 0 && src != SQLITE_DONE)
		rc = ks_err(s->db, src, why);
	sqlite3_finalize(st);
	return rc;
}

static int backfill_block_row(struct qkd_store *s, sqlite3_stmt *st, const char **why)
{
	return backfill_block(s, (uint64_t)sqlite3_column_int64(st, 0),
			      (uint64_t)sqlite3_column_int64(st, 1), why);
}

int ks_sum_backfill(struct qkd_store *s, const char **why)
{
	int rc = each_row(s, "SELECT id, length(bits) FROM qbits ORDER BY id",
			  backfill_block_row, why);

	if (rc == 0)
		rc = each_row(s, "SELECT b.seq, k.key_id, length(b.bits) FROM kme_bits b"
			      " JOIN kme_key k ON k.seq = b.seq ORDER BY b.seq", backfill_key, why);
	return rc;
}
