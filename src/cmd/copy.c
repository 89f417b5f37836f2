/* bmaptk copy IMAGE DEST: flash an image, writing only its mapped blocks
 * and verifying each range. Everything that can be checked is checked
 * before DEST is opened for writing. Nothing goes to stdout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "util.h"

struct copy_args {
	const char *bmap;
	int nobmap;
	int no_verify;
	const char *psplash_pipe;
	int removable;
};

static const struct cli_option options[] = {
	{"bmap", 0, "BMAP", "the bmap file (default: found next to IMAGE)"},
	{"nobmap", 0, NULL, "copy the whole image, without a bmap (unverified)"},
	{"no-verify", 0, NULL, "do not verify the ranges' checksums"},
	{"psplash-pipe", 0, "PATH", "write progress to psplash's pipe"},
	{"removable-device", 0, NULL,
	 "refuse a DEST that is not a removable block device"},
	{0},
};

static int on_option(const struct cli_option *opt, const char *arg, void *ctx)
{
	struct copy_args *a = ctx;

	if (!strcmp(opt->name, "bmap"))
		a->bmap = arg;
	else if (!strcmp(opt->name, "nobmap"))
		a->nobmap = 1;
	else if (!strcmp(opt->name, "no-verify"))
		a->no_verify = 1;
	else if (!strcmp(opt->name, "psplash-pipe"))
		a->psplash_pipe = arg;
	else if (!strcmp(opt->name, "removable-device"))
		a->removable = 1;
	return 0;
}

static int load_bmap(const struct copy_args *a, const char *image,
		     struct bmaptk_bmap **bmap, char **path,
		     struct bmaptk_error *err)
{
	struct bmaptk_registry *reg = cli_registry();
	char *data;
	size_t len;
	int rc;

	*bmap = NULL;
	*path = NULL;
	if (a->nobmap)
		return 0;
	if (!a->bmap)
		return bmaptk_discover_bmap(reg, image, NULL, bmap, path, err);
	rc = bmaptk_read_all(reg, a->bmap, NULL, BMAPTK_BMAP_MAX_FILE, &data,
			     &len, err);
	if (rc) {
		if (err->sys_errno == ENOENT)
			bmaptk_set_error(err, BMAPTK_ERR_USAGE, ENOENT,
					 "%s: cannot open bmap file: %s",
					 a->bmap, strerror(ENOENT));
		return rc;
	}
	rc = bmaptk_bmap_parse(data, len, a->bmap, bmap, err);
	free(data);
	if (!rc && !(*path = strdup(a->bmap)))
		rc = bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
				      "out of memory");
	return rc;
}

static void describe_bmap(const struct bmaptk_bmap *b, const char *path)
{
	char size[32], mapped[32];
	uint64_t m = bmaptk_bmap_mapped_bytes(b);

	cli_info("bmap %s: format version %u.%u, %llu blocks of %u bytes (%s), "
		 "%llu mapped (%s or %.1f%%)",
		 path, b->major, b->minor, (unsigned long long)b->blocks_count,
		 b->block_size, human_size(b->image_size, size, sizeof(size)),
		 (unsigned long long)b->mapped_blocks_count,
		 human_size(m, mapped, sizeof(mapped)),
		 b->image_size ? 100.0 * (double)m / (double)b->image_size
			       : 0.0);
}

static void summarize(const char *image, const char *dest,
		      const struct bmaptk_copy_stats *st, int verified)
{
	char size[32], mapped[32], written[32], rate[32];
	double secs = st->seconds > 0 ? st->seconds : 1e-9;

	cli_info("copied %s to %s: image %s, mapped %s, written %s in %.2f s "
		 "(%s/s), %zu ranges verified%s",
		 image, dest, human_size(st->image_size, size, sizeof(size)),
		 human_size(st->mapped_bytes, mapped, sizeof(mapped)),
		 human_size(st->written_bytes, written, sizeof(written)),
		 st->seconds,
		 human_size((uint64_t)((double)st->written_bytes / secs), rate,
			    sizeof(rate)),
		 st->ranges_verified, verified ? "" : " (verification off)");
}

/* What a failed copy left behind, said once. */
static void report_leftover(const struct bmaptk_sink *sink)
{
	if (sink->removed)
		cli_error("%s: removed the partially written file", sink->name);
	else if (sink->is_blockdev)
		cli_error("%s: the device holds an incomplete image", sink->name);
	else
		cli_error("%s: the file is incomplete (it existed before this "
			  "copy, so it was kept)",
			  sink->name);
}

static int check_args(const struct copy_args *a, const char *image)
{
	if (a->nobmap && a->bmap) {
		cli_error("--nobmap and --bmap cannot be used together");
		return BMAPTK_ERR_USAGE;
	}
	if (!strcmp(image, "-") && !a->bmap && !a->nobmap) {
		cli_error("-: an image on stdin needs --bmap (or --nobmap)");
		return BMAPTK_ERR_USAGE;
	}
	return 0;
}

