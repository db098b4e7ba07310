/* relay.c - a relay node's agent: its links, its own LSA, flooding, the
 * database and routes (qkd/relay.h; docs/relay.md "The agent"). Key relay
 * itself is relay_key.c.
 *
 * Flooding follows link-state routing as OSPF does it: an LSA newer than
 * the held one of its origin is installed and sent on every other link
 * that is up; an older or equal one stops there. A link that comes up gets
 * the whole database, so a node that restarts or a link that heals learns
 * the network in one exchange. An LSA of our own origin with a higher
 * sequence (a previous run's, still circulating) makes us jump past it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/secret.h"
#include "relay_int.h"

void qkd_relay_config_default(struct qkd_relay_config *c)
{
	memset(c, 0, sizeof *c);
	qkd_route_params_default(&c->route);
	c->seq_start = 1;
	c->lsa_interval_s = 1.0;
	c->lsa_refresh_s = 30.0;
	c->key_change = 0.25;
	c->relay_timeout_s = 5.0;
	c->attempts = 3;
	c->relays_max = 1024;
}

double relay_now(const struct qkd_relay *r)
{
	return r->cfg.ops->now(r->cfg.ctx);
}

struct relay_nb *relay_nb_find(struct qkd_relay *r, const char *id)
{
	for (size_t i = 0; i < r->n_nb; i++)
		if (strcmp(r->nb[i].id, id) == 0)
			return &r->nb[i];
	return NULL;
}

bool relay_sae_local(const struct qkd_relay *r, const char *sae)
{
	for (size_t i = 0; i < r->n_saes; i++)
		if (strcmp(r->saes[i], sae) == 0)
			return true;
	return false;
}

/* This node's LSA as the links stand now, sequence seq. */
static void relay_make_lsa(const struct qkd_relay *r, uint64_t seq, struct qkd_lsa *lsa)
{
	memset(lsa, 0, sizeof *lsa);
	strcpy(lsa->origin, r->self);
	lsa->seq = seq;
	lsa->n_links = r->n_nb;
	for (size_t i = 0; i < r->n_nb; i++) {
		const struct relay_nb *nb = &r->nb[i];
		struct qkd_lsa_link *l = &lsa->links[i];

		strcpy(l->neighbour, nb->id);
		l->state = !nb->up ? QKD_LSA_DOWN : nb->alarmed ? QKD_LSA_ALARMED : QKD_LSA_UP;
		l->qber = nb->qber;
		l->stored_bits = nb->stored;
		l->available_bits = nb->available < nb->stored ? nb->available : nb->stored;
		l->rate_bps = nb->rate;
	}
	lsa->n_saes = r->n_saes;
	for (size_t i = 0; i < r->n_saes; i++)
		strcpy(lsa->saes[i], r->saes[i]);
}

bool relay_send_out(struct qkd_relay *r, const char *neighbour, uint8_t type)
{
	int rc = r->out.err != 0 ? r->out.err
				 : r->cfg.ops->send(r->cfg.ctx, neighbour, type, r->out.p, r->out.len);

	if (rc != QKD_OK)
		qkd_logf(r->cfg.log, QKD_LOG_DEBUG, "relay: message %u to %s not sent: %s", type,
			 neighbour, qkd_strerror(rc));
	return rc == QKD_OK;
}

/* Send lsa to every link that is up except to `except` (NULL: all). */
static void relay_flood(struct qkd_relay *r, const struct qkd_lsa *lsa, const char *except)
{
	qkd_wbuf_reset(&r->out);
	if (qkd_lsa_encode(lsa, &r->out) != QKD_OK)
		return;
	for (size_t i = 0; i < r->n_nb; i++)
		if (r->nb[i].up && (except == NULL || strcmp(r->nb[i].id, except) != 0))
			(void)relay_send_out(r, r->nb[i].id, QKD_RELAY_MSG_LSA);
}

/* A new own LSA: installed, flooded everywhere. */
static void relay_originate(struct qkd_relay *r)
{
	struct qkd_lsa lsa;
	const char *why;

	relay_make_lsa(r, ++r->seq, &lsa);
	if (qkd_lsdb_install(r->db, &lsa, &why) != QKD_OK) {
		qkd_logf(r->cfg.log, QKD_LOG_ERROR, "relay: own LSA %llu not installed: %s",
			 (unsigned long long)r->seq, why);
		return;
	}
	for (size_t i = 0; i < r->n_nb; i++)
		r->nb[i].adv_available = r->nb[i].available;
	r->last_lsa = relay_now(r);
	r->lsa_due = false;
	r->st.lsa_originated++;
	relay_flood(r, &lsa, NULL);
}

