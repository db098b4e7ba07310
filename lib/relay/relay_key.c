/* relay_key.c - end-to-end keys carried hop by hop (qkd/relay.h,
 * docs/relay.md "Key relay"; ITU-T Q.4163 clause 8: key relay and key
 * relay completion notification).
 *
 * The source splits the key into 1 or 2 XOR shares, one per node-disjoint
 * path, and sends each to its first hop one-time-pad encrypted with that
 * link's key. A relay decrypts with the pad the sender named, encrypts
 * with a fresh pad of the next link, forwards and wipes: it keeps nothing.
 * The destination XORs the shares of one attempt together, hands the key
 * to its key manager and sends the completion notification back along the
 * last share's path. Any hop that cannot go on sends a failure back; the
 * source then tries again (a new attempt, new shares, avoiding the link
 * that failed) until its attempts or its time run out. A key_ID's bits are
 * the same in every attempt, so a destination that already holds the key
 * (its completion was lost) accepts it again and answers again.
 */
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/secret.h"
#include "relay_int.h"

static void hex_id(const uint8_t id[16], char out[33])
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < 16; i++) {
		out[2 * i] = hx[id[i] >> 4];
		out[2 * i + 1] = hx[id[i] & 15];
	}
	out[32] = '\0';
}

static void xor_into(uint8_t *dst, const uint8_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] ^= src[i];
}

static struct relay_src *src_find(struct qkd_relay *r, const uint8_t key_id[16])
{
	for (size_t i = 0; i < r->cfg.relays_max; i++)
		if (r->src[i].used && memcmp(r->src[i].key_id, key_id, 16) == 0)
			return &r->src[i];
	return NULL;
}

static void src_release(struct relay_src *s)
{
	if (s->key != NULL)
		qkd_free_secret(s->key, s->nbits / 8);
	memset(s, 0, sizeof *s);
}

static int withdraw_send(struct qkd_relay *r, const uint8_t key_id[16], const char *dest,
			 const char **why);

/* Settle a source relay: done is called once, then the slot is wiped. A
 * key given up on after a share went out is withdrawn: the destination
 * may hold it with its completion lost. */
static void src_settle(struct qkd_relay *r, struct relay_src *s, int result, const char *why)
{
	uint8_t key_id[16];
	unsigned shares = s->shares, hops = s->hops;
	char hex[33];

	memcpy(key_id, s->key_id, 16);
	hex_id(key_id, hex);
	if (result == QKD_OK) {
		r->st.relays_completed++;
		if (shares == 2)
			r->st.relays_two_paths++;
		qkd_logf(r->cfg.log, QKD_LOG_INFO,
			 "relay: key %s to %s delivered (%u path%s, %u hop%s, attempt %u)", hex,
			 s->dest, shares, shares == 1 ? "" : "s", hops, hops == 1 ? "" : "s",
			 s->attempt + 1);
	} else {
		r->st.relays_failed++;
		qkd_logf(r->cfg.log, QKD_LOG_WARN, "relay: key %s to %s failed: %s", hex, s->dest,
			 why);
		if (s->sent) {
			const char *wwhy;

			(void)withdraw_send(r, key_id, s->dest, &wwhy);
		}
	}
	src_release(s);
	r->cfg.ops->done(r->cfg.ctx, key_id, result, why, shares, hops);
}

/* Encode m (its head's hop already set) and send it to path[hop]. */
static bool send_key_msg(struct qkd_relay *r, const struct qkd_relay_key_msg *m)
{
	bool ok;

	qkd_wbuf_reset(&r->out);
	r->out.secret = true;	/* a ciphertext, but keep the habit: wiped on reset */
	ok = qkd_relay_key_encode(m, &r->out) == QKD_OK &&
	     relay_send_out(r, m->h.path[m->h.hop], QKD_RELAY_MSG_KEY);
	qkd_wbuf_reset(&r->out);
	r->out.secret = false;
	return ok;
}

/* Encrypt plain (m->nbits) for the link to m->h.path[m->h.hop] with a
 * fresh pad and send. 0, or an enum qkd_relay_fail code. */
