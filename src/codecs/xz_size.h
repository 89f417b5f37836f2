/* The uncompressed size of a local xz file, from its index. */
#ifndef BMAPTK_XZ_SIZE_H
#define BMAPTK_XZ_SIZE_H

#include <stdint.h>

/* The total uncompressed size of every stream in the xz file at PATH, read
 * from the indexes at its end. Local regular files only ("-" and URLs are
 * not read: a stream cannot be read twice). BMAPTK_SIZE_UNKNOWN on any
 * error (not xz, truncated, corrupt, over the memory limit, unreadable):
 * the decoder reports those during the copy. */
uint64_t bmaptk_xz_size(const char *path);

#endif
