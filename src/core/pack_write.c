/* The packed-image writer (docs/pack.md).
 *
 * One worker thread a core takes the next chunk that holds mapped blocks,
 * preads those blocks into a zeroed chunk buffer, hashes each range (the
 * ranges lie inside chunks, so a chunk's digests are its own) and
 * compresses the chunk into one zstd frame. The calling thread writes the
 * frames in order as they complete; a chunk with no mapped block is
 * never read: its frame is the zero chunk's, compressed once at the start.
 * Chunks in flight are bounded (slots), so memory does not grow with the
 * image.
 *
 * The bmap frame comes first in the file but its bmap carries the digests
 * computed while packing. Its size does not depend on them, though: the
 * bmap's text has fixed-width hex digests, and the frame sizes are 4
 * bytes each. So the frames are written after a gap of exactly that size,
 * and the bmap frame fills the gap once everything else is known. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_estimateCCtxSize_usingCParams */
#include <zstd.h>
#include <zstd_errors.h>

#include "../codecs/pack_format.h"
#include "pack_write.h"
#include "util.h"

#define MEM_BUDGET    (52u << 20) /* buffers and compressors, all workers */
#define STAGE_SIZE    (1u << 20)  /* small frames are gathered into writes */
#define WAIT_NS	      200000000L  /* re-check for a signal this often */
#define PROGRESS_STEP (4u << 20)  /* report at most every few MiB */
#define SHA256_LEN    32

enum slot_state { SLOT_FREE, SLOT_BUSY, SLOT_DONE };

/* One chunk in flight: its input, its frame, and how it went. */
struct slot {
	enum slot_state state;
	uint64_t seq;	 /* which data chunk (0: the first holding data) */
	uint64_t chunk;	 /* its index in the image */
	size_t r0, r1;	 /* its ranges, [r0, r1) */
	size_t len;	 /* its bytes (the last chunk may be shorter) */
	uint64_t mapped; /* bytes of it mapped */
	unsigned char *in, *out;
	size_t out_len;
	int status; /* 0, or why it failed (message in err) */
	struct bmaptk_error err;
};

struct packer {
	/* What to pack. */
	int fd, out_fd;
	const char *image, *out;
	struct bmaptk_bmap *b;
	const struct pack_write_opts *opts;
	uint64_t nchunks;
	size_t out_cap; /* each slot's frame buffer */
	/* Shared between the workers and the writer, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t work; /* a slot became free, or stop */
	pthread_cond_t done; /* a slot's frame is ready */
	struct slot *slots;
	unsigned nslots;
	uint64_t next_seq;    /* data chunks handed out */
	uint64_t written_seq; /* data chunks written */
	size_t next_range;    /* first range not handed out */
	int stop;
	/* The writer's own. */
	unsigned char *stage; /* frames not yet written, from stage_off */
	size_t stage_len;
	uint64_t stage_off, pos; /* pos: the file offset after the last */
	unsigned char *index;	 /* the frame sizes, as the bmap frame has */
	unsigned char *zero, *zero_last; /* hole frames: whole, last chunk */
	size_t zero_len, zero_last_len;
};

static uint64_t chunk_of(const struct packer *p, size_t r)
{
	return p->b->ranges[r].first * p->b->block_size / p->opts->chunk_size;
}

static size_t chunk_len(const struct packer *p, uint64_t c)
{
	uint64_t off = c * p->opts->chunk_size;

	return (size_t)MIN(p->opts->chunk_size, p->b->image_size - off);
}

/* ---- a worker: read, hash, compress ---------------------------------- */

static int compress(ZSTD_CCtx *cctx, void *out, size_t cap, const void *in,
		    size_t len, size_t *out_len, const char *image,
		    struct bmaptk_error *err)
{
	size_t n = ZSTD_compress2(cctx, out, cap, in, len);

	if (ZSTD_isError(n))
		return bmaptk_set_error(
		    err, BMAPTK_ERR_IO,
		    ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation
			? ENOMEM
			: 0,
		    "%s: zstd: %s", image, ZSTD_getErrorName(n));
	*out_len = n;
	return 0;
}

