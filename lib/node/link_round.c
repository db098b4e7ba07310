/* link_round.c - one round of a link: fresh randomness, the pulses over the
 * fiber, the protocol engine, and the two-phase commit (docs/node.md).
 *
 * Bob drives: ROUND -> ROUND_ACK -> photon frames on the fiber -> the engine
 * (HELLO ... DONE, whose end authenticates the whole round both ways) ->
 * COMMIT -> COMMIT_ACK, or ROUND_END for a round without key. COMMIT and
 * COMMIT_ACK each close their sender's batch, and each end checks that
 * before it writes: nothing a message says reaches the store before its
 * tag has verified. The first R bits of a round's key refill the
 * authentication pool (R agreed from the ROUND message and the key
 * length); the rest is the block. Any error ends the connection: the
 * caller reconnects, and RECOVER settles a half-committed block.
 */
#include "link_round.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/engine.h"
#include "qkd/error.h"
#include "qkd/fiber.h"
#include "qkd/rng.h"
#include "qkd/secret.h"
#include "qkd/wire.h"

/* Fiber frames carry this many slots each; between two, the classical
 * channel moves its services' frames (qkd_channel_pump). */
#define ROUND_FRAME_SLOTS ((uint64_t)1 << 20)

/* The authentication bits taken from a key of n bits: at most what was
 * asked for, at most half the key, whole bytes. */
static size_t auth_take_bits(uint64_t asked, size_t n)
{
	uint64_t r = asked < n / 2 ? asked : n / 2;

	return (size_t)(r & ~(uint64_t)7);
}

/* What the pool lacks below the configured reserve (Bob asks for it). Key
 * is dealt to the two directions alternately, pad by pad, but the two
 * directions do not spend alike (Bob sends a few more frames than Alice), so
 * the poorer direction decides: after the refill it holds at least half the
 * reserve. The richer one keeps its surplus for later rounds. */
static uint64_t auth_wanted(const struct round_env *env)
{
	struct qkd_wc_stats ws;
	uint64_t poor, half = env->cfg->auth_reserve_bits / 2;

	qkd_wc_get_stats(env->auth->wc, &ws);
	poor = ws.send_bits_left < ws.recv_bits_left ? ws.send_bits_left : ws.recv_bits_left;
	return poor >= half ? 0 : 2 * (half - poor);
}

/* Split key into the authentication part (bytes) and the block (bytes). */
static int split_key(const struct qkd_bits *key, size_t r, uint8_t **auth, uint8_t **block,
		     size_t *block_bits)
{
	struct qkd_bits a = {0}, b = {0};
	int rc;

	*auth = *block = NULL;
	*block_bits = key->n - r;
	rc = qkd_bits_init(&a, r);
	if (rc == QKD_OK)
		rc = qkd_bits_init(&b, *block_bits);
	if (rc == QKD_OK) {
		qkd_bits_copy_range(&a, 0, key, 0, r);
		qkd_bits_copy_range(&b, 0, key, r, *block_bits);
		*auth = malloc(r / 8 ? r / 8 : 1);
		*block = malloc((*block_bits + 7) / 8 ? (*block_bits + 7) / 8 : 1);
		rc = *auth && *block ? QKD_OK : QKD_ERR_NOMEM;
	}
	if (rc == QKD_OK) {
		qkd_bits_to_bytes(&a, *auth);
		qkd_bits_to_bytes(&b, *block);
	}
	qkd_bits_cleanup(&a);
	qkd_bits_cleanup(&b);
	return rc;
}

/* Both ends: hold the auth bits, write the block PENDING. */
static int commit_prepare(struct round_env *env, uint64_t id, const struct qkd_bits *key,
			  size_t r, size_t *block_bits)
{
	uint8_t *auth = NULL, *block = NULL;
	int rc = split_key(key, r, &auth, &block, block_bits);

	if (rc == QKD_OK)
		rc = node_auth_set_tentative(env->auth, id, auth, r / 8);
	if (rc == QKD_OK)
		rc = qkd_store_put_pending(env->store, id, block, *block_bits, &env->why);
	qkd_free_secret(auth, r / 8 ? r / 8 : 1);
	qkd_free_secret(block, (*block_bits + 7) / 8 ? (*block_bits + 7) / 8 : 1);
	return rc;
}

/* Send varints v[0..n) as one message; sealed, the batch closes after it. */
static int send_varints(struct qkd_channel *ch, uint8_t type, const uint64_t *v, size_t n,
			bool sealed)
{
	struct qkd_wbuf w;
	int rc;

	qkd_wbuf_init(&w);
	for (size_t i = 0; i < n; i++)
		qkd_put_varint(&w, v[i]);
	rc = w.err ? w.err : sealed ? qkd_channel_send_sealed(ch, type, w.p, w.len)
				    : qkd_channel_send(ch, type, w.p, w.len);
	qkd_wbuf_cleanup(&w);
	return rc;
}

