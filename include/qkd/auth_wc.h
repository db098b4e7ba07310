/* qkd/auth_wc.h - Wegman-Carter authentication of the classical channel
 * (DESIGN section 4, "Authentication"; docs/authentication.md).
 *
 * Construction (Wegman and Carter, "New hash functions and their use in
 * authentication and set equality", JCSS 22(3), 1981, section 3): the tag
 * of message m authenticated with pad index s in direction d is
 *
 *     tag = H_{k_d}(m) XOR pad_d(s)
 *
 * with H an almost-XOR-universal hash keyed by k_d, which is reused for
 * every message of direction d, and pad_d(s) a fresh 64-bit one-time pad
 * used for that one tag and then destroyed. The classical channel tags
 * batches: m is every frame sent since the previous tag (see "Indexes").
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
 * once, an attacker who has seen any number of tagged messages forges a
 * given new message of <= L words with probability at most (L+1)/2^64 per
 * attempt (1 MiB: L = 2^17, (2^17+1)/2^64 = 7.1e-15, about 2^-47); a tag
 * moved to another index or to the other direction meets an unseen pad:
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
 * direction pads are indexed: the pad of index s is the (s - next)-th
 * unused pad, where next is the lowest index not yet used, so a tag lost
 * on the way does not shift the pads of those after it. A zero
 * hash key would make H constant (any observed tag could be moved to any
 * message), so qkd_wc_new rejects it: the bootstrap is then bad and must be
 * replaced (probability 2^-63 for a random one).
 *
 * Key cost: 128 bits of hash key once; 64 bits of pad per tag, and 64
 * bits per index skipped (its pad is destroyed unused). Everything
 * spent is counted (struct qkd_wc_stats) so it can be charged against the
 * net key rate. Making a tag uses its pad and destroys every unused pad
 * below it. Checking one that verifies does the same. Checking one that
 * fails destroys that one pad only, in place (remembered as burnt, up to
 * QKD_WC_BURNT_MAX of them, then the pads below go too): a forger gets one
 * try per pad, and one who names an index ahead of the sender's makes the
 * receiver skip nothing.
 *
 * Indexes. A pad is chosen by an index, one per tag made in a direction
 * (uint32_t). The classical channel (qkd/channel.h) tags batches of frames,
 * not single frames: qkd_wc_absorb feeds every byte the channel sends or
 * receives into that direction's running H, and qkd_wc_seal / qkd_wc_check
 * close the batch with one tag, H_k(batch) XOR pad(index). The batch is
 * one byte string (the frames back to back, each with its length prefix),
 * so its bound is that of one message of the batch's length
 * (docs/authentication.md, "Batches"). Once index 0xffffffff has been used
 * the direction accepts nothing more: rekey first.
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
/* Pads a receiver remembers as burnt above its next index (see below). */
#define QKD_WC_BURNT_MAX 16

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
	uint64_t tags_made;		/* qkd_wc_tag and qkd_wc_seal successes */
	uint64_t tags_verified;		/* qkd_wc_verify and qkd_wc_check successes */
	uint64_t tags_failed;		/* their QKD_ERR_VERIFY (bad tag or replay) */
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

/* One message on its own (known-answer tests, tools): write the
 * QKD_WC_TAG_LEN-byte tag of msg[0..len) with pad(index) of the sending
 * direction. Uses pad(index) and destroys it and every unused pad below it.
 * QKD_ERR_VERIFY when index is below the next unused send index (its pad
 * is gone: tagging again would reuse a pad), QKD_ERR_NOKEY when no pad is
 * held for it (nothing is consumed), QKD_ERR_RANGE for an absurd len.
 * Nothing is written on error. msg and tag must not overlap. The running
 * batches are not touched. */
__attribute__((warn_unused_result))
int qkd_wc_tag(struct qkd_wc *w, uint32_t index, const uint8_t *msg, size_t len,
	       uint8_t *tag);

