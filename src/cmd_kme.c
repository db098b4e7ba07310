/* cmd_kme.c - `qkd kme`: an ETSI GS QKD 014 client for operators and
 * scripts (DESIGN.md section 2; docs/kme.md, "Client"), on the library's
 * client (qkd/kme_client.h). It talks to any ETSI 014 KME, ours or not.
 *
 *   qkd kme status --url URL --sae SLAVE  TLS [--json]
 *   qkd kme enc    --url URL --sae SLAVE [--number N] [--size BITS] [--post]
 *                  [--additional-sae ID]...  TLS [--json]
 *   qkd kme dec    --url URL --sae MASTER --key-id ID [--key-id ID]...
 *                  [--size BITS] [--post]  TLS [--json]
 *   TLS: --cert FILE --cert-key FILE --ca FILE [--server-name NAME] [--timeout S]
 *
 * Output: the Status fields, or one line per key (key_ID, bits, key in
 * base64); with --json the KME's object as received and checked. Keys
 * leave through write(2) from buffers that are wiped, never through stdio.
 * Exit codes (cli.h): 0; 1 the request failed (the KME's Error object, TLS,
 * no answer, a malformed answer); 2 the command line is wrong, including a
 * URL that is not https and certificate, key or CA files that cannot be
 * read or used together.
 */
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "commands.h"
#include "qkd/error.h"
#include "qkd/kme_client.h"
#include "qkd/secret.h"
#include "qkd/sysutil.h"
#include "qkd/wire.h"

#define ADD_MAX 16

enum kme_action { ACT_STATUS, ACT_ENC, ACT_DEC };

enum opt_id {
	O_URL = 256, O_SAE, O_CERT, O_CERT_KEY, O_CA, O_SERVER_NAME, O_TIMEOUT,
	O_NUMBER, O_SIZE, O_POST, O_KEY_ID, O_ADDITIONAL, O_JSON,
	O_HELP = 'h',
};

static const struct option long_opts[] = {
	{ "url", required_argument, NULL, O_URL },
	{ "sae", required_argument, NULL, O_SAE },
	{ "cert", required_argument, NULL, O_CERT },
	{ "cert-key", required_argument, NULL, O_CERT_KEY },
	{ "ca", required_argument, NULL, O_CA },
	{ "server-name", required_argument, NULL, O_SERVER_NAME },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "number", required_argument, NULL, O_NUMBER },
	{ "size", required_argument, NULL, O_SIZE },
	{ "post", no_argument, NULL, O_POST },
	{ "key-id", required_argument, NULL, O_KEY_ID },
	{ "additional-sae", required_argument, NULL, O_ADDITIONAL },
	{ "json", no_argument, NULL, O_JSON },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

struct kme_args {
	enum kme_action act;
	const char *what;		/* "kme enc": the "what" of error lines */
	const char *url, *sae, *cert, *key, *ca, *server_name;
	unsigned timeout_ms;		/* 0: the library's default */
	uint64_t number, size;		/* 0: not given */
	bool post, json;
	const char *add[ADD_MAX];
	size_t nadd;
	struct qkd_etsi014_uuid ids[QKD_ETSI014_KEYS_MAX];
	size_t nids;
};

static void usage(FILE *f)
{
	fputs(
"usage: qkd kme status --url URL --sae SLAVE_SAE_ID TLS [--json]\n"
"       qkd kme enc --url URL --sae SLAVE_SAE_ID [--number N] [--size BITS]\n"
"                   [--post] [--additional-sae ID]... TLS [--json]\n"
"       qkd kme dec --url URL --sae MASTER_SAE_ID --key-id ID [--key-id ID]...\n"
"                   [--size BITS] [--post] TLS [--json]\n"
"  TLS: --cert FILE --cert-key FILE --ca FILE [--server-name NAME] [--timeout S]\n"
"\n"
"Ask an ETSI GS QKD 014 key manager (KME) for its status, for new keys\n"
"(enc_keys, as the master SAE) or for the keys of given key_IDs (dec_keys, as\n"
"the slave SAE). Every answer is checked against ETSI GS QKD 014 V1.1.1\n"
"clause 6 and against the request (docs/kme.md, \"Client\").\n"
"\n"
"  --url URL          the KME: https://HOST[:PORT][/PREFIX]; requests go to\n"
"                     PREFIX/api/v1/keys/...\n"
"  --sae ID           status, enc: the slave SAE; dec: the master SAE\n"
"  --number N         enc: how many keys, 1..1024 (default: the KME's, 1)\n"
"  --size BITS        enc: key size, a multiple of 8, 8..65536 (default: the\n"
"                     KME's key_size); dec: the size every key must have\n"
"  --post             send a JSON body (Key request, Key IDs) instead of the\n"
"                     query; dec with several --key-id always POSTs\n"
"  --additional-sae ID  enc: an additional slave SAE (key multicast; POST)\n"
"  --key-id ID        dec: a key_ID (UUID) from enc; repeatable, up to 1024\n"
"  --cert FILE        this SAE's client certificate (PEM)\n"
"  --cert-key FILE    its private key (PEM)\n"
"  --ca FILE          the CA the KME's certificate must chain to (PEM); the\n"
"                     system's CAs are not used\n"
"  --server-name NAME the name the KME's certificate must carry when it is not\n"
"                     the URL's host (the connection still goes to the URL)\n"
"  --timeout S        seconds for a whole request (default 30; connecting\n"
"                     and the TLS handshake at most 10)\n"
"  --json             print the KME's Status or Key container object as\n"
"                     received and checked, one JSON object\n"
"\n"
"Exit status: 0 ok; 1 the KME refused (its Error object is printed), TLS\n"
"failed, no answer came, or the answer broke the spec; 2 usage error (also a\n"
"URL that is not https, and certificate, key or CA files that cannot be used).\n",
	      f);
}

