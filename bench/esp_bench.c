/* esp_bench.c - the crypto ceiling of `qkd vpn`'s data plane: one core
 * encapsulating and decapsulating ESP packets (lib/vpn/esp_packet.c) with
 * no TUN, socket or copy around them (docs/vpn.md "ESP data plane",
 * "Figures"). Issue 14's target for the whole TUN-to-UDP path is >= 1
 * Gbit/s; this is the most that path can reach on this core.
 *
 *   esp_bench [--packets N] [--size BYTES] [--key 16|32] [--esn]
 *
 * Defaults: 1e6 inner packets of 1400 bytes, AES-256-GCM, no ESN. Each
 * packet is encapsulated on an outbound SA and the result decapsulated on
 * the matching inbound SA (and checked). Time is the thread's CPU time, so
 * other work on a shared machine does not count; wall time is printed too.
 * One line per figure: "NAME VALUE UNIT".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qkd/error.h"
#include "qkd/esp.h"

static double now(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct opts {
	double packets, size;
	size_t key;
	bool esn;
};

static int parse(int argc, char **argv, struct opts *o)
{
	for (int i = 1; i < argc; i++) {
		char *end = NULL;
		double v;

		if (strcmp(argv[i], "--esn") == 0) {
			o->esn = true;
			continue;
		}
		v = i + 1 < argc ? strtod(argv[i + 1], &end) : 0;
		if (i + 1 >= argc || end == argv[i + 1] || *end != '\0' || !(v >= 1 && v <= 1e10)) {
			fprintf(stderr, "esp_bench: %s: expects a number from 1 to 1e10\n", argv[i]);
			return 2;
		}
		if (strcmp(argv[i], "--packets") == 0)
			o->packets = v;
		else if (strcmp(argv[i], "--size") == 0 && v <= 65535)
			o->size = v;
		else if (strcmp(argv[i], "--key") == 0 && (v == 16 || v == 32))
			o->key = (size_t)v;
		else {
			fprintf(stderr, "esp_bench: unknown or out-of-range option '%s'\n", argv[i]);
			return 2;
		}
		i++;
	}
	return 0;
}

#define BATCH 64

/* Encapsulate then decapsulate n packets in batches of BATCH (as a gateway
 * handles a burst; the clock is read per batch, not per packet, because a
 * CPU-time read is a system call); the CPU seconds of each half. */
static int run(struct qkd_esp_sa *o, struct qkd_esp_sa *in, uint64_t n, size_t size,
	       double *enc_s, double *dec_s)
{
	enum { CAP = 65535 + QKD_ESP_OVERHEAD_MAX };
	static uint8_t inner[65535], back[CAP];
	uint8_t *pkt = malloc((size_t)BATCH * CAP);
	size_t plen[BATCH], blen;
	uint8_t nh;
	double t0, t1, t2;
	int rc = QKD_ERR_NOMEM;

	if (pkt == NULL)
		return rc;
	for (size_t i = 0; i < size; i++)
		inner[i] = (uint8_t)(i * 31 + 7);
	*enc_s = *dec_s = 0;
	rc = QKD_OK;
	for (uint64_t k = 0; k < n && rc == QKD_OK; k += BATCH) {
		unsigned b = n - k < BATCH ? (unsigned)(n - k) : BATCH;

		t0 = now(CLOCK_THREAD_CPUTIME_ID);
		for (unsigned j = 0; j < b && rc == QKD_OK; j++)
			rc = qkd_esp_encapsulate(o, 4, inner, size, pkt + (size_t)j * CAP, CAP, &plen[j]);
		t1 = now(CLOCK_THREAD_CPUTIME_ID);
		for (unsigned j = 0; j < b && rc == QKD_OK; j++) {
			rc = qkd_esp_decapsulate(in, pkt + (size_t)j * CAP, plen[j], back, CAP, &blen, &nh);
			if (rc == QKD_OK && (blen != size || back[size / 2] != inner[size / 2]))
				rc = QKD_ERR_VERIFY;
		}
		t2 = now(CLOCK_THREAD_CPUTIME_ID);
		*enc_s += t1 - t0;
		*dec_s += t2 - t1;
	}
	free(pkt);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o = { .packets = 1e6, .size = 1400, .key = 32 };
	uint8_t km[36];
	struct qkd_esp_params p = { .spi = 0x1000, .keymat = km };
	struct qkd_esp_sa *out = NULL, *in = NULL;
	double enc, dec, wall, cpu;
	uint64_t n;
	int rc = parse(argc, argv, &o);

	if (rc != 0)
		return rc;
	n = (uint64_t)o.packets;
	for (size_t i = 0; i < sizeof km; i++)
		km[i] = (uint8_t)(i * 13 + 1);	/* test data only */
	p.keymat_len = o.key + QKD_ESP_SALT_LEN;
	p.esn = o.esn;
	p.dir = QKD_ESP_OUT;
	rc = qkd_esp_sa_new(&p, &out);
	p.dir = QKD_ESP_IN;
	if (rc == QKD_OK)
		rc = qkd_esp_sa_new(&p, &in);
	wall = now(CLOCK_MONOTONIC);
	if (rc == QKD_OK)
		rc = run(out, in, n, (size_t)o.size, &enc, &dec);
	wall = now(CLOCK_MONOTONIC) - wall;
	qkd_esp_sa_free(out);
	qkd_esp_sa_free(in);
	if (rc != QKD_OK) {
		fprintf(stderr, "esp_bench: %s\n", qkd_strerror(rc));
		return 1;
	}
	cpu = enc + dec;
	printf("esp aes-%zu-gcm%s inner %zu B, %llu packets\n", o.key * 8, o.esn ? " esn" : "",
	       (size_t)o.size, (unsigned long long)n);
	printf("encapsulate %.1f ns/packet\n", 1e9 * enc / (double)n);
	printf("decapsulate %.1f ns/packet\n", 1e9 * dec / (double)n);
	printf("both %.1f ns/packet\n", 1e9 * cpu / (double)n);
	/* Inner bits through one core doing both halves, as a gateway pair
	 * would on one host; each half alone runs at about twice this. */
	printf("throughput %.2f Gbit/s\n", (double)n * o.size * 8 / cpu / 1e9);
	printf("encapsulate-only %.2f Gbit/s\n", (double)n * o.size * 8 / enc / 1e9);
	printf("decapsulate-only %.2f Gbit/s\n", (double)n * o.size * 8 / dec / 1e9);
	printf("wall %.3f s cpu %.3f s\n", wall, cpu);
	return 0;
}
