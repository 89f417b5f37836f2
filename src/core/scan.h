/* Building a bmap from a stream: holes are the gaps the stream skips
 * (Android sparse images) and, when asked, all-zero blocks. */
#ifndef BMAPTK_SCAN_H
#define BMAPTK_SCAN_H

#include <bmaptk/bmaptk.h>

int create_from_stream(struct bmaptk_stream *image,
		       const struct bmaptk_create_opts *opts,
		       struct bmaptk_bmap **out, struct bmaptk_error *err);

#endif
