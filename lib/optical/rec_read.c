/* rec_read.c - the readers of the `file` optical backend (qkd/recording.h,
 * docs/recording-format.md).
 *
 * Every byte comes in with pread and is parsed with the bounded reader of
 * qkd/wire.h. Nothing is trusted before its digest is checked, and no
 * allocation exceeds what both the header and the file size allow: Alice's
 * file must be exactly as long as her header declares; Bob's blocks are
 * bounded by the header's events per block and by the bytes left in the
 * file.
 */
#include "qkd/recording.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/secret.h"
#include "qkd/wire.h"

#define PLANES_MAX 4
#define NO_BLOCK UINT64_MAX
/* Largest payload of a Bob block: a 10-byte varint and 3 bits per event. */
#define BOB_PAYLOAD_MAX(n) ((size_t)(n) * 10 + 3 * (((size_t)(n) + 7) / 8))

const uint8_t qkd_rec_alice_magic[QKD_REC_MAGIC_BYTES] = {0x89, 'Q', 'K', 'D', 'r', 'e', 'c', 'A'};
const uint8_t qkd_rec_bob_magic[QKD_REC_MAGIC_BYTES] = {0x89, 'Q', 'K', 'D', 'r', 'e', 'c', 'B'};

struct qkd_rec_alice {
	int fd;
	struct qkd_rec_info info;
	unsigned planes;
	size_t block_slots;
	uint64_t blocks;
	uint64_t block_bytes;	/* a full block on disk, digest included */
	uint64_t cached;	/* block held in plane[], NO_BLOCK if none */
	size_t cached_n;	/* its slots */
	size_t block_slots_held;	/* bits allocated per plane */
	size_t buf_len;		/* bytes allocated for buf */
	struct qkd_bits plane[PLANES_MAX];	/* block_slots bits each, secret */
	uint8_t *buf;		/* block_bytes, secret */
};

struct qkd_rec_bob {
	int fd;
	struct qkd_rec_info info;
	uint64_t size;		/* of the file */
	uint64_t off;		/* file offset of the next block */
	uint64_t block;		/* index of the next block */
	uint64_t decoded;	/* events decoded so far */
	uint64_t next_slot;	/* the gap base: last slot + 1 */
	uint64_t chunk_end;	/* where the next chunk must start */
	struct qkd_detection *ev;	/* the current block's events, secret */
	size_t ev_n, ev_pos, ev_cap;
	uint8_t *buf;		/* the current block as read, secret */
	size_t buf_cap;
};

static int fail(const char **why, const char *msg, int rc)
{
	if (why != NULL)
		*why = msg;
	return rc;
}

void qkd_rec_digest(uint8_t out[QKD_REC_DIGEST_BYTES], const uint8_t *id, uint64_t index,
		    const uint8_t *p, size_t n)
{
	crypto_generichash_state st;
	uint8_t be[8];

	crypto_generichash_init(&st, NULL, 0, QKD_REC_DIGEST_BYTES);
	if (id != NULL) {
		for (int i = 0; i < 8; i++)
			be[i] = (uint8_t)(index >> (56 - 8 * i));
		crypto_generichash_update(&st, id, QKD_REC_ID_BYTES);
		crypto_generichash_update(&st, be, sizeof be);
	}
	crypto_generichash_update(&st, p, n);
	crypto_generichash_final(&st, out, QKD_REC_DIGEST_BYTES);
}

unsigned qkd_rec_planes(const struct qkd_rec_info *info)
{
	return info->source == QKD_SOURCE_ENTANGLED || info->intensities > 1 ? 4 : 2;
}

void qkd_rec_info_to_link(const struct qkd_rec_info *info, struct qkd_link_params *p)
{
	qkd_link_params_default(p);
	p->source = info->source;
	p->pulses = info->slots;
	p->rate_hz = info->rate_hz;
	p->mu = info->mu[0];
	p->intensities = info->intensities;
	p->mu_decoy[0] = info->mu[1];
	p->mu_decoy[1] = info->mu[2];
	for (int k = 0; k < QKD_INTENSITIES_MAX; k++)
		p->p_intensity[k] = info->p_intensity[k];
	p->p_x = info->p_x;
	p->seed = info->seed;
}

