/* kme_fake.c - the key manager's HTTPS server (lib/kme) with a fake key
 * provider, for tests/integration/kme_http.sh and bench/kme_bench.c.
 *
 * The provider hands out keys cut from an in-memory pool of random bytes
 * (libsodium's CSPRNG: no QKD behind it, test data only). Each key gets a
 * fresh random UUID; dec_keys returns a key once, to the slave of the pair
 * it was issued for, then forgets it. Pool bytes are wiped as they are cut.
 *
 *   kme_fake --pki DIR [--addr A] [--port P] [--sae ID[=CN]]...
 *            [--pool-bytes N] [--key-size B] [--min-key-size B]
 *            [--max-key-size B] [--max-keys N] [--max-connections N]
 *            [--per-address-connections N] [--handshake-timeout S]
 *            [--idle-timeout S] [--kme-id ID] [--peer-kme-id ID] [--verbose]
 *
 * A is an IPv4 or IPv6 address without brackets (127.0.0.1, the default,
 * or ::1), or localhost (qkd_netaddr_from_host).
 * DIR holds ca.pem, server.pem and server.key (examples/make-test-pki.sh).
 * SAEs default to SAE_A and SAE_B, each with CN = its ID; any two distinct
 * SAEs of the list form a pair. Port 0 (the default) picks a free port; the
 * connection limits and timeouts default to the server's (0). Once
 * serving it prints "listening ADDR PORT" on stdout; SIGTERM or SIGINT stops
 * it cleanly with exit status 0.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "qkd/error.h"
#include "qkd/etsi014.h"
#include "qkd/kme_server.h"

#define SAES_MAX 16
#define BUCKETS 4096

struct entry {
	struct qkd_etsi014_uuid id;
	const char *master, *slave;	/* point into the SAE table */
	uint8_t *key;
	size_t len;
	struct entry *next;
};

struct fake {
	pthread_mutex_t mu;
	uint8_t *pool;
	size_t size, off;
	struct entry *bucket[BUCKETS];
	const struct qkd_kme_sae *saes;
	size_t nsaes;
	const char *peer_kme_id;
	uint32_t key_size;
};

static size_t hash_id(const struct qkd_etsi014_uuid *id)
{
	return ((size_t)id->b[0] << 8 | id->b[1]) % BUCKETS;
}

static struct entry **find(struct fake *f, const struct qkd_etsi014_uuid *id)
{
	struct entry **pp = &f->bucket[hash_id(id)];

	while (*pp != NULL && memcmp(&(*pp)->id, id, sizeof *id) != 0)
		pp = &(*pp)->next;
	return pp;
}

static const char *sae_lookup(const struct fake *f, const char *id)
{
	for (size_t i = 0; i < f->nsaes; i++)
		if (strcmp(f->saes[i].id, id) == 0)
			return f->saes[i].id;
	return NULL;
}

static void entry_free(struct entry *e)
{
	if (e == NULL)
		return;
	sodium_memzero(e->key, e->len);
	free(e->key);
	free(e);
}

/* Cut one key of len bytes from the pool into out and a new entry. */
static int cut_key(struct fake *f, const char *m, const char *s, size_t len,
		   struct qkd_etsi014_key *out)
{
	struct entry *e = calloc(1, sizeof *e);

	if (e == NULL || (e->key = malloc(len)) == NULL) {
		free(e);
		return QKD_ERR_NOMEM;
	}
	do
		qkd_etsi014_uuid_random(&e->id);
	while (*find(f, &e->id) != NULL);
	memcpy(e->key, f->pool + f->off, len);
	memcpy(out->bytes, f->pool + f->off, len);
	sodium_memzero(f->pool + f->off, len);
	f->off += len;
	e->len = out->len = len;
	e->master = m;
	e->slave = s;
	out->id = e->id;
	e->next = f->bucket[hash_id(&e->id)];
	f->bucket[hash_id(&e->id)] = e;
	return 0;
}