static int forward_share(struct qkd_relay *r, struct qkd_relay_key_msg *m, const uint8_t *plain)
{
	const char *next = m->h.path[m->h.hop], *why = NULL;
	struct relay_nb *nb = relay_nb_find(r, next);
	size_t nbytes = m->nbits / 8;
	uint8_t *pad;
	int code = 0;

	if (nb == NULL || !nb->up || nb->alarmed)
		return QKD_RELAY_FAIL_LINK_DOWN;
	pad = qkd_alloc_scratch(nbytes);
	if (pad == NULL)
		return QKD_RELAY_FAIL_NO_KEY;
	if (r->cfg.ops->pad_take(r->cfg.ctx, next, m->nbits, pad, m->pad, &m->n_pad, &why) !=
	    QKD_OK) {
		qkd_logf(r->cfg.log, QKD_LOG_WARN, "relay: no pad of %u bits on the link to %s: %s",
			 (unsigned)m->nbits, next, why != NULL ? why : "refused");
		code = QKD_RELAY_FAIL_NO_KEY;
		goto out;
	}
	r->st.pad_bits += m->nbits;
	memcpy(m->cipher, plain, nbytes);
	xor_into(m->cipher, pad, nbytes);
	if (!send_key_msg(r, m))
		code = QKD_RELAY_FAIL_LINK_DOWN;
out:
	qkd_free_scratch(pad, nbytes);
	qkd_wipe(m->cipher, nbytes);
	return code;
}

/* A completion or failure sent back towards the source from path index
 * `from` (this node). */
static void send_back(struct qkd_relay *r, const struct qkd_relay_head *h, uint8_t type,
		      uint8_t code, uint8_t at, uint8_t from)
{
	struct qkd_relay_back_msg b;

	if (from == 0)
		return;
	memset(&b, 0, sizeof b);
	b.h = *h;
	b.h.hop = (uint8_t)(from - 1);
	b.code = code;
	b.at = at;
	qkd_wbuf_reset(&r->out);
	if (qkd_relay_back_encode(&b, type, &r->out) == QKD_OK)
		(void)relay_send_out(r, b.h.path[b.h.hop], type);
}

/* --- Source ----------------------------------------------------------- */

/* A path to s->dest avoiding s's links and ex's nodes (ex->links is
 * s->avoid plus room for one more); 0 or QKD_ERR_NOKEY. */
static int src_path(struct qkd_relay *r, const struct relay_src *s, struct qkd_route_exclude *ex,
		    char (*path)[QKD_NODE_NAME_MAX], size_t *hops)
{
	double cost;

	return qkd_route_path(r->db, &r->cfg.route, r->self, s->dest, ex, path,
			      QKD_RELAY_PATH_MAX, hops, &cost);
}

/* A second path sharing no relay and no link with path[0]. */
static int src_disjoint(struct qkd_relay *r, const struct relay_src *s,
			struct qkd_route_exclude *ex, char (*path)[QKD_RELAY_PATH_MAX][QKD_NODE_NAME_MAX],
			size_t *hops)
{
	struct qkd_route_exclude e2 = *ex;
	char (*links)[2][QKD_NODE_NAME_MAX] = (char (*)[2][QKD_NODE_NAME_MAX])ex->links;

	e2.nodes = (const char (*)[QKD_NODE_NAME_MAX])&path[0][1];
	e2.n_nodes = hops[0] - 1;
	if (hops[0] == 1) {	/* the direct link carries the first share */
		strcpy(links[e2.n_links][0], r->self);
		strcpy(links[e2.n_links][1], s->dest);
		e2.n_links++;
	}
	return src_path(r, s, &e2, path[1], &hops[1]);
}

/* The paths of one attempt: the route (or, when links must be avoided, a
 * fresh cheapest path) and, for two shares, a second path that shares no
 * relay and no link with the first. When the cheapest first path leaves
 * no disjoint second, first paths that avoid one of its relays are tried
 * (a cheap stand-in for Suurballe's algorithm, enough for the meshes
 * relays form). Returns the number of paths (0: no route). */
