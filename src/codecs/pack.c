/* The reader of packed images (docs/pack.md): a zstd seekable file whose
 * first frame holds the frame sizes, the bmap and its signature.
 *
 * open reads that frame and keeps it; nothing else is read until the plan
 * (pack.h) says which chunks the copy needs. Then:
 *
 * - a fetcher thread walks the frames in file order, forward only: it
 *   skips the unneeded ones with the inner stream's skip and reads each run
	of consecutive needed frames, up to RUN_CAP bytes, with one read call
 *   (an HTTP source turns it into one request) into the input ring, a
 *   buffer allocated once (so its pages are faulted in once);
 * - worker threads, one a core, decode each frame with one-shot
 *   ZSTD_decompressDCtx straight into a slot, after checking its header
 *   (zstd magic, checksum flag, content size = the chunk's length) and
 *   that it is exactly as long as the index says; zstd checks the
 *   checksum;
 * - read() copies decoded bytes out of the slots in image order.
 *
 * Every needed frame is one job, numbered by its place in the plan (its
 * sequence). Job q decodes into slot q % nslots, and only once the reader
 * has freed that slot; workers take jobs in order, so the job the reader
 * waits for always has its slot and nothing can deadlock. A job the
 * reader has already passed (it skipped a planned chunk) is dropped
 * undecoded.
 *
 * Memory: the index, the bmap and the signature (bounded at open), the
 * slots (at most OUT_BUDGET of decoded chunks, at least two chunks) and the
 * input ring (IN_RING of fetched compressed bytes; a frame bigger than
 * that is fetched alone into a buffer of its own). For 1 MiB chunks that
 * is at most 48 MiB whatever the core count, 20 MiB on 2 cores; a large
 * --chunk costs two chunks at least.
 *
 * Errors of the fetcher or a worker are kept and returned by the next
 * read; close stops and joins every thread at any point. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>
#include <zstd_errors.h>

#include <bmaptk/bmaptk.h>

#include "pack.h"
#include "pack_format.h"
#include "util.h"

#define SIG_MAX	      (1u << 20)   /* a detached signature, at most */
#define INDEX_MAX     (256u << 20) /* bytes of frame sizes, at most */
#define RUN_CAP	      (8u << 20)   /* compressed bytes one read asks for */
#define SKIP_STEP     (64u << 20)  /* skipped at once, at most */
#define IN_RING	      (16u << 20)  /* compressed bytes fetched, not decoded */
#define OUT_BUDGET    (32u << 20)  /* decoded bytes in slots */
#define JOB_RING      4096	   /* frames fetched, not yet taken */
#define RUN_JOBS_MAX  (JOB_RING / 2)
#define MAX_WORKERS   64
#define RUN_RING      (JOB_RING + MAX_WORKERS) /* runs queued or decoding */
#define ZSTD_MAGIC    0xFD2FB528u
#define ZSTD_CHECKSUM 0x04 /* Content_Checksum_flag of the descriptor */
#define HEADER_MAX    18   /* ZSTD_FRAMEHEADERSIZE_MAX, with the magic */
#define CHECK_BUF     (1u << 20)

/* Frames read with one call. They lie in the input ring, or, for one
 * frame bigger than the ring, in a buffer of their own. */
struct run {
	uint64_t start; /* in the ring: bytes reserved before it */
	size_t len;
	unsigned refs;	    /* its jobs not yet decoded */
	unsigned char *own; /* or its own buffer */
};

struct job {
	uint32_t chunk;
	uint32_t len; /* compressed */
	uint64_t file_off;
	const unsigned char *src;
	uint64_t run; /* its run's sequence */
};

enum slot_state { SLOT_FREE, SLOT_BUSY, SLOT_READY, SLOT_FAILED };

struct slot {
	enum slot_state state;
	uint64_t seq; /* job decoded (being decoded) into it */
	unsigned char *buf;
};

struct pack;

struct worker {
	struct pack *s;
	pthread_t tid;
	ZSTD_DCtx *dctx;
};

struct pack {
	struct bmaptk_stream base;
	struct bmaptk_stream *inner;
	struct pack_header h;
	uint32_t *fsize; /* compressed size of each chunk's frame */
	char *bmap;	 /* NUL-terminated */
	char *sig;
	uint64_t data_start; /* file offset of frame 0 */
	uint64_t file_size;  /* what the index adds up to */

	int planned;	/* plan set, threads started */
	uint64_t *plan; /* bit per chunk; NULL: every chunk */
	uint64_t nplanned, planned_bytes;

	pthread_mutex_t lock;
	pthread_cond_t work_cv;	 /* job queued, slot freed, stop */
	pthread_cond_t fetch_cv; /* job taken, input freed, stop */
	pthread_cond_t out_cv;	 /* slot decoded, failure */
	int stop, failed, fetch_done;
	uint64_t fail_seq;	 /* the first failing job, in plan order */
	struct bmaptk_error err; /* its error */
	pthread_t fetch_tid;
	int fetch_started;
	struct worker *workers;
	unsigned nworkers, nstarted;

