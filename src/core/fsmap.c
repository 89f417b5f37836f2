/* create --fs: the partition table (libblkid finds it; its sectors are
 * mapped where its headers say they are), each partition by what its
 * filesystem uses, and everything else by data. Whatever cannot be read
 * with confidence is mapped by data, never less. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "blkid_api.h"
#include "fsmap.h"
#include "util.h"

#define SCAN_BLOCK 4096u
#define SCAN_CHUNK (1u << 20)
#define MAX_EBRS   256

struct part {
	int number;
	uint64_t off, len; /* clipped to the image */
	int extended;	   /* a container of logical partitions */
	int clipped;	   /* ran past the image's end: mapped by data */
	int fs_type_hint;  /* its type says it holds a filesystem */
};

struct probe {
	int fd;
	const char *name;
	uint64_t size;
	const struct extent_set *data; /* the file's extents; NULL: scan */
	int unknown_whole; /* map unreadable partitions whole, not by data */
	volatile sig_atomic_t *interrupted;
	struct extent_set *out;
	struct bmaptk_layout *layout;
	struct bmaptk_error *err;
	unsigned sector;
	char table[8];
	struct part *parts;
	size_t nparts;
};

/* The run's interrupt flag, for the mappers (fsmap_image is not run on
 * two images at once: create maps one). */
static volatile sig_atomic_t *stop_flag;

int fsmap_interrupted(void)
{
	return stop_flag && *stop_flag;
}

static int oom(struct probe *p)
{
	return bmaptk_set_error(p->err, BMAPTK_ERR_IO, ENOMEM,
				"%s: out of memory", p->name);
}

static int add(struct probe *p, uint64_t off, uint64_t len)
{
	if (off >= p->size)
		return 0;
	return extent_add(p->out, off, MIN(len, p->size - off)) ? oom(p) : 0;
}

/* ---- regions mapped by data ------------------------------------------- */

static int scan_nonzero(int fd, const char *name, uint64_t off, uint64_t len,
			volatile sig_atomic_t *interrupted,
			struct extent_set *out, struct bmaptk_error *err)
{
	uint64_t pos = off / SCAN_BLOCK * SCAN_BLOCK, end = off + len;
	unsigned char *buf = aligned_buffer(SCAN_CHUNK);
	int rc = 0;

	if (!buf)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory", name);
	while (!rc && pos < end) {
		size_t want = (size_t)MIN(SCAN_CHUNK, end - pos);
		ssize_t got = pread_full(fd, buf, want, pos);
		if (interrupted && *interrupted) {
			rc = bmaptk_set_error(err, BMAPTK_ERR_INTERRUPTED, 0,
					      "interrupted");
			break;
		}
		if (got < 0) {
			rc = bmaptk_set_error(err, BMAPTK_ERR_IO, errno,
					      "%s: read error at byte %llu: %s",
					      name, (unsigned long long)pos,
					      strerror(errno));
			break;
		}
		for (size_t i = 0; i < (size_t)got; i += SCAN_BLOCK) {
			size_t n = MIN(SCAN_BLOCK, (size_t)got - i);
			uint64_t a = MAX(pos + i, off);
			if (!all_zero(buf + i, n) &&
			    extent_add(out, a, pos + i + n - a))
				rc =
				    bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
						     "%s: out of memory", name);
		}
		if ((size_t)got < want)
			break; /* the image ends here */
		pos += (uint64_t)got;
	}
	free(buf);
	return rc;
}

int fsmap_by_data(int fd, const char *name, uint64_t off, uint64_t len,
		  const struct extent_set *data,
		  volatile sig_atomic_t *interrupted, struct extent_set *out,
		  struct bmaptk_error *err)
{
	uint64_t end = off + len;
	size_t lo = 0, hi;

	if (!data)
		return scan_nonzero(fd, name, off, len, interrupted, out, err);
	/* The first extent that ends after off. */
	hi = data->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (data->v[mid].off + data->v[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < data->n && data->v[i].off < end; i++) {
		uint64_t a = MAX(data->v[i].off, off);
		uint64_t b = MIN(data->v[i].off + data->v[i].len, end);
		if (extent_add(out, a, b - a))
			return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
						"%s: out of memory", name);
	}
	return 0;
}

static int by_data(struct probe *p, uint64_t off, uint64_t len,
		   struct extent_set *out)
{
	return fsmap_by_data(p->fd, p->name, off, len, p->data, p->interrupted,
			     out, p->err);
}

