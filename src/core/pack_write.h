/* The packed-image writer (docs/pack.md): the image's chunks compressed
 * on all cores, one zstd frame each, after a bmap frame whose size is
 * reserved up front and written last, then zstd's seek table. */
#ifndef BMAPTK_PACK_WRITE_H
#define BMAPTK_PACK_WRITE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <bmaptk/bmaptk.h>

struct pack_write_opts {
	/* A multiple of 4096 and of the bmap's block size, between
	 * PACK_CHUNK_MIN and PACK_CHUNK_MAX; b's ranges must lie inside
	 * chunks of it (bmaptk_bmap_split). */
	uint32_t chunk_size;
	int level;	  /* zstd's compression level */
	unsigned threads; /* 0: one per online CPU (fewer if memory says) */
	/* The bmap to embed byte for byte (a signed one): b is its parse,
	 * with SHA-256 digests, and every range's digest must be the
	 * image's (else BMAPTK_ERR_VERIFY). NULL: b's ranges get SHA-256s
	 * computed here, and b is formatted once they are known. */
	const char *bmap_doc;
	size_t bmap_len;
	const char *sig; /* its detached signature; NULL: not signed */
	size_t sig_len;
	/* With bmap_doc NULL: check[i] set means range i already holds a
	 * SHA-256 that the image must give. NULL: check nothing. */
	const unsigned char *check;
	const char *bmap_name; /* for "BMAP does not describe IMAGE" */
	struct bmaptk_progress progress; /* over the mapped bytes */
	volatile sig_atomic_t *interrupted;
};

struct pack_write_stats {
	uint32_t nchunks;     /* all chunks */
	uint32_t data_chunks; /* chunks holding mapped blocks */
	uint64_t mapped;      /* bytes mapped by the bmap */
	uint64_t packed;      /* the packed file's size */
	unsigned threads;     /* workers used */
	unsigned slots;	      /* chunks in flight at most */
};

/* Whether pack takes this zstd level: 1 to 19, or a negative (fast) one
 * that zstd knows. */
int pack_level_ok(long level);

/* Pack image_fd (b->image_size bytes; pread) into out_fd (an empty
 * regular file; pwrite) as b maps it. On success the bmap embedded is in
 * *doc (malloc'd, *doc_len bytes, NUL-terminated), and b's digests are
 * the image's SHA-256s. The caller fsyncs and renames out_fd's file.
 * Returns 0 or a status (BMAPTK_ERR_INTERRUPTED when opts->interrupted
 * was set), with err naming image_name or out_name. */
int pack_write(int image_fd, const char *image_name, int out_fd,
	       const char *out_name, struct bmaptk_bmap *b,
	       const struct pack_write_opts *opts, char **doc, size_t *doc_len,
	       struct pack_write_stats *stats, struct bmaptk_error *err);

#endif
