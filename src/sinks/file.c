/* Regular-file destinations. Like bmaptool, the file is cut to zero and
 * extended to the image size before anything is written, so it ends up
 * exactly image-sized, the bmap's holes stay holes, and no stale bytes of an
 * older file survive. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bmaptk/module.h>

#include "sink_util.h"
#include "util.h"

struct file_sink {
	struct bmaptk_sink base;
	int fd;
	uint64_t image_size; /* from the options; may be unknown */
};

/* Start the disk writing each piece as soon as it is in the page cache, so
 * the fsync at the end waits for the last pieces only instead of the whole
 * image: writeback overlaps decoding. Only a hint: errors surface at the
 * fsync. */
static void start_writeback(int fd, uint64_t off, size_t len)
{
	(void)sync_file_range(fd, (off_t)off, (off_t)len,
			      SYNC_FILE_RANGE_WRITE);
}

static int file_pwrite(struct bmaptk_sink *s, const void *buf, size_t len,
		       uint64_t off, struct bmaptk_error *err)
{
	struct file_sink *f = (struct file_sink *)s;
	int rc = sink_check_range(s->name, f->image_size, len, off, err);

	if (rc || (rc = sink_pwrite_fd(f->fd, s->name, buf, len, off, err)))
		return rc;
	start_writeback(f->fd, off, len);
	return 0;
}

static int file_pread(struct bmaptk_sink *s, void *buf, size_t len,
		      uint64_t off, struct bmaptk_error *err)
{
	struct file_sink *f = (struct file_sink *)s;

	return sink_pread_fd(f->fd, s->name, buf, len, off, err);
}

static int file_punch(struct bmaptk_sink *s, uint64_t off, uint64_t len,
		      struct bmaptk_error *err)
{
	struct file_sink *f = (struct file_sink *)s;

	return sink_punch_hole(f->fd, s->name, off, len, err);
}

static int set_size(int fd, const char *name, uint64_t size,
		    struct bmaptk_error *err)
{
	if (ftruncate(fd, (off_t)size) == 0)
		return 0;
	return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
				"%s: cannot set the size to %llu bytes: %s",
				name, (unsigned long long)size,
				strerror(errno));
}

static int file_finish(struct bmaptk_sink *s, uint64_t image_size,
		       struct bmaptk_error *err)
{
	struct file_sink *f = (struct file_sink *)s;
	struct stat st;
	int rc;

	if (fstat(f->fd, &st) < 0)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, errno, "%s: %s",
					s->name, strerror(errno));
	/* Streamed without a bmap, the size is only known now. */
	if (image_size != BMAPTK_SIZE_UNKNOWN &&
	    (uint64_t)st.st_size != image_size) {
		rc = set_size(f->fd, s->name, image_size, err);
		if (rc)
			return rc;
	}
	return sink_fsync(f->fd, s->name, err);
}

static int file_close(struct bmaptk_sink *s, int failed)
{
	struct file_sink *f = (struct file_sink *)s;
	int removed = 0;

	close(f->fd);
	/* Only what we created is ours to remove; a file that existed before
	 * stays, and the host says it is incomplete. */
	if (failed && s->created)
		removed = unlink(s->name) == 0 ? 1 : -1;
	free(f);
	return removed;
}

static const struct bmaptk_sink_ops file_ops = {
    .pwrite = file_pwrite,
    .pread = file_pread,
    .discard = file_punch,
    .zeroout = file_punch,
    .finish = file_finish,
    .close = file_close,
};

/* Open path read-write, creating it if missing; *created tells which. O_EXCL
 * makes "we created it" certain, so close(failed) never removes a file that
 * someone else made in between. */
static int open_or_create(const char *path, int *created,
			  struct bmaptk_error *err)
{
	const int flags = O_RDWR | O_CLOEXEC | O_NOCTTY;

	for (int attempt = 0; attempt < 3; attempt++) {
		int fd = open(path, flags | O_CREAT | O_EXCL, 0644);
		if (fd >= 0) {
			*created = 1;
			return fd;
		}
		if (errno != EEXIST) {
			bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
					 "cannot create %s: %s", path,
					 strerror(errno));
			return -1;
		}
		fd = open(path, flags | O_NONBLOCK);
		if (fd >= 0) {
			*created = 0;
			return fd;
		}
		if (errno != ENOENT) /* else it vanished: try again */
			break;
	}
	bmaptk_set_error(err, BMAPTK_ERR_IO, errno, "cannot open %s: %s", path,
			 strerror(errno));
	return -1;
}

/* Make the file exactly image-sized with every old byte a hole (punched,
 * or cut to zero and extended). With keep_data the old bytes stay (to be
 * compared) and the host punches the holes. */
static int prepare_size(struct file_sink *f, uint64_t old_size, int keep_data,
			struct bmaptk_error *err)
{
	uint64_t size = f->image_size;
	int rc;

	if (size == BMAPTK_SIZE_UNKNOWN)
		return keep_data ? 0 : set_size(f->fd, f->base.name, 0, err);
	/* The size first: a file system that cannot hold the image must
	 * refuse it before any old byte is gone. An empty file has no old
	 * byte to punch (punching a fresh 1 GiB file costs 27 ms on tmpfs). */
	if ((rc = set_size(f->fd, f->base.name, size, err)) || keep_data ||
	    old_size == 0)
		return rc;
	if (sink_punch_hole(f->fd, f->base.name, 0, size, err) == 0)
		return 0;
	if ((rc = set_size(f->fd, f->base.name, 0, err)))
		return rc;
	return set_size(f->fd, f->base.name, size, err);
}

static struct bmaptk_sink *file_open(const char *path,
				     const struct bmaptk_sink_opts *opts,
				     struct bmaptk_error *err)
{
	struct file_sink *f = calloc(1, sizeof(*f));
	struct stat st;

	if (!f) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM, "out of memory");
		return NULL;
	}
	f->base.ops = &file_ops;
	f->base.name = path;
	f->image_size = opts->image_size;
	f->fd = open_or_create(path, &f->base.created, err);
	if (f->fd < 0) {
		free(f);
		return NULL;
	}
	/* O_NONBLOCK only kept a FIFO from hanging the open. */
	if (fcntl(f->fd, F_SETFL, 0) < 0 || fstat(f->fd, &st) < 0) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, errno, "%s: %s", path,
				 strerror(errno));
		file_close(&f->base, 1);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s: not a regular file", path);
		file_close(&f->base, 1);
		return NULL;
	}
	if (sink_refuse_fd(opts, f->fd, path, err)) {
		file_close(&f->base, 1);
		return NULL;
	}
	if (prepare_size(f, (uint64_t)st.st_size, opts->keep_data, err)) {
		file_close(&f->base, 1);
		return NULL;
	}
	bmaptk_debug("%s: regular file, %s (%llu bytes before), made the "
		     "image's size with holes%s",
		     path, f->base.created ? "created" : "existing",
		     (unsigned long long)st.st_size,
		     opts->keep_data ? "; old bytes kept to compare" : "");
	return &f->base;
}

/* Missing paths are ours too: the file is created. */
static int file_probe(const char *path, const struct stat *st)
{
	(void)path;
	return !st || S_ISREG(st->st_mode) ? 1 : 0;
}

static const struct bmaptk_sink_module file_module = {
    .probe = file_probe,
    .open = file_open,
};

const struct bmaptk_module bmaptk_sink_file = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_SINK,
    .name = "file",
    .description = "regular file: created or cut to the image size, holes kept",
    .version = "1",
    .u.sink = &file_module,
};
