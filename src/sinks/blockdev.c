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

#include "sink_util.h"
#include "util.h"

struct blockdev_sink {
	struct bmaptk_sink base;
	int fd;	      /* buffered; holds the O_EXCL claim */
	int dfd;      /* O_DIRECT, or -1 */
	unsigned lbs; /* logical block size: O_DIRECT's unit */
	uint64_t image_size;
};

/* ---- the device and its partitions, from sysfs --------------------------- */

struct blk_node {
	dev_t dev;
	char name[NAME_MAX + 1]; /* kernel name: sdb, sdb1, loop0p1 */
};

struct blk_nodes {
	struct blk_node *v;
	size_t n;
};

static void sysfs_dir(dev_t dev, char *buf, size_t len)
{
	snprintf(buf, len, "/sys/dev/block/%u:%u", major(dev), minor(dev));
}

/* First line of a small sysfs file, without its newline. */
static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	int ok;

	if (!f)
		return -1;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (!ok)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int add_node(struct blk_nodes *nodes, dev_t dev, const char *name)
{
	struct blk_node *grown =
	    realloc(nodes->v, (nodes->n + 1) * sizeof(*grown));

	if (!grown)
		return -1;
	nodes->v = grown;
	grown[nodes->n].dev = dev;
	snprintf(grown[nodes->n].name, sizeof(grown->name), "%s", name);
	nodes->n++;
	return 0;
}

/* The partitions are the subdirectories of the disk's sysfs directory that
 * have a "partition" attribute. */
static int add_partitions(struct blk_nodes *nodes, const char *dir)
{
	char path[PATH_MAX], line[64];
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return 0; /* no sysfs: the device alone is still checked */
	while (!rc && (de = readdir(d)) != NULL) {
		unsigned maj, min;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/partition", dir,
			 de->d_name);
		if (access(path, F_OK) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/dev", dir, de->d_name);
		if (read_line(path, line, sizeof(line)) != 0 ||
		    sscanf(line, "%u:%u", &maj, &min) != 2)
			continue;
		rc = add_node(nodes, makedev(maj, min), de->d_name);
	}
	closedir(d);
	return rc;
}

static int collect_nodes(const char *path, dev_t dev, struct blk_nodes *nodes,
			 struct bmaptk_error *err)
{
	char dir[64];
	char *real;
	const char *base, *slash;
	int rc;

	/* The kernel's name of the device, for messages; the path's last
	 * component if sysfs is missing. */
	sysfs_dir(dev, dir, sizeof(dir));
	real = realpath(dir, NULL);
	base = real ? real : path;
	slash = strrchr(base, '/');
	rc = add_node(nodes, dev, slash ? slash + 1 : base);
	free(real);
	if (!rc)
		rc = add_partitions(nodes, dir);
	if (rc)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"out of memory");
	return 0;
}

static const struct blk_node *find_node(const struct blk_nodes *nodes,
					dev_t dev)
{
	for (size_t i = 0; i < nodes->n; i++)
		if (nodes->v[i].dev == dev)
			return &nodes->v[i];
	return NULL;
}

/* ---- refusals -------------------------------------------------------------
 */

/* Undo the octal escapes (\040 for a space) of /proc/self/mountinfo. */
static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
					(s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* The node a mountinfo line is on: by its major:minor, or by its source
 * path for file systems that report an anonymous device (btrfs). */
static const struct blk_node *mount_node(const struct blk_nodes *nodes,
					 const char *line)
{
	unsigned maj, min;
	const char *sep = strstr(line, " - ");
	char source[PATH_MAX];
	const struct blk_node *n;
	struct stat st;

	if (sscanf(line, "%*s %*s %u:%u", &maj, &min) != 2)
		return NULL;
	n = find_node(nodes, makedev(maj, min));
	if (n || !sep || sscanf(sep + 3, "%*s %4095s", source) != 1 ||
	    source[0] != '/')
		return n;
	unescape(source);
	if (stat(source, &st) == 0 && S_ISBLK(st.st_mode))
		return find_node(nodes, st.st_rdev);
	return NULL;
}

static int check_mounts(const char *path, const struct blk_nodes *nodes,
			struct bmaptk_error *err)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, mountpoint[PATH_MAX];
	size_t cap = 0;
	int rc = 0;

	if (!f)
		return 0; /* no /proc: O_EXCL still refuses a mounted device */
	while (!rc && getline(&line, &cap, f) > 0) {
		const struct blk_node *n = mount_node(nodes, line);
		if (!n ||
		    sscanf(line, "%*s %*s %*s %*s %4095s", mountpoint) != 1)
			continue;
		unescape(mountpoint);
		rc = bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, EBUSY,
		    "%s is mounted (/dev/%s on %s); unmount it first", path,
		    n->name, mountpoint);
	}
	free(line);
	fclose(f);
	return rc;
}