/* Fill s->in with the chunk's mapped bytes (zeros elsewhere) and check or
 * set each range's digest. */
static int read_chunk(struct packer *p, struct slot *s, struct bmaptk_hasher *h)
{
	struct bmaptk_bmap *b = p->b;
	uint64_t base = s->chunk * p->opts->chunk_size;
	unsigned char got[BMAPTK_HASH_MAX];
	size_t at = 0;

	s->mapped = 0;
	for (size_t i = s->r0; i < s->r1; i++) {
		struct bmaptk_range *r = &b->ranges[i];
		uint64_t off, len;
		size_t rel;
		ssize_t n;

		bmaptk_range_span(b, r, &off, &len);
		rel = (size_t)(off - base);
		memset(s->in + at, 0, rel - at);
		n = pread_full(p->fd, s->in + rel, (size_t)len, off);
		if (n < 0)
			return bmaptk_set_error(&s->err, BMAPTK_ERR_IO, errno,
						"%s: read error: %s", p->image,
						strerror(errno));
		if ((uint64_t)n < len)
			return bmaptk_set_error(
			    &s->err, BMAPTK_ERR_USAGE, 0,
			    "%s: the image ends before the bmap says it does",
			    p->image);
		bmaptk_hasher_update(h, s->in + rel, (size_t)len);
		bmaptk_hasher_final(h, got);
		if (p->opts->bmap_doc ||
		    (p->opts->check && p->opts->check[i])) {
			if (memcmp(got, r->digest, SHA256_LEN))
				return bmaptk_set_error(
				    &s->err, BMAPTK_ERR_VERIFY, 0,
				    "%s does not describe %s: range %zu "
				    "(blocks %llu-%llu) differs",
				    p->opts->bmap_name, p->image, i + 1,
				    (unsigned long long)r->first,
				    (unsigned long long)r->last);
		} else {
			memcpy(r->digest, got, SHA256_LEN);
		}
		at = rel + (size_t)len;
		s->mapped += len;
	}
	memset(s->in + at, 0, s->len - at);
	return 0;
}

struct worker {
	struct packer *p;
	ZSTD_CCtx *cctx;
	struct bmaptk_hasher *h;
	pthread_t thread;
	int started;
};

/* Under lock: the next data chunk into its slot, or NULL when there is
 * none left or the run stops. Waits while every slot is taken. */
static struct slot *take_chunk(struct packer *p)
{
	const struct bmaptk_bmap *b = p->b;
	struct slot *s;
	size_t r;

	while (!p->stop && p->next_range < b->nranges &&
	       p->next_seq >= p->written_seq + p->nslots)
		pthread_cond_wait(&p->work, &p->lock);
	if (p->stop || p->next_range >= b->nranges)
		return NULL;
	s = &p->slots[p->next_seq % p->nslots];
	s->seq = p->next_seq++;
	s->chunk = chunk_of(p, p->next_range);
	s->len = chunk_len(p, s->chunk);
	s->r0 = r = p->next_range;
	while (r < b->nranges && chunk_of(p, r) == s->chunk)
		r++;
	s->r1 = p->next_range = r;
	s->state = SLOT_BUSY;
	s->status = 0;
	return s;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct packer *p = w->p;
	struct slot *s;

