/* rec_write.c - the writers of the `file` optical backend, and the recorder
 * of a simulated link (qkd/recording.h, docs/recording-format.md).
 *
 * Both writers stream: a header marked incomplete, then each block as soon
 * as it is full, then the header again, complete, at finish. Block buffers
 * hold raw key bits and are wiped.
 */
#include "qkd/recording.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/secret.h"
#include "qkd/sysutil.h"
#include "qkd/wire.h"

#define PLANES_MAX 4

struct qkd_rec_alice_writer {
	int fd;
	struct qkd_rec_info info;
	unsigned planes;
	size_t block_slots;
	uint64_t added;		/* slots added so far */
	uint64_t block;		/* index of the block being filled */
	size_t fill;		/* slots in it */
	struct qkd_bits plane[PLANES_MAX];	/* block_slots bits each, secret */
	struct qkd_wbuf out;	/* one serialized block, secret */
};

struct qkd_rec_bob_writer {
	int fd;
	struct qkd_rec_info info;
	uint64_t next;		/* the lowest slot the next event may have */
	uint64_t events, block;
	size_t fill;		/* events in the block being filled */
	struct qkd_wbuf gaps;	/* its slot gaps, as varints */
	struct qkd_bits basis, value, dbl;	/* block_events bits each, secret */
	struct qkd_wbuf out;	/* secret */
};

