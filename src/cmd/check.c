/* bmaptk check [--bmap BMAP] IMAGE-or-BMAP DEST: does DEST hold the image?
 * Every bad range is reported, not only the first. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "events.h"
#include "util.h"

struct check_args {
	const char *bmap;
	int cached;
};

static const struct cli_option options[] = {
    {"bmap", 0, "BMAP",
     "the bmap file (default: the first operand if it "
     "is one, else found next to the image)"},
    {"cached", 0, NULL,
     "allow reads from the page cache (faster, proves "
     "less)"},
    {0},
};

static int on_option(const struct cli_option *opt, const char *arg, void *ctx)
{
	struct check_args *a = ctx;

	if (!strcmp(opt->name, "bmap"))
		a->bmap = arg;
	else if (!strcmp(opt->name, "cached"))
		a->cached = 1;
	return 0;
}

struct check_run {
	const char *dest;
	size_t *bad; /* indexes of bad ranges */
	size_t nbad;
};

static void report_bad(void *ctx, const struct bmaptk_bmap *b, size_t index,
		       const unsigned char *got)
{
	struct check_run *run = ctx;
	const struct bmaptk_range *r = &b->ranges[index];
	size_t dlen = bmaptk_hash_size(b->hash_type);
	char want_hex[2 * BMAPTK_HASH_MAX + 1],
	    got_hex[2 * BMAPTK_HASH_MAX + 1];
	size_t *grown = realloc(run->bad, (run->nbad + 1) * sizeof(*grown));
	uint64_t off, len;

	if (grown) {
		run->bad = grown;
		run->bad[run->nbad++] = index;
	}
	bmaptk_range_span(b, r, &off, &len);
	bmaptk_hex(r->digest, dlen, want_hex);
	bmaptk_hex(got, dlen, got_hex);
	if (cli.json) {
		json_t *f = json_object();
		json_object_set_new(f, "dest", ev_string(run->dest));
		json_object_set_new(f, "first_block",
				    json_integer((json_int_t)r->first));
		json_object_set_new(f, "last_block",
				    json_integer((json_int_t)r->last));
		json_object_set_new(f, "offset", json_integer((json_int_t)off));
		json_object_set_new(f, "length", json_integer((json_int_t)len));
		json_object_set_new(f, "expected", json_string(want_hex));
		json_object_set_new(f, "actual", json_string(got_hex));
		ev_emit("range", f);
		return;
	}
	cli_error("%s: bad range: blocks %llu-%llu (bytes %llu-%llu): expected "
		  "%s %s, got %s",
		  run->dest, (unsigned long long)r->first,
		  (unsigned long long)r->last, (unsigned long long)off,
		  (unsigned long long)(off + len - 1),
		  bmaptk_hash_name(b->hash_type), want_hex, got_hex);
}

int cli_run_check(const struct bmaptk_bmap *b, const char *dest, int cached,
		  size_t **bad, size_t *nbad)
{
	struct check_run run = {.dest = dest};
	struct bmaptk_check_opts opts = {.cached = cached,
					 .interrupted = &cli_interrupted,
					 .bad_range = report_bad,
					 .ctx = &run};
	struct bmaptk_check_stats st = {0};
	struct bmaptk_error err = {0};
	struct cli_progress progress;
	char bytes[32], rate[32];
	int rc;

	cli_progress_start(&progress, "checking", NULL);
	opts.progress.update = cli_progress_update;
	opts.progress.ctx = &progress;
	rc = bmaptk_check(b, dest, &opts, &st, &err);
	cli_progress_end(&progress);
	if (bad) {
		*bad = run.bad;
		*nbad = run.nbad;
	} else {
		free(run.bad);
	}
	if (rc && rc != BMAPTK_ERR_VERIFY)
		return cli_fail(&err);
	cli_info(
	    "%s: %zu of %zu ranges verified, %zu bad (%s read%s in %.2f s, "
	    "%s/s)",
	    dest, st.ranges - st.bad, st.ranges, st.bad,
	    human_size(st.bytes, bytes, sizeof(bytes)),
	    st.direct ? " from the medium" : "", st.seconds,
	    human_size((uint64_t)((double)st.bytes /
				  (st.seconds > 0 ? st.seconds : 1e-9)),
		       rate, sizeof(rate)));
	if (rc)
		ev_note_error(err.message);
	return rc;
}

