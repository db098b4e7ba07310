#include "qkd/ec_driver.h"

#include <stdbool.h>

#include "qkd/ec.h"
#include "qkd/error.h"
#include "qkd/msg.h"
#include "qkd/wire.h"

/* One round: Bob's queries for every frame in flight, Alice's answers.
 * Returns 1 after a round trip, 0 when there was nothing to ask. */
static int round_trip(struct qkd_channel *ch, struct qkd_ec_bob *ec, struct qkd_wbuf *msg)
{
	struct qkd_rbuf r;
	int rc;

	qkd_wbuf_reset(msg);
	rc = qkd_ec_bob_request(ec, msg);
	if (rc != 1)
		return rc;	/* 0: nothing to ask this round */
	if (msg->err)
		return msg->err;
	rc = qkd_channel_send(ch, QKD_MSG_EC_REQ, msg->p, msg->len);
	if (rc == QKD_OK)
		rc = qkd_channel_expect(ch, QKD_MSG_EC_REPLY, &r);
	if (rc == QKD_OK)
		rc = qkd_ec_bob_reply(ec, &r);
	return rc == QKD_OK ? 1 : rc;
}

int qkd_ec_drive_bob(struct qkd_channel *ch, struct qkd_ec_bob_driver *d,
		     const struct qkd_bits *frames, size_t n)
{
	struct qkd_ec_bob *ec = NULL;
	struct qkd_wbuf msg;
	size_t next = 0, inflight = 0, done = 0;
	int rc;

	qkd_wbuf_init(&msg);
	rc = qkd_ec_bob_new(&ec, d->code, d->rng);
	while (rc == QKD_OK && done < n) {
		struct qkd_bits out;
		uint64_t id, disclosed, corrected;
		bool progress;

		while (rc == QKD_OK && next < n && inflight < d->window) {
			rc = qkd_ec_bob_add_frame(ec, next, &frames[next], d->qber_estimate(d->ctx));
			next++;
			inflight++;
		}
		if (rc == QKD_OK)
			rc = round_trip(ch, ec, &msg);
		progress = rc == 1;
		if (rc == 1) {
			d->round_trips++;
			rc = QKD_OK;
		}
		while (rc == QKD_OK &&
		       (rc = qkd_ec_bob_take_done(ec, &id, &out, &disclosed, &corrected)) == 1) {
			rc = d->done(d->ctx, id, &out, disclosed, corrected);
			inflight--;
			done++;
			progress = true;
		}
		if (rc == QKD_OK && !progress)
			rc = QKD_ERR_PROTO;	/* nothing asked, nothing finished: never spin */
	}
	qkd_ec_bob_free(ec);
	qkd_wbuf_cleanup(&msg);
	return rc;
}
