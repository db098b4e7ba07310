/* link_handshake.c - the opening of a classical connection, and the
 * fiber's first bytes (docs/node.md, "The handshake").
 *
 * Bob connects and speaks first; Alice proves herself before Bob tells
 * anything, and Bob before Alice does:
 *
 *   B->A  HELLO  magic, nonce_B
 *   A->B  HELLO  magic, nonce_A, MAC_g("alice hello" | nonce_B | nonce_A)
 *   B->A  SYNC   MAC_g("bob sync" | nonce_A | nonce_B | fields), fields
 *   A->B  SYNC   MAC_g("alice sync" | nonce_A | nonce_B | fields), fields
 *
 * MAC_g is keyed BLAKE2b with the link's gate key (the first 32 bytes of
 * the bootstrap key file, never used for anything else). fields
 * (link_sync.c): version, role, link name, auth_reserve_bits, round_pulses,
 * and the index of the next AUTH frame the sender will send. A stranger
 * connecting to Alice gets a nonce and a MAC over its own nonce, nothing
 * else, and is dropped once it fails the gate; a stranger Bob reaches gets
 * one nonce. Neither moves a pad: pads are used from the first AUTH frame
 * on.
 *
 * Each direction's AUTH indexes then continue from the sender's index. A
 * receiver never stands ahead of its sender (it moves only by checking the
 * sender's tags), so an index below the receiver's next is refused (the
 * peer's state went back: a backup), and so is a jump above
 * NODE_MAX_AUTH_JUMP (more than a crash explains) or beyond the pads held:
 * all before any pad is touched (node_sync_check). The gate is
 * computational; what it guards is availability. Authenticity stays
 * information-theoretic: the first AUTH frames (RECOVER's, link_commit.c)
 * cover this whole exchange under the session id nonce_A | nonce_B, and a
 * failure there is a failed connection, never exhaustion
 * (docs/authentication.md, "The handshake").
 */
#include "node_int.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/fiber.h"
#include "qkd/secret.h"
#include "qkd/sysutil.h"
#include "qkd/wire.h"

#define NONCE_LEN 16
#define MAC_LEN 32
static const char hello_magic[8] = "QKDHELO5";	/* the 5 of NODE_SYNC_VERSION */
static const char fiber_magic[8] = "QKDFIBR3";

_Static_assert(2 * NONCE_LEN == QKD_CHANNEL_SESSION_LEN, "session id = both nonces");

struct hs {
	int fd;
	const struct qkd_link_config *cfg;
	struct node_auth *auth;
	struct qkd_channel *ch;
	uint8_t nonce_a[NONCE_LEN], nonce_b[NONCE_LEN];
	struct node_sync_fields mine, peer;
	const char **why;
	bool *stranger;
	bool gate_passed;		/* the peer's SYNC MAC verified */
};

/* MAC_g(label | parts...) into out. */
static void gate_mac(const struct node_auth *a, const char *label, const uint8_t *p1,
		     const uint8_t *p2, const uint8_t *extra, size_t extra_len, uint8_t *out)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, a->gate, sizeof a->gate, MAC_LEN);
	crypto_generichash_update(&st, (const uint8_t *)label, strlen(label) + 1);
	crypto_generichash_update(&st, p1, NONCE_LEN);
	crypto_generichash_update(&st, p2, NONCE_LEN);
	if (extra_len > 0)
		crypto_generichash_update(&st, extra, extra_len);
	crypto_generichash_final(&st, out, MAC_LEN);
	qkd_wipe(&st, sizeof st);
}

static bool mac_ok(const uint8_t *want, const uint8_t *got)
{
	return sodium_memcmp(want, got, MAC_LEN) == 0;
}

/* A failure of the peer's own making: not this link's peer. */
static int refuse(struct hs *h, const char *why)
{
	*h->why = why;
	*h->stranger = true;
	return QKD_ERR_PROTO;
}

static int recv_type(struct hs *h, uint8_t want, struct qkd_rbuf *r, size_t len)
{
	int rc = qkd_channel_expect(h->ch, want, r);

	if (rc == QKD_ERR_PROTO || (rc == QKD_OK && qkd_rbuf_left(r) != len))
		return refuse(h, "malformed handshake message");
	if (rc != QKD_OK)
		*h->why = "connection lost during the handshake";
	return rc;
}

/* Bob's HELLO, or Alice's with her proof. */
static int send_hello(struct hs *h)
{
	bool alice = h->cfg->role == QKD_ROLE_ALICE;
	uint8_t mac[MAC_LEN];
	struct qkd_wbuf w;
	int rc;

	qkd_wbuf_init(&w);
	qkd_put_bytes(&w, hello_magic, sizeof hello_magic);
	qkd_put_bytes(&w, alice ? h->nonce_a : h->nonce_b, NONCE_LEN);
	if (alice) {
		gate_mac(h->auth, "qkd alice hello", h->nonce_b, h->nonce_a, NULL, 0, mac);
		qkd_put_bytes(&w, mac, MAC_LEN);
	}
	rc = w.err ? w.err : qkd_channel_send(h->ch, NODE_MSG_HELLO, w.p, w.len);
	qkd_wbuf_cleanup(&w);
	return rc;
}

