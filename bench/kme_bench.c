/* kme_bench - ETSI GS QKD 014 round trips per second over mutual TLS with
 * keep-alive, against tests/tools/kme_fake or the key managers of two
 * `qkd node` daemons (docs/kme.md, "Performance").
 *
 * One round trip: the master SAE (SAE_A) asks GET enc_keys (number keys of
 * size bits), then the slave SAE (SAE_B) asks dec_keys for the same key_IDs
 * (GET with one key, POST with several) and the bytes are compared. Each
 * client thread holds two TLS connections (one per SAE) for the whole run,
 * so handshakes are not counted. The client is written with GnuTLS
 * directly, as small as HTTP/1.1 with Content-Length allows, so that the
 * figures are the server's; the library's client (qkd/kme_client.h, on
 * libcurl) came later.
 *
 *   kme_bench --pki DIR (--port P [--dec-port P2] | --server PATH_TO_KME_FAKE)
 *             [--seconds S] [--requests R] [--clients N] [--number K]
 *             [--size BITS] [--master ID] [--slave ID]
 *
 * DIR is the PKI of examples/make-test-pki.sh (ca.pem, MASTER.*, SLAVE.*).
 * --server starts kme_fake on a free loopback port and stops it after.
 * --dec-port sends dec_keys to a second KME on 127.0.0.1 (the slave's node
 * of a pair of `qkd node` daemons, bench/kme.sh); by default both requests
 * go to the same server. Prints "N round trips in T s: R round trips/s
 * ...", then the mean and max latency of enc_keys and of dec_keys and
 * their 50th and 99th percentiles (nearest rank over every answered
 * request). --requests stops each client after R round trips, or at S
 * seconds, whichever comes first (issue 12 asks for percentiles over at
 * least 200 requests).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <jansson.h>
#include <sodium.h>

#include "qkd/etsi014.h"

#define BUF_MAX (1 << 20)
#define CLIENTS_MAX 64
/* Latencies kept per client and call for the percentiles. */
#define SAMPLES_MAX 100000u
#define PATH_MAX_LEN 512
#define RECV_TIMEOUT_MS 30000

struct opts {
	const char *pki, *server;
	const char *master, *slave;	/* SAE IDs: enc_keys as master, dec_keys as slave */
	unsigned long port, dec_port, clients, number, size, requests;
	double seconds;
};

struct conn {
	int opened;		/* conn_open ran: the rest is valid */
	int fd;
	gnutls_session_t s;
	char *buf;		/* response bytes; may hold key: wiped */
	size_t have;
};

struct client {
	const struct opts *o;
	gnutls_certificate_credentials_t cred[2];	/* master, slave */
	struct conn c[2];				/* enc_keys, dec_keys */
	unsigned long done;
	double latency_sum;
	unsigned long req_n[2];				/* answered: enc_keys, dec_keys */
	double req_sum[2], req_max[2];
	double *samples[2];				/* the first SAMPLES_MAX latencies */
	const char *err;
	char errbuf[256];
	pthread_t th;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- TLS connections ---- */

static int load_cred(const struct opts *o, const char *sae, gnutls_certificate_credentials_t *cr)
{
	char ca[PATH_MAX_LEN], cert[PATH_MAX_LEN], key[PATH_MAX_LEN];

	snprintf(ca, sizeof ca, "%s/ca.pem", o->pki);
	snprintf(cert, sizeof cert, "%s/%s.pem", o->pki, sae);
	snprintf(key, sizeof key, "%s/%s.key", o->pki, sae);
	if (gnutls_certificate_allocate_credentials(cr) < 0)
		return -1;
	if (gnutls_certificate_set_x509_trust_file(*cr, ca, GNUTLS_X509_FMT_PEM) <= 0 ||
	    gnutls_certificate_set_x509_key_file(*cr, cert, key, GNUTLS_X509_FMT_PEM) < 0)
		return -1;
	return 0;
}

static int conn_open(struct conn *c, unsigned port, gnutls_certificate_credentials_t cr)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, rc;

