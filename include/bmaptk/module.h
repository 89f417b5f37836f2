/* bmaptk module ABI: everything a source, codec or sink module needs.
 *
 * A module is a const struct bmaptk_module. Built-in modules are listed in
 * src/core/builtin.c; a plugin is a shared object exporting one function,
 * BMAPTK_PLUGIN_ENTRY, that returns a NULL-terminated array of modules for the
 * host's ABI version (or NULL if it cannot serve that version).
 *
 * Ownership: whoever opens a stream or sink closes it; a codec's open takes
 * ownership of its inner stream, also when it fails. Errors cross the ABI as
 * a status plus a message written into the caller's struct bmaptk_error.
 *
 * Threads: one stream or sink object is used by one thread at a time; distinct
 * objects may be used concurrently. Modules may start threads of their own but
 * must join them in close.
 */
#ifndef BMAPTK_MODULE_H
#define BMAPTK_MODULE_H

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a struct below changes incompatibly. */
#define BMAPTK_ABI_VERSION 1

/* Status codes double as the command-line exit codes. */
enum bmaptk_status {
	BMAPTK_OK = 0,
	BMAPTK_ERR_VERIFY = 1, /* data or signature does not verify */
	BMAPTK_ERR_USAGE = 2,  /* bad arguments or bad input files */
	BMAPTK_ERR_IO = 3,     /* I/O, network or resource failure */
	BMAPTK_ERR_INTERRUPTED = 130,
};

#define BMAPTK_ERROR_MAX 1024

struct bmaptk_error {
	int status;
	int sys_errno; /* errno behind the failure, 0 if none */
	char message[BMAPTK_ERROR_MAX];
};

/* Record an error and return its status, so a module can write
 * `return bmaptk_set_error(err, BMAPTK_ERR_IO, "%s: ...", name);`.
 * Inline so plugins need no symbol from the host. */