static int fail(const char **why, const char *msg, int rc)
{
	if (why != NULL)
		*why = msg;
	return rc;
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, off_t off)
{
	while (n > 0) {
		ssize_t k = pwrite(fd, p, n, off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return QKD_ERR_IO;
		p += k;
		n -= (size_t)k;
		off += k;
	}
	return QKD_OK;
}

static void put_digest(struct qkd_wbuf *w, size_t start, const uint8_t *id, uint64_t index)
{
	uint8_t d[QKD_REC_DIGEST_BYTES];

	if (w->err)
		return;
	qkd_rec_digest(d, id, index, w->p + start, w->len - start);
	qkd_put_bytes(w, d, sizeof d);
}

/* docs/recording-format.md, "Alice's header". */
static void put_alice_header(struct qkd_wbuf *w, const struct qkd_rec_info *i, uint8_t flags)
{
	qkd_put_bytes(w, qkd_rec_alice_magic, QKD_REC_MAGIC_BYTES);
	qkd_put_u16(w, QKD_REC_VERSION);
	qkd_put_u16(w, QKD_REC_ALICE_HEADER);
	qkd_put_u8(w, flags);
	qkd_put_u8(w, (uint8_t)i->source);
	qkd_put_u8(w, (uint8_t)i->intensities);
	qkd_put_u8(w, (uint8_t)i->block_log2);
	qkd_put_u64(w, i->slots);
	qkd_put_double(w, i->rate_hz);
	for (int k = 0; k < QKD_INTENSITIES_MAX; k++)
		qkd_put_double(w, i->mu[k]);
	for (int k = 0; k < QKD_INTENSITIES_MAX; k++)
		qkd_put_double(w, i->p_intensity[k]);
	qkd_put_double(w, i->p_x);
	qkd_put_u64(w, i->seed);
	qkd_put_bytes(w, i->id, QKD_REC_ID_BYTES);
	put_digest(w, 0, NULL, 0);
}

/* docs/recording-format.md, "Bob's header". */
static void put_bob_header(struct qkd_wbuf *w, const struct qkd_rec_info *i, uint8_t flags)
{
	static const uint8_t zero[4];

	qkd_put_bytes(w, qkd_rec_bob_magic, QKD_REC_MAGIC_BYTES);
	qkd_put_u16(w, QKD_REC_VERSION);
	qkd_put_u16(w, QKD_REC_BOB_HEADER);
	qkd_put_u8(w, flags);
	qkd_put_bytes(w, zero, 3);
	qkd_put_u64(w, i->slots);
	qkd_put_u64(w, i->detections);
	qkd_put_u32(w, i->block_events);
	qkd_put_bytes(w, zero, 4);
	qkd_put_bytes(w, i->id, QKD_REC_ID_BYTES);
	put_digest(w, 0, NULL, 0);
}

/* Write a header at offset 0 (at creation and again at finish). */
static int write_header(int fd, const struct qkd_rec_info *i, bool alice, uint8_t flags)
{
	struct qkd_wbuf w;
	int rc;

	qkd_wbuf_init(&w);
	if (alice)
		put_alice_header(&w, i, flags);
	else
		put_bob_header(&w, i, flags);
	rc = w.err ? w.err : pwrite_all(fd, w.p, w.len, 0);
	qkd_wbuf_cleanup(&w);
	return rc;
}

static int create_file(const char *path, int *fd, const char **why)
{
	*fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (*fd < 0)
		return fail(why, strerror(errno), QKD_ERR_IO);
	return QKD_OK;
}

/* Close, reporting a failed close (a full disk shows up here on NFS). */
static int close_file(int *fd, const char **why)
{
	int rc = QKD_OK;

	if (*fd >= 0 && close(*fd) != 0)
		rc = fail(why, strerror(errno), QKD_ERR_IO);
	*fd = -1;
	return rc;
}

int qkd_rec_alice_writer_new(struct qkd_rec_alice_writer **out, const char *path,
			     const struct qkd_rec_info *info, const char **why)
{
	struct qkd_rec_alice_writer *w = NULL;
	int rc;

	*out = NULL;
	w = calloc(1, sizeof *w);
	if (w == NULL)
		return fail(why, "out of memory", QKD_ERR_NOMEM);
	w->fd = -1;
	w->info = *info;
	w->info.flags = info->flags & QKD_REC_F_SIMULATED;
	if (w->info.block_log2 == 0)
		w->info.block_log2 = QKD_REC_BLOCK_LOG2_DEFAULT;
	w->info.block_events = 0;
	w->info.detections = 0;
	qkd_wbuf_init_secret(&w->out);
	rc = qkd_rec_info_check(&w->info, why);
	if (rc != QKD_OK)
		goto out;
	w->planes = qkd_rec_planes(&w->info);
	w->block_slots = (size_t)1 << w->info.block_log2;
	for (unsigned k = 0; rc == QKD_OK && k < w->planes; k++)
		rc = qkd_bits_init(&w->plane[k], w->block_slots);
	if (rc != QKD_OK) {
		rc = fail(why, "out of memory", rc);
		goto out;
	}
	rc = create_file(path, &w->fd, why);
	if (rc == QKD_OK && write_header(w->fd, &w->info, true, w->info.flags) != QKD_OK)
		rc = fail(why, strerror(errno), QKD_ERR_IO);
	if (rc == QKD_OK && lseek(w->fd, QKD_REC_ALICE_HEADER, SEEK_SET) < 0)
		rc = fail(why, strerror(errno), QKD_ERR_IO);
out:
	if (rc != QKD_OK)
		qkd_rec_alice_writer_free(w);
	else
		*out = w;
	return rc;
}

/* Serialize the block being filled: each plane's bits, then the digest. */
static int alice_flush(struct qkd_rec_alice_writer *w, const char **why)
{
	size_t nb = (w->fill + 7) / 8;
	int rc;

	qkd_wbuf_reset(&w->out);
	if (qkd_wbuf_reserve(&w->out, w->planes * nb + QKD_REC_DIGEST_BYTES) != QKD_OK)
		return fail(why, "out of memory", QKD_ERR_NOMEM);
	for (unsigned k = 0; k < w->planes; k++) {
		struct qkd_bits view = {w->plane[k].w, w->fill};

		qkd_bits_trim(&view);	/* the last block's padding bits are zero */
		qkd_bits_to_bytes(&view, w->out.p + w->out.len);
		w->out.len += nb;
	}
	put_digest(&w->out, 0, w->info.id, w->block);
	rc = w->out.err ? w->out.err : qkd_write_all(w->fd, w->out.p, w->out.len);
	if (rc != QKD_OK)
		return fail(why, rc == QKD_ERR_IO ? strerror(errno) : "out of memory", rc);
	w->block++;
	w->fill = 0;
	return QKD_OK;
}

/* (value | dbl) & ~detected over n bits: the rule of an entangled record. */
static bool stray_without_detection(const struct qkd_rec_slots *s)
{
	uint64_t bad = 0;
	size_t words = qkd_bits_words(s->n);

	for (size_t i = 0; i < words; i++) {
		uint64_t m = i + 1 < words || s->n % 64 == 0 ? ~(uint64_t)0
							    : ((uint64_t)1 << (s->n % 64)) - 1;

		bad |= (s->value->w[i] | s->dbl->w[i]) & ~s->detected->w[i] & m;
	}
	return bad != 0;
}

static int alice_add_check(const struct qkd_rec_alice_writer *w, const struct qkd_rec_slots *s,
			   const char **why)
{
	bool spdc = w->info.source == QKD_SOURCE_ENTANGLED, decoy = w->info.intensities > 1;

	if (s->basis == NULL || s->value == NULL || s->basis->n != s->n || s->value->n != s->n ||
	    (s->intensity != NULL) != decoy || (s->detected != NULL) != spdc ||
	    (s->dbl != NULL) != spdc)
		return fail(why, "the slots do not match the recording's kind", QKD_ERR_INVAL);
	if (spdc && (s->detected->n != s->n || s->dbl->n != s->n))
		return fail(why, "the slots do not match the recording's kind", QKD_ERR_INVAL);
	if (s->n > w->info.slots - w->added)
		return fail(why, "more slots than the header declares", QKD_ERR_RANGE);
	for (size_t i = 0; decoy && i < s->n; i++)
		if (s->intensity[i] >= QKD_INTENSITIES_MAX)
			return fail(why, "intensity index above 2", QKD_ERR_INVAL);
	if (spdc && stray_without_detection(s))
		return fail(why, "a value or double click in a slot without a detection",
			    QKD_ERR_INVAL);
	return QKD_OK;
}

/* Copy take slots from s[pos..) into the block being filled. */
static void alice_copy(struct qkd_rec_alice_writer *w, const struct qkd_rec_slots *s,
		       size_t pos, size_t take)
{
	qkd_bits_copy_range(&w->plane[0], w->fill, s->basis, pos, take);
	qkd_bits_copy_range(&w->plane[1], w->fill, s->value, pos, take);
	if (s->detected != NULL) {
		qkd_bits_copy_range(&w->plane[2], w->fill, s->detected, pos, take);
		qkd_bits_copy_range(&w->plane[3], w->fill, s->dbl, pos, take);
	}
	/* Intensity indices: low and high bits, 64 slots to a word. */
	for (size_t i = 0; s->intensity != NULL && i < take; i += 64) {
		size_t k = take - i < 64 ? take - i : 64;
		uint64_t lo = 0, hi = 0;
		struct qkd_bits lo_bits = {&lo, k}, hi_bits = {&hi, k};

		for (size_t j = 0; j < k; j++) {
			lo |= (uint64_t)(s->intensity[pos + i + j] & 1u) << j;
			hi |= (uint64_t)(s->intensity[pos + i + j] >> 1) << j;
		}
		qkd_bits_copy_range(&w->plane[2], w->fill + i, &lo_bits, 0, k);
		qkd_bits_copy_range(&w->plane[3], w->fill + i, &hi_bits, 0, k);
	}
}

int qkd_rec_alice_writer_add(struct qkd_rec_alice_writer *w, const struct qkd_rec_slots *s,
			     const char **why)
{
	int rc = alice_add_check(w, s, why);

	for (size_t pos = 0; rc == QKD_OK && pos < s->n;) {
		size_t take = w->block_slots - w->fill;

		if (take > s->n - pos)
			take = s->n - pos;
		alice_copy(w, s, pos, take);
		w->fill += take;
		pos += take;
		w->added += take;
		if (w->fill == w->block_slots)
			rc = alice_flush(w, why);
	}
	return rc;
}

int qkd_rec_alice_writer_finish(struct qkd_rec_alice_writer *w, const char **why)
{
	int rc = QKD_OK;

	if (w->added != w->info.slots)
		return fail(why, "fewer slots than the header declares", QKD_ERR_INVAL);
	if (w->fill > 0)
		rc = alice_flush(w, why);
	if (rc == QKD_OK &&
	    write_header(w->fd, &w->info, true, w->info.flags | QKD_REC_F_COMPLETE) != QKD_OK)
		rc = fail(why, strerror(errno), QKD_ERR_IO);
	if (rc == QKD_OK)
		rc = close_file(&w->fd, why);
	return rc;
}

void qkd_rec_alice_writer_free(struct qkd_rec_alice_writer *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	for (unsigned k = 0; k < PLANES_MAX; k++)
		qkd_bits_cleanup(&w->plane[k]);
	qkd_wbuf_cleanup(&w->out);
	qkd_free_secret(w, sizeof *w);
}

int qkd_rec_bob_writer_new(struct qkd_rec_bob_writer **out, const char *path,
			   const struct qkd_rec_info *info, const char **why)
{
	struct qkd_rec_bob_writer *w = calloc(1, sizeof *w);
	int rc = QKD_OK;

	*out = NULL;
	if (w == NULL)
		return fail(why, "out of memory", QKD_ERR_NOMEM);
	w->fd = -1;
	memset(&w->info, 0, sizeof w->info);
	w->info.slots = info->slots;
	w->info.block_events = info->block_events ? info->block_events
						  : QKD_REC_BLOCK_EVENTS_DEFAULT;
	memcpy(w->info.id, info->id, QKD_REC_ID_BYTES);
	qkd_wbuf_init(&w->gaps);
	qkd_wbuf_init_secret(&w->out);
	if (w->info.slots < 1 || w->info.slots > QKD_PULSES_MAX)
		rc = fail(why, "slot count out of range (1 .. 2^62)", QKD_ERR_RANGE);
	else if (w->info.block_events > QKD_REC_BLOCK_EVENTS_MAX)
		rc = fail(why, "events per block out of range (1 .. 2^20)", QKD_ERR_RANGE);
	if (rc == QKD_OK && ((rc = qkd_bits_init(&w->basis, w->info.block_events)) != QKD_OK ||
			     (rc = qkd_bits_init(&w->value, w->info.block_events)) != QKD_OK ||
			     (rc = qkd_bits_init(&w->dbl, w->info.block_events)) != QKD_OK))
		rc = fail(why, "out of memory", rc);
	if (rc == QKD_OK)
		rc = create_file(path, &w->fd, why);
	if (rc == QKD_OK && write_header(w->fd, &w->info, false, 0) != QKD_OK)
		rc = fail(why, strerror(errno), QKD_ERR_IO);
	if (rc == QKD_OK && lseek(w->fd, QKD_REC_BOB_HEADER, SEEK_SET) < 0)
		rc = fail(why, strerror(errno), QKD_ERR_IO);
	if (rc != QKD_OK)
		qkd_rec_bob_writer_free(w);
	else
		*out = w;
	return rc;
}

/* One block: events, payload length, gaps, three planes, digest. */
static int bob_flush(struct qkd_rec_bob_writer *w, const char **why)
{
	size_t nb = (w->fill + 7) / 8;
	const struct qkd_bits *pl[3] = {&w->basis, &w->value, &w->dbl};
	int rc;

	qkd_wbuf_reset(&w->out);
	qkd_put_u32(&w->out, (uint32_t)w->fill);
	qkd_put_u32(&w->out, (uint32_t)(w->gaps.len + 3 * nb));
	qkd_put_bytes(&w->out, w->gaps.p, w->gaps.len);
	if (w->gaps.err || qkd_wbuf_reserve(&w->out, 3 * nb + QKD_REC_DIGEST_BYTES) != QKD_OK)
		return fail(why, "out of memory", QKD_ERR_NOMEM);
	for (int k = 0; k < 3; k++) {
		struct qkd_bits view = {pl[k]->w, w->fill};

		qkd_bits_trim(&view);
		qkd_bits_to_bytes(&view, w->out.p + w->out.len);
		w->out.len += nb;
	}
	put_digest(&w->out, 0, w->info.id, w->block);
	rc = w->out.err ? w->out.err : qkd_write_all(w->fd, w->out.p, w->out.len);
	if (rc != QKD_OK)
		return fail(why, rc == QKD_ERR_IO ? strerror(errno) : "out of memory", rc);
	qkd_wbuf_reset(&w->gaps);
	w->block++;
	w->fill = 0;
	return QKD_OK;
}

int qkd_rec_bob_writer_add(struct qkd_rec_bob_writer *w, const struct qkd_detection *d,
			   size_t n, const char **why)
{
	int rc = QKD_OK;

	for (size_t i = 0; rc == QKD_OK && i < n; i++) {
		if (d[i].slot >= w->info.slots)
			return fail(why, "a detection beyond the declared slots", QKD_ERR_RANGE);
		if (d[i].slot < w->next || d[i].basis > 1 || d[i].value > 1)
			return fail(why, "detections out of order, or a basis or value above 1",
				    QKD_ERR_INVAL);
		qkd_put_varint(&w->gaps, d[i].slot - w->next);
		qkd_bits_set(&w->basis, w->fill, d[i].basis);
		qkd_bits_set(&w->value, w->fill, d[i].value);
		qkd_bits_set(&w->dbl, w->fill, (d[i].flags & QKD_DET_DOUBLE) != 0);
		w->next = d[i].slot + 1;
		w->fill++;
		w->events++;
		if (w->fill == w->info.block_events)
			rc = bob_flush(w, why);
	}
	return rc;
}

int qkd_rec_bob_writer_finish(struct qkd_rec_bob_writer *w, const char **why)
{
	int rc = QKD_OK;

	if (w->fill > 0)
		rc = bob_flush(w, why);
	w->info.detections = w->events;
	if (rc == QKD_OK &&
	    write_header(w->fd, &w->info, false, QKD_REC_F_COMPLETE) != QKD_OK)
		rc = fail(why, strerror(errno), QKD_ERR_IO);
	if (rc == QKD_OK)
		rc = close_file(&w->fd, why);
	return rc;
}

void qkd_rec_bob_writer_free(struct qkd_rec_bob_writer *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	qkd_bits_cleanup(&w->basis);
	qkd_bits_cleanup(&w->value);
	qkd_bits_cleanup(&w->dbl);
	qkd_wbuf_cleanup(&w->gaps);
	qkd_wbuf_cleanup(&w->out);
	free(w);
}

void qkd_rec_info_from_link(struct qkd_rec_info *info, const struct qkd_link_params *p)
{
	struct qkd_wbuf w;
	uint8_t d[QKD_REC_DIGEST_BYTES];
	const double reals[] = {
		p->rate_hz, p->mu, p->distance_km, p->fiber_loss_db_per_km,
		p->detector_efficiency, p->dark_count, p->misalignment, p->rng_bias,
		p->mu_decoy[0], p->mu_decoy[1], p->p_intensity[0], p->p_intensity[1],
		p->p_intensity[2], p->p_x, p->eve_fraction,
	};

	memset(info, 0, sizeof *info);
	info->source = p->source;
	info->slots = p->pulses;
	info->rate_hz = p->rate_hz;
	info->intensities = p->intensities;
	for (unsigned k = 0; k < QKD_INTENSITIES_MAX; k++) {
		info->mu[k] = k < p->intensities ? qkd_link_intensity(p, k) : 0;
		info->p_intensity[k] = k < p->intensities ? p->p_intensity[k] : 0;
	}
	info->p_x = p->p_x;
	info->flags = QKD_REC_F_SIMULATED;
	info->seed = p->seed;
	/* The id names the run: every parameter that shapes the data. */
	qkd_wbuf_init(&w);
	qkd_put_bytes(&w, "qkdnet simulated link", 21);
	qkd_put_u64(&w, p->seed);
	qkd_put_u64(&w, p->pulses);
	qkd_put_u8(&w, (uint8_t)p->source);
	qkd_put_u8(&w, (uint8_t)p->intensities);
	qkd_put_u8(&w, (uint8_t)p->eve);
	for (size_t k = 0; k < sizeof reals / sizeof reals[0]; k++)
		qkd_put_double(&w, reals[k]);
	/* A free-space channel shapes the data too; a fiber link adds nothing,
	 * so its id is the one it had before free space existed. */
	if (p->channel != QKD_CHANNEL_FIBER) {
		const double fso[] = {
			p->tx_aperture_m, p->rx_aperture_m, p->beam_divergence,
			p->atmos_loss_db_per_km, p->background_day, p->background_night,
		};

		qkd_put_u8(&w, (uint8_t)p->channel);
		qkd_put_u8(&w, p->daylight ? 1 : 0);
		for (size_t k = 0; k < sizeof fso / sizeof fso[0]; k++)
			qkd_put_double(&w, fso[k]);
	}
	qkd_rec_digest(d, NULL, 0, w.p, w.err ? 0 : w.len);
	memcpy(info->id, d, sizeof info->id);
	qkd_wbuf_cleanup(&w);
}

/* ---- Recording the simulator ---- */

/* Slots recorded per pass: a multiple of every block size, small enough
 * that the scratch below stays at a few megabytes. */
#define REC_SIM_CHUNK	((size_t)1 << 20)
#define REC_SIM_BATCH	4096	/* slots per qkd_sim_alice_lookup call */

struct rec_scratch {
	struct qkd_bits basis, value, detected, dbl;	/* REC_SIM_CHUNK bits, secret */
	uint8_t *intensity;				/* REC_SIM_CHUNK */
	uint64_t slots[REC_SIM_BATCH];
	struct qkd_detection det[REC_SIM_BATCH];	/* secret */
	struct qkd_det_list dl;
};

static int scratch_init(struct rec_scratch *s)
{
	int rc;

	memset(s, 0, sizeof *s);
	qkd_det_list_init(&s->dl, false);
	s->intensity = malloc(REC_SIM_CHUNK);
	if (s->intensity == NULL)
		return QKD_ERR_NOMEM;
	if ((rc = qkd_bits_init(&s->basis, REC_SIM_CHUNK)) != QKD_OK ||
	    (rc = qkd_bits_init(&s->value, REC_SIM_CHUNK)) != QKD_OK ||
	    (rc = qkd_bits_init(&s->detected, REC_SIM_CHUNK)) != QKD_OK)
		return rc;
	return qkd_bits_init(&s->dbl, REC_SIM_CHUNK);
}

static void scratch_cleanup(struct rec_scratch *s)
{
	qkd_bits_cleanup(&s->basis);
	qkd_bits_cleanup(&s->value);
	qkd_bits_cleanup(&s->detected);
	qkd_bits_cleanup(&s->dbl);
	free(s->intensity);
	qkd_wipe(s->det, sizeof s->det);
	qkd_det_list_cleanup(&s->dl);
}

/* Every slot's intensity index, REC_SIM_BATCH slots per lookup. */
static int sim_intensities(const struct qkd_sim *sim, uint64_t first, size_t count,
			   struct rec_scratch *s)
{
	int rc = QKD_OK;

	for (size_t base = 0; rc == QKD_OK && base < count; base += REC_SIM_BATCH) {
		size_t k = count - base < REC_SIM_BATCH ? count - base : REC_SIM_BATCH;

		for (size_t i = 0; i < k; i++)
			s->slots[i] = first + base + i;
		rc = qkd_sim_alice_lookup(sim, s->slots, k, s->det);
		for (size_t i = 0; rc == QKD_OK && i < k; i++)
			s->intensity[base + i] = s->det[i].intensity;
	}
	return rc;
}

/* Alice's entangled-source detections in the chunk: value, detected, double. */
static int sim_alice_detections(const struct qkd_sim *sim, uint64_t first, size_t count,
				struct rec_scratch *s, struct qkd_bits *value,
				struct qkd_bits *detected, struct qkd_bits *dbl)
{
	int rc = qkd_sim_alice_chunk(sim, first, count, &s->dl, NULL);

	for (size_t i = 0; rc == QKD_OK && i < s->dl.n; i++) {
		size_t at = (size_t)(s->dl.d[i].slot - first);

		qkd_bits_set(value, at, s->dl.d[i].value);
		qkd_bits_set(detected, at, 1);
		qkd_bits_set(dbl, at, (s->dl.d[i].flags & QKD_DET_DOUBLE) != 0);
	}
	return rc;
}

static int record_alice_chunk(const struct qkd_sim *sim, struct qkd_rec_alice_writer *w,
			      uint64_t first, size_t count, struct rec_scratch *s,
			      const char **why)
{
	const struct qkd_link_params *p = qkd_sim_params(sim);
	struct qkd_bits basis = {s->basis.w, count}, value = {s->value.w, count};
	struct qkd_bits detected = {s->detected.w, count}, dbl = {s->dbl.w, count};
	struct qkd_rec_slots sl = {count, &basis, &value, NULL, NULL, NULL};
	size_t words = qkd_bits_words(count) * sizeof(uint64_t);
	int rc;

	memset(basis.w, 0, words);
	memset(value.w, 0, words);
	memset(detected.w, 0, words);
	memset(dbl.w, 0, words);
	rc = qkd_sim_alice_choices(sim, first, count, &basis, &value);
	if (rc == QKD_OK && p->source == QKD_SOURCE_ENTANGLED) {
		sl.detected = &detected;
		sl.dbl = &dbl;
		rc = sim_alice_detections(sim, first, count, s, &value, &detected, &dbl);
	}
	if (rc == QKD_OK && p->intensities > 1) {
		sl.intensity = s->intensity;
		rc = sim_intensities(sim, first, count, s);
	}
	if (rc != QKD_OK)
		return fail(why, "the simulator failed", rc);
	return qkd_rec_alice_writer_add(w, &sl, why);
}

static int record_chunks(const struct qkd_sim *sim, struct qkd_rec_alice_writer *aw,
			 struct qkd_rec_bob_writer *bw, const char **why)
{
	uint64_t pulses = qkd_sim_params(sim)->pulses;
	struct rec_scratch s;
	int rc = scratch_init(&s);

	if (rc != QKD_OK)
		rc = fail(why, "out of memory", rc);
	for (uint64_t first = 0; rc == QKD_OK && first < pulses; first += REC_SIM_CHUNK) {
		size_t count = pulses - first < REC_SIM_CHUNK ? (size_t)(pulses - first)
							      : REC_SIM_CHUNK;

		rc = record_alice_chunk(sim, aw, first, count, &s, why);
		if (rc == QKD_OK && (rc = qkd_sim_bob_chunk(sim, first, count, &s.dl, NULL)) != QKD_OK)
			rc = fail(why, "the simulator failed", rc);
		if (rc == QKD_OK)
			rc = qkd_rec_bob_writer_add(bw, s.dl.d, s.dl.n, why);
	}
	scratch_cleanup(&s);
	return rc;
}

/* dir/name into buf; QKD_ERR_INVAL when it does not fit. */
static int join_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? QKD_ERR_INVAL : QKD_OK;
}

