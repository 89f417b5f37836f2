/* The file and block-device sinks against real files and real loop devices:
 * sizes, sparseness, bytes read back, cleanup on failure, and every refusal
 * of a device (too small, not removable, mounted, claimed, held). Tests that
 * need root, losetup or a tool that is missing are skipped, saying why. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

#include <bmaptk/bmaptk.h>

#include "util.h"

#define MIB (1024 * 1024)

extern const struct bmaptk_module bmaptk_sink_file;
extern const struct bmaptk_module bmaptk_sink_blockdev;

static char tmpdir[256];

/* ---- helpers ----------------------------------------------------------------
 */

static const char *tmp_path(char *buf, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", tmpdir, name);
	return buf;
}

/* Deterministic, position-dependent bytes, so a misplaced write shows. */
static void fill(unsigned char *buf, size_t len, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (unsigned char)(x >> 16);
	}
}

static unsigned char *pattern(size_t len, unsigned seed)
{
	unsigned char *buf = aligned_buffer(len + BMAPTK_BUFFER_ALIGN);

	assert_non_null(buf);
	fill(buf, len, seed);
	return buf;
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(pwrite_full(fd, buf, len, 0), 0);
	assert_int_equal(close(fd), 0);
}

/* The whole file, which must be exactly len bytes. */
static unsigned char *read_file(const char *path, size_t len)
{
	unsigned char *buf = malloc(len + 1);
	int fd = open(path, O_RDONLY);

	assert_non_null(buf);
	assert_true(fd >= 0);
	assert_int_equal(pread_full(fd, buf, len + 1, 0), (ssize_t)len);
	close(fd);
	return buf;
}

static int bytes_zero(const unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			return 0;
	return 1;
}

struct piece {
	uint64_t off;
	size_t len;
	unsigned seed;
};

static void write_pieces(struct bmaptk_sink *s, const struct piece *p, size_t n)
{
	struct bmaptk_error err = {0};

	for (size_t i = 0; i < n; i++) {
		unsigned char *buf = pattern(p[i].len, p[i].seed);
		int rc = s->ops->pwrite(s, buf, p[i].len, p[i].off, &err);
		if (rc)
			print_error("pwrite: %s\n", err.message);
		assert_int_equal(rc, 0);
		free(buf);
	}
}

/* Each piece's bytes are where they belong in data. */
static void assert_pieces(const unsigned char *data, const struct piece *p,
			  size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char *want = pattern(p[i].len, p[i].seed);
		assert_memory_equal(data + p[i].off, want, p[i].len);
		free(want);
	}
}

static int in_pieces(uint64_t off, const struct piece *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (off >= p[i].off && off < p[i].off + p[i].len)
			return 1;
	return 0;
}

static struct bmaptk_sink *open_file_sink(const char *path, uint64_t size,
					  struct bmaptk_error *err)
{
	struct bmaptk_sink_opts opts = {.image_size = size};

	return bmaptk_sink_file.u.sink->open(path, &opts, err);
}

static void finish_ok(struct bmaptk_sink *s, uint64_t size)
{
	struct bmaptk_error err = {0};
	int rc = s->ops->finish(s, size, &err);

	if (rc)
		print_error("finish: %s\n", err.message);
	assert_int_equal(rc, 0);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* ---- file sink --------------------------------------------------------------
 */

static void test_file_new_is_exact_and_sparse(void **state)
{
	const uint64_t size = 16 * MIB + 1000;
	const struct piece p[] = {
	    {0, 65536, 1}, {8 * MIB, MIB, 2}, {16 * MIB, 1000, 3}};
	struct bmaptk_error err = {0};
	char path[PATH_MAX];
	struct bmaptk_sink *s;
	unsigned char *data;
	struct stat st;

	(void)state;
	tmp_path(path, "new.img");
	s = open_file_sink(path, size, &err);
	assert_non_null(s);
	assert_true(s->created);
	assert_false(s->is_blockdev);
	assert_string_equal(s->name, path);
	assert_int_equal(file_size(path), size); /* sized before any write */
	write_pieces(s, p, 3);
	finish_ok(s, size);
	s->ops->close(s, 0);

	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, size);
	assert_true((uint64_t)st.st_blocks * 512 <
		    65536 + MIB + 1000 + 256 * 1024);
	data = read_file(path, size);
	assert_pieces(data, p, 3);
	for (uint64_t off = 0; off < size; off += 4096)
		if (!in_pieces(off, p, 3))
			assert_true(
			    bytes_zero(data + off, MIN(4096, size - off)));
	free(data);
	unlink(path);
}

