/* kme_client_body.c - the ETSI 014 client's response body (lib/kme/kme_client_int.h):
 * a buffer bounded by the client's max_response_bytes into which libcurl's
 * write callback (kme_client_http.c) appends. A Key container's body holds the
 * keys in base64, so no byte it ever held is left unwiped: it grows by a
 * wiped copy (never realloc, which may leave the old block as it was) and
 * is wiped when freed; a body handed on (kme_body_take) is the caller's to
 * wipe.
 */
#include "kme_client_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/secret.h"

#define BODY_FIRST 4096

void kme_body_init(struct kme_body *b, size_t max)
{
	memset(b, 0, sizeof *b);
	b->max = max < SIZE_MAX / 4 ? max : SIZE_MAX / 4;	/* cap doubling cannot overflow */
}

int kme_body_append(struct kme_body *b, const void *data, size_t n)
{
	size_t cap;
	char *p;

	if (n > b->max - b->len) {
		b->over = true;
		return QKD_ERR_RANGE;
	}
	if (b->len + n + 1 > b->cap) {
		for (cap = b->cap ? b->cap : BODY_FIRST; cap < b->len + n + 1; cap *= 2)
			;
		if (cap > b->max + 1)
			cap = b->max + 1;
		if ((p = malloc(cap)) == NULL)
			return QKD_ERR_NOMEM;
		if (b->len > 0)
			memcpy(p, b->p, b->len);
		qkd_free_secret(b->p, b->cap);
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return 0;
}

void kme_body_wipe(struct kme_body *b)
{
	qkd_wipe(b->p, b->cap);
	b->len = 0;
	b->over = false;
}

void kme_body_free(struct kme_body *b)
{
	qkd_free_secret(b->p, b->cap);
	b->p = NULL;
	b->len = b->cap = 0;
	b->over = false;
}

char *kme_body_take(struct kme_body *b, size_t *len)
{
	char *p;

	if (b->p == NULL && (b->p = calloc(1, 1)) != NULL)	/* nothing came: "" */
		b->cap = 1;
	if (b->p == NULL)
		return NULL;
	b->p[b->len] = '\0';
	p = b->p;
	*len = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}