int qkd_rec_info_check(const struct qkd_rec_info *info, const char **why)
{
	struct qkd_link_params p;
	const char *w = NULL;

	if (info->slots < 1 || info->slots > QKD_PULSES_MAX)
		return fail(why, "slot count out of range (1 .. 2^62)", QKD_ERR_RANGE);
	if (info->block_log2 < QKD_REC_BLOCK_LOG2_MIN || info->block_log2 > QKD_REC_BLOCK_LOG2_MAX)
		return fail(why, "block size out of range (2^12 .. 2^24 slots)", QKD_ERR_RANGE);
	if (info->intensities != 1 && info->intensities != 3)
		return fail(why, "the number of intensities must be 1 or 3", QKD_ERR_RANGE);
	if (info->source != QKD_SOURCE_WEAK_COHERENT && info->source != QKD_SOURCE_ENTANGLED)
		return fail(why, "unknown source kind", QKD_ERR_PROTO);
	if (info->intensities == 1 && (info->mu[1] != 0 || info->mu[2] != 0 ||
				       info->p_intensity[0] != 1 || info->p_intensity[1] != 0 ||
				       info->p_intensity[2] != 0))
		return fail(why, "unused intensity fields must be 0 (and p_0 1)", QKD_ERR_PROTO);
	if (!(info->flags & QKD_REC_F_SIMULATED) && info->seed != 0)
		return fail(why, "a seed in a recording not made by the simulator", QKD_ERR_PROTO);
	qkd_rec_info_to_link(info, &p);
	if (qkd_link_params_check(&p, &w) != QKD_OK)
		return fail(why, w, QKD_ERR_PROTO);
	return QKD_OK;
}

/* Read up to n bytes at off; *got is what came (short only at end of file). */
static int pread_some(int fd, uint8_t *p, size_t n, uint64_t off, size_t *got)
{
	*got = 0;
	while (*got < n) {
		ssize_t k = pread(fd, p + *got, n - *got, (off_t)(off + *got));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return QKD_ERR_IO;
		if (k == 0)
			break;
		*got += (size_t)k;
	}
	return QKD_OK;
}

/* Exactly n bytes at off, or a clear error. */
static int pread_exact(int fd, uint8_t *p, size_t n, uint64_t off, const char **why)
{
	size_t got;

	if (pread_some(fd, p, n, off, &got) != QKD_OK)
		return fail(why, strerror(errno), QKD_ERR_IO);
	if (got < n)
		return fail(why, "truncated: the file ends inside a block", QKD_ERR_PROTO);
	return QKD_OK;
}

static int file_size(int fd, uint64_t *size, const char **why)
{
	struct stat sb;

	if (fstat(fd, &sb) != 0)
		return fail(why, strerror(errno), QKD_ERR_IO);
	if (!S_ISREG(sb.st_mode) || sb.st_size < 0)
		return fail(why, "not a regular file", QKD_ERR_IO);
	*size = (uint64_t)sb.st_size;
	return QKD_OK;
}

/* Read a header of len bytes and check the parts both files share: magic
 * (the other party's is named), version, header length, digest. */
static int read_header(int fd, uint8_t *h, size_t len, bool alice, struct qkd_rbuf *rb,
		       const char **why)
{
	const uint8_t *mine = alice ? qkd_rec_alice_magic : qkd_rec_bob_magic;
	const uint8_t *theirs = alice ? qkd_rec_bob_magic : qkd_rec_alice_magic;
	uint8_t d[QKD_REC_DIGEST_BYTES];
	size_t got;

	if (pread_some(fd, h, len, 0, &got) != QKD_OK)
		return fail(why, strerror(errno), QKD_ERR_IO);
	if (got >= QKD_REC_MAGIC_BYTES && memcmp(h, theirs, QKD_REC_MAGIC_BYTES) == 0)
		return fail(why, alice ? "this is Bob's recording, not Alice's"
				       : "this is Alice's recording, not Bob's", QKD_ERR_PROTO);
	if (got < QKD_REC_MAGIC_BYTES || memcmp(h, mine, QKD_REC_MAGIC_BYTES) != 0)
		return fail(why, "not a qkdnet recording (bad magic number)", QKD_ERR_PROTO);
	if (got < len)
		return fail(why, "truncated: shorter than its header", QKD_ERR_PROTO);
	qkd_rbuf_init(rb, h, len);
	(void)qkd_get_bytes(rb, QKD_REC_MAGIC_BYTES);
	if (qkd_get_u16(rb) != QKD_REC_VERSION)
		return fail(why, "unsupported format version (this reader knows version 1)",
			    QKD_ERR_PROTO);
	if (qkd_get_u16(rb) != len)
		return fail(why, "malformed header (wrong header length)", QKD_ERR_PROTO);
	qkd_rec_digest(d, NULL, 0, h, len - QKD_REC_DIGEST_BYTES);
	if (!qkd_ct_equal(d, h + len - QKD_REC_DIGEST_BYTES, sizeof d))
		return fail(why, "header checksum mismatch: the file is corrupted", QKD_ERR_VERIFY);
	return QKD_OK;
}

