/* qkd/ike_proposal.h - SA payloads from a tunnel's policy and their
 * selection (RFC 7296 sections 2.7, 3.3; RFC 5282 for ENCR 20).
 *
 * The gateway offers one proposal: for IKE, ENCR 20 (AES-GCM-16) with the
 * tunnel's key length, PRF 5 (HMAC-SHA2-256) and its D-H groups in
 * preference order (first_dh first); for ESP, ENCR 20, ESN none (0) and,
 * for a CREATE_CHILD_SA with PFS, the D-H groups. A responder picks the
 * first proposal of the peer's that fits its own policy, preferring the
 * group the peer's KE payload carries (so no INVALID_KE_PAYLOAD round
 * trip is needed when both sides allow it). Implemented in
 * lib/vpn/ike_proposal.c; used by the state machine (qkd/ike_sa.h).
 * Outputs are caller-owned structs; the SPI is copied in.
 * Errors: QKD_ERR_PROTO (nothing acceptable: NO_PROPOSAL_CHOSEN, or an
 * answer that is not one of our offers), QKD_ERR_INVAL (arguments).
 */
#ifndef QKD_IKE_PROPOSAL_H
#define QKD_IKE_PROPOSAL_H

#include <stdbool.h>
#include <stdint.h>

#include "qkd/ike_pld.h"
#include "qkd/vpn_config.h"

/* What a negotiation settled. */
struct qkd_ike_choice {
	uint8_t protocol;	/* QKD_IKE_PROTO_IKE or _ESP */
	uint8_t num;		/* the proposal number chosen */
	uint16_t key_bits;	/* AES key length: 128 or 256 */
	uint16_t group;		/* D-H group; 0 when none (ESP without PFS) */
	uint8_t spi_len;
	uint8_t spi[QKD_IKE_SPI_MAX];	/* the proposing side's SPI */
};

/* The groups of the tunnel in preference order (first_dh first): up to 2,
 * returns the count. */
size_t qkd_ike_tunnel_groups(const struct qkd_vpn_tunnel *t, uint16_t out[2]);

/* Our offer for an IKE SA. spi: NULL for IKE_SA_INIT (no SPI in the
 * proposal, section 3.3.1), the new SPI (8 octets) in an IKE SA rekey. */
void qkd_ike_offer_ike(const struct qkd_vpn_tunnel *t, const uint8_t *spi, struct qkd_ike_sa *out);
/* Our offer for an ESP Child SA with inbound SPI spi; with_dh adds the
 * tunnel's groups (PFS in CREATE_CHILD_SA). */
void qkd_ike_offer_esp(const struct qkd_vpn_tunnel *t, uint32_t spi, bool with_dh,
		       struct qkd_ike_sa *out);

/* Responder: choose from the peer's offer for protocol (IKE or ESP).
 * need_dh: the exchange carries a KE (IKE always; ESP with PFS), ke_group
 * its group (a hint; 0 when there is none). 0, or QKD_ERR_PROTO
 * (NO_PROPOSAL_CHOSEN). The caller compares out->group with the KE's
 * group and answers INVALID_KE_PAYLOAD when they differ. */
QKD_IKE_WUR int qkd_ike_select(const struct qkd_vpn_tunnel *t, const struct qkd_ike_sa *offer,
			       uint8_t protocol, bool need_dh, uint16_t ke_group,
			       struct qkd_ike_choice *out);

/* Responder: the one-proposal answer for choice c, carrying our SPI
 * (spi_len 0, 4 or 8 octets). */
void qkd_ike_answer(const struct qkd_ike_choice *c, const uint8_t *spi, uint8_t spi_len,
		    struct qkd_ike_sa *out);

/* Initiator: check the responder's answer against what we offered (one
 * proposal, of our protocol, transforms we offered, D-H present exactly
 * when need_dh) and read it into out (out->spi is the responder's SPI). */
QKD_IKE_WUR int qkd_ike_accept(const struct qkd_vpn_tunnel *t, const struct qkd_ike_sa *answer,
			       uint8_t protocol, bool need_dh, struct qkd_ike_choice *out);

#endif
