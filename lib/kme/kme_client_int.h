/* kme_client_int.h - private to lib/kme: the ETSI 014 client's transport
 * (kme_client_http.c, libcurl) as the operations (kme_client.c) use it, and the
 * bounded, wiped body buffer (kme_client_body.c) that unit tests check
 * directly. */
#ifndef QKD_KME_CLIENT_INT_H
#define QKD_KME_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "qkd/kme_client.h"

/* A response body: at most max bytes, NUL-terminated once taken. It may
 * hold keys in base64, so every byte it ever held is wiped: on growth (a
 * wiped copy, never realloc) and on kme_body_free. */
struct kme_body {
	char *p;
	size_t len, cap, max;
	bool over;		/* a chunk was refused: more than max bytes came */
};

void kme_body_init(struct kme_body *b, size_t max);
/* Append n bytes. 0; QKD_ERR_RANGE (and over set) past max; QKD_ERR_NOMEM. */
int kme_body_append(struct kme_body *b, const void *data, size_t n);
/* Wipe the bytes held (the whole capacity), keep the buffer, length 0. */
void kme_body_wipe(struct kme_body *b);
/* Wipe and free; b is empty after. */
void kme_body_free(struct kme_body *b);
/* Hand the NUL-terminated bytes to the caller (who wipes and frees them:
 * len + 1 bytes) and leave b empty. NULL only when out of memory (b is
 * then freed). An empty body gives "". */
char *kme_body_take(struct kme_body *b, size_t *len);

/* libcurl's global start with wiping allocators (qkd_kme_client_init). */
int kme_http_global_init(void);

struct kme_http;

/* A handle for cfg's KME: the URL checked and split, the certificate, key
 * and CA file loaded once to check them, mutual TLS set up.
 * QKD_ERR_INVAL (err says what), QKD_ERR_NOMEM, QKD_ERR_IO. */
int kme_http_new(struct kme_http **out, const struct qkd_kme_client_config *cfg,
		 struct qkd_kme_error *err);
void kme_http_free(struct kme_http *h);

/* One request to the base URL + path (which starts with '/' and may have
 * a query): GET, or POST of the JSON text post when it is not NULL. On 0,
 * *status is the HTTP status and *body the response (any status). On
 * failure (no HTTP answer) err says why and body is freed. */
int kme_http_request(struct kme_http *h, const char *path, const char *post,
		     unsigned *status, struct kme_body *body, struct qkd_kme_error *err);

/* The base URL as requests use it: https://HOST:PORT[/PREFIX] without a
 * trailing '/', HOST the server name when one is set. */
const char *kme_http_base(const struct kme_http *h);
const char *kme_client_base(const struct qkd_kme_client *c);

#endif
