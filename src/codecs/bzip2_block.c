/* One bzip2 block: Huffman and MTF decoding, the inverse BWT, then the
 * final run-length decoding as bytes are written out. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifdef BMAPTK_HAVE_ISAL
#include <isa-l/crc.h>
#endif

#include "bzip2_bits.h"
#include "bzip2_block.h"

#define MAX_GROUPS    6
#define MAX_ALPHA     258
#define MAX_SELECTORS 18002 /* what libbz2 keeps; more are read, unused */
#define MAX_CODE_LEN  20
#define GROUP_SIZE    50
#define FAST_BITS     10
#define MAX_NBLOCK    900000u

/* ---- CRC ------------------------------------------------------------------
 */

static uint32_t crc_tables[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i << 24;
		for (int k = 0; k < 8; k++)
			c = c & 0x80000000u ? (c << 1) ^ 0x04c11db7u : c << 1;
		crc_tables[0][i] = c;
	}
	/* tables[k][b]: b followed by k zero bytes. */
	for (int k = 1; k < 8; k++)
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = crc_tables[k - 1][i];
			crc_tables[k][i] = c << 8 ^ crc_tables[0][c >> 24];
		}
}

uint32_t bzip2_crc32_portable(uint32_t crc, const unsigned char *p, size_t n)
{
	uint32_t c = ~crc;

	pthread_once(&crc_once, crc_init);
	for (; n >= 8; n -= 8, p += 8) {
		c ^= (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		     (uint32_t)p[2] << 8 | p[3];
		c = crc_tables[7][c >> 24] ^ crc_tables[6][(c >> 16) & 0xff] ^
		    crc_tables[5][(c >> 8) & 0xff] ^ crc_tables[4][c & 0xff] ^
		    crc_tables[3][p[4]] ^ crc_tables[2][p[5]] ^
		    crc_tables[1][p[6]] ^ crc_tables[0][p[7]];
	}
	while (n--)
		c = c << 8 ^ crc_tables[0][(c >> 24) ^ *p++];
	return ~c;
}

uint32_t bzip2_crc32(uint32_t crc, const unsigned char *p, size_t n)
{
#ifdef BMAPTK_HAVE_ISAL
	return crc32_ieee(crc, p, n);
#else
	return bzip2_crc32_portable(crc, p, n);
#endif
}

/* ---- Huffman tables ---------------------------------------------------- */

/* Canonical codes, shorter first, by symbol within a length. A peek of
 * MAX_CODE_LEN bits decodes to the shortest length L with
 * peek < limit[L]; FAST_BITS-bit prefixes of short codes are tabulated. */
struct huff {
	uint16_t fast[1 << FAST_BITS]; /* sym | len << 9; 0: look further */
	uint32_t limit[MAX_CODE_LEN + 1];
	uint32_t first[MAX_CODE_LEN + 1];
	uint16_t offset[MAX_CODE_LEN + 1];
	uint16_t perm[MAX_ALPHA];
	unsigned max_len;
};

static int huff_build(struct huff *h, const uint8_t *len, unsigned n)
{
	unsigned count[MAX_CODE_LEN + 1] = {0}, next[MAX_CODE_LEN + 1];
	uint32_t code = 0;

	for (unsigned i = 0; i < n; i++)
		count[len[i]]++;
	h->max_len = 0;
	for (unsigned l = 1, at = 0; l <= MAX_CODE_LEN; l++) {
		h->first[l] = code;
		h->offset[l] = (uint16_t)at;
		next[l] = at;
		at += count[l];
		code += count[l];
		if (code > 1u << l)
			return -1; /* more codes than fit: not a prefix code */
		h->limit[l] = code << (MAX_CODE_LEN - l);
		code <<= 1;
		if (count[l])
			h->max_len = l;
	}
	for (unsigned i = 0; i < n; i++)
		h->perm[next[len[i]]++] = (uint16_t)i;
	memset(h->fast, 0, sizeof(h->fast));
	for (unsigned l = 1; l <= FAST_BITS; l++) {
		for (unsigned k = 0; k < count[l]; k++) {
			unsigned c = (h->first[l] + k) << (FAST_BITS - l);
			uint16_t e =
			    (uint16_t)(h->perm[h->offset[l] + k] | l << 9);
			for (unsigned j = 0; j < 1u << (FAST_BITS - l); j++)
				h->fast[c + j] = e;
		}
	}
	return 0;
}

struct reader {
	const unsigned char *buf;
	uint64_t pos, end;
};

static inline uint32_t get(struct reader *r, unsigned n)
{
	uint32_t v = (uint32_t)bzip2_get_bits(r->buf, r->pos, n);

	r->pos += n;
	return v;
}

/* Next symbol, or -1. The caller keeps r->pos <= r->end. */
static inline int huff_decode(const struct huff *h, struct reader *r)
{
	uint32_t v = (uint32_t)bzip2_get_bits(r->buf, r->pos, MAX_CODE_LEN);
	unsigned e = h->fast[v >> (MAX_CODE_LEN - FAST_BITS)], l;

	if (e) {
		r->pos += e >> 9;
		return (int)(e & 511);
	}
	for (l = FAST_BITS + 1; l <= h->max_len; l++)
		if (v < h->limit[l])
			break;
	if (l > h->max_len)
		return -1;
	r->pos += l;
	return h->perm[h->offset[l] + (v >> (MAX_CODE_LEN - l)) - h->first[l]];
}

/* ---- the block header ------------------------------------------------ */

struct tables {
	unsigned char seq_to_byte[256];
	unsigned n_in_use, n_groups, n_selectors;
	uint8_t selector[MAX_SELECTORS];
	struct huff huff[MAX_GROUPS];
};

static int read_symbol_map(struct reader *r, struct tables *t)
{
	unsigned used16 = get(r, 16);

	t->n_in_use = 0;
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits;
		if (!(used16 & 0x8000u >> i))
			continue;
		if (r->pos > r->end)
			return -1;
		bits = get(r, 16);
		for (unsigned j = 0; j < 16; j++)
			if (bits & 0x8000u >> j)
				t->seq_to_byte[t->n_in_use++] =
				    (unsigned char)(i * 16 + j);
	}
	return t->n_in_use ? 0 : -1;
}

