/* Helpers shared by the built-in sinks: I/O on a descriptor with messages
 * that name the destination, the offset and the cause. */
#ifndef BMAPTK_SINK_UTIL_H
#define BMAPTK_SINK_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <bmaptk/module.h>

/* Refuse a write that would end past the image (a host bug must not
 * clobber what follows the image on a device). */
int sink_check_range(const char *name, uint64_t image_size, size_t len,
		     uint64_t off, struct bmaptk_error *err);

/* Write or read exactly len bytes at off; a short read is an error. */
int sink_pwrite_fd(int fd, const char *name, const void *buf, size_t len,
		   uint64_t off, struct bmaptk_error *err);
int sink_pread_fd(int fd, const char *name, void *buf, size_t len, uint64_t off,
		  struct bmaptk_error *err);

/* Make [off, off+len) of a regular file a hole (reads as zeros). */
int sink_punch_hole(int fd, const char *name, uint64_t off, uint64_t len,
		    struct bmaptk_error *err);

/* opts->refuse_fd on fd, if the host gave one: 0 or a status. */
int sink_refuse_fd(const struct bmaptk_sink_opts *opts, int fd,
		   const char *path, struct bmaptk_error *err);

/* fsync with a named error. */
int sink_fsync(int fd, const char *name, struct bmaptk_error *err);

#endif
