/* copy: one producer (source + codecs) fills a ring of large buffers in
 * image order; a hasher and one writer per sink consume every buffer in
 * parallel, so decoding, hashing and writing overlap. Memory is the ring,
 * whatever the image size. A buffer may carry pieces of several ranges,
 * so images with many small ranges do not cost a round trip each. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bmaptk/bmaptk.h>

#include "util.h"

#define SLOT_SIZE (4u << 20)
#define SLOT_COUNT 8
#define SLOT_PIECES 256

struct piece {
	uint64_t off;	/* in the image */
	uint32_t pos;	/* in the slot's buffer */
	uint32_t len;
	size_t range;	/* index in the bmap */
	int range_end;	/* the range's last bytes: finish its digest */
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
	struct slot slots[SLOT_COUNT];
	uint64_t produced; /* slots published so far */
	int eof;	   /* producer is done */
	int stop;	   /* a fatal error: everybody stops */
	struct bmaptk_error err;
	int failed;

	uint64_t written;   /* bytes written by the first sink */
	size_t verified;    /* ranges whose digest matched */
	uint64_t total;	    /* bytes to copy, for progress */
};

struct consumer {
	struct pipeline *p;
	size_t sink; /* index, or SIZE_MAX for the hasher */
	struct bmaptk_error err;
	struct bmaptk_hasher *hasher;
	pthread_t thread;
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
	char want_hex[2 * BMAPTK_HASH_MAX + 1], got_hex[2 * BMAPTK_HASH_MAX + 1];
	uint64_t off, len;

	bmaptk_hasher_final(c->hasher, got);
	if (!memcmp(got, r->digest, dlen))
		return 0;
	bmaptk_range_span(b, r, &off, &len);
	bmaptk_hex(r->digest, dlen, want_hex);
	bmaptk_hex(got, dlen, got_hex);
	return bmaptk_set_error(&c->err, BMAPTK_ERR_VERIFY, 0,
				"%s: checksum mismatch for blocks %llu-%llu (bytes %llu-%llu): expected %s %s, got %s",
				c->p->image->name,
				(unsigned long long)r->first,
				(unsigned long long)r->last,
				(unsigned long long)off,
				(unsigned long long)(off + len - 1),
				bmaptk_hash_name(b->hash_type), want_hex,
				got_hex);
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

static int write_slot(struct consumer *c, struct slot *s)
{
	struct bmaptk_sink *sink = c->p->sinks[c->sink];

	for (size_t i = 0; i < s->npieces; i++) {
		const struct piece *pc = &s->pieces[i];
		int rc = sink->ops->pwrite(sink, s->buf + pc->pos, pc->len,
					   pc->off, &c->err);
		if (rc)
			return rc;
	}
	return 0;
}

static void *consume(void *arg)
{
	struct consumer *c = arg;
	struct pipeline *p = c->p;
	struct slot *s;

	for (uint64_t seq = 0; (s = wait_slot(p, seq)); seq++) {
		int rc = c->sink == SIZE_MAX ? hash_slot(c, s)
					     : write_slot(c, s);
		if (!rc && c->sink == 0) {
			p->written += s->used;
			if (p->opts->progress.update)
				p->opts->progress.update(p->opts->progress.ctx,
							 p->written, p->total);
		}
		release_slot(p, s);
		if (rc) {
			fail(p, &c->err);
			break;
		}
	}
	return NULL;
}

/* Producer side: wait until the next slot is free, or the run stopped. */
static struct slot *claim_slot(struct pipeline *p)
{
	struct slot *s;

	pthread_mutex_lock(&p->lock);
	s = &p->slots[p->produced % SLOT_COUNT];
	while (!p->stop && s->pending)
		pthread_cond_wait(&p->changed, &p->lock);
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
		if ((rc = interrupted(pr)))
			return rc;
		if (pr->cur && (pr->cur->used == SLOT_SIZE ||
				pr->cur->npieces == SLOT_PIECES))
			flush_slot(pr);
		if (!pr->cur && !(pr->cur = claim_slot(pr->p)))
			return -1; /* a consumer failed; its error wins */
		room = SLOT_SIZE - pr->cur->used;
		got = stream_read_full(img, pr->cur->buf + pr->cur->used,
				       (size_t)MIN(room, len), &pr->err);
		if (got < 0)
			return pr->err.status;
		if (got == 0 && len != UINT64_MAX)
			return bmaptk_set_error(&pr->err, BMAPTK_ERR_USAGE, 0,
						"%s: the image ends at byte %llu, before the bmap says it does",
						img->name,
						(unsigned long long)pr->pos);
		pc = &pr->cur->pieces[pr->cur->npieces++];
		pc->off = pr->pos;
		pc->pos = (uint32_t)pr->cur->used;
		pc->len = (uint32_t)got;
		pc->range = index;
		pr->cur->used += (size_t)got;
		pr->pos += (uint64_t)got;
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

static void produce(struct pipeline *p)
{
	struct producer pr = {.p = p};
	const struct bmaptk_bmap *b = p->opts->bmap;
	int rc = 0;

	if (!b) {
		rc = produce_range(&pr, 0, 0, UINT64_MAX);
	} else {
		for (size_t i = 0; i < b->nranges && !rc; i++) {
			uint64_t off, len;
			bmaptk_range_span(b, &b->ranges[i], &off, &len);
			rc = produce_range(&pr, i, off, len);
		}
	}
	if (!rc)
		flush_slot(&pr);
	if (rc > 0)
		fail(p, &pr.err);
	pthread_mutex_lock(&p->lock);
	p->eof = 1;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

static int setup(struct pipeline *p, struct consumer *cons, size_t *ncons,
		 struct bmaptk_error *err)
{
	const struct bmaptk_bmap *b = p->opts->bmap;

	for (size_t i = 0; i < SLOT_COUNT; i++) {
		p->slots[i].buf = aligned_buffer(SLOT_SIZE);
		if (!p->slots[i].buf)
			return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
						"out of memory");
	}
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
		(*ncons)++;
	}
	p->nconsumers = (unsigned)*ncons;
	return 0;
}

int bmaptk_copy(struct bmaptk_stream *image, struct bmaptk_sink *const *sinks,
		size_t nsinks, const struct bmaptk_copy_opts *opts,
		struct bmaptk_copy_stats *stats, struct bmaptk_error *err)
{
	struct pipeline p = {.opts = opts, .image = image, .sinks = sinks,
			     .nsinks = nsinks};
	struct consumer *cons = calloc(nsinks + 1, sizeof(*cons));
	struct timespec t0, t1;
	size_t ncons = 0, started = 0;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	p.hashing = opts->verify && opts->bmap && opts->bmap->range_digests;
	p.total = opts->bmap ? bmaptk_bmap_mapped_bytes(opts->bmap)
			     : image->size;
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
	if (stats) {
		stats->image_size = opts->bmap ? opts->bmap->image_size
					       : p.written;
		stats->mapped_bytes = p.total == BMAPTK_SIZE_UNKNOWN
					      ? p.written
					      : p.total;
		stats->written_bytes = p.written;
		stats->ranges_verified = p.verified;
		stats->seconds = (double)(t1.tv_sec - t0.tv_sec) +
				 (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	}
	for (size_t i = 0; i < ncons; i++)
		bmaptk_hasher_free(cons[i].hasher);
	for (size_t i = 0; i < SLOT_COUNT; i++)
		free(p.slots[i].buf);
	free(cons);
	pthread_cond_destroy(&p.changed);
	pthread_mutex_destroy(&p.lock);
	return rc;
}
