#include "qkd/sysutil.h"

#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "qkd/error.h"

static double clock_seconds(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double qkd_cpu_seconds(void)
{
	return clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
}

double qkd_wall_seconds(void)
{
	return clock_seconds(CLOCK_MONOTONIC);
}

int qkd_write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return QKD_ERR_IO;
		b += w;
		n -= (size_t)w;
	}
	return QKD_OK;
}

int qkd_read_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n > 0) {
		ssize_t r = read(fd, b, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return QKD_ERR_EOF;
		if (r < 0)
			return QKD_ERR_IO;
		b += r;
		n -= (size_t)r;
	}
	return QKD_OK;
}
