/* Delta reflash: a board farm's card usually holds yesterday's image, and
 * a packed image or a raw one over HTTP can fetch any chunk on its own. So
 * DEST's ranges are hashed first and compared with the bmap's checksums;
 * only the ranges that differ are fetched, decoded and written. */
#include <stdlib.h>
#include <string.h>

#include "copy_dest.h"
#include "util.h"

struct differs {
	unsigned char *bad; /* one flag per range */
};

static void mark_bad(void *ctx, const struct bmaptk_bmap *b, size_t index,
		     const unsigned char *got)
{
	struct differs *d = ctx;

	(void)b, (void)got;
	d->bad[index] = 1;
}

struct bmaptk_bmap *delta_bmap(const struct bmaptk_bmap *b,
			       const struct dest *dests, size_t n,
			       uint64_t *compared, uint64_t *unchanged)
{
	struct differs diff = {calloc(b->nranges ? b->nranges : 1, 1)};
	/* From the medium: a stale page cache must not pass for it. */
	struct bmaptk_check_opts co = {.cached = 0,
				       .interrupted = &cli_interrupted,
				       .bad_range = mark_bad,
				       .ctx = &diff};
	struct bmaptk_bmap *sub = NULL;
	size_t *idx = NULL, nidx = 0, live = 0;
	uint64_t same = 0, total = 0;
	double t0 = cli_now();
	int ok = diff.bad != NULL;

	for (size_t i = 0; ok && i < n; i++) {
		struct bmaptk_check_stats st = {0};
		struct bmaptk_error err = {0};
		int rc;
		if (dests[i].status || dests[i].verify_only)
			continue;
		live++;
		rc = bmaptk_check(b, dests[i].path, &co, &st, &err);
		if (rc && rc != BMAPTK_ERR_VERIFY) {
			cli_debug("%s: not compared by checksums (%s); "
				  "comparing while writing instead",
				  dests[i].path, err.message);
			ok = 0;
		}
	}
	if (ok && live && (idx = malloc(b->nranges * sizeof(*idx) + 1))) {
		for (size_t i = 0; i < b->nranges; i++) {
			uint64_t off, len;
			bmaptk_range_span(b, &b->ranges[i], &off, &len);
			total += len;
			if (diff.bad[i])
				idx[nidx++] = i;
			else
				same += len;
		}
		sub = sub_bmap(b, idx, nidx);
	}
	if (sub) {
		char s[32], d[32];
		*compared = total;
		*unchanged = same;
		cli_info("%zu of %zu ranges (%s) already on %s; fetching the "
			 "other %zu (%s), compared in %.2f s",
			 b->nranges - nidx, b->nranges,
			 human_size(same, s, sizeof(s)),
			 live == 1 ? "DEST" : "every DEST", nidx,
			 human_size(total - same, d, sizeof(d)),
			 cli_now() - t0);
	}
	free(idx);
	free(diff.bad);
	return sub;
}
