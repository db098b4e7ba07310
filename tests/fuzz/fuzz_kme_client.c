/* libFuzzer target: the ETSI GS QKD 014 client's response parsers
 * (lib/kme/kme_client_parse.c): Status, Key container and Error object as a KME
 * might send them. The input, read with the bounded reader:
 *
 *   u8 mode (mod 4: Status, Key container of enc_keys, Key container of
 *   dec_keys, Error object; bit 2: name the slave SAE_B for Status),
 *   u8 number (1 + n mod 4 keys expected), u8 size (mod 4: any, 8, 32 or
 *   256 bits), then the body (raw bytes, any length).
 *
 * dec_keys expects the first `number` of four fixed key_IDs. Besides not
 * crashing, leaking or reading out of bounds, it checks the parsers'
 * promises: a Status that passes has its relations (sizes ordered, stored
 * <= max, visible IDs, the slave asked for); a Key container that passes
 * has exactly the keys asked for, of the size asked for, with distinct
 * key_IDs (those asked for, for dec_keys), and every key re-encodes to the
 * very base64 text received; a failure leaves nothing allocated; an Error
 * object's message and details are printable ASCII and NUL-terminated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "qkd/error.h"
#include "qkd/kme_client.h"
#include "qkd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const dec_ids[4] = {
	"00000000-0000-4000-8000-000000000000", "11111111-1111-4111-8111-111111111111",
	"22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333",
};

static bool visible(const char *s)
{
	if (s[0] == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			return false;
	return true;
}

static bool printable(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == cap)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] >= 0x7f)
			return false;
	return true;
}

static void fz_status(const char *body, size_t len, bool named)
{
	struct qkd_kme_status st;
	int rc = qkd_kme_parse_status(body, len, named ? "SAE_B" : NULL, &st, NULL);

	if (rc != 0) {
		if (st.key_size != 0 || st.body != NULL)
			abort();
		return;
	}
	if (st.min_key_size < 1 || st.min_key_size > st.key_size || st.key_size > st.max_key_size ||
	    st.max_key_per_request < 1 || st.stored_key_count > st.max_key_count ||
	    !visible(st.source_kme_id) || !visible(st.target_kme_id) ||
	    !visible(st.master_sae_id) || !visible(st.slave_sae_id) ||
	    (named && strcmp(st.slave_sae_id, "SAE_B") != 0))
		abort();
	qkd_kme_status_cleanup(&st);
}

/* Key i re-encodes to the base64 text the body carried. */
static void check_b64(const char *body, size_t len, const struct qkd_kme_keys *k)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	json_t *keys = json_object_get(root, "keys");
	char b64[QKD_ETSI014_KEY_BITS_MAX / 6 + 8];

	if (json_array_size(keys) != k->n)
		abort();
	for (size_t i = 0; i < k->n; i++) {
		const json_t *item = json_array_get(keys, i);

		sodium_bin2base64(b64, sizeof b64, k->keys[i].bytes, k->keys[i].len,
				  sodium_base64_VARIANT_ORIGINAL);
		if (strcmp(b64, json_string_value(json_object_get(item, "key"))) != 0)
			abort();
	}
	json_decref(root);
}

static void fz_keys(const char *body, size_t len, size_t number, uint32_t bits, bool dec)
{
	struct qkd_etsi014_uuid ids[4];
	struct qkd_kme_keys_expect ex = { number, bits, dec ? ids : NULL };
	struct qkd_kme_keys k;

	for (size_t i = 0; i < 4; i++)
		if (qkd_etsi014_uuid_parse(dec_ids[i], strlen(dec_ids[i]), &ids[i]) != 0)
			abort();
	if (qkd_kme_parse_keys(body, len, &ex, &k, NULL) != 0) {
		if (k.keys != NULL || k.buf != NULL || k.n != 0)
			abort();
		return;
	}
	if (k.n != number)
		abort();
	for (size_t i = 0; i < k.n; i++) {
		bool asked = !dec;

		if (k.keys[i].len == 0 || (bits != 0 && k.keys[i].len * 8 != bits) ||
		    (!dec && k.keys[i].len != k.keys[0].len))
			abort();
		for (size_t j = 0; j < i; j++)
			if (memcmp(&k.keys[j].id, &k.keys[i].id, sizeof k.keys[i].id) == 0)
				abort();
		for (size_t j = 0; dec && j < number; j++)
			asked = asked || memcmp(&ids[j], &k.keys[i].id, sizeof ids[j]) == 0;
		if (!asked)
			abort();
	}
	check_b64(body, len, &k);
	qkd_kme_keys_cleanup(&k);
}

static void fz_error(const char *body, size_t len, unsigned status)
{
	struct qkd_kme_error err;
	int rc = qkd_kme_parse_error(status, body, len, &err);

	if ((rc != 0 && rc != QKD_ERR_PROTO) || err.http_status != status ||
	    !printable(err.message, sizeof err.message) ||
	    !printable(err.details, sizeof err.details) ||
	    (rc == 0 && err.details[0] != '\0' && err.details[0] != '['))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t sizes[4] = { 0, 8, 32, 256 };
	struct qkd_rbuf in;
	uint8_t mode, number, sz;
	const char *body;
	size_t len;

	if (size > ((size_t)1 << 20))
		return 0;
	qkd_rbuf_init(&in, data, size);
	mode = qkd_get_u8(&in);
	number = qkd_get_u8(&in);
	sz = qkd_get_u8(&in);
	if (!qkd_rbuf_ok(&in))
		return 0;
	len = qkd_rbuf_left(&in);
	body = (const char *)qkd_get_bytes(&in, len);
	switch (mode % 4) {
	case 0:
		fz_status(body, len, mode & 4);
		break;
	case 1:
	case 2:
		fz_keys(body, len, 1 + number % 4, sizes[sz % 4], mode % 4 == 2);
		break;
	default:
		fz_error(body, len, 400 + number);
		break;
	}
	return 0;
}
