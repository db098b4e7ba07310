/* libFuzzer target: the fields of the handshake's SYNC message and the
 * rules a node applies to its peer's (lib/node/link_sync.c, docs/node.md
 * "The handshake"), on their own: no socket, no MAC (fuzz_handshake.c
 * drives the whole exchange). The input, read with the bounded reader:
 *
 *   u8 flags (bit 0: this node is Bob, else Alice; bit 1: the link names
 *   its peer "node-b"), varint next, varint
 *   held (this end's next receive index and receive pads held), then the
 *   SYNC fields as they would follow the MAC.
 *
 * Checks besides not crashing:
 * - the fields parse exactly when they are 150 bytes long, and what parses
 *   encodes back to the same bytes (the name's and the node id's last
 *   bytes forced to NUL);
 * - node_sync_check lets in exactly the peers an independent reading of
 *   the rules lets in: version 5, the other role, the link's name,
 *   auth_reserve_bits and round_pulses, and an index neither behind next,
 *   nor more than 128 above it, nor at or beyond next + held;
 * - so an accepted SYNC never moves the receive index backwards (a pad
 *   used twice) nor past the pads held;
 * - for small next and held, against a real Wegman-Carter receiver in that
 *   state: its next index and pads are what the check was given, an
 *   accepted index names a pad it holds (a made-up tag there is refused
 *   with QKD_ERR_VERIFY, not QKD_ERR_NOKEY, and its next index stays), and
 *   an index refused as beyond the pads held names none (QKD_ERR_NOKEY);
 * - node_sync_check_node admits exactly a non-empty node id other than
 *   this node's ("node-a") that equals the link's peer when one is set
 *   (bit 1 of flags: peer "node-b", else none). */
#include <stdlib.h>
#include <string.h>

#include "../../lib/node/node_int.h"
#include "qkd/auth_wc.h"
#include "qkd/error.h"
#include "qkd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The format and rules as docs/node.md states them, written out again
 * here (not shared with the code under test). */
#define FIELDS 150		/* u8 version, u8 role, name[64], node[64], u64, u64, u32 */
#define NAME_AT 2
#define NAME_LEN 64
#define NODE_AT (NAME_AT + NAME_LEN)
#define VERSION 5
#define JUMP_MAX 128
#define RESERVE 262144
#define PULSES 10000000
/* A real receiver is built for next and held below this many pads (and
 * not both 0: an authenticator starts with a pad each way). */
#define REAL_MAX 1024

_Static_assert(FIELDS == NODE_SYNC_FIELDS_LEN, "docs/node.md: 150 bytes of fields");

static void fill_mine(struct node_sync_fields *m, bool bob)
{
	memset(m, 0, sizeof *m);
	m->version = NODE_SYNC_VERSION;
	m->role = (uint8_t)(bob ? QKD_ROLE_BOB : QKD_ROLE_ALICE);
	strcpy(m->name, "ab");
	strcpy(m->node, "node-a");
	m->reserve = RESERVE;
	m->pulses = PULSES;
	m->index = 0;
}

/* The rules, read from the fields' bytes rather than the struct. */
static bool rules_admit(const uint8_t *b, bool bob, uint64_t next, uint64_t held)
{
	struct qkd_rbuf r;
	uint8_t version, role;
	const uint8_t *name;
	uint64_t reserve, pulses, index;

	qkd_rbuf_init(&r, b, FIELDS);
	version = qkd_get_u8(&r);
	role = qkd_get_u8(&r);
	name = qkd_get_bytes(&r, NAME_LEN);
	(void)qkd_get_bytes(&r, NAME_LEN);	/* the node id: node_sync_check_node's */
	reserve = qkd_get_u64(&r);
	pulses = qkd_get_u64(&r);
	index = qkd_get_u32(&r);
	if (!qkd_rbuf_done(&r))
		abort();
	/* "ab" then a NUL; the last byte does not count (always NUL). */
	if (version != VERSION || role != (bob ? QKD_ROLE_ALICE : QKD_ROLE_BOB) ||
	    name[0] != 'a' || name[1] != 'b' || name[2] != 0 ||
	    reserve != RESERVE || pulses != PULSES)
		return false;
	return index >= next && index - next <= JUMP_MAX && index - next < held;
}

static void check_encoding(const uint8_t *b, size_t len, const struct node_sync_fields *f)
{
	struct qkd_wbuf w;

	qkd_wbuf_init(&w);
	node_sync_put(&w, f);
	if (w.err != 0 || w.len != len || memcmp(w.p, b, NAME_AT + NAME_LEN - 1) != 0 ||
	    w.p[NAME_AT + NAME_LEN - 1] != 0 ||
	    memcmp(w.p + NODE_AT, b + NODE_AT, NAME_LEN - 1) != 0 ||
	    w.p[NODE_AT + NAME_LEN - 1] != 0 ||
	    memcmp(w.p + NODE_AT + NAME_LEN, b + NODE_AT + NAME_LEN,
		   len - NODE_AT - NAME_LEN) != 0)
		abort();
	qkd_wbuf_cleanup(&w);
}

