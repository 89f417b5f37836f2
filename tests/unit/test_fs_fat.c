/* The FAT mapper (src/core/fs_fat.c) against FAT12/16/32 images that
 * mkfs.vfat makes and mtools fills and thins at run time. It must map the
 * reserved sectors, the FATs, the root directory and exactly the clusters
 * fsck.fat counts as used; a copy holding only what it maps must still
 * pass fsck.fat and give back every file; broken images are refused with a
 * reason. Skipped without dosfstools and mtools. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fsmap.h"

#define MIB (1024ull * 1024)

static char tmp[64]; /* this run's directory */

/* ---- helpers ------------------------------------------------------------ */

static int sh_rc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh_rc(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

#define sh(...) assert_int_equal(sh_rc(__VA_ARGS__), 0)

/* What fsck.fat -n -v reports of an image. */
struct fsck {
	uint64_t fat_start, fat_bytes, data_start, clus_bytes;
	unsigned fats, bits;
	uint64_t clusters, used;
};

static void fsck_figures(const char *img, struct fsck *f)
{
	char cmd[512], line[512];
	unsigned long long a, b;
	FILE *p;

	memset(f, 0, sizeof(*f));
	snprintf(cmd, sizeof(cmd), "fsck.fat -n -v %s 2>&1", img);
	p = popen(cmd, "r");
	assert_non_null(p);
	/* sscanf counts a number matched before a mismatch: say which
	 * line is which by its words first. */
	while (fgets(line, sizeof(line), p)) {
		if (strstr(line, "First FAT starts at byte") &&
		    sscanf(line, "First FAT starts at byte %llu", &a) == 1)
			f->fat_start = a;
		else if (strstr(line, "bytes per FAT") &&
			 sscanf(line, " %llu", &a) == 1)
			f->fat_bytes = a;
		else if (strstr(line, "Data area starts at byte") &&
			 sscanf(line, "Data area starts at byte %llu", &a) == 1)
			f->data_start = a;
		else if (strstr(line, "bytes per cluster") &&
			 sscanf(line, " %llu", &a) == 1)
			f->clus_bytes = a;
		else if (strstr(line, "bit entries") &&
			 sscanf(line, " %u FATs, %u", &f->fats, &f->bits) == 2)
			;
		else if (strstr(line, " files, ") &&
			 sscanf(strstr(line, " files, "), " files, %llu/%llu",
				&a, &b) == 2) {
			f->used = a;
			f->clusters = b;
		}
	}
	assert_int_equal(pclose(p), 0); /* and it found nothing wrong */
	assert_true(f->fat_start && f->fat_bytes && f->data_start &&
		    f->clus_bytes && f->fats && f->bits && f->clusters);
}

static int map(const char *img, uint64_t off, uint64_t len,
	       struct extent_set *s, char *why, size_t why_len)
{
	int fd = open(img, O_RDONLY);
	uint64_t fs_len = 0;
	int rc;

	assert_true(fd >= 0);
	*s = (struct extent_set){0};
	why[0] = 0;
	rc = fs_map_fat(fd, off, len, s, &fs_len, why, why_len);
	if (!rc)
		assert_true(fs_len > 0 && fs_len <= len);
	close(fd);
	return rc;
}

/* The reason a broken image is refused with. */
static void assert_refused(const char *img, uint64_t len, const char *want)
{
	struct extent_set s;
	char why[256];

	assert_int_equal(map(img, 0, len, &s, why, sizeof(why)), -1);
	print_message("  refused: %s\n", why);
	assert_string_equal(why, want);
	extent_set_free(&s);
}

static void put(const char *img, uint64_t at, const void *bytes, size_t n)
{
	int fd = open(img, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, n, (off_t)at), (ssize_t)n);
	close(fd);
}

static void put16(const char *img, uint64_t at, unsigned v)
{
	uint8_t b[2] = {v & 0xff, v >> 8};

	put(img, at, b, 2);
}

static void put32(const char *img, uint64_t at, uint32_t v)
{
	uint8_t b[4] = {v & 0xff, v >> 8 & 0xff, v >> 16 & 0xff, v >> 24};

	put(img, at, b, 4);
}

