/* test_relay_agent.c - the relay agent (qkd/relay.h, lib/relay/relay*.c)
 * over an in-memory network: six agents joined by queues, one key pool per
 * link direction whose pad bits both ends derive alike, and a clock the
 * test moves.
 *
 * The checks: LSAs flood until every node knows every node and routes
 * agree; a key relayed from A to D arrives equal, once, and its completion
 * comes back; two shares take node-disjoint paths; a link cut while a key
 * travels, an alarmed link and a link out of key are routed around; a
 * destination that lost nothing answers a retry again; the bad input of
 * issue 13 (old LSA, own origin, unknown SAE, loop, pad already used,
 * completion for a key never sent, silence) is refused, logged, counted,
 * and loses no key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/relay.h"
#include "qkd/wire.h"

#define NN 6
#define NL 7
#define QMAX 4096
#define POOL_BYTES 65536	/* per link direction: 2^19 bits */

/* The mesh of docs/relay.md: ring A-B-C-D-E-F-A with the chord B-E. */
static const char *const ids[NN] = { "A", "B", "C", "D", "E", "F" };
static const int ends[NL][2] = { { 0, 1 }, { 1, 2 }, { 2, 3 }, { 3, 4 }, { 4, 5 }, { 5, 0 }, { 1, 4 } };

struct tlink {
	bool up, drop;			/* drop: messages vanish (a hung link) */
	uint64_t next[2];		/* bits taken per direction (0: from ends[][0]) */
	uint64_t budget[2];		/* bits that may still be taken */
	uint8_t used[2][POOL_BYTES];	/* byte used at the receiver */
};

struct tmsg {
	int from, to;
	uint8_t type;
	size_t len;
	uint8_t *body;
};

struct tkey {
	uint8_t id[16];
	uint8_t bits[64];
	uint32_t nbits;
	int delivered;			/* times deliver was called */
	int withdrawn;			/* times withdraw found it */
	char slave[32];
};

struct tnet {
	double now;
	struct qkd_relay *ag[NN];
	struct tlink link[NL];
	struct tmsg q[QMAX];
	size_t qh, qt;
	struct tkey keys[NN][16];	/* what each destination holds */
	size_t nkeys[NN];
	int done_calls, done_result;
	unsigned done_shares;
	char log[8192];			/* the warnings and errors, for checks */
	char info[16384];		/* and the info lines */
	bool refuse_deliver;
	bool drop_completions;		/* COMPLETION messages vanish */
};

struct tctx {
	struct tnet *net;
	int node;
};

static struct tctx ctxs[NN];

static int node_index(const char *id)
{
	for (int i = 0; i < NN; i++)
		if (strcmp(ids[i], id) == 0)
			return i;
	return -1;
}

/* The link between nodes a and b and the direction a -> b. */
static int link_of(int a, int b, int *dir)
{
	*dir = 0;
	for (int l = 0; l < NL; l++) {
		if (ends[l][0] == a && ends[l][1] == b) {
			*dir = 0;
			return l;
		}
		if (ends[l][0] == b && ends[l][1] == a) {
			*dir = 1;
			return l;
		}
	}
	return -1;
}

/* The pad bits both ends derive: a fixed function of link, direction and
 * byte offset (a stand-in for the two stores holding the same key). */
static uint8_t pad_byte(int l, int dir, uint64_t off)
{
	uint64_t x = ((uint64_t)l << 56) ^ ((uint64_t)dir << 48) ^ off;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 29;
	return (uint8_t)x;
}

static int t_send(void *c, const char *nb, uint8_t type, const uint8_t *body, size_t len)
{
	struct tctx *t = c;
	struct tnet *n = t->net;
	int dir, to = node_index(nb), l = link_of(t->node, to, &dir);

	if (l < 0 || !n->link[l].up)
		return QKD_ERR_IO;
	if (n->drop_completions && type == QKD_RELAY_MSG_COMPLETION)
		return QKD_OK;
	assert_true(n->qt - n->qh < QMAX);
	n->q[n->qt % QMAX] = (struct tmsg){ t->node, to, type, len, malloc(len ? len : 1) };
	memcpy(n->q[n->qt % QMAX].body, body, len);
	n->qt++;
	return QKD_OK;
}

static int t_pad_take(void *c, const char *nb, uint32_t nbits, uint8_t *pad,
		      struct qkd_store_seg *segs, size_t *n_pad, const char **why)
{
	struct tctx *t = c;
	int dir, l = link_of(t->node, node_index(nb), &dir);
	struct tlink *k = &t->net->link[l];

