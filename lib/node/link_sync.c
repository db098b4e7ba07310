/* link_sync.c - the opening of a classical connection (docs/node.md).
 *
 * Each end sends, in the clear, its next unused sequence number in each
 * direction and the settings both must share. After a restart a node has
 * skipped the seqs its lease may have used, so the two ends start each
 * direction at the larger of the sender's next seq and the receiver's next
 * expected one. Nothing here is authenticated: a man in the middle can only
 * make both ends skip pads, and a jump above NODE_MAX_SEQ_JUMP is refused,
 * so he cannot burn the authentication key. Everything after this is.
 */
#include "node_int.h"

#include <stdio.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/sysutil.h"
#include "qkd/wire.h"

static const char sync_magic[8] = "QKDSYNC1";
#define SYNC_LEN (8 + 4 * 8 + 1 + QKD_NODE_NAME_MAX)

struct sync_msg {
	uint64_t next_send, next_recv, reserve, pulses;
	uint8_t role;
	char name[QKD_NODE_NAME_MAX];
};

static void sync_write(uint8_t *out, const struct sync_msg *m)
{
	struct qkd_wbuf w;

	qkd_wbuf_init(&w);
	qkd_put_bytes(&w, sync_magic, sizeof sync_magic);
	qkd_put_u64(&w, m->next_send);
	qkd_put_u64(&w, m->next_recv);
	qkd_put_u64(&w, m->reserve);
	qkd_put_u64(&w, m->pulses);
	qkd_put_u8(&w, m->role);
	qkd_put_bytes(&w, m->name, sizeof m->name);
	if (w.err == 0 && w.len == SYNC_LEN)
		memcpy(out, w.p, SYNC_LEN);
	qkd_wbuf_cleanup(&w);
}

static int sync_read(const uint8_t *in, struct sync_msg *m)
{
	struct qkd_rbuf r;
	const uint8_t *p;

	qkd_rbuf_init(&r, in, SYNC_LEN);
	p = qkd_get_bytes(&r, sizeof sync_magic);
	if (p == NULL || memcmp(p, sync_magic, sizeof sync_magic) != 0)
		return QKD_ERR_PROTO;
	m->next_send = qkd_get_u64(&r);
	m->next_recv = qkd_get_u64(&r);
	m->reserve = qkd_get_u64(&r);
	m->pulses = qkd_get_u64(&r);
	m->role = qkd_get_u8(&r);
	p = qkd_get_bytes(&r, sizeof m->name);
	if (p == NULL || !qkd_rbuf_done(&r))
		return QKD_ERR_PROTO;
	memcpy(m->name, p, sizeof m->name);
	m->name[sizeof m->name - 1] = '\0';
	return QKD_OK;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Both ends must describe the same link. */
static const char *sync_check(const struct sync_msg *mine, const struct sync_msg *peer)
{
	if (peer->role == mine->role)
		return "the peer has the same role (alice/bob) as this node";
	if (strcmp(peer->name, mine->name) != 0)
		return "the peer's link name differs";
	if (peer->reserve != mine->reserve || peer->pulses != mine->pulses)
		return "the peer's auth_reserve_bits or round_pulses differ";
	if (max_u64(mine->next_send, peer->next_recv) - mine->next_send > NODE_MAX_SEQ_JUMP ||
	    max_u64(mine->next_recv, peer->next_send) - mine->next_recv > NODE_MAX_SEQ_JUMP)
		return "the peer asks to skip too many authentication pads";
	if (max_u64(mine->next_send, peer->next_recv) > UINT32_MAX ||
	    max_u64(mine->next_recv, peer->next_send) > UINT32_MAX)
		return "sequence numbers exhausted: a new bootstrap key is needed";
	return NULL;
}

int node_sync(int fd, struct node_auth *a, const struct qkd_link_config *cfg,
	      struct qkd_channel *ch, const char **why)
{
	uint8_t out[SYNC_LEN], in[SYNC_LEN];
	struct sync_msg mine, peer;
	int rc;

	memset(&mine, 0, sizeof mine);
	mine.next_send = qkd_wc_next_send_seq(a->wc);
	mine.next_recv = qkd_wc_next_recv_seq(a->wc);
	mine.reserve = cfg->auth_reserve_bits;
	mine.pulses = cfg->round_pulses;
	mine.role = (uint8_t)cfg->role;
	snprintf(mine.name, sizeof mine.name, "%s", cfg->name);
	sync_write(out, &mine);
	rc = qkd_write_all(fd, out, sizeof out);
	if (rc == QKD_OK)
		rc = qkd_read_all(fd, in, sizeof in);
	if (rc != QKD_OK) {
		*why = "connection lost during SYNC";
		return rc;
	}
	if (sync_read(in, &peer) != QKD_OK) {
		*why = "malformed SYNC from the peer";
		return QKD_ERR_PROTO;
	}
	if ((*why = sync_check(&mine, &peer)) != NULL)
		return QKD_ERR_PROTO;
	qkd_channel_init(ch, fd, &node_auth_ops, a);
	ch->send_seq = (uint32_t)max_u64(mine.next_send, peer.next_recv);
	ch->recv_seq = (uint32_t)max_u64(mine.next_recv, peer.next_send);
	return QKD_OK;
}
