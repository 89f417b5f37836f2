/* bmaptk pack IMAGE [-o OUT] [--bmap BMAP [--bmap-sig SIG]] [--chunk SIZE]
 * [-l LEVEL] [--no-sidecar]: a packed image (docs/pack.md) and its
 * sidecars, each written to a temporary file beside it and renamed into
 * place once all of them are complete. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "pack_format.h"
#include "pack_write.h"
#include "util.h"

#define SIG_MAX (1u << 20) /* a detached signature is a few hundred bytes */

struct pack_args {
	const char *output, *bmap, *sig;
	uint64_t chunk;
	int level;
	int no_sidecar;
};

static const struct cli_option options[] = {
    {"output", 'o', "OUT",
     "write the packed image to OUT (default: IMAGE.zst)"},
    {"bmap", 0, "BMAP",
     "pack the blocks BMAP maps (default: the image's data, as `bmaptk "
     "create` finds it)"},
    {"bmap-sig", 0, "SIG",
     "BMAP's detached OpenPGP signature, embedded; BMAP is then embedded "
     "byte for byte, so its ranges must lie inside chunks"},
    {"chunk", 0, "SIZE",
     "image bytes per zstd frame (default 1M; 64K to 256M, a multiple of "
     "4K)"},
    {"level", 'l', "LEVEL",
     "zstd compression level: 1 to 19, or negative for faster (default 3)"},
    {"no-sidecar", 0, NULL, "do not write OUT.bmap and OUT.bmap.asc"},
    {0},
};

static int on_option(const struct cli_option *opt, const char *arg, void *ctx)
{
	struct pack_args *a = ctx;
	char *end;
	long v;

	if (!strcmp(opt->name, "output")) {
		a->output = arg;
	} else if (!strcmp(opt->name, "bmap")) {
		a->bmap = arg;
	} else if (!strcmp(opt->name, "bmap-sig")) {
		a->sig = arg;
	} else if (!strcmp(opt->name, "no-sidecar")) {
		a->no_sidecar = 1;
	} else if (!strcmp(opt->name, "chunk")) {
		if (cli_parse_size(arg, &a->chunk) || a->chunk % 4096 ||
		    a->chunk < PACK_CHUNK_MIN || a->chunk > PACK_CHUNK_MAX) {
			cli_error("--chunk %s: expected a multiple of 4 KiB "
				  "from 64K to 256M (e.g. 1M)",
				  arg);
			return -1;
		}
	} else if (!strcmp(opt->name, "level")) {
		errno = 0;
		v = strtol(arg, &end, 10);
		if (errno || end == arg || *end || !pack_level_ok(v)) {
			cli_error("-l %s: expected a zstd level from 1 to 19, "
				  "or a negative one (faster)",
				  arg);
			return -1;
		}
		a->level = (int)v;
	}
	return 0;
}

/* ---- inputs ------------------------------------------------------------ */

struct input {
	const char *path;
	struct stat st;
	int known;
};

/* Everything a run holds. */
struct job {
	const struct pack_args *a;
	const char *image, *out;
	int fd; /* the image */
	uint64_t size;
	struct input in[3]; /* the image, BMAP, SIG: never written over */
	struct bmaptk_bmap *b;
	char *bmap_doc; /* BMAP's bytes, embedded as they are when signed */
	size_t bmap_len;
	char *sig;
	size_t sig_len;
	unsigned char *check; /* ranges whose digests BMAP vouches for */
};

static void input_stat(struct input *in, const char *path)
{
	in->path = path;
	in->known = path && !stat(path, &in->st);
}

/* The input path is, or NULL. */
static const char *same_as_input(const struct job *j, const char *path)
{
	struct stat st;

	if (stat(path, &st))
		return NULL;
	for (int i = 0; i < 3; i++)
		if (j->in[i].known && j->in[i].st.st_dev == st.st_dev &&
		    j->in[i].st.st_ino == st.st_ino)
			return j->in[i].path;
	return NULL;
}

static int read_head(const char *path, void *buf, size_t len, size_t *got)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	ssize_t n;

	*got = 0;
	if (fd < 0)
		return -1;
	n = pread_full(fd, buf, len, 0);
	close(fd);
	if (n < 0)
		return -1;
	*got = (size_t)n;
	return 0;
}

