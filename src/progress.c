#include "progress.h"

#include <stdio.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void progress_init(struct progress *p, bool enabled)
{
	p->enabled = enabled;
	p->shown = false;
	p->start = now();
	p->last_pct = -1;
	p->last_stage = NULL;
}

void progress_update(void *ctx, const char *stage, double done)
{
	struct progress *p = ctx;
	int pct = (int)(done * 100 + 0.5);
	const int width = 30;
	int fill;

	if (!p->enabled || now() - p->start < 1.0)
		return;
	if (pct == p->last_pct && stage == p->last_stage)
		return;
	p->last_pct = pct;
	p->last_stage = stage;
	fill = pct * width / 100;
	fprintf(stderr, "\r\033[K%-18s [%.*s%*s] %3d%%", stage, fill,
		"##############################", width - fill, "", pct);
	fflush(stderr);
	p->shown = true;
}

void progress_done(struct progress *p)
{
	if (p->enabled) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
}
