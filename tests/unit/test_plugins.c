/* The plugin loader against real shared objects built in tests/plugins/:
 * good.so registers and decodes, the bad ones are refused with a warning
 * that names them, and nothing crashes the host. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <bmaptk/bmaptk.h>

#include "util.h"

#define PAYLOAD_LEN (3 * 4096 + 123) /* longer than the host's peek buffer */

struct warnings {
	size_t n;
	char *msg[16];
};

static void collect(void *ctx, const char *message)
{
	struct warnings *w = ctx;

	assert_non_null(message);
	assert_true(w->n < sizeof(w->msg) / sizeof(w->msg[0]));
	w->msg[w->n] = strdup(message);
	assert_non_null(w->msg[w->n]);
	w->n++;
}

static void warnings_free(struct warnings *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->msg[i]);
	w->n = 0;
}

/* The warning that names file, or NULL. */
static const char *warning_for(const struct warnings *w, const char *file)
{
	for (size_t i = 0; i < w->n; i++)
		if (strstr(w->msg[i], file))
			return w->msg[i];
	return NULL;
}

static const char *plugins_dir(void)
{
	const char *dir = getenv("BMAPTK_TEST_PLUGINS");

	if (!dir || !*dir) {
		print_message(
		    "BMAPTK_TEST_PLUGINS is not set: run through ctest\n");
		skip();
	}
	return dir;
}

static char *plugin_path(const char *file)
{
	const char *dir = plugins_dir();
	char *path = malloc(strlen(dir) + strlen(file) + 2);

	assert_non_null(path);
	sprintf(path, "%s/%s", dir, file);
	return path;
}

/* Index of the registered module called name, or -1. */
static long find_module(const struct bmaptk_registry *reg, const char *name,
			const char **origin)
{
	for (size_t i = 0; i < bmaptk_registry_count(reg); i++) {
		const struct bmaptk_module *m =
		    bmaptk_registry_get(reg, i, origin);
		if (m && !strcmp(m->name, name))
			return (long)i;
	}
	return -1;
}

static void test_load_good(void **state)
{
	char *path = plugin_path("good.so");
	struct bmaptk_registry *reg = bmaptk_registry_new();
	struct bmaptk_error err = {0};
	const struct bmaptk_module *m;
	const char *origin = NULL;
	size_t before;
	long i;

	(void)state;
	assert_non_null(reg);
	before = bmaptk_registry_count(reg);
	assert_int_equal(find_module(reg, "testcodec", NULL), -1);
	assert_int_equal(bmaptk_registry_load_plugin(reg, path, &err), 1);
	assert_int_equal(bmaptk_registry_count(reg), before + 1);
	i = find_module(reg, "testcodec", &origin);
	assert_true(i >= 0);
	m = bmaptk_registry_get(reg, (size_t)i, &origin);
	assert_string_equal(origin, path);
	assert_int_equal(m->kind, BMAPTK_MODULE_CODEC);
	assert_int_equal(m->abi_version, BMAPTK_ABI_VERSION);
	assert_string_equal(m->version, "1.0");
	assert_non_null(m->u.codec->probe);
	assert_int_equal(m->u.codec->probe((const unsigned char *)"TSTCx", 5),
			 32);
	assert_int_equal(m->u.codec->probe((const unsigned char *)"TST", 3), 0);
	assert_null(bmaptk_registry_get(reg, bmaptk_registry_count(reg), NULL));
	bmaptk_registry_free(reg);
	free(path);
}

/* Each bad file alone: refused with a usage error naming it, nothing
 * registered. */
static void expect_refused(const char *file, const char *why)
{
	char *path = plugin_path(file);
	struct bmaptk_registry *reg = bmaptk_registry_new();
	struct bmaptk_error err = {0};
	size_t before;

	assert_non_null(reg);
	before = bmaptk_registry_count(reg);
	assert_int_equal(bmaptk_registry_load_plugin(reg, path, &err), -1);
	assert_int_equal(err.status, BMAPTK_ERR_USAGE);
	if (!strstr(err.message, path) || !strstr(err.message, why))
		fail_msg("%s: message '%s' lacks '%s'", file, err.message, why);
	assert_int_equal(bmaptk_registry_count(reg), before);
	assert_int_equal(find_module(reg, "testcodec", NULL), -1);
	bmaptk_registry_free(reg);
	free(path);
}

static void test_refuse_each(void **state)
{
	(void)state;
	expect_refused("wrongabi.so", "ABI version 2");
	expect_refused("noentry.so", "no bmaptk_plugin_modules symbol");
	expect_refused("garbage.so", "not a loadable plugin");
	expect_refused("missing.so", "not a loadable plugin");
}