/* A receiver whose next receive index is next, holding held pads: a fresh
 * authenticator with next + held pads each way, saved with a receive lease
 * of next and read back (qkd_wc_export's lease marks them used). */
static struct qkd_wc *receiver(bool bob, uint64_t next, uint64_t held)
{
	size_t pads = (size_t)(next + held), len = QKD_WC_HASH_KEY_LEN + 2 * QKD_WC_PAD_LEN * pads;
	uint8_t *boot = malloc(len);
	struct qkd_wc *w = NULL, *r = NULL;
	struct qkd_wbuf img;
	struct qkd_rbuf in;

	if (boot == NULL)
		abort();
	for (size_t i = 0; i < len; i++)
		boot[i] = (uint8_t)(i * 37 + 11);
	qkd_wbuf_init_secret(&img);
	if (qkd_wc_new(&w, boot, len, !bob) != QKD_OK || qkd_wc_export(w, 0, next, &img) != QKD_OK)
		abort();
	qkd_rbuf_init(&in, img.p, img.len);
	if (qkd_wc_import(&r, &in) != QKD_OK)
		abort();
	qkd_wc_free(w);
	qkd_wbuf_cleanup(&img);
	free(boot);
	return r;
}

static void check_real(bool bob, uint64_t next, uint64_t held, const struct node_sync_fields *mine,
		       const struct node_sync_fields *peer, bool admitted)
{
	struct qkd_wc *w = receiver(bob, next, held);
	uint8_t tag[QKD_WC_TAG_LEN] = { 0 };
	int rc;

	if (qkd_wc_next_recv_index(w) != next || qkd_wc_recv_pads_left(w) != held)
		abort();
	if ((node_sync_check(mine, peer, qkd_wc_next_recv_index(w),
			     qkd_wc_recv_pads_left(w)) == NULL) != admitted)
		abort();
	rc = qkd_wc_check(w, peer->index, tag);
	if (admitted && (rc != QKD_ERR_VERIFY || qkd_wc_next_recv_index(w) != next))
		abort();	/* the accepted index names no pad held, or moved next */
	if (peer->index >= next && peer->index - next >= held && rc != QKD_ERR_NOKEY)
		abort();	/* "beyond the pads held", yet a pad was there */
	qkd_wc_free(w);
}

/* The node id rule read from the bytes: up to the first NUL of the 63
 * that count, non-empty, not "node-a", and want when want is set. */
static void check_node(const uint8_t *b, const struct node_sync_fields *mine,
		       const struct node_sync_fields *peer, const char *want)
{
	char id[NAME_LEN];
	bool ok;

	memcpy(id, b + NODE_AT, NAME_LEN - 1);
	id[NAME_LEN - 1] = '\0';
	ok = id[0] != '\0' && strcmp(id, "node-a") != 0 && (want[0] == '\0' || strcmp(id, want) == 0);
	if ((node_sync_check_node(mine, peer, want) == NULL) != ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct node_sync_fields mine, peer;
	struct qkd_rbuf in, body;
	uint64_t next, held;
	const char *why;
	bool bob, admitted;
	uint8_t flags;
	size_t len;

	qkd_rbuf_init(&in, data, size);
	flags = qkd_get_u8(&in);
	bob = flags & 1;
	next = qkd_get_varint(&in);
	held = qkd_get_varint(&in);
	if (!qkd_rbuf_ok(&in))
		return 0;
	len = qkd_rbuf_left(&in);
	qkd_rbuf_init(&body, in.p + in.off, len);
	fill_mine(&mine, bob);
	memset(&peer, 0, sizeof peer);
	if ((node_sync_get(&body, &peer) == QKD_OK) != (len == FIELDS))
		abort();
	if (len != FIELDS)
		return 0;
	check_encoding(in.p + in.off, len, &peer);
	why = node_sync_check(&mine, &peer, next, held);
	admitted = rules_admit(in.p + in.off, bob, next, held);
	if ((why == NULL) != admitted)
		abort();
	if (why == NULL && (peer.index < next || peer.index - next >= held ||
			    peer.index - next > JUMP_MAX))
		abort();	/* backwards, or past the pads held */
	if (next < REAL_MAX && held < REAL_MAX && next + held > 0)
		check_real(bob, next, held, &mine, &peer, admitted);
	check_node(in.p + in.off, &mine, &peer, flags & 2 ? "node-b" : "");
	return 0;
}
