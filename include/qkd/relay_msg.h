/* qkd/relay_msg.h - the key relay messages and their wire format
 * (docs/relay.md "Key relay").
 *
 * An end-to-end key crosses the network hop by hop. On each link its bits
 * are one-time-pad encrypted with that link's key (ITU-T Q.4163 clause 8:
 * the *key relay* message); the destination's *key relay completion
 * notification* travels the same path back, and a *relay failure* does too
 * when a hop cannot forward. A *withdrawal* goes from the source to the
 * destination when the source gave up on a key (or discards one it
 * relayed): the destination drops it, so a key whose enc_keys failed is
 * never served. Every message names its whole path, source
 * first, and the position of the node that receives it, so a relay needs no
 * state to forward and refuses a path that loops. The codec is strict: what
 * decodes re-encodes to the same bytes.
 */
#ifndef QKD_RELAY_MSG_H
#define QKD_RELAY_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "qkd/keystore.h"
#include "qkd/lsa.h"
#include "qkd/wire.h"

#define QKD_RELAY_MSG_VERSION 1
#define QKD_RELAY_PATH_MAX 16		/* nodes on a path, source and destination included */
#define QKD_RELAY_KEY_BITS_MAX 65536	/* an end-to-end key (a share) */
#define QKD_RELAY_PAD_SEGS_MAX 16	/* pieces of link key one hop's pad is cut from */
#define QKD_RELAY_SHARES_MAX 2		/* relay.paths */

/* Message types of the relay service (service id QKD_SERVICE_RELAY). */
enum qkd_relay_msg_type {
	QKD_RELAY_MSG_LSA = 1,		/* a link-state advertisement (qkd/lsa.h) */
	QKD_RELAY_MSG_KEY = 2,		/* key relay: one share, one hop */
	QKD_RELAY_MSG_COMPLETION = 3,	/* key relay completion notification */
	QKD_RELAY_MSG_FAILURE = 4,	/* a hop could not forward, or the destination refused */
	QKD_RELAY_MSG_WITHDRAW = 5,	/* the source gave the key up: drop it */
};
#define QKD_RELAY_MSG_TYPES 5

/* Why a relay failed (FAILURE's code; docs/relay.md "Failures"). */
enum qkd_relay_fail {
	QKD_RELAY_FAIL_LINK_DOWN = 1,	/* the next link is not connected */
	QKD_RELAY_FAIL_NO_KEY = 2,	/* the next link holds too little key */
	QKD_RELAY_FAIL_PAD = 3,		/* the pad this hop was sent cannot be used here */
	QKD_RELAY_FAIL_UNKNOWN_SAE = 4,	/* the slave SAE is not attached at the destination */
	QKD_RELAY_FAIL_STORE = 5,	/* the destination could not keep the key */
	QKD_RELAY_FAIL_BUSY = 6,	/* too many relays in progress at the destination */
};
#define QKD_RELAY_FAIL_MAX 6

/* Common to the three relay messages. */
struct qkd_relay_head {
	uint8_t key_id[16];		/* the end-to-end key's ETSI key_ID (a UUID) */
	uint8_t attempt;		/* the source's try, from 0: shares of different tries never mix */
	uint8_t share, shares;		/* this share's index, of shares (1 or 2) */
	uint8_t hop;			/* the receiver's position in path */
	uint8_t n_path;			/* 2 .. QKD_RELAY_PATH_MAX */
	char path[QKD_RELAY_PATH_MAX][QKD_NODE_NAME_MAX];	/* source first, all distinct */
};

/* Key relay: one share over one hop. */
struct qkd_relay_key_msg {
	struct qkd_relay_head h;
	char master[QKD_LSA_SAE_ID_MAX + 1];	/* the ETSI SAE pair */
	char slave[QKD_LSA_SAE_ID_MAX + 1];
	uint32_t nbits;				/* multiple of 8, 8 .. QKD_RELAY_KEY_BITS_MAX */
	size_t n_pad;				/* this hop's pad: segments of the link's key */
	struct qkd_store_seg pad[QKD_RELAY_PAD_SEGS_MAX];	/* summing to nbits */
	uint8_t cipher[QKD_RELAY_KEY_BITS_MAX / 8];	/* share XOR pad, nbits / 8 bytes */
};

/* Completion or failure: travels the path backwards (hop decreasing).
 * Withdrawal: the same fields, travelling forwards (hop increasing) over
 * the source's current route, with code and at 0 and attempt, share 0 and
 * shares 1 (it names the key, not one attempt's share). */
struct qkd_relay_back_msg {
	struct qkd_relay_head h;
	uint8_t code;			/* FAILURE: enum qkd_relay_fail; else 0 */
	uint8_t at;			/* FAILURE: path index of the node that failed; else
					 * COMPLETION n_path - 1, WITHDRAW 0 */
};

/* Encoders append to w; they refuse (QKD_ERR_INVAL, nothing written) what
 * the decoder would refuse. Decoders read exactly n bytes, overwrite *out
 * fully (also on error) and say why on error: QKD_ERR_PROTO for truncated,
 * over-long or non-canonical bytes, QKD_ERR_RANGE for a count over its
 * bound, QKD_ERR_INVAL for a field out of its domain (an invalid node or
 * SAE id, a node twice on the path, hop out of range, a pad not summing to
 * nbits). */
int qkd_relay_key_encode(const struct qkd_relay_key_msg *m, struct qkd_wbuf *w);
__attribute__((warn_unused_result))
int qkd_relay_key_decode(struct qkd_relay_key_msg *out, const uint8_t *p, size_t n,
			 const char **why);
/* The back codec also carries WITHDRAW (type says which of the three). */
int qkd_relay_back_encode(const struct qkd_relay_back_msg *m, uint8_t type, struct qkd_wbuf *w);
__attribute__((warn_unused_result))
int qkd_relay_back_decode(struct qkd_relay_back_msg *out, uint8_t type, const uint8_t *p,
			  size_t n, const char **why);

/* Checks of the decoders, for senders: 0 or QKD_ERR_INVAL with *why. */
int qkd_relay_head_check(const struct qkd_relay_head *h, const char **why);

/* "link down", "no key", ... for enum qkd_relay_fail; "unknown" otherwise. */
const char *qkd_relay_fail_name(unsigned code);

#endif
