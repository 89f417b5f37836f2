/* Small helpers shared by the core and the built-in modules. */
#ifndef BMAPTK_UTIL_H
#define BMAPTK_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <bmaptk/module.h>

static inline int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A line for bmaptk_set_debug's listener, if any. */
void bmaptk_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int bmaptk_debugging(void);
/* A warning for bmaptk_set_warn's listener (stderr without one). */
void bmaptk_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Read a whole regular file of at most max bytes into a malloc'd,
 * NUL-terminated buffer. */
int read_whole_file(const char *path, size_t max, char **data, size_t *len,
		    struct bmaptk_error *err);

/* pread/pwrite that loop over short transfers and EINTR. pread_full stops
 * early only at the end of the file; returns bytes read or -1. */
ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off);
int pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* Read from a stream until len bytes or its end; returns the count or -1. */
ssize_t stream_read_full(struct bmaptk_stream *s, void *buf, size_t len,
			 struct bmaptk_error *err);
/* Skip n bytes: the stream's own skip, else read and drop. */
int stream_skip(struct bmaptk_stream *s, uint64_t n, struct bmaptk_error *err);

/* Memory aligned for O_DIRECT; free with free(). */
void *aligned_buffer(size_t len);
/* The same for big long-lived buffers: backed by huge pages where the
 * kernel allows (len a multiple of 2 MiB). Free with free(). */
void *large_buffer(size_t len);

/* Human-readable size ("1.5 GiB") into buf. */
const char *human_size(uint64_t bytes, char *buf, size_t len);

unsigned online_cpus(void);

/* Whether len bytes at buf (8-byte aligned) are all zero. */
int all_zero(const void *buf, size_t len);

#endif