static unsigned src_paths(struct qkd_relay *r, const struct relay_src *s,
			  char (*path)[QKD_RELAY_PATH_MAX][QKD_NODE_NAME_MAX], size_t *hops)
{
	char links[RELAY_AVOID_MAX + 1][2][QKD_NODE_NAME_MAX];
	char best[QKD_RELAY_PATH_MAX][QKD_NODE_NAME_MAX];
	struct qkd_route_exclude ex = { .n_links = s->n_avoid, .links = links };
	const struct qkd_route *rt;
	size_t best_hops;

	memcpy(links, s->avoid, s->n_avoid * sizeof links[0]);
	relay_routes_refresh(r);
	rt = qkd_routes_get(r->routes, s->dest);
	if (s->n_avoid == 0 && rt != NULL && rt->hops < QKD_RELAY_PATH_MAX) {
		memcpy(path[0], rt->path, (rt->hops + 1) * sizeof path[0][0]);
		hops[0] = rt->hops;
	} else if (src_path(r, s, &ex, path[0], &hops[0]) != QKD_OK) {
		return 0;
	}
	if (s->shares_wanted < 2 || src_disjoint(r, s, &ex, path, hops) == QKD_OK)
		return s->shares_wanted < 2 ? 1 : 2;
	memcpy(best, path[0], sizeof best);
	best_hops = hops[0];
	for (size_t k = 1; k < best_hops; k++) {
		struct qkd_route_exclude e1 = ex;

		e1.nodes = (const char (*)[QKD_NODE_NAME_MAX])&best[k];
		e1.n_nodes = 1;
		if (src_path(r, s, &e1, path[0], &hops[0]) == QKD_OK &&
		    src_disjoint(r, s, &ex, path, hops) == QKD_OK)
			return 2;
	}
	memcpy(path[0], best, sizeof best);
	hops[0] = best_hops;
	return 1;
}

static void src_avoid(struct relay_src *s, const char *a, const char *b)
{
	for (size_t i = 0; i < s->n_avoid; i++)
		if ((strcmp(s->avoid[i][0], a) == 0 && strcmp(s->avoid[i][1], b) == 0) ||
		    (strcmp(s->avoid[i][0], b) == 0 && strcmp(s->avoid[i][1], a) == 0))
			return;
	if (s->n_avoid == RELAY_AVOID_MAX)
		memmove(s->avoid[0], s->avoid[1], (RELAY_AVOID_MAX - 1) * sizeof s->avoid[0]);
	else
		s->n_avoid++;
	strcpy(s->avoid[s->n_avoid - 1][0], a);
	strcpy(s->avoid[s->n_avoid - 1][1], b);
}

/* One attempt: fresh shares over the current paths. 0, or an error with
 * *why; a first hop that failed is avoided by the next attempt. */
static int src_attempt(struct qkd_relay *r, struct relay_src *s, const char **why)
{
	char path[QKD_RELAY_SHARES_MAX][QKD_RELAY_PATH_MAX][QKD_NODE_NAME_MAX];
	size_t hops[QKD_RELAY_SHARES_MAX] = { 0, 0 }, nbytes = s->nbits / 8;
	struct qkd_relay_key_msg *m = r->msg;
	unsigned n = src_paths(r, s, path, hops);
	uint8_t *share = NULL;
	int rc = QKD_ERR_NOKEY;

	*why = "no route to the destination";
	if (n == 0)
		return rc;
	*why = "out of memory";
	share = qkd_alloc_scratch(nbytes);
	if (share == NULL)
		return QKD_ERR_NOMEM;
	qkd_rng_bytes(&r->rng, share, nbytes);
	s->shares = n;
	s->hops = 0;
	for (unsigned i = 0; i < n; i++) {
		int code;

		memset(&m->h, 0, sizeof m->h);
		memcpy(m->h.key_id, s->key_id, 16);
		m->h.attempt = (uint8_t)s->attempt;
		m->h.share = (uint8_t)i;
		m->h.shares = (uint8_t)n;
		m->h.hop = 1;
		m->h.n_path = (uint8_t)(hops[i] + 1);
		memcpy(m->h.path, path[i], (hops[i] + 1) * sizeof path[i][0]);
		strcpy(m->master, s->master);
		strcpy(m->slave, s->slave);
		m->nbits = s->nbits;
		if (n == 1)
			memcpy(share, s->key, nbytes);	/* one share: the key itself */
		else if (i == 1)
			xor_into(share, s->key, nbytes);	/* random XOR key */
		code = forward_share(r, m, share);
		if (code != 0) {
			src_avoid(s, r->self, path[i][1]);
			*why = qkd_relay_fail_name((unsigned)code);
			rc = code == QKD_RELAY_FAIL_LINK_DOWN ? QKD_ERR_IO : QKD_ERR_NOKEY;
			goto out;
		}
		s->sent = true;
		strcpy(s->first_hop[i], path[i][1]);
		if (hops[i] > s->hops)
			s->hops = (unsigned)hops[i];
	}
	rc = QKD_OK;
out:
	qkd_free_scratch(share, nbytes);
	return rc;
}