/* Check tag (QKD_WC_TAG_LEN bytes) of msg[0..len) received with pad
 * index. Compares in constant time. A valid tag uses pad(index) and
 * destroys every unused pad below it, so that index is never accepted again
 * (replay); an invalid one destroys pad(index) alone, so it cannot be
 * retried (see "Key cost" above). 0 when valid; QKD_ERR_VERIFY when not,
 * or when index is below the next unused receive index or burnt;
 * QKD_ERR_NOKEY when no pad is held for it (nothing is consumed);
 * QKD_ERR_RANGE for an absurd len. */
__attribute__((warn_unused_result))
int qkd_wc_verify(struct qkd_wc *w, uint32_t index, const uint8_t *msg, size_t len,
		  const uint8_t *tag);

/* Batches of qkd/channel.h. Feed p[0..len) into the running hash of the
 * sending (sent true) or receiving direction. Cheap: one GF(2^64) multiply
 * per 8 bytes, no allocation. */
void qkd_wc_absorb(struct qkd_wc *w, bool sent, const uint8_t *p, size_t len);

/* Close the sending direction's batch: write the QKD_WC_TAG_LEN-byte tag
 * H_k(batch) XOR pad(index) and start a new, empty batch. Uses pad(index)
 * and destroys it with every unused pad below it. QKD_ERR_VERIFY for an
 * index below the next unused one (its pad is gone), QKD_ERR_NOKEY when no
 * pad is held for it; on error nothing is consumed and the batch is kept. */
__attribute__((warn_unused_result))
int qkd_wc_seal(struct qkd_wc *w, uint32_t index, uint8_t *tag);

/* Close the receiving direction's batch: check tag against it with
 * pad(index), in constant time, and start a new batch. Pads go as for
 * qkd_wc_verify (one try per pad). 0 when valid; QKD_ERR_VERIFY when not or
 * for an index below the next unused one or burnt; QKD_ERR_NOKEY when no
 * pad is held for it (nothing consumed, batch kept). */
__attribute__((warn_unused_result))
int qkd_wc_check(struct qkd_wc *w, uint32_t index, const uint8_t *tag);

/* Empty both batches (a new connection starts new ones). */
void qkd_wc_reset_batches(struct qkd_wc *w);

/* Unused whole pads, i.e. tags that can still be made / checked (burnt
 * ones not counted). */
uint64_t qkd_wc_send_pads_left(const struct qkd_wc *w);
uint64_t qkd_wc_recv_pads_left(const struct qkd_wc *w);
/* Lowest index not yet used in each direction (UINT32_MAX + 1 when spent). */
uint64_t qkd_wc_next_send_index(const struct qkd_wc *w);
uint64_t qkd_wc_next_recv_index(const struct qkd_wc *w);
/* Total key bits spent on authentication: hash keys + both directions' pads. */
uint64_t qkd_wc_bits_spent(const struct qkd_wc *w);
void qkd_wc_get_stats(const struct qkd_wc *w, struct qkd_wc_stats *st);

/* Save the state into out as it will be once every pad below lease_send
 * (sending direction) and lease_recv (receiving) is used: a caller that
 * must survive a crash saves this image *before* it uses those indexes, so
 * a restarted party can never reuse a pad (docs/node.md). Leases below the
 * next unused index count as that index, and a lease beyond the pads held
 * counts as the end of them. The running batches are not saved. The image
 * holds secrets: out should be a secret qkd_wbuf. */
int qkd_wc_export(const struct qkd_wc *w, uint64_t lease_send, uint64_t lease_recv,
		  struct qkd_wbuf *out);
/* Rebuild an authenticator from an image of qkd_wc_export (read to its
 * end). QKD_ERR_PROTO for a malformed image. */
__attribute__((warn_unused_result))
int qkd_wc_import(struct qkd_wc **out, struct qkd_rbuf *in);

/* The seam of qkd/channel.h: ctx is a struct qkd_wc *, tag_len
 * QKD_WC_TAG_LEN; absorb, tag and verify are qkd_wc_absorb, qkd_wc_seal
 * and qkd_wc_check. */
extern const struct qkd_auth_ops qkd_auth_wc;

#endif