static void test_file_existing_is_cut_to_image(void **state)
{
	const uint64_t size = 4 * MIB + 123;
	const struct piece p[] = {{MIB, 65536, 4}, {4 * MIB, 123, 5}};
	unsigned char *old = pattern(2 * size, 99), *data;
	struct bmaptk_error err = {0};
	char path[PATH_MAX];
	unsigned char probe[4096];
	struct bmaptk_sink *s;

	(void)state;
	tmp_path(path, "existing.img");
	write_file(path, old, 2 * size);
	s = open_file_sink(path, size, &err);
	assert_non_null(s);
	assert_false(s->created);
	assert_int_equal(file_size(path), size);
	/* The old bytes are gone from the start, before any write. */
	assert_int_equal(s->ops->pread(s, probe, sizeof(probe), 0, &err), 0);
	assert_true(bytes_zero(probe, sizeof(probe)));
	write_pieces(s, p, 2);
	finish_ok(s, size);
	s->ops->close(s, 0);

	data = read_file(path, size);
	assert_pieces(data, p, 2);
	assert_true(bytes_zero(data, MIB));
	assert_true(bytes_zero(data + MIB + 65536, 3 * MIB - 65536));
	free(data);
	free(old);
	unlink(path);
}

static void test_file_failed_created_is_removed(void **state)
{
	const struct piece p[] = {{0, 8192, 6}};
	struct bmaptk_error err = {0};
	char path[PATH_MAX];
	struct bmaptk_sink *s;

	(void)state;
	tmp_path(path, "failed-new.img");
	s = open_file_sink(path, MIB, &err);
	assert_non_null(s);
	write_pieces(s, p, 1);
	assert_int_equal(s->ops->close(s, 1), 1);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_file_failed_existing_is_kept(void **state)
{
	unsigned char old[100];
	struct bmaptk_error err = {0};
	char path[PATH_MAX];
	struct bmaptk_sink *s;

	(void)state;
	fill(old, sizeof(old), 7);
	tmp_path(path, "failed-old.img");
	write_file(path, old, sizeof(old));
	s = open_file_sink(path, MIB, &err);
	assert_non_null(s);
	assert_false(s->created);
	assert_int_equal(s->ops->close(s, 1), 0);
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);
}

static void test_file_unknown_size_set_by_finish(void **state)
{
	const struct piece p[] = {{0, 4096, 8}, {MIB, 100, 9}};
	const uint64_t size = 3 * MIB; /* ends with a hole */
	unsigned char old[8192];
	struct bmaptk_error err = {0};
	char path[PATH_MAX];
	struct bmaptk_sink *s;
	unsigned char *data;
	struct stat st;

	(void)state;
	fill(old, sizeof(old), 10);
	tmp_path(path, "unknown.img");
	write_file(path, old, sizeof(old));
	s = open_file_sink(path, BMAPTK_SIZE_UNKNOWN, &err);
	assert_non_null(s);
	assert_int_equal(file_size(path), 0);
	write_pieces(s, p, 2);
	assert_int_equal(file_size(path), MIB + 100);
	finish_ok(s, size);
	s->ops->close(s, 0);

	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, size);
	assert_true((uint64_t)st.st_blocks * 512 < 256 * 1024);
	data = read_file(path, size);
	assert_pieces(data, p, 2);
	assert_true(bytes_zero(data + 4096, MIB - 4096));
	assert_true(bytes_zero(data + MIB + 100, size - MIB - 100));
	free(data);
	unlink(path);
}

static void test_file_missing_dir(void **state)
{
	struct bmaptk_error err = {0};
	char path[PATH_MAX], want[PATH_MAX + 64];

	(void)state;
	tmp_path(path, "no-such-dir/dest.img");
	assert_null(open_file_sink(path, MIB, &err));
	snprintf(want, sizeof(want),
		 "cannot create %s: No such file or directory", path);
	assert_string_equal(err.message, want);
	assert_int_equal(err.status, BMAPTK_ERR_IO);
	assert_int_equal(err.sys_errno, ENOENT);
}

