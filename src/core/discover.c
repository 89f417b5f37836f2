/* Finding the bmap next to an image, exactly as bmaptool does: IMAGE.bmap,
 * then strip one extension at a time (Python's os.path.splitext) and add
 * ".bmap". For a URL the path is changed and the query kept. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bmaptk/bmaptk.h>

#include "util.h"

/* Where the part of location that holds the path ends (a URL's query or
 * fragment begins there). */
static size_t path_end(const char *location)
{
	const char *scheme = strstr(location, "://");

	if (!scheme)
		return strlen(location);
	scheme += 3;
	return (size_t)(scheme - location) + strcspn(scheme, "?#");
}

/* Length of path[0..len) without its extension, as splitext: the last dot
 * of the last component, unless the component is only leading dots. */
static size_t strip_extension(const char *path, size_t len)
{
	size_t base = len, dot = len;

	while (base > 0 && path[base - 1] != '/')
		base--;
	for (size_t i = len; i > base; i--) {
		if (path[i - 1] == '.') {
			dot = i - 1;
			break;
		}
	}
	if (dot == len)
		return len;
	for (size_t i = base; i < dot; i++)
		if (path[i] != '.')
			return dot;
	return len; /* ".bashrc", "..x": no extension */
}

/* location's path [0, plen) with suffix and the rest of location after
 * the path (a URL's query), malloc'd. */
static char *with_suffix(const char *location, size_t plen, const char *suffix)
{
	size_t end = path_end(location), tail = strlen(location) - end;
	size_t slen = strlen(suffix);
	char *out = malloc(plen + slen + tail + 1);

	if (!out)
		return NULL;
	memcpy(out, location, plen);
	memcpy(out + plen, suffix, slen);
	memcpy(out + plen + slen, location + end, tail + 1);
	return out;
}

char *bmaptk_add_suffix(const char *location, const char *suffix)
{
	return with_suffix(location, path_end(location), suffix);
}

char *bmaptk_redact(const char *location)
{
	const char *scheme = strstr(location, "://"), *host, *at;
	size_t auth;
	char *out;

	if (!scheme)
		return strdup(location);
	host = scheme + 3;
	auth = strcspn(host, "/?#");
	at = memchr(host, '@', auth);
	while (at && memchr(at + 1, '@', auth - (size_t)(at + 1 - host)))
		at = memchr(at + 1, '@', auth - (size_t)(at + 1 - host));
	if (!at)
		return strdup(location);
	out = malloc(strlen(location) + 1);
	if (!out)
		return NULL;
	memcpy(out, location, (size_t)(host - location));
	strcpy(out + (host - location), at + 1);
	return out;
}

char *bmaptk_bmap_candidate(const char *image, unsigned index)
{
	size_t plen = path_end(image);

	for (unsigned i = 0; i < index; i++) {
		size_t stripped = strip_extension(image, plen);
		if (stripped == plen)
			return NULL;
		plen = stripped;
	}
	return with_suffix(image, plen, ".bmap");
}

int bmaptk_discover_bmap(const struct bmaptk_registry *reg, const char *image,
			 const struct bmaptk_source_opts *opts,
			 char **bmap_path, char **data, size_t *len,
			 struct bmaptk_error *err)
{
	char *cand, *shown;
	int rc;

	*bmap_path = NULL;
	for (unsigned i = 0; (cand = bmaptk_bmap_candidate(image, i)); i++) {
		rc = bmaptk_read_all(reg, cand, opts, BMAPTK_BMAP_MAX_FILE,
				     data, len, err);
		if (bmaptk_debugging()) {
			char *shown_cand = bmaptk_redact(cand);
			bmaptk_debug("bmap discovery: %s: %s",
				     shown_cand ? shown_cand : "(a URL)",
				     !rc			? "found"
				     : err->sys_errno == ENOENT ? "not there"
								: err->message);
			free(shown_cand);
		}
		if (rc && err->sys_errno == ENOENT) {
			free(cand);
			continue;
		}
		if (rc) {
			free(cand);
			return rc;
		}
		*bmap_path = cand;
		return 0;
	}
	/* Without the URL's password: out of memory, without the names. */
	shown = bmaptk_redact(image);
	if (!shown)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"bmap file not found; out of memory");
	rc = bmaptk_set_error(
	    err, BMAPTK_ERR_USAGE, ENOENT,
	    "%s: bmap file not found (tried %s.bmap and the names without its "
	    "extensions); give one with --bmap",
	    shown, shown);
	free(shown);
	return rc;
}
