/* test_metrics.c - the Prometheus text renderer (qkd/metrics.h,
 * lib/node/metrics.c) and the key manager's counters (lib/kme/counters.c).
 *
 * A small snapshot, one link with every field set to a distinct value and
 * a key manager with a few counts, renders to exactly the text below (read
 * line by line against docs/metrics.md and the format's rules: families
 * once each with HELP and TYPE, cumulative buckets, +Inf equal to _count).
 * Then label escaping of odd names, the families left out without a key
 * manager, NaN and infinities, the argument checks; and the counters: the
 * endpoint of a request-target, buckets by latency, keys only for 200s of
 * enc_keys and dec_keys, codes outside 100..599 ignored.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/metrics.h"
#include "../../lib/kme/counters.h"

static const char golden[] =
	"# HELP qkd_node_info The node's name; always 1.\n"
	"# TYPE qkd_node_info gauge\n"
	"qkd_node_info{node=\"alice\"} 1\n"
	"# HELP qkd_link_info A configured link and its role; always 1.\n"
	"# TYPE qkd_link_info gauge\n"
	"qkd_link_info{link=\"ab\",role=\"bob\"} 1\n"
	"# HELP qkd_link_state The link's current state (as qkd status shows it); 1.\n"
	"# TYPE qkd_link_state gauge\n"
	"qkd_link_state{link=\"ab\",state=\"round\"} 1\n"
	"# HELP qkd_link_qber_ratio Quantum bit error rate of the link's last round that corrected frames.\n"
	"# TYPE qkd_link_qber_ratio gauge\n"
	"qkd_link_qber_ratio{link=\"ab\"} 0.034\n"
	"# HELP qkd_link_key_rate_bits_per_second Key bits stored per second since the node started.\n"
	"# TYPE qkd_link_key_rate_bits_per_second gauge\n"
	"qkd_link_key_rate_bits_per_second{link=\"ab\"} 1234.5\n"
	"# HELP qkd_link_stored_blocks Key blocks in the link's store.\n"
	"# TYPE qkd_link_stored_blocks gauge\n"
	"qkd_link_stored_blocks{link=\"ab\"} 4\n"
	"# HELP qkd_link_stored_bits Key bits in the link's store.\n"
	"# TYPE qkd_link_stored_bits gauge\n"
	"qkd_link_stored_bits{link=\"ab\"} 40960\n"
	"# HELP qkd_link_available_bits Key bits of the link's store not yet taken.\n"
	"# TYPE qkd_link_available_bits gauge\n"
	"qkd_link_available_bits{link=\"ab\"} 30000\n"
	"# HELP qkd_link_last_block_bits Size of the last key block stored.\n"
	"# TYPE qkd_link_last_block_bits gauge\n"
	"qkd_link_last_block_bits{link=\"ab\"} 10240\n"
	"# HELP qkd_link_rounds_total Rounds since the node started, by result.\n"
	"# TYPE qkd_link_rounds_total counter\n"
	"qkd_link_rounds_total{link=\"ab\",result=\"ok\"} 12\n"
	"qkd_link_rounds_total{link=\"ab\",result=\"empty\"} 1\n"
	"qkd_link_rounds_total{link=\"ab\",result=\"failed\"} 2\n"
	"qkd_link_rounds_total{link=\"ab\",result=\"qber_abort\"} 3\n"
	"# HELP qkd_link_auth_bits Authentication key bits left: in all, and of the poorer direction.\n"
	"# TYPE qkd_link_auth_bits gauge\n"
	"qkd_link_auth_bits{link=\"ab\",kind=\"left\"} 5000\n"
	"qkd_link_auth_bits{link=\"ab\",kind=\"poorer_direction\"} 2400\n"
	"# HELP qkd_link_auth_spent_bits_total Authentication key bits spent on tags.\n"
	"# TYPE qkd_link_auth_spent_bits_total counter\n"
	"qkd_link_auth_spent_bits_total{link=\"ab\"} 700\n"
	"# HELP qkd_link_auth_replenished_bits_total Authentication key bits received: the bootstrap key and every refill.\n"
	"# TYPE qkd_link_auth_replenished_bits_total counter\n"
	"qkd_link_auth_replenished_bits_total{link=\"ab\"} 900\n"
	"# HELP qkd_link_session_key_bits_total Key bits distilled (blocks and refills) since the node started.\n"
	"# TYPE qkd_link_session_key_bits_total counter\n"
	"qkd_link_session_key_bits_total{link=\"ab\"} 50000\n"
	"# HELP qkd_link_session_auth_bits_total Authentication key bits spent since the node started.\n"
	"# TYPE qkd_link_session_auth_bits_total counter\n"
	"qkd_link_session_auth_bits_total{link=\"ab\"} 600\n"
	"# HELP qkd_link_tags_failed_total Authentication tags that failed to verify.\n"
	"# TYPE qkd_link_tags_failed_total counter\n"
	"qkd_link_tags_failed_total{link=\"ab\"} 5\n"
	"# HELP qkd_link_strangers_refused_total Connections that failed the handshake's gate.\n"
	"# TYPE qkd_link_strangers_refused_total counter\n"
	"qkd_link_strangers_refused_total{link=\"ab\"} 6\n"
	"# HELP qkd_link_service_messages_total Messages of the services on the link's channel: sent, delivered, dropped as unknown.\n"
	"# TYPE qkd_link_service_messages_total counter\n"
	"qkd_link_service_messages_total{link=\"ab\",kind=\"sent\"} 31\n"
	"qkd_link_service_messages_total{link=\"ab\",kind=\"delivered\"} 29\n"
	"qkd_link_service_messages_total{link=\"ab\",kind=\"unknown\"} 2\n"
	"# HELP qkd_link_blocks_quarantined Stored blocks that failed their digest.\n"
	"# TYPE qkd_link_blocks_quarantined gauge\n"
	"qkd_link_blocks_quarantined{link=\"ab\"} 7\n"
	"# HELP qkd_link_alarm 1 while the alarm is raised, else 0.\n"
	"# TYPE qkd_link_alarm gauge\n"
	"qkd_link_alarm{link=\"ab\",alarm=\"auth_exhausted\"} 0\n"
	"qkd_link_alarm{link=\"ab\",alarm=\"auth_low\"} 1\n"
	"qkd_link_alarm{link=\"ab\",alarm=\"disk_fault\"} 0\n"
	"qkd_link_alarm{link=\"ab\",alarm=\"eavesdropping_suspected\"} 1\n"
	"# HELP qkd_link_kme_available_bits Free key bits of this end's half, which the key manager can issue.\n"
	"# TYPE qkd_link_kme_available_bits gauge\n"
	"qkd_link_kme_available_bits{link=\"ab\"} 8192\n"
	"# HELP qkd_link_kme_keys Key manager records in the link's store, by state.\n"
	"# TYPE qkd_link_kme_keys gauge\n"
	"qkd_link_kme_keys{link=\"ab\",state=\"outbox\"} 1\n"
	"qkd_link_kme_keys{link=\"ab\",state=\"ready\"} 2\n"
	"qkd_link_kme_keys{link=\"ab\",state=\"delivered\"} 3\n"
	"qkd_link_kme_keys{link=\"ab\",state=\"refused\"} 4\n"
	"qkd_link_kme_keys{link=\"ab\",state=\"abandoned\"} 5\n"
	"qkd_link_kme_keys{link=\"ab\",state=\"withdrawn\"} 6\n"
	"qkd_link_kme_keys{link=\"ab\",state=\"quarantined\"} 7\n"
	"# HELP qkd_link_kme_expired_total Ready keys that expired unfetched (kme.key_ttl), their bits wiped.\n"
	"# TYPE qkd_link_kme_expired_total counter\n"
	"qkd_link_kme_expired_total{link=\"ab\"} 8\n"
	"# HELP qkd_link_kme_lost_bits_total Key bits consumed at this end for keys no SAE gets (failed, withdrawn, expired).\n"
	"# TYPE qkd_link_kme_lost_bits_total counter\n"
	"qkd_link_kme_lost_bits_total{link=\"ab\"} 2048\n"
	"# HELP qkd_link_kme_pruned_total Key manager tombstones pruned.\n"
	"# TYPE qkd_link_kme_pruned_total counter\n"
	"qkd_link_kme_pruned_total{link=\"ab\"} 9\n"
	"# HELP qkd_kme_requests_total Key manager responses, by ETSI 014 endpoint and HTTP status code.\n"
	"# TYPE qkd_kme_requests_total counter\n"
	"qkd_kme_requests_total{endpoint=\"enc_keys\",code=\"200\"} 3\n"
	"qkd_kme_requests_total{endpoint=\"dec_keys\",code=\"200\"} 2\n"
	"qkd_kme_requests_total{endpoint=\"dec_keys\",code=\"404\"} 1\n"
	"qkd_kme_requests_total{endpoint=\"other\",code=\"404\"} 1\n"
	"# HELP qkd_kme_keys_served_total Keys handed to SAEs in successful enc_keys and dec_keys responses.\n"
	"# TYPE qkd_kme_keys_served_total counter\n"
	"qkd_kme_keys_served_total{call=\"enc_keys\"} 6\n"
	"qkd_kme_keys_served_total{call=\"dec_keys\"} 4\n"
	"# HELP qkd_kme_request_duration_seconds Time from a request's arrival to its response being queued.\n"
	"# TYPE qkd_kme_request_duration_seconds histogram\n"
	"qkd_kme_request_duration_seconds_bucket{le=\"0.001\"} 2\n"
	"qkd_kme_request_duration_seconds_bucket{le=\"0.0025\"} 2\n"
	"qkd_kme_request_duration_seconds_bucket{le=\"0.005\"} 2\n"
	"qkd_kme_request_duration_seconds_bucket{le=\"0.01\"} 5\n"
	"qkd_kme_request_duration_seconds_bucket{le=\"0.025\"} 5\n"
	"qkd_kme_request_duration_seconds_bucket{le=\"0.05\"} 5\n"
	"qkd_kme_request_duration_seconds_bucket{le=\"0.1\"} 5\n"
	"qkd_kme_request_duration_seconds_bucket{le=\"0.25\"} 5\n"
	"qkd_kme_request_duration_seconds_bucket{le=\"0.5\"} 5\n"
	"qkd_kme_request_duration_seconds_bucket{le=\"1\"} 5\n"
	"qkd_kme_request_duration_seconds_bucket{le=\"2.5\"} 5\n"
	"qkd_kme_request_duration_seconds_bucket{le=\"5\"} 5\n"
	"qkd_kme_request_duration_seconds_bucket{le=\"10\"} 5\n"
	"qkd_kme_request_duration_seconds_bucket{le=\"+Inf\"} 7\n"
	"qkd_kme_request_duration_seconds_sum 25.0125\n"
	"qkd_kme_request_duration_seconds_count 7\n";

static void fill_link(struct qkd_metrics_link *l, const char *name)
{
	struct qkd_link_status *s = &l->status;

	memset(l, 0, sizeof *l);
	l->name = name;
	l->role = QKD_ROLE_BOB;
	strcpy(s->state, "round");
	s->rounds_ok = 12;
	s->rounds_empty = 1;
	s->rounds_failed = 2;
	s->rounds_qber_abort = 3;
	s->last_qber = 0.034;
	s->key_rate_bps = 1234.5;
	s->stored_blocks = 4;
	s->stored_bits = 40960;
	s->available_bits = 30000;
	s->last_block_bits = 10240;
	s->auth_bits_left = 5000;
	s->auth_bits_poorer = 2400;
	s->auth_bits_spent = 700;
	s->auth_bits_replenished = 900;
	s->session_key_bits = 50000;
	s->session_auth_bits = 600;
	s->tags_failed = 5;
	s->strangers_refused = 6;
	s->service_sent = 31;
	s->service_delivered = 29;
	s->service_unknown = 2;
	s->blocks_quarantined = 7;
	s->auth_low = true;
	s->eavesdropping_suspected = true;
	s->kme_available_bits = 8192;
	s->kme_outbox = 1;
	s->kme_ready = 2;
	s->kme_delivered = 3;
	s->kme_refused = 4;
	s->kme_abandoned = 5;
	s->kme_withdrawn = 6;
	s->kme_quarantined = 7;
	s->kme_expired = 8;
	s->kme_lost_bits = 2048;
	s->kme_pruned = 9;
}

static void fill_kme(struct qkd_kme_counters *k)
{
	memset(k, 0, sizeof *k);
	k->requests[QKD_KME_EP_ENC_KEYS][200 - QKD_KME_CODE_MIN] = 3;
	k->requests[QKD_KME_EP_DEC_KEYS][200 - QKD_KME_CODE_MIN] = 2;
	k->requests[QKD_KME_EP_DEC_KEYS][404 - QKD_KME_CODE_MIN] = 1;
	k->requests[QKD_KME_EP_OTHER][404 - QKD_KME_CODE_MIN] = 1;
	k->keys_served[0] = 6;
	k->keys_served[1] = 4;
	k->latency[0] = 2;		/* <= 1 ms */
	k->latency[3] = 3;		/* 5 .. 10 ms */
	k->latency[QKD_KME_LATENCY_BUCKETS] = 2;	/* above 10 s */
	k->latency_sum_ns = 25012500000ull;
}

