/* gpgme, loaded when a signature is first verified: most runs verify none,
 * and linking gpgme costs every run its libraries at start-up. Calls go
 * through the table: GPGME(gpgme_new)(&ctx). */
#ifndef BMAPTK_GPGME_API_H
#define BMAPTK_GPGME_API_H

#include <gpgme.h>

#include <bmaptk/module.h>

/* Every gpgme function bmaptk calls: return type, name, parameters. */
#define GPGME_FUNCTIONS(X)                                                     \
	X(const char *, gpgme_check_version_internal,                          \
	  (const char *req, size_t offset))                                    \
	X(gpgme_error_t, gpgme_new, (gpgme_ctx_t * ctx))                       \
	X(void, gpgme_release, (gpgme_ctx_t ctx))                              \
	X(gpgme_error_t, gpgme_set_protocol,                                   \
	  (gpgme_ctx_t ctx, gpgme_protocol_t proto))                           \
	X(gpgme_error_t, gpgme_ctx_set_engine_info,                            \
	  (gpgme_ctx_t ctx, gpgme_protocol_t proto, const char *file,          \
	   const char *home))                                                  \
	X(gpgme_error_t, gpgme_data_new, (gpgme_data_t * d))                   \
	X(gpgme_error_t, gpgme_data_new_from_mem,                              \
	  (gpgme_data_t * d, const char *buf, size_t len, int copy))           \
	X(gpgme_error_t, gpgme_data_new_from_file,                             \
	  (gpgme_data_t * d, const char *name, int copy))                      \
	X(void, gpgme_data_release, (gpgme_data_t d))                          \
	X(char *, gpgme_data_release_and_get_mem,                              \
	  (gpgme_data_t d, size_t * n))                                        \
	X(void, gpgme_free, (void *p))                                         \
	X(gpgme_error_t, gpgme_op_import,                                      \
	  (gpgme_ctx_t ctx, gpgme_data_t keys))                                \
	X(gpgme_import_result_t, gpgme_op_import_result, (gpgme_ctx_t ctx))    \
	X(gpgme_error_t, gpgme_op_verify,                                      \
	  (gpgme_ctx_t ctx, gpgme_data_t sig, gpgme_data_t text,               \
	   gpgme_data_t plain))                                                \
	X(gpgme_verify_result_t, gpgme_op_verify_result, (gpgme_ctx_t ctx))    \
	X(gpgme_error_t, gpgme_get_key,                                        \
	  (gpgme_ctx_t ctx, const char *fpr, gpgme_key_t *key, int secret))    \
	X(void, gpgme_key_unref, (gpgme_key_t key))                            \
	X(const char *, gpgme_strerror, (gpgme_error_t err))

struct gpgme_api {
#define GPGME_FIELD(ret, name, params) ret(*name) params;
	GPGME_FUNCTIONS(GPGME_FIELD)
#undef GPGME_FIELD
};

/* Load gpgme once; NULL with the reason in err when it cannot be. */
const struct gpgme_api *gpgme_api_load(struct bmaptk_error *err);

extern const struct gpgme_api *gpgme_api;
#define GPGME(name) (gpgme_api->name)

#endif
