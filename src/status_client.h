/* status_client.h - ask a running `qkd node` for its status JSON over its
 * unix status socket (src/node_status.c answers). Shared by `qkd status`
 * and `qkd netmap`, which print the errors in their own words. */
#ifndef QKD_STATUS_CLIENT_H
#define QKD_STATUS_CLIENT_H

#include <stddef.h>

/* The largest reply read; a longer one is an error. A relay node's
 * link-state database (4 096 origins at most) makes replies of a few MiB. */
#define STATUS_REPLY_MAX (1u << 24)

/* Send "status" to the socket at path and read the reply to EOF (5 s at
 * most per read). Returns the reply, NUL-terminated, in a new buffer (the
 * caller frees it) and its length in *len; or NULL with why[0..whylen)
 * saying what failed ("cannot reach the node: ...", "no answer from the
 * node", "socket path too long"). */
char *status_client_ask(const char *path, size_t *len, char *why, size_t whylen);

#endif
