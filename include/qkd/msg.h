/* qkd/msg.h - message types of the link protocol (docs/protocol.md).
 *
 * Bob drives the exchange; Alice answers. Every message travels in a
 * qkd_channel frame, so it is sequenced and covered by the next AUTH frame
 * of its direction.
 */
#ifndef QKD_MSG_H
#define QKD_MSG_H

enum qkd_msg_type {
	QKD_MSG_HELLO = 1,		/* B->A: protocol parameters */
	QKD_MSG_HELLO_ACK = 2,		/* A->B: parameters accepted */
	QKD_MSG_SIFT_REPORT = 3,	/* B->A: detected slots (run-length) and bases */
	QKD_MSG_SIFT_REPLY = 4,		/* A->B: which detections to keep */
	QKD_MSG_SAMPLE_REQ = 5,		/* B->A: positions and Bob's bits of a QBER sample */
	QKD_MSG_SAMPLE_REPLY = 6,	/* A->B: Alice's bits at those positions */
	QKD_MSG_EC_REQ = 7,		/* B->A: error-correction queries */
	QKD_MSG_EC_REPLY = 8,		/* A->B: parity answers */
	QKD_MSG_VERIFY_REQ = 9,		/* B->A: hash key and Bob's tags per frame */
	QKD_MSG_VERIFY_REPLY = 10,	/* A->B: per-frame verdicts */
	QKD_MSG_ESTIMATE = 11,		/* B->A: error counts of a privacy-amplification block */
	QKD_MSG_PA_SEED = 12,		/* A->B: output length and Toeplitz seed */
	QKD_MSG_DONE = 13,		/* B->A: end of run */
	QKD_MSG_ABORT = 14,		/* either: stop, with a reason string */
	QKD_MSG_TEST_REQ = 15,		/* B->A: decoy mode: Bob's Z-basis test bits */
	QKD_MSG_TEST_REPLY = 16,	/* A->B: decoy mode: Alice's Z-basis test bits */
	/* 31 is the channel's AUTH frame (QKD_MSG_AUTH, qkd/channel.h); the
	 * node's own messages start at 32. */
};

#endif
