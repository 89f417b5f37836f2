/* The reader of packed images (src/codecs/pack.c), on packs written here
 * frame by frame with libzstd, so that each can be made wrong in one way:
 * it decodes exactly the image, decodes and even fetches only the chunks
 * of its plan (an unplanned frame may be garbage), follows skips, reports
 * each kind of corruption with one line naming the file and the frame,
 * and closes cleanly at any point. A recording source ("rec:PATH") shows
 * what the reader asked its input for. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zstd.h>

#include <bmaptk/bmaptk.h>

#include "../codecs/pack.h"
#include "../codecs/pack_format.h"
#include "util.h"

#define CS	 (64u << 10) /* the smallest chunk: small test files */
#define NCHUNKS	 12
#define IMG_SIZE ((uint64_t)(NCHUNKS - 1) * CS + 20000)
#define BLOCK	 4096u
#define SIG_TEXT                                                               \
	"-----BEGIN PGP SIGNATURE-----\nnot really\n-----END PGP "             \
	"SIGNATURE-----\n"

static char tmpdir[64];
static struct bmaptk_registry *reg;
static unsigned char *image; /* IMG_SIZE bytes, zero where unmapped */

/* The mapped blocks: chunks 0, 2, 3+4 (one range across them), 8 and the
 * last, partial one; chunks 1, 5, 6, 7, 9 and 10 hold nothing. */
static const uint64_t ranges[][2] = {
    {0, 3}, {33, 40}, {48, 70}, {130, 131}, {178, 180},
};
#define NRANGES (sizeof(ranges) / sizeof(ranges[0]))
static const int planned[NCHUNKS] = {1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1};

/* ---- helpers ------------------------------------------------------------ */

static const char *tmp_path(char *buf, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", tmpdir, name);
	return buf;
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* Half random bytes, half text, so frames are both raw and compressed. */
static void fill(unsigned char *buf, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t r = next_rand(&seed);
		buf[i] = (i / 2048) % 2 ? (unsigned char)(r >> 56)
					: (unsigned char)("bmaptk "[r % 7]);
	}
}

static uint64_t chunk_len(uint64_t size, uint32_t cs, uint64_t c)
{
	return MIN((uint64_t)cs, size - c * cs);
}

/* A bmap of the given ranges over an image, with real digests. */
static struct bmaptk_bmap *make_bmap(const unsigned char *img, uint64_t size,
				     const uint64_t (*r)[2], size_t nr)
{
	struct bmaptk_bmap *b = calloc(1, sizeof(*b));
	struct bmaptk_hasher *h = bmaptk_hasher_new(BMAPTK_HASH_SHA256);

	assert_non_null(b);
	assert_non_null(h);
	b->major = 2;
	b->image_size = size;
	b->block_size = BLOCK;
	b->blocks_count = (size + BLOCK - 1) / BLOCK;
	b->hash_type = BMAPTK_HASH_SHA256;
	b->range_digests = 1;
	b->nranges = nr;
	b->ranges = calloc(nr ? nr : 1, sizeof(*b->ranges));
	assert_non_null(b->ranges);
	for (size_t i = 0; i < nr; i++) {
		uint64_t off, len;
		b->ranges[i].first = r[i][0];
		b->ranges[i].last = r[i][1];
		b->mapped_blocks_count += r[i][1] - r[i][0] + 1;
		bmaptk_range_span(b, &b->ranges[i], &off, &len);
		bmaptk_hasher_update(h, img + off, len);
		bmaptk_hasher_final(h, b->ranges[i].digest);
	}
	bmaptk_hasher_free(h);
	return b;
}

/* ---- writing packs ------------------------------------------------------ */

struct pk {
	uint32_t cs, n;
	uint64_t size;
	unsigned char **frame;
	uint32_t *flen;	 /* real frame lengths */
	uint32_t *index; /* what the index says */
	char *bmap;
	size_t bmap_len;
	const char *sig;
	uint32_t version;
	int64_t bad_table_entry; /* -1: none */
};

static unsigned char *compress_frame(const void *src, size_t len, int checksum,
				     int content_size, uint32_t *out_len)
{
	ZSTD_CCtx *z = ZSTD_createCCtx();
	size_t cap = ZSTD_compressBound(len), n;
	unsigned char *dst = malloc(cap);

	assert_non_null(z);
	assert_non_null(dst);
	ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, 3);
	ZSTD_CCtx_setParameter(z, ZSTD_c_checksumFlag, checksum);
	ZSTD_CCtx_setParameter(z, ZSTD_c_contentSizeFlag, content_size);
	n = ZSTD_compress2(z, dst, cap, src, len);
	assert_false(ZSTD_isError(n));
	ZSTD_freeCCtx(z);
	*out_len = (uint32_t)n;
	return dst;
}

static void pk_set_frame(struct pk *p, uint32_t c, unsigned char *f,
			 uint32_t len)
{
	free(p->frame[c]);
	p->frame[c] = f;
	p->flen[c] = p->index[c] = len;
}

static void pk_init(struct pk *p, const unsigned char *img, uint64_t size,
		    uint32_t cs, const struct bmaptk_bmap *b)
{
	memset(p, 0, sizeof(*p));
	p->cs = cs;
	p->size = size;
	p->n = (uint32_t)((size + cs - 1) / cs);
	p->frame = calloc(p->n + 1, sizeof(*p->frame));
	p->flen = calloc(p->n + 1, sizeof(*p->flen));
	p->index = calloc(p->n + 1, sizeof(*p->index));
	assert_true(p->frame && p->flen && p->index);
	for (uint32_t c = 0; c < p->n; c++) {
		uint32_t len;
		unsigned char *f =
		    compress_frame(img + (uint64_t)c * cs,
				   (size_t)chunk_len(size, cs, c), 1, 1, &len);
		pk_set_frame(p, c, f, len);
	}
	p->bmap = bmaptk_bmap_format(b, &p->bmap_len);
	assert_non_null(p->bmap);
	p->sig = SIG_TEXT;
	p->version = PACK_VERSION;
	p->bad_table_entry = -1;
}

