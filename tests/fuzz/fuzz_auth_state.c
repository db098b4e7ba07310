/* libFuzzer target: a link's authentication state file, STORE.auth
 * (lib/node/auth_file.c, docs/node.md "Authentication and its key"), which
 * a node trusts at start-up to know which one-time pads it has used. The
 * first input byte says how the rest is read: bit 0 clear, as the file's
 * bytes; set, as the file without its checksum, to which the target
 * appends the right BLAKE2b, so the fuzzer gets past the checksum into the
 * fields and the Wegman-Carter image behind them.
 *
 * Checks besides not crashing or leaking:
 * - node_auth_decode refuses with a reason and holds nothing (no
 *   authenticator, no tentative bits), or gives a state with an
 *   authenticator and tentative bits exactly when their length is not 0;
 * - node_auth_load of the same bytes, written as STORE.auth in a private
 *   temporary directory (removed at exit), gives the same verdict, and
 *   takes the authenticator's next send index as its lease;
 * - what loads encodes (node_auth_encode) to a file that loads, and that
 *   one encodes to the same bytes again (a fixpoint); through it the gate
 *   key, the rounds and the tentative bits stay as they were, the
 *   receiving direction does not move, and the sending one moves on to the
 *   file's lease: never back (a pad used twice), never past the pads held;
 * - the loaded authenticator works: a tag at its next send index is made
 *   exactly when a pad is held, and a made-up tag at its next receive
 *   index is refused (QKD_ERR_VERIFY while pads are held).
 *
 * Seeds (tests/fuzz/corpus/auth_state/): files node_auth_create and
 * node_auth_save wrote for Alice and Bob from a small bootstrap key
 * (fresh; after a tag, a failed check and tentative bits, the send lease
 * then covering every pad; after the refill), each as the file ("_raw")
 * and as its body ("_body"); a format 1 file; the magic alone; and
 * crash_pads_past_index_2_32, an image claiming pads past the last tag
 * index that used to load once and never again. */
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/node/node_int.h"
#include "qkd/error.h"
#include "qkd/sysutil.h"
#include "qkd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SUM_LEN 32
#define MAX_FILE (1u << 16)

static struct {
	bool ready;
	char dir[64];
	char auth[96];		/* dir/s.db.auth */
	struct qkd_link_config cfg;
} g;

static void cleanup(void)
{
	(void)unlink(g.auth);
	if (rmdir(g.dir) != 0)
		fprintf(stderr, "fuzz_auth_state: could not remove %s\n", g.dir);
}

static void setup(void)
{
	if (sodium_init() < 0)
		abort();
	snprintf(g.dir, sizeof g.dir, "/tmp/qkd-fuzz-auth.XXXXXX");
	if (mkdtemp(g.dir) == NULL)
		abort();
	snprintf(g.cfg.store, sizeof g.cfg.store, "%s/s.db", g.dir);
	snprintf(g.auth, sizeof g.auth, "%s.auth", g.cfg.store);
	atexit(cleanup);
	g.ready = true;
}

/* The input as a file: as given, or with its checksum appended. */
static uint8_t *make_file(const uint8_t *data, size_t size, size_t *len)
{
	bool sum = data[0] & 1;
	uint8_t *f;

	*len = size - 1 + (sum ? SUM_LEN : 0);
	f = malloc(*len ? *len : 1);
	if (f == NULL)
		abort();
	memcpy(f, data + 1, size - 1);
	if (sum)
		crypto_generichash(f + size - 1, SUM_LEN, f, size - 1, NULL, 0);
	return f;
}

static void write_file(const uint8_t *f, size_t len)
{
	int fd = open(g.auth, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || qkd_write_all(fd, f, len) != QKD_OK || close(fd) != 0)
		abort();
}

/* A refused file leaves nothing to free and says why. */
static void check_refused(const struct node_auth *a, int rc, const char *why)
{
	if (rc != QKD_ERR_PROTO && rc != QKD_ERR_NOMEM)
		abort();
	if (why == NULL || a->wc != NULL || a->tentative != NULL)
		abort();
}

static void check_loaded(const struct node_auth *a, const char *why)
{
	if (why != NULL || a->wc == NULL || (a->tentative == NULL) != (a->tentative_len == 0))
		abort();
}

