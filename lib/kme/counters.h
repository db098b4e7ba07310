/* counters.h - the key manager server's request counters (internal to
 * lib/kme; the public copy is struct qkd_kme_counters in qkd/kme_server.h).
 * kme_server.c owns one struct kme_counters per server, kme_server_http.c
 * records each response it queues; counters.c holds the atomics and the
 * classification. */
#ifndef QKD_KME_COUNTERS_H
#define QKD_KME_COUNTERS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/kme_server.h"

struct kme_counters {
	_Atomic uint64_t requests[QKD_KME_EP_COUNT][QKD_KME_CODES];
	_Atomic uint64_t keys_served[2];
	_Atomic uint64_t latency[QKD_KME_LATENCY_BUCKETS + 1];
	_Atomic uint64_t latency_sum_ns;
};

/* CLOCK_MONOTONIC in nanoseconds: a request's start and end. */
uint64_t kme_counters_now_ns(void);

/* The endpoint target (the request-target as received, NULL: other) names. */
enum qkd_kme_endpoint kme_endpoint_of(const char *target);

/* Count one response: status (outside 100 .. 599: not counted), the keys
 * of a 200 enc_keys or dec_keys, elapsed_ns since the request began. */
void kme_counters_record(struct kme_counters *k, const char *target, unsigned status,
			 size_t nkeys, uint64_t elapsed_ns);

/* Copy every counter (relaxed loads) into *out. */
void kme_counters_copy(const struct kme_counters *k, struct qkd_kme_counters *out);

#endif
