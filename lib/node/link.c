/* link.c - a link's life: open, connect with the handshake, RECOVER,
 * rounds, reconnect (docs/node.md). One thread per link; the daemon stops
 * it by setting *stop and shutting its sockets down. A link never ends on
 * its own: out of authentication key it stays down with an alarm, and a
 * full or read-only disk pauses it until a write succeeds again. Its
 * neighbours: link_handshake.c (the opening of a connection),
 * link_round.c (one round), link_commit.c (recovery), lib/kme/kme_sync.c (the key
 * manager's service on the link's multiplexer, qkd/mux.h), auth_file.c (the authentication state). */
#include "link_round.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/kme_store.h"
#include "qkd/msg.h"
#include "qkd/mux.h"
#include "qkd/secret.h"
#include "qkd/sysutil.h"

/* Rounds stopped by the QBER threshold in a row before the link reports
 * eavesdropping suspected. */
#define SUSPECT_STREAK 3
/* A paused link tries to write again this often. */
#define DISK_RETRY_S 5
/* Refused connections are logged at most once per this many seconds. */
#define STRANGER_LOG_S 10
/* The earlier rounds' QBER that sizes the first blocks (engine.h's
 * prior_*) weighs at most this many corrected bits, so it follows a
 * changing link within a few rounds. */
#define PRIOR_BITS_MAX ((uint64_t)1 << 21)

/* The key manager's waiters time out on CLOCK_MONOTONIC. */
static int kme_init(struct qkd_link_kme *k)
{
	pthread_condattr_t a;
	int rc = pthread_condattr_init(&a);

	if (rc == 0)
		rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&k->settled, &a);
	pthread_condattr_destroy(&a);
	return rc == 0 ? pthread_mutex_init(&k->lock, NULL) : rc;
}

int qkd_link_ctx_init(struct qkd_link_ctx *ctx, const struct qkd_link_config *cfg,
		      const struct qkd_logger *log, atomic_bool *stop)
{
	memset(ctx, 0, sizeof *ctx);
	ctx->cfg = cfg;
	ctx->log = log;
	ctx->stop = stop;
	ctx->fds[0] = ctx->fds[1] = -1;
	ctx->listen_fd = -1;
	ctx->started = qkd_wall_seconds();
	snprintf(ctx->status.state, sizeof ctx->status.state, "starting");
	ctx->kme.link_index = -1;
	if (pthread_mutex_init(&ctx->lock, NULL) != 0 || kme_init(&ctx->kme) != 0)
		return QKD_ERR_NOMEM;
	/* The services on the link's channel: the key manager's today. */
	if (qkd_mux_new(&ctx->mux, cfg->name, log) != QKD_OK ||
	    node_kme_service_new(ctx, ctx->mux, &ctx->kme.svc) != QKD_OK)
		return QKD_ERR_NOMEM;
	return QKD_OK;
}

void qkd_link_ctx_cleanup(struct qkd_link_ctx *ctx)
{
	if (ctx->listen_fd >= 0)
		close(ctx->listen_fd);
	ctx->listen_fd = -1;
	if (ctx->auth != NULL)
		node_auth_close(ctx->auth);
	free(ctx->auth);
	ctx->auth = NULL;
	qkd_store_close(ctx->store);
	ctx->store = NULL;
	node_kme_service_free(ctx->kme.svc);
	ctx->kme.svc = NULL;
	qkd_mux_free(ctx->mux);
	ctx->mux = NULL;
	pthread_mutex_destroy(&ctx->lock);
	pthread_mutex_destroy(&ctx->kme.lock);
	pthread_cond_destroy(&ctx->kme.settled);
}

int qkd_link_bind(struct qkd_link_ctx *ctx, const char **why)
{
	const struct qkd_link_config *c = ctx->cfg;

	ctx->listen_fd = node_listen(c->role == QKD_ROLE_ALICE ? &c->classical : &c->fiber, why);
	return ctx->listen_fd >= 0 ? QKD_OK : QKD_ERR_IO;
}

/* Every stored bit against its digest before the link serves any: what
 * fails is quarantined, never served, and reported to the peer at the
 * next exchange so both ends retire it (docs/keystore.md, "Digests"). */