	c->opened = 1;
	c->fd = -1;
	if ((c->buf = malloc(BUF_MAX)) == NULL)
		return -1;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (gnutls_init(&c->s, GNUTLS_CLIENT) < 0)
		return -1;
	if (gnutls_set_default_priority(c->s) < 0 ||
	    gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, cr) < 0 ||
	    gnutls_server_name_set(c->s, GNUTLS_NAME_DNS, "localhost", 9) < 0)
		return -1;
	gnutls_session_set_verify_cert(c->s, "localhost", 0);
	gnutls_transport_set_int(c->s, c->fd);
	gnutls_handshake_set_timeout(c->s, 10000);
	/* A KME that stops answering ends the run instead of hanging it. */
	gnutls_record_set_timeout(c->s, RECV_TIMEOUT_MS);
	do
		rc = gnutls_handshake(c->s);
	while (rc < 0 && !gnutls_error_is_fatal(rc));
	return rc < 0 ? -1 : 0;
}

static void conn_close(struct conn *c)
{
	if (!c->opened)
		return;
	if (c->s != NULL) {
		gnutls_bye(c->s, GNUTLS_SHUT_WR);
		gnutls_deinit(c->s);
	}
	if (c->fd >= 0)
		close(c->fd);
	if (c->buf != NULL)
		sodium_memzero(c->buf, BUF_MAX);
	free(c->buf);
	memset(c, 0, sizeof *c);
}

static int send_all(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = gnutls_record_send(c->s, p, n);

		if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read one HTTP response; *body points into c->buf (NUL-terminated). */
static int read_response(struct conn *c, int *status, char **body)
{
	char *hdr_end = NULL, *cl;
	size_t need = 0;

	c->have = 0;
	for (;;) {
		ssize_t r;

		if (hdr_end == NULL && (hdr_end = memmem(c->buf, c->have, "\r\n\r\n", 4)) != NULL) {
			*hdr_end = '\0';
			cl = strcasestr(c->buf, "\r\nContent-Length:");
			if (cl == NULL || sscanf(c->buf, "HTTP/1.1 %d", status) != 1)
				return -1;
			need = (size_t)(hdr_end + 4 - c->buf) + strtoul(cl + 17, NULL, 10);
			if (need >= BUF_MAX)
				return -1;
		}
		if (hdr_end != NULL && c->have >= need)
			break;
		r = gnutls_record_recv(c->s, c->buf + c->have, BUF_MAX - 1 - c->have);
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r <= 0)
			return -1;
		c->have += (size_t)r;
	}
	c->buf[need] = '\0';
	*body = hdr_end + 4;
	return 0;
}

/* What went wrong with a request, in cl->errbuf: the HTTP status and the
 * Error object's message (clause 6.5; never key), or a transport failure. */
static void request_error(struct client *cl, const char *what, int status, const char *body)
{
	json_t *e = body ? json_loads(body, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(e, "message"));

	if (status == 0)
		snprintf(cl->errbuf, sizeof cl->errbuf, "%s failed: no HTTP response", what);
	else
		snprintf(cl->errbuf, sizeof cl->errbuf, "%s failed: HTTP %d%s%s", what, status,
			 msg ? ": " : "", msg ? msg : "");
	json_decref(e);
	cl->err = cl->errbuf;
}

/* One request on connection i of cl (0: enc_keys, 1: dec_keys), timed into
 * cl->req_sum/req_max; the parsed JSON body (caller decrefs), or NULL with
 * cl->err set. */