static void pk_free(struct pk *p)
{
	for (uint32_t c = 0; c < p->n; c++)
		free(p->frame[c]);
	free(p->frame);
	free(p->flen);
	free(p->index);
	free(p->bmap);
}

static void put_bytes(FILE *f, const void *buf, size_t len)
{
	assert_int_equal(fwrite(buf, 1, len, f), len);
}

static void put_u32(FILE *f, uint32_t v)
{
	unsigned char b[4];

	pack_put32(b, v);
	put_bytes(f, b, 4);
}

/* Write the pack as docs/pack.md lays it out, less `cut` bytes at the
 * end. Returns the frame's file offset of chunk 0. */
static uint64_t pk_write(const struct pk *p, const char *name, size_t cut)
{
	struct pack_header h = {.version = p->version,
				.chunk_size = p->cs,
				.image_size = p->size,
				.nchunks = p->n,
				.bmap_len = (uint32_t)p->bmap_len,
				.sig_len = (uint32_t)strlen(p->sig)};
	uint32_t payload = PACK_HEADER_SIZE + 4 * p->n + h.bmap_len + h.sig_len;
	unsigned char hdr[PACK_HEADER_SIZE];
	char path[PATH_MAX];
	FILE *f = fopen(tmp_path(path, name), "wb");
	long end;

	assert_non_null(f);
	put_u32(f, PACK_MAGIC_BMAP);
	put_u32(f, payload);
	pack_header_put(hdr, &h);
	put_bytes(f, hdr, sizeof(hdr));
	for (uint32_t c = 0; c < p->n; c++)
		put_u32(f, p->index[c]);
	put_bytes(f, p->bmap, p->bmap_len);
	put_bytes(f, p->sig, h.sig_len);
	for (uint32_t c = 0; c < p->n; c++)
		put_bytes(f, p->frame[c], p->flen[c]);
	put_u32(f, PACK_MAGIC_SEEKTABLE);
	put_u32(f, 8 * (p->n + 1) + PACK_SEEK_FOOTER);
	for (int64_t e = 0; e <= p->n; e++) {
		uint32_t csize =
		    e ? p->index[e - 1] : PACK_FRAME_HEADER + payload;
		uint32_t dsize =
		    e ? (uint32_t)chunk_len(p->size, p->cs, (uint64_t)e - 1)
		      : 0;
		put_u32(f, csize + (e == p->bad_table_entry));
		put_u32(f, dsize);
	}
	put_u32(f, p->n + 1);
	put_bytes(f, "", 1);
	put_u32(f, PACK_SEEKABLE_MAGIC);
	assert_int_equal(fflush(f), 0);
	end = ftell(f);
	assert_int_equal(ftruncate(fileno(f), end - (long)cut), 0);
	assert_int_equal(fclose(f), 0);
	return PACK_FRAME_HEADER + (uint64_t)payload;
}

/* ---- a source that records what it is asked for --------------------- */

struct rec_op {
	char kind; /* 'r' read, 's' skip */
	uint64_t off, len;
};

static struct rec_op rec_log[4096];
static size_t rec_n;
static int rec_unknown_size; /* report the size as unknown (a pipe) */

struct rec_stream {
	struct bmaptk_stream base;
	int fd;
	uint64_t pos;
};

static ssize_t rec_read(struct bmaptk_stream *bs, void *buf, size_t len,
			struct bmaptk_error *err)
{
	struct rec_stream *s = (struct rec_stream *)bs;
	ssize_t n = pread_full(s->fd, buf, len, s->pos);

	if (rec_n < sizeof(rec_log) / sizeof(rec_log[0]))
		rec_log[rec_n++] = (struct rec_op){'r', s->pos, len};
	if (n < 0)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, errno, "%s: read",
					bs->name),
		       -1;
	s->pos += (uint64_t)n;
	return n;
}

static int rec_skip(struct bmaptk_stream *bs, uint64_t n,
		    struct bmaptk_error *err)
{
	struct rec_stream *s = (struct rec_stream *)bs;
	struct stat st;

	if (rec_n < sizeof(rec_log) / sizeof(rec_log[0]))
		rec_log[rec_n++] = (struct rec_op){'s', s->pos, n};
	if (fstat(s->fd, &st) || s->pos + n > (uint64_t)st.st_size)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: skip past the end", bs->name);
	s->pos += n;
	return 0;
}

static void rec_close(struct bmaptk_stream *bs)
{
	struct rec_stream *s = (struct rec_stream *)bs;

	close(s->fd);
	free(s);
}

static const struct bmaptk_stream_ops rec_ops = {
    .read = rec_read, .skip = rec_skip, .close = rec_close};

static int rec_probe(const char *location)
{
	return !strncmp(location, "rec:", 4) ? 100 : 0;
}

static struct bmaptk_stream *rec_open(const char *location,
				      const struct bmaptk_source_opts *opts,
				      struct bmaptk_error *err)
{
	struct rec_stream *s = calloc(1, sizeof(*s));
	struct stat st;