static int read_selectors(struct reader *r, struct tables *t)
{
	uint8_t order[MAX_GROUPS];
	unsigned n;

	if (r->pos > r->end)
		return -1;
	t->n_groups = get(r, 3);
	n = get(r, 15);
	if (t->n_groups < 2 || t->n_groups > MAX_GROUPS || n < 1)
		return -1;
	for (unsigned g = 0; g < t->n_groups; g++)
		order[g] = (uint8_t)g;
	/* Unary-coded, move-to-front-coded group numbers. */
	for (unsigned i = 0; i < n; i++) {
		unsigned j = 0;
		uint8_t g;
		while (get(r, 1)) {
			if (++j >= t->n_groups || r->pos > r->end)
				return -1;
		}
		g = order[j];
		memmove(order + 1, order, j);
		order[0] = g;
		if (i < MAX_SELECTORS)
			t->selector[i] = g;
	}
	t->n_selectors = n < MAX_SELECTORS ? n : MAX_SELECTORS;
	return 0;
}

static int read_code_lengths(struct reader *r, struct tables *t)
{
	unsigned alpha = t->n_in_use + 2;
	uint8_t len[MAX_ALPHA];

	for (unsigned g = 0; g < t->n_groups; g++) {
		unsigned cur;
		if (r->pos > r->end)
			return -1;
		cur = get(r, 5);
		for (unsigned i = 0; i < alpha; i++) {
			for (;;) {
				if (cur < 1 || cur > MAX_CODE_LEN ||
				    r->pos > r->end)
					return -1;
				if (!get(r, 1))
					break;
				cur += get(r, 1) ? -1u : 1u;
			}
			len[i] = (uint8_t)cur;
		}
		if (huff_build(&t->huff[g], len, alpha))
			return -1;
	}
	return 0;
}

/* ---- symbols to bytes ---------------------------------------------------- */

/* Huffman, RUNA/RUNB and move-to-front decoding into tt's low bytes. */
static int read_symbols(struct reader *r, const struct tables *t, uint32_t *tt,
			uint32_t max, uint32_t counts[256], uint32_t *nblock)
{
	unsigned char mtf[256];
	const struct huff *h = NULL;
	unsigned eob = t->n_in_use + 1, sel = 0, left = 0, runbit = 0;
	uint32_t n = 0, run = 0;

	memcpy(mtf, t->seq_to_byte, t->n_in_use);
	for (;;) {
		int sym;
		if (!left) {
			if (sel >= t->n_selectors)
				return -1;
			h = &t->huff[t->selector[sel++]];
			left = GROUP_SIZE;
		}
		left--;
		if (r->pos > r->end)
			return -1;
		sym = huff_decode(h, r);
		if (sym < 0)
			return -1;
		if (sym <= 1) { /* RUNA, RUNB: bijective base 2 */
			if (runbit >= 20)
				return -1;
			run += (uint32_t)(sym + 1) << runbit++;
			continue;
		}
		if (run) {
			unsigned char c = mtf[0];
			if (run > max - n)
				return -1;
			counts[c] += run;
			for (uint32_t k = 0; k < run; k++)
				tt[n + k] = c;
			n += run;
			run = 0;
			runbit = 0;
		}
		if ((unsigned)sym == eob)
			break;
		if (n >= max)
			return -1;
		{
			unsigned idx = (unsigned)sym - 1;
			unsigned char c = mtf[idx];
			memmove(mtf + 1, mtf, idx);
			mtf[0] = c;
			counts[c]++;
			tt[n++] = c;
		}
	}
	*nblock = n;
	return 0;
}

