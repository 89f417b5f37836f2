/* Android sparse image ("simg") destinations, as fastboot flashes them and
 * simg2img expands them: a 28-byte file header, then chunks of 4096-byte
 * blocks: RAW (the data), FILL (one 32-bit value repeated), DONT_CARE (a
 * hole) and, for the "simg-crc" module, a final CRC32 chunk.
 *
 * The pipeline writes in increasing order, so the chunks are built as the
 * data arrives; the gaps between writes are holes and become DONT_CARE.
 * Output goes through one buffer of a few MiB: a RAW chunk never spans two
 * flushes, so its header is patched in memory once its length is known.
 * The file header, which needs the final counts, is written last, into the
 * 28 bytes reserved at the start. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <bmaptk/module.h>

#include "sink_util.h"
#include "util.h"

#define SIMG_MAGIC	0xed26ff3au
#define BLK		4096u
#define FILE_HDR	28u
#define CHUNK_HDR	12u
#define CHUNK_RAW	0xcac1
#define CHUNK_FILL	0xcac2
#define CHUNK_DONT_CARE 0xcac3
#define CHUNK_CRC32	0xcac4
#define CHUNK_NONE	0
#define OUT_BUF		(4u << 20)
/* total_blks is 32 bits: 16 TiB minus a block. */
#define MAX_BLOCKS UINT32_MAX

struct simg_sink {
	struct bmaptk_sink base;
	int fd;
	int with_crc;
	uint32_t crc; /* of the expanded image so far, holes as zeros */

	unsigned char *buf; /* output not yet written */
	size_t used;
	uint64_t buf_off; /* file offset of buf[0] */

	uint64_t pos; /* image bytes handled, holes included */
	/* A block the writes have only partly covered; the rest is zeros. */
	unsigned char carry[BLK];
	size_t carry_len;
	int carry_data; /* it holds written bytes, not only a hole */

	unsigned type; /* of the open chunk, CHUNK_NONE if none */
	uint32_t blocks;
	unsigned char fill[4];
	size_t hdr_at; /* the open RAW chunk's header, in buf */

	uint32_t chunks;       /* closed so far */
	uint64_t blocks_total; /* in closed and open chunks */
	int finished;
};

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void chunk_header(unsigned char *p, unsigned type, uint32_t blocks,
			 uint32_t total)
{
	put16(p, (uint16_t)type);
	put16(p + 2, 0);
	put32(p + 4, blocks);
	put32(p + 8, total);
}

static int write_error(struct simg_sink *s, uint64_t off,
		       struct bmaptk_error *err)
{
	return bmaptk_set_error(
	    err, BMAPTK_ERR_IO, errno, "%s: write error at offset %llu: %s",
	    s->base.name, (unsigned long long)off, strerror(errno));
}

static int flush(struct simg_sink *s, struct bmaptk_error *err)
{
	if (s->used && pwrite_full(s->fd, s->buf, s->used, s->buf_off))
		return write_error(s, s->buf_off, err);
	s->buf_off += s->used;
	s->used = 0;
	return 0;
}

/* Room for n more bytes; only called with no RAW chunk open. */
static int reserve(struct simg_sink *s, size_t n, struct bmaptk_error *err)
{
	return OUT_BUF - s->used < n ? flush(s, err) : 0;
}

static int close_chunk(struct simg_sink *s, struct bmaptk_error *err)
{
	unsigned type = s->type;
	int rc = 0;

	s->type = CHUNK_NONE;
	if (type == CHUNK_RAW) {
		chunk_header(s->buf + s->hdr_at, CHUNK_RAW, s->blocks,
			     CHUNK_HDR + s->blocks * BLK);
	} else if (type == CHUNK_FILL &&
		   !(rc = reserve(s, CHUNK_HDR + 4, err))) {
		chunk_header(s->buf + s->used, CHUNK_FILL, s->blocks,
			     CHUNK_HDR + 4);
		memcpy(s->buf + s->used + CHUNK_HDR, s->fill, 4);
		s->used += CHUNK_HDR + 4;
	} else if (type == CHUNK_DONT_CARE &&
		   !(rc = reserve(s, CHUNK_HDR, err))) {
		chunk_header(s->buf + s->used, CHUNK_DONT_CARE, s->blocks,
			     CHUNK_HDR);
		s->used += CHUNK_HDR;
	}
	if (type != CHUNK_NONE && !rc)
		s->chunks++;
	s->blocks = 0;
	return rc;
}