static void test_load_dir(void **state)
{
	const char *dir = plugins_dir();
	struct bmaptk_registry *reg = bmaptk_registry_new();
	struct warnings w = {0};
	const char *origin = NULL, *msg;
	size_t before;
	char *good = plugin_path("good.so");

	(void)state;
	assert_non_null(reg);
	before = bmaptk_registry_count(reg);
	assert_int_equal(bmaptk_registry_load_dir(reg, dir, collect, &w), 1);
	assert_int_equal(bmaptk_registry_count(reg), before + 1);
	assert_true(find_module(reg, "testcodec", &origin) >= 0);
	assert_string_equal(origin, good);

	assert_int_equal(w.n, 3);
	msg = warning_for(&w, "wrongabi.so");
	assert_non_null(msg);
	assert_non_null(strstr(msg, "ABI version"));
	msg = warning_for(&w, "noentry.so");
	assert_non_null(msg);
	assert_non_null(strstr(msg, "no bmaptk_plugin_modules symbol"));
	msg = warning_for(&w, "garbage.so");
	assert_non_null(msg);
	assert_non_null(strstr(msg, "not a loadable plugin"));
	assert_null(warning_for(&w, "good.so"));

	/* Without a callback the bad files are still skipped quietly. */
	bmaptk_registry_free(reg);
	reg = bmaptk_registry_new();
	assert_non_null(reg);
	assert_int_equal(bmaptk_registry_load_dir(reg, dir, NULL, NULL), 1);
	bmaptk_registry_free(reg);
	warnings_free(&w);
	free(good);
}

static char *make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *dir = malloc(PATH_MAX);

	assert_non_null(dir);
	snprintf(dir, PATH_MAX, "%s/bmaptk-plugins-XXXXXX",
		 base && *base ? base : "/tmp");
	assert_non_null(mkdtemp(dir));
	return dir;
}

static char *join(const char *dir, const char *file)
{
	char *path = malloc(strlen(dir) + strlen(file) + 2);

	assert_non_null(path);
	sprintf(path, "%s/%s", dir, file);
	return path;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* A truncated copy of good.so: one warning naming it, nothing added. */
static void test_load_dir_truncated(void **state)
{
	struct bmaptk_registry *reg = bmaptk_registry_new();
	struct warnings w = {0};
	char *tmp = make_tmpdir(), *good = plugin_path("good.so");
	char *cut = join(tmp, "cut.so"), *buf = malloc(512);
	FILE *f;

	(void)state;
	assert_non_null(reg);
	assert_non_null(buf);
	f = fopen(good, "rb");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, 512, f), 512);
	assert_int_equal(fclose(f), 0);
	write_file(cut, buf, 512);
	assert_int_equal(bmaptk_registry_load_dir(reg, tmp, collect, &w), 0);
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.msg[0], cut));
	assert_int_equal(find_module(reg, "testcodec", NULL), -1);

	assert_int_equal(unlink(cut), 0);
	assert_int_equal(rmdir(tmp), 0);
	bmaptk_registry_free(reg);
	warnings_free(&w);
	free(buf);
	free(cut);
	free(good);
	free(tmp);
}

/* Directories with nothing to load, or no directory at all: no modules,
 * no warnings (and no qsort of a NULL list, which UBSan would flag). */
static void test_load_dir_empty(void **state)
{
	struct bmaptk_registry *reg = bmaptk_registry_new();
	struct warnings w = {0};
	char *tmp = make_tmpdir(), *missing = join(tmp, "nope");
	char *readme = join(tmp, "README");
	size_t before;

	(void)state;
	assert_non_null(reg);
	before = bmaptk_registry_count(reg);
	assert_int_equal(bmaptk_registry_load_dir(reg, missing, collect, &w),
			 0);
	write_file(readme, "not a plugin", 12);
	assert_int_equal(bmaptk_registry_load_dir(reg, tmp, collect, &w), 0);
	assert_int_equal(unlink(readme), 0);
	assert_int_equal(bmaptk_registry_load_dir(reg, tmp, collect, &w), 0);
	assert_int_equal(w.n, 0);
	assert_int_equal(bmaptk_registry_count(reg), before);

	assert_int_equal(rmdir(tmp), 0);
	bmaptk_registry_free(reg);
	free(readme);
	free(missing);
	free(tmp);
}

static int never_probe(const unsigned char *head, size_t len)
{
	(void)head;
	(void)len;
	return 0;
}