/* A zstd frame or a skippable one (a packed image starts with one). */
static int zstd_magic(const unsigned char *h, size_t len)
{
	uint32_t m;

	if (len < 4)
		return 0;
	m = pack_get32(h);
	return m == 0xFD2FB528u || (m & 0xFFFFFFF0u) == 0x184D2A50u;
}

static int looks_like_signature(const unsigned char *h, size_t len)
{
	static const char armor[] = "-----BEGIN PGP SIGNATURE-----";

	if (len >= sizeof(armor) - 1 && !memcmp(h, armor, sizeof(armor) - 1))
		return 1;
	return len > 0 && (h[0] & 0x80); /* a binary OpenPGP packet */
}

static int open_image(struct job *j)
{
	unsigned char head[4096];
	const char *like;
	ssize_t n;

	if (strstr(j->image, "://")) {
		cli_error("%s: pack reads a local file, not a URL (download it "
			  "first)",
			  j->image);
		return BMAPTK_ERR_USAGE;
	}
	/* O_NONBLOCK: a FIFO must be refused, not waited on. */
	j->fd = open(j->image, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (j->fd < 0) {
		int e = errno;
		cli_error("%s: cannot open: %s", j->image, strerror(e));
		return e == EACCES ? BMAPTK_ERR_IO : BMAPTK_ERR_USAGE;
	}
	if (fstat(j->fd, &j->in[0].st) < 0) {
		cli_error("%s: %s", j->image, strerror(errno));
		return BMAPTK_ERR_IO;
	}
	j->in[0].path = j->image;
	j->in[0].known = 1;
	if (S_ISBLK(j->in[0].st.st_mode) && !j->a->bmap) {
		cli_error("%s: a block device has no holes to map: make its "
			  "bmap with `bmaptk create --fs` and give it with "
			  "--bmap",
			  j->image);
		return BMAPTK_ERR_USAGE;
	}
	if (!S_ISBLK(j->in[0].st.st_mode) && !S_ISREG(j->in[0].st.st_mode)) {
		cli_error("%s: not a regular file or a block device: pack "
			  "reads an image at random",
			  j->image);
		return BMAPTK_ERR_USAGE;
	}
	if (S_ISBLK(j->in[0].st.st_mode)) {
		off_t end = lseek(j->fd, 0, SEEK_END);
		if (end < 0) {
			cli_error("%s: cannot tell its size: %s", j->image,
				  strerror(errno));
			return BMAPTK_ERR_IO;
		}
		j->size = (uint64_t)end;
	} else {
		j->size = (uint64_t)j->in[0].st.st_size;
	}
	n = pread_full(j->fd, head, sizeof(head), 0);
	if (n < 0) {
		cli_error("%s: read error: %s", j->image, strerror(errno));
		return BMAPTK_ERR_IO;
	}
	like = bmaptk_format_name(head, (size_t)n);
	if (!like && zstd_magic(head, (size_t)n))
		like = "zstd";
	if (like && !strcmp(like, "bmap")) {
		cli_error("%s: this is a bmap file, not an image", j->image);
		return BMAPTK_ERR_USAGE;
	}
	if (like) {
		cli_error("%s: the image is compressed (%s); pack packs a raw "
			  "image: decompress it first",
			  j->image, like);
		return BMAPTK_ERR_USAGE;
	}
	return 0;
}

/* ---- outputs ------------------------------------------------------------ */

/* A file written to a temporary beside it, renamed into place last. */
struct output {
	const char *name; /* as the user knows it */
	char *tmp, *final;
	int fd;
	int skip; /* it is the input itself, already what it would get */
};

/* Refuse to write path over an input, a block device, or a file that is
 * not what it would be replaced by (kind: 0 a packed image, 1 a bmap, 2 a
 * signature). Returns 0, 1 (skip: the input, identical), or -1. */
static int refuse_output(const struct job *j, const char *path, int kind)
{
	static const char *const what[] = {"a zstd file", "a bmap",
					   "an OpenPGP signature"};
	unsigned char head[4096];
	const char *input;
	struct stat st;
	size_t n;
	int ok;

	if (stat(path, &st))
		return 0;
	if (!S_ISREG(st.st_mode)) {
		cli_error("%s: exists and is not a regular file; refusing to "
			  "write %s over it",
			  path, kind ? "a sidecar" : "a packed image");
		return -1;
	}
	input = same_as_input(j, path);
	/* A signed bmap is embedded and written byte for byte: the inputs
	 * themselves are the sidecars they would be replaced by. */
	if (input && kind && j->a->sig &&
	    input == (kind == 1 ? j->a->bmap : j->a->sig))
		return 1;
	if (input) {
		cli_error("%s: is %s; refusing to write over it%s", path,
			  input == j->image	? "the image itself"
			  : input == j->a->bmap ? "the bmap being packed"
						: "the signature being packed",
			  kind ? " (use --no-sidecar, or another -o)" : "");
		return -1;
	}
	if (st.st_size == 0)
		return 0;
	if (read_head(path, head, sizeof(head), &n)) {
		cli_error("%s: %s", path, strerror(errno));
		return -1;
	}
	ok = kind == 0	 ? zstd_magic(head, n)
	     : kind == 1 ? bmaptk_looks_like_bmap(head, n)
			 : looks_like_signature(head, n);
	if (!ok) {
		cli_error("%s: exists and is not %s; refusing to replace it "
			  "(remove it first if it should go)",
			  path, what[kind]);
		return -1;
	}
	return 0;
}

static int open_output(struct output *o)
{
	struct stat st;
	size_t n;

	o->fd = -1;
	o->final = realpath(o->name, NULL);
	if (!o->final && !(o->final = strdup(o->name)))
		return -1;
	n = strlen(o->final) + 16;
	if (!(o->tmp = malloc(n)))
		return -1;
	snprintf(o->tmp, n, "%s.XXXXXX", o->final);
	o->fd = mkstemp(o->tmp);
	if (o->fd < 0) {
		free(o->tmp);
		o->tmp = NULL;
		return -1;
	}
	/* The mode a new file would get, or the replaced one's. */
	if (!stat(o->final, &st))
		fchmod(o->fd, st.st_mode & 07777);
	else
		fchmod(o->fd, 0644);
	return 0;
}

static int write_whole(struct output *o, const char *buf, size_t len)
{
	if (pwrite_full(o->fd, buf, len, 0)) {
		cli_error("%s: write error: %s", o->name, strerror(errno));
		return BMAPTK_ERR_IO;
	}
	return 0;
}

static void drop_output(struct output *o)
{
	if (o->fd >= 0)
		close(o->fd);
	if (o->tmp)
		unlink(o->tmp);
	free(o->tmp);
	free(o->final);
	o->fd = -1;
	o->tmp = o->final = NULL;
}

static int sync_output(struct output *o)
{
	if (o->skip)
		return 0;
	if (fsync(o->fd) < 0 || close(o->fd) < 0) {
		o->fd = -1;
		cli_error("%s: write error: %s", o->name, strerror(errno));
		return BMAPTK_ERR_IO;
	}
	o->fd = -1;
	return 0;
}

static int commit_output(struct output *o)
{
	char *dir;
	int dfd;

	if (o->skip)
		return 0;
	if (rename(o->tmp, o->final) < 0) {
		cli_error("%s: cannot rename %s into place: %s", o->name,
			  o->tmp, strerror(errno));
		return BMAPTK_ERR_IO;
	}
	free(o->tmp);
	o->tmp = NULL;
	/* The rename itself must last. */
	if ((dir = strdup(o->final))) {
		dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dir);
	}
	return 0;
}