/* CRC-32 of n zero blocks appended to crc, in O(log n) combines: a hole of
 * terabytes must not be hashed byte by byte. */
static uint32_t crc_zero_blocks(uint32_t crc, uint64_t n)
{
	static const unsigned char zeros[BLK];
	uLong part = crc32_z(0, zeros, BLK);
	uint64_t len = BLK;

	for (; n; n >>= 1, len *= 2) {
		if (n & 1)
			crc = (uint32_t)crc32_combine(crc, part, (z_off_t)len);
		if (n > 1)
			part = crc32_combine(part, part, (z_off_t)len);
	}
	return crc;
}

static int hole_blocks(struct simg_sink *s, uint64_t n,
		       struct bmaptk_error *err)
{
	int rc;

	if (!n)
		return 0;
	if (s->type != CHUNK_DONT_CARE) {
		if ((rc = close_chunk(s, err)))
			return rc;
		s->type = CHUNK_DONT_CARE;
	}
	/* The image size limit keeps this within a chunk's 32 bits. */
	s->blocks += (uint32_t)n;
	s->blocks_total += n;
	if (s->with_crc)
		s->crc = crc_zero_blocks(s->crc, n);
	return 0;
}

static int fill_block(struct simg_sink *s, const unsigned char *p,
		      struct bmaptk_error *err)
{
	int rc;

	if (s->type != CHUNK_FILL || memcmp(s->fill, p, 4)) {
		if ((rc = close_chunk(s, err)))
			return rc;
		s->type = CHUNK_FILL;
		memcpy(s->fill, p, 4);
	}
	s->blocks++;
	s->blocks_total++;
	if (s->with_crc)
		s->crc = (uint32_t)crc32_z(s->crc, p, BLK);
	return 0;
}

static int raw_blocks(struct simg_sink *s, const unsigned char *p, size_t n,
		      struct bmaptk_error *err)
{
	int rc;

	while (n > 0) {
		size_t room =
		    s->type == CHUNK_RAW ? (OUT_BUF - s->used) / BLK : 0;
		size_t k = MIN(n, room);
		if (!k) {
			/* The buffer is full or another chunk is open:
			 * start a RAW chunk in a buffer with room. */
			if ((rc = close_chunk(s, err)) ||
			    (rc = reserve(s, CHUNK_HDR + BLK, err)))
				return rc;
			s->type = CHUNK_RAW;
			s->hdr_at = s->used;
			s->used += CHUNK_HDR;
			continue;
		}
		memcpy(s->buf + s->used, p, k * BLK);
		if (s->with_crc)
			s->crc = (uint32_t)crc32_z(s->crc, p, k * BLK);
		s->used += k * BLK;
		s->blocks += (uint32_t)k;
		s->blocks_total += k;
		p += k * BLK;
		n -= k;
	}
	return 0;
}

/* A block is a FILL when all its 32-bit words are equal, that is when it
 * equals itself shifted by one word; memcmp stops at the first difference,
 * so ordinary data costs a few bytes of comparing. */
static int is_fill(const unsigned char *p)
{
	return !memcmp(p, p + 4, BLK - 4);
}

/* len whole blocks of written data: runs of non-fill blocks go out as RAW,
 * the rest as FILL chunks (merged while the value stays the same). */
static int data_blocks(struct simg_sink *s, const unsigned char *p, size_t len,
		       struct bmaptk_error *err)
{
	const unsigned char *run = p, *end = p + len;
	int rc;

	for (; p < end; p += BLK) {
		if (!is_fill(p))
			continue;
		if ((p > run &&
		     (rc = raw_blocks(s, run, (size_t)(p - run) / BLK, err))) ||
		    (rc = fill_block(s, p, err)))
			return rc;
		run = p + BLK;
	}
	return end > run ? raw_blocks(s, run, (size_t)(end - run) / BLK, err)
			 : 0;
}