	pthread_mutex_lock(&p->lock);
	while ((s = take_chunk(p))) {
		pthread_mutex_unlock(&p->lock);
		s->status = read_chunk(p, s, w->h);
		if (!s->status)
			s->status =
			    compress(w->cctx, s->out, p->out_cap, s->in, s->len,
				     &s->out_len, p->image, &s->err);
		pthread_mutex_lock(&p->lock);
		s->state = SLOT_DONE;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* ---- the writer ------------------------------------------------------- */

static int flush_stage(struct packer *p, struct bmaptk_error *err)
{
	if (!p->stage_len)
		return 0;
	if (pwrite_full(p->out_fd, p->stage, p->stage_len, p->stage_off))
		return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
					"%s: write error: %s", p->out,
					strerror(errno));
	p->stage_off += p->stage_len;
	p->stage_len = 0;
	return 0;
}

/* Append len bytes at p->pos: gathered while small, else written. */
static int emit(struct packer *p, const void *buf, size_t len,
		struct bmaptk_error *err)
{
	if (len >= STAGE_SIZE / 2) {
		if (flush_stage(p, err))
			return err->status;
		if (pwrite_full(p->out_fd, buf, len, p->pos))
			return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
						"%s: write error: %s", p->out,
						strerror(errno));
		p->stage_off = p->pos + len;
	} else {
		if (p->stage_len + len > STAGE_SIZE && flush_stage(p, err))
			return err->status;
		memcpy(p->stage + p->stage_len, buf, len);
		p->stage_len += len;
	}
	p->pos += len;
	return 0;
}

static int interrupted(const struct packer *p)
{
	return p->opts->interrupted && *p->opts->interrupted;
}

/* Wait for data chunk seq's frame. Returns its slot, or NULL when
 * interrupted. */
static struct slot *wait_chunk(struct packer *p, uint64_t seq)
{
	struct slot *s = &p->slots[seq % p->nslots];
	struct timespec ts;

	pthread_mutex_lock(&p->lock);
	while (!(s->state == SLOT_DONE && s->seq == seq) && !interrupted(p)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += WAIT_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->done, &p->lock, &ts);
	}
	pthread_mutex_unlock(&p->lock);
	return interrupted(p) ? NULL : s;
}

static void free_slot(struct packer *p, struct slot *s)
{
	pthread_mutex_lock(&p->lock);
	s->state = SLOT_FREE;
	p->written_seq++;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
}

/* Every chunk's frame in order, from p->pos. */
static int write_frames(struct packer *p, struct pack_write_stats *st,
			struct bmaptk_error *err)
{
	const struct bmaptk_progress *pr = &p->opts->progress;
	uint64_t seq = 0, done = 0, told = 0;
	size_t r = 0;

	for (uint64_t c = 0; c < p->nchunks; c++) {
		const unsigned char *frame = p->zero;
		size_t len = p->zero_len;
		struct slot *s = NULL;

		if (interrupted(p))
			return BMAPTK_ERR_INTERRUPTED;
		if (r < p->b->nranges && chunk_of(p, r) == c) {
			if (!(s = wait_chunk(p, seq)))
				return BMAPTK_ERR_INTERRUPTED;
			if (s->status) {
				*err = s->err;
				return s->status;
			}
			frame = s->out;
			len = s->out_len;
			r = s->r1;
			done += s->mapped;
			seq++;
		} else if (chunk_len(p, c) < p->opts->chunk_size) {
			frame = p->zero_last;
			len = p->zero_last_len;
		}
		pack_put32(p->index + 4 * c, (uint32_t)len);
		if (emit(p, frame, len, err))
			return err->status;
		if (s)
			free_slot(p, s);
		if (pr->update && done - told >= PROGRESS_STEP) {
			pr->update(pr->ctx, done, st->mapped);
			told = done;
		}
	}
	st->data_chunks = (uint32_t)seq;
	if (pr->update)
		pr->update(pr->ctx, done, st->mapped);
	return 0;
}

/* zstd's seek table: entry 0 the bmap frame, then every chunk. */
static int write_seek_table(struct packer *p, uint32_t bmap_frame,
			    struct bmaptk_error *err)
{
	unsigned char e[9];
	uint64_t entries = p->nchunks + 1;