static char *render(const struct qkd_metrics_snapshot *s, size_t *len)
{
	char *t = NULL;

	assert_int_equal(qkd_metrics_render(s, &t, len), 0);
	assert_non_null(t);
	assert_int_equal(strlen(t), *len);
	return t;
}

static void test_golden(void **state)
{
	static struct qkd_kme_counters k;
	struct qkd_metrics_link l;
	struct qkd_metrics_snapshot s = { .node = "alice", .links = &l, .nlinks = 1, .kme = &k };
	size_t len;
	char *t;

	(void)state;
	fill_link(&l, "ab");
	fill_kme(&k);
	t = render(&s, &len);
	assert_string_equal(t, golden);
	free(t);
}

/* Backslash, double quote and line feed escaped; anything else (here a
 * tab, braces, UTF-8) as it is. */
static void test_escaping(void **state)
{
	struct qkd_metrics_link l[2];
	struct qkd_metrics_snapshot s = { .node = "n\"1\\", .links = l, .nlinks = 2 };
	size_t len;
	char *t;

	(void)state;
	fill_link(&l[0], "we\"ird\\na\nme");
	fill_link(&l[1], "t\tab {x=\"1\"} \xc3\xa9");
	strcpy(l[1].status.state, "st\"ate");
	l[1].role = QKD_ROLE_ALICE;
	t = render(&s, &len);
	assert_non_null(strstr(t, "qkd_node_info{node=\"n\\\"1\\\\\"} 1\n"));
	assert_non_null(strstr(t, "qkd_link_info{link=\"we\\\"ird\\\\na\\nme\",role=\"bob\"} 1\n"));
	assert_non_null(strstr(t, "qkd_link_stored_bits{link=\"we\\\"ird\\\\na\\nme\"} 40960\n"));
	assert_non_null(strstr(t, "qkd_link_info{link=\"t\tab {x=\\\"1\\\"} \xc3\xa9\",role=\"alice\"} 1\n"));
	assert_non_null(strstr(t, "qkd_link_state{link=\"t\tab {x=\\\"1\\\"} \xc3\xa9\",state=\"st\\\"ate\"} 1\n"));
	/* The raw newline of the name never reaches the text. */
	assert_null(strstr(t, "na\nme"));
	/* Both links' samples of a family sit together, under one TYPE line. */
	assert_non_null(strstr(t, "qkd_link_rounds_total{link=\"we\\\"ird\\\\na\\nme\",result=\"qber_abort\"} 3\n"
				  "qkd_link_rounds_total{link=\"t\tab {x=\\\"1\\\"} \xc3\xa9\",result=\"ok\"} 12\n"));
	free(t);
}

