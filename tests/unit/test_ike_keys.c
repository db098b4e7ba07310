/* test_ike_keys.c - the IKEv2 key schedule (qkd/ike_keys.h, lib/vpn/ike_keys.c).
 *
 * prf against the published HMAC-SHA-256 vectors of RFC 4231 (cases 1-4, 6,
 * 7; case 5 is a truncated output, which IKE never uses), prf+ against the
 * HKDF-Expand step of RFC 5869 test cases 1-3. The IKE derivations have no
 * published vectors: the V_* values below were computed independently with
 * the openssl command line by tests/tools/ike_vectors.sh and pasted here
 * as it printed them (rerun it to check). Then the contracts: bounds,
 * aliasing, constant-time checks that fail on any change.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "qkd/error.h"
#include "qkd/ike_keys.h"

#define V_NI                   "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define V_NR                   "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
#define V_SPII                 "0102030405060708"
#define V_SPIR                 "1112131415161718"
#define V_GIR                  "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
#define V_GIR_NEW              "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
#define V_NI2                  "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
#define V_NR2                  "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
#define V_PPK                  "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
#define V_PSK                  "716b646e657420746573742070736b"
#define V_MSG1                 "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define V_IDB                  "0200000067772d612e6578616d706c65"
#define V_SKEYSEED             "fb7b0d6107cf71fb87cb4f19020bd81cc0f757a8f6a81a8a62c5b6f3a2660ac5"
#define V_SK_D                 "0c26341d77313c227236f4aebf29182f0629dbe10e8ac56347f067a8defc22d5"
#define V_SK_EI                "8748594d3353b3e04121026ebf49d4a4907e2ae4eb2a9831832397da89af6f7968b67ce3"
#define V_SK_ER                "c70fad273ae0bbb34ee581341bbfd3303ab1d48166dde54604d0286bd75427665fbbb117"
#define V_SK_PI                "f4d9f877d73606ca959fbdb34f746d24f8939191f8d3af60fc816d7edfca54ae"
#define V_SK_PR                "0e23cdb44dc9e8476619d587774b27a4824b6c47d2e341e57237e03458c7e3e9"
#define V_SKEYSEED_REKEY       "0975e02c72a47de03ac58e82bd7908e2bd0e002242b7e4c4b46270da098b6ac5"
#define V_KEYMAT               "812e23dd93e618a2c42ce5419023acf898bd90609872d4067322bdc9d93bee26fe9ea6c7c77caef05fb0175aa15aef97240234ffce30fc996cd905e0cf0272f2b703b98c6717888a"
#define V_KEYMAT_DH            "3d7e8946d16bdfe63ca57b07b8f61519c09bbc5cd565d98b2f17cdc73b77323c7f3e3ebaabd0f1786625b4ca97518787cdc80bbca7db4c74ad1d2b44a84a860759f732f973d1ca21"
#define V_SK_D_PPK             "db7d603768795ba99bf28e3d1759670bdd4e52335d22e5dc30315072d4ab2dbe"
#define V_SK_PI_PPK            "ba317fbe25e05b4fb1c39393532a6842b781b40028d3562dada0ff1d68e50fe4"
#define V_SK_PR_PPK            "ec08e7f6a262e0d79e683ebb5f44b6493ed10210492a14e4e2ad52e1d1dd13dc"
#define V_KEYMAT_PPK           "7d1a8fb6ea6c7495d8ab1f227ad7ee756c09abe15720e98b7565052ab1885b3ec2d5b584a921bda3d4a973af38b71d39a0916124a30ef8176522fd1b5547779a81e0f7d3803f1e7a"
#define V_REKEY_PPK            "3b69d31692a4991e6f6291cacccd2c2d432b1dcca56cdcf3adbb566788f62a8a"
#define V_PPK_CONFIRM          "2859d64b6322d18f"
#define V_PSK_AUTH             "0ed8d2a6f038c1d4b57363daa046891be26f15acce8065d604c89ee1c238f695"

/* Hex to bytes; fails the test on odd length or overflow. */
static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = strlen(h) / 2;

	assert_int_equal(strlen(h) % 2, 0);
	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void assert_hex(const uint8_t *got, size_t len, const char *want)
{
	uint8_t w[512];

	assert_int_equal(unhex(want, w, sizeof w), len);
	assert_memory_equal(got, w, len);
}