/* --- Bob ------------------------------------------------------------ */

struct one_chunk {
	struct qkd_bob_chunk c;
	bool given;
};

static int one_chunk_next(void *ctx, struct qkd_bob_chunk *out)
{
	struct one_chunk *o = ctx;

	if (o->given)
		return 0;
	*out = o->c;
	memset(&o->c, 0, sizeof o->c);
	o->given = true;
	return 1;
}

/* Until the next photon frame has begun to arrive, with the classical
 * channel's services moving every FIBER_POLL_MS meanwhile (Alice may be
 * busy making the frame); bounded by the node's I/O timeout, as a blocking
 * read of the fiber would be. */
#define FIBER_POLL_MS 20

static int fiber_wait(struct round_env *env)
{
	int rc = QKD_OK;

	for (int waited = 0; rc == QKD_OK; waited += FIBER_POLL_MS) {
		struct pollfd p = { .fd = env->fiber_fd, .events = POLLIN };
		int n = poll(&p, 1, FIBER_POLL_MS);

		if (n > 0)
			break;
		if (n < 0 && errno != EINTR)
			return QKD_ERR_IO;
		if (waited >= NODE_IO_TIMEOUT_S * 1000)
			return QKD_ERR_IO;
		rc = qkd_channel_pump(env->ch);
	}
	return rc;
}

/* Receive the round's photon frames and detect them into one chunk. */
static int bob_detect(struct round_env *env, uint64_t id, struct qkd_bob_chunk *c)
{
	uint8_t key[QKD_FIBER_KEY_BYTES];
	struct qkd_detector *det = NULL;
	struct qkd_fiber_frame f;
	uint64_t covered = 0;
	int rc;

	qkd_fiber_key_random(key);
	qkd_fiber_frame_init(&f);
	memset(c, 0, sizeof *c);
	rc = qkd_detector_new(&det, &env->cfg->optical, key);
	while (rc == QKD_OK) {
		rc = fiber_wait(env);
		if (rc == QKD_OK)
			rc = qkd_fiber_recv(env->fiber_fd, &f);
		if (rc == QKD_OK && (f.round != id || f.first != covered ||
				     f.slots > env->cfg->round_pulses - covered)) {
			env->why = "photon frame out of sequence";
			rc = QKD_ERR_PROTO;
		}
		if (rc == QKD_OK)
			rc = qkd_detector_frame(det, &f, c);
		covered += rc == QKD_OK ? f.slots : 0;
		if (rc == QKD_OK && f.last)
			break;
		if (rc == QKD_OK)
			rc = qkd_channel_pump(env->ch);
	}
	if (rc == QKD_OK && covered != env->cfg->round_pulses) {
		env->why = "photon frames end early";
		rc = QKD_ERR_PROTO;
	}
	c->first_slot = 0;
	c->slots = covered;
	qkd_fiber_frame_cleanup(&f);
	qkd_detector_free(det);
	qkd_wipe(key, sizeof key);
	return rc;
}

static int bob_commit(struct round_env *env, uint64_t id, const struct qkd_bits *key,
		      uint64_t asked)
{
	size_t r = auth_take_bits(asked, key->n), block_bits;
	struct qkd_rbuf rb;
	uint64_t v[3];
	int rc;

	if (key->n - r == 0) {
		v[0] = id;
		return send_varints(env->ch, NODE_MSG_ROUND_END, v, 1, false);
	}
	rc = commit_prepare(env, id, key, r, &block_bits);
	v[0] = id;
	v[1] = block_bits;
	v[2] = r;
	if (rc == QKD_OK)
		rc = send_varints(env->ch, NODE_MSG_COMMIT, v, 3, true);
	if (rc == QKD_OK)
		rc = qkd_channel_expect(env->ch, NODE_MSG_COMMIT_ACK, &rb);
	if (rc == QKD_OK && (qkd_get_varint(&rb) != id || !qkd_rbuf_done(&rb)))
		rc = QKD_ERR_PROTO;
	if (rc == QKD_OK)
		rc = qkd_channel_expect_seal(env->ch);
	if (rc == QKD_OK)
		rc = qkd_store_finalize(env->store, id, &env->why);
	if (rc == QKD_OK)
		rc = node_auth_apply(env->auth, id);
	if (rc == QKD_OK) {
		env->stored_bits = block_bits;
		env->refill_bits = r;
	}
	return rc;
}

