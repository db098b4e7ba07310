/* config_path.c - paths and addresses of the node configuration: relative
 * paths resolved against the config file's directory, the files they name
 * checked at load time so that a node fails at startup with the file and the
 * config line rather than in the middle of its first round; addresses parsed
 * by qkd/netaddr.h (docs/config.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "qkd/error.h"
#include "config_int.h"

/* Longest path a unix socket address holds (sun_path, NUL included). */
#define CFG_SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

/* "no such file" for the common case, the C library's text otherwise. */
static const char *errno_text(int e, char *buf, size_t n)
{
	if (e == ENOENT)
		return "no such file";
	return strerror_r(e, buf, n);
}

/* The value of s as a path resolved against c->dir into out. Empty values
 * are refused unless empty_ok (then out is ""). */
static int resolve(struct cfg_ctx *c, const config_setting_t *s, const char *key,
		   bool empty_ok, char out[QKD_NODE_PATH_MAX])
{
	const char *v = NULL;
	int n;

	if (cfg_get_string(c, s, key, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	if (v[0] == '\0') {
		out[0] = '\0';
		return empty_ok ? QKD_OK : cfg_failk(c, s, key, "must not be empty");
	}
	if (v[0] == '/')
		n = snprintf(out, QKD_NODE_PATH_MAX, "%s", v);
	else
		n = snprintf(out, QKD_NODE_PATH_MAX, "%s/%s", c->dir, v);
	if (n < 0 || n >= QKD_NODE_PATH_MAX)
		return cfg_failk(c, s, key, "path longer than %d bytes once resolved",
				 QKD_NODE_PATH_MAX - 1);
	return QKD_OK;
}

/* The directory holding path must exist; path itself must not be one. */
static int check_dir_of(struct cfg_ctx *c, const config_setting_t *s, const char *key,
			const char *path)
{
	char dir[QKD_NODE_PATH_MAX], buf[128];
	const char *slash = strrchr(path, '/');
	struct stat st;
	size_t len = slash == NULL || slash == path ? 1 : (size_t)(slash - path);

	memcpy(dir, slash == NULL ? "." : path, len);
	dir[len] = '\0';
	if (stat(dir, &st) != 0)
		return cfg_failk(c, s, key, "%s: directory %s: %s", path, dir,
				 errno_text(errno, buf, sizeof buf));
	if (!S_ISDIR(st.st_mode))
		return cfg_failk(c, s, key, "%s: %s is not a directory", path, dir);
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return cfg_failk(c, s, key, "%s: is a directory", path);
	return QKD_OK;
}

/* path must be a regular file of at least min_bytes that the node can read. */
static int check_file(struct cfg_ctx *c, const config_setting_t *s, const char *key,
		      const char *path, long long min_bytes)
{
	char buf[128];
	struct stat st;
	int fd, rc = QKD_OK;

	if (stat(path, &st) != 0) {
		rc = cfg_failk(c, s, key, "%s: %s", path, errno_text(errno, buf, sizeof buf));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = cfg_failk(c, s, key, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size < min_bytes) {
		if (min_bytes == 1)
			rc = cfg_failk(c, s, key, "%s: is empty", path);
		else
			rc = cfg_failk(c, s, key, "%s: holds %lld bytes, at least %lld are needed",
				       path, (long long)st.st_size, min_bytes);
		goto out;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = cfg_failk(c, s, key, "%s: cannot be read: %s", path,
			       errno_text(errno, buf, sizeof buf));
		goto out;
	}
	close(fd);
out:
	return rc;
}

int cfg_set_file_min(struct cfg_ctx *c, const config_setting_t *s,
		     const struct cfg_field *f, void *obj, size_t min_bytes)
{
	char *path = (char *)obj + f->off;

	if (resolve(c, s, f->key, false, path) != QKD_OK)
		return QKD_ERR_INVAL;
	return check_file(c, s, f->key, path, (long long)min_bytes);
}

int cfg_set_auth_key(struct cfg_ctx *c, const config_setting_t *s,
		     const struct cfg_field *f, void *obj)
{
	return cfg_set_file_min(c, s, f, obj, CFG_AUTH_KEY_MIN_BYTES);
}

/* The contents are the TLS library's to judge when the server starts. */
int cfg_set_pem(struct cfg_ctx *c, const config_setting_t *s,
		const struct cfg_field *f, void *obj)
{
	return cfg_set_file_min(c, s, f, obj, 1);
}

int cfg_set_store(struct cfg_ctx *c, const config_setting_t *s,
		  const struct cfg_field *f, void *obj)
{
	char *path = (char *)obj + f->off;

	if (resolve(c, s, f->key, false, path) != QKD_OK)
		return QKD_ERR_INVAL;
	return check_dir_of(c, s, f->key, path);
}

int cfg_set_status(struct cfg_ctx *c, const config_setting_t *s,
		   const struct cfg_field *f, void *obj)
{
	char *path = (char *)obj + f->off;

	if (resolve(c, s, f->key, false, path) != QKD_OK)
		return QKD_ERR_INVAL;
	if (strlen(path) >= CFG_SUN_PATH_MAX)
		return cfg_failk(c, s, f->key, "%s: longer than the %zu bytes a unix socket "
				 "path may have", path, CFG_SUN_PATH_MAX - 1);
	return check_dir_of(c, s, f->key, path);
}

int cfg_set_log_file(struct cfg_ctx *c, const config_setting_t *s,
		     const struct cfg_field *f, void *obj)
{
	char *path = (char *)obj + f->off;

	if (resolve(c, s, f->key, true, path) != QKD_OK)
		return QKD_ERR_INVAL;
	return path[0] == '\0' ? QKD_OK : check_dir_of(c, s, f->key, path);
}

/* The address syntax is qkd/netaddr.h's, the same as `qkd eve`'s: the
 * message says which part is wrong, with the value as written. */
int cfg_set_addr(struct cfg_ctx *c, const config_setting_t *s,
		 const struct cfg_field *f, void *obj)
{
	struct qkd_node_addr *a = (struct qkd_node_addr *)((char *)obj + f->off);
	const char *v = NULL, *why = NULL;

	if (cfg_get_string(c, s, f->key, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	if (qkd_netaddr_parse(v, 0, &a->sa, &why) != QKD_OK)
		return cfg_failk(c, s, f->key, "'%s' is not HOST:PORT: %s", v, why);
	qkd_netaddr_str(&a->sa, a->text);
	return QKD_OK;
}
