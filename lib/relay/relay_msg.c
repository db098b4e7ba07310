/* relay_msg.c - the key relay messages: checks and the strict codec
 * (qkd/relay_msg.h, docs/relay.md "Key relay messages").
 *
 * Neighbours: lsa.c (the node id rule and the same codec style), etsi014.c
 * (the SAE id rule), keystore.h (the pad's segments name link-key ranges).
 *
 * Every count is one byte, every string one length byte then its
 * characters, every integer fixed-width big-endian: there is exactly one
 * encoding of each message, so a decoder that accepts only in-domain fields
 * gives back its input when re-encoded (the fuzz target checks it). The
 * checks are shared by the encoders and the decoders, so a sender cannot
 * emit what a receiver would refuse. Encoders check before they write and
 * reserve the whole message first, so a refused or failed encode leaves w
 * as it was.
 */
#include <stdbool.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/etsi014.h"
#include "qkd/relay_msg.h"
#include "qkd/secret.h"
#include "relay_wire.h"

/* ---- checks ------------------------------------------------------------ */

int qkd_relay_head_check(const struct qkd_relay_head *h, const char **why)
{
	int rc = QKD_ERR_INVAL;

	*why = NULL;
	if (h->shares < 1 || h->shares > QKD_RELAY_SHARES_MAX) {
		*why = "share count not 1 or 2";
		goto out;
	}
	if (h->share >= h->shares) {
		*why = "share index not below the share count";
		goto out;
	}
	if (h->n_path < 2 || h->n_path > QKD_RELAY_PATH_MAX) {
		*why = "path length not 2..16 nodes";
		goto out;
	}
	if (h->hop >= h->n_path) {
		*why = "hop beyond the path";
		goto out;
	}
	for (size_t i = 0; i < h->n_path; i++) {
		if (!qkd_lsa_node_id_valid(h->path[i])) {
			*why = "a path entry is not a node id";
			goto out;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(h->path[j], h->path[i]) == 0) {
				*why = "a node twice on the path (a loop)";
				goto out;
			}
	}
	rc = QKD_OK;
out:
	return rc;
}

static bool sae_id_valid(const char *s)
{
	return qkd_etsi014_id_valid(s) && strlen(s) <= QKD_LSA_SAE_ID_MAX;
}

/* The pad: 1..QKD_RELAY_PAD_SEGS_MAX segments of at least one bit each,
 * summing to exactly nbits. Each segment is bounded by nbits before it is
 * added, so the sum cannot overflow (nor exceed what a u32 carries). */
static int check_pad(const struct qkd_relay_key_msg *m, const char **why)
{
	uint64_t sum = 0;

	if (m->n_pad < 1 || m->n_pad > QKD_RELAY_PAD_SEGS_MAX) {
		*why = "pad segment count not 1..16";
		return QKD_ERR_INVAL;
	}
	for (size_t i = 0; i < m->n_pad; i++) {
		if (m->pad[i].nbits < 1 || m->pad[i].nbits > m->nbits - sum) {
			*why = "pad segments do not sum to the key length";
			return QKD_ERR_INVAL;
		}
		sum += m->pad[i].nbits;
	}
	if (sum != m->nbits) {
		*why = "pad segments do not sum to the key length";
		return QKD_ERR_INVAL;
	}
	return QKD_OK;
}

static int key_check(const struct qkd_relay_key_msg *m, const char **why)
{
	int rc = qkd_relay_head_check(&m->h, why);

	if (rc != QKD_OK)
		goto out;
	rc = QKD_ERR_INVAL;
	if (m->h.hop < 1)
		*why = "a key message received by the source (hop 0)";
	else if (!sae_id_valid(m->master) || !sae_id_valid(m->slave))
		*why = "an SAE id is not valid";
	else if (m->nbits < 8 || m->nbits > QKD_RELAY_KEY_BITS_MAX || m->nbits % 8 != 0)
		*why = "key length not a multiple of 8 in 8..65536 bits";
	else
		rc = check_pad(m, why);
out:
	return rc;
}

static bool back_type(uint8_t type)
{
	return type == QKD_RELAY_MSG_COMPLETION || type == QKD_RELAY_MSG_FAILURE ||
	       type == QKD_RELAY_MSG_WITHDRAW;
}

/* A withdrawal goes forwards and names the key, not a share. */
static int withdraw_check(const struct qkd_relay_back_msg *m, const char **why)
{
	if (m->h.hop < 1) {
		*why = "a withdrawal received by its source";
		return QKD_ERR_INVAL;
	}
	if (m->code != 0 || m->at != 0 || m->h.attempt != 0 || m->h.share != 0 ||
	    m->h.shares != 1) {
		*why = "a withdrawal with a code, a failing node, an attempt or a share";
		return QKD_ERR_INVAL;
	}
	return QKD_OK;
}

