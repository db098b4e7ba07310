/* test_recording.c - the `file` optical backend (qkd/recording.h,
 * docs/recording-format.md): writer -> reader round trips against the
 * simulator, and every kind of damaged file refused with the right code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "qkd/error.h"
#include "qkd/optical.h"
#include "qkd/recording.h"
#include "qkd/simlink.h"
#include "qkd/source.h"

/* ---- helpers ---------------------------------------------------------- */

struct tmp {
	char dir[256], alice[300], bob[300];
};

static void tmp_make(struct tmp *t)
{
	const char *base = getenv("TMPDIR");

	snprintf(t->dir, sizeof t->dir, "%s/qkd-rec.XXXXXX", base ? base : "/tmp");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->alice, sizeof t->alice, "%s/%s", t->dir, QKD_REC_ALICE_FILE);
	snprintf(t->bob, sizeof t->bob, "%s/%s", t->dir, QKD_REC_BOB_FILE);
}

static void tmp_remove(struct tmp *t)
{
	unlink(t->alice);
	unlink(t->bob);
	rmdir(t->dir);
}

static struct qkd_sim *sim_of(const struct qkd_link_params *p)
{
	struct qkd_sim *s = NULL;

	assert_int_equal(qkd_sim_new(&s, p), QKD_OK);
	return s;
}

static void record(const struct qkd_sim *sim, const struct tmp *t)
{
	const char *why = NULL;
	int rc = qkd_rec_record_sim(sim, t->dir, &why);

	if (rc != QKD_OK)
		fail_msg("record: %s", why ? why : "?");
}

static struct qkd_rec_alice *alice_open(const char *path)
{
	struct qkd_rec_alice *r = NULL;
	const char *why = NULL;

	if (qkd_rec_alice_open(&r, path, &why) != QKD_OK)
		fail_msg("open %s: %s", path, why);
	return r;
}

static struct qkd_rec_bob *bob_open(const char *path)
{
	struct qkd_rec_bob *r = NULL;
	const char *why = NULL;

	if (qkd_rec_bob_open(&r, path, &why) != QKD_OK)
		fail_msg("open %s: %s", path, why);
	return r;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- comparisons with the simulator ----------------------------------- */

static void same_choices(const struct qkd_sim *sim, struct qkd_rec_alice *r, uint64_t first,
			 uint64_t count)
{
	struct qkd_bits b1, v1, b2, v2;

	assert_int_equal(qkd_bits_init(&b1, count), QKD_OK);
	assert_int_equal(qkd_bits_init(&v1, count), QKD_OK);
	assert_int_equal(qkd_bits_init(&b2, count), QKD_OK);
	assert_int_equal(qkd_bits_init(&v2, count), QKD_OK);
	assert_int_equal(qkd_sim_alice_choices(sim, first, count, &b1, &v1), QKD_OK);
	assert_int_equal(qkd_rec_alice_choices(r, first, count, &b2, &v2), QKD_OK);
	assert_true(qkd_bits_equal(&b1, &b2));
	assert_true(qkd_bits_equal(&v1, &v2));
	qkd_bits_cleanup(&b1);
	qkd_bits_cleanup(&v1);
	qkd_bits_cleanup(&b2);
	qkd_bits_cleanup(&v2);
}

static void same_lookup(const struct qkd_sim *sim, struct qkd_rec_alice *r,
			const uint64_t *slots, size_t n)
{
	struct qkd_detection *a = calloc(n ? n : 1, sizeof *a), *b = calloc(n ? n : 1, sizeof *b);

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(qkd_sim_alice_lookup(sim, slots, n, a), QKD_OK);
	assert_int_equal(qkd_rec_alice_lookup(r, slots, n, b), QKD_OK);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(a[i].slot, b[i].slot);
		assert_int_equal(a[i].basis, b[i].basis);
		assert_int_equal(a[i].value, b[i].value);
		assert_int_equal(a[i].flags, b[i].flags);
		assert_int_equal(a[i].intensity, b[i].intensity);
	}
	free(a);
	free(b);
}

/* Sorted distinct slots: the edges of the run and of its blocks, and
 * random ones. */
static size_t pick_slots(uint64_t pulses, unsigned block_log2, uint64_t *out, size_t max)
{
	uint64_t seed = 0x9e3779b97f4a7c15u, b = (uint64_t)1 << block_log2;
	size_t n = 0, k = 0;
	uint64_t edges[] = {0, 1, b - 1, b, b + 1, 2 * b - 1, pulses - 2, pulses - 1};

	for (size_t i = 0; i < sizeof edges / sizeof edges[0] && n < max; i++)
		if (edges[i] < pulses)
			out[n++] = edges[i];
	while (n < max)
		out[n++] = xorshift(&seed) % pulses;
	/* sort and drop duplicates */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
			uint64_t x = out[j];

			out[j] = out[j - 1];
			out[j - 1] = x;
		}
	for (size_t i = 0; i < n; i++)
		if (k == 0 || out[i] != out[k - 1])
			out[k++] = out[i];
	return k;
}

