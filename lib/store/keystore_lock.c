/* keystore_lock.c - the node daemon's exclusive lock on its store, and the
 * process's registry of open store files (docs/keystore.md, "The node's
 * handle").
 *
 * qkd_store_open_node takes flock(2) on the database file itself, so a
 * second qkd node on the same store fails at once with a clear reason. flock
 * and SQLite's fcntl locks are separate on Linux. But POSIX says that closing
 * any descriptor of a file drops every fcntl lock the process holds on it:
 * closing the lock's descriptor while another handle of this process (the
 * key manager's) is inside a transaction would silently unlock SQLite. So
 * the registry counts this process's handles per file (device and inode),
 * and a lock descriptor is closed only once no handle has the file open;
 * until then it is unlocked (flock LOCK_UN leaves fcntl locks alone) and
 * kept. SQLite does the same for its own descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keystore_int.h"
#include "qkd/error.h"

/* Lock descriptors kept open per file; more are closed at once (never
 * more than one node handle per file in a sane process). */
#define KEPT_MAX 8

struct open_file {
	dev_t dev;
	ino_t ino;
	unsigned handles;
	int kept[KEPT_MAX];
	size_t nkept;
	struct open_file *next;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct open_file *reg;

static struct open_file *find(dev_t dev, ino_t ino)
{
	for (struct open_file *f = reg; f != NULL; f = f->next)
		if (f->dev == dev && f->ino == ino)
			return f;
	return NULL;
}

static void unlink_file(struct open_file *f)
{
	for (struct open_file **p = &reg; *p != NULL; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
}

/* Close fd now, or keep it while handles of the file are open. Called
 * with reg_lock held. */
static void close_or_keep(struct open_file *f, int fd)
{
	if (f != NULL && f->handles > 0 && f->nkept < KEPT_MAX) {
		f->kept[f->nkept++] = fd;
		return;
	}
	close(fd);
}

int ks_lock_file(const char *path, bool nonempty, int *fd, const char **why)
{
	struct stat sb;
	int rc = 0;

	*fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0) {
		ks_why(why, errno == ENOENT ? "the key store is missing or empty"
		       : "cannot open the key store file");
		return QKD_ERR_IO;
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
		ks_why(why, errno == EWOULDBLOCK ? "the store is in use by another qkd node"
		       : "cannot lock the key store file");
		rc = QKD_ERR_IO;
	} else if (fstat(*fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		ks_why(why, "not a key store: not a regular file");
		rc = QKD_ERR_IO;
	} else if (nonempty && sb.st_size == 0) {
		ks_why(why, "the key store is missing or empty");
		rc = QKD_ERR_IO;
	}
	if (rc != 0) {
		ks_lock_close(*fd);
		*fd = -1;
	}
	return rc;
}

int ks_file_add(struct qkd_store *s, const char *path, const char **why)
{
	struct stat sb;
	struct open_file *f;
	int rc = 0;

	if ((s->lockfd >= 0 ? fstat(s->lockfd, &sb) : stat(path, &sb)) != 0) {
		ks_why(why, "cannot open the key store file");
		return QKD_ERR_IO;
	}
	s->dev = sb.st_dev;
	s->ino = sb.st_ino;
	pthread_mutex_lock(&reg_lock);
	f = find(sb.st_dev, sb.st_ino);
	if (f == NULL && (f = calloc(1, sizeof(*f))) != NULL) {
		f->dev = sb.st_dev;
		f->ino = sb.st_ino;
		f->next = reg;
		reg = f;
	}
	if (f != NULL)
		f->handles++;
	pthread_mutex_unlock(&reg_lock);
	if (f == NULL) {
		ks_why(why, "out of memory");
		rc = QKD_ERR_NOMEM;
	}
	return rc;
}

void ks_file_drop(struct qkd_store *s)
{
	struct open_file *f;

	if (s->lockfd >= 0)
		(void)flock(s->lockfd, LOCK_UN);
	pthread_mutex_lock(&reg_lock);
	f = find(s->dev, s->ino);
	if (f != NULL && f->handles > 0)
		f->handles--;
	if (s->lockfd >= 0)
		close_or_keep(f, s->lockfd);
	if (f != NULL && f->handles == 0) {
		for (size_t i = 0; i < f->nkept; i++)
			close(f->kept[i]);
		unlink_file(f);
		free(f);
	}
	pthread_mutex_unlock(&reg_lock);
	s->lockfd = -1;
}

void ks_lock_close(int fd)
{
	struct stat sb;

	if (fd < 0)
		return;
	(void)flock(fd, LOCK_UN);
	pthread_mutex_lock(&reg_lock);
	close_or_keep(fstat(fd, &sb) == 0 ? find(sb.st_dev, sb.st_ino) : NULL, fd);
	pthread_mutex_unlock(&reg_lock);
}
