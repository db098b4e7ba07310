/* test_esp.c - one ESP SA direction (lib/vpn/esp_context.c, esp_packet.c,
 * qkd/esp.h, docs/vpn.md "ESP data plane").
 *
 * Known answers: the AES-GCM ESP test cases of draft-mcgrew-gcm-test-01
 * (128- and 256-bit keys; the 192-bit ones and the one with SPI 0 use forms
 * this layer refuses, and the test checks that it does). Each is rebuilt as
 * the packet on the wire, SPI | seq low | IV | ciphertext | ICV, and must
 * decapsulate byte for byte to the vector's inner packet and next header.
 * Their IVs are arbitrary while this layer's IV is the sequence number, so
 * encapsulation is checked on the vector's AEAD part: the packet it builds
 * at the vector's sequence number, opened by OpenSSL directly with the
 * vector's key, salt || IV and AAD, must give the vector's plaintext
 * (inner, the same padding, pad length, next header) byte for byte.
 * Then: round trips (both key sizes, with and without ESN, every inner
 * length up to 80 and the largest), every malformed input (each truncation,
 * misaligned ciphertext, bad pad length and padding inside an authentic
 * packet, every flipped bit of header, IV, ciphertext and ICV, wrong SPI,
 * replay), lifetimes (soft and hard, seconds, bytes, packets, both
 * directions), counter exhaustion at 2^32 and 2^64, the ESN wrap of the low
 * half, SPI peeking and the RFC 3948 classification.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "qkd/error.h"
#include "qkd/esp.h"
#include "qkd/replay.h"
#include "qkd/testing.h"

#define MAXPKT (65535 + QKD_ESP_OVERHEAD_MAX)

struct kat {
	const char *key, *salt;
	uint32_t spi;
	bool esn;
	uint64_t seq;
	const char *iv, *plain, *ct_icv;
};

/* draft-mcgrew-gcm-test-01 section 4 (GCM cases with 128/256-bit keys). */
static const struct kat kats[] = {
	{ "4c80cdefbb5d10da906ac73c3613a634", "2e443b68", 0x00004321, true,
	  UINT64_C(0x8765432100000000), "4956ed7e3b244cfe",
	  "45000048699a000080114db7c0a80102c0a801010a9bf15638d3010000010000"
	  "00000000045f736970045f756470037369700963796265726369747902646b00"
	  "0021000101020201",
	  "fecf537e729d5b07dc30df528dd22b768d1b98736696a6fd348509fa13ceac34"
	  "cfa2436f14a3f3cf65925bf1f4a13c5d15b21e1884f5ff6247aeabb786b93bce"
	  "61bc17d768fd9732459018148f6cbe722fd04796562dfdb4" },
	{ "abbccddef00112233445566778899aababbccddef00112233445566778899aab", "11223344",
	  0x4a2cbfe3, false, 2, "0102030405060708",
	  "4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee000000000"
	  "7002400020bf0000020405b40101040201020201",
	  "ff425c9b724599df7a3bcd510194e00d6a78107f1b0b1cbf06efae9d65a5d763"
	  "748a637985771d347f0545659f14e99def842d8eb335f4eecfdbf831824b4c49"
	  "15956c96" },
	{ "3de09874b388e6491988d0c3607eae1f", "57690e43", 0x42f67e3f, true,
	  UINT64_C(0x1010101010101010), "4e280000a2fca1a3",
	  "4500003c99c300008001cb7c40679318010101010800085c0200430061626364"
	  "65666768696a6b6c6d6e6f707172737475767761626364656667686901020201",
	  "fba2caa4853cf9f0f22cb10d86dd83b0fec75691cf1a04b00d1138ec9c357917"
	  "65acbd8701ad79845bf9fe3fba487bc91755e6662b4c8d0d1f5e22739530320a"
	  "e0d731cc978ecafaeae88f00e80d6e48" },
	{ "3de09874b388e6491988d0c3607eae1f", "57690e43", 0x42f67e3f, true,
	  UINT64_C(0x1010101010101010), "4e280000a2fca1a3",
	  "4500001c42a200008001441f406793b6e00000020a00f5ff01020201",
	  "fba2ca845e5df9f0f22c3e6e86dd831e1fc65792cd1af9130e1379ed369f071f"
	  "35e034be95f112e4e7d05d35" },
	{ "abbccddef00112233445566778899aab", "decaf888", 0x00000100, true, 1,
	  "cafedebaceface74",
	  "4500004933ba00007f119106c3fb1d10c2b1d326c02831ce0035dd7b800302d5"
	  "00004e20001e8c18d75b81dc91baa0476b91b924b280389d92c963bac046ec95"
	  "9b6266c04722b14923010101",
	  "18a6fd42f72cbf4ab2a2ea901f73d814e3e7f243d95412e1c349c1d2fbec168f"
	  "9190feebaf2cb01984e65863965d7472b79da345e0e780191f0d2f0e0f496c22"
	  "6f2127b27db35724e7845d68651f57e65f354f75ff17015769623436" },
	{ "abbccddef00112233445566778899aababbccddef00112233445566778899aab", "73616c74",
	  0x17405e67, true, UINT64_C(0x156f3126dd0db99b), "616e640169766563",
	  "45080028732c00004006e9f90a0106120a01038f06b88023dd6bafbecb712602"
	  "50101f646d540001",
	  "f2d69ecdbd5a0d5b8d5ef38bad4da58d1f278fde98ef67549d524a3018d9a57f"
	  "f4d3a31ce673119e451626c2415771e3b7eebca614c89b35" },
	{ "3de09874b388e6491988d0c3607eae1f", "57690e43", 0x42f67e3f, true,
	  UINT64_C(0x1010101010101010), "4e280000a2fca1a3",
	  "45000049333e00007f119182c3fb1d10c2b1d326c02831ce0035cb458003025b"
	  "000001e0001e8c18d65759d52284a0352c71475c8880391c764d6e5ee0496b32"
	  "5ae270c03899493915010101",
	  "fba2cad12fc1f9f00d3cebf305410db83d7784b607323d220f24b0a97d541828"
	  "00cadb0f68d99ef0e0c0c89ae9bea8884e52d65bc1afd0740f742444747b5b39"
	  "ab533163aad4550ee5160975cdb608c5769189609763b8e18caa81e2" },
	{ "abbccddef00112233445566778899aababbccddef00112233445566778899aab", "73616c74",
	  0x17405e67, true, UINT64_C(0x156f3126dd0db99b), "616e640169766563",
	  "636973636f0172756c657301746865016e6574776501646566696e6501746865"
	  "746563686e6f6c6f67696573017468617477696c6c01646566696e65746f6d6f"
	  "72726f7701020201",
	  "d4b7ed86a1777f2ea13d6973d324c69e7b43f826fb56831226508bebd2dceb18"
	  "d0a6df10e5487df074113e14c641024e3e6773d91a62ee429b043a10e3efe6b0"
	  "12a49363412364f8c0cac587f249e56b11e24f30e44ccc76" },
	{ "7d773d00c144c525ac619d18c84a3f47", "d9664267", 0x335467ae, false, 0xffffffffu,
	  "43457e9182443bc6", "01020201", "437f866bcb3f699fe9b0822bac961c4504bef270" },
	{ "abbccddef00112233445566778899aab", "decaf888", 0x00000100, true, 1,
	  "cafedebaceface74", "746f016265016f72016e6f7401746f0162650001",
	  "29c9fc69a197d038ccdd14e2ddfcaa0543332164412503524303ed3c6c5f2838"
	  "43af8c3e" },
	{ "6c6567616c697a656d6172696a75616e61616e64646f69746265666f72656961", "7475726e",
	  0x796b6963, true, UINT64_MAX, "333021696765746d",
	  "45000030da3a00008001df3bc0a80005c0a800010800c6cd0200070061626364"
	  "65666768696a6b6c6d6e6f707172737401020201",
	  "f97ab2aa356d8edce17644ac8c78e25dd24dedbb29ebf1b64a274b39b49c3a86"
	  "4cd3d78ca4ae68a32b42458fb57dbe821dcc63b9d0937ba2945f669368661a32"
	  "9fb4c053" },
};

