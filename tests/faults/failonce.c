/* LD_PRELOAD shim for tests/e2e/faults_stages.sh: fails one write-path
 * call, once, on a destination, so the test can check that every stage of
 * writing either lands all its bytes or makes the copy fail.
 *
 *   FAILONCE_STAGE  direct    the first pwrite on an O_DIRECT descriptor
 *                   buffered  the first pwrite on a buffered one
 *                   short     the first pwrite writes half and returns it
 *                   fsync     the first fsync/fdatasync
 *                   slowpread every pread sleeps FAILONCE_DELAY_MS (default
 *                             50) first: a slow read-back
 *   FAILONCE_KIND   blk (default) or reg: which kind of file is targeted
 *   FAILONCE_ERRNO  the error number (default EIO)
 *
 * When the fault fires, "fired" is appended to $FAILONCE_LOG if set, so a
 * test knows the stage was reached. */
#undef _FILE_OFFSET_BITS /* define pwrite and pwrite64 both */
#undef _FORTIFY_SOURCE	 /* and pread, which fortify wraps */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fired;

static int targeted(int fd)
{
	const char *kind = getenv("FAILONCE_KIND");
	struct stat st;

	if (fired || fstat(fd, &st))
		return 0;
	return kind && !strcmp(kind, "reg") ? S_ISREG(st.st_mode)
					    : S_ISBLK(st.st_mode);
}

static int stage_is(const char *name)
{
	const char *s = getenv("FAILONCE_STAGE");

	return s && !strcmp(s, name);
}

static void fire(void)
{
	const char *log = getenv("FAILONCE_LOG");
	const char *e = getenv("FAILONCE_ERRNO");
	int fd;

	fired = 1;
	if (log && (fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644)) >= 0) {
		(void)!write(fd, "fired\n", 6);
		close(fd);
	}
	errno = e ? atoi(e) : EIO;
}

static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pread)(int, void *, size_t, off_t);

static ssize_t do_pread(int fd, void *buf, size_t len, off_t off)
{
	struct stat st;

	if (!real_pread)
		real_pread = dlsym(RTLD_NEXT, "pread64");
	if (stage_is("slowpread") && !fstat(fd, &st) && S_ISREG(st.st_mode)) {
		const char *ms = getenv("FAILONCE_DELAY_MS");
		usleep((useconds_t)(ms ? atoi(ms) : 50) * 1000);
	}
	return real_pread(fd, buf, len, off);
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
	return do_pread(fd, buf, len, off);
}

ssize_t pread64(int fd, void *buf, size_t len, off_t off)
{
	return do_pread(fd, buf, len, off);
}
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

static ssize_t do_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	int direct;

	if (!real_pwrite)
		real_pwrite = dlsym(RTLD_NEXT, "pwrite64");
	if (targeted(fd)) {
		direct = (fcntl(fd, F_GETFL) & O_DIRECT) != 0;
		if ((stage_is("direct") && direct) ||
		    (stage_is("buffered") && !direct)) {
			fire();
			return -1;
		}
		if (stage_is("short") && len > 1) {
			fire();
			errno = 0;
			/* Half of it, kept aligned for O_DIRECT. */
			return real_pwrite(
			    fd, buf,
			    direct ? (len / 2) & ~(size_t)4095 : len / 2, off);
		}
	}
	return real_pwrite(fd, buf, len, off);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return do_pwrite(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	return do_pwrite(fd, buf, len, off);
}

int fsync(int fd)
{
	if (!real_fsync)
		real_fsync = dlsym(RTLD_NEXT, "fsync");
	if (stage_is("fsync") && targeted(fd)) {
		fire();
		return -1;
	}
	return real_fsync(fd);
}

int fdatasync(int fd)
{
	if (!real_fdatasync)
		real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
	if (stage_is("fsync") && targeted(fd)) {
		fire();
		return -1;
	}
	return real_fdatasync(fd);
}
