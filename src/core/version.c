#include <bmaptk/bmaptk.h>

const char *bmaptk_version(void)
{
	return BMAPTK_VERSION;
}

const char *bmaptk_default_plugin_dir(void)
{
	return BMAPTK_DEFAULT_PLUGIN_DIR;
}
