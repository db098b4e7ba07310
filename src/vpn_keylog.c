/* vpn_keylog.c - `qkd vpn --keylog FILE` (docs/vpn.md "Key log"): every
 * ESP SA and IKE SA key, in the records of Wireshark's "esp_sa" and
 * "ikev2_decryption_table" tables, one per line as tshark's -o option
 * takes them ("uat:esp_sa:RECORD"), so a capture can be decrypted and its
 * ICVs checked. Debug only: it writes secret keys to a file, so it is off
 * unless asked for, the file is created 0600, and the gateway says so in
 * its log when it starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "qkd/error.h"
#include "vpn_daemon.h"

int vpn_keylog_open(struct vpn_daemon *d, const char *path, char *why, size_t whylen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	if (fd < 0 || (d->keylog = fdopen(fd, "a")) == NULL) {
		snprintf(why, whylen, "--keylog %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return QKD_ERR_IO;
	}
	qkd_logf(&d->log, QKD_LOG_WARN,
		 "vpn %s: --keylog %s: every SA key is written to this file (debugging only)",
		 d->cfg.name, path);
	return 0;
}

static void hex(FILE *f, const uint8_t *p, size_t n)
{
	fputs("0x", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

/* The outer addresses: ESP travels between the gateways' UDP endpoints. */
static void addrs(const struct qkd_netaddr *a, char *ip, size_t len, const char **proto)
{
	char buf[QKD_NETADDR_STR_MAX];
	const char *s = qkd_netaddr_str(a, buf), *colon = strrchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);

	if (s[0] == '[') {
		s++;
		n -= 2;
	}
	snprintf(ip, len, "%.*s", (int)n, s);
	*proto = qkd_netaddr_family(a) == AF_INET6 ? "IPv6" : "IPv4";
}

static void esp_record(FILE *f, const char *proto, const char *src, const char *dst,
		       uint32_t spi, const uint8_t *key, size_t len)
{
	fprintf(f, "uat:esp_sa:\"%s\",\"%s\",\"%s\",\"0x%08x\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"",
		proto, src, dst, spi);
	hex(f, key, len);
	fputs("\",\"NULL\",\"\"\n", f);
}

void vpn_keylog_child(struct vpn_daemon *d, size_t t, const struct qkd_ike_child *c)
{
	char local[64], peer[64];
	const char *proto;

	if (!d->keylog)
		return;
	addrs(&d->cfg.listen.sa, local, sizeof local, &proto);
	addrs(&d->cfg.tunnels[t].peer.sa, peer, sizeof peer, &proto);
	esp_record(d->keylog, proto, peer, local, c->spi_in, c->key_in, c->key_len);
	esp_record(d->keylog, proto, local, peer, c->spi_out, c->key_out, c->key_len);
	fflush(d->keylog);
}

static void hex_bare(FILE *f, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

/* The table's SPI and key fields are byte buffers, which a UAT record
 * writes as bare hex; its algorithm fields are quoted names. AES-GCM has
 * no SK_ai/SK_ar: empty, with "NONE". */
void vpn_keylog_ike(struct vpn_daemon *d, size_t t, const struct qkd_ike_keylog *k)
{
	FILE *f = d->keylog;

	(void)t;
	if (!f)
		return;
	fputs("uat:ikev2_decryption_table:", f);
	hex_bare(f, k->spi_i, 8);
	fputc(',', f);
	hex_bare(f, k->spi_r, 8);
	fputc(',', f);
	hex_bare(f, k->sk_ei, k->enc_len);
	fputc(',', f);
	hex_bare(f, k->sk_er, k->enc_len);
	fprintf(f, ",\"AES-GCM-%zu with 16 octet ICV [RFC5282]\",,,\"NONE [RFC4306]\"\n",
		(k->enc_len - 4) * 8);
	fflush(f);
}

void vpn_keylog_close(struct vpn_daemon *d)
{
	if (d->keylog)
		fclose(d->keylog);
	d->keylog = NULL;
}
