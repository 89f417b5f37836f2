/* bzip2 codec: single, concatenated (pbzip2, cat) and many-block (lbzip2)
 * streams. Blocks are decoded in parallel, one worker per CPU
 * (bzip2_mt.c). BMAPTK_BZIP2_THREADS=N sets the number of workers; 0
 * streams through plain libbz2 on the caller's thread instead (the
 * reference the tests compare against). */
#include <bzlib.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bmaptk/module.h>

#include "bzip2_bits.h"
#include "bzip2_mt.h"
#include "util.h"

#define SEQ_READ_SIZE (1u << 20)

static int probe(const unsigned char *head, size_t len)
{
	uint64_t magic = 0;

	if (len < 4 || memcmp(head, "BZh", 3) || head[3] < '1' || head[3] > '9')
		return 0;
	if (len < 10) /* a cut-off file: claim it to report it */
		return 32;
	for (int i = 4; i < 10; i++)
		magic = magic << 8 | head[i];
	if (magic != BZIP2_BLOCK_MAGIC && magic != BZIP2_EOS_MAGIC)
		return 0;
	return 80;
}

/* ---- streaming with libbz2 on one thread -------------------------------- */

struct bz2seq {
	struct bmaptk_stream base;
	struct bmaptk_stream *inner;
	bz_stream z;
	int z_live; /* inside a stream */
	unsigned char *in;
	uint64_t in_off; /* compressed offset of in[0] */
	int in_eof;
	unsigned nstreams;
	int at_end, failed;
	struct bmaptk_error saved;
};

static uint64_t seq_offset(const struct bz2seq *s)
{
	return s->in_off + (uint64_t)((unsigned char *)s->z.next_in - s->in);
}

/* Move unread input to the front and read more. */
static int seq_refill(struct bz2seq *s)
{
	size_t keep = s->z.avail_in;
	ssize_t n;

	s->in_off = seq_offset(s);
	memmove(s->in, s->z.next_in, keep);
	s->z.next_in = (char *)s->in;
	n = stream_read_full(s->inner, s->in + keep, SEQ_READ_SIZE - keep,
			     &s->saved);
	if (n < 0)
		return -1;
	if ((size_t)n < SEQ_READ_SIZE - keep)
		s->in_eof = 1;
	s->z.avail_in = (unsigned)(keep + (size_t)n);
	return 0;
}

static int seq_corrupt(struct bz2seq *s, const char *why)
{
	return bmaptk_set_error(&s->saved, BMAPTK_ERR_USAGE, 0,
				BZIP2_CORRUPT_FMT " (%s)", s->base.name,
				(unsigned long long)seq_offset(s), why);
}

/* Between streams: start the next one, or find the clean end (nothing or
 * only zero bytes left). Returns 0, 1 at the end, -1 on error. */
