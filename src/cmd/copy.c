/* bmaptk copy IMAGE DEST...: flash an image, writing only its mapped
 * blocks and verifying each range, onto one or several destinations from
 * one decode. Everything that can be checked is checked before any DEST is
 * opened for writing. Nothing goes to stdout. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "pack.h"
#include "xz_size.h"
#include "blk_inuse.h"
#include "bmaptool_log.h"
#include "copy_dest.h"
#include "events.h"
#include "util.h"

static const struct cli_option options[] = {
    {"bmap", 0, "BMAP", "the bmap file (default: found next to IMAGE)"},
    {"nobmap", 0, NULL, "copy the whole image, without a bmap (unverified)"},
    {"no-verify", 0, NULL, "do not verify the ranges' checksums"},
    {"psplash-pipe", 0, "PATH", "write progress to psplash's pipe"},
    {"removable-device", 0, NULL,
     "refuse a DEST that is not a removable block device"},
    {"check", 0, NULL,
     "read each DEST back from the medium afterwards, "
     "rewrite bad ranges (see bmaptk check)"},
    {"rewrite-tries", 0, "N",
     "with --check: rewrite bad ranges up to N "
     "times (default 2)"},
    {"skip-unchanged", 0, NULL,
     "read DEST first and write only the "
     "chunks that differ"},
    {"discard", 0, NULL,
     "discard the unmapped ranges (BLKDISCARD; holes "
     "in a file)"},
    {"zero-holes", 0, NULL,
     "make the unmapped ranges read as zeros "
     "(BLKZEROOUT; holes in a file)"},
    {"force", 0, NULL,
     "create DEST under /dev even if no such device "
     "exists; read an IMAGE block device that is mounted read-write"},
    {"to", 0, "FORMAT",
     "write DEST as FORMAT: auto (default: by the "
     "destination, .simg names an Android sparse "
     "image), file, blockdev, simg, simg-crc"},
    {"simg-crc", 0, NULL,
     "write DEST as an Android sparse image with a "
     "CRC32 chunk (same as --to simg-crc)"},
    {0},
};

static int on_option(const struct cli_option *opt, const char *arg, void *ctx)
{
	struct copy_args *a = ctx;
	const char *n = opt->name;

	if (!strcmp(n, "bmap"))
		a->bmap = arg;
	else if (!strcmp(n, "nobmap"))
		a->nobmap = 1;
	else if (!strcmp(n, "no-verify"))
		a->no_verify = 1;
	else if (!strcmp(n, "psplash-pipe"))
		a->psplash_pipe = arg;
	else if (!strcmp(n, "removable-device"))
		a->removable = 1;
	else if (!strcmp(n, "check"))
		a->check = 1;
	else if (!strcmp(n, "skip-unchanged"))
		a->skip_unchanged = 1;
	else if (!strcmp(n, "discard"))
		a->discard = 1;
	else if (!strcmp(n, "zero-holes"))
		a->zero_holes = 1;
	else if (!strcmp(n, "force"))
		a->force = 1;
	else if (!strcmp(n, "to"))
		a->to = strcmp(arg, "auto") ? arg : NULL;
	else if (!strcmp(n, "simg-crc"))
		a->to = "simg-crc";
	else if (!strcmp(n, "rewrite-tries")) {
		char *end;
		long v = strtol(arg, &end, 10);
		if (*end || v < 0 || v > 100) {
			cli_error(
			    "--rewrite-tries: '%s' is not a number from 0 "
			    "to 100",
			    arg);
			return -1;
		}
		a->rewrite_tries = (int)v;
	}
	return 0;
}

/* The test-only lost-write switch: BMAPTK_TEST_LOSE_WRITE=OFFSET[:always]
 * skips writing the chunk holding image offset OFFSET to the first DEST,
 * once (or every time), so tests can prove that --check rewrites. */
static void read_test_switch(struct copy_args *a)
{
	const char *v = getenv("BMAPTK_TEST_LOSE_WRITE");
	char *end;

	if (!v || !*v)
		return;
	a->lose_write_at = strtoull(v, &end, 10);
	a->lose_write_always = !strcmp(end, ":always");
}

