/* example-lz4: a codec plugin for lz4 frames (`lz4 disk.img`), written as
 * the template to copy for a plugin of your own. docs/plugins.md explains
 * the ABI; the comments here point out each rule where the code follows it.
 *
 * A codec plugin is three parts:
 *   1. probe(): look at the first bytes of a stream, say how sure you are;
 *   2. open():  wrap the inner stream in a stream of decoded bytes, whose
 *               ops (read, skip, close) do the work;
 *   3. BMAPTK_PLUGIN_ENTRY: the one exported symbol, listing the modules.
 *
 * The plugin includes only <bmaptk/module.h> and links nothing from bmaptk:
 * the host passes everything it needs through these structs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>

#include <bmaptk/module.h>

/* Compressed bytes pulled from the inner stream at a time. Large reads keep
 * the per-call overhead negligible; memory stays bounded whatever the image
 * size. */
#define IN_CHUNK (1u << 20)

/* Private state. The public struct bmaptk_stream comes first, so the host
 * holds a struct bmaptk_stream * and the ops cast it back. */
struct lz4_stream {
	struct bmaptk_stream base;
	struct bmaptk_stream *inner; /* owned: closed by lz4_close */
	LZ4F_dctx *dctx;
	unsigned char *in;
	size_t in_pos, in_len; /* unconsumed input is in[in_pos, in_len) */
	unsigned long long in_offset; /* compressed offset of in[0] */
	int eof;		      /* the inner stream has ended */
	int at_boundary; /* the last frame ended and all of it was returned */
};

static unsigned long long offset_of(const struct lz4_stream *z)
{
	return z->in_offset + z->in_pos;
}

/* Errors: fill the caller's struct bmaptk_error with a status and a
 * one-line message naming the file, and return -1 from read. Never print:
 * the host decides what the user sees. Bad input is BMAPTK_ERR_USAGE;
 * I/O and memory failures are BMAPTK_ERR_IO. liblz4 names the problem
 * (e.g. ERROR_frameType_unknown for trailing garbage after a frame). */
static ssize_t lz4_fail(struct lz4_stream *z, size_t code,
			struct bmaptk_error *err)
{
	bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
			 "%s: corrupt lz4 data at compressed offset %llu (%s)",
			 z->base.name, offset_of(z), LZ4F_getErrorName(code));
	return -1;
}

/* Refill the input buffer from the inner stream. An error of the inner
 * stream is already in err, with its own message: pass it on unchanged. */
static int refill(struct lz4_stream *z, struct bmaptk_error *err)
{
	ssize_t n = z->inner->ops->read(z->inner, z->in, IN_CHUNK, err);

	if (n < 0)
		return -1;
	z->in_offset += z->in_len;
	z->in_pos = 0;
	z->in_len = (size_t)n;
	z->eof = n == 0;
	return 0;
}

/* read: decode straight into the caller's buffer. Return the byte count,
 * 0 only at the true end, -1 with err set. Short reads are fine, but a
 * codec that returns many small pieces makes the host loop more. */
static ssize_t lz4_read(struct bmaptk_stream *s, void *buf, size_t len,
			struct bmaptk_error *err)
{
	struct lz4_stream *z = (struct lz4_stream *)s;
	size_t out = 0;

	while (out < len) {
		size_t dst_len = len - out, src_len, ret;

		if (z->in_pos == z->in_len && !z->eof && refill(z, err))
			return -1;
		if (z->in_pos == z->in_len && z->eof) {
			/* Input ended: fine between frames, else the file
			 * was cut off. Corrupt or short input must be an
			 * error, never silently short data. */
			if (z->at_boundary)
				break;
			bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					 "%s: truncated lz4 data at compressed "
					 "offset %llu",
					 s->name, offset_of(z));
			return -1;
		}
		src_len = z->in_len - z->in_pos;
		/* Decodes across frame boundaries and skippable frames. */
		ret = LZ4F_decompress(z->dctx, (char *)buf + out, &dst_len,
				      z->in + z->in_pos, &src_len, NULL);
		if (LZ4F_isError(ret))
			return lz4_fail(z, ret, err);
		z->in_pos += src_len;
		out += dst_len;
		/* 0: a frame just ended and everything is flushed. */
		z->at_boundary = ret == 0;
	}
	return (ssize_t)out;
}