/* Attempts until one goes out, or none is left. */
static int src_try(struct qkd_relay *r, struct relay_src *s, const char **why)
{
	int rc = QKD_ERR_NOKEY;

	*why = "no attempts left";
	while (s->attempt < r->cfg.attempts) {
		rc = src_attempt(r, s, why);
		if (rc == QKD_OK)
			return rc;
		s->attempt++;
		if (s->attempt < r->cfg.attempts)
			r->st.reroutes++;
	}
	return rc;
}

static int src_check(struct qkd_relay *r, const uint8_t key_id[16], const char *master,
		     const char *slave, uint32_t nbits, unsigned shares, const char **why)
{
	const char *dest = NULL;

	*why = "key length not a multiple of 8 in 8 .. 65536 bits, or shares not 1 or 2";
	if (nbits == 0 || nbits % 8 != 0 || nbits > QKD_RELAY_KEY_BITS_MAX || shares < 1 ||
	    shares > QKD_RELAY_SHARES_MAX)
		return QKD_ERR_INVAL;
	*why = "the master SAE is not attached to this node";
	if (!relay_sae_local(r, master))
		return QKD_ERR_INVAL;
	*why = "the slave SAE is attached to this node: no relay needed";
	if (relay_sae_local(r, slave))
		return QKD_ERR_INVAL;
	*why = "no node of the network advertises the slave SAE";
	if (qkd_lsdb_sae_node(r->db, slave, &dest) != QKD_OK)
		return QKD_ERR_INVAL;
	*why = "a relay of this key_ID is in progress";
	if (src_find(r, key_id) != NULL)
		return QKD_ERR_INVAL;
	return QKD_OK;
}

int qkd_relay_start(struct qkd_relay *r, const uint8_t key_id[16], const char *master,
		    const char *slave, const uint8_t *key, uint32_t nbits, unsigned shares,
		    const char **why)
{
	struct relay_src *s = NULL;
	const char *dest = NULL;
	int rc = src_check(r, key_id, master, slave, nbits, shares, why);

	if (rc != QKD_OK)
		return rc;
	if (qkd_lsdb_sae_node(r->db, slave, &dest) != QKD_OK)
		return QKD_ERR_INVAL;	/* src_check found it */
	for (size_t i = 0; i < r->cfg.relays_max && s == NULL; i++)
		if (!r->src[i].used)
			s = &r->src[i];
	*why = "too many relays in progress";
	if (s == NULL)
		return QKD_ERR_RANGE;
	*why = "out of memory";
	s->key = qkd_alloc_scratch(nbits / 8);
	if (s->key == NULL)
		return QKD_ERR_NOMEM;
	s->used = true;
	memcpy(s->key_id, key_id, 16);
	memcpy(s->key, key, nbits / 8);
	s->nbits = nbits;
	strcpy(s->master, master);
	strcpy(s->slave, slave);
	strcpy(s->dest, dest);
	s->shares_wanted = shares;
	s->deadline = relay_now(r) + r->cfg.relay_timeout_s;
	r->st.relays_started++;
	rc = src_try(r, s, why);
	if (rc != QKD_OK) {
		const char *wwhy;

		r->st.relays_failed++;
		if (s->sent)
			(void)withdraw_send(r, key_id, dest, &wwhy);
		src_release(s);
	}
	return rc;
}

/* --- Withdrawal -------------------------------------------------------- */

/* A WITHDRAW for key_id to dest over the current route. */
static int withdraw_send(struct qkd_relay *r, const uint8_t key_id[16], const char *dest,
			 const char **why)
{
	const struct qkd_route *rt = qkd_routes_get(r->routes, dest);
	struct qkd_relay_back_msg b;
	char hex[33];
	int rc = QKD_ERR_NOKEY;

	hex_id(key_id, hex);
	*why = "no route to the destination";
	if (rt == NULL || rt->hops + 1 > QKD_RELAY_PATH_MAX)
		goto out;
	memset(&b, 0, sizeof b);
	memcpy(b.h.key_id, key_id, 16);
	b.h.shares = 1;
	b.h.hop = 1;
	b.h.n_path = (uint8_t)(rt->hops + 1);
	memcpy(b.h.path, rt->path, (rt->hops + 1) * sizeof rt->path[0]);
	qkd_wbuf_reset(&r->out);
	*why = "the first link is down";
	if (qkd_relay_back_encode(&b, QKD_RELAY_MSG_WITHDRAW, &r->out) != QKD_OK ||
	    !relay_send_out(r, b.h.path[1], QKD_RELAY_MSG_WITHDRAW))
		goto out;
	r->st.withdrawals_sent++;
	rc = QKD_OK;
out:
	qkd_logf(r->cfg.log, rc == QKD_OK ? QKD_LOG_INFO : QKD_LOG_WARN,
		 "relay: key %s withdrawn from %s%s%s", hex, dest, rc == QKD_OK ? "" : ": not sent, ",
		 rc == QKD_OK ? "" : "the destination keeps it until its key_ttl");
	return rc;
}

