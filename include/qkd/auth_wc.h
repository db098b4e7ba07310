/* qkd/auth_wc.h - Wegman-Carter authentication of the classical channel
 * (DESIGN section 4, "Authentication"; docs/authentication.md).
 *
 * Construction (Wegman and Carter, "New hash functions and their use in
 * authentication and set equality", JCSS 22(3), 1981, section 3): the tag
 * of message m sent as frame seq s in direction d is
 *
 *     tag = H_{k_d}(m) XOR pad_d(s)
 *
 * with H an almost-XOR-universal hash keyed by k_d, which is reused for
 * every message of direction d, and pad_d(s) a fresh 64-bit one-time pad
 * used for that one frame and then destroyed.
 *
 * H is the polynomial evaluation hash over GF(2^64) of qkd/verify.h
 * (modulus x^64 + x^4 + x^3 + x + 1, qkd_gf64_mul): the len bytes of m are
 * cut into L = ceil(len/8) 64-bit words w_1..w_L, little-endian (bit i of a
 * word is bit i%8 of byte i/8, the convention of qkd_bits_from_bytes), the
 * last word padded with zero bytes, and with n = 8*len
 *
 *     H_k(m) = w_1 k^(L+1) + w_2 k^L + ... + w_L k^2 + n k.
 *
 * So H_k(m) equals qkd_verify_tag() of m's bits. For m != m' of at most L
 * words each and any c, H_k(m) + H_k(m') + c is a nonzero polynomial in k
 * of degree <= L+1 (different lengths differ in the coefficient of k, equal
 * lengths in some word), so it has at most L+1 roots: H is
 * (L+1)/2^64-almost-XOR-universal. Because each pad is uniform and used
 * once, an attacker who has seen any number of tagged frames forges a given
 * new frame (message of <= L words) with probability at most (L+1)/2^64
 * per attempt (1 MiB: L = 2^17, (2^17+1)/2^64 = 7.1e-15, about 2^-47); a
 * tag moved to another seq or to the other direction meets an unseen pad:
 * probability 2^-64.
 *
 * Key layout. Directions: AB = Alice sends / Bob receives, BA = Bob sends /
 * Alice receives. The bootstrap key is
 *
 *     bytes 0..7     k_AB, little-endian (must be nonzero)
 *     bytes 8..15    k_BA, little-endian (must be nonzero)
 *     bytes 16..     pad material
 *
 * Pad material (the bootstrap's, then each replenishment's, as one
 * continuous byte stream) is cut into 8-byte pads, handed out alternately:
 * pad 0 to AB, pad 1 to BA, pad 2 to AB, ... A trailing partial pad (fewer
 * than 8 bytes) waits for the next replenishment to complete it. Within a
 * direction pads are indexed by seq: the pad of seq s is the
 * (s - next)-th unused pad, where next is the lowest seq not yet used, so a
 * frame lost on the way does not shift the pads of those after it. A zero
 * hash key would make H constant (any observed tag could be moved to any
 * message), so qkd_wc_new rejects it: the bootstrap is then bad and must be
 * replaced (probability 2^-63 for a random one).
 *
 * Key cost: 128 bits of hash key once; 64 bits of pad per frame, and 64
 * bits per frame lost or skipped (its pad is destroyed unused). Everything
 * spent is counted (struct qkd_wc_stats) so it can be charged against the
 * net key rate. A pad at or below the seq of any tag made or checked is
 * wiped, whether or not the tag verified: a forger gets one try per pad.
 *
 * Seqs are those of qkd_channel (uint32_t). Once seq 0xffffffff has been
 * used the direction accepts nothing more: the channel must be rekeyed
 * (a new qkd_wc) before its seq wraps.
 *
 * Threads: a struct qkd_wc is not locked; one channel uses it at a time.
 */
#ifndef QKD_AUTH_WC_H
#define QKD_AUTH_WC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/channel.h"
#include "qkd/wire.h"

#define QKD_WC_TAG_LEN 8			/* bytes of one tag */
#define QKD_WC_HASH_KEY_LEN 16			/* k_AB then k_BA */
#define QKD_WC_PAD_LEN 8			/* bytes of one pad */
/* Hash keys plus one pad per direction. */
#define QKD_WC_MIN_BOOTSTRAP (QKD_WC_HASH_KEY_LEN + 2 * QKD_WC_PAD_LEN)

struct qkd_wc;

/* Key accounting of one party, in bits unless named otherwise. */
struct qkd_wc_stats {
	uint64_t key_bits_in;		/* bootstrap + every replenishment */
	uint64_t hash_key_bits;		/* 128: spent once, at qkd_wc_new */
	uint64_t send_bits_spent;	/* pads of the sending direction destroyed */
	uint64_t recv_bits_spent;	/* pads of the receiving direction destroyed */
	uint64_t send_bits_left;	/* whole unused pads of the sending direction */
	uint64_t recv_bits_left;	/* whole unused pads of the receiving direction */
	uint64_t pending_bits;		/* partial pad waiting for the next replenishment */
	uint64_t tags_made;		/* qkd_wc_tag successes */
	uint64_t tags_verified;		/* qkd_wc_verify successes */
	uint64_t tags_failed;		/* QKD_ERR_VERIFY from qkd_wc_verify (bad tag or replay) */
};

