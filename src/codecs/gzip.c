/* gzip codec: ISA-L's inflate when the build found it, zlib otherwise.
 *
 * Every member of a multi-member file (pigz, `cat a.gz b.gz`) is decoded;
 * anything after the last member, a cut-off member or a bad CRC is an error
 * naming the compressed offset, never silently short data. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bmaptk/module.h>

#ifdef BMAPTK_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#else
#include <zlib.h>
#endif

#include "util.h"

#define IN_CHUNK (1u << 20)
/* Both libraries count output in 32 bits. */
#define MAX_OUT (1u << 30)

enum step { STEP_OK, STEP_MEMBER_END };

struct gz_stream {
	struct bmaptk_stream base;
	struct bmaptk_stream *inner;
	unsigned char *in;
	size_t in_pos, in_end; /* unconsumed input is in[in_pos, in_end) */
	uint64_t in_base;      /* compressed offset of in[0] */
	int eof;	       /* inner has no more bytes */
	int between;	       /* before a member: the next may start here */
	int done;
	uint64_t members;
#ifdef BMAPTK_HAVE_ISAL
	struct inflate_state st;
	struct isal_gzip_header hdr; /* kept across calls: parsing resumes */
#else
	z_stream zs;
	int zs_ready;
#endif
};

static unsigned long long in_offset(const struct gz_stream *g)
{
	return (unsigned long long)(g->in_base + g->in_pos);
}

static int corrupt(struct gz_stream *g, const char *why,
		   struct bmaptk_error *err)
{
	return bmaptk_set_error(
	    err, BMAPTK_ERR_USAGE, 0,
	    "%s: corrupt gzip data at compressed offset %llu (%s)",
	    g->base.name, in_offset(g), why);
}

static int truncated(struct gz_stream *g, struct bmaptk_error *err)
{
	return bmaptk_set_error(
	    err, BMAPTK_ERR_USAGE, 0,
	    "%s: truncated gzip data at compressed offset %llu", g->base.name,
	    in_offset(g));
}

/* Keep the unconsumed bytes and read more after them. */
static int refill(struct gz_stream *g, struct bmaptk_error *err)
{
	size_t left = g->in_end - g->in_pos;
	ssize_t n;

	if (g->in_pos) {
		memmove(g->in, g->in + g->in_pos, left);
		g->in_base += g->in_pos;
		g->in_pos = 0;
		g->in_end = left;
	}
	if (g->in_end == IN_CHUNK)
		return corrupt(g, "decoder made no progress", err);
	n = g->inner->ops->read(g->inner, g->in + g->in_end,
				IN_CHUNK - g->in_end, err);
	if (n < 0)
		return err->status;
	if (n == 0)
		g->eof = 1;
	g->in_end += (size_t)n;
	return 0;
}

#ifdef BMAPTK_HAVE_ISAL

static int dec_init(struct gz_stream *g, struct bmaptk_error *err)
{
	(void)err;
	isal_inflate_init(&g->st);
	g->st.crc_flag = ISAL_GZIP; /* check CRC-32 and ISIZE of each member */
	return 0;
}

static void dec_reset(struct gz_stream *g)
{
	isal_inflate_reset(&g->st); /* keeps crc_flag */
	isal_gzip_header_init(&g->hdr);
}

static void dec_end(struct gz_stream *g)
{
	(void)g;
}

static const char *isal_strerror(int ret)
{
	switch (ret) {
	case ISAL_INVALID_BLOCK:
		return "invalid deflate block";
	case ISAL_INVALID_SYMBOL:
		return "invalid deflate symbol";
	case ISAL_INVALID_LOOKBACK:
		return "invalid back-reference distance";
	case ISAL_INVALID_WRAPPER:
		return "bad gzip header";
	case ISAL_UNSUPPORTED_METHOD:
		return "unsupported compression method";
	case ISAL_INCORRECT_CHECKSUM:
		return "CRC or length mismatch";
	default:
		return "inflate error";
	}
}

/* Decode into out[0, *out_len); *out_len becomes the bytes produced. The
 * gzip header is parsed into our own struct, kept across calls, because
 * isal_inflate's built-in parsing starts from a fresh one on every call and
 * a header may be split across input chunks. */
static int dec_step(struct gz_stream *g, unsigned char *out, size_t *out_len,
		    struct bmaptk_error *err)
{
	struct inflate_state *st = &g->st;
	int ret;

	st->next_in = g->in + g->in_pos;
	st->avail_in = (uint32_t)(g->in_end - g->in_pos);
	if (!st->wrapper_flag) {
		ret = isal_read_gzip_header(st, &g->hdr);
		g->in_pos = (size_t)(st->next_in - g->in);
		if (ret < 0)
			return corrupt(g, isal_strerror(ret), err), -1;
		if (!st->wrapper_flag) {
			*out_len = 0;
			return STEP_OK;
		}
	}
	st->next_out = out;
	st->avail_out = (uint32_t)*out_len;
	ret = isal_inflate(st);
	/* At a member's end ISA-L hands back the bytes it read ahead. */
	g->in_pos = (size_t)(st->next_in - g->in);
	*out_len -= st->avail_out;
	if (ret < 0)
		return corrupt(g, isal_strerror(ret), err), -1;
	return st->block_state == ISAL_BLOCK_FINISH ? STEP_MEMBER_END : STEP_OK;
}

#else /* zlib */