int qkd_relay_withdraw(struct qkd_relay *r, const uint8_t key_id[16], const char *slave,
		       const char **why)
{
	const char *dest = NULL;

	*why = "no node of the network advertises the slave SAE";
	if (qkd_lsdb_sae_node(r->db, slave, &dest) != QKD_OK)
		return QKD_ERR_INVAL;
	*why = "a relay of this key_ID is in progress";
	if (src_find(r, key_id) != NULL)
		return QKD_ERR_INVAL;
	return withdraw_send(r, key_id, dest, why);
}

static void settled_note(struct qkd_relay *r, const uint8_t key_id[16])
{
	memcpy(r->settled[r->settled_next], key_id, 16);
	r->settled_next = (r->settled_next + 1) % RELAY_SETTLED_MAX;
}

static bool settled_known(const struct qkd_relay *r, const uint8_t key_id[16])
{
	for (size_t i = 0; i < RELAY_SETTLED_MAX; i++)
		if (memcmp(r->settled[i], key_id, 16) == 0)
			return true;
	return false;
}

/* A completion or failure reached the source. */
static void src_back(struct qkd_relay *r, const struct qkd_relay_back_msg *b, uint8_t type)
{
	struct relay_src *s = src_find(r, b->h.key_id);
	const char *why;
	char hex[33];

	hex_id(b->h.key_id, hex);
	if (s == NULL) {
		if (settled_known(r, b->h.key_id)) {
			qkd_logf(r->cfg.log, QKD_LOG_DEBUG, "relay: late %s for key %s",
				 type == QKD_RELAY_MSG_COMPLETION ? "completion" : "failure", hex);
			return;
		}
		r->st.refused++;
		qkd_logf(r->cfg.log, QKD_LOG_WARN,
			 "relay: %s for key %s, which this node never sent: ignored",
			 type == QKD_RELAY_MSG_COMPLETION ? "completion notification" : "failure",
			 hex);
		return;
	}
	if (type == QKD_RELAY_MSG_COMPLETION) {
		/* Any attempt's: every attempt carries the same key. */
		settled_note(r, s->key_id);
		src_settle(r, s, QKD_OK, NULL);
		return;
	}
	if (b->h.attempt != s->attempt)
		return;	/* an earlier attempt's failure: that attempt is over */
	qkd_logf(r->cfg.log, QKD_LOG_INFO, "relay: key %s: %s at %s (attempt %u)", hex,
		 qkd_relay_fail_name(b->code), b->h.path[b->at], s->attempt + 1);
	if (b->code == QKD_RELAY_FAIL_UNKNOWN_SAE || b->code == QKD_RELAY_FAIL_STORE) {
		settled_note(r, s->key_id);
		src_settle(r, s, QKD_ERR_REFUSED, qkd_relay_fail_name(b->code));
		return;
	}
	if (b->code == QKD_RELAY_FAIL_PAD)
		src_avoid(s, b->h.path[b->at - 1], b->h.path[b->at]);
	else if (b->at + 1 < b->h.n_path)
		src_avoid(s, b->h.path[b->at], b->h.path[b->at + 1]);
	s->attempt++;
	r->st.reroutes++;
	if (s->attempt >= r->cfg.attempts || relay_now(r) >= s->deadline ||
	    src_try(r, s, &why) != QKD_OK) {
		settled_note(r, s->key_id);
		src_settle(r, s, QKD_ERR_NOKEY, "no path left to the destination");
	}
}