static const char *bmap_only_option(const struct copy_args *a)
{
	return a->check		   ? "--check"
	       : a->skip_unchanged ? "--skip-unchanged"
	       : a->discard	   ? "--discard"
	       : a->zero_holes	   ? "--zero-holes"
				   : NULL;
}

static int check_args(const struct copy_args *a, const char *image,
		      char **dests, int ndests)
{
	if (a->nobmap && a->bmap) {
		cli_error("--nobmap and --bmap cannot be used together");
	} else if (a->nobmap && bmap_only_option(a)) {
		cli_error("%s needs a bmap: it cannot be used with --nobmap",
			  bmap_only_option(a));
	} else if (a->discard && a->zero_holes) {
		cli_error("--discard and --zero-holes cannot be used together");
	} else if (strcmp(image, "-") && cli_looks_like_bmap(image)) {
		cli_error(
		    "%s: this is a bmap file, not an image; make sure you "
		    "are writing your image and not the bmap file",
		    image);
	} else {
		for (int i = 0; i < ndests; i++)
			if (dest_precheck(a, dests[i]))
				return BMAPTK_ERR_USAGE;
		return 0;
	}
	return BMAPTK_ERR_USAGE;
}

/* A name for a path that may not exist yet: its directory resolved. */
static char *canonical_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, (size_t)(slash - path + 1)) : NULL;
	char *real = realpath(dir ? dir : ".", NULL), *out = NULL;

	if (real && asprintf(&out, "%s/%s", real, slash ? slash + 1 : path) < 0)
		out = NULL;
	free(dir);
	free(real);
	return out;
}

/* Whether two DEST names are one destination: the same storage (also two
 * loop devices on one file), or the same name of one not made yet. */
static int same_dest(const char *a, const char *b)
{
	struct input_ids one = {0};
	struct bmaptk_error err = {0};
	struct stat st;
	int same;

	if (stat(a, &st) || stat(b, &st)) {
		char *ca = canonical_name(a), *cb = canonical_name(b);
		same = !strcmp(ca ? ca : a, cb ? cb : b);
		free(ca);
		free(cb);
		return same;
	}
	input_ids_add(&one, a, "another DEST");
	same = input_ids_match(&one, b, &err) != 0;
	input_ids_free(&one);
	return same;
}

/* No DEST may be what this run reads, or another DEST; "-" and URLs are
 * not destinations (stdout is not written to). */
static int refuse_dests(char **dests, int n)
{
	for (int i = 0; i < n; i++) {
		if (!strcmp(dests[i], "-") || strstr(dests[i], "://")) {
			char *shown = bmaptk_redact(dests[i]);
			cli_error("%s: not a destination (a DEST is a block "
				  "device or a file; URLs and stdout are not)",
				  shown ? shown : "DEST");
			free(shown);
			return BMAPTK_ERR_USAGE;
		}
		if (input_ids_refuse_dest(&cli.inputs, dests[i]))
			return BMAPTK_ERR_USAGE;
		for (int j = i + 1; j < n; j++)
			if (same_dest(dests[i], dests[j])) {
				cli_error("%s and %s are the same destination",
					  dests[i], dests[j]);
				return BMAPTK_ERR_USAGE;
			}
	}
	return 0;
}

/* An Android sparse image's block size from its header (a local file),
 * 0 when unknown: the decoded image is padded up to a whole block. */