/* ---- the bmap ------------------------------------------------------------ */

static const char *size_arg(uint64_t v, char *buf, size_t len)
{
	if (v % (1u << 20) == 0)
		snprintf(buf, len, "%lluM", (unsigned long long)(v >> 20));
	else
		snprintf(buf, len, "%lluK", (unsigned long long)(v >> 10));
	return buf;
}

/* Range j of a split bmap is a piece of a range that was split when it
 * continues across a chunk boundary into its neighbour. */
static int split_piece(const struct bmaptk_bmap *b, size_t j, uint64_t per)
{
	const struct bmaptk_range *r = b->ranges;

	return (j > 0 && r[j - 1].last + 1 == r[j].first &&
		r[j].first % per == 0) ||
	       (j + 1 < b->nranges && r[j].last + 1 == r[j + 1].first &&
		(r[j].last + 1) % per == 0);
}

/* BMAP split on the grid, its own digests kept where ranges stay whole
 * (to be checked against the image), or, signed, refused unless already
 * on the grid. */
static int fit_bmap(struct job *j)
{
	struct bmaptk_bmap *b = j->b;
	char grid[32];
	int had = b->range_digests && b->hash_type == BMAPTK_HASH_SHA256, rc;
	uint64_t per = j->a->chunk / b->block_size;

	size_arg(j->a->chunk, grid, sizeof(grid));
	if (j->a->sig && !had) {
		cli_error(
		    "%s: has no SHA-256 range checksums to embed; make it "
		    "with `bmaptk create --split %s`, then sign it",
		    j->a->bmap, grid);
		return BMAPTK_ERR_USAGE;
	}
	rc = bmaptk_bmap_split(b, j->a->chunk);
	if (rc < 0) {
		cli_error("%s: out of memory", j->a->bmap);
		return BMAPTK_ERR_IO;
	}
	if (rc > 0 && j->a->sig) {
		cli_error("%s: its ranges cross the %s grid; make it with "
			  "`bmaptk create --split %s`, then sign it",
			  j->a->bmap, grid, grid);
		return BMAPTK_ERR_USAGE;
	}
	if (j->a->sig || !had)
		return 0;
	if (!(j->check = calloc(b->nranges ? b->nranges : 1, 1))) {
		cli_error("%s: out of memory", j->a->bmap);
		return BMAPTK_ERR_IO;
	}
	for (size_t i = 0; i < b->nranges; i++)
		j->check[i] = !split_piece(b, i, per);
	return 0;
}

