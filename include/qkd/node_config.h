/* qkd/node_config.h - the configuration of one `qkd node` (docs/config.md).
 *
 * The file is libconfig syntax. One node, any number of links; each link is
 * one end (alice or bob) of a QKD link with its own classical channel, fiber,
 * optical parameters, protocol settings, key store and bootstrap
 * authentication key. Parsing never touches the network; it checks every
 * value's domain and that the files it names exist (the key file readable and
 * long enough), and reports the first problem as "FILE:LINE: what".
 */
#ifndef QKD_NODE_CONFIG_H
#define QKD_NODE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/engine.h"
#include "qkd/log.h"
#include "qkd/netaddr.h"
#include "qkd/optical.h"

#define QKD_NODE_NAME_MAX 64
#define QKD_NODE_PATH_MAX 512
#define QKD_NODE_LINKS_MAX 16

enum qkd_link_role { QKD_ROLE_ALICE, QKD_ROLE_BOB };

/* "A.B.C.D:PORT", "[IPV6]:PORT" or "localhost:PORT", port 1..65535
 * (qkd/netaddr.h): the parsed address, and its canonical text for messages,
 * logs and `qkd status` (localhost is printed as 127.0.0.1). */
struct qkd_node_addr {
	struct qkd_netaddr sa;
	char text[QKD_NETADDR_STR_MAX];		/* "127.0.0.1:7101", "[::1]:7101" */
};

struct qkd_link_config {
	char name[QKD_NODE_NAME_MAX];		/* unique within the node */
	unsigned line;				/* of the link's group in the file (for messages) */
	enum qkd_link_role role;
	/* Classical channel: Alice listens, Bob connects. */
	struct qkd_node_addr classical;
	/* Fiber: Bob listens, Alice connects (to Bob, or to a qkd eve in between). */
	struct qkd_node_addr fiber;
	struct qkd_link_params optical;		/* DESIGN.md s3; seed and eve unused */
	uint64_t round_pulses;			/* pulses per round (one key block) */
	struct qkd_engine_config engine;	/* ec, defense, confidence, abort_qber, ... */
	char store[QKD_NODE_PATH_MAX];		/* this link's SQLite key store */
	char auth_key[QKD_NODE_PATH_MAX];	/* bootstrap authentication key file */
	/* Authentication key kept in reserve: each round refills the pool from
	 * its own key up to this many bits before storing the rest. */
	uint64_t auth_reserve_bits;
	/* The node at the far end: its `node.id`, checked in the handshake's
	 * authenticated SYNC ("" in the file's absence: any node but this one). */
	char peer[QKD_NODE_NAME_MAX];
	char node_id[QKD_NODE_NAME_MAX];	/* this node's id (node.id), for the SYNC */
};

/* The key manager (ETSI GS QKD 014 over mutual TLS, docs/kme.md): an
 * optional `kme` group of the file. */
#define QKD_NODE_SAE_ID_MAX 64			/* as QKD_ETSI014_ID_MAX */
#define QKD_NODE_SAES_MAX 64

/* One SAE the KME knows. Local: attached to this node, identified by the
 * subject CN of its client certificate (link -1). Remote: attached to the
 * KME kme_id at the other end of link (an index into links). */
struct qkd_node_sae {
	char id[QKD_NODE_SAE_ID_MAX + 1];	/* [A-Za-z0-9._~-], unique */
	char cn[QKD_NODE_SAE_ID_MAX + 1];	/* local: certificate CN (default: id) */
	int link;				/* remote: index into links; local: -1 */
	char kme_id[QKD_NODE_SAE_ID_MAX + 1];	/* remote: the peer's KME ID */
	unsigned line;
};

struct qkd_node_kme {
	bool enabled;				/* the group is present */
	unsigned line;
	char id[QKD_NODE_SAE_ID_MAX + 1];	/* this KME's ID */
	struct qkd_node_addr listen;		/* HTTPS address, IPv4 or IPv6 */
	char cert[QKD_NODE_PATH_MAX];		/* PEM: server certificate */
	char key[QKD_NODE_PATH_MAX];		/* PEM: its private key */
	char ca[QKD_NODE_PATH_MAX];		/* PEM: CA of the SAE certificates */
	uint32_t key_size, min_key_size, max_key_size;	/* bits, multiples of 8 */
	uint32_t max_keys_per_request;
	unsigned max_connections;		/* 0: server default */
	unsigned per_address_connections;	/* of one IP address; 0: server default */
	unsigned handshake_timeout_s;		/* until a known SAE asks; 0: server default */
	unsigned idle_timeout_s;		/* 0: server default */
	unsigned sync_timeout_s;		/* enc_keys waits this long for the peer */
	unsigned key_ttl_s;			/* a ready key expires unfetched; 0: never */
	size_t nsaes;
	struct qkd_node_sae saes[QKD_NODE_SAES_MAX];
};

/* The relay group (docs/relay.md "Configuration"): the key relay's policy
 * and where this node keeps the keys relayed to its SAEs. */
struct qkd_node_relay {
	unsigned line;			/* of the group; 0: absent, defaults */
	unsigned paths;			/* 1, or 2: two XOR shares on node-disjoint paths */
	double timeout_s;		/* the source gives up on a key after this */
	char store[QKD_NODE_PATH_MAX];	/* relayed keys (default NAME-relay.db beside the file) */
};

struct qkd_node_config {
	char name[QKD_NODE_NAME_MAX];
	/* The node's identity in a network: sent in every link's SYNC and
	 * named by its peers' `peer`. Defaults to name. */
	char id[QKD_NODE_NAME_MAX];
	char status[QKD_NODE_PATH_MAX];		/* unix socket for `qkd status` */
	char log_file[QKD_NODE_PATH_MAX];	/* "" = stderr */
	enum qkd_log_level log_level;
	/* Prometheus metrics over plain HTTP (docs/metrics.md): the address,
	 * IPv4 or IPv6, unlike every other address of the file; metrics.sa.len
	 * 0: off (the default). metrics_line: where the file sets it. */
	struct qkd_node_addr metrics;
	unsigned metrics_line;
	size_t nlinks;
	struct qkd_link_config links[QKD_NODE_LINKS_MAX];
	struct qkd_node_kme kme;
	struct qkd_node_relay relay;
};

/* Parse path into *cfg (caller-owned, fully initialized on success). On
 * failure returns QKD_ERR_INVAL (or QKD_ERR_IO when the file cannot be read)
 * and writes one line "PATH:LINE: what is wrong" (LINE omitted when libconfig
 * gives none) into err[0..errlen). Relative paths inside the file are taken
 * relative to the config file's directory and stored resolved. */
__attribute__((warn_unused_result))
int qkd_node_config_load(const char *path, struct qkd_node_config *cfg, char *err, size_t errlen);

const char *qkd_link_role_name(enum qkd_link_role r);

#endif
