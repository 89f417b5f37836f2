/* The reader of packed images (docs/pack.md), for the CLI: what the bmap
 * frame carried, and which chunks the copy will read.
 *
 * The stream bmaptk_open_image returns for a packed image is a pack
 * stream (pack_stream_is). Its bmap and signature are in memory from the
 * start; nothing is decoded until the plan is known: call pack_stream_plan
 * once, before the first read or skip, with the bmap the copy will follow
 * (without it, the first read or skip plans every chunk). From then on a
 * fetcher thread reads the frames the plan needs, in file order, skipping
 * the others, and one worker a core decodes them. All of these are called
 * from the thread that owns the stream. */
#ifndef BMAPTK_PACK_H
#define BMAPTK_PACK_H

#include <stddef.h>
#include <stdint.h>

#include <bmaptk/bmaptk.h>

/* Whether s is a pack stream (the outermost stream of a packed image). */
int pack_stream_is(const struct bmaptk_stream *s);

/* The bmap and its detached signature as the pack holds them. The bmap
 * is NUL-terminated (not counted in *bmap_len); *sig is NULL and *sig_len
 * 0 when the pack is not signed. Owned by s: valid until it is closed. */
void pack_stream_embedded(const struct bmaptk_stream *s, const char **bmap,
			  size_t *bmap_len, const char **sig, size_t *sig_len);

/* The image bytes each frame holds (the last frame may hold fewer). */
uint32_t pack_stream_chunk_size(const struct bmaptk_stream *s);

/* Decode exactly the chunks that hold b's mapped ranges (b NULL: every
 * chunk, for --nobmap), with `threads` workers (0: one per online CPU),
 * and start fetching. Once only, before the first read or skip. A bmap
 * whose image size is not the pack's is refused (BMAPTK_ERR_USAGE). Reads
 * of bytes in other chunks then fail; the stream's hole op reports them,
 * so the copy engine's drain skips them. Returns 0 or a status. */
int pack_stream_plan(struct bmaptk_stream *s, const struct bmaptk_bmap *b,
		     unsigned threads, struct bmaptk_error *err);

/* Before the first write, for a pack that is a local file: check the
 * file at path (the image, opened anew) against what the stream read:
 * its size, the seek table at its end (it must equal the index), and the
 * header of each frame the plan needs (every frame if there is no plan
 * yet): a zstd frame with a checksum whose content size is its chunk's.
 * Errors are BMAPTK_ERR_USAGE ("NAME: corrupt packed image: ...") or
 * BMAPTK_ERR_IO when the file cannot be read. Any time after open; after
 * the plan it reads only the planned frames' headers (one small read
 * each), so call it after pack_stream_plan. */
int pack_stream_check_file(const struct bmaptk_stream *s, const char *path,
			   struct bmaptk_error *err);

#endif
