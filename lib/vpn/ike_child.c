/* ike_child.c - the Child SA pairs of a tunnel: their keys from KEYMAT
 * (RFC 7296 section 2.17, ESP's key then salt, RFC 4106 section 8.1), the
 * table of installed pairs, handing a pair to the data plane
 * (ops->child_install, wiping it after) and the queue of pairs to delete
 * at the peer (sent by ike_sa_info.c). Used by the IKE_AUTH and
 * CREATE_CHILD_SA exchanges (ike_sa_auth.c, ike_sa_child.c). */
#include <string.h>

#include "ike_sa_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

int ike_child_keys(struct qkd_ike *ike, const uint8_t sk_d[QKD_IKE_PRF_LEN],
		   struct qkd_ike_span gir, struct qkd_ike_span ni, struct qkd_ike_span nr,
		   bool exch_initiator, struct qkd_ike_child *c)
{
	uint8_t km[2 * QKD_IKE_KEYMAT_MAX];
	size_t kl = ike->t->esp.key_bits / 8 + QKD_IKE_GCM_SALT_LEN;
	int rc = qkd_ike_child_keymat(sk_d, gir, ni, nr, km, 2 * kl);

	if (rc == QKD_OK) {	/* initiator-to-responder first (section 2.17) */
		memcpy(exch_initiator ? c->key_out : c->key_in, km, kl);
		memcpy(exch_initiator ? c->key_in : c->key_out, km + kl, kl);
		c->key_len = kl;
		c->initiator = exch_initiator;
	}
	qkd_wipe(km, sizeof km);
	return rc;
}

struct ike_child *ike_child_by_in(struct qkd_ike *ike, uint32_t spi_in)
{
	for (size_t i = 0; i < IKE_CHILDREN; i++)
		if (ike->child[i].used && ike->child[i].spi_in == spi_in)
			return &ike->child[i];
	return NULL;
}

struct ike_child *ike_child_by_out(struct qkd_ike *ike, uint32_t spi_out)
{
	for (size_t i = 0; i < IKE_CHILDREN; i++)
		if (ike->child[i].used && ike->child[i].spi_out == spi_out)
			return &ike->child[i];
	return NULL;
}

struct ike_child *ike_child_current(struct qkd_ike *ike)
{
	struct ike_child *best = NULL;

	for (size_t i = 0; i < IKE_CHILDREN; i++)
		if (ike->child[i].used && (best == NULL || ike->child[i].at >= best->at))
			best = &ike->child[i];
	return best;
}

void ike_child_forget(struct qkd_ike *ike, uint32_t spi_in)
{
	struct ike_child *c = ike_child_by_in(ike, spi_in);

	if (c != NULL)
		memset(c, 0, sizeof *c);
}

void ike_children_delete_all(struct qkd_ike *ike)
{
	for (size_t i = 0; i < IKE_CHILDREN; i++) {
		if (ike->child[i].used)
			ike->ops->child_delete(ike->arg, ike->child[i].spi_in, ike->child[i].spi_out);
		memset(&ike->child[i], 0, sizeof ike->child[i]);
	}
}

uint32_t ike_new_spi(void)
{
	uint32_t v;

	do
		ike_rand(&v, sizeof v);
	while (v < 256);	/* 1..255 are reserved (RFC 4303 section 2.1) */
	return v;
}

void ike_queue_delete(struct qkd_ike *ike, uint32_t spi_in, uint32_t spi_out, bool installed,
		      double at)
{
	for (size_t i = 0; i < IKE_DELETES; i++) {
		if (!ike->del[i].used) {
			ike->del[i] = (struct ike_del){ true, installed, spi_in, spi_out, at };
			return;
		}
	}
	if (installed) {	/* no room: delete locally now; the peer's pair times out */
		ike->ops->child_delete(ike->arg, spi_in, spi_out);
		ike_child_forget(ike, spi_in);
	}
}

/* Hand a pair to the data plane; the struct is wiped after the call. A
 * refused pair is deleted at the peer. The oldest slot makes room. */
void ike_child_install(struct qkd_ike *ike, struct qkd_ike_child *c, double now)
{
	struct ike_child *slot = NULL;
	int rc;

	for (size_t i = 0; i < IKE_CHILDREN && slot == NULL; i++)
		if (!ike->child[i].used)
			slot = &ike->child[i];
	if (slot == NULL) {
		slot = &ike->child[0];
		for (size_t i = 1; i < IKE_CHILDREN; i++)
			if (ike->child[i].at < slot->at)
				slot = &ike->child[i];
		ike->ops->child_delete(ike->arg, slot->spi_in, slot->spi_out);
	}
	rc = ike->ops->child_install(ike->arg, c);
	memset(slot, 0, sizeof *slot);
	if (rc != QKD_OK) {
		ike_log(ike, QKD_LOG_ERROR, "Child SA %08x refused by the data plane", c->spi_in);
		ike_queue_delete(ike, c->spi_in, c->spi_out, false, now);
	} else {
		*slot = (struct ike_child){ .used = true, .spi_in = c->spi_in,
					    .spi_out = c->spi_out, .qkd = c->qkd, .at = now,
					    .ts_l = c->ts_local, .ts_r = c->ts_remote };
		memcpy(slot->key_id, c->key_id, sizeof slot->key_id);
		ike->st.child_up++;
		ike_event(ike, QKD_IKE_EV_CHILD_UP, c->qkd ? c->key_id : "no QKD key");
	}
	qkd_wipe(c, sizeof *c);
}