	pack_put32(e, PACK_MAGIC_SEEKTABLE);
	pack_put32(e + 4, (uint32_t)(8 * entries + PACK_SEEK_FOOTER));
	if (emit(p, e, 8, err))
		return err->status;
	pack_put32(e, bmap_frame);
	pack_put32(e + 4, 0);
	if (emit(p, e, 8, err))
		return err->status;
	for (uint64_t c = 0; c < p->nchunks; c++) {
		memcpy(e, p->index + 4 * c, 4);
		pack_put32(e + 4, (uint32_t)chunk_len(p, c));
		if (emit(p, e, 8, err))
			return err->status;
	}
	pack_put32(e, (uint32_t)entries);
	e[4] = 0; /* descriptor: no checksums */
	pack_put32(e + 5, PACK_SEEKABLE_MAGIC);
	if (emit(p, e, PACK_SEEK_FOOTER, err))
		return err->status;
	return flush_stage(p, err);
}

/* The bmap frame at offset 0: header, frame sizes, bmap, signature. */
static int write_bmap_frame(struct packer *p, const char *doc, size_t len,
			    struct bmaptk_error *err)
{
	const struct pack_write_opts *o = p->opts;
	struct pack_header h = {
	    .version = PACK_VERSION,
	    .chunk_size = o->chunk_size,
	    .image_size = p->b->image_size,
	    .nchunks = (uint32_t)p->nchunks,
	    .bmap_len = (uint32_t)len,
	    .sig_len = (uint32_t)o->sig_len,
	};
	unsigned char head[PACK_FRAME_HEADER + PACK_HEADER_SIZE];
	uint64_t at = sizeof(head);
	struct {
		const void *buf;
		uint64_t len;
	} parts[] = {
	    {p->index, 4 * p->nchunks}, {doc, len}, {o->sig, o->sig_len}};

	pack_put32(head, PACK_MAGIC_BMAP);
	pack_put32(head + 4, (uint32_t)(PACK_HEADER_SIZE + 4 * p->nchunks +
					len + o->sig_len));
	pack_header_put(head + PACK_FRAME_HEADER, &h);
	if (pwrite_full(p->out_fd, head, sizeof(head), 0))
		goto fail;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (parts[i].len &&
		    pwrite_full(p->out_fd, parts[i].buf, parts[i].len, at))
			goto fail;
		at += parts[i].len;
	}
	return 0;
fail:
	return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
				"%s: write error: %s", p->out, strerror(errno));
}

/* ---- setup ------------------------------------------------------------ */

/* Workers and slots within the memory budget: two slots a worker, fewer
 * with big chunks or hungry levels, at least one of each. */
static void size_pool(struct packer *p, unsigned *workers, unsigned *slots)
{
	ZSTD_compressionParameters cp =
	    ZSTD_getCParams(p->opts->level, p->opts->chunk_size, 0);
	uint64_t cctx = ZSTD_estimateCCtxSize_usingCParams(cp);
	uint64_t slot = p->opts->chunk_size + p->out_cap;
	unsigned w = p->opts->threads ? p->opts->threads : online_cpus();
	unsigned s = 2 * w;

	while (s > w && w * cctx + s * slot > MEM_BUDGET)
		s--;
	while (w > 1 && w * cctx + w * slot > MEM_BUDGET)
		s = --w;
	*workers = w;
	*slots = s;
}

static int oom(struct packer *p, struct bmaptk_error *err)
{
	return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM, "%s: out of memory",
				p->image);
}

static ZSTD_CCtx *new_cctx(int level)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();

	if (c &&
	    (ZSTD_isError(
		 ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)) ||
	     ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)) ||
	     ZSTD_isError(
		 ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1)) ||
	     ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, 0)))) {
		ZSTD_freeCCtx(c);
		return NULL;
	}
	return c;
}

/* The frames of a chunk with no mapped block: a whole one and, if the
 * image ends inside a chunk, the last one. */
static int make_zero_frames(struct packer *p, ZSTD_CCtx *cctx,
			    struct bmaptk_error *err)
{
	struct slot *s = &p->slots[0];
	size_t last = (size_t)(p->b->image_size % p->opts->chunk_size);