static int check_flags(uint8_t flags, uint8_t known, const char **why)
{
	if (flags & ~known)
		return fail(why, "unknown header flags (a newer writer?)", QKD_ERR_PROTO);
	if (!(flags & QKD_REC_F_COMPLETE))
		return fail(why, "incomplete recording: the writer did not finish", QKD_ERR_PROTO);
	return QKD_OK;
}

static int parse_alice_header(int fd, struct qkd_rec_info *i, const char **why)
{
	uint8_t h[QKD_REC_ALICE_HEADER];
	struct qkd_rbuf rb;
	int rc = read_header(fd, h, sizeof h, true, &rb, why);

	if (rc != QKD_OK)
		return rc;
	memset(i, 0, sizeof *i);
	i->flags = qkd_get_u8(&rb);
	i->source = (enum qkd_source_kind)qkd_get_u8(&rb);
	i->intensities = qkd_get_u8(&rb);
	i->block_log2 = qkd_get_u8(&rb);
	i->slots = qkd_get_u64(&rb);
	i->rate_hz = qkd_get_double(&rb);
	for (int k = 0; k < QKD_INTENSITIES_MAX; k++)
		i->mu[k] = qkd_get_double(&rb);
	for (int k = 0; k < QKD_INTENSITIES_MAX; k++)
		i->p_intensity[k] = qkd_get_double(&rb);
	i->p_x = qkd_get_double(&rb);
	i->seed = qkd_get_u64(&rb);
	qkd_get_copy(&rb, i->id, QKD_REC_ID_BYTES);
	(void)qkd_get_bytes(&rb, QKD_REC_DIGEST_BYTES);
	if (!qkd_rbuf_done(&rb))
		return fail(why, "malformed header", QKD_ERR_PROTO);
	rc = check_flags(i->flags, QKD_REC_F_COMPLETE | QKD_REC_F_SIMULATED, why);
	return rc == QKD_OK ? qkd_rec_info_check(i, why) : rc;
}

/* Block geometry from the header, every product checked, and the file size
 * it implies compared with the real one. */
static int alice_geometry(struct qkd_rec_alice *r, uint64_t size, const char **why)
{
	uint64_t full, last, total;

	r->planes = qkd_rec_planes(&r->info);
	r->block_slots = (size_t)1 << r->info.block_log2;
	r->blocks = (r->info.slots + r->block_slots - 1) / r->block_slots;
	/* slots <= 2^62 and planes <= 4: no product below can overflow 2^64,
	 * but each is checked so the bound is local. */
	r->block_bytes = r->planes * (r->block_slots / 8) + QKD_REC_DIGEST_BYTES;
	last = r->info.slots - (r->blocks - 1) * r->block_slots;
	if (r->blocks - 1 > (UINT64_MAX - QKD_REC_ALICE_HEADER) / r->block_bytes)
		return fail(why, "slot count too large for a file", QKD_ERR_RANGE);
	full = (r->blocks - 1) * r->block_bytes + QKD_REC_ALICE_HEADER;
	total = full + r->planes * ((last + 7) / 8) + QKD_REC_DIGEST_BYTES;
	if (total < full)
		return fail(why, "slot count too large for a file", QKD_ERR_RANGE);
	if (size < total)
		return fail(why, "truncated: shorter than its header declares", QKD_ERR_PROTO);
	if (size > total)
		return fail(why, "trailing bytes after the last block", QKD_ERR_PROTO);
	r->block_slots_held = r->block_slots;
	r->buf_len = (size_t)r->block_bytes;
	return QKD_OK;
}