static int relay_config_check(const struct qkd_relay_config *c, struct qkd_relay *r,
			      const char **why)
{
	struct qkd_lsa lsa;

	*why = "no ops, or a parameter out of range";
	if (c->ops == NULL || c->ops->send == NULL || c->ops->pad_take == NULL ||
	    c->ops->pad_use == NULL || c->ops->deliver == NULL || c->ops->done == NULL ||
	    c->ops->now == NULL || c->self == NULL || !(c->lsa_interval_s >= 0) ||
	    !(c->lsa_refresh_s > 0) || !(c->key_change > 0) || !(c->relay_timeout_s > 0) ||
	    c->attempts < 1 || c->attempts > 255 || c->relays_max < 1 ||
	    c->relays_max > 65536 || c->seq_start < 1 || !(c->route.k_bits > 0))
		return QKD_ERR_INVAL;
	*why = "too many links or SAEs";
	if (c->n_neighbours > QKD_LSA_LINKS_MAX || c->n_saes > QKD_LSA_SAES_MAX)
		return QKD_ERR_INVAL;
	*why = "a node or SAE id is too long";
	if (strlen(c->self) >= sizeof r->self)
		return QKD_ERR_INVAL;
	for (size_t i = 0; i < c->n_neighbours; i++)
		if (strlen(c->neighbours[i]) >= sizeof r->nb[i].id)
			return QKD_ERR_INVAL;
	for (size_t i = 0; i < c->n_saes; i++)
		if (strlen(c->saes[i]) >= sizeof r->saes[i])
			return QKD_ERR_INVAL;
	strcpy(r->self, c->self);
	r->n_nb = c->n_neighbours;
	for (size_t i = 0; i < c->n_neighbours; i++)
		strcpy(r->nb[i].id, c->neighbours[i]);
	r->n_saes = c->n_saes;
	for (size_t i = 0; i < c->n_saes; i++)
		strcpy(r->saes[i], c->saes[i]);
	/* The LSA's own check covers ids, repeats and self as a neighbour. */
	relay_make_lsa(r, 1, &lsa);
	return qkd_lsa_check(&lsa, why);
}

int qkd_relay_new(const struct qkd_relay_config *c, struct qkd_relay **out)
{
	struct qkd_relay *r = calloc(1, sizeof *r);
	const char *why = "out of memory";
	int rc = QKD_ERR_NOMEM;

	*out = NULL;
	if (r == NULL)
		goto out;
	qkd_wbuf_init(&r->out);
	rc = relay_config_check(c, r, &why);
	if (rc != QKD_OK)
		goto out;
	r->cfg = *c;
	r->cfg.self = NULL;
	r->cfg.neighbours = NULL;
	r->cfg.saes = NULL;
	r->seq = c->seq_start - 1;
	r->last_lsa = -INFINITY;
	why = "out of memory";
	rc = QKD_ERR_NOMEM;
	r->src = calloc(c->relays_max, sizeof *r->src);
	r->dst = calloc(c->relays_max, sizeof *r->dst);
	r->msg = qkd_alloc_scratch(sizeof *r->msg);
	if (r->src == NULL || r->dst == NULL || r->msg == NULL)
		goto out;
	rc = qkd_lsdb_new(QKD_LSDB_NODES_MAX, &r->db);
	if (rc == QKD_OK)
		rc = qkd_routes_new(r->self, &c->route, &r->routes);
	if (rc == QKD_OK)
		rc = qkd_rng_init_system(&r->rng);
	why = "cannot set up the database, routes or random generator";
	if (rc != QKD_OK)
		goto out;
	*out = r;
	r = NULL;
out:
	if (rc != QKD_OK)
		qkd_logf(c->log, QKD_LOG_ERROR, "relay: cannot start the agent: %s", why);
	qkd_relay_free(r);
	return rc;
}

