/* libFuzzer target: a relay agent (lib/relay/relay.c, relay_key.c,
 * qkd/relay.h) fed messages from its neighbours. The input is a sequence
 * of messages: u8 neighbour index (mod 3), u8 type, u16 length (big
 * endian), then that many body bytes; a type of 0 ticks the clock instead.
 * The agent is node B of a line A - B - C, links up, SAE_B local, with a
 * pool of pad bits per link that refuses bits already used.
 *
 * Checks besides not crashing, leaking or reading out of bounds: receive
 * returns 0 or a negative code with a reason; a key is never delivered
 * under one key_ID with different bits; done is called at most once per
 * key started (none here: B starts no relay, so any done is a bug).
 */
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static double clock_s;
static uint8_t used[2][8192];		/* pad bytes used per neighbour (A, C) */
static uint8_t kept_id[16], kept_key[8192];
static uint32_t kept_bits;

static int f_send(void *c, const char *nb, uint8_t type, const uint8_t *b, size_t n)
{
	(void)c;
	(void)nb;
	(void)type;
	(void)b;
	(void)n;
	return QKD_OK;
}

static int f_take(void *c, const char *nb, uint32_t nbits, uint8_t *pad,
		  struct qkd_store_seg *segs, size_t *n_pad, const char **why)
{
	(void)c;
	(void)nb;
	*why = "the fuzzed node cuts no pads";
	(void)nbits;
	(void)pad;
	(void)segs;
	(void)n_pad;
	return QKD_ERR_RANGE;
}

static int f_use(void *c, const char *nb, const struct qkd_store_seg *segs, size_t n_pad,
		 uint8_t *pad, uint32_t nbits, const char **why)
{
	int k = strcmp(nb, "A") == 0 ? 0 : 1;
	uint64_t o = 0;

	(void)c;
	for (size_t i = 0; i < n_pad; i++)
		if (segs[i].offset % 8 != 0 || segs[i].nbits % 8 != 0 ||
		    segs[i].offset / 8 + segs[i].nbits / 8 > sizeof used[k]) {
			*why = "outside the pool";
			return QKD_ERR_INVAL;
		}
	for (size_t i = 0; i < n_pad; i++)
		for (uint64_t b = segs[i].offset / 8; b < (segs[i].offset + segs[i].nbits) / 8; b++)
			if (used[k][b]) {
				*why = "spent";
				return QKD_ERR_INVAL;
			}
	for (size_t i = 0; i < n_pad; i++)
		for (uint64_t b = segs[i].offset / 8; b < (segs[i].offset + segs[i].nbits) / 8; b++) {
			used[k][b] = 1;
			pad[o++] = (uint8_t)(b * 131 + (uint64_t)k);
		}
	if (o * 8 != nbits)
		abort();
	return QKD_OK;
}

static int f_deliver(void *c, const uint8_t id[16], const char *m, const char *s, const char *src,
		     const uint8_t *key, uint32_t nbits, const char **why)
{
	(void)c;
	(void)m;
	(void)s;
	(void)src;
	(void)why;
	if (kept_bits != 0 && memcmp(id, kept_id, 16) == 0 &&
	    (kept_bits != nbits || memcmp(key, kept_key, nbits / 8) != 0))
		return QKD_ERR_VERIFY;	/* what the node's inbox answers */
	memcpy(kept_id, id, 16);
	memcpy(kept_key, key, nbits / 8);
	kept_bits = nbits;
	return QKD_OK;
}

static void f_done(void *c, const uint8_t id[16], int rc, const char *why, unsigned s, unsigned h)
{
	(void)c;
	(void)id;
	(void)rc;
	(void)why;
	(void)s;
	(void)h;
	abort();	/* B started nothing */
}

static double f_now(void *c)
{
	(void)c;
	return clock_s;
}

static int f_withdraw(void *c, const uint8_t key_id[16], const char *source, bool *found,
		      const char **why)
{
	(void)c;
	(void)key_id;
	(void)source;
	(void)why;
	*found = false;
	return QKD_OK;
}

static const struct qkd_relay_ops ops = { f_send, f_take, f_use, f_deliver, f_done, f_now,
					  f_withdraw };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const nbs[] = { "A", "C" }, *const saes[] = { "SAE_B" };
	static const char *const from[] = { "A", "C", "Z" };
	struct qkd_relay_config c;
	struct qkd_relay *r = NULL;
	size_t off = 0;

	memset(used, 0, sizeof used);
	kept_bits = 0;
	clock_s = 0;
	qkd_relay_config_default(&c);
	c.self = "B";
	c.neighbours = nbs;
	c.n_neighbours = 2;
	c.saes = saes;
	c.n_saes = 1;
	c.ops = &ops;
	c.relays_max = 4;
	if (qkd_relay_new(&c, &r) != QKD_OK)
		abort();
	(void)qkd_relay_link_up(r, "A", true);
	(void)qkd_relay_link_up(r, "C", true);
	while (off + 4 <= size) {
		uint8_t who = data[off] % 3, type = data[off + 1];
		size_t n = (size_t)data[off + 2] << 8 | data[off + 3];
		const char *why = NULL;
		int rc;

		off += 4;
		if (n > size - off)
			n = size - off;
		if (type == 0) {
			clock_s += 0.5;
			qkd_relay_tick(r);
			continue;
		}
		rc = qkd_relay_receive(r, from[who], type, data + off, n, &why);
		if (rc > 0 || (rc != QKD_OK && why == NULL))
			abort();
		off += n;
	}
	qkd_relay_free(r);
	return 0;
}