int qkd_rec_alice_open_fd(struct qkd_rec_alice **out, int fd, const char **why)
{
	struct qkd_rec_alice *r = calloc(1, sizeof *r);
	uint64_t size = 0;
	int rc;

	*out = NULL;
	if (r == NULL) {
		close(fd);
		return fail(why, "out of memory", QKD_ERR_NOMEM);
	}
	r->fd = fd;
	r->cached = NO_BLOCK;
	rc = file_size(fd, &size, why);
	if (rc == QKD_OK)
		rc = parse_alice_header(fd, &r->info, why);
	if (rc == QKD_OK)
		rc = alice_geometry(r, size, why);
	/* A file of one block holds only the (short) last one: size the
	 * buffers by what is there, not by the declared block size. */
	if (rc == QKD_OK && r->blocks == 1) {
		r->block_slots_held = (size_t)r->info.slots;
		r->buf_len = size - QKD_REC_ALICE_HEADER;
	}
	for (unsigned k = 0; rc == QKD_OK && k < r->planes; k++)
		if ((rc = qkd_bits_init(&r->plane[k], r->block_slots_held)) != QKD_OK)
			rc = fail(why, "out of memory", rc);
	if (rc == QKD_OK && (r->buf = malloc(r->buf_len)) == NULL)
		rc = fail(why, "out of memory", QKD_ERR_NOMEM);
	if (rc != QKD_OK)
		qkd_rec_alice_free(r);
	else
		*out = r;
	return rc;
}

int qkd_rec_alice_open(struct qkd_rec_alice **out, const char *path, const char **why)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*out = NULL;
	if (fd < 0)
		return fail(why, strerror(errno), QKD_ERR_IO);
	return qkd_rec_alice_open_fd(out, fd, why);
}

const struct qkd_rec_info *qkd_rec_alice_info(const struct qkd_rec_alice *r)
{
	return &r->info;
}

void qkd_rec_alice_free(struct qkd_rec_alice *r)
{
	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);
	for (unsigned k = 0; k < PLANES_MAX; k++)
		qkd_bits_cleanup(&r->plane[k]);
	qkd_free_secret(r->buf, r->buf_len);
	free(r);
}

/* The padding bits beyond n in a plane's last byte must be zero. */
static bool padding_clean(const uint8_t *p, size_t n)
{
	return n % 8 == 0 || (p[n / 8] >> (n % 8)) == 0;
}

/* Per-slot rules over the loaded block: entangled, a value or double click
 * only where she detected; decoys, no intensity index 3. */
static bool alice_rules_hold(const struct qkd_rec_alice *r, size_t n)
{
	uint64_t bad = 0;

	if (r->planes < 4)
		return true;
	for (size_t i = 0; i < qkd_bits_words(n); i++) {
		const uint64_t v = r->plane[1].w[i], a = r->plane[2].w[i], b = r->plane[3].w[i];

		bad |= r->info.source == QKD_SOURCE_ENTANGLED ? (v | b) & ~a : a & b;
	}
	return bad == 0;
}

/* Make block j the cached one: read, check the digest, decode, check. */
static int alice_load(struct qkd_rec_alice *r, uint64_t j, const char **why)
{
	size_t n, nb, len;
	uint8_t d[QKD_REC_DIGEST_BYTES];
	struct qkd_rbuf rb;
	int rc;

	if (j == r->cached)
		return QKD_OK;
	r->cached = NO_BLOCK;
	n = j + 1 < r->blocks ? r->block_slots : (size_t)(r->info.slots - j * r->block_slots);
	nb = (n + 7) / 8;
	len = r->planes * nb + QKD_REC_DIGEST_BYTES;
	rc = pread_exact(r->fd, r->buf, len, QKD_REC_ALICE_HEADER + j * r->block_bytes, why);
	if (rc != QKD_OK)
		return rc;
	qkd_rec_digest(d, r->info.id, j, r->buf, len - QKD_REC_DIGEST_BYTES);
	if (!qkd_ct_equal(d, r->buf + len - QKD_REC_DIGEST_BYTES, sizeof d))
		return fail(why, "block checksum mismatch: the file is corrupted", QKD_ERR_VERIFY);
	qkd_rbuf_init(&rb, r->buf, len);
	for (unsigned k = 0; k < r->planes; k++) {
		const uint8_t *p = qkd_get_bytes(&rb, nb);
		struct qkd_bits view = {r->plane[k].w, n};

		if (p == NULL || !padding_clean(p, n))
			return fail(why, "malformed block (padding bits set)", QKD_ERR_PROTO);
		qkd_bits_from_bytes(&view, p);
	}
	if (!alice_rules_hold(r, n))
		return fail(why, "malformed block (a value, double click or intensity "
			    "that cannot be)", QKD_ERR_PROTO);
	r->cached = j;
	r->cached_n = n;
	return QKD_OK;
}

