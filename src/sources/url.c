/* STUB: to be replaced by the libcurl URL source. */
#include <string.h>

#include <bmaptk/module.h>

static int probe(const char *location)
{
	(void)location;
	return 0;
}

static struct bmaptk_stream *open_(const char *location,
				   const struct bmaptk_source_opts *opts,
				   struct bmaptk_error *err)
{
	(void)opts;
	bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0, "%s: URLs not implemented",
			 location);
	return NULL;
}

static const struct bmaptk_source_module ops = {.probe = probe, .open = open_};

const struct bmaptk_module bmaptk_source_url = {
	.abi_version = BMAPTK_ABI_VERSION,
	.kind = BMAPTK_MODULE_SOURCE,
	.name = "url",
	.description = "stub",
	.version = "0",
	.u.source = &ops,
};