/* Bob's chunks, of an odd size, against the simulator's. */
static void same_bob(const struct qkd_sim *sim, struct qkd_rec_bob *r, uint64_t chunk)
{
	uint64_t pulses = qkd_sim_params(sim)->pulses, total = 0;
	struct qkd_det_list a, b;

	qkd_det_list_init(&a, false);
	qkd_det_list_init(&b, false);
	for (uint64_t first = 0; first < pulses; first += chunk) {
		uint64_t count = pulses - first < chunk ? pulses - first : chunk;
		struct qkd_sim_stats sa, sb;

		memset(&sa, 0, sizeof sa);
		memset(&sb, 0, sizeof sb);
		assert_int_equal(qkd_sim_bob_chunk(sim, first, count, &a, &sa), QKD_OK);
		assert_int_equal(qkd_rec_bob_chunk(r, first, count, &b, &sb), QKD_OK);
		assert_int_equal(a.n, b.n);
		assert_int_equal(sa.clicks, sb.clicks);
		assert_int_equal(sa.double_clicks, sb.double_clicks);
		assert_int_equal(sb.slots, count);
		for (size_t i = 0; i < a.n; i++) {
			assert_int_equal(a.d[i].slot, b.d[i].slot);
			assert_int_equal(a.d[i].basis, b.d[i].basis);
			assert_int_equal(a.d[i].value, b.d[i].value);
			assert_int_equal(a.d[i].flags & QKD_DET_DOUBLE, b.d[i].flags);
		}
		total += b.n;
	}
	assert_int_equal(total, qkd_rec_bob_info(r)->detections);
	qkd_det_list_cleanup(&a);
	qkd_det_list_cleanup(&b);
}

/* Alice's own detections (entangled): every one looked up. */
static void same_alice_detections(const struct qkd_sim *sim, struct qkd_rec_alice *r)
{
	struct qkd_det_list dl;
	uint64_t *slots;

	qkd_det_list_init(&dl, false);
	assert_int_equal(qkd_sim_alice_chunk(sim, 0, qkd_sim_params(sim)->pulses, &dl, NULL),
			 QKD_OK);
	assert_true(dl.n > 100);
	slots = malloc(dl.n * sizeof *slots);
	assert_non_null(slots);
	for (size_t i = 0; i < dl.n; i++)
		slots[i] = dl.d[i].slot;
	same_lookup(sim, r, slots, dl.n);
	free(slots);
	qkd_det_list_cleanup(&dl);
}

static void round_trip(const struct qkd_link_params *p)
{
	struct qkd_sim *sim = sim_of(p);
	struct qkd_rec_alice *a;
	struct qkd_rec_bob *b;
	struct qkd_rec_info info;
	struct tmp t;
	uint64_t slots[600];
	size_t n;
	const char *file = NULL, *why = NULL;

	tmp_make(&t);
	record(sim, &t);
	assert_int_equal(qkd_rec_check_dir(t.dir, &info, &file, &why), QKD_OK);
	assert_int_equal(info.slots, p->pulses);
	assert_int_equal(info.source, p->source);
	assert_int_equal(info.intensities, p->intensities);
	assert_int_equal(info.seed, p->seed);
	a = alice_open(t.alice);
	b = bob_open(t.bob);
	n = pick_slots(p->pulses, qkd_rec_alice_info(a)->block_log2, slots, 600);
	same_lookup(sim, a, slots, n);
	same_choices(sim, a, 0, p->pulses);
	same_choices(sim, a, 65536 - 5, 65536 + 77);	/* across block edges */
	same_choices(sim, a, p->pulses - 3, 3);
	if (p->source == QKD_SOURCE_ENTANGLED)
		same_alice_detections(sim, a);
	same_bob(sim, b, 100003);
	qkd_rec_alice_free(a);
	qkd_rec_bob_free(b);
	qkd_sim_free(sim);
	tmp_remove(&t);
}

/* ---- round trips ------------------------------------------------------ */

static void test_round_trip_wcp(void **state)
{
	struct qkd_link_params p;

	(void)state;
	qkd_link_params_default(&p);
	p.pulses = 3000017;
	p.seed = 11;
	round_trip(&p);
}