int qkd_rec_alice_verify(struct qkd_rec_alice *r, const char **why)
{
	int rc = QKD_OK;

	for (uint64_t j = 0; rc == QKD_OK && j < r->blocks; j++)
		rc = alice_load(r, j, why);
	return rc;
}

static int check_slots(const struct qkd_rec_alice *r, const uint64_t *slots, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (slots[i] >= r->info.slots)
			return QKD_ERR_RANGE;
		if (i > 0 && slots[i] <= slots[i - 1])
			return QKD_ERR_INVAL;
	}
	return QKD_OK;
}

int qkd_rec_alice_lookup(struct qkd_rec_alice *r, const uint64_t *slots, size_t n,
			 struct qkd_detection *out)
{
	bool spdc = r->info.source == QKD_SOURCE_ENTANGLED;
	int rc = check_slots(r, slots, n);

	for (size_t i = 0; rc == QKD_OK && i < n; i++) {
		size_t at = (size_t)(slots[i] & (r->block_slots - 1));
		unsigned a, b;

		rc = alice_load(r, slots[i] >> r->info.block_log2, NULL);
		if (rc != QKD_OK)
			break;
		a = r->planes > 2 ? qkd_bits_get(&r->plane[2], at) : 0;
		b = r->planes > 2 ? qkd_bits_get(&r->plane[3], at) : 0;
		out[i].slot = slots[i];
		out[i].basis = (uint8_t)qkd_bits_get(&r->plane[0], at);
		out[i].value = (uint8_t)qkd_bits_get(&r->plane[1], at);
		out[i].flags = !spdc ? 0 : !a ? QKD_DET_NONE : b ? QKD_DET_DOUBLE : 0;
		out[i].intensity = spdc ? 0 : (uint8_t)(a | b << 1);
	}
	return rc;
}

int qkd_rec_alice_choices(struct qkd_rec_alice *r, uint64_t first, uint64_t count,
			  struct qkd_bits *basis, struct qkd_bits *value)
{
	bool spdc = r->info.source == QKD_SOURCE_ENTANGLED;
	uint64_t done = 0;
	int rc = QKD_OK;

	if (first > r->info.slots || count > r->info.slots - first)
		return QKD_ERR_RANGE;
	if (basis->n < count || value->n < count)
		return QKD_ERR_INVAL;
	while (rc == QKD_OK && done < count) {
		uint64_t slot = first + done;
		size_t at = (size_t)(slot & (r->block_slots - 1)), take;

		rc = alice_load(r, slot >> r->info.block_log2, NULL);
		if (rc != QKD_OK)
			break;
		take = r->cached_n - at;
		if (take > count - done)
			take = (size_t)(count - done);
		qkd_bits_copy_range(basis, (size_t)done, &r->plane[0], at, take);
		if (!spdc)
			qkd_bits_copy_range(value, (size_t)done, &r->plane[1], at, take);
		done += take;
	}
	return rc;
}

/* ---- Bob ---- */

static int parse_bob_header(int fd, struct qkd_rec_info *i, const char **why)
{
	uint8_t h[QKD_REC_BOB_HEADER];
	struct qkd_rbuf rb;
	const uint8_t *zero3, *zero4;
	int rc = read_header(fd, h, sizeof h, false, &rb, why);

	if (rc != QKD_OK)
		return rc;
	memset(i, 0, sizeof *i);
	i->flags = qkd_get_u8(&rb);
	zero3 = qkd_get_bytes(&rb, 3);
	i->slots = qkd_get_u64(&rb);
	i->detections = qkd_get_u64(&rb);
	i->block_events = qkd_get_u32(&rb);
	zero4 = qkd_get_bytes(&rb, 4);
	qkd_get_copy(&rb, i->id, QKD_REC_ID_BYTES);
	(void)qkd_get_bytes(&rb, QKD_REC_DIGEST_BYTES);
	if (!qkd_rbuf_done(&rb) || (zero3[0] | zero3[1] | zero3[2]) != 0 ||
	    (zero4[0] | zero4[1] | zero4[2] | zero4[3]) != 0)
		return fail(why, "malformed header (reserved bytes set)", QKD_ERR_PROTO);
	rc = check_flags(i->flags, QKD_REC_F_COMPLETE, why);
	if (rc != QKD_OK)
		return rc;
	if (i->slots < 1 || i->slots > QKD_PULSES_MAX)
		return fail(why, "slot count out of range (1 .. 2^62)", QKD_ERR_RANGE);
	if (i->detections > i->slots)
		return fail(why, "more detections than slots", QKD_ERR_RANGE);
	if (i->block_events < 1 || i->block_events > QKD_REC_BLOCK_EVENTS_MAX)
		return fail(why, "events per block out of range (1 .. 2^20)", QKD_ERR_RANGE);
	return QKD_OK;
}

