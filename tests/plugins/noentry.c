/* A shared object that is not a bmaptk plugin: it exports a function, but
 * not BMAPTK_PLUGIN_ENTRY. */
#include <bmaptk/module.h>

__attribute__((visibility("default"))) int not_a_bmaptk_entry(int x);

int not_a_bmaptk_entry(int x)
{
	return x + BMAPTK_ABI_VERSION;
}
