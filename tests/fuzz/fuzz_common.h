/* Shared by the fuzz harnesses: an in-memory source module, a stream
 * drainer that checks the stream contract, and a few helpers. */
#ifndef BMAPTK_FUZZ_COMMON_H
#define BMAPTK_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <bmaptk/bmaptk.h>

/* The location the in-memory source claims. */
#define FUZZ_MEM_LOCATION "fuzzmem:input"

/* Decoded bytes (read or skipped) after which a drain stops, so that a
 * decompression bomb costs time proportional to this, not to its size. */
#define FUZZ_OUTPUT_CAP (16u << 20)

/* A broken promise of the library: report and abort, so libFuzzer keeps
 * the input as a crash. */
#define FUZZ_CHECK(cond, ...)                                                  \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
				"fuzz check failed: %s (%s:%d): ", #cond,      \
				__FILE__, __LINE__);                           \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			abort();                                               \
		}                                                              \
	} while (0)

/* FNV-1a: derives the run's choices from the input itself, so a file
 * replays exactly and stays a plain compressed file (a usable seed). */
uint64_t fuzz_hash(const uint8_t *data, size_t len);

/* How the in-memory source behaves for the next open. */
struct fuzz_mem_opts {
	unsigned read_mode; /* 0 whole requests, 1 one byte, 2 varying */
	int with_skip;	    /* provide the optional skip op */
	int known_size;	    /* report the size (else SIZE_UNKNOWN) */
	uint64_t fail_at;   /* fail a read at this offset; UINT64_MAX: never */
};

/* Choices for one input of len bytes, from its hash. */
void fuzz_mem_opts_from(uint64_t h, size_t len, struct fuzz_mem_opts *o);

/* The next open of FUZZ_MEM_LOCATION serves data[0, len) (not copied). */
void fuzz_mem_set(const uint8_t *data, size_t len,
		  const struct fuzz_mem_opts *o);

/* The source module itself (priority above the file source). */
extern const struct bmaptk_module fuzz_mem_source;

/* A registry with the built-in modules and fuzz_mem_source; aborts on
 * failure. */
struct bmaptk_registry *fuzz_registry(void);

/* A stream over data[0, len) as the mem source opens it. */
struct bmaptk_stream *fuzz_mem_stream(const uint8_t *data, size_t len,
				      const struct fuzz_mem_opts *o);

/* Read s to its end (or FUZZ_OUTPUT_CAP, or an error) the way the copy
 * engine does: reads of size chosen by h, holes skipped, some spans
 * skipped. Checks the stream contract; closes s. Returns 0 at the end, 1
 * at the cap, -1 on an error (err set). */
int fuzz_drain(struct bmaptk_stream *s, uint64_t h, struct bmaptk_error *err);

/* The error a failing call left must say something. */
void fuzz_check_error(const struct bmaptk_error *err, const char *what);

/* A bmap the parser accepted must keep the promises of BMAP-FORMAT.md
 * (ranges sorted, disjoint, inside BlocksCount, counts consistent) and
 * survive bmaptk_bmap_format() and a second parse unchanged. */
void fuzz_check_bmap(const struct bmaptk_bmap *b);

#endif