int qkd_rec_bob_open_fd(struct qkd_rec_bob **out, int fd, const char **why)
{
	struct qkd_rec_bob *r = calloc(1, sizeof *r);
	int rc;

	*out = NULL;
	if (r == NULL) {
		close(fd);
		return fail(why, "out of memory", QKD_ERR_NOMEM);
	}
	r->fd = fd;
	r->off = QKD_REC_BOB_HEADER;
	rc = file_size(fd, &r->size, why);
	if (rc == QKD_OK)
		rc = parse_bob_header(fd, &r->info, why);
	/* Each event takes at least one byte (its gap): a cheap bound that
	 * stops absurd counts before any block is read. */
	if (rc == QKD_OK && r->info.detections > r->size - QKD_REC_BOB_HEADER)
		rc = fail(why, "truncated: too short for the detections it declares",
			  QKD_ERR_PROTO);
	if (rc == QKD_OK && r->info.detections == 0 && r->size != QKD_REC_BOB_HEADER)
		rc = fail(why, "trailing bytes after the last block", QKD_ERR_PROTO);
	if (rc != QKD_OK)
		qkd_rec_bob_free(r);
	else
		*out = r;
	return rc;
}

int qkd_rec_bob_open(struct qkd_rec_bob **out, const char *path, const char **why)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*out = NULL;
	if (fd < 0)
		return fail(why, strerror(errno), QKD_ERR_IO);
	return qkd_rec_bob_open_fd(out, fd, why);
}

const struct qkd_rec_info *qkd_rec_bob_info(const struct qkd_rec_bob *r)
{
	return &r->info;
}

void qkd_rec_bob_free(struct qkd_rec_bob *r)
{
	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);
	qkd_free_secret(r->ev, r->ev_cap * sizeof *r->ev);
	qkd_free_secret(r->buf, r->buf_cap);
	free(r);
}

/* Grow a secret buffer to at least need bytes (old contents dropped). */
static int grow_secret(void **p, size_t *cap, size_t need)
{
	void *np;

	if (need <= *cap)
		return QKD_OK;
	np = malloc(need);
	if (np == NULL)
		return QKD_ERR_NOMEM;
	qkd_free_secret(*p, *cap);
	*p = np;
	*cap = need;
	return QKD_OK;
}

/* Read block r->block (head, payload, digest) into r->buf and check the
 * head against the header and the file; *n and *len are its counts. */
static int bob_read_block(struct qkd_rec_bob *r, size_t *n, size_t *len, const char **why)
{
	uint64_t left = r->info.detections - r->decoded, want, room;
	struct qkd_rbuf rb;
	int rc;

	want = left < r->info.block_events ? left : r->info.block_events;
	room = r->size - r->off;
	if (room < 8)
		return fail(why, "truncated: the file ends before its last block", QKD_ERR_PROTO);
	rc = grow_secret((void **)&r->buf, &r->buf_cap, 8);
	if (rc == QKD_OK)
		rc = pread_exact(r->fd, r->buf, 8, r->off, why);
	if (rc != QKD_OK)
		return rc == QKD_ERR_NOMEM ? fail(why, "out of memory", rc) : rc;
	qkd_rbuf_init(&rb, r->buf, 8);
	*n = qkd_get_u32(&rb);
	*len = qkd_get_u32(&rb);
	if (*n != want || *len > BOB_PAYLOAD_MAX(*n) || *len < *n + 3 * ((*n + 7) / 8))
		return fail(why, "malformed block (event count or length)", QKD_ERR_PROTO);
	if (*len + QKD_REC_DIGEST_BYTES > room - 8)
		return fail(why, "truncated: the file ends inside a block", QKD_ERR_PROTO);
	rc = grow_secret((void **)&r->buf, &r->buf_cap, 8 + *len + QKD_REC_DIGEST_BYTES);
	if (rc != QKD_OK)
		return fail(why, "out of memory", rc);
	/* grow_secret dropped the head: read the whole block again. */
	return pread_exact(r->fd, r->buf, 8 + *len + QKD_REC_DIGEST_BYTES, r->off, why);
}

