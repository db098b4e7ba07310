/* node_metrics.c - the metrics endpoint of `qkd node` (docs/metrics.md):
 * `node.metrics = "HOST:PORT"` serves GET /metrics in the Prometheus text
 * format over plain HTTP; off when the key is absent.
 *
 * libmicrohttpd with one internal thread that polls every connection: a
 * scrape takes microseconds (a copy of each link's status under its lock,
 * then qkd_metrics_render), so nothing here needs a thread per client.
 * Against a flood: at most METRICS_CONNECTIONS connections at once (more
 * wait in the backlog or are refused), each closed after METRICS_TIMEOUT_S
 * of silence, and libmicrohttpd's messages switched off so that a client
 * reconnecting in a loop cannot fill the log. The figures are plain
 * counters and gauges, nothing secret; the endpoint has no TLS, so bind it
 * to an address only the monitoring host reaches. It reads the node only
 * through qkd/node.h's accessors. Neighbours: cmd_node.c starts and stops
 * it; lib/node/metrics.c renders. */
#include "node_metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "qkd/error.h"
#include "qkd/metrics.h"
#include "qkd/netaddr.h"
#include "qkd/kme_server.h"
#include "qkd/node.h"

/* A Prometheus server or two and a person with curl. */
#define METRICS_CONNECTIONS 16
/* Silence allowed on a connection, seconds. */
#define METRICS_TIMEOUT_S 5

/* The figures of one scrape (about 24 KiB: on the heap). */
struct scrape {
	struct qkd_metrics_link links[QKD_NODE_LINKS_MAX];
	struct qkd_kme_counters kme;
	struct qkd_metrics_relay relay;
	struct qkd_metrics_route *routes;	/* relay.routes, malloc'd */
};

/* The relay's figures, copied under its lock. */
static void relay_snap(void *ctx, const struct qkd_relay *r)
{
	struct scrape *sc = ctx;
	const struct qkd_routes *rt = qkd_relay_routes(r);
	size_t n = qkd_routes_count(rt);

	qkd_relay_get_stats(r, &sc->relay.stats);
	sc->relay.nodes = qkd_lsdb_count(qkd_relay_lsdb(r));
	sc->routes = calloc(n > 0 ? n : 1, sizeof *sc->routes);
	if (sc->routes == NULL)
		n = 0;
	for (size_t i = 0; i < n; i++) {
		const struct qkd_route *x = qkd_routes_at(rt, i);

		snprintf(sc->routes[i].dest, sizeof sc->routes[i].dest, "%s", x->dest);
		snprintf(sc->routes[i].next_hop, sizeof sc->routes[i].next_hop, "%s", x->next_hop);
		sc->routes[i].cost = x->cost;
		sc->routes[i].hops = x->hops;
	}
	sc->relay.routes = sc->routes;
	sc->relay.nroutes = n;
}

/* The text of the snapshot taken now (malloc'd), or NULL. */
static char *scrape_text(struct node_daemon *d, size_t *len)
{
	struct scrape *sc = calloc(1, sizeof *sc);
	struct qkd_metrics_snapshot snap = { .node = d->cfg.name };
	size_t n = qkd_node_nlinks(d->node), k = 0;
	char *text = NULL;

	if (sc == NULL)
		return NULL;
	for (size_t i = 0; i < n && k < QKD_NODE_LINKS_MAX; i++) {
		const struct qkd_link_config *c = qkd_node_link_config(d->node, i);

		if (c == NULL || qkd_node_link_status(d->node, i, &sc->links[k].status) != QKD_OK)
			continue;
		sc->links[k].name = c->name;
		sc->links[k].role = c->role;
		k++;
	}
	snap.links = sc->links;
	snap.nlinks = k;
	if (qkd_node_kme_counters_get(d->node, &sc->kme))
		snap.kme = &sc->kme;
	if (qkd_node_relay_view(d->node, relay_snap, sc))
		snap.relay = &sc->relay;
	if (qkd_metrics_render(&snap, &text, len) != 0)
		text = NULL;
	free(sc->routes);
	free(sc);
	return text;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
			     char *body, size_t len, bool allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret = MHD_NO;

	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_YES &&
	    (!allow || MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET") == MHD_YES))
		ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *msg,
				  bool allow)
{
	char *body = strdup(msg);

	if (body == NULL)
		return MHD_NO;
	return reply(c, status, "text/plain; charset=utf-8", body, strlen(body), allow);
}

/* GET /metrics; 404 for any other path, 405 for any other method on it.
 * Answered on the first call, with the headers: a body, if any, is not
 * wanted, and libmicrohttpd closes the connection after such a reply. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **req_cls)
{
	struct node_daemon *d = cls;
	size_t len = 0;
	char *text;

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)req_cls;
	if (strcmp(url, "/metrics") != 0)
		return reply_text(c, 404, "not found: the metrics are at /metrics\n", false);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return reply_text(c, 405, "method not allowed: GET /metrics\n", true);
	if ((text = scrape_text(d, &len)) == NULL)
		return reply_text(c, 503, "out of memory\n", false);
	return reply(c, 200, QKD_METRICS_CONTENT_TYPE, text, len, false);
}

/* Bound by us rather than by libmicrohttpd: errno then says why a bind
 * failed, and the socket is IPv6-only for an IPv6 address as every other
 * listener of the node (qkd_netaddr_listen). */
static int start_daemon(struct node_daemon *d, int fd)
{
	d->metrics = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL,
				      on_request, d,
				      MHD_OPTION_LISTEN_SOCKET, fd,
				      MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_CONNECTIONS,
				      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_TIMEOUT_S,
				      MHD_OPTION_END);
	return d->metrics != NULL ? 0 : -1;
}

int node_metrics_start(struct node_daemon *d, const char *config)
{
	const struct qkd_node_addr *a = &d->cfg.metrics;
	int fd = -1;

	if (a->sa.len == 0)
		return 0;
	if (qkd_netaddr_listen(&a->sa, SOCK_CLOEXEC | SOCK_NONBLOCK, METRICS_CONNECTIONS, &fd) != 0) {
		fprintf(stderr, "qkd: %s:%u: node.metrics: %s: %s\n", config, d->cfg.metrics_line,
			a->text, strerror(errno));
		return -1;
	}
	if (start_daemon(d, fd) != 0) {
		close(fd);
		fprintf(stderr, "qkd: %s:%u: node.metrics: %s: cannot start the HTTP server\n",
			config, d->cfg.metrics_line, a->text);
		return -1;
	}
	qkd_logf(&d->log, QKD_LOG_INFO, "node %s: metrics on http://%s/metrics", d->cfg.name,
		 a->text);
	return 0;
}

void node_metrics_stop(struct node_daemon *d)
{
	if (d->metrics == NULL)
		return;
	MHD_stop_daemon(d->metrics);
	d->metrics = NULL;
}
