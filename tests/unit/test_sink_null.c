/* The null sink (src/sinks/null.c): picked for /dev/null and for another
 * name of the same device, it takes every write and keeps nothing, has
 * nothing to read back, and refuses to stand in for any other file
 * (--to null) or a removable device (--removable-device). */
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

static struct bmaptk_sink *open_sink(const char *path, const char *module,
				     int removable, struct bmaptk_error *err)
{
	struct bmaptk_registry *reg = bmaptk_registry_new();
	struct bmaptk_sink_opts so = {.image_size = 1 << 20,
				      .removable_only = removable};
	struct bmaptk_sink *s;

	assert_non_null(reg);
	s = bmaptk_open_sink(reg, path, module, &so, err);
	bmaptk_registry_free(reg);
	return s;
}

static void assert_is_null_sink(struct bmaptk_sink *s)
{
	static char buf[8192];
	struct bmaptk_error err = {0};

	assert_non_null(s);
	assert_false(s->is_blockdev);
	assert_false(s->created);
	assert_null(s->ops->pread);
	assert_null(s->ops->discard);
	assert_null(s->ops->zeroout);
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(s->ops->pwrite(s, buf, sizeof(buf), 0, &err), 0);
	/* Past any size: nothing is kept, so nothing is out of range. */
	assert_int_equal(s->ops->pwrite(s, buf, 4096, 1ull << 40, &err), 0);
	assert_int_equal(s->ops->finish(s, 1 << 20, &err), 0);
	assert_int_equal(s->ops->close(s, 1), 0); /* never "removed" */
}

static void test_dev_null_is_picked(void **state)
{
	struct bmaptk_error err = {0};

	(void)state;
	assert_is_null_sink(open_sink("/dev/null", NULL, 0, &err));
	assert_is_null_sink(open_sink("/dev/null", "null", 0, &err));
}

static void test_other_name_of_dev_null(void **state)
{
	struct bmaptk_error err = {0};
	char dir[] = "/tmp/bmaptk-null.XXXXXX", link[PATH_MAX];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(link, sizeof(link), "%s/nothing", dir);
	assert_int_equal(symlink("/dev/null", link), 0);
	assert_is_null_sink(open_sink(link, NULL, 0, &err));
	unlink(link);
	rmdir(dir);
}

static void test_refusals(void **state)
{
	struct bmaptk_error err = {0};
	char path[] = "/tmp/bmaptk-null-file.XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_null(open_sink(path, "null", 0, &err));
	assert_int_equal(err.status, BMAPTK_ERR_USAGE);
	assert_non_null(strstr(err.message, "not the null device"));
	unlink(path);

	memset(&err, 0, sizeof(err));
	assert_null(open_sink("/dev/null", NULL, 1, &err));
	assert_int_equal(err.status, BMAPTK_ERR_USAGE);
	assert_non_null(strstr(err.message, "not a removable block device"));

	/* Another character device is no destination at all. */
	memset(&err, 0, sizeof(err));
	assert_null(open_sink("/dev/zero", NULL, 0, &err));
	assert_int_equal(err.status, BMAPTK_ERR_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dev_null_is_picked),
	    cmocka_unit_test(test_other_name_of_dev_null),
	    cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
