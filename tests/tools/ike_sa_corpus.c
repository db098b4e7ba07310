/* ike_sa_corpus.c - writes the seed corpus of tests/fuzz/fuzz_ike_sa.c:
 * the genuine messages of an IKE_SA_INIT and IKE_AUTH exchange between two
 * state machines (qkd/ike_sa.h), framed as that target's records (mode
 * octet, then 2-octet lengths), plus a few broken ones.
 *
 *     build/tests/tools/ike_sa_corpus tests/fuzz/corpus/ike_sa
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/ike_sa.h"

static struct qkd_ike *obj[2];
static uint8_t msgs[8][4096];
static size_t lens[8], nmsg;
static int dest[8];

static int on_send(void *arg, const uint8_t *msg, size_t len)
{
	if (nmsg < 8 && len <= sizeof msgs[0]) {
		memcpy(msgs[nmsg], msg, len);
		lens[nmsg] = len;
		dest[nmsg++] = 1 - (int)(intptr_t)arg;
	}
	return 0;
}

static int on_install(void *arg, const struct qkd_ike_child *c)
{
	(void)arg;
	(void)c;
	return 0;
}

static void on_delete(void *arg, uint32_t in, uint32_t out)
{
	(void)arg;
	(void)in;
	(void)out;
}

static void on_ppk(void *arg, const struct qkd_ike_ppk_req *r)
{
	static const char id[] = "0f0f0f0f-0000-4000-8000-000000000001";
	static const uint8_t key[32] = { 7, 7, 7 };
	int i = (int)(intptr_t)arg;

	if (qkd_ike_ppk_answer(obj[i], r->token, 0, r->op == QKD_IKE_PPK_GET ? r->key_id : id,
			       key, sizeof key, 0) != QKD_OK)
		abort();
}

static void on_event(void *arg, enum qkd_ike_event ev, const char *d)
{
	(void)arg;
	(void)ev;
	(void)d;
}

static const struct qkd_ike_ops ops = { on_send, on_install, on_delete, on_ppk, on_event, NULL };
static const uint8_t psk[] = "the fuzz target's pre-shared key, long enough";

static void tunnel(struct qkd_vpn_tunnel *t, int i)
{
	const char *why;

	memset(t, 0, sizeof *t);
	memcpy(t->name, i == 0 ? "i" : "r", 2);
	t->initiate = i == 0;
	strcpy(t->local_id, i == 0 ? "gw-a.example" : "gw-b");
	strcpy(t->remote_id, i == 0 ? "gw-b" : "gw-a.example");
	if (qkd_vpn_prefix_parse(i == 0 ? "10.1.0.0/16" : "10.2.0.0/16", &t->local_ts[0], &why) ||
	    qkd_vpn_prefix_parse(i == 0 ? "10.2.0.0/16" : "10.1.0.0/16", &t->remote_ts[0], &why))
		abort();
	t->n_local_ts = t->n_remote_ts = 1;
	t->esp.key_bits = t->ike.key_bits = 256;
	t->dh = t->first_dh = QKD_VPN_DH_X25519;
	t->rekey_s = 60;
	t->qkd = QKD_VPN_QKD_PREFERRED;
	t->key_wait_s = 5;
}

static int save(const char *dir, const char *name, int mode, const size_t *which, size_t n)
{
	char path[4096];
	FILE *f;
	uint8_t m = (uint8_t)mode;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(&m, 1, 1, f) != 1)
		return 1;
	for (size_t i = 0; i < n; i++) {
		uint8_t l[2] = { (uint8_t)(lens[which[i]] >> 8), (uint8_t)lens[which[i]] };

		if (fwrite(l, 1, 2, f) != 2 || fwrite(msgs[which[i]], 1, lens[which[i]], f) !=
		    lens[which[i]])
			return 1;
	}
	return fclose(f) != 0;
}

int main(int argc, char **argv)
{
	struct qkd_vpn_tunnel t[2];
	static const size_t init_req[] = { 0 }, init_resp[] = { 1 }, auth[] = { 2 },
			    auth_resp[] = { 3 }, both[] = { 0, 2 };
	int rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: ike_sa_corpus DIR\n");
		return 2;
	}
	for (int i = 0; i < 2; i++) {
		struct qkd_ike_params p = { .tunnel = &t[i], .psk = psk, .psk_len = sizeof psk - 1,
					    .ops = &ops, .arg = (void *)(intptr_t)i,
					    .cookie_threshold = 100 };

		tunnel(&t[i], i);
		if (qkd_ike_new(&p, &obj[i]) != QKD_OK)
			return 1;
	}
	if (qkd_ike_start(obj[0], 0) != QKD_OK)
		return 1;
	for (size_t i = 0; i < nmsg && i < 4; i++)	/* INIT, INIT resp, AUTH, AUTH resp */
		(void)qkd_ike_input(obj[dest[i]], msgs[i], lens[i], 0);
	if (nmsg < 4)
		return 1;
	rc |= save(argv[1], "responder_init", 0, init_req, 1);
	rc |= save(argv[1], "responder_init_auth", 0, both, 2);
	rc |= save(argv[1], "initiator_init_resp", 1, init_resp, 1);
	rc |= save(argv[1], "auth_request", 2, auth, 1);
	rc |= save(argv[1], "auth_response", 2, auth_resp, 1);
	rc |= save(argv[1], "established_auth", 3, auth, 1);
	qkd_ike_free(obj[0]);
	qkd_ike_free(obj[1]);
	return rc;
}