/* Set cluster c's entry in FAT copy k, FAT12 entries packed by hand. */
static void set_entry(const char *img, const struct fsck *f, unsigned k,
		      uint64_t c, uint32_t v)
{
	uint64_t fat = f->fat_start + k * f->fat_bytes;
	uint8_t b[2];
	int fd;

	if (f->bits == 16) {
		put16(img, fat + 2 * c, v);
		return;
	}
	if (f->bits == 32) {
		put32(img, fat + 4 * c, v);
		return;
	}
	fd = open(img, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, b, 2, (off_t)(fat + c * 3 / 2)), 2);
	if (c & 1) {
		b[0] = (uint8_t)((b[0] & 0x0f) | (v & 0x0f) << 4);
		b[1] = (uint8_t)(v >> 4);
	} else {
		b[0] = (uint8_t)v;
		b[1] = (uint8_t)((b[1] & 0xf0) | (v >> 8 & 0x0f));
	}
	assert_int_equal(pwrite(fd, b, 2, (off_t)(fat + c * 3 / 2)), 2);
	close(fd);
}

/* A file of n bytes that depends on seed, none of it zero runs. */
static void make_file(const char *path, size_t n, unsigned seed)
{
	FILE *f = fopen(path, "wb");
	uint32_t x = seed * 2654435761u + 1;

	assert_non_null(f);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		fputc((int)(x & 0xff) | 1, f);
	}
	assert_int_equal(fclose(f), 0);
}

/* Which of the files populate() made are still in the image. */
struct files {
	unsigned n;
	char name[64][32];
};

/* nfiles of up to max bytes each, some in a subdirectory, every third one
 * deleted again so that the FAT has holes. */
static void populate(const char *img, unsigned nfiles, size_t max,
		     struct files *kept)
{
	char src[128];

	assert_true(nfiles <= 64);
	kept->n = 0;
	sh("mmd -i %s ::/sub", img);
	for (unsigned i = 0; i < nfiles; i++) {
		size_t n = (size_t)(i * 7919u * 131u) % max + 1;
		char name[32];

		snprintf(name, sizeof(name), "%sf%u", i % 4 ? "" : "sub/", i);
		snprintf(src, sizeof(src), "%s/src%u", tmp, i);
		make_file(src, i == 5 ? 0 : n, i);
		sh("mcopy -o -i %s %s ::/%s", img, src, name);
		if (i % 3 == 1)
			continue;
		strcpy(kept->name[kept->n++], name);
	}
	for (unsigned i = 1; i < nfiles; i += 3)
		sh("mdel -i %s ::/%sf%u", img, i % 4 ? "" : "sub/", i);
}

static void mkfs(const char *img, const char *opts, uint64_t size)
{
	unlink(img);
	sh("mkfs.vfat %s -C %s %llu >/dev/null 2>&1", opts, img,
	   (unsigned long long)(size / 1024));
}

/* A copy of img holding only the mapped bytes of [off, off+len). */
static void copy_mapped(const char *img, const char *copy,
			const struct extent_set *s, uint64_t off, uint64_t len)
{
	static char buf[1 << 20];
	int in = open(img, O_RDONLY);
	int out = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(in >= 0 && out >= 0);
	assert_int_equal(ftruncate(out, (off_t)len), 0);
	for (size_t i = 0; i < s->n; i++) {
		for (uint64_t done = 0; done < s->v[i].len;) {
			size_t n = s->v[i].len - done < sizeof(buf)
				       ? s->v[i].len - done
				       : sizeof(buf);
			uint64_t at = s->v[i].off + done;
			assert_int_equal(pread(in, buf, n, (off_t)at),
					 (ssize_t)n);
			assert_int_equal(pwrite(out, buf, n, (off_t)(at - off)),
					 (ssize_t)n);
			done += n;
		}
	}
	close(in);
	close(out);
}

/* Map img, check the figures against fsck.fat's, and that a copy of only
 * the mapped bytes still holds every kept file. */
static void check_image(const char *img, const struct files *kept,
			struct extent_set *s, struct fsck *f)
{
	char copy[128], out[128], src[128], why[256];
	struct stat st;
	uint64_t want;