	(void)opts;
	assert_non_null(s);
	s->fd = open(location + 4, O_RDONLY);
	if (s->fd < 0 || fstat(s->fd, &st)) {
		free(s);
		bmaptk_set_error(err, BMAPTK_ERR_IO, errno, "%s: open",
				 location);
		return NULL;
	}
	s->base.ops = &rec_ops;
	s->base.name = location;
	s->base.size =
	    rec_unknown_size ? BMAPTK_SIZE_UNKNOWN : (uint64_t)st.st_size;
	rec_n = 0;
	return &s->base;
}

static const struct bmaptk_source_module rec_source = {.probe = rec_probe,
						       .open = rec_open};
static const struct bmaptk_module rec_module = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_SOURCE,
    .name = "rec",
    .description = "test: records reads and skips",
    .version = "1",
    .priority = 50,
    .u.source = &rec_source,
};

/* ---- reading ------------------------------------------------------------ */

static struct bmaptk_stream *open_pack(const char *name, int rec,
				       struct bmaptk_error *err)
{
	static char loc[2][PATH_MAX + 8]; /* names outlive the stream */
	static int next;
	char path[PATH_MAX];
	char *l = loc[next++ % 2];

	snprintf(l, PATH_MAX + 8, "%s%s", rec ? "rec:" : "",
		 tmp_path(path, name));
	memset(err, 0, sizeof(*err));
	return bmaptk_open_image(reg, l, NULL, err);
}

static struct bmaptk_stream *open_ok(const char *name, int rec)
{
	struct bmaptk_error err;
	struct bmaptk_stream *s = open_pack(name, rec, &err);

	if (!s)
		fail_msg("%s: %s", name, err.message);
	assert_true(pack_stream_is(s));
	return s;
}

static void expect_open_error(const char *name, const char *what)
{
	struct bmaptk_error err;
	struct bmaptk_stream *s = open_pack(name, 0, &err);
	char want[PATH_MAX + 64];

	assert_null(s);
	assert_int_equal(err.status, BMAPTK_ERR_USAGE);
	snprintf(want, sizeof(want), "%s/%s: corrupt packed image: ", tmpdir,
		 name);
	if (strncmp(err.message, want, strlen(want)) ||
	    !strstr(err.message, what))
		fail_msg("%s: wrong error: %s", name, err.message);
	assert_null(strchr(err.message, '\n'));
}

/* The stream's skip (cmocka has a skip() macro). */
static int sk(struct bmaptk_stream *s, uint64_t n, struct bmaptk_error *err)
{
	return (s->ops->skip)(s, n, err);
}

/* Read len bytes with odd-sized reads; returns 0 or the read's status. */
static int read_into(struct bmaptk_stream *s, unsigned char *buf, size_t len,
		     struct bmaptk_error *err)
{
	static const size_t sizes[] = {7777, 1, 65536, 4096, 200000, 3};
	size_t done = 0;

	for (unsigned i = 0; done < len; i++) {
		ssize_t n = s->ops->read(s, buf + done,
					 MIN(sizes[i % 6], len - done), err);
		if (n < 0)
			return err->status;
		if (n == 0)
			fail_msg("early end at %zu of %zu", done, len);
		done += (size_t)n;
	}
	return 0;
}

/* Walk b as the copy engine does: skip to each range, read it, compare;
 * then skip the holes to the end. Returns 0 or the failing status. */
static int walk(struct bmaptk_stream *s, const struct bmaptk_bmap *b,
		const unsigned char *want, struct bmaptk_error *err)
{
	uint64_t pos = 0, off, len, hole;
	unsigned char *buf;
	int rc = 0;

	for (size_t i = 0; i < b->nranges && !rc; i++) {
		bmaptk_range_span(b, &b->ranges[i], &off, &len);
		if (off > pos && (rc = sk(s, off - pos, err)))
			break;
		buf = malloc(len);
		assert_non_null(buf);
		rc = read_into(s, buf, (size_t)len, err);
		if (!rc)
			assert_memory_equal(buf, want + off, len);
		free(buf);
		pos = off + len;
	}
	/* The drain: holes skipped, the rest of a chunk read and dropped. */
	buf = malloc(CS);
	assert_non_null(buf);
	while (!rc) {
		ssize_t n;
		if ((hole = s->ops->hole(s))) {
			rc = sk(s, hole, err);
			pos += hole;
			continue;
		}
		n = s->ops->read(s, buf, CS, err);
		if (n < 0)
			rc = err->status;
		else if (n == 0)
			break;
		else
			assert_memory_equal(buf, want + pos, (size_t)n);
		pos += n > 0 ? (uint64_t)n : 0;
	}
	free(buf);
	if (!rc)
		assert_int_equal(pos, b->image_size);
	return rc;
}

static void expect_read_error(struct bmaptk_stream *s,
			      const struct bmaptk_bmap *b, const char *what)
{
	struct bmaptk_error err = {0};
	int rc = walk(s, b, image, &err);

	if (!rc)
		fail_msg("no error, expected %s", what);
	if (!strstr(err.message, s->name) || !strstr(err.message, what))
		fail_msg("wrong error: %s (expected %s)", err.message, what);
	assert_null(strchr(err.message, '\n'));
	assert_int_equal(err.status, BMAPTK_ERR_USAGE);
	/* Reported again, not lost. */
	memset(&err, 0, sizeof(err));
	{
		unsigned char c;
		assert_int_equal(s->ops->read(s, &c, 1, &err), -1);
		assert_non_null(strstr(err.message, what));
	}
}

