/* qkd/sa_mgr.h - the gateway's security association database (RFC 4301
 * section 4.4.2): the ESP SAs of every tunnel, inbound by SPI and outbound
 * by tunnel, handed out with checkout and taken back with checkin
 * (issue 14, docs/vpn.md "SA manager").
 *
 * The shape is strongSwan libipsec's ipsec_sa_mgr: an SA that is checked
 * out is locked to its user until it is checked in, so no thread can free
 * an SA another is using, and callers hold no lock of their own. Removal
 * of a checked-out SA waits for its checkin.
 *
 * Make-before-break (RFC 7296 section 2.8): a tunnel has one active
 * outbound SA and up to QKD_SA_MGR_INBOUND_MAX inbound SAs. A rekey
 * installs the new pair next to the old; the new outbound SA becomes
 * active at once (this end initiated the rekey) or when the first packet
 * arrives on its inbound partner (this end responded), or when the old
 * pair is removed. A pair installed on a tunnel with no active outbound
 * SA is active at once (there is nothing to break). The old inbound SA
 * keeps accepting packets until it is removed, so nothing in flight is
 * lost.
 *
 * A caller must hold no checkout of its own while it calls remove, flush
 * or list: they wait for checkins.
 *
 * Files: lib/vpn/sa_mgr.c. Errors: QKD_ERR_INVAL (arguments, an SPI in
 * use), QKD_ERR_RANGE (the tunnel holds QKD_SA_MGR_INBOUND_MAX inbound
 * SAs already), QKD_ERR_NOKEY (no such SA), QKD_ERR_NOMEM.
 */
#ifndef QKD_SA_MGR_H
#define QKD_SA_MGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/esp.h"

#define QKD_SA_MGR_INBOUND_MAX 4	/* per tunnel: current, rekeyed, and two in flight */

struct qkd_sa_mgr;

/* An SA manager for tunnels 0 .. ntunnels-1. */
__attribute__((warn_unused_result))
int qkd_sa_mgr_new(size_t ntunnels, struct qkd_sa_mgr **out);
/* Frees every SA (wiping it) and the manager; nothing may be checked out.
 * Accepts NULL. */
void qkd_sa_mgr_free(struct qkd_sa_mgr *m);

/* Install a pair for tunnel t; the manager takes ownership of in and out
 * (both freed on error too). activate: the new outbound SA is used at
 * once; otherwise it waits for the first packet on `in`
 * (qkd_sa_mgr_checkout_in activates it) or for qkd_sa_mgr_remove of the
 * active pair. */
__attribute__((warn_unused_result))
int qkd_sa_mgr_install(struct qkd_sa_mgr *m, size_t t, struct qkd_esp_sa *in,
		       struct qkd_esp_sa *out, bool activate);

/* Remove the pair whose inbound SPI is spi_in (its outbound partner goes
 * with it). It is hidden from lookups at once; if its outbound SA was
 * active, the newest remaining pair's (pending or older) becomes active,
 * and with none the tunnel has no outbound SA. Then waits for both SAs to
 * be checked in, and wipes and frees them. QKD_ERR_NOKEY: no such pair
 * (or it is being removed already). */
__attribute__((warn_unused_result))
int qkd_sa_mgr_remove(struct qkd_sa_mgr *m, uint32_t spi_in);
/* Remove every SA of tunnel t (its IKE SA went away). */
void qkd_sa_mgr_flush(struct qkd_sa_mgr *m, size_t t);

/* The inbound SA with this SPI, locked to the caller, and its tunnel (t
 * may be NULL); NULL when none. The first checkout of an SA whose partner
 * is pending makes the partner active: the peer has moved to the new
 * pair. An SA checked out by another caller is waited for. */
struct qkd_esp_sa *qkd_sa_mgr_checkout_in(struct qkd_sa_mgr *m, uint32_t spi, size_t *t);
/* The active outbound SA of tunnel t, locked to the caller; NULL when the
 * tunnel has none. */
struct qkd_esp_sa *qkd_sa_mgr_checkout_out(struct qkd_sa_mgr *m, size_t t);
void qkd_sa_mgr_checkin(struct qkd_sa_mgr *m, struct qkd_esp_sa *sa);

/* One SA as `qkd vpn status` shows it. */
struct qkd_sa_info {
	size_t tunnel;
	enum qkd_esp_dir dir;
	uint32_t spi;
	bool active;			/* outbound: the one in use */
	uint64_t bytes, packets;
	enum qkd_esp_state state;
};
/* Up to cap SAs of tunnel t (all tunnels when t == SIZE_MAX) into out, in
 * installation order, each pair inbound then outbound; returns how many
 * there are (may exceed cap). An SA's counters are read while it is
 * checked in (this waits for a checkout to end). */
size_t qkd_sa_mgr_list(struct qkd_sa_mgr *m, size_t t, uint64_t now, struct qkd_sa_info *out,
		       size_t cap);

#endif
