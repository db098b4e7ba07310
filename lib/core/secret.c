#include "qkd/secret.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void qkd_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

void qkd_free_secret(void *p, size_t n)
{
	if (p == NULL)
		return;
	qkd_wipe(p, n);
	free(p);
}

bool qkd_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= (uint8_t)(x[i] ^ y[i]);
	return acc == 0;
}

#define HUGE_PAGE ((size_t)2 << 20)

void *qkd_alloc_scratch(size_t n)
{
	size_t len;
	void *p;

	if (n < 2 * HUGE_PAGE)
		return malloc(n ? n : 1);
	if (n > SIZE_MAX - HUGE_PAGE)
		return NULL;
	len = (n + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
	p = aligned_alloc(HUGE_PAGE, len);
	if (p != NULL)
		(void)madvise(p, len, MADV_HUGEPAGE);	/* advice only */
	return p;
}

void qkd_free_scratch(void *p, size_t n)
{
	qkd_free_secret(p, n);
}
