/* lsa.c - a node's link-state advertisement: checks and the strict codec
 * (qkd/lsa.h, docs/relay.md "Link-state advertisement").
 *
 * Every count is one byte and every string one length byte then its
 * characters, so there is exactly one encoding of each LSA: a decoder that
 * accepts only in-bound, valid fields gives back bytes identical to its
 * input when re-encoded (the fuzz target checks it).
 */
#include <math.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/etsi014.h"
#include "qkd/lsa.h"
#include "relay_wire.h"

bool qkd_lsa_node_id_valid(const char *s)
{
	size_t n;

	if (s == NULL || s[0] == '\0' || s[0] == '.' || s[0] == '-')
		return false;
	for (n = 0; s[n] != '\0'; n++) {
		char c = s[n];

		if (n >= QKD_NODE_NAME_MAX - 1)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int check_link(const struct qkd_lsa *lsa, size_t i, const char **why)
{
	const struct qkd_lsa_link *l = &lsa->links[i];

	if (!qkd_lsa_node_id_valid(l->neighbour))
		*why = "a neighbour id is not a node id";
	else if (strcmp(l->neighbour, lsa->origin) == 0)
		*why = "a link to the origin itself";
	else if (l->state > QKD_LSA_ALARMED)
		*why = "unknown link state";
	else if (!(l->qber >= 0.0 && l->qber <= 1.0))	/* NaN fails too */
		*why = "QBER outside [0, 1]";
	else if (l->available_bits > l->stored_bits)
		*why = "more key available than stored";
	else {
		for (size_t j = 0; j < i; j++)
			if (strcmp(lsa->links[j].neighbour, l->neighbour) == 0) {
				*why = "a neighbour listed twice";
				return QKD_ERR_INVAL;
			}
		return QKD_OK;
	}
	return QKD_ERR_INVAL;
}

static int check_sae(const struct qkd_lsa *lsa, size_t i, const char **why)
{
	if (!qkd_etsi014_id_valid(lsa->saes[i]) ||
	    strlen(lsa->saes[i]) > QKD_LSA_SAE_ID_MAX) {
		*why = "an SAE id is not valid";
		return QKD_ERR_INVAL;
	}
	for (size_t j = 0; j < i; j++)
		if (strcmp(lsa->saes[j], lsa->saes[i]) == 0) {
			*why = "an SAE id listed twice";
			return QKD_ERR_INVAL;
		}
	return QKD_OK;
}

int qkd_lsa_check(const struct qkd_lsa *lsa, const char **why)
{
	int rc = QKD_ERR_INVAL;

	*why = NULL;
	if (!qkd_lsa_node_id_valid(lsa->origin)) {
		*why = "origin is not a node id";
		goto out;
	}
	if (lsa->n_links > QKD_LSA_LINKS_MAX || lsa->n_saes > QKD_LSA_SAES_MAX) {
		*why = "too many links or SAEs";
		goto out;
	}
	for (size_t i = 0; i < lsa->n_links; i++)
		if (check_link(lsa, i, why) != QKD_OK)
			goto out;
	for (size_t i = 0; i < lsa->n_saes; i++)
		if (check_sae(lsa, i, why) != QKD_OK)
			goto out;
	rc = QKD_OK;
out:
	return rc;
}

int qkd_lsa_encode(const struct qkd_lsa *lsa, struct qkd_wbuf *w)
{
	const char *why;
	int rc = qkd_lsa_check(lsa, &why);

	if (rc != QKD_OK)
		goto out;
	qkd_put_u8(w, QKD_LSA_VERSION);
	relay_put_id(w, lsa->origin);
	qkd_put_u64(w, lsa->seq);
	qkd_put_u8(w, (uint8_t)lsa->n_links);
	for (size_t i = 0; i < lsa->n_links; i++) {
		const struct qkd_lsa_link *l = &lsa->links[i];

		relay_put_id(w, l->neighbour);
		qkd_put_u8(w, l->state);
		qkd_put_double(w, l->qber);
		qkd_put_u64(w, l->stored_bits);
		qkd_put_u64(w, l->available_bits);
		qkd_put_u64(w, l->rate_bps);
	}
	qkd_put_u8(w, (uint8_t)lsa->n_saes);
	for (size_t i = 0; i < lsa->n_saes; i++)
		relay_put_id(w, lsa->saes[i]);
	rc = w->err;
out:
	return rc;
}

static void get_link(struct qkd_rbuf *r, struct qkd_lsa_link *l)
{
	relay_get_id(r, l->neighbour, sizeof l->neighbour);
	l->state = qkd_get_u8(r);
	l->qber = qkd_get_double(r);
	l->stored_bits = qkd_get_u64(r);
	l->available_bits = qkd_get_u64(r);
	l->rate_bps = qkd_get_u64(r);
}

static const char *read_why(int err)
{
	return err == QKD_ERR_RANGE ? "a count or id length over its bound"
				    : "truncated or malformed";
}

int qkd_lsa_decode(struct qkd_lsa *out, const uint8_t *p, size_t n, const char **why)
{
	struct qkd_rbuf r;
	int rc = QKD_ERR_PROTO;

	memset(out, 0, sizeof *out);
	*why = NULL;
	qkd_rbuf_init(&r, p, n);
	if (qkd_get_u8(&r) != QKD_LSA_VERSION && qkd_rbuf_ok(&r)) {
		*why = "unknown LSA version";
		goto out;
	}
	relay_get_id(&r, out->origin, sizeof out->origin);
	out->seq = qkd_get_u64(&r);
	out->n_links = qkd_get_u8(&r);
	if (qkd_rbuf_ok(&r) && out->n_links > QKD_LSA_LINKS_MAX)
		qkd_rbuf_fail(&r, QKD_ERR_RANGE);
	for (size_t i = 0; qkd_rbuf_ok(&r) && i < out->n_links; i++)
		get_link(&r, &out->links[i]);
	out->n_saes = qkd_get_u8(&r);
	if (qkd_rbuf_ok(&r) && out->n_saes > QKD_LSA_SAES_MAX)
		qkd_rbuf_fail(&r, QKD_ERR_RANGE);
	for (size_t i = 0; qkd_rbuf_ok(&r) && i < out->n_saes; i++)
		relay_get_id(&r, out->saes[i], sizeof out->saes[i]);
	if (!qkd_rbuf_done(&r)) {
		rc = r.err == QKD_ERR_RANGE ? QKD_ERR_RANGE : QKD_ERR_PROTO;
		*why = qkd_rbuf_ok(&r) ? "bytes after the end" : read_why(r.err);
		goto out;
	}
	rc = qkd_lsa_check(out, why);
out:
	if (rc != QKD_OK)
		memset(out, 0, sizeof *out);
	return rc;
}

const struct qkd_lsa_link *qkd_lsa_find_link(const struct qkd_lsa *lsa, const char *neighbour)
{
	for (size_t i = 0; i < lsa->n_links && i < QKD_LSA_LINKS_MAX; i++)
		if (strcmp(lsa->links[i].neighbour, neighbour) == 0)
			return &lsa->links[i];
	return NULL;
}

size_t qkd_lsa_size(const struct qkd_lsa *lsa)
{
	size_t n = lsa->n_saes <= QKD_LSA_SAES_MAX ? lsa->n_saes : QKD_LSA_SAES_MAX;

	return offsetof(struct qkd_lsa, saes) + n * sizeof lsa->saes[0];
}

void qkd_lsa_copy(struct qkd_lsa *dst, const struct qkd_lsa *src)
{
	size_t n = qkd_lsa_size(src);

	memcpy(dst, src, n);
	memset((uint8_t *)dst + n, 0, sizeof *dst - n);
}