static int fake_enc(void *ctx, const char *master, const char *slave, uint32_t number,
		    uint32_t size_bits, struct qkd_etsi014_key *keys, const char **why)
{
	struct fake *f = ctx;
	const char *m = sae_lookup(f, master), *s = sae_lookup(f, slave);
	size_t len = size_bits / 8;
	int rc = 0;

	pthread_mutex_lock(&f->mu);
	if (m == NULL || s == NULL) {
		*why = "unknown SAE ID";
		rc = QKD_ERR_INVAL;
	} else if ((f->size - f->off) / len < number) {
		*why = "the pool holds fewer bits than asked for";
		rc = QKD_ERR_RANGE;
	}
	for (uint32_t i = 0; rc == 0 && i < number; i++)
		rc = cut_key(f, m, s, len, &keys[i]);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* All or nothing: check every key_ID, then hand the keys out. */
static int fake_dec(void *ctx, const char *master, const char *slave,
		    struct qkd_etsi014_key *keys, size_t n, size_t *bad, const char **why)
{
	struct fake *f = ctx;
	struct entry **pp, *e;
	int rc = 0;

	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		e = *find(f, &keys[i].id);
		*bad = i;
		if (e == NULL) {
			*why = "key_ID unknown or already delivered";
			rc = QKD_ERR_INVAL;
		} else if (strcmp(e->master, master) != 0 || strcmp(e->slave, slave) != 0) {
			*why = "key_ID was issued to another pair of SAEs";
			rc = QKD_ERR_VERIFY;
		} else if (e->len > keys[i].cap) {
			*why = "key larger than max_key_size";
			rc = QKD_ERR_INVAL;
		}
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		pp = find(f, &keys[i].id);
		e = *pp;
		memcpy(keys[i].bytes, e->key, e->len);
		keys[i].len = e->len;
		*pp = e->next;
		entry_free(e);
	}
	if (rc == 0)
		*bad = n;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int fake_status(void *ctx, const char *master, const char *slave,
		       struct qkd_etsi014_counts *c, const char **why)
{
	struct fake *f = ctx;

	if (sae_lookup(f, master) == NULL || sae_lookup(f, slave) == NULL) {
		*why = "unknown SAE ID";
		return QKD_ERR_INVAL;
	}
	pthread_mutex_lock(&f->mu);
	c->stored_key_count = (f->size - f->off) * 8 / f->key_size;
	c->max_key_count = f->size * 8 / f->key_size;
	pthread_mutex_unlock(&f->mu);
	snprintf(c->target_kme_id, sizeof c->target_kme_id, "%s", f->peer_kme_id);
	return 0;
}

static const struct qkd_etsi014_provider fake_ops = {
	.enc = fake_enc,
	.dec = fake_dec,
	.status = fake_status,
};

/* ---- the program ---- */

struct opts {
	const char *pki, *addr, *kme_id, *peer_kme_id;
	unsigned long port, pool_bytes, max_conn, per_address, handshake_s, idle_s;
	struct qkd_etsi014_limits lim;
	struct qkd_kme_sae saes[SAES_MAX];
	char *sae_args[SAES_MAX];
	size_t nsaes;
	int verbose;
	char cert[512], key[512], ca[512];
};

static void log_write(void *ctx, enum qkd_log_level level, const char *line)
{
	(void)ctx;
	fprintf(stderr, "kme_fake: %s: %s\n", qkd_log_level_name(level), line);
}

static int usage(void)
{
	fprintf(stderr, "usage: kme_fake --pki DIR [--addr A] [--port P] [--sae ID[=CN]]...\n"
			"  [--pool-bytes N] [--key-size B] [--min-key-size B] [--max-key-size B]\n"
			"  [--max-keys N] [--max-connections N] [--per-address-connections N]\n"
			"  [--handshake-timeout S] [--idle-timeout S] [--kme-id ID] [--peer-kme-id ID]"
			" [--verbose]\n");
	return 2;
}

static int num(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

static int add_sae(struct opts *o, const char *arg)
{
	char *eq, *copy;

	if (o->nsaes == SAES_MAX || (copy = strdup(arg)) == NULL)
		return -1;
	o->sae_args[o->nsaes] = copy;
	eq = strchr(copy, '=');
	if (eq != NULL)
		*eq++ = '\0';
	o->saes[o->nsaes].id = copy;
	o->saes[o->nsaes].cn = eq != NULL ? eq : copy;
	o->nsaes++;
	return 0;
}

static int one_opt(struct opts *o, int c, const char *a)
{
	unsigned long v = 0;

	switch (c) {
	case 'd': o->pki = a; return 0;
	case 'a': o->addr = a; return 0;
	case 'k': o->kme_id = a; return 0;
	case 'K': o->peer_kme_id = a; return 0;
	case 'S': return add_sae(o, a);
	case 'v': o->verbose = 1; return 0;
	case 'p': return num(a, 65535, &o->port);
	case 'b': return num(a, 1ul << 30, &o->pool_bytes);
	case 'c': return num(a, 65536, &o->max_conn);
	case 'P': return num(a, 65536, &o->per_address);
	case 'H': return num(a, 3600, &o->handshake_s);
	case 'I': return num(a, 86400, &o->idle_s);
	}
	if (num(a, UINT32_MAX, &v) != 0)
		return -1;
	switch (c) {
	case 's': o->lim.key_size = (uint32_t)v; return 0;
	case 'm': o->lim.min_key_size = (uint32_t)v; return 0;
	case 'M': o->lim.max_key_size = (uint32_t)v; return 0;
	case 'n': o->lim.max_key_per_request = (uint32_t)v; return 0;
	}
	return -1;
}

static int parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pki", required_argument, NULL, 'd' }, { "addr", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' }, { "sae", required_argument, NULL, 'S' },
		{ "pool-bytes", required_argument, NULL, 'b' },
		{ "key-size", required_argument, NULL, 's' },
		{ "min-key-size", required_argument, NULL, 'm' },
		{ "max-key-size", required_argument, NULL, 'M' },
		{ "max-keys", required_argument, NULL, 'n' },
		{ "max-connections", required_argument, NULL, 'c' },
		{ "per-address-connections", required_argument, NULL, 'P' },
		{ "handshake-timeout", required_argument, NULL, 'H' },
		{ "idle-timeout", required_argument, NULL, 'I' },
		{ "kme-id", required_argument, NULL, 'k' },
		{ "peer-kme-id", required_argument, NULL, 'K' },
		{ "verbose", no_argument, NULL, 'v' }, { NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct opts){ .addr = "127.0.0.1", .kme_id = "KME_A", .peer_kme_id = "KME_B",
			    .pool_bytes = 4ul << 20,
			    .lim = { .key_size = 256, .min_key_size = 64, .max_key_size = 8192,
				     .max_key_per_request = 128 } };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1)
		if (c == '?' || one_opt(o, c, optarg) != 0)
			return -1;
	if (optind != argc || o->pki == NULL)
		return -1;
	if (o->nsaes == 0 && (add_sae(o, "SAE_A") != 0 || add_sae(o, "SAE_B") != 0))
		return -1;
	snprintf(o->cert, sizeof o->cert, "%s/server.pem", o->pki);
	snprintf(o->key, sizeof o->key, "%s/server.key", o->pki);
	snprintf(o->ca, sizeof o->ca, "%s/ca.pem", o->pki);
	return 0;
}

