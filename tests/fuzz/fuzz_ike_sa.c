/* libFuzzer target: the IKEv2 state machine (lib/vpn/ike_sa*.c, ike_msg.c,
 * qkd/ike_sa.h) fed arbitrary datagrams.
 *
 * Input: one mode octet, then records (a 2-octet big-endian length and
 * that many octets, at most 8 records). Mode 0: a fresh responder gets the
 * records (from the second on, a record of 28 octets or more has its SPIs
 * replaced by those of the IKE SA the responder holds, so the fuzzer gets
 * past the SPI lookup). Mode 1: an initiator that sent IKE_SA_INIT gets
 * them (SPIi replaced by its own). Mode 2: a genuine IKE_SA_INIT exchange
 * first, then the records (both SPIs replaced) go to the initiator waiting
 * for its IKE_AUTH response and to the responder waiting for that request.
 * Mode 3: a whole genuine setup (IKE_SA_INIT and IKE_AUTH, one pair
 * installed at each end), then the records (both SPIs replaced) go to both
 * established objects.
 * Between records the clock advances 0.7 s and both objects tick.
 * Every record is also given to qkd_ike_invalid_spi_reply (RFC 7296
 * section 2.21.4): an answer must be 36 octets, parse, be a response (so
 * never answered itself) and carry the record's SPIs; in mode 3 it goes
 * to the initiator too, as a hint for whatever it has in flight.
 * Checks besides not crashing, leaking or reading out of bounds: nothing is
 * ever installed from garbage (child_install aborts outside the genuine
 * setup), every event is one of the enum, and the next timer is never in
 * the past.
 * Seeds: tests/fuzz/corpus/ike_sa/, written by build/tests/tools/ike_sa_corpus.
 */
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/ike_sa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct qkd_vpn_tunnel tun[2];
static struct qkd_ike *obj[2];
static double now;
static uint8_t last[2][4096];	/* the last datagram each object sent */
static size_t last_len[2];
static bool genuine;	/* installs allowed: the genuine setup of mode 3 */

static int on_send(void *arg, const uint8_t *msg, size_t len)
{
	int i = (int)(intptr_t)arg;

	if (len <= sizeof last[i]) {
		memcpy(last[i], msg, len);
		last_len[i] = len;
	}
	return 0;
}

static int on_install(void *arg, const struct qkd_ike_child *c)
{
	(void)arg;
	(void)c;
	if (!genuine)
		abort();	/* garbage must never install a Child SA */
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
			       key, sizeof key, now) != QKD_OK)
		abort();
}

static void on_event(void *arg, enum qkd_ike_event ev, const char *detail)
{
	(void)arg;
	if ((unsigned)ev > QKD_IKE_EV_COOKIE || detail == NULL)
		abort();
}

static const struct qkd_ike_ops ops = { on_send, on_install, on_delete, on_ppk, on_event, NULL };
static const uint8_t psk[] = "the fuzz target's pre-shared key, long enough";

static void setup(void)
{
	const char *why;

	for (int i = 0; i < 2; i++) {
		struct qkd_vpn_tunnel *t = &tun[i];

		memcpy(t->name, i == 0 ? "i" : "r", 2);
		t->initiate = i == 0;
		strcpy(t->local_id, i == 0 ? "gw-a.example" : "gw-b");
		strcpy(t->remote_id, i == 0 ? "gw-b" : "gw-a.example");
		if (qkd_vpn_prefix_parse(i == 0 ? "10.1.0.0/16" : "10.2.0.0/16", &t->local_ts[0],
					 &why) != QKD_OK ||
		    qkd_vpn_prefix_parse(i == 0 ? "10.2.0.0/16" : "10.1.0.0/16", &t->remote_ts[0],
					 &why) != QKD_OK)
			abort();
		t->n_local_ts = t->n_remote_ts = 1;
		t->esp.key_bits = t->ike.key_bits = 256;
		t->dh = t->first_dh = QKD_VPN_DH_X25519;
		t->rekey_s = 60;
		t->qkd = QKD_VPN_QKD_PREFERRED;
		t->key_wait_s = 5;
	}
}