void relay_key_link_down(struct qkd_relay *r, const char *neighbour)
{
	for (size_t i = 0; i < r->cfg.relays_max; i++) {
		struct relay_src *s = &r->src[i];

		if (!s->used)
			continue;
		for (unsigned k = 0; k < s->shares; k++)
			if (strcmp(s->first_hop[k], neighbour) == 0)
				s->retry = true;
		if (s->retry)
			src_avoid(s, r->self, neighbour);
	}
}

/* --- Destination ------------------------------------------------------- */

static struct relay_dst *dst_slot(struct qkd_relay *r, const struct qkd_relay_key_msg *m)
{
	struct relay_dst *free_slot = NULL;

	for (size_t i = 0; i < r->cfg.relays_max; i++) {
		struct relay_dst *d = &r->dst[i];

		if (d->used && memcmp(d->key_id, m->h.key_id, 16) == 0 &&
		    d->attempt == m->h.attempt)
			return d->nbits == m->nbits && d->shares == m->h.shares ? d : NULL;
		if (!d->used && free_slot == NULL)
			free_slot = d;
	}
	if (free_slot == NULL)
		return NULL;
	free_slot->acc = qkd_alloc_scratch(m->nbits / 8);
	if (free_slot->acc == NULL)
		return NULL;
	memset(free_slot->acc, 0, m->nbits / 8);
	free_slot->used = true;
	memcpy(free_slot->key_id, m->h.key_id, 16);
	free_slot->attempt = m->h.attempt;
	free_slot->shares = m->h.shares;
	free_slot->nbits = m->nbits;
	free_slot->got = 0;
	free_slot->expires = relay_now(r) + r->cfg.relay_timeout_s;
	return free_slot;
}

static void dst_release(struct relay_dst *d)
{
	if (d->acc != NULL)
		qkd_free_scratch(d->acc, d->nbits / 8);
	memset(d, 0, sizeof *d);
}

/* Whether the source node advertises the master SAE: a key relay names
 * an SAE pair, and only the node the master is attached to may start one. */
static bool master_at_source(const struct qkd_relay *r, const struct qkd_relay_key_msg *m)
{
	const struct qkd_lsa *lsa = qkd_lsdb_get(r->db, m->h.path[0]);

	for (size_t i = 0; lsa != NULL && i < lsa->n_saes; i++)
		if (strcmp(lsa->saes[i], m->master) == 0)
			return true;
	return false;
}

static bool withdrawn_known(const struct qkd_relay *r, const uint8_t key_id[16])
{
	for (size_t i = 0; i < RELAY_SETTLED_MAX; i++)
		if (memcmp(r->withdrawn[i], key_id, 16) == 0)
			return true;
	return false;
}

/* A WITHDRAW reached its destination (this node): the key goes, with any
 * share of it waiting here, and a share still on its way is refused. */
static void dst_withdraw(struct qkd_relay *r, const struct qkd_relay_back_msg *b)
{
	const char *why = NULL;
	bool found = false;
	char hex[33];
	int rc = QKD_OK;

	hex_id(b->h.key_id, hex);
	for (size_t i = 0; i < r->cfg.relays_max; i++)
		if (r->dst[i].used && memcmp(r->dst[i].key_id, b->h.key_id, 16) == 0)
			dst_release(&r->dst[i]);
	if (!withdrawn_known(r, b->h.key_id)) {
		memcpy(r->withdrawn[r->withdrawn_next], b->h.key_id, 16);
		r->withdrawn_next = (r->withdrawn_next + 1) % RELAY_SETTLED_MAX;
	}
	r->st.withdrawals_received++;
	if (r->cfg.ops->withdraw != NULL)
		rc = r->cfg.ops->withdraw(r->cfg.ctx, b->h.key_id, b->h.path[0], &found, &why);
	if (rc != QKD_OK)
		qkd_logf(r->cfg.log, QKD_LOG_ERROR, "relay: key %s withdrawn by %s, but not dropped: %s",
			 hex, b->h.path[0], why != NULL ? why : "refused");
	else
		qkd_logf(r->cfg.log, QKD_LOG_INFO, "relay: key %s withdrawn by its source %s%s", hex,
			 b->h.path[0], found ? ": dropped" : " (not held here)");
}