/* ---- the partition table's own sectors -------------------------------- */

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* One GPT header at lba and the entries it points to. */
static int map_gpt_header(struct probe *p, uint64_t lba, const char *which,
			  uint64_t *alternate)
{
	unsigned char h[512];
	uint64_t at = lba * p->sector, entries;
	uint32_t count, size;

	if (at + sizeof(h) > p->size) {
		bmaptk_warn("%s: the %s GPT header (sector %llu) lies past the "
			    "end of the image",
			    p->name, which, (unsigned long long)lba);
		return 0;
	}
	if (pread_full(p->fd, h, sizeof(h), at) != (ssize_t)sizeof(h) ||
	    memcmp(h, "EFI PART", 8)) {
		bmaptk_warn("%s: no %s GPT header at sector %llu", p->name,
			    which, (unsigned long long)lba);
		return 0;
	}
	if (add(p, at, p->sector))
		return -1;
	entries = le64(h + 72);
	count = le32(h + 80);
	size = le32(h + 84);
	*alternate = le64(h + 32);
	if (size < 128 || size > 4096 || count > 65536 ||
	    entries > p->size / p->sector) {
		bmaptk_warn("%s: the %s GPT header's entry array is out of "
			    "range; mapping the image's first and last MiB",
			    p->name, which);
		return add(p, 0, 1u << 20) ||
			       add(p,
				   p->size > (1u << 20) ? p->size - (1u << 20)
							: 0,
				   1u << 20)
			   ? -1
			   : 0;
	}
	return add(p, entries * p->sector, (uint64_t)count * size) ? -1 : 0;
}

/* Both headers where they belong (LBA 1 and the last LBA) and, should
 * either point elsewhere for its twin, there too; also where libblkid
 * found the one it used. Every header brings its entry array. */
static int map_gpt(struct probe *p, uint64_t header_off)
{
	uint64_t last = p->size / p->sector - 1, found = header_off / p->sector;
	uint64_t alt1 = 0, alt2 = 0, unused;

	if (add(p, 0, p->sector)) /* the protective MBR */
		return -1;
	if (map_gpt_header(p, 1, "primary", &alt1) ||
	    map_gpt_header(p, last, "backup", &alt2))
		return -1;
	if (found != 1 && found != last &&
	    map_gpt_header(p, found, "other", &unused))
		return -1;
	if (alt1 && alt1 != last && alt1 != found &&
	    map_gpt_header(p, alt1, "backup", &unused))
		return -1;
	return alt2 && alt2 != 1 && alt2 != found && alt2 != alt1 &&
		       map_gpt_header(p, alt2, "primary", &unused)
		   ? -1
		   : 0;
}

/* The MBR and the chain of EBRs in each extended partition: each EBR's
 * second entry points to the next, relative to the extended partition. */
static int map_dos(struct probe *p)
{
	if (add(p, 0, 512))
		return -1;
	for (size_t i = 0; i < p->nparts; i++) {
		const struct part *ext = &p->parts[i];
		uint64_t at = ext->off;
		if (!ext->extended)
			continue;
		for (int n = 0; n < MAX_EBRS && at + 512 <= p->size; n++) {
			unsigned char s[512];
			const unsigned char *next = s + 446 + 16;
			if (pread_full(p->fd, s, sizeof(s), at) != 512 ||
			    s[510] != 0x55 || s[511] != 0xAA)
				break;
			if (add(p, at, p->sector))
				return -1;
			if (next[4] != 0x05 && next[4] != 0x0f &&
			    next[4] != 0x85)
				break;
			if (!le32(next + 8))
				break;
			at = ext->off + (uint64_t)le32(next + 8) * p->sector;
		}
	}
	return 0;
}

/* ---- libblkid --------------------------------------------------------- */

#ifdef BMAPTK_HAVE_BLKID
/* Partition types that promise a filesystem: a zeroed superblock there is
 * damage worth a warning, where a firmware partition is just data. */
static int holds_filesystem(blkid_partition par)
{
	static const char *const guids[] = {
	    "0fc63daf-8483-4772-8e79-3d69d8477de4", /* Linux filesystem */
	    "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", /* basic data */
	    "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", /* EFI system */
	    "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", /* root (x86-64) */
	    "b921b045-1df0-41c3-af44-4c6f280d3fae", /* root (arm64) */
	};
	static const int dos[] = {0x01, 0x04, 0x06, 0x0b,
				  0x0c, 0x0e, 0x83, 0xef};
	const char *guid = BLKID(blkid_partition_get_type_string)(par);
	int type = BLKID(blkid_partition_get_type)(par);

	for (size_t i = 0; guid && i < sizeof(guids) / sizeof(guids[0]); i++)
		if (!strcasecmp(guid, guids[i]))
			return 1;
	for (size_t i = 0; !guid && i < sizeof(dos) / sizeof(dos[0]); i++)
		if (type == dos[i])
			return 1;
	return 0;
}

