/* Ranges are handed out longest first, so that one long range does not
 * start last and finish alone. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "range_hash.h"
#include "util.h"

struct hash_job {
	const char *name;
	int fd;
	const struct bmaptk_bmap *bmap;
	const struct range_hash_opts *opts;
	size_t *order; /* range indexes, longest first */
	atomic_size_t next;
	atomic_uint_fast64_t done;
	uint64_t total;	      /* mapped bytes, for progress */
	pthread_mutex_t lock; /* guards err and the callbacks */
	int failed;
	struct bmaptk_error err;
};

static void job_fail(struct hash_job *job, const struct bmaptk_error *e)
{
	pthread_mutex_lock(&job->lock);
	if (!job->failed) {
		job->failed = 1;
		job->err = *e;
	}
	pthread_mutex_unlock(&job->lock);
}

static void job_progress(struct hash_job *job, size_t n)
{
	const struct bmaptk_progress *p = job->opts->progress;
	uint64_t done = atomic_fetch_add(&job->done, n) + n;

	if (!p || !p->update)
		return;
	pthread_mutex_lock(&job->lock);
	p->update(p->ctx, done, job->total);
	pthread_mutex_unlock(&job->lock);
}

static int read_chunk(struct hash_job *job, unsigned char *buf, size_t n,
		      uint64_t off, struct bmaptk_error *err)
{
	unsigned align = job->opts->align ? job->opts->align : 1;
	size_t want = (n + align - 1) / align * align;
	ssize_t got = pread_full(job->fd, buf, want, off);

	if (got < 0)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
					"%s: read error at offset %llu: %s",
					job->name, (unsigned long long)off,
					strerror(errno));
	if ((size_t)got < n)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_IO, 0,
		    "%s: ends at byte %llu, before the image's data does",
		    job->name, (unsigned long long)(off + (uint64_t)got));
	return 0;
}

static int hash_range(struct hash_job *job, struct bmaptk_hasher *h,
		      unsigned char *buf, size_t index,
		      struct bmaptk_error *err)
{
	unsigned char digest[BMAPTK_HASH_MAX];
	uint64_t off, len;
	int rc;

	bmaptk_range_span(job->bmap, &job->bmap->ranges[index], &off, &len);
	while (len > 0) {
		size_t n = (size_t)MIN(len, job->opts->chunk);
		if (job->opts->interrupted && *job->opts->interrupted)
			return bmaptk_set_error(err, BMAPTK_ERR_INTERRUPTED, 0,
						"%s: interrupted", job->name);
		if ((rc = read_chunk(job, buf, n, off, err)))
			return rc;
		bmaptk_hasher_update(h, buf, n);
		off += n;
		len -= n;
		job_progress(job, n);
	}
	bmaptk_hasher_final(h, digest);
	pthread_mutex_lock(&job->lock);
	job->opts->done(job->opts->ctx, index, digest);
	pthread_mutex_unlock(&job->lock);
	return 0;
}

static void *hash_worker(void *arg)
{
	struct hash_job *job = arg;
	struct bmaptk_hasher *h = bmaptk_hasher_new(job->bmap->hash_type);
	unsigned align = job->opts->align ? job->opts->align : 1;
	unsigned char *buf = aligned_buffer(job->opts->chunk + align);
	struct bmaptk_error err;
	size_t i;

	if (!h || !buf) {
		bmaptk_set_error(&err, BMAPTK_ERR_IO, ENOMEM,
				 "%s: out of memory", job->name);
		job_fail(job, &err);
	}
	while (h && buf && !job->failed &&
	       (i = atomic_fetch_add(&job->next, 1)) < job->bmap->nranges) {
		if (hash_range(job, h, buf, job->order[i], &err))
			job_fail(job, &err);
	}
	bmaptk_hasher_free(h);
	free(buf);
	return NULL;
}

static int longest_first(const void *a, const void *b, void *ranges)
{
	const struct bmaptk_range *ra =
	    (struct bmaptk_range *)ranges + *(const size_t *)a;
	const struct bmaptk_range *rb =
	    (struct bmaptk_range *)ranges + *(const size_t *)b;
	uint64_t la = ra->last - ra->first, lb = rb->last - rb->first;

	return la < lb ? 1 : la > lb ? -1 : 0;
}

int hash_ranges(int fd, const char *name, const struct bmaptk_bmap *b,
		const struct range_hash_opts *opts, struct bmaptk_error *err)
{
	unsigned nthreads = opts->threads ? opts->threads : online_cpus();
	struct hash_job job = {.name = name, .fd = fd, .bmap = b, .opts = opts};
	pthread_t *threads;
	unsigned started = 0;

	if (nthreads > b->nranges)
		nthreads = (unsigned)MAX(b->nranges, 1);
	job.order = malloc(MAX(b->nranges, 1) * sizeof(*job.order));
	threads = calloc(nthreads, sizeof(*threads));
	if (!job.order || !threads) {
		free(job.order);
		free(threads);
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory", name);
	}
	for (size_t i = 0; i < b->nranges; i++)
		job.order[i] = i;
	qsort_r(job.order, b->nranges, sizeof(*job.order), longest_first,
		b->ranges);
	job.total = bmaptk_bmap_mapped_bytes(b);
	pthread_mutex_init(&job.lock, NULL);
	/* This thread is worker 0. */
	for (unsigned i = 1; i < nthreads; i++)
		if (pthread_create(&threads[i], NULL, hash_worker, &job) == 0)
			started = i;
	hash_worker(&job);
	for (unsigned i = 1; i <= started; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_destroy(&job.lock);
	free(threads);
	free(job.order);
	if (job.failed) {
		*err = job.err;
		return err->status;
	}
	return 0;
}
