/* One destination of a copy: opened, prepared, written (by the shared
 * pipeline), finished, read back and rewritten, reported. */
#ifndef BMAPTK_COPY_DEST_H
#define BMAPTK_COPY_DEST_H

#include "cmd.h"

struct copy_args {
	const char *bmap;
	int nobmap;
	int no_verify;
	const char *psplash_pipe;
	int removable;
	int check;
	int skip_unchanged;
	int discard;
	int zero_holes;
	int force;
	int rewrite_tries;
	const char *to;		/* --to: a sink module's name, NULL for auto */
	char *shown_image;	/* IMAGE for messages, without a URL password */
	uint64_t lose_write_at; /* BMAPTK_TEST_LOSE_WRITE */
	int lose_write_always;
};

struct dest {
	const char *path;
	struct bmaptk_sink *sink;
	int status; /* 0 while it is fine */
	struct bmaptk_sink_result result;
	size_t rewritten;  /* ranges rewritten after a bad read-back */
	int touched;	   /* anything was written to it */
	const char *check; /* "ok", "bad", or NULL when not checked */
	int verify_only;   /* /dev/null: verified, nothing written */
};

/* Refuse a DEST that cannot be right before anything is opened. */
int dest_precheck(const struct copy_args *a, const char *path);

/* Open the sink and clear the holes the options ask to clear. */
void dest_open(struct dest *d, const struct copy_args *a,
	       const struct bmaptk_bmap *bmap, uint64_t image_size);

/* Mark d failed with err's message (printed once). */
void dest_fail(struct dest *d, const struct bmaptk_error *err);

/* --check, and rewrite of the ranges that did not read back right. */
void dest_check(struct dest *d, const struct copy_args *a,
		const struct bmaptk_bmap *bmap, const char *image);

/* A bmap holding only the listed ranges of b (free with bmaptk_bmap_free),
 * or NULL when out of memory. */
struct bmaptk_bmap *sub_bmap(const struct bmaptk_bmap *b, const size_t *idx,
			     size_t n);

/* --skip-unchanged by checksums (copy_delta.c): the ranges of b that some
 * live DEST does not already hold, read back and hashed before anything is
 * fetched, so that only those are fetched, decoded and written; *compared
 * and *unchanged say how many bytes each DEST had read and kept. NULL (and
 * a debug line) when a DEST cannot be read back as a whole: the copy then
 * compares as it writes. */
struct bmaptk_bmap *delta_bmap(const struct bmaptk_bmap *b,
			       const struct dest *dests, size_t n,
			       uint64_t *compared, uint64_t *unchanged);

/* Close, say what was left behind, and report the result. */
void dest_close(struct dest *d);

#endif
