/* auth_file.c - a link's authentication state on disk (docs/node.md,
 * "Authentication and its key").
 *
 * One-time pads must never be used twice, also across kill -9. So the file
 * always claims more than was used on the sending side: before an AUTH
 * frame with index s is tagged, the state is saved with every index below
 * s + NODE_AUTH_LEASE marked used (qkd_wc_export's lease, never beyond the
 * pads held). A restarted node loads that image and skips what it may
 * have used; the handshake tells the peer (link_handshake.c). The
 * receiving side needs no lease: a check destroys its pad in memory, and
 * a receiver that forgets one after a crash only lags behind its peer,
 * which the handshake makes it skip; a tag checked again under a new
 * session id is a fresh forgery attempt, bounded as any other.
 *
 * Distilled key refills the pool in two steps, so that both ends append the
 * same bits in the same order whatever crashes: a round's authentication
 * bits are saved as "tentative" before its block can become final, and
 * moved into the pool once it is (node_auth_apply), or dropped if recovery
 * discards the block (node_auth_resolve). The last block so applied is the
 * link's history: node_auth_check_store refuses a store that lacks it.
 *
 * File: "QKDAUTH2", u64 lease_send, u64 replenished_through, u64
 * tentative_round, the 32-byte gate key, varint n + n tentative bytes,
 * varint m + m bytes of the qkd_wc_export image, 32-byte BLAKE2b of
 * everything before. Mode 0600.
 */
#include "node_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/secret.h"
#include "qkd/sysutil.h"
#include "qkd/wire.h"

static const char auth_magic[8] = "QKDAUTH2";
static const char auth_magic_v1[8] = "QKDAUTH1";
#define AUTH_FILE_MAX ((size_t)64 << 20)

/* A write that failed: the disk fault named, else a plain I/O error. */
static int disk_error(int err)
{
	if (err == ENOSPC || err == EDQUOT)
		return QKD_ERR_NOSPACE;
	if (err == EROFS || err == EPERM || err == EACCES)
		return QKD_ERR_READONLY;
	return QKD_ERR_IO;
}

static int fsync_dir(const char *path)
{
	char tmp[sizeof ((struct node_auth *)0)->path];
	int fd, rc;

	snprintf(tmp, sizeof tmp, "%s", path);
	fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return disk_error(errno);
	rc = fsync(fd) == 0 ? QKD_OK : disk_error(errno);
	close(fd);
	return rc;
}

void node_auth_encode(const struct node_auth *a, struct qkd_wbuf *w)
{
	struct qkd_wbuf img;
	uint8_t sum[32];

	qkd_wbuf_init_secret(&img);
	(void)qkd_wc_export(a->wc, a->lease_send, 0, &img);
	qkd_put_bytes(w, auth_magic, sizeof auth_magic);
	qkd_put_u64(w, a->lease_send);
	qkd_put_u64(w, a->replenished_through);
	qkd_put_u64(w, a->tentative_round);
	qkd_put_bytes(w, a->gate, sizeof a->gate);
	qkd_put_varint(w, a->tentative_len);
	qkd_put_bytes(w, a->tentative, a->tentative_len);
	qkd_put_varint(w, img.len);
	qkd_put_bytes(w, img.p, img.len);
	if (img.err)
		w->err = img.err;
	if (w->err == 0) {
		crypto_generichash(sum, sizeof sum, w->p, w->len, NULL, 0);
		qkd_put_bytes(w, sum, sizeof sum);
	}
	qkd_wbuf_cleanup(&img);
}

/* Write w to path's temporary file and fsync it. */
static int write_tmp(const char *tmp, const struct qkd_wbuf *w)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), rc;

	if (fd < 0)
		return disk_error(errno);
	rc = qkd_write_all(fd, w->p, w->len);
	if (rc != QKD_OK)
		rc = disk_error(errno);
	if (rc == QKD_OK && fsync(fd) != 0)
		rc = disk_error(errno);
	if (close(fd) != 0 && rc == QKD_OK)
		rc = disk_error(errno);
	if (rc != QKD_OK)
		(void)unlink(tmp);	/* give the space back on a full disk */
	return rc;
}

int node_auth_save(struct node_auth *a)
{
	char tmp[sizeof a->path + 8];
	struct qkd_wbuf w;
	int rc;

	qkd_wbuf_init_secret(&w);
	node_auth_encode(a, &w);
	rc = w.err;
	snprintf(tmp, sizeof tmp, "%s.tmp", a->path);
	if (rc == QKD_OK)
		rc = write_tmp(tmp, &w);
	if (rc == QKD_OK && rename(tmp, a->path) != 0)
		rc = disk_error(errno);
	if (rc == QKD_OK)
		rc = fsync_dir(a->path);
	a->save_err = rc;
	qkd_wbuf_cleanup(&w);
	return rc;
}

/* The fields after the checksum's check; a->wc and a->tentative are set
 * only when the whole file is good. */
