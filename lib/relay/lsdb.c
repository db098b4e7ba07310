/* lsdb.c - the link-state database (qkd/lsdb.h, docs/relay.md "Database
 * and flooding").
 *
 * Entries are kept in an array sorted by origin so lookups are a binary
 * search and iteration (routing, flooding, status) is in a stable order.
 * Each entry is one heap copy of the LSA, so pointers handed out stay put
 * while others are inserted, until their own entry changes. A copy holds
 * only the LSA's used SAE ids (qkd_lsa_size): about 3.5 KB for a node
 * with one SAE instead of the struct's 7.5 KB, which is what lets a
 * thousand agents of `qkd netsim` each hold a thousand LSAs.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/lsdb.h"

struct lsdb_entry {
	struct qkd_lsa *lsa;	/* owned */
	bool flood;
};

struct qkd_lsdb {
	struct lsdb_entry *e;	/* sorted by lsa->origin */
	size_t n, max, pending;
	uint64_t version;
};

int qkd_lsdb_new(size_t nodes_max, struct qkd_lsdb **out)
{
	struct qkd_lsdb *db = NULL;
	int rc = QKD_ERR_INVAL;

	*out = NULL;
	if (nodes_max == 0 || nodes_max > QKD_LSDB_NODES_MAX)
		goto out;
	rc = QKD_ERR_NOMEM;
	db = calloc(1, sizeof *db);
	if (db == NULL)
		goto out;
	db->e = calloc(nodes_max, sizeof *db->e);
	if (db->e == NULL)
		goto out;
	db->max = nodes_max;
	*out = db;
	db = NULL;
	rc = QKD_OK;
out:
	qkd_lsdb_free(db);
	return rc;
}

void qkd_lsdb_free(struct qkd_lsdb *db)
{
	if (db == NULL)
		return;
	for (size_t i = 0; i < db->n; i++)
		free(db->e[i].lsa);
	free(db->e);
	free(db);
}

/* Index of origin, or where it would go (*found false). */
static size_t lsdb_find(const struct qkd_lsdb *db, const char *origin, bool *found)
{
	size_t lo = 0, hi = db->n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(db->e[mid].lsa->origin, origin);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int lsdb_insert(struct qkd_lsdb *db, size_t at, const struct qkd_lsa *lsa,
		       const char **why)
{
	struct qkd_lsa *copy;

	if (db->n >= db->max) {
		*why = "database full";
		return QKD_ERR_RANGE;
	}
	copy = malloc(qkd_lsa_size(lsa));
	if (copy == NULL) {
		*why = "out of memory";
		return QKD_ERR_NOMEM;
	}
	memcpy(copy, lsa, qkd_lsa_size(lsa));
	memmove(&db->e[at + 1], &db->e[at], (db->n - at) * sizeof *db->e);
	db->e[at].lsa = copy;
	db->e[at].flood = true;
	db->n++;
	db->pending++;
	return QKD_OK;
}

int qkd_lsdb_install(struct qkd_lsdb *db, const struct qkd_lsa *lsa, const char **why)
{
	bool found;
	size_t at;
	int rc = qkd_lsa_check(lsa, why);

	if (rc != QKD_OK)
		goto out;
	at = lsdb_find(db, lsa->origin, &found);
	if (!found) {
		rc = lsdb_insert(db, at, lsa, why);
		goto out;
	}
	if (lsa->seq <= db->e[at].lsa->seq) {
		*why = lsa->seq == db->e[at].lsa->seq ? "sequence equal to the held one"
						      : "sequence older than the held one";
		rc = QKD_ERR_PROTO;
		goto out;
	}
	if (lsa->n_saes != db->e[at].lsa->n_saes) {
		struct qkd_lsa *grown = realloc(db->e[at].lsa, qkd_lsa_size(lsa));

		if (grown == NULL) {
			*why = "out of memory";
			rc = QKD_ERR_NOMEM;
			goto out;
		}
		db->e[at].lsa = grown;
	}
	memcpy(db->e[at].lsa, lsa, qkd_lsa_size(lsa));
	if (!db->e[at].flood)
		db->pending++;
	db->e[at].flood = true;
out:
	if (rc == QKD_OK)
		db->version++;
	return rc;
}

int qkd_lsdb_remove(struct qkd_lsdb *db, const char *origin)
{
	bool found;
	size_t at = lsdb_find(db, origin, &found);

	if (!found)
		return QKD_ERR_INVAL;
	if (db->e[at].flood)
		db->pending--;
	free(db->e[at].lsa);
	memmove(&db->e[at], &db->e[at + 1], (db->n - at - 1) * sizeof *db->e);
	db->n--;
	db->version++;
	return QKD_OK;
}

const struct qkd_lsa *qkd_lsdb_get(const struct qkd_lsdb *db, const char *origin)
{
	bool found;
	size_t at = lsdb_find(db, origin, &found);

	return found ? db->e[at].lsa : NULL;
}

size_t qkd_lsdb_count(const struct qkd_lsdb *db)
{
	return db->n;
}

const struct qkd_lsa *qkd_lsdb_at(const struct qkd_lsdb *db, size_t i)
{
	return i < db->n ? db->e[i].lsa : NULL;
}

uint64_t qkd_lsdb_version(const struct qkd_lsdb *db)
{
	return db->version;
}

const struct qkd_lsa *qkd_lsdb_flood_next(struct qkd_lsdb *db)
{
	for (size_t i = 0; db->pending > 0 && i < db->n; i++)
		if (db->e[i].flood) {
			db->e[i].flood = false;
			db->pending--;
			return db->e[i].lsa;
		}
	return NULL;
}

size_t qkd_lsdb_flood_pending(const struct qkd_lsdb *db)
{
	return db->pending;
}

int qkd_lsdb_sae_node(const struct qkd_lsdb *db, const char *sae, const char **node)
{
	int rc = QKD_ERR_INVAL;

	*node = NULL;
	for (size_t i = 0; i < db->n; i++) {
		const struct qkd_lsa *l = db->e[i].lsa;

		for (size_t j = 0; j < l->n_saes; j++) {
			if (strcmp(l->saes[j], sae) != 0)
				continue;
			if (*node != NULL) {
				*node = NULL;
				rc = QKD_ERR_PROTO;
				goto out;
			}
			*node = l->origin;
			rc = QKD_OK;
		}
	}
out:
	return rc;
}