static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = strlen(h) / 2;

	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static struct qkd_esp_sa *sa_make(enum qkd_esp_dir dir, const uint8_t *km, size_t kmlen,
				  uint32_t spi, bool esn)
{
	struct qkd_esp_params p = { .dir = dir, .spi = spi, .keymat = km, .keymat_len = kmlen,
				    .esn = esn, .now = 1000 };
	struct qkd_esp_sa *sa = NULL;

	assert_int_equal(qkd_esp_sa_new(&p, &sa), QKD_OK);
	assert_non_null(sa);
	return sa;
}

/* The wire packet of a vector: SPI | seq low | IV | ciphertext | ICV. */
static size_t kat_packet(const struct kat *k, uint8_t *pkt)
{
	be32(pkt, k->spi);
	be32(pkt + 4, (uint32_t)k->seq);
	unhex(k->iv, pkt + 8);
	return 16 + unhex(k->ct_icv, pkt + 16);
}

static size_t kat_keymat(const struct kat *k, uint8_t *km)
{
	size_t n = unhex(k->key, km);

	return n + unhex(k->salt, km + n);
}

static void test_kat_decapsulate(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof kats / sizeof kats[0]; i++) {
		const struct kat *k = &kats[i];
		uint8_t km[36], pkt[256], plain[256], out[256], nh = 0;
		size_t kmlen = kat_keymat(k, km), len = kat_packet(k, pkt);
		size_t plen = unhex(k->plain, plain), inner = plen - 2 - plain[plen - 2], olen;
		struct qkd_esp_sa *in = sa_make(QKD_ESP_IN, km, kmlen, k->spi, k->esn);

		qkd_esp_testing_set_seq(in, k->seq - 1);	/* the window just below */
		assert_int_equal(qkd_esp_decapsulate(in, pkt, len, out, sizeof out, &olen, &nh), QKD_OK);
		assert_int_equal(olen, inner);
		assert_memory_equal(out, plain, inner);
		assert_int_equal(nh, plain[plen - 1]);
		assert_int_equal(qkd_esp_sa_packets(in), 1);
		assert_int_equal(qkd_esp_sa_bytes(in), inner);
		/* the same packet again is a replay */
		assert_int_equal(qkd_esp_decapsulate(in, pkt, len, out, sizeof out, &olen, &nh),
				 QKD_ERR_ABORT);
		qkd_esp_sa_free(in);
	}
}