/* A span over decoded hex kept in a static pool (the tests are serial). */
static struct qkd_ike_span H(const char *h)
{
	static uint8_t pool[16][512];
	static unsigned next;
	uint8_t *p = pool[next++ % 16];

	return (struct qkd_ike_span){ p, unhex(h, p, sizeof pool[0]) };
}

static void fill(uint8_t *p, uint8_t v, size_t n)
{
	memset(p, v, n);
}

/* ---- prf: RFC 4231 ---- */

static void test_prf_rfc4231(void **state)
{
	static const struct {
		uint8_t key_byte;	/* 0: the counting key of case 4 */
		size_t key_len;
		const char *data;	/* text, or NULL for data_byte * data_len */
		uint8_t data_byte;
		size_t data_len;
		const char *mac;
	} tc[] = {
		{ 0x0b, 20, "Hi There", 0, 0,
		  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
		{ 0xaa, 20, NULL, 0xdd, 50,
		  "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
		{ 0, 25, NULL, 0xcd, 50,
		  "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
		{ 0xaa, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 0, 0,
		  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
		{ 0xaa, 131, "This is a test using a larger than block-size key and a larger "
			     "than block-size data. The key needs to be hashed before being "
			     "used by the HMAC algorithm.", 0, 0,
		  "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
	};
	uint8_t key[131], data[64], out[QKD_IKE_PRF_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof tc / sizeof tc[0]; i++) {
		struct qkd_ike_span s;

		for (size_t k = 0; k < tc[i].key_len; k++)
			key[k] = tc[i].key_byte != 0 ? tc[i].key_byte : (uint8_t)(k + 1);
		if (tc[i].data != NULL) {
			s = (struct qkd_ike_span){ (const uint8_t *)tc[i].data, strlen(tc[i].data) };
		} else {
			fill(data, tc[i].data_byte, tc[i].data_len);
			s = (struct qkd_ike_span){ data, tc[i].data_len };
		}
		assert_int_equal(qkd_ike_prf(key, tc[i].key_len, &s, 1, out), 0);
		assert_hex(out, sizeof out, tc[i].mac);
	}
	/* Case 2 ("Jefe"), with the data split over spans, one of them empty. */
	{
		struct qkd_ike_span parts[3] = {
			{ (const uint8_t *)"what do ya ", 11 }, { NULL, 0 },
			{ (const uint8_t *)"want for nothing?", 17 },
		};

		assert_int_equal(qkd_ike_prf((const uint8_t *)"Jefe", 4, parts, 3, out), 0);
		assert_hex(out, sizeof out,
			   "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	}
	assert_int_equal(qkd_ike_prf(key, 0, NULL, 0, out), QKD_ERR_INVAL);
}

/* ---- prf+: RFC 5869 HKDF-Expand, test cases 1-3 ---- */

static void test_prfplus_rfc5869(void **state)
{
	static const struct {
		const char *prk, *info, *okm;
	} tc[] = {
		{ "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
		  "f0f1f2f3f4f5f6f7f8f9",
		  "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
		  "34007208d5b887185865" },
		{ "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
		  "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
		  "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
		  "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
		  "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
		  "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
		  "cc30c58179ec3e87c14c01d5c1f3434f1d87" },
		{ "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04", "",
		  "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
		  "9d201395faa4b61a96c8" },
	};
	uint8_t okm[128];

	(void)state;
	for (size_t i = 0; i < sizeof tc / sizeof tc[0]; i++) {
		struct qkd_ike_span prk = H(tc[i].prk), info = H(tc[i].info);
		size_t len = strlen(tc[i].okm) / 2;

		assert_int_equal(qkd_ike_prfplus(prk.p, prk.len, &info, 1, okm, len), 0);
		assert_hex(okm, len, tc[i].okm);
	}
}

/* Bounds of section 2.13 (255 blocks) and the prefix property: a shorter
 * prf+ output is the start of a longer one. */
static void test_prfplus_bounds(void **state)
{
	static uint8_t big[QKD_IKE_PRFPLUS_MAX + 1];
	uint8_t key[32], first[100];
	struct qkd_ike_span s = { (const uint8_t *)"seed", 4 };

	(void)state;
	fill(key, 7, sizeof key);
	assert_int_equal(qkd_ike_prfplus(key, sizeof key, &s, 1, first, sizeof first), 0);
	assert_int_equal(qkd_ike_prfplus(key, sizeof key, &s, 1, big, QKD_IKE_PRFPLUS_MAX), 0);
	assert_memory_equal(big, first, sizeof first);
	assert_int_equal(qkd_ike_prfplus(key, sizeof key, &s, 1, big, 1), 0);
	assert_int_equal(big[0], first[0]);
	fill(big, 0x55, sizeof big);
	assert_int_equal(qkd_ike_prfplus(key, sizeof key, &s, 1, big, QKD_IKE_PRFPLUS_MAX + 1),
			 QKD_ERR_INVAL);
	assert_int_equal(qkd_ike_prfplus(key, sizeof key, &s, 1, big, 0), QKD_ERR_INVAL);
	assert_int_equal(qkd_ike_prfplus(NULL, 0, &s, 1, big, 32), QKD_ERR_INVAL);
}

/* ---- section 2.14, 2.17, 2.18 ---- */

static void test_sa_keys(void **state)
{
	uint8_t skeyseed[QKD_IKE_PRF_LEN], spi_i[8], spi_r[8];
	struct qkd_ike_sa_keys k, k16;

	(void)state;
	unhex(V_SPII, spi_i, 8);
	unhex(V_SPIR, spi_r, 8);
	assert_int_equal(qkd_ike_skeyseed(H(V_NI), H(V_NR), H(V_GIR), skeyseed), 0);
	assert_hex(skeyseed, sizeof skeyseed, V_SKEYSEED);
	assert_int_equal(qkd_ike_sa_keys_derive(skeyseed, H(V_NI), H(V_NR), spi_i, spi_r, 32, &k), 0);
	assert_int_equal(k.enc_len, 36);
	assert_hex(k.sk_d, 32, V_SK_D);
	assert_hex(k.sk_ei, 36, V_SK_EI);
	assert_hex(k.sk_er, 36, V_SK_ER);
	assert_hex(k.sk_pi, 32, V_SK_PI);
	assert_hex(k.sk_pr, 32, V_SK_PR);
	/* AES-128-GCM: 16 + 4 octets, taken from the same prf+ stream. */
	assert_int_equal(qkd_ike_sa_keys_derive(skeyseed, H(V_NI), H(V_NR), spi_i, spi_r, 16, &k16), 0);
	assert_int_equal(k16.enc_len, 20);
	assert_memory_equal(k16.sk_d, k.sk_d, 32);
	assert_memory_equal(k16.sk_ei, k.sk_ei, 20);
	assert_memory_equal(k16.sk_er, k.sk_ei + 20, 16);
	/* Out of domain: a key length GCM does not have, a short nonce, no g^ir. */
	assert_int_equal(qkd_ike_sa_keys_derive(skeyseed, H(V_NI), H(V_NR), spi_i, spi_r, 20, &k16),
			 QKD_ERR_INVAL);
	assert_int_equal(qkd_ike_skeyseed(H("0001020304050607"), H(V_NR), H(V_GIR), skeyseed),
			 QKD_ERR_INVAL);
	assert_int_equal(qkd_ike_skeyseed(H(V_NI), H(V_NR), H(""), skeyseed), QKD_ERR_INVAL);
	qkd_ike_sa_keys_wipe(&k);
	qkd_ike_sa_keys_wipe(&k16);
	qkd_ike_sa_keys_wipe(NULL);
}

static void test_rekey_and_child(void **state)
{
	uint8_t sk_d[32], out[QKD_IKE_PRF_LEN], km[72];

	(void)state;
	unhex(V_SK_D, sk_d, 32);
	assert_int_equal(qkd_ike_skeyseed_rekey(sk_d, H(V_GIR_NEW), H(V_NI2), H(V_NR2), out), 0);
	assert_hex(out, sizeof out, V_SKEYSEED_REKEY);
	assert_int_equal(qkd_ike_child_keymat(sk_d, H(""), H(V_NI2), H(V_NR2), km, sizeof km), 0);
	assert_hex(km, sizeof km, V_KEYMAT);
	assert_int_equal(qkd_ike_child_keymat(sk_d, H(V_GIR_NEW), H(V_NI2), H(V_NR2), km,
					      sizeof km), 0);
	assert_hex(km, sizeof km, V_KEYMAT_DH);
	assert_int_equal(qkd_ike_skeyseed_rekey(sk_d, H(""), H(V_NI2), H(V_NR2), out),
			 QKD_ERR_INVAL);
}

/* ---- PPK: RFC 8784 and RFC 9867 ---- */

static void test_ppk_rfc8784(void **state)
{
	uint8_t ppk[32], skeyseed[32], spi_i[8], spi_r[8];
	struct qkd_ike_sa_keys k, m, other;

	(void)state;
	unhex(V_PPK, ppk, 32);
	unhex(V_SPII, spi_i, 8);
	unhex(V_SPIR, spi_r, 8);
	assert_int_equal(qkd_ike_skeyseed(H(V_NI), H(V_NR), H(V_GIR), skeyseed), 0);
	assert_int_equal(qkd_ike_sa_keys_derive(skeyseed, H(V_NI), H(V_NR), spi_i, spi_r, 32, &k), 0);
	assert_int_equal(qkd_ike_ppk_mix_auth(&k, ppk, sizeof ppk, &m), 0);
	assert_hex(m.sk_d, 32, V_SK_D_PPK);
	assert_hex(m.sk_pi, 32, V_SK_PI_PPK);
	assert_hex(m.sk_pr, 32, V_SK_PR_PPK);
	/* The encryption keys are not touched by RFC 8784. */
	assert_memory_equal(m.sk_ei, k.sk_ei, sizeof k.sk_ei);
	assert_memory_equal(m.sk_er, k.sk_er, sizeof k.sk_er);
	assert_int_equal(m.enc_len, k.enc_len);
	/* In place gives the same; another PPK gives other keys. */
	assert_int_equal(qkd_ike_ppk_mix_auth(&k, ppk, sizeof ppk, &k), 0);
	assert_memory_equal(&k, &m, sizeof k);
	ppk[31] ^= 1;
	assert_int_equal(qkd_ike_ppk_mix_auth(&k, ppk, sizeof ppk, &other), 0);
	assert_memory_not_equal(other.sk_d, m.sk_d, 32);
	assert_int_equal(qkd_ike_ppk_mix_auth(&k, ppk, 0, &other), QKD_ERR_INVAL);
}

static void test_ppk_rfc9867(void **state)
{
	uint8_t ppk[32], sk_d[32], sk_d2[32], km[72], out[32];

	(void)state;
	unhex(V_PPK, ppk, 32);
	unhex(V_SK_D, sk_d, 32);
	assert_int_equal(qkd_ike_ppk_mix_sk_d(sk_d, ppk, sizeof ppk, sk_d2), 0);
	assert_int_equal(qkd_ike_child_keymat(sk_d2, H(""), H(V_NI2), H(V_NR2), km, sizeof km), 0);
	assert_hex(km, sizeof km, V_KEYMAT_PPK);
	assert_int_equal(qkd_ike_skeyseed_rekey(sk_d2, H(V_GIR_NEW), H(V_NI2), H(V_NR2), out), 0);
	assert_hex(out, sizeof out, V_REKEY_PPK);
	/* sk_d and out may alias. */
	assert_int_equal(qkd_ike_ppk_mix_sk_d(sk_d, ppk, sizeof ppk, sk_d), 0);
	assert_memory_equal(sk_d, sk_d2, 32);
}

static void test_ppk_confirm(void **state)
{
	uint8_t ppk[32], spi_i[8], spi_r[8], c[QKD_IKE_PPK_CONFIRM_LEN];

	(void)state;
	unhex(V_PPK, ppk, 32);
	unhex(V_SPII, spi_i, 8);
	unhex(V_SPIR, spi_r, 8);
	assert_int_equal(qkd_ike_ppk_confirm(ppk, 32, H(V_NI), H(V_NR), spi_i, spi_r, c), 0);
	assert_hex(c, sizeof c, V_PPK_CONFIRM);
	assert_int_equal(qkd_ike_ppk_confirm_check(ppk, 32, H(V_NI), H(V_NR), spi_i, spi_r,
						   (struct qkd_ike_span){ c, sizeof c }), 0);
	for (size_t i = 0; i < sizeof c; i++) {
		c[i] ^= 0x80;
		assert_int_equal(qkd_ike_ppk_confirm_check(ppk, 32, H(V_NI), H(V_NR), spi_i, spi_r,
							   (struct qkd_ike_span){ c, sizeof c }),
				 QKD_ERR_VERIFY);
		c[i] ^= 0x80;
	}
	assert_int_equal(qkd_ike_ppk_confirm_check(ppk, 32, H(V_NI), H(V_NR), spi_i, spi_r,
						   (struct qkd_ike_span){ c, sizeof c - 1 }),
			 QKD_ERR_VERIFY);
	ppk[0] ^= 1;
	assert_int_equal(qkd_ike_ppk_confirm_check(ppk, 32, H(V_NI), H(V_NR), spi_i, spi_r,
						   (struct qkd_ike_span){ c, sizeof c }),
			 QKD_ERR_VERIFY);
}

/* ---- section 2.15: AUTH with a PSK ---- */

static void test_psk_auth(void **state)
{
	uint8_t sk_pi[32], auth[32];
	struct qkd_ike_span psk = H(V_PSK);
	struct qkd_ike_auth_input in = {
		.real_message = H(V_MSG1), .peer_nonce = H(V_NR), .sk_p = sk_pi, .id_body = H(V_IDB),
	};

	(void)state;
	unhex(V_SK_PI, sk_pi, 32);
	assert_int_equal(qkd_ike_psk_auth(psk.p, psk.len, &in, auth), 0);
	assert_hex(auth, sizeof auth, V_PSK_AUTH);
	assert_int_equal(qkd_ike_psk_auth_check(psk.p, psk.len, &in,
						(struct qkd_ike_span){ auth, sizeof auth }), 0);
	auth[17] ^= 4;
	assert_int_equal(qkd_ike_psk_auth_check(psk.p, psk.len, &in,
						(struct qkd_ike_span){ auth, sizeof auth }),
			 QKD_ERR_VERIFY);
	auth[17] ^= 4;
	/* Every input counts: another ID, another SK_pi, another PSK. */
	in.id_body = H("0200000067772d622e6578616d706c65");
	assert_int_equal(qkd_ike_psk_auth_check(psk.p, psk.len, &in,
						(struct qkd_ike_span){ auth, sizeof auth }),
			 QKD_ERR_VERIFY);
	in.id_body = H(V_IDB);
	sk_pi[0] ^= 1;
	assert_int_equal(qkd_ike_psk_auth_check(psk.p, psk.len, &in,
						(struct qkd_ike_span){ auth, sizeof auth }),
			 QKD_ERR_VERIFY);
	sk_pi[0] ^= 1;
	assert_int_equal(qkd_ike_psk_auth_check(psk.p, psk.len - 1, &in,
						(struct qkd_ike_span){ auth, sizeof auth }),
			 QKD_ERR_VERIFY);
	in.sk_p = NULL;
	assert_int_equal(qkd_ike_psk_auth(psk.p, psk.len, &in, auth), QKD_ERR_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prf_rfc4231),
		cmocka_unit_test(test_prfplus_rfc5869),
		cmocka_unit_test(test_prfplus_bounds),
		cmocka_unit_test(test_sa_keys),
		cmocka_unit_test(test_rekey_and_child),
		cmocka_unit_test(test_ppk_rfc8784),
		cmocka_unit_test(test_ppk_rfc9867),
		cmocka_unit_test(test_ppk_confirm),
		cmocka_unit_test(test_psk_auth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
