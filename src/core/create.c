/* create: map a sparse file and hash its ranges on all cores. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapper.h"
#include "range_hash.h"
#include "util.h"

#define HASH_CHUNK (1u << 20)

static void store_digest(void *ctx, size_t index, const unsigned char *digest)
{
	struct bmaptk_bmap *b = ctx;

	memcpy(b->ranges[index].digest, digest, bmaptk_hash_size(b->hash_type));
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
	if (!rc && b->range_digests && b->nranges) {
		struct range_hash_opts ho = {.threads = opts->threads,
					     .chunk = HASH_CHUNK,
					     .progress = &opts->progress,
					     .interrupted = opts->interrupted,
					     .done = store_digest,
					     .ctx = b};
		rc = hash_ranges(fd, image, b, &ho, err);
	}
	close(fd);
	if (rc) {
		bmaptk_bmap_free(b);
		return rc;
	}
	*out = b;
	return 0;
}