/* The partitions, or none (p->table stays "") when there is no table. */
static int find_partitions(struct probe *p)
{
	blkid_probe pr = BLKID(blkid_new_probe)();
	blkid_partlist ls;
	blkid_parttable tab;
	int rc = 0, n;

	if (!pr)
		return oom(p);
	if (BLKID(blkid_probe_set_device)(pr, p->fd, 0,
					  (blkid_loff_t)p->size)) {
		BLKID(blkid_free_probe)(pr);
		return bmaptk_set_error(p->err, BMAPTK_ERR_IO, errno,
					"%s: libblkid cannot read it", p->name);
	}
	p->sector = BLKID(blkid_probe_get_sectorsize)(pr);
	if (p->sector < 512 || p->sector > 65536 ||
	    (p->sector & (p->sector - 1)))
		p->sector = 512;
	BLKID(blkid_probe_enable_superblocks)(pr, 0);
	BLKID(blkid_probe_enable_partitions)(pr, 1);
	errno = 0;
	rc = BLKID(blkid_do_safeprobe)(pr);
	if ((rc < 0 && rc != -2) || errno == EIO) {
		BLKID(blkid_free_probe)(pr);
		return bmaptk_set_error(p->err, BMAPTK_ERR_IO, errno,
					"%s: read error while looking for its "
					"partition table%s%s",
					p->name, errno ? ": " : "",
					errno ? strerror(errno) : "");
	}
	if (!(ls = BLKID(blkid_probe_get_partitions)(pr)) ||
	    !(tab = BLKID(blkid_partlist_get_table)(ls))) {
		BLKID(blkid_free_probe)(pr);
		return 0;
	}
	snprintf(p->table, sizeof(p->table), "%s",
		 BLKID(blkid_parttable_get_type)(tab));
	n = BLKID(blkid_partlist_numof_partitions)(ls);
	p->parts = calloc(n > 0 ? (size_t)n : 1, sizeof(*p->parts));
	if (!p->parts) {
		BLKID(blkid_free_probe)(pr);
		return oom(p);
	}
	for (int i = 0; i < n; i++) {
		blkid_partition par =
		    BLKID(blkid_partlist_get_partition)(ls, i);
		struct part *q = &p->parts[p->nparts];
		/* libblkid counts in 512-byte sectors whatever the disk's. */
		uint64_t start =
		    (uint64_t)BLKID(blkid_partition_get_start)(par);
		uint64_t len = (uint64_t)BLKID(blkid_partition_get_size)(par);
		q->number = BLKID(blkid_partition_get_partno)(par);
		q->extended = BLKID(blkid_partition_is_extended)(par);
		q->off = start * 512;
		q->len = len * 512;
		if (q->off >= p->size || q->len > p->size - q->off) {
			bmaptk_warn("%s: partition %d runs past the end of the "
				    "image (%llu bytes from byte %llu, the "
				    "image has %llu); mapping what is there "
				    "by data",
				    p->name, q->number,
				    (unsigned long long)q->len,
				    (unsigned long long)q->off,
				    (unsigned long long)p->size);
			if (q->off >= p->size)
				continue;
			q->len = p->size - q->off;
			q->clipped = 1;
		}
		q->fs_type_hint = holds_filesystem(par);
		p->nparts++;
	}
	if (!strcmp(p->table, "gpt"))
		rc = map_gpt(p,
			     (uint64_t)BLKID(blkid_parttable_get_offset)(tab));
	else
		rc = map_dos(p);
	BLKID(blkid_free_probe)(pr);
	return rc ? p->err->status : 0;
}

/* The filesystem's type in [off, off+len), "" when none is recognised.
 * Returns 0, or a status when the image cannot be read. */
static int fs_type(struct probe *p, uint64_t off, uint64_t len, char *type,
		   size_t type_len)
{
	blkid_probe pr = BLKID(blkid_new_probe)();
	const char *value;
	int rc = 0, found = 1;

	type[0] = '\0';
	if (!pr)
		return oom(p);
	errno = 0;
	if (!BLKID(blkid_probe_set_device)(pr, p->fd, (blkid_loff_t)off,
					   (blkid_loff_t)len)) {
		BLKID(blkid_probe_enable_partitions)(pr, 0);
		BLKID(blkid_probe_enable_superblocks)(pr, 1);
		BLKID(blkid_probe_set_superblocks_flags)(pr, BLKID_SUBLKS_TYPE);
		found = BLKID(blkid_do_safeprobe)(pr);
		if (found == 0 &&
		    !BLKID(blkid_probe_lookup_value)(pr, "TYPE", &value, NULL))
			snprintf(type, type_len, "%s", value);
	}
	/* -2: signatures of two filesystems; neither is trusted. A read
	 * error may also look like "nothing found". */
	if (found == -1 || errno == EIO)
		rc = bmaptk_set_error(p->err, BMAPTK_ERR_IO, errno,
				      "%s: read error while identifying the "
				      "filesystem at byte %llu%s%s",
				      p->name, (unsigned long long)off,
				      errno ? ": " : "",
				      errno ? strerror(errno) : "");
	BLKID(blkid_free_probe)(pr);
	return rc;
}
#else
static int find_partitions(struct probe *p)
{
	(void)p;
	return 0;
}

