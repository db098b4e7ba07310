/* sa_mgr.c - the gateway's SA database (qkd/sa_mgr.h, RFC 4301 s4.4.2):
 * the ESP SA pairs of every tunnel, handed out with checkout and taken back
 * with checkin, after strongSwan libipsec's ipsec_sa_mgr. One mutex guards
 * the table; a condition variable wakes whoever waits for a checkin
 * (removal, listing, a second user of the same SA). The SAs themselves
 * (lib/vpn/esp_context.c) are used outside the lock by the one thread that
 * has them checked out. Neighbours: lib/vpn/dataplane.c (the user on the
 * packet path), the IKE state machine (install and remove). */
#include <pthread.h>
#include <stdlib.h>

#include "esp_int.h"
#include "qkd/sa_mgr.h"

/* One installed pair. A slot is free when in == NULL. */
struct sa_pair {
	struct qkd_esp_sa *in, *out;
	uint64_t order;		/* installation order, for list() and "newest" */
	bool pending;		/* out waits for activation (this end responded) */
	bool dying;		/* remove() runs: no new checkouts, not listed */
	bool busy_in, busy_out;	/* checked out */
};

struct qkd_sa_mgr {
	pthread_mutex_t mu;
	pthread_cond_t cv;	/* broadcast on every checkin and removal */
	size_t ntunnels;
	uint64_t next_order;
	struct sa_pair *pairs;	/* ntunnels x QKD_SA_MGR_INBOUND_MAX */
	size_t *active;		/* per tunnel: slot of the active outbound SA, or SIZE_MAX */
};

#define NSLOTS(m) ((m)->ntunnels * QKD_SA_MGR_INBOUND_MAX)
#define TUNNEL_OF(i) ((i) / QKD_SA_MGR_INBOUND_MAX)

int qkd_sa_mgr_new(size_t ntunnels, struct qkd_sa_mgr **out)
{
	struct qkd_sa_mgr *m = NULL;
	int rc = QKD_ERR_INVAL;

	*out = NULL;
	if (ntunnels == 0 || ntunnels > SIZE_MAX / QKD_SA_MGR_INBOUND_MAX / sizeof(struct sa_pair))
		goto out;
	rc = QKD_ERR_NOMEM;
	m = calloc(1, sizeof *m);
	if (m == NULL)
		goto out;
	m->ntunnels = ntunnels;
	m->pairs = calloc(NSLOTS(m), sizeof *m->pairs);
	m->active = malloc(ntunnels * sizeof *m->active);
	if (m->pairs == NULL || m->active == NULL) {
		free(m->pairs);
		free(m->active);
		free(m);
		m = NULL;
		goto out;
	}
	for (size_t t = 0; t < ntunnels; t++)
		m->active[t] = SIZE_MAX;
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	*out = m;
	rc = QKD_OK;
out:
	return rc;
}

void qkd_sa_mgr_free(struct qkd_sa_mgr *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < NSLOTS(m); i++) {
		qkd_esp_sa_free(m->pairs[i].in);
		qkd_esp_sa_free(m->pairs[i].out);
	}
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	free(m->pairs);
	free(m->active);
	free(m);
}

/* The slot of the live (not dying) pair whose inbound SPI is spi, or
 * SIZE_MAX. Under the lock. */
static size_t find_in(const struct qkd_sa_mgr *m, uint32_t spi)
{
	for (size_t i = 0; i < NSLOTS(m); i++) {
		const struct sa_pair *p = &m->pairs[i];

		if (p->in != NULL && !p->dying && p->in->spi == spi)
			return i;
	}
	return SIZE_MAX;
}

/* An SPI is in use while its pair exists, dying or not: the peer may still
 * send on it until the removal completes. */
static bool spi_in_use(const struct qkd_sa_mgr *m, uint32_t spi)
{
	for (size_t i = 0; i < NSLOTS(m); i++)
		if (m->pairs[i].in != NULL && m->pairs[i].in->spi == spi)
			return true;
	return false;
}

static bool pair_ok(const struct qkd_esp_sa *in, const struct qkd_esp_sa *out)
{
	return in != NULL && out != NULL && in->dir == QKD_ESP_IN && out->dir == QKD_ESP_OUT;
}

/* Make slot i the active one of its tunnel (the previous active pair stays,
 * inbound only, until it is removed). */
static void activate(struct qkd_sa_mgr *m, size_t i)
{
	m->pairs[i].pending = false;
	m->active[TUNNEL_OF(i)] = i;
}