static void help(void)
{
	usage(stdout);
}

/* ---- options ---- */

static bool action_takes(enum kme_action act, int c)
{
	switch (c) {
	case O_NUMBER:
	case O_ADDITIONAL:
		return act == ACT_ENC;
	case O_KEY_ID:
		return act == ACT_DEC;
	case O_SIZE:
	case O_POST:
		return act != ACT_STATUS;
	default:
		return true;
	}
}

/* A single-valued string option: given once, not empty. */
static int set_once(const char **dst, const char *opt, const char *arg)
{
	if (*dst != NULL) {
		cli_errorf(opt, "given more than once");
		return -1;
	}
	if (*arg == '\0') {
		cli_error(opt, "empty value");
		return -1;
	}
	*dst = arg;
	return 0;
}

static int add_key_id(struct kme_args *a, const char *arg)
{
	struct qkd_etsi014_uuid id;

	if (qkd_etsi014_uuid_parse(arg, strlen(arg), &id) != 0) {
		cli_errorf("--key-id", "not a UUID (8-4-4-4-12 hex digits): '%s'", arg);
		return -1;
	}
	if (a->nids == QKD_ETSI014_KEYS_MAX) {
		cli_errorf("--key-id", "at most %d", QKD_ETSI014_KEYS_MAX);
		return -1;
	}
	for (size_t i = 0; i < a->nids; i++)
		if (memcmp(&a->ids[i], &id, sizeof id) == 0) {
			cli_errorf("--key-id", "given twice: '%s'", arg);
			return -1;
		}
	a->ids[a->nids++] = id;
	return 0;
}

static int add_sae(struct kme_args *a, const char *arg)
{
	if (!qkd_etsi014_id_valid(arg)) {
		cli_errorf("--additional-sae", "not an SAE ID (1 to 64 of [A-Za-z0-9._~-]): '%s'",
			   arg);
		return -1;
	}
	if (a->nadd == ADD_MAX) {
		cli_errorf("--additional-sae", "at most %d", ADD_MAX);
		return -1;
	}
	a->add[a->nadd++] = arg;
	return 0;
}

static int parse_size(const char *arg, uint64_t *out)
{
	if (cli_opt_u64("--size", arg, 8, QKD_ETSI014_KEY_BITS_MAX, out) != 0)
		return -1;
	if (*out % 8 != 0) {
		cli_errorf("--size", "must be a multiple of 8 bits: '%s'", arg);
		return -1;
	}
	return 0;
}

static int parse_timeout(const char *arg, unsigned *ms)
{
	double s;

	if (cli_opt_real("--timeout", arg, 0, true, 3600, &s) != 0)
		return -1;
	*ms = (unsigned)ceil(s * 1000);
	return 0;
}

static const char *opt_name(int c)
{
	for (size_t i = 0; long_opts[i].name != NULL; i++)
		if (long_opts[i].val == c)
			return long_opts[i].name;
	return "?";
}

