/* qkd/log.h - how the library reports what daemons do (STYLE.md habit 7).
 *
 * The library never prints: a daemon's library code calls qkd_logf with a
 * logger the program supplies; src/ decides where lines go (a file or
 * stderr, with a timestamp and the level). Key bits never go to a log.
 */
#ifndef QKD_LOG_H
#define QKD_LOG_H

/* Levels in order of detail: a logger at level L passes L and every level
 * before it. The config key `log_level` (docs/config.md) names them. */
enum qkd_log_level { QKD_LOG_ERROR, QKD_LOG_WARN, QKD_LOG_INFO, QKD_LOG_DEBUG };

struct qkd_logger {
	/* Called with one complete line (no newline); may be called from
	 * several threads at once: the function serializes. */
	void (*write)(void *ctx, enum qkd_log_level level, const char *line);
	void *ctx;
	enum qkd_log_level level;	/* lines above this level are dropped */
};

/* printf-style; a NULL logger or write drops the line. */
void qkd_logf(const struct qkd_logger *lg, enum qkd_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "error", "warn", "info" or "debug" (a static string; "unknown" for a
 * value outside the enum): the names the config file and log lines use. */
const char *qkd_log_level_name(enum qkd_log_level l);

#endif
