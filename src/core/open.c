/* Opening things through the registry: a location through its source, the
 * image through the codecs its first bytes call for, a destination through
 * its sink. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "registry_internal.h"
#include "util.h"

#define PEEK_SIZE	4096 /* enough for every magic and for tar headers */
#define MAX_CODEC_DEPTH 4

/* A location as messages and events show it: a URL without its
 * "user:password@" (bmaptk_redact). Stream names must outlive the stream,
 * so the redacted names made here are kept, once each, until exit; a
 * location without credentials is returned as it is. */
struct shown_name {
	struct shown_name *next;
	char name[];
};
static struct shown_name *shown_names;
static pthread_mutex_t shown_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *shown_name(const char *location)
{
	char *r = bmaptk_redact(location);
	struct shown_name *n;
	const char *found = NULL;

	if (r && !strcmp(r, location)) {
		free(r);
		return location;
	}
	if (!r)
		return "(a URL)"; /* out of memory: never the password */
	pthread_mutex_lock(&shown_lock);
	for (n = shown_names; n && !found; n = n->next)
		if (!strcmp(n->name, r))
			found = n->name;
	if (!found && (n = malloc(sizeof(*n) + strlen(r) + 1))) {
		strcpy(n->name, r);
		n->next = shown_names;
		shown_names = n;
		found = n->name;
	}
	pthread_mutex_unlock(&shown_lock);
	free(r);
	return found ? found : "(a URL)";
}

/* Remove location's "user:password@" wherever err's message has it: a
 * module (a plugin's source, say) may have named the location as given. */
static void scrub(struct bmaptk_error *err, const char *location)
{
	const char *host = strstr(location, "://");
	char *r, *m, *hit;
	size_t cut;

	if (!err || !host || !(r = bmaptk_redact(location)))
		return;
	cut = strlen(location) - strlen(r);
	free(r);
	if (!cut)
		return;
	host += 3; /* "user:password@" is [host, host + cut) */
	m = err->message;
	while ((hit = memmem(m, strlen(m), host, cut)))
		memmove(hit, hit + cut, strlen(hit + cut) + 1);
}

struct bmaptk_stream *bmaptk_open_raw(const struct bmaptk_registry *reg,
				      const char *location,
				      const struct bmaptk_source_opts *opts,
				      struct bmaptk_error *err)
{
	static const struct bmaptk_source_opts defaults = {.retries = 5,
							   .timeout_sec = 60};
	const struct bmaptk_module *m = registry_pick_source(reg, location);
	struct bmaptk_stream *s;

	if (!m) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s: no source module can open this "
				 "(unsupported URL scheme?)",
				 shown_name(location));
		return NULL;
	}
	s = m->u.source->open(location, opts ? opts : &defaults, err);
	if (!s) {
		scrub(err, location);
		return NULL;
	}
	/* Codecs name their errors after it: never with a password. */
	if (!s->name || shown_name(s->name) != s->name)
		s->name = shown_name(s->name ? s->name : location);
	return s;
}

/* A stream that replays the bytes read for probing, then continues. */
struct peek_stream {
	struct bmaptk_stream base;
	struct bmaptk_stream *inner;
	unsigned char head[PEEK_SIZE];
	size_t len, pos;
};

static ssize_t peek_read(struct bmaptk_stream *s, void *buf, size_t len,
			 struct bmaptk_error *err)
{
	struct peek_stream *p = (struct peek_stream *)s;

	if (p->pos < p->len) {
		size_t n = MIN(len, p->len - p->pos);
		memcpy(buf, p->head + p->pos, n);
		p->pos += n;
		return (ssize_t)n;
	}
	return p->inner->ops->read(p->inner, buf, len, err);
}

static int peek_skip(struct bmaptk_stream *s, uint64_t n,
		     struct bmaptk_error *err)
{
	struct peek_stream *p = (struct peek_stream *)s;
	size_t buffered = p->len - p->pos;

	if (n <= buffered) {
		p->pos += (size_t)n;
		return 0;
	}
	p->pos = p->len;
	return stream_skip(p->inner, n - buffered, err);
}

static uint64_t peek_hole(struct bmaptk_stream *s)
{
	struct peek_stream *p = (struct peek_stream *)s;

	/* The probed head is replayed as data; it ends where a hole
	 * begins. */
	if (p->pos < p->len || !p->inner->ops->hole)
		return 0;
	return p->inner->ops->hole(p->inner);
}

static void peek_close(struct bmaptk_stream *s)
{
	struct peek_stream *p = (struct peek_stream *)s;

	p->inner->ops->close(p->inner);
	free(p);
}

static const struct bmaptk_stream_ops peek_ops = {
    .read = peek_read,
    .skip = peek_skip,
    .close = peek_close,
    .hole = peek_hole,
};

