/* Which blocks of a sparse file hold data. */
#ifndef BMAPTK_MAPPER_H
#define BMAPTK_MAPPER_H

#include <bmaptk/bmaptk.h>

struct block_ranges {
	struct bmaptk_range *v;
	size_t n, cap;
};

/* Append blocks [first, last] (in order), merging with the previous run
 * when they overlap or touch. Returns 0, or -1 when out of memory. */
int block_ranges_add(struct block_ranges *out, uint64_t first, uint64_t last);

/* Map the file open on fd (size bytes, block_size per block) into maximal
 * runs of mapped blocks, as bmaptool does: FIEMAP with FIEMAP_FLAG_SYNC,
 * or SEEK_DATA/SEEK_HOLE where FIEMAP is missing or force_seek is set. */
int map_file(int fd, const char *name, uint64_t size, uint32_t block_size,
	     int force_seek, struct block_ranges *out,
	     struct bmaptk_error *err);

#endif
