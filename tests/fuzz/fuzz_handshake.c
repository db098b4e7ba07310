/* libFuzzer target: the opening of a link's classical connection
 * (lib/node/link_handshake.c, docs/node.md "The handshake"), the part of a
 * node any stranger on its port reaches. The node (Alice or Bob, by the
 * first byte) runs node_handshake in a thread on one end of a socketpair;
 * the fuzzer is the peer on the other end, and it knows the gate key, so
 * it can get past the gate with any settings and any AUTH index. The rest
 * of the input is a script read with the bounded reader; every op byte
 * (mod 3) picks one of:
 *
 *   0 RAW    u8 len, len bytes written as they are; no frame is read from
 *            the node after this (it may be waiting for the rest of one)
 *   1 HELLO  u8 flags (1: wrong magic, 2: wrong MAC, 4: one byte short),
 *            16 nonce bytes; the node's answer frame is read
 *   2 SYNC   u8 flags (1: wrong MAC, 2: one byte short), u8 version delta,
 *            u8 role, u8 name (0: the link's name and the peer's node id;
 *            bit 0: another link name, bit 1: another node id, bit 2: the
 *            node's own id; any other bit: another name), u8 settings
 *            (0: the link's, else another reserve), u8 index mode (0: the
 *            node's next, 1: plus u8, 2: a u32 as given), ...
 *
 * Checks besides not crashing (docs/node.md): the handshake succeeds only
 * when the peer's last SYNC carried a good MAC over the link's own
 * settings and an index within bounds, and always when the peer played a
 * proper HELLO, SYNC; the node sends its SYNC only to a peer that passed
 * the gate, and that SYNC carries a good MAC; no pad is spent or skipped,
 * whatever the peer sends; Alice calls a peer that failed the gate a
 * stranger. */
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../../lib/node/node_int.h"
#include "qkd/error.h"
#include "qkd/keystore.h"
#include "qkd/sysutil.h"
#include "qkd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The handshake's format, written out again here as the test's own
 * reading of docs/node.md (not shared with the code it checks). */
#define NONCE 16
#define MAC 32
#define VERSION 5
#define FIELDS_LEN (2 + 2 * QKD_NODE_NAME_MAX + 8 + 8 + 4)
static const char magic[8] = "QKDHELO5";

struct node_side {
	int fd;
	struct node_auth *a;
	const struct qkd_link_config *cfg;
	struct qkd_channel ch;
	uint8_t session[QKD_CHANNEL_SESSION_LEN];
	bool stranger;
	const char *why;
	int rc;
	uint64_t auth_recv;
};

static struct {
	bool ready;
	char dir[64];
	struct qkd_link_config cfg[2];		/* [0] Alice, [1] Bob */
	struct node_auth auth[2];
	struct qkd_store *store[2];
} g;

static void cleanup(void)
{
	char cmd[128];

	for (int i = 0; i < 2; i++) {
		node_auth_close(&g.auth[i]);
		qkd_store_close(g.store[i]);
	}
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", g.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_handshake: could not remove %s\n", g.dir);
}

/* One link's two ends, made once from a fixed bootstrap key. */
static void setup(void)
{
	uint8_t key[4096];
	const char *why = NULL;
	FILE *k;

	if (sodium_init() < 0)
		abort();
	signal(SIGPIPE, SIG_IGN);	/* as the daemon: a peer gone is an error, not a signal */
	snprintf(g.dir, sizeof g.dir, "/tmp/qkd-fuzz-hs.XXXXXX");
	if (mkdtemp(g.dir) == NULL)
		abort();
	for (size_t i = 0; i < sizeof key; i++)
		key[i] = (uint8_t)(i * 131 + 7);
	for (int i = 0; i < 2; i++) {
		struct qkd_link_config *c = &g.cfg[i];

		snprintf(c->name, sizeof c->name, "ab");
		snprintf(c->node_id, sizeof c->node_id, "node-%c", i == 0 ? 'a' : 'b');
		snprintf(c->peer, sizeof c->peer, "node-%c", i == 0 ? 'b' : 'a');
		c->role = i == 0 ? QKD_ROLE_ALICE : QKD_ROLE_BOB;
		snprintf(c->store, sizeof c->store, "%s/%c.db", g.dir, i == 0 ? 'a' : 'b');
		snprintf(c->auth_key, sizeof c->auth_key, "%s/ab.key", g.dir);
		c->auth_reserve_bits = 262144;
		c->round_pulses = 10000000;
	}
	k = fopen(g.cfg[0].auth_key, "wb");
	if (k == NULL || fwrite(key, 1, sizeof key, k) != sizeof key || fclose(k) != 0)
		abort();
	for (int i = 0; i < 2; i++) {
		bool found = false;

		/* As the daemon: load (which names the file), else create. */
		if (qkd_store_open(&g.store[i], g.cfg[i].store, &why) != QKD_OK ||
		    node_auth_load(&g.auth[i], &g.cfg[i], &found, &why) != QKD_OK || found ||
		    node_auth_create(&g.auth[i], &g.cfg[i], g.store[i], &why) != QKD_OK) {
			fprintf(stderr, "fuzz_handshake: setup: %s\n", why ? why : "?");
			abort();
		}
	}
	atexit(cleanup);
	g.ready = true;
}

