/* config_int.h - internals of the `qkd node` configuration parser
 * (qkd/node_config.h, docs/config.md), whose table-driven machinery `qkd
 * vpn`'s parser (lib/vpn/vpn_config.c) shares. Not installed.
 *
 * The parser is table driven: each group of the file (node, one link, its
 * optical and protocol groups) is a table of struct cfg_field, one row per
 * key, each with a setter that type-checks the libconfig value, checks its
 * domain and stores it at an offset of the object being filled. Keys absent
 * from a table are errors; required keys missing are errors at the group's
 * line. Every error is "PATH:LINE: what" in the caller's buffer.
 */
#ifndef QKD_NODE_CONFIG_INT_H
#define QKD_NODE_CONFIG_INT_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/node_config.h"

#define N_OF(t) (sizeof(t) / sizeof((t)[0]))

/* Settings of one parse. */
struct cfg_ctx {
	const char *path;		/* the config file, as the caller named it */
	char dir[QKD_NODE_PATH_MAX];	/* its directory, absolute: base of relative paths */
	char scope[48];			/* key path of the group being read, e.g. "links[1]" */
	char *err;
	size_t errlen;
	/* Per link: the decoy_probs setting when the file gives one (NULL else). */
	const config_setting_t *decoy_probs;
};

struct cfg_field;
typedef int (*cfg_setter)(struct cfg_ctx *c, const config_setting_t *s,
			  const struct cfg_field *f, void *obj);

#define CFG_REQUIRED	0x01u	/* the key must be present */
#define CFG_RANGE	0x02u	/* numbers: check lo .. hi */
#define CFG_LO_OPEN	0x04u	/* lo excluded */
#define CFG_HI_OPEN	0x08u	/* hi excluded */

struct cfg_field {
	const char *key;
	cfg_setter set;
	size_t off;		/* offsetof the destination in obj */
	unsigned flags;		/* CFG_* */
	double lo, hi;		/* domain with CFG_RANGE (integers up to 2^53 exact) */
};

/* "PATH:LINE: MSG" (": LINE" left out when s is NULL or has no line) into
 * c->err; returns QKD_ERR_INVAL. */
__attribute__((format(printf, 3, 4)))
int cfg_fail(struct cfg_ctx *c, const config_setting_t *s, const char *fmt, ...);
/* Same with an explicit line (0: none). */
__attribute__((format(printf, 3, 4)))
int cfg_fail_at(struct cfg_ctx *c, unsigned line, const char *fmt, ...);
/* Same as cfg_fail, MSG prefixed with "SCOPE.KEY: " (or "KEY: " at the top level). */
__attribute__((format(printf, 4, 5)))
int cfg_failk(struct cfg_ctx *c, const config_setting_t *s, const char *key,
	      const char *fmt, ...);

/* Read group g with the n fields of table t into obj: g must be a group,
 * every member a key of t, every CFG_REQUIRED key present. Members are set
 * in file order. */
__attribute__((warn_unused_result))
int cfg_group(struct cfg_ctx *c, const config_setting_t *g,
	      const struct cfg_field *t, size_t n, void *obj);

/* Value readers: 0 or QKD_ERR_INVAL with the error written. */
__attribute__((warn_unused_result))
int cfg_get_string(struct cfg_ctx *c, const config_setting_t *s, const char *key,
		   const char **out);
__attribute__((warn_unused_result))
int cfg_get_real(struct cfg_ctx *c, const config_setting_t *s, const char *key,
		 double *out);
/* An array or list of exactly n numbers. */
__attribute__((warn_unused_result))
int cfg_get_reals(struct cfg_ctx *c, const config_setting_t *s, const char *key,
		  double *out, size_t n);

/* Setters (struct cfg_field.set) of the generic kinds. */
int cfg_set_real(struct cfg_ctx *c, const config_setting_t *s,
		 const struct cfg_field *f, void *obj);	/* double */
int cfg_set_u64(struct cfg_ctx *c, const config_setting_t *s,
		const struct cfg_field *f, void *obj);	/* uint64_t */
