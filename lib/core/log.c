/* log.c - the logger seam (qkd/log.h): formatting a line, naming a level. */
#include "qkd/log.h"

#include <stdarg.h>
#include <stdio.h>

void qkd_logf(const struct qkd_logger *lg, enum qkd_log_level level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (lg == NULL || lg->write == NULL || level > lg->level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	lg->write(lg->ctx, level, line);
}

static const char *const level_names[] = {
	[QKD_LOG_ERROR] = "error", [QKD_LOG_WARN] = "warn",
	[QKD_LOG_INFO] = "info", [QKD_LOG_DEBUG] = "debug",
};

const char *qkd_log_level_name(enum qkd_log_level l)
{
	if ((unsigned)l < sizeof level_names / sizeof level_names[0])
		return level_names[l];
	return "unknown";
}