void qkd_relay_free(struct qkd_relay *r)
{
	if (r == NULL)
		return;
	if (r->src != NULL && r->dst != NULL)
		relay_key_free_all(r);
	free(r->src);
	free(r->dst);
	if (r->msg != NULL)
		qkd_free_scratch(r->msg, sizeof *r->msg);
	qkd_lsdb_free(r->db);
	qkd_routes_free(r->routes);
	qkd_rng_cleanup(&r->rng);
	qkd_wbuf_cleanup(&r->out);
	free(r);
}

int qkd_relay_link_up(struct qkd_relay *r, const char *neighbour, bool up)
{
	struct relay_nb *nb = relay_nb_find(r, neighbour);

	if (nb == NULL)
		return QKD_ERR_INVAL;
	if (nb->up == up)
		return QKD_OK;
	nb->up = up;
	qkd_logf(r->cfg.log, QKD_LOG_INFO, "relay: link to %s %s", neighbour,
		 up ? "up" : "down");
	relay_originate(r);
	if (up) {
		/* The new neighbour learns the whole network at once. */
		for (size_t i = 0; i < qkd_lsdb_count(r->db); i++) {
			const struct qkd_lsa *lsa = qkd_lsdb_at(r->db, i);

			if (strcmp(lsa->origin, r->self) == 0)
				continue;
			qkd_wbuf_reset(&r->out);
			if (qkd_lsa_encode(lsa, &r->out) == QKD_OK &&
			    !relay_send_out(r, neighbour, QKD_RELAY_MSG_LSA))
				break;
		}
	} else {
		relay_key_link_down(r, neighbour);
	}
	return QKD_OK;
}

/* Whether the available key moved enough since the last LSA to tell the
 * network: by key_change of what was advertised, or across the threshold
 * under which a link counts as out of key. */
static bool relay_key_moved(const struct qkd_relay *r, const struct relay_nb *nb)
{
	uint64_t was = nb->adv_available, is = nb->available, min = r->cfg.route.min_available_bits;
	double d = fabs((double)is - (double)was);

	if ((was < min) != (is < min))
		return true;
	return d > r->cfg.key_change * (double)(was > 0 ? was : 1);
}

int qkd_relay_link_report(struct qkd_relay *r, const char *neighbour, bool alarmed,
			  double qber, uint64_t stored_bits, uint64_t available_bits,
			  uint64_t rate_bps)
{
	struct relay_nb *nb = relay_nb_find(r, neighbour);
	bool state_changed;

	if (nb == NULL || !(qber >= 0.0 && qber <= 1.0))
		return QKD_ERR_INVAL;
	state_changed = nb->alarmed != alarmed;
	if (state_changed)
		qkd_logf(r->cfg.log, alarmed ? QKD_LOG_WARN : QKD_LOG_INFO,
			 "relay: link to %s %s (QBER %.4f)", neighbour,
			 alarmed ? "alarmed: no key is relayed over it" : "no longer alarmed", qber);
	nb->alarmed = alarmed;
	nb->qber = qber;
	nb->stored = stored_bits;
	nb->available = available_bits < stored_bits ? available_bits : stored_bits;
	nb->rate = rate_bps;
	if (state_changed)
		relay_originate(r);
	else if (relay_key_moved(r, nb))
		r->lsa_due = true;
	return QKD_OK;
}

/* An LSA from a neighbour: install and flood on, or say why not. */
static void relay_lsa_receive(struct qkd_relay *r, const char *from, const struct qkd_lsa *lsa)
{
	const struct qkd_lsa *held;
	const char *why;

	if (strcmp(lsa->origin, r->self) == 0) {
		r->st.lsa_refused++;
		if (lsa->seq > r->seq) {
			/* A previous run's LSA (or a forged one) outranks ours: jump past it. */
			qkd_logf(r->cfg.log, QKD_LOG_WARN,
				 "relay: LSA of our own id with sequence %llu from %s, above ours: "
				 "re-originating", (unsigned long long)lsa->seq, from);
			r->seq = lsa->seq;
			relay_originate(r);
		}
		return;
	}
	if (qkd_lsdb_install(r->db, lsa, &why) == QKD_OK) {
		r->st.lsa_received++;
		relay_flood(r, lsa, from);
		return;
	}
	r->st.lsa_refused++;
	held = qkd_lsdb_get(r->db, lsa->origin);
	if (held != NULL && held->seq == lsa->seq) {	/* the same LSA by another path: normal */
		qkd_logf(r->cfg.log, QKD_LOG_DEBUG, "relay: LSA of %s seq %llu from %s: duplicate",
			 lsa->origin, (unsigned long long)lsa->seq, from);
	} else if (held != NULL && held->seq > lsa->seq) {
		/* Older than ours: a flood that crossed a newer one, or a replay.
		 * The sender is behind, so it gets the newer one (as OSPF does). */
		qkd_logf(r->cfg.log, QKD_LOG_INFO,
			 "relay: LSA of %s seq %llu from %s refused: older than the held seq %llu; "
			 "sent it the newer", lsa->origin, (unsigned long long)lsa->seq, from,
			 (unsigned long long)held->seq);
		qkd_wbuf_reset(&r->out);
		if (qkd_lsa_encode(held, &r->out) == QKD_OK)
			(void)relay_send_out(r, from, QKD_RELAY_MSG_LSA);
	} else {
		qkd_logf(r->cfg.log, QKD_LOG_WARN, "relay: LSA of %s seq %llu from %s refused: %s",
			 lsa->origin, (unsigned long long)lsa->seq, from, why);
	}
}

