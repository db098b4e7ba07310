/* link_store.c - a link's key store as the daemon holds it: opened with a
 * lock (one node per store), refused when it has lost its past, and
 * probed after a disk fault (docs/node.md, "Stores with a past" and "Disk
 * faults"). The store itself is lib/store (qkd/keystore.h). */
#include "node_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/sysutil.h"

int node_store_open(struct qkd_store **out, const char *path, bool must_exist, const char **why)
{
	int rc = qkd_store_open_node(out, path, must_exist ? QKD_STORE_MUST_EXIST : 0, why);
	struct stat sb;

	/* The store's own reason, with what it means for a link with a past. */
	if (rc != QKD_OK && must_exist && (stat(path, &sb) != 0 || sb.st_size == 0))
		*why = "the key store is missing or empty, but its authentication state "
		       "(STORE.auth) shows committed blocks: the store was lost or truncated. "
		       "Put the store back, or start the link over (docs/node.md, \"Stores "
		       "with a past\")";
	return rc;
}

struct last_final {
	struct qkd_store_block b;
};

static int find_last(const struct qkd_store_block *b, void *ctx)
{
	struct last_final *l = ctx;

	/* Committed blocks; a quarantined one was committed too unless it is a
	 * tombstone (no bits) for an id the peer reported. */
	bool committed = b->state == QKD_STORE_FINAL || b->state == QKD_STORE_USED ||
			 (b->state == QKD_STORE_QUARANTINED && b->nbits > 0);

	if (committed && b->id >= l->b.id)
		l->b = *b;
	return 0;
}

int node_store_last_final(struct qkd_store *st, struct qkd_store_block *out, const char **why)
{
	struct last_final l;
	int rc;

	memset(&l, 0, sizeof l);
	rc = qkd_store_list(st, find_last, &l, NULL, why);
	*out = l.b;
	return rc;
}

/* The errno of a failed write, as the node names it. */
static int disk_errno(int err)
{
	if (err == ENOSPC || err == EDQUOT)
		return QKD_ERR_NOSPACE;
	if (err == EROFS || err == EPERM || err == EACCES)
		return QKD_ERR_READONLY;
	return QKD_ERR_IO;
}

/* Room for a transaction's journal: what a probe writes beside the store. */
#define PROBE_BYTES ((size_t)256 << 10)

int node_disk_probe(const char *store_path)
{
	static const uint8_t zero[4096];
	char probe[QKD_NODE_PATH_MAX + 16];
	int fd, rc = QKD_OK;

	/* access(2), never open+close: closing any descriptor of the store
	 * file would drop the POSIX locks SQLite holds on it in this process.
	 * An immutable file is EPERM even for root, a read-only mount EROFS. */
	if (access(store_path, W_OK) != 0)
		return disk_errno(errno);
	snprintf(probe, sizeof probe, "%s.probe", store_path);
	fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return disk_errno(errno);
	for (size_t n = 0; rc == QKD_OK && n < PROBE_BYTES; n += sizeof zero)
		if (qkd_write_all(fd, zero, sizeof zero) != QKD_OK)
			rc = disk_errno(errno);
	if (rc == QKD_OK && fsync(fd) != 0)
		rc = disk_errno(errno);
	close(fd);
	(void)unlink(probe);
	return rc;
}