/* The checks load_plugin relies on, through the public add. */
static void test_registry_add_checks(void **state)
{
	static const struct bmaptk_codec_module ops = {.probe = never_probe};
	static const struct bmaptk_module future = {
	    .abi_version = BMAPTK_ABI_VERSION + 1,
	    .kind = BMAPTK_MODULE_CODEC,
	    .name = "future",
	    .u.codec = &ops,
	};
	static const struct bmaptk_module no_open = {
	    .abi_version = BMAPTK_ABI_VERSION,
	    .kind = BMAPTK_MODULE_CODEC,
	    .name = "no-open",
	    .u.codec = &ops,
	};
	struct bmaptk_registry *reg = bmaptk_registry_new();
	struct bmaptk_error err = {0};
	size_t before;

	(void)state;
	assert_non_null(reg);
	before = bmaptk_registry_count(reg);
	assert_int_equal(
	    bmaptk_registry_add(reg, &future, "/x/future.so", &err),
	    BMAPTK_ERR_USAGE);
	assert_non_null(strstr(err.message, "/x/future.so"));
	assert_non_null(strstr(err.message, "ABI version 2"));
	assert_int_equal(
	    bmaptk_registry_add(reg, &no_open, "/x/no-open.so", &err),
	    BMAPTK_ERR_USAGE);
	assert_non_null(strstr(err.message, "/x/no-open.so"));
	assert_int_equal(bmaptk_registry_count(reg), before);
	bmaptk_registry_free(reg);
}

/* The entry point serves only the host ABI it was built for. */
static void test_entry_checks_host_abi(void **state)
{
	char *path = plugin_path("good.so");
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	bmaptk_plugin_entry_fn entry;

	(void)state;
	assert_non_null(h);
	*(void **)&entry = dlsym(h, BMAPTK_PLUGIN_ENTRY_NAME);
	assert_non_null(entry);
	assert_non_null(entry(BMAPTK_ABI_VERSION));
	assert_null(entry(BMAPTK_ABI_VERSION + 1));
	assert_null(entry(0));
	assert_int_equal(dlclose(h), 0);
	free(path);
}

static void fill_payload(unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 7 + i / 251);
}

static size_t read_all(struct bmaptk_stream *s, unsigned char *buf, size_t cap)
{
	struct bmaptk_error err = {0};
	ssize_t n = stream_read_full(s, buf, cap, &err);

	if (n < 0)
		fail_msg("read failed: %s", err.message);
	return (size_t)n;
}

static void test_decode_through_plugin(void **state)
{
	unsigned char *file = malloc(4 + PAYLOAD_LEN),
		      *got = malloc(PAYLOAD_LEN + 64);
	char *tmp = make_tmpdir(), *path = join(tmp, "image.tstc");
	char *good = plugin_path("good.so");
	struct bmaptk_registry *reg = bmaptk_registry_new();
	struct bmaptk_error err = {0};
	struct bmaptk_stream *s;

	(void)state;
	assert_non_null(file);
	assert_non_null(got);
	assert_non_null(reg);
	memcpy(file, "TSTC", 4);
	fill_payload(file + 4, PAYLOAD_LEN);
	write_file(path, file, 4 + PAYLOAD_LEN);

	/* Without the plugin the bytes are raw, magic included. */
	s = bmaptk_open_image(reg, path, NULL, &err);
	assert_non_null(s);
	assert_string_equal(s->format, "raw");
	assert_int_equal(read_all(s, got, PAYLOAD_LEN + 64), 4 + PAYLOAD_LEN);
	assert_memory_equal(got, file, 4 + PAYLOAD_LEN);
	s->ops->close(s);

	assert_int_equal(bmaptk_registry_load_plugin(reg, good, &err), 1);
	s = bmaptk_open_image(reg, path, NULL, &err);
	if (!s)
		fail_msg("open: %s", err.message);
	assert_string_equal(s->format, "testcodec");
	assert_string_equal(s->name, path);
	assert_int_equal(s->size, PAYLOAD_LEN);
	assert_int_equal(read_all(s, got, PAYLOAD_LEN + 64), PAYLOAD_LEN);
	assert_memory_equal(got, file + 4, PAYLOAD_LEN);
	s->ops->close(s);

	/* The plugin has no skip: the host reads and drops for it. */
	s = bmaptk_open_image(reg, path, NULL, &err);
	assert_non_null(s);
	assert_int_equal(stream_skip(s, 5000, &err), 0);
	assert_int_equal(read_all(s, got, PAYLOAD_LEN), PAYLOAD_LEN - 5000);
	assert_memory_equal(got, file + 4 + 5000, PAYLOAD_LEN - 5000);
	s->ops->close(s);

	/* Only the magic: an empty payload. */
	write_file(path, "TSTC", 4);
	s = bmaptk_open_image(reg, path, NULL, &err);
	assert_non_null(s);
	assert_string_equal(s->format, "testcodec");
	assert_int_equal(read_all(s, got, 16), 0);
	s->ops->close(s);

	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(tmp), 0);
	bmaptk_registry_free(reg);
	free(good);
	free(path);
	free(tmp);
	free(got);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load_good),
	    cmocka_unit_test(test_refuse_each),
	    cmocka_unit_test(test_load_dir),
	    cmocka_unit_test(test_load_dir_truncated),
	    cmocka_unit_test(test_entry_checks_host_abi),
	    cmocka_unit_test(test_registry_add_checks),
	    cmocka_unit_test(test_decode_through_plugin),
	    /* Last: under UBSan a failure here aborts the whole program. */
	    cmocka_unit_test(test_load_dir_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