/* OpenSSL alone, as the reference AEAD: open ct under key, nonce, aad. */
static int ref_open(const uint8_t *key, size_t klen, const uint8_t nonce[12], const uint8_t *aad,
		    size_t alen, const uint8_t *ct, size_t n, const uint8_t *tag, uint8_t *pt)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int m, ok;

	assert_non_null(c);
	ok = EVP_DecryptInit_ex(c, klen == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm(), NULL, key,
				nonce) == 1 &&
	     EVP_DecryptUpdate(c, NULL, &m, aad, (int)alen) == 1 &&
	     EVP_DecryptUpdate(c, pt, &m, ct, (int)n) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) == 1 &&
	     EVP_DecryptFinal_ex(c, pt + n, &m) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

static void ref_seal(const uint8_t *key, size_t klen, const uint8_t nonce[12], const uint8_t *aad,
		     size_t alen, const uint8_t *pt, size_t n, uint8_t *ct, uint8_t *tag)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int m;

	assert_non_null(c);
	assert_int_equal(EVP_EncryptInit_ex(c, klen == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm(),
					    NULL, key, nonce), 1);
	assert_int_equal(EVP_EncryptUpdate(c, NULL, &m, aad, (int)alen), 1);
	assert_int_equal(EVP_EncryptUpdate(c, ct, &m, pt, (int)n), 1);
	assert_int_equal(EVP_EncryptFinal_ex(c, ct + n, &m), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag), 1);
	EVP_CIPHER_CTX_free(c);
}

/* The AAD of RFC 4106 s5, written independently of the library. */
static size_t ref_aad(uint32_t spi, bool esn, uint64_t seq, uint8_t aad[12])
{
	be32(aad, spi);
	if (!esn) {
		be32(aad + 4, (uint32_t)seq);
		return 8;
	}
	be32(aad + 4, (uint32_t)(seq >> 32));
	be32(aad + 8, (uint32_t)seq);
	return 12;
}

static void test_kat_encapsulate(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof kats / sizeof kats[0]; i++) {
		const struct kat *k = &kats[i];
		uint8_t km[36], plain[256], out[256], got[256], nonce[12], aad[12];
		size_t kmlen = kat_keymat(k, km), plen = unhex(k->plain, plain), olen, alen;
		size_t inner = plen - 2 - plain[plen - 2], ct = plen;
		struct qkd_esp_sa *o = sa_make(QKD_ESP_OUT, km, kmlen, k->spi, k->esn);

		qkd_esp_testing_set_seq(o, k->seq - 1);
		assert_int_equal(qkd_esp_encapsulate(o, plain[plen - 1], plain, inner, out,
						     sizeof out, &olen), QKD_OK);
		assert_int_equal(olen, 16 + ct + 16);
		/* header: SPI, seq low, IV = the 64-bit sequence number */
		assert_int_equal(((uint32_t)out[0] << 24 | (uint32_t)out[1] << 16 |
				  (uint32_t)out[2] << 8 | out[3]), k->spi);
		for (int b = 0; b < 4; b++)
			assert_int_equal(out[4 + b], (uint8_t)(k->seq >> (24 - 8 * b)));
		for (int b = 0; b < 8; b++)
			assert_int_equal(out[8 + b], (uint8_t)(k->seq >> (56 - 8 * b)));
		memcpy(nonce, km + kmlen - 4, 4);
		memcpy(nonce + 4, out + 8, 8);
		alen = ref_aad(k->spi, k->esn, k->seq, aad);
		assert_int_equal(ref_open(km, kmlen - 4, nonce, aad, alen, out + 16, ct,
					  out + 16 + ct, got), 0);
		assert_memory_equal(got, plain, plen);
		qkd_esp_sa_free(o);
	}
}