static int back_check(const struct qkd_relay_back_msg *m, uint8_t type, const char **why)
{
	int rc = QKD_ERR_INVAL;

	*why = NULL;
	if (!back_type(type)) {
		*why = "not a completion, failure or withdrawal message type";
		goto out;
	}
	if (qkd_relay_head_check(&m->h, why) != QKD_OK)
		goto out;
	if (type == QKD_RELAY_MSG_WITHDRAW) {
		rc = withdraw_check(m, why);
		goto out;
	}
	if (m->h.hop > m->h.n_path - 2) {
		*why = "a message going back received by the destination";
		goto out;
	}
	if (type == QKD_RELAY_MSG_COMPLETION && (m->code != 0 || m->at != m->h.n_path - 1)) {
		*why = "completion not code 0 from the destination";
		goto out;
	}
	if (type == QKD_RELAY_MSG_FAILURE &&
	    (m->code < 1 || m->code > QKD_RELAY_FAIL_MAX)) {
		*why = "unknown failure code";
		goto out;
	}
	if (m->at < 1 || m->at > m->h.n_path - 1 || m->at <= m->h.hop) {
		*why = "failing node not on the path after the receiver";
		goto out;
	}
	rc = QKD_OK;
out:
	return rc;
}

/* ---- encoding ---------------------------------------------------------- */

static size_t head_size(const struct qkd_relay_head *h)
{
	size_t n = 1 + sizeof h->key_id + 5;

	for (size_t i = 0; i < h->n_path; i++)
		n += 1 + strlen(h->path[i]);
	return n;
}

static void put_head(struct qkd_wbuf *w, const struct qkd_relay_head *h)
{
	qkd_put_u8(w, QKD_RELAY_MSG_VERSION);
	qkd_put_bytes(w, h->key_id, sizeof h->key_id);
	qkd_put_u8(w, h->attempt);
	qkd_put_u8(w, h->share);
	qkd_put_u8(w, h->shares);
	qkd_put_u8(w, h->hop);
	qkd_put_u8(w, h->n_path);
	for (size_t i = 0; i < h->n_path; i++)
		relay_put_id(w, h->path[i]);
}

int qkd_relay_key_encode(const struct qkd_relay_key_msg *m, struct qkd_wbuf *w)
{
	const char *why;
	size_t size;
	int rc = key_check(m, &why);

	if (rc != QKD_OK)
		goto out;
	size = head_size(&m->h) + 1 + strlen(m->master) + 1 + strlen(m->slave) + 4 + 1 +
	       m->n_pad * (8 + 8 + 4) + m->nbits / 8;
	rc = qkd_wbuf_reserve(w, size);
	if (rc != QKD_OK)
		goto out;
	put_head(w, &m->h);
	relay_put_id(w, m->master);
	relay_put_id(w, m->slave);
	qkd_put_u32(w, m->nbits);
	qkd_put_u8(w, (uint8_t)m->n_pad);
	for (size_t i = 0; i < m->n_pad; i++) {
		qkd_put_u64(w, m->pad[i].id);
		qkd_put_u64(w, m->pad[i].offset);
		qkd_put_u32(w, (uint32_t)m->pad[i].nbits);
	}
	qkd_put_bytes(w, m->cipher, m->nbits / 8);
	rc = w->err;
out:
	return rc;
}

int qkd_relay_back_encode(const struct qkd_relay_back_msg *m, uint8_t type, struct qkd_wbuf *w)
{
	const char *why;
	int rc = back_check(m, type, &why);

	if (rc != QKD_OK)
		goto out;
	rc = qkd_wbuf_reserve(w, head_size(&m->h) + 2);
	if (rc != QKD_OK)
		goto out;
	put_head(w, &m->h);
	qkd_put_u8(w, m->code);
	qkd_put_u8(w, m->at);
	rc = w->err;
out:
	return rc;
}

/* ---- decoding ---------------------------------------------------------- */

/* The head after the version byte; a path over its bound stops the reader
 * before any entry is read into the fixed array. */
static void get_head(struct qkd_rbuf *r, struct qkd_relay_head *h)
{
	qkd_get_copy(r, h->key_id, sizeof h->key_id);
	h->attempt = qkd_get_u8(r);
	h->share = qkd_get_u8(r);
	h->shares = qkd_get_u8(r);
	h->hop = qkd_get_u8(r);
	h->n_path = qkd_get_u8(r);
	if (qkd_rbuf_ok(r) && h->n_path > QKD_RELAY_PATH_MAX)
		qkd_rbuf_fail(r, QKD_ERR_RANGE);
	for (size_t i = 0; qkd_rbuf_ok(r) && i < h->n_path; i++)
		relay_get_id(r, h->path[i], sizeof h->path[i]);
}

