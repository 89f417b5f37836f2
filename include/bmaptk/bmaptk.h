/* libbmaptk: block maps, the module registry, and the create/copy/check
 * engines. The library never prints; it reports through callbacks and
 * struct bmaptk_error. */
#ifndef BMAPTK_BMAPTK_H
#define BMAPTK_BMAPTK_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <bmaptk/module.h>

#ifdef __cplusplus
extern "C" {
#endif

const char *bmaptk_version(void);
/* Where plugins are installed (<libdir>/bmaptk/plugins). */
const char *bmaptk_default_plugin_dir(void);

/* ---- hashing (OpenSSL EVP) -------------------------------------------- */

enum bmaptk_hash_type {
	BMAPTK_HASH_NONE = 0,
	BMAPTK_HASH_SHA1 = 1,
	BMAPTK_HASH_SHA256 = 2,
};

#define BMAPTK_HASH_MAX 32 /* bytes of the largest digest */

size_t bmaptk_hash_size(enum bmaptk_hash_type type);
const char *bmaptk_hash_name(enum bmaptk_hash_type type);

struct bmaptk_hasher; /* opaque; one running digest */
struct bmaptk_hasher *bmaptk_hasher_new(enum bmaptk_hash_type type);
void bmaptk_hasher_reset(struct bmaptk_hasher *h);
void bmaptk_hasher_update(struct bmaptk_hasher *h, const void *buf, size_t len);
/* Writes bmaptk_hash_size() bytes into out and resets h. */
void bmaptk_hasher_final(struct bmaptk_hasher *h, unsigned char *out);
void bmaptk_hasher_free(struct bmaptk_hasher *h);

/* Lower-case hex of a digest into out (2*len+1 bytes). */
void bmaptk_hex(const unsigned char *digest, size_t len, char *out);

/* ---- the block map ------------------------------------------------------ */

struct bmaptk_range {
	uint64_t first, last; /* blocks, inclusive */
	unsigned char digest[BMAPTK_HASH_MAX];
};

struct bmaptk_bmap {
	unsigned major, minor; /* format version */
	uint64_t image_size;
	uint32_t block_size;
	uint64_t blocks_count;
	uint64_t mapped_blocks_count;
	enum bmaptk_hash_type hash_type; /* of the file and range digests */
	int range_digests; /* 0: made with --no-checksum, nothing to verify */
	size_t nranges;
	struct bmaptk_range *ranges;
};

/* Byte span of a range: [*off, *off + *len), clipped to the image size. */
void bmaptk_range_span(const struct bmaptk_bmap *b,
		       const struct bmaptk_range *r, uint64_t *off,
		       uint64_t *len);
uint64_t bmaptk_bmap_mapped_bytes(const struct bmaptk_bmap *b);

#define BMAPTK_BMAP_MAX_FILE (256u << 20) /* refuse larger bmap files */

/* Parse and validate a bmap held in memory; name is used in messages.
 * Returns 0 and *out (free with bmaptk_bmap_free) or a status. */
int bmaptk_bmap_parse(const char *data, size_t len, const char *name,
		      struct bmaptk_bmap **out, struct bmaptk_error *err);
int bmaptk_bmap_load(const char *path, struct bmaptk_bmap **out,
		     struct bmaptk_error *err);
void bmaptk_bmap_free(struct bmaptk_bmap *b);

/* Split b's ranges where they cross a multiple of grid bytes (a multiple
 * of the block size), so that each lies inside one chunk of the grid.
 * Ranges that are split lose their digests (zeroed: hash them again).
 * Returns 0 when nothing had to be split, 1 when ranges were split, -1 on
 * a bad grid or no memory. */
int bmaptk_bmap_split(struct bmaptk_bmap *b, uint64_t grid);

/* Serialise as format 2.0 with its file checksum. Returns a malloc'd
 * NUL-terminated document, or NULL on allocation failure. */
char *bmaptk_bmap_format(const struct bmaptk_bmap *b, size_t *len);

/* ---- registry of modules --------------------------------------------------
 */

struct bmaptk_registry;

/* A registry holding the built-in modules. */
struct bmaptk_registry *bmaptk_registry_new(void);
void bmaptk_registry_free(struct bmaptk_registry *reg);

/* origin: "built-in" or the plugin's path. Fails on a wrong ABI version. */
int bmaptk_registry_add(struct bmaptk_registry *reg,
			const struct bmaptk_module *m, const char *origin,
			struct bmaptk_error *err);

typedef void (*bmaptk_warn_fn)(void *ctx, const char *message);

/* Load every *.so in dir. A file that is not a valid plugin is reported
 * through warn and skipped. Returns the number of modules added. */
int bmaptk_registry_load_dir(struct bmaptk_registry *reg, const char *dir,
			     bmaptk_warn_fn warn, void *ctx);
/* Load one plugin file. Returns modules added, or -1 with err set. */
int bmaptk_registry_load_plugin(struct bmaptk_registry *reg, const char *path,
				struct bmaptk_error *err);

size_t bmaptk_registry_count(const struct bmaptk_registry *reg);
const struct bmaptk_module *
bmaptk_registry_get(const struct bmaptk_registry *reg, size_t i,
		    const char **origin);

/* Whether the first bytes of a file are a bmap (XML or clearsigned). */
int bmaptk_looks_like_bmap(const void *head, size_t len);

/* What the first bytes of a file are, for messages: a known compressed or
 * container format ("gzip", "xz", "bzip2", "zstd", "Android sparse image",
 * "tar", ...), "bmap" (as bmaptk_looks_like_bmap), or NULL if unknown. */
const char *bmaptk_format_name(const void *head, size_t len);

/* Open IMAGE (a path, "-" or a URL) and wrap it in the codecs its bytes
 * call for. A bmap given as the image is refused. Nothing is read that the
 * returned stream does not deliver, so pipes and FIFOs lose no byte. */
struct bmaptk_stream *bmaptk_open_image(const struct bmaptk_registry *reg,
					const char *location,
					const struct bmaptk_source_opts *opts,
					struct bmaptk_error *err);
/* Open a location through its source only (no codec), e.g. a bmap file. */
struct bmaptk_stream *bmaptk_open_raw(const struct bmaptk_registry *reg,
				      const char *location,
				      const struct bmaptk_source_opts *opts,
				      struct bmaptk_error *err);
/* Read a whole small file (a bmap, a signature) through its source. */
int bmaptk_read_all(const struct bmaptk_registry *reg, const char *location,
		    const struct bmaptk_source_opts *opts, size_t max,
		    char **data, size_t *len, struct bmaptk_error *err);

/* Open a destination through the sink that bids highest, or, when
 * module is not NULL, through the sink module of that name. */
struct bmaptk_sink *bmaptk_open_sink(const struct bmaptk_registry *reg,
				     const char *path, const char *module,
				     const struct bmaptk_sink_opts *opts,
				     struct bmaptk_error *err);

/* ---- bmap discovery ---------------------------------------------------------
 */

/* Find the bmap of IMAGE as bmaptool does: IMAGE.bmap, then strip one
 * extension at a time and add ".bmap" (for URLs, on the path part, keeping
 * the query). On success *bmap_path and the file's text *data (len bytes,
 * NUL-terminated) are malloc'd. Returns BMAPTK_OK, or BMAPTK_ERR_USAGE with
 * "bmap file not found" in err. */
int bmaptk_discover_bmap(const struct bmaptk_registry *reg, const char *image,
			 const struct bmaptk_source_opts *opts,
			 char **bmap_path, char **data, size_t *len,
			 struct bmaptk_error *err);
/* Candidate i (0, 1, ...) for IMAGE, malloc'd; NULL when there are no more. */
char *bmaptk_bmap_candidate(const char *image, unsigned i);
/* location with suffix added to its path (before a URL's query), malloc'd. */
char *bmaptk_add_suffix(const char *location, const char *suffix);
/* Debugging details (-d): the library calls fn with one line each for
 * the choices it makes (bmap names tried, modules picked, how a
 * destination is opened, HTTP answers, time spent). NULL: none. Names in
 * the lines are redacted. Not thread-safe to change mid-run. */
typedef void (*bmaptk_debug_fn)(void *ctx, const char *line);
void bmaptk_set_debug(bmaptk_debug_fn fn, void *ctx);
/* Where the library's warnings (a retry after a dropped connection) go;
 * NULL: "bmaptk: warning: ..." on stderr. */
void bmaptk_set_warn(bmaptk_debug_fn fn, void *ctx);

/* location for messages: a URL's "user:password@" removed; malloc'd. */
char *bmaptk_redact(const char *location);

/* ---- progress, shared by the engines
 * ----------------------------------------- */

struct bmaptk_progress {
	/* Called from the engine's threads, at most every few MiB. */
	void (*update)(void *ctx, uint64_t done, uint64_t total);
	void *ctx;
};

/* ---- create ---------------------------------------------------------------
 */

struct bmaptk_create_opts {
	int no_checksum;
	/* Read the image (decoded if compressed) and take all-zero blocks
	 * as holes, for images that are not sparse files. Needs reg. */
	int scan_zeros;
	/* Codecs for scan_zeros and for Android sparse images, whose holes
	 * come from the format. NULL: the file is mapped as it is. */
	const struct bmaptk_registry *reg;
	int force_seek;	  /* use SEEK_DATA/SEEK_HOLE even where FIEMAP works */
	unsigned threads; /* 0: one per online CPU */
	struct bmaptk_progress progress;
	volatile sig_atomic_t *interrupted;
	/* Map what the partition table and the filesystems use, not the
	 * file's holes (create --fs; needs a raw image: a file or a block
	 * device). Regions no filesystem explains are mapped by the file's
	 * extents, or by their non-zero blocks for a block device or with
	 * scan_zeros. */
	int fs;
	/* Byte ranges mapped whatever the mapper says (--map), rounded out
	 * to blocks. */
	const struct bmaptk_byte_range *must_map;
	size_t n_must_map;
	/* Read a block device even while a filesystem on it is mounted
	 * read-write. */
	int force;
	/* With fs: set to what was found (free with bmaptk_layout_free). */
	struct bmaptk_layout **layout;
	/* Split the ranges on a grid of this many bytes (a multiple of the
	 * block size; 0: no split), so that each has its own digest: a
	 * delta copy over HTTP then fetches only the chunks that differ. */
	uint64_t split;
};

struct bmaptk_byte_range {
	uint64_t off, len;
};

/* What create --fs found in an image. */
struct bmaptk_layout_part {
	int number;	   /* partition number; 0: a filesystem on it all */
	char fstype[24];   /* libblkid's name ("ext4", "vfat"); "" unknown */
	uint64_t off, len; /* bytes, clipped to the image */
	uint64_t mapped;   /* bytes of it mapped */
	int by_fs; /* 1: mapped by its filesystem; 0: by data (unknown or
		      unsupported filesystem, or a corrupt one) */
};

struct bmaptk_layout {
	char table[8]; /* "gpt", "dos" or "" */
	size_t nparts;
	struct bmaptk_layout_part *parts;
	/* Bytes the image file holds as data (its extents) and, of them,
	 * those not mapped: free space. data_known 0: a block device or
	 * --scan-zeros, where the figures are not known. */
	int data_known;
	uint64_t data, data_unmapped;
};

void bmaptk_layout_free(struct bmaptk_layout *layout);

/* Map and hash a sparse regular file (or, with fs or scan_zeros, a block
 * device). */
int bmaptk_create(const char *image, const struct bmaptk_create_opts *opts,
		  struct bmaptk_bmap **out, struct bmaptk_error *err);

/* ---- copy -----------------------------------------------------------------
 */

struct bmaptk_copy_opts {
	const struct bmaptk_bmap *bmap; /* NULL: --nobmap, the whole stream */
	int verify;
	/* Read what a sink holds first and write only the chunks that
	 * differ (sinks need pread). Stops comparing for a while when most
	 * recent chunks differed. */
	int skip_unchanged;
	struct bmaptk_progress progress;
	volatile sig_atomic_t *interrupted;
	/* Test only: do not write the chunk holding this image offset to
	 * the first sink, once (or every time with lose_write_always). */
	uint64_t lose_write_at; /* 0: off (offset 0 cannot be chosen) */
	int lose_write_always;
};

/* What happened to one sink. */
struct bmaptk_sink_result {
	int status; /* 0, or the status of its failure (message in err) */
	struct bmaptk_error err;
	uint64_t written;  /* bytes written */
	uint64_t compared; /* bytes read back for --skip-unchanged */
	uint64_t skipped;  /* bytes not written: the sink held them */
};

struct bmaptk_copy_stats {
	uint64_t image_size;
	uint64_t mapped_bytes; /* bytes the bmap maps (or the stream held) */
	uint64_t done_bytes;   /* image bytes handed to the sinks */
	size_t ranges_verified;
	double seconds;
	struct bmaptk_sink_result
	    *sinks; /* caller's array of nsinks, or NULL */
};

/* Stream IMAGE's mapped bytes into every sink, hashing each range. A sink
 * that fails drops out and the others go on: its failure is in
 * stats->sinks. The run fails, and returns that status, only when the data
 * does not verify, the image cannot be read, it is interrupted, or every
 * sink failed. Sinks are not finished or closed here. */
int bmaptk_copy(struct bmaptk_stream *image, struct bmaptk_sink *const *sinks,
		size_t nsinks, const struct bmaptk_copy_opts *opts,
		struct bmaptk_copy_stats *stats, struct bmaptk_error *err);

/* Clear what lies outside the bmap's ranges in a sink: discard (BLKDISCARD,
 * or holes in a file) or, with discard == 0, make it read as zeros. */
int bmaptk_sink_clear_holes(struct bmaptk_sink *sink,
			    const struct bmaptk_bmap *b, int discard,
			    struct bmaptk_error *err);

/* ---- OpenPGP signatures of bmaps (gpgme) -----------------------------------
 */

struct bmaptk_signature {
	int good;      /* cryptographically good, key usable, not expired */
	char fpr[64];  /* signer's fingerprint */
	char uid[256]; /* signer's first user id, if the key is known */
	char why[128]; /* what is wrong when !good */
	/* The key is trusted: fully valid in the GnuPG home's web of trust
	 * (GPGME_SIGSUM_VALID), or in the --keyring file (gpgv's rule). A
	 * good signature by an untrusted key counts only when the caller
	 * pins its fingerprint. */
	int trusted;
};

#define BMAPTK_CLEARSIGN_MARKER "-----BEGIN PGP SIGNED MESSAGE-----"

/* Verify data (a bmap, or a clearsigned bmap when sig is NULL) against a
 * detached signature sig. keyring: verify against the keys in that file
 * alone (in a temporary GnuPG home), else against GNUPGHOME's keys.
 * On return *sigs holds *nsigs signatures (malloc'd) and, for a clearsigned
 * bmap, *plain the signed text (malloc'd). A bad signature is reported in
 * sigs, not as an error; errors are for things that could not be checked.
 * Returns BMAPTK_ERR_USAGE when bmaptk was built without gpgme. */
int bmaptk_verify_signature(const char *data, size_t len, const char *sig,
			    size_t sig_len, const char *keyring,
			    const char *name, struct bmaptk_signature **sigs,
			    size_t *nsigs, char **plain, size_t *plain_len,
			    struct bmaptk_error *err);

/* ---- check ----------------------------------------------------------------
 */

struct bmaptk_check_opts {
	int cached;	  /* allow page-cache reads (default: the medium) */
	unsigned threads; /* 0: one per online CPU */
	struct bmaptk_progress progress;
	volatile sig_atomic_t *interrupted;
	/* Called for every range whose digest differs, serialised. */
	void (*bad_range)(void *ctx, const struct bmaptk_bmap *b, size_t index,
			  const unsigned char *got);
	void *ctx;
};

struct bmaptk_check_stats {
	size_t ranges, bad;
	uint64_t bytes;
	int direct; /* the medium was read with O_DIRECT */
	double seconds;
};

/* Read every mapped range of dest and compare it with the bmap. Returns 0
 * when all match, BMAPTK_ERR_VERIFY when any range does not. */
int bmaptk_check(const struct bmaptk_bmap *b, const char *dest,
		 const struct bmaptk_check_opts *opts,
		 struct bmaptk_check_stats *stats, struct bmaptk_error *err);

#ifdef __cplusplus
}
#endif

#endif
