/* archive plugin: tar and zip containers, and the compression filters
 * bmaptk does not build in (lz4, lzop, lzip, compress, lzma), read through
 * libarchive, except lzop, which lzop.c decodes with liblzo2.
 *
 * Two modules:
 * - "archive", a container (BMAPTK_CODEC_CONTAINER): tar and zip, whose
 *   image is the first regular file, as with bmaptool. The host probes what
 *   it yields again: disk.img.gz inside a tar is gunzipped by the built-in
 *   codec.
 * - "archive-filter", a compressor: a bare filter (disk.img.lz4) yields its
 *   decompressed bytes. After it, as after gzip, the host looks only for a
 *   container, with the probe below: a tar (its header checksum verified)
 *   or a zip inside lz4 is unpacked by "archive", anything else is the
 *   image. Left to libarchive, a filter and its tar reader in one archive
 *   object would take an image that starts with a zero block for an empty
 *   tar.
 *
 * No input makes the plugin run a program. libarchive falls back to
 * external programs (lrzip, grzip, lzop; lz4 or lzip when built without
 * their library) found through PATH: each archive object here is given
 * only the filter the head shows, and a filter whose support call answers
 * ARCHIVE_WARN ("will use an external program") is refused before
 * libarchive reads a byte.
 *
 * Probing checks magic bytes itself rather than opening the head with
 * libarchive, whose "raw" format accepts anything: plain disk images must
 * stay with the host. Both modules rank below the built-in codecs, so gzip,
 * xz, bzip2 and zstd never reach libarchive. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include <bmaptk/module.h>

#include "lzop.h"

#define IN_CHUNK (1u << 20)
/* Enough for every magic this plugin checks (tar: a 512-byte header). */
#define HEAD_LEN  512
#define MIN(a, b) ((a) < (b) ? (a) : (b))

struct ar_stream {
	struct bmaptk_stream base;
	struct bmaptk_stream *inner;
	struct archive *ar;
	unsigned char *in_buf;
	/* The inner stream's own error, kept whole: libarchive would only
	 * pass on its text. */
	struct bmaptk_error inner_err;
	int inner_failed;
	size_t pending;	  /* bytes at in_buf read before libarchive started */
	const char *what; /* the format the head showed, for messages */
};

/* ---- probing --------------------------------------------------------- */

static int magic(const unsigned char *head, size_t len, const char *bytes,
		 size_t n)
{
	return len >= n && !memcmp(head, bytes, n) ? (int)(8 * n) : 0;
}

static int bid_lz4(const unsigned char *head, size_t len)
{
	return magic(head, len, "\x04\x22\x4d\x18", 4);
}

static int bid_lz4_legacy(const unsigned char *head, size_t len)
{
	return magic(head, len, "\x02\x21\x4c\x18", 4);
}

static int bid_lzop(const unsigned char *head, size_t len)
{
	return magic(head, len, "\x89LZO\0\r\n\x1a\n", 9);
}

static int bid_lrzip(const unsigned char *head, size_t len)
{
	return magic(head, len, "LRZI", 4);
}

static int bid_grzip(const unsigned char *head, size_t len)
{
	return magic(head, len, "GRZipII\0\x02\x04", 10);
}

static int bid_lzip(const unsigned char *head, size_t len)
{
	/* "LZIP", then version 0 or 1. */
	return len >= 5 && magic(head, len, "LZIP", 4) && head[4] <= 1 ? 40 : 0;
}

static int bid_compress(const unsigned char *head, size_t len)
{
	/* 1f 9d, then flags: bits 0-4 the maximum code width (9-16), bits
	 * 5-6 reserved and zero. */
	if (len < 3 || !magic(head, len, "\x1f\x9d", 2) || (head[2] & 0x60) ||
	    (head[2] & 0x1f) < 9 || (head[2] & 0x1f) > 16)
		return 0;
	return 24;
}

static uint64_t le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = (v << 8) | p[n];
	return v;
}

