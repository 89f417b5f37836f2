/* Force-included (-include) by scripts/static-analysis.sh into the
 * scan-build compile only, never into a real build.
 *
 * The clang static analyzer does not inline variadic functions, so it
 * cannot see that bmaptk_set_error() returns its status argument, which is
 * never 0 at a call site: every `return bmaptk_set_error(...)` looked like
 * it might return success, and each caller's "rc == 0, so the out-parameter
 * was set" became a false report. Restating the call as "set the error,
 * then yield status" lets the analyzer follow the real paths. */
#include <bmaptk/module.h>

#define bmaptk_set_error(err, status, ...)                                     \
	(bmaptk_set_error((err), (status), __VA_ARGS__), (status))