static void test_round_trip_entangled(void **state)
{
	struct qkd_link_params p;

	(void)state;
	qkd_link_params_default(&p);
	p.source = QKD_SOURCE_ENTANGLED;
	p.mu = 0.05;
	p.distance_km = 5;
	p.pulses = 2000005;
	p.seed = 12;
	round_trip(&p);
}

static void test_round_trip_decoy(void **state)
{
	struct qkd_link_params p;

	(void)state;
	qkd_link_params_default(&p);
	p.mu = 0.5;
	p.intensities = 3;
	p.mu_decoy[0] = 0.1;
	p.mu_decoy[1] = 0.0002;
	p.p_intensity[0] = 0.8;
	p.p_intensity[1] = 0.15;
	p.p_intensity[2] = 0.05;
	p.p_x = 0.7;
	p.pulses = 1500001;
	p.seed = 13;
	round_trip(&p);
}

/* The link read back is the link recorded (what a replay runs with). */
static void test_info_to_link(void **state)
{
	struct qkd_link_params p, q;
	struct qkd_rec_info info;
	const char *why = NULL;

	(void)state;
	qkd_link_params_default(&p);
	p.mu = 0.5;
	p.intensities = 3;
	p.mu_decoy[0] = 0.1;
	p.mu_decoy[1] = 0;
	p.p_intensity[0] = 0.7;
	p.p_intensity[1] = 0.2;
	p.p_intensity[2] = 0.1;
	p.p_x = 0.9;
	p.seed = 99;
	p.rate_hz = 1e9;
	qkd_rec_info_from_link(&info, &p);
	info.block_log2 = QKD_REC_BLOCK_LOG2_DEFAULT;
	assert_int_equal(qkd_rec_info_check(&info, &why), QKD_OK);
	qkd_rec_info_to_link(&info, &q);
	assert_true(q.mu == p.mu && q.intensities == 3 && q.mu_decoy[0] == 0.1 &&
		    q.mu_decoy[1] == 0 && q.p_intensity[1] == 0.2 && q.p_x == 0.9 &&
		    q.seed == 99 && q.rate_hz == 1e9 && q.pulses == p.pulses);
	assert_int_equal(qkd_rec_planes(&info), 4);
	/* Another link, another id; the same link, the same id. */
	{
		struct qkd_rec_info i2;

		qkd_rec_info_from_link(&i2, &p);
		assert_memory_equal(i2.id, info.id, QKD_REC_ID_BYTES);
		p.distance_km += 1;
		qkd_rec_info_from_link(&i2, &p);
		assert_memory_not_equal(i2.id, info.id, QKD_REC_ID_BYTES);
	}
}

/* Hand-made data through the writer API with the smallest blocks: the
 * edges (one slot, no detection, blocks of one event). */
static void write_small(const struct tmp *t, uint64_t slots, uint32_t events_per_block,
			size_t ndet)
{
	struct qkd_rec_info info;
	struct qkd_rec_alice_writer *aw = NULL;
	struct qkd_rec_bob_writer *bw = NULL;
	struct qkd_bits basis, value;
	struct qkd_detection d[64];
	const char *why = NULL;

	memset(&info, 0, sizeof info);
	info.source = QKD_SOURCE_WEAK_COHERENT;
	info.slots = slots;
	info.rate_hz = 1e6;
	info.intensities = 1;
	info.mu[0] = 0.1;
	info.p_intensity[0] = 1;
	info.p_x = 0.5;
	info.block_log2 = QKD_REC_BLOCK_LOG2_MIN;
	info.block_events = events_per_block;
	memset(info.id, 0xab, sizeof info.id);
	assert_int_equal(qkd_bits_init(&basis, slots), QKD_OK);
	assert_int_equal(qkd_bits_init(&value, slots), QKD_OK);
	for (uint64_t i = 0; i < slots; i++) {
		qkd_bits_set(&basis, i, (i * 7 / 3) & 1);
		qkd_bits_set(&value, i, (i * 5 / 2) & 1);
	}
	assert_int_equal(qkd_rec_alice_writer_new(&aw, t->alice, &info, &why), QKD_OK);
	{
		struct qkd_rec_slots s = {slots, &basis, &value, NULL, NULL, NULL};

		assert_int_equal(qkd_rec_alice_writer_add(aw, &s, &why), QKD_OK);
	}
	assert_int_equal(qkd_rec_alice_writer_finish(aw, &why), QKD_OK);
	qkd_rec_alice_writer_free(aw);
	assert_int_equal(qkd_rec_bob_writer_new(&bw, t->bob, &info, &why), QKD_OK);
	for (size_t i = 0; i < ndet; i++) {
		d[i].slot = i * (slots / ndet) + (i % 3);
		d[i].basis = i & 1;
		d[i].value = (i >> 1) & 1;
		d[i].flags = i % 5 == 0 ? QKD_DET_DOUBLE : 0;
		d[i].intensity = 0;
	}
	/* two calls: the writer keeps the order across them */
	assert_int_equal(qkd_rec_bob_writer_add(bw, d, ndet / 2, &why), QKD_OK);
	assert_int_equal(qkd_rec_bob_writer_add(bw, d + ndet / 2, ndet - ndet / 2, &why), QKD_OK);
	assert_int_equal(qkd_rec_bob_writer_finish(bw, &why), QKD_OK);
	qkd_rec_bob_writer_free(bw);
	qkd_bits_cleanup(&basis);
	qkd_bits_cleanup(&value);
}