	struct job ring[JOB_RING];
	uint64_t jobs_head, jobs_tail; /* sequences taken, queued */
	/* Runs leave the input ring in the order they came: a run's bytes
	 * are free once it and every run before it are decoded. */
	unsigned char *in;	   /* the input ring, IN_RING bytes */
	uint64_t in_head, in_tail; /* bytes reserved, freed so far */
	struct run runs[RUN_RING];
	uint64_t runs_head, runs_tail; /* runs freed, published */
	struct slot *slots;
	unsigned nslots;

	/* the reader; consumed and the slots' states under the lock */
	uint64_t pos;
	uint64_t consumed;  /* sequence of the chunk being read */
	uint64_t cur_chunk; /* its chunk (h.nchunks: none left) */
	struct slot *cur;   /* its slot, once decoded */

	/* for -d */
	uint64_t n_reads, n_skips, n_fetched, fetched_bytes, n_decoded;
};

/* ---- small helpers ------------------------------------------------------ */

/* "NAME: corrupt packed image: WHY", a bad-input error. */
static int corrupt(struct bmaptk_error *err, const char *name, const char *fmt,
		   ...) __attribute__((format(printf, 3, 4)));
static int corrupt(struct bmaptk_error *err, const char *name, const char *fmt,
		   ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				"%s: corrupt packed image: %s", name, why);
}

static int oom(struct bmaptk_error *err, const char *name)
{
	return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM, "%s: out of memory",
				name);
}

static uint64_t chunk_start(const struct pack *s, uint64_t c)
{
	return c * s->h.chunk_size;
}

static uint64_t chunk_len(const struct pack *s, uint64_t c)
{
	return MIN((uint64_t)s->h.chunk_size,
		   s->h.image_size - chunk_start(s, c));
}

static int is_planned(const struct pack *s, uint64_t c)
{
	return !s->plan || (s->plan[c / 64] >> (c % 64) & 1);
}

/* The first planned chunk from c on, or h.nchunks. */
static uint64_t next_planned(const struct pack *s, uint64_t c)
{
	uint64_t n = s->h.nchunks;

	if (!s->plan)
		return MIN(c, n);
	while (c < n) {
		uint64_t w = s->plan[c / 64] >> (c % 64);
		if (w)
			return MIN(c + (uint64_t)__builtin_ctzll(w), n);
		c = (c / 64 + 1) * 64;
	}
	return n;
}

/* Record a failure of job seq (lock held). The first in plan order is
 * kept: read() reports it once it reaches that job or passes it, so the
 * error is the same whichever worker failed first. */
static void note_failure(struct pack *s, const struct bmaptk_error *e,
			 uint64_t seq)
{
	if (!s->failed || seq < s->fail_seq) {
		s->failed = 1;
		s->fail_seq = seq;
		s->err = *e;
	}
	pthread_cond_broadcast(&s->out_cv);
}

/* Whether the reader has reached a failure (lock held). */
static int failure_due(const struct pack *s)
{
	return s->failed && s->fail_seq <= s->consumed;
}

static int report_failure(const struct pack *s, struct bmaptk_error *err)
{
	if (err)
		*err = s->err;
	return s->err.status ? s->err.status : BMAPTK_ERR_IO;
}

/* ---- the bmap frame ----------------------------------------------------- */

static int read_exact(struct pack *s, void *buf, size_t len,
		      struct bmaptk_error *err)
{
	ssize_t n = stream_read_full(s->inner, buf, len, err);

	if (n < 0)
		return err->status;
	if ((size_t)n < len)
		return corrupt(err, s->base.name,
			       "the file ends inside the bmap frame");
	return 0;
}

static int read_index(struct pack *s, struct bmaptk_error *err)
{
	const struct pack_header *h = &s->h;
	unsigned char *p;
	int rc;

	if (4ull * h->nchunks > INDEX_MAX)
		return corrupt(err, s->base.name,
			       "an index of %u frames is too large",
			       h->nchunks);
	if (h->bmap_len > BMAPTK_BMAP_MAX_FILE)
		return corrupt(err, s->base.name,
			       "its bmap of %u bytes is larger than %u bytes",
			       h->bmap_len, BMAPTK_BMAP_MAX_FILE);
	if (h->sig_len > SIG_MAX)
		return corrupt(err, s->base.name,
			       "its signature of %u bytes is larger than %u "
			       "bytes",
			       h->sig_len, SIG_MAX);
	s->fsize = malloc(4 * (size_t)h->nchunks + 4);
	s->bmap = malloc((size_t)h->bmap_len + 1);
	s->sig = h->sig_len ? malloc(h->sig_len) : NULL;
	if (!s->fsize || !s->bmap || (h->sig_len && !s->sig))
		return oom(err, s->base.name);
	p = (unsigned char *)s->fsize;
	if ((rc = read_exact(s, p, 4 * (size_t)h->nchunks, err)) ||
	    (rc = read_exact(s, s->bmap, h->bmap_len, err)) ||
	    (rc = read_exact(s, s->sig, h->sig_len, err)))
		return rc;
	for (size_t i = 0; i < h->nchunks; i++)
		s->fsize[i] = pack_get32(p + 4 * i);
	s->bmap[h->bmap_len] = '\0';
	return 0;
}