/* A missing input file is the user's mistake, not an I/O failure. */
static int fail_input(struct bmaptk_error *err)
{
	int rc = cli_fail(err);

	return err->sys_errno == ENOENT ? BMAPTK_ERR_USAGE : rc;
}

static int load_bmap(struct job *j)
{
	struct bmaptk_error err = {0};
	char a[32], b[32];
	int rc;

	rc = read_whole_file(j->a->bmap, BMAPTK_BMAP_MAX_FILE, &j->bmap_doc,
			     &j->bmap_len, &err);
	if (rc)
		return fail_input(&err);
	if (!strncmp(j->bmap_doc + strspn(j->bmap_doc, " \t\r\n"),
		     BMAPTK_CLEARSIGN_MARKER,
		     strlen(BMAPTK_CLEARSIGN_MARKER))) {
		cli_error("%s: is clearsigned; pack embeds a bmap and its "
			  "detached signature: give the plain bmap and "
			  "--bmap-sig",
			  j->a->bmap);
		return BMAPTK_ERR_USAGE;
	}
	rc = bmaptk_bmap_parse(j->bmap_doc, j->bmap_len, j->a->bmap, &j->b,
			       &err);
	if (rc)
		return cli_fail(&err);
	if (j->b->image_size != j->size) {
		cli_error("%s describes an image of %llu bytes (%s), %s has "
			  "%llu (%s)",
			  j->a->bmap, (unsigned long long)j->b->image_size,
			  human_size(j->b->image_size, a, sizeof(a)), j->image,
			  (unsigned long long)j->size,
			  human_size(j->size, b, sizeof(b)));
		return BMAPTK_ERR_USAGE;
	}
	if (j->a->chunk % j->b->block_size) {
		cli_error("--chunk %llu: not a multiple of %s's block size "
			  "(%u)",
			  (unsigned long long)j->a->chunk, j->a->bmap,
			  j->b->block_size);
		return BMAPTK_ERR_USAGE;
	}
	if (j->a->sig) {
		rc = read_whole_file(j->a->sig, SIG_MAX, &j->sig, &j->sig_len,
				     &err);
		if (rc)
			return fail_input(&err);
		if (!looks_like_signature((unsigned char *)j->sig,
					  j->sig_len)) {
			cli_error("%s: not an OpenPGP signature", j->a->sig);
			return BMAPTK_ERR_USAGE;
		}
	}
	return fit_bmap(j);
}

static int make_bmap(struct job *j)
{
	struct bmaptk_create_opts opts = {0};
	struct bmaptk_error err = {0};
	int rc;

	/* Mapped, split and not hashed: the packer hashes the very bytes it
	 * compresses. */
	opts.no_checksum = 1;
	opts.split = j->a->chunk;
	opts.interrupted = &cli_interrupted;
	rc = bmaptk_create(j->image, &opts, &j->b, &err);
	if (rc)
		return cli_fail(&err);
	if (j->b->image_size != j->size) {
		cli_error("%s: changed size while it was mapped", j->image);
		return BMAPTK_ERR_USAGE;
	}
	if (j->b->image_size > 64 * 4096 &&
	    j->b->mapped_blocks_count == j->b->blocks_count)
		cli_warn("%s: every block is mapped, so a copy writes them "
			 "all; if the image is not a sparse file, `bmaptk "
			 "create --scan-zeros` finds its empty blocks: pack "
			 "with that bmap (--bmap)",
			 j->image);
	return 0;
}

