/* The in-memory source and the stream drainer shared by the harnesses.
 * The source is a module like any plugin's, so the codecs meet it through
 * the same ABI they meet a file or a URL through; it can also hand out
 * short reads and fail on purpose, which real files rarely do. */
#include <errno.h>
#include <string.h>

#include "fuzz_common.h"
#include "util.h"

uint64_t fuzz_hash(const uint8_t *data, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= data[i];
		h *= 0x100000001b3ull;
	}
	/* Mix, so the low bits used for choices depend on every byte. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

void fuzz_mem_opts_from(uint64_t h, size_t len, struct fuzz_mem_opts *o)
{
	o->read_mode = (unsigned)(h % 3);
	o->with_skip = (h >> 2) & 1;
	o->known_size = (h >> 3) & 1;
	/* One input in eight meets a read error somewhere. */
	o->fail_at =
	    ((h >> 4) & 7) == 0 ? (h >> 8) % ((uint64_t)len + 1) : UINT64_MAX;
}

struct mem_stream {
	struct bmaptk_stream base;
	const uint8_t *data;
	size_t len, pos;
	struct fuzz_mem_opts o;
	unsigned step;
};

static ssize_t mem_read(struct bmaptk_stream *s, void *buf, size_t len,
			struct bmaptk_error *err)
{
	struct mem_stream *m = (struct mem_stream *)s;
	size_t n = MIN(len, m->len - m->pos);

	if (m->pos >= m->o.fail_at)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, EIO,
					"%s: injected read error at offset %zu",
					s->name, m->pos),
		       -1;
	if (m->o.fail_at - m->pos < n)
		n = (size_t)(m->o.fail_at - m->pos);
	if (m->o.read_mode == 1)
		n = MIN(n, 1);
	else if (m->o.read_mode == 2)
		n = MIN(n, 1 + (m->step * 7919u) % 1021u);
	m->step++;
	memcpy(buf, m->data + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

static int mem_skip(struct bmaptk_stream *s, uint64_t n,
		    struct bmaptk_error *err)
{
	struct mem_stream *m = (struct mem_stream *)s;

	if (n > m->len - m->pos)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: skipping past the end", s->name);
	m->pos += (size_t)n;
	return 0;
}

static void mem_close(struct bmaptk_stream *s)
{
	free(s);
}

static const struct bmaptk_stream_ops mem_ops = {
    .read = mem_read,
    .close = mem_close,
};

static const struct bmaptk_stream_ops mem_ops_skip = {
    .read = mem_read,
    .skip = mem_skip,
    .close = mem_close,
};

struct bmaptk_stream *fuzz_mem_stream(const uint8_t *data, size_t len,
				      const struct fuzz_mem_opts *o)
{
	struct mem_stream *m = calloc(1, sizeof(*m));

	FUZZ_CHECK(m, "out of memory");
	m->base.ops = o->with_skip ? &mem_ops_skip : &mem_ops;
	m->base.name = FUZZ_MEM_LOCATION;
	m->base.size = o->known_size ? len : BMAPTK_SIZE_UNKNOWN;
	m->data = data;
	m->len = len;
	m->o = *o;
	return &m->base;
}

static struct {
	const uint8_t *data;
	size_t len;
	struct fuzz_mem_opts o;
} next_input;

void fuzz_mem_set(const uint8_t *data, size_t len,
		  const struct fuzz_mem_opts *o)
{
	next_input.data = data;
	next_input.len = len;
	next_input.o = *o;
}

static int mem_probe(const char *location)
{
	return !strcmp(location, FUZZ_MEM_LOCATION);
}

static struct bmaptk_stream *mem_open(const char *location,
				      const struct bmaptk_source_opts *opts,
				      struct bmaptk_error *err)
{
	(void)location;
	(void)opts;
	(void)err;
	return fuzz_mem_stream(next_input.data, next_input.len, &next_input.o);
}

static const struct bmaptk_source_module mem_source = {
    .probe = mem_probe,
    .open = mem_open,
};

const struct bmaptk_module fuzz_mem_source = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_SOURCE,
    .name = "fuzzmem",
    .description = "fuzz input in memory",
    .version = "1",
    .priority = 1000,
    .u.source = &mem_source,
};

struct bmaptk_registry *fuzz_registry(void)
{
	struct bmaptk_registry *reg = bmaptk_registry_new();
	struct bmaptk_error err = {0};

	FUZZ_CHECK(reg, "bmaptk_registry_new failed");
	FUZZ_CHECK(!bmaptk_registry_add(reg, &fuzz_mem_source, "fuzz", &err),
		   "%s", err.message);
	return reg;
}

void fuzz_check_error(const struct bmaptk_error *err, const char *what)
{
	FUZZ_CHECK(err->status == BMAPTK_ERR_VERIFY ||
		       err->status == BMAPTK_ERR_USAGE ||
		       err->status == BMAPTK_ERR_IO,
		   "%s failed with status %d", what, err->status);
	FUZZ_CHECK(memchr(err->message, '\0', sizeof(err->message)),
		   "%s: message not terminated", what);
	FUZZ_CHECK(err->message[0], "%s failed without a message", what);
}

static void reset_error(struct bmaptk_error *err)
{
	err->status = 0;
	err->sys_errno = 0;
	err->message[0] = '\0';
}

/* Read sizes: a large buffer like the copy engine's, a page, or sizes
 * that wander, so codecs meet every kind of boundary. */
static size_t read_size(unsigned mode, uint64_t h, unsigned step)
{
	switch (mode) {
	case 0:
		return 1u << 20;
	case 1:
		return 4096;
	default:
		return 1 + (size_t)((h + step * 2654435761u) % 4099u);
	}
}

