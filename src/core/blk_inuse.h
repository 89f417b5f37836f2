/* Who else uses a block device, checked by name before it is opened so
 * that the refusal gives the precise reason. */
#ifndef BMAPTK_BLK_INUSE_H
#define BMAPTK_BLK_INUSE_H

#include <sys/types.h>

#include <bmaptk/module.h>

/* 0, or BMAPTK_ERR_USAGE (err set) when the device at path (dev) or one of
 * its partitions is mounted, used as swap or held by device-mapper/md: it
 * must not be written. */
int blk_check_in_use(const char *path, dev_t dev, struct bmaptk_error *err);
/* The same for reading it as an image: only a read-write mount refuses,
 * since its blocks change while they are read. */
int blk_check_mounted_rw(const char *path, dev_t dev, struct bmaptk_error *err);
/* Drop what the page cache holds of the device open on fd: a partition
 * written through its own node leaves the whole disk's cache stale. */
void blk_drop_cache(int fd);
/* The removable flag of the device's disk. */
int blk_is_removable(dev_t dev);

#endif