	assert_int_equal(stat(img, &st), 0);
	fsck_figures(img, f);
	assert_int_equal(map(img, 0, (uint64_t)st.st_size, s, why, sizeof(why)),
			 0);
	for (size_t i = 0; i < s->n; i++)
		assert_true(s->v[i].off + s->v[i].len <= (uint64_t)st.st_size);
	want = f->data_start + f->used * f->clus_bytes;
	print_message("  FAT%u: %llu/%llu clusters of %llu bytes used, "
		      "%llu bytes mapped in %zu extents\n",
		      f->bits, (unsigned long long)f->used,
		      (unsigned long long)f->clusters,
		      (unsigned long long)f->clus_bytes,
		      (unsigned long long)extent_total(s), s->n);
	assert_int_equal(extent_total(s), want);

	snprintf(copy, sizeof(copy), "%s/mapped.img", tmp);
	snprintf(out, sizeof(out), "%s/out", tmp);
	copy_mapped(img, copy, s, 0, (uint64_t)st.st_size);
	sh("fsck.fat -n %s >/dev/null", copy);
	for (unsigned i = 0; i < kept->n; i++) {
		const char *name = kept->name[i];
		unsigned n = (unsigned)atoi(strrchr(name, 'f') + 1);
		unlink(out);
		snprintf(src, sizeof(src), "%s/src%u", tmp, n);
		sh("mcopy -n -i %s ::/%s %s", copy, name, out);
		sh("cmp -s %s %s", src, out);
	}
	unlink(copy);
}

/* ---- images that mkfs.vfat and mtools make ------------------------------ */

struct layout {
	const char *opts;
	uint64_t size;
	unsigned bits, nfiles;
	size_t max_file;
};

static void test_layout(void **state)
{
	const struct layout *l = *state;
	struct extent_set s;
	struct files kept;
	struct fsck f;
	char img[128];

	snprintf(img, sizeof(img), "%s/fs.img", tmp);
	mkfs(img, l->opts, l->size);
	populate(img, l->nfiles, l->max_file, &kept);
	check_image(img, &kept, &s, &f);
	assert_int_equal(f.bits, l->bits);
	extent_set_free(&s);
	unlink(img);
}

static const struct layout fat12 = {"", 1 * MIB, 12, 12, 60000};
static const struct layout fat12_floppy = {"-f 2 -r 224 -s 1", 1440 * 1024, 12,
					   20, 50000};
static const struct layout fat16 = {"-F 16", 32 * MIB, 16, 40, 600000};
static const struct layout fat16_4k = {"-F 16 -S 4096", 64 * MIB, 16, 20,
				       900000};
static const struct layout fat32 = {"-F 32", 128 * MIB, 32, 40, 2000000};
static const struct layout fat32_big = {"-F 32", 600 * MIB, 32, 30, 4000000};
static const struct layout fat32_one = {"-F 32 -f 1 -s 1", 64 * MIB, 32, 20,
					1000000};

/* ---- where the filesystem is, and what is mapped of it ------------------ */

/* 1 MiB into a bigger file, in a window larger than the filesystem: the
 * same extents, moved by 1 MiB, and nothing past the filesystem's end. */
static void test_offset(void **state)
{
	struct extent_set s, at;
	char img[128], big[128], why[256];
	struct files kept;
	struct fsck f;

	(void)state;
	snprintf(img, sizeof(img), "%s/fs.img", tmp);
	snprintf(big, sizeof(big), "%s/big.img", tmp);
	mkfs(img, "-F 16", 32 * MIB);
	populate(img, 20, 500000, &kept);
	check_image(img, &kept, &s, &f);
	unlink(big);
	sh("truncate -s 40M %s && dd if=%s of=%s bs=1M seek=1 conv=notrunc "
	   "status=none",
	   big, img, big);
	assert_int_equal(map(big, MIB, 36 * MIB, &at, why, sizeof(why)), 0);
	assert_int_equal(at.n, s.n);
	for (size_t i = 0; i < s.n; i++) {
		assert_int_equal(at.v[i].off, s.v[i].off + MIB);
		assert_int_equal(at.v[i].len, s.v[i].len);
	}
	extent_set_free(&at);
	/* One byte short of the filesystem's end. */
	assert_int_equal(map(big, MIB, 32 * MIB - 1, &at, why, sizeof(why)),
			 -1);
	assert_string_equal(why, "the filesystem (33554432 bytes) is larger "
				 "than its partition (33554431 bytes)");
	extent_set_free(&at);
	extent_set_free(&s);
	unlink(big);
	unlink(img);
}

