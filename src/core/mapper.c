#include <errno.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "mapper.h"

#define FIEMAP_BATCH 512

int block_ranges_add(struct block_ranges *out, uint64_t first, uint64_t last)
{
	struct bmaptk_range *prev = out->n ? &out->v[out->n - 1] : NULL;

	if (prev && first <= prev->last + 1) {
		if (last > prev->last)
			prev->last = last;
		return 0;
	}
	if (out->n == out->cap || !out->v) {
		size_t cap = out->cap ? 2 * out->cap : 64;
		struct bmaptk_range *grown =
		    realloc(out->v, cap * sizeof(*grown));
		if (!grown)
			return -1;
		out->v = grown;
		out->cap = cap;
	}
	memset(&out->v[out->n], 0, sizeof(out->v[0]));
	out->v[out->n].first = first;
	out->v[out->n].last = last;
	out->n++;
	return 0;
}

static int oom(const char *name, struct bmaptk_error *err)
{
	return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM, "%s: out of memory",
				name);
}

/* Returns 0, a status, or -1 when FIEMAP is not supported here. */
static int map_fiemap(int fd, const char *name, uint64_t blocks, uint32_t bs,
		      struct block_ranges *out, struct bmaptk_error *err)
{
	size_t sz =
	    sizeof(struct fiemap) + FIEMAP_BATCH * sizeof(struct fiemap_extent);
	struct fiemap *fm = malloc(sz);
	uint64_t pos = 0, limit = blocks * bs;
	int rc = 0, done = 0;

	if (!fm)
		return oom(name, err);
	while (!done && pos < limit) {
		memset(fm, 0, sz);
		fm->fm_start = pos;
		fm->fm_length = limit - pos;
		fm->fm_flags = FIEMAP_FLAG_SYNC;
		fm->fm_extent_count = FIEMAP_BATCH;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
			if (errno == EOPNOTSUPP || errno == ENOTTY) {
				rc = -1;
			} else {
				rc = bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
						      "%s: FIEMAP failed: %s",
						      name, strerror(errno));
			}
			break;
		}
		if (fm->fm_mapped_extents == 0)
			break;
		for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
			const struct fiemap_extent *e = &fm->fm_extents[i];
			uint64_t first = e->fe_logical / bs;
			uint64_t end = e->fe_logical + e->fe_length;
			uint64_t last = (end + bs - 1) / bs - 1;
			if (first >= blocks) {
				done = 1;
				break;
			}
			if (last >= blocks)
				last = blocks - 1;
			if (block_ranges_add(out, first, last)) {
				free(fm);
				return oom(name, err);
			}
			pos = end;
			if (e->fe_flags & FIEMAP_EXTENT_LAST)
				done = 1;
		}
	}
	free(fm);
	return rc;
}

static int map_seek(int fd, const char *name, uint64_t size, uint64_t blocks,
		    uint32_t bs, struct block_ranges *out,
		    struct bmaptk_error *err)
{
	off_t pos = 0, data, hole;

	while ((uint64_t)pos < size) {
		data = lseek(fd, pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0)
			return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
						"%s: SEEK_DATA failed: %s",
						name, strerror(errno));
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
						"%s: SEEK_HOLE failed: %s",
						name, strerror(errno));
		if ((uint64_t)hole > size)
			hole = (off_t)size;
		uint64_t last = ((uint64_t)hole + bs - 1) / bs - 1;
		if (last >= blocks)
			last = blocks - 1;
		if (block_ranges_add(out, (uint64_t)data / bs, last))
			return oom(name, err);
		pos = hole;
	}
	return 0;
}

int map_file(int fd, const char *name, uint64_t size, uint32_t block_size,
	     int force_seek, struct block_ranges *out, struct bmaptk_error *err)
{
	uint64_t blocks = (size + block_size - 1) / block_size;
	int rc = -1;

	if (blocks == 0)
		return 0;
	/* Delayed allocation can make fresh data look like holes. */
	if (fsync(fd) < 0 && errno != EINVAL && errno != EROFS)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
					"%s: fsync failed: %s", name,
					strerror(errno));
	if (!force_seek)
		rc = map_fiemap(fd, name, blocks, block_size, out, err);
	if (rc == -1) {
		out->n = 0;
		rc = map_seek(fd, name, size, blocks, block_size, out, err);
	}
	return rc;
}
