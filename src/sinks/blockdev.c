/* Block-device destinations. Everything that could make a write harmful is
 * checked before the first byte goes out: mounts and swap on the device or
 * its partitions, device-mapper/LVM/LUKS holders, size, and optionally
 * removability. The device is held with O_EXCL while we write, and never
 * truncated or removed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <bmaptk/module.h>

#include "blk_inuse.h"
#include "sink_util.h"
#include "util.h"

struct blockdev_sink {
	struct bmaptk_sink base;
	int fd;	      /* buffered; holds the O_EXCL claim */
	int dfd;      /* O_DIRECT, or -1 */
	unsigned lbs; /* logical block size: O_DIRECT's unit */
	uint64_t image_size;
};

/* A write-protected card opens read-write and fails at the first write;
 * say so before anything is written. */
static int check_writable(struct blockdev_sink *b, struct bmaptk_error *err)
{
	int ro = 0;

	if (ioctl(b->fd, BLKROGET, &ro) == 0 && ro)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, EROFS,
					"%s is read-only (write-protect "
					"switch?)",
					b->base.name);
	return 0;
}

static int check_size(struct blockdev_sink *b, struct bmaptk_error *err)
{
	uint64_t size;

	if (ioctl(b->fd, BLKGETSIZE64, &size) < 0)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
					"%s: cannot get the device size: %s",
					b->base.name, strerror(errno));
	if (b->image_size != BMAPTK_SIZE_UNKNOWN && size < b->image_size)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, ENOSPC,
					"%s is smaller than the image: %llu "
					"bytes, the image needs %llu bytes",
					b->base.name, (unsigned long long)size,
					(unsigned long long)b->image_size);
	return 0;
}

/* ---- I/O ------------------------------------------------------------------
 */

/* Bytes of a transfer at buf/off that O_DIRECT can take: whole logical
 * blocks from an aligned buffer at an aligned offset. */
static size_t direct_part(const struct blockdev_sink *b, const void *buf,
			  size_t len, uint64_t off)
{
	if (b->dfd < 0 || ((uintptr_t)buf | off) % b->lbs)
		return 0;
	return len - len % b->lbs;
}

static int blockdev_pwrite(struct bmaptk_sink *s, const void *buf, size_t len,
			   uint64_t off, struct bmaptk_error *err)
{
	struct blockdev_sink *b = (struct blockdev_sink *)s;
	size_t direct = direct_part(b, buf, len, off);
	int rc = sink_check_range(s->name, b->image_size, len, off, err);

	if (rc)
		return rc;
	if (direct) {
		if (pwrite_full(b->dfd, buf, direct, off) == 0) {
			buf = (const char *)buf + direct;
			len -= direct;
			off += direct;
		} else if (errno == EINVAL) {
			/* The device wants more alignment than it says:
			 * stay buffered from now on. */
			close(b->dfd);
			b->dfd = -1;
		} else {
			/* A real write error: report it. Writing again through
			 * another descriptor would hide it, and the tail after
			 * the aligned part would still be missing. */
			return bmaptk_set_error(
			    err, BMAPTK_ERR_IO, errno,
			    "%s: write error at offset %llu: %s", s->name,
			    (unsigned long long)off, strerror(errno));
		}
	}
	if (!len)
		return 0;
	return sink_pwrite_fd(b->fd, s->name, buf, len, off, err);
}

static int blockdev_pread(struct bmaptk_sink *s, void *buf, size_t len,
			  uint64_t off, struct bmaptk_error *err)
{
	struct blockdev_sink *b = (struct blockdev_sink *)s;
	size_t direct = direct_part(b, buf, len, off);
	int rc;

	if (direct) {
		rc = sink_pread_fd(b->dfd, s->name, buf, direct, off, err);
		if (rc)
			return rc;
		buf = (char *)buf + direct;
		len -= direct;
		off += direct;
	}
	if (!len)
		return 0;
	return sink_pread_fd(b->fd, s->name, buf, len, off, err);
}

static int blockdev_ioctl_range(struct bmaptk_sink *s, unsigned long req,
				const char *what, uint64_t off, uint64_t len,
				struct bmaptk_error *err)
{
	struct blockdev_sink *b = (struct blockdev_sink *)s;
	uint64_t range[2] = {off, len};

	if (len == 0 || ioctl(b->fd, req, range) == 0)
		return 0;
	if (errno == EOPNOTSUPP || errno == ENOTTY)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, errno,
					"%s: the device does not support %s",
					s->name, what);
	return bmaptk_set_error(
	    err, BMAPTK_ERR_IO, errno,
	    "%s: %s of %llu bytes at offset %llu failed: %s", s->name, what,
	    (unsigned long long)len, (unsigned long long)off, strerror(errno));
}

/* The ioctls take whole sectors; only the image's last hole can end
 * inside one. */
static uint64_t sector_tail(const struct blockdev_sink *b, uint64_t len)
{
	return len % (b->lbs ? b->lbs : 512);
}

static int blockdev_discard(struct bmaptk_sink *s, uint64_t off, uint64_t len,
			    struct bmaptk_error *err)
{
	uint64_t tail = sector_tail((struct blockdev_sink *)s, len);

	/* A partial sector is left as it is: discarding is advice. */
	return blockdev_ioctl_range(s, BLKDISCARD, "discard", off, len - tail,
				    err);
}