static void test_kat_refused_forms(void **state)
{
	/* Test case 2 (192-bit key) and the all-zero case with SPI 0. */
	uint8_t km[28] = { 0 };
	struct qkd_esp_params p = { .dir = QKD_ESP_IN, .spi = 0xa5f8, .keymat = km,
				    .keymat_len = 28 };
	struct qkd_esp_sa *sa = (struct qkd_esp_sa *)1;

	(void)state;
	assert_int_equal(qkd_esp_sa_new(&p, &sa), QKD_ERR_INVAL);
	assert_null(sa);
	p.keymat_len = 20;
	p.spi = 0;
	assert_int_equal(qkd_esp_sa_new(&p, &sa), QKD_ERR_INVAL);
	p.spi = 255;
	assert_int_equal(qkd_esp_sa_new(&p, &sa), QKD_ERR_INVAL);
	p.spi = 256;
	assert_int_equal(qkd_esp_sa_new(&p, &sa), QKD_OK);
	qkd_esp_sa_free(sa);
	p.keymat_len = 16;	/* salt missing */
	assert_int_equal(qkd_esp_sa_new(&p, &sa), QKD_ERR_INVAL);
	p.keymat_len = 36;
	p.keymat = NULL;
	assert_int_equal(qkd_esp_sa_new(&p, &sa), QKD_ERR_INVAL);
	qkd_esp_sa_free(NULL);
}

static const uint8_t km256[36] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
	19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 0xa1, 0xb2, 0xc3, 0xd4,
};

static void pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

static void roundtrip(size_t kmlen, bool esn)
{
	uint8_t km[36], *in = malloc(65535), *pkt = malloc(MAXPKT), *back = malloc(MAXPKT);
	struct qkd_esp_sa *o, *i;
	size_t lens[84], nl = 0, plen, blen;
	uint8_t nh;

	assert_non_null(in);
	assert_non_null(pkt);
	assert_non_null(back);
	memcpy(km, km256, 32);
	memcpy(km + kmlen - 4, km256 + 32, 4);
	o = sa_make(QKD_ESP_OUT, km, kmlen, 0x12345678, esn);
	i = sa_make(QKD_ESP_IN, km, kmlen, 0x12345678, esn);
	for (size_t n = 0; n <= 80; n++)
		lens[nl++] = n;
	lens[nl++] = 1400;
	lens[nl++] = 1500;
	lens[nl++] = 65535;
	for (size_t k = 0; k < nl; k++) {
		size_t n = lens[k];

		pattern(in, n, (unsigned)k);
		assert_int_equal(qkd_esp_encapsulate(o, k % 2 ? 41 : 4, in, n, pkt, MAXPKT, &plen),
				 QKD_OK);
		assert_int_equal(plen % 4, 0);
		assert_true(plen <= n + QKD_ESP_OVERHEAD_MAX);
		assert_true(plen >= n + 16 + 2 + 16);
		assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, back, MAXPKT, &blen, &nh), QKD_OK);
		assert_int_equal(blen, n);
		assert_int_equal(nh, k % 2 ? 41 : 4);
		if (n > 0)
			assert_memory_equal(back, in, n);
	}
	assert_int_equal(qkd_esp_sa_packets(o), nl);
	assert_int_equal(qkd_esp_sa_packets(i), nl);
	assert_int_equal(qkd_esp_sa_bytes(o), qkd_esp_sa_bytes(i));
	assert_int_equal(qkd_esp_sa_spi(o), 0x12345678);
	/* Too large an inner packet, too small an output, wrong direction. */
	assert_int_equal(qkd_esp_encapsulate(o, 4, in, 65536, pkt, MAXPKT + 1, &plen), QKD_ERR_RANGE);
	assert_int_equal(qkd_esp_encapsulate(o, 4, in, 100, pkt, 100 + 16 + 2 + 16 + 1, &plen),
			 QKD_ERR_RANGE);
	assert_int_equal(qkd_esp_encapsulate(o, 4, in, 100, pkt, 100 + 16 + 2 + 2 + 16, &plen),
			 QKD_OK);
	assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, back, 101, &blen, &nh), QKD_ERR_RANGE);
	assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, back, 104, &blen, &nh), QKD_OK);
	assert_int_equal(qkd_esp_encapsulate(i, 4, in, 10, pkt, MAXPKT, &plen), QKD_ERR_INVAL);
	assert_int_equal(qkd_esp_decapsulate(o, pkt, plen, back, MAXPKT, &blen, &nh), QKD_ERR_INVAL);
	qkd_esp_sa_free(o);
	qkd_esp_sa_free(i);
	free(in);
	free(pkt);
	free(back);
}

static void test_roundtrip(void **state)
{
	(void)state;
	roundtrip(20, false);
	roundtrip(20, true);
	roundtrip(36, false);
	roundtrip(36, true);
}

/* An authentic packet with any plaintext (e.g. a bad trailer), sealed with
 * the reference AEAD under km256's key at sequence number seq. */