static uint32_t simg_block_size(const char *image)
{
	unsigned char h[28];
	uint32_t magic, blk = 0;
	int fd;

	if (!strcmp(image, "-") || strstr(image, "://") ||
	    (fd = open(image, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) <
		0)
		return 0;
	if (pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h)) {
		magic = (uint32_t)h[0] | (uint32_t)h[1] << 8 |
			(uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
		if (magic == 0xed26ff3a)
			blk = (uint32_t)h[12] | (uint32_t)h[13] << 8 |
			      (uint32_t)h[14] << 16 | (uint32_t)h[15] << 24;
	}
	close(fd);
	return blk;
}

/* What a zstd file's first frame says it holds, from its first MiB: its
 * content size, exact (*exact) when that frame is the whole file, else a
 * lower bound (more frames may follow). Local files only: a stream cannot
 * be read twice. BMAPTK_SIZE_UNKNOWN when the frame does not say. */
static uint64_t zstd_size(const char *image, int *exact)
{
	size_t cap = 1u << 20;
	unsigned char *head;
	unsigned long long got = ZSTD_CONTENTSIZE_UNKNOWN;
	struct stat st;
	ssize_t n = -1;
	int fd;

	*exact = 0;
	if (!strcmp(image, "-") || strstr(image, "://") ||
	    (fd = open(image, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) <
		0)
		return BMAPTK_SIZE_UNKNOWN;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (head = malloc(cap))) {
		n = pread(fd, head, cap, 0);
		if (n > 0) {
			size_t fsize;
			got = ZSTD_getFrameContentSize(head, (size_t)n);
			fsize = ZSTD_findFrameCompressedSize(head, (size_t)n);
			*exact =
			    !ZSTD_isError(fsize) && (off_t)fsize == st.st_size;
		}
		free(head);
	}
	close(fd);
	if (got == ZSTD_CONTENTSIZE_UNKNOWN || got == ZSTD_CONTENTSIZE_ERROR)
		return BMAPTK_SIZE_UNKNOWN;
	return (uint64_t)got;
}

/* A bmap that does not belong to the image is refused before writing,
 * wherever the image's size is known before decoding: a raw file's (a
 * URL's) size, an Android sparse image's header (a raw image made sparse
 * is padded to its block size), a single-frame zstd file's content size
 * (a first frame's is a lower bound), a local xz file's index (every
 * stream's). */
static int check_image_size(const struct bmaptk_stream *img,
			    const struct bmaptk_bmap *bmap, const char *image,
			    const char *bmap_path, const char *location,
			    struct bmaptk_error *err)
{
	uint64_t off, len, size = img->size, want;
	uint32_t blk;
	int exact = 1, ok;
	char a[32], b[32];

	if (!bmap)
		return 0;
	want = bmap->image_size;
	if (!strcmp(img->format, "zstd"))
		size = zstd_size(location, &exact);
	else if (!strcmp(img->format, "xz"))
		size = bmaptk_xz_size(location);
	else if (strcmp(img->format, "raw") && strcmp(img->format, "simg") &&
		 !pack_stream_is(img))
		return 0; /* a packed image's size is its header's */
	if (size == BMAPTK_SIZE_UNKNOWN)
		return 0;
	if (!strcmp(img->format, "raw") && bmap->nranges) {
		bmaptk_range_span(bmap, &bmap->ranges[bmap->nranges - 1], &off,
				  &len);
		if (size < off + len) /* cut short, as a failed download */
			return bmaptk_set_error(
			    err, BMAPTK_ERR_USAGE, 0,
			    "%s: the image has %llu bytes, but the bmap maps "
			    "data up to byte %llu",
			    image, (unsigned long long)size,
			    (unsigned long long)(off + len));
	}
	if (!exact)
		ok = size <= want;
	else if (!strcmp(img->format, "simg"))
		/* Padding is less than one of its blocks; with no header to
		 * read (a stream), no check. */
		ok = !(blk = simg_block_size(location)) ||
		     (size >= want && size - want < blk);
	else
		ok = size == want;
	if (ok)
		return 0;
	human_size(want, a, sizeof(a));
	human_size(size, b, sizeof(b));
	if (!strcmp(a, b)) {
		snprintf(a, sizeof(a), "%llu-byte", (unsigned long long)want);
		snprintf(b, sizeof(b), "%llu bytes", (unsigned long long)size);
	}
	return bmaptk_set_error(
	    err, BMAPTK_ERR_USAGE, 0, "%s describes a %s image, %s holds %s%s",
	    bmap_path, a, image, exact ? "" : "at least ", b);
}

static void emit_start(const char *image, const char *bmap_path,
		       const struct bmaptk_bmap *bmap, struct dest *dests,
		       size_t n)
{
	json_t *f = json_object(), *list = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, ev_string(dests[i].path));
	json_object_set_new(f, "image", ev_string(image));
	json_object_set_new(f, "bmap",
			    bmap_path ? ev_string(bmap_path) : json_null());
	json_object_set_new(f, "dests", list);
	if (bmap) {
		json_object_set_new(f, "image_size",
				    json_integer((json_int_t)bmap->image_size));
		json_object_set_new(
		    f, "mapped_bytes",
		    json_integer((json_int_t)bmaptk_bmap_mapped_bytes(bmap)));
	}
	ev_emit("start", f);
	if (!bmap)
		return;
	f = json_object();
	json_object_set_new(f, "source", ev_string(bmap_path));
	json_object_set_new(f, "version",
			    json_sprintf("%u.%u", bmap->major, bmap->minor));
	json_object_set_new(f, "checksums", json_boolean(bmap->range_digests));
	json_object_set_new(f, "signature", json_string(cli.sig_state));
	ev_emit("bmap", f);
}

