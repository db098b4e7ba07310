/* tun_echo.c - answer pings on a TUN device, for tests/integration/tun.sh:
 * the kernel routes ICMP and ICMPv6 echo requests into the device
 * (qkd/tun.h, lib/vpn/tun_linux.c); this tool reads each whole packet,
 * turns it into the echo reply from the address pinged, and writes it
 * back, so `ping` through the device succeeds only when packets cross
 * the TUN path both ways intact.
 *
 *   tun_echo NAME MTU COUNT SECONDS
 *
 * Creates NAME (up, with MTU), prints "ready NAME" once it exists, answers
 * COUNT echo requests or stops after SECONDS, then prints "answered N,
 * ignored M" and exits 0 if it answered COUNT, 1 otherwise. Test code: it
 * trusts the kernel's packets only as far as it checks them (lengths,
 * version, protocol), and drops anything else.
 */
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qkd/error.h"
#include "qkd/tun.h"

/* The Internet checksum (RFC 1071) of n bytes, added to sum. */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void swap(uint8_t *a, uint8_t *b, size_t n)
{
	uint8_t t[16];

	memcpy(t, a, n);
	memcpy(a, b, n);
	memcpy(b, t, n);
}

/* IPv4 echo request (type 8) to echo reply (type 0). */
static bool echo4(uint8_t *p, size_t n)
{
	size_t ihl = (size_t)(p[0] & 0x0f) * 4;
	uint16_t c;

	if (n < 20 || ihl < 20 || ihl + 8 > n || p[9] != 1 || p[ihl] != 8)
		return false;
	swap(p + 12, p + 16, 4);
	p[ihl] = 0;
	p[ihl + 2] = p[ihl + 3] = 0;
	c = csum_fold(csum_add(0, p + ihl, n - ihl));
	p[ihl + 2] = (uint8_t)(c >> 8);
	p[ihl + 3] = (uint8_t)c;
	return true;	/* the IP header checksum covers no field changed */
}

/* IPv6 echo request (128) to echo reply (129), checksum over the
 * pseudo-header (RFC 8200 section 8.1). */
static bool echo6(uint8_t *p, size_t n)
{
	uint8_t pseudo[8] = { 0 };
	size_t plen;
	uint32_t sum;
	uint16_t c;

	if (n < 48 || p[6] != 58 || p[40] != 128)
		return false;
	plen = (size_t)p[4] << 8 | p[5];
	if (plen + 40 != n)
		return false;
	swap(p + 8, p + 24, 16);
	p[40] = 129;
	p[42] = p[43] = 0;
	pseudo[2] = (uint8_t)(plen >> 8);
	pseudo[3] = (uint8_t)plen;
	pseudo[7] = 58;
	sum = csum_add(0, p + 8, 32);
	sum = csum_add(sum, pseudo, 8);
	c = csum_fold(csum_add(sum, p + 40, plen));
	p[42] = (uint8_t)(c >> 8);
	p[43] = (uint8_t)c;
	return true;
}

int main(int argc, char **argv)
{
	struct qkd_tun *t = NULL;
	const char *why = NULL;
	unsigned long answered = 0, ignored = 0, count;
	double seconds;
	uint8_t buf[65536];
	struct timespec t0, now;

	if (argc != 5) {
		fprintf(stderr, "usage: tun_echo NAME MTU COUNT SECONDS\n");
		return 2;
	}
	count = strtoul(argv[3], NULL, 10);
	seconds = strtod(argv[4], NULL);
	if (qkd_tun_open_linux(argv[1], strtoul(argv[2], NULL, 10), &t, &why) != QKD_OK) {
		fprintf(stderr, "qkd: tun %s: %s\n", argv[1], why);
		return 1;
	}
	printf("ready %s\n", t->name);
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
		size_t n = 0;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (answered >= count ||
		    (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) * 1e-9 >
			    seconds)
			break;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if (qkd_tun_read(t, buf, sizeof buf, &n) != QKD_OK || n == 0)
			continue;
		if (((buf[0] >> 4) == 4 && echo4(buf, n)) || ((buf[0] >> 4) == 6 && echo6(buf, n))) {
			if (qkd_tun_write(t, buf, n) == QKD_OK)
				answered++;
		} else {
			ignored++;	/* router solicitations, MLD reports, ... */
		}
	}
	printf("answered %lu, ignored %lu\n", answered, ignored);
	qkd_tun_close(t);
	return answered >= count ? 0 : 1;
}