static size_t forge_authentic(uint32_t spi, uint64_t seq, const uint8_t *pt, size_t n,
			      uint8_t *pkt)
{
	uint8_t nonce[12], aad[12];
	size_t alen = ref_aad(spi, false, seq, aad);

	be32(pkt, spi);
	be32(pkt + 4, (uint32_t)seq);
	be32(pkt + 8, 0x01020304);
	be32(pkt + 12, (uint32_t)seq);
	memcpy(nonce, km256 + 32, 4);
	memcpy(nonce + 4, pkt + 8, 8);
	ref_seal(km256, 32, nonce, aad, alen, pt, n, pkt + 16, pkt + 16 + n);
	return 16 + n + 16;
}

static void test_malformed(void **state)
{
	uint8_t in[64], pkt[256], bad[256], out[256], nh;
	struct qkd_esp_sa *o = sa_make(QKD_ESP_OUT, km256, 36, 0x1000, false);
	struct qkd_esp_sa *i = sa_make(QKD_ESP_IN, km256, 36, 0x1000, false);
	size_t plen, olen;

	(void)state;
	pattern(in, sizeof in, 3);
	assert_int_equal(qkd_esp_encapsulate(o, 4, in, 37, pkt, sizeof pkt, &plen), QKD_OK);
	/* Every truncation: malformed (a 4-byte-aligned cut that leaves a
	 * ciphertext fails the ICV instead). */
	for (size_t n = 0; n < plen; n++) {
		int rc = qkd_esp_decapsulate(i, pkt, n, out, sizeof out, &olen, &nh);

		if (n >= 16 + 4 + 16 && (n - 32) % 4 == 0)
			assert_int_equal(rc, QKD_ERR_VERIFY);
		else
			assert_int_equal(rc, QKD_ERR_PROTO);
		assert_int_equal(olen, 0);
	}
	/* One trailing byte: misaligned. */
	memcpy(bad, pkt, plen);
	bad[plen] = 0;
	assert_int_equal(qkd_esp_decapsulate(i, bad, plen + 1, out, sizeof out, &olen, &nh),
			 QKD_ERR_PROTO);
	/* Every single flipped bit: SPI -> not this SA, sequence number 1 -> 0
	 * a replay, anything else the ICV. Out is wiped. */
	for (size_t b = 0; b < plen * 8; b++) {
		int rc;

		memcpy(bad, pkt, plen);
		bad[b / 8] ^= (uint8_t)(1u << (b % 8));
		memset(out, 0xee, sizeof out);
		rc = qkd_esp_decapsulate(i, bad, plen, out, sizeof out, &olen, &nh);
		if (b < 32)
			assert_int_equal(rc, QKD_ERR_INVAL);
		else if (b < 64 && b % 8 == 0 && b / 8 == 7)
			assert_int_equal(rc, QKD_ERR_ABORT);	/* sequence number 1 -> 0 */
		else
			assert_int_equal(rc, QKD_ERR_VERIFY);
		if (b >= 64)	/* decryption ran: nothing of it may remain */
			for (size_t k = 0; k < plen - 32; k++)
				assert_int_equal(out[k], 0);
	}
	/* After all those forgeries the genuine packet is still accepted
	 * (the window moves only for authentic packets), once. */
	assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, out, sizeof out, &olen, &nh), QKD_OK);
	assert_int_equal(olen, 37);
	assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, out, sizeof out, &olen, &nh),
			 QKD_ERR_ABORT);
	assert_int_equal(qkd_esp_sa_packets(i), 1);
	qkd_esp_sa_free(o);
	qkd_esp_sa_free(i);
}

static void test_bad_trailer(void **state)
{
	struct qkd_esp_sa *i = sa_make(QKD_ESP_IN, km256, 36, 0x1000, false);
	uint8_t pt[40], pkt[128], out[128], nh;
	size_t plen, olen;
	uint64_t seq = 1;

	(void)state;
	pattern(pt, sizeof pt, 9);
	/* Pad length larger than the plaintext before it. */
	pt[6] = 5;
	pt[7] = 4;
	plen = forge_authentic(0x1000, seq++, pt, 8, pkt);
	pt[6] = 7;
	assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, out, sizeof out, &olen, &nh), QKD_ERR_PROTO);
	plen = forge_authentic(0x1000, seq++, pt, 8, pkt);
	assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, out, sizeof out, &olen, &nh), QKD_ERR_PROTO);
	/* Pad length 6 of 6 bytes before it: allowed if they are 1..6. */
	for (int k = 0; k < 6; k++)
		pt[k] = (uint8_t)(k + 1);
	pt[6] = 6;
	plen = forge_authentic(0x1000, seq++, pt, 8, pkt);
	assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, out, sizeof out, &olen, &nh), QKD_OK);
	assert_int_equal(olen, 0);
	assert_int_equal(nh, 4);
	/* Each padding byte wrong in turn. */
	for (int k = 0; k < 6; k++) {
		pt[k] ^= 0x40;
		plen = forge_authentic(0x1000, seq++, pt, 8, pkt);
		memset(out, 0xee, sizeof out);
		assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, out, sizeof out, &olen, &nh),
				 QKD_ERR_PROTO);
		for (int m = 0; m < 8; m++)
			assert_int_equal(out[m], 0);
		pt[k] ^= 0x40;
	}
	/* Padding the default scheme would not produce (more than 3 bytes) is
	 * still accepted when monotonic (RFC 4303 s2.4 allows up to 255). */
	for (int k = 0; k < 30; k++)
		pt[8 + k] = (uint8_t)(k + 1);
	pt[38] = 30;
	pt[39] = 41;
	plen = forge_authentic(0x1000, seq++, pt, 40, pkt);
	assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, out, sizeof out, &olen, &nh), QKD_OK);
	assert_int_equal(olen, 8);
	assert_int_equal(nh, 41);
	qkd_esp_sa_free(i);
}

