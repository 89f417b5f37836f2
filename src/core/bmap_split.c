/* Ranges split on a grid, so that each lies inside one chunk of it and has
 * its own digest: what a packed image and a delta reflash need. */
#include <stdlib.h>
#include <string.h>

#include <bmaptk/bmaptk.h>

#include "util.h"

int bmaptk_bmap_split(struct bmaptk_bmap *b, uint64_t grid)
{
	uint64_t per, n = 0;
	struct bmaptk_range *v;
	size_t k = 0;

	if (!grid || grid % b->block_size)
		return -1;
	per = grid / b->block_size; /* blocks per chunk */
	for (size_t i = 0; i < b->nranges; i++)
		n += b->ranges[i].last / per - b->ranges[i].first / per + 1;
	if (n == b->nranges)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		return -1;
	for (size_t i = 0; i < b->nranges; i++) {
		const struct bmaptk_range *r = &b->ranges[i];
		int whole = r->first / per == r->last / per;
		for (uint64_t first = r->first; first <= r->last; k++) {
			uint64_t end = (first / per + 1) * per - 1;
			v[k].first = first;
			v[k].last = MIN(end, r->last);
			/* A range left whole keeps its digest. */
			if (whole)
				memcpy(v[k].digest, r->digest,
				       sizeof(v[k].digest));
			first = v[k].last + 1;
		}
	}
	free(b->ranges);
	b->ranges = v;
	b->nranges = (size_t)n;
	return 1;
}