static void summarize(const char *image, const struct bmaptk_copy_stats *st,
		      const struct dest *dests, size_t n, int verified)
{
	char size[32], mapped[32], rate[32];
	double secs = st->seconds > 0 ? st->seconds : 1e-9;
	size_t ok = 0;
	json_t *f;

	for (size_t i = 0; i < n; i++)
		ok += dests[i].status == 0;
	if (cli.bmaptool) {
		if (ok)
			bmaptool_log_done(st->mapped_bytes);
		return;
	}
	if (!cli.json && ok) {
		char where[64];
		/* /dev/null: the image is decoded and verified, not written. */
		int vo = n == 1 && dests[0].verify_only;
		if (n == 1)
			snprintf(where, sizeof(where), "%s", dests[0].path);
		else
			snprintf(where, sizeof(where),
				 "%zu of %zu destinations", ok, n);
		cli_info("copied %s to %s%s: image %s, mapped %s in %.2f s "
			 "(%s/s), %zu range%s verified%s",
			 image, where,
			 !vo	    ? ""
			 : verified ? " (nothing written, only verified)"
				    : " (nothing written)",
			 human_size(st->image_size, size, sizeof(size)),
			 human_size(st->mapped_bytes, mapped, sizeof(mapped)),
			 st->seconds,
			 human_size((uint64_t)((double)st->done_bytes / secs),
				    rate, sizeof(rate)),
			 st->ranges_verified,
			 st->ranges_verified == 1 ? "" : "s",
			 verified ? "" : " (verification off)");
		return;
	}
	if (!cli.json)
		return;
	f = json_object();
	json_object_set_new(f, "image_size",
			    json_integer((json_int_t)st->image_size));
	json_object_set_new(f, "mapped_bytes",
			    json_integer((json_int_t)st->mapped_bytes));
	json_object_set_new(f, "seconds", json_real(st->seconds));
	json_object_set_new(f, "rate",
			    json_real((double)st->done_bytes / secs));
	json_object_set_new(f, "ranges_verified",
			    json_integer((json_int_t)st->ranges_verified));
	json_object_set_new(f, "verified", json_boolean(verified));
	json_object_set_new(f, "dests_ok", json_integer((json_int_t)ok));
	json_object_set_new(f, "dests_failed",
			    json_integer((json_int_t)(n - ok)));
	ev_emit("summary", f);
}

/* Copy to every live destination from one decode; finish them. */
static int write_all(const struct copy_args *a, struct bmaptk_stream *img,
		     const struct bmaptk_bmap *bmap, const char *bmap_path,
		     struct dest *dests, size_t n, int compare,
		     struct bmaptk_copy_stats *st)
{
	struct bmaptk_copy_opts co = {.bmap = bmap,
				      .verify = !a->no_verify,
				      .skip_unchanged = compare,
				      .interrupted = &cli_interrupted,
				      .lose_write_at = a->lose_write_at,
				      .lose_write_always =
					  a->lose_write_always};
	struct bmaptk_sink **sinks = calloc(n, sizeof(*sinks));
	struct bmaptk_sink_result *results = calloc(n, sizeof(*results));
	size_t live = 0, *which = calloc(n, sizeof(*which));
	struct bmaptk_error err = {0};
	struct cli_progress progress;
	int rc;

