/* create: map a sparse file and hash its ranges on all cores. Ranges are
 * handed out longest first, so one long range does not finish last. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapper.h"
#include "util.h"

#define HASH_CHUNK (1u << 20)

struct hash_job {
	const char *name;
	int fd;
	const struct bmaptk_bmap *bmap;
	struct bmaptk_range *ranges;
	size_t *order; /* range indexes, longest first */
	atomic_size_t next;
	atomic_uint_fast64_t done;
	uint64_t total; /* mapped bytes, for progress */
	const struct bmaptk_create_opts *opts;
	pthread_mutex_t lock; /* guards err and progress callbacks */
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

static int hash_range(struct hash_job *job, struct bmaptk_hasher *h,
		      unsigned char *buf, struct bmaptk_range *r,
		      struct bmaptk_error *err)
{
	uint64_t off, len;

	bmaptk_range_span(job->bmap, r, &off, &len);
	while (len > 0) {
		size_t n = (size_t)MIN(len, HASH_CHUNK);
		ssize_t got;
		if (job->opts->interrupted && *job->opts->interrupted)
			return bmaptk_set_error(err, BMAPTK_ERR_INTERRUPTED, 0,
						"%s: interrupted", job->name);
		got = pread_full(job->fd, buf, n, off);
		if (got < 0)
			return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
						"%s: read error at offset %llu: %s",
						job->name,
						(unsigned long long)off,
						strerror(errno));
		if ((size_t)got < n)
			return bmaptk_set_error(err, BMAPTK_ERR_IO, 0,
						"%s: the file shrank while being read (at offset %llu)",
						job->name,
						(unsigned long long)(off + (uint64_t)got));
		bmaptk_hasher_update(h, buf, n);
		off += n;
		len -= n;
		uint64_t done = atomic_fetch_add(&job->done, n) + n;
		if (job->opts->progress.update) {
			pthread_mutex_lock(&job->lock);
			job->opts->progress.update(job->opts->progress.ctx, done,
						   job->total);
			pthread_mutex_unlock(&job->lock);
		}
	}
	bmaptk_hasher_final(h, r->digest);
	return 0;
}

static void *hash_worker(void *arg)
{
	struct hash_job *job = arg;
	struct bmaptk_hasher *h = bmaptk_hasher_new(job->bmap->hash_type);
	unsigned char *buf = malloc(HASH_CHUNK);
	struct bmaptk_error err;
	size_t i;

	if (!h || !buf) {
		bmaptk_set_error(&err, BMAPTK_ERR_IO, ENOMEM,
				 "%s: out of memory", job->name);
		job_fail(job, &err);
	}
	while (h && buf && !job->failed &&
	       (i = atomic_fetch_add(&job->next, 1)) < job->bmap->nranges) {
		if (hash_range(job, h, buf, &job->ranges[job->order[i]], &err))
			job_fail(job, &err);
	}
	bmaptk_hasher_free(h);
	free(buf);
	return NULL;
}

static int longest_first(const void *a, const void *b, void *ranges)
{
	const struct bmaptk_range *ra = (struct bmaptk_range *)ranges +
					*(const size_t *)a;
	const struct bmaptk_range *rb = (struct bmaptk_range *)ranges +
					*(const size_t *)b;
	uint64_t la = ra->last - ra->first, lb = rb->last - rb->first;

	return la < lb ? 1 : la > lb ? -1 : 0;
}

static int hash_ranges(int fd, const char *name, struct bmaptk_bmap *b,
		       const struct bmaptk_create_opts *opts,
		       struct bmaptk_error *err)
{
	unsigned nthreads = opts->threads ? opts->threads : online_cpus();
	struct hash_job job = {.name = name, .fd = fd, .bmap = b,
			       .ranges = b->ranges, .opts = opts};
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

static int open_image(const char *image, int *fd, struct stat *st,
		      struct bmaptk_error *err)
{
	*fd = open(image, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return bmaptk_set_error(err, errno == EACCES ? BMAPTK_ERR_IO
							     : BMAPTK_ERR_USAGE,
					errno, "%s: cannot open: %s", image,
					strerror(errno));
	if (fstat(*fd, st) < 0) {
		close(*fd);
		return bmaptk_set_error(err, BMAPTK_ERR_IO, errno, "%s: %s",
					image, strerror(errno));
	}
	if (!S_ISREG(st->st_mode)) {
		close(*fd);
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: %s, not a regular file", image,
					S_ISDIR(st->st_mode) ? "is a directory"
							     : "is a special file");
	}
	return 0;
}

int bmaptk_create(const char *image, const struct bmaptk_create_opts *opts,
		  struct bmaptk_bmap **out, struct bmaptk_error *err)
{
	struct block_ranges runs = {0};
	struct bmaptk_bmap *b;
	struct stat st;
	int fd, bs = 0, rc;

	*out = NULL;
	rc = open_image(image, &fd, &st, err);
	if (rc)
		return rc;
	/* The filesystem's block size, as bmaptool takes it. */
	if (ioctl(fd, FIGETBSZ, &bs) < 0 || bs <= 0 || (bs & (bs - 1)))
		bs = st.st_blksize > 0 ? (int)st.st_blksize : 4096;
	b = calloc(1, sizeof(*b));
	if (!b) {
		close(fd);
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory", image);
	}
	b->major = 2;
	b->image_size = (uint64_t)st.st_size;
	b->block_size = (uint32_t)bs;
	b->blocks_count = (b->image_size + b->block_size - 1) / b->block_size;
	b->hash_type = BMAPTK_HASH_SHA256;
	b->range_digests = !opts->no_checksum;
	rc = map_file(fd, image, b->image_size, b->block_size, opts->force_seek,
		      &runs, err);
	b->ranges = runs.v;
	b->nranges = runs.n;
	for (size_t i = 0; i < b->nranges; i++)
		b->mapped_blocks_count += b->ranges[i].last -
					  b->ranges[i].first + 1;
	if (!rc && b->range_digests && b->nranges)
		rc = hash_ranges(fd, image, b, opts, err);
	close(fd);
	if (rc) {
		bmaptk_bmap_free(b);
		return rc;
	}
	*out = b;
	return 0;
}