int round_bob(struct round_env *env, uint64_t id)
{
	struct one_chunk src = {0};
	struct qkd_bob_source ops = { .next = one_chunk_next, .ctx = &src };
	struct qkd_bits key = {0};
	struct qkd_rng rng;
	struct qkd_rbuf rb;
	uint64_t v[3] = { id, env->cfg->round_pulses, auth_wanted(env) };
	int rc;

	env->stored_bits = 0;
	ops.total_slots = env->cfg->round_pulses;
	rc = send_varints(env->ch, NODE_MSG_ROUND, v, 3, false);
	if (rc == QKD_OK)
		rc = qkd_channel_expect(env->ch, NODE_MSG_ROUND_ACK, &rb);
	if (rc == QKD_OK)
		rc = bob_detect(env, id, &src.c);
	if (rc == QKD_OK && (rc = qkd_rng_init_system(&rng)) == QKD_OK) {
		rc = qkd_engine_bob(env->ch, &env->engine, &ops, &rng, &env->st, &key);
		qkd_rng_cleanup(&rng);
		env->engine_ran = true;
	}
	if (rc == QKD_OK)
		rc = bob_commit(env, id, &key, v[2]);
	qkd_bob_chunk_cleanup(&src.c);
	qkd_bits_cleanup(&key);
	return rc;
}

/* --- Alice ---------------------------------------------------------- */

/* The round's pulses on the fiber, in frames of ROUND_FRAME_SLOTS. */
static int alice_emit(struct round_env *env, const struct qkd_emitter *em, uint64_t id)
{
	struct qkd_fiber_frame f;
	uint64_t n = env->cfg->round_pulses;
	int rc = QKD_OK;

	qkd_fiber_frame_init(&f);
	for (uint64_t first = 0; rc == QKD_OK && first < n; first += ROUND_FRAME_SLOTS) {
		/* Every frame: the services move between two (none waits for the
		 * round's pulses). */
		uint64_t count = n - first < ROUND_FRAME_SLOTS ? n - first : ROUND_FRAME_SLOTS;

		rc = qkd_emitter_chunk(em, first, count, &f);
		f.round = id;
		f.first = first;
		f.slots = count;
		f.last = first + count == n;
		if (rc == QKD_OK)
			rc = qkd_fiber_send(env->fiber_fd, &f);
		if (rc == QKD_OK)
			rc = qkd_channel_pump(env->ch);
	}
	qkd_fiber_frame_cleanup(&f);
	return rc;
}

static int alice_commit(struct round_env *env, uint64_t id, const struct qkd_bits *key,
			uint64_t asked)
{
	struct qkd_rbuf rb;
	uint8_t type;
	size_t r = auth_take_bits(asked, key->n), block_bits;
	uint64_t v[3];
	int rc = qkd_channel_recv(env->ch, &type, &rb);

	if (rc != QKD_OK)
		return rc;
	if (type == NODE_MSG_ROUND_END)
		return qkd_get_varint(&rb) == id && qkd_rbuf_done(&rb) ? QKD_OK : QKD_ERR_PROTO;
	for (int i = 0; i < 3; i++)
		v[i] = qkd_get_varint(&rb);
	if (type != NODE_MSG_COMMIT || !qkd_rbuf_done(&rb) || v[0] != id || v[2] != r ||
	    v[1] != key->n - r || v[1] == 0) {
		env->why = "COMMIT does not match this round's key";
		return QKD_ERR_PROTO;
	}
	rc = qkd_channel_expect_seal(env->ch);
	if (rc == QKD_OK)
		rc = commit_prepare(env, id, key, r, &block_bits);
	if (rc == QKD_OK)
		rc = qkd_store_finalize(env->store, id, &env->why);	/* the commit point */
	if (rc == QKD_OK)
		rc = send_varints(env->ch, NODE_MSG_COMMIT_ACK, v, 1, true);
	if (rc == QKD_OK)
		rc = node_auth_apply(env->auth, id);
	if (rc == QKD_OK) {
		env->stored_bits = block_bits;
		env->refill_bits = r;
	}
	return rc;
}

/* Alice's choices as the engine reads them, in pieces with the channel's
 * services pumped between two: on the example link her sifting looks up
 * hundreds of thousands of detections and her randomness tests read every
 * pulse, which takes long enough (0.3 to 0.9 s on a busy machine) that a
 * key manager record would wait for it. The engine knows nothing of this;
 * the pieces are whole 64-bit words of its bit strings. */
#define PUMP_PIECE_SLOTS ((size_t)1 << 16)

struct pumped_source {
	struct qkd_alice_source inner;
	struct qkd_channel *ch;
};

