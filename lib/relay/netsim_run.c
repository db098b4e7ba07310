/* netsim_run.c - the simulator's events, run in time order
 * (qkd/netsim.h, netsim_int.h): messages reach the far agent unless the
 * link was cut meanwhile, links come up after their latency, the tick
 * grows the pools and runs the agents' timers, the report tells each
 * agent its links' key, faults cut or alarm a link, and requests start
 * relays at exponentially distributed intervals. */
#include <math.h>
#include <stdlib.h>

#include "qkd/error.h"
#include "netsim_int.h"

static int ns_push(struct qkd_netsim *s, double t, enum ns_kind kind, uint32_t link)
{
	struct ns_event ev = {0};

	if (t > s->c.duration_s)
		return QKD_OK;
	ev.t = t;
	ev.kind = (uint8_t)kind;
	ev.link = link;
	return ns_heap_push(&s->heap, &ev);
}

static void ns_report_end(struct qkd_netsim *s, const struct ns_link *l, size_t end)
{
	size_t far = end == l->a ? l->b : l->a;
	unsigned half = end == l->a ? 0 : 1;
	uint64_t avail = ns_link_available(l, half);
	uint64_t stored = ns_link_available(l, 0) + ns_link_available(l, 1);

	(void)qkd_relay_link_report(s->nodes[end].r, s->t->nodes[far].id, l->alarmed,
				    l->alarmed ? QKD_NETSIM_ALARM_QBER : l->qber, stored, avail,
				    l->alarmed ? 0 : (uint64_t)l->rate_bps);
}

static void ns_report_link(struct qkd_netsim *s, const struct ns_link *l)
{
	if (!l->up)
		return;
	ns_report_end(s, l, l->a);
	ns_report_end(s, l, l->b);
}

static void ns_link_state(struct qkd_netsim *s, struct ns_link *l, bool up)
{
	l->up = up;
	(void)qkd_relay_link_up(s->nodes[l->a].r, s->t->nodes[l->b].id, up);
	(void)qkd_relay_link_up(s->nodes[l->b].r, s->t->nodes[l->a].id, up);
	if (up)
		ns_report_link(s, l);
}

static void ns_message(struct qkd_netsim *s, struct ns_event *ev)
{
	const struct ns_link *l = &s->links[ev->link];
	size_t from = ev->node == l->a ? l->b : l->a;
	const char *why = NULL;

	if (!l->up || l->epoch != ev->epoch) {
		s->res.messages_lost++;
		return;
	}
	if (qkd_relay_receive(s->nodes[ev->node].r, s->t->nodes[from].id, ev->type, ev->body,
			      ev->len, &why) != QKD_OK) {
		s->res.proto_errors++;
		qkd_logf(s->c.log, QKD_LOG_ERROR, "netsim: %s refused a message from %s: %s",
			 s->t->nodes[ev->node].id, s->t->nodes[from].id, why ? why : "?");
	}
	if (s->flooding)
		ns_after_message(s, ev->node);
}

static int ns_tick(struct qkd_netsim *s)
{
	for (size_t i = 0; i < s->t->n_links; i++) {
		struct ns_link *l = &s->links[i];

		if (l->up && !l->alarmed)
			l->made += l->rate_bps * QKD_NETSIM_TICK_S / 2;
	}
	for (size_t i = 0; i < s->t->n_nodes; i++)
		qkd_relay_tick(s->nodes[i].r);
	return ns_after_tick(s);
}

static int ns_fault(struct qkd_netsim *s, size_t f)
{
	struct ns_link *l = &s->links[s->c.faults[f].link];

	if (s->c.faults[f].alarm) {
		l->alarmed = true;
		ns_report_link(s, l);
	} else {
		l->cut = true;
		l->epoch++;
		if (l->up)
			ns_link_state(s, l, false);
	}
	return ns_watch(s, f);
}

static int ns_event(struct qkd_netsim *s, struct ns_event *ev)
{
	int rc = QKD_OK;

	switch (ev->kind) {
	case NS_MSG:
		ns_message(s, ev);
		break;
	case NS_LINK_UP:
		if (!s->links[ev->link].cut)
			ns_link_state(s, &s->links[ev->link], true);
		break;
	case NS_TICK:
		rc = ns_tick(s);
		if (rc == QKD_OK)
			rc = ns_push(s, s->now + QKD_NETSIM_TICK_S, NS_TICK, 0);
		break;
	case NS_REPORT:
		for (size_t i = 0; i < s->t->n_links; i++)
			ns_report_link(s, &s->links[i]);
		if (s->c.progress != NULL)
			s->c.progress(s->c.progress_ctx, s->now / s->c.duration_s);
		rc = ns_push(s, s->now + QKD_NETSIM_REPORT_S, NS_REPORT, 0);
		break;
	case NS_FAULT:
		rc = ns_fault(s, ev->link);
		break;
	default:
		rc = ns_request(s);
		if (rc == QKD_OK)
			rc = ns_push(s, s->now - log1p(-qkd_rng_double(&s->rng)) /
					s->c.requests_per_s, NS_REQUEST, 0);
		break;
	}
	return rc;
}

int qkd_netsim_run_until(struct qkd_netsim *s, double t)
{
	struct ns_event ev;
	int rc = QKD_OK;

	if (t > s->c.duration_s)
		t = s->c.duration_s;
	while (rc == QKD_OK && ns_heap_top(&s->heap) != NULL && ns_heap_top(&s->heap)->t <= t) {
		ns_heap_pop(&s->heap, &ev);
		s->now = ev.t;
		rc = ns_event(s, &ev);
		free(ev.body);
	}
	if (t > s->now)
		s->now = t;
	return rc;
}

double qkd_netsim_now(const struct qkd_netsim *s)
{
	return s->now;
}

const struct qkd_relay *qkd_netsim_agent(const struct qkd_netsim *s, size_t node)
{
	return node < s->t->n_nodes ? s->nodes[node].r : NULL;
}