static void test_writer_edges(void **state)
{
	static const struct { uint64_t slots; uint32_t epb; size_t ndet; } cases[] = {
		{1, 1, 0}, {1, 1, 1}, {4096, 1, 40}, {4097, 3, 41}, {10000, 64, 64}, {12345, 7, 0},
	};
	struct tmp t;

	(void)state;
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		struct qkd_rec_alice *a;
		struct qkd_rec_bob *b;
		struct qkd_det_list dl;
		struct qkd_detection one;
		uint64_t last;

		tmp_make(&t);
		write_small(&t, cases[c].slots, cases[c].epb, cases[c].ndet);
		a = alice_open(t.alice);
		b = bob_open(t.bob);
		assert_int_equal(qkd_rec_alice_verify(a, NULL), QKD_OK);
		assert_int_equal(qkd_rec_bob_verify(b, NULL), QKD_OK);
		last = cases[c].slots - 1;
		assert_int_equal(qkd_rec_alice_lookup(a, &last, 1, &one), QKD_OK);
		assert_int_equal(one.basis, (last * 7 / 3) & 1);
		assert_int_equal(one.value, (last * 5 / 2) & 1);
		qkd_det_list_init(&dl, false);
		assert_int_equal(qkd_rec_bob_chunk(b, 0, cases[c].slots, &dl, NULL), QKD_OK);
		assert_int_equal(dl.n, cases[c].ndet);
		for (size_t i = 0; i < dl.n; i++) {
			assert_int_equal(dl.d[i].basis, i & 1);
			assert_int_equal(dl.d[i].flags, i % 5 == 0 ? QKD_DET_DOUBLE : 0);
		}
		/* out of order, and past the end */
		assert_int_equal(qkd_rec_bob_chunk(b, 0, 1, &dl, NULL), QKD_ERR_INVAL);
		assert_int_equal(qkd_rec_bob_chunk(b, cases[c].slots, 1, &dl, NULL), QKD_ERR_RANGE);
		qkd_det_list_cleanup(&dl);
		qkd_rec_alice_free(a);
		qkd_rec_bob_free(b);
		tmp_remove(&t);
	}
}