static json_t *request(struct client *cl, int i, const char *method, const char *path,
		       const char *json)
{
	struct conn *c = &cl->c[i];
	char req[8192];
	char *body = NULL;
	int n, status = 0;
	json_t *root = NULL;
	double t = now();

	n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: localhost\r\n%s%s%zu\r\n\r\n%s",
		     method, path, json ? "Content-Type: application/json\r\n" : "",
		     "Content-Length: ", json ? strlen(json) : 0, json ? json : "");
	if (n < 0 || (size_t)n >= sizeof req || send_all(c, req, (size_t)n) != 0 ||
	    read_response(c, &status, &body) != 0) {
		request_error(cl, i ? "dec_keys" : "enc_keys", 0, NULL);
		return NULL;
	}
	t = now() - t;
	cl->req_n[i]++;
	cl->req_sum[i] += t;
	if (t > cl->req_max[i])
		cl->req_max[i] = t;
	if (cl->samples[i] != NULL && cl->req_n[i] <= SAMPLES_MAX)
		cl->samples[i][cl->req_n[i] - 1] = t;
	if (status == 200)
		root = json_loads(body, 0, NULL);
	if (root == NULL)
		request_error(cl, i ? "dec_keys" : "enc_keys", status, status == 200 ? NULL : body);
	sodium_memzero(c->buf, c->have);
	return root;
}

/* ---- one round trip ---- */

/* The dec_keys request for the key_IDs of an enc_keys answer. */
static int dec_request(const struct opts *o, const json_t *keys, char *path, size_t plen,
		       char **body)
{
	json_t *ids, *k;
	size_t i;

	*body = NULL;
	if (o->number == 1) {
		snprintf(path, plen, "/api/v1/keys/%s/dec_keys?key_ID=%s", o->master,
			 json_string_value(json_object_get(json_array_get(keys, 0), "key_ID")));
		return 0;
	}
	snprintf(path, plen, "/api/v1/keys/%s/dec_keys", o->master);
	if ((ids = json_array()) == NULL)
		return -1;
	json_array_foreach(keys, i, k)
		json_array_append_new(ids, json_pack("{s:O}", "key_ID", json_object_get(k, "key_ID")));
	k = json_pack("{s:o}", "key_IDs", ids);
	*body = k ? json_dumps(k, JSON_COMPACT) : NULL;
	json_decref(k);
	return *body ? 0 : -1;
}

static int round_trip(struct client *cl)
{
	const struct opts *o = cl->o;
	char path[256], *body = NULL;
	json_t *enc, *dec = NULL;
	int rc = -1;

	snprintf(path, sizeof path, "/api/v1/keys/%s/enc_keys?number=%lu&size=%lu", o->slave,
		 o->number, o->size);
	if ((enc = request(cl, 0, "GET", path, NULL)) == NULL)
		goto out;
	if (dec_request(o, json_object_get(enc, "keys"), path, sizeof path, &body) != 0) {
		cl->err = "dec_keys: cannot build the request";
		goto out;
	}
	if ((dec = request(cl, 1, body ? "POST" : "GET", path, body)) == NULL)
		goto out;
	if (!json_equal(json_object_get(enc, "keys"), json_object_get(dec, "keys")) ||
	    json_array_size(json_object_get(dec, "keys")) != o->number) {
		cl->err = "dec_keys returned other keys than enc_keys";
		goto out;
	}
	rc = 0;
out:
	free(body);
	json_decref(enc);
	json_decref(dec);
	return rc;
}

static void *client_run(void *arg)
{
	struct client *cl = arg;
	double t0 = now(), end = t0 + cl->o->seconds, t;

	while ((t = now()) < end && (cl->o->requests == 0 || cl->done < cl->o->requests)) {
		if (round_trip(cl) != 0)
			break;
		cl->latency_sum += now() - t;
		cl->done++;
	}
	return NULL;
}

/* ---- kme_fake as a child ---- */

