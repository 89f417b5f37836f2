#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "sink_util.h"
#include "util.h"

int sink_check_range(const char *name, uint64_t image_size, size_t len,
		     uint64_t off, struct bmaptk_error *err)
{
	if (image_size == BMAPTK_SIZE_UNKNOWN)
		return 0;
	if (off > image_size || len > image_size - off)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_IO, EFBIG,
		    "%s: refusing to write %zu bytes at offset %llu, past the "
		    "image size of %llu bytes",
		    name, len, (unsigned long long)off,
		    (unsigned long long)image_size);
	return 0;
}

int sink_pwrite_fd(int fd, const char *name, const void *buf, size_t len,
		   uint64_t off, struct bmaptk_error *err)
{
	if (pwrite_full(fd, buf, len, off) == 0)
		return 0;
	return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
				"%s: write error at offset %llu: %s", name,
				(unsigned long long)off, strerror(errno));
}

int sink_pread_fd(int fd, const char *name, void *buf, size_t len, uint64_t off,
		  struct bmaptk_error *err)
{
	ssize_t n = pread_full(fd, buf, len, off);

	if (n < 0)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
					"%s: read error at offset %llu: %s",
					name, (unsigned long long)off,
					strerror(errno));
	if ((size_t)n < len)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_IO, 0,
		    "%s: read error at offset %llu: unexpected end of file",
		    name, (unsigned long long)(off + (uint64_t)n));
	return 0;
}

int sink_fsync(int fd, const char *name, struct bmaptk_error *err)
{
	if (fsync(fd) == 0)
		return 0;
	return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
				"%s: cannot flush to disk: %s", name,
				strerror(errno));
}

int sink_punch_hole(int fd, const char *name, uint64_t off, uint64_t len,
		    struct bmaptk_error *err)
{
	if (len == 0 ||
	    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
				"%s: cannot punch a hole at offset %llu: %s",
				name, (unsigned long long)off, strerror(errno));
}

int sink_refuse_fd(const struct bmaptk_sink_opts *opts, int fd,
		   const char *path, struct bmaptk_error *err)
{
	return opts->refuse_fd
		   ? opts->refuse_fd(opts->refuse_ctx, fd, path, err)
		   : 0;
}