static void test_file_directory_refused(void **state)
{
	struct bmaptk_sink_opts opts = {.image_size = MIB};
	struct bmaptk_error err = {0};
	struct bmaptk_registry *reg;
	char want[PATH_MAX + 64];

	(void)state;
	assert_null(open_file_sink(tmpdir, MIB, &err));
	snprintf(want, sizeof(want), "cannot open %s: Is a directory", tmpdir);
	assert_string_equal(err.message, want);
	/* Through the registry no sink even bids for a directory. */
	reg = bmaptk_registry_new();
	assert_non_null(reg);
	assert_null(bmaptk_open_sink(reg, tmpdir, NULL, &opts, &err));
	assert_non_null(strstr(err.message, tmpdir));
	bmaptk_registry_free(reg);
}

static void test_file_write_past_image_refused(void **state)
{
	unsigned char *buf = pattern(4096, 11), got[16];
	struct bmaptk_error err = {0};
	char path[PATH_MAX], want[3 * PATH_MAX];
	struct bmaptk_sink *s;

	(void)state;
	tmp_path(path, "past.img");
	s = open_file_sink(path, 8192, &err);
	assert_non_null(s);
	assert_int_equal(s->ops->pwrite(s, buf, 4096, 6144, &err),
			 BMAPTK_ERR_IO);
	snprintf(want, sizeof(want),
		 "%s: refusing to write 4096 bytes at offset 6144, past the "
		 "image size of 8192 bytes",
		 path);
	assert_string_equal(err.message, want);
	assert_int_equal(s->ops->pread(s, got, sizeof(got), 8190, &err),
			 BMAPTK_ERR_IO);
	snprintf(want, sizeof(want),
		 "%s: read error at offset 8192: unexpected end of file", path);
	assert_string_equal(err.message, want);
	s->ops->close(s, 1);
	assert_int_equal(access(path, F_OK), -1);
	free(buf);
}

static void test_probe_files(void **state)
{
	struct bmaptk_sink_opts opts = {.image_size = 4096};
	struct bmaptk_error err = {0};
	struct bmaptk_registry *reg = bmaptk_registry_new();
	char path[PATH_MAX];
	struct bmaptk_sink *s;

	(void)state;
	assert_non_null(reg);
	tmp_path(path, "probe.img");
	s = bmaptk_open_sink(reg, path, NULL, &opts,
			     &err); /* missing: created */
	assert_non_null(s);
	assert_false(s->is_blockdev);
	assert_true(s->created);
	finish_ok(s, 4096);
	s->ops->close(s, 0);
	s = bmaptk_open_sink(reg, path, NULL, &opts, &err); /* regular file */
	assert_non_null(s);
	assert_false(s->is_blockdev);
	assert_false(s->created);
	s->ops->close(s, 0);
	unlink(path);
	bmaptk_registry_free(reg);
}

/* ---- loop devices
 * ------------------------------------------------------------- */

struct loopdev {
	char backing[PATH_MAX];
	char dev[64];
	char mnt[PATH_MAX];
	char dm[64];
	int mounted, parts, fd;
};

static char cmd_output[4096];

/* Run a shell command; its output (both streams) lands in cmd_output. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[2 * PATH_MAX];
	size_t used = 0;
	va_list ap;
	FILE *p;
	int status;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 8, fmt, ap);
	va_end(ap);
	strcat(cmd, " 2>&1");
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (used < sizeof(cmd_output) - 1) {
		size_t n = fread(cmd_output + used, 1,
				 sizeof(cmd_output) - 1 - used, p);
		if (n == 0)
			break;
		used += n;
	}
	cmd_output[used] = '\0';
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int loop_setup(void **state)
{
	struct loopdev *ld = calloc(1, sizeof(*ld));

	assert_non_null(ld);
	ld->fd = -1;
	*state = ld;
	return 0;
}

static int loop_teardown(void **state)
{
	struct loopdev *ld = *state;

	if (ld->fd >= 0)
		close(ld->fd);
	if (ld->mounted && run("umount '%s'", ld->mnt))
		print_error("umount %s: %s", ld->mnt, cmd_output);
	if (ld->mnt[0])
		rmdir(ld->mnt);
	if (ld->dm[0] && run("dmsetup remove %s", ld->dm))
		print_error("dmsetup remove %s: %s", ld->dm, cmd_output);
	if (ld->parts && run("partx -d %s", ld->dev))
		print_error("partx -d %s: %s", ld->dev, cmd_output);
	if (ld->dev[0] && run("losetup -d %s", ld->dev))
		print_error("losetup -d %s: %s", ld->dev, cmd_output);
	if (ld->backing[0])
		unlink(ld->backing);
	free(ld);
	return 0;
}

/* A loop device over a backing file of size bytes filled with seed's
 * pattern, or skip the test saying why. */