	memset(s->in, 0, p->opts->chunk_size);
	if (compress(cctx, s->out, p->out_cap, s->in, p->opts->chunk_size,
		     &p->zero_len, p->image, err))
		return err->status;
	if (!(p->zero = malloc(p->zero_len)))
		return oom(p, err);
	memcpy(p->zero, s->out, p->zero_len);
	if (!last)
		return 0;
	if (compress(cctx, s->out, p->out_cap, s->in, last, &p->zero_last_len,
		     p->image, err))
		return err->status;
	if (!(p->zero_last = malloc(p->zero_last_len)))
		return oom(p, err);
	memcpy(p->zero_last, s->out, p->zero_last_len);
	return 0;
}

/* The bmap's length once its digests are in: formatted now with
 * whatever digests it holds, which have the same width. */
static int bmap_length(struct packer *p, size_t *len, struct bmaptk_error *err)
{
	char *doc;

	if (p->opts->bmap_doc) {
		*len = p->opts->bmap_len;
		return 0;
	}
	p->b->hash_type = BMAPTK_HASH_SHA256;
	p->b->range_digests = 1;
	if (!(doc = bmaptk_bmap_format(p->b, len)))
		return oom(p, err);
	free(doc);
	return 0;
}

static int run_workers(struct packer *p, struct worker *w, unsigned nw,
		       struct pack_write_stats *st, struct bmaptk_error *err)
{
	int rc = 0;

	for (unsigned i = 0; i < nw && !rc; i++) {
		w[i].p = p;
		if (pthread_create(&w[i].thread, NULL, work, &w[i]))
			rc = bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
					      "%s: cannot start a thread",
					      p->image);
		else
			w[i].started = 1;
	}
	if (!rc)
		rc = write_frames(p, st, err);
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < nw; i++)
		if (w[i].started)
			pthread_join(w[i].thread, NULL);
	return rc;
}

static int finish(struct packer *p, uint64_t frame_size, char **doc,
		  size_t *doc_len, size_t want_len, struct bmaptk_error *err)
{
	const struct pack_write_opts *o = p->opts;

	if (write_seek_table(p, (uint32_t)frame_size, err))
		return err->status;
	if (o->bmap_doc) {
		*doc_len = o->bmap_len;
		if ((*doc = malloc(o->bmap_len + 1))) {
			memcpy(*doc, o->bmap_doc, o->bmap_len);
			(*doc)[o->bmap_len] = '\0';
		}
	} else {
		*doc = bmaptk_bmap_format(p->b, doc_len);
	}
	if (!*doc)
		return oom(p, err);
	if (*doc_len != want_len)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, 0,
					"%s: internal error: the bmap is %zu "
					"bytes, %zu were reserved",
					p->out, *doc_len, want_len);
	return write_bmap_frame(p, *doc, *doc_len, err);
}

static int setup(struct packer *p, struct worker *w, unsigned nw,
		 struct bmaptk_error *err)
{
	if (!nw) /* callers make one worker at least */
		return bmaptk_set_error(err, BMAPTK_ERR_IO, 0, "%s: no worker",
					p->out);
	if (!(p->stage = malloc(STAGE_SIZE)) ||
	    !(p->index = calloc(p->nchunks ? p->nchunks : 1, 4)) ||
	    !(p->slots = calloc(p->nslots, sizeof(*p->slots))))
		return oom(p, err);
	for (unsigned i = 0; i < p->nslots; i++)
		if (!(p->slots[i].in = malloc(p->opts->chunk_size)) ||
		    !(p->slots[i].out = malloc(p->out_cap)))
			return oom(p, err);
	for (unsigned i = 0; i < nw; i++)
		if (!(w[i].cctx = new_cctx(p->opts->level)) ||
		    !(w[i].h = bmaptk_hasher_new(BMAPTK_HASH_SHA256)))
			return oom(p, err);
	return make_zero_frames(p, w[0].cctx, err);
}

static void teardown(struct packer *p, struct worker *w, unsigned nw)
{
	for (unsigned i = 0; p->slots && i < p->nslots; i++) {
		free(p->slots[i].in);
		free(p->slots[i].out);
	}
	for (unsigned i = 0; w && i < nw; i++) {
		ZSTD_freeCCtx(w[i].cctx);
		bmaptk_hasher_free(w[i].h);
	}
	free(w);
	free(p->slots);
	free(p->stage);
	free(p->index);
	free(p->zero);
	free(p->zero_last);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
}