static int decode_fields(struct node_auth *a, const uint8_t *buf, size_t len)
{
	struct qkd_rbuf r, ir;
	const uint8_t *m, *t, *img, *g;
	uint64_t tl, il;
	uint8_t *tent = NULL;
	struct qkd_wc *wc = NULL;
	int rc = QKD_ERR_PROTO;

	qkd_rbuf_init(&r, buf, len);
	m = qkd_get_bytes(&r, sizeof auth_magic);
	if (m == NULL || memcmp(m, auth_magic, sizeof auth_magic) != 0)
		return QKD_ERR_PROTO;
	a->lease_send = qkd_get_u64(&r);
	a->replenished_through = qkd_get_u64(&r);
	a->tentative_round = qkd_get_u64(&r);
	g = qkd_get_bytes(&r, sizeof a->gate);
	tl = qkd_get_varint(&r);
	t = tl <= qkd_rbuf_left(&r) ? qkd_get_bytes(&r, (size_t)tl) : NULL;
	il = qkd_get_varint(&r);
	img = il <= qkd_rbuf_left(&r) ? qkd_get_bytes(&r, (size_t)il) : NULL;
	if (g == NULL || t == NULL || img == NULL || !qkd_rbuf_done(&r))
		goto out;
	rc = QKD_ERR_NOMEM;
	if (tl > 0 && (tent = malloc((size_t)tl)) == NULL)
		goto out;
	if (tl > 0)
		memcpy(tent, t, (size_t)tl);
	qkd_rbuf_init(&ir, img, (size_t)il);
	rc = qkd_wc_import(&wc, &ir);
	if (rc != QKD_OK)
		goto out;
	memcpy(a->gate, g, sizeof a->gate);
	a->tentative = tent;
	a->tentative_len = (size_t)tl;
	a->wc = wc;
	tent = NULL;
out:
	qkd_free_secret(tent, (size_t)tl);
	return rc;
}

int node_auth_decode(struct node_auth *a, const uint8_t *buf, size_t len, const char **why)
{
	uint8_t sum[32];
	int rc;

	*why = "authentication state file unreadable or corrupt";
	if (len < sizeof auth_magic + 32)
		return QKD_ERR_PROTO;
	if (memcmp(buf, auth_magic_v1, sizeof auth_magic_v1) == 0) {
		*why = "authentication state file of an older qkd (format 1, before the "
		       "authenticated handshake): it cannot be carried over. Start the link over "
		       "with a new bootstrap key at both ends (docs/node.md, \"Starting over\")";
		return QKD_ERR_PROTO;
	}
	crypto_generichash(sum, sizeof sum, buf, len - 32, NULL, 0);
	if (sodium_memcmp(sum, buf + len - 32, 32) != 0)
		return QKD_ERR_PROTO;
	rc = decode_fields(a, buf, len - 32);
	if (rc == QKD_OK)
		*why = NULL;
	return rc;
}

static int read_file(const char *path, uint8_t **buf, size_t *len, size_t min, size_t max)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = QKD_ERR_IO;

	*buf = NULL;
	if (fd < 0)
		return QKD_ERR_IO;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (size_t)sb.st_size < min ||
	    (size_t)sb.st_size > max)
		goto out;
	*len = (size_t)sb.st_size;
	*buf = malloc(*len ? *len : 1);
	if (*buf == NULL) {
		rc = QKD_ERR_NOMEM;
		goto out;
	}
	rc = qkd_read_all(fd, *buf, *len);
out:
	close(fd);
	if (rc != QKD_OK && *buf != NULL) {
		qkd_free_secret(*buf, *len);
		*buf = NULL;
	}
	return rc;
}

int node_auth_load(struct node_auth *a, const struct qkd_link_config *cfg, bool *found,
		   const char **why)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	memset(a, 0, sizeof *a);
	snprintf(a->path, sizeof a->path, "%s.auth", cfg->store);
	*found = !(access(a->path, F_OK) != 0 && errno == ENOENT);
	if (!*found)
		return QKD_OK;
	rc = read_file(a->path, &buf, &len, 0, AUTH_FILE_MAX);
	*why = "authentication state file unreadable";
	if (rc == QKD_OK)
		rc = node_auth_decode(a, buf, len, why);
	if (buf != NULL)
		qkd_free_secret(buf, len);
	if (rc == QKD_OK) {
		*why = NULL;
		/* What the file claims used is what this run may use first. */
		a->lease_send = qkd_wc_next_send_index(a->wc);
	}
	return rc;
}

int node_auth_create(struct node_auth *a, const struct qkd_link_config *cfg,
		     struct qkd_store *store, const char **why)
{
	struct qkd_store_stats ss;
	uint8_t *key = NULL;
	size_t len = 0;
	int rc;

