#include "qkd/error.h"

const char *qkd_strerror(int err)
{
	switch (err) {
	case QKD_OK: return "success";
	case QKD_ERR_NOMEM: return "out of memory";
	case QKD_ERR_INVAL: return "invalid argument";
	case QKD_ERR_PROTO: return "protocol error";
	case QKD_ERR_IO: return "input/output error";
	case QKD_ERR_VERIFY: return "verification failed";
	case QKD_ERR_RANGE: return "value out of range";
	case QKD_ERR_EOF: return "peer closed the channel";
	case QKD_ERR_ABORT: return "aborted";
	case QKD_ERR_NOKEY: return "authentication key exhausted";
	case QKD_ERR_NOSPACE: return "no space left on device";
	case QKD_ERR_READONLY: return "read-only file system or file";
	case QKD_ERR_CORRUPT: return "stored key failed its digest";
	case QKD_ERR_REFUSED: return "refused by the server";
	default: return "unknown error";
	}
}