/* The fields of a key message after the head. */
static void get_key_body(struct qkd_rbuf *r, struct qkd_relay_key_msg *m)
{
	relay_get_id(r, m->master, sizeof m->master);
	relay_get_id(r, m->slave, sizeof m->slave);
	m->nbits = qkd_get_u32(r);
	if (qkd_rbuf_ok(r) && m->nbits > QKD_RELAY_KEY_BITS_MAX)
		qkd_rbuf_fail(r, QKD_ERR_RANGE);
	m->n_pad = qkd_get_u8(r);
	if (qkd_rbuf_ok(r) && m->n_pad > QKD_RELAY_PAD_SEGS_MAX)
		qkd_rbuf_fail(r, QKD_ERR_RANGE);
	for (size_t i = 0; qkd_rbuf_ok(r) && i < m->n_pad; i++) {
		m->pad[i].id = qkd_get_u64(r);
		m->pad[i].offset = qkd_get_u64(r);
		m->pad[i].nbits = qkd_get_u32(r);
	}
	/* only once nbits is known in bound: a failed copy zeroes n bytes */
	if (qkd_rbuf_ok(r))
		qkd_get_copy(r, m->cipher, m->nbits / 8);
}

/* Version first (an unknown version is not parsed further), then the
 * reader's verdict: QKD_OK when the body read cleanly to the last byte. */
static int read_verdict(const struct qkd_rbuf *r, const char **why)
{
	if (qkd_rbuf_done(r))
		return QKD_OK;
	if (qkd_rbuf_ok(r)) {
		*why = "bytes after the end";
		return QKD_ERR_PROTO;
	}
	if (r->err == QKD_ERR_RANGE) {
		*why = "a count or length over its bound";
		return QKD_ERR_RANGE;
	}
	*why = "truncated or malformed";
	return QKD_ERR_PROTO;
}

static bool get_version(struct qkd_rbuf *r, const char **why)
{
	uint8_t v = qkd_get_u8(r);

	if (!qkd_rbuf_ok(r)) {
		*why = "truncated or malformed";
		return false;
	}
	if (v != QKD_RELAY_MSG_VERSION) {
		*why = "unknown relay message version";
		return false;
	}
	return true;
}

int qkd_relay_key_decode(struct qkd_relay_key_msg *out, const uint8_t *p, size_t n,
			 const char **why)
{
	struct qkd_rbuf r;
	int rc = QKD_ERR_PROTO;

	memset(out, 0, sizeof *out);
	*why = NULL;
	qkd_rbuf_init(&r, p, n);
	if (!get_version(&r, why))
		goto out;
	get_head(&r, &out->h);
	get_key_body(&r, out);
	rc = read_verdict(&r, why);
	if (rc != QKD_OK)
		goto out;
	rc = key_check(out, why);
out:
	if (rc != QKD_OK)
		qkd_wipe(out, sizeof *out);	/* the cipher: wiped, not just cleared */
	return rc;
}

int qkd_relay_back_decode(struct qkd_relay_back_msg *out, uint8_t type, const uint8_t *p,
			  size_t n, const char **why)
{
	struct qkd_rbuf r;
	int rc = QKD_ERR_INVAL;

	memset(out, 0, sizeof *out);
	*why = NULL;
	if (!back_type(type)) {
		*why = "not a completion, failure or withdrawal message type";
		goto out;
	}
	rc = QKD_ERR_PROTO;
	qkd_rbuf_init(&r, p, n);
	if (!get_version(&r, why))
		goto out;
	get_head(&r, &out->h);
	out->code = qkd_get_u8(&r);
	out->at = qkd_get_u8(&r);
	rc = read_verdict(&r, why);
	if (rc != QKD_OK)
		goto out;
	rc = back_check(out, type, why);
out:
	if (rc != QKD_OK)
		memset(out, 0, sizeof *out);
	return rc;
}

const char *qkd_relay_fail_name(unsigned code)
{
	switch (code) {
	case QKD_RELAY_FAIL_LINK_DOWN: return "link down";
	case QKD_RELAY_FAIL_NO_KEY: return "no key";
	case QKD_RELAY_FAIL_PAD: return "pad refused";
	case QKD_RELAY_FAIL_UNKNOWN_SAE: return "unknown SAE";
	case QKD_RELAY_FAIL_STORE: return "store failed";
	case QKD_RELAY_FAIL_BUSY: return "busy";
	default: return "unknown";
	}
}
