/* Which files a run reads, so that no destination can be one of them:
 * `copy img img`, a hard link or symlink of the image, the discovered bmap
 * given as a DEST by habit, or the block device that holds the image. */
#ifndef BMAPTK_IDENTITY_H
#define BMAPTK_IDENTITY_H

#include <sys/types.h>

struct input_id {
	const char *what; /* "the image", "the bmap", "the bmap's signature" */
	char *name;	  /* as messages show it */
	dev_t dev;	  /* the file system holding it (0 for a device) */
	ino_t ino;
	dev_t rdev; /* for a block device */
	int is_blk;
};

struct input_ids {
	struct input_id v[4];
	size_t n;
};

/* Remember location (a path, "-" or file:// URL; other URLs are not local
 * and are ignored) as an input of the run. Best effort: a name that cannot
 * be stat'ed is not remembered (it was not read either). */
void input_ids_add(struct input_ids *ids, const char *location,
		   const char *what);
void input_ids_free(struct input_ids *ids);

/* 0 when DEST is none of the inputs; else prints why and returns
 * BMAPTK_ERR_USAGE. A DEST that does not exist yet is no input. */
int input_ids_refuse_dest(const struct input_ids *ids, const char *dest);

#endif
