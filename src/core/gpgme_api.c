#ifdef BMAPTK_HAVE_GPGME
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gpgme_api.h"

const struct gpgme_api *gpgme_api;

static struct gpgme_api table;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[256];

static void load(void)
{
	void *lib = dlopen("libgpgme.so.11", RTLD_NOW | RTLD_LOCAL);
	void *sym;
	int bad = 0;

	if (!lib) {
		snprintf(failure, sizeof(failure),
			 "cannot load gpgme to verify signatures: %s",
			 dlerror());
		return;
	}
#define GPGME_RESOLVE(ret, name, params)                                       \
	if ((sym = dlsym(lib, #name)))                                         \
		memcpy(&table.name, &sym, sizeof(sym));                        \
	else if (!bad++)                                                       \
		snprintf(failure, sizeof(failure), "gpgme has no %s", #name);
	GPGME_FUNCTIONS(GPGME_RESOLVE)
#undef GPGME_RESOLVE
	/* gpgme stays loaded until exit, like any linked library. */
	if (!bad)
		gpgme_api = &table;
}

const struct gpgme_api *gpgme_api_load(struct bmaptk_error *err)
{
	pthread_once(&once, load);
	if (!gpgme_api && err)
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s; use --no-sig-verify", failure);
	return gpgme_api;
}
#endif