/* A cluster free in one copy but not in the other is mapped, bad or not;
 * a FAT32 entry's top four bits are not part of it. */
static void test_union_of_copies(void **state)
{
	const char *opts = *state;
	struct extent_set s, u;
	char img[128], why[256];
	struct files kept;
	struct fsck f;
	uint32_t bad, eoc;
	uint64_t last;

	snprintf(img, sizeof(img), "%s/fs.img", tmp);
	mkfs(img, opts, 64 * MIB);
	populate(img, 10, 100000, &kept);
	check_image(img, &kept, &s, &f);
	bad = f.bits == 12 ? 0xFF7 : f.bits == 16 ? 0xFFF7 : 0x0FFFFFF7;
	eoc = f.bits == 12 ? 0xFFF : f.bits == 16 ? 0xFFFF : 0x0FFFFFFF;
	last = f.clusters + 1;
	set_entry(img, &f, 1, last, eoc);     /* the last cluster */
	set_entry(img, &f, 1, last - 2, bad); /* bad in copy 2 only */
	set_entry(img, &f, 0, last - 4, (uint32_t)last); /* to the last */
	if (f.bits == 32)
		set_entry(img, &f, 0, last - 6, 0xF0000000); /* still free */
	assert_int_equal(map(img, 0, 64 * MIB, &u, why, sizeof(why)), 0);
	assert_int_equal(extent_total(&u), extent_total(&s) + 3 * f.clus_bytes);
	extent_normalise(&u);
	/* The last cluster ends where the data area's clusters do. */
	assert_int_equal(u.v[u.n - 1].off + u.v[u.n - 1].len,
			 f.data_start + f.clusters * f.clus_bytes);
	extent_set_free(&u);
	extent_set_free(&s);
	unlink(img);
}

/* Clusters in use across two 256 Ki-entry chunks of the FAT are one
 * extent. */
static void test_run_across_chunks(void **state)
{
	struct extent_set s, u;
	char img[128], why[256];
	struct files kept;
	struct fsck f;
	uint64_t at;
	int found = 0;

	(void)state;
	snprintf(img, sizeof(img), "%s/fs.img", tmp);
	mkfs(img, "-F 32 -s 1", 600 * MIB);
	populate(img, 10, 1000000, &kept);
	check_image(img, &kept, &s, &f);
	assert_true(f.clusters > 600000);
	for (uint64_t c = 262140; c <= 262150; c++) {
		set_entry(img, &f, 0, c, c == 262150 ? 0x0FFFFFFF : c + 1);
		set_entry(img, &f, 1, c, c == 262150 ? 0x0FFFFFFF : c + 1);
	}
	assert_int_equal(map(img, 0, 600 * MIB, &u, why, sizeof(why)), 0);
	assert_int_equal(extent_total(&u),
			 extent_total(&s) + 11 * f.clus_bytes);
	at = f.data_start + (262140 - 2) * f.clus_bytes;
	for (size_t i = 0; i < u.n; i++)
		if (u.v[i].off == at && u.v[i].len == 11 * f.clus_bytes)
			found = 1;
	assert_true(found);
	extent_set_free(&u);
	extent_set_free(&s);
	unlink(img);
}

/* mkfs.vfat -F 32 on 32 MiB makes a FAT32 of 64496 clusters, FAT16's by
 * the spec's count; its entries are 32-bit all the same (Linux and
 * fsck.fat read it so; mtools refuses it, so its FAT is written here). */
