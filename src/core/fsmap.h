/* create --fs: which bytes of a disk image its partition table and its
 * filesystems use. Each filesystem mapper adds byte ranges to an extent
 * set; fsmap.c merges them with the partition table, the regions outside
 * the partitions and the ranges the user asked for (--map). */
#ifndef BMAPTK_FSMAP_H
#define BMAPTK_FSMAP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <bmaptk/bmaptk.h>

#include "mapper.h"

/* Byte ranges of the image, added in any order, overlapping or not. */
struct extent {
	uint64_t off, len;
};

struct extent_set {
	struct extent *v;
	size_t n, cap;
};

/* Returns 0, or -1 when out of memory. A zero-length range is ignored;
 * one adjacent to the last one added is merged into it. */
int extent_add(struct extent_set *s, uint64_t off, uint64_t len);
/* Sort by offset and merge overlapping and adjacent ranges. */
void extent_normalise(struct extent_set *s);
/* Bytes covered, overlaps counted once (normalises s). */
uint64_t extent_total(struct extent_set *s);
void extent_set_free(struct extent_set *s);

/* A filesystem mapper. The filesystem lies at [off, off+len) of the image
 * open read-only on fd; the mapper adds to out every byte range of it that
 * the filesystem uses, metadata included, as absolute image offsets inside
 * that window, and sets *fs_len to the filesystem's own size (what lies
 * after it in the window is not the filesystem's). It reads with pread on
 * fd only, keeps its memory bounded by
 * the filesystem's allocation structures, and returns:
 *   0   mapped;
 *  -1   the filesystem is corrupt or cannot be read: a one-line reason in
 *       why (no name, no trailing period: "bad superblock"); the caller
 *       warns, drops what this call added and maps the window as unknown;
 *  -2   out of memory;
 *  -3   interrupted: a mapper that may run long (a FAT of GiBs) asks
 *       fsmap_interrupted() now and then. */
typedef int fs_mapper_fn(int fd, uint64_t off, uint64_t len,
			 struct extent_set *out, uint64_t *fs_len, char *why,
			 size_t why_len);

/* Whether SIGINT/SIGTERM asked the running fsmap_image to stop. */
int fsmap_interrupted(void);

fs_mapper_fn fs_map_ext;  /* ext2/3/4, through libext2fs (fs_ext.c) */
fs_mapper_fn fs_map_fat;  /* FAT12/16/32, from the FAT (fs_fat.c) */
fs_mapper_fn fs_map_swap; /* Linux swap: its header page (fsmap.c) */

/* Map the image open on fd (size bytes) as create --fs does: the table,
 * each partition (or the filesystem on the whole image), and the rest by
 * data. data: the file's extents, normalised; NULL to take non-zero
 * blocks instead (block devices, --scan-zeros); unknown_whole: a partition
 * whose filesystem cannot be read is mapped whole (a block device, whose
 * zero blocks may belong to it). Fills layout (its parts
 * array is malloc'd). Warnings go through bmaptk_warn. */
int fsmap_image(int fd, const char *name, uint64_t size,
		const struct extent_set *data, int unknown_whole,
		volatile sig_atomic_t *interrupted, struct extent_set *out,
		struct bmaptk_layout *layout, struct bmaptk_error *err);

/* The block runs of the image open on fd for create --fs and --map (is_file:
 * a regular file, whose extents can be asked). */
int map_layout(int fd, const char *name, int is_file, uint64_t size,
	       uint32_t bs, const struct bmaptk_create_opts *opts,
	       struct block_ranges *out, struct bmaptk_error *err);

/* Add what [off, off+len) holds by data: data's extents there, or (data
 * NULL) its 4 KiB blocks that are not all zero. */
int fsmap_by_data(int fd, const char *name, uint64_t off, uint64_t len,
		  const struct extent_set *data,
		  volatile sig_atomic_t *interrupted, struct extent_set *out,
		  struct bmaptk_error *err);

#endif
