/* counters.c - what the key manager's HTTPS server counts (counters.h,
 * qkd/kme_server.h "counters", docs/metrics.md): responses by endpoint and
 * status code, keys served, a latency histogram. Relaxed atomics: each
 * counter is exact on its own, and no reader needs an order between them
 * (the histogram's count is the sum of its buckets, taken from one copy). */
#include "counters.h"

#include <string.h>
#include <time.h>

#define API_PREFIX "/api/v1/keys/"

/* 1 ms .. 10 s in 1-2.5-5 steps: an enc_keys that waits for the peer KME
 * takes up to its sync_timeout (seconds); a status, milliseconds. */
const double qkd_kme_latency_bounds_s[QKD_KME_LATENCY_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* The same bounds in nanoseconds, so that recording needs no float. */
static const uint64_t bounds_ns[QKD_KME_LATENCY_BUCKETS] = {
	1000000, 2500000, 5000000, 10000000, 25000000, 50000000, 100000000,
	250000000, 500000000, 1000000000, 2500000000u, 5000000000u, 10000000000u,
};

static const char *const endpoint_names[QKD_KME_EP_COUNT] = {
	[QKD_KME_EP_STATUS] = "status", [QKD_KME_EP_ENC_KEYS] = "enc_keys",
	[QKD_KME_EP_DEC_KEYS] = "dec_keys", [QKD_KME_EP_OTHER] = "other",
};

const char *qkd_kme_endpoint_name(enum qkd_kme_endpoint e)
{
	return (unsigned)e < QKD_KME_EP_COUNT ? endpoint_names[e] : "other";
}

uint64_t kme_counters_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* API_PREFIX, one non-empty segment (the SAE ID), "/", then exactly one of
 * the three names up to the end or a query. Labels stay few whatever a
 * client sends: any other target is "other". */
enum qkd_kme_endpoint kme_endpoint_of(const char *target)
{
	const char *p, *slash;
	size_t len;

	if (target == NULL || strncmp(target, API_PREFIX, strlen(API_PREFIX)) != 0)
		return QKD_KME_EP_OTHER;
	p = target + strlen(API_PREFIX);
	slash = strchr(p, '/');
	if (slash == NULL || slash == p || memchr(p, '?', (size_t)(slash - p)) != NULL)
		return QKD_KME_EP_OTHER;
	p = slash + 1;
	len = strcspn(p, "?");
	for (int e = 0; e < QKD_KME_EP_OTHER; e++)
		if (len == strlen(endpoint_names[e]) && memcmp(p, endpoint_names[e], len) == 0)
			return (enum qkd_kme_endpoint)e;
	return QKD_KME_EP_OTHER;
}

void kme_counters_record(struct kme_counters *k, const char *target, unsigned status,
			 size_t nkeys, uint64_t elapsed_ns)
{
	enum qkd_kme_endpoint e = kme_endpoint_of(target);
	size_t b = 0;

	if (status < QKD_KME_CODE_MIN || status >= QKD_KME_CODE_MIN + QKD_KME_CODES)
		return;
	atomic_fetch_add_explicit(&k->requests[e][status - QKD_KME_CODE_MIN], 1,
				  memory_order_relaxed);
	if (status == 200 && (e == QKD_KME_EP_ENC_KEYS || e == QKD_KME_EP_DEC_KEYS))
		atomic_fetch_add_explicit(&k->keys_served[e == QKD_KME_EP_DEC_KEYS], nkeys,
					  memory_order_relaxed);
	while (b < QKD_KME_LATENCY_BUCKETS && elapsed_ns > bounds_ns[b])
		b++;
	atomic_fetch_add_explicit(&k->latency[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&k->latency_sum_ns, elapsed_ns, memory_order_relaxed);
}

void kme_counters_copy(const struct kme_counters *k, struct qkd_kme_counters *out)
{
	for (size_t e = 0; e < QKD_KME_EP_COUNT; e++)
		for (size_t c = 0; c < QKD_KME_CODES; c++)
			out->requests[e][c] = atomic_load_explicit(&k->requests[e][c],
								   memory_order_relaxed);
	for (size_t i = 0; i < 2; i++)
		out->keys_served[i] = atomic_load_explicit(&k->keys_served[i], memory_order_relaxed);
	for (size_t b = 0; b <= QKD_KME_LATENCY_BUCKETS; b++)
		out->latency[b] = atomic_load_explicit(&k->latency[b], memory_order_relaxed);
	out->latency_sum_ns = atomic_load_explicit(&k->latency_sum_ns, memory_order_relaxed);
}