static struct bmaptk_bmap *test_bmap(void)
{
	return make_bmap(image, IMG_SIZE, ranges, NRANGES);
}

/* The standard pack, possibly spoiled by the caller, as name. */
static uint64_t write_std(const char *name, void (*spoil)(struct pk *))
{
	struct bmaptk_bmap *b = test_bmap();
	struct pk p;
	uint64_t at;

	pk_init(&p, image, IMG_SIZE, CS, b);
	if (spoil)
		spoil(&p);
	at = pk_write(&p, name, 0);
	pk_free(&p);
	bmaptk_bmap_free(b);
	return at;
}

/* ---- tests: good packs -------------------------------------------------- */

static void test_probe_and_embedded(void **state)
{
	struct bmaptk_stream *s;
	struct bmaptk_bmap *b = test_bmap(), *got;
	struct bmaptk_error err = {0};
	const char *bmap, *sig;
	size_t bmap_len, sig_len, want_len;
	char *want = bmaptk_bmap_format(b, &want_len);

	(void)state;
	write_std("good.zst", NULL);
	s = open_ok("good.zst", 0);
	assert_string_equal(s->format, "zstd-pack");
	assert_int_equal(s->size, IMG_SIZE);
	assert_int_equal(pack_stream_chunk_size(s), CS);
	pack_stream_embedded(s, &bmap, &bmap_len, &sig, &sig_len);
	assert_int_equal(bmap_len, want_len);
	assert_memory_equal(bmap, want, want_len);
	assert_int_equal(bmap[bmap_len], '\0');
	assert_int_equal(sig_len, strlen(SIG_TEXT));
	assert_memory_equal(sig, SIG_TEXT, sig_len);
	assert_int_equal(bmaptk_bmap_parse(bmap, bmap_len, s->name, &got, &err),
			 0);
	assert_int_equal(got->nranges, NRANGES);
	bmaptk_bmap_free(got);
	s->ops->close(s);
	free(want);
	bmaptk_bmap_free(b);
}

/* Unsigned, and a plain zstd file still goes to the zstd codec. */
static void test_unsigned_and_plain_zstd(void **state)
{
	struct bmaptk_bmap *b = test_bmap();
	struct bmaptk_stream *s;
	struct bmaptk_error err;
	const char *bmap, *sig;
	size_t bmap_len, sig_len;
	struct pk p;
	uint32_t len;
	unsigned char *f = compress_frame(image, 1000, 1, 1, &len);
	char path[PATH_MAX];
	FILE *out;

	(void)state;
	pk_init(&p, image, IMG_SIZE, CS, b);
	p.sig = "";
	pk_write(&p, "unsigned.zst", 0);
	s = open_ok("unsigned.zst", 0);
	pack_stream_embedded(s, &bmap, &bmap_len, &sig, &sig_len);
	assert_null(sig);
	assert_int_equal(sig_len, 0);
	s->ops->close(s);

	out = fopen(tmp_path(path, "plain.zst"), "wb");
	assert_non_null(out);
	put_bytes(out, f, len);
	assert_int_equal(fclose(out), 0);
	s = open_pack("plain.zst", 0, &err);
	assert_non_null(s);
	assert_false(pack_stream_is(s));
	assert_string_equal(s->format, "zstd");
	s->ops->close(s);
	free(f);
	pk_free(&p);
	bmaptk_bmap_free(b);
}

/* No plan: the first read plans every chunk; all bytes come out. */
static void test_read_all(void **state)
{
	struct bmaptk_stream *s;
	struct bmaptk_error err = {0};
	unsigned char *buf = malloc(IMG_SIZE), c;

	(void)state;
	write_std("good.zst", NULL);
	s = open_ok("good.zst", 0);
	assert_int_equal(s->ops->hole(s), 0);
	assert_int_equal(read_into(s, buf, IMG_SIZE, &err), 0);
	assert_memory_equal(buf, image, IMG_SIZE);
	assert_int_equal(s->ops->hole(s), 0);
	assert_int_equal(s->ops->read(s, &c, 1, &err), 0);
	assert_int_equal(s->ops->read(s, &c, 1, &err), 0);
	assert_int_equal(pack_stream_plan(s, NULL, 0, &err), BMAPTK_ERR_USAGE);
	s->ops->close(s);

	/* --nobmap: a NULL plan is every chunk, on one thread too. */
	s = open_ok("good.zst", 0);
	assert_int_equal(pack_stream_plan(s, NULL, 1, &err), 0);
	assert_int_equal(s->ops->hole(s), 0);
	assert_int_equal(read_into(s, buf, IMG_SIZE, &err), 0);
	assert_memory_equal(buf, image, IMG_SIZE);
	s->ops->close(s);
	free(buf);
}

static void spoil_unplanned(struct pk *p)
{
	/* Garbage where chunks 1, 6 and 9 are: never decoded. */
	p->frame[1][p->flen[1] / 2] ^= 0xff;
	memset(p->frame[6], 0x55, p->flen[6]);
	p->frame[9][0] = 0;
}

/* A plan with gaps: exactly the planned chunks are fetched, each run with
 * one read, the gaps skipped; unplanned garbage is never decoded. */