/* The partial block is complete: it goes out as data, or as a hole if no
 * write touched it. */
static int emit_carry(struct simg_sink *s, struct bmaptk_error *err)
{
	int rc = s->carry_data ? data_blocks(s, s->carry, BLK, err)
			       : hole_blocks(s, 1, err);

	s->carry_len = 0;
	s->carry_data = 0;
	return rc;
}

static void start_carry(struct simg_sink *s, size_t len)
{
	memset(s->carry, 0, sizeof(s->carry));
	s->carry_len = len;
	s->carry_data = 0;
}

/* Image bytes [pos, to) are a hole. Invariant: pos - carry_len is on a
 * block boundary. */
static int gap(struct simg_sink *s, uint64_t to, struct bmaptk_error *err)
{
	uint64_t n;
	int rc;

	if (s->carry_len) {
		uint64_t end = s->pos - s->carry_len + BLK;
		uint64_t upto = MIN(to, end);
		s->carry_len += (size_t)(upto - s->pos);
		s->pos = upto;
		if (s->carry_len == BLK && (rc = emit_carry(s, err)))
			return rc;
		if (s->pos == to)
			return 0;
	}
	n = (to - s->pos) / BLK;
	if ((rc = hole_blocks(s, n, err)))
		return rc;
	s->pos += n * BLK;
	if (to > s->pos)
		start_carry(s, (size_t)(to - s->pos));
	s->pos = to;
	return 0;
}

static int feed(struct simg_sink *s, const unsigned char *p, size_t len,
		struct bmaptk_error *err)
{
	size_t whole;
	int rc;

	if (s->carry_len) {
		size_t n = MIN(len, BLK - s->carry_len);
		memcpy(s->carry + s->carry_len, p, n);
		s->carry_len += n;
		s->carry_data = 1;
		s->pos += n;
		p += n;
		len -= n;
		if (s->carry_len < BLK)
			return 0;
		if ((rc = emit_carry(s, err)))
			return rc;
	}
	whole = len / BLK * BLK;
	if (whole && (rc = data_blocks(s, p, whole, err)))
		return rc;
	s->pos += whole;
	if (len > whole) {
		start_carry(s, len - whole);
		memcpy(s->carry, p + whole, len - whole);
		s->carry_data = 1;
		s->pos += len - whole;
	}
	return 0;
}

static int too_large(const char *name, uint64_t size, struct bmaptk_error *err)
{
	return bmaptk_set_error(
	    err, BMAPTK_ERR_USAGE, EFBIG,
	    "%s: an image of %llu bytes is too large for an Android sparse "
	    "image (at most %llu blocks of %u bytes)",
	    name, (unsigned long long)size, (unsigned long long)MAX_BLOCKS,
	    BLK);
}

/* A sparse image is a stream of chunks: what is written cannot be
 * rewritten (as copy --check would after a bad read-back). */
static int one_pass(struct simg_sink *s, uint64_t off, struct bmaptk_error *err)
{
	return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				"%s: an Android sparse image is written in one "
				"pass; cannot write at offset %llu again",
				s->base.name, (unsigned long long)off);
}

static int simg_pwrite(struct bmaptk_sink *sink, const void *buf, size_t len,
		       uint64_t off, struct bmaptk_error *err)
{
	struct simg_sink *s = (struct simg_sink *)sink;
	int rc;

	if (s->finished || off < s->pos)
		return one_pass(s, off, err);
	if (off + len > (uint64_t)MAX_BLOCKS * BLK)
		return too_large(sink->name, off + len, err);
	if (off > s->pos && (rc = gap(s, off, err)))
		return rc;
	return feed(s, buf, len, err);
}

static int write_file_header(struct simg_sink *s, uint64_t image_size,
			     struct bmaptk_error *err)
{
	unsigned char h[FILE_HDR];

