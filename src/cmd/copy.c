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
	int check;
};

static const struct cli_option options[] = {
	{"bmap", 0, "BMAP", "the bmap file (default: found next to IMAGE)"},
	{"nobmap", 0, NULL, "copy the whole image, without a bmap (unverified)"},
	{"no-verify", 0, NULL, "do not verify the ranges' checksums"},
	{"psplash-pipe", 0, "PATH", "write progress to psplash's pipe"},
	{"removable-device", 0, NULL,
	 "refuse a DEST that is not a removable block device"},
	{"check", 0, NULL, "read DEST back from the medium afterwards and "
			   "verify it (see bmaptk check)"},
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
	else if (!strcmp(opt->name, "check"))
		a->check = 1;
	return 0;
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

/* Close the sink and, after a failure, say what it left behind. */
static void close_sink(struct bmaptk_sink *sink, int failed)
{
	const char *name = sink->name;
	int blockdev = sink->is_blockdev;

	if (sink->ops->close(sink, failed))
		cli_error("%s: removed the partially written file", name);
	else if (failed && blockdev)
		cli_error("%s: the device holds an incomplete image", name);
	else if (failed)
		cli_error("%s: the file is incomplete (it existed before this "
			  "copy, so it was kept)",
			  name);
}

static int check_args(const struct copy_args *a, const char *image)
{
	if (a->check && a->nobmap) {
		cli_error("--check needs a bmap: it cannot be used with --nobmap");
		return BMAPTK_ERR_USAGE;
	}
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
	close_sink(sink, rc != 0);
	if (!rc && a->check && bmap)
		rc = cli_run_check(bmap, dest, 0);
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
	rc = cli_load_bmap(a.bmap, a.nobmap ? NULL : argv[first], &bmap,
			   &bmap_path, &err);
	if (!rc && bmap_path && !strcmp(bmap_path, argv[first]))
		rc = bmaptk_set_error(&err, BMAPTK_ERR_USAGE, 0,
				      "%s: this is the bmap file, not the image; make sure you are writing your image and not the bmap file",
				      argv[first]);
	if (!rc) {
		img = bmaptk_open_image(cli_registry(), argv[first], &cli.source,
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
		cli_describe_bmap(bmap, bmap_path);
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
	.reads_images = 1,
	.run = run,
};