/* A bmap is recognised by its first bytes. Only a regular file is read
 * here: a pipe, FIFO or device would lose what was read (it is the
 * image's stream that tells those apart). */
int cli_looks_like_bmap(const char *path)
{
	char head[4096];
	struct stat st;
	ssize_t n;
	int fd;

	if (stat(path, &st) || !S_ISREG(st.st_mode))
		return 0;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
		? pread(fd, head, sizeof(head), 0)
		: -1;
	close(fd);
	return n > 0 && bmaptk_looks_like_bmap(head, (size_t)n);
}

/* The compressor whose magic a regular file DEST starts with, or NULL. A
 * file of the image's size is taken for a medium: the image itself may
 * start with such bytes. */
static const char *compressed_dest(const char *path, uint64_t image_size)
{
	static const struct {
		const char *name;
		size_t len;
		unsigned char magic[6];
	} magics[] = {
	    {"gzip", 3, {0x1f, 0x8b, 0x08}},
	    {"xz", 6, {0xfd, '7', 'z', 'X', 'Z', 0x00}},
	    {"bzip2", 3, {'B', 'Z', 'h'}},
	    {"zstd", 4, {0x28, 0xb5, 0x2f, 0xfd}},
	};
	unsigned char head[8];
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    (uint64_t)st.st_size != image_size
		? pread(fd, head, sizeof(head), 0)
		: -1;
	close(fd);
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++)
		if (n >= (ssize_t)magics[i].len &&
		    !memcmp(head, magics[i].magic, magics[i].len) &&
		    (strcmp(magics[i].name, "bzip2") ||
		     (n > 3 && head[3] >= '1' && head[3] <= '9')))
			return magics[i].name;
	return NULL;
}

static int run(int argc, char **argv)
{
	struct check_args a = {0};
	struct bmaptk_error err = {0};
	struct bmaptk_bmap *bmap = NULL;
	char *bmap_path = NULL;
	const char *bmap_opt, *packed;
	int first, rc;

	first = cli_parse(&cmd_check, argc, argv, on_option, &a);
	if (first < 0)
		return first == -2 ? 0 : BMAPTK_ERR_USAGE;
	if (cli.source.insecure)
		cli_warn("--insecure: TLS certificates are not verified");
	if (argc - first != 2) {
		cli_error("check: expected IMAGE-or-BMAP and DEST (see bmaptk "
			  "check --help)");
		return BMAPTK_ERR_USAGE;
	}
	if (!cli_registry()) {
		cli_error("out of memory");
		return BMAPTK_ERR_IO;
	}
	cli_catch_signals();
	bmap_opt = a.bmap			      ? a.bmap
		   : cli_looks_like_bmap(argv[first]) ? argv[first]
						      : NULL;
	rc = cli_load_bmap(bmap_opt, argv[first], 0, &bmap, &bmap_path, &err);
	if (rc) {
		free(bmap_path);
		return cli_fail(&err);
	}
	packed = compressed_dest(argv[first + 1], bmap->image_size);
	if (packed) {
		cli_error("%s (%s): DEST is a compressed image, not a medium; "
			  "`bmaptk copy IMAGE /dev/null` verifies an image",
			  argv[first + 1], packed);
		bmaptk_bmap_free(bmap);
		free(bmap_path);
		return BMAPTK_ERR_USAGE;
	}
	cli_describe_bmap(bmap, bmap_path);
	rc = cli_run_check(bmap, argv[first + 1], a.cached, NULL, NULL);
	bmaptk_bmap_free(bmap);
	free(bmap_path);
	return rc;
}

const struct cmd cmd_check = {
    .name = "check",
    .summary = "verify that a medium holds an image",
    .usage = "[--bmap BMAP] [--cached] IMAGE-or-BMAP DEST",
    .description =
	"Reads every mapped range of DEST and compares it with the\n"
	"bmap's checksums, bypassing the page cache (O_DIRECT, or the\n"
	"cache dropped first) so the medium itself is read. Reports\n"
	"every bad range and ends with \"N of M ranges verified, K bad\".\n"
	"The bmap is given with --bmap, as the first operand, or found\n"
	"next to IMAGE as copy finds it. Exit 1 when any range is bad.",
    .options = options,
    .reads_images = 1,
    .run = run,
};
