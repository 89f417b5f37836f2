/* Fuzz bmap discovery: bmaptk_bmap_candidate, bmaptk_add_suffix and
 * bmaptk_discover_bmap over paths and URLs.
 *
 * Input: one byte that seeds a pretend file system, then IMAGE, then
 * optionally a NUL and a SUFFIX. The candidates must be bmaptool's: IMAGE's
 * path + ".bmap", then one extension stripped at a time, a URL's query and
 * fragment kept; there are never more of them than dots in the path plus
 * one. Discovery runs against a source module that claims every location
 * and says "here", "I/O error" or "no such file" per name, so it must
 * return the first candidate that exists unless an error comes first. */
#include <errno.h>
#include <string.h>

#include "fuzz_common.h"
#include "util.h"

static uint8_t fs_seed;

/* Where a location's path ends: before a URL's query or fragment. */
static size_t path_len(const char *s)
{
	const char *scheme = strstr(s, "://");

	if (!scheme)
		return strlen(s);
	return (size_t)(scheme + 3 - s) + strcspn(scheme + 3, "?#");
}

enum fate { EXISTS, IO_ERROR, MISSING };

static enum fate fate_of(const char *location)
{
	uint64_t h = fuzz_hash((const uint8_t *)location, strlen(location));

	switch ((h ^ fs_seed) % 5) {
	case 0:
		return EXISTS;
	case 1:
		return IO_ERROR;
	default:
		return MISSING;
	}
}

static int any_probe(const char *location)
{
	(void)location;
	return 1;
}

/* An existing file holds its own name, so the caller can tell which. */
static struct bmaptk_stream *any_open(const char *location,
				      const struct bmaptk_source_opts *opts,
				      struct bmaptk_error *err)
{
	static const struct fuzz_mem_opts whole = {.known_size = 1,
						   .fail_at = UINT64_MAX};

	(void)opts;
	switch (fate_of(location)) {
	case EXISTS:
		return fuzz_mem_stream((const uint8_t *)location,
				       strlen(location), &whole);
	case IO_ERROR:
		bmaptk_set_error(err, BMAPTK_ERR_IO, EIO, "%s: I/O error",
				 location);
		return NULL;
	default:
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, ENOENT,
				 "%s: no such file", location);
		return NULL;
	}
}

static const struct bmaptk_source_module any_source = {
    .probe = any_probe,
    .open = any_open,
};

static const struct bmaptk_module any_module = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_SOURCE,
    .name = "pretend-fs",
    .version = "1",
    .priority = 2000,
    .u.source = &any_source,
};

static void check_suffix(const char *loc, const char *suffix)
{
	size_t plen = path_len(loc), slen = strlen(suffix);
	char *got = bmaptk_add_suffix(loc, suffix);

	FUZZ_CHECK(got, "out of memory");
	FUZZ_CHECK(strlen(got) == strlen(loc) + slen &&
		       !memcmp(got, loc, plen) &&
		       !memcmp(got + plen, suffix, slen) &&
		       !strcmp(got + plen + slen, loc + plen),
		   "add_suffix(%s, %s) = %s", loc, suffix, got);
	free(got);
}

/* Returns the number of candidates. */
static unsigned check_candidates(const char *image)
{
	size_t plen = path_len(image), prev = plen + 1, dots = 0;
	const char *tail = image + plen;
	unsigned i;
	char *c;

	for (size_t k = 0; k < plen; k++)
		dots += image[k] == '.';
	for (i = 0; (c = bmaptk_bmap_candidate(image, i)); i++) {
		size_t clen = strlen(c), stem = clen - strlen(tail) - 5;
		FUZZ_CHECK(i <= dots, "candidate %u of %s: %s", i, image, c);
		FUZZ_CHECK(clen >= strlen(tail) + 5 &&
			       !strcmp(c + stem + 5, tail) &&
			       !memcmp(c + stem, ".bmap", 5) &&
			       !memcmp(c, image, stem),
			   "candidate %u of %s: %s", i, image, c);
		/* Each strips one extension: a '.' and no '/' after it. */
		FUZZ_CHECK(stem < prev, "candidate %u of %s grew", i, image);
		FUZZ_CHECK(i == 0 ? stem == plen
				  : image[stem] == '.' &&
					!memchr(image + stem, '/', prev - stem),
			   "candidate %u of %s: %s", i, image, c);
		prev = stem;
		free(c);
	}
	return i;
}

static void check_discover(const struct bmaptk_registry *reg, const char *image,
			   unsigned ncand)
{
	struct bmaptk_error err = {0};
	char *path = NULL, *data = NULL, *want = NULL;
	enum fate f = MISSING;
	size_t len = 0;
	int rc;

	for (unsigned i = 0; i < ncand && f == MISSING; i++) {
		free(want);
		want = bmaptk_bmap_candidate(image, i);
		f = fate_of(want);
	}
	rc = bmaptk_discover_bmap(reg, image, NULL, &path, &data, &len, &err);
	if (f == EXISTS) {
		FUZZ_CHECK(!rc && path && !strcmp(path, want) &&
			       len == strlen(want) && !strcmp(data, want),
			   "%s: wanted %s, got rc %d %s", image, want, rc,
			   path ? path : err.message);
	} else {
		FUZZ_CHECK(rc && !path, "%s: found %s, wanted an error", image,
			   path);
		fuzz_check_error(&err, "discover");
		FUZZ_CHECK(f == IO_ERROR ? err.status == BMAPTK_ERR_IO
					 : err.status == BMAPTK_ERR_USAGE,
			   "%s: status %d", image, err.status);
	}
	free(want);
	free(path);
	free(data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct bmaptk_registry *reg;
	struct bmaptk_error err = {0};
	char *image, *suffix;
	unsigned n;

	if (!reg) {
		reg = bmaptk_registry_new();
		FUZZ_CHECK(
		    reg && !bmaptk_registry_add(reg, &any_module, "fuzz", &err),
		    "registry: %s", err.message);
	}
	if (len < 1)
		return 0;
	fs_seed = data[0];
	/* IMAGE NUL SUFFIX NUL: two C strings, whatever the input holds. */
	image = calloc(1, len + 1);
	FUZZ_CHECK(image, "out of memory");
	memcpy(image, data + 1, len - 1);
	suffix = image + strlen(image) + 1;
	if (suffix > image + len - 1)
		suffix = ".asc";
	check_suffix(image, suffix);
	check_suffix(image, ".bmap");
	n = check_candidates(image);
	check_discover(reg, image, n);
	free(image);
	return 0;
}