static void test_wrong_spi_and_replay(void **state)
{
	struct qkd_esp_sa *o = sa_make(QKD_ESP_OUT, km256, 36, 0x2000, false);
	struct qkd_esp_sa *other = sa_make(QKD_ESP_IN, km256, 36, 0x2001, false);
	struct qkd_esp_sa *i = sa_make(QKD_ESP_IN, km256, 36, 0x2000, false);
	uint8_t in[20] = { 0x45 }, pkts[3][64], out[64], nh;
	size_t plen[3], olen;

	(void)state;
	for (int k = 0; k < 3; k++)
		assert_int_equal(qkd_esp_encapsulate(o, 4, in, sizeof in, pkts[k], 64, &plen[k]), QKD_OK);
	assert_int_equal(qkd_esp_decapsulate(other, pkts[0], plen[0], out, 64, &olen, &nh),
			 QKD_ERR_INVAL);
	/* out of order: 3, 1, 2, then each again */
	assert_int_equal(qkd_esp_decapsulate(i, pkts[2], plen[2], out, 64, &olen, &nh), QKD_OK);
	assert_int_equal(qkd_esp_decapsulate(i, pkts[0], plen[0], out, 64, &olen, &nh), QKD_OK);
	assert_int_equal(qkd_esp_decapsulate(i, pkts[1], plen[1], out, 64, &olen, &nh), QKD_OK);
	for (int k = 0; k < 3; k++)
		assert_int_equal(qkd_esp_decapsulate(i, pkts[k], plen[k], out, 64, &olen, &nh),
				 QKD_ERR_ABORT);
	/* Too old: a packet from far behind the window. */
	qkd_esp_testing_set_seq(i, 3 + QKD_REPLAY_WINDOW);
	assert_int_equal(qkd_esp_decapsulate(i, pkts[2], plen[2], out, 64, &olen, &nh), QKD_ERR_ABORT);
	qkd_esp_sa_free(o);
	qkd_esp_sa_free(other);
	qkd_esp_sa_free(i);
}

static void test_counter_exhaustion(void **state)
{
	struct qkd_esp_sa *o = sa_make(QKD_ESP_OUT, km256, 36, 0x3000, false);
	struct qkd_esp_sa *i = sa_make(QKD_ESP_IN, km256, 36, 0x3000, false);
	uint8_t in[8] = { 0 }, pkt[64], out[64], nh;
	size_t plen, olen;

	(void)state;
	qkd_esp_testing_set_seq(o, UINT32_MAX - 2);
	qkd_esp_testing_set_seq(i, UINT32_MAX - 2);
	for (int k = 0; k < 2; k++) {
		assert_int_equal(qkd_esp_sa_state(o, 1000), QKD_ESP_OK);
		assert_int_equal(qkd_esp_encapsulate(o, 4, in, 8, pkt, 64, &plen), QKD_OK);
		assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, out, 64, &olen, &nh), QKD_OK);
	}
	assert_int_equal(pkt[4] & pkt[5] & pkt[6] & pkt[7], 0xff);	/* 2^32 - 1 was sent */
	assert_int_equal(qkd_esp_sa_state(o, 1000), QKD_ESP_HARD_EXPIRED);
	assert_int_equal(qkd_esp_encapsulate(o, 4, in, 8, pkt, 64, &plen), QKD_ERR_NOKEY);
	assert_int_equal(plen, 0);
	assert_int_equal(qkd_esp_sa_packets(o), 2);
	qkd_esp_sa_free(o);
	qkd_esp_sa_free(i);

	/* ESN: the low half wraps (0xffffffff, then 0 on the wire) and goes
	 * on; the 64-bit counter ends at 2^64 - 1. */
	o = sa_make(QKD_ESP_OUT, km256, 36, 0x3000, true);
	i = sa_make(QKD_ESP_IN, km256, 36, 0x3000, true);
	qkd_esp_testing_set_seq(o, UINT32_MAX - 1);
	qkd_esp_testing_set_seq(i, UINT32_MAX - 1);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(qkd_esp_encapsulate(o, 4, in, 8, pkt, 64, &plen), QKD_OK);
		assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, out, 64, &olen, &nh), QKD_OK);
	}
	assert_int_equal(pkt[4] | pkt[5] | pkt[6], 0);
	assert_int_equal(pkt[7], 1);	/* 2^32 + 1: low half 1 on the wire */
	assert_int_equal(pkt[11], 1);	/* high half in the IV */
	qkd_esp_testing_set_seq(o, UINT64_MAX - 1);
	assert_int_equal(qkd_esp_encapsulate(o, 4, in, 8, pkt, 64, &plen), QKD_OK);
	assert_int_equal(qkd_esp_sa_state(o, 1000), QKD_ESP_HARD_EXPIRED);
	assert_int_equal(qkd_esp_encapsulate(o, 4, in, 8, pkt, 64, &plen), QKD_ERR_NOKEY);
	qkd_esp_sa_free(o);
	qkd_esp_sa_free(i);
}