static void open_objects(void)
{
	for (int i = 0; i < 2; i++) {
		struct qkd_ike_params p = { .tunnel = &tun[i], .psk = psk, .psk_len = sizeof psk - 1,
					    .ops = &ops, .arg = (void *)(intptr_t)i,
					    .cookie_threshold = 100, .dpd_s = 3 };

		if (qkd_ike_new(&p, &obj[i]) != QKD_OK)
			abort();
		last_len[i] = 0;
	}
}

/* Replace the SPIs of a record by the ones the target holds. */
static void patch(uint8_t *rec, size_t len, int target, bool both)
{
	struct qkd_ike_status st;

	if (len < 28)
		return;
	qkd_ike_status(obj[target], &st);
	memcpy(rec, st.spi_i, 8);
	if (both)
		memcpy(rec + 8, st.spi_r, 8);
}

/* The INVALID_IKE_SPI answer to rec, checked; *out_len 0 when none. */
static void invalid_spi(const uint8_t *rec, size_t len, uint8_t out[64], size_t *out_len)
{
	struct qkd_wbuf w, again;
	struct qkd_ike_msg m;
	const char *why;

	*out_len = 0;
	qkd_wbuf_init(&w);
	qkd_wbuf_init(&again);
	if (qkd_ike_invalid_spi_reply(rec, len, &w) == QKD_OK) {
		if (w.len != 36 || qkd_ike_msg_parse(w.p, w.len, &m, &why) != QKD_OK ||
		    memcmp(w.p, rec, 16) != 0 || (m.hdr.flags & QKD_IKE_FLAG_R) == 0 ||
		    qkd_ike_invalid_spi_reply(w.p, w.len, &again) != QKD_ERR_PROTO)
			abort();
		memcpy(out, w.p, w.len);
		*out_len = w.len;
	} else if (w.len != 0) {
		abort();
	}
	qkd_wbuf_cleanup(&w);
	qkd_wbuf_cleanup(&again);
}

static void feed(int target, uint8_t *rec, size_t len)
{
	(void)qkd_ike_input(obj[target], rec, len, now);
	now += 0.7;
	for (int i = 0; i < 2; i++) {
		qkd_ike_tick(obj[i], now);
		if (qkd_ike_next_timer(obj[i], now) < now)
			abort();
	}
}

/* Mode 2: a real IKE_SA_INIT between the two, the IKE_AUTH request kept back. */
static void handshake(void)
{
	uint8_t m[4096];
	size_t n;

	if (qkd_ike_start(obj[0], now) != QKD_OK || last_len[0] == 0)
		abort();
	n = last_len[0];
	memcpy(m, last[0], n);
	(void)qkd_ike_input(obj[1], m, n, now);
	n = last_len[1];
	memcpy(m, last[1], n);
	(void)qkd_ike_input(obj[0], m, n, now);
}

/* Mode 3: IKE_AUTH request and response delivered too. */
static void establish(void)
{
	uint8_t m[4096];
	size_t n;

	genuine = true;
	handshake();
	n = last_len[0];
	memcpy(m, last[0], n);
	(void)qkd_ike_input(obj[1], m, n, now);
	n = last_len[1];
	memcpy(m, last[1], n);
	(void)qkd_ike_input(obj[0], m, n, now);
	genuine = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t rec[65536], ans[64];
	size_t off = 1, k = 0, ans_len;
	int mode;

	if (size < 1)
		return 0;
	if (tun[0].name[0] == '\0')
		setup();
	now = 100;
	open_objects();
	mode = data[0] % 4;
	if (mode == 1 && qkd_ike_start(obj[0], now) != QKD_OK)
		abort();
	if (mode == 2)
		handshake();
	if (mode == 3)
		establish();
	while (off + 2 <= size && k++ < 8) {
		size_t len = (size_t)data[off] << 8 | data[off + 1];

		off += 2;
		if (len > size - off)
			len = size - off;
		memcpy(rec, data + off, len);
		off += len;
		if (mode == 0 && k > 1)
			patch(rec, len, 1, true);
		if (mode == 1)
			patch(rec, len, 0, false);
		if (mode >= 2)
			patch(rec, len, 0, true);
		invalid_spi(rec, len, ans, &ans_len);
		feed(mode >= 1 ? 0 : 1, rec, len);
		if (mode >= 2)
			feed(1, rec, len);
		if (mode == 3 && ans_len > 0)
			feed(0, ans, ans_len);
	}
	qkd_ike_free(obj[0]);
	qkd_ike_free(obj[1]);
	return 0;
}
