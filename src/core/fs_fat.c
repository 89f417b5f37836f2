/* create --fs for FAT12/16/32: the reserved sectors, every FAT copy, the
 * FAT12/16 root directory and every data cluster that some FAT copy marks
 * as not free, read from the boot sector and the FATs themselves (Microsoft's
 * "FAT: General Overview of On-Disk Format", 1.03). The FATs are read in
 * chunks, so memory stays bounded however large the filesystem is. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsmap.h"
#include "util.h"

/* FAT entries decoded per chunk: 1 MiB of a FAT32 FAT. Even, so that a
 * chunk of a FAT12 FAT starts on a byte boundary. */
#define CHUNK_ENTRIES (1u << 18)
#define MIB	      (1024 * 1024)

struct fat_geom {
	uint32_t bps;	     /* bytes per sector */
	uint32_t spc;	     /* sectors per cluster */
	uint32_t rsvd;	     /* reserved sectors, boot sector included */
	uint32_t nfats;	     /* FAT copies */
	uint32_t fatsz;	     /* sectors per FAT copy */
	uint32_t root_secs;  /* FAT12/16 root directory sectors */
	uint32_t totsec;     /* sectors in the filesystem */
	uint64_t data_sec;   /* first sector of cluster 2 */
	uint32_t clusters;   /* data clusters: 2 .. clusters + 1 */
	uint32_t root_clus;  /* FAT32 root directory's first cluster */
	unsigned bits;	     /* 12, 16 or 32 */
	uint32_t bad;	     /* the bad-cluster mark */
	uint64_t fat_needed; /* bytes of a FAT that hold clusters' entries */
};

static void set_why(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !why_len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
}

static uint32_t le16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
	return le16(p) | le16(p + 2) << 16;
}

static int is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* Read exactly n bytes at the absolute image offset at; what names the
 * structure a short read ends in. */
static int read_exact(int fd, void *buf, size_t n, uint64_t at,
		      const char *what, char *why, size_t why_len)
{
	ssize_t got = pread_full(fd, buf, n, at);

	if (got < 0) {
		set_why(why, why_len, "read error at byte %llu: %s",
			(unsigned long long)at, strerror(errno));
		return -1;
	}
	if ((size_t)got < n) {
		set_why(why, why_len, "ends before its %s does", what);
		return -1;
	}
	return 0;
}

/* The BPB's values, checked the way a mapper needs them: anything that
 * would put a region outside the filesystem or make the FAT unreadable. */
static int check_bpb(const struct fat_geom *g, char *why, size_t why_len)
{
	if (g->bps < 512 || g->bps > 4096 || !is_pow2(g->bps)) {
		set_why(why, why_len,
			"bytes per sector (%u) is not a power of two from 512 "
			"to 4096",
			g->bps);
		return -1;
	}
	if (!is_pow2(g->spc)) {
		set_why(why, why_len,
			"sectors per cluster (%u) is not a power of two",
			g->spc);
		return -1;
	}
	if (!g->rsvd) {
		set_why(why, why_len, "no reserved sectors");
		return -1;
	}
	if (!g->nfats) {
		set_why(why, why_len, "no FATs");
		return -1;
	}
	if (!g->fatsz) {
		set_why(why, why_len, "FAT size is zero");
		return -1;
	}
	if (!g->totsec) {
		set_why(why, why_len, "total sectors is zero");
		return -1;
	}
	return 0;
}

/* "N MiB", to one decimal when not whole. */
static void fmt_mib(char *buf, size_t len, uint64_t bytes)
{
	if (bytes % MIB == 0)
		snprintf(buf, len, "%llu MiB",
			 (unsigned long long)(bytes / MIB));
	else
		snprintf(buf, len, "%.1f MiB", (double)bytes / MIB);
}

