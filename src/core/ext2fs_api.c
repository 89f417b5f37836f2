#include <pthread.h>
#include <stdio.h>

#include "ext2fs_api.h"
#include "lazy_lib.h"

#ifdef BMAPTK_EXT2FS_LOADABLE
const struct ext2fs_api *ext2fs_api;

static struct ext2fs_api table;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[256];

static void load(void)
{
#define EXT2FS_SYMBOL(ret, name, params)                                       \
	{#name, offsetof(struct ext2fs_api, name)},
	static const struct lazy_symbol syms[] = {EXT2FS_FUNCTIONS(
	    EXT2FS_SYMBOL){"unix_io_manager",
			   offsetof(struct ext2fs_api, unix_io_manager)}};
	static const struct lazy_symbol com_err_syms[] = {
	    COM_ERR_FUNCTIONS(EXT2FS_SYMBOL)};
#undef EXT2FS_SYMBOL

	if (lazy_lib_load("libext2fs.so.2", &table, syms,
			  sizeof(syms) / sizeof(syms[0]), failure,
			  sizeof(failure)))
		return;
	/* libext2fs has loaded libcom_err already: this finds it. */
	if (lazy_lib_load("libcom_err.so.2", &table, com_err_syms,
			  sizeof(com_err_syms) / sizeof(com_err_syms[0]),
			  failure, sizeof(failure)))
		return;
	/* Without its table, error_message says "Unknown code ext2 19"
	 * rather than "Bad magic number in super-block". Registering it
	 * twice is harmless: it checks. */
	table.initialize_ext2_error_table();
	ext2fs_api = &table;
}

int ext2fs_api_load(char *why, size_t why_len)
{
	pthread_once(&once, load);
	if (!ext2fs_api)
		snprintf(why, why_len, "%s", failure);
	return ext2fs_api ? 0 : -1;
}
#else
int ext2fs_api_load(char *why, size_t why_len)
{
	snprintf(why, why_len, "ext2/3/4 support is not in this build");
	return -1;
}
#endif
