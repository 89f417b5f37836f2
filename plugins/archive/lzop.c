/* lzop decoder for the archive plugin, on liblzo2.
 *
 * An lzop file is one or more members; all numbers are big-endian, and the
 * fields in [] are there only in the cases named:
 *
 *   header  magic (9 bytes), version (2), library version (2),
 *           [version needed to extract (2), if version >= 0x0940],
 *           method (1), [level (1), if version >= 0x0940], flags (4),
 *           [filter (4), F_H_FILTER], mode (4), mtime (4),
 *           [mtime high (4), if version >= 0x0940], name length (1), name,
 *           checksum (4) of the bytes from version to the end of the name
 *           (adler32, or crc32 with F_H_CRC32),
 *           [extra field length (4), extra field, checksum (4) of both,
 *           F_H_EXTRA_FIELD]
 *   block   decoded size (4; 0 ends the member), stored size (4),
 *           [adler32 (4), F_ADLER32_D], [crc32 (4), F_CRC32_D] of the
 *           decoded bytes; if the stored size is the smaller,
 *           [adler32 (4), F_ADLER32_C], [crc32 (4), F_CRC32_C] of the
 *           stored bytes; then the stored bytes: LZO1X data, or the bytes
 *           themselves when both sizes are equal.
 *
 * Every member is decoded (lzop -d does so for `cat a.lzo b.lzo`). Anything
 * after the last member, a cut-off member, a checksum that does not match
 * and bad LZO1X data are errors naming the compressed offset, never
 * silently short data. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lzo/lzo1x.h>

#include "lzop.h"

#define IN_CHUNK  (1u << 20)
#define MAX_BLOCK (64u << 20) /* lzop's own limit on a block */
#define MAX_EXTRA (1u << 20)  /* lzop writes no extra field at all */
#define MAGIC_LEN 9
/* lzop 1.04, the newest: a file needing a newer one has a new format. */
#define NEWEST_LZOP 0x1040
#define MIN(a, b)   ((a) < (b) ? (a) : (b))

/* Header flags. */
#define F_ADLER32_D	0x00000001u
#define F_ADLER32_C	0x00000002u
#define F_H_EXTRA_FIELD 0x00000040u
#define F_CRC32_D	0x00000100u
#define F_CRC32_C	0x00000200u
#define F_H_FILTER	0x00000800u
#define F_H_CRC32	0x00001000u
/* What no lzop defines: flags 0x3fff, OS 0xff000000, charset 0x00f00000. */
#define F_RESERVED 0x000fc000u

static const unsigned char lzop_magic[MAGIC_LEN] = {0x89, 'L',	'Z',  'O', 0x00,
						    0x0d, 0x0a, 0x1a, 0x0a};

struct lzop_stream {
	struct bmaptk_stream base;
	struct bmaptk_stream *inner; /* owned */
	unsigned char *in;
	size_t in_cap, in_pos, in_end; /* unconsumed: in[in_pos, in_end) */
	unsigned long long in_off;     /* compressed offset of in[0] */
	int in_eof;		       /* inner has ended */
	uint32_t flags;		       /* of the current member */
	int in_member; /* a header was read, its end marker not yet */
	int done;
	/* A block decoded for a read shorter than the block. */
	unsigned char *out;
	size_t out_cap, out_pos, out_end;
};

static uint32_t be16(const unsigned char *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint32_t sum_adler(const unsigned char *p, size_t n)
{
	return (uint32_t)lzo_adler32(1, p, (lzo_uint)n);
}

static uint32_t sum_crc(const unsigned char *p, size_t n)
{
	return (uint32_t)lzo_crc32(0, p, (lzo_uint)n);
}

/* The compressed offset of in[in_pos + i]. */
static unsigned long long offset_of(const struct lzop_stream *s, size_t i)
{
	return s->in_off + s->in_pos + i;
}

static int corrupt(struct lzop_stream *s, size_t at, const char *why,
		   struct bmaptk_error *err)
{
	return bmaptk_set_error(
	    err, BMAPTK_ERR_USAGE, 0,
	    "%s: corrupt lzop data at compressed offset %llu (%s)",
	    s->base.name, offset_of(s, at), why);
}

static int unsupported(struct lzop_stream *s, const char *what,
		       unsigned long value, struct bmaptk_error *err)
{
	return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				"%s: lzop data at compressed offset %llu uses "
				"%s 0x%lx, which bmaptk does not decode",
				s->base.name, offset_of(s, 0), what, value);
}

