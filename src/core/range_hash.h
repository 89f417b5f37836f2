/* Hashing the ranges of a bmap as they are stored in a file or device, on
 * several threads; shared by create (which records the digests) and check
 * (which compares them). */
#ifndef BMAPTK_RANGE_HASH_H
#define BMAPTK_RANGE_HASH_H

#include <bmaptk/bmaptk.h>

struct range_hash_opts {
	unsigned threads; /* 0: one per CPU */
	size_t chunk;	  /* bytes per read */
	unsigned align;	  /* reads rounded up to this (O_DIRECT), or 1 */
	const struct bmaptk_progress *progress;
	volatile sig_atomic_t *interrupted;
	/* Called once per range, serialised, with its digest. */
	void (*done)(void *ctx, size_t index, const unsigned char *digest);
	void *ctx;
};

/* Read every range of b from fd (named name in messages) and hash it. */
int hash_ranges(int fd, const char *name, const struct bmaptk_bmap *b,
		const struct range_hash_opts *opts, struct bmaptk_error *err);

#endif
