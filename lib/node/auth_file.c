/* auth_file.c - a link's Wegman-Carter state on disk (docs/node.md).
 *
 * One-time pads must never be used twice, also across kill -9. So the file
 * always claims more than was used: before a frame with seq s is tagged or
 * checked, the state is saved with every seq below s + NODE_AUTH_LEASE
 * marked used (qkd_wc_export's lease). A restarted node loads that image and
 * skips what it may have used; the SYNC exchange tells the peer.
 *
 * Distilled key refills the pool in two steps, so that both ends append the
 * same bits in the same order whatever crashes: a round's authentication
 * bits are saved as "tentative" before its block can become final, and
 * moved into the pool once it is (node_auth_apply), or dropped if recovery
 * discards the block (node_auth_resolve).
 *
 * File: "QKDAUTH1", u64 lease_send, u64 lease_recv, u64 replenished_through,
 * u64 tentative_round, varint n + n tentative bytes, varint m + m bytes of
 * the qkd_wc_export image, 32-byte BLAKE2b of everything before. Mode 0600.
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

static const char auth_magic[8] = "QKDAUTH1";
#define AUTH_FILE_MAX ((size_t)64 << 20)

static int fsync_dir(const char *path)
{
	char tmp[sizeof ((struct node_auth *)0)->path];
	int fd, rc;

	snprintf(tmp, sizeof tmp, "%s", path);
	fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return QKD_ERR_IO;
	rc = fsync(fd) == 0 ? QKD_OK : QKD_ERR_IO;
	close(fd);
	return rc;
}

static void encode(const struct node_auth *a, struct qkd_wbuf *w)
{
	struct qkd_wbuf img;
	uint8_t sum[32];

	qkd_wbuf_init_secret(&img);
	(void)qkd_wc_export(a->wc, a->lease_send, a->lease_recv, &img);
	qkd_put_bytes(w, auth_magic, sizeof auth_magic);
	qkd_put_u64(w, a->lease_send);
	qkd_put_u64(w, a->lease_recv);
	qkd_put_u64(w, a->replenished_through);
	qkd_put_u64(w, a->tentative_round);
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

int node_auth_save(struct node_auth *a)
{
	char tmp[sizeof a->path + 8];
	struct qkd_wbuf w;
	int fd = -1, rc;

	qkd_wbuf_init_secret(&w);
	encode(a, &w);
	rc = w.err;
	snprintf(tmp, sizeof tmp, "%s.tmp", a->path);
	if (rc == QKD_OK) {
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		rc = fd < 0 ? QKD_ERR_IO : qkd_write_all(fd, w.p, w.len);
	}
	if (rc == QKD_OK && fsync(fd) != 0)
		rc = QKD_ERR_IO;
	if (fd >= 0 && close(fd) != 0 && rc == QKD_OK)
		rc = QKD_ERR_IO;
	if (rc == QKD_OK && rename(tmp, a->path) != 0)
		rc = QKD_ERR_IO;
	if (rc == QKD_OK)
		rc = fsync_dir(a->path);
	a->save_failed = rc != QKD_OK;
	qkd_wbuf_cleanup(&w);
	return rc;
}

static int decode(struct node_auth *a, const uint8_t *buf, size_t len)
{
	struct qkd_rbuf r;
	const uint8_t *m, *t, *img;
	uint8_t sum[32];
	uint64_t tl, il;
	struct qkd_rbuf ir;

	if (len < sizeof auth_magic + 32)
		return QKD_ERR_PROTO;
	crypto_generichash(sum, sizeof sum, buf, len - 32, NULL, 0);
	if (sodium_memcmp(sum, buf + len - 32, 32) != 0)
		return QKD_ERR_PROTO;
	qkd_rbuf_init(&r, buf, len - 32);
	m = qkd_get_bytes(&r, sizeof auth_magic);
	if (m == NULL || memcmp(m, auth_magic, sizeof auth_magic) != 0)
		return QKD_ERR_PROTO;
	a->lease_send = qkd_get_u64(&r);
	a->lease_recv = qkd_get_u64(&r);
	a->replenished_through = qkd_get_u64(&r);
	a->tentative_round = qkd_get_u64(&r);
	tl = qkd_get_varint(&r);
	t = tl <= qkd_rbuf_left(&r) ? qkd_get_bytes(&r, (size_t)tl) : NULL;
	il = qkd_get_varint(&r);
	img = il <= qkd_rbuf_left(&r) ? qkd_get_bytes(&r, (size_t)il) : NULL;
	if (t == NULL || img == NULL || !qkd_rbuf_done(&r))
		return QKD_ERR_PROTO;
	if (tl > 0 && (a->tentative = malloc((size_t)tl)) == NULL)
		return QKD_ERR_NOMEM;
	if (tl > 0)
		memcpy(a->tentative, t, (size_t)tl);
	a->tentative_len = (size_t)tl;
	qkd_rbuf_init(&ir, img, (size_t)il);
	return qkd_wc_import(&a->wc, &ir);
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

static int create_from_bootstrap(struct node_auth *a, const struct qkd_link_config *cfg,
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
	rc = read_file(cfg->auth_key, &key, &len, QKD_WC_MIN_BOOTSTRAP, AUTH_FILE_MAX);
	if (rc != QKD_OK) {
		*why = "cannot read the bootstrap authentication key";
		return rc;
	}
	rc = qkd_wc_new(&a->wc, key, len, cfg->role == QKD_ROLE_ALICE);
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

int node_auth_open(struct node_auth *a, const struct qkd_link_config *cfg,
		   struct qkd_store *store, const char **why)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	memset(a, 0, sizeof *a);
	snprintf(a->path, sizeof a->path, "%s.auth", cfg->store);
	if (access(a->path, F_OK) != 0 && errno == ENOENT)
		return create_from_bootstrap(a, cfg, store, why);
	rc = read_file(a->path, &buf, &len, 0, AUTH_FILE_MAX);
	if (rc == QKD_OK)
		rc = decode(a, buf, len);
	if (buf != NULL)
		qkd_free_secret(buf, len);
	if (rc != QKD_OK)
		*why = "authentication state file unreadable or corrupt";
	return rc;
}

void node_auth_close(struct node_auth *a)
{
	qkd_wc_free(a->wc);
	qkd_free_secret(a->tentative, a->tentative_len);
	memset(a, 0, sizeof *a);
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

/* The channel's authenticator: extend the lease on disk before a seq
 * beyond it is used, then Wegman-Carter. */
static int lease_tag(void *ctx, uint32_t seq, const uint8_t *msg, size_t len, uint8_t *tag)
{
	struct node_auth *a = ctx;
	int rc;

	if (seq >= a->lease_send) {
		a->lease_send = (uint64_t)seq + NODE_AUTH_LEASE;
		if ((rc = node_auth_save(a)) != QKD_OK)
			return rc;
	}
	return qkd_wc_tag(a->wc, seq, msg, len, tag);
}

static int lease_verify(void *ctx, uint32_t seq, const uint8_t *msg, size_t len,
			const uint8_t *tag)
{
	struct node_auth *a = ctx;
	int rc;

	if (seq >= a->lease_recv) {
		a->lease_recv = (uint64_t)seq + NODE_AUTH_LEASE;
		if ((rc = node_auth_save(a)) != QKD_OK)
			return rc;
	}
	return qkd_wc_verify(a->wc, seq, msg, len, tag);
}

const struct qkd_auth_ops node_auth_ops = {
	.name = "wegman-carter",
	.tag_len = QKD_WC_TAG_LEN,
	.tag = lease_tag,
	.verify = lease_verify,
};
