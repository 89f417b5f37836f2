/* Digests through OpenSSL EVP, which picks the SHA-NI code path itself. */
#include <stdlib.h>

#include <openssl/evp.h>

#include <bmaptk/bmaptk.h>

struct bmaptk_hasher {
	EVP_MD_CTX *ctx;
	const EVP_MD *md;
};

static const EVP_MD *hash_md(enum bmaptk_hash_type type)
{
	switch (type) {
	case BMAPTK_HASH_SHA1:
		return EVP_sha1();
	case BMAPTK_HASH_SHA256:
		return EVP_sha256();
	default:
		return NULL;
	}
}

size_t bmaptk_hash_size(enum bmaptk_hash_type type)
{
	switch (type) {
	case BMAPTK_HASH_SHA1:
		return 20;
	case BMAPTK_HASH_SHA256:
		return 32;
	default:
		return 0;
	}
}

const char *bmaptk_hash_name(enum bmaptk_hash_type type)
{
	switch (type) {
	case BMAPTK_HASH_SHA1:
		return "sha1";
	case BMAPTK_HASH_SHA256:
		return "sha256";
	default:
		return "none";
	}
}

struct bmaptk_hasher *bmaptk_hasher_new(enum bmaptk_hash_type type)
{
	struct bmaptk_hasher *h;

	if (!hash_md(type))
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->md = hash_md(type);
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex(h->ctx, h->md, NULL)) {
		bmaptk_hasher_free(h);
		return NULL;
	}
	return h;
}

void bmaptk_hasher_reset(struct bmaptk_hasher *h)
{
	EVP_DigestInit_ex(h->ctx, h->md, NULL);
}

void bmaptk_hasher_update(struct bmaptk_hasher *h, const void *buf, size_t len)
{
	EVP_DigestUpdate(h->ctx, buf, len);
}

void bmaptk_hasher_final(struct bmaptk_hasher *h, unsigned char *out)
{
	EVP_DigestFinal_ex(h->ctx, out, NULL);
	EVP_DigestInit_ex(h->ctx, h->md, NULL);
}

void bmaptk_hasher_free(struct bmaptk_hasher *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

void bmaptk_hex(const unsigned char *digest, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[digest[i] >> 4];
		out[2 * i + 1] = digits[digest[i] & 15];
	}
	out[2 * len] = '\0';
}
