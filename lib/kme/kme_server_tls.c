/* kme_server_tls.c - who is asking the key manager's HTTPS server
 * (lib/kme/kme_server_int.h; docs/kme.md "SAEs and their certificates"):
 * the client certificate demanded and verified in the handshake, checked
 * again per request (cached for VERIFY_TTL_S seconds per connection), its
 * subject CN looked up in the SAE table; and a connection's timeout
 * lengthened once a known SAE asks.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <sodium.h>

#include "kme_server_int.h"
#include "qkd/error.h"

/* How long a connection's verified certificate is trusted without redoing
 * the signature checks. */
#define VERIFY_TTL_S 10

/* The key purpose a client certificate must carry (RFC 5280: id-kp-clientAuth).
 * Static: GnuTLS keeps the pointer for the session's lifetime. */
static gnutls_typed_vdata_st client_purpose[1] = {
	{ GNUTLS_DT_KEY_PURPOSE_OID, (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0 },
};

/* The subject's one CN into cn[QKD_KME_CN_MAX + 1]; a certificate with no
 * CN, two CNs or a longer one has none. */
static int subject_cn(const gnutls_datum_t *der, char *cn)
{
	gnutls_x509_crt_t crt = NULL;
	size_t len = QKD_KME_CN_MAX + 1, len2 = 0;
	int rc = QKD_ERR_VERIFY;

	if (gnutls_x509_crt_init(&crt) < 0)
		return QKD_ERR_NOMEM;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) < 0 ||
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &len) < 0 ||
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1, 0, NULL, &len2) !=
		    GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE ||
	    len == 0 || len > QKD_KME_CN_MAX || strlen(cn) != len)
		goto out;
	rc = 0;
out:
	gnutls_x509_crt_deinit(crt);
	return rc;
}

/* RFC 5280 section 4.2.1.12 lets a certificate without extendedKeyUsage
 * serve any purpose, and GnuTLS's purpose check accepts one. docs/kme.md
 * requires more: the extension is present and names id-kp-clientAuth (an
 * anyExtendedKeyUsage alone does not do). */
static bool names_client_auth(const gnutls_datum_t *der)
{
	gnutls_x509_crt_t crt = NULL;
	char oid[128];
	size_t len;
	unsigned critical = 0;
	bool found = false;
	int rc = 0;

	if (gnutls_x509_crt_init(&crt) < 0)
		return false;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) < 0)
		goto out;
	for (unsigned i = 0; !found && rc != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE; i++) {
		len = sizeof oid;
		rc = gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &len, &critical);
		if (rc < 0 && rc != GNUTLS_E_SHORT_MEMORY_BUFFER &&
		    rc != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			goto out;	/* a malformed extension */
		found = rc >= 0 && strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT) == 0;
	}
out:
	gnutls_x509_crt_deinit(crt);
	return found;
}

/* The peer's certificate, verified: chain to the CA, validity dates, the
 * TLS-client purpose along the chain (gnutls_certificate_verify_peers), and
 * an extendedKeyUsage naming it on the leaf. NULL and why otherwise. */
static const gnutls_datum_t *peer_verify(gnutls_session_t ss, const char **why)
{
	const gnutls_datum_t *certs;
	unsigned ncerts = 0, status = 0;

	if ((certs = gnutls_certificate_get_peers(ss, &ncerts)) == NULL || ncerts == 0) {
		*why = "no client certificate";
		return NULL;
	}
	if (gnutls_certificate_verify_peers(ss, client_purpose, 1, &status) < 0 || status != 0) {
		*why = "no client certificate signed by the CA for TLS clients";
		return NULL;
	}
	if (!names_client_auth(&certs[0])) {
		*why = "the client certificate's extendedKeyUsage does not name clientAuth";
		return NULL;
	}
	return &certs[0];
}

/* GnuTLS calls this in the handshake once the client's certificate is in
 * (gnutls_session_set_verify_function): a refusal ends the handshake, so a
 * client without a good certificate never reaches HTTP. */
static int on_verify(gnutls_session_t ss)
{
	const char *why = NULL;

	return peer_verify(ss, &why) != NULL ? 0 : GNUTLS_E_CERTIFICATE_ERROR;
}