static void test_plan_gaps(void **state)
{
	struct bmaptk_bmap *b = test_bmap();
	struct bmaptk_error err = {0};
	struct bmaptk_stream *s;
	uint64_t at = write_std("gaps.zst", spoil_unplanned), off[NCHUNKS + 1];
	struct pk p;
	size_t runs = 0;

	(void)state;
	pk_init(&p, image, IMG_SIZE, CS, b);
	off[0] = at;
	for (int c = 0; c < NCHUNKS; c++)
		off[c + 1] = off[c] + p.flen[c];
	for (unsigned threads = 1; threads <= 3; threads++) {
		s = open_ok("gaps.zst", 1);
		assert_int_equal(pack_stream_plan(s, b, threads, &err), 0);
		if (walk(s, b, image, &err))
			fail_msg("%s", err.message);
		s->ops->close(s);
		/* Nothing read of an unplanned frame (the first 4 KiB were
		 * read for probing, which frame 0 covers); a read after a
		 * skip is one whole run. */
		for (size_t i = 0; i < rec_n; i++) {
			const struct rec_op *o = &rec_log[i];
			if (o->kind != 'r' || o->off + o->len <= 4096)
				continue;
			for (int c = 0; c < NCHUNKS; c++)
				if (!planned[c] && o->off < off[c + 1] &&
				    o->off + o->len > off[c])
					fail_msg("read %llu+%llu reads frame "
						 "%d",
						 (unsigned long long)o->off,
						 (unsigned long long)o->len, c);
			if (i && rec_log[i - 1].kind == 's') {
				runs++;
				assert_true(o->off == off[2] ||
					    o->off == off[8] ||
					    o->off == off[11]);
				if (o->off == off[2])
					assert_int_equal(o->len,
							 off[5] - off[2]);
				else if (o->off == off[8])
					assert_int_equal(o->len,
							 off[9] - off[8]);
				else
					assert_int_equal(o->len,
							 off[12] - off[11]);
			}
		}
	}
	assert_int_equal(runs, 3 * 3);
	pk_free(&p);
	bmaptk_bmap_free(b);
}

/* Through the copy engine (its drain skips the holes the stream reports),
 * with a bmap and with --nobmap. */
static void test_copy_engine(void **state)
{
	struct bmaptk_bmap *b = test_bmap();
	struct bmaptk_error err = {0};
	struct bmaptk_sink_opts so = {.image_size = IMG_SIZE};
	struct bmaptk_copy_opts co = {.bmap = b, .verify = 1};
	struct bmaptk_copy_stats stats = {0};
	char path[PATH_MAX];
	struct bmaptk_sink *sink;
	struct bmaptk_stream *s;
	unsigned char *out;
	size_t len;

	(void)state;
	write_std("copy.zst", spoil_unplanned);
	write_std("good.zst", NULL);
	for (int nobmap = 0; nobmap <= 1; nobmap++) {
		tmp_path(path, "copy.out");
		unlink(path);
		s = open_ok(nobmap ? "good.zst" : "copy.zst", 0);
		assert_int_equal(
		    pack_stream_plan(s, nobmap ? NULL : b, 2, &err), 0);
		sink = bmaptk_open_sink(reg, path, NULL, &so, &err);
		assert_non_null(sink);
		co.bmap = nobmap ? NULL : b;
		if (bmaptk_copy(s, &sink, 1, &co, &stats, &err))
			fail_msg("%s", err.message);
		assert_int_equal(sink->ops->finish(sink, IMG_SIZE, &err), 0);
		sink->ops->close(sink, 0);
		s->ops->close(s);
		if (!nobmap)
			assert_int_equal(stats.ranges_verified, NRANGES);
		out = (unsigned char *)NULL;
		assert_int_equal(
		    read_whole_file(path, 1 << 30, (char **)&out, &len, &err),
		    0);
		assert_int_equal(len, IMG_SIZE);
		assert_memory_equal(out, image, IMG_SIZE);
		free(out);
	}
	bmaptk_bmap_free(b);
}

/* Skips over planned chunks, a read in an unplanned one, hole sizes. */
static void test_skip_and_unplanned(void **state)
{
	struct bmaptk_bmap *b = test_bmap();
	struct bmaptk_error err = {0};
	struct bmaptk_stream *s;
	unsigned char buf[100];

	(void)state;
	write_std("gaps.zst", spoil_unplanned);
	s = open_ok("gaps.zst", 0);
	assert_int_equal(s->ops->hole(s), 0); /* not planned yet: none */
	assert_int_equal(pack_stream_plan(s, b, 2, &err), 0);
	assert_int_equal(s->ops->hole(s), 0);
	assert_int_equal(sk(s, CS + 5, &err), 0); /* chunk 1 */
	assert_int_equal(s->ops->hole(s), CS - 5);
	/* Past chunks 2 to 4, planned but not read, into chunk 8. */
	assert_int_equal(sk(s, 7 * CS - 5 + 100, &err), 0);
	assert_int_equal(s->ops->hole(s), 0);
	assert_int_equal(read_into(s, buf, sizeof(buf), &err), 0);
	assert_memory_equal(buf, image + 8 * CS + 100, sizeof(buf));
	assert_int_equal(sk(s, CS - 300, &err), 0);
	assert_int_equal(s->ops->hole(s), 0); /* still in chunk 8 */
	assert_int_equal(read_into(s, buf, sizeof(buf), &err), 0);
	assert_int_equal(s->ops->hole(s), 2 * CS); /* chunks 9 and 10 */
	assert_int_equal(s->ops->read(s, buf, 1, &err), -1);
	assert_int_equal(err.status, BMAPTK_ERR_USAGE);
	assert_non_null(strstr(err.message, "the copy read chunk 9, which is "
					    "not in the plan"));
	assert_non_null(strstr(err.message, s->name));
	/* Skipping past the end is an error; to the end is not. */
	assert_int_equal(sk(s, IMG_SIZE, &err), BMAPTK_ERR_USAGE);
	assert_int_equal(sk(s, IMG_SIZE - 9 * CS, &err), 0);
	assert_int_equal(s->ops->read(s, buf, 1, &err), 0);
	s->ops->close(s);

	/* A plan is set once; a bmap of another image is refused. */
	s = open_ok("gaps.zst", 0);
	b->image_size += 4096;
	assert_int_equal(pack_stream_plan(s, b, 2, &err), BMAPTK_ERR_USAGE);
	assert_non_null(strstr(err.message, "the bmap is for an image of"));
	b->image_size -= 4096;
	assert_int_equal(pack_stream_plan(s, b, 2, &err), 0);
	assert_int_equal(pack_stream_plan(s, b, 2, &err), BMAPTK_ERR_USAGE);
	s->ops->close(s);
	bmaptk_bmap_free(b);
}

