/* Fuzz the module descriptor check: bmaptk_registry_add with module
 * structs built from the input, then the registry used with them in it.
 *
 * Each 16-byte record of the input becomes one module: an ABI version
 * (usually the right one), a kind (possibly none of the three), a name,
 * description and version (each possibly NULL), a priority, and an ops
 * table (possibly NULL) whose probe and open are picked from a few
 * harmless stubs or NULL. The registry must accept exactly the well-formed
 * descriptors (right ABI, a name, a known kind with its probe and open)
 * and refuse the others with a message naming the origin; with the
 * accepted ones in it, opening an image, a raw location and a sink must
 * follow the ownership rules of module.h (ASan and LSan watch). */
#include <limits.h>
#include <string.h>

#include "fuzz_common.h"
#include "util.h"

#define RECORD	    16
#define MAX_MODULES 32
#define ORIGIN	    "fuzz-plugin.so"

static const uint8_t *payload;
static size_t payload_len;

/* ---- stubs -----------------------------------------------------------------
 */

static const int bids[] = {0, 1, 7, 100, INT_MAX, -1, INT_MIN, 48};

static int bid_from(const char *s)
{
	return bids[fuzz_hash((const uint8_t *)s, strlen(s)) % 8];
}

static int src_probe_all(const char *location)
{
	return bid_from(location);
}

static int src_probe_none(const char *location)
{
	(void)location;
	return 0;
}

static struct bmaptk_stream *src_open_mem(const char *location,
					  const struct bmaptk_source_opts *o,
					  struct bmaptk_error *err)
{
	static const struct fuzz_mem_opts whole = {.fail_at = UINT64_MAX};

	(void)location;
	(void)o;
	(void)err;
	return fuzz_mem_stream(payload, payload_len, &whole);
}

static struct bmaptk_stream *src_open_fail(const char *location,
					   const struct bmaptk_source_opts *o,
					   struct bmaptk_error *err)
{
	(void)o;
	bmaptk_set_error(err, BMAPTK_ERR_IO, 0, "%s: stub refuses", location);
	return NULL;
}

static int codec_probe_head(const unsigned char *head, size_t len)
{
	return len ? bids[head[0] % 8] : 0;
}

static int codec_probe_none(const unsigned char *head, size_t len)
{
	(void)head;
	(void)len;
	return 0;
}

/* A codec that passes its input through unchanged. */
struct pass {
	struct bmaptk_stream base;
	struct bmaptk_stream *inner;
};

static ssize_t pass_read(struct bmaptk_stream *s, void *buf, size_t len,
			 struct bmaptk_error *err)
{
	struct bmaptk_stream *in = ((struct pass *)s)->inner;

	return in->ops->read(in, buf, len, err);
}

static void pass_close(struct bmaptk_stream *s)
{
	struct bmaptk_stream *in = ((struct pass *)s)->inner;

	in->ops->close(in);
	free(s);
}

static const struct bmaptk_stream_ops pass_ops = {
    .read = pass_read,
    .close = pass_close,
};

static struct bmaptk_stream *codec_open_pass(struct bmaptk_stream *inner,
					     struct bmaptk_error *err)
{
	struct pass *p = calloc(1, sizeof(*p));

	(void)err;
	FUZZ_CHECK(p, "out of memory");
	p->base.ops = &pass_ops;
	p->base.size = inner->size;
	p->inner = inner;
	return &p->base;
}

/* Fails, and so closes what it was given. */
static struct bmaptk_stream *codec_open_fail(struct bmaptk_stream *inner,
					     struct bmaptk_error *err)
{
	bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0, "%s: stub codec refuses",
			 inner->name);
	inner->ops->close(inner);
	return NULL;
}

static int sink_probe_any(const char *path, const struct stat *st)
{
	(void)st;
	return bid_from(path);
}

static struct bmaptk_sink *sink_open_fail(const char *path,
					  const struct bmaptk_sink_opts *o,
					  struct bmaptk_error *err)
{
	(void)o;
	bmaptk_set_error(err, BMAPTK_ERR_IO, 0, "%s: stub sink refuses", path);
	return NULL;
}

typedef struct bmaptk_stream *(*src_open_fn)(const char *,
					     const struct bmaptk_source_opts *,
					     struct bmaptk_error *);
typedef struct bmaptk_stream *(*codec_open_fn)(struct bmaptk_stream *,
					       struct bmaptk_error *);

static int (*const src_probes[])(const char *) = {src_probe_all, src_probe_none,
						  NULL};
static const src_open_fn src_opens[] = {src_open_mem, src_open_fail, NULL};
static int (*const codec_probes[])(const unsigned char *, size_t) = {
    codec_probe_head, codec_probe_none, NULL};
static const codec_open_fn codec_opens[] = {codec_open_pass, codec_open_fail,
					    NULL};

/* ---- descriptors from bytes
 * -------------------------------------------------- */

static const char *const names[] = {"file", "gzip", "fuzz", "", "x"};