static int seq_next_stream(struct bz2seq *s)
{
	while (s->z.avail_in < 4 && !s->in_eof)
		if (seq_refill(s))
			return -1;
	if (s->z.avail_in == 0 && s->nstreams)
		return 1;
	if (s->z.avail_in < 4 && !memcmp(s->z.next_in, "BZh", s->z.avail_in))
		return bmaptk_set_error(
			   &s->saved, BMAPTK_ERR_USAGE, 0, BZIP2_TRUNCATED_FMT,
			   s->base.name,
			   (unsigned long long)(seq_offset(s) + s->z.avail_in)),
		       -1;
	if (s->z.avail_in < 4 || memcmp(s->z.next_in, "BZh", 3)) {
		if (!s->nstreams)
			return seq_corrupt(s, "not bzip2 data"), -1;
		for (;;) {
			for (unsigned i = 0; i < s->z.avail_in; i++)
				if (s->z.next_in[i])
					return seq_corrupt(s,
							   "garbage after the "
							   "last stream"),
					       -1;
			s->z.next_in += s->z.avail_in;
			s->z.avail_in = 0;
			if (s->in_eof)
				return 1;
			if (seq_refill(s))
				return -1;
		}
	}
	if (BZ2_bzDecompressInit(&s->z, 0, 0) != BZ_OK)
		return bmaptk_set_error(&s->saved, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory", s->base.name),
		       -1;
	s->z_live = 1;
	s->nstreams++;
	return 0;
}

/* One libbz2 call, or the step to the next stream. Counts output in
 * *done; returns 0, 1 at the end of the data, -1 on error. */
static int seq_step(struct bz2seq *s, char *buf, size_t len, size_t *done)
{
	unsigned room = (unsigned)MIN(len - *done, (size_t)1 << 30);
	int ret;

	if (!s->z_live)
		return seq_next_stream(s);
	if (!s->z.avail_in && !s->in_eof && seq_refill(s))
		return -1;
	s->z.next_out = buf + *done;
	s->z.avail_out = room;
	ret = BZ2_bzDecompress(&s->z);
	*done += room - s->z.avail_out;
	if (ret == BZ_STREAM_END) {
		BZ2_bzDecompressEnd(&s->z);
		s->z_live = 0;
		return 0;
	}
	if (ret != BZ_OK)
		return seq_corrupt(s, ret == BZ_DATA_ERROR_MAGIC
					  ? "bad header"
					  : "bad block or CRC"),
		       -1;
	if (!s->z.avail_in && s->in_eof && s->z.avail_out == room)
		return bmaptk_set_error(&s->saved, BMAPTK_ERR_USAGE, 0,
					BZIP2_TRUNCATED_FMT, s->base.name,
					(unsigned long long)seq_offset(s)),
		       -1;
	return 0;
}

/* Bytes decoded before an error are returned first; the error comes with
 * the next call. */
static ssize_t seq_read(struct bmaptk_stream *bs, void *buf, size_t len,
			struct bmaptk_error *err)
{
	struct bz2seq *s = (struct bz2seq *)bs;
	size_t done = 0;

	while (done < len && !s->at_end && !s->failed) {
		int r = seq_step(s, buf, len, &done);
		if (r < 0)
			s->failed = 1;
		else if (r > 0)
			s->at_end = 1;
	}
	if (done)
		return (ssize_t)done;
	if (s->failed) {
		if (err)
			*err = s->saved;
		return -1;
	}
	return 0;
}

static void seq_close(struct bmaptk_stream *bs)
{
	struct bz2seq *s = (struct bz2seq *)bs;

	if (s->z_live)
		BZ2_bzDecompressEnd(&s->z);
	s->inner->ops->close(s->inner);
	free(s->in);
	free(s);
}

static const struct bmaptk_stream_ops seq_ops = {
    .read = seq_read,
    .close = seq_close,
};

static struct bmaptk_stream *seq_open(struct bmaptk_stream *inner,
				      struct bmaptk_error *err)
{
	struct bz2seq *s = calloc(1, sizeof(*s));

	if (s)
		s->in = malloc(SEQ_READ_SIZE);
	if (!s || !s->in) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
				 "%s: out of memory", inner->name);
		inner->ops->close(inner);
		if (s)
			free(s->in);
		free(s);
		return NULL;
	}
	s->base.ops = &seq_ops;
	s->base.name = inner->name;
	s->base.size = BMAPTK_SIZE_UNKNOWN;
	s->inner = inner;
	s->z.next_in = (char *)s->in;
	return &s->base;
}

/* ---- the module ---------------------------------------------------------- */

static unsigned thread_count(void)
{
	const char *env = getenv("BMAPTK_BZIP2_THREADS");
	char *end;
	long n;

	if (env && *env) {
		n = strtol(env, &end, 10);
		if (!*end && n >= 0)
			return (unsigned)MIN(n, 1024);
	}
	return online_cpus();
}

static struct bmaptk_stream *open_(struct bmaptk_stream *inner,
				   struct bmaptk_error *err)
{
	unsigned n = thread_count();

	if (!n)
		return seq_open(inner, err);
	return bzip2_mt_open(inner, n, err);
}

static const struct bmaptk_codec_module ops = {
    .probe = probe,
    .open = open_,
    .format = "bzip2",
};

const struct bmaptk_module bmaptk_codec_bzip2 = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_CODEC,
    .name = "bzip2",
    .description = "bzip2, blocks decoded in parallel on every CPU",
    .version = "1",
    .priority = 100,
    .u.codec = &ops,
};
