/* esp_context.c - the state of one ESP SA direction (qkd/esp.h): the
 * AES-GCM context with its key scheduled once, the salt, the sequence
 * counter or replay window, and lifetime accounting (RFC 4301 s4.4.2.1).
 * lib/vpn/esp_packet.c builds and parses packets around it. */
#include <stdlib.h>
#include <string.h>

#include "esp_int.h"
#include "qkd/secret.h"
#include "qkd/testing.h"

static bool limits_ordered(const struct qkd_esp_limits *soft, const struct qkd_esp_limits *hard)
{
	return (hard->seconds == 0 || soft->seconds <= hard->seconds) &&
	       (hard->bytes == 0 || soft->bytes <= hard->bytes) &&
	       (hard->packets == 0 || soft->packets <= hard->packets);
}

static bool params_ok(const struct qkd_esp_params *p)
{
	size_t klen = p->keymat_len - QKD_ESP_SALT_LEN;

	return p->keymat != NULL && p->keymat_len > QKD_ESP_SALT_LEN && (klen == 16 || klen == 32) &&
	       p->spi >= QKD_ESP_SPI_MIN && (p->dir == QKD_ESP_OUT || p->dir == QKD_ESP_IN) &&
	       limits_ordered(&p->soft, &p->hard);
}

/* RFC 4106 s8.1: KEYMAT is the AES key followed by the 4-byte salt. The
 * context is set up for one direction with the key only; each packet then
 * sets just its nonce, so the key schedule and GHASH key are computed once. */
static int aead_setup(struct qkd_esp_sa *sa, const struct qkd_esp_params *p)
{
	size_t klen = p->keymat_len - QKD_ESP_SALT_LEN;
	const EVP_CIPHER *c = klen == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
	int ok;

	memcpy(sa->salt, p->keymat + klen, QKD_ESP_SALT_LEN);
	sa->aead = EVP_CIPHER_CTX_new();
	if (sa->aead == NULL)
		return QKD_ERR_NOMEM;
	if (p->dir == QKD_ESP_OUT)
		ok = EVP_EncryptInit_ex(sa->aead, c, NULL, p->keymat, NULL);
	else
		ok = EVP_DecryptInit_ex(sa->aead, c, NULL, p->keymat, NULL);
	return ok == 1 ? QKD_OK : QKD_ERR_NOMEM;
}

int qkd_esp_sa_new(const struct qkd_esp_params *p, struct qkd_esp_sa **out)
{
	struct qkd_esp_sa *sa = NULL;
	int rc = QKD_ERR_INVAL;

	*out = NULL;
	if (!params_ok(p))
		goto out;
	rc = QKD_ERR_NOMEM;
	sa = calloc(1, sizeof *sa);
	if (sa == NULL)
		goto out;
	sa->dir = p->dir;
	sa->spi = p->spi;
	sa->esn = p->esn;
	sa->created = p->now;
	sa->soft = p->soft;
	sa->hard = p->hard;
	qkd_replay_init(&sa->replay, p->esn);
	rc = aead_setup(sa, p);
	if (rc != QKD_OK)
		goto out;
	*out = sa;
	sa = NULL;
out:
	qkd_esp_sa_free(sa);
	return rc;
}

void qkd_esp_sa_free(struct qkd_esp_sa *sa)
{
	if (sa == NULL)
		return;
	EVP_CIPHER_CTX_free(sa->aead);	/* cleanses the key schedule */
	qkd_free_secret(sa, sizeof *sa);
}

uint32_t qkd_esp_sa_spi(const struct qkd_esp_sa *sa)
{
	return sa->spi;
}

uint64_t qkd_esp_sa_bytes(const struct qkd_esp_sa *sa)
{
	return sa->bytes;
}

uint64_t qkd_esp_sa_packets(const struct qkd_esp_sa *sa)
{
	return sa->packets;
}

/* Is any limit of l reached? Time runs from creation; a clock that went
 * backwards counts as no time elapsed. */
static bool reached(const struct qkd_esp_sa *sa, const struct qkd_esp_limits *l, uint64_t now)
{
	uint64_t age = now > sa->created ? now - sa->created : 0;

	return (l->seconds != 0 && age >= l->seconds) || (l->bytes != 0 && sa->bytes >= l->bytes) ||
	       (l->packets != 0 && sa->packets >= l->packets);
}

