/* log.c - formatting for the logger seam (qkd/log.h). */
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