static int bid_lzma(const unsigned char *head, size_t len)
{
	uint64_t dict, size;

	/* .lzma has no magic: check its 13-byte header for the values the
	 * lzma tools write. Properties lc=3 lp=0 pb=2; a dictionary of 2^n
	 * or 2^n + 2^(n-1) bytes; a size that is unknown (all ones) or
	 * plausible; and the range coder's first byte, always 0. */
	if (len < 14 || head[0] != 0x5d || head[13] != 0)
		return 0;
	dict = le(head + 1, 4);
	size = le(head + 5, 8);
	if (dict < 4096 ||
	    (dict != (dict & -dict) && dict != 3 * (dict & -dict)))
		return 0;
	if (size != UINT64_MAX && size >> 48)
		return 0;
	return 24;
}

static int bid_tar(const unsigned char *head, size_t len)
{
	unsigned long stored = 0, sum = 0;
	size_t i;

	/* POSIX ustar and GNU tar both write "ustar" at 257; the header
	 * checksum then rules out a disk image that happens to hold it. */
	if (len < 512 || memcmp(head + 257, "ustar", 5))
		return 0;
	for (i = 148; i < 156 && head[i] == ' '; i++)
		;
	for (; i < 156 && head[i] >= '0' && head[i] <= '7'; i++)
		stored = stored * 8 + (unsigned long)(head[i] - '0');
	for (i = 0; i < 512; i++)
		sum += i >= 148 && i < 156 ? ' ' : head[i];
	return sum == stored ? 64 : 0;
}

static int bid_zip(const unsigned char *head, size_t len)
{
	return magic(head, len, "PK\x03\x04", 4);
}

static int bid_7z(const unsigned char *head, size_t len)
{
	return magic(head, len, "7z\xbc\xaf\x27\x1c", 6);
}

/* The compression filters bmaptk does not build in, and the libarchive
 * call that enables each one alone (NULL: lzop, decoded by lzop.c). */
static const struct filter {
	const char *name;
	int (*bid)(const unsigned char *head, size_t len);
	int (*support)(struct archive *ar);
} filters[] = {
    {"lz4", bid_lz4, archive_read_support_filter_lz4},
    {"lz4", bid_lz4_legacy, archive_read_support_filter_lz4},
    {"lzop", bid_lzop, NULL},
    {"lzip", bid_lzip, archive_read_support_filter_lzip},
    {"compress", bid_compress, archive_read_support_filter_compress},
    {"lzma", bid_lzma, archive_read_support_filter_lzma},
    /* Only ever external programs in libarchive: claimed to be refused
     * in one line rather than copied as a raw image. */
    {"lrzip", bid_lrzip, archive_read_support_filter_lrzip},
    {"grzip", bid_grzip, archive_read_support_filter_grzip},
};