/* The writers refuse data that breaks the format's rules. */
static void test_writer_rejects(void **state)
{
	struct qkd_link_params p;
	struct qkd_rec_info info;
	struct qkd_rec_alice_writer *aw = NULL;
	struct qkd_rec_bob_writer *bw = NULL;
	struct qkd_bits bits, det;
	struct qkd_detection d[2];
	uint8_t k[8] = {0, 1, 2, 3, 0, 0, 0, 0};
	const char *why = NULL;
	struct tmp t;

	(void)state;
	tmp_make(&t);
	qkd_link_params_default(&p);
	p.pulses = 8;
	p.source = QKD_SOURCE_ENTANGLED;
	qkd_rec_info_from_link(&info, &p);
	assert_int_equal(qkd_bits_init(&bits, 8), QKD_OK);
	assert_int_equal(qkd_bits_init(&det, 8), QKD_OK);
	qkd_bits_set(&bits, 3, 1);	/* a value in slot 3, no detection there */
	assert_int_equal(qkd_rec_alice_writer_new(&aw, t.alice, &info, &why), QKD_OK);
	{
		struct qkd_rec_slots s = {8, &bits, &bits, NULL, &det, &det};
		struct qkd_rec_slots no_det = {8, &bits, &bits, NULL, NULL, NULL};

		assert_int_equal(qkd_rec_alice_writer_add(aw, &s, &why), QKD_ERR_INVAL);
		assert_int_equal(qkd_rec_alice_writer_add(aw, &no_det, &why), QKD_ERR_INVAL);
		qkd_bits_set(&det, 3, 1);
		assert_int_equal(qkd_rec_alice_writer_add(aw, &s, &why), QKD_OK);
		assert_int_equal(qkd_rec_alice_writer_add(aw, &s, &why), QKD_ERR_RANGE);
	}
	qkd_rec_alice_writer_free(aw);
	/* decoys: index 3 does not exist; finishing early is refused */
	qkd_link_params_default(&p);
	p.pulses = 16;
	p.intensities = 3;
	p.mu = 0.5;
	p.mu_decoy[0] = 0.1;
	p.p_intensity[0] = 0.8;
	p.p_intensity[1] = 0.15;
	p.p_intensity[2] = 0.05;
	qkd_rec_info_from_link(&info, &p);
	assert_int_equal(qkd_rec_alice_writer_new(&aw, t.alice, &info, &why), QKD_OK);
	{
		struct qkd_rec_slots s = {8, &bits, &bits, k, NULL, NULL};

		assert_int_equal(qkd_rec_alice_writer_add(aw, &s, &why), QKD_ERR_INVAL);
		k[3] = 2;
		assert_int_equal(qkd_rec_alice_writer_add(aw, &s, &why), QKD_OK);
		assert_int_equal(qkd_rec_alice_writer_finish(aw, &why), QKD_ERR_INVAL);
	}
	qkd_rec_alice_writer_free(aw);
	/* Bob: out of order, beyond the slots */
	assert_int_equal(qkd_rec_bob_writer_new(&bw, t.bob, &info, &why), QKD_OK);
	memset(d, 0, sizeof d);
	d[0].slot = 5;
	d[1].slot = 5;
	assert_int_equal(qkd_rec_bob_writer_add(bw, d, 2, &why), QKD_ERR_INVAL);
	d[0].slot = 16;
	assert_int_equal(qkd_rec_bob_writer_add(bw, d, 1, &why), QKD_ERR_RANGE);
	qkd_rec_bob_writer_free(bw);
	/* a bad header is refused at creation */
	info.slots = 0;
	assert_int_equal(qkd_rec_alice_writer_new(&aw, t.alice, &info, &why), QKD_ERR_RANGE);
	assert_null(aw);
	qkd_bits_cleanup(&bits);
	qkd_bits_cleanup(&det);
	tmp_remove(&t);
}

/* ---- damaged files ---------------------------------------------------- */

static size_t file_len(const char *path)
{
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	return (size_t)sb.st_size;
}

static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p;

	assert_non_null(f);
	*n = file_len(path);
	p = malloc(*n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, *n, f), *n);
	fclose(f);
	return p;
}

