/* The archive plugin's lzop decoder (lzop.c), on liblzo2: libarchive reads
 * lzop only by running the lzop program when it was built without liblzo2
 * (as on Debian), and the plugin never lets it run a program. */
#ifndef BMAPTK_ARCHIVE_LZOP_H
#define BMAPTK_ARCHIVE_LZOP_H

#include <stddef.h>

#include <bmaptk/module.h>

/* Open an lzop stream on inner (taken, also on failure), whose first
 * head_len bytes were already read into head (they start with the lzop
 * magic). Reads and checks the first member's header. */
struct bmaptk_stream *lzop_open(struct bmaptk_stream *inner,
				const unsigned char *head, size_t head_len,
				struct bmaptk_error *err);

#endif
