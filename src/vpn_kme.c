/* vpn_kme.c - the gateway's key manager workers (vpn_kme.h): a thread per
 * ETSI 014 key manager running the blocking client (qkd/kme_client.h), a
 * request queue per worker, one shared result queue, and a pipe that wakes
 * the event loop. enc_keys is asked as the master SAE with the tunnel's
 * peer_sae as slave (clause 5.3), dec_keys as the slave with peer_sae as
 * master (clause 5.4): whichever gateway starts an exchange picks the key.
 */
#include "vpn_kme.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qkd/error.h"
#include "qkd/etsi014.h"
#include "qkd/kme_client.h"
#include "qkd/secret.h"

/* Requests waiting per key manager; the IKE layer asks for one key per
 * exchange, so a deep queue means the KME is stuck, not busy. */
#define KME_QUEUE_MAX 64
#define RESULT_QUEUE_MAX 256

struct kme_req {
	size_t tunnel;
	struct qkd_ike_ppk_req r;
};

struct kme_worker {
	struct vpn_kme *owner;
	const struct qkd_vpn_kme *conf;
	struct qkd_kme_client *client;
	pthread_t thread;
	bool started;
	struct kme_req q[KME_QUEUE_MAX];
	size_t head, n;
	pthread_cond_t wake;
};

