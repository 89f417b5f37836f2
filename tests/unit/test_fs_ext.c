/* The ext2/3/4 mapper (src/core/fs_ext.c) against filesystems made here by
 * mke2fs and read back by dumpe2fs: what it maps must be exactly the blocks
 * that dumpe2fs lists as not free, group by group (so the journal, the
 * inode tables and the other metadata are in, and the 1 KiB boot block),
 * and broken or stale filesystems must be refused with a reason. Skipped
 * without e2fsprogs or in a build without libext2fs. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ext2fs_api.h"
#include "fsmap.h"

#define MiB (1ull << 20)
/* Where mke2fs, dumpe2fs and debugfs live when PATH lacks sbin; mk is a
 * quiet mke2fs (-q still says "Creating regular file"). */
#define TOOLS                                                                  \
	"PATH=\"$PATH:/sbin:/usr/sbin\"; "                                     \
	"mk() { mke2fs -q -F \"$@\" >/dev/null; }; "

static char dir[64];
static char path_buf[4][128];
static int path_next;

static const char *path_of(const char *name)
{
	char *p = path_buf[path_next++ % 4];

	snprintf(p, sizeof(path_buf[0]), "%s/%s", dir, name);
	return p;
}

static int vsh(const char *fmt, va_list ap)
{
	char cmd[2048];
	int n = snprintf(cmd, sizeof(cmd), TOOLS);

	vsnprintf(cmd + n, sizeof(cmd) - n, fmt, ap);
	return system(cmd);
}

static int sh(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vsh(fmt, ap);
	va_end(ap);
	return rc;
}

static void run(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vsh(fmt, ap);
	va_end(ap);
	assert_int_equal(rc, 0);
}

static int have_tools(void)
{
	return sh("command -v mke2fs >/dev/null && "
		  "command -v dumpe2fs >/dev/null && "
		  "command -v debugfs >/dev/null") == 0;
}

/* ---- what dumpe2fs says --------------------------------------------- */

struct fs_info {
	uint64_t blocks, free, bs;
	struct extent_set used; /* absolute offsets, normalised */
};

/* Every block not in a group's "Free blocks:" list is used. */
static void read_dumpe2fs(const char *spec, uint64_t off, struct fs_info *fi)
{
	char cmd[512], line[4096];
	uint64_t pos = 0;
	FILE *p;

	memset(fi, 0, sizeof(*fi));
	snprintf(cmd, sizeof(cmd), TOOLS "dumpe2fs '%s' 2>/dev/null", spec);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p)) {
		unsigned long long v;
		char *s;

		if (sscanf(line, "Block count: %llu", &v) == 1)
			fi->blocks = v;
		else if (sscanf(line, "Free blocks: %llu", &v) == 1)
			fi->free = v;
		else if (sscanf(line, "Block size: %llu", &v) == 1)
			fi->bs = v;
		if (strncmp(line, "  Free blocks: ", 15))
			continue;
		assert_true(fi->bs != 0);
		for (s = line + 15; *s && *s != '\n';) {
			unsigned long long a, b;
			int used;

			if (sscanf(s, "%llu-%llu%n", &a, &b, &used) != 2 &&
			    sscanf(s, "%llu%n", &a, &used) == 1)
				b = a;
			assert_true(a >= pos && b >= a);
			assert_int_equal(extent_add(&fi->used,
						    off + pos * fi->bs,
						    (a - pos) * fi->bs),
					 0);
			pos = b + 1;
			s += used;
			s += strspn(s, ", ");
		}
	}
	assert_int_equal(pclose(p), 0);
	assert_true(fi->blocks && fi->bs && pos <= fi->blocks);
	assert_int_equal(extent_add(&fi->used, off + pos * fi->bs,
				    (fi->blocks - pos) * fi->bs),
			 0);
	extent_normalise(&fi->used);
}

/* ---- the mapper ------------------------------------------------------ */

static int map(const char *img, uint64_t off, uint64_t len,
	       struct extent_set *out, char *why, size_t why_len)
{
	int fd = open(img, O_RDONLY);
	uint64_t fs_len = 0;
	struct stat st;
	int rc;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	if (!len)
		len = (uint64_t)st.st_size - off;
	why[0] = '\0';
	rc = fs_map_ext(fd, off, len, out, &fs_len, why, why_len);
	if (!rc)
		assert_true(fs_len > 0 && fs_len <= len);
	close(fd);
	return rc;
}

/* Map the filesystem at off in img and compare with dumpe2fs, extent by
 * extent. Returns the bytes mapped. */
