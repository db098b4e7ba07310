/* link_sync.c - the fields of the handshake's SYNC message and the rules a
 * node applies to its peer's (docs/node.md, "The handshake"). The MAC
 * over them and the exchange itself are link_handshake.c's; this file
 * knows no socket and no key, so the rules can be tested and fuzzed on
 * their own (tests/fuzz/fuzz_sync.c).
 *
 * fields: u8 version, u8 role, the link name and the sender's node id in
 * QKD_NODE_NAME_MAX bytes each (NUL-padded), u64 auth_reserve_bits, u64
 * round_pulses, u32 the index of the next AUTH frame the sender will send. */
#include "node_int.h"

#include <string.h>

#include "qkd/error.h"

void node_sync_put(struct qkd_wbuf *w, const struct node_sync_fields *f)
{
	qkd_put_u8(w, f->version);
	qkd_put_u8(w, f->role);
	qkd_put_bytes(w, f->name, sizeof f->name);
	qkd_put_bytes(w, f->node, sizeof f->node);
	qkd_put_u64(w, f->reserve);
	qkd_put_u64(w, f->pulses);
	qkd_put_u32(w, f->index);
}

int node_sync_get(struct qkd_rbuf *r, struct node_sync_fields *f)
{
	const uint8_t *name, *node;

	f->version = qkd_get_u8(r);
	f->role = qkd_get_u8(r);
	name = qkd_get_bytes(r, sizeof f->name);
	node = qkd_get_bytes(r, sizeof f->node);
	f->reserve = qkd_get_u64(r);
	f->pulses = qkd_get_u64(r);
	f->index = qkd_get_u32(r);
	if (name == NULL || node == NULL || !qkd_rbuf_done(r))
		return QKD_ERR_PROTO;
	memcpy(f->name, name, sizeof f->name);
	f->name[sizeof f->name - 1] = '\0';
	memcpy(f->node, node, sizeof f->node);
	f->node[sizeof f->node - 1] = '\0';
	return QKD_OK;
}

/* The settings first: a peer of another link or version is refused for
 * that, whatever its index. Then the index, against this end's receiving
 * direction: a receiver never stands ahead of its sender (it moves only by
 * checking the sender's tags), so an index below next means the peer's
 * state went back and would reuse pads; a jump beyond NODE_MAX_AUTH_JUMP
 * is more than a crash explains; one at or past the pads held names a pad
 * that does not exist here. The subtractions follow index >= next. */
const char *node_sync_check(const struct node_sync_fields *mine,
			    const struct node_sync_fields *peer, uint64_t next, uint64_t held)
{
	if (peer->version != NODE_SYNC_VERSION)
		return "the peer runs another version of the link protocol";
	if (peer->role == mine->role)
		return "the peer has the same role (alice/bob) as this node";
	if (peer->role != QKD_ROLE_ALICE && peer->role != QKD_ROLE_BOB)
		return "the peer names a role that is neither alice nor bob";
	if (strcmp(peer->name, mine->name) != 0)
		return "the peer's link name differs";
	if (peer->reserve != mine->reserve || peer->pulses != mine->pulses)
		return "the peer's auth_reserve_bits or round_pulses differ";
	if (peer->index < next)
		return "the peer's authentication state is behind this end's: it would reuse "
		       "pads (was its STORE.auth restored from a backup?)";
	if (peer->index - next > NODE_MAX_AUTH_JUMP)
		return "the peer asks to skip more authentication pads than a crash explains";
	if (peer->index - next >= held)
		return "the peer's next AUTH index is beyond the pads held here";
	return NULL;
}

/* After node_sync_check: the peer passed the gate, so it holds the link's
 * key, but a key file copied to a third node, or two nodes configured with
 * one id, must not open a session (docs/node.md, "Node ids"). */
const char *node_sync_check_node(const struct node_sync_fields *mine,
				 const struct node_sync_fields *peer, const char *want)
{
	if (peer->node[0] == '\0')
		return "the peer sends no node id";
	if (strcmp(peer->node, mine->node) == 0)
		return "the peer has this node's own id (two nodes configured with one node.id)";
	if (want[0] != '\0' && strcmp(peer->node, want) != 0)
		return "the peer is not the node this link's `peer` names";
	return NULL;
}