/* mode 3 also skips now and then, as the copy engine does over holes. */
static int maybe_skip(struct bmaptk_stream *s, unsigned mode, uint64_t h,
		      unsigned step, uint64_t *total, struct bmaptk_error *err)
{
	uint64_t n;

	if (mode != 3 || step % 3 != 2)
		return 0;
	n = 1 + (h ^ step * 40503u) % 70000u;
	n = MIN(n, FUZZ_OUTPUT_CAP - *total);
	reset_error(err);
	if (stream_skip(s, n, err)) {
		fuzz_check_error(err, "skip");
		return -1;
	}
	*total += n;
	return 0;
}

int fuzz_drain(struct bmaptk_stream *s, uint64_t h, struct bmaptk_error *err)
{
	static unsigned char *buf;
	const unsigned mode = h & 3;
	const uint64_t size = s->size;
	uint64_t total = 0;
	unsigned step = 0;
	int rc = 1;
	ssize_t n;

	if (!buf)
		buf = malloc(1u << 20);
	FUZZ_CHECK(buf, "out of memory");
	h >>= 2;
	while (total < FUZZ_OUTPUT_CAP) {
		uint64_t hole = s->ops->hole ? s->ops->hole(s) : 0;
		size_t want;

		if (hole) {
			hole = MIN(hole, FUZZ_OUTPUT_CAP - total);
			reset_error(err);
			if (stream_skip(s, hole, err)) {
				fuzz_check_error(err, "skip over a hole");
				rc = -1;
				break;
			}
			total += hole;
			continue;
		}
		if (maybe_skip(s, mode, h, step, &total, err)) {
			rc = -1;
			break;
		}
		want = read_size(mode, h, step++);
		want = MIN(want, FUZZ_OUTPUT_CAP - total);
		if (!want)
			break;
		reset_error(err);
		n = s->ops->read(s, buf, want, err);
		FUZZ_CHECK(n >= -1 && n <= (ssize_t)want,
			   "read(%zu) returned %zd", want, n);
		if (n < 0) {
			fuzz_check_error(err, "read");
			rc = -1;
			break;
		}
		if (n == 0) {
			rc = 0;
			break;
		}
		total += (uint64_t)n;
	}
	if (rc == 0) {
		FUZZ_CHECK(size == BMAPTK_SIZE_UNKNOWN || size == total,
			   "stream said %llu bytes, gave %llu",
			   (unsigned long long)size, (unsigned long long)total);
		/* The end stays the end. */
		reset_error(err);
		n = s->ops->read(s, buf, 4096, err);
		FUZZ_CHECK(n <= 0, "read after the end returned %zd", n);
	}
	s->ops->close(s);
	return rc;
}

/* ---- accepted bmaps ------------------------------------------------------ */

static void check_accepted(const struct bmaptk_bmap *b)
{
	uint64_t sum = 0, off, len, mapped = 0;

	FUZZ_CHECK(b->major >= 1 && b->major <= 2, "version %u", b->major);
	FUZZ_CHECK(b->block_size && !(b->block_size & (b->block_size - 1)),
		   "block size %u", b->block_size);
	FUZZ_CHECK(b->blocks_count ==
		       (b->image_size + b->block_size - 1) / b->block_size,
		   "blocks count");
	FUZZ_CHECK(bmaptk_hash_size(b->hash_type), "no hash type");
	for (size_t i = 0; i < b->nranges; i++) {
		const struct bmaptk_range *r = &b->ranges[i];
		FUZZ_CHECK(r->first <= r->last, "range %zu reversed", i);
		FUZZ_CHECK(r->last < b->blocks_count, "range %zu outside", i);
		FUZZ_CHECK(!i || r->first > b->ranges[i - 1].last,
			   "range %zu overlaps or out of order", i);
		bmaptk_range_span(b, r, &off, &len);
		FUZZ_CHECK(len && off + len <= b->image_size,
			   "range %zu spans [%llu, +%llu) of %llu", i,
			   (unsigned long long)off, (unsigned long long)len,
			   (unsigned long long)b->image_size);
		sum += r->last - r->first + 1;
		mapped += len;
	}
	FUZZ_CHECK(sum == b->mapped_blocks_count, "mapped blocks count");
	FUZZ_CHECK(bmaptk_bmap_mapped_bytes(b) == mapped, "mapped bytes");
}

/* What bmaptk writes must read back as the same map. */
static void check_round_trip(const struct bmaptk_bmap *b)
{
	struct bmaptk_error err = {0};
	struct bmaptk_bmap *again;
	size_t len;
	char *doc = bmaptk_bmap_format(b, &len);
	int rc;

	FUZZ_CHECK(doc, "bmaptk_bmap_format failed");
	rc = bmaptk_bmap_parse(doc, len, "round-trip", &again, &err);
	FUZZ_CHECK(!rc, "formatted bmap refused: %s", err.message);
	FUZZ_CHECK(again->major == 2 && again->minor == 0, "version");
	FUZZ_CHECK(again->image_size == b->image_size &&
		       again->block_size == b->block_size &&
		       again->blocks_count == b->blocks_count &&
		       again->mapped_blocks_count == b->mapped_blocks_count &&
		       again->hash_type == b->hash_type &&
		       again->range_digests == b->range_digests &&
		       again->nranges == b->nranges,
		   "header fields changed");
	for (size_t i = 0; i < b->nranges; i++)
		FUZZ_CHECK(!memcmp(&again->ranges[i], &b->ranges[i],
				   sizeof(b->ranges[i])),
			   "range %zu changed", i);
	bmaptk_bmap_free(again);
	free(doc);
}

void fuzz_check_bmap(const struct bmaptk_bmap *b)
{
	check_accepted(b);
	check_round_trip(b);
}