static void loop_attach(struct loopdev *ld, size_t size, unsigned seed)
{
	static unsigned counter;
	unsigned char *content = pattern(size, seed);
	char name[64];

	if (geteuid() != 0) {
		print_message("skipped: loop devices need root\n");
		free(content);
		skip();
	}
	snprintf(name, sizeof(name), "loop%u.img", counter++);
	tmp_path(ld->backing, name);
	write_file(ld->backing, content, size);
	free(content);
	if (run("losetup -f --show %s", ld->backing) != 0 ||
	    strncmp(cmd_output, "/dev/", 5) != 0) {
		print_message("skipped: losetup failed: %s\n", cmd_output);
		skip();
	}
	cmd_output[strcspn(cmd_output, "\n")] = '\0';
	assert_true(strlen(cmd_output) < sizeof(ld->dev));
	memcpy(ld->dev, cmd_output, strlen(cmd_output) + 1);
}

static struct bmaptk_sink *open_dev(const char *dev, uint64_t size, int direct,
				    int removable, struct bmaptk_error *err)
{
	struct bmaptk_sink_opts opts = {.image_size = size,
					.allow_direct = direct,
					.removable_only = removable};

	return bmaptk_sink_blockdev.u.sink->open(dev, &opts, err);
}

/* How many of our descriptors on dev are open with O_DIRECT, from
 * /proc/self/fdinfo. */
static int direct_fds(const char *dev)
{
	char link[64], target[PATH_MAX], info[64], line[256];
	int count = 0;

	for (int fd = 0; fd < 1024; fd++) {
		ssize_t n;
		FILE *f;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, dev) != 0)
			continue;
		snprintf(info, sizeof(info), "/proc/self/fdinfo/%d", fd);
		f = fopen(info, "r");
		assert_non_null(f);
		while (fgets(line, sizeof(line), f)) {
			unsigned long flags;
			if (sscanf(line, "flags: %lo", &flags) == 1 &&
			    (flags & O_DIRECT))
				count++;
		}
		fclose(f);
	}
	return count;
}

static void blockdev_roundtrip(struct loopdev *ld, int direct)
{
	const size_t dev_size = 8 * MIB;
	const uint64_t size = 4 * MIB + 1000;
	const struct piece p[] = {
	    {0, MIB, 21}, {2 * MIB, 65536, 22}, {4 * MIB, 1000, 23}};
	struct bmaptk_sink_opts opts = {.image_size = size,
					.allow_direct = direct};
	struct bmaptk_registry *reg = bmaptk_registry_new();
	struct bmaptk_error err = {0};
	unsigned char *before = pattern(dev_size, 20), *after, *odd, *back;
	struct bmaptk_sink *s;

	assert_non_null(reg);
	loop_attach(ld, dev_size, 20);
	s = bmaptk_open_sink(reg, ld->dev, NULL, &opts, &err);
	if (!s)
		print_error("open: %s\n", err.message);
	assert_non_null(s);
	assert_true(s->is_blockdev);
	assert_false(s->created);
	assert_string_equal(s->name, ld->dev);
	assert_int_equal(direct_fds(ld->dev), direct);
	write_pieces(s, p, 3);
	/* A misaligned buffer must still land (through the buffered fd). */
	odd = pattern(8192 + 1, 24);
	assert_int_equal(s->ops->pwrite(s, odd + 1, 8192, 3 * MIB, &err), 0);

	back = aligned_buffer(MIB + 4096);
	assert_non_null(back);
	for (size_t i = 0; i < 3; i++) {
		unsigned char *want = pattern(p[i].len, p[i].seed);
		assert_int_equal(
		    s->ops->pread(s, back, p[i].len, p[i].off, &err), 0);
		assert_memory_equal(back, want, p[i].len);
		/* and misaligned, through the buffered fd */
		assert_int_equal(
		    s->ops->pread(s, back + 1, 100, p[i].off + 7, &err), 0);
		assert_memory_equal(back + 1, want + 7, 100);
		free(want);
	}
	finish_ok(s, size);
	s->ops->close(s, 0);

	/* The backing file: pieces written, everything else untouched (a
	 * device is never truncated), nothing past the image. */
	after = read_file(ld->backing, dev_size);
	assert_pieces(after, p, 3);
	assert_memory_equal(after + 3 * MIB, odd + 1, 8192);
	assert_memory_equal(after + MIB, before + MIB, MIB);
	assert_memory_equal(after + size, before + size, dev_size - size);
	free(after);
	free(back);
	free(odd);
	free(before);
	bmaptk_registry_free(reg);
}

