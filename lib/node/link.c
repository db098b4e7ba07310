/* link.c - a link's life: connect, SYNC, RECOVER, rounds, reconnect
 * (docs/node.md). One thread per link; the daemon stops it by setting
 * *stop and shutting its sockets down. */
#include "link_round.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/kme_store.h"
#include "qkd/msg.h"
#include "qkd/sysutil.h"

/* Rounds stopped by the QBER threshold in a row before the link reports
 * eavesdropping suspected. */
#define SUSPECT_STREAK 3

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
	return pthread_mutex_init(&ctx->lock, NULL) == 0 && kme_init(&ctx->kme) == 0
	       ? QKD_OK : QKD_ERR_NOMEM;
}

void qkd_link_ctx_cleanup(struct qkd_link_ctx *ctx)
{
	if (ctx->listen_fd >= 0)
		close(ctx->listen_fd);
	ctx->listen_fd = -1;
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

/* Store and authentication figures, after every round. */
static void refresh_figures(struct qkd_link_ctx *ctx, struct qkd_store *store,
			    const struct node_auth *auth)
{
	struct qkd_store_stats ss;
	struct qkd_kme_counts kc;
	struct qkd_wc_stats ws;
	uint64_t half = 0, poor, quarter = ctx->cfg->auth_reserve_bits / 4;
	double up = qkd_wall_seconds() - ctx->started;
	bool low, warn;

	memset(&ss, 0, sizeof ss);
	if (qkd_store_stats(store, &ss, NULL) != QKD_OK)
		memset(&ss, 0, sizeof ss);
	if (qkd_store_kme_counts(store, &kc, NULL) != QKD_OK)
		memset(&kc, 0, sizeof kc);
	if (qkd_store_kme_available(store, node_kme_parity(ctx->cfg->role), &half, NULL) != QKD_OK)
		half = 0;
	qkd_wc_get_stats(auth->wc, &ws);
	poor = ws.send_bits_left < ws.recv_bits_left ? ws.send_bits_left : ws.recv_bits_left;
	pthread_mutex_lock(&ctx->lock);
	/* Hysteresis: warn when the poorer direction falls below a quarter of
	 * the reserve, again only after it was back above half of it. */
	low = poor < quarter || (ctx->status.auth_low && poor < 2 * quarter);
	warn = low && !ctx->status.auth_low;
	ctx->status.auth_low = low;
	ctx->status.kme_available_bits = half;
	ctx->status.kme_outbox = kc.outbox;
	ctx->status.kme_ready = kc.ready;
	ctx->status.kme_delivered = kc.delivered;
	ctx->status.kme_refused = kc.refused;
	ctx->status.stored_blocks = ss.state_count[QKD_STORE_FINAL] + ss.state_count[QKD_STORE_USED];
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

/* Account one round in the status and the log. */
static void note_round(struct qkd_link_ctx *ctx, const struct round_env *env, uint64_t id, int rc)
{
	const struct qkd_engine_stats *st = &env->st;
	struct qkd_link_status *s = &ctx->status;
	bool qber_abort = env->engine_ran &&
			  (st->abort == QKD_ABORT_QBER || st->abort == QKD_ABORT_SAMPLE_QBER);
	bool newly_suspected = false;

	pthread_mutex_lock(&ctx->lock);
	if (env->engine_ran && st->frame_bits > 0)
		s->last_qber = (double)st->errors_corrected / (double)st->frame_bits;
	else if (qber_abort)
		s->last_qber = st->qber_abort_value;
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
	if (rc != QKD_OK)
		snprintf(s->last_error, sizeof s->last_error, "%s", env->why ? env->why : qkd_strerror(rc));
	pthread_mutex_unlock(&ctx->lock);
	if (rc == QKD_OK && env->stored_bits > 0)
		qkd_logf(ctx->log, QKD_LOG_INFO, "link %s: block %llu stored: %llu bits, QBER %.2f %%",
			 ctx->cfg->name, (unsigned long long)id, (unsigned long long)env->stored_bits,
			 100 * s->last_qber);
	else if (rc == QKD_OK)
		qkd_logf(ctx->log, QKD_LOG_INFO, "link %s: round %llu ended without key (%s)",
			 ctx->cfg->name, (unsigned long long)id,
			 env->engine_ran ? qkd_abort_reason_text(st->abort) : "no engine run");
	if (newly_suspected)
		qkd_logf(ctx->log, QKD_LOG_WARN, "link %s: eavesdropping suspected: QBER above "
			 "%.3f in %d rounds running; no key is produced", ctx->cfg->name,
			 ctx->cfg->engine.abort_qber, SUSPECT_STREAK);
}

/* Rounds until an error or a stop. */
static int run_rounds(struct qkd_link_ctx *ctx, struct round_env *base, uint64_t next_id)
{
	int rc = QKD_OK;

	while (rc == QKD_OK && !atomic_load(ctx->stop)) {
		struct round_env env = *base;
		uint64_t id = next_id;

		if (ctx->cfg->role == QKD_ROLE_BOB) {
			set_state(ctx, "round");
			rc = node_kme_exchange_bob(ctx, env.ch, env.store, &env.why);
			if (rc == QKD_OK)
				rc = round_bob(&env, id);
			next_id++;
		} else {
			struct qkd_rbuf msg;
			uint8_t type = 0;

			set_state(ctx, "idle");
			rc = qkd_channel_recv(env.ch, &type, &msg);
			if (rc == QKD_OK && type == NODE_MSG_KME_SYNC) {
				rc = node_kme_serve_alice(ctx, env.ch, env.store, &msg, &env.why);
				if (rc != QKD_OK)
					base->why = env.why;
				continue;
			}
			if (rc == QKD_OK && type != NODE_MSG_ROUND)
				rc = type == QKD_MSG_ABORT ? QKD_ERR_ABORT : QKD_ERR_PROTO;
			if (rc != QKD_OK)
				break;
			set_state(ctx, "round");
			{
				struct qkd_rbuf peek = msg;

				id = qkd_get_varint(&peek);
			}
			rc = round_alice(&env, &msg);
		}
		note_round(ctx, &env, id, rc);
		refresh_figures(ctx, base->store, base->auth);
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

/* Alice: accept the classical channel, then connect the fiber. Bob:
 * connect the classical channel, then accept the fiber. */
static int connect_pair(struct qkd_link_ctx *ctx, int *cfd, int *ffd, const char **why)
{
	const struct qkd_link_config *c = ctx->cfg;

	if (c->role == QKD_ROLE_ALICE) {
		*cfd = node_accept(ctx->listen_fd, ctx->stop, 0, why);
		set_fd(ctx, 0, *cfd);
		if (*cfd >= 0)
			*ffd = node_connect(&c->fiber, ctx->stop, why);
	} else {
		/* Bob's classical connect can succeed against a relay (or a
		 * backlog) that then drops it, and Alice connects the fiber only
		 * after she accepted the classical channel: wait for the fiber
		 * for a bounded time, then start over, or both ends would wait
		 * for each other forever. */
		*cfd = node_connect(&c->classical, ctx->stop, why);
		set_fd(ctx, 0, *cfd);
		if (*cfd >= 0)
			*ffd = node_accept(ctx->listen_fd, ctx->stop, NODE_IO_TIMEOUT_S, why);
	}
	set_fd(ctx, 1, *ffd);
	return *cfd >= 0 && *ffd >= 0 ? QKD_OK : QKD_ERR_IO;
}

/* One connection: SYNC, RECOVER, the tentative auth bits, then rounds. */
static int session(struct qkd_link_ctx *ctx, struct round_env *base, int cfd, int ffd)
{
	struct qkd_channel ch;
	uint64_t next_id = 0;
	int rc;

	set_state(ctx, "syncing");
	rc = node_sync(cfd, base->auth, ctx->cfg, &ch, &base->why);
	if (rc != QKD_OK)
		return rc;
	base->ch = &ch;
	base->fiber_fd = ffd;
	set_state(ctx, "recovering");
	rc = ctx->cfg->role == QKD_ROLE_BOB ? node_recover_bob(&ch, base->store, &next_id, &base->why)
					    : node_recover_alice(&ch, base->store, &base->why);
	if (rc == QKD_OK)
		rc = node_auth_resolve(base->auth, base->store);
	refresh_figures(ctx, base->store, base->auth);
	if (rc == QKD_OK) {
		qkd_logf(ctx->log, QKD_LOG_INFO, "link %s: connected and recovered", ctx->cfg->name);
		node_kme_set_up(&ctx->kme, true);
		rc = run_rounds(ctx, base, next_id);
		node_kme_set_up(&ctx->kme, false);
	}
	qkd_channel_cleanup(&ch);
	base->ch = NULL;
	return rc;
}

/* Wait before reconnecting, in naps so a stop is seen at once. */
static void backoff(struct qkd_link_ctx *ctx)
{
	for (int i = 0; i < 10 && !atomic_load(ctx->stop); i++) {
		struct timespec ts = { .tv_nsec = 100000000L };

		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
}

static void log_failure(struct qkd_link_ctx *ctx, int rc, const char *why)
{
	enum qkd_log_level lv = rc == QKD_ERR_VERIFY ? QKD_LOG_WARN : QKD_LOG_INFO;

	if (rc == QKD_ERR_VERIFY)
		why = "a message failed authentication: dropped, the round's block discarded; "
		      "resynchronizing";
	qkd_logf(ctx->log, lv, "link %s: connection ended: %s (%s)", ctx->cfg->name,
		 why ? why : "peer gone", qkd_strerror(rc));
}

int qkd_link_run(struct qkd_link_ctx *ctx)
{
	struct round_env base;
	struct node_auth auth;
	const char *why = NULL;
	int rc, cfd = -1, ffd = -1;

	memset(&base, 0, sizeof base);
	base.ctx = ctx;
	base.cfg = ctx->cfg;
	rc = qkd_store_open(&base.store, ctx->cfg->store, &why);
	if (rc == QKD_OK)
		rc = qkd_store_check(base.store, &why);
	if (rc == QKD_OK) {
		base.auth = &auth;
		rc = node_auth_open(base.auth, ctx->cfg, base.store, &why);
	}
	if (rc != QKD_OK) {
		qkd_logf(ctx->log, QKD_LOG_ERROR, "link %s: %s: %s", ctx->cfg->name,
			 ctx->cfg->store, why ? why : qkd_strerror(rc));
		goto out;
	}
	refresh_figures(ctx, base.store, base.auth);
	while (!atomic_load(ctx->stop)) {
		set_state(ctx, "connecting");
		base.why = NULL;
		rc = connect_pair(ctx, &cfd, &ffd, &base.why);
		if (rc == QKD_OK)
			rc = session(ctx, &base, cfd, ffd);
		hang_up(ctx, &cfd, &ffd);
		if (atomic_load(ctx->stop))
			break;
		log_failure(ctx, rc, base.why);
		if (rc == QKD_ERR_NOKEY || base.auth->save_failed) {
			pthread_mutex_lock(&ctx->lock);
			ctx->status.auth_exhausted = rc == QKD_ERR_NOKEY;
			pthread_mutex_unlock(&ctx->lock);
			qkd_logf(ctx->log, QKD_LOG_ERROR, "link %s: %s: the link stops",
				 ctx->cfg->name, rc == QKD_ERR_NOKEY ?
				 "authentication key exhausted" :
				 "cannot save the authentication state");
			goto out;
		}
		backoff(ctx);
	}
	rc = QKD_OK;
out:
	set_state(ctx, rc == QKD_OK ? "stopped" : "failed");
	if (base.auth != NULL)
		node_auth_close(base.auth);
	qkd_store_close(base.store);
	return rc;
}

void *qkd_link_thread(void *arg)
{
	struct qkd_link_ctx *ctx = arg;

	ctx->result = qkd_link_run(ctx);
	return NULL;
}
