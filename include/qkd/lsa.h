/* qkd/lsa.h - a node's link-state advertisement (LSA) and its wire format.
 *
 * A relay node floods one LSA describing its own links (neighbour, state,
 * QBER, key stored and available, key rate) and the SAE ids attached to its
 * key manager (DESIGN.md section 7, docs/relay.md "Link-state
 * advertisement"). The struct has fixed bounds so a decoded LSA needs no
 * allocation; the codec is strict so that what decodes re-encodes to the
 * same bytes.
 */
#ifndef QKD_LSA_H
#define QKD_LSA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/node_config.h"
#include "qkd/wire.h"


#define QKD_LSA_VERSION 1
#define QKD_LSA_LINKS_MAX 32			/* links one node advertises */
#define QKD_LSA_SAES_MAX QKD_NODE_SAES_MAX	/* SAEs on one key manager */
#define QKD_LSA_SAE_ID_MAX QKD_NODE_SAE_ID_MAX	/* characters, as ETSI 014 */
/* Largest encoding: header, then every link and SAE at its longest. */
#define QKD_LSA_WIRE_MAX (1 + 1 + (QKD_NODE_NAME_MAX - 1) + 8 + 1 + \
			  QKD_LSA_LINKS_MAX * (1 + (QKD_NODE_NAME_MAX - 1) + 1 + 8 * 4) + \
			  1 + QKD_LSA_SAES_MAX * (1 + QKD_LSA_SAE_ID_MAX))

enum qkd_lsa_state {
	QKD_LSA_UP = 0,		/* authenticated and making key */
	QKD_LSA_DOWN = 1,	/* connection or fiber lost */
	QKD_LSA_ALARMED = 2,	/* QBER over the threshold: abandoned */
};

struct qkd_lsa_link {
	char neighbour[QKD_NODE_NAME_MAX];	/* the far end's node id */
	uint8_t state;				/* enum qkd_lsa_state */
	double qber;				/* last rounds, in [0, 1] */
	uint64_t stored_bits;			/* key held for this link */
	uint64_t available_bits;		/* of which free to relay, <= stored */
	uint64_t rate_bps;			/* secret key rate, bits per second */
};

struct qkd_lsa {
	char origin[QKD_NODE_NAME_MAX];		/* the advertising node's id */
	uint64_t seq;				/* newer wins (lsdb.h) */
	size_t n_links;
	struct qkd_lsa_link links[QKD_LSA_LINKS_MAX];
	size_t n_saes;
	char saes[QKD_LSA_SAES_MAX][QKD_LSA_SAE_ID_MAX + 1];
};

/* True when s is a node id as the node config accepts it: 1 to
 * QKD_NODE_NAME_MAX - 1 of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool qkd_lsa_node_id_valid(const char *s);

/* Checks every field of lsa: ids valid, counts within bounds, states known,
 * QBER in [0, 1], available <= stored, no neighbour twice nor the origin
 * itself, no SAE id twice. 0 or QKD_ERR_INVAL, *why (static) says which. */
__attribute__((warn_unused_result))
int qkd_lsa_check(const struct qkd_lsa *lsa, const char **why);

/* Appends lsa to w (docs/relay.md "Wire format"); refuses (QKD_ERR_INVAL,
 * nothing written) an LSA that qkd_lsa_check refuses. */
int qkd_lsa_encode(const struct qkd_lsa *lsa, struct qkd_wbuf *w);

/* Decodes exactly n bytes at p into *out (fully overwritten, also on
 * error). QKD_ERR_PROTO for a truncated, over-long or non-canonical
 * message, QKD_ERR_RANGE for a count over its bound, QKD_ERR_INVAL for a
 * field qkd_lsa_check refuses; *why (static) says which. */
__attribute__((warn_unused_result))
int qkd_lsa_decode(struct qkd_lsa *out, const uint8_t *p, size_t n, const char **why);

/* The bytes of lsa that hold anything: everything before saes, and the
 * n_saes SAE ids in use (n_saes <= QKD_LSA_SAES_MAX). The database keeps
 * LSAs this compactly (qkd/lsdb.h), so a held LSA has no saes[] beyond
 * n_saes: copy one with qkd_lsa_copy, never by assignment. */
size_t qkd_lsa_size(const struct qkd_lsa *lsa);
/* *dst = the qkd_lsa_size bytes of src, the rest of dst zeroed. */
void qkd_lsa_copy(struct qkd_lsa *dst, const struct qkd_lsa *src);

/* The link to neighbour in lsa, or NULL. */
const struct qkd_lsa_link *qkd_lsa_find_link(const struct qkd_lsa *lsa, const char *neighbour);

#endif
