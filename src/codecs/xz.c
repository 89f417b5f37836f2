/* xz codec: liblzma's multi-threaded decoder, so the blocks of a file made
 * by `xz -T0` decode on every core. Concatenated streams are decoded to the
 * end; trailing garbage, truncation and corruption are errors naming the
 * compressed offset. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lzma.h>

#include <bmaptk/module.h>

#include "util.h"

#define IN_CHUNK (1u << 20)
/* Cap on what the threaded decoder may buffer before it drops threads. */
#define MEMLIMIT_THREADING (256ull << 20)

struct xz_stream {
	struct bmaptk_stream base;
	struct bmaptk_stream *inner;
	lzma_stream ls;
	unsigned char *in;
	int eof;
	int done;
};

static int xz_error(struct xz_stream *x, lzma_ret ret, struct bmaptk_error *err)
{
	unsigned long long off = (unsigned long long)x->ls.total_in;
	const char *name = x->base.name;

	switch (ret) {
	case LZMA_MEM_ERROR:
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory decoding xz data",
					name);
	case LZMA_BUF_ERROR:
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: truncated xz data at compressed offset %llu", name,
		    off);
	case LZMA_FORMAT_ERROR:
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: not xz data at compressed offset %llu", name, off);
	case LZMA_OPTIONS_ERROR:
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: unsupported xz options at compressed offset %llu",
		    name, off);
	case LZMA_MEMLIMIT_ERROR:
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"%s: xz data needs too much memory at "
					"compressed offset %llu",
					name, off);
	case LZMA_DATA_ERROR:
		/* Also what garbage after the last stream looks like. */
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: corrupt xz data (or trailing "
					"garbage) at compressed offset %llu",
					name, off);
	default:
		return bmaptk_set_error(err, BMAPTK_ERR_IO, 0,
					"%s: xz decoder failed at compressed "
					"offset %llu (liblzma error %d)",
					name, off, (int)ret);
	}
}

static ssize_t xz_read(struct bmaptk_stream *s, void *buf, size_t len,
		       struct bmaptk_error *err)
{
	struct xz_stream *x = (struct xz_stream *)s;
	lzma_stream *ls = &x->ls;

	if (x->done)
		return 0;
	ls->next_out = buf;
	ls->avail_out = len;
	while (ls->avail_out > 0) {
		lzma_ret ret;

		if (ls->avail_in == 0 && !x->eof) {
			ssize_t n =
			    x->inner->ops->read(x->inner, x->in, IN_CHUNK, err);
			if (n < 0)
				return -1;
			x->eof = n == 0;
			ls->next_in = x->in;
			ls->avail_in = (size_t)n;
		}
		/* With LZMA_CONCATENATED only LZMA_FINISH lets it end. */
		ret = lzma_code(ls, x->eof ? LZMA_FINISH : LZMA_RUN);
		if (ret == LZMA_STREAM_END) {
			x->done = 1;
			break;
		}
		if (ret != LZMA_OK)
			return xz_error(x, ret, err), -1;
	}
	return (ssize_t)(len - ls->avail_out);
}

static void xz_close(struct bmaptk_stream *s)
{
	struct xz_stream *x = (struct xz_stream *)s;

	lzma_end(&x->ls);
	x->inner->ops->close(x->inner);
	free(x->in);
	free(x);
}

static const struct bmaptk_stream_ops xz_ops = {
    .read = xz_read,
    .skip = NULL, /* decoding is the only way forward */
    .close = xz_close,
};

static int xz_probe(const unsigned char *head, size_t len)
{
	static const unsigned char magic[6] = {0xfd, '7', 'z', 'X', 'Z', 0};

	return len >= sizeof(magic) && !memcmp(head, magic, sizeof(magic)) ? 48
									   : 0;
}

static lzma_ret start_decoder(lzma_stream *ls)
{
	uint64_t physmem = lzma_physmem();
	lzma_mt mt = {
	    .flags = LZMA_CONCATENATED,
	    .threads = online_cpus(),
	    .timeout = 0, /* block until the output buffer is full */
	    .memlimit_threading = MEMLIMIT_THREADING,
	    .memlimit_stop = UINT64_MAX,
	};

	/* On a small machine leave it most of its memory. */
	if (physmem && physmem / 4 < mt.memlimit_threading)
		mt.memlimit_threading = physmem / 4;
	return lzma_stream_decoder_mt(ls, &mt);
}

static struct bmaptk_stream *xz_open(struct bmaptk_stream *inner,
				     struct bmaptk_error *err)
{
	struct xz_stream *x = calloc(1, sizeof(*x));
	lzma_ret ret;

	if (!x || !(x->in = malloc(IN_CHUNK))) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
				 "%s: out of memory", inner->name);
		free(x);
		inner->ops->close(inner);
		return NULL;
	}
	x->ls = (lzma_stream)LZMA_STREAM_INIT;
	x->base.ops = &xz_ops;
	x->base.name = inner->name;
	x->base.size = BMAPTK_SIZE_UNKNOWN;
	x->inner = inner;
	ret = start_decoder(&x->ls);
	if (ret != LZMA_OK) {
		xz_error(x, ret, err);
		xz_close(&x->base);
		return NULL;
	}
	return &x->base;
}

static const struct bmaptk_codec_module xz_codec = {
    .probe = xz_probe,
    .open = xz_open,
    .flags = 0,
    .format = "xz",
};

const struct bmaptk_module bmaptk_codec_xz = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_CODEC,
    .name = "xz",
    .description = "xz (multi-stream), multi-threaded liblzma decoder",
    .version = "1",
    .priority = 100,
    .u.codec = &xz_codec,
};
