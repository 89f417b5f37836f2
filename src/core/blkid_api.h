/* libblkid, loaded when create --fs first probes an image: no other run
 * needs it. Calls go through the table: BLKID(blkid_new_probe)(). */
#ifndef BMAPTK_BLKID_API_H
#define BMAPTK_BLKID_API_H

#ifdef BMAPTK_HAVE_BLKID
#include <blkid.h>

/* Every libblkid function bmaptk calls: return type, name, parameters. */
#define BLKID_FUNCTIONS(X)                                                     \
	X(blkid_probe, blkid_new_probe, (void))                                \
	X(void, blkid_free_probe, (blkid_probe pr))                            \
	X(int, blkid_probe_set_device,                                         \
	  (blkid_probe pr, int fd, blkid_loff_t off, blkid_loff_t size))       \
	X(unsigned, blkid_probe_get_sectorsize, (blkid_probe pr))              \
	X(int, blkid_probe_enable_superblocks, (blkid_probe pr, int enable))   \
	X(int, blkid_probe_set_superblocks_flags, (blkid_probe pr, int flags)) \
	X(int, blkid_probe_enable_partitions, (blkid_probe pr, int enable))    \
	X(int, blkid_probe_set_partitions_flags, (blkid_probe pr, int flags))  \
	X(int, blkid_do_safeprobe, (blkid_probe pr))                           \
	X(int, blkid_probe_lookup_value,                                       \
	  (blkid_probe pr, const char *name, const char **data, size_t *len))  \
	X(blkid_partlist, blkid_probe_get_partitions, (blkid_probe pr))        \
	X(int, blkid_partlist_numof_partitions, (blkid_partlist ls))           \
	X(blkid_partition, blkid_partlist_get_partition,                       \
	  (blkid_partlist ls, int n))                                          \
	X(blkid_parttable, blkid_partlist_get_table, (blkid_partlist ls))      \
	X(const char *, blkid_parttable_get_type, (blkid_parttable tab))       \
	X(blkid_loff_t, blkid_parttable_get_offset, (blkid_parttable tab))     \
	X(blkid_loff_t, blkid_partition_get_start, (blkid_partition par))      \
	X(blkid_loff_t, blkid_partition_get_size, (blkid_partition par))       \
	X(int, blkid_partition_get_partno, (blkid_partition par))              \
	X(int, blkid_partition_is_extended, (blkid_partition par))             \
	X(int, blkid_partition_get_type, (blkid_partition par))                \
	X(const char *, blkid_partition_get_type_string, (blkid_partition par))

struct blkid_api {
#define BLKID_FIELD(ret, name, params) ret(*name) params;
	BLKID_FUNCTIONS(BLKID_FIELD)
#undef BLKID_FIELD
};

extern const struct blkid_api *blkid_api;
#define BLKID(name) (blkid_api->name)
#endif

/* Load libblkid once. Returns 0, or -1 with the reason in why. */
int blkid_api_load(char *why, size_t why_len);

#endif
