/* STUB: to be replaced by the real gzip codec. */
#include <bmaptk/module.h>

static int probe(const unsigned char *head, size_t len)
{
	(void)head;
	(void)len;
	return 0;
}

static struct bmaptk_stream *open_(struct bmaptk_stream *inner,
				   struct bmaptk_error *err)
{
	inner->ops->close(inner);
	bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0, "gzip: not implemented");
	return NULL;
}

static const struct bmaptk_codec_module ops = {.probe = probe, .open = open_};

const struct bmaptk_module bmaptk_codec_gzip = {
	.abi_version = BMAPTK_ABI_VERSION,
	.kind = BMAPTK_MODULE_CODEC,
	.name = "gzip",
	.description = "stub",
	.version = "0",
	.u.codec = &ops,
};