static int check_fits(const struct fat_geom *g, uint64_t len, char *why,
		      size_t why_len)
{
	uint64_t size = (uint64_t)g->totsec * g->bps;
	char a[48], b[48];

	if (size <= len)
		return 0;
	snprintf(a, sizeof(a), "%.1f", (double)size / MIB);
	snprintf(b, sizeof(b), "%.1f", (double)len / MIB);
	if (strcmp(a, b)) {
		fmt_mib(a, sizeof(a), size);
		fmt_mib(b, sizeof(b), len);
	} else { /* a few sectors too many: say how many */
		snprintf(a, sizeof(a), "%llu bytes", (unsigned long long)size);
		snprintf(b, sizeof(b), "%llu bytes", (unsigned long long)len);
	}
	set_why(why, why_len,
		"the filesystem (%s) is larger than its partition (%s)", a, b);
	return -1;
}

/* The entries' width, and what a FAT must hold for the clusters. */
static int fat_type(const uint8_t *bs, struct fat_geom *g, char *why,
		    size_t why_len)
{
	/* The spec's type is the cluster count's: < 4085 FAT12, < 65525
	 * FAT16, else FAT32. But mkfs.fat -F 32 makes FAT32 volumes of
	 * fewer clusters when asked to, with 32-bit entries, and Linux,
	 * mtools and fsck.fat take any volume whose BPB_FATSz16 is zero for
	 * FAT32 (only FAT32 may have it zero): read its entries as FAT16's
	 * and we would map the wrong clusters. A FAT12/16 BPB with too many
	 * clusters for FAT16 is read as FAT32 by the spec and as FAT16 by
	 * Linux: neither can be trusted, so refuse it. */
	if (!le16(bs + 22)) {
		g->bits = 32;
	} else if (g->clusters >= 65525) {
		set_why(why, why_len,
			"%u clusters are too many for FAT16, but its boot "
			"sector is not FAT32's",
			g->clusters);
		return -1;
	}
	if (g->bits == 32) {
		g->bad = 0x0FFFFFF7;
		g->fat_needed = ((uint64_t)g->clusters + 2) * 4;
		/* Clusters past 0x0FFFFFF6 could not be told from the
		 * bad-cluster and end-of-chain marks. */
		if ((uint64_t)g->clusters + 1 >= g->bad) {
			set_why(why, why_len,
				"%u clusters are more than FAT32 can address",
				g->clusters);
			return -1;
		}
		g->root_clus = le32(bs + 44) & 0x0FFFFFFF;
		if (g->root_clus < 2 ||
		    g->root_clus > (uint64_t)g->clusters + 1) {
			set_why(why, why_len,
				"root directory cluster %u is not a cluster of "
				"the filesystem",
				g->root_clus);
			return -1;
		}
	} else if (g->clusters < 4085) {
		g->bits = 12;
		g->bad = 0xFF7;
		g->fat_needed = ((uint64_t)g->clusters + 2) * 3 / 2 +
				(g->clusters & 1); /* 1.5 bytes, rounded up */
	} else {
		g->bits = 16;
		g->bad = 0xFFF7;
		g->fat_needed = ((uint64_t)g->clusters + 2) * 2;
	}
	if (g->fat_needed > (uint64_t)g->fatsz * g->bps) {
		set_why(why, why_len,
			"the FAT (%u sector%s) is too small for %u clusters",
			g->fatsz, g->fatsz == 1 ? "" : "s", g->clusters);
		return -1;
	}
	return 0;
}