static void test_blockdev_roundtrip_direct(void **state)
{
	blockdev_roundtrip(*state, 1);
}

static void test_blockdev_roundtrip_buffered(void **state)
{
	blockdev_roundtrip(*state, 0);
}

static void test_blockdev_too_small(void **state)
{
	struct loopdev *ld = *state;
	struct bmaptk_error err = {0};
	char want[256];

	loop_attach(ld, MIB, 30);
	assert_null(open_dev(ld->dev, MIB + 1, 1, 0, &err));
	snprintf(want, sizeof(want),
		 "%s is smaller than the image: 1048576 bytes, the image needs "
		 "1048577 bytes",
		 ld->dev);
	assert_string_equal(err.message, want);
	assert_int_equal(err.status, BMAPTK_ERR_USAGE);
}

static void test_blockdev_write_past_end(void **state)
{
	struct loopdev *ld = *state;
	struct bmaptk_error err = {0};
	unsigned char *buf = pattern(4096, 31);
	struct bmaptk_sink *s;
	char want[256];

	loop_attach(ld, MIB, 31);
	s = open_dev(ld->dev, BMAPTK_SIZE_UNKNOWN, 1, 0, &err);
	assert_non_null(s);
	assert_int_equal(s->ops->pwrite(s, buf, 4096, MIB, &err),
			 BMAPTK_ERR_IO);
	snprintf(want, sizeof(want),
		 "%s: write error at offset 1048576: No space left on device",
		 ld->dev);
	assert_string_equal(err.message, want);
	s->ops->close(s, 1);
	assert_int_equal(access(ld->dev, F_OK), 0);
	free(buf);
}

static void test_blockdev_not_removable(void **state)
{
	struct loopdev *ld = *state;
	struct bmaptk_error err = {0};
	struct bmaptk_sink *s;
	char want[256];

	loop_attach(ld, MIB, 32);
	assert_null(open_dev(ld->dev, MIB, 1, 1, &err));
	snprintf(want, sizeof(want), "%s is not a removable block device",
		 ld->dev);
	assert_string_equal(err.message, want);
	assert_int_equal(err.status, BMAPTK_ERR_USAGE);
	s = open_dev(ld->dev, MIB, 1, 0, &err); /* fine without the option */
	assert_non_null(s);
	s->ops->close(s, 0);
}

/* Mount point with a space: mountinfo escapes it, the message must not. */
static void mount_on(struct loopdev *ld, const char *part)
{
	tmp_path(ld->mnt, "mnt point");
	assert_int_equal(mkdir(ld->mnt, 0755), 0);
	if (run("mkfs.ext4 -q -F %s", part) != 0) {
		print_message("skipped: mkfs.ext4 failed: %s\n", cmd_output);
		skip();
	}
	if (run("mount %s '%s'", part, ld->mnt) != 0) {
		print_message("skipped: mount failed: %s\n", cmd_output);
		skip();
	}
	ld->mounted = 1;
}

static void test_blockdev_mounted(void **state)
{
	struct loopdev *ld = *state;
	struct bmaptk_error err = {0};
	char want[3 * PATH_MAX];

	loop_attach(ld, 8 * MIB, 0);
	mount_on(ld, ld->dev);
	assert_null(open_dev(ld->dev, MIB, 1, 0, &err));
	snprintf(want, sizeof(want),
		 "%s is mounted (%s on %s); unmount it first", ld->dev, ld->dev,
		 ld->mnt);
	assert_string_equal(err.message, want);
	assert_int_equal(err.status, BMAPTK_ERR_USAGE);
}

