#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "copy_dest.h"
#include "events.h"
#include "util.h"

/* Whether a path that does not exist would be made in /dev's own file
 * system (devtmpfs; not /dev/shm, a tmpfs of its own). */
static int under_dev(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, (size_t)(slash - path + 1)) : NULL;
	struct stat sd, sdev;
	int in = !stat(dir ? dir : ".", &sd) && !stat("/dev", &sdev) &&
		 sd.st_dev == sdev.st_dev;

	free(dir);
	return in;
}

int dest_precheck(const struct copy_args *a, const char *path)
{
	struct stat st;

	/* A card that was not detected must not become a file in /dev (by
	 * any spelling: //dev/sdz, /dev/./sdz, /dev/disk/by-id/usb-...). */
	if (stat(path, &st) < 0 && errno == ENOENT && !a->force &&
	    under_dev(path)) {
		cli_error("%s: no such device; was the card detected? (use "
			  "--force to create a regular file there)",
			  path);
		return BMAPTK_ERR_USAGE;
	}
	return 0;
}

void dest_fail(struct dest *d, const struct bmaptk_error *err)
{
	if (d->status)
		return;
	d->status = err->status ? err->status : BMAPTK_ERR_IO;
	if (err->message[0])
		cli_error("%s", err->message);
}

/* The null device, under any name (what the null sink writes to). */
static int is_dev_null(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISCHR(st.st_mode) &&
	       major(st.st_rdev) == 1 && minor(st.st_rdev) == 3;
}

/* What a sink opened must not be an input, whatever the name was when it
 * was checked. */
static int refuse_input(void *ctx, int fd, const char *path,
			struct bmaptk_error *err)
{
	return input_ids_refuse_fd(ctx, fd, path, err);
}

void dest_open(struct dest *d, const struct copy_args *a,
	       const struct bmaptk_bmap *bmap, uint64_t image_size)
{
	struct bmaptk_sink_opts so = {.image_size = image_size,
				      .removable_only = a->removable,
				      .allow_direct = 1,
				      .keep_data = a->skip_unchanged,
				      .refuse_fd = refuse_input,
				      .refuse_ctx = &cli.inputs};
	struct bmaptk_error err = {0};
	int rc = 0;

	d->sink = bmaptk_open_sink(cli_registry(), d->path, a->to, &so, &err);
	if (!d->sink) {
		dest_fail(d, &err);
		return;
	}
	d->verify_only = is_dev_null(d->path);
	if ((a->check || a->skip_unchanged) && !d->sink->ops->pread) {
		bmaptk_set_error(&err, BMAPTK_ERR_USAGE, 0,
				 "%s: this destination cannot be read back, as "
				 "%s needs",
				 d->path,
				 a->check ? "--check" : "--skip-unchanged");
		dest_fail(d, &err);
		return;
	}
	/* Holes go first: a device that cannot discard is refused before
	 * the first byte of data is written. */
	if (!bmap)
		return;
	d->touched = a->discard || a->zero_holes ||
		     (a->skip_unchanged && !d->sink->is_blockdev);
	if (a->discard)
		rc = bmaptk_sink_clear_holes(d->sink, bmap, 1, &err);
	else if (a->zero_holes)
		rc = bmaptk_sink_clear_holes(d->sink, bmap, 0, &err);
	else if (a->skip_unchanged && !d->sink->is_blockdev)
		rc = bmaptk_sink_clear_holes(d->sink, bmap, 1, &err);
	if (rc && err.status == BMAPTK_ERR_USAGE)
		d->touched = 0; /* refused: nothing was cleared */
	if (rc)
		dest_fail(d, &err);
}

struct bmaptk_bmap *sub_bmap(const struct bmaptk_bmap *b, const size_t *idx,
			     size_t n)
{
	struct bmaptk_bmap *s = malloc(sizeof(*s));

	if (!s)
		return NULL;
	*s = *b;
	s->ranges = malloc(n * sizeof(*s->ranges));
	if (!s->ranges) {
		free(s);
		return NULL;
	}
	s->nranges = n;
	s->mapped_blocks_count = 0;
	for (size_t i = 0; i < n; i++) {
		s->ranges[i] = b->ranges[idx[i]];
		s->mapped_blocks_count +=
		    s->ranges[i].last - s->ranges[i].first + 1;
	}
	return s;
}

/* Write the ranges of sub again from a fresh decode of the image. */
static int rewrite(struct dest *d, const struct copy_args *a,
		   const struct bmaptk_bmap *sub, const char *image,
		   struct bmaptk_error *err)
{
	struct bmaptk_copy_opts co = {
	    .bmap = sub, .verify = 1, .interrupted = &cli_interrupted};
	struct bmaptk_stream *img;
	int rc;

