/* archive plugin: tar and zip containers, and the compression filters
 * bmaptk does not build in (lz4, lzop, lzip, compress, lzma, lrzip, grzip),
 * all read through libarchive.
 *
 * The image is the first regular file of a tar or zip archive, as with
 * bmaptool; a bare filter (disk.img.lz4) yields its decompressed bytes. The
 * module is a container (BMAPTK_CODEC_CONTAINER), so the host probes what it
 * yields again: disk.img.gz inside a tar is gunzipped by the built-in codec.
 *
 * Probing checks magic bytes itself rather than opening the head with
 * libarchive, which would start external programs (lzop, lrzip) just to
 * look, and whose "raw" format accepts anything: plain disk images must stay
 * with the host. Its priority is below the built-in
 * codecs, so gzip, xz, bzip2 and zstd never reach libarchive. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include <bmaptk/module.h>

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
	size_t pending;	   /* bytes at in_buf read before libarchive started */
	const char *guess; /* the format the head showed, for messages */
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

/* Filters libarchive reads and bmaptk does not build in, then formats. */
static const struct format {
	const char *name;
	int (*bid)(const unsigned char *head, size_t len);
} formats[] = {
    {"lz4", bid_lz4},
    {"lz4", bid_lz4_legacy},
    {"lzop", bid_lzop},
    {"lzip", bid_lzip},
    {"compress", bid_compress},
    {"lzma", bid_lzma},
    {"lrzip", bid_lrzip},
    {"grzip", bid_grzip},
    {"tar", bid_tar},
    {"zip", bid_zip},
    /* Claimed only to be refused clearly: see start(). */
    {"7z", bid_7z},
};

/* The format the head shows, or NULL; *bits says how sure. */
static const char *identify(const unsigned char *head, size_t len, int *bits)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if ((*bits = formats[i].bid(head, len)) > 0)
			return formats[i].name;
	*bits = 0;
	return NULL;
}

static int archive_probe(const unsigned char *head, size_t len)
{
	int bits;

	identify(head, len, &bits);
	return bits;
}

/* ---- reading --------------------------------------------------------- */

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

/* What libarchive has recognised so far, outermost first, for messages:
 * "lzop", "lz4+tar", "zip". */
static const char *describe(struct ar_stream *s, char *buf, size_t size)
{
	struct archive *ar = s->ar;
	int format = archive_format(ar) & ARCHIVE_FORMAT_BASE_MASK;
	size_t used = 0;

	buf[0] = '\0';
	/* Filter 0 is the innermost; the last one is the client ("none"). */
	for (int i = archive_filter_count(ar) - 2; i >= 0; i--)
		used += (size_t)snprintf(buf + used, size - MIN(used, size),
					 "%s%s", used ? "+" : "",
					 archive_filter_name(ar, i));
	if (format == ARCHIVE_FORMAT_TAR || format == ARCHIVE_FORMAT_ZIP)
		snprintf(buf + MIN(used, size), size - MIN(used, size), "%s%s",
			 used ? "+" : "",
			 format == ARCHIVE_FORMAT_TAR ? "tar" : "zip");
	return buf[0] ? buf : s->guess;
}

/* Report the failure of a libarchive call: the inner stream's own error
 * if that is what failed, else libarchive's message. */