static void test_blockdev_partition_mounted(void **state)
{
	struct loopdev *ld = *state;
	struct bmaptk_error err = {0};
	char part[80], want[3 * PATH_MAX];

	loop_attach(ld, 16 * MIB, 0);
	if (run("printf 'label: gpt\\nstart=2048, size=16384\\n' | sfdisk -q "
		"%s",
		ld->dev) != 0 ||
	    run("partx -a %s", ld->dev) != 0) {
		print_message("skipped: cannot partition: %s\n", cmd_output);
		skip();
	}
	ld->parts = 1;
	snprintf(part, sizeof(part), "%sp1", ld->dev);
	mount_on(ld, part);
	assert_null(open_dev(ld->dev, MIB, 1, 0, &err));
	snprintf(want, sizeof(want),
		 "%s is mounted (%s on %s); unmount it first", ld->dev, part,
		 ld->mnt);
	assert_string_equal(err.message, want);
}

static void test_blockdev_claimed(void **state)
{
	struct loopdev *ld = *state;
	struct bmaptk_error err = {0};
	char want[256];

	loop_attach(ld, MIB, 33);
	ld->fd = open(ld->dev, O_RDONLY | O_EXCL);
	assert_true(ld->fd >= 0);
	assert_null(open_dev(ld->dev, MIB, 1, 0, &err));
	snprintf(want, sizeof(want),
		 "%s: device is in use (mounted or claimed by another program)",
		 ld->dev);
	assert_string_equal(err.message, want);
	assert_int_equal(err.status, BMAPTK_ERR_USAGE);
}

static void test_blockdev_held_by_dm(void **state)
{
	struct loopdev *ld = *state;
	struct bmaptk_error err = {0};

	loop_attach(ld, MIB, 34);
	snprintf(ld->dm, sizeof(ld->dm), "bmaptk-test-%d", (int)getpid());
	if (run("dmsetup create %s --table '0 2048 linear %s 0'", ld->dm,
		ld->dev) != 0) {
		print_message("skipped: no device-mapper: %s\n", cmd_output);
		ld->dm[0] = '\0';
		skip();
	}
	assert_null(open_dev(ld->dev, MIB, 1, 0, &err));
	assert_non_null(strstr(err.message, " is in use by dm-"));
	assert_non_null(strstr(err.message, ld->dm));
	assert_int_equal(strncmp(err.message, ld->dev, strlen(ld->dev)), 0);
}

/* ---- main
 * ----------------------------------------------------------------------- */

static int group_setup(void **state)
{
	const char *base = getenv("TMPDIR");

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/bmaptk-sinks-XXXXXX",
		 base && *base ? base : "/tmp");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return run("rm -rf '%s'", tmpdir);
}

#define LOOP_TEST(fn)                                                          \
	cmocka_unit_test_setup_teardown(fn, loop_setup, loop_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_file_new_is_exact_and_sparse),
	    cmocka_unit_test(test_file_existing_is_cut_to_image),
	    cmocka_unit_test(test_file_failed_created_is_removed),
	    cmocka_unit_test(test_file_failed_existing_is_kept),
	    cmocka_unit_test(test_file_unknown_size_set_by_finish),
	    cmocka_unit_test(test_file_missing_dir),
	    cmocka_unit_test(test_file_directory_refused),
	    cmocka_unit_test(test_file_write_past_image_refused),
	    cmocka_unit_test(test_probe_files),
	    LOOP_TEST(test_blockdev_roundtrip_direct),
	    LOOP_TEST(test_blockdev_roundtrip_buffered),
	    LOOP_TEST(test_blockdev_too_small),
	    LOOP_TEST(test_blockdev_write_past_end),
	    LOOP_TEST(test_blockdev_not_removable),
	    LOOP_TEST(test_blockdev_mounted),
	    LOOP_TEST(test_blockdev_partition_mounted),
	    LOOP_TEST(test_blockdev_claimed),
	    LOOP_TEST(test_blockdev_held_by_dm),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