struct built {
	struct bmaptk_module m;
	union {
		struct bmaptk_source_module source;
		struct bmaptk_codec_module codec;
		struct bmaptk_sink_module sink;
	} ops;
};

static int32_t le32s(const uint8_t *p)
{
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 |
			 (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

static const char *pick_name(uint8_t b)
{
	return b < 40 ? NULL : names[b % 5];
}

static void build(const uint8_t *r, struct built *out)
{
	struct bmaptk_module *m = &out->m;

	memset(out, 0, sizeof(*out));
	m->abi_version = r[0] < 200 ? BMAPTK_ABI_VERSION : le32s(r + 1);
	m->kind = (enum bmaptk_module_kind)(r[5] % 5);
	m->name = pick_name(r[6]);
	m->description = pick_name(r[7]);
	m->version = pick_name(r[8]);
	m->priority = le32s(r + 9);
	out->ops.source.probe = src_probes[r[13] % 3];
	out->ops.source.open = src_opens[(r[13] / 3) % 3];
	if (m->kind == BMAPTK_MODULE_CODEC) {
		out->ops.codec.probe = codec_probes[r[13] % 3];
		out->ops.codec.open = codec_opens[(r[13] / 3) % 3];
		out->ops.codec.flags = r[14] & 1;
		out->ops.codec.format = pick_name(r[14]);
	} else if (m->kind == BMAPTK_MODULE_SINK) {
		out->ops.sink.probe = r[13] % 3 ? sink_probe_any : NULL;
		out->ops.sink.open = (r[13] / 3) % 3 ? sink_open_fail : NULL;
	}
	/* The union of pointers to ops: all alias the same table. */
	m->u.source = r[15] % 8 ? &out->ops.source : NULL;
}

static int well_formed(const struct built *b)
{
	const struct bmaptk_module *m = &b->m;

	if (m->abi_version != BMAPTK_ABI_VERSION || !m->name || !m->u.source)
		return 0;
	switch (m->kind) {
	case BMAPTK_MODULE_SOURCE:
		return b->ops.source.probe && b->ops.source.open;
	case BMAPTK_MODULE_CODEC:
		return b->ops.codec.probe && b->ops.codec.open;
	case BMAPTK_MODULE_SINK:
		return b->ops.sink.probe && b->ops.sink.open;
	default:
		return 0;
	}
}

/* ---- using the registry ---------------------------------------------------
 */

static void use(const struct bmaptk_registry *reg, const char *location)
{
	struct bmaptk_error err = {0};
	struct bmaptk_stream *s;
	struct bmaptk_sink *k;
	struct bmaptk_sink_opts so = {.image_size = 4096};

	s = bmaptk_open_image(reg, location, NULL, &err);
	if (s)
		fuzz_drain(s, payload_len, &err);
	else
		fuzz_check_error(&err, "open image");
	memset(&err, 0, sizeof(err));
	s = bmaptk_open_raw(reg, location, NULL, &err);
	if (s)
		s->ops->close(s);
	else
		fuzz_check_error(&err, "open raw");
	/* A path that cannot exist: only a stub sink may take it, and every
	 * stub sink refuses to open. */
	memset(&err, 0, sizeof(err));
	k = bmaptk_open_sink(reg, "/nonexistent-fuzz-dir/out.img", NULL, &so,
			     &err);
	FUZZ_CHECK(!k, "a sink opened a path that cannot exist");
	fuzz_check_error(&err, "open sink");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct built *mods = calloc(MAX_MODULES, sizeof(*mods));
	struct bmaptk_registry *reg = bmaptk_registry_new();
	size_t n = MIN(len / RECORD, MAX_MODULES), before, added = 0;

	FUZZ_CHECK(mods && reg, "out of memory");
	before = bmaptk_registry_count(reg);
	for (size_t i = 0; i < n; i++) {
		struct bmaptk_error err = {0};
		int rc;

		build(data + i * RECORD, &mods[i]);
		rc = bmaptk_registry_add(reg, &mods[i].m, ORIGIN, &err);
		FUZZ_CHECK((rc == 0) == well_formed(&mods[i]),
			   "module %zu: add returned %d (%s)", i, rc,
			   err.message);
		if (rc) {
			fuzz_check_error(&err, "registry_add");
			FUZZ_CHECK(strstr(err.message, ORIGIN),
				   "message does not name the plugin: %s",
				   err.message);
		} else {
			added++;
		}
	}
	FUZZ_CHECK(bmaptk_registry_count(reg) == before + added, "count");
	for (size_t i = 0; i < added; i++) {
		const char *origin = NULL;
		FUZZ_CHECK(bmaptk_registry_get(reg, before + i, &origin) &&
			       !strcmp(origin, ORIGIN),
			   "module %zu lost", i);
	}
	FUZZ_CHECK(!bmaptk_registry_get(reg, before + added, NULL), "extra");
	payload = data + n * RECORD;
	payload_len = len - n * RECORD;
	use(reg, "fuzz://image");
	use(reg, "/nonexistent-fuzz-dir/image.img");
	bmaptk_registry_free(reg);
	free(mods);
	return 0;
}