static void *node_run(void *arg)
{
	struct node_side *s = arg;

	s->rc = node_handshake(s->fd, s->a, s->cfg, &s->ch, s->session, &s->stranger, &s->why,
			       NULL);
	if (s->rc == QKD_OK) {
		s->auth_recv = s->ch.auth_recv;
		qkd_channel_cleanup(&s->ch);
	}
	shutdown(s->fd, SHUT_RDWR);	/* as the daemon hangs up, either way */
	return NULL;
}

/* MAC_g(label | p1 | p2 | extra), the gate of docs/node.md. */
static void gate(const char *label, const uint8_t *p1, const uint8_t *p2, const uint8_t *extra,
		 size_t extra_len, uint8_t out[MAC])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, g.auth[0].gate, NODE_GATE_KEY_LEN, MAC);
	crypto_generichash_update(&st, (const uint8_t *)label, strlen(label) + 1);
	crypto_generichash_update(&st, p1, NONCE);
	crypto_generichash_update(&st, p2, NONCE);
	if (extra_len > 0)
		crypto_generichash_update(&st, extra, extra_len);
	crypto_generichash_final(&st, out, MAC);
}

/* The peer's side of one run. */
struct peer {
	struct qkd_channel ch;
	bool node_alice;
	bool framed;		/* no RAW bytes sent: frames can be read back */
	bool eof;		/* the node hung up */
	bool gate_ok;		/* the peer's first gated message had a good MAC */
	bool sync_proper;	/* the first SYNC: good MAC, the link's settings, index in bounds */
	int proper;		/* proper HELLO, SYNC sent so far, in order (-1: spoilt) */
	uint32_t index;		/* the AUTH index of the first SYNC */
	int hellos, syncs;	/* sent so far: only the first of each counts */
	uint8_t nonce_a[NONCE], nonce_b[NONCE];
	uint64_t next_recv, held;	/* the node's receive state before the run */
};

/* Read one frame from the node (its HELLO or SYNC), or note its hang-up. */
static void read_back(struct peer *p)
{
	struct qkd_rbuf r;
	uint8_t type;

	if (!p->framed || p->eof)
		return;
	if (qkd_channel_recv(&p->ch, &type, &r) != QKD_OK) {
		p->eof = true;
		return;
	}
	if (type == NODE_MSG_HELLO && qkd_rbuf_left(&r) >= sizeof magic + NONCE) {
		const uint8_t *m = qkd_get_bytes(&r, sizeof magic), *n = qkd_get_bytes(&r, NONCE);

		if (memcmp(m, magic, sizeof magic) != 0)
			abort();
		memcpy(p->node_alice ? p->nonce_a : p->nonce_b, n, NONCE);
		if (p->node_alice) {	/* her proof, over the nonce the peer sent */
			uint8_t want[MAC];

			gate("qkd alice hello", p->nonce_b, p->nonce_a, NULL, 0, want);
			if (qkd_rbuf_left(&r) != MAC || memcmp(want, r.p + r.off, MAC) != 0)
				abort();
		}
	} else if (type == NODE_MSG_SYNC) {
		uint8_t want[MAC];

		/* Only to a peer that passed the gate (Alice: and whose settings
		 * and index she took), and under the gate key. */
		if (!p->gate_ok || (p->node_alice && !p->sync_proper) ||
		    qkd_rbuf_left(&r) != MAC + FIELDS_LEN)
			abort();
		gate(p->node_alice ? "qkd alice sync" : "qkd bob sync", p->nonce_a, p->nonce_b,
		     r.p + r.off + MAC, FIELDS_LEN, want);
		if (memcmp(want, r.p + r.off, MAC) != 0)
			abort();
	} else {
		abort();	/* the node sends nothing else in the handshake */
	}
}