static int blockdev_zeroout(struct bmaptk_sink *s, uint64_t off, uint64_t len,
			    struct bmaptk_error *err)
{
	static const char zeros[4096];
	struct blockdev_sink *b = (struct blockdev_sink *)s;
	uint64_t tail = sector_tail(b, len);
	int rc = blockdev_ioctl_range(s, BLKZEROOUT, "zeroing", off, len - tail,
				      err);

	if (rc || !tail)
		return rc;
	return sink_pwrite_fd(b->fd, s->name, zeros, (size_t)tail,
			      off + len - tail, err);
}

/* One fsync covers both descriptors: they share the device's page cache,
 * and it also flushes the device's write cache. */
static int blockdev_finish(struct bmaptk_sink *s, uint64_t image_size,
			   struct bmaptk_error *err)
{
	struct blockdev_sink *b = (struct blockdev_sink *)s;
	int rc;

	(void)image_size; /* a device is never resized */
	rc = sink_fsync(b->fd, s->name, err);
	/* Drop the device's cached pages, so a read-back reads the medium. */
	if (!rc)
		ioctl(b->fd, BLKFLSBUF, 0);
	return rc;
}

static int blockdev_close(struct bmaptk_sink *s, int failed)
{
	struct blockdev_sink *b = (struct blockdev_sink *)s;

	(void)failed; /* nothing to remove: the device stays */
	if (b->dfd >= 0)
		close(b->dfd);
	if (b->fd >= 0)
		close(b->fd);
	free(b);
	return 0;
}

static const struct bmaptk_sink_ops blockdev_ops = {
    .pwrite = blockdev_pwrite,
    .pread = blockdev_pread,
    .discard = blockdev_discard,
    .zeroout = blockdev_zeroout,
    .finish = blockdev_finish,
    .close = blockdev_close,
};

/* ---- open -----------------------------------------------------------------
 */

static int open_exclusive(struct blockdev_sink *b, dev_t dev,
			  struct bmaptk_error *err)
{
	const char *path = b->base.name;
	struct stat st;

	b->fd = open(path, O_RDWR | O_EXCL | O_CLOEXEC);
	if (b->fd < 0 && errno == EBUSY)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, EBUSY,
					"%s: device is in use (mounted or "
					"claimed by another program)",
					path);
	if (b->fd < 0)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
					"cannot open %s: %s", path,
					strerror(errno));
	if (fstat(b->fd, &st) < 0)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, errno, "%s: %s",
					path, strerror(errno));
	if (!S_ISBLK(st.st_mode) || st.st_rdev != dev)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: changed while it was being opened",
					path);
	return 0;
}

/* The O_DIRECT descriptor is optional: without it every transfer is
 * buffered, which is only slower. The O_EXCL claim is held by b->fd. */
static void open_direct(struct blockdev_sink *b, dev_t dev)
{
	int lbs = 0;
	struct stat st;

	if (ioctl(b->fd, BLKSSZGET, &lbs) < 0 || lbs <= 0 ||
	    BMAPTK_BUFFER_ALIGN % lbs)
		return;
	b->lbs = (unsigned)lbs;
	b->dfd = open(b->base.name, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (b->dfd >= 0 && (fstat(b->dfd, &st) < 0 || st.st_rdev != dev)) {
		close(b->dfd);
		b->dfd = -1;
	}
}

static struct bmaptk_sink *blockdev_open(const char *path,
					 const struct bmaptk_sink_opts *opts,
					 struct bmaptk_error *err)
{
	struct blockdev_sink *b;
	struct stat st;

	if (stat(path, &st) < 0) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, errno, "%s: %s", path,
				 strerror(errno));
		return NULL;
	}
	if (!S_ISBLK(st.st_mode)) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s: not a block device", path);
		return NULL;
	}
	if (opts->removable_only && !blk_is_removable(st.st_rdev)) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s is not a removable block device", path);
		return NULL;
	}
	if (blk_check_in_use(path, st.st_rdev, err))
		return NULL;
	b = calloc(1, sizeof(*b));
	if (!b) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM, "out of memory");
		return NULL;
	}
	b->base.ops = &blockdev_ops;
	b->base.name = path;
	b->base.is_blockdev = 1;
	b->dfd = -1;
	b->image_size = opts->image_size;
	if (open_exclusive(b, st.st_rdev, err) ||
	    sink_refuse_fd(opts, b->fd, path, err) || check_writable(b, err) ||
	    check_size(b, err)) {
		blockdev_close(&b->base, 1);
		return NULL;
	}
	if (opts->allow_direct)
		open_direct(b, st.st_rdev);
	bmaptk_debug("%s: block device %u:%u, opened O_EXCL; %s", path,
		     major(st.st_rdev), minor(st.st_rdev),
		     b->dfd >= 0 ? "aligned parts written with O_DIRECT"
				 : "buffered writes (no O_DIRECT)");
	if (b->dfd >= 0)
		bmaptk_debug("%s: logical block size %u bytes: O_DIRECT needs "
			     "buffers and offsets aligned to it",
			     path, b->lbs);
	return &b->base;
}

static int blockdev_probe(const char *path, const struct stat *st)
{
	(void)path;
	return st && S_ISBLK(st->st_mode) ? 1 : 0;
}

static const struct bmaptk_sink_module blockdev_module = {
    .probe = blockdev_probe,
    .open = blockdev_open,
};

const struct bmaptk_module bmaptk_sink_blockdev = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_SINK,
    .name = "blockdev",
    .description = "block device: opened exclusively, refused if mounted, in "
		   "use or too small",
    .version = "1",
    .u.sink = &blockdev_module,
};