static int dec_init(struct gz_stream *g, struct bmaptk_error *err)
{
	/* 15 + 16: gzip only; a zlib stream after a member is garbage. */
	if (inflateInit2(&g->zs, 15 + 16) != Z_OK)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"%s: cannot start the gzip decoder",
					g->base.name);
	g->zs_ready = 1;
	return 0;
}

static void dec_reset(struct gz_stream *g)
{
	inflateReset(&g->zs);
}

static void dec_end(struct gz_stream *g)
{
	if (g->zs_ready)
		inflateEnd(&g->zs);
}

static int dec_step(struct gz_stream *g, unsigned char *out, size_t *out_len,
		    struct bmaptk_error *err)
{
	z_stream *zs = &g->zs;
	int ret;

	zs->next_in = g->in + g->in_pos;
	zs->avail_in = (uInt)(g->in_end - g->in_pos);
	zs->next_out = out;
	zs->avail_out = (uInt)*out_len;
	ret = inflate(zs, Z_NO_FLUSH);
	g->in_pos = (size_t)(zs->next_in - g->in);
	*out_len -= zs->avail_out;
	switch (ret) {
	case Z_STREAM_END:
		return STEP_MEMBER_END;
	case Z_OK:
	case Z_BUF_ERROR: /* no progress; the caller decides */
		return STEP_OK;
	case Z_MEM_ERROR:
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory", g->base.name),
		       -1;
	default:
		return corrupt(g, zs->msg ? zs->msg : "inflate error", err), -1;
	}
}

#endif

/* Between members: what follows must be another member or nothing. */
static int start_member(struct gz_stream *g, struct bmaptk_error *err)
{
	const unsigned char *p;
	size_t avail;

	while (g->in_end - g->in_pos < 2 && !g->eof)
		if (refill(g, err))
			return -1;
	avail = g->in_end - g->in_pos;
	p = g->in + g->in_pos;
	if (avail == 0 && g->members) {
		g->done = 1;
		return 0;
	}
	if (avail == 0 || p[0] != 0x1f || (avail > 1 && p[1] != 0x8b)) {
		if (!g->members)
			return corrupt(g, "not gzip data", err), -1;
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: trailing garbage after gzip data "
					"at compressed offset %llu",
					g->base.name, in_offset(g)),
		       -1;
	}
	if (avail < 2)
		return truncated(g, err), -1;
	dec_reset(g);
	g->between = 0;
	g->members++;
	return 0;
}

static ssize_t gz_read(struct bmaptk_stream *s, void *buf, size_t len,
		       struct bmaptk_error *err)
{
	struct gz_stream *g = (struct gz_stream *)s;
	unsigned char *out = buf;
	size_t done = 0;

	len = MIN(len, MAX_OUT);
	while (!g->done && done < len) {
		size_t in_before, produced = len - done;
		int rc;

		if (g->between) {
			if (start_member(g, err))
				return -1;
			continue;
		}
		if (g->in_pos == g->in_end && !g->eof && refill(g, err))
			return -1;
		in_before = g->in_pos;
		rc = dec_step(g, out + done, &produced, err);
		if (rc < 0)
			return -1;
		done += produced;
		if (rc == STEP_MEMBER_END) {
			g->between = 1;
			continue;
		}
		if (produced == 0 && g->in_pos == in_before) {
			if (g->eof)
				return truncated(g, err), -1;
			if (refill(g, err))
				return -1;
		}
	}
	return (ssize_t)done;
}

static void gz_close(struct bmaptk_stream *s)
{
	struct gz_stream *g = (struct gz_stream *)s;

	dec_end(g);
	g->inner->ops->close(g->inner);
	free(g->in);
	free(g);
}

static const struct bmaptk_stream_ops gz_ops = {
    .read = gz_read,
    .skip = NULL, /* decoding is the only way forward */
    .close = gz_close,
};

static int gz_probe(const unsigned char *head, size_t len)
{
	/* ID1 ID2 and CM = 8 (deflate), the only method gzip defines. */
	if (len >= 3 && head[0] == 0x1f && head[1] == 0x8b && head[2] == 0x08)
		return 24;
	return 0;
}

static struct bmaptk_stream *gz_open(struct bmaptk_stream *inner,
				     struct bmaptk_error *err)
{
	struct gz_stream *g = calloc(1, sizeof(*g));

	if (!g || !(g->in = malloc(IN_CHUNK))) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
				 "%s: out of memory", inner->name);
		free(g);
		inner->ops->close(inner);
		return NULL;
	}
	g->base.ops = &gz_ops;
	g->base.name = inner->name;
	g->base.size = BMAPTK_SIZE_UNKNOWN;
	g->inner = inner;
	g->between = 1;
	if (dec_init(g, err)) {
		gz_close(&g->base);
		return NULL;
	}
	return &g->base;
}

static const struct bmaptk_codec_module gz_codec = {
    .probe = gz_probe,
    .open = gz_open,
    .flags = 0,
    .format = "gzip",
};

const struct bmaptk_module bmaptk_codec_gzip = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_CODEC,
    .name = "gzip",
#ifdef BMAPTK_HAVE_ISAL
    .description = "gzip (multi-member), decoded with ISA-L",
#else
    .description = "gzip (multi-member), decoded with zlib",
#endif
    .version = "1",
    .priority = 100,
    .u.codec = &gz_codec,
};
