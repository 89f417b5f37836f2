/* Loading libcurl: dlopen on first use, or the linked symbols in a static
 * build. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "curl_api.h"

const struct curl_api *curl_api;

static struct curl_api table;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[256];

#ifdef BMAPTK_STATIC
/* Linked in: the table points at libcurl itself. */
static void load(void)
{
	table = (struct curl_api){
	    .global_init = curl_global_init,
	    .easy_init = curl_easy_init,
	    .easy_setopt = curl_easy_setopt,
	    .easy_getinfo = curl_easy_getinfo,
	    .easy_pause = curl_easy_pause,
	    .easy_cleanup = curl_easy_cleanup,
	    .easy_strerror = curl_easy_strerror,
	    .multi_init = curl_multi_init,
	    .multi_add_handle = curl_multi_add_handle,
	    .multi_remove_handle = curl_multi_remove_handle,
	    .multi_perform = curl_multi_perform,
	    .multi_poll = curl_multi_poll,
	    .multi_info_read = curl_multi_info_read,
	    .multi_cleanup = curl_multi_cleanup,
	    .multi_strerror = curl_multi_strerror,
	    .version_info = curl_version_info,
	    .slist_append = curl_slist_append,
	    .slist_free_all = curl_slist_free_all,
	};
	curl_api = &table;
}
#else
static int resolve(void *lib, void *slot, const char *name)
{
	void *sym = dlsym(lib, name);

	if (!sym) {
		snprintf(failure, sizeof(failure),
			 "libcurl has no %s (too old?)", name);
		return -1;
	}
	memcpy(slot, &sym, sizeof(sym));
	return 0;
}

static void load(void)
{
	void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	int bad = 0;

	if (!lib) {
		snprintf(failure, sizeof(failure),
			 "cannot load libcurl for URLs: %s", dlerror());
		return;
	}
#define RESOLVE(field, name) bad |= resolve(lib, &table.field, name)
	RESOLVE(global_init, "curl_global_init");
	RESOLVE(easy_init, "curl_easy_init");
	RESOLVE(easy_setopt, "curl_easy_setopt");
	RESOLVE(easy_getinfo, "curl_easy_getinfo");
	RESOLVE(easy_pause, "curl_easy_pause");
	RESOLVE(easy_cleanup, "curl_easy_cleanup");
	RESOLVE(easy_strerror, "curl_easy_strerror");
	RESOLVE(multi_init, "curl_multi_init");
	RESOLVE(multi_add_handle, "curl_multi_add_handle");
	RESOLVE(multi_remove_handle, "curl_multi_remove_handle");
	RESOLVE(multi_perform, "curl_multi_perform");
	RESOLVE(multi_poll, "curl_multi_poll");
	RESOLVE(multi_info_read, "curl_multi_info_read");
	RESOLVE(multi_cleanup, "curl_multi_cleanup");
	RESOLVE(multi_strerror, "curl_multi_strerror");
	RESOLVE(version_info, "curl_version_info");
	RESOLVE(slist_append, "curl_slist_append");
	RESOLVE(slist_free_all, "curl_slist_free_all");
#undef RESOLVE
	/* libcurl stays loaded until exit, like any linked library. */
	if (!bad)
		curl_api = &table;
}
#endif

const struct curl_api *curl_api_load(struct bmaptk_error *err)
{
	pthread_once(&once, load);
	if (!curl_api && err)
		bmaptk_set_error(err, BMAPTK_ERR_IO, 0, "%s", failure);
	return curl_api;
}