/* A share reached its destination (this node) in plain. 0 or a fail code. */
static int dst_share(struct qkd_relay *r, const struct qkd_relay_key_msg *m, const uint8_t *plain)
{
	uint8_t last = (uint8_t)(m->h.n_path - 1);
	struct relay_dst *d = NULL;
	const uint8_t *key = plain;
	const char *why = NULL;
	char hex[33];

	hex_id(m->h.key_id, hex);
	if (!relay_sae_local(r, m->slave) || !master_at_source(r, m)) {
		qkd_logf(r->cfg.log, QKD_LOG_WARN,
			 "relay: key %s from %s for %s -> %s: %s", hex, m->h.path[0], m->master,
			 m->slave, !relay_sae_local(r, m->slave) ? "the slave SAE is not attached here"
								 : "the source does not advertise the master SAE");
		return QKD_RELAY_FAIL_UNKNOWN_SAE;
	}
	if (withdrawn_known(r, m->h.key_id)) {
		qkd_logf(r->cfg.log, QKD_LOG_INFO, "relay: key %s from %s: withdrawn by its source, "
			 "not kept", hex, m->h.path[0]);
		return QKD_RELAY_FAIL_STORE;
	}
	if (m->h.shares > 1) {
		d = dst_slot(r, m);
		if (d == NULL)
			return QKD_RELAY_FAIL_BUSY;
		if (d->got & (1u << m->h.share))
			return 0;	/* a duplicate share: nothing to add */
		xor_into(d->acc, plain, m->nbits / 8);
		d->got |= (uint8_t)(1u << m->h.share);
		if (d->got != (1u << m->h.shares) - 1)
			return 0;	/* wait for the other share */
		key = d->acc;
	}
	if (r->cfg.ops->deliver(r->cfg.ctx, m->h.key_id, m->master, m->slave, m->h.path[0], key,
				m->nbits, &why) != QKD_OK) {
		qkd_logf(r->cfg.log, QKD_LOG_ERROR, "relay: key %s not kept: %s", hex,
			 why != NULL ? why : "refused");
		if (d != NULL)
			dst_release(d);
		return QKD_RELAY_FAIL_STORE;
	}
	if (d != NULL)
		dst_release(d);
	r->st.keys_delivered++;
	qkd_logf(r->cfg.log, QKD_LOG_INFO, "relay: key %s from %s kept for %s (%u share%s)", hex,
		 m->h.path[0], m->slave, m->h.shares, m->h.shares == 1 ? "" : "s");
	send_back(r, &m->h, QKD_RELAY_MSG_COMPLETION, 0, last, last);
	return 0;
}

/* --- Receiving --------------------------------------------------------- */

static void refuse(struct qkd_relay *r, const char *from, const char *what, const char *why)
{
	r->st.refused++;
	qkd_logf(r->cfg.log, QKD_LOG_WARN, "relay: %s from %s refused: %s", what, from, why);
}

/* The pad of the hop from `from`, applied to m's cipher in place. */
static int key_unpad(struct qkd_relay *r, const char *from, struct qkd_relay_key_msg *m)
{
	size_t nbytes = m->nbits / 8;
	uint8_t *pad = qkd_alloc_scratch(nbytes);
	const char *why = NULL;
	int rc = QKD_ERR_NOMEM;

	if (pad == NULL)
		return rc;
	rc = r->cfg.ops->pad_use(r->cfg.ctx, from, m->pad, m->n_pad, pad, m->nbits, &why);
	if (rc == QKD_OK) {
		xor_into(m->cipher, pad, nbytes);
		r->st.pad_bits += m->nbits;
	} else {
		refuse(r, from, "key relay", why != NULL ? why : "its pad cannot be used here");
	}
	qkd_free_scratch(pad, nbytes);
	return rc;
}

static int key_receive(struct qkd_relay *r, const char *from, const uint8_t *body, size_t len,
		       const char **why)
{
	struct qkd_relay_key_msg *m = r->msg;
	uint8_t at;
	int rc = qkd_relay_key_decode(m, body, len, why), code;

	if (rc == QKD_ERR_INVAL) {	/* well-formed, refused: a loop, bad ids */
		refuse(r, from, "key relay", *why);
		return QKD_OK;
	}
	if (rc != QKD_OK)
		return rc;
	at = m->h.hop;
	if (strcmp(m->h.path[at], r->self) != 0 || strcmp(m->h.path[at - 1], from) != 0) {
		refuse(r, from, "key relay", "this hop is not on its path");
		goto out;
	}
	if (key_unpad(r, from, m) != QKD_OK) {
		code = QKD_RELAY_FAIL_PAD;
	} else if (at == m->h.n_path - 1) {
		code = dst_share(r, m, m->cipher);
	} else {
		m->h.hop++;
		code = forward_share(r, m, m->cipher);
		if (code == 0)
			r->st.shares_forwarded++;
	}
	if (code != 0)
		send_back(r, &m->h, QKD_RELAY_MSG_FAILURE, (uint8_t)code, at, at);
out:
	qkd_wipe(m->cipher, sizeof m->cipher);
	return QKD_OK;
}

