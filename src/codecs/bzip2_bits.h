/* Bit-level helpers for the bzip2 codec: finding block boundaries in a
 * compressed stream and re-wrapping blocks as standalone streams.
 *
 * Bit offsets count from the most significant bit of byte 0, the order in
 * which bzip2 writes bits. Readers load 8 bytes at a time, so every buffer
 * passed here must have BZIP2_PAD readable bytes past its data. */
#ifndef BMAPTK_BZIP2_BITS_H
#define BMAPTK_BZIP2_BITS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BZIP2_BLOCK_MAGIC 0x314159265359ULL /* pi */
#define BZIP2_EOS_MAGIC	  0x177245385090ULL /* sqrt(pi) */
#define BZIP2_PAD	  16

/* A block holds at most 900000 symbols of at most 20 bits plus its tables,
 * so no valid block is longer than this (about 2.3 MB). */
#define BZIP2_MAX_BLOCK_BITS (900001ULL * 20 + 300000)

static inline uint64_t bzip2_load_be64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return __builtin_bswap64(v);
}

/* n (1..56) bits at bit offset bit. */
static inline uint64_t bzip2_get_bits(const unsigned char *buf, uint64_t bit,
				      unsigned n)
{
	return (bzip2_load_be64(buf + bit / 8) << (bit & 7)) >> (64 - n);
}

static inline uint32_t bzip2_crc_fold(uint32_t combined, uint32_t block_crc)
{
	return ((combined << 1) | (combined >> 31)) ^ block_crc;
}

/* Which magic a match is. */
enum bzip2_magic { BZIP2_NONE = 0, BZIP2_BLOCK = 1, BZIP2_EOS = 2 };

static inline enum bzip2_magic bzip2_magic_at(const unsigned char *buf,
					      uint64_t bit)
{
	uint64_t v = bzip2_get_bits(buf, bit, 48);

	if (v == BZIP2_BLOCK_MAGIC)
		return BZIP2_BLOCK;
	if (v == BZIP2_EOS_MAGIC)
		return BZIP2_EOS;
	return BZIP2_NONE;
}

/* Filter for the magic search: one bit per 16-bit value that two adjacent
 * whole bytes of either magic can take at some bit alignment. */
struct bzip2_finder {
	uint8_t pairs[65536 / 8];
};

void bzip2_finder_init(struct bzip2_finder *f);

/* First bit offset p in [from, end - 48] where either magic starts, or
 * UINT64_MAX; *which tells which one. */
uint64_t bzip2_find_magic(const struct bzip2_finder *f,
			  const unsigned char *buf, uint64_t from, uint64_t end,
			  enum bzip2_magic *which);

/* Writes bits MSB first into a buffer the caller sized. */
struct bzip2_bitwriter {
	unsigned char *buf;
	size_t pos; /* whole bytes written */
	uint64_t acc;
	unsigned nacc; /* pending bits in acc, < 8 between calls */
};

static inline void bzip2_put_bits(struct bzip2_bitwriter *w, uint64_t v,
				  unsigned n)
{
	/* n <= 32, so acc never needs more than 39 bits. */
	w->acc = (w->acc << n) | (v & ((1ULL << n) - 1));
	w->nacc += n;
	while (w->nacc >= 8) {
		w->nacc -= 8;
		w->buf[w->pos++] = (unsigned char)(w->acc >> w->nacc);
	}
}

/* Pad the last byte with zero bits; returns the length in bytes. */
static inline size_t bzip2_flush_bits(struct bzip2_bitwriter *w)
{
	if (w->nacc)
		bzip2_put_bits(w, 0, 8 - w->nacc);
	return w->pos;
}

/* Append nbits bits of src starting at bit offset bit. */
void bzip2_copy_bits(struct bzip2_bitwriter *w, const unsigned char *src,
		     uint64_t bit, uint64_t nbits);

#endif
