/* Local files: read sequentially, skip holes by seeking. Also "-" (stdin),
 * which cannot seek. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bmaptk/module.h>

#include "blk_inuse.h"
#include "util.h"

struct fd_stream {
	struct bmaptk_stream base;
	int fd;
	int seekable;
	int owns_fd;
	uint64_t pos;
};

static ssize_t fd_read(struct bmaptk_stream *s, void *buf, size_t len,
		       struct bmaptk_error *err)
{
	struct fd_stream *f = (struct fd_stream *)s;
	ssize_t n;

	n = read(f->fd, buf, len);
	/* Only SIGINT/SIGTERM handlers interrupt reads here: the user wants
	 * out, even of a pipe that stalls. */
	if (n < 0 && errno == EINTR)
		return bmaptk_set_error(err, BMAPTK_ERR_INTERRUPTED, EINTR,
					"%s: interrupted", s->name),
		       -1;
	if (n < 0)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
					"%s: read error at offset %llu: %s",
					s->name, (unsigned long long)f->pos,
					strerror(errno)),
		       -1;
	f->pos += (uint64_t)n;
	return n;
}

static int fd_skip(struct bmaptk_stream *s, uint64_t n,
		   struct bmaptk_error *err)
{
	struct fd_stream *f = (struct fd_stream *)s;

	if (!f->seekable) {
		char drop[65536];
		while (n > 0) {
			ssize_t got =
			    fd_read(s, drop, MIN(n, sizeof(drop)), err);
			if (got < 0)
				return err->status;
			if (got == 0)
				return bmaptk_set_error(
				    err, BMAPTK_ERR_USAGE, 0,
				    "%s: the image ends before the bmap says "
				    "it does",
				    s->name);
			n -= (uint64_t)got;
		}
		return 0;
	}
	if (s->size != BMAPTK_SIZE_UNKNOWN && f->pos + n > s->size)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: the image ends before the bmap says it does", s->name);
	if (lseek(f->fd, (off_t)(f->pos + n), SEEK_SET) < 0)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
					"%s: seek error: %s", s->name,
					strerror(errno));
	f->pos += n;
	return 0;
}

static void fd_close(struct bmaptk_stream *s)
{
	struct fd_stream *f = (struct fd_stream *)s;

	if (f->owns_fd)
		close(f->fd);
	free(f);
}

static const struct bmaptk_stream_ops fd_ops = {
    .read = fd_read,
    .skip = fd_skip,
    .close = fd_close,
};

static struct bmaptk_stream *
fd_stream_new(int fd, const char *name, int owns_fd, struct bmaptk_error *err)
{
	struct fd_stream *f = calloc(1, sizeof(*f));
	struct stat st;

	if (!f) {
		if (owns_fd)
			close(fd);
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM, "out of memory");
		return NULL;
	}
	f->base.ops = &fd_ops;
	f->base.name = name;
	f->base.size = BMAPTK_SIZE_UNKNOWN;
	f->fd = fd;
	f->owns_fd = owns_fd;
	if (fstat(fd, &st) < 0) {
		st.st_mode = 0;
	} else if (S_ISREG(st.st_mode)) {
		f->seekable = 1;
		f->base.size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode) &&
		   ioctl(fd, BLKGETSIZE64, &f->base.size) == 0) {
		/* A golden card read as the image, from the medium. */
		f->seekable = 1;
		blk_drop_cache(fd);
	} else {
		f->base.size = BMAPTK_SIZE_UNKNOWN;
	}
	if (f->seekable) {
		f->pos = (uint64_t)lseek(fd, 0, SEEK_CUR);
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	}
	return &f->base;
}

static int file_probe(const char *location)
{
	/* Anything that is not "-" and has no URL scheme is a path. */
	if (!strcmp(location, "-") || strstr(location, "://"))
		return 0;
	return 1;
}

static struct bmaptk_stream *file_open(const char *location,
				       const struct bmaptk_source_opts *opts,
				       struct bmaptk_error *err)
{
	struct stat st;
	int fd;

	(void)opts;
	fd = open(location, O_RDONLY | O_CLOEXEC);
	/* Opening a FIFO waits for its writer; only our SIGINT/SIGTERM
	 * handlers interrupt that. */
	if (fd < 0 && errno == EINTR) {
		bmaptk_set_error(err, BMAPTK_ERR_INTERRUPTED, EINTR,
				 "%s: interrupted while waiting to open it",
				 location);
		return NULL;
	}
	if (fd < 0) {
		bmaptk_set_error(
		    err, errno == ENOENT ? BMAPTK_ERR_USAGE : BMAPTK_ERR_IO,
		    errno, "%s: cannot open: %s", location, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, EISDIR,
				 "%s: is a directory, not an image", location);
		return NULL;
	}
	return fd_stream_new(fd, location, 1, err);
}

static const struct bmaptk_source_module file_ops = {
    .probe = file_probe,
    .open = file_open,
};

const struct bmaptk_module bmaptk_source_file = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_SOURCE,
    .name = "file",
    .description = "local files; holes skipped by seeking",
    .version = "1",
    .priority = 0,
    .u.source = &file_ops,
};

static int stdin_probe(const char *location)
{
	return !strcmp(location, "-");
}

static struct bmaptk_stream *stdin_open(const char *location,
					const struct bmaptk_source_opts *opts,
					struct bmaptk_error *err)
{
	(void)opts;
	(void)location;
	return fd_stream_new(STDIN_FILENO, "(stdin)", 0, err);
}

static const struct bmaptk_source_module stdin_ops = {
    .probe = stdin_probe,
    .open = stdin_open,
};

const struct bmaptk_module bmaptk_source_stdin = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_SOURCE,
    .name = "stdin",
    .description = "the image on standard input (\"-\"); needs --bmap",
    .version = "1",
    .priority = 0,
    .u.source = &stdin_ops,
};
