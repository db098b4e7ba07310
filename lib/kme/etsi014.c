/* etsi014.c - ETSI GS QKD 014 V1.1.1 (qkd/etsi014.h): what every part of
 * the layer shares: the wiping allocator jansson runs on, key_IDs (UUIDs),
 * SAE and KME IDs, the limits a KME announces, and the cleanup of requests,
 * errors and responses.
 *
 * Clause numbers refer to the spec: 5.2 Get status, 5.3 Get key, 5.4 Get key
 * with key IDs; 6.1 Status, 6.2 Key request, 6.3 Key container, 6.4 Key IDs,
 * 6.5 Error. Neighbours: etsi014_parse.c (request-target, path, method,
 * query), etsi014_json.c (request bodies), etsi014_error.c (the Error object),
 * etsi014_serve.c (qkd_etsi014_handle and the provider).
 */
#include "qkd/etsi014.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "etsi014_int.h"
#include "qkd/error.h"

/* ---- secrets ---- */

void qkd_etsi014_free(void *p)
{
	if (p == NULL)
		return;
	sodium_memzero(p, malloc_usable_size(p));
	free(p);
}

static void *json_alloc(size_t n)
{
	return malloc(n);
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc = QKD_ERR_IO;

/* jansson copies every string it is given (the base64 of keys among them)
 * and grows its dump buffers by copy: with this free function every such
 * copy is wiped when jansson releases it. */
static void init_run(void)
{
	if (sodium_init() < 0)
		return;
	json_set_alloc_funcs(json_alloc, qkd_etsi014_free);
	init_rc = 0;
}

int qkd_etsi014_init(void)
{
	if (pthread_once(&init_once, init_run) != 0)
		return QKD_ERR_IO;
	return init_rc;
}

void qkd_etsi014_response_cleanup(struct qkd_etsi014_response *resp)
{
	if (resp == NULL)
		return;
	qkd_etsi014_free(resp->body);
	resp->body = NULL;
	resp->len = 0;
}

/* ---- identifiers ---- */

int etsi014_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int qkd_etsi014_uuid_parse(const char *s, size_t len, struct qkd_etsi014_uuid *out)
{
	struct qkd_etsi014_uuid u;
	size_t n = 0;

	if (s == NULL || len != QKD_ETSI014_UUID_LEN)
		return QKD_ERR_INVAL;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return QKD_ERR_INVAL;
			continue;
		}
		hi = etsi014_hexval(s[i]);
		lo = etsi014_hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return QKD_ERR_INVAL;
		u.b[n++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	*out = u;
	return 0;
}

void qkd_etsi014_uuid_format(const struct qkd_etsi014_uuid *u, char out[QKD_ETSI014_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[u->b[i] >> 4];
		out[o++] = hex[u->b[i] & 15];
	}
	out[o] = '\0';
}

void qkd_etsi014_uuid_random(struct qkd_etsi014_uuid *u)
{
	randombytes_buf(u->b, sizeof u->b);
	u->b[6] = (uint8_t)((u->b[6] & 0x0f) | 0x40);	/* version 4 */
	u->b[8] = (uint8_t)((u->b[8] & 0x3f) | 0x80);	/* variant 10 */
}

bool qkd_etsi014_id_valid(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	for (n = 0; s[n] != '\0'; n++) {
		char c = s[n];

		if (n >= QKD_ETSI014_ID_MAX)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '~' || c == '-'))
			return false;
	}
	return n > 0;
}

int qkd_etsi014_limits_check(const struct qkd_etsi014_limits *l, const char **why)
{
	const char *w = NULL;

	if (l->min_key_size % 8 || l->key_size % 8 || l->max_key_size % 8)
		w = "key sizes must be multiples of 8 bits";
	else if (l->min_key_size < 8 || l->min_key_size > l->key_size ||
		 l->key_size > l->max_key_size || l->max_key_size > QKD_ETSI014_KEY_BITS_MAX)
		w = "key sizes must satisfy 8 <= min <= default <= max <= 65536";
	else if (l->max_key_per_request < 1 || l->max_key_per_request > QKD_ETSI014_KEYS_MAX)
		w = "max_key_per_request must be 1 .. 1024";
	if (why != NULL)
		*why = w;
	return w == NULL ? 0 : QKD_ERR_INVAL;
}

/* ---- cleanup ---- */

void qkd_etsi014_error_cleanup(struct qkd_etsi014_error *err)
{
	if (err == NULL)
		return;
	json_decref(err->detail);
	memset(err, 0, sizeof *err);
}

void qkd_etsi014_request_cleanup(struct qkd_etsi014_request *r)
{
	if (r == NULL)
		return;
	free(r->ids);
	memset(r, 0, sizeof *r);
}