static int read_bmap_frame(struct pack *s, struct bmaptk_error *err)
{
	unsigned char head[PACK_FRAME_HEADER + PACK_HEADER_SIZE];
	const char *why;
	uint32_t payload;
	int rc;

	if ((rc = read_exact(s, head, sizeof(head), err)))
		return rc;
	if (pack_get32(head) != PACK_MAGIC_BMAP)
		return corrupt(err, s->base.name,
			       "it does not start with a bmap frame");
	payload = pack_get32(head + 4);
	why = pack_header_get(head + PACK_FRAME_HEADER, payload, &s->h);
	if (why)
		return corrupt(err, s->base.name, "%s", why);
	s->data_start = PACK_FRAME_HEADER + (uint64_t)payload;
	return read_index(s, err);
}

/* The frames and the seek table must fill the file exactly. */
static int check_sizes(struct pack *s, struct bmaptk_error *err)
{
	uint64_t sum = 0, n = s->h.nchunks;

	for (uint64_t c = 0; c < n; c++) {
		uint64_t most = ZSTD_compressBound(chunk_len(s, c)) + 1024;
		if (s->fsize[c] < 9 || s->fsize[c] > most)
			return corrupt(err, s->base.name,
				       "the index gives frame %llu %u bytes, "
				       "no zstd frame of a %llu-byte chunk is "
				       "that size",
				       (unsigned long long)c, s->fsize[c],
				       (unsigned long long)chunk_len(s, c));
		sum += s->fsize[c];
	}
	s->file_size = s->data_start + sum + PACK_FRAME_HEADER + 8 * (n + 1) +
		       PACK_SEEK_FOOTER;
	if (s->inner->size != BMAPTK_SIZE_UNKNOWN &&
	    s->inner->size != s->file_size)
		return corrupt(err, s->base.name,
			       "its index accounts for %llu bytes, the file "
			       "has %llu",
			       (unsigned long long)s->file_size,
			       (unsigned long long)s->inner->size);
	return 0;
}

/* ---- the fetcher -------------------------------------------------------- */

/* Drop a job's reference to its run r (lock held). Returns a buffer of
 * its own to free (outside the lock), if the run had one. */
static unsigned char *run_put(struct pack *s, uint64_t r)
{
	struct run *run = &s->runs[r % RUN_RING];
	unsigned char *own;

	if (--run->refs)
		return NULL;
	own = run->own;
	run->own = NULL;
	while (s->runs_head < s->runs_tail &&
	       !s->runs[s->runs_head % RUN_RING].refs) {
		struct run *h = &s->runs[s->runs_head++ % RUN_RING];
		if (h->start != UINT64_MAX)
			s->in_tail = h->start + h->len;
	}
	pthread_cond_signal(&s->fetch_cv);
	return own;
}

/* Where a run of len bytes fits in the input ring (lock held), or
 * UINT64_MAX while it does not. A run is contiguous: one that would
 * cross the ring's end starts at its beginning. */
static uint64_t in_fit(const struct pack *s, size_t len)
{
	uint64_t start = s->in_head, p = start % IN_RING;

	if (p + len > IN_RING)
		start += IN_RING - p;
	return start + len - s->in_tail <= IN_RING ? start : UINT64_MAX;
}

static int stopping(struct pack *s)
{
	int stop;

	pthread_mutex_lock(&s->lock);
	stop = s->stop;
	pthread_mutex_unlock(&s->lock);
	return stop;
}

/* Read the run of frames [c0, c0 + count) at file offset off into dst.
 * The first call asks for all of it; more only when it comes short. */
static int fetch_read(struct pack *s, unsigned char *dst, size_t len,
		      uint64_t c0, uint64_t off, struct bmaptk_error *e)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n;
		if (stopping(s))
			return -1;
		n = s->inner->ops->read(s->inner, dst + got, len - got, e);
		s->n_reads++;
		if (n < 0)
			return e->status;
		if (n == 0) {
			uint64_t c = c0, at = off;
			while (at + s->fsize[c] <= off + got)
				at += s->fsize[c++];
			return corrupt(e, s->base.name,
				       "the file ends inside frame %llu, at "
				       "byte %llu",
				       (unsigned long long)c,
				       (unsigned long long)(off + got));
		}
		got += (size_t)n;
	}
	return 0;
}

/* Queue the jobs of a fetched run (lock held). */
static void fetch_publish(struct pack *s, const struct run *r,
			  const unsigned char *data, uint64_t c0,
			  unsigned count, uint64_t off)
{
	uint64_t seq = s->runs_tail++;
	size_t at = 0;

	s->runs[seq % RUN_RING] = *r;
	s->runs[seq % RUN_RING].refs = count;
	for (unsigned i = 0; i < count; i++) {
		struct job *j = &s->ring[s->jobs_tail++ % JOB_RING];
		j->chunk = (uint32_t)(c0 + i);
		j->len = s->fsize[c0 + i];
		j->file_off = off + at;
		j->src = data + at;
		j->run = seq;
		at += j->len;
	}
	s->n_fetched += count;
	s->fetched_bytes += r->len;
	pthread_cond_broadcast(&s->work_cv);
}

