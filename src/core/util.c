#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

int read_whole_file(const char *path, size_t max, char **data, size_t *len,
		    struct bmaptk_error *err)
{
	size_t cap = 65536, used = 0;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, errno, "%s: %s",
					path, strerror(errno));
	for (;;) {
		ssize_t n;
		if (!buf || used == cap) {
			char *grown;
			if (buf)
				cap *= 2;
			grown = realloc(buf, cap + 1);
			if (!grown) {
				free(buf);
				close(fd);
				return bmaptk_set_error(
				    err, BMAPTK_ERR_IO, ENOMEM,
				    "%s: out of memory", path);
			}
			buf = grown;
		}
		n = read(fd, buf + used, cap - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			close(fd);
			return bmaptk_set_error(err, BMAPTK_ERR_IO, e, "%s: %s",
						path, strerror(e));
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > max) {
			free(buf);
			close(fd);
			return bmaptk_set_error(err, BMAPTK_ERR_USAGE, EFBIG,
						"%s: larger than %zu bytes",
						path, max);
		}
	}
	close(fd);
	buf[used] = '\0';
	*data = buf;
	*len = used;
	return 0;
}

ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
				   (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = ENOSPC;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

ssize_t stream_read_full(struct bmaptk_stream *s, void *buf, size_t len,
			 struct bmaptk_error *err)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n =
		    s->ops->read(s, (char *)buf + done, len - done, err);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int stream_skip(struct bmaptk_stream *s, uint64_t n, struct bmaptk_error *err)
{
	const size_t cap = 1 << 20;
	char *scratch;
	ssize_t got;
	int rc = 0;

	if (s->ops->skip)
		return s->ops->skip(s, n, err);
	if (n == 0)
		return 0;
	scratch = malloc(cap);
	if (!scratch)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory", s->name);
	while (n > 0 && !rc) {
		got = s->ops->read(s, scratch, n < cap ? n : cap, err);
		if (got < 0)
			rc = err->status;
		else if (got == 0)
			rc = bmaptk_set_error(
			    err, BMAPTK_ERR_USAGE, 0,
			    "%s: the image ends before the bmap says it does",
			    s->name);
		else
			n -= (uint64_t)got;
	}
	free(scratch);
	return rc;
}

void *large_buffer(size_t len)
{
	const size_t huge = 2u << 20;
	void *p = NULL;

	if (len < huge || len % huge)
		return aligned_buffer(len);
	if (posix_memalign(&p, huge, len))
		return NULL;
	/* Before the first touch: a few 2 MiB faults instead of thousands of
	 * 4 KiB ones (measurable against a decoder that runs 0.3 s). */
	(void)madvise(p, len, MADV_HUGEPAGE);
	return p;
}

void *aligned_buffer(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, BMAPTK_BUFFER_ALIGN, len))
		return NULL;
	return p;
}

const char *human_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *units[] = {"bytes", "KiB", "MiB",
				      "GiB",   "TiB", "PiB"};
	double v = (double)bytes;
	unsigned u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu bytes", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

/* Words, not bytes: the scan must run at memory speed. */
int all_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	const uint64_t *w = buf;
	size_t i = 0;

	for (; i + 8 <= len / 8; i += 8)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] |
		    w[i + 5] | w[i + 6] | w[i + 7])
			return 0;
	for (size_t b = i * 8; b < len; b++)
		if (p[b])
			return 0;
	return 1;
}
