/* logsink.h - where a daemon's log lines go (`qkd node`, `qkd vpn`): the
 * configured log file, appended to, or standard error, one line per call
 * as "TIMESTAMP LEVEL message" (UTC, milliseconds), serialised by a lock
 * because the library logs from several threads (qkd/log.h). */
#ifndef QKD_LOGSINK_H
#define QKD_LOGSINK_H

#include <pthread.h>
#include <stdio.h>

#include "qkd/log.h"

struct logsink {
	FILE *f;
	pthread_mutex_t lock;
};

/* Open path for appending ("" or NULL: standard error) and fill *lg to
 * write there at level. 0, or -1 after printing "qkd: PATH: why". */
int logsink_open(struct logsink *s, const char *path, enum qkd_log_level level,
		 struct qkd_logger *lg);
/* Close the file (not standard error) and the lock. */
void logsink_close(struct logsink *s);

#endif
