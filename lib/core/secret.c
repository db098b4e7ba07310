#include "qkd/secret.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
