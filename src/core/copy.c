/* copy: one producer (source + codecs) fills a ring of large buffers in
 * image order; a hasher and one writer per sink consume every buffer in
 * parallel, so decoding, hashing and writing overlap. Memory is the ring,
 * whatever the image size. A buffer may carry pieces of several ranges,
 * so images with many small ranges do not cost a round trip each. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bmaptk/bmaptk.h>

#include "util.h"

/* 8 MiB in all: the decoder's output is still in the L3 cache when the
 * hasher and the writers read it. With 8 x 4 MiB the decoder's own output
 * copies ran 3x slower (perf) and create --scan-zeros of a .zst, which
 * hands on every decoded byte, took 1.2x as long. */
#define SLOT_SIZE	(1u << 20)
#define SLOT_COUNT	8
#define SLOT_PIECES	256
#define COMPARE_CHUNK	(1u << 20) /* --skip-unchanged's unit */
#define COMPARE_WINDOW	16	   /* recent comparisons remembered */
#define COMPARE_GIVE_UP 12	   /* differing ones that stop comparing */
#define COMPARE_PAUSE	64	   /* chunks written blindly after that */

struct piece {
	uint64_t off; /* in the image */
	uint32_t pos; /* in the slot's buffer */
	uint32_t len;
	size_t range;  /* index in the bmap */
	int range_end; /* the range's last bytes: finish its digest */
};

struct slot {
	unsigned char *buf;
	struct piece pieces[SLOT_PIECES];
	size_t npieces;
	size_t used;
	unsigned pending; /* consumers yet to finish with it */
};

struct pipeline {
	const struct bmaptk_copy_opts *opts;
	struct bmaptk_stream *image;
	struct bmaptk_sink *const *sinks;
	size_t nsinks;
	int hashing;
	unsigned nconsumers;

	pthread_mutex_t lock;
	pthread_cond_t changed;
	unsigned char *ring; /* the slots' buffers, one block */
	struct slot slots[SLOT_COUNT];
	uint64_t produced; /* slots published so far */
	int eof;	   /* producer is done */
	int stop;	   /* a fatal error: everybody stops */
	struct bmaptk_error err;
	int failed;
	size_t sinks_failed;

	uint64_t done;		 /* image bytes the first sink has handled */
	uint64_t produced_bytes; /* image bytes read for the sinks */
	size_t verified;	 /* ranges whose digest matched */
	uint64_t total;		 /* bytes to copy, for progress */
	/* For -d: the producer's seconds in reads, waiting for a free
	 * slot, and on the CPU (less than its time if it was preempted). */
	double reading, stalled, producer_cpu, producer_wall;
};

struct consumer {
	struct pipeline *p;
	size_t sink; /* index, or SIZE_MAX for the hasher */
	struct bmaptk_error err;
	struct bmaptk_hasher *hasher;
	pthread_t thread;
	/* A sink's writer. */
	struct bmaptk_sink_result result;
	unsigned char *scratch; /* read-back buffer for --skip-unchanged */
	unsigned recent;	/* bit i: comparison i ago differed */
	unsigned pause;		/* chunks left to write without comparing */
	int lost;		/* the test switch dropped its write */
	double busy;		/* seconds hashing or writing (for -d) */
};