/* ---- the run ------------------------------------------------------------ */

static void report(const struct job *j, const struct pack_write_stats *st,
		   double t)
{
	char size[32], mapped[32], chunk[32], packed[32], ratio[32] = "";

	/* The ratio of the data packed: holes cost nothing either way. */
	if (st->mapped && st->packed)
		snprintf(ratio, sizeof(ratio), " (%.2f:1)",
			 (double)st->mapped / (double)st->packed);
	cli_info("packed %s into %s: %s image, %s mapped in %u chunks of %s, "
		 "%s%s, %.2f s",
		 j->image, j->out, human_size(j->size, size, sizeof(size)),
		 human_size(st->mapped, mapped, sizeof(mapped)),
		 st->data_chunks, human_size(j->a->chunk, chunk, sizeof(chunk)),
		 human_size(st->packed, packed, sizeof(packed)), ratio, t);
}

/* Signatures beside OUT.bmap that this run did not write sign something
 * else now. */
static void warn_stale(const struct job *j, const char *bmap_name)
{
	static const char *const ext[] = {".asc", ".sig"};

	for (int i = 0; i < 2; i++) {
		char *p = bmaptk_add_suffix(bmap_name, ext[i]);
		if (p && (!j->a->sig || i == 1) && !access(p, F_OK) &&
		    !same_as_input(j, p))
			cli_warn("%s: left from before, it does not sign the "
				 "new %s: remove it",
				 p, bmap_name);
		free(p);
	}
}

static int pack(struct job *j, struct output *outs, size_t nouts,
		struct pack_write_stats *st)
{
	struct pack_write_opts o = {
	    .chunk_size = (uint32_t)j->a->chunk,
	    .level = j->a->level,
	    .check = j->check,
	    .bmap_name = j->a->bmap ? j->a->bmap : "the bmap",
	    .interrupted = &cli_interrupted,
	};
	struct bmaptk_error err = {0};
	struct cli_progress progress;
	char *doc = NULL, done[32], total[32];
	size_t len = 0;
	int rc;

	if (j->a->sig) {
		o.bmap_doc = j->bmap_doc;
		o.bmap_len = j->bmap_len;
		o.sig = j->sig;
		o.sig_len = j->sig_len;
	}
	cli_progress_start(&progress, "packing", NULL);
	o.progress.update = cli_progress_update;
	o.progress.ctx = &progress;
	rc = pack_write(j->fd, j->image, outs[0].fd, j->out, j->b, &o, &doc,
			&len, st, &err);
	cli_progress_end(&progress);
	cli_debug("pack: %u workers, %u chunks in flight, level %d",
		  st->threads, st->slots, j->a->level);
	if (rc == BMAPTK_ERR_INTERRUPTED) {
		cli_error("%s: interrupted after packing %s of %s; no %s "
			  "written",
			  j->image,
			  human_size(progress.done, done, sizeof(done)),
			  human_size(st->mapped, total, sizeof(total)), j->out);
		return rc;
	}
	if (rc)
		return cli_fail(&err);
	if (nouts > 1 && !outs[1].skip)
		rc = write_whole(&outs[1], doc, len);
	if (!rc && nouts > 2 && !outs[2].skip)
		rc = write_whole(&outs[2], j->sig, j->sig_len);
	free(doc);
	for (size_t i = 0; i < nouts && !rc; i++)
		rc = sync_output(&outs[i]);
	if (!rc && cli_interrupted) {
		cli_error("%s: interrupted; no %s written", j->image, j->out);
		return BMAPTK_ERR_INTERRUPTED;
	}
	/* The sidecars first: OUT appears last, once all is in place. */
	for (size_t i = nouts; i-- > 0 && !rc;)
		rc = commit_output(&outs[i]);
	return rc;
}

