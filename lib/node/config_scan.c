/* config_scan.c - lexical checks of a node configuration that libconfig
 * 1.5 does not make.
 *
 * libconfig 1.5 reads an integer literal without the L suffix with atoi()
 * (hex with strtoul() cast to int), so round_pulses = 10000000000 would
 * silently become 1410065408. The scan walks the text with libconfig's
 * token rules (comments #, //, / * * /; strings with backslash escapes;
 * names [A-Za-z*][-A-Za-z0-9_*]*; numbers) and reports the first integer
 * literal that does not fit an int. It also finds @include, which the node
 * configuration refuses: one file per node keeps "PATH:LINE" meaningful and
 * the relative-path rule simple. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

static bool name_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '-' || ch == '_' || ch == '*';
}

/* Skip a string literal starting at the opening quote; counts newlines. */
static const char *skip_string(const char *p, unsigned *line)
{
	for (p++; *p != '\0' && *p != '"'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		if (*p == '\n')
			(*line)++;
	}
	return *p == '"' ? p + 1 : p;
}

static const char *skip_block_comment(const char *p, unsigned *line)
{
	for (p += 2; *p != '\0' && !(p[0] == '*' && p[1] == '/'); p++)
		if (*p == '\n')
			(*line)++;
	return *p != '\0' ? p + 2 : p;
}

/* A number token at p (sign, digit or '.'); *big set when it is an
 * integer libconfig would truncate. Returns the first character after it. */
static const char *scan_number(const char *p, bool *big)
{
	const char *s = p;
	char buf[32];
	long long v;
	size_t n;

	*big = false;
	if (*p == '+' || *p == '-')
		p++;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		uint64_t h = 0;

		for (p += 2; isxdigit((unsigned char)*p); p++)
			h = h > 0xffffffffu ? h : (h << 4) | (uint64_t)(isdigit((unsigned char)*p) ?
				*p - '0' : (tolower((unsigned char)*p) - 'a' + 10));
		*big = *p != 'L' && h > 0x7fffffffu;
		return p;
	}
	while (isdigit((unsigned char)*p))
		p++;
	if (*p == '.' || *p == 'e' || *p == 'E') {
		for (; isdigit((unsigned char)*p) || *p == '.' || *p == 'e' || *p == 'E' ||
		       ((*p == '+' || *p == '-') && (p[-1] == 'e' || p[-1] == 'E')); p++)
			;
		return p;
	}
	if (*p == 'L' || p == s || (p == s + 1 && (*s == '+' || *s == '-')))
		return p == s ? p + 1 : p;
	n = (size_t)(p - s);
	if (n >= sizeof buf) {
		*big = true;
		return p;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	v = strtoll(buf, NULL, 10);
	*big = errno == ERANGE || v > INT32_MAX || v < INT32_MIN;
	return p;
}

void cfg_scan(const char *text, unsigned *include_line, unsigned *int_line)
{
	const char *p = text;
	unsigned line = 1;
	bool big;

	*include_line = *int_line = 0;
	while (*p != '\0') {
		if (*p == '\n') {
			line++;
			p++;
		} else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			p += strcspn(p, "\n");
		} else if (p[0] == '/' && p[1] == '*') {
			p = skip_block_comment(p, &line);
		} else if (*p == '"') {
			p = skip_string(p, &line);
		} else if (*p == '@') {
			if (*include_line == 0)
				*include_line = line;
			p++;
		} else if (isalpha((unsigned char)*p) || *p == '*') {
			while (name_char(*p))
				p++;
		} else if (isdigit((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.') {
			p = scan_number(p, &big);
			if (big && *int_line == 0)
				*int_line = line;
		} else {
			p++;
		}
	}
}