static const struct qkd_esp_params life_params = {
	.dir = QKD_ESP_OUT, .spi = 0x4000, .keymat = km256, .keymat_len = 36, .now = 1000,
	.soft = { .seconds = 60, .bytes = 250, .packets = 8 },
	.hard = { .seconds = 90, .bytes = 300, .packets = 10 },
};

static void test_lifetime_seconds_bytes(void **state)
{
	struct qkd_esp_params p = life_params;
	struct qkd_esp_sa *o = NULL, *i = NULL;
	uint8_t in[100] = { 0 }, pkt[160], out[160], nh;
	size_t plen, olen;

	(void)state;
	assert_int_equal(qkd_esp_sa_new(&p, &o), QKD_OK);
	p.dir = QKD_ESP_IN;
	assert_int_equal(qkd_esp_sa_new(&p, &i), QKD_OK);
	/* seconds: soft at 60, hard at 90 after creation; a clock going
	 * backwards is no time elapsed */
	assert_int_equal(qkd_esp_sa_state(o, 999), QKD_ESP_OK);
	assert_int_equal(qkd_esp_sa_state(o, 1059), QKD_ESP_OK);
	assert_int_equal(qkd_esp_sa_state(o, 1060), QKD_ESP_SOFT_EXPIRED);
	assert_int_equal(qkd_esp_sa_state(o, 1089), QKD_ESP_SOFT_EXPIRED);
	assert_int_equal(qkd_esp_sa_state(o, 1090), QKD_ESP_HARD_EXPIRED);
	/* bytes: 100 + 100 ok, soft at 250 after the third, hard refuses a
	 * packet that would pass 300 and accepts one that reaches it */
	for (int k = 0; k < 2; k++) {
		assert_int_equal(qkd_esp_encapsulate(o, 4, in, 100, pkt, sizeof pkt, &plen), QKD_OK);
		assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, out, sizeof out, &olen, &nh), QKD_OK);
	}
	assert_int_equal(qkd_esp_sa_state(o, 1000), QKD_ESP_OK);
	assert_int_equal(qkd_esp_encapsulate(o, 4, in, 60, pkt, sizeof pkt, &plen), QKD_OK);
	assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, out, sizeof out, &olen, &nh), QKD_OK);
	assert_int_equal(qkd_esp_sa_state(o, 1000), QKD_ESP_SOFT_EXPIRED);
	assert_int_equal(qkd_esp_sa_state(i, 1000), QKD_ESP_SOFT_EXPIRED);
	assert_int_equal(qkd_esp_encapsulate(o, 4, in, 41, pkt, sizeof pkt, &plen), QKD_ERR_NOKEY);
	assert_int_equal(qkd_esp_encapsulate(o, 4, in, 40, pkt, sizeof pkt, &plen), QKD_OK);
	assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, out, sizeof out, &olen, &nh), QKD_OK);
	assert_int_equal(qkd_esp_sa_bytes(o), 300);
	assert_int_equal(qkd_esp_sa_bytes(i), 300);
	assert_int_equal(qkd_esp_sa_state(o, 1000), QKD_ESP_HARD_EXPIRED);
	assert_int_equal(qkd_esp_sa_state(i, 1000), QKD_ESP_HARD_EXPIRED);
	assert_int_equal(qkd_esp_encapsulate(o, 4, in, 0, pkt, sizeof pkt, &plen), QKD_ERR_NOKEY);
	qkd_esp_sa_free(o);
	qkd_esp_sa_free(i);
}