	if (k->budget[dir] < nbits) {
		*why = "the link holds too little key";
		return QKD_ERR_RANGE;
	}
	segs[0] = (struct qkd_store_seg){ (uint64_t)dir, k->next[dir], nbits };
	*n_pad = 1;
	for (uint32_t i = 0; i < nbits / 8; i++)
		pad[i] = pad_byte(l, dir, k->next[dir] / 8 + i);
	k->next[dir] += nbits;
	k->budget[dir] -= nbits;
	return QKD_OK;
}

static int t_pad_use(void *c, const char *nb, const struct qkd_store_seg *segs, size_t n_pad,
		     uint8_t *pad, uint32_t nbits, const char **why)
{
	struct tctx *t = c;
	int dir, l = link_of(node_index(nb), t->node, &dir);
	struct tlink *k = &t->net->link[l];
	uint32_t o = 0;

	for (size_t s = 0; s < n_pad; s++) {
		if (segs[s].id != (uint64_t)dir || segs[s].offset + segs[s].nbits > k->next[dir]) {
			*why = "bits the sender never took";
			return QKD_ERR_INVAL;
		}
		for (uint64_t b = segs[s].offset / 8; b < (segs[s].offset + segs[s].nbits) / 8; b++)
			if (k->used[dir][b]) {
				*why = "bits already used";
				return QKD_ERR_INVAL;
			}
	}
	for (size_t s = 0; s < n_pad; s++)
		for (uint64_t b = segs[s].offset / 8; b < (segs[s].offset + segs[s].nbits) / 8; b++) {
			k->used[dir][b] = 1;
			pad[o++] = pad_byte(l, dir, b);
		}
	assert_int_equal(o * 8, nbits);
	return QKD_OK;
}

static int t_deliver(void *c, const uint8_t key_id[16], const char *master, const char *slave,
		     const char *source, const uint8_t *key, uint32_t nbits, const char **why)
{
	struct tctx *t = c;
	struct tnet *n = t->net;
	struct tkey *k;

	(void)master;
	(void)source;
	if (n->refuse_deliver) {
		*why = "disk full";
		return QKD_ERR_NOSPACE;
	}
	for (size_t i = 0; i < n->nkeys[t->node]; i++) {
		k = &n->keys[t->node][i];
		if (memcmp(k->id, key_id, 16) == 0) {
			/* A retry: the same bits, or refused. */
			assert_memory_equal(k->bits, key, nbits / 8);
			k->delivered++;
			return QKD_OK;
		}
	}
	assert_true(n->nkeys[t->node] < 16);
	k = &n->keys[t->node][n->nkeys[t->node]++];
	memcpy(k->id, key_id, 16);
	memcpy(k->bits, key, nbits / 8);
	k->nbits = nbits;
	k->delivered = 1;
	snprintf(k->slave, sizeof k->slave, "%s", slave);
	return QKD_OK;
}

static void t_done(void *c, const uint8_t key_id[16], int result, const char *why,
		   unsigned shares, unsigned hops)
{
	struct tctx *t = c;

	(void)key_id;
	(void)why;
	(void)hops;
	t->net->done_calls++;
	t->net->done_result = result;
	t->net->done_shares = shares;
}

static int t_withdraw(void *c, const uint8_t key_id[16], const char *source, bool *found,
		      const char **why)
{
	struct tctx *t = c;
	struct tnet *n = t->net;

	(void)why;
	assert_string_equal(source, "A");
	*found = false;
	for (size_t i = 0; i < n->nkeys[t->node]; i++)
		if (memcmp(n->keys[t->node][i].id, key_id, 16) == 0 &&
		    n->keys[t->node][i].withdrawn == 0) {
			n->keys[t->node][i].withdrawn = 1;
			*found = true;
		}
	return QKD_OK;
}

static double t_now(void *c)
{
	return ((struct tctx *)c)->net->now;
}

static void t_log(void *c, enum qkd_log_level lv, const char *line)
{
	struct tnet *n = c;

	if (lv <= QKD_LOG_WARN && strlen(n->log) + strlen(line) + 2 < sizeof n->log) {
		strcat(n->log, line);
		strcat(n->log, "\n");
	}
	if (lv <= QKD_LOG_INFO && strlen(n->info) + strlen(line) + 2 < sizeof n->info) {
		strcat(n->info, line);
		strcat(n->info, "\n");
	}
}

static const struct qkd_relay_ops tops = { t_send, t_pad_take, t_pad_use, t_deliver, t_done,
					   t_now, t_withdraw };
static struct qkd_logger tlog;

static struct tnet *net_new(void)
{
	struct tnet *n = calloc(1, sizeof *n);