/* Close at every stage: before a plan, right after it, mid-way, after an
 * error; threads are joined and nothing leaks (ASan). */
static void test_close_anytime(void **state)
{
	struct bmaptk_bmap *b = test_bmap();
	struct bmaptk_error err = {0};
	struct bmaptk_stream *s;
	unsigned char buf[10];

	(void)state;
	write_std("good.zst", NULL);
	s = open_ok("good.zst", 0);
	s->ops->close(s);
	s = open_ok("good.zst", 0);
	assert_int_equal(pack_stream_plan(s, NULL, 4, &err), 0);
	s->ops->close(s);
	s = open_ok("good.zst", 1);
	assert_int_equal(pack_stream_plan(s, b, 3, &err), 0);
	assert_int_equal(read_into(s, buf, sizeof(buf), &err), 0);
	s->ops->close(s);
	s = open_ok("good.zst", 0);
	assert_int_equal(s->ops->read(s, buf, 1, &err), 1); /* plans all */
	s->ops->close(s);
	bmaptk_bmap_free(b);
}

/* Many chunks, random plans, several threads: reading a subset of the
 * plan (skipping planned chunks whole) gives the right bytes. */
static void test_many_chunks(void **state)
{
	const uint64_t n = 300, size = n * CS - 1234;
	unsigned char *img = malloc(size), *buf = malloc(CS);
	uint64_t(*r)[2] = calloc(n, sizeof(*r)), seed = 42;
	struct bmaptk_error err = {0};
	struct bmaptk_stream *s;
	struct bmaptk_bmap *b;
	size_t nr = 0;
	struct pk p;

	(void)state;
	assert_true(img && buf && r);
	fill(img, size, 7);
	for (uint64_t c = 0; c < n; c++)
		if (next_rand(&seed) % 2) {
			uint64_t first = c * CS / BLOCK;
			r[nr][0] = first + next_rand(&seed) % 8;
			r[nr][1] = MIN(first + 15, (size - 1) / BLOCK);
			nr++;
		}
	b = make_bmap(img, size, (const uint64_t(*)[2])r, nr);
	pk_init(&p, img, size, CS, b);
	pk_write(&p, "many.zst", 0);
	for (unsigned threads = 1; threads <= 5; threads += 2) {
		uint64_t pos = 0;
		s = open_ok("many.zst", 0);
		assert_int_equal(pack_stream_plan(s, b, threads, &err), 0);
		for (size_t i = 0; i < nr; i++) {
			uint64_t off, len;
			bmaptk_range_span(b, &b->ranges[i], &off, &len);
			if (next_rand(&seed) % 3 == 0)
				continue; /* planned, skipped */
			assert_int_equal(sk(s, off - pos, &err), 0);
			assert_int_equal(read_into(s, buf, len, &err), 0);
			assert_memory_equal(buf, img + off, len);
			pos = off + len;
		}
		s->ops->close(s);
	}
	pk_free(&p);
	bmaptk_bmap_free(b);
	free(r);
	free(img);
	free(buf);
}

/* Through the input ring many times over (1 MiB chunks, 40 MiB of data,
 * runs cut at the ring's end), and frames bigger than the ring, each
 * fetched alone (32 MiB chunks of random bytes). */
