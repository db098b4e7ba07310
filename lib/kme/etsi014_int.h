/* etsi014_int.h - private to lib/kme/etsi014*.c: how the parts of the ETSI
 * GS QKD 014 layer (qkd/etsi014.h) record a failure, render a JSON object,
 * and hand a POST body from the request reader (etsi014_parse.c) to the
 * body parsers (etsi014_json.c). */
#ifndef QKD_ETSI014_INT_H
#define QKD_ETSI014_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "qkd/etsi014.h"

/* The value of hex digit c, or -1 (either case; for UUIDs and %XX). */
int etsi014_hexval(char c);

/* Fill err with status, detail and the formatted message, keeping the
 * first failure: a later call only drops its detail. Takes ownership of
 * detail (which may be NULL). Returns QKD_ERR_NOMEM for 503, else
 * QKD_ERR_INVAL, so that callers can return it as is. */
__attribute__((format(printf, 4, 5)))
int etsi014_fail(struct qkd_etsi014_error *err, unsigned status, json_t *detail,
		 const char *fmt, ...);
/* 503 "the key manager is out of memory". */
int etsi014_fail_nomem(struct qkd_etsi014_error *err);

/* Render root compactly, members in insertion order, into resp->body
 * (a wiped buffer: free with qkd_etsi014_free) with status. The caller
 * keeps root. 0 or QKD_ERR_NOMEM (resp untouched). */
int etsi014_dump(const json_t *root, unsigned status, struct qkd_etsi014_response *resp);

/* POST enc_keys: the Key request object (clause 6.2) of h's body into
 * r->number and r->size, each flagged when present (defaults are
 * etsi014_parse.c's). 0 or a failure recorded in err. */
QKD_ETSI014_WUR
int etsi014_parse_key_request(const struct qkd_etsi014_http *h, struct qkd_etsi014_request *r,
			      bool *has_number, bool *has_size, struct qkd_etsi014_error *err);
/* POST dec_keys: the Key IDs object (clause 6.4) of h's body: 1 .. max
 * distinct key_IDs into r->ids (calloc'd, freed by
 * qkd_etsi014_request_cleanup) and r->nids. 0 or a failure recorded in err. */
QKD_ETSI014_WUR
int etsi014_parse_key_ids(const struct qkd_etsi014_http *h, uint32_t max,
			  struct qkd_etsi014_request *r, struct qkd_etsi014_error *err);

#endif