static int copy_to(const struct copy_args *a, struct bmaptk_stream *img,
		   const struct bmaptk_bmap *bmap, const char *dest)
{
	struct bmaptk_sink_opts so = {.removable_only = a->removable,
				      .allow_direct = 1};
	struct bmaptk_copy_opts co = {.bmap = bmap, .verify = !a->no_verify,
				      .interrupted = &cli_interrupted};
	struct bmaptk_copy_stats st = {0};
	struct bmaptk_error err = {0};
	struct cli_progress progress;
	struct bmaptk_sink *sink;
	int rc;

	so.image_size = bmap ? bmap->image_size : img->size;
	sink = bmaptk_open_sink(cli_registry(), dest, &so, &err);
	if (!sink)
		return cli_fail(&err);
	cli_progress_start(&progress, "copying", a->psplash_pipe);
	co.progress.update = cli_progress_update;
	co.progress.ctx = &progress;
	rc = bmaptk_copy(img, &sink, 1, &co, &st, &err);
	if (!rc)
		rc = sink->ops->finish(sink, bmap ? bmap->image_size
						  : st.written_bytes,
				       &err);
	cli_progress_end(&progress);
	if (rc == BMAPTK_ERR_INTERRUPTED) {
		char w[32];
		cli_error("interrupted after writing %s of %s",
			  human_size(st.written_bytes, w, sizeof(w)), dest);
	} else if (rc) {
		cli_fail(&err);
	} else {
		summarize(img->name, dest, &st, co.verify && bmap &&
							bmap->range_digests);
	}
	sink->ops->close(sink, rc != 0);
	if (rc)
		report_leftover(sink);
	return rc;
}

static int run(int argc, char **argv)
{
	struct copy_args a = {0};
	struct bmaptk_error err = {0};
	struct bmaptk_bmap *bmap = NULL;
	struct bmaptk_stream *img = NULL;
	char *bmap_path = NULL;
	int first, rc;

	first = cli_parse(&cmd_copy, argc, argv, on_option, &a);
	if (first < 0)
		return first == -2 ? 0 : BMAPTK_ERR_USAGE;
	if (argc - first != 2) {
		cli_error("copy: expected IMAGE and DEST (see bmaptk copy --help)");
		return BMAPTK_ERR_USAGE;
	}
	if ((rc = check_args(&a, argv[first])))
		return rc;
	if (!cli_registry()) {
		cli_error("out of memory");
		return BMAPTK_ERR_IO;
	}
	cli_catch_signals();
	rc = load_bmap(&a, argv[first], &bmap, &bmap_path, &err);
	if (!rc && bmap_path && !strcmp(bmap_path, argv[first]))
		rc = bmaptk_set_error(&err, BMAPTK_ERR_USAGE, 0,
				      "%s: this is the bmap file, not the image; make sure you are writing your image and not the bmap file",
				      argv[first]);
	if (!rc) {
		img = bmaptk_open_image(cli_registry(), argv[first], NULL,
					&err);
		rc = img ? 0 : err.status;
	}
	if (!rc && bmap && bmap->nranges && !strcmp(img->format, "raw") &&
	    img->size != BMAPTK_SIZE_UNKNOWN) {
		uint64_t off, len;
		bmaptk_range_span(bmap, &bmap->ranges[bmap->nranges - 1], &off,
				  &len);
		if (img->size < off + len)
			rc = bmaptk_set_error(&err, BMAPTK_ERR_USAGE, 0,
					      "%s: the image has %llu bytes, but the bmap maps data up to byte %llu",
					      argv[first],
					      (unsigned long long)img->size,
					      (unsigned long long)(off + len));
	}
	if (rc) {
		rc = cli_fail(&err);
		goto out;
	}
	if (bmap) {
		describe_bmap(bmap, bmap_path);
		if (!bmap->range_digests && !a.no_verify)
			cli_warn("%s: the bmap has no checksums; the data cannot be verified",
				 bmap_path);
	} else {
		cli_info("no bmap given, copying the entire image to %s",
			 argv[first + 1]);
	}
	rc = copy_to(&a, img, bmap, argv[first + 1]);
out:
	if (img)
		img->ops->close(img);
	bmaptk_bmap_free(bmap);
	free(bmap_path);
	return rc;
}

const struct cmd cmd_copy = {
	.name = "copy",
	.summary = "flash an image onto a block device or into a file",
	.usage = "[--bmap BMAP | --nobmap] [--no-verify] IMAGE DEST",
	.description =
		"Writes the mapped blocks of IMAGE to DEST and verifies each\n"
		"range against the bmap's checksum. IMAGE is a file or \"-\"\n"
		"(stdin, needs --bmap), compressed with gzip, xz, bzip2 or zstd\n"
		"or not (recognised by content). The bmap is looked for as\n"
		"IMAGE.bmap, then with IMAGE's extensions stripped one at a\n"
		"time (disk.img.xz.bmap, disk.img.bmap, disk.bmap). DEST is a\n"
		"block device (refused if mounted, in use or too small) or a\n"
		"regular file (created, or cut to the image's size; it stays\n"
		"sparse). A file created by a failed copy is removed.",
	.options = options,
	.run = run,
};
