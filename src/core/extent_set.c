#include <stdlib.h>

#include "fsmap.h"

int extent_add(struct extent_set *s, uint64_t off, uint64_t len)
{
	struct extent *last = s->n ? &s->v[s->n - 1] : NULL;

	if (len == 0)
		return 0;
	if (last && off == last->off + last->len) {
		last->len += len;
		return 0;
	}
	if (s->n == s->cap || !s->v) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct extent *grown = realloc(s->v, cap * sizeof(*grown));
		if (!grown)
			return -1;
		s->v = grown;
		s->cap = cap;
	}
	s->v[s->n++] = (struct extent){off, len};
	return 0;
}

static int by_offset(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

void extent_normalise(struct extent_set *s)
{
	size_t w = 0;

	if (s->n < 2)
		return;
	qsort(s->v, s->n, sizeof(s->v[0]), by_offset);
	for (size_t i = 1; i < s->n; i++) {
		struct extent *cur = &s->v[w];
		uint64_t end = cur->off + cur->len;
		if (s->v[i].off <= end) {
			uint64_t e2 = s->v[i].off + s->v[i].len;
			if (e2 > end)
				cur->len = e2 - cur->off;
		} else {
			s->v[++w] = s->v[i];
		}
	}
	s->n = w + 1;
}

uint64_t extent_total(struct extent_set *s)
{
	uint64_t total = 0;

	extent_normalise(s);
	for (size_t i = 0; i < s->n; i++)
		total += s->v[i].len;
	return total;
}

void extent_set_free(struct extent_set *s)
{
	free(s->v);
	*s = (struct extent_set){0};
}