static int parse_bpb(const uint8_t *bs, uint64_t len, struct fat_geom *g,
		     char *why, size_t why_len)
{
	uint32_t root_ents;
	uint64_t meta;

	if (bs[510] != 0x55 || bs[511] != 0xAA) {
		set_why(why, why_len, "no boot sector signature (0x55AA)");
		return -1;
	}
	memset(g, 0, sizeof(*g));
	g->bps = le16(bs + 11);
	g->spc = bs[13];
	g->rsvd = le16(bs + 14);
	g->nfats = bs[16];
	root_ents = le16(bs + 17);
	g->totsec = le16(bs + 19) ? le16(bs + 19) : le32(bs + 32);
	g->fatsz = le16(bs + 22) ? le16(bs + 22) : le32(bs + 36);
	if (check_bpb(g, why, why_len) || check_fits(g, len, why, why_len))
		return -1;

	g->root_secs = (root_ents * 32 + g->bps - 1) / g->bps;
	meta = g->rsvd + (uint64_t)g->nfats * g->fatsz + g->root_secs;
	if (meta >= g->totsec) {
		set_why(why, why_len,
			"its reserved sectors, FATs and root directory (%llu "
			"sectors) leave no room for data in its %u sectors",
			(unsigned long long)meta, g->totsec);
		return -1;
	}
	g->data_sec = meta;
	g->clusters = (uint32_t)((g->totsec - meta) / g->spc);
	if (!g->clusters) {
		set_why(why, why_len, "no data clusters");
		return -1;
	}
	return fat_type(bs, g, why, why_len);
}

/* Byte offset in a FAT of entry e; e even for FAT12. */
static uint64_t fat_byte(const struct fat_geom *g, uint64_t e)
{
	return g->bits == 12 ? e * 3 / 2 : e * (g->bits / 8);
}

/* Entry e of a chunk whose first entry, e0, is at buf[0]. */
static uint32_t fat_entry(const struct fat_geom *g, const uint8_t *buf,
			  uint64_t e0, uint64_t e)
{
	uint64_t at = fat_byte(g, e) - fat_byte(g, e0);
	uint32_t v;

	switch (g->bits) {
	case 12:
		v = le16(buf + at);
		return e & 1 ? v >> 4 : v & 0xFFF;
	case 16:
		return le16(buf + at);
	default:
		return le32(buf + at) & 0x0FFFFFFF;
	}
}

/* The clusters being coalesced into one extent. */
struct run {
	uint64_t first, n;
};

static int run_flush(struct run *r, const struct fat_geom *g, uint64_t off,
		     struct extent_set *out)
{
	uint64_t clus = (uint64_t)g->spc * g->bps;
	uint64_t at = off + g->data_sec * g->bps + (r->first - 2) * clus;
	int rc = 0;

	if (r->n)
		rc = extent_add(out, at, r->n * clus);
	r->n = 0;
	return rc;
}

static int run_add(struct run *r, uint64_t c, const struct fat_geom *g,
		   uint64_t off, struct extent_set *out)
{
	if (r->n && r->first + r->n == c) {
		r->n++;
		return 0;
	}
	if (run_flush(r, g, off, out))
		return -1;
	r->first = c;
	r->n = 1;
	return 0;
}

/* Mark in used[] the entries [e0, e1) of FAT copy k that are not free,
 * refusing one that points past the last cluster. */
static int scan_copy(int fd, uint64_t off, const struct fat_geom *g, uint32_t k,
		     uint64_t e0, uint64_t e1, uint8_t *buf, uint8_t *used,
		     char *why, size_t why_len)
{
	uint64_t b0 = fat_byte(g, e0);
	uint64_t b1 =
	    e1 == (uint64_t)g->clusters + 2 ? g->fat_needed : fat_byte(g, e1);
	uint64_t at =
	    off + ((uint64_t)g->rsvd + (uint64_t)k * g->fatsz) * g->bps;
	uint64_t max = (uint64_t)g->clusters + 1;

	if (read_exact(fd, buf, b1 - b0, at + b0, "FAT", why, why_len))
		return -1;
	for (uint64_t e = e0 < 2 ? 2 : e0; e < e1; e++) {
		uint32_t v = fat_entry(g, buf, e0, e);
		if (!v)
			continue;
		/* The bad-cluster mark and the end-of-chain marks above it
		 * are in use; a value between the last cluster and them
		 * names no cluster at all. */
		if (v > max && v < g->bad) {
			set_why(why, why_len,
				"FAT entry for cluster %llu points beyond the "
				"last cluster",
				(unsigned long long)e);
			return -1;
		}
		used[(e - e0) / 8] |= (uint8_t)(1u << ((e - e0) % 8));
	}
	return 0;
}

