/* bmaptk create IMAGE [-o BMAP] [--no-checksum] */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "util.h"

struct create_args {
	const char *output;
	int no_checksum;
	int scan_zeros;
	int fs;
	int force;
	uint64_t split;
	struct bmaptk_byte_range *maps;
	size_t nmaps;
};

static const struct cli_option options[] = {
    {"output", 'o', "BMAP", "write the bmap to BMAP (default: stdout)"},
    {"no-checksum", 0, NULL,
     "do not hash the ranges (faster; nothing can "
     "be verified later)"},
    {"scan-zeros", 0, NULL,
     "read the image (decompressed if need be) and "
     "take all-zero blocks as holes"},
    {"fs", 0, NULL,
     "map what the partition table and the filesystems use (ext2/3/4, "
     "FAT, swap), not the file's holes"},
    {"map", 0, "OFFSET:LENGTH",
     "also map these bytes (K, M, G suffixes; rounded out to blocks; "
     "repeatable), e.g. a zero-filled environment"},
    {"force", 0, NULL,
     "read a block device even while it is mounted read-write"},
    {"split", 0, "SIZE",
     "split the ranges on a SIZE grid (e.g. 1M), each with its own "
     "checksum, for delta copies over HTTP"},
    {0},
};

/* OFFSET:LENGTH, each a size (cli_parse_size). */
static int add_map(struct create_args *a, const char *arg)
{
	const char *colon = strchr(arg, ':');
	struct bmaptk_byte_range r;
	struct bmaptk_byte_range *grown;
	char off[64];

	if (!colon || (size_t)(colon - arg) >= sizeof(off)) {
		cli_error("--map %s: expected OFFSET:LENGTH in bytes (e.g. "
			  "4M:64K)",
			  arg);
		return -1;
	}
	memcpy(off, arg, (size_t)(colon - arg));
	off[colon - arg] = '\0';
	if (cli_parse_size(off, &r.off) || cli_parse_size(colon + 1, &r.len) ||
	    r.len == 0 || r.off + r.len < r.off) {
		cli_error("--map %s: expected OFFSET:LENGTH, two sizes with "
			  "an optional K, M or G and a non-zero length",
			  arg);
		return -1;
	}
	grown = realloc(a->maps, (a->nmaps + 1) * sizeof(*grown));
	if (!grown) {
		cli_error("out of memory");
		return -1;
	}
	a->maps = grown;
	a->maps[a->nmaps++] = r;
	return 0;
}

