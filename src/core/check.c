/* check: does the medium hold the image? Reads each mapped range from the
 * device itself (O_DIRECT, or the page cache dropped first) and compares
 * its digest with the bmap's, reporting every bad range. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "range_hash.h"
#include "util.h"

#define CHECK_CHUNK (4u << 20)

struct medium {
	int fd;
	uint64_t size;
	unsigned align; /* O_DIRECT's unit, or 1 for cached reads */
};

struct verdicts {
	const struct bmaptk_bmap *bmap;
	const struct bmaptk_check_opts *opts;
	size_t bad;
};

static void compare_digest(void *ctx, size_t index, const unsigned char *got)
{
	struct verdicts *v = ctx;
	const struct bmaptk_bmap *b = v->bmap;

	if (!memcmp(got, b->ranges[index].digest,
		    bmaptk_hash_size(b->hash_type)))
		return;
	v->bad++;
	if (v->opts->bad_range)
		v->opts->bad_range(v->opts->ctx, b, index, got);
}

/* Drop what the page cache holds of a file, so reads reach the disk. */
static void drop_cache(int fd)
{
	fdatasync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

/* O_DIRECT needs every read to start on a multiple of align: with smaller
 * blocks, the reads go through the (dropped) page cache instead. */
static int open_medium(const char *dest, int cached, uint32_t block_size,
		       struct medium *m, struct bmaptk_error *err)
{
	struct stat st;
	int fd = open(dest, O_RDONLY | O_CLOEXEC), direct = -1, lbs = 512;

	if (fd < 0)
		return bmaptk_set_error(
		    err, errno == ENOENT ? BMAPTK_ERR_USAGE : BMAPTK_ERR_IO,
		    errno, "%s: cannot open: %s", dest, strerror(errno));
	if (fstat(fd, &st) < 0 ||
	    (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
		close(fd);
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: not a regular file or block device", dest);
	}
	m->size = (uint64_t)st.st_size;
	if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &m->size) < 0) {
		int e = errno;
		close(fd);
		return bmaptk_set_error(err, BMAPTK_ERR_IO, e,
					"%s: cannot get the device size: %s",
					dest, strerror(e));
	}
	if (S_ISBLK(st.st_mode))
		ioctl(fd, BLKSSZGET, &lbs);
	if (!cached) {
		drop_cache(fd);
		direct = open(dest, O_RDONLY | O_DIRECT | O_CLOEXEC);
	}
	m->align = 1;
	m->fd = fd;
	if (direct >= 0 &&
	    block_size %
		(S_ISBLK(st.st_mode) ? (unsigned)lbs : BMAPTK_BUFFER_ALIGN)) {
		close(direct);
		direct = -1;
	}
	if (direct >= 0) {
		close(fd);
		m->fd = direct;
		m->align =
		    S_ISBLK(st.st_mode) ? (unsigned)lbs : BMAPTK_BUFFER_ALIGN;
	}
	return 0;
}

int bmaptk_check(const struct bmaptk_bmap *b, const char *dest,
		 const struct bmaptk_check_opts *opts,
		 struct bmaptk_check_stats *stats, struct bmaptk_error *err)
{
	struct verdicts v = {.bmap = b, .opts = opts};
	struct range_hash_opts ho = {.threads = opts->threads,
				     .chunk = CHECK_CHUNK,
				     .progress = &opts->progress,
				     .interrupted = opts->interrupted,
				     .done = compare_digest,
				     .ctx = &v};
	struct timespec t0, t1;
	struct medium m;
	int rc;

	if (!b->range_digests && b->nranges)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "cannot check: the bmap has no checksums");
	if ((rc = open_medium(dest, opts->cached, b->block_size, &m, err)))
		return rc;
	if (m.size < b->image_size) {
		close(m.fd);
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: has %llu bytes, smaller than the image (%llu bytes)",
		    dest, (unsigned long long)m.size,
		    (unsigned long long)b->image_size);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ho.align = m.align;
	rc = hash_ranges(m.fd, dest, b, &ho, err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(m.fd);
	if (stats) {
		stats->ranges = b->nranges;
		stats->bad = v.bad;
		stats->bytes = bmaptk_bmap_mapped_bytes(b);
		stats->direct = m.align > 1;
		stats->seconds = (double)(t1.tv_sec - t0.tv_sec) +
				 (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	}
	if (!rc && v.bad)
		rc = bmaptk_set_error(
		    err, BMAPTK_ERR_VERIFY, 0,
		    "%s: %zu of %zu ranges do not match the image", dest, v.bad,
		    b->nranges);
	return rc;
}
