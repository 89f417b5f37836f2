/* create: map a sparse file and hash its ranges on all cores. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk_inuse.h"
#include "fsmap.h"
#include "mapper.h"
#include "range_hash.h"
#include "scan.h"
#include "util.h"

#define HASH_CHUNK (1u << 20)

static void store_digest(void *ctx, size_t index, const unsigned char *digest)
{
	struct bmaptk_bmap *b = ctx;

	memcpy(b->ranges[index].digest, digest, bmaptk_hash_size(b->hash_type));
}

/* A block device has no holes: it is read whole (--scan-zeros) or by
 * what its filesystems use (--fs). Reading one that a mounted filesystem
 * writes to gives a bmap of no consistent state. */
static int check_blockdev(const char *image, const struct stat *st,
			  const struct bmaptk_create_opts *opts,
			  struct bmaptk_error *err)
{
	if (!opts->fs && !opts->scan_zeros)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: is a block device, which has no "
					"holes to map: use --fs or "
					"--scan-zeros",
					image);
	return opts->force ? 0 : blk_check_mounted_rw(image, st->st_rdev, err);
}

static int open_image(const char *image, const struct bmaptk_create_opts *opts,
		      int *fd, struct stat *st, uint64_t *size,
		      struct bmaptk_error *err)
{
	int rc = 0;

	/* create maps a local file; a URL is not one, and its name may hold
	 * a password that no message may show. */
	*fd = -1;
	if (strstr(image, "://")) {
		char *shown = bmaptk_redact(image);
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s: create maps a local file, not a URL "
				 "(download it first)",
				 shown ? shown : "the image");
		free(shown);
		return BMAPTK_ERR_USAGE;
	}
	/* O_NONBLOCK: a FIFO given as IMAGE must be refused, not waited on. */
	*fd = open(image, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (*fd < 0)
		return bmaptk_set_error(
		    err, errno == EACCES ? BMAPTK_ERR_IO : BMAPTK_ERR_USAGE,
		    errno, "%s: cannot open: %s", image, strerror(errno));
	if (fstat(*fd, st) < 0)
		rc = bmaptk_set_error(err, BMAPTK_ERR_IO, errno, "%s: %s",
				      image, strerror(errno));
	else if (S_ISBLK(st->st_mode))
		rc = check_blockdev(image, st, opts, err);
	else if (!S_ISREG(st->st_mode))
		rc = bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				      "%s: %s, not a regular file", image,
				      S_ISDIR(st->st_mode)
					  ? "is a directory"
					  : "is a special file");
	*size = (uint64_t)st->st_size;
	if (!rc && S_ISBLK(st->st_mode) && ioctl(*fd, BLKGETSIZE64, size) < 0)
		rc = bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
				      "%s: cannot tell its size: %s", image,
				      strerror(errno));
	if (!rc && S_ISBLK(st->st_mode))
		blk_drop_cache(*fd);
	if (rc) {
		close(*fd);
		*fd = -1;
	}
	return rc;
}

/* Images whose holes are not the file's own: scanned as a stream.
 * Returns 1 when the image was handled here (rc in *rc). */
static int create_streamed(const char *image,
			   const struct bmaptk_create_opts *opts,
			   struct bmaptk_bmap **out, int *rc,
			   struct bmaptk_error *err)
{
	struct bmaptk_stream *s;
	int simg;

	if (!opts->reg)
		return 0;
	s = bmaptk_open_image(opts->reg, image, NULL, err);
	if (!s) {
		*rc = err->status;
		return 1;
	}
	simg = !strcmp(s->format, "simg");
	if ((opts->fs || opts->n_must_map || opts->split) &&
	    strcmp(s->format, "raw")) {
		*rc = bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: %s needs random access: decompress %s first%s", image,
		    opts->fs	       ? "--fs"
		    : opts->n_must_map ? "--map"
				       : "--split",
		    image,
		    opts->fs && !opts->scan_zeros ? ", or use --scan-zeros"
						  : "");
	} else if (!opts->scan_zeros && !simg && strcmp(s->format, "raw")) {
		*rc = bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: the image is compressed (%s); a bmap describes the "
		    "decompressed image: use --scan-zeros to find its holes",
		    image, s->format);
	} else if (!opts->fs && !opts->n_must_map && !opts->split &&
		   (opts->scan_zeros || simg)) {
		*rc = create_from_stream(s, opts, out, err);
	} else {
		s->ops->close(s);
		return 0;
	}
	s->ops->close(s);
	return 1;
}

int bmaptk_create(const char *image, const struct bmaptk_create_opts *opts,
		  struct bmaptk_bmap **out, struct bmaptk_error *err)
{
	struct block_ranges runs = {0};
	struct bmaptk_bmap *b;
	struct stat st;
	uint64_t size;
	int fd, bs = 0, rc;

	*out = NULL;
	rc = open_image(image, opts, &fd, &st, &size, err);
	if (rc)
		return rc;
	if (create_streamed(image, opts, out, &rc, err)) {
		close(fd);
		return rc;
	}
	/* The filesystem's block size, as bmaptool takes it; a device's
	 * blocks are the page-sized ones bmaps use everywhere. */
	if (S_ISBLK(st.st_mode))
		bs = 4096;
	else if (ioctl(fd, FIGETBSZ, &bs) < 0 || bs <= 0 || (bs & (bs - 1)))
		bs = st.st_blksize > 0 ? (int)st.st_blksize : 4096;
	b = calloc(1, sizeof(*b));
	if (!b) {
		close(fd);
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory", image);
	}
	b->major = 2;
	b->image_size = size;
	b->block_size = (uint32_t)bs;
	b->blocks_count = (b->image_size + b->block_size - 1) / b->block_size;
	b->hash_type = BMAPTK_HASH_SHA256;
	b->range_digests = !opts->no_checksum;
	/* A raw image with --scan-zeros comes here only with --map or
	 * --split: its zero blocks are found by reading it. */
	if (opts->fs || opts->n_must_map || opts->scan_zeros)
		rc = map_layout(fd, image, S_ISREG(st.st_mode), size,
				b->block_size, opts, &runs, err);
	else
		rc = map_file(fd, image, b->image_size, b->block_size,
			      opts->force_seek, &runs, err);
	b->ranges = runs.v;
	b->nranges = runs.n;
	for (size_t i = 0; i < b->nranges; i++)
		b->mapped_blocks_count +=
		    b->ranges[i].last - b->ranges[i].first + 1;
	if (!rc && opts->split && bmaptk_bmap_split(b, opts->split) < 0)
		rc = bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				      "%s: cannot split on a grid of %llu "
				      "bytes: not a multiple of the block "
				      "size %u (or out of memory)",
				      image, (unsigned long long)opts->split,
				      b->block_size);
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
		if (opts->layout) {
			bmaptk_layout_free(*opts->layout);
			*opts->layout = NULL;
		}
		return rc;
	}
	*out = b;
	return 0;
}
