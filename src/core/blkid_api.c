#include <pthread.h>
#include <stdio.h>

#include "blkid_api.h"
#include "lazy_lib.h"

#ifdef BMAPTK_HAVE_BLKID
const struct blkid_api *blkid_api;

static struct blkid_api table;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[256];

static void load(void)
{
#define BLKID_SYMBOL(ret, name, params)                                        \
	{#name, offsetof(struct blkid_api, name)},
	static const struct lazy_symbol syms[] = {
	    BLKID_FUNCTIONS(BLKID_SYMBOL)};
#undef BLKID_SYMBOL

	if (!lazy_lib_load("libblkid.so.1", &table, syms,
			   sizeof(syms) / sizeof(syms[0]), failure,
			   sizeof(failure)))
		blkid_api = &table;
}

int blkid_api_load(char *why, size_t why_len)
{
	pthread_once(&once, load);
	if (!blkid_api)
		snprintf(why, why_len, "%s", failure);
	return blkid_api ? 0 : -1;
}
#else
int blkid_api_load(char *why, size_t why_len)
{
	snprintf(why, why_len, "this bmaptk was built without libblkid");
	return -1;
}
#endif