static int check_swaps(const char *path, const struct blk_nodes *nodes,
		       struct bmaptk_error *err)
{
	FILE *f = fopen("/proc/swaps", "re");
	char *line = NULL, name[PATH_MAX];
	size_t cap = 0;
	int rc = 0;

	if (!f)
		return 0;
	while (!rc && getline(&line, &cap, f) > 0) {
		const struct blk_node *n;
		struct stat st;
		if (sscanf(line, "%4095s", name) != 1 || name[0] != '/')
			continue;
		unescape(name);
		if (stat(name, &st) != 0 || !S_ISBLK(st.st_mode))
			continue;
		n = find_node(nodes, st.st_rdev);
		if (n)
			rc = bmaptk_set_error(
			    err, BMAPTK_ERR_USAGE, EBUSY,
			    "%s is in use as swap (/dev/%s); swapoff it first",
			    path, n->name);
	}
	free(line);
	fclose(f);
	return rc;
}

/* Device-mapper (LVM, LUKS) and md devices built on a node show up in its
 * holders directory. */
static int check_holders(const char *path, const struct blk_nodes *nodes,
			 struct bmaptk_error *err)
{
	char dir[64], holders[96], dm_path[PATH_MAX], dm_name[128];

	for (size_t i = 0; i < nodes->n; i++) {
		DIR *d;
		struct dirent *de;
		char holder[NAME_MAX + 1] = "";

		sysfs_dir(nodes->v[i].dev, dir, sizeof(dir));
		snprintf(holders, sizeof(holders), "%s/holders", dir);
		d = opendir(holders);
		if (!d)
			continue;
		while ((de = readdir(d)) != NULL && !holder[0])
			if (de->d_name[0] != '.')
				snprintf(holder, sizeof(holder), "%s",
					 de->d_name);
		closedir(d);
		if (!holder[0])
			continue;
		snprintf(dm_path, sizeof(dm_path),
			 "/sys/class/block/%s/dm/name", holder);
		if (read_line(dm_path, dm_name, sizeof(dm_name)) != 0)
			dm_name[0] = '\0';
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, EBUSY, "%s is in use by %s%s%s%s%s",
		    path, holder, dm_name[0] ? " (" : "", dm_name,
		    dm_name[0] ? ")" : "", i ? " through a partition" : "");
	}
	return 0;
}

/* A partition's removable flag lives on its disk. */
static int is_removable(dev_t dev)
{
	char dir[64], path[PATH_MAX], value[8];

	sysfs_dir(dev, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/partition", dir);
	if (access(path, F_OK) == 0)
		snprintf(path, sizeof(path), "%s/../removable", dir);
	else
		snprintf(path, sizeof(path), "%s/removable", dir);
	return read_line(path, value, sizeof(value)) == 0 &&
	       strcmp(value, "1") == 0;
}

/* Refusals that need no open descriptor, so they run before O_EXCL and give
 * the precise reason instead of a bare EBUSY. */
static int check_in_use(const char *path, dev_t dev, struct bmaptk_error *err)
{
	struct blk_nodes nodes = {0};
	int rc = collect_nodes(path, dev, &nodes, err);

	if (!rc)
		rc = check_mounts(path, &nodes, err);
	if (!rc)
		rc = check_swaps(path, &nodes, err);
	if (!rc)
		rc = check_holders(path, &nodes, err);
	free(nodes.v);
	return rc;
}

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
	if (opts->removable_only && !is_removable(st.st_rdev)) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s is not a removable block device", path);
		return NULL;
	}
	if (check_in_use(path, st.st_rdev, err))
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