static void test_big_frames(void **state)
{
	static const struct {
		uint32_t cs;
		uint64_t size;
		int random;
	} cases[] = {
	    {1u << 20, 40ull << 20, 0},
	    {32u << 20, (64ull << 20) + 100000, 1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t size = cases[i].size, cs = cases[i].cs, seed = 9;
		uint64_t n = (size + cs - 1) / cs, nr = 0;
		unsigned char *img = malloc(size), *buf = malloc(cs);
		uint64_t(*r)[2] = calloc(n, sizeof(*r));
		struct bmaptk_error err = {0};
		struct bmaptk_bmap *b, *all;
		uint64_t whole[1][2] = {{0, (size - 1) / BLOCK}};
		struct pk p;

		assert_true(img && buf && r);
		if (cases[i].random)
			for (uint64_t k = 0; k < size; k++)
				img[k] =
				    (unsigned char)(next_rand(&seed) >> 56);
		else
			fill(img, size, 3);
		/* Every chunk but each fifth, whole. */
		for (uint64_t c = 0; c < n; c++)
			if (c % 5 != 1 || n < 5) {
				r[nr][0] = c * cs / BLOCK;
				r[nr][1] = MIN((c + 1) * cs, size) / BLOCK - 1;
				if (c == n - 1)
					r[nr][1] = (size - 1) / BLOCK;
				nr++;
			}
		b = make_bmap(img, size, (const uint64_t(*)[2])r, nr);
		all = make_bmap(img, size, whole, 1);
		pk_init(&p, img, size, (uint32_t)cs, b);
		pk_write(&p, "big.zst", 0);
		for (unsigned threads = 2; threads <= 3; threads++) {
			struct bmaptk_stream *s = open_ok("big.zst", 0);
			assert_int_equal(
			    pack_stream_plan(s, threads == 2 ? b : all, threads,
					     &err),
			    0);
			if (walk(s, threads == 2 ? b : all, img, &err))
				fail_msg("%s", err.message);
			s->ops->close(s);
		}
		pk_free(&p);
		bmaptk_bmap_free(b);
		bmaptk_bmap_free(all);
		free(r);
		free(img);
		free(buf);
	}
}

/* ---- tests: corrupt packs ----------------------------------------------- */

static void spoil_length(struct pk *p)
{
	uint32_t len;
	unsigned char *f =
	    compress_frame(image + 3 * CS, CS - 4096, 1, 1, &len);

	pk_set_frame(p, 3, f, len);
}

static void spoil_data(struct pk *p)
{
	p->frame[8][p->flen[8] / 2] ^= 0x01;
}

static void spoil_index(struct pk *p)
{
	p->index[2]++;
	p->index[3]--;
}

static void spoil_checksum_flag(struct pk *p)
{
	uint32_t len;
	unsigned char *f = compress_frame(
	    image + 11 * CS, (size_t)(IMG_SIZE - 11 * CS), 0, 1, &len);

	pk_set_frame(p, 11, f, len);
}

static void spoil_content_size(struct pk *p)
{
	uint32_t len;
	unsigned char *f = compress_frame(image, CS, 1, 0, &len);

	pk_set_frame(p, 0, f, len);
}

static void test_corrupt_frames(void **state)
{
	static const struct {
		const char *name;
		void (*spoil)(struct pk *);
		int chunk;
		const char *what;
	} cases[] = {
	    {"length.zst", spoil_length, 3,
	     "frame 3 (at byte %llu) decodes to 61440 bytes, the index says "
	     "65536"},
	    {"data.zst", spoil_data, 8,
	     "frame 8 (at byte %llu) does not decode"},
	    {"index.zst", spoil_index, 2, "frame 2 (at byte %llu) is "},
	    {"nosum.zst", spoil_checksum_flag, 11,
	     "frame 11 (at byte %llu) has no checksum"},
	    {"nosize.zst", spoil_content_size, 0,
	     "frame 0 (at byte %llu) does not record its size"},
	};
	struct bmaptk_bmap *b = test_bmap();
	struct bmaptk_error err = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t at = write_std(cases[i].name, cases[i].spoil);
		struct bmaptk_stream *s = open_ok(cases[i].name, 0);
		struct pk p;
		char what[256];
		int c = cases[i].chunk;
		/* Offsets of the spoiled pack's frames. */
		pk_init(&p, image, IMG_SIZE, CS, b);
		cases[i].spoil(&p);
		for (int k = 0; k < c; k++)
			at += p.index[k];
		pk_free(&p);
		snprintf(what, sizeof(what), cases[i].what,
			 (unsigned long long)at);
		assert_int_equal(pack_stream_plan(s, b, 2, &err), 0);
		expect_read_error(s, b, what);
		s->ops->close(s);
		/* The same frame outside the plan costs nothing. */
		if (c != 0) {
			uint64_t only[1][2] = {{0, 3}};
			struct bmaptk_bmap *b0 =
			    make_bmap(image, IMG_SIZE, only, 1);
			s = open_ok(cases[i].name, 0);
			assert_int_equal(pack_stream_plan(s, b0, 2, &err), 0);
			if (walk(s, b0, image, &err))
				fail_msg("%s: %s", cases[i].name, err.message);
			s->ops->close(s);
			bmaptk_bmap_free(b0);
		}
	}
	bmaptk_bmap_free(b);
}

static void test_corrupt_layout(void **state)
{
	struct bmaptk_bmap *b = test_bmap();
	struct bmaptk_error err = {0};
	struct bmaptk_stream *s;
	struct pk p;

	(void)state;
	pk_init(&p, image, IMG_SIZE, CS, b);
	pk_write(&p, "short.zst", 1);
	expect_open_error("short.zst", "its index accounts for");
	p.index[5] += 100;
	pk_write(&p, "long.zst", 0);
	expect_open_error("long.zst", "its index accounts for");
	p.index[5] = 3;
	pk_write(&p, "tiny.zst", 0);
	expect_open_error("tiny.zst", "the index gives frame 5 3 bytes");
	p.index[5] = p.flen[5];
	p.version = 2;
	pk_write(&p, "version.zst", 0);
	expect_open_error("version.zst", "unsupported pack version");
	p.version = PACK_VERSION;
	/* The seek table and the end of frame 11 missing. */
	pk_write(&p, "cut.zst", 8 + 8 * (NCHUNKS + 1) + PACK_SEEK_FOOTER + 10);
	expect_open_error("cut.zst", "its index accounts for");

	/* A pipe: the size is not known, the cut is found in frame 11. */
	rec_unknown_size = 1;
	s = open_ok("cut.zst", 1);
	assert_int_equal(pack_stream_plan(s, b, 2, &err), 0);
	expect_read_error(s, b, "the file ends inside frame 11");
	s->ops->close(s);
	pk_write(&p, "cutbmap.zst", (size_t)(p.flen[10] + p.flen[11] + 200));
	rec_unknown_size = 0;
	pk_free(&p);

	/* Cut inside the bmap frame. */
	{
		char path[PATH_MAX];
		assert_int_equal(truncate(tmp_path(path, "cutbmap.zst"), 300),
				 0);
		expect_open_error("cutbmap.zst",
				  "the file ends inside the bmap frame");
	}
	bmaptk_bmap_free(b);
}