	if (!sinks || !results || !which) {
		free(sinks), free(results), free(which);
		cli_error("out of memory");
		return BMAPTK_ERR_IO;
	}
	for (size_t i = 0; i < n; i++) {
		if (dests[i].status)
			continue;
		dests[i].touched = 1;
		which[live] = i;
		sinks[live++] = dests[i].sink;
	}
	st->sinks = results;
	cli_progress_start(&progress, "copying", a->psplash_pipe);
	co.progress.update = cli_progress_update;
	co.progress.ctx = &progress;
	rc = live ? bmaptk_copy(img, sinks, live, &co, st, &err) : 0;
	cli_progress_end(&progress);
	/* A sink's own failure is in its result; a failure of the run stops
	 * them all and is said once. */
	for (size_t k = 0; k < live; k++) {
		struct dest *d = &dests[which[k]];
		d->result = results[k];
		if (results[k].status)
			dest_fail(d, &results[k].err);
		else if (rc)
			d->status = rc;
		else {
			if (cli.bmaptool)
				bmaptool_log_sync(d->path);
			if (d->sink->ops->finish(
				d->sink,
				bmap ? bmap->image_size : st->done_bytes, &err))
				dest_fail(d, &err);
		}
	}
	if (rc == BMAPTK_ERR_INTERRUPTED) {
		char w[32];
		cli_error(
		    "interrupted after writing %s",
		    human_size(live ? results[0].written : 0, w, sizeof(w)));
	} else if (rc && !(live == 1 && results[0].status)) {
		/* The very first range is wrong: most likely another image's
		 * bmap. */
		if (rc == BMAPTK_ERR_VERIFY && bmap && !st->ranges_verified &&
		    !cli.bmaptool &&
		    strstr(err.message, ": checksum mismatch for blocks ")) {
			size_t used = strlen(err.message);
			snprintf(err.message + used, sizeof(err.message) - used,
				 "; does %s belong to %s?", bmap_path,
				 a->shown_image);
		}
		cli_fail(&err);
	}
	st->sinks = NULL;
	free(sinks), free(results), free(which);
	return rc;
}

/* --skip-unchanged compares by checksums first where the image can fetch
 * any range on its own: only what differs then crosses the network. A
 * stream that must be decoded whole anyway compares while writing, in
 * finer chunks. Discarding or zeroing the holes needs the whole bmap. */
static int by_checksums(const struct copy_args *a, const char *image,
			const struct bmaptk_stream *img,
			const struct bmaptk_bmap *bmap)
{
	if (!a->skip_unchanged || !bmap->range_digests || a->discard ||
	    a->zero_holes)
		return 0;
	return pack_stream_is(img) ||
	       (!strcmp(img->format, "raw") && strstr(image, "://") != NULL);
}

static int copy_image(const struct copy_args *a, const char *image,
		      char **paths, size_t n, const struct bmaptk_bmap *bmap,
		      const char *bmap_path, struct bmaptk_stream *img)
{
	struct dest *dests = calloc(n, sizeof(*dests));
	struct bmaptk_copy_stats st = {0};
	struct bmaptk_bmap *delta = NULL;
	struct bmaptk_error err = {0};
	uint64_t compared = 0, unchanged = 0;
	int rc = 0;

	if (!dests) {
		cli_error("out of memory");
		return BMAPTK_ERR_IO;
	}
	for (size_t i = 0; i < n; i++) {
		dests[i].path = paths[i];
		dest_open(&dests[i], a, bmap,
			  bmap ? bmap->image_size : img->size);
	}
	if (cli.json)
		emit_start(a->shown_image, bmap_path, bmap, dests, n);
	if (cli.bmaptool && n && !dests[0].status)
		bmaptool_log_start(a->shown_image, dests[0].path,
				   dests[0].sink->is_blockdev, bmap_path);
	if (bmap) {
		st.image_size = bmap->image_size;
		st.mapped_bytes = bmaptk_bmap_mapped_bytes(bmap);
	}
	if (bmap && by_checksums(a, image, img, bmap))
		delta = delta_bmap(bmap, dests, n, &compared, &unchanged);
	/* A packed image fetches and decodes only the chunks to be written. */
	if (pack_stream_is(img) &&
	    (rc = pack_stream_plan(img, delta ? delta : bmap, 0, &err))) {
		cli_fail(&err);
		for (size_t i = 0; i < n; i++)
			if (!dests[i].status)
				dests[i].status = rc;
		goto done;
	}
	rc = write_all(a, img, delta ? delta : bmap, bmap_path, dests, n,
		       a->skip_unchanged && !delta, &st);
	/* Report the whole bmap, and what the checksums spared each DEST,
	 * as comparing while writing would. */
	if (delta) {
		st.mapped_bytes = bmaptk_bmap_mapped_bytes(bmap);
		for (size_t i = 0; i < n; i++) {
			dests[i].result.compared += compared;
			dests[i].result.skipped += unchanged;
		}
	}
done:
	bmaptk_bmap_free(delta);
	for (size_t i = 0; i < n && a->check && !rc; i++)
		if (!dests[i].status)
			dest_check(&dests[i], a, bmap, image);
	summarize(a->shown_image, &st, dests, n,
		  !a->no_verify && bmap && bmap->range_digests);
	for (size_t i = 0; i < n; i++) {
		dest_close(&dests[i]);
		if (!rc && dests[i].status)
			rc = dests[i].status;
	}
	if (n > 1 && rc && rc != BMAPTK_ERR_INTERRUPTED)
		for (size_t i = 0; i < n; i++)
			cli_info("%s: %s", dests[i].path,
				 dests[i].status ? "FAILED" : "ok");
	free(dests);
	return rc;
}

