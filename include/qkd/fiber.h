/* qkd/fiber.h - the quantum channel between two node processes.
 *
 * In `qkd node` the simulated optics are split at the fiber, as in a real
 * link: Alice's node prepares pulses and sends over the "fiber socket" only
 * what physically travels (slot, photon number, the encoded state); Bob's
 * node applies the fiber loss and his detectors. `qkd eve` sits on the fiber
 * socket and acts on the same frames. docs/fiber.md gives the wire format
 * and the model (the same physics as DESIGN.md section 3).
 *
 * Randomness: Alice's choices (basis, value) and Bob's basis come from
 * ChaCha20 keyed with a fresh secret per round (qkd_fiber_key_random), so no
 * round reuses another's choices even if slot numbers repeat. The photon
 * numbers and the detector physics come from separate keyed streams.
 */
#ifndef QKD_FIBER_H
#define QKD_FIBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/bits.h"
#include "qkd/optical.h"
#include "qkd/source.h"
#include "qkd/wire.h"

#define QKD_FIBER_VERSION 2
/* A fiber connection opens with a hello of this many bytes that binds it
 * to its classical session (lib/node/link_handshake.c: magic, session id,
 * MAC). A tap on the fiber forwards it unchanged. */
#define QKD_FIBER_HELLO_LEN 72
#define QKD_FIBER_KEY_BYTES 32
/* Bounds a receiver enforces on one frame (hostile-input limits). */
#define QKD_FIBER_MAX_FRAME_SLOTS ((uint64_t)1 << 24)
#define QKD_FIBER_MAX_FRAME_PULSES ((size_t)1 << 22)

/* Encoded states: 2*basis + value (basis 0 = Z, 1 = X). */
struct qkd_pulse {
	uint64_t slot;
	uint16_t photons;	/* >= 1 (empty pulses are not sent) */
	uint8_t state;		/* 0..3 */
};

/* One fiber frame: the non-empty pulses of slots [first, first+slots),
 * strictly increasing. A round ends with a frame whose `last` flag is set. */
struct qkd_fiber_frame {
	uint64_t round;		/* the round the slots belong to */
	uint64_t first, slots;
	bool last;
	size_t n, cap;
	struct qkd_pulse *p;	/* owned */
};

void qkd_fiber_frame_init(struct qkd_fiber_frame *f);
void qkd_fiber_frame_cleanup(struct qkd_fiber_frame *f);	/* wipes (states are secret) */
/* Serialize (u32 length prefix included) / parse one frame. Parse reads
 * exactly one frame body (after the length prefix) from r; every field is
 * bounded, pulses must lie in [first, first+slots) in increasing order, and
 * photons >= 1. QKD_ERR_PROTO on anything malformed (f then holds no
 * pulses; its capacity is reused across calls). The writer sets w->err to
 * QKD_ERR_INVAL for a frame that breaks the same rules. */
void qkd_fiber_frame_write(struct qkd_wbuf *w, const struct qkd_fiber_frame *f);
__attribute__((warn_unused_result))
int qkd_fiber_frame_read(struct qkd_rbuf *r, struct qkd_fiber_frame *f);
/* Read / write one length-prefixed frame on a stream socket. */
__attribute__((warn_unused_result))
int qkd_fiber_recv(int fd, struct qkd_fiber_frame *f);
__attribute__((warn_unused_result))
int qkd_fiber_send(int fd, const struct qkd_fiber_frame *f);

/* Fresh secret key material from the OS (libsodium randombytes). */
void qkd_fiber_key_random(uint8_t key[QKD_FIBER_KEY_BYTES]);

/* Alice's side: weak-coherent source only (link->source must be
 * QKD_SOURCE_WEAK_COHERENT; decoys and p_x honoured; distance, detector and
 * Eve fields ignored). */
struct qkd_emitter;
__attribute__((warn_unused_result))
int qkd_emitter_new(struct qkd_emitter **out, const struct qkd_link_params *link,
		    const uint8_t key[QKD_FIBER_KEY_BYTES]);
void qkd_emitter_free(struct qkd_emitter *e);	/* wipes; accepts NULL */
/* The non-empty pulses of [first, first+count) into f (f->round untouched). */
__attribute__((warn_unused_result))
int qkd_emitter_chunk(const struct qkd_emitter *e, uint64_t first, uint64_t count,
		      struct qkd_fiber_frame *f);
/* Alice's source for the engine: lookup (basis, value, valid = 1), her raw
 * choices for every slot, and intensities when there are decoys. */
void qkd_emitter_alice_source(const struct qkd_emitter *e, struct qkd_alice_source *ops);

/* Bob's side: fiber of link->distance_km and loss, his detectors
 * (efficiency, dark counts, misalignment) and his basis choice (p_x). */
struct qkd_detector;
__attribute__((warn_unused_result))
int qkd_detector_new(struct qkd_detector **out, const struct qkd_link_params *link,
		     const uint8_t key[QKD_FIBER_KEY_BYTES]);
void qkd_detector_free(struct qkd_detector *d);	/* wipes; accepts NULL */
/* Detect the pulses of frame f (which covers [f->first, f->first+f->slots))
 * and append Bob's detections, dark counts included, to c (a chunk that
 * the caller initialized empty; slots increase across calls). c must start
 * zeroed (or cleaned up) and be filled only by this function: its storage
 * holds the next power of two >= n entries and grows geometrically.
 * c->first_slot/slots are the caller's. QKD_ERR_INVAL for an invalid frame
 * or one that starts at or before c's last slot; on any error c is left as
 * before the call. Not thread-safe (the detector's channel stream moves). */
__attribute__((warn_unused_result))
int qkd_detector_frame(struct qkd_detector *d, const struct qkd_fiber_frame *f,
		       struct qkd_bob_chunk *c);

/* Eve on the fiber (qkd eve): acts on a frame in place. intercept-resend:F
 * and beamsplit:F as in docs/optical-model.md, none passes frames
 * unchanged (pns is refused: Eve on a
 * socket cannot know Bob's expected rate without the link parameters; it
 * stays a simulator attack). Her own randomness from key. Counters for her
 * log: pulses seen, intercepted, photons tapped. */
struct qkd_fiber_eve;
__attribute__((warn_unused_result))
int qkd_fiber_eve_new(struct qkd_fiber_eve **out, enum qkd_eve_attack attack, double fraction,
		      const uint8_t key[QKD_FIBER_KEY_BYTES]);
void qkd_fiber_eve_free(struct qkd_fiber_eve *e);
__attribute__((warn_unused_result))
int qkd_fiber_eve_apply(struct qkd_fiber_eve *e, struct qkd_fiber_frame *f);
struct qkd_fiber_eve_stats {
	uint64_t frames, pulses, intercepted, photons_tapped;
};
void qkd_fiber_eve_stats(const struct qkd_fiber_eve *e, struct qkd_fiber_eve_stats *st);

#endif