int qkd_sa_mgr_install(struct qkd_sa_mgr *m, size_t t, struct qkd_esp_sa *in,
		       struct qkd_esp_sa *out, bool activate_now)
{
	size_t i, free_slot = SIZE_MAX;
	int rc = QKD_ERR_INVAL;

	if (m == NULL || t >= m->ntunnels || !pair_ok(in, out))
		goto fail;
	pthread_mutex_lock(&m->mu);
	if (spi_in_use(m, in->spi)) {
		pthread_mutex_unlock(&m->mu);
		goto fail;
	}
	for (i = t * QKD_SA_MGR_INBOUND_MAX; i < (t + 1) * QKD_SA_MGR_INBOUND_MAX; i++)
		if (m->pairs[i].in == NULL) {
			free_slot = i;
			break;
		}
	if (free_slot == SIZE_MAX) {
		pthread_mutex_unlock(&m->mu);
		rc = QKD_ERR_RANGE;
		goto fail;
	}
	m->pairs[free_slot] = (struct sa_pair){ .in = in, .out = out, .order = m->next_order++,
						.pending = true };
	/* With no active outbound SA there is nothing to break: the pair is
	 * usable at once, whichever end negotiated it. */
	if (activate_now || m->active[t] == SIZE_MAX)
		activate(m, free_slot);
	pthread_mutex_unlock(&m->mu);
	return QKD_OK;
fail:
	qkd_esp_sa_free(in);
	qkd_esp_sa_free(out);
	return rc;
}

/* After the active pair of tunnel t went away: the newest remaining pair,
 * pending or older, carries the traffic; none leaves the tunnel without an
 * outbound SA (the data plane then asks for one). Under the lock. */
static void elect(struct qkd_sa_mgr *m, size_t t)
{
	size_t best = SIZE_MAX;

	for (size_t i = t * QKD_SA_MGR_INBOUND_MAX; i < (t + 1) * QKD_SA_MGR_INBOUND_MAX; i++) {
		const struct sa_pair *p = &m->pairs[i];

		if (p->in != NULL && !p->dying && (best == SIZE_MAX || p->order > m->pairs[best].order))
			best = i;
	}
	m->active[t] = SIZE_MAX;
	if (best != SIZE_MAX)
		activate(m, best);
}

/* Mark slot i dying, hand the tunnel's traffic on, wait for its checkins,
 * free it. Called with the lock held; returns with it held. */
static void remove_slot(struct qkd_sa_mgr *m, size_t i)
{
	struct sa_pair *p = &m->pairs[i];
	size_t t = TUNNEL_OF(i);

	p->dying = true;
	if (m->active[t] == i)
		elect(m, t);
	while (p->busy_in || p->busy_out)
		pthread_cond_wait(&m->cv, &m->mu);
	qkd_esp_sa_free(p->in);
	qkd_esp_sa_free(p->out);
	*p = (struct sa_pair){ 0 };
	pthread_cond_broadcast(&m->cv);
}

int qkd_sa_mgr_remove(struct qkd_sa_mgr *m, uint32_t spi_in)
{
	size_t i;
	int rc = QKD_ERR_NOKEY;

	if (m == NULL)
		return QKD_ERR_INVAL;
	pthread_mutex_lock(&m->mu);
	i = find_in(m, spi_in);
	if (i != SIZE_MAX) {
		remove_slot(m, i);
		rc = QKD_OK;
	}
	pthread_mutex_unlock(&m->mu);
	return rc;
}

void qkd_sa_mgr_flush(struct qkd_sa_mgr *m, size_t t)
{
	if (m == NULL || t >= m->ntunnels)
		return;
	pthread_mutex_lock(&m->mu);
	for (size_t i = t * QKD_SA_MGR_INBOUND_MAX; i < (t + 1) * QKD_SA_MGR_INBOUND_MAX; i++)
		if (m->pairs[i].in != NULL && !m->pairs[i].dying)
			remove_slot(m, i);
	pthread_mutex_unlock(&m->mu);
}

/* Wait until *busy is clear or the pair starts dying; true if it may be
 * checked out. Under the lock. */
static bool wait_idle(struct qkd_sa_mgr *m, const struct sa_pair *p, const bool *busy)
{
	while (*busy && !p->dying)
		pthread_cond_wait(&m->cv, &m->mu);
	return !p->dying;
}