static int fs_type(struct probe *p, uint64_t off, uint64_t len, char *type,
		   size_t type_len)
{
	(void)p, (void)off, (void)len, (void)type_len;
	type[0] = '\0';
	return 0;
}
#endif

/* Whether sector 0 holds an MBR table with at least one partition, every
 * entry plausible: boot flag 0 or 0x80, inside the image. */
static int mbr_has_partitions(struct probe *p)
{
	unsigned char s[512];
	int used = 0;

	if (pread_full(p->fd, s, sizeof(s), 0) != (ssize_t)sizeof(s) ||
	    s[510] != 0x55 || s[511] != 0xAA)
		return 0;
	for (int i = 0; i < 4; i++) {
		const unsigned char *e = s + 446 + 16 * i;
		uint64_t start = le32(e + 8), n = le32(e + 12);
		if (!e[4] && !start && !n)
			continue;
		if ((e[0] != 0 && e[0] != 0x80) || !e[4] || !start || !n ||
		    (start + n) * 512 > p->size)
			return 0;
		used++;
	}
	return used > 0;
}

/* ---- filesystems ------------------------------------------------------ */

int fs_map_swap(int fd, uint64_t off, uint64_t len, struct extent_set *out,
		uint64_t *fs_len, char *why, size_t why_len)
{
	static const unsigned pages[] = {4096, 8192, 16384, 65536};

	/* The header is the first page; "SWAPSPACE2" ends it, which tells
	 * the page size it was made with. The rest is swap's, worth nothing
	 * once the system is off. */
	*fs_len = len;
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		char sig[10];
		if (pages[i] > len)
			break;
		if (pread_full(fd, sig, sizeof(sig), off + pages[i] - 10) ==
			(ssize_t)sizeof(sig) &&
		    (!memcmp(sig, "SWAPSPACE2", 10) ||
		     !memcmp(sig, "SWAP-SPACE", 10)))
			return extent_add(out, off, pages[i]) ? -2 : 0;
	}
	snprintf(why, why_len,
		 "no swap signature at the end of its first "
		 "page");
	return -1;
}

static fs_mapper_fn *mapper_of(const char *type)
{
	if (!strcmp(type, "ext2") || !strcmp(type, "ext3") ||
	    !strcmp(type, "ext4") || !strcmp(type, "ext4dev"))
		return fs_map_ext;
	if (!strcmp(type, "vfat") || !strcmp(type, "msdos"))
		return fs_map_fat;
	if (!strcmp(type, "swap"))
		return fs_map_swap;
	return NULL;
}

/* A partition, or the filesystem on the whole image. Its ranges are
 * gathered apart (extent_add merges with the last range, which may be the
 * previous region's) so that a failed mapper is undone whole and what the
 * summary counts is this region's alone. */
