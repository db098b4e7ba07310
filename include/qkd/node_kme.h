/* qkd/node_kme.h - the key manager of a `qkd node`: ETSI GS QKD 014 over
 * mutual TLS (qkd/kme_server.h), serving keys cut from the node's links'
 * key stores and agreed with the KME at each link's other end
 * (docs/kme.md, "Two nodes").
 *
 * Local SAEs (the `kme` group's saes with a cn) are the callers; a remote
 * SAE names the link its KME is behind. enc_keys, by a local master for a
 * remote slave, cuts keys from this end's half of that link's blocks and
 * returns once the peer KME holds them in its inbox (or fails with 503 after
 * sync_timeout). dec_keys, by a local slave for a remote master, hands out
 * once the keys the peer issued for that pair.
 */
#ifndef QKD_NODE_KME_H
#define QKD_NODE_KME_H

#include "qkd/kme_server.h"
#include "qkd/log.h"
#include "qkd/node.h"
#include "qkd/node_config.h"

struct qkd_node_kme_server;

/* Start the key manager of cfg (cfg->kme.enabled) over links[0 ..
 * cfg->nlinks), whose contexts are initialized and whose threads have not
 * started: it sets each links[i].kme.cfg. cfg, links and log must outlive
 * the server. 0 with *out running, or an error with *why (static text). */
__attribute__((warn_unused_result))
int qkd_node_kme_start(struct qkd_node_kme_server **out, const struct qkd_node_config *cfg,
		       struct qkd_link_ctx *links, const struct qkd_logger *log,
		       const char **why);

/* The HTTPS port (the configured one). */
uint16_t qkd_node_kme_port(const struct qkd_node_kme_server *k);

/* Its HTTPS server's counters (qkd_kme_server_counters), for the node's
 * metrics. Any thread, while k runs. */
void qkd_node_kme_counters(const struct qkd_node_kme_server *k, struct qkd_kme_counters *out);

/* Stop serving (requests in progress complete), close the stores, free.
 * Accepts NULL. */
void qkd_node_kme_stop(struct qkd_node_kme_server *k);

#endif
