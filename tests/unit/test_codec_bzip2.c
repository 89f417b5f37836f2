/* The bzip2 codec against files made by the real tools: bzip2, pbzip2
 * (many streams), lbzip2 (many blocks) and concatenations, through both the
 * parallel decoder and the one-thread streaming one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bmaptk/bmaptk.h>

#include "util.h"

extern const struct bmaptk_module bmaptk_codec_bzip2;
extern int bzip2_mt_test_false_splits;
uint32_t bzip2_crc32(uint32_t crc, const unsigned char *p, size_t n);
uint32_t bzip2_crc32_portable(uint32_t crc, const unsigned char *p, size_t n);

#define SMALL_SIZE ((3u << 20) + 1234)
#define LARGE_SIZE ((7u << 20) + 777) /* several 900k blocks */

static char dir[64];
static struct bmaptk_registry *reg;
static unsigned char *small, *large;

static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Zero runs, incompressible bytes and word soup, in random-length runs. */
static unsigned char *make_data(size_t size, uint64_t seed)
{
	static const char text[] = "disk image block map sparse zero bmap\n";
	unsigned char *d = malloc(size);
	size_t i = 0;

	assert_non_null(d);
	rng_state = seed;
	while (i < size) {
		size_t run = MIN(size - i, 1 + rng() % (300u << 10));
		unsigned kind = rng() % 3;
		for (size_t k = 0; k < run; k++) {
			if (kind == 0)
				d[i + k] = 0;
			else if (kind == 1)
				d[i + k] = (unsigned char)rng();
			else
				d[i + k] = (unsigned char)
				    text[(k + k / 29) % (sizeof(text) - 1)];
		}
		i += run;
	}
	return d;
}

