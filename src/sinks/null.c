/* /dev/null as a destination: `bmaptk copy IMAGE /dev/null` decodes the
 * whole image and verifies every range, and writes nothing, as bmaptool's
 * copy to /dev/null does (checking a download without a card). Chosen for
 * the character device 1:3 under any name. Nothing can be read back
 * (--check, --skip-unchanged) or cleared (--discard), nothing is synced. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <bmaptk/module.h>

static int is_null_device(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == 1 &&
	       minor(st->st_rdev) == 3;
}

static int null_pwrite(struct bmaptk_sink *s, const void *buf, size_t len,
		       uint64_t off, struct bmaptk_error *err)
{
	(void)s;
	(void)buf;
	(void)len;
	(void)off;
	(void)err;
	return 0;
}

static int null_finish(struct bmaptk_sink *s, uint64_t image_size,
		       struct bmaptk_error *err)
{
	(void)s;
	(void)image_size;
	(void)err;
	return 0;
}

static int null_close(struct bmaptk_sink *s, int failed)
{
	(void)failed;
	free(s);
	return 0;
}

static const struct bmaptk_sink_ops null_ops = {
    .pwrite = null_pwrite,
    .finish = null_finish,
    .close = null_close,
};

static struct bmaptk_sink *null_open(const char *path,
				     const struct bmaptk_sink_opts *opts,
				     struct bmaptk_error *err)
{
	struct bmaptk_sink *s;
	struct stat st;

	if (stat(path, &st) < 0) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, errno, "%s: %s", path,
				 strerror(errno));
		return NULL;
	}
	/* --to null on another file must not quietly write nothing. */
	if (!is_null_device(&st)) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s: not the null device (/dev/null)", path);
		return NULL;
	}
	if (opts->removable_only) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s is not a removable block device", path);
		return NULL;
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM, "out of memory");
		return NULL;
	}
	s->ops = &null_ops;
	s->name = path;
	return s;
}

static int null_probe(const char *path, const struct stat *st)
{
	(void)path;
	return st && is_null_device(st) ? 1 : 0;
}

static const struct bmaptk_sink_module null_module = {
    .probe = null_probe,
    .open = null_open,
};

const struct bmaptk_module bmaptk_sink_null = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_SINK,
    .name = "null",
    .description = "/dev/null: decode and verify the image, write nothing",
    .version = "1",
    .u.sink = &null_module,
};