/* Link every position to the next one of the original text. */
static void inverse_bwt(uint32_t *tt, uint32_t n, const uint32_t counts[256])
{
	uint32_t next[256], sum = 0;

	for (int c = 0; c < 256; c++) {
		next[c] = sum;
		sum += counts[c];
	}
	for (uint32_t i = 0; i < n; i++)
		tt[next[tt[i] & 0xff]++] |= i << 8;
}

int bzip2_block_decode(struct bzip2_block *b, const unsigned char *buf,
		       uint64_t bit, uint64_t nbits, unsigned level)
{
	struct reader r = {.buf = buf, .pos = bit, .end = bit + nbits};
	uint32_t counts[256] = {0}, orig_ptr, n;
	struct tables *t;
	int rc = BZIP2_BLOCK_BAD;

	if (nbits < 48 + 32 + 1 + 24 + 16 ||
	    bzip2_get_bits(buf, bit, 48) != BZIP2_BLOCK_MAGIC)
		return BZIP2_BLOCK_BAD;
	r.pos += 48;
	b->expected_crc = get(&r, 32);
	if (get(&r, 1))
		return BZIP2_BLOCK_UNSUPPORTED;
	orig_ptr = get(&r, 24);
	if (!b->tt) {
		b->tt = malloc(MAX_NBLOCK * sizeof(*b->tt));
		if (!b->tt)
			return BZIP2_BLOCK_NOMEM;
	}
	t = malloc(sizeof(*t));
	if (!t)
		return BZIP2_BLOCK_NOMEM;
	if (read_symbol_map(&r, t) || read_selectors(&r, t) ||
	    read_code_lengths(&r, t) ||
	    read_symbols(&r, t, b->tt, level * 100000u, counts, &n))
		goto out;
	/* The next magic follows the end of block symbol directly. */
	if (r.pos != r.end || orig_ptr >= n)
		goto out;
	inverse_bwt(b->tt, n, counts);
	b->nblock = n;
	b->pos = b->tt[orig_ptr] >> 8;
	b->left = n;
	b->last = 256;
	b->same = 0;
	b->run_left = 0;
	b->crc = 0;
	rc = BZIP2_BLOCK_OK;
out:
	free(t);
	return rc;
}

/* ---- output ------------------------------------------------------------ */

size_t bzip2_block_emit(struct bzip2_block *b, unsigned char *out, size_t cap)
{
	const uint32_t *tt = b->tt;
	uint32_t pos = b->pos, left = b->left;
	unsigned last = b->last, same = b->same;
	size_t w = 0;

	while (w < cap) {
		uint32_t x;
		unsigned c;
		if (b->run_left) {
			size_t k =
			    b->run_left < cap - w ? b->run_left : cap - w;
			memset(out + w, b->run_byte, k);
			w += k;
			b->run_left -= (unsigned)k;
			continue;
		}
		if (!left)
			break;
		x = tt[pos];
		c = x & 0xff;
		pos = x >> 8;
		left--;
		if (same == 4) { /* four equal bytes: this one counts more */
			b->run_left = c;
			b->run_byte = (unsigned char)last;
			same = 0;
			continue;
		}
		same = c == last ? same + 1 : 1;
		last = c;
		out[w++] = (unsigned char)c;
	}
	b->pos = pos;
	b->left = left;
	b->last = last;
	b->same = same;
	b->crc = bzip2_crc32(b->crc, out, w);
	return w;
}

int bzip2_block_check(const struct bzip2_block *b)
{
	/* A run of four must be followed by its count. */
	if (b->left || b->run_left || b->same == 4)
		return -1;
	return b->crc == b->expected_crc ? 0 : -1;
}

void bzip2_block_free(struct bzip2_block *b)
{
	free(b->tt);
	b->tt = NULL;
}
