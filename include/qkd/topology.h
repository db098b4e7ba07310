/* qkd/topology.h - a relay network described as a file: its nodes, the SAEs
 * attached to each, and its links with their optics, distance, latency and
 * key (docs/netsim.md "The topology file").
 *
 * `qkd netsim` reads one (qkd/netsim.h) and the examples of examples/relay/
 * are written in it. The parser is strict and bounded (1 MiB, 100000 lines)
 * and names the line of the first error; it never prints. Generated
 * topologies (ring, grid, random) come out as the same struct and can be
 * written back in the same format.
 */
#ifndef QKD_TOPOLOGY_H
#define QKD_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/lsa.h"
#include "qkd/optical.h"

#define QKD_TOPO_BYTES_MAX ((size_t)1 << 20)	/* a file over this is refused */
#define QKD_TOPO_LINES_MAX 100000
#define QKD_TOPO_NODE_SAES_MAX QKD_LSA_SAES_MAX	/* SAEs on one node */
#define QKD_TOPO_POOL_DEFAULT 1000000		/* pool_bits */
#define QKD_TOPO_KM_DEFAULT 10.0
/* The default one-way latency: light in fiber (5 us per km) plus the
 * processing of one hop. */
#define QKD_TOPO_MS_PER_KM 0.005
#define QKD_TOPO_MS_PER_HOP 0.1
/* The rate estimate's source (docs/netsim.md "Key rate"): the same signal
 * intensity and error-correction efficiency as qkd sweep's asymptotic
 * decoy-state curve (docs/sweep.md). */
#define QKD_TOPO_RATE_MU 0.5
#define QKD_TOPO_RATE_F_EC 1.16

struct qkd_topo_node {
	char id[QKD_NODE_NAME_MAX];
	size_t n_saes;
	char (*saes)[QKD_LSA_SAE_ID_MAX + 1];	/* n_saes ids; owned by the topology */
	size_t n_links;				/* links at this node */
};

struct qkd_topo_link {
	size_t a, b;			/* node indices: a is the link's Alice, b its Bob */
	enum qkd_channel_kind channel;
	double km;			/* fiber length, or the free-space path */
	bool day;			/* free space: daylight background */
	bool latency_set, rate_set;	/* given in the file, else from the defaults */
	double latency_ms;		/* when latency_set */
	double rate_bps;		/* when rate_set */
	uint64_t pool_bits;		/* key in the pool at time 0 */
};

struct qkd_topology {
	size_t n_nodes, n_links;
	struct qkd_topo_node *nodes;	/* in file order */
	struct qkd_topo_link *links;	/* in file order */
	size_t cap_nodes, cap_links;
};

/* Parse the n bytes at buf (no NUL needed; a NUL byte is a bad character).
 * 0 and *out (the caller frees it with qkd_topology_free), or an error with
 * *out NULL, *line the 1-based line at fault and *why a static sentence:
 * QKD_ERR_INVAL for every refusal of the format (docs/netsim.md lists
 * them), QKD_ERR_RANGE for a buffer over QKD_TOPO_BYTES_MAX (*line the line
 * the limit falls in) or over QKD_TOPO_LINES_MAX lines, QKD_ERR_NOMEM. */
__attribute__((warn_unused_result))
int qkd_topology_parse(const char *buf, size_t n, struct qkd_topology **out, size_t *line,
		       const char **why);

/* Read the file at path (at most QKD_TOPO_BYTES_MAX + 1 bytes are read) and
 * parse it as above. QKD_ERR_IO with *line 0 and errno kept when it cannot
 * be opened or read. */
__attribute__((warn_unused_result))
int qkd_topology_load(const char *path, struct qkd_topology **out, size_t *line,
		      const char **why);

void qkd_topology_free(struct qkd_topology *t);	/* accepts NULL */

/* The topology in the file format, one statement per line, in order, every
 * key that is not at its default written out; parsing it gives back an equal
 * topology (reals are written with 17 significant digits). *out is a NUL
 * terminated heap string the caller frees. 0 or QKD_ERR_NOMEM. */
int qkd_topology_format(const struct qkd_topology *t, char **out, size_t *len);

/* Index of node id, or -1. Linear: for a few lookups (tests, the CLI). */
long qkd_topology_find(const struct qkd_topology *t, const char *id);

/* The link's one-way latency in seconds: latency_ms, else 0.005 ms per km
 * plus 0.1 ms. */
double qkd_topology_link_latency_s(const struct qkd_topo_link *l);

/* The link's secret key rate, bit/s: rate_bps, else the optical model's
 * asymptotic estimate for the link's channel and km with the default
 * optics (qkd_topology_optics_rate_bps). */
double qkd_topology_link_rate_bps(const struct qkd_topo_link *l);

/* An ESTIMATE of the secret key rate of a link with optics p (its
 * channel, distance, background and detectors; mu, decoys and Eve
 * ignored), bit/s: rate_hz * 1/2 * R, R the asymptotic decoy-state key per
 * sifted pulse (qkd_decoy_asymptotic_rate, signal QKD_TOPO_RATE_MU, f_ec
 * QKD_TOPO_RATE_F_EC), the 1/2 for bases that differ. 0 when no key can
 * be made. docs/netsim.md "Key rate". */
double qkd_topology_optics_rate_bps(const struct qkd_link_params *p);

enum qkd_topo_shape {
	QKD_TOPO_RING = 0,	/* n0 - n1 - ... - n(N-1) - n0 */
	QKD_TOPO_GRID = 1,	/* ceil(sqrt N) columns, row by row; right and down links */
	QKD_TOPO_RANDOM = 2,	/* connected, every degree in 2..5, from seed */
};
#define QKD_TOPO_GEN_MAX 4096	/* QKD_LSDB_NODES_MAX: every node holds every LSA */

/* "ring", "grid", "random" to the shape: 0 or QKD_ERR_INVAL. */
__attribute__((warn_unused_result))
int qkd_topology_shape_parse(const char *name, enum qkd_topo_shape *out);

/* A topology of n nodes (3 .. QKD_TOPO_GEN_MAX; a grid at least 4) named
 * n0 .. n<n-1>, each with one SAE sae-n<i>, fiber links of default optics
 * (ring, grid: 10 km; random: 5 .. 50 km drawn from seed; ring and grid do
 * not use seed). 0 and *out, QKD_ERR_INVAL for n out of range, or
 * QKD_ERR_NOMEM. */
__attribute__((warn_unused_result))
int qkd_topology_generate(enum qkd_topo_shape shape, size_t n, uint64_t seed,
			  struct qkd_topology **out);

#endif