/* The archive formats. */
static const struct container {
	const char *name;
	int (*bid)(const unsigned char *head, size_t len);
} containers[] = {
    {"tar", bid_tar},
    {"zip", bid_zip},
    /* Claimed only to be refused clearly: see container_open(). */
    {"7z", bid_7z},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The filter the head shows, or NULL; *bits says how sure. */
static const struct filter *find_filter(const unsigned char *head, size_t len,
					int *bits)
{
	for (size_t i = 0; i < COUNT(filters); i++)
		if ((*bits = filters[i].bid(head, len)) > 0)
			return &filters[i];
	*bits = 0;
	return NULL;
}

static const struct container *find_container(const unsigned char *head,
					      size_t len, int *bits)
{
	for (size_t i = 0; i < COUNT(containers); i++)
		if ((*bits = containers[i].bid(head, len)) > 0)
			return &containers[i];
	*bits = 0;
	return NULL;
}

static int filter_probe(const unsigned char *head, size_t len)
{
	int bits;

	find_filter(head, len, &bits);
	return bits;
}

static int container_probe(const unsigned char *head, size_t len)
{
	int bits;

	find_container(head, len, &bits);
	return bits;
}

/* ---- reading through libarchive -------------------------------------- */

/* libarchive's read callback: the next chunk of the inner stream. */
static la_ssize_t pull(struct archive *ar, void *ctx, const void **buf)
{
	struct ar_stream *s = ctx;
	ssize_t n;

	*buf = s->in_buf;
	if (s->pending) {
		n = (ssize_t)s->pending;
		s->pending = 0;
		return n;
	}
	n = s->inner->ops->read(s->inner, s->in_buf, IN_CHUNK, &s->inner_err);
	if (n < 0) {
		s->inner_failed = 1;
		archive_set_error(
		    ar, s->inner_err.sys_errno ? s->inner_err.sys_errno : EIO,
		    "%s", s->inner_err.message);
		return -1;
	}
	return n;
}

/* Report the failure of a libarchive call: the inner stream's own error
 * if that is what failed, else libarchive's message. */
static int ar_fail(struct ar_stream *s, struct bmaptk_error *err)
{
	int e = archive_errno(s->ar);
	const char *msg = archive_error_string(s->ar);

	if (s->inner_failed) {
		*err = s->inner_err;
		return err->status;
	}
	/* Running out of memory or failing I/O is the machine's fault;
	 * anything else is a bad file. */
	return bmaptk_set_error(
	    err, e == ENOMEM || e == EIO ? BMAPTK_ERR_IO : BMAPTK_ERR_USAGE,
	    e > 0 ? e : 0, "%s: %s data: %s", s->base.name, s->what,
	    msg ? msg : "unknown libarchive error");
}

static ssize_t ar_read(struct bmaptk_stream *bs, void *buf, size_t len,
		       struct bmaptk_error *err)
{
	struct ar_stream *s = (struct ar_stream *)bs;
	la_ssize_t n = archive_read_data(s->ar, buf, len);

	if (n < 0)
		return ar_fail(s, err), -1;
	return n;
}

static void ar_close(struct bmaptk_stream *bs)
{
	struct ar_stream *s = (struct ar_stream *)bs;

	if (s->ar)
		archive_read_free(s->ar);
	s->inner->ops->close(s->inner);
	free(s->in_buf);
	free(s);
}

static const struct bmaptk_stream_ops ar_ops = {
    .read = ar_read,
    .skip = NULL, /* libarchive can only decode forward */
    .close = ar_close,
};

/* Advance to the first regular file; a filter alone yields one entry. */
static int first_file(struct ar_stream *s, int raw, struct bmaptk_error *err)
{
	struct archive_entry *entry;

	for (;;) {
		int rc = archive_read_next_header(s->ar, &entry);
		if (rc == ARCHIVE_EOF)
			return bmaptk_set_error(
			    err, BMAPTK_ERR_USAGE, 0,
			    "%s: no regular file in the %s archive",
			    s->base.name, s->what);
		if (rc < ARCHIVE_WARN)
			return ar_fail(s, err);
		if (archive_entry_filetype(entry) == AE_IFREG)
			break;
	}
	/* "raw" accepts any bytes: insist that the filter was really found. */
	if (raw && archive_filter_count(s->ar) < 2)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: not %s data that libarchive reads",
					s->base.name, s->what);
	if (!raw && archive_entry_size_is_set(entry))
		s->base.size = (uint64_t)archive_entry_size(entry);
	return 0;
}

/* Enable only what the head showed: filter f and the "raw" format, or
 * (f NULL) the tar and zip formats and no filter at all. */
static int setup(struct ar_stream *s, const struct filter *f,
		 struct bmaptk_error *err)
{
	int rc;

	if (!f) {
		if (archive_read_support_format_tar(s->ar) == ARCHIVE_OK &&
		    archive_read_support_format_zip_streamable(s->ar) ==
			ARCHIVE_OK)
			return 0;
	} else if ((rc = f->support(s->ar)) == ARCHIVE_WARN) {
		/* The filter is registered, but libarchive never runs: the
		 * object is freed unopened. */
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: no codec for %s data: this libarchive would run an "
		    "external program for it, which bmaptk never does",
		    s->base.name, f->name);
	} else if (rc == ARCHIVE_OK &&
		   archive_read_support_format_raw(s->ar) == ARCHIVE_OK) {
		return 0;
	}
	return bmaptk_set_error(err, BMAPTK_ERR_IO, 0,
				"%s: cannot set up libarchive: %s",
				s->base.name, archive_error_string(s->ar));
}

/* Read libarchive through filter f, or as an archive (f NULL). The head
 * was read from inner already: pull() hands it on first. */