static int recv_hello(struct hs *h)
{
	bool alice = h->cfg->role == QKD_ROLE_ALICE;
	uint8_t mac[MAC_LEN];
	const uint8_t *m, *n;
	struct qkd_rbuf r;
	int rc = recv_type(h, NODE_MSG_HELLO, &r, sizeof hello_magic + NONCE_LEN +
			   (alice ? 0 : MAC_LEN));

	if (rc != QKD_OK)
		return rc;
	m = qkd_get_bytes(&r, sizeof hello_magic);
	n = qkd_get_bytes(&r, NONCE_LEN);
	if (memcmp(m, hello_magic, sizeof hello_magic) != 0)
		return refuse(h, "not a qkd node, or another version");
	memcpy(alice ? h->nonce_b : h->nonce_a, n, NONCE_LEN);
	if (alice)
		return QKD_OK;
	gate_mac(h->auth, "qkd alice hello", h->nonce_b, h->nonce_a, NULL, 0, mac);
	if (!mac_ok(mac, qkd_get_bytes(&r, MAC_LEN)))
		return refuse(h, "the peer failed the gate: not this link's Alice (another "
			      "link's key, or a stranger on the port)");
	return QKD_OK;
}

static const char *sync_label(enum qkd_link_role role)
{
	return role == QKD_ROLE_ALICE ? "qkd alice sync" : "qkd bob sync";
}

static int send_sync(struct hs *h)
{
	struct qkd_wbuf f, w;
	uint8_t mac[MAC_LEN];
	int rc;

	qkd_wbuf_init(&f);
	qkd_wbuf_init(&w);
	node_sync_put(&f, &h->mine);
	gate_mac(h->auth, sync_label(h->cfg->role), h->nonce_a, h->nonce_b, f.p, f.len, mac);
	qkd_put_bytes(&w, mac, MAC_LEN);
	qkd_put_bytes(&w, f.p, f.len);
	rc = f.err ? f.err : w.err ? w.err : qkd_channel_send(h->ch, NODE_MSG_SYNC, w.p, w.len);
	qkd_wbuf_cleanup(&f);
	qkd_wbuf_cleanup(&w);
	return rc;
}

static int recv_sync(struct hs *h)
{
	enum qkd_link_role peer = h->cfg->role == QKD_ROLE_ALICE ? QKD_ROLE_BOB : QKD_ROLE_ALICE;
	uint8_t mac[MAC_LEN];
	const uint8_t *got;
	struct qkd_rbuf r, body;
	int rc = recv_type(h, NODE_MSG_SYNC, &r, MAC_LEN + NODE_SYNC_FIELDS_LEN);

	if (rc != QKD_OK)
		return rc;
	got = qkd_get_bytes(&r, MAC_LEN);
	qkd_rbuf_init(&body, r.p + r.off, qkd_rbuf_left(&r));
	gate_mac(h->auth, sync_label(peer), h->nonce_a, h->nonce_b, body.p, body.len, mac);
	if (!mac_ok(mac, got))
		return refuse(h, "the peer failed the gate: not this link's peer");
	h->gate_passed = true;
	return node_sync_get(&body, &h->peer) == QKD_OK ? QKD_OK
							 : refuse(h, "malformed SYNC");
}

/* The peer is the link's peer (it passed the gate); now its settings and
 * where its AUTH frames start, against this end's receiving direction. */
static const char *fields_check(const struct hs *h)
{
	const char *why = node_sync_check(&h->mine, &h->peer, qkd_wc_next_recv_index(h->auth->wc),
					  qkd_wc_recv_pads_left(h->auth->wc));

	return why != NULL ? why : node_sync_check_node(&h->mine, &h->peer, h->cfg->peer);
}

/* Both ends: the pads for the first AUTH frame each way must exist. */
static int pads_check(struct hs *h)
{
	if (qkd_wc_send_pads_left(h->auth->wc) > 0 && qkd_wc_recv_pads_left(h->auth->wc) > 0)
		return QKD_OK;
	*h->why = "authentication key exhausted";
	return QKD_ERR_NOKEY;
}

