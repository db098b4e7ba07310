/* config_value.c - typed values of the node configuration: error messages,
 * the group walker, numbers, strings and names (docs/config.md). */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "qkd/error.h"
#include "config_int.h"

/* Integers up to 2^53 are exact in a double; a float given for an integer
 * key must be integral and at most this large. */
#define CFG_INTEGRAL_MAX 9007199254740992.0

static unsigned line_of(const config_setting_t *s)
{
	return s != NULL ? config_setting_source_line(s) : 0;
}

__attribute__((format(printf, 4, 0)))
static void vfail(struct cfg_ctx *c, unsigned line, const char *key,
		  const char *fmt, va_list ap)
{
	size_t used;
	int n;

	if (c->err == NULL || c->errlen == 0)
		return;
	if (line > 0)
		n = snprintf(c->err, c->errlen, "%s:%u: ", c->path, line);
	else
		n = snprintf(c->err, c->errlen, "%s: ", c->path);
	used = n < 0 ? 0 : (size_t)n;
	if (used < c->errlen && key != NULL) {
		n = snprintf(c->err + used, c->errlen - used, "%s%s%s: ", c->scope,
			     c->scope[0] != '\0' ? "." : "", key);
		used += n < 0 ? 0 : (size_t)n;
	}
	if (used < c->errlen)
		vsnprintf(c->err + used, c->errlen - used, fmt, ap);
}

int cfg_fail(struct cfg_ctx *c, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(c, line_of(s), NULL, fmt, ap);
	va_end(ap);
	return QKD_ERR_INVAL;
}

int cfg_fail_at(struct cfg_ctx *c, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(c, line, NULL, fmt, ap);
	va_end(ap);
	return QKD_ERR_INVAL;
}

int cfg_failk(struct cfg_ctx *c, const config_setting_t *s, const char *key,
	      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(c, line_of(s), key, fmt, ap);
	va_end(ap);
	return QKD_ERR_INVAL;
}

static const char *type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP: return "a group { ... }";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64: return "an integer";
	case CONFIG_TYPE_FLOAT: return "a real number";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_ARRAY: return "an array [ ... ]";
	case CONFIG_TYPE_LIST: return "a list ( ... )";
	default: return "an unknown type";
	}
}

static const struct cfg_field *field_find(const struct cfg_field *t, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].key, key) == 0)
			return &t[i];
	return NULL;
}

int cfg_group(struct cfg_ctx *c, const config_setting_t *g,
	      const struct cfg_field *t, size_t n, void *obj)
{
	const config_setting_t *m;
	const struct cfg_field *f;
	int rc = QKD_OK;

	if (!config_setting_is_group(g)) {
		if (config_setting_name(g) != NULL)
			rc = cfg_failk(c, g, config_setting_name(g),
				       "expected a group { ... }, got %s", type_name(g));
		else
			rc = cfg_fail(c, g, "%s: expected a group { ... }, got %s", c->scope,
				      type_name(g));
		goto out;
	}
	for (int i = 0; rc == QKD_OK && i < config_setting_length(g); i++) {
		m = config_setting_get_elem(g, (unsigned)i);
		f = field_find(t, n, config_setting_name(m));
		if (f == NULL)
			rc = cfg_failk(c, m, config_setting_name(m), "unknown key");
		else
			rc = f->set(c, m, f, obj);
	}
	for (size_t i = 0; rc == QKD_OK && i < n; i++)
		if ((t[i].flags & CFG_REQUIRED) && config_setting_get_member(g, t[i].key) == NULL)
			rc = cfg_failk(c, g, t[i].key, "required key is missing");
out:
	return rc;
}

int cfg_get_string(struct cfg_ctx *c, const config_setting_t *s, const char *key,
		   const char **out)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return cfg_failk(c, s, key, "expected a string, got %s", type_name(s));
	*out = config_setting_get_string(s);
	return QKD_OK;
}

int cfg_get_real(struct cfg_ctx *c, const config_setting_t *s, const char *key,
		 double *out)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT: *out = config_setting_get_int(s); break;
	case CONFIG_TYPE_INT64: *out = (double)config_setting_get_int64(s); break;
	case CONFIG_TYPE_FLOAT: *out = config_setting_get_float(s); break;
	default: return cfg_failk(c, s, key, "expected a number, got %s", type_name(s));
	}
	if (!isfinite(*out))
		return cfg_failk(c, s, key, "must be a finite number");
	return QKD_OK;
}

int cfg_get_reals(struct cfg_ctx *c, const config_setting_t *s, const char *key,
		  double *out, size_t n)
{
	int rc = QKD_OK;

	if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
		rc = cfg_failk(c, s, key, "expected an array of %zu numbers, got %s", n,
			       type_name(s));
		goto out;
	}
	if ((size_t)config_setting_length(s) != n) {
		rc = cfg_failk(c, s, key, "expected %zu numbers, got %d", n,
			       config_setting_length(s));
		goto out;
	}
	for (size_t i = 0; rc == QKD_OK && i < n; i++)
		rc = cfg_get_real(c, config_setting_get_elem(s, (unsigned)i), key, &out[i]);
out:
	return rc;
}

static bool in_range(const struct cfg_field *f, double v)
{
	if (!(f->flags & CFG_RANGE))
		return true;
	if ((f->flags & CFG_LO_OPEN) ? !(v > f->lo) : !(v >= f->lo))
		return false;
	return (f->flags & CFG_HI_OPEN) ? v < f->hi : v <= f->hi;
}