/* Whether a run of len bytes and count jobs can be fetched now (lock
 * held); sets r->start (UINT64_MAX: a buffer of its own). */
static int fetch_room(struct pack *s, size_t len, unsigned count, struct run *r)
{
	if (JOB_RING - (s->jobs_tail - s->jobs_head) < count ||
	    s->runs_tail - s->runs_head >= RUN_RING)
		return 0;
	if (len > IN_RING) { /* one huge frame, alone in memory */
		r->start = UINT64_MAX;
		return s->runs_head == s->runs_tail;
	}
	r->start = in_fit(s, len);
	return r->start != UINT64_MAX;
}

/* Wait for room for the run and reserve it. Returns 0, or 1 when
 * stopping or after a failure. */
static int fetch_wait(struct pack *s, struct run *r, unsigned count)
{
	int stop;

	pthread_mutex_lock(&s->lock);
	while (!s->stop && !s->failed && !fetch_room(s, r->len, count, r))
		pthread_cond_wait(&s->fetch_cv, &s->lock);
	stop = s->stop || s->failed; /* after a failure, nothing more */
	if (!stop && r->start != UINT64_MAX)
		s->in_head = r->start + r->len;
	pthread_mutex_unlock(&s->lock);
	return stop;
}

/* Fetch the run of planned frames from chunk c (file offset off); the
 * inner stream is at *at. Returns 0, -1 when stopping, or a status. */
static int fetch_run(struct pack *s, uint64_t *c, uint64_t off, uint64_t *at,
		     struct bmaptk_error *e)
{
	uint64_t c0 = *c, n = s->h.nchunks;
	struct run r = {0};
	unsigned char *data;
	unsigned count = 0;
	int rc;

