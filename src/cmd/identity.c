#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cmd.h"
#include "identity.h"

/* The local path a location names, or NULL for a remote URL. */
static const char *local_path(const char *location)
{
	if (!strncmp(location, "file://", 7))
		return location + 7;
	return strstr(location, "://") ? NULL : location;
}

void input_ids_add(struct input_ids *ids, const char *location,
		   const char *what)
{
	const char *path = location ? local_path(location) : NULL;
	struct input_id *id;
	struct stat st;

	if (!path || ids->n == sizeof(ids->v) / sizeof(ids->v[0]))
		return;
	if (strcmp(path, "-") ? stat(path, &st) : fstat(STDIN_FILENO, &st))
		return;
	id = &ids->v[ids->n];
	if (!(id->name = bmaptk_redact(location)))
		return;
	id->what = what;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->is_blk = S_ISBLK(st.st_mode);
	id->rdev = id->is_blk ? st.st_rdev : 0;
	ids->n++;
}

void input_ids_free(struct input_ids *ids)
{
	for (size_t i = 0; i < ids->n; i++)
		free(ids->v[i].name);
	ids->n = 0;
}

/* The whole disk a partition belongs to; dev itself for a disk. */
static dev_t disk_of(dev_t dev)
{
	char path[96], line[32];
	unsigned maj, min;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/partition",
		 major(dev), minor(dev));
	if (access(path, F_OK))
		return dev;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../dev", major(dev),
		 minor(dev));
	if (!(f = fopen(path, "re")))
		return dev;
	ok = fgets(line, sizeof(line), f) &&
	     sscanf(line, "%u:%u", &maj, &min) == 2;
	fclose(f);
	return ok ? makedev(maj, min) : dev;
}

/* Writing to a is writing to b, or to part of it (or the reverse). */
static int devices_overlap(dev_t a, dev_t b)
{
	return a == b || disk_of(a) == b || disk_of(b) == a;
}

/* A loop device's backing file, as (dev, ino); 0 when it is not one. */
static int loop_backing(const char *dest, dev_t *dev, ino_t *ino)
{
	struct loop_info64 info;
	int fd = open(dest, O_RDONLY | O_CLOEXEC | O_NONBLOCK), ok;

	if (fd < 0)
		return 0;
	ok = ioctl(fd, LOOP_GET_STATUS64, &info) == 0;
	close(fd);
	if (ok) {
		*dev = (dev_t)info.lo_device;
		*ino = (ino_t)info.lo_inode;
	}
	return ok;
}

static const char *why_same(const struct input_id *id, const char *dest,
			    const struct stat *st)
{
	dev_t ldev;
	ino_t lino;

	if (!S_ISBLK(st->st_mode))
		return st->st_dev == id->dev && st->st_ino == id->ino ? "is"
								      : NULL;
	if (id->is_blk)
		return devices_overlap(st->st_rdev, id->rdev) ? "is or holds"
							      : NULL;
	if (devices_overlap(st->st_rdev, id->dev))
		return "holds the file system of";
	if (loop_backing(dest, &ldev, &lino) && ldev == id->dev &&
	    lino == id->ino)
		return "is a loop device backed by";
	return NULL;
}

int input_ids_refuse_dest(const struct input_ids *ids, const char *dest)
{
	struct stat st;

	if (stat(dest, &st))
		return 0;
	for (size_t i = 0; i < ids->n; i++) {
		const char *why = why_same(&ids->v[i], dest, &st);
		if (!why)
			continue;
		cli_error("%s: refusing to write here: it %s %s (%s), which "
			  "this copy reads",
			  dest, why, ids->v[i].what, ids->v[i].name);
		return BMAPTK_ERR_USAGE;
	}
	return 0;
}