	put32(h, SIMG_MAGIC);
	put16(h + 4, 1); /* major version */
	put16(h + 6, 0);
	put16(h + 8, FILE_HDR);
	put16(h + 10, CHUNK_HDR);
	put32(h + 12, BLK);
	put32(h + 16, (uint32_t)((image_size + BLK - 1) / BLK));
	put32(h + 20, s->chunks);
	put32(h + 24, s->with_crc ? s->crc : 0);
	if (pwrite_full(s->fd, h, sizeof(h), 0))
		return write_error(s, 0, err);
	return 0;
}

static int add_crc_chunk(struct simg_sink *s, struct bmaptk_error *err)
{
	int rc = reserve(s, CHUNK_HDR + 4, err);

	if (rc)
		return rc;
	chunk_header(s->buf + s->used, CHUNK_CRC32, 0, CHUNK_HDR + 4);
	put32(s->buf + s->used + CHUNK_HDR, s->crc);
	s->used += CHUNK_HDR + 4;
	s->chunks++;
	return 0;
}

/* A sparse image holds whole blocks only: an image size that is not a
 * multiple of 4096 has its last block padded with zeros, so simg2img gives
 * the image rounded up to the block. */
static int simg_finish(struct bmaptk_sink *sink, uint64_t image_size,
		       struct bmaptk_error *err)
{
	struct simg_sink *s = (struct simg_sink *)sink;
	int rc;

	if (s->finished)
		return image_size == s->pos ? 0 : one_pass(s, 0, err);
	if (image_size < s->pos)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, 0,
					"%s: %llu bytes were written, more "
					"than the image size of %llu bytes",
					sink->name, (unsigned long long)s->pos,
					(unsigned long long)image_size);
	if (image_size > (uint64_t)MAX_BLOCKS * BLK)
		return too_large(sink->name, image_size, err);
	if ((image_size > s->pos && (rc = gap(s, image_size, err))) ||
	    (s->carry_len && (rc = emit_carry(s, err))) ||
	    (rc = close_chunk(s, err)) ||
	    (s->with_crc && (rc = add_crc_chunk(s, err))) ||
	    (rc = flush(s, err)))
		return rc;
	if (s->blocks_total != (image_size + BLK - 1) / BLK)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, 0,
					"%s: internal error: %llu blocks in "
					"the chunks for an image of %llu bytes",
					sink->name,
					(unsigned long long)s->blocks_total,
					(unsigned long long)image_size);
	if ((rc = write_file_header(s, image_size, err)))
		return rc;
	/* An older, longer file in its place must not leave a tail. */
	if (ftruncate(s->fd, (off_t)s->buf_off) < 0)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_IO, errno,
		    "%s: cannot set the size to %llu bytes: %s", sink->name,
		    (unsigned long long)s->buf_off, strerror(errno));
	if ((rc = sink_fsync(s->fd, sink->name, err)))
		return rc;
	s->finished = 1;
	return 0;
}

static int simg_close(struct bmaptk_sink *sink, int failed)
{
	struct simg_sink *s = (struct simg_sink *)sink;
	int removed = 0;

	if (s->fd >= 0)
		close(s->fd);
	/* Only what we created is ours to remove. */
	if (failed && sink->created && unlink(sink->name) == 0)
		removed = 1;
	free(s->buf);
	free(s);
	return removed;
}

/* No pread, discard or zeroout: a sparse image is not a medium to read
 * back or clear; its holes are DONT_CARE chunks already. */
static const struct bmaptk_sink_ops simg_ops = {
    .pwrite = simg_pwrite,
    .finish = simg_finish,
    .close = simg_close,
};

/* Open path for writing, creating it if missing; O_EXCL makes "we created
 * it" certain, so a failure never removes a file someone else made. An
 * existing file is not cut here: its bytes stay until the first flush. */
static int open_or_create(const char *path, int *created,
			  struct bmaptk_error *err)
{
	const int flags = O_WRONLY | O_CLOEXEC | O_NOCTTY;