static inline int bmaptk_set_error(struct bmaptk_error *err, int status,
				   int sys_errno, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int bmaptk_set_error(struct bmaptk_error *err, int status,
				   int sys_errno, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		err->status = status;
		err->sys_errno = sys_errno;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return status;
}

/* ---- streams: what sources and codecs produce ---------------------------- */

struct bmaptk_stream;

struct bmaptk_stream_ops {
	/* Read up to len bytes. Returns the count (> 0), 0 at the end of the
	 * stream, or -1 with err set. Short reads are allowed. */
	ssize_t (*read)(struct bmaptk_stream *s, void *buf, size_t len,
			struct bmaptk_error *err);
	/* Optional: move n bytes forward without returning them (a file seeks,
	 * an HTTP source starts a new range). NULL: the host reads and drops.
	 * Skipping past the end is an error. Returns 0 or a status. */
	int (*skip)(struct bmaptk_stream *s, uint64_t n,
		    struct bmaptk_error *err);
	/* Release everything, including an inner stream. */
	void (*close)(struct bmaptk_stream *s);
	/* Optional: how many bytes from the current position are a hole
	 * (bytes the format says hold nothing, such as an Android sparse
	 * image's DONT_CARE chunks), 0 when data comes next. Nothing is
	 * consumed; the host skips the hole. */
	uint64_t (*hole)(struct bmaptk_stream *s);
};

/* Modules embed this as the first member of their private state. */
struct bmaptk_stream {
	const struct bmaptk_stream_ops *ops;
	const char *name;   /* for messages; outlives the stream */
	uint64_t size;	    /* total bytes if known, else BMAPTK_SIZE_UNKNOWN */
	const char *format; /* codec chain for messages, e.g. "zstd" or "raw" */
};

#define BMAPTK_SIZE_UNKNOWN UINT64_MAX

/* ---- sinks: where image bytes go --------------------------------------- */

struct bmaptk_sink;

struct bmaptk_sink_ops {
	/* Write exactly len bytes at off (the module loops over short writes).
	 * buf is aligned to BMAPTK_BUFFER_ALIGN; off and len are multiples of
	 * it except at the image's end. Returns 0 or a status. */
	int (*pwrite)(struct bmaptk_sink *s, const void *buf, size_t len,
		      uint64_t off, struct bmaptk_error *err);
	/* Optional: read back len bytes at off (check, skip-unchanged). */
	int (*pread)(struct bmaptk_sink *s, void *buf, size_t len, uint64_t off,
		     struct bmaptk_error *err);
	/* Optional: tell the medium that [off, off+len) holds nothing
	 * (BLKDISCARD; a file punches a hole). What it reads afterwards is
	 * the device's business (zeros for files). */
	int (*discard)(struct bmaptk_sink *s, uint64_t off, uint64_t len,
		       struct bmaptk_error *err);
	/* Optional: make [off, off+len) read as zeros, as cheaply as the
	 * medium allows (BLKZEROOUT; a file punches a hole). */
	int (*zeroout)(struct bmaptk_sink *s, uint64_t off, uint64_t len,
		       struct bmaptk_error *err);
	/* Make everything written durable and, for a regular file, set its
	 * final size. image_size is the number of image bytes. */
	int (*finish)(struct bmaptk_sink *s, uint64_t image_size,
		      struct bmaptk_error *err);
	/* Release. failed != 0: the copy did not complete; a sink that created
	 * its target removes it. Returns 1 when it removed a file, -1 when it
	 * could not, else 0. */
	int (*close)(struct bmaptk_sink *s, int failed);
};

struct bmaptk_sink {
	const struct bmaptk_sink_ops *ops;
	const char *name; /* the destination path; outlives the sink */
	int is_blockdev;
	int created; /* the sink created this file */
};

#define BMAPTK_BUFFER_ALIGN 4096

struct bmaptk_sink_opts {
	uint64_t image_size; /* BMAPTK_SIZE_UNKNOWN when streaming w/o bmap */
	int removable_only;  /* --removable-device */
	int allow_direct;    /* may use O_DIRECT */
	int keep_data;	     /* an existing file keeps its bytes (for
				comparing); the host clears the holes */
	/* Optional: a sink calls this with its opened descriptor before it
	 * changes anything; non-zero (a status, with err set) refuses the
	 * destination, which the host found to be one of its inputs (the
	 * name may have been swapped since it was checked). Added at the
	 * end, so older plugins, which never call it, still load. */
	int (*refuse_fd)(void *ctx, int fd, const char *path,
			 struct bmaptk_error *err);
	void *refuse_ctx;
};

/* ---- modules --------------------------------------------------------------
 */

enum bmaptk_module_kind {
	BMAPTK_MODULE_SOURCE = 1,
	BMAPTK_MODULE_CODEC = 2,
	BMAPTK_MODULE_SINK = 3,
};

struct bmaptk_source_opts {
	const char *cacert;
	int insecure;
	int retries;	 /* retries in a row without progress */
	int timeout_sec; /* a stall; no new byte for twice this ends it */
	/* A later addition, so it stays last: when *interrupted becomes
	 * non-zero (SIGINT, SIGTERM), every wait of the source ends within
	 * 2 s with BMAPTK_ERR_INTERRUPTED. NULL: never interrupted. */
	const volatile sig_atomic_t *interrupted;
};

struct bmaptk_source_module {
	/* Bid for a location ("-", a path, a URL): 0 = not mine, higher wins.
	 */
	int (*probe)(const char *location);
	/* Open the location as a stream. A missing file is an error with
	 * sys_errno == ENOENT, so callers can try the next candidate. */
	struct bmaptk_stream *(*open)(const char *location,
				      const struct bmaptk_source_opts *opts,
				      struct bmaptk_error *err);
};

/* Codec flags. */
#define BMAPTK_CODEC_CONTAINER 1 /* output is probed again (tar, zip) */
/* Output is the image itself, never probed again (a packed image, whose
 * first read would start decoding before the copy could plan it). */
#define BMAPTK_CODEC_FINAL 2

struct bmaptk_codec_module {
	/* Bid on the first bytes of a stream: 0 = not mine, else the number of
	 * bits of magic verified. head_len may be short for tiny inputs. */
	int (*probe)(const unsigned char *head, size_t head_len);
	/* Wrap inner, taking ownership of it (also on failure). */
	struct bmaptk_stream *(*open)(struct bmaptk_stream *inner,
				      struct bmaptk_error *err);
	unsigned flags;
	/* Optional short name of the format for messages ("gzip"). */
	const char *format;
};

struct bmaptk_sink_module {
	/* Bid for a destination; st is NULL when the path does not exist. */
	int (*probe)(const char *path, const struct stat *st);
	struct bmaptk_sink *(*open)(const char *path,
				    const struct bmaptk_sink_opts *opts,
				    struct bmaptk_error *err);
};

struct bmaptk_module {
	int abi_version; /* BMAPTK_ABI_VERSION the module was built for */
	enum bmaptk_module_kind kind;
	const char *name;
	const char *description; /* one line */
	const char *version;
	int priority; /* among modules that bid, the higher priority wins */
	union {
		const struct bmaptk_source_module *source;
		const struct bmaptk_codec_module *codec;
		const struct bmaptk_sink_module *sink;
	} u;
};

/* The one symbol a plugin exports. host_abi is the host's
 * BMAPTK_ABI_VERSION; return NULL if the plugin cannot serve it. */
#define BMAPTK_PLUGIN_ENTRY	 bmaptk_plugin_modules
#define BMAPTK_PLUGIN_ENTRY_NAME "bmaptk_plugin_modules"
typedef const struct bmaptk_module *const *(*bmaptk_plugin_entry_fn)(
    int host_abi);

#ifdef __cplusplus
}
#endif

#endif
