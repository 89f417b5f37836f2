/* Android sparse images ("simg", as fastboot and img2simg write them):
 * RAW chunks carry data, FILL chunks repeat a 32-bit value, DONT_CARE
 * chunks are holes, and so are FILL chunks of zeros, which is how img2simg
 * writes holes. The stream reports holes through its hole op, so that
 * create maps them as holes and copy writes nothing there. CRC32 chunks
 * are skipped, not checked: the bmap's digests do that job. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bmaptk/module.h>

#include "util.h"

#define SIMG_MAGIC	0xed26ff3au
#define CHUNK_RAW	0xcac1
#define CHUNK_FILL	0xcac2
#define CHUNK_DONT_CARE 0xcac3
#define CHUNK_CRC32	0xcac4

struct simg_stream {
	struct bmaptk_stream base;
	struct bmaptk_stream *inner;
	uint32_t blk_sz, total_chunks, chunk_hdr_sz;
	uint32_t chunk;	  /* chunks read so far */
	unsigned type;	  /* of the current chunk */
	uint64_t left;	  /* output bytes left in the current chunk */
	uint32_t fill;	  /* FILL's value */
	uint64_t out_pos; /* output offset */
	uint64_t in_pos;  /* bytes consumed from inner */
	int failed;	  /* a header could not be read */
	struct bmaptk_error err;
};

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static int bad(struct simg_stream *s, struct bmaptk_error *err,
	       const char *what)
{
	return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				"%s: corrupt Android sparse image: chunk %u of "
				"%u: %s (at offset %llu)",
				s->base.name, s->chunk, s->total_chunks, what,
				(unsigned long long)s->in_pos);
}

static int read_exact(struct simg_stream *s, void *buf, size_t len,
		      struct bmaptk_error *err, const char *what)
{
	ssize_t n = stream_read_full(s->inner, buf, len, err);

	if (n < 0)
		return err->status;
	s->in_pos += (uint64_t)n;
	if ((size_t)n < len)
		return bad(s, err, what);
	return 0;
}

static int skip_inner(struct simg_stream *s, uint64_t n,
		      struct bmaptk_error *err)
{
	int rc = stream_skip(s->inner, n, err);

	if (rc)
		return rc == BMAPTK_ERR_USAGE ? bad(s, err, "truncated") : rc;
	s->in_pos += n;
	return 0;
}

/* Read the next chunk header; left == 0 and chunk == total at the end. */
static int next_chunk(struct simg_stream *s, struct bmaptk_error *err)
{
	unsigned char h[12];
	uint32_t blocks, total, data;
	int rc;

	while (s->left == 0 && s->chunk < s->total_chunks) {
		s->chunk++;
		if ((rc = read_exact(s, h, sizeof(h), err,
				     "truncated header")) ||
		    (rc = skip_inner(s, s->chunk_hdr_sz - sizeof(h), err)))
			return rc;
		s->type = le16(h);
		blocks = le32(h + 4);
		total = le32(h + 8);
		data = total - s->chunk_hdr_sz;
		s->left = (uint64_t)blocks * s->blk_sz;
		if (total < s->chunk_hdr_sz)
			return bad(s, err,
				   "chunk size smaller than its header");
		switch (s->type) {
		case CHUNK_RAW:
			if (data != s->left)
				return bad(s, err,
					   "RAW chunk of the wrong size");
			break;
		case CHUNK_FILL:
			if (data != 4)
				return bad(s, err,
					   "FILL chunk of the wrong size");
			if ((rc = read_exact(s, h, 4, err, "truncated FILL")))
				return rc;
			s->fill = le32(h);
			break;
		case CHUNK_DONT_CARE:
		case CHUNK_CRC32:
			if (s->type == CHUNK_CRC32)
				s->left = 0;
			if ((rc = skip_inner(s, data, err)))
				return rc;
			break;
		default:
			return bad(s, err, "unknown chunk type");
		}
	}
	return 0;
}

static void fill_pattern(struct simg_stream *s, unsigned char *buf, size_t n)
{
	unsigned char v[4] = {
	    (unsigned char)s->fill, (unsigned char)(s->fill >> 8),
	    (unsigned char)(s->fill >> 16), (unsigned char)(s->fill >> 24)};

	for (size_t i = 0; i < n; i++)
		buf[i] = v[(s->out_pos + i) % 4];
}