int cfg_set_size(struct cfg_ctx *c, const config_setting_t *s,
		 const struct cfg_field *f, void *obj);	/* size_t */
int cfg_set_uint(struct cfg_ctx *c, const config_setting_t *s,
		 const struct cfg_field *f, void *obj);	/* unsigned */
int cfg_set_u32(struct cfg_ctx *c, const config_setting_t *s,
		const struct cfg_field *f, void *obj);	/* uint32_t */
int cfg_set_name(struct cfg_ctx *c, const config_setting_t *s,
		 const struct cfg_field *f, void *obj);	/* char[QKD_NODE_NAME_MAX] */
int cfg_set_addr(struct cfg_ctx *c, const config_setting_t *s,
		 const struct cfg_field *f, void *obj);	/* struct qkd_node_addr */
int cfg_set_log_level(struct cfg_ctx *c, const config_setting_t *s,
		      const struct cfg_field *f, void *obj);	/* enum qkd_log_level by name */

/* Path setters: the value is resolved against c->dir into a
 * char[QKD_NODE_PATH_MAX], then the file it names is checked. */
int cfg_set_file_min(struct cfg_ctx *c, const config_setting_t *s,
		     const struct cfg_field *f, void *obj, size_t min_bytes);	/* regular, readable */
int cfg_set_auth_key(struct cfg_ctx *c, const config_setting_t *s,
		     const struct cfg_field *f, void *obj);	/* regular, readable, >= 4096 bytes */
int cfg_set_pem(struct cfg_ctx *c, const config_setting_t *s,
		const struct cfg_field *f, void *obj);	/* regular, readable, not empty */
int cfg_set_store(struct cfg_ctx *c, const config_setting_t *s,
		  const struct cfg_field *f, void *obj);	/* its directory exists */
int cfg_set_status(struct cfg_ctx *c, const config_setting_t *s,
		   const struct cfg_field *f, void *obj);	/* fits sun_path, directory exists */
int cfg_set_log_file(struct cfg_ctx *c, const config_setting_t *s,
		     const struct cfg_field *f, void *obj);	/* "" or: directory exists */

/* Size of the smallest bootstrap authentication key file accepted. */
#define CFG_AUTH_KEY_MIN_BYTES 4096

/* Read one element of the links list into l. */
__attribute__((warn_unused_result))
int cfg_link_read(struct cfg_ctx *c, const config_setting_t *g, struct qkd_link_config *l);

/* Read the top-level kme group g into n->kme (enabled, line, every key,
 * the SAE table). n->links must be read already: remote SAEs name a link,
 * and the listening address must differ from every link's addresses. */
__attribute__((warn_unused_result))
int cfg_kme_read(struct cfg_ctx *c, const config_setting_t *g, struct qkd_node_config *n);

/* Read c->path (at most 1 MiB, no NUL byte), set c->dir to its directory,
 * and parse it into lc (config_init'ed by the caller, who destroys it):
 * 0, or the error written (QKD_ERR_IO when unreadable, else
 * QKD_ERR_INVAL). config_file.c; `qkd vpn`'s parser uses it too. */
__attribute__((warn_unused_result))
int cfg_file_read(struct cfg_ctx *c, config_t *lc);

/* A whole load: err[0..errlen) emptied, QKD_ERR_INVAL for a NULL path or
 * obj, then a context for path, the file read and parsed (cfg_file_read),
 * and root(c, the root setting, obj). The caller has set obj's defaults.
 * 0 or the error. */
__attribute__((warn_unused_result))
int cfg_load(const char *path, char *err, size_t errlen, void *obj,
	     int (*root)(struct cfg_ctx *c, const config_setting_t *root, void *obj));

/* Lexical checks libconfig 1.5 does not make, on the file's text:
 * *include_line: first line with an @include directive (0: none);
 * *int_line: first line with an integer literal that libconfig would
 * silently truncate to 32 bits (no L suffix and outside int32, or a hex
 * literal above 0x7fffffff) (0: none). */
void cfg_scan(const char *text, unsigned *include_line, unsigned *int_line);

#endif