static void test_small_fat32(void **state)
{
	struct extent_set s;
	char img[128], why[256];
	struct fsck f;

	(void)state;
	snprintf(img, sizeof(img), "%s/fs.img", tmp);
	mkfs(img, "-F 32", 32 * MIB);
	fsck_figures(img, &f);
	assert_int_equal(f.bits, 32);
	assert_true(f.clusters < 65525);
	assert_int_equal(map(img, 0, 32 * MIB, &s, why, sizeof(why)), 0);
	assert_int_equal(extent_total(&s),
			 f.data_start + f.used * f.clus_bytes);
	extent_set_free(&s);
	/* A chain of clusters 100..107, in both copies. */
	for (uint32_t c = 100; c < 108; c++) {
		set_entry(img, &f, 0, c, c == 107 ? 0x0FFFFFFF : c + 1);
		set_entry(img, &f, 1, c, c == 107 ? 0x0FFFFFFF : c + 1);
	}
	assert_int_equal(map(img, 0, 32 * MIB, &s, why, sizeof(why)), 0);
	assert_int_equal(extent_total(&s),
			 f.data_start + (f.used + 8) * f.clus_bytes);
	extent_set_free(&s);
	unlink(img);
}

/* ---- broken images ------------------------------------------------------ */

static void test_broken_bpb(void **state)
{
	struct extent_set s;
	struct files kept;
	struct fsck f;
	char img[128], why[256];
	uint64_t size = 32 * MIB;

	(void)state;
	snprintf(img, sizeof(img), "%s/fs.img", tmp);
#define FRESH()                                                                \
	do {                                                                   \
		mkfs(img, "-F 16", size);                                      \
		fsck_figures(img, &f);                                         \
	} while (0)
	FRESH();
	populate(img, 4, 10000, &kept);
	check_image(img, &kept, &s, &f);
	extent_set_free(&s);

	put16(img, 11, 0);
	assert_refused(img, size,
		       "bytes per sector (0) is not a power of two "
		       "from 512 to 4096");
	put16(img, 11, 1024 + 512);
	assert_refused(img, size,
		       "bytes per sector (1536) is not a power of "
		       "two from 512 to 4096");
	FRESH();
	put(img, 13, "\x03", 1);
	assert_refused(img, size,
		       "sectors per cluster (3) is not a power of two");
	put(img, 13, "\x00", 1);
	assert_refused(img, size,
		       "sectors per cluster (0) is not a power of two");
	FRESH();
	put16(img, 14, 0);
	assert_refused(img, size, "no reserved sectors");
	FRESH();
	put(img, 16, "\x00", 1);
	assert_refused(img, size, "no FATs");
	FRESH();
	put16(img, 22, 0); /* FAT16's FAT size; FAT32's follows */
	put32(img, 36, 0);
	assert_refused(img, size, "FAT size is zero");
	FRESH();
	put16(img, 22, 1);
	snprintf(why, sizeof(why),
		 "the FAT (1 sector) is too small for %llu clusters",
		 /* with two 1-sector FATs, more room for clusters */
		 (unsigned long long)(size - f.fat_start - 2 * 512 -
				      (f.data_start - f.fat_start -
				       2 * f.fat_bytes)) /
		     f.clus_bytes);
	assert_refused(img, size, why);
	FRESH();
	put16(img, 510, 0);
	assert_refused(img, size, "no boot sector signature (0x55AA)");

	/* Total sectors: more than the window, and the window too small. */
	FRESH();
	put16(img, 19, 0);
	put32(img, 32, 2 * 65536);
	assert_refused(img, size,
		       "the filesystem (64 MiB) is larger than its "
		       "partition (32 MiB)");
	FRESH();
	assert_refused(img, size - 3 * MIB / 2,
		       "the filesystem (32 MiB) is larger than its partition "
		       "(30.5 MiB)");
	assert_refused(img, 100, "too small for a FAT boot sector");
	put32(img, 32, 40);
	snprintf(why, sizeof(why),
		 "its reserved sectors, FATs and root directory (%llu sectors) "
		 "leave no room for data in its 40 sectors",
		 (unsigned long long)f.data_start / 512);
	assert_refused(img, size, why);
	unlink(img);
#undef FRESH
}

/* An entry past the last cluster, in either copy, at either half of a
 * FAT12 byte triple; the FAT32 mask applies first. */
