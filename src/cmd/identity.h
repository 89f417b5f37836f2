/* Which storage a run reads, so that no destination can be any of it:
 * `copy img img`, a hard link or symlink of the image, the discovered bmap
 * given as a DEST by habit, a loop device backed by the image (or the
 * image a loop device whose backing file is DEST), the device or the
 * backing file of the file system that holds the image. */
#ifndef BMAPTK_IDENTITY_H
#define BMAPTK_IDENTITY_H

#include <sys/types.h>

/* One piece of storage: a file (dev, ino) or a block device (rdev). */
struct storage_id {
	int is_blk;
	dev_t dev;
	ino_t ino;
	dev_t rdev;
	int direct; /* the input itself, not what holds or backs it */
	int input;  /* index into input_ids.names */
};

struct input_ids {
	struct storage_id v[32];
	size_t n;
	const char *what[8]; /* "the image", "the bmap", ... */
	char *names[8];	     /* as messages show them */
	size_t ninputs;
};

/* Remember location (a path, "-" or a file:// URL in any spelling curl
 * takes; other URLs are not local and are ignored) as an input of the run,
 * with the devices and files that hold or back it. A name that cannot be
 * stat'ed is not remembered (it was not read either). */
void input_ids_add(struct input_ids *ids, const char *location,
		   const char *what);
void input_ids_free(struct input_ids *ids);

/* 0 when DEST is none of the inputs' storage; else prints why and returns
 * BMAPTK_ERR_USAGE. A DEST that does not exist yet is no input. */
int input_ids_refuse_dest(const struct input_ids *ids, const char *dest);
/* The same without printing: 0, or BMAPTK_ERR_USAGE with err set. */
int input_ids_match(const struct input_ids *ids, const char *dest,
		    struct bmaptk_error *err);
/* The same for an opened DEST (fstat of its descriptor), which closes the
 * window between checking a name and opening it. */
int input_ids_refuse_fd(const struct input_ids *ids, int fd, const char *dest,
			struct bmaptk_error *err);

/* The local path a file:// URL names (malloc'd), the location itself for a
 * path, NULL for another URL. */
char *local_path_of(const char *location);

#endif