static void send_frame(struct peer *p, uint8_t type, const struct qkd_wbuf *w, bool short_by_one)
{
	if (w->err != 0)
		abort();
	if (qkd_channel_send(&p->ch, type, w->p, w->len - (short_by_one ? 1 : 0)) != QKD_OK)
		p->eof = true;
}

static void op_hello(struct peer *p, struct qkd_rbuf *in)
{
	uint8_t flags = qkd_get_u8(in), mac[MAC];
	const uint8_t *nonce = qkd_get_bytes(in, NONCE);
	struct qkd_wbuf w;
	bool proper = (flags & 7) == 0;

	if (nonce == NULL)
		return;
	/* The node takes the first HELLO or refuses; a later one changes no
	 * nonce it uses. */
	if (p->hellos++ == 0)
		memcpy(p->node_alice ? p->nonce_b : p->nonce_a, nonce, NONCE);
	qkd_wbuf_init(&w);
	qkd_put_bytes(&w, magic, sizeof magic);
	if (flags & 1)
		w.p[0] ^= 0x20;
	qkd_put_bytes(&w, nonce, NONCE);
	if (!p->node_alice) {	/* the peer is Alice: her proof */
		gate("qkd alice hello", p->nonce_b, nonce, NULL, 0, mac);
		if (flags & 2)
			mac[flags % MAC] ^= 1;
		qkd_put_bytes(&w, mac, MAC);
		if (p->hellos == 1)
			p->gate_ok = proper;
	}
	send_frame(p, NODE_MSG_HELLO, &w, flags & 4);
	qkd_wbuf_cleanup(&w);
	p->proper = p->proper == 0 && proper ? 1 : -1;
	read_back(p);
}