/* Whether "bmap not found" may be about the bmap alone: a local image
 * that is missing was what cli_load_bmap reported. */
static int image_may_exist(const char *image)
{
	struct stat st;

	return !strcmp(image, "-") || strstr(image, "://") ||
	       stat(image, &st) == 0;
}

/* A packed image: its own bmap unless one was given or found by name,
 * and, for a local file, its seek table and frame headers checked against
 * the index before anything is written. */
static int packed_bmap(const struct copy_args *a, const char *image,
		       const struct bmaptk_stream *img, int use_embedded,
		       struct bmaptk_bmap **bmap, char **bmap_path,
		       struct bmaptk_error *err)
{
	const char *doc, *sig;
	size_t len, sig_len;
	char *local;
	int rc = 0;

	if (use_embedded) {
		pack_stream_embedded(img, &doc, &len, &sig, &sig_len);
		rc = cli_load_embedded_bmap(
		    strcmp(image, "-") ? a->shown_image : "stdin", doc, len,
		    sig, sig_len, bmap, bmap_path, err);
	} else if (*bmap_path) {
		cli_info("%s also carries a bmap; using %s", a->shown_image,
			 *bmap_path);
	}
	local = strcmp(image, "-") ? local_path_of(image) : NULL;
	if (!rc && local)
		rc = pack_stream_check_file(img, local, err);
	free(local);
	return rc;
}

/* A block device read as the image while a filesystem on it is mounted
 * read-write changes under the copy: neither its bmap nor its checksums
 * can hold. */
static int refuse_mounted_image(const char *image, int force,
				struct bmaptk_error *err)
{
	struct stat st;

	if (force || stat(image, &st) || !S_ISBLK(st.st_mode))
		return 0;
	return blk_check_mounted_rw(image, st.st_rdev, err);
}