static int one_opt(int c, const char *arg, void *ctx)
{
	struct kme_args *a = ctx;

	if (!action_takes(a->act, c)) {
		cli_errorf(a->what, "--%s does not apply to %s (see 'qkd kme --help')",
			   opt_name(c), a->what + 4);
		return -1;
	}
	switch (c) {
	case O_URL: return set_once(&a->url, "--url", arg);
	case O_SAE: return set_once(&a->sae, "--sae", arg);
	case O_CERT: return set_once(&a->cert, "--cert", arg);
	case O_CERT_KEY: return set_once(&a->key, "--cert-key", arg);
	case O_CA: return set_once(&a->ca, "--ca", arg);
	case O_SERVER_NAME: return set_once(&a->server_name, "--server-name", arg);
	case O_TIMEOUT: return parse_timeout(arg, &a->timeout_ms);
	case O_NUMBER: return cli_opt_u64("--number", arg, 1, QKD_ETSI014_KEYS_MAX, &a->number);
	case O_SIZE: return parse_size(arg, &a->size);
	case O_KEY_ID: return add_key_id(a, arg);
	case O_ADDITIONAL: return add_sae(a, arg);
	case O_POST: a->post = true; return 0;
	case O_JSON: a->json = true; return 0;
	default: return -1;
	}
}

static int check_args(const struct kme_args *a)
{
	const char *missing = a->url == NULL ? "--url" : a->sae == NULL ? "--sae" :
			      a->cert == NULL ? "--cert" : a->key == NULL ? "--cert-key" :
			      a->ca == NULL ? "--ca" :
			      a->act == ACT_DEC && a->nids == 0 ? "--key-id" : NULL;

	if (missing != NULL) {
		cli_errorf(a->what, "missing %s (see 'qkd kme --help')", missing);
		return -1;
	}
	if (!qkd_etsi014_id_valid(a->sae)) {
		cli_errorf("--sae", "not an SAE ID (1 to 64 of [A-Za-z0-9._~-]): '%s'", a->sae);
		return -1;
	}
	return 0;
}

/* ---- output ---- */

static const char *reason(unsigned status)
{
	switch (status) {
	case 400: return " Bad Request";
	case 401: return " Unauthorized";
	case 403: return " Forbidden";
	case 404: return " Not Found";
	case 405: return " Method Not Allowed";
	case 413: return " Content Too Large";
	case 500: return " Internal Server Error";
	case 501: return " Not Implemented";
	case 502: return " Bad Gateway";
	case 503: return " Service Unavailable";
	case 504: return " Gateway Timeout";
	default: return "";
	}
}

static void report(const struct kme_args *a, int rc, const struct qkd_kme_error *err)
{
	const char *msg = err->message[0] != '\0' ? err->message : qkd_strerror(rc);

	if (rc == QKD_ERR_REFUSED)
		cli_errorf(a->what, "%u%s: %s%s%s%s", err->http_status, reason(err->http_status),
			   msg, err->details[0] ? " (details: " : "", err->details,
			   err->details[0] ? ")" : "");
	else if (rc == QKD_ERR_PROTO)
		cli_errorf(a->what, "%s: malformed answer: %s", a->url, msg);
	else
		cli_errorf(a->what, "%s: %s", a->url, msg);
}

/* The body as received, and a newline when it has none. */
static int print_body(const char *body, size_t len)
{
	if (qkd_write_all(STDOUT_FILENO, body, len) != 0 ||
	    (len > 0 && body[len - 1] != '\n' && qkd_write_all(STDOUT_FILENO, "\n", 1) != 0))
		return -1;
	return 0;
}

static int print_status(const struct qkd_kme_status *s, bool json)
{
	if (json)
		return print_body(s->body, s->body_len);
	printf("%-20s %s\n%-20s %s\n%-20s %s\n%-20s %s\n",
	       "source_KME_ID", s->source_kme_id, "target_KME_ID", s->target_kme_id,
	       "master_SAE_ID", s->master_sae_id, "slave_SAE_ID", s->slave_sae_id);
	printf("%-20s %u\n%-20s %llu\n%-20s %llu\n%-20s %u\n%-20s %u\n%-20s %u\n%-20s %u\n",
	       "key_size", s->key_size,
	       "stored_key_count", (unsigned long long)s->stored_key_count,
	       "max_key_count", (unsigned long long)s->max_key_count,
	       "max_key_per_request", s->max_key_per_request, "max_key_size", s->max_key_size,
	       "min_key_size", s->min_key_size, "max_SAE_ID_count", s->max_sae_id_count);
	return fflush(stdout) == 0 ? 0 : -1;
}

/* One line per key: key_ID, bits, base64. Built in a buffer that is wiped,
 * written with write(2). */