static int verify_store(struct qkd_link_ctx *ctx, const char **why)
{
	uint64_t bad = 0;
	int rc = qkd_store_verify_all(ctx->store, &bad, why);

	if (rc == QKD_OK && bad > 0)
		qkd_logf(ctx->log, QKD_LOG_ERROR, "link %s: %s: %llu stored block(s) or key(s) "
			 "failed their digests (bit rot?): quarantined, never served; the peer "
			 "retires the same blocks", ctx->cfg->name, ctx->cfg->store,
			 (unsigned long long)bad);
	return rc;
}

int qkd_link_open(struct qkd_link_ctx *ctx, const char **why)
{
	bool found = false;
	int rc;

	ctx->auth = calloc(1, sizeof *ctx->auth);
	if (ctx->auth == NULL) {
		*why = "out of memory";
		return QKD_ERR_NOMEM;
	}
	rc = node_auth_load(ctx->auth, ctx->cfg, &found, why);
	if (rc == QKD_OK)
		rc = node_store_open(&ctx->store, ctx->cfg->store,
				     found && ctx->auth->replenished_through > 0, why);
	if (rc == QKD_OK && !found)
		rc = node_auth_create(ctx->auth, ctx->cfg, ctx->store, why);
	if (rc == QKD_OK)
		rc = node_auth_check_store(ctx->auth, ctx->store, why);
	if (rc == QKD_OK)
		rc = verify_store(ctx, why);
	return rc;
}

static void set_state(struct qkd_link_ctx *ctx, const char *state)
{
	pthread_mutex_lock(&ctx->lock);
	snprintf(ctx->status.state, sizeof ctx->status.state, "%s", state);
	pthread_mutex_unlock(&ctx->lock);
}

static void set_fd(struct qkd_link_ctx *ctx, int i, int fd)
{
	pthread_mutex_lock(&ctx->lock);
	ctx->fds[i] = fd;
	pthread_mutex_unlock(&ctx->lock);
}

void qkd_link_interrupt(struct qkd_link_ctx *ctx)
{
	pthread_mutex_lock(&ctx->lock);
	for (int i = 0; i < 2; i++)
		if (ctx->fds[i] >= 0)
			(void)shutdown(ctx->fds[i], SHUT_RDWR);
	pthread_mutex_unlock(&ctx->lock);
}

void qkd_link_status_get(struct qkd_link_ctx *ctx, struct qkd_link_status *out)
{
	pthread_mutex_lock(&ctx->lock);
	*out = ctx->status;
	pthread_mutex_unlock(&ctx->lock);
}

/* The poorer direction of the pad pool, in bits. */
static uint64_t auth_poorer(const struct node_auth *auth)
{
	struct qkd_wc_stats ws;

	qkd_wc_get_stats(auth->wc, &ws);
	return ws.send_bits_left < ws.recv_bits_left ? ws.send_bits_left : ws.recv_bits_left;
}

