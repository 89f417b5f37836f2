/* Bit-level search for bzip2 block boundaries and bit copying. */
#include "bzip2_bits.h"

void bzip2_finder_init(struct bzip2_finder *f)
{
	static const uint64_t magics[2] = {BZIP2_BLOCK_MAGIC, BZIP2_EOS_MAGIC};

	memset(f->pairs, 0, sizeof(f->pairs));
	for (int m = 0; m < 2; m++) {
		for (unsigned s = 0; s < 8; s++) {
			/* The magic at bit s of a 7-byte window: bytes 1..5
			 * are always whole, byte 0 too when s == 0. */
			uint64_t w = magics[m] << (8 - s);
			for (unsigned k = s ? 1 : 0; k < 5; k++) {
				unsigned pair =
				    (unsigned)(w >> (40 - 8 * k)) & 0xffff;
				f->pairs[pair / 8] |=
				    (uint8_t)(1u << (pair % 8));
			}
		}
	}
}

static inline int pair_hit(const struct bzip2_finder *f, const unsigned char *p)
{
	unsigned pair = (unsigned)p[0] << 8 | p[1];

	return f->pairs[pair / 8] & (1u << (pair % 8));
}

/* Exact check of the bit offsets whose magic would cover bytes j and j+1
 * as whole bytes: window starts j-4 .. j. */
static uint64_t check_around(const unsigned char *buf, uint64_t j,
			     uint64_t from, uint64_t last,
			     enum bzip2_magic *which)
{
	uint64_t lo = j >= 4 ? (j - 4) * 8 : 0;
	uint64_t hi = (j + 1) * 8;

	lo = lo > from ? lo : from;
	hi = hi < last + 1 ? hi : last + 1;
	for (uint64_t p = lo; p < hi; p++) {
		enum bzip2_magic m = bzip2_magic_at(buf, p);
		if (m) {
			*which = m;
			return p;
		}
	}
	return UINT64_MAX;
}

/* Every match has whole bytes at window offsets 1..5, so one of any four
 * consecutive byte pairs lies inside it: testing every fourth pair against
 * the filter finds all matches, in order, while touching few bytes. */
uint64_t bzip2_find_magic(const struct bzip2_finder *f,
			  const unsigned char *buf, uint64_t from, uint64_t end,
			  enum bzip2_magic *which)
{
	uint64_t last, jmax, j;

	*which = BZIP2_NONE;
	if (end < from + 48)
		return UINT64_MAX;
	last = end - 48; /* the last bit offset a magic can start at */
	jmax = last / 8 + 4;
	j = (from / 8) & ~(uint64_t)3;
	for (; j + 12 <= jmax; j += 16) {
		if (!(pair_hit(f, buf + j) | pair_hit(f, buf + j + 4) |
		      pair_hit(f, buf + j + 8) | pair_hit(f, buf + j + 12)))
			continue;
		for (uint64_t k = j; k < j + 16; k += 4) {
			uint64_t p;
			if (!pair_hit(f, buf + k))
				continue;
			p = check_around(buf, k, from, last, which);
			if (p != UINT64_MAX)
				return p;
		}
	}
	for (; j <= jmax; j += 4) {
		uint64_t p;
		if (!pair_hit(f, buf + j))
			continue;
		p = check_around(buf, j, from, last, which);
		if (p != UINT64_MAX)
			return p;
	}
	return UINT64_MAX;
}

/* Byte-aligned destination: whole bytes are two shifted source bytes. */
static void copy_aligned_dst(struct bzip2_bitwriter *w,
			     const unsigned char *src, uint64_t bit,
			     uint64_t nbytes)
{
	const unsigned char *s = src + bit / 8;
	unsigned shift = bit & 7;
	unsigned char *d = w->buf + w->pos;
	uint64_t k = 0;

	if (!shift) {
		memcpy(d, s, nbytes);
	} else {
		for (; k + 8 <= nbytes; k += 8) {
			uint64_t v = bzip2_load_be64(s + k) << shift |
				     (uint64_t)s[k + 8] >> (8 - shift);
			v = __builtin_bswap64(v);
			memcpy(d + k, &v, sizeof(v));
		}
		for (; k < nbytes; k++)
			d[k] = (unsigned char)(s[k] << shift |
					       s[k + 1] >> (8 - shift));
	}
	w->pos += nbytes;
}

void bzip2_copy_bits(struct bzip2_bitwriter *w, const unsigned char *src,
		     uint64_t bit, uint64_t nbits)
{
	if (w->nacc == 0 && nbits >= 8) {
		uint64_t nbytes = nbits / 8;
		copy_aligned_dst(w, src, bit, nbytes);
		bit += nbytes * 8;
		nbits -= nbytes * 8;
	}
	for (; nbits >= 32; bit += 32, nbits -= 32)
		bzip2_put_bits(w, bzip2_get_bits(src, bit, 32), 32);
	if (nbits)
		bzip2_put_bits(w, bzip2_get_bits(src, bit, (unsigned)nbits),
			       (unsigned)nbits);
}