int qkd_relay_receive(struct qkd_relay *r, const char *neighbour, uint8_t type,
		      const uint8_t *body, size_t len, const char **why)
{
	struct qkd_lsa *lsa;
	int rc;

	*why = NULL;
	if (relay_nb_find(r, neighbour) == NULL) {
		*why = "relay message from a node that is not a neighbour";
		return QKD_ERR_INVAL;
	}
	if (type != QKD_RELAY_MSG_LSA)
		return relay_key_receive(r, neighbour, type, body, len, why);
	lsa = malloc(sizeof *lsa);
	if (lsa == NULL)
		return QKD_ERR_NOMEM;
	rc = qkd_lsa_decode(lsa, body, len, why);
	if (rc == QKD_OK)
		relay_lsa_receive(r, neighbour, lsa);
	else
		qkd_logf(r->cfg.log, QKD_LOG_WARN, "relay: malformed LSA from %s: %s", neighbour,
			 *why);
	free(lsa);
	return rc;
}

void relay_routes_refresh(struct qkd_relay *r)
{
	size_t changed = 0;

	if (qkd_lsdb_version(r->db) == r->routes_version)
		return;
	if (qkd_routes_compute(r->routes, r->db, &changed) != QKD_OK) {
		qkd_logf(r->cfg.log, QKD_LOG_ERROR, "relay: routes not recomputed (out of memory)");
		return;
	}
	r->routes_version = qkd_lsdb_version(r->db);
	if (changed > 0)
		qkd_logf(r->cfg.log, QKD_LOG_INFO, "relay: routes recomputed: %zu changed, %zu held",
			 changed, qkd_routes_count(r->routes));
	r->st.route_changes += changed;
}

void qkd_relay_tick(struct qkd_relay *r)
{
	double now = relay_now(r);

	if ((r->lsa_due && now - r->last_lsa >= r->cfg.lsa_interval_s) ||
	    now - r->last_lsa >= r->cfg.lsa_refresh_s)
		relay_originate(r);
	relay_routes_refresh(r);
	relay_key_tick(r);
}

const char *qkd_relay_sae_node(const struct qkd_relay *r, const char *sae)
{
	const char *node = NULL;

	if (relay_sae_local(r, sae))
		return r->self;
	return qkd_lsdb_sae_node(r->db, sae, &node) == QKD_OK ? node : NULL;
}

const struct qkd_lsdb *qkd_relay_lsdb(const struct qkd_relay *r)
{
	return r->db;
}

const struct qkd_routes *qkd_relay_routes(const struct qkd_relay *r)
{
	return r->routes;
}

size_t qkd_relay_neighbour_count(const struct qkd_relay *r)
{
	return r->n_nb;
}

void qkd_relay_neighbour_at(const struct qkd_relay *r, size_t i, struct qkd_relay_neighbour *out)
{
	const struct relay_nb *nb = &r->nb[i];

	memset(out, 0, sizeof *out);
	strcpy(out->id, nb->id);
	out->up = nb->up;
	out->alarmed = nb->alarmed;
	out->qber = nb->qber;
	out->stored_bits = nb->stored;
	out->available_bits = nb->available;
	out->rate_bps = nb->rate;
}

void qkd_relay_get_stats(const struct qkd_relay *r, struct qkd_relay_stats *out)
{
	*out = r->st;
}