static int serve(struct opts *o, struct fake *f, const struct qkd_logger *lg)
{
	struct qkd_kme_server_config cfg = {
		.cert_file = o->cert, .key_file = o->key, .ca_file = o->ca,
		.saes = o->saes, .nsaes = o->nsaes, .max_connections = (unsigned)o->max_conn,
		.per_address_connections = (unsigned)o->per_address,
		.handshake_timeout_s = (unsigned)o->handshake_s, .idle_timeout_s = (unsigned)o->idle_s,
		.kme = { .kme_id = o->kme_id, .lim = o->lim, .ops = &fake_ops, .ctx = f },
		.log = lg,
	};
	struct qkd_kme_server *s = NULL;
	const char *why = NULL;
	sigset_t set;
	int sig = 0;

	if (qkd_netaddr_from_host(o->addr, (uint16_t)o->port, &cfg.listen, &why) != 0) {
		fprintf(stderr, "qkd: kme_fake: --addr %s: %s\n", o->addr, why);
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* Blocked before the server's threads exist, so they inherit the mask
	 * and the signal comes to sigwait below. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (qkd_kme_server_start(&s, &cfg, &why) != 0) {
		fprintf(stderr, "qkd: kme_fake: %s\n", why);
		return 1;
	}
	printf("listening %s %u\n", o->addr, (unsigned)qkd_kme_server_port(s));
	fflush(stdout);
	while (sigwait(&set, &sig) != 0)
		;
	qkd_kme_server_stop(s);
	return 0;
}

static void fake_cleanup(struct fake *f)
{
	for (size_t i = 0; i < BUCKETS; i++)
		while (f->bucket[i] != NULL) {
			struct entry *e = f->bucket[i];

			f->bucket[i] = e->next;
			entry_free(e);
		}
	if (f->pool != NULL)
		sodium_memzero(f->pool, f->size);
	free(f->pool);
	pthread_mutex_destroy(&f->mu);
}

int main(int argc, char **argv)
{
	static struct fake f;
	struct qkd_logger lg = { .write = log_write, .level = QKD_LOG_WARN };
	struct opts o;
	int rc = 1;

	if (parse_opts(&o, argc, argv) != 0)
		return usage();
	if (o.verbose)
		lg.level = QKD_LOG_DEBUG;
	if (qkd_etsi014_init() != 0 || (f.pool = malloc(o.pool_bytes ? o.pool_bytes : 1)) == NULL) {
		fprintf(stderr, "qkd: kme_fake: cannot set up the key pool\n");
		goto out;
	}
	pthread_mutex_init(&f.mu, NULL);
	randombytes_buf(f.pool, o.pool_bytes);
	f.size = o.pool_bytes;
	f.saes = o.saes;
	f.nsaes = o.nsaes;
	f.peer_kme_id = o.peer_kme_id;
	f.key_size = o.lim.key_size ? o.lim.key_size : 1;
	rc = serve(&o, &f, &lg);
	fake_cleanup(&f);
out:
	for (size_t i = 0; i < o.nsaes; i++)
		free(o.sae_args[i]);
	return rc;
}
