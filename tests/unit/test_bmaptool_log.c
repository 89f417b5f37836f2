/* bmaptool 3.9's log formats (src/cmd/bmaptool_log.c), against values
 * worked out with bmaptool 3.9's own BmapHelpers.human_size and
 * human_time: minutes and hours, Python's rounding and its quirks (59.96 s
 * is "60.0s", 1 PiB is "1024.0 EiB"), the bmap and copying lines, and that
 * the last line matches the regex LAVA waits for, also at 1 GiB/s and
 * more (kept in MiB: LAVA's pattern has no GiB). The message layer
 * (cli_info) is stubbed: each line lands in last_line. */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bmaptool_log.h"
#include "cmd.h"

static char lines[4][512];
static size_t nlines;

void cli_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(lines[nlines % 4], sizeof(lines[0]), fmt, ap);
	va_end(ap);
	nlines++;
}

static void clear_lines(void)
{
	memset(lines, 0, sizeof(lines));
	nlines = 0;
}

static void assert_time(double seconds, const char *want)
{
	char buf[64];

	assert_string_equal(bmaptool_human_time(seconds, buf, sizeof(buf)),
			    want);
}

static void assert_size(double bytes, const char *want)
{
	char buf[64];

	assert_string_equal(bmaptool_human_size(bytes, buf, sizeof(buf)), want);
}

static void test_human_time(void **state)
{
	(void)state;
	assert_time(0, "0.0s");
	assert_time(0.05, "0.1s");
	assert_time(13.24, "13.2s");
	assert_time(59.96, "60.0s"); /* rounded after the divmod */
	assert_time(60, "1m 0.0s");
	assert_time(330.3, "5m 30.3s");
	assert_time(3599.99, "59m 60.0s");
	assert_time(3600, "1h 0.0s"); /* no "0m" */
	assert_time(3723.4, "1h 2m 3.4s");
	assert_time(90061.5, "25h 1m 1.5s");
	assert_time(-1, "0.0s");
}

static void test_human_size(void **state)
{
	(void)state;
	assert_size(0, "0 bytes");
	assert_size(1, "1 byte");
	assert_size(2, "2 bytes");
	assert_size(511, "511 bytes");
	assert_size(511.9, "511 bytes"); /* "%d" of a float */
	assert_size(512, "0.5 KiB");
	assert_size(1023, "1.0 KiB");
	assert_size(1024, "1.0 KiB");
	assert_size(6205440, "5.9 MiB");
	assert_size(33554432, "32.0 MiB");
	assert_size(76021862.0, "72.5 MiB");
	assert_size(1610612736.0, "1.5 GiB");
	assert_size(1099511627776.0, "1.0 TiB");
	assert_size(1125899906842624.0, "1024.0 EiB"); /* bmaptool's */
}

static void assert_lava(const char *line)
{
	/* LAVA's pattern, as its device dictionaries give it. */
	static const char *const lava =
	    "bmaptool: info: copying time: [0-9hms\\.\\ ]+, copying speed "
	    "[0-9\\.]+ [MKiBbytes]+/sec";
	char full[256];
	regex_t re;

	snprintf(full, sizeof(full), "bmaptool: info: %s", line);
	assert_int_equal(regcomp(&re, lava, REG_EXTENDED | REG_NOSUB), 0);
	if (regexec(&re, full, 0, NULL, 0))
		fail_msg("[%s] does not match LAVA's pattern", full);
	regfree(&re);
}

static void test_format_done(void **state)
{
	char buf[160];

	(void)state;
	/* mapped_size // copying_time, then human_size */
	assert_string_equal(
	    bmaptool_format_done(6205440, 0.3, buf, sizeof(buf)),
	    "copying time: 0.3s, copying speed 19.7 MiB/sec");
	assert_lava(buf);
	assert_string_equal(
	    bmaptool_format_done(24000000000ull, 330.3, buf, sizeof(buf)),
	    "copying time: 5m 30.3s, copying speed 69.3 MiB/sec");
	assert_lava(buf);
	assert_string_equal(
	    bmaptool_format_done(100ull << 30, 3723.4, buf, sizeof(buf)),
	    "copying time: 1h 2m 3.4s, copying speed 27.5 MiB/sec");
	assert_lava(buf);
	assert_string_equal(bmaptool_format_done(300, 2, buf, sizeof(buf)),
			    "copying time: 2.0s, copying speed 150 bytes/sec");
	assert_lava(buf);
	/* 1 GiB/s and more stays in MiB, which LAVA's pattern takes. */
	assert_string_equal(
	    bmaptool_format_done(3ull << 30, 1.5, buf, sizeof(buf)),
	    "copying time: 1.5s, copying speed 2048.0 MiB/sec");
	assert_lava(buf);
	/* No time at all is no division by zero. */
	bmaptool_format_done(6205440, 0, buf, sizeof(buf));
	assert_lava(buf);
}

static void test_bmap_lines(void **state)
{
	struct bmaptk_bmap b = {.major = 2,
				.minor = 0,
				.image_size = 33554432,
				.block_size = 4096,
				.blocks_count = 8192,
				.mapped_blocks_count = 1515};

	(void)state;
	clear_lines();
	bmaptool_log_bmap(&b);
	assert_int_equal(nlines, 2);
	assert_string_equal(lines[0], "block map format version 2.0");
	assert_string_equal(lines[1], "8192 blocks of size 4096 (32.0 MiB), "
				      "mapped 1515 blocks (5.9 MiB or 18.5%)");
}

static void test_copying_lines(void **state)
{
	(void)state;
	clear_lines();
	bmaptool_log_start("images/disk.img.xz", "/tmp/out/card.img", 0,
			   "images/disk.img.bmap");
	assert_string_equal(lines[0], "copying image 'disk.img.xz' to file "
				      "'card.img' using bmap file "
				      "'disk.img.bmap'");
	/* A URL's query and fragment are not part of its base name. */
	bmaptool_log_start("https://host/d/disk.img.xz?token=1#x", "/dev/sdb",
			   1, "https://host/d/disk.img.xz.bmap?token=1");
	assert_string_equal(lines[1], "copying image 'disk.img.xz' to block "
				      "device '/dev/sdb' using bmap file "
				      "'disk.img.xz.bmap'");
	bmaptool_log_start("disk.img.xz", "/dev/null", 0, NULL);
	assert_string_equal(lines[2],
			    "no bmap given, copy entire image to '/dev/null'");
	bmaptool_log_sync("/dev/sdb");
	assert_string_equal(lines[3], "synchronizing '/dev/sdb'");
	bmaptool_log_done(6205440);
	assert_lava(lines[0]);
}

static void test_levels(void **state)
{
	(void)state;
	/* stderr is not a terminal under ctest: no colours. */
	if (isatty(2))
		skip();
	assert_string_equal(bmaptool_level("info"), "info");
	assert_string_equal(bmaptool_level("warning"), "WARNING");
	assert_string_equal(bmaptool_level("error"), "ERROR");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_human_time),
	    cmocka_unit_test(test_human_size),
	    cmocka_unit_test(test_format_done),
	    cmocka_unit_test(test_bmap_lines),
	    cmocka_unit_test(test_copying_lines),
	    cmocka_unit_test(test_levels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