static int truncated(struct lzop_stream *s, struct bmaptk_error *err)
{
	return bmaptk_set_error(
	    err, BMAPTK_ERR_USAGE, 0,
	    "%s: truncated lzop data at compressed offset %llu", s->base.name,
	    s->in_off + s->in_end);
}

/* Make n bytes available at in + in_pos: 0 done, 1 if inner ends first,
 * -1 if it fails (its error is in err). */
static int fill(struct lzop_stream *s, size_t n, struct bmaptk_error *err)
{
	while (s->in_end - s->in_pos < n) {
		ssize_t got;

		if (s->in_eof)
			return 1;
		if (s->in_pos + n > s->in_cap) {
			size_t left = s->in_end - s->in_pos;

			memmove(s->in, s->in + s->in_pos, left);
			s->in_off += s->in_pos;
			s->in_pos = 0;
			s->in_end = left;
			if (n > s->in_cap) {
				unsigned char *grown = realloc(s->in, n);

				if (!grown)
					return bmaptk_set_error(
						   err, BMAPTK_ERR_IO, ENOMEM,
						   "%s: out of memory",
						   s->base.name),
					       -1;
				s->in = grown;
				s->in_cap = n;
			}
		}
		got = s->inner->ops->read(s->inner, s->in + s->in_end,
					  s->in_cap - s->in_end, err);
		if (got < 0)
			return -1;
		if (got == 0)
			s->in_eof = 1;
		s->in_end += (size_t)got;
	}
	return 0;
}

/* fill, where the end of the input is a truncation. */
static int need(struct lzop_stream *s, size_t n, struct bmaptk_error *err)
{
	int rc = fill(s, n, err);

	if (rc > 0)
		truncated(s, err);
	return rc ? -1 : 0;
}

/* Read the header of a member at in + in_pos, whose magic was checked. */
static int read_header(struct lzop_stream *s, struct bmaptk_error *err)
{
	const unsigned char *h;
	unsigned version, needed = 0, method;
	uint32_t flags, sum;
	size_t p, filter_at = 0;
	int v094;

	if (need(s, MAGIC_LEN + 4, err))
		return -1;
	h = s->in + s->in_pos;
	version = be16(h + MAGIC_LEN);
	if (version < 0x0900)
		return corrupt(s, MAGIC_LEN, "version before 0.90", err), -1;
	v094 = version >= 0x0940;
	/* Up to the flags; then up to the length of the name. */
	p = MAGIC_LEN + 4 + (v094 ? 2 : 0) + 1 + (v094 ? 1 : 0) + 4;
	if (need(s, p, err))
		return -1;
	h = s->in + s->in_pos;
	if (v094)
		needed = be16(h + MAGIC_LEN + 4);
	method = h[MAGIC_LEN + 4 + (v094 ? 2 : 0)];
	flags = be32(h + p - 4);
	if (flags & F_H_FILTER) {
		filter_at = p;
		p += 4;
	}
	p += 4 + 4 + (v094 ? 4 : 0); /* mode, mtime, mtime high */
	if (need(s, p + 1, err))
		return -1;
	p += 1 + s->in[s->in_pos + p]; /* the name */
	if (need(s, p + 4, err))
		return -1;
	h = s->in + s->in_pos;
	sum = flags & F_H_CRC32 ? sum_crc(h + MAGIC_LEN, p - MAGIC_LEN)
				: sum_adler(h + MAGIC_LEN, p - MAGIC_LEN);
	if (be32(h + p) != sum)
		return corrupt(s, p, "header checksum mismatch", err), -1;
	p += 4;
	if (needed > NEWEST_LZOP)
		return unsupported(s, "the format of lzop version", needed,
				   err),
		       -1;
	/* LZO1X-1, LZO1X-1(15) and LZO1X-999: one decompressor. */
	if (method < 1 || method > 3)
		return unsupported(s, "method", method, err), -1;
	if (flags & F_RESERVED)
		return unsupported(s, "flags", flags, err), -1;
	if (filter_at)
		return unsupported(s, "filter", be32(h + filter_at), err), -1;
	if (flags & F_H_EXTRA_FIELD) {
		uint32_t len;

		if (need(s, p + 4, err))
			return -1;
		len = be32(s->in + s->in_pos + p);
		if (len > MAX_EXTRA)
			return unsupported(s, "an extra field of length", len,
					   err),
			       -1;
		if (need(s, p + 4 + len + 4, err))
			return -1;
		h = s->in + s->in_pos;
		sum = flags & F_H_CRC32 ? sum_crc(h + p, 4 + len)
					: sum_adler(h + p, 4 + len);
		if (be32(h + p + 4 + len) != sum)
			return corrupt(s, p, "extra field checksum mismatch",
				       err),
			       -1;
		p += 4 + len + 4;
	}
	s->in_pos += p;
	s->flags = flags;
	s->in_member = 1;
	return 0;
}

