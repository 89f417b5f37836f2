/* -d: the decisions a user debugging a flash needs, from wherever in the
 * library they are made (one test of a pointer when nobody listens); and
 * the library's warnings (a retry), so the caller can show them its way
 * (as JSON under --json). */
#include <stdarg.h>
#include <stdio.h>

#include <bmaptk/bmaptk.h>

#include "util.h"

static bmaptk_debug_fn debug_fn, warn_fn;
static void *debug_ctx, *warn_ctx;

void bmaptk_set_debug(bmaptk_debug_fn fn, void *ctx)
{
	debug_fn = fn;
	debug_ctx = ctx;
}

int bmaptk_debugging(void)
{
	return debug_fn != NULL;
}

void bmaptk_debug(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!debug_fn)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	debug_fn(debug_ctx, line);
}

void bmaptk_set_warn(bmaptk_debug_fn fn, void *ctx)
{
	warn_fn = fn;
	warn_ctx = ctx;
}

void bmaptk_warn(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (warn_fn)
		warn_fn(warn_ctx, line);
	else
		fprintf(stderr, "bmaptk: warning: %s\n", line);
}