static void op_sync(struct peer *p, struct qkd_rbuf *in)
{
	uint8_t flags = qkd_get_u8(in), dv = qkd_get_u8(in), role = qkd_get_u8(in);
	uint8_t name = qkd_get_u8(in), settings = qkd_get_u8(in), mode = qkd_get_u8(in);
	const struct qkd_link_config *c = &g.cfg[p->node_alice ? 0 : 1];
	uint64_t index = p->next_recv;
	uint8_t mac[MAC];
	char nm[QKD_NODE_NAME_MAX] = { 0 }, id[QKD_NODE_NAME_MAX] = { 0 };
	struct qkd_wbuf f, w;

	if (mode % 3 == 1)
		index += qkd_get_u8(in);
	else if (mode % 3 == 2)
		index = qkd_get_u32(in);
	if (!qkd_rbuf_ok(in))
		return;
	snprintf(nm, sizeof nm, "%s", (name & ~6) == 0 ? c->name : "ac");
	/* The fuzzer speaks for the node's peer: its id is the node's `peer`. */
	snprintf(id, sizeof id, "%s", name & 4 ? c->node_id : name & 2 ? "node-c" : c->peer);
	qkd_wbuf_init(&f);
	qkd_put_u8(&f, (uint8_t)(VERSION + dv));
	qkd_put_u8(&f, role);
	qkd_put_bytes(&f, nm, sizeof nm);
	qkd_put_bytes(&f, id, sizeof id);
	qkd_put_u64(&f, c->auth_reserve_bits + (settings != 0));
	qkd_put_u64(&f, c->round_pulses);
	qkd_put_u32(&f, (uint32_t)index);
	gate(p->node_alice ? "qkd bob sync" : "qkd alice sync", p->nonce_a, p->nonce_b, f.p,
	     f.len, mac);
	if (flags & 1)
		mac[dv % MAC] ^= 0x80;
	qkd_wbuf_init(&w);
	qkd_put_bytes(&w, mac, MAC);
	qkd_put_bytes(&w, f.p, f.len);
	bool proper_now = (flags & 3) == 0 && dv == 0 && name == 0 && settings == 0 &&
			 role == (p->node_alice ? QKD_ROLE_BOB : QKD_ROLE_ALICE) &&
			 index <= UINT32_MAX && index >= p->next_recv &&
			 index - p->next_recv <= NODE_MAX_AUTH_JUMP &&
			 index - p->next_recv < p->held;
	/* The node decides on the first SYNC it gets; later ones it never reads. */
	if (p->syncs++ == 0) {
		p->sync_proper = proper_now;
		p->index = (uint32_t)index;
		if (p->node_alice)
			p->gate_ok = (flags & 3) == 0;
	}
	p->proper = p->proper == 1 && proper_now ? 2 : -1;
	send_frame(p, NODE_MSG_SYNC, &w, flags & 2);
	qkd_wbuf_cleanup(&f);
	qkd_wbuf_cleanup(&w);
	read_back(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct timeval tv = { .tv_sec = 5 };
	struct node_side node;
	struct peer p;
	struct qkd_rbuf in;
	uint64_t sent_next, sent_held;
	pthread_t th;
	int sv[2];
	char sink[256];

	if (!g.ready)
		setup();
	if (size < 1)
		return 0;
	memset(&node, 0, sizeof node);
	memset(&p, 0, sizeof p);
	p.node_alice = (data[0] & 1) == 0;
	node.a = &g.auth[p.node_alice ? 0 : 1];
	node.cfg = &g.cfg[p.node_alice ? 0 : 1];
	p.next_recv = qkd_wc_next_recv_index(node.a->wc);
	p.held = qkd_wc_recv_pads_left(node.a->wc);
	sent_next = qkd_wc_next_send_index(node.a->wc);
	sent_held = qkd_wc_send_pads_left(node.a->wc);
	p.framed = true;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);	/* a harness bug hangs not */
	node.fd = sv[0];
	qkd_channel_init(&p.ch, sv[1], &qkd_auth_none, NULL);
	if (pthread_create(&th, NULL, node_run, &node) != 0)
		abort();
	if (!p.node_alice)
		read_back(&p);		/* Bob speaks first */
	qkd_rbuf_init(&in, data + 1, size - 1);
	while (qkd_rbuf_ok(&in) && qkd_rbuf_left(&in) > 0 && !p.eof) {
		switch (qkd_get_u8(&in) % 3) {
		case 0: {
			uint8_t len = qkd_get_u8(&in);
			const uint8_t *b = qkd_get_bytes(&in, len);

			if (b != NULL && qkd_write_all(sv[1], b, len) != QKD_OK)
				p.eof = true;
			p.framed = false;
			p.proper = -1;
			break;
		}
		case 1: op_hello(&p, &in); break;
		default: op_sync(&p, &in); break;
		}
	}
	shutdown(sv[1], SHUT_WR);
	while (read(sv[1], sink, sizeof sink) > 0)
		;
	pthread_join(th, NULL);
	qkd_channel_cleanup(&p.ch);
	close(sv[0]);
	close(sv[1]);

	if (node.rc == QKD_OK && !p.sync_proper)
		abort();	/* let in on a bad MAC, other settings or an index out of bounds */
	if (node.rc == QKD_OK && node.auth_recv != p.index)
		abort();	/* the peer's AUTH frames must be read from where it said */
	if (p.proper == 2 && node.rc != QKD_OK)
		abort();	/* a proper peer refused */
	if (p.node_alice && node.rc != QKD_OK && !p.gate_ok && !node.stranger)
		abort();	/* a peer that failed the gate is a stranger to Alice */
	/* Whatever the peer sent, no pad moved. */
	if (qkd_wc_next_recv_index(node.a->wc) != p.next_recv ||
	    qkd_wc_recv_pads_left(node.a->wc) != p.held ||
	    qkd_wc_next_send_index(node.a->wc) != sent_next ||
	    qkd_wc_send_pads_left(node.a->wc) != sent_held)
		abort();
	return 0;
}
