/* kme_client_bench - round trips per second through the library's ETSI
 * GS QKD 014 client (qkd/kme_client.h; docs/kme.md, "Client"), against a
 * running KME such as tests/tools/kme_fake.
 *
 * One round trip: SAE_A's client asks enc_keys (GET and POST in turn), then
 * SAE_B's client asks dec_keys for the same key_IDs (GET for one key, POST
 * for several) and the bytes are compared. Each client keeps its
 * connection, so after the first request no TLS handshake is counted, and
 * every request after a POST checks that the reused handle goes back to
 * GET. Exits 1 if any request fails or any key differs.
 *
 *   kme_client_bench --url URL --pki DIR [--seconds S] [--number K] [--size BITS]
 *
 * DIR is the PKI of examples/make-test-pki.sh (ca.pem, SAE_A.*, SAE_B.*).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/kme_client.h"
#include "qkd/secret.h"
#include "qkd/sysutil.h"

struct bench_args {
	const char *url, *pki;
	double seconds;
	unsigned number, size;
};

static int client_for(const struct bench_args *a, const char *sae, struct qkd_kme_client **c)
{
	char cert[512], key[512], ca[512];
	struct qkd_kme_client_config cfg = { .url = a->url, .cert_file = cert, .key_file = key,
					     .ca_file = ca };
	struct qkd_kme_error err;
	int rc;

	snprintf(cert, sizeof cert, "%s/%s.pem", a->pki, sae);
	snprintf(key, sizeof key, "%s/%s.key", a->pki, sae);
	snprintf(ca, sizeof ca, "%s/ca.pem", a->pki);
	if ((rc = qkd_kme_client_new(c, &cfg, &err)) != 0)
		fprintf(stderr, "kme_client_bench: %s: %s\n", sae, err.message);
	return rc;
}

/* enc as SAE_A, dec as SAE_B, compare. 0 or the failing code. */
static int round_trip(struct qkd_kme_client *ca, struct qkd_kme_client *cb,
		      const struct bench_args *a, unsigned long i)
{
	struct qkd_kme_enc_request er = { .number = a->number, .size_bits = a->size,
					  .post = i % 2 == 1 };
	struct qkd_etsi014_uuid ids[QKD_ETSI014_KEYS_MAX];
	struct qkd_kme_dec_request dr = { .ids = ids, .n = a->number, .size_bits = a->size };
	struct qkd_kme_keys enc = { 0 }, dec = { 0 };
	struct qkd_kme_error err;
	int rc;

	if ((rc = qkd_kme_client_enc_keys(ca, "SAE_B", &er, &enc, &err)) != 0)
		goto out;
	for (size_t k = 0; k < enc.n; k++)
		ids[k] = enc.keys[k].id;
	if ((rc = qkd_kme_client_dec_keys(cb, "SAE_A", &dr, &dec, &err)) != 0)
		goto out;
	for (size_t k = 0; k < enc.n && rc == 0; k++)
		if (memcmp(&dec.keys[k].id, &ids[k], sizeof ids[k]) != 0 ||
		    dec.keys[k].len != enc.keys[k].len ||
		    !qkd_ct_equal(dec.keys[k].bytes, enc.keys[k].bytes, enc.keys[k].len)) {
			snprintf(err.message, sizeof err.message, "key %zu differs", k);
			rc = QKD_ERR_VERIFY;
		}
out:
	if (rc != 0)
		fprintf(stderr, "kme_client_bench: round trip %lu: %s (HTTP %u)\n", i, err.message,
			err.http_status);
	qkd_kme_keys_cleanup(&enc);
	qkd_kme_keys_cleanup(&dec);
	return rc;
}

static int parse(int argc, char **argv, struct bench_args *a)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' }, { "pki", required_argument, NULL, 'p' },
		{ "seconds", required_argument, NULL, 's' },
		{ "number", required_argument, NULL, 'n' }, { "size", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*a = (struct bench_args){ NULL, NULL, 3.0, 1, 256 };
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u': a->url = optarg; break;
		case 'p': a->pki = optarg; break;
		case 's': a->seconds = atof(optarg); break;
		case 'n': a->number = (unsigned)atoi(optarg); break;
		case 'b': a->size = (unsigned)atoi(optarg); break;
		default: return -1;
		}
	}
	if (a->url == NULL || a->pki == NULL || a->seconds <= 0 || a->number < 1 ||
	    a->number > QKD_ETSI014_KEYS_MAX) {
		fprintf(stderr, "usage: kme_client_bench --url URL --pki DIR [--seconds S] "
				"[--number K (1..1024)] [--size BITS]\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct qkd_kme_client *ca = NULL, *cb = NULL;
	struct bench_args a;
	unsigned long n = 0;
	double t0, dt;
	int rc = 1;

	if (parse(argc, argv, &a) != 0)
		return 2;
	if (client_for(&a, "SAE_A", &ca) != 0 || client_for(&a, "SAE_B", &cb) != 0)
		goto out;
	t0 = qkd_wall_seconds();
	do {
		if (round_trip(ca, cb, &a, n) != 0)
			goto out;
		n++;
	} while ((dt = qkd_wall_seconds() - t0) < a.seconds);
	printf("kme_client_bench: %lu round trips in %.2f s: %.0f round trips/s, %.0f keys/s, "
	       "%.3f ms per round trip (%u keys of %u bits)\n", n, dt, n / dt, n * a.number / dt,
	       1000 * dt / n, a.number, a.size);
	rc = 0;
out:
	qkd_kme_client_free(ca);
	qkd_kme_client_free(cb);
	return rc;
}
