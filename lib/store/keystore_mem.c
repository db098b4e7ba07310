/* keystore_mem.c - an SQLite allocator that wipes what it frees.
 *
 * SQLite keeps key bits in its own heap: the page cache (the pages of the
 * qbits table, until evicted or the connection closes), record buffers and
 * lookaside slots. Its default allocator frees them as they are, so freed key
 * would linger in the process heap. This allocator stores each block's size
 * in a 16-byte header and wipes the whole block before free(), so a copy of
 * key inside SQLite lives no longer than SQLite needs it.
 *
 * sqlite3_config() is process-wide and only allowed before SQLite is
 * initialized; when someone else initialized SQLite first the call fails
 * and SQLite keeps its own allocator (docs/keystore.md, "Secrets").
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "keystore_int.h"
#include "qkd/secret.h"

#define HDR 16	/* keeps malloc's 16-byte alignment */

static size_t hdr_size(const void *p)
{
	size_t n;

	memcpy(&n, (const unsigned char *)p - HDR, sizeof(n));
	return n;
}

static void *mem_malloc(int n)
{
	unsigned char *b;
	size_t sz;

	if (n <= 0)
		return NULL;
	sz = (size_t)n;
	b = malloc(sz + HDR);
	if (b == NULL)
		return NULL;
	memcpy(b, &sz, sizeof(sz));
	return b + HDR;
}

static void mem_free(void *p)
{
	if (p == NULL)
		return;
	qkd_free_secret((unsigned char *)p - HDR, hdr_size(p) + HDR);
}

static int mem_size(void *p)
{
	return p == NULL ? 0 : (int)hdr_size(p);
}

/* Never realloc() in place: the old block would be freed unwiped. */
static void *mem_realloc(void *p, int n)
{
	void *q;
	size_t old;

	if (p == NULL)
		return mem_malloc(n);
	q = mem_malloc(n);
	if (q == NULL)
		return NULL;
	old = hdr_size(p);
	memcpy(q, p, old < (size_t)n ? old : (size_t)n);
	mem_free(p);
	return q;
}

static int mem_roundup(int n)
{
	return (n + 7) & ~7;
}

static int mem_init(void *unused)
{
	(void)unused;
	return SQLITE_OK;
}

static void mem_shutdown(void *unused)
{
	(void)unused;
}

void ks_mem_install(void)
{
	static sqlite3_mem_methods methods = {
		mem_malloc, mem_free, mem_realloc, mem_size, mem_roundup,
		mem_init, mem_shutdown, NULL,
	};

	/* SQLITE_MISUSE when SQLite is already initialized: keep its allocator. */
	(void)sqlite3_config(SQLITE_CONFIG_MALLOC, &methods);
	(void)sqlite3_initialize();
}