static int print_keys(const struct qkd_kme_keys *k, bool json)
{
	size_t b64cap = sodium_base64_ENCODED_LEN(QKD_ETSI014_KEY_BITS_MAX / 8,
						  sodium_base64_VARIANT_ORIGINAL);
	char *b64 = malloc(b64cap), line[80], id[QKD_ETSI014_UUID_LEN + 1];
	struct qkd_wbuf w;
	int rc = -1;

	if (json) {
		free(b64);
		return print_body(k->body, k->body_len);
	}
	qkd_wbuf_init_secret(&w);
	if (b64 == NULL)
		goto out;
	snprintf(line, sizeof line, "%-36s  %5s  %s\n", "key_ID", "bits", "key (base64)");
	qkd_put_bytes(&w, line, strlen(line));
	for (size_t i = 0; i < k->n; i++) {
		qkd_etsi014_uuid_format(&k->keys[i].id, id);
		snprintf(line, sizeof line, "%s  %5zu  ", id, k->keys[i].len * 8);
		sodium_bin2base64(b64, b64cap, k->keys[i].bytes, k->keys[i].len,
				  sodium_base64_VARIANT_ORIGINAL);
		qkd_put_bytes(&w, line, strlen(line));
		qkd_put_bytes(&w, b64, strlen(b64));
		qkd_put_bytes(&w, "\n", 1);
	}
	if (w.err == 0 && qkd_write_all(STDOUT_FILENO, w.p, w.len) == 0)
		rc = 0;
out:
	qkd_free_secret(b64, b64 ? b64cap : 0);
	qkd_wbuf_cleanup(&w);
	return rc;
}

/* ---- running ---- */

static int run(struct qkd_kme_client *c, const struct kme_args *a, struct qkd_kme_error *err)
{
	struct qkd_kme_status st;
	struct qkd_kme_keys keys;
	int rc, prc;

	if (a->act == ACT_STATUS) {
		if ((rc = qkd_kme_client_status(c, a->sae, &st, err)) != 0)
			return rc;
		prc = print_status(&st, a->json);
		qkd_kme_status_cleanup(&st);
	} else {
		if (a->act == ACT_ENC) {
			struct qkd_kme_enc_request r = { (uint32_t)a->number, (uint32_t)a->size,
							 a->post, a->add, a->nadd };
			rc = qkd_kme_client_enc_keys(c, a->sae, &r, &keys, err);
		} else {
			struct qkd_kme_dec_request r = { a->ids, a->nids, (uint32_t)a->size, a->post };
			rc = qkd_kme_client_dec_keys(c, a->sae, &r, &keys, err);
		}
		if (rc != 0)
			return rc;
		prc = print_keys(&keys, a->json);
		qkd_kme_keys_cleanup(&keys);
	}
	if (prc != 0) {
		snprintf(err->message, sizeof err->message, "cannot write the output");
		return QKD_ERR_IO;
	}
	return 0;
}

static int lookup_action(const char *name, struct kme_args *a)
{
	static const struct { const char *name, *what; enum kme_action act; } acts[] = {
		{ "status", "kme status", ACT_STATUS },
		{ "enc", "kme enc", ACT_ENC },
		{ "dec", "kme dec", ACT_DEC },
	};

	for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
		if (strcmp(name, acts[i].name) == 0) {
			a->act = acts[i].act;
			a->what = acts[i].what;
			return 0;
		}
	cli_errorf("kme", "unknown action '%s' (status, enc or dec; see 'qkd kme --help')", name);
	return -1;
}

int cmd_kme(int argc, char **argv)
{
	static struct kme_args a;	/* static: 16 KiB of key_IDs */
	struct qkd_kme_client_config cfg;
	struct qkd_kme_client *c = NULL;
	struct qkd_kme_error err;
	int rc;

	memset(&a, 0, sizeof a);
	memset(&err, 0, sizeof err);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (argc < 2) {
		cli_error("kme", "missing action: status, enc or dec (see 'qkd kme --help')");
		return CLI_EXIT_USAGE;
	}
	if (lookup_action(argv[1], &a) != 0)
		return CLI_EXIT_USAGE;
	rc = cli_getopts(a.what, argc - 1, argv + 1, long_opts, O_HELP, help, one_opt, &a);
	if (rc != 0)
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	if (check_args(&a) != 0)
		return CLI_EXIT_USAGE;
	cfg = (struct qkd_kme_client_config){
		.url = a.url, .cert_file = a.cert, .key_file = a.key, .ca_file = a.ca,
		.server_name = a.server_name, .timeout_ms = a.timeout_ms,
		.connect_timeout_ms = a.timeout_ms && a.timeout_ms < QKD_KME_CLIENT_CONNECT_TIMEOUT_MS
				      ? a.timeout_ms : 0,
	};
	if ((rc = qkd_kme_client_new(&c, &cfg, &err)) != 0) {
		cli_errorf(a.what, "%s", err.message[0] ? err.message : qkd_strerror(rc));
		/* what the command line named cannot be used: the URL, a file */
		return rc == QKD_ERR_NOMEM ? CLI_EXIT_FAIL : CLI_EXIT_USAGE;
	}
	rc = run(c, &a, &err);
	qkd_kme_client_free(c);
	if (rc != 0) {
		report(&a, rc, &err);
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}
