/* Include instead of <curl/curl.h>: the curl_* calls below go through the
 * table curl_api_load() filled, so the code reads as plain libcurl. Call
 * curl_api_load() first. */
#ifndef BMAPTK_CURL_CALLS_H
#define BMAPTK_CURL_CALLS_H

#include "curl_api.h"

#define curl_global_init(...) (curl_api->global_init(__VA_ARGS__))
#define curl_easy_init(...)   (curl_api->easy_init(__VA_ARGS__))
/* curl.h defines these two as macros of themselves. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_easy_setopt(...)	   (curl_api->easy_setopt(__VA_ARGS__))
#define curl_easy_getinfo(...)	   (curl_api->easy_getinfo(__VA_ARGS__))
#define curl_easy_pause(...)	   (curl_api->easy_pause(__VA_ARGS__))
#define curl_easy_cleanup(...)	   (curl_api->easy_cleanup(__VA_ARGS__))
#define curl_easy_strerror(...)	   (curl_api->easy_strerror(__VA_ARGS__))
#define curl_multi_init(...)	   (curl_api->multi_init(__VA_ARGS__))
#define curl_multi_add_handle(...) (curl_api->multi_add_handle(__VA_ARGS__))
#define curl_multi_remove_handle(...)                                          \
	(curl_api->multi_remove_handle(__VA_ARGS__))
#define curl_multi_perform(...)	  (curl_api->multi_perform(__VA_ARGS__))
#define curl_multi_poll(...)	  (curl_api->multi_poll(__VA_ARGS__))
#define curl_multi_info_read(...) (curl_api->multi_info_read(__VA_ARGS__))
#define curl_multi_cleanup(...)	  (curl_api->multi_cleanup(__VA_ARGS__))
#define curl_multi_strerror(...)  (curl_api->multi_strerror(__VA_ARGS__))
#define curl_version_info(...)	  (curl_api->version_info(__VA_ARGS__))
#define curl_slist_append(...)	  (curl_api->slist_append(__VA_ARGS__))
#define curl_slist_free_all(...)  (curl_api->slist_free_all(__VA_ARGS__))

#endif
