#include "qkd/rng.h"

#include <string.h>
#include <sodium.h>
#include <sys/random.h>

#include "qkd/error.h"
#include "qkd/secret.h"

static void refill(struct qkd_rng *g)
{
	static const uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];

	memset(g->buf, 0, sizeof g->buf);
	crypto_stream_chacha20_xor_ic(g->buf, g->buf, sizeof g->buf, nonce,
				      g->counter, g->key);
	g->counter += sizeof g->buf / 64;
	g->pos = 0;
}

void qkd_rng_init(struct qkd_rng *g, const uint8_t key[32])
{
	memcpy(g->key, key, sizeof g->key);
	g->counter = 0;
	g->pos = sizeof g->buf;
}

void qkd_rng_init_seed(struct qkd_rng *g, uint64_t seed, const char *label)
{
	crypto_generichash_state st;
	uint8_t key[32], sb[8];

	for (int i = 0; i < 8; i++)
		sb[i] = (uint8_t)(seed >> (56 - 8 * i));
	crypto_generichash_init(&st, NULL, 0, sizeof key);
	crypto_generichash_update(&st, (const uint8_t *)label, strlen(label));
	crypto_generichash_update(&st, sb, sizeof sb);
	crypto_generichash_final(&st, key, sizeof key);
	qkd_rng_init(g, key);
	qkd_wipe(key, sizeof key);
	qkd_wipe(&st, sizeof st);
}

int qkd_rng_init_system(struct qkd_rng *g)
{
	uint8_t key[32];
	size_t got = 0;

	while (got < sizeof key) {
		ssize_t r = getrandom(key + got, sizeof key - got, 0);

		if (r < 0)
			return QKD_ERR_IO;
		got += (size_t)r;
	}
	qkd_rng_init(g, key);
	qkd_wipe(key, sizeof key);
	return QKD_OK;
}

void qkd_rng_cleanup(struct qkd_rng *g)
{
	if (g != NULL)
		qkd_wipe(g, sizeof *g);
}

void qkd_rng_bytes(struct qkd_rng *g, void *out, size_t n)
{
	uint8_t *o = out;

	while (n > 0) {
		size_t take;

		if (g->pos == sizeof g->buf)
			refill(g);
		take = sizeof g->buf - g->pos;
		if (take > n)
			take = n;
		memcpy(o, g->buf + g->pos, take);
		qkd_wipe(g->buf + g->pos, take);
		g->pos += take;
		o += take;
		n -= take;
	}
}

uint64_t qkd_rng_u64(struct qkd_rng *g)
{
	uint64_t v;

	qkd_rng_bytes(g, &v, sizeof v);
	return v;
}

uint64_t qkd_rng_below(struct qkd_rng *g, uint64_t bound)
{
	/* Reject the top (2^64 mod bound) values so every residue is equally likely. */
	uint64_t limit = -bound % bound, v;

	do
		v = qkd_rng_u64(g);
	while (v < limit);
	return v % bound;
}

double qkd_rng_double(struct qkd_rng *g)
{
	return (double)(qkd_rng_u64(g) >> 11) * 0x1.0p-53;
}