/* A bmap frame declaring a huge bmap or signature is refused before
 * anything is allocated for it. */
static void test_declared_sizes(void **state)
{
	static const struct {
		uint32_t bmap_len, sig_len;
		const char *what;
	} cases[] = {
	    {BMAPTK_BMAP_MAX_FILE + 1, 0, "its bmap of 268435457 bytes"},
	    {100, (1u << 20) + 1, "its signature of 1048577 bytes"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pack_header h = {.version = PACK_VERSION,
					.chunk_size = CS,
					.image_size = CS,
					.nchunks = 1,
					.bmap_len = cases[i].bmap_len,
					.sig_len = cases[i].sig_len};
		unsigned char hdr[PACK_HEADER_SIZE];
		char path[PATH_MAX];
		FILE *f = fopen(tmp_path(path, "huge.zst"), "wb");
		assert_non_null(f);
		put_u32(f, PACK_MAGIC_BMAP);
		put_u32(f, PACK_HEADER_SIZE + 4 + h.bmap_len + h.sig_len);
		pack_header_put(hdr, &h);
		put_bytes(f, hdr, sizeof(hdr));
		put_u32(f, 100);
		assert_int_equal(fclose(f), 0);
		expect_open_error("huge.zst", cases[i].what);
	}
}

/* pack_stream_check_file: the seek table and the planned frames' headers
 * of a local file. */
static void test_check_file(void **state)
{
	struct bmaptk_bmap *b = test_bmap();
	uint64_t only[1][2] = {{0, 3}};
	struct bmaptk_bmap *b0 = make_bmap(image, IMG_SIZE, only, 1);
	struct bmaptk_error err = {0};
	struct bmaptk_stream *s;
	char path[PATH_MAX];
	struct pk p;

	(void)state;
	pk_init(&p, image, IMG_SIZE, CS, b);
	pk_write(&p, "check.zst", 0);
	s = open_ok("check.zst", 0);
	assert_int_equal(
	    pack_stream_check_file(s, tmp_path(path, "check.zst"), &err), 0);
	s->ops->close(s);

	p.bad_table_entry = 7;
	pk_write(&p, "table.zst", 0);
	s = open_ok("table.zst", 0);
	assert_int_equal(
	    pack_stream_check_file(s, tmp_path(path, "table.zst"), &err),
	    BMAPTK_ERR_USAGE);
	assert_non_null(strstr(err.message, "corrupt packed image: the seek "
					    "table disagrees with the index "
					    "at entry 7"));
	s->ops->close(s);
	p.bad_table_entry = -1;
	pk_free(&p);

	write_std("nosize.zst", spoil_content_size); /* frame 0 */
	write_std("nosum.zst", spoil_checksum_flag); /* frame 11 */
	s = open_ok("nosum.zst", 0);
	assert_int_equal(
	    pack_stream_check_file(s, tmp_path(path, "nosum.zst"), &err),
	    BMAPTK_ERR_USAGE);
	assert_non_null(strstr(err.message, "frame 11 (at byte"));
	assert_int_equal(pack_stream_plan(s, b0, 1, &err), 0);
	assert_int_equal(
	    pack_stream_check_file(s, tmp_path(path, "nosum.zst"), &err), 0);
	s->ops->close(s);
	s = open_ok("nosize.zst", 0);
	assert_int_equal(pack_stream_plan(s, b0, 1, &err), 0);
	assert_int_equal(
	    pack_stream_check_file(s, tmp_path(path, "nosize.zst"), &err),
	    BMAPTK_ERR_USAGE);
	assert_non_null(strstr(err.message, "frame 0 (at byte"));
	s->ops->close(s);
	bmaptk_bmap_free(b0);
	bmaptk_bmap_free(b);
}

/* ---- setup -------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct bmaptk_error err = {0};
	struct bmaptk_bmap *b;

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bmaptk-pack-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	reg = bmaptk_registry_new();
	image = calloc(1, IMG_SIZE);
	if (!reg || !image ||
	    bmaptk_registry_add(reg, &rec_module, "test", &err))
		return -1;
	/* Mapped blocks hold data, the rest zeros: the pack's bytes. */
	b = calloc(1, sizeof(*b));
	b->image_size = IMG_SIZE;
	b->block_size = BLOCK;
	for (size_t i = 0; i < NRANGES; i++) {
		struct bmaptk_range r = {.first = ranges[i][0],
					 .last = ranges[i][1]};
		uint64_t off, len;
		bmaptk_range_span(b, &r, &off, &len);
		fill(image + off, (size_t)len, i + 1);
	}
	free(b);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	bmaptk_registry_free(reg);
	free(image);
	return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_probe_and_embedded),
	    cmocka_unit_test(test_unsigned_and_plain_zstd),
	    cmocka_unit_test(test_read_all),
	    cmocka_unit_test(test_plan_gaps),
	    cmocka_unit_test(test_copy_engine),
	    cmocka_unit_test(test_skip_and_unplanned),
	    cmocka_unit_test(test_close_anytime),
	    cmocka_unit_test(test_many_chunks),
	    cmocka_unit_test(test_big_frames),
	    cmocka_unit_test(test_corrupt_frames),
	    cmocka_unit_test(test_corrupt_layout),
	    cmocka_unit_test(test_declared_sizes),
	    cmocka_unit_test(test_check_file),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
