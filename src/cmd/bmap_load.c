/* Loading and describing the bmap, shared by copy and check. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "util.h"

int cli_load_bmap(const char *path, const char *image,
		  struct bmaptk_bmap **bmap, char **bmap_path,
		  struct bmaptk_error *err)
{
	struct bmaptk_registry *reg = cli_registry();
	char *data;
	size_t len;
	int rc;

	*bmap = NULL;
	*bmap_path = NULL;
	if (!path && !image)
		return 0;
	if (!path)
		return bmaptk_discover_bmap(reg, image, &cli.source, bmap, bmap_path,
					    err);
	rc = bmaptk_read_all(reg, path, &cli.source, BMAPTK_BMAP_MAX_FILE, &data, &len,
			     err);
	if (rc) {
		if (err->sys_errno == ENOENT)
			bmaptk_set_error(err, BMAPTK_ERR_USAGE, ENOENT,
					 "%s: cannot open bmap file: %s", path,
					 strerror(ENOENT));
		return rc;
	}
	rc = bmaptk_bmap_parse(data, len, path, bmap, err);
	free(data);
	if (!rc && !(*bmap_path = strdup(path)))
		rc = bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
				      "out of memory");
	return rc;
}

void cli_describe_bmap(const struct bmaptk_bmap *b, const char *path)
{
	char size[32], mapped[32];
	uint64_t m = bmaptk_bmap_mapped_bytes(b);

	cli_info("bmap %s: format version %u.%u, %llu blocks of %u bytes (%s), "
		 "%llu mapped (%s or %.1f%%)",
		 path, b->major, b->minor, (unsigned long long)b->blocks_count,
		 b->block_size, human_size(b->image_size, size, sizeof(size)),
		 (unsigned long long)b->mapped_blocks_count,
		 human_size(m, mapped, sizeof(mapped)),
		 b->image_size ? 100.0 * (double)m / (double)b->image_size
			       : 0.0);
}
