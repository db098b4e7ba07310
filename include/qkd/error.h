/* qkd/error.h - error codes returned by every libqkd function.
 *
 * Convention (STYLE.md habit 2): functions return 0 on success or one of the
 * negative codes below; predicates return bool. The library never prints or
 * exits; src/ turns a code into "qkd: <what>: <why>".
 */
#ifndef QKD_ERROR_H
#define QKD_ERROR_H

enum qkd_err {
	QKD_OK = 0,
	QKD_ERR_NOMEM = -1,	/* allocation failed */
	QKD_ERR_INVAL = -2,	/* argument out of its documented domain */
	QKD_ERR_PROTO = -3,	/* peer message malformed or out of sequence */
	QKD_ERR_IO = -4,	/* socket or file I/O failed (errno kept) */
	QKD_ERR_VERIFY = -5,	/* a tag or hash comparison failed */
	QKD_ERR_RANGE = -6,	/* a size or count overflowed its bound */
	QKD_ERR_EOF = -7,	/* peer closed the channel */
	QKD_ERR_ABORT = -8,	/* protocol aborted by policy (e.g. QBER too high) */
	QKD_ERR_NOKEY = -9,	/* authentication key exhausted (replenish first) */
	QKD_ERR_NOSPACE = -10,	/* the disk is full (ENOSPC, SQLITE_FULL) */
	QKD_ERR_READONLY = -11,	/* a file or its file system refuses writes (EROFS, EPERM) */
	QKD_ERR_CORRUPT = -12,	/* stored bits fail their digest: quarantined, never served */
	QKD_ERR_REFUSED = -13,	/* a server answered with an error status (ETSI 014 Error object) */
};

/* A static, human-readable description of a code (never NULL). */
const char *qkd_strerror(int err);

#endif