static pid_t spawn_server(const struct opts *o, unsigned long *port)
{
	int fds[2];
	char line[128];
	FILE *f;
	pid_t pid;

	if (pipe(fds) != 0 || (pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(o->server, o->server, "--pki", o->pki, "--port", "0", "--pool-bytes",
		      "268435456", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	if (f == NULL || fgets(line, sizeof line, f) == NULL ||
	    sscanf(line, "listening %*s %lu", port) != 1) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		pid = -1;
	}
	if (f != NULL)
		fclose(f);
	return pid;
}

/* ---- main ---- */

static int parse(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pki", required_argument, NULL, 'd' }, { "port", required_argument, NULL, 'p' },
		{ "server", required_argument, NULL, 'S' },
		{ "seconds", required_argument, NULL, 't' },
		{ "requests", required_argument, NULL, 'r' },
		{ "clients", required_argument, NULL, 'c' },
		{ "number", required_argument, NULL, 'n' }, { "size", required_argument, NULL, 's' },
		{ "dec-port", required_argument, NULL, 'P' },
		{ "master", required_argument, NULL, 'm' }, { "slave", required_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct opts){ .clients = 1, .number = 1, .size = 256, .seconds = 5,
			    .master = "SAE_A", .slave = "SAE_B" };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': o->pki = optarg; break;
		case 'S': o->server = optarg; break;
		case 'p': o->port = strtoul(optarg, NULL, 10); break;
		case 't': o->seconds = strtod(optarg, NULL); break;
		case 'r': o->requests = strtoul(optarg, NULL, 10); break;
		case 'c': o->clients = strtoul(optarg, NULL, 10); break;
		case 'n': o->number = strtoul(optarg, NULL, 10); break;
		case 's': o->size = strtoul(optarg, NULL, 10); break;
		case 'P': o->dec_port = strtoul(optarg, NULL, 10); break;
		case 'm': o->master = optarg; break;
		case 'v': o->slave = optarg; break;
		default: return -1;
		}
	}
	/* The IDs go into paths and file names: the spec's characters only. */
	if (!qkd_etsi014_id_valid(o->master) || !qkd_etsi014_id_valid(o->slave) ||
	    strcmp(o->master, o->slave) == 0 || (o->dec_port != 0 && o->server != NULL) ||
	    o->dec_port > 65535)
		return -1;
	if (optind != argc || o->pki == NULL || (o->port == 0) == (o->server == NULL) ||
	    o->port > 65535 || o->clients < 1 || o->clients > CLIENTS_MAX || o->number < 1 ||
	    o->number > 128 || o->size < 8 || o->size > 8192 || !(o->seconds > 0 && o->seconds < 3600) ||
	    o->requests > SAMPLES_MAX)
		return -1;
	return 0;
}