/* Wrap inner (taken) in a peek stream holding its first bytes. */
static struct peek_stream *peek_open(struct bmaptk_stream *inner,
				     struct bmaptk_error *err)
{
	struct peek_stream *p = calloc(1, sizeof(*p));
	ssize_t n;

	if (!p) {
		inner->ops->close(inner);
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM, "out of memory");
		return NULL;
	}
	p->base = *inner;
	p->base.ops = &peek_ops;
	p->inner = inner;
	/* The head stops at a hole the stream reports: reading through it
	 * would turn the hole into data (the bmap of an Android sparse image
	 * would then depend on whether a container module is installed). A
	 * read never crosses a hole's edge, so checking before each is
	 * enough. */
	while (p->len < sizeof(p->head) &&
	       !(inner->ops->hole && inner->ops->hole(inner))) {
		n = inner->ops->read(inner, p->head + p->len,
				     sizeof(p->head) - p->len, err);
		if (n < 0) {
			peek_close(&p->base);
			return NULL;
		}
		if (n == 0)
			break;
		p->len += (size_t)n;
	}
	return p;
}

/* Formats that are not disk images, so raw copying them would be wrong.
 * Which module decodes them is the registry's business; this list only
 * names them when none does. */
static const struct known_magic {
	const char *format;
	size_t offset, len;
	const char *magic;
	int container;
} known_magics[] = {
    {"gzip", 0, 2, "\x1f\x8b", 0},
    {"xz", 0, 6,
     "\xfd"
     "7zXZ\0",
     0},
    {"bzip2", 0, 3, "BZh", 0},
    {"zstd", 0, 4, "\x28\xb5\x2f\xfd", 0},
    {"lz4", 0, 4, "\x04\x22\x4d\x18", 0},
    {"lz4", 0, 4, "\x02\x21\x4c\x18", 0},
    {"lzop", 0, 4, "\x89LZO", 0},
    {"lzip", 0, 4, "LZIP", 0},
    {"compress (.Z)", 0, 2, "\x1f\x9d", 0},
    {"lrzip", 0, 4, "LRZI", 0},
    {"grzip", 0, 7, "GRZipII", 0},
    {"zip", 0, 4, "PK\x03\x04", 1},
    {"7z", 0, 6, "7z\xbc\xaf\x27\x1c", 1},
    {"tar", 257, 5, "ustar", 1},
    {"Android sparse image", 0, 4, "\x3a\xff\x26\xed", 0},
};

static const char *looks_like(const unsigned char *head, size_t len,
			      int containers_only)
{
	for (size_t i = 0; i < sizeof(known_magics) / sizeof(known_magics[0]);
	     i++) {
		const struct known_magic *k = &known_magics[i];
		if (containers_only && !k->container)
			continue;
		if (len >= k->offset + k->len &&
		    !memcmp(head + k->offset, k->magic, k->len))
			return k->format;
	}
	return NULL;
}

/* After a compressor, the decoded bytes are probed again only for a
 * container (a tar inside gzip), and only if a container module exists. */
static int have_containers(const struct bmaptk_registry *reg)
{
	const struct bmaptk_module *m;

	for (size_t i = 0; (m = bmaptk_registry_get(reg, i, NULL)); i++)
		if (m->kind == BMAPTK_MODULE_CODEC &&
		    (m->u.codec->flags & BMAPTK_CODEC_CONTAINER))
			return 1;
	return 0;
}

/* Whether head[0, len) holds "<bmap" as an element name. */
static int has_bmap_element(const char *h, size_t len)
{
	for (size_t i = 0; i + 6 <= len; i++)
		if (!memcmp(h + i, "<bmap", 5) &&
		    strchr(" \t\r\n>", h[i + 5]) && h[i + 5])
			return 1;
	return 0;
}

int bmaptk_looks_like_bmap(const void *head, size_t len)
{
	static const char *const starts[] = {"<?xml", "<bmap",
					     BMAPTK_CLEARSIGN_MARKER};
	const char *h = head;
	size_t lead = 0;

	while (lead < len && h[lead] && strchr(" \t\r\n", h[lead]))
		lead++;
	/* It starts like XML or a clearsigned message, and its root element
	 * (which bmaptool puts after a short comment) is <bmap>: any other
	 * XML file is not a bmap. */
	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		size_t n = strlen(starts[i]);
		if (len - lead >= n && !memcmp(h + lead, starts[i], n))
			return has_bmap_element(h + lead, len - lead);
	}
	return 0;
}

const char *bmaptk_format_name(const void *head, size_t len)
{
	const char *like = looks_like(head, len, 0);

	if (like)
		return like;
	return bmaptk_looks_like_bmap(head, len) ? "bmap" : NULL;
}

static struct bmaptk_stream *open_image(const struct bmaptk_registry *reg,
					const char *location,
					const struct bmaptk_source_opts *opts,
					struct bmaptk_error *err)
{
	struct bmaptk_stream *s = bmaptk_open_raw(reg, location, opts, err);
	int any = 1; /* any codec may come next, else only a container */

