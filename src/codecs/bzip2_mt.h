/* Parallel bzip2 decoder behind the bzip2 codec module. */
#ifndef BMAPTK_BZIP2_MT_H
#define BMAPTK_BZIP2_MT_H

#include <bmaptk/module.h>

/* Decode inner (taken, also on failure) on nworkers threads. */
struct bmaptk_stream *bzip2_mt_open(struct bmaptk_stream *inner,
				    unsigned nworkers,
				    struct bmaptk_error *err);

/* Tests only: nonzero splits blocks at false boundaries. */
extern int bzip2_mt_test_false_splits;

/* Shared wording, so both decoders report the same way. */
#define BZIP2_CORRUPT_FMT "%s: corrupt bzip2 data near compressed offset %llu"
#define BZIP2_TRUNCATED_FMT                                                    \
	"%s: truncated bzip2 data: the input ends at compressed offset %llu"

#endif