static void test_no_kme_special_values(void **state)
{
	struct qkd_metrics_link l;
	struct qkd_metrics_snapshot s = { .node = "bob", .links = &l, .nlinks = 1 };
	size_t len;
	char *t;

	(void)state;
	fill_link(&l, "x");
	l.status.last_qber = NAN;
	l.status.key_rate_bps = INFINITY;
	t = render(&s, &len);
	assert_null(strstr(t, "qkd_kme_"));
	assert_non_null(strstr(t, "qkd_link_qber_ratio{link=\"x\"} NaN\n"));
	assert_non_null(strstr(t, "qkd_link_key_rate_bits_per_second{link=\"x\"} +Inf\n"));
	free(t);
	l.status.key_rate_bps = -INFINITY;
	t = render(&s, &len);
	assert_non_null(strstr(t, "qkd_link_key_rate_bits_per_second{link=\"x\"} -Inf\n"));
	free(t);
	s.nlinks = 0;
	t = render(&s, &len);
	assert_non_null(strstr(t, "# TYPE qkd_link_rounds_total counter\n# HELP"));
	assert_null(strstr(t, "{link="));
	free(t);
}

static void test_bad_args(void **state)
{
	struct qkd_metrics_link l;
	struct qkd_metrics_snapshot s = { .node = "n", .links = &l, .nlinks = 1 };
	size_t len = 7;
	char *t = (char *)"unchanged";

	(void)state;
	fill_link(&l, NULL);
	assert_int_equal(qkd_metrics_render(&s, &t, &len), QKD_ERR_INVAL);
	assert_null(t);
	assert_int_equal(qkd_metrics_render(NULL, &t, &len), QKD_ERR_INVAL);
	assert_int_equal(qkd_metrics_render(&s, NULL, &len), QKD_ERR_INVAL);
	l.name = "n";
	assert_int_equal(qkd_metrics_render(&s, &t, NULL), QKD_ERR_INVAL);
	s.node = NULL;
	assert_int_equal(qkd_metrics_render(&s, &t, &len), QKD_ERR_INVAL);
	s.node = "n";
	s.links = NULL;
	assert_int_equal(qkd_metrics_render(&s, &t, &len), QKD_ERR_INVAL);
}