int pack_level_ok(long level)
{
	return (level >= 1 && level <= 19) ||
	       (level < 0 && level >= ZSTD_minCLevel());
}

/* What the caller promised: a chunk count the format holds, digests for
 * a bmap embedded as it is, and ranges on the chunk grid. */
static int check_input(const struct packer *p, struct bmaptk_error *err)
{
	const struct bmaptk_bmap *b = p->b;
	const struct pack_write_opts *o = p->opts;
	uint64_t off, len;

	if (p->nchunks > PACK_MAX_CHUNKS)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: %llu chunks; a packed image holds at most %u: use "
		    "a larger --chunk",
		    p->image, (unsigned long long)p->nchunks, PACK_MAX_CHUNKS);
	if (o->bmap_doc &&
	    (b->hash_type != BMAPTK_HASH_SHA256 || !b->range_digests))
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: a bmap embedded as it is needs "
					"SHA-256 range checksums",
					o->bmap_name);
	for (size_t i = 0; i < b->nranges; i++) {
		bmaptk_range_span(b, &b->ranges[i], &off, &len);
		if (len &&
		    off / o->chunk_size != (off + len - 1) / o->chunk_size)
			return bmaptk_set_error(
			    err, BMAPTK_ERR_USAGE, 0,
			    "%s: range %zu crosses the chunk grid",
			    o->bmap_name, i + 1);
	}
	return 0;
}

int pack_write(int image_fd, const char *image_name, int out_fd,
	       const char *out_name, struct bmaptk_bmap *b,
	       const struct pack_write_opts *opts, char **doc, size_t *doc_len,
	       struct pack_write_stats *stats, struct bmaptk_error *err)
{
	struct packer p = {
	    .fd = image_fd,
	    .out_fd = out_fd,
	    .image = image_name,
	    .out = out_name,
	    .b = b,
	    .opts = opts,
	    .lock = PTHREAD_MUTEX_INITIALIZER,
	    .work = PTHREAD_COND_INITIALIZER,
	    .done = PTHREAD_COND_INITIALIZER,
	};
	struct worker *w = NULL;
	unsigned nw;
	uint64_t payload, frame;
	size_t bmap_len;
	int rc;

	*doc = NULL;
	*doc_len = 0;
	memset(stats, 0, sizeof(*stats));
	p.nchunks = (b->image_size + opts->chunk_size - 1) / opts->chunk_size;
	p.out_cap = ZSTD_compressBound(opts->chunk_size);
	stats->nchunks = (uint32_t)p.nchunks;
	stats->mapped = bmaptk_bmap_mapped_bytes(b);
	rc = check_input(&p, err);
	if (!rc)
		rc = bmap_length(&p, &bmap_len, err);
	if (rc)
		return rc;
	payload = PACK_HEADER_SIZE + 4 * p.nchunks + bmap_len + opts->sig_len;
	frame = PACK_FRAME_HEADER + payload;
	if (payload > UINT32_MAX || frame > UINT32_MAX)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: the bmap and its index (%llu "
					"bytes) do not fit a zstd frame",
					image_name,
					(unsigned long long)payload);
	size_pool(&p, &nw, &p.nslots);
	stats->threads = nw;
	stats->slots = p.nslots;
	if (!(w = calloc(nw, sizeof(*w))))
		rc = oom(&p, err);
	if (!rc)
		rc = setup(&p, w, nw, err);
	p.pos = p.stage_off = frame; /* the gap for the bmap frame */
	if (!rc)
		rc = run_workers(&p, w, nw, stats, err);
	if (!rc)
		rc = finish(&p, frame, doc, doc_len, bmap_len, err);
	if (rc) {
		free(*doc);
		*doc = NULL;
		*doc_len = 0;
	}
	stats->packed = p.pos;
	teardown(&p, w, nw);
	return rc;
}
