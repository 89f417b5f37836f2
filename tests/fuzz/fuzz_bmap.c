/* Fuzz the bmap parser, every format version.
 *
 * fuzz_bmap parses the input as it is. fuzz_bmap_patched (FUZZ_PATCH_
 * CHECKSUM) first writes the right file checksum into the input's
 * <BmapFileChecksum> or <BmapFileSHA1> (40 or 64 hex digits), so mutated
 * documents get past the self-check and the accepted ones reach the checks
 * below. Either way, a document the parser accepts must keep the promises
 * of BMAP-FORMAT.md (ranges sorted, disjoint, inside BlocksCount, counts
 * consistent) and must survive bmaptk_bmap_format() and a second parse
 * unchanged; one it refuses must say why in one line naming the file. */
#include <string.h>

#include "fuzz_common.h"
#include "util.h"

#define NAME "fuzz.bmap"

#ifdef FUZZ_PATCH_CHECKSUM
/* The run of hex digits after the first open tag, if any. */
static uint8_t *find_digest(uint8_t *buf, size_t len, const char *tag,
			    size_t *hexlen)
{
	size_t tlen = strlen(tag), i;
	uint8_t *p = memmem(buf, len, tag, tlen), *end = buf + len;

	if (!p)
		return NULL;
	for (p += tlen; p < end && strchr(" \t\r\n", *p) && *p; p++)
		;
	for (i = 0; p + i < end && hex_value((char)p[i]) >= 0; i++)
		;
	*hexlen = i;
	return p;
}

/* Fill in the checksum the parser will compute: the hash of the file with
 * the digest's text replaced by as many '0'. */
static void patch_checksum(uint8_t *buf, size_t len)
{
	static const char *const tags[] = {"<BmapFileChecksum>",
					   "<BmapFileSHA1>"};
	enum bmaptk_hash_type type;
	unsigned char digest[BMAPTK_HASH_MAX];
	char hex[2 * BMAPTK_HASH_MAX + 1];
	struct bmaptk_hasher *h;
	size_t hexlen = 0;
	uint8_t *at = NULL;

	for (int i = 0; i < 2 && !at; i++)
		at = find_digest(buf, len, tags[i], &hexlen);
	if (!at || (hexlen != 40 && hexlen != 64))
		return;
	type = hexlen == 40 ? BMAPTK_HASH_SHA1 : BMAPTK_HASH_SHA256;
	memset(at, '0', hexlen);
	h = bmaptk_hasher_new(type);
	FUZZ_CHECK(h, "out of memory");
	bmaptk_hasher_update(h, buf, len);
	bmaptk_hasher_final(h, digest);
	bmaptk_hasher_free(h);
	bmaptk_hex(digest, hexlen / 2, hex);
	memcpy(at, hex, hexlen);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct bmaptk_error err = {0};
	struct bmaptk_bmap *b;
	uint8_t *doc = malloc(len ? len : 1);
	int rc;

	/* A copy of exactly len bytes, not NUL-terminated: the parser must
	 * not read past len. */
	FUZZ_CHECK(doc, "out of memory");
	memcpy(doc, data, len);
#ifdef FUZZ_PATCH_CHECKSUM
	patch_checksum(doc, len);
#endif
	rc = bmaptk_bmap_parse((const char *)doc, len, NAME, &b, &err);
	if (rc) {
		FUZZ_CHECK(!b, "refused, yet a bmap came back");
		FUZZ_CHECK(rc == err.status, "returned %d, error says %d", rc,
			   err.status);
		fuzz_check_error(&err, "bmaptk_bmap_parse");
		FUZZ_CHECK(strstr(err.message, NAME),
			   "message does not name the file: %s", err.message);
	} else {
		fuzz_check_bmap(b);
		bmaptk_bmap_free(b);
	}
	free(doc);
	return 0;
}