	assert_non_null(n);
	tlog = (struct qkd_logger){ t_log, n, QKD_LOG_DEBUG };
	for (int i = 0; i < NN; i++) {
		struct qkd_relay_config c;
		const char *nbs[4], *saes[1];
		char sae[16];
		size_t k = 0;

		for (int l = 0; l < NL; l++) {
			if (ends[l][0] == i)
				nbs[k++] = ids[ends[l][1]];
			else if (ends[l][1] == i)
				nbs[k++] = ids[ends[l][0]];
		}
		snprintf(sae, sizeof sae, "SAE_%s", ids[i]);
		saes[0] = sae;
		qkd_relay_config_default(&c);
		c.self = ids[i];
		c.neighbours = nbs;
		c.n_neighbours = k;
		c.saes = saes;
		c.n_saes = 1;
		c.log = &tlog;
		c.ops = &tops;
		ctxs[i] = (struct tctx){ n, i };
		c.ctx = &ctxs[i];
		c.relays_max = 8;
		assert_int_equal(qkd_relay_new(&c, &n->ag[i]), QKD_OK);
	}
	for (int l = 0; l < NL; l++)
		n->link[l].budget[0] = n->link[l].budget[1] = (uint64_t)POOL_BYTES * 8;
	return n;
}

static void net_free(struct tnet *n)
{
	for (int i = 0; i < NN; i++)
		qkd_relay_free(n->ag[i]);
	while (n->qh < n->qt)
		free(n->q[n->qh++ % QMAX].body);
	free(n);
}

/* Deliver queued messages until none is left (bounded). */
static void net_run(struct tnet *n)
{
	for (size_t steps = 0; n->qh < n->qt && steps < 100000; steps++) {
		struct tmsg m = n->q[n->qh++ % QMAX];
		int dir, l = link_of(m.from, m.to, &dir);
		const char *why;

		if (n->link[l].up && !n->link[l].drop)
			assert_int_equal(qkd_relay_receive(n->ag[m.to], ids[m.from], m.type, m.body,
							   m.len, &why), QKD_OK);
		free(m.body);
	}
	assert_true(n->qh == n->qt);
}

/* Move the clock by dt in 100 ms ticks, delivering between ticks. */
static void net_advance(struct tnet *n, double dt)
{
	for (double t = 0; t < dt; t += 0.1) {
		n->now += 0.1;
		for (int i = 0; i < NN; i++)
			qkd_relay_tick(n->ag[i]);
		net_run(n);
	}
}

static void link_set(struct tnet *n, int l, bool up)
{
	n->link[l].up = up;
	assert_int_equal(qkd_relay_link_up(n->ag[ends[l][0]], ids[ends[l][1]], up), QKD_OK);
	assert_int_equal(qkd_relay_link_up(n->ag[ends[l][1]], ids[ends[l][0]], up), QKD_OK);
}

/* Both ends report a link: avail bits, alarmed or not. */
static void link_report(struct tnet *n, int l, uint64_t avail, bool alarmed)
{
	for (int e = 0; e < 2; e++)
		assert_int_equal(qkd_relay_link_report(n->ag[ends[l][e]], ids[ends[l][1 - e]],
						       alarmed, alarmed ? 0.2 : 0.02, avail + 1000,
						       avail, 5000), QKD_OK);
}

/* All links up with the same key, and the database converged. */
static struct tnet *net_up(void)
{
	struct tnet *n = net_new();

	for (int l = 0; l < NL; l++) {
		link_set(n, l, true);
		link_report(n, l, 1000000, false);
	}
	net_advance(n, 1.5);
	return n;
}

static void test_flooding_converges(void **state)
{
	struct tnet *n = net_up();
	struct qkd_relay_stats st;

	(void)state;
	for (int i = 0; i < NN; i++) {
		const struct qkd_lsdb *db = qkd_relay_lsdb(n->ag[i]);

		assert_int_equal(qkd_lsdb_count(db), NN);
		assert_int_equal(qkd_routes_count(qkd_relay_routes(n->ag[i])), NN - 1);
		for (int j = 0; j < NN; j++)
			assert_string_equal(qkd_relay_sae_node(n->ag[i],
							      (char[]){ 'S', 'A', 'E', '_',
									ids[j][0], 0 }),
					    ids[j]);
	}
	/* Equal costs: A reaches D in 3 hops either way round. */
	assert_int_equal(qkd_routes_get(qkd_relay_routes(n->ag[0]), "D")->hops, 3);
	qkd_relay_get_stats(n->ag[0], &st);
	assert_true(st.lsa_originated >= 2);
	assert_true(st.lsa_received >= NN - 1);
	assert_string_equal(n->log, "");
	net_free(n);
}