static struct bmaptk_stream *ar_open(struct bmaptk_stream *inner,
				     const unsigned char *head, size_t len,
				     const char *what, const struct filter *f,
				     struct bmaptk_error *err)
{
	struct ar_stream *s = calloc(1, sizeof(*s));

	if (!s || !(s->in_buf = malloc(IN_CHUNK)) ||
	    !(s->ar = archive_read_new())) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
				 "%s: out of memory", inner->name);
		if (s)
			free(s->in_buf);
		free(s);
		inner->ops->close(inner);
		return NULL;
	}
	s->base.ops = &ar_ops;
	s->base.name = inner->name;
	s->base.size = BMAPTK_SIZE_UNKNOWN;
	s->base.format = what;
	s->inner = inner;
	s->what = what;
	memcpy(s->in_buf, head, len);
	s->pending = len;
	if (setup(s, f, err))
		goto fail;
	if (archive_read_open(s->ar, s, NULL, pull, NULL) != ARCHIVE_OK) {
		ar_fail(s, err);
		goto fail;
	}
	if (first_file(s, f != NULL, err))
		goto fail;
	return &s->base;
fail:
	ar_close(&s->base);
	return NULL;
}

/* Read the head again (the host replays it) to see what it is. */
static int read_head(struct bmaptk_stream *inner, unsigned char *head,
		     size_t *len, struct bmaptk_error *err)
{
	*len = 0;
	while (*len < HEAD_LEN) {
		ssize_t n =
		    inner->ops->read(inner, head + *len, HEAD_LEN - *len, err);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	return 0;
}

static struct bmaptk_stream *filter_open(struct bmaptk_stream *inner,
					 struct bmaptk_error *err)
{
	unsigned char head[HEAD_LEN];
	const struct filter *f;
	size_t len;
	int bits;

	if (read_head(inner, head, &len, err)) {
		inner->ops->close(inner);
		return NULL;
	}
	if (!(f = find_filter(head, len, &bits))) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s: not compressed data this plugin reads",
				 inner->name);
		inner->ops->close(inner);
		return NULL;
	}
	if (!f->support)
		return lzop_open(inner, head, len, err);
	return ar_open(inner, head, len, f->name, f, err);
}

static struct bmaptk_stream *container_open(struct bmaptk_stream *inner,
					    struct bmaptk_error *err)
{
	unsigned char head[HEAD_LEN];
	const struct container *c;
	size_t len;
	int bits;

	if (read_head(inner, head, &len, err)) {
		inner->ops->close(inner);
		return NULL;
	}
	c = find_container(head, len, &bits);
	/* 7z keeps its index at the end: libarchive would seek back, and a
	 * stream cannot. */
	if (!c || !strcmp(c->name, "7z")) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 c ? "%s: 7z archives cannot be read as a "
				     "stream; extract the image first"
				   : "%s: not an archive this plugin reads",
				 inner->name);
		inner->ops->close(inner);
		return NULL;
	}
	return ar_open(inner, head, len, c->name, NULL, err);
}

static const struct bmaptk_codec_module container_codec = {
    .probe = container_probe,
    .open = container_open,
    .flags = BMAPTK_CODEC_CONTAINER,
    .format = "archive",
};

static const struct bmaptk_codec_module filter_codec = {
    .probe = filter_probe,
    .open = filter_open,
    .flags = 0, /* a compressor: only a container may follow */
    .format = "archive-filter",
};

/* Both below the built-in codecs (100) and the lz4 example (50). */
static const struct bmaptk_module container_module = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_CODEC,
    .name = "archive",
    .description = "tar and zip archives via libarchive",
    .version = "2",
    .priority = 10,
    .u.codec = &container_codec,
};

static const struct bmaptk_module filter_module = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_CODEC,
    .name = "archive-filter",
    .description = "lz4, lzip, compress, lzma via libarchive; lzop via "
		   "liblzo2",
    .version = "2",
    .priority = 10,
    .u.codec = &filter_codec,
};

static const struct bmaptk_module *const archive_modules[] = {
    &container_module,
    &filter_module,
    NULL,
};

__attribute__((visibility("default"))) const struct bmaptk_module *const *
BMAPTK_PLUGIN_ENTRY(int host_abi)
{
	return host_abi == BMAPTK_ABI_VERSION ? archive_modules : NULL;
}
