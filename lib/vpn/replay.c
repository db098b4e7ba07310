/* replay.c - the ESP anti-replay window (qkd/replay.h): RFC 6479 ring of
 * 64-bit blocks, RFC 4303 Appendix A.2 inference of the high 32 bits of an
 * extended sequence number. lib/vpn/esp_packet.c calls check before the ICV
 * and update after it. */
#include "qkd/replay.h"

#include <string.h>

_Static_assert(QKD_REPLAY_WINDOW >= 1024, "issue 14 asks for a window of >= 1024 packets");
_Static_assert((QKD_REPLAY_BLOCKS & (QKD_REPLAY_BLOCKS - 1)) == 0, "blocks: a power of two");
_Static_assert((uint64_t)QKD_REPLAY_BLOCKS * 64 >= QKD_REPLAY_WINDOW + 64,
	       "the ring needs one spare block beyond the window");

void qkd_replay_init(struct qkd_replay *r, bool esn)
{
	memset(r, 0, sizeof *r);
	r->esn = esn;
}

/* RFC 4303 A.2: the receiver's top T = Th:Tl and window W place a received
 * Seql either in Th's 2^32 span or in the next (or, early in a span, the
 * previous) one. Returns false when the inferred high half would leave the
 * 64-bit space (before the first packet or after the last). */
static bool infer_high(uint64_t top, uint32_t seql, uint64_t *seq)
{
	const uint32_t w = QKD_REPLAY_WINDOW;
	uint32_t tl = (uint32_t)top, th = (uint32_t)(top >> 32);
	uint32_t bottom = tl - w + 1;	/* mod 2^32 by design in case B */
	uint64_t sh;

	if (tl >= w - 1) {	/* case A: the window lies inside one span */
		if (seql >= bottom)
			sh = th;
		else if (th == UINT32_MAX)
			return false;	/* would need a 2^64th packet */
		else
			sh = (uint64_t)th + 1;
	} else {		/* case B: the window straddles the span below */
		if (seql >= bottom) {
			if (th == 0)
				return false;	/* before sequence number 1 */
			sh = (uint64_t)th - 1;
		} else {
			sh = th;
		}
	}
	*seq = sh << 32 | seql;
	return true;
}

static bool seen(const struct qkd_replay *r, uint64_t seq)
{
	uint64_t block = r->ring[(seq >> 6) & (QKD_REPLAY_BLOCKS - 1)];

	return (block >> (seq & 63)) & 1;
}

/* Refuse 0, anything a full window or more behind the top, and duplicates. */
static bool acceptable(const struct qkd_replay *r, uint64_t seq)
{
	if (seq == 0)
		return false;
	if (seq > r->top)
		return true;
	if (r->top - seq >= QKD_REPLAY_WINDOW)
		return false;
	return !seen(r, seq);
}

int qkd_replay_check(const struct qkd_replay *r, uint32_t seq_low, uint64_t *seq)
{
	uint64_t s = seq_low;

	if (r->esn && !infer_high(r->top, seq_low, &s))
		return QKD_ERR_ABORT;
	if (!acceptable(r, s))
		return QKD_ERR_ABORT;
	*seq = s;
	return QKD_OK;
}

int qkd_replay_update(struct qkd_replay *r, uint64_t seq)
{
	uint64_t from, to;

	if (!acceptable(r, seq))
		return QKD_ERR_ABORT;
	if (seq > r->top) {
		/* Clear the blocks the window moves into (all, if it moves by
		 * a whole ring or more): their bits belonged to sequence
		 * numbers now older than the window. */
		from = (r->top >> 6) + 1;
		to = seq >> 6;
		if (to >= from && to - from >= QKD_REPLAY_BLOCKS - 1)
			memset(r->ring, 0, sizeof r->ring);
		else
			for (uint64_t b = from; b <= to; b++)
				r->ring[b & (QKD_REPLAY_BLOCKS - 1)] = 0;
		r->top = seq;
	}
	r->ring[(seq >> 6) & (QKD_REPLAY_BLOCKS - 1)] |= UINT64_C(1) << (seq & 63);
	return QKD_OK;
}