/* close: release everything, including the inner stream (a codec owns
 * it from the moment open is called). Called exactly once, by the host. */
static void lz4_close(struct bmaptk_stream *s)
{
	struct lz4_stream *z = (struct lz4_stream *)s;

	LZ4F_freeDecompressionContext(z->dctx);
	z->inner->ops->close(z->inner);
	free(z->in);
	free(z);
}

static const struct bmaptk_stream_ops lz4_ops = {
    .read = lz4_read,
    /* No cheaper way forward than decoding: NULL lets the host read and
     * drop the bytes over the image's holes. */
    .skip = NULL,
    .close = lz4_close,
};

/* probe: head holds the stream's first bytes (up to 4096; fewer for tiny
 * inputs). Return 0 for "not mine", else the number of bits of magic you
 * verified. Must be fast and must not keep head: it is called on every
 * image, lz4 or not, with no state. */
static int lz4_probe(const unsigned char *head, size_t head_len)
{
	/* The lz4 frame magic, 0x184D2204 little-endian. */
	static const unsigned char magic[4] = {0x04, 0x22, 0x4d, 0x18};

	if (head_len >= sizeof(magic) && !memcmp(head, magic, sizeof(magic)))
		return 32;
	return 0;
}

/* open: wrap inner. From this call on inner is ours: close it on every
 * failure path too. The host replays the probed bytes, so inner starts at
 * the magic. */
static struct bmaptk_stream *lz4_open(struct bmaptk_stream *inner,
				      struct bmaptk_error *err)
{
	struct lz4_stream *z = calloc(1, sizeof(*z));

	if (!z || !(z->in = malloc(IN_CHUNK)) ||
	    LZ4F_isError(
		LZ4F_createDecompressionContext(&z->dctx, LZ4F_VERSION))) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
				 "%s: out of memory", inner->name);
		if (z)
			free(z->in);
		free(z);
		inner->ops->close(inner);
		return NULL;
	}
	z->base.ops = &lz4_ops;
	/* The name must outlive the stream; the inner one does. */
	z->base.name = inner->name;
	/* lz4 frames may carry the content size, but rarely do. */
	z->base.size = BMAPTK_SIZE_UNKNOWN;
	z->inner = inner;
	return &z->base;
}

static const struct bmaptk_codec_module lz4_codec = {
    .probe = lz4_probe,
    .open = lz4_open,
    /* Not a container: lz4 output is the image (after a compressor the
     * host still looks for a container such as tar). */
    .flags = 0,
    .format = "lz4",
};

static const struct bmaptk_module lz4_module = {
    /* The ABI this file was compiled against; the host refuses others. */
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_CODEC,
    .name = "example-lz4",
    .description = "lz4 frames via liblz4 (the example plugin)",
    .version = "1",
    /* Among the codecs that claim a stream, the highest priority wins.
     * The archive plugin (10) reads lz4 too; 50 puts this one ahead of it
     * and below the built-in codecs (100). */
    .priority = 50,
    .u.codec = &lz4_codec,
};

/* NULL-terminated; a plugin may carry several modules of any kind. */
static const struct bmaptk_module *const lz4_modules[] = {
    &lz4_module,
    NULL,
};

/* The one exported symbol (everything else is hidden by
 * -fvisibility=hidden). The host calls it once after dlopen with its ABI
 * version; return NULL if this build cannot serve that version. */
__attribute__((visibility("default"))) const struct bmaptk_module *const *
BMAPTK_PLUGIN_ENTRY(int host_abi)
{
	return host_abi == BMAPTK_ABI_VERSION ? lz4_modules : NULL;
}
