/* qkd/sysutil.h - small system helpers shared by the library.
 *
 * Clocks for the CPU accounting every report carries, and whole-buffer
 * reads and writes on file descriptors (retrying on EINTR and short
 * transfers).
 */
#ifndef QKD_SYSUTIL_H
#define QKD_SYSUTIL_H

#include <stddef.h>

/* CPU seconds used by this process (all threads): CLOCK_PROCESS_CPUTIME_ID. */
double qkd_cpu_seconds(void);
/* Seconds of a monotonic wall clock (CLOCK_MONOTONIC). */
double qkd_wall_seconds(void);

/* Write all n bytes: 0, or QKD_ERR_IO. */
int qkd_write_all(int fd, const void *p, size_t n);
/* Read exactly n bytes: 0, QKD_ERR_EOF (closed before n bytes), or QKD_ERR_IO. */
int qkd_read_all(int fd, void *p, size_t n);

#endif