/* b was read from the encoding of a (a's lease_send as the file's). */
static void check_round_trip(const struct node_auth *a, const struct node_auth *b)
{
	uint64_t next = qkd_wc_next_send_index(a->wc), held = qkd_wc_send_pads_left(a->wc);
	uint64_t want = a->lease_send < next ? next : a->lease_send;

	if (want > next + held)
		want = next + held;
	if (memcmp(a->gate, b->gate, sizeof a->gate) != 0 ||
	    a->replenished_through != b->replenished_through ||
	    a->tentative_round != b->tentative_round || a->lease_send != b->lease_send ||
	    a->tentative_len != b->tentative_len ||
	    (a->tentative_len > 0 && memcmp(a->tentative, b->tentative, a->tentative_len) != 0))
		abort();
	if (qkd_wc_next_send_index(b->wc) != want ||
	    qkd_wc_send_pads_left(b->wc) != held - (want - next))
		abort();	/* a pad used twice, or claimed beyond those held */
	if (qkd_wc_next_recv_index(b->wc) != qkd_wc_next_recv_index(a->wc) ||
	    qkd_wc_recv_pads_left(b->wc) != qkd_wc_recv_pads_left(a->wc))
		abort();
}

/* Encode a, read it back, encode again: the same bytes. */
static void check_fixpoint(const struct node_auth *a)
{
	struct node_auth b;
	struct qkd_wbuf w1, w2;
	const char *why = "unset";

	memset(&b, 0, sizeof b);
	qkd_wbuf_init_secret(&w1);
	qkd_wbuf_init_secret(&w2);
	node_auth_encode(a, &w1);
	if (w1.err != 0 || node_auth_decode(&b, w1.p, w1.len, &why) != QKD_OK)
		abort();
	check_loaded(&b, why);
	check_round_trip(a, &b);
	node_auth_encode(&b, &w2);
	if (w2.err != 0 || w2.len != w1.len || memcmp(w1.p, w2.p, w1.len) != 0)
		abort();
	node_auth_close(&b);
	qkd_wbuf_cleanup(&w1);
	qkd_wbuf_cleanup(&w2);
}

/* The same bytes through the file: the same verdict, the load's lease. */
static void check_load(const uint8_t *f, size_t len, int rc_decode, const struct node_auth *a)
{
	struct node_auth l;
	const char *why = NULL;
	bool found = false;
	int rc;

	write_file(f, len);
	rc = node_auth_load(&l, &g.cfg, &found, &why);
	if (!found || rc != rc_decode)
		abort();
	if (rc == QKD_OK) {
		check_loaded(&l, why);
		if (l.lease_send != qkd_wc_next_send_index(l.wc) ||
		    qkd_wc_next_send_index(l.wc) != qkd_wc_next_send_index(a->wc) ||
		    l.replenished_through != a->replenished_through)
			abort();
	} else {
		check_refused(&l, rc, why);
	}
	node_auth_close(&l);
}

/* The authenticator as loaded can be used (this spends its pads: last). */
static void check_usable(struct node_auth *a)
{
	uint64_t ns = qkd_wc_next_send_index(a->wc), nr = qkd_wc_next_recv_index(a->wc);
	uint8_t tag[QKD_WC_TAG_LEN] = { 0 };
	int rc;

	if (ns <= UINT32_MAX) {
		bool held = qkd_wc_send_pads_left(a->wc) > 0;

		rc = qkd_wc_seal(a->wc, (uint32_t)ns, tag);
		if (rc != (held ? QKD_OK : QKD_ERR_NOKEY))
			abort();
	}
	if (nr <= UINT32_MAX) {
		bool held = qkd_wc_recv_pads_left(a->wc) > 0;

		rc = qkd_wc_check(a->wc, (uint32_t)nr, tag);
		if (rc == QKD_OK || (held && rc != QKD_ERR_VERIFY) ||
		    (rc != QKD_ERR_VERIFY && rc != QKD_ERR_NOKEY))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct node_auth a;
	const char *why = NULL;
	uint8_t *f;
	size_t len;
	int rc;

	if (!g.ready)
		setup();
	if (size < 1 || size > MAX_FILE)
		return 0;
	f = make_file(data, size, &len);
	memset(&a, 0, sizeof a);
	rc = node_auth_decode(&a, f, len, &why);
	if (rc == QKD_OK) {
		check_loaded(&a, why);
		check_fixpoint(&a);
	} else {
		check_refused(&a, rc, why);
	}
	check_load(f, len, rc, &a);
	if (rc == QKD_OK)
		check_usable(&a);
	node_auth_close(&a);
	free(f);
	return 0;
}