	rc = qkd_store_stats(store, &ss, NULL);
	if (rc == QKD_OK && ss.count > 0) {
		*why = "authentication state file missing but the store holds blocks: "
		       "refusing to reuse the bootstrap key";
		return QKD_ERR_INVAL;
	}
	rc = read_file(cfg->auth_key, &key, &len, NODE_GATE_KEY_LEN + QKD_WC_MIN_BOOTSTRAP,
		       AUTH_FILE_MAX);
	if (rc != QKD_OK) {
		*why = "cannot read the bootstrap authentication key";
		return rc;
	}
	/* The gate key first, the Wegman-Carter bootstrap after it. */
	memcpy(a->gate, key, NODE_GATE_KEY_LEN);
	rc = qkd_wc_new(&a->wc, key + NODE_GATE_KEY_LEN, len - NODE_GATE_KEY_LEN,
			cfg->role == QKD_ROLE_ALICE);
	qkd_free_secret(key, len);
	if (rc != QKD_OK) {
		*why = "bad bootstrap authentication key";
		return rc;
	}
	rc = node_auth_save(a);
	if (rc != QKD_OK)
		*why = "cannot write the authentication state file";
	return rc;
}

int node_auth_check_store(const struct node_auth *a, struct qkd_store *store, const char **why)
{
	struct qkd_store_block last = {0};
	uint64_t newest = a->tentative_round > a->replenished_through ? a->tentative_round
								       : a->replenished_through;
	int rc = node_store_last_final(store, &last, why);

	if (rc != QKD_OK)
		return rc;
	if (last.id < a->replenished_through) {
		*why = "the key store lacks blocks its authentication state shows committed: "
		       "it was emptied, truncated or replaced by an older copy. Put back the "
		       "store that belongs with STORE.auth, or start the link over "
		       "(docs/node.md, \"Stores with a past\")";
		return QKD_ERR_INVAL;
	}
	if (last.id > newest) {
		*why = "the authentication state is older than the key store (restored from "
		       "a backup?): its pads may have been used already. Start the link over "
		       "(docs/node.md, \"Stores with a past\")";
		return QKD_ERR_INVAL;
	}
	return QKD_OK;
}

void node_auth_close(struct node_auth *a)
{
	qkd_wc_free(a->wc);
	qkd_free_secret(a->tentative, a->tentative_len);
	qkd_wipe(a, sizeof *a);
}

int node_auth_set_tentative(struct node_auth *a, uint64_t round, const uint8_t *bits, size_t len)
{
	uint8_t *t = len ? malloc(len) : NULL;

	if (len > 0 && t == NULL)
		return QKD_ERR_NOMEM;
	if (len > 0)
		memcpy(t, bits, len);
	qkd_free_secret(a->tentative, a->tentative_len);
	a->tentative = t;
	a->tentative_len = len;
	a->tentative_round = round;
	return node_auth_save(a);
}

int node_auth_apply(struct node_auth *a, uint64_t round)
{
	int rc = QKD_OK;

	if (a->tentative_round != round || round == 0)
		return QKD_OK;	/* nothing held for it, or already applied */
	if (a->tentative_len > 0)
		rc = qkd_wc_replenish(a->wc, a->tentative, a->tentative_len);
	if (rc != QKD_OK)
		return rc;
	qkd_free_secret(a->tentative, a->tentative_len);
	a->tentative = NULL;
	a->tentative_len = 0;
	a->tentative_round = 0;
	a->replenished_through = round;
	return node_auth_save(a);
}

int node_auth_resolve(struct node_auth *a, struct qkd_store *store)
{
	struct qkd_store_block b;
	bool found = false;
	int rc;

	if (a->tentative_round == 0)
		return QKD_OK;
	rc = qkd_store_lookup(store, a->tentative_round, &b, &found, NULL);
	if (rc != QKD_OK)
		return rc;
	if (found && b.state != QKD_STORE_PENDING)
		return node_auth_apply(a, a->tentative_round);
	return node_auth_set_tentative(a, 0, NULL, 0);
}

/* The channel's authenticator: Wegman-Carter, with the sending side's
 * lease extended on disk before an index beyond it is used. */
static void lease_absorb(void *ctx, bool sent, const uint8_t *p, size_t len)
{
	struct node_auth *a = ctx;

	qkd_wc_absorb(a->wc, sent, p, len);
}

static int lease_tag(void *ctx, uint32_t index, uint8_t *tag)
{
	struct node_auth *a = ctx;
	int rc;

	if (index >= a->lease_send) {
		uint64_t end = qkd_wc_next_send_index(a->wc) + qkd_wc_send_pads_left(a->wc);

		a->lease_send = (uint64_t)index + NODE_AUTH_LEASE;
		if (a->lease_send > end)
			a->lease_send = end;	/* never claim pads not held */
		if ((rc = node_auth_save(a)) != QKD_OK)
			return rc;
	}
	return qkd_wc_seal(a->wc, index, tag);
}

static int lease_verify(void *ctx, uint32_t index, const uint8_t *tag)
{
	struct node_auth *a = ctx;

	return qkd_wc_check(a->wc, index, tag);
}

const struct qkd_auth_ops node_auth_ops = {
	.name = "wegman-carter",
	.tag_len = QKD_WC_TAG_LEN,
	.absorb = lease_absorb,
	.tag = lease_tag,
	.verify = lease_verify,
};
