/* mkstore.c - write a key store with known blocks for tests/cli/keys.sh
 * (the `qkd` CLI has no way to write blocks; the node daemon will).
 *
 *   mkstore PATH                  create PATH with the blocks below and describe them
 *   mkstore --empty PATH          create PATH with no block
 *   mkstore --quarantine PATH ID  quarantine block ID as if the peer reported it
 *
 * The blocks (bits from a fixed generator seeded by the id, so every run
 * writes the same store):
 *   id 1      256 bits  final, then all handed out: used
 *   id 2     1001 bits  final, its first 44 bits handed out
 *   id 5       64 bits  pending
 *   id 9      512 bits  final
 *   id 1e12    12 bits  final
 * One 300-bit take consumes block 1 and 44 bits of block 2. For each block
 * one line goes to stdout: "ID WRITTEN EXPORT", the bits written and the
 * bits `qkd keys export ID` must print (handed-out bits as 0; "-" for a
 * used block), both in the export's hex format. Test data, not key.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/keystore.h"

struct spec {
	uint64_t id, nbits;
	int final;
};

static const struct spec specs[] = {
	{ 1, 256, 1 }, { 2, 1001, 1 }, { 5, 64, 0 }, { 9, 512, 1 }, { 1000000000000ull, 12, 1 },
};

#define TAKE_BITS 300
#define MAX_BYTES 128

static void gen(uint64_t id, uint64_t nbits, uint8_t *out)
{
	uint64_t x = id;

	for (uint64_t i = 0; i < (nbits + 7) / 8; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		out[i] = (uint8_t)(x >> 56);
	}
	if (nbits % 8)
		out[nbits / 8] &= (uint8_t)((1u << (nbits % 8)) - 1);
}

static void print_hex(const uint8_t *b, uint64_t nbytes)
{
	for (uint64_t i = 0; i < nbytes; i++)
		printf("%02x", b[i]);
}

static int fail(const char *what, int rc, const char *why)
{
	fprintf(stderr, "mkstore: %s: %s (%s)\n", what, why ? why : "?", qkd_strerror(rc));
	return 1;
}

static int fill(struct qkd_store *s)
{
	uint8_t bits[MAX_BYTES], out[MAX_BYTES];
	struct qkd_store_seg seg[4];
	const char *why = NULL;
	size_t ns = 0;
	int rc;

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		gen(specs[i].id, specs[i].nbits, bits);
		rc = qkd_store_put_pending(s, specs[i].id, bits, specs[i].nbits, &why);
		if (rc == 0 && specs[i].final)
			rc = qkd_store_finalize(s, specs[i].id, &why);
		if (rc != 0)
			return fail("put", rc, why);
	}
	rc = qkd_store_take(s, TAKE_BITS, out, sizeof(out), seg, 4, &ns, &why);
	if (rc != 0)
		return fail("take", rc, why);
	return 0;
}

static void describe(void)
{
	uint8_t bits[MAX_BYTES];

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		uint64_t id = specs[i].id, nbytes = (specs[i].nbits + 7) / 8;

		gen(id, specs[i].nbits, bits);
		printf("%llu ", (unsigned long long)id);
		print_hex(bits, nbytes);
		putchar(' ');
		if (id == 1) {
			printf("-\n");
			continue;
		}
		if (id == 2) {	/* bits 0..43 handed out: 5 zero bytes, 4 bits */
			memset(bits, 0, 5);
			bits[5] &= 0xf0;
		}
		print_hex(bits, nbytes);
		putchar('\n');
	}
}

static int quarantine(const char *path, uint64_t id)
{
	struct qkd_store *s = NULL;
	const char *why = NULL;
	int rc = qkd_store_open(&s, path, &why);

	if (rc == 0)
		rc = qkd_store_quarantine(s, id, &why);
	qkd_store_close(s);
	return rc == 0 ? 0 : fail(path, rc, why);
}

/* mkstore --quarantine PATH ID */
static int damage(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: mkstore %s PATH ID\n", argv[1]);
		return 2;
	}
	return quarantine(argv[2], strtoull(argv[3], NULL, 10));
}

int main(int argc, char **argv)
{
	struct qkd_store *s = NULL;
	const char *why = NULL;
	int empty = argc == 3 && strcmp(argv[1], "--empty") == 0;
	int rc;

	if (argc > 1 && strcmp(argv[1], "--quarantine") == 0)
		return damage(argc, argv);
	if (argc != 2 && !empty) {
		fprintf(stderr, "usage: mkstore [--empty] PATH | --quarantine PATH ID\n");
		return 2;
	}
	rc = qkd_store_open(&s, argv[argc - 1], &why);
	if (rc != 0)
		return fail(argv[argc - 1], rc, why);
	rc = empty ? 0 : fill(s);
	qkd_store_close(s);
	if (rc == 0 && !empty)
		describe();
	return rc;
}