	if (!s)
		return NULL;
	s->format = "raw";
	for (int depth = 0; depth < MAX_CODEC_DEPTH; depth++) {
		const struct bmaptk_module *m;
		struct peek_stream *p;
		struct bmaptk_stream *decoded;
		const char *like;

		if (!any && !have_containers(reg))
			break;
		if (!(p = peek_open(s, err)))
			return NULL;
		m = registry_pick_codec(reg, p->head, p->len);
		if (m && !any && !(m->u.codec->flags & BMAPTK_CODEC_CONTAINER))
			m = NULL;
		like = m ? NULL : looks_like(p->head, p->len, !any);
		if (like) {
			bmaptk_set_error(
			    err, BMAPTK_ERR_USAGE, 0,
			    "no codec for %s (looks like %s); install the "
			    "archive plugin or use --plugin-dir",
			    shown_name(location), like);
			peek_close(&p->base);
			return NULL;
		}
		if (!m && depth == 0 &&
		    bmaptk_looks_like_bmap(p->head, p->len)) {
			bmaptk_set_error(
			    err, BMAPTK_ERR_USAGE, 0,
			    "%s: this is a bmap file, not an image; make sure "
			    "you are writing your image and not the bmap file",
			    shown_name(location));
			peek_close(&p->base);
			return NULL;
		}
		if (!m)
			return &p->base;
		decoded = m->u.codec->open(&p->base, err);
		if (!decoded)
			return NULL;
		if (!decoded->name)
			decoded->name = shown_name(location);
		if (!decoded->format)
			decoded->format =
			    m->u.codec->format ? m->u.codec->format : m->name;
		s = decoded;
		if (m->u.codec->flags & BMAPTK_CODEC_FINAL)
			break;
		any = (m->u.codec->flags & BMAPTK_CODEC_CONTAINER) != 0;
	}
	return s;
}

struct bmaptk_stream *bmaptk_open_image(const struct bmaptk_registry *reg,
					const char *location,
					const struct bmaptk_source_opts *opts,
					struct bmaptk_error *err)
{
	struct bmaptk_stream *s = open_image(reg, location, opts, err);

	if (!s)
		scrub(err, location);
	return s;
}

int bmaptk_read_all(const struct bmaptk_registry *reg, const char *location,
		    const struct bmaptk_source_opts *opts, size_t max,
		    char **data, size_t *len, struct bmaptk_error *err)
{
	struct bmaptk_stream *s = bmaptk_open_raw(reg, location, opts, err);
	size_t cap = 1 << 16, used = 0;
	char *buf = NULL;
	int rc = 0;

	if (!s)
		return err->status;
	for (;;) {
		ssize_t n;
		if (!buf || used == cap) {
			char *grown;
			if (buf)
				cap *= 2;
			grown = realloc(buf, cap + 1);
			if (!grown) {
				rc = bmaptk_set_error(
				    err, BMAPTK_ERR_IO, ENOMEM,
				    "%s: out of memory", shown_name(location));
				break;
			}
			buf = grown;
		}
		n = s->ops->read(s, buf + used, cap - used, err);
		if (n < 0) {
			rc = err->status;
			break;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > max) {
			rc = bmaptk_set_error(err, BMAPTK_ERR_USAGE, EFBIG,
					      "%s: larger than %zu bytes",
					      shown_name(location), max);
			break;
		}
	}
	s->ops->close(s);
	if (rc) {
		scrub(err, location);
		free(buf);
		return rc;
	}
	buf[used] = '\0';
	*data = buf;
	*len = used;
	return 0;
}

static const struct bmaptk_module *sink_named(const struct bmaptk_registry *reg,
					      const char *name)
{
	const struct bmaptk_module *m;

	for (size_t i = 0; (m = bmaptk_registry_get(reg, i, NULL)); i++)
		if (m->kind == BMAPTK_MODULE_SINK && !strcmp(m->name, name))
			return m;
	return NULL;
}

struct bmaptk_sink *bmaptk_open_sink(const struct bmaptk_registry *reg,
				     const char *path, const char *module,
				     const struct bmaptk_sink_opts *opts,
				     struct bmaptk_error *err)
{
	struct stat st;
	const struct bmaptk_module *m;
	int exists = stat(path, &st) == 0;

	if (!exists && errno != ENOENT) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, errno, "%s: %s", path,
				 strerror(errno));
		return NULL;
	}
	m = module ? sink_named(reg, module)
		   : registry_pick_sink(reg, path, exists ? &st : NULL);
	if (!m && module) {
		bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: no sink module named '%s' (see bmaptk plugins)", path,
		    module);
		return NULL;
	}
	if (!m) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s: cannot write to this kind of file (not a "
				 "regular file or block device)",
				 path);
		return NULL;
	}
	return m->u.sink->open(path, opts, err);
}