static void test_endpoint_of(void **state)
{
	(void)state;
	assert_int_equal(kme_endpoint_of("/api/v1/keys/SAE_B/status"), QKD_KME_EP_STATUS);
	assert_int_equal(kme_endpoint_of("/api/v1/keys/SAE_B/enc_keys?number=2&size=256"),
			 QKD_KME_EP_ENC_KEYS);
	assert_int_equal(kme_endpoint_of("/api/v1/keys/a/dec_keys"), QKD_KME_EP_DEC_KEYS);
	assert_int_equal(kme_endpoint_of("/api/v1/keys/a/dec_keys?key_ID=x"), QKD_KME_EP_DEC_KEYS);
	assert_int_equal(kme_endpoint_of("/api/v1/keys//status"), QKD_KME_EP_OTHER);
	assert_int_equal(kme_endpoint_of("/api/v1/keys/a/status/x"), QKD_KME_EP_OTHER);
	assert_int_equal(kme_endpoint_of("/api/v1/keys/a/statusx"), QKD_KME_EP_OTHER);
	assert_int_equal(kme_endpoint_of("/api/v1/keys/a?b/status"), QKD_KME_EP_OTHER);
	assert_int_equal(kme_endpoint_of("/api/v1/keys/a/enc_key"), QKD_KME_EP_OTHER);
	assert_int_equal(kme_endpoint_of("/api/v2/keys/a/status"), QKD_KME_EP_OTHER);
	assert_int_equal(kme_endpoint_of("/"), QKD_KME_EP_OTHER);
	assert_int_equal(kme_endpoint_of(NULL), QKD_KME_EP_OTHER);
	assert_string_equal(qkd_kme_endpoint_name(QKD_KME_EP_ENC_KEYS), "enc_keys");
	assert_string_equal(qkd_kme_endpoint_name(QKD_KME_EP_OTHER), "other");
}