static ssize_t simg_read(struct bmaptk_stream *st, void *buf, size_t len,
			 struct bmaptk_error *err)
{
	struct simg_stream *s = (struct simg_stream *)st;
	size_t n;

	if (s->failed) {
		*err = s->err;
		return -1;
	}
	if (next_chunk(s, err))
		return -1;
	if (s->left == 0) {
		if (s->out_pos != s->base.size)
			return bad(s, err,
				   "the chunks end before the image does"),
			       -1;
		return 0;
	}
	n = (size_t)MIN(len, s->left);
	if (s->type == CHUNK_RAW) {
		if (read_exact(s, buf, n, err, "truncated RAW data"))
			return -1;
	} else if (s->type == CHUNK_FILL) {
		fill_pattern(s, buf, n);
	} else {
		memset(buf, 0, n);
	}
	s->left -= n;
	s->out_pos += n;
	return (ssize_t)n;
}

static int simg_skip(struct bmaptk_stream *st, uint64_t n,
		     struct bmaptk_error *err)
{
	struct simg_stream *s = (struct simg_stream *)st;
	int rc;

	while (n > 0) {
		uint64_t take;
		if ((rc = next_chunk(s, err)))
			return rc;
		if (s->left == 0)
			return bad(s, err, "skipping past the end");
		take = MIN(n, s->left);
		if (s->type == CHUNK_RAW && (rc = skip_inner(s, take, err)))
			return rc;
		s->left -= take;
		s->out_pos += take;
		n -= take;
	}
	return 0;
}

static uint64_t simg_hole(struct bmaptk_stream *st)
{
	struct simg_stream *s = (struct simg_stream *)st;

	/* A header that cannot be read is reported by the next read. */
	if (!s->failed && next_chunk(s, &s->err))
		s->failed = 1;
	if (s->failed)
		return 0;
	/* img2simg writes the raw image's holes as FILL chunks of zeros. */
	return s->type == CHUNK_DONT_CARE ||
		       (s->type == CHUNK_FILL && s->fill == 0)
		   ? s->left
		   : 0;
}

static void simg_close(struct bmaptk_stream *st)
{
	struct simg_stream *s = (struct simg_stream *)st;

	s->inner->ops->close(s->inner);
	free(s);
}

static const struct bmaptk_stream_ops simg_ops = {
    .read = simg_read,
    .skip = simg_skip,
    .close = simg_close,
    .hole = simg_hole,
};

static int simg_probe(const unsigned char *head, size_t len)
{
	return len >= 28 && le32(head) == SIMG_MAGIC && le16(head + 4) == 1 ? 48
									    : 0;
}

static struct bmaptk_stream *simg_open(struct bmaptk_stream *inner,
				       struct bmaptk_error *err)
{
	struct simg_stream *s = calloc(1, sizeof(*s));
	unsigned char h[28];
	uint32_t file_hdr_sz;

	if (!s) {
		inner->ops->close(inner);
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM, "out of memory");
		return NULL;
	}
	s->base.ops = &simg_ops;
	s->base.name = inner->name;
	s->inner = inner;
	if (read_exact(s, h, sizeof(h), err, "truncated file header"))
		goto fail;
	file_hdr_sz = le16(h + 8);
	s->chunk_hdr_sz = le16(h + 10);
	s->blk_sz = le32(h + 12);
	s->total_chunks = le32(h + 20);
	s->base.size = (uint64_t)le32(h + 16) * s->blk_sz;
	if (file_hdr_sz < 28 || s->chunk_hdr_sz < 12 || !s->blk_sz ||
	    s->blk_sz % 4) {
		bad(s, err, "bad file header");
		goto fail;
	}
	if (skip_inner(s, file_hdr_sz - 28, err))
		goto fail;
	return &s->base;
fail:
	simg_close(&s->base);
	return NULL;
}

static const struct bmaptk_codec_module simg_module = {
    .probe = simg_probe,
    .open = simg_open,
    .format = "simg",
};

const struct bmaptk_module bmaptk_codec_simg = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_CODEC,
    .name = "simg",
    .description = "Android sparse images; DONT_CARE chunks are holes",
    .version = "1",
    .priority = 100,
    .u.codec = &simg_module,
};