static int ar_fail(struct ar_stream *s, struct bmaptk_error *err)
{
	int e = archive_errno(s->ar);
	const char *msg = archive_error_string(s->ar);
	char what[64];

	if (s->inner_failed) {
		*err = s->inner_err;
		return err->status;
	}
	/* Running out of memory or failing to run an external decoder is
	 * the machine's fault; anything else is a bad file. */
	return bmaptk_set_error(
	    err, e == ENOMEM || e == EIO ? BMAPTK_ERR_IO : BMAPTK_ERR_USAGE,
	    e > 0 ? e : 0, "%s: %s data: %s", s->base.name,
	    describe(s, what, sizeof(what)),
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

/* Advance to the first regular file; filters alone yield one entry. */
static int first_file(struct ar_stream *s, struct bmaptk_error *err)
{
	struct archive_entry *entry;
	char what[64];

	for (;;) {
		int rc = archive_read_next_header(s->ar, &entry);
		if (rc == ARCHIVE_EOF)
			return bmaptk_set_error(
			    err, BMAPTK_ERR_USAGE, 0,
			    "%s: no regular file in the %s archive",
			    s->base.name, describe(s, what, sizeof(what)));
		if (rc < ARCHIVE_WARN)
			return ar_fail(s, err);
		if (archive_entry_filetype(entry) == AE_IFREG)
			break;
	}
	/* "raw" accepts any bytes: insist that a filter was really found. */
	if (archive_format(s->ar) == ARCHIVE_FORMAT_RAW &&
	    archive_filter_count(s->ar) < 2)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: neither an archive nor compressed "
					"data libarchive reads",
					s->base.name);
	if (archive_format(s->ar) != ARCHIVE_FORMAT_RAW &&
	    archive_entry_size_is_set(entry))
		s->base.size = (uint64_t)archive_entry_size(entry);
	return 0;
}

/* Read the head again (the host replays it) to name the format in
 * messages before libarchive has; pull() hands it on to libarchive. */
static int read_head(struct ar_stream *s, struct bmaptk_error *err)
{
	int bits;

	while (s->pending < HEAD_LEN) {
		ssize_t n =
		    s->inner->ops->read(s->inner, s->in_buf + s->pending,
					HEAD_LEN - s->pending, err);
		if (n < 0)
			return err->status ? err->status : BMAPTK_ERR_IO;
		if (n == 0)
			break;
		s->pending += (size_t)n;
	}
	s->guess = identify(s->in_buf, s->pending, &bits);
	if (!s->guess)
		s->guess = "archive";
	return 0;
}

static int start(struct ar_stream *s, struct bmaptk_error *err)
{
	if (read_head(s, err))
		return err->status;
	/* 7z keeps its index at the end: libarchive would seek back, and a
	 * stream cannot. */
	if (!strcmp(s->guess, "7z"))
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: 7z archives cannot be read as a "
					"stream; extract the image first",
					s->base.name);
	/* Every filter, and the formats: tar, zip without seeking, and raw
	 * for a bare filter. ARCHIVE_WARN only says a filter will run an
	 * external program. */
	if (archive_read_support_filter_all(s->ar) < ARCHIVE_WARN ||
	    archive_read_support_format_tar(s->ar) != ARCHIVE_OK ||
	    archive_read_support_format_zip_streamable(s->ar) != ARCHIVE_OK ||
	    archive_read_support_format_raw(s->ar) != ARCHIVE_OK)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_IO, 0, "%s: cannot set up libarchive: %s",
		    s->base.name, archive_error_string(s->ar));
	if (archive_read_open(s->ar, s, NULL, pull, NULL) != ARCHIVE_OK)
		return ar_fail(s, err);
	return first_file(s, err);
}

static struct bmaptk_stream *archive_open(struct bmaptk_stream *inner,
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
	s->inner = inner;
	if (start(s, err)) {
		ar_close(&s->base);
		return NULL;
	}
	return &s->base;
}

static const struct bmaptk_codec_module archive_codec = {
    .probe = archive_probe,
    .open = archive_open,
    .flags = BMAPTK_CODEC_CONTAINER,
    .format = "archive",
};

static const struct bmaptk_module archive_module = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_CODEC,
    .name = "archive",
    .description = "tar, zip, lz4, lzop, lzip, compress, lzma via libarchive",
    .version = "1",
    /* Below the built-in codecs (100) and the lz4 example (50). */
    .priority = 10,
    .u.codec = &archive_codec,
};

static const struct bmaptk_module *const archive_modules[] = {
    &archive_module,
    NULL,
};

__attribute__((visibility("default"))) const struct bmaptk_module *const *
BMAPTK_PLUGIN_ENTRY(int host_abi)
{
	return host_abi == BMAPTK_ABI_VERSION ? archive_modules : NULL;
}
