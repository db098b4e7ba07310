/* libFuzzer target: the key manager's records and verdicts as they cross
 * the link (lib/kme/kme_wire.c). Each input is read as each part of a
 * message: records, verdicts, withdrawals, their answers, quarantined
 * blocks. What parses must be within the format's
 * bounds (counts, name lengths, segments) and must encode back to exactly
 * the bytes it was read from (the encoding is canonical but for varint
 * padding, which the writer never produces: compare by re-reading). */
#include <stdlib.h>
#include <string.h>

#include "../../lib/kme/kme_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct qkd_kme_rec recs[NODE_KME_BATCH_MAX], again[NODE_KME_BATCH_MAX];
static struct node_kme_verdict v[NODE_KME_BATCH_MAX], v2[NODE_KME_BATCH_MAX];

static void check_recs(const uint8_t *data, size_t size)
{
	struct qkd_rbuf r, r2;
	struct qkd_wbuf w;
	size_t n, n2;

	qkd_rbuf_init(&r, data, size);
	n = node_kme_get_recs(&r, recs);
	if (!qkd_rbuf_ok(&r))
		return;
	if (n > NODE_KME_BATCH_MAX)
		abort();
	for (size_t i = 0; i < n; i++) {
		size_t lm = strlen(recs[i].master), ls = strlen(recs[i].slave);

		if (lm == 0 || lm > QKD_KME_SAE_ID_MAX || ls == 0 || ls > QKD_KME_SAE_ID_MAX ||
		    recs[i].nsegs == 0 || recs[i].nsegs > QKD_KME_KEY_SEGS_MAX ||
		    recs[i].nbits > QKD_KME_KEY_BITS_MAX)
			abort();
	}
	qkd_wbuf_init(&w);
	node_kme_put_recs(&w, recs, n);
	if (w.err != 0)
		abort();
	qkd_rbuf_init(&r2, w.p, w.len);
	n2 = node_kme_get_recs(&r2, again);
	if (!qkd_rbuf_done(&r2) || n2 != n)
		abort();
	for (size_t i = 0; i < n; i++)
		if (memcmp(recs[i].key_id, again[i].key_id, 16) != 0 ||
		    strcmp(recs[i].master, again[i].master) != 0 ||
		    strcmp(recs[i].slave, again[i].slave) != 0 ||
		    recs[i].nbits != again[i].nbits || recs[i].nsegs != again[i].nsegs ||
		    memcmp(recs[i].segs, again[i].segs, recs[i].nsegs * sizeof recs[i].segs[0]) != 0)
			abort();
	qkd_wbuf_cleanup(&w);
}

static void check_verdicts(const uint8_t *data, size_t size)
{
	struct qkd_rbuf r, r2;
	struct qkd_wbuf w;
	size_t n, n2;

	qkd_rbuf_init(&r, data, size);
	n = node_kme_get_verdicts(&r, v);
	if (!qkd_rbuf_ok(&r))
		return;
	for (size_t i = 0; i < n; i++)
		if (v[i].v > QKD_KME_LATER)
			abort();
	qkd_wbuf_init(&w);
	node_kme_put_verdicts(&w, v, n);
	qkd_rbuf_init(&r2, w.p, w.len);
	n2 = node_kme_get_verdicts(&r2, v2);
	if (w.err != 0 || !qkd_rbuf_done(&r2) || n2 != n || memcmp(v, v2, n * sizeof v[0]) != 0)
		abort();
	qkd_wbuf_cleanup(&w);
}

static struct qkd_kme_rec wr[NODE_KME_BATCH_MAX], wr2[NODE_KME_BATCH_MAX];
static struct node_kme_wd wd[NODE_KME_BATCH_MAX], wd2[NODE_KME_BATCH_MAX];
static uint64_t blk[NODE_KME_BATCH_MAX], blk2[NODE_KME_BATCH_MAX];

/* Withdrawals, their answers and quarantined blocks: in bounds, and they
 * read back the same after a write. */
static void check_lists(const uint8_t *data, size_t size)
{
	struct qkd_rbuf r, r2;
	struct qkd_wbuf w;
	size_t n;

	qkd_rbuf_init(&r, data, size);
	n = node_kme_get_withdrawals(&r, wr);
	qkd_wbuf_init(&w);
	if (qkd_rbuf_ok(&r)) {
		for (size_t i = 0; i < n; i++)
			if (wr[i].nsegs > QKD_KME_KEY_SEGS_MAX)
				abort();
		node_kme_put_withdrawals(&w, wr, n);
		qkd_rbuf_init(&r2, w.p, w.len);
		if (node_kme_get_withdrawals(&r2, wr2) != n || !qkd_rbuf_done(&r2))
			abort();
		for (size_t i = 0; i < n; i++)
			if (memcmp(wr[i].key_id, wr2[i].key_id, 16) != 0 || wr[i].nsegs != wr2[i].nsegs ||
			    memcmp(wr[i].segs, wr2[i].segs, wr[i].nsegs * sizeof wr[i].segs[0]) != 0)
				abort();
	}
	qkd_rbuf_init(&r, data, size);
	n = node_kme_get_wds(&r, wd);
	qkd_wbuf_reset(&w);
	if (qkd_rbuf_ok(&r)) {
		for (size_t i = 0; i < n; i++)
			if (wd[i].v > QKD_KME_WD_DELIVERED)
				abort();
		node_kme_put_wds(&w, wd, n);
		qkd_rbuf_init(&r2, w.p, w.len);
		if (node_kme_get_wds(&r2, wd2) != n || !qkd_rbuf_done(&r2) ||
		    memcmp(wd, wd2, n * sizeof wd[0]) != 0)
			abort();
	}
	qkd_rbuf_init(&r, data, size);
	n = node_kme_get_blocks(&r, blk);
	qkd_wbuf_reset(&w);
	if (qkd_rbuf_ok(&r)) {
		for (size_t i = 0; i < n; i++)
			if (blk[i] > QKD_STORE_ID_MAX)
				abort();
		node_kme_put_blocks(&w, blk, n);
		qkd_rbuf_init(&r2, w.p, w.len);
		if (node_kme_get_blocks(&r2, blk2) != n || !qkd_rbuf_done(&r2) ||
		    memcmp(blk, blk2, n * sizeof blk[0]) != 0)
			abort();
	}
	qkd_wbuf_cleanup(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_recs(data, size);
	check_verdicts(data, size);
	check_lists(data, size);
	return 0;
}
