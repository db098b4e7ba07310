/* qkd/vpn_config.h - the configuration of one `qkd vpn` gateway
 * (docs/vpn.md "Configuration"; issue 14).
 *
 * libconfig syntax, like `qkd node`'s (docs/config.md), read by the same
 * table-driven machinery. One gateway: its UDP address (IKE and ESP in UDP
 * share port 4500, RFC 3948), its TUN device, the ETSI GS QKD 014 key
 * managers it is an SAE of, and its tunnels, each with its own policy as
 * BBN's SPD had: traffic selectors, algorithms with their key sizes, the
 * rekey interval and lifetimes, the key manager and the peer's SAE ID, the
 * QKD policy (required, preferred, off) and how long to wait for QKD key.
 * Parsing never touches the network; it checks every value's domain, the
 * files named, and the tunnels against each other, and reports the first
 * problem as "FILE:LINE: what".
 */
#ifndef QKD_VPN_CONFIG_H
#define QKD_VPN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/log.h"
#include "qkd/node_config.h"
#include "qkd/tun.h"

#define QKD_VPN_TUNNELS_MAX 64
#define QKD_VPN_KMES_MAX 8
#define QKD_VPN_TS_MAX 8		/* prefixes per side of a tunnel */
#define QKD_VPN_URL_MAX 256
#define QKD_VPN_PSK_MIN_BYTES 32	/* a PSK file shorter than this is refused */

/* A traffic selector as a prefix (the IKE TS payload carries it as an
 * address range, RFC 7296 section 3.13.1): IPv4 or IPv6, host bits zero. */
struct qkd_vpn_prefix {
	uint8_t family;			/* 4 or 6 */
	uint8_t len;			/* prefix length: 0..32 or 0..128 */
	uint8_t addr[16];		/* network order; IPv4 in the first 4 bytes */
};

/* AES-GCM with a 16-byte ICV (RFC 4106 for ESP, RFC 5282 for IKE): the
 * key size is the algorithm's only choice, as the seed's SPD had it. */
struct qkd_vpn_aead {
	unsigned key_bits;		/* 128 or 256 */
};

/* One limit of an SA with its soft (rekey) and hard (delete) values; 0 is
 * no limit. soft < hard when both are set. */
struct qkd_vpn_limit {
	uint64_t soft, hard;
};

enum qkd_vpn_qkd_policy {
	QKD_VPN_QKD_REQUIRED = 0,	/* no QKD key, no SA */
	QKD_VPN_QKD_PREFERRED = 1,	/* plain IKEv2 after key_wait, logged loudly */
	QKD_VPN_QKD_OFF = 2,		/* plain IKEv2 */
};

#define QKD_VPN_DH_X25519 0x01u		/* group 31 */
#define QKD_VPN_DH_MODP2048 0x02u	/* group 14 */

struct qkd_vpn_kme {
	char name[QKD_NODE_NAME_MAX];
	unsigned line;
	char url[QKD_VPN_URL_MAX];	/* https://HOST:PORT, the ETSI 014 base */
	char ca[QKD_NODE_PATH_MAX];	/* PEM: the KME's CA */
	char cert[QKD_NODE_PATH_MAX];	/* PEM: this gateway's SAE certificate */
	char key[QKD_NODE_PATH_MAX];	/* PEM: its private key */
};

struct qkd_vpn_tunnel {
	char name[QKD_NODE_NAME_MAX];	/* unique */
	unsigned line;
	struct qkd_node_addr peer;	/* the peer gateway's UDP address */
	bool initiate;			/* start IKE (default), or only answer */
	char local_id[QKD_NODE_NAME_MAX], remote_id[QKD_NODE_NAME_MAX];	/* IKE identities */
	char psk[QKD_NODE_PATH_MAX];	/* file: IKE_AUTH's preshared key */
	size_t n_local_ts, n_remote_ts;
	struct qkd_vpn_prefix local_ts[QKD_VPN_TS_MAX], remote_ts[QKD_VPN_TS_MAX];
	struct qkd_vpn_aead esp, ike;
	unsigned dh;			/* QKD_VPN_DH_*, in preference order: first_dh */
	unsigned first_dh;		/* the group the initiator's KE carries */
	double rekey_s;			/* Child SA rekey: fresh QKD key (RFC 9867), default 60 */
	double ike_rekey_s;		/* IKE SA rekey, default 14400 */
	struct qkd_vpn_limit seconds, kbytes, packets;	/* Child SA lifetimes */
	enum qkd_vpn_qkd_policy qkd;
	char kme[QKD_NODE_NAME_MAX];	/* a kmes entry (qkd not off) */
	size_t kme_index;
	char peer_sae[QKD_NODE_SAE_ID_MAX + 1];	/* the peer gateway's SAE ID */
	double key_wait_s;		/* wait for QKD key this long (default 300) */
	/* How long an initiator holds a fresh QKD key before it names it to
	 * the peer (default 0): time for a peer that cannot fetch keys itself
	 * (strongSwan, fed by a script) to be given it. */
	double ppk_lead_s;
	double dpd_s;			/* liveness check after this much silence (default 30) */
};

struct qkd_vpn_config {
	char name[QKD_NODE_NAME_MAX];
	struct qkd_node_addr listen;	/* UDP: IKE (non-ESP marker) and ESP, RFC 3948 */
	char status[QKD_NODE_PATH_MAX];	/* unix socket for `qkd vpn status` */
	char tun[QKD_TUN_NAME_MAX + 1];	/* default "qkd0" */
	unsigned mtu;			/* of the TUN device, default 1400 */
	char log_file[QKD_NODE_PATH_MAX];
	enum qkd_log_level log_level;
	struct qkd_node_addr metrics;	/* sa.len 0: off */
	size_t n_kmes, n_tunnels;
	struct qkd_vpn_kme kmes[QKD_VPN_KMES_MAX];
	struct qkd_vpn_tunnel tunnels[QKD_VPN_TUNNELS_MAX];
};

/* Parse path into *cfg (caller-owned; fully set on success). On failure
 * QKD_ERR_INVAL (or QKD_ERR_IO for an unreadable file) and one line
 * "PATH:LINE: what is wrong" in err[0..errlen). Relative paths are taken
 * from the file's directory and stored resolved. */
__attribute__((warn_unused_result))
int qkd_vpn_config_load(const char *path, struct qkd_vpn_config *cfg, char *err, size_t errlen);

/* "192.168.1.0/24", "fd00::/64", or an address alone (a /32 or /128).
 * 0, or QKD_ERR_INVAL with *why for a bad address, a length out of range
 * or host bits set. */
__attribute__((warn_unused_result))
int qkd_vpn_prefix_parse(const char *s, struct qkd_vpn_prefix *out, const char **why);

/* Whether a and b share any address. */
bool qkd_vpn_prefix_overlap(const struct qkd_vpn_prefix *a, const struct qkd_vpn_prefix *b);

/* Whether addr (of family, 4 or 6; IPv4 in its first 4 bytes) lies in p. */
bool qkd_vpn_prefix_contains(const struct qkd_vpn_prefix *p, uint8_t family,
			     const uint8_t addr[16]);

const char *qkd_vpn_qkd_policy_name(enum qkd_vpn_qkd_policy p);

#endif
