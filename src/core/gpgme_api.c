#ifdef BMAPTK_HAVE_GPGME
#include <pthread.h>
#include <stdio.h>

#include "gpgme_api.h"
#include "lazy_lib.h"

const struct gpgme_api *gpgme_api;

static struct gpgme_api table;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[256];

static void load(void)
{
#define GPGME_SYMBOL(ret, name, params)                                        \
	{#name, offsetof(struct gpgme_api, name)},
	static const struct lazy_symbol syms[] = {
	    GPGME_FUNCTIONS(GPGME_SYMBOL)};
#undef GPGME_SYMBOL

	if (!lazy_lib_load("libgpgme.so.11", &table, syms,
			   sizeof(syms) / sizeof(syms[0]), failure,
			   sizeof(failure)))
		gpgme_api = &table;
}

const struct gpgme_api *gpgme_api_load(struct bmaptk_error *err)
{
	pthread_once(&once, load);
	if (!gpgme_api && err)
		bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "cannot verify signatures: %s; use --no-sig-verify",
		    failure);
	return gpgme_api;
}
#endif
