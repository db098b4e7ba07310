/* node_kme_janitor.c - the key manager's lifecycle thread (docs/kme.md, "Key
 * lifecycle"): ready keys nobody fetched within kme.key_ttl expire, and
 * tombstones whose blocks are spent are pruned.
 *
 * It runs apart from the link threads, so keys expire on time while a link
 * is down or reconnecting (a link thread only refreshes its figures between
 * rounds). Each node expires its own inbox by its own clock: no message
 * crosses the link for it. That is safe because the master's end holds no
 * copy to keep in step: enc_keys handed the master's bits to its SAE and
 * the outbox keeps only coordinates, dropped once the peer accepted. The
 * slave's copy is the one that waits, and the one that expires. Clock skew
 * between the nodes changes nothing: there is nothing at the master's end
 * for it to disagree with.
 */
#include <errno.h>
#include <time.h>

#include "node_kme_int.h"
#include "../node/node_int.h"

#include "qkd/error.h"

unsigned node_kme_janitor_period(unsigned ttl_s)
{
	unsigned p = ttl_s / 4;

	if (ttl_s == 0 || p > 60)
		return 60;
	return p < 1 ? 1 : p;
}

/* The store's counts into the link's status, as refresh_figures does
 * between rounds (the two agree: both read the same store). */
static void publish(struct qkd_link_ctx *l, const struct qkd_kme_counts *kc)
{
	pthread_mutex_lock(&l->lock);
	l->status.kme_outbox = kc->outbox;
	l->status.kme_abandoned = kc->abandoned;
	l->status.kme_ready = kc->ready;
	l->status.kme_delivered = kc->delivered;
	l->status.kme_refused = kc->refused;
	l->status.kme_withdrawn = kc->withdrawn;
	l->status.kme_quarantined = kc->quarantined;
	l->status.kme_expired = kc->expired;
	l->status.kme_lost_bits = kc->lost_bits;
	l->status.kme_pruned = kc->pruned;
	pthread_mutex_unlock(&l->lock);
}

static void pass_slot(struct node_kme_janitor *j, size_t i, int64_t now)
{
	struct node_kme_slot *slot = &j->slots[i];
	const char *name = j->links[i].cfg->name, *w = NULL;
	struct qkd_kme_counts kc;
	size_t expired = 0, pruned = 0;
	int rc, rc2, rc3;

	pthread_mutex_lock(&slot->lock);
	rc = qkd_store_kme_expire(slot->st, now, j->ttl_s, &expired, &w);
	if (rc != QKD_OK)
		qkd_logf(j->log, QKD_LOG_ERROR, "kme: link %s: cannot expire keys: %s", name,
			 w != NULL ? w : qkd_strerror(rc));
	rc2 = qkd_store_kme_prune(slot->st, now, NODE_KME_PRUNE_AGE_S, &pruned, &w);
	if (rc2 != QKD_OK)
		qkd_logf(j->log, QKD_LOG_ERROR, "kme: link %s: cannot prune tombstones: %s",
			 name, w != NULL ? w : qkd_strerror(rc2));
	rc3 = qkd_store_kme_counts(slot->st, &kc, NULL);
	pthread_mutex_unlock(&slot->lock);
	if (expired > 0)
		qkd_logf(j->log, QKD_LOG_WARN, "kme: link %s: %zu ready key(s) expired unfetched "
			 "after %u s: bits wiped, key_IDs refused from now on", name, expired,
			 j->ttl_s);
	if (pruned > 0)
		qkd_logf(j->log, QKD_LOG_INFO, "kme: link %s: %zu tombstone(s) of spent blocks "
			 "pruned", name, pruned);
	if (rc3 == QKD_OK)
		publish(&j->links[i], &kc);
}

void node_kme_janitor_pass(struct node_kme_janitor *j, int64_t now)
{
	for (size_t i = 0; i < j->nlinks; i++)
		if (j->slots[i].st != NULL)
			pass_slot(j, i, now);
}

static void *janitor_main(void *arg)
{
	struct node_kme_janitor *j = arg;
	unsigned period = node_kme_janitor_period(j->ttl_s);
	struct timespec at;

	pthread_mutex_lock(&j->lock);
	while (!j->stop) {
		pthread_mutex_unlock(&j->lock);
		node_kme_janitor_pass(j, (int64_t)time(NULL));
		pthread_mutex_lock(&j->lock);
		clock_gettime(CLOCK_REALTIME, &at);
		at.tv_sec += (time_t)period;
		while (!j->stop && pthread_cond_timedwait(&j->wake, &j->lock, &at) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

int node_kme_janitor_start(struct node_kme_janitor *j)
{
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->wake, NULL);
	j->stop = false;
	j->running = pthread_create(&j->thread, NULL, janitor_main, j) == 0;
	if (!j->running) {
		pthread_cond_destroy(&j->wake);
		pthread_mutex_destroy(&j->lock);
	}
	return j->running ? QKD_OK : QKD_ERR_NOMEM;
}

void node_kme_janitor_stop(struct node_kme_janitor *j)
{
	if (!j->running)
		return;
	pthread_mutex_lock(&j->lock);
	j->stop = true;
	pthread_cond_signal(&j->wake);
	pthread_mutex_unlock(&j->lock);
	pthread_join(j->thread, NULL);
	j->running = false;
	pthread_cond_destroy(&j->wake);
	pthread_mutex_destroy(&j->lock);
}