/* Bits [at, at + n) of b as a bit string of their own (at a multiple of
 * 64: they share b's words). */
static struct qkd_bits bits_piece(const struct qkd_bits *b, size_t at, size_t n)
{
	struct qkd_bits p = { b->w + at / 64, n };

	return p;
}

static int pumped_lookup(void *ctx, const uint64_t *slot, size_t n, struct qkd_bits *basis,
			 struct qkd_bits *value, struct qkd_bits *valid)
{
	struct pumped_source *p = ctx;
	int rc = QKD_OK;

	for (size_t at = 0; rc == QKD_OK && at < n; at += PUMP_PIECE_SLOTS) {
		size_t k = n - at < PUMP_PIECE_SLOTS ? n - at : PUMP_PIECE_SLOTS;
		struct qkd_bits b = bits_piece(basis, at, k), v = bits_piece(value, at, k);
		struct qkd_bits ok = bits_piece(valid, at, k);

		rc = p->inner.lookup(p->inner.ctx, slot + at, k, &b, &v, &ok);
		if (rc == QKD_OK)
			rc = qkd_channel_pump(p->ch);
	}
	return rc;
}

static int pumped_choices(void *ctx, uint64_t first, uint64_t count, struct qkd_bits *basis,
			  struct qkd_bits *value)
{
	struct pumped_source *p = ctx;
	int rc = QKD_OK;

	for (uint64_t at = 0; rc == QKD_OK && at < count; at += 16 * PUMP_PIECE_SLOTS) {
		uint64_t k = count - at < 16 * PUMP_PIECE_SLOTS ? count - at : 16 * PUMP_PIECE_SLOTS;
		struct qkd_bits b = bits_piece(basis, (size_t)at, (size_t)k);
		struct qkd_bits v = bits_piece(value, (size_t)at, (size_t)k);

		rc = p->inner.choices(p->inner.ctx, first + at, k, &b, &v);
		if (rc == QKD_OK)
			rc = qkd_channel_pump(p->ch);
	}
	return rc;
}

static int pumped_intensity(void *ctx, const uint64_t *slot, size_t n, uint8_t *out)
{
	struct pumped_source *p = ctx;

	return p->inner.intensity(p->inner.ctx, slot, n, out);
}

static void pumped_source_init(struct pumped_source *p, const struct qkd_emitter *em,
			       struct qkd_channel *ch, struct qkd_alice_source *ops)
{
	qkd_emitter_alice_source(em, &p->inner);
	p->ch = ch;
	ops->lookup = pumped_lookup;
	ops->choices = p->inner.choices != NULL ? pumped_choices : NULL;
	ops->intensity = p->inner.intensity != NULL ? pumped_intensity : NULL;
	ops->ctx = p;
}

int round_alice(struct round_env *env, struct qkd_rbuf *msg)
{
	uint8_t key_em[QKD_FIBER_KEY_BYTES];
	struct qkd_emitter *em = NULL;
	struct qkd_alice_source ops;
	struct pumped_source pumped;
	struct qkd_store_block b;
	struct qkd_bits key = {0};
	struct qkd_rng rng;
	uint64_t id = qkd_get_varint(msg), pulses = qkd_get_varint(msg), asked = qkd_get_varint(msg);
	bool found = true;
	int rc;

	env->stored_bits = 0;
	if (!qkd_rbuf_done(msg) || pulses != env->cfg->round_pulses || id == 0) {
		env->why = "malformed ROUND";
		return QKD_ERR_PROTO;
	}
	rc = qkd_store_lookup(env->store, id, &b, &found, &env->why);
	if (rc == QKD_OK && found) {
		env->why = "ROUND names a block id already in the store";
		return QKD_ERR_PROTO;
	}
	qkd_fiber_key_random(key_em);
	if (rc == QKD_OK)
		rc = qkd_emitter_new(&em, &env->cfg->optical, key_em);
	qkd_wipe(key_em, sizeof key_em);
	if (rc == QKD_OK)
		rc = send_varints(env->ch, NODE_MSG_ROUND_ACK, &id, 1, false);
	if (rc == QKD_OK)
		rc = alice_emit(env, em, id);
	if (rc == QKD_OK && (rc = qkd_rng_init_system(&rng)) == QKD_OK) {
		pumped_source_init(&pumped, em, env->ch, &ops);
		rc = qkd_engine_alice(env->ch, &env->engine, &ops, &rng, &env->st, &key);
		qkd_rng_cleanup(&rng);
		env->engine_ran = true;
	}
	if (rc == QKD_OK)
		rc = alice_commit(env, id, &key, asked);
	qkd_emitter_free(em);
	qkd_bits_cleanup(&key);
	return rc;
}