/* Decode n events from the payload into r->ev. */
static int bob_decode(struct qkd_rec_bob *r, struct qkd_rbuf *rb, size_t n, const char **why)
{
	const uint8_t *pl[3];
	size_t nb = (n + 7) / 8;
	uint64_t next = r->next_slot;

	for (size_t i = 0; i < n; i++) {
		uint64_t gap = qkd_get_varint(rb);

		if (!qkd_rbuf_ok(rb) || gap >= r->info.slots - next)
			return fail(why, "malformed block (a slot beyond the declared slots)",
				    QKD_ERR_PROTO);
		r->ev[i].slot = next + gap;
		next = r->ev[i].slot + 1;
	}
	for (int k = 0; k < 3; k++) {
		pl[k] = qkd_get_bytes(rb, nb);
		if (pl[k] == NULL || !padding_clean(pl[k], n))
			return fail(why, "malformed block (planes or padding)", QKD_ERR_PROTO);
	}
	if (!qkd_rbuf_done(rb))
		return fail(why, "malformed block (bytes after the planes)", QKD_ERR_PROTO);
	for (size_t i = 0; i < n; i++) {
		r->ev[i].basis = (pl[0][i / 8] >> (i % 8)) & 1;
		r->ev[i].value = (pl[1][i / 8] >> (i % 8)) & 1;
		r->ev[i].flags = (pl[2][i / 8] >> (i % 8)) & 1 ? QKD_DET_DOUBLE : 0;
		r->ev[i].intensity = 0;
	}
	r->next_slot = next;
	return QKD_OK;
}

static int bob_load(struct qkd_rec_bob *r, const char **why)
{
	uint8_t d[QKD_REC_DIGEST_BYTES];
	struct qkd_rbuf rb;
	size_t n = 0, len = 0, cap;
	int rc = bob_read_block(r, &n, &len, why);

	if (rc != QKD_OK)
		return rc;
	qkd_rec_digest(d, r->info.id, r->block, r->buf, 8 + len);
	if (!qkd_ct_equal(d, r->buf + 8 + len, sizeof d))
		return fail(why, "block checksum mismatch: the file is corrupted", QKD_ERR_VERIFY);
	cap = r->ev_cap * sizeof *r->ev;
	if (grow_secret((void **)&r->ev, &cap, n * sizeof *r->ev) != QKD_OK)
		return fail(why, "out of memory", QKD_ERR_NOMEM);
	r->ev_cap = cap / sizeof *r->ev;
	r->ev_n = r->ev_pos = 0;
	qkd_rbuf_init(&rb, r->buf + 8, len);
	rc = bob_decode(r, &rb, n, why);
	if (rc != QKD_OK)
		return rc;
	r->ev_n = n;
	r->decoded += n;
	r->block++;
	r->off += 8 + len + QKD_REC_DIGEST_BYTES;
	if (r->decoded == r->info.detections && r->off != r->size)
		return fail(why, "trailing bytes after the last block", QKD_ERR_PROTO);
	return QKD_OK;
}

/* Make room for cap entries in l, growing it without realloc so no stale
 * copy of the raw bits is left behind. */
static int list_reserve(struct qkd_det_list *l, size_t cap)
{
	struct qkd_detection *d;

	if (cap <= l->cap)
		return QKD_OK;
	if (cap > SIZE_MAX / sizeof *d)
		return QKD_ERR_NOMEM;
	d = malloc(cap * sizeof *d);
	if (d == NULL)
		return QKD_ERR_NOMEM;
	if (l->n > 0)
		memcpy(d, l->d, l->n * sizeof *d);
	qkd_free_secret(l->d, l->cap * sizeof *l->d);
	qkd_free_secret(l->truth, l->cap * sizeof *l->truth);
	l->truth = NULL;
	l->d = d;
	l->cap = cap;
	return QKD_OK;
}

static int list_push(struct qkd_det_list *l, const struct qkd_detection *e)
{
	if (l->n == l->cap) {
		int rc = list_reserve(l, l->cap ? l->cap * 2 : 1024);

		if (rc != QKD_OK)
			return rc;
	}
	l->d[l->n++] = *e;
	return QKD_OK;
}

/* The most events the chunk can hold: bounded by its slots and by the
 * detections still to come, which open() bounded by the file's size. */
