/* A test codec plugin: a stream that starts with the magic "TSTC" decodes
 * to the bytes after it. Built twice: good.so, and wrongabi.so with
 * TESTCODEC_WRONG_ABI, whose module claims the next ABI version. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bmaptk/module.h>

#define MAGIC	  "TSTC"
#define MAGIC_LEN 4

#ifdef TESTCODEC_WRONG_ABI
#define MODULE_ABI (BMAPTK_ABI_VERSION + 1)
#else
#define MODULE_ABI BMAPTK_ABI_VERSION
#endif

struct tstc_stream {
	struct bmaptk_stream base;
	struct bmaptk_stream *inner;
	size_t magic_left; /* bytes of magic still to drop from inner */
};

static int drop_magic(struct tstc_stream *t, struct bmaptk_error *err)
{
	char buf[MAGIC_LEN];

	while (t->magic_left > 0) {
		ssize_t n =
		    t->inner->ops->read(t->inner, buf, t->magic_left, err);
		if (n < 0)
			return -1;
		if (n == 0) {
			bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					 "%s: truncated TSTC header",
					 t->base.name);
			return -1;
		}
		t->magic_left -= (size_t)n;
	}
	return 0;
}

static ssize_t tstc_read(struct bmaptk_stream *s, void *buf, size_t len,
			 struct bmaptk_error *err)
{
	struct tstc_stream *t = (struct tstc_stream *)s;

	if (drop_magic(t, err))
		return -1;
	return t->inner->ops->read(t->inner, buf, len, err);
}

static void tstc_close(struct bmaptk_stream *s)
{
	struct tstc_stream *t = (struct tstc_stream *)s;

	t->inner->ops->close(t->inner);
	free(t);
}

static const struct bmaptk_stream_ops tstc_ops = {
    .read = tstc_read,
    .skip = NULL, /* the host reads and drops */
    .close = tstc_close,
};

static int tstc_probe(const unsigned char *head, size_t head_len)
{
	if (head_len >= MAGIC_LEN && !memcmp(head, MAGIC, MAGIC_LEN))
		return 8 * MAGIC_LEN;
	return 0;
}

static struct bmaptk_stream *tstc_open(struct bmaptk_stream *inner,
				       struct bmaptk_error *err)
{
	struct tstc_stream *t = calloc(1, sizeof(*t));

	if (!t) {
		inner->ops->close(inner);
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
				 "%s: out of memory", inner->name);
		return NULL;
	}
	t->base.ops = &tstc_ops;
	t->base.name = inner->name;
	t->base.size =
	    inner->size == BMAPTK_SIZE_UNKNOWN || inner->size < MAGIC_LEN
		? BMAPTK_SIZE_UNKNOWN
		: inner->size - MAGIC_LEN;
	t->inner = inner;
	t->magic_left = MAGIC_LEN;
	return &t->base;
}

static const struct bmaptk_codec_module tstc_codec = {
    .probe = tstc_probe,
    .open = tstc_open,
    .flags = 0,
    .format = NULL, /* the host falls back to the module name */
};

static const struct bmaptk_module tstc_module = {
    .abi_version = MODULE_ABI,
    .kind = BMAPTK_MODULE_CODEC,
    .name = "testcodec",
    .description = "test codec: TSTC magic, then the payload",
    .version = "1.0",
    .priority = 10,
    .u.codec = &tstc_codec,
};

static const struct bmaptk_module *const tstc_modules[] = {
    &tstc_module,
    NULL,
};

__attribute__((visibility("default"))) const struct bmaptk_module *const *
BMAPTK_PLUGIN_ENTRY(int host_abi)
{
#ifndef TESTCODEC_WRONG_ABI
	/* Serve only the ABI this plugin was built for. */
	if (host_abi != BMAPTK_ABI_VERSION)
		return NULL;
#else
	(void)host_abi; /* a broken plugin: it answers every host */
#endif
	return tstc_modules;
}