/* Store and authentication figures, after every round. */
static void refresh_figures(struct qkd_link_ctx *ctx)
{
	struct qkd_store_stats ss;
	struct qkd_kme_counts kc;
	struct qkd_wc_stats ws;
	struct qkd_mux_stats ms;
	uint64_t half = 0, poor, quarter = ctx->cfg->auth_reserve_bits / 4;
	double up = qkd_wall_seconds() - ctx->started;
	bool low, warn;

	memset(&ss, 0, sizeof ss);
	if (qkd_store_stats(ctx->store, &ss, NULL) != QKD_OK)
		memset(&ss, 0, sizeof ss);
	if (qkd_store_kme_counts(ctx->store, &kc, NULL) != QKD_OK)
		memset(&kc, 0, sizeof kc);
	if (qkd_store_kme_available(ctx->store, node_kme_parity(ctx->cfg->role), &half, NULL) !=
	    QKD_OK)
		half = 0;
	qkd_wc_get_stats(ctx->auth->wc, &ws);
	poor = auth_poorer(ctx->auth);
	qkd_mux_get_stats(ctx->mux, &ms);
	pthread_mutex_lock(&ctx->lock);
	ctx->status.service_sent = ms.sent;
	ctx->status.service_delivered = ms.delivered;
	ctx->status.service_unknown = ms.unknown;
	/* Hysteresis: warn when the poorer direction falls below a quarter of
	 * the reserve, again only after it was back above three eighths. (A
	 * refill stops at half, and the round's own tags take a little off.) */
	low = poor < quarter || (ctx->status.auth_low && poor < quarter * 3 / 2);
	warn = low && !ctx->status.auth_low;
	ctx->status.auth_low = low;
	ctx->status.kme_available_bits = half;
	ctx->status.kme_outbox = kc.outbox;
	ctx->status.kme_ready = kc.ready;
	ctx->status.kme_delivered = kc.delivered;
	ctx->status.kme_refused = kc.refused;
	ctx->status.kme_abandoned = kc.abandoned;
	ctx->status.kme_withdrawn = kc.withdrawn;
	ctx->status.kme_quarantined = kc.quarantined;
	ctx->status.kme_expired = kc.expired;
	ctx->status.kme_lost_bits = kc.lost_bits;
	ctx->status.kme_pruned = kc.pruned;
	ctx->status.auth_bits_poorer = poor;
	ctx->status.stored_blocks = ss.state_count[QKD_STORE_FINAL] + ss.state_count[QKD_STORE_USED];
	ctx->status.blocks_quarantined = ss.state_count[QKD_STORE_QUARANTINED];
	ctx->status.stored_bits = ss.total_bits;
	ctx->status.available_bits = ss.available_bits;
	ctx->status.auth_bits_left = ws.send_bits_left + ws.recv_bits_left + ws.pending_bits;
	ctx->status.auth_bits_spent = ws.hash_key_bits + ws.send_bits_spent + ws.recv_bits_spent;
	ctx->status.auth_bits_replenished = ws.key_bits_in;
	ctx->status.tags_failed = ws.tags_failed;
	ctx->status.key_rate_bps = up > 0 ? (double)ctx->status.session_bits / up : 0;
	pthread_mutex_unlock(&ctx->lock);
	if (warn)
		qkd_logf(ctx->log, QKD_LOG_WARN, "link %s: authentication key low: %llu bits left "
			 "in the poorer direction, reserve %llu. Rounds spend more on tags than "
			 "half their key refills; if this lasts the link stops. Raise round_pulses "
			 "(docs/config.md, auth_reserve_bits)", ctx->cfg->name,
			 (unsigned long long)poor, (unsigned long long)ctx->cfg->auth_reserve_bits);
}

/* Pads spent so far, both directions. */
static uint64_t auth_spent(const struct node_auth *auth)
{
	struct qkd_wc_stats ws;

	qkd_wc_get_stats(auth->wc, &ws);
	return ws.send_bits_spent + ws.recv_bits_spent;
}

/* The QBER of the rounds so far, for the next round's first blocks. */
static void note_prior(struct qkd_link_ctx *ctx, const struct qkd_engine_stats *st)
{
	uint64_t e = ctx->prior_errors + st->errors_corrected, b = ctx->prior_bits + st->frame_bits;

	if (b > PRIOR_BITS_MAX) {
		e = (uint64_t)((double)e * (double)PRIOR_BITS_MAX / (double)b);
		b = PRIOR_BITS_MAX;
	}
	ctx->prior_errors = e;
	ctx->prior_bits = b;
}