int qkd_rec_record_sim(const struct qkd_sim *sim, const char *dir, const char **why)
{
	struct qkd_rec_alice_writer *aw = NULL;
	struct qkd_rec_bob_writer *bw = NULL;
	struct qkd_rec_info info;
	char apath[4096], bpath[4096];
	int rc;

	qkd_rec_info_from_link(&info, qkd_sim_params(sim));
	if (join_path(apath, sizeof apath, dir, QKD_REC_ALICE_FILE) != QKD_OK ||
	    join_path(bpath, sizeof bpath, dir, QKD_REC_BOB_FILE) != QKD_OK)
		return fail(why, "directory name too long", QKD_ERR_INVAL);
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		return fail(why, strerror(errno), QKD_ERR_IO);
	rc = qkd_rec_alice_writer_new(&aw, apath, &info, why);
	if (rc == QKD_OK)
		rc = qkd_rec_bob_writer_new(&bw, bpath, &info, why);
	if (rc == QKD_OK)
		rc = record_chunks(sim, aw, bw, why);
	if (rc == QKD_OK)
		rc = qkd_rec_alice_writer_finish(aw, why);
	if (rc == QKD_OK)
		rc = qkd_rec_bob_writer_finish(bw, why);
	qkd_rec_alice_writer_free(aw);
	qkd_rec_bob_writer_free(bw);
	return rc;
}
