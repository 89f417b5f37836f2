/* zstd codec: libzstd's streaming decoder writing straight into the
 * caller's buffer. Every frame is decoded (`zstd -T0` output, `cat a.zst
 * b.zst`, skippable frames); a cut-off frame, trailing garbage or corrupt
 * data is an error naming the compressed offset. */
#include <errno.h>
#include <stdlib.h>

#include <zstd.h>
#include <zstd_errors.h>

#include <bmaptk/module.h>

#include "util.h"

#define IN_CHUNK (1u << 20)
/* Input handed to one decode call. libzstd does not move the input
 * position when it fails, so this bounds the error of a reported offset. */
#define IN_SLICE (128u << 10)

struct zstd_stream {
	struct bmaptk_stream base;
	struct bmaptk_stream *inner;
	ZSTD_DCtx *dctx;
	ZSTD_inBuffer in;
	unsigned char *in_buf;
	uint64_t in_base; /* compressed offset of in_buf[0] */
	int eof;
	int at_boundary; /* the last frame is complete and flushed */
};

static unsigned long long in_offset(const struct zstd_stream *z)
{
	return (unsigned long long)(z->in_base + z->in.pos);
}

static int zstd_fail(struct zstd_stream *z, size_t code,
		     struct bmaptk_error *err)
{
	ZSTD_ErrorCode e = ZSTD_getErrorCode(code);

	if (e == ZSTD_error_memory_allocation)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory decoding zstd data",
					z->base.name);
	if (e == ZSTD_error_prefix_unknown && z->at_boundary)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: trailing garbage after zstd data "
					"at compressed offset %llu",
					z->base.name, in_offset(z));
	return bmaptk_set_error(
	    err, BMAPTK_ERR_USAGE, 0,
	    "%s: corrupt zstd data at compressed offset %llu (%s)",
	    z->base.name, in_offset(z), ZSTD_getErrorName(code));
}

static int refill(struct zstd_stream *z, struct bmaptk_error *err)
{
	ssize_t n = z->inner->ops->read(z->inner, z->in_buf, IN_CHUNK, err);

	if (n < 0)
		return err->status;
	z->in_base += z->in.size;
	z->in.src = z->in_buf;
	z->in.size = (size_t)n;
	z->in.pos = 0;
	z->eof = n == 0;
	return 0;
}

static ssize_t zstd_read(struct bmaptk_stream *s, void *buf, size_t len,
			 struct bmaptk_error *err)
{
	struct zstd_stream *z = (struct zstd_stream *)s;
	ZSTD_outBuffer out = {.dst = buf, .size = len, .pos = 0};

	while (out.pos < out.size) {
		size_t in_before, out_before = out.pos, ret;
		ZSTD_inBuffer slice;

		if (z->in.pos == z->in.size && !z->eof && refill(z, err))
			return -1;
		if (z->in.pos == z->in.size && z->eof && z->at_boundary)
			break; /* the true end */
		in_before = z->in.pos;
		slice.src = z->in.src;
		slice.size = MIN(z->in.size, in_before + IN_SLICE);
		slice.pos = in_before;
		/* Decodes across frame boundaries by itself. */
		ret = ZSTD_decompressStream(z->dctx, &out, &slice);
		if (ZSTD_isError(ret))
			return zstd_fail(z, ret, err), -1;
		z->in.pos = slice.pos;
		/* 0: a frame just ended and everything is flushed. */
		z->at_boundary = ret == 0;
		if (z->eof && z->in.pos == in_before && out.pos == out_before &&
		    !z->at_boundary)
			return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
						"%s: truncated zstd data at "
						"compressed offset %llu",
						s->name, in_offset(z)),
			       -1;
	}
	return (ssize_t)out.pos;
}

static void zstd_close(struct bmaptk_stream *s)
{
	struct zstd_stream *z = (struct zstd_stream *)s;

	ZSTD_freeDCtx(z->dctx);
	z->inner->ops->close(z->inner);
	free(z->in_buf);
	free(z);
}

static const struct bmaptk_stream_ops zstd_ops = {
    .read = zstd_read,
    .skip = NULL, /* decoding is the only way forward */
    .close = zstd_close,
};

static int zstd_probe(const unsigned char *head, size_t len)
{
	if (len < 4)
		return 0;
	if (head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f &&
	    head[3] == 0xfd)
		return 32;
	/* Skippable frame: little-endian 0x184D2A50..0x184D2A5F. */
	if ((head[0] & 0xf0) == 0x50 && head[1] == 0x2a && head[2] == 0x4d &&
	    head[3] == 0x18)
		return 28;
	return 0;
}

static struct bmaptk_stream *zstd_open(struct bmaptk_stream *inner,
				       struct bmaptk_error *err)
{
	struct zstd_stream *z = calloc(1, sizeof(*z));

	if (!z || !(z->in_buf = malloc(IN_CHUNK)) ||
	    !(z->dctx = ZSTD_createDCtx())) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
				 "%s: out of memory", inner->name);
		if (z)
			free(z->in_buf);
		free(z);
		inner->ops->close(inner);
		return NULL;
	}
	z->base.ops = &zstd_ops;
	z->base.name = inner->name;
	z->base.size = BMAPTK_SIZE_UNKNOWN;
	z->inner = inner;
	z->in.src = z->in_buf;
	return &z->base;
}

static const struct bmaptk_codec_module zstd_codec = {
    .probe = zstd_probe,
    .open = zstd_open,
    .flags = 0,
    .format = "zstd",
};

const struct bmaptk_module bmaptk_codec_zstd = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_CODEC,
    .name = "zstd",
    .description = "zstd (multi-frame), streaming libzstd decoder",
    .version = "1",
    .priority = 100,
    .u.codec = &zstd_codec,
};