static void fill_mine(struct hs *h)
{
	memset(&h->mine, 0, sizeof h->mine);
	h->mine.version = NODE_SYNC_VERSION;
	h->mine.role = (uint8_t)h->cfg->role;
	snprintf(h->mine.name, sizeof h->mine.name, "%s", h->cfg->name);
	snprintf(h->mine.node, sizeof h->mine.node, "%s", h->cfg->node_id);
	h->mine.reserve = h->cfg->auth_reserve_bits;
	h->mine.pulses = h->cfg->round_pulses;
	h->mine.index = (uint32_t)qkd_wc_next_send_index(h->auth->wc);
}

static int exchange(struct hs *h)
{
	bool alice = h->cfg->role == QKD_ROLE_ALICE;
	int rc = alice ? recv_hello(h) : send_hello(h);

	if (rc == QKD_OK)
		rc = alice ? send_hello(h) : recv_hello(h);
	if (rc == QKD_OK)
		rc = alice ? recv_sync(h) : send_sync(h);
	if (rc == QKD_OK)
		rc = alice ? QKD_OK : recv_sync(h);
	if (rc == QKD_OK && (*h->why = fields_check(h)) != NULL)
		rc = QKD_ERR_PROTO;
	if (rc == QKD_OK && alice)
		rc = send_sync(h);
	return rc;
}

int node_handshake(int fd, struct node_auth *a, const struct qkd_link_config *cfg,
		   struct qkd_channel *ch, uint8_t *session, bool *stranger, const char **why,
		   char *peer_id)
{
	struct hs h = { .fd = fd, .cfg = cfg, .auth = a, .ch = ch, .why = why,
			.stranger = stranger };
	int rc;

	*stranger = false;
	qkd_channel_init(ch, fd, &node_auth_ops, a);
	qkd_wc_reset_batches(a->wc);
	randombytes_buf(cfg->role == QKD_ROLE_ALICE ? h.nonce_a : h.nonce_b, NONCE_LEN);
	fill_mine(&h);
	rc = pads_check(&h);
	/* Alice gives a stranger little time; Bob waits longer for Alice,
	 * who may be busy turning strangers away. */
	node_set_timeouts_s(fd, cfg->role == QKD_ROLE_ALICE ? NODE_HANDSHAKE_TIMEOUT_S
							   : NODE_PEER_WAIT_S);
	if (rc == QKD_OK)
		rc = exchange(&h);
	/* h.peer stays zero until a SYNC passed the gate (recv_sync). */
	if (peer_id != NULL)
		snprintf(peer_id, QKD_NODE_NAME_MAX, "%s", h.peer.node);
	node_set_timeouts_s(fd, NODE_IO_TIMEOUT_S);
	/* Whoever leaves Alice before passing the gate (silent, gone, or
	 * talking nonsense) is a stranger to her: no back-off for Bob's sake. */
	if (rc != QKD_OK && cfg->role == QKD_ROLE_ALICE && !h.gate_passed)
		*stranger = true;
	if (rc != QKD_OK) {
		qkd_channel_cleanup(ch);
		return rc;
	}
	memcpy(session, h.nonce_a, NONCE_LEN);
	memcpy(session + NONCE_LEN, h.nonce_b, NONCE_LEN);
	qkd_channel_bind(ch, session);
	ch->auth_send = h.mine.index;
	ch->auth_recv = h.peer.index;
	return QKD_OK;
}

/* ---- the fiber ---- */

#define FIBER_HELLO_LEN (sizeof fiber_magic + QKD_CHANNEL_SESSION_LEN + MAC_LEN)
_Static_assert(FIBER_HELLO_LEN == QKD_FIBER_HELLO_LEN, "qkd/fiber.h names its length");

static void fiber_hello(const struct node_auth *a, const uint8_t *session, uint8_t *out)
{
	memcpy(out, fiber_magic, sizeof fiber_magic);
	memcpy(out + sizeof fiber_magic, session, QKD_CHANNEL_SESSION_LEN);
	gate_mac(a, "qkd fiber", session, session + NONCE_LEN, NULL, 0,
		 out + sizeof fiber_magic + QKD_CHANNEL_SESSION_LEN);
}

int node_fiber_hello_send(int fd, const struct node_auth *a, const uint8_t *session)
{
	uint8_t out[FIBER_HELLO_LEN];

	fiber_hello(a, session, out);
	return qkd_write_all(fd, out, sizeof out);
}

bool node_fiber_hello_ok(int fd, const struct node_auth *a, const uint8_t *session)
{
	uint8_t want[FIBER_HELLO_LEN], got[FIBER_HELLO_LEN];
	bool ok;

	node_set_timeouts_s(fd, NODE_HANDSHAKE_TIMEOUT_S);
	ok = qkd_read_all(fd, got, sizeof got) == QKD_OK;
	node_set_timeouts_s(fd, NODE_IO_TIMEOUT_S);
	fiber_hello(a, session, want);
	return ok && sodium_memcmp(want, got, sizeof want) == 0;
}
