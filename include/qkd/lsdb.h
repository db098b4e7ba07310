/* qkd/lsdb.h - the link-state database: the newest LSA of every node.
 *
 * Pure data, no locking: the relay service that floods LSAs over the links
 * (later, on qkd/mux.h) owns one and serializes access. An LSA replaces the
 * held one of its origin only when its sequence number is higher; every
 * installed LSA is marked "to flood" until the flooder takes it. The
 * database is bounded (nodes_max) so a flood of made-up origins cannot grow
 * it without limit. docs/relay.md "Database and flooding".
 */
#ifndef QKD_LSDB_H
#define QKD_LSDB_H

#include <stddef.h>
#include <stdint.h>

#include "qkd/lsa.h"

#define QKD_LSDB_NODES_MAX 4096

struct qkd_lsdb;

/* A database for at most nodes_max nodes (1 .. QKD_LSDB_NODES_MAX). */
int qkd_lsdb_new(size_t nodes_max, struct qkd_lsdb **out);
void qkd_lsdb_free(struct qkd_lsdb *db);	/* accepts NULL */

/* Copies lsa in (the caller keeps its own) if it passes qkd_lsa_check and is
 * newer than the held LSA of its origin; marks it to flood. Refused:
 * QKD_ERR_INVAL (invalid), QKD_ERR_PROTO (sequence older or equal than the
 * held one: a duplicate from another neighbour or a replay), QKD_ERR_RANGE
 * (new origin, database full), QKD_ERR_NOMEM. *why (static) is the reason for a log line;
 * qkd_lsdb_get gives the held sequence. */
__attribute__((warn_unused_result))
int qkd_lsdb_install(struct qkd_lsdb *db, const struct qkd_lsa *lsa, const char **why);

/* Drops origin's LSA (a node gone for good, or aged out by the service).
 * QKD_ERR_INVAL when none is held. */
int qkd_lsdb_remove(struct qkd_lsdb *db, const char *origin);

/* The held LSA of origin, or NULL; valid until the next install or remove. */
const struct qkd_lsa *qkd_lsdb_get(const struct qkd_lsdb *db, const char *origin);

/* Number of nodes held and the i-th in origin order (i < count), for
 * iteration; pointers valid until the next install or remove. */
size_t qkd_lsdb_count(const struct qkd_lsdb *db);
const struct qkd_lsa *qkd_lsdb_at(const struct qkd_lsdb *db, size_t i);

/* Incremented by every install and remove, so a router can tell whether
 * its routes are stale. */
uint64_t qkd_lsdb_version(const struct qkd_lsdb *db);

/* What to flood: LSAs installed since they were last taken. Returns the
 * next one (origin order) and clears its mark, or NULL when none is left. */
const struct qkd_lsa *qkd_lsdb_flood_next(struct qkd_lsdb *db);
size_t qkd_lsdb_flood_pending(const struct qkd_lsdb *db);

/* The node whose LSA lists SAE id sae. 0 and *node (valid as qkd_lsdb_get),
 * QKD_ERR_INVAL when no node lists it, QKD_ERR_PROTO when two nodes claim
 * it (a misconfiguration: refuse rather than guess). */
__attribute__((warn_unused_result))
int qkd_lsdb_sae_node(const struct qkd_lsdb *db, const char *sae, const char **node);

#endif