static void fail(struct pipeline *p, const struct bmaptk_error *e)
{
	pthread_mutex_lock(&p->lock);
	if (!p->failed) {
		p->failed = 1;
		p->err = *e;
	}
	p->stop = 1;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

/* The next slot for consumer number `seq`, or NULL when all is done. */
static struct slot *wait_slot(struct pipeline *p, uint64_t seq)
{
	struct slot *s = NULL;

	pthread_mutex_lock(&p->lock);
	while (!p->stop && seq >= p->produced && !p->eof)
		pthread_cond_wait(&p->changed, &p->lock);
	if (!p->stop && seq < p->produced)
		s = &p->slots[seq % SLOT_COUNT];
	pthread_mutex_unlock(&p->lock);
	return s;
}

static void release_slot(struct pipeline *p, struct slot *s)
{
	pthread_mutex_lock(&p->lock);
	if (--s->pending == 0)
		pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

static int check_digest(struct consumer *c, size_t index)
{
	const struct bmaptk_bmap *b = c->p->opts->bmap;
	const struct bmaptk_range *r = &b->ranges[index];
	size_t dlen = bmaptk_hash_size(b->hash_type);
	unsigned char got[BMAPTK_HASH_MAX];
	char want_hex[2 * BMAPTK_HASH_MAX + 1],
	    got_hex[2 * BMAPTK_HASH_MAX + 1];
	uint64_t off, len;

	bmaptk_hasher_final(c->hasher, got);
	if (!memcmp(got, r->digest, dlen))
		return 0;
	bmaptk_range_span(b, r, &off, &len);
	bmaptk_hex(r->digest, dlen, want_hex);
	bmaptk_hex(got, dlen, got_hex);
	return bmaptk_set_error(
	    &c->err, BMAPTK_ERR_VERIFY, 0,
	    "%s: checksum mismatch for blocks %llu-%llu (bytes %llu-%llu): "
	    "expected %s %s, got %s",
	    c->p->image->name, (unsigned long long)r->first,
	    (unsigned long long)r->last, (unsigned long long)off,
	    (unsigned long long)(off + len - 1), bmaptk_hash_name(b->hash_type),
	    want_hex, got_hex);
}

static int hash_slot(struct consumer *c, struct slot *s)
{
	for (size_t i = 0; i < s->npieces; i++) {
		const struct piece *pc = &s->pieces[i];
		bmaptk_hasher_update(c->hasher, s->buf + pc->pos, pc->len);
		if (pc->range_end) {
			if (check_digest(c, pc->range))
				return c->err.status;
			c->p->verified++;
		}
	}
	return 0;
}

/* Test switch: lose the write of the chunk holding lose_write_at. */
static int lose_write(struct consumer *c, uint64_t off, size_t len)
{
	const struct bmaptk_copy_opts *o = c->p->opts;

	if (!o->lose_write_at || c->sink != 0 || o->lose_write_at < off ||
	    o->lose_write_at >= off + len || (c->lost && !o->lose_write_always))
		return 0;
	c->lost = 1;
	return 1;
}

/* --skip-unchanged: does the sink already hold these bytes? Stops asking
 * for a while when most recent answers were no, so a card that changed
 * everywhere costs little more than a plain write. */
static int unchanged(struct consumer *c, const unsigned char *buf, size_t len,
		     uint64_t off)
{
	struct bmaptk_sink *sink = c->p->sinks[c->sink];
	struct bmaptk_error ignored;
	int same;

	if (!c->p->opts->skip_unchanged || !sink->ops->pread)
		return 0;
	if (c->pause) {
		c->pause--;
		return 0;
	}
	same = sink->ops->pread(sink, c->scratch, len, off, &ignored) == 0 &&
	       !memcmp(c->scratch, buf, len);
	c->result.compared += len;
	c->recent = (c->recent << 1 | !same) & ((1u << COMPARE_WINDOW) - 1);
	if (__builtin_popcount(c->recent) >= COMPARE_GIVE_UP) {
		c->pause = COMPARE_PAUSE;
		c->recent = 0;
	}
	return same;
}

static int write_piece(struct consumer *c, const unsigned char *buf, size_t len,
		       uint64_t off)
{
	struct bmaptk_sink *sink = c->p->sinks[c->sink];

	while (len > 0) {
		/* Chunks on 1 MiB boundaries of the image, so a change costs
		 * the chunks it touches and no more. */
		size_t n = MIN(len, COMPARE_CHUNK - off % COMPARE_CHUNK);
		int rc;
		if (unchanged(c, buf, n, off)) {
			c->result.skipped += n;
		} else if (!lose_write(c, off, n)) {
			rc = sink->ops->pwrite(sink, buf, n, off, &c->err);
			if (rc)
				return rc;
			c->result.written += n;
		}
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int write_slot(struct consumer *c, struct slot *s)
{
	for (size_t i = 0; i < s->npieces; i++) {
		const struct piece *pc = &s->pieces[i];
		int rc = write_piece(c, s->buf + pc->pos, pc->len, pc->off);
		if (rc)
			return rc;
	}
	return 0;
}

/* A sink failed: it drops out; the run stops only if none is left. */
static void sink_failed(struct consumer *c)
{
	struct pipeline *p = c->p;

	c->result.status = c->err.status ? c->err.status : BMAPTK_ERR_IO;
	c->result.err = c->err;
	pthread_mutex_lock(&p->lock);
	p->sinks_failed++;
	if (p->sinks_failed == p->nsinks) {
		p->stop = 1;
		pthread_cond_broadcast(&p->changed);
	}
	pthread_mutex_unlock(&p->lock);
}

/* The producer (one decoder thread) sets the pace; consumers are many and
 * each has slack. A slightly lower priority keeps the scheduler from
 * parking the decoder behind three writers on two cores (3 destinations:
 * 0.39 s -> 0.35 s, bench/farm.sh). Relative to the caller's, so a niced
 * run stays niced. */
static void yield_to_producer(void)
{
	id_t tid = (id_t)syscall(SYS_gettid);
	int prio;

	errno = 0;
	prio = getpriority(PRIO_PROCESS, tid);
	if (prio == -1 && errno)
		return;
	(void)setpriority(PRIO_PROCESS, tid, prio + 3 > 19 ? 19 : prio + 3);
}

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

static void *consume(void *arg)
{
	struct consumer *c = arg;
	struct pipeline *p = c->p;
	int hasher = c->sink == SIZE_MAX;
	struct slot *s;

	yield_to_producer();
	for (uint64_t seq = 0; (s = wait_slot(p, seq)); seq++) {
		int rc = 0;
		double t = now();
		if (hasher)
			rc = hash_slot(c, s);
		else if (!c->result.status)
			rc = write_slot(c, s);
		c->busy += now() - t;
		if (!hasher && !rc && c->sink == 0) {
			p->done += s->used;
			if (p->opts->progress.update)
				p->opts->progress.update(p->opts->progress.ctx,
							 p->done, p->total);
		}
		release_slot(p, s);
		if (rc && hasher) {
			fail(p, &c->err);
			break;
		}
		if (rc)
			sink_failed(c);
	}
	return NULL;
}

/* Producer side: wait until the next slot is free, or the run stopped. */
static struct slot *claim_slot(struct pipeline *p)
{
	struct slot *s;
	double t = 0;

	pthread_mutex_lock(&p->lock);
	s = &p->slots[p->produced % SLOT_COUNT];
	if (!p->stop && s->pending)
		t = now();
	while (!p->stop && s->pending)
		pthread_cond_wait(&p->changed, &p->lock);
	if (t)
		p->stalled += now() - t;
	pthread_mutex_unlock(&p->lock);
	if (p->stop)
		return NULL;
	s->npieces = 0;
	s->used = 0;
	return s;
}

static void publish_slot(struct pipeline *p, struct slot *s)
{
	pthread_mutex_lock(&p->lock);
	s->pending = p->nconsumers;
	p->produced++;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

struct producer {
	struct pipeline *p;
	struct slot *cur;
	uint64_t pos; /* image offset the stream is at */
	struct bmaptk_error err;
};

static int flush_slot(struct producer *pr)
{
	if (pr->cur && pr->cur->npieces)
		publish_slot(pr->p, pr->cur);
	pr->cur = NULL;
	return 0;
}

static int interrupted(struct producer *pr)
{
	volatile sig_atomic_t *flag = pr->p->opts->interrupted;

	if (flag && *flag)
		return bmaptk_set_error(&pr->err, BMAPTK_ERR_INTERRUPTED, 0,
					"interrupted");
	return 0;
}

/* With --nobmap, a stream that knows its holes (Android sparse images)
 * has them skipped, not decoded: the sinks see a gap. */
static int produce_hole(struct producer *pr, uint64_t *len)
{
	struct bmaptk_stream *img = pr->p->image;
	uint64_t n;
	int rc;

	if (*len != UINT64_MAX || !img->ops->hole || !(n = img->ops->hole(img)))
		return 0;
	if ((rc = stream_skip(img, n, &pr->err)))
		return rc;
	pr->pos += n;
	pr->p->produced_bytes += n;
	return 0;
}

/* How much of the len bytes left the current slot takes. --skip-unchanged
 * compares in 1 MiB chunks of the image: a slot then ends on a chunk
 * boundary, so no chunk is compared (and counted as changed) in two
 * halves; 0 means "start a new slot". */
static size_t slot_room(const struct producer *pr, uint64_t len)
{
	size_t room = SLOT_SIZE - pr->cur->used;
	uint64_t end;

	if (len <= room)
		return (size_t)len;
	if (!pr->p->opts->skip_unchanged)
		return room;
	end = (pr->pos + room) / COMPARE_CHUNK * COMPARE_CHUNK;
	return end > pr->pos ? (size_t)(end - pr->pos) : 0;
}

/* Read [off, off+len) of range `index` into slots. len == UINT64_MAX:
 * up to the end of the stream (--nobmap). */
static int produce_range(struct producer *pr, size_t index, uint64_t off,
			 uint64_t len)
{
	struct bmaptk_stream *img = pr->p->image;
	int rc;

	if (off > pr->pos && (rc = stream_skip(img, off - pr->pos, &pr->err)))
		return rc;
	pr->pos = off;
	while (len > 0) {
		struct piece *pc;
		size_t room;
		ssize_t got;
		double t;
		if ((rc = interrupted(pr)) || (rc = produce_hole(pr, &len)))
			return rc;
		if (pr->cur && (pr->cur->used == SLOT_SIZE ||
				pr->cur->npieces == SLOT_PIECES))
			flush_slot(pr);
		if (!pr->cur && !(pr->cur = claim_slot(pr->p)))
			return -1; /* a consumer failed; its error wins */
		room = slot_room(pr, len);
		if (room == 0) {
			flush_slot(pr);
			continue;
		}
		/* A stream with holes returns at their edges; reading on
		 * would decode the hole. */
		t = now();
		if (len == UINT64_MAX && img->ops->hole)
			got = img->ops->read(img, pr->cur->buf + pr->cur->used,
					     room, &pr->err);
		else
			got = stream_read_full(
			    img, pr->cur->buf + pr->cur->used, room, &pr->err);
		pr->p->reading += now() - t;
		if (got < 0)
			return pr->err.status;
		if (got == 0 && len != UINT64_MAX)
			return bmaptk_set_error(
			    &pr->err, BMAPTK_ERR_USAGE, 0,
			    "%s: the image ends at byte %llu, before the bmap "
			    "says it does",
			    img->name, (unsigned long long)pr->pos);
		pc = &pr->cur->pieces[pr->cur->npieces++];
		pc->off = pr->pos;
		pc->pos = (uint32_t)pr->cur->used;
		pc->len = (uint32_t)got;
		pc->range = index;
		pr->cur->used += (size_t)got;
		pr->pos += (uint64_t)got;
		pr->p->produced_bytes += (uint64_t)got;
		if (len != UINT64_MAX)
			len -= (uint64_t)got;
		pc->range_end = len == 0;
		if (got == 0) {
			pr->cur->npieces--; /* end of a --nobmap stream */
			break;
		}
	}
	return 0;
}

/* A compressed image is decoded to its end even past the last range: its
 * trailer (gzip's length, xz's footer, zstd's checksum) is what proves it
 * was not cut short. A raw file is not read on. */
static int drain(struct producer *pr)
{
	struct bmaptk_stream *img = pr->p->image;
	const size_t cap = 1 << 20;
	char *scratch;
	ssize_t got = 1;

	if (!img->format || !strcmp(img->format, "raw"))
		return 0;
	if (!(scratch = malloc(cap)))
		return bmaptk_set_error(&pr->err, BMAPTK_ERR_IO, ENOMEM,
					"out of memory");
	while (got > 0 && !interrupted(pr)) {
		uint64_t hole = img->ops->hole ? img->ops->hole(img) : 0;
		if (hole)
			got = stream_skip(img, hole, &pr->err) ? -1 : 1;
		else
			got = img->ops->read(img, scratch, cap, &pr->err);
	}
	free(scratch);
	return got < 0 || pr->err.status ? pr->err.status : 0;
}

static void produce(struct pipeline *p)
{
	struct producer pr = {.p = p};
	const struct bmaptk_bmap *b = p->opts->bmap;
	double cpu0 = clock_s(CLOCK_THREAD_CPUTIME_ID), t0 = now();
	int rc = 0;

	if (!b) {
		rc = produce_range(&pr, 0, 0, UINT64_MAX);
	} else {
		for (size_t i = 0; i < b->nranges && !rc; i++) {
			uint64_t off, len;
			bmaptk_range_span(b, &b->ranges[i], &off, &len);
			rc = produce_range(&pr, i, off, len);
		}
		if (!rc)
			rc = drain(&pr);
	}
	if (!rc)
		flush_slot(&pr);
	if (rc > 0)
		fail(p, &pr.err);
	p->producer_cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	p->producer_wall = now() - t0;
	pthread_mutex_lock(&p->lock);
	p->eof = 1;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

static int setup(struct pipeline *p, struct consumer *cons, size_t *ncons,
		 struct bmaptk_error *err)
{
	const struct bmaptk_bmap *b = p->opts->bmap;

	if (!(p->ring = large_buffer((size_t)SLOT_SIZE * SLOT_COUNT)))
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"out of memory");
	for (size_t i = 0; i < SLOT_COUNT; i++)
		p->slots[i].buf = p->ring + i * SLOT_SIZE;
	*ncons = 0;
	if (p->hashing) {
		cons[0].hasher = bmaptk_hasher_new(b->hash_type);
		if (!cons[0].hasher)
			return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
						"out of memory");
		cons[0].sink = SIZE_MAX;
		cons[0].p = p;
		(*ncons)++;
	}
	for (size_t i = 0; i < p->nsinks; i++) {
		cons[*ncons].p = p;
		cons[*ncons].sink = i;
		if (p->opts->skip_unchanged &&
		    !(cons[*ncons].scratch = aligned_buffer(COMPARE_CHUNK)))
			return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
						"out of memory");
		(*ncons)++;
	}
	p->nconsumers = (unsigned)*ncons;
	return 0;
}

static void report(const struct pipeline *p, const struct consumer *cons,
		   size_t ncons, struct bmaptk_copy_stats *stats,
		   const struct timespec *t0, const struct timespec *t1)
{
	if (!stats)
		return;
	stats->image_size =
	    p->opts->bmap ? p->opts->bmap->image_size : p->produced_bytes;
	stats->mapped_bytes =
	    p->total == BMAPTK_SIZE_UNKNOWN ? p->produced_bytes : p->total;
	stats->done_bytes = p->produced_bytes;
	stats->ranges_verified = p->verified;
	stats->seconds = (double)(t1->tv_sec - t0->tv_sec) +
			 (double)(t1->tv_nsec - t0->tv_nsec) / 1e9;
	for (size_t i = 0; stats->sinks && i < ncons; i++)
		if (cons[i].sink != SIZE_MAX)
			stats->sinks[cons[i].sink] = cons[i].result;
}

int bmaptk_sink_clear_holes(struct bmaptk_sink *sink,
			    const struct bmaptk_bmap *b, int discard,
			    struct bmaptk_error *err)
{
	int (*op)(struct bmaptk_sink *, uint64_t, uint64_t,
		  struct bmaptk_error *) =
	    discard ? sink->ops->discard : sink->ops->zeroout;
	uint64_t pos = 0, off, len;
	int rc = 0;

	if (!op)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0, "%s: this destination cannot %s",
		    sink->name, discard ? "discard" : "zero ranges");
	for (size_t i = 0; i <= b->nranges && !rc; i++) {
		if (i < b->nranges) {
			bmaptk_range_span(b, &b->ranges[i], &off, &len);
		} else {
			off = b->image_size;
			len = 0;
		}
		if (off > pos)
			rc = op(sink, pos, off - pos, err);
		pos = off + len;
	}
	return rc;
}

/* -d: where the time went. Threads overlap, so the parts add up to more
 * than the whole when the pipeline works. */
static void debug_times(const struct pipeline *p, const struct consumer *cons,
			size_t ncons, const struct timespec *t0,
			const struct timespec *t1)
{
	if (!bmaptk_debugging())
		return;
	bmaptk_debug(
	    "copy: ring of %d slots of %d KiB, %zu consumer thread(s), "
	    "%.3f s in all; reading and decoding %s: %.3f s",
	    SLOT_COUNT, (int)(SLOT_SIZE / 1024), ncons,
	    (double)(t1->tv_sec - t0->tv_sec) +
		(double)(t1->tv_nsec - t0->tv_nsec) / 1e9,
	    p->image->name, p->reading);
	bmaptk_debug("copy: the decoding thread: %.3f s, %.3f s of it on a "
		     "CPU, %.3f s waiting for a free slot",
		     p->producer_wall, p->producer_cpu, p->stalled);
	for (size_t i = 0; i < ncons; i++) {
		if (cons[i].sink == SIZE_MAX)
			bmaptk_debug("copy: hashing: %.3f s", cons[i].busy);
		else
			bmaptk_debug("copy: writing %s: %.3f s",
				     p->sinks[cons[i].sink]->name,
				     cons[i].busy);
	}
}

int bmaptk_copy(struct bmaptk_stream *image, struct bmaptk_sink *const *sinks,
		size_t nsinks, const struct bmaptk_copy_opts *opts,
		struct bmaptk_copy_stats *stats, struct bmaptk_error *err)
{
	struct pipeline p = {
	    .opts = opts, .image = image, .sinks = sinks, .nsinks = nsinks};
	struct consumer *cons = calloc(nsinks + 1, sizeof(*cons));
	struct timespec t0, t1;
	size_t ncons = 0, started = 0;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	p.hashing = opts->verify && opts->bmap && opts->bmap->range_digests;
	p.total =
	    opts->bmap ? bmaptk_bmap_mapped_bytes(opts->bmap) : image->size;
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.changed, NULL);
	rc = cons ? setup(&p, cons, &ncons, err)
		  : bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
				     "out of memory");
	for (; !rc && started < ncons; started++) {
		if (pthread_create(&cons[started].thread, NULL, consume,
				   &cons[started]))
			rc = bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
					      "cannot start a thread");
	}
	if (!rc)
		produce(&p);
	else
		fail(&p, err);
	for (size_t i = 0; i < started; i++)
		pthread_join(cons[i].thread, NULL);
	if (!rc && p.failed) {
		*err = p.err;
		rc = err->status;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	report(&p, cons, ncons, stats, &t0, &t1);
	debug_times(&p, cons, ncons, &t0, &t1);
	/* A sink's failure is the run's only when no sink is left. */
	if (!rc && p.sinks_failed == nsinks && nsinks) {
		for (size_t i = 0; !rc && i < ncons; i++) {
			if (cons[i].sink != SIZE_MAX) {
				*err = cons[i].result.err;
				rc = err->status;
			}
		}
	}
	for (size_t i = 0; i < ncons; i++) {
		bmaptk_hasher_free(cons[i].hasher);
		free(cons[i].scratch);
	}
	free(p.ring);
	free(cons);
	pthread_cond_destroy(&p.changed);
	pthread_mutex_destroy(&p.lock);
	return rc;
}
