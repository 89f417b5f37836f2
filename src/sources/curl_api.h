/* libcurl, loaded on first use of a URL. Most runs never touch one, and
 * linking libcurl would make every run load its thirty-odd dependencies
 * (about 5 ms at start-up). A static build links it directly.
 * curl_calls.h makes plain curl_* calls go through the loaded table. */
#ifndef BMAPTK_CURL_API_H
#define BMAPTK_CURL_API_H

#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include <bmaptk/module.h>

struct curl_api {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	CURLcode (*easy_pause)(CURL *h, int bitmask);
	void (*easy_cleanup)(CURL *h);
	const char *(*easy_strerror)(CURLcode code);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_add_handle)(CURLM *m, CURL *h);
	CURLMcode (*multi_remove_handle)(CURLM *m, CURL *h);
	CURLMcode (*multi_perform)(CURLM *m, int *running);
	CURLMcode (*multi_poll)(CURLM *m, struct curl_waitfd extra[],
				unsigned n, int timeout_ms, int *ret);
	CURLMsg *(*multi_info_read)(CURLM *m, int *left);
	CURLMcode (*multi_cleanup)(CURLM *m);
	const char *(*multi_strerror)(CURLMcode code);
	curl_version_info_data *(*version_info)(CURLversion age);
	struct curl_slist *(*slist_append)(struct curl_slist *list,
					   const char *s);
	void (*slist_free_all)(struct curl_slist *list);
};

/* Load libcurl once. NULL, with the reason in err (if not NULL), when it
 * cannot be loaded. */
const struct curl_api *curl_api_load(struct bmaptk_error *err);

/* Set once curl_api_load() succeeded; curl_calls.h goes through it. */
extern const struct curl_api *curl_api;

#endif