static void test_lifetime_packets(void **state)
{
	struct qkd_esp_params p = life_params;
	struct qkd_esp_sa *o = NULL, *i = NULL;
	uint8_t in[1] = { 0 }, pkt[64], out[64], nh;
	size_t plen, olen;

	(void)state;
	/* packets: soft at 8, hard at 10, in both directions */
	p.soft.bytes = p.hard.bytes = 0;
	p.dir = QKD_ESP_OUT;
	assert_int_equal(qkd_esp_sa_new(&p, &o), QKD_OK);
	p.dir = QKD_ESP_IN;
	assert_int_equal(qkd_esp_sa_new(&p, &i), QKD_OK);
	for (int k = 1; k <= 10; k++) {
		assert_int_equal(qkd_esp_encapsulate(o, 4, in, 1, pkt, sizeof pkt, &plen), QKD_OK);
		assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, out, sizeof out, &olen, &nh), QKD_OK);
		assert_int_equal(qkd_esp_sa_state(i, 1000),
				 k < 8 ? QKD_ESP_OK : k < 10 ? QKD_ESP_SOFT_EXPIRED : QKD_ESP_HARD_EXPIRED);
	}
	assert_int_equal(qkd_esp_encapsulate(o, 4, in, 1, pkt, sizeof pkt, &plen), QKD_ERR_NOKEY);
	/* an inbound SA at its hard limit refuses before decrypting */
	qkd_esp_sa_free(o);
	p.dir = QKD_ESP_OUT;
	p.hard.packets = 0;
	assert_int_equal(qkd_esp_sa_new(&p, &o), QKD_OK);
	qkd_esp_testing_set_seq(o, 20);
	assert_int_equal(qkd_esp_encapsulate(o, 4, in, 1, pkt, sizeof pkt, &plen), QKD_OK);
	assert_int_equal(qkd_esp_decapsulate(i, pkt, plen, out, sizeof out, &olen, &nh), QKD_ERR_NOKEY);
	qkd_esp_sa_free(o);
	qkd_esp_sa_free(i);

	/* soft above hard is refused; 0 is "no limit" either side */
	p.soft.packets = 11;
	p.hard.packets = 10;
	assert_int_equal(qkd_esp_sa_new(&p, &o), QKD_ERR_INVAL);
	p.hard.packets = 0;
	assert_int_equal(qkd_esp_sa_new(&p, &o), QKD_OK);
	assert_int_equal(qkd_esp_sa_state(o, UINT64_MAX), QKD_ESP_HARD_EXPIRED);	/* seconds */
	qkd_esp_sa_free(o);
}

static void test_peek_and_classify(void **state)
{
	static const uint8_t esp[8] = { 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1 };
	static const uint8_t ike[28] = { 0, 0, 0, 0, 0x11 };
	static const uint8_t ka = 0xff, notka = 0xfe;
	uint32_t spi = 1;

	(void)state;
	assert_int_equal(qkd_esp_peek_spi(esp, 8, &spi), QKD_OK);
	assert_int_equal(spi, 0x12345678);
	assert_int_equal(qkd_esp_peek_spi(esp, 7, &spi), QKD_ERR_PROTO);
	assert_int_equal(spi, 0);
	assert_int_equal(qkd_esp_peek_spi(NULL, 0, &spi), QKD_ERR_PROTO);
	assert_int_equal(qkd_esp_udp_classify(&ka, 1), QKD_ESP_UDP_KEEPALIVE);
	assert_int_equal(qkd_esp_udp_classify(&notka, 1), QKD_ESP_UDP_INVALID);
	assert_int_equal(qkd_esp_udp_classify(esp, 8), QKD_ESP_UDP_ESP);
	assert_int_equal(qkd_esp_udp_classify(esp, 7), QKD_ESP_UDP_INVALID);
	assert_int_equal(qkd_esp_udp_classify(esp, 4), QKD_ESP_UDP_INVALID);
	assert_int_equal(qkd_esp_udp_classify(ike, 28), QKD_ESP_UDP_IKE);
	assert_int_equal(qkd_esp_udp_classify(ike, 4), QKD_ESP_UDP_IKE);
	assert_int_equal(qkd_esp_udp_classify(ike, 3), QKD_ESP_UDP_INVALID);
	assert_int_equal(qkd_esp_udp_classify(ike, 2), QKD_ESP_UDP_INVALID);
	assert_int_equal(qkd_esp_udp_classify(NULL, 0), QKD_ESP_UDP_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kat_decapsulate),
		cmocka_unit_test(test_kat_encapsulate),
		cmocka_unit_test(test_kat_refused_forms),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bad_trailer),
		cmocka_unit_test(test_wrong_spi_and_replay),
		cmocka_unit_test(test_counter_exhaustion),
		cmocka_unit_test(test_lifetime_seconds_bytes),
		cmocka_unit_test(test_lifetime_packets),
		cmocka_unit_test(test_peek_and_classify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