/* After a member's end marker: the next member, or the end of the data. */
static int next_member(struct lzop_stream *s, struct bmaptk_error *err)
{
	int rc = fill(s, MAGIC_LEN, err);

	if (rc < 0)
		return -1;
	if (rc > 0 && s->in_end == s->in_pos) {
		s->done = 1;
		return 0;
	}
	if (rc > 0 || memcmp(s->in + s->in_pos, lzop_magic, MAGIC_LEN))
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: trailing garbage after lzop data "
					"at compressed offset %llu",
					s->base.name, offset_of(s, 0)),
		       -1;
	return read_header(s, err);
}

/* Decode the block at in + in_pos into buf if it fits in len bytes, else
 * into s->out. Returns the bytes put in buf, 0 if none (the member ended,
 * or the block went to s->out), or -1. */
static ssize_t read_block(struct lzop_stream *s, unsigned char *buf, size_t len,
			  struct bmaptk_error *err)
{
	const uint32_t flags = s->flags;
	const unsigned char *h, *src;
	uint32_t dst_len, src_len;
	unsigned char *dst;
	size_t p = 8;

	if (need(s, 4, err))
		return -1;
	dst_len = be32(s->in + s->in_pos);
	if (dst_len == 0) {
		s->in_pos += 4;
		s->in_member = 0;
		return 0;
	}
	if (dst_len > MAX_BLOCK)
		return corrupt(s, 0, "block larger than 64 MiB", err), -1;
	if (need(s, 8, err))
		return -1;
	src_len = be32(s->in + s->in_pos + 4);
	if (src_len == 0 || src_len > dst_len)
		return corrupt(s, 4, "bad compressed block size", err), -1;
	p += (flags & F_ADLER32_D ? 4 : 0) + (flags & F_CRC32_D ? 4 : 0);
	if (src_len < dst_len)
		p +=
		    (flags & F_ADLER32_C ? 4 : 0) + (flags & F_CRC32_C ? 4 : 0);
	if (need(s, p + src_len, err))
		return -1;
	h = s->in + s->in_pos;
	src = h + p;
	p = 8;
	/* The checksums of the decoded bytes are checked below. */
	p += (flags & F_ADLER32_D ? 4 : 0) + (flags & F_CRC32_D ? 4 : 0);
	if (src_len < dst_len) {
		if ((flags & F_ADLER32_C) &&
		    be32(h + p) != sum_adler(src, src_len))
			return corrupt(s, 0,
				       "compressed block checksum mismatch",
				       err),
			       -1;
		p += flags & F_ADLER32_C ? 4 : 0;
		if ((flags & F_CRC32_C) && be32(h + p) != sum_crc(src, src_len))
			return corrupt(s, 0,
				       "compressed block checksum mismatch",
				       err),
			       -1;
	}

