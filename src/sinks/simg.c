/* STUB: to be replaced by the Android sparse image sink. */
#include <bmaptk/module.h>

static int probe(const char *path, const struct stat *st)
{
	(void)path;
	(void)st;
	return 0;
}

static struct bmaptk_sink *open_(const char *path,
				 const struct bmaptk_sink_opts *opts,
				 struct bmaptk_error *err)
{
	(void)opts;
	bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0, "%s: not implemented", path);
	return NULL;
}

static const struct bmaptk_sink_module ops = {.probe = probe, .open = open_};

const struct bmaptk_module bmaptk_sink_simg = {
	.abi_version = BMAPTK_ABI_VERSION,
	.kind = BMAPTK_MODULE_SINK,
	.name = "simg",
	.description = "stub",
	.version = "0",
	.u.sink = &ops,
};