/* A withdrawal: forward it, or drop the key when this node is its end. */
static int withdraw_receive(struct qkd_relay *r, const char *from, const uint8_t *body, size_t len,
			    const char **why)
{
	struct qkd_relay_back_msg b;
	int rc = qkd_relay_back_decode(&b, QKD_RELAY_MSG_WITHDRAW, body, len, why);

	if (rc == QKD_ERR_INVAL) {
		refuse(r, from, "withdrawal", *why);
		return QKD_OK;
	}
	if (rc != QKD_OK)
		return rc;
	if (strcmp(b.h.path[b.h.hop], r->self) != 0 || strcmp(b.h.path[b.h.hop - 1], from) != 0) {
		refuse(r, from, "withdrawal", "this hop is not on its path");
		return QKD_OK;
	}
	if (b.h.hop == b.h.n_path - 1) {
		dst_withdraw(r, &b);
		return QKD_OK;
	}
	b.h.hop++;
	qkd_wbuf_reset(&r->out);
	if (qkd_relay_back_encode(&b, QKD_RELAY_MSG_WITHDRAW, &r->out) == QKD_OK)
		(void)relay_send_out(r, b.h.path[b.h.hop], QKD_RELAY_MSG_WITHDRAW);
	return QKD_OK;
}

static int back_receive(struct qkd_relay *r, const char *from, uint8_t type, const uint8_t *body,
			size_t len, const char **why)
{
	struct qkd_relay_back_msg b;
	int rc = qkd_relay_back_decode(&b, type, body, len, why);
	const char *what = type == QKD_RELAY_MSG_COMPLETION ? "completion notification"
							    : "relay failure";

	if (rc == QKD_ERR_INVAL) {
		refuse(r, from, what, *why);
		return QKD_OK;
	}
	if (rc != QKD_OK)
		return rc;
	if (strcmp(b.h.path[b.h.hop], r->self) != 0 || strcmp(b.h.path[b.h.hop + 1], from) != 0) {
		refuse(r, from, what, "this hop is not on its path");
		return QKD_OK;
	}
	if (b.h.hop == 0) {
		src_back(r, &b, type);
		return QKD_OK;
	}
	send_back(r, &b.h, type, b.code, b.at, b.h.hop);
	return QKD_OK;
}

int relay_key_receive(struct qkd_relay *r, const char *from, uint8_t type, const uint8_t *body,
		      size_t len, const char **why)
{
	*why = NULL;
	switch (type) {
	case QKD_RELAY_MSG_KEY:
		return key_receive(r, from, body, len, why);
	case QKD_RELAY_MSG_COMPLETION:
	case QKD_RELAY_MSG_FAILURE:
		return back_receive(r, from, type, body, len, why);
	case QKD_RELAY_MSG_WITHDRAW:
		return withdraw_receive(r, from, body, len, why);
	default:
		*why = "unknown relay message type";
		return QKD_ERR_PROTO;
	}
}

/* --- Time -------------------------------------------------------------- */

void relay_key_tick(struct qkd_relay *r)
{
	double now = relay_now(r);
	const char *why;

	for (size_t i = 0; i < r->cfg.relays_max; i++) {
		struct relay_src *s = &r->src[i];
		struct relay_dst *d = &r->dst[i];

		if (s->used && now >= s->deadline) {
			settled_note(r, s->key_id);
			src_settle(r, s, QKD_ERR_IO, "no completion notification in time");
		} else if (s->used && s->retry) {
			s->retry = false;
			s->attempt++;
			r->st.reroutes++;
			if (src_try(r, s, &why) != QKD_OK) {
				settled_note(r, s->key_id);
				src_settle(r, s, QKD_ERR_NOKEY, why);
			}
		}
		if (d->used && now >= d->expires)
			dst_release(d);
	}
}

void relay_key_free_all(struct qkd_relay *r)
{
	for (size_t i = 0; i < r->cfg.relays_max; i++) {
		src_release(&r->src[i]);
		dst_release(&r->dst[i]);
	}
}