	if (len >= dst_len) {
		dst = buf;
	} else {
		if (s->out_cap < dst_len) {
			free(s->out);
			s->out_cap = 0;
			if (!(s->out = malloc(dst_len)))
				return bmaptk_set_error(
					   err, BMAPTK_ERR_IO, ENOMEM,
					   "%s: out of memory", s->base.name),
				       -1;
			s->out_cap = dst_len;
		}
		dst = s->out;
	}
	if (src_len == dst_len) {
		memcpy(dst, src, dst_len);
	} else {
		lzo_uint out_len = dst_len;
		int rc =
		    lzo1x_decompress_safe(src, src_len, dst, &out_len, NULL);

		if (rc != LZO_E_OK || out_len != dst_len)
			return corrupt(s, 0, "bad LZO1X data", err), -1;
	}
	p = 8;
	if ((flags & F_ADLER32_D) && be32(h + p) != sum_adler(dst, dst_len))
		return corrupt(s, 0, "block checksum mismatch", err), -1;
	p += flags & F_ADLER32_D ? 4 : 0;
	if ((flags & F_CRC32_D) && be32(h + p) != sum_crc(dst, dst_len))
		return corrupt(s, 0, "block checksum mismatch", err), -1;
	s->in_pos += (size_t)(src - h) + src_len;
	if (dst == buf)
		return (ssize_t)dst_len;
	s->out_pos = 0;
	s->out_end = dst_len;
	return 0;
}

static ssize_t lzop_read(struct bmaptk_stream *bs, void *buf, size_t len,
			 struct bmaptk_error *err)
{
	struct lzop_stream *s = (struct lzop_stream *)bs;

	if (!len)
		return 0;
	for (;;) {
		ssize_t n;

		if (s->out_pos < s->out_end) {
			size_t k = MIN(len, s->out_end - s->out_pos);

			memcpy(buf, s->out + s->out_pos, k);
			s->out_pos += k;
			return (ssize_t)k;
		}
		if (s->done)
			return 0;
		if (!s->in_member) {
			if (next_member(s, err))
				return -1;
			continue;
		}
		if ((n = read_block(s, buf, len, err)) != 0)
			return n;
	}
}

static void lzop_close(struct bmaptk_stream *bs)
{
	struct lzop_stream *s = (struct lzop_stream *)bs;

	s->inner->ops->close(s->inner);
	free(s->in);
	free(s->out);
	free(s);
}

static const struct bmaptk_stream_ops lzop_ops = {
    .read = lzop_read,
    .skip = NULL, /* every block must be decoded to be checked */
    .close = lzop_close,
};

struct bmaptk_stream *lzop_open(struct bmaptk_stream *inner,
				const unsigned char *head, size_t head_len,
				struct bmaptk_error *err)
{
	struct lzop_stream *s;

	if (lzo_init() != LZO_E_OK) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, 0,
				 "%s: liblzo2 does not work here (lzo_init)",
				 inner->name);
		inner->ops->close(inner);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->in = malloc(IN_CHUNK))) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
				 "%s: out of memory", inner->name);
		free(s);
		inner->ops->close(inner);
		return NULL;
	}
	s->base.ops = &lzop_ops;
	s->base.name = inner->name;
	s->base.size = BMAPTK_SIZE_UNKNOWN;
	s->base.format = "lzop";
	s->inner = inner;
	s->in_cap = IN_CHUNK;
	memcpy(s->in, head, MIN(head_len, (size_t)IN_CHUNK));
	s->in_end = MIN(head_len, (size_t)IN_CHUNK);
	if (next_member(s, err) || s->done) {
		if (s->done)
			truncated(s, err);
		lzop_close(&s->base);
		return NULL;
	}
	return &s->base;
}
