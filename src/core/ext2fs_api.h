/* libext2fs, loaded when create --fs first maps an ext2/3/4 filesystem: no
 * other run needs it. Calls go through the table:
 * EXT2FS(ext2fs_open2)(...). The static build has no libext2fs. */
#ifndef BMAPTK_EXT2FS_API_H
#define BMAPTK_EXT2FS_API_H

#include <stddef.h>

#if defined(BMAPTK_HAVE_EXT2FS) && !defined(BMAPTK_STATIC)
#define BMAPTK_EXT2FS_LOADABLE 1
#include <ext2fs/ext2fs.h> /* and <et/com_err.h> */

/* Every libext2fs function bmaptk calls: return type, name, parameters.
 * The find_first functions are the generic ones: the _block_bitmap2
 * wrappers are inline in the header and would need the library linked. */
#define EXT2FS_FUNCTIONS(X)                                                    \
	X(errcode_t, ext2fs_open2,                                             \
	  (const char *name, const char *io_options, int flags,                \
	   int superblock, unsigned int block_size, io_manager manager,        \
	   ext2_filsys *ret_fs))                                               \
	X(errcode_t, ext2fs_close_free, (ext2_filsys * fs))                    \
	X(blk64_t, ext2fs_block_bitmap_loc, (ext2_filsys fs, dgrp_t group))    \
	X(errcode_t, ext2fs_read_block_bitmap, (ext2_filsys fs))               \
	X(errcode_t, ext2fs_find_first_set_generic_bmap,                       \
	  (ext2fs_generic_bitmap bitmap, __u64 start, __u64 end, __u64 * out)) \
	X(errcode_t, ext2fs_find_first_zero_generic_bmap,                      \
	  (ext2fs_generic_bitmap bitmap, __u64 start, __u64 end, __u64 * out)) \
	X(blk64_t, ext2fs_blocks_count, (struct ext2_super_block * super))     \
	X(void, initialize_ext2_error_table, (void))

/* And from libcom_err, which libext2fs depends on. */
#define COM_ERR_FUNCTIONS(X) X(const char *, error_message, (errcode_t code))

struct ext2fs_api {
#define EXT2FS_FIELD(ret, name, params) ret(*name) params;
	EXT2FS_FUNCTIONS(EXT2FS_FIELD)
	COM_ERR_FUNCTIONS(EXT2FS_FIELD)
#undef EXT2FS_FIELD
	/* unix_io_manager is a variable holding the manager, not a
	 * function: this is its address. */
	io_manager *unix_io_manager;
};

extern const struct ext2fs_api *ext2fs_api;
#define EXT2FS(name) (ext2fs_api->name)
#endif

/* Load libext2fs once. Returns 0, or -1 with the reason in why ("ext2/3/4
 * support is not in this build", "cannot load libext2fs.so.2: ..."). */
int ext2fs_api_load(char *why, size_t why_len);

#endif
