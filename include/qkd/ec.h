/* qkd/ec.h - error correction (information reconciliation), DESIGN.md section 4.
 *
 * Cascade as an interactive protocol between two parties that share no
 * memory. Bob drives: he holds the string to be corrected, decides every
 * query and sends it in a serialized request; Alice answers each query with
 * the parity of a set of bits of her own string. Alice's string is never
 * changed; after the protocol Bob's string equals hers (with overwhelming
 * probability; error verification, a later stage, catches the rest).
 *
 * Many frames are in flight at once: one request carries the queries of
 * every unfinished frame, so the number of round trips does not bound the
 * throughput. The engine loop is
 *
 *     bob:   qkd_ec_bob_request(bob, &req)      -> 1: send req, 0: all finished
 *     alice: qkd_ec_alice_answer(alice, &req, &reply)
 *     bob:   qkd_ec_bob_reply(bob, &reply)
 *     both:  qkd_ec_*_take_done(...) until it returns 0
 *
 * "disclosed" is the number of parity bits of Alice's string that she sent
 * (the literature's leak_EC); parities that both sides can infer from
 * earlier ones are never sent and never counted. Both parties count the same
 * bits, so Bob's and Alice's figures for a frame are equal. The entropy
 * estimate (DESIGN.md section 5) subtracts this number.
 *
 * Wire format, block-size schedule and measured efficiency:
 * docs/error-correction.md.
 *
 * Ownership: objects are created with _new and released with _free (which
 * accepts NULL and wipes every secret: strings, permutation state). Bit
 * strings passed in are copied; the caller keeps its own. Messages go
 * through the bounded wire reader/writer (qkd/wire.h); a malformed or
 * hostile message yields QKD_ERR_PROTO or QKD_ERR_RANGE and leaves the
 * receiving object unchanged.
 */
#ifndef QKD_EC_H
#define QKD_EC_H

#include <stdbool.h>
#include <stdint.h>

struct qkd_bits;
struct qkd_rbuf;
struct qkd_rng;
struct qkd_wbuf;
struct qkd_ec_bob;
struct qkd_ec_alice;

/* Frame size the engine should use: f is about 1.06 at 10^4 bits, 1.05 at
 * 2^14, 1.04 at 2^16 and 1.038 at 2^18 (docs/error-correction.md), while
 * memory and round trips per frame keep growing. */
#define QKD_EC_DEFAULT_FRAME_BITS 65536u
/* Frames the engine should keep in flight: one request serves them all, so
 * the per-message costs (system calls, authentication tags) are shared;
 * beyond about 64 the working set outgrows the caches. */
#define QKD_EC_DEFAULT_IN_FLIGHT 64u
/* Largest frame either party accepts (memory grows as about n/2 bytes per
 * pass tree on Bob's side). */
#define QKD_EC_MAX_FRAME_BITS (1u << 28)

/* Name of the default ("the best") variant. */
#define QKD_EC_DEFAULT "cascade"

/* Variant names: "cascade" (default) and "cascade-bbn". */
bool qkd_ec_name_valid(const char *name);
/* NULL-terminated list of every valid name (static storage). */
const char *const *qkd_ec_names(void);
/* One line for --help, or NULL for an unknown name (static storage). */
const char *qkd_ec_describe(const char *name);

/* Bob: the party that corrects his string.
 * name: a variant name, or NULL for QKD_EC_DEFAULT.
 * rng: borrowed and must outlive the object; Bob draws the permutation seeds
 * from it (a fresh one every 256 frames: the permutation tables are built
 * once per seed), so a seeded rng makes the exchange reproducible byte for
 * byte. */
int qkd_ec_bob_new(struct qkd_ec_bob **out, const char *name,
		   struct qkd_rng *rng);
void qkd_ec_bob_free(struct qkd_ec_bob *bob);

/* Register a frame: bits are copied. qber_est (0..0.5) is Bob's estimate of
 * the error rate; it sets the first block size, and the second together
 * with the errors the first pass saw, so an estimate off by +-20% costs a
 * little efficiency and never correctness. frame_id must not be in flight already
 * (QKD_ERR_INVAL); 1 <= bits->n <= QKD_EC_MAX_FRAME_BITS. */
int qkd_ec_bob_add_frame(struct qkd_ec_bob *bob, uint64_t frame_id,
			 const struct qkd_bits *bits, double qber_est);

/* Append the next request (the queries of every frame in flight, and the
 * announcement of frames Bob has finished) to out. Returns 1 if a request was
 * written, 0 if there is nothing to send, or a negative error. A request must
 * be answered (qkd_ec_bob_reply) before the next one is built: calling this
 * with a reply outstanding returns QKD_ERR_INVAL. */
int qkd_ec_bob_request(struct qkd_ec_bob *bob, struct qkd_wbuf *out);

/* Consume Alice's reply to the outstanding request. A reply that does not
 * match it (sequence, length, trailing bytes) is rejected with QKD_ERR_PROTO
 * and nothing changes, so the same request may be answered again. Answers
 * that are well formed but contradict each other (only a lying Alice sends
 * them) also return QKD_ERR_PROTO; the object is then unusable and every
 * later call fails with QKD_ERR_PROTO. */
__attribute__((warn_unused_result))
int qkd_ec_bob_reply(struct qkd_ec_bob *bob, struct qkd_rbuf *in);

/* Take one finished frame out (finished frames come out in the order they
 * finish). A frame is finished when Bob has written its DONE record into a
 * request; Alice lets go of it when she answers that request. *out must be
 * empty: it receives Bob's corrected bits and the caller owns them
 * (qkd_bits_cleanup). disclosed: parity bits Alice revealed for the frame;
 * corrected: bits Bob flipped. Returns 1 if a frame was returned, 0 if none
 * is finished. */
int qkd_ec_bob_take_done(struct qkd_ec_bob *bob, uint64_t *frame_id,
			 struct qkd_bits *out, uint64_t *disclosed,
			 uint64_t *corrected);

/* Number of frames added and not yet taken out (the engine's flow control;
 * see QKD_EC_DEFAULT_IN_FLIGHT). */
unsigned qkd_ec_bob_in_flight(const struct qkd_ec_bob *bob);

/* Alice: answers parity queries on her own string.
 * name must be the variant Bob uses (his requests name it; a mismatch is a
 * protocol error), or NULL for QKD_EC_DEFAULT. */
int qkd_ec_alice_new(struct qkd_ec_alice **out, const char *name);
void qkd_ec_alice_free(struct qkd_ec_alice *alice);

/* Register Alice's copy of a frame (copied). It must be registered before
 * the first request that names frame_id arrives: a request about an unknown
 * frame is a protocol error. Duplicate ids return QKD_ERR_INVAL. */
int qkd_ec_alice_add_frame(struct qkd_ec_alice *alice, uint64_t frame_id,
			   const struct qkd_bits *bits);

/* Parse one request and append the reply to reply. The whole request is
 * validated before anything is answered: on QKD_ERR_PROTO/QKD_ERR_RANGE
 * Alice's state is unchanged and nothing was appended. */
__attribute__((warn_unused_result))
int qkd_ec_alice_answer(struct qkd_ec_alice *alice, struct qkd_rbuf *req,
			struct qkd_wbuf *reply);

/* Take out a frame that Bob declared finished: its id and the number of
 * parity bits Alice disclosed for it (equal to Bob's figure). Alice's copy
 * of the bits is wiped. Returns 1 if a frame was returned, 0 if none. */
int qkd_ec_alice_take_done(struct qkd_ec_alice *alice, uint64_t *frame_id,
			   uint64_t *disclosed);

#endif