	while (*c < n && is_planned(s, *c) && count < RUN_JOBS_MAX &&
	       (!count || r.len + s->fsize[*c] <= RUN_CAP))
		r.len += s->fsize[(*c)++], count++;
	if (fetch_wait(s, &r, count))
		return -1;
	s->n_skips += off > *at;
	while (off > *at) { /* a pipe drops what it skips: stop on close */
		uint64_t step = MIN(off - *at, (uint64_t)SKIP_STEP);
		if (stopping(s))
			return -1;
		if ((rc = stream_skip(s->inner, step, e)))
			return rc;
		*at += step;
	}
	if (r.start == UINT64_MAX && !(r.own = malloc(r.len)))
		return oom(e, s->base.name);
	data = r.own ? r.own : s->in + r.start % IN_RING;
	if ((rc = fetch_read(s, data, r.len, c0, off, e))) {
		free(r.own);
		return rc;
	}
	*at += r.len;
	pthread_mutex_lock(&s->lock);
	fetch_publish(s, &r, data, c0, count, off);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void *fetch_main(void *arg)
{
	struct pack *s = arg;
	struct bmaptk_error e = {0};
	uint64_t c = 0, n = s->h.nchunks, off = s->data_start, at = off;
	int rc = 0;

	while (!rc) {
		uint64_t c0;
		while (c < n && !is_planned(s, c))
			off += s->fsize[c++];
		if (c == n)
			break;
		c0 = c;
		rc = fetch_run(s, &c, off, &at, &e);
		for (; c0 < c; c0++)
			off += s->fsize[c0];
	}
	pthread_mutex_lock(&s->lock);
	s->fetch_done = 1;
	if (rc > 0 && !s->stop)
		note_failure(s, &e, s->jobs_tail);
	pthread_cond_broadcast(&s->out_cv);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- the workers -------------------------------------------------------- */

static int frame_fail(struct pack *s, const struct job *j,
		      struct bmaptk_error *e, const char *what, size_t code)
{
	if (ZSTD_getErrorCode(code) == ZSTD_error_memory_allocation)
		return oom(e, s->base.name);
	return corrupt(e, s->base.name, "frame %u (at byte %llu) %s%s",
		       j->chunk, (unsigned long long)j->file_off, what,
		       code ? ZSTD_getErrorName(code) : "");
}

/* The frame's header against the index, before decoding it. */
static int frame_check(struct pack *s, const struct job *j,
		       struct bmaptk_error *e)
{
	const unsigned char *p = j->src;
	unsigned long long want = chunk_len(s, j->chunk), fcs;
	size_t csize;

	if (j->len < 5 || pack_get32(p) != ZSTD_MAGIC)
		return frame_fail(s, j, e, "is not a zstd frame", 0);
	if (!(p[4] & ZSTD_CHECKSUM))
		return frame_fail(s, j, e, "has no checksum", 0);
	fcs = ZSTD_getFrameContentSize(p, j->len);
	if (fcs == ZSTD_CONTENTSIZE_ERROR)
		return frame_fail(s, j, e, "has a bad header", 0);
	if (fcs == ZSTD_CONTENTSIZE_UNKNOWN)
		return frame_fail(s, j, e, "does not record its size", 0);
	if (fcs != want)
		return corrupt(e, s->base.name,
			       "frame %u (at byte %llu) decodes to %llu "
			       "bytes, the index says %llu",
			       j->chunk, (unsigned long long)j->file_off, fcs,
			       want);
	csize = ZSTD_findFrameCompressedSize(p, j->len);
	if (ZSTD_isError(csize))
		return frame_fail(s, j, e, "is cut short: ", csize);
	if (csize != j->len)
		return corrupt(e, s->base.name,
			       "frame %u (at byte %llu) is %zu bytes, the "
			       "index says %u",
			       j->chunk, (unsigned long long)j->file_off, csize,
			       j->len);
	return 0;
}

static int frame_decode(struct pack *s, struct worker *w, const struct job *j,
			struct slot *sl, struct bmaptk_error *e)
{
	uint64_t want = chunk_len(s, j->chunk);
	size_t got;
	int rc;

	if (!sl->buf && !(sl->buf = malloc(s->h.chunk_size)))
		return oom(e, s->base.name);
	if ((rc = frame_check(s, j, e)))
		return rc;
	got =
	    ZSTD_decompressDCtx(w->dctx, sl->buf, (size_t)want, j->src, j->len);
	if (ZSTD_isError(got))
		return frame_fail(s, j, e, "does not decode: ", got);
	if (got != want)
		return corrupt(e, s->base.name,
			       "frame %u (at byte %llu) decodes to %zu bytes, "
			       "the index says %llu",
			       j->chunk, (unsigned long long)j->file_off, got,
			       (unsigned long long)want);
	return 0;
}

/* Whether a worker can take the next job (lock held): one is queued, it
 * comes before any failure, and either the reader has passed it or its
 * slot is free. */
static int job_ready(const struct pack *s)
{
	uint64_t q = s->jobs_head;

	return q < s->jobs_tail && !(s->failed && q > s->fail_seq) &&
	       (q < s->consumed || s->slots[q % s->nslots].state == SLOT_FREE);
}

static void *work_main(void *arg)
{
	struct worker *w = arg;
	struct pack *s = w->s;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct bmaptk_error e = {0};
		unsigned char *done;
		struct slot *sl;
		struct job j;
		uint64_t q;
		int rc;

		while (!s->stop && !job_ready(s))
			pthread_cond_wait(&s->work_cv, &s->lock);
		if (s->stop)
			break;
		q = s->jobs_head++;
		j = s->ring[q % JOB_RING];
		pthread_cond_signal(&s->fetch_cv);
		if (q < s->consumed) { /* skipped over: not needed */
			if ((done = run_put(s, j.run))) {
				pthread_mutex_unlock(&s->lock);
				free(done);
				pthread_mutex_lock(&s->lock);
			}
			continue;
		}
		sl = &s->slots[q % s->nslots];
		sl->state = SLOT_BUSY;
		sl->seq = q;
		pthread_mutex_unlock(&s->lock);

		rc = frame_decode(s, w, &j, sl, &e);

		pthread_mutex_lock(&s->lock);
		done = run_put(s, j.run);
		sl->state = rc ? SLOT_FAILED : SLOT_READY;
		s->n_decoded++;
		if (rc)
			note_failure(s, &e, q);
		pthread_cond_broadcast(&s->out_cv);
		if (done) {
			pthread_mutex_unlock(&s->lock);
			free(done);
			pthread_mutex_lock(&s->lock);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- the plan ----------------------------------------------------------- */

static int plan_bmap(struct pack *s, const struct bmaptk_bmap *b,
		     struct bmaptk_error *err)
{
	uint64_t words = ((uint64_t)s->h.nchunks + 63) / 64;

	if (b->image_size != s->h.image_size)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: the bmap is for an image of %llu bytes, the packed "
		    "image holds %llu",
		    s->base.name, (unsigned long long)b->image_size,
		    (unsigned long long)s->h.image_size);
	if (!(s->plan = calloc(words ? words : 1, sizeof(*s->plan))))
		return oom(err, s->base.name);
	for (size_t i = 0; i < b->nranges; i++) {
		uint64_t off, len, c, last;
		bmaptk_range_span(b, &b->ranges[i], &off, &len);
		if (!len)
			continue;
		last = (off + len - 1) / s->h.chunk_size;
		for (c = off / s->h.chunk_size; c <= last; c++)
			s->plan[c / 64] |= 1ull << (c % 64);
	}
	return 0;
}

static void plan_count(struct pack *s)
{
	for (uint64_t c = next_planned(s, 0); c < s->h.nchunks;
	     c = next_planned(s, c + 1)) {
		s->nplanned++;
		s->planned_bytes += s->fsize[c];
	}
}

static int start_threads(struct pack *s, struct bmaptk_error *err)
{
	int e = pthread_create(&s->fetch_tid, NULL, fetch_main, s);

	if (!e) {
		s->fetch_started = 1;
		for (; s->nstarted < s->nworkers; s->nstarted++) {
			struct worker *w = &s->workers[s->nstarted];
			e = pthread_create(&w->tid, NULL, work_main, w);
			if (e)
				break;
		}
	}
	if (!e)
		return 0;
	return bmaptk_set_error(err, BMAPTK_ERR_IO, e,
				"%s: cannot start a thread: %s", s->base.name,
				strerror(e));
}

static int setup(struct pack *s, unsigned threads, struct bmaptk_error *err)
{
	uint32_t cs = s->h.chunk_size;
	unsigned nw = threads ? threads : online_cpus();
	char a[32], b[32];

	s->planned = 1;
	plan_count(s);
	nw = MIN(nw, MAX_WORKERS);
	/* Two chunks a worker, or 2 MiB a worker of small chunks, which
	 * then take as little locking per byte as 1 MiB ones. */
	s->nslots = (unsigned)MIN(2 * nw * MAX((1u << 20) / cs, 1),
				  MAX(OUT_BUDGET / cs, 2));
	nw = (unsigned)MIN(MIN(nw, s->nslots), MAX(s->nplanned, 1));
	s->cur_chunk = next_planned(s, 0);
	s->slots = calloc(s->nslots, sizeof(*s->slots));
	s->workers = calloc(nw, sizeof(*s->workers));
	s->in = malloc(IN_RING); /* pages are touched as runs arrive */
	if (!s->slots || !s->workers || !s->in)
		return oom(err, s->base.name);
	for (unsigned i = 0; i < s->nslots; i++)
		s->slots[i].seq = UINT64_MAX;
	for (unsigned i = 0; i < nw; i++) {
		s->workers[i].s = s;
		if (!(s->workers[i].dctx = ZSTD_createDCtx()))
			return oom(err, s->base.name);
		s->nworkers++;
	}
	bmaptk_debug("%s: decoding %llu of %u frames (%s of %s compressed) "
		     "on %u thread(s), %u slots of %u KiB",
		     s->base.name, (unsigned long long)s->nplanned,
		     s->h.nchunks, human_size(s->planned_bytes, a, sizeof(a)),
		     human_size(s->file_size, b, sizeof(b)), nw, s->nslots,
		     cs >> 10);
	return 0;
}

/* Set up and start; a failure is kept, so later reads report it too. */
static int start(struct pack *s, unsigned threads, struct bmaptk_error *err)
{
	int rc = setup(s, threads, err);

	if (!rc)
		rc = start_threads(s, err);
	if (rc) {
		pthread_mutex_lock(&s->lock);
		note_failure(s, err, 0);
		pthread_mutex_unlock(&s->lock);
	}
	return rc;
}

int pack_stream_plan(struct bmaptk_stream *bs, const struct bmaptk_bmap *b,
		     unsigned threads, struct bmaptk_error *err)
{
	struct pack *s = (struct pack *)bs;
	int rc;

	if (s->planned)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: the packed image's plan is set once, before the "
		    "first read",
		    s->base.name);
	if (b && (rc = plan_bmap(s, b, err)))
		return rc;
	return start(s, threads, err);
}

/* Without a plan, the first read or skip plans every chunk. Returns 0,
 * or the status of the first failure (err set). */
static int usable(struct pack *s, struct bmaptk_error *err)
{
	int rc = 0;

	if (!s->planned && (rc = start(s, 0, err)))
		return rc;
	pthread_mutex_lock(&s->lock);
	if (failure_due(s))
		rc = report_failure(s, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---- the reader --------------------------------------------------------- */

/* Be done with the current chunk (lock held): free its slot, or let the
 * workers drop its job if it was never taken. */
static void advance(struct pack *s)
{
	struct slot *sl = &s->slots[s->consumed % s->nslots];

	if (sl->seq == s->consumed) {
		while (sl->state == SLOT_BUSY)
			pthread_cond_wait(&s->out_cv, &s->lock);
		sl->state = SLOT_FREE;
	}
	s->cur = NULL;
	s->consumed++;
	s->cur_chunk = next_planned(s, s->cur_chunk + 1);
	pthread_cond_broadcast(&s->work_cv);
}

/* Make s->cur the decoded chunk holding s->pos (lock held). */
static int acquire(struct pack *s, struct bmaptk_error *err)
{
	uint64_t c = s->pos / s->h.chunk_size;
	struct slot *sl;

	while (s->cur_chunk < c)
		advance(s);
	if (s->cur_chunk != c)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: the copy read chunk %llu, which "
					"is not in the plan",
					s->base.name, (unsigned long long)c);
	sl = &s->slots[s->consumed % s->nslots];
	while (!failure_due(s) &&
	       !(sl->seq == s->consumed && sl->state >= SLOT_READY)) {
		if (s->fetch_done && s->jobs_tail <= s->consumed)
			return bmaptk_set_error(
			    err, BMAPTK_ERR_IO, 0,
			    "%s: chunk %llu was never fetched", s->base.name,
			    (unsigned long long)c);
		pthread_cond_wait(&s->out_cv, &s->lock);
	}
	if (failure_due(s))
		return report_failure(s, err);
	s->cur = sl;
	return 0;
}

static ssize_t pack_read(struct bmaptk_stream *bs, void *buf, size_t len,
			 struct bmaptk_error *err)
{
	struct pack *s = (struct pack *)bs;
	uint64_t c, end;
	size_t n;
	int rc = 0;

	if (usable(s, err))
		return -1;
	if (s->pos < s->h.image_size && len && !s->cur) {
		pthread_mutex_lock(&s->lock);
		rc = acquire(s, err) ? -1 : 0;
		pthread_mutex_unlock(&s->lock);
	}
	if (rc || s->pos >= s->h.image_size || !len)
		return rc;
	c = s->pos / s->h.chunk_size;
	end = chunk_start(s, c) + chunk_len(s, c);
	n = (size_t)MIN((uint64_t)len, end - s->pos);
	memcpy(buf, s->cur->buf + (s->pos - chunk_start(s, c)), n);
	s->pos += n;
	if (s->pos == end) {
		pthread_mutex_lock(&s->lock);
		advance(s);
		pthread_mutex_unlock(&s->lock);
	}
	return (ssize_t)n;
}

static int pack_skip(struct bmaptk_stream *bs, uint64_t n,
		     struct bmaptk_error *err)
{
	struct pack *s = (struct pack *)bs;
	int rc;

	if ((rc = usable(s, err)))
		return rc;
	if (n > s->h.image_size - s->pos)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: the image ends before the bmap "
					"says it does",
					s->base.name);
	s->pos += n;
	pthread_mutex_lock(&s->lock);
	while (s->cur_chunk < s->h.nchunks &&
	       chunk_start(s, s->cur_chunk) + chunk_len(s, s->cur_chunk) <=
		   s->pos)
		advance(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Bytes from here to the next planned chunk: what the copy will not read
 * (its drain skips them). With every chunk planned there is none. */
static uint64_t pack_hole(struct bmaptk_stream *bs)
{
	struct pack *s = (struct pack *)bs;
	uint64_t c, next;

	if (!s->planned || !s->plan || s->pos >= s->h.image_size)
		return 0;
	c = s->pos / s->h.chunk_size;
	if (is_planned(s, c))
		return 0;
	next = next_planned(s, c);
	return (next < s->h.nchunks ? chunk_start(s, next) : s->h.image_size) -
	       s->pos;
}

static void free_runs(struct pack *s)
{
	for (uint64_t r = s->runs_head; r < s->runs_tail; r++)
		free(s->runs[r % RUN_RING].own);
	free(s->in);
}

static void pack_close(struct bmaptk_stream *bs)
{
	struct pack *s = (struct pack *)bs;

	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	pthread_cond_broadcast(&s->work_cv);
	pthread_cond_broadcast(&s->fetch_cv);
	pthread_mutex_unlock(&s->lock);
	if (s->fetch_started)
		pthread_join(s->fetch_tid, NULL);
	for (unsigned i = 0; i < s->nstarted; i++)
		pthread_join(s->workers[i].tid, NULL);
	if (s->planned)
		bmaptk_debug("%s: %llu frames fetched (%llu bytes) in %llu "
			     "reads after %llu skips, %llu decoded",
			     s->base.name, (unsigned long long)s->n_fetched,
			     (unsigned long long)s->fetched_bytes,
			     (unsigned long long)s->n_reads,
			     (unsigned long long)s->n_skips,
			     (unsigned long long)s->n_decoded);
	free_runs(s);
	for (unsigned i = 0; i < s->nworkers; i++)
		ZSTD_freeDCtx(s->workers[i].dctx);
	for (unsigned i = 0; s->slots && i < s->nslots; i++)
		free(s->slots[i].buf);
	free(s->slots);
	free(s->workers);
	free(s->plan);
	free(s->fsize);
	free(s->bmap);
	free(s->sig);
	pthread_cond_destroy(&s->work_cv);
	pthread_cond_destroy(&s->fetch_cv);
	pthread_cond_destroy(&s->out_cv);
	pthread_mutex_destroy(&s->lock);
	s->inner->ops->close(s->inner);
	free(s);
}

static const struct bmaptk_stream_ops pack_ops = {
    .read = pack_read,
    .skip = pack_skip,
    .close = pack_close,
    .hole = pack_hole,
};

/* ---- the module and the CLI's API --------------------------------------- */

static int pack_probe(const unsigned char *head, size_t len)
{
	/* More than zstd's 28 bits for any skippable frame. */
	if (len < PACK_FRAME_HEADER + 8 ||
	    pack_get32(head) != PACK_MAGIC_BMAP ||
	    memcmp(head + PACK_FRAME_HEADER, PACK_TAG, 8))
		return 0;
	return 96;
}

static struct bmaptk_stream *pack_open(struct bmaptk_stream *inner,
				       struct bmaptk_error *err)
{
	struct pack *s = calloc(1, sizeof(*s));

	if (!s) {
		oom(err, inner->name);
		inner->ops->close(inner);
		return NULL;
	}
	s->base.ops = &pack_ops;
	s->base.name = inner->name;
	s->base.format = "zstd-pack";
	s->inner = inner;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->work_cv, NULL);
	pthread_cond_init(&s->fetch_cv, NULL);
	pthread_cond_init(&s->out_cv, NULL);
	if (read_bmap_frame(s, err) || check_sizes(s, err)) {
		pack_close(&s->base);
		return NULL;
	}
	s->base.size = s->h.image_size;
	return &s->base;
}

int pack_stream_is(const struct bmaptk_stream *s)
{
	return s && s->ops == &pack_ops;
}

void pack_stream_embedded(const struct bmaptk_stream *bs, const char **bmap,
			  size_t *bmap_len, const char **sig, size_t *sig_len)
{
	const struct pack *s = (const struct pack *)bs;

	*bmap = s->bmap;
	*bmap_len = s->h.bmap_len;
	*sig = s->sig;
	*sig_len = s->h.sig_len;
}

uint32_t pack_stream_chunk_size(const struct bmaptk_stream *bs)
{
	return ((const struct pack *)bs)->h.chunk_size;
}

/* ---- checking a local file ---------------------------------------------- */

static int check_table(const struct pack *s, int fd, struct bmaptk_error *err)
{
	uint64_t n = s->h.nchunks, entries = n + 1;
	uint64_t tlen = PACK_FRAME_HEADER + 8 * entries + PACK_SEEK_FOOTER;
	uint64_t at = s->file_size - tlen, e = 0;
	unsigned char *buf = malloc(CHECK_BUF);
	unsigned char head[PACK_FRAME_HEADER], foot[PACK_SEEK_FOOTER];
	int rc = 0;

	if (!buf)
		return oom(err, s->base.name);
	if (pread_full(fd, head, sizeof(head), at) != sizeof(head) ||
	    pread_full(fd, foot, sizeof(foot), s->file_size - sizeof(foot)) !=
		sizeof(foot))
		rc = bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
				      "%s: cannot read the seek table",
				      s->base.name);
	else if (pack_get32(head) != PACK_MAGIC_SEEKTABLE ||
		 pack_get32(head + 4) != tlen - PACK_FRAME_HEADER ||
		 pack_get32(foot) != entries || foot[4] ||
		 pack_get32(foot + 5) != PACK_SEEKABLE_MAGIC)
		rc = corrupt(err, s->base.name,
			     "no seek table of %llu entries at its end",
			     (unsigned long long)entries);
	at += PACK_FRAME_HEADER;
	while (!rc && e < entries) {
		size_t len = (size_t)MIN(entries - e, CHECK_BUF / 8) * 8;
		if (pread_full(fd, buf, len, at) != (ssize_t)len) {
			rc = bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
					      "%s: cannot read the seek table",
					      s->base.name);
			break;
		}
		for (size_t i = 0; i < len && !rc; i += 8, e++) {
			uint64_t csize = e ? s->fsize[e - 1] : s->data_start;
			uint64_t dsize = e ? chunk_len(s, e - 1) : 0;
			if (pack_get32(buf + i) != csize ||
			    pack_get32(buf + i + 4) != dsize)
				rc = corrupt(err, s->base.name,
					     "the seek table disagrees with "
					     "the index at entry %llu",
					     (unsigned long long)e);
		}
		at += len;
	}
	free(buf);
	return rc;
}

static int check_headers(const struct pack *s, int fd, struct bmaptk_error *err)
{
	uint64_t off = s->data_start;

	for (uint64_t c = 0; c < s->h.nchunks; off += s->fsize[c++]) {
		unsigned char p[HEADER_MAX];
		size_t want = MIN((size_t)s->fsize[c], sizeof(p));
		unsigned long long fcs;
		if (!is_planned(s, c))
			continue;
		if (pread_full(fd, p, want, off) != (ssize_t)want)
			return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
						"%s: cannot read frame %llu",
						s->base.name,
						(unsigned long long)c);
		fcs = ZSTD_getFrameContentSize(p, want);
		if (pack_get32(p) != ZSTD_MAGIC || !(p[4] & ZSTD_CHECKSUM) ||
		    fcs != chunk_len(s, c))
			return corrupt(err, s->base.name,
				       "frame %llu (at byte %llu) is not a "
				       "checksummed zstd frame of %llu bytes",
				       (unsigned long long)c,
				       (unsigned long long)off,
				       (unsigned long long)chunk_len(s, c));
	}
	return 0;
}

int pack_stream_check_file(const struct bmaptk_stream *bs, const char *path,
			   struct bmaptk_error *err)
{
	const struct pack *s = (const struct pack *)bs;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
	struct stat st;

	if (fd < 0 || fstat(fd, &st)) {
		rc = bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
				      "%s: cannot open: %s", s->base.name,
				      strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if ((uint64_t)st.st_size != s->file_size)
		rc = corrupt(err, s->base.name,
			     "its index accounts for %llu bytes, the file has "
			     "%llu",
			     (unsigned long long)s->file_size,
			     (unsigned long long)st.st_size);
	else if (!(rc = check_table(s, fd, err)))
		rc = check_headers(s, fd, err);
	close(fd);
	return rc;
}

static const struct bmaptk_codec_module pack_codec = {
    .probe = pack_probe,
    .open = pack_open,
    .flags = BMAPTK_CODEC_FINAL,
    .format = "zstd-pack",
};

const struct bmaptk_module bmaptk_codec_pack = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_CODEC,
    .name = "zstd-pack",
    .description = "packed images (seekable zstd with the bmap inside): "
		   "decodes only the frames the copy needs, on every core",
    .version = "1",
    .priority = 100,
    .u.codec = &pack_codec,
};