static int setup_client(struct client *cl, const struct opts *o)
{
	const char *const sae[2] = { o->master, o->slave };
	const unsigned long port[2] = { o->port, o->dec_port ? o->dec_port : o->port };

	cl->o = o;
	for (int i = 0; i < 2; i++)
		if ((cl->samples[i] = calloc(SAMPLES_MAX, sizeof *cl->samples[i])) == NULL) {
			fprintf(stderr, "kme_bench: out of memory\n");
			return -1;
		}
	for (int i = 0; i < 2; i++)
		if (load_cred(o, sae[i], &cl->cred[i]) != 0 ||
		    conn_open(&cl->c[i], (unsigned)port[i], cl->cred[i]) != 0) {
			fprintf(stderr, "kme_bench: cannot connect with TLS to 127.0.0.1:%lu as %s\n",
				port[i], sae[i]);
			return -1;
		}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The p-th percentile (nearest rank) of call j's kept latencies, in ms;
 * -1 if none was kept. */
static double percentile(const struct opts *o, const struct client *cls, int j, double p)
{
	size_t n = 0, k = 0, rank;
	double *all, v = -1;

	for (unsigned long i = 0; i < o->clients; i++)
		n += cls[i].req_n[j] < SAMPLES_MAX ? cls[i].req_n[j] : SAMPLES_MAX;
	if (n == 0 || (all = malloc(n * sizeof *all)) == NULL)
		return -1;
	for (unsigned long i = 0; i < o->clients; i++)
		for (size_t m = 0; cls[i].samples[j] != NULL && m < cls[i].req_n[j] && m < SAMPLES_MAX; m++)
			all[k++] = cls[i].samples[j][m];
	qsort(all, k, sizeof *all, cmp_double);
	rank = (size_t)ceil(p / 100.0 * (double)k);
	if (k > 0)
		v = 1e3 * all[rank > 0 ? rank - 1 : 0];
	free(all);
	return v;
}

static void report(const struct opts *o, const struct client *cls, double secs)
{
	static const char *const what[2] = { "enc_keys", "dec_keys" };
	const char *const sae[2] = { o->master, o->slave };
	const unsigned long port[2] = { o->port, o->dec_port ? o->dec_port : o->port };
	unsigned long total = 0, rn[2] = { 0, 0 };
	double lat = 0, rsum[2] = { 0, 0 }, rmax[2] = { 0, 0 };

	for (unsigned long i = 0; i < o->clients; i++) {
		total += cls[i].done;
		lat += cls[i].latency_sum;
		for (int j = 0; j < 2; j++) {
			rn[j] += cls[i].req_n[j];
			rsum[j] += cls[i].req_sum[j];
			if (cls[i].req_max[j] > rmax[j])
				rmax[j] = cls[i].req_max[j];
		}
	}
	printf("kme_bench: %lu client(s), keep-alive TLS (%s), %lu key(s) of %lu bits per request\n",
	       o->clients, gnutls_protocol_get_name(gnutls_protocol_get_version(cls[0].c[0].s)),
	       o->number, o->size);
	printf("kme_bench: %lu enc_keys+dec_keys round trips in %.2f s: %.0f round trips/s"
	       " (%.0f requests/s, %.0f keys/s), mean %.3f ms per round trip\n",
	       total, secs, (double)total / secs, 2.0 * (double)total / secs,
	       (double)(total * o->number) / secs, total ? 1e3 * lat / (double)total : 0.0);
	/* Over every answered request, refusals included. With two nodes the
	 * two differ by orders of magnitude, so a round trip's mean hides dec. */
	for (int j = 0; j < 2; j++)
		printf("kme_bench: %s as %s at 127.0.0.1:%lu: %lu requests, mean %.3f ms,"
		       " max %.3f ms, p50 %.3f ms, p99 %.3f ms\n", what[j], sae[j], port[j], rn[j],
		       rn[j] ? 1e3 * rsum[j] / (double)rn[j] : 0.0, 1e3 * rmax[j],
		       percentile(o, cls, j, 50), percentile(o, cls, j, 99));
}

int main(int argc, char **argv)
{
	static struct client cls[CLIENTS_MAX];
	struct opts o;
	pid_t server = -1;
	double t0;
	int rc = 1;

	if (parse(&o, argc, argv) != 0) {
		fprintf(stderr, "usage: kme_bench --pki DIR (--port P [--dec-port P2] |"
				" --server KME_FAKE) [--seconds S] [--requests R] [--clients N] [--number K]"
				" [--size BITS] [--master ID] [--slave ID]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* qkd_etsi014_init: jansson wipes what it frees (the keys parsed here). */
	if (qkd_etsi014_init() != 0 || gnutls_global_init() < 0)
		return 1;
	if (o.server != NULL && (server = spawn_server(&o, &o.port)) < 0) {
		fprintf(stderr, "kme_bench: cannot start %s\n", o.server);
		return 1;
	}
	for (unsigned long i = 0; i < o.clients; i++)
		if (setup_client(&cls[i], &o) != 0)
			goto out;
	t0 = now();
	for (unsigned long i = 0; i < o.clients; i++)
		pthread_create(&cls[i].th, NULL, client_run, &cls[i]);
	for (unsigned long i = 0; i < o.clients; i++)
		pthread_join(cls[i].th, NULL);
	report(&o, cls, now() - t0);
	rc = 0;
	for (unsigned long i = 0; i < o.clients; i++)
		if (cls[i].err != NULL) {
			fprintf(stderr, "kme_bench: client %lu: %s\n", i, cls[i].err);
			rc = 1;
		}
out:
	for (unsigned long i = 0; i < o.clients; i++)
		for (int j = 0; j < 2; j++) {
			conn_close(&cls[i].c[j]);
			free(cls[i].samples[j]);
			if (cls[i].cred[j] != NULL)
				gnutls_certificate_free_credentials(cls[i].cred[j]);
		}
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, NULL, 0);
	}
	gnutls_global_deinit();
	return rc;
}