static const uint8_t kid[16] = { 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
static const uint8_t key[32] = "0123456789abcdef0123456789abcdef";

/* The key D holds under kid, or NULL. */
static struct tkey *held(struct tnet *n, int node)
{
	for (size_t i = 0; i < n->nkeys[node]; i++)
		if (memcmp(n->keys[node][i].id, kid, 16) == 0)
			return &n->keys[node][i];
	return NULL;
}

static void test_relay_one_path(void **state)
{
	struct tnet *n = net_up();
	struct qkd_relay_stats st;
	const char *why;
	uint64_t spent = 0;

	(void)state;
	assert_int_equal(qkd_relay_start(n->ag[0], kid, "SAE_A", "SAE_D", key, 256, 1, &why),
			 QKD_OK);
	net_run(n);
	assert_int_equal(n->done_calls, 1);
	assert_int_equal(n->done_result, QKD_OK);
	assert_int_equal(n->done_shares, 1);
	assert_non_null(held(n, 3));
	assert_memory_equal(held(n, 3)->bits, key, 32);
	assert_int_equal(held(n, 3)->delivered, 1);
	assert_string_equal(held(n, 3)->slave, "SAE_D");
	/* Every link key bit spent once, 256 per hop over 3 hops. */
	for (int l = 0; l < NL; l++)
		spent += n->link[l].next[0] + n->link[l].next[1];
	assert_int_equal(spent, 3 * 256);
	qkd_relay_get_stats(n->ag[0], &st);
	assert_int_equal(st.relays_completed, 1);
	/* The same key_ID again after it settled is a new relay, same bits. */
	assert_int_equal(qkd_relay_start(n->ag[0], kid, "SAE_A", "SAE_D", key, 256, 1, &why),
			 QKD_OK);
	net_run(n);
	assert_int_equal(held(n, 3)->delivered, 2);
	assert_int_equal(n->done_calls, 2);
	net_free(n);
}

static void test_relay_two_shares(void **state)
{
	struct tnet *n = net_up();
	struct qkd_relay_stats sb, sf, se, sc;
	const char *why;

	(void)state;
	assert_int_equal(qkd_relay_start(n->ag[0], kid, "SAE_A", "SAE_D", key, 256, 2, &why),
			 QKD_OK);
	net_run(n);
	assert_int_equal(n->done_result, QKD_OK);
	assert_int_equal(n->done_shares, 2);
	assert_memory_equal(held(n, 3)->bits, key, 32);
	/* Node-disjoint: one share through B, C; the other through F, E; so no
	 * relay saw both. */
	qkd_relay_get_stats(n->ag[1], &sb);
	qkd_relay_get_stats(n->ag[2], &sc);
	qkd_relay_get_stats(n->ag[4], &se);
	qkd_relay_get_stats(n->ag[5], &sf);
	assert_int_equal(sb.shares_forwarded, 1);
	assert_int_equal(sc.shares_forwarded, 1);
	assert_int_equal(se.shares_forwarded, 1);
	assert_int_equal(sf.shares_forwarded, 1);
	qkd_relay_get_stats(n->ag[0], &sb);
	assert_int_equal(sb.relays_two_paths, 1);
	/* C-D drained: the cheapest path is A-B-E-D, which leaves no disjoint
	 * second; A-B-C-D with A-F-E-D is still found. */
	link_report(n, 2, 300000, false);
	net_advance(n, 1.5);
	assert_string_equal(qkd_routes_get(qkd_relay_routes(n->ag[0]), "D")->path[2], "E");
	assert_int_equal(qkd_relay_start(n->ag[0], (const uint8_t *)"second-key-id-16", "SAE_A",
					 "SAE_D", key, 256, 2, &why), QKD_OK);
	net_run(n);
	assert_int_equal(n->done_result, QKD_OK);
	assert_int_equal(n->done_shares, 2);
	net_free(n);
}

/* The link C-D is cut while the key is on its way: C sends a failure back,
 * A tries again avoiding C-D, and D gets the key once. */
static void test_cut_in_flight(void **state)
{
	struct tnet *n = net_up();
	const struct qkd_route *rt;
	struct qkd_relay_stats st;
	const char *why;
	int cd = 2;

	(void)state;
	rt = qkd_routes_get(qkd_relay_routes(n->ag[0]), "D");
	if (strcmp(rt->next_hop, "B") != 0)
		cd = 3;	/* the route went A-F-E-D: cut E-D instead */
	n->link[cd].up = false;	/* cut, not yet noticed by the agents */
	assert_int_equal(qkd_relay_start(n->ag[0], kid, "SAE_A", "SAE_D", key, 256, 1, &why),
			 QKD_OK);
	net_run(n);
	link_set(n, cd, false);
	net_run(n);
	net_advance(n, 0.5);
	assert_int_equal(n->done_calls, 1);
	assert_int_equal(n->done_result, QKD_OK);
	assert_memory_equal(held(n, 3)->bits, key, 32);
	assert_int_equal(held(n, 3)->delivered, 1);
	qkd_relay_get_stats(n->ag[0], &st);
	assert_true(st.reroutes >= 1);
	/* After the LSAs, no route uses the cut link. */
	rt = qkd_routes_get(qkd_relay_routes(n->ag[0]), "D");
	assert_non_null(rt);
	for (size_t i = 0; i < rt->hops; i++)
		assert_false(strcmp(rt->path[i], ids[ends[cd][0]]) == 0 &&
			     strcmp(rt->path[i + 1], ids[ends[cd][1]]) == 0);
	net_free(n);
}

/* An alarmed link and a link out of key carry no route. */
static void test_alarm_and_no_key(void **state)
{
	struct tnet *n = net_up();
	const struct qkd_route *rt;

	(void)state;
	link_report(n, 0, 1000000, true);	/* A-B alarmed */
	net_run(n);
	rt = qkd_routes_get(qkd_relay_routes(n->ag[0]), "D");
	net_advance(n, 0.2);
	rt = qkd_routes_get(qkd_relay_routes(n->ag[0]), "D");
	assert_string_equal(rt->next_hop, "F");
	rt = qkd_routes_get(qkd_relay_routes(n->ag[0]), "B");
	assert_string_equal(rt->next_hop, "F");	/* A-F-E-B */
	link_report(n, 0, 1000000, false);
	link_report(n, 5, 100, false);		/* F-A out of key */
	net_advance(n, 1.5);
	rt = qkd_routes_get(qkd_relay_routes(n->ag[0]), "D");
	assert_string_equal(rt->next_hop, "B");
	rt = qkd_routes_get(qkd_relay_routes(n->ag[0]), "F");
	assert_string_equal(rt->next_hop, "B");
	assert_non_null(strstr(n->log, "alarmed"));
	net_free(n);
}

/* A link whose pool is empty though its LSA says otherwise: the hop fails
 * with "no key" and the source goes round. */
static void test_pool_empty_reroutes(void **state)
{
	struct tnet *n = net_up();
	const struct qkd_route *rt = NULL;
	const char *why;
	int l;

	(void)state;
	rt = qkd_routes_get(qkd_relay_routes(n->ag[0]), "D");
	l = strcmp(rt->next_hop, "B") == 0 ? 1 : 4;	/* B-C, or E-F */
	n->link[l].budget[0] = n->link[l].budget[1] = 0;
	assert_int_equal(qkd_relay_start(n->ag[0], kid, "SAE_A", "SAE_D", key, 256, 1, &why),
			 QKD_OK);
	net_run(n);
	assert_int_equal(n->done_result, QKD_OK);
	assert_memory_equal(held(n, 3)->bits, key, 32);
	assert_non_null(strstr(n->log, "no pad of 256 bits"));
	net_free(n);
}

static void test_bad_requests(void **state)
{
	struct tnet *n = net_up();
	const char *why;

	(void)state;
	assert_int_equal(qkd_relay_start(n->ag[0], kid, "SAE_A", "SAE_X", key, 256, 1, &why),
			 QKD_ERR_INVAL);
	assert_non_null(strstr(why, "advertises"));
	assert_int_equal(qkd_relay_start(n->ag[0], kid, "SAE_B", "SAE_D", key, 256, 1, &why),
			 QKD_ERR_INVAL);
	assert_int_equal(qkd_relay_start(n->ag[0], kid, "SAE_A", "SAE_A", key, 256, 1, &why),
			 QKD_ERR_INVAL);
	assert_int_equal(qkd_relay_start(n->ag[0], kid, "SAE_A", "SAE_D", key, 12, 1, &why),
			 QKD_ERR_INVAL);
	assert_int_equal(qkd_relay_start(n->ag[0], kid, "SAE_A", "SAE_D", key, 256, 3, &why),
			 QKD_ERR_INVAL);
	/* Every link down: no route. */
	for (int l = 0; l < NL; l++)
		link_set(n, l, false);
	net_advance(n, 0.2);
	assert_int_equal(qkd_relay_start(n->ag[0], kid, "SAE_A", "SAE_D", key, 256, 1, &why),
			 QKD_ERR_NOKEY);
	assert_int_equal(n->done_calls, 0);
	net_free(n);
}

/* A destination that cannot keep the key: the source hears it, once. */
static void test_destination_refuses(void **state)
{
	struct tnet *n = net_up();
	const char *why;

	(void)state;
	n->refuse_deliver = true;
	assert_int_equal(qkd_relay_start(n->ag[0], kid, "SAE_A", "SAE_D", key, 256, 1, &why),
			 QKD_OK);
	net_run(n);
	assert_int_equal(n->done_calls, 1);
	assert_int_equal(n->done_result, QKD_ERR_REFUSED);
	assert_null(held(n, 3));
	assert_non_null(strstr(n->log, "not kept: disk full"));
	net_free(n);
}

/* Silence: every message on the way is lost; the source gives up at its
 * deadline and says so, exactly once. */
static void test_timeout(void **state)
{
	struct tnet *n = net_up();
	const char *why;

	(void)state;
	for (int l = 0; l < NL; l++)
		n->link[l].drop = true;
	assert_int_equal(qkd_relay_start(n->ag[0], kid, "SAE_A", "SAE_D", key, 256, 1, &why),
			 QKD_OK);
	net_advance(n, 4.5);
	assert_int_equal(n->done_calls, 0);
	net_advance(n, 1.0);
	assert_int_equal(n->done_calls, 1);
	assert_int_equal(n->done_result, QKD_ERR_IO);
	net_advance(n, 1.0);
	assert_int_equal(n->done_calls, 1);
	net_free(n);
}

/* A key whose completion is lost: the source gives it up at its timeout
 * and withdraws it, the destination drops it and refuses it from then on;
 * a key that completed and was then discarded is withdrawn on request. */
static void test_withdrawal(void **state)
{
	static const uint8_t kid2[16] = { 0x43, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
	struct tnet *n = net_up();
	struct qkd_relay_stats st;
	const char *why;

	(void)state;
	n->drop_completions = true;
	assert_int_equal(qkd_relay_start(n->ag[0], kid, "SAE_A", "SAE_D", key, 256, 1, &why),
			 QKD_OK);
	net_run(n);
	assert_non_null(held(n, 3));			/* D holds it, A does not know */
	assert_int_equal(held(n, 3)->withdrawn, 0);
	net_advance(n, 5.5);
	assert_int_equal(n->done_calls, 1);
	assert_int_equal(n->done_result, QKD_ERR_IO);
	assert_int_equal(held(n, 3)->withdrawn, 1);	/* gone at D */
	assert_non_null(strstr(n->info, "withdrawn by its source A: dropped"));
	qkd_relay_get_stats(n->ag[0], &st);
	assert_int_equal(st.withdrawals_sent, 1);
	qkd_relay_get_stats(n->ag[3], &st);
	assert_int_equal(st.withdrawals_received, 1);
	/* The same key_ID again never comes back to life at D. */
	n->drop_completions = false;
	assert_int_equal(qkd_relay_start(n->ag[0], kid, "SAE_A", "SAE_D", key, 256, 1, &why),
			 QKD_OK);
	net_run(n);
	assert_int_equal(n->done_calls, 2);
	assert_int_equal(n->done_result, QKD_ERR_REFUSED);
	assert_int_equal(held(n, 3)->delivered, 1);
	assert_non_null(strstr(n->info, "withdrawn by its source, not kept"));

	/* Completed, then discarded by the source's user. */
	assert_int_equal(qkd_relay_start(n->ag[0], kid2, "SAE_A", "SAE_D", key, 256, 1, &why),
			 QKD_OK);
	assert_int_equal(qkd_relay_withdraw(n->ag[0], kid2, "SAE_D", &why), QKD_ERR_INVAL);
	assert_string_equal(why, "a relay of this key_ID is in progress");
	net_run(n);
	assert_int_equal(n->done_result, QKD_OK);
	assert_int_equal(qkd_relay_withdraw(n->ag[0], kid2, "SAE_Z", &why), QKD_ERR_INVAL);
	assert_int_equal(qkd_relay_withdraw(n->ag[0], kid2, "SAE_D", &why), QKD_OK);
	net_run(n);
	assert_int_equal(n->keys[3][1].withdrawn, 1);
	assert_memory_equal(n->keys[3][1].id, kid2, 16);
	/* With A's links down there is no route: refused, nothing sent. */
	link_set(n, 0, false);
	link_set(n, 5, false);
	net_advance(n, 0.2);
	assert_int_equal(qkd_relay_withdraw(n->ag[0], kid2, "SAE_D", &why), QKD_ERR_NOKEY);
	/* Sent: at the timeout, after D refused the second try (an earlier
	 * attempt may have been kept there), and on request. */
	qkd_relay_get_stats(n->ag[0], &st);
	assert_int_equal(st.withdrawals_sent, 3);
	net_free(n);
}

/* Hand a message to node `to` as if `from` sent it. */
static int inject(struct tnet *n, int from, int to, uint8_t type, const struct qkd_wbuf *w)
{
	const char *why;

	return qkd_relay_receive(n->ag[to], ids[from], type, w->p, w->len, &why);
}

static void test_bad_lsas(void **state)
{
	struct tnet *n = net_up();
	struct qkd_lsa lsa;
	struct qkd_relay_stats st0, st1;
	struct qkd_wbuf w;

	(void)state;
	qkd_wbuf_init(&w);
	/* An old LSA of A, arriving at B from C. */
	qkd_lsa_copy(&lsa, qkd_lsdb_get(qkd_relay_lsdb(n->ag[1]), "A"));
	lsa.seq--;
	assert_int_equal(qkd_lsa_encode(&lsa, &w), QKD_OK);
	qkd_relay_get_stats(n->ag[1], &st0);
	assert_int_equal(inject(n, 2, 1, QKD_RELAY_MSG_LSA, &w), QKD_OK);
	qkd_relay_get_stats(n->ag[1], &st1);
	assert_int_equal(st1.lsa_refused, st0.lsa_refused + 1);
	assert_int_equal(qkd_lsdb_get(qkd_relay_lsdb(n->ag[1]), "A")->seq, lsa.seq + 1);
	assert_non_null(strstr(n->info, "refused: older than the held seq"));
	/* B's own id with a higher sequence: B jumps past it. */
	qkd_lsa_copy(&lsa, qkd_lsdb_get(qkd_relay_lsdb(n->ag[1]), "B"));
	lsa.seq += 1000;
	lsa.n_links = 0;
	qkd_wbuf_reset(&w);
	assert_int_equal(qkd_lsa_encode(&lsa, &w), QKD_OK);
	assert_int_equal(inject(n, 0, 1, QKD_RELAY_MSG_LSA, &w), QKD_OK);
	net_run(n);
	assert_true(qkd_lsdb_get(qkd_relay_lsdb(n->ag[1]), "B")->seq > lsa.seq);
	assert_int_equal(qkd_lsdb_get(qkd_relay_lsdb(n->ag[1]), "B")->n_links, 3);
	assert_int_equal(qkd_lsdb_get(qkd_relay_lsdb(n->ag[4]), "B")->n_links, 3);
	/* Bytes that are no LSA end the connection (an error for the link). */
	assert_int_not_equal(inject(n, 0, 1, QKD_RELAY_MSG_LSA, &(struct qkd_wbuf){ .p = w.p, .len = 3 }),
			     QKD_OK);
	qkd_wbuf_cleanup(&w);
	net_free(n);
}

/* A key relay message as `from` would send it to `to` over their link,
 * with a real pad of that link. */
static void make_key_msg(int from, int to, const char *const *path, size_t np,
			 const char *master, const char *slave, struct qkd_wbuf *w)
{
	static struct qkd_relay_key_msg m;
	uint8_t pad[32];

	memset(&m, 0, sizeof m);
	memcpy(m.h.key_id, kid, 16);
	m.h.shares = 1;
	m.h.n_path = (uint8_t)np;
	for (size_t i = 0; i < np; i++) {
		snprintf(m.h.path[i], sizeof m.h.path[i], "%s", path[i]);
		if (strcmp(path[i], ids[to]) == 0)
			m.h.hop = (uint8_t)i;
	}
	snprintf(m.master, sizeof m.master, "%s", master);
	snprintf(m.slave, sizeof m.slave, "%s", slave);
	m.nbits = 256;
	assert_int_equal(t_pad_take(&ctxs[from], ids[to], 256, pad, m.pad, &m.n_pad,
				    &(const char *){ NULL }), QKD_OK);
	for (int i = 0; i < 32; i++)
		m.cipher[i] = key[i] ^ pad[i];
	qkd_wbuf_reset(w);
	assert_int_equal(qkd_relay_key_encode(&m, w), QKD_OK);
}

static void test_bad_relay_messages(void **state)
{
	struct tnet *n = net_up();
	struct qkd_relay_stats st;
	struct qkd_wbuf w;
	const char *p_cd[] = { "C", "D" }, *p_abc[] = { "A", "B", "C" };
	uint8_t *loop;

	(void)state;
	qkd_wbuf_init(&w);
	/* A master SAE its source does not advertise: D refuses and says so to C. */
	make_key_msg(2, 3, p_cd, 2, "SAE_A", "SAE_D", &w);
	assert_int_equal(inject(n, 2, 3, QKD_RELAY_MSG_KEY, &w), QKD_OK);
	net_run(n);
	assert_null(held(n, 3));
	assert_non_null(strstr(n->log, "the source does not advertise the master SAE"));
	assert_non_null(strstr(n->log, "which this node never sent"));
	/* An SAE D does not have. */
	make_key_msg(2, 3, p_cd, 2, "SAE_C", "SAE_Q", &w);
	assert_int_equal(inject(n, 2, 3, QKD_RELAY_MSG_KEY, &w), QKD_OK);
	net_run(n);
	assert_null(held(n, 3));
	assert_non_null(strstr(n->log, "the slave SAE is not attached here"));
	/* A good one, then its replay: the pad is spent, so refused. */
	make_key_msg(2, 3, p_cd, 2, "SAE_C", "SAE_D", &w);
	assert_int_equal(inject(n, 2, 3, QKD_RELAY_MSG_KEY, &w), QKD_OK);
	assert_int_equal(inject(n, 2, 3, QKD_RELAY_MSG_KEY, &w), QKD_OK);
	net_run(n);
	assert_memory_equal(held(n, 3)->bits, key, 32);
	assert_int_equal(held(n, 3)->delivered, 1);
	assert_non_null(strstr(n->log, "bits already used"));
	/* A path through A twice (patched after encoding: C -> A). */
	make_key_msg(0, 1, p_abc, 3, "SAE_A", "SAE_C", &w);
	loop = memchr(w.p + 22, 'C', 8);
	assert_non_null(loop);
	*loop = 'A';
	qkd_relay_get_stats(n->ag[1], &st);
	assert_int_equal(inject(n, 0, 1, QKD_RELAY_MSG_KEY, &w), QKD_OK);
	net_run(n);
	assert_non_null(strstr(n->log, "loop"));
	assert_int_equal(n->nkeys[2], 0);
	/* A completion for a key A never sent. */
	{
		struct qkd_relay_back_msg b = { 0 };

		memcpy(b.h.key_id, "never-sent-key-!", 16);
		b.h.shares = 1;
		b.h.n_path = 2;
		strcpy(b.h.path[0], "A");
		strcpy(b.h.path[1], "B");
		b.at = 1;
		qkd_wbuf_reset(&w);
		assert_int_equal(qkd_relay_back_encode(&b, QKD_RELAY_MSG_COMPLETION, &w), QKD_OK);
		assert_int_equal(inject(n, 1, 0, QKD_RELAY_MSG_COMPLETION, &w), QKD_OK);
		qkd_relay_get_stats(n->ag[0], &st);
		assert_int_equal(st.refused, 1);
		assert_int_equal(n->done_calls, 0);
	}
	qkd_wbuf_cleanup(&w);
	net_free(n);
}

static void test_config_refused(void **state)
{
	struct qkd_relay_config c;
	struct qkd_relay *r = NULL;
	const char *nbs[] = { "B", "B" }, *self_nb[] = { "A" };

	(void)state;
	qkd_relay_config_default(&c);
	c.ops = &tops;
	c.self = "A";
	c.neighbours = nbs;
	c.n_neighbours = 2;
	assert_int_equal(qkd_relay_new(&c, &r), QKD_ERR_INVAL);
	assert_null(r);
	c.neighbours = self_nb;
	c.n_neighbours = 1;
	assert_int_equal(qkd_relay_new(&c, &r), QKD_ERR_INVAL);
	c.n_neighbours = 0;
	c.self = "-bad";
	assert_int_equal(qkd_relay_new(&c, &r), QKD_ERR_INVAL);
	c.self = "A";
	c.attempts = 0;
	assert_int_equal(qkd_relay_new(&c, &r), QKD_ERR_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flooding_converges),
		cmocka_unit_test(test_relay_one_path),
		cmocka_unit_test(test_relay_two_shares),
		cmocka_unit_test(test_cut_in_flight),
		cmocka_unit_test(test_alarm_and_no_key),
		cmocka_unit_test(test_pool_empty_reroutes),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_destination_refuses),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_withdrawal),
		cmocka_unit_test(test_bad_lsas),
		cmocka_unit_test(test_bad_relay_messages),
		cmocka_unit_test(test_config_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