/* Account one round in the status and the log. */
static void note_round(struct qkd_link_ctx *ctx, const struct round_env *env, uint64_t id, int rc)
{
	const struct qkd_engine_stats *st = &env->st;
	struct qkd_link_status *s = &ctx->status;
	bool qber_abort = env->engine_ran &&
			  (st->abort == QKD_ABORT_QBER || st->abort == QKD_ABORT_SAMPLE_QBER);
	bool newly_suspected = false;
	enum qkd_qber_source src = QKD_QBER_NONE;
	double qber = 0;

	if (env->engine_ran && st->frame_bits > 0 && !qber_abort)
		note_prior(ctx, st);
	if (env->engine_ran)
		qkd_engine_qber(st, &qber, &src);
	pthread_mutex_lock(&ctx->lock);
	if (src != QKD_QBER_NONE) {
		s->last_qber = qber;
		s->last_qber_source = src;
	}
	if (rc != QKD_OK)
		s->rounds_failed++;
	else if (env->stored_bits > 0)
		s->rounds_ok++;
	else
		s->rounds_empty++;
	s->rounds_qber_abort += qber_abort;
	s->qber_abort_streak = qber_abort ? s->qber_abort_streak + 1 : 0;
	newly_suspected = !s->eavesdropping_suspected && s->qber_abort_streak >= SUSPECT_STREAK;
	if (s->qber_abort_streak >= SUSPECT_STREAK)
		s->eavesdropping_suspected = true;
	else if (s->qber_abort_streak == 0 && rc == QKD_OK)
		s->eavesdropping_suspected = false;
	s->last_block_bits = env->stored_bits;
	s->session_bits += env->stored_bits;
	s->last_round_auth_bits = env->auth_bits;
	s->last_round_trips = env->engine_ran ? st->ec_round_trips : 0;
	s->last_round_key_bits = env->stored_bits + env->refill_bits;
	s->session_auth_bits += env->auth_bits;
	s->session_key_bits += env->stored_bits + env->refill_bits;
	if (rc != QKD_OK)
		snprintf(s->last_error, sizeof s->last_error, "%s", env->why ? env->why : qkd_strerror(rc));
	pthread_mutex_unlock(&ctx->lock);
	if (rc == QKD_OK && env->stored_bits > 0)
		qkd_logf(ctx->log, QKD_LOG_INFO, "link %s: block %llu stored: %llu bits, QBER %.2f %%, "
			 "authentication %llu bits, %llu EC round trips", ctx->cfg->name,
			 (unsigned long long)id, (unsigned long long)env->stored_bits,
			 100 * s->last_qber, (unsigned long long)env->auth_bits,
			 (unsigned long long)st->ec_round_trips);
	else if (rc == QKD_OK)
		qkd_logf(ctx->log, QKD_LOG_INFO, "link %s: round %llu ended without key (%s)",
			 ctx->cfg->name, (unsigned long long)id,
			 env->engine_ran ? qkd_abort_reason_text(st->abort) : "no engine run");
	if (newly_suspected)
		qkd_logf(ctx->log, QKD_LOG_WARN, "link %s: eavesdropping suspected: QBER above "
			 "%.3f in %d rounds running; no key is produced", ctx->cfg->name,
			 ctx->cfg->engine.abort_qber, SUSPECT_STREAK);
}

/* Alice between rounds: Bob's next ROUND (services move meanwhile). */
static int alice_next(struct qkd_link_ctx *ctx, struct round_env *env, uint64_t *id, bool *ran)
{
	struct qkd_rbuf msg, peek;
	uint8_t type = 0;
	int rc;

	set_state(ctx, "idle");
	*ran = false;
	rc = qkd_channel_recv(env->ch, &type, &msg);
	if (rc == QKD_OK && type != NODE_MSG_ROUND)
		rc = type == QKD_MSG_ABORT ? QKD_ERR_ABORT : QKD_ERR_PROTO;
	if (rc != QKD_OK)
		return rc;
	set_state(ctx, "round");
	peek = msg;
	*id = qkd_get_varint(&peek);
	*ran = true;
	return round_alice(env, &msg);
}

/* Rounds until an error or a stop. */
static int run_rounds(struct qkd_link_ctx *ctx, struct round_env *base, uint64_t next_id)
{
	int rc = QKD_OK;

	while (rc == QKD_OK && !atomic_load(ctx->stop)) {
		struct round_env env = *base;
		uint64_t id = next_id, spent = auth_spent(base->auth);
		bool ran = true;

		env.engine = ctx->cfg->engine;
		env.engine.prior_errors = ctx->prior_errors;
		env.engine.prior_bits = ctx->prior_bits;
		if (ctx->cfg->role == QKD_ROLE_BOB) {
			set_state(ctx, "round");
			rc = round_bob(&env, id);
			next_id++;
		} else {
			rc = alice_next(ctx, &env, &id, &ran);
		}
		if (rc != QKD_OK && qkd_mux_error(ctx->mux) != NULL)
			env.why = qkd_mux_error(ctx->mux);	/* a service's message failed */
		if (!ran && rc == QKD_OK)
			continue;
		env.auth_bits = auth_spent(base->auth) - spent;
		note_round(ctx, &env, id, rc);
		refresh_figures(ctx);
		/* Anything the round left for the peer (a block quarantined). */
		node_kme_kick(&ctx->kme);
		if (rc != QKD_OK)
			base->why = env.why;
	}
	return rc;
}