static int run(int argc, char **argv)
{
	struct copy_args a = {.rewrite_tries = 2};
	struct bmaptk_error err = {0}, not_found = {0};
	struct bmaptk_bmap *bmap = NULL;
	struct bmaptk_stream *img = NULL;
	char *bmap_path = NULL;
	const char *image;
	int first, rc;

	first = cli_parse(&cmd_copy, argc, argv, on_option, &a);
	if (first < 0)
		return first == -2 ? 0 : BMAPTK_ERR_USAGE;
	if (argc - first < 2) {
		cli_error(
		    "copy: expected IMAGE and DEST (see bmaptk copy --help)");
		return BMAPTK_ERR_USAGE;
	}
	image = argv[first];
	if (!(a.shown_image = bmaptk_redact(image))) {
		cli_error("out of memory");
		return BMAPTK_ERR_IO;
	}
	read_test_switch(&a);
	if ((rc = check_args(&a, image, argv + first + 1, argc - first - 1)))
		goto out;
	if (cli.source.insecure)
		cli_warn("--insecure: TLS certificates are not verified");
	if (!cli_registry()) {
		cli_error("out of memory");
		rc = BMAPTK_ERR_IO;
		goto out;
	}
	cli_catch_signals();
	input_ids_add(&cli.inputs, image, "the image");
	/* Messages go on after the copy: a DEST that is our own stdout or
	 * stderr (redirected to a file) would be written over. */
	input_ids_add(&cli.inputs, "/proc/self/fd/1", "bmaptk's stdout");
	input_ids_add(&cli.inputs, "/proc/self/fd/2", "bmaptk's stderr");
	rc = refuse_mounted_image(image, a.force, &err);
	if (!rc && !strcmp(image, "-") && !a.bmap && !a.nobmap)
		/* Nothing to discover beside stdin; a packed image brings
		 * its own. */
		rc = bmaptk_set_error(&err, BMAPTK_ERR_USAGE, ENOENT,
				      "-: an image on stdin needs --bmap (or "
				      "--nobmap), unless it is a packed "
				      "image");
	else if (!rc)
		rc = cli_load_bmap(a.bmap, a.nobmap ? NULL : image, 1, &bmap,
				   &bmap_path, &err);
	/* No bmap beside the image: a packed image carries its own. */
	if (rc == BMAPTK_ERR_USAGE && err.sys_errno == ENOENT && !a.bmap &&
	    !a.nobmap && image_may_exist(image)) {
		not_found = err;
		err = (struct bmaptk_error){0};
		rc = 0;
	}
	if (!rc && !(img = bmaptk_open_image(cli_registry(), image, &cli.source,
					     &err)))
		rc = err.status ? err.status : BMAPTK_ERR_IO;
	if (!rc && pack_stream_is(img))
		rc = packed_bmap(&a, image, img, not_found.status, &bmap,
				 &bmap_path, &err);
	else if (!rc && not_found.status)
		err = not_found, rc = err.status;
	if (!rc)
		rc = check_image_size(img, bmap, a.shown_image, bmap_path,
				      image, &err);
	if (rc) {
		rc = cli_fail(&err);
		goto out;
	}
	if ((rc = refuse_dests(argv + first + 1, argc - first - 1)))
		goto out;
	if (bmap) {
		cli_describe_bmap(bmap, bmap_path);
		if (!bmap->range_digests && bmap->nranges && !a.no_verify)
			cli_warn(
			    "%s: the bmap has no checksums; the data cannot "
			    "be verified",
			    bmap_path);
	} else if (!cli.bmaptool) { /* bmaptool says it with DEST */
		cli_info("no bmap given, copying the entire image");
	}
	rc = copy_image(&a, image, argv + first + 1, (size_t)(argc - first - 1),
			bmap, bmap_path, img);
out:
	if (img)
		img->ops->close(img);
	bmaptk_bmap_free(bmap);
	free(bmap_path);
	free(a.shown_image);
	input_ids_free(&cli.inputs);
	return rc;
}

const struct cmd cmd_copy = {
    .name = "copy",
    .summary = "flash an image onto block devices or into files",
    .usage = "[--bmap BMAP | --nobmap] [OPTIONS] IMAGE DEST [DEST...]",
    .description =
	"Writes the mapped blocks of IMAGE to each DEST and verifies\n"
	"each range against the bmap's checksum; several DESTs are\n"
	"written in parallel from one decode. IMAGE is a file, a URL\n"
	"(http, https, ftp, sftp, file) or \"-\" (stdin, needs --bmap),\n"
	"compressed with gzip, xz, bzip2 or zstd or not (recognised by\n"
	"content). The bmap is looked for as IMAGE.bmap, then with\n"
	"IMAGE's extensions stripped one at a time (disk.img.xz.bmap,\n"
	"disk.img.bmap, disk.bmap). A DEST is a block device (refused if\n"
	"mounted, in use or too small) or a regular file (created, or\n"
	"made exactly the image; it stays sparse); /dev/null verifies the\n"
	"image and writes nothing. A file created by a failed copy is\n"
	"removed. A signed bmap (BMAP.asc, BMAP.sig or clearsigned) is\n"
	"verified first.",
    .options = options,
    .reads_images = 1,
    .run = run,
};