/* Build one party's authenticator from the pre-shared bootstrap key
 * bootstrap[0..len) (layout above); alice selects the party: Alice sends
 * with AB and receives with BA, Bob the reverse. The key is copied; the
 * caller still owns and wipes bootstrap. On success *out is a new object
 * for qkd_wc_free. QKD_ERR_INVAL when len < QKD_WC_MIN_BOOTSTRAP or a hash
 * key is zero, QKD_ERR_NOMEM; *out is NULL on error. */
__attribute__((warn_unused_result))
int qkd_wc_new(struct qkd_wc **out, const uint8_t *bootstrap, size_t len, bool alice);

/* Wipe every key and pad, then free. Accepts NULL. */
void qkd_wc_free(struct qkd_wc *w);

/* Append key[0..len) (fresh shared key, e.g. distilled QKD key) to the pad
 * stream. Both parties must replenish with the same bytes in the same order;
 * when does not matter, since pads are appended behind those already held.
 * The bytes are copied (the caller wipes key). All or nothing: on
 * QKD_ERR_NOMEM or QKD_ERR_RANGE nothing was added. len may be 0. */
int qkd_wc_replenish(struct qkd_wc *w, const uint8_t *key, size_t len);

/* Write the QKD_WC_TAG_LEN-byte tag of msg[0..len) as frame seq of the
 * sending direction. Uses pad(seq) and destroys it and every unused pad
 * below it. QKD_ERR_VERIFY when seq is below the next unused send seq (its
 * pad is gone: tagging it again would reuse a pad), QKD_ERR_NOKEY when no
 * pad is held for seq (nothing is consumed), QKD_ERR_RANGE for an absurd
 * len. Nothing is written on error. msg and tag must not overlap. */
__attribute__((warn_unused_result))
int qkd_wc_tag(struct qkd_wc *w, uint32_t seq, const uint8_t *msg, size_t len,
	       uint8_t *tag);

/* Check tag (QKD_WC_TAG_LEN bytes) of msg[0..len) received as frame seq.
 * Compares in constant time. pad(seq) and every unused pad below it are
 * destroyed whatever the outcome, so a frame with that seq is never
 * accepted again (replay) and a failed tag cannot be retried. 0 when
 * valid; QKD_ERR_VERIFY when not, or when seq is below the next unused
 * receive seq; QKD_ERR_NOKEY when no pad is held for seq (nothing is
 * consumed); QKD_ERR_RANGE for an absurd len. */
__attribute__((warn_unused_result))
int qkd_wc_verify(struct qkd_wc *w, uint32_t seq, const uint8_t *msg, size_t len,
		  const uint8_t *tag);

/* Unused whole pads, i.e. frames that can still be sent / received. */
uint64_t qkd_wc_send_pads_left(const struct qkd_wc *w);
uint64_t qkd_wc_recv_pads_left(const struct qkd_wc *w);
/* Lowest seq not yet used in each direction (UINT32_MAX + 1 when spent). */
uint64_t qkd_wc_next_send_seq(const struct qkd_wc *w);
uint64_t qkd_wc_next_recv_seq(const struct qkd_wc *w);
/* Total key bits spent on authentication: hash keys + both directions' pads. */
uint64_t qkd_wc_bits_spent(const struct qkd_wc *w);
void qkd_wc_get_stats(const struct qkd_wc *w, struct qkd_wc_stats *st);

/* Save the state into out as it will be once every pad below lease_send
 * (sending direction) and lease_recv (receiving) is used: a caller that
 * must survive a crash saves this image *before* it uses those seqs, so a
 * restarted party can never reuse a pad (docs/node.md). Leases below the
 * next unused seq count as that seq. The image holds secrets: out should be
 * a secret qkd_wbuf. */
int qkd_wc_export(const struct qkd_wc *w, uint64_t lease_send, uint64_t lease_recv,
		  struct qkd_wbuf *out);
/* Rebuild an authenticator from an image of qkd_wc_export (read to its
 * end). QKD_ERR_PROTO for a malformed image. */
__attribute__((warn_unused_result))
int qkd_wc_import(struct qkd_wc **out, struct qkd_rbuf *in);

/* The seam of qkd/channel.h: ctx is a struct qkd_wc *, tag_len
 * QKD_WC_TAG_LEN, tag/verify are qkd_wc_tag/qkd_wc_verify. */
extern const struct qkd_auth_ops qkd_auth_wc;

#endif