enum qkd_esp_state qkd_esp_sa_state(const struct qkd_esp_sa *sa, uint64_t now)
{
	if (sa->exhausted || reached(sa, &sa->hard, now))
		return QKD_ESP_HARD_EXPIRED;
	if (reached(sa, &sa->soft, now))
		return QKD_ESP_SOFT_EXPIRED;
	return QKD_ESP_OK;
}

bool esp_over_hard(const struct qkd_esp_sa *sa, size_t len)
{
	return (sa->hard.packets != 0 && sa->packets >= sa->hard.packets) ||
	       (sa->hard.bytes != 0 && (sa->bytes >= sa->hard.bytes ||
					len > sa->hard.bytes - sa->bytes));
}

void esp_account(struct qkd_esp_sa *sa, size_t len)
{
	sa->bytes += len;
	sa->packets++;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

size_t esp_aad(const struct qkd_esp_sa *sa, uint64_t seq, uint8_t aad[ESP_AAD_MAX])
{
	put_be32(aad, sa->spi);
	if (!sa->esn) {
		put_be32(aad + 4, (uint32_t)seq);
		return 8;
	}
	put_be32(aad + 4, (uint32_t)(seq >> 32));
	put_be32(aad + 8, (uint32_t)seq);
	return 12;
}

static int set_nonce(struct qkd_esp_sa *sa, const uint8_t iv[QKD_ESP_IV_LEN])
{
	uint8_t nonce[QKD_ESP_SALT_LEN + QKD_ESP_IV_LEN];
	int ok;

	memcpy(nonce, sa->salt, QKD_ESP_SALT_LEN);
	memcpy(nonce + QKD_ESP_SALT_LEN, iv, QKD_ESP_IV_LEN);
	if (sa->dir == QKD_ESP_OUT)
		ok = EVP_EncryptInit_ex(sa->aead, NULL, NULL, NULL, nonce);
	else
		ok = EVP_DecryptInit_ex(sa->aead, NULL, NULL, NULL, nonce);
	qkd_wipe(nonce, sizeof nonce);	/* holds the salt */
	return ok == 1 ? QKD_OK : QKD_ERR_VERIFY;
}

int esp_seal(struct qkd_esp_sa *sa, const uint8_t iv[QKD_ESP_IV_LEN], const uint8_t *aad,
	     size_t aad_len, const uint8_t *a, size_t na, const uint8_t *b, size_t nb,
	     uint8_t *out, uint8_t tag[QKD_ESP_ICV_LEN])
{
	int n, rc = set_nonce(sa, iv);

	if (rc != QKD_OK)
		return rc;
	if (EVP_EncryptUpdate(sa->aead, NULL, &n, aad, (int)aad_len) != 1 ||
	    (na > 0 && EVP_EncryptUpdate(sa->aead, out, &n, a, (int)na) != 1) ||
	    EVP_EncryptUpdate(sa->aead, out + na, &n, b, (int)nb) != 1 ||
	    EVP_EncryptFinal_ex(sa->aead, out + na + nb, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(sa->aead, EVP_CTRL_GCM_GET_TAG, QKD_ESP_ICV_LEN, tag) != 1)
		return QKD_ERR_VERIFY;
	return QKD_OK;
}

int esp_open(struct qkd_esp_sa *sa, const uint8_t iv[QKD_ESP_IV_LEN], const uint8_t *aad,
	     size_t aad_len, const uint8_t *ct, size_t n, const uint8_t tag[QKD_ESP_ICV_LEN],
	     uint8_t *out)
{
	uint8_t t[QKD_ESP_ICV_LEN];
	int m, rc = set_nonce(sa, iv);

	if (rc != QKD_OK)
		return rc;
	memcpy(t, tag, sizeof t);	/* the ctrl takes a non-const pointer */
	if (EVP_DecryptUpdate(sa->aead, NULL, &m, aad, (int)aad_len) != 1 ||
	    EVP_DecryptUpdate(sa->aead, out, &m, ct, (int)n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(sa->aead, EVP_CTRL_GCM_SET_TAG, QKD_ESP_ICV_LEN, t) != 1 ||
	    EVP_DecryptFinal_ex(sa->aead, out + n, &m) != 1)
		return QKD_ERR_VERIFY;
	return QKD_OK;
}

void qkd_esp_testing_set_seq(struct qkd_esp_sa *sa, uint64_t seq)
{
	if (sa->dir == QKD_ESP_OUT) {
		sa->seq = seq;
		sa->exhausted = false;
		return;
	}
	qkd_replay_init(&sa->replay, sa->esn);
	sa->replay.top = seq;
}
