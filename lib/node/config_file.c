/* config_file.c - reading a configuration file for the table-driven
 * parsers (config_int.h): the text read whole and bounded, scanned for
 * what libconfig 1.5 lets through (config_scan.c), parsed by libconfig,
 * and the file's directory made the base of relative paths. Shared by
 * `qkd node` (config.c) and `qkd vpn` (lib/vpn/vpn_config.c). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "config_int.h"

/* A configuration is a page of text; anything far larger is a mistake. */
#define CFG_FILE_MAX (1u << 20)

/* The whole file as a NUL-terminated string (*text owned by the caller). */
static int read_text(struct cfg_ctx *c, char **text)
{
	FILE *f = fopen(c->path, "re");
	char *buf = NULL;
	size_t n = 0;
	int rc = QKD_OK;

	if (f == NULL) {
		if (errno == ENOENT)
			cfg_fail(c, NULL, "no such file");
		else
			cfg_fail(c, NULL, "cannot be opened: %s", strerror(errno));
		rc = QKD_ERR_IO;
		goto out;
	}
	buf = malloc(CFG_FILE_MAX + 2);
	if (buf == NULL) {
		cfg_fail(c, NULL, "out of memory");
		rc = QKD_ERR_NOMEM;
		goto out;
	}
	n = fread(buf, 1, CFG_FILE_MAX + 1, f);
	if (ferror(f)) {
		cfg_fail(c, NULL, "cannot be read: %s", strerror(errno));
		rc = QKD_ERR_IO;
	} else if (n > CFG_FILE_MAX) {
		rc = cfg_fail(c, NULL, "larger than %u bytes: not a configuration file",
			      CFG_FILE_MAX);
	} else if (memchr(buf, '\0', n) != NULL) {
		rc = cfg_fail(c, NULL, "contains a NUL byte: not a configuration file");
	}
	buf[n] = '\0';
out:
	if (f != NULL)
		fclose(f);
	if (rc != QKD_OK) {
		free(buf);
		buf = NULL;
	}
	*text = buf;
	return rc;
}

/* c->dir: the absolute directory of c->path (symbolic links in it
 * resolved, the file's own name not), base of relative paths. */
static int config_dir(struct cfg_ctx *c)
{
	const char *slash = strrchr(c->path, '/');
	char dir[QKD_NODE_PATH_MAX], *real = NULL;
	size_t len = slash == NULL ? 0 : slash == c->path ? 1 : (size_t)(slash - c->path);
	int rc = QKD_OK;

	if (len >= sizeof dir) {
		rc = cfg_fail(c, NULL, "path too long");
		goto out;
	}
	memcpy(dir, len == 0 ? "." : c->path, len == 0 ? 1 : len);
	dir[len == 0 ? 1 : len] = '\0';
	real = realpath(dir, NULL);
	if (real == NULL) {
		cfg_fail(c, NULL, "directory %s: %s", dir, strerror(errno));
		rc = QKD_ERR_IO;
		goto out;
	}
	/* Leave room for "/" and a file name. */
	if (strlen(real) + 2 > sizeof c->dir) {
		rc = cfg_fail(c, NULL, "directory %s: path too long", real);
		goto out;
	}
	strcpy(c->dir, strcmp(real, "/") == 0 ? "" : real);
out:
	free(real);
	return rc;
}

/* libconfig's parse, with the lexical checks it lacks (config_scan.c). */
static int parse_text(struct cfg_ctx *c, const char *text, config_t *lc)
{
	unsigned include_line, int_line;

	cfg_scan(text, &include_line, &int_line);
	if (include_line != 0)
		return cfg_fail_at(c, include_line, "@include is not supported "
				   "(one file per daemon)");
	if (config_read_string(lc, text) != CONFIG_TRUE)
		return cfg_fail_at(c, (unsigned)config_error_line(lc), "%s",
				   config_error_text(lc));
	if (int_line != 0)
		return cfg_fail_at(c, int_line, "integer does not fit 32 bits: "
				   "write it with an L suffix (10000000000L) or as a real (1e10)");
	return QKD_OK;
}

int cfg_file_read(struct cfg_ctx *c, config_t *lc)
{
	char *text = NULL;
	int rc = read_text(c, &text);

	if (rc == QKD_OK)
		rc = config_dir(c);
	if (rc == QKD_OK)
		rc = parse_text(c, text, lc);
	free(text);
	return rc;
}

int cfg_load(const char *path, char *err, size_t errlen, void *obj,
	     int (*root)(struct cfg_ctx *c, const config_setting_t *root, void *obj))
{
	struct cfg_ctx c;
	config_t lc;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (path == NULL || obj == NULL)
		return QKD_ERR_INVAL;
	memset(&c, 0, sizeof c);
	c.path = path;
	c.err = err;
	c.errlen = errlen;
	config_init(&lc);
	rc = cfg_file_read(&c, &lc);
	if (rc == QKD_OK)
		rc = root(&c, config_root_setting(&lc), obj);
	config_destroy(&lc);
	return rc;
}