static size_t chunk_events_max(const struct qkd_rec_bob *r, uint64_t count)
{
	uint64_t left = r->info.detections - r->decoded + (r->ev_n - r->ev_pos);

	if (left > count)
		left = count;
	return left > SIZE_MAX / sizeof(struct qkd_detection) ? 0 : (size_t)left;
}

int qkd_rec_bob_chunk(struct qkd_rec_bob *r, uint64_t first, uint64_t count,
		      struct qkd_det_list *out, struct qkd_sim_stats *st)
{
	uint64_t end, dbl = 0;
	int rc = QKD_OK;

	qkd_wipe(out->d, out->n * sizeof *out->d);
	out->n = 0;
	if (first != r->chunk_end)
		return QKD_ERR_INVAL;
	if (count > r->info.slots - first)
		return QKD_ERR_RANGE;
	end = first + count;
	rc = list_reserve(out, chunk_events_max(r, count));
	while (rc == QKD_OK) {
		if (r->ev_pos == r->ev_n) {
			if (r->decoded == r->info.detections)
				break;
			if ((rc = bob_load(r, NULL)) != QKD_OK)
				break;
		}
		if (r->ev[r->ev_pos].slot >= end)
			break;
		dbl += (r->ev[r->ev_pos].flags & QKD_DET_DOUBLE) != 0;
		if ((rc = list_push(out, &r->ev[r->ev_pos++])) != QKD_OK)
			break;
	}
	if (rc != QKD_OK) {
		qkd_wipe(out->d, out->n * sizeof *out->d);
		out->n = 0;
		return rc;
	}
	r->chunk_end = end;
	if (st != NULL) {
		st->slots += count;
		st->clicks += out->n;
		st->double_clicks += dbl;
	}
	return QKD_OK;
}

int qkd_rec_bob_verify(struct qkd_rec_bob *r, const char **why)
{
	int rc = QKD_OK;

	r->off = QKD_REC_BOB_HEADER;
	r->block = r->decoded = r->next_slot = r->chunk_end = 0;
	r->ev_n = r->ev_pos = 0;
	while (rc == QKD_OK && r->decoded < r->info.detections)
		rc = bob_load(r, why);
	r->off = QKD_REC_BOB_HEADER;
	r->block = r->decoded = r->next_slot = r->chunk_end = 0;
	qkd_wipe(r->ev, r->ev_n * sizeof *r->ev);
	r->ev_n = r->ev_pos = 0;
	return rc;
}

/* ---- A recording directory ---- */

static int open_pair(const char *dir, struct qkd_rec_alice **a, struct qkd_rec_bob **b,
		     const char **file, const char **why)
{
	char path[4096];
	int n, rc;

	*file = QKD_REC_ALICE_FILE;
	n = snprintf(path, sizeof path, "%s/%s", dir, QKD_REC_ALICE_FILE);
	if (n < 0 || (size_t)n >= sizeof path)
		return fail(why, "directory name too long", QKD_ERR_INVAL);
	rc = qkd_rec_alice_open(a, path, why);
	if (rc != QKD_OK)
		return rc;
	*file = QKD_REC_BOB_FILE;
	n = snprintf(path, sizeof path, "%s/%s", dir, QKD_REC_BOB_FILE);
	if (n < 0 || (size_t)n >= sizeof path)
		return fail(why, "directory name too long", QKD_ERR_INVAL);
	return qkd_rec_bob_open(b, path, why);
}

int qkd_rec_check_dir(const char *dir, struct qkd_rec_info *info, const char **file,
		      const char **why)
{
	struct qkd_rec_alice *a = NULL;
	struct qkd_rec_bob *b = NULL;
	int rc = open_pair(dir, &a, &b, file, why);

	if (rc == QKD_OK) {
		*file = QKD_REC_ALICE_FILE;
		rc = qkd_rec_alice_verify(a, why);
	}
	if (rc == QKD_OK) {
		*file = QKD_REC_BOB_FILE;
		rc = qkd_rec_bob_verify(b, why);
	}
	if (rc == QKD_OK && (memcmp(qkd_rec_alice_info(a)->id, qkd_rec_bob_info(b)->id,
				    QKD_REC_ID_BYTES) != 0 ||
			     qkd_rec_alice_info(a)->slots != qkd_rec_bob_info(b)->slots))
		rc = fail(why, "Alice's and Bob's files are not from the same recording",
			  QKD_ERR_PROTO);
	if (rc == QKD_OK)
		*info = *qkd_rec_alice_info(a);
	qkd_rec_alice_free(a);
	qkd_rec_bob_free(b);
	return rc;
}