/* Close the connection's sockets. */
static void hang_up(struct qkd_link_ctx *ctx, int *cfd, int *ffd)
{
	set_fd(ctx, 0, -1);
	set_fd(ctx, 1, -1);
	if (*cfd >= 0)
		close(*cfd);
	if (*ffd >= 0)
		close(*ffd);
	*cfd = *ffd = -1;
}

/* A connection that failed the handshake's gate or form: counted, and
 * logged at most once per STRANGER_LOG_S so a flood cannot fill the log. */
static void note_stranger(struct qkd_link_ctx *ctx, const char *why)
{
	double now = qkd_wall_seconds();

	pthread_mutex_lock(&ctx->lock);
	ctx->status.strangers_refused++;
	pthread_mutex_unlock(&ctx->lock);
	if (now - ctx->stranger_logged < STRANGER_LOG_S) {
		ctx->strangers_unlogged++;
		return;
	}
	qkd_logf(ctx->log, QKD_LOG_WARN, "link %s: connection refused at the handshake: %s "
		 "(%llu more since the last such line)", ctx->cfg->name, why,
		 (unsigned long long)ctx->strangers_unlogged);
	ctx->stranger_logged = now;
	ctx->strangers_unlogged = 0;
}

/* The far end's node id: shown in status once a handshake passed; when the
 * far end was refused for its id, a line naming both (docs/node.md, "Node
 * ids"), at most once per STRANGER_LOG_S for a peer that keeps trying. */
static void note_peer(struct qkd_link_ctx *ctx, int rc, const char *peer_id)
{
	const struct qkd_link_config *c = ctx->cfg;
	double now = qkd_wall_seconds();

	if (rc == QKD_OK) {
		pthread_mutex_lock(&ctx->lock);
		snprintf(ctx->status.peer_id, sizeof ctx->status.peer_id, "%s", peer_id);
		pthread_mutex_unlock(&ctx->lock);
		return;
	}
	if (peer_id[0] == '\0' || (strcmp(peer_id, c->node_id) != 0 &&
				    (c->peer[0] == '\0' || strcmp(peer_id, c->peer) == 0)))
		return;	/* refused for something else, logged by the caller */
	if (now - ctx->peer_logged < STRANGER_LOG_S)
		return;
	ctx->peer_logged = now;
	if (strcmp(peer_id, c->node_id) == 0)
		qkd_logf(ctx->log, QKD_LOG_ERROR, "link %s: refused: the far end's node id is '%s', "
			 "this node's own (two nodes with one node.id?)", c->name, peer_id);
	else
		qkd_logf(ctx->log, QKD_LOG_ERROR, "link %s: refused: the far end is node '%s', but "
			 "the link's peer is '%s'", c->name, peer_id, c->peer);
}

/* Bob: accept fiber connections until one carries this session's hello;
 * strays and stale ones are dropped. */
static int bob_fiber(struct qkd_link_ctx *ctx, const uint8_t *session, int *ffd,
		     const char **why)
{
	double deadline = qkd_wall_seconds() + NODE_PEER_WAIT_S;

	while (qkd_wall_seconds() < deadline) {
		int left = (int)(deadline - qkd_wall_seconds()) + 1;
		int fd = node_accept(ctx->listen_fd, ctx->stop, left, why);

		if (fd < 0)
			return QKD_ERR_IO;
		set_fd(ctx, 1, fd);
		if (node_fiber_hello_ok(fd, ctx->auth, session)) {
			*ffd = fd;
			return QKD_OK;
		}
		set_fd(ctx, 1, -1);
		close(fd);
		note_stranger(ctx, "a fiber connection without this session's hello");
	}
	*why = "the peer's fiber did not connect in time";
	return QKD_ERR_IO;
}