static char *path_of(const char *name)
{
	static char buf[8][128];
	static unsigned n;
	char *p = buf[n++ % 8];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *d;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	d = malloc((size_t)n + 1);
	assert_non_null(d);
	assert_int_equal(fread(d, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return d;
}

static void run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static int have(const char *tool)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

/* Decode path completely. Returns the status; *out holds what was read
 * before the end or the error. */
static int decode(const char *path, unsigned threads, unsigned char **out,
		  size_t *len, struct bmaptk_error *err)
{
	size_t cap = 4u << 20, used = 0, step = (3u << 20) + 7;
	unsigned char *buf = malloc(cap);
	struct bmaptk_stream *s;
	char env[16];
	int rc = 0;

	assert_non_null(buf);
	snprintf(env, sizeof(env), "%u", threads);
	setenv("BMAPTK_BZIP2_THREADS", env, 1);
	memset(err, 0, sizeof(*err));
	s = bmaptk_open_image(reg, path, NULL, err);
	if (!s) {
		free(buf);
		*out = NULL;
		*len = 0;
		return err->status ? err->status : -1;
	}
	assert_string_equal(s->format, "bzip2");
	for (;;) {
		ssize_t n;
		if (cap - used < step) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = s->ops->read(s, buf + used, step, err);
		if (n < 0) {
			rc = err->status;
			assert_int_not_equal(rc, 0);
			break;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	s->ops->close(s);
	*out = buf;
	*len = used;
	return rc;
}

static void expect_same_with(const char *path, const unsigned char *want,
			     size_t want_len, unsigned threads)
{
	struct bmaptk_error err;
	unsigned char *got;
	size_t len;
	int rc = decode(path, threads, &got, &len, &err);

	if (rc)
		fail_msg("%s (%u threads): %s", path, threads, err.message);
	assert_int_equal(len, want_len);
	assert_memory_equal(got, want, want_len);
	free(got);
}

/* Through the parallel decoder and the streaming one. */
static void expect_same(const char *path, const unsigned char *want,
			size_t want_len)
{
	expect_same_with(path, want, want_len, 2);
	expect_same_with(path, want, want_len, 0);
}

/* Decoding must fail with a message naming the file and an offset, and
 * what came before must be the start of the original. */
static void expect_error(const char *path, const unsigned char *orig,
			 int check_prefix)
{
	for (unsigned threads = 0; threads <= 2; threads++) {
		struct bmaptk_error err;
		unsigned char *got;
		size_t len;
		int rc = decode(path, threads, &got, &len, &err);
		assert_int_not_equal(rc, 0);
		assert_non_null(strstr(err.message, path));
		assert_non_null(strstr(err.message, "offset"));
		if (check_prefix && got)
			assert_memory_equal(got, orig, len);
		free(got);
	}
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/bmaptk-bz2-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	reg = bmaptk_registry_new();
	small = make_data(SMALL_SIZE, 0x1234567887654321ULL);
	large = make_data(LARGE_SIZE, 0x0badc0ffee15900dULL);
	write_file(path_of("small.img"), small, SMALL_SIZE);
	write_file(path_of("large.img"), large, LARGE_SIZE);
	run("bzip2 -9 -c %s > %s", path_of("large.img"), path_of("large.bz2"));
	return reg ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	run("rm -rf %s", dir);
	bmaptk_registry_free(reg);
	free(small);
	free(large);
	return 0;
}

static void test_probe(void **state)
{
	const struct bmaptk_codec_module *c = bmaptk_codec_bzip2.u.codec;
	unsigned char head[10] = {'B',	'Z',  'h',  '9',  0x31,
				  0x41, 0x59, 0x26, 0x53, 0x59};
	unsigned char eos[10] = {'B',  'Z',  'h',  '1',	 0x17,
				 0x72, 0x45, 0x38, 0x50, 0x90};

	(void)state;
	assert_int_equal(bmaptk_codec_bzip2.kind, BMAPTK_MODULE_CODEC);
	assert_int_equal(bmaptk_codec_bzip2.priority, 100);
	assert_string_equal(c->format, "bzip2");
	assert_int_equal(c->probe(head, sizeof(head)), 80);
	assert_int_equal(c->probe(eos, sizeof(eos)), 80);
	head[3] = '0';
	assert_int_equal(c->probe(head, sizeof(head)), 0);
	head[3] = '9';
	head[9] = 0;
	assert_int_equal(c->probe(head, sizeof(head)), 0);
	assert_int_equal(c->probe((const unsigned char *)"BZ", 2), 0);
	assert_int_equal(c->probe((const unsigned char *)"\x1f\x8b\x08", 3), 0);
}

/* The block CRC: the fast one (ISA-L when built with it) and the table
 * one agree, on the standard check value too, and can be continued. */
static void test_crc(void **state)
{
	const unsigned char *check = (const unsigned char *)"123456789";

	(void)state;
	assert_int_equal(bzip2_crc32(0, check, 9), 0xfc891918u);
	assert_int_equal(bzip2_crc32_portable(0, check, 9), 0xfc891918u);
	rng_state = 42;
	for (int i = 0; i < 200; i++) {
		size_t off = rng() % 4096, len = rng() % 70000, cut;
		uint32_t a = bzip2_crc32(0, large + off, len);
		assert_int_equal(a, bzip2_crc32_portable(0, large + off, len));
		cut = len ? rng() % len : 0;
		assert_int_equal(a,
				 bzip2_crc32(bzip2_crc32(0, large + off, cut),
					     large + off + cut, len - cut));
	}
}

static void test_bzip2(void **state)
{
	(void)state;
	expect_same(path_of("large.bz2"), large, LARGE_SIZE);
}

static void test_bzip2_level1(void **state)
{
	(void)state;
	run("bzip2 -1 -c %s > %s", path_of("small.img"), path_of("small1.bz2"));
	expect_same(path_of("small1.bz2"), small, SMALL_SIZE);
}

static void test_pbzip2(void **state)
{
	(void)state;
	if (!have("pbzip2"))
		skip();
	run("pbzip2 -9 -p2 -c %s > %s", path_of("large.img"),
	    path_of("large.pbz2"));
	expect_same(path_of("large.pbz2"), large, LARGE_SIZE);
}

static void test_lbzip2(void **state)
{
	(void)state;
	if (!have("lbzip2"))
		skip();
	run("lbzip2 -9 -n2 -c %s > %s", path_of("large.img"),
	    path_of("large.lbz2"));
	expect_same(path_of("large.lbz2"), large, LARGE_SIZE);
	/* More workers than CPUs and than blocks in flight. */
	expect_same_with(path_of("large.lbz2"), large, LARGE_SIZE, 7);
}

static void test_concatenated(void **state)
{
	unsigned char *both = malloc(SMALL_SIZE + LARGE_SIZE);

	(void)state;
	assert_non_null(both);
	memcpy(both, small, SMALL_SIZE);
	memcpy(both + SMALL_SIZE, large, LARGE_SIZE);
	run("bzip2 -3 -c %s > %s", path_of("small.img"), path_of("small3.bz2"));
	run("cat %s %s > %s", path_of("small3.bz2"), path_of("large.bz2"),
	    path_of("cat.bz2"));
	expect_same(path_of("cat.bz2"), both, SMALL_SIZE + LARGE_SIZE);
	free(both);
}

static void test_empty_and_tiny(void **state)
{
	(void)state;
	run("bzip2 -c < /dev/null > %s", path_of("empty.bz2"));
	expect_same(path_of("empty.bz2"), (const unsigned char *)"", 0);
	/* An empty stream between two others is allowed too. */
	run("printf 'abc' | bzip2 > %s && cat %s %s %s > %s",
	    path_of("abc.bz2"), path_of("abc.bz2"), path_of("empty.bz2"),
	    path_of("abc.bz2"), path_of("abc2.bz2"));
	expect_same(path_of("abc2.bz2"), (const unsigned char *)"abcabc", 6);
}

/* Blocks split at false magic matches must be joined and decoded again. */
static void test_false_magic_splits(void **state)
{
	(void)state;
	bzip2_mt_test_false_splits = 2;
	run("bzip2 -2 -c %s > %s", path_of("small.img"), path_of("small2.bz2"));
	expect_same_with(path_of("small2.bz2"), small, SMALL_SIZE, 2);
	expect_same_with(path_of("large.bz2"), large, LARGE_SIZE, 3);
	bzip2_mt_test_false_splits = 0;
}

static void cut_file(const char *from, const char *to, size_t keep)
{
	size_t len;
	unsigned char *d = read_file(from, &len);

	assert_true(keep < len);
	write_file(to, d, keep);
	free(d);
}

/* A second stream cut inside its header: the whole first stream comes
 * out, then the error names where the input ends. */
static void expect_cut_header(size_t len)
{
	char want[64];

	run("cp %s %s && printf BZh >> %s", path_of("large.bz2"),
	    path_of("cuthdr.bz2"), path_of("cuthdr.bz2"));
	snprintf(want, sizeof(want), "compressed offset %zu", len + 3);
	for (unsigned threads = 0; threads <= 2; threads += 2) {
		struct bmaptk_error err;
		unsigned char *got;
		size_t n;
		assert_int_not_equal(
		    decode(path_of("cuthdr.bz2"), threads, &got, &n, &err), 0);
		assert_non_null(strstr(err.message, want));
		assert_int_equal(n, LARGE_SIZE);
		assert_memory_equal(got, large, LARGE_SIZE);
		free(got);
	}
}

static void test_truncated(void **state)
{
	size_t len;
	unsigned char *d = read_file(path_of("large.bz2"), &len);

	(void)state;
	free(d);
	cut_file(path_of("large.bz2"), path_of("half.bz2"), len / 2);
	expect_error(path_of("half.bz2"), large, 1);
	cut_file(path_of("large.bz2"), path_of("short3.bz2"), len - 3);
	expect_error(path_of("short3.bz2"), large, 1);
	cut_file(path_of("large.bz2"), path_of("short12.bz2"), len - 12);
	expect_error(path_of("short12.bz2"), large, 1);
	cut_file(path_of("large.bz2"), path_of("head.bz2"), 7);
	expect_error(path_of("head.bz2"), large, 1);
	expect_cut_header(len);
}

static void corrupt_copy(const char *from, const char *to, size_t at,
			 unsigned char mask)
{
	size_t len;
	unsigned char *d = read_file(from, &len);

	assert_true(at < len);
	d[at] ^= mask;
	write_file(to, d, len);
	free(d);
}

static void test_corrupt(void **state)
{
	size_t len;
	unsigned char *d = read_file(path_of("large.bz2"), &len);

	(void)state;
	free(d);
	corrupt_copy(path_of("large.bz2"), path_of("bad.bz2"), len / 2, 0x10);
	expect_error(path_of("bad.bz2"), large, 0);
	corrupt_copy(path_of("large.bz2"), path_of("bad2.bz2"), len / 3, 0xff);
	expect_error(path_of("bad2.bz2"), large, 0);
	/* Inside the stream CRC at the very end. */
	corrupt_copy(path_of("large.bz2"), path_of("badcrc.bz2"), len - 2, 1);
	expect_error(path_of("badcrc.bz2"), large, 1);
}

static void test_trailing_data(void **state)
{
	(void)state;
	run("cp %s %s && head -c 4096 /dev/zero >> %s", path_of("large.bz2"),
	    path_of("zeros.bz2"), path_of("zeros.bz2"));
	expect_same(path_of("zeros.bz2"), large, LARGE_SIZE);
	run("cp %s %s && printf 'garbage' >> %s", path_of("large.bz2"),
	    path_of("junk.bz2"), path_of("junk.bz2"));
	expect_error(path_of("junk.bz2"), large, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_probe),
	    cmocka_unit_test(test_crc),
	    cmocka_unit_test(test_bzip2),
	    cmocka_unit_test(test_bzip2_level1),
	    cmocka_unit_test(test_pbzip2),
	    cmocka_unit_test(test_lbzip2),
	    cmocka_unit_test(test_concatenated),
	    cmocka_unit_test(test_empty_and_tiny),
	    cmocka_unit_test(test_false_magic_splits),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_corrupt),
	    cmocka_unit_test(test_trailing_data),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