	if (a->lose_write_always) {
		co.lose_write_at = a->lose_write_at;
		co.lose_write_always = 1;
	}
	if (!strcmp(image, "-"))
		return bmaptk_set_error(err, BMAPTK_ERR_VERIFY, 0,
					"%s: cannot rewrite: the image came "
					"from stdin and cannot be read again",
					d->path);
	img = bmaptk_open_image(cli_registry(), image, &cli.source, err);
	if (!img)
		return err->status;
	rc = bmaptk_copy(img, &d->sink, 1, &co, NULL, err);
	img->ops->close(img);
	if (!rc)
		rc = d->sink->ops->finish(d->sink, sub->image_size, err);
	return rc;
}

static void name_ranges(const struct bmaptk_bmap *b, const size_t *idx,
			size_t n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used + 40 < len; i++)
		used += (size_t)snprintf(
		    buf + used, len - used, "%s%llu-%llu", i ? ", " : "",
		    (unsigned long long)b->ranges[idx[i]].first,
		    (unsigned long long)b->ranges[idx[i]].last);
}

void dest_check(struct dest *d, const struct copy_args *a,
		const struct bmaptk_bmap *bmap, const char *image)
{
	struct bmaptk_bmap *sub = NULL;
	struct bmaptk_error err = {0};
	size_t *bad = NULL, nbad = 0;
	int rc, tries = 0;

	rc = cli_run_check(bmap, d->path, 0, &bad, &nbad);
	while (rc == BMAPTK_ERR_VERIFY && tries < a->rewrite_tries && nbad) {
		struct bmaptk_bmap *next =
		    sub_bmap(sub ? sub : bmap, bad, nbad);
		tries++;
		bmaptk_bmap_free(sub);
		sub = next;
		free(bad);
		bad = NULL;
		if (!sub) {
			rc = bmaptk_set_error(&err, BMAPTK_ERR_IO, ENOMEM,
					      "out of memory");
			break;
		}
		cli_warn("%s: rewriting %zu range(s) that did not read back "
			 "right (try %d of %d)",
			 d->path, sub->nranges, tries, a->rewrite_tries);
		d->rewritten += sub->nranges;
		if ((rc = rewrite(d, a, sub, image, &err)))
			break;
		rc = cli_run_check(sub, d->path, 0, &bad, &nbad);
	}
	if (rc == BMAPTK_ERR_VERIFY && nbad) {
		char names[512];
		name_ranges(sub ? sub : bmap, bad, nbad, names, sizeof(names));
		bmaptk_set_error(&err, BMAPTK_ERR_VERIFY, 0,
				 "%s: %zu range(s) never verified (blocks %s)",
				 d->path, nbad, names);
	}
	d->check = rc ? "bad" : "ok";
	if (rc && !err.status) /* the check said it (interrupted: 130) */
		err.status = rc;
	if (rc)
		dest_fail(d, &err);
	free(bad);
	bmaptk_bmap_free(sub);
}

static void report_json(const struct dest *d)
{
	json_t *f = json_object();

	json_object_set_new(f, "dest", ev_string(d->path));
	json_object_set_new(f, "status",
			    json_string(d->status ? "failed" : "ok"));
	json_object_set_new(f, "exit", json_integer(d->status));
	json_object_set_new(
	    f, "written_bytes",
	    json_integer((json_int_t)(d->verify_only ? 0 : d->result.written)));
	json_object_set_new(f, "compared_bytes",
			    json_integer((json_int_t)d->result.compared));
	json_object_set_new(f, "skipped_bytes",
			    json_integer((json_int_t)d->result.skipped));
	json_object_set_new(f, "rewritten_ranges",
			    json_integer((json_int_t)d->rewritten));
	if (d->check)
		json_object_set_new(f, "check", json_string(d->check));
	if (d->verify_only)
		json_object_set_new(f, "verify_only", json_true());
	ev_emit("dest", f);
}

void dest_close(struct dest *d)
{
	char w[32], c[32], s[32];
	int blockdev, removed;

	if (d->sink) {
		blockdev = d->sink->is_blockdev;
		removed = d->sink->ops->close(d->sink, d->status != 0);
		if (removed > 0)
			cli_error("%s: removed the partially written file",
				  d->path);
		else if (removed < 0)
			cli_error("%s: could not remove the partially written "
				  "file: it is incomplete",
				  d->path);
		else if (d->verify_only)
			; /* /dev/null: nothing was written */
		else if (d->status && !d->touched)
			cli_info("%s: left as it was", d->path);
		else if (d->status && blockdev)
			cli_error("%s: the device holds an incomplete image",
				  d->path);
		else if (d->status)
			cli_error("%s: the file is incomplete (it existed "
				  "before this copy, so it was kept)",
				  d->path);
		d->sink = NULL;
	}
	if (cli.json) {
		report_json(d);
		return;
	}
	if (d->status)
		return;
	if (d->result.compared)
		cli_info("%s: written %s, compared %s, skipped %s (unchanged)",
			 d->path, human_size(d->result.written, w, sizeof(w)),
			 human_size(d->result.compared, c, sizeof(c)),
			 human_size(d->result.skipped, s, sizeof(s)));
}