	for (int attempt = 0; attempt < 3; attempt++) {
		int fd = open(path, flags | O_CREAT | O_EXCL, 0644);
		if (fd >= 0) {
			*created = 1;
			return fd;
		}
		if (errno != EEXIST)
			break;
		fd = open(path, flags | O_NONBLOCK);
		if (fd >= 0) {
			*created = 0;
			return fd;
		}
		if (errno != ENOENT) /* else it vanished: try again */
			break;
	}
	if (errno == EISDIR)
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, errno,
				 "%s: a directory; an Android sparse image can "
				 "only be written to a file",
				 path);
	else
		bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
				 "cannot create %s: %s", path, strerror(errno));
	return -1;
}

static int check_opts(const char *path, const struct bmaptk_sink_opts *opts,
		      struct bmaptk_error *err)
{
	if (opts->keep_data)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: an Android sparse image is written whole; it cannot "
		    "be compared with what it held (--skip-unchanged)",
		    path);
	if (opts->image_size != BMAPTK_SIZE_UNKNOWN &&
	    opts->image_size > (uint64_t)MAX_BLOCKS * BLK)
		return too_large(path, opts->image_size, err);
	return 0;
}

static struct bmaptk_sink *open_sink(const char *path,
				     const struct bmaptk_sink_opts *opts,
				     int with_crc, struct bmaptk_error *err)
{
	struct simg_sink *s;
	struct stat st;

	if (check_opts(path, opts, err))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->buf = aligned_buffer(OUT_BUF))) {
		free(s);
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM, "out of memory");
		return NULL;
	}
	s->base.ops = &simg_ops;
	s->base.name = path;
	s->with_crc = with_crc;
	s->buf_off = FILE_HDR; /* the header goes in last */
	s->fd = open_or_create(path, &s->base.created, err);
	if (s->fd < 0) {
		simg_close(&s->base, 0);
		return NULL;
	}
	/* O_NONBLOCK only kept a FIFO from hanging the open. */
	if (fcntl(s->fd, F_SETFL, 0) < 0 || fstat(s->fd, &st) < 0) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, errno, "%s: %s", path,
				 strerror(errno));
		simg_close(&s->base, 1);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s: not a regular file; an Android sparse "
				 "image can only be written to a file",
				 path);
		simg_close(&s->base, 1);
		return NULL;
	}
	if (sink_refuse_fd(opts, s->fd, path, err)) {
		simg_close(&s->base, 1);
		return NULL;
	}
	return &s->base;
}

static struct bmaptk_sink *simg_open(const char *path,
				     const struct bmaptk_sink_opts *opts,
				     struct bmaptk_error *err)
{
	return open_sink(path, opts, 0, err);
}

static struct bmaptk_sink *simg_crc_open(const char *path,
					 const struct bmaptk_sink_opts *opts,
					 struct bmaptk_error *err)
{
	return open_sink(path, opts, 1, err);
}

/* "NAME.simg", missing or a regular file: outbids the file sink (1). */
static int simg_probe(const char *path, const struct stat *st)
{
	size_t n = strlen(path);

	if (n < 5 || strcmp(path + n - 5, ".simg"))
		return 0;
	return !st || S_ISREG(st->st_mode) ? 2 : 0;
}

/* Only chosen by name (--to simg-crc). */
static int never_probe(const char *path, const struct stat *st)
{
	(void)path;
	(void)st;
	return 0;
}

static const struct bmaptk_sink_module simg_module = {
    .probe = simg_probe,
    .open = simg_open,
};

static const struct bmaptk_sink_module simg_crc_module = {
    .probe = never_probe,
    .open = simg_crc_open,
};

const struct bmaptk_module bmaptk_sink_simg = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_SINK,
    .name = "simg",
    .description = "Android sparse image file (.simg): RAW, FILL and "
		   "DONT_CARE chunks of 4096-byte blocks",
    .version = "1",
    .u.sink = &simg_module,
};

const struct bmaptk_module bmaptk_sink_simg_crc = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_SINK,
    .name = "simg-crc",
    .description = "Android sparse image file with a CRC32 chunk "
		   "(--to simg-crc)",
    .version = "1",
    .u.sink = &simg_crc_module,
};
