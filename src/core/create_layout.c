/* create --fs and --map: the map is built as byte ranges (the file's or the
 * filesystems', and the user's), then rounded out to the bmap's blocks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fsmap.h"
#include "util.h"

static int oom(const char *name, struct bmaptk_error *err)
{
	return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM, "%s: out of memory",
				name);
}

/* The file's extents as byte ranges, clipped to its size. */
static int file_extents(int fd, const char *name, uint64_t size, uint32_t bs,
			int force_seek, struct extent_set *data,
			struct bmaptk_error *err)
{
	struct block_ranges runs = {0};
	int rc = map_file(fd, name, size, bs, force_seek, &runs, err);

	for (size_t i = 0; !rc && i < runs.n; i++) {
		uint64_t off = runs.v[i].first * bs;
		uint64_t end = MIN((runs.v[i].last + 1) * bs, size);
		if (extent_add(data, off, end - off))
			rc = oom(name, err);
	}
	free(runs.v);
	return rc;
}

/* Checked before anything is read: a typo must not cost a scan. */
static int check_must_map(const char *name, uint64_t size,
			  const struct bmaptk_create_opts *opts,
			  struct bmaptk_error *err)
{
	for (size_t i = 0; i < opts->n_must_map; i++) {
		const struct bmaptk_byte_range *r = &opts->must_map[i];
		if (r->off >= size || r->len > size - r->off)
			return bmaptk_set_error(
			    err, BMAPTK_ERR_USAGE, 0,
			    "%s: --map %llu:%llu reaches past the end of the "
			    "image (%llu bytes)",
			    name, (unsigned long long)r->off,
			    (unsigned long long)r->len,
			    (unsigned long long)size);
	}
	return 0;
}

/* Bytes of a (normalised) that b (normalised) does not cover. */
static uint64_t uncovered(const struct extent_set *a,
			  const struct extent_set *b)
{
	uint64_t total = 0;
	size_t j = 0;

	for (size_t i = 0; i < a->n; i++) {
		uint64_t pos = a->v[i].off, end = pos + a->v[i].len;
		while (j < b->n && b->v[j].off + b->v[j].len <= pos)
			j++;
		for (size_t k = j; k < b->n && b->v[k].off < end; k++) {
			if (b->v[k].off > pos)
				total += b->v[k].off - pos;
			pos = MAX(pos, b->v[k].off + b->v[k].len);
		}
		if (pos < end)
			total += end - pos;
	}
	return total;
}

static int to_blocks(const char *name, const struct extent_set *map,
		     uint32_t bs, struct block_ranges *out,
		     struct bmaptk_error *err)
{
	for (size_t i = 0; i < map->n; i++)
		if (block_ranges_add(out, map->v[i].off / bs,
				     (map->v[i].off + map->v[i].len - 1) / bs))
			return oom(name, err);
	return 0;
}

int map_layout(int fd, const char *name, int is_file, uint64_t size,
	       uint32_t bs, const struct bmaptk_create_opts *opts,
	       struct block_ranges *out, struct bmaptk_error *err)
{
	struct extent_set data = {0}, map = {0};
	struct bmaptk_layout *layout = NULL;
	/* Regions no filesystem explains: by the file's extents, or by
	 * their non-zero blocks where there are none to ask. */
	int by_extents = is_file && !opts->scan_zeros;
	int rc = check_must_map(name, size, opts, err);

	if (!rc && by_extents)
		rc = file_extents(fd, name, size, bs, opts->force_seek, &data,
				  err);
	extent_normalise(&data);
	if (!rc && opts->fs) {
		if (!(layout = calloc(1, sizeof(*layout))))
			rc = oom(name, err);
		else
			rc = fsmap_image(fd, name, size,
					 by_extents ? &data : NULL,
					 !is_file && !opts->scan_zeros,
					 opts->interrupted, &map, layout, err);
	} else if (!rc) {
		rc = fsmap_by_data(fd, name, 0, size, by_extents ? &data : NULL,
				   opts->interrupted, &map, err);
	}
	for (size_t i = 0; !rc && i < opts->n_must_map; i++)
		if (extent_add(&map, opts->must_map[i].off,
			       opts->must_map[i].len))
			rc = oom(name, err);
	if (!rc) {
		extent_normalise(&map);
		rc = to_blocks(name, &map, bs, out, err);
	}
	if (!rc && layout && by_extents) {
		/* What is not mapped, counted in whole blocks as mapped. */
		map.n = 0;
		for (size_t i = 0; i < out->n && !rc; i++)
			if (extent_add(&map, out->v[i].first * bs,
				       (out->v[i].last - out->v[i].first + 1) *
					   bs))
				rc = oom(name, err);
		layout->data_known = 1;
		layout->data = extent_total(&data);
		layout->data_unmapped = uncovered(&data, &map);
	}
	if (!rc && opts->layout)
		*opts->layout = layout;
	else
		bmaptk_layout_free(layout);
	extent_set_free(&data);
	extent_set_free(&map);
	return rc;
}
