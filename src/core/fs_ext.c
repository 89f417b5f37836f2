/* create --fs for ext2/3/4: the blocks that the block bitmaps mark in use,
 * read through libext2fs (which knows BLOCK_UNINIT groups, flex_bg, meta_bg
 * and bigalloc clusters), plus the boot block that 1 KiB filesystems keep
 * outside their bitmaps. Metadata (superblocks, group descriptors, bitmaps,
 * inode tables, the journal) is marked in use by the bitmaps themselves.
 *
 * The bitmaps are trusted only when the filesystem says they are current:
 * a journal waiting for recovery holds newer bitmaps than the disk (blocks
 * written since the last checkpoint are free on disk), and a filesystem
 * without a journal that was not cleanly unmounted may not have written
 * its bitmaps at all. Mapping by them would drop data, so those, and
 * filesystems with errors recorded, are refused and mapped by data. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ext2fs_api.h"
#include "fsmap.h"
#include "util.h"

#ifdef BMAPTK_EXT2FS_LOADABLE
/* Read-only (no EXT2_FLAG_RW): libext2fs opens the file O_RDONLY and
 * cannot write. No EXT2_FLAG_IGNORE_CSUM_ERRORS: the only checksums on this
 * path are the superblock's and the block bitmaps', the very data mapped
 * by; a mismatch maps by data instead. MMP is never started read-only;
 * skipping it says so. */
#define OPEN_FLAGS (EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP)

static int fail(char *why, size_t why_len, const char *what, errcode_t code)
{
	snprintf(why, why_len, "%s: %s", what, EXT2FS(error_message)(code));
	return -1;
}

static int open_fs(int fd, uint64_t off, ext2_filsys *fs, char *why,
		   size_t why_len)
{
	char name[32], options[32];
	errcode_t rc;

	/* The same open file, block device or not, through a path libext2fs
	 * can open; offset= places the filesystem inside it. */
	snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
	snprintf(options, sizeof(options), "offset=%llu",
		 (unsigned long long)off);
	rc = EXT2FS(ext2fs_open2)(name, options, OPEN_FLAGS, 0, 0,
				  *EXT2FS(unix_io_manager), fs);
	if (!rc)
		return 0;
	*fs = NULL;
	if (rc < 256) /* an errno: the file, not the filesystem */
		return fail(why, why_len, "cannot open it", rc);
	if (rc == EXT2_ET_UNSUPP_FEATURE || rc == EXT2_ET_REV_TOO_HIGH)
		return fail(why, why_len, "unsupported", rc);
	return fail(why, why_len, "bad superblock", rc);
}

/* The filesystem must fit its window, and its bitmaps be current. */
static int check_fs(ext2_filsys fs, uint64_t len, char *why, size_t why_len)
{
	struct ext2_super_block *sb = fs->super;
	uint64_t blocks = EXT2FS(ext2fs_blocks_count)(sb), bs = fs->blocksize;
	char a[32], b[32];

	if (blocks > len / bs) {
		uint64_t size =
		    blocks > UINT64_MAX / bs ? UINT64_MAX : blocks * bs;
		human_size(size, a, sizeof(a));
		human_size(len, b, sizeof(b));
		if (!strcmp(a, b)) { /* "1.0 GiB is larger than 1.0 GiB" */
			snprintf(a, sizeof(a), "%llu bytes",
				 (unsigned long long)size);
			snprintf(b, sizeof(b), "%llu bytes",
				 (unsigned long long)len);
		}
		snprintf(why, why_len,
			 "the filesystem (%s) is larger than its partition "
			 "(%s)",
			 a, b);
		return -1;
	}
	if (ext2fs_has_feature_journal_needs_recovery(sb)) {
		snprintf(why, why_len,
			 "its journal needs recovery (in use, or not cleanly "
			 "unmounted): the block bitmaps on disk may be stale");
		return -1;
	}
	if (!(sb->s_state & EXT2_VALID_FS)) {
		snprintf(why, why_len,
			 "it was not cleanly unmounted (or is in use): the "
			 "block bitmaps on disk may be stale");
		return -1;
	}
	if (sb->s_state & EXT2_ERROR_FS) {
		snprintf(why, why_len,
			 "it has errors recorded (e2fsck has not checked it "
			 "since): the block bitmaps may be wrong");
		return -1;
	}
	return 0;
}

/* read_bitmaps reads a group's bitmap where its descriptor says, and takes
 * one it cannot place for all free: that would map less than is used.
 * (ext2fs_check_desc checks more, but marks every inode table block in a
 * bitmap: 170 ms a TiB, where this is a loop over the descriptors.) */