static void test_counters(void **state)
{
	static struct kme_counters k;
	static struct qkd_kme_counters c;

	(void)state;
	kme_counters_record(&k, "/api/v1/keys/b/enc_keys", 200, 3, 1000000);	/* exactly 1 ms */
	kme_counters_record(&k, "/api/v1/keys/b/enc_keys", 503, 9, 1000001);
	kme_counters_record(&k, "/api/v1/keys/a/dec_keys", 200, 2, 10000000001ull);
	kme_counters_record(&k, "/api/v1/keys/a/status", 200, 5, 0);
	kme_counters_record(&k, "/x", 404, 0, 7000000);
	kme_counters_record(&k, "/x", 99, 0, 7000000);
	kme_counters_record(&k, "/x", 600, 0, 7000000);
	kme_counters_copy(&k, &c);
	assert_int_equal(c.requests[QKD_KME_EP_ENC_KEYS][200 - QKD_KME_CODE_MIN], 1);
	assert_int_equal(c.requests[QKD_KME_EP_ENC_KEYS][503 - QKD_KME_CODE_MIN], 1);
	assert_int_equal(c.requests[QKD_KME_EP_DEC_KEYS][200 - QKD_KME_CODE_MIN], 1);
	assert_int_equal(c.requests[QKD_KME_EP_STATUS][200 - QKD_KME_CODE_MIN], 1);
	assert_int_equal(c.requests[QKD_KME_EP_OTHER][404 - QKD_KME_CODE_MIN], 1);
	assert_int_equal(c.keys_served[0], 3);	/* not the 503's */
	assert_int_equal(c.keys_served[1], 2);
	assert_int_equal(c.latency[0], 2);	/* 0 and exactly 1 ms */
	assert_int_equal(c.latency[1], 1);	/* 1 ms + 1 ns */
	assert_int_equal(c.latency[3], 1);	/* 7 ms */
	assert_int_equal(c.latency[QKD_KME_LATENCY_BUCKETS], 1);
	assert_int_equal(c.latency_sum_ns, 1000000 + 1000001 + 10000000001ull + 7000000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_no_kme_special_values),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_endpoint_of),
		cmocka_unit_test(test_counters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