struct vpn_kme {
	const struct qkd_vpn_config *cfg;
	const struct qkd_logger *log;
	pthread_mutex_t lock;
	bool stopping;
	struct kme_worker w[QKD_VPN_KMES_MAX];
	size_t nw;
	struct vpn_kme_result res[RESULT_QUEUE_MAX];
	size_t rhead, rn;
	int pipe_r, pipe_w;
	struct vpn_kme_counts counts;
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Under the lock: append a result and wake the loop. A full result queue
 * drops the oldest answer's key (wiped): the IKE layer asks again. */
static void push_result(struct vpn_kme *k, const struct vpn_kme_result *r)
{
	size_t at;

	if (k->rn == RESULT_QUEUE_MAX) {
		qkd_wipe(&k->res[k->rhead], sizeof k->res[0]);
		k->rhead = (k->rhead + 1) % RESULT_QUEUE_MAX;
		k->rn--;
	}
	at = (k->rhead + k->rn) % RESULT_QUEUE_MAX;
	k->res[at] = *r;
	k->rn++;
	if (write(k->pipe_w, "k", 1) < 0 && errno != EAGAIN)
		qkd_logf(k->log, QKD_LOG_WARN, "vpn: kme: wake-up pipe: %s", strerror(errno));
}

static void describe_error(int rc, const struct qkd_kme_error *e, char *why, size_t len)
{
	if (e->http_status && e->http_status != 200)
		snprintf(why, len, "HTTP %u: %s", e->http_status, e->message);
	else if (e->message[0])
		snprintf(why, len, "%s", e->message);
	else
		snprintf(why, len, "%s", qkd_strerror(rc));
}

/* One request against the KME, outside the lock. */
static void serve(struct kme_worker *w, const struct kme_req *q, struct vpn_kme_result *r)
{
	const struct qkd_vpn_tunnel *t = &w->owner->cfg->tunnels[q->tunnel];
	struct qkd_kme_keys keys = {0};
	struct qkd_kme_error err = {0};
	struct qkd_etsi014_uuid id;
	double t0 = mono_now();
	int rc;

	memset(r, 0, sizeof *r);
	r->tunnel = q->tunnel;
	r->token = q->r.token;
	r->fetched_for_peer = q->r.op == QKD_IKE_PPK_GET;
	if (q->r.op == QKD_IKE_PPK_NEW) {
		struct qkd_kme_enc_request er = {.number = 1, .size_bits = (uint32_t)q->r.bits};

		rc = qkd_kme_client_enc_keys(w->client, t->peer_sae, &er, &keys, &err);
	} else if (qkd_etsi014_uuid_parse(q->r.key_id, strlen(q->r.key_id), &id) != 0) {
		rc = QKD_ERR_INVAL;
		snprintf(err.message, sizeof err.message, "key_ID %.40s is not a UUID", q->r.key_id);
	} else {
		struct qkd_kme_dec_request dr = {.ids = &id, .n = 1, .size_bits = (uint32_t)q->r.bits};

		rc = qkd_kme_client_dec_keys(w->client, t->peer_sae, &dr, &keys, &err);
	}
	if (rc == 0 && (keys.n != 1 || keys.keys[0].len > sizeof r->key))
		rc = QKD_ERR_PROTO;
	if (rc == 0) {
		qkd_etsi014_uuid_format(&keys.keys[0].id, r->key_id);
		memcpy(r->key, keys.keys[0].bytes, keys.keys[0].len);
		r->key_len = keys.keys[0].len;
	} else {
		describe_error(rc, &err, r->why, sizeof r->why);
	}
	r->status = rc;
	r->seconds = mono_now() - t0;
	qkd_kme_keys_cleanup(&keys);
}

static void *worker_main(void *arg)
{
	struct kme_worker *w = arg;
	struct vpn_kme *k = w->owner;
	struct vpn_kme_result r;
	struct kme_req q;

	pthread_mutex_lock(&k->lock);
	for (;;) {
		while (!k->stopping && w->n == 0)
			pthread_cond_wait(&w->wake, &k->lock);
		if (k->stopping)
			break;
		q = w->q[w->head];
		w->head = (w->head + 1) % KME_QUEUE_MAX;
		w->n--;
		pthread_mutex_unlock(&k->lock);
		serve(w, &q, &r);
		pthread_mutex_lock(&k->lock);
		if (r.status != 0)
			k->counts.failed++;
		else if (q.r.op == QKD_IKE_PPK_NEW)
			k->counts.enc_ok++;
		else
			k->counts.dec_ok++;
		push_result(k, &r);
		qkd_wipe(&r, sizeof r);
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

static int open_clients(struct vpn_kme *k, char *why, size_t whylen)
{
	for (size_t i = 0; i < k->cfg->n_kmes; i++) {
		const struct qkd_vpn_kme *c = &k->cfg->kmes[i];
		struct qkd_kme_client_config cc = {.url = c->url, .cert_file = c->cert,
						   .key_file = c->key, .ca_file = c->ca,
						   .timeout_ms = 10000, .connect_timeout_ms = 5000};
		struct qkd_kme_error err = {0};
		int rc = qkd_kme_client_new(&k->w[i].client, &cc, &err);

		if (rc != 0) {
			snprintf(why, whylen, "kme %s: %s", c->name,
				 err.message[0] ? err.message : qkd_strerror(rc));
			return rc;
		}
		k->w[i].owner = k;
		k->w[i].conf = c;
		pthread_cond_init(&k->w[i].wake, NULL);
		k->nw = i + 1;
	}
	return 0;
}

int vpn_kme_start(const struct qkd_vpn_config *cfg, const struct qkd_logger *log,
		  struct vpn_kme **out, int *notify_fd, char *why, size_t whylen)
{
	struct vpn_kme *k = calloc(1, sizeof *k);
	int p[2], rc = QKD_ERR_NOMEM;

	*out = NULL;
	if (!k) {
		snprintf(why, whylen, "out of memory");
		return rc;
	}
	k->cfg = cfg;
	k->log = log;
	k->pipe_r = k->pipe_w = -1;
	pthread_mutex_init(&k->lock, NULL);
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		rc = QKD_ERR_IO;
		goto out;
	}
	k->pipe_r = p[0];
	k->pipe_w = p[1];
	rc = open_clients(k, why, whylen);
	for (size_t i = 0; rc == 0 && i < k->nw; i++) {
		if (pthread_create(&k->w[i].thread, NULL, worker_main, &k->w[i]) != 0) {
			snprintf(why, whylen, "cannot start the kme %s thread", k->w[i].conf->name);
			rc = QKD_ERR_NOMEM;
		} else {
			k->w[i].started = true;
		}
	}
out:
	if (rc != 0) {
		vpn_kme_stop(k);
		return rc;
	}
	*notify_fd = k->pipe_r;
	*out = k;
	return 0;
}

void vpn_kme_stop(struct vpn_kme *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	k->stopping = true;
	for (size_t i = 0; i < k->nw; i++)
		pthread_cond_signal(&k->w[i].wake);
	pthread_mutex_unlock(&k->lock);
	for (size_t i = 0; i < k->nw; i++) {
		if (k->w[i].started)
			pthread_join(k->w[i].thread, NULL);
		qkd_kme_client_free(k->w[i].client);
		pthread_cond_destroy(&k->w[i].wake);
	}
	if (k->pipe_r >= 0)
		close(k->pipe_r);
	if (k->pipe_w >= 0)
		close(k->pipe_w);
	pthread_mutex_destroy(&k->lock);
	qkd_wipe(k->res, sizeof k->res);
	free(k);
}

void vpn_kme_request(struct vpn_kme *k, size_t t, const struct qkd_ike_ppk_req *r)
{
	size_t i = k->cfg->tunnels[t].kme_index;
	struct kme_worker *w = &k->w[i];

	pthread_mutex_lock(&k->lock);
	if (i >= k->nw || w->n == KME_QUEUE_MAX) {
		struct vpn_kme_result res = {.tunnel = t, .token = r->token, .status = QKD_ERR_RANGE};

		snprintf(res.why, sizeof res.why, "the key manager's queue is full");
		k->counts.failed++;
		push_result(k, &res);
	} else {
		w->q[(w->head + w->n) % KME_QUEUE_MAX] = (struct kme_req){.tunnel = t, .r = *r};
		w->n++;
		pthread_cond_signal(&w->wake);
	}
	pthread_mutex_unlock(&k->lock);
}

int vpn_kme_take(struct vpn_kme *k, struct vpn_kme_result *out)
{
	char drain[64];
	int got = 0;

	while (read(k->pipe_r, drain, sizeof drain) > 0)
		;
	pthread_mutex_lock(&k->lock);
	if (k->rn > 0) {
		*out = k->res[k->rhead];
		qkd_wipe(&k->res[k->rhead], sizeof k->res[0]);
		k->rhead = (k->rhead + 1) % RESULT_QUEUE_MAX;
		k->rn--;
		got = 1;
	}
	pthread_mutex_unlock(&k->lock);
	return got;
}

void vpn_kme_counts(struct vpn_kme *k, struct vpn_kme_counts *out)
{
	pthread_mutex_lock(&k->lock);
	*out = k->counts;
	pthread_mutex_unlock(&k->lock);
}