/* Every data cluster some FAT copy marks as not free, in cluster order. */
static int map_clusters(int fd, uint64_t off, const struct fat_geom *g,
			struct extent_set *out, uint64_t *n_used, char *why,
			size_t why_len)
{
	uint64_t nent = (uint64_t)g->clusters + 2;
	size_t per = (size_t)MIN(nent, CHUNK_ENTRIES);
	uint8_t *buf = malloc(fat_byte(g, per) + 2);
	uint8_t *used = malloc(per / 8 + 1);
	struct run r = {0};
	int rc = -2;

	*n_used = 0;
	if (!buf || !used)
		goto out;
	for (uint64_t e0 = 0; e0 < nent; e0 += per) {
		uint64_t e1 = MIN(nent, e0 + per);
		memset(used, 0, per / 8 + 1);
		for (uint32_t k = 0; k < g->nfats; k++) {
			if (fsmap_interrupted()) {
				rc = -3;
				goto out;
			}
			if (scan_copy(fd, off, g, k, e0, e1, buf, used, why,
				      why_len)) {
				rc = -1;
				goto out;
			}
		}
		for (uint64_t e = e0 < 2 ? 2 : e0; e < e1; e++) {
			if (!(used[(e - e0) / 8] & (1u << ((e - e0) % 8))))
				continue;
			(*n_used)++;
			if (run_add(&r, e, g, off, out))
				goto out;
		}
	}
	if (run_flush(&r, g, off, out))
		goto out;
	rc = 0;
out:
	if (rc == -2)
		set_why(why, why_len, "out of memory");
	free(buf);
	free(used);
	return rc;
}

int fs_map_fat(int fd, uint64_t off, uint64_t len, struct extent_set *out,
	       uint64_t *fs_len, char *why, size_t why_len)
{
	uint8_t bs[512];
	struct fat_geom g;
	uint64_t n_used, root;
	int rc;

	if (len < sizeof(bs)) {
		set_why(why, why_len, "too small for a FAT boot sector");
		return -1;
	}
	if (read_exact(fd, bs, sizeof(bs), off, "boot sector", why, why_len) ||
	    parse_bpb(bs, len, &g, why, why_len))
		return -1;
	/* Linux sets bit 0 of the NT flags byte while the filesystem is
	 * mounted read-write: its FAT may not hold what the files use. */
	if (bs[g.bits == 32 ? 65 : 37] & 0x01) {
		set_why(why, why_len,
			"marked dirty (mounted, or not cleanly unmounted)");
		return -1;
	}
	*fs_len = (uint64_t)g.totsec * g.bps;

	/* Reserved sectors, the FATs and the root directory are one run. */
	if (extent_add(out, off, g.data_sec * g.bps)) {
		set_why(why, why_len, "out of memory");
		return -2;
	}
	rc = map_clusters(fd, off, &g, out, &n_used, why, why_len);
	if (rc)
		return rc;
	/* FAT32's root directory is in use even if its FAT entry says not. */
	if (g.bits == 32) {
		root = g.data_sec + (uint64_t)(g.root_clus - 2) * g.spc;
		if (extent_add(out, off + root * g.bps,
			       (uint64_t)g.spc * g.bps)) {
			set_why(why, why_len, "out of memory");
			return -2;
		}
	}
	bmaptk_debug("fat: FAT%u, %u-byte sectors, %u-sector clusters, "
		     "%u FATs of %u sectors, %llu of %u clusters used",
		     g.bits, g.bps, g.spc, g.nfats, g.fatsz,
		     (unsigned long long)n_used, g.clusters);
	return 0;
}
