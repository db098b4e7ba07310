/* progress.h - a one-line progress indicator on a terminal (stderr).
 * Silent unless enabled (stderr is a terminal) and the work has run for more
 * than a second. Safe to call from a forked child: the state is per process. */
#ifndef QKD_PROGRESS_H
#define QKD_PROGRESS_H

#include <stdbool.h>

struct progress {
	bool enabled, shown;
	double start;
	int last_pct;
	const char *last_stage;
};

void progress_init(struct progress *p, bool enabled);
/* Matches the engine's callback: ctx is a struct progress. */
void progress_update(void *ctx, const char *stage, double done);
/* Erase the line if anything may have been shown. */
void progress_done(struct progress *p);

#endif