struct qkd_esp_sa *qkd_sa_mgr_checkout_in(struct qkd_sa_mgr *m, uint32_t spi, size_t *t)
{
	struct qkd_esp_sa *sa = NULL;
	struct sa_pair *p;
	size_t i;

	pthread_mutex_lock(&m->mu);
	i = find_in(m, spi);
	if (i == SIZE_MAX)
		goto out;
	p = &m->pairs[i];
	if (!wait_idle(m, p, &p->busy_in))
		goto out;
	/* The peer sends on the new pair: it has installed it, so this end
	 * may move its own traffic over (RFC 7296 s2.8, responder side). */
	if (p->pending)
		activate(m, i);
	p->busy_in = true;
	sa = p->in;
	if (t != NULL)
		*t = TUNNEL_OF(i);
out:
	pthread_mutex_unlock(&m->mu);
	return sa;
}

struct qkd_esp_sa *qkd_sa_mgr_checkout_out(struct qkd_sa_mgr *m, size_t t)
{
	struct qkd_esp_sa *sa = NULL;
	struct sa_pair *p;

	if (t >= m->ntunnels)
		return NULL;
	pthread_mutex_lock(&m->mu);
	/* The active pair may change while we wait: look again each time. */
	while (m->active[t] != SIZE_MAX) {
		p = &m->pairs[m->active[t]];
		if (!p->busy_out) {
			p->busy_out = true;
			sa = p->out;
			break;
		}
		pthread_cond_wait(&m->cv, &m->mu);
	}
	pthread_mutex_unlock(&m->mu);
	return sa;
}

void qkd_sa_mgr_checkin(struct qkd_sa_mgr *m, struct qkd_esp_sa *sa)
{
	if (m == NULL || sa == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < NSLOTS(m); i++) {
		struct sa_pair *p = &m->pairs[i];

		if (p->in == sa)
			p->busy_in = false;
		else if (p->out == sa)
			p->busy_out = false;
		else
			continue;
		pthread_cond_broadcast(&m->cv);
		break;
	}
	pthread_mutex_unlock(&m->mu);
}

/* Fill one info from an idle SA. Under the lock. */
static void info_of(const struct qkd_esp_sa *sa, size_t t, bool active, uint64_t now,
		    struct qkd_sa_info *o)
{
	o->tunnel = t;
	o->dir = sa->dir;
	o->spi = sa->spi;
	o->active = active;
	o->bytes = qkd_esp_sa_bytes(sa);
	o->packets = qkd_esp_sa_packets(sa);
	o->state = qkd_esp_sa_state(sa, now);
}

/* The live slot of the lowest order above `after` (SIZE_MAX: none), among
 * tunnel t's (every tunnel's when t == SIZE_MAX). Under the lock. */
static size_t next_in_order(const struct qkd_sa_mgr *m, size_t t, uint64_t after, bool first)
{
	size_t best = SIZE_MAX;

	for (size_t i = 0; i < NSLOTS(m); i++) {
		const struct sa_pair *p = &m->pairs[i];

		if (p->in == NULL || p->dying || (t != SIZE_MAX && TUNNEL_OF(i) != t))
			continue;
		if (!first && p->order <= after)
			continue;
		if (best == SIZE_MAX || p->order < m->pairs[best].order)
			best = i;
	}
	return best;
}

size_t qkd_sa_mgr_list(struct qkd_sa_mgr *m, size_t t, uint64_t now, struct qkd_sa_info *out,
		       size_t cap)
{
	size_t n = 0, i;
	uint64_t after = 0;
	bool first = true;

	pthread_mutex_lock(&m->mu);
	while ((i = next_in_order(m, t, after, first)) != SIZE_MAX) {
		struct sa_pair *p = &m->pairs[i];

		first = false;
		after = p->order;
		/* The counters move only while an SA is checked out: read them
		 * after its checkin, never under its user's feet. */
		while ((p->busy_in || p->busy_out) && !p->dying)
			pthread_cond_wait(&m->cv, &m->mu);
		if (p->in == NULL || p->dying || p->order != after)
			continue;	/* removed (and maybe reused) while we waited */
		if (n < cap)
			info_of(p->in, TUNNEL_OF(i), false, now, &out[n]);
		if (n + 1 < cap)
			info_of(p->out, TUNNEL_OF(i), m->active[TUNNEL_OF(i)] == i, now, &out[n + 1]);
		n += 2;
	}
	pthread_mutex_unlock(&m->mu);
	return n;
}