static int prepare_outputs(struct job *j, struct output *outs, size_t *nouts)
{
	int r;

	outs[0].name = j->out;
	*nouts = 1;
	if (!j->a->no_sidecar) {
		outs[1].name = bmaptk_add_suffix(j->out, ".bmap");
		*nouts = 2;
		if (outs[1].name && j->a->sig) {
			outs[2].name = bmaptk_add_suffix(outs[1].name, ".asc");
			*nouts = 3;
		}
	}
	for (size_t i = 0; i < *nouts; i++) {
		if (!outs[i].name) {
			cli_error("out of memory");
			return BMAPTK_ERR_IO;
		}
		r = refuse_output(j, outs[i].name, (int)i);
		if (r < 0)
			return BMAPTK_ERR_USAGE;
		outs[i].skip = r;
	}
	for (size_t i = 0; i < *nouts; i++) {
		if (outs[i].skip)
			continue;
		if (open_output(&outs[i])) {
			int e = errno;
			cli_error("%s: cannot write here: %s", outs[i].name,
				  strerror(e));
			return BMAPTK_ERR_IO;
		}
	}
	return 0;
}

static int run_job(struct job *j)
{
	struct output outs[3] = {{.fd = -1}, {.fd = -1}, {.fd = -1}};
	struct pack_write_stats st = {0};
	double t0 = cli_now();
	size_t nouts = 0;
	int rc;

	rc = open_image(j);
	if (!rc) {
		input_stat(&j->in[1], j->a->bmap);
		input_stat(&j->in[2], j->a->sig);
		rc = prepare_outputs(j, outs, &nouts);
	}
	if (!rc)
		rc = j->a->bmap ? load_bmap(j) : make_bmap(j);
	if (!rc && cli_interrupted) {
		cli_error("%s: interrupted; no %s written", j->image, j->out);
		rc = BMAPTK_ERR_INTERRUPTED;
	}
	if (!rc)
		rc = pack(j, outs, nouts, &st);
	if (!rc) {
		report(j, &st, cli_now() - t0);
		if (nouts > 1)
			warn_stale(j, outs[1].name);
	}
	for (size_t i = 0; i < nouts; i++) {
		drop_output(&outs[i]);
		if (i)
			free((char *)outs[i].name);
	}
	return rc;
}

static int run(int argc, char **argv)
{
	struct pack_args a = {.chunk = PACK_CHUNK_DEFAULT, .level = 3};
	struct job j = {.a = &a, .fd = -1};
	char *out = NULL;
	int first, rc;

	first = cli_parse(&cmd_pack, argc, argv, on_option, &a);
	if (first < 0)
		return first == -2 ? 0 : BMAPTK_ERR_USAGE;
	if (argc - first != 1) {
		cli_error("pack: expected one IMAGE (see bmaptk pack --help)");
		return BMAPTK_ERR_USAGE;
	}
	if (a.sig && !a.bmap) {
		cli_error("pack: --bmap-sig needs --bmap: the signature is of "
			  "that file's bytes");
		return BMAPTK_ERR_USAGE;
	}
	j.image = argv[first];
	if (!a.output && !(out = bmaptk_add_suffix(j.image, ".zst"))) {
		cli_error("out of memory");
		return BMAPTK_ERR_IO;
	}
	j.out = a.output ? a.output : out;
	cli_catch_signals();
	rc = run_job(&j);
	if (j.fd >= 0)
		close(j.fd);
	bmaptk_bmap_free(j.b);
	free(j.bmap_doc);
	free(j.sig);
	free(j.check);
	free(out);
	return rc;
}

const struct cmd cmd_pack = {
    .name = "pack",
    .summary = "write a seekable zstd image that carries its bmap",
    .usage = "[-o OUT] [--bmap BMAP [--bmap-sig SIG]] [--chunk SIZE] "
	     "[-l LEVEL] [--no-sidecar] IMAGE",
    .description =
	"Packs the raw IMAGE (a sparse file, or with --bmap any file or\n"
	"block device) into OUT (default IMAGE.zst): a zstd file in\n"
	"zstd's seekable format, one frame per chunk of the image, that\n"
	"carries the bmap and its signature in a skippable frame\n"
	"(docs/pack.md). Any zstd decoder gives back the image, with\n"
	"its unmapped blocks as zeros; bmaptk copy decodes only the\n"
	"chunks that hold data, on all cores. The bmap is split on the\n"
	"chunk grid and each range hashed (SHA-256) from the bytes\n"
	"packed; it is also written as OUT.bmap (and its signature as\n"
	"OUT.bmap.asc) for bmaptool, unless --no-sidecar. A signed bmap\n"
	"is embedded byte for byte: make it with `bmaptk create --split\n"
	"CHUNK` (the same chunk size), sign it, and give both with\n"
	"--bmap and --bmap-sig. OUT and its sidecars appear complete or\n"
	"not at all.",
    .options = options,
    .run = run,
};
