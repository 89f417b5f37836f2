/* Who else uses a block device: mounts, swap and device-mapper/md holders
 * on it or on its partitions, from /proc and sysfs. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "blk_inuse.h"

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

/* A mountinfo line's mount is read-write: its own options (field 6) and
 * its super block's (after " - ", the third) both start with "rw". */
static int mount_is_rw(const char *line)
{
	char opts[64], super[64];
	const char *sep = strstr(line, " - ");

	if (sscanf(line, "%*s %*s %*s %*s %*s %63s", opts) != 1 || !sep ||
	    sscanf(sep + 3, "%*s %*s %63s", super) != 1)
		return 1; /* unreadable: assume the worst */
	return !strncmp(opts, "rw", 2) && !strncmp(super, "rw", 2) &&
	       (opts[2] == ',' || !opts[2]) && (super[2] == ',' || !super[2]);
}

static int check_mounts(const char *path, const struct blk_nodes *nodes,
			int rw_only, struct bmaptk_error *err)
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
		    sscanf(line, "%*s %*s %*s %*s %4095s", mountpoint) != 1 ||
		    (rw_only && !mount_is_rw(line)))
			continue;
		unescape(mountpoint);
		if (rw_only)
			rc = bmaptk_set_error(
			    err, BMAPTK_ERR_USAGE, EBUSY,
			    "%s is mounted read-write (/dev/%s on %s), so its "
			    "blocks are moving; unmount it or remount it "
			    "read-only (--force reads it anyway)",
			    path, n->name, mountpoint);
		else
			rc = bmaptk_set_error(
			    err, BMAPTK_ERR_USAGE, EBUSY,
			    "%s is mounted (/dev/%s on %s); unmount it first",
			    path, n->name, mountpoint);
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
int blk_is_removable(dev_t dev)
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
int blk_check_in_use(const char *path, dev_t dev, struct bmaptk_error *err)
{
	struct blk_nodes nodes = {0};
	int rc = collect_nodes(path, dev, &nodes, err);

	if (!rc)
		rc = check_mounts(path, &nodes, 0, err);
	if (!rc)
		rc = check_swaps(path, &nodes, err);
	if (!rc)
		rc = check_holders(path, &nodes, err);
	free(nodes.v);
	return rc;
}

int blk_check_mounted_rw(const char *path, dev_t dev, struct bmaptk_error *err)
{
	struct blk_nodes nodes = {0};
	int rc = collect_nodes(path, dev, &nodes, err);

	if (!rc)
		rc = check_mounts(path, &nodes, 1, err);
	free(nodes.v);
	return rc;
}

void blk_drop_cache(int fd)
{
	fdatasync(fd);
	ioctl(fd, BLKFLSBUF, 0); /* needs CAP_SYS_ADMIN; fadvise does not */
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}