static void test_entry_past_last(void **state)
{
	const char *opts = *state;
	char img[128], want[128];
	struct fsck f;
	uint64_t last;
	uint32_t past;

	snprintf(img, sizeof(img), "%s/fs.img", tmp);
	for (unsigned k = 0; k < 2; k++) {
		for (uint64_t c = 10; c < 12; c++) {
			mkfs(img, opts, 64 * MIB);
			fsck_figures(img, &f);
			last = f.clusters + 1;
			past = f.bits == 32 ? 0xF0000000 | (uint32_t)(last + 1)
					    : (uint32_t)last + 1;
			set_entry(img, &f, k, c, past);
			snprintf(want, sizeof(want),
				 "FAT entry for cluster %llu points beyond "
				 "the last cluster",
				 (unsigned long long)c);
			assert_refused(img, 64 * MIB, want);
		}
	}
	/* Just below the bad-cluster mark is just as wrong. */
	mkfs(img, opts, 64 * MIB);
	fsck_figures(img, &f);
	set_entry(img, &f, 0, f.clusters + 1,
		  f.bits == 12	 ? 0xFF6
		  : f.bits == 16 ? 0xFFF6
				 : 0x0FFFFFF6);
	snprintf(want, sizeof(want),
		 "FAT entry for cluster %llu points beyond the last cluster",
		 (unsigned long long)f.clusters + 1);
	assert_refused(img, 64 * MIB, want);
	unlink(img);
}

static void test_short_and_unreadable(void **state)
{
	struct extent_set s;
	uint64_t fs_len = 0;
	char img[128], why[256];
	int fd;

	(void)state;
	snprintf(img, sizeof(img), "%s/fs.img", tmp);
	mkfs(img, "-F 16", 32 * MIB);
	sh("truncate -s 2048 %s", img); /* the boot sector, not the FATs */
	assert_refused(img, 32 * MIB, "ends before its FAT does");
	sh("truncate -s 0 %s", img);
	assert_refused(img, 32 * MIB, "ends before its boot sector does");

	fd = open(tmp, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	s = (struct extent_set){0};
	assert_int_equal(
	    fs_map_fat(fd, 4096, 32 * MIB, &s, &fs_len, why, sizeof(why)), -1);
	close(fd);
	assert_string_equal(why, "read error at byte 4096: Is a directory");
	unlink(img);
}

/* ---- setup -------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "%s/bmaptk-fat-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return sh_rc("rm -rf %s", tmp);
}

int main(void)
{
	const char *path = getenv("PATH");
	char *p = malloc(strlen(path ? path : "") + 32);

	/* mkfs.vfat and fsck.fat live in /usr/sbin on Debian; mtools reads
	 * no ~/.mtoolsrc and does not ask about geometry. */
	sprintf(p, "%s:/usr/sbin:/sbin", path ? path : "/usr/bin:/bin");
	setenv("PATH", p, 1);
	free(p);
	setenv("MTOOLS_SKIP_CHECK", "1", 1);
	setenv("MTOOLSRC", "/dev/null", 1);
	if (sh_rc("for t in mkfs.vfat fsck.fat mcopy mdel mmd cmp dd truncate; "
		  "do "
		  "command -v $t >/dev/null || exit 1; done")) {
		printf("dosfstools or mtools missing: skipping\n");
		return 0;
	}

	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_prestate(test_layout, (void *)&fat12),
	    cmocka_unit_test_prestate(test_layout, (void *)&fat12_floppy),
	    cmocka_unit_test_prestate(test_layout, (void *)&fat16),
	    cmocka_unit_test_prestate(test_layout, (void *)&fat16_4k),
	    cmocka_unit_test_prestate(test_layout, (void *)&fat32),
	    cmocka_unit_test_prestate(test_layout, (void *)&fat32_big),
	    cmocka_unit_test_prestate(test_layout, (void *)&fat32_one),
	    cmocka_unit_test(test_offset),
	    cmocka_unit_test_prestate(test_union_of_copies, "-F 12 -s 64"),
	    cmocka_unit_test_prestate(test_union_of_copies, "-F 16"),
	    cmocka_unit_test_prestate(test_union_of_copies, "-F 32"),
	    cmocka_unit_test(test_run_across_chunks),
	    cmocka_unit_test(test_small_fat32),
	    cmocka_unit_test(test_broken_bpb),
	    cmocka_unit_test_prestate(test_entry_past_last, "-F 12 -s 64"),
	    cmocka_unit_test_prestate(test_entry_past_last, "-F 16"),
	    cmocka_unit_test_prestate(test_entry_past_last, "-F 32"),
	    cmocka_unit_test(test_short_and_unreadable),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