/* What a connection proved, kept in its socket context: the SAE and the
 * SHA-256 of the certificate it was verified with, and when. */
struct conn_state {
	const char *sae;		/* NULL until a verification succeeded */
	uint8_t fp[crypto_hash_sha256_BYTES];
	time_t at;			/* CLOCK_MONOTONIC seconds */
	bool trusted;			/* idle_timeout applies (trust) */
};

/* The full check: peer_verify, one subject CN, and that CN in the SAE
 * table. */
static const char *verify_peer(const struct qkd_kme_server *s, gnutls_session_t ss,
			       const char **why)
{
	const gnutls_datum_t *cert;
	char cn[QKD_KME_CN_MAX + 1];

	if ((cert = peer_verify(ss, why)) == NULL)
		return NULL;
	if (subject_cn(cert, cn) != 0) {
		*why = "the client certificate has no single subject CN";
		return NULL;
	}
	for (size_t i = 0; i < s->nsaes; i++)
		if (strcmp(s->saes[i].cn, cn) == 0)
			return s->saes[i].id;
	*why = "the client certificate's CN is not a known SAE";
	return NULL;
}

/* The SAE whose certificate this connection presented, or NULL and why.
 * Every request looks at the peer's certificate; the signature checks run
 * again only when it is not the one verified on this connection in the
 * last VERIFY_TTL_S seconds (they dominate the cost of a request). */
const char *kme_server_identify(const struct qkd_kme_server *s, struct MHD_Connection *c,
				const char **why)
{
	const union MHD_ConnectionInfo *ci, *sc;
	struct conn_state *cs = NULL;
	const gnutls_datum_t *certs;
	uint8_t fp[crypto_hash_sha256_BYTES];
	unsigned ncerts = 0;
	gnutls_session_t ss;
	const char *sae;
	time_t t = kme_server_mono_now();

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || (ss = ci->tls_session) == NULL) {
		*why = "not a TLS connection";
		return NULL;
	}
	if ((certs = gnutls_certificate_get_peers(ss, &ncerts)) == NULL || ncerts == 0) {
		*why = "no client certificate";
		return NULL;
	}
	crypto_hash_sha256(fp, certs[0].data, certs[0].size);
	if ((sc = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT)) != NULL)
		cs = sc->socket_context;
	if (cs != NULL && cs->sae != NULL && t - cs->at < VERIFY_TTL_S &&
	    sodium_memcmp(fp, cs->fp, sizeof fp) == 0)
		return cs->sae;
	sae = verify_peer(s, ss, why);
	if (cs != NULL) {
		cs->sae = sae;
		memcpy(cs->fp, fp, sizeof fp);
		cs->at = t;
	}
	return sae;
}

/* A known SAE is asking: from now on the connection may stay idle for
 * idle_timeout_s between requests (keep-alive), no longer only for
 * handshake_timeout_s, the daemon's timeout for every new connection. */
void kme_server_trust(const struct qkd_kme_server *s, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *sc;
	struct conn_state *cs = NULL;

	if ((sc = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT)) != NULL)
		cs = sc->socket_context;
	if (cs != NULL && cs->trusted)
		return;
	(void)MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, s->idle_s);
	if (cs != NULL)
		cs->trusted = true;
}

/* Runs for each accepted connection before its handshake: demand and
 * verify a client certificate (see the top of kme_server.c), bound the whole
 * handshake's time, and give the connection its state; frees that state
 * when the connection closes. */
void kme_server_on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
			      enum MHD_ConnectionNotificationCode code)
{
	const struct qkd_kme_server *s = cls;
	const union MHD_ConnectionInfo *ci;

	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		free(*socket_ctx);
		*socket_ctx = NULL;
		return;
	}
	*socket_ctx = calloc(1, sizeof(struct conn_state));	/* NULL: no cache */
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return;
	gnutls_certificate_server_set_request(ci->tls_session, GNUTLS_CERT_REQUIRE);
	gnutls_session_set_verify_function(ci->tls_session, on_verify);
	/* The daemon's timeout counts silence; this, the handshake's total, so
	 * that a client trickling a byte at a time cannot hold a slot. */
	gnutls_handshake_set_timeout(ci->tls_session, s->handshake_s * 1000);
}