int cfg_set_real(struct cfg_ctx *c, const config_setting_t *s,
		 const struct cfg_field *f, void *obj)
{
	double v;

	if (cfg_get_real(c, s, f->key, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	if (!in_range(f, v))
		return cfg_failk(c, s, f->key, "must be in %c%g, %g%c, got %g",
				 (f->flags & CFG_LO_OPEN) ? '(' : '[', f->lo, f->hi,
				 (f->flags & CFG_HI_OPEN) ? ')' : ']', v);
	memcpy((char *)obj + f->off, &v, sizeof v);
	return QKD_OK;
}

/* A non-negative integer in f's domain: an int, an int64, or an integral
 * real up to 2^53 (so that 1e8 may be written for 100000000). */
static int get_count(struct cfg_ctx *c, const config_setting_t *s,
		     const struct cfg_field *f, uint64_t *out)
{
	long long i;
	double d;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		i = config_setting_get_int64(s);
		if (i < 0)
			return cfg_failk(c, s, f->key, "must be >= 0, got %lld", i);
		*out = (uint64_t)i;
		break;
	case CONFIG_TYPE_FLOAT:
		d = config_setting_get_float(s);
		if (!(d >= 0 && d <= CFG_INTEGRAL_MAX && d == floor(d)))
			return cfg_failk(c, s, f->key, "expected a non-negative integer, got %g", d);
		*out = (uint64_t)d;
		break;
	default:
		return cfg_failk(c, s, f->key, "expected an integer, got %s", type_name(s));
	}
	if ((f->flags & CFG_RANGE) && (*out < (uint64_t)f->lo || *out > (uint64_t)f->hi))
		return cfg_failk(c, s, f->key, "must be between %" PRIu64 " and %" PRIu64
				 ", got %" PRIu64, (uint64_t)f->lo, (uint64_t)f->hi, *out);
	return QKD_OK;
}

int cfg_set_u64(struct cfg_ctx *c, const config_setting_t *s,
		const struct cfg_field *f, void *obj)
{
	uint64_t v;

	if (get_count(c, s, f, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	memcpy((char *)obj + f->off, &v, sizeof v);
	return QKD_OK;
}

int cfg_set_size(struct cfg_ctx *c, const config_setting_t *s,
		 const struct cfg_field *f, void *obj)
{
	uint64_t v;
	size_t z;

	if (get_count(c, s, f, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	if (v > SIZE_MAX)
		return cfg_failk(c, s, f->key, "too large for this machine");
	z = (size_t)v;
	memcpy((char *)obj + f->off, &z, sizeof z);
	return QKD_OK;
}

int cfg_set_uint(struct cfg_ctx *c, const config_setting_t *s,
		 const struct cfg_field *f, void *obj)
{
	uint64_t v;
	unsigned u;

	if (get_count(c, s, f, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	if (v > UINT_MAX)
		return cfg_failk(c, s, f->key, "too large for this machine");
	u = (unsigned)v;
	memcpy((char *)obj + f->off, &u, sizeof u);
	return QKD_OK;
}

int cfg_set_u32(struct cfg_ctx *c, const config_setting_t *s,
		const struct cfg_field *f, void *obj)
{
	uint64_t v;
	uint32_t u;

	if (get_count(c, s, f, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	if (v > UINT32_MAX)
		return cfg_failk(c, s, f->key, "must be at most %" PRIu32 ", got %" PRIu64,
				 UINT32_MAX, v);
	u = (uint32_t)v;
	memcpy((char *)obj + f->off, &u, sizeof u);
	return QKD_OK;
}

/* Names appear in file names, logs and JSON: letters, digits, '.', '_',
 * '-', not starting with '.' or '-'. */
static bool name_ok(const char *v)
{
	if (v[0] == '\0' || v[0] == '.' || v[0] == '-')
		return false;
	for (const char *p = v; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return false;
	return true;
}

int cfg_set_name(struct cfg_ctx *c, const config_setting_t *s,
		 const struct cfg_field *f, void *obj)
{
	const char *v = NULL;

	if (cfg_get_string(c, s, f->key, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	if (!name_ok(v))
		return cfg_failk(c, s, f->key, "'%s' is not a name (letters, digits, '.', '_', '-'; "
				 "not starting with '.' or '-')", v);
	if (strlen(v) >= QKD_NODE_NAME_MAX)
		return cfg_failk(c, s, f->key, "longer than %d characters", QKD_NODE_NAME_MAX - 1);
	strcpy((char *)obj + f->off, v);
	return QKD_OK;
}

int cfg_set_log_level(struct cfg_ctx *c, const config_setting_t *s,
		      const struct cfg_field *f, void *obj)
{
	const char *v = NULL;

	if (cfg_get_string(c, s, f->key, &v) != QKD_OK)
		return QKD_ERR_INVAL;
	for (int l = QKD_LOG_ERROR; l <= QKD_LOG_DEBUG; l++) {
		if (strcmp(v, qkd_log_level_name((enum qkd_log_level)l)) == 0) {
			*(enum qkd_log_level *)((char *)obj + f->off) = (enum qkd_log_level)l;
			return QKD_OK;
		}
	}
	return cfg_failk(c, s, f->key, "'%s' is not a log level (error, warn, info, debug)", v);
}