static int map_region(struct probe *p, const struct part *q)
{
	int number = q ? q->number : 0;
	uint64_t off = q ? q->off : 0, len = q ? q->len : p->size;
	struct bmaptk_layout_part *lp = &p->layout->parts[p->layout->nparts++];
	struct extent_set mine = {0};
	fs_mapper_fn *fn = NULL;
	uint64_t fs_len = len;
	char why[256] = "";
	int rc = -1;

	lp->number = number;
	lp->off = off;
	lp->len = len;
	if ((!q || !q->clipped) &&
	    fs_type(p, off, len, lp->fstype, sizeof(lp->fstype)))
		return -1;
	if (lp->fstype[0])
		fn = mapper_of(lp->fstype);
	else if (q && !q->clipped && q->fs_type_hint)
		bmaptk_warn("%s: partition %d: its type says it holds a "
			    "filesystem, but none was found (damaged?); "
			    "mapped by data",
			    p->name, number);
	if (fn)
		rc = fn(p->fd, off, len, &mine, &fs_len, why, sizeof(why));
	if (rc == -2 || rc == -3) {
		extent_set_free(&mine);
		return rc == -2
			   ? oom(p)
			   : bmaptk_set_error(p->err, BMAPTK_ERR_INTERRUPTED, 0,
					      "interrupted");
	}
	if (rc == -1 && why[0]) {
		if (number)
			bmaptk_warn("%s: partition %d (%s): %s; mapped by data",
				    p->name, number, lp->fstype, why);
		else
			bmaptk_warn("%s: the %s filesystem: %s; mapped by data",
				    p->name, lp->fstype, why);
	}
	lp->by_fs = rc == 0;
	if (rc) {
		/* Without extents to ask, zero blocks of a filesystem we
		 * cannot read (a LUKS header's padding) may matter: the
		 * whole partition is mapped. */
		mine.n = 0;
		if (p->unknown_whole ? extent_add(&mine, off, len)
				     : by_data(p, off, len, &mine)) {
			extent_set_free(&mine);
			return p->unknown_whole ? oom(p) : -1;
		}
	} else if (fs_len < len &&
		   by_data(p, off + fs_len, len - fs_len, &mine)) {
		/* After the filesystem, in its partition: a verity tree. */
		extent_set_free(&mine);
		return -1;
	}
	lp->mapped = extent_total(&mine);
	for (size_t i = 0; i < mine.n; i++)
		if (add(p, mine.v[i].off, mine.v[i].len)) {
			extent_set_free(&mine);
			return -1;
		}
	extent_set_free(&mine);
	return 0;
}

static int by_start(const void *a, const void *b)
{
	const struct part *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Every byte outside the partitions (an extended partition is a container:
 * what lies in it outside its logical partitions is outside too). */
static int map_outside(struct probe *p)
{
	uint64_t pos = 0;

	qsort(p->parts, p->nparts, sizeof(*p->parts), by_start);
	for (size_t i = 0; i < p->nparts; i++) {
		const struct part *q = &p->parts[i];
		if (q->extended)
			continue;
		if (q->off > pos && by_data(p, pos, q->off - pos, p->out))
			return -1;
		pos = MAX(pos, q->off + q->len);
	}
	return pos < p->size ? by_data(p, pos, p->size - pos, p->out) : 0;
}

int fsmap_image(int fd, const char *name, uint64_t size,
		const struct extent_set *data, int unknown_whole,
		volatile sig_atomic_t *interrupted, struct extent_set *out,
		struct bmaptk_layout *layout, struct bmaptk_error *err)
{
	struct probe p = {.fd = fd,
			  .name = name,
			  .size = size,
			  .data = data,
			  .unknown_whole = unknown_whole,
			  .interrupted = interrupted,
			  .out = out,
			  .layout = layout,
			  .err = err,
			  .sector = 512};
	char why[256];
	int rc;

	stop_flag = interrupted;
	if (blkid_api_load(why, sizeof(why)))
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: --fs cannot identify filesystems: "
					"%s",
					name, why);
	if ((rc = find_partitions(&p)))
		goto out;
	snprintf(layout->table, sizeof(layout->table), "%s", p.table);
	layout->parts = calloc(p.nparts + 1, sizeof(*layout->parts));
	if (!layout->parts) {
		rc = oom(&p);
		goto out;
	}
	if (!p.table[0] && mbr_has_partitions(&p)) {
		/* A filesystem made on the whole disk, then partitioned
		 * without wiping it: libblkid trusts the boot sector, the
		 * kernel the table. Neither is safe to map by. */
		bmaptk_warn("%s: sector 0 holds both a filesystem's boot "
			    "sector and an MBR partition table; mapping the "
			    "whole image by data",
			    name);
		rc = by_data(&p, 0, size, out) ? err->status : 0;
		goto out;
	}
	if (!p.table[0]) {
		rc = map_region(&p, NULL) ? err->status : 0;
		goto out;
	}
	for (size_t i = 0; !rc && i < p.nparts; i++)
		if (!p.parts[i].extended)
			rc = map_region(&p, &p.parts[i]) ? err->status : 0;
	if (!rc && map_outside(&p))
		rc = err->status;
out:
	/* libblkid advised POSIX_FADV_RANDOM on our descriptor: hashing the
	 * ranges next wants readahead back. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL);
	if (!rc && fsmap_interrupted())
		rc = bmaptk_set_error(err, BMAPTK_ERR_INTERRUPTED, 0,
				      "interrupted");
	stop_flag = NULL;
	free(p.parts);
	return rc;
}

void bmaptk_layout_free(struct bmaptk_layout *layout)
{
	if (!layout)
		return;
	free(layout->parts);
	free(layout);
}