static void spit(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* Write path' = the good bytes with a header field replaced and the header
 * digest recomputed, as a careful forger (or a buggy writer) would. */
static void forge(const char *path, const uint8_t *good, size_t n, size_t hlen, size_t off,
		  uint64_t v, unsigned width)
{
	uint8_t *p = malloc(n);

	assert_non_null(p);
	memcpy(p, good, n);
	put_be(p + off, v, width);
	qkd_rec_digest(p + hlen - QKD_REC_DIGEST_BYTES, NULL, 0, p, hlen - QKD_REC_DIGEST_BYTES);
	spit(path, p, n);
	free(p);
}

/* Open (and verify) Alice's file; the code of the first failure. */
static int alice_try(const char *path)
{
	struct qkd_rec_alice *r = NULL;
	const char *why = NULL;
	int rc = qkd_rec_alice_open(&r, path, &why);

	if (rc == QKD_OK)
		rc = qkd_rec_alice_verify(r, &why);
	if (rc != QKD_OK)
		assert_non_null(why);
	qkd_rec_alice_free(r);
	return rc;
}

static int bob_try(const char *path)
{
	struct qkd_rec_bob *r = NULL;
	const char *why = NULL;
	int rc = qkd_rec_bob_open(&r, path, &why);

	if (rc == QKD_OK)
		rc = qkd_rec_bob_verify(r, &why);
	if (rc != QKD_OK)
		assert_non_null(why);
	qkd_rec_bob_free(r);
	return rc;
}

static void make_recording(struct tmp *t, uint64_t pulses, uint64_t seed)
{
	struct qkd_link_params p;
	struct qkd_sim *sim;

	qkd_link_params_default(&p);
	p.pulses = pulses;
	p.seed = seed;
	sim = sim_of(&p);
	record(sim, t);
	qkd_sim_free(sim);
}

static void test_damaged_alice(void **state)
{
	struct tmp t;
	char bad[320];
	uint8_t *good, *p;
	size_t n;

	(void)state;
	tmp_make(&t);
	make_recording(&t, 300000, 5);
	snprintf(bad, sizeof bad, "%s/bad", t.dir);
	good = slurp(t.alice, &n);
	p = malloc(n + 1);
	assert_non_null(p);
	assert_int_equal(alice_try(t.alice), QKD_OK);
	/* truncated by one byte, and by all but the header; one byte too many */
	spit(bad, good, n - 1);
	assert_int_equal(alice_try(bad), QKD_ERR_PROTO);
	spit(bad, good, QKD_REC_ALICE_HEADER);
	assert_int_equal(alice_try(bad), QKD_ERR_PROTO);
	spit(bad, good, 20);
	assert_int_equal(alice_try(bad), QKD_ERR_PROTO);
	memcpy(p, good, n);
	p[n] = 0;
	spit(bad, p, n + 1);
	assert_int_equal(alice_try(bad), QKD_ERR_PROTO);
	/* a flipped bit in a block, in the header's data, in a digest */
	for (size_t at = 0; at < 3; at++) {
		size_t off[] = {QKD_REC_ALICE_HEADER + 5000, 40, n - 3};

		memcpy(p, good, n);
		p[off[at]] ^= 0x10;
		spit(bad, p, n);
		assert_int_equal(alice_try(bad), QKD_ERR_VERIFY);
	}
	/* wrong magic, Bob's magic, wrong version (each checked before the digest) */
	memcpy(p, good, n);
	p[1] = 'X';
	spit(bad, p, n);
	assert_int_equal(alice_try(bad), QKD_ERR_PROTO);
	memcpy(p, good, n);
	p[7] = 'B';
	spit(bad, p, n);
	assert_int_equal(alice_try(bad), QKD_ERR_PROTO);
	forge(bad, good, n, QKD_REC_ALICE_HEADER, 8, 2, 2);
	assert_int_equal(alice_try(bad), QKD_ERR_PROTO);
	/* absurd counts with a valid digest */
	forge(bad, good, n, QKD_REC_ALICE_HEADER, 16, (uint64_t)1 << 63, 8);
	assert_int_equal(alice_try(bad), QKD_ERR_RANGE);
	forge(bad, good, n, QKD_REC_ALICE_HEADER, 16, 0, 8);
	assert_int_equal(alice_try(bad), QKD_ERR_RANGE);
	forge(bad, good, n, QKD_REC_ALICE_HEADER, 15, 40, 1);	/* block_log2 */
	assert_int_equal(alice_try(bad), QKD_ERR_RANGE);
	forge(bad, good, n, QKD_REC_ALICE_HEADER, 14, 200, 1);	/* intensities */
	assert_int_equal(alice_try(bad), QKD_ERR_RANGE);
	forge(bad, good, n, QKD_REC_ALICE_HEADER, 16, (uint64_t)1 << 62, 8);	/* file too short */
	assert_int_equal(alice_try(bad), QKD_ERR_PROTO);
	forge(bad, good, n, QKD_REC_ALICE_HEADER, 13, 7, 1);	/* source kind */
	assert_int_equal(alice_try(bad), QKD_ERR_PROTO);
	forge(bad, good, n, QKD_REC_ALICE_HEADER, 12, 0x02, 1);	/* not complete */
	assert_int_equal(alice_try(bad), QKD_ERR_PROTO);
	forge(bad, good, n, QKD_REC_ALICE_HEADER, 12, 0x83, 1);	/* unknown flag */
	assert_int_equal(alice_try(bad), QKD_ERR_PROTO);
	forge(bad, good, n, QKD_REC_ALICE_HEADER, 32, 0xbff0000000000000u, 8);	/* mu = -1 */
	assert_int_equal(alice_try(bad), QKD_ERR_PROTO);
	/* a block moved into another's place: its digest binds its index */
	memcpy(p, good, n);
	{
		size_t bl = 2 * 65536 / 8 + QKD_REC_DIGEST_BYTES;

		memcpy(p + QKD_REC_ALICE_HEADER, good + QKD_REC_ALICE_HEADER + bl, bl);
	}
	spit(bad, p, n);
	assert_int_equal(alice_try(bad), QKD_ERR_VERIFY);
	unlink(bad);
	free(p);
	free(good);
	tmp_remove(&t);
}

static void test_damaged_bob(void **state)
{
	struct tmp t;
	char bad[320];
	uint8_t *good, *p;
	size_t n;

	(void)state;
	tmp_make(&t);
	make_recording(&t, 30000000, 6);	/* about 190 000 detections, 3 blocks */
	snprintf(bad, sizeof bad, "%s/bad", t.dir);
	good = slurp(t.bob, &n);
	p = malloc(n + 1);
	assert_non_null(p);
	assert_int_equal(bob_try(t.bob), QKD_OK);
	spit(bad, good, n - 1);
	assert_int_equal(bob_try(bad), QKD_ERR_PROTO);
	spit(bad, good, n / 2);
	assert_int_equal(bob_try(bad), QKD_ERR_PROTO);
	memcpy(p, good, n);
	p[n] = 0;
	spit(bad, p, n + 1);
	assert_int_equal(bob_try(bad), QKD_ERR_PROTO);
	for (size_t at = 0; at < 3; at++) {
		size_t off[] = {n / 2, 20, n - 1};

		memcpy(p, good, n);
		p[off[at]] ^= 0x01;
		spit(bad, p, n);
		assert_int_equal(bob_try(bad), QKD_ERR_VERIFY);
	}
	memcpy(p, good, n);
	p[0] = 0;
	spit(bad, p, n);
	assert_int_equal(bob_try(bad), QKD_ERR_PROTO);
	assert_int_equal(alice_try(t.bob), QKD_ERR_PROTO);	/* Bob's file as Alice's */
	assert_int_equal(bob_try(t.alice), QKD_ERR_PROTO);
	forge(bad, good, n, QKD_REC_BOB_HEADER, 8, 9, 2);	/* version */
	assert_int_equal(bob_try(bad), QKD_ERR_PROTO);
	forge(bad, good, n, QKD_REC_BOB_HEADER, 16, 0, 8);	/* slots */
	assert_int_equal(bob_try(bad), QKD_ERR_RANGE);
	forge(bad, good, n, QKD_REC_BOB_HEADER, 24, 30000001, 8);	/* detections > slots */
	assert_int_equal(bob_try(bad), QKD_ERR_RANGE);
	forge(bad, good, n, QKD_REC_BOB_HEADER, 24, 29000000, 8);	/* more than the file holds */
	assert_int_equal(bob_try(bad), QKD_ERR_PROTO);
	forge(bad, good, n, QKD_REC_BOB_HEADER, 32, 0, 4);	/* events per block */
	assert_int_equal(bob_try(bad), QKD_ERR_RANGE);
	forge(bad, good, n, QKD_REC_BOB_HEADER, 32, (uint64_t)1 << 24, 4);
	assert_int_equal(bob_try(bad), QKD_ERR_RANGE);
	forge(bad, good, n, QKD_REC_BOB_HEADER, 32, 1000, 4);	/* blocks no longer match */
	assert_int_equal(bob_try(bad), QKD_ERR_PROTO);
	forge(bad, good, n, QKD_REC_BOB_HEADER, 12, 0, 1);	/* not complete */
	assert_int_equal(bob_try(bad), QKD_ERR_PROTO);
	forge(bad, good, n, QKD_REC_BOB_HEADER, 13, 1, 1);	/* reserved */
	assert_int_equal(bob_try(bad), QKD_ERR_PROTO);
	forge(bad, good, n, QKD_REC_BOB_HEADER, 40, 0, 8);	/* another recording's id */
	assert_int_equal(bob_try(bad), QKD_ERR_VERIFY);
	unlink(bad);
	free(p);
	free(good);
	tmp_remove(&t);
}

/* A chunk that reaches a corrupted block fails, and the lookups of a
 * corrupted Alice block too: no bit of a bad block is handed out. */
static void test_damage_found_late(void **state)
{
	struct tmp t;
	uint8_t *good;
	size_t n;
	struct qkd_rec_alice *a;
	struct qkd_rec_bob *b;
	struct qkd_det_list dl;
	struct qkd_detection d;
	uint64_t slot;

	(void)state;
	tmp_make(&t);
	make_recording(&t, 30000000, 8);
	good = slurp(t.alice, &n);
	good[n - 100] ^= 0x40;	/* the last block */
	spit(t.alice, good, n);
	free(good);
	good = slurp(t.bob, &n);
	good[n - 100] ^= 0x40;
	spit(t.bob, good, n);
	free(good);
	a = alice_open(t.alice);
	b = bob_open(t.bob);
	slot = 5;
	assert_int_equal(qkd_rec_alice_lookup(a, &slot, 1, &d), QKD_OK);
	slot = 30000000 - 1;
	assert_int_equal(qkd_rec_alice_lookup(a, &slot, 1, &d), QKD_ERR_VERIFY);
	qkd_det_list_init(&dl, false);
	assert_int_equal(qkd_rec_bob_chunk(b, 0, 1000000, &dl, NULL), QKD_OK);
	assert_true(dl.n > 0);
	assert_int_equal(qkd_rec_bob_chunk(b, 1000000, 29000000, &dl, NULL), QKD_ERR_VERIFY);
	assert_int_equal(dl.n, 0);
	qkd_det_list_cleanup(&dl);
	qkd_rec_alice_free(a);
	qkd_rec_bob_free(b);
	tmp_remove(&t);
}

/* Files of two recordings do not make a pair; an unfinished file is
 * incomplete. */
static void test_pairs_and_incomplete(void **state)
{
	struct tmp t1, t2;
	struct qkd_rec_info info, wi;
	struct qkd_rec_alice_writer *aw = NULL;
	struct qkd_link_params p;
	const char *file = NULL, *why = NULL;

	(void)state;
	tmp_make(&t1);
	tmp_make(&t2);
	make_recording(&t1, 100000, 1);
	make_recording(&t2, 100000, 2);
	rename(t2.bob, t1.bob);
	assert_int_equal(qkd_rec_check_dir(t1.dir, &info, &file, &why), QKD_ERR_PROTO);
	assert_string_equal(file, QKD_REC_BOB_FILE);	/* the id is part of Bob's digests */
	assert_int_equal(qkd_rec_check_dir(t2.dir, &info, &file, &why), QKD_ERR_IO);
	assert_string_equal(file, QKD_REC_BOB_FILE);
	qkd_link_params_default(&p);
	p.pulses = 100000;
	qkd_rec_info_from_link(&wi, &p);
	assert_int_equal(qkd_rec_alice_writer_new(&aw, t1.alice, &wi, &why), QKD_OK);
	qkd_rec_alice_writer_free(aw);	/* never finished */
	assert_int_equal(alice_try(t1.alice), QKD_ERR_PROTO);
	tmp_remove(&t1);
	tmp_remove(&t2);
}

/* Recording the same run twice gives the same files, byte for byte (the id
 * is derived from the link parameters, nothing depends on the clock). */
static void test_same_run_twice(void **state)
{
	struct tmp t1, t2;
	uint8_t *a1, *a2, *b1, *b2;
	size_t na1, na2, nb1, nb2;

	(void)state;
	tmp_make(&t1);
	tmp_make(&t2);
	make_recording(&t1, 500000, 3);
	make_recording(&t2, 500000, 3);
	a1 = slurp(t1.alice, &na1);
	a2 = slurp(t2.alice, &na2);
	b1 = slurp(t1.bob, &nb1);
	b2 = slurp(t2.bob, &nb2);
	assert_int_equal(na1, na2);
	assert_int_equal(nb1, nb2);
	assert_memory_equal(a1, a2, na1);	/* reproducible bit for bit */
	assert_memory_equal(b1, b2, nb1);
	free(a1);
	free(a2);
	free(b1);
	free(b2);
	tmp_remove(&t1);
	tmp_remove(&t2);
}

/* The same link through the simulator and through its recording: the
 * same keys and the same counts (the engine cannot tell them apart). */
static void test_replay_link(void **state)
{
	struct qkd_link_params p;
	struct qkd_engine_config cfg;
	struct qkd_simlink_result live, replay;
	struct qkd_party_sources ps;
	struct qkd_sim *sim;
	struct tmp t;

	(void)state;
	qkd_link_params_default(&p);
	p.pulses = 20000000;
	p.seed = 21;
	qkd_engine_config_default(&cfg);
	cfg.estimate.mu = p.mu;
	tmp_make(&t);
	sim = sim_of(&p);
	record(sim, &t);
	qkd_sim_free(sim);
	assert_int_equal(qkd_simlink_run(&p, &cfg, &live), QKD_OK);
	qkd_file_party_sources(&ps, t.dir);
	assert_int_equal(qkd_simlink_run_sources(&p, &cfg, &ps, &replay), QKD_OK);
	assert_true(live.alice.key.n > 1000);
	assert_true(qkd_bits_equal(&live.alice.key, &replay.alice.key));
	assert_true(qkd_bits_equal(&replay.alice.key, &replay.bob.key));
	assert_int_equal(live.bob.st.detections, replay.bob.st.detections);
	assert_int_equal(live.bob.st.double_clicks, replay.bob.st.double_clicks);
	assert_int_equal(live.alice.st.rnd_bits, replay.alice.st.rnd_bits);
	qkd_simlink_result_cleanup(&live);
	qkd_simlink_result_cleanup(&replay);
	/* a missing recording fails cleanly in both parties */
	tmp_remove(&t);
	assert_int_not_equal(qkd_simlink_run_sources(&p, &cfg, &ps, &replay), QKD_OK);
	qkd_simlink_result_cleanup(&replay);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_wcp),
		cmocka_unit_test(test_round_trip_entangled),
		cmocka_unit_test(test_round_trip_decoy),
		cmocka_unit_test(test_info_to_link),
		cmocka_unit_test(test_writer_edges),
		cmocka_unit_test(test_writer_rejects),
		cmocka_unit_test(test_damaged_alice),
		cmocka_unit_test(test_damaged_bob),
		cmocka_unit_test(test_damage_found_late),
		cmocka_unit_test(test_pairs_and_incomplete),
		cmocka_unit_test(test_same_run_twice),
		cmocka_unit_test(test_replay_link),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
