/* libFuzzer target: the readers of the `file` optical backend
 * (lib/optical/rec_read.c, docs/recording-format.md). The first byte picks
 * the party (bit 0: 0 Alice, 1 Bob) and whether the harness re-signs the
 * file (bit 1): random mutations almost never pass a BLAKE2b digest, so
 * without re-signing the fuzzer would only ever test the digest checks,
 * never the decoding behind them. The rest is the file, served from an
 * anonymous memory file. Whatever the bytes, the reader must refuse or
 * read within bounds: open, verify every block, then look up, list
 * choices or read chunks as the engine would. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qkd/bits.h"
#include "qkd/error.h"
#include "qkd/recording.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Recompute the digests of Alice's header and of every block the header's
 * geometry places inside the buffer. */
static void resign_alice(uint8_t *p, size_t n)
{
	uint64_t slots, bs, bytes, off = QKD_REC_ALICE_HEADER;
	unsigned planes;

	if (n < QKD_REC_ALICE_HEADER)
		return;
	qkd_rec_digest(p + 112, NULL, 0, p, 112);
	if (p[15] < QKD_REC_BLOCK_LOG2_MIN || p[15] > QKD_REC_BLOCK_LOG2_MAX)
		return;
	planes = p[13] == 1 || p[14] > 1 ? 4 : 2;
	slots = be(p + 16, 8);
	bs = (uint64_t)1 << p[15];
	for (uint64_t j = 0; j * bs < slots && off < n; j++) {
		uint64_t k = slots - j * bs < bs ? slots - j * bs : bs;

		bytes = planes * ((k + 7) / 8);
		if (bytes + QKD_REC_DIGEST_BYTES > n - off)
			break;
		qkd_rec_digest(p + off + bytes, p + 96, j, p + off, (size_t)bytes);
		off += bytes + QKD_REC_DIGEST_BYTES;
	}
}

/* The same for Bob: his blocks are found by their own length fields. */
static void resign_bob(uint8_t *p, size_t n)
{
	size_t off = QKD_REC_BOB_HEADER;

	if (n < QKD_REC_BOB_HEADER)
		return;
	qkd_rec_digest(p + 56, NULL, 0, p, 56);
	for (uint64_t j = 0; n - off >= 8; j++) {
		uint64_t len = be(p + off + 4, 4);

		if (len + 8 + QKD_REC_DIGEST_BYTES > n - off)
			break;
		qkd_rec_digest(p + off + 8 + len, p + 40, j, p + off, (size_t)len + 8);
		off += (size_t)len + 8 + QKD_REC_DIGEST_BYTES;
	}
}

static void walk_alice(int fd)
{
	struct qkd_rec_alice *r = NULL;
	struct qkd_detection d[4];
	struct qkd_bits b = {NULL, 0}, v = {NULL, 0};
	uint64_t n, slots[4], count;
	int rc;

	if (qkd_rec_alice_open_fd(&r, fd, NULL) != QKD_OK)
		return;
	/* A failure here is an expected outcome: carry on with what reads. */
	rc = qkd_rec_alice_verify(r, NULL);
	n = qkd_rec_alice_info(r)->slots;
	slots[0] = 0;
	slots[1] = n / 3;
	slots[2] = n / 2;
	slots[3] = n - 1;
	for (size_t i = 0; i < 4; i++)
		if (i == 0 || slots[i] > slots[i - 1])
			rc |= qkd_rec_alice_lookup(r, &slots[i], 1, &d[i]);
	count = n < ((uint64_t)1 << 20) ? n : (uint64_t)1 << 20;
	if (qkd_bits_init(&b, (size_t)count) == QKD_OK && qkd_bits_init(&v, (size_t)count) == QKD_OK)
		rc |= qkd_rec_alice_choices(r, n - count, count, &b, &v);
	qkd_bits_cleanup(&b);
	qkd_bits_cleanup(&v);
	qkd_rec_alice_free(r);
	(void)rc;
}

static void walk_bob(int fd)
{
	struct qkd_rec_bob *r = NULL;
	struct qkd_det_list dl;
	uint64_t n, first = 0;

	if (qkd_rec_bob_open_fd(&r, fd, NULL) != QKD_OK)
		return;
	if (qkd_rec_bob_verify(r, NULL) != QKD_OK)
		first = 0;	/* expected for most inputs; the chunks below still run */
	n = qkd_rec_bob_info(r)->slots;
	qkd_det_list_init(&dl, false);
	/* four chunks, the last one reaching the end */
	for (int k = 1; k <= 4; k++) {
		uint64_t end = k == 4 ? n : n / 4 * (uint64_t)k;

		if (qkd_rec_bob_chunk(r, first, end - first, &dl, NULL) != QKD_OK)
			break;
		first = end;
	}
	qkd_det_list_cleanup(&dl);
	qkd_rec_bob_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;
	bool ok;
	int fd;

	if (size < 1 || size > ((size_t)1 << 20))
		return 0;
	fd = memfd_create("qkdrec", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	buf = malloc(size);
	if (buf == NULL) {
		close(fd);
		return 0;
	}
	memcpy(buf, data + 1, size - 1);
	if (data[0] & 2 && data[0] & 1)
		resign_bob(buf, size - 1);
	else if (data[0] & 2)
		resign_alice(buf, size - 1);
	ok = write(fd, buf, size - 1) == (ssize_t)(size - 1);
	free(buf);
	if (!ok) {
		close(fd);
		return 0;
	}
	if (data[0] % 2 == 0)
		walk_alice(fd);	/* the reader owns fd now */
	else
		walk_bob(fd);
	return 0;
}
