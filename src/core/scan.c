/* The scan runs as a sink behind the copy pipeline, so decoding and
 * scanning overlap and memory stays the pipeline's. The sink sees the
 * image's bytes in order; an offset that jumps is a hole the stream
 * skipped. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mapper.h"
#include "scan.h"
#include "util.h"

#define SCAN_BLOCK 4096u

struct scan_sink {
	struct bmaptk_sink base;
	int detect_zeros;
	struct bmaptk_hasher *hasher; /* NULL: no checksums */
	struct block_ranges runs;
	int in_range;
	uint64_t expect;		 /* offset the next byte should have */
	unsigned char carry[SCAN_BLOCK]; /* a block split across writes */
	size_t carry_len;
};

static void end_range(struct scan_sink *s)
{
	if (!s->in_range)
		return;
	if (s->hasher)
		bmaptk_hasher_final(s->hasher, s->runs.v[s->runs.n - 1].digest);
	s->in_range = 0;
}

static int data_block(struct scan_sink *s, const unsigned char *p, size_t len,
		      uint64_t block)
{
	if (s->detect_zeros && all_zero(p, len)) {
		end_range(s);
		return 0;
	}
	if (!s->in_range) {
		struct bmaptk_range *grown;
		if (s->runs.n == s->runs.cap) {
			size_t cap = s->runs.cap ? 2 * s->runs.cap : 64;
			grown = realloc(s->runs.v, cap * sizeof(*grown));
			if (!grown)
				return -1;
			s->runs.v = grown;
			s->runs.cap = cap;
		}
		memset(&s->runs.v[s->runs.n], 0, sizeof(*grown));
		s->runs.v[s->runs.n++].first = block;
		s->in_range = 1;
	}
	s->runs.v[s->runs.n - 1].last = block;
	if (s->hasher)
		bmaptk_hasher_update(s->hasher, p, len);
	return 0;
}

static int oom(struct bmaptk_sink *s, struct bmaptk_error *err)
{
	return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM, "%s: out of memory",
				s->name);
}

static int scan_pwrite(struct bmaptk_sink *sink, const void *buf, size_t len,
		       uint64_t off, struct bmaptk_error *err)
{
	struct scan_sink *s = (struct scan_sink *)sink;
	const unsigned char *p = buf;

	if (off > s->expect) {
		/* Holes start on block boundaries; a partial block before
		 * one is data that ends early. */
		if (s->carry_len &&
		    data_block(s, s->carry, s->carry_len,
			       (s->expect - s->carry_len) / SCAN_BLOCK))
			return oom(sink, err);
		s->carry_len = 0;
		end_range(s);
	}
	s->expect = off + len;
	while (len > 0) {
		uint64_t at = off - s->carry_len;
		if (s->carry_len || len < SCAN_BLOCK) {
			size_t n = MIN(len, SCAN_BLOCK - s->carry_len);
			memcpy(s->carry + s->carry_len, p, n);
			s->carry_len += n;
			p += n, off += n, len -= n;
			if (s->carry_len < SCAN_BLOCK)
				break;
			if (data_block(s, s->carry, SCAN_BLOCK,
				       at / SCAN_BLOCK))
				return oom(sink, err);
			s->carry_len = 0;
			continue;
		}
		if (data_block(s, p, SCAN_BLOCK, off / SCAN_BLOCK))
			return oom(sink, err);
		p += SCAN_BLOCK, off += SCAN_BLOCK, len -= SCAN_BLOCK;
	}
	return 0;
}

/* The image's last block may be partial. */
static int scan_finish(struct bmaptk_sink *sink, uint64_t image_size,
		       struct bmaptk_error *err)
{
	struct scan_sink *s = (struct scan_sink *)sink;

	(void)image_size;
	if (s->carry_len && data_block(s, s->carry, s->carry_len,
				       (s->expect - s->carry_len) / SCAN_BLOCK))
		return oom(sink, err);
	s->carry_len = 0;
	end_range(s);
	return 0;
}

static int scan_close(struct bmaptk_sink *sink, int failed)
{
	struct scan_sink *s = (struct scan_sink *)sink;

	(void)failed;
	bmaptk_hasher_free(s->hasher);
	free(s->runs.v);
	free(s);
	return 0;
}

static const struct bmaptk_sink_ops scan_ops = {
    .pwrite = scan_pwrite,
    .finish = scan_finish,
    .close = scan_close,
};

int create_from_stream(struct bmaptk_stream *image,
		       const struct bmaptk_create_opts *opts,
		       struct bmaptk_bmap **out, struct bmaptk_error *err)
{
	struct scan_sink *s = calloc(1, sizeof(*s));
	struct bmaptk_sink *sink = &s->base;
	struct bmaptk_copy_opts co = {.progress = opts->progress,
				      .interrupted = opts->interrupted};
	struct bmaptk_copy_stats st = {0};
	struct bmaptk_bmap *b = calloc(1, sizeof(*b));
	int rc;

	*out = NULL;
	if (!s || !b ||
	    (!opts->no_checksum &&
	     !(s->hasher = bmaptk_hasher_new(BMAPTK_HASH_SHA256)))) {
		free(b);
		if (s)
			scan_close(&s->base, 1);
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory", image->name);
	}
	s->base.ops = &scan_ops;
	s->base.name = image->name;
	s->detect_zeros = opts->scan_zeros;
	rc = bmaptk_copy(image, &sink, 1, &co, &st, err);
	if (!rc)
		rc = scan_finish(sink, st.image_size, err);
	if (!rc) {
		b->major = 2;
		b->image_size = st.image_size;
		b->block_size = SCAN_BLOCK;
		b->blocks_count = (st.image_size + SCAN_BLOCK - 1) / SCAN_BLOCK;
		b->hash_type = BMAPTK_HASH_SHA256;
		b->range_digests = !opts->no_checksum;
		b->ranges = s->runs.v;
		b->nranges = s->runs.n;
		s->runs.v = NULL;
		for (size_t i = 0; i < b->nranges; i++)
			b->mapped_blocks_count +=
			    b->ranges[i].last - b->ranges[i].first + 1;
		*out = b;
		b = NULL;
	}
	free(b);
	scan_close(sink, rc);
	return rc;
}