static uint64_t expect_exact(const char *img, uint64_t off, uint64_t len)
{
	struct extent_set got = {0};
	struct fs_info fi;
	char spec[256], why[256];

	assert_int_equal(map(img, off, len, &got, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	snprintf(spec, sizeof(spec), off ? "%s?offset=%llu" : "%s", img,
		 (unsigned long long)off);
	read_dumpe2fs(spec, off, &fi);
	for (size_t i = 0; i < got.n; i++) {
		assert_true(got.v[i].off >= off);
		assert_true(got.v[i].off + got.v[i].len <=
			    off + fi.blocks * fi.bs);
	}
	extent_normalise(&got);
	/* Totals first: the clearest message when they differ. */
	assert_int_equal(extent_total(&got), (fi.blocks - fi.free) * fi.bs);
	assert_int_equal(got.n, fi.used.n);
	for (size_t i = 0; i < got.n; i++) {
		assert_int_equal(got.v[i].off, fi.used.v[i].off);
		assert_int_equal(got.v[i].len, fi.used.v[i].len);
	}
	extent_set_free(&got);
	extent_set_free(&fi.used);
	return (fi.blocks - fi.free) * fi.bs;
}

/* Every block debugfs lists for an inode ("<8>": the journal) is mapped. */
static void expect_blocks_mapped(const char *img, const char *inode,
				 uint64_t bs)
{
	struct extent_set got = {0};
	char cmd[512], why[256];
	unsigned long long b;
	size_t n = 0;
	FILE *p;

	assert_int_equal(map(img, 0, 0, &got, why, sizeof(why)), 0);
	extent_normalise(&got);
	snprintf(cmd, sizeof(cmd),
		 TOOLS "debugfs -R 'blocks %s' '%s' 2>/dev/null", inode, img);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fscanf(p, "%llu", &b) == 1) {
		size_t i = 0;
		while (i < got.n && got.v[i].off + got.v[i].len <= b * bs)
			i++;
		assert_true(i < got.n && got.v[i].off <= b * bs);
		n++;
	}
	assert_int_equal(pclose(p), 0);
	assert_true(n > 0);
	extent_set_free(&got);
}

static void expect_refused(const char *img, uint64_t off, uint64_t len,
			   const char *reason)
{
	struct extent_set got = {0};
	char why[256];

	assert_int_equal(map(img, off, len, &got, why, sizeof(why)), -1);
	if (!strstr(why, reason))
		fail_msg("why: \"%s\", expected \"%s\"", why, reason);
	assert_int_equal(got.n, 0);
	extent_set_free(&got);
}

/* ---- fixtures -------------------------------------------------------- */

static int setup(void **state)
{
	char why[256];

	(void)state;
	if (ext2fs_api_load(why, sizeof(why)) || !have_tools())
		return 0; /* every test skips */
	snprintf(dir, sizeof(dir), "/tmp/bmaptk-fs-ext-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	/* Files of 0 to 600 KiB, some in a subdirectory, and many small. */
	return sh("cd %s && mkdir -p tree/sub && for i in $(seq 1 30); do "
		  "head -c $((i * 20000)) /dev/urandom > tree/f$i; done && "
		  "for i in $(seq 1 100); do echo $i > tree/sub/s$i; done",
		  dir)
		   ? -1
		   : 0;
}

static int teardown(void **state)
{
	(void)state;
	if (dir[0])
		sh("rm -rf %s", dir);
	return 0;
}

static void need_fixture(void)
{
	if (!dir[0])
		skip();
}

/* ---- tests ----------------------------------------------------------- */

static void test_ext4_half_deleted(void **state)
{
	const char *img = path_of("e4.img");

	(void)state;
	need_fixture();
	run("mk -t ext4 -b 4096 -d %s %s 128M", path_of("tree"), img);
	/* Every other file removed: holes all over the bitmaps. */
	run("cd %s && (for i in $(seq 1 2 30); do echo rm /f$i; done; "
	    "for i in $(seq 1 2 100); do echo rm /sub/s$i; done) > rm.cmd && "
	    "debugfs -w -f rm.cmd %s >/dev/null 2>&1",
	    dir, img);
	expect_exact(img, 0, 0);
	expect_blocks_mapped(img, "<8>", 4096); /* the journal */
	expect_blocks_mapped(img, "/f30", 4096);
}

static void test_ext2_1k_blocks(void **state)
{
	const char *img = path_of("e2.img");
	struct extent_set got = {0};
	char why[256];

	(void)state;
	need_fixture();
	run("mk -t ext2 -b 1024 -d %s %s 48M", path_of("tree"), img);
	expect_exact(img, 0, 0);
	/* Block 0, outside the bitmap, is mapped with the superblock. */
	assert_int_equal(map(img, 0, 0, &got, why, sizeof(why)), 0);
	assert_true(got.n > 0);
	assert_int_equal(got.v[0].off, 0);
	assert_true(got.v[0].len >= 2048);
	extent_set_free(&got);
}

static void test_ext3(void **state)
{
	const char *img = path_of("e3.img");

	(void)state;
	need_fixture();
	run("mk -t ext3 -d %s %s 64M", path_of("tree"), img);
	expect_exact(img, 0, 0);
}

static void test_at_an_offset(void **state)
{
	const char *img = path_of("off.img");

	(void)state;
	need_fixture();
	/* 64 MiB of ext4 at 1 MiB in a 100 MiB file, in an 80 MiB window. */
	run("rm -f %s && truncate -s 100M %s && "
	    "mk -t ext4 -E offset=1048576 -d %s %s 64M",
	    img, img, path_of("tree"), img);
	expect_exact(img, MiB, 80 * MiB);
	expect_refused(img, MiB, 63 * MiB,
		       "the filesystem (64.0 MiB) is larger than its "
		       "partition (63.0 MiB)");
	expect_refused(img, 0, 0, "bad superblock: ");
}

static void test_no_resize_inode_lazy_itable(void **state)
{
	const char *img = path_of("lazy.img");

	(void)state;
	need_fixture();
	run("mk -t ext4 -O ^resize_inode "
	    "-E lazy_itable_init=1 -d %s %s 256M",
	    path_of("tree"), img);
	expect_exact(img, 0, 0);
}

static void test_64bit_flex_bg_sparse(void **state)
{
	const char *img = path_of("big.img");

	(void)state;
	need_fixture();
	run("rm -f %s && truncate -s 4G %s && "
	    "mk -t ext4 -O 64bit,flex_bg -E lazy_itable_init=1 "
	    "-d %s %s",
	    img, img, path_of("tree"), img);
	expect_exact(img, 0, 0);
	run("rm -f %s", img);
}

static void test_bigalloc(void **state)
{
	const char *img = path_of("bigalloc.img");
	struct extent_set got = {0};
	struct fs_info fi;
	char why[256];

	(void)state;
	need_fixture();
	run("mk -t ext4 -O bigalloc -C 65536 -d %s %s 256M "
	    "2>/dev/null",
	    path_of("tree"), img);
	/* dumpe2fs lists free clusters by their first block: totals only. */
	assert_int_equal(map(img, 0, 0, &got, why, sizeof(why)), 0);
	read_dumpe2fs(img, 0, &fi);
	assert_int_equal(extent_total(&got), (fi.blocks - fi.free) * fi.bs);
	extent_set_free(&got);
	extent_set_free(&fi.used);
}

static void test_zeroed_superblock(void **state)
{
	const char *img = path_of("zero.img");

	(void)state;
	need_fixture();
	run("mk -t ext4 %s 32M && "
	    "dd if=/dev/zero of=%s bs=1024 seek=1 count=1 conv=notrunc "
	    "2>/dev/null",
	    img, img);
	expect_refused(img, 0, 0,
		       "bad superblock: Bad magic number in super-block");
	expect_refused(img, 0, 1000, "too small");
}

static void test_stale_bitmaps_refused(void **state)
{
	const char *img = path_of("stale.img");

	(void)state;
	need_fixture();
	run("mk -t ext4 -d %s %s 32M", path_of("tree"), img);
	run("debugfs -w -R 'feature needs_recovery' %s >/dev/null 2>&1", img);
	expect_refused(img, 0, 0, "its journal needs recovery");
	run("mk -t ext4 -O ^has_journal %s 32M && "
	    "debugfs -w -R 'ssv state 0' %s >/dev/null 2>&1",
	    img, img);
	expect_refused(img, 0, 0, "not cleanly unmounted");
	run("debugfs -w -R 'ssv state 3' %s >/dev/null 2>&1", img);
	expect_refused(img, 0, 0, "errors recorded");
}

static void test_bad_descriptors_refused(void **state)
{
	const char *img = path_of("gd.img");

	(void)state;
	need_fixture();
	run("mk -t ext4 -b 4096 %s 256M && "
	    "debugfs -w -R 'set_bg 1 block_bitmap 0' %s >/dev/null 2>&1",
	    img, img);
	expect_refused(img, 0, 0,
		       "bad group descriptors: group 1 has its block bitmap "
		       "at block 0");
	/* A block bitmap that fails its checksum (metadata_csum). */
	run("mk -t ext4 -b 4096 -O metadata_csum -d %s %s 256M && "
	    "printf '\\125' | dd of=%s bs=1 conv=notrunc 2>/dev/null "
	    "seek=$(($(dumpe2fs %s 2>/dev/null | "
	    "sed -n 's/^  Block bitmap at \\([0-9]*\\).*/\\1/p' | "
	    "head -1) * 4096 + 8))",
	    path_of("tree"), img, img, img);
	expect_refused(img, 0, 0,
		       "reading the block bitmaps: Block bitmap checksum "
		       "does not match bitmap");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ext4_half_deleted),
	    cmocka_unit_test(test_ext2_1k_blocks),
	    cmocka_unit_test(test_ext3),
	    cmocka_unit_test(test_at_an_offset),
	    cmocka_unit_test(test_no_resize_inode_lazy_itable),
	    cmocka_unit_test(test_64bit_flex_bg_sparse),
	    cmocka_unit_test(test_bigalloc),
	    cmocka_unit_test(test_zeroed_superblock),
	    cmocka_unit_test(test_stale_bitmaps_refused),
	    cmocka_unit_test(test_bad_descriptors_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
