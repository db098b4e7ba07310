/* qkd/testing.h - entry points for tests and benchmarks only, never called
 * by the daemon (STYLE.md "Names": test-only switches live here, not in the
 * production API). */
#ifndef QKD_TESTING_H
#define QKD_TESTING_H

#include <stdbool.h>
#include <stdint.h>

struct qkd_esp_sa;
struct qkd_ike_dh;
struct qkd_dataplane;

/* Place an SA's sequence state at seq, as if it had run that long, so a test
 * reaches the 2^32 or 2^64 end of the counter or a published vector's
 * sequence number without sending billions of packets. Outbound: seq is the
 * last number sent (the next packet carries seq + 1). Inbound: the replay
 * window's top becomes seq, with nothing marked received. Counters of bytes
 * and packets are left as they are. */
void qkd_esp_testing_set_seq(struct qkd_esp_sa *sa, uint64_t seq);

/* An X25519 key exchange object (qkd/ike_dh.h) with a given private key,
 * so the RFC 7748 section 6.1 vectors can be checked. 0 or QKD_ERR_NOMEM. */
int qkd_ike_dh_testing_x25519(const uint8_t priv[32], struct qkd_ike_dh **out);
/* The benchmark's no-crypto mode of the data plane (bench/vpn_tun.sh,
 * tests/tools/esp_gw --plain): the same TUN reads, policy lookup, batches
 * and sendmmsg/recvmmsg, but the inner packet travels as the UDP payload
 * behind a 4-byte tag (the tunnel's index + 1, a reserved SPI that no SA
 * has) instead of ESP, and no SA is used. Both gateways must be in it.
 * Never for real traffic: nothing is encrypted or authenticated. */
void qkd_dataplane_testing_plain(struct qkd_dataplane *dp, bool on);

/* Whether the data plane sends runs of datagrams as UDP GSO sends (on by
 * default; it turns itself off when the kernel refuses one): off, every
 * datagram is its own send, for the benchmark's comparison. */
void qkd_dataplane_testing_gso(struct qkd_dataplane *dp, bool on);

#endif