/* Alice: connect the fiber for this session and say which it is. */
static int alice_fiber(struct qkd_link_ctx *ctx, const uint8_t *session, int *ffd,
		       const char **why)
{
	int fd = node_connect(&ctx->cfg->fiber, ctx->stop, NODE_PEER_WAIT_S, why);

	if (fd < 0)
		return QKD_ERR_IO;
	set_fd(ctx, 1, fd);
	*ffd = fd;
	if (node_fiber_hello_send(fd, ctx->auth, session) != QKD_OK) {
		*why = "the fiber connection broke";
		return QKD_ERR_IO;
	}
	return QKD_OK;
}

static void drop_waiting(struct qkd_link_ctx *ctx, size_t i)
{
	close(ctx->waiting[i]);
	ctx->nwaiting--;
	ctx->waiting[i] = ctx->waiting[ctx->nwaiting];
	ctx->waiting_since[i] = ctx->waiting_since[ctx->nwaiting];
}

/* Take in the connections queued on Alice's port (the oldest goes when the
 * set is full), and drop those silent for NODE_HANDSHAKE_TIMEOUT_S. */
static void accept_waiting(struct qkd_link_ctx *ctx, bool readable, double now)
{
	size_t max = sizeof ctx->waiting / sizeof ctx->waiting[0];

	for (size_t i = 0; i < ctx->nwaiting; i++)
		if (now - ctx->waiting_since[i] > NODE_HANDSHAKE_TIMEOUT_S) {
			note_stranger(ctx, "a connection that said nothing");
			drop_waiting(ctx, i--);
		}
	while (readable) {
		int fd = accept4(ctx->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0)
			break;
		if (ctx->nwaiting == max) {
			size_t old = 0;

			for (size_t i = 1; i < max; i++)
				if (ctx->waiting_since[i] < ctx->waiting_since[old])
					old = i;
			note_stranger(ctx, "a connection pushed out by newer ones");
			drop_waiting(ctx, old);
		}
		ctx->waiting[ctx->nwaiting] = fd;
		ctx->waiting_since[ctx->nwaiting++] = now;
	}
}

/* Alice: the next connection that speaks (its first bytes arrived). The
 * silent ones wait beside it, each for NODE_HANDSHAKE_TIMEOUT_S at most,
 * so strangers sitting in the accept queue never hold Bob up. -1 on stop. */