static int check_bitmap_locations(ext2_filsys fs, char *why, size_t why_len)
{
	blk64_t first = fs->super->s_first_data_block;
	blk64_t blocks = EXT2FS(ext2fs_blocks_count)(fs->super);

	for (dgrp_t g = 0; g < fs->group_desc_count; g++) {
		blk64_t at = EXT2FS(ext2fs_block_bitmap_loc)(fs, g);
		if (at <= first || at >= blocks) { /* first: a superblock */
			snprintf(why, why_len,
				 "bad group descriptors: group %lu has its "
				 "block bitmap at block %llu, not in %llu-%llu",
				 (unsigned long)g, (unsigned long long)at,
				 (unsigned long long)first + 1,
				 (unsigned long long)blocks - 1);
			return -1;
		}
	}
	return 0;
}

/* Add [from, to) of the filesystem, less what is added already (runs come
 * in increasing order; only the head range can overlap the first). */
static int add(struct extent_set *out, uint64_t off, uint64_t from, uint64_t to,
	       uint64_t *done)
{
	if (from < *done)
		from = *done;
	if (to <= from)
		return 0;
	*done = to;
	return extent_add(out, off + from, to - from) ? -2 : 0;
}

/* The set bits run by run: a find_first_set, a find_first_zero. With
 * bigalloc the bitmap is of clusters, and these speak blocks. */
static int walk(ext2_filsys fs, uint64_t off, struct extent_set *out,
		uint64_t *done, char *why, size_t why_len)
{
	ext2fs_generic_bitmap map = (ext2fs_generic_bitmap)fs->block_map;
	__u64 pos = fs->super->s_first_data_block;
	__u64 last = EXT2FS(ext2fs_blocks_count)(fs->super) - 1;
	uint64_t bs = fs->blocksize;

	while (pos <= last) {
		__u64 start, end;
		errcode_t rc;

		rc = EXT2FS(ext2fs_find_first_set_generic_bmap)(map, pos, last,
								&start);
		if (rc == ENOENT)
			break;
		if (rc)
			return fail(why, why_len, "walking the block bitmap",
				    rc);
		rc = EXT2FS(ext2fs_find_first_zero_generic_bmap)(map, start,
								 last, &end);
		if (rc == ENOENT)
			end = last + 1;
		else if (rc)
			return fail(why, why_len, "walking the block bitmap",
				    rc);
		if (end <= start) { /* never loop on a confused bitmap */
			snprintf(why, why_len,
				 "walking the block bitmap: no progress at "
				 "block %llu",
				 (unsigned long long)start);
			return -1;
		}
		if (add(out, off, start * bs, end * bs, done))
			return -2;
		pos = end;
	}
	return 0;
}

static int map(ext2_filsys fs, uint64_t off, uint64_t len,
	       struct extent_set *out, char *why, size_t why_len)
{
	uint64_t head, done = 0;
	errcode_t rc;

	if (check_fs(fs, len, why, why_len))
		return -1;
	if (check_bitmap_locations(fs, why, why_len))
		return -1;
	fs->default_bitmap_type = EXT2FS_BMAP64_RBTREE; /* memory ~ runs */
	rc = EXT2FS(ext2fs_read_block_bitmap)(fs);
	if (rc)
		return fail(why, why_len, "reading the block bitmaps", rc);
	/* The boot block (block 0 of a 1 KiB filesystem is outside the
	 * bitmap) and the superblock, whatever the bitmap says. */
	head = MAX((uint64_t)fs->super->s_first_data_block * fs->blocksize,
		   (uint64_t)SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE);
	if (add(out, off, 0, head, &done))
		return -2;
	return walk(fs, off, out, &done, why, why_len);
}
#endif

int fs_map_ext(int fd, uint64_t off, uint64_t len, struct extent_set *out,
	       uint64_t *fs_len, char *why, size_t why_len)
{
	if (ext2fs_api_load(why, why_len))
		return -1;
#ifdef BMAPTK_EXT2FS_LOADABLE
	ext2_filsys fs;
	int rc;

	if (len < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) {
		snprintf(why, why_len, "too small for a superblock");
		return -1;
	}
	if (open_fs(fd, off, &fs, why, why_len))
		return -1;
	rc = map(fs, off, len, out, why, why_len);
	*fs_len =
	    (uint64_t)EXT2FS(ext2fs_blocks_count)(fs->super) * fs->blocksize;
	EXT2FS(ext2fs_close_free)(&fs); /* read-only: writes nothing */
	return rc;
#else
	(void)fd, (void)off, (void)len, (void)out, (void)fs_len;
	return -1;
#endif
}
