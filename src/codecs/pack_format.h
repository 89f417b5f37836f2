/* The packed image format (docs/pack.md): constants and the bmap frame's
 * header, shared by the writer (bmaptk pack) and the reader (the pack
 * codec). */
#ifndef BMAPTK_PACK_FORMAT_H
#define BMAPTK_PACK_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define PACK_MAGIC_BMAP	     0x184D2A5Bu /* skippable frame: index + bmap */
#define PACK_MAGIC_SEEKTABLE 0x184D2A5Eu /* zstd's seek table frame */
#define PACK_SEEKABLE_MAGIC  0x8F92EAB1u /* the seek table's footer */
#define PACK_TAG	     "BMAPTKPK"
#define PACK_VERSION	     1u
#define PACK_HEADER_SIZE     40u /* fixed part of the bmap frame payload */
#define PACK_FRAME_HEADER    8u	 /* skippable frame: magic, size */
#define PACK_SEEK_FOOTER     9u	 /* entries u32, descriptor u8, magic */
#define PACK_CHUNK_DEFAULT   (1u << 20)
#define PACK_CHUNK_MIN	     (64u << 10)
#define PACK_CHUNK_MAX	     (256u << 20)
#define PACK_MAX_CHUNKS	     (1u << 26) /* 64 Mi chunks: a 64 TiB image */

/* The fixed part of the bmap frame's payload. */
struct pack_header {
	uint32_t version;
	uint32_t chunk_size;
	uint64_t image_size;
	uint32_t nchunks;
	uint32_t bmap_len;
	uint32_t sig_len;
	uint32_t flags;
};

static inline uint32_t pack_get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t pack_get64(const unsigned char *p)
{
	return (uint64_t)pack_get32(p) | (uint64_t)pack_get32(p + 4) << 32;
}

static inline void pack_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static inline void pack_put64(unsigned char *p, uint64_t v)
{
	pack_put32(p, (uint32_t)v);
	pack_put32(p + 4, (uint32_t)(v >> 32));
}

/* Serialise h into the PACK_HEADER_SIZE bytes at p (tag included). */
static inline void pack_header_put(unsigned char *p,
				   const struct pack_header *h)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)PACK_TAG[i];
	pack_put32(p + 8, h->version);
	pack_put32(p + 12, h->chunk_size);
	pack_put64(p + 16, h->image_size);
	pack_put32(p + 24, h->nchunks);
	pack_put32(p + 28, h->bmap_len);
	pack_put32(p + 32, h->sig_len);
	pack_put32(p + 36, h->flags);
}

/* Parse and check the fixed part; returns NULL when it is consistent,
 * else a reason for messages ("chunk size 3 is not a multiple of 4096"
 * style, without a file name). payload_len: the bmap frame's payload
 * size, which the variable parts must fill exactly. */
const char *pack_header_get(const unsigned char *p, uint64_t payload_len,
			    struct pack_header *h);

#endif