static int alice_next_speaker(struct qkd_link_ctx *ctx, const char **why)
{
	while (!atomic_load(ctx->stop)) {
		struct pollfd p[1 + sizeof ctx->waiting / sizeof ctx->waiting[0]];
		size_t n = ctx->nwaiting;

		p[0] = (struct pollfd){ .fd = ctx->listen_fd, .events = POLLIN };
		for (size_t i = 0; i < n; i++)
			p[1 + i] = (struct pollfd){ .fd = ctx->waiting[i], .events = POLLIN };
		if (poll(p, 1 + n, 200) < 0 && errno != EINTR) {
			*why = strerror(errno);
			return -1;
		}
		for (size_t i = 0; i < n; i++)
			if (p[1 + i].revents != 0) {
				int fd = ctx->waiting[i];
				int fl = fcntl(fd, F_GETFL);

				ctx->nwaiting--;
				ctx->waiting[i] = ctx->waiting[ctx->nwaiting];
				ctx->waiting_since[i] = ctx->waiting_since[ctx->nwaiting];
				(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
				node_tune_socket(fd);
				return fd;
			}
		accept_waiting(ctx, p[0].revents != 0, qkd_wall_seconds());
	}
	*why = "stopped";
	return -1;
}

/* The classical connection, its handshake, then the fiber bound to it.
 * Alice drops a connection that fails the handshake and waits for the
 * next one at once: a stranger never makes her back off. */
static int connect_pair(struct qkd_link_ctx *ctx, struct qkd_channel *ch, int *cfd, int *ffd,
			const char **why)
{
	const struct qkd_link_config *c = ctx->cfg;
	uint8_t session[QKD_CHANNEL_SESSION_LEN];
	char peer_id[QKD_NODE_NAME_MAX];
	bool alice = c->role == QKD_ROLE_ALICE, stranger = false;
	int rc;

	do {
		hang_up(ctx, cfd, ffd);
		*cfd = alice ? alice_next_speaker(ctx, why)
			     : node_connect(&c->classical, ctx->stop, 0, why);
		if (*cfd < 0)
			return QKD_ERR_IO;
		set_fd(ctx, 0, *cfd);
		set_state(ctx, "syncing");
		rc = node_handshake(*cfd, ctx->auth, c, ch, session, &stranger, why, peer_id);
		if (rc != QKD_OK && stranger)
			note_stranger(ctx, *why);
		note_peer(ctx, rc, peer_id);
	} while (rc != QKD_OK && stranger && alice && !atomic_load(ctx->stop));
	if (rc == QKD_OK) {
		rc = alice ? alice_fiber(ctx, session, ffd, why) : bob_fiber(ctx, session, ffd, why);
		if (rc != QKD_OK)
			qkd_channel_cleanup(ch);
	}
	qkd_wipe(session, sizeof session);
	return rc;
}

/* A connection that ended on a malformed message or an ABORT: tell a
 * damaged or tampered channel from a peer's bug, for the log and
 * tags_failed. The end that met the malformed message aborts and reads on
 * to the peer's next AUTH frame; the end that gets the ABORT closes its
 * batch for it. One pad each way at most. */
static int diagnose(struct qkd_channel *ch, int rc)
{
	static const char why[] = "malformed message";

	if (rc == QKD_ERR_ABORT) {
		(void)qkd_channel_seal(ch);
		return rc;
	}
	if (rc != QKD_ERR_PROTO)
		return rc;
	(void)qkd_channel_send(ch, QKD_MSG_ABORT, (const uint8_t *)why, sizeof why - 1);
	node_set_timeouts_s(ch->fd, NODE_HANDSHAKE_TIMEOUT_S);
	return qkd_channel_skip_to_seal(ch) == QKD_ERR_VERIFY ? QKD_ERR_VERIFY : rc;
}

/* One connection: RECOVER, the tentative auth bits, then rounds. */
static int session(struct qkd_link_ctx *ctx, struct round_env *base, struct qkd_channel *ch,
		   int ffd)
{
	uint64_t next_id = 0;
	int rc;

	base->ch = ch;
	base->fiber_fd = ffd;
	set_state(ctx, "recovering");
	rc = ctx->cfg->role == QKD_ROLE_BOB ? node_recover_bob(ch, base->store, &next_id, &base->why)
					    : node_recover_alice(ch, base->store, &base->why);
	if (rc == QKD_OK)
		rc = node_auth_resolve(base->auth, base->store);
	refresh_figures(ctx);
	if (rc == QKD_OK) {
		qkd_logf(ctx->log, QKD_LOG_INFO, "link %s: connected and recovered", ctx->cfg->name);
		node_kme_set_up(&ctx->kme, true);
		qkd_mux_attach(ctx->mux, ch);
		rc = run_rounds(ctx, base, next_id);
		qkd_mux_detach(ctx->mux);
		node_kme_set_up(&ctx->kme, false);
	}
	if (!atomic_load(ctx->stop))
		rc = diagnose(ch, rc);
	qkd_channel_cleanup(ch);
	base->ch = NULL;
	return rc;
}

/* Sleep seconds, in naps so a stop is seen at once. */
static void nap(struct qkd_link_ctx *ctx, int seconds)
{
	for (int i = 0; i < 10 * seconds && !atomic_load(ctx->stop); i++) {
		struct timespec ts = { .tv_nsec = 100000000L };

		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
}

static bool disk_fault(int rc)
{
	return rc == QKD_ERR_NOSPACE || rc == QKD_ERR_READONLY;
}

static void log_failure(struct qkd_link_ctx *ctx, int rc, const char *why)
{
	enum qkd_log_level lv = rc == QKD_ERR_VERIFY ? QKD_LOG_WARN : QKD_LOG_INFO;

	if (rc == QKD_ERR_VERIFY)
		why = "a batch of messages failed authentication: the round's key discarded; "
		      "reconnecting";
	else if (why == NULL && rc == QKD_ERR_PROTO)
		why = "a malformed or out-of-sequence message (a damaged or tampered channel?): "
		      "the round's key discarded";
	else if (why == NULL && rc == QKD_ERR_ABORT)
		why = "the peer aborted the round";
	if (disk_fault(rc))
		lv = QKD_LOG_ERROR;
	qkd_logf(ctx->log, lv, "link %s: connection ended: %s (%s)", ctx->cfg->name,
		 why ? why : "peer gone", qkd_strerror(rc));
}

/* Out of authentication key: nothing can be authenticated any more, so the
 * link stays down, with the alarm, until the daemon stops. The key manager
 * goes on serving what is stored. */
static void stay_down(struct qkd_link_ctx *ctx)
{
	pthread_mutex_lock(&ctx->lock);
	ctx->status.auth_exhausted = true;
	snprintf(ctx->status.state, sizeof ctx->status.state, "down");
	snprintf(ctx->status.last_error, sizeof ctx->status.last_error,
		 "authentication key exhausted: the link needs a new bootstrap key "
		 "(docs/node.md, \"Starting over\")");
	pthread_mutex_unlock(&ctx->lock);
	qkd_logf(ctx->log, QKD_LOG_ERROR, "link %s: authentication key exhausted: the link "
		 "stays down; the node and its key manager go on", ctx->cfg->name);
	while (!atomic_load(ctx->stop))
		nap(ctx, 1);
}

/* A full or read-only disk: paused, with the alarm, until the
 * authentication state and the store can be written again. */
static void pause_for_disk(struct qkd_link_ctx *ctx, int rc)
{
	const char *what = qkd_strerror(rc);

	pthread_mutex_lock(&ctx->lock);
	ctx->status.disk_fault = true;
	snprintf(ctx->status.state, sizeof ctx->status.state, "paused");
	snprintf(ctx->status.last_error, sizeof ctx->status.last_error, "disk fault: %s", what);
	pthread_mutex_unlock(&ctx->lock);
	qkd_logf(ctx->log, QKD_LOG_ERROR, "link %s: paused: %s: %s; trying again every %d s",
		 ctx->cfg->name, ctx->cfg->store, what, DISK_RETRY_S);
	do {
		nap(ctx, DISK_RETRY_S);
		rc = node_auth_save(ctx->auth);
		if (rc == QKD_OK)
			rc = node_disk_probe(ctx->cfg->store);
	} while (disk_fault(rc) && !atomic_load(ctx->stop));
	pthread_mutex_lock(&ctx->lock);
	ctx->status.disk_fault = false;
	pthread_mutex_unlock(&ctx->lock);
	if (!atomic_load(ctx->stop))
		qkd_logf(ctx->log, QKD_LOG_INFO, "link %s: the disk takes writes again: resuming",
			 ctx->cfg->name);
}

int qkd_link_run(struct qkd_link_ctx *ctx)
{
	struct round_env base;
	struct qkd_channel ch;
	int rc, cfd = -1, ffd = -1;

	memset(&base, 0, sizeof base);
	memset(&ch, 0, sizeof ch);
	base.cfg = ctx->cfg;
	base.store = ctx->store;
	base.auth = ctx->auth;
	refresh_figures(ctx);
	while (!atomic_load(ctx->stop)) {
		set_state(ctx, "connecting");
		base.why = NULL;
		rc = connect_pair(ctx, &ch, &cfd, &ffd, &base.why);
		if (rc == QKD_OK)
			rc = session(ctx, &base, &ch, ffd);
		hang_up(ctx, &cfd, &ffd);
		if (atomic_load(ctx->stop))
			break;
		/* The peer may have found the pool empty first: no pad left in a
		 * direction means no connection can ever be authenticated again. */
		if (qkd_wc_send_pads_left(ctx->auth->wc) == 0 ||
		    qkd_wc_recv_pads_left(ctx->auth->wc) == 0)
			rc = QKD_ERR_NOKEY;
		log_failure(ctx, rc, base.why);
		if (rc == QKD_ERR_NOKEY)
			stay_down(ctx);
		else if (disk_fault(rc) || disk_fault(ctx->auth->save_err))
			pause_for_disk(ctx, disk_fault(rc) ? rc : ctx->auth->save_err);
		else
			nap(ctx, 1);
	}
	while (ctx->nwaiting > 0)
		drop_waiting(ctx, 0);
	set_state(ctx, "stopped");
	return QKD_OK;
}

void *qkd_link_thread(void *arg)
{
	struct qkd_link_ctx *ctx = arg;

	ctx->result = qkd_link_run(ctx);
	return NULL;
}
