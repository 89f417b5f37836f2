/* The gzip, xz and zstd codecs against the real compressors: single and
 * multi-member/stream/frame files decode to exactly the original bytes, and
 * truncated, corrupt or padded-with-garbage files fail with a message naming
 * the file and the compressed offset. A tool that is missing is a skip. */
#include <ftw.h>
#include <limits.h>
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

#define MIB (1024 * 1024)
/* Not multiples of 4096, and big enough for several xz blocks. */
#define LEN1 ((size_t)(3 * MIB + 12345))
#define LEN2 ((size_t)(MIB + 777))

extern const struct bmaptk_module bmaptk_codec_gzip;
extern const struct bmaptk_module bmaptk_codec_xz;
extern const struct bmaptk_module bmaptk_codec_zstd;

static char tmpdir[64];
static unsigned char *data1, *data2, *data12; /* data12 = data1 + data2 */
static struct bmaptk_registry *reg;

/* ---- helpers ------------------------------------------------------------- */

static const char *tmp_path(char *buf, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", tmpdir, name);
	return buf;
}

static uint64_t next_rand(uint64_t *s)
{
	/* xorshift64*: deterministic across runs and platforms. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* Image-like bytes: zero runs, incompressible runs and text-like runs. */
static void fill(unsigned char *buf, size_t len, uint64_t seed)
{
	static const char *const words[] = {"block ",  "extent ",   "inode ",
					    "kernel ", "/usr/lib ", "0x7f3a ",
					    "=",       "\n"};
	size_t i = 0;

	while (i < len) {
		uint64_t r = next_rand(&seed);
		size_t run = MIN(len - i, 4096 + (size_t)(r >> 40) % 65536);
		unsigned kind = (unsigned)(r & 7);

		if (kind < 4) {
			memset(buf + i, 0, run);
		} else if (kind < 6) {
			for (size_t j = 0; j < run; j++)
				buf[i + j] =
				    (unsigned char)(next_rand(&seed) >> 56);
		} else {
			for (size_t j = 0; j < run;) {
				const char *w = words[next_rand(&seed) % 8];
				for (; *w && j < run; w++)
					buf[i + j++] = (unsigned char)*w;
			}
		}
		i += run;
	}
}

static void write_file(const char *name, const void *buf, size_t len)
{
	char path[PATH_MAX];
	FILE *f = fopen(tmp_path(path, name), "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static unsigned char *slurp(const char *name, size_t *len)
{
	char path[PATH_MAX];
	char *data;
	struct bmaptk_error err = {0};

	assert_int_equal(
	    read_whole_file(tmp_path(path, name), 1u << 30, &data, len, &err),
	    0);
	return (unsigned char *)data;
}

/* Run a shell command inside the temp dir; it must succeed. */
static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...)
{
	char cmd[16384];
	int n = snprintf(cmd, sizeof(cmd), "cd '%s' && ", tmpdir), m;
	va_list ap;

	va_start(ap, fmt);
	m = vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	assert_true(m >= 0 && (size_t)(n + m) < sizeof(cmd));
	if (system(cmd) != 0)
		fail_msg("command failed: %.200s", cmd);
}

static void need_tool(const char *tool)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	if (system(cmd) != 0) {
		print_message("%s is not installed; skipping\n", tool);
		skip();
	}
}

struct decoded {
	unsigned char *buf;
	size_t len;
	int status; /* 0, or the status of the failure */
	char message[BMAPTK_ERROR_MAX];
	char format[32];
};

/* Decode a file through bmaptk_open_image, reading with odd buffer sizes so
 * that output-full and input-empty happen at every kind of boundary. */
static void decode(const char *name, struct decoded *d)
{
	static const size_t sizes[] = {MIB, 1, 4093, 3 * MIB, 65536, 7};
	char path[PATH_MAX];
	struct bmaptk_error err = {0};
	struct bmaptk_stream *s;
	size_t cap = LEN1 + LEN2 + 4 * MIB;

	memset(d, 0, sizeof(*d));
	d->buf = malloc(cap);
	assert_non_null(d->buf);
	s = bmaptk_open_image(reg, tmp_path(path, name), NULL, &err);
	if (!s) {
		d->status = err.status;
		snprintf(d->message, sizeof(d->message), "%s", err.message);
		return;
	}
	snprintf(d->format, sizeof(d->format), "%s", s->format);
	for (unsigned i = 0;; i++) {
		size_t want = MIN(sizes[i % 6], cap - d->len);
		ssize_t n;

		assert_true(want > 0); /* more output than any input holds */
		n = s->ops->read(s, d->buf + d->len, want, &err);
		if (n < 0) {
			d->status = err.status;
			snprintf(d->message, sizeof(d->message), "%s",
				 err.message);
			break;
		}
		if (n == 0) {
			/* The end stays the end. */
			assert_int_equal(s->ops->read(s, d->buf, 16, &err), 0);
			break;
		}
		assert_true((size_t)n <= want);
		d->len += (size_t)n;
	}
	s->ops->close(s);
}

static void expect_bytes(const char *name, const char *format,
			 const unsigned char *want, size_t want_len)
{
	struct decoded d;

	decode(name, &d);
	if (d.status)
		fail_msg("%s: unexpected error: %s", name, d.message);
	assert_string_equal(d.format, format);
	if (d.len != want_len)
		fail_msg("%s: decoded %zu bytes, expected %zu", name, d.len,
			 want_len);
	assert_memory_equal(d.buf, want, want_len);
	free(d.buf);
}

/* The decode must fail with bad-input status, naming the file, the offset
 * and, if given, what went wrong. */
static void expect_error(const char *name, const char *what)
{
	char path[PATH_MAX];
	struct decoded d;

	decode(name, &d);
	if (!d.status)
		fail_msg("%s: decoded %zu bytes without an error", name, d.len);
	assert_int_equal(d.status, BMAPTK_ERR_USAGE);
	assert_non_null(strstr(d.message, tmp_path(path, name)));
	assert_non_null(strstr(d.message, "compressed offset "));
	if (what && !strstr(d.message, what))
		fail_msg("%s: message lacks \"%s\": %s", name, what, d.message);
	free(d.buf);
}

/* Copies of a compressed file: cut in half, cut by 3 bytes, one byte
 * flipped in the middle, garbage appended. */
static void make_damaged(const char *name)
{
	char out[PATH_MAX];
	size_t len;
	unsigned char *buf = slurp(name, &len);

	snprintf(out, sizeof(out), "half-%s", name);
	write_file(out, buf, len / 2);
	snprintf(out, sizeof(out), "short-%s", name);
	write_file(out, buf, len - 3);
	snprintf(out, sizeof(out), "garbage-%s", name);
	write_file(out, buf, len);
	run("printf 'this is garbage\\n' >> '%s'", out);
	buf[len / 2] ^= 0x55;
	snprintf(out, sizeof(out), "corrupt-%s", name);
	write_file(out, buf, len);
	free(buf);
}

static void expect_damage_caught(const char *name)
{
	char f[PATH_MAX];

	make_damaged(name);
	snprintf(f, sizeof(f), "half-%s", name);
	expect_error(f, "truncated");
	snprintf(f, sizeof(f), "short-%s", name);
	expect_error(f, "truncated");
	snprintf(f, sizeof(f), "garbage-%s", name);
	expect_error(f, "garbage");
	snprintf(f, sizeof(f), "corrupt-%s", name);
	expect_error(f, "corrupt");
}

/* ---- fixtures ------------------------------------------------------------ */

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bmaptk-codecs-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	data1 = malloc(LEN1);
	data2 = malloc(LEN2);
	data12 = malloc(LEN1 + LEN2);
	reg = bmaptk_registry_new();
	if (!data1 || !data2 || !data12 || !reg)
		return -1;
	fill(data1, LEN1, 1);
	fill(data2, LEN2, 2);
	memcpy(data12, data1, LEN1);
	memcpy(data12 + LEN1, data2, LEN2);
	write_file("data1", data1, LEN1);
	write_file("data2", data2, LEN2);
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	(void)state;
	bmaptk_registry_free(reg);
	free(data1);
	free(data2);
	free(data12);
	return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- tests --------------------------------------------------------------- */

static void test_probe(void **state)
{
	static const unsigned char gz[] = {0x1f, 0x8b, 0x08, 0};
	static const unsigned char xz[] = {0xfd, '7', 'z', 'X', 'Z', 0, 0};
	static const unsigned char zs[] = {0x28, 0xb5, 0x2f, 0xfd, 0};
	static const unsigned char skip_frame[] = {0x5e, 0x2a, 0x4d, 0x18};
	static const unsigned char other[] = {0x1f, 0x8b, 0x07, 0xfd, '7', 'z'};
	const struct bmaptk_codec_module *g = bmaptk_codec_gzip.u.codec;
	const struct bmaptk_codec_module *x = bmaptk_codec_xz.u.codec;
	const struct bmaptk_codec_module *z = bmaptk_codec_zstd.u.codec;

	(void)state;
	assert_int_equal(g->probe(gz, sizeof(gz)), 24);
	assert_int_equal(x->probe(xz, sizeof(xz)), 48);
	assert_int_equal(z->probe(zs, sizeof(zs)), 32);
	assert_int_equal(z->probe(skip_frame, sizeof(skip_frame)), 28);
	/* Short heads and near misses are not theirs. */
	assert_int_equal(g->probe(gz, 2), 0);
	assert_int_equal(x->probe(xz, 5), 0);
	assert_int_equal(z->probe(zs, 3), 0);
	for (size_t i = 0; i + 1 < sizeof(other); i++) {
		assert_int_equal(g->probe(other + i, sizeof(other) - i), 0);
		assert_int_equal(x->probe(other + i, sizeof(other) - i), 0);
		assert_int_equal(z->probe(other + i, sizeof(other) - i), 0);
	}
	assert_int_equal(g->probe(xz, sizeof(xz)), 0);
	assert_int_equal(z->probe(gz, sizeof(gz)), 0);
	assert_string_equal(g->format, "gzip");
	assert_string_equal(x->format, "xz");
	assert_string_equal(z->format, "zstd");
	assert_int_equal(bmaptk_codec_gzip.priority, 100);
	assert_int_equal(bmaptk_codec_xz.priority, 100);
	assert_int_equal(bmaptk_codec_zstd.priority, 100);
}

static void test_raw_passes_through(void **state)
{
	(void)state;
	expect_bytes("data1", "raw", data1, LEN1);
}

static void test_gzip(void **state)
{
	char comment[6001];
	unsigned char *want;

	(void)state;
	need_tool("gzip");
	need_tool("pigz");
	run("gzip -c data1 > 1.gz && pigz -c data2 > 2.gz && pigz -c data1 > "
	    "1p.gz && cat 1.gz 2.gz > 12.gz");
	expect_bytes("1.gz", "gzip", data1, LEN1);
	expect_bytes("1p.gz", "gzip", data1, LEN1);
	expect_bytes("12.gz", "gzip", data12, LEN1 + LEN2);

	/* A tiny first member, then a header (with a long comment) that
	 * straddles the first read of the input. */
	memset(comment, 'c', sizeof(comment) - 1);
	comment[sizeof(comment) - 1] = '\0';
	run("head -c 1000 data1 | gzip -n > tiny.gz && pigz -c -C %s data2 "
	    "> long-header.gz && cat tiny.gz long-header.gz > split.gz",
	    comment);
	want = malloc(1000 + LEN2);
	assert_non_null(want);
	memcpy(want, data1, 1000);
	memcpy(want + 1000, data2, LEN2);
	expect_bytes("split.gz", "gzip", want, 1000 + LEN2);
	free(want);

	expect_damage_caught("12.gz");
}

static void test_xz(void **state)
{
	size_t len;
	unsigned char *listing;

	(void)state;
	need_tool("xz");
	run("xz -c data1 > 1.xz && xz -T2 --block-size=1MiB -c data1 > "
	    "1mt.xz && xz -T2 --block-size=1MiB -c data2 > 2mt.xz && "
	    "cat 1.xz 2mt.xz > 12.xz");
	/* The threaded file really has several blocks to decode in
	 * parallel. */
	run("xz --robot -l 1mt.xz | awk '$1 == \"file\" { print $3 }' > "
	    "1mt.blocks");
	listing = slurp("1mt.blocks", &len);
	assert_true(atoi((char *)listing) >= 3);
	free(listing);

	expect_bytes("1.xz", "xz", data1, LEN1);
	expect_bytes("1mt.xz", "xz", data1, LEN1);
	expect_bytes("12.xz", "xz", data12, LEN1 + LEN2);
	expect_damage_caught("12.xz");
}

static void test_zstd(void **state)
{
	(void)state;
	need_tool("zstd");
	run("zstd -q -c data1 > 1.zst && zstd -q -T2 --format=zstd -c data2 "
	    "> 2mt.zst && cat 1.zst 2mt.zst > 12.zst");
	expect_bytes("1.zst", "zstd", data1, LEN1);
	expect_bytes("2mt.zst", "zstd", data2, LEN2);
	expect_bytes("12.zst", "zstd", data12, LEN1 + LEN2);

	/* pzstd writes a skippable frame before each frame. */
	need_tool("pzstd");
	run("pzstd -q -p 2 -c data1 > 1p.zst");
	expect_bytes("1p.zst", "zstd", data1, LEN1);

	expect_damage_caught("12.zst");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_probe),
	    cmocka_unit_test(test_raw_passes_through),
	    cmocka_unit_test(test_gzip),
	    cmocka_unit_test(test_xz),
	    cmocka_unit_test(test_zstd),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
