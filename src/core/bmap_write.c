/* Writing a bmap in format 2.0. The file checksum is computed over the
 * document with the checksum's place filled with '0's, then patched in. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bmaptk/bmaptk.h>

#include "util.h"

struct doc {
	char *buf;
	size_t len, cap;
	int failed;
};

static void put(struct doc *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(struct doc *d, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (d->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(d->buf + d->len, d->cap - d->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			d->failed = 1;
			return;
		}
		if ((size_t)n < d->cap - d->len)
			break;
		char *grown = realloc(d->buf, 2 * d->cap + (size_t)n);
		if (!grown) {
			d->failed = 1;
			return;
		}
		d->buf = grown;
		d->cap = 2 * d->cap + (size_t)n;
	}
	d->len += (size_t)n;
}

static void put_header(struct doc *d, const struct bmaptk_bmap *b)
{
	uint64_t mapped = bmaptk_bmap_mapped_bytes(b);
	double percent = b->blocks_count
			     ? 100.0 * (double)b->mapped_blocks_count /
				   (double)b->blocks_count
			     : 0.0;
	char size[32], msize[32];

	put(d,
	    "<?xml version=\"1.0\" ?>\n"
	    "<!-- Block map (bmap) written by bmaptk %s. It lists the\n"
	    "     blocks of the image that hold data; only those need to\n"
	    "     be written to a medium, the rest are holes. Each range\n"
	    "     carries the checksum of its bytes, and the file carries\n"
	    "     a checksum of itself. -->\n\n",
	    bmaptk_version());
	put(d, "<bmap version=\"2.0\">\n");
	put(d, "    <!-- Image size: %s -->\n",
	    human_size(b->image_size, size, sizeof(size)));
	put(d, "    <ImageSize> %llu </ImageSize>\n\n",
	    (unsigned long long)b->image_size);
	put(d, "    <!-- Bytes per block -->\n");
	put(d, "    <BlockSize> %u </BlockSize>\n\n", b->block_size);
	put(d, "    <!-- Blocks in the image -->\n");
	put(d, "    <BlocksCount> %llu </BlocksCount>\n\n",
	    (unsigned long long)b->blocks_count);
	put(d, "    <!-- Blocks holding data: %s, %.1f%% of the image -->\n",
	    human_size(mapped, msize, sizeof(msize)), percent);
	put(d, "    <MappedBlocksCount> %llu </MappedBlocksCount>\n\n",
	    (unsigned long long)b->mapped_blocks_count);
	put(d, "    <!-- Digest used for the ranges and this file -->\n");
	put(d, "    <ChecksumType> %s </ChecksumType>\n\n",
	    bmaptk_hash_name(b->hash_type));
}

static void put_ranges(struct doc *d, const struct bmaptk_bmap *b)
{
	size_t dlen = bmaptk_hash_size(b->hash_type);
	char hex[2 * BMAPTK_HASH_MAX + 1];

	put(d, "    <!-- Mapped ranges of blocks, \"first-last\" inclusive;\n"
	       "         chksum is the digest of the range's bytes. -->\n");
	put(d, "    <BlockMap>\n");
	for (size_t i = 0; i < b->nranges; i++) {
		const struct bmaptk_range *r = &b->ranges[i];
		put(d, "        <Range");
		if (b->range_digests) {
			bmaptk_hex(r->digest, dlen, hex);
			put(d, " chksum=\"%s\"", hex);
		}
		if (r->first == r->last)
			put(d, "> %llu </Range>\n",
			    (unsigned long long)r->first);
		else
			put(d, "> %llu-%llu </Range>\n",
			    (unsigned long long)r->first,
			    (unsigned long long)r->last);
	}
	put(d, "    </BlockMap>\n</bmap>\n");
}

char *bmaptk_bmap_format(const struct bmaptk_bmap *b, size_t *len)
{
	struct doc d = {.cap = 4096 + 128 * b->nranges};
	size_t dlen = bmaptk_hash_size(b->hash_type), at;
	unsigned char digest[BMAPTK_HASH_MAX];
	char hex[2 * BMAPTK_HASH_MAX + 1];
	struct bmaptk_hasher *h;

	d.buf = malloc(d.cap);
	if (!d.buf || !dlen) {
		free(d.buf);
		return NULL;
	}
	put_header(&d, b);
	put(&d, "    <!-- Checksum of this file, computed with the value\n"
		"         below replaced by as many '0' characters. -->\n");
	put(&d, "    <BmapFileChecksum> ");
	at = d.len;
	memset(hex, '0', 2 * dlen);
	hex[2 * dlen] = '\0';
	put(&d, "%s </BmapFileChecksum>\n\n", hex);
	put_ranges(&d, b);
	h = bmaptk_hasher_new(b->hash_type);
	if (d.failed || !h) {
		bmaptk_hasher_free(h);
		free(d.buf);
		return NULL;
	}
	bmaptk_hasher_update(h, d.buf, d.len);
	bmaptk_hasher_final(h, digest);
	bmaptk_hasher_free(h);
	bmaptk_hex(digest, dlen, hex);
	memcpy(d.buf + at, hex, 2 * dlen);
	*len = d.len;
	return d.buf;
}
