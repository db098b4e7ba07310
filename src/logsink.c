/* logsink.c - the daemons' log lines (logsink.h). */
#include "logsink.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void logsink_write(void *ctx, enum qkd_log_level level, const char *line)
{
	struct logsink *s = ctx;
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	pthread_mutex_lock(&s->lock);
	fprintf(s->f, "%s.%03ldZ %-5s %s\n", stamp, ts.tv_nsec / 1000000L,
		qkd_log_level_name(level), line);
	fflush(s->f);
	pthread_mutex_unlock(&s->lock);
}

int logsink_open(struct logsink *s, const char *path, enum qkd_log_level level,
		 struct qkd_logger *lg)
{
	s->f = stderr;
	if (path && path[0] != '\0' && (s->f = fopen(path, "a")) == NULL) {
		cli_errorf(path, "%s", strerror(errno));
		return -1;
	}
	pthread_mutex_init(&s->lock, NULL);
	lg->write = logsink_write;
	lg->ctx = s;
	lg->level = level;
	return 0;
}

void logsink_close(struct logsink *s)
{
	if (s->f && s->f != stderr)
		fclose(s->f);
	s->f = NULL;
	pthread_mutex_destroy(&s->lock);
}
