/* Decoding one bzip2 block: faster than libbz2 on the parts that dominate
 * disk images (table-driven Huffman decoding, runs written with memset,
 * the CRC computed over whole buffers). Randomised blocks, which no bzip2
 * since 0.9.5 writes, are left to libbz2. */
#ifndef BMAPTK_BZIP2_BLOCK_H
#define BMAPTK_BZIP2_BLOCK_H

#include <stddef.h>
#include <stdint.h>

enum {
	BZIP2_BLOCK_OK = 0,
	BZIP2_BLOCK_BAD = -1,	      /* not a valid block */
	BZIP2_BLOCK_UNSUPPORTED = -2, /* randomised: use libbz2 */
	BZIP2_BLOCK_NOMEM = -3,
};

struct bzip2_block {
	uint32_t *tt; /* byte in the low 8 bits, next index above */
	uint32_t nblock;
	uint32_t expected_crc;
	/* output state, kept between bzip2_block_emit() calls */
	uint32_t pos, left;
	unsigned last, same; /* RLE1: the last byte, how often in a row */
	unsigned run_left;
	unsigned char run_byte;
	uint32_t crc;
};

/* Decode the block whose magic is at bit offset bit of buf and which ends
 * exactly nbits later, from a stream of the given level (1..9). buf needs
 * BZIP2_PAD readable bytes past the block's end. */
int bzip2_block_decode(struct bzip2_block *b, const unsigned char *buf,
		       uint64_t bit, uint64_t nbits, unsigned level);

/* Write up to cap decoded bytes; returns how many, 0 when the block is
 * done. */
size_t bzip2_block_emit(struct bzip2_block *b, unsigned char *out, size_t cap);

static inline int bzip2_block_finished(const struct bzip2_block *b)
{
	return !b->left && !b->run_left;
}

/* After the last emit: 0 if the output matches the block's CRC. */
int bzip2_block_check(const struct bzip2_block *b);

void bzip2_block_free(struct bzip2_block *b);

/* CRC-32 as bzip2 uses it (polynomial 0x04c11db7, most significant bit
 * first); pass 0 to start, the previous result to continue. */
uint32_t bzip2_crc32(uint32_t crc, const unsigned char *p, size_t n);
/* The table-driven version, used when ISA-L is absent (and by tests). */
uint32_t bzip2_crc32_portable(uint32_t crc, const unsigned char *p, size_t n);

#endif