static int on_option(const struct cli_option *opt, const char *arg, void *ctx)
{
	struct create_args *a = ctx;

	if (!strcmp(opt->name, "output"))
		a->output = arg;
	else if (!strcmp(opt->name, "no-checksum"))
		a->no_checksum = 1;
	else if (!strcmp(opt->name, "scan-zeros"))
		a->scan_zeros = 1;
	else if (!strcmp(opt->name, "fs"))
		a->fs = 1;
	else if (!strcmp(opt->name, "force"))
		a->force = 1;
	else if (!strcmp(opt->name, "map"))
		return add_map(a, arg);
	else if (!strcmp(opt->name, "split")) {
		if (cli_parse_size(arg, &a->split) || !a->split ||
		    a->split % 4096) {
			cli_error("--split %s: expected a size that is a "
				  "multiple of 4 KiB (e.g. 1M)",
				  arg);
			return -1;
		}
	}
	return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A temporary file beside the output, renamed into place at the end, so
 * that a failed or interrupted create never leaves a partial bmap. A
 * symlink is followed, and an output that is not a regular file (a FIFO,
 * /dev/stdout) is written directly, never replaced. */
static int open_output(const char *output, char **tmp, char **final)
{
	struct stat st;
	size_t n;
	int fd;

	*tmp = NULL;
	*final = NULL;
	if (stat(output, &st) == 0 && !S_ISREG(st.st_mode))
		return open(output, O_WRONLY | O_CLOEXEC);
	*final = realpath(output, NULL);
	if (!*final && !(* final = strdup(output)))
		return -1;
	n = strlen(*final) + 16;
	if (!(*tmp = malloc(n)))
		return -1;
	snprintf(*tmp, n, "%s.XXXXXX", *final);
	fd = mkstemp(*tmp);
	if (fd < 0) {
		int e = errno;
		free(*tmp);
		*tmp = NULL;
		errno = e;
		return -1;
	}
	fchmod(fd, 0644);
	return fd;
}

/* -o must not replace the image, nor a file that is not a bmap (a typo
 * such as `create -o disk.img disk.img.bmap` would lose the image). */
static int refuse_output(const char *output, const char *image)
{
	struct stat so, si;

	if (stat(output, &so))
		return 0;
	if (S_ISBLK(so.st_mode)) {
		cli_error("%s: is a block device; refusing to write a bmap "
			  "over it",
			  output);
		return -1;
	}
	if (!S_ISREG(so.st_mode))
		return 0;
	if (!stat(image, &si) && si.st_dev == so.st_dev &&
	    si.st_ino == so.st_ino) {
		cli_error(
		    "%s: refusing to write the bmap over the image itself",
		    output);
		return -1;
	}
	if (so.st_size > 0 && !cli_looks_like_bmap(output)) {
		cli_error(
		    "%s: exists and is not a bmap; refusing to replace it "
		    "(remove it first if it should go)",
		    output);
		return -1;
	}
	return 0;
}

static int emit(const struct create_args *a, int fd, const char *tmp,
		const char *final, const struct bmaptk_bmap *b)
{
	size_t len;
	char *doc = bmaptk_bmap_format(b, &len);
	const char *where = a->output ? a->output : "stdout";
	int rc = 0;

	if (!doc) {
		cli_error("out of memory while writing the bmap");
		return BMAPTK_ERR_IO;
	}
	if (write_all(fd, doc, len) || (tmp && fsync(fd) < 0)) {
		cli_error("%s: write error: %s", where, strerror(errno));
		rc = BMAPTK_ERR_IO;
	} else if (tmp && rename(tmp, final) < 0) {
		cli_error("%s: cannot rename %s into place: %s", a->output, tmp,
			  strerror(errno));
		rc = BMAPTK_ERR_IO;
	}
	free(doc);
	return rc;
}

static void report(const char *image, const struct bmaptk_bmap *b, double t)
{
	char size[32], mapped[32];
	uint64_t m = bmaptk_bmap_mapped_bytes(b);

	cli_info(
	    "%s: %s, %s mapped in %zu ranges (%.1f%%), %.2f s", image,
	    human_size(b->image_size, size, sizeof(size)),
	    human_size(m, mapped, sizeof(mapped)), b->nranges,
	    b->image_size ? 100.0 * (double)m / (double)b->image_size : 0.0, t);
}

static int run(int argc, char **argv)
{
	struct create_args a = {0};
	struct bmaptk_create_opts opts = {0};
	struct bmaptk_error err = {0};
	struct bmaptk_bmap *b = NULL;
	struct bmaptk_layout *layout = NULL;
	struct cli_progress progress;
	const char *force = getenv("BMAPTK_FORCE_SEEK");
	char *tmp = NULL, *final = NULL;
	double t0 = cli_now();
	int first, fd = STDOUT_FILENO, rc;

	first = cli_parse(&cmd_create, argc, argv, on_option, &a);
	if (first < 0) {
		free(a.maps);
		return first == -2 ? 0 : BMAPTK_ERR_USAGE;
	}
	if (argc - first != 1) {
		cli_error(
		    "create: expected one IMAGE (see bmaptk create --help)");
		free(a.maps);
		return BMAPTK_ERR_USAGE;
	}
	if (a.output && refuse_output(a.output, argv[first])) {
		free(a.maps);
		return BMAPTK_ERR_USAGE;
	}
	/* Opening a FIFO output waits for its reader: a signal must end
	 * that wait too. */
	cli_catch_signals();
	/* Fail on an unwritable output before spending time hashing. */
	if (a.output && (fd = open_output(a.output, &tmp, &final)) < 0) {
		int e = errno;
		cli_error("%s: cannot write the bmap here: %s", a.output,
			  e == EINTR ? "interrupted" : strerror(e));
		free(final);
		free(a.maps);
		return e == EINTR ? BMAPTK_ERR_INTERRUPTED : BMAPTK_ERR_IO;
	}
	cli_progress_start(&progress, "hashing", NULL);
	opts.no_checksum = a.no_checksum;
	opts.scan_zeros = a.scan_zeros;
	opts.fs = a.fs;
	opts.force = a.force;
	opts.must_map = a.maps;
	opts.n_must_map = a.nmaps;
	opts.layout = &layout;
	opts.split = a.split;
	opts.reg = cli_registry();
	opts.force_seek = force && *force && strcmp(force, "0");
	opts.interrupted = &cli_interrupted;
	opts.progress.update = cli_progress_update;
	opts.progress.ctx = &progress;
	rc = bmaptk_create(argv[first], &opts, &b, &err);
	cli_progress_end(&progress);
	if (rc == BMAPTK_ERR_INTERRUPTED) {
		char done[32], total[32];
		cli_error(
		    "%s: interrupted after hashing %s of %s; no bmap written",
		    argv[first], human_size(progress.done, done, sizeof(done)),
		    human_size(progress.total, total, sizeof(total)));
	} else if (rc) {
		rc = cli_fail(&err);
	} else {
		rc = emit(&a, fd, tmp, final, b);
	}
	if (!rc && layout)
		report_layout(argv[first], layout, b, cli_now() - t0);
	else if (!rc)
		report(argv[first], b, cli_now() - t0);
	if (!rc && !a.scan_zeros && !a.fs && b->image_size > 64 * 4096 &&
	    b->mapped_blocks_count == b->blocks_count)
		cli_warn(
		    "%s: every block is mapped, so the bmap saves nothing; "
		    "if the image is not a sparse file, --scan-zeros "
		    "finds its empty blocks",
		    argv[first]);
	if (a.output) {
		close(fd);
		if (rc && tmp)
			unlink(tmp);
	}
	free(tmp);
	free(final);
	free(a.maps);
	bmaptk_layout_free(layout);
	bmaptk_bmap_free(b);
	return rc;
}

const struct cmd cmd_create = {
    .name = "create",
    .summary = "write the block map of a sparse image file",
    .usage = "[-o BMAP] [--no-checksum] [--scan-zeros] [--fs] "
	     "[--map OFFSET:LENGTH]... [--force] [--split SIZE] IMAGE",
    .description =
	"Finds the blocks of IMAGE that hold data (FIEMAP, or\n"
	"SEEK_DATA/SEEK_HOLE where FIEMAP is missing; set\n"
	"BMAPTK_FORCE_SEEK=1 to force the latter), hashes each range\n"
	"with SHA-256 on all cores and writes a bmap in format 2.0, as\n"
	"bmaptool create does. A 0-byte image gives a valid empty bmap.\n"
	"An Android sparse image (simg) is mapped by its chunks without\n"
	"expanding it. With --scan-zeros, IMAGE is read (and decoded\n"
	"if compressed) and all-zero blocks become holes: the bmap then\n"
	"equals that of the image made sparse (cp --sparse=always).\n"
	"With --fs, the bmap maps what the image's partition table\n"
	"(MBR with its EBRs, or both GPT copies) and its filesystems use:\n"
	"ext2/3/4 by their block bitmaps (libext2fs), FAT by its FAT,\n"
	"swap by its header; other partitions and the space outside\n"
	"them by the file's extents (by their non-zero blocks for a block\n"
	"device or with --scan-zeros). Blocks a filesystem uses are\n"
	"mapped even where the file has a hole, so they are written as\n"
	"zeros. IMAGE may be a block device (opened read-only) with --fs\n"
	"or --scan-zeros; one with a filesystem mounted read-write is\n"
	"refused unless --force.",
    .options = options,
    .run = run,
};
