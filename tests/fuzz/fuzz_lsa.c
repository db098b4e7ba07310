/* libFuzzer target: the link-state advertisement decoder (lib/relay/lsa.c,
 * qkd/lsa.h, docs/relay.md "Wire format"). The input is one LSA.
 *
 * Checks besides not crashing, leaking or reading out of bounds:
 * - what decodes passes qkd_lsa_check and re-encodes to exactly the input
 *   bytes (the format has one encoding per LSA);
 * - a refused input leaves the output zeroed and gives a reason;
 * - a decoded LSA installs in a fresh database, the same sequence is then
 *   refused, and routes computed from its origin (with no other node's LSA,
 *   so no link is confirmed by both ends) are empty.
 */
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/lsa.h"
#include "qkd/lsdb.h"
#include "qkd/route.h"
#include "qkd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_db(const struct qkd_lsa *lsa)
{
	struct qkd_lsdb *db = NULL;
	struct qkd_routes *rt = NULL;
	struct qkd_route_params p;
	const char *why;

	qkd_route_params_default(&p);
	if (qkd_lsdb_new(4, &db) != QKD_OK)
		abort();
	if (qkd_lsdb_install(db, lsa, &why) != QKD_OK)
		abort();
	if (qkd_lsdb_install(db, lsa, &why) != QKD_ERR_PROTO)
		abort();
	if (qkd_routes_new(lsa->origin, &p, &rt) != QKD_OK ||
	    qkd_routes_compute(rt, db, NULL) != QKD_OK || qkd_routes_count(rt) != 0)
		abort();
	qkd_routes_free(rt);
	qkd_lsdb_free(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct qkd_lsa lsa, zero;
	struct qkd_wbuf w;
	const char *why = NULL;

	if (size > QKD_LSA_WIRE_MAX + 64)
		return 0;
	if (qkd_lsa_decode(&lsa, data, size, &why) != QKD_OK) {
		if (why == NULL || memcmp(&lsa, &zero, sizeof lsa) != 0)
			abort();
		return 0;
	}
	if (qkd_lsa_check(&lsa, &why) != QKD_OK)
		abort();
	qkd_wbuf_init(&w);
	if (qkd_lsa_encode(&lsa, &w) != QKD_OK || w.len != size || memcmp(w.p, data, size) != 0)
		abort();
	qkd_wbuf_cleanup(&w);
	check_db(&lsa);
	return 0;
}
