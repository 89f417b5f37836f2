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
#include "scan.h"
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
	/* create maps a local file; a URL is not one, and its name may hold
	 * a password that no message may show. */
	if (strstr(image, "://")) {
		char *shown = bmaptk_redact(image);
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s: create maps a local file, not a URL "
				 "(download it first)",
				 shown ? shown : "the image");
		free(shown);
		*fd = -1;
		return BMAPTK_ERR_USAGE;
	}
	/* O_NONBLOCK: a FIFO given as IMAGE must be refused, not waited on. */
	*fd = open(image, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (*fd < 0)
		return bmaptk_set_error(
		    err, errno == EACCES ? BMAPTK_ERR_IO : BMAPTK_ERR_USAGE,
		    errno, "%s: cannot open: %s", image, strerror(errno));
	if (fstat(*fd, st) < 0) {
		close(*fd);
		return bmaptk_set_error(err, BMAPTK_ERR_IO, errno, "%s: %s",
					image, strerror(errno));
	}
	if (!S_ISREG(st->st_mode)) {
		close(*fd);
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: %s, not a regular file", image,
					S_ISDIR(st->st_mode)
					    ? "is a directory"
					    : "is a special file");
	}
	return 0;
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
	if (!opts->scan_zeros && !simg && strcmp(s->format, "raw")) {
		*rc = bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: the image is compressed (%s); a bmap describes the "
		    "decompressed image: use --scan-zeros to find its holes",
		    image, s->format);
	} else if (opts->scan_zeros || simg) {
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
	int fd, bs = 0, rc;

	*out = NULL;
	rc = open_image(image, &fd, &st, err);
	if (rc)
		return rc;
	if (create_streamed(image, opts, out, &rc, err)) {
		close(fd);
		return rc;
	}
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
		b->mapped_blocks_count +=
		    b->ranges[i].last - b->ranges[i].first + 1;
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
